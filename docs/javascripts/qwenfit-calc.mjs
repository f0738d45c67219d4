// qwenfit calculator: evaluates the formulas `qwenfit export` writes (docs/assets/calculator.json).
//
// Part 1 (no DOM; `node --test` imports it): a JSON reader that keeps integers exact (BigInt), an
// evaluator with the semantics of qwenfit.core.expr.evaluate, the maximum-context search of
// qwenfit.api._search and the display rounding. Part 2: the calculator page's UI, mounted only in a
// browser. No formula lives here: every byte count comes from the exported expression trees.

import { loadCalculatorData, unpackValue } from "./qwenfit-data.mjs";

// ------------------------------------------------------------------------------------------------
// Part 1: JSON with exact integers

const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\]|\\.)*"/y;

/**
 * Parse JSON text the way Python's json.loads types it: a number written without a fraction or an
 * exponent is an int (a BigInt here, exact at any size), any other number a float (a Number).
 */
export function parseJSON(text) {
  let i = 0;
  const ws = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };
  const fail = (what) => {
    throw new SyntaxError(`JSON: ${what} at offset ${i}`);
  };
  const value = () => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const out = {};
      ws();
      if (text[i] === "}") {
        i++;
        return out;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a key");
        const key = string();
        ws();
        if (text[i++] !== ":") fail("expected ':'");
        out[key] = value();
        ws();
        const d = text[i++];
        if (d === "}") return out;
        if (d !== ",") fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const out = [];
      ws();
      if (text[i] === "]") {
        i++;
        return out;
      }
      for (;;) {
        out.push(value());
        ws();
        const d = text[i++];
        if (d === "]") return out;
        if (d !== ",") fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    if (text.startsWith("true", i)) {
      i += 4;
      return true;
    }
    if (text.startsWith("false", i)) {
      i += 5;
      return false;
    }
    if (text.startsWith("null", i)) {
      i += 4;
      return null;
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) fail("unexpected character");
    i = NUMBER.lastIndex;
    return m[1] === undefined && m[2] === undefined ? BigInt(m[0]) : Number(m[0]);
  };
  const string = () => {
    let end = i + 1;
    for (let c = text.charCodeAt(end); c !== 34 && c !== 92 && end < text.length; c = text.charCodeAt(++end));
    if (text.charCodeAt(end) === 34) {
      const out = text.slice(i + 1, end); // no escapes: the common case
      i = end + 1;
      return out;
    }
    STRING.lastIndex = i;
    const m = STRING.exec(text);
    if (!m) fail("unterminated string");
    i = STRING.lastIndex;
    return JSON.parse(m[0]);
  };
  const out = value();
  ws();
  if (i !== text.length) fail("trailing characters");
  return out;
}

// ------------------------------------------------------------------------------------------------
// Part 1: Python's number semantics. Values are BigInt (Python int) or Number (Python float).

export class FormulaError extends Error {}

const isInt = (x) => typeof x === "bigint";
const isNum = (x) => typeof x === "bigint" || typeof x === "number";
// float(int): Number(BigInt) rounds to nearest, ties to even, like CPython's int -> float
const toFloat = (x) => (typeof x === "bigint" ? Number(x) : x);

function need(x, op) {
  if (!isNum(x)) throw new FormulaError(`${op}: operand ${String(x)} is not a number`);
  return x;
}

function add(a, b) {
  return isInt(a) && isInt(b) ? a + b : toFloat(a) + toFloat(b);
}

function sub(a, b) {
  return isInt(a) && isInt(b) ? a - b : toFloat(a) - toFloat(b);
}

function mul(a, b) {
  return isInt(a) && isInt(b) ? a * b : toFloat(a) * toFloat(b);
}

/** Python's a // b: floor division (toward -infinity) for ints, CPython's float_floor_div otherwise. */
export function floorDiv(a, b) {
  if (isInt(a) && isInt(b)) {
    if (b === 0n) throw new FormulaError("integer division by zero");
    const q = a / b;
    return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
  }
  const vx = toFloat(a);
  const wx = toFloat(b);
  if (wx === 0) throw new FormulaError("float floor division by zero");
  // CPython Objects/floatobject.c _float_div_mod (JS % on Numbers is C's fmod)
  let mod = vx % wx;
  let div = (vx - mod) / wx;
  if (mod) {
    if (wx < 0 !== mod < 0) {
      mod += wx;
      div -= 1.0;
    }
  }
  if (div) {
    let floordiv = Math.floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
    return floordiv;
  }
  const sign = vx / wx; // copysign(0.0, vx / wx)
  return sign < 0 || Object.is(sign, -0) ? -0 : 0;
}

/** Python's a % b for ints (the sign of b). */
export function floorMod(a, b) {
  return a - floorDiv(a, b) * b;
}

const bitLength = (n) => (n === 0n ? 0 : n.toString(2).length);
const TWO53 = 2n ** 53n;

/** Python's a / b: for two ints the correctly rounded quotient (CPython long_true_divide). */
export function trueDiv(a, b) {
  if (!(isInt(a) && isInt(b))) {
    const wx = toFloat(b);
    if (wx === 0) throw new FormulaError("float division by zero");
    return toFloat(a) / wx;
  }
  if (b === 0n) throw new FormulaError("division by zero");
  const negative = a < 0n !== b < 0n;
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  if (x <= TWO53 && y <= TWO53) return Number(a) / Number(b); // both exact: IEEE rounds correctly
  if (x === 0n) return negative ? -0 : 0;
  // scale so the integer quotient has 55+ bits, then round to 53 bits, ties to even
  const k = 55 - (bitLength(x) - bitLength(y));
  if (k > 0) x <<= BigInt(k);
  else y <<= BigInt(-k);
  let q = x / y;
  const sticky = x % y !== 0n;
  const excess = bitLength(q) - 53;
  const rest = q & ((1n << BigInt(excess)) - 1n);
  const half = 1n << BigInt(excess - 1);
  q >>= BigInt(excess);
  if (rest > half || (rest === half && (sticky || (q & 1n) === 1n))) q += 1n;
  let value = Number(q); // <= 2**53: exact
  let e = excess - k;
  while (e > 1000) {
    value *= 2 ** 1000;
    e -= 1000;
  }
  while (e < -1000) {
    value *= 2 ** -1000;
    e += 1000;
  }
  value *= 2 ** e;
  return negative ? -value : value;
}

const truthy = (x) => (isInt(x) ? x !== 0n : x !== 0);

// ------------------------------------------------------------------------------------------------
// Part 1: the formula evaluator (qwenfit.core.expr.evaluate)

/**
 * The value of formula `e` (a JSON tree as parseJSON returns it, or a number) with variables from
 * `env` (an object or a Map; ints as BigInt, floats as Number, tables as arrays of BigInt).
 */
