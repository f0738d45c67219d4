"""The engine conformance suite: every registered engine, and a test-only one (toy_engine.py,
registered here and nowhere else), passes the same checks of the Engine contract
(qwenfit/core/engines/base.py) through the public API and the traced formulas."""

from __future__ import annotations

import dataclasses

import pytest
from toy_engine import TOY

import qwenfit
from qwenfit.api.sources import model_source
from qwenfit.core.command import render_json
from qwenfit.core.engines.base import (
    Deployment,
    FormulaPlacement,
    Placement,
    get,
    names,
    register,
    unregister,
)
from qwenfit.core.expr import evaluate_shared, to_json_shared
from qwenfit.core.fit.formulas import ARTIFACT_FIELDS, placement_env, trace
from qwenfit.core.fit.planner import PlanModel, Search
from qwenfit.core.hardware import target_for
from qwenfit.errors import SettingError
from qwenfit.loaders.hardware import parse_machine

ENGINES = (*names(), TOY.name)  # every registered engine, and the toy one
ENGINE_OBJECTS = {name: TOY if name == TOY.name else get(name) for name in ENGINES}
MODELS = ("9B", "35B-A3B")


@pytest.fixture(scope="module", autouse=True)
def _toy_only_here():
    """The toy engine exists while this module's tests run, and nowhere else (not at collection time,
    so other modules' parametrisations never see it)."""
    register(TOY)
    yield
    unregister(TOY.name)


def _hardware(engine: str) -> str:
    return "m4-max-128" if get(engine).unified_only else "2x h100-sxm"


@pytest.mark.parametrize("engine", ENGINES)
def test_options_are_the_engines_own(engine):
    eng = get(engine)
    eng.options({})
    with pytest.raises(SettingError, match=f"{engine} has no option no_such_option; its options:"):
        eng.options({"no_such_option": 1})
    assert eng.kv_types and eng.default_quant and eng.max_sequences >= 1 and eng.context_step >= 1
    assert eng.accepts(eng.default_quant) is not None
    assert all(eng.accepts(q) == q for q in eng.planner_quants)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("model", MODELS)
def test_memory_never_decreases_and_terms_add_up(engine, model):
    eng = get(engine)
    totals = {}
    for ctx in (4096, 32768, 131072):
        for seqs in [n for n in (1, 2, 4) if n <= eng.max_sequences]:
            e = qwenfit.estimate(
                model, engine=engine, context=ctx, sequences=seqs, hardware=_hardware(engine)
            )
            assert e.engine == engine and e.settings["context"] == ctx and e.settings["sequences"] == seqs
            assert e.total_bytes == sum(e.by_device.values()) == sum(t.bytes for t in e.terms)
            assert all(t.name and t.device and t.source and isinstance(t.exact, bool) for t in e.terms)
            assert e.fits is not None and e.budget
            totals[(ctx, seqs)] = e.total_bytes
    for (ctx, seqs), total in totals.items():
        for (c2, s2), t2 in totals.items():
            if c2 >= ctx and s2 >= seqs:
                assert t2 >= total, (engine, (ctx, seqs), (c2, s2))
    assert eng.context_step == 1 or all(c % eng.context_step == 0 for c, _ in totals)


@pytest.mark.parametrize("engine", [e for e in ENGINES if ENGINE_OBJECTS[e].calc_kv_types])
@pytest.mark.parametrize("model", MODELS)
def test_traced_formulas_and_command_equal_the_engines_integers(engine, model):
    """What the calculator and the planner's fast path evaluate is what the engine computes."""
    eng = get(engine)
    spec = qwenfit.load(model)
    quant = eng.default_quant
    weights = eng.weights(spec, quant, mtp=False, vision=False)
    for fp in eng.formula_placements(spec):
        for kv in eng.calc_kv_types_for(spec):
            traced = trace(spec, eng, kv, fp)
            defs, out = to_json_shared(traced.exprs)
            env = placement_env(spec, eng, weights, fp)
            for ctx, seqs in ((4096, 1), (32768, 3), (262144, 2)):
                d = dataclasses.replace(
                    _deployment(eng, fp, kv, ctx, seqs), gpu_memory_bytes=80 * 10**9, gpu_name="NVIDIA H100"
                )
                o = eng.formula_options(spec, fp, {"n_cpu_moe": 0})
                hw = eng.hardware_inputs(d, o)
                machine = {"n_cpu_moe": 0, "vram": 80 * 10**9, "ram": 10**12}
                point = {**env, **hw, "ctx": ctx, "seqs": seqs, **machine}
                values = evaluate_shared(defs, {k: v for k, v in out.items() if k.startswith("t")}, point)
                plain = eng.terms(spec, eng.inputs(spec, weights, d, o), d, o)
                assert [values[f"t{i}"] for i in range(len(plain))] == [t.bytes for t in plain], (fp, kv, ctx)
                artifact = eng.artifact(model_source(spec, spec.name), quant, d)
                text = {
                    f"a:{k}": getattr(artifact, k)
                    for k in ARTIFACT_FIELDS
                    if getattr(artifact, k) is not None
                }
                rendered = render_json(
                    traced.command.to_json(), {**text, "ctx": ctx, "seqs": seqs, "n_cpu_moe": 0}
                )
                assert rendered == eng.command(artifact, d, o).render()


def _deployment(eng, fp: FormulaPlacement, kv: str, ctx: int, seqs: int):  # type: ignore[no-untyped-def]
    from qwenfit.core.engines.base import Deployment

    return Deployment(context=ctx, sequences=seqs, kv_cache=kv, backend="cpu" if fp.cpu_only else "cuda",
                      n_gpus=max(fp.n_gpus, 1))  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_the_planner_places_it_and_its_command_names_the_deployment(engine):
    eng = get(engine)
    machine = parse_machine(_hardware(engine), ram_gb=None if eng.unified_only else 256)
    spec = qwenfit.load("9B")
    s = Search(
        PlanModel(spec, "Qwen3.5-9B", model_source(spec, "9B")), eng, eng.default_quant, target_for(machine)
    )
    p, why = eng.place(s, 8192, 1, 1)
    assert p is not None, why
    assert s.fits(p, 8192, 1)
    command = s.command(p, 8192, 1)
    assert command
    plan = qwenfit.plan("9B", hardware=machine, engines=[engine], context=8192)
    assert plan.best is not None and plan.best.engine == engine and plan.best.command


@pytest.mark.parametrize("engine", ENGINES)
def test_a_misfit_gets_the_nearest_settings_that_fit(engine):
    hardware = "m4-pro-24" if get(engine).unified_only else "rtx-4060-ti-16gb"
    with pytest.raises(qwenfit.DoesNotFit) as info:
        seqs = min(2, ENGINE_OBJECTS[engine].max_sequences)
        qwenfit.check("27B", engine=engine, context=262144, sequences=seqs, hardware=hardware)
    for a in info.value.alternatives:
        assert a.estimate.fits and a.command


def test_an_engine_registered_at_run_time_is_everywhere():
    assert "toy" in names() and get("toy") is TOY
    e = qwenfit.estimate("9B", engine="toy", context=1000, sequences=2, vram_gb=80, reserve_gib=2)
    assert e.term("runtime_reserve") == 2 << 30
    art = TOY.artifact(model_source(qwenfit.load("9B"), "9B"), "bf16", Deployment(context=1000))
    assert (art.ref, art.make, art.published) == ("Qwen/Qwen3.5-9B", "", True)  # the published BF16 repo
    assert TOY.formula_placement(Placement("gpu")) == FormulaPlacement("gpu1", 1)
