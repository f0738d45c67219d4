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
- Compute buffer: the largest of the live-tensor peaks of the reserved worst-case graph (lm head,
  Gated DeltaNet, attention, FFN) — measured on the CPU backend; other backends labelled estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

from qwenfit.core.cache import LLAMA_KV_TYPES, llama_kv_bytes_per_cell, llama_recurrent_bytes_per_cell
from qwenfit.core.spec import ModelSpec

__all__ = ["LlamaContext", "compute_buffer_bytes", "context_cells", "llama_context"]

CTX_PAD = 256  # llama-context.cpp: GGML_PAD(n_ctx, 256)


def _pad(x: int, n: int) -> int:
    return -(-x // n) * n


def _a32(x: int) -> int:
    """ggml CPU buffer alignment applied by the graph allocator to every tensor."""
    return _pad(x, 32)


def context_cells(n_ctx: int, n_seq: int, *, kv_unified: bool) -> tuple[int, int]:
    """(total cells, cells per stream) after llama_context's padding."""
    n = _pad(n_ctx, CTX_PAD)
    if kv_unified:
        return n, n
    per_stream = _pad(n // n_seq, CTX_PAD)
    return per_stream * n_seq, per_stream


@dataclass(frozen=True, slots=True)
class LlamaContext:
    """Byte counts of one llama.cpp context (all on the device that holds the layers)."""

    n_ctx: int  # cells after padding (all streams)
    n_ctx_seq: int
    kv_bytes: int
    recurrent_bytes: int
    output_bytes: int
    compute_bytes: int


def compute_buffer_bytes(
    spec: ModelSpec,
    *,
    n_ctx: int,
    n_ctx_seq: int,
    n_seq: int,
    kv_unified: bool,
    n_ubatch: int,
    n_outputs_max: int,
    flash_attn: bool,
    type_k: str,
    type_v: str,
) -> int:
    """Peak of the worst-case prompt-processing graph llama_context::sched_reserve reserves
    (n_tokens = min(n_ctx, n_ubatch) rounded to n_seq; n_outputs = min(that, n_outputs_max)).

    The peak is the largest of four phases of the graph (llama-graph.cpp, models/qwen35*.cpp): the
    lm head (logits n_vocab × n_outputs F32), a Gated DeltaNet layer (conv windows, chunked scan),
    an attention layer (Q/K/V, and without flash attention the KQ matrix n_kv × n_tokens × n_head)
    and the FFN (routed experts' gate/up/down for n_tokens × top-k). Fitted terms are exact
    tensor sizes; which tensors are live together is read from the graph.
    """
    t = spec.text
    n = min(n_ctx, n_ubatch)
    tokens, n_out = _pad(n, n_seq), min(n, n_outputs_max)
    h, hd, nh = t.hidden_size, t.head_dim, t.num_attention_heads
    nkv_dim = t.num_key_value_heads * hd
    n_kv = n_ctx if kv_unified else n_ctx_seq
    ht = 4 * h * tokens
    mask = n_kv * tokens * (2 if flash_attn else 4)
    rot = 0  # Hadamard rotation matrices for quantized K/V (llama-graph.cpp build_attn rotations)
    if type_k not in ("f32", "f16", "bf16") and hd % 64 == 0:
        nrot = 64
        while hd % (nrot * 2) == 0:
            nrot *= 2
        rot += _a32(nrot * nrot * 4)
    if type_v not in ("f32", "f16", "bf16") and hd % 64 == 0:
        rot += _a32(64 * 64 * 4)
    v_idx = 8 * tokens * (1 if flash_attn else nkv_dim)
    inputs = (_a32(4 * tokens) + _a32(ht) + _a32(4 * n_seq) + rot + _a32(16 * tokens) + _a32(8 * tokens)
              + _a32(v_idx) + _a32(mask) + _a32(4 * n_out))  # fmt: skip
    conv_dim = t.linear_conv_dim
    d_conv = t.linear_conv_kernel_dim
    n_embd_r = (d_conv - 1) * conv_dim
    head = _a32(4 * tokens) + _a32(ht) + _a32(4 * h * n_out) + _a32(ht) + t.vocab_size * n_out * 4
    gdn = inputs + 2 * ht + _a32(4 * n_seq * n_embd_r) + 4 * conv_dim * (3 * tokens + (d_conv - 1) * n_seq)
    attn = inputs + 2 * ht + 4 * 3 * nh * hd * tokens + (0 if flash_attn else 4 * n_kv * tokens * nh)
    if t.is_moe:
        ffn = inputs + 3 * ht + 4 * (3 * t.moe_intermediate_size + h) * t.num_experts_per_tok * tokens
    else:
        ffn = inputs + 2 * ht + 4 * 3 * t.intermediate_size * tokens
    return max(head, gdn, attn, ffn)


def llama_context(
    spec: ModelSpec,
    *,
    n_ctx: int,
    n_seq: int = 1,
    kv_unified: bool = False,
    type_k: str = "f16",
    type_v: str = "f16",
    n_ubatch: int = 512,
    flash_attn: bool = True,
    mtp: bool = False,
    draft_tokens: int = 3,
    n_outputs_max: int | None = None,
) -> LlamaContext:
    """The memory llama.cpp allocates for one context with these settings.

    ``mtp``: speculative decoding with the MTP layer (its KV cache in a draft context of the same
    size, and ``draft_tokens`` extra recurrent rows per sequence for partial rollback —
    ``--spec-draft-n-max``, default 3; Qwen3-Next has no partial rollback).
    ``n_outputs_max``: the most logits one batch may ask for; llama-server sets it to the number of
    slots (PR #23861), the library default is ``n_batch`` (pass that for llama-cli / fit-params).
    """
    for kind in (type_k, type_v):
        if kind not in LLAMA_KV_TYPES:
            raise ValueError(f"KV cache type {kind!r}; valid: {', '.join(LLAMA_KV_TYPES)}")
    if n_ctx <= 0 or n_seq <= 0 or n_ubatch <= 0:
        raise ValueError("context, sequences and ubatch must be positive")
    cells, per_stream = context_cells(n_ctx, n_seq, kv_unified=kv_unified)
    kv = cells * llama_kv_bytes_per_cell(spec, type_k, type_v)
    rows = max(1, n_seq)
    if mtp and spec.mtp_layers:
        kv += cells * _mtp_kv_per_cell(spec, type_k, type_v)
        if spec.family != "qwen3_next":
            rows *= 1 + draft_tokens
    recurrent = rows * llama_recurrent_bytes_per_cell(spec)
    output = spec.text.vocab_size * n_seq * 4
    compute = compute_buffer_bytes(
        spec, n_ctx=cells, n_ctx_seq=per_stream, n_seq=n_seq, kv_unified=kv_unified, n_ubatch=n_ubatch,
        n_outputs_max=n_outputs_max or n_seq, flash_attn=flash_attn, type_k=type_k, type_v=type_v,
    )  # fmt: skip
    return LlamaContext(cells, per_stream, kv, recurrent, output, compute)


def _mtp_kv_per_cell(spec: ModelSpec, type_k: str, type_v: str) -> int:
    """KV of the MTP (nextn) layers per cell: one full-attention layer each."""
    t = spec.text
    per_layer = llama_kv_bytes_per_cell(spec, type_k, type_v) // t.n_full_attention
    return spec.mtp_layers * per_layer
