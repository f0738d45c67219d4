"""Where a model's weights come from, for the launch command and the weights of an estimate: a catalog
model (what is published for it: :mod:`qwenfit.loaders.artifacts`), a Hub repo the caller named, or
local files (a GGUF, a checkpoint folder) — which are planned and estimated as they are."""

from __future__ import annotations

import os
from typing import Any

from qwenfit.core.artifacts import ModelSource
from qwenfit.core.model.spec import ModelSpec
from qwenfit.errors import SettingError

__all__ = ["file_quant", "model_source", "stored_family"]

# quantization_config methods -> qwenfit's GPU format (qwenfit.core.formats.gpu), for checkpoints read
# from files; compressed-tensors and ModelOpt are told apart by their config (format / quant_algo)
_METHODS = {"fp8": "fp8", "awq": "awq", "gptq": "gptq", "auto-round": "autoround", "autoround": "autoround",
            "mxfp4": "mxfp4", "bitsandbytes-4bit": "bnb-nf4", "bitsandbytes-8bit": "bnb-int8"}  # fmt: skip
_CT_FORMATS = {"float-quantized": "fp8-dynamic", "pack-quantized": "w4a16",
               "nvfp4-pack-quantized": "nvfp4-all", "int-quantized": "w8a8",
               "mxfp4-pack-quantized": "mxfp4"}  # fmt: skip


def stored_family(spec: ModelSpec) -> str | None:
    """The weights family of the files ``spec`` was read from ("gguf", "safetensors", "mlx"), or None
    when it was not read from files."""
    ck = spec.checkpoint
    if ck is None:
        return None
    if ck.format == "gguf":
        return "gguf"
    return "mlx" if ck.quantization is not None and ck.quantization.method == "mlx" else "safetensors"


def file_quant(spec: ModelSpec) -> str | None:
    """The quantization of the files ``spec`` was read from, as qwenfit names it: a GGUF's file type
    (``general.file_type``), the GPU/MLX format of a quantized safetensors checkpoint, ``bf16`` /
    ``fp16`` for an unquantized one; None when qwenfit has no model of the checkpoint's method."""
    ck = spec.checkpoint
    if ck is None:
        return None
    q = ck.quantization
    if ck.format == "gguf":
        ft = q.config.get("file_type") if q is not None else None
        return str(ft) if ft else "as stored"
    if q is None:
        return "fp16" if spec.text.dtype in ("float16", "fp16") else "bf16"
    cfg: Any = q.config
    if q.method == "mlx":
        bits, group = cfg.get("bits"), cfg.get("group_size", 64)
        return f"mlx-{bits}bit" + ("" if group == 64 else f"-g{group}")
    if q.method == "gptq" and cfg.get("bits") == 8:
        return "gptq-int8"
    if q.method == "compressed-tensors":
        groups = cfg.get("config_groups") or {}
        fmt = cfg.get("format") or next(
            (g.get("format") for g in groups.values() if isinstance(g, dict)), None
        )
        return _CT_FORMATS.get(str(fmt))
    if q.method == "modelopt":
        algo = str(cfg.get("quant_algo") or cfg.get("quantization", {}).get("quant_algo", "")).upper()
        return "nvfp4" if "NVFP4" in algo else ("fp8" if "FP8" in algo else None)
    return _METHODS.get(q.method)


def model_source(spec: ModelSpec, given: object) -> ModelSource:
    """The :class:`ModelSource` of ``spec`` loaded from ``given`` (what the caller passed)."""
    from qwenfit.loaders.artifacts import published_for
    from qwenfit.loaders.catalog import find

    if spec.checkpoint is not None:
        path = os.fspath(given) if isinstance(given, (str, os.PathLike)) else spec.origin
        local = path is not None and os.path.exists(path)
        quant = file_quant(spec)
        return ModelSource(
            name=spec.name,
            repo_id=None if local else (path or getattr(spec, "source", None)),
            path=path if local else None,
            file_format=stored_family(spec),
            file_quant=quant,
            files=tuple(spec.checkpoint.files),
            file_bytes=spec.checkpoint.file_bytes,
        )
    entry = find(spec.name)
    if entry is None:
        return ModelSource(name=spec.name)
    return ModelSource(name=entry.name, repo_id=entry.repo_ids[0] if entry.repo_ids else None,
                       published=published_for(entry.name))  # fmt: skip


def check_quant_matches_file(source: ModelSource, quant: str | None) -> None:
    """A quant that contradicts the user's own files is an error (their types are what loads)."""
    if quant is None or source.file_quant is None or source.file_format is None:
        return
    if quant.strip().upper() != source.file_quant.upper():
        where = source.path or source.repo_id
        raise SettingError(
            f"{where} is {source.file_quant}; quant {quant!r} contradicts it (qwenfit uses the file's "
            "own tensor types: leave quant out, or name a catalog model to compare quantizations)"
        )
