"""The nearest-fit search plans smaller quantizations a quality step at a time and stops once two fit
(qwenfit.core.fit.nearest): it must give exactly the alternatives of planning every one of them."""

from __future__ import annotations

import pytest

from qwenfit.api import check_result
from qwenfit.core.fit import nearest as nearest_module

PLANNED = nearest_module._planned

CASES = [  # (model, quant, engine, hardware): configurations that do not fit, on several machines
    ("35B-A3B", "Q4_K_M", "llama.cpp", {"vram_gb": 24}),  # `qwenfit check` without --context
    ("35B-A3B", "Q8_0", "llama.cpp", {"vram_gb": 24, "ram_gb": 32}),
    ("27B", "Q6_K", "llama.cpp", {"vram_gb": 16}),
    ("122B-A10B", "Q4_K_M", "llama.cpp", {"vram_gb": 24, "ram_gb": 64}),
    ("9B", "BF16", "llama.cpp", {"hardware": "rtx-3060"}),
    ("397B-A17B", "Q4_K_M", "llama.cpp", {"hardware": "m4-max-128"}),
    ("27B", "bf16", "vllm", {"vram_gb": 48}),
]


def _alternatives(monkeypatch, exhaustive: bool, model: str, quant: str, engine: str, hw: dict) -> list:
    monkeypatch.setattr(
        nearest_module, "_planned", lambda *a, **k: PLANNED(*a, **{**k, "exhaustive": exhaustive})
    )
    r = check_result(model, quant, engine=engine, **hw)
    assert not r.estimate.fits
    return [
        (a.kind, a.description, a.quant, a.context, a.placement, a.estimate, a.command)
        for a in r.alternatives
    ]


@pytest.mark.parametrize(("model", "quant", "engine", "hw"), CASES)
def test_pruned_search_gives_the_exhaustive_alternatives(monkeypatch, model, quant, engine, hw):
    pruned = _alternatives(monkeypatch, False, model, quant, engine, hw)
    assert pruned == _alternatives(monkeypatch, True, model, quant, engine, hw)


def test_quality_steps_rank_best_first():
    from qwenfit.core.engines.base import get
    from qwenfit.loaders.quants import quality_key

    engine = get("llama.cpp")
    steps = nearest_module._quality_steps(
        engine, ["Q2_K", "Q3_K_M", "Q4_K_S", "IQ4_XS", "Q3_K_S"], quality_key
    )
    flat = [q for step in steps for q in step]
    assert sorted(flat) == sorted(["Q2_K", "Q3_K_M", "Q4_K_S", "IQ4_XS", "Q3_K_S"])
    assert flat.index("Q4_K_S") < flat.index("Q3_K_M") < flat.index("Q2_K")


def test_pruned_search_places_fewer_quants(monkeypatch):
    from qwenfit.core.fit import planner

    placed: list[str] = []
    plan_one = planner.plan_one
    monkeypatch.setattr(planner, "plan_one", lambda *a, **k: (placed.append(a[2]), plan_one(*a, **k))[1])
    model, quant, engine, hw = CASES[1]
    _alternatives(monkeypatch, False, model, quant, engine, hw)
    pruned = list(placed)
    placed.clear()
    _alternatives(monkeypatch, True, model, quant, engine, hw)
    assert len(pruned) == len(set(pruned))  # each quant placed once
    assert set(pruned) < set(placed)
