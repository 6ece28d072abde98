"""The published DINOv2 / DINOv3 ViT layouts -> :class:`distill.vit.DinoViT` (timm) parameter names.

Pure functions over state dicts; :mod:`distill.checkpoints` detects the layouts and reports
every key that does not fit. Layouts, as their authors publish them:

- ``dinov2`` (facebookresearch/dinov2, ``dinov2_vit{s,b,l,g}14[_reg4]_pretrain.pth``): a bare state
  dict, ``cls_token``, ``pos_embed`` 1 x (1 + 37*37) x D, ``register_tokens`` (reg4), ``mask_token``
  (iBOT pretraining only: dropped), ``patch_embed.proj``, ``blocks.N.{norm1, attn.qkv, attn.proj,
  ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}`` (ViT-g: SwiGLU ``mlp.w12``, ``mlp.w3``), ``norm``;
  training checkpoints chunk the blocks (``blocks.C.N.*``). timm's names but ``register_tokens``
  -> ``reg_token``, ``w12``/``w3`` -> ``fc1``/``fc2``; with registers the class token's position is
  folded into the class token (timm's ``no_embed_class``: the same sum, computed once).
- ``dinov3`` (facebookresearch/dinov3, ``dinov3_vit*16*_pretrain_<data>-<hash>.pth``): ``cls_token``,
  ``storage_tokens``, ``mask_token`` (dropped), ``patch_embed.proj``, ``rope_embed.periods``,
  ``blocks.N.{norm1, attn.qkv (weight, bias, bias_mask), attn.proj, ls1.gamma, norm2, mlp.fc1/fc2
  or SwiGLU mlp.w1/w2/w3, ls2.gamma}``, ``norm``, ``local_cls_norm`` (the local crops' class-token
  norm of ViT-7B / ViT-L SAT pretraining, never used at evaluation: dropped). -> timm's Eva:
  ``storage_tokens`` -> ``reg_token``, ``qkv.bias`` -> ``q_bias``, ``v_bias`` (``bias_mask`` zeroes
  the key bias), ``ls1``/``ls2.gamma`` -> ``gamma_1``/``gamma_2``, ``w1``/``w2``/``w3`` ->
  ``fc1_g``/``fc1_x``/``fc2``, ``rope_embed.periods`` -> ``rope.periods``.
- ``huggingface``: a folder with ``config.json`` and ``model.safetensors`` of transformers'
  ``Dinov2Model``, ``Dinov2WithRegistersModel`` or ``DINOv3ViTModel``, named as the Hub files are
  (``encoder.layer.N.attention.attention.query``, ...; DINOv3 ``layer.N.attention.q_proj``, ...)
  or as transformers >= 5 names them in memory (``attention.q_proj``, ``model.layer.N``, ...);
  ``config.json`` gives the architecture.
"""

import math
import re

import torch

from seed_core.errors import CheckpointError

# transformers' model_type -> family
HF_MODEL_TYPES = {"dinov2": "dinov2", "dinov2_with_registers": "dinov2", "dinov3_vit": "dinov3"}
HF_ARCHITECTURES = ("Dinov2Model", "Dinov2WithRegistersModel", "DINOv3ViTModel")

Rules = list[tuple[str, str | None]]  # (pattern, replacement); None drops the key

_DINOV2_RULES: Rules = [
    (r"^mask_token$", None),
    (r"^register_tokens$", "reg_token"),
    (r"^blocks\.\d+\.(\d+)\.", r"blocks.\1."),  # chunked blocks (block_chunks > 0)
    (r"\.mlp\.w12\.", ".mlp.fc1."),
    (r"\.mlp\.w3\.", ".mlp.fc2."),
]
_DINOV3_RULES: Rules = [
    (r"^mask_token$", None),
    (r"^local_cls_norm\.", None),
    (r"^storage_tokens$", "reg_token"),
    (r"^rope_embed\.periods$", "rope.periods"),
    (r"\.ls([12])\.gamma$", r".gamma_\1"),
    (r"\.mlp\.w1\.", ".mlp.fc1_g."),
    (r"\.mlp\.w2\.", ".mlp.fc1_x."),
    (r"\.mlp\.w3\.", ".mlp.fc2."),
]
# Both the Hub files' names and transformers >= 5's (attention.q_proj, mlp.gate_proj, ...).
_HF_DINOV2_RULES: Rules = [
    (r"^embeddings\.mask_token$", None),
    (r"^embeddings\.cls_token$", "cls_token"),
    (r"^embeddings\.register_tokens$", "reg_token"),
    (r"^embeddings\.position_embeddings$", "pos_embed"),
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^encoder\.layer\.(\d+)\.", r"blocks.\1."),
    (r"\.attention\.(attention\.query|q_proj)\.", ".attn.q."),
    (r"\.attention\.(attention\.key|k_proj)\.", ".attn.k."),
    (r"\.attention\.(attention\.value|v_proj)\.", ".attn.v."),
    (r"\.attention\.(output\.dense|o_proj)\.", ".attn.proj."),
    (r"\.layer_scale([12])\.lambda1$", r".ls\1.gamma"),
    (r"\.mlp\.weights_in\.", ".mlp.fc1."),
    (r"\.mlp\.(weights_out|down_proj)\.", ".mlp.fc2."),
    (r"\.mlp\.gate_proj\.", ".mlp.gate."),
    (r"\.mlp\.up_proj\.", ".mlp.up."),
    (r"^layernorm\.", "norm."),
]
_HF_DINOV3_RULES: Rules = [
    (r"^embeddings\.mask_token$", None),
    (r"^rope_embeddings\.", None),  # transformers computes the RoPE frequencies from rope_theta
    (r"^embeddings\.cls_token$", "cls_token"),
    (r"^embeddings\.register_tokens$", "reg_token"),
    (r"^embeddings\.patch_embeddings\.", "patch_embed.proj."),
    (r"^(model\.)?layer\.(\d+)\.", r"blocks.\2."),
    (r"\.attention\.(q_proj|query)\.", ".attn.q."),
    (r"\.attention\.(k_proj|key)\.", ".attn.k."),
    (r"\.attention\.(v_proj|value)\.", ".attn.v."),
    (r"\.attention\.(o_proj|proj)\.", ".attn.proj."),
    (r"\.layer_scale([12])\.lambda1$", r".gamma_\1"),
    (r"\.mlp\.gate_proj\.", ".mlp.fc1_g."),
    (r"\.mlp\.up_proj\.", ".mlp.up."),  # fc1_x (gated) or fc1
    (r"\.mlp\.down_proj\.", ".mlp.fc2."),
]


