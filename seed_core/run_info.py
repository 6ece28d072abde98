"""What produced an output folder: code version, library versions, command line."""

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch
import torchvision


def _package_version() -> str | None:
    """The installed distribution's version (``pyproject.toml``); None when run from a bare source tree."""
    try:
        return metadata.version("seed-transfer")
    except metadata.PackageNotFoundError:
        return None


def code_version() -> dict:
    """Git commit and dirty flag of the source tree, when it is a git checkout."""
    root = Path(__file__).resolve().parent.parent
    info = {"package_version": _package_version()}
    try:
        run = lambda *args: subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            text=True,  # noqa: E731
            timeout=10,
            check=True,
        ).stdout.strip()
        info["git_commit"] = run("rev-parse", "HEAD")
        info["git_dirty"] = bool(run("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def hardware() -> dict:
    """The machine a result was measured on: CPU model and logical cores, memory, GPUs."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    try:
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{kib / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = None
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    # CPU arithmetic depends on the thread count: the same seeded run on 1 and on 2 threads differs
    threads = torch.get_num_threads()
    return {"cpu": cpu, "cpu_cores": os.cpu_count(), "memory": memory, "gpus": gpus, "torch_threads": threads}


def hardware_text(info: dict | None = None) -> str:
    """One line, e.g. ``2 CPU cores (Intel Xeon ...), 24 GiB memory, no GPU, torch on 2 threads``."""
    info = info or hardware()
    gpus = ", ".join(info["gpus"]) if info["gpus"] else "no GPU"
    memory = f", {info['memory']} memory" if info["memory"] else ""
    threads = info.get("torch_threads")
    threads = f", torch on {threads} thread{'s' * (threads != 1)}" if threads else ""
    return f"{info['cpu_cores']} CPU cores ({info['cpu']}){memory}, {gpus}{threads}"


def write_run_info(output_dir: str | Path, extra: dict | None = None) -> None:
    info = {
        **code_version(),
        "hardware": hardware(),
        "argv": sys.argv,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        **(extra or {}),
    }
    (Path(output_dir) / "run_info.json").write_text(json.dumps(info, indent=2))


def update_run_info(output_dir: str | Path, entries: dict) -> None:
    """Set ``entries`` in the ``run_info.json`` of :func:`write_run_info` (what a run learns as it
    goes, e.g. the bad images it met), keeping the rest."""
    path = Path(output_dir) / "run_info.json"
    info = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**info, **entries}, indent=2))
