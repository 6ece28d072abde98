"""Issue 27's hostile cases, measured on a source tree: one row per case of the issue's lists.

Each case builds its input in a temporary folder, runs a tool of the tree under test
(``python <tree>/tools/<tool>.py ...`` with ``PYTHONPATH=<tree>``, so an older checkout runs its
own code from this venv) under a time limit, and records the exit status, whether a traceback
was printed, the last line of stderr, and what the case is about (a marker file created by a
payload, a checkpoint replaced, the step a run reached, ...). Tiny sizes: a MobileNetV3-small
student and teacher on 32 px crops of 40 px random PNGs, a few steps; seconds per case.

    # each tree: a JSON file of rows
    python benchmarks/hostile_cases.py run --tree /tmp/before27 --out /tmp/hostile_before.json
    python benchmarks/hostile_cases.py run --tree . --out /tmp/hostile_after.json
    # the table (case | before | after)
    python benchmarks/hostile_cases.py table /tmp/hostile_before.json /tmp/hostile_after.json \\
        --write docs/results/hostile_cases/table.md

``--only <id> [<id> ...]`` runs some cases; ``--list`` names them. A case that the tree cannot
run (a key or flag it does not have) says so in its row. This is a measurement, not a test:
it asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import pickle
import platform
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

TIMEOUT_S = 240  # per tool run
GROUPS = (
    "Code execution from a weights file",
    "Data lost",
    "A long run that dies hours in",
    "Silently wrong",
    "Tracebacks where one line is due",
)


# ---------------------------------------------------------------- running a tool of the tree
@dataclass
class Run:
    """One tool run: exit status (None: killed at the time limit), its output, its duration."""

    rc: int | None
    stdout: str
    stderr: str
    seconds: float

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr

    @property
    def last(self) -> str:
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""

    def status(self) -> str:
        rc = "killed at the time limit" if self.rc is None else f"exit {self.rc}"
        return f"{rc}{', traceback' if self.traceback else ''}"


@dataclass
class Row:
    id: str
    group: str
    case: str
    rc: int | str | None = None
    traceback: bool | None = None
    last: str = ""
    check: str = ""
    seconds: float = 0.0
    error: str = ""  # the case itself failed (its set-up): why

    def cell(self) -> str:
        if self.error:
            return f"n/a: {self.error}"
        rc = (
            self.rc
            if isinstance(self.rc, str)
            else ("killed at the time limit" if self.rc is None else f"exit {self.rc}")
        )
        status = f"{rc}{', traceback' if self.traceback else ''}"
        last = f": `{shorten(self.last)}`" if self.last else ""
        check = re.sub(r"/tmp/hostile_cases_[A-Za-z0-9_]+", "<tmp>", self.check)
        return f"{status}{last}; {check}" if check else f"{status}{last}"


def shorten(text: str, limit: int = 200) -> str:
    """One line of at most ``limit`` characters: its start and its end (where a hint usually is); the
    case's temporary folder written ``<tmp>``, a log line's time stamp left out."""
    text = re.sub(r"/tmp/hostile_cases_[A-Za-z0-9_]+", "<tmp>", " ".join(text.split()).replace("`", "'"))
    text = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ", "", text)
    return text if len(text) <= limit else text[: limit * 3 // 5] + " ... " + text[-(limit * 2 // 5 - 5) :]


class Context:
    """The tree under test, the shared fixtures, and a fresh folder per case."""

    def __init__(self, tree: Path, work: Path):
        self.tree, self.work = tree.resolve(), work
        self.env = {**os.environ, "PYTHONPATH": str(self.tree), "PYTHONDONTWRITEBYTECODE": "1"}
        self.env.pop("PYTHONSTARTUP", None)
        self._base_run: Path | None = None
        self._base_error = ""
        self.fixtures = work / "fixtures"
        self.fixtures.mkdir(parents=True, exist_ok=True)
        self.teacher = self.fixtures / "mobilenet_v3_small.pth"
        self.images = make_image_folder(self.fixtures / "images", per_class=6)
        save_teacher(self.teacher)

    def folder(self, case_id: str) -> Path:
        path = self.work / case_id
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def config(self, relative: str) -> Path:
        return self.tree / "configs" / relative

    def popen(self, tool: str, *args, cwd: Path, **kwargs) -> subprocess.Popen:
        command = [sys.executable, str(self.tree / "tools" / tool), *map(str, args)]
        return subprocess.Popen(
            command, cwd=cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
        )

    def run(self, tool: str, *args, cwd: Path, timeout: float = TIMEOUT_S, **kwargs) -> Run:
        start = time.monotonic()
        process = self.popen(tool, *args, cwd=cwd, start_new_session=True, **kwargs)
        try:
            out, err = process.communicate(timeout=timeout)
            rc = process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            rc = None
        return Run(rc, out, err, time.monotonic() - start)

    def python(self, code: str, cwd: Path, timeout: float = TIMEOUT_S) -> Run:
        """``python -c code`` with the tree's packages first on the path."""
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - start)

    # ------------------------------------------------------------ the distillation
    def distill_args(self, out: Path, images: Path | None = None, **overrides) -> list[str]:
        settings = {
            "data.root": images or self.images,
            "teacher.weights": self.teacher,
            "teacher.arch": "mobilenet_v3_small",
            "student.arch": "mobilenet_v3_small",
            "data.image_size": 32,
            "data.num_workers": 0,
            "optim.batch_size": 4,
            "distill.queue_size": 16,
            "optim.epochs": 1,
            "optim.warmup_epochs": 0,
            "train.tensorboard": "false",
            "train.log_every": 1,
            "train.checkpoint_every": 1,
            "train.output_dir": out,
            **overrides,
        }
        config = settings.pop("config", self.config("distill/base.yaml"))
        return ["--config", config, *(f"{key}={value}" for key, value in settings.items() if value is not None)]

    def distill(self, out: Path, *flags: str, images: Path | None = None, timeout=TIMEOUT_S, **overrides) -> Run:
        return self.run(
            "distill.py", *self.distill_args(out, images, **overrides), *flags, cwd=out.parent, timeout=timeout
        )

    def base_run(self) -> Path:
        """A finished 2-step distillation (checkpoint, student, metrics) made once per tree; cases copy it."""
        if self._base_run is None and not self._base_error:
            out = self.fixtures / "base_run"
            shutil.rmtree(out, ignore_errors=True)
            run = self.distill(out, **{"train.max_steps": 2})
            if run.rc == 0 and (out / "checkpoint.pth").is_file() and (out / "student.pth").is_file():
                self._base_run = out
            else:
                self._base_error = f"the 2-step distillation every such case starts from failed ({run.status()}: {shorten(run.last, 90)})"
        if self._base_run is None:
            raise CaseError(self._base_error)
        return self._base_run

    def copy_base_run(self, folder: Path) -> Path:
        out = folder / "out"
        shutil.copytree(self.base_run(), out)
        return out


