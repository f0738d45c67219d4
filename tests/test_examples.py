"""Every script in examples/ runs, with the arguments below, and prints what it promises.

Nothing is launched: the pre-flight wrapper only prints the command it would run, and its --exec
path is exercised against a stand-in ``llama-server`` on PATH that only echoes its arguments.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

# script -> list of (arguments, expected exit code, text the output must contain)
RUNS: dict[str, list[tuple[list[str], int, str]]] = {
    "plan_for_machine.py": [
        (["--model", "35B-A3B", "--model", "27B"], 0, "pre-flight: fits"),
        (["--vram", "16", "--ram", "32", "--model", "9B", "--context", "65536"], 0, "run the best one with:"),
    ],
    "preflight_launch.py": [
        (
            ["35B-A3B", "--quant", "Q4_K_M", "--context", "65536", "--gpu", "rtx-4090", "--ram", "64"],
            0,
            "would run: llama-server -hf unsloth/Qwen3.5-35B-A3B-GGUF:Q4_K_M --no-mmproj -c 65536",
        ),
        (
            ["27B", "--quant", "fp8", "--engine", "vllm", "--context", "32768", "--gpu", "2x rtx-4090"],
            0,
            "would run: vllm serve Qwen/Qwen3.5-27B-FP8 --tensor-parallel-size 2",
        ),
        (["35B-A3B", "--quant", "Q4_K_M", "--vram", "24", "--ram", "64"], 1, "does NOT fit: short by"),
        (["35B-A3B", "--quant", "Q4_K_M", "--vram", "24", "--ram", "64", "--fallback"], 0, "falling back to"),
        (["35B-A3B", "--quant", "Q4_K_X", "--vram", "24"], 2, "Did you mean 'Q4_K_S', 'Q4_K_M'"),
    ],
    "pick_from_plan_json.py": [
        (["--gpu", "rtx-4090", "--ram", "64", "--min-context", "65536", "--min-speed", "30"], 0, "best: "),
    ],
}


def run(script: str, args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(EXAMPLES / script), *args]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=300, **kw)


def test_every_example_is_run():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(RUNS)


@pytest.mark.parametrize(
    ("script", "args", "code", "expected"),
    [(script, *case) for script, cases in RUNS.items() for case in cases],
    ids=lambda v: v if isinstance(v, str) and v.endswith(".py") else None,
)
def test_example_runs(script, args, code, expected):
    r = run(script, args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert expected in r.stdout + r.stderr, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr


def test_json_consumer_reads_stdin():
    plan = subprocess.run(
        [sys.executable, "-m", "qwenfit", "plan", "27B", "--gpu", "rtx-4090", "--ram", "64", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    r = run("pick_from_plan_json.py", ["-", "--min-speed", "1"], input=plan.stdout)
    assert r.returncode == 0, r.stderr
    assert "best: llama-server -hf unsloth/Qwen3.5-27B-GGUF:" in r.stdout
    bad = run("pick_from_plan_json.py", ["-"], input='{"schema": "something-else"}')
    assert bad.returncode == 1 and "not the JSON of `qwenfit plan --json`" in bad.stderr


def test_preflight_exec_runs_the_checked_command(tmp_path):
    """--exec replaces the wrapper with the command; a stand-in llama-server records its arguments."""
    fake = tmp_path / "llama-server"
    fake.write_text('#!/bin/sh\necho "stand-in llama-server $*"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}"}
    args = ["9B", "--quant", "Q4_K_M", "--context", "32768", "--vram", "24", "--exec"]
    r = run("preflight_launch.py", args, env=env)
    assert r.returncode == 0, r.stderr
    assert (
        "stand-in llama-server -hf unsloth/Qwen3.5-9B-GGUF:Q4_K_M --no-mmproj -c 32768 -np 1 -ngl all -fa on"
        in r.stdout
    )
