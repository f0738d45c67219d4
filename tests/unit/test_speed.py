"""qwenfit.core.fit.speed: bytes read per token, the fitted decode model (equal to the fit's), MTP,
batches, depth, host RAM, bands, calibration, tracing."""

from __future__ import annotations

import dataclasses

import pytest

import qwenfit
from benchmarks.speed.fit import model as fitted_model
from qwenfit.core.expr import Var, evaluate
from qwenfit.core.fit import speed_fitted
from qwenfit.core.fit.speed import (
    DEFAULT_HOST,
    Rate,
    decode_speed,
    format_rate,
    mtp_tokens_per_cycle,
    rate_constants,
    shape_of,
    use_calibration,
)
from qwenfit.core.fit.speed_mtp import unsplit_verify_fs
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


# --- the shipped model is the fitted one ------------------------------------------------------------


class _Row:
    """A benchmarks/speed/fit/model.py row built from the same quantities qwenfit's formula reads."""

    def __init__(self, **kw: object) -> None:
        self.__dict__.update(kw)


@pytest.mark.parametrize(
    ("b", "drafts", "cpu", "tp", "unsplit"),
    [(1, 0, 0, 1, 0), (4, 0, 0, 1, 0), (1, 2, 0, 1, 0), (1, 0, 6 * 10**9, 1, 0), (1, 0, 0, 2, 0),
     (1, 2, 0, 1, 17 * 4 * 64 * 256), (2, 3, 0, 2, 17 * 4 * 64 * 256),
     # more than 8 tokens a step: ggml's matrix kernels
     (8, 0, 0, 1, 0), (12, 0, 0, 1, 0), (32, 0, 0, 2, 0), (4, 3, 0, 1, 0)],
)  # fmt: skip
def test_decode_equals_the_fitted_model(b: int, drafts: int, cpu: int, tp: int, unsplit: int) -> None:
    spec = qwenfit.load("35B-A3B")
    shape = shape_of(spec)
    m = machine(gpu(936.0, 71.0), gpu(936.0, 71.0), host_gbps=89.6)
    k = rate_constants(machine=m, engine="llama.cpp", tp=tp, backend="cuda")
    assert k is not None
    w_gpu, kv, st, depth = 10 * 10**9, 2 * 10**8, 3 * 10**7, 8192
    e = round(1000 * mtp_tokens_per_cycle(drafts)) if drafts else 1000
    n_off = 40 if cpu else 0
    ours = decode_speed(shape, k, w_gpu=w_gpu, w_cpu=cpu, kv_gpu=kv, kv_cpu=0, st_gpu=2 * st, st_cpu=0,
                        n_offloaded=n_off, sequences=b, drafts=drafts, tokens_per_cycle_milli=e,
                        depth=depth, verify_fs=unsplit_verify_fs(unsplit))  # fmt: skip
    x_all = (w_gpu + cpu) * shape.expert_ppm / 1e6
    x_cpu = min(cpu, x_all)
    mtp = shape.mtp_params * (w_gpu + cpu) / shape.read_params
    row = _Row(
        family="llama.cpp", backend="cuda", hw="gpu", quant="Q4_K_M", bw_gbps=936.0, fp16_tflops=71.0, tp=tp,
        link="pcie", dense_gpu=w_gpu - (x_all - x_cpu), expert_gpu=x_all - x_cpu, dense_cpu=cpu - x_cpu,
        expert_cpu=x_cpu, n_experts=spec.text.num_experts, k_experts=spec.text.num_experts_per_tok,
        kv_per_token=kv / depth, depth=float(depth), state_bytes=st, n_attn=shape.n_attn,
        attn_width=shape.attn_width, host_peak_gbps=89.6, host_cores=0,
        n_layers=shape.n_layers, is_moe=True, n_offloaded_layers=n_off, active_params=shape.matmul_params,
        active_routed=shape.expert_ppm * shape.read_params / 1e6,
        batch=b, mtp_n=drafts, mtp_e=None, mtp_dense=mtp, mtp_expert=0.0,
        interleaved_prompt=0.0, verify_flops=float(unsplit),
    )  # fmt: skip
    theirs = fitted_model.decode_tokens_per_s(row, speed_fitted.CONSTANTS) / b
    assert ours == pytest.approx(theirs, rel=0.005)


