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
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # always JSON
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The docs calculator's JSON (qwenfit.export.calculator_json)."""
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
