"""An option of a plan (one model, quantization and engine with its best placement, or why there is
none) and a plan (options ranked, the rejected with their reasons)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from qwenfit.core.engines.base import Artifact, Placement
from qwenfit.core.fit.ranking import sort_key
from qwenfit.core.fit.speed_bands import format_rate
from qwenfit.core.hardware import Machine
from qwenfit.core.terms import Estimate
from qwenfit.errors import DoesNotFit

__all__ = ["Option", "Plan", "at_least"]


@dataclass(frozen=True, slots=True)
class Option:
    """One (model, quant, engine) with its best placement — or why it does not fit."""

    model: str
    quant: str
    engine: str
    placement: Placement | None
    fits: bool
    context: int = 0  # tokens per sequence the option is planned (and commanded) at
    max_context: int = 0  # the longest context that fits this placement (one sequence)
    sequences: int = 1
    max_sequences: int = 0  # how many sequences of ``context`` tokens fit at once
    estimate: Estimate | None = None
    decode_tokens_per_s: float | None = None
    prefill_tokens_per_s: float | None = None
    speed_detail: str = ""
    command: str = ""
    reason: str = ""  # why it was rejected, or what was given up to fit
    quality_rank: int = 0
    quality_class: int = 0
    model_params: int = 0
    notes: tuple[str, ...] = ()
    artifact: Artifact | None = None  # what the command loads (published, the user's, or made)

    @property
    def memory_by_device(self) -> dict[str, int]:
        return self.estimate.by_device if self.estimate else {}

    @property
    def headroom_bytes(self) -> int:
        """Smallest free memory over the budgeted devices (negative when it does not fit)."""
        if self.estimate is None or not self.estimate.budget:
            return 0
        used = self.estimate.used_by_budget
        return min(cap - used[d] for d, cap in self.estimate.budget.items())

    def sort_key(self, prefer: str = "quality") -> tuple[Any, ...]:
        """Smaller is better (:func:`.ranking.sort_key`; the module docstring)."""
        return sort_key(self, prefer)

    def raise_if_not_fits(self) -> Option:
        if not self.fits:
            raise DoesNotFit(
                f"{self.model} {self.quant} on {self.engine}: {self.reason}",
                shortfall_bytes=self.estimate.shortfall_bytes if self.estimate else 0,
                estimate=self.estimate,
            )
        return self


@dataclass(frozen=True, slots=True)
class Plan:
    """Ranked options for a machine: ``best`` (fits), ``options`` (fit, best first), ``rejected``."""

    machine: Machine
    options: tuple[Option, ...]
    rejected: tuple[Option, ...]
    notes: tuple[str, ...] = field(default=())
    budget: dict[str, int] = field(default_factory=dict)

    @property
    def best(self) -> Option | None:
        return self.options[0] if self.options else None

    @property
    def fits(self) -> bool:
        return bool(self.options)

    def raise_if_not_fits(self) -> Plan:
        if not self.options:
            nearest = min(
                self.rejected,
                key=lambda o: o.estimate.shortfall_bytes if o.estimate else 1 << 62,
                default=None,
            )
            short = nearest.estimate.shortfall_bytes if nearest and nearest.estimate else 0
            where = (
                f"; nearest: {nearest.model} {nearest.quant} on {nearest.engine}: {nearest.reason}"
                if nearest
                else ""
            )
            raise DoesNotFit(
                f"nothing fits {self.machine.name}{where}",
                shortfall_bytes=short,
                estimate=nearest.estimate if nearest else None,
            )
        return self

    def __str__(self) -> str:
        from qwenfit.core.fit.text import format_plan

        return format_plan(self)


def at_least(o: Option, min_speed: float) -> Option:
    """``o``, rejected when its decode speed is below ``min_speed`` (or unknown)."""
    if not o.fits or (o.decode_tokens_per_s is not None and o.decode_tokens_per_s >= min_speed):
        return o
    speed = format_rate(o.decode_tokens_per_s)
    return dataclasses.replace(
        o, fits=False, reason=f"decode speed {speed} is below the {min_speed:g} tok/s asked"
    )
