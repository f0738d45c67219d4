"""Write data/quants.json: data/quants.yaml validated, as plain records, read at start-up instead of the
YAML (qwenfit.loaders.quants.quant_quality; the YAML's SHA-256 keeps it honest: a stale file is ignored).

    python scripts/gen_quants_json.py           # rewrite the file
    python scripts/gen_quants_json.py --check   # exit 1 if the committed file is stale

tests/test_startup_data.py checks that the committed file equals a fresh generation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qwenfit.loaders.quants import compiled_quants_json  # noqa: E402

SOURCE_PATH = REPO / "data" / "quants.yaml"
COMPILED_PATH = REPO / "data" / "quants.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the file is current")
    args = parser.parse_args(argv)
    text = compiled_quants_json(SOURCE_PATH)
    if args.check:
        current = COMPILED_PATH.read_text(encoding="utf-8") if COMPILED_PATH.exists() else ""
        if current != text:
            print(f"{COMPILED_PATH} is stale: run python scripts/gen_quants_json.py", file=sys.stderr)
            return 1
        return 0
    COMPILED_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {COMPILED_PATH} ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
