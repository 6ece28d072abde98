import numpy as np
import pytest
import torch

from seed_transfer.backbones import checkpoint_fingerprint, load_backbone
from seed_transfer.classification.features import (
    Features,
    FeatureTransform,
    cache_key,
    cached_features,
    extract_features,
)


def key(fingerprint="sha256:a", split="train", transform=FeatureTransform(), root="/data", content="c0"):
    return cache_key(fingerprint, "resnet18", "dtd", root, split, transform, content)


def test_cache_is_hit_the_second_time(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return Features(np.ones((3, 4), np.float32), np.arange(3))

    first, hit1 = cached_features(key(), tmp_path, compute)
    second, hit2 = cached_features(key(), tmp_path, compute)
    assert (hit1, hit2) == (False, True) and len(calls) == 1
    assert np.array_equal(first.features, second.features) and np.array_equal(first.targets, second.targets)


def test_key_changes_with_checkpoint_split_transform_root_and_content():
    base = key()
    assert key(fingerprint="sha256:b") != base
    assert key(split="test") != base
    assert key(transform=FeatureTransform(resize=256)) != base
    assert key(root="/other") != base
    assert key(content="c1") != base
    assert key() == base


def test_fingerprint_follows_file_content_not_path(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"a": torch.zeros(2)}, path)
    before = checkpoint_fingerprint(str(path), None)
    torch.save({"a": torch.ones(2)}, path)  # same path, new bytes: the cache must miss
    assert checkpoint_fingerprint(str(path), None) != before
    assert checkpoint_fingerprint("random", "resnet18", seed=1) != checkpoint_fingerprint("random", "resnet18", seed=2)


def test_random_init_is_seeded_and_student_export_records_its_arch(tmp_path):
    a, _ = load_backbone("random", "resnet18", seed=3)
    b, _ = load_backbone(None, "resnet18", seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    from distill.export import export_student

    export_student(a, "resnet18", tmp_path / "student.pth", meta={})
    loaded, arch = load_backbone(str(tmp_path / "student.pth"))
    assert arch == "resnet18" and not loaded.training
    with pytest.raises(ValueError, match="needs model.arch"):
        load_backbone("random", None)


def test_extract_features_batches_in_order():
    class Tiny(torch.utils.data.Dataset):
        targets = np.arange(5)

        def __len__(self):
            return 5

        def __getitem__(self, i):
            return torch.full((3, 4, 4), float(i)), i

    out = extract_features(
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 2)),
        Tiny(),
        batch_size=2,
        num_workers=0,
        device=torch.device("cpu"),
    )
    assert out.features.shape == (5, 2) and out.features.dtype == np.float32
    assert np.array_equal(out.targets, np.arange(5))


def test_pixel_baseline_is_the_pooled_image():
    backbone, arch = load_backbone("pixels")
    images = torch.rand(2, 3, 64, 64)
    features = backbone(images)
    assert arch == "pixels" and features.shape == (2, 3 * 16 * 16)
    # each feature is the mean of a 4x4 block of one channel
    assert torch.allclose(features[1, 0], images[1, 0, :4, :4].mean())
    assert checkpoint_fingerprint("pixels", None) != checkpoint_fingerprint("random", "resnet18")
