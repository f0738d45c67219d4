"""SGLang, MLX (mlx-lm) and transformers memory terms (see :mod:`qwenfit.core.engines` for the
conventions). Formulas that depend on context or sequences use :mod:`qwenfit.core.expr` helpers so
they also trace into the calculator export."""

from __future__ import annotations

from qwenfit.core.cache import gdn_state
from qwenfit.core.engines import Settings, rank_weights
from qwenfit.core.quant import WeightMap
from qwenfit.core.spec import ModelSpec
from qwenfit.core.terms import Term

__all__ = ["mlx_terms", "sglang_terms", "transformers_terms"]

GIB = 1 << 30
MIB = 1 << 20


# --------------------------------------------------------------------------------------------------
# SGLang


def sglang_terms(spec: ModelSpec, weights: WeightMap, s: Settings) -> list[Term]:
    """SGLang (sgl-project/sglang python/sglang/srt/model_executor/model_runner_kv_cache_mixin.py @001ccef0):
    after the static fraction, the rest is split between the mamba state pool and the KV pool in
    the ratio ``mamba_full_memory_ratio`` (default 0.9) — so both must fit their share — and the
    mamba pool holds 3 states per running request with the radix cache on (1 with it off)."""
    t = spec.text
    kv_bytes = {"auto": 2, "bf16": 2, "fp8_e4m3": 1, "fp8_e5m2": 1}
    kv = s.kv_cache or "auto"
    if kv not in kv_bytes:
        raise ValueError(f"SGLang kv cache dtype {kv!r}; valid: {', '.join(kv_bytes)}")
    kv_r = max(1, t.num_key_value_heads // s.tp)
    per_token = t.n_full_attention * 2 * kv_r * t.head_dim * kv_bytes[kv]  # get_cell_size_per_token
    state = gdn_state(spec, tp=s.tp, conv_dtype="bfloat16", ssm_dtype=t.mamba_ssm_dtype or "float32")
    per_req = state.bytes * t.n_linear_attention  # mamba2_cache_params.mamba_cache_per_req
    states = s.sequences * (3 if s.prefix_caching else 1)  # MAMBA_CACHE_SIZE_MAX_RUNNING_REQUESTS_RATIO
    kv_need = s.context * s.sequences * per_token
    mamba_need = states * per_req
    ratio = 0.9  # --mamba-full-memory-ratio
    rest = max(int(kv_need * (1 + ratio)), int(mamba_need * (1 + ratio) / ratio))
    memory = s.gpu_memory_bytes or 80 * GIB
    gpu_mb = memory / MIB
    chunk, graph_bs = (2048, 8) if gpu_mb < 20 * 1024 else (4096, 48) if gpu_mb < 60 * 1024 else (8192, 256)
    reserved_mb = 512 + 1.5 * max(chunk, 2048) + s.tp / 8 * 1024 + 2 * graph_bs
    if gpu_mb > 60 * 1024:
        reserved_mb = max(reserved_mb, 10 * 1024)
    per_rank, exact = rank_weights(spec, weights, s.tp)
    src = "sglang model_runner_kv_cache_mixin.py (profile_max_num_token, handle_max_mamba_cache)"
    return [
        Term("weights", "gpu", per_rank, exact, "checkpoint bytes per TP rank", weights.scheme),
        Term("kv_cache", "gpu", kv_need, True, src + ": token pool, full-attention layers, page size 1",
             f"{s.sequences} x {s.context:,} tokens"),
        Term("recurrent_state", "gpu", mamba_need, True, src + ": conv bf16 + SSM float32 per request",
             f"{states} state(s): {3 if s.prefix_caching else 1} per running request"),
        Term("pool_split", "gpu", rest - kv_need - mamba_need, True,
             src + ": the rest is split mamba:KV = 0.9:1, so the larger need sets both shares",
             "memory the fixed split gives the pool that is not the binding one"),
        Term("runtime_reserve", "gpu", int(reserved_mb * MIB), False,
             "sglang memory_hook.handle_gpu_memory_settings (engines §C.4)",
             "memory SGLang leaves outside mem_fraction_static for activations and CUDA graphs"),
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# MLX (mlx-lm) — unified memory


def mlx_terms(spec: ModelSpec, weights: WeightMap, s: Settings) -> list[Term]:
    t = spec.text
    bits = {"bf16": 16, "f16": 16, "8": 8, "4": 4}
    kv = s.kv_cache or "bf16"
    if kv not in bits:
        raise ValueError(f"mlx-lm KV cache {kv!r}; valid: bf16, f16, 8, 4 (--kv-bits)")
    width = t.num_key_value_heads * t.head_dim
    if bits[kv] == 16:
        per_token = t.n_full_attention * 2 * width * 2
    else:  # QuantizedKVCache: uint32-packed values + scale and bias (model dtype) per group of 64
        per_token = t.n_full_attention * 2 * (width * bits[kv] // 8 + (width // 64) * 2 * 2)
    # KV grows in steps of 256 tokens (mlx_lm.models.cache.KVCache.step)
    tokens = -(-s.context // 256) * 256
    state = gdn_state(spec, conv_dtype="bfloat16", ssm_dtype="float32")
    prefill = 2048  # mlx_lm prefill_step_size
    transient = min(s.context, prefill) * (4 * t.hidden_size + t.vocab_size) * 4 * s.sequences
    return [
        Term("weights", "gpu", weights.total_bytes, True, "MLX safetensors bytes", weights.scheme),
        Term("kv_cache", "gpu", tokens * per_token * s.sequences, True,
             "mlx_lm/models/cache.py KVCache / QuantizedKVCache: step 256, group 64",
             f"{s.sequences} x {tokens:,} tokens, {kv}"),
        Term("recurrent_state", "gpu", s.sequences * t.n_linear_attention * state.bytes, True,
             "mlx_lm ArraysCache: conv state bf16, SSM state float32", f"{s.sequences} sequence(s)"),
        Term("compute_buffer", "gpu", transient, False,
             "prefill transient: 2048-token steps of hidden states and logits", "estimated"),
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# transformers (eager)


def transformers_terms(spec: ModelSpec, weights: WeightMap, s: Settings) -> list[Term]:
    t = spec.text
    per_token = t.n_full_attention * 2 * t.num_key_value_heads * t.head_dim * 2
    # Qwen3_5DynamicCache: conv state padded to the kernel size (K, not K-1), model dtype; SSM fp32
    conv = t.linear_conv_kernel_dim * t.linear_conv_dim * 2
    ssm = t.linear_num_value_heads * t.linear_key_head_dim * t.linear_value_head_dim * 4
    logits = s.context * t.vocab_size * 4 * s.sequences  # generate() computes logits for the prompt
    return [
        Term("weights", "gpu", weights.total_bytes, True, "checkpoint bytes", weights.scheme),
        Term("kv_cache", "gpu", s.context * s.sequences * per_token, True,
             "DynamicCache, bf16, full-attention layers", f"{s.sequences} x {s.context:,} tokens"),
        Term("recurrent_state", "gpu", s.sequences * t.n_linear_attention * (conv + ssm), True,
             "modeling_qwen3_5 cache: conv [B, conv_dim, K] bf16, recurrent [B, nv, dk, dv] fp32",
             f"{s.sequences} sequence(s)"),
        Term("compute_buffer", "gpu", logits, False, "eager prefill: fp32 logits over the prompt dominate",
             "estimated"),
    ]  # fmt: skip
