import torch


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """Upcast fp16/bf16 to fp32 (softmax over logits / 1e-4 overflows fp16); keep fp64."""
    return x.to(torch.promote_types(x.dtype, torch.float32))
