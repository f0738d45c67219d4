"""Per-token KV cache and per-sequence Gated DeltaNet state, as each engine allocates them.

Only the full-attention layers of Qwen3.5 keep a KV cache (3 of every 4 layers are Gated DeltaNet:
linear attention with a fixed-size state per sequence). Sources: shared/reference/qwen35-architecture.md
§4–5, checked against the engines' code:

- llama.cpp: ``llama_kv_cache`` (K and V per non-recurrent layer, ``-ctk``/``-ctv`` types, one row of
  ``n_head_kv·head_dim`` per cell: ggml_row_size), ``llama_memory_recurrent`` (R = conv window
  ``(d_conv−1)·(d_inner + 2·n_group·d_state)``, S = ``d_state·d_inner``, both F32, per cell;
  llama-hparams.cpp ``n_embd_r``/``n_embd_s``).
- vLLM: ``MambaStateShapeCalculator.gated_delta_net_state_shape`` / ``..._dtype`` (conv state in the
  model dtype, SSM state in ``mamba_ssm_dtype`` = float32 for Qwen3.5, model dtype for Qwen3-Next;
  TP splits heads), ``FullAttentionSpec.page_size_bytes`` (KV heads replicated when TP > kv heads).
- mlx-lm: ``ArraysCache`` conv state in the activation dtype, SSM state float32; KV grows on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

from qwenfit.core.formats.dtypes import GGML_TYPES
from qwenfit.core.model.spec import ModelSpec

__all__ = [
    "LLAMA_KV_TYPES",
    "STATE_DTYPE_BYTES",
    "GdnState",
    "gdn_state",
    "llama_kv_bytes_per_cell",
    "llama_recurrent_bytes_per_cell",
]

# -ctk / -ctv values llama.cpp accepts (common/arg.cpp kv_cache_types) -> ggml type
LLAMA_KV_TYPES: dict[str, str] = {
    "f32": "F32", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q4_0": "Q4_0", "q4_1": "Q4_1",
    "iq4_nl": "IQ4_NL", "q5_0": "Q5_0", "q5_1": "Q5_1",
}  # fmt: skip

# element sizes of the state and KV dtypes the Python engines name (torch dtype strings)
STATE_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}


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
class GdnState:
    """One GDN layer's state for one sequence on one TP rank: element counts and dtypes."""

    conv_elements: int
    conv_dtype_bytes: int
    ssm_elements: int
    ssm_dtype_bytes: int

    @property
    def bytes(self) -> int:
        return self.conv_elements * self.conv_dtype_bytes + self.ssm_elements * self.ssm_dtype_bytes


def gdn_state(
    spec: ModelSpec,
    *,
    tp: int = 1,
    conv_dtype: str | None = None,
    ssm_dtype: str | None = None,
    num_spec: int = 0,
) -> GdnState:
    """vLLM/SGLang/MLX layout: conv ``(K−1+num_spec)·conv_dim/tp``, SSM ``(nv/tp)·dv·dk``.

    Dtypes default as vLLM chooses them: conv in the model dtype, SSM in the config's
    ``mamba_ssm_dtype`` (Qwen3.5: float32) or the model dtype (Qwen3-Next).
    """
    t = spec.text
    conv_dtype = conv_dtype or t.dtype
    ssm_dtype = ssm_dtype or t.mamba_ssm_dtype or t.dtype
    for name in (conv_dtype, ssm_dtype):
        if name not in STATE_DTYPE_BYTES:
            raise ValueError(f"unknown state dtype {name!r}; known: {', '.join(STATE_DTYPE_BYTES)}")
    return GdnState(
        conv_elements=(t.linear_conv_kernel_dim - 1 + num_spec) * (t.linear_conv_dim // tp),
        conv_dtype_bytes=STATE_DTYPE_BYTES[conv_dtype],
        ssm_elements=(t.linear_num_value_heads // tp) * t.linear_value_head_dim * t.linear_key_head_dim,
        ssm_dtype_bytes=STATE_DTYPE_BYTES[ssm_dtype],
    )