def test_depth_not_the_allocated_context_sets_the_speed() -> None:
    a = qwenfit.estimate("27B", "Q4_K_M", engine="llama.cpp", context=8192, hardware="rtx-4090")
    b = qwenfit.estimate("27B", "Q4_K_M", engine="llama.cpp", context=65536, hardware="rtx-4090")
    assert a.decode_tokens_per_s == pytest.approx(b.decode_tokens_per_s, rel=1e-9)


def test_attention_flops_at_depth_cost_time_beyond_the_kv_bytes() -> None:
    """Decode at depth pays the KV bytes and the attention FLOPs (4 x q heads x head dim per cached
    token and full-attention layer) at the fitted share of the FP16 peak: 64k deep on an RTX 4090 the
    27B loses more than the bytes alone take, by exactly that time; a device without an FP16 figure
    keeps the bytes alone."""
    spec = qwenfit.load("27B")
    shape = shape_of(spec)
    dev = gpu(1008.0, 165.2)
    k = rate_constants(machine=machine(dev), engine="llama.cpp")
    assert k is not None and k["a_fs1k"] > 0
    args = dict(w_gpu=16 * 10**9, w_cpu=0, kv_gpu=10**9, kv_cpu=0, st_gpu=3 * 10**8, st_cpu=0)
    deep = decode_speed(shape, k, depth=65536, **args)  # type: ignore[arg-type]
    bytes_only = decode_speed(shape, {**k, "a_fs1k": 0}, depth=65536, **args)  # type: ignore[arg-type]
    flops = 4 * shape.attn_width * shape.n_attn * 65536
    extra_s = flops / (speed_fitted.CONSTANTS["attn_decode"] * 165.2e12)
    assert 1 / deep - 1 / bytes_only == pytest.approx(extra_s, rel=1e-3)
    assert shape.n_attn == 16 and shape.attn_width == 24 * 256
    no_f16 = rate_constants(machine=machine(gpu(1008.0, 0.0)), engine="llama.cpp")
    assert no_f16 is not None and no_f16["a_fs1k"] == 0


def test_mtp_with_the_published_acceptance_raises_the_estimate() -> None:
    """MTP drafting raises the estimate by the tokens per cycle of the published acceptance (the value the
    out-of-sample scores use for a run that publishes none), net of the draft and verify costs."""
    plain = qwenfit.estimate("27B", "Q4_K_M", engine="llama.cpp", context=8192, hardware="rtx-3090")
    mtp = qwenfit.estimate("27B", "Q4_K_M", engine="llama.cpp", context=8192, hardware="rtx-3090", mtp=True)
    assert plain.decode_tokens_per_s and mtp.decode_tokens_per_s
    a = speed_fitted.CONSTANTS["mtp_accept"]
    assert mtp_tokens_per_cycle(3) == pytest.approx(1 + a + a**2 + a**3)
    assert mtp.decode_tokens_per_s > 1.05 * plain.decode_tokens_per_s
    per_cycle = round(1000 * mtp_tokens_per_cycle(3)) / 1000
    assert f"{per_cycle:g} tokens per cycle (published acceptance, median; " in mtp.speed_detail
    # club-3090 scripts/bench.sh:40-42 (prose ~50 %, code ~80 %), tedivm scripts/bench_tps.py:6 (~40 %, >80 %)
    assert "~40-50 % of drafts accepted for prose, ~80 % for code" in mtp.speed_detail


def test_batched_decode_per_sequence_slower_all_together_faster() -> None:
    one = qwenfit.estimate("35B-A3B", "Q4_K_M", engine="llama.cpp", context=8192, hardware="rtx-4090")
    four = qwenfit.estimate("35B-A3B", "Q4_K_M", engine="llama.cpp", context=8192, sequences=4,
                            hardware="rtx-4090")  # fmt: skip
    s1, s4 = one.decode_tokens_per_s, four.decode_tokens_per_s
    assert s1 and s4 and s4 < s1 < 4 * s4
    assert isinstance(s4, Rate) and s4.category == "batched (concurrency > 1)"


def test_host_ram_bandwidth_from_the_machine() -> None:
    from qwenfit.loaders.hardware import parse_machine
    from qwenfit.loaders.host_probes import parse_ram_spec

    def on(ram: str) -> qwenfit.Estimate:
        m = dataclasses.replace(parse_machine("rtx-4090"), host=parse_ram_spec(ram), ram_bytes=128 * 10**9)
        return qwenfit.estimate("122B-A10B", "Q4_K_M", engine="llama.cpp", context=8192, hardware=m,
                                n_cpu_moe=40)  # fmt: skip

    slow, fast = on("ddr4-3200-2ch"), on("ddr5-6400-4ch")
    assert slow.decode_tokens_per_s and fast.decode_tokens_per_s
    assert fast.decode_tokens_per_s > 1.3 * slow.decode_tokens_per_s
    assert DEFAULT_HOST.bandwidth_gbps == 89.6


