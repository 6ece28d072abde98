"""Typed defaults of ``tools/distill.py``: the paper's settings (Fang et al., ICLR 2021, Sec. 4.1).

YAML files in ``configs/distill/`` override these; every key is documented here once.
"""

from dataclasses import dataclass, field
from typing import ClassVar

from seed_core.config import ConfigError
from seed_core.runtime.precision import Precision, check_amp_dtype, resolve_precision
from seed_core.value_ranges import ANY, above, at_least, within

from .vit import POOLS as VIT_POOLS

STRATEGIES = ("seed", "moco", "l2", "seed+moco", "seed+dense")
NEEDS_TEACHER = ("seed", "l2", "seed+moco", "seed+dense")
LIVE_TEACHER = ("seed+dense",)  # they read the teacher's feature maps, which the teacher cache does not hold
SEED_FAMILY = ("seed", "seed+moco", "seed+dense")  # the strategies with the SEED loss (and its queue)
CACHE_DTYPES = ("float32", "float16")  # teacher.cache_dtype
TEACHER_UNSAFE_OPTION = "teacher.allow_unsafe_pickle=true"  # named when the safe unpickler refuses the teacher


@dataclass
class StudentConfig:
    RANGES: ClassVar = {"embed_dim": at_least(1)}
    arch: str = "resnet18"  # torchvision name (resnet18, mobilenet_v3_large, efficientnet_b0) or timm:<name>
    embed_dim: int = 128  # head output when the teacher does not fix it (plain MoCo)


@dataclass
class TeacherConfig:
    RANGES: ClassVar = {
        "input_size": at_least(1),
        "input_norm": ANY,
        "cache_batch_size": at_least(1),
        "cache_views": at_least(1),
    }
    # Architecture of the checkpoint: resnet50/101/152, wide_resnet50_2, ...; a DINOv2/DINOv3 ViT by the
    # authors' torch.hub name (dinov2_vits14, dinov2_vits14_reg, dinov2_vitg14, dinov3_vits16, dinov3_vitb16,
    # ...) or timm's (timm:vit_small_patch14_dinov2); auto: what the file records (a Hugging Face or timm
    # folder's config.json, a MoCo file's arch entry).
    arch: str = "resnet50"
    # Checkpoint path (MoCo/SwAV/SimCLR/DINO/torchvision/timm; DINOv2/DINOv3 .pth as the authors publish
    # them; a Hugging Face folder with config.json and model.safetensors); pkg://module/file for a packaged one
    weights: str | None = None
    layout: str = "auto"  # auto or one of distill.checkpoints.LAYOUTS
    use_head: bool = True  # use the checkpoint's projection head when it has one; else pooled features
    # A ViT teacher's (DINOv2/DINOv3) embedding, read after the final norm: cls (the class token), mean
    # (the mean of the patch tokens) or cls+mean (both concatenated: DINOv2's linear-probe feature).
    # Register/storage tokens never enter it. Other teachers pool as their architecture does: cls only.
    vit_pool: str = "cls"
    input_size: int | None = None  # resize the student's view to this size for the teacher (None: same view)
    # What the teacher was trained to take as input. The student's views are ImageNet-normalised;
    # the teacher gets them re-normalised to this (exact, per channel). The published families:
    # MoCo v1/v2/v3, SwAV, DINO, DINOv2, DINOv3 (LVD-1689M), torchvision and timm models take ImageNet
    # mean/std; SimCLR files converted from TensorFlow (tonylins/simclr-converter resnet50-1x.pth) take
    # [0, 1] pixels; DINOv3's satellite (SAT-493M) models take [0.430, 0.411, 0.296, 0.213, 0.156, 0.143].
    # auto: the layout decides (simclr -> none, every other -> imagenet); imagenet; none ([0, 1]);
    # or [mean_r, mean_g, mean_b, std_r, std_g, std_b] for any other.
    input_norm: str | list[float] = "auto"
    allow_unsafe_pickle: bool = False  # torch.load(weights_only=False): only for checkpoints you trust
    # Teacher-embedding cache (distill/teacher_cache/): the teacher's embedding of every view, written by
    # the first run and read by every later run with the same teacher, data and train.seed. None: off.
    cache_dir: str | None = None
    cache_batch_size: int | None = None  # batch of tools/distill.py --teacher-only (None: the per-rank batch)
    # How the cache stores the embeddings: float32 as the teacher gives them (float32; float16 under AMP on
    # CUDA); float16 rounded to float16, half the disk of wide use_head=false embeddings (ViTs: 384-1536-d).
    cache_dtype: str = "float32"
    # Bounded cache for long schedules: K views per image, reused: epoch e trains on view e mod K (its crop and
    # its teacher embedding), also without cache_dir, so cached and live runs stay the same. None: one per epoch.
    cache_views: int | None = None


