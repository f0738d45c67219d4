"""Quality of a quantization: its rank and the published measurement behind it.

One :class:`QuantQuality` per quantization qwenfit can plan (every llama.cpp file type, every GPU
and MLX format). The records live in ``data/quants.yaml`` and are validated into this class by
:mod:`qwenfit.loaders.quants`; the header of that file documents how the ranks are derived.

``quality_rank`` is one scale across all families: 1 is best (lossless against the BF16
checkpoint), equal ranks mean no published measurement separates the two. ``kld`` is the published
mean KL-divergence against BF16/F16 logits and ``ppl_delta_pct`` the published perplexity increase
in percent, both measured on ``measured_on``; numbers measured on different models are not
directly comparable, so ranks, not raw numbers, are what callers should compare.

This module is pure stdlib: the planner may import it without pulling in YAML or pydantic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["FAMILIES", "NO_KLD", "QuantFamily", "QuantQuality"]

QuantFamily = Literal["gguf", "gpu", "mlx"]
FAMILIES: tuple[QuantFamily, ...] = ("gguf", "gpu", "mlx")

# sorts a record without a published KLD after every record of the same rank that has one
NO_KLD = math.inf


@dataclass(frozen=True, slots=True)
class QuantQuality:
    """How good one quantization is, and why qwenfit thinks so.

    ``basis`` says what backs the rank: ``"published ..."`` when a measurement does (then
    ``measured_on`` names the model it was measured on), ``"ordered by bits per weight ..."`` or
    ``"same as <other quant> ..."`` when none was found. ``source`` is the URL and the quoted
    figure; ``notes`` carries caveats and measurements on other models.
    """

    name: str
    family: QuantFamily
    quality_rank: int
    kld: float | None
    ppl_delta_pct: float | None
    measured_on: str | None
    basis: str
    source: str
    notes: str = ""

    @property
    def published(self) -> bool:
        """True when a published measurement (not only the bits per weight) backs the rank."""
        return self.basis.startswith("published")

    @property
    def sort_key(self) -> tuple[int, float]:
        """Best first: the rank, then the published KLD (records without one last)."""
        return (self.quality_rank, NO_KLD if self.kld is None else self.kld)
