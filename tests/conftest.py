"""Shared test helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run, so a CI run fails on a change, not on a new
# random draw; QWENFIT_HYPOTHESIS=explore draws new examples (run it when touching what they cover).
settings.register_profile("qwenfit", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("QWENFIT_HYPOTHESIS", "qwenfit"))

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def write_config(tmp_path: Path):
    """Write a dict (or raw text) as config.json in a fresh folder; returns the file path."""

    def write(content: dict | str, name: str = "config.json") -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return path

    return write


def _loopback_only() -> None:
    """No test may reach beyond this machine: connections to anything but loopback fail at once.

    This is also the "networking disabled" condition under which catalog names and local files must
    load (they never touch the network)."""
    import socket

    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {host!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    socket.socket.connect = connect  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    _loopback_only()
