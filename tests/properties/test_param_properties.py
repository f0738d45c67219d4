"""Hypothesis properties of parameter counts over random valid Qwen3.5-shaped configs."""

from __future__ import annotations

import copy
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from qwenfit.loaders.config import config_from_spec, spec_from_config

small = st.integers(min_value=1, max_value=6)


@st.composite
def configs(draw) -> dict:
    family = draw(st.sampled_from(["qwen3_5", "qwen3_5_moe", "qwen3_next"]))
    kv = draw(small)
    nk = draw(small)
    n_layers = draw(st.integers(min_value=1, max_value=9))
    interval = draw(st.integers(min_value=1, max_value=min(4, n_layers)))
    text = {
        "hidden_size": 8 * draw(small),
        "num_hidden_layers": n_layers,
        "full_attention_interval": interval,
        "vocab_size": draw(st.integers(min_value=1, max_value=300)),
        "num_attention_heads": kv * draw(small),
        "num_key_value_heads": kv,
        "head_dim": 2 * draw(small),
        "linear_num_key_heads": nk,
        "linear_num_value_heads": nk * draw(small),
        "linear_key_head_dim": draw(small),
        "linear_value_head_dim": draw(small),
        "linear_conv_kernel_dim": draw(small),
        "tie_word_embeddings": draw(st.booleans()),
    }
    if family == "qwen3_5":
        text["intermediate_size"] = draw(small) * 4
    else:
        n_exp = draw(st.integers(min_value=1, max_value=8))
        text.update(
            num_experts=n_exp,
            num_experts_per_tok=draw(st.integers(min_value=1, max_value=n_exp)),
            moe_intermediate_size=draw(small),
            shared_expert_intermediate_size=draw(st.integers(min_value=0, max_value=6)),
        )
    if family == "qwen3_next":
        return {"model_type": "qwen3_next", **text}
    text["model_type"] = "qwen3_5_text" if family == "qwen3_5" else "qwen3_5_moe_text"
    text["mtp_num_hidden_layers"] = draw(st.integers(min_value=0, max_value=2))
    config = {"model_type": family, "text_config": text}
    if draw(st.booleans()):
        heads = draw(small)
        config["vision_config"] = {
            "depth": draw(small),
            "hidden_size": heads * draw(small),
            "intermediate_size": draw(small),
            "num_heads": heads,
            "out_hidden_size": text["hidden_size"],
            "patch_size": draw(small),
            "temporal_patch_size": draw(st.integers(1, 2)),
            "spatial_merge_size": draw(st.integers(1, 2)),
            "num_position_embeddings": draw(small),
        }
    return config


def _text(config: dict) -> dict:
    return config.get("text_config", config)


# (section, key, how to grow it while keeping the config valid)
GROWTHS = [
    (
        "text",
        "hidden_size",
        lambda c, t: (
            t.update(hidden_size=t["hidden_size"] + 8),
            "vision_config" in c and c["vision_config"].update(out_hidden_size=t["hidden_size"]),
        ),
    ),
    ("text", "num_hidden_layers", lambda c, t: t.update(num_hidden_layers=t["num_hidden_layers"] + 1)),
    ("text", "vocab_size", lambda c, t: t.update(vocab_size=t["vocab_size"] + 1)),
    ("text", "head_dim", lambda c, t: t.update(head_dim=t["head_dim"] + 2)),
    (
        "text",
        "num_attention_heads",
        lambda c, t: t.update(num_attention_heads=t["num_attention_heads"] + t["num_key_value_heads"]),
    ),
    (
        "text",
        "num_key_value_heads",
        lambda c, t: t.update(
            num_key_value_heads=2 * t["num_key_value_heads"], num_attention_heads=2 * t["num_attention_heads"]
        ),
    ),
    (
        "text",
        "linear_num_value_heads",
        lambda c, t: t.update(linear_num_value_heads=t["linear_num_value_heads"] + t["linear_num_key_heads"]),
    ),
    ("text", "linear_key_head_dim", lambda c, t: t.update(linear_key_head_dim=t["linear_key_head_dim"] + 1)),
    (
        "text",
        "linear_value_head_dim",
        lambda c, t: t.update(linear_value_head_dim=t["linear_value_head_dim"] + 1),
    ),
    (
        "text",
        "linear_conv_kernel_dim",
        lambda c, t: t.update(linear_conv_kernel_dim=t["linear_conv_kernel_dim"] + 1),
    ),
    (
        "text",
        "intermediate_size",
        lambda c, t: "intermediate_size" in t and t.update(intermediate_size=t["intermediate_size"] + 1),
    ),
    ("text", "num_experts", lambda c, t: "num_experts" in t and t.update(num_experts=t["num_experts"] + 1)),
    (
        "text",
        "moe_intermediate_size",
        lambda c, t: (
            "moe_intermediate_size" in t and t.update(moe_intermediate_size=t["moe_intermediate_size"] + 1)
        ),
    ),
    (
        "text",
        "shared_expert_intermediate_size",
        lambda c, t: (
            "num_experts" in t
            and t.update(shared_expert_intermediate_size=t["shared_expert_intermediate_size"] + 1)
        ),
    ),
    (
        "text",
        "num_experts_per_tok",
        lambda c, t: (
            "num_experts" in t
            and t.update(num_experts=t["num_experts"] + 1, num_experts_per_tok=t["num_experts_per_tok"] + 1)
        ),
    ),
    (
        "vision",
        "depth",
        lambda c, t: (
            "vision_config" in c and c["vision_config"].update(depth=c["vision_config"]["depth"] + 1)
        ),
    ),
    (
        "vision",
        "intermediate_size",
        lambda c, t: (
            "vision_config" in c
            and c["vision_config"].update(intermediate_size=c["vision_config"]["intermediate_size"] + 1)
        ),
    ),
]


@settings(max_examples=300, deadline=None)
@given(configs())
def test_total_at_least_active_and_counts_are_additive(config):
    spec = spec_from_config(config)
    p = spec.params
    assert p.total >= p.active > 0
    assert sum(p.by_role.values()) == p.total == sum(p.by_component.values())
    assert sum(t.n_params for t in spec.inventory) == p.total
    assert p.text + p.mtp + p.vision == p.total
    assert p.active <= p.text
    if not spec.is_moe:
        assert p.active == p.text
    if spec.vision is None:
        assert p.vision == 0
    # the stored safetensors view holds exactly the same parameters
    assert sum(math.prod(s.shape) for s in spec.inventory.hf_tensors()) == p.total


@settings(max_examples=400, deadline=None)
@given(configs(), st.sampled_from(GROWTHS))
def test_counts_are_monotone_in_every_dimension(config, growth):
    grown = copy.deepcopy(config)
    t = _text(grown)
    if "layer_types" in t:
        del t["layer_types"]
    growth[2](grown, t)
    before, after = spec_from_config(config).params, spec_from_config(grown).params
    assert after.total >= before.total
    assert after.active >= before.active


@settings(max_examples=300, deadline=None)
@given(configs())
def test_config_json_round_trip(config):
    spec = spec_from_config(config)
    text = json.dumps(config_from_spec(spec))
    again = spec_from_config(
        json.loads(text), mtp_layers=spec.mtp_layers if spec.family == "qwen3_next" else None
    )
    assert again == spec
    assert again.params == spec.params
