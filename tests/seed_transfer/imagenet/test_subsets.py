from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from tiny_bn import make_imagenet

from seed_transfer.imagenet.subsets import build_subset, class_of, read_subset_list, write_subset_list


def test_class_of_takes_the_synset_prefix():
    assert class_of("n01440764_10026.JPEG") == "n01440764"


def test_subset_selects_exactly_the_listed_images(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", classes=3, train_per_class=6)
    listed = ["n00000002_5.JPEG", "n00000000_1.JPEG", "n00000000_3.JPEG", "n00000001_0.JPEG"]
    (tmp_path / "1percent.txt").write_text("\n".join(listed) + "\n\n")  # trailing blank lines are fine
    subset = build_subset(root / "train", tmp_path / "1percent.txt")
    assert [p.name for p in subset.image_paths] == listed  # exactly these, in list order
    assert [p.parent.name for p in subset.image_paths] == [class_of(n) for n in listed]
    assert subset.classes == ["n00000000", "n00000001", "n00000002"]  # every train class, sorted
    assert subset.targets.tolist() == [2, 0, 0, 1]
    image, target = subset[0]
    assert image.size == (12, 12) and target == 2


def test_missing_images_are_counted_and_named(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", classes=2, train_per_class=2)
    (tmp_path / "list.txt").write_text("n00000000_0.JPEG\nn00000000_7.JPEG\nn00000005_1.JPEG\n")
    with pytest.raises(FileNotFoundError) as err:
        build_subset(root / "train", tmp_path / "list.txt")
    message = str(err.value)
    assert "2 of the 3 images" in message
    assert str(root / "train" / "n00000000" / "n00000000_7.JPEG") in message
    assert str(root / "train" / "n00000005" / "n00000005_1.JPEG") in message
    assert "data.root" in message


@pytest.mark.parametrize(
    "text, reason",
    [
        ("n00000000_0.JPEG\nnot-a-file-name\n", "line 2"),
        ("n00000000_0.JPEG\nn00000000_0.JPEG\n", "listed twice"),
        ("\n# only a comment\n", "lists no images"),
    ],
)
def test_malformed_lists_name_the_problem(tmp_path, text, reason):
    (tmp_path / "list.txt").write_text(text)
    with pytest.raises(ValueError, match=reason):
        read_subset_list(tmp_path / "list.txt")


def test_missing_list_and_missing_train_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="subset list"):
        read_subset_list(tmp_path / "1percent.txt")
    (tmp_path / "list.txt").write_text("n00000000_0.JPEG\n")
    with pytest.raises(FileNotFoundError, match="ImageNet train folder"):
        build_subset(tmp_path / "nowhere", tmp_path / "list.txt")


def test_written_lists_are_class_balanced_and_read_back(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", classes=3, train_per_class=10)
    names = write_subset_list(root / "train", 0.2, tmp_path / "20percent.txt", seed=1)
    assert len(names) == 6 and sorted(Counter(class_of(n) for n in names).values()) == [2, 2, 2]
    subset = build_subset(root / "train", tmp_path / "20percent.txt")
    assert [p.name for p in subset.image_paths] == names
    assert np.bincount(subset.targets).tolist() == [2, 2, 2]
    assert len(write_subset_list(root / "train", 0.01, tmp_path / "1.txt")) == 3  # at least one per class
    assert len(Path(tmp_path / "1.txt").read_text().split()) == 3
