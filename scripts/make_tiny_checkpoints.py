#!/usr/bin/env python3
"""Generate tiny *real* Qwen3.5 / Qwen3-Next checkpoints and full-size meta-device counts.

What it produces
----------------
1. ``<out>/<variant>/`` for each variant below: a checkpoint written by transformers'
   ``save_pretrained`` (safetensors) from a randomly initialised tiny model, plus the ``mtp.*``
   block that real checkpoints carry and transformers never builds, plus
   ``expected.json`` = every tensor {name, shape, dtype, file} read back from the safetensors
   headers, the total parameter count and its split {text, mtp, vision}, and a ``fixture``
   section saying how the checkpoint was made (class, expert layout, dtype casts, versions).

   ==================  =========================================================================
   dense-vision-mtp    Qwen3_5ForConditionalGeneration (qwen3_5): tied embeddings, vision tower,
                       1 MTP layer (dense MLP).
   dense-untied-text   Qwen3_5ForCausalLM (qwen3_5_text), text-only export: untied, no vision, no
                       MTP, full_attention_interval 3 but explicit non-default ``layer_types``
                       (3 full-attention layers of 6; the interval would give 2).
   moe-vision-mtp      Qwen3_5MoeForConditionalGeneration (qwen3_5_moe): untied, vision, 1 MoE MTP
                       layer. Expert layout of the official Qwen/Qwen3.5-35B-A3B repository: main
                       layers fused 3-D (``mlp.experts.gate_up_proj`` / ``mlp.experts.down_proj``),
                       MTP layer per expert (``mtp.layers.0.mlp.experts.{i}.{gate,up,down}_proj.weight``).
   moe-sharded         Same family, 8 layers (2 full-attention), sharded (4 files with the tiny
                       profile; mtp.* in the last one) with ``model.safetensors.index.json``.
                       Expert layout of Qwen/Qwen3.6-35B-A3B: fused 3-D in the main layers
                       *and* in the MTP layer.
   next-mtp            Qwen3NextForCausalLM (qwen3_next, flat ``model.*`` names, fused
                       ``in_proj_qkvz`` / ``in_proj_ba``), per-expert experts everywhere (what
                       transformers writes for qwen3_next; Qwen3-Coder-Next's published tensor
                       count, 74,391, implies per-expert tensors too),
                       plus ``mtp.*``. Its config.json has no MTP key, like the real one;
                       ``expected.json`` records ``fixture.mtp_layers_in_checkpoint = 1``.
   ==================  =========================================================================

   The config.json files are written in the shape of the shipped Hugging Face files (keys such
   as ``full_attention_interval``, ``mtp_num_hidden_layers``, ``mamba_ssm_dtype``,
   ``attn_output_gate``, ``vision_config.model_type = "qwen3_5"`` / ``"qwen3_5_moe"``, and for
   Qwen3-Next ``torch_dtype`` with no ``layer_types``) and are checked to load back in
   transformers (``--no-verify`` skips that).

2. ``--meta-counts FILE``: for every catalog config in ``data/models/*.json`` (its ``_qwenfit`` key
   stripped), the model class is instantiated on the meta device (``with torch.device("meta")``;
   see meta_count() for why not accelerate's ``init_empty_weights()``) and its parameters are
   counted (tied weights once), split into vision (``model.visual.*``) and text. transformers
   builds no MTP block, so these counts EXCLUDE MTP; the file also gives the MTP size built
   from transformers' own decoder-layer class and compares ``count + mtp`` with the published
   Hugging Face total.

Dtypes
------
Real Qwen3.5 checkpoints are BF16 except ``linear_attn.A_log`` and ``linear_attn.norm.weight``
(F32). transformers 5.24 has no ``_keep_in_fp32_modules`` for these classes, so a model cast
to bf16 saves them as BF16; this script casts those two parameters back to F32 before saving
so the fixtures match the real files. The same is done for Qwen3-Next (assumed, not verified
against a real Qwen3-Next header).

How to run
----------
::

    python3.11 -m venv /work/venvs/fixtures
    /work/venvs/fixtures/bin/pip install torch==2.13.0          # CPU wheel first
    /work/venvs/fixtures/bin/pip install -r scripts/requirements-fixtures.txt
    /work/venvs/fixtures/bin/python scripts/make_tiny_checkpoints.py \\
        --out tests/fixtures/tiny --meta-counts tests/fixtures/meta_counts.json

The output is deterministic (fixed seeds, sorted JSON): re-running with the same package
versions reproduces the files byte for byte. ``--profile kquant`` (hidden sizes that are
multiples of 256, as llama.cpp K-quants need) or ``--dims key=value,...`` make larger models;
write those to a directory outside the repository, e.g. ``--out /tmp/qwenfit-kquant``.
"""

