"""Exact weight bytes of GPU-side quantization formats (FP8, AWQ, GPTQ, compressed-tensors, NVFP4,
MXFP4, bitsandbytes, MLX), per tensor, with every scale, zero point, group index, packing pad and
per-module scalar the packer writes, and the modules each published recipe leaves in BF16.

``gpu_weights(spec, fmt)`` walks the inventory and gives each tensor a storage type and an exact
byte count. A format is two things, kept apart here:

* a **storage layout** (how a quantized matrix is written: packed codes, scales, zeros, g_idx, shape
  and scalar tensors), taken from the packer's own source, and
* a **recipe** (which modules are quantized, which stay BF16/F32), taken from the published
  quantization scripts / checkpoints for Qwen3.5.

Shapes follow the inventory: ``[out, in]`` (PyTorch order), routed experts ``[E, out, in]``, each
expert quantized as its own module (every GPU recipe below un-fuses ``experts.gate_up_proj`` into
per-expert ``gate_proj``/``up_proj`` Linears, so per-module overheads are counted per expert).
Bytes are integers; ``GB`` below is 1e9 bytes. Sources are named ``repo:path@commit`` (read with
the project's public-code search) or by URL.

Formats and recipes
-------------------
===================  ==========================================================================
name                 quantized / kept, layout (bits per weight incl. overhead, [out, in] matrix)
===================  ==========================================================================
bf16, fp16           nothing quantized; the official checkpoint (BF16, ``A_log`` and GDN norm F32);
                     fp16 stores the BF16 tensors as F16. Repos ship vision + MTP.
fp8                  Qwen official ``quant_method: fp8``: F8_E4M3 weight + BF16 ``weight_scale_inv``
                     ``[ceil(out/128), ceil(in/128)]`` (config.json). FP8: self_attn q/k/v/o,
                     linear_attn in_proj_qkv/in_proj_z/out_proj, shared experts, routed experts,
                     dense MLP, and the same modules of the MTP layer. Kept: embeddings, lm_head,
                     router, shared_expert_gate, in_proj_a/b(/ba), conv1d, dt_bias, norms, mtp.fc,
                     the whole vision tower (BF16), A_log and the GDN norm (F32). Vision + MTP shipped.
fp8-dynamic          compressed-tensors FP8_DYNAMIC (llm-compressor): F8_E4M3 weight + BF16
                     ``weight_scale [out, 1]``; no activation scales (dynamic per token). FP8:
                     self_attn q/k/v/o, shared experts, routed experts, dense MLP; everything
                     under linear_attn, router, shared_expert_gate, lm_head, embeddings, vision kept.
                     Published repo (xega-ai/Qwen3.5-35B-A3B-FP8-Dynamic) is text-only.
w8a8                 compressed-tensors INT8_W8A8 (``int-quantized``): int8 weight + BF16
                     ``weight_scale [out, 1]``, symmetric (no zero point), same modules as fp8-dynamic.
w4a16, w8a16         compressed-tensors ``pack-quantized``, symmetric, group 128: int32
                     ``weight_packed [out, ceil(in/pack)]`` + BF16 ``weight_scale [out, ceil(in/G)]``
                     + int64 ``weight_shape [2]``; 4.125 / 8.125 bpw at G=128. Modules as fp8-dynamic.
awq                  AWQ GEMM (``quant_method: awq``, zero point): int32 ``qweight [in, out/8]``,
                     int32 ``qzeros [in/G, out/8]``, FP16 ``scales [in/G, out]``: 4.15625 bpw at G=128.
gptq, gptq-int8      GPTQ v1 checkpoint: int32 ``qweight [in*b/32, out]``, int32
                     ``qzeros [ceil(in/G), out*b/32]`` (stored even when symmetric), FP16
                     ``scales [ceil(in/G), out]``, int32 ``g_idx [in]`` (always written).
                     awq and gptq*: the GPTQModel Qwen3.5 module tree: self_attn q/k/v/o,
                     linear_attn in_proj_qkv/in_proj_z/out_proj, shared experts, routed experts,
                     dense MLP. Kept: in_proj_a/b, router, shared_expert_gate, embeddings, lm_head,
                     vision (BF16); MTP copied as-is (BF16). Vision + MTP shipped.
nvfp4                ModelOpt NVFP4, experts only (lukealonso/Qwen3.5-397B-A17B-NVFP4, ModelOpt
                     ``NVFP4_EXPERTS_ONLY_CFG``): uint8 ``weight [out, in/2]`` (E2M1) + F8_E4M3
                     ``weight_scale [out, ceil(in/16)]`` + F32 ``weight_scale_2`` + F32
                     ``input_scale`` per module: 4.5 bpw + 8 B. Routed experts only (the dense
                     MLP for dense models); everything else BF16, MTP + vision shipped BF16.
nvfp4-all            compressed-tensors NVFP4 by llm-compressor's Qwen3.5 example: same layout
                     (``weight_packed``, ``weight_scale``, ``weight_global_scale``,
                     ``input_global_scale``) on self_attn q/k/v/o, shared + routed experts, dense
                     MLP; linear_attn, router, shared_expert_gate, lm_head, embeddings, vision kept;
                     MTP copied back as-is (BF16).
mxfp4                compressed-tensors ``mxfp4-pack-quantized`` (olka-fi/Qwen3.5-35B-A3B-MXFP4):
                     uint8 ``weight_packed [out, in/2]`` + uint8 E8M0 ``weight_scale
                     [out, ceil(in/32)]``: 4.25 bpw. Routed experts only (dense MLP for dense).
mxfp4-quark          AMD Quark MXFP4 (amd/Qwen3.5-397B-A17B-MoE-MXFP4): same layout on routed *and*
                     shared experts; linear_attn, self_attn, router, gates, lm_head, vision, MTP kept.
bnb-nf4, bnb-fp4     bitsandbytes 4-bit through transformers ``BitsAndBytesConfig``: uint8 weight
bnb-nf4-dq, -fp4-dq  ``[(n+1)//2, 1]`` + F32 ``absmax`` per 64 + F32 ``quant_map [16]`` + a uint8 JSON
                     ``quant_state.bitsandbytes__nf4`` blob; ``-dq`` (double quant): uint8 absmax,
                     F32 ``nested_absmax`` per 256 blocks, F32 ``nested_quant_map [256]``.
bnb-int8             LLM.int8: int8 ``weight [out, in]`` + F32 ``SCB [out]`` + uint8 ``weight_format``.
                     bnb quantizes *nn.Linear modules only*: in transformers v5 Qwen3.5-MoE the routed
                     experts are fused 3-D ``nn.Parameter`` s (``Qwen3_5MoeExperts``) and the router is
                     a ``Qwen3_5MoeTopKRouter`` parameter, so **routed experts and router stay BF16**
                     (the bulk of an MoE model: a 35B-A3B bnb-nf4 is ~67 GB, not ~20 GB). Quantized:
                     attention, all linear_attn projections (incl. in_proj_a/b), shared experts,
                     shared_expert_gate, dense MLP, and the vision tower's Linear weights; kept:
                     lm_head (skipped by transformers), embeddings (nn.Embedding), conv1d, norms,
                     biases, patch/pos embeddings. transformers does not load ``mtp.*``.
mlx-<b>bit[-g<G>]    MLX affine (mlx-lm): uint32 ``weight [out, in*b/32]`` + BF16 ``scales`` and
                     ``biases [out, in/G]``; b in {2,3,4,5,6,8}, G in {32,64,128} (default 64):
                     b + 32/G bpw. mlx-lm's ``quant_predicate``: every Linear / Embedding /
                     SwitchLinear (embeddings, lm_head, attention, all linear_attn projections,
                     experts, shared experts) whose ``in % G == 0``; for MoE the router ``mlp.gate``
                     and ``shared_expert_gate`` at affine 8-bit G=64; conv1d, norms, dt_bias BF16,
                     A_log F32. mlx-lm drops ``mtp.*`` and the vision tower.
mlx-mxfp4            MLX modes: uint32 codes + uint8 scales, no biases: mxfp4 (G=32, E8M0, 4.25 bpw),
mlx-nvfp4            nvfp4 (G=16, E4M3, 4.5 bpw), mxfp8 (G=32, E8M0, 8.25 bpw); gates still affine
mlx-mxfp8            8-bit G=64 (the predicate's dict carries no ``mode``, so ``to_quantized`` falls
                     back to affine).
===================  ==========================================================================

Validation (tests/unit/test_gpu_quant.py), exact bytes from this module
-----------------------------------------------------------------------
Qwen official FP8 repos (text + MTP + vision), against a published calculator's figures (37.45 /
127.15 / 406.13 GB) and HF usedStorage of Qwen/Qwen3.5-397B-A17B-FP8 (~406 GB):

==============  =================  ===============  ===========  ==============  ==========
model           total bytes        FP8 weights      BF16 scales  BF16 tensors    F32
==============  =================  ===============  ===========  ==============  ==========
35B-A3B-FP8     37,454,799,072     34,453,061,632   4,205,696    2,997,512,544   19,200
122B-A10B-FP8   127,152,313,312    123,035,713,536  15,019,008   4,101,553,120   27,648
397B-A17B-FP8   406,125,181,280    400,719,609,856  48,915,968   5,356,620,896   34,560
==============  =================  ===============  ===========  ==============  ==========

xega-ai FP8-Dynamic 35B text-only: 36,773,902,976 B = FP8 weights 32,610,713,600 + BF16 scales
63,385,600 + BF16 kept 4,099,784,576 + F32 19,200, i.e. 32.61 GB FP8 + 4.16 GB BF16 (scales
included) = 36.77 GB; card: 36.8 GB = 32.61 + 4.16 (xega-ai/Qwen3.5-35B-A3B-FP8-Dynamic card).
MLX affine G=64, text only (mlx-community cards; an MLX size calculator: 223.01 / 68.7 / 19.51 / 36.83 GB):
397B 4-bit 223,011,784,832 B (mlx-community/Qwen3.5-397B-A17B-4bit "~223 GB"), 122B 4-bit
68,709,680,640 B, 35B 4-bit 19,508,789,376 B, 35B 8-bit 36,827,988,096 B.
NVFP4 experts-only 397B with vision + MTP in BF16: 251,135,218,528 B = 251.14 GB = 233.89 GiB.
lukealonso's card says "~233 GB on disk": it matches when read as GiB (what ``du -h`` prints); in
decimal GB no variant matches (text-only would be 237.0 GB). The test holds 233 GiB to 1 %.

Assumptions not verified against a published checkpoint's tensor list
-----------------------------------------------------------------------
* awq recipe: no Qwen3.5 AutoAWQ/GPTQModel AWQ checkpoint was found; the module set is GPTQModel's
  ``Qwen3_5_MoeQModel`` / ``Qwen3_5QModel`` module tree (in_proj_a/b marked ``!`` = not quantized),
  which GPTQModel uses for both its GPTQ and AWQ paths. The AutoAWQ port quivent/autoawq-qwen35
  (dense only) would also quantize in_proj_a/b (27B: -35 MB, -0.18 %); AutoAWQ's GEMM packer cannot take
  ``shared_expert_gate`` (out=1 fails ``out % 8``) — excluded in every recipe here.
* gptq/gptq-int8 default to GPTQModel's full module tree; btbtyler09's published Qwen3.5 GPTQ repos
  quantize routed experts only (their choice); the per-module layout is the same.
* w4a16/w8a16/w8a8 use llm-compressor's Qwen3.5 ignore list
  (examples/big_models_with_sequential_onloading/qwen3_5_moe_w4a16_distributed.py); GPTQModifier
  with ``actorder="static"`` (default) writes no ``weight_g_idx``. The ignore entry
  ``re:.*mlp\\.shared_expert$`` of one FP8 example matches only the parent module, so shared experts
  are quantized (agrees with the verified xega-ai split).
* nvfp4: ModelOpt stores one ``weight_scale_2`` and one ``input_scale`` (F32 scalars) per expert
  module (per-expert export, as nerkyor/Qwen3.6-35B-A3B-NVFP4-modelopt reports); the "~233 GB" of
  the card is read as GiB (see above). For dense models the recipe quantizes the MLP only, as
  davidyu-nv/Qwen3.5-9B-NVFP4-MSE (ModelOpt) does; mxfp4 is applied the same way to dense models.
* mxfp4/mxfp4-quark defaults (vision + MTP BF16 shipped) follow the olka-fi / amd cards, not a tensor list.
* bnb: transformers' default skip list (``lm_head`` / tied output only) is assumed; vision Linears
  are quantized (no default vision skip in ``replace_with_bnb_linear``). The JSON blob length is exact
  for non-nested states; with double quant its ``nested_offset`` is a float whose ``repr`` length
  depends on the weights: 20 characters are assumed (actual 3-24), i.e. +-17 B per module.
* Defaults (``mtp``/``vision`` None): shipped = bf16, fp16, fp8, awq, gptq*, nvfp4, nvfp4-all,
  mxfp4* (MTP + vision); w4a16/w8a16/w8a8 and bnb-* ship vision only (the cited llm-compressor
  W4A16 example and transformers drop ``mtp.*``); fp8-dynamic (xega-ai) and mlx-* are text-only.
* Qwen3-Next uses the same role-based recipes (its fused ``in_proj_qkvz`` is one module: per-module
  tensors are counted once; ``in_proj_ba`` is kept like in_proj_a/b); no Qwen3-Next checkpoint was
  checked against them.
* fp16 re-labels BF16 tensors F16 (same bytes); GPTQModel/AutoAWQ may write FP16 instead of BF16
  for kept modules: same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qwenfit.core.formats.gpu_layouts import (
    Parts,
    autoround,
    awq,
    bnb4,
    bnb8,
    channel8,
    ct_pack,
    fp4,
    fp8_block,
    gptq,
    mlx_affine,
    mlx_float,
)
from qwenfit.core.formats.weights import WeightEntry, WeightMap
from qwenfit.core.model.inventory import F32_ROLES, ROUTED_EXPERT_ROLES, Tensor
from qwenfit.core.model.spec import ModelSpec
from qwenfit.errors import GpuFormatError

__all__ = [
    "FORMATS",
    "GpuFormat",
    "GpuFormatError",
    "gpu_breakdown",
    "gpu_weights",
]


# --------------------------------------------------------------------------------------------------
# role groups (qwenfit.core.model.inventory.ROLES)

_ATTN = frozenset({"attn_q", "attn_k", "attn_v", "attn_o"})
_GDN_BIG = frozenset({"gdn_qkv", "gdn_z", "gdn_out"})  # in_proj_qkv(z), in_proj_z, out_proj
_GDN_SMALL = frozenset({"gdn_a", "gdn_b", "gdn_ba"})  # [nv, H] / [2nv, H] gate projections
_SHARED = frozenset({"shared_expert_gate_proj", "shared_expert_up_proj", "shared_expert_down_proj"})
_DENSE_MLP = frozenset({"mlp_gate", "mlp_up", "mlp_down"})
_GATES = frozenset({"router", "shared_expert_gate"})
_VISION_LINEAR = frozenset(
    {
        "vision_attn_qkv",
        "vision_attn_proj",
        "vision_mlp_fc1",
        "vision_mlp_fc2",
        "vision_merger_fc1",
        "vision_merger_fc2",
    }
)
_FFN = ROUTED_EXPERT_ROLES | _SHARED | _DENSE_MLP

# Qwen official FP8: everything not in modules_to_not_convert (config.json of
# Qwen/Qwen3.6-35B-A3B-FP8): attention, in_proj_qkv/in_proj_z/out_proj, all experts, dense MLP.
_QWEN_FP8_ROLES = _ATTN | _GDN_BIG | _FFN
# llm-compressor Qwen3.5 recipes: targets="Linear", ignore lm_head, visual, mlp.gate, embed_tokens,
# shared_expert_gate, linear_attn.*, mtp.* (vllm-project/llm-compressor:
# examples/big_models_with_sequential_onloading/qwen3_5_moe_w4a16_distributed.py@4c0f777,
# examples/quantization_w8a8_fp8/qwen3_5_moe.py@6aab127, examples/quantization_w4a4_fp4/qwen3_5_example.py)
_LLMC_ROLES = _ATTN | _FFN
# GPTQModel module_tree for qwen3_5_moe / qwen3_5 (ModelCloud/GPTQModel:
# gptqmodel/models/definitions/qwen3_5_moe.py@00293f3, qwen3_5.py@113cfcb): q/k/v/o_proj,
# in_proj_qkv, in_proj_z, out_proj, shared_expert + experts gate/up/down, dense mlp; "gate:!" and
# "in_proj_b:!", "in_proj_a:!" are not quantized; shared_expert_gate is not in the tree.
_GPTQMODEL_ROLES = _ATTN | _GDN_BIG | _FFN
# Intel AutoRound exports of Qwen3.5/3.6 (Intel/Qwen3.6-27B-int4-AutoRound and siblings, as vLLM 0.33.0
# loads them through inc/schemes: tests/fixtures/vllm/rank_weights_quant.json, format "autoround"):
# attention, in_proj_qkv/in_proj_z/out_proj, routed experts, dense MLP; in_proj_a/b, the shared expert,
# router, gates, lm_head, embeddings, vision and MTP stay BF16
_AUTOROUND_ROLES = _ATTN | _GDN_BIG | ROUTED_EXPERT_ROLES | _DENSE_MLP
# transformers replace_with_bnb_linear: every nn.Linear except lm_head (huggingface/transformers:
# src/transformers/integrations/bitsandbytes.py@01ae98a); Qwen3.5-MoE's router and routed experts
# are plain nn.Parameters (Qwen3_5MoeTopKRouter.weight, Qwen3_5MoeExperts.gate_up_proj/down_proj),
# shared_expert_gate is nn.Linear(hidden, 1).
_BNB_ROLES = _ATTN | _GDN_BIG | _GDN_SMALL | _SHARED | _DENSE_MLP | {"shared_expert_gate"} | _VISION_LINEAR
# mlx-lm: every module with to_quantized (Linear, Embedding, SwitchLinear) — mlx_lm/utils.py
# quantize_model.wrapped_predicate (ml-explore/mlx-lm@003da2e)
_MLX_ROLES = _ATTN | _GDN_BIG | _GDN_SMALL | _FFN | {"embed", "lm_head", "mtp_fc"}


def _is_matrix(t: Tensor) -> bool:
    return len(t.shape) >= 2 and not t.name.endswith(".bias")


def _ffn_experts(spec: ModelSpec) -> frozenset[str]:
    """Experts-only recipes: routed experts of an MoE model, the dense MLP of a dense model."""
    return ROUTED_EXPERT_ROLES if spec.is_moe else _DENSE_MLP


# recipe name -> (spec, tensor) -> quantized?
_Recipe = Callable[[ModelSpec, Tensor], bool]
_RECIPES: dict[str, _Recipe] = {
    "none": lambda spec, t: False,
    "qwen-fp8": lambda spec, t: t.component in ("text", "mtp") and t.role in _QWEN_FP8_ROLES,
    # MTP is not loaded by transformers (it is copied back as-is when present), vision is ignored
    "llmc": lambda spec, t: t.component == "text" and t.role in _LLMC_ROLES,
    "gptqmodel": lambda spec, t: t.component == "text" and t.role in _GPTQMODEL_ROLES,
    "autoround": lambda spec, t: t.component == "text" and t.role in _AUTOROUND_ROLES,
    "ffn-experts": lambda spec, t: t.component == "text" and t.role in _ffn_experts(spec),
    # amd Quark: exclude lm_head, model.visual.*, mtp.*, *mlp.gate, *shared_expert_gate*,
    # *.linear_attn.*, *.self_attn.* (amd/Qwen3.5-397B-A17B-MoE-MXFP4 config.json)
    # => routed and shared experts
    "quark-experts": lambda spec, t: t.component == "text" and t.role in _FFN,
    "bnb": lambda spec, t: t.component in ("text", "vision") and t.role in _BNB_ROLES and _is_matrix(t),
    # mlx: MTP layers (newer mlx-lm keeps them) follow the text rules; vision is never quantized
    # (mlx-vlm skip_multimodal_module)
    "mlx": lambda spec, t: t.component in ("text", "mtp") and t.role in (_MLX_ROLES | _GATES),
}


@dataclass(frozen=True, slots=True)
class GpuFormat:
    """One GPU-side format: a storage layout (``kind``) applied by a recipe to some modules.

    ``group_sizes`` lists the group sizes the format accepts, ``default_group`` the one used when
    none is given; ``mtp_default`` / ``vision_default`` say whether the format's published
    repositories ship the MTP layer and the vision tower.
    """

    name: str
    kind: str
    recipe: str
    bits: int
    default_group: int | None
    group_sizes: tuple[int, ...]
    mtp_default: bool
    vision_default: bool
    summary: str
    source: str


_TYPE_NAMES: dict[str, str] = {
    "fp8-block": "fp8_e4m3+bf16-block-scale",
    "fp8-channel": "fp8_e4m3+bf16-channel-scale",
    "int8-channel": "int8+bf16-channel-scale",
    "ct-pack": "ct-int{bits}-g{g}",
    "awq": "awq-int{bits}-g{g}",
    "gptq": "gptq-int{bits}-g{g}",
    "autoround": "autoround-int{bits}-g{g}",
    "nvfp4": "nvfp4-g16",
    "mxfp4": "mxfp4-g32",
    "bnb-nf4": "bnb-nf4",
    "bnb-fp4": "bnb-fp4",
    "bnb-nf4-dq": "bnb-nf4-dq",
    "bnb-fp4-dq": "bnb-fp4-dq",
    "bnb-int8": "bnb-int8",
    "mlx-affine": "mlx-affine-{bits}bit-g{g}",
    "mlx-mxfp4": "mlx-mxfp4",
    "mlx-nvfp4": "mlx-nvfp4",
    "mlx-mxfp8": "mlx-mxfp8",
    "float": "",
}

_LAYOUTS: dict[str, Callable[[int, int, int, int], Parts]] = {
    "fp8-block": fp8_block,
    "fp8-channel": channel8,
    "int8-channel": channel8,
    "awq": awq,
    "nvfp4": fp4(16, 8),
    "mxfp4": fp4(32, 0),
    "mlx-mxfp4": mlx_float(4, 32),
    "mlx-nvfp4": mlx_float(4, 16),
    "mlx-mxfp8": mlx_float(8, 32),
}
_BNB_LAYOUTS: dict[str, Callable[[int, int, int, int, bool, int], Parts]] = {
    "bnb-nf4": bnb4("nf4", False),
    "bnb-fp4": bnb4("fp4", False),
    "bnb-nf4-dq": bnb4("nf4", True),
    "bnb-fp4-dq": bnb4("fp4", True),
    "bnb-int8": bnb8,
}

_MLX_BITS = (2, 3, 4, 5, 6, 8)  # mlx.core.quantize affine: bits 2, 3, 4, 5, 6, 8
_MLX_GROUPS = (64, 32, 128)  # group 32, 64 (default), 128
_INT_GROUPS = (128, 32, 64)

_SRC_FP8 = "Qwen/Qwen3.6-35B-A3B-FP8 config.json modules_to_not_convert; QuixiAI/Quantize-Qwen3.5"
_SRC_LLMC = "vllm-project/llm-compressor examples/*/qwen3_5_moe*.py; compressed-tensors"
_SRC_GPTQMODEL = "ModelCloud/GPTQModel gptqmodel/models/definitions/qwen3_5*.py"
_SRC_BNB = "huggingface/transformers integrations/bitsandbytes.py; bitsandbytes functional.py"
_SRC_MLX = "ml-explore/mlx-lm mlx_lm/models/qwen3_5.py (quant_predicate, cast_predicate, sanitize)"


def _build() -> dict[str, GpuFormat]:
    f: list[GpuFormat] = [
        GpuFormat("bf16", "float", "none", 16, None, (), True, True,
                  "the official BF16 checkpoint (A_log, GDN norm F32)", "Qwen/Qwen3.5-* safetensors"),
        GpuFormat("fp16", "float", "none", 16, None, (), True, True,
                  "the checkpoint cast to F16 (F32 tensors stay F32)", "Qwen/Qwen3.5-* safetensors"),
        GpuFormat("fp8", "fp8-block", "qwen-fp8", 8, 128, (128,), True, True,
                  "Qwen official FP8, 128x128 blocks, BF16 weight_scale_inv", _SRC_FP8),
        GpuFormat("fp8-dynamic", "fp8-channel", "llmc", 8, None, (), False, False,
                  "compressed-tensors FP8_DYNAMIC, per-channel BF16 scale",
                  "llm-compressor examples/quantization_w8a8_fp8/qwen3_5_moe.py; xega-ai repo"),
        GpuFormat("w8a8", "int8-channel", "llmc", 8, None, (), False, True,
                  "compressed-tensors INT8 W8A8, per-channel BF16 scale", _SRC_LLMC),
        GpuFormat("w4a16", "ct-pack", "llmc", 4, 128, _INT_GROUPS, False, True,
                  "compressed-tensors pack-quantized int4, symmetric", _SRC_LLMC),
        GpuFormat("w8a16", "ct-pack", "llmc", 8, 128, _INT_GROUPS, False, True,
                  "compressed-tensors pack-quantized int8, symmetric", _SRC_LLMC),
        GpuFormat("awq", "awq", "gptqmodel", 4, 128, _INT_GROUPS, True, True,
                  "AWQ GEMM int4 with zero points", "casper-hansen/AutoAWQ gemm.py; " + _SRC_GPTQMODEL),
        GpuFormat("gptq", "gptq", "gptqmodel", 4, 128, _INT_GROUPS, True, True,
                  "GPTQ int4 (v1 format, qzeros and g_idx stored)", _SRC_GPTQMODEL),
        GpuFormat("gptq-int8", "gptq", "gptqmodel", 8, 128, _INT_GROUPS, True, True,
                  "GPTQ int8 (v1 format, qzeros and g_idx stored)", _SRC_GPTQMODEL),
        GpuFormat("autoround", "autoround", "autoround", 4, 128, _INT_GROUPS, True, True,
                  "Intel AutoRound int4, symmetric, auto_round export (qzeros stored, no g_idx)",
                  "intel/auto-round 0.16.1 auto_round_extension/torch/qlinear_torch.py; "
                  "Intel/Qwen3.6-27B-int4-AutoRound card (bits 4, group 128, sym)"),
        GpuFormat("nvfp4", "nvfp4", "ffn-experts", 4, 16, (16,), True, True,
                  "ModelOpt NVFP4, routed experts only", "lukealonso/Qwen3.5-397B-A17B-NVFP4 card"),
        GpuFormat("nvfp4-all", "nvfp4", "llmc", 4, 16, (16,), True, True,
                  "compressed-tensors NVFP4: attention + shared and routed experts",
                  "llm-compressor examples/quantization_w4a4_fp4/qwen3_5_example.py"),
        GpuFormat("mxfp4", "mxfp4", "ffn-experts", 4, 32, (32,), True, True,
                  "compressed-tensors MXFP4, routed experts only",
                  "olka-fi/Qwen3.5-35B-A3B-MXFP4 config.json"),
        GpuFormat("mxfp4-quark", "mxfp4", "quark-experts", 4, 32, (32,), True, True,
                  "AMD Quark MXFP4, routed and shared experts",
                  "amd/Qwen3.5-397B-A17B-MoE-MXFP4 config.json"),
        GpuFormat("bnb-nf4", "bnb-nf4", "bnb", 4, 64, (64,), False, True,
                  "bitsandbytes NF4 (nn.Linear only: routed experts stay BF16)", _SRC_BNB),
        GpuFormat("bnb-fp4", "bnb-fp4", "bnb", 4, 64, (64,), False, True,
                  "bitsandbytes FP4 (nn.Linear only: routed experts stay BF16)", _SRC_BNB),
        GpuFormat("bnb-nf4-dq", "bnb-nf4-dq", "bnb", 4, 64, (64,), False, True,
                  "bitsandbytes NF4 + double quant (nn.Linear only)", _SRC_BNB),
        GpuFormat("bnb-fp4-dq", "bnb-fp4-dq", "bnb", 4, 64, (64,), False, True,
                  "bitsandbytes FP4 + double quant (nn.Linear only)", _SRC_BNB),
        GpuFormat("bnb-int8", "bnb-int8", "bnb", 8, None, (), False, True,
                  "bitsandbytes LLM.int8 (nn.Linear only: routed experts stay BF16)", _SRC_BNB),
        GpuFormat("mlx-mxfp4", "mlx-mxfp4", "mlx", 4, 32, (32,), False, False,
                  "MLX mxfp4 mode (gates affine 8-bit g64)", _SRC_MLX),
        GpuFormat("mlx-nvfp4", "mlx-nvfp4", "mlx", 4, 16, (16,), False, False,
                  "MLX nvfp4 mode (gates affine 8-bit g64)", _SRC_MLX),
        GpuFormat("mlx-mxfp8", "mlx-mxfp8", "mlx", 8, 32, (32,), False, False,
                  "MLX mxfp8 mode (gates affine 8-bit g64)", _SRC_MLX),
    ]  # fmt: skip
    for bits in _MLX_BITS:
        f.append(
            GpuFormat(f"mlx-{bits}bit", "mlx-affine", "mlx", bits, 64, _MLX_GROUPS, False, False,
                      f"MLX affine {bits}-bit, group 64 (mlx-lm default)", _SRC_MLX)
        )  # fmt: skip
        for g in (32, 64, 128):
            f.append(
                GpuFormat(f"mlx-{bits}bit-g{g}", "mlx-affine", "mlx", bits, g, (g,), False, False,
                          f"MLX affine {bits}-bit, group {g}", _SRC_MLX)
            )  # fmt: skip
    return {x.name: x for x in f}


FORMATS: dict[str, GpuFormat] = _build()


# --------------------------------------------------------------------------------------------------
# evaluation


def _format(fmt: str, group_size: int | None) -> tuple[GpuFormat, int | None]:
    f = FORMATS.get(fmt.strip().lower()) if isinstance(fmt, str) else None
    if f is None:
        raise GpuFormatError(f"unknown GPU format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    if group_size is None:
        return f, f.default_group
    if isinstance(group_size, bool) or group_size not in f.group_sizes:
        valid = ", ".join(str(g) for g in sorted(f.group_sizes)) or "none (the format has no group size)"
        raise GpuFormatError(f"{f.name}: group_size={group_size!r} is not supported; valid: {valid}")
    return f, group_size


def _kept(t: Tensor, cast: str | None) -> tuple[str, int]:
    """A tensor the recipe leaves unquantized: its source dtype (or the format's cast of it)."""
    dtype = t.dtype if t.dtype in ("BF16", "F16", "F32") else ("F32" if t.role in F32_ROLES else "BF16")
    if cast == "mlx":  # mlx_lm.convert casts every float to the config dtype except A_log
        dtype = "F32" if t.role == "gdn_A_log" else "BF16"
    elif cast == "F16" and dtype == "BF16":
        dtype = "F16"
    return dtype, t.n_params * (4 if dtype == "F32" else 2)


def _module_rows(tensors: list[Tensor]) -> dict[str, int]:
    """Rows of each stored module that several logical tensors share (Qwen3-Next in_proj_qkvz)."""
    rows: dict[str, int] = {}
    for t in tensors:
        if t.n_experts == 0 and len(t.shape) == 2:
            rows[t.hf_name] = rows.get(t.hf_name, 0) + t.shape[0]
    return rows


def _plan(
    spec: ModelSpec, fmt: str, mtp: bool | None, vision: bool | None, group_size: int | None
) -> tuple[GpuFormat, list[tuple[Tensor, str, Parts]]]:
    f, group = _format(fmt, group_size)
    keep = {"text"}
    if f.mtp_default if mtp is None else mtp:
        keep.add("mtp")
    if f.vision_default if vision is None else vision:
        keep.add("vision")
    tensors = [t for t in spec.inventory if t.component in keep]
    rows = _module_rows(tensors)
    seen: set[str] = set()
    recipe = _RECIPES[f.recipe]
    cast = "mlx" if f.recipe == "mlx" else ("F16" if f.name == "fp16" else None)
    out: list[tuple[Tensor, str, Parts]] = []
    for t in tensors:
        o, i = (t.shape[-2], t.shape[-1]) if _is_matrix(t) else (0, 0)
        kind, bits, g = f.kind, f.bits, group
        if f.recipe == "mlx" and t.role in _GATES:
            # mlx_lm/models/qwen3_5.py quant_predicate: mlp.gate / shared_expert_gate ->
            # {"group_size": 64, "bits": 8}; nn.quantize passes that dict alone to to_quantized, so
            # the mode is the default affine whatever the requested mode
            kind, bits, g = "mlx-affine", 8, 64
        quantized = _is_matrix(t) and recipe(spec, t)
        if quantized and f.recipe == "mlx" and i % (group or 1):
            # mlx_lm quantize_model.wrapped_predicate: weight.shape[-1] % group_size != 0 => kept
            quantized = False
        if not quantized:
            dtype, nbytes = _kept(t, cast)
            out.append((t, dtype, [(dtype, nbytes)]))
            continue
        _check(f, t, o, i, g, kind)
        first = t.n_experts > 0 or t.hf_name not in seen  # per-module tensors once per stored module
        seen.add(t.hf_name)
        parts = _layout(kind, bits, t.n_experts or 1, o, i, g or 0, first, rows.get(t.hf_name, o))
        out.append((t, _TYPE_NAMES[kind].format(bits=bits, g=g), parts))
    return f, out


def _layout(kind: str, bits: int, n: int, o: int, i: int, g: int, first: bool, module_o: int) -> Parts:
    """Stored parts of ``n`` quantized [o, i] matrices; ``first`` is False for the later logical parts
    of one stored module (Qwen3-Next in_proj_qkvz), which share its per-module tensors."""
    if kind in _BNB_LAYOUTS:
        return _BNB_LAYOUTS[kind](n, o, i, g, first, module_o)
    if kind == "mlx-affine":
        parts = mlx_affine(bits)(n, o, i, g)
    elif kind == "gptq":
        parts = gptq(bits)(n, o, i, g)
    elif kind == "autoround":
        parts = autoround(bits)(n, o, i, g)
    elif kind == "ct-pack":
        parts = ct_pack(bits)(n, o, i, g)
    else:
        parts = _LAYOUTS[kind](n, o, i, g)
    # g_idx [in] and the meta tensors belong to the stored module, not to each logical part
    return parts if first else [p for p in parts if p[0] not in ("meta", "g_idx")]


def _check(f: GpuFormat, t: Tensor, o: int, i: int, g: int | None, kind: str) -> None:
    """The divisibility each packer requires; formats that pad or round need none."""
    problem = ""
    if kind == "mlx-affine" and g is not None and i % g:
        problem = f"mlx.core.quantize needs the last dimension divisible by the group size {g}"
    elif f.kind == "awq" and g is not None and (i % g or o % 8):
        problem = f"AutoAWQ WQLinear_GEMM asserts in_features % {g} == 0 and out_features % 8 == 0"
    elif f.kind == "gptq" and g is not None and (i % g or (i * f.bits) % 32 or (o * f.bits) % 32):
        problem = (
            f"GPTQModel needs in_features % group_size ({g}) == 0 and in/out_features packable "
            f"into int32 ({32 // f.bits} per word)"
        )
    elif f.kind == "autoround" and (i % 32 or o % 32):
        problem = "auto-round's QuantLinear packs in/out_features into int32 words (in // 32 * bits rows)"
    elif f.kind in ("nvfp4", "mxfp4") and i % 2:
        problem = "compressed-tensors pack_fp4_to_uint8 raises on an odd number of columns"
    if problem:
        raise GpuFormatError(
            f"{f.name}: tensor {t.name} has shape [out={o}, in={i}]: {problem}; "
            "choose another format or group size"
        )


def gpu_weights(
    spec: ModelSpec,
    fmt: str,
    *,
    mtp: bool | None = None,
    vision: bool | None = None,
    group_size: int | None = None,
) -> WeightMap:
    """Exact weight bytes of ``spec`` stored in GPU format ``fmt`` (see :data:`FORMATS`).

    ``mtp`` / ``vision`` None mean "as the format's published repositories ship them"
    (``GpuFormat.mtp_default`` / ``vision_default``); True includes the component with the format's
    rules (an MTP or vision component the recipe does not quantize is kept as stored). ``group_size``
    overrides the format's default group. Unknown formats, unsupported group sizes and tensors a
    packer rejects raise :class:`GpuFormatError` (a ``ValueError``).
    """
    f, plan = _plan(spec, fmt, mtp, vision, group_size)
    entries = tuple(
        WeightEntry(
            t.name, t.gguf_name, t.role, t.component, t.layer, t.shape, kind, sum(b for _, b in parts)
        )
        for t, kind, parts in plan
    )
    g = group_size if group_size is not None else f.default_group
    scheme = f.name if g is None or len(f.group_sizes) <= 1 else f"{f.name} (group {g})"
    return WeightMap(model=spec.name, scheme=scheme, tensors=entries, gpu_format=f.name, group_size=g)


def gpu_breakdown(
    spec: ModelSpec,
    fmt: str,
    *,
    mtp: bool | None = None,
    vision: bool | None = None,
    group_size: int | None = None,
) -> dict[str, int]:
    """Bytes of :func:`gpu_weights` split by what they store.

    Keys: ``weight`` (quantized codes), ``scale`` (scales, absmax, biases of affine groups), ``zero``
    (zero points), ``g_idx``, ``meta`` (shape tensors, global scalars, bnb quant maps and JSON) and
    one key per unquantized dtype (``BF16``, ``F16``, ``F32``). The values sum to ``total_bytes``.
    """
    _, plan = _plan(spec, fmt, mtp, vision, group_size)
    out: dict[str, int] = {}
    for _, _, parts in plan:
        for key, nbytes in parts:
            out[key] = out.get(key, 0) + nbytes
    return out
