"""Prefill: the GEMM rate by tokens per weight matrix (dense matrices see the ubatch, routed experts the
tokens routed to them), shipped (qwenfit.core.fit.speed) equal to the fit's (benchmarks/speed/fit/model.py);
the ROCm hipBLAS-era factor and the prompt length a source's method gives."""

from __future__ import annotations

import pytest

import qwenfit
from benchmarks.speed.fit import features
from benchmarks.speed.fit import model as fitted_model
from qwenfit.core.fit import speed_fitted
from qwenfit.core.fit.gemm import gemm_efficiency, gemm_seconds, prefill_gemm_seconds
from qwenfit.core.fit.speed import shape_of


class _Row:
    def __init__(self, **kw: object) -> None:
        self.__dict__.update(kw)


def _row(model: str) -> _Row:
    spec = qwenfit.load(model)
    shape = shape_of(spec)
    routed = shape.expert_ppm * shape.read_params / 1e6 if shape.moe else 0.0
    return _Row(
        active_params=shape.matmul_params, active_routed=routed, n_experts=spec.text.num_experts,
        k_experts=spec.text.num_experts_per_tok, hw="gpu",
    )  # fmt: skip


@pytest.mark.parametrize("model", ["35B-A3B", "122B-A10B", "397B-A17B", "27B"])
@pytest.mark.parametrize("n", [1, 64, 512, 2048])
def test_shipped_prefill_gemm_equals_the_fitted_model(model: str, n: int) -> None:
    shape = shape_of(qwenfit.load(model))
    flops = 50e12
    ours = prefill_gemm_seconds(shape, n, flops)
    theirs = fitted_model.gemm_seconds(_row(model), speed_fitted.CONSTANTS, n, flops)
    # qwenfit reads U(n) from its table up to U_TABLE = 256 tokens (397B's 512 experts: 0.6 % short of
    # E/k there), the fit computes it: within 0.5 %
    assert ours == pytest.approx(theirs, rel=5e-3)


def test_gemm_efficiency_rises_with_tokens_per_matrix_to_one() -> None:
    m_half = speed_fitted.CONSTANTS["gemm_m_half"]
    assert gemm_efficiency(m_half) == pytest.approx(0.5)
    effs = [gemm_efficiency(m) for m in (1, 8, 16, 64, 512, 8192)]
    assert effs == sorted(effs) and effs[-1] > 0.99 and effs[0] < 0.1


def test_routed_experts_with_fewer_tokens_each_take_longer() -> None:
    """Same FLOPs: experts that see 10 tokens each (k 10 of 512 at ubatch 512) run slower than experts
    that see 64 (k 4 of 32), and both slower than a dense matrix that sees all 512."""
    flops, n, a = 50e12, 512, 3e9
    dense = gemm_seconds(a, 0.0, n, n, flops)
    e64 = gemm_seconds(a, a, n, 64, flops)
    e10 = gemm_seconds(a, a, n, 10, flops)
    assert dense < e64 < e10
    assert e10 / dense == pytest.approx(gemm_efficiency(n) / gemm_efficiency(10))


def test_moe_ubatch_2048_prefills_faster_per_token_than_512() -> None:
    shape = shape_of(qwenfit.load("35B-A3B"))
    t512 = prefill_gemm_seconds(shape, 512, 50e12) / 512
    t2048 = prefill_gemm_seconds(shape, 2048, 50e12) / 2048
    assert t2048 < t512


def test_rocm_rows_before_wmma_mmq_get_the_hipblas_factor() -> None:
    k = dict(speed_fitted.CONSTANTS)
    base = dict(
        family="llama.cpp", backend="rocm", hw="strix", quant="Q4_K_M", bw_gbps=256.0, fp16_tflops=59.4, tp=1,
        resident_gpu=20e9, resident_cpu=0.0, pcie_gbps=0.0, n_layers=40, is_moe=False, n_offloaded_layers=0,
        link=None, link_gbps=0.0, head_params=0.0, attn_width=4096, n_attn=10, hidden=2048,
        active_params=20e9, active_routed=0.0, n_experts=0, k_experts=0, ubatch=512, vllm_piecewise=False,
    )  # fmt: skip
    old = fitted_model.prefill_seconds(_Row(**base, rocm_hipblas=True), k, 512, 0)
    new = fitted_model.prefill_seconds(_Row(**base, rocm_hipblas=False), k, 512, 0)
    assert old is not None and new is not None
    assert old > new  # the fitted factor is below 1: hipBLAS ran slower than today's WMMA-MMQ
    assert k["hipblas_eta_c.llama.cpp/rocm"] < 1


