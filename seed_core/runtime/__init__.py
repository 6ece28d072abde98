"""The training runtime every loop of the project runs on: distillation (:mod:`distill.trainer`),
the ImageNet linear/semi-supervised trainer (:mod:`seed_transfer.imagenet.trainer`) and the
torchvision detection engine (:mod:`seed_transfer.detection.tv.train`).

- :mod:`.loop`: the step loop with hooks (Detectron2's ``TrainerBase``/``HookBase`` shape);
- :mod:`.step`: one optimizer step (AMP scaler or none, optional clipping, a loss every rank
  checks for finiteness together);
- :mod:`.train_state`: one checkpoint format (model, optimizer, scaler, RNG incl. Python's and
  CUDA's, step, config fingerprint), written atomically;
- :mod:`.launch`: one launcher (a single process, ``torchrun``, or local processes spawned here);
- :mod:`.setup`: one set-up of a training run (device, AMP scaler, DDP, the checkpoint
  ``CHECKPOINT_NAME``: read to resume, written periodically; Ctrl-C and a full disk as one line);
- :mod:`.output_folder`: the output folder's rules (writable, locked, never overwritten unasked).
"""

from .launch import launch
from .loop import CallbackHook, HookBase, PeriodicCheckpoint, ProgressBar, TrainLoop, resumable_batches
from .output_folder import FolderNotWritable, RunExists, check_not_overwriting, check_writable, run_folder
from .setup import CHECKPOINT_NAME, TrainingInterrupted, TrainSetup, start_training
from .step import all_finite, all_ranks, backward_step, optimizer_step
from .train_state import read_training_state, restore_training_state, rng_state, save_training_state, set_rng_state

__all__ = [
    "CHECKPOINT_NAME",
    "CallbackHook",
    "FolderNotWritable",
    "HookBase",
    "PeriodicCheckpoint",
    "ProgressBar",
    "RunExists",
    "TrainSetup",
    "TrainingInterrupted",
    "TrainLoop",
    "all_finite",
    "all_ranks",
    "backward_step",
    "check_not_overwriting",
    "check_writable",
    "launch",
    "optimizer_step",
    "read_training_state",
    "restore_training_state",
    "resumable_batches",
    "rng_state",
    "run_folder",
    "save_training_state",
    "set_rng_state",
    "start_training",
]
