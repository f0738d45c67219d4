"""Values written as their differences from another (issue #20): plan mode's formula records as
patches of the calculator's (the vision / MTP variants are the calculator's formulas but for a few
terms), a dict value as a patch of the one before it (Ollama's and LM Studio's weight inputs are
llama.cpp's but for the artifact's name). :mod:`qwenfit.export_split` writes and reads them;
docs/javascripts/qwenfit-data.mjs reads them the same way."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Bases", "Patch", "Ref", "apply_patch", "patch_text", "patched", "resolved", "siblings"]


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


_MAX_PATCH = 4  # a value is written as a patch of another when the patch is under 1/4 of its size


def patched(base: Any, x: Any) -> Patch | None:
    """``x`` as a Patch of ``base`` if that is much shorter (under 1/_MAX_PATCH as JSON)."""
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
