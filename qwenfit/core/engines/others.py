"""SGLang, MLX (mlx-lm) and transformers memory terms (see :mod:`qwenfit.core.engines.profiles` for the
conventions), checked against each engine's code (``scripts/python_engine_fixtures.py``, fixtures in
``tests/fixtures/python_engines``):

- transformers 5.24: measured — real forward passes of tiny Qwen3.5 checkpoints, every tensor of the
  cache object walked (KV only in full-attention layers; conv state ``[B, conv_dim, K]``, K not K-1,
  model dtype; recurrent state ``[B, nv, dk, dv]`` float32; weights all cast to the config dtype).
- SGLang 0.5.23: its own argument resolution and pool sizing imported from the wheel and run over a
  grid of GPUs, TP sizes and models.
- mlx-lm 0.32.2: transcribed with file:line citations (MLX needs Apple silicon), each line checked
  against the wheel.

Everything that depends on context or sequences uses only ``+ - * //`` and the
:mod:`qwenfit.core.expr` helpers, so ``Settings(context=Var("ctx"), sequences=Var("seqs"))`` traces
each term into a formula for the calculator (the engines' fixed float ratios are rewritten as integer
fractions that give the engine's results for realistic inputs; see each function).
"""

from __future__ import annotations

from qwenfit.core.engines.cache import STATE_DTYPE_BYTES, gdn_state
from qwenfit.core.engines.profiles import Settings, rank_weights
from qwenfit.core.expr import Num, le, lt, smax, smin, where
from qwenfit.core.formats.weights import WeightMap
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import Term

__all__ = [
    "SGLANG_VERSION",
    "mlx_terms",
    "sglang_cuda_context_bytes",
    "sglang_kv_cell_bytes",
    "sglang_mem_fraction_static",
    "sglang_pools",
    "sglang_server_defaults",
    "sglang_state_bytes_per_request",
    "sglang_state_slots_per_request",
    "sglang_terms",
    "transformers_terms",
]

GIB = 1 << 30
MIB = 1 << 20
_FLOAT_TYPES = {"F32": 4, "F16": 2, "BF16": 2}


# --------------------------------------------------------------------------------------------------
# SGLang 0.5.23 (sgl-project/sglang; file:line below are in the pip wheel sglang-0.5.23)
#
# How SGLang sizes its memory on one GPU (all of it reproduced by tests/fixtures/python_engines/sglang.json):
#  1. mem_fraction_static (arg_groups/memory_hook.py:281-343): round((gpu_mem - reserved)/gpu_mem, 3)
#     with gpu_mem in MiB (nvidia-smi) and reserved = 512 + 1.5*max(chunked_prefill, 2048) + tp/8*1024
#     + 2*decode_cuda_graph_max_bs (>= 10 GiB above 60 GiB); Qwen3.5 is a VLM, so the fraction is then
#     multiplied by 0.95 x clamp(1.1 - 0.1*h^2/1024^2, 0.8, 1.05), h = vision hidden size (:417-462).
#     --language-model-only is refused for Qwen3_5(Moe)ForConditionalGeneration (model_hook.py:1106),
#     so SGLang always loads the vision tower and reserves 100 MiB for it (SGLANG_VLM_CACHE_SIZE_MB,
#     mem_cache/kv_cache_configurator.py:202-224).
#  2. After the weights load: rest = free - pre_load_free*(1 - mem_fraction_static) - 100 MiB
#     (kv_cache_configurator.py:2990-3060).
#  3. The rest is split: the GDN state pool gets rest*0.9/1.9 (--mamba-full-memory-ratio 0.9) in whole
#     slots, K = int((budget - per_req)//per_req) usable + 1 padding slot; the KV token pool gets what
#     is left, tokens = bytes // cell (kv_cache_configurator.py:3345-3409; pool_configurator.py:637-647).
#  4. max_running_requests = min(clamp(int(tokens/context_len*512), 2048, 4096), tokens//2, K//slots),
#     slots = 3 + 2 extra-buffer slots per running request with the radix cache on (CUDA default:
#     "extra_buffer" strategy with the overlap scheduler), 1 with it off (:3062-3172).
SGLANG_VERSION = "0.5.23"
_SGLANG_KV_BYTES = {"bf16": 2, "bfloat16": 2, "fp8_e4m3": 1, "fp8_e5m2": 1}


