"""The Gated DeltaNet state per sequence as the Python engines (vLLM, SGLang, mlx-lm) lay it out.

Only the full-attention layers of Qwen3.5 keep a KV cache; 3 of every 4 layers are Gated DeltaNet
(linear attention) with a fixed-size state per sequence: a conv window ``(K−1)·conv_dim`` and an SSM
state ``nv·dv·dk``. vLLM: ``MambaStateShapeCalculator.gated_delta_net_state_shape`` / ``..._dtype``
(conv state in the model dtype, SSM state in ``mamba_ssm_dtype`` = float32 for Qwen3.5, model dtype
for Qwen3-Next; TP splits heads); mlx-lm's ``ArraysCache`` (conv state in the activation dtype, SSM
state float32); SGLang's ``mamba_cache_per_req``. llama.cpp's own layout (F32, K−1 window) is in
:mod:`qwenfit.core.engines.llama_cpp.memory`.
"""

from __future__ import annotations

from dataclasses import dataclass

from qwenfit.core.model.spec import ModelSpec

__all__ = ["STATE_DTYPE_BYTES", "GdnState", "gdn_state"]

# element sizes of the state and KV dtypes the Python engines name (torch dtype strings)
STATE_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}


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
