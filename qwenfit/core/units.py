"""Units and integer helpers, the one copy: binary sizes and ceiling division.

``cdiv`` and ``pad`` work on ints and on :mod:`qwenfit.core.expr` formulas alike (they only use
``-`` and ``//``), so the engine functions that call them stay traceable for the calculator.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GB", "GIB", "MIB", "cdiv", "pad"]

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
GB = 10**9  # user-facing sizes are decimal gigabytes (``vram_gb=24`` is 24e9 bytes)


def cdiv(a: Any, b: Any) -> Any:
    """Ceiling division of non-negative ``a`` by positive ``b`` (ints or formulas)."""
    return -(-a // b)


def pad(a: Any, b: Any) -> Any:
    """``a`` rounded up to a multiple of ``b`` (ggml's GGML_PAD)."""
    return -(-a // b) * b