from __future__ import annotations

import argparse
import copy
import glob
import json
import os
import shutil
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import torch

sys.dont_write_bytecode = True  # no scripts/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _tiny_safetensors import inventory, read_header, summarize  # noqa: E402

BASE_SEED = 20260301

# ------------------------------------------------------------------------------------------------
# Variant definitions
# ------------------------------------------------------------------------------------------------


@dataclass
class Variant:
    name: str
    family: str  # "qwen3_5" | "qwen3_5_moe" | "qwen3_next"
    text_only: bool  # Qwen3_5ForCausalLM-style export (flat text config, no vision)
    vision: bool
    mtp_layers: int
    tie: bool
    experts_main: str | None  # "fused" | "per-expert" | None (dense)
    experts_mtp: str | None
    shards: int  # 1 = single model.safetensors
    text: dict[str, Any] = field(default_factory=dict)
    vis: dict[str, Any] = field(default_factory=dict)
    layer_types: list[str] | None = None  # explicit, else derived from full_attention_interval
    description: str = ""


def _mrope_section(head_dim: int, partial: float = 0.25) -> list[int]:
    """An mrope_section for a tiny head_dim, split like the real [11, 11, 10] (sum = rotary/2)."""
    half = int(head_dim * partial) // 2
    a = (half + 2) // 3
    b = (half - a + 1) // 2
    return [a, b, half - a - b]


def variants_for(profile: str) -> list[Variant]:
    """Dimensions per variant. 'tiny' is what is committed; 'kquant' keeps every matrix's input
    dimension a multiple of 256 (llama.cpp K-quant rule) for a later, non-committed run."""
    if profile == "tiny":
        # Small, and pairwise-distinct where the family allows it (H=64, q/o 192/96, kv 48,
        # key/value/conv 40/120/200, I 88, ...) so a formula that uses the wrong dimension fails.
        # Expert widths stay multiples of 8: torch's grouped_mm (used by the forward check) needs
        # 16-byte strides in bf16.
        g = dict(
            hidden_size=64,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=24,
            linear_num_key_heads=2,
            linear_num_value_heads=6,
            linear_key_head_dim=20,
            linear_value_head_dim=20,
            linear_conv_kernel_dim=4,
        )
        vis = dict(depth=2, hidden_size=24, intermediate_size=40, num_heads=3, num_position_embeddings=16)
        dense = dict(g, vocab_size=320, num_hidden_layers=4, intermediate_size=88, full_attention_interval=4)
        untied = dict(
            g,
            vocab_size=288,
            num_hidden_layers=6,
            intermediate_size=80,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=56,
            linear_key_head_dim=16,
            linear_value_head_dim=16,
            full_attention_interval=3,
        )
        moe = dict(
            g,
            vocab_size=320,
            num_hidden_layers=4,
            full_attention_interval=4,
            num_experts=8,
            num_experts_per_tok=2,
            moe_intermediate_size=16,
            shared_expert_intermediate_size=40,
        )
        moe_sh = dict(
            g,
            vocab_size=256,
            num_hidden_layers=8,
            full_attention_interval=4,
            num_key_value_heads=1,
            linear_num_value_heads=4,
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=16,
            shared_expert_intermediate_size=16,
        )
        vis_sh = dict(vis, depth=1)
        nxt = dict(
            g,
            vocab_size=256,
            num_hidden_layers=4,
            full_attention_interval=4,
            intermediate_size=88,
            num_experts=8,
            num_experts_per_tok=2,
            moe_intermediate_size=16,
            shared_expert_intermediate_size=24,
        )
    elif profile == "kquant":
        g = dict(
            hidden_size=256,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=128,
            linear_num_key_heads=2,
            linear_num_value_heads=4,
            linear_key_head_dim=64,
            linear_value_head_dim=64,
            linear_conv_kernel_dim=4,
        )
        vis = dict(depth=2, hidden_size=256, intermediate_size=512, num_heads=4, num_position_embeddings=64)
        dense = dict(
            g, vocab_size=1024, num_hidden_layers=8, intermediate_size=768, full_attention_interval=4
        )
        untied = dict(
            g,
            vocab_size=1024,
            num_hidden_layers=6,
            intermediate_size=512,
            head_dim=256,
            num_attention_heads=1,
            linear_num_value_heads=8,
            full_attention_interval=3,
        )
        moe = dict(
            g,
            vocab_size=1024,
            num_hidden_layers=8,
            full_attention_interval=4,
            num_experts=8,
            num_experts_per_tok=2,
            moe_intermediate_size=256,
            shared_expert_intermediate_size=256,
        )
        moe_sh = dict(moe)
        vis_sh = dict(vis)
        nxt = dict(
            g,
            vocab_size=1024,
            num_hidden_layers=8,
            full_attention_interval=4,
            intermediate_size=512,
            num_experts=8,
            num_experts_per_tok=2,
            moe_intermediate_size=256,
            shared_expert_intermediate_size=256,
        )
    else:
        raise SystemExit(f"unknown profile {profile!r}")

    untied_layers = 6 if profile == "tiny" else untied["num_hidden_layers"]
    # Not the interval-3 pattern (l,l,f,l,l,f): 3 full-attention layers instead of 2, so a reader
    # that derives the pattern from full_attention_interval instead of layer_types gets it wrong.
    untied_types = (
        [
            "linear_attention",
            "full_attention",
            "linear_attention",
            "linear_attention",
            "full_attention",
            "full_attention",
        ]
        * 8
    )[:untied_layers]

    return [
        Variant(
            "dense-vision-mtp",
            "qwen3_5",
            False,
            True,
            1,
            True,
            None,
            None,
            1,
            dense,
            vis,
            description="Qwen3_5ForConditionalGeneration, tied, vision, 1 dense MTP layer",
        ),
        Variant(
            "dense-untied-text",
            "qwen3_5",
            True,
            False,
            0,
            False,
            None,
            None,
            1,
            untied,
            {},
            layer_types=untied_types,
            description="Qwen3_5ForCausalLM text-only export: untied, no vision, no MTP, "
            "explicit layer_types that differ from full_attention_interval",
        ),
        Variant(
            "moe-vision-mtp",
            "qwen3_5_moe",
            False,
            True,
            1,
            False,
            "fused",
            "per-expert",
            1,
            moe,
            vis,
            description="Qwen3_5MoeForConditionalGeneration, untied, vision, 1 MoE MTP layer; "
            "experts laid out like Qwen/Qwen3.5-35B-A3B (main fused 3-D, MTP per expert)",
        ),
        Variant(
            "moe-sharded",
            "qwen3_5_moe",
            False,
            True,
            1,
            False,
            "fused",
            "fused",
            3,
            moe_sh,
            vis_sh,
            description="Qwen3_5MoeForConditionalGeneration, 8 layers, sharded (index.json); "
            "experts laid out like Qwen/Qwen3.6-35B-A3B (fused 3-D in main and MTP)",
        ),
        Variant(
            "next-mtp",
            "qwen3_next",
            False,
            False,
            1,
            False,
            "per-expert",
            "per-expert",
            1,
            nxt,
            {},
            description="Qwen3NextForCausalLM (flat layout, in_proj_qkvz/in_proj_ba), per-expert "
            "experts, mtp.* present although config.json has no MTP key",
        ),
    ]


