"""qwenfit against the start-up logs users published (tests/fixtures/field_logs, benchmarks/field).

Every term qwenfit labels exact is equal to the log on every record it reproduces (within the log's
two-decimal MiB), and the committed report (benchmarks/field/results, docs/reports/field.md) is the
rendering of today's scoring."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.field import llama_cpp, report  # noqa: E402

REGENERATE = "stale field report: run `.venv/bin/python -m benchmarks.field` and commit the result"
ROWS = [r for r in llama_cpp.score() if not r.skip]


@pytest.mark.parametrize("term", ["kv_cache", "recurrent_state", "output_buffer"])
def test_exact_terms_equal_every_log(term):
    rows = [r for r in ROWS if r.term == term]
    assert len(rows) >= 39  # every record whose log prints the buffer
    bad = [(r.record, r.device, r.logged, r.predicted) for r in rows if not (r.exact and r.within_print)]
    assert not bad


def test_stock_weights_equal_the_log():
    """Files whose publisher uses llama-quantize's stock mix (Q8_0: tests/fixtures/llama_quantize)."""
    rows = [r for r in ROWS if r.term == "weights" and "q8" in r.record]
    assert len(rows) >= 4
    assert all(r.within_print for r in rows), [(r.record, r.device) for r in rows if not r.within_print]


def test_only_explained_records_are_left_out():
    skipped = {r.record: r.skip for r in llama_cpp.score() if r.skip}
    assert all(why.startswith("not reproduced: ") for why in skipped.values()), skipped
    assert len(skipped) <= 3


def test_report_is_current():
    committed = json.loads((report.RESULTS / "report.json").read_text())
    fresh = json.loads(json.dumps(report.build(), sort_keys=True))
    assert committed["inputs"] == fresh["inputs"], REGENERATE
    assert committed == fresh, REGENERATE
    md = report.render(committed)
    assert (report.RESULTS / "report.md").read_text() == md == report.DOCS.read_text(), REGENERATE
