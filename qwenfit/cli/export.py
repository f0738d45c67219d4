"""``qwenfit export``: the docs calculator's JSON."""

from __future__ import annotations

import argparse
from typing import Any

from qwenfit.cli.args import EXIT_OK
from qwenfit.cli.output import emit
from qwenfit.errors import UsageError

__all__ = ["add"]


def add(sub: Any, schema_id: str) -> None:
    p = sub.add_parser("export", help="the docs calculator's JSON")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument(
        "--split",
        metavar="DIR",
        help="write the files the docs page loads instead (DIR/index.json, one file per model and plan "
        "mode's planner.json and variants.json, packed)",
    )
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # always JSON
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The docs calculator's JSON (qwenfit.export.calculator_json); with --split, the files the docs
    page loads (qwenfit.export_split.site_files: the same data split per model and packed, and plan
    mode's)."""
    if args.split:
        return _write_split(args.split)
    import json

    from qwenfit.export import calculator_json

    text = json.dumps(calculator_json(), separators=(",", ":"), ensure_ascii=False)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        return EXIT_OK
    emit(text)
    return EXIT_OK


def _write_split(folder: str) -> int:
    import json
    from pathlib import Path

    from qwenfit.export_split import site_files

    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, packed in site_files().items():
            text = json.dumps(packed, separators=(",", ":"), ensure_ascii=False)
            (out / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {folder}: {exc.strerror or exc}") from None
    return EXIT_OK
