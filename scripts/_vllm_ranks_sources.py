"""file:line citations into the pinned vLLM wheel for the per-rank weight rules, resolved against
the unzipped source (line numbers of the version actually read, not typed by hand)."""

from __future__ import annotations

from pathlib import Path

# key -> (path inside the wheel, exact substring of the cited line, what it is)
SOURCES: dict[str, tuple[str, str, str]] = {
    "make_layers": (
        "vllm/model_executor/models/utils.py",
        "start_layer, end_layer = get_pp_indices(",
        "decoder layers outside [start, end) of this PP rank are PPMissingLayer (no weights)",
    ),
    "get_pp_indices": (
        "vllm/distributed/utils.py",
        "def get_pp_indices(",
        "even split, remainder to the stages before the last",
    ),
    "embed_every_stage_qwen35": (
        "vllm/model_executor/models/qwen3_5.py",
        "self.embed_tokens = VocabParallelEmbedding(",
        "Qwen3_5Model builds embed_tokens on every PP rank (no is_first_rank guard)",
    ),
    "embed_every_stage_qwen3next": (
        "vllm/model_executor/models/qwen3_next.py",
        "self.embed_tokens = VocabParallelEmbedding(",
        "Qwen3NextModel builds embed_tokens on every PP rank (no is_first_rank guard)",
    ),
    "final_norm_last_stage": (
        "vllm/model_executor/models/qwen3_5.py",
        "self.norm = Qwen3_5RMSNorm(config.hidden_size, eps=config.rms_norm_eps)",
        "final norm on the last PP rank only (PPMissingLayer elsewhere)",
    ),
    "lm_head_last_stage": (
        "vllm/model_executor/models/qwen3_5.py",
        "self.lm_head = ParallelLMHead(",
        "lm_head on the last PP rank only; tied -> shares embed_tokens' parameter",
    ),
    "lm_head_tie": (
        "vllm/model_executor/models/qwen3_5.py",
        "self.lm_head = self.lm_head.tie_weights(self.model.embed_tokens)",
        "tie_word_embeddings: lm_head reuses the embedding parameter (one copy per rank)",
    ),
    "vision_tower_marked": (
        "vllm/model_executor/models/qwen3_5.py",
        'with self._mark_tower_model(vllm_config, {"image", "video"}):',
        "the vision tower is a 'tower model' built unconditionally by the model __init__",
    ),
    "tower_skip_rule": (
        "vllm/model_executor/models/interfaces.py",
        "vllm_config.use_v2_model_runner and not get_pp_group().is_first_rank",
        "tower skipped (meta placeholder) when every modality limit is 0 (--language-model-only, "
        "--limit-mm-per-prompt 0) or, under Model Runner V2, on PP ranks after the first",
    ),
    "language_model_only": (
        "vllm/config/multimodal.py",
        "if self.language_model_only:",
        "--language-model-only makes every modality limit 0",
    ),
    "v2_runner_default": (
        "vllm/config/vllm.py",
        "def use_v2_model_runner(self) -> bool:",
        "Model Runner V2 unless VLLM_USE_V2_MODEL_RUNNER=0, no Triton, or an unsupported feature",
    ),
    "mtp_not_in_main_model": (
        "vllm/model_executor/models/qwen3_5.py",
        '| WeightsMapper(orig_to_new_prefix={"mtp.": None})',
        "the main model drops mtp.* checkpoint tensors: MTP weights exist only in the drafter",
    ),
    "mtp_drafter_embed": (
        "vllm/model_executor/models/qwen3_5_mtp.py",
        "self.embed_tokens = VocabParallelEmbedding(",
        "the MTP drafter builds its own embedding (shared with the target when PP=1)",
    ),
    "drafter_share_embed_pp": (
        "vllm/v1/worker/gpu/spec_decode/eagle/utils.py",
        "if get_pp_group().world_size > 1 and not hasattr(",
        "V2 runner: with PP > 1 an MTP drafter keeps its own embedding copy",
    ),
    "vocab_pad": (
        "vllm/model_executor/layers/vocab_parallel_embedding.py",
        "self.num_embeddings_padded = pad_vocab_size(",
        "vocab padded to a multiple of 64 (DEFAULT_VOCAB_PADDING_SIZE), then / tp",
    ),
    "vocab_per_partition": (
        "vllm/model_executor/layers/vocab_parallel_embedding.py",
        "self.num_embeddings_per_partition = divide(",
        "rows per rank = padded vocab / tp",
    ),
    "kv_heads_replicated": (
        "vllm/model_executor/layers/linear.py",
        "self.num_kv_head_replicas = divide(tp_size, self.total_num_kv_heads)",
        "tp > KV heads: each rank holds one KV head (replicated tp / kv_heads times)",
    ),
    "row_parallel_bias": (
        "vllm/model_executor/layers/linear.py",
        "torch.empty(self.output_size, dtype=params_dtype),",
        "RowParallelLinear bias: full output size on every rank (not sharded)",
    ),
    "gdn_conv1d": (
        "vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py",
        "self.conv1d = ColumnParallelLinear(",
        "GDN conv1d: ColumnParallel over conv_dim (2*key_dim + value_dim) / tp",
    ),
    "gdn_a_log_fp32": (
        "vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py",
        "dtype=torch.float32,",
        "A_log allocated float32, num_v_heads / tp",
    ),
    "gdn_norm_dtype": (
        "vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py",
        "self.norm = RMSNormGated(",
        "GDN gated norm: head_v_dim weights in the model dtype (BF16), replicated; the checkpoint "
        "stores it F32",
    ),
    "moe_tp_across_dp": (
        "vllm/model_executor/layers/fused_moe/config.py",
        "tp_size, tp_rank = FusedMoEParallelConfig.flatten_tp_across_dp_and_pcp(",
        "MoE TP size = tp * dp (* pcp): without EP, experts are split tp*dp ways even under DP",
    ),
    "moe_ep_size": (
        "vllm/model_executor/layers/fused_moe/config.py",
        "ep_size = tp_size",
        "with --enable-expert-parallel: EP size = tp * dp, whole experts, MoE TP = 1",
    ),
    "determine_expert_map": (
        "vllm/model_executor/layers/fused_moe/expert_map_manager.py",
        "def determine_expert_map(",
        "local experts per EP rank (linear placement: remainder to the first ranks)",
    ),
    "moe_round_up_trtllm": (
        "vllm/model_executor/layers/fused_moe/oracle/unquantized.py",
        "intermediate_size = round_up(intermediate_size, 128)",
        "FlashInfer TRTLLM BF16 MoE (chosen on SM100): expert intermediate per partition rounded up "
        "to 128 before allocation",
    ),
    "moe_backend_priority": (
        "vllm/model_executor/layers/fused_moe/oracle/unquantized.py",
        "if current_platform.is_device_capability_family(90):",
        "SM90 prefers Triton (no round-up); SM100 tries FlashInfer TRTLLM first",
    ),
    "shared_expert_tp": (
        "vllm/model_executor/models/qwen3_next.py",
        "disable_tp=self.replicate_shared_expert,",
        "shared expert: TP-sharded by tp even with EP (replicated only for misaligned Quark MX)",
    ),
    "router_replicated": (
        "vllm/model_executor/models/qwen3_next.py",
        "self.gate = GateLinear(",
        "router replicated on every rank",
    ),
    "rope_cache": (
        "vllm/model_executor/layers/rotary_embedding/base.py",
        'self.register_buffer("cos_sin_cache", cache, persistent=False)',
        "cos_sin_cache buffer (max_position_embeddings x rotary_dim, model dtype); one per rank, "
        "shared by all layers through get_rope's cache",
    ),
    "vision_rope": (
        "vllm/model_executor/models/qwen3_vl.py",
        "max_position=8192,",
        "vision rotary cache: 8192 x (vision head_dim / 2), model dtype, on the stage holding the tower",
    ),
    "attn_scale_buffers": (
        "vllm/model_executor/layers/attention/attention.py",
        'layer.register_buffer("_k_scale", torch.tensor(1.0, dtype=torch.float32))',
        "4 float32 scale buffers (_k/_v/_q/_prob_scale) per attention layer",
    ),
    "expert_map_buffer": (
        "vllm/model_executor/layers/fused_moe/routed_experts.py",
        '"_expert_map", self.expert_map_manager.expert_map, persistent=False',
        "with EP: an int32 expert map [num_experts] buffer per MoE layer",
    ),
    "lm_head_every_stage_qwen3next": (
        "vllm/model_executor/models/qwen3_next.py",
        "self.lm_head = ParallelLMHead(",
        "Qwen3NextForCausalLM builds lm_head on every PP rank (no is_last_rank guard)",
    ),
    "sequence_parallel_moe": (
        "vllm/config/parallel.py",
        "def use_sequence_parallel_moe(self) -> bool:",
        "EP with tp > 1 and dp > 1 (default all2all backend allgather_reducescatter)",
    ),
    "shared_expert_replicated_sp": (
        "vllm/model_executor/models/qwen2_moe.py",
        "disable_tp = disable_tp or is_sequence_parallel",
        "sequence-parallel MoE: the shared expert MLP is not TP-sharded",
    ),
    "kv_cache_scale_params": (
        "vllm/model_executor/layers/quantization/kv_cache.py",
        "layer.q_scale = KVCacheScaleParameter()",
        "FP8 checkpoints: q/k/v/prob scale parameters per attention layer (scalars, model dtype)",
    ),
    "fp8_block_scale": (
        "vllm/model_executor/layers/quantization/fp8.py",
        'layer.register_parameter("weight_scale_inv", scale)',
        "block FP8: weight_scale_inv per partition, float32",
    ),
    "fp8_moe_refine": (
        "vllm/model_executor/layers/fused_moe/oracle/fp8.py",
        "def refine_fp8_moe_block_shape(",
        "block FP8 experts whose per-rank width is not a multiple of 128: scale blocks refined to "
        "gcd(128, width, hidden) (Triton kernels only); the width itself is not padded",
    ),
    "fp8_block_shape_check": (
        "vllm/model_executor/layers/quantization/utils/fp8_utils.py",
        "def validate_fp8_block_shape(",
        "block FP8 refuses a TP split whose per-rank size is not a multiple of 128",
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