def apply_dims(variants: list[Variant], dims: str | None) -> None:
    """--dims hidden_size=512,intermediate_size=1536,vision.hidden_size=256 (applies to all)."""
    if not dims:
        return
    for item in dims.split(","):
        key, _, raw = item.partition("=")
        key = key.strip()
        val: Any = json.loads(raw)
        for v in variants:
            if key.startswith("vision."):
                if v.vision:
                    v.vis[key[len("vision.") :]] = val
            elif key in v.text or key in ("num_hidden_layers", "vocab_size", "hidden_size"):
                v.text[key] = val
            if key == "num_hidden_layers" and v.layer_types is not None:
                v.layer_types = (v.layer_types * val)[:val]


# ------------------------------------------------------------------------------------------------
# config.json in the shape of the shipped files
# ------------------------------------------------------------------------------------------------


def _layer_types(v: Variant) -> list[str]:
    if v.layer_types is not None:
        return list(v.layer_types)
    k = v.text["full_attention_interval"]
    return [
        "linear_attention" if (i + 1) % k else "full_attention" for i in range(v.text["num_hidden_layers"])
    ]


def build_config_dict(v: Variant, transformers_version: str) -> dict[str, Any]:
    t = dict(v.text)
    hd = t["head_dim"]
    if v.family == "qwen3_next":
        # Like the verbatim Qwen3-Next-80B-A3B config.json: flat, full_attention_interval but no
        # layer_types, legacy rope keys, torch_dtype, and no MTP key at all.
        return dict(
            t,
            architectures=["Qwen3NextForCausalLM"],
            model_type="qwen3_next",
            attention_bias=False,
            attention_dropout=0.0,
            bos_token_id=151643,
            eos_token_id=151645,
            decoder_sparse_step=1,
            hidden_act="silu",
            initializer_range=0.02,
            max_position_embeddings=262144,
            mlp_only_layers=[],
            norm_topk_prob=True,
            output_router_logits=False,
            partial_rotary_factor=0.25,
            rms_norm_eps=1e-06,
            rope_scaling=None,
            rope_theta=10000000,
            router_aux_loss_coef=0.001,
            tie_word_embeddings=v.tie,
            torch_dtype="bfloat16",
            transformers_version=transformers_version,
            use_cache=True,
            use_sliding_window=False,
        )
    text = dict(
        t,
        attention_bias=False,
        attention_dropout=0.0,
        attn_output_gate=True,
        dtype="bfloat16",
        eos_token_id=248044,
        hidden_act="silu",
        initializer_range=0.02,
        layer_types=_layer_types(v),
        mamba_ssm_dtype="float32",
        max_position_embeddings=262144,
        rms_norm_eps=1e-06,
        use_cache=True,
        rope_parameters={
            "mrope_interleaved": True,
            "mrope_section": _mrope_section(hd),
            "rope_type": "default",
            "rope_theta": 10000000,
            "partial_rotary_factor": 0.25,
        },
    )
    if v.mtp_layers:
        text.update(mtp_num_hidden_layers=v.mtp_layers, mtp_use_dedicated_embeddings=False)
    if v.family == "qwen3_5_moe":
        text.update(model_type="qwen3_5_moe_text", mlp_only_layers=[], router_aux_loss_coef=0.001)
    else:
        text.update(model_type="qwen3_5_text", tie_word_embeddings=v.tie)
    if v.text_only:
        arch = "Qwen3_5ForCausalLM" if v.family == "qwen3_5" else "Qwen3_5MoeForCausalLM"
        return dict(
            text, architectures=[arch], tie_word_embeddings=v.tie, transformers_version=transformers_version
        )
    vision = dict(
        v.vis,
        deepstack_visual_indexes=[],
        hidden_act="gelu_pytorch_tanh",
        in_channels=3,
        initializer_range=0.02,
        model_type=v.family,  # shipped files say "qwen3_5" / "qwen3_5_moe"; transformers remaps on load
        out_hidden_size=t["hidden_size"],
        patch_size=16,
        spatial_merge_size=2,
        temporal_patch_size=2,
    )
    arch = (
        "Qwen3_5ForConditionalGeneration" if v.family == "qwen3_5" else "Qwen3_5MoeForConditionalGeneration"
    )
    return {
        "architectures": [arch],
        "image_token_id": 248056,
        "model_type": v.family,
        "text_config": text,
        "tie_word_embeddings": v.tie,
        "transformers_version": transformers_version,
        "video_token_id": 248057,
        "vision_config": vision,
        "vision_end_token_id": 248054,
        "vision_start_token_id": 248053,
    }


