"""Plan mode against qwenfit.plan(): 200 random machines (seeded), each ranked in the page and by
Python; the same options in the same order with the same model, quantization, engine, placement,
context and decode speed (to the last bit) on every machine.

Python's answers are stored in tests/browser/fixtures/plan_parity.json (qwenfit.plan() takes ~0.8 s a
machine; ``python tests/browser/plan_reference.py`` rewrites it); a sample of them is recomputed here
so a stale fixture fails.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from plan_reference import python_rows, random_cases

from qwenfit.export import format_tok_s

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "plan_parity.json"
N_LIVE = 6  # fixture cases recomputed through qwenfit.plan() in this run
N_FORM = 6  # cases also entered through the plan form
RUN_ALL = """(cases) => cases.map((c) => window.qwenfitPlan.rows(c.machine, c.opts))"""
APPLY = """(c) => window.qwenfitPlan.apply(c)"""
SHOWN = """() => [document.querySelector("#qwenfit-plan .qf-glance").textContent,
  [...document.querySelector('#qwenfit-plan tr[data-option="0"]').querySelectorAll("td")][4].textContent]"""


@pytest.fixture(scope="session")
def planner_data(site_dir: Path) -> dict[str, Any]:
    from qwenfit.export import calculator_json
    from qwenfit.export_split import unpack_value

    packed = json.loads((site_dir / "assets" / "calculator" / "planner.json").read_text())
    data = unpack_value(packed, calculator_json()["formulas"])  # as the page reads it
    assert data["schema"] == 1
    return data


@pytest.fixture(scope="session")
def fixture_cases() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def test_fixture_is_what_qwenfit_plan_says(
    planner_data: dict[str, Any], fixture_cases: dict[str, Any]
) -> None:
    cases = fixture_cases["cases"]
    assert len(cases) >= 200
    drawn = random_cases(planner_data, fixture_cases["n"], fixture_cases["seed"])
    assert [(c["machine"], c["opts"]) for c in drawn] == [(c["machine"], c["opts"]) for c in cases], (
        "the case generator changed: python tests/browser/plan_reference.py"
    )
    for i in random.Random(3).sample(range(len(cases)), N_LIVE):
        rows = python_rows(planner_data, cases[i])
        assert rows == cases[i].get("rows"), (
            f"case {i}: qwenfit.plan() now answers differently; python tests/browser/plan_reference.py"
        )


def open_plan(page: Any, server: dict[str, Any]) -> None:
    page.goto(f"{server['url']}/calculator/#mode=plan")
    page.wait_for_selector("#qwenfit-plan[data-ready], #qwenfit-plan[data-error]", timeout=60_000)
    assert page.get_attribute("#qwenfit-plan", "data-error") is None, page.get_attribute(
        "#qwenfit-plan", "data-error"
    )


def test_plan_mode_ranks_as_qwenfit_plan(
    page: Any, server: dict[str, Any], fixture_cases: dict[str, Any], timings: dict[str, float],
    output_dir: Path,
) -> None:  # fmt: skip
    start = time.perf_counter()
    open_plan(page, server)
    timings["plan mode load"] = time.perf_counter() - start
    cases = fixture_cases["cases"]
    start = time.perf_counter()
    got = page.evaluate(RUN_ALL, [{"machine": c["machine"], "opts": c["opts"]} for c in cases])
    timings[f"plan mode {len(cases)} machines"] = time.perf_counter() - start
    same, options, bad = 0, 0, []
    for i, (c, rows) in enumerate(zip(cases, got, strict=True)):
        if "error" in c:
            ok = isinstance(rows, dict) and "error" in rows
        else:
            ok = rows == c["rows"]
            options += len(c["rows"])
        same += ok
        if not ok:
            python = c.get("rows", c.get("error"))
            bad.append(
                {"case": i, "machine": c["machine"], "opts": c["opts"], "python": python, "page": rows}
            )
    summary = {"machines": len(cases), "identical": same, "options_compared": options, "differing": bad[:5]}
    (output_dir / "plan_parity.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"plan mode parity: {same}/{len(cases)} machines identical, {options} options compared")
    assert not bad, json.dumps(bad[:2], indent=1)[:4000]
    # the form gives the same answer as the function it calls
    for c in [c for c in cases if "rows" in c][:N_FORM]:
        assert page.evaluate(APPLY, {"machine": c["machine"], "opts": c["opts"]}) == c["rows"]
        if c["rows"] and c["rows"][0][5] is not None:  # the best option's speed, shown with its range
            speed, (lo, hi) = c["rows"][0][5], c["rows"][0][6]
            shown = f"{format_tok_s(speed)} ({lo}-{hi})"
            glance, cell = page.evaluate(SHOWN)
            assert shown in glance and cell == shown, (shown, glance, cell)
