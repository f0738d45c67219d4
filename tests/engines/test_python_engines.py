"""SGLang, mlx-lm and transformers terms against what the engines do (tests/fixtures/python_engines,
written by scripts/python_engine_fixtures.py), and the traced formulas against the integer ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from builders import engine_terms

import qwenfit
from qwenfit.core.engines.sglang import (
    SglangOptions,
    sglang_kv_cell_bytes,
    sglang_mem_fraction_static,
    sglang_pools,
    sglang_server_defaults,
    sglang_state_bytes_per_request,
    sglang_state_slots_per_request,
)
from qwenfit.core.expr import Var, evaluate
from qwenfit.core.formats.gpu import gpu_weights

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "python_engines"
TINY = Path(__file__).resolve().parents[1] / "fixtures" / "tiny"
GIB = 1 << 30
MIB = 1 << 20


def _load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


TRANSFORMERS = _load("transformers")
SGLANG = _load("sglang")
MLX = _load("mlx")


# ------------------------------------------------------------------------------------------------
# transformers: measured cache tensors and loaded parameters


@pytest.mark.parametrize("variant", sorted(TRANSFORMERS["variants"]))
def test_transformers_cache_matches_the_measured_cache_object(variant):
    measured = TRANSFORMERS["variants"][variant]
    spec = qwenfit.load(TINY / variant)
    t = spec.text
    for run in measured["forward"]:
        e = qwenfit.estimate(spec, engine="transformers", context=run["tokens"], sequences=run["batch"])
        assert e.term("kv_cache") == run["kv_bytes"]
        assert e.term("recurrent_state") == run["conv_bytes"] + run["recurrent_bytes"]
        assert run["other_bytes"] == 0
        for layer in run["layers"]:
            tensors = layer["tensors"]
            if t.layer_types[layer["layer"]] == "full_attention":
                assert set(tensors) == {"keys", "values"}
                assert tensors["keys"]["dtype"] == "bfloat16"
            else:  # no KV in Gated DeltaNet layers; conv window K (not K-1), recurrent state float32
                assert set(tensors) == {"conv_states[0]", "recurrent_states[0]"}
                conv, rec = tensors["conv_states[0]"], tensors["recurrent_states[0]"]
                assert conv["shape"] == [run["batch"], t.linear_conv_dim, t.linear_conv_kernel_dim]
                assert conv["dtype"] == "bfloat16"
                heads = [t.linear_num_value_heads, t.linear_key_head_dim, t.linear_value_head_dim]
                assert rec["shape"] == [run["batch"], *heads]
                assert rec["dtype"] == "float32"
    gen = measured["generate"]  # generate(): the cache holds prompt + new tokens - 1
    assert gen["kv_tokens"] == gen["prompt_tokens"] + gen["new_tokens"] - 1
    e = qwenfit.estimate(spec, engine="transformers", context=gen["kv_tokens"], sequences=gen["batch"])
    assert e.term("kv_cache") == gen["kv_bytes"]


@pytest.mark.parametrize("variant", sorted(TRANSFORMERS["variants"]))
def test_transformers_weights_are_the_loaded_parameters(variant):
    measured = TRANSFORMERS["variants"][variant]
    assert measured["param_dtypes"] == ["bfloat16"]  # float32 A_log / norm weights are cast on load
    e = qwenfit.estimate(TINY / variant, "bf16", engine="transformers", context=16)
    assert e.term("weights") == measured["param_bytes"] + measured["buffer_bytes"]


# ------------------------------------------------------------------------------------------------
# SGLang: its own resolution and pool sizing over a grid


def _grid_rows() -> list[Any]:
    return [r for r in SGLANG["rows"] if "kv_cache_dtype" not in r]


def _row_id(r: Any) -> str:
    return f"{r['model']}-{r['gpu_bytes'] // 10**9}GB-tp{r['tp']}" + ("" if r["radix_cache"] else "-noradix")


def test_sglang_fixture_covers_the_grid():
    rows = _grid_rows()
    assert SGLANG["sglang_version"] == "0.5.23"
    models = {"Qwen3.5-9B", "Qwen3.5-27B", "Qwen3.5-35B-A3B", "Qwen3.5-122B-A10B", "Qwen3.5-397B-A17B"}
    assert {r["model"] for r in rows} == models
    assert {r["tp"] for r in rows} == {1, 2, 4, 8}
    assert {r["gpu_bytes"] // 10**9 for r in rows} == {24, 48, 80, 141, 192}
    assert len(rows) == 150
    assert not [r for r in rows if "resolve_error" in r]


@pytest.mark.parametrize("row", _grid_rows(), ids=_row_id)
def test_sglang_reproduces_sglang(row):
    spec = qwenfit.load(row["model"])
    tp, memory = row["tp"], row["gpu_bytes"]
    # server arguments (arg_groups/memory_hook.py)
    assert sglang_server_defaults(memory, tp) == (
        row["chunked_prefill_size"],
        row["decode_cuda_graph_max_bs"],
    )
    assert row["prefill_cuda_graph_backend"] == "disabled"
    assert row["is_multimodal"] and row["page_size"] == 1
    if row["radix_cache"]:
        assert row["mamba_radix_cache_strategy"] == "extra_buffer" and not row["disable_overlap_schedule"]
    num, den = sglang_mem_fraction_static(spec, memory, tp)
    assert num / den == pytest.approx(row["mem_fraction_static"], rel=1e-14, abs=0)
    # state and KV sizes per rank
    assert sglang_state_bytes_per_request(spec, tp) == row["mamba_cache_per_req"]
    assert sglang_kv_cell_bytes(spec, tp, None) == row["kv_cell_bytes"]
    assert sglang_state_slots_per_request(row["radix_cache"]) == row["mamba_ratio"]
    assert row["mamba_full_memory_ratio"] == 0.9
    assert (row["conv_dtype"], row["temporal_dtype"]) == ("bfloat16", "float32")
    # the rest SGLang computed = free before load x mem_fraction_static - weights - 100 MiB
    pre = round(row["pre_model_load_gib"] * GIB)
    rest = pre * num // den - row["weights_bytes"] - 100 * MIB
    assert rest == pytest.approx(row["rest_gib"] * GIB, abs=4096)
    if "error" in row:  # SGLang refuses to start: no state slot fits
        assert 9 * rest // (19 * row["mamba_cache_per_req"]) - 1 <= 0
        return
    o = SglangOptions(tp=tp, prefix_caching=row["radix_cache"])
    got = sglang_pools(spec, o, None, int(row["rest_gib"] * GIB), row["context_len"])
    assert got == (row["max_mamba_cache_size"], row["max_total_num_tokens"], row["max_running_requests"])


def _fit_rows() -> list[Any]:
    return [r for r in _grid_rows() if "error" not in r][::12]


@pytest.mark.parametrize("row", _fit_rows(), ids=_row_id)
def test_sglang_terms_fit_when_sglang_serves_the_requests(row):
    """estimate(...).fits agrees with SGLang's pools (tokens >= n*ctx and max_running >= n) on either
    side of the boundary, away from the documented < 1.9 state-slot rounding margin."""
    spec = qwenfit.load(row["model"])
    tokens, running = row["max_total_num_tokens"], row["max_running_requests"]
    checked = 0
    for n in sorted({1, max(1, running // 2), running, running + 1}):
        for ctx in (4096, tokens // n, tokens // n + 1):
            if n > 4096 or not 1 <= ctx <= 262144:
                continue
            e = qwenfit.estimate(
                spec, "bf16", engine="sglang", context=ctx, sequences=n, tp=row["tp"],
                vram_gb=row["gpu_bytes"] / 1e9, vision=True, prefix_caching=row["radix_cache"],
            )  # fmt: skip
            serves = tokens >= n * ctx and running >= n
            if abs(e.budget["gpu"] - e.by_device["gpu"]) < 2 * row["mamba_cache_per_req"]:
                continue
            assert e.fits == serves, (n, ctx)
            checked += 1
    assert checked


def test_sglang_kv_dtypes():
    rows = [r for r in SGLANG["rows"] if "kv_cache_dtype" in r]
    spec = qwenfit.load("Qwen3.5-35B-A3B")
    assert {r["kv_cache_dtype"] for r in rows} == {"fp8_e4m3", "fp8_e5m2"}
    for row in rows:
        assert sglang_kv_cell_bytes(spec, 1, row["kv_cache_dtype"]) == row["kv_cell_bytes"]
        rest = int(row["rest_gib"] * GIB)
        got = sglang_pools(spec, SglangOptions(), row["kv_cache_dtype"], rest, row["context_len"])
        assert got == (row["max_mamba_cache_size"], row["max_total_num_tokens"], row["max_running_requests"])


def test_sglang_refusals_are_does_not_fit():
    """Where SGLang refuses to start, qwenfit says even one short request does not fit."""
    failing = [r for r in _grid_rows() if "error" in r]
    assert failing
    for row in failing[:: max(1, len(failing) // 6)]:
        e = qwenfit.estimate(
            row["model"], "bf16", engine="sglang", context=4096, tp=row["tp"], vram_gb=row["gpu_bytes"] / 1e9,
            vision=True, prefix_caching=row["radix_cache"],
        )  # fmt: skip
        assert not e.fits, _row_id(row)


# ------------------------------------------------------------------------------------------------
# mlx-lm: transcribed rules


def test_mlx_rules_are_the_ones_qwenfit_uses():
    r = MLX["rules"]
    assert MLX["mlx_lm_version"] == "0.32.2"
    assert r["kv_step"]["value"] == r["quantized_kv_step"]["value"] == 256
    assert r["kv_group_size"]["value"] == 64
    assert r["quantized_kv_start"]["value"] == 5000
    assert r["prefill_step_size"]["value"] == 2048
    assert "float32" in r["ssm_state"]["line"] and "conv_kernel_size - 1" in r["conv_state_shape"]["line"]
    for rule in r.values():
        assert rule["source"].startswith("mlx_lm/") and rule["line"]


def test_mlx_terms_follow_the_rules():
    spec = qwenfit.load("35B-A3B")
    t = spec.text
    w = gpu_weights(spec, "mlx-4bit")
    width = t.num_key_value_heads * t.head_dim
    terms = engine_terms("mlx", spec, w, context=1000, sequences=2)
    assert terms[1].bytes == 2 * 1024 * t.n_full_attention * 2 * width * 2  # 1000 -> 4 steps of 256
    assert terms[2].bytes == 2 * t.n_linear_attention * (3 * t.linear_conv_dim * 2 + 32 * 128 * 128 * 4)
    q4 = t.n_full_attention * 2 * (width // 2 + width // 64 * 4)
    assert engine_terms("mlx", spec, w, context=5000, kv_cache="4")[1].bytes == 5120 * q4
    bf16 = t.n_full_attention * 4 * width
    assert engine_terms("mlx", spec, w, context=4999, kv_cache="4")[1].bytes == 5120 * bf16


# ------------------------------------------------------------------------------------------------
# traced formulas equal the integer ones

_TRACE_SETTINGS: dict[str, list[dict[str, Any]]] = {
    "sglang": [
        {"tp": 1, "gpu_memory_bytes": 80 * 10**9},
        {"tp": 8, "gpu_memory_bytes": 24 * 10**9, "prefix_caching": False},
        {"tp": 2, "kv_cache": "fp8_e4m3"},
    ],
    "mlx": [{}, {"kv_cache": "4"}, {"kv_cache": "8"}],
    "transformers": [{}, {"vision": True}],
}


@pytest.mark.parametrize("engine", ["sglang", "mlx", "transformers"])
@pytest.mark.parametrize("model", ["9B", "35B-A3B", "397B-A17B"])
def test_traced_terms_equal_integer_terms(engine, model):
    spec = qwenfit.load(model)
    w = gpu_weights(spec, "mlx-4bit" if engine == "mlx" else "bf16")
    for kw in _TRACE_SETTINGS[engine]:
        traced = engine_terms(engine, spec, w, context=Var("ctx"), sequences=Var("seqs"), **kw)
        for ctx in (1, 255, 256, 257, 2048, 4999, 5000, 32768, 262144):
            for seqs in (1, 3, 64):
                plain = engine_terms(engine, spec, w, context=ctx, sequences=seqs, **kw)
                assert [t.name for t in traced] == [t.name for t in plain]
                for a, b in zip(traced, plain, strict=True):
                    assert evaluate(a.bytes, {"ctx": ctx, "seqs": seqs}) == b.bytes, (a.name, ctx, seqs, kw)


def test_sglang_35b_a3b_at_32k():
    """5 state slots per running request + 1 padding slot; KV for the full-attention layers only."""
    e = qwenfit.estimate("35B-A3B", engine="sglang", context=32768, sequences=8, vram_gb=80)
    per_req = 30 * (3 * 8192 * 2 + 32 * 128 * 128 * 4)
    assert e.term("recurrent_state") == (5 * 8 + 1) * per_req
    assert e.term("kv_cache") == 32768 * 8 * 10 * 2 * 2 * 256 * 2
    rest = max(-(-e.term("kv_cache") * 19 // 10), -(-e.term("recurrent_state") * 19 // 9))
    assert e.term("kv_cache") + e.term("recurrent_state") + e.term("pool_split") == rest


def test_sglang_traces_in_device_memory_too():
    spec = qwenfit.load("35B-A3B")
    w = gpu_weights(spec, "bf16")
    traced = engine_terms(
        "sglang", spec, w, context=Var("ctx"), sequences=Var("seqs"), gpu_memory_bytes=Var("gpu")
    )
    for gb in (16, 24, 32, 48, 80, 141, 192):
        plain = engine_terms("sglang", spec, w, context=8192, sequences=4, gpu_memory_bytes=gb * 10**9)
        env = {"ctx": 8192, "seqs": 4, "gpu": gb * 10**9}
        assert [evaluate(t.bytes, env) for t in traced] == [t.bytes for t in plain]
