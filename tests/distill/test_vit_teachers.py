"""ViT teachers (distill/vit.py, distill/vit_checkpoints.py): DINOv2 and DINOv3 files in the layouts
their authors publish, Hugging Face folders and timm state dicts, read by the project's teacher
loader (``build_teacher`` from a config), embed images as an independent implementation does.

The independent implementation is transformers' (5.x): ``Dinov2Model``, ``Dinov2WithRegistersModel``
and ``DINOv3ViTModel``. Each tiny model (width 32, depth 2, 2 heads; DINOv2 with a GELU MLP, with
ViT-g's SwiGLU FFN and with 4 registers; DINOv3 with 4 storage tokens, with a SwiGLU FFN and with
none) gets random weights and is written as a Hugging Face folder (``save_pretrained``: the Hub's
names), as a folder with the names transformers 5 uses in memory, and in the authors' key layout,
converted from the Hub names by the inverse of transformers' conversion scripts
(``convert_dinov2_to_hf.py``, ``convert_dinov3_vit_to_hf.py``; written out below, apart from the
project's converters). The project's embedding (class token, mean patch token, both) must equal
the one read off transformers' ``last_hidden_state`` within 1e-5 at two input sizes (DINOv2: 56 and
84 px, so the 4 x 4 position grid is resized to 6 x 6; DINOv3: 64 and 96 px).

DINOv2's position embeddings are resized as the authors' torch.hub models do: bicubic, without
registers with ``scale_factor=(n + 0.1) / M`` and no antialiasing, with registers to ``size=`` with
antialiasing. transformers' ``Dinov2Model`` resizes to ``size=`` (no offset), so at a resized grid the
reference is transformers' model with its ``interpolate_pos_encoding`` replaced by the authors'
function, copied verbatim below from facebookresearch/dinov2 (dinov2/models/vision_transformer.py),
with the hub models' settings; with ``interpolate_offset=0`` the project also reproduces unpatched
``Dinov2Model`` (within 1e-5). ``Dinov2WithRegistersModel`` resizes as the authors do.

Largest differences seen against transformers (max |difference| over the embedding, float32, CPU,
torch 2.14, transformers 5.25, timm 1.0.31): DINOv2 (authors' file, Hugging Face folder with the Hub's
or transformers 5's names; GELU, SwiGLU, registers) 1.2e-7; DINOv3 (the same sources; storage tokens
or none, GELU or SwiGLU) 2.4e-7; a timm state dict gives what the authors' file gives. Between the
authors' resizing and ``Dinov2Model``'s own at 70 and 84 px, on these random weights: 4.8e-3 to
5.8e-3 (``Dinov2WithRegistersModel``: 0).
(Checked once outside the tests, against the authors' own model code at the mirrored commits of
facebookresearch/dinov2 and /dinov3: dinov2_vits14, dinov2_vits14_reg, chunked blocks, ViT-g's
SwiGLU block, dinov3_vits16 and dinov3_vits16plus, random weights, 98-224 px: identical, difference 0.)
"""

import csv
import json
import logging
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from tiny import TINY, make_image_folder, tiny_cnn

from distill.builder import build_teacher
from distill.checkpoints import CheckpointError, detect_layout, load_pretrained
from distill.data import IMAGENET
from distill.models import _REGISTRY, build_backbone, check_arch, register_backbone
from distill.schema import DistillConfig
from distill.teacher import resolve_input_norm
from distill.vit import DinoViT, dinov2_vit, dinov3_vit, interpolate_pos_embed
from seed_core.checkpoint_files import safe_load
from seed_core.config import ConfigError, load_config

transformers = pytest.importorskip("transformers", reason="the reference implementation: pip install transformers")

