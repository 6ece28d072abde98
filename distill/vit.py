"""DINOv2 and DINOv3 ViTs as their authors run them, on timm's modules.

:class:`DinoViT` takes the patch embedding, tokens, blocks and final norm of a timm
``VisionTransformer`` (DINOv2: learned absolute positions, layer scale, optional SwiGLU and
registers) or ``Eva`` (DINOv3: RoPE, storage tokens, layer scale, optional SwiGLU), keeps
their parameter names (so timm's own files load unchanged) and assembles the tokens itself:

- DINOv2 (facebookresearch/dinov2, ``DinoVisionTransformer.interpolate_pos_encoding``): the
  position embeddings, learned for a square grid (37 x 37: 518 px / 14), are resized for
  another grid bicubically in float32, as the authors' torch.hub models do: without registers
  with ``scale_factor = (grid + 0.1) / stored grid`` (their "historical kludge" offset) and no
  antialiasing; with registers (``dinov2_vit*14_reg``: ``interpolate_offset=0.0``,
  ``interpolate_antialias=True``) to the grid's size, antialiased. The class token's own
  position is added unchanged; registers are inserted after the class token, without position.
  Hugging Face's ``Dinov2Model`` resizes without the offset (``Dinov2WithRegistersModel`` as the
  authors do) and timm antialiased: the same weights give a slightly different embedding at any
  other grid there. ``interpolate_offset`` and ``interpolate_antialias`` choose another resizing.
- DINOv3 (facebookresearch/dinov3): no absolute positions; RoPE on the patch tokens from
  patch-centre coordinates normalised to [-1, 1] per axis, so any grid needs no resizing.

The embedding (``pool``) is read after the final norm: ``cls`` the class token, ``mean`` the
mean of the patch tokens, ``cls+mean`` both concatenated (the feature of DINOv2's linear
probe, ``create_linear_input`` with ``use_avgpool``); register / storage tokens never enter it.
Inputs are ImageNet mean/std normalised for both families (the default teacher input).
"""

import math
import re
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from seed_core.config import ConfigError

POOLS = ("cls", "mean", "cls+mean")
# DINOv2 hub models without registers: DinoVisionTransformer(interpolate_offset=0.1, interpolate_antialias=False);
# with registers: interpolate_offset=0.0, interpolate_antialias=True.
DINOV2_INTERPOLATE_OFFSET = 0.1


def interpolate_pos_embed(
    patch_pos: torch.Tensor, height: int, width: int, offset: float = DINOV2_INTERPOLATE_OFFSET, antialias: bool = False
) -> torch.Tensor:
    """Learned patch positions 1 x M*M x D (a square M x M grid) for a height x width grid:
    1 x height*width x D, as DINOv2 resizes them (bicubic, ``scale_factor=(n + offset) / M`` per
    axis, or ``size=(height, width)`` for ``offset=0``), computed in float32."""
    count, dim = patch_pos.shape[1:]
    side = math.isqrt(count)
    if side * side != count:
        raise ValueError(f"position embeddings for {count} patches are no square grid")
    if (height, width) == (side, side):
        return patch_pos
    grid = patch_pos.float().reshape(1, side, side, dim).permute(0, 3, 1, 2)  # 1 x D x M x M
    if offset:
        # the operator takes both the output size and the scale: the offset only moves the samples
        size = {"scale_factor": ((height + offset) / side, (width + offset) / side)}
    else:
        size = {"size": (height, width)}
    grid = F.interpolate(grid, mode="bicubic", antialias=antialias, **size)
    if grid.shape[-2:] != (height, width):
        raise ValueError(f"resized position embeddings to {tuple(grid.shape[-2:])}, not {(height, width)}")
    return grid.permute(0, 2, 3, 1).reshape(1, height * width, dim).to(patch_pos.dtype)


