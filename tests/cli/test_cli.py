"""The qwenfit command, driven as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

QWENFIT = [str(Path(sys.executable).parent / "qwenfit")]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*QWENFIT, *args], capture_output=True, text=True)


def test_models_table():
    r = run("models")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["model", "total", "params"]
    row = next(line for line in lines if line.startswith("Qwen3.5-397B-A17B"))
    assert "403,397,928,944" in row and "17.35B" in row and "60 (45 GDN + 15 attn)" in row
    assert sum(1 for line in lines if line.startswith("Qwen")) == 11


def test_inspect():
    r = run("inspect", "qwen/qwen3.5-122b-a10b")
    assert r.returncode == 0, r.stderr
    assert "total 125,086,497,008" in r.stdout and "active 9,771,288,576" in r.stdout
    assert "expert_gate" in r.stdout


def test_unknown_model_exits_2_with_one_line():
    r = run("inspect", "Qwen3.5-36B")
    assert r.returncode == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "Did you mean" in r.stderr


def test_bad_config_exits_2(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    r = run("inspect", str(tmp_path))
    assert r.returncode == 2 and "model_type: 'llama' is not a Qwen3.5" in r.stderr


def test_usage_error_exits_2():
    assert run().returncode == 2
    assert run("frobnicate").returncode == 2


def test_inspect_files_shows_the_checkpoint_match(tmp_path):
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    r = run("inspect", str(fixtures / "gguf" / "moe-vision-mtp-Q8_0.gguf"))
    assert r.returncode == 0, r.stderr
    assert "files    gguf Q8_0: 1 file(s), 96 tensors" in r.stdout
    assert "match    exact" in r.stdout
