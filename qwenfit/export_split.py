"""The calculator export split per model and packed for the page (issue #20): an index plus one file per
model, values that repeat written once (in the file's own table or the index's shared one), dict keys
shared, ascending integer lists as run-length deltas. :func:`unpack_files` gives back
:func:`qwenfit.export.calculator_json` byte for byte; docs/javascripts/qwenfit-data.mjs unpacks the same."""

from __future__ import annotations

import itertools
import json
from typing import Any

from qwenfit.export import calculator_json

__all__ = ["calculator_files", "unpack_files"]

_MIN_SHARED = 12  # a repeated value shorter than this (as JSON) is written out each time
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(i: int) -> str:
    out = ""
    while True:
        i, d = divmod(i, 36)
        out = _DIGITS[d] + out
        if not i:
            return out


def _compact(v: Any) -> Any:
    """Dicts of three or more keys as key list + values, ascending integer lists as run-length deltas,
    strings that could be read as a reference escaped."""
    if isinstance(v, str):
        return "!" + v if v[:1] in ("~", "^", "!") else v
    if isinstance(v, list):
        if len(v) >= 4 and all(type(x) is int for x in v) and all(a <= b for a, b in itertools.pairwise(v)):
            runs: list[int] = []
            for d in (v[0], *(b - a for a, b in itertools.pairwise(v))):
                if runs and runs[-2] == d:
                    runs[-1] += 1
                else:
                    runs += [d, 1]
            return {"+": runs}
        return [_compact(x) for x in v]
    if isinstance(v, dict):
        if len(v) == 1 and next(iter(v)) in ("+", "%"):
            raise ValueError(f"the export has a dict the packing reserves: {v!r}")
        if len(v) >= 3:
            return {"%": [list(v), *(_compact(x) for x in v.values())]}
        return {k: _compact(x) for k, x in v.items()}
    return v


class _Packer:
    """Packs several JSON values; what occurs in more than one of them goes to one shared table."""

    def __init__(self, parts: dict[str, Any]) -> None:
        self.parts = {name: _compact(v) for name, v in parts.items()}
        self.keys: dict[int, str] = {}
        self.count: dict[str, int] = {}
        self.owners: dict[str, set[str]] = {}
        for name, v in self.parts.items():
            self._key(v, name)
        self.shared: list[Any] = []
        self._shared_at: dict[str, int] = {}

    def _key(self, v: Any, owner: str) -> str:
        if isinstance(v, list):
            k = "[" + ",".join(self._key(x, owner) for x in v) + "]"
        elif isinstance(v, dict):
            k = "{" + ",".join(json.dumps(a) + ":" + self._key(x, owner) for a, x in v.items()) + "}"
        else:
            return json.dumps(v)
        self.count[k] = self.count.get(k, 0) + 1
        self.owners.setdefault(k, set()).add(owner)
        self.keys[id(v)] = k
        return k

    def pack(self, name: str) -> dict[str, Any]:
        table: list[Any] = []
        at: dict[str, int] = {}

        def children(v: Any) -> Any:
            return [enc(x) for x in v] if isinstance(v, list) else {a: enc(x) for a, x in v.items()}

        def enc(v: Any, top: bool = False) -> Any:
            if not isinstance(v, (list, dict)):
                return v
            k = self.keys[id(v)]
            if top or self.count[k] < 2 or len(k) < _MIN_SHARED:
                return children(v)
            shared = len(self.owners[k]) > 1
            found = (self._shared_at if shared else at).get(k)
            if found is None:
                entry = children(v)  # its parts first: an entry refers only to earlier ones
                into = self.shared if shared else table
                found = len(into)
                (self._shared_at if shared else at)[k] = found
                into.append(entry)
            return ("^" if shared else "~") + _base36(found)

        return {"t": table, "v": enc(self.parts[name], top=True)}


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
    files = {name: {"pack": 1, **packer.pack(name)} for name in parts}
    files["index.json"]["shared"] = packer.shared
    return files


def _unpack(packed: dict[str, Any], shared: list[Any]) -> Any:
    table: list[Any] = []

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
            if len(v) == 1 and "+" in v:
                runs, out, total = dec(v["+"]), [], 0
                for d, n in zip(runs[::2], runs[1::2], strict=True):
                    for _ in range(n):
                        total += d
                        out.append(total)
                return out
            if len(v) == 1 and "%" in v:
                keys, *values = dec(v["%"])
                return dict(zip(keys, values, strict=True))
            return {k: dec(x) for k, x in v.items()}
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


