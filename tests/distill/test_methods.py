import copy
from pathlib import Path

import pytest
import torch
from tiny import TINY, tiny_cnn

from distill.builder import build_student
from distill.losses import seed_loss
from distill.methods import SEED, L2Distill, MoCo, SEEDMoCo
from distill.teacher import FrozenTeacher


def make_teacher(seed=1):
    torch.manual_seed(seed)
    backbone, _ = tiny_cnn()
    return FrozenTeacher(backbone, torch.nn.Linear(16, 8))


def make_seed(queue_size=32, cls=SEED, **kwargs):
    torch.manual_seed(0)
    return cls(build_student(TINY, 8), make_teacher(), embed_dim=8, queue_size=queue_size, **kwargs)


def images(n=4, seed=2):
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cls", [SEED, SEEDMoCo, L2Distill])
def test_gradients_reach_student_only_and_teacher_is_unchanged(cls):
    method = make_seed(cls=cls) if cls is not L2Distill else L2Distill(build_student(TINY, 8), make_teacher())
    teacher_before = copy.deepcopy(method.teacher.state_dict())
    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.5, momentum=0.9)
    method.train()
    for step in range(2):
        loss, _ = method([images(seed=step), images(seed=10 + step)])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(p.grad is not None for p in method.student.parameters())
    assert all(p.grad is None and not p.requires_grad for p in method.teacher.parameters())
    assert not method.teacher.training  # model.train() must not switch the teacher to train mode
    for key, value in method.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key


def test_current_batch_enters_queue_only_after_the_loss():
    method = make_seed(queue_size=8)
    queue_before = method.queue.embeddings.clone()
    x = images(4)
    loss, _ = method([x])
    with torch.no_grad():
        expected = seed_loss(method.student(x), method.teacher(x), queue_before)
        teacher_emb = method.teacher(x)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.allclose(method.queue.embeddings[:4], teacher_emb)
    assert torch.equal(method.queue.embeddings[4:], queue_before[4:])
    assert method.queue.ptr.item() == 4


def test_moco_key_encoder_follows_student_by_ema():
    torch.manual_seed(0)
    method = MoCo(build_student(TINY, 8), embed_dim=8, queue_size=16, momentum=0.9)
    student_param = next(method.student.parameters())
    key_param = next(method.moco.key_encoder.parameters())
    assert torch.equal(student_param, key_param) and not key_param.requires_grad
    with torch.no_grad():
        student_param.add_(1.0)
    before = key_param.clone()
    loss, logs = method([images(seed=1), images(seed=2)])
    loss.backward()
    assert torch.allclose(key_param, 0.9 * before + 0.1 * student_param)
    assert method.moco.queue.ptr.item() == 4 and set(logs) == {"loss_moco"}


def test_seed_moco_is_the_sum_of_both_losses():
    method = make_seed(cls=SEEDMoCo, moco_weight=0.5)
    loss, logs = method([images(seed=1), images(seed=2)])
    assert loss.item() == pytest.approx(logs["loss_seed"].item() + 0.5 * logs["loss_moco"].item(), rel=1e-6)
    assert method.queue.ptr.item() == 4 and method.moco.queue.ptr.item() == 4


def test_state_dict_holds_queue_and_pointer():
    state = make_seed().state_dict()
    assert "queue.embeddings" in state and "queue.ptr" in state


def test_teacher_centering_subtracts_a_running_mean_and_is_off_by_default():
    import torch.nn.functional as F

    from distill.centering import TeacherCentering

    torch.manual_seed(0)
    centre = TeacherCentering(8, momentum=0.5)
    common = torch.randn(8)
    a, b = F.normalize(common + 0.1 * torch.randn(4, 8), dim=1), F.normalize(common + 0.1 * torch.randn(4, 8), dim=1)
    assert torch.allclose(centre(a), a)  # the centre starts at zero
    assert torch.allclose(centre.center, 0.5 * a.mean(0))
    out = centre(b)
    assert torch.allclose(out, F.normalize(b - 0.5 * a.mean(0), dim=1))
    assert torch.allclose(out.norm(dim=1), torch.ones(4))
    # the common component shrinks: pairwise cosines drop once it is (partly) removed
    assert (out @ out.T).triu(1).sum() < (b @ b.T).triu(1).sum()


def test_seed_with_teacher_centering_scores_centred_embeddings_and_checkpoints_the_centre():
    import torch.nn.functional as F

    from distill.methods import SEED

    torch.manual_seed(0)
    student = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 6))
    method = SEED(student, None, embed_dim=6, queue_size=8, centering_momentum=0.9)
    plain = SEED(student, None, embed_dim=6, queue_size=8)
    plain.queue.load_state_dict(method.queue.state_dict())  # the same starting queue
    images, t = torch.randn(4, 3, 2, 2), F.normalize(torch.randn(4, 6) + 3.0, dim=1)
    # first step: the centre is zero, so the centred embeddings are the teacher's own
    assert torch.allclose(method([images], teacher_emb=t)[0], plain([images], teacher_emb=t)[0])
    assert torch.allclose(method.state_dict()["centering.center"], 0.1 * t.mean(0))
    centred = F.normalize(t - 0.1 * t.mean(0), dim=1)
    expected = seed_loss(student(images), centred, method.queue.embeddings.clone(), 0.2, 0.01)
    assert torch.allclose(method([images], teacher_emb=t)[0], expected)  # then it scores centred embeddings
    assert torch.allclose(method.queue.embeddings[4:], centred)  # ... and queues them
    assert "centering.center" in method.state_dict() and "centering.center" not in plain.state_dict()


def test_teacher_centering_is_refused_for_strategies_without_a_teacher_distribution():
    from distill.schema import DistillConfig
    from seed_core.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="teacher_centering"):
        load_config(
            DistillConfig,
            Path(__file__).resolve().parents[2] / "configs/distill/demo.yaml",
            ["distill.strategy=moco", "distill.teacher_centering=true"],
        )
