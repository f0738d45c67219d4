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


# compute buffers equal to the log through llama.cpp's rules by build and ggml-vulkan's reorder
# (qwenfit/core/engines/llama_cpp/versions.py, vulkan_order.py; scripts/README-fake-gpu.md)
COMPUTE_EQUAL = {
    ("lcpp-hilbertraum-3090-vk-2b-sweep", "Vulkan0"),  # Vulkan reorder without PR #27220/#27812
    ("lcpp-hilbertraum-3090-vk-4b-sweep", "Vulkan0"),
    ("lcpp-hilbertraum-3090-vk-9b-sweep", "Vulkan0"),
    ("lcpp-hilbertraum-3090-vk-q36-27b-q4-sweep", "Vulkan0"),
    ("lcpp-hilbertraum-3090-vk-35ba3b-sweep", "Vulkan0"),  # no graph_optimize allocation deps
    ("lcpp-gh-t4-9b-q8-64k-q8kv", "CUDA0"),  # output rows in the last layer before MTP support
    ("lcpp-gh-t4-9b-q8-64k-q8kv", "CUDA_Host"),  # no Hadamard KV rotation before PR #21038
    ("lcpp-gh-pro6000-35ba3b-q4kxl-64k", "CUDA0"),  # no build number: the era of its log format
    ("lcpp-ggml-i20153-27b-q8-2x3090", "CUDA0"),  # unfused Gated DeltaNet (b8210)
    ("lcpp-ggml-i20153-27b-q8-2x3090", "CUDA1"),  # the norm pinned to its layer's device
    ("lcpp-ggml-i20153-27b-q8-2x3090", "CUDA_Host"),  # pass 6: only the inputs a node reads
    ("lcpp-ggml-i20024-35ba3b-2xmi60-rocm", "ROCm0"),
    ("lcpp-rumac-m4pro-9b-mtp-131k-fit", "MTL0"),  # the logged context's own compute terms
    ("lcpp-rumac-m4pro-9b-mtp-131k-fit", "CPU"),  # F32 KQ mask in b9222
}


def test_compute_buffers_equal_the_log_by_build():
    rows = {(r.record, r.device): r for r in ROWS if r.term == "compute_buffer"}
    assert set(rows) >= COMPUTE_EQUAL
    bad = [(k, rows[k].logged, rows[k].predicted) for k in sorted(COMPUTE_EQUAL) if not rows[k].within_print]
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
