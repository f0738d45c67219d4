"""docs/javascripts/qwenfit-data.mjs's unpack against qwenfit.export_split's, in Node: values packed in
Python (every encoding: columns of same-keyed dicts, formula rows by columns, long strings as edits of
earlier ones, escapes, run-length and delta lists) come back in JavaScript equal to what Python packed,
integers exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from builders import has_row_columns, ngl_records

from qwenfit.export import calculator_json
from qwenfit.export_split import pack_value, unpack_value

ROOT = Path(__file__).resolve().parent.parent
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

SCRIPT = """
import { readFileSync } from "node:fs";
import { parseJSON } from "%(calc)s";
import { unpackValue } from "%(data)s";
const tagged = (x) => {
  if (typeof x === "bigint") return `i:${x}`;
  if (Array.isArray(x)) return x.map(tagged);
  if (x === null || typeof x !== "object") return x;
  return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, tagged(v)]));
};
const cases = JSON.parse(readFileSync(0, "utf8"));
console.log(JSON.stringify(cases.map((text) => tagged(unpackValue(parseJSON(text))))));
"""


def _tagged(x: Any) -> Any:
    """``x`` as the Node script writes it back: ints as "i:<digits>" (BigInt in the page)."""
    if type(x) is int:
        return f"i:{x}"
    if isinstance(x, list):
        return [_tagged(v) for v in x]
    if isinstance(x, dict):
        return {k: _tagged(v) for k, v in x.items()}
    return x


def _values() -> list[Any]:
    recipe = (
        "# no {q} GGUF of Qwen3.5-9B is published: make it\nhf download Qwen/Qwen3.5-9B --include '*{q}*'"
    )
    rows = {f"dev{i}": {"a": 14620, "b": i * 1000, "c": "x", "d": i % 2 == 0} for i in range(6)}
    data = calculator_json()
    return [
        {
            "rows": rows,
            "recipes": [recipe.format(q=q) for q in ("Q4_K_M", "IQ2_XXS", "Q8_0")] * 2,
            "escaped": ["~" + "a" * 70, "!" + "a" * 70, "^" + "a" * 69 + "b", "~0", "é" * 80 + "~"],
            "ints": [3, 5, 7, 9, 11, 2**70, -4],
            "same": [[1, 2]] * 5,
        },
        data["hardware"],
        data["models"]["9B"]["quants"],
        {"formulas": ngl_records()},
    ]


def test_the_page_unpacks_what_python_packs() -> None:
    values = _values()
    texts = [json.dumps(pack_value(v), separators=(",", ":"), ensure_ascii=False) for v in values]
    packed = "".join(texts)
    assert '"&"' in packed and '"$"' in packed  # the encodings under test are used
    assert has_row_columns(json.loads(texts[-1]))  # formula rows by columns
    for v, text in zip(values, texts, strict=True):
        assert unpack_value(json.loads(text)) == v
    script = SCRIPT % {
        "calc": (ROOT / "docs/javascripts/qwenfit-calc.mjs").as_uri(),
        "data": (ROOT / "docs/javascripts/qwenfit-data.mjs").as_uri(),
    }
    out = subprocess.run(
        [str(NODE), "--input-type=module", "-e", script],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(out.stdout) == [_tagged(v) for v in values]
