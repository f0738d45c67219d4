"""MLX (mlx-lm 0.32.2) as an engine: Apple Silicon, unified memory.

Transcribed with file:line citations, each line checked against the wheel (MLX needs Apple silicon):
``scripts/_pyengine_mlx.py`` RULES, recorded in ``tests/fixtures/python_engines/mlx.json``. The terms
trace into the calculator's formulas. ``context`` is the prompt plus generated tokens of one sequence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from qwenfit.core.command import Cmd
from qwenfit.core.engines.base import (
    Artifact,
    Deployment,
    Engine,
    FormulaPlacement,
    Judge,
    Placement,
    SpeedConstants,
)
from qwenfit.core.engines.gdn_state import gdn_state
from qwenfit.core.expr import Num, le, lt, smin, where
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import Term
from qwenfit.errors import SettingError

if TYPE_CHECKING:
    from qwenfit.core.artifacts import ModelSource
    from qwenfit.core.hardware import Device, Machine

__all__ = ["MLX", "MLX_LM_VERSION", "Mlx", "mlx_terms"]

MLX_KV_TYPES = ("bf16", "f16", "8", "4")  # 16-bit, or --kv-bits 8 / 4
MLX_LM_VERSION = "0.32.2"
_MLX_KV_STEP = 256  # mlx_lm/models/cache.py:340 (KVCache.step) and :252 (QuantizedKVCache.step)
_MLX_KV_GROUP = 64  # mlx_lm/generate.py:325 kv_group_size
_MLX_QUANTIZED_KV_START = 5000  # mlx_lm/generate.py:49 DEFAULT_QUANTIZED_KV_START
_MLX_PREFILL_STEP = 2048  # mlx_lm/generate.py:323 prefill_step_size


def mlx_terms(spec: ModelSpec, inputs: Mapping[str, Any], d: Deployment) -> list[Term]:
    """mlx-lm ``generate`` / ``mlx_lm.server``: KV grows in whole 256-token steps in the activation
    dtype (bfloat16); with ``--kv-bits`` the cache turns into a QuantizedKVCache (uint32-packed values,
    one scale and one bias per 64 values) once it holds 5000 tokens (before that it stays 16-bit).
    Gated DeltaNet layers keep an ArraysCache: conv (K−1, conv_dim) bf16 + state (Hv, Dv, Dk) float32."""
    t = spec.text
    bits = {"bf16": 16, "f16": 16, "8": 8, "4": 4}
    kv = d.kv_cache or "bf16"
    if kv not in bits:
        raise ValueError(f"mlx-lm KV cache {kv!r}; valid: bf16, f16, 8, 4 (--kv-bits)")
    width = t.num_key_value_heads * t.head_dim
    plain = t.n_full_attention * 2 * width * 2
    # cache.py:273-275: dim // (32/bits) uint32 words + dim // group scales and biases (keys.dtype)
    quantized = t.n_full_attention * 2 * (width * bits[kv] // 8 + (width // _MLX_KV_GROUP) * 2 * 2)
    per_token: Num = (
        plain if bits[kv] == 16 else where(le(_MLX_QUANTIZED_KV_START, d.context), quantized, plain)
    )
    # cache.py:352: capacity grows by ceil(n/256)*256; prompt chunks of 2048 keep it step-aligned
    tokens = (d.context + _MLX_KV_STEP - 1) // _MLX_KV_STEP * _MLX_KV_STEP
    state = gdn_state(spec, conv_dtype="bfloat16", ssm_dtype="float32")
    # prefill: one 2048-token chunk through one layer at a time (the chunk's logits are never computed:
    # only the cache state is evaluated, generate.py:450); widest activations of a layer in bf16
    widest = max(
        t.linear_conv_dim + t.linear_value_dim,
        2 * t.intermediate_size,
        2 * t.moe_intermediate_size * t.num_experts_per_tok + 2 * t.shared_expert_intermediate_size,
    )
    transient = smin(d.context, _MLX_PREFILL_STEP) * (4 * t.hidden_size + 2 * widest) * 2 * d.sequences
    src = f"mlx-lm {MLX_LM_VERSION} (tests/fixtures/python_engines/mlx.json)"
    kv_detail = "16-bit" if bits[kv] == 16 else f"{kv}-bit from {_MLX_QUANTIZED_KV_START} tokens on"
    return [
        Term("weights", "gpu", inputs["w:rank"], True, "MLX safetensors bytes", inputs.get("scheme", "")),
        Term("kv_cache", "gpu", tokens * per_token * d.sequences, True,
             src + ": models/cache.py KVCache/QuantizedKVCache, step 256, group 64",
             f"{d.sequences} x {tokens:,} tokens, {kv_detail}"),
        Term("recurrent_state", "gpu", d.sequences * t.n_linear_attention * state.bytes, True,
             src + ": ArraysCache, conv (K-1, conv_dim) bf16, state (Hv, Dv, Dk) float32",
             f"{d.sequences} sequence(s)"),
        Term("compute_buffer", "gpu", transient, False,
             "prefill transient: 2048-token chunks, one layer's widest activations (bf16)", "estimated"),
    ]  # fmt: skip


def _convert_flags(quant: str) -> str:
    """``mlx_lm.convert`` flags of an MLX format (mlx_lm/convert.py: -q, --q-bits, --q-group-size,
    --q-mode; 16-bit: --dtype)."""
    from qwenfit.core.formats.gpu import FORMATS

    if quant in ("bf16", "fp16"):
        return f" --dtype {'bfloat16' if quant == 'bf16' else 'float16'}"
    f = FORMATS[quant]
    if f.kind == "mlx-affine":
        return f" -q --q-bits {f.bits} --q-group-size {f.default_group}"
    return f" -q --q-mode {quant.removeprefix('mlx-')}"


class Mlx(Engine):
    """mlx-lm's ``generate`` / ``mlx_lm.server``."""

    name = "mlx"
    weights_family = "mlx"
    kv_types = MLX_KV_TYPES
    calc_kv_types = ("bf16", "8", "4")
    default_quant = "mlx-4bit"
    planner_quants = ("bf16", "mlx-8bit", "mlx-6bit", "mlx-5bit", "mlx-4bit", "mlx-3bit")
    max_sequences = 1024
    default_backend = "metal"
    unified_only = True
    # mlx-lm drops the checkpoint's MTP weights on load (ml-explore/mlx-lm d78bf58, 2026-08-22:
    # mlx_lm/models/qwen3_5.py:352 and qwen3_next.py:455 keep only keys without "mtp.")
    no_mtp = "mlx-lm does not draft with the MTP layer (it drops the checkpoint's MTP weights on load)"
    speed = SpeedConstants("mlx", 500, {"metal": 100}, {"metal": 0.45}, fitted=("mlx",), ubatch=2048)

    def check(self, spec: ModelSpec, d: Deployment, o: Any) -> None:
        if d.mtp:
            raise SettingError(self.no_mtp)
        if d.kv_cache is not None and d.kv_cache not in MLX_KV_TYPES:
            raise SettingError(f"mlx-lm KV cache {d.kv_cache!r}; valid: bf16, f16, 8, 4 (--kv-bits)")

    def terms(self, spec: ModelSpec, inputs: Mapping[str, Any], d: Deployment, o: Any) -> list[Term]:
        return mlx_terms(spec, inputs, d)

    def runs_on(self, machine: Machine) -> str:
        ok = machine.devices and machine.devices[0].vendor == "apple"
        return "" if ok else "MLX runs on Apple Silicon only"

    def default_on(self, machine: Machine) -> bool:
        return bool(machine.devices) and machine.devices[0].vendor == "apple"

    def place(self, judge: Judge, need: int, sequences: int, max_nodes: int) -> tuple[Placement | None, str]:
        apple = Placement("unified", description="Apple GPU (unified memory)")
        if judge.fits(apple, need, sequences):
            return apple, ""
        return None, "does not fit Metal's working set"

    def published_quants(self, source: ModelSource, *, mtp: bool) -> tuple[str, ...]:
        from qwenfit.core.artifacts import repo_quants

        return tuple(q for q in repo_quants(source.published, "mlx-repo") if self.accepts(q))

    def artifact(self, source: ModelSource, quant: str, d: Deployment) -> Artifact:
        """A published MLX repo of ``quant`` (mlx-community, ...); BF16 is the official checkpoint,
        which mlx-lm loads as it is; otherwise ``mlx_lm.convert`` makes it from that checkpoint."""
        from qwenfit.core.artifacts import repo_choice

        if source.file_format is not None:
            where = source.path or source.repo_id
            return Artifact(ref=where, repo=source.repo_id, file=source.path, quant=quant,
                            local=source.local, published=not source.local, stored=True)  # fmt: skip
        kind = "safetensors-repo" if quant in ("bf16", "fp16") else "mlx-repo"
        repo = repo_choice(source.published, quant, kind)
        if repo is not None:
            return Artifact(ref=repo.id, repo=repo.id, quant=quant, published=True, note=repo.format)
        base = repo_choice(source.published, "bf16", "safetensors-repo")
        origin = base.id if base is not None else (source.repo_id or source.name)
        folder = f"./{source.name}-{quant}"
        convert = f"mlx_lm.convert --hf-path {origin} --mlx-path {folder}" + _convert_flags(quant)
        note = f"no {quant} MLX repo of {source.name} is published"
        return Artifact(ref=folder, make=f"# {note}: make it\n{convert}\n", repo=origin, file=folder,
                        quant=quant, note=note)  # fmt: skip

    def command(self, artifact: Artifact, d: Deployment, o: Any) -> Cmd:
        """``mlx_lm.server`` (mlx-lm 0.32 flags: --model, --kv-bits, --decode-concurrency)."""
        cmd = Cmd().add(artifact.make).add("mlx_lm.server", "--model", artifact.ref)
        if d.kv_cache in ("4", "8"):
            cmd.add("--kv-bits", d.kv_cache)
        cmd.add("--decode-concurrency", d.sequences, when=lt(1, d.sequences))
        return cmd

    def calc_hardware_inputs(self, device: Device | None, fp: FormulaPlacement) -> dict[str, int] | None:
        return {} if device is not None and device.vendor == "apple" else None

    def formula_placements(self, spec: ModelSpec) -> list[FormulaPlacement]:
        return [FormulaPlacement("unified", 1)]

    def formula_placement(self, p: Placement) -> FormulaPlacement | None:
        return FormulaPlacement("unified", 1)


MLX = Mlx()
