"""The inventory against real checkpoints written by transformers (scripts/make_tiny_checkpoints.py).

Each fixture folder holds a config.json, the safetensors files transformers saved (with an MTP block
added the way the official checkpoints store it), and expected.json: the tensor list read back from
the files' headers. The inventory derived from config.json alone must name every stored tensor with
its shape and dtype: nothing missing, nothing extra.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import qwenfit
from qwenfit.core.model.inventory import build_inventory
from qwenfit.loaders.config import read_config_file, spec_from_config
from qwenfit.loaders.safetensors import read_checkpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY = FIXTURES / "tiny"
VARIANTS = sorted(p.name for p in TINY.iterdir() if (p / "expected.json").is_file())
LAYOUT = {"fused": "fused", "per-expert": "per_expert"}


def _expected(variant: str) -> dict:
    return json.loads((TINY / variant / "expected.json").read_text())


def test_all_variants_present():
    assert VARIANTS == ["dense-untied-text", "dense-vision-mtp", "moe-sharded", "moe-vision-mtp", "next-mtp"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_config_derived_inventory_names_every_stored_tensor(variant):
    exp = _expected(variant)
    fx = exp["fixture"]
    config = read_config_file(TINY / variant / "config.json")
    mtp = fx["mtp_layers_in_checkpoint"] if not fx["mtp_key_in_config"] else None
    spec = spec_from_config(config, mtp_layers=mtp)
    main = LAYOUT.get(fx.get("experts_layout_main", ""))
    mtp_layout = LAYOUT.get(fx.get("experts_layout_mtp", ""))
    inv = build_inventory(spec, main, mtp_layout) if spec.is_moe else spec.inventory
    ours = {s.name: (list(s.shape), s.dtype) for s in inv.hf_tensors()}
    theirs = {t["name"]: (t["shape"], t["dtype"]) for t in exp["tensors"]}
    assert sorted(set(theirs) - set(ours)) == []  # nothing the files hold is missing from the inventory
    assert sorted(set(ours) - set(theirs)) == []  # nothing extra
    assert ours == theirs  # same shapes and dtypes
    p = spec.params
    assert p.total == exp["total_params"]
    assert (p.text, p.mtp, p.vision) == (exp["params"]["text"], exp["params"]["mtp"], exp["params"]["vision"])
    assert inv.stored_bytes == exp["total_bytes"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_loading_the_folder_reads_headers_and_matches_exactly(variant):
    exp = _expected(variant)
    spec = qwenfit.load(TINY / variant)
    ck = spec.checkpoint
    assert ck is not None and ck.match.exact, ck.match.notes
    assert spec.params.total == exp["total_params"]
    assert ck.tensor_bytes == exp["total_bytes"]
    assert len(ck.tensors) == exp["tensor_count"]
    assert spec.mtp_layers == exp["fixture"]["mtp_layers_in_checkpoint"]
    assert spec.inventory.stored_bytes == ck.tensor_bytes


def test_sharded_checkpoint_index_agrees():
    index = json.loads((TINY / "moe-sharded" / "model.safetensors.index.json").read_text())
    ck = read_checkpoint(TINY / "moe-sharded")
    assert index["metadata"]["total_size"] == ck.tensor_bytes
    assert len(ck.files) == 4


META = json.loads((FIXTURES / "meta_counts.json").read_text())["models"]


@pytest.mark.parametrize("name", sorted(META))
def test_full_size_counts_on_the_meta_device(name):
    """transformers built each full-size config on the meta device; it has no MTP module."""
    rec = META[name]
    spec = qwenfit.load(name)
    assert spec.params.total - spec.params.mtp == rec["params_no_mtp"]
    assert spec.params.vision == rec["params_vision"]
    assert spec.params.mtp == rec["mtp_params_built_from_transformers_decoder_layer"]
    assert spec.text.n_full_attention == rec["n_full_attention_layers"]


@pytest.mark.parametrize("name", sorted(META))
def test_full_size_layer_shapes_match_transformers(name):
    rec = META[name]
    spec = qwenfit.load(name)
    fused = build_inventory(spec, "fused", "fused")
    stored = {s.name: list(s.shape) for s in fused.hf_tensors()}
    gdn = spec.text.layer_types.index("linear_attention")
    attn = spec.text.layer_types.index("full_attention")
    for layer, key in ((gdn, "gdn_layer_tensors"), (attn, "attention_layer_tensors"), (0, "mlp_tensors")):
        for suffix, shape in rec[key].items():
            assert stored[f"{spec.text_prefix}layers.{layer}.{suffix}"] == shape, (name, suffix)


@pytest.mark.parametrize("variant", VARIANTS)
def test_weights_as_stored_sum_to_the_files(variant):
    exp = _expected(variant)
    w = qwenfit.weights(TINY / variant)
    assert w.total_bytes == exp["total_bytes"] == sum(exp["bytes_by_dtype"].values())
    assert w.n_params == exp["total_params"]
    by_type = w.by_type()
    assert by_type == exp["bytes_by_dtype"]
    without = qwenfit.weights(TINY / variant, mtp=False, vision=False)
    assert without.total_bytes == w.total_bytes - w.by_component().get("mtp", 0) - w.by_component().get(
        "vision", 0
    )
