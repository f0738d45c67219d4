"""The planner's quality cuts: the class of a quantization from its name, and which ranks count as
near-lossless (data/quants.yaml); a publisher's dynamic mix (``UD-Q4_K_XL``) is judged by the type it
builds on."""

from __future__ import annotations

from qwenfit.core.formats.names import dynamic_base

__all__ = ["NEAR_LOSSLESS_RANK", "QUALITY_CLASSES", "quality_class"]

QUALITY_CLASSES = ("good", "usable", "poor")
# quality ranks 1-3 of data/quants.yaml: BF16/F16/F32, Q8_0 (KLD 0.0014), Q6_K (KLD 0.0055), fp8, MLX 8/6-bit
NEAR_LOSSLESS_RANK = 3


def quality_class(quant: str) -> int:
    """0 good (≥ 4 bits per weight), 1 usable (3-bit), 2 poor (≤ 2-bit): the planner's first
    quality cut, from the type's name (llama.cpp Qn/IQn types, GPU formats, MLX bits)."""
    q = (dynamic_base(quant) or quant).lower()
    if q.startswith(("iq1", "iq2", "q2", "tq1", "tq2", "q1_", "mlx-2bit")):
        return 2
    if q.startswith(("iq3", "q3", "mlx-3bit")):
        return 1
    return 0
