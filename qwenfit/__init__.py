"""qwenfit: which Qwen3.5 model, in which quantization, fits this hardware — exactly.

``qwenfit.load(source)`` gives a :class:`ModelSpec`; ``spec.params`` and ``spec.inventory`` are
exact sums over every tensor of the checkpoint. See DESIGN.md for the whole API.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from qwenfit.api import SettingError, check, estimate, max_context, max_sequences
from qwenfit.core.engines.llama_cpp.layout import Placement
from qwenfit.core.formats.recipes import Recipe
from qwenfit.core.formats.weights import WeightEntry, WeightMap
from qwenfit.core.hardware import Device, Machine
from qwenfit.core.model.inventory import Inventory, ParamCount, StoredTensor, Tensor
from qwenfit.core.model.spec import ModelSpec, TextSpec, VisionSpec
from qwenfit.core.terms import DoesNotFit, Estimate, Term
from qwenfit.errors import (
    CheckpointError,
    ConfigError,
    HubError,
    QwenfitError,
    SourceNotFoundError,
    UnknownHardwareError,
    UnknownModelError,
    UnsupportedModelError,
)
from qwenfit.loaders import load

if TYPE_CHECKING:  # imported on first use (module __getattr__): `import qwenfit` stays light for pre-flight
    from qwenfit.planner import Option, Plan, plan

_LAZY = {"plan": "qwenfit.planner", "Plan": "qwenfit.planner", "Option": "qwenfit.planner"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'qwenfit' has no attribute {name!r}")


def weights(
    model: str | os.PathLike[str] | ModelSpec,
    quant: str | Recipe | None = None,
    *,
    mtp: bool | None = None,
    vision: bool | None = None,
    **options: Any,
) -> WeightMap:
    """The weights of ``model`` (a spec or anything :func:`load` accepts) per tensor, exact bytes.

    ``quant=None``: as the checkpoint stores them (from its headers when read from files, else as
    the official BF16 checkpoint); MTP and vision included unless turned off.

    ``quant`` a GPU format (``"fp8"``, ``"awq"``, ``"nvfp4"``, ``"mlx-4bit"``, …; see
    :data:`qwenfit.core.formats.gpu.FORMATS`): the checkpoint that recipe publishes, every scale and
    zero included; ``group_size`` where the format has one. Lower-case ``"bf16"``/``"fp16"`` mean the
    safetensors checkpoint; upper-case ``"BF16"``/``"F16"`` the llama.cpp file type.

    ``quant`` a llama.cpp file type (``"Q4_K_M"``, ``"IQ2_XXS"``, …): the text GGUF llama-quantize
    writes. ``mtp`` defaults to what the converter writes (in, for the current regime);
    ``vision=True`` adds the separate mmproj file (``mmproj_type`` F16, BF16, F32 or Q8_0).
    Options as llama-quantize has them: ``pure``, ``output_tensor_type``, ``token_embedding_type``,
    ``tensor_types`` (``[(regex, type)]`` or ``["regex=type"]``), ``leave_output_tensor``, ``imatrix``,
    ``regime`` (``"current"`` or ``"pre-2026-03"``), and the converter's ``outtype`` (``"BF16"``).
    """
    from qwenfit.core.formats.gguf import FILE_TYPES, LlamaQuantOptions
    from qwenfit.core.formats.weights import weights_as_stored, weights_gguf

    spec = load(model)
    if isinstance(quant, Recipe):
        from qwenfit.core.formats.weights import weights_from_recipe

        return weights_from_recipe(spec, quant, mtp=mtp)
    if quant is None:
        if options:
            raise QwenfitError(f"options {sorted(options)} need a quant")
        return weights_as_stored(
            spec, mtp=True if mtp is None else mtp, vision=True if vision is None else vision
        )
    from qwenfit.core.formats.gpu import FORMATS, gpu_weights

    # GPU format names are lower case; "bf16"/"fp16" name the safetensors checkpoint, "BF16"/"F16"
    # the llama.cpp file type. Other names match in any case ("q4_k_m", "FP8").
    name = quant.strip()
    ftype = name.upper()
    gpu_format = name if name in FORMATS else None
    if gpu_format is None and ftype not in FILE_TYPES and name.lower() in FORMATS:
        gpu_format = name.lower()
    if gpu_format is not None:
        group_size = options.pop("group_size", None)
        if options:
            raise QwenfitError(f"{quant}: unknown options {sorted(options)} (GPU formats take group_size)")
        return gpu_weights(spec, gpu_format, mtp=mtp, vision=vision, group_size=group_size)
    if ftype in FILE_TYPES:
        mmproj_type = str(options.pop("mmproj_type", "F16")).upper()
        outtype = str(options.pop("outtype", "BF16")).upper()
        tensor_types = tuple(
            (pattern, kind.upper())
            for pattern, kind in (
                item.split("=", 1) if isinstance(item, str) else item
                for item in options.pop("tensor_types", ())
            )
        )
        for key in ("output_tensor_type", "token_embedding_type"):
            if isinstance(options.get(key), str):
                options[key] = options[key].upper()
        try:
            opts = LlamaQuantOptions(tensor_types=tensor_types, **options)
            text = weights_gguf(spec, ftype, mtp=mtp, outtype=outtype, options=opts)
            if not vision:
                return text
            if spec.vision is None:
                raise QwenfitError(f"{spec.name} has no vision tower")
            from qwenfit.core.formats.weights import mmproj_header_bytes, mmproj_weights

            projector = mmproj_weights(spec, mmproj_type, regime=opts.regime)
            return dataclasses.replace(
                text,
                scheme=f"{text.scheme} + mmproj {mmproj_type}",
                tensors=text.tensors + projector,
                header_bytes=text.header_bytes + mmproj_header_bytes(projector),
            )
        except TypeError as exc:
            raise QwenfitError(f"{quant}: {exc}") from None
        except ValueError as exc:
            raise QwenfitError(f"{quant}: {exc}") from None
    if quant.endswith(".gguf"):
        from qwenfit.core.formats.weights import weights_from_recipe

        return weights_from_recipe(spec, recipe_from_gguf(quant), mtp=mtp)
    raise QwenfitError(
        f"unknown quantization {quant!r}; llama.cpp file types: {', '.join(FILE_TYPES)}; "
        f"GPU formats: {', '.join(FORMATS)}; or the path of a GGUF to copy"
    )


def recipe_from_gguf(path: str | os.PathLike[str]) -> Recipe:
    """The per-role tensor types of a local GGUF (e.g. a community dynamic quant), to apply to
    other models with ``weights(model, recipe)`` or ``weights(model, "that.gguf")``."""
    from qwenfit.core.formats.recipes import learn_recipe

    source = load(path)
    ck = source.checkpoint
    if ck is None or ck.format != "gguf":
        raise QwenfitError(f"{path}: not a GGUF file")
    types = {t.name: t.dtype for t in ck.tensors}
    return learn_recipe(os.fspath(path), source.inventory, types, source.text.num_hidden_layers)


__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "Device",
    "DoesNotFit",
    "Estimate",
    "HubError",
    "Inventory",
    "Machine",
    "ModelSpec",
    "Option",
    "ParamCount",
    "Placement",
    "Plan",
    "QwenfitError",
    "Recipe",
    "SettingError",
    "SourceNotFoundError",
    "StoredTensor",
    "Tensor",
    "Term",
    "TextSpec",
    "UnknownHardwareError",
    "UnknownModelError",
    "UnsupportedModelError",
    "VisionSpec",
    "WeightEntry",
    "WeightMap",
    "__version__",
    "check",
    "estimate",
    "load",
    "max_context",
    "max_sequences",
    "plan",
    "recipe_from_gguf",
    "weights",
]
