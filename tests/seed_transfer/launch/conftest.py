"""Shared by the launcher's job tests (submitit's local executor and the live SLURM queue): the
tiny image folder and the direct run every job's student is compared with."""

import pytest
from tiny import make_image_folder
from tiny_job import main as tiny_main


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"), classes=2, per_class=8)  # 2 steps/epoch


@pytest.fixture(scope="module")
def direct(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("direct")
    assert tiny_main([str(data_root), str(out)]) == 0
    return out
