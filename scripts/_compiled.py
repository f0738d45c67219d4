"""What the gen_*_json.py scripts share: write a compiled data file, or with --check exit 1 if the
committed one is not what the sources give."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def write_or_check(description: str, path: Path, make: Callable[[], str], script: str,
                   argv: list[str] | None = None) -> int:  # fmt: skip
    """``make()`` written to ``path``; ``--check``: 0 when ``path`` already holds it, else 1 and a line
    saying which script rewrites it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="only check that the file is current")
    args = parser.parse_args(argv)
    text = make()
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is stale: run python {script}", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({len(text):,} bytes)")
    return 0
