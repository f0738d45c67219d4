"""file:line citations into the pinned vLLM wheel, resolved against the unzipped source so the
line numbers are those of the version actually read (not typed by hand)."""

from __future__ import annotations

from pathlib import Path

# key -> (path inside the wheel, exact substring of the cited line, what it is)
SOURCES: dict[str, tuple[str, str, str]] = {
    "update_block_size_for_backend": (
        "vllm/platforms/interface.py",
        "def update_block_size_for_backend(cls",
        "entry point, run after the model is built (uniproc/multiproc executor); CudaPlatform inherits it",
    ),
    "preferred_block_size": (
        "vllm/platforms/interface.py",
        "preferred = cls._preferred_block_size_for_backends(",
        "phase 1: block size every backend supports (16 for FLASH_ATTN/TRITON/FLASHINFER)",
    ),
    "_align_hybrid_block_size": (
        "vllm/platforms/interface.py",
        "def _align_hybrid_block_size(",
        "attention page >= mamba page; pads the mamba page",
    ),
    "attn_page_1tok": (
        "vllm/platforms/interface.py",
        "attn_page_size_1_token = backend_cls.customize_spec(",
        "FullAttentionSpec(block_size=1) page, after the backend's customize_spec",
    ),
    "mamba_page_from_model_cls": (
        "vllm/platforms/interface.py",
        "shapes=model_cls.get_mamba_state_shape_from_config(vllm_config),",
        "mamba page = MambaSpec(model-class shapes, dtypes).page_size_bytes",
    ),
    "kernel_block_alignment": (
        "vllm/platforms/interface.py",
        "kernel_block_alignment_size = max(",
        "a = max(min kernel block of first backend, cache_config.block_size)",
    ),
    "align_mode_checkpoint_lcm": (
        "vllm/platforms/interface.py",
        "get_mamba_prefill_checkpoint_alignment(vllm_config) or 1,",
        "align mode: a = lcm(a, GDN prefill checkpoint alignment)",
    ),
    "attn_block_size_formula": (
        "vllm/platforms/interface.py",
        "attn_block_size = kernel_block_alignment_size * cdiv(",
        "block = a * cdiv(mamba_page, a * attn_page_1tok)",
    ),
    "mamba_block_size_align": (
        "vllm/platforms/interface.py",
        "cache_config.mamba_block_size = cache_config.block_size",
        "align mode: mamba_block_size = final block_size",
    ),
    "padding_log": (
        "vllm/platforms/interface.py",
        '"Padding mamba page size by %.2f%% to ensure "',
        "log line 'Padding mamba page size by X%'",
    ),
    "hybrid_config_hook": (
        "vllm/model_executor/models/config.py",
        "class HybridAttentionMambaModelConfig(",
        "early hybrid hook; delegates to MambaModelConfig",
    ),
    "mamba_model_config": (
        "vllm/model_executor/models/config.py",
        "class MambaModelConfig(",
        "prefix caching -> mamba_cache_mode 'align', mamba_block_size=block_size; else 'none', "
        "mamba_block_size=max_model_len",
    ),
    "qwen35_ssm_dtype_hook": (
        "vllm/model_executor/models/config.py",
        "class Qwen3_5ForConditionalGenerationConfig(",
        "copies HF text_config.mamba_ssm_dtype into --mamba-ssm-cache-dtype when 'auto'",
    ),
    "models_config_map_qwen35": (
        "vllm/model_executor/models/config.py",
        '"Qwen3_5MoeForConditionalGeneration": Qwen3_5ForConditionalGenerationConfig,',
        "hook registered for the Qwen3.5 architectures (none for Qwen3NextForCausalLM)",
    ),
    "attention_spec_page": (
        "vllm/v1/kv_cache_interface.py",
        "def unpadded_page_size_bytes(self) -> int:",
        "AttentionSpec page = num_heads * num_states * (head_size + head_size_v) * dtype_size",
    ),
    "full_attention_max_memory": (
        "vllm/v1/kv_cache_interface.py",
        "return cdiv(max_model_len, self.block_size) * self.page_size_bytes",
        "FullAttentionSpec.max_memory_usage_bytes",
    ),
    "mamba_spec_page": (
        "vllm/v1/kv_cache_interface.py",
        "class MambaSpec(KVCacheSpec):",
        "MambaSpec: page = sum(prod(shape)*dtype_size) or page_size_padded",
    ),
    "mamba_max_memory": (
        "vllm/v1/kv_cache_interface.py",
        "2 + self.num_speculative_blocks + self.num_prefill_checkpoint_blocks",
        "MambaSpec.max_memory_usage_bytes: align -> 2+spec+ckpt pages, none -> 1+spec",
    ),
    "gdn_state_shape": (
        "vllm/model_executor/layers/mamba/mamba_utils.py",
        "def gated_delta_net_state_shape(",
        "conv (K-1+num_spec, conv_dim/tp) [SD], ssm (nv/tp, dv, dk)",
    ),
    "gdn_state_dtype": (
        "vllm/model_executor/layers/mamba/mamba_utils.py",
        "def gated_delta_net_state_dtype(",
        "-> _mamba_state_dtype: conv = mamba_cache_dtype|model dtype; ssm = mamba_ssm_cache_dtype|conv",
    ),
    "mamba_state_dtype": (
        "vllm/model_executor/layers/mamba/mamba_utils.py",
        "def _mamba_state_dtype(",
        "dtype rule",
    ),
    "conv_layout": (
        "vllm/model_executor/layers/mamba/mamba_utils.py",
        "def get_conv_state_layout()",
        "SD default; VLLM_SSM_CONV_STATE_LAYOUT=DS transposes (same bytes)",
    ),
    "qwen35_state_shape_hook": (
        "vllm/model_executor/models/qwen3_5.py",
        "def get_mamba_state_shape_from_config(",
        "Qwen3_5ForCausalLMBase hook (num_spec = speculative num_speculative_tokens)",
    ),
    "qwen35_state_dtype_hook": (
        "vllm/model_executor/models/qwen3_5.py",
        "def get_mamba_state_dtype_from_config(",
        "Qwen3_5ForCausalLMBase dtype hook",
    ),
    "qwen3next_state_shape_hook": (
        "vllm/model_executor/models/qwen3_next.py",
        "def get_mamba_state_shape_from_config(",
        "Qwen3NextForCausalLM hook",
    ),
    "qwen3next_kv_heads": (
        "vllm/model_executor/models/qwen3_next.py",
        "self.num_kv_heads = max(1, self.total_num_kv_heads // tp_size)",
        "attention layer KV heads per rank (Qwen3.5 reuses Qwen3NextAttention)",
    ),
    "mtp_layers_qwen35": (
        "vllm/model_executor/models/qwen3_5_mtp.py",
        'self.num_mtp_layers = getattr(config, "mtp_num_hidden_layers", 1)',
        "MTP draft = mtp_num_hidden_layers full-attention layers (KV only, no GDN state)",
    ),
    "mtp_layers_qwen3next": (
        "vllm/model_executor/models/qwen3_next_mtp.py",
        'self.num_mtp_layers = getattr(config, "num_nextn_predict_layers", 1)',
        "Qwen3-Next MTP layers",
    ),
    "gdn_checkpoint_alignment": (
        "vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py",
        "self._checkpoint_alignment = FLASHINFER_GDN_CHECKPOINT_ALIGNMENT",
        "align mode + FlashInfer GDN prefill: 64-token checkpoint grid, +1 checkpoint page/request",
    ),
    "gdn_prefill_backend_choice": (
        "vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py",
        "if current_platform.is_device_capability(90):",
        "FlashInfer GDN prefill: SM90 always; SM100/SM120 with head_k_dim 128 and CUDA >= 13; else Triton",
    ),
    "gdn_checkpoint_const": (
        "vllm/v1/attention/backends/gdn_attn.py",
        "FLASHINFER_GDN_CHECKPOINT_ALIGNMENT = 64",
        "checkpoint grid",
    ),
    "mamba_get_kv_cache_spec": (
        "vllm/model_executor/layers/mamba/abstract.py",
        "def get_kv_cache_spec(self, vllm_config: VllmConfig) -> KVCacheSpec | None:",
        "MambaSpec(block_size=mamba_block_size, page_size_padded, num_speculative_blocks=num_spec)",
    ),
    "cache_block_size_default": (
        "vllm/config/cache.py",
        "DEFAULT_BLOCK_SIZE: ClassVar[int] = 16",
        "default block size",
    ),
    "gpu_memory_utilization_default": (
        "vllm/config/cache.py",
        "gpu_memory_utilization: float = Field(default=0.92, gt=0, le=1)",
        "default 0.92",
    ),
    "enable_prefix_caching_default": (
        "vllm/engine/arg_utils.py",
        "default_prefix_caching = model_config.is_prefix_caching_supported",
        "prefix caching on by default (hybrid generative models: True)",
    ),
    "prefix_caching_hybrid": (
        "vllm/config/model.py",
        'logger.debug("Generative hybrid models support prefix caching.")',
        "is_prefix_caching_supported for hybrid",
    ),
    "mamba_cache_mode_field": (
        "vllm/config/cache.py",
        'mamba_cache_mode: MambaCacheMode = "none"',
        "none | align",
    ),
    "get_num_kv_heads": (
        "vllm/config/model.py",
        "return max(1, total_num_kv_heads // parallel_config.tensor_parallel_size)",
        "KV heads per rank, replicated when tp > kv",
    ),
    "tp_heads_check": (
        "vllm/config/model.py",
        "if total_num_attention_heads % tensor_parallel_size != 0:",
        "TP must divide num_attention_heads",
    ),
    "batch_defaults": (
        "vllm/engine/arg_utils.py",
        "def get_batch_defaults(",
        "max_num_seqs / max_num_batched_tokens by GPU memory tier",
    ),
    "groups_uniform_page": (
        "vllm/v1/core/kv_cache_planning.py",
        "def _get_kv_cache_groups_uniform_page_size(",
        "hybrid grouping: equal-size groups, layers[i::num_groups]",
    ),
    "group_size_rule": (
        "vllm/v1/core/kv_cache_planning.py",
        "if max_num_layers < min_num_layers * 1.5:",
        "group_size = min bucket, or max bucket if max < 1.5*min",
    ),
    "bytes_per_block": (
        "vllm/v1/core/kv_cache_planning.py",
        "def _get_kv_cache_bytes_per_block(",
        "pool block = largest group's sum of pages",
    ),
    "num_blocks": (
        "vllm/v1/core/kv_cache_planning.py",
        "num_blocks = available_memory // bytes_per_block",
        "num_blocks = available // bytes_per_block",
    ),
    "max_memory_from_groups": (
        "vllm/v1/core/kv_cache_planning.py",
        "def _max_memory_usage_bytes_from_groups(",
        "one request = bytes_per_block * sum over groups of cdiv(max_memory_usage, page)",
    ),
    "null_block_reserve": (
        "vllm/v1/core/kv_cache_planning.py",
        "avail_mem - _pool_bytes_per_block_from_builder(builder, vllm_config, groups)",
        "admission check plans against available - one block (null block)",
    ),
    "check_enough_memory": (
        "vllm/v1/core/kv_cache_planning.py",
        "def _check_enough_kv_cache_memory(",
        "raises 'To serve at least one request with the model's max seq len ...'",
    ),
    "error_message": (
        "vllm/v1/core/kv_cache_planning.py",
        'f"To serve at least one request with the model\'s max seq len "',
        "error text",
    ),
    "estimate_max_model_len": (
        "vllm/v1/core/kv_cache_planning.py",
        "def _estimate_max_model_len_from_groups(",
        "binary search used in the error message",
    ),
    "get_kv_cache_configs": (
        "vllm/v1/core/kv_cache_planning.py",
        "def get_kv_cache_configs(",
        "planning entry point",
    ),
    "max_concurrency": (
        "vllm/v1/core/kv_cache_utils.py",
        "def get_max_concurrency_for_kv_cache_config(",
        "num_blocks / sum over groups of cdiv(max_memory_usage, page)",
    ),
    "capacity_log": (
        "vllm/v1/core/kv_cache_utils.py",
        '"Maximum concurrency for %s tokens per request: %.2fx",',
        "'GPU KV cache size: N tokens, Maximum concurrency for L tokens per request: C x'",
    ),
    "kv_cache_size_tokens": (
        "vllm/v1/core/kv_cache_utils.py",
        "return int(max_concurrency * max_model_len), max_concurrency",
        "tokens = int(concurrency * max_model_len)",
    ),
    "determine_available_memory": (
        "vllm/v1/worker/gpu_worker.py",
        "def determine_available_memory(self) -> int:",
        "KV budget",
    ),
    "available_kv_formula": (
        "vllm/v1/worker/gpu_worker.py",
        "self.available_kv_cache_memory_bytes = (",
        "requested - non_kv_cache_memory - cudagraph_estimate",
    ),
    "requested_memory": (
        "vllm/v1/worker/utils.py",
        "init_snapshot.total_memory * cache_config.gpu_memory_utilization",
        "requested = ceil(total * gpu_memory_utilization)",
    ),
    "non_kv_cache_memory": (
        "vllm/utils/mem_utils.py",
        "result.non_kv_cache_memory = result.total_consumed + result.transient_peak_headroom",
        "non-KV = (free before create - free after profile) + (torch peak - torch allocated)",
    ),
    "cudagraph_estimate_env": (
        "vllm/envs.py",
        "VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS: bool = True",
        "CUDA graph estimate subtracted by default",
    ),
    "model_runner_kv_spec": (
        "vllm/v1/worker/gpu_model_runner.py",
        "def get_kv_cache_spec(self) -> dict[str, KVCacheSpec]:",
        "per-layer specs; draft layers tagged is_draft",
    ),
}


def resolve(src: Path) -> dict[str, dict]:
    out = {}
    for key, (rel, needle, what) in SOURCES.items():
        lines = (Path(src) / rel).read_text().splitlines()
        hits = [i + 1 for i, line in enumerate(lines) if needle in line]
        if not hits:
            raise SystemExit(f"source citation {key}: {needle!r} not found in {rel}")
        out[key] = {"at": f"{rel}:{hits[0]}", "what": what}
    return out