# ------------------------------------------------------------------------------------------------
# transformers plumbing
# ------------------------------------------------------------------------------------------------


def model_class_for(cfg: dict[str, Any]):
    import transformers as tf

    arch = cfg["architectures"][0]
    return getattr(tf, arch)


def config_from_dict(cfg: dict[str, Any]):
    from transformers import AutoConfig

    d = copy.deepcopy({k: v for k, v in cfg.items() if k != "_qwenfit"})  # transformers edits sub-dicts
    return AutoConfig.for_model(d.pop("model_type"), **d)


def text_config_of(config):
    return getattr(config, "text_config", None) or config


def decoder_layer_class(family: str):
    if family == "qwen3_5":
        from transformers.models.qwen3_5.modeling_qwen3_5 import Qwen3_5DecoderLayer as C
    elif family == "qwen3_5_moe":
        from transformers.models.qwen3_5_moe.modeling_qwen3_5_moe import Qwen3_5MoeDecoderLayer as C
    elif family == "qwen3_next":
        from transformers.models.qwen3_next.modeling_qwen3_next import Qwen3NextDecoderLayer as C
    else:
        raise ValueError(family)
    return C


def family_of(model_type: str) -> str:
    return {
        "qwen3_5": "qwen3_5",
        "qwen3_5_text": "qwen3_5",
        "qwen3_5_moe": "qwen3_5_moe",
        "qwen3_5_moe_text": "qwen3_5_moe",
        "qwen3_next": "qwen3_next",
    }[model_type]


def build_mtp_layer(family: str, text_config):
    """One FULL-ATTENTION decoder layer of the model's own class (so FFN type and shapes are the
    real ones): the module that real checkpoints store under mtp.layers.0."""
    cfg = copy.deepcopy(text_config)
    cfg.layer_types = ["full_attention"]
    cfg.mlp_only_layers = []  # layer index 0 of a MoE model is a MoE layer (decoder_sparse_step 1)
    layer = decoder_layer_class(family)(cfg, 0)
    assert hasattr(layer, "self_attn") and not hasattr(layer, "linear_attn")
    return layer