def _rename(sd: dict[str, torch.Tensor], rules: Rules) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Apply every matching rule to each key, in order; (renamed state, dropped keys)."""
    out, dropped = {}, []
    for key, value in sd.items():
        new = key
        for pattern, replacement in rules:
            if re.search(pattern, new):
                if replacement is None:
                    new = None
                    break
                new = re.sub(pattern, replacement, new)
        if new is None:
            dropped.append(key)
        else:
            out[new] = value
    return out, dropped


def _fuse(sd: dict[str, torch.Tensor], parts: tuple[str, ...], fused: str) -> dict[str, torch.Tensor]:
    """``<p>.<part>.<w>`` for every part -> ``<p>.<fused>.<w>``: the parts concatenated along dim 0
    (q, k, v -> qkv; SwiGLU gate, value -> packed fc1). Incomplete groups are left as they are."""
    out = dict(sd)
    pattern = re.compile(rf"(.*)\.{re.escape(parts[0])}\.(weight|bias)$")
    for key in list(sd):
        match = pattern.fullmatch(key)
        if not match:
            continue
        prefix, kind = match.groups()
        names = [f"{prefix}.{part}.{kind}" for part in parts]
        if all(name in out for name in names):
            out[f"{prefix}.{fused}.{kind}"] = torch.cat([out.pop(name) for name in names], dim=0)
    return out


def _fold_class_position(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """With registers, timm's DINOv2 keeps no position for the class token: add it to the token."""
    if "reg_token" in sd and "pos_embed" in sd and "cls_token" in sd:
        pos = sd["pos_embed"]
        if math.isqrt(pos.shape[1] - 1) ** 2 == pos.shape[1] - 1:  # 1 + M*M: the class position is there
            sd = {**sd, "cls_token": sd["cls_token"] + pos[:, :1], "pos_embed": pos[:, 1:]}
    return sd


def _split_qkv_bias(sd: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], source: str) -> dict:
    """``attn.qkv.bias`` -> Eva's ``attn.q_bias``, ``attn.v_bias``; the key bias must be masked
    (the authors' ``mask_k_bias``) or zero, as Eva has none."""
    out = dict(sd)
    for key in [k for k in sd if k.endswith(".attn.qkv.bias")]:
        q, k, v = out.pop(key).chunk(3)
        mask = masks.get(key + "_mask")
        if mask is not None:
            q_mask, k_mask, v_mask = mask.chunk(3)
            if not (bool((q_mask == 1).all()) and bool((v_mask == 1).all())):
                raise CheckpointError(f"{source}: {key}_mask masks the query or value bias; only the key bias may be")
            k = k * k_mask
        if bool(k.any()):
            raise CheckpointError(
                f"{source}: {key} has a key bias that is not masked out; DINOv3's ViTs mask it (mask_k_bias) "
                "and the timm model used here has none"
            )
        prefix = key.removesuffix("qkv.bias")
        out[prefix + "q_bias"], out[prefix + "v_bias"] = q, v
    return out