def sglang_cuda_context_bytes(tp: int) -> int:
    """Memory already in use on each GPU when SGLang measures free memory before loading (CUDA
    context, cuBLAS, NCCL when tp > 1). An estimate (engines §C.0), as for vLLM."""
    return (600 + (400 if tp > 1 else 0)) * MIB


def sglang_server_defaults(gpu_memory_bytes: Num, tp: int) -> tuple[Num, Num]:
    """(chunked_prefill_size, decode CUDA-graph max batch size) SGLang picks for this GPU
    (arg_groups/memory_hook.py:89-170; gpu_mem in MiB as nvidia-smi reports it). Traceable in the
    device memory."""
    gpu = gpu_memory_bytes // MIB
    big_tp = tp >= 4
    chunk = where(
        lt(gpu, 20 * 1024), 2048, where(lt(gpu, 60 * 1024), 4096, where(lt(gpu, 160 * 1024), 8192, 16384))
    )
    graph_bs = where(
        lt(gpu, 20 * 1024), 8,
        where(lt(gpu, 35 * 1024), 160 if big_tp else 48,
              where(lt(gpu, 60 * 1024), 160 if big_tp else 32,
                    where(lt(gpu, 160 * 1024), 512 if big_tp else 256, 512))),
    )  # fmt: skip
    return chunk, graph_bs


def sglang_mem_fraction_static(spec: ModelSpec, gpu_memory_bytes: Num, tp: int) -> tuple[Num, int]:
    """SGLang's default ``mem_fraction_static`` as an exact fraction (numerator, denominator).

    SGLang computes it in floats; here ``round(x, 3)`` becomes integer thousandths (reserved memory
    is a whole number of half MiB) and the VLM factor 0.95 x (11·2^20 − h²)/(10·2^20) an integer
    ratio, which equals SGLang's float to ~1e-16 (tests/fixtures/python_engines/sglang.json).
    Prefill CUDA graphs are off for Qwen3.5 (the resolved backend is "disabled"), so the graph
    reserve is 2 MiB per decode graph batch size. Traceable in the device memory."""
    gpu = gpu_memory_bytes // MIB
    chunk, graph_bs = sglang_server_defaults(gpu_memory_bytes, tp)
    reserved2 = 2 * 512 + 3 * smax(chunk, 2048) + 256 * tp + 4 * graph_bs  # half MiB
    reserved2 = where(lt(60 * 1024, gpu), smax(reserved2, 2 * 10 * 1024), reserved2)
    num, den = 1000 * (2 * gpu - reserved2), 2 * gpu
    thousandths = (2 * num + den) // (2 * den)  # round half up; SGLang's round() never meets a tie here
    if spec.vision is None:
        return thousandths, 1000
    # complexity ratio = 24 h^2 / (24 * 1024^2): SGLang reads num_hidden_layers, absent from the
    # Qwen3.5 vision config, so both sides use its default 24
    factor = min(max(11 * 2**20 - spec.vision.hidden_size**2, 8 * 2**20), 21 * 2**19)  # x 10*2^20
    return thousandths * 95 * factor, 1000 * 100 * 10 * 2**20