export function evaluate(e, env) {
  if (isNum(e)) return e;
  if (!Array.isArray(e) || e.length === 0 || typeof e[0] !== "string") {
    throw new FormulaError(`not a formula: ${JSON.stringify(e, (_, v) => (isInt(v) ? String(v) : v))}`);
  }
  const op = e[0];
  if (op === "var") {
    const name = e[1];
    const v = env instanceof Map ? env.get(name) : Object.hasOwn(env, name) ? env[name] : undefined;
    if (v === undefined) throw new FormulaError(`formula variable '${name}' has no value`);
    return v;
  }
  if (op === "at") {
    const table = e[1];
    const symbolic = Array.isArray(table) && table.length > 0 && typeof table[0] === "string";
    const rows = symbolic ? evaluate(table, env) : table;
    const i = evaluate(e[2], env);
    if (!Array.isArray(rows)) throw new FormulaError("at: the table is not a list");
    if (!isInt(i)) throw new FormulaError("at: list indices must be integers");
    const n = BigInt(rows.length);
    const j = i < 0n ? i + n : i; // Python's negative indices
    if (j < 0n || j >= n) throw new FormulaError(`at: index ${i} out of range for ${rows.length} rows`);
    return rows[Number(j)];
  }
  if (op === "if") return truthy(need(evaluate(e[1], env), op)) ? evaluate(e[2], env) : evaluate(e[3], env);
  const v = [];
  for (let k = 1; k < e.length; k++) v.push(need(evaluate(e[k], env), op));
  switch (op) {
    case "+": {
      let out = 0n; // sum(): left to right from int 0
      for (const x of v) out = add(out, x);
      return out;
    }
    case "-":
      if (v.length < 2) throw new FormulaError("'-' needs two operands");
      return sub(v[0], v[1]);
    case "*": {
      let out = 1n;
      for (const x of v) out = mul(out, x);
      return out;
    }
    case "//":
      return floorDiv(v[0], v[1]);
    case "/":
      return trueDiv(v[0], v[1]);
    case "max":
    case "min": {
      if (v.length === 0) throw new FormulaError(`${op}() of nothing`);
      let best = v[0]; // the first of equals, as Python's max()/min() keep it
      for (const x of v.slice(1)) if (op === "max" ? x > best : x < best) best = x;
      return best;
    }
    case "<=":
      return v[0] <= v[1] ? 1n : 0n;
    case "<":
      return v[0] < v[1] ? 1n : 0n;
    default:
      throw new FormulaError(`unknown formula operator '${op}'`);
  }
}

const COMPILED = new WeakMap();

/**
 * `e` compiled to a closure of a scope (a Map): the same semantics as evaluate(), without walking
 * the tree again on every call (plan mode evaluates each formula thousands of times).
 */
export function compile(e) {
  if (isNum(e)) return () => e;
  let f = COMPILED.get(e);
  if (f) return f;
  if (!Array.isArray(e) || e.length === 0 || typeof e[0] !== "string") return () => evaluate(e, {});
  const op = e[0];
  if (op === "var") {
    const name = e[1];
    f = (env) => {
      const v = env.get(name);
      if (v === undefined) throw new FormulaError(`formula variable '${name}' has no value`);
      return v;
    };
  } else if (op === "if") {
    const [c, a, b] = e.slice(1).map(compile);
    f = (env) => (truthy(need(c(env), op)) ? a(env) : b(env));
  } else if (op === "at") {
    const table = e[1];
    const symbolic = Array.isArray(table) && table.length > 0 && typeof table[0] === "string";
    const rowsOf = symbolic ? compile(table) : () => table;
    const index = compile(e[2]);
    f = (env) => {
      const rows = rowsOf(env);
      const i = index(env);
      if (!Array.isArray(rows)) throw new FormulaError("at: the table is not a list");
      if (!isInt(i)) throw new FormulaError("at: list indices must be integers");
      const n = BigInt(rows.length);
      const j = i < 0n ? i + n : i;
      if (j < 0n || j >= n) throw new FormulaError(`at: index ${i} out of range for ${rows.length} rows`);
      return rows[Number(j)];
    };
  } else {
    const args = e.slice(1).map(compile);
    const arg = (k, env) => need(args[k](env), op);
    switch (op) {
      case "+":
        f = (env) => {
          let out = 0n;
          for (let k = 0; k < args.length; k++) out = add(out, arg(k, env));
          return out;
        };
        break;
      case "-":
        if (args.length < 2) return () => evaluate(e, {});
        f = (env) => sub(arg(0, env), arg(1, env));
        break;
      case "*":
        f = (env) => {
          let out = 1n;
          for (let k = 0; k < args.length; k++) out = mul(out, arg(k, env));
          return out;
        };
        break;
      case "//":
        f = (env) => floorDiv(arg(0, env), arg(1, env));
        break;
      case "/":
        f = (env) => trueDiv(arg(0, env), arg(1, env));
        break;
      case "max":
      case "min":
        f = (env) => {
          if (args.length === 0) throw new FormulaError(`${op}() of nothing`);
          let best = arg(0, env);
          for (let k = 1; k < args.length; k++) {
            const x = arg(k, env);
            if (op === "max" ? x > best : x < best) best = x;
          }
          return best;
        };
        break;
      case "<=":
        f = (env) => (arg(0, env) <= arg(1, env) ? 1n : 0n);
        break;
      case "<":
        f = (env) => (arg(0, env) < arg(1, env) ? 1n : 0n);
        break;
      default:
        f = (env) => evaluate(e, env);
    }
  }
  COMPILED.set(e, f);
  return f;
}

/** Evaluate shared definitions (``[[name, formula], ...]``, in order) into a copy of `env`. */
export function withDefs(defs, env) {
  const scope = new Map(env instanceof Map ? env : Object.entries(env));
  for (const [name, node] of defs || []) scope.set(name, evaluate(node, scope));
  return scope;
}

