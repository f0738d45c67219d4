// qwenfit plan mode: the planner's search and ranking (qwenfit/core/fit/planner.py, ranking.py,
// published.py, the engines' place()) over the exported formulas. No number is computed here that the
// export does not carry: every byte count and decode speed is an exported formula evaluated with the
// evaluator of qwenfit-calc.mjs; this module only decides which placements to evaluate and how to rank
// them, step for step as Python does (tests/browser/test_plan_parity.py compares it with qwenfit.plan()).
//
// Inputs: `calc` (assets/calculator.json: formulas and weight inputs of the calculator's placements) and
// `plan` (assets/calculator/planner.json, qwenfit.export_plan.planner_json(): the planner's extra placements,
// each option's quality and artifact, each device's budget, engine inputs and speed constants).

import { FormulaError, compile, findFormula, formatTokS, gbToBytes, ramReserve, roundTokS, search, speedBand, speedCategory,
  variables } from "./qwenfit-calc.mjs";

const evaluate = (node, scope) => compile(node)(scope);

// ------------------------------------------------------------------------------------------------
// qwenfit.core.search

/** The largest multiple of `step` in [lo, hi] where fits() holds (lo tried first), else 0: the
 * calculator's search, with an empty range giving 0. */
export function largest(fits, lo, hi, step = 1) {
  return hi < lo ? 0 : search(fits, lo, hi, step);
}

