// node --test tests/browser/evaluator.test.mjs
//
// Unit checks of the calculator's evaluator (docs/javascripts/qwenfit-calc.mjs) and, when
// QWENFIT_VECTORS names a file, the random formula trees that tests/browser/test_calc_evaluator.py
// evaluated with qwenfit.core.expr.evaluate: every value must be identical.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  compile,
  evaluate,
  evaluateFormula,
  floorDiv,
  formatFixed,
  formatGB,
  formatInt,
  maxContext,
  parseJSON,
  search,
  trueDiv,
  withDefs,
} from "../../docs/javascripts/qwenfit-calc.mjs";

test("JSON numbers keep Python's int/float split and exact big integers", () => {
  const v = parseJSON('{"a": 9007199254740993, "b": 3.0, "c": [1, -2e3, "x\\u00e9"], "d": null, "e": true}');
  assert.equal(v.a, 9007199254740993n);
  assert.equal(typeof v.b, "number");
  assert.deepEqual(v.c, [1n, -2000, "xé"]);
  assert.equal(v.d, null);
  assert.equal(v.e, true);
  assert.throws(() => parseJSON("[1,]"));
  assert.throws(() => parseJSON("[1] x"));
});

test("floor division rounds toward minus infinity, like Python", () => {
  assert.equal(floorDiv(7n, 2n), 3n);
  assert.equal(floorDiv(-7n, 2n), -4n);
  assert.equal(floorDiv(7n, -2n), -4n);
  assert.equal(floorDiv(-7n, -2n), 3n);
  assert.equal(floorDiv(-6n, 2n), -3n);
  assert.equal(floorDiv(7.5, 2n), 3);
  assert.equal(floorDiv(-7.5, 2n), -4);
  assert.ok(Object.is(floorDiv(-0.5, 2n), -1));
  assert.ok(Object.is(floorDiv(0.5, -2n), -1));
  assert.ok(Object.is(floorDiv(0.0, -2n), -0));
  assert.throws(() => floorDiv(1n, 0n));
});

test("true division of big integers is correctly rounded", () => {
  assert.equal(trueDiv(1n, 3n), 1 / 3);
  assert.equal(trueDiv(10n ** 30n, 3n), 3.333333333333333e29);
  assert.equal(trueDiv(2n ** 60n + 1n, 2n ** 7n), 9007199254740992);
  assert.ok(Object.is(trueDiv(0n, -5n), -0));
  assert.equal(trueDiv(-(10n ** 20n), 7n), -14285714285714285714.285714);
});

test("operators", () => {
  const env = { ctx: 1000n, t: [5n, 6n, 7n], f: 2.5 };
  assert.equal(evaluate(["+", ["var", "ctx"], 24n, ["*", 2n, 3n]], env), 1030n);
  assert.equal(evaluate(["-", 1n, ["var", "ctx"]], env), -999n);
  assert.equal(evaluate(["max", 3n, 3.0], env), 3n); // the first of equals
  assert.equal(evaluate(["min", 3.0, 3n], env), 3.0);
  assert.equal(evaluate(["if", ["<=", ["var", "ctx"], 999n], 1n, 2n], env), 2n);
  assert.equal(evaluate(["if", ["<", 1n, 2n], 1n, 2n], env), 1n);
  assert.equal(evaluate(["at", ["var", "t"], -1n], env), 7n);
  assert.equal(evaluate(["at", [10n, 20n], 1n], env), 20n);
  assert.equal(evaluate(["*", ["var", "f"], 2n], env), 5);
  assert.throws(() => evaluate(["at", ["var", "t"], 3n], env));
  assert.throws(() => evaluate(["var", "nope"], env));
  assert.throws(() => evaluate(["^", 1n, 2n], env));
  assert.deepEqual([...withDefs([["$0", ["*", 2n, ["var", "ctx"]]], ["$1", ["+", ["var", "$0"], 1n]]], env)
    .entries()].slice(-2), [["$0", 2000n], ["$1", 2001n]]);
});

