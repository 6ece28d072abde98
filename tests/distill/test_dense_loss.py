"""distill.losses.dense_distillation_loss against a slow reference written from the formula (its bilinear
resize included: half-pixel centres, edges clamped), closed-form cases, and gradients."""

import math

import numpy as np
import pytest
import torch

from distill.losses import dense_distillation_loss


def bilinear_reference(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """C x h x w -> C x out_h x out_w: output pixel centre y maps to (y + 0.5) * h / out_h - 0.5 in the
    input, clamped at 0 below; the value mixes the two nearest rows (and columns) by distance."""
    channels, h, w = image.shape

    def taps(out_index: int, out_size: int, in_size: int) -> tuple[int, int, float]:
        source = max((out_index + 0.5) * in_size / out_size - 0.5, 0.0)
        low = min(int(math.floor(source)), in_size - 1)
        high = min(low + 1, in_size - 1)
        return low, high, source - low

    out = np.zeros((channels, out_h, out_w))
    for y in range(out_h):
        y0, y1, fy = taps(y, out_h, h)
        for x in range(out_w):
            x0, x1, fx = taps(x, out_w, w)
            top = (1 - fx) * image[:, y0, x0] + fx * image[:, y0, x1]
            bottom = (1 - fx) * image[:, y1, x0] + fx * image[:, y1, x1]
            out[:, y, x] = (1 - fy) * top + fy * bottom
    return out


def dense_reference(student_map: torch.Tensor, teacher_map: torch.Tensor) -> float:
    """1/(N H W) sum over samples and positions of ||s/|s| - t/|t| ||^2, one vector at a time."""
    student, teacher = student_map.double().numpy(), teacher_map.double().numpy()
    n, _, height, width = teacher.shape
    total = 0.0
    for i in range(n):
        resized = bilinear_reference(student[i], height, width)
        for y in range(height):
            for x in range(width):
                s, t = resized[:, y, x], teacher[i, :, y, x]
                total += float(np.sum((s / np.linalg.norm(s) - t / np.linalg.norm(t)) ** 2))
    return total / (n * height * width)


@pytest.mark.parametrize(
    "student_grid, teacher_grid",
    [((4, 4), (4, 4)), ((2, 2), (4, 4)), ((7, 5), (3, 4)), ((4, 4), (16, 16)), ((1, 1), (2, 3))],
)
@pytest.mark.parametrize("channels", [3, 16])
def test_the_loss_equals_the_formula(student_grid, teacher_grid, channels):
    torch.manual_seed(0)
    student = torch.randn(2, channels, *student_grid, dtype=torch.float64)
    teacher = torch.randn(2, channels, *teacher_grid, dtype=torch.float64)
    assert dense_distillation_loss(student, teacher).item() == pytest.approx(
        dense_reference(student, teacher), rel=1e-10
    )


def test_closed_forms():
    teacher = torch.randn(3, 8, 4, 4)
    assert dense_distillation_loss(teacher * 5.0, teacher).item() == pytest.approx(0.0, abs=1e-6)  # scale-blind
    assert dense_distillation_loss(-teacher, teacher).item() == pytest.approx(4.0, abs=1e-5)
    first, second = torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3)
    first[:, 0], second[:, 1] = 1.0, 2.0  # orthogonal at every position
    assert dense_distillation_loss(first, second).item() == pytest.approx(2.0, abs=1e-6)


def test_the_gradient_reaches_the_student_only():
    student = torch.randn(2, 8, 2, 2, requires_grad=True)
    teacher = torch.randn(2, 8, 4, 4, requires_grad=True)
    dense_distillation_loss(student, teacher).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0 and teacher.grad is None


def test_half_precision_inputs_give_a_float32_loss():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 8, 3, 3), torch.randn(2, 8, 6, 6)
    full = dense_distillation_loss(student, teacher)
    half = dense_distillation_loss(student.half(), teacher.half())
    assert half.dtype == torch.float32 and half.item() == pytest.approx(full.item(), abs=2e-3)


@pytest.mark.parametrize(
    "student_shape, teacher_shape",
    [((2, 8, 3, 3), (2, 4, 3, 3)), ((2, 8, 3, 3), (1, 8, 3, 3)), ((2, 8, 9), (2, 8, 3, 3))],
)
def test_shapes_that_disagree_are_refused(student_shape, teacher_shape):
    with pytest.raises(ValueError, match="feature maps disagree"):
        dense_distillation_loss(torch.randn(*student_shape), torch.randn(*teacher_shape))
