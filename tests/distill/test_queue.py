import pytest
import torch

from distill.queue import EmbeddingQueue


def rows(start, n, dim=3):
    return torch.arange(start, start + n, dtype=torch.float32).unsqueeze(1).repeat(1, dim)


def test_fifo_order_and_pointer():
    queue = EmbeddingQueue(size=6, dim=3)
    queue.push(rows(0, 2))
    queue.push(rows(2, 2))
    assert queue.ptr.item() == 4
    assert torch.equal(queue.embeddings[:4], rows(0, 4))
    queue.push(rows(4, 2))
    assert queue.ptr.item() == 0
    queue.push(rows(6, 2))  # overwrites the oldest two
    assert torch.equal(queue.embeddings[:, 0], torch.tensor([6.0, 7, 2, 3, 4, 5]))


def test_wraparound_when_batch_does_not_divide_queue():
    queue = EmbeddingQueue(size=5, dim=3)
    queue.push(rows(0, 3))
    queue.push(rows(3, 3))  # 3, 4 at the end, 5 wraps to the front
    assert torch.equal(queue.embeddings[:, 0], torch.tensor([5.0, 1, 2, 3, 4]))
    assert queue.ptr.item() == 1


def test_initial_entries_are_unit_vectors_and_state_is_saved():
    queue = EmbeddingQueue(size=8, dim=4)
    assert torch.allclose(queue.embeddings.norm(dim=1), torch.ones(8))
    queue.push(rows(0, 3, dim=4))
    state = queue.state_dict()
    assert set(state) == {"embeddings", "ptr"}
    restored = EmbeddingQueue(size=8, dim=4)
    restored.load_state_dict(state)
    assert torch.equal(restored.embeddings, queue.embeddings) and restored.ptr.item() == 3


def test_rejects_batch_larger_than_queue():
    with pytest.raises(ValueError, match="cannot enqueue 4"):
        EmbeddingQueue(size=3, dim=2).push(torch.zeros(4, 2))
