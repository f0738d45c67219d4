"""Error arithmetic shared by the report sections: signed % error, exact matches, median and max."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def err_pct(predicted: float, measured: float) -> float:
    """Signed error of ``predicted`` relative to ``measured``, in %, rounded to 8 decimals."""
    if measured == 0:
        return 0.0 if predicted == 0 else float("inf")
    return round((predicted - measured) / measured * 100, 8)


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    if not n:
        return 0.0
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def summary(pairs: Iterable[tuple[float, float]]) -> dict[str, Any]:
    """n, exact matches, median and max |error| % and the largest |error| in the measured unit."""
    pairs = list(pairs)
    errs = [abs(err_pct(p, m)) for p, m in pairs]
    return {
        "n": len(pairs),
        "exact": sum(p == m for p, m in pairs),
        "median_abs_err_pct": round(median(errs), 8),
        "max_abs_err_pct": round(max(errs, default=0.0), 8),
        "max_abs_err": max((abs(p - m) for p, m in pairs), default=0),
    }


def row(label: dict[str, Any], predicted: int | float, measured: int | float, **extra: Any) -> dict[str, Any]:
    return {
        **label,
        "predicted": predicted,
        "measured": measured,
        "err": predicted - measured,
        "err_pct": err_pct(predicted, measured),
        "exact": predicted == measured,
        **extra,
    }
