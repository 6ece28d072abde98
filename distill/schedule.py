"""Per-iteration learning-rate schedule, precomputed (as in DINO)."""

import math


def warmup_cosine(base_lr: float, total_steps: int, warmup_steps: int) -> list[float]:
    """Linear warm-up from ~0 to ``base_lr`` over ``warmup_steps``, then cosine decay to 0."""
    warmup_steps = min(warmup_steps, total_steps)
    lrs = [base_lr * (step + 1) / warmup_steps for step in range(warmup_steps)]
    decay = total_steps - warmup_steps
    lrs += [0.5 * base_lr * (1 + math.cos(math.pi * step / decay)) for step in range(decay)]
    return lrs
