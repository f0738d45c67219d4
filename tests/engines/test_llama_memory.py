"""llama.cpp's runtime memory against llama.cpp itself (tests/fixtures/llama_memory).

Made by scripts/llama_memory_fixtures.py: full-size Qwen3.5 GGUF layouts (sparse files) run through
llama.cpp's own context setup (qwenfit-memprobe, exact bytes of llama_get_memory_breakdown, and the
llama-fit-params log lines) over contexts, KV types, sequences, ubatch sizes, flash attention, the
server's settings and MTP speculation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import qwenfit
from qwenfit.core.engines.llama_cpp.memory import llama_context

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llama_memory"
FILES = sorted(p for p in FIXTURES.glob("*.json") if p.name != "INDEX.json")


def _runs(path: Path):
    fx = json.loads(path.read_text())
    for name, run in fx["runs"].items():
        yield fx, name, {**fx["base"], **run.get("set", {})}, run


def _context(spec, s: dict, main: dict):
    n_seq = main["n_seq_max"]
    return llama_context(
        spec,
        n_ctx=s["c"] or spec.text.max_position_embeddings,
        n_seq=n_seq,
        kv_unified=bool(main["kv_unified"]),
        type_k=s["ctk"],
        type_v=s["ctv"],
        n_ubatch=s["ub"],
        flash_attn=s["fa"] == "on",
        mtp=bool(s["mtp"]),
        draft_tokens=s["draft"] if s["draft"] is not None else 3,
        n_outputs_max=main["n_outputs_max"],
    )


def test_fixtures_present():
    assert len(FILES) >= 5


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_kv_recurrent_output_compute_exact(path):
    spec = qwenfit.load(json.loads(path.read_text())["model"])
    for _fx, name, s, run in _runs(path):
        if run.get("status") == "refused":  # llama.cpp refuses a quantized V cache without flash attention
            with pytest.raises(qwenfit.SettingError, match="needs flash attention"):
                qwenfit.estimate(spec, "BF16", context=4096, kv_cache=s["ctv"], flash_attention=False)
            continue
        main = run["contexts"]["main"]
        ours = _context(spec, s, main)
        assert (ours.n_ctx, ours.n_ctx_seq) == (main["n_ctx"], main["n_ctx_seq"]), name
        kv = main["kv"][0] + main["kv"][1]
        if s["mtp"] and "mtp" in run["contexts"]:
            kv += run["contexts"]["mtp"]["kv"][0] + run["contexts"]["mtp"]["kv"][1]
        assert ours.kv_bytes == kv, name
        assert ours.recurrent_bytes == main["rs"][0] + main["rs"][1], name
        if not s["mtp"]:
            assert ours.output_bytes == main["output"], name
        # the compute buffer to the byte: the closed form (llama-server limits) or the replayed graph
        assert ours.compute_bytes == main["compute"], name
        if s["mtp"] and "mtp" in run["contexts"]:
            assert ours.draft_compute_bytes == run["contexts"]["mtp"]["compute"], name


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_model_buffer_is_the_trunk_tensor_bytes(path):
    fx = json.loads(path.read_text())
    spec = qwenfit.load(fx["model"])
    for variant, quant in (("bf16-mtp", "BF16"), ("q4km-mtp", "Q4_K_M")):
        if variant not in fx["layouts"]:
            continue
        layout = fx["layouts"][variant]
        w = qwenfit.weights(spec, quant)
        trunk = sum(-(-t.bytes // 32) * 32 for t in w.tensors if t.component == "text")
        assert trunk == layout["tensor_bytes_trunk"], variant
        assert sum(t.bytes for t in w.tensors if t.component == "mtp") == layout["tensor_bytes_mtp"], variant
