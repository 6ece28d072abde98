"""seed_core.metrics_log: a resumed run logs each step once."""

import csv

import pytest

from seed_core.metrics_log import MetricsLog


def steps(path) -> list[int]:
    with path.open(newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def logged_run(out, steps_to_log, resume_step=None, **columns):
    log = MetricsLog(out, tensorboard=False, resume_step=resume_step)
    for step in steps_to_log:
        log.log(step, {"loss": 1.0 / step, **columns})
    log.close()


def test_resume_drops_the_rows_logged_after_the_checkpoint(tmp_path):
    logged_run(tmp_path, range(1, 7))  # killed after step 6; its last checkpoint was at step 4
    logged_run(tmp_path, range(5, 9), resume_step=4)
    assert steps(tmp_path / "metrics.csv") == list(range(1, 9))
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open(newline="")))
    assert rows[3]["loss"] == str(1 / 4) and rows[0].keys() == {"step", "loss"}


def test_resume_step_none_appends_and_zero_starts_a_new_file(tmp_path):
    logged_run(tmp_path, [1, 2])
    logged_run(tmp_path, [3])
    assert steps(tmp_path / "metrics.csv") == [1, 2, 3]
    logged_run(tmp_path, [1], resume_step=0, lr=0.1)  # a fresh start in the same folder: new columns
    assert (tmp_path / "metrics.csv").read_text().splitlines() == ["step,loss,lr", "1,1.0,0.1"]


def test_truncate_after_keeps_the_header_and_the_line_endings(tmp_path):
    logged_run(tmp_path, [10, 20, 30])
    before = (tmp_path / "metrics.csv").read_bytes()
    MetricsLog(tmp_path, tensorboard=False).truncate_after(20)
    assert (tmp_path / "metrics.csv").read_bytes() == before.rsplit(b"30,", 1)[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]  # rewritten atomically


def test_a_log_without_steps_is_refused_with_its_path(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,loss\n1,0.5\n")
    with pytest.raises(ValueError, match=r"metrics.csv: cannot read the step .*move the file away"):
        MetricsLog(tmp_path, tensorboard=False, resume_step=3)
