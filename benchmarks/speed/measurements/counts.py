"""The "Counts" section of benchmarks/speed/measurements/README.md, generated from the YAML files.

    .venv/bin/python -m benchmarks.speed.measurements.counts           # print it
    .venv/bin/python -m benchmarks.speed.measurements.counts --write   # replace it in the README

Records and sources are counted as the files hold them; the fit's category, tags and whether a row is
fitted and scored come from benchmarks.speed.fit.features (the rows the fit reads)."""

from __future__ import annotations

import argparse
import glob
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from benchmarks.speed.fit.features import CATEGORIES, MEASUREMENTS, build_row

README = MEASUREMENTS / "README.md"
HEADING = "## Counts (generated from the files)"


def _table(title: str, counts: Counter[str], order: list[str] | None = None) -> list[str]:
    keys = order if order is not None else sorted(counts, key=lambda k: (-counts[k], k))
    return [
        "",
        f"| {title} | records |",
        "|---|---:|",
        *(f"| {k} | {counts[k]} |" for k in keys if counts[k]),
    ]


def section(directory: Path = MEASUREMENTS) -> str:
    """The README's Counts section (heading included), from the files in ``directory``."""
    docs: list[dict[str, Any]] = [
        yaml.safe_load(Path(p).read_text()) for p in sorted(glob.glob(str(directory / "*.yaml")))
    ]
    records = [rec for d in docs for rec in d["records"]]
    rows = [build_row(rec, d["source"]) for d in docs for rec in d["records"]]  # as load_rows builds them
    calibration = sum(bool(r.calibration) for r in rows)
    scored = sum(r.decode is not None and not r.skip_decode and not r.calibration for r in rows)
    skipped = Counter(r.skip_decode for r in rows if r.decode is not None and r.skip_decode)
    lines = [
        HEADING,
        f"Total records: {len(records)} in {len(docs)} source files; calibration_only: {calibration} "
        f"({round(100 * calibration / len(records))}%); catalog-model decode rows fitted and scored: "
        f"{scored}.",
        "",
        "Decode rows neither fitted nor scored (the fit's reason, as the report lists them):",
        "",
        "| reason | rows |",
        "|---|---:|",
        *(f"| {why} | {n} |" for why, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))),
    ]
    lines += _table("fit category", Counter(r.category for r in rows), list(CATEGORIES))
    lines += _table("tag", Counter(t for r in rows for t in r.tags))
    lines += _table(
        "model", Counter(str(rec["model"]) for rec in records), sorted({str(rec["model"]) for rec in records})
    )
    lines += _table("engine", Counter(str(rec["engine"]) for rec in records))
    lines += ["", "| source id | kind | author | records |", "|---|---|---|---:|"]
    for d in sorted(docs, key=lambda d: d["source"]["id"]):
        s = d["source"]
        author = str(s.get("author") or "").replace("|", "/")
        lines.append(f"| {s['id']} | {s.get('kind', '')} | {author} | {len(d['records'])} |")
    return "\n".join(lines) + "\n"


def replaced(text: str, new: str) -> str:
    """``text`` (the README) with its Counts section replaced by ``new``."""
    start = text.index(HEADING)
    end = text.find("\n## ", start + len(HEADING))
    return text[:start] + new + ("" if end < 0 else text[end:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--write", action="store_true", help="replace the section in the README")
    args = ap.parse_args(argv)
    new = section()
    if args.write:
        README.write_text(replaced(README.read_text(), new))
        print(f"wrote {README}")
    else:
        print(new, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
