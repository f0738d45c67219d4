"""Start-up of every command of issue #20, against llmfit's equivalent, as A/B pairs of fresh processes.

    .venv/bin/python benchmarks/startup.py                 # 15 pairs per row, prints the table
    .venv/bin/python benchmarks/startup.py --runs 31 --write   # and writes benchmarks/startup/results.json
                                                            # and docs/reports/startup.md
    .venv/bin/python benchmarks/startup.py --baseline DIR REV  # also qwenfit as of REV (a tree in DIR:
                                                            # git archive REV | tar -x -C DIR), same run

Each row is a pair (A: qwenfit, B: llmfit 1.1.17 or ``python -c pass``). Both commands run once
untimed (they must exit as expected; this also warms the page cache), then ``--runs`` times as
alternating pairs (ABBA order, so neither side always runs second), each a fresh process timed by
wall clock (and by the CPU time it used, user + system, which other work on a shared machine disturbs
less). The table gives each side's median and the ratio of the medians, with the median of the
per-pair ratios and the ratio of the CPU-time medians beside it.

qwenfit runs as a user's install would: the package is byte-compiled first (pip does that when it
installs a wheel) and ``PYTHONDONTWRITEBYTECODE`` is removed from the children's environment.

llmfit (a Rust binary on PyPI) is looked for in ``$LLMFIT``, ``/work/venvs/llmfit/bin``,
``/work/venvs/peers/bin``, ``~/.cache/qwenfit/llmfit-venv/bin`` and on PATH; when absent the
benchmark creates ``~/.cache/qwenfit/llmfit-venv`` and installs ``llmfit==1.1.17`` into it with pip
(``--no-install`` skips llmfit's rows instead).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LLMFIT_VERSION = "1.1.17"
LLMFIT_VENV = Path.home() / ".cache" / "qwenfit" / "llmfit-venv"
RESULTS = ROOT / "benchmarks" / "startup" / "results.json"
PAGE_RESULTS = ROOT / "benchmarks" / "startup" / "page.json"  # benchmarks/startup_page.py --write
REPORT = ROOT / "docs" / "reports" / "startup.md"

CHECK = ["check", "35B-A3B", "--quant", "Q4_K_M", "--vram", "24"]
LLMFIT_PLAN = ["--memory", "24G", "plan", "Qwen/Qwen3.5-35B-A3B", "--quant", "Q4_K_M", "--json"]


def qwenfit_command() -> list[str]:
    script = Path(sys.executable).parent / "qwenfit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "qwenfit"]


def find_llmfit(install: bool) -> str | None:
    for candidate in (
        os.environ.get("LLMFIT"),
        "/work/venvs/llmfit/bin/llmfit",
        "/work/venvs/peers/bin/llmfit",
        str(LLMFIT_VENV / "bin" / "llmfit"),
        shutil.which("llmfit"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if not install:
        return None
    print(f"installing llmfit=={LLMFIT_VERSION} into {LLMFIT_VENV} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(LLMFIT_VENV)], check=True)
    pip = [str(LLMFIT_VENV / "bin" / "python"), "-m", "pip", "install", "-q", f"llmfit=={LLMFIT_VERSION}"]
    subprocess.run(pip, check=True)
    found = LLMFIT_VENV / "bin" / "llmfit"
    return str(found) if found.exists() else None


def llmfit_version(llmfit: str) -> str:
    done = subprocess.run([llmfit, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def rows(qwenfit: list[str], llmfit: str | None) -> list[dict[str, object]]:
    """(name, A, B, A's expected exit code) of each row of the issue's table."""
    py = [sys.executable, "-c", "pass"]
    out: list[dict[str, object]] = []
    if llmfit is not None:
        out += [
            dict(
                name="check, fits",
                a=[*qwenfit, *CHECK, "--context", "32768", "--json"],
                b=[llmfit, *LLMFIT_PLAN, "--context", "32768"],
                rc=0,
            ),
            dict(
                name="check, does not fit (alternatives searched)",
                a=[*qwenfit, *CHECK, "--json"],
                b=[llmfit, *LLMFIT_PLAN, "--context", "262144"],
                rc=1,
            ),
            dict(
                name="plan --vram 24 --ram 64",
                a=[*qwenfit, "plan", "--vram", "24", "--ram", "64"],
                b=[llmfit, "--memory", "24G", "--ram", "64G", "fit"],
                rc=0,
            ),
        ]
    out += [
        dict(name="qwenfit --help", a=[*qwenfit, "--help"], b=py, rc=0),
        dict(name="import qwenfit", a=[sys.executable, "-c", "import qwenfit"], b=py, rc=0),
        dict(name="check argument error", a=[*qwenfit, "check", "35B-A3B", "--vram", "x"], b=py, rc=2),
    ]
    return out


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall time, CPU time: user + system) of one run of ``cmd`` as a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def show(cmd: object) -> str:
    assert isinstance(cmd, list)
    words = [Path(cmd[0]).name, *cmd[1:]]  # the executable without its folder
    if words[:2] == ["python", "-c"] or (words[0].startswith("python") and words[1] == "-c"):
        return f"python -c '{words[2]}'" if " " in words[2] else f"python -c {words[2]}"
    return " ".join(words)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--runs", type=int, default=15, help="timed pairs per row (default 15)")
    ap.add_argument("--no-install", action="store_true", help="do not install llmfit when it is missing")
    ap.add_argument("--write", action="store_true", help=f"write {RESULTS.relative_to(ROOT)} and the report")
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from the results file")
    ap.add_argument(
        "--baseline",
        nargs=2,
        metavar=("DIR", "LABEL"),
        help="also time each qwenfit command with the qwenfit of another source tree (PYTHONPATH=DIR), "
        "interleaved with the others: before/after under the same load",
    )
    args = ap.parse_args(argv)
    if args.report_only:
        saved = json.loads(RESULTS.read_text())
        REPORT.write_text(report(saved["meta"], saved["rows"]))
        return 0

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    import qwenfit

    package = Path(qwenfit.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], env=env, check=True)
    env_c = None
    if args.baseline:
        old = Path(args.baseline[0]).resolve()
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(old / "qwenfit")], env=env, check=True)
        env_c = {**env, "PYTHONPATH": str(old)}
    llmfit = find_llmfit(install=not args.no_install)
    if llmfit is None:
        print("llmfit: not found and not installed: its rows are skipped", file=sys.stderr)
    table = rows(qwenfit_command(), llmfit)
    for row in table:  # once untimed: each must answer as expected
        for side in ("a", "b", "c"):
            cmd = row["a" if side == "c" else side]
            if side == "c" and env_c is None:
                continue
            assert isinstance(cmd, list)
            side_env = env_c if side == "c" and env_c is not None else env
            done = subprocess.run(cmd, capture_output=True, text=True, env=side_env, check=False)
            expected = row["rc"] if side != "b" else 0
            if done.returncode != expected:
                why = done.stderr[-300:]
                raise SystemExit(f"{show(cmd)}: exit {done.returncode}, expected {expected}: {why}")

    load_before = os.getloadavg()[0]
    results = []
    for row in table:
        a_cmd, b_cmd = row["a"], row["b"]
        assert isinstance(a_cmd, list) and isinstance(b_cmd, list)
        a: list[float] = []
        b: list[float] = []
        c: list[float] = []
        cpu: dict[str, list[float]] = {"a": [], "b": [], "c": []}
        for i in range(args.runs):
            order = [("a", a_cmd, env, a), ("b", b_cmd, env, b)]
            if env_c is not None:
                order.append(("c", a_cmd, env_c, c))
            for side, cmd, side_env, out in order if i % 2 == 0 else order[::-1]:
                took, used = timed(cmd, side_env)
                out.append(took)
                cpu[side].append(used)
        ma, mb = statistics.median(a), statistics.median(b)
        ca, cb = statistics.median(cpu["a"]), statistics.median(cpu["b"])
        results.append(
            dict(
                name=row["name"],
                a=show(a_cmd),
                b=show(b_cmd),
                a_median_s=round(ma, 4),
                b_median_s=round(mb, 4),
                a_min_s=round(min(a), 4),
                b_min_s=round(min(b), 4),
                ratio=round(ma / mb, 2),
                pair_ratio_median=round(statistics.median(x / y for x, y in zip(a, b, strict=True)), 2),
                a_cpu_median_s=round(ca, 4),
                b_cpu_median_s=round(cb, 4),
                cpu_ratio=round(ca / cb, 2) if cb else None,
            )
        )
        r = results[-1]
        pairs, cpu_ratio = r["pair_ratio_median"], r["cpu_ratio"]
        line = f"{r['name']:<46} {ma:7.3f} s  {mb:7.3f} s  {r['ratio']:6.2f}x"
        print(f"{line}  (pairs {pairs}x, CPU {cpu_ratio}x)")
        if c:
            mc = statistics.median(c)
            r.update(before_median_s=round(mc, 4), before_ratio=round(mc / mb, 2))
            r.update(before_cpu_median_s=round(statistics.median(cpu["c"]), 4))
            print(f"{'  before (' + args.baseline[1] + ')':<46} {mc:7.3f} s  {'':9}  {mc / mb:6.2f}x")

    meta = dict(
        runs=args.runs,
        cpus=os.cpu_count(),
        machine=platform.machine(),
        python=sys.version.split()[0],
        llmfit=llmfit_version(llmfit) if llmfit else None,
        date=time.strftime("%Y-%m-%d", time.gmtime()),
        load_average=[round(load_before, 2), round(os.getloadavg()[0], 2)],  # 1-minute, before and after
        baseline=args.baseline[1] if args.baseline else None,
    )
    if args.write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(dict(meta=meta, rows=results), indent=1) + "\n")
        REPORT.write_text(report(meta, results))
        print(f"wrote {RESULTS.relative_to(ROOT)} and {REPORT.relative_to(ROOT)}")
    return 0


def page_section() -> list[str]:
    """The calculator page's weight and first verdict (benchmarks/startup_page.py), when measured."""
    if not PAGE_RESULTS.exists():
        return []
    page = json.loads(PAGE_RESULTS.read_text())
    x = page["export"]
    out = [
        "",
        "## The calculator page",
        "",
        "The calculator's data is split per model and packed (`qwenfit.export.calculator_files`); the page "
        "carries the index and the model it shows first inline (with its scripts and the theme's CSS), "
        "renders the verdict without waiting for the theme's script bundle, then loads the other models; "
        "plan mode "
        "loads its own data (`planner.json`, `variants.json`) when it is opened.",
        "",
        "| data | raw | gzip -9 |",
        "|---|---:|---:|",
        f"| one file (`qwenfit export`; no longer loaded by the page) | {x['one_file_raw'] / 1e3:,.1f} kB "
        f"| {x['one_file_gzip'] / 1e3:,.1f} kB |",
        f"| the calculator's split files ({len(x['files']) - 2}) | {x['calculator_raw'] / 1e3:,.1f} kB "
        f"| {x['calculator_gzip'] / 1e3:,.1f} kB |",
        f"| plan mode's data (2 files, loaded when plan mode opens) | {x['plan_raw'] / 1e3:,.1f} kB "
        f"| {x['plan_gzip'] / 1e3:,.1f} kB |",
        f"| every file the page can load ({len(x['files'])}) | {x['total_raw'] / 1e3:,.1f} kB "
        f"| {x['total_gzip'] / 1e3:,.1f} kB |",
        f"| first verdict's data (index + 35B-A3B, inline in the page) "
        f"| {x['first_verdict_raw'] / 1e3:,.1f} kB "
        f"| {x['first_verdict_gzip'] / 1e3:,.1f} kB |",
        f"| the calculator page's HTML (that data, scripts and CSS inline) "
        f"| {x['page_html_raw'] / 1e3:,.1f} kB "
        f"| {x['page_html_gzip'] / 1e3:,.1f} kB |",
        "",
        f"First verdict in Chromium, CPU slowed {page['meta']['cpu_slowdown']}× (CDP "
        "`Emulation.setCPUThrottlingRate`), network shaped to Chrome DevTools' presets, site served "
        "gzipped, a fresh context per load; from navigation start, medians:",
        "",
        "| network | first verdict | every model loaded "
        "| bytes before the first verdict (the page's HTML, on the wire) |",
        "|---|---:|---:|---:|",
    ]
    for name, r in page["results"].items():
        out.append(
            f"| {name} | {r['first_verdict_ms_median'] / 1000:.2f} s "
            f"| {r['all_models_ms_median'] / 1000:.2f} s "
            f"| {r['first_verdict_data_transfer_bytes'] / 1e3:.1f} kB |"
        )
        before = r.get("before_first_verdict_ms_median")
        if before is not None:
            out.append(
                f"| {name}, the one-file page before (`{page['meta']['before']}`) "
                f"| {before / 1000:.2f} s | | |"
            )
    whole = "met" if x["total_raw"] <= 1_000_000 else "**not met**"
    out += [
        "",
        "Targets: first verdict ≤ 1.5 s on the throttled profile; data for it ≤ 150 kB gzipped; every "
        f"file the page can load ≤ 1 MB raw ({x['total_raw'] / 1e3:,.1f} kB: {whole}).",
    ]
    return out


def _cpu(r: dict[str, Any]) -> str:
    """CPU-time medians of a row and their ratio (results written before they were measured: blank)."""
    if r.get("cpu_ratio") is None:
        return ""
    return f"{r['a_cpu_median_s']:.3f} / {r['b_cpu_median_s']:.3f} s, {r['cpu_ratio']:.2f}×"


def report(meta: dict[str, Any], results: list[dict[str, Any]]) -> str:
    load = meta.get("load_average") or ["?", "?"]
    lines = [
        "# Start-up: qwenfit against llmfit",
        "",
        "A pre-flight check runs before every launch, often in scripts, so its start-up is its speed. "
        "Each row times two commands as fresh processes, whole-process wall time, in alternating pairs "
        f"(ABBA; with the baseline below, ABC then CBA), {meta['runs']} pairs per row; medians. "
        f"Machine: {meta['machine']}, {meta['cpus']} CPUs, "
        f"Python {meta['python']}, {meta['llmfit'] or 'llmfit not installed'}, {meta['date']}; "
        f"1-minute load average {load[0]} before and {load[1]} after "
        "(other work on the machine slows both sides of a pair alike, not by the same factor). "
        "qwenfit runs byte-compiled, as pip installs it.",
        "",
        "| what | A | A median | B | B median | A / B | median of pair ratios | CPU time A / B "
        "| A before: median, / B |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        before = f"{r['before_median_s']:.3f} s, {r['before_ratio']:.2f}×" if "before_median_s" in r else ""
        lines.append(
            f"| {r['name']} | `{r['a']}` | {r['a_median_s']:.3f} s | `{r['b']}` | {r['b_median_s']:.3f} s "
            f"| {r['ratio']:.2f}× | {r['pair_ratio_median']:.2f}× | {_cpu(r)} | {before} |"
        )
    if meta.get("baseline"):
        lines += [
            "",
            f"*A before*: the same command with qwenfit as of `{meta['baseline']}`, timed in the same "
            "run, interleaved with A and B.",
        ]
    lines += [
        "",
        "Targets (issue #20): each `check` and `plan` ≤ 1.0× llmfit's equivalent, `--help` ≤ 4× and "
        "`import qwenfit` ≤ 3× `python -c pass`.",
        "",
        "What `check` and `plan` no longer compute at start-up: what depends only on a catalog model, "
        "its quantization, the artifact and the engine's deployment (weight sums per placement, the "
        "bytes a token reads, the compiled traced formulas, llama.cpp's host-input polynomial, the "
        "speed model's per-model shape, llama-quantize's type for every tensor) is precompiled into "
        "`data/compiled.json` by `scripts/gen_compiled_json.py` and shipped; the file carries the "
        "SHA-256 of `qwenfit/core` and the catalog's data files, and a stale file is ignored "
        "(everything computed as before, same answers, slower). That digest, and those of the "
        "artifact, quantization and hardware YAMLs, are recomputed only when a source's size or "
        "modification time differs from a stamp written at the last match (`qwenfit.loaders.stamps`). "
        "The methods `@dataclass` writes for qwenfit's classes are compiled once and their code kept "
        "beside the package's bytecode (`qwenfit.cli.dataclass_code`). A check of a catalog model "
        "reads its inputs and the bytes a token reads from those tables instead of building the "
        "model's ~1,000-tensor weight map (computed only when the exact scheduler replay needs the "
        "GGUF's tensor table, which the tables leave out). The alternative search of a check that "
        "does not fit is guided by the planner's compiled formulas and confirmed by the assembled "
        "estimate at the boundary. A command other than the MCP server runs with Python's cyclic "
        "garbage collector off (it spent about a tenth of a check's time freeing ~200 objects). A "
        "check that fits imports neither the alternative search, nor the scheduler replay and "
        "compute-buffer derivation, nor the calibration code, and no check imports hashlib, difflib "
        "or shutil (`tests/cli/test_cold_path.py`).",
        *page_section(),
        "",
        "llmfit's equivalents: `check` is `llmfit --memory 24G plan Qwen/Qwen3.5-35B-A3B --quant Q4_K_M "
        "--context N --json` (32,768 tokens fits; 262,144, the native context qwenfit's check defaults "
        "to, does not); `plan` is `llmfit --memory 24G --ram 64G fit`, which scores llmfit's whole "
        "database with its heuristics, where qwenfit places every Qwen3.5 model × quantization × engine "
        "exactly.",
        "",
        "Regenerate: `.venv/bin/python benchmarks/startup_page.py --write` (the page), then "
        "`.venv/bin/python benchmarks/startup.py --runs 15 --write` (results in `benchmarks/startup/`).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
