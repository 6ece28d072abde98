"""The fine-tunes' folders (seed_transfer.finetune): an output folder that cannot be written is
refused when the request is checked, before anything is read; an interrupted seed is continued
only with resume and started over only with overwrite, which removes the engine's checkpoints
(MMSegmentation's here) and nothing else."""

import sys
from unittest.mock import patch

import pytest

from seed_core.runtime import FolderNotWritable, RunExists, TrainingInterrupted
from seed_transfer.finetune import FinetuneRequest, seed_folder
from seed_transfer.segmentation.transfer import SEED_RUN_FILES


def test_a_file_as_the_output_folder_is_refused_when_the_request_is_checked(tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(FolderNotWritable, match=r"run.output_dir=.*out is a file, not a folder"):
        FinetuneRequest("configs/seg/x.yaml", "random", tmp_path / "out").check()
    FinetuneRequest("configs/seg/x.yaml", "random", tmp_path / "new" / "out").check()  # made later: fine


def test_an_interrupted_mmsegmentation_seed_is_resumed_or_started_over_only_when_asked(tmp_path):
    seed = tmp_path / "seed0"
    seed.mkdir()
    for name in ("last_checkpoint", "iter_40.pth", "iter_80.pth", "vis_data.json", "data.txt"):
        (seed / name).write_text(name)

    def enter(**flags):
        request = FinetuneRequest("configs/seg/x.yaml", "random", tmp_path, **flags)
        with seed_folder(request, seed, "mmsegmentation", holds=SEED_RUN_FILES[:1], removes=SEED_RUN_FILES):
            assert (seed / ".lock").is_file()

    with pytest.raises(RunExists, match="seed0 already holds a run \\(last_checkpoint\\): continue it with --resume"):
        enter()
    enter(resume=True)
    assert (seed / "iter_80.pth").exists()
    enter(overwrite=True)
    assert sorted(p.name for p in seed.iterdir()) == ["data.txt", "vis_data.json"]


@pytest.mark.parametrize(
    "marker_text, checkpoint",
    [("model_0000249.pth", "model_0000249.pth"), (None, "iter_4.pth")],  # Detectron2: a name; MMEngine: a path
)
def test_ctrl_c_in_an_engines_loop_names_the_last_checkpoint_and_the_command(tmp_path, marker_text, checkpoint):
    seed_dir = tmp_path / "seed0"
    request = FinetuneRequest("configs/det/x.yaml", "random", tmp_path)
    argv = ["tools/transfer_det.py", "--config", "configs/det/x.yaml", "--overwrite"]
    with pytest.raises(TrainingInterrupted) as caught, patch.object(sys, "argv", argv):
        with seed_folder(request, seed_dir, "detectron2", holds=("last_checkpoint",), removes=()):
            (seed_dir / checkpoint).write_bytes(b"weights")
            (seed_dir / "last_checkpoint").write_text(marker_text or str(seed_dir / checkpoint))
            raise KeyboardInterrupt
    assert str(caught.value) == (
        f"interrupted (Ctrl-C) during the detectron2 fine-tuning of {seed_dir}: the last checkpoint is "
        f"{seed_dir / checkpoint}; continue with: python tools/transfer_det.py --config configs/det/x.yaml --resume"
    )
    assert caught.value.exit_status == 130


def test_ctrl_c_before_any_checkpoint_says_there_is_none(tmp_path):
    request = FinetuneRequest("configs/seg/x.yaml", "random", tmp_path, resume=True)
    argv = ["tools/transfer_seg.py", "--config", "configs/seg/x.yaml", "--resume"]  # resuming already: the same again
    with pytest.raises(TrainingInterrupted) as caught, patch.object(sys, "argv", argv):
        with seed_folder(request, tmp_path / "seed0", "mmsegmentation", holds=SEED_RUN_FILES[:1], removes=()):
            raise KeyboardInterrupt
    assert str(caught.value).endswith(
        "seed0: no checkpoint was written yet; continue with: python tools/transfer_seg.py --config configs/seg/x.yaml "
        "--resume"
    )
