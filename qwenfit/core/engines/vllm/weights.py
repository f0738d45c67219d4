"""The weight bytes vLLM 0.33.0 allocates on one rank, per tensor role — measured, not inferred.

vLLM's own model classes were built full-size on the meta device for every rank of TP {1,2,4,8} x
PP {1,2,3,4} x DP/EP, H100 (SM90) and B200 (SM100), BF16 and block FP8
(scripts/vllm_rank_weights.py -> tests/fixtures/vllm/rank_weights.json: 4,546 rank rows, every
parameter counted). This rule reproduces each of them to the byte (tests/engines/test_vllm_rank_weights.py).
Paths are under ``vllm/`` in the 0.33.0 wheel:

- ``embed_tokens`` is built on every PP stage (models/qwen3_5.py:251, qwen3_next.py:660); Qwen3.5's
  lm_head only on the last (qwen3_5.py:347; tied: the embedding), Qwen3-Next's on every stage
  (qwen3_next.py:851); the vision tower on the first stage (Model Runner V2); ``mtp.*`` is dropped by
  the main model (qwen3_5.py:478) and belongs to the drafter.
- Vocab rows are padded to a multiple of 64 then split over TP (vocab_parallel_embedding.py:289/304);
  KV heads ``max(1, kv // tp)`` (linear.py:1068); row-parallel weights split their input dimension and
  keep their bias whole (linear.py:1758); norms, router and gates are replicated.
- Routed experts: without EP the MoE TP group spans DP, so each expert's width is split tp x dp ways
  (fused_moe/config.py:1207); with EP every rank holds whole experts, ``E // ep`` plus one on the
  first ``E % ep`` ranks (fused_moe/expert_map_manager.py:22). On SM100 the FlashInfer TRTLLM MoE
  kernel rounds a BF16 per-rank expert width up to 128 (fused_moe/oracle/unquantized.py:392).
- EP with tp > 1 and dp > 1 is sequence-parallel MoE: the shared expert is replicated
  (config/parallel.py:768, qwen2_moe.py:90).
- The GDN gated norm (F32 in the checkpoint) is allocated in the model dtype; ``A_log`` stays F32.
- Block FP8: one float32 ``weight_scale_inv`` grid of 128-blocks per fused parameter per rank
  (quantization/fp8.py:339); experts whose width is not a multiple of 128 get blocks of
  gcd(128, width, hidden) (fused_moe/oracle/fp8.py:292); 4 model-dtype KV scales per attention layer
  (quantization/kv_cache.py:69).

After loading (``marlin_fp8=True``): a GPU without FP8 tensor cores (compute capability 7.5-8.8: Turing,
Ampere) runs block-FP8 linears as weight-only Marlin (kernels/linear/scaled_mm/marlin.py:65-80): the weight
is repacked with the same bytes, zero-padded to Marlin's thread tile
(quantization/utils/marlin_utils.py:222-244 ``marlin_padded_nk``), and the float32 128x128 block-scale grid
becomes group-wise scales in the model dtype, one per 128 inputs and output column
(quantization/utils/marlin_utils_fp8.py:179-201: ``repeat_interleave(block_n)``, ``marlin_pad_scales``,
``marlin_permute_scales``). This is what "Model loading took" reports on an RTX 3090. Routed experts are
left as created (their Marlin MoE repack is not modelled here).

Buffers (:func:`vllm_rank_buffer_bytes`, measured with the parameters): chiefly the rotary embedding's
``cos_sin_cache`` [max_position_embeddings, rotary_dim] in the model dtype, one per process (get_rope caches
the object, model_executor/layers/rotary_embedding/__init__.py:84; base.py:58-63); 32 MiB for every
Qwen3.5. They count in "Model loading took". Qwen3.5's rotary embedding is an MRoPE (``mrope_section`` in
its config), whose cache covers ``max_position_embeddings x positions_factor`` positions
(rotary_embedding/mrope.py:351); 0.33 passes a factor of 1 unless video pruning is on
(models/qwen3_vl.py:1818-1825), but every vLLM before 0.32 multiplies by 4 (mrope.py:238 in 0.18.1-0.31.0:
``cache_max_position_num = max_position_embeddings * 4``): 128 MiB, not 32, for every Qwen3.5 — the
0.09-0.10 GiB the field logs of 0.18-0.25 print above the parameters (:func:`mrope_positions_factor`).
"""

from __future__ import annotations

import math

from qwenfit.core.formats.weights import WeightEntry, WeightMap
from qwenfit.core.model.inventory import ROUTED_EXPERT_ROLES
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.units import cdiv

__all__ = [
    "FUSED",
    "REPLICATED",
    "ROW_PARALLEL",
    "SHARED_EXPERT",
    "marlin_padded_nk",
    "moe_width_per_rank",
    "mrope_positions_factor",
    "rank_slice",
    "vllm_drafter_weight_bytes",
    "vllm_rank_buffer_bytes",
    "vllm_rank_weight_bytes",
]

