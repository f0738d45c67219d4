// qwenfit calculator data: the split export (qwenfit.export.calculator_files) loaded on demand.
//
// index.json holds everything but the models' quants and formulas (and a table of what the model
// files share); each model has its own file. The page asks for the index and the model it shows
// first, renders, then fetches the other models. unpack() reverses qwenfit.export's packing exactly
// (qwenfit.export.unpack_files is the same in Python): references into the file's own table ("~")
// or the index's shared one ("^"), {"%": [keys, ...values]} dicts, {"|": [...]} dicts by columns,
// {"#": [templates, rows]} formula records that share their shape (a slot, {"#": 0}, where they
// differ; or {"#": [templates, order, refs, columns]}, the rows by columns per template; strings "@|..." relative to the record's placement, "@@..." an escaped "@"), {"*": [period, times, ...block, ...]} lists of repeated blocks, {"+": [...]} the same of the differences
// of an integer list (BigInt, as the calculator's JSON reader gives every integer), "!"-escaped strings.
// Patches (qwenfit.export_patch): {"=": payload} a value written as its differences from a base
// (a dict: [its keys or 0 for the base's, {key: new value or patch}]; a list: [its length, index,
// new value or patch, ...]); {"<": [ref, patch]} a value as a patch of an earlier sibling in its dict
// (ref: that key), as a formula record of the ref-th of `bases` (plan mode's files: the
// calculator's formulas, loaded by then), as a template of the ref-th template before it.
// {"&": [keys, their keys, ...columns]} a dict of dicts that have the same keys, column by column;
// {"$": [string, kept beginning, middle, kept end]} a long string as an edit of one in the file's
// table (qwenfit.export_split._Texts; lengths in UTF-16 units, as Python's for the strings so written).

export const PACK = 5n; // qwenfit.export_split.PACK

const SLOT = Object.freeze({ slot: true }); // where a template takes a value of its own row

class Patch {
  constructor(payload) {
    this.payload = payload;
  }
}

class Ref {
  constructor(ref, patch) {
    this.ref = ref;
    this.patch = patch;
  }
}

/** `p` applied to `base` (qwenfit.export_patch.apply_patch); `p` itself if it is not a patch. */
function applyPatch(base, p) {
  if (!(p instanceof Patch)) return p;
  if (Array.isArray(base)) {
    const [n, ...pairs] = p.payload;
    const out = base.slice(0, Number(n));
    while (out.length < Number(n)) out.push(null);
    for (let i = 0; i < pairs.length; i += 2) {
      const j = Number(pairs[i]);
      out[j] = j < base.length ? applyPatch(base[j], pairs[i + 1]) : pairs[i + 1];
    }
    return out;
  }
  const [keys, changes] = p.payload;
  const out = {};
  for (const k of Array.isArray(keys) ? keys : Object.keys(base)) {
    if (!Object.hasOwn(changes, k)) out[k] = base[k];
    else out[k] = Object.hasOwn(base, k) ? applyPatch(base[k], changes[k]) : changes[k];
  }
  return out;
}

/** A decoded dict with its values written as patches of an earlier sibling rebuilt (`any`: whether
 * a value is one; most dicts have none). */
function resolved(obj, any = true) {
  if (any) for (const k of Object.keys(obj)) if (obj[k] instanceof Ref) obj[k] = applyPatch(obj[obj[k].ref], obj[k].patch);
  return obj;
}

/** Formula rows written by columns: `order` has each row's template (-1: the next of `refs`),
 * `columns[t]` one list per slot of template t, row after row (qwenfit.export_records.rows_from_columns). */
function rowsFromColumns(order, refs, columns) {
  const at = columns.map(() => 0);
  let ref = 0;
  return order.map((t) => {
    const i = Number(t);
    if (i < 0) return refs[ref++];
    const row = [t, ...columns[i].map((c) => c[at[i]])];
    at[i] += 1;
    return row;
  });
}

