"""qwenfit.core.fit.speed: bytes read per token, the decode/prefill roofline, tracing."""

from __future__ import annotations

import dataclasses

import pytest

import qwenfit
from qwenfit.core.expr import Var, evaluate
from qwenfit.core.fit.speed import (
    DEFAULT_HOST,
    FS_PER_S,
    Speed,
    decode_rates,
    decode_tokens_per_s,
    estimate_speed,
)
from qwenfit.core.formats.reads import decode_read_bytes
from qwenfit.core.formats.weights import WeightMap
from qwenfit.core.hardware import Device, HostMemory, Machine
from qwenfit.core.model.inventory import ROUTED_EXPERT_ROLES


def gpu(bandwidth_gbps: float = 1000.0, fp16_tflops: float = 100.0, **kw: object) -> Device:
    fields: dict[str, object] = dict(
        id="test-gpu", name="Test GPU", vendor="nvidia", kind="gpu", memory_bytes=24 * 10**9,
        memory_exact=False, bandwidth_gbps=bandwidth_gbps, fp16_tflops=fp16_tflops,
    )  # fmt: skip
    fields.update(kw)
    return Device(**fields)  # type: ignore[arg-type]


def machine(*devices: Device, host_gbps: float | None = None) -> Machine:
    host = None
    if host_gbps is not None:
        host = HostMemory(id="h", name="test RAM", bandwidth_gbps=host_gbps, effective_gbps=host_gbps)
    return Machine(name="test", devices=devices or (gpu(),), host=host)


