"""Helpers for the CLI tests: run ``qwenfit`` as a subprocess (the real thing) and check errors.

``tests/cli`` is on ``sys.path`` under pytest (rootdir-relative test modules), so tests import this
as ``from cli_helpers import ...``; the in-process runner is the ``cli`` fixture in conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
# QWENFIT_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/cli  rewrites tests/cli/snapshots/
UPDATE_SNAPSHOTS = os.environ.get("QWENFIT_UPDATE_SNAPSHOTS", "") not in ("", "0")


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def run_subprocess(*args: str, env: dict[str, str] | None = None) -> Result:
    """``python -m qwenfit ...`` as a child process, from the repository root."""
    r = subprocess.run(
        [sys.executable, "-m", "qwenfit", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    return Result(r.returncode, r.stdout, r.stderr)


def assert_one_line_error(r: Result, code: int = 2) -> str:
    """Exit ``code``, nothing on stdout, exactly one line on stderr and no traceback."""
    assert r.code == code, (r.code, r.out, r.err)
    assert r.out == ""
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert "Traceback" not in r.err
    assert lines[0].startswith("qwenfit"), lines[0]
    return lines[0]
