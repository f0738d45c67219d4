"""Hub failures in a fresh interpreter, with none of the fake Hub's imports (regression, issue 16).

``qwenfit inspect <repo id outside the catalog>`` crashed with "internal error: AttributeError: No
huggingface_hub attribute errors" (exit 3): hub.py read ``huggingface_hub.errors`` before anything
imported that submodule, and the in-process tests missed it because the fake Hub's fixture had
imported it first. These tests run qwenfit in a subprocess with a clean environment, offline
(``HF_HUB_OFFLINE=1``) and with an endpoint nobody answers on (``HF_ENDPOINT=http://127.0.0.1:9``, a
closed port): one clean error line, exit code 2, no traceback, fast (no retry loop).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses

REPO_ROOT = Path(__file__).resolve().parents[2]
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there
SOURCES = ["Qwen/Qwen3.5-35B-A3B-FP8", "unsloth/Qwen3.5-35B-A3B-GGUF:Q4_K_M", "Acme/Nothing-GGUF"]
MODES = {
    "offline": ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE"),
    "unreachable": ({"HF_ENDPOINT": CLOSED}, CLOSED),
}


def _env(tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    """The machine's environment without its Hugging Face settings, an empty HF cache, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING")) and k != "QWENFIT_DEBUG"
    }
    env.update(
        HF_HOME=str(tmp_path / "hf_home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        QWENFIT_CACHE=str(tmp_path / "qwenfit"),
        **extra,
    )
    return env


def _run(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    return done, time.monotonic() - started


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", SOURCES)
def test_cli_prints_one_error_line_and_exits_2(tmp_path, mode, source):
    extra, hint = MODES[mode]
    done, seconds = _run(["-m", "qwenfit", "inspect", source], _env(tmp_path, extra))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    line = lines[0]
    repo = source.partition(":")[0]
    assert line.startswith("qwenfit inspect: error: ") and repo in line and hint in line, line
    assert "not in the local Hugging Face cache" in line
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert done.stdout == ""
    assert seconds < 20  # huggingface_hub's download retries (about 23 s) are not waited for


_PROBE = """
import json, sys
before = sorted(m for m in sys.modules if m.startswith("huggingface_hub"))
import qwenfit
from qwenfit.errors import HubError
try:
    qwenfit.load(sys.argv[1])
except HubError as exc:
    out = {"type": "HubError", "repo_id": exc.repo_id, "message": str(exc)}
    out["os_error"] = isinstance(exc, OSError)
except BaseException as exc:
    out = {"type": type(exc).__name__, "message": str(exc)}
else:
    out = {"type": None}
out["hf_imported_before"] = before
print(json.dumps(out))
"""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", SOURCES)
def test_load_raises_hub_error(tmp_path, mode, source):
    extra, hint = MODES[mode]
    done, _ = _run(["-c", _PROBE, source], _env(tmp_path, extra))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["hf_imported_before"] == []  # nothing imported huggingface_hub's submodules for us
    assert out["type"] == "HubError", out
    assert out["repo_id"] == source.partition(":")[0] and out["os_error"]
    assert hint in out["message"] and len(out["message"].splitlines()) == 1
    assert done.stderr == ""  # no warnings from huggingface_hub's retry loop either


def test_this_module_imports_no_fake_hub():
    """The point of this file: nothing here may import the fake Hub (tests/fakehub.py) or huggingface_hub."""
    import ast

    tree = ast.parse(Path(__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert not imported & {"fakehub", "huggingface_hub"}
