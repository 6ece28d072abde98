"""Published self-supervised / supervised checkpoints -> backbone weights (+ projection head).

Layouts, as the published files are laid out (``module.`` is DistributedDataParallel's
prefix; it is removed wherever every key carries it):

- ``seed-student``: our export (:mod:`distill.export`), ``{"format", "arch", "state_dict", "meta"}``.
- ``mocov1`` / ``mocov2`` (facebookresearch/moco): ``{"epoch", "arch", "state_dict", "optimizer"}``
  with ``module.encoder_q.*``, ``module.encoder_k.*``, ``module.queue``, ``module.queue_ptr``.
  Head ``encoder_q.fc``: Linear(2048, 128) (v1) or ``fc.0``/``fc.2`` Linear-ReLU-Linear (v2).
- ``mocov3`` (facebookresearch/moco-v3): ``module.base_encoder.*``, ``module.momentum_encoder.*``,
  ``module.predictor.*``. ResNet head ``base_encoder.fc.0..4``: Linear-BN-ReLU-Linear-BN(affine=False);
  a file without it (projector removed) loads only with ``use_head=False``.
- ``swav`` (facebookresearch/swav): a bare state dict ``module.conv1.weight``, ...,
  ``module.projection_head.{0,1,3}`` Linear-BN-ReLU-Linear and ``module.prototypes.weight`` (dropped).
- ``simclr`` (tonylins/simclr-converter): ``{"state_dict": torchvision keys}``; ``fc`` is the
  linear-eval classifier, dropped.
- ``dino`` (facebookresearch/dino): ``{"student", "teacher", "optimizer", "epoch", "args", ...}``;
  the teacher's ``backbone.*`` is used, its ``head.*`` (prototype logits, 65536 by default)
  dropped. The backbone-only release files are plain torchvision/timm state dicts (detected as those).
- ``torchvision`` / ``timm``: a plain state dict (optionally under ``"state_dict"``); the final
  classifier Linear is dropped. For ResNets the two are indistinguishable and either works.
  A timm folder (``config.json`` naming its ``architecture``, ``model.safetensors``) records its arch.
- ``dinov2`` / ``dinov3`` (facebookresearch/dinov2, facebookresearch/dinov3): the ViT state dicts of
  the authors' releases, recognised by ``mask_token`` + ``pos_embed`` (DINOv2) and by
  ``storage_tokens`` or ``rope_embed.*`` (DINOv3); ``huggingface``: a folder with ``config.json``
  and ``model.safetensors`` of transformers' ``Dinov2Model``, ``Dinov2WithRegistersModel`` or
  ``DINOv3ViTModel``, which records its architecture. All three load into
  :class:`distill.vit.DinoViT` (:mod:`distill.vit_checkpoints` maps the names).

Checkpoints are unpickled with ``weights_only=True``; every key that does not fit the
model is reported by name, as detectron2's converters do, and what the file holds but the
model does not use (momentum encoders, queues, classifiers, prototypes, optimizer state) is
logged in one line.
"""

import logging
import re
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from seed_core.checkpoint_files import ModelFolder, safe_load
from seed_core.errors import CheckpointError

from .export import STUDENT_FORMAT
from .models import TIMM_PREFIX, build_backbone
from .vit import BUILDERS as VIT_BUILDERS
from .vit import describe_vit
from .vit_checkpoints import HF_ARCHITECTURES, HF_MODEL_TYPES, convert_dinov2, convert_dinov3, convert_hf

log = logging.getLogger(__name__)

