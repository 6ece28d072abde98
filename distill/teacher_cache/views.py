"""Bounded views for long schedules (``teacher.cache_views=K``): epoch ``e`` trains on view ``e mod K``.

A cache of a new view every epoch grows with the schedule (1.28M images x 200 epochs x 1024 x 2
bytes = 525 GB for a ViT-L teacher in float16). With K views per image it stops at K epochs'
worth: the images still come in a new order every epoch (the permutation of epoch ``e``), but
sample ``index`` of epoch ``e`` is augmented with the seed of epoch ``e mod K``
(``distill.data.sample_seed(train.seed, e mod K, index)``), so the student sees exactly the
crop whose teacher embedding is read from view file ``e mod K``, and SEED + MoCo's second view
repeats with it. The bound changes the training, not only the cache: a run with
``teacher.cache_dir=null`` and the same K trains on the same views (so a cached run stays
bit-identical to a live one), and K is part of the resume check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from ..data import ResumableSampler, sample_seed

log = logging.getLogger(__name__)


class BoundedViewsSampler(ResumableSampler):
    """A :class:`~distill.data.ResumableSampler` whose epoch ``e`` yields the augmentation seeds of
    epoch ``e mod views``; its order (and every rank's share) is still epoch ``e``'s."""

    def __init__(self, *args, views: int, **kwargs):
        super().__init__(*args, **kwargs)
        if views < 1:
            raise ValueError(f"views must be >= 1, got {views}")
        self.views = views

    def __iter__(self) -> Iterator[tuple[int, int]]:
        view = self.epoch % self.views
        for index in self.rank_indices(self.epoch, self.step_in_epoch).tolist():
            yield index, sample_seed(self.seed, view, index)


def training_sampler(cfg, dataset_len: int, batch_size_per_rank: int, rank: int, world_size: int) -> ResumableSampler:
    """The sampler of a distillation run of ``cfg``: a new view of every image each epoch, or with
    ``teacher.cache_views=K`` (and a strategy with a teacher) K views reused, cached or not."""
    from ..schema import NEEDS_TEACHER

    views = cfg.teacher.cache_views
    if views is None or cfg.distill.strategy not in NEEDS_TEACHER:
        return ResumableSampler(dataset_len, batch_size_per_rank, cfg.train.seed, rank, world_size)
    if cfg.teacher.cache_dir is None:
        log.warning(
            "teacher.cache_views=%d without teacher.cache_dir: nothing is cached, but the views still repeat "
            "every %d epochs (the training a cached run does)",
            views,
            views,
        )
    return BoundedViewsSampler(dataset_len, batch_size_per_rank, cfg.train.seed, rank, world_size, views=views)