@dataclass
class DistillSettings:
    RANGES: ClassVar = {
        "queue_size": at_least(1),
        "tau_student": above(0),
        "tau_teacher": above(0),
        "moco_temperature": above(0),
        "moco_momentum": within(0, 1, high_open=True),
        "moco_weight": at_least(0),
        "dense_weight": at_least(0),
        "centering_momentum": within(0, 1, high_open=True),
    }
    strategy: str = "seed"  # seed | moco (no teacher) | l2 | seed+moco | seed+dense
    queue_size: int = 65536  # K; any K >= the global batch works (the queue wraps around)
    tau_student: float = 0.2  # tau_S
    # tau_T = 0.01 is the paper's value; the authors' released code defaults to 1e-4.
    tau_teacher: float = 0.01
    moco_temperature: float = 0.2  # MoCo v2
    moco_momentum: float = 0.999  # key encoder EMA
    moco_weight: float = 1.0  # weight of the MoCo term in seed+moco
    # weight of the dense term in seed+dense: the student's projected feature map regresses the teacher's
    # L2-normalised patch features (distill/losses/dense.py); needs a live teacher (patch features are not cached)
    dense_weight: float = 1.0
    # Centre the teacher's embeddings with a running mean before scoring and queueing them (DINO's
    # teacher centring; distill/centering.py). Off in the paper; meant for head-less teachers, whose
    # pooled features share a large common component. seed, seed+moco and seed+dense only.
    teacher_centering: bool = False
    centering_momentum: float = 0.9


@dataclass
class DataConfig:
    RANGES: ClassVar = {
        "image_size": at_least(1),
        "crop_scale_min": within(0, 1, low_open=True),
        "num_workers": at_least(0),
        "demo_length": at_least(1),
        "max_bad_images": at_least(0),
    }
    source: str = "imagefolder"  # imagefolder | filelist | demo | stamps
    root: str | None = None  # ImageNet-style train folder, or the root of file_list paths
    file_list: str | None = None  # one image path per line (source=filelist)
    image_size: int = 224  # RandomResizedCrop size of the MoCo v2 augmentation
    # The SEED authors' code changes the MoCo v2 augmentation for two teacher families
    # (jacobswan1/SEED, tools/utils.py): SwAV teachers crop down to 0.14 of the image, SimCLR
    # teachers are distilled without Gaussian blur.
    crop_scale_min: float = 0.2  # smallest RandomResizedCrop area fraction (MoCo v2: 0.2; SwAV teachers: 0.14)
    blur: bool = True  # MoCo v2's Gaussian blur (p = 0.5); false for SimCLR teachers
    # JPEGs decoded at 1/2, 1/4 or 1/8 size when every crop keeps at least image_size pixels across
    # (distill/data.py: draft_short_side); off: every image decoded at full size, as before
    jpeg_draft: bool = False
    num_workers: int = 8  # per process
    demo_length: int = 4096  # virtual epoch length of the demo source
    # Bad images (empty, not an image, truncated, over PIL.Image.MAX_IMAGE_PIXELS) are skipped, each
    # replaced by the next readable one (distill/bad_images.py), up to this many: < 1 a fraction of
    # the images, rounded up (0.001: 1282 of ImageNet's 1.28M, and one in any smaller set), >= 1 a
    # count, 0 none. A few broken downloads change nothing; more mean a wrong or damaged copy.
    max_bad_images: float = 0.001


@dataclass
class OptimConfig:
    RANGES: ClassVar = {
        "epochs": at_least(1),
        "batch_size": at_least(1),
        "base_lr": above(0),
        "momentum": within(0, 1, high_open=True),
        "weight_decay": at_least(0),
        "warmup_epochs": at_least(0),
    }
    epochs: int = 200
    batch_size: int = 256  # global, over all processes
    base_lr: float = 0.03  # lr = base_lr * batch_size / 256
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_epochs: float = 5.0  # linear warm-up, then cosine decay to 0, per iteration


@dataclass
class TrainConfig:
    RANGES: ClassVar = {
        "seed": at_least(0),
        "checkpoint_every": at_least(1),
        "log_every": at_least(1),
        "max_steps": at_least(1),
    }
    output_dir: str = "outputs/distill"
    seed: int = 0
    # Mixed precision and layout (seed_core/runtime/precision.py has the rule and its measurements):
    amp: bool = True  # autocast where the device has fast low-precision units; false: float32 everywhere
    amp_dtype: str = "auto"  # auto | fp16 | bf16; auto: fp16 on CUDA, bf16 on a CPU with bf16 units, else float32
    channels_last: bool = True  # on CUDA; on the CPU only together with bf16 autocast (slower in float32)
    sync_bn: bool = False  # SyncBatchNorm in the student under DDP
    checkpoint_every: int = 1000  # steps between atomic checkpoints (and one at the end)
    log_every: int = 20  # steps between CSV/TensorBoard rows
    max_steps: int | None = None  # stop after this global step (the schedule still spans all epochs)
    tensorboard: bool = True


