"""Generated documents stay in step with the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quant_size_tables_are_current():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_quant_tables.py"), "--check"],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
