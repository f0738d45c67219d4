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
from typing import Any

from qwenfit.core.cache import LLAMA_KV_TYPES, llama_kv_bytes_per_cell, llama_recurrent_bytes_per_cell
from qwenfit.core.expr import Expr, Num, le, lt, smax, smin, where
from qwenfit.core.spec import ModelSpec

__all__ = [
    "LlamaContext",
    "compute_buffer_bytes",
    "compute_buffer_high",
    "compute_buffer_low",
    "compute_terms",
    "context_cells",
    "llama_context",
]

CTX_PAD = 256  # llama-context.cpp: GGML_PAD(n_ctx, 256)


def _pad(x: Num, n: Num) -> Num:
    return -(-x // n) * n


def _a32(x: Num) -> Num:
    """ggml CPU buffer alignment applied by the graph allocator to every tensor."""
    return _pad(x, 32)


def context_cells(n_ctx: Num, n_seq: Num, *, kv_unified: bool) -> tuple[Num, Num]:
    """(total cells, cells per stream) after llama_context's padding (ints or formulas)."""
    n = _pad(n_ctx, CTX_PAD)
    if kv_unified:
        return n, n
    per_stream = _pad(n // n_seq, CTX_PAD)
    return per_stream * n_seq, per_stream


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


def compute_terms(
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
) -> dict[str, Num]:
    """Candidate peaks of the worst-case prompt-processing graph llama_context::sched_reserve
    reserves (n_tokens = min(n_ctx, n_ubatch) rounded to n_seq; n_outputs = min(that,
    n_outputs_max)), each the graph allocator's high-water mark at one step: the graph inputs
    (allocated first and kept), residual-sized tensors, then the step's temporaries — lm head
    (logits n_vocab × n_outputs F32), Gated DeltaNet (conv windows, scan, state snapshots),
    attention (Q/gate, and without flash attention the KQ matrix n_kv × n_tokens × n_head) and FFN
    (routed experts' gate/up/down for n_tokens × top-k). ``mtp_draft``: the MTP draft context's graph
    (one attention layer and the FFN). Sources: llama-graph.cpp, models/qwen35*.cpp, qwen3next.cpp.
    """
    t = spec.text
    n = smin(n_ctx, n_ubatch)
    tokens, n_out = _pad(n, n_seq), smin(n, n_outputs_max)
    h, hd, nh = t.hidden_size, t.head_dim, t.num_attention_heads
    nkv_dim = t.num_key_value_heads * hd
    n_kv = n_ctx if kv_unified else n_ctx_seq
    ht = 4 * h * tokens
    mask = n_kv * tokens * (2 if flash_attn else 4)  # KQ mask: F16 with flash attention, else F32
    rot: Num = 0  # Hadamard rotations for quantized K/V (llama-kv-cache.cpp attn_inp_k_rot / v_rot)
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
    logits = t.vocab_size * n_out * 4
    attn = 4 * 3 * nh * hd * tokens + (0 if flash_attn else 4 * n_kv * tokens * nh)
    if t.is_moe:
        ffn = 4 * (3 * t.moe_intermediate_size + h) * t.num_experts_per_tok * tokens
    else:
        ffn = 4 * 3 * t.intermediate_size * tokens
    head = _a32(4 * tokens) + _a32(ht) + _a32(4 * h * n_out) + _a32(ht) + logits
    if mtp_draft:
        if spec.family == "qwen3_next":  # selects the output rows before its FFN
            ffn_step = inputs + ht + ffn * n_out // tokens
        elif t.is_moe:
            ffn_step = inputs + ffn + 2 * 4 * t.num_experts * tokens
        else:
            ffn_step = inputs + ht + ffn
        return {
            "head": head,
            "concat": inputs + 3 * ht,
            "attn": inputs + ht + attn + (4 * nh * hd * tokens if flash_attn else 0),
            "ffn": ffn_step,
        }
    if spec.family == "qwen3_next":
        n_rs_seq = 0
    d_inner, d_state, d_conv = t.linear_value_dim, t.linear_key_head_dim, t.linear_conv_kernel_dim
    conv_dim = t.linear_conv_dim
    qkv = 4 * conv_dim * tokens
    conv_in = 4 * conv_dim * (tokens + (d_conv - 1) * n_seq)
    s_rows = 4 * d_state * d_inner * n_seq
    qk = 2 * 4 * t.linear_num_key_heads * d_state * tokens
    gdn_out = 4 * (d_inner * tokens + (1 + n_rs_seq) * d_state * d_inner * n_seq)
    hole = qkv + conv_in - s_rows - qk
    return {
        "head": head,
        # the same with the last residual left above the KQ mask: the logits come after all inputs
        "head_pinned": inputs + 2 * ht + logits,
        "gdn": inputs
        + 2 * ht
        + _a32(4 * n_seq * (d_conv - 1) * conv_dim)
        + qkv
        + conv_in
        + qkv
        + where(lt(hole, gdn_out), gdn_out, 0),
        "attn": inputs + 2 * ht + attn,
        "ffn": inputs + (3 * ht if t.is_moe else 2 * ht) + ffn,
    }


PIN_RATIO = 0.02  # the pinned lm-head layout is assumed when the KQ mask is under 2% of the logits
PIN_DENOMINATOR = 50  # 1 / PIN_RATIO


def compute_buffer_bytes(spec: ModelSpec, **kw: Any) -> Num:
    """The compute buffer: the largest candidate peak. For the lm-head step llama.cpp's graph
    allocator either lets the logits reuse the KQ mask's space or not, by best-fit placement in the
    last layer; the pinned layout is taken when the mask is small (< PIN_RATIO of the logits).
    Over 455 measured runs of 7 models (tests/fixtures/llama_memory): median error 0 %, llama-server
    output limits within −4.2…+0.01 %, library limits (n_outputs_max = n_batch) up to 34 % under at
    262k context. :func:`compute_buffer_low` and :func:`compute_buffer_high` bracket every run."""
    terms = compute_terms(spec, **kw)
    pinned = terms.pop("head_pinned", None)
    if pinned is not None:  # (pinned - head) <= PIN_RATIO * head, in integers
        terms["head"] = where(
            le(PIN_DENOMINATOR * (pinned - terms["head"]), terms["head"]), pinned, terms["head"]
        )
    return smax(*terms.values())


def compute_buffer_low(spec: ModelSpec, **kw: Any) -> Num:
    """The lower layout (the logits reuse the KQ mask's space)."""
    terms = compute_terms(spec, **kw)
    terms.pop("head_pinned", None)
    return smax(*terms.values())


def compute_buffer_high(spec: ModelSpec, **kw: Any) -> Num:
    """The upper layout (the logits cannot reuse the mask's space): never below what llama.cpp reserves."""
    return smax(*compute_terms(spec, **kw).values())


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
    n_outputs_max: Num | None = None,
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
    for value in (n_ctx, n_seq, n_ubatch):
        if not isinstance(value, Expr) and value <= 0:
            raise ValueError("context, sequences and ubatch must be positive")
    cells, per_stream = context_cells(n_ctx, n_seq, kv_unified=kv_unified)
    per_cell = llama_kv_bytes_per_cell(spec, type_k, type_v)
    rows = smax(n_seq, 1)
    n_rs_seq = 0
    if mtp and spec.mtp_layers:
        # the draft context caches its MTP layer(s) in -ctkd/-ctvd, f16 by default
        per_cell += llama_kv_bytes_per_cell(spec, "f16", "f16", layers=spec.mtp_layers)
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
    compute = compute_buffer_bytes(spec, **kw)
    draft: Num = 0
    if mtp and spec.mtp_layers:  # the MTP draft context has its own graph (n_outputs_max 1)
        draft = compute_buffer_bytes(spec, **{**kw, "n_outputs_max": 1, "type_k": "f16", "type_v": "f16",
                                              "mtp_draft": True})  # fmt: skip
    return LlamaContext(cells, per_stream, kv, recurrent, output, compute, draft, per_cell, rows)
