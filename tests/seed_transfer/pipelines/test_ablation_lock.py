"""The ablation's output folder has one writer, as the comparison's: a second invocation on it stops
with one line naming the holder, before it writes anything; a file in its place is one line too."""

import json
import os
import socket
from pathlib import Path

import pytest

from seed_core.config import load_config
from seed_core.run_lock import LOCK_NAME, FolderInUse
from seed_core.runtime import FolderNotWritable
from seed_transfer.pipelines.ablation import AblationConfig, run_ablation
from seed_transfer.pipelines.ablation.run import ablation_lock

DEMO = Path(__file__).resolve().parents[3] / "configs/ablation/demo.yaml"


def test_a_second_ablation_on_the_folder_stops_naming_the_holder(tmp_path):
    out = tmp_path / "ablation"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "tool": "ablation"}))
    cfg = load_config(AblationConfig, DEMO, [f"output_dir={out}"])
    with pytest.raises(FolderInUse, match=f"is in use by ablation \\(process {os.getpid()} on"):
        run_ablation(cfg)
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written


def test_the_lock_is_held_while_the_ablation_writes_and_reentrant_for_its_report_pass(tmp_path):
    cfg = load_config(AblationConfig, DEMO, [f"output_dir={tmp_path / 'ablation'}"])
    with ablation_lock(cfg, "ablation (its job graph)"):
        with ablation_lock(cfg):  # the driver's report pass: the same process again
            holder = json.loads((tmp_path / "ablation" / LOCK_NAME).read_text())
            assert holder["pid"] == os.getpid() and holder["tool"] == "ablation (its job graph)"
    assert not (tmp_path / "ablation").exists()


def test_a_file_where_the_ablation_folder_should_be_is_one_line(tmp_path):
    (tmp_path / "ablation").write_text("a file")
    cfg = load_config(AblationConfig, DEMO, [f"output_dir={tmp_path / 'ablation'}"])
    with pytest.raises(FolderNotWritable, match="output_dir=.*ablation is a file, not a folder"):
        run_ablation(cfg)
