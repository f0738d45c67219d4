"""llama.cpp's runtime memory for Qwen3.5 / Qwen3-Next: context padding, KV cache, recurrent state,
output buffer and compute buffer, as llama.cpp 0c1e570 allocates them.

Derived from the source (line numbers of that tree) and measured with llama.cpp itself on tiny and
full-size GGUFs over a grid of contexts, KV types, sequences and ubatch sizes
(scripts/llama_memory_fixtures.py → tests/fixtures/llama_memory; tests/engines/test_llama_memory.py):

- ``n_ctx`` is padded to 256 (llama-context.cpp cparams.n_ctx = GGML_PAD(n_ctx, 256)); without a
  unified KV cache each of ``n_seq`` streams gets ``pad(n_ctx / n_seq, 256)`` cells.
- KV: one K and one V tensor per full-attention layer, ``[n_head_kv·head_dim, cells, streams]``, in
  the -ctk/-ctv types (ggml_row_size per cell) — exact.
- Recurrent state: ``max(1, n_seq)`` rows per GDN layer (× (1 + draft tokens) with MTP speculation
  on archs with partial rollback), R = (d_conv−1)·conv_dim and S = d_state·d_inner floats, F32 — exact.
- Output buffer: logits for ``n_seq`` outputs at context creation, host memory — exact.
- Compute buffer: ggml's graph allocator over the reserved worst-case graph, rebuilt node for node
  (:mod:`qwenfit.core.engines.llama_cpp.graph`) or its derived closed form
  (:mod:`qwenfit.core.engines.llama_cpp.compute`)
  — exact on the CPU backend; other backends reserve the same graph (labelled estimated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qwenfit.core.engines.llama_cpp.cells import context_cells
from qwenfit.core.expr import Expr, Num, as_int, smax
from qwenfit.core.formats.dtypes import GGML_TYPES
from qwenfit.core.model.spec import ModelSpec

__all__ = [
    "LLAMA_KV_TYPES",
    "LlamaContext",
    "compute_buffer_bytes",
    "context_cells",
    "llama_context",
    "llama_kv_bytes_per_cell",
    "llama_recurrent_bytes_per_cell",
]


# -ctk / -ctv values llama.cpp accepts (common/arg.cpp kv_cache_types) -> ggml type
LLAMA_KV_TYPES: dict[str, str] = {
    "f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q4_0": "Q4_0", "q4_1": "Q4_1",
    "iq4_nl": "IQ4_NL", "q5_0": "Q5_0", "q5_1": "Q5_1",
}  # fmt: skip


def llama_kv_bytes_per_cell(spec: ModelSpec, type_k: str, type_v: str, *, layers: int | None = None) -> int:
    """Bytes of K and V for one cell (token slot) across ``layers`` full-attention layers (default:
    the decoder's; the MTP draft context passes its own MTP layer count)."""
    t = spec.text
    width = t.num_key_value_heads * t.head_dim
    k, v = GGML_TYPES[LLAMA_KV_TYPES[type_k]], GGML_TYPES[LLAMA_KV_TYPES[type_v]]
    n = t.n_full_attention if layers is None else layers
    return n * (k.row_bytes(width) + v.row_bytes(width))


def llama_recurrent_bytes_per_cell(spec: ModelSpec) -> int:
    """Bytes of one recurrent-state cell (one sequence) across all Gated DeltaNet layers, F32."""
    t = spec.text
    r = (t.linear_conv_kernel_dim - 1) * t.linear_conv_dim
    s = t.linear_key_head_dim * t.linear_value_dim
    return t.n_linear_attention * 4 * (r + s)


@dataclass(frozen=True, slots=True)
class LlamaContext:
    """Byte counts of one llama.cpp context (all on the device that holds the layers)."""

    n_ctx: Num  # cells after padding (all streams)
    n_ctx_seq: Num
    kv_bytes: Num
    recurrent_bytes: Num
    output_bytes: Num
    compute_bytes: Num
    draft_compute_bytes: Num = 0
    kv_bytes_per_cell: int = 0  # all full-attention layers (+ the MTP draft layer when on)
    recurrent_rows: Num = 1  # the MTP draft context's graph, when speculative MTP is on


def compute_buffer_bytes(
    spec: ModelSpec,
    *,
    n_ctx: Num,
    n_ctx_seq: Num,
    n_seq: Num,
    kv_unified: bool,
    n_ubatch: int,
    n_outputs_max: Num,
    flash_attn: bool,
    type_k: str,
    type_v: str,
    n_rs_seq: int = 0,
    mtp_draft: bool = False,
) -> Num:
    """The CPU compute buffer ``llama_context::sched_reserve`` sizes for the worst-case prompt graph
    (n_tokens = min(n_ctx, n_ubatch) rounded up to n_seq; n_outputs = min(that, n_outputs_max)).

    Exact: with llama-server's output limits (``n_outputs_max`` = ``n_seq``), non-unified KV and a
    catalog model, the closed form derived from ggml's allocator
    (:mod:`qwenfit.core.engines.llama_cpp.compute`, ``compute_trees.py``) — a formula when the context
    or sequences are traced; otherwise, for integers, the graph rebuilt and replayed through the allocator
    (:func:`qwenfit.core.engines.llama_cpp.graph.text_compute_bytes`: 0 B error on the 686 reservations of
    tests/fixtures/llama_memory). ``mtp_draft``: the MTP draft context's graph.
    Raises TypeError for traced settings with no closed form (the planner then evaluates integers).
    """
    from qwenfit.core.engines.llama_cpp.compute import (
        Structure,
        compute_tree,
        eval_tree,
        kv_class,
        tree_expr,
        variables,
    )

    if spec.family == "qwen3_next" or mtp_draft:
        n_rs_seq = 0
    traced = any(isinstance(x, Expr) for x in (n_ctx, n_ctx_seq, n_seq, n_outputs_max))
    seqs_outputs = n_outputs_max is n_seq or (not traced and n_outputs_max == n_seq)
    st = Structure(flash_attn, kv_class(type_k), kv_class(type_v), n_ubatch, "seqs", n_rs_seq, mtp_draft)
    tree = compute_tree(spec, st) if seqs_outputs and not kv_unified else None
    if tree is not None and (traced or as_int(n_ctx_seq) <= TREE_MAX_CELLS):
        env = variables(n_ctx, n_ctx_seq, n_seq, st)
        if traced:
            return tree_expr(tree, env)
        return eval_tree(tree, {k: as_int(v) for k, v in env.items()})
    if traced:
        raise TypeError("llama.cpp's compute buffer has no closed form for these settings (integers only)")
    from qwenfit.core.engines.llama_cpp.graph import text_compute_bytes

    return text_compute_bytes(
        spec, n_ctx=as_int(n_ctx), n_ctx_seq=as_int(n_ctx_seq), n_seq=as_int(n_seq), kv_unified=kv_unified,
        n_ubatch=n_ubatch, n_outputs_max=as_int(n_outputs_max), flash_attn=flash_attn, type_k=type_k,
        type_v=type_v, n_rs_seq=n_rs_seq, mtp_draft=mtp_draft,
    )  # fmt: skip


TREE_MAX_CELLS = 262144  # the trees are derived up to 256 sequences of 262,144 cells each


def llama_context(
    spec: ModelSpec,
    *,
    n_ctx: Num,
    n_seq: Num = 1,
    kv_unified: bool = False,
    type_k: str = "f16",
    type_v: str = "f16",
    n_ubatch: int = 512,
    flash_attn: bool = True,
    mtp: bool = False,
    draft_tokens: int = 3,
    draft_type: str = "f16",
    n_outputs_max: Num | None = None,
    with_compute: bool = True,
) -> LlamaContext:
    """The memory llama.cpp allocates for one context with these settings.

    ``mtp``: speculative decoding with the MTP layer (its KV cache in a draft context of the same
    size, in ``draft_type`` (``-ctkd``/``-ctvd``, f16 by default), and ``draft_tokens`` extra recurrent
    rows per sequence for partial rollback — ``--spec-draft-n-max``, default 3; Qwen3-Next has no
    partial rollback).
    ``n_outputs_max``: the most logits one batch may ask for; llama-server sets it to the number of
    slots (PR #23861), the library default is ``n_batch`` (pass that for llama-cli / fit-params).
    ``with_compute`` False: leave the compute buffers at 0 (the caller replays the GPU scheduler).
    """
    for kind in (type_k, type_v, draft_type):
        if kind not in LLAMA_KV_TYPES:
            raise ValueError(f"KV cache type {kind!r}; valid: {', '.join(LLAMA_KV_TYPES)}")
    for value in (n_ctx, n_seq, n_ubatch):
        if not isinstance(value, Expr) and value <= 0:
            raise ValueError("context, sequences and ubatch must be positive")
    cells, per_stream = context_cells(n_ctx, n_seq, kv_unified=kv_unified)
    per_cell = llama_kv_bytes_per_cell(spec, type_k, type_v)
    rows = smax(n_seq, 1)
    n_rs_seq = 0
    if mtp and spec.mtp_layers:
        # the draft context caches its MTP layer(s) in -ctkd/-ctvd, f16 by default
        per_cell += llama_kv_bytes_per_cell(spec, draft_type, draft_type, layers=spec.mtp_layers)
        if spec.family != "qwen3_next":  # partial rollback keeps one state row per drafted token
            n_rs_seq = draft_tokens
            rows *= 1 + draft_tokens
    kv = cells * per_cell
    recurrent = rows * llama_recurrent_bytes_per_cell(spec)
    output = spec.text.vocab_size * n_seq * 4
    kw: dict[str, Any] = {
        "n_ctx": cells, "n_ctx_seq": per_stream, "n_seq": n_seq, "kv_unified": kv_unified,
        "n_ubatch": n_ubatch, "n_outputs_max": n_seq if n_outputs_max is None else n_outputs_max,
        "flash_attn": flash_attn,
        "type_k": type_k, "type_v": type_v, "n_rs_seq": n_rs_seq,
    }  # fmt: skip
    compute = compute_buffer_bytes(spec, **kw) if with_compute else 0
    draft: Num = 0
    if mtp and spec.mtp_layers and with_compute:  # the MTP draft context has its own graph (n_outputs_max 1)
        draft = compute_buffer_bytes(spec, **{**kw, "n_outputs_max": n_seq, "type_k": draft_type,
                                              "type_v": draft_type, "mtp_draft": True})  # fmt: skip
    return LlamaContext(cells, per_stream, kv, recurrent, output, compute, draft, per_cell, rows)