def split_experts(prefix: str, gate_up: torch.Tensor, down: torch.Tensor) -> dict[str, torch.Tensor]:
    """Fused [E, 2*mi, H] / [E, H, mi] -> per-expert {gate,up,down}_proj.weight, the inverse of
    transformers' qwen2_moe conversion (MergeModulelist(dim=0) then Concatenate(dim=1): gate
    rows first, then up rows)."""
    out = {}
    mi = gate_up.shape[1] // 2
    for e in range(gate_up.shape[0]):
        out[f"{prefix}experts.{e}.gate_proj.weight"] = gate_up[e, :mi].contiguous()
        out[f"{prefix}experts.{e}.up_proj.weight"] = gate_up[e, mi:].contiguous()
        out[f"{prefix}experts.{e}.down_proj.weight"] = down[e].contiguous()
    return out


def mtp_tensors(v: Variant, text_config, seed: int) -> dict[str, torch.Tensor]:
    """The mtp.* block as real checkpoints store it (all BF16: it has no GDN layer)."""
    H = text_config.hidden_size
    layer = build_mtp_layer(v.family, text_config)
    gen = torch.Generator().manual_seed(seed)
    raw: dict[str, torch.Tensor] = {}
    for name, p in sorted(layer.state_dict().items()):
        if name.endswith("norm.weight"):
            raw[name] = torch.zeros(p.shape)  # zero-centred RMSNorm, as transformers initialises it
        else:
            raw[name] = torch.randn(p.shape, generator=gen) * 0.02
    layer_sd: dict[str, torch.Tensor] = {}
    for name, t in raw.items():
        if name == "mlp.experts.gate_up_proj" and v.experts_mtp == "per-expert":
            layer_sd.update(split_experts("mlp.", t, raw["mlp.experts.down_proj"]))
        elif name == "mlp.experts.down_proj" and v.experts_mtp == "per-expert":
            continue
        else:
            layer_sd[name] = t
    out = {f"mtp.layers.0.{k}": t for k, t in layer_sd.items()}
    out["mtp.fc.weight"] = torch.randn(H, 2 * H, generator=gen) * 0.02  # Linear(2H -> H)
    for n in ("mtp.pre_fc_norm_embedding.weight", "mtp.pre_fc_norm_hidden.weight", "mtp.norm.weight"):
        out[n] = torch.zeros(H)
    return {k: t.to(torch.bfloat16).contiguous() for k, t in sorted(out.items())}


F32_SUFFIXES = (".linear_attn.A_log", ".linear_attn.norm.weight")


def cast_like_real_checkpoints(model) -> list[str]:
    """bf16 everywhere, then A_log and the gated GDN norm back to F32 as in the real files.

    transformers itself (5.24) saves a bf16 model with these two as BF16 too: none of the
    Qwen3.5 / Qwen3-Next classes declares _keep_in_fp32_modules. The cast below is ours."""
    model.to(torch.bfloat16)
    cast = []
    for name, p in model.named_parameters():
        if name.endswith(F32_SUFFIXES):
            p.data = p.data.to(torch.float32)
            cast.append(name)
    return cast


# ------------------------------------------------------------------------------------------------
# Writing one variant
# ------------------------------------------------------------------------------------------------


