"""The one monotone search: the largest (or smallest) setting for which a test holds.

Memory never decreases as context, sequences or weights on the GPU grow (a Hypothesis property in
tests/properties), so "does it fit?" is monotone and a binary search finds the boundary with
O(log n) evaluations. Every solver in qwenfit (max context, max sequences, the planner's offload
search, the nearest settings that fit, the calculator's max context) calls these two functions.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["largest", "smallest"]


def largest(fits: Callable[[int], bool], lo: int, hi: int, step: int = 1) -> int:
    """The largest multiple of ``step`` in [lo, hi] with ``fits`` true (true, then false), else 0.
    ``lo`` itself is tried first even when it is not a multiple of ``step``."""
    if hi < lo or not fits(lo):
        return 0
    a, b, best = lo // step, hi // step, lo
    while a <= b:
        mid = (a + b) // 2
        if mid * step >= lo and fits(mid * step):
            best, a = mid * step, mid + 1
        else:
            b = mid - 1
    return best


def smallest(fits: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """The smallest n in [lo, hi] with ``fits`` true (false, then true), else None."""
    if hi < lo or not fits(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
