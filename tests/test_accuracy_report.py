"""The committed accuracy report (benchmarks/accuracy/results, docs/reports/accuracy.md) is current.

It must be regenerated (``.venv/bin/python -m benchmarks.accuracy``) whenever a fixture it reads
changes or qwenfit's predictions change. This test re-derives the report's sections from the
committed fixtures (the GGUF section for two representative files; the full run takes seconds, not
milliseconds) and compares them with the committed report.json, then checks that both Markdown copies
are the rendering of that JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.accuracy import render, report  # noqa: E402

RESULTS = REPO / "benchmarks" / "accuracy" / "results"
DOCS = REPO / "docs" / "reports" / "accuracy.md"
REGENERATE = "stale accuracy report: run `.venv/bin/python -m benchmarks.accuracy` and commit the result"


@pytest.fixture(scope="module")
def committed() -> dict:
    return json.loads((RESULTS / "report.json").read_text())


def _roundtrip(x: object) -> object:
    return json.loads(json.dumps(x, sort_keys=True))


def test_inputs_unchanged(committed):
    assert committed["inputs"] == report.input_hashes(), REGENERATE


def test_markdown_is_the_rendering_of_the_json(committed):
    md = render.render(committed)
    assert (RESULTS / "report.md").read_text() == md, REGENERATE
    assert DOCS.read_text() == md, REGENERATE


@pytest.mark.parametrize(
    "section",
    ["params", "llama_memory", "vllm", "published", "speed", "peers"],
)
def test_section_is_current(committed, section):
    fresh = getattr(report, f"{section}_section")()
    assert _roundtrip(fresh) == committed[section], f"{section}: {REGENERATE}"


@pytest.mark.parametrize("stem", ["Qwen3.5-35B-A3B", "tiny-moe-vision-mtp"])
def test_gguf_rows_are_current(committed, stem):
    rows = report.gguf_fixture_rows(report.FIX / "llama_quantize" / f"{stem}.json")
    assert _roundtrip(report.file_summary(rows)) == committed["gguf"]["by_file"][stem], REGENERATE


def test_headline_figures(committed):
    """The claims the README and the docs quote, read back from the committed report."""
    assert committed["params"]["groups"]["published"]["summary"]["exact"] == 11
    assert committed["gguf"]["all"]["exact"] == committed["gguf"]["all"]["n"] >= 800
    for term in ("n_ctx", "kv", "recurrent", "output", "model"):
        s = committed["llama_memory"]["exact"][term]
        assert s["exact"] == s["n"], term
    assert committed["llama_memory"]["compute"]["server"]["max_abs_err_pct"] <= 5
    assert committed["vllm"]["rows_all_fields_exact"] == committed["vllm"]["rows"] == 528
    assert committed["published"]["exact_summary"]["max_abs_err"] <= 1024
    assert all(r["matches_rounding"] for r in committed["published"]["rounded"])
    assert committed["peers"]["summary"]["qwenfit"]["kv"]["exact"] == len(committed["peers"]["rows"])
