"""qwenfit's vLLM pool arithmetic against vLLM 0.33.0's own functions (tests/fixtures/vllm)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import qwenfit
from qwenfit.core.engines.vllm.pool import batch_defaults, check_tp, plan_pool, small_batch_device

FIXTURE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "vllm" / "qwen35_kv_pool.json").read_text()
)
COLUMNS = FIXTURE["columns"]
ROWS = [dict(zip(COLUMNS, row, strict=True)) for row in FIXTURE["rows"]]


def test_fixture_is_complete():
    assert FIXTURE["vllm_version"] == "0.33.0" and len(ROWS) == 528


@pytest.mark.parametrize("model", sorted({r["model"] for r in ROWS}))
def test_every_row(model):
    spec = qwenfit.load(model)
    for r in (r for r in ROWS if r["model"] == model):
        plan = plan_pool(
            spec,
            tp=r["tp"],
            max_model_len=FIXTURE["max_model_len"],
            kv_cache_dtype=r["kv_cache_dtype"],
            prefix_caching=r["prefix_caching"],
            num_speculative_tokens=r["num_spec"],
            flashinfer_gdn_prefill=r["gdn_prefill"] == "flashinfer",
        )
        key = (r["tp"], r["kv_cache_dtype"], r["prefix_caching"], r["num_spec"], r["gdn_prefill"])
        assert plan.mamba_page == r["mamba_page"], key
        assert plan.block_size == r["block_size"], key
        assert plan.page_bytes == r["page"], key
        assert plan.padding_pct == pytest.approx(r["padding_pct"], abs=1e-6), key
        if r["log_padding"] is not None:  # vLLM logs the padding only when there is some
            assert f"{plan.padding_pct:.2f}%" == r["log_padding"], key
        assert list(plan.attn_groups) == r["attn_groups"] and list(plan.mamba_groups) == r["mamba_groups"], (
            key
        )
        assert plan.bytes_per_block == r["bytes_per_block"], key
        assert plan.blocks_per_request() == r["blocks_per_req"], key
        assert plan.pool_bytes(1) == r["min_pool_one_req"], key
        pool = 40 * (1 << 30)
        assert pool // plan.bytes_per_block == r["num_blocks_40g"], key
        assert plan.max_concurrency(pool) == pytest.approx(r["concurrency_40g"], rel=1e-12), key
        below = r["min_pool_one_req"] - 1
        assert plan.estimate_max_model_len(below, FIXTURE["max_model_len"]) == r["est_max_len_below_min"], key
        assert plan.cannot_serve_message(r["min_pool_one_req"], FIXTURE["max_model_len"]) is None, key
        assert "To serve at least one request" in plan.cannot_serve_message(below, FIXTURE["max_model_len"])


def test_real_vllm_log_9b_tp2():
    """ "Setting attention block size to 528 tokens ... Padding mamba page size by 0.76%" (vLLM PR #37467)."""
    plan = plan_pool(qwenfit.load("9B"), tp=2, max_model_len=262144, prefix_caching=False)
    assert (plan.block_size, f"{plan.padding_pct:.2f}") == (528, "0.76")
    plan35 = plan_pool(qwenfit.load("35B-A3B"), tp=1, max_model_len=262144, prefix_caching=False)
    assert (plan35.block_size, f"{plan35.padding_pct:.2f}") == (1056, "0.76")


def test_tp_rejected_like_vllm():
    with pytest.raises(ValueError, match="divisible by tp=3"):
        check_tp(qwenfit.load("35B-A3B"), 3)


def test_batch_defaults():
    assert batch_defaults(24 * 2**30) == (256, 2048)
    assert batch_defaults(80 * 2**30, small_batch_device("NVIDIA H100 80GB HBM3")) == (1024, 8192)
    assert batch_defaults(80 * 2**30, small_batch_device("NVIDIA A100-SXM4-80GB")) == (256, 2048)
    assert batch_defaults(180 * 2**30, small_batch_device("NVIDIA B200")) == (1024, 16384)