class DinoViT(nn.Module):
    """N x 3 x H x W images (H, W multiples of the patch size) -> N x C embeddings: C = D for
    ``pool`` ``cls`` or ``mean``, 2D for ``cls+mean`` (see the module docstring).

    ``vit`` is a timm ``VisionTransformer`` (DINOv2) or ``Eva`` with RoPE (DINOv3) built with
    ``dynamic_img_size=True``; its modules are taken over, its classifier and pooling are not.
    ``interpolate_offset`` / ``interpolate_antialias`` (DINOv2; None: as the authors' hub model
    with as many registers) resize the position embeddings.
    """

    # State a checkpoint may lack (the model's own value stays): DINOv3's RoPE periods follow from
    # the config; the authors' files store the values their model uses (rounded to bfloat16).
    optional_state = ("rope.periods",)

    def __init__(
        self,
        vit: nn.Module,
        pool: str = "cls",
        interpolate_offset: float | None = None,
        interpolate_antialias: bool | None = None,
    ):
        super().__init__()
        if not getattr(vit, "dynamic_img_size", False) or not isinstance(vit.norm_pre, nn.Identity):
            raise ValueError(f"{type(vit).__name__}: DinoViT needs dynamic_img_size=True and no pre-norm")
        if getattr(vit, "cls_token", None) is None:
            raise ValueError(f"{type(vit).__name__} has no class token")
        self.patch_embed = vit.patch_embed  # N x 3 x H x W -> N x h x w x D
        self.cls_token = vit.cls_token  # 1 x 1 x D
        self.reg_token = vit.reg_token  # 1 x R x D, or None
        self.rope = getattr(vit, "rope", None)
        self.family = "dinov3" if self.rope is not None else "dinov2"
        if self.family == "dinov3":
            self.pos_embed = None
            # persistent, so that the periods of the authors' files load (see optional_state)
            self.rope.register_buffer("periods", self.rope.periods, persistent=True)
        else:
            self.pos_embed = vit.pos_embed  # 1 x (1 + M*M) x D, or 1 x M*M x D when no_embed_class
        self.class_position = self.family == "dinov2" and not vit.no_embed_class
        self.blocks = vit.blocks
        self.norm = vit.norm
        self.embed_dim = vit.embed_dim
        self.patch_size = self.patch_embed.patch_size[0]
        self.num_registers = 0 if self.reg_token is None else self.reg_token.shape[1]
        registers = self.num_registers > 0
        self.interpolate_offset = (
            (0.0 if registers else DINOV2_INTERPOLATE_OFFSET) if interpolate_offset is None else interpolate_offset
        )
        self.interpolate_antialias = registers if interpolate_antialias is None else interpolate_antialias
        self.pool = pool

    @property
    def pool(self) -> str:
        return self._pool

    @pool.setter
    def pool(self, pool: str) -> None:
        if pool not in POOLS:
            raise ValueError(f"unknown ViT pooling {pool!r}; choose one of {', '.join(POOLS)}")
        self._pool = pool

    @property
    def feature_dim(self) -> int:
        return 2 * self.embed_dim if self.pool == "cls+mean" else self.embed_dim

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W -> N x (1 + R + h*w) x D after the final norm: class token, R registers,
        the h x w patch tokens row by row."""
        height, width = images.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ConfigError(
                f"a {self.family} ViT with {self.patch_size} px patches takes sizes that are multiples "
                f"of {self.patch_size}, got {height} x {width} px: resize its input (a teacher's: teacher.input_size)"
            )
        x = self.patch_embed(images)  # N x h x w x D
        n, h, w, _ = x.shape
        x = x.flatten(1, 2)  # N x hw x D
        cls_token, rope = self.cls_token, None
        if self.pos_embed is not None:  # DINOv2
            patch_pos = self.pos_embed
            if self.class_position:
                cls_token, patch_pos = cls_token + patch_pos[:, :1], patch_pos[:, 1:]
            x = x + interpolate_pos_embed(patch_pos, h, w, self.interpolate_offset, self.interpolate_antialias)
        else:  # DINOv3
            rope = self.rope.get_embed(shape=[h, w])  # hw x 2*head_dim: sin, cos
        prefix = [cls_token.expand(n, -1, -1)]
        if self.reg_token is not None:
            prefix.append(self.reg_token.expand(n, -1, -1))
        x = torch.cat(prefix + [x], dim=1)  # N x (1 + R + hw) x D
        for block in self.blocks:
            x = block(x) if rope is None else block(x, rope=rope)
        return self.norm(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.tokens(images)
        cls_token, patches = x[:, 0], x[:, 1 + self.num_registers :]  # N x D, N x hw x D
        if self.pool == "cls":
            return cls_token
        if self.pool == "mean":
            return patches.mean(dim=1)
        return torch.cat([cls_token, patches.mean(dim=1)], dim=1)  # N x 2D


def _ratio(width: int, dim: int) -> float:
    """An mlp_ratio for which timm's int(dim * mlp_ratio) is exactly ``width``."""
    return (width + 0.5) / dim


