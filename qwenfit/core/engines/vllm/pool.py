"""vLLM's KV-pool arithmetic for hybrid Gated DeltaNet + attention models, transcribed.

vLLM 0.33.0 (paths relative to the wheel; line numbers in tests/fixtures/vllm/qwen35_kv_pool.json
``sources``). Checked against vLLM's own functions imported from the wheel for 528 combinations of
model × TP × KV dtype × prefix caching × MTP (scripts/vllm_fixtures.py): no number differs.

- KV heads per rank: ``max(1, kv // tp)`` (config/model.py get_num_kv_heads).
- Attention page per token per layer: ``kv_r`` × the bytes one KV head takes for one token in the
  ``--kv-cache-dtype`` (:mod:`.kv_dtypes`: dense ``2 · head_dim · dtype``; per-token-head, NVFP4 and
  TurboQuant packed slots; v1/kv_cache_interface.py:586-599 + the backend's customize_spec), checked for
  every accepted dtype by scripts/vllm_kv_dtypes.py (tests/fixtures/vllm/qwen35_kv_dtypes.json).
- GDN state per layer (mamba_utils.py gated_delta_net_state_shape/dtype): conv ``(K−1+S) × conv/tp``
  in the model dtype, SSM ``(nv/tp) × dv × dk`` in ``mamba_ssm_dtype`` (Qwen3.5 config hook:
  float32; Qwen3-Next: the model dtype).
- Block size (platforms/interface.py:940 _align_hybrid_block_size): the attention block is raised until
  one attention page holds a GDN state page; the state page is padded to it. The per-token page it
  divides by is the packed one (interface.py:987 TurboQuant, :1041 customize_spec); every backend
  vLLM selects for these models has 16 as its smallest kernel block. The KV dtype never changes the
  GDN state (mamba_utils.py:98: mamba_cache_dtype / mamba_ssm_cache_dtype only).
- Layers are grouped so each group holds the same number of layers (kv_cache_planning.py); one pool
  block is one page per layer of the largest group.
- Per request: ``cdiv(max_model_len, block)`` blocks per attention group and 1 (+S speculative)
  state block per GDN group, 2 (+S, +1 FlashInfer prefill checkpoint) with prefix caching ('align').
- Admission: the pool must hold ``blocks_per_request × N + 1`` blocks (the null block).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from qwenfit.core.engines.gdn_state import STATE_DTYPE_BYTES, gdn_state
from qwenfit.core.engines.vllm.kv_dtypes import (
    KV_CACHE_DTYPES,
    Capability,
    kv_dtype,
    kv_dtype_backend,
    kv_dtype_support,
)
from qwenfit.core.expr import Num, le, lt, smax, where
from qwenfit.core.model.spec import ModelSpec

__all__ = [
    "BATCH_TIERS",
    "DEFAULT_GPU_MEMORY_UTILIZATION",
    "KV_CACHE_DTYPES",
    "PoolPlan",
    "batch_defaults",
    "batch_tier",
    "check_tp",
    "kv_dtype_backend",
    "kv_dtype_support",
    "pick_tier",
    "plan_pool",
    "pp_partitions",
]

DEFAULT_BLOCK_SIZE = 16  # vllm/config/cache.py CacheConfig.DEFAULT_BLOCK_SIZE
DEFAULT_GPU_MEMORY_UTILIZATION = 0.92  # vllm/config/cache.py (0.9 before 2026)
FLASHINFER_GDN_CHECKPOINT_ALIGNMENT = 64  # vllm/v1/attention/backends/gdn_attn.py
# smallest kernel block of every CUDA attention backend vLLM selects for these models, whatever the KV
# dtype (FLASH_ATTN, TRITON_ATTN: multiples of 16; FLASHINFER: 16..64, 16..1024 on SM10x; TURBOQUANT:
# 16..128; tests/fixtures/vllm/qwen35_kv_dtypes.json ``selection`` min_kernel_block)
KERNEL_BLOCK_ALIGNMENT = 16


def _cdiv(a: int, b: int) -> int:
    return -(a // -b)


def _cdiv_n(a: Num, b: int) -> Num:
    """Ceiling division of a token count that may be a formula variable."""
    return -(a // -b)


def check_tp(spec: ModelSpec, tp: int) -> None:
    """Raise ValueError where vLLM refuses the tensor-parallel size (ModelConfig
    verify_with_parallel_config; divide() in the GDN state shapes; Qwen3NextAttention)."""
    t = spec.text
    if tp < 1:
        raise ValueError(f"tensor parallel size must be at least 1, got {tp}")
    if t.num_attention_heads % tp:
        raise ValueError(f"attention heads ({t.num_attention_heads}) must be divisible by tp={tp}")
    if not (t.num_key_value_heads % tp == 0 or tp % t.num_key_value_heads == 0):
        raise ValueError(f"KV heads ({t.num_key_value_heads}) and tp={tp} must divide one another")
    if t.linear_num_value_heads % tp or t.linear_conv_dim % tp or t.linear_num_key_heads % tp:
        raise ValueError(f"Gated DeltaNet heads ({t.linear_num_key_heads}/{t.linear_num_value_heads}) "
                         f"must be divisible by tp={tp}")  # fmt: skip


@dataclass(frozen=True, slots=True)
class PoolPlan:
    """How vLLM sizes the KV pool of one rank for one model and settings."""

    block_size: int
    mamba_page: int  # one GDN layer's state for one request, before padding
    page_bytes: int  # one page: an attention layer's block, or a padded GDN state
    padding_pct: float
    attn_groups: tuple[int, ...]  # layers per attention group
    mamba_groups: tuple[int, ...]
    attn_blocks_per_request: Num
    mamba_blocks_per_request: int
    attn_bytes_per_token: int  # per layer per rank

    @property
    def bytes_per_block(self) -> int:
        return self.page_bytes * max(self.attn_groups + self.mamba_groups)

    def blocks_per_request(self, max_model_len: Num | None = None) -> Num:
        attn = (
            self.attn_blocks_per_request if max_model_len is None else _cdiv_n(max_model_len, self.block_size)
        )
        return len(self.attn_groups) * attn + len(self.mamba_groups) * self.mamba_blocks_per_request

    def pool_bytes(self, requests: Num, max_model_len: Num | None = None) -> Num:
        """The smallest pool vLLM accepts for ``requests`` of ``max_model_len`` (null block included)."""
        return self.bytes_per_block * (self.blocks_per_request(max_model_len) * requests + 1)

    def blocks(self, max_model_len: int | None = None) -> int:
        """:meth:`blocks_per_request` for a plan made with an int ``max_model_len``."""
        n = self.blocks_per_request(max_model_len)
        if not isinstance(n, int):
            raise TypeError("this pool plan was traced with a symbolic max_model_len")
        return n

    def estimate_max_model_len(self, pool_bytes: int, max_model_len: int) -> int:
        """The "estimated maximum model length" vLLM offers when one request does not fit: the
        longest request the pool holds after its null block (kv_cache_planning.py
        estimate_max_model_len, a binary search over 1..max_model_len); 0 if none."""
        avail = pool_bytes - self.bytes_per_block

        def fits(length: int) -> bool:
            return self.bytes_per_block * self.blocks(length) <= avail

        if not fits(1):
            return 0
        lo, hi, best = 1, max_model_len, 1
        while lo <= hi:
            mid = (lo + hi) // 2
            if fits(mid):
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        return best

    def cannot_serve_message(self, pool_bytes: int, max_model_len: int) -> str | None:
        """vLLM's ValueError text when the pool cannot hold one max_model_len request, else None
        (kv_cache_planning.py _check_enough_kv_cache_memory; format_gib rounds GiB to 2 places)."""
        available = pool_bytes - self.bytes_per_block
        needed = self.bytes_per_block * self.blocks(max_model_len)
        if available <= 0:
            return ("No available memory for the cache blocks. Try increasing `gpu_memory_utilization` "
                    "when initializing the engine.")  # fmt: skip
        if needed <= available:
            return None
        est = self.estimate_max_model_len(pool_bytes, max_model_len)
        hint = f"Based on the available memory, the estimated maximum model length is {est}. " if est else ""
        return (
            f"To serve at least one request with the model's max seq len ({max_model_len}), "
            f"({round(needed / (1 << 30), 2)} GiB KV cache is needed, which is larger than the available "
            f"KV cache memory ({round(available / (1 << 30), 2)} GiB). {hint}Try increasing "
            "`gpu_memory_utilization` (which also controls CPU memory on the CPU backend) or decreasing "
            "`max_model_len` when initializing the engine."
        )

    def max_concurrency(self, pool_bytes: int) -> float:
        """What vLLM logs as "Maximum concurrency for N tokens per request" (null block counted)."""
        return (pool_bytes // self.bytes_per_block) / self.blocks()


def plan_pool(
    spec: ModelSpec,
    *,
    tp: int = 1,
    max_model_len: Num,
    kv_cache_dtype: str = "auto",
    prefix_caching: bool = True,
    num_speculative_tokens: int = 0,
    flashinfer_gdn_prefill: bool = False,
    mamba_ssm_cache_dtype: str = "auto",
    block_size: int = DEFAULT_BLOCK_SIZE,
    layers: range | None = None,
    capability: Capability | None = None,
) -> PoolPlan:
    """The pool plan of one TP rank (vLLM defaults: prefix caching on for Qwen3.5, bf16 KV).

    ``kv_cache_dtype``: any name of :data:`KV_CACHE_DTYPES`; a name vLLM refuses for these models (or an
    explicit float dtype other than the model's) is a SettingError. ``capability`` (e.g. ``(9, 0)``):
    also refuse a dtype vLLM refuses on that GPU generation (:func:`.kv_dtypes.kv_dtype_backend`).
    ``flashinfer_gdn_prefill``: the GDN prefill runs on FlashInfer (vLLM's default on SM90, and on
    SM100/SM120 with CUDA ≥ 13), which with prefix caching aligns blocks to 64 and keeps one more
    state page per request.
    """
    check_tp(spec, tp)
    t = spec.text
    model_dtype = t.dtype if t.dtype in STATE_DTYPE_BYTES else "bfloat16"
    kv = kv_dtype(kv_cache_dtype, model_dtype=model_dtype, capability=capability)
    kv_r = max(1, t.num_key_value_heads // tp)
    attn_1tok = kv_r * kv.slot_bytes(t.head_dim, STATE_DTYPE_BYTES[model_dtype])
    # GDN state: conv in the model dtype; SSM as the Qwen3.5 config hook says (float32), else model
    ssm_dtype = mamba_ssm_cache_dtype
    if ssm_dtype == "auto":
        ssm_dtype = (t.mamba_ssm_dtype if spec.family != "qwen3_next" else None) or model_dtype
    mamba_page = gdn_state(
        spec, tp=tp, conv_dtype=model_dtype, ssm_dtype=ssm_dtype, num_spec=num_speculative_tokens
    ).bytes

    align = max(KERNEL_BLOCK_ALIGNMENT, block_size)
    checkpoint = prefix_caching and flashinfer_gdn_prefill
    if checkpoint:
        align = math.lcm(align, FLASHINFER_GDN_CHECKPOINT_ALIGNMENT)
    attn_block = align * _cdiv(mamba_page, align * attn_1tok)
    attn_block = KERNEL_BLOCK_ALIGNMENT * _cdiv(attn_block, KERNEL_BLOCK_ALIGNMENT)
    final_block = max(block_size, attn_block)
    page = final_block * attn_1tok

    # a pipeline stage plans the pool for its own layers (``layers``; the MTP draft on the last stage)
    stage = layers if layers is not None else range(t.num_hidden_layers)
    last = stage.stop == t.num_hidden_layers
    n_full = sum(1 for i in stage if t.layer_types[i] == "full_attention")
    n_attn = n_full + (spec.mtp_layers if num_speculative_tokens and last else 0)
    n_gdn = len(stage) - n_full
    buckets = [n for n in (n_attn, n_gdn) if n]
    group_size = min(buckets)
    if max(buckets) < group_size * 1.5:
        group_size = max(buckets)

    def split(n: int) -> tuple[int, ...]:
        g = _cdiv(n, group_size) if n else 0
        return tuple(len(range(i, n, g)) for i in range(g))

    mamba_blocks = (
        (2 + num_speculative_tokens + (1 if checkpoint else 0))
        if prefix_caching
        else (1 + num_speculative_tokens)
    )
    return PoolPlan(
        block_size=final_block,
        mamba_page=mamba_page,
        page_bytes=page,
        padding_pct=100 * (page - mamba_page) / mamba_page,
        attn_groups=split(n_attn),
        mamba_groups=split(n_gdn),
        attn_blocks_per_request=_cdiv_n(max_model_len, final_block),
        mamba_blocks_per_request=mamba_blocks,
        attn_bytes_per_token=attn_1tok,
    )


def small_batch_device(device_name: str) -> int:
    """1 for the devices vLLM treats as small whatever their memory (A100, GB10), else 0."""
    name = device_name.lower()
    return int("a100" in name or "gb10" in name)


# (max_num_seqs, max_num_batched_tokens) of vLLM's API server by device tier: small (under 70 GiB, or
# A100/GB10), mid, big (160 GiB and more) (engine/arg_utils.py get_batch_defaults)
BATCH_TIERS = ((256, 2048), (1024, 8192), (1024, 16384))


def batch_tier(device_memory_bytes: Num, small_device: Num = 0) -> tuple[Num, Num]:
    """(small, big) conditions of :data:`BATCH_TIERS` for a device (ints or formulas)."""
    small = smax(lt(device_memory_bytes, 70 * (1 << 30)), small_device)
    return small, le(160 * (1 << 30), device_memory_bytes)


def pick_tier(small: Num, big: Num, values: Sequence[Num]) -> Num:
    """The value of the device's tier from per-tier ``values`` (small, mid, big)."""
    return where(small, values[0], where(big, values[2], values[1]))


def batch_defaults(
    device_memory_bytes: Num, small_device: Num = 0, *, api_server: bool = True
) -> tuple[Num, Num]:
    """(max_num_seqs, max_num_batched_tokens) vLLM picks (engine/arg_utils.py get_batch_defaults):
    devices under 70 GiB (and A100/GB10: ``small_device``) get 256 / 2048, from 160 GiB 1024 / 16384,
    else 1024 / 8192 (for the API server; offline inference doubles the token budget)."""
    small, big = batch_tier(device_memory_bytes, small_device)
    seqs = where(small, 256, 1024)
    server_tokens = where(small, 2048, where(big, 16384, 8192))
    return seqs, server_tokens if api_server else where(small, 8192, 16384)


def pp_partitions(num_hidden_layers: int, pp: int) -> list[range]:
    """Layers of each pipeline stage (vllm/distributed/utils.py get_pp_indices): an even split, the
    remainder spread over the stages before the last, starting from the second-to-last."""
    if pp < 1 or pp > num_hidden_layers:
        raise ValueError(f"pipeline parallel size must be between 1 and {num_hidden_layers}, got {pp}")
    sizes = [num_hidden_layers // pp] * pp
    for i in range(2, num_hidden_layers % pp + 2):
        sizes[-i] += 1
    out, start = [], 0
    for n in sizes:
        out.append(range(start, start + n))
        start += n
    return out
