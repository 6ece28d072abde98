"""Training logs a user can plot: ``metrics.csv`` (one row per logged step) and TensorBoard."""

import csv
from pathlib import Path


class MetricsLog:
    """Append rows of scalars to ``<dir>/metrics.csv`` and, if enabled, TensorBoard ``<dir>/tb``.

    The CSV is appended to on resume; a row's columns are fixed by the first row.
    """

    def __init__(self, output_dir: str | Path, tensorboard: bool = True):
        self.csv_path = Path(output_dir) / "metrics.csv"
        self._fields: list[str] | None = None
        if self.csv_path.exists():
            with self.csv_path.open() as f:
                self._fields = next(csv.reader(f), None)
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(Path(output_dir) / "tb"))

    def log(self, step: int, scalars: dict[str, float]) -> None:
        row = {"step": step, **scalars}
        new_file = self._fields is None
        if new_file:
            self._fields = list(row)
        with self.csv_path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._fields, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(row)
        if self._tb is not None:
            for name, value in scalars.items():
                self._tb.add_scalar(name, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
