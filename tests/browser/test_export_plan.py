"""Plan mode's extra formulas (qwenfit.export_plan.trace_placement: llama.cpp -ngl and -ts placements)
evaluated in Python equal what the planner's own Search computes for the same placement, term by term
(no browser: the exported trees through qwenfit.core.expr)."""

from __future__ import annotations

from typing import Any

import pytest

from qwenfit.api import plan_model
from qwenfit.core.engines.base import FormulaPlacement, Placement, get
from qwenfit.core.expr import evaluate_shared
from qwenfit.core.fit.planner import Search
from qwenfit.core.hardware import Machine, target_for
from qwenfit.export_plan import plan_env, trace_placement
from qwenfit.loaders.catalog import find, load_catalog_model
from qwenfit.loaders.hardware import device

CASES = [
    ("27B", "Q4_K_M", 1, Placement("ngl", n_gpus=1, n_gpu_layers=20), 0),
    ("27B", "Q8_0", 2, Placement("ngl", n_gpus=2, n_gpu_layers=47), 0),
    ("9B", "Q6_K", 1, Placement("ngl", n_gpus=1, n_gpu_layers=1), 0),
    ("35B-A3B", "Q4_K_M", 2, Placement("n_cpu_moe", n_gpus=2, n_cpu_moe=7, tensor_split=(3, 2)), 7),
    ("35B-A3B", "Q6_K", 1, Placement("ngl", n_gpus=1, n_gpu_layers=30), 0),
]


@pytest.mark.parametrize(("model", "quant", "n", "p", "n_cpu_moe"), CASES)
def test_traced_placement_equals_the_planner(model: str, quant: str, n: int, p: Any, n_cpu_moe: int) -> None:
    spec = load_catalog_model(find(model).name)  # type: ignore[union-attr]
    engine = get("llama.cpp")
    engine.prepare_formulas(spec)
    dev = device("rtx-3060")
    machine = Machine(name=dev.id, devices=(dev,) * n, ram_bytes=64 * 10**9)
    target = target_for(machine)
    s = Search(plan_model(spec, model), engine, quant, target)
    fp = FormulaPlacement(f"gpu{n}-test", n)
    rec = trace_placement(spec, engine, "f16", fp, p)
    w = engine.artifact_weights(spec, s.artifact, quant, mtp=False, vision=False)
    env: dict[str, Any] = {**plan_env(spec, engine, w, fp, p), **engine.calc_hardware_inputs(dev, fp)}
    for ctx, seqs in ((4096, 1), (32768, 1), (65536, 2)):
        env.update(
            vram=target.vram_bytes, ram=target.ram_bytes, ctx=ctx, seqs=seqs, n_cpu_moe=n_cpu_moe, depth=4096
        )
        exprs = {f"t{i}": t["bytes"] for i, t in enumerate(rec["terms"])}
        exprs.update({f"b:{d}": b for d, b in rec["budget"].items()})
        got = evaluate_shared(rec["defs"], exprs, env)
        e = s.evaluate(p, ctx, seqs)
        assert [(t["name"], t["device"], got[f"t{i}"]) for i, t in enumerate(rec["terms"])] == [
            (t.name, t.device, int(t.bytes)) for t in e.terms
        ]
        assert {d: got[f"b:{d}"] for d in rec["budget"]} == dict(e.budget or {})


@pytest.mark.parametrize("name", ["planner", "variants"])
def test_the_sites_plan_data_unpacks_to_the_export_exactly(site_dir: Any, name: str) -> None:
    """assets/calculator/planner.json and variants.json are packed (qwenfit.export_split.plan_files),
    their formula records patches of the calculator's; unpacked with those they are
    qwenfit.export_plan's JSON byte for byte (the whole export's size: benchmarks/startup_page.py)."""
    import json

    from qwenfit import export_plan
    from qwenfit.export import calculator_json
    from qwenfit.export_split import unpack_value

    packed = json.loads((site_dir / "assets" / "calculator" / f"{name}.json").read_text())
    text = json.dumps(getattr(export_plan, f"{name}_json")(), separators=(",", ":"))
    assert json.dumps(unpack_value(packed, calculator_json()["formulas"]), separators=(",", ":")) == text
