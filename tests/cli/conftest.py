"""Fixtures for the CLI tests (helpers: cli_helpers.py)."""

from __future__ import annotations

import pytest
from cli_helpers import Result

import qwenfit.cli


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """``cli("check", "9B", ...)`` runs ``qwenfit.cli.main`` in-process: exit code, stdout, stderr."""
    monkeypatch.delenv("NO_COLOR", raising=False)

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = qwenfit.cli.main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
