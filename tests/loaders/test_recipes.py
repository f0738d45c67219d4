"""Quantize like this GGUF: recipes learnt from a file and applied to the same or another size."""

from __future__ import annotations

from builders import gguf_of, tiny_config, write_gguf

import qwenfit
from qwenfit.loaders.config import spec_from_config


def _dynamic_quant(spec):
    """Per-tensor types like a community dynamic quant: experts low, attention high, edges higher."""
    types = {}
    n = spec.text.num_hidden_layers
    for t in spec.inventory:
        if t.gguf_name is None or t.gguf_shape is None or len(t.gguf_shape) < 2 or t.gguf_shape[0] % 32:
            continue
        if "_exps" in t.gguf_name:
            types[t.gguf_name] = "Q4_0" if t.layer in (0, n - 1) else "IQ4_NL"
        elif t.role.startswith(("attn_", "gdn_")):
            types[t.gguf_name] = "Q8_0"
    return types


def test_recipe_reproduces_its_own_file_exactly(tmp_path):
    spec = spec_from_config(tiny_config(moe=True, vision=False))
    arch, meta, tensors = gguf_of(spec, types=_dynamic_quant(spec))
    path = write_gguf(tmp_path / "ud.gguf", arch, meta, tensors, n_vocab_tokens=spec.text.vocab_size)
    w = qwenfit.weights(spec, str(path))
    assert "(exact)" in w.scheme
    assert w.total_bytes == qwenfit.load(path).checkpoint.tensor_bytes
    stored = {t.name: t.dtype for t in qwenfit.load(path).checkpoint.tensors}
    assert {t.gguf_name: t.type for t in w.tensors} == stored


def test_recipe_transfers_by_role_and_depth(tmp_path):
    small = spec_from_config(tiny_config(moe=True, vision=False))
    arch, meta, tensors = gguf_of(small, types=_dynamic_quant(small))
    path = write_gguf(tmp_path / "ud.gguf", arch, meta, tensors, n_vocab_tokens=small.text.vocab_size)
    recipe = qwenfit.recipe_from_gguf(path)
    big_config = tiny_config(moe=True, vision=False)
    big_config["text_config"]["num_hidden_layers"] = 12
    big = spec_from_config(big_config)
    w = qwenfit.weights(big, recipe)
    assert "estimated" in w.scheme
    types = {t.gguf_name: t.type for t in w.tensors}
    assert types["blk.0.ffn_up_exps.weight"] == "Q4_0" and types["blk.11.ffn_up_exps.weight"] == "Q4_0"
    assert types["blk.5.ffn_up_exps.weight"] == "IQ4_NL"
    assert types["blk.4.attn_qkv.weight"] == "Q8_0" and types["blk.5.attn_q.weight"] == "Q8_0"
    assert types["blk.12.ffn_up_exps.weight"] == recipe.types["mtp:expert_up"][0][1]  # the MTP layer