def _json_dump(obj: Any, path: str) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def _merge_into_safetensors(path: str, extra: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    clash = set(tensors) & set(extra)
    assert not clash, clash
    tensors.update(extra)
    meta = read_header(path).get("__metadata__") or {"format": "pt"}
    save_file(tensors, path, metadata=meta)


def write_variant(v: Variant, out_root: str, versions: dict[str, str], verify: bool) -> dict[str, Any]:

    out = os.path.join(out_root, v.name)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)

    seed = BASE_SEED + zlib.crc32(v.name.encode()) % 100000
    cfg_dict = build_config_dict(v, versions["transformers"])
    config = config_from_dict(cfg_dict)
    cls = model_class_for(cfg_dict)
    torch.manual_seed(seed)
    model = cls(config)
    model.eval()
    f32_cast = cast_like_real_checkpoints(model)

    # Main checkpoint. save_original_format=True (the default) runs transformers' reverse weight
    # conversion, which for qwen3_5_moe_text / qwen3_next turns the in-memory fused experts into
    # per-expert tensors; False writes the fused 3-D tensors as they are in memory.
    save_kwargs: dict[str, Any] = {"save_original_format": v.experts_main != "fused"}
    if v.shards > 1:
        total = sum(p.numel() * p.element_size() for p in model.parameters())
        save_kwargs["max_shard_size"] = total // v.shards + 1
    model.save_pretrained(out, **save_kwargs)
    for fn in os.listdir(out):  # keep only the checkpoint itself; our config.json replaces theirs
        if fn in ("generation_config.json", "config.json"):
            os.remove(os.path.join(out, fn))
    _json_dump(cfg_dict, os.path.join(out, "config.json"))

    # MTP block (transformers never builds it).
    mtp = mtp_tensors(v, text_config_of(config), seed + 1) if v.mtp_layers else {}
    index_path = os.path.join(out, "model.safetensors.index.json")
    if mtp and os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
        last = sorted(set(index["weight_map"].values()))[-1]  # real repos keep mtp.* in the last shard(s)
        _merge_into_safetensors(os.path.join(out, last), mtp)
        for k in mtp:
            index["weight_map"][k] = last
        index["weight_map"] = dict(sorted(index["weight_map"].items()))
        s = summarize(inventory(out))
        index.setdefault("metadata", {})["total_size"] = s["total_bytes"]
        if "total_parameters" in index["metadata"]:
            index["metadata"]["total_parameters"] = s["total_params"]
        _json_dump(index, index_path)
    elif mtp:
        _merge_into_safetensors(os.path.join(out, "model.safetensors"), mtp)

    for fn in os.listdir(out):
        os.chmod(os.path.join(out, fn), 0o644)  # safetensors writes 0600
    rows = inventory(out)
    summary = summarize(rows)
    n_files = len({r["file"] for r in rows})
    if v.shards > 1:
        assert 2 <= n_files <= 4, f"{v.name}: {n_files} shards"
    expected = {
        "variant": v.name,
        "description": v.description,
        "tensors": rows,
        **summary,
        "fixture": {
            "generator": "scripts/make_tiny_checkpoints.py",
            "model_class": cfg_dict["architectures"][0],
            "model_type": cfg_dict["model_type"],
            "seed": seed,
            "files": sorted({r["file"] for r in rows}),
            "tie_word_embeddings": v.tie,
            "vision": v.vision,
            "mtp_layers_in_checkpoint": v.mtp_layers,
            "mtp_key_in_config": bool(v.mtp_layers) and v.family != "qwen3_next",
            "experts_layout_main": v.experts_main,
            "experts_layout_mtp": v.experts_mtp if v.mtp_layers else None,
            "f32_tensors_cast_by_script": sorted({_pattern(n) for n in f32_cast}),
            "f32_note": "transformers saves A_log / linear_attn.norm.weight as BF16 from a bf16 model (no "
            "_keep_in_fp32_modules); the script casts them to F32 like the real checkpoints"
            + (
                " (for Qwen3-Next this is assumed: no real Qwen3-Next header was checked)"
                if v.family == "qwen3_next"
                else ""
            ),
            "versions": versions,
        },
    }
    _json_dump(expected, os.path.join(out, "expected.json"))

    if verify:
        verify_variant(v, out, cfg_dict, summary, model)
    del model
    return {
        "variant": v.name,
        "files": n_files,
        **summary,
        "bytes_on_disk": sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)),
    }


def _pattern(name: str) -> str:
    parts = name.split(".")
    return ".".join("*" if p.isdigit() else p for p in parts)


def verify_variant(v: Variant, out: str, cfg_dict: dict[str, Any], summary: dict[str, Any], built) -> None:
    """Load the written checkpoint back with transformers: no missing / mismatched keys, the
    loaded model has exactly the text + vision parameters of the files, and a tiny forward pass
    runs. For per-expert main layers, check our expert split against transformers' own."""
    cls = model_class_for(cfg_dict)
    loaded, info = cls.from_pretrained(out, output_loading_info=True, dtype=torch.bfloat16)
    bad = {k: info[k] for k in ("missing_keys", "mismatched_keys", "error_msgs") if info.get(k)}
    unexpected = [k for k in info.get("unexpected_keys", []) if not k.startswith("mtp.")]
    assert not bad and not unexpected, (v.name, bad, unexpected)
    n_loaded = sum(p.numel() for p in loaded.parameters())
    want = summary["params"]["text"] + summary["params"]["vision"]
    assert n_loaded == want, (v.name, n_loaded, want)
    vocab = (cfg_dict.get("text_config") or cfg_dict)["vocab_size"]
    with torch.no_grad():
        logits = loaded(input_ids=torch.arange(7).unsqueeze(0) % vocab).logits  # text-only forward
        assert logits.shape[-1] == vocab
        assert torch.isfinite(logits.float()).all()
    if v.experts_main == "per-expert":
        from safetensors import safe_open

        sd = {
            k: t
            for k, t in built.state_dict().items()
            if k.endswith("layers.0.mlp.experts.gate_up_proj") or k.endswith("layers.0.mlp.experts.down_proj")
        }
        (gu_name,) = [k for k in sd if k.endswith("gate_up_proj")]
        prefix = gu_name[: -len("experts.gate_up_proj")]
        mine = split_experts(prefix, sd[gu_name], sd[prefix + "experts.down_proj"])
        with safe_open(os.path.join(out, "model.safetensors"), "pt") as f:
            for k, t in mine.items():
                assert torch.equal(f.get_tensor(k), t), k
    print(
        f"  verified {v.name}: loads back, {n_loaded} params in transformers == text+vision in files",
        file=sys.stderr,
    )


