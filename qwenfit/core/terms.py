"""Memory as named terms: each a byte count on a device, exact or labelled estimated, with a source.

An :class:`Estimate` is the list of terms of one deployment (model, quantization, engine, context,
sequences) plus, when a budget is known, whether it fits and by how much it misses. Term names:
``weights``, ``kv_cache``, ``recurrent_state``, ``compute_buffer``, ``output_buffer``,
``runtime_reserve``, ``vision``, ``ctx_checkpoints`` (and engine-specific ones an engine adds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qwenfit.core.expr import Num
from qwenfit.errors import DoesNotFit

__all__ = ["Estimate", "Term", "shortfall", "used_by_budget"]


def used_by_budget(by_device: Mapping[str, int], budget: Mapping[str, int]) -> dict[str, int]:
    """Bytes used against each budget entry: a device's own terms; the entry ``"total"`` (unified
    memory: GPU and CPU terms share the RAM) counts every term."""
    total = sum(by_device.values())
    return {d: (total if d == "total" else by_device.get(d, 0)) for d in budget}


def shortfall(by_device: Mapping[str, int], budget: Mapping[str, int]) -> int:
    """The fits judgement, the one copy: bytes missing on the worst budgeted device (0: it fits).
    Devices without a budget are not judged. ``estimate()``, the planner's compiled formulas and
    the calculator's Python evaluator all call it (the page's JS mirrors it)."""
    worst = 0
    for d, cap in budget.items():
        missing = (sum(by_device.values()) if d == "total" else by_device.get(d, 0)) - cap
        if missing > worst:
            worst = missing
    return worst


@dataclass(frozen=True, slots=True)
class Term:
    """One named piece of memory on one device."""

    name: str
    device: str
    bytes: Num  # an int; a formula only while the calculator export traces the engine functions
    exact: bool
    source: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Estimate:
    """The memory of one deployment, term by term. ``budget`` maps devices to usable bytes."""

    model: str
    quant: str
    engine: str
    settings: Mapping[str, Any]
    terms: tuple[Term, ...]
    budget: Mapping[str, int] | None = None
    notes: tuple[str, ...] = field(default=())
    decode_tokens_per_s: float | None = None  # estimated, when the hardware's bandwidth is known
    prefill_tokens_per_s: float | None = None
    speed_detail: str = ""

    def _bytes(self, t: Term) -> int:
        if not isinstance(t.bytes, int):
            raise TypeError(f"term {t.name!r} holds a formula, not bytes: evaluate it first")
        return t.bytes

    @property
    def total_bytes(self) -> int:
        return sum(self._bytes(t) for t in self.terms)

    @property
    def by_device(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.terms:
            out[t.device] = out.get(t.device, 0) + self._bytes(t)
        return out

    def term(self, name: str, device: str | None = None) -> int:
        """Bytes of all terms called ``name`` (on ``device`` if given)."""
        picked = (t for t in self.terms if t.name == name and (device is None or t.device == device))
        return sum(self._bytes(t) for t in picked)

    @property
    def exact(self) -> bool:
        return all(t.exact for t in self.terms)

    @property
    def fits(self) -> bool | None:
        """None when no budget is known."""
        if self.budget is None:
            return None
        return self.shortfall_bytes == 0

    @property
    def shortfall_bytes(self) -> int:
        """Bytes missing on the worst budgeted device (0 when it fits or no budget is known);
        devices without a budget are not judged (:func:`shortfall`)."""
        return 0 if self.budget is None else shortfall(self.by_device, self.budget)

    @property
    def used_by_budget(self) -> dict[str, int]:
        """Bytes used against each budget entry (:func:`used_by_budget`)."""
        return used_by_budget(self.by_device, self.budget or {})

    def raise_if_not_fits(self) -> Estimate:
        if self.fits is False:
            budget, used = self.budget or {}, self.used_by_budget
            worst = max(budget, key=lambda d: used[d] - budget[d])
            raise DoesNotFit(
                f"{self.model} {self.quant} on {self.engine} needs {used[worst] / 1e9:.2f} GB "
                f"on {worst} but {budget[worst] / 1e9:.2f} GB are available: "
                f"short by {self.shortfall_bytes / 1e9:.2f} GB",
                shortfall_bytes=self.shortfall_bytes,
                estimate=self,
            )
        return self
