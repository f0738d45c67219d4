"""The calculator export split per model and packed for the page (issue #20): an index plus one file per
model, values that repeat written once (in the file's own table or the index's shared one), dict keys
shared, dicts keyed "placement|name" (plan mode's weight inputs) by columns, dicts of dicts with the
same keys (the hardware's inputs and speed constants) by columns where that is shorter, repeated blocks
of a list written once, integer lists as their differences, long strings once per file or as an edit
of an earlier one. :func:`unpack_files` gives back
:func:`qwenfit.export.calculator_json` byte for byte; :func:`pack_value` / :func:`unpack_value` do the
same for one value (plan mode's planner.json and variants.json); docs/javascripts/qwenfit-data.mjs
unpacks them all."""

from __future__ import annotations

import itertools
import json
from typing import Any

from qwenfit.export import calculator_json
from qwenfit.export_patch import (
    Bases,
    Patch,
    Ref,
    Texts,
    apply_patch,
    by_columns,
    resolved,
    siblings,
)
from qwenfit.export_records import (
    SLOT,
    SLOT_MARK,
    absolute,
    filled,
    rows_by_template,
    rows_from_columns,
    share_templates,
    template_refs,
)

__all__ = [
    "PACK",
    "PLAN_FILES",
    "calculator_files",
    "pack_value",
    "plan_files",
    "site_files",
    "unpack_files",
    "unpack_value",
]

PACK = 5  # the packing's version (docs/javascripts/qwenfit-data.mjs reads this one)
_MIN_SHARED = 12  # a repeated value shorter than this (as JSON) is written out each time
_MIN_NUMBER = 7  # an integer this long (as JSON) used often in one file goes to the file's table
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(i: int) -> str:
    out = ""
    while True:
        i, d = divmod(i, 36)
        out = _DIGITS[d] + out
        if not i:
            return out


_RESERVED = (
    "+",
    "*",
    "%",
    "|",
    "#",
    "=",
    "<",
    "&",
    "$",
)  # the one key of a dict that stands for a packed value
_MIN_COLUMNS = 8  # a dict of "placement|name" keys shorter than this is written as it is
_MAX_PERIOD = 8  # the longest block of a list written once for its repetitions


