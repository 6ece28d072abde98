"""Run the golden comparison preset into a folder and return its results.csv, with the
folder's own path replaced by ``<output_dir>`` (the weights column names files under it)."""

from pathlib import Path

from distill.config import load_config
from seed_transfer.pipelines.compare import CompareConfig, run_compare

HERE = Path(__file__).resolve().parent
PRESET = HERE / "compare_tiny.yaml"
EXPECTED = HERE / "compare_tiny_results.csv"


def golden_results(output_dir: Path, datasets: Path) -> str:
    cfg = load_config(CompareConfig, PRESET, [f"output_dir={output_dir}", f"det.data_root={datasets}"])
    run_compare(cfg, command="python tests/golden/regenerate.py")
    return (output_dir / "results.csv").read_text().replace(str(output_dir), "<output_dir>")