/** The names of the variables a formula reads. */
export function variables(e, out = new Set()) {
  if (Array.isArray(e) && e.length && typeof e[0] === "string") {
    if (e[0] === "var") out.add(e[1]);
    else for (const a of e.slice(1)) variables(a, out);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Part 1: display rounding (the same strings Python prints)

/** Decimal GB, two decimals, rounded half up on the byte count: "21.16 GB" (export display.gb). */
export function formatGB(bytes) {
  const q = floorDiv(BigInt(bytes) + 5_000_000n, 10_000_000n);
  const frac = String(floorMod(q, 100n)).padStart(2, "0");
  return `${floorDiv(q, 100n)}.${frac} GB`;
}

/** Python's f"{n:,}" for an int. */
export function formatInt(n) {
  const s = String(BigInt(n));
  const neg = s.startsWith("-");
  const digits = neg ? s.slice(1) : s;
  return (neg ? "-" : "") + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Python's f"{x:.{digits}f}" for a float: the exact binary value rounded half to even. */
export function formatFixed(x, digits) {
  x = toFloat(x);
  if (Number.isNaN(x)) return "nan";
  const negative = x < 0 || Object.is(x, -0);
  if (!Number.isFinite(x)) return negative ? "-inf" : "inf";
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp;
  if (biased === 0) exp = -1074;
  else {
    mant |= 1n << 52n;
    exp = biased - 1075;
  }
  // |x| = mant * 2**exp; want round_half_even(|x| * 10**digits)
  const scale = 10n ** BigInt(digits);
  let n;
  if (exp >= 0) n = (mant << BigInt(exp)) * scale;
  else {
    const num = mant * scale;
    const den = 1n << BigInt(-exp);
    n = num / den;
    const twice = 2n * (num % den);
    if (twice > den || (twice === den && (n & 1n) === 1n)) n += 1n;
  }
  let s = String(n).padStart(digits + 1, "0");
  if (digits > 0) s = `${s.slice(0, -digits)}.${s.slice(-digits)}`;
  return (negative ? "-" : "") + s;
}

// ------------------------------------------------------------------------------------------------
// Part 1: one configuration

/** A tok/s figure as shown: rounded half up, floor(x + 0.5) (export display.tok_s). */
export function roundTokS(x) {
  return Math.floor(toFloat(x) + 0.5);
}

/** "~42 tok/s" (roundTokS); "not known" without a rate. */
export function formatTokS(x) {
  return x === null || x === undefined ? "not known" : `~${roundTokS(x)} tok/s`;
}

/**
 * The measurement category whose out-of-sample band a decode speed carries (qwenfit.core.fit.speed_bands.
 * category_of, qwenfit.export.speed_category): `seqs` sequences, `cpuOnly`, `nGpus`, `offloaded` (layers with
 * tensors in host RAM), `isMoe`, `hw` (the catalog device, or null).
 */
export function speedCategory({ seqs, cpuOnly, nGpus, offloaded, isMoe, hw }) {
  if (seqs > 1) return "batched (concurrency > 1)";
  if (cpuOnly) return "CPU only";
  if (nGpus > 1) return "multi-GPU TP/PP";
  if (offloaded) return "CPU-expert offload";
  if (hw && hw.vendor === "apple") return "Apple/MLX";
  if (hw && hw.kind === "unified") return "unified-memory APU";
  return isMoe ? "GPU MoE" : "GPU dense";
}

/** [low, high] tok/s: `speed` times the band [p10, p90] category `cat` earned leave-one-source-out
 * (data.speed_bands; the overall band for a category without one). */
export function speedBand(data, cat, speed) {
  const bands = data.speed_bands.decode;
  const [lo, hi] = bands[cat] ?? bands.overall;
  const x = toFloat(speed);
  return [x * lo, x * hi];
}

/**
 * The out-of-sample range of a decode speed, "43-58 tok/s" (qwenfit.export.format_speed_range), for the
 * calculator's configuration; "" without a speed.
 */
export function speedRange(data, state, formula, speed) {
  if (speed === null || speed === undefined || !data.speed_bands) return "";
  const model = data.models[state.model];
  const cat = speedCategory({
    seqs: Number(state.seqs), cpuOnly: formula.cpu_only, nGpus: Number(formula.n_gpus),
    offloaded: Number(state.n_cpu_moe ?? 0) > 0 && model.is_moe, isMoe: model.is_moe,
    hw: data.hardware[state.hardware] ?? null,
  });
  const [lo, hi] = speedBand(data, cat, speed);
  return `${roundTokS(lo)}-${roundTokS(hi)} tok/s`;
}

/**
 * Evaluate one exported formula at `env`: its shared `defs` first, then every term, the budgets
 * (`budget_unified` on unified memory; the device "total" is judged against the sum of all terms)
 * and, with `speed`, the decode rate. Returns {terms: [{...term, bytes}], used: {device: bytes},
 * total, budget: {device: bytes}, judged: {device: bytes}, fits, shortfall, speed}.
 */
export function evaluateFormula(formula, env, { unified = false, speed = true } = {}) {
  const scope = withDefs(formula.defs, env);
  const terms = formula.terms.map((t) => ({ ...t, bytes: evaluate(t.bytes, scope) }));
  const used = {};
  let total = 0n;
  for (const t of terms) {
    used[t.device] = add(used[t.device] ?? 0n, t.bytes);
    total = add(total, t.bytes);
  }
  const trees = (unified && formula.budget_unified) || formula.budget || {};
  const budget = {};
  const judged = {};
  let shortfall = 0n; // Estimate.shortfall_bytes: the worst budgeted device's excess
  for (const [device, e] of Object.entries(trees)) {
    budget[device] = evaluate(e, scope);
    judged[device] = device === "total" ? total : (used[device] ?? 0n);
    const miss = sub(judged[device], budget[device]);
    if (miss > shortfall) shortfall = miss;
  }
  const tree = formula.decode_tokens_per_s;
  const rate = speed && tree !== null && tree !== undefined ? evaluate(tree, scope) : null;
  return { terms, used, total, budget, judged, fits: shortfall === 0n, shortfall, speed: rate };
}

/** qwenfit.api._search: the largest multiple of `step` in [lo, hi] where fits() holds (monotone), or 0. */
export function search(fits, lo, hi, step) {
  if (!fits(lo)) return 0;
  let best = lo;
  let a = Math.floor(lo / step);
  let b = Math.floor(hi / step);
  while (a <= b) {
    const mid = Math.floor((a + b) / 2);
    if (mid * step >= lo && fits(mid * step)) {
      best = mid * step;
      a = mid + 1;
    } else b = mid - 1;
  }
  return best;
}

/** The maximum context of `formula` at `env` (only ctx varies), in `step` tokens up to `hi`. */
export function maxContext(formula, env, step, hi, { unified = false } = {}) {
  const base = env instanceof Map ? Object.fromEntries(env) : env;
  const fits = (ctx) => evaluateFormula(formula, { ...base, ctx: BigInt(ctx) }, { unified, speed: false }).fits;
  return search(fits, step, hi, step);
}

// ------------------------------------------------------------------------------------------------
// Part 1: what the page shows for one state of the form (pure: the DOM part only renders it).
// A state is {model, engine, quant, kv, placement, ctx, seqs, n_cpu_moe, hardware, vram_gb, ram_gb},
// the configuration qwenfit.export.evaluate_export takes.

/** Python's int(x * 1e9) for a user-typed decimal GB figure (the same double arithmetic). */
export function gbToBytes(gb) {
  const x = Number(gb);
  if (!Number.isFinite(x) || x <= 0) throw new FormulaError(`not a size in GB: ${gb}`);
  return BigInt(Math.trunc(x * 1e9));
}

/** The formula of (model, engine, kv_cache, placement), or undefined. */
export function findFormula(data, model, engine, kv, placement, variant = null) {
  if (variant) {
    const v = data.variants;
    if (!v) return undefined;
    if (!v._index) {
      const index = new Map();
      for (const f of v.formulas) index.set(`${f.model}\u0000${f.engine}\u0000${f.kv_cache}\u0000${f.placement}\u0000${f.variant}`, f);
      Object.defineProperty(v, "_index", { value: index, enumerable: false });
    }
    return v._index.get(`${model}\u0000${engine}\u0000${kv}\u0000${placement}\u0000${variant}`);
  }
  if (!data._index) {
    const index = new Map();
    for (const f of data.formulas) index.set(`${f.model}\u0000${f.engine}\u0000${f.kv_cache}\u0000${f.placement}`, f);
    Object.defineProperty(data, "_index", { value: index, enumerable: false });
  }
  return data._index.get(`${model}\u0000${engine}\u0000${kv}\u0000${placement}`);
}

/** The toggles' formula variant of a state ("vision", "mtp", "vision+mtp") or null (text only). */
export function variantOf(state) {
  const on = (x) => x === true || x === "1" || x === 1 || x === "true";
  const v = [on(state.vision) ? "vision" : "", on(state.mtp) ? "mtp" : ""].filter(Boolean).join("+");
  return v || null;
}

/** The hardware's formula inputs for `formula` (its `rates` key), or undefined where it has none. */
export function hardwareRates(data, hardware, formula) {
  const source = hardware === "custom" ? data.custom_hardware : data.hardware[hardware];
  return source?.env?.[formula.rates];
}

/** Host RAM kept for the system (qwenfit.core.hardware.default_ram_reserve): RAM / divisor, within
 * [min, max], never more than half of it. */
export function ramReserve(data, ram) {
  const r = data.ram_reserve;
  let keep = ram / BigInt(r.divisor);
  if (keep < BigInt(r.min)) keep = BigInt(r.min);
  if (keep > BigInt(r.max)) keep = BigInt(r.max);
  return keep < ram / 2n ? keep : ram / 2n;
}

/**
 * The environment of one configuration (qwenfit.export.evaluate_export): the quant's weight inputs,
 * the hardware's inputs for the formula's rates, the user's GPU memory (custom hardware) and RAM
 * (unless unified memory fixes it), context, sequences and --n-cpu-moe. Returns {env, unified}.
 */
export function configEnv(data, state, formula) {
  const quant = data.models[state.model]?.quants?.[state.engine]?.[state.quant];
  if (!quant) throw new FormulaError(`no ${state.quant} for ${state.model} on ${state.engine}`);
  const rates = hardwareRates(data, state.hardware, formula);
  if (!rates) throw new FormulaError(`${state.hardware} has no inputs for ${formula.rates}`);
  const variant = variantOf(state);
  const changed = variant ? data.variants?.env?.[state.model]?.[state.engine]?.[state.quant]?.[variant] : undefined;
  if (variant && !changed) throw new FormulaError(`no ${variant} inputs for ${state.quant} of ${state.model} on ${state.engine}`);
  const env = { ...quant.env, ...(changed ?? {}), ...rates };
  let unified = false;
  if (state.hardware === "custom") {
    if (state.placement !== "cpu") env.vram = gbToBytes(state.vram_gb);
  } else {
    unified = data.hardware[state.hardware].kind === "unified";
  }
  // unified memory: all of the device's (the export's "ram" is already net of the default reserve), less
  // the reserve below, as qwenfit.core.hardware.target_for takes it
  env.ram = Object.hasOwn(env, "ram") ? BigInt(data.hardware[state.hardware].memory_bytes) : gbToBytes(state.ram_gb);
  env.ram -= state.ram_reserve_gb == null
    ? ramReserve(data, env.ram)
    : BigInt(Math.trunc(Number(state.ram_reserve_gb) * 1e9)); // the visitor's own reserve (0 allowed)
  env.seqs = BigInt(state.seqs);
  env.n_cpu_moe = BigInt(state.n_cpu_moe ?? 0);
  env.ctx = BigInt(state.ctx);
  env.depth = BigInt(state.depth ?? 4096); // decode speed with this many tokens in the context (speed.DEFAULT_DEPTH)
  return { env, unified };
}

/**
 * A launch command from its traced form (qwenfit.core.command.render_json): groups of words joined by
 * one space (none at the start of a line), "\n" line breaks, groups shown when their condition holds;
 * a word is a string, ["num", formula], ["text", name] (a string of the environment) or ["cat", ...].
 */
export function renderCommand(groups, env) {
  const word = (t) => {
    if (typeof t === "string") return t;
    if (t[0] === "text") return String(env[t[1]]);
    if (t[0] === "cat") return t.slice(1).map(word).join("");
    return String(evaluate(t[1], env));
  };
  let out = "";
  for (const g of groups) {
    if (g === "\n") {
      out += "\n";
      continue;
    }
    const [when, ...words] = g;
    if (when !== 1n && when !== 1 && !isTrue(evaluate(when, env))) continue;
    const s = words.map(word).join(" ");
    if (!s) continue;
    out += out === "" || out.endsWith("\n") ? s : ` ${s}`;
  }
  return out;
}

const isTrue = (x) => (typeof x === "bigint" ? x !== 0n : x !== 0);

/**
 * Everything the page shows for `state`: {texts, devices, result, ...}. `texts` holds every
 * displayed number, keyed as the page's data-parity attributes and as
 * qwenfit.export.evaluate_export returns them (plus the launch command).
 */
export function computeView(data, state) {
  const formula = findFormula(data, state.model, state.engine, state.kv, state.placement, variantOf(state));
  if (!formula) throw new FormulaError(`no formula for ${state.model} / ${state.engine} / ${state.kv} / ${state.placement}`);
  const { env, unified } = configEnv(data, state, formula);
  const speed = Object.hasOwn(env, "k:gpu_fs"); // custom hardware has no rate constants
  const result = evaluateFormula(formula, env, { unified, speed });
  const engine = data.engines[state.engine];
  const step = Number(engine.context_step ?? 1);
  const limit = Number(data.models[state.model].native_context);
  const maxCtx = maxContext(formula, env, step, limit, { unified });
  const texts = {};
  result.terms.forEach((t, i) => {
    texts[`term:${i}`] = formatGB(t.bytes);
  });
  const devices = [];
  for (const [device, cap] of Object.entries(result.budget)) {
    texts[`used:${device}`] = formatGB(result.judged[device]);
    texts[`budget:${device}`] = formatGB(cap);
    const terms = device === "total" ? result.terms : result.terms.filter((t) => t.device === device);
    devices.push({ device, used: result.judged[device], budget: cap, terms, list: device !== "total" });
  }
  for (const device of Object.keys(result.used)) {
    if (device in result.budget) continue; // a device no budget judges: its terms, no verdict
    devices.push({ device, used: result.used[device], budget: undefined, list: true,
      terms: result.terms.filter((t) => t.device === device) });
  }
  texts.total = formatGB(result.total);
  texts.verdict = result.fits ? "Fits" : "Does not fit";
  texts.shortfall = result.fits ? "" : formatGB(result.shortfall);
  texts.max_context = maxCtx ? `${formatInt(maxCtx)} tokens` : `none (not even ${formatInt(step)} tokens fit)`;
  texts.speed = formatTokS(result.speed);
  texts.speed_range = speedRange(data, state, formula, result.speed);
  texts.command = formula.command ? renderCommand(formula.command, env) : "";
  let worst = null; // the device that misses most (named next to the shortfall)
  for (const d of devices) {
    if (d.budget === undefined) continue;
    const miss = sub(d.used, d.budget);
    if (worst === null || miss > worst.miss) worst = { device: d.device, miss };
  }
  return { texts, devices, terms: result.terms, result, formula, env, unified, maxCtx, step, limit,
    worst: worst?.device };
}

/** Judged bytes on `device` for each of `quants` at each context of `contexts` (the chart). */
export function memoryCurves(data, state, device, quants, contexts) {
  const formula = findFormula(data, state.model, state.engine, state.kv, state.placement, variantOf(state));
  return quants.map((quant) => {
    const { env, unified } = configEnv(data, { ...state, quant }, formula);
    const points = contexts.map((ctx) => {
      const r = evaluateFormula(formula, { ...env, ctx: BigInt(ctx) }, { unified, speed: false });
      return [ctx, r.judged[device] ?? r.used[device] ?? 0n];
    });
    return { quant, points };
  });
}

// ------------------------------------------------------------------------------------------------
// Part 2: the page. Mounted on <div id="qwenfit-calc"> (docs/calculator.md); only in a browser.

const TERM_COLOURS = {
  weights: "#3f51b5",
  kv_cache: "#009688",
  recurrent_state: "#7cb342",
  compute_buffer: "#fb8c00",
  output_buffer: "#fdd835",
  runtime_reserve: "#8d8d8d",
  fit_margin: "#c8c8c8",
  vision: "#d81b60",
  ctx_checkpoints: "#6d4c41",
  cuda_graphs: "#546e7a",
  pool_split: "#c0ca33",
  offload_copies: "#f4511e",
};
const LINE_COLOURS = ["#3949ab", "#00897b", "#e53935", "#fb8c00", "#8e24aa", "#43a047", "#6d4c41", "#1e88e5"];
const CONTEXT_PRESETS = [4096, 8192, 16384, 32768, 65536, 131072, 262144];
const HASH_KEYS = {
  model: "m", engine: "e", quant: "q", kv: "kv", placement: "p", n_cpu_moe: "ncm", ctx: "ctx", seqs: "seqs",
  hardware: "hw", vram_gb: "vram", ram_gb: "ram", vision: "vis", mtp: "mtp",
};
const STATE_KEYS = Object.keys(HASH_KEYS);

function placementLabel(p) {
  if (p === "cpu") return "CPU only";
  if (p === "unified") return "unified memory";
  const m = /^(gpu|tp)(\d+)$/.exec(p);
  if (!m) return p;
  const n = Number(m[2]);
  if (m[1] === "tp") return n === 1 ? "1 GPU" : `${n} GPUs, tensor parallel`;
  return n === 1 ? "1 GPU" : `${n} GPUs, layer split`;
}

/**
 * A term's source as the page shows it: the docs pages it cites become links, and paths inside
 * qwenfit's repository (its test fixtures, its modules) become what they are, in words.
 */
export function publicSourceText(text) {
  return text
    .replace(/tests\/fixtures\/[\w./-]+(?:,\s*[\w./-]+\.json)*/g, "measured")
    .replace(/\s*\(qwenfit\.core\.[\w.]+(;[^)]*)?\)/g, (_, rest) => (rest ? ` (${rest.slice(1).trim()})` : ""))
    .replace(/qwenfit\.core\.[\w.]+/g, "qwenfit")
    .replace(/\s+/g, " ")
    .trim();
}

function publicSource(text) {
  const out = [];
  const plain = publicSourceText(text);
  const re = /docs\/([\w-]+)\.md(#[\w-]+)?/g;
  let last = 0;
  for (let m = re.exec(plain); m; m = re.exec(plain)) {
    out.push(plain.slice(last, m.index));
    out.push(h("a", { href: `../${m[1]}/${m[2] ?? ""}`, text: `${m[1]}${m[2] ? `: ${m[2].slice(1).replaceAll("_", " ")}` : ""}` }));
    last = re.lastIndex;
  }
  out.push(plain.slice(last));
  return out;
}

function termColour(name) {
  if (TERM_COLOURS[name]) return TERM_COLOURS[name];
  let hue = 0;
  for (const c of name) hue = (hue * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${hue}, 55%, 50%)`;
}

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c) node.append(c);
  return node;
}

function preferred(options, wanted) {
  for (const w of wanted) if (w !== undefined && w !== null && options.includes(w)) return w;
  return options[0];
}

const formulaVars = new WeakMap();
function usesVar(formula, name) {
  if (!formulaVars.has(formula)) {
    const vars = new Set();
    for (const [, node] of formula.defs || []) variables(node, vars);
    for (const t of formula.terms) variables(t.bytes, vars);
    formulaVars.set(formula, vars);
  }
  return formulaVars.get(formula).has(name);
}

class Calculator {
  constructor(root, data) {
    this.root = root;
    this.data = data;
    this.chartPending = false;
    this.build();
    // the chart is drawn at its shown width: again when that changes (a phone turned, the layout settled)
    const fig = this.results.querySelector('[data-qf="chart"]');
    let drawnAt = 0;
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(() => {
        const w = fig.clientWidth;
        if (w && Math.abs(w - drawnAt) > 8) {
          drawnAt = w;
          this.scheduleChart();
        }
      }).observe(fig);
    }
    this.state = this.normalise({ ...this.defaults(), ...this.readHash() });
    this.writeForm();
    this.render();
  }

  defaults() {
    const d = this.data;
    return {
      model: preferred(Object.keys(d.models), ["35B-A3B"]),
      engine: "llama.cpp",
      quant: "Q4_K_M",
      kv: undefined,
      placement: "gpu1",
      n_cpu_moe: 0,
      ctx: 32768,
      seqs: 1,
      hardware: preferred([...Object.keys(d.hardware), "custom"], ["rtx-4090"]),
      vram_gb: 24,
      ram_gb: 64,
      vision: false,
      mtp: false,
    };
  }

  // the options a state offers, each valid for the choices before it
  choices(st) {
    const d = this.data;
    const model = d.models[st.model];
    const has = (e, kv, p) => {
      const f = findFormula(d, st.model, e, kv, p, variantOf(st));
      return f && hardwareRates(d, st.hardware, f) ? f : undefined;
    };
    const engines = Object.keys(d.engines).filter((e) =>
      Object.keys(model.quants?.[e] ?? {}).length &&
      d.engines[e].kv_cache.some((kv) => d.engines[e].placements.some((p) => has(e, kv, p))));
    const engine = preferred(engines, [st.engine]);
    const info = d.engines[engine];
    const quants = Object.keys(model.quants[engine]);
    const kvs = info.kv_cache.filter((kv) => info.placements.some((p) => has(engine, kv, p)));
    const kv = preferred(kvs, [st.kv, info.default_kv]);
    const placements = info.placements.filter((p) => has(engine, kv, p));
    const placement = preferred(placements, [st.placement, "gpu1", "tp1", "unified"]);
    return { engines, engine, quants, kvs, kv, placements, placement, formula: has(engine, kv, placement) };
  }

  normalise(st) {
    const d = this.data;
    if (!d.models[st.model]) st.model = this.defaults().model;
    if (st.hardware !== "custom" && !d.hardware[st.hardware]) st.hardware = "custom";
    // the toggles: only where the export has the model and engine with them (else off, and said why)
    const on = (x) => x === true || x === "1" || x === 1 || x === "true";
    st.vision = on(st.vision);
    st.mtp = on(st.mtp);
    if (st.vision || st.mtp) {
      const engine = preferred(Object.keys(d.engines), [st.engine]);
      const has = (v) => Boolean(d.variants?.formulas.some((f) => f.model === st.model && f.engine === engine && f.variant === v));
      if (st.mtp && !has(st.vision ? "vision+mtp" : "mtp")) st.mtp = false;
      if (st.vision && !has(st.mtp ? "vision+mtp" : "vision")) st.vision = false;
    }
    const c = this.choices(st);
    st.engine = c.engine;
    st.quant = preferred(c.quants, [st.quant, "Q4_K_M", "fp8", "bf16"]);
    st.kv = c.kv;
    st.placement = c.placement;
    const model = d.models[st.model];
    const int = (v, lo, hi, dflt) => {
      const n = Math.trunc(Number(v));
      return Number.isFinite(n) && String(v).trim() !== "" ? Math.min(Math.max(n, lo), hi) : dflt;
    };
    st.n_cpu_moe = c.formula && usesVar(c.formula, "n_cpu_moe") ? int(st.n_cpu_moe, 0, Number(model.n_layers), 0) : 0;
    st.ctx = int(st.ctx, 1, Number(model.native_context), 32768);
    st.seqs = int(st.seqs, 1, Number(d.engines[st.engine].max_sequences ?? 1), 1);
    for (const k of ["vram_gb", "ram_gb"]) {
      const x = Number(st[k]);
      st[k] = Number.isFinite(x) && x > 0 ? x : this.defaults()[k];
    }
    return st;
  }

  build() {
    const field = (label, control, extra = {}) =>
      h("label", { class: "qf-field", ...extra }, h("span", { class: "qf-label", text: label }), control);
    const select = (name) => h("select", { name, "data-qf-input": name });
    const number = (name, attrs = {}) =>
      h("input", { type: "number", name, "data-qf-input": name, inputmode: "decimal", ...attrs });
    const hwSelect = select("hardware");
    const groups = {};
    for (const [id, hw] of Object.entries(this.data.hardware)) {
      (groups[`${hw.vendor ?? "other"}${hw.kind === "unified" ? " (unified memory)" : ""}`] ??= []).push([id, hw]);
    }
    for (const [group, list] of Object.entries(groups).sort()) {
      hwSelect.append(h("optgroup", { label: group },
        list.map(([id, hw]) => h("option", { value: id, text: `${hw.name} (${formatGB(hw.memory_bytes)})` }))));
    }
    hwSelect.append(h("option", { value: "custom", text: "Custom GPU…" }));
    this.form = h("form", { class: "qf-form", "data-qf": "form" },
      h("fieldset", {}, h("legend", { text: "Model" }),
        field("Model", select("model")),
        field("Engine", select("engine")),
        field("Quantization", select("quant")),
        field("KV cache", select("kv"))),
      h("fieldset", {}, h("legend", { text: "Workload" }),
        field("Context (tokens)", number("ctx", { min: 1, step: 1, list: "qf-ctx-presets" })),
        h("datalist", { id: "qf-ctx-presets" }, CONTEXT_PRESETS.map((n) => h("option", { value: n }))),
        field("Sequences", number("seqs", { min: 1, step: 1 })),
        field("Vision tower (images)", h("input", { type: "checkbox", name: "vision", "data-qf-input": "vision" }), { class: "qf-field qf-check", "data-qf": "vision-field" }),
        field("MTP drafting", h("input", { type: "checkbox", name: "mtp", "data-qf-input": "mtp" }), { class: "qf-field qf-check", "data-qf": "mtp-field" }),
        h("p", { class: "qf-note", "data-qf": "variant-note", hidden: true })),
      h("fieldset", {}, h("legend", { text: "Hardware" }),
        field("Hardware", hwSelect),
        field("Placement", select("placement")),
        field("MoE layers on CPU", number("n_cpu_moe", { min: 0, step: 1 }), { "data-qf": "n_cpu_moe-field" }),
        field("GPU memory (GB)", number("vram_gb", { min: 0.1, step: "any" })),
        field("Host RAM (GB)", number("ram_gb", { min: 0.1, step: "any" }))),
    );
    this.form.addEventListener("submit", (ev) => ev.preventDefault());
    this.form.addEventListener("change", () => this.update());
    this.form.addEventListener("input", (ev) => {
      if (ev.target.type === "number") this.update(ev.target); // leave the field being typed in alone
    });
    const out = (key, tag = "span", attrs = {}) => h(tag, { "data-parity": key, ...attrs });
    this.results = h("div", { class: "qf-results", "data-qf": "results" },
      h("div", { class: "qf-verdict", "data-qf": "verdict" }, out("verdict", "strong"),
        h("span", { "data-qf": "short" }, " — short by ", out("shortfall"), " on ", h("code", { "data-qf": "worst" }))),
      h("dl", { class: "qf-summary" },
        h("div", {}, h("dt", { text: "Maximum context" }), out("max_context", "dd")),
        h("div", {}, h("dt", { text: "Decode speed (estimated)" }), out("speed", "dd")),
        h("div", {}, h("dt", { text: "Range out of sample (p10-p90)" }), out("speed_range", "dd")),
        h("div", {}, h("dt", { text: "Total memory" }), out("total", "dd"))),
      h("div", { class: "qf-devices", "data-qf": "devices" }),
      h("figure", { class: "qf-chart", "data-qf": "chart" }),
      h("div", { class: "qf-command", "data-qf": "command" },
        h("h2", { text: "Launch command" }), h("pre", {}, out("command", "code"))),
    );
    this.error = h("p", { class: "qf-error", "data-qf": "error", hidden: true });
    // the answer in one line, first on the page (above the fold on a phone) and announced on change
    this.glance = h("p", { class: "qf-glance", "data-qf-glance": "", role: "status", "aria-live": "polite" });
    this.root.replaceChildren(this.glance, h("div", { class: "qf-calc-grid" }, this.form, this.results), this.error);
  }

  input(name) {
    return this.form.querySelector(`[data-qf-input="${name}"]`);
  }

  setOptions(name, values, label = (v) => v) {
    const sel = this.input(name);
    if ([...sel.options].map((o) => o.value).join("\u0000") !== values.join("\u0000")) {
      sel.replaceChildren(...values.map((v) => h("option", { value: v, text: label(v) })));
    }
  }

  writeForm(editing = null) {
    const st = this.state;
    const d = this.data;
    const c = this.choices(st);
    this.setOptions("model", Object.keys(d.models), (k) => d.models[k].name ?? k);
    this.setOptions("engine", c.engines);
    this.setOptions("quant", c.quants);
    this.setOptions("kv", c.kvs);
    this.setOptions("placement", c.placements, placementLabel);
    for (const k of ["model", "engine", "quant", "kv", "placement", "hardware"]) this.input(k).value = st[k];
    const hasVariant = (v) => Boolean(d.variants?.formulas.some((f) => f.model === st.model && f.engine === st.engine && f.variant === v));
    const why = [];
    for (const [k, label] of [["vision", "vision tower"], ["mtp", "MTP drafting"]]) {
      const box = this.input(k);
      box.checked = Boolean(st[k]);
      box.disabled = !hasVariant(k);
      if (box.disabled) why.push(`${label}: not in the calculator for ${d.models[st.model].name ?? st.model} on ${st.engine} (qwenfit check --${k} computes it)`);
    }
    const note = this.form.querySelector('[data-qf="variant-note"]');
    const kvNote = st.vision || st.mtp ? `with ${variantOf(st).replace("+", " and ")}: KV cache ${st.kv} only` : "";
    note.textContent = [...why, kvNote].filter(Boolean).join("; ");
    note.hidden = !note.textContent;
    const set = (k, v) => {
      if (this.input(k) !== editing) this.input(k).value = String(v);
    };
    for (const k of ["n_cpu_moe", "ctx", "seqs"]) set(k, st[k]);
    const custom = st.hardware === "custom";
    const rates = c.formula ? hardwareRates(d, st.hardware, c.formula) : undefined;
    const fixedRam = rates && Object.hasOwn(rates, "ram"); // unified memory: the RAM is the device's
    set("vram_gb", custom ? st.vram_gb : (Number(d.hardware[st.hardware].memory_bytes) / 1e9).toFixed(2));
    set("ram_gb", fixedRam ? (Number(rates.ram) / 1e9).toFixed(2) : st.ram_gb);
    this.input("vram_gb").disabled = !custom || st.placement === "cpu";
    this.input("ram_gb").disabled = Boolean(fixedRam);
    this.input("n_cpu_moe").max = String(d.models[st.model].n_layers ?? 0);
    this.input("seqs").max = String(d.engines[st.engine].max_sequences ?? 1);
    this.input("ctx").max = String(d.models[st.model].native_context);
    this.form.querySelector('[data-qf="n_cpu_moe-field"]').hidden = !(c.formula && usesVar(c.formula, "n_cpu_moe"));
  }

  readForm() {
    const st = { ...this.state };
    for (const k of ["model", "engine", "quant", "kv", "placement", "hardware", "n_cpu_moe", "ctx", "seqs"]) {
      st[k] = this.input(k).value;
    }
    st.vision = this.input("vision").checked;
    st.mtp = this.input("mtp").checked;
    if (st.hardware === "custom" && this.state.hardware !== "custom") {
      st.vram_gb = Number(this.data.hardware[this.state.hardware].memory_bytes) / 1e9; // start from the last pick
    } else if (!this.input("vram_gb").disabled) st.vram_gb = this.input("vram_gb").value;
    if (!this.input("ram_gb").disabled) st.ram_gb = this.input("ram_gb").value;
    return st;
  }

  update(editing = null) {
    this.state = this.normalise(this.readForm());
    this.writeForm(editing);
    this.render();
    this.writeHash();
  }

  /** Set (part of) the state as if the user had entered it; returns what the page then shows. */
  apply(partial) {
    this.state = this.normalise({ ...this.state, ...partial });
    this.writeForm();
    this.render();
    return this.readTexts();
  }

  readTexts() {
    const out = {};
    for (const node of this.root.querySelectorAll("[data-parity]")) out[node.dataset.parity] = node.textContent;
    return out;
  }

  readHash() {
    const out = {};
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    for (const [k, short] of Object.entries(HASH_KEYS)) if (params.has(short)) out[k] = params.get(short);
    return out;
  }

  writeHash() {
    const params = new URLSearchParams();
    for (const k of STATE_KEYS) {
      if (k === "vram_gb" && this.state.hardware !== "custom") continue;
      params.set(HASH_KEYS[k], String(this.state[k]));
    }
    history.replaceState(null, "", `#${params}`);
  }

  render() {
    let view;
    try {
      view = computeView(this.data, this.state);
    } catch (err) {
      this.view = null;
      this.error.textContent = `The calculator cannot evaluate this configuration: ${err.message}`;
      this.error.hidden = false;
      this.results.hidden = true;
      this.glance.className = "qf-glance qf-nofit";
      this.glance.textContent = "Cannot evaluate this configuration (see below).";
      this.root.dataset.error = err.message;
      return;
    }
    this.error.hidden = true;
    this.results.hidden = false;
    this.root.removeAttribute("data-error");
    this.view = view;
    this.renderDevices(view);
    for (const node of this.results.querySelectorAll("[data-parity]")) {
      const key = node.dataset.parity;
      if (key in view.texts) node.textContent = view.texts[key];
    }
    const verdict = this.results.querySelector('[data-qf="verdict"]');
    verdict.classList.toggle("qf-fits", view.result.fits);
    verdict.classList.toggle("qf-nofit", !view.result.fits);
    verdict.querySelector('[data-qf="short"]').hidden = view.result.fits;
    verdict.querySelector('[data-qf="worst"]').textContent = view.worst ?? "";
    this.results.querySelector('[data-qf="command"]').hidden = !view.texts.command;
    const t = view.texts;
    this.glance.className = `qf-glance ${view.result.fits ? "qf-fits" : "qf-nofit"}`;
    this.glance.textContent = view.result.fits
      ? `Fits. Maximum context ${t.max_context}; decode ${t.speed} (estimated); ${t.total} in all.`
      : `Does not fit: short by ${t.shortfall} on ${view.worst === "total" ? "all memory" : view.worst}. Maximum context ${t.max_context}.`;
    this.scheduleChart();
  }

  renderDevices(view) {
    const box = this.results.querySelector('[data-qf="devices"]');
    const sections = view.devices.map((dev) => {
      const scale = Number(dev.budget !== undefined && dev.budget > dev.used ? dev.budget : dev.used) || 1;
      const pct = (b) => `${Math.max(0, (100 * Number(b)) / scale).toFixed(3)}%`;
      const bar = h("div", { class: "qf-bar", role: "img", "aria-label": `memory on ${dev.device}` },
        dev.terms.map((t) => h("span", {
          class: "qf-seg", style: `width:${pct(t.bytes)};background:${termColour(t.name)}`,
          title: `${t.name} (${t.device}): ${formatGB(t.bytes)}`,
        })));
      if (dev.budget !== undefined) {
        bar.append(h("span", { class: "qf-budget-line", style: `left:${pct(dev.budget)}`, title: "budget" }));
      }
      const heading = dev.budget === undefined
        ? h("h2", {}, h("code", { text: dev.device }), " (not judged: no budget)")
        : h("h2", {}, h("code", { text: dev.device === "total" ? "all memory" : dev.device }), " ",
          h("span", { "data-parity": `used:${dev.device}` }), " of ", h("span", { "data-parity": `budget:${dev.device}` }));
      const rows = dev.list ? dev.terms.map((t) => {
        const i = view.terms.indexOf(t);
        return h("tr", { "data-term": t.name },
          h("td", {}, h("span", { class: "qf-swatch", style: `background:${termColour(t.name)}` })),
          h("td", {}, h("code", { text: t.name })),
          h("td", { class: "qf-num", "data-parity": `term:${i}` }),
          h("td", { class: t.exact ? "qf-exact" : "qf-estimated", text: t.exact ? "exact" : "estimated" }),
          h("td", { class: "qf-detail" }, publicSource(t.source ?? "")));
      }) : [];
      return h("section", { class: "qf-device", "data-device": dev.device }, heading, bar,
        rows.length ? h("table", { class: "qf-terms" }, h("tbody", {}, rows)) : null);
    });
    box.replaceChildren(...sections);
  }

  scheduleChart() {
    if (this.chartPending) return;
    this.chartPending = true;
    requestAnimationFrame(() => {
      this.chartPending = false;
      const fig = this.results.querySelector('[data-qf="chart"]');
      try {
        this.renderChart(fig);
      } catch (err) {
        fig.replaceChildren(h("p", { class: "qf-error", text: `chart: ${err.message}` }));
      }
    });
  }

  renderChart(fig) {
    const view = this.view;
    const st = this.state;
    if (!view) return;
    // the device that binds: the budgeted device with the highest use of its budget
    let device = view.devices[0]?.device;
    let worst = -1;
    for (const d of view.devices) {
      if (d.budget === undefined || d.budget <= 0n) continue;
      const ratio = Number(d.used) / Number(d.budget);
      if (ratio > worst) [worst, device] = [ratio, d.device];
    }
    const budget = view.result.budget[device];
    const hi = view.limit;
    const contexts = [];
    for (let c = Math.max(view.step, 256); c < hi; c *= 2) contexts.push(c);
    contexts.push(hi);
    const all = this.choices(st).quants;
    const pick = new Set([st.quant]); // the current quant and up to 7 others, spread over the list
    const n = Math.min(8, all.length);
    for (let k = 0; k < n && pick.size < n; k++) pick.add(all[Math.round((k * (all.length - 1)) / Math.max(1, n - 1))]);
    const quants = all.filter((q) => pick.has(q));
    const curves = memoryCurves(this.data, st, device, quants, contexts);
    // drawn at the width it is shown at (text stays 13 px on a phone), 680 at most
    const W = Math.round(Math.min(680, Math.max(320, fig.clientWidth || 680)));
    const narrow = W < 520;
    const H = narrow ? 300 : 320;
    const pad = { l: 58, r: 104, t: 16, b: 40 };
    // the scale: the budget (with room above it) and the current quantization's curve; the other
    // curves are clipped to the plot
    let ymax = budget !== undefined ? 1.6 * Number(budget) : 0;
    for (const c of curves) {
      if (c.quant === st.quant || budget === undefined) for (const [, y] of c.points) ymax = Math.max(ymax, Number(y));
    }
    ymax = ymax * 1.08 || 1;
    const lx = (c) => Math.log2(c);
    const x = (c) => pad.l + ((lx(c) - lx(contexts[0])) / Math.max(1e-9, lx(hi) - lx(contexts[0]))) * (W - pad.l - pad.r);
    const y = (b) => H - pad.b - (Number(b) / ymax) * (H - pad.t - pad.b);
    const name = device === "total" ? "the whole machine (unified memory)" : device;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "qf-chart-svg", role: "img",
      "aria-label": `memory on ${name} against context, per quantization` },
    s("defs", {}, s("clipPath", { id: "qf-plot" },
      s("rect", { x: pad.l, y: pad.t, width: W - pad.l - pad.r, height: H - pad.t - pad.b }))));
    const gb = (b) => `${(Number(b) / 1e9).toFixed(ymax > 2e10 ? 0 : 1)} GB`;
    for (let k = 0; k <= 4; k++) {
      const v = (ymax / 1.08) * (k / 4);
      svg.append(s("line", { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: "qf-grid" }),
        s("text", { x: pad.l - 6, y: y(v) + 4, "text-anchor": "end", class: "qf-tick", text: gb(v) }));
    }
    // context ticks at least 40 px apart, the last one always (anchored at its end: nothing to its right)
    const ticks = [];
    for (const c of [...contexts].reverse()) if (!ticks.length || x(ticks[ticks.length - 1]) - x(c) >= 40) ticks.push(c);
    for (const c of ticks) {
      const label = c >= 1024 ? `${Math.round(c / 1024)}K` : String(c);
      const anchor = c === hi ? "end" : c === contexts[0] ? "start" : "middle";
      svg.append(s("text", { x: x(c), y: H - pad.b + 16, "text-anchor": anchor, class: "qf-tick", text: label }));
    }
    svg.append(s("text", { x: (pad.l + W - pad.r) / 2, y: H - 6, "text-anchor": "middle", class: "qf-axis",
      text: narrow ? "context (tokens, log scale)" : `context per sequence (tokens, log scale): memory on ${name}` }));
    if (budget !== undefined) {
      svg.append(s("line", { x1: pad.l, x2: W - pad.r, y1: y(budget), y2: y(budget), class: "qf-budget" }),
        s("text", { x: pad.l + 4, y: y(budget) - 5, class: "qf-budget-label", text: `budget ${gb(budget)}` }));
    }
    if (st.ctx >= contexts[0] && st.ctx <= hi) {
      svg.append(s("line", { x1: x(st.ctx), x2: x(st.ctx), y1: pad.t, y2: H - pad.b, class: "qf-now" }));
    }
    const labels = [];
    curves.forEach((c, k) => {
      const colour = LINE_COLOURS[k % LINE_COLOURS.length];
      const d = c.points.map(([cx, cy], j) => `${j ? "L" : "M"}${x(cx).toFixed(1)},${y(cy).toFixed(1)}`).join("");
      const current = c.quant === st.quant;
      const last = c.points[c.points.length - 1];
      svg.append(s("path", { d, fill: "none", stroke: colour, "stroke-width": current ? 3.5 : 1.5,
        "clip-path": "url(#qf-plot)", "data-quant": c.quant }, s("title", { text: c.quant })));
      labels.push({ y: Math.max(pad.t + 4, y(last[1]) + 4), colour, current, quant: c.quant, above: y(last[1]) < pad.t });
    });
    // labels at the right end of each line, pushed apart so they do not overlap
    labels.sort((a, b) => a.y - b.y);
    const gap = 16; // 13 px text
    for (let k = 1; k < labels.length; k++) labels[k].y = Math.max(labels[k].y, labels[k - 1].y + gap);
    const floor = H - pad.b + 4;
    for (let k = labels.length - 1; k >= 0; k--) {
      labels[k].y = Math.min(labels[k].y, k === labels.length - 1 ? floor : labels[k + 1].y - gap);
    }
    for (const l of labels) {
      svg.append(s("text", { x: W - pad.r + 4, y: l.y, fill: l.colour,
        class: l.current ? "qf-line-label qf-current" : "qf-line-label", text: `${l.quant}${l.above ? " ↑" : ""}` }));
    }
    fig.replaceChildren(svg, h("figcaption", {
      text: `Memory on ${name} against context for ${quants.length} of ${all.length} quantizations `
        + `(${st.engine}, KV ${st.kv}, ${st.seqs} sequence${st.seqs > 1 ? "s" : ""}, ${placementLabel(st.placement)}); `
        + "the dashed line is the budget.",
    }));
    fig.dataset.device = device;
  }
}