def dinov2_vit(
    embed_dim: int = 384,
    depth: int = 12,
    num_heads: int = 6,
    patch_size: int = 14,
    grid_size: int = 37,
    mlp_hidden: int | None = None,
    swiglu: bool = False,
    registers: int = 0,
    qkv_bias: bool = True,
    eps: float = 1e-6,
) -> DinoViT:
    """A DINOv2 ViT: position embeddings for a ``grid_size`` square grid (the released models:
    37, 518 px), MLP of ``mlp_hidden`` (default 4 x embed_dim) GELU units or, with ``swiglu``,
    ``mlp_hidden`` SwiGLU units (ViT-g: ``mlp.w12`` packs both halves), layer scale, ``registers``
    tokens (4 for the ``_reg`` models; their class position is folded into the class token, as timm does)."""
    from timm.layers import Mlp, SwiGLUPacked
    from timm.models.vision_transformer import VisionTransformer

    mlp_hidden = mlp_hidden or 4 * embed_dim
    vit = VisionTransformer(
        img_size=grid_size * patch_size,
        patch_size=patch_size,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=_ratio(2 * mlp_hidden if swiglu else mlp_hidden, embed_dim),
        mlp_layer=SwiGLUPacked if swiglu else Mlp,
        act_layer=nn.SiLU if swiglu else nn.GELU,
        qkv_bias=qkv_bias,
        init_values=1e-5,  # layer scale, as the authors initialise it (a loaded file sets it)
        reg_tokens=registers,
        no_embed_class=registers > 0,
        norm_layer=partial(nn.LayerNorm, eps=eps),
        dynamic_img_size=True,
        num_classes=0,
    )
    return DinoViT(vit)


def dinov3_vit(
    embed_dim: int = 384,
    depth: int = 12,
    num_heads: int = 6,
    patch_size: int = 16,
    mlp_hidden: int | None = None,
    swiglu: bool = False,
    registers: int = 4,
    qkv_bias: bool = True,
    eps: float = 1e-5,
    rope_theta: float = 100.0,
) -> DinoViT:
    """A DINOv3 ViT: RoPE (base ``rope_theta``, coordinates normalised per axis), MLP of
    ``mlp_hidden`` (default 4 x embed_dim) GELU or SwiGLU (``w1``/``w2``/``w3``) units, layer
    scale, ``registers`` storage tokens, query and value biases (the key bias is masked to zero
    in the authors' model, ``mask_k_bias``, and absent here)."""
    from timm.models.eva import Eva

    vit = Eva(
        img_size=224,
        patch_size=patch_size,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        qkv_bias=qkv_bias,
        mlp_ratio=_ratio(mlp_hidden or 4 * embed_dim, embed_dim),
        swiglu_mlp=swiglu,
        swiglu_align_to=1 if swiglu else 0,  # separate gate and value weights (w1, w2), no rounding
        init_values=1e-5,
        num_reg_tokens=registers,
        use_abs_pos_emb=False,
        use_rot_pos_emb=True,
        rope_type="dinov3",
        rope_temperature=rope_theta,
        rope_rotate_half=True,
        use_fc_norm=False,
        norm_layer=partial(nn.LayerNorm, eps=eps),
        dynamic_img_size=True,
        num_classes=0,
    )
    return DinoViT(vit)


BUILDERS = {"dinov2": dinov2_vit, "dinov3": dinov3_vit}


