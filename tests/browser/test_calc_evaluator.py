"""The calculator's JS evaluator against qwenfit.core.expr.evaluate, without a browser.

Random formula trees (fixed seed) are evaluated in Python; the trees, the environment and Python's
results go to a JSON file that ``node --test tests/browser/evaluator.test.mjs`` checks value by
value (ints exactly as BigInt, floats bit for bit, errors as errors).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qwenfit.core.expr import evaluate

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node")
N_TREES = 4000

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed (the evaluator tests run in Node)"
)

INT_VARS = {
    "ctx": 131072,
    "seqs": 4,
    "zero": 0,
    "neg": -37,
    "vram": 24_000_000_000,
    "big": 2**61 + 12345,
    "huge": 3**90,
    "step": 256,
}
FLOAT_VARS = {"bandwidth": 1008.0, "frac": 0.92, "negf": -2.5, "tiny": 1e-300}
TABLES = {"cum": [0, 17, 10**12, 2**55 + 3, -5], "one": [42]}


class _Gen:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def leaf_int(self) -> Any:
        r = self.rng.random()
        if r < 0.45:
            return ["var", self.rng.choice(sorted(INT_VARS))]
        choices = [0, 1, 2, 3, 7, 256, 1000, -1, -3, 2**53 + 1, 10**15, -(10**18)]
        return self.rng.choice(choices) if r < 0.8 else self.rng.randint(-(10**6), 10**6)

    def leaf_float(self) -> Any:
        if self.rng.random() < 0.5:
            return ["var", self.rng.choice(sorted(FLOAT_VARS))]
        return self.rng.choice([0.5, 0.1, 2.0, -0.0, 1e15, 3.75, -7.25, 1e-3])

    def int_(self, depth: int) -> Any:
        if depth <= 0 or self.rng.random() < 0.2:
            return self.leaf_int()
        d = depth - 1
        op = self.rng.choice(["+", "-", "*", "//", "max", "min", "<=", "<", "if", "at", "at"])
        if op in ("+", "*", "max", "min"):
            n = self.rng.randint(1 if op != "*" else 2, 4 if op != "*" else 3)
            return [op, *(self.int_(d) for _ in range(n))]
        if op == "-":
            return [op, self.int_(d), self.int_(d)]
        if op == "//":
            divisor = (
                self.int_(d) if self.rng.random() < 0.2 else self.rng.choice([1, 2, 3, 7, 256, -4, 10**9])
            )
            return [op, self.int_(d), divisor]
        if op in ("<=", "<"):
            return [op, self.num(d), self.num(d)]
        if op == "if":
            return [op, self.num(d), self.int_(d), self.int_(d)]
        # at: a variable table or a literal list; the index is mostly clamped into range
        if self.rng.random() < 0.6:
            name = self.rng.choice(sorted(TABLES))
            table: Any = ["var", name]
            n = len(TABLES[name])
        else:
            table = [self.rng.randint(-(2**60), 2**60) for _ in range(self.rng.randint(1, 5))]
            n = len(table)
        index = self.int_(d)
        if self.rng.random() < 0.97:
            index = ["max", ["min", index, n - 1], -n]
        return ["at", table, index]

    def float_(self, depth: int) -> Any:
        if depth <= 0 or self.rng.random() < 0.15:
            return self.leaf_float()
        d = depth - 1
        op = self.rng.choice(["/", "/", "+", "-", "*", "//", "max", "min", "if"])
        if op == "/":
            divisor = (
                self.num(d) if self.rng.random() < 0.3 else self.rng.choice([3, 7, 0.5, -2, 10**20, 1e-3])
            )
            return [op, self.num(d), divisor]
        if op in ("+", "*", "max", "min"):
            args = [self.float_(d), *(self.num(d) for _ in range(self.rng.randint(0, 2)))]
            self.rng.shuffle(args)
            return [op, *args]
        if op == "-":
            args = [self.float_(d), self.num(d)]
            self.rng.shuffle(args)
            return [op, *args]
        if op == "//":
            divisor = self.float_(d) if self.rng.random() < 0.2 else self.rng.choice([0.5, 3, -1.5, 1e10])
            return [op, self.num(d), divisor]
        return [op, self.num(d), self.float_(d), self.num(d)]

    def num(self, depth: int) -> Any:
        return self.float_(depth) if self.rng.random() < 0.3 else self.int_(depth)


def _expected(tree: Any, env: dict[str, Any]) -> str | None:
    """'i:<int>', 'f:<repr>' or 'error'; None for trees to drop (Python overflows where JS gives inf)."""
    try:
        value = evaluate(tree, env)
    except OverflowError:
        return None
    except (ZeroDivisionError, IndexError, KeyError, TypeError, ValueError):
        return "error"
    if isinstance(value, int):
        return f"i:{value}" if abs(value) < 2**400 else None
    if math.isnan(value):
        return None
    return f"f:{value!r}"


def make_vectors(n: int, seed: int = 20260808) -> dict[str, Any]:
    gen = _Gen(random.Random(seed))
    env: dict[str, Any] = {**INT_VARS, **FLOAT_VARS, **TABLES}
    vectors = []
    while len(vectors) < n:
        tree = gen.int_(5) if gen.rng.random() < 0.6 else gen.float_(5)
        expect = _expected(tree, env)
        if expect is not None:
            vectors.append({"tree": tree, "expect": expect})
    # sum() of floats is compensated (Neumaier) from Python 3.12 on; the JS adds left to right
    return {"env": env, "vectors": vectors, "float_exact": sys.version_info < (3, 12)}


def test_vectors_cover_every_operator_and_outcome():
    vectors = make_vectors(N_TREES)["vectors"]
    text = json.dumps([v["tree"] for v in vectors])
    for op in ("var", "+", "-", "*", "//", "max", "min", "<=", "<", "if", "at", "/"):
        assert f'"{op}"' in text
    kinds = {v["expect"][:2] for v in vectors}
    assert kinds == {"i:", "f:", "er"}
    assert sum(v["expect"] == "error" for v in vectors) < N_TREES // 5


def test_js_evaluator_matches_python(tmp_path):
    path = tmp_path / "vectors.json"
    path.write_text(json.dumps(make_vectors(N_TREES)))
    result = subprocess.run(
        [NODE, "--test", str(HERE / "evaluator.test.mjs")],
        env={**os.environ, "QWENFIT_VECTORS": str(path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# skipped 0" in result.stdout, result.stdout[-2000:]
