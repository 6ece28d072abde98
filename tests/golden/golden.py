"""Run the golden comparison preset into a folder and return its results.csv, with the
folder's own path replaced by ``<output_dir>`` (the weights column names files under it).

CPU arithmetic differs between CPU kinds (MKL, oneDNN and ATen pick other kernels for another
vendor or instruction set), so there is one committed results.csv per kind (:data:`GOLDEN`): a
fresh clone on a kind listed there must reproduce its file byte for byte."""

import platform
from pathlib import Path

import torch

from seed_core.config import load_config
from seed_transfer.pipelines.compare import CompareConfig, run_compare

HERE = Path(__file__).resolve().parent
PRESET = HERE / "compare_tiny.yaml"

# file -> the CPU kind it was produced on (the keys of cpu_kind() that were recorded)
GOLDEN = {
    "compare_tiny_results_amd_avx2.csv": {"vendor": "AuthenticAMD", "capability": "AVX2"},
}
# Files of CPU kinds that no machine here could regenerate after a change meant to move numbers: the
# Intel Xeon file (sessions up to 2026-12-03) predates the member-level rule of 2026-12-07, which
# fine-tunes random init's second member and tests differences over members. Its other cells still
# tell the cross-kind story (test_golden_compare); on an Intel machine, regenerate.py writes the new one.
HISTORICAL = ("compare_tiny_results_intel_before_member_rule.csv",)


def cpu_kind() -> dict[str, str]:
    """This machine's CPU vendor and the instruction set torch's CPU kernels dispatch to."""
    vendor = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        vendor = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.open() if ln.startswith("vendor_id")), vendor)
    return {"vendor": vendor, "capability": torch.backends.cpu.get_cpu_capability()}


def expected_file(kind: dict[str, str] | None = None) -> Path | None:
    """The committed results.csv of this CPU kind (every recorded key matches), or None."""
    kind = kind or cpu_kind()
    for name, recorded in GOLDEN.items():
        if all(kind.get(key) == value for key, value in recorded.items()):
            return HERE / name
    return None


# CPU arithmetic depends on torch's thread count: the committed file was produced on 2 threads, so
# the run is pinned to 2 whatever the machine's core count (another CPU family may still differ).
THREADS = 2


def golden_results(output_dir: Path, datasets: Path) -> str:
    cfg = load_config(CompareConfig, PRESET, [f"output_dir={output_dir}", f"det.data_root={datasets}"])
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        run_compare(cfg, command="python tests/golden/regenerate.py")
    finally:
        torch.set_num_threads(threads)
    return (output_dir / "results.csv").read_text().replace(str(output_dir), "<output_dir>")
