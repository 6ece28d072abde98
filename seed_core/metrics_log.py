"""Training logs a user can plot: ``metrics.csv`` (one row per logged step) and TensorBoard."""

import csv
import io
from pathlib import Path

from .atomic import atomic_save


class MetricsLog:
    """Append rows of scalars to ``<dir>/metrics.csv`` and, if enabled, TensorBoard ``<dir>/tb``.

    A row's columns are fixed by the first row of the file. ``resume_step`` is the step a run
    continues from (0 for a fresh start): the rows logged after it by an interrupted run are
    removed from the CSV and hidden from TensorBoard, so they are not there twice once the
    resumed run logs those steps again. None keeps the files as they are.
    """

    def __init__(self, output_dir: str | Path, tensorboard: bool = True, resume_step: int | None = None):
        self.csv_path = Path(output_dir) / "metrics.csv"
        self._fields: list[str] | None = None
        if resume_step is not None:
            self.truncate_after(resume_step)
        if self.csv_path.exists():
            with self.csv_path.open(newline="") as f:
                self._fields = next(csv.reader(f), None)
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: TensorBoard hides the events at steps >= it from earlier runs.
            purge = None if resume_step is None else resume_step + 1
            self._tb = SummaryWriter(str(Path(output_dir) / "tb"), purge_step=purge)

    def truncate_after(self, step: int) -> None:
        """Keep the rows of ``metrics.csv`` up to ``step`` (inclusive), atomically; the file is
        removed when none is left, so that the next row writes a fresh header."""
        if not self.csv_path.exists():
            return
        with self.csv_path.open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            rows = [row for row in reader if row and self._step_of(row, header) <= step]
        if not rows:
            self.csv_path.unlink()
            self._fields = None
            return
        text = io.StringIO()
        csv.writer(text, lineterminator="\r\n").writerows([header, *rows])  # DictWriter's default line ends
        atomic_save(text.getvalue(), self.csv_path, dump=lambda s, f: f.write(s.encode()))

    def _step_of(self, row: list[str], header: list[str]) -> int:
        try:
            return int(row[header.index("step")])
        except (ValueError, IndexError) as err:
            raise ValueError(
                f"{self.csv_path}: cannot read the step of the row {row} ({err}); move the file away to start a new log"
            ) from None

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