def _blocks(keys: list[Any]) -> list[tuple[int, int, int]]:
    """``keys`` cut into (start, period, times): a block of ``period`` items repeated ``times`` times
    (the longest repetition of a block of up to 8 items, taken greedily), or written once (times 1)."""
    out: list[tuple[int, int, int]] = []
    i, n, literal = 0, len(keys), 0
    while i < n:
        best = (0, 0)
        for period in range(1, min(_MAX_PERIOD, (n - i) // 2) + 1):
            times = 1
            while keys[i + times * period : i + (times + 1) * period] == keys[i : i + period]:
                times += 1
            if times > 1 and period * times > best[0] * best[1]:
                best = (period, times)
        if best[1] < 2:
            literal += 1
            i += 1
            continue
        if literal:
            out.append((i - literal, literal, 1))
            literal = 0
        out.append((i, *best))
        i += best[0] * best[1]
    if literal:
        out.append((n - literal, literal, 1))
    return out


def _deltas(v: list[int]) -> list[int]:
    """``v`` as its differences (the first from 0), repeated blocks of them written once."""
    d = [v[0], *(b - a for a, b in itertools.pairwise(v))]
    out: list[int] = []
    for start, period, times in _blocks(d):
        out += [period, times, *d[start : start + period]]
    return out


def _columns(v: dict[str, Any]) -> list[Any] | None:
    """A dict keyed "placement|name" (plan mode's weight inputs) as [placements, names of each
    placement, {name: [its values, placement by placement]}], or None if its keys are not so (each
    placement's keys together). Columns of integers change by the same step layer after layer."""
    placements: list[str] = []
    names: list[list[str]] = []
    columns: dict[str, list[Any]] = {}
    for key, x in v.items():
        head, sep, name = key.partition("|")
        if not sep:
            return None
        if not placements or placements[-1] != head:
            if head in placements:
                return None
            placements.append(head)
            names.append([])
        names[-1].append(name)
        columns.setdefault(name, []).append(x)
    return [placements, names, columns]


def _row_sums(names: list[list[str]], columns: dict[str, list[Any]], c: str, others: list[str]) -> list[int]:
    """Column ``c`` plus, placement by placement, the ``others`` that placement has."""
    at = dict.fromkeys(columns, 0)
    out: list[int] = []
    for row in names:
        if c in row:
            out.append(columns[c][at[c]] + sum(columns[o][at[o]] for o in others if o in row))
        for name in row:
            at[name] += 1
    return out


def _sums(names: list[list[str]], columns: dict[str, list[Any]]) -> dict[str, tuple[list[str], list[int]]]:
    """Integer columns written as a sum with the others of their kind (the same text before ":",
    "w:gpu", "w:cpu": a placement's weights on its devices add up to the model's): at most one
    column of each kind, the one whose sum packs shortest, when that is shorter than the column.
    {column: (the others, the sums placement by placement)}."""
    kinds: dict[str, list[str]] = {}
    for k, x in columns.items():
        if ":" in k and all(type(i) is int for i in x):
            kinds.setdefault(k.split(":")[0], []).append(k)
    out: dict[str, tuple[list[str], list[int]]] = {}
    for kind in kinds.values():
        best: tuple[int, str, list[str], list[int]] | None = None
        for c in kind:
            others = [o for o in kind if o != c]
            total = _row_sums(names, columns, c, others)
            saved = len(json.dumps(_compact(columns[c]))) - len(json.dumps(_compact(total)))
            if saved > 0 and (best is None or saved > best[0]):
                best = (saved, c, others, total)
        if len(kind) > 1 and best is not None:
            out[best[1]] = (best[2], best[3])
    return out


def _records(v: list[dict[str, Any]], bases: Bases | None) -> dict[str, Any]:
    """Formula records as {"#": [templates, rows]} (:func:`share_templates`), or {"#": [templates,
    order, refs, columns]} with the rows by columns where that is shorter (:func:`rows_by_template`);
    a record that has its own template and is close to one of ``bases`` written instead as a row
    {"<": [base, patch]}."""
    templates, rows = share_templates(v)
    if bases is not None:
        uses: dict[int, int] = {}
        for row in rows:
            uses[row[0]] = uses.get(row[0], 0) + 1
        for i, row in enumerate(rows):
            ref = bases.ref(v[i]) if uses[row[0]] == 1 and len(row) == 1 else None
            rows[i] = row if ref is None else ref
        kept = {j: at for at, j in enumerate(sorted({r[0] for r in rows if not isinstance(r, Ref)}))}
        templates = template_refs([t for j, t in enumerate(templates) if j in kept])
        rows = [r if isinstance(r, Ref) else [kept[r[0]], *r[1:]] for r in rows]
    packed = [_compact(x) for x in templates]
    by_rows = [_compact(x) for x in rows]
    order, refs, columns = rows_by_template(rows)
    columnar = [_compact(order), [_compact(x) for x in refs], [[_compact(c) for c in t] for t in columns]]
    shorter = len(json.dumps(columnar)) < len(json.dumps(by_rows))
    return {"#": [packed, *columnar] if shorter else [packed, by_rows]}


def _compact(v: Any, bases: Bases | None = None) -> Any:
    """Dicts of "placement|name" keys by columns, other dicts of three or more keys as key list +
    values, integer lists as run-length deltas where that is shorter, strings that could be read as a
    reference escaped; formula records close to one of ``bases`` and dict values close to the one
    before them as patches."""
    if isinstance(v, str):
        return "!" + v if v[:1] in ("~", "^", "!") else v
    if v is SLOT:
        return dict(SLOT_MARK)
    if isinstance(v, Patch):
        return {"=": _compact(v.payload)}
    if isinstance(v, Ref):
        return {"<": [_compact(v.ref), _compact(v.patch)]}
    if isinstance(v, list):
        if len(v) >= 4 and all(isinstance(x, dict) and "terms" in x for x in v):
            return _records(v, bases)
        if len(v) >= 4 and all(type(x) is int for x in v):
            runs = _deltas(v)
            if len(json.dumps(runs)) < len(json.dumps(v)):
                return {"+": runs}
            return v
        if len(v) >= 4:
            keys = [json.dumps(x, default=repr) for x in v]
            if len(set(keys)) < len(keys) * 3 // 4:  # repeats enough to pay for their counts
                out: list[Any] = []
                for start, period, times in _blocks(keys):
                    out += [period, times, *(_compact(x, bases) for x in v[start : start + period])]
                return {"*": out}
        return [_compact(x, bases) for x in v]
    if isinstance(v, dict):
        if len(v) == 1 and next(iter(v)) in _RESERVED:
            raise ValueError(f"the export has a dict the packing reserves: {v!r}")
        by_rows = _compact_dict(v, bases)
        table = by_columns(v)
        if table is None:
            return by_rows
        columns = {"&": [_compact(x, bases) for x in table]}
        return columns if len(json.dumps(columns)) < len(json.dumps(by_rows)) else by_rows
    return v


def _compact_dict(v: dict[str, Any], bases: Bases | None) -> Any:
    """:func:`_compact` of a dict, row by row (each value in its place)."""
    if sum(isinstance(x, dict) for x in v.values()) > 1:
        v = siblings(v)
    cols = _columns(v) if len(v) >= _MIN_COLUMNS else None
    if cols is not None:
        sums = _sums(cols[1], cols[2])
        columns = {k: _compact(x, bases) for k, x in cols[2].items()}
        if not sums:
            return {"|": [_compact(cols[0]), _compact(cols[1]), columns]}
        for k, (_, total) in sums.items():
            columns[k] = _compact(total)
        return {"|": [_compact(cols[0]), _compact(cols[1]), columns, {k: o for k, (o, _) in sums.items()}]}
    if len(v) >= 3:
        return {"%": [list(v), *(_compact(x, bases) for x in v.values())]}
    return {k: _compact(x, bases) for k, x in v.items()}


class _Packer:
    """Packs several JSON values; what occurs in more than one of them goes to one shared table."""

    def __init__(self, parts: dict[str, Any], bases: list[dict[str, Any]] | None = None) -> None:
        found = None if bases is None else Bases(bases)
        self.parts = {name: _compact(v, found) for name, v in parts.items()}
        self.keys: dict[int, str] = {}
        self.count: dict[str, int] = {}
        self.owners: dict[str, set[str]] = {}
        for name, v in self.parts.items():
            self._key(v, name)
        self.shared: list[Any] = []
        self._shared_at: dict[str, int] = {}
        self.shared_texts = Texts(self.shared, lambda i: "^" + _base36(i))

    def _key(self, v: Any, owner: str) -> str:
        if isinstance(v, list):
            k = "[" + ",".join(self._key(x, owner) for x in v) + "]"
        elif isinstance(v, dict):
            k = "{" + ",".join(json.dumps(a) + ":" + self._key(x, owner) for a, x in v.items()) + "}"
        else:
            k = json.dumps(v)
            if type(v) is int and len(k) >= _MIN_NUMBER:
                self.count[k] = self.count.get(k, 0) + 1
                self.owners.setdefault(k, set()).add(owner)
            return k
        self.count[k] = self.count.get(k, 0) + 1
        self.owners.setdefault(k, set()).add(owner)
        self.keys[id(v)] = k
        return k

    def pack(self, name: str) -> dict[str, Any]:
        table: list[Any] = []
        at: dict[str, int] = {}
        texts = Texts(table, lambda i: "~" + _base36(i))

        def children(v: Any, local: bool) -> Any:
            if isinstance(v, list):
                return [enc(x, local) for x in v]
            return {a: enc(x, local) for a, x in v.items()}

        def enc(v: Any, local: bool, top: bool = False) -> Any:
            if type(v) is int:  # a long number used often in this file: written once, in its table
                k = json.dumps(v)
                n = self.count.get(k, 0)
                if len(k) < _MIN_NUMBER or n * (len(k) - 6) <= len(k) + 1 or len(self.owners[k]) > 1:
                    return v
                if k not in at:
                    at[k] = len(table)
                    table.append(v)
                return "~" + _base36(at[k])
            if isinstance(v, str):
                return (texts if local else self.shared_texts).enc(v)
            if not isinstance(v, (list, dict)):
                return v
            k = self.keys[id(v)]
            if top or self.count[k] < 2 or len(k) < _MIN_SHARED:
                return children(v, local)
            shared = len(self.owners[k]) > 1
            found = (self._shared_at if shared else at).get(k)
            if found is None:
                entry = children(v, not shared)  # its parts first: an entry refers only to earlier ones
                into = self.shared if shared else table
                found = len(into)
                (self._shared_at if shared else at)[k] = found
                into.append(entry)
            return ("^" if shared else "~") + _base36(found)

        return {"t": table, "v": enc(self.parts[name], True, top=True)}


def calculator_files() -> dict[str, Any]:
    """The export split for the page: ``{"index.json": ..., "<model>.json": ...}`` (see the module
    docstring); together well under a tenth of :func:`calculator_json`'s size."""
    data = calculator_json()
    models = {k: {a: b for a, b in m.items() if a != "quants"} for k, m in data["models"].items()}
    index = {k: models if k == "models" else v for k, v in data.items() if k != "formulas"}
    index["chunks"] = {k: f"{k}.json" for k in data["models"]}
    parts = {"index.json": index}
    for k, m in data["models"].items():
        parts[f"{k}.json"] = {
            "quants": m["quants"],
            "formulas": [f for f in data["formulas"] if f["model"] == k],
        }
    packer = _Packer(parts)
    files = {name: {"pack": PACK, **packer.pack(name)} for name in parts}
    files["index.json"]["shared"] = packer.shared
    return files


def _unpack(packed: dict[str, Any], shared: list[Any], bases: list[Any] | None = None) -> Any:
    table: list[Any] = []

    def row_of(templates: list[Any], row: Any) -> Any:
        if isinstance(row, Ref):
            if bases is None:
                raise ValueError("a formula record written against the calculator's: unpack it with them")
            return apply_patch(bases[row.ref], row.patch)
        return absolute(filled(templates[row[0]], iter(row[1:])), [None])

    def dec(v: Any) -> Any:
        if isinstance(v, str):
            if v[:1] == "~":
                return table[int(v[1:], 36)]
            if v[:1] == "^":
                return shared[int(v[1:], 36)]
            return v[1:] if v[:1] == "!" else v
        if isinstance(v, list):
            return [dec(x) for x in v]
        if isinstance(v, dict):
            if len(v) == 1 and ("+" in v or "*" in v):
                runs, out, i = dec(v.get("+", v.get("*"))), [], 0
                while i < len(runs):
                    period, times = runs[i], runs[i + 1]
                    out += runs[i + 2 : i + 2 + period] * times
                    i += 2 + period
                if "+" in v:
                    out = list(itertools.accumulate(out))
                return out
            if len(v) == 1 and "$" in v:
                base, head, middle, tail = dec(v["$"])
                return base[:head] + middle + base[len(base) - tail :]
            if len(v) == 1 and "&" in v:
                keys, names, *columns = dec(v["&"])
                return {
                    k: dict(zip(names, row, strict=True))
                    for k, row in zip(keys, zip(*columns, strict=True), strict=True)
                }
            if len(v) == 1 and "%" in v:
                keys, *values = dec(v["%"])
                return resolved(dict(zip(keys, values, strict=True)))
            if len(v) == 1 and "=" in v:
                return Patch(dec(v["="]))
            if len(v) == 1 and "<" in v:
                return Ref(*dec(v["<"]))
            if len(v) == 1 and "#" in v:
                if v["#"] == 0:
                    return SLOT
                templates, *rows = dec(v["#"])
                rows = rows[0] if len(rows) == 1 else rows_from_columns(*rows)
                for j, t in enumerate(templates):  # a patch of an earlier template
                    if isinstance(t, Ref):
                        templates[j] = apply_patch(templates[t.ref], t.patch)
                return [row_of(templates, row) for row in rows]
            if len(v) == 1 and "|" in v:
                placements, names, columns, *sums = dec(v["|"])
                for c, others in (sums[0] if sums else {}).items():  # sums with the others: minus them
                    minus = _row_sums(names, columns, c, others)
                    columns[c] = [2 * t - m for t, m in zip(columns[c], minus, strict=True)]
                at = dict.fromkeys(columns, 0)
                by_key: dict[str, Any] = {}
                for head, row in zip(placements, names, strict=True):
                    for name in row:
                        by_key[f"{head}|{name}"] = columns[name][at[name]]
                        at[name] += 1
                return resolved(by_key)
            return resolved({k: dec(x) for k, x in v.items()})
        return v

    for entry in packed["t"]:
        table.append(dec(entry))
    return dec(packed["v"])


def unpack_files(files: dict[str, Any]) -> dict[str, Any]:
    """:func:`calculator_json` from :func:`calculator_files` (what docs/javascripts/qwenfit-data.mjs
    does in the browser, one model file at a time)."""
    shared: list[Any] = []
    for entry in files["index.json"]["shared"]:
        shared.append(_unpack({"t": [], "v": entry}, shared))
    index: dict[str, Any] = _unpack(files["index.json"], shared)
    chunks = index.pop("chunks")
    formulas: list[Any] = []
    for key, name in chunks.items():
        part = _unpack(files[name], shared)
        index["models"][key]["quants"] = part["quants"]
        formulas += part["formulas"]
    index["formulas"] = formulas
    return index


def pack_value(value: Any, bases: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One JSON value packed as one file (as :func:`calculator_files` packs each of its files): plan
    mode's planner.json and variants.json. :func:`unpack_value` gives ``value`` back."""
    packer = _Packer({"value": value}, bases)
    return {"pack": PACK, **packer.pack("value")}


def unpack_value(packed: dict[str, Any], bases: list[dict[str, Any]] | None = None) -> Any:
    """The value :func:`pack_value` packed (what docs/javascripts/qwenfit-data.mjs's unpack does)."""
    if packed.get("pack") != PACK:
        raise ValueError(f"pack {packed.get('pack')!r}; this reads pack {PACK}")
    return _unpack(packed, [], bases)


PLAN_FILES = ("planner.json", "variants.json")  # plan mode's files, beside the calculator's index.json


def plan_files() -> dict[str, Any]:
    """Plan mode's files: :func:`qwenfit.export_plan.planner_json` and ``variants_json`` packed
    (:func:`pack_value`), their formula records written as patches of the calculator's (the page has
    every model's file when it reads them: ``unpack_value(packed, calculator_json()["formulas"])``)."""
    from qwenfit.export_plan import planner_json, variants_json

    bases = calculator_json()["formulas"]
    return {
        "planner.json": pack_value(planner_json(), bases),
        "variants.json": pack_value(variants_json(), bases),
    }


def site_files() -> dict[str, Any]:
    """Everything the calculator page loads (``qwenfit export --split``, the docs site's
    assets/calculator/): :func:`calculator_files` and :func:`plan_files`."""
    files = calculator_files()
    clash = set(files) & set(PLAN_FILES)
    if clash:
        raise ValueError(f"a model's file would be named as plan mode's: {sorted(clash)}")
    return {**files, **plan_files()}
