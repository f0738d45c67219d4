"""Values written as their differences from another (issue #20): plan mode's formula records as
patches of the calculator's (the vision / MTP variants are the calculator's formulas but for a few
terms), a dict value as a patch of the one before it (Ollama's and LM Studio's weight inputs are
llama.cpp's but for the artifact's name). :mod:`qwenfit.export_split` writes and reads them;
docs/javascripts/qwenfit-data.mjs reads them the same way."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = [
    "Bases",
    "Patch",
    "Ref",
    "Texts",
    "apply_patch",
    "by_columns",
    "patch_text",
    "patched",
    "resolved",
    "siblings",
]


class Patch:
    """A value written as its differences from a base value (:func:`_diff`): for a dict
    [its keys (0: the base's, in its order), {key: new value or Patch}], for a list [its length,
    index, new value or Patch, ...]. Written {"=": payload}."""

    __slots__ = ("payload",)

    def __init__(self, payload: list[Any]) -> None:
        self.payload = payload


class Ref:
    """A value as a Patch of another: an earlier sibling's (``ref`` its key, in a dict) or the
    ``ref``-th of the bases (pack_value's ``bases``, in a list of formula records). Written
    {"<": [ref, patch]}."""

    __slots__ = ("patch", "ref")

    def __init__(self, ref: Any, patch: Any) -> None:
        self.ref, self.patch = ref, patch


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON text (key order and int / bool / float told apart)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(x, b[k]) for k, x in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def patch_text(v: Any) -> str:
    """``v`` as JSON, its patches as they are written (a template's slots as a 0)."""
    return json.dumps(v, separators=(",", ":"), default=_written)


def _written(o: Any) -> Any:
    return {"=": o.payload} if isinstance(o, Patch) else 0


def _diff(base: Any, x: Any) -> Any:
    """``x`` as a Patch of ``base`` where that is shorter as JSON, else ``x``."""
    if isinstance(x, dict) and isinstance(base, dict):
        changes = {k: _diff(base[k], y) if k in base else y for k, y in x.items()
                   if k not in base or not _same(base[k], y)}  # fmt: skip
        patch = Patch([0 if list(x) == list(base) else list(x), changes])
    elif isinstance(x, list) and isinstance(base, list):
        flat: list[Any] = [len(x)]
        for i, y in enumerate(x):
            if i >= len(base) or not _same(base[i], y):
                flat += [i, _diff(base[i], y) if i < len(base) else y]
        patch = Patch(flat)
    else:
        return x
    return patch if len(patch_text(patch)) < len(patch_text(x)) else x


def apply_patch(base: Any, p: Any) -> Any:
    """:func:`_diff` undone: ``p`` applied to ``base`` (``p`` itself if it is not a Patch)."""
    if not isinstance(p, Patch):
        return p
    if isinstance(base, dict):
        keys, changes = p.payload
        out = {}
        for k in list(base) if keys == 0 else keys:
            if k not in changes:
                out[k] = base[k]
            else:
                out[k] = apply_patch(base[k], changes[k]) if k in base else changes[k]
        return out
    n, *pairs = p.payload
    items = list(base[:n]) + [None] * (n - len(base))
    for i, v in zip(pairs[::2], pairs[1::2], strict=True):
        items[i] = apply_patch(base[i], v) if i < len(base) else v
    return items


# A value is written as a patch of another when the patch is under 2/3 of its size (a ratio of 1.5).
# With less saved, the value is usually cheaper whole, shared with its like through the file's
# tables and templates; measured on the site's files (whole export, raw): ratio 4 983 kB, 2 914 kB,
# 1.75 900 kB, 1.5 890 kB, 1.33 898 kB.
_MAX_PATCH = 1.5


def patched(base: Any, x: Any) -> Patch | None:
    """``x`` as a Patch of ``base`` if that is shorter enough (under 1/_MAX_PATCH as JSON)."""
    p = _diff(base, x)
    return p if isinstance(p, Patch) and len(patch_text(p)) * _MAX_PATCH < len(patch_text(x)) else None


def siblings(v: dict[str, Any]) -> dict[str, Any]:
    """A dict with each dict value that is close to the dict value before it (Ollama's and LM
    Studio's weight inputs are llama.cpp's but for the artifact's name) written as a Ref to it."""
    out: dict[str, Any] = {}
    prev: str | None = None
    for k, x in v.items():
        p = patched(v[prev], x) if prev is not None and isinstance(x, dict) else None
        out[k] = x if p is None else Ref(prev, p)
        if isinstance(x, dict):
            prev = k
    return out


class Bases:
    """Formula records a packed value may be written against (plan mode's: the calculator's, which
    the page has loaded by then), found by what they are of."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.by: dict[tuple[Any, ...], list[int]] = {}
        for i, r in enumerate(records):
            ident = (r.get("model"), r.get("engine"), r.get("kv_cache"))
            self.by.setdefault((*ident, r.get("placement")), []).append(i)
            self.by.setdefault(ident, []).append(i)

    def ref(self, record: dict[str, Any]) -> Ref | None:
        """``record`` as a Patch of the closest record of its model, engine and KV cache (its own
        placement's first), or None if none is close."""
        ident = (record.get("model"), record.get("engine"), record.get("kv_cache"))
        found = self.by.get((*ident, record.get("placement")), []) or self.by.get(ident, [])
        best: Ref | None = None
        for i in found[:_MAX_BASES]:
            p = patched(self.records[i], record)
            if p is not None and (best is None or len(patch_text(p)) < len(patch_text(best.patch))):
                best = Ref(i, p)
        return best


_MAX_BASES = 8  # the records of a model, engine and KV cache tried as a record's base


def resolved(d: dict[str, Any]) -> dict[str, Any]:
    """A decoded dict with its values written as patches of an earlier sibling (Ref) rebuilt."""
    for k, x in d.items():
        if isinstance(x, Ref):
            d[k] = apply_patch(d[x.ref], x.patch)
    return d


_MIN_TEXT = 30  # a string this long is written once in its file's table, or as an edit of one there
_MAX_TEXTS = 48  # the strings of the table (the latest) tried as a string's base


class Texts:
    """A file's long strings (the explanations of formula terms, the commands that make a GGUF), which
    repeat or differ from one another by a name in the middle (the quantization's, the parts'
    count): each written once in the file's table ("~n"), another that shares a long beginning and
    end with one there as {"$": [that one, the length of the beginning, its own middle, the length
    of the end]}. Only strings of the Basic Multilingual Plane (whose lengths JavaScript counts as
    Python does)."""

    def __init__(self, table: list[Any], ref: Callable[[int], str]) -> None:
        self.table, self.ref = table, ref  # ref: how the file refers to the i-th entry of its table
        self.at: dict[str, int] = {}

    def enc(self, v: str) -> Any:
        """``v`` (as export_split's _compact wrote it: "!"-escaped) as written in the file."""
        text = v[1:] if v[:1] == "!" else v
        if len(text) < _MIN_TEXT or any(ord(c) > 0xFFFF for c in text):
            return v
        found = self.at.get(text)
        if found is not None:
            return self.ref(found)
        best = (0, 0, 0)
        for s, i in list(self.at.items())[-_MAX_TEXTS:]:
            head = _common(s, text)
            tail = _common(s[::-1], text[::-1], min(len(s), len(text)) - head)
            if head + tail > best[0] + best[1]:
                best = (head, tail, i)
        head, tail, i = best
        if head + tail >= _MIN_KEPT:
            middle = text[head : len(text) - tail]
            return {"$": [self.ref(i), head, "!" + middle if middle[:1] in ("~", "^", "!") else middle, tail]}
        self.at[text] = len(self.table)
        self.table.append(v)
        return self.ref(self.at[text])


_MIN_KEPT = 24  # a string is written as an edit of another when it keeps this much of it


def _common(a: str, b: str, most: int | None = None) -> int:
    """The length of the longest common beginning of ``a`` and ``b`` (at most ``most``)."""
    lo, hi = 0, min(len(a), len(b), len(a) if most is None else most)
    while lo < hi:  # a[:lo] == b[:lo]
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def by_columns(v: dict[str, Any]) -> list[Any] | None:
    """A dict of three or more dicts that have the same keys in the same order (the hardware's
    per-engine inputs and speed constants) as [its keys, their keys, one column per key: that key's
    values dict by dict], or None if it is not one. A column repeats where the dicts agree (a
    device's CPU rate for every engine and tensor-parallel size), so it packs as runs."""
    rows = list(v.values())
    if len(rows) < 3 or not all(type(r) is dict for r in rows):
        return None
    keys = list(rows[0])
    if len(keys) < 2 or any(list(r) != keys for r in rows[1:]):
        return None
    return [list(v), keys, *([r[k] for r in rows] for k in keys)]