@dataclass
class DistillConfig:
    student: StudentConfig = field(default_factory=StudentConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    distill: DistillSettings = field(default_factory=DistillSettings)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        """Names and checks across keys; each number's own range is its ``RANGES`` entry, checked
        before this by :func:`seed_core.config.load_config`."""
        d, o = self.distill, self.optim
        if d.strategy not in STRATEGIES:
            raise ConfigError(f"distill.strategy={d.strategy!r}: choose one of {', '.join(STRATEGIES)}")
        if d.queue_size < o.batch_size:
            raise ConfigError(
                f"distill.queue_size={d.queue_size} is smaller than the global batch optim.batch_size="
                f"{o.batch_size}: a step must fit in the queue; use queue_size >= {o.batch_size} "
                f"(any such value works, the queue wraps around)"
            )
        if d.teacher_centering and d.strategy not in SEED_FAMILY:
            raise ConfigError(
                f"distill.teacher_centering=true centres the teacher's embeddings of the SEED loss; "
                f"strategy {d.strategy!r} has none: use seed, seed+moco or seed+dense, or leave it false"
            )
        if d.strategy in NEEDS_TEACHER and not self.teacher.weights:
            raise ConfigError(
                f"distill.strategy={d.strategy!r} needs a teacher: set teacher.weights=/path/to/checkpoint "
                f"(e.g. MoCo v2's moco_v2_200ep_pretrain.pth.tar) and teacher.arch"
            )
        t = self.teacher
        if d.strategy in LIVE_TEACHER and t.cache_dir is not None:
            raise ConfigError(
                "distill.strategy=seed+dense needs the live teacher's patch features, which the teacher cache "
                "does not hold: set teacher.cache_dir=null"
            )
        if t.cache_dir is not None and not t.cache_dir.strip():
            raise ConfigError(
                "teacher.cache_dir is empty: give a folder (teacher.cache_dir=/path/teacher_cache) "
                "or null to run the teacher live"
            )
        if t.vit_pool not in VIT_POOLS:
            raise ConfigError(f"teacher.vit_pool={t.vit_pool!r}: choose one of {', '.join(VIT_POOLS)}")
        if t.cache_dtype not in CACHE_DTYPES:
            raise ConfigError(f"teacher.cache_dtype={t.cache_dtype!r}: choose one of {', '.join(CACHE_DTYPES)}")
        check_amp_dtype(self.train.amp_dtype)
        self._validate_data()
        self._validate_archs()
        check_input_norm(t.input_norm)

    def _validate_data(self) -> None:
        from .data import SOURCES

        data = self.data
        if data.source not in SOURCES:
            raise ConfigError(f"data.source={data.source!r}: choose one of {', '.join(SOURCES)}")
        if data.source in ("imagefolder", "filelist") and not (data.root or data.file_list):
            raise ConfigError(f"data.source={data.source!r} needs data.root=/path/to/train (ImageNet-style folder)")
        if data.max_bad_images >= 1 and not data.max_bad_images.is_integer():
            raise ConfigError(
                f"data.max_bad_images={data.max_bad_images:g}: give a fraction of the images in [0, 1) "
                f"(e.g. 0.001) or a whole number of images (e.g. 10)"
            )

    def _validate_archs(self) -> None:
        """Unknown architectures are found here, before any data or teacher is loaded."""
        from .models import check_arch

        check_arch(self.student.arch, "student.arch")
        if self.distill.strategy in NEEDS_TEACHER and self.teacher.arch != "auto":
            check_arch(self.teacher.arch, "teacher.arch")


INPUT_NORMS = ("auto", "imagenet", "none")


def check_input_norm(value: str | list[float]) -> None:
    """``teacher.input_norm`` is a name of INPUT_NORMS or 3 means and 3 positive stds."""
    if isinstance(value, str):
        if value not in INPUT_NORMS:
            raise ConfigError(
                f"teacher.input_norm={value!r}: choose one of {', '.join(INPUT_NORMS)} or give "
                f"[mean_r, mean_g, mean_b, std_r, std_g, std_b]"
            )
    elif len(value) != 6 or min(value[3:]) <= 0:
        raise ConfigError(
            f"teacher.input_norm={value}: an explicit normalisation is 6 numbers, "
            f"[mean_r, mean_g, mean_b, std_r, std_g, std_b], with every std > 0"
        )


def run_precision(cfg: DistillConfig, device) -> Precision:
    """The step's arithmetic and layout on ``device`` (:mod:`seed_core.runtime.precision`'s rule)."""
    return resolve_precision(device, cfg.train.amp, cfg.train.amp_dtype, cfg.train.channels_last)
