"""What produced an output folder: code version, library versions, command line."""

import json
import platform
import subprocess
import sys
from pathlib import Path

import torch
import torchvision

import distill


def code_version() -> dict:
    """Git commit and dirty flag of the source tree, when it is a git checkout."""
    root = Path(distill.__file__).resolve().parent.parent
    info = {"package_version": distill.__version__}
    try:
        run = lambda *args: subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,  # noqa: E731
                                           timeout=10, check=True).stdout.strip()
        info["git_commit"] = run("rev-parse", "HEAD")
        info["git_dirty"] = bool(run("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


def write_run_info(output_dir: str | Path, extra: dict | None = None) -> None:
    info = {
        **code_version(),
        "argv": sys.argv,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        **(extra or {}),
    }
    (Path(output_dir) / "run_info.json").write_text(json.dumps(info, indent=2))