function mount() {
  const root = document.getElementById("qwenfit-calc");
  if (!root || root.dataset.mounted) return;
  root.dataset.mounted = "1";
  performance.mark?.("qwenfit:mount"); // benchmarks/startup_page.py reports these marks
  const src = root.dataset.src
    ? new URL(root.dataset.src, document.baseURI)
    : new URL("../assets/calculator/index.json", import.meta.url);
  const fail = (message) => {
    root.dataset.error = message;
    root.replaceChildren(h("p", { class: "qf-error", "data-qf": "error", text: message }));
  };
  // the split export (qwenfit-data.mjs): the index and the model shown first, then the other models
  const first = new URLSearchParams(location.hash.replace(/^#/, "")).get(HASH_KEYS.model) ?? "35B-A3B";
  const assets = new URL("./", src); // plan mode's planner.json and variants.json sit beside index.json
  // files the docs build wrote into the page (<script type="application/json" data-qf-file=NAME>)
  const inline = {};
  for (const el of document.querySelectorAll("script[data-qf-file]")) inline[el.dataset.qfFile] = el.textContent;
  // this code may run inline in the page (docs/_hooks/qwenfit_docs.py): data-scripts says where the
  // page's scripts are (plan mode's module), else they sit beside this module
  const scripts = root.dataset.scripts ? new URL(root.dataset.scripts, document.baseURI) : new URL("./", import.meta.url);
  loadCalculatorData(src, parseJSON, { first, inline })
    .then(({ data, rest }) => {
      if (data.schema !== 2n) throw new Error(`calculator data schema ${data.schema}; this page reads schema 2`);
      performance.mark?.("qwenfit:data");
      const calc = (window.qwenfitCalc = new Calculator(root, data));
      performance.mark?.("qwenfit:verdict");
      root.dataset.qwenfit = String(data.qwenfit ?? "");
      // the vision / MTP toggles' formulas (without them the toggles stay off, saying so)
      const variants = fetch(new URL("variants.json", assets))
        .then((r) => (r.ok ? r.text() : null))
        .catch(() => null);
      return Promise.all([rest, variants]).then(([all, text]) => {
        if (text) Object.defineProperty(all, "variants", { value: unpackValue(parseJSON(text), all.formulas), enumerable: false });
        calc.data = all;
        calc.writeForm();
        calc.render();
        root.dataset.ready = "1";
        setUpModes(all, assets, scripts);
      });
    })
    .catch((err) => fail(`The calculator could not start: ${err.message}`));
}

/**
 * The two modes of docs/calculator.md: plan (what runs best on a machine: qwenfit-plan.mjs, its data
 * loaded on first use) and check (one configuration, the Calculator above). Buttons with
 * aria-pressed switch them; "#mode=plan" in the address opens plan mode.
 */
function setUpModes(data, src, scripts) {
  const planRoot = document.getElementById("qwenfit-plan");
  const buttons = [...document.querySelectorAll("[data-qf-mode]")];
  if (!planRoot || !buttons.length) return;
  const calcRoot = document.getElementById("qwenfit-calc");
  let loading = null;
  const show = (mode) => {
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.qfMode === mode));
    planRoot.hidden = mode !== "plan";
    calcRoot.hidden = mode === "plan";
    if (mode === "check" && window.qwenfitCalc) window.qwenfitCalc.update();
    if (mode !== "plan" || loading) return loading;
    planRoot.replaceChildren(h("p", { class: "qf-loading", text: "Loading the planner's data…" }));
    loading = import(new URL("qwenfit-plan.mjs", scripts).href)
      .then((m) => m.mountPlan(planRoot, data, new URL("planner.json", src)))
      .then((view) => {
        window.qwenfitPlan = view;
      })
      .catch((err) => {
        planRoot.dataset.error = err.message;
        planRoot.replaceChildren(h("p", { class: "qf-error", "data-qf": "error", text: `Plan mode could not start: ${err.message}` }));
      });
    return loading;
  };
  for (const b of buttons) b.addEventListener("click", () => show(b.dataset.qfMode));
  window.addEventListener("hashchange", () => {
    show(new URLSearchParams(location.hash.replace(/^#/, "")).get("mode") === "plan" ? "plan" : "check");
  });
  show(new URLSearchParams(location.hash.replace(/^#/, "")).get("mode") === "plan" ? "plan" : "check");
}

if (typeof window !== "undefined" && typeof document !== "undefined") {
  // Material's document$ emits on every page load, instant navigation included
  if (window.document$ && typeof window.document$.subscribe === "function") window.document$.subscribe(mount);
  // the page's own copy runs right after #qwenfit-calc is parsed: mount at once, not at DOMContentLoaded
  // (which waits for the theme's stylesheets and scripts)
  if (document.readyState !== "loading" || document.getElementById("qwenfit-calc")) mount();
  else document.addEventListener("DOMContentLoaded", mount);
}