@pytest.fixture(scope="module")
def rows() -> dict[str, features.Row]:
    return {r.id: r for r in features.load_rows()}


def test_date_gates_the_rocm_hipblas_era(rows: dict[str, features.Row]) -> None:
    assert rows["lhl-qwen3-32b-rocm-fa0"].rocm_hipblas  # 2025-07, before PR #17576
    assert not rows["kyuz0-qwen36-27b-ud-q8kxl-rocm-d0"].rocm_hipblas  # 2026


def test_prompt_length_from_the_sources_method_is_labelled(rows: dict[str, features.Row]) -> None:
    r = rows["club3090-noong-27b-llamacpp-q4km-mtp-3090"]
    assert r.prefill_tokens == 10000 and not r.skip_prefill
    assert any(a.startswith("assumed_prefill_tokens: 10000") for a in r.assumed)


def _base_row(backend: str, family: str = "llama.cpp", runner: str = "", is_moe: bool = False) -> _Row:
    return _Row(
        family=family, runner=runner, backend=backend, hw="gpu", quant="Q4_K_M", bw_gbps=960.0,
        fp16_tflops=112.6, tp=1, resident_gpu=6e9, resident_cpu=0.0, pcie_gbps=0.0, n_layers=32,
        is_moe=is_moe, n_offloaded_layers=0, link=None, link_gbps=0.0, head_params=0.0, attn_width=4096,
        n_attn=8, hidden=4096, active_params=7e9, active_routed=0.0, n_experts=0, k_experts=0, ubatch=512,
        vllm_piecewise=False, rocm_hipblas=False,
    )  # fmt: skip


@pytest.mark.parametrize(("family", "runner"), [("llama.cpp", ""), ("ollama", "llama-server")])
@pytest.mark.parametrize("is_moe", [False, True])
def test_llama_cpp_cuda_prefill_ubatches_pay_the_eager_per_layer_cost(
    family: str, runner: str, is_moe: bool
) -> None:
    """A prompt's ubatches run eagerly on ggml-cuda (no graph replay): the fit charges them
    ``prefill_layer_us`` per layer where a decode step pays ``layer_us``; other backends, the decode cost."""
    k = dict(speed_fitted.CONSTANTS)
    cuda = _base_row("cuda", family, runner, is_moe)
    moe = k["moe_layer_factor.llama.cpp"] if is_moe else 1.0
    delta = cuda.n_layers * (k["prefill_layer_us.llama.cpp/cuda"] - k["layer_us.llama.cpp/cuda"]) * moe
    assert fitted_model.prefill_fixed_us(cuda, k) == pytest.approx(fitted_model.fixed_us(cuda, k) + delta)
    vulkan = _base_row("vulkan", family, runner, is_moe)
    assert fitted_model.prefill_fixed_us(vulkan, k) == fitted_model.fixed_us(vulkan, k)
    cgo = _base_row("cuda", "ollama", "", is_moe)  # Ollama's CGO engine: its own cells, no eager figure
    assert fitted_model.prefill_fixed_us(cgo, k) == fitted_model.fixed_us(cgo, k)


@pytest.mark.parametrize(
    ("engine", "backend", "eager"),
    [("llama.cpp", "cuda", True), ("ollama", "cuda", True), ("lm-studio", "cuda", True),
     ("llama.cpp", "vulkan", False), ("llama.cpp", "metal", False), ("vllm", "cuda", False)],
)  # fmt: skip
def test_shipped_prefill_layer_cost_is_the_fits(engine: str, backend: str, eager: bool) -> None:
    from qwenfit.core.fit import speed

    k = speed._resolve(speed._speed(engine), backend, None)
    want = speed_fitted.CONSTANTS["prefill_layer_us.llama.cpp/cuda"] if eager else k.layer_us
    assert k.prefill_layer_us == want