def test_every_figure_carries_its_band() -> None:
    e = qwenfit.estimate("27B", "Q4_K_M", engine="llama.cpp", context=8192, hardware="rtx-4090")
    d = e.decode_tokens_per_s
    assert isinstance(d, Rate) and d.low < d < d.high and d.label == "estimated"
    lo, _, hi, _ = speed_fitted.BANDS["decode"]["GPU dense"]
    assert d.low == pytest.approx(d * lo) and d.high == pytest.approx(d * hi)
    assert format_rate(d) == f"~{d:.0f} tok/s ({d.low:.0f}-{d.high:.0f})"


def test_calibrated_constants_win_and_are_labelled() -> None:
    kw = dict(engine="llama.cpp", context=8192, hardware="rtx-4090")
    before = qwenfit.estimate("27B", "Q4_K_M", **kw).decode_tokens_per_s  # type: ignore[arg-type]
    try:
        use_calibration({"eta_k.llama.cpp/cuda@rtx-4090": 0.5})
        after = qwenfit.estimate("27B", "Q4_K_M", **kw).decode_tokens_per_s  # type: ignore[arg-type]
    finally:
        use_calibration({})
    assert isinstance(after, Rate) and after.label == "calibrated"
    assert before and after < 0.7 * before


def test_tensor_parallel_over_nvlink_is_cheaper_than_pcie() -> None:
    pcie = rate_constants(machine=machine(gpu(), gpu()), engine="vllm", tp=2)
    nv = gpu(interconnect="nvlink4")
    nvl = rate_constants(machine=machine(nv, nv), engine="vllm", tp=2)
    one = rate_constants(machine=machine(gpu(), gpu()), engine="vllm", tp=1)
    assert pcie and nvl and one
    assert one["ar_ns"] == 0 < nvl["ar_ns"] < pcie["ar_ns"]
    assert pcie["gpu_fs"] == pytest.approx(one["gpu_fs"] / 2, rel=1e-3)
    with pytest.raises(ValueError):
        rate_constants(machine=machine(gpu(), gpu()), engine="vllm", tp=4)


def test_unknown_bandwidth_gives_none() -> None:
    assert rate_constants(machine=machine(gpu(0.0)), engine="llama.cpp") is None


def test_decode_formula_traces_with_expressions() -> None:
    spec = qwenfit.load("35B-A3B")
    m = machine(gpu(936.0, 71.0))
    k = rate_constants(machine=m, engine="llama.cpp")
    assert k is not None
    args = dict(w_gpu=10**10, w_cpu=0, kv_gpu=10**8, kv_cpu=0, st_gpu=10**7, st_cpu=0, depth=30000)
    for b in (1, 3, 300):
        direct = decode_speed(shape_of(spec), k, sequences=b, **args)  # type: ignore[arg-type]
        tree = decode_speed(shape_of(spec), {n: Var(f"k:{n}") for n in k}, sequences=Var("seqs"),
                            **{n: Var(n) for n in args})  # type: ignore[arg-type]  # fmt: skip
        env = {**{f"k:{n}": v for n, v in k.items()}, **args, "seqs": b}
        assert evaluate(tree, env) == pytest.approx(direct, rel=1e-12)


