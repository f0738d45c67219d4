"""Values precompiled at build time for the catalog's models, looked up before they are computed.

What depends only on a catalog model, its quantization, the artifact and the engine's deployment
(the planner's weight sums per placement, the bytes a token reads, the compiled traced formulas,
llama.cpp's host-input polynomial) is computed by ``scripts/gen_compiled_json.py`` into
``data/compiled.json`` and shipped. :mod:`qwenfit.loaders.compiled` installs the provider: it hands
out a model's table only when the file's source digest (qwenfit/core and the catalog's data files)
is the running tree's, so a stale file is never used; anything not in the table is computed as
before. This module holds no data itself: it is the lookup the computing functions call first (and,
while the generator runs, the recorder of what they computed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["MISSING", "TENSOR_TABLE", "install", "lookup", "recording", "remember"]

MISSING: Any = object()

# what precompiled llama.cpp inputs hold instead of the GGUF's tensor table: only the exact scheduler
# replay reads it (a stored table would be ~10 MB; qwenfit.errors.LeftOut when it does)
TENSOR_TABLE = "<not precompiled: the exact replay computes the inputs>"


# model name -> {kind: {key: value}} or None (no valid table for it); set by qwenfit.loaders.compiled
_provider: Callable[[str], Mapping[str, Mapping[str, Any]] | None] | None = None
# while scripts/gen_compiled_json.py runs: model -> kind -> key parts -> value computed
_record: dict[str, dict[str, dict[tuple[str, ...], Any]]] | None = None


def install(provider: Callable[[str], Mapping[str, Mapping[str, Any]] | None] | None) -> None:
    """Use ``provider`` for lookups (None: compute everything)."""
    global _provider
    _provider = provider


LONG = 48  # key parts longer than this (an artifact's repr) are stored once per model, by index


def lookup(model: str, kind: str, key: tuple[str, ...]) -> Any:
    """The precompiled value of ``kind``/``key`` for catalog model ``model``, or :data:`MISSING`.
    ``key``: the parts the value depends on besides the model, as strings (reprs)."""
    if _provider is None or _record is not None:
        return MISSING
    table = _provider(model)
    if table is None:
        return MISSING
    long = table["long"]
    parts = []
    for part in key:
        if len(part) > LONG:
            index = long.get(part)
            if index is None:
                return MISSING
            part = f"#{index}"
        parts.append(part)
    return table.get(kind, {}).get("|".join(parts), MISSING)


def remember(model: str, kind: str, key: tuple[str, ...], value: Any) -> None:
    """Record a computed value (only while the generator records)."""
    if _record is not None:
        _record.setdefault(model, {}).setdefault(kind, {})[key] = value


def recording(on: bool) -> dict[str, dict[str, dict[tuple[str, ...], Any]]]:
    """Start (``on``) or stop recording computed values; returns what was recorded so far."""
    global _record
    got = _record or {}
    _record = {} if on else None
    return got
