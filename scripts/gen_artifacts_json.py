"""Write data/artifacts.json: every data/artifacts/*.yaml record validated, as plain records, read at
start-up instead of the YAML (qwenfit.loaders.artifacts.published; the YAMLs' SHA-256 keeps it honest).

    python scripts/gen_artifacts_json.py           # rewrite the file
    python scripts/gen_artifacts_json.py --check   # exit 1 if the committed file is stale

tests/loaders/test_artifacts.py checks that the committed file equals a fresh generation.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _compiled import write_or_check  # noqa: E402  (this script's own folder)

from qwenfit.loaders.artifacts import compiled_artifacts_json  # noqa: E402

COMPILED_PATH = REPO / "data" / "artifacts.json"


def main(argv: list[str] | None = None) -> int:
    return write_or_check(
        __doc__.splitlines()[0], COMPILED_PATH, compiled_artifacts_json, "scripts/gen_artifacts_json.py", argv
    )


if __name__ == "__main__":
    raise SystemExit(main())
