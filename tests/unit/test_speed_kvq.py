"""A quantized KV cache in llama.cpp's CUDA FlashAttention decode (qwenfit.core.fit.speed_kvq): the kernel
rule, the rate constant, the shipped formula against the fitted model, and the planner's figure."""

from __future__ import annotations

import pytest

import qwenfit
from benchmarks.speed.fit import model as fitted_model
from qwenfit.core.fit import speed_fitted
from qwenfit.core.fit.speed import decode_speed, mtp_tokens_per_cycle, rate_constants, shape_of
from qwenfit.core.fit.speed_kvq import vec_query_cols
from qwenfit.core.hardware import Device, Machine
from qwenfit.loaders.hardware import hardware_catalog

VEC = "attn_decode_kvq.llama.cpp/cuda"


def _gpu(cc: str | None, bandwidth_gbps: float = 1008.0, fp16_tflops: float = 165.2) -> Device:
    return Device(
        id="test-gpu", name="Test GPU", vendor="nvidia", kind="gpu", memory_bytes=24 * 10**9,
        memory_exact=False, bandwidth_gbps=bandwidth_gbps, fp16_tflops=fp16_tflops, compute_capability=cc,
    )  # fmt: skip


def test_the_vector_kernel_rule_follows_fattn_cu() -> None:
    """Quantized K/V: 2 query tokens per sequence on Ada and newer, 1 on Turing/Ampere (fattn.cu:649-658);
    an unquantized cache, a pre-Turing GPU or an unknown one: no rule."""
    assert vec_query_cols("q4_0", "8.9") == 2 and vec_query_cols("q8_0", "12.0") == 2
    assert vec_query_cols("q8_0", "8.6") == 1 and vec_query_cols("q5_1", "7.5") == 1
    assert vec_query_cols("f16", "8.9") == 0 and vec_query_cols("bf16", "8.9") == 0
    assert vec_query_cols(None, "8.9") == 0 and vec_query_cols("iq4_nl", "8.9") == 0
    assert vec_query_cols("q4_0", "7.0") == 0 and vec_query_cols("q4_0", None) == 0
    assert vec_query_cols("q4_0", "gfx1100") == 0


def test_the_vector_kernel_rate_only_for_llama_cpp_on_cuda() -> None:
    """k:aq_fs1k is the fitted vector-kernel share of the FP16 peak for llama.cpp (and Ollama, which runs
    llama-server) on CUDA, and k:a_fs1k everywhere else (vLLM, Vulkan, a pre-Turing GPU)."""
    ada = Machine(name="t", devices=(_gpu("8.9"),))
    k = rate_constants(machine=ada, engine="llama.cpp", backend="cuda")
    assert k is not None
    ratio = speed_fitted.CONSTANTS["attn_decode"] / speed_fitted.CONSTANTS[VEC]
    assert k["aq_fs1k"] / k["a_fs1k"] == pytest.approx(ratio, rel=1e-4) and ratio > 2
    ollama = rate_constants(machine=ada, engine="ollama", backend="cuda")
    assert ollama is not None and ollama["aq_fs1k"] == k["aq_fs1k"]
    for engine, backend, m in (("vllm", "cuda", ada), ("llama.cpp", "vulkan", ada),
                               ("llama.cpp", "cuda", Machine(name="t", devices=(_gpu("6.1"),)))):  # fmt: skip
        other = rate_constants(machine=m, engine=engine, backend=backend)
        assert other is not None and other["aq_fs1k"] == other["a_fs1k"]


class _Row:
    def __init__(self, **kw: object) -> None:
        self.__dict__.update(kw)


