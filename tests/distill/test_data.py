import random

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from distill.data import (
    ResumableSampler,
    SeededViews,
    build_loader,
    build_source_dataset,
    mocov2_transform,
)


class RandomImages(Dataset):
    """``n`` fixed random RGB images, 40 x 48."""

    def __init__(self, n: int = 24):
        rng = np.random.default_rng(0)
        self.images = [Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)) for _ in range(n)]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index]


def keys(sampler, epoch=0, step=0):
    sampler.set_position(epoch, step)
    return list(sampler)


def batches(sampler, epoch=0, step=0):
    keys_ = keys(sampler, epoch, step)
    return [keys_[i : i + sampler.batch_size] for i in range(0, len(keys_), sampler.batch_size)]


def write_png(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.random.default_rng(seed).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(array).save(path)


# --- seeded views -------------------------------------------------------------------------


def test_views_are_a_function_of_the_key_and_leave_global_rng_alone():
    views = SeededViews(RandomImages(), mocov2_transform(32), num_views=2)
    torch_state, python_state = torch.get_rng_state(), random.getstate()
    first = views[(3, 123)]
    assert torch.equal(torch.get_rng_state(), torch_state) and random.getstate() == python_state
    torch.manual_seed(999)  # the caller's RNG must not matter
    again = views[(3, 123)]
    assert len(first) == 2 and first[0].shape == (3, 32, 32)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], first[1])  # query and key views differ
    assert not torch.equal(first[0], views[(3, 124)][0])


# --- sampler ------------------------------------------------------------------------------


def test_ranks_concatenated_in_rank_order_equal_the_single_process_batch():
    single = batches(ResumableSampler(50, batch_size_per_rank=8, seed=7))
    ranks = [batches(ResumableSampler(50, 4, seed=7, rank=r, world_size=2), epoch=0) for r in range(2)]
    assert len(single) == 50 // 8 == len(ranks[0]) == len(ranks[1])
    for step, batch in enumerate(single):
        assert ranks[0][step] + ranks[1][step] == batch
    indices = [index for batch in single for index, _ in batch]
    assert len(set(indices)) == len(indices)


def test_epochs_differ_and_resume_yields_the_tail_of_the_epoch():
    sampler = ResumableSampler(40, 4, seed=0, rank=1, world_size=2)
    assert sampler.steps_per_epoch() == 5
    epoch0, epoch1 = keys(sampler, 0), keys(sampler, 1)
    assert [i for i, _ in epoch0] != [i for i, _ in epoch1]
    assert dict(epoch0)[epoch0[0][0]] != dict(epoch1)[epoch0[0][0]]  # same image, new seed
    full = keys(sampler, 1)
    tail = keys(sampler, 1, step=3)
    assert tail == full[3 * 4 :] and len(sampler) == len(tail) == 8


def test_drop_last_false_pads_the_last_global_batch():
    sampler = ResumableSampler(10, 4, seed=0, drop_last=False)
    indices = [i for i, _ in keys(sampler)]
    assert sampler.steps_per_epoch() == 3 and len(indices) == 12 and set(indices) == set(range(10))


def test_sampler_rejects_a_dataset_smaller_than_a_global_batch():
    with pytest.raises(ValueError, match="3 images.*global batch of 4"):
        ResumableSampler(3, 2, seed=0, world_size=2)


def test_loader_batches_do_not_depend_on_workers():
    views = SeededViews(RandomImages(), mocov2_transform(24), num_views=2)
    results = []
    for num_workers in (0, 2):
        sampler = ResumableSampler(len(views), 4, seed=5)
        loader = build_loader(views, sampler, 4, num_workers=num_workers, pin_memory=False)
        sampler.set_position(epoch=1, step_in_epoch=2)
        results.append(list(loader))
    assert len(results[0]) == len(results[1]) == 24 // 4 - 2
    for batch0, batch2 in zip(*results):
        assert len(batch0) == 2 and batch0[0].shape == (4, 3, 24, 24)
        assert all(torch.equal(a, b) for a, b in zip(batch0, batch2))


def test_loader_with_index_yields_the_dataset_indices_beside_the_same_views():
    plain = SeededViews(RandomImages(), mocov2_transform(24), num_views=2)
    indexed = SeededViews(RandomImages(), mocov2_transform(24), num_views=2, with_index=True)
    sampler = ResumableSampler(len(plain), 4, seed=5, rank=1, world_size=2)
    sampler.set_position(epoch=1, step_in_epoch=1)
    expected = sampler.rank_indices(1, 1).view(-1, 4)
    batches = [list(build_loader(v, sampler, 4, num_workers=0, pin_memory=False)) for v in (plain, indexed)]
    assert len(batches[1]) == len(expected) == 24 // 8 - 1
    for views, (indexed_views, indices), want in zip(*batches, expected):
        assert torch.equal(indices, want) and all(torch.equal(a, b) for a, b in zip(views, indexed_views))


