"""The attention kernel vLLM 0.33.0 runs for an MTP verify step (``1 + n`` query tokens of each
sequence) at depth: where it packs the query heads that share a KV head and splits the cached tokens
over the GPU's SMs, and where it does neither.

vLLM takes FLASH_ATTN first on CUDA except on SM10x (``platforms/cuda.py:84``, recorded with the
KV dtypes in :mod:`.kv_dtypes`), and FlashAttention 2 there except on SM90 (FA3) and SM10x (FA4)
(``v1/attention/backends/fa_utils.py:98-107``). FA2 packs a decode's GQA group into one query tile
and splits its cached tokens over the SMs only when every sequence has one query token
(vllm-project/flash-attention ``csrc/flash_attn/flash_api.cpp`` at 617264c1, ``mha_varlen_fwd``:
``seqlenq_ngroups_swapped = max_seqlen_q == 1 && num_heads > num_heads_k ...`` :646; ``// Only apply
split-k for decoding`` :757-760; otherwise ``num_splits <= 1`` :763; vLLM's own note,
``flash_attn.py:605-609``: "special max_query_len=1 packed-GQA handling in FA2"). A verify step has
``max_query_len = 1 + n``, so FA2 launches ``grid(ceil(q/kBlockM), batch, heads)``
(``csrc/flash_attn/src/flash_fwd_launch_template.h:63-64``): one CTA per query head and sequence, each
running a ``kBlockM``-row tile (the ``1 + n`` real rows padded) over every cached token of its
sequence, on one SM. For head dim 256, ``kBlockM`` = 128 where a block may take 128 KiB of shared
memory and an SM less than 192 KiB (A100, Orin: 8.0, 8.7), else 64 (``flash_fwd_launch_template.h:
313-318``). The drafter's first pass re-runs the step's verified tokens through the MTP layer with the
same ``max_query_len`` (``v1/spec_decode/llm_base_proposer.py`` ``set_inputs_first_pass``; the later
draft steps set ``max_query_len = 1``, :673): one more such layer.

FlashInfer (FP8 KV on SM8x, every KV on SM10x) and FA3 pack the group into the tile with the
query tokens (FlashInfer ``include/flashinfer/attention/scheduler.cuh``: ``packed_qo_len = qo_len *
gqa_group_size``) and split the cached tokens: their verify is charged as before (the speed model's
attention FLOPs per token, ``attn_decode``).
"""

from __future__ import annotations

from qwenfit.core.engines.vllm.kv_dtypes import Capability, kv_dtype_backend
from qwenfit.errors import SettingError

__all__ = ["unsplit_verify_flops"]

FA2_MAX_HEAD_DIM = 256  # flash_api.cpp: "FlashAttention forward only supports head dimension at most 256"


def fa2_tile_rows(capability: Capability) -> int:
    """``kBlockM`` of FA2's head-dim-256 forward kernel on a GPU of ``capability`` (module docstring)."""
    return 128 if capability in ((8, 0), (8, 7)) else 64


def unsplit_verify_flops(kv_cache: str | None, cap: Capability | None, head_dim: int, n_attn: int) -> int:
    """Tensor-core FLOPs per cached token that one verify CTA computes over a whole MTP cycle when vLLM
    runs the verify through FA2 (``n_attn`` attention layers + the drafter's first pass, each a
    ``kBlockM``-row tile against K and V: 4 x kBlockM x head_dim per token); 0 where the kernel packs
    and splits (FA3, FlashInfer, TurboQuant, ...) or no GPU of compute capability ``cap`` is named."""
    if cap is None or head_dim > FA2_MAX_HEAD_DIM:
        return 0
    try:
        backend = kv_dtype_backend(kv_cache or "auto", cap, head_dim=head_dim)
    except SettingError:
        return 0
    if backend != "FLASH_ATTN" or cap[0] in (9, 10):  # FA3 on SM90, FA4 on SM10x
        return 0
    return (n_attn + 1) * 4 * fa2_tile_rows(cap) * head_dim