/** The smallest n in [lo, hi] where fits() holds, else null. */
export function smallest(fits, lo, hi) {
  if (hi < lo || !fits(hi)) return null;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

// ------------------------------------------------------------------------------------------------
// placements (qwenfit.core.engines.base.Placement)

function placement(kind, fields = {}) {
  return { kind, n_gpus: 1, n_cpu_moe: 0, n_gpu_layers: null, tensor_split: null, tp: 1, pp: 1, description: "", ...fields };
}

/** A placement as one comparable string (the parity test's form, as tests/browser/calc_reference.py writes it). */
/** [GPU names, device of each block and the output layer]: llama.cpp's layer split with its
 * single-precision split points (qwenfit.core.engines.llama_cpp.layout.llama_layout). */
function llamaLayout(nAll, nGpus, ngl, shares) {
  const gpus = nGpus === 1 ? ["gpu"] : Array.from({ length: nGpus }, (_, i) => `gpu${i}`);
  const nOn = ngl === null ? nAll + 1 : ngl;
  let acc = 0;
  const points = [];
  for (const s of shares ?? Array(nGpus).fill(1)) points.push((acc = Math.fround(acc + Math.fround(s))));
  const splits = points.map((s) => Math.fround(s / acc));
  const start = Math.max(nAll + 1 - nOn, 0);
  const act = Math.min(nOn, nAll + 1);
  const dev = [];
  for (let il = 0; il <= nAll; il++) {
    if (il < start || il - start >= act) {
      dev.push("cpu");
      continue;
    }
    const x = Math.fround(Math.fround(il - start) / act);
    const k = splits.findIndex((s) => s > x);
    dev.push(gpus[Math.min(k < 0 ? splits.length : k, nGpus - 1)]);
  }
  return [gpus, dev];
}

/** The weight inputs of plan placement `key` ("gpu2-ngl7", "gpu2-ts3-1") from a quantization's
 * layer tables: qwenfit.export_plan.layers_env, the same sums over the same layer split. */
export function layersEnv(t, key) {
  const m = /^gpu(\d+)(?:-ngl(\d+))?(?:-ts([\d-]+))?$/.exec(key);
  if (!m) throw new FormulaError(`not a plan placement: ${key}`);
  const nGpus = Number(m[1]);
  const ngl = m[2] === undefined ? null : Number(m[2]);
  const shares = m[3] === undefined ? null : m[3].split("-").map(Number);
  const n = t.h.length;
  // [host, GPU, read, experts' GPU, experts' read bytes] of block il (the tables: GPU and read less host)
  const block = (il, nAll) => {
    if (il === nAll) return [...t.out, 0n, 0n];
    if (il >= n) return [0n, 0n, 0n, 0n, 0n]; // the MTP block: skipped
    const h = t.h[il];
    return [h, h + t.g[il], h + t.r[il], t.eg[il], t.er[il]];
  };
  const sums = (a) => {
    let s = 0n;
    return a.map((x) => (s += x));
  };
  const nW = Number(t.n_w);
  const nR = Number(t.n_r);
  const [gpus, dev] = llamaLayout(nW, nGpus, ngl, shares);
  const w = {};
  for (const d of [...gpus, "cpu"]) w[d] = 0n;
  const exps = {};
  for (const g of gpus) exps[g] = Array(nW + 1).fill(0n);
  w.cpu += t.embed[0];
  if (!t.lm_head && dev[nW] !== "cpu") w[dev[nW]] += t.embed[1];
  dev.forEach((d, il) => {
    const [h, g, , eg] = block(il, nW);
    w[d] += d === "cpu" ? h : g;
    if (d !== "cpu" && il < nW) exps[d][il + 1] += eg;
  });
  const env = {};
  for (const [d, b] of Object.entries(w)) env[`w:${d}`] = b;
  for (const [d, per] of Object.entries(exps)) {
    env[`exps:${d}`] = sums(per);
    env[`exps_max:${d}`] = per.reduce((a, b) => (b > a ? b : a));
  }
  const [, rdev] = llamaLayout(nR, nGpus, ngl, shares);
  let gpu = 0n;
  let cpu = 0n;
  const per = Array(nR + 1).fill(0n);
  if (t.tied && rdev[nR] !== "cpu") gpu += t.embed[2];
  else cpu += t.embed[2];
  rdev.forEach((d, il) => {
    const [, , r, , er] = block(il, nR);
    if (d === "cpu") cpu += r;
    else {
      gpu += r;
      if (il < nR) per[il + 1] += er;
    }
  });
  Object.assign(env, { "r:gpu": gpu, "r:cpu": cpu, rexps: sums(per), "r:bf16_ppm": t.bf16_ppm });
  const out = {};
  for (const [k, v] of Object.entries(env)) out[`${key}|${k}`] = v;
  return out;
}

export function placementKey(p) {
  if (!p) return "";
  const ts = p.tensor_split ? p.tensor_split.join(",") : "";
  return `${p.kind}|${p.n_gpus}|${p.n_cpu_moe}|${p.n_gpu_layers ?? ""}|${ts}|${p.tp}|${p.pp}`;
}

// ------------------------------------------------------------------------------------------------
// the machine

/**
 * The planner's target for a machine: {hw, n_gpus, vram, ram, unified, reserve, notes}.
 * `machine`: {hardware: a catalog id | "custom" | "cpu", n_gpus, ram_gb (null: not given), vram_gb
 * (custom GPU), ram_reserve_gb (null: the default rule)}.
 */
export function machineTarget(calc, plan, machine) {
  const id = machine.hardware ?? "cpu";
  const hw = plan.hardware[id];
  if (!hw) throw new FormulaError(`unknown hardware ${id}`);
  const notes = [];
  let vram = null;
  let ram = machine.ram_gb == null || machine.ram_gb === "" ? null : gbToBytes(machine.ram_gb);
  let n = 0;
  if (id === "custom") {
    vram = gbToBytes(machine.vram_gb) - BigInt(hw.driver_reserve);
    n = Number(machine.n_gpus ?? 1);
  } else if (id !== "cpu") {
    n = hw.unified ? 1 : Number(machine.n_gpus ?? 1);
    vram = BigInt(hw.vram);
    if (hw.unified) ram = ram ?? BigInt(hw.ram);
  }
  if (id === "cpu" && ram === null) throw new FormulaError("a machine without a GPU needs its RAM");
  let reserve = 0n;
  if (ram !== null) {
    reserve = machine.ram_reserve_gb == null || machine.ram_reserve_gb === ""
      ? ramReserve(calc, ram)
      : BigInt(Math.trunc(Number(machine.ram_reserve_gb) * 1e9));
    if (reserve >= ram) throw new FormulaError("the RAM reserve is all of the RAM");
    ram -= reserve;
  }
  return { id, hw, n_gpus: n, vram, ram, unified: Boolean(hw.unified), reserve };
}

// ------------------------------------------------------------------------------------------------
// one (model, engine, quant) on the target: the Judge an engine's place() asks (planner.Search)

class Judge {
  constructor(ctx, model, engine, quant, rec, target, gpuOnly) {
    this.c = ctx;
    this.model = model;
    this.engine = engine;
    this.quant = quant;
    this.rec = rec;
    this.target = target;
    this.n_gpus = target.n_gpus;
    this.vram = target.vram;
    this.ram = gpuOnly ? null : target.ram;
    this.unified = target.unified;
    this.cache = new Map();
  }

  formulaKey(p) {
    if (p.kind === "unified") return "unified";
    if (p.kind === "tp") return `tp${p.tp}`;
    if (p.kind === "cpu") return "cpu";
    if (p.n_gpu_layers !== null) return `gpu${p.n_gpus}-ngl${p.n_gpu_layers}`;
    if (p.tensor_split) return `gpu${p.n_gpus}-ts${p.tensor_split.join("-")}`;
    return `gpu${p.n_gpus}`;
  }

  base(p) {
    const key = this.formulaKey(p);
    let found = this.cache.get(key);
    if (found) return found;
    const { calc, plan } = this.c;
    const kv = this.engine.kv;
    const calcFormula = findFormula(calc, this.model.key, this.engine.name, kv, key);
    const formula = calcFormula ?? findPlanFormula(plan, this.model.key, this.engine.name, kv, key);
    if (!formula) throw new FormulaError(`no formula for ${this.model.key} / ${this.engine.name} / ${key}`);
    const cpu = p.kind === "cpu";
    const scope = new Scope([
      this.target.hw.inputs[this.engine.name]?.[cpu ? "cpu" : "gpu"] ?? {},
      this.rec.env ?? {},
      // the -ngl / -ts placements' weight inputs, from the quantization's layers
      !calcFormula && this.rec.layers ? layersEnv(this.rec.layers, key) : {},
      calc.models[this.model.key]?.quants?.[this.engine.name]?.[this.quant]?.env ?? {},
    ]);
    scope.set("vram", cpu || this.vram === null ? 0n : this.vram);
    scope.set("ram", this.ram ?? 0n);
    scope.set("depth", BigInt(this.c.depth));
    // the speed constants of this placement (none for a custom GPU: no speed)
    // ("*/tp": the same for every count of GPUs from tp to "gpus", qwenfit.export_plan._rates)
    const table = this.target.hw.rates[this.engine.name];
    const n = Math.max(this.n_gpus, 1);
    const tp = Number(p.tp);
    const rates = table?.[cpu ? "cpu" : `${n}/${tp}`] ??
      (!cpu && table && n >= tp && n <= Number(table.gpus ?? 0) ? table[`*/${tp}`] : undefined);
    if (rates) for (const [name, v] of Object.entries(rates)) scope.set(`k:${name}`, BigInt(v));
    // shared definitions that depend on neither the context, the sequences nor --n-cpu-moe: once
    const dynamic = new Set(["ctx", "seqs", "n_cpu_moe"]);
    const later = [];
    for (const [name, node] of formula.defs || []) {
      if ([...varsOf(node)].some((v) => dynamic.has(v))) {
        dynamic.add(name);
        later.push([name, node]);
        continue;
      }
      try {
        scope.set(name, evaluate(node, scope));
      } catch (err) {
        if (!(err instanceof FormulaError)) throw err; // left unset: what reads it fails the same way
      }
    }
    const trees = this.unified && !cpu ? formula.budget_unified : formula.budget;
    const budget = {};
    for (const [dev, tree] of Object.entries(trees ?? {})) {
      const judged = dev === "cpu" || dev === "total" ? this.ram !== null : this.vram !== null && !cpu;
      if (judged) budget[dev] = tree;
    }
    found = { formula, scope, later, budget, rates: Boolean(rates) };
    this.cache.set(key, found);
    return found;
  }

  /** {terms, used, budget, judged, shortfall, fits, gpusFit, speed} at (p, ctx, seqs). */
  evaluate(p, ctx, seqs, speed = false) {
    const { formula, scope, later, budget, rates } = this.base(p);
    scope.set("ctx", BigInt(ctx));
    scope.set("seqs", BigInt(seqs));
    scope.set("n_cpu_moe", BigInt(p.n_cpu_moe));
    for (const [name, node] of later) scope.set(name, evaluate(node, scope));
    const used = {};
    let total = 0n;
    const terms = formula.terms.map((t) => {
      const bytes = evaluate(t.bytes, scope);
      used[t.device] = (used[t.device] ?? 0n) + bytes;
      total += bytes;
      return { name: t.name, device: t.device, bytes };
    });
    const caps = {};
    const judged = {};
    let shortfall = 0n;
    let gpusFit = true;
    let any = false;
    for (const [dev, tree] of Object.entries(budget)) {
      any = true;
      caps[dev] = evaluate(tree, scope);
      judged[dev] = dev === "total" ? total : (used[dev] ?? 0n);
      const miss = judged[dev] - caps[dev];
      if (miss > shortfall) shortfall = miss;
      if (dev.startsWith("gpu") && miss > 0n) gpusFit = false;
    }
    const rate = speed && rates ? evaluate(formula.decode_tokens_per_s, scope) : null;
    return { terms, used, budget: caps, judged, shortfall, fits: any && shortfall === 0n, gpusFit, speed: rate };
  }

  fits(p, ctx, seqs = 1) {
    return this.evaluate(p, ctx, seqs).fits;
  }

  gpus_fit(p, ctx, seqs = 1) {
    return this.evaluate(p, ctx, seqs).gpusFit;
  }

  shortfall(p, ctx, seqs = 1) {
    return this.evaluate(p, ctx, seqs).shortfall;
  }
}

/** Variables: its own (set) first, then each layer (plain objects, not copied), first wins. */
class Scope extends Map {
  constructor(layers) {
    super();
    this.layers = layers;
  }

  get(name) {
    const v = super.get(name);
    if (v !== undefined) return v;
    for (const layer of this.layers) if (Object.hasOwn(layer, name)) return layer[name];
    return undefined;
  }
}

const VARS = new WeakMap();
function varsOf(node) {
  if (!Array.isArray(node)) return new Set();
  let v = VARS.get(node);
  if (!v) {
    v = variables(node);
    VARS.set(node, v);
  }
  return v;
}

function findPlanFormula(plan, model, engine, kv, key) {
  if (!plan._index) {
    const index = new Map();
    for (const f of plan.formulas) index.set(`${f.model}\u0000${f.engine}\u0000${f.kv_cache}\u0000${f.placement}`, f);
    Object.defineProperty(plan, "_index", { value: index, enumerable: false });
  }
  return plan._index.get(`${model}\u0000${engine}\u0000${kv}\u0000${key}`);
}

const gb2 = (b) => (Number(b) / 1e9).toFixed(2);

// ------------------------------------------------------------------------------------------------
// the engines' place() (llama.cpp --fit's order; vLLM's tensor parallelism; MLX's working set)

function splitShares(first, n) {
  const scale = first !== Math.trunc(first) ? 2 : 1;
  return [Math.trunc(first * scale), ...Array(n - 1).fill(scale)];
}

function placeLlama(j, need, seqs) {
  const m = j.model;
  const nAll = Number(m.n_layer_all);
  const nLayers = Number(m.n_layers);
  if (j.n_gpus === 0 || j.vram === null) {
    const p = placement("cpu", { n_gpus: 0, description: "CPU only" });
    return j.fits(p, need, seqs) ? [p, ""] : [null, "does not fit in RAM on the CPU"];
  }
  const gpus = j.n_gpus;
  const full = () => placement("gpu", { n_gpus: gpus, description: `all layers on ${gpus === 1 ? "the GPU" : `${gpus} GPUs`}` });
  const moe = (n) => placement("n_cpu_moe", { n_gpus: gpus, n_cpu_moe: n,
    description: `routed experts of the first ${n} of ${nLayers} layers in RAM (--n-cpu-moe ${n})` });
  const ngl = (n) => placement("ngl", { n_gpus: gpus, n_gpu_layers: n, description: `${n} of ${nAll + 1} layers on the GPU (-ngl ${n})` });
  if (j.fits(full(), need, seqs)) return [full(), ""];
  if (j.unified) return [null, "does not fit the GPU's share of unified memory"];
  if (j.ram === null) return [null, "needs weights in host RAM, and no RAM size was given"];
  if (m.is_moe && j.engine.expert_offload) {
    const n = smallest((k) => j.gpus_fit(moe(k), need, seqs), 1, nLayers);
    if (n !== null && gpus > 1) {
      let chosen = null;
      for (const first of j.c.plan.defaults.split_firsts) {
        const shares = splitShares(Number(first), gpus);
        const moeTs = (k) => ({ ...moe(k), tensor_split: shares, description: `${moe(k).description}, -ts ${shares.join(",")}` });
        const mm = smallest((k) => j.gpus_fit(moeTs(k), need, seqs), 1, n);
        if (mm !== null && mm < (chosen ? chosen[0] : n) && j.fits(moeTs(mm), need, seqs)) chosen = [mm, moeTs(mm)];
      }
      if (chosen) return [chosen[1], ""];
    }
    if (n !== null) {
      if (j.fits(moe(n), need, seqs)) return [moe(n), ""];
      return [null, `with --n-cpu-moe ${n} the GPU holds it but host RAM is short by ${gb2(j.shortfall(moe(n), need, seqs))} GB`];
    }
  }
  const best = largest((k) => j.gpus_fit(ngl(k), need, seqs), 1, nAll);
  if (best) {
    if (j.fits(ngl(best), need, seqs)) return [ngl(best), ""];
    return [null, `with -ngl ${best} the GPU holds it but host RAM is short by ${gb2(j.shortfall(ngl(best), need, seqs))} GB`];
  }
  return [null, "does not fit even with every layer in RAM"];
}

function placeTp(j, need, seqs) {
  const tp = Number(j.model.tp[j.engine.name][Math.max(j.n_gpus, 1) - 1]);
  const p = placement("tp", { n_gpus: tp, tp, description: tp > 1 ? `tensor parallel over ${tp} GPU(s)` : "one GPU" });
  return j.fits(p, need, seqs) ? [p, ""] : [null, `does not fit 1 node(s) of ${tp} GPU(s)`];
}

function placeUnified(j, need, seqs) {
  const p = placement("unified", { description: "Apple GPU (unified memory)" });
  return j.fits(p, need, seqs) ? [p, ""] : [null, "does not fit Metal's working set"];
}

const PLACE = { "llama.cpp": placeLlama, vllm: placeTp, mlx: placeUnified };

function place(j, need, seqs) {
  const f = PLACE[j.engine.name];
  if (!f) throw new FormulaError(`plan mode does not place ${j.engine.name}`);
  return f(j, need, seqs);
}

function widen(j, p, maxCtx, seqs) {
  const native = Number(j.model.native_context);
  if (j.engine.name !== "llama.cpp" || maxCtx >= native || !j.model.is_moe || p.kind === "cpu") return [p, maxCtx, ""];
  const [more] = place(j, native, seqs);
  if (!more || more.kind !== "n_cpu_moe") return [p, maxCtx, ""];
  return [more, native, `${p.description}: ${maxCtx.toLocaleString("en-US")} tokens; ${more.n_cpu_moe - p.n_cpu_moe} more layer(s) of experts in RAM give the native ${native.toLocaleString("en-US")}`];
}

// ------------------------------------------------------------------------------------------------
// one option (planner.plan_one)

function planOne(c, model, engine, quant, rec, target, o) {
  const base = { model: model.name, modelKey: model.key, quant, engine: engine.name, quality_rank: Number(rec.rank),
    quality_class: Number(rec.class), model_params: BigInt(model.params_total), rec };
  const reject = (reason, extra = {}) => ({ ...base, placement: null, fits: false, reason, ...extra });
  const native = Number(model.native_context);
  const d = c.plan.defaults;
  const floor = Math.min(o.min_context ?? Number(d.min_context), native);
  const wanted = o.context == null ? Math.min(Number(d.context), native) : null;
  const exact = typeof o.context === "number" ? o.context : null;
  let need = exact || wanted || floor;
  if (need > Number(d.yarn_context) || (need > native && !engine.context_beyond_native)) {
    return reject(`context ${need.toLocaleString("en-US")} is beyond the model's limit`);
  }
  if (!target.hw.runs.includes(engine.name)) return reject(`${engine.name} does not run on this machine`);
  if (rec.error) return reject(rec.error);
  const refused = target.hw.refuses?.[engine.name]?.[model.key];
  if (refused) return reject(refused);
  const seqs = o.sequences ?? 1;
  const j = new Judge(c, model, engine, quant, rec, target, o.gpu_only);
  let p;
  let why;
  try {
    [p, why] = place(j, need, seqs);
    if (!p && wanted !== null && floor < need) {
      need = floor;
      [p, why] = place(j, need, seqs);
    }
  } catch (err) {
    if (!(err instanceof FormulaError)) throw err;
    return reject(err.message);
  }
  if (!p) return reject(`${why}, at ${need.toLocaleString("en-US")} tokens`);
  const step = Number(engine.context_step);
  const limit = Math.max(exact || 0, native);
  let maxCtx = largest((x) => j.fits(p, x, seqs), need, limit, step) || need;
  const notes = [];
  if (o.context === "max") {
    let note;
    [p, maxCtx, note] = widen(j, p, maxCtx, seqs);
    if (note) notes.push(note);
  }
  const ctx = exact || (wanted !== null ? Math.min(wanted, maxCtx) : maxCtx);
  const maxSeq = largest((n) => j.fits(p, ctx, n), 1, Number(engine.max_sequences));
  if (maxSeq < seqs) return reject(`${seqs} sequences of ${ctx} tokens do not fit (at most ${maxSeq})`, { placement: p });
  const e = j.evaluate(p, ctx, seqs, true);
  if (o.context === "max" && maxCtx < native) notes.push(`context reduced to ${maxCtx.toLocaleString("en-US")} of the native ${native.toLocaleString("en-US")} to fit`);
  if (wanted !== null && ctx < wanted) notes.push(`context ${ctx.toLocaleString("en-US")}: the default ${wanted.toLocaleString("en-US")} does not fit`);
  let headroom = 0n;
  const devs = Object.keys(e.budget);
  if (devs.length) headroom = devs.map((dv) => e.budget[dv] - e.judged[dv]).reduce((a, b) => (b < a ? b : a));
  const speed = e.speed === null ? null : Number(e.speed);
  const cat = speedCategory({ seqs, cpuOnly: p.kind === "cpu", nGpus: p.n_gpus, offloaded: p.kind === "ngl" || p.n_cpu_moe > 0,
    isMoe: Boolean(model.is_moe), hw: c.calc.hardware[target.id] ?? null });
  return { ...base, placement: p, fits: true, context: ctx, max_context: maxCtx, sequences: seqs, max_sequences: maxSeq,
    decode_tokens_per_s: speed, decode_band: speed === null ? null : speedBand(c.calc, cat, speed), estimate: e,
    headroom_bytes: headroom, notes, reason: "" };
}

// ------------------------------------------------------------------------------------------------
// ranking (qwenfit.core.fit.ranking, published.py, option.at_least)

function made(o) {
  return o.fits && !(o.rec.published || o.rec.stored);
}

function publishedFirst(group) {
  group = group.map((o) => (made(o) && o.rec.needs ? { ...o, fits: false, reason: "making it needs an importance matrix" } : o));
  if (!group.some((o) => o.fits && !made(o))) {
    return group.map((o) => (made(o) ? { ...o, notes: [...o.notes, "not published: the command makes it first"] } : o));
  }
  return group.map((o) => (made(o) ? { ...o, fits: false, reason: "not published (a published quantization fits)" } : o));
}

function atLeast(o, minSpeed) {
  if (!o.fits || (o.decode_tokens_per_s !== null && o.decode_tokens_per_s >= minSpeed)) return o;
  return { ...o, fits: false, reason: `decode speed below the ${minSpeed} tok/s asked` };
}

function rankOf(o, nearLossless) {
  return o.quality_rank <= nearLossless ? 0 : o.quality_rank;
}

function usedSplit(o) {
  let gpu = 0n;
  let cpu = 0n;
  for (const [d, v] of Object.entries(o.estimate?.used ?? {})) {
    if (d === "cpu") cpu += v;
    else gpu += v;
  }
  return [gpu, cpu];
}

function cmpTuple(a, b) {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}

function dominates(b, a, nl) {
  if (a.model !== b.model || a.engine !== b.engine || !(a.fits && b.fits)) return false;
  const ra = rankOf(a, nl);
  const rb = rankOf(b, nl);
  const sa = a.decode_tokens_per_s;
  const sb = b.decode_tokens_per_s;
  if ((sa === null) !== (sb === null)) return false;
  const [ga, ca] = usedSplit(a);
  const [gb, cb] = usedSplit(b);
  const q = cmpTuple([b.quality_class, rb], [a.quality_class, ra]);
  const noWorse = b.context >= a.context && q <= 0 && (sb ?? 0) >= (sa ?? 0) && gb <= ga && cb <= ca;
  const better = b.context > a.context || q < 0 || (sb ?? 0) > (sa ?? 0) || gb < ga || cb < ca;
  return noWorse && better;
}

function sortKey(o, prefer, nl) {
  const rank = rankOf(o, nl);
  const speed = -(o.decode_tokens_per_s ?? 0);
  const quality = [o.quality_class, -o.model_params, rank, speed, -o.headroom_bytes, o.engine];
  if (prefer === "speed") return [!o.fits ? 1 : 0, o.quality_class === 2 ? 1 : 0, speed, o.quality_class, -o.model_params, rank, o.engine];
  if (prefer === "context") return [!o.fits ? 1 : 0, -o.context, ...quality];
  return [!o.fits ? 1 : 0, ...quality];
}

// ------------------------------------------------------------------------------------------------
// the plan (planner.plan_options with qwenfit.plan's defaults)

/**
 * qwenfit.plan() for `machine` (machineTarget's form) and `opts`: {model: key or null, engines: names
 * or null, quants: names or null, context: null | number | "max", prefer, min_speed, gpu_only, depth}.
 * Returns {options (fit, best first), rejected, notes, target}.
 */
export function planMachine(calc, plan, machine, opts = {}) {
  const target = machineTarget(calc, plan, machine);
  const c = { calc, plan, depth: opts.depth ?? Number(plan.defaults.depth) };
  const prefer = opts.prefer ?? "quality";
  const nl = Number(plan.defaults.near_lossless_rank);
  const engineInfo = Object.fromEntries(plan.engines.map((e) => [e.name, e]));
  const engines = (opts.engines ?? target.hw.engines).map((n) => {
    if (!engineInfo[n]) throw new FormulaError(`plan mode has no engine ${n}`);
    return engineInfo[n];
  });
  const models = opts.model ? plan.models.filter((m) => m.key === opts.model) : plan.models;
  const notes = [];
  if (target.reserve && !opts.gpu_only) notes.push(`${gb2(target.reserve)} GB of RAM kept for the system`);
  const out = [];
  for (const model of models) {
    for (const engine of engines) {
      const tried = opts.quants
        ? [...new Set(opts.quants)]
        : [...new Set([...(target.hw.quants[engine.name] ?? []), ...(model.published[engine.name] ?? [])])];
      const group = [];
      for (const q of tried) {
        const name = plan.accepts[engine.name]?.[q];
        if (!name || name.endsWith(".gguf")) continue;
        const rec = model.quants[engine.name]?.[name];
        if (!rec) {
          group.push({ model: model.name, modelKey: model.key, quant: name, engine: engine.name, placement: null, fits: false, reason: "not in the export" });
          continue;
        }
        group.push(planOne(c, model, engine, name, rec, target, opts));
      }
      out.push(...publishedFirst(group));
    }
  }
  if (opts.gpu_only && target.n_gpus) notes.push("GPU only: every layer on the GPUs, nothing offloaded to host RAM");
  else if (target.n_gpus && target.ram === null && !target.unified) notes.push("host RAM not given: only placements with every layer on the GPU are considered");
  let all = opts.min_speed != null ? out.map((o) => atLeast(o, opts.min_speed)) : out;
  const fit = all.filter((o) => o.fits);
  const beaten = fit.map((a) => fit.some((b) => b !== a && dominates(b, a, nl)));
  const kept = fit.filter((_, i) => !beaten[i]);
  const aside = fit.filter((_, i) => beaten[i]).map((a) => {
    const b = kept.find((k) => dominates(k, a, nl));
    return { ...a, fits: false, reason: `${b.quant} beats it on every axis (as much context and quality, faster or the same, no more memory)` };
  });
  const options = kept.map((o) => [sortKey(o, prefer, nl), o]).sort((x, y) => cmpTuple(x[0], y[0])).map((x) => x[1]);
  all = [...all.filter((o) => !o.fits), ...aside];
  return { options, rejected: all, notes, target };
}

/** The parity test's form of an option: [model, quant, engine, placement, context, decode tok/s, its
 * out-of-sample range as shown: [low, high] rounded half up, or null]. */
export function optionRow(o) {
  const band = o.decode_band ? o.decode_band.map(roundTokS) : null;
  return [o.model, o.quant, o.engine, placementKey(o.placement), o.context, o.decode_tokens_per_s, band];
}

// ------------------------------------------------------------------------------------------------
// Part 2: the plan form and its ranked answer. Mounted on <div id="qwenfit-plan"> (docs/calculator.md)
// by qwenfit-calc.mjs; only in a browser.

const PLAN_SHOWN = 12; // options listed before "show all"

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

const fmtInt = (n) => Number(n).toLocaleString("en-US");
const fmtGB = (b) => `${(Number(b) / 1e9).toFixed(1)} GB`;
/** "~26 tok/s (19-33)": the decode speed and its out-of-sample range, as the CLI prints them. */
const fmtSpeed = (x, band) => formatTokS(x) + (band ? ` (${band.map(roundTokS).join("-")})` : "");

function memory(o) {
  let gpu = 0n;
  let cpu = 0n;
  for (const [d, v] of Object.entries(o.estimate?.used ?? {})) {
    if (d === "cpu") cpu += v;
    else gpu += v;
  }
  return { gpu, cpu };
}

export class PlanView {
  constructor(root, calc, plan) {
    this.root = root;
    this.calc = calc;
    this.plan = plan;
    this.showAll = false;
    this.build();
    this.readHash();
    this.update();
  }

  build() {
    const p = this.plan;
    const field = (label, control, attrs = {}) => el("div", { class: "qf-field", ...attrs },
      el("label", { class: "qf-label", for: control.id, text: label }), control);
    const select = (name, options) => el("select", { id: `qfp-${name}`, name, "data-qfp": name },
      options.map(([v, t]) => el("option", { value: v, text: t })));
    const number = (name, attrs = {}) => el("input", { id: `qfp-${name}`, type: "number", name, "data-qfp": name, inputmode: "decimal", ...attrs });
    const hw = el("select", { id: "qfp-hardware", name: "hardware", "data-qfp": "hardware" });
    const groups = {};
    for (const [id, rec] of Object.entries(p.hardware)) {
      if (id === "cpu" || id === "custom") continue;
      const info = this.calc.hardware[id];
      (groups[`${info?.vendor ?? rec.vendor}${rec.unified ? " (unified memory)" : ""}`] ??= []).push([id, info]);
    }
    for (const [g, list] of Object.entries(groups).sort()) {
      hw.append(el("optgroup", { label: g }, list.map(([id, info]) => el("option", { value: id, text: `${info?.name ?? id} (${fmtGB(info?.memory_bytes ?? 0)})` }))));
    }
    hw.append(el("option", { value: "custom", text: "Custom GPU (give its memory)" }), el("option", { value: "cpu", text: "No GPU (CPU only)" }));
    if (p.hardware["rtx-3060"]) hw.value = "rtx-3060"; // the issue's walkthrough: an RTX 3060 and 32 GB of RAM
    const models = [["", "Any model"], ...p.models.map((m) => [m.key, m.name])];
    const engines = [["", "Any engine that suits the machine"], ...p.engines.map((e) => [e.name, e.name])];
    this.form = el("form", { class: "qf-form", "data-qfp": "form", "aria-label": "Your machine and what you want" },
      el("fieldset", {}, el("legend", { text: "Your machine" }),
        field("Hardware", hw),
        field("GPUs", select("n_gpus", p.defaults.gpus.map((n) => [String(n), String(n)])), { "data-qfp-field": "n_gpus" }),
        field("GPU memory (GB)", number("vram_gb", { min: 1, step: "any" }), { "data-qfp-field": "vram_gb" }),
        field("Host RAM (GB)", number("ram_gb", { min: 1, step: "any", placeholder: "not given", value: 32 }), { "data-qfp-field": "ram_gb" }),
        field("RAM kept for the system (GB)", number("ram_reserve_gb", { min: 0, step: "any", placeholder: "default: 10 %, 4-16 GB" }), { "data-qfp-field": "ram_reserve_gb" })),
      el("fieldset", {}, el("legend", { text: "What you want (optional)" }),
        field("Model", select("model", models)),
        field("Engine", select("engine", engines)),
        field("Prefer", select("prefer", [["quality", "quality"], ["speed", "speed"], ["context", "context"]])),
        field("Context", select("context", [["", "32,768 tokens (default)"], ["8192", "8,192"], ["65536", "65,536"], ["131072", "131,072"], ["max", "the most that fits"]])),
        field("At least (tok/s)", number("min_speed", { min: 0, step: "any", placeholder: "any speed" })),
        el("div", { class: "qf-field qf-check" }, el("label", { class: "qf-label", for: "qfp-gpu_only", text: "GPU only" }),
          el("input", { id: "qfp-gpu_only", type: "checkbox", name: "gpu_only", "data-qfp": "gpu_only" }))));
    this.form.addEventListener("submit", (ev) => ev.preventDefault());
    this.form.addEventListener("change", () => this.update());
    this.summary = el("div", { class: "qf-verdict", "data-qfp": "verdict" });
    this.list = el("div", { class: "qf-plan-list", "data-qfp": "list" });
    this.notes = el("ul", { class: "qf-plan-notes", "data-qfp": "notes" });
    this.results = el("section", { class: "qf-results", "data-qfp": "results", "aria-label": "Ranked options" },
      this.summary, this.list, this.notes);
    // the answer in one line, first (above the fold on a phone) and announced when it changes
    this.glance = el("p", { class: "qf-glance", "data-qf-glance": "", role: "status", "aria-live": "polite" });
    this.root.replaceChildren(this.glance, el("div", { class: "qf-calc-grid qf-plan-grid" }, this.form, this.results));
  }

  input(name) {
    return this.form.querySelector(`[data-qfp="${name}"]`);
  }

  /** What planMachine ranks for (machine, opts), as optionRow rows, or {error} where it refuses. */
  rows(machine, opts) {
    try {
      return planMachine(this.calc, this.plan, machine, opts).options.map(optionRow);
    } catch (err) {
      if (!(err instanceof FormulaError)) throw err;
      return { error: err.message };
    }
  }

  state() {
    const v = (k) => this.input(k).value;
    return {
      machine: { hardware: v("hardware"), n_gpus: Number(v("n_gpus")), vram_gb: v("vram_gb") === "" ? 24 : Number(v("vram_gb")),
        ram_gb: v("ram_gb") === "" ? null : Number(v("ram_gb")), ram_reserve_gb: v("ram_reserve_gb") === "" ? null : Number(v("ram_reserve_gb")) },
      opts: { model: v("model") || null, engines: v("engine") ? [v("engine")] : null, prefer: v("prefer"),
        context: v("context") === "" ? null : v("context") === "max" ? "max" : Number(v("context")),
        min_speed: v("min_speed") === "" ? null : Number(v("min_speed")), gpu_only: this.input("gpu_only").checked },
    };
  }

  /** Set the form (a partial {machine, opts} as state() returns) and plan; returns the rows shown. */
  apply({ machine = {}, opts = {} }) {
    const set = (k, val) => {
      this.input(k).value = val === null || val === undefined ? "" : String(val);
    };
    set("hardware", machine.hardware ?? "cpu");
    if (machine.n_gpus) set("n_gpus", machine.n_gpus);
    set("vram_gb", machine.vram_gb);
    set("ram_gb", machine.ram_gb);
    set("ram_reserve_gb", machine.ram_reserve_gb);
    set("model", opts.model);
    set("engine", opts.engines ? opts.engines[0] : "");
    set("prefer", opts.prefer ?? "quality");
    set("context", opts.context);
    set("min_speed", opts.min_speed);
    this.input("gpu_only").checked = Boolean(opts.gpu_only);
    this.update();
    return this.result ? this.result.options.map(optionRow) : null;
  }

  readHash() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    if (params.get("mode") !== "plan") return;
    for (const k of ["hardware", "n_gpus", "vram_gb", "ram_gb", "ram_reserve_gb", "model", "engine", "prefer", "context", "min_speed"]) {
      if (params.has(k) && this.input(k)) this.input(k).value = params.get(k);
    }
    this.input("gpu_only").checked = params.get("gpu_only") === "1";
  }

  writeHash() {
    const params = new URLSearchParams({ mode: "plan" });
    for (const k of ["hardware", "n_gpus", "vram_gb", "ram_gb", "ram_reserve_gb", "model", "engine", "prefer", "context", "min_speed"]) {
      const field = this.input(k).closest("[data-qfp-field]");
      if (this.input(k).value !== "" && !(field && field.hidden)) params.set(k, this.input(k).value);
    }
    if (this.input("gpu_only").checked) params.set("gpu_only", "1");
    history.replaceState(null, "", `#${params}`);
  }

  update() {
    const hwId = this.input("hardware").value;
    const rec = this.plan.hardware[hwId];
    const show = (k, on) => {
      this.form.querySelector(`[data-qfp-field="${k}"]`).hidden = !on;
    };
    show("n_gpus", hwId !== "cpu" && !rec.unified);
    show("vram_gb", hwId === "custom");
    show("ram_gb", !rec.unified);
    if (hwId === "custom" && this.input("vram_gb").value === "") this.input("vram_gb").value = "24";
    if (hwId === "cpu" && this.input("ram_gb").value === "") this.input("ram_gb").value = "64";
    const st = this.state();
    if (rec.unified) st.machine.ram_gb = null;
    if (hwId === "cpu") st.machine.n_gpus = 0;
    if (this.root.dataset.ready) this.writeHash();
    try {
      this.result = planMachine(this.calc, this.plan, st.machine, st.opts);
      this.root.removeAttribute("data-error");
    } catch (err) {
      this.result = null;
      this.root.dataset.error = err.message;
      this.summary.className = "qf-verdict qf-nofit";
      this.summary.replaceChildren(el("strong", { text: "Cannot plan this machine: " }), err.message);
      this.glance.className = "qf-glance qf-nofit";
      this.glance.textContent = `Cannot plan this machine: ${err.message}`;
      this.list.replaceChildren();
      this.notes.replaceChildren();
      return;
    }
    this.render(st);
  }

  render(st) {
    const { options, rejected, notes } = this.result;
    const best = options[0];
    this.summary.hidden = Boolean(best);
    if (!best) {
      const nearest = rejected.find((o) => o.reason);
      this.summary.className = "qf-verdict qf-nofit";
      this.summary.replaceChildren(el("strong", { text: "Nothing fits this machine." }),
        nearest ? ` For example ${nearest.model} ${nearest.quant} on ${nearest.engine}: ${nearest.reason}.` : "");
    }
    this.glance.className = `qf-glance ${best ? "qf-fits" : "qf-nofit"}`;
    this.glance.textContent = best
      ? `Best: ${best.model} ${best.quant} on ${best.engine}, ${fmtInt(best.context)} tokens, ${fmtSpeed(best.decode_tokens_per_s, best.decode_band)} (estimated; range: p10-p90 out of sample); ${options.length} option${options.length === 1 ? "" : "s"} fit.`
      : "Nothing fits this machine.";
    const rows = (this.showAll ? options : options.slice(0, PLAN_SHOWN)).map((o, i) => {
      const mem = memory(o);
      return el("tr", { "data-option": i },
        el("td", { class: "qf-num", text: String(i + 1) }),
        el("th", { scope: "row" }, `${o.model} `, el("code", { text: o.quant })),
        el("td", { text: o.engine }),
        el("td", { text: o.placement.description }),
        el("td", { class: "qf-num", text: fmtInt(o.context) }),
        el("td", { class: "qf-num", text: fmtSpeed(o.decode_tokens_per_s, o.decode_band) }),
        el("td", { class: "qf-num", text: mem.gpu ? fmtGB(mem.gpu) : "—" }),
        el("td", { class: "qf-num", text: mem.cpu ? fmtGB(mem.cpu) : "—" }));
    });
    const table = options.length ? el("div", { class: "qf-table-wrap", tabindex: "0", role: "region", "aria-label": "Options that fit, best first" },
      el("table", { class: "qf-plan-table" },
        el("caption", { text: `Options that fit (${st.opts.prefer} first; speeds compared ${fmtInt(this.plan.defaults.depth)} tokens deep)` }),
        el("thead", {}, el("tr", {}, ["#", "Model and quantization", "Engine", "Placement", "Context", "Decode", "GPU memory", "Host RAM"].map((t) => el("th", { scope: "col", text: t })))),
        el("tbody", {}, rows))) : null;
    const more = options.length > PLAN_SHOWN
      ? el("button", { type: "button", class: "qf-button", "data-qfp": "more", "aria-expanded": String(this.showAll),
        text: this.showAll ? `Show the first ${PLAN_SHOWN}` : `Show all ${options.length} options` })
      : null;
    if (more) more.addEventListener("click", () => {
      this.showAll = !this.showAll;
      this.render(st);
      this.list.querySelector('[data-qfp="more"]')?.focus();
    });
    this.list.replaceChildren(...[table, more].filter(Boolean));
    this.notes.replaceChildren(...notes.map((n) => el("li", { text: n })));
  }
}

/** Mount plan mode on #qwenfit-plan once its data has loaded (called by qwenfit-calc.mjs). */
export async function mountPlan(root, calc, src) {
  const r = await fetch(src);
  if (!r.ok) throw new Error(`${src.pathname}: HTTP ${r.status} (the site was built without qwenfit's planner export)`);
  const { parseJSON } = await import("./qwenfit-calc.mjs");
  const { unpackValue } = await import("./qwenfit-data.mjs");
  // packed by qwenfit.export_split.pack_value, its formula records patches of the calculator's
  const plan = unpackValue(parseJSON(await r.text()), calc.formulas);
  if (plan.schema !== 1n) throw new Error(`planner data schema ${plan.schema}; this page reads schema 1`);
  const view = new PlanView(root, calc, plan);
  root.dataset.ready = "1";
  return view;
}
