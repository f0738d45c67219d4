"""Pure-Python transcription of vLLM's KV-pool arithmetic for Qwen3.5 / Qwen3-Next (hybrid
Gated DeltaNet + full attention), as of the pinned vLLM release (see ``_vllm_env.VLLM_PIN``).

No torch, no vLLM import: this is the code qwenfit can carry. ``vllm_fixtures.py`` runs it
next to vLLM's own functions (imported from the unzipped wheel) for every fixture row and
refuses to write fixtures if a single number differs.

Each function names the vLLM source it transcribes (paths relative to the wheel root; the
line numbers for the pinned release are written into the fixtures' ``sources`` table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# vllm/config/cache.py  CacheConfig.DEFAULT_BLOCK_SIZE
DEFAULT_BLOCK_SIZE = 16
# vllm/config/cache.py  CacheConfig.gpu_memory_utilization default
DEFAULT_GPU_MEMORY_UTILIZATION = 0.92
# vllm/v1/attention/backends/gdn_attn.py  FLASHINFER_GDN_CHECKPOINT_ALIGNMENT
FLASHINFER_GDN_CHECKPOINT_ALIGNMENT = 64
# Smallest kernel block of the default CUDA attention backends for head_size 256:
# FLASH_ATTN [MultipleOf(16)] (no FA4-hd256 kernel), TRITON_ATTN [MultipleOf(16)],
# FLASHINFER [16, 32, 64] (or up to 1024 on SM100 trtllm-gen): min = 16 for all of them.
DEFAULT_KERNEL_BLOCK_ALIGNMENT = 16

GIB = 1 << 30

# vllm/utils/torch_utils.py STR_DTYPE_TO_TORCH_DTYPE -> element size
DTYPE_BYTES = {
    "bfloat16": 2,
    "float16": 2,
    "half": 2,
    "float32": 4,
    "float": 4,
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
}


def cdiv(a: int, b: int) -> int:
    """vllm/utils/math_utils.py cdiv."""
    return -(a // -b)


def round_up(x: int, y: int) -> int:
    """vllm/utils/math_utils.py round_up."""
    return ((x + y - 1) // y) * y


def format_gib(b: int) -> str:
    """vllm/utils/mem_utils.py format_gib (used in the 'cannot serve one request' error)."""
    return f"{round(b / GIB, 2)}"


# --------------------------------------------------------------------------------------------
# Per-rank shapes and page sizes
# --------------------------------------------------------------------------------------------


def num_kv_heads_per_rank(total_num_kv_heads: int, tp: int) -> int:
    """vllm/config/model.py ModelConfig.get_num_kv_heads: KV heads replicated when tp > kv."""
    return max(1, total_num_kv_heads // tp)


def attn_page_bytes_per_token(kv_heads_per_rank: int, head_size: int, kv_dtype_bytes: int) -> int:
    """FullAttentionSpec(block_size=1).page_size_bytes (vllm/v1/kv_cache_interface.py
    AttentionSpec.unpadded_page_size_bytes = num_heads * num_states * (head_size + head_size_v)
    * dtype_size, num_states = block_size). Per layer, per rank, per token; K and V both."""
    return kv_heads_per_rank * (head_size + head_size) * kv_dtype_bytes


def check_tp(
    num_attention_heads: int, num_key_value_heads: int, num_v_heads: int, conv_dim: int, tp: int
) -> None:
    """Raise ValueError where vLLM refuses the TP size: ModelConfig.verify_with_parallel_config
    (attention heads), Qwen3NextAttention (kv heads divide tp or tp divides kv heads), divide()
    in gated_delta_net_state_shape (GDN value heads and conv_dim)."""
    if num_attention_heads % tp:
        raise ValueError(
            f"Total number of attention heads ({num_attention_heads}) must be divisible by tp={tp}"
        )
    if not (num_key_value_heads % tp == 0 or tp % num_key_value_heads == 0):
        raise ValueError(f"kv heads {num_key_value_heads} vs tp {tp}")
    if num_v_heads % tp or conv_dim % tp:
        raise ValueError(f"GDN dims not divisible by tp={tp}")


def gdn_state_shapes(
    tp: int,
    num_k_heads: int,
    num_v_heads: int,
    head_k_dim: int,
    head_v_dim: int,
    conv_kernel_size: int,
    num_spec: int = 0,
    conv_layout: str = "SD",
) -> tuple[tuple[int, int], tuple[int, int, int]]:
    """vllm/model_executor/layers/mamba/mamba_utils.py
    MambaStateShapeCalculator.gated_delta_net_state_shape (divide() asserts divisibility)."""
    conv_dim = head_k_dim * num_k_heads * 2 + head_v_dim * num_v_heads
    if conv_dim % tp or num_v_heads % tp:
        raise ValueError(f"GDN dims not divisible by tp={tp}")
    state_len = conv_kernel_size - 1 + num_spec
    conv = (conv_dim // tp, state_len) if conv_layout == "DS" else (state_len, conv_dim // tp)
    ssm = (num_v_heads // tp, head_v_dim, head_k_dim)
    return conv, ssm


def effective_mamba_ssm_cache_dtype(
    architecture: str, cli_mamba_ssm_cache_dtype: str, hf_mamba_ssm_dtype: str | None
) -> str:
    """vllm/model_executor/models/config.py Qwen3_5ForConditionalGenerationConfig (also used for
    Qwen3_5ForCausalLM / Qwen3_5Moe*): when --mamba-ssm-cache-dtype is 'auto', copy the HF
    text_config.mamba_ssm_dtype. Qwen3NextForCausalLM has no such hook."""
    qwen35 = architecture in {
        "Qwen3_5ForConditionalGeneration",
        "Qwen3_5MoeForConditionalGeneration",
        "Qwen3_5ForCausalLM",
        "Qwen3_5MoeForCausalLM",
    }
    if qwen35 and cli_mamba_ssm_cache_dtype == "auto" and hf_mamba_ssm_dtype is not None:
        return hf_mamba_ssm_dtype
    return cli_mamba_ssm_cache_dtype


def gdn_state_dtypes(model_dtype: str, mamba_cache_dtype: str, mamba_ssm_cache_dtype: str) -> tuple[str, str]:
    """vllm/model_executor/layers/mamba/mamba_utils.py
    MambaStateDtypeCalculator._mamba_state_dtype: conv = mamba_cache_dtype ('auto' -> model
    dtype); ssm = conv dtype when mamba_ssm_cache_dtype is 'auto', else that dtype."""
    conv = model_dtype if mamba_cache_dtype == "auto" else mamba_cache_dtype
    ssm = conv if mamba_ssm_cache_dtype == "auto" else mamba_ssm_cache_dtype
    return conv, ssm


def mamba_page_bytes(shapes, dtypes) -> int:
    """MambaSpec.page_size_bytes before padding: sum(prod(shape) * dtype_size)."""
    return sum(math.prod(s) * DTYPE_BYTES[d] for s, d in zip(shapes, dtypes, strict=True))


# --------------------------------------------------------------------------------------------
# Block-size alignment (Platform._align_hybrid_block_size, vllm/platforms/interface.py)
# --------------------------------------------------------------------------------------------


def align_hybrid_block_size(
    mamba_page: int,
    attn_page_1tok: int,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    kernel_min_block: int = DEFAULT_KERNEL_BLOCK_ALIGNMENT,
    backend_block_lcm: int = DEFAULT_KERNEL_BLOCK_ALIGNMENT,
    align_mode: bool = False,
    checkpoint_alignment: int | None = None,
) -> tuple[int, int, float]:
    """Returns (attention block size, padded mamba page, padding %).

    kernel_block_alignment_size = max(min kernel block of the first attention backend,
    cache_config.block_size); in mamba_cache_mode 'align' it is lcm'd with the GDN layers'
    prefill-checkpoint alignment (64 when FlashInfer GDN prefill exports checkpoints, else 1).
    attn_block = a * cdiv(mamba_page, a * attn_page_1tok), rounded up to the lcm of every
    backend's smallest kernel block; block_size = max(block_size, attn_block); the mamba page
    is padded to block_size * attn_page_1tok.
    """
    a = max(kernel_min_block, block_size)
    if align_mode:
        a = math.lcm(a, checkpoint_alignment or 1)
    attn_block = a * cdiv(mamba_page, a * attn_page_1tok)
    attn_block = backend_block_lcm * cdiv(attn_block, backend_block_lcm)
    final = max(block_size, attn_block)
    attn_page = final * attn_page_1tok
    assert attn_page >= mamba_page
    pct = 100 * (attn_page - mamba_page) / mamba_page
    return final, attn_page, pct


# --------------------------------------------------------------------------------------------
# KV cache groups (vllm/v1/core/kv_cache_planning.py _get_kv_cache_groups_uniform_page_size)
# --------------------------------------------------------------------------------------------


def group_layer_counts(n_attn: int, n_mamba: int) -> tuple[int, list[int], list[int]]:
    """Returns (group_size, [layers per attention group], [layers per mamba group]).

    Layers with an identical spec form a bucket; group_size = the smallest bucket, or the
    largest one if largest < 1.5 * smallest; a bucket of n layers is split into cdiv(n,
    group_size) groups as layers[i::num_groups]. Every group's block is one page per layer of
    the *largest* group (the shared pool's bytes_per_block)."""
    buckets = [n for n in (n_attn, n_mamba) if n]
    group_size = min(buckets)
    if max(buckets) < group_size * 1.5:
        group_size = max(buckets)

    def split(n: int) -> list[int]:
        if not n:
            return []
        g = cdiv(n, group_size)
        return [len(range(i, n, g)) for i in range(g)]

    return group_size, split(n_attn), split(n_mamba)


def mamba_blocks_per_request(align_mode: bool, num_spec: int, checkpoint_blocks: int) -> int:
    """MambaSpec.max_memory_usage_bytes / page_size_bytes (vllm/v1/kv_cache_interface.py):
    'align' -> 2 + num_speculative_blocks + num_prefill_checkpoint_blocks; 'none' -> 1 + spec."""
    if align_mode:
        return 2 + num_spec + checkpoint_blocks
    return 1 + num_spec


def attn_blocks_per_request(max_model_len: int, block_size: int, dcp: int = 1) -> int:
    """FullAttentionSpec.max_memory_usage_bytes / page_size_bytes = cdiv(max_model_len, bs)."""
    return cdiv(cdiv(max_model_len, dcp) if dcp > 1 else max_model_len, block_size)


@dataclass
class PoolPlan:
    """How vLLM sizes the shared KV pool for one (model, TP, options) on one rank."""

    block_size: int
    page_bytes: int  # one page = one layer's block (attention) or one GDN state (padded)
    bytes_per_block: int  # one pool block = page_bytes * layers of the largest group
    attn_groups: list[int]
    mamba_groups: list[int]
    attn_blocks_per_req: int
    mamba_blocks_per_req: int
    blocks_per_request: int = field(init=False)

    def __post_init__(self) -> None:
        self.blocks_per_request = (
            len(self.attn_groups) * self.attn_blocks_per_req
            + len(self.mamba_groups) * self.mamba_blocks_per_req
        )

    # vllm/v1/core/kv_cache_planning.py _max_memory_usage_bytes_from_groups
    def bytes_for_requests(self, n: int = 1) -> int:
        return self.bytes_per_block * self.blocks_per_request * n

    # get_kv_cache_configs: the null block is reserved before the admission check
    def min_pool_bytes(self, n: int = 1) -> int:
        return self.bytes_per_block * (self.blocks_per_request * n + 1)

    def num_blocks(self, pool_bytes: int) -> int:
        return pool_bytes // self.bytes_per_block

    # vllm/v1/core/kv_cache_utils.py get_max_concurrency_for_kv_cache_config
    def max_concurrency(self, pool_bytes: int) -> float:
        return self.num_blocks(pool_bytes) / self.blocks_per_request

    # get_kv_cache_capacity: "GPU KV cache size: N tokens"
    def kv_cache_size_tokens(self, pool_bytes: int, max_model_len: int) -> int:
        return int(self.max_concurrency(pool_bytes) * max_model_len)

    def fits_one(self, pool_bytes: int) -> bool:
        return pool_bytes - self.bytes_per_block >= self.bytes_for_requests(1)

    def estimate_max_model_len(self, pool_bytes: int, max_model_len: int) -> int:
        """_estimate_max_model_len_from_groups: binary search on 1..max_model_len against
        available - bytes_per_block (null block)."""
        avail = pool_bytes - self.bytes_per_block
        n_attn = len(self.attn_groups)
        n_mamba = len(self.mamba_groups)

        def fits(length: int) -> bool:
            blocks = n_attn * cdiv(length, self.block_size) + n_mamba * self.mamba_blocks_per_req
            return self.bytes_per_block * blocks <= avail

        left, right = 1, max_model_len
        if not fits(left):
            return 0
        result = 1
        while left <= right:
            mid = (left + right) // 2
            if fits(mid):
                result = mid
                left = mid + 1
            else:
                right = mid - 1
        return result


def plan(
    *,
    n_full_attn_layers: int,
    n_gdn_layers: int,
    attn_page_1tok: int,
    mamba_page: int,
    max_model_len: int,
    align_mode: bool,
    num_spec: int,
    checkpoint_alignment: int | None,
    n_draft_attn_layers: int = 0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    kernel_min_block: int = DEFAULT_KERNEL_BLOCK_ALIGNMENT,
) -> tuple[PoolPlan, float]:
    """Whole chain for one rank. ``checkpoint_alignment`` is FLASHINFER_GDN_CHECKPOINT_ALIGNMENT
    when the GDN prefill backend is FlashInfer and mamba_cache_mode is 'align', else None; it
    both widens the block alignment and adds one prefill-checkpoint block per request."""
    bs, page, pct = align_hybrid_block_size(
        mamba_page,
        attn_page_1tok,
        block_size=block_size,
        kernel_min_block=kernel_min_block,
        backend_block_lcm=kernel_min_block,
        align_mode=align_mode,
        checkpoint_alignment=checkpoint_alignment,
    )
    _, attn_groups, mamba_groups = group_layer_counts(n_full_attn_layers + n_draft_attn_layers, n_gdn_layers)
    ckpt_blocks = 1 if (align_mode and checkpoint_alignment is not None) else 0
    pp = PoolPlan(
        block_size=bs,
        page_bytes=page,
        bytes_per_block=page * max(attn_groups + mamba_groups),
        attn_groups=attn_groups,
        mamba_groups=mamba_groups,
        attn_blocks_per_req=attn_blocks_per_request(max_model_len, bs),
        mamba_blocks_per_req=mamba_blocks_per_request(align_mode, num_spec, ckpt_blocks),
    )
    return pp, pct
