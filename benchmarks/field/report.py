"""The "Accuracy in the field" report: qwenfit's terms against the start-up logs users published.

Run ``.venv/bin/python -m benchmarks.field`` to regenerate ``benchmarks/field/results/report.{md,json}``
and ``docs/reports/field.md`` (tests/test_field_logs.py checks they are current and pins every exact
term on every record).
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.field import llama_cpp, vllm
from benchmarks.field.logs import CORPUS, MIB_RESOLUTION, REPO

RESULTS = Path(__file__).resolve().parent / "results"
DOCS = REPO / "docs" / "reports" / "field.md"
TERMS = ("weights", "kv_cache", "recurrent_state", "output_buffer", "compute_buffer")


def input_hashes() -> dict[str, str]:
    """SHA-256 (16 hex digits) of every record read; the report is stale when one changes."""
    return {
        str(p.relative_to(REPO)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted(CORPUS.glob("*/*.yaml"))
    }


def _stats(errors: list[float]) -> dict[str, Any]:
    a = [abs(e) for e in errors]
    return {"n": len(a), "median_pct": round(100 * statistics.median(a), 2),
            "max_pct": round(100 * max(a), 2)}  # fmt: skip


def build() -> dict[str, Any]:
    rows = llama_cpp.score()
    llama_rows = []
    skipped = []
    for r in rows:
        if r.skip:
            skipped.append({"record": r.record, "engine": "llama.cpp", "why": r.skip})
            continue
        assert r.logged is not None and r.predicted is not None
        llama_rows.append({
            "record": r.record, "backend": r.backend, "term": r.term, "device": r.device,
            "logged": r.logged, "predicted": r.predicted, "exact_label": r.exact,
            "within_print": r.within_print, "error": r.error,
        })  # fmt: skip
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in llama_rows:
        kind = "host" if r["term"] == "compute_buffer" and r["device"].endswith(("_Host", "CPU")) else "gpu"
        term = r["term"] + (f" ({kind})" if r["term"] == "compute_buffer" else "")
        by[(term, r["backend"])].append(r)
    llama_summary = []
    for (term, backend), rs in sorted(by.items()):
        errs = [r["error"] for r in rs if r["error"] is not None]
        llama_summary.append({
            "term": term, "backend": backend, "records": len({r["record"] for r in rs}),
            "rows_equal_to_the_log": sum(r["within_print"] for r in rs), **_stats(errs or [0.0]),
        })  # fmt: skip
    vrows = vllm.rows()
    vllm_rows = [{
        "record": r.case.id, "tier": r.case.tier, "gpu": r.case.gpu, "model": r.case.model,
        "format": r.case.fmt,
        "logged_gib": round(r.logged, 3), "predicted_gib": round(r.predicted, 3), "error": round(r.error, 4),
        "runtime_only_error": None if r.runtime_error is None else round(r.runtime_error, 4),
        "concurrency": None if r.concurrency is None else round(r.concurrency, 2),
        "logged_concurrency": r.case.concurrency, "assumed": r.case.assumed,
        "tokens": r.tokens if r.logged_tokens is not None else None, "logged_tokens": r.logged_tokens,
    } for r in vrows]  # fmt: skip
    target = [r for r in vrows if r.case.tier in ("stated", "assumed") and not r.case.refused]
    stated = [r for r in target if r.case.tier == "stated"]
    conc = [r.concurrency_error for r in stated if r.concurrency_error is not None]
    toks = [r.tokens_error for r in stated if r.tokens_error is not None]
    return {
        "inputs": input_hashes(),
        "resolution_bytes": MIB_RESOLUTION,
        "llama_cpp": {"summary": llama_summary, "rows": llama_rows, "skipped": skipped},
        "vllm": {
            "available_kv": _stats([r.error for r in target]),
            "rows": vllm_rows,
            "stated_available_kv": _stats([r.error for r in stated]),
            "stated_concurrency": {**_stats(conc), "within_1pct": sum(abs(e) <= 0.01 for e in conc)},
            "stated_tokens": {**_stats(toks), "within_1pct": sum(abs(e) <= 0.01 for e in toks)},
            "open": list(vllm.OPEN),
            "uma": vllm.UMA,
        },
    }


def _gb(n: float) -> str:
    return f"{n / 2**20:,.2f}"


def render(data: dict[str, Any]) -> str:
    out = [
        "# Accuracy in the field",
        "",
        "qwenfit's memory terms against the start-up logs users published from their own machines",
        "(`tests/fixtures/field_logs/`: the source, command and verbatim log lines of every record).",
        "Each record is reproduced with `qwenfit.estimate` from the settings its command states and its",
        "log prints; every buffer the log prints is compared with the term for that device. A log prints",
        "MiB with two decimals, so *equal to the log* means within ±0.005 MiB. Regenerate with",
        "`.venv/bin/python -m benchmarks.field`.",
        "",
        "## llama.cpp",
        "",
        "| term | backend | records | equal to the log | median error | max error |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for s in data["llama_cpp"]["summary"]:
        equal = f"{s['rows_equal_to_the_log']} of {s['n']}"
        out.append(f"| {s['term']} | {s['backend']} | {s['records']} | {equal} "
                   f"| {s['median_pct']:.2f}% | {s['max_pct']:.2f}% |")  # fmt: skip
    out += [
        "",
        "Weights are compared only for files named by a stock llama-quantize type; publishers' files under",
        "such a name may hold their own mix (unsloth's Q3_K_M, Q4_K_M, Q4_K_S), which the weights rows",
        "show. KV cache, recurrent state and logits do not depend on the file.",
        "",
        "Records not reproduced:",
        "",
    ]
    for s in data["llama_cpp"]["skipped"]:
        out.append(f"- `{s['record']}`: {s['why']}")
    v = data["vllm"]
    out += [
        "",
        "## vLLM",
        "",
        "Available KV cache memory (what vLLM logs as `Available KV cache memory`, or the pool its printed",
        f"`Maximum concurrency` implies): median error {v['available_kv']['median_pct']:.1f}%, max "
        f"{v['available_kv']['max_pct']:.1f}% over the {v['available_kv']['n']} records whose settings are "
        "stated or assumed (below, with where the settings come from and what was assumed; refusals are not",
        f"counted); on the {v['stated_available_kv']['n']} whose settings are all stated (by the log or the "
        f"compose it ran) median {v['stated_available_kv']['median_pct']:.1f}%, max "
        f"{v['stated_available_kv']['max_pct']:.1f}%. End to end (qwenfit's own pool through vLLM's block "
        "arithmetic) on those records: maximum concurrency within 1% on "
        f"{v['stated_concurrency']['within_1pct']} of {v['stated_concurrency']['n']} (median "
        f"{v['stated_concurrency']['median_pct']:.1f}%, max {v['stated_concurrency']['max_pct']:.1f}%), "
        f"token capacity within 1% on {v['stated_tokens']['within_1pct']} of {v['stated_tokens']['n']} (max "
        f"{v['stated_tokens']['max_pct']:.1f}%). Listed apart: `old` (a",
        "vLLM before Model Runner V2, scored with 0.33's rules), `uma` (GB10 unified memory: vLLM takes free",
        "memory from psutil there, so host RAM the engine process takes counts against the pool; not in the",
        "logs), `patched` (a community image with memory-pool patches). Runtime only: the logged",
        "`Model loading took` in place of qwenfit's weights.",
        "",
        "| record | GPU | model | format | logged GiB | qwenfit GiB | error | runtime only | "
        "concurrency (qwenfit / log) | tokens (qwenfit / log) |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in v["rows"]:
        conc = "" if r["logged_concurrency"] is None else f"{r['concurrency']} / {r['logged_concurrency']}"
        rt = "" if r["runtime_only_error"] is None else f"{100 * r['runtime_only_error']:+.1f}%"
        tok = "" if r["logged_tokens"] is None else f"{r['tokens']:,} / {r['logged_tokens']:,}"
        out.append(f"| `{r['record']}` ({r['tier']}) | {r['gpu']} | {r['model']} | {r['format']} | "
                   f"{r['logged_gib']:.2f} | {r['predicted_gib']:.2f} | {100 * r['error']:+.1f}% | {rt} | "
                   f"{conc} | {tok} |")  # fmt: skip
    out += ["", "Where the settings come from, and what is assumed:", ""]
    out += [f"- `{r['record']}`: {r['assumed']}" for r in v["rows"] if r["assumed"]]
    out += ["", "Not explained yet:", ""] + [f"- {n}" for n in v["open"]] + [f"- {v['uma']}"]
    out += ["", "## Every llama.cpp row", "", "| record | term | device | log MiB | qwenfit MiB | error |",
            "|---|---|---|---:|---:|---:|"]  # fmt: skip
    for r in data["llama_cpp"]["rows"]:
        err = "" if r["error"] is None else f"{100 * r['error']:+.2f}%"
        mark = " =" if r["within_print"] else ""
        out.append(f"| `{r['record']}` | {r['term']} | {r['device']} | {_gb(r['logged'])} | "
                   f"{_gb(r['predicted'])} | {err}{mark} |")  # fmt: skip
    return "\n".join(out) + "\n"


def main() -> int:
    data = build()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    md = render(data)
    (RESULTS / "report.md").write_text(md)
    DOCS.write_text(md)
    print(f"wrote {RESULTS / 'report.md'}, {RESULTS / 'report.json'}, {DOCS}")
    return 0
