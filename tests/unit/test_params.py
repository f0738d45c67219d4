"""Parameter counts against published Hugging Face totals and an independent derivation."""

from __future__ import annotations

import pytest

import qwenfit
from qwenfit.loaders import catalog

# Hugging Face `safetensors.total` values (the Hub API of each Qwen/Qwen3.5-* repo).
PUBLISHED_TOTAL = {
    "Qwen3.5-0.8B": 873_438_784,
    "Qwen3.5-2B": 2_274_069_824,
    "Qwen3.5-4B": 4_659_865_088,
    "Qwen3.5-9B": 9_653_104_368,
    "Qwen3.5-27B": 27_781_427_952,  # published for Qwen3.6-27B / Qwen3.8-27B, identical shapes
    "Qwen3.5-35B-A3B": 35_951_822_704,
    "Qwen3.5-122B-A10B": 125_086_497_008,
    "Qwen3.5-397B-A17B": 403_397_928_944,
    "Qwen3-Next-80B-A3B": 81_324_862_720,
    "Qwen3.6-27B": 27_781_427_952,
    "Qwen3.6-35B-A3B": 35_951_822_704,
}

# text (no MTP, no vision) / MTP / vision split of the reference table (§3.4)
REFERENCE_SPLIT = {
    "Qwen3-Next-80B-A3B": (79_674_391_296, 1_650_471_424, 0),
    "Qwen3.5-397B-A17B": (396_346_350_336, 6_595_568_128, 456_010_480),
    "Qwen3.5-122B-A10B": (122_111_526_912, 2_523_679_232, 451_290_864),
    "Qwen3.5-35B-A3B": (34_660_610_688, 844_640_768, 446_571_248),
    "Qwen3.5-27B": (26_895_998_464, 424_699_392, 460_730_096),
    "Qwen3.5-9B": (8_953_803_264, 243_290_624, 456_010_480),
    "Qwen3.5-4B": (4_205_751_296, 120_599_552, 333_514_240),
    "Qwen3.5-2B": (1_881_825_088, 60_828_160, 331_416_576),
    "Qwen3.5-0.8B": (752_393_024, 20_452_864, 100_592_896),
}


def test_catalog_has_every_model():
    assert set(catalog.names()) == set(PUBLISHED_TOTAL)


@pytest.mark.parametrize("name", sorted(PUBLISHED_TOTAL))
def test_total_equals_published_hf_total(name):
    spec = qwenfit.load(name)
    assert spec.params.total == PUBLISHED_TOTAL[name]
    # the catalog file records the same number it claims to reproduce
    assert catalog.find(name).published_total_params == PUBLISHED_TOTAL[name]


@pytest.mark.parametrize("name", sorted(REFERENCE_SPLIT))
def test_component_split(name):
    p = qwenfit.load(name).params
    assert (p.text, p.mtp, p.vision) == REFERENCE_SPLIT[name]
    assert p.text + p.mtp + p.vision == p.total


def _independent_active(t) -> int:
    """Active params from the closed-form formula (reference §3.4/§7), not from the inventory."""
    h, v = t.hidden_size, t.vocab_size
    nh, kv, hd = t.num_attention_heads, t.num_key_value_heads, t.head_dim
    nk, nv, dk, dv, k = (
        t.linear_num_key_heads,
        t.linear_num_value_heads,
        t.linear_key_head_dim,
        t.linear_value_head_dim,
        t.linear_conv_kernel_dim,
    )
    conv = 2 * nk * dk + nv * dv
    gdn = h * conv + h * nv * dv + 2 * h * nv + conv * k + 2 * nv + dv + nv * dv * h
    attn = 2 * nh * hd * h + 2 * kv * hd * h + nh * hd * h + 2 * hd
    if t.num_experts:
        ffn = (
            3 * t.num_experts_per_tok * h * t.moe_intermediate_size
            + 3 * h * t.shared_expert_intermediate_size
            + t.num_experts * h
            + h
        )
    else:
        ffn = 3 * h * t.intermediate_size
    base = v * h + (0 if t.tie_word_embeddings else v * h) + h
    return (
        base
        + t.n_linear_attention * (gdn + 2 * h)
        + t.n_full_attention * (attn + 2 * h)
        + t.num_hidden_layers * ffn
    )


@pytest.mark.parametrize("name", sorted(PUBLISHED_TOTAL))
def test_active_matches_independent_derivation(name):
    spec = qwenfit.load(name)
    assert spec.params.active == _independent_active(spec.text)


@pytest.mark.parametrize(
    ("name", "active_billions"),
    [("397B-A17B", 17.35), ("122B-A10B", 9.77), ("35B-A3B", 3.45), ("Qwen3-Next-80B-A3B", 3.87)],
)
def test_active_matches_the_name(name, active_billions):
    assert round(qwenfit.load(name).params.active / 1e9, 2) == active_billions


@pytest.mark.parametrize("name", ["0.8B", "9B", "27B"])
def test_dense_active_is_the_text_model(name):
    p = qwenfit.load(name).params
    assert p.active == p.text


def test_by_role_sums_to_total():
    for name in catalog.names():
        p = qwenfit.load(name).params
        assert sum(p.by_role.values()) == p.total
        assert sum(p.by_component.values()) == p.total


def test_stored_bytes_match_published_index_total_size():
    # Qwen3.5-0.8B-Base model.safetensors.index.json: 488 tensors, total_size 1,746,882,752 B
    inv = qwenfit.load("0.8B").inventory
    assert len(inv.hf_tensors()) == 488
    assert inv.stored_bytes == 1_746_882_752


def test_f32_tensors_match_published_dtype_split():
    # Qwen3.5-122B-A10B: BF16 125,086,490,096 + F32 6,912 parameters
    inv = qwenfit.load("122B-A10B").inventory
    f32 = sum(t.n_params for t in inv if t.dtype == "F32")
    bf16 = sum(t.n_params for t in inv if t.dtype == "BF16")
    assert (bf16, f32) == (125_086_490_096, 6_912)


def test_routed_expert_share():
    p = qwenfit.load("397B-A17B").params
    # 60 decoder layers + 1 MTP layer, 512 experts of 3 x 4096 x 1024
    assert p.routed_experts == 61 * 512 * 3 * 4096 * 1024


def test_weights_of_a_catalog_model_are_the_official_bf16_checkpoint():
    w = qwenfit.weights("0.8B")
    assert w.total_bytes == 1_746_882_752  # Qwen3.5-0.8B-Base index total_size
    assert w.by_type()["F32"] == 4 * 18 * (16 + 128)
