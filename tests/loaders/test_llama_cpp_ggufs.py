"""GGUFs written by llama.cpp's own convert_hf_to_gguf.py and llama-quantize (tests/fixtures/gguf,
made from the tiny transformers checkpoints by scripts/make_tiny_ggufs.py). Reading them must give
back the parameter count and the tensor bytes exactly, and header + tensor data + padding = file size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import qwenfit
from qwenfit.core.model.inventory import build_inventory
from qwenfit.errors import UnsupportedModelError
from qwenfit.loaders.gguf import read_gguf

GGUF = Path(__file__).resolve().parents[1] / "fixtures" / "gguf"
TINY = GGUF.parent / "tiny"
MANIFEST = json.loads((GGUF / "MANIFEST.json").read_text())["files"]
TEXT = sorted(n for n in MANIFEST if not n.startswith(("mmproj-", "split/")))
MMPROJ = sorted(n for n in MANIFEST if n.startswith("mmproj-"))


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_reader_agrees_with_the_manifest(name):
    entry = MANIFEST[name]
    g = read_gguf(GGUF / name)
    assert g.data_offset == entry["data_offset"] and g.file_size == entry["file_size"]
    assert g.tensor_bytes == entry["tensor_bytes"]
    assert [(t.name, t.ggml_type.lower(), list(t.shape), t.nbytes, t.offset) for t in g.tensors] == [
        (n, ty.lower(), ne, nb, off) for n, ty, ne, nb, off in entry["tensors"]
    ]
    assert g.data_offset + g.tensor_bytes + g.padding_bytes == g.file_size
    assert g.metadata.get("general.file_type") == entry["file_type"]  # split parts 2.. carry no metadata


@pytest.mark.parametrize("name", TEXT)
def test_text_gguf_round_trip(name):
    entry = MANIFEST[name]
    variant = name.removesuffix(".gguf").removesuffix("-Q8_0")
    spec = qwenfit.load(GGUF / name)
    ck = spec.checkpoint
    assert ck.match.exact, ck.match.notes
    assert ck.tensor_bytes == entry["tensor_bytes"]
    assert sum(t.stored_bytes for t in spec.inventory) == entry["tensor_bytes"]
    # same parameters as the transformers checkpoint it was converted from, less the vision tower
    source = qwenfit.load(TINY / variant)
    expected = json.loads((TINY / variant / "expected.json").read_text())["params"]
    assert spec.params.total == expected["text"] + expected["mtp"]
    assert spec.params.active == source.params.active
    assert spec.params.mtp == source.params.mtp


def test_split_gguf_written_by_gguf_split():
    spec = qwenfit.load(GGUF / "split" / "moe-sharded-Q8_0-00001-of-00003.gguf")
    whole = qwenfit.load(GGUF / "moe-sharded-Q8_0.gguf")
    assert len(spec.checkpoint.files) == 3 and spec.checkpoint.match.exact
    assert spec.checkpoint.tensor_bytes == whole.checkpoint.tensor_bytes
    assert spec.params == whole.params


def test_quantized_gguf_reproduced_by_the_rules():
    """The real llama-quantize Q8_0 files carry exactly the types qwenfit's rules give."""
    for variant in ("dense-vision-mtp", "moe-vision-mtp", "next-mtp", "dense-untied-text", "moe-sharded"):
        stored = {t.name: t.dtype for t in qwenfit.load(GGUF / f"{variant}-Q8_0.gguf").checkpoint.tensors}
        source = qwenfit.load(GGUF / f"{variant}.gguf")
        mtp = source.mtp_layers > 0
        w = qwenfit.weights(source, "Q8_0", mtp=mtp)
        assert {t.gguf_name: t.type for t in w.tensors} == stored, variant


@pytest.mark.parametrize("name", MMPROJ)
def test_mmproj_is_recognised(name):
    g = read_gguf(GGUF / name)
    assert g.architecture == "clip"
    with pytest.raises(UnsupportedModelError, match="vision projector"):
        qwenfit.load(GGUF / name)


def test_moe_sharded_layout_detected_from_the_safetensors():
    spec = qwenfit.load(TINY / "moe-sharded")
    assert (spec.expert_layout, spec.mtp_expert_layout) == ("fused", "fused")
    inv = build_inventory(spec)
    assert len(inv.hf_tensors()) == len(spec.checkpoint.tensors)


@pytest.mark.parametrize("name", MMPROJ)
def test_mmproj_tensors_from_the_inventory(name):
    """Names, types and bytes of llama.cpp's mmproj (--mmproj --outtype bf16) from the inventory."""
    from qwenfit.core.formats.weights import mmproj_weights

    variant = name.removeprefix("mmproj-").removesuffix(".gguf")
    ours = {e.gguf_name: (e.type, e.bytes) for e in mmproj_weights(qwenfit.load(TINY / variant), "BF16")}
    theirs = {n: (t.upper(), nb) for n, t, ne, nb, off in MANIFEST[name]["tensors"]}
    assert ours == theirs
