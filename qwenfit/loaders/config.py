"""config.json -> ModelSpec, with errors that name the file and the key.

Accepts every layout Qwen3.5 / Qwen3-Next configs come in (transformers' configuration_qwen3_5.py /
configuration_qwen3_next.py):
- multimodal Qwen3.5 (``model_type`` ``qwen3_5`` / ``qwen3_5_moe``): text under ``text_config``,
  vision under ``vision_config``, ``tie_word_embeddings`` at the top level and/or in text_config;
- text-only exports (``qwen3_5_text`` / ``qwen3_5_moe_text``, e.g. ``Qwen3_5ForCausalLM``): flat;
- Qwen3-Next (``qwen3_next``): flat, ``full_attention_interval`` without ``layer_types``, fused
  ``in_proj_qkvz`` / ``in_proj_ba``, top-level ``rope_theta``.

Missing optional keys take the defaults of transformers' config classes
(``configuration_qwen3_5*.py``, ``configuration_qwen3_next.py``), because that is what a model
built from the file has. Keys that fix the size of the model have no default and are required.

Validation is hand-written rather than pydantic: the checks are cross-field (layer_types vs
num_hidden_layers, heads that must divide) and this path is on the CLI's start-up budget.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from qwenfit.core.model.spec import Family, ModelSpec, TextSpec, VisionSpec, check_bound, default_layer_types
from qwenfit.errors import ConfigError, UnsupportedModelError

__all__ = ["SUPPORTED_MODEL_TYPES", "config_from_spec", "read_config_file", "spec_from_config"]

# model_type -> (family, layout); "nested" = text under text_config
SUPPORTED_MODEL_TYPES: dict[str, tuple[Family, str]] = {
    "qwen3_5": ("qwen3_5", "nested"),
    "qwen3_5_moe": ("qwen3_5_moe", "nested"),
    "qwen3_5_text": ("qwen3_5", "flat"),
    "qwen3_5_moe_text": ("qwen3_5_moe", "flat"),
    "qwen3_next": ("qwen3_next", "flat"),
}

MAX_CONFIG_BYTES = 16 * 1024 * 1024  # real configs are a few KB; refuse to parse anything huge


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read and parse a config.json; every failure is a ConfigError naming the file."""
    p = Path(path)
    src = str(p)
    try:
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"is {size:,} bytes; a config.json is at most a few KB", source=src)
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror or exc}", source=src) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"is not UTF-8 text (byte {exc.start})", source=src) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); is the file truncated?",
            source=src,
        ) from None
    except RecursionError:
        raise ConfigError("is nested too deeply to be a config.json", source=src) from None
    if not isinstance(data, dict):
        raise ConfigError(f"must hold a JSON object, not {type(data).__name__}", source=src)
    return data


class _Reader:
    """Typed access to one section of a config, naming ``prefix + key`` in errors."""

    def __init__(self, section: Mapping[str, Any], prefix: str, source: str) -> None:
        self.d = section
        self.prefix = prefix
        self.source = source

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, source=self.source, key=self.prefix + key)

    def has(self, key: str) -> bool:
        return key in self.d and self.d[key] is not None

    def integer(self, key: str, default: int | None = None) -> int:
        if not self.has(key):
            if default is None:
                raise self.error(key, "is required but missing")
            return default
        v = self.d[key]
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(key, f"must be an integer, got {v!r}")
        return v

    def number(self, key: str, default: float) -> float:
        if not self.has(key):
            return default
        v = self.d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.error(key, f"must be a number, got {v!r}")
        return float(v)

    def flag(self, key: str, default: bool) -> bool:
        if not self.has(key):
            return default
        v = self.d[key]
        if not isinstance(v, bool):
            raise self.error(key, f"must be true or false, got {v!r}")
        return v

    def string(self, key: str, default: str | None = None) -> str | None:
        if not self.has(key):
            return default
        v = self.d[key]
        if not isinstance(v, str):
            raise self.error(key, f"must be a string, got {v!r}")
        return v

    def array(self, key: str) -> list[Any] | None:
        if not self.has(key):
            return None
        v = self.d[key]
        if not isinstance(v, list):
            raise self.error(key, f"must be a list, got {type(v).__name__}")
        return v

    def section(self, key: str) -> _Reader | None:
        if not self.has(key):
            return None
        v = self.d[key]
        if not isinstance(v, dict):
            raise self.error(key, f"must be an object, got {type(v).__name__}")
        return _Reader(v, f"{self.prefix}{key}.", self.source)