LAYOUTS = (
    "seed-student",
    "mocov1",
    "mocov2",
    "mocov3",
    "swav",
    "simclr",
    "dino",
    "torchvision",
    "timm",
    "dinov2",
    "dinov3",
    "huggingface",
)
# Explicit layouts that also accept a file detected as another (plain state dicts look alike).
_ALSO_ACCEPTS = {
    "torchvision": {"timm"},
    "timm": {"torchvision"},
    "dino": {"torchvision", "timm"},
    "simclr": {"torchvision"},
}
# Key prefixes only timm models have (EfficientNet/MobileNet, ConvNeXt, ViT).
_TIMM_PREFIXES = ("conv_stem.", "blocks.", "stages.", "patch_embed.", "cls_token")
# Final classifier module names in torchvision and timm. ``classifier.0`` is never one (in a
# MobileNetV3 backbone it is the hidden 960 -> 1280 layer that build_backbone keeps).
_CLASSIFIER_NAME = re.compile(r"(fc|head|head\.fc|heads\.head|last_linear|classifier(\.[1-9]\d*)?)")
# Top-level entries a parser reads (weights or metadata); any other entry is reported as unused.
_READ_ENTRIES = ("format", "arch", "epoch", "args", "meta", "state_dict", "teacher")


@dataclass
class ParsedCheckpoint:
    layout: str  # one of LAYOUTS
    backbone: dict[str, torch.Tensor]  # named like build_backbone's module, classifier removed
    head: dict[str, torch.Tensor] | None  # projection head as an nn.Sequential state dict, or None
    meta: dict = field(default_factory=dict)  # "arch", "epoch" when the file says so; "dropped" parts
    unused: dict[str, tuple[int, int]] = field(default_factory=dict)  # dropped weights: name -> (tensors, values)


def _under(sd: dict, prefix: str) -> dict:
    """The entries of ``sd`` whose key starts with ``prefix``, prefix removed."""
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def _state_dict(obj) -> dict[str, torch.Tensor] | None:
    """``obj["state_dict"]`` or ``obj`` itself if it is a dict of tensors; ``module.`` removed."""
    sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if (
        not isinstance(sd, dict)
        or not sd
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items())
    ):
        return None
    return _under(sd, "module.") if all(k.startswith("module.") for k in sd) else sd


def _has(sd: dict, *prefixes: str) -> bool:
    return any(k.startswith(prefixes) for k in sd)


def _tally(sd: dict[str, torch.Tensor], *names: str) -> dict[str, tuple[int, int]]:
    """(tensors, values) of each module or tensor ``name`` of ``sd`` that is there; a module
    (keys ``name.*``) is labelled ``name.*``."""
    out = {}
    for name in names:
        keys = [k for k in sd if k == name or k.startswith(name + ".")]
        if keys:
            label = name if keys == [name] else f"{name}.*"
            out[label] = (len(keys), sum(sd[k].numel() for k in keys))
    return out


def _describe(obj) -> str:
    if isinstance(obj, ModelFolder):
        found = {k: obj.config[k] for k in ("model_type", "architectures", "architecture") if k in obj.config}
        return f"a model folder whose config.json has {found or 'no model_type or architecture'}"
    if not isinstance(obj, dict):
        return f"a {type(obj).__name__}, not a dict"
    text = f"top-level keys {list(obj)[:10]}"
    inner = obj.get("state_dict", obj.get("model"))
    if isinstance(inner, dict):
        text += f", state-dict keys {list(inner)[:5]}"
    return text


def detect_layout(obj) -> str:
    """The name in :data:`LAYOUTS` that ``obj`` (a loaded checkpoint) is laid out as."""
    if isinstance(obj, ModelFolder):
        if "model_type" in obj.config or "architectures" in obj.config:  # transformers
            if obj.config.get("model_type") in HF_MODEL_TYPES:
                return "huggingface"
            raise CheckpointError(
                f"unsupported Hugging Face model: found {_describe(obj)}; supported: {', '.join(HF_ARCHITECTURES)}"
            )
        if "architecture" in obj.config:  # timm
            return "timm"
        raise CheckpointError(f"unknown model folder: found {_describe(obj)}")
    if isinstance(obj, dict):
        if obj.get("format") == STUDENT_FORMAT:
            return "seed-student"
        if isinstance(obj.get("teacher"), dict) and isinstance(obj.get("student"), dict):
            return "dino"
    sd = _state_dict(obj)
    if sd is not None:
        if _has(sd, "base_encoder."):
            return "mocov3"
        if _has(sd, "encoder_q."):
            return "mocov2" if "encoder_q.fc.0.weight" in sd else "mocov1"
        if _has(sd, "projection_head.", "prototypes."):
            return "swav"
        if list(obj) == ["state_dict"] and "fc.weight" in obj["state_dict"]:  # no module., no epoch...
            return "simclr"
        if "storage_tokens" in sd or _has(sd, "rope_embed."):
            return "dinov3"
        if "mask_token" in sd and "pos_embed" in sd:
            return "dinov2"
        if any(k.endswith(".weight") for k in sd):
            return "timm" if _has(sd, *_TIMM_PREFIXES) else "torchvision"
    raise CheckpointError(f"unknown checkpoint layout: found {_describe(obj)}; supported layouts: {', '.join(LAYOUTS)}")


