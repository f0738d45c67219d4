"""qwenfit's own speed: import time, plan() latency, CLI start-up — each against a baseline
measured in the same run (``python -c pass``, llmfit's CLI when installed).

    .venv/bin/python -m benchmarks.speed.run            # prints Markdown, writes results/
    .venv/bin/python -m benchmarks.speed.run --quick    # fewer repetitions

Writes ``benchmarks/speed/results/report.{md,json}`` and ``docs/reports/speed.md``. Timings are
medians of N runs on this machine; they are figures to report, not assertions (the test suite
checks correctness only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "results"
DOCS = ROOT / "docs" / "reports" / "speed.md"
PY = sys.executable
LLMFIT = Path("/work/venvs/peers/bin/llmfit")  # benchmarks/peers/README.md installs it there
QWENFIT = Path(PY).parent / "qwenfit"
HARDWARE = "rtx-4090"
RAM_GB = 64


def _median_wall(cmd: list[str], n: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=env)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _median(f, n: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(n: int) -> dict[str, object]:
    import qwenfit
    from qwenfit.loaders.hardware import parse_machine

    rows: dict[str, object] = {}
    base = _median_wall([PY, "-c", "pass"], n)
    imp = _median_wall([PY, "-c", "import qwenfit"], n)
    rows["python -c pass (s)"] = base
    rows["python -c 'import qwenfit' (s)"] = imp
    rows["import qwenfit alone (s)"] = imp - base

    machine = parse_machine(HARDWARE, ram_gb=RAM_GB)
    t = time.perf_counter()
    qwenfit.plan("35B-A3B", hardware=machine)
    rows["plan('35B-A3B') cold, first call in the process (s)"] = time.perf_counter() - t
    t = time.perf_counter()
    full = qwenfit.plan(hardware=machine)
    rows["plan() all models cold (s)"] = time.perf_counter() - t
    rows["plan() all models: options evaluated"] = len(full.options) + len(full.rejected)
    rows["plan('35B-A3B') warm (s)"] = _median(lambda: qwenfit.plan("35B-A3B", hardware=machine), 5 * n)
    rows["plan() all models warm (s)"] = _median(lambda: qwenfit.plan(hardware=machine), n)

    check = [str(QWENFIT), "check", "35B-A3B", "--quant", "Q4_K_M", "--context", "32768", "--gpu", HARDWARE,
             "--ram", str(RAM_GB)]  # fmt: skip
    if QWENFIT.exists():
        rows["qwenfit check ... (s)"] = _median_wall(check, n)
    if LLMFIT.exists():
        llm = [str(LLMFIT), "--memory", "24G", "--ram", f"{RAM_GB}G", "plan", "Qwen/Qwen3.5-35B-A3B",
               "--context", "32768", "--quant", "Q4_K_M", "--json"]  # fmt: skip
        rows["llmfit plan ... --json (s)"] = _median_wall(llm, n)
    return rows


def render(rows: dict[str, object]) -> str:
    base = float(rows["python -c pass (s)"])  # type: ignore[arg-type]
    lines = [
        "# qwenfit speed",
        "",
        f"Measured by `benchmarks/speed/run.py` on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; medians. plan() hardware: {HARDWARE} + {RAM_GB} GB RAM.",
        "",
        "| what | value | ratio |",
        "|---|---:|---:|",
    ]
    for k, v in rows.items():
        if isinstance(v, float):
            ratio = ""
            if k.startswith(("python -c 'import", "qwenfit check", "llmfit")):
                ratio = f"{v / base:.2f}x python -c pass"
            if k.startswith("qwenfit check") and "llmfit plan ... --json (s)" in rows:
                ratio += f"; {v / float(rows['llmfit plan ... --json (s)']):.2f}x llmfit"  # type: ignore[arg-type]
            lines.append(f"| {k} | {v * 1e3:.1f} ms | {ratio} |")
        else:
            lines.append(f"| {k} | {v} | |")
    if "llmfit plan ... --json (s)" not in rows:
        lines += ["", f"llmfit is not installed at {LLMFIT} (benchmarks/peers/README.md installs it)."]
    lines += ["", "Regenerate: `.venv/bin/python -m benchmarks.speed.run`."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 repetitions instead of 11")
    args = ap.parse_args(argv)
    rows = measure(3 if args.quick else 11)
    text = render(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(rows, indent=2) + "\n")
    (OUT / "report.md").write_text(text)
    from benchmarks.speed.page import write_page

    write_page()  # docs/reports/speed.md: this run + the estimates' leave-one-source-out results
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
