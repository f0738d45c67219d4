"""Formula records as templates and rows (plan mode's and the calculator's packed files, issue #20):
records of one shape share a template with a slot where they differ, strings relative to the
record's placement; the rows either as lists or, where shorter, by columns per template
(:func:`rows_by_template`). :mod:`qwenfit.export_split` packs and unpacks the values."""

from __future__ import annotations

import json
from typing import Any

from qwenfit.export_patch import Ref, patch_text, patched

__all__ = [
    "SLOT",
    "SLOT_MARK",
    "absolute",
    "filled",
    "rows_by_template",
    "rows_from_columns",
    "share_templates",
    "template_refs",
]

_MAX_VARYING = 4  # records share a template when at most 1/4 of their leaves differ
_MAX_BASES = 8  # the templates before a template tried as its base (template_refs)


class _Slot:
    """Where a template (:func:`share_templates`) takes a value of its own record."""


SLOT = _Slot()
SLOT_MARK = {"#": 0}  # a slot as written: a dict of the reserved key "#" with 0, not a list


def _skeleton(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ",".join(_skeleton(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + _skeleton(x) for k, x in v.items()) + "}"
    return "."


def _leaves(v: Any, out: list[Any]) -> list[Any]:
    if isinstance(v, list):
        for x in v:
            _leaves(x, out)
    elif isinstance(v, dict):
        for x in v.values():
            _leaves(x, out)
    else:
        out.append(v)
    return out


def _with_slots(v: Any, slots: set[int], at: list[int]) -> Any:
    """``v`` with its leaves number ``slots`` (in :func:`_leaves`'s order) replaced by SLOT."""
    if isinstance(v, list):
        return [_with_slots(x, slots, at) for x in v]
    if isinstance(v, dict):
        return {k: _with_slots(x, slots, at) for k, x in v.items()}
    at[0] += 1
    return SLOT if at[0] - 1 in slots else v


def _relative(v: Any, placement: str | None, top: bool = True) -> Any:
    """A formula record with its strings that begin with its own placement and "|" (plan mode's
    per-placement inputs, "gpu1-ngl6|w:gpu") written "@|w:gpu": records of one shape for other
    placements then differ in fewer leaves. A string that begins with "@" gets another ("@@...").
    Only strings after the record's "placement" key (in key order) are so written: what
    :func:`absolute` reads back in the same order."""
    if isinstance(v, str):
        if v[:1] == "@":
            return "@" + v
        return "@" + v[len(placement) :] if placement is not None and v.startswith(placement + "|") else v
    if isinstance(v, list):
        return [_relative(x, placement, False) for x in v]
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            out[k] = _relative(x, placement, False)
            if top and k == "placement" and isinstance(x, str):
                placement = x
        return out
    return v


def absolute(v: Any, placement: list[str | None], top: bool = True) -> Any:
    """:func:`_relative` undone (``placement``: a one-item list, the record's placement once read)."""
    if isinstance(v, str):
        if v[:2] == "@@":
            return v[1:]
        if v[:1] == "@":
            if placement[0] is None:
                raise ValueError(f"a placement-relative string before the record's placement: {v!r}")
            return placement[0] + v[1:]
        return v
    if isinstance(v, list):
        return [absolute(x, placement, False) for x in v]
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            out[k] = absolute(x, placement, False)
            if top and k == "placement" and isinstance(out[k], str):
                placement[0] = out[k]
        return out
    return v


def share_templates(records: list[dict[str, Any]]) -> list[Any]:
    """Formula records as [templates, rows]: records of the same shape (trees that differ only by
    their constants, names and numbers) share one template, with a slot where they differ; each
    record is a row [its template, the values of its slots...]. Strings are relative to the
    record's placement (:func:`_relative`)."""
    records = [_relative(r, None) for r in records]
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(_skeleton(r), []).append(i)
    templates: list[Any] = []
    rows: list[Any] = [None] * len(records)
    for members in groups.values():
        leaves = [_leaves(records[i], []) for i in members]
        texts = [[json.dumps(x) for x in row] for row in leaves]
        vary = [j for j in range(len(texts[0])) if any(t[j] != texts[0][j] for t in texts[1:])]
        if len(members) < 2 or len(vary) * _MAX_VARYING > len(texts[0]):  # each its own template (no slot)
            for i in members:
                templates.append(records[i])
                rows[i] = [len(templates) - 1]
            continue
        templates.append(_with_slots(records[members[0]], set(vary), [0]))
        for i, row in zip(members, leaves, strict=True):
            rows[i] = [len(templates) - 1, *(row[j] for j in vary)]
    return [templates, rows]


def template_refs(templates: list[Any]) -> list[Any]:
    """Templates each written as a patch of the closest of the _MAX_BASES before it, where that is
    much shorter (plan mode's -ngl k records: a few shapes at the ends, k = 1..3 and the last)."""
    out: list[Any] = []
    for j, t in enumerate(templates):
        best: Ref | None = None
        for i in range(max(0, j - _MAX_BASES), j):
            p = patched(templates[i], t)
            if p is not None and (best is None or len(patch_text(p)) < len(patch_text(best.patch))):
                best = Ref(i, p)
        out.append(t if best is None else best)
    return out


def filled(template: Any, values: Any) -> Any:
    """A copy of ``template`` with its slots filled from ``values`` in order."""
    if template is SLOT:
        return next(values)
    if isinstance(template, list):
        return [filled(x, values) for x in template]
    if isinstance(template, dict):
        return {k: filled(x, values) for k, x in template.items()}
    return template


def rows_by_template(rows: list[Any]) -> list[Any]:
    """:func:`share_templates`' rows (and rows that are a :class:`Ref` to a base record) by columns:
    [order, refs, columns]. ``order`` has each row's template (-1: the next of ``refs``);
    ``columns[t]`` has one list per slot of template ``t``: that slot's values, row after row. Rows of
    one template mostly repeat their model's numbers and step their placement's, which a column
    writes as runs and differences (plan mode's -ngl k rows)."""
    order: list[int] = []
    refs: list[Any] = []
    by_template: dict[int, list[list[Any]]] = {}
    for row in rows:
        if isinstance(row, Ref):
            order.append(-1)
            refs.append(row)
            continue
        order.append(row[0])
        by_template.setdefault(row[0], []).append(row[1:])
    n_templates = max((t for t in order if t >= 0), default=-1) + 1
    columns = [[list(c) for c in zip(*by_template.get(t, []), strict=True)] for t in range(n_templates)]
    return [order, refs, columns]


def rows_from_columns(order: list[int], refs: list[Any], columns: list[list[list[Any]]]) -> list[Any]:
    """:func:`rows_by_template` undone: the rows in their order."""
    at = [0] * len(columns)
    pending = iter(refs)
    out: list[Any] = []
    for t in order:
        if t < 0:
            out.append(next(pending))
            continue
        out.append([t, *(c[at[t]] for c in columns[t])])
        at[t] += 1
    return out
