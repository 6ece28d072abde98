import pytest
import torch

from seed_core.config import ConfigError
from seed_core.runtime.precision import cpu_has_bf16_units, resolve_precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    "device,amp,amp_dtype,cpu_bf16,dtype,channels_last",
    [
        (CUDA, True, "auto", False, torch.float16, True),  # MoCo's recipe, as before
        (CUDA, True, "bf16", False, torch.bfloat16, True),
        (CUDA, False, "auto", False, None, True),  # layout as configured, float32
        (CPU, True, "auto", True, torch.bfloat16, True),  # a CPU with bf16 units
        (CPU, True, "auto", False, None, False),  # without: bf16 is emulated and slower
        (CPU, True, "bf16", False, torch.bfloat16, True),  # forced
        (CPU, False, "bf16", True, None, False),  # amp=false wins
    ],
)
def test_the_rule(device, amp, amp_dtype, cpu_bf16, dtype, channels_last):
    precision = resolve_precision(device, amp, amp_dtype, channels_last=True, cpu_bf16=cpu_bf16)
    assert (precision.dtype, precision.channels_last) == (dtype, channels_last)
    assert precision.needs_scaler == (dtype == torch.float16)


def test_channels_last_off_stays_off():
    assert not resolve_precision(CPU, True, "bf16", channels_last=False).channels_last
    assert not resolve_precision(CUDA, True, "auto", channels_last=False).channels_last


def test_fp16_on_the_cpu_and_unknown_dtypes_are_refused():
    with pytest.raises(ConfigError, match="amp_dtype=fp16 on the CPU.*bf16"):
        resolve_precision(CPU, True, "fp16")
    with pytest.raises(ConfigError, match="amp_dtype='float8'.*auto, fp16, bf16"):
        resolve_precision(CPU, True, "float8")


def test_bf16_units_are_read_from_the_cpu_flags(tmp_path):
    def cpuinfo(flags):
        path = tmp_path / "cpuinfo"
        path.write_text(f"processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\n")
        return path

    assert cpu_has_bf16_units(cpuinfo("avx2 avx512f avx512_bf16"))
    assert cpu_has_bf16_units(cpuinfo("avx512f amx_tile amx_bf16"))
    assert not cpu_has_bf16_units(cpuinfo("avx2 fma"))
    assert not cpu_has_bf16_units(tmp_path / "missing")


def test_autocast_runs_the_chosen_dtype_on_the_cpu():
    layer = torch.nn.Linear(4, 3)
    with resolve_precision(CPU, True, "bf16").autocast():
        assert layer(torch.randn(2, 4)).dtype == torch.bfloat16
    with resolve_precision(CPU, False).autocast():
        assert layer(torch.randn(2, 4)).dtype == torch.float32
