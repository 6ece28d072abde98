"""Run the golden comparison preset into a folder and return its results.csv, with the
folder's own path replaced by ``<output_dir>`` (the weights column names files under it)."""

from pathlib import Path

import torch

from distill.config import load_config
from seed_transfer.pipelines.compare import CompareConfig, run_compare

HERE = Path(__file__).resolve().parent
PRESET = HERE / "compare_tiny.yaml"
EXPECTED = HERE / "compare_tiny_results.csv"


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