test("display strings", () => {
  assert.equal(formatGB(21_155_768_832n), "21.16 GB");
  assert.equal(formatGB(4_999_999n), "0.00 GB");
  assert.equal(formatGB(5_000_000n), "0.01 GB");
  assert.equal(formatGB(-246_022_720n), "-1.75 GB"); // Python: q // 100 and q % 100 of q = -25
  assert.equal(formatInt(262144n), "262,144");
  assert.equal(formatInt(-1234567n), "-1,234,567");
  assert.equal(formatInt(12n), "12");
  assert.equal(formatFixed(0.25, 1), "0.2"); // exact tie: half to even, as Python's format()
  assert.equal(formatFixed(0.35, 1), "0.3"); // 0.35 is 0.34999...
  assert.equal(formatFixed(2.675, 2), "2.67");
  assert.equal(formatFixed(1e22, 1), "10000000000000000000000.0");
  assert.equal(formatFixed(-0.04, 1), "-0.0");
  assert.equal(formatFixed(123.456, 0), "123");
});

test("the maximum-context search is qwenfit.api._search", () => {
  assert.equal(search((x) => x <= 1000, 256, 262144, 256), 768);
  assert.equal(search(() => false, 256, 262144, 256), 0);
  assert.equal(search(() => true, 256, 262144, 256), 262144);
  assert.equal(search((x) => x <= 5, 1, 10, 1), 5);
  const formula = {
    terms: [
      { name: "weights", device: "gpu", bytes: 1000n },
      { name: "kv_cache", device: "gpu", bytes: ["*", ["var", "ctx"], 2n] },
      { name: "output_buffer", device: "cpu", bytes: 7n },
    ],
    budget: { gpu: ["var", "vram"] },
    decode_tokens_per_s: ["/", 10n, 4n],
  };
  const r = evaluateFormula(formula, { ctx: 100n, vram: 1100n });
  assert.equal(r.used.gpu, 1200n);
  assert.equal(r.shortfall, 100n);
  assert.equal(r.fits, false);
  assert.equal(r.speed, 2.5);
  assert.equal(maxContext(formula, { vram: 1100n }, 1, 1000), 50);
});

test("random formula trees equal qwenfit.core.expr.evaluate", { skip: !process.env.QWENFIT_VECTORS }, () => {
  const data = parseJSON(readFileSync(process.env.QWENFIT_VECTORS, "utf8"));
  const bad = [];
  let floats = 0;
  const scope = new Map(Object.entries(data.env));
  for (const [k, v] of data.vectors.entries()) {
    let got;
    try {
      got = evaluate(v.tree, data.env);
    } catch (err) {
      got = { error: err.message };
    }
    // the compiled form (plan mode's) gives the same value, bit for bit, or the same refusal
    let compiled;
    try {
      compiled = compile(v.tree)(scope);
    } catch (err) {
      compiled = { error: err.message };
    }
    const same = typeof got === "object" && got !== null
      ? typeof compiled === "object" && compiled !== null && "error" in compiled
      : Object.is(got, compiled) || (typeof got === "bigint" && got === compiled);
    if (!same) bad.push({ k, compiled: String(compiled), interpreted: String(got?.error ?? got) });
    const want = v.expect;
    let ok;
    if (want === "error") ok = typeof got === "object" && got !== null && "error" in got;
    else if (want.startsWith("i:")) ok = typeof got === "bigint" && got === BigInt(want.slice(2));
    else {
      floats++;
      const w = Number(want.slice(2).replace("inf", "Infinity"));
      ok = typeof got === "number" && (Object.is(got, w) || (!data.float_exact && Math.abs(got - w) <= 1e-12 * Math.abs(w)));
    }
    if (!ok) bad.push({ k, want, got: typeof got === "bigint" ? `i:${got}` : got });
  }
  assert.ok(floats > 0);
  assert.deepEqual(bad.slice(0, 10), [], `${bad.length} of ${data.vectors.length} differ`);
});
