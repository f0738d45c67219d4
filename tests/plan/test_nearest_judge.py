"""The nearest fit's search over context and sequences asks the planner's judge (its compiled traced
formulas) when the planner deploys the configuration exactly as checked, and keeps its answer where the
assembled estimate confirms the boundary (qwenfit.core.fit.nearest): it must give exactly the
alternatives of assembling every candidate."""

from __future__ import annotations

import pytest

from qwenfit.api import check_result
from qwenfit.core.fit import nearest as nearest_module

JUDGE = nearest_module._planners_judge

# (model, quant, keywords, whether the planner deploys it as checked): configurations that do not fit
CASES = [
    ("35B-A3B", "Q4_K_M", {"vram_gb": 24}, True),  # `qwenfit check` without --context
    ("35B-A3B", "Q4_K_M", {"vram_gb": 8, "ram_gb": 64, "n_cpu_moe": 30}, True),
    ("35B-A3B", "Q4_K_M", {"vram_gb": 24, "kv_cache": "q8_0", "sequences": 3}, True),
    ("27B", "Q4_K_M", {"vram_gb": 24, "context": 65536, "sequences": 4}, True),
    ("27B", "Q8_0", {"vram_gb": 16, "n_gpu_layers": 40, "ram_gb": 32}, True),
    ("9B", "Q4_K_M", {"vram_gb": 8, "mtp": True}, True),
    ("27B", "bf16", {"vram_gb": 48, "engine": "vllm"}, True),
    # vLLM FP8 on compute capability 8.x (Marlin repacking): the judge once allowed 41,552 tokens here, the
    # assembly 40,768 (the formulas lacked w:rank_sm8x, fixed in the vLLM engine); both now say 40,768
    (
        "27B",
        "fp8",
        {"hardware": "2x rtx-3090", "engine": "vllm", "context": 131072, "sequences": 4, "tp": 2},
        True,
    ),
    (
        "35B-A3B",
        "Q8_0",
        {"vram_gb": 24, "ram_gb": 32, "tensor_split": (1.0,)},
        False,
    ),  # -ts: the planner's own
]


def _alternatives(monkeypatch, judged: bool, model: str, quant: str, kw: dict) -> tuple[list, list]:
    used: list[bool] = []

    def judge(*a, **k):
        found = JUDGE(*a, **k) if judged else None
        used.append(found is not None)
        return found

    monkeypatch.setattr(nearest_module, "_planners_judge", judge)
    r = check_result(model, quant, **kw)
    assert not r.estimate.fits
    out = [(a.kind, a.description, a.context, a.sequences, a.estimate, a.command) for a in r.alternatives]
    return out, used


@pytest.mark.parametrize(("model", "quant", "kw", "planned"), CASES)
def test_the_planners_judge_gives_the_assembled_alternatives(monkeypatch, model, quant, kw, planned):
    judged, used = _alternatives(monkeypatch, True, model, quant, kw)
    assembled, _ = _alternatives(monkeypatch, False, model, quant, kw)
    assert judged == assembled
    assert used == [planned]


def test_the_judge_is_used_for_a_plain_check(monkeypatch):
    _, used = _alternatives(monkeypatch, True, "35B-A3B", "Q4_K_M", {"vram_gb": 24})
    assert used == [True]


@pytest.mark.parametrize("judged_boundary", [0, 3, 40, 41, 64, 99])
def test_a_judge_that_disagrees_leaves_the_assembled_answer(judged_boundary):
    calls: list[int] = []

    def fits(n: int) -> bool:
        calls.append(n)
        return n <= 40

    assert nearest_module._largest(fits, lambda n: n <= judged_boundary, 1, 99) == 40
    if judged_boundary == 40:
        assert sorted(calls) == [40, 41]  # confirmed at the boundary alone
    assert nearest_module.largest(fits, 1, 99) == 40
