#!/usr/bin/env python3
"""Fixture of the weight bytes each vLLM rank allocates for *quantized* Qwen3.5 / Qwen3-Next checkpoints,
from vLLM's own classes (the companion of ``vllm_rank_weights.py``, which covers BF16 and Qwen's block FP8).

vLLM 0.33.0's model classes are built full-size on the meta device with a simulated parallel state, one rank
at a time, exactly as ``_vllm_ranks_sim`` does for BF16 (same stubs, same counting), with a
``quantization_config`` in the model's config.json shaped like a published checkpoint's (``FORMATS`` below:
every entry names its source). Where vLLM decides what is quantized from the checkpoint's safetensors dtypes
(GPTQ without ``modules_in_block_to_quantize``), the model directory also gets a header-only
``model.safetensors`` listing the checkpoint's tensor names and dtypes (no data; vLLM reads only the header).

Counted: every parameter and buffer after the model's ``__init__`` (the quant methods' ``create_weights``),
i.e. what is allocated before ``process_weights_after_loading``. The kernels' repacking (Marlin, Machete,
CUTLASS FP4 swizzle) runs after loading and needs the CUDA extension (``vllm._C``), which a CPU-only machine
cannot import; what each repack does to the byte count is read from the source and recorded in the
fixture's ``after_loading`` section instead.

How to run (CPU-only; the venv of scripts/vllm_fixtures.py)::

    QWENFIT_VLLM_CACHE=/work/cache/vllm /work/venvs/vllm/bin/python scripts/vllm_quant_rank_weights.py

Options: ``--models GLOB``, ``--formats GLOB``, ``--gpus H100,B200``, ``--workers N``, ``--quick`` (TP 1, PP
1, H100: prints, does not write), ``--detail MODEL FORMAT GPU TP`` (every parameter of rank 0, for
debugging).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import _vllm_env as env  # noqa: E402

MODELS = [
    "Qwen3.5-9B",
    "Qwen3.5-27B",
    "Qwen3.6-27B",
    "Qwen3.5-35B-A3B",
    "Qwen3.6-35B-A3B",
    "Qwen3.5-122B-A10B",
    "Qwen3-Next-80B-A3B",
]
# simulated GPUs: the compute capability drives the quant methods' kernel choice and vLLM's refusals
GPUS = {
    "RTX3090": {"capability": [8, 6], "name": "NVIDIA GeForce RTX 3090"},
    "H100": {"capability": [9, 0], "name": "NVIDIA H100 80GB HBM3"},
    "B200": {"capability": [10, 0], "name": "NVIDIA B200"},
    "RTX5090": {"capability": [12, 0], "name": "NVIDIA GeForce RTX 5090"},
}
TPS = [1, 2, 4, 8]
PPS = [1, 2]
MOE_PARALLEL = [(1, False), (1, True), (2, True)]  # (dp, expert parallel)

# --------------------------------------------------------------------------------------------------
# the formats: quantization_config shapes and what each published recipe keeps unquantized

_LLMC_EXAMPLES = "vllm-project/llm-compressor@ab1ba3effcafc15746cd6d6ca24cba3f7bd7a582"
SOURCES = {
    "llmc_nvfp4_qwen35": f"{_LLMC_EXAMPLES}:examples/quantization_w4a4_fp4/qwen3_5_example.py (NVFP4, "
    "ignore re:.*lm_head, re:visual.*, re:model.visual.*, re:.*mlp.gate$, re:.*embed_tokens$, "
    "re:.*shared_expert_gate$, re:.*linear_attn.*); same list in docs/key-models/qwen3.5/"
    "nvfp4-moe-example.md, which names RedHatAI/Qwen3.5-122B-A10B-NVFP4 as the published checkpoint",
    "llmc_nvfp4_qwen3next": f"{_LLMC_EXAMPLES}:examples/quantization_w4a4_fp4/qwen3_next_example.py (NVFP4, "
    "ignore lm_head, re:.*mlp.gate$, re:.*mlp.shared_expert_gate$, re:.*linear_attn.*)",
    "llmc_nvfp4a16_qwen35": f"{_LLMC_EXAMPLES}:examples/quantization_w4a16_fp4/nvfp4/qwen3.5_example.py "
    "(NVFP4A16, ignore lm_head, re:.*visual.*, re:.*linear_attn.*)",
    "llmc_mxfp4a16_qwen35": f"{_LLMC_EXAMPLES}:examples/quantization_w4a16_fp4/mxfp4/qwen3.5_example.py "
    "(MXFP4A16, ignore lm_head, re:.*visual.*, re:.*linear_attn.*)",
    "llmc_fp8_qwen35": "vllm-project/llm-compressor:examples/quantization_w8a8_fp8/qwen3_5_moe.py (FP8_DYNAMIC, "  # noqa: E501
    "ignore re:.*lm_head, re:visual.*, re:model.visual.*, re:.*mlp.gate$, re:.*embed_tokens$, "
    "re:.*shared_expert_gate$, re:.*mlp\\.shared_expert$, re:.*linear_attn.*); published as "
    "RedHatAI/Qwen3.5-{4B,9B,35B-A3B,122B-A10B,397B-A17B}-FP8-dynamic "
    f"({_LLMC_EXAMPLES}:docs/key-models/qwen3.5/index.md)",
    "llmc_fp8_qwen3next": f"{_LLMC_EXAMPLES}:examples/quantization_w8a8_fp8/qwen3_next_example.py (FP8_DYNAMIC, "  # noqa: E501
    "ignore lm_head, re:.*mlp.gate$, re:.*mlp.shared_expert_gate$, re:.*linear_attn.*)",
    "llmc_w8a8_qwen35": f"{_LLMC_EXAMPLES}:examples/model_free_ptq/qwen3.5_int8.py (W8A8, ignore lm_head, "
    "re:.*mlp.gate$, re:.*mlp.shared_expert_gate.*, re:.*norm.*, re:.*embed_tokens.*, re:.*visual.*, "
    "re:.*conv1d.*); published as RedHatAI/Qwen3.5-{4B,9B}-quantized.w8a8 (docs/key-models/qwen3.5/index.md)",
    "llmc_w4a16_qwen35": "RedHatAI/Qwen3.5-{4B,9B}-quantized.w4a16 (vllm-project/llm-compressor "
    "docs/key-models/qwen3.5/index.md); ignore list assumed = the llm-compressor Qwen3.5 examples' "
    "(lm_head, visual, mlp.gate, shared_expert_gate, linear_attn), as qwenfit.core.formats.gpu 'w4a16'",
    "llmc_awq_qwen3next": f"{_LLMC_EXAMPLES}:examples/awq/qwen3_next_example.py (AWQModifier W4A16, "
    "ignore lm_head, re:.*mlp.gate$, re:.*mlp.shared_expert_gate$: linear_attn quantized)",
    "gptq_btbtyler": "btbtyler09/Qwen3.5-35B-A3B-GPTQ-8bit and btbtyler09/Qwen3.5-122B-A10B-GPTQ-4bit cards "
    "(http://72.11.147.182/btbtyler09/Qwen3.5-35B-A3B-GPTQ-8bit, "
    "https://hugingapi.com/btbtyler09/Qwen3.5-122B-A10B-GPTQ-4bit): GPTQModel v5.7.1, routed experts only, "
    "sym, desc_act false, group 32; attention, linear attention, shared experts, vision, MTP, embeddings, "
    "lm_head kept BF16/FP16",
    "gptq_gptqmodel_tree": "GPTQModel module tree (ModelCloud/GPTQModel gptqmodel/models/definitions/"
    "qwen3_5*.py, as qwenfit.core.formats.gpu 'gptq'): q/k/v/o, in_proj_qkv, in_proj_z, out_proj, dense MLP, "
    "shared + routed experts; in_proj_a/b, router, shared_expert_gate, vision, MTP kept. Same split as "
    "btbtyler09/Qwen3.6-27B-GPTQ-4bit (https://hub.hfp.audrey.cafe/btbtyler09/Qwen3.6-27B-GPTQ-4bit) and "
    "LibertAIDAI/Qwen3.6-27B-W4A16-G128 (https://hub.hfp.audrey.cafe/LibertAIDAI/Qwen3.6-27B-W4A16-G128, "
    "gptqmodel 6.0.3, group 128, desc_act true)",
    "autoround_nchapman": "nchapman/Qwen3.6-35B-A3B-int4-AutoRound "
    "(https://huggingface.co/nchapman/Qwen3.6-35B-A3B-int4-AutoRound): AutoRound 0.12.2, W4A16 sym, group "
    "128, packing auto_round:auto_gptq; kept BF16: shared_expert, shared_expert_gate, mtp.*, "
    "linear_attn.in_proj_a/in_proj_b (+ the fused in_proj_ba override), mlp.gate, model.visual.*, lm_head",
    "autoround_27b": "j3st3r666/Qwen3.6-27B-int4-AutoRound (https://friendli.ai/models/j3st3r666/"
    "Qwen3.6-27B-int4-AutoRound): auto-round default recipe, INT4 W4A16 group 128 sym; kept: norms, "
    "routers, linear_attn.in_proj_a/b, MTP fc",
    "modelopt_nvfp4": "nvidia/Qwen3.5-397B-A17B-NVFP4 (ModelOpt; routed experts NVFP4, everything else BF16: "
    "lukealonso/Qwen3.5-397B-A17B-NVFP4 card via shared/reference/quant-formats.md §4.3; config.json "
    "quantization_config.ignore incl. model.language_model.layers..mlp.gate and mtp.fc per "
    "AlexGS74/glm47-nvfp4-sm120@2a4692d:docs/qwen35-397b-nvfp4-recipes.md 'Critical Config Fixes')",
    "modelopt_nvfp4_dense": "davidyu-nv/Qwen3.5-9B-NVFP4-MSE (https://friendli.ai/models/davidyu-nv/"
    "Qwen3.5-9B-NVFP4-MSE, ModelOpt): MLP NVFP4; self_attn, linear_attn, embed, lm_head, norm, mtp, visual "
    "BF16",
    "modelopt_mixed_qwen36": "nvidia/Qwen3.6-27B-NVFP4 and nvidia/Qwen3.6-35B-A3B-NVFP4 (ModelOpt "
    "MIXED_PRECISION, vLLM prints quantization=modelopt_mixed): quantized_layers lists the routed experts, "
    "shared_expert.* / the dense mlp.* and lm_head as W4A16_NVFP4 or NVFP4 (group 16), self_attn q/k/v/o and "
    "linear_attn in_proj_qkv / in_proj_z / out_proj as FP8; exclude mtp* (an hf_quant_config.json 'in "
    "miniature' of the 35B-A3B export, search-index file 55831486223; the club-3090 compose "
    "models/qwen3.6-35b-a3b/vllm/compose/single/nvfp4/fp8.yml header; the 27B GB10 log's FP8 / NVFP4 / "
    "W4A16_NVFP4 lines, tests/fixtures/field_logs/vllm/vllm-qwen36-27b-nvfp4-modelopt-gb10-v0231.yaml)",
    "modelopt_nvfp4_all_sakamakismile": "sakamakismile/Qwen3.6-27B-Text-NVFP4-MTP (ModelOpt NVFP4, vLLM "
    "prints quantization modelopt_fp4 and a FlashInferCutlassNvFp4LinearKernel): every text-model linear "
    "NVFP4 (18.29 GiB checkpoint, 17.62 GiB loaded text-only: tests/fixtures/field_logs/vllm/"
    "vllm-qwen36-27b-nvfp4-wsl-eager-v0200.yaml); embeddings, lm_head, routers, conv1d, vision, mtp BF16",
    "modelopt_fp8": "ModelOpt FP8 (quant_algo FP8, per-tensor weight + static input scale), same module "
    "selection as ModelOpt NVFP4_DEFAULT_CFG for Qwen3.5 (berkerdooo/Qwen3.6-27B-NVFP4 card, "
    "https://hf.kigml.com/berkerdooo/Qwen3.6-27B-NVFP4: all language-model linears incl. linear-attention "
    "projections; visual, lm_head, conv1d, mtp, routers excluded)",
}

# role sets (qwenfit.core.model.inventory.ROLES)
_ATTN = {"attn_q", "attn_k", "attn_v", "attn_o"}
_GDN_BIG = {"gdn_qkv", "gdn_z", "gdn_out"}
_GDN_SMALL = {"gdn_a", "gdn_b", "gdn_ba"}
_EXPERTS = {"expert_gate", "expert_up", "expert_down"}
_SHARED = {"shared_expert_gate_proj", "shared_expert_up_proj", "shared_expert_down_proj"}
_DENSE = {"mlp_gate", "mlp_up", "mlp_down"}


def _recipe_roles(recipe: str, moe: bool) -> set[str]:
    """Text-model roles a recipe quantizes (vision, MTP, embeddings, lm_head, routers are never)."""
    return {
        "llmc": _ATTN | _EXPERTS | _SHARED | _DENSE,  # ignores linear_attn
        "llmc-all-linear": _ATTN | _GDN_BIG | _GDN_SMALL | _EXPERTS | _SHARED | _DENSE,
        "llmc-noshared": _ATTN | _EXPERTS | _DENSE,  # FP8 example also ignores mlp.shared_expert
        "gptqmodel": _ATTN | _GDN_BIG | _EXPERTS | _SHARED | _DENSE,
        "experts": _EXPERTS if moe else _DENSE,
        "autoround": _ATTN | _GDN_BIG | _EXPERTS | _DENSE,  # shared experts kept (nchapman)
        "modelopt-all": _ATTN | _GDN_BIG | _GDN_SMALL | _EXPERTS | _SHARED | _DENSE,
        "ffn": _EXPERTS | _SHARED | _DENSE,
        "attn-gdn": _ATTN | _GDN_BIG,
    }[recipe]


# name -> definition. kind: the quantization_config family; recipe: _recipe_roles key; per-kind fields.
FORMATS: dict[str, dict] = {
    "awq": {"kind": "awq", "recipe": "gptqmodel", "bits": 4, "group": 128, "source": "gptq_gptqmodel_tree",
            "assumed": "no published Qwen3.5/3.6 AutoAWQ (quant_method awq) config.json was found; the module "  # noqa: E501
            "split is GPTQModel's Qwen3.5 tree (GPTQModel writes both GPTQ and AWQ) and modules_to_not_convert "  # noqa: E501
            "lists the kept modules by full HF name"},
    "gptq": {"kind": "gptq", "recipe": "gptqmodel", "bits": 4, "group": 128, "desc_act": False,
             "source": "gptq_gptqmodel_tree"},
    "gptq-desc-act": {"kind": "gptq", "recipe": "gptqmodel", "bits": 4, "group": 128, "desc_act": True,
                      "source": "gptq_gptqmodel_tree"},
    "gptq-experts": {"kind": "gptq", "recipe": "experts", "bits": 4, "group": 32, "desc_act": False,
                     "source": "gptq_btbtyler"},
    "gptq-int8": {"kind": "gptq", "recipe": "experts", "bits": 8, "group": 32, "desc_act": False,
                  "source": "gptq_btbtyler"},
    "autoround": {"kind": "autoround", "recipe": "autoround", "bits": 4, "group": 128,
                  "source": "autoround_nchapman"},
    "w4a16": {"kind": "ct", "scheme": "w4a16", "recipe": "llmc", "source": "llmc_w4a16_qwen35"},
    "w4a16-awq": {"kind": "ct", "scheme": "w4a16-asym", "recipe": "llmc-all-linear", "source": "llmc_awq_qwen3next",  # noqa: E501
                  "assumed": "llm-compressor AWQModifier (asymmetric, zero points) with the Qwen3-Next AWQ "
                  "example's ignore list (linear_attn quantized, in_proj_a/b included)"},
    "w8a8": {"kind": "ct", "scheme": "w8a8-int8", "recipe": "llmc", "source": "llmc_w8a8_qwen35",
             "assumed": "the model-free int8 example also quantizes linear_attn projections; here linear_attn "  # noqa: E501
             "is kept as in the other llm-compressor Qwen3.5 examples"},
    "fp8-dynamic": {"kind": "ct", "scheme": "fp8-dynamic", "recipe": "llmc-noshared", "source": "llmc_fp8_qwen35"},  # noqa: E501
    "fp8-static": {"kind": "ct", "scheme": "fp8-static", "recipe": "llmc-noshared", "source": "llmc_fp8_qwen35",  # noqa: E501
                   "assumed": "llm-compressor scheme FP8 (static per-tensor weight and input scales) with the "  # noqa: E501
                   "FP8_DYNAMIC example's ignore list"},
    "nvfp4-ct": {"kind": "ct", "scheme": "nvfp4", "recipe": "llmc", "source": "llmc_nvfp4_qwen35"},
    "nvfp4a16-ct": {"kind": "ct", "scheme": "nvfp4a16", "recipe": "llmc", "source": "llmc_nvfp4a16_qwen35",
                    "assumed": "the NVFP4A16 example does not ignore mlp.gate / shared_expert_gate (not nn.Linear "  # noqa: E501
                    "in transformers v5 / out=1); they are kept here as vLLM never quantizes them"},
    "mxfp4a16-ct": {"kind": "ct", "scheme": "mxfp4a16", "recipe": "llmc", "source": "llmc_mxfp4a16_qwen35"},
    "nvfp4-modelopt": {"kind": "modelopt", "algo": "NVFP4", "recipe": "experts", "source": "modelopt_nvfp4"},
    "fp8-modelopt": {"kind": "modelopt", "algo": "FP8", "recipe": "modelopt-all", "source": "modelopt_fp8",
                     "assumed": "no published ModelOpt FP8 Qwen3.5 checkpoint was found; module selection as "
                     "ModelOpt's NVFP4 Qwen3.5 exports"},
    "nvfp4-modelopt-all": {"kind": "modelopt", "algo": "NVFP4", "recipe": "modelopt-all",
                           "source": "modelopt_nvfp4_all_sakamakismile",
                           "assumed": "the module list is inferred from the logged load size (every text "
                           "linear NVFP4 fits 17.62 GiB; the card was not read)"},
    "nvfp4-modelopt-mixed": {"kind": "modelopt-mixed", "recipe": "ffn", "fp8_recipe": "attn-gdn",
                             "source": "modelopt_mixed_qwen36",
                             "assumed": "every FFN entry NVFP4 (W4A16_NVFP4 differs by one f32 input "
                             "scale per module)"},
    "bnb-nf4": {"kind": "bnb", "bits": 4, "recipe": "gptqmodel", "source": None},
    "bnb-int8": {"kind": "bnb", "bits": 8, "recipe": "gptqmodel", "source": None},
}  # fmt: skip

# --------------------------------------------------------------------------------------------------
# checkpoint modules (HF names) from qwenfit's inventory


def checkpoint_modules(model: str) -> list[dict]:
    """Every 2-D weight module of the checkpoint (text + vision + MTP) with its role, per expert for MoE."""
    import qwenfit

    spec = qwenfit.load(model)
    out: list[dict] = []
    seen: set[str] = set()
    for t in spec.inventory:
        if len(t.shape) < 2 or t.name.endswith(".bias"):
            continue
        if t.role in _EXPERTS:
            proj = {"expert_gate": "gate_proj", "expert_up": "up_proj", "expert_down": "down_proj"}[t.role]
            base = re.sub(r"\.experts\..*$", ".experts", t.hf_name)
            for e in range(t.n_experts):
                out.append({"name": f"{base}.{e}.{proj}", "role": t.role, "component": t.component})
            continue
        name = t.hf_name.removesuffix(".weight")
        if name in seen:
            continue
        seen.add(name)
        out.append({"name": name, "role": t.role, "component": t.component})
    return out


def _quantized(m: dict, roles: set[str]) -> bool:
    return m["component"] == "text" and m["role"] in roles


# --------------------------------------------------------------------------------------------------
# quantization_config builders


def _ct_group(scheme: str) -> dict:
    w4 = {"num_bits": 4, "type": "int", "symmetric": True, "group_size": 128, "strategy": "group",
          "dynamic": False, "actorder": None, "observer": "minmax", "observer_kwargs": {}}  # fmt: skip
    if scheme in ("w4a16", "w4a16-asym"):
        w = dict(w4, symmetric=scheme == "w4a16")
        return {"targets": ["Linear"], "weights": w, "input_activations": None, "output_activations": None,
                "format": "pack-quantized"}  # fmt: skip
    if scheme == "w8a8-int8":
        return {"targets": ["Linear"], "format": "int-quantized",
                "weights": {"num_bits": 8, "type": "int", "symmetric": True, "group_size": None,
                            "strategy": "channel", "dynamic": False},
                "input_activations": {"num_bits": 8, "type": "int", "symmetric": True, "group_size": None,
                                      "strategy": "token", "dynamic": True}}  # fmt: skip
    if scheme in ("fp8-dynamic", "fp8-static"):
        static = scheme == "fp8-static"
        return {"targets": ["Linear"], "format": "float-quantized",
                "weights": {"num_bits": 8, "type": "float", "symmetric": True, "group_size": None,
                            "strategy": "tensor" if static else "channel", "dynamic": False},
                "input_activations": {"num_bits": 8, "type": "float", "symmetric": True, "group_size": None,
                                      "strategy": "tensor" if static else "token",
                                      "dynamic": not static}}  # fmt: skip
    if scheme in ("nvfp4", "nvfp4a16"):
        w = {"num_bits": 4, "type": "float", "symmetric": True, "group_size": 16, "strategy": "tensor_group",
             "dynamic": False, "scale_dtype": "torch.float8_e4m3fn", "zp_dtype": None}  # fmt: skip
        a = dict(w, dynamic="local") if scheme == "nvfp4" else None
        return {"targets": ["Linear"], "weights": w, "input_activations": a, "format": "nvfp4-pack-quantized"}
    if scheme == "mxfp4a16":
        w = {"num_bits": 4, "type": "float", "symmetric": True, "group_size": 32, "strategy": "group",
             "dynamic": False, "scale_dtype": "torch.uint8", "zp_dtype": None}  # fmt: skip
        return {
            "targets": ["Linear"],
            "weights": w,
            "input_activations": None,
            "format": "mxfp4-pack-quantized",
        }
    raise ValueError(scheme)


def quantization_config(fmt: str, model: str, mods: list[dict], moe: bool) -> tuple[dict, dict | None]:
    """(quantization_config, skeleton safetensors header or None) for ``fmt`` on ``model``."""
    f = FORMATS[fmt]
    roles = _recipe_roles(f["recipe"], moe)
    kept = [m["name"] for m in mods if not _quantized(m, roles)]
    kind = f["kind"]
    if kind == "awq":
        # AutoAWQ writes quant_method/bits/group_size/zero_point/version (+ modules_to_not_convert)
        return {"quant_method": "awq", "bits": f["bits"], "group_size": f["group"], "zero_point": True,
                "version": "gemm", "modules_to_not_convert": kept}, None  # fmt: skip
    if kind == "gptq":
        # GPTQModel's quantize_config (v1 checkpoint format). No modules_in_block_to_quantize: vLLM reads the
        # safetensors dtypes (AutoGPTQConfig.maybe_update_config), so the skeleton header lists them.
        cfg = {"quant_method": "gptq", "bits": f["bits"], "group_size": f["group"], "desc_act": f["desc_act"],
               "sym": True, "lm_head": False, "checkpoint_format": "gptq", "true_sequential": True,
               "damp_percent": 0.05, "static_groups": False, "pack_dtype": "int32",
               "meta": {"quantizer": ["gptqmodel:5.7.1"]}}  # fmt: skip
        header = {}
        for m in mods:
            if _quantized(m, roles):
                for part, dt in (("qweight", "I32"), ("qzeros", "I32"), ("scales", "F16"), ("g_idx", "I32")):
                    header[f"{m['name']}.{part}"] = dt
            else:
                header[f"{m['name']}.weight"] = "BF16"
        return cfg, header
    if kind == "autoround":
        # auto-round export (quant_method auto-round -> vLLM INCConfig); kept modules in extra_config with
        # bits 16, and the fused in_proj_ba named too (nchapman card)
        extra = {n: {"bits": 16, "data_type": "float"} for n in kept
                 if n.startswith(("model.language_model.layers", "model.layers"))}  # fmt: skip
        for n in list(extra):
            if n.endswith("linear_attn.in_proj_a"):
                extra[n.replace("in_proj_a", "in_proj_ba")] = {"bits": 16, "data_type": "float"}
        cfg = {"quant_method": "auto-round", "bits": f["bits"], "group_size": f["group"], "sym": True,
               "data_type": "int", "packing_format": "auto_round:auto_gptq", "autoround_version": "0.12.2",
               "iters": 400, "nsamples": 256, "seqlen": 2048, "batch_size": 8,
               "block_name_to_quantize": "model.language_model.layers" if any(
                   n.startswith("model.language_model.") for n in kept) else "model.layers",
               "extra_config": extra}  # fmt: skip
        return cfg, None
    if kind == "ct":
        # compressed-tensors writes the expanded ignore list: every unquantized Linear by name
        cfg = {"quant_method": "compressed-tensors", "format": _ct_group(f["scheme"])["format"],
               "quantization_status": "compressed", "config_groups": {"group_0": _ct_group(f["scheme"])},
               "ignore": kept, "kv_cache_scheme": None, "sparsity_config": {}, "transform_config": {},
               "version": "0.14.0"}  # fmt: skip
        return cfg, None
    if kind == "modelopt":
        cfg = {"quant_method": "modelopt", "quant_algo": f["algo"], "kv_cache_quant_algo": None,
               "producer": {"name": "modelopt", "version": "0.41.0"}, "ignore": kept}  # fmt: skip
        if f["algo"] == "NVFP4":
            cfg["group_size"] = 16
        return cfg, None
    if kind == "modelopt-mixed":
        # MIXED_PRECISION: per-module algos in quantized_layers (experts once per layer, as "...experts")
        fp8_roles = _recipe_roles(f["fp8_recipe"], moe)
        layers: dict[str, dict] = {}
        for m in mods:
            if m["component"] != "text":
                continue
            name = re.sub(r"\.experts\.\d+\.\w+$", ".experts", m["name"])
            if m["role"] in roles:
                layers[name] = {"quant_algo": "NVFP4", "group_size": 16}
            elif m["role"] in fp8_roles:
                layers[name] = {"quant_algo": "FP8"}
            elif m["role"] == "lm_head":
                layers[name] = {"quant_algo": "NVFP4", "group_size": 16}
        cfg = {"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION", "kv_cache_quant_algo": "FP8",
               "kv_cache_scheme": {"dynamic": False, "num_bits": 8, "type": "float"},
               "producer": {"name": "modelopt", "version": "0.44.0"}, "exclude_modules": ["mtp*"],
               "quantized_layers": layers}  # fmt: skip
        return cfg, None
    if kind == "bnb":
        # transformers BitsAndBytesConfig as a pre-quantized checkpoint writes it
        cfg = {"quant_method": "bitsandbytes", "load_in_4bit": f["bits"] == 4, "load_in_8bit": f["bits"] == 8,
               "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": "bfloat16",
               "bnb_4bit_use_double_quant": False, "llm_int8_skip_modules": ["lm_head"]}  # fmt: skip
        return cfg, None
    raise ValueError(kind)


def write_header(path: Path, header: dict[str, str]) -> None:
    """A safetensors file holding only its header: names and dtypes, zero-length data."""
    meta = {k: {"dtype": v, "shape": [0], "data_offsets": [0, 0]} for k, v in header.items()}
    blob = json.dumps(meta).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)


# --------------------------------------------------------------------------------------------------
# worker (runs inside the vLLM venv; one simulated GPU kind per process)

EXTRA_STUBS = [
    "platform view widened: the modules under vllm.model_executor.layers.quantization, .kernels, "
    ".layers.fused_moe, .layers.mamba.gdn and .layers.linear (quant methods, kernel choice, the Gated "
    "DeltaNet layer's Marlin in_proj_ba rule) see the simulated CUDA platform "
    "of the chosen compute capability (CudaPlatformBase.supports_fp8 / has_device_capability semantics); "
    "the global platform's get_device_capability returns it too (VllmConfig's min-capability check)",
    "CUTLASS capability probes of vllm._custom_ops (torch.ops._C, compiled): cutlass_scaled_mm_supports_fp8 "
    "-> capability >= 89, _supports_block_fp8 -> >= 90, _supports_fp4 -> >= 100, cutlass_group_gemm_supported "  # noqa: E501
    "-> 90 <= c < 110, mxfp4_experts_quant_supported -> >= 100 (assumed: the C++ is not in the wheel's Python "  # noqa: E501
    "source; they only steer the kernel choice)",
    "config.json carries the format's quantization_config (FORMATS, with sources); for GPTQ the model "
    "directory holds a header-only model.safetensors listing the checkpoint's tensor names and dtypes, read "
    "by AutoGPTQConfig.maybe_update_config",
    "weights are counted as created by the quant methods' create_weights (before process_weights_after_loading:"  # noqa: E501
    " Marlin / Machete / CUTLASS repacks need vllm._C, absent on a CPU-only machine)",
]


_WIDEN = tuple(
    "vllm.model_executor." + p
    for p in ("layers.quantization", "kernels", "layers.fused_moe", "layers.mamba.gdn", "layers.linear")
)


def _widen_platform(gpu: str) -> list[str]:
    import importlib
    import pkgutil

    import vllm.model_executor as me
    from vllm.platforms import current_platform
    from vllm.platforms.interface import DeviceCapability, PlatformEnum, UnspecifiedPlatform

    cap = GPUS[gpu]["capability"]
    name = GPUS[gpu]["name"]

    class SimCudaView(UnspecifiedPlatform):
        _enum = PlatformEnum.CUDA
        device_name = "cuda"
        device_type = "cuda"

        @classmethod
        def get_device_capability(cls, device_id: int = 0):
            return DeviceCapability(*cap)

        @classmethod
        def get_device_name(cls, device_id: int = 0) -> str:
            return name

        @classmethod
        def supports_fp8(cls) -> bool:
            return cls.has_device_capability(89)

        @classmethod
        def get_cuda_runtime_major(cls) -> int:  # the vllm 0.33.0 wheel is built for CUDA 13
            return 13

        @classmethod
        def fp8_dtype(cls):
            import torch

            return torch.float8_e4m3fn

    view = SimCudaView()
    patched = []
    for mi in pkgutil.walk_packages(me.__path__, me.__name__ + "."):
        if not mi.name.startswith(_WIDEN):
            continue
        try:
            mod = importlib.import_module(mi.name)
        except Exception:
            continue
        if (
            getattr(mod, "current_platform", None) is current_platform
            or type(getattr(mod, "current_platform", None)).__name__ == "SimCudaView"
        ):
            mod.current_platform = view
            patched.append(mi.name)
        for fn in [n for n in vars(mod) if n.startswith("has_flashinfer")]:
            setattr(mod, fn, lambda *a, **k: True)
    type(current_platform).get_device_capability = classmethod(lambda c, device_id=0: DeviceCapability(*cap))
    # CUTLASS capability probes (torch.ops._C, compiled code): answered as the CUDA 13 wheel's kernels do
    import vllm._custom_ops as ops

    probes = {
        "cutlass_scaled_mm_supports_fp8": lambda c: c >= 89,
        "cutlass_scaled_mm_supports_block_fp8": lambda c: c >= 90,
        "cutlass_scaled_mm_supports_fp4": lambda c: c >= 100,
        "cutlass_group_gemm_supported": lambda c: 90 <= c < 110,
        "mxfp4_experts_quant_supported": lambda c: c >= 100,
    }
    originals = {fn: getattr(ops, fn) for fn in probes}
    for fn, impl in probes.items():
        setattr(ops, fn, impl)
    for mi in pkgutil.walk_packages(me.__path__, me.__name__ + "."):
        mod = sys.modules.get(mi.name)
        for fn, impl in probes.items():
            if mod is not None and vars(mod).get(fn) is originals[fn]:
                setattr(mod, fn, impl)
    return patched


def _write_model_dir(job: dict, root: Path) -> Path:
    d = json.loads(Path(job["model_json"]).read_text())
    d.pop("_qwenfit", None)
    d["quantization_config"] = job["qcfg"]
    out = root / f"{Path(job['model_json']).stem}-{job['format']}"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(d))
    if job.get("header"):
        write_header(out / "model.safetensors", job["header"])
    return out


def _param_detail(model) -> dict:
    out: dict[str, dict] = {}
    for n, p in model.named_parameters():
        k = re.sub(r"\.\d+\.", ".N.", n)
        e = out.setdefault(k, {"shape": list(p.shape), "dtype": str(p.dtype)[6:], "count": 0, "bytes": 0})
        e["count"] += 1
        e["bytes"] += p.numel() * p.element_size()
    return out


def worker(jobs: list[dict], gpu: str, detail: bool = False) -> list[dict]:
    import _vllm_ranks_sim as sim

    sim.GPUS.update(GPUS)
    sim.bootstrap(gpu)
    _widen_platform(gpu)
    from vllm.config import DeviceConfig, ModelConfig, ParallelConfig, VllmConfig

    root = Path(tempfile.mkdtemp(prefix="qwenfit-vllm-quant-"))
    results = []
    cfgs: dict[tuple, tuple] = {}
    for job in jobs:
        res = {k: v for k, v in job.items() if k != "model_json"}
        try:
            key = (job["model"], job["format"])
            if key not in cfgs:
                cfgs.clear()
                cfgs[key] = quantization_config(job["format"], job["model"], checkpoint_modules(job["model"]),
                                                job["moe"])  # fmt: skip
            job = dict(job, qcfg=cfgs[key][0], header=cfgs[key][1])
            mdir = _write_model_dir(job, root)
            mc = ModelConfig(model=str(mdir), skip_tokenizer_init=True, max_model_len=4096)
            pc = ParallelConfig(
                tensor_parallel_size=job["tp"],
                pipeline_parallel_size=job["pp"],
                data_parallel_size=job["dp"],
                enable_expert_parallel=job["ep"],
            )
            mc.verify_with_parallel_config(pc)
            vc = VllmConfig(model_config=mc, parallel_config=pc, device_config=DeviceConfig(device="cuda"))
            res["quant_config_class"] = type(vc.quant_config).__name__ if vc.quant_config else None
            ranks = []
            for t, p, d in job["ranks"]:
                sim.set_parallel_state(job["tp"], t, job["pp"], p, job["dp"], d)
                model = sim.build(vc)
                lm = model.language_model.model if hasattr(model, "language_model") else model.model
                r = {"tp_rank": t, "pp_rank": p, "dp_rank": d, **sim.count(model)}
                r["layers"] = [lm.start_layer, lm.end_layer]
                r["methods"] = _methods(model)
                if detail:
                    r["params"] = _param_detail(model)
                ranks.append(r)
                del model
            res["ranks"] = ranks
        except Exception as e:  # vLLM refusing the configuration is a result too
            msg = " ".join(x.strip() for x in str(e).splitlines() if x.strip() and "errors.pydantic" not in x)
            msg = msg[:500]
            res["error"] = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
            res.pop("ranks", None)
            if os.environ.get("QWENFIT_TRACE"):
                import traceback

                traceback.print_exc()
        results.append(res)
    shutil.rmtree(root, ignore_errors=True)
    return results


def _methods(model) -> dict[str, int]:
    """quant method (and chosen kernel) class names -> number of layers using them."""
    out: dict[str, int] = {}
    for mod in model.modules():
        qm = getattr(mod, "quant_method", None)
        if qm is None:
            continue
        key = type(qm).__name__
        scheme = getattr(mod, "scheme", None)
        if scheme is not None:
            key += "/" + type(scheme).__name__
        kern = getattr(qm, "kernel", None) or getattr(scheme, "kernel", None)
        if kern is not None:
            key += "/" + type(kern).__name__
        for attr in (
            "wna16_moe_backend",
            "nvfp4_backend",
            "mxfp4_backend",
            "fp8_backend",
            "unquantized_backend",
        ):
            b = getattr(qm, attr, None)
            if b is not None:
                key += f"/{attr}={getattr(b, 'value', b)}"
        out[key] = out.get(key, 0) + 1
    return out


# --------------------------------------------------------------------------------------------------
# driver


def rank_list(tp: int, pp: int, dp: int) -> list[list[int]]:
    """[tp_rank, pp_rank, dp_rank]: the first and the last TP/DP rank of every stage (the ranks of a stage
    differ only by expert remainders, and 256 / 512 experts divide every EP size here)."""
    out = []
    for p in range(pp):
        for t, d in {(0, 0), (tp - 1, dp - 1)}:
            out.append([t, p, d])
    return sorted(out, key=lambda r: (r[1], r[2], r[0]))


# (tp, pp, dp, ep) grid: TP 1-8; EP at TP 2 and 8; PP 2 at TP 1-2; DP 2 + EP at TP 2
def grid(moe: bool, small: bool) -> list[tuple[int, int, int, bool]]:
    out = []
    for tp in [1, 2] if small else TPS:
        out.append((tp, 1, 1, False))
        if moe and tp in (2, 8):
            out.append((tp, 1, 1, True))
        if not small and tp <= 2:
            out.append((tp, 2, 1, False))
        if moe and not small and tp == 2:
            out.append((tp, 1, 2, True))
    return out


# models whose config.json equals another's (Qwen3.6 = Qwen3.5 shapes): a small grid proves it
SMALL_GRID = {"Qwen3.6-27B", "Qwen3.6-35B-A3B"}


def make_jobs(models, formats, gpus, small_gpus=()) -> dict[str, list[dict]]:
    jobs: dict[str, list[dict]] = {g: [] for g in gpus}
    for name in models:
        path = REPO / "data" / "models" / f"{name}.json"
        cfg = json.loads(path.read_text())
        moe = "num_experts" in cfg.get("text_config", cfg)
        for fmt in formats:
            if fmt == "gptq-experts" and not moe:
                continue
            for gpu in gpus:
                small = name in SMALL_GRID or gpu in small_gpus or FORMATS[fmt]["kind"] == "bnb"
                for tp, pp, dp, ep in grid(moe, small):
                    jobs[gpu].append({
                        "model": name, "model_json": str(path), "format": fmt, "gpu": gpu, "tp": tp, "pp": pp,
                        "dp": dp, "ep": ep, "moe": moe, "ranks": rank_list(tp, pp, dp),
                    })  # fmt: skip
    return jobs


def run_workers(jobs: dict[str, list[dict]], n_workers: int) -> list[dict]:
    """One subprocess per (simulated GPU, model): each simulates one GPU kind."""
    tmp = Path(tempfile.mkdtemp(prefix="qwenfit-vllm-quant-jobs-"))
    chunks = []
    for gpu, js in jobs.items():
        for model in dict.fromkeys(j["model"] for j in js):
            chunks.append((gpu, [j for j in js if j["model"] == model]))
    chunks.sort(key=lambda c: -len(c[1]))
    results: list[dict] = []
    pending = list(enumerate(chunks))
    running: list[tuple] = []
    while pending or running:
        while pending and len(running) < n_workers:
            i, (gpu, js) = pending.pop(0)
            jf, of = tmp / f"jobs{i}.json", tmp / f"out{i}.json"
            jf.write_text(json.dumps(js))
            log = open(tmp / f"log{i}.txt", "w")  # noqa: SIM115
            cmd = [sys.executable, __file__, "--worker", gpu, str(jf), str(of)]
            running.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), of, gpu, log))
        time.sleep(1)
        for item in list(running):
            p, of, gpu, log = item
            if p.poll() is None:
                continue
            running.remove(item)
            log.close()
            if p.returncode:
                raise SystemExit(f"worker for {gpu} failed (rc {p.returncode}); logs in {tmp}")
            results += json.loads(of.read_text())
            print(f"  {len(results)} jobs done", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return results


# what process_weights_after_loading does to the created bytes, read from the 0.33.0 source (not measured:
# the repack ops live in vllm._C)
AFTER_LOADING = {
    "marlin_linear": "kernels/linear/mixed_precision/marlin.py MarlinLinearKernel.process_weights_after_loading: "  # noqa: E501
    "qweight repacked by gptq_marlin_repack and scales permuted with the same element counts, except "
    "thread-tile padding (quantization/utils/marlin_utils.py marlin_padded_nk: a partition with neither "
    "n%64==0 and k%128==0 nor n%128==0 and k%64==0 is zero-padded to the cheaper one); zero points (AWQ, "
    "asymmetric compressed-tensors) repacked with the same count; without zero points (symmetric GPTQ / "
    "AutoRound / W4A16) the qzeros parameter is replaced by an empty tensor (marlin_make_empty), freeing "
    "in//G x out/pack int32 per linear. Used on SM86, SM100, SM120 (and SM90 for shapes Machete rejects)",
    "machete_linear": "kernels/linear/mixed_precision/machete.py (SM90 only, chosen for AWQ/GPTQ/W4A16 on "
    "H100 in this fixture): weights prepacked by machete_prepack_B; not examined byte for byte",
    "marlin_moe": "AWQ/GPTQ/W4A16 experts: repacked per expert for the Marlin MoE kernel; a tile-misaligned "
    "intermediate size is zero-padded (marlin_utils.py marlin_moe_padded_intermediate). Layers Marlin MoE "
    "cannot take (hidden % 128 or width % group) fall back to moe_wna16.py MoeWNA16Method at creation: "
    "uint8 codes, scales with the group halved until it divides the width, symmetric GPTQ zero points empty",
    "nvfp4": "CUTLASS/FlashInfer FP4 (SM100/SM120) swizzle the block scales in place; Marlin FP4 (SM86/SM90, "
    "weight-only emulation) repacks with the same counts",
    "fp8": "per-tensor FP8 on SM86 (no FP8 tensor cores) runs as W8A16 Marlin (CompressedTensorsW8A16Fp8 / "
    "MarlinFP8ScaledMMLinearKernel in kernels), repacked with the same element count",
}

COLUMNS = [
    "model",
    "format",
    "gpu",
    "tp",
    "pp",
    "dp",
    "ep",  # --enable-expert-parallel (EP size = tp * dp)
    "pp_rank",
    "tp_rank",
    "dp_rank",
    "layer_start",
    "layer_end",
    "param_bytes",  # every parameter the rank allocates, as created (before process_weights_after_loading)
    "vision_bytes",
    "embed_bytes",
    "lm_head_bytes",
    "routed_expert_bytes",
    "buffer_bytes",
]
KERNEL_COLUMNS = ["model", "format", "gpu", "tp", "pp", "dp", "ep", "quant_config_class", "methods"]


def _template(qcfg: dict) -> dict:
    """The quantization_config with its per-module name lists collapsed over layer / expert / block index."""
    out = {}
    for k, v in qcfg.items():
        if isinstance(v, list) and len(v) > 8:
            out[k] = sorted({re.sub(r"\.\d+\.", ".N.", x) for x in v})
            out[k + "_count"] = len(v)
        elif isinstance(v, dict) and len(v) > 8:
            pats = {}
            for name, val in v.items():
                pats.setdefault(re.sub(r"\.\d+\.", ".N.", name), val)
            out[k] = pats
            out[k + "_count"] = len(v)
        else:
            out[k] = v
    return out


def to_rows(results: list[dict]):
    rows, kernels, rejected = [], [], []
    for r in results:
        key = [r[k] for k in ("model", "format", "gpu", "tp", "pp", "dp", "ep")]
        if "error" in r:
            rejected.append({**dict(zip(KERNEL_COLUMNS, key, strict=False)), "vllm_error": r["error"]})
            continue
        kernels.append([*key, r.get("quant_config_class"), r["ranks"][0]["methods"]])
        for k in r["ranks"]:
            kinds = k["by_kind"]
            rows.append([*key, k["pp_rank"], k["tp_rank"], k["dp_rank"], k["layers"][0], k["layers"][1],
                         k["param_bytes"], kinds.get("vision", 0), kinds.get("embed", 0), kinds.get("lm_head", 0),  # noqa: E501
                         kinds.get("routed_experts", 0), k["buffer_bytes"]])  # fmt: skip
    order = {m: i for i, m in enumerate(MODELS)}
    forder = {f: i for i, f in enumerate(FORMATS)}
    gorder = {g: i for i, g in enumerate(GPUS)}

    def sk(x):
        return (order.get(x[0], 99), forder.get(x[1], 99), gorder.get(x[2], 99), *x[3:7])

    rows.sort(key=lambda x: (*sk(x), x[7], x[9], x[8]))
    kernels.sort(key=sk)
    rejected.sort(key=lambda x: sk([x[c] for c in KERNEL_COLUMNS[:7]]))
    return rows, kernels, rejected


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="*")
    ap.add_argument("--formats", default="*")
    ap.add_argument("--gpus", default="H100,B200,RTX5090,RTX3090")
    ap.add_argument(
        "--small-models",
        default="Qwen3.5-27B,Qwen3.5-35B-A3B",
        help="models measured on the other GPUs (TP 1-2, PP 1)",
    )
    ap.add_argument(
        "--full-gpus", default="H100", help="GPUs measured on the full grid (others: TP 1-2, PP 1)"
    )
    ap.add_argument(
        "--out", type=Path, default=REPO / "tests" / "fixtures" / "vllm" / "rank_weights_quant.json"
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--assemble",
        type=Path,
        metavar="JOBDIR",
        help="write the fixture from the finished worker outputs (out*.json) of an interrupted run",
    )
    args = ap.parse_args()
    src = env.ensure_source(env.VLLM_PIN, Path(os.environ.get("QWENFIT_VLLM_CACHE", env.DEFAULT_CACHE)))
    version = env.wheel_version(src)
    if version != env.VLLM_PIN:
        raise SystemExit(f"wheel says {version}, pin is {env.VLLM_PIN}")
    models = [m for m in MODELS if fnmatch.fnmatch(m, args.models)]
    formats = [f for f in FORMATS if fnmatch.fnmatch(f, args.formats)]
    gpus = args.gpus.split(",")
    full = set(args.full_gpus.split(","))
    if args.quick:
        jobs = make_jobs(models, formats, ["H100"], small_gpus=["H100"])
    else:
        jobs = make_jobs(models, formats, [g for g in gpus if g in full])
        others = [g for g in gpus if g not in full]
        small_models = [m for m in models if m in args.small_models.split(",")]
        for g, js in make_jobs(small_models, formats, others, small_gpus=others).items():
            jobs[g] = js
    t0 = time.time()
    if args.assemble:
        results = [r for f in sorted(args.assemble.glob("out*.json")) for r in json.loads(f.read_text())]
        done = {(r["model"], r["gpu"]) for r in results}
        jobs = {g: [j for j in js if (j["model"], g) in done] for g, js in jobs.items()}
        gpus = [g for g in gpus if jobs.get(g)]
        models = [m for m in models if any(j["model"] == m for js in jobs.values() for j in js)]
    else:
        print(f"{sum(len(j) for j in jobs.values())} jobs", flush=True)
        results = run_workers(jobs, args.workers)
    rows, kernels, rejected = to_rows(results)
    print(f"{len(rows)} rank rows, {len(rejected)} rejected, {time.time() - t0:.0f}s")
    if args.quick:
        for r in rows[:40]:
            print(r)
        for r in rejected:
            print(r)
        return
    import _vllm_ranks_sim as sim
    import _vllm_ranks_sources as S

    configs = {}
    for fmt in formats:
        configs[fmt] = {"definition": {k: v for k, v in FORMATS[fmt].items() if k != "source"},
                        "source": SOURCES.get(FORMATS[fmt]["source"]) if FORMATS[fmt]["source"] else None,
                        "quantization_config": {}}  # fmt: skip
        for name in models:
            moe = "num_experts" in json.loads((REPO / "data" / "models" / f"{name}.json").read_text()).get(
                "text_config", {}
            ) or name.startswith("Qwen3-Next")
            qcfg, header = quantization_config(fmt, name, checkpoint_modules(name), moe)
            t = _template(qcfg)
            if header:
                t["_safetensors_header"] = {
                    "quantized_modules": len({k.rsplit(".", 1)[0] for k, v in header.items() if v == "I32"}),
                    "bf16_modules": len({k.rsplit(".", 1)[0] for k, v in header.items() if v == "BF16"}),
                }
            configs[fmt]["quantization_config"][name] = t
    doc = {
        "vllm_version": version,
        "generated_by": "scripts/vllm_quant_rank_weights.py",
        "how": "as tests/fixtures/vllm/rank_weights.json (vLLM's model classes on the meta device, simulated "
        "parallel state, one rank at a time, bytes = sum(numel * element_size) over named_parameters and, "
        "separately, named_buffers), with a quantization_config in config.json shaped like the published "
        "checkpoint's (formats[*].quantization_config, per model, name lists collapsed over layer/expert "
        "index; formats[*].source). Bytes are as the quant methods' create_weights allocate them, before "
        "process_weights_after_loading (see after_loading). Model Runner V2: vision tower on the first PP "
        "stage. The MTP drafter is not measured here",
        "gpus": {g: GPUS[g] for g in gpus},
        "full_grid_gpus": sorted(full),
        "stubs": [*sim.STUBS[:6], *EXTRA_STUBS],
        "sources": S.resolve(src),
        "formats": configs,
        "columns": COLUMNS,
        "rows": rows,
        "after_loading": AFTER_LOADING,
        "kernel_columns": KERNEL_COLUMNS,
        "kernels": kernels,
        "rejected": rejected,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, separators=(",", ":"))
    args.out.write_text(text + "\n")
    print(f"wrote {args.out} ({len(text)} bytes)")


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--worker":
    _jobs = json.loads(Path(sys.argv[3]).read_text())
    Path(sys.argv[4]).write_text(json.dumps(worker(_jobs, sys.argv[2])))
    sys.exit(0)

if __name__ == "__main__":
    main()