def spec_from_config(
    config: Mapping[str, Any],
    *,
    source: str = "config.json",
    name: str | None = None,
    mtp_layers: int | None = None,
) -> ModelSpec:
    """Build and validate a ModelSpec from a parsed config.json.

    ``source`` labels errors (a path or a catalog name). ``mtp_layers`` overrides the number of MTP
    layers in the checkpoint when the config does not say (Qwen3-Next).
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"must be a JSON object, not {type(config).__name__}", source=source)
    top = _Reader(config, "", source)
    model_type = top.string("model_type")
    if model_type is None:
        raise UnsupportedModelError(
            "is missing; expected one of " + ", ".join(SUPPORTED_MODEL_TYPES), source=source, key="model_type"
        )
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(
            f"{model_type!r} is not a Qwen3.5 / Qwen3-Next model; supported model_type values: "
            + ", ".join(SUPPORTED_MODEL_TYPES),
            source=source,
            key="model_type",
        )
    family, layout = SUPPORTED_MODEL_TYPES[model_type]
    if layout == "nested":
        t = top.section("text_config")
        if t is None:
            raise ConfigError(
                "is required for model_type " + repr(model_type), source=source, key="text_config"
            )
    else:
        t = top
    with _located(t):
        text = _text_spec(family, top, t)
    vision = _vision_spec(top) if family != "qwen3_next" else None
    if mtp_layers is None:
        mtp_layers = t.integer("mtp_num_hidden_layers", 0)
    label = name or top.string("_name_or_path") or source
    with _located(t):  # ModelSpec checks mtp_num_hidden_layers (text) and vision_config.*
        return ModelSpec(
            name=label,
            family=family,
            text=text,
            vision=vision,
            mtp_layers=mtp_layers,
            text_prefix="model.language_model." if layout == "nested" else "model.",
            source=source,
        )


@contextlib.contextmanager
def _located(section: _Reader) -> Iterator[None]:
    """Give a ConfigError raised by the core dataclass checks its file and full key path."""
    try:
        yield
    except ConfigError as exc:
        if exc.source is not None:
            raise
        key = exc.key or ""
        message = str(exc)
        if key and message.startswith(key + ": "):
            message = message[len(key) + 2 :]
        if not key.startswith(("text_config.", "vision_config.")):
            key = section.prefix + key
        raise type(exc)(message, source=section.source, key=key) from None


def _text_spec(family: Family, top: _Reader, t: _Reader) -> TextSpec:
    moe = family in ("qwen3_5_moe", "qwen3_next")
    n_layers = t.integer("num_hidden_layers")
    with _located(t):
        check_bound("num_hidden_layers", n_layers)  # before building a list of that length
    raw_types = t.array("layer_types")
    if raw_types is not None:
        if not all(isinstance(x, str) for x in raw_types):
            raise t.error("layer_types", "must be a list of strings")
        layer_types = tuple(raw_types)
    else:
        interval = t.integer("full_attention_interval", 4)
        if interval <= 0:
            raise t.error("full_attention_interval", f"must be a positive integer, got {interval}")
        layer_types = default_layer_types(max(n_layers, 0), interval)

    # tie_word_embeddings may sit at the top level, in text_config, or both (0.8B has both)
    tie_top = top.flag("tie_word_embeddings", False) if top.has("tie_word_embeddings") else None
    tie_text = t.flag("tie_word_embeddings", False) if t is not top and t.has("tie_word_embeddings") else None
    if tie_top is not None and tie_text is not None and tie_top != tie_text:
        raise ConfigError(
            f"is {str(tie_text).lower()} but the top-level tie_word_embeddings is "
            f"{str(tie_top).lower()}; they must agree",
            source=t.source,
            key=t.prefix + "tie_word_embeddings",
        )
    tie = tie_top if tie_top is not None else (tie_text if tie_text is not None else False)

    mlp_only = t.array("mlp_only_layers") or []
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in mlp_only):
        raise t.error("mlp_only_layers", "must be a list of layer indices")

    rope = t.section("rope_parameters") or t.section("rope_scaling")
    rope_theta = t.number("rope_theta", 10_000_000.0)
    partial = t.number("partial_rotary_factor", 0.25)
    if rope is not None:
        rope_theta = rope.number("rope_theta", rope_theta)
        partial = rope.number("partial_rotary_factor", partial)

    fields: dict[str, Any] = {
        "hidden_size": t.integer("hidden_size"),
        "num_hidden_layers": n_layers,
        "layer_types": layer_types,
        "vocab_size": t.integer("vocab_size"),
        "tie_word_embeddings": tie,
        "num_attention_heads": t.integer("num_attention_heads"),
        "num_key_value_heads": t.integer("num_key_value_heads"),
        "head_dim": t.integer("head_dim", 256),
        # Qwen3-Next's output gate is hard-wired (q_proj is 2x wide); Qwen3.5 has the key
        "attn_output_gate": True if family == "qwen3_next" else t.flag("attn_output_gate", True),
        "linear_num_key_heads": t.integer("linear_num_key_heads", 16),
        "linear_num_value_heads": t.integer("linear_num_value_heads", 32),
        "linear_key_head_dim": t.integer("linear_key_head_dim", 128),
        "linear_value_head_dim": t.integer("linear_value_head_dim", 128),
        "linear_conv_kernel_dim": t.integer("linear_conv_kernel_dim", 4),
        "intermediate_size": t.integer("intermediate_size") if not moe else t.integer("intermediate_size", 0),
        "fused_gdn_projections": family == "qwen3_next",
        "dtype": t.string("dtype")
        or t.string("torch_dtype")
        or top.string("dtype")
        or top.string("torch_dtype")
        or "bfloat16",
        "mamba_ssm_dtype": t.string("mamba_ssm_dtype"),
        "max_position_embeddings": t.integer("max_position_embeddings", 262144),
        "rms_norm_eps": t.number("rms_norm_eps", 1e-6),
        "rope_theta": rope_theta,
        "partial_rotary_factor": partial,
    }
    if moe:
        fields.update(
            num_experts=t.integer("num_experts"),
            num_experts_per_tok=t.integer("num_experts_per_tok"),
            moe_intermediate_size=t.integer("moe_intermediate_size"),
            shared_expert_intermediate_size=t.integer("shared_expert_intermediate_size", 512),
            decoder_sparse_step=t.integer("decoder_sparse_step", 1),
            mlp_only_layers=tuple(mlp_only),
        )
    return TextSpec(**fields)


def _vision_spec(top: _Reader) -> VisionSpec | None:
    v = top.section("vision_config")
    if v is None:
        return None
    deepstack = v.array("deepstack_visual_indexes")
    if deepstack:
        raise UnsupportedModelError(
            "is not empty: DeepStack mergers belong to Qwen3-VL, not Qwen3.5",
            source=v.source,
            key=v.prefix + "deepstack_visual_indexes",
        )
    with _located(v):
        return VisionSpec(
            depth=v.integer("depth"),
            hidden_size=v.integer("hidden_size"),
            intermediate_size=v.integer("intermediate_size"),
            num_heads=v.integer("num_heads"),
            out_hidden_size=v.integer("out_hidden_size"),
            patch_size=v.integer("patch_size", 16),
            temporal_patch_size=v.integer("temporal_patch_size", 2),
            spatial_merge_size=v.integer("spatial_merge_size", 2),
            in_channels=v.integer("in_channels", 3),
            num_position_embeddings=v.integer("num_position_embeddings", 2304),
        )


_MODEL_TYPE_OF: dict[Family, str] = {
    "qwen3_5": "qwen3_5",
    "qwen3_5_moe": "qwen3_5_moe",
    "qwen3_next": "qwen3_next",
}
_ARCHITECTURE_OF: dict[Family, str] = {
    "qwen3_5": "Qwen3_5ForConditionalGeneration",
    "qwen3_5_moe": "Qwen3_5MoeForConditionalGeneration",
    "qwen3_next": "Qwen3NextForCausalLM",
}


def config_from_spec(spec: ModelSpec) -> dict[str, Any]:
    """A config.json dict that :func:`spec_from_config` reads back into an equal spec.

    Written in the layout of the family's official files (nested for Qwen3.5, flat for Qwen3-Next);
    Qwen3-Next's MTP layer count has no config key and is passed separately when reading back.
    """
    t = spec.text
    text: dict[str, Any] = {
        "hidden_size": t.hidden_size,
        "num_hidden_layers": t.num_hidden_layers,
        "layer_types": list(t.layer_types),
        "vocab_size": t.vocab_size,
        "tie_word_embeddings": t.tie_word_embeddings,
        "num_attention_heads": t.num_attention_heads,
        "num_key_value_heads": t.num_key_value_heads,
        "head_dim": t.head_dim,
        "linear_num_key_heads": t.linear_num_key_heads,
        "linear_num_value_heads": t.linear_num_value_heads,
        "linear_key_head_dim": t.linear_key_head_dim,
        "linear_value_head_dim": t.linear_value_head_dim,
        "linear_conv_kernel_dim": t.linear_conv_kernel_dim,
        "intermediate_size": t.intermediate_size,
        "dtype": t.dtype,
        "max_position_embeddings": t.max_position_embeddings,
        "rms_norm_eps": t.rms_norm_eps,
    }
    if t.is_moe:
        text.update(
            num_experts=t.num_experts,
            num_experts_per_tok=t.num_experts_per_tok,
            moe_intermediate_size=t.moe_intermediate_size,
            shared_expert_intermediate_size=t.shared_expert_intermediate_size,
            decoder_sparse_step=t.decoder_sparse_step,
            mlp_only_layers=list(t.mlp_only_layers),
        )
    if t.mamba_ssm_dtype is not None:
        text["mamba_ssm_dtype"] = t.mamba_ssm_dtype
    if spec.family == "qwen3_next":
        return {
            "architectures": [_ARCHITECTURE_OF[spec.family]],
            "model_type": "qwen3_next",
            **text,
            "rope_theta": t.rope_theta,
            "partial_rotary_factor": t.partial_rotary_factor,
        }
    text["model_type"] = "qwen3_5_moe_text" if t.is_moe else "qwen3_5_text"
    text["attn_output_gate"] = t.attn_output_gate
    text["mtp_num_hidden_layers"] = spec.mtp_layers
    text["rope_parameters"] = {"rope_theta": t.rope_theta, "partial_rotary_factor": t.partial_rotary_factor}
    if spec.text_prefix == "model.":  # a text-only export: flat, as Qwen3_5*ForCausalLM saves it
        return {
            "architectures": [_ARCHITECTURE_OF[spec.family].replace("ConditionalGeneration", "CausalLM")],
            **text,
        }
    config: dict[str, Any] = {
        "architectures": [_ARCHITECTURE_OF[spec.family]],
        "model_type": _MODEL_TYPE_OF[spec.family],
        "text_config": text,
        "tie_word_embeddings": t.tie_word_embeddings,
    }
    if spec.vision is not None:
        v = spec.vision
        config["vision_config"] = {
            "depth": v.depth,
            "hidden_size": v.hidden_size,
            "intermediate_size": v.intermediate_size,
            "num_heads": v.num_heads,
            "out_hidden_size": v.out_hidden_size,
            "patch_size": v.patch_size,
            "temporal_patch_size": v.temporal_patch_size,
            "spatial_merge_size": v.spatial_merge_size,
            "in_channels": v.in_channels,
            "num_position_embeddings": v.num_position_embeddings,
            "deepstack_visual_indexes": [],
        }
    return config
