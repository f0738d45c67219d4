"""Data read at start-up in its compiled form (issue #20): data/quants.json holds exactly what validating
data/quants.yaml gives, and a stale compiled file is ignored rather than believed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from qwenfit.loaders import catalog, quants

REPO = Path(__file__).resolve().parent.parent


def test_compiled_quants_equal_the_validated_yaml():
    quants.quant_quality.cache_clear()
    try:
        fast = quants.quant_quality()
    finally:
        quants.quant_quality.cache_clear()
    assert fast == quants.load_quant_quality(REPO / "data" / "quants.yaml")


def test_committed_quants_json_is_current():
    done = subprocess.run(
        [sys.executable, "scripts/gen_quants_json.py", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_stale_compiled_quants_are_ignored(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(REPO / "data", data, ignore=shutil.ignore_patterns("artifacts"))
    text = (data / "quants.yaml").read_text().replace("quality_rank: 1\n", "quality_rank: 2\n", 1)
    (data / "quants.yaml").write_text(text)  # quants.json now describes another YAML
    monkeypatch.setenv("QWENFIT_DATA_DIR", str(data))
    catalog.clear_caches()
    quants.quant_quality.cache_clear()
    try:
        got = quants.quant_quality()
        want = quants.load_quant_quality(data / "quants.yaml")
        assert got == want and got != quants.load_quant_quality(REPO / "data" / "quants.yaml")
    finally:
        monkeypatch.delenv("QWENFIT_DATA_DIR")
        catalog.clear_caches()
        quants.quant_quality.cache_clear()