class CaseError(Exception):
    """The case cannot be run on this tree; the message says why (the row's n/a)."""


# ---------------------------------------------------------------- inputs
def make_image_folder(root: Path, classes: int = 2, per_class: int = 6, size: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / f"class{c}" / f"{i}.png")
    return root


def save_teacher(path: Path) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), path)


class Payload:
    """Unpickled by a plain ``pickle.load``, runs ``touch <marker>``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def marker_check(marker: Path) -> str:
    return "**payload ran** (marker file created)" if marker.exists() else "payload not run (no marker)"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "-"


def checkpoint_step(path: Path) -> str:
    import torch

    if not path.is_file():
        return "none"
    try:
        return str(torch.load(path, map_location="cpu", weights_only=False).get("step"))
    except Exception as err:  # noqa: BLE001 - a measurement: say what the file is
        return f"unreadable ({type(err).__name__})"


def metrics_summary(folder: Path) -> str:
    files = sorted(folder.rglob("metrics.csv"))
    if not files:
        return "no metrics.csv"
    lines = [line for f in files for line in f.read_text(errors="replace").splitlines()]
    headers = sum(line.startswith("step") for line in lines)
    return f"metrics.csv: {len(lines) - headers} rows, {headers} header{'s' * (headers != 1)}"


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares ``width`` x ``height`` (a decompression bomb as PIL sees it at open) and a
    tiny IDAT: what a reader does with the header decides the case."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def folder_with(ctx: Context, folder: Path, bad_name: str, write_bad: Callable[[Path], None], good: int = 11) -> Path:
    """``good`` random PNGs and one bad file in class0 (12 images: 3 steps of 4 cover them all)."""
    images = make_image_folder(folder / "images", classes=2, per_class=(good + 1) // 2)
    extra = sorted((images / "class1").glob("*.png"))[good // 2 :]
    for path in extra:
        path.unlink()
    write_bad(images / "class0" / bad_name)
    return images


# ---------------------------------------------------------------- the cases
CASES: list[tuple[str, str, str, Callable]] = []


def case(group: int, case_id: str, title: str):
    def register(fn):
        CASES.append((case_id, GROUPS[group], title, fn))
        return fn

    return register


# --- Code execution from a weights file
@case(0, "det_pkl_payload", "Detectron2 `.pkl` weights carrying a pickled payload, given to `transfer_det.py`")
def _(ctx: Context, folder: Path):
    marker = folder / "marker"
    (folder / "moco_r50.pkl").write_bytes(pickle.dumps({"model": {"w": Payload(marker)}, "__author__": "MOCO"}))
    run = ctx.run(
        "transfer_det.py", "--config", ctx.config("det/trees_R_18_C4_demo.yaml"), "--weights", folder / "moco_r50.pkl",
        "--output-dir", folder / "out", "--data-root", ctx.fixtures / "det_data", "SOLVER.MAX_ITER", "2",
        "SOLVER.STEPS", "(1,)", "SOLVER.WARMUP_ITERS", "1", "TEST.EVAL_PERIOD", "0", cwd=folder,
    )  # fmt: skip
    return run, f"{marker_check(marker)}; output folder {'written' if (folder / 'out').exists() else 'not written'}"


@case(0, "cifar_payload", "A CIFAR batch file carrying a pickled payload, read by `transfer_cls.py`")
def _(ctx: Context, folder: Path):
    marker, root = folder / "marker", folder / "data" / "cifar-10-batches-py"
    root.mkdir(parents=True)
    (root / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"cat", b"dog"], b"num_vis": 3072}))
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (root / name).write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}))
    (root / "data_batch_1").write_bytes(pickle.dumps({b"data": Payload(marker), b"labels": [0, 1]}))
    run = ctx.run(
        "transfer_cls.py", "--config", ctx.config("transfer/cls/linear.yaml"), "model.weights=random",
        "model.arch=resnet18", "data.name=cifar10", f"data.root={folder / 'data'}", f"output_dir={folder / 'out'}",
        "features.cache_dir=null", cwd=folder,
    )  # fmt: skip
    return run, marker_check(marker)


@case(0, "pth_payload", "(control, said to hold) a `.pth` teacher carrying a pickled payload, to `distill.py`")
def _(ctx: Context, folder: Path):
    import torch

    marker = folder / "marker"
    torch.save({"state_dict": {}, "recipe": Payload(marker)}, folder / "teacher.pth")
    run = ctx.distill(folder / "out", **{"teacher.weights": folder / "teacher.pth"})
    return run, marker_check(marker)


# --- Data lost
@case(1, "two_compares", "Two comparisons on one output folder at once (a second terminal; a 16-step distillation)")
def _(ctx: Context, folder: Path):
    steps = {"optim.epochs": 16, "train.max_steps": 16, "train.output_dir": None}  # long enough to overlap
    overrides = ctx.distill_args(Path("unused"), **steps)[2:]
    config = folder / "compare.yaml"
    config.write_text(
        json.dumps(
            {
                "_base_": str(ctx.config("compare/demo.yaml")),
                "output_dir": str(folder / "out"),
                "distill": {
                    "config": str(ctx.config("distill/base.yaml")),
                    "overrides": overrides,
                    "strategies": ["seed"],
                    "seeds": 1,
                },
                "student_arch": "mobilenet_v3_small",
                "rows": {"random": False, "pixels": False, "teacher": None},
                "cls": {
                    "config": str(ctx.config("transfer/cls/digits_demo.yaml")),
                    "overrides": [
                        "features.resize=16",
                        "features.crop=16",
                        "linear.num_c=2",
                        "linear.n_jobs=1",
                        "linear.max_iter=50",
                        "features.cache_dir=null",
                    ],
                },  # fmt: skip
                "det": {"enabled": False},
                "seg": {"enabled": False},
            }
        )
    )
    first = ctx.popen("compare.py", "--config", config, cwd=folder, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((folder / "out").rglob("metrics.csv")) and first.poll() is None:
        time.sleep(0.5)
    second = ctx.run("compare.py", "--config", config, cwd=folder, timeout=TIMEOUT_S)
    try:
        first_out, first_err = first.communicate(timeout=2 * TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(first.pid, signal.SIGKILL)
        first_out, first_err = first.communicate()
    first_run = Run(first.returncode, first_out, first_err, 0)
    later = ctx.run("compare.py", "--config", config, cwd=folder, timeout=TIMEOUT_S)
    check = (
        f"first run: {first_run.status()}; {metrics_summary(folder / 'out')}; "
        f"a third run afterwards: {later.status()} `{shorten(later.last, 80)}`"
    )
    return second, "second run (shown): " + check


@case(1, "convert_in_eq_out", "`convert_to_d2.py student.pth student.pth` (output = input)")
def _(ctx: Context, folder: Path):
    import torch
    import torchvision

    student = folder / "student.pth"  # a ResNet (what convert_to_d2 converts), as a plain state dict
    torch.save({"state_dict": torchvision.models.resnet18().state_dict()}, student)
    before = sha(student)
    run = ctx.run("convert_to_d2.py", student, student, "--arch", "resnet18", cwd=folder)
    return run, "**student replaced**" if sha(student) != before else "student unchanged"


@case(1, "rerun_without_resume", "The same distillation command again without `--resume` on a folder with a checkpoint")
def _(ctx: Context, folder: Path):
    out = ctx.copy_base_run(folder)
    before = sha(out / "checkpoint.pth")
    run = ctx.distill(out, **{"train.max_steps": 2})
    replaced = sha(out / "checkpoint.pth") != before
    return run, (
        f"checkpoint {'**replaced** (started over' if replaced else 'kept (step'} "
        f"{'from step 1)' if replaced else checkpoint_step(out / 'checkpoint.pth') + ')'}; {metrics_summary(out)}"
    )


# --- A long run that dies hours in
def _bad_image_case(ctx: Context, folder: Path, name: str, write_bad: Callable[[Path], None]):
    images = folder_with(ctx, folder, name, write_bad)
    out = folder / "out"
    run = ctx.distill(out, images=images, **{"optim.epochs": 2})
    named = "the file named in stderr" if name in run.stderr else "the file not named"
    student = "student written" if (out / "student.pth").is_file() else "no student"
    return run, f"{named}; {student}; checkpoint step {checkpoint_step(out / 'checkpoint.pth')} of 6"


@case(2, "truncated_jpeg", "One truncated JPEG among 12 images (2 epochs of 3 steps)")
def _(ctx, folder):
    def write(path):
        rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(path, quality=95)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return _bad_image_case(ctx, folder, "truncated.jpg", write)


@case(2, "empty_file", "One 0-byte `.jpg` among 12 images")
def _(ctx, folder):
    return _bad_image_case(ctx, folder, "empty.jpg", lambda path: path.write_bytes(b""))


@case(2, "bomb_png", "A decompression-bomb PNG (declares 20000 x 20000 = 400 MP) among 12 images")
def _(ctx, folder):
    return _bad_image_case(ctx, folder, "bomb.png", lambda path: png_header_only(path, 20000, 20000))


def _bad_value_case(ctx: Context, folder: Path, **overrides):
    out = folder / "out"
    run = ctx.distill(out, **{"train.max_steps": 2, **overrides})
    written = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    return run, f"output folder: {', '.join(written) if written else 'not written'}"


@case(
    2, "d2_truncated_tile", "A truncated JPEG among the tree tiles' test images, Detectron2 engine (`transfer_det.py`)"
)
def _(ctx, folder):
    tiles = folder / "det_data" / "tree_tiles"
    built = ctx.python(
        f"from seed_transfer.detection.tree_tiles import build_tree_tiles; build_tree_tiles({str(tiles)!r})", folder
    )
    if built.rc != 0:
        raise CaseError(f"the tree tiles could not be built ({built.status()}: {shorten(built.last, 80)})")
    tile = sorted((tiles / "test").glob("*.jpg"))[0]
    tile.write_bytes(tile.read_bytes()[: tile.stat().st_size // 2])  # the header intact: only decoding finds it
    run = ctx.run(
        "transfer_det.py", "--config", ctx.config("det/trees_R_18_C4_demo.yaml"), "--weights", "random",
        "--output-dir", folder / "out", "--data-root", folder / "det_data", "SOLVER.MAX_ITER", "2",
        "SOLVER.STEPS", "(1,)", "SOLVER.WARMUP_ITERS", "1", "TEST.EVAL_PERIOD", "0", cwd=folder,
    )  # fmt: skip
    named = "the file named" if tile.name in run.stderr else "the file not named"
    return run, f"{named} in stderr"


@case(2, "base_lr_nan", "`optim.base_lr=nan`")
def _(ctx, folder):
    return _bad_value_case(ctx, folder, **{"optim.base_lr": "nan"})


@case(2, "base_lr_inf", "`optim.base_lr=inf`")
def _(ctx, folder):
    return _bad_value_case(ctx, folder, **{"optim.base_lr": "inf"})


@case(2, "tau_student_nan", "`distill.tau_student=nan`")
def _(ctx, folder):
    return _bad_value_case(ctx, folder, **{"distill.tau_student": "nan"})


# --- Silently wrong
@case(3, "yaml_duplicate_key", "A YAML with a duplicated key (`tau_teacher: 1.0e-4`, then `tau_teacher: 0.01`)")
def _(ctx, folder):
    config = folder / "mine.yaml"
    config.write_text(
        f"_base_: {ctx.config('distill/base.yaml')}\ndistill:\n  tau_teacher: 1.0e-4\n  tau_teacher: 0.01\n"
    )
    out = folder / "out"
    run = ctx.distill(out, **{"config": config, "train.max_steps": 1})
    used = "no run"
    if (out / "config.yaml").is_file():
        import yaml

        used = f"the run used tau_teacher={yaml.safe_load((out / 'config.yaml').read_text())['distill']['tau_teacher']}"
    return run, used


def _steps_case(ctx: Context, folder: Path, **overrides):
    out = folder / "out"
    run = ctx.distill(out, **overrides)
    student = "student exported" if (out / "student.pth").is_file() else "no student"
    return run, f"checkpoint step {checkpoint_step(out / 'checkpoint.pth')} (a full epoch: 3); {student}"


@case(3, "max_steps_0", "`train.max_steps=0`")
def _(ctx, folder):
    return _steps_case(ctx, folder, **{"train.max_steps": 0})


@case(3, "max_steps_neg", "`train.max_steps=-3`")
def _(ctx, folder):
    return _steps_case(ctx, folder, **{"train.max_steps": -3})


@case(3, "warmup_neg", "`optim.warmup_epochs=-1`")
def _(ctx, folder):
    return _steps_case(ctx, folder, **{"optim.warmup_epochs": -1, "train.max_steps": 2})


@case(3, "tau_teacher_inf", "`distill.tau_teacher=inf`")
def _(ctx, folder):
    return _steps_case(ctx, folder, **{"distill.tau_teacher": "inf", "train.max_steps": 2})


@case(3, "symlink_loop", "A symbolic link loop in the data folder (`class0/loop -> ..`; 12 images on disk)")
def _(ctx, folder):
    images = make_image_folder(folder / "images", per_class=6)
    (images / "class0" / "loop").symlink_to("..")
    out = folder / "out"
    run = ctx.distill(out, images=images, **{"train.max_steps": 1})
    probe = ctx.python(
        f"from distill.data import build_source_dataset as b; print(len(b('imagefolder', {str(images)!r})))", folder
    )
    count = probe.stdout.strip() if probe.rc == 0 else f"none (the source refuses: '{shorten(probe.last, 80)}')"
    return run, f"images the data source lists: {count}"


@case(3, "resume_changed_images", "`--resume` after every image's pixels changed (same names and sizes)")
def _(ctx, folder):
    images, out = make_image_folder(folder / "images", per_class=6), folder / "out"
    first = ctx.distill(out, images=images, **{"train.max_steps": 2})
    if first.rc != 0:
        raise CaseError(f"the first 2 steps failed ({first.status()}: {shorten(first.last, 80)})")
    for path in sorted(images.rglob("*.png")):
        Image.fromarray(np.asarray(Image.open(path))[::-1].copy()).save(path)  # flipped: new content, same name
    run = ctx.distill(out, "--resume", images=images, **{"train.max_steps": 3})
    return run, f"checkpoint step {checkpoint_step(out / 'checkpoint.pth')} (3: resumed over the new pixels)"


def _replace_one_image(images: Path) -> None:
    """Other pixels (and another byte count) under the name of the first image."""
    Image.new("RGB", (40, 40), (200, 10, 10)).save(sorted(images.rglob("*.png"))[0])


@case(3, "teacher_cache_replaced_image", "A teacher cache read after one image was replaced under its name")
def _(ctx, folder):
    import torch

    images, cache = make_image_folder(folder / "images", per_class=6), folder / "cache"
    first = ctx.distill(folder / "a", images=images, **{"train.max_steps": 2, "teacher.cache_dir": cache})
    if first.rc != 0:
        raise CaseError(f"the first run failed ({first.status()}: {shorten(first.last, 80)})")
    _replace_one_image(images)
    run = ctx.distill(folder / "b", images=images, **{"train.max_steps": 2, "teacher.cache_dir": cache})
    student = folder / "b" / "student.pth"
    meta = torch.load(student, map_location="cpu", weights_only=False).get("meta", {}) if student.is_file() else {}
    mode = (meta.get("teacher_cache") or {}).get("mode", "none recorded")
    stale = " (**the old image's embeddings**)" if mode == "read" else ""
    return run, f"second run's teacher cache: {mode}{stale}"


@case(
    3, "features_replaced_image", "Frozen features read from the cache after a test image was replaced under its name"
)
def _(ctx, folder):
    data = folder / "data"
    make_image_folder(data / "train", classes=2, per_class=6, size=24)
    make_image_folder(data / "test", classes=2, per_class=3, size=24, seed=1)

    def transfer() -> Run:
        return ctx.run(
            "transfer_cls.py", "--config", ctx.config("transfer/cls/linear.yaml"), "model.weights=random",
            "model.arch=resnet18", "data.name=imagefolder", f"data.root={data}", f"output_dir={folder / 'out'}",
            f"features.cache_dir={folder / 'cache'}", "features.resize=32", "features.crop=32",
            "features.num_workers=0", "knn.k=3", "linear.num_c=3", cwd=folder,
        )  # fmt: skip

    first = transfer()
    if first.rc != 0:
        raise CaseError(f"the first transfer failed ({first.status()}: {shorten(first.last, 80)})")
    _replace_one_image(data / "test")
    run = transfer()
    results = sorted((folder / "out").glob("*.json"))
    cached = json.loads(results[0].read_text()).get("features_cached") if results else None
    stale = " (**the old image's features**)" if cached else ""
    return run, f"second run's features cached: {cached}{stale}"


_READERS = r"""
import json, sys, numpy as np
from pathlib import Path
from distill.data import build_source_dataset
root = Path(sys.argv[1])
means = {}
means["imagefolder"] = float(np.asarray(build_source_dataset("imagefolder", str(root / "folder"))[0]).mean())
means["filelist"] = float(np.asarray(build_source_dataset("filelist", str(root), str(root / "list.txt"))[0]).mean())
means["stamps"] = float(np.asarray(build_source_dataset("stamps", str(root / "stamps"))[0]).mean())
print(json.dumps(means))
"""


def _readers_case(ctx: Context, folder: Path, image: Image.Image, expected: str):
    for place in ("folder/class0", "stamps/animals"):
        (folder / place).mkdir(parents=True)
        image.save(folder / place / "img.png")
    (folder / "list.txt").write_text("folder/class0/img.png\n")
    script = folder / "readers.py"
    script.write_text(_READERS)
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script), str(folder)],
        cwd=folder,
        env=ctx.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    run = Run(done.returncode, done.stdout, done.stderr, time.monotonic() - start)
    if run.rc != 0:
        return run, "readers not run"
    means = json.loads(run.stdout.strip().splitlines()[-1])
    same = "**the readers differ**" if len({round(v, 3) for v in means.values()}) > 1 else "the same pixels everywhere"
    return run, f"mean pixel by reader: {', '.join(f'{k} {v:.1f}' for k, v in means.items())} ({expected}); {same}"


@case(
    3,
    "rgba_readers",
    "One transparent RGBA PNG (red stored under alpha 0) read by the image-folder, file-list and stamps readers",
)
def _(ctx, folder):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 255  # red everywhere
    rgba[:20, :, 3] = 255  # top half opaque red, bottom half transparent
    return _readers_case(ctx, folder, Image.fromarray(rgba, "RGBA"), "expected on white: 170")


@case(3, "png16_readers", "A 16-bit greyscale PNG (value 32125 of 65535) read by the three readers")
def _(ctx, folder):
    return _readers_case(ctx, folder, Image.fromarray(np.full((40, 40), 32125, np.uint16)), "expected about 125")


@case(3, "filelist_escape", "A file list with `../../etc/passwd`")
def _(ctx, folder):
    listing = folder / "list.txt"
    listing.write_text(
        "".join(f"{p.relative_to(ctx.images)}\n" for p in sorted(ctx.images.rglob("*.png"))) + "../../etc/passwd\n"
    )
    out = folder / "out"
    run = ctx.distill(out, **{"data.source": "filelist", "data.file_list": listing, "train.max_steps": 1})
    return run, "refused naming the line" if "passwd" in run.last and run.rc == 2 else "not refused up front"


# --- Tracebacks where one line is due
@case(4, "output_is_file", "`train.output_dir` is an existing file")
def _(ctx, folder):
    (folder / "out").write_text("not a folder\n")
    return ctx.distill(folder / "out", **{"train.max_steps": 1}), ""


@case(4, "output_unwritable", "`train.output_dir` cannot be created (`/sys/...`: EPERM; root ignores chmod)")
def _(ctx, folder):
    run = ctx.run("distill.py", *ctx.distill_args(Path("/sys/hostile_case_out"), **{"train.max_steps": 1}), cwd=folder)
    return run, ""


@case(4, "disk_full", "Disk full during a checkpoint (simulated: a 3 MB file-size limit, EFBIG, not ENOSPC)")
def _(ctx, folder):
    out = folder / "out"
    limit = 3 << 20

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    run = ctx.run("distill.py", *ctx.distill_args(out, **{"train.max_steps": 2}), cwd=folder, preexec_fn=small_files)
    left = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    return run, f"left in the folder: {', '.join(left) or 'nothing'}"


@case(4, "non_utf8_name", "An image whose file name is not UTF-8 (`b'\\xff\\xfe.png'`)")
def _(ctx, folder):
    images = make_image_folder(folder / "images", per_class=6)
    source = images / "class0" / "0.png"
    os.rename(source, os.fsencode(images / "class0") + b"/\xff\xfe.png")
    out = folder / "out"
    run = ctx.distill(out, images=images, **{"train.max_steps": 3})
    return run, f"checkpoint step {checkpoint_step(out / 'checkpoint.pth')}"


@case(4, "ctrl_c", "Ctrl-C (SIGINT) after the first checkpoint")
def _(ctx, folder):
    out = folder / "out"
    # SIGINT as a terminal delivers it: a shell starts background commands with SIGINT ignored, and
    # Python keeps an inherited SIG_IGN, so restore the default in the child whatever ran this script
    process = ctx.popen(
        "distill.py",
        *ctx.distill_args(out, **{"optim.epochs": 50}),
        cwd=folder,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None and not (out / "checkpoint.pth").is_file():
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    run = Run(process.returncode, stdout, stderr, 0)
    return run, f"checkpoint step {checkpoint_step(out / 'checkpoint.pth')} kept"


@case(4, "ctrl_c_d2", "Ctrl-C (SIGINT to the process group, as a terminal sends it) during a Detectron2 fine-tune")
def _(ctx, folder):
    seed = folder / "out" / "seed0"
    process = ctx.popen(
        "transfer_det.py", "--config", ctx.config("det/trees_R_18_C4_demo.yaml"), "--weights", "random",
        "--output-dir", folder / "out", "--data-root", ctx.fixtures / "det_data", "SOLVER.MAX_ITER", "400",
        "SOLVER.STEPS", "(300,)", "SOLVER.WARMUP_ITERS", "1", "SOLVER.CHECKPOINT_PERIOD", "2",
        "TEST.EVAL_PERIOD", "0", cwd=folder, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None and not (seed / "last_checkpoint").is_file():
        time.sleep(0.2)
    time.sleep(1.0)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    kept = sorted(p.name for p in seed.glob("model_*.pth")) if seed.is_dir() else []
    return Run(process.returncode, stdout, stderr, 0), f"checkpoints kept: {', '.join(kept) or 'none'}"


@case(4, "yaml_syntax", "A YAML syntax error in the config file")
def _(ctx, folder):
    config = folder / "mine.yaml"
    config.write_text(f"_base_: {ctx.config('distill/base.yaml')}\noptim:\n  epochs: [1\n")
    run = ctx.distill(folder / "out", **{"config": config})
    return run, "names the file" if str(config) in run.last else "does not name the file"


@case(4, "cache_meta_damaged", "A damaged teacher-cache `meta.json`")
def _(ctx, folder):
    cache = folder / "cache"
    filled = ctx.distill(folder / "fill", "--teacher-only", **{"teacher.cache_dir": cache})
    metas = sorted(cache.rglob("meta.json"))
    if filled.rc != 0 or not metas:
        raise CaseError(f"filling the cache failed ({filled.status()}: {shorten(filled.last, 80)})")
    metas[0].write_text('{"format": 1, "key": ')
    return ctx.distill(folder / "out", **{"teacher.cache_dir": cache, "train.max_steps": 1}), ""


@case(4, "student_to_resume", "An exported student given to `--resume` (as `checkpoint.pth`)")
def _(ctx, folder):
    out = ctx.copy_base_run(folder)
    shutil.copy(out / "student.pth", out / "checkpoint.pth")
    return ctx.distill(out, "--resume", **{"train.max_steps": 3}), ""


def _library_error_case(ctx, folder, **overrides):
    out = folder / "out"
    run = ctx.distill(out, **{"train.max_steps": 2, **overrides})
    return run, "output folder written" if out.exists() else "nothing written"


@case(4, "checkpoint_every_0", "`train.checkpoint_every=0`")
def _(ctx, folder):
    return _library_error_case(ctx, folder, **{"train.checkpoint_every": 0})


@case(4, "log_every_0", "`train.log_every=0`")
def _(ctx, folder):
    return _library_error_case(ctx, folder, **{"train.log_every": 0})


@case(4, "momentum_neg", "`optim.momentum=-1`")
def _(ctx, folder):
    return _library_error_case(ctx, folder, **{"optim.momentum": -1})


@case(4, "num_workers_neg", "`data.num_workers=-1`")
def _(ctx, folder):
    return _library_error_case(ctx, folder, **{"data.num_workers": -1})


@case(4, "embed_dim_0", "`student.embed_dim=0` (strategy moco, where the student's head size is the embedding)")
def _(ctx, folder):
    return _library_error_case(ctx, folder, **{"student.embed_dim": 0, "distill.strategy": "moco"})


@case(4, "edited_checkpoint", "A hand-edited checkpoint: one student tensor of another shape (`--resume`)")
def _(ctx, folder):
    import torch

    out = ctx.copy_base_run(folder)
    checkpoint = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)
    key = next(
        k for k in checkpoint["model"] if k.startswith("student.backbone.") and checkpoint["model"][k].dim() == 4
    )
    checkpoint["model"][key] = checkpoint["model"][key][:, :, :1, :1].clone()
    torch.save(checkpoint, out / "checkpoint.pth")
    run = ctx.distill(out, "--resume", **{"train.max_steps": 3})
    blames = "**blames the teacher's embedding size**" if "embedding size" in run.last else "does not blame the teacher"
    named = "names the tensor" if key in run.last else "does not name the tensor"
    return run, f"{blames}; {named}"


@case(4, "nan_loss_message", "A loss that becomes NaN before any checkpoint (`optim.base_lr=1e30`; before: `nan`)")
def _(ctx, folder):
    out = folder / "out"
    run = ctx.distill(out, **{"optim.base_lr": "1e30", "train.max_steps": 3, "train.checkpoint_every": 1000})
    if run.rc == 0:
        run = ctx.distill(
            folder / "out_nan", **{"optim.base_lr": "nan", "train.max_steps": 3, "train.checkpoint_every": 1000}
        )
        out = folder / "out_nan"
    says = (
        "points to a last good checkpoint"
        if "last good checkpoint is" in run.last
        else "says none was written"
        if "no checkpoint" in run.last
        else "names no checkpoint"
    )
    exists = "one exists" if (out / "checkpoint.pth").is_file() else "none exists"
    return run, f"{says}; {exists}"


@case(
    4,
    "unsafe_hint_transfer_cls",
    "An unsafe-pickle refusal in `transfer_cls.py` (a `.pth` with a payload as `model.weights`)",
)
def _(ctx, folder):
    import torch

    marker = folder / "marker"
    torch.save({"state_dict": {}, "recipe": Payload(marker)}, folder / "weights.pth")
    run = ctx.run(
        "transfer_cls.py", "--config", ctx.config("transfer/cls/digits_demo.yaml"), f"model.weights={folder / 'weights.pth'}",
        "model.arch=resnet18", f"output_dir={folder / 'out'}", "features.cache_dir=null", cwd=folder,
    )  # fmt: skip
    return run, _hint(run, "model.allow_unsafe_pickle")


@case(4, "unsafe_hint_convert", "An unsafe-pickle refusal in `convert_to_d2.py` (a `.pth` with a payload)")
def _(ctx, folder):
    import torch

    marker = folder / "marker"
    torch.save({"state_dict": {}, "recipe": Payload(marker)}, folder / "weights.pth")
    run = ctx.run("convert_to_d2.py", folder / "weights.pth", folder / "out.pkl", cwd=folder)
    return run, _hint(run, "--allow-unsafe-pickle")


def _hint(run: Run, right: str) -> str:
    if "teacher.allow_unsafe_pickle" in run.last:
        return "**suggests teacher.allow_unsafe_pickle** (no such key here)"
    return f"suggests {right}" if right in run.last else "suggests no key"


@case(4, "missing_base", "A missing `_base_` file")
def _(ctx, folder):
    config = folder / "mine.yaml"
    config.write_text("_base_: nowhere/base.yaml\noptim:\n  epochs: 1\n")
    run = ctx.distill(folder / "out", **{"config": config})
    both = str(config) in run.last and "base.yaml" in run.last
    return run, "names both files" if both else "does not name the file that asks for it"


# ---------------------------------------------------------------- driver
def run_cases(tree: Path, only: list[str] | None, commit: str | None = None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="hostile_cases_"))
    ctx = Context(tree, work)
    rows = []
    try:
        for case_id, group, title, fn in CASES:
            if only and case_id not in only:
                continue
            row = Row(case_id, group, title)
            start = time.monotonic()
            try:
                run, check = fn(ctx, ctx.folder(case_id))
                row.rc, row.traceback, row.last, row.check = run.rc, run.traceback, run.last, check
            except CaseError as err:
                row.error = str(err)
            except Exception as err:  # noqa: BLE001 - a measurement: the row says what broke
                row.error = f"the case's set-up failed: {type(err).__name__}: {err}"
            row.seconds = round(time.monotonic() - start, 1)
            print(f"[{row.seconds:6.1f} s] {case_id}: {row.cell()}", file=sys.stderr, flush=True)
            rows.append(asdict(row))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "tree": str(tree.resolve()),
        "commit": commit or _commit(tree),
        "date": _now(),
        "machine": _machine(),
        "rows": rows,
    }


def _commit(tree: Path) -> str:
    def git(*args):
        return subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end"


NOTES = [  # how to read some rows (what the measurement can and cannot show)
    "Disk full is simulated with a file-size limit (RLIMIT_FSIZE: the write fails with EFBIG, the disk still has "
    "room), since mounting a small filesystem is not permitted on the measuring machine. The row shows the EFBIG "
    "path, which seed_core/atomic.py names as the file-size limit; ENOSPC (a full disk) goes through the same "
    "one-line path and is tested in tests/seed_core (simulated), not measured here.",
    "The unwritable output folder is a path under /sys (EPERM): the measuring user is root, whom chmod does not stop.",
    "The two image-reader rows call the tree's data sources (distill.data.build_source_dataset) in a subprocess: "
    "the command line prints no pixels.",
    "Two comparisons at once: whether the second run overlaps the first's distillation depends on timing; the row "
    "gives what this machine did (the second run starts when the first's metrics.csv appears).",
]


def _updates(result: dict) -> str:
    """``; rows a, b re-run at <commit> (<date>, <machine>)`` for each ``--update`` of the file."""
    return "".join(
        f"; rows {', '.join(u['cases'])} re-run at {u['commit']} ({u['date']}, {u['machine']})"
        for u in result.get("updates", [])
    )


def write_table(before: dict, after: dict, command: str) -> str:
    rows_after = {row["id"]: row for row in after["rows"]}
    titles = {case_id: title for case_id, _, title, _ in CASES}  # today's wording of each case
    lines = [
        "# Issue 27's hostile cases, before and after",
        "",
        "Each row: one case of the issue's lists, run as a user would (the tool's command line, tiny sizes) "
        "on the tree before the issue's work and on the tree after it. A cell: the exit status, whether a "
        "traceback was printed, the last line of stderr (shortened), then the case's own check.",
        "",
        f"- before: `{before['tree']}` at {before['commit']} ({before['date']}){_updates(before)}",
        f"- after: `{after['tree']}` at {after['commit']} ({after['date']}){_updates(after)}",
        f"- machine: {after['machine']} (before: {before['machine']})",
        f"- command: `{command}`",
        "",
    ]
    for group in GROUPS:
        rows = [row for row in before["rows"] if row["group"] == group]
        if not rows:
            continue
        lines += [f"## {group}", "", "| case | before | after |", "|---|---|---|"]
        for row in rows:
            other = rows_after.get(row["id"])
            cells = [titles.get(row["id"], row["case"]), Row(**row).cell(), Row(**other).cell() if other else "not run"]
            lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
        lines.append("")
    return "\n".join([*lines, "## Notes", "", *(f"- {note}" for note in NOTES)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the cases on one tree, write a JSON file of rows")
    run.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--only", nargs="*", default=None, help="case ids (default: every case)")
    run.add_argument("--update", action="store_true", help="replace these cases' rows in an existing --out file")
    run.add_argument("--commit", help="the tree's commit, for a tree that is no git checkout (e.g. a git archive)")
    sub.add_parser("list", help="the case ids")
    table = sub.add_parser("table", help="the markdown table of two JSON files (before, after)")
    table.add_argument("before", type=Path)
    table.add_argument("after", type=Path)
    table.add_argument("--write", type=Path, default=None, help="the markdown file (default: stdout)")
    table.add_argument("--run-command", default="python benchmarks/hostile_cases.py run --tree <tree> --out <json>")
    args = parser.parse_args(argv)
    if args.command == "list":
        print("\n".join(f"{case_id}: {title}" for case_id, _, title, _ in CASES))
        return 0
    if args.command == "run":
        result = run_cases(args.tree, args.only, args.commit)
        if args.update and args.out.is_file():  # the file keeps its header; the update is recorded beside it
            earlier = json.loads(args.out.read_text())
            rows = {row["id"]: row for row in earlier["rows"]}
            rows.update({row["id"]: row for row in result["rows"]})
            update = {k: result[k] for k in ("commit", "date", "machine")} | {
                "cases": [r["id"] for r in result["rows"]]
            }
            result = earlier | {"updates": [*earlier.get("updates", []), update]}
            result["rows"] = [rows[case_id] for case_id, *_ in CASES if case_id in rows]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
        return 0
    text = write_table(json.loads(args.before.read_text()), json.loads(args.after.read_text()), args.run_command)
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
