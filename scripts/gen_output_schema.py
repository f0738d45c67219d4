"""Generate data/schema/qwenfit-output-v2.schema.json: the JSON Schema of every `qwenfit ... --json`
output, from the pydantic models in qwenfit/schema.py (no other source).

    .venv/bin/python scripts/gen_output_schema.py            # rewrite the file
    .venv/bin/python scripts/gen_output_schema.py --check    # exit 1 if the file is out of date

tests/cli/test_schema.py checks that the committed file equals a fresh generation. A change to the
output models that is not a pure addition of documentation needs a new SCHEMA_VERSION (a new file
next to the old one, which stays as it was).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qwenfit.report.schema import SCHEMA_FILE, output_json_schema  # noqa: E402

OUT = REPO / "data" / "schema" / SCHEMA_FILE


def render() -> str:
    return json.dumps(output_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    from _compiled import write_or_check  # this script's own folder (imported here: tests load render())

    return write_or_check(__doc__.splitlines()[0], OUT, render, "scripts/gen_output_schema.py", argv)


if __name__ == "__main__":
    sys.exit(main())
