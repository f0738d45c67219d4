"""Prefill GEMM time by tokens per weight matrix (issue 19's fitted speed model; the fit's
``benchmarks/speed/fit/model.py`` ``gemm_seconds``).

A weight matrix multiplied by ``m`` tokens at once runs at ``m / (m + gemm_m_half)`` of the large-batch
GEMM rate: each weight tile is loaded (and, for quantized types, unpacked) once per ``m`` output rows,
so small-``m`` GEMMs are bound by that load rather than by the tensor units. Dense matrices see the
whole ubatch; a routed expert sees the tokens routed to it (ubatch x k / the experts the ubatch
touches: 16 for 35B-A3B at ubatch 512), which is why MoE prefill runs well below dense.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from qwenfit.core.expr import Num
from qwenfit.core.fit import speed_fitted


class _Shape(Protocol):  # qwenfit.core.fit.speed.Shape
    @property
    def moe(self) -> bool: ...
    @property
    def read_params(self) -> int: ...
    @property
    def expert_ppm(self) -> int: ...
    @property
    def matmul_params(self) -> int: ...
    @property
    def u_milli(self) -> Sequence[int]: ...


def gemm_efficiency(m: float, m_half: float | None = None) -> float:
    """Share of the large-batch GEMM rate a weight matrix multiplied by ``m`` tokens at once reaches
    (``m_half``: the shipped ``gemm_m_half`` unless given; the fit passes the value it is trying)."""
    half = speed_fitted.CONSTANTS["gemm_m_half"] if m_half is None else m_half
    return m / (m + half)


def gemm_seconds(
    matmul: float, routed: float, n: float, per_expert: float, flops: float, m_half: float | None = None
) -> float:
    """Seconds of the weight GEMMs of ``n`` prompt tokens at ``flops`` (the large-batch rate):
    ``matmul`` parameters per token, ``routed`` of them in routed experts (at k/E), which see
    ``per_expert`` tokens each; the rest see all ``n``."""
    t = 2 * n * (matmul - routed) / (flops * gemm_efficiency(n, m_half))
    if routed:
        t += 2 * n * routed / (flops * gemm_efficiency(per_expert, m_half))
    return t


def prefill_gemm_seconds(shape: _Shape, n: int, flops: float) -> float:
    """:func:`gemm_seconds` of one ubatch of ``n`` tokens of a model's speed ``Shape``: routed experts
    see ``n / U(n)`` tokens each (U read from the shape's table, its last entry beyond it)."""
    routed = shape.expert_ppm * shape.read_params / 1e6 if shape.moe else 0.0
    u = shape.u_milli[min(n, len(shape.u_milli) - 1)] / 1000 if shape.moe else float(n)
    return gemm_seconds(shape.matmul_params, routed, n, n / max(u, 1e-9), flops)


def decode_gemm_fs(matmul: Num, routed: Num, tokens: Num, u_milli: Num, g_fs1k: Num, gh_milli: Num) -> Num:
    """Femtoseconds of a decode step's weight GEMMs on matrix kernels (integers, or a formula): ``tokens``
    per dense matrix, ``tokens / u`` per routed expert, at ``m / (m + h)`` of the GEMM rate ``g_fs1k`` (fs
    per 1000 FLOP): ``2 [D (T + h) + R (T + h u)]`` FLOP (h = ``gh_milli`` / 1000, u = ``u_milli`` / 1000)."""
    dense = (matmul - routed) * (1000 * tokens + gh_milli)
    return 2 * (dense + routed * (1000 * tokens + gh_milli * u_milli // 1000)) * g_fs1k // 10**6
