"""Startup of `qwenfit check` end to end, against `python -c pass` and llmfit's CLI on the same question.

    .venv/bin/python benchmarks/cli_startup.py            # 21 runs of each, medians
    .venv/bin/python benchmarks/cli_startup.py --runs 51

Every command runs once untimed (to check it works and warm the page cache), then ``--runs`` times,
interleaved, each as a fresh process; the table gives the median and the fastest wall time and the
ratios of the medians. The question: is Qwen3.5-35B-A3B in Q4_K_M with 32,768 tokens of context fit
for a 24 GB GPU? qwenfit answers it as a pre-flight check (``--vram 24`` for a GPU given by its
size, ``--gpu rtx-4090`` for a catalog GPU, which reads the hardware catalog); llmfit as
``llmfit --json --memory 24G plan "Qwen/Qwen3.5-35B-A3B" --quant Q4_K_M --context 32768``.

llmfit is looked for in $LLMFIT, /work/venvs/peers/bin (where the peer tools are installed:
``pip install llmfit``) and on PATH; without it its column is skipped with a message.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUESTION = ["35B-A3B", "--quant", "Q4_K_M", "--context", "32768"]
LLMFIT_QUESTION = [
    "--json",
    "--memory",
    "24G",
    "plan",
    "Qwen/Qwen3.5-35B-A3B",
    "--quant",
    "Q4_K_M",
    "--context",
    "32768",
]


def qwenfit_command() -> list[str]:
    script = Path(sys.executable).parent / "qwenfit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "qwenfit"]


def find_llmfit() -> str | None:
    for candidate in (os.environ.get("LLMFIT"), "/work/venvs/peers/bin/llmfit", shutil.which("llmfit")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=21, help="timed runs of each command (default 21)")
    args = ap.parse_args(argv)

    qwenfit = qwenfit_command()
    commands: dict[str, list[str]] = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import qwenfit'": [sys.executable, "-c", "import qwenfit"],
        "qwenfit check --vram 24 --json": [*qwenfit, "check", *QUESTION, "--vram", "24", "--json"],
        "qwenfit check --gpu rtx-4090 --json": [*qwenfit, "check", *QUESTION, "--gpu", "rtx-4090", "--json"],
        "qwenfit check --vram 24 (human)": [*qwenfit, "check", *QUESTION, "--vram", "24"],
    }
    llmfit = find_llmfit()
    if llmfit is None:
        print("llmfit: not found ($LLMFIT, /work/venvs/peers/bin/llmfit, PATH): its column is skipped")
    else:
        commands["llmfit --json plan"] = [llmfit, *LLMFIT_QUESTION]

    for name, cmd in list(commands.items()):  # once untimed: it must work
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{name}: exit {done.returncode}, left out: {done.stderr.strip()[-300:]}")
            del commands[name]

    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            times[name].append(wall(cmd))

    median = {name: statistics.median(t) for name, t in times.items()}
    base = median["python -c pass"]
    peer = median.get("llmfit --json plan")
    print(f"\nmedian of {args.runs} runs each ({os.cpu_count()} CPUs, {sys.version.split()[0]})\n")
    head = f"{'command':<38} {'median s':>9} {'min s':>7} {'x python':>9}" + (
        f" {'x llmfit':>9}" if peer else ""
    )
    print(head)
    print("-" * len(head))
    for name in commands:
        row = f"{name:<38} {median[name]:9.3f} {min(times[name]):7.3f} {median[name] / base:9.1f}"
        if peer:
            row += f" {median[name] / peer:9.2f}"
        print(row)
    check = median.get("qwenfit check --vram 24 --json")
    if check is not None:
        print(
            f"\nqwenfit check (--vram): {check:.3f} s = {check / base:.1f}x python -c pass"
            + (f" = {check / peer:.2f}x llmfit" if peer else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
