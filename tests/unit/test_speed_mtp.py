"""MTP verify attention at depth: where vLLM runs it through FlashAttention 2 without packing the
query heads or splitting the cached tokens (qwenfit.core.engines.vllm.verify), the cycle pays one SM per
head over the whole depth; FlashInfer and FA3 keep the packed, split cost."""

from __future__ import annotations

import pytest

from qwenfit.api.resolve import evaluate, prepare
from qwenfit.core.engines.vllm.verify import unsplit_verify_flops
from qwenfit.core.fit.speed import speed_of
from qwenfit.core.fit.speed_mtp import unsplit_verify_fs


@pytest.mark.parametrize(
    ("kv", "cap", "flops"),
    [
        ("auto", (8, 6), 17 * 4 * 64 * 256),  # RTX 3090: FA2, 64-row tile
        (None, (12, 0), 17 * 4 * 64 * 256),  # RTX 5090 / 5060 Ti: FA2 (no FA3/FA4 on SM12x)
        ("auto", (8, 0), 17 * 4 * 128 * 256),  # A100: FA2's 128-row tile for head dim 256
        ("fp8", (8, 6), 0),  # FP8 KV on SM8x: FlashInfer (packs the group, splits the depth)
        ("auto", (9, 0), 0),  # H100: FA3
        ("auto", (10, 0), 0),  # B200: FlashInfer first
        ("auto", None, 0),  # no GPU named
    ],
)
def test_which_verify_runs_unsplit(kv: str | None, cap: tuple[int, int] | None, flops: int) -> None:
    assert unsplit_verify_flops(kv, cap, 256, 16) == flops


def test_unsplit_verify_costs_fs_per_cached_token() -> None:
    assert unsplit_verify_fs(0) == 0
    assert unsplit_verify_fs(10**6) > 0


def _decode(kv: str | None, depth: int, mtp: bool) -> float:
    p = prepare("27B", "fp8", context=262144, engine="vllm", kv_cache=kv, sequences=1, mtp=mtp, vision=None,
                backend=None, n_gpus=None, hardware="4x rtx-5060-ti-16gb", vram_gb=None, ram_gb=None,
                wired_limit_mb=None, options={"tp": 4})  # fmt: skip
    e = evaluate(p)
    placement = p.engine.placement_of(p.d, p.o)
    assert placement is not None and p.target.machine is not None
    reads = p.engine.decode_reads(p.spec, p.engine.read_inputs(p.spec, p.weights, placement), placement, p.o)
    decode, _, _ = speed_of(p.spec, e, p.target.machine, p.engine, placement, "cuda", reads, depth=depth)
    assert decode is not None
    return float(decode)


def test_fa2_verify_at_depth_is_what_slows_vllm_mtp() -> None:
    """jdkruzr's 4x RTX 5060 Ti, vLLM TP4, MTP 1 at 255k (bf16 KV): 28.4 tok/s without MTP, 3.7 with
    (benchmarks/speed/measurements/jdkruzr-qwen36-27b-5060ti-bench.yaml). The unsplit verify makes MTP
    a loss at that depth, not at 4k, and only with the KV type vLLM runs through FA2."""
    deep, shallow = 261120, 4096
    assert _decode(None, deep, mtp=True) < 0.5 * _decode(None, deep, mtp=False)
    assert _decode(None, shallow, mtp=True) > _decode(None, shallow, mtp=False)
    assert _decode("fp8", deep, mtp=True) > 3 * _decode(None, deep, mtp=True)  # FlashInfer: packed, split
