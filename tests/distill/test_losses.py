import math

import pytest
import torch
import torch.nn.functional as F

from distill.losses import info_nce_loss, l2_distillation_loss, seed_loss


def unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


def seed_loss_reference(z_s, z_t, queue, tau_s, tau_t):
    """Straight from the paper: D+ = [z_T_i, d_1..d_K]; p = softmax(z . d / tau); CE(p_T, p_S)."""
    total = 0.0
    for i in range(z_s.shape[0]):
        anchors = [z_t[i]] + [queue[j] for j in range(queue.shape[0])]
        s = [float(z_s[i] @ d) / tau_s for d in anchors]
        t = [float(z_t[i] @ d) / tau_t for d in anchors]
        s_max, t_max = max(s), max(t)
        log_zs = s_max + math.log(sum(math.exp(v - s_max) for v in s))
        zt = sum(math.exp(v - t_max) for v in t)
        total -= sum(math.exp(tv - t_max) / zt * (sv - log_zs) for sv, tv in zip(s, t))
    return total / z_s.shape[0]


@pytest.mark.parametrize("n,k,dim", [(1, 1, 4), (4, 16, 8), (7, 33, 128)])
@pytest.mark.parametrize("tau_s,tau_t", [(0.2, 0.01), (0.2, 1e-4), (0.07, 0.07), (1.0, 0.5)])
def test_seed_loss_matches_reference(n, k, dim, tau_s, tau_t):
    z_s, z_t, queue = unit(n, dim, seed=1), unit(n, dim, seed=2), unit(k, dim, seed=3)
    got = seed_loss(z_s, z_t, queue, tau_s, tau_t)
    assert got.item() == pytest.approx(seed_loss_reference(z_s, z_t, queue, tau_s, tau_t), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("tau_s", [0.2, 0.07])
def test_seed_loss_becomes_infonce_as_tau_teacher_goes_to_zero(tau_s):
    z_s, z_t, queue = unit(8, 32, seed=4), unit(8, 32, seed=5), unit(64, 32, seed=6)
    infonce = info_nce_loss(z_s, z_t, queue, tau_s)
    assert seed_loss(z_s, z_t, queue, tau_s, 1e-6).item() == pytest.approx(infonce.item(), rel=1e-9)
    # ... and differs from it at the paper's tau_T, where the teacher's distribution is soft.
    assert abs(seed_loss(z_s, z_t, queue, tau_s, 0.5).item() - infonce.item()) > 1e-3


def test_infonce_matches_cross_entropy_definition():
    q, k, queue = unit(5, 16, seed=7), unit(5, 16, seed=8), unit(10, 16, seed=9)
    expected = 0.0
    for i in range(5):
        logits = torch.cat([(q[i] @ k[i]).view(1), queue @ q[i]]) / 0.2
        expected -= torch.log_softmax(logits, 0)[0].item()
    assert info_nce_loss(q, k, queue, 0.2).item() == pytest.approx(expected / 5, rel=1e-9)


def test_seed_loss_gradient_flows_to_student_only():
    z_s = unit(4, 8, seed=1).requires_grad_()
    z_t = unit(4, 8, seed=2).requires_grad_()
    queue = unit(6, 8, seed=3).requires_grad_()
    seed_loss(z_s, z_t, queue).backward()
    assert z_s.grad is not None and z_s.grad.abs().sum() > 0
    assert z_t.grad is None and queue.grad is None


def seed_loss_autograd(z_s, z_t, queue, tau_s, tau_t):
    """The objective as plain autograd over D+ (an independent path to the same gradient)."""
    anchors = torch.cat([z_t[:, None, :], queue.expand(z_s.shape[0], -1, -1)], dim=1)  # N x (1+K) x C
    student_logits = torch.einsum("nc,nkc->nk", z_s, anchors) / tau_s
    teacher_prob = F.softmax(torch.einsum("nc,nkc->nk", z_t, anchors) / tau_t, dim=1)
    return -(teacher_prob * F.log_softmax(student_logits, dim=1)).sum(dim=1).mean()


@pytest.mark.parametrize("n,k,dim", [(1, 1, 4), (5, 17, 8)])
@pytest.mark.parametrize("tau_s,tau_t", [(0.2, 0.01), (0.07, 0.07), (1.0, 0.5)])
def test_seed_loss_gradient_equals_autograd_of_the_definition(n, k, dim, tau_s, tau_t):
    z_s, z_t, queue = unit(n, dim, seed=1), unit(n, dim, seed=2), unit(k, dim, seed=3)
    z_s.requires_grad_()
    (got,) = torch.autograd.grad(seed_loss(z_s, z_t, queue, tau_s, tau_t) * 3.0, z_s)
    (want,) = torch.autograd.grad(seed_loss_autograd(z_s, z_t, queue, tau_s, tau_t) * 3.0, z_s)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: seed_loss(x, z_t, queue, tau_s, tau_t), (z_s,))


def test_seed_loss_gradient_is_unchanged_when_the_queue_is_overwritten_before_backward():
    """The method pushes the batch into the queue in place between forward and backward."""
    z_s, z_t, queue = unit(4, 8, seed=1).requires_grad_(), unit(4, 8, seed=2), unit(6, 8, seed=3)
    (want,) = torch.autograd.grad(seed_loss(z_s, z_t, queue.clone()), z_s)
    loss = seed_loss(z_s, z_t, queue)
    queue.copy_(unit(6, 8, seed=4))
    loss.backward()
    torch.testing.assert_close(z_s.grad, want, rtol=0, atol=0)


def test_seed_loss_is_stable_in_half_precision_inputs():
    z_s, z_t, queue = unit(4, 8, seed=1).half(), unit(4, 8, seed=2).half(), unit(6, 8, seed=3).half()
    assert torch.isfinite(seed_loss(z_s, z_t, queue, 0.2, 1e-4))


def test_l2_loss_closed_form():
    z_s, z_t = unit(6, 16, seed=1), unit(6, 16, seed=2)
    expected = (2 - 2 * (z_s * z_t).sum(1)).mean()
    assert l2_distillation_loss(z_s, z_t).item() == pytest.approx(expected.item(), rel=1e-6)
    assert l2_distillation_loss(z_t, z_t).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("kwargs", [{"tau_student": 0.0}, {"tau_teacher": -1.0}])
def test_seed_loss_rejects_bad_temperatures(kwargs):
    with pytest.raises(ValueError, match="temperatures must be > 0"):
        seed_loss(unit(2, 4), unit(2, 4), unit(3, 4), **kwargs)


def test_seed_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="embedding shapes disagree"):
        seed_loss(unit(2, 4), unit(2, 4), unit(3, 5))
