"""Write data/quants.json: data/quants.yaml validated, as plain records, read at start-up instead of the
YAML (qwenfit.loaders.quants.quant_quality; the YAML's SHA-256 keeps it honest: a stale file is ignored).

    python scripts/gen_quants_json.py           # rewrite the file
    python scripts/gen_quants_json.py --check   # exit 1 if the committed file is stale

tests/test_startup_data.py checks that the committed file equals a fresh generation.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _compiled import write_or_check  # noqa: E402  (this script's own folder)

from qwenfit.loaders.quants import compiled_quants_json  # noqa: E402

SOURCE_PATH = REPO / "data" / "quants.yaml"
COMPILED_PATH = REPO / "data" / "quants.json"


def main(argv: list[str] | None = None) -> int:
    make = functools.partial(compiled_quants_json, SOURCE_PATH)
    return write_or_check(__doc__.splitlines()[0], COMPILED_PATH, make, "scripts/gen_quants_json.py", argv)


if __name__ == "__main__":
    raise SystemExit(main())