def _as_head(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """Head keys as an nn.Sequential state dict: a single Linear (``weight``, ``bias``) becomes ``0.*``."""
    if not sd:
        return None
    return {f"0.{k}": v for k, v in sd.items()} if set(sd) <= {"weight", "bias"} else sd


def _drop_classifier(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Split off the final classification Linear: the last 2-D ``<name>.weight`` of ``sd``
    (state dicts follow module order) if ``<name>`` is a classifier name."""
    linear = [k[: -len(".weight")] for k, v in sd.items() if k.endswith(".weight") and v.dim() == 2]
    if not linear or not _CLASSIFIER_NAME.fullmatch(linear[-1]):
        return sd, []
    dropped = [f"{linear[-1]}.{p}" for p in ("weight", "bias") if f"{linear[-1]}.{p}" in sd]
    return {k: v for k, v in sd.items() if k not in dropped}, dropped


def _meta(obj) -> dict:
    meta = {k: obj[k] for k in ("arch", "epoch") if isinstance(obj, dict) and k in obj}
    arch = getattr(obj.get("args"), "arch", None) if isinstance(obj, dict) else None
    return {**meta, "arch": arch} if arch is not None else meta


def _parse_moco(obj, layout: str) -> ParsedCheckpoint:
    sd = _state_dict(obj)
    if layout == "mocov3":
        encoder = _under(sd, "base_encoder.")
        if _has(encoder, *_TIMM_PREFIXES):
            raise CheckpointError(
                "only ResNet MoCo v3 checkpoints are supported; this one has base_encoder keys "
                f"{list(encoder)[:5]} (a ViT: its layout differs from timm's ViTs)"
            )
        dropped = ["momentum_encoder", "predictor"]
    else:
        encoder, dropped = _under(sd, "encoder_q."), ["encoder_k", "queue", "queue_ptr"]
    backbone = {k: v for k, v in encoder.items() if not k.startswith("fc.")}
    return ParsedCheckpoint(
        layout, backbone, _as_head(_under(encoder, "fc.")), {**_meta(obj), "dropped": dropped}, _tally(sd, *dropped)
    )


def _parse_swav(obj, layout: str) -> ParsedCheckpoint:
    sd = _state_dict(obj)
    backbone = {k: v for k, v in sd.items() if not k.startswith(("projection_head.", "prototypes."))}
    head = _as_head(_under(sd, "projection_head."))
    return ParsedCheckpoint(layout, backbone, head, {**_meta(obj), "dropped": ["prototypes"]}, _tally(sd, "prototypes"))


def _parse_dino(obj, layout: str) -> ParsedCheckpoint:
    if not isinstance(obj, dict) or not isinstance(obj.get("teacher"), dict):  # backbone-only release file
        return _parse_plain(obj, layout)
    teacher = _state_dict(obj["teacher"])
    if teacher is None or not _has(teacher, "backbone."):
        raise CheckpointError(f"DINO checkpoint without teacher backbone.* weights: {_describe(obj['teacher'])}")
    dropped = ["student", "teacher head (DINO head: prototype logits, not an embedding)"]
    unused = {f"teacher {k}": v for k, v in _tally(teacher, "head").items()}
    student = _state_dict(obj.get("student"))
    if student is not None:
        unused["student.*"] = (len(student), sum(v.numel() for v in student.values()))
    return ParsedCheckpoint(layout, _under(teacher, "backbone."), None, {**_meta(obj), "dropped": dropped}, unused)


def _parse_plain(obj, layout: str) -> ParsedCheckpoint:
    if isinstance(obj, ModelFolder):  # a timm folder: its config.json names the model
        parsed = _parse_plain(obj.state_dict, layout)
        parsed.meta["arch"] = TIMM_PREFIX + obj.config["architecture"]
        return parsed
    sd = _state_dict(obj)
    backbone, dropped = _drop_classifier(sd)
    classifier = dict.fromkeys(k.rpartition(".")[0] for k in dropped)
    return ParsedCheckpoint(layout, backbone, None, {**_meta(obj), "dropped": dropped}, _tally(sd, *classifier))


def _unused_parts(sd: dict[str, torch.Tensor], dropped: list[str]) -> dict[str, tuple[int, int]]:
    """Tally of the ``dropped`` keys of ``sd``, by module (``local_cls_norm.*``) or tensor (``mask_token``)."""
    parts = dict.fromkeys(k.rpartition(".")[0] if k.endswith((".weight", ".bias")) else k for k in dropped)
    return _tally({k: sd[k] for k in dropped}, *parts)


def _parse_vit(obj, layout: str) -> ParsedCheckpoint:
    sd = _state_dict(obj)
    backbone, dropped = (convert_dinov2 if layout == "dinov2" else convert_dinov3)(sd)
    unused = _unused_parts(sd, dropped)
    return ParsedCheckpoint(layout, backbone, None, {**_meta(obj), "dropped": list(unused)}, unused)


def _parse_huggingface(obj, layout: str) -> ParsedCheckpoint:
    backbone, dropped, spec = convert_hf(obj.config, obj.state_dict)
    unused = _unused_parts(obj.state_dict, dropped)
    meta = {"vit": spec, "model_type": obj.config["model_type"], "dropped": list(unused)}
    return ParsedCheckpoint(layout, backbone, None, meta, unused)


def _parse_student(obj, layout: str) -> ParsedCheckpoint:
    return ParsedCheckpoint(layout, dict(obj["state_dict"]), None, {**obj.get("meta", {}), "arch": obj["arch"]})


_PARSERS = {
    "seed-student": _parse_student,
    "mocov1": _parse_moco,
    "mocov2": _parse_moco,
    "mocov3": _parse_moco,
    "swav": _parse_swav,
    "simclr": _parse_plain,
    "dino": _parse_dino,
    "torchvision": _parse_plain,
    "timm": _parse_plain,
    "dinov2": _parse_vit,
    "dinov3": _parse_vit,
    "huggingface": _parse_huggingface,
}


def parse_checkpoint(obj, layout: str = "auto") -> ParsedCheckpoint:
    """Backbone weights, projection head and metadata of a loaded checkpoint.

    ``layout="auto"`` detects it; an explicit layout must match what the file holds.
    """
    if layout != "auto" and layout not in LAYOUTS:
        raise CheckpointError(f"unknown layout {layout!r}; supported: auto, {', '.join(LAYOUTS)}")
    try:
        found = detect_layout(obj)
    except CheckpointError as e:
        if layout == "auto":
            raise
        raise CheckpointError(f"expected a {layout} checkpoint, but the file matches no known layout: {e}") from None
    if layout != "auto" and layout != found and found not in _ALSO_ACCEPTS.get(layout, ()):
        raise CheckpointError(f"expected a {layout} checkpoint, but the file is laid out as {found} ({_describe(obj)})")
    layout = found if layout == "auto" else layout
    return _PARSERS[layout](obj, layout)


def _index_keys(head_sd: dict[str, torch.Tensor]) -> dict[int, set[str]]:
    indices: dict[int, set[str]] = {}
    for key in head_sd:
        index, _, name = key.partition(".")
        indices.setdefault(int(index), set()).add(name)
    return indices


def build_head(head_sd: dict[str, torch.Tensor]) -> nn.Sequential:
    """Rebuild a projection head from its nn.Sequential state dict: ``i.weight`` 2-D -> Linear
    (bias iff ``i.bias``), ``i.running_mean`` -> BatchNorm1d (affine iff ``i.weight``), absent
    indices between them -> ReLU. Covers MoCo v2 (Linear-ReLU-Linear), SwAV (Linear-BN-ReLU-Linear)
    and MoCo v3 (Linear-BN-ReLU-Linear-BN(affine=False))."""
    indices = _index_keys(head_sd)
    layers: list[nn.Module] = []
    for i in range(max(indices) + 1):
        names = indices.get(i, set())
        if "running_mean" in names:
            layers.append(nn.BatchNorm1d(head_sd[f"{i}.running_mean"].shape[0], affine="weight" in names))
        elif "weight" in names and head_sd[f"{i}.weight"].dim() == 2:
            out_dim, in_dim = head_sd[f"{i}.weight"].shape
            layers.append(nn.Linear(in_dim, out_dim, bias="bias" in names))
        elif not names:
            layers.append(nn.ReLU(inplace=True))
        else:
            raise CheckpointError(f"cannot rebuild projection-head layer {i} from its keys {sorted(names)}")
    head = nn.Sequential(*layers)
    head.load_state_dict(head_sd)
    return head


def head_out_dim(head_sd: dict[str, torch.Tensor]) -> int:
    """Output size of the head: the last Linear's out_features."""
    linear = [i for i, names in _index_keys(head_sd).items() if "weight" in names and head_sd[f"{i}.weight"].dim() == 2]
    return head_sd[f"{max(linear)}.weight"].shape[0]


def _guess_arch(state: dict[str, torch.Tensor]) -> str:
    """A hint such as 'resnet50' for torchvision-named ResNet weights or 'a dinov2 ViT of width 384,
    depth 12 (dinov2_vits14)' for ViT weights, else ''."""
    if "cls_token" in state:
        return describe_vit(state)
    blocks = len({k.split(".")[1] for k in state if k.startswith("layer3.")})  # 2/6 basic, 6/23/36 bottleneck
    depth = ({6: 50, 23: 101, 36: 152} if "layer1.0.conv3.weight" in state else {2: 18, 6: 34}).get(blocks)
    return f"resnet{depth} (or a wide/ResNeXt variant of that depth)" if depth else ""


def _listing(what: str, items: list[str], limit: int = 10) -> str:
    more = f", ... (+{len(items) - limit} more)" if len(items) > limit else ""
    return f"{what} ({len(items)}): {', '.join(items[:limit])}{more}"


def load_backbone_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load ``state`` into a :func:`distill.models.build_backbone` module, refusing any mismatch:
    missing keys (BN ``num_batches_tracked`` aside), unexpected keys and shape mismatches are
    all listed by name in the :class:`CheckpointError`. A model's ``optional_state`` keys (e.g.
    :class:`~distill.vit.DinoViT`'s RoPE periods) keep the model's value when the checkpoint lacks them."""
    expected = model.state_dict()
    optional = getattr(model, "optional_state", ())
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked") and k not in optional]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        problems = [
            _listing(what, items)
            for what, items in (
                ("shape mismatches", mismatched),
                ("missing from the checkpoint", missing),
                ("unexpected in the checkpoint", unexpected),
            )
            if items
        ]
        guess = _guess_arch(state)
        looks = f" (the weights look like {guess})" if guess else ""
        if missing or unexpected:
            why = f", probably the wrong architecture{looks}"
        else:  # every name fits: not another architecture, but another width of it, or an edited file
            why = f": every name fits, not every shape (another width of this architecture{looks}, or an edited file)"
        raise CheckpointError(f"{source} does not fit the {type(model).__name__} backbone{why}. " + "; ".join(problems))
    model.load_state_dict(state, strict=False)  # strict apart from num_batches_tracked and optional_state


def _count(tensors: int, values: int) -> str:
    amount = f"{values / 1e6:.1f}M values" if values >= 100_000 else f"{values} value{'s' * (values != 1)}"
    return f"{tensors} tensors, {amount}" if tensors > 1 else amount


def _log_unused(path, obj, parsed: ParsedCheckpoint, head_used: bool) -> None:
    """One line: the weights and top-level entries of the file that the loaded model does not use."""
    unused = dict(parsed.unused)
    if parsed.head and not head_used:
        unused["projection head (use_head=False)"] = (len(parsed.head), sum(v.numel() for v in parsed.head.values()))
    parts = [f"{name} ({_count(*size)})" for name, size in unused.items()]
    reported = {name.removesuffix(".*") for name in unused}
    if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):  # not a bare state dict
        parts += [f"entry {key!r}" for key in obj if key not in _READ_ENTRIES and key not in reported]
    if parts:
        log.info("%s (layout %s): not used: %s", path, parsed.layout, "; ".join(parts))


def load_pretrained(
    path,
    arch: str | None,
    layout: str = "auto",
    allow_unsafe_pickle: bool = False,
    use_head: bool = True,
    unsafe_option: str | None = None,
) -> tuple[nn.Module, nn.Module | None, ParsedCheckpoint]:
    """Read ``path`` into a ``build_backbone(arch)`` backbone and its projection head (None when
    the checkpoint has none, or with ``use_head=False``). Returns (backbone, head, parsed checkpoint).

    ``arch=None`` takes the architecture the file records (our student export, MoCo's
    ``arch`` entry, a Hugging Face or timm folder's ``config.json``) and fails with a clear
    message when it records none. A MoCo v3 file
    without its projector is refused unless ``use_head=False``: its embedding is the
    projector's output, and pooled features in its place would change the method silently.

    ``unsafe_option``: the tool's way to set ``allow_unsafe_pickle``, named when the safe unpickler
    refuses the file (:func:`seed_core.checkpoint_files.safe_load`)."""
    obj = safe_load(path, allow_unsafe_pickle, unsafe_option)  # its errors name the file
    try:
        parsed = parse_checkpoint(obj, layout)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    if use_head and parsed.layout == "mocov3" and parsed.head is None:
        raise CheckpointError(
            f"{path}: this MoCo v3 file has no projector (base_encoder.fc.*); set "
            "teacher.use_head=false to use its pooled backbone features instead"
        )
    if arch is None and "vit" in parsed.meta:  # a Hugging Face folder: config.json describes the ViT
        spec = dict(parsed.meta["vit"])
        backbone = VIT_BUILDERS[spec.pop("family")](**spec)
        arch = f"{parsed.meta['model_type']} ViT from config.json"
    else:
        if arch is None:
            arch = parsed.meta.get("arch")
            if not arch:
                looks = describe_vit(parsed.backbone)
                raise CheckpointError(
                    f"{path} (layout {parsed.layout}) does not record its architecture"
                    + (f" (the weights look like {looks})" if looks else "")
                    + ": give it explicitly (e.g. --arch resnet50, model.arch=resnet50 or "
                    "teacher.arch=resnet50, as the tool names it)"
                )
        backbone, _ = build_backbone(arch)
    source = f"{path} (layout {parsed.layout})"
    file_arch = parsed.meta.get("arch")
    if file_arch and file_arch.removeprefix(TIMM_PREFIX) != arch.removeprefix(TIMM_PREFIX):
        source += f", saved with arch={file_arch!r} but loaded as {arch!r},"
    try:
        load_backbone_weights(backbone, parsed.backbone, source)
    except CheckpointError as e:
        if "vit" not in parsed.meta:
            raise
        raise CheckpointError(f"{e}; without an arch (teacher.arch=auto) config.json's ViT is built") from None
    head = build_head(parsed.head) if parsed.head and use_head else None
    _log_unused(path, obj, parsed, head_used=head is not None)
    return backbone, head, parsed
