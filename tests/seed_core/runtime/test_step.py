"""One optimizer step: the plain and the AMP path, clipping on unscaled gradients, and a
non-finite loss that stops before anything changes."""

import copy

import pytest
import torch

from seed_core.runtime import all_finite, all_ranks, backward_step, optimizer_step


def model_and_optimizer(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 2)
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def loss_of(model, seed=1):
    torch.manual_seed(seed)
    return model(torch.randn(8, 4)).pow(2).mean()


def test_a_finite_step_is_zero_grad_backward_step():
    model, optimizer = model_and_optimizer()
    reference = copy.deepcopy(model)
    reference_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    for seed in (1, 2):
        optimizer_step(loss_of(model, seed), optimizer, nonfinite=lambda value: pytest.fail("finite"))
        reference_optimizer.zero_grad()
        loss_of(reference, seed).backward()
        reference_optimizer.step()
    for mine, theirs in zip(model.parameters(), reference.parameters()):
        assert torch.equal(mine, theirs)


def test_a_nan_loss_raises_the_loops_message_and_changes_nothing():
    model, optimizer = model_and_optimizer()
    optimizer_step(loss_of(model), optimizer, nonfinite=str)  # momentum buffers and grads exist
    weights = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.clone() for p in model.parameters()]
    momenta = [optimizer.state[p]["momentum_buffer"].clone() for p in model.parameters()]
    with pytest.raises(FloatingPointError, match=r"^loss is nan at step 7; stopped$"):
        optimizer_step(
            loss_of(model) * float("nan"), optimizer, nonfinite=lambda value: f"loss is {value} at step 7; stopped"
        )
    for p, weight, grad, momentum in zip(model.parameters(), weights, grads, momenta):
        assert torch.equal(p, weight) and torch.equal(optimizer.state[p]["momentum_buffer"], momentum)
        assert torch.equal(p.grad, grad)  # not even zeroed
    with pytest.raises(FloatingPointError, match="inf"):
        optimizer_step(torch.tensor(float("inf")), optimizer, nonfinite=lambda value: f"loss is {value}")


def test_an_amp_step_with_an_infinite_gradient_is_skipped_and_the_scale_lowered():
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1e10)
    loss = (weight * 1e30).sum()  # finite (3e30), but its gradient x 1e10 overflows float32
    optimizer_step(loss, optimizer, scaler, nonfinite=lambda value: pytest.fail("the loss is finite"))
    assert torch.equal(weight.detach(), torch.ones(3)) and scaler.get_scale() == 5e9
    optimizer_step((weight * 2).sum(), optimizer, scaler, nonfinite=str)  # a normal step goes through
    assert torch.allclose(weight.detach(), torch.full((3,), 0.8))


def test_gradients_are_clipped_unscaled_between_backward_and_step():
    weight = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    seen = []

    def clip():
        seen.append(weight.grad.clone())
        torch.nn.utils.clip_grad_norm_([weight], max_norm=1.0)

    backward_step((weight * torch.tensor([3.0, 4.0])).sum(), optimizer, scaler, clip_grads=clip)
    assert torch.equal(seen[0], torch.tensor([3.0, 4.0]))  # unscaled: not x1024
    assert torch.allclose(weight.detach(), torch.tensor([-0.6, -0.8]))  # clipped to norm 1, then stepped


def test_single_process_agreement_is_the_local_value():
    cpu = torch.device("cpu")
    assert all_ranks(True, cpu) and not all_ranks(False, cpu)
    assert all_finite(torch.tensor(1.0)) and not all_finite(torch.tensor(float("nan")))
