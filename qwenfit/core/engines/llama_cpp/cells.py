"""llama.cpp's context cells: ``n_ctx`` is padded to 256 (llama-context.cpp ``cparams.n_ctx =
GGML_PAD(n_ctx, 256)``); without a unified KV cache each of ``n_seq`` streams gets
``pad(n_ctx / n_seq, 256)`` cells. Works on ints and on formulas (:mod:`qwenfit.core.expr`)."""

from __future__ import annotations

from qwenfit.core.expr import Num
from qwenfit.core.units import pad

__all__ = ["CTX_PAD", "context_cells"]

CTX_PAD = 256  # llama-context.cpp: GGML_PAD(n_ctx, 256)


def context_cells(n_ctx: Num, n_seq: Num, *, kv_unified: bool) -> tuple[Num, Num]:
    """(total cells, cells per stream) after llama_context's padding (ints or formulas)."""
    n = pad(n_ctx, CTX_PAD)
    if kv_unified:
        return n, n
    per_stream = pad(n // n_seq, CTX_PAD)
    return per_stream * n_seq, per_stream