WIDTH, DEPTH, HEADS = 32, 2, 2
# name: (transformers model, config, DinoViT builder kwargs of the same tiny model, sizes in px)
MODELS = {
    "dinov2": ("Dinov2Model", "Dinov2Config", dict(family="dinov2", grid_size=4), (56, 84)),
    # ViT-g's FFN: SwiGLU with hidden width (int(4 * 32 * 2 / 3) + 7) // 8 * 8 = 88, packed as mlp.w12
    "dinov2-swiglu": (
        "Dinov2Model",
        "Dinov2Config",
        dict(family="dinov2", grid_size=4, swiglu=True, mlp_hidden=88, use_swiglu_ffn=True),
        (56, 84),
    ),
    "dinov2-reg": (
        "Dinov2WithRegistersModel",
        "Dinov2WithRegistersConfig",
        dict(family="dinov2", grid_size=4, registers=4, num_register_tokens=4),
        (56, 84),
    ),
    "dinov3": ("DINOv3ViTModel", "DINOv3ViTConfig", dict(family="dinov3", mlp_hidden=64, registers=4), (64, 96)),
    "dinov3-swiglu": (
        "DINOv3ViTModel",
        "DINOv3ViTConfig",
        dict(family="dinov3", mlp_hidden=48, registers=4, swiglu=True, use_gated_mlp=True, hidden_act="silu"),
        (64, 96),
    ),
    "dinov3-noreg": ("DINOv3ViTModel", "DINOv3ViTConfig", dict(family="dinov3", mlp_hidden=64, registers=0), (64, 96)),
}
_CONFIG_ONLY = ("use_swiglu_ffn", "num_register_tokens", "use_gated_mlp", "hidden_act")
_BUILDER_ONLY = ("family", "grid_size", "swiglu", "mlp_hidden", "registers")


def _builder_kwargs(name: str) -> dict:
    return {k: v for k, v in MODELS[name][2].items() if k not in _CONFIG_ONLY}


def _tiny_arch(name: str, **changes) -> str:
    """A registered backbone name for the tiny DinoViT of MODELS[name] (``changes``: a model that does not fit)."""
    arch = "tiny_vit_" + name + "".join(f"_{k}{v}" for k, v in changes.items())
    if arch not in _REGISTRY:
        kwargs = {**_builder_kwargs(name), **changes}
        family = kwargs.pop("family")
        build = dinov2_vit if family == "dinov2" else dinov3_vit
        kwargs = {"embed_dim": WIDTH, "depth": DEPTH, "num_heads": HEADS, **kwargs}
        register_backbone(arch)(lambda: (build(**kwargs), kwargs["embed_dim"]))
    return arch


def _hf_model(name: str):
    model_name, config_name, kwargs, sizes = MODELS[name]
    options = {k: v for k, v in kwargs.items() if k not in _BUILDER_ONLY}
    if kwargs["family"] == "dinov2":
        options.update(image_size=sizes[0], patch_size=14)
    else:
        options.update(
            image_size=sizes[0],
            patch_size=16,
            intermediate_size=kwargs["mlp_hidden"],
            num_register_tokens=kwargs["registers"],
        )
    config = getattr(transformers, config_name)(
        hidden_size=WIDTH, num_hidden_layers=DEPTH, num_attention_heads=HEADS, **options
    )
    model = getattr(transformers, model_name)(config)
    generator = torch.Generator().manual_seed(sum(map(ord, name)))
    with torch.no_grad():
        for parameter in model.parameters():  # every weight random, layer scales and norms included
            parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    return model.eval()


