"""Write data/hardware.schema.json (the JSON Schema of data/hardware.yaml, from qwenfit's pydantic models)
and data/hardware.json (the validated catalog, read at start-up instead of the YAML).

    python scripts/gen_hardware_schema.py           # rewrite the file
    python scripts/gen_hardware_schema.py --check   # exit 1 if the committed file is stale

tests/loaders/test_hardware.py checks that the committed file equals a fresh generation.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from qwenfit.loaders.hardware import compiled_catalog_json  # noqa: E402
from qwenfit.loaders.hardware_yaml import hardware_schema  # noqa: E402

SCHEMA_PATH = REPO / "data" / "hardware.schema.json"
COMPILED_PATH = REPO / "data" / "hardware.json"  # the validated YAML, for fast start-up


def render() -> str:
    """The schema file's exact text: indented JSON, keys in model order, trailing newline."""
    return json.dumps(hardware_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the file is current")
    args = parser.parse_args(argv)
    outputs = {SCHEMA_PATH: render(), COMPILED_PATH: compiled_catalog_json()}
    if args.check:
        for path, text in outputs.items():
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != text:
                print(f"{path} is stale: run python scripts/gen_hardware_schema.py", file=sys.stderr)
                return 1
        return 0
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
