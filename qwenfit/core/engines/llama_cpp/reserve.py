"""The shape of the graph llama.cpp reserves (``sched_reserve``'s worst-case ubatch), llama.cpp 0c1e570.

:class:`GraphSettings` is what :mod:`.graph` builds the graph from; :func:`reserve_settings` derives it
from a context's settings (llama-context.cpp:628-675, 2528-2531).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GraphSettings", "reserve_settings"]


@dataclass(frozen=True, slots=True)
class GraphSettings:
    """The shape parameters of the reserved graph (what ``graph_reserve`` sees).

    ``n_tokens``: ubatch tokens (a multiple of ``n_seq``); ``n_outputs``: rows of the logits;
    ``n_kv``: KV cells per stream; ``n_stream``: KV streams (1 with a unified cache, else
    ``n_seq``); ``n_rs_seq``: extra recurrent-state snapshots per sequence (MTP partial rollback)."""

    n_tokens: int
    n_seq: int
    n_outputs: int
    n_kv: int
    n_stream: int
    flash_attn: bool
    type_k: str
    type_v: str
    n_rs_seq: int = 0
    mask_f32: bool = False  # flash attention's KQ mask reserved F32 and cast (builds before PR #23764)
    h_nextn_output: bool = True  # the final norm kept as an output for MTP (builds from PR #22673 on)
    gdn_l2_op: bool = False  # Gated DeltaNet's q/k norm as one L2_NORM op (builds before PR #28068)
    kv_rot: bool = True  # Hadamard rotation of a quantized K/V cache (builds from PR #21038 on)
    gdn_fused: bool = True  # the fused GATED_DELTA_NET op for a prompt batch (else build_delta_net_chunking)


def reserve_settings(
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
    n_rs_seq: int = 0,
    mask_f32: bool = False,
    h_nextn_output: bool = True,
    gdn_l2_op: bool = False,
    kv_rot: bool = True,
    gdn_fused: bool = True,
) -> GraphSettings:
    """The worst-case pp graph of ``sched_reserve`` (llama-context.cpp:628-675, 2528-2531):
    ``n_ctx`` / ``n_ctx_seq`` are the padded cell counts (all streams / per stream)."""
    n = min(n_ctx, n_ubatch)
    tokens = -(-n // n_seq) * n_seq
    return GraphSettings(
        n_tokens=tokens, n_seq=n_seq, n_outputs=min(n, n_outputs_max),
        n_kv=n_ctx if kv_unified else n_ctx_seq, n_stream=1 if kv_unified else n_seq,
        flash_attn=flash_attn, type_k=type_k, type_v=type_v, n_rs_seq=n_rs_seq, mask_f32=mask_f32,
        h_nextn_output=h_nextn_output, gdn_l2_op=gdn_l2_op, kv_rot=kv_rot,
        gdn_fused=gdn_fused,
    )  # fmt: skip
