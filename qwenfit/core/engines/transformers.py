"""transformers 5.24 as an engine: ``from_pretrained`` + ``generate`` in eager PyTorch, one GPU.

Measured, not transcribed: real forward passes of tiny Qwen3.5 checkpoints, every tensor of the
cache object walked (``scripts/python_engine_fixtures.py``, ``tests/fixtures/python_engines/
transformers.json``): KV only in full-attention layers; conv state ``[B, conv_dim, K]`` (K, not
K-1) in the model dtype; recurrent state ``[B, nv, dk, dv]`` float32; every weight cast to the
config dtype. Not in the calculator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from qwenfit.core.command import Cmd
from qwenfit.core.engines.base import Artifact, Deployment, Engine, SpeedConstants
from qwenfit.core.engines.gdn_state import STATE_DTYPE_BYTES
from qwenfit.core.formats.weights import WeightMap
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import Term
from qwenfit.errors import SettingError

if TYPE_CHECKING:
    from qwenfit.core.artifacts import ModelSource

__all__ = ["TRANSFORMERS", "TRANSFORMERS_VERSION", "Transformers", "transformers_terms"]

_FLOAT_TYPES = {"F32": 4, "F16": 2, "BF16": 2}
TRANSFORMERS_VERSION = "5.24.0"


def transformers_terms(spec: ModelSpec, inputs: Mapping[str, Any], d: Deployment) -> list[Term]:
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
    loaded = inputs["w:loaded"]
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
    transient = d.context * d.sequences * width + d.sequences * t.vocab_size * (size + 4)
    src = f"transformers {TRANSFORMERS_VERSION} (tests/fixtures/python_engines/transformers.json)"
    return [
        Term("weights", "gpu", loaded + rotary, not d.vision,
             src + ": parameters cast to the config dtype, MTP not built, + rotary buffers",
             inputs.get("scheme", "") + (" + vision tower" if d.vision else "")),
        Term("kv_cache", "gpu", d.context * d.sequences * per_token, True,
             src + ": DynamicCache, full-attention layers only", f"{d.sequences} x {d.context:,} tokens"),
        Term("recurrent_state", "gpu", d.sequences * t.n_linear_attention * (conv + ssm), True,
             src + ": conv [B, conv_dim, K] model dtype, recurrent [B, nv, dk, dv] float32",
             f"{d.sequences} sequence(s)"),
        Term("compute_buffer", "gpu", transient, False,
             "eager prefill of the whole prompt (PyTorch gated-delta-rule fallback) + last-token logits",
             "estimated"),
    ]  # fmt: skip


class Transformers(Engine):
    """Hugging Face transformers, eager PyTorch on one GPU."""

    name = "transformers"
    weights_family = "safetensors"
    kv_types = ("bf16",)
    default_quant = "bf16"
    planner_quants = ("bf16",)
    fallback_quants = ("bf16", "bnb-int8", "bnb-nf4")
    max_sequences = 1024
    speed = SpeedConstants("transformers", 2000, {"cuda": 300, "rocm": 300, "metal": 300, "cpu": 300})

    def check(self, spec: ModelSpec, d: Deployment, o: Any) -> None:
        if d.kv_cache not in (None, "bf16", "auto"):
            raise SettingError(
                f"transformers keeps its cache in the model dtype; kv_cache {d.kv_cache!r} is not modelled"
            )

    def weight_inputs(self, spec: ModelSpec, weights: WeightMap, d: Deployment, o: Any) -> dict[str, Any]:
        """Every floating-point tensor cast to the config dtype (the checkpoint's float32 ``A_log`` and
        GDN norm weights too); the MTP block is not built; the vision tower only with ``vision``."""
        size = STATE_DTYPE_BYTES.get(spec.text.dtype, 2)
        keep = ("text", "vision") if d.vision else ("text",)
        loaded = sum(
            (e.bytes // _FLOAT_TYPES[e.type] * size if e.type in _FLOAT_TYPES else e.bytes)
            for e in weights.tensors
            if e.component in keep
        )
        return {"w:loaded": loaded, "scheme": weights.scheme}

    def terms(self, spec: ModelSpec, inputs: Mapping[str, Any], d: Deployment, o: Any) -> list[Term]:
        return transformers_terms(spec, inputs, d)

    def artifact(self, source: ModelSource, quant: str, d: Deployment) -> Artifact:
        """bitsandbytes formats are quantized while loading the published BF16 checkpoint; the rest
        as every safetensors engine (:meth:`Engine.artifact`)."""
        if quant.startswith("bnb-"):
            bf16 = super().artifact(source, "bf16", d)
            return dataclasses.replace(bf16, quant=quant, note=f"{bf16.note or 'bf16'}, quantized on load")
        return super().artifact(source, quant, d)

    def command(self, artifact: Artifact, d: Deployment, o: Any) -> Cmd:
        """A pipeline over the checkpoint (``BitsAndBytesConfig`` for the bnb formats)."""
        bnb = _BNB.get(artifact.quant, "")
        kwargs = f", model_kwargs={{'quantization_config': BitsAndBytesConfig({bnb})}}" if bnb else ""
        imports = "pipeline, BitsAndBytesConfig" if bnb else "pipeline"
        return (
            Cmd()
            .add(artifact.make)
            .add(
                f"python -c \"from transformers import {imports}; pipeline('text-generation', "
                f"'{artifact.ref}', device_map='auto'{kwargs})\""
            )
        )


# transformers BitsAndBytesConfig arguments of qwenfit's bnb formats
_BNB = {
    "bnb-int8": "load_in_8bit=True",
    "bnb-nf4": "load_in_4bit=True, bnb_4bit_quant_type='nf4'",
    "bnb-fp4": "load_in_4bit=True, bnb_4bit_quant_type='fp4'",
    "bnb-nf4-dq": "load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_use_double_quant=True",
    "bnb-fp4-dq": "load_in_4bit=True, bnb_4bit_quant_type='fp4', bnb_4bit_use_double_quant=True",
}


TRANSFORMERS = Transformers()
