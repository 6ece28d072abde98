"""Teacher-embedding cache: the frozen teacher's embedding of every view, computed once.

Views are seeded per (train.seed, epoch, index) (:mod:`distill.data`), so the teacher's
embedding of the view that sample ``index`` gets in ``epoch`` is a pure function of the
teacher, the data, the augmentation seed, ``epoch`` and ``index``. The first run writes it
as it computes it; a later run with the same key reads it instead of running the teacher
(SEED's tau_T and queue sweeps, several students of one teacher). A run that finds every
step it will take in the cache does not even build the teacher.

- :mod:`.key`: what identifies a cache (teacher, views, data, compute, stored dtype) and which
  configs share one;
- :mod:`.layout`: the folder's files, ``meta.json`` (a damaged one is refused in one line), sizes;
- :mod:`.storage`: :class:`TeacherCache`, reading and writing rows (pwrite, flush, then the
  written mask; memory-mapped reads), the disk check;
- :mod:`.feed`: :class:`CachedTeacher`, the teacher's embeddings of a training batch through it;
- :mod:`.views`: ``teacher.cache_views=K``, K views per image reused over a long schedule.

What is stored is the teacher's embedding, the vector the SEED loss takes: with
``teacher.use_head=true`` the projection head's output (128-d for MoCo v2), otherwise the
pooled backbone feature (2048-d for a ResNet-50; 384 to 1536-d, or twice that for
``vit_pool=cls+mean``, for a DINOv2/DINOv3 ViT), L2-normalised. Patch tokens are not cached.
"""

from .feed import CachedTeacher, teacher_output
from .key import (
    CACHE_FORMAT,
    cache_key,
    file_sha256,
    key_digest,
    share_teacher_cache,
    teacher_identity,
    teacher_views,
    weights_sha256,
)
from .layout import META_NAME, CacheError, size_text
from .storage import TeacherCache
from .views import BoundedViewsSampler, training_sampler

__all__ = [
    "CACHE_FORMAT",
    "META_NAME",
    "BoundedViewsSampler",
    "CacheError",
    "CachedTeacher",
    "TeacherCache",
    "cache_key",
    "file_sha256",
    "key_digest",
    "share_teacher_cache",
    "size_text",
    "teacher_identity",
    "teacher_output",
    "teacher_views",
    "training_sampler",
    "weights_sha256",
]
