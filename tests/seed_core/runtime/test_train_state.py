"""The one checkpoint format: a round trip restores the optimizer, scaler, step, fingerprint,
extras and every RNG stream (torch, Python's random, numpy); writes are atomic; the layouts
written before it still read."""

import random

import numpy as np
import pytest
import torch

from seed_core.runtime import read_training_state, restore_training_state, save_training_state
from seed_core.runtime.train_state import FORMAT


def draws() -> tuple:
    return torch.rand(3).tolist(), random.random(), np.random.rand(2).tolist()


def trained(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
    return model, optimizer


def test_round_trip_restores_everything_including_python_and_numpy_rng(tmp_path):
    model, optimizer = trained()
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    torch.manual_seed(1), random.seed(1), np.random.seed(1)
    path = tmp_path / "checkpoint.pth"
    save_training_state(
        path,
        step=2,
        model=model.state_dict(),
        optimizer=optimizer,
        scaler=scaler,
        fingerprint={"optim.base_lr": 0.1},
        evals=[{"step": 2, "top1": 50.0}],
    )
    expected = draws()  # what an uninterrupted run draws next

    torch.manual_seed(9), random.seed(9), np.random.seed(9)  # a new process
    fresh, fresh_optimizer = trained(seed=5)
    fresh_scaler = torch.amp.GradScaler("cpu")
    state = read_training_state(path)
    fresh.load_state_dict(state["model"])
    assert restore_training_state(state, fresh_optimizer, fresh_scaler) == 2
    assert draws() == expected
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
    for p, q in zip(model.parameters(), fresh.parameters()):
        assert torch.equal(optimizer.state[p]["momentum_buffer"], fresh_optimizer.state[q]["momentum_buffer"])
    assert fresh_scaler.get_scale() == 256.0
    assert state["format"] == FORMAT and state["fingerprint"] == {"optim.base_lr": 0.1}
    assert state["evals"] == [{"step": 2, "top1": 50.0}]
    plain = torch.load(path, weights_only=True)  # plain containers and tensors only
    assert set(plain["rng"]) >= {"torch", "python", "numpy"} and plain["scaler"] is not None


def test_the_rng_can_be_restored_later_than_the_rest(tmp_path):
    model, optimizer = trained()
    save_training_state(
        tmp_path / "c.pth", step=5, model=model.state_dict(), optimizer=optimizer, scaler=None, fingerprint=None
    )
    random.seed(3)
    expected = random.random()
    random.seed(3)
    assert restore_training_state(read_training_state(tmp_path / "c.pth"), optimizer, None, rng=False) == 5
    assert random.random() == expected  # untouched


def test_a_failed_write_keeps_the_last_good_checkpoint(tmp_path):
    model, optimizer = trained()
    path = tmp_path / "checkpoint.pth"
    save_training_state(path, step=1, model=model.state_dict(), optimizer=optimizer, scaler=None, fingerprint=None)
    with pytest.raises(Exception):
        save_training_state(
            path,
            step=2,
            model=model.state_dict(),
            optimizer=optimizer,
            scaler=None,
            fingerprint=None,
            unpicklable=lambda: None,
        )
    assert read_training_state(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pth"]  # no temporary left behind
    with pytest.raises(ValueError, match=r"\['rng'\] would replace the format's own"):
        save_training_state(path, step=3, model={}, optimizer=optimizer, scaler=None, fingerprint=None, rng={})


def test_layouts_written_before_the_format_still_read(tmp_path):
    model, optimizer = trained()
    common = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": None}
    torch.manual_seed(4)
    torch_rng = torch.get_rng_state()
    torch.save({**common, "iteration": 7, "torch_rng": torch_rng, "cuda_rng": []}, tmp_path / "tv.pth")
    torchvision_engine = read_training_state(tmp_path / "tv.pth")
    assert torchvision_engine["step"] == 7 and torchvision_engine["fingerprint"] is None
    assert set(torchvision_engine["rng"]) == {"torch"} and torch.equal(torchvision_engine["rng"]["torch"], torch_rng)
    random.seed(2)
    expected = random.random()
    random.seed(2)
    torch.manual_seed(0)
    restore_training_state(torchvision_engine, optimizer, None)  # no Python state saved: left as it is
    assert torch.equal(torch.get_rng_state(), torch_rng) and random.random() == expected

    rng = {"torch": torch_rng, "python": random.getstate()}
    torch.save({**common, "step": 3, "rng": rng, "evals": [], "resume_key": {"seed": 0}}, tmp_path / "imagenet.pth")
    assert read_training_state(tmp_path / "imagenet.pth")["fingerprint"] == {"seed": 0}
    torch.save({**common, "step": 3, "rng": rng, "config": {}}, tmp_path / "distill.pth")
    assert "fingerprint" not in read_training_state(tmp_path / "distill.pth")  # checked on its config instead