def test_bf16_weights_stream_at_the_fitted_bf16_rate() -> None:
    """BF16 bytes read at k:bf16_fs (the fit's factors: llama.cpp Vulkan/ROCm, vLLM CUDA); other quants and
    cells do not."""
    from qwenfit.core.fit.speed import bf16_ppm
    from qwenfit.loaders.hardware import hardware_catalog

    strix = Machine(name="strix", devices=(hardware_catalog()["strix-halo-128"],))
    k = rate_constants(machine=strix, engine="llama.cpp", backend="vulkan")
    assert k is not None
    factor = speed_fitted.CONSTANTS["bf16_eta.llama.cpp/vulkan"]
    assert factor < 0.8  # the measured slowdown (kyuz0: 10.7 vs 26.0 tok/s on ROCm, same file)
    assert k["bf16_fs"] / k["gpu_fs"] == pytest.approx(1 / factor, rel=1e-3)  # integer fs per byte
    kc = rate_constants(machine=machine(gpu(936.0, 71.0)), engine="llama.cpp", backend="cuda")
    assert kc is not None and kc["bf16_fs"] == kc["gpu_fs"]  # no BF16 factor fitted for that cell
    spec = qwenfit.load("35B-A3B")
    bf16, q8 = (qwenfit.core.engines.base.get("llama.cpp").weights(spec, q, mtp=False, vision=False)
                for q in ("BF16", "Q8_0"))  # fmt: skip
    assert bf16_ppm(bf16) > 990_000 and bf16_ppm(q8) == 0
    args = dict(w_gpu=10**10, w_cpu=0, kv_gpu=0, kv_cpu=0, st_gpu=0, st_cpu=0)
    fast = decode_speed(shape_of(spec), k, **args)  # type: ignore[arg-type]
    slow = decode_speed(shape_of(spec), k, bf16_ppm=10**6, **args)  # type: ignore[arg-type]
    assert isinstance(fast, float) and isinstance(slow, float) and slow < fast
    e = {
        b: qwenfit.estimate("35B-A3B", "BF16", hardware="strix-halo-128", backend=b)
        for b in ("vulkan", "rocm")
    }
    vulkan, rocm = e["vulkan"].decode_tokens_per_s, e["rocm"].decode_tokens_per_s
    assert vulkan is not None and rocm is not None and vulkan < 0.6 * rocm


def test_shipped_constants_are_the_fits() -> None:
    """qwenfit/core/fit/speed_fitted.py is what benchmarks/speed/fit wrote with model.py's CONSTANTS."""
    for name, value in fitted_model.CONSTANTS.items():
        assert speed_fitted.CONSTANTS[name] == value, name
    assert speed_fitted.CONSTANTS["eta_k.vllm/cuda@spark"] == fitted_model.CONSTANTS["eta_k.vllm/gb10"]
    # every decode band brackets the estimate (a band wholly on one side is a bias, not an uncertainty)
    assert all(lo < mid < hi and lo < 1 < hi for lo, mid, hi, _ in speed_fitted.BANDS["decode"].values())


@pytest.mark.parametrize(
    ("model", "engine", "quant", "hw", "n_gpus", "tp", "seqs"),
    [
        ("35B-A3B", "llama.cpp", "Q4_K_M", "rtx-4090", 1, 1, 1),
        ("35B-A3B", "llama.cpp", "Q4_K_M", "rtx-4090", 1, 1, 3),
        ("27B", "vllm", "fp8", "rtx-3090", 2, 2, 1),
        ("9B", "mlx", "mlx-4bit", "m4-max-128", 1, 1, 2),
        ("35B-A3B", "llama.cpp", "BF16", "strix-halo-128", 1, 1, 1),  # BF16 bytes at their own rate
    ],
)
def test_calculator_formula_gives_the_plans_figure(
    model: str, engine: str, quant: str, hw: str, n_gpus: int, tp: int, seqs: int
) -> None:
    """The traced formula the calculator evaluates and estimate()'s speed are one figure."""
    from qwenfit.core.engines.base import get
    from qwenfit.core.expr import evaluate_shared, to_json_shared
    from qwenfit.core.fit.formulas import hardware_env, placement_env, trace
    from qwenfit.loaders.hardware import hardware_catalog

    eng, spec = get(engine), qwenfit.load(model)
    fp = next(f for f in eng.formula_placements(spec) if f.tp == tp and f.n_gpus == n_gpus and not f.cpu_only)
    dev = hardware_catalog()[hw]
    traced = trace(spec, eng, eng.calc_kv_types[0], fp)
    defs, out = to_json_shared(traced.exprs)
    env = {**placement_env(spec, eng, eng.weights(spec, quant, mtp=False, vision=False), fp)}
    env.update(hardware_env(eng, dev, fp) or {})
    env.update({"ctx": 16384, "seqs": seqs, "depth": 4096, "n_cpu_moe": 0})
    calc = evaluate_shared(defs, {"speed": out["speed"]}, env)["speed"]
    kw = {"tp": tp} if engine == "vllm" else {}
    machine = f"{n_gpus}x {hw}" if n_gpus > 1 else hw
    e = qwenfit.estimate(model, quant, engine=engine, context=16384, sequences=seqs, hardware=machine,
                         n_gpus=n_gpus, kv_cache=eng.calc_kv_types[0], artifact="recipe", **kw)  # fmt: skip
    assert e.decode_tokens_per_s == pytest.approx(calc, rel=1e-9)
