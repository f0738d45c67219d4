"""vLLM's runtime memory (qwenfit.core.engines.vllm.runtime) against vLLM 0.33.0's own code
(tests/fixtures/vllm/runtime_cudagraph_sizes.json, scripts/vllm_runtime_fixtures.py) and against the
published logs (tests/fixtures/field_logs/vllm, scored through qwenfit.estimate by
benchmarks/field/vllm.py)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

import qwenfit
from benchmarks.field import vllm as field
from qwenfit.core.engines.vllm.engine import vllm_version
from qwenfit.core.engines.vllm.pool import KV_CACHE_DTYPES, plan_pool
from qwenfit.core.engines.vllm.runtime import (
    cudagraph_capture_sizes,
    cudagraph_memory_bytes,
    cudagraph_plan,
    encoder_profile_tokens,
    flashinfer_workspace_bytes,
    profile_peak,
    runtime_memory,
)
from qwenfit.core.engines.vllm.weights import mrope_positions_factor, vllm_rank_buffer_bytes
from qwenfit.core.hardware import NVIDIA_DRIVER_RESERVE
from qwenfit.loaders.hardware import device, hardware_catalog

REPO = Path(__file__).resolve().parents[2]
FIXTURE = json.loads((REPO / "tests/fixtures/vllm/runtime_cudagraph_sizes.json").read_text())
GIB = 1 << 30
MIB = 1 << 20


# -- 1. CUDA totals ---------------------------------------------------------------------------------


def test_published_totals():
    """The device total engines budget against: CUDA's, where published (data/hardware.yaml)."""
    assert device("rtx-3090").usable_bytes == round(23.56 * 1024) * MIB  # the brief's 23.56 GiB
    assert device("h100-sxm").usable_bytes == round(79.22 * 1024) * MIB
    published = [d for d in hardware_catalog().values() if d.runtime_total_bytes is not None]
    assert len(published) >= 14
    for d in published:
        src = d.runtime_total_source
        assert "http" in src or "search-index" in src or "as " in src or "unified" in src, d.id


def test_every_catalog_gpu_has_a_total_below_the_driver_total():
    devices = [d for d in hardware_catalog().values() if d.vendor == "nvidia"]
    assert len(devices) > 20
    for d in devices:
        assert 0 < d.usable_bytes <= d.memory_bytes, d.id
        if d.runtime_total_bytes is not None and d.memory_exact and not d.unified:  # smi - 0.25..0.9 GiB
            assert 250 * MIB < d.memory_bytes - d.usable_bytes < 900 * MIB, d.id
        if d.runtime_total_bytes is None and not d.unified:
            assert d.usable_bytes == d.memory_bytes - NVIDIA_DRIVER_RESERVE and "estimated" in d.usable_note


# -- 3. capture sizes and graph descriptors, exact against vLLM's own code --------------------------


@pytest.mark.parametrize("row", FIXTURE["rows"], ids=lambda r: f"seqs{r[0]}-mnbt{r[1]}-k{r[2]}-sm100{r[3]}")
def test_capture_plan_matches_vllm(row):
    seqs, mnbt, k, sm100, sizes, full, pw = row
    assert list(cudagraph_capture_sizes(seqs, mnbt, speculative_tokens=k, sm100=sm100)) == sizes
    spec = _spec("Qwen3.5-9B")
    plan = cudagraph_plan(spec, max_num_seqs=seqs, max_num_batched_tokens=mnbt, speculative_tokens=k,
                          sm100=sm100)  # fmt: skip
    assert list(plan.full_sizes) == full
    assert list(plan.sizes) == pw


def test_capture_plan_matches_the_logs():
    """'Profiling CUDA graph memory: PIECEWISE=a (largest=b), FULL=c (largest=d)' as printed."""
    spec = _spec("Qwen3.5-9B")
    for seqs, mnbt, pw, full in [
        (256, 8192, (51, 512), (35, 256)),  # vllm-qwen35-9b-l40s-llm-v0190
        (128, 2048, (35, 256), (19, 128)),  # vllm-qwen35-4b-asyncengine-v0220
        (4, 2048, (4, 8), (3, 4)),  # vllm-qwen35-0p8b-windows-llm-v0190
        (8, 65536, (5, 16), (4, 8)),  # vllm-qwen36-27b-nvfp4-modelopt-gb10-v0231
    ]:
        plan = cudagraph_plan(spec, max_num_seqs=seqs, max_num_batched_tokens=mnbt)
        assert (len(plan.sizes), plan.sizes[-1]) == pw
        assert (len(plan.full_sizes), plan.full_sizes[-1]) == full