function decoder(table, shared, bases = []) {
  const dec = (v) => {
    if (typeof v === "string") {
      const c = v[0];
      if (c === "~") return table[parseInt(v.slice(1), 36)];
      if (c === "^") return shared[parseInt(v.slice(1), 36)];
      return c === "!" ? v.slice(1) : v;
    }
    if (Array.isArray(v)) return v.map(dec);
    if (v === null || typeof v !== "object") return v;
    const keys = Object.keys(v);
    if (keys.length === 1 && (keys[0] === "+" || keys[0] === "*")) {
      // [period, times, ...block] repeated: the items ("*") or the differences of integers ("+")
      const runs = dec(v[keys[0]]);
      const out = [];
      for (let i = 0; i < runs.length; ) {
        const period = Number(runs[i]);
        const block = runs.slice(i + 2, i + 2 + period);
        for (let n = Number(runs[i + 1]); n > 0; n--) out.push(...block);
        i += 2 + period;
      }
      if (keys[0] === "+") {
        let total = 0n;
        for (let i = 0; i < out.length; i++) out[i] = total += out[i];
      }
      return out;
    }
    if (keys.length === 1 && keys[0] === "$") {
      // a long string as an edit of one in the file's table: [it, kept beginning, middle, kept end]
      const [base, head, middle, tail] = dec(v["$"]);
      return base.slice(0, Number(head)) + middle + base.slice(base.length - Number(tail));
    }
    if (keys.length === 1 && keys[0] === "&") {
      // a dict of dicts with the same keys by columns: [its keys, their keys, one column per key]
      const [outer, inner, ...columns] = dec(v["&"]);
      const out = {};
      outer.forEach((key, i) => {
        const row = {};
        inner.forEach((name, j) => {
          row[name] = columns[j][i];
        });
        out[key] = row;
      });
      return out;
    }
    if (keys.length === 1 && keys[0] === "=") return new Patch(dec(v["="]));
    if (keys.length === 1 && keys[0] === "<") {
      const [ref, patch] = dec(v["<"]);
      return new Ref(ref, patch);
    }
    if (keys.length === 1 && keys[0] === "#") {
      // formula records as [templates, rows]: a row is [its template, the values of its slots...]
      if (v["#"] === 0n || v["#"] === 0) return SLOT;
      const [templates, ...rest] = dec(v["#"]);
      // the rows as they are, or by columns: [order, refs, columns] (qwenfit.export_records.rows_by_template)
      const rows = rest.length === 1 ? rest[0] : rowsFromColumns(...rest);
      // a template written as a patch of an earlier one
      templates.forEach((t, j) => {
        if (t instanceof Ref) templates[j] = applyPatch(templates[Number(t.ref)], t.patch);
      });
      // a part without a slot is the template's own (shared, as the packing's tables share it: the
      // calculator compiles a shared expression once)
      const slotted = new Map();
      const hasSlot = (t) => {
        if (t === SLOT) return true;
        if (typeof t === "string") return t[0] === "@"; // relative to the record's placement
        if (t === null || typeof t !== "object") return false;
        let found = slotted.get(t);
        if (found === undefined) {
          found = Array.isArray(t) ? t.some(hasSlot) : Object.values(t).some(hasSlot);
          slotted.set(t, found);
        }
        return found;
      };
      return rows.map((row) => {
        if (row instanceof Ref) {
          const base = bases[Number(row.ref)];
          if (base === undefined) throw new Error("a formula record written against the calculator's, which are not loaded");
          return applyPatch(base, row.patch);
        }
        let k = 1;
        let placement = null; // the record's, once read: "@|w:gpu" stands for placement + "|w:gpu"
        const absolute = (s) => {
          if (typeof s !== "string" || s[0] !== "@") return s;
          if (s[1] === "@") return s.slice(1);
          if (placement === null) throw new Error(`a placement-relative string before the placement: ${s}`);
          return placement + s.slice(1);
        };
        const fill = (t, top = false) => {
          if (t === SLOT) return absolute(row[k++]);
          if (!hasSlot(t)) return t;
          if (typeof t === "string") return absolute(t);
          if (Array.isArray(t)) return t.map((x) => fill(x));
          if (t === null || typeof t !== "object") return t;
          const out = {};
          for (const key of Object.keys(t)) {
            out[key] = fill(t[key]);
            if (top && key === "placement" && typeof out[key] === "string") placement = out[key];
          }
          return out;
        };
        return fill(templates[Number(row[0])], true);
      });
    }
    if (keys.length === 1 && keys[0] === "|") {
      // a dict keyed "placement|name" by columns: [placements, names of each, {name: values}]
      // (a fourth item {name: others}: that column holds its sums with the others, placement by placement)
      const [placements, names, columns, sums = {}] = dec(v["|"]);
      for (const [c, others] of Object.entries(sums)) {
        const at = {};
        let j = 0;
        const values = columns[c].slice();
        for (const row of names) {
          if (row.includes(c)) {
            for (const o of others) if (row.includes(o)) values[j] -= columns[o][at[o] ?? 0];
            j++;
          }
          for (const name of row) at[name] = (at[name] ?? 0) + 1;
        }
        columns[c] = values;
      }
      const at = {};
      const out = {};
      let refs = false;
      placements.forEach((head, i) => {
        for (const name of names[i]) {
          at[name] = (at[name] ?? 0) + 1;
          const x = columns[name][at[name] - 1];
          out[`${head}|${name}`] = x;
          refs ||= x instanceof Ref;
        }
      });
      return resolved(out, refs);
    }
    if (keys.length === 1 && keys[0] === "%") {
      const [names, ...values] = dec(v["%"]);
      const out = {};
      let refs = false;
      names.forEach((name, i) => {
        out[name] = values[i];
        refs ||= values[i] instanceof Ref;
      });
      return resolved(out, refs);
    }
    const out = {};
    let refs = false;
    for (const k of keys) {
      out[k] = dec(v[k]);
      refs ||= out[k] instanceof Ref;
    }
    return resolved(out, refs);
  };
  return dec;
}