# --- sources ------------------------------------------------------------------------------


def test_imagefolder(tmp_path):
    for k, name in enumerate(["a/1.png", "a/2.png", "b/3.png"]):
        write_png(tmp_path / name, seed=k)
    dataset = build_source_dataset("imagefolder", root=str(tmp_path))
    assert len(dataset) == 3
    assert dataset[2].mode == "RGB" and dataset[2].size == (10, 12)


def test_filelist_resolves_relative_and_absolute_paths(tmp_path):
    write_png(tmp_path / "img" / "x.png")
    write_png(tmp_path / "y.png", seed=1)
    listing = tmp_path / "train.txt"
    listing.write_text(f"# comment\n\nimg/x.png 3\n{tmp_path / 'y.png'}\n")
    dataset = build_source_dataset("filelist", root=str(tmp_path), file_list=str(listing))
    assert len(dataset) == 2 and all(dataset[i].mode == "RGB" for i in range(2))
    assert len(build_source_dataset("filelist", file_list=str(listing))) == 2  # relative to the list file


def test_a_file_list_entry_that_leaves_the_root_is_refused_naming_the_line(tmp_path):
    from seed_core.errors import DataError

    write_png(tmp_path / "data" / "x.png")
    listing = tmp_path / "data" / "train.txt"
    listing.write_text("x.png\n../../etc/passwd 0\n")
    with pytest.raises(DataError, match=r"line 2: '../../etc/passwd' leads outside the root"):
        build_source_dataset("filelist", root=str(tmp_path / "data"), file_list=str(listing))
    listing.write_text("x.png\nsub/../x.png\n")  # .. that stays inside the root is fine
    assert len(build_source_dataset("filelist", root=str(tmp_path / "data"), file_list=str(listing))) == 2


def test_a_link_loop_in_an_image_folder_is_refused_naming_the_link(tmp_path):
    from seed_core.errors import DataError

    for k, name in enumerate(["a/1.png", "b/2.png"]):
        write_png(tmp_path / name, seed=k)
    (tmp_path / "a" / "again").symlink_to(tmp_path)  # a/again -> the root, which contains a/
    with pytest.raises(DataError, match=r"the link .*again' points back to .*: remove or fix the link"):
        build_source_dataset("imagefolder", root=str(tmp_path))
    (tmp_path / "a" / "again").unlink()
    (tmp_path / "a" / "more").symlink_to(tmp_path / "b")  # a link elsewhere, no loop: followed as before
    assert len(build_source_dataset("imagefolder", root=str(tmp_path))) == 3


@pytest.mark.parametrize("case", ["missing root", "empty folder", "missing list", "empty list", "missing image"])
def test_source_errors_name_the_path(tmp_path, case):
    listing = tmp_path / "list.txt"
    if case == "missing root":
        error, kwargs, name = FileNotFoundError, dict(source="imagefolder", root=str(tmp_path / "nope")), "nope"
    elif case == "empty folder":
        (tmp_path / "empty" / "class").mkdir(parents=True)
        error, kwargs, name = ValueError, dict(source="imagefolder", root=str(tmp_path / "empty")), "empty"
    elif case == "missing list":
        error, kwargs, name = FileNotFoundError, dict(source="filelist", file_list=str(listing)), "list.txt"
    elif case == "empty list":
        listing.write_text("# nothing\n\n")
        error, kwargs, name = ValueError, dict(source="filelist", file_list=str(listing)), "list.txt"
    else:
        listing.write_text("missing.png 0\n")
        error, kwargs, name = FileNotFoundError, dict(source="filelist", file_list=str(listing)), "missing.png"
    with pytest.raises(error, match=name):
        build_source_dataset(**kwargs)


def test_unknown_source_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'lmdb'.*imagefolder, filelist, demo"):
        build_source_dataset("lmdb")


def test_demo_source_is_offline_rgb_photos():
    dataset = build_source_dataset("demo", length=10)
    assert len(dataset) == 10 and len(dataset.photos) >= 8
    image = dataset[9]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and min(image.size) <= 512
    assert dataset[0] is dataset[len(dataset.photos)]
    view = mocov2_transform(64)(image)
    assert view.shape == (3, 64, 64) and view.dtype == torch.float32
