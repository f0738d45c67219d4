"""Fixtures for loader tests: ``fake_hub``, a local fake of the Hugging Face Hub.

    def test_something(fake_hub):
        fake_hub.add_repo("Qwen/Tiny", files={"config.json": {...}, "model.safetensors": blob})
        path = hf_hub_download("Qwen/Tiny", "config.json")   # served by the fake, cached in tmp_path
        assert fake_hub.count("GET", "config.json") == 1
        fake_hub.set_offline()                                 # HF_HUB_OFFLINE=1 from now on

See ``tests/fakehub.py`` for the full API (``add_repo``, ``inject``, ``requests``, ``set_token``...).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:  # rootdir-relative import of tests/fakehub.py, whatever pytest's import mode
    sys.path.insert(0, _TESTS)

from fakehub import FakeHub  # noqa: E402


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A running ``FakeHub`` that huggingface_hub talks to, with an empty cache in ``tmp_path``.

    ``HF_ENDPOINT``/``HF_HOME``/``HF_HUB_CACHE`` point at the server and ``tmp_path / "hf_home"`` (for this
    process and any subprocess), the machine's ``HF_TOKEN``/``HF_HUB_OFFLINE``/cache settings are removed,
    and huggingface_hub's retry sleeps are virtual (recorded in ``fake_hub.client_sleeps``). Everything is
    undone, and the server stopped, after the test. The test fails if the fake itself crashed.
    """
    hub = FakeHub().start()
    try:
        hub.use_with_huggingface_hub(monkeypatch, tmp_path / "hf_home")
        yield hub
    finally:
        try:
            from huggingface_hub.utils import close_session
        except ImportError:  # pragma: no cover
            pass
        else:
            close_session()  # drop pooled keep-alive connections to this server
        hub.stop()
    assert not hub.server_errors, "fakehub crashed:\n" + "\n".join(hub.server_errors)
