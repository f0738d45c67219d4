"""plan(): the planner's answers, examples and invariants (issue #6 acceptance)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qwenfit
from qwenfit.core.hardware import Device, Machine
from qwenfit.loaders.catalog import names
from qwenfit.loaders.hardware import device

GPU = dict(vendor="nvidia", kind="gpu", memory_exact=False, bandwidth_gbps=1000.0, fp16_tflops=150.0,
           fp8_tflops=300.0, backends=("cuda",))  # fmt: skip


def machine(vram_gb: float, ram_gb: float | None, n: int = 1) -> Machine:
    dev = Device(id="test-gpu", name=f"test {vram_gb} GB GPU", memory_bytes=int(vram_gb * 1e9), **GPU)
    return Machine(
        name=f"{n}x test", devices=(dev,) * n, ram_bytes=None if ram_gb is None else int(ram_gb * 1e9)
    )


def test_the_one_liner():
    p = qwenfit.plan("122B-A10B", vram_gb=64)
    assert p.fits and p.best is not None and p.best.fits
    assert p.best is p.options[0]
    assert all(o.fits for o in p.options) and not any(o.fits for o in p.rejected)
    text = str(p)
    for needle in (
        "Qwen3.5-122B-A10B",
        p.best.quant,
        "context",
        "memory:",
        "speed:",
        "command:",
        "llama-server",
    ):
        assert needle in text, needle
    assert p.best.estimate is not None and p.best.estimate.fits
    assert p.best.command.startswith(("llama-server", "vllm serve"))


def test_every_variant_without_a_model():
    p = qwenfit.plan(vram_gb=24, ram_gb=64)
    seen = {o.model for o in p.options} | {o.model for o in p.rejected}
    assert seen == {qwenfit.load(n).name for n in names()}
    assert all(o.model for o in p.options)
    # the smallest models fit a 24 GB GPU; the 397B does not fit 24 GB + 64 GB at all
    assert any(o.model == "Qwen3.5-0.8B" for o in p.options)
    assert not any(o.model == "Qwen3.5-397B-A17B" for o in p.options)
    assert all(o.reason for o in p.rejected)


def test_options_are_within_budget_per_device():
    p = qwenfit.plan("35B-A3B", hardware=machine(16, 64))
    assert p.options
    for o in p.options:
        assert o.estimate is not None
        budget, used = o.estimate.budget or {}, o.estimate.used_by_budget
        assert budget and all(used[d] <= cap for d, cap in budget.items())
        assert o.headroom_bytes >= 0


def test_n_cpu_moe_is_the_smallest_that_fits():
    p = qwenfit.plan("35B-A3B", hardware=machine(12, 64), engines=["llama.cpp"], quants=["Q4_K_M", "Q8_0"])
    offloaded = [o for o in p.options if o.placement and o.placement.kind == "n_cpu_moe"]
    assert offloaded, "a 12 GB GPU needs expert offload for 35B-A3B Q4_K_M"
    for o in offloaded:
        n = o.placement.n_cpu_moe
        kw = dict(context=o.context * o.sequences, sequences=o.sequences, hardware=machine(12, 64))
        assert qwenfit.estimate("35B-A3B", o.quant, n_cpu_moe=n, **kw).fits
        assert not qwenfit.estimate("35B-A3B", o.quant, n_cpu_moe=n - 1, **kw).fits
        assert f"--n-cpu-moe {n}" in o.command


def test_dense_model_reduces_context_before_offloading_layers():
    p = qwenfit.plan("27B", hardware=machine(24, 64), engines=["llama.cpp"], quants=["Q4_K_M"], context="max")
    best = p.best
    assert best is not None and best.placement.kind == "gpu"
    assert 4096 <= best.context < 262144 and best.context == best.max_context
    assert any("context reduced" in n for n in best.notes)
    # one more 256-token step does not fit
    kw = dict(sequences=1, hardware=machine(24, 64))
    assert not qwenfit.estimate("27B", "Q4_K_M", context=best.max_context + 256, **kw).fits


def test_rejected_options_say_why():
    p = qwenfit.plan("397B-A17B", hardware=machine(24, 32), engines=["llama.cpp"], quants=["Q4_K_M"])
    assert not p.fits and p.best is None
    (o,) = p.rejected
    assert "short by" in o.reason
    with pytest.raises(qwenfit.DoesNotFit) as info:
        p.raise_if_not_fits()
    assert info.value.shortfall_bytes > 0
    assert "nothing fits" in str(p)


def test_vllm_tensor_parallel_and_nodes():
    two = machine(80, 256, n=2)
    p = qwenfit.plan("122B-A10B", hardware=two, engines=["vllm"], quants=["fp8"])
    (o,) = p.options
    assert o.placement.tp == 2 and "--tensor-parallel-size 2" in o.command
    p = qwenfit.plan("397B-A17B", hardware=machine(80, 512, n=8), engines=["vllm"], quants=["bf16"])
    assert not p.options  # 807 GB of BF16 weights need more than one node of 8x80 GB
    p = qwenfit.plan("397B-A17B", hardware=machine(80, 512, n=8), engines=["vllm"], quants=["bf16"], nodes=2)
    (o,) = p.options
    assert o.placement.pp == 2 and o.placement.nodes == 2 and "--pipeline-parallel-size 2" in o.command


def test_engine_options_belong_to_their_engine():
    two = machine(96, 256, n=2)
    p = qwenfit.plan("35B-A3B", hardware=two, engines=["vllm"], quants=["bf16"], options={"vllm": {"tp": 1}})
    assert p.options and all(o.placement.tp == 1 for o in p.options)  # given tp=1 the planner keeps it
    free = qwenfit.plan("35B-A3B", hardware=two, engines=["vllm"], quants=["bf16"])
    assert free.options and free.best.placement.tp == 2
    with pytest.raises(qwenfit.SettingError, match="vllm has no option n_cpu_moe"):
        qwenfit.plan("35B-A3B", hardware=two, engines=["vllm"], options={"vllm": {"n_cpu_moe": 3}})
    with pytest.raises(qwenfit.SettingError, match="options for 'sglang', which this plan does not consider"):
        qwenfit.plan("35B-A3B", hardware=two, engines=["vllm"], options={"sglang": {}})


def test_apple_mlx_and_catalog_hardware():
    p = qwenfit.plan("35B-A3B", hardware="m4-max-64", quants=["mlx-4bit", "Q4_K_M"])
    engines = {o.engine for o in p.options}
    assert engines == {"mlx", "llama.cpp"}
    for o in p.options:
        assert "total" in (o.estimate.budget or {})  # unified memory: GPU and CPU share the RAM


def test_bad_input_is_a_typed_error():
    with pytest.raises(qwenfit.UnknownModelError):
        qwenfit.plan("37B", vram_gb=24)
    with pytest.raises(qwenfit.UnknownHardwareError):
        qwenfit.plan("9B", hardware="rtx-4900")
    with pytest.raises(qwenfit.SettingError):
        qwenfit.plan("9B", vram_gb=24, engines=["tensorrt"])
    with pytest.raises(qwenfit.SettingError):
        qwenfit.plan("9B", vram_gb=24, sequences=0)
    with pytest.raises(qwenfit.SettingError):
        qwenfit.plan("9B", hardware="rtx-4090", vram_gb=24)


# --------------------------------------------------------------------------------------------
# properties

MODELS = ["9B", "35B-A3B"]
QUANTS = ["Q8_0", "Q4_K_M", "IQ2_XXS"]


def _best_key(vram: float, ram: float, model: str) -> tuple:
    p = qwenfit.plan(model, hardware=machine(vram, ram), engines=["llama.cpp"], quants=QUANTS)
    return p.best.sort_key()[:4] if p.best else (True,)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(MODELS), vram=st.integers(4, 48), more=st.integers(1, 40), ram=st.integers(8, 128)
)
def test_more_vram_never_gives_a_worse_best_option(model, vram, more, ram):
    assert _best_key(vram + more, ram, model) <= _best_key(vram, ram, model)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(MODELS), vram=st.integers(4, 32), ram=st.integers(8, 96), more=st.integers(1, 64)
)
def test_more_ram_never_removes_an_option(model, vram, ram, more):
    """Options that fit stay when RAM grows — those the command makes its file for included: more RAM may
    set them aside for a published quantization that now fits, never for not fitting."""

    def fitting(r: int) -> set:
        p = qwenfit.plan(model, hardware=machine(vram, r), engines=["llama.cpp"], quants=QUANTS)
        aside = [o for o in p.rejected if o.reason.endswith("(a published quantization fits)")]
        return {(o.model, o.quant, o.engine) for o in (*p.options, *aside)}

    assert fitting(ram) <= fitting(ram + more)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(MODELS), vram=st.integers(4, 48), ram=st.integers(8, 128))
def test_every_option_fits_its_budget_and_its_max_context(model, vram, ram):
    m = machine(vram, ram)
    p = qwenfit.plan(model, hardware=m, engines=["llama.cpp"], quants=QUANTS)
    for o in p.options:
        assert o.estimate.fits
        used = o.estimate.used_by_budget
        assert all(used[d] <= cap for d, cap in o.estimate.budget.items())
        assert o.context <= o.max_context <= 262144
        assert 1 <= o.sequences <= o.max_sequences


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(["0.8B", "9B", "27B", "35B-A3B", "122B-A10B", "Next-80B-A3B"]),
    engine=st.sampled_from(["llama.cpp", "ollama", "vllm"]),
    quant_i=st.integers(0, 5),
    kind=st.sampled_from(["gpu", "cpu"]),
    n_gpus=st.integers(1, 3),
    n_cpu_moe=st.integers(0, 48),
    context=st.integers(1, 300_000),
    sequences=st.integers(1, 8),
    vram=st.integers(4, 200),
    ram=st.one_of(st.none(), st.integers(4, 512)),
    gpu=st.sampled_from([None, "rtx-3090", "a100-80gb-pcie", "rtx-4090", "h100-sxm", "b200"]),
)
def test_compiled_formulas_agree_with_the_engine_functions(
    model, engine, quant_i, kind, n_gpus, n_cpu_moe, context, sequences, vram, ram, gpu
):
    """The planner's fast path (compiled traced formulas) decides exactly like the one assembly, on
    GPUs whose compute capability changes what an engine allocates (vLLM: Marlin's repacking of FP8
    and GPTQ on 8.x, padded MoE widths on 10.x)."""
    from qwenfit.core.engines.base import Placement, get
    from qwenfit.core.fit.planner import PlanModel, Search
    from qwenfit.core.hardware import Target

    spec = qwenfit.load(model)
    gguf = engine != "vllm"
    gguf_quants = ["Q8_0", "Q4_K_M", "IQ2_XXS", "BF16", "Q6_K", "IQ4_XS"]
    quant = (gguf_quants if gguf else ["bf16", "fp8", "gptq"] * 2)[quant_i]
    n_layers = spec.text.num_hidden_layers
    if gguf:
        # expert offload only where the engine has it (Ollama has none: no plan builds such a placement)
        offload = spec.is_moe and kind == "gpu" and get(engine).expert_offload
        n = min(n_cpu_moe, n_layers) if offload else 0
        p = Placement(kind, n_gpus=0 if kind == "cpu" else n_gpus, n_cpu_moe=n)
    else:
        tp = {1: 1, 2: 2, 3: 4}[n_gpus]
        p = Placement("tp", n_gpus=tp, tp=tp)
    devices = () if gpu is None or kind == "cpu" else (device(gpu),) * max(p.n_gpus, 1)
    target = Target(int(vram * 1e9), max(p.n_gpus, 1), None if ram is None else int(ram * 1e9), False,
                    "cpu" if kind == "cpu" and gguf else "cuda", "", (),
                    machine=Machine(name=gpu or "custom", devices=devices))  # fmt: skip
    s = Search(PlanModel(spec, model), get(engine), quant, target)
    try:
        e = s.evaluate(p, context, sequences)
    except ValueError:
        return  # a TP size the model's heads reject
    fast = s.fast_check(p, context, sequences)
    assert fast is not None
    if e.budget:  # judged: the same bytes short, not only the same verdict
        assert fast[0] == e.shortfall_bytes
    assert (fast[0] == 0) == bool(e.fits)


@pytest.mark.parametrize("gpu", ["rtx-3090", "a100-80gb-pcie", "h100-sxm", "b200"])
@pytest.mark.parametrize(
    ("model", "quant", "tp"), [("27B", "fp8", 2), ("27B", "gptq", 1), ("35B-A3B", "fp8", 1)]
)
def test_vllm_formulas_hold_each_gpus_own_weight_bytes(gpu, model, quant, tp):
    """vLLM repacks FP8 and GPTQ linears for Marlin on compute capability 8.x (and pads MoE widths on
    10.x): the planner's fast path shows the same bytes as the assembly there. Its formulas are traced
    once per model for every quant, so they must keep the choice even for a quant it does not change."""
    from qwenfit.core.engines.base import Placement, get
    from qwenfit.core.fit.planner import PlanModel, Search
    from qwenfit.core.hardware import Target

    p = Placement("tp", n_gpus=tp, tp=tp)
    machine_ = Machine(name=gpu, devices=(device(gpu),) * tp)
    target = Target(4 * 10**9, tp, None, False, "cuda", "", (), machine=machine_)  # far too small
    s = Search(PlanModel(qwenfit.load(model), model), get("vllm"), quant, target)
    e = s.evaluate(p, 8192, 1)
    fast = s.fast_check(p, 8192, 1)
    assert fast is not None and e.shortfall_bytes > 0
    assert fast[0] == e.shortfall_bytes
