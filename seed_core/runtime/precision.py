"""The arithmetic and memory layout of a training step: float32, or autocast to fp16 / bf16, and
channels_last, chosen per device by a documented rule (``train.amp``, ``train.amp_dtype``,
``train.channels_last``).

The rule, from measurements (issue 31, docs/benchmarks.md):
- **CUDA**: ``amp_dtype=auto`` is fp16 autocast with a GradScaler (MoCo's and SEED's recipe);
  ``bf16`` needs no scaler (Ampere and newer). channels_last as configured (default on).
- **CPU**: ``auto`` is bf16 autocast only on a CPU with bf16 units (``avx512_bf16`` or ``amx_bf16``
  among /proc/cpuinfo's flags): there it measured 1.44x on the student step and 1.65x on the
  teacher forward (Intel Xeon with AMX, 2 threads); without those units bf16 is emulated and slower,
  so ``auto`` stays in float32. ``bf16`` forces it (tests, or to measure your CPU). channels_last
  only together with bf16: in float32 it was slower on the CPU (0.350 -> 0.388 s a step).
- fp16 autocast on the CPU is refused: no CPU runs it faster than bf16, and it needs a scaler.

The losses run in float32 whatever this says (``distill/losses``: the logits leave autocast).
"""

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import torch

from seed_core.config import ConfigError

AMP_DTYPES = ("auto", "fp16", "bf16")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def cpu_has_bf16_units(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU lists native bf16 instructions among its flags (Linux; False elsewhere)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(flag in flags for flag in BF16_CPU_FLAGS)


@dataclass(frozen=True)
class Precision:
    """What a step runs in on ``device_type``: ``dtype`` is the autocast dtype (None: float32)."""

    device_type: str
    dtype: torch.dtype | None
    channels_last: bool

    @property
    def needs_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has float32's range."""
        return self.dtype == torch.float16

    def layout(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` (N x C x H x W) in this step's memory layout."""
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def autocast(self) -> AbstractContextManager:
        return torch.autocast(self.device_type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    def describe(self) -> str:
        arithmetic = {None: "float32", torch.float16: "fp16 autocast", torch.bfloat16: "bf16 autocast"}[self.dtype]
        return f"{arithmetic}{', channels_last' if self.channels_last else ''} on {self.device_type}"


def check_amp_dtype(amp_dtype: str) -> None:
    if amp_dtype not in AMP_DTYPES:
        raise ConfigError(f"train.amp_dtype={amp_dtype!r}: choose one of {', '.join(AMP_DTYPES)}")


def resolve_precision(
    device: torch.device,
    amp: bool,
    amp_dtype: str = "auto",
    channels_last: bool = True,
    cpu_bf16: bool | None = None,
) -> Precision:
    """The rule of the module docstring. ``cpu_bf16``: whether the CPU has bf16 units (default:
    :func:`cpu_has_bf16_units`)."""
    check_amp_dtype(amp_dtype)
    if device.type == "cuda":
        dtype = _DTYPES["fp16" if amp_dtype == "auto" else amp_dtype] if amp else None
        return Precision("cuda", dtype, channels_last)
    if amp and amp_dtype == "fp16":
        raise ConfigError(
            "train.amp_dtype=fp16 on the CPU: fp16 autocast is for CUDA; use train.amp_dtype=bf16 "
            "(fast on CPUs with bf16 units), auto, or train.amp=false"
        )
    # on the CPU, autocast means bf16: asked for, or picked by auto where the CPU has bf16 units
    bf16 = amp and (amp_dtype == "bf16" or (cpu_has_bf16_units() if cpu_bf16 is None else cpu_bf16))
    return Precision(device.type, torch.bfloat16 if bf16 else None, channels_last and bf16)
