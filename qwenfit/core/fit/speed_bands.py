"""The ranges speed figures carry: the band (p10-p90 of measured / predicted, leave-one-source-out)
each measurement category earned (:mod:`qwenfit.core.fit.speed_fitted`), and :class:`Rate`, a
tokens/s float that carries its band, category and basis ("estimated" / "calibrated")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qwenfit.core.fit import speed_fitted

if TYPE_CHECKING:
    from qwenfit.core.engines.base import Placement
    from qwenfit.core.fit.speed import Shape
    from qwenfit.core.hardware import Device, Machine

__all__ = [
    "Rate",
    "band_of",
    "category_of",
    "format_cell",
    "format_rate",
    "hw_class",
    "rate_of",
    "speed_band",
]


class Rate(float):
    """A tokens/s estimate that carries its out-of-sample band and what it rests on."""

    __slots__ = ("category", "high", "label", "low")
    low: float
    high: float
    category: str
    label: str  # "estimated" | "calibrated"

    def __new__(cls, value: float, low: float, high: float, category: str, label: str) -> Rate:
        r = super().__new__(cls, value)
        r.low, r.high, r.category, r.label = low, high, category, label
        return r

    def times(self, f: float) -> Rate:
        """This rate x ``f`` (e.g. all sequences together), band scaled alike."""
        return Rate(float(self) * f, self.low * f, self.high * f, self.category, self.label)

    def __reduce__(self) -> tuple[object, ...]:
        return (Rate, (float(self), self.low, self.high, self.category, self.label))


def format_cell(x: float | None, missing: str = "-") -> str:
    """A table cell: ``117 (93-128)`` (the range when the figure carries one)."""
    if x is None:
        return missing
    return f"{x:.0f} ({x.low:.0f}-{x.high:.0f})" if isinstance(x, Rate) else f"{x:.0f}"


def format_rate(x: float | None, unit: str = "tok/s") -> str:
    """``~51 tok/s (43-58)``: the estimate and the band it earned out of sample."""
    if x is None:
        return "unknown"
    text = f"~{x:.0f} {unit}"
    if isinstance(x, Rate):
        text += f" ({x.low:.0f}-{x.high:.0f})"
    return text


def speed_band(decode: float | None, prefill: float | None) -> dict[str, object] | None:
    """The JSON ``speed_band`` of a decode / prefill pair (None: no band-carrying figure)."""
    if not isinstance(decode, Rate):
        return None
    p = prefill if isinstance(prefill, Rate) else None
    return {
        "category": decode.category, "basis": decode.label, "decode_low": round(decode.low, 2),
        "decode_high": round(decode.high, 2), "prefill_low": round(p.low, 1) if p else None,
        "prefill_high": round(p.high, 1) if p else None,
    }  # fmt: skip


def hw_class(device: Device | None) -> str:
    """The memory class the fitted η_hw is keyed by: gpu | strix | spark | apple."""
    if device is None:
        return "cpu"
    if device.vendor == "apple":
        return "apple"
    if device.unified:
        return "spark" if device.vendor == "nvidia" else "strix"
    return "gpu"


# --------------------------------------------------------------------------------------------------
# bands


def category_of(machine: Machine, p: Placement, sequences: int, n_offloaded: int, shape: Shape) -> str:
    """The measurement category whose out-of-sample band a figure carries (the report's)."""
    device = machine.devices[0] if machine.devices and p.kind != "cpu" else None
    if sequences > 1:
        return "batched (concurrency > 1)"
    if p.n_gpus > 1 and device is not None:
        return "multi-GPU TP/PP"
    if device is None:
        return "CPU only"
    if n_offloaded > 0:  # layers with tensors in host RAM
        return "CPU-expert offload"
    if hw_class(device) == "apple":
        return "Apple/MLX"
    if device.unified:
        return "unified-memory APU"
    return "GPU MoE" if shape.moe else "GPU dense"


def band_of(kind: str, category: str) -> tuple[float, float]:
    """(p10, p90) of measured / predicted that ``category`` earned out of sample (``overall`` when
    the category has too few rows)."""
    bands = speed_fitted.BANDS[kind]
    b = bands.get(category, bands["overall"])
    return b[0], b[2]


def rate_of(value: float | None, kind: str, category: str, calibrated: bool) -> Rate | None:
    if value is None:
        return None
    lo, hi = band_of(kind, category)
    return Rate(value, value * lo, value * hi, category, "calibrated" if calibrated else "estimated")