def speed(read: int = 10**9, *, kv: int = 0, state: int = 0, cpu: int = 0, m: Machine | None = None,
          **kw: object) -> Speed:  # fmt: skip
    args: dict[str, object] = dict(
        read_bytes={"gpu": read, "cpu": cpu}, kv_read_bytes={"gpu": kv}, state_bytes={"gpu": state},
        machine=m or machine(), engine="llama.cpp", n_layers=10, active_params=10**9,
    )  # fmt: skip
    args.update(kw)
    return estimate_speed(**args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def moe() -> tuple[qwenfit.ModelSpec, WeightMap]:
    spec = qwenfit.load("35B-A3B")
    return spec, qwenfit.weights(spec, "Q4_K_M")


# --- bytes read per token ----------------------------------------------------------------------------


def test_moe_reads_routed_experts_at_top_k_share(moe: tuple[qwenfit.ModelSpec, WeightMap]) -> None:
    spec, w = moe
    t = spec.text
    expected = 0
    for e in w.tensors:
        if e.component != "text":
            continue
        if e.role in ROUTED_EXPERT_ROLES:
            expected += e.bytes * t.num_experts_per_tok // t.num_experts
        elif e.role == "embed":
            expected += -(-e.bytes // t.vocab_size)
        else:
            expected += e.bytes
    read = decode_read_bytes(spec, w)
    assert read == {"gpu": expected, "cpu": 0}
    # about the active share of the text weights (3.45 B of 35 B), far below the file
    text_bytes = w.by_component()["text"]
    share = spec.params.active / spec.params.text
    assert 0.6 * share * text_bytes < read["gpu"] < 1.2 * share * text_bytes
    assert read["gpu"] < text_bytes / 5


def _only(w: WeightMap, role: str) -> WeightMap:
    return dataclasses.replace(
        w, tensors=tuple(e for e in w.tensors if e.role == role and e.component == "text")
    )


def test_untied_embedding_reads_one_row() -> None:
    spec = qwenfit.load("9B")
    assert not spec.text.tie_word_embeddings
    embed = _only(qwenfit.weights(spec, "Q4_K_M"), "embed")
    (entry,) = embed.tensors
    assert decode_read_bytes(spec, embed)["gpu"] == entry.bytes // spec.text.vocab_size
    assert entry.bytes % spec.text.vocab_size == 0  # rows are quantized independently


def test_tied_embedding_is_read_whole_as_the_output_layer() -> None:
    spec = qwenfit.load("0.8B")
    assert spec.text.tie_word_embeddings
    embed = _only(qwenfit.weights(spec, "Q4_K_M"), "embed")
    assert decode_read_bytes(spec, embed)["gpu"] == embed.total_bytes


def test_vision_never_read_mtp_only_when_asked(moe: tuple[qwenfit.ModelSpec, WeightMap]) -> None:
    spec, w = moe
    with_vision = qwenfit.weights(spec, "fp8")  # GPU checkpoint: text + MTP + vision
    text_only = dataclasses.replace(with_vision, tensors=tuple(e for e in with_vision.tensors
                                                                if e.component == "text"))  # fmt: skip
    assert decode_read_bytes(spec, with_vision) == decode_read_bytes(spec, text_only)
    plain, drafted = decode_read_bytes(spec, w), decode_read_bytes(spec, w, mtp=True)
    head = sum(e.bytes for e in w.tensors if e.role == "lm_head" and e.component == "text")
    mtp_layer = decode_read_bytes(spec, dataclasses.replace(w, tensors=tuple(
        e for e in w.tensors if e.component == "mtp")), mtp=True)["gpu"]  # fmt: skip
    assert drafted["gpu"] == plain["gpu"] + mtp_layer + head


def test_cpu_tensors_move_bytes_without_losing_any(moe: tuple[qwenfit.ModelSpec, WeightMap]) -> None:
    spec, w = moe
    experts = {e.name for e in w.tensors if e.role in ROUTED_EXPERT_ROLES}
    gguf_names = {e.gguf_name for e in w.tensors if e.role in ROUTED_EXPERT_ROLES and e.gguf_name}
    on_gpu = decode_read_bytes(spec, w)
    split = decode_read_bytes(spec, w, cpu_tensors=experts)
    assert split == decode_read_bytes(spec, w, cpu_tensors=gguf_names)  # either name works
    assert split["cpu"] > 0 and split["gpu"] + split["cpu"] == on_gpu["gpu"]


# --- decode: a worked example and monotonicity ---------------------------------------------------------


def test_worked_example_by_hand() -> None:
    # η_mem = 0.92 (discrete) x 0.90 (CUDA) = 0.828 -> 828 GB/s -> round(1e15 / 828e9) = 1208 fs per byte;
    # fixed = 200 µs (llama.cpp step) + 10 layers x 100 µs = 1.2 ms
    s = speed(10**9)
    assert s.decode_tokens_per_s == pytest.approx(FS_PER_S / (10**9 * 1208 + 1_200 * 10**9), rel=1e-12)
    assert s.decode_tokens_per_s == pytest.approx(1 / (1e9 / 828e9 + 1.2e-3), rel=1e-3)  # ≈ 415.3 t/s
    assert not s.exact and "estimated" in s.basis
    # offload: 1 GB more from a 50 GB/s host (20,000 fs per byte) and 10 layers x 50 µs of graph splits
    m = machine(host_gbps=50.0)
    s = speed(10**9, cpu=10**9, m=m)
    time_fs = 10**9 * 1208 + 10**9 * 20_000 + (1_200 + 500) * 10**9
    assert s.decode_tokens_per_s == pytest.approx(FS_PER_S / time_fs, rel=1e-12)


def test_more_bytes_is_slower_more_bandwidth_is_faster() -> None:
    base = speed(10**9).decode_tokens_per_s
    assert base is not None
    assert speed(2 * 10**9).decode_tokens_per_s < base  # type: ignore[operator]
    assert speed(10**9, kv=10**8).decode_tokens_per_s < base  # type: ignore[operator]
    assert speed(10**9, state=10**7).decode_tokens_per_s < base  # type: ignore[operator]
    assert speed(10**9, m=machine(gpu(2000.0))).decode_tokens_per_s > base  # type: ignore[operator]
    assert speed(10**9, m=machine(gpu(500.0))).decode_tokens_per_s < base  # type: ignore[operator]
    assert speed(10**9, n_layers=40).decode_tokens_per_s < base  # type: ignore[operator]


def test_offloading_to_cpu_is_slower(moe: tuple[qwenfit.ModelSpec, WeightMap]) -> None:
    spec, w = moe
    experts = {e.name for e in w.tensors if e.role in ROUTED_EXPERT_ROLES}
    first_half = {e.name for e in w.tensors if e.role in ROUTED_EXPERT_ROLES and (e.layer or 0) < 20}
    results = []
    for cpu in (set(), first_half, experts):
        read = decode_read_bytes(spec, w, cpu_tensors=cpu)
        s = estimate_speed(read_bytes=read, kv_read_bytes={}, state_bytes={}, machine=machine(),
                           engine="llama.cpp", n_layers=40, active_params=spec.params.active)  # fmt: skip
        results.append(s.decode_tokens_per_s)
    assert results[0] > results[1] > results[2]  # type: ignore[operator]


def test_default_host_profile_is_used_and_documented() -> None:
    rates = decode_rates(machine=machine(), engine="llama.cpp", n_layers=1)
    assert rates is not None and rates.cpu_fs_per_byte == round(
        FS_PER_S / (DEFAULT_HOST.effective_gbps * 1e9)
    )
    assert DEFAULT_HOST.effective_gbps == pytest.approx(0.7 * 89.6)


def test_tensor_parallel_splits_bytes_and_pays_all_reduces() -> None:
    one = decode_rates(machine=machine(gpu(), gpu()), engine="vllm", n_layers=10)
    two = decode_rates(machine=machine(gpu(), gpu()), engine="vllm", n_layers=10, tp=2)
    nvlink = decode_rates(
        machine=machine(*[gpu(interconnect="nvlink4")] * 2), engine="vllm", n_layers=10, tp=2
    )
    assert one and two and nvlink
    assert two.gpu_fs_per_byte == pytest.approx(one.gpu_fs_per_byte / 2, abs=1)
    assert two.fixed_fs - one.fixed_fs == 2 * 10 * 30 * 10**9  # 2 PCIe all-reduces per layer, 30 µs each
    assert nvlink.fixed_fs - one.fixed_fs == 2 * 10 * 15 * 10**9
    with pytest.raises(ValueError, match="tp=4"):
        decode_rates(machine=machine(gpu(), gpu()), engine="vllm", n_layers=10, tp=4)


def test_unknown_bandwidth_or_compute_gives_none() -> None:
    s = speed(m=machine(gpu(bandwidth_gbps=0.0)))
    assert s.decode_tokens_per_s is None and s.prefill_tokens_per_s is None
    s = speed(m=machine(gpu(fp16_tflops=0.0)))
    assert s.decode_tokens_per_s is not None and s.prefill_tokens_per_s is None


# --- prefill -------------------------------------------------------------------------------------------


def test_prefill_compute_bound_worked_example() -> None:
    # 2 x 1e9 params x 512 tokens / (0.35 x 100 TFLOPS) = 29.257 ms; weights 1 GB / 828 GB/s = 1.2 ms is
    # below it; + one ubatch of fixed cost 1.2 ms
    s = speed(10**9, prompt_tokens=512)
    assert s.prefill_tokens_per_s == pytest.approx(512 / (2e9 * 512 / 35e12 + 1.2e-3), rel=1e-6)
    # two ubatches pay the fixed cost twice; weights held in RAM are copied over PCIe once per ubatch
    s2 = speed(10**9, prompt_tokens=1024, resident_bytes={"gpu": 10**9, "cpu": 10**9})
    copy = 1e9 / (0.75 * 31.5e9)
    assert s2.prefill_tokens_per_s == pytest.approx(
        1024 / (2 * (2e9 * 512 / 35e12 + 1.2e-3 + copy)), rel=1e-6
    )


# --- tracing for the docs calculator -----------------------------------------------------------------


def test_decode_formula_traces_with_expressions() -> None:
    rates = decode_rates(machine=machine(), engine="llama.cpp", n_layers=40)
    assert rates is not None
    ctx = Var("ctx")
    kv_per_token = 20_480
    formula = decode_tokens_per_s(2 * 10**9 + kv_per_token * ctx, 0, rates)
    for n in (0, 4096, 131_072):
        direct = decode_tokens_per_s(2 * 10**9 + kv_per_token * n, 0, rates)
        assert evaluate(formula, {"ctx": n}) == pytest.approx(direct, rel=1e-12)
        assert direct == speed(2 * 10**9, kv=kv_per_token * n, n_layers=40).decode_tokens_per_s