def sglang_kv_cell_bytes(spec: ModelSpec, tp: int, kv_cache: str | None) -> int:
    """KV bytes per token on one rank: full-attention layers x kv heads per rank x (K + V) head dims."""
    t = spec.text
    kv = kv_cache or "auto"
    size = STATE_DTYPE_BYTES.get(t.dtype, 2) if kv == "auto" else _SGLANG_KV_BYTES.get(kv)
    if size is None:
        raise ValueError(f"SGLang kv cache dtype {kv!r}; valid: auto, {', '.join(_SGLANG_KV_BYTES)}")
    return max(1, t.num_key_value_heads // tp) * 2 * t.head_dim * t.n_full_attention * size


def sglang_state_bytes_per_request(spec: ModelSpec, tp: int) -> int:
    """``mamba_cache_per_req``: conv (conv_dim/tp, K−1) bfloat16 + temporal (nv/tp, dv, dk) in the
    config's mamba_ssm_dtype (float32 when absent), over every Gated DeltaNet layer."""
    t = spec.text
    state = gdn_state(spec, tp=tp, conv_dtype="bfloat16", ssm_dtype=t.mamba_ssm_dtype or "float32")
    return state.bytes * t.n_linear_attention


def sglang_state_slots_per_request(prefix_caching: bool) -> int:
    """State-pool slots each running request needs: 3 + 2 (extra_buffer with the overlap scheduler,
    the CUDA default for Qwen3.5) with the radix cache on, 1 with it off."""
    return 5 if prefix_caching else 1


def sglang_pools(spec: ModelSpec, s: Settings, rest_bytes: int, context_len: int) -> tuple[int, int, int]:
    """(state slots K, KV tokens, max_running_requests) SGLang makes of ``rest_bytes`` (the memory
    left for both pools). Integer form of kv_cache_configurator.py:3345-3409 and :3119-3172:
    ``rest*0.9/1.9`` is ``9*rest/19``."""
    per_req = sglang_state_bytes_per_request(spec, s.tp)
    slots = 9 * rest_bytes // (19 * per_req) - 1
    tokens = (rest_bytes - (slots + 1) * per_req) // sglang_kv_cell_bytes(spec, s.tp, s.kv_cache)
    estimated = min(max(tokens * 512 // context_len, 2048), 4096)
    running = min(estimated, tokens // 2, slots // sglang_state_slots_per_request(s.prefix_caching))
    return slots, tokens, running


def sglang_terms(spec: ModelSpec, weights: WeightMap, s: Settings) -> list[Term]:
    """What SGLang needs so that ``sequences`` requests of ``context`` tokens run at once: the KV
    pool must hold every token and the state pool 5 slots per request (+1 padding slot), and since
    SGLang splits the memory left for both pools 0.9:1 (state:KV), the binding pool sets both
    (``pool_split``). Exact when the state pool binds; when the KV pool binds, SGLang's rounding to
    whole state slots can make do with up to 1.9 slots' worth less. Outside the pools SGLang keeps
    (device memory − CUDA context) x (1 − mem_fraction_static) for activations and CUDA graphs."""
    t = spec.text
    memory = 80 * GIB if s.gpu_memory_bytes is None else s.gpu_memory_bytes
    cell = sglang_kv_cell_bytes(spec, s.tp, s.kv_cache)
    per_req = sglang_state_bytes_per_request(spec, s.tp)
    slots = sglang_state_slots_per_request(s.prefix_caching)
    kv_need = s.context * s.sequences * cell
    state_need = (slots * s.sequences + 1) * per_req
    rest: Num = smax(
        (19 * kv_need + 9) // 10, (19 * state_need + 8) // 9
    )  # ceil(kv*1.9), ceil(state*1.9/0.9)
    num, den = sglang_mem_fraction_static(spec, memory, s.tp)
    context = sglang_cuda_context_bytes(s.tp)
    per_rank: Num
    per_rank, exact = rank_weights(spec, weights, s.tp)
    if s.rank_weight_bytes is not None:  # traced for the calculator: one formula for every quant
        per_rank = s.rank_weight_bytes
    chunk, graph_bs = sglang_server_defaults(memory, s.tp)
    src = f"sglang {SGLANG_VERSION} kv_cache_configurator.py (tests/fixtures/python_engines/sglang.json)"
    mfs = "mem_fraction_static " + (f"{num / den:.4f}" if isinstance(num, int) else f"{num}/{den}")
    terms = [
        Term("weights", "gpu", per_rank, exact, "checkpoint bytes per TP rank", weights.scheme),
        Term("kv_cache", "gpu", kv_need, True, src + ": token pool, full-attention layers, page size 1",
             f"{s.sequences} x {s.context:,} tokens x {cell:,} B"),
        Term("recurrent_state", "gpu", state_need, True,
             src + ": state pool, conv bf16 + SSM " + (t.mamba_ssm_dtype or "float32"),
             f"{slots} slot(s) per running request + 1 padding slot, {per_req:,} B each"),
        Term("pool_split", "gpu", rest - kv_need - state_need, True,
             src + ": the memory left for the pools is split state:KV = 0.9:1 (--mamba-full-memory-ratio)",
             "what the split gives the pool that is not the binding one"),
        Term("runtime_reserve", "gpu", (memory - context) * (den - num) // den, True,
             f"sglang {SGLANG_VERSION} arg_groups/memory_hook.py: (free memory before loading) x "
             "(1 - mem_fraction_static)",
             f"{mfs} (chunked prefill {chunk}, decode CUDA graphs up to batch {graph_bs}"
             + (", x VLM factor)" if spec.vision is not None else ")")),
        Term("cuda_context", "gpu", context, False,
             "CUDA context, cuBLAS and NCCL before SGLang measures free memory (engines §C.0)", "estimated"),
    ]  # fmt: skip
    if spec.vision is not None:
        terms.append(Term("vision", "gpu", 100 * MIB, True,
                          "SGLANG_VLM_CACHE_SIZE_MB: multimodal embedding cache reserved from the KV budget",
                          "100 MiB"))  # fmt: skip
        if not any(e.component == "vision" for e in weights.tensors):
            # SGLang loads the tower even for text-only use (--language-model-only refuses Qwen3.5)
            terms.append(Term("vision", "gpu", spec.params.vision * 2 // s.tp, False,
                              "vision tower weights, BF16, split over TP ranks (SGLang always loads it)",
                              "estimated"))  # fmt: skip
    return terms


# --------------------------------------------------------------------------------------------------
# MLX (mlx-lm 0.32.2) — unified memory. Sources: scripts/_pyengine_mlx.py RULES (file:line, each
# checked against the wheel), recorded in tests/fixtures/python_engines/mlx.json.
MLX_LM_VERSION = "0.32.2"
_MLX_KV_STEP = 256  # mlx_lm/models/cache.py:340 (KVCache.step) and :252 (QuantizedKVCache.step)
_MLX_KV_GROUP = 64  # mlx_lm/generate.py:325 kv_group_size
_MLX_QUANTIZED_KV_START = 5000  # mlx_lm/generate.py:49 DEFAULT_QUANTIZED_KV_START
_MLX_PREFILL_STEP = 2048  # mlx_lm/generate.py:323 prefill_step_size


def mlx_terms(spec: ModelSpec, weights: WeightMap, s: Settings) -> list[Term]:
    """mlx-lm ``generate`` / ``mlx_lm.server``: KV grows in whole 256-token steps in the activation
    dtype (bfloat16); with ``--kv-bits`` the cache turns into a QuantizedKVCache (uint32-packed values,
    one scale and one bias per 64 values) once it holds 5000 tokens (before that it stays 16-bit).
    Gated DeltaNet layers keep an ArraysCache: conv (K−1, conv_dim) bf16 + state (Hv, Dv, Dk) float32."""
    t = spec.text
    bits = {"bf16": 16, "f16": 16, "8": 8, "4": 4}
    kv = s.kv_cache or "bf16"
    if kv not in bits:
        raise ValueError(f"mlx-lm KV cache {kv!r}; valid: bf16, f16, 8, 4 (--kv-bits)")
    width = t.num_key_value_heads * t.head_dim
    plain = t.n_full_attention * 2 * width * 2
    # cache.py:273-275: dim // (32/bits) uint32 words + dim // group scales and biases (keys.dtype)
    quantized = t.n_full_attention * 2 * (width * bits[kv] // 8 + (width // _MLX_KV_GROUP) * 2 * 2)
    per_token: Num = (
        plain if bits[kv] == 16 else where(le(_MLX_QUANTIZED_KV_START, s.context), quantized, plain)
    )
    # cache.py:352: capacity grows by ceil(n/256)*256; prompt chunks of 2048 keep it step-aligned
    tokens = (s.context + _MLX_KV_STEP - 1) // _MLX_KV_STEP * _MLX_KV_STEP
    state = gdn_state(spec, conv_dtype="bfloat16", ssm_dtype="float32")
    # prefill: one 2048-token chunk through one layer at a time (the chunk's logits are never computed:
    # only the cache state is evaluated, generate.py:450); widest activations of a layer in bf16
    widest = max(
        t.linear_conv_dim + t.linear_value_dim,
        2 * t.intermediate_size,
        2 * t.moe_intermediate_size * t.num_experts_per_tok + 2 * t.shared_expert_intermediate_size,
    )
    transient = smin(s.context, _MLX_PREFILL_STEP) * (4 * t.hidden_size + 2 * widest) * 2 * s.sequences
    src = f"mlx-lm {MLX_LM_VERSION} (tests/fixtures/python_engines/mlx.json)"
    kv_detail = "16-bit" if bits[kv] == 16 else f"{kv}-bit from {_MLX_QUANTIZED_KV_START} tokens on"
    return [
        Term("weights", "gpu", weights.total_bytes if s.rank_weight_bytes is None else s.rank_weight_bytes,
             True, "MLX safetensors bytes", weights.scheme),
        Term("kv_cache", "gpu", tokens * per_token * s.sequences, True,
             src + ": models/cache.py KVCache/QuantizedKVCache, step 256, group 64",
             f"{s.sequences} x {tokens:,} tokens, {kv_detail}"),
        Term("recurrent_state", "gpu", s.sequences * t.n_linear_attention * state.bytes, True,
             src + ": ArraysCache, conv (K-1, conv_dim) bf16, state (Hv, Dv, Dk) float32",
             f"{s.sequences} sequence(s)"),
        Term("compute_buffer", "gpu", transient, False,
             "prefill transient: 2048-token chunks, one layer's widest activations (bf16)", "estimated"),
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# transformers 5.24 — measured (tests/fixtures/python_engines/transformers.json)
TRANSFORMERS_VERSION = "5.24.0"


def transformers_terms(spec: ModelSpec, weights: WeightMap, s: Settings) -> list[Term]:
    """``AutoModelForCausalLM.from_pretrained`` + ``generate`` with the default DynamicCache.

    Measured: every floating-point tensor is cast to the config dtype on load (the checkpoint's
    float32 ``A_log`` and GDN norm weights too), the MTP block is not built, and the only buffers are
    the two rotary ``inv_freq`` vectors (float32). The cache (cache_utils.py ``DynamicLayer`` /
    ``LinearAttentionLayer``) holds K and V ``[B, kv_heads, tokens, head_dim]`` in the model dtype for
    full-attention layers only, and per Gated DeltaNet layer a conv state ``[B, conv_dim, K]`` (padded
    to the kernel size K, not K−1) in the model dtype and a recurrent state ``[B, nv, dk, dv]`` in
    float32 (the gated-delta-rule functions compute it in float32)."""
    t = spec.text
    size = STATE_DTYPE_BYTES.get(t.dtype, 2)
    keep = ("text", "vision") if s.vision else ("text",)
    loaded = sum(
        (e.bytes // _FLOAT_TYPES[e.type] * size if e.type in _FLOAT_TYPES else e.bytes)
        for e in weights.tensors
        if e.component in keep
    )
    rotary = 2 * (int(t.head_dim * t.partial_rotary_factor) // 2) * 4  # inv_freq + original_inv_freq
    per_token = t.n_full_attention * 2 * t.num_key_value_heads * t.head_dim * size
    conv = t.linear_conv_kernel_dim * t.linear_conv_dim * size
    ssm = t.linear_num_value_heads * t.linear_key_head_dim * t.linear_value_head_dim * 4
    # estimated prefill peak: the whole prompt in one eager forward; without flash-linear-attention the
    # PyTorch gated-delta-rule fallback holds ~8 float32 tensors of [B, nv, tokens, d] (q, k, v, decay,
    # beta, new values, chunk attention, output), plus bf16 hidden states; generate() keeps logits of
    # the last position only (logits_to_keep=1), in float32
    width = (
        8 * t.linear_num_value_heads * max(t.linear_key_head_dim, t.linear_value_head_dim) * 4
        + 4 * t.hidden_size * 2
    )
    transient = s.context * s.sequences * width + s.sequences * t.vocab_size * (size + 4)
    src = f"transformers {TRANSFORMERS_VERSION} (tests/fixtures/python_engines/transformers.json)"
    return [
        Term("weights", "gpu", loaded + rotary, not s.vision,
             src + ": parameters cast to the config dtype, MTP not built, + rotary buffers",
             weights.scheme + (" + vision tower" if s.vision else "")),
        Term("kv_cache", "gpu", s.context * s.sequences * per_token, True,
             src + ": DynamicCache, full-attention layers only", f"{s.sequences} x {s.context:,} tokens"),
        Term("recurrent_state", "gpu", s.sequences * t.n_linear_attention * (conv + ssm), True,
             src + ": conv [B, conv_dim, K] model dtype, recurrent [B, nv, dk, dv] float32",
             f"{s.sequences} sequence(s)"),
        Term("compute_buffer", "gpu", transient, False,
             "eager prefill of the whole prompt (PyTorch gated-delta-rule fallback) + last-token logits",
             "estimated"),
    ]  # fmt: skip
