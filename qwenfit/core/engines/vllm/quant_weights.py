"""The weight bytes vLLM 0.33.0 allocates on one rank for a *quantized* checkpoint: measured, reproduced.

vLLM's own Qwen3.5 / Qwen3-Next classes were built full-size on the meta device, one simulated rank at a
time, with a ``quantization_config`` shaped like each published checkpoint's
(scripts/vllm_quant_rank_weights.py -> tests/fixtures/vllm/rank_weights_quant.json; the configs and their
sources are in the fixture's ``formats``). This module reproduces every measured rank to the byte
(tests/engines/test_vllm_quant_weights.py), stdlib only.

The rule: the rank's BF16 bytes (:func:`.weights.vllm_rank_weight_bytes`, itself measured),
then, for every vLLM module the format's recipe quantizes, the quant method's ``create_weights`` tensors in
place of the BF16 weight, plus the few side effects a quant config has on unquantized modules. Paths are
under ``vllm/model_executor/layers/quantization/`` in the 0.33.0 wheel; ``in``/``out`` are the per-rank
partition sizes, ``G`` the group size, ``E`` the rank's experts, ``I`` its expert width, ``H`` the hidden
size:

- AWQ (auto_awq.py ``AutoAWQMarlinLinearMethod``/``AutoAWQLinearMethod``, same shapes): int32 ``qweight``
  [in, out/8], int32 ``qzeros`` [in//G, out/8], model-dtype ``scales`` [in//G, out]; experts
  (``AutoAWQMoEMethod``) the same per expert, no bias.
- GPTQ and AutoRound (auto_gptq.py ``AutoGPTQLinearMethod``; auto-round exports load through
  inc/schemes/inc_wna16_linear.py, which builds that same method): int32 ``qweight`` [in/pack, out], int32
  ``qzeros`` [in//G, out/pack], ``scales`` [in//G, out] -- no ``g_idx`` (desc_act=True is refused);
  experts (``AutoGPTQMoEMethod``) add zero-filled model-dtype biases [E, 2I] and [E, H].
- AWQ, GPTQ and AutoRound configs make Qwen3.5's GDN ``in_proj_ba`` replicated on every TP rank (Marlin needs
  64 output columns per rank; layers/mamba/gdn/qwen_gdn_linear_attn.py ``maybe_disable_tp``), quantized or
  not. Qwen3-Next's interleaved in_proj_ba stays sharded.
- compressed-tensors (compressed_tensors/schemes/): W4A16 ``weight_packed`` int32 [out, in/8] +
  ``weight_scale`` [out, in/G] + int64 ``weight_shape`` [2] (asymmetric: + int32 ``weight_zero_point``
  [ceil(out/8), in/G]); the MoE method's ``weight_shape`` is model-dtype [E, 2]. W8A8 int8 and FP8-dynamic:
  8-bit weight + float32 per-channel scale [out, 1]. FP8 static: float32 weight and input scale per logical
  shard. NVFP4: uint8 [out, in/2] + FP8 ``weight_scale`` [out, in/16] + float32 global scales per shard
  (weight and input; NVFP4A16 linears have no input global scale, its experts do). MXFP4A16: uint8
  [out, in/2] + uint8 scale [out, in/32]. Every attention layer gains q/k/v scale (float32) and zero-point
  (model dtype) parameters (18 B).
- ModelOpt (modelopt.py): FP8 per-tensor weight + float32 weight/input scale per shard (experts: weight scale
  [E, 2] / [E], input scale [E] each); NVFP4 as compressed-tensors' with ``weight_scale_2``/``input_scale``.
  Every attention layer gains 4 model-dtype KV scales (8 B). On SM100/SM120 (FlashInfer NVFP4 MoE backends)
  the experts' input scales are allocated for every global expert even under EP.
- The router (``GateLinear``), ``shared_expert_gate`` and the GDN ``conv1d`` are built without a quant config:
  always BF16. lm_head, embeddings and the vision tower stay BF16 in every published recipe.
- bitsandbytes: vLLM 0.33.0 has no bitsandbytes method ("Unknown quantization method: bitsandbytes").
- GPTQ ``desc_act: true`` is refused ("GPTQ group activation ordering (desc_act=True) is no longer
  supported").

Bytes are as created; the Marlin / Machete / CUTLASS repacking in ``process_weights_after_loading`` is
described in the fixture's ``after_loading``. ``loaded_sm8x=True`` applies the part of it that changes the
bytes on a GPU of compute capability below 8.9, where every GPTQ / AutoRound linear runs on Marlin
(kernels/linear/mixed_precision/marlin.py:74-175): a symmetric checkpoint's ``qzeros`` is replaced by an
empty tensor (``marlin_make_empty``, :171) and qweight / scales are zero-padded to Marlin's thread tile
(:func:`.weights.marlin_padded_nk`). Routed experts are left as created.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache

from qwenfit.core.engines.vllm.weights import (
    FUSED,
    SHARED_EXPERT,
    marlin_padded_nk,
    moe_width_per_rank,
    rank_slice,
    vllm_drafter_weight_bytes,
    vllm_rank_weight_bytes,
)
from qwenfit.core.formats.gpu import gpu_weights
from qwenfit.core.formats.weights import WeightEntry, WeightMap
from qwenfit.core.model.inventory import ROUTED_EXPERT_ROLES
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.units import cdiv
from qwenfit.errors import EngineRefusal

__all__ = [
    "GPU_CAPABILITY",
    "VLLM_QUANT_FORMATS",
    "VllmQuantFormat",
    "vllm_format_of",
    "vllm_quant_drafter_weight_bytes",
    "vllm_quant_rank_weight_bytes",
]


# Quantized modules are re-priced one by one on the rank's slice of each checkpoint tensor: the slicing
# of .weights (measured there on 4,546 BF16 / FP8 ranks). vLLM fuses these checkpoint tensors into one
# module (the routed experts are priced whole by the MoE methods below).
_FUSED = {k: v for k, v in FUSED.items() if not k.startswith("expert_")}


_ATTN = frozenset({"attn_q", "attn_k", "attn_v", "attn_o"})
_GDN_BIG = frozenset({"gdn_qkv", "gdn_z", "gdn_out"})
_GDN_SMALL = frozenset({"gdn_a", "gdn_b", "gdn_ba"})
_DENSE = frozenset({"mlp_gate", "mlp_up", "mlp_down"})

# recipe -> roles quantized (text model only; experts only = the dense MLP of a dense model)
_RECIPES: dict[str, frozenset[str]] = {
    "llmc": _ATTN | ROUTED_EXPERT_ROLES | SHARED_EXPERT | _DENSE,
    "llmc-all-linear": _ATTN | _GDN_BIG | _GDN_SMALL | ROUTED_EXPERT_ROLES | SHARED_EXPERT | _DENSE,
    "llmc-noshared": _ATTN | ROUTED_EXPERT_ROLES | _DENSE,
    "gptqmodel": _ATTN | _GDN_BIG | ROUTED_EXPERT_ROLES | SHARED_EXPERT | _DENSE,
    "experts": ROUTED_EXPERT_ROLES,
    "autoround": _ATTN | _GDN_BIG | ROUTED_EXPERT_ROLES | _DENSE,
    "modelopt-all": _ATTN | _GDN_BIG | _GDN_SMALL | ROUTED_EXPERT_ROLES | SHARED_EXPERT | _DENSE,
    "ffn": ROUTED_EXPERT_ROLES | SHARED_EXPERT | _DENSE,
    "attn-gdn": _ATTN | _GDN_BIG,
}


@dataclass(frozen=True, slots=True)
class VllmQuantFormat:
    """A checkpoint format as vLLM loads it: the quant method family (``kind``), its storage scheme, and the
    published recipe (which modules are quantized)."""

    name: str
    kind: str  # awq | gptq | autoround | ct | modelopt | bnb
    scheme: str  # awq | gptq | w4a16 | w4a16-asym | w8a8-int8 | fp8-dynamic | fp8-static | nvfp4 | ...
    recipe: str
    bits: int = 4
    group: int = 128
    refused: str = ""  # vLLM's error when it refuses the format outright
    # ModelOpt MIXED_PRECISION (modelopt.py:1574 ModelOptMixedPrecisionConfig): a second recipe whose modules
    # take FP8 (static per-tensor), and whether lm_head takes the main scheme (it is a ParallelLMHead built
    # with the quant config, qwen3_5.py:347, resolved by name, modelopt.py:1850)
    fp8_recipe: str = ""
    quant_lm_head: bool = False
    # the checkpoint quantizes the MTP layer too (AutoRound's block_name_to_quantize
    # "model.language_model.layers,mtp.layers"); vLLM builds the drafter's decoder layer with the same quant
    # config (models/qwen3_5_mtp.py:110-126), mtp.fc stays BF16 (outside the quantized blocks)
    quant_mtp: bool = False


VLLM_QUANT_FORMATS: dict[str, VllmQuantFormat] = {
    f.name: f
    for f in [
        VllmQuantFormat("awq", "awq", "awq", "gptqmodel"),
        VllmQuantFormat("gptq", "gptq", "gptq", "gptqmodel"),
        VllmQuantFormat("gptq-desc-act", "gptq", "gptq", "gptqmodel", refused=(
            "GPTQ group activation ordering (desc_act=True) is no longer supported. Use a checkpoint with "
            "static activation ordering or desc_act=False.")),
        VllmQuantFormat("gptq-experts", "gptq", "gptq", "experts", group=32),
        VllmQuantFormat("gptq-int8", "gptq", "gptq", "experts", bits=8, group=32),
        VllmQuantFormat("autoround", "autoround", "gptq", "autoround"),
        # Intel/Lorbus Qwen3.6-27B-int4-AutoRound (club-3090's checkpoint): same recipe, MTP layer INT4 too
        # (club-3090 models/qwen3.6-27b/INTERNALS.md: "A vanilla auto-round run ... packs mtp.fc as INT4";
        # Lorbus and Intel ship mtp.fc.weight BF16, the MTP layer's projections quantized)
        VllmQuantFormat("autoround-mtp", "autoround", "gptq", "autoround", quant_mtp=True),
        VllmQuantFormat("w4a16", "ct", "w4a16", "llmc"),
        VllmQuantFormat("w4a16-awq", "ct", "w4a16-asym", "llmc-all-linear"),
        VllmQuantFormat("w8a8", "ct", "w8a8-int8", "llmc", bits=8),
        VllmQuantFormat("fp8-dynamic", "ct", "fp8-dynamic", "llmc-noshared", bits=8),
        VllmQuantFormat("fp8-static", "ct", "fp8-static", "llmc-noshared", bits=8),
        VllmQuantFormat("nvfp4-ct", "ct", "nvfp4", "llmc", group=16),
        VllmQuantFormat("nvfp4a16-ct", "ct", "nvfp4a16", "llmc", group=16),
        VllmQuantFormat("mxfp4a16-ct", "ct", "mxfp4a16", "llmc", group=32),
        VllmQuantFormat("nvfp4-modelopt", "modelopt", "nvfp4", "experts", group=16),
        VllmQuantFormat("fp8-modelopt", "modelopt", "fp8-static", "modelopt-all", bits=8),
        # NVIDIA's own Qwen3.6 exports (nvidia/Qwen3.6-27B-NVFP4, nvidia/Qwen3.6-35B-A3B-NVFP4; vLLM
        # prints quantization=modelopt_mixed): quant_algo MIXED_PRECISION, FFN (routed + shared experts,
        # the dense MLP) and lm_head (W4A16_)NVFP4 group 16, self_attn q/k/v/o and linear_attn
        # in_proj_qkv/in_proj_z/out_proj FP8; in_proj_a/b, routers, conv1d, embeddings, vision and mtp.*
        # BF16. Sources: the club-3090 compose header of
        # models/qwen3.6-35b-a3b/vllm/compose/single/nvfp4/fp8.yml ("NVFP4 gs16 expert FFNs + FP8-static
        # attention/linear_attn + UNQUANTIZED mtp.* head"), an hf_quant_config.json "in miniature" of
        # nvidia/Qwen3.6-35B-A3B-NVFP4 (search-index file 55831486223: experts, shared_expert.* and
        # lm_head W4A16_NVFP4, self_attn and linear_attn FP8, exclude mtp*), the 27B log's three algos
        # (FP8, NVFP4, W4A16_NVFP4). Measured with vLLM's classes (rank_weights_quant_qwen36.json, the
        # checkpoint's FP8 KV declaration included: 4 KV scales per attention layer); W4A16_NVFP4 linears
        # (no input scale) are priced as NVFP4 (4 B more per module). On the 27B GB10 log: 19.62 GiB vs
        # "Model loading took 19.78 GiB" (lm_head kept BF16 would be 21.32).
        # sakamakismile/Qwen3.6-27B-Text-NVFP4-MTP (vLLM prints modelopt_fp4): every text linear NVFP4 (the
        # module list inferred from its logged 17.62 GiB text-only load; measured in
        # rank_weights_quant_qwen36.json)
        VllmQuantFormat("nvfp4-modelopt-all", "modelopt", "nvfp4", "modelopt-all", group=16),
        VllmQuantFormat("nvfp4-modelopt-mixed", "modelopt", "nvfp4", "ffn", group=16, fp8_recipe="attn-gdn",
                        quant_lm_head=True),
        VllmQuantFormat("bnb-nf4", "bnb", "bnb", "gptqmodel",
                        refused="Unknown quantization method: bitsandbytes."),
        VllmQuantFormat("bnb-int8", "bnb", "bnb", "gptqmodel", bits=8,
                        refused="Unknown quantization method: bitsandbytes."),
    ]
}  # fmt: skip


# --------------------------------------------------------------------------------------------------
# create_weights, per format


def _linear_bytes(f: VllmQuantFormat, shards: list[int], inp: int) -> int:
    """Bytes one quantized linear allocates: ``shards`` = its logical output partitions on this rank,
    ``inp`` = its input partition."""
    out = sum(shards)
    n, g, s = len(shards), f.group, f.scheme
    if s in ("awq", "w4a16", "w4a16-asym") and inp % g:
        # auto_awq.py BaseAWQLinearMethod.create_weights / compressed_tensors_wNa16.py create_weights
        raise EngineRefusal(f"{f.name}: input_size_per_partition={inp} is not divisible by group_size={g} "
                          "(too large a tensor-parallel size)")  # fmt: skip
    if s == "awq":  # qweight [in, out/8] i32, qzeros [in//G, out/8] i32, scales [in//G, out] bf16
        return 4 * inp * (out // 8) + 4 * (inp // g) * (out // 8) + 2 * (inp // g) * out
    if s == "gptq":  # qweight [in/pack, out] i32, qzeros [in//G, out/pack] i32, scales [in//G, out] bf16
        pack = 32 // f.bits
        return 4 * (inp // pack) * out + 4 * (inp // g) * (out // pack) + 2 * (inp // g) * out
    if s in (
        "w4a16",
        "w4a16-asym",
    ):  # weight_packed [out, in/8] i32, weight_scale [out, in/G], weight_shape i64[2]
        # compressed_tensors_wNa16.py: packed dims are ceil(size * bits / 32)
        b: int = 4 * out * cdiv(inp * 4, 32) + 2 * out * (inp // g) + 16
        if s == "w4a16-asym":  # weight_zero_point [ceil(out/8), in/G] i32
            b += 4 * cdiv(out * 4, 32) * (inp // g)
        return b
    if s in ("w8a8-int8", "fp8-dynamic"):  # 8-bit weight [out, in], f32 channel scale [out, 1]
        return out * inp + 4 * out
    if s == "fp8-static":  # 8-bit weight, f32 weight_scale and input_scale per shard
        return out * inp + 8 * n
    if s in ("nvfp4", "nvfp4a16"):  # u8 [out, in/2], fp8 [out, in/16], f32 global scale(s) per shard
        return out * (inp // 2) + out * (inp // 16) + 4 * n * (2 if s == "nvfp4" else 1)
    if s == "mxfp4a16":  # u8 [out, in/2], u8 E8M0 [out, in/32]
        return out * (inp // 2) + out * (inp // 32)
    raise ValueError(s)


def _loaded_sm8x_delta(f: VllmQuantFormat, shards: list[int], inp: int) -> int:
    """What Marlin's process_weights_after_loading changes in one GPTQ / AutoRound linear (symmetric:
    qzeros freed; qweight and scales padded to the thread tile)."""
    if f.scheme != "gptq":
        return 0
    out, g, pack = sum(shards), f.group, 32 // f.bits
    pn, pk = marlin_padded_nk(out, inp, g)
    return (4 * (pk // pack) * pn - 4 * (inp // pack) * out + 2 * (pk // g) * pn - 2 * (inp // g) * out
            - 4 * (inp // g) * (out // pack))  # fmt: skip


def _moe_bytes(f: VllmQuantFormat, e: int, i: int, h: int) -> int:
    """Bytes one rank's routed experts allocate: ``e`` local experts of width ``i``, hidden ``h``."""
    g, s = f.group, f.scheme
    if s == "awq":
        return e * (4 * h * (2 * i // 8) + 4 * i * (h // 8) + 2 * (h // g) * 2 * i + 2 * (i // g) * h
                    + 4 * (h // g) * (2 * i // 8) + 4 * (i // g) * (h // 8))  # fmt: skip
    if s == "gptq":
        pack = 32 // f.bits
        return e * (4 * (h // pack) * 2 * i + 4 * (i // pack) * h + 2 * (h // g) * 2 * i + 2 * (i // g) * h
                    + 4 * (h // g) * (2 * i // pack) + 4 * (i // g) * (h // pack)
                    + 2 * 2 * i + 2 * h)  # fmt: skip
    if s in ("w4a16", "w4a16-asym"):
        b: int = e * (
            4 * 2 * i * (h // 8) + 4 * h * (i // 8) + 2 * 2 * i * cdiv(h, g) + 2 * h * cdiv(i, g) + 2 * 2 * 2
        )
        if s == "w4a16-asym":
            b += e * (4 * (2 * i // 8) * cdiv(h, g) + 4 * (h // 8) * cdiv(i, g))
        return b
    if s in ("w8a8-int8", "fp8-dynamic"):
        return e * (3 * i * h + 4 * 2 * i + 4 * h)
    if s == "fp8-static":
        return e * (3 * i * h + 4 * 2 + 4 + 4 + 4)
    if s in ("nvfp4", "nvfp4a16"):
        return e * (3 * i * (h // 2) + 2 * i * (h // 16) + h * (i // 16) + 4 * 3 + 4 * 3)
    if s == "mxfp4a16":
        return e * (3 * i * (h // 2) + 2 * i * (h // 32) + h * (i // 32))
    raise ValueError(s)


def _moe_wna16_bytes(f: VllmQuantFormat, e: int, i: int, h: int) -> int:
    """moe_wna16.py ``MoeWNA16Method``: the fallback when Marlin MoE cannot take the layer. uint8 codes
    [E, 2I, H*b/8] and [E, H, I*b/8]; scales [E, 2I, H/g], [E, H, I/g] with g halved until it divides I and
    H; AWQ zero points uint8 [E, 2I*b/8, H/g], [E, H*b/8, I/g]; symmetric GPTQ's are empty."""
    g = f.group
    while i % g or h % g:
        g //= 2
        if g < 32:
            msg = f"MoeWNA16: no group size >= 32 divides the expert width {i} (AssertionError)"
            raise EngineRefusal(msg)
    b = e * (2 * i * (h * f.bits // 8) + h * (i * f.bits // 8) + 2 * 2 * i * (h // g) + 2 * h * (i // g))
    if f.scheme == "awq":
        b += e * (2 * i * f.bits // 8 * (h // g) + h * f.bits // 8 * (i // g))
    return b


def _marlin_moe_ok(f: VllmQuantFormat, i: int, h: int) -> bool:
    """marlin_utils.py check_moe_marlin_supports_config (allow_tile_padding=True)."""
    return h % 128 == 0 and i % f.group == 0 and f.group in (-1, 32, 64, 128)


# compute capability of the GPUs the fixture simulates (the quant methods only ask the capability)
GPU_CAPABILITY = {"RTX3090": 86, "A100": 80, "L40S": 89, "RTX4090": 89, "H100": 90, "H200": 90, "B200": 100,
                  "GB200": 100, "RTX5090": 120, "RTXPRO6000": 120}  # fmt: skip


def _moe_bytes_fmt(f: VllmQuantFormat, e: int, i: int, h: int, global_e: int, capability: int) -> int:
    if f.scheme in ("awq", "gptq") and not _marlin_moe_ok(f, i, h):
        return _moe_wna16_bytes(f, e, i, h)
    if f.kind == "modelopt" and f.scheme == "nvfp4" and capability >= 100:
        # modelopt.py ModelOptNvFp4FusedMoE: with a FlashInfer NVFP4 MoE backend (SM100 TRTLLM, SM120 CUTLASS)
        # the input scales [E, 2] / [E] cover every global expert (use_global_sf, fused_moe/oracle/nvfp4.py)
        return _moe_bytes(f, e, i, h) + (global_e - e) * 4 * 3
    if f.kind == "modelopt" and f.scheme == "fp8-static":  # w13 weight scale [E, 2], w2 [E], input [E] each
        return e * (3 * i * h + 4 * 2 + 4 + 4 + 4)
    return _moe_bytes(f, e, i, h)


# --------------------------------------------------------------------------------------------------
# the rank


@cache
def _bf16_weights(spec: ModelSpec, vision: bool) -> WeightMap:
    return gpu_weights(spec, "bf16", mtp=False, vision=vision and spec.vision is not None)


def _shards(spec: ModelSpec, key: str, parts: list[int]) -> list[int]:
    """vLLM's logical output partitions of a fused module (scalar scales are per partition)."""
    if (
        key == "qkvz" and spec.family != "qwen3_next"
    ):  # [k, k, v, v] (qwen_gdn_linear_attn.py create_qkvz_proj)
        t = spec.text
        tp_rows = sum(parts)
        k = t.linear_num_key_heads * t.linear_key_head_dim
        v = t.linear_num_value_heads * t.linear_value_head_dim
        scale = tp_rows / (2 * k + 2 * v)
        return [round(k * scale), round(k * scale), round(v * scale), round(v * scale)]
    if key == "qkvz":
        return [sum(parts)]
    if key == "ba" and spec.family == "qwen3_next":
        return [sum(parts)]
    return parts


def vllm_quant_rank_weight_bytes(
    spec: ModelSpec, fmt: str | VllmQuantFormat, *, tp: int = 1, stage: range | None = None, dp: int = 1,
    expert_parallel: bool = False, ep_rank: int = 0, gpu: str | int = "H100", vision: bool = True,
    loaded_sm8x: bool = False,
) -> int:  # fmt: skip
    """Parameter bytes vLLM 0.33.0 allocates on one rank of the main model for checkpoint format ``fmt``
    (:data:`VLLM_QUANT_FORMATS`), as created (before ``process_weights_after_loading``). ``stage``: the PP
    stage's layers. ``gpu``: a name of :data:`GPU_CAPABILITY` or a compute capability (90 = SM90); the created
    bytes are the same on SM86, SM90, SM100 and SM120 except ModelOpt NVFP4 experts under EP on SM100+.
    ``vision``: the tower is built (False: ``--language-model-only``).
    Raises :class:`EngineRefusal` for a format or layout vLLM refuses."""
    f = fmt if isinstance(fmt, VllmQuantFormat) else VLLM_QUANT_FORMATS.get(fmt)
    if f is None:
        raise ValueError(f"unknown vLLM checkpoint format {fmt!r}; valid: {', '.join(VLLM_QUANT_FORMATS)}")
    if f.refused:
        raise EngineRefusal(f"vLLM 0.33.0 refuses {f.name}: {f.refused}")
    t = spec.text
    layers = stage if stage is not None else range(t.num_hidden_layers)
    w = _bf16_weights(spec, vision)
    total = vllm_rank_weight_bytes(spec, w, tp=tp, stage=layers, dp=dp, expert_parallel=expert_parallel,
                                   sm100=False, ep_rank=ep_rank)  # fmt: skip
    roles = _RECIPES[f.recipe]
    if f.recipe == "experts" and not spec.is_moe:
        roles = _DENSE
    seq_parallel_moe = expert_parallel and tp > 1 and dp > 1
    groups: dict[tuple[int, str], list[WeightEntry]] = {}
    for e in w.tensors:
        if e.component != "text" or e.layer is None or e.layer not in layers:
            continue
        if e.role in ROUTED_EXPERT_ROLES:
            continue
        key = _FUSED.get(e.role, e.name)
        groups.setdefault((e.layer, key), []).append(e)
    fp8_roles = _RECIPES[f.fp8_recipe] if f.fp8_recipe else frozenset()
    fp8 = dataclasses.replace(f, scheme="fp8-static", bits=8)
    for (_, key), parts in groups.items():
        role = parts[0].role
        sliced = [rank_slice(p, spec, tp, seq_parallel_moe) for p in parts]
        bf16 = sum(r * c * 2 for r, c in sliced)
        if role in roles or role in fp8_roles:
            inp = sliced[0][1]
            shards = _shards(spec, key, [r for r, _ in sliced])
            total += _linear_bytes(f if role in roles else fp8, shards, inp) - bf16
            if loaded_sm8x and role in roles:
                total += _loaded_sm8x_delta(f, shards, inp)
        elif (
            key == "ba" and f.kind in ("awq", "gptq", "autoround") and spec.family != "qwen3_next" and tp > 1
        ):
            total += sum(p.shape[0] * p.shape[1] * 2 for p in parts) - bf16  # replicated for Marlin
    if spec.is_moe and "expert_gate" in roles:
        size = tp * dp if expert_parallel else 1
        n = t.num_experts // size + (1 if ep_rank < t.num_experts % size else 0)
        i = moe_width_per_rank(spec, tp, dp, expert_parallel, sm100=False, fp8=False)
        n_moe = sum(1 for li in layers if li not in (t.mlp_only_layers or ()))
        cap = gpu if isinstance(gpu, int) else GPU_CAPABILITY.get(gpu, 90)
        q = _moe_bytes_fmt(f, n, i, t.hidden_size, t.num_experts, cap)
        total += n_moe * (q - n * 3 * i * t.hidden_size * 2)
    if f.quant_lm_head and (layers.stop == t.num_hidden_layers or spec.family == "qwen3_next"):
        lm = next(e for e in w.tensors if e.role == "lm_head")
        rows, cols = rank_slice(lm, spec, tp, seq_parallel_moe)
        total += _linear_bytes(f, [rows], cols) - rows * cols * 2
    n_attn = sum(1 for li in layers if t.layer_types[li] == "full_attention")
    if f.kind == "ct":
        total += 18 * n_attn  # q/k/v scale f32 + zero point bf16 (CompressedTensorsKVCacheMethod)
    elif f.kind == "modelopt":
        total += 8 * n_attn  # q/k/v/prob scale bf16 (ModelOptKVCacheMethod)
    return total


def vllm_quant_drafter_weight_bytes(
    spec: ModelSpec, fmt: str | VllmQuantFormat, *, tp: int = 1, pp: int = 1, dp: int = 1,
    expert_parallel: bool = False, gpu: str | int = "H100", loaded_sm8x: bool = False,
) -> int:  # fmt: skip
    """What the MTP drafter allocates on the last stage for checkpoint format ``fmt``: the ``mtp.*`` tensors
    as :func:`.weights.vllm_drafter_weight_bytes` counts them in BF16, with the drafter's decoder-layer
    projections in the format's scheme when the checkpoint quantizes them (``quant_mtp``): vLLM builds
    ``Qwen3_5MultiTokenPredictor.layers`` with the target's quant config (models/qwen3_5_mtp.py:110-126)."""
    f = fmt if isinstance(fmt, VllmQuantFormat) else VLLM_QUANT_FORMATS[fmt]
    w = _bf16_mtp_weights(spec)
    total = vllm_drafter_weight_bytes(spec, w, tp=tp, pp=pp, dp=dp, expert_parallel=expert_parallel)
    if not f.quant_mtp:
        return total
    t = spec.text
    roles = _RECIPES[f.recipe]
    if f.recipe == "experts" and not spec.is_moe:
        roles = _DENSE
    seq_parallel_moe = expert_parallel and tp > 1 and dp > 1
    groups: dict[tuple[int | None, str], list[WeightEntry]] = {}
    for e in w.tensors:
        if e.component == "mtp" and e.role not in ROUTED_EXPERT_ROLES and e.role in roles:
            groups.setdefault((e.layer, _FUSED.get(e.role, e.name)), []).append(e)
    for (_, key), parts in groups.items():
        sliced = [rank_slice(p, spec, tp, seq_parallel_moe) for p in parts]
        shards = _shards(spec, key, [r for r, _ in sliced])
        total += _linear_bytes(f, shards, sliced[0][1]) - sum(r * c * 2 for r, c in sliced)
        if loaded_sm8x:
            total += _loaded_sm8x_delta(f, shards, sliced[0][1])
    if spec.is_moe and "expert_gate" in roles:
        size = tp * dp if expert_parallel else 1
        n = t.num_experts // size
        i = moe_width_per_rank(spec, tp, dp, expert_parallel, sm100=False, fp8=False)
        cap = gpu if isinstance(gpu, int) else GPU_CAPABILITY.get(gpu, 90)
        q = _moe_bytes_fmt(f, n, i, t.hidden_size, t.num_experts, cap)
        total += spec.mtp_layers * (q - n * 3 * i * t.hidden_size * 2)
    return total


@cache
def _bf16_mtp_weights(spec: ModelSpec) -> WeightMap:
    return gpu_weights(spec, "bf16", mtp=True, vision=False)


# qwenfit's GPU formats (qwenfit.core.formats.gpu) as vLLM loads them: (vLLM format, recipe override).
# No override: the same recipe qwenfit prices the checkpoint with was measured in vLLM. An override keeps
# vLLM's create_weights shapes (measured) but applies qwenfit's module list, which was not measured as such.
_OF_QWENFIT: dict[str, tuple[str, str | None]] = {
    "awq": ("awq", None),
    "gptq": ("gptq", None),
    "gptq-int8": ("gptq-int8", "gptqmodel"),  # measured experts-only (btbtyler09 style); qwenfit: full tree
    "autoround": ("autoround", None),
    "w4a16": ("w4a16", None),
    "w8a8": ("w8a8", None),
    "fp8-dynamic": ("fp8-dynamic", "llmc"),  # qwenfit's split is xega-ai's published one (shared experts FP8)
    "nvfp4": ("nvfp4-modelopt", None),
    "nvfp4-all": ("nvfp4-ct", None),
    "bnb-nf4": ("bnb-nf4", None),
    "bnb-fp4": ("bnb-nf4", None),
    "bnb-nf4-dq": ("bnb-nf4", None),
    "bnb-fp4-dq": ("bnb-nf4", None),
    "bnb-int8": ("bnb-int8", None),
}


# the checkpoint a quant name names for vLLM where a model's published one has its own recipe
# (data/artifacts): a Qwen3.6 "nvfp4" is NVIDIA's export (nvidia/Qwen3.6-27B-NVFP4, nvidia/Qwen3.6-35B-A3B-
# NVFP4, the vllm-project/recipes' model_id for both), MIXED_PRECISION, not the experts-only recipe of the
# Qwen3.5-397B export qwenfit's "nvfp4" describes; Qwen3.6-27B's "autoround" is Intel's (and Lorbus') int4
# export, whose MTP layer is quantized too
_PUBLISHED: dict[tuple[str, str], str] = {
    ("nvfp4", "Qwen3.6-"): "nvfp4-modelopt-mixed",
    ("autoround", "Qwen3.6-27B"): "autoround-mtp",
}


def vllm_format_of(
    name: str, group: int | None = None, spec: ModelSpec | None = None
) -> tuple[VllmQuantFormat, bool] | None:
    """The vLLM checkpoint format of qwenfit's GPU format ``name`` (group size ``group`` if given) and
    whether that combination was measured as such; None: vLLM's allocation for it is not modelled.
    ``spec``: the model, where its published checkpoint of that name has its own recipe (Qwen3.6 NVFP4)."""
    for (quant, prefix), published in _PUBLISHED.items():
        f = VLLM_QUANT_FORMATS[published]
        if spec is not None and quant == name and spec.name.startswith(prefix) and group in (None, f.group):
            return f, True
    entry = _OF_QWENFIT.get(name)
    if entry is None:
        return None
    f = VLLM_QUANT_FORMATS[entry[0]]
    if entry[1] is not None:
        f = dataclasses.replace(f, recipe=entry[1])
    if group is not None and group != f.group and f.kind in ("awq", "gptq", "autoround", "ct"):
        f = dataclasses.replace(f, group=group)
    return f, entry[1] is None
