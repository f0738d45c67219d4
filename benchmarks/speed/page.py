"""docs/reports/speed.md: how good qwenfit's speed estimates are (leave-one-source-out, llmfit side by
side) and how fast qwenfit itself runs. One page, two generated parts:

* the estimates: ``benchmarks/speed/fit/results/report.json`` (``python -m benchmarks.speed.fit``);
* qwenfit's own run time: ``benchmarks/speed/results/report.md`` (``python -m benchmarks.speed.run``).

Both commands rewrite the page through :func:`write_page`; nothing here is edited by hand.

    .venv/bin/python -m benchmarks.speed.page      # rebuild the page from the committed results
"""

# ruff: noqa: E501  (tables)
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FIT = HERE / "fit" / "results" / "report.json"
RUNTIME = HERE / "results" / "report.md"
DOCS = ROOT / "docs" / "reports" / "speed.md"

CATEGORIES = (
    "overall", "GPU dense", "GPU MoE", "CPU-expert offload", "Apple/MLX", "unified-memory APU",
    "multi-GPU TP/PP", "batched (concurrency > 1)",
)  # fmt: skip


def _s(st: dict[str, Any] | None) -> str:
    if not st or not st.get("n"):
        return "–"
    return f"{st['median']} / {st['p90']} / {st['max']} ({st['signed_median']:+})"


def _table(groups: dict[str, dict[str, Any]], columns: list[str]) -> list[str]:
    out = ["| category | n | " + " | ".join(f"{c} med / p90 / max (signed)" for c in columns) + " |",
           "|---|---:|" + "---|" * len(columns)]  # fmt: skip
    for cat in CATEGORIES:
        n = groups[columns[-1]].get(cat, {}).get("n", 0)
        if not n:
            continue
        out.append(f"| {cat} | {n} | " + " | ".join(_s(groups[c].get(cat)) for c in columns) + " |")
    return out


def estimates_md(j: dict[str, Any]) -> list[str]:
    t = j["targets"]
    lines = [
        "## How close the speed estimates are",
        "",
        "qwenfit's decode and prefill estimates (`qwenfit.core.fit.speed`, constants in",
        "`qwenfit/core/fit/speed_fitted.py`) come from a model fitted to published measurements",
        "(`benchmarks/speed/measurements/`, `benchmarks/speed/fit/`). They are scored **leave-one-source-out**",
        "(LOSO): every source's rows are predicted by constants fitted without that source, so no row is",
        "scored by constants it helped choose. Error = (predicted - measured) / measured, in %; tables give",
        "absolute median / p90 / max and the signed median. Full tables, every row and the constants:",
        "`benchmarks/speed/fit/results/report.md`. Regenerate: `.venv/bin/python -m benchmarks.speed.fit`.",
        "",
        "### Targets (issue 19)",
        "",
        "| target | value | met |",
        "|---|---|---|",
    ]
    for name, v in t.items():
        val = v["value"]
        if isinstance(val, list):
            val = f"{val[0]} % vs llmfit {val[1]} %"
        elif isinstance(val, dict):
            val = "; ".join(f"{c}: {x['qwenfit_median']} vs {x['llmfit_median']}" for c, x in val.items())
        else:
            val = f"{val} %"
        lines.append(f"| {name} | {val} | {'yes' if v['met'] else '**no**'} |")
    lines += ["", *misses_md(j)]
    lines += [
        "",
        "### Decode, every row qwenfit can be asked about",
        "",
        "old = qwenfit's model before the fit (no MTP gain, a batch read as batch x one sequence); new = the",
        "shipped model, out of sample (LOSO).",
        "",
        *_table(j["decode"], ["qwenfit old", "qwenfit new (LOSO)"]),
        "",
        "### Decode, the rows llmfit 1.1.17 can express (same rows, side by side)",
        "",
        "llmfit: single device, batch 1, no MTP (`benchmarks/speed/fit/llmfit_scores.py`).",
        "",
        *_table(j["decode_common_llmfit"], ["llmfit 1.1.17", "qwenfit old", "qwenfit new (LOSO)"]),
        "",
        "### Prefill",
        "",
        *_table(j["prefill"], ["qwenfit old", "qwenfit new (LOSO)"]),
        "",
        "Rows llmfit reports a prefill for:",
        "",
        *_table(j["prefill_common_llmfit"], ["llmfit 1.1.17", "qwenfit old", "qwenfit new (LOSO)"]),
        "",
        "### The ranges qwenfit prints",
        "",
        "Every speed figure is shown with the range its category earned out of sample,",
        "`~P tok/s (P x p10 - P x p90)`, p10 / p90 of measured / predicted over the LOSO predictions",
        "(categories with fewer than 8 rows use the overall band):",
        "",
        "| band | n | p10 | p50 | p90 |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in ("decode", "prefill"):
        for cat, b in j["bands"][kind].items():
            if b.get("n", 0) >= 3:
                lines.append(f"| {kind}: {cat} | {b['n']} | {b['p10']} | {b['p50']} | {b['p90']} |")
    return lines


def misses_md(j: dict[str, Any], limit: float = 35.0) -> list[str]:
    """Which sources hold the decode rows beyond ``limit`` % out of sample (what keeps p90 above it),
    and the prefill median by source."""
    from collections import defaultdict
    from statistics import median

    rows = [
        r for r in j["rows"] if not r["calibration"] and r.get("decode_loso") and r.get("decode_measured")
    ]
    err = {r["id"]: 100 * (r["decode_loso"] - r["decode_measured"]) / r["decode_measured"] for r in rows}
    by: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if abs(err[r["id"]]) > limit:
            by[r["fold"]].append(err[r["id"]])
    n_big = sum(len(v) for v in by.values())
    out = [
        f"**What keeps decode p90 above {limit:g} %**: {n_big} of {len(rows)} rows are off by more than "
        f"{limit:g} % out of sample (p90 <= {limit:g} % allows {len(rows) // 10}). By source (a source's rows are "
        "predicted without any of its rows, so an effect only one source shows is predicted from priors):",
        "",
        "| source | rows > " + f"{limit:g} % | their errors (%) |",
        "|---|---:|---|",
    ]
    for fold, v in sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        out.append(f"| {fold} | {len(v)} | {', '.join(f'{e:+.0f}' for e in sorted(v))} |")
    pre = [
        r for r in j["rows"] if not r["calibration"] and r.get("prefill_loso") and r.get("prefill_measured")
    ]
    pb: dict[str, list[float]] = defaultdict(list)
    for r in pre:
        pb[r["fold"]].append(abs(100 * (r["prefill_loso"] - r["prefill_measured"]) / r["prefill_measured"]))
    out += ["", "**Prefill median by source** (out of sample): " + "; ".join(
        f"{f} {median(v):.0f} % (n={len(v)})" for f, v in sorted(pb.items(), key=lambda kv: -len(kv[1])))]  # fmt: skip
    return out


def write_page() -> str:
    lines = ["# qwenfit speed", ""]
    if FIT.exists():
        lines += estimates_md(json.loads(FIT.read_text()))
    lines += ["", "## How fast qwenfit itself runs", ""]
    if RUNTIME.exists():
        body = RUNTIME.read_text().splitlines()
        lines += [ln for ln in body if not ln.startswith("# ")]
    else:
        lines.append("Not measured yet: `.venv/bin/python -m benchmarks.speed.run`.")
    text = "\n".join(lines).rstrip() + "\n"
    DOCS.write_text(text)
    return text


if __name__ == "__main__":
    write_page()
    print(f"wrote {DOCS}")
