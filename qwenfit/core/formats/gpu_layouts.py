"""Storage layouts of GPU quantization formats: how a packer writes one quantized matrix (codes,
scales, zero points, group indices, padding, per-module scalars), as ``[(part, bytes)]`` for ``n``
matrices of ``out x in`` with group ``g``. Each layout cites the packer's source;
:mod:`qwenfit.core.formats.gpu` pairs them with the recipes that say which modules are quantized.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from qwenfit.core.units import cdiv

__all__ = [
    "BNB_BLOCK",
    "BNB_NESTED_BLOCK",
    "BNB_OFFSET_REPR",
    "Parts",
    "awq",
    "bnb4",
    "bnb4_json",
    "bnb8",
    "channel8",
    "ct_pack",
    "fp4",
    "fp8_block",
    "gptq",
    "mlx_affine",
    "mlx_float",
]


Parts = list[tuple[str, int]]


def fp8_block(n: int, o: int, i: int, g: int) -> Parts:
    # weight F8_E4M3 [out, in]; weight_scale_inv BF16 [ceil(out/128), ceil(in/128)] (
    # QuixiAI/Quantize-Qwen3.5 writes bfloat16 [ceil(out/128), ceil(in/128)]; friendli.ai page for the
    # Qwen3.6 FP8 format); partial edge blocks get their own scale, nothing is padded
    return [("weight", n * o * i), ("scale", n * cdiv(o, 128) * cdiv(i, 128) * 2)]


def channel8(n: int, o: int, i: int, g: int) -> Parts:
    # compressed-tensors CHANNEL strategy: weight_scale [out, 1] in the weight's dtype (BF16);
    # symmetric => no zero point saved (vllm-project/compressed-tensors:
    # src/compressed_tensors/quantization/lifecycle/initialize.py@027d00c initialize_qparams,
    # compressors/quantized_compressors/base.py@041fba0 _skip_zp); FP8_DYNAMIC / INT8_W8A8 activations
    # are dynamic: no input scales (quantization/quant_scheme.py@0bb1251)
    return [("weight", n * o * i), ("scale", n * o * 2)]


def awq(n: int, o: int, i: int, g: int) -> Parts:
    # casper-hansen/AutoAWQ: awq/modules/linear/gemm.py@030fe2a WQLinear_GEMM: asserts
    # in % group == 0 and out % 8 == 0; qweight int32 [in, out/8], qzeros int32 [in/G, out/8],
    # scales fp16 [in/G, out]
    groups = i // g
    return [
        ("weight", n * i * (o // 8) * 4),
        ("zero", n * groups * (o // 8) * 4),
        ("scale", n * groups * o * 2),
    ]


def gptq(bits: int) -> Callable[[int, int, int, int], Parts]:
    def layout(n: int, o: int, i: int, g: int) -> Parts:
        # ModelCloud/GPTQModel: gptqmodel/nn_modules/qlinear/__init__.py@00f3d5e
        # GPTQQuantLinear._register_gptq_buffers: qweight int32 [in // 32 * bits, out],
        # qzeros int32 [ceil(in/G), out // 32 * bits], scales fp16 [ceil(in/G), out],
        # g_idx int32 [in] (written whether or not desc_act)
        groups = cdiv(i, g)
        return [
            ("weight", n * (i // 32 * bits) * o * 4),
            ("zero", n * groups * (o // 32 * bits) * 4),
            ("scale", n * groups * o * 2),
            ("g_idx", n * i * 4),
        ]

    return layout


def autoround(bits: int) -> Callable[[int, int, int, int], Parts]:
    def layout(n: int, o: int, i: int, g: int) -> Parts:
        # intel/auto-round 0.16.1 (PyPI), default export format "auto_round" (weight-only):
        # auto_round_extension/torch/qlinear_torch.py QuantLinear: qweight int32 [in // 32 * bits, out],
        # qzeros int32 [ceil(in/G), out // 32 * bits], scales fp16 [ceil(in/G), out]; g_idx only for
        # the gptqmodel backend (g_idx=False by default)
        groups = cdiv(i, g)
        return [
            ("weight", n * (i // 32 * bits) * o * 4),
            ("zero", n * groups * (o // 32 * bits) * 4),
            ("scale", n * groups * o * 2),
        ]

    return layout


def ct_pack(bits: int) -> Callable[[int, int, int, int], Parts]:
    def layout(n: int, o: int, i: int, g: int) -> Parts:
        # vllm-project/compressed-tensors: compressors/quantized_compressors/pack_quantized.py@179cba9
        # pack_to_int32 pads the last dim to a multiple of 32/bits: weight_packed int32
        # [out, ceil(in/(32/bits))]; weight_shape int64 [2]; symmetric => zero point not saved;
        # weight_scale [out, ceil(in/G)] (strategy_cdiv rounds up) in the weight dtype (BF16)
        pack = 32 // bits
        return [
            ("weight", n * o * cdiv(i, pack) * 4),
            ("scale", n * o * cdiv(i, g) * 2),
            ("meta", n * 2 * 8),
        ]

    return layout


def fp4(group: int, scalars: int) -> Callable[[int, int, int, int], Parts]:
    def layout(n: int, o: int, i: int, g: int) -> Parts:
        # vllm-project/compressed-tensors: compressors/quantized_compressors/fp4_quantized.py@0c9d5c7
        # pack_fp4_to_uint8: uint8 [out, in/2] (raises on odd in); weight_scale [out, ceil(in/G)] one
        # byte each (NVFP4 F8_E4M3 per 16, MXFP4 uint8 E8M0 per 32); NVFP4's TENSOR_GROUP strategy adds
        # F32 weight_global_scale [1] and input_global_scale [1] (= ModelOpt weight_scale_2,
        # input_scale: 8 B per module)
        return [("weight", n * o * (i // 2)), ("scale", n * o * cdiv(i, group)), ("meta", n * scalars)]

    return layout


def mlx_affine(bits: int) -> Callable[[int, int, int, int], Parts]:
    def layout(n: int, o: int, i: int, g: int) -> Parts:
        # mlx.core.quantize (ml-explore.github.io/mlx/build/html/python/_autosummary/
        # mlx.core.quantize.html): w_q uint32 [..., in*bits/32]; affine scales and biases
        # [..., in/G] in the input dtype (BF16 after mlx_lm.convert's cast)
        return [("weight", n * o * (i * bits // 32) * 4), ("scale", n * o * (i // g) * 2 * 2)]

    return layout


def mlx_float(bits: int, group: int) -> Callable[[int, int, int, int], Parts]:
    def layout(n: int, o: int, i: int, g: int) -> Parts:
        # same page: mxfp4 (G=32, e8m0), mxfp8 (G=32, e8m0), nvfp4 (G=16, e4m3): uint8 scales,
        # no biases
        return [("weight", n * o * (i * bits // 32) * 4), ("scale", n * o * (i // group))]

    return layout


# --------------------------------------------------------------------------------------------------
# bitsandbytes (per module; blocks run over the flattened weight, not per row)

BNB_BLOCK = 64  # bitsandbytes functional.quantize_4bit default blocksize
BNB_NESTED_BLOCK = 256  # compress_statistics: quantize_blockwise(absmax - offset, blocksize=256)
BNB_OFFSET_REPR = "0." + "1" * 18  # assumed 20-character repr of nested_offset (a float32 mean)


def bnb4_json(quant_type: str, nested: bool, o: int, i: int) -> int:
    # bitsandbytes functional.QuantState.as_dict(packed=True): the non-tensor entries are serialised
    # by pack_dict_to_tensor (json.dumps(...).encode("utf-8") as a uint8 tensor) under
    # "quant_state.bitsandbytes__<quant_type>"; dtype is str(torch.bfloat16).strip("torch.")
    state: dict[str, object] = {"quant_type": quant_type, "blocksize": BNB_BLOCK, "dtype": "bfloat16"}
    state["shape"] = [o, i]
    if nested:
        state.update(nested_blocksize=BNB_NESTED_BLOCK, nested_dtype="float32")
        return len(json.dumps(state)) + len(', "nested_offset": ') + len(BNB_OFFSET_REPR)
    return len(json.dumps(state))


def bnb4(quant_type: str, nested: bool) -> Callable[[int, int, int, int, bool, int], Parts]:
    def layout(n: int, o: int, i: int, g: int, first: bool, module_o: int) -> Parts:
        # bitsandbytes quantize_4bit: out uint8 [(numel+1)//2, 1]; absmax F32 [ceil(numel/64)];
        # QuantState code ("quant_map") F32 [16]; with compress_statistics the absmax is stored uint8
        # and gains nested_absmax F32 [ceil(blocks/256)] + nested_quant_map F32 [256]
        numel = o * i
        blocks = cdiv(numel, BNB_BLOCK)
        parts: Parts = [("weight", n * ((numel + 1) // 2))]
        if nested:
            parts.append(("scale", n * (blocks + cdiv(blocks, BNB_NESTED_BLOCK) * 4)))
        else:
            parts.append(("scale", n * blocks * 4))
        if first:  # once per nn.Linear (a fused module's later parts share them)
            meta = (
                16 * 4 + (BNB_NESTED_BLOCK * 4 if nested else 0) + bnb4_json(quant_type, nested, module_o, i)
            )
            parts.append(("meta", n * meta))
        return parts

    return layout


def bnb8(n: int, o: int, i: int, g: int, first: bool, module_o: int) -> Parts:
    # bitsandbytes nn.Linear8bitLt._save_to_state_dict: weight int8 [out, in], SCB F32 [out],
    # weight_format = torch.tensor(0, dtype=torch.uint8) (1 byte)
    return [("weight", n * o * i), ("scale", n * o * 4), ("meta", n * (1 if first else 0))]


# --------------------------------------------------------------------------------------------------
# the registry