VOCAB_PAD = 64  # vocab_parallel_embedding.py DEFAULT_VOCAB_PADDING_SIZE
FP8_BLOCK = 128
REPLICATED = frozenset({"norm", "attn_q_norm", "attn_k_norm", "gdn_norm", "router", "shared_expert_gate",
                         "mtp_norm", "vision_norm", "vision_merger_norm", "vision_patch_embed",
                         "vision_pos_embed"})  # fmt: skip
ROW_PARALLEL = frozenset({"attn_o", "gdn_out", "mlp_down", "shared_expert_down_proj", "vision_attn_proj",
                           "vision_mlp_fc2", "vision_merger_fc2"})  # fmt: skip
SHARED_EXPERT = frozenset({"shared_expert_gate_proj", "shared_expert_up_proj", "shared_expert_down_proj"})
FUSED = {  # checkpoint tensors vLLM fuses into one parameter (one FP8 scale grid each)
    "attn_q": "qkv", "attn_k": "qkv", "attn_v": "qkv", "gdn_qkv": "qkvz", "gdn_z": "qkvz", "gdn_b": "ba",
    "gdn_a": "ba", "mlp_gate": "gate_up", "mlp_up": "gate_up", "shared_expert_gate_proj": "se_gate_up",
    "shared_expert_up_proj": "se_gate_up", "expert_gate": "w13", "expert_up": "w13",
}  # fmt: skip


def moe_width_per_rank(spec: ModelSpec, tp: int, dp: int, ep: bool, sm100: bool, fp8: bool) -> int:
    """The expert width (moe_intermediate_size) one rank allocates."""
    i = spec.text.moe_intermediate_size
    width = i if ep and tp * dp > 1 else i // (tp * dp)
    return cdiv(width, 128) * 128 if sm100 and not fp8 else width


def marlin_padded_nk(n: int, k: int, group: int = -1) -> tuple[int, int]:
    """Marlin's thread-tile padding (quantization/utils/marlin_utils.py:222-244): (n % 64, k % 128) or
    (n % 128, k % 64), k kept a multiple of the group; the cheaper of the two."""
    g = group if group > 0 else 1
    c1 = (cdiv(n, 64) * 64, cdiv(k, math.lcm(128, g)) * math.lcm(128, g))
    c2 = (cdiv(n, 128) * 128, cdiv(k, math.lcm(64, g)) * math.lcm(64, g))
    return min((c1, c2), key=lambda nk: (nk[0] * nk[1], nk[0] + nk[1]))


def mrope_positions_factor(
    spec: ModelSpec, version: tuple[int, int] | None, video_pruning: bool = False
) -> int:
    """Positions per ``max_position_embeddings`` in the rotary cache of vLLM ``version`` ((major, minor);
    None: 0.33): Qwen3.5's MRoPE keeps 4x before 0.32 (mrope.py:238), from 0.32 only with video pruning
    (models/qwen3_vl.py:1818-1825); Qwen3-Next's plain RoPE 1x (rotary_embedding/__init__.py:113)."""
    if spec.family == "qwen3_next":
        return 1
    return 4 if video_pruning or (version is not None and version < (0, 32)) else 1


