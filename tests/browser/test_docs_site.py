"""The docs site in a real browser: it builds in strict mode, every page loads only from the local
server, and the calculator shows exactly what Python computes (1,000 random configurations)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from calc_reference import STATE_KEYS, expected_texts, random_states

import qwenfit
import qwenfit.cli

pytestmark = pytest.mark.browser

N_PARITY = 1000
PAGES = [
    "",
    "calculator/",
    "concepts/",
    "engines/",
    "engines/llama-cpp/",
    "engines/ollama/",
    "engines/lm-studio/",
    "engines/vllm/",
    "engines/sglang/",
    "engines/mlx/",
    "quantizations/",
    "generated/quant-sizes/",
    "api/",
    "cli/",
]
SCREENSHOT_STATE = {
    "model": "35B-A3B", "engine": "llama.cpp", "quant": "Q4_K_M", "kv": "q8_0", "placement": "gpu1",
    "n_cpu_moe": 0, "ctx": 131072, "seqs": 1, "hardware": "rtx-4090", "vram_gb": 24, "ram_gb": 64,
}  # fmt: skip
N_LIBRARY = 20  # configurations also computed through qwenfit.estimate (~0.2 s each)
APPLY_ALL = """(states) => states.map((s) => {
    const texts = window.qwenfitCalc.apply(s);
    const root = document.getElementById("qwenfit-calc");
    return {texts, state: {...window.qwenfitCalc.state}, error: root.dataset.error || null};
})"""


@pytest.fixture(scope="session")
def calculator_data(site_dir: Path) -> dict[str, Any]:
    path = site_dir / "assets" / "calculator.json"
    data = json.loads(path.read_text())
    assert data["schema"] == 2
    return data


def open_calculator(page: Any, server: dict[str, Any], fragment: str = "") -> None:
    page.goto(f"{server['url']}/calculator/{fragment}")
    page.wait_for_selector("#qwenfit-calc[data-ready], #qwenfit-calc[data-error]")
    error = page.get_attribute("#qwenfit-calc", "data-error")
    assert error is None, error


def test_site_has_every_page(site_dir: Path):
    for p in PAGES:
        assert (site_dir / p / "index.html").exists(), p
    cli = (site_dir / "cli" / "index.html").read_text()
    assert "usage: qwenfit" in cli
    parser = qwenfit.cli.build_parser()
    commands = next(
        a.choices for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)
    )
    for name in commands:
        assert f"usage: qwenfit {name}" in cli, f"the CLI reference lacks `qwenfit {name}`"
    api = (site_dir / "api" / "index.html").read_text()
    for name in qwenfit.__all__:
        if name == "__version__":
            continue
        # a function that shadows its own submodule (qwenfit.plan) is documented under its module
        anchors = {f'id="qwenfit.{name}"', f'id="{getattr(getattr(qwenfit, name), "__module__", "")}.{name}"'}
        assert any(a in api for a in anchors), f"the API reference lacks qwenfit.{name}"


LOADS_FROM_OUTSIDE = re.compile(
    r"<(?:script|img|iframe|source|embed)\b[^>]*\bsrc=[\"']?(?:https?:)?//"
    r"|<link\b[^>]*\bhref=[\"']?(?:https?:)?//[^>]*>"
    r"|url\(\s*[\"']?(?:https?:)?//",
    re.I,
)


def test_the_built_site_references_nothing_outside(site_dir: Path):
    """No page or stylesheet loads a script, font, image or style from another host (links to
    other sites are fine: they load nothing)."""
    found = []
    for path in [*site_dir.rglob("*.html"), *site_dir.rglob("*.css")]:
        for m in LOADS_FROM_OUTSIDE.finditer(path.read_text(errors="replace")):
            found.append(f"{path.relative_to(site_dir)}: {m[0][:120]}")
    assert not found, "\n".join(found[:20])


def test_every_page_loads_only_from_the_local_server(page, server, site_dir):
    for p in PAGES:
        if p == "calculator/" and not (site_dir / "assets" / "calculator.json").exists():
            continue  # without its data the page reports the missing file (a console error)
        page.goto(f"{server['url']}/{p}")
        page.wait_for_load_state("load")
        assert page.title(), p
    # (the page fixture fails the test on any request beyond 127.0.0.1 and on any console error)


def test_calculator_renders_and_screenshot(page, server, calculator_data, output_dir, timings):
    open_calculator(page, server)
    # the page carries its scripts, the index and its first model inline (docs/_hooks/qwenfit_docs.py);
    # the other models come from the split export (qwenfit-data.mjs)
    inline = 'script[data-qf-file="index.json"], script[data-qf-file="35B-A3B.json"], script[type=module]'
    assert page.locator(inline).count() == 3
    page.wait_for_selector("#qwenfit-calc[data-ready]")
    assert "/assets/calculator/27B.json" in server["requested"]
    texts = page.evaluate("(s) => window.qwenfitCalc.apply(s)", SCREENSHOT_STATE)
    assert texts == expected_texts(calculator_data, SCREENSHOT_STATE)
    page.wait_for_selector("[data-qf=chart] svg path[data-quant]")
    assert page.locator("[data-qf=devices] .qf-seg").count() >= 5
    assert page.locator("[data-qf=chart] svg path[data-quant]").count() >= 4
    assert page.locator("[data-qf=chart] svg .qf-budget").count() == 1
    start = time.perf_counter()
    page.screenshot(path=str(output_dir / "calculator.png"), full_page=True)
    timings["screenshot"] = time.perf_counter() - start
    assert (output_dir / "calculator.png").stat().st_size > 20_000


def test_calculator_follows_the_form(page, server, calculator_data):
    """Real input: choosing and typing in the form updates the page and the address."""
    data = calculator_data
    open_calculator(page, server)
    page.select_option("[data-qf-input=model]", "122B-A10B")
    page.select_option("[data-qf-input=quant]", "Q3_K_M")
    page.select_option("[data-qf-input=kv]", "q8_0")
    page.fill("[data-qf-input=ctx]", "100000")
    page.fill("[data-qf-input=seqs]", "2")
    page.select_option("[data-qf-input=hardware]", "custom")
    page.fill("[data-qf-input=vram_gb]", "47.5")
    page.fill("[data-qf-input=n_cpu_moe]", "12")
    page.fill("[data-qf-input=ram_gb]", "96.25")
    page.locator("[data-qf-input=ram_gb]").press("Tab")
    state = page.evaluate("() => window.qwenfitCalc.state")
    want = {
        "model": "122B-A10B", "engine": "llama.cpp", "quant": "Q3_K_M", "kv": "q8_0", "placement": "gpu1",
        "n_cpu_moe": 12, "ctx": 100000, "seqs": 2, "hardware": "custom", "vram_gb": 47.5, "ram_gb": 96.25,
    }  # fmt: skip
    assert {k: state[k] for k in STATE_KEYS} == {k: want[k] for k in STATE_KEYS}
    shown = page.evaluate("() => window.qwenfitCalc.readTexts()")
    assert shown == expected_texts(data, want)
    assert shown["speed"] == "not known"  # custom hardware: no rate constants
    # the address keeps the settings: loading it again shows the same
    url = page.url
    assert "ctx=100000" in url and "m=122B-A10B" in url and "ncm=12" in url
    page.goto("about:blank")
    page.goto(url)
    page.wait_for_selector("#qwenfit-calc[data-ready]")
    assert page.evaluate("() => window.qwenfitCalc.readTexts()") == shown


def _page_results(page: Any, states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return page.evaluate(APPLY_ALL, states)


def _mismatches(
    states: list[dict[str, Any]], expected: list[dict[str, Any]], got: list[dict[str, Any]]
) -> list:
    bad = []
    for st, want, g in zip(states, expected, got, strict=True):
        shown_state = {k: g["state"][k] for k in st}
        if "error" in want:
            ok = g["error"] is not None
        else:
            ok = g["error"] is None and shown_state == st and g["texts"] == want
        if not ok:
            keys = {*want, *g["texts"]}
            diff = {k: (want.get(k), g["texts"].get(k)) for k in keys if want.get(k) != g["texts"].get(k)}
            bad.append({"state": st, "page_state": shown_state, "page_error": g["error"], "diff": diff})
    return bad


def test_calculator_parity_with_python(page, server, calculator_data, timings):
    """1,000 random configurations: every string the page shows equals Python's evaluation of the
    same export (qwenfit.export.evaluate_export), and where Python cannot evaluate one, the page
    refuses it too."""
    data = calculator_data
    assert "(bytes + 5_000_000) // 10_000_000" in data["display"]["gb"], "the GB rounding changed"
    assert "floor(x + 0.5)" in data["display"]["tok_s"], "the tok/s rounding changed"
    states = random_states(data, N_PARITY, seed=8)
    start = time.perf_counter()
    expected = [expected_texts(data, st) for st in states]
    timings["parity: python"] = time.perf_counter() - start
    open_calculator(page, server)
    start = time.perf_counter()
    got = _page_results(page, states)
    timings["parity: browser"] = time.perf_counter() - start
    bad = _mismatches(states, expected, got)
    assert not bad, (
        f"{len(bad)} of {len(states)} configurations differ; first: {json.dumps(bad[:3], indent=1)}"
    )
    verdicts = [t.get("verdict", "error") for t in expected]
    assert {"Fits", "Does not fit"} <= set(verdicts), set(verdicts)
    assert verdicts.count("error") <= N_PARITY // 10, (
        f"{verdicts.count('error')} configurations cannot be evaluated"
    )


def test_calculator_matches_the_library(page, server, calculator_data, timings):
    """A sample computed through qwenfit.estimate (qwenfit.export.evaluate_config), not the export:
    the page shows the same."""
    from qwenfit.export import evaluate_config

    data = calculator_data
    states = [st for st in random_states(data, 200, seed=9) if "error" not in expected_texts(data, st)]
    states = states[:N_LIBRARY]
    start = time.perf_counter()
    expected = [evaluate_config(dict(st)) for st in states]  # the launch command from the engine too
    timings["library"] = time.perf_counter() - start
    open_calculator(page, server)
    bad = _mismatches(states, expected, _page_results(page, states))
    assert not bad, (
        f"{len(bad)} of {len(states)} differ from qwenfit.estimate: {json.dumps(bad[:3], indent=1)}"
    )