def test_penalty_buffers_match_vllm():
    for seqs, vocab, got in FIXTURE["penalties"]:
        assert 4 * seqs * vocab + 4 * seqs * -(-vocab // 32) == got


def test_cudagraph_estimate_on_the_logs():
    """CUDA-graph memory within 20% of vLLM's own estimate (what it subtracts from the pool; the captured
    figure where no estimate is printed), FlashInfer's workspace included: the GB10 and TP=2 RTX 3090
    records (FLASHINFER) print 0.47-0.61 GiB for 2-9 graphs, which a per-graph cost alone cannot explain."""
    for rid, _n, pred, est, actual in field.graph_rows():
        logged = est if est is not None else actual
        assert logged is not None
        assert abs(pred - logged) <= 0.2 * logged + 0.01, rid


def test_flashinfer_workspace():
    """394 MiB (envs.py:225) before 0.33; 0.33.0 sizes it to the prefill chunk, never below the default
    (flashinfer.py:1261-1277): max(394 MiB, tokens x heads/tp x head_dim x 16)."""
    spec = _spec("Qwen3.6-27B")  # 24 query heads of 256
    assert flashinfer_workspace_bytes(spec, max_num_batched_tokens=65536, sized_by_chunk=False) == 394 * MIB
    assert flashinfer_workspace_bytes(spec, max_num_batched_tokens=2048) == 394 * MIB
    assert flashinfer_workspace_bytes(spec, max_num_batched_tokens=8192, tp=2) == 394 * MIB  # 384 MiB < 394
    assert flashinfer_workspace_bytes(spec, max_num_batched_tokens=8192) == 8192 * 24 * 256 * 16
    plan = cudagraph_plan(spec, max_num_seqs=8, max_num_batched_tokens=65536)
    assert plan.sizes == (1, 2, 4, 8, 16) and plan.full_sizes == (1, 2, 4, 8)  # the GB10 log: PW=5, FULL=4
    base = cudagraph_memory_bytes(spec, plan)
    assert cudagraph_memory_bytes(spec, plan, 394 * MIB) == base + 394 * MIB
    none = cudagraph_plan(spec, max_num_seqs=8, max_num_batched_tokens=65536, mode="NONE")
    assert cudagraph_memory_bytes(spec, none, 394 * MIB) == 0  # eager: allocated after the pool is sized
    rm = runtime_memory(spec, total=24 * GIB, gpu_memory_utilization=0.9, max_num_batched_tokens=8192,
                        max_num_seqs=2, tp=2, attention_backend="FLASHINFER")  # fmt: skip
    fa = runtime_memory(spec, total=24 * GIB, gpu_memory_utilization=0.9, max_num_batched_tokens=8192,
                        max_num_seqs=2, tp=2)  # fmt: skip
    assert rm.cudagraphs - fa.cudagraphs == 394 * MIB


def test_engine_charges_the_workspace_on_flashinfer_only():
    """Through qwenfit.estimate: an RTX 3090 with fp8_e5m2 KV selects FLASHINFER (FA2 has no FP8 KV; the
    club104 log's 0.49 GiB estimate), with auto KV FLASH_ATTN; with MTP before 0.33 vLLM falls back to
    PIECEWISE on FlashInfer (no FULL capture, so no attention metadata and no workspace during profiling)."""
    import qwenfit

    def graphs(**kw):
        e = qwenfit.estimate("Qwen3.6-27B", "autoround", engine="vllm", hardware="2x rtx-3090", tp=2,
                             n_gpus=2, context=262144, max_num_seqs=2, max_num_batched_tokens=8192,
                             **kw)  # fmt: skip
        return next(t.bytes for t in e.terms if t.name == "cuda_graphs")

    fi = graphs(kv_cache="fp8_e5m2", engine_version="0.24.0")
    fa = graphs(kv_cache="auto", engine_version="0.24.0")
    assert fi - fa == 394 * MIB
    mtp_old = graphs(kv_cache="fp8_e5m2", engine_version="0.24.0", mtp=True, speculative_tokens=3)
    mtp_new = graphs(kv_cache="fp8_e5m2", mtp=True, speculative_tokens=3)
    assert mtp_old < 394 * MIB and mtp_new - mtp_old >= 394 * MIB


def test_eager_and_none_mean_no_graphs():
    spec = _spec("Qwen3.5-9B")
    assert cudagraph_plan(spec, max_num_seqs=256, max_num_batched_tokens=8192, mode="NONE").graphs == 0
    rm = runtime_memory(spec, total=40 * GIB, gpu_memory_utilization=0.9, max_num_batched_tokens=8192,
                        max_num_seqs=256, enforce_eager=True)  # fmt: skip
    assert rm.cudagraphs == 0


# -- 2. the profile peak ------------------------------------------------------------------------------


def _spec(name: str):
    return field._spec(name)


def test_profile_peak_parts():
    spec = _spec("Qwen3.5-9B")
    p = profile_peak(spec, max_num_batched_tokens=8192, max_num_seqs=256)
    v = spec.text.vocab_size
    assert p.persistent >= 4 * 256 * v  # output_bin_counts
    assert p.encoder > p.forward > 0  # the vision profile dominates for Qwen3.5 by default
    text = profile_peak(spec, max_num_batched_tokens=8192, max_num_seqs=256, vision=False)
    assert text.encoder == 0 and text.total < p.total
    # the forward grows with max_num_batched_tokens, the sampler with max_num_seqs
    big = profile_peak(spec, max_num_batched_tokens=16384, max_num_seqs=256, vision=False)
    assert big.forward == 2 * text.forward
    more = profile_peak(spec, max_num_batched_tokens=8192, max_num_seqs=1024, vision=False)
    assert more.sampler > text.sampler and more.persistent > text.persistent
    tp2 = profile_peak(spec, max_num_batched_tokens=8192, max_num_seqs=256, vision=False, tp=2)
    assert tp2.forward < text.forward


def test_encoder_budget():
    assert encoder_profile_tokens(2048) == 16384  # "budget of 16384 tokens ... 1 image items"
    assert encoder_profile_tokens(65536) == 65536  # "budget 65536 tokens, 4 image items"
    assert encoder_profile_tokens(2048, max_model_len=4096) == 2048  # "budget of 2048 tokens ... 2 items"


def test_activation_peak_on_the_logs():
    """Torch peak + non-torch increase, where the log gives it: Qwen3.5-4B on an A100 (vLLM's own
    torch_peak_increase 1.70 + non_torch_increase 0.11 GiB, kvcached PR 448) and Qwen3.5-9B on an L40S
    (requested - weights - available = 2.02 GiB)."""
    p4 = profile_peak(_spec("Qwen3.5-4B"), max_num_batched_tokens=2048, max_num_seqs=256)
    assert abs(p4.total / GIB - 1.81) < 0.05
    p9 = profile_peak(_spec("Qwen3.5-9B"), max_num_batched_tokens=8192, max_num_seqs=256)
    requested = -(-device("l40s").usable_bytes * 9 // 10)
    logged = requested / GIB - 17.66 - 20.27
    assert abs(p9.total / GIB - logged) < 0.1


# -- 4. MTP with k > 1 --------------------------------------------------------------------------------


def test_mtp_k():
    spec = _spec("Qwen3.6-27B")
    base = profile_peak(spec, max_num_batched_tokens=8192, max_num_seqs=2)
    mtp3 = profile_peak(spec, max_num_batched_tokens=8192, max_num_seqs=2, speculative_tokens=3)
    v = spec.text.vocab_size
    # grammar bitmask rows x (1+k), draft tokens, the drafter's hidden-state input
    assert mtp3.persistent - base.persistent == 4 * 2 * 3 * -(-v // 32) + 2 * 8 * 3
    assert mtp3.forward - base.forward == 8192 * 2 * spec.text.hidden_size
    # capture sizes: uniform decode batches of 4 tokens per request
    assert cudagraph_capture_sizes(2, 8192, speculative_tokens=3) == (1, 2, 4, 8, 16)
    plan = cudagraph_plan(spec, max_num_seqs=2, max_num_batched_tokens=8192, speculative_tokens=3)
    assert plan.full_sizes == (4, 8) and plan.drafter_graphs == 5 * 2
    # the pool: 2 + k state blocks per request with prefix caching (pool.py)
    p = plan_pool(spec, max_model_len=262144, num_speculative_tokens=3, kv_cache_dtype="fp8_e5m2", tp=2)
    assert p.mamba_blocks_per_request == 5


# -- 5. the field logs ----------------------------------------------------------------------------------


ROWS = [field.score(c) for c in field.CASES]


def test_field_table():
    """Predicted vs logged available KV memory on every record whose GPU and settings are known
    (stated or assumed; GB10 unified memory listed apart). Thresholds are what the rules reach today."""
    scored = [r for r in ROWS if r.case.tier in ("stated", "assumed") and not r.case.refused]
    errs = [abs(r.error) for r in scored]
    assert len(errs) >= 10
    assert statistics.median(errs) <= 0.03  # issue #15's targets: median <= 3 %, max <= 10 %
    assert max(errs) <= 0.10
    # the runtime terms alone (logged weights): within 1% at TP1; the one TP2 record that prints its weights
    # (club751, FP8 on 2x RTX 3090) is -1.6%: the TP>1 imbalance benchmarks/field/vllm.py OPEN describes
    for r in scored:
        if r.runtime_error is not None:
            assert abs(r.runtime_error) <= (0.01 if r.case.tp == 1 else 0.02), r.case.id


def test_end_to_end_concurrency_and_tokens():
    """qwenfit's own pool through vLLM's block arithmetic against the printed 'Maximum concurrency' and 'GPU
    KV cache size': within 1% on every TP1 record but the RTX 5090 NVFP4 35B-A3B pair (benchmarks/field/
    vllm.py OPEN); at TP>1 qwenfit is conservative by 0.9-3.8% (the open TP>1 group: pinned as it stands)."""
    open_ = ("club612", "club652")
    scored = [r for r in ROWS if r.case.tier in ("stated", "assumed") and not r.case.refused]
    tp1 = [
        r
        for r in scored
        if r.case.tp == 1 and not r.case.id.endswith(open_) and r.concurrency_error is not None
    ]
    assert len(tp1) >= 2
    for r in tp1:
        assert abs(r.concurrency_error) <= 0.01, (r.case.id, r.concurrency_error)
    multi = [r for r in scored if r.case.tp > 1 and r.concurrency_error is not None]
    assert len(multi) >= 7
    for r in multi:
        assert -0.04 <= r.concurrency_error < 0, (r.case.id, r.concurrency_error)
        if r.tokens_error is not None:
            assert -0.04 <= r.tokens_error < 0, (r.case.id, r.tokens_error)
    for r in scored:  # the open ones stay within the available-memory target
        assert abs(r.error) <= 0.10, r.case.id


def test_logged_model_loading_matches_the_weights():
    """'Model loading took' (torch's allocated bytes after load, platforms/cuda.py:369-374) against qwenfit's
    weights plus buffers on every record that prints it, with the version's MRoPE cache (4 x positions
    before 0.32), on every record whose version is known: within 0.03 GiB (5 of 6 within 0.01)."""
    printed = [r for r in ROWS if r.case.weights is not None and r.case.id in field.VERSION]
    assert len(printed) >= 6
    gaps = [abs(r.case.weights - r.weights) for r in printed]
    assert max(gaps) <= 0.03, [(r.case.id, round(r.case.weights - r.weights, 3)) for r in printed]
    assert sum(g <= 0.01 for g in gaps) >= 5


def test_mrope_cache_length_by_version():
    """Qwen3.5's MRoPE cache: 4 x max_position_embeddings before vLLM 0.32 (mrope.py:238), 1 x from 0.32
    unless video pruning (qwen3_vl.py:1818-1825); Qwen3-Next's RoPE 1 x."""
    spec = qwenfit.load("Qwen3.5-9B")
    assert mrope_positions_factor(spec, (0, 24)) == 4
    assert mrope_positions_factor(spec, (0, 31)) == 4
    assert mrope_positions_factor(spec, (0, 32)) == 1 and mrope_positions_factor(spec, None) == 1
    assert mrope_positions_factor(spec, None, video_pruning=True) == 4
    assert mrope_positions_factor(qwenfit.load("Qwen3-Next-80B-A3B"), (0, 10)) == 1
    extra = vllm_rank_buffer_bytes(spec, rope_positions_factor=4) - vllm_rank_buffer_bytes(spec)
    assert extra == 3 * spec.text.max_position_embeddings * 64 * 2 == 96 * 2**20
    old = qwenfit.estimate("Qwen3.5-9B", "bf16", engine="vllm", hardware="l40s", engine_version="0.24.0")
    new = qwenfit.estimate("Qwen3.5-9B", "bf16", engine="vllm", hardware="l40s")
    w = {e: next(t.bytes for t in x.terms if t.name == "weights") for e, x in (("old", old), ("new", new))}
    assert w["old"] - w["new"] == 96 * 2**20


def test_started_configurations_are_not_refused():
    for r in ROWS:
        if r.case.refused or r.case.tier == "uma":
            continue
        assert r.predicted > 0, r.case.id
        if r.concurrency is not None:
            assert r.concurrency >= 1.0, r.case.id


def test_concurrency_where_printed():
    """'Maximum concurrency' from the logged 'Available KV cache memory' through pool.py (Triton/FLA GDN
    prefill, as these logs print; MTP k as in the case): within 0.5% on every record that prints both,
    including MTP k=3 (club642, clubpr594) and k=0 (club104, whose 2.36x rules out k=3: 2.12x)."""
    n = 0
    for c in field.CASES:
        if c.avail is None or c.concurrency is None or c.kv not in KV_CACHE_DTYPES:
            continue
        spec = _spec(c.model)
        plan = plan_pool(spec, tp=c.tp, max_model_len=c.max_len, kv_cache_dtype=c.kv, prefix_caching=c.prefix,
                         num_speculative_tokens=c.k)  # fmt: skip
        got = plan.max_concurrency(round(c.avail * GIB))
        assert abs(got / c.concurrency - 1) < 0.005, c.id
        n += 1
    assert n >= 10


def test_refusal_of_the_long_text_compose():
    """club35's refusal, reproduced by pool.py with the compose's own settings (turboquant_3bit_nc KV,
    prefix caching, MTP k=3, max_model_len 180000; its block is 4128 tokens): "3.05 GiB KV cache is needed"
    and, for an available 2.17 GiB, "the estimated maximum model length is 111456" (27 blocks). fp8_e5m2
    would need 6.64 GiB, prefix caching off 2.9 GiB."""
    spec = _spec("Qwen3.6-27B")
    plan = plan_pool(spec, tp=1, max_model_len=180000, kv_cache_dtype="turboquant_3bit_nc",
                     prefix_caching=True, num_speculative_tokens=3)  # fmt: skip
    msg = plan.cannot_serve_message(round(2.175 * GIB) + plan.bytes_per_block, 180000)
    assert msg is not None
    assert "(3.05 GiB KV cache is needed" in msg and "memory (2.17 GiB)" in msg and "length is 111456." in msg
    case = next(c for c in field.CASES if c.id.endswith("club35"))
    assert (case.kv, case.mnbt, case.k, case.refused) == ("turboquant_3bit_nc", 4128, 3, True)


def test_token_capacity_where_printed():
    """'GPU KV cache size: N tokens' is int(max concurrency x max_model_len) (v1/core/kv_cache_utils.py:1120-
    1128): from the logged 'Available KV cache memory' through pool.py, equal on every record of vLLM >= 0.21
    that prints both (within 0.25% where the logged GiB figure's rounding shows). Older versions printed a
    per-group block count instead (not modelled)."""
    import re

    n = 0
    for c in field.CASES:
        path = REPO / "tests/fixtures/field_logs/vllm" / f"{c.id}.yaml"
        m = re.search(r"KV cache size: ([0-9,]+) tokens", path.read_text())
        version = vllm_version(field.VERSION.get(c.id))
        if c.avail is None or m is None or c.refused or version is None or version < (0, 21):
            continue
        logged = int(m.group(1).replace(",", ""))
        plan = plan_pool(_spec(c.model), tp=c.tp, max_model_len=c.max_len, kv_cache_dtype=c.kv,
                         prefix_caching=c.prefix, num_speculative_tokens=c.k)  # fmt: skip
        got = int(plan.max_concurrency(round(c.avail * GIB)) * c.max_len)
        assert abs(got / logged - 1) < 0.0025, (c.id, got, logged)
        n += 1
    assert n >= 7
