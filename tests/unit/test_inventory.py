"""The inventory's tensors: names, shapes, roles, GGUF names, layouts."""

from __future__ import annotations

import math

import pytest

import qwenfit
from qwenfit.core.model.inventory import ROLES, build_inventory


def _by_name(spec):
    return {t.name: t for t in spec.inventory}


def test_gdn_layer_of_35b():
    spec = qwenfit.load("35B-A3B")
    t = _by_name(spec)
    p = "model.language_model.layers.0.linear_attn."
    assert t[p + "in_proj_qkv.weight"].shape == (8192, 2048)
    assert t[p + "in_proj_qkv.weight"].gguf_name == "blk.0.attn_qkv.weight"
    assert t[p + "in_proj_qkv.weight"].gguf_shape == (2048, 8192)
    assert t[p + "in_proj_z.weight"].gguf_name == "blk.0.attn_gate.weight"
    assert t[p + "in_proj_b.weight"].gguf_name == "blk.0.ssm_beta.weight"
    assert t[p + "in_proj_a.weight"].gguf_name == "blk.0.ssm_alpha.weight"
    conv = t[p + "conv1d.weight"]
    assert conv.shape == (8192, 1, 4) and conv.gguf_shape == (4, 8192)
    assert t[p + "A_log"].dtype == "F32" and t[p + "A_log"].gguf_name == "blk.0.ssm_a"
    assert t[p + "norm.weight"].dtype == "F32" and t[p + "norm.weight"].shape == (128,)
    assert t[p + "dt_bias"].gguf_name == "blk.0.ssm_dt.bias"
    assert t[p + "out_proj.weight"].gguf_shape == (4096, 2048)
    assert {x.layer_type for x in spec.inventory if x.layer == 0 and x.component == "text"} == {
        "linear_attention"
    }


def test_attention_layer_q_proj_carries_the_output_gate():
    spec = qwenfit.load("35B-A3B")
    t = _by_name(spec)
    p = "model.language_model.layers.3.self_attn."
    assert t[p + "q_proj.weight"].shape == (2 * 16 * 256, 2048)
    assert t[p + "k_proj.weight"].shape == (2 * 256, 2048)
    assert t[p + "o_proj.weight"].shape == (2048, 16 * 256)
    assert t[p + "q_norm.weight"].gguf_name == "blk.3.attn_q_norm.weight"
    assert t[p + "q_proj.weight"].layer_type == "full_attention"


def test_routed_experts_are_one_entry_per_projection():
    spec = qwenfit.load("397B-A17B")
    experts = [t for t in spec.inventory if t.role.startswith("expert_") and t.layer == 0]
    assert [(t.role, t.shape, t.gguf_name, t.gguf_shape) for t in experts] == [
        ("expert_gate", (512, 1024, 4096), "blk.0.ffn_gate_exps.weight", (4096, 1024, 512)),
        ("expert_up", (512, 1024, 4096), "blk.0.ffn_up_exps.weight", (4096, 1024, 512)),
        ("expert_down", (512, 4096, 1024), "blk.0.ffn_down_exps.weight", (1024, 4096, 512)),
    ]
    # the inventory of the largest model stays small (ARCHITECTURE.md)
    assert len(spec.inventory) < 2000


def test_stored_layout_fused_main_per_expert_mtp():
    inv = qwenfit.load("35B-A3B").inventory
    stored = {s.name: s for s in inv.hf_tensors()}
    assert stored["model.language_model.layers.0.mlp.experts.gate_up_proj"].shape == (256, 1024, 2048)
    assert stored["model.language_model.layers.0.mlp.experts.down_proj"].shape == (256, 2048, 512)
    assert stored["mtp.layers.0.mlp.experts.255.down_proj.weight"].shape == (2048, 512)
    assert sum(1 for n in stored if n.startswith("mtp.layers.0.mlp.experts.")) == 768
    assert sum(math.prod(s.shape) for s in stored.values()) == inv.params.total


def test_other_expert_layouts_keep_the_count():
    spec = qwenfit.load("35B-A3B")
    per_expert = build_inventory(spec, "per_expert", "per_expert")
    fused = build_inventory(spec, "fused", "fused")
    assert per_expert.params == fused.params == spec.params
    assert len(per_expert.hf_tensors()) - len(fused.hf_tensors()) == 41 * (256 * 3 - 2)