def _swiglu_hidden(embed_dim: int, ffn_ratio: float, align_to: int = 8) -> int:
    """Width of the authors' SwiGLU FFN: 2/3 of embed_dim * ffn_ratio, rounded up to ``align_to``."""
    d = int(embed_dim * ffn_ratio * 2 / 3)
    return d + (-d % align_to)


def _authors_archs() -> dict[str, tuple[str, dict]]:
    """The authors' torch.hub names (their files are ``<name>_pretrain*.pth``) -> family, builder kwargs."""
    archs = {}
    for size, (dim, depth, heads) in {"s": (384, 12, 6), "b": (768, 12, 12), "l": (1024, 24, 16)}.items():
        archs[f"dinov2_vit{size}14"] = ("dinov2", dict(embed_dim=dim, depth=depth, num_heads=heads))
    archs["dinov2_vitg14"] = (
        "dinov2",
        dict(embed_dim=1536, depth=40, num_heads=24, swiglu=True, mlp_hidden=_swiglu_hidden(1536, 4)),
    )
    for name in list(archs):  # with 4 registers: hub name dinov2_vits14_reg, file dinov2_vits14_reg4_pretrain.pth
        archs[f"{name}_reg"] = (archs[name][0], {**archs[name][1], "registers": 4})
    for name, dim, depth, heads, ffn_ratio, align in [
        ("vits16", 384, 12, 6, 4, 0),
        ("vits16plus", 384, 12, 6, 6, 8),
        ("vitb16", 768, 12, 12, 4, 0),
        ("vitl16", 1024, 24, 16, 4, 0),
        ("vitl16plus", 1024, 24, 16, 6, 8),
        ("vith16plus", 1280, 32, 20, 6, 8),
        ("vit7b16", 4096, 40, 32, 3, 64),
    ]:
        kwargs = dict(embed_dim=dim, depth=depth, num_heads=heads, qkv_bias=name != "vit7b16")
        if align:
            kwargs.update(swiglu=True, mlp_hidden=_swiglu_hidden(dim, ffn_ratio, align))
        archs[f"dinov3_{name}"] = ("dinov3", kwargs)
    return archs


ARCHS = _authors_archs()
_TIMM_DINO = re.compile(r"timm:\w*_dinov[23](_\w+)?(\.\w+)?")  # name, pretrained tag


def is_vit_arch(arch: str) -> bool:
    """An authors' hub name (``dinov2_vits14``, ``dinov3_vitb16``, ...) or a timm DINOv2/DINOv3
    model (``timm:vit_small_patch14_dinov2``, ``timm:vit_base_patch16_dinov3``)."""
    return arch in ARCHS or bool(_TIMM_DINO.fullmatch(arch))


def build_vit(arch: str) -> DinoViT:
    """The randomly initialised :class:`DinoViT` of an :func:`is_vit_arch` name."""
    if arch in ARCHS:
        family, kwargs = ARCHS[arch]
        return BUILDERS[family](**kwargs)
    import timm

    return DinoViT(
        timm.create_model(arch.removeprefix("timm:"), pretrained=False, num_classes=0, dynamic_img_size=True)
    )


def describe_vit(state: dict[str, torch.Tensor]) -> str:
    """'a dinov2 ViT of width 384, depth 12 (dinov2_vits14)' for DinoViT-named weights, else ''."""
    if "cls_token" not in state:
        return ""
    family = "dinov3" if "blocks.0.gamma_1" in state or "rope.periods" in state else "dinov2"
    width = state["cls_token"].shape[-1]
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    registers = state["reg_token"].shape[1] if "reg_token" in state else 0
    names = [
        name
        for name, (fam, kwargs) in ARCHS.items()
        if (fam, kwargs["embed_dim"], kwargs["depth"], kwargs.get("registers", 4 if fam == "dinov3" else 0))
        == (family, width, depth, registers)
    ]
    text = f"a {family} ViT of width {width}, depth {depth}" + (f", {registers} registers" if registers else "")
    return text + (f" ({' or '.join(names)})" if names else "")