# ------------------------------------------------------------------------------------------------
# Full-size meta-device counts
# ------------------------------------------------------------------------------------------------

# Reference §3.4 (shared/reference/qwen35-architecture.md): P_mtp per model, so that the
# no-MTP meta count can be compared with (published total - P_mtp).
REFERENCE_P_MTP = {
    "Qwen3-Next-80B-A3B": 1_650_471_424,
    "Qwen3.5-397B-A17B": 6_595_568_128,
    "Qwen3.5-122B-A10B": 2_523_679_232,
    "Qwen3.5-35B-A3B": 844_640_768,
    "Qwen3.6-35B-A3B": 844_640_768,
    "Qwen3.5-27B": 424_699_392,
    "Qwen3.6-27B": 424_699_392,
    "Qwen3.5-9B": 243_290_624,
    "Qwen3.5-4B": 120_599_552,
    "Qwen3.5-2B": 60_828_160,
    "Qwen3.5-0.8B": 20_452_864,
}


def _layer_tensors(model, prefix: str) -> dict[str, list[int]]:
    return {n[len(prefix) :]: list(p.shape) for n, p in model.named_parameters() if n.startswith(prefix)}


def meta_count(path: str) -> dict[str, Any]:
    with open(path) as f:
        raw = json.load(f)
    q = raw.get("_qwenfit", {})
    cfg = {k: v for k, v in raw.items() if k != "_qwenfit"}
    config = config_from_dict(cfg)
    cls = model_class_for(cfg)
    t0 = time.time()
    # torch.device("meta"), not accelerate's init_empty_weights(): with transformers 5.24 and
    # accelerate 1.15, init_empty_weights() (a) leaves lm_head UNTIED from embed_tokens for
    # tie_word_embeddings models (it re-registers each parameter as a new meta Parameter, so the
    # tie made in post_init is lost: 0.8B/2B/4B come out V*H too large), and (b) only moves a
    # parameter to meta after it was created, so nn.Parameter(torch.empty(E, 2*mi, H)) of the
    # fused experts is first allocated and initialised on the CPU (GBs per layer for 397B).
    with torch.device("meta"):
        model = cls(config)
    named = list(model.named_parameters())  # dedups tied parameters, like the safetensors files
    vision = sum(p.numel() for n, p in named if n.startswith("model.visual."))
    total = sum(p.numel() for _, p in named)
    tc = text_config_of(config)
    lt = list(tc.layer_types)
    base = "model.language_model.layers." if hasattr(model.model, "language_model") else "model.layers."
    i_lin, i_full = lt.index("linear_attention"), lt.index("full_attention")
    lin = _layer_tensors(model, f"{base}{i_lin}.")
    full = _layer_tensors(model, f"{base}{i_full}.")
    mlp = {k: s for k, s in full.items() if k.startswith("mlp.")}
    fam = family_of(cfg["model_type"])
    with torch.device("meta"):
        mtp_layer = build_mtp_layer(fam, tc)
    H = tc.hidden_size
    mtp_built = sum(p.numel() for p in mtp_layer.parameters()) + 2 * H * H + 3 * H
    name = q.get("name", os.path.splitext(os.path.basename(path))[0])
    published = q.get("published_total_params")
    ref_mtp = REFERENCE_P_MTP.get(name)
    res: dict[str, Any] = {
        "config_file": os.path.relpath(path, REPO_ROOT) if path.startswith(REPO_ROOT) else path,
        "model_class": cls.__name__,
        "params_no_mtp": total,
        "params_text_no_mtp": total - vision,
        "params_vision": vision,
        "mtp_params_built_from_transformers_decoder_layer": mtp_built,
        "reference_p_mtp": ref_mtp,
        "published_total_params": published,
        "n_full_attention_layers": lt.count("full_attention"),
        "n_linear_attention_layers": lt.count("linear_attention"),
        "gdn_layer_tensors": {k: s for k, s in lin.items() if not k.startswith("mlp.")},
        "attention_layer_tensors": {k: s for k, s in full.items() if not k.startswith("mlp.")},
        "mlp_tensors": mlp,
        "seconds": round(time.time() - t0, 1),
    }
    if published is not None and ref_mtp is not None:
        res["expected_no_mtp"] = published - ref_mtp
        res["diff_vs_expected"] = total - (published - ref_mtp)
        res["diff_total_with_built_mtp_vs_published"] = total + mtp_built - published
    del res["seconds"]  # keep the output deterministic
    return res


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_meta_counts(
    models_dir: str, out_path: str, versions: dict[str, str], wait_s: int
) -> dict[str, Any]:
    deadline = time.time() + wait_s
    files = sorted(glob.glob(os.path.join(models_dir, "*.json")))
    while not files and time.time() < deadline:
        print(f"  waiting for {models_dir}/*.json ...", file=sys.stderr)
        time.sleep(30)
        files = sorted(glob.glob(os.path.join(models_dir, "*.json")))
    if not files:
        raise SystemExit(f"no catalog configs in {models_dir}")
    models = {}
    for path in files:
        name = os.path.splitext(os.path.basename(path))[0]
        print(f"  meta count {name} ...", file=sys.stderr)
        models[name] = meta_count(path)
    result = {
        "generator": "scripts/make_tiny_checkpoints.py --meta-counts",
        "versions": versions,
        "note": (
            "Parameter counts of the full-size catalog configs (data/models/*.json, _qwenfit key "
            "stripped) instantiated on the meta device (torch.device('meta')) in the transformers "
            "classes; tied embeddings counted once (model.parameters() dedups the tied lm_head). "
            "transformers does not build the MTP block, so params_no_mtp EXCLUDES MTP; "
            "expected_no_mtp = published_total_params - reference_p_mtp "
            "(shared/reference/qwen35-architecture.md §3.4). mtp_params_built_from_transformers_"
            "decoder_layer = one full-attention decoder layer of the model's own class + mtp.fc "
            "(2H*H) + 3 norms (3H). Tensor lists are the in-memory transformers names (experts fused "
            "3-D), not necessarily the on-disk names."
        ),
        "models": models,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    _json_dump(result, out_path)
    return result


# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--out", default=None, help="directory for the tiny checkpoints (e.g. tests/fixtures/tiny)"
    )
    ap.add_argument(
        "--meta-counts", default=None, help="write full-size meta-device counts to this JSON file"
    )
    ap.add_argument("--models-dir", default=os.path.join(REPO_ROOT, "data", "models"))
    ap.add_argument("--wait-for-models", type=int, default=0, help="seconds to wait for --models-dir to fill")
    ap.add_argument("--profile", default="tiny", choices=["tiny", "kquant"])
    ap.add_argument(
        "--dims", default=None, help="overrides for every variant, e.g. hidden_size=512,vision.depth=4"
    )
    ap.add_argument("--variants", default=None, help="comma-separated subset of variant names")
    ap.add_argument("--no-verify", action="store_true", help="skip loading each checkpoint back")
    args = ap.parse_args(argv)

    import accelerate
    import safetensors
    import transformers

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    versions = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "accelerate": accelerate.__version__,
        "safetensors": safetensors.__version__,
    }
    if args.out:
        variants = variants_for(args.profile)
        apply_dims(variants, args.dims)
        if args.variants:
            keep = set(args.variants.split(","))
            variants = [v for v in variants if v.name in keep]
        os.makedirs(args.out, exist_ok=True)
        for v in variants:
            r = write_variant(v, args.out, versions, verify=not args.no_verify)
            print(
                f"{r['variant']:18s} files={r['files']} tensors={r['tensor_count']:4d} "
                f"params={r['total_params']:>9d} (text {r['params']['text']}, mtp {r['params']['mtp']}, "
                f"vision {r['params']['vision']}) disk={r['bytes_on_disk']} B"
            )
    if args.meta_counts:
        res = write_meta_counts(args.models_dir, args.meta_counts, versions, args.wait_for_models)
        for name, m in res["models"].items():
            print(
                f"{name:20s} no_mtp={m['params_no_mtp']:>15,d} vision={m['params_vision']:>12,d} "
                f"expected_no_mtp={m.get('expected_no_mtp', 0):>15,d} diff={m.get('diff_vs_expected')} "
                f"built_mtp={m['mtp_params_built_from_transformers_decoder_layer']:,d} "
                f"ref_mtp={m['reference_p_mtp']}"
            )
    if not args.out and not args.meta_counts:
        ap.error("nothing to do: give --out and/or --meta-counts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
