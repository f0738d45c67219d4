"""The calculator for everyone: axe-core (npm) finds no serious or critical violation in either mode at
desktop and phone sizes; on a 390x844 phone the verdict is above the fold; the results are announced
(aria-live); every control shows where the focus is; the page works from the keyboard alone; the chart's
labels are readable and do not overlap; the page shows no internal file path. Screenshots of each mode
at both sizes go to tests/browser/output.

axe-core is not committed: .ci/run installs it with npm into a cache (``~/.cache/qwenfit-npm``); the
test looks there, in ``.ci/node_modules`` and at ``$QWENFIT_AXE``, and skips, saying so, without it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
AXE_PLACES = [
    os.environ.get("QWENFIT_AXE", ""),
    str(REPO / ".ci" / "node_modules" / "axe-core" / "axe.min.js"),
    str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        / "qwenfit-npm"
        / "node_modules"
        / "axe-core"
        / "axe.min.js"
    ),
]
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
# paths inside this repository (what a visitor cannot open): package modules, tests, data, docs sources
INTERNAL_PATH = re.compile(
    r"\b(?:tests|docs|data|scripts|benchmarks|qwenfit)/[\w./-]+|\bqwenfit\.(?:core|loaders|api|export)\.[\w.]+"
)
MODES = {"check": "#qwenfit-calc[data-ready]", "plan": "#qwenfit-plan[data-ready]"}


def axe_path() -> Path | None:
    return next((Path(p) for p in AXE_PLACES if p and Path(p).is_file()), None)


def open_mode(page: Any, server: dict[str, Any], mode: str, size: dict[str, int]) -> None:
    page.set_viewport_size(size)
    page.goto(f"{server['url']}/calculator/" + ("#mode=plan" if mode == "plan" else ""))
    page.wait_for_selector(MODES[mode], timeout=60_000)
    page.wait_for_timeout(150)  # the chart is drawn on the next animation frame


@pytest.mark.parametrize("mode", ["check", "plan"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_axe_and_screenshots(
    page: Any, server: dict[str, Any], output_dir: Path, mode: str, size: str
) -> None:
    open_mode(page, server, mode, DESKTOP if size == "desktop" else PHONE)
    page.screenshot(path=str(output_dir / f"calculator-{mode}-{size}.png"), full_page=False)
    page.screenshot(path=str(output_dir / f"calculator-{mode}-{size}-full.png"), full_page=True)
    axe = axe_path()
    if axe is None:
        pytest.skip(
            "AXE-CORE NOT FOUND: the accessibility audit did not run. Install it with npm "
            "(npm install --prefix ~/.cache/qwenfit-npm axe-core@4; .ci/run does) or set QWENFIT_AXE"
        )
    page.add_script_tag(path=str(axe))
    result = page.evaluate(
        """() => axe.run(document, {resultTypes: ["violations"]}).then((r) => r.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" "))})))"""
    )
    by_impact: dict[str, int] = {}
    for v in result:
        by_impact[v["impact"]] = by_impact.get(v["impact"], 0) + 1
    (output_dir / f"axe-{mode}-{size}.json").write_text(
        json.dumps({"by_impact": by_impact, "violations": result}, indent=1)
    )
    print(f"axe {mode} {size}: {by_impact or 'no violations'}")
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert not bad, json.dumps(bad, indent=1)


@pytest.mark.parametrize("mode", ["check", "plan"])
def test_phone_verdict_above_the_fold(page: Any, server: dict[str, Any], mode: str) -> None:
    open_mode(page, server, mode, PHONE)
    box = page.locator(f"#qwenfit-{'calc' if mode == 'check' else 'plan'} [data-qf-glance]").bounding_box()
    assert box is not None, "no verdict line"
    assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
    live = page.locator(f"#qwenfit-{'calc' if mode == 'check' else 'plan'} [aria-live]")
    assert live.count() >= 1
    assert live.first.inner_text().strip()


def test_focus_is_visible_on_every_control(page: Any, server: dict[str, Any]) -> None:
    for mode in ("check", "plan"):
        open_mode(page, server, mode, DESKTOP)
        root = "#qwenfit-calc" if mode == "check" else "#qwenfit-plan"
        controls = page.locator(
            f"{root} select:visible, {root} input:visible, {root} button:visible, .qf-mode"
        )
        assert controls.count() > 5
        for i in range(controls.count()):
            c = controls.nth(i)
            if c.is_disabled():
                continue
            c.focus()
            style = c.evaluate(
                "(n) => { const s = getComputedStyle(n); return [s.outlineStyle, s.outlineWidth] }"
            )
            assert style[0] != "none" and float(style[1].removesuffix("px")) >= 2, (mode, i, style)


def test_keyboard_only(page: Any, server: dict[str, Any]) -> None:
    """Tab to the mode switch, open plan mode, tab to the hardware list, pick another GPU with the arrow
    keys: the plan changes; all without the mouse."""
    open_mode(page, server, "check", DESKTOP)
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement?.dataset?.qfMode") == "plan":
            break
    else:
        pytest.fail("the plan-mode button cannot be reached with Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#qwenfit-plan[data-ready]", timeout=60_000)
    before = page.inner_text("#qwenfit-plan [data-qf-glance]")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement?.id") == "qfp-hardware":
            break
    else:
        pytest.fail("the hardware list cannot be reached with Tab")
    for _ in range(6):
        page.keyboard.press("ArrowDown")
    page.wait_for_timeout(200)
    assert page.inner_text("#qwenfit-plan [data-qf-glance]") != before


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_chart_labels_readable(page: Any, server: dict[str, Any], size: str) -> None:
    open_mode(page, server, "check", DESKTOP if size == "desktop" else PHONE)
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('#qwenfit-calc .qf-chart-svg text')].map((t) => {
            const r = t.getBoundingClientRect();
            return {text: t.textContent, x: r.x, y: r.y, w: r.width, h: r.height};
        })"""
    )
    assert boxes
    for b in boxes:
        assert b["h"] >= 10, f"label {b['text']!r} is {b['h']:.1f} px high"
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap_x = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
            overlap_y = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
            assert overlap_x <= 1 or overlap_y <= 1, f"labels {a['text']!r} and {b['text']!r} overlap"


@pytest.mark.parametrize("mode", ["check", "plan"])
def test_no_internal_paths_shown(page: Any, server: dict[str, Any], mode: str) -> None:
    open_mode(page, server, mode, DESKTOP)
    text = page.inner_text("article")
    found = INTERNAL_PATH.findall(text)
    assert not found, found