def test_qwen3_next_flat_layout_and_fused_gdn_projections():
    spec = qwenfit.load("Qwen3-Next-80B-A3B")
    t = _by_name(spec)
    # stored fused; llama.cpp's converter regroups it into attn_qkv + attn_gate
    qkv = t["model.layers.0.linear_attn.in_proj_qkvz.weight:qkv"]
    z = t["model.layers.0.linear_attn.in_proj_qkvz.weight:z"]
    assert (qkv.shape, qkv.gguf_name) == ((2 * 2048 + 4096, 2048), "blk.0.attn_qkv.weight")
    assert (z.shape, z.gguf_name) == ((4096, 2048), "blk.0.attn_gate.weight")
    stored = {s.name: s.shape for s in spec.inventory.hf_tensors()}
    assert stored["model.layers.0.linear_attn.in_proj_qkvz.weight"] == (2 * 2048 + 2 * 4096, 2048)
    ba = t["model.layers.0.linear_attn.in_proj_ba.weight"]
    assert (ba.shape, ba.gguf_name, ba.gguf_shape) == ((64, 2048), "blk.0.ssm_ba.weight", (2048, 64))
    assert "model.embed_tokens.weight" in t and "lm_head.weight" in t
    assert "model.layers.0.mlp.experts.{e}.gate_proj.weight" in t
    assert spec.vision is None and spec.mtp_layers == 1


def test_tied_embeddings_have_no_lm_head():
    assert not [t for t in qwenfit.load("0.8B").inventory if t.role == "lm_head"]
    assert [t.gguf_name for t in qwenfit.load("9B").inventory if t.role == "lm_head"] == ["output.weight"]


def test_mtp_block_is_a_full_attention_layer_after_the_decoder():
    spec = qwenfit.load("35B-A3B")
    mtp = [t for t in spec.inventory if t.component == "mtp"]
    assert {t.layer for t in mtp} == {40}
    names = {t.gguf_name for t in mtp}
    assert {
        "blk.40.nextn.eh_proj.weight",
        "blk.40.nextn.enorm.weight",
        "blk.40.nextn.hnorm.weight",
        "blk.40.nextn.shared_head_norm.weight",
        "blk.40.attn_q.weight",
        "blk.40.ffn_gate_exps.weight",
        "blk.40.ffn_gate_inp_shexp.weight",
    } <= names
    fc = next(t for t in mtp if t.role == "mtp_fc")
    assert fc.shape == (2048, 4096)


def test_every_text_tensor_has_a_unique_gguf_name_and_vision_has_none():
    for name in ("0.8B", "35B-A3B", "Qwen3-Next-80B-A3B"):
        inv = qwenfit.load(name).inventory
        gguf = [t.gguf_name for t in inv if t.component != "vision"]
        assert None not in gguf and len(set(gguf)) == len(gguf)
        assert all(t.gguf_name is None for t in inv if t.component == "vision")
        for t in inv:
            if t.gguf_shape is not None:
                assert math.prod(t.gguf_shape) == t.n_params


def test_roles_are_known():
    for name in ("0.8B", "35B-A3B", "Qwen3-Next-80B-A3B"):
        assert {t.role for t in qwenfit.load(name).inventory} <= set(ROLES)


@pytest.mark.parametrize("name", ["0.8B", "122B-A10B"])
def test_vision_tower(name):
    spec = qwenfit.load(name)
    v = spec.vision
    t = _by_name(spec)
    assert t["model.visual.patch_embed.proj.weight"].shape == (v.hidden_size, 3, 2, 16, 16)
    assert t["model.visual.merger.linear_fc2.weight"].shape == (spec.text.hidden_size, 4 * v.hidden_size)
    assert (
        sum(1 for n in t if n.startswith("model.visual.blocks.") and n.endswith("attn.qkv.weight")) == v.depth
    )


def test_qwen36_stores_mtp_experts_fused():
    q35 = {s.name for s in qwenfit.load("Qwen3.5-35B-A3B").inventory.hf_tensors()}
    q36 = {s.name for s in qwenfit.load("Qwen3.6-35B-A3B").inventory.hf_tensors()}
    assert len(q35) == 1811  # the official Qwen3.5-35B-A3B index lists 1811 tensors
    assert (
        "mtp.layers.0.mlp.experts.gate_up_proj" in q36
        and "mtp.layers.0.mlp.experts.0.gate_proj.weight" in q35
    )
