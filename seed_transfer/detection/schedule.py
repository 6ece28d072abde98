"""The matched-schedule rule of detection transfer (MoCo, SEED): every initialisation in a
comparison is fine-tuned with one schedule. When fewer GPUs force a smaller total batch,
the linear scaling rule (Goyal et al., 2017) keeps the schedule equivalent: lr scales with
the batch, iterations, lr steps and warm-up inversely. Engine-neutral (plain numbers)."""

from dataclasses import asdict, dataclass

from seed_core.config import ConfigError


@dataclass(frozen=True)
class Schedule:
    ims_per_batch: int
    base_lr: float
    max_iter: int
    steps: tuple[int, ...]
    warmup_iters: int

    def scaled_to(self, ims_per_batch: int) -> "Schedule":
        """This schedule at a total batch of ``ims_per_batch`` images."""
        if ims_per_batch < 1:
            raise ConfigError(f"ims_per_batch={ims_per_batch} must be >= 1 (the total batch of images)")
        ratio = ims_per_batch / self.ims_per_batch
        return Schedule(
            ims_per_batch,
            self.base_lr * ratio,
            round(self.max_iter / ratio),
            tuple(round(s / ratio) for s in self.steps),
            round(self.warmup_iters / ratio),
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "steps": list(self.steps)}
