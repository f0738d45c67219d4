"""qwenfit's llama.cpp type rules against llama-quantize --dry-run itself.

Fixtures: tests/fixtures/llama_quantize/*.json, made by scripts/llama_quantize_fixtures.py with the
llama.cpp build of scripts/build_llama_cpp.sh (commit 0c1e57098bba). Each holds the source GGUF's
tensor list (as llama.cpp's converter wrote it, full-size layouts included) and, for every file
type and option set, the type llama-quantize gave every tensor and the total bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import qwenfit
from qwenfit.core.formats.gguf import GGUFSource, LlamaQuantOptions, choose_types, converter_sources

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llama_quantize"
FILES = sorted(p for p in FIXTURES.glob("*.json") if p.name != "INDEX.json")
CATALOG = {"Qwen3.5-35B-A3B--no-mtp": ("Qwen3.5-35B-A3B", False)}


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _options(run_name: str) -> tuple[str, LlamaQuantOptions]:
    ftype, *extras = run_name.split("+")
    kw: dict = {}
    for extra in extras:
        if extra == "imatrix":
            kw["imatrix"] = True
        elif extra == "pure":
            kw["pure"] = True
        elif extra == "leave-output-tensor":
            kw["leave_output_tensor"] = True
        elif extra.startswith("output-tensor-type="):
            kw["output_tensor_type"] = extra.split("=", 1)[1].upper()
        elif extra.startswith("token-embedding-type="):
            kw["token_embedding_type"] = extra.split("=", 1)[1].upper()
        elif extra.startswith("tensor-type="):
            pattern, kind = extra.split("=", 1)[1].rsplit("=", 1)
            kw["tensor_types"] = ((pattern, kind.upper()),)
        else:
            raise AssertionError(f"unknown run option {extra}")
    return ftype, LlamaQuantOptions(**kw)


def _hparams(fx: dict) -> dict:
    kv = fx["source_gguf"]["kv"]
    arch = kv["general.architecture"]
    return {
        "n_head": kv[f"{arch}.attention.head_count"],
        "n_head_kv": kv[f"{arch}.attention.head_count_kv"],
        "n_expert": kv.get(f"{arch}.expert_count", 0),
        "n_layer_all": kv[f"{arch}.block_count"],
    }


def test_fixtures_present():
    assert len(FILES) >= 15


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_file_type_tensor_by_tensor(path):
    fx = _load(path)
    names = fx["type_names"]
    sources = [GGUFSource(n, tuple(ne), t.upper()) for n, t, ne in fx["source_gguf"]["tensors"]]
    checked = 0
    for run_name, run in fx["runs"].items():
        ftype, opts = _options(run_name)
        if run["status"] != "ok":
            with pytest.raises(ValueError):
                choose_types(sources, ftype, options=opts, **_hparams(fx))
            continue
        ours = choose_types(sources, ftype, options=opts, **_hparams(fx))
        by_name = {q.name: q for q in ours}
        theirs = [names[i].upper() for i in run["types"]]
        mismatched = [(s.name, by_name[s.name].type, want) for s, want in zip(sources, theirs, strict=True)
                      if by_name[s.name].type != want]  # fmt: skip
        assert not mismatched, (run_name, mismatched[:5], len(mismatched))
        assert sum(q.bytes for q in ours) == run["total_bytes"], run_name
        assert [q.name for q in ours] == [s.name for s in sources]  # llama.cpp's visiting order
        # llama-quantize warns that a real run would need an imatrix only when none is given
        needs = any(q.requires_imatrix for q in ours) and not opts.imatrix
        assert needs == run["requires_imatrix"], run_name
        checked += 1
    assert checked >= 30


FULL_SIZE = [p for p in FILES if not p.stem.startswith(("tiny-", "kquant-"))]


@pytest.mark.parametrize("path", FULL_SIZE, ids=lambda p: p.stem)
def test_inventory_gives_the_converters_tensor_list(path):
    """The catalog spec's GGUF names, ggml shapes and converter dtypes = what llama.cpp's converter wrote."""
    fx = _load(path)
    model, mtp = CATALOG.get(path.stem, (path.stem, True))
    spec = qwenfit.load(model)
    tensors = [(t.gguf_name, t.gguf_shape) for t in spec.inventory
               if t.gguf_name and (mtp or t.component != "mtp") and t.component != "vision"]  # fmt: skip
    ours = {s.name: (s.type, list(s.ne)) for s in converter_sources(tensors)}
    theirs = {n: (t.upper(), ne) for n, t, ne in fx["source_gguf"]["tensors"]}
    assert ours == theirs


@pytest.mark.parametrize("path", FULL_SIZE, ids=lambda p: p.stem)
def test_weights_api_matches_llama_quantize_totals(path):
    fx = _load(path)
    model, mtp = CATALOG.get(path.stem, (path.stem, True))
    for ftype in ("Q4_K_M", "IQ2_XXS", "Q8_0", "MXFP4_MOE", "Q3_K_M", "IQ4_XS"):
        w = qwenfit.weights(model, ftype, mtp=mtp)
        assert w.total_bytes == fx["runs"][ftype]["total_bytes"], ftype