/** One packed file ({t, v}) as the value it stands for; `shared`: the index's decoded shared table;
 * `bases`: the formula records its records may be patches of (the calculator's, for plan mode's files). */
export function unpack(packed, shared = [], bases = []) {
  const table = [];
  const dec = decoder(table, shared, bases);
  for (const entry of packed.t) table.push(dec(entry));
  return dec(packed.v);
}

/** A file packed by qwenfit.export_split.pack_value (plan mode's planner.json, variants.json) as the
 * value it stands for, its formula records patches of `bases` (the calculator's complete formulas);
 * any other JSON value as it is. */
export function unpackValue(value, bases = []) {
  if (value === null || typeof value !== "object" || !("pack" in value) || !("v" in value)) return value;
  if (value.pack !== PACK) throw new Error(`data pack ${value.pack}; this page reads pack ${PACK}`);
  return unpack(value, [], bases);
}

/** The index's shared table, decoded (its entries refer only to earlier ones). */
export function unpackShared(index) {
  const shared = [];
  const dec = decoder([], shared);
  for (const entry of index.shared ?? []) shared.push(dec(entry));
  return shared;
}

async function fetchText(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url.pathname}: HTTP ${r.status} (the site was built without qwenfit's export)`);
  return r.text();
}

/**
 * Load the calculator's data from the split export at `indexUrl` (a URL), parsing with `parse`
 * (the calculator's exact-integer JSON reader). Resolves, once the index and the model `first`
 * (else the index's first model) are in, to {data, rest}: `data` has the shape of
 * qwenfit.export.calculator_json() with the models loaded so far; `rest` resolves to the complete
 * data (every model, in the export's order) once the other model files are in. `inline`: files the
 * page carries in its HTML (name -> text, e.g. {"index.json": ..., "35B-A3B.json": ...}: the docs
 * build writes them into the calculator page, docs/_hooks/qwenfit_docs.py), read instead of fetched.
 */
export async function loadCalculatorData(indexUrl, parse, { first, inline = {} } = {}) {
  const file = (name) => (typeof inline[name] === "string" ? Promise.resolve(inline[name]) : fetchText(new URL(name, indexUrl)));
  // the model shown first is fetched beside the index (its file is named after it, as
  // qwenfit.export.calculator_files names them), not after it: one round trip less on a slow network
  const guess = typeof first === "string" && /^[A-Za-z0-9.-]+$/.test(first)
    ? file(`${first}.json`).catch(() => null)
    : Promise.resolve(null);
  const packedIndex = parse(await file(new URL(indexUrl).pathname.split("/").pop()));
  if (packedIndex.pack !== PACK) throw new Error(`calculator data pack ${packedIndex.pack}; this page reads pack ${PACK}`);
  const shared = unpackShared(packedIndex);
  const index = unpack(packedIndex, shared);
  const chunks = index.chunks;
  delete index.chunks;
  const order = Object.keys(index.models);
  const loaded = new Map();
  const load = async (key, text = null) => {
    const packed = parse(text ?? (await file(chunks[key])));
    loaded.set(key, unpack(packed, shared));
  };
  const assemble = () => {
    const models = {};
    const formulas = [];
    for (const key of order) {
      const part = loaded.get(key);
      if (!part) continue;
      models[key] = { ...index.models[key], quants: part.quants };
      formulas.push(...part.formulas);
    }
    return { ...index, models, formulas };
  };
  const head = order.includes(first) ? first : order[0];
  await load(head, head === first && chunks[head] === `${first}.json` ? await guess : null);
  const rest = Promise.all(order.filter((k) => k !== head).map((k) => load(k))).then(assemble);
  return { data: assemble(), rest };
}