def convert_dinov2(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """facebookresearch/dinov2 state dict -> (DinoViT state dict, dropped keys)."""
    out, dropped = _rename(sd, _DINOV2_RULES)
    return _fold_class_position(out), dropped


def convert_dinov3(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """facebookresearch/dinov3 state dict -> (DinoViT state dict, dropped keys)."""
    if any(k.startswith("cls_norm.") for k in sd):
        raise CheckpointError(
            "dinov3: this file has a separate class-token norm (cls_norm.*, untie_cls_and_patch_norms), "
            "which the published ViTs do not have and the timm model used here cannot apply"
        )
    masks = {k: v for k, v in sd.items() if k.endswith(".attn.qkv.bias_mask")}
    out, dropped = _rename({k: v for k, v in sd.items() if k not in masks}, _DINOV3_RULES)
    return _split_qkv_bias(out, masks, "dinov3"), dropped


def _hf_family(config: dict) -> str:
    model_type = config.get("model_type")
    if model_type not in HF_MODEL_TYPES:
        raise CheckpointError(
            f"a Hugging Face model of model_type {model_type!r} (architectures {config.get('architectures')}); "
            f"supported: {', '.join(HF_ARCHITECTURES)}"
        )
    return HF_MODEL_TYPES[model_type]


def _check_act(config: dict, family: str, swiglu: bool) -> None:
    """transformers' DINOv2 SwiGLU is SiLU whatever hidden_act says; every other MLP follows it."""
    act = config.get("hidden_act", "gelu")
    expected = ("silu", "swish") if swiglu else ("gelu",)
    if not (family == "dinov2" and swiglu) and act not in expected:
        raise CheckpointError(
            f"huggingface: hidden_act={act!r} in config.json; the {'SwiGLU' if swiglu else 'MLP'} of the timm "
            f"{family} ViT used here is {expected[0]}"
        )


def hf_spec(config: dict, state: dict[str, torch.Tensor]) -> dict:
    """Builder kwargs of :mod:`distill.vit` (``family`` + :func:`~distill.vit.dinov2_vit` or
    :func:`~distill.vit.dinov3_vit` arguments) for a transformers ``config.json`` whose weights,
    converted, are ``state`` (the MLP width and position grid are read from the weights)."""
    family = _hf_family(config)
    try:
        spec = dict(
            family=family,
            embed_dim=config["hidden_size"],
            depth=config["num_hidden_layers"],
            num_heads=config["num_attention_heads"],
            patch_size=config["patch_size"],
        )
    except KeyError as e:
        raise CheckpointError(f"huggingface: config.json has no {e.args[0]!r}") from None
    fc2 = state.get("blocks.0.mlp.fc2.weight")
    if fc2 is not None:
        spec["mlp_hidden"] = fc2.shape[1]
    if family == "dinov2":
        swiglu = bool(config.get("use_swiglu_ffn", False))
        pos = state.get("pos_embed")
        if pos is not None:
            spec["grid_size"] = math.isqrt(pos.shape[1] - (0 if "reg_token" in state else 1))
        spec.update(
            swiglu=swiglu,
            registers=config.get("num_register_tokens", 0),
            qkv_bias=config.get("qkv_bias", True),
            eps=config.get("layer_norm_eps", 1e-6),
        )
    else:
        swiglu = bool(config.get("use_gated_mlp", False))
        if config.get("query_bias", True) != config.get("value_bias", True):
            raise CheckpointError("huggingface: query_bias != value_bias; the timm model used here has both or neither")
        spec.update(
            swiglu=swiglu,
            registers=config.get("num_register_tokens", 4),
            qkv_bias=config.get("query_bias", True),
            eps=config.get("layer_norm_eps", 1e-5),
            rope_theta=config.get("rope_theta", 100.0),
        )
    _check_act(config, family, swiglu)
    return spec


def convert_hf(config: dict, sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str], dict]:
    """A transformers DINOv2 / DINOv3 state dict and its config -> (DinoViT state dict, dropped keys,
    builder kwargs of :func:`hf_spec`)."""
    family = _hf_family(config)
    if family == "dinov2":
        out, dropped = _rename(sd, _HF_DINOV2_RULES)
        out = _fuse(out, ("gate", "up"), "fc1")  # transformers >= 5's SwiGLU halves -> packed fc1
        out = _fold_class_position(out)
    else:
        out, dropped = _rename(sd, _HF_DINOV3_RULES)
        up = "fc1_x" if config.get("use_gated_mlp", False) else "fc1"
        out = {re.sub(r"\.mlp\.up\.", f".mlp.{up}.", k): v for k, v in out.items()}
        biases = {k: out.pop(k) for k in [k for k in out if re.search(r"\.attn\.[qkv]\.bias$", k)]}
        for key, bias in biases.items():
            prefix, part = key.removesuffix(".bias").rsplit(".", 1)
            if part == "k":
                if bool(bias.any()):
                    raise CheckpointError(
                        f"huggingface: {key} (key_bias) is not zero; DINOv3's ViTs mask the key bias and "
                        "the timm model used here has none"
                    )
                dropped.append(key)
            else:
                out[f"{prefix}.{part}_bias"] = bias
    out = _fuse(out, ("q", "k", "v"), "qkv")
    if "reg_token" in out and out["reg_token"].shape[1] == 0:  # num_register_tokens=0: an empty parameter
        del out["reg_token"]
    return out, dropped, hf_spec(config, out)