# ---------------------------------------------------------------- the authors' layouts, from the Hub names
def authors_dinov2(hf: dict[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """Hub (transformers) names -> facebookresearch/dinov2's: the inverse of convert_dinov2_to_hf.py
    (query, key, value concatenated back into qkv; ViT-g's weights_in / weights_out -> w12 / w3)."""
    out = {
        "cls_token": hf["embeddings.cls_token"],
        "pos_embed": hf["embeddings.position_embeddings"],
        "mask_token": hf["embeddings.mask_token"],
        "patch_embed.proj.weight": hf["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": hf["embeddings.patch_embeddings.projection.bias"],
    }
    if "embeddings.register_tokens" in hf:
        out["register_tokens"] = hf["embeddings.register_tokens"]
    for i in range(depth):
        h, a = f"encoder.layer.{i}.", f"blocks.{i}."
        for kind in ("weight", "bias"):
            out[a + f"norm1.{kind}"] = hf[h + f"norm1.{kind}"]
            out[a + f"attn.qkv.{kind}"] = torch.cat(
                [hf[h + f"attention.attention.{part}.{kind}"] for part in ("query", "key", "value")]
            )
            out[a + f"attn.proj.{kind}"] = hf[h + f"attention.output.dense.{kind}"]
            out[a + f"norm2.{kind}"] = hf[h + f"norm2.{kind}"]
            if h + "mlp.weights_in.weight" in hf:
                out[a + f"mlp.w12.{kind}"] = hf[h + f"mlp.weights_in.{kind}"]
                out[a + f"mlp.w3.{kind}"] = hf[h + f"mlp.weights_out.{kind}"]
            else:
                out[a + f"mlp.fc1.{kind}"] = hf[h + f"mlp.fc1.{kind}"]
                out[a + f"mlp.fc2.{kind}"] = hf[h + f"mlp.fc2.{kind}"]
        out[a + "ls1.gamma"] = hf[h + "layer_scale1.lambda1"]
        out[a + "ls2.gamma"] = hf[h + "layer_scale2.lambda1"]
    out["norm.weight"], out["norm.bias"] = hf["layernorm.weight"], hf["layernorm.bias"]
    return out


def authors_dinov3(hf: dict[str, torch.Tensor], depth: int, heads: int) -> dict[str, torch.Tensor]:
    """Hub names -> facebookresearch/dinov3's: the inverse of convert_dinov3_vit_to_hf.py. The key
    bias, which transformers drops (the authors' model masks it, mask_k_bias), is put back as noise
    with its bias_mask of zeros; rope_embed.periods as the authors' RopePositionEmbedding computes them."""
    width = hf["embeddings.cls_token"].shape[-1]
    head_dim = width // heads
    out = {
        "cls_token": hf["embeddings.cls_token"],
        "mask_token": hf["embeddings.mask_token"].reshape(1, width),
        "patch_embed.proj.weight": hf["embeddings.patch_embeddings.weight"],
        "patch_embed.proj.bias": hf["embeddings.patch_embeddings.bias"],
        "rope_embed.periods": 100.0 ** (2 * torch.arange(head_dim // 4, dtype=torch.float32) / (head_dim // 2)),
    }
    if hf["embeddings.register_tokens"].shape[1]:
        out["storage_tokens"] = hf["embeddings.register_tokens"]
    generator = torch.Generator().manual_seed(3)
    for i in range(depth):
        h, a = f"layer.{i}.", f"blocks.{i}."
        q, k, v = (hf[h + f"attention.{p}_proj.weight"] for p in "qkv")
        out[a + "attn.qkv.weight"] = torch.cat([q, k, v])
        key_noise = torch.randn(width, generator=generator)
        out[a + "attn.qkv.bias"] = torch.cat(
            [hf[h + "attention.q_proj.bias"], key_noise, hf[h + "attention.v_proj.bias"]]
        )
        out[a + "attn.qkv.bias_mask"] = torch.cat([torch.ones(width), torch.zeros(width), torch.ones(width)])
        for kind in ("weight", "bias"):
            out[a + f"attn.proj.{kind}"] = hf[h + f"attention.o_proj.{kind}"]
            out[a + f"norm1.{kind}"] = hf[h + f"norm1.{kind}"]
            out[a + f"norm2.{kind}"] = hf[h + f"norm2.{kind}"]
            if h + "mlp.gate_proj.weight" in hf:
                out[a + f"mlp.w1.{kind}"] = hf[h + f"mlp.gate_proj.{kind}"]
                out[a + f"mlp.w2.{kind}"] = hf[h + f"mlp.up_proj.{kind}"]
                out[a + f"mlp.w3.{kind}"] = hf[h + f"mlp.down_proj.{kind}"]
            else:
                out[a + f"mlp.fc1.{kind}"] = hf[h + f"mlp.up_proj.{kind}"]
                out[a + f"mlp.fc2.{kind}"] = hf[h + f"mlp.down_proj.{kind}"]
        out[a + "ls1.gamma"] = hf[h + "layer_scale1.lambda1"]
        out[a + "ls2.gamma"] = hf[h + "layer_scale2.lambda1"]
    out["norm.weight"], out["norm.bias"] = hf["norm.weight"], hf["norm.bias"]
    return out


# ---------------------------------------------------------------- the authors' position-embedding resizing
def dinov2_interpolate_pos_encoding(self, x, w, h):
    """facebookresearch/dinov2, dinov2/models/vision_transformer.py, DinoVisionTransformer
    (verbatim; ``w``, ``h`` are the input's height and width in pixels, x.shape[2:] of the image)."""
    previous_dtype = x.dtype
    npatch = x.shape[1] - 1
    N = self.pos_embed.shape[1] - 1
    if npatch == N and w == h:
        return self.pos_embed
    pos_embed = self.pos_embed.float()
    class_pos_embed = pos_embed[:, 0]
    patch_pos_embed = pos_embed[:, 1:]
    dim = x.shape[-1]
    w0 = w // self.patch_size
    h0 = h // self.patch_size
    M = int(math.sqrt(N))  # Recover the number of patches in each dimension
    assert N == M * M
    kwargs = {}
    if self.interpolate_offset:
        # Historical kludge: add a small number to avoid floating point error in the interpolation, see https://github.com/facebookresearch/dino/issues/8
        # Note: still needed for backward-compatibility, the underlying operators are using both output size and scale factors
        sx = float(w0 + self.interpolate_offset) / M
        sy = float(h0 + self.interpolate_offset) / M
        kwargs["scale_factor"] = (sx, sy)
    else:
        # Simply specify an output size instead of a scale factor
        kwargs["size"] = (w0, h0)
    patch_pos_embed = torch.nn.functional.interpolate(
        patch_pos_embed.reshape(1, M, M, dim).permute(0, 3, 1, 2),
        mode="bicubic",
        antialias=self.interpolate_antialias,
        **kwargs,
    )
    assert (w0, h0) == patch_pos_embed.shape[-2:]
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1).to(previous_dtype)


def _authors_resizing(model):
    """transformers' DINOv2 ``model`` with the authors' position-embedding resizing, set as their hub
    models set it (dinov2/hub/backbones.py): interpolate_offset=0.1, no antialiasing; with registers
    interpolate_offset=0.0, interpolate_antialias=True."""
    embeddings = model.embeddings
    registers = getattr(model.config, "num_register_tokens", 0) > 0
    authors = SimpleNamespace(
        pos_embed=embeddings.position_embeddings,
        patch_size=embeddings.patch_embeddings.patch_size[0],
        interpolate_offset=0.0 if registers else 0.1,
        interpolate_antialias=registers,
    )
    # transformers calls interpolate_pos_encoding(embeddings, height, width) on [cls, patches]
    embeddings.interpolate_pos_encoding = lambda x, height, width: dinov2_interpolate_pos_encoding(
        authors, x, height, width
    )
    return model


def _pool(tokens: torch.Tensor, registers: int, pool: str) -> torch.Tensor:
    cls_token, patches = tokens[:, 0], tokens[:, 1 + registers :]
    return {"cls": cls_token, "mean": patches.mean(1), "cls+mean": torch.cat([cls_token, patches.mean(1)], 1)}[pool]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """name -> files of each tiny model: the transformers model (the authors' resizing for DINOv2),
    its Hugging Face folder, the authors' .pth, a folder with transformers' in-memory names."""
    root = tmp_path_factory.mktemp("vit_teachers")
    models = {}
    for name, (_, _, kwargs, sizes) in MODELS.items():
        model = _hf_model(name)
        folder = root / f"hf_{name}"
        model.save_pretrained(folder)
        with safe_open(folder / "model.safetensors", "pt") as f:
            hub = {k: f.get_tensor(k) for k in f.keys()}
        if kwargs["family"] == "dinov2":
            authors, model = authors_dinov2(hub, DEPTH), _authors_resizing(model)
            file = root / f"{name.replace('-reg', '_reg4')}_pretrain.pth"
        else:
            authors = authors_dinov3(hub, DEPTH, HEADS)
            file = root / f"{name}_pretrain_lvd1689m.pth"
        torch.save(authors, file)
        in_memory = root / f"hf_memory_{name}"  # transformers >= 5's own names (attention.q_proj, model.layer.N, ...)
        in_memory.mkdir()
        (in_memory / "config.json").write_text((folder / "config.json").read_text())
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, in_memory / "model.safetensors")
        models[name] = SimpleNamespace(
            model=model, folder=folder, authors=file, in_memory=in_memory, hub=hub, sizes=sizes, kwargs=kwargs
        )
    return models


def _teacher(weights, arch, *overrides, image_size=56):
    cfg = load_config(
        DistillConfig,
        None,
        ["data.root=/unused", f"teacher.weights={weights}", f"teacher.arch={arch}", f"data.image_size={image_size}"]
        + list(overrides),
    )
    return build_teacher(cfg)


def _images(size: int | tuple[int, int], seed: int = 0) -> torch.Tensor:
    height, width = (size, size) if isinstance(size, int) else size
    return torch.randn(3, 3, height, width, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- the embedding
@pytest.mark.parametrize("pool", ["cls", "mean", "cls+mean"])
@pytest.mark.parametrize("source", ["authors", "huggingface", "huggingface-in-memory-names"])
@pytest.mark.parametrize("name", list(MODELS))
def test_the_teacher_embeds_as_transformers_does(tiny, name, source, pool):
    t = tiny[name]
    weights, arch = {
        "authors": (t.authors, _tiny_arch(name)),
        "huggingface": (t.folder, "auto"),
        "huggingface-in-memory-names": (t.in_memory, "auto"),
    }[source]
    teacher = _teacher(weights, arch, f"teacher.vit_pool={pool}", image_size=t.sizes[0])
    assert isinstance(teacher.backbone, DinoViT) and teacher.backbone.pool == pool
    registers = t.kwargs.get("registers", 0)
    for size in t.sizes:
        images = _images(size)
        with torch.no_grad():
            expected = _pool(t.model(pixel_values=images).last_hidden_state, registers, pool)
        embedding = teacher.backbone(images)
        assert embedding.shape == expected.shape == (3, 2 * WIDTH if pool == "cls+mean" else WIDTH)
        torch.testing.assert_close(embedding, expected, rtol=0, atol=1e-5)
        torch.testing.assert_close(teacher(images), F.normalize(expected, dim=1), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["dinov2", "dinov2-reg"])
def test_transformers_own_resizing(tiny, name):
    """Dinov2Model resizes without DINOv2's offset: the teacher differs from it at a resized grid,
    and reproduces it with interpolate_offset=0. Dinov2WithRegistersModel resizes as the authors do."""
    t = tiny[name]
    reference = _hf_model(name)  # the same weights, transformers' own interpolate_pos_encoding
    backbone, _, parsed = load_pretrained(t.folder, None)
    assert parsed.layout == "huggingface"
    assert (backbone.interpolate_offset, backbone.interpolate_antialias) == (
        (0.0, True) if backbone.num_registers else (0.1, False)
    )
    for size in [84, 70, (56, 84), (84, 56)]:
        images = _images(size, seed=1)
        with torch.no_grad():
            theirs = reference(pixel_values=images).last_hidden_state
            authors = backbone.tokens(images)
            offset, backbone.interpolate_offset = backbone.interpolate_offset, 0.0
            without_offset = backbone.tokens(images)
            backbone.interpolate_offset = offset
        torch.testing.assert_close(without_offset, theirs, rtol=0, atol=1e-5)
        if name == "dinov2-reg":
            torch.testing.assert_close(authors, theirs, rtol=0, atol=1e-5)
        else:
            assert (authors - theirs).abs().max() > 1e-4  # the two resizings differ: the authors' is used


@pytest.mark.parametrize("offset, antialias", [(0.1, False), (0.0, True)], ids=["no registers", "registers"])
@pytest.mark.parametrize("grid", [(4, 4), (6, 6), (2, 2), (16, 16), (4, 6), (6, 4), (37, 37)])
@pytest.mark.parametrize("stored", [4, 37])
def test_position_embeddings_are_resized_as_the_authors_do(grid, stored, offset, antialias):
    pos = torch.randn(1, 1 + stored * stored, 24, generator=torch.Generator().manual_seed(stored))
    authors = SimpleNamespace(pos_embed=pos, patch_size=14, interpolate_offset=offset, interpolate_antialias=antialias)
    tokens = torch.zeros(1, 1 + grid[0] * grid[1], 24)
    expected = dinov2_interpolate_pos_encoding(authors, tokens, 14 * grid[0], 14 * grid[1])
    assert torch.equal(interpolate_pos_embed(pos[:, 1:], *grid, offset, antialias), expected[:, 1:])


# ---------------------------------------------------------------- layouts and refusals
@pytest.mark.parametrize("name", list(MODELS))
def test_layouts_are_detected(tiny, name):
    family = MODELS[name][2]["family"]
    assert detect_layout(safe_load(tiny[name].authors)) == family
    assert detect_layout(safe_load(tiny[name].folder)) == "huggingface"
    assert detect_layout(safe_load(tiny[name].in_memory)) == "huggingface"


@pytest.mark.parametrize("name", ["dinov2-reg", "dinov3"])
def test_a_timm_state_dict_loads_by_name(tiny, name, tmp_path):
    """timm's own names (DinoViT's): detected as timm, loaded into the arch as they are."""
    arch = _tiny_arch(name)
    backbone, _, _ = load_pretrained(tiny[name].authors, arch)
    path = tmp_path / "timm.pth"
    torch.save({k: v for k, v in backbone.state_dict().items() if k != "rope.periods"}, path)
    assert detect_layout(safe_load(path)) == "timm"
    timm_backbone, _, parsed = load_pretrained(path, arch)
    assert parsed.layout == "timm"
    images = _images(tiny[name].sizes[1])
    torch.testing.assert_close(timm_backbone(images), backbone(images), rtol=0, atol=1e-6)


@pytest.mark.parametrize("arch", ["timm:vit_small_patch14_reg4_dinov2", "timm:vit_tiny_patch16_dinov3_qkvb"])
def test_timm_dino_models_by_name_are_vit_teachers(arch, tmp_path):
    """timm's DINOv2/DINOv3 architectures (no weights downloaded) build DinoViTs; their state dicts load."""
    check_arch(arch)
    torch.manual_seed(0)
    model, dim = build_backbone(arch)
    assert isinstance(model, DinoViT) and dim == model.embed_dim
    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "rope.periods"}
    save_file(state, tmp_path / "model.safetensors")  # a timm folder (as timm's Hub repos hold them)
    (tmp_path / "config.json").write_text(json.dumps({"architecture": arch.removeprefix("timm:"), "num_classes": 0}))
    assert detect_layout(state) == "timm"
    loaded, _, parsed = load_pretrained(tmp_path, None)  # the folder names its architecture
    assert parsed.layout == "timm" and parsed.meta["arch"] == arch
    images = _images(model.patch_size * 2)
    torch.testing.assert_close(loaded(images), model(images), rtol=0, atol=0)


def _refusal(path, arch) -> str:
    with pytest.raises(CheckpointError) as refused:
        load_pretrained(path, arch)
    message = str(refused.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", ["dinov2", "dinov2-reg", "dinov3"])
def test_a_file_that_does_not_fit_is_refused_in_one_line_naming_the_layout(tiny, name):
    t = tiny[name]
    family = MODELS[name][2]["family"]
    deeper = _refusal(t.authors, _tiny_arch(name, depth=3))
    assert deeper.startswith(f"{t.authors} (layout {family}) does not fit the DinoViT backbone")
    assert "missing from the checkpoint" in deeper and f"blocks.{DEPTH}.norm1.weight" in deeper
    assert f"the weights look like a {family} ViT of width {WIDTH}, depth {DEPTH}" in deeper
    wider = _refusal(t.authors, _tiny_arch(name, embed_dim=64))
    assert wider.startswith(f"{t.authors} (layout {family}) does not fit") and "shape mismatches" in wider
    assert "cls_token: checkpoint (1, 1, 32) vs model (1, 1, 64)" in wider
    from_folder = _refusal(t.folder, _tiny_arch(name, depth=3))
    assert from_folder.startswith(f"{t.folder} (layout huggingface) does not fit")
    assert from_folder.endswith("; without an arch (teacher.arch=auto) config.json's ViT is built")
    unknown = _refusal(t.authors, None)  # the authors' files do not record their architecture
    assert unknown.startswith(
        f"{t.authors} (layout {family}) does not record its architecture (the weights look like a {family} "
        f"ViT of width {WIDTH}, depth {DEPTH}"
    )


def test_the_other_family_is_refused(tiny):
    message = _refusal(tiny["dinov2"].authors, _tiny_arch("dinov3"))
    assert "(layout dinov2) does not fit" in message and "unexpected in the checkpoint" in message


def test_an_explicit_layout_must_match(tiny):
    with pytest.raises(CheckpointError, match="expected a dinov3 checkpoint, but the file is laid out as dinov2"):
        load_pretrained(tiny["dinov2"].authors, _tiny_arch("dinov2"), layout="dinov3")


def test_chunked_blocks_load(tiny, tmp_path):
    """DINOv2 training checkpoints with block_chunks > 0 name the blocks blocks.<chunk>.<block>."""
    sd = torch.load(tiny["dinov2"].authors, weights_only=True)
    chunked = {k.replace("blocks.", "blocks.0.", 1): v for k, v in sd.items()}  # one chunk of all blocks
    path = tmp_path / "chunked.pth"
    torch.save(chunked, path)
    backbone, _, _ = load_pretrained(path, _tiny_arch("dinov2"))
    reference, _, _ = load_pretrained(tiny["dinov2"].authors, _tiny_arch("dinov2"))
    images = _images(56)
    assert torch.equal(backbone(images), reference(images))


def test_an_unmasked_key_bias_is_refused(tiny, tmp_path):
    sd = torch.load(tiny["dinov3"].authors, weights_only=True)
    sd["blocks.1.attn.qkv.bias_mask"] = torch.ones_like(sd["blocks.1.attn.qkv.bias_mask"])
    path = tmp_path / "unmasked.pth"
    torch.save(sd, path)
    message = _refusal(path, _tiny_arch("dinov3"))
    assert "blocks.1.attn.qkv.bias has a key bias that is not masked out" in message


def test_dinov3_uses_the_rope_periods_of_the_authors_file(tiny, tmp_path):
    """The authors' model loads rope_embed.periods from the file (the released ones are rounded to
    bfloat16); transformers and timm compute them. The file's values are the ones used."""
    sd = torch.load(tiny["dinov3"].authors, weights_only=True)
    sd["rope_embed.periods"] = sd["rope_embed.periods"].bfloat16().float()
    path = tmp_path / "bf16_periods.pth"
    torch.save(sd, path)
    rounded, _, _ = load_pretrained(path, _tiny_arch("dinov3"))
    exact, _, _ = load_pretrained(tiny["dinov3"].folder, None)
    assert torch.equal(rounded.rope.periods, sd["rope_embed.periods"])
    assert not torch.equal(exact.rope.periods, rounded.rope.periods)
    images = _images(96)
    assert 0 < (rounded(images) - exact(images)).abs().max() < 0.1


@pytest.mark.parametrize(
    "name, source, parts",
    [
        ("dinov2-reg", "authors", ["mask_token (32 values)"]),
        ("dinov3", "authors", ["mask_token (32 values)"]),
        ("dinov2", "folder", ["embeddings.mask_token (32 values)"]),
    ],
)
def test_what_the_model_does_not_use_is_logged(tiny, name, source, parts, caplog):
    path = getattr(tiny[name], source)
    with caplog.at_level(logging.INFO, logger="distill.checkpoints"):
        load_pretrained(path, _tiny_arch(name) if source == "authors" else None)
    (line,) = [r.getMessage() for r in caplog.records if "not used" in r.getMessage()]
    assert all(part in line for part in parts), line


def test_the_teacher_cache_key_covers_a_folder_and_the_pooling(tiny, tmp_path):
    from distill.teacher_cache import teacher_identity

    def identity(*overrides):
        cfg = load_config(
            DistillConfig,
            None,
            ["data.root=/x", f"teacher.weights={tiny['dinov3'].folder}", "teacher.arch=auto", *overrides],
        )
        return teacher_identity(cfg)

    cls_key, mean_key = identity(), identity("teacher.vit_pool=mean")
    assert cls_key["layout"] == "huggingface" and cls_key["weights"].startswith("sha256:")
    assert "vit_pool" not in cls_key and mean_key["vit_pool"] == "mean"  # other teachers' keys stay as they were
    (tiny["dinov3"].folder / "notes.txt").write_text("not part of the model")
    assert identity() == cls_key


# ---------------------------------------------------------------- config: pooling, input size, head, normalisation
def test_vit_pool_must_be_known():
    with pytest.raises(ConfigError, match=r"teacher.vit_pool='max': choose one of cls, mean, cls\+mean"):
        load_config(DistillConfig, None, ["data.root=/x", "teacher.weights=/t.pth", "teacher.vit_pool=max"])


def test_vit_pool_applies_to_vit_teachers_only(tmp_path):
    path = tmp_path / "cnn.pth"
    torch.save(tiny_cnn()[0].state_dict(), path)
    with pytest.raises(ConfigError, match=f"teacher.vit_pool=mean applies to DINOv2/DINOv3 ViT teachers; {TINY}"):
        _teacher(path, TINY, "teacher.vit_pool=mean", "teacher.layout=torchvision")


def test_the_input_size_must_be_a_multiple_of_the_patch_size(tiny):
    t = tiny["dinov2"]
    with pytest.raises(ConfigError, match=r"14 px patches; its input is 64 px .* set teacher.input_size=56"):
        _teacher(t.authors, _tiny_arch("dinov2"), image_size=64)
    teacher = _teacher(t.authors, _tiny_arch("dinov2"), "teacher.input_size=56", image_size=64)
    assert teacher(torch.randn(2, 3, 64, 64)).shape == (2, WIDTH)
    with pytest.raises(ConfigError, match="multiples of 14, got 60 x 60 px"):
        teacher.backbone(torch.randn(1, 3, 60, 60))


def test_without_head_and_with_imagenet_input(tiny):
    t = tiny["dinov2"]
    with_head = _teacher(t.authors, _tiny_arch("dinov2"))
    without = _teacher(t.authors, _tiny_arch("dinov2"), "teacher.use_head=false")
    images = _images(56)
    assert torch.equal(with_head(images), without(images))
    assert isinstance(with_head.head, torch.nn.Identity) and not with_head.renormalise
    for layout in ("dinov2", "dinov3", "huggingface"):
        assert resolve_input_norm("auto", layout)[0] == IMAGENET


# ---------------------------------------------------------------- a distillation from a DINOv2 teacher file
@pytest.mark.slow
def test_a_resnet18_distils_from_a_dinov2_file(tiny, tmp_path):
    from distill.trainer import train

    images = make_image_folder(tmp_path / "images", classes=2, per_class=4, size=40)
    cfg = load_config(
        DistillConfig,
        None,
        [
            f"data.root={images}",
            "data.image_size=28",
            "data.num_workers=0",
            "student.arch=resnet18",
            f"teacher.weights={tiny['dinov2-reg'].authors}",
            f"teacher.arch={_tiny_arch('dinov2-reg')}",
            "teacher.vit_pool=cls+mean",
            "distill.queue_size=8",
            "optim.batch_size=4",
            "optim.epochs=1",
            "optim.warmup_epochs=0",
            "train.max_steps=2",
            "train.log_every=1",
            "train.tensorboard=false",
            f"train.output_dir={tmp_path / 'run'}",
        ],
    )
    student = train(cfg)
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert [int(row["step"]) for row in rows] == [1, 2] and all(math.isfinite(float(row["loss"])) for row in rows)
    backbone, _, parsed = load_pretrained(student, None)  # the exported ResNet-18 reads back
    assert parsed.layout == "seed-student" and parsed.meta["arch"] == "resnet18"
    assert "vit_pool: cls+mean" in (tmp_path / "run" / "config.yaml").read_text()