@pytest.mark.parametrize(("cc", "drafts"), [("8.9", 0), ("8.6", 0), ("8.9", 1), ("8.6", 1), ("8.9", 3)])
def test_shipped_formula_equals_the_fitted_model(cc: str, drafts: int) -> None:
    """qwenfit's integer formula and benchmarks/speed/fit/model.py charge the same vector-kernel time: a
    verify of 2 tokens per sequence runs it on Ada, not on Ampere; draft steps (1 token) always do."""
    spec = qwenfit.load("27B")
    shape = shape_of(spec)
    dev = _gpu(cc)
    k = rate_constants(machine=Machine(name="t", devices=(dev,)), engine="llama.cpp", backend="cuda")
    assert k is not None
    w_gpu, kv, st, depth = 16 * 10**9, 2 * 10**8, 3 * 10**7, 65536
    cols = vec_query_cols("q4_0", cc)
    e = round(1000 * mtp_tokens_per_cycle(drafts)) if drafts else 1000
    ours = decode_speed(shape, k, w_gpu=w_gpu, w_cpu=0, kv_gpu=kv, kv_cpu=0, st_gpu=2 * st, st_cpu=0,
                        drafts=drafts, tokens_per_cycle_milli=e, depth=depth, kvq_cols=cols)  # fmt: skip
    mtp = shape.mtp_params * w_gpu / shape.read_params
    row = _Row(
        family="llama.cpp", backend="cuda", hw="gpu", quant="Q4_K_M", bw_gbps=1008.0, fp16_tflops=165.2, tp=1,
        link=None, dense_gpu=w_gpu, expert_gpu=0.0, dense_cpu=0.0, expert_cpu=0.0, n_experts=0, k_experts=0,
        kv_per_token=kv / depth, depth=float(depth), state_bytes=st, n_attn=shape.n_attn,
        attn_width=shape.attn_width, host_peak_gbps=0.0, host_cores=0, n_layers=shape.n_layers, is_moe=False,
        n_offloaded_layers=0, active_params=shape.matmul_params, batch=1, mtp_n=drafts, mtp_e=None,
        mtp_dense=mtp, mtp_expert=0.0, interleaved_prompt=0.0, verify_flops=0.0, kv_vec_cols=cols,
    )  # fmt: skip
    theirs = fitted_model.decode_tokens_per_s(row, speed_fitted.CONSTANTS)
    assert ours == pytest.approx(theirs, rel=0.005)
    f16 = decode_speed(shape, k, w_gpu=w_gpu, w_cpu=0, kv_gpu=kv, kv_cpu=0, st_gpu=2 * st, st_cpu=0,
                       drafts=drafts, tokens_per_cycle_milli=e, depth=depth)  # fmt: skip
    assert ours < f16  # the same bytes through the vector kernel: slower


def _decode(kv: str, depth: int, hardware: str = "rtx-4090") -> float:
    p = qwenfit.plan("27B", hardware=hardware, engines=["llama.cpp"], quants=["Q4_K_M"], context=65536,
                     kv_cache=kv, depth=depth)  # fmt: skip
    assert p.best is not None and p.best.decode_tokens_per_s is not None
    return float(p.best.decode_tokens_per_s)


def test_a_quantized_cache_slows_with_depth_beyond_its_bytes() -> None:
    """Qwen3.5-27B Q4_K_M: a q4_0 cache holds 3.6x fewer bytes per token than f16, but its attention runs
    in the vector kernel, so on an RTX 4090 its time per token grows from 4k to 64k deep by more than 0.6 of
    f16's growth (the bytes alone: 0.3); the vector kernel's FLOPs are the difference. On an RTX 3090 a
    q8_0 cache then decodes slower than f16 at 64k (jdkruzr measured 23.4 vs 27.4 tok/s at 255k on two)."""
    cat = hardware_catalog()
    slope = {kv: 1 / _decode(kv, 65536) - 1 / _decode(kv, 4096) for kv in ("f16", "q4_0")}
    assert slope["q4_0"] > 0.6 * slope["f16"]
    shape = shape_of(qwenfit.load("27B"))
    flops = 4 * shape.attn_width * shape.n_attn * (65536 - 4096) / (cat["rtx-4090"].fp16_tflops * 1e12)
    vec_s = flops * (1 / speed_fitted.CONSTANTS[VEC] - 1 / speed_fitted.CONSTANTS["attn_decode"])
    assert vec_s < slope["q4_0"] < slope["f16"] + vec_s  # and the q4_0 cache saves bytes on top
    assert _decode("q8_0", 65536, "rtx-3090") < _decode("f16", 65536, "rtx-3090")
    assert _decode("q8_0", 4096, "rtx-3090") == pytest.approx(_decode("f16", 4096, "rtx-3090"), rel=0.03)