def vllm_rank_buffer_bytes(
    spec: ModelSpec, *, stage: range | None = None, tp: int = 1, dp: int = 1, expert_parallel: bool = False,
    vision: bool = True, rope_positions_factor: int = 1,
) -> int:  # fmt: skip
    """Buffers a rank allocates beside its parameters (the rank fixture's ``buffer_bytes``, every row): the
    rotary cos/sin cache (one per process, shared by every layer and the drafter through get_rope's cache:
    max_position_embeddings x ``rope_positions_factor`` (:func:`mrope_positions_factor`) x rotary dim, model
    dtype), the vision tower's (8192 x vision head_dim / 2) on the first stage, 4 float32 scales per
    attention layer, and with EP an int32 expert map per MoE layer."""
    t = spec.text
    layers = stage if stage is not None else range(t.num_hidden_layers)
    rotary = int(t.head_dim * t.partial_rotary_factor)
    total = t.max_position_embeddings * rope_positions_factor * rotary * 2
    if vision and spec.vision is not None and layers.start == 0:
        total += 8192 * (spec.vision.hidden_size // spec.vision.num_heads // 2) * 2
    total += 16 * sum(1 for i in layers if t.layer_types[i] == "full_attention")
    if t.num_experts and expert_parallel and tp * dp > 1:
        total += 4 * t.num_experts * len(layers)
    return total


def rank_slice(e: WeightEntry, spec: ModelSpec, tp: int, seq_parallel_moe: bool) -> tuple[int, int]:
    """(rows, cols) of one rank's slice of a checkpoint tensor (cols: every dim after the first)."""
    t = spec.text
    out, inp = e.shape[0], math.prod(e.shape[1:])
    if e.role in ("embed", "lm_head"):
        return cdiv(t.vocab_size, VOCAB_PAD) * VOCAB_PAD // tp, inp
    if e.role in REPLICATED or (seq_parallel_moe and e.role in SHARED_EXPERT):
        return out, inp
    if e.role in ("attn_k", "attn_v"):
        return max(1, t.num_key_value_heads // tp) * t.head_dim, inp
    if e.role in ROW_PARALLEL:
        return (out, inp) if e.name.endswith(".bias") else (out, inp // tp)
    return out // tp, inp


def _sum_bytes(
    spec: ModelSpec, entries: list[WeightEntry], *, tp: int, dp: int, ep: bool, sm100: bool, ep_rank: int,
    n_attn: int, marlin_fp8: bool = False,
) -> int:  # fmt: skip
    t = spec.text
    seq_parallel_moe = ep and tp > 1 and dp > 1
    total = 0
    fp8_groups: dict[tuple[str, int | None, str], list[tuple[int, int, int, int]]] = {}
    experts: set[tuple[str, int | None, str]] = set()
    for e in entries:
        fp8 = e.type.lower().startswith("fp8")
        block = FP8_BLOCK
        if e.role in ROUTED_EXPERT_ROLES:
            width = moe_width_per_rank(spec, tp, dp, ep, sm100, fp8)
            size = tp * dp if ep else 1
            n = t.num_experts // size + (1 if ep_rank < t.num_experts % size else 0)
            rows, cols = (width, t.hidden_size) if e.role != "expert_down" else (t.hidden_size, width)
            block = FP8_BLOCK if width % FP8_BLOCK == 0 else math.gcd(FP8_BLOCK, width, t.hidden_size)
        else:
            n = 1
            rows, cols = rank_slice(e, spec, tp, seq_parallel_moe)
        if fp8:
            total += n * rows * cols
            key = (e.component, e.layer, FUSED.get(e.role, e.name))
            fp8_groups.setdefault(key, []).append((n, rows, cols, block))
            if e.role in ROUTED_EXPERT_ROLES:
                experts.add(key)
        elif e.role == "gdn_A_log":
            total += n * rows * cols * 4
        else:
            total += n * rows * cols * 2  # the model dtype (a F32 GDN norm is allocated BF16)
    for key, parts in fp8_groups.items():
        n, cols, block = parts[0][0], parts[0][2], parts[0][3]
        rows = sum(p[1] for p in parts)
        if marlin_fp8 and key not in experts:
            pn, pk = marlin_padded_nk(rows, cols, block)
            total += pn * pk - rows * cols + pk // block * pn * 2  # padded weight, group-wise scales
        else:
            total += n * cdiv(rows, block) * cdiv(cols, block) * 4
    if fp8_groups:
        total += 4 * 2 * n_attn
    return total


def vllm_rank_weight_bytes(
    spec: ModelSpec, weights: WeightMap, *, tp: int = 1, stage: range | None = None, dp: int = 1,
    expert_parallel: bool = False, sm100: bool = False, ep_rank: int = 0, marlin_fp8: bool = False,
) -> int:  # fmt: skip
    """Weight bytes vLLM allocates on one rank of the main model (``stage``: the PP stage's layers);
    ``marlin_fp8``: after loading on a GPU that runs FP8 through Marlin (compute capability < 8.9)."""
    t = spec.text
    layers = stage if stage is not None else range(t.num_hidden_layers)
    first, last = layers.start == 0, layers.stop == t.num_hidden_layers
    keep = []
    for e in weights.tensors:
        if e.component == "mtp":
            continue
        if e.component == "vision":
            kept = first
        elif e.layer is not None:
            kept = e.layer in layers
        elif e.role == "embed":
            kept = True
        elif e.role == "lm_head":
            kept = last or spec.family == "qwen3_next"
        else:
            kept = last
        if kept:
            keep.append(e)
    n_attn = sum(1 for i in layers if t.layer_types[i] == "full_attention")
    return _sum_bytes(
        spec, keep, tp=tp, dp=dp, ep=expert_parallel, sm100=sm100, ep_rank=ep_rank, n_attn=n_attn,
        marlin_fp8=marlin_fp8,
    )  # fmt: skip


def vllm_drafter_weight_bytes(
    spec: ModelSpec, weights: WeightMap, *, tp: int = 1, pp: int = 1, dp: int = 1,
    expert_parallel: bool = False, sm100: bool = False, marlin_fp8: bool = False,
) -> int:  # fmt: skip
    """What the MTP drafter keeps allocated on the last stage: the ``mtp.*`` tensors, plus its own
    embedding when pp > 1 (v1/worker/gpu/spec_decode/eagle/utils.py:59; lm_head is the target's)."""
    entries = [e for e in weights.tensors if e.component == "mtp"]
    if pp > 1:
        entries += [e for e in weights.tensors if e.role == "embed"]
    return _sum_bytes(spec, entries, tp=tp, dp=dp, ep=expert_parallel, sm100=sm100, ep_rank=0,
                      n_attn=spec.mtp_layers, marlin_fp8=marlin_fp8)  # fmt: skip
