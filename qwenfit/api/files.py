"""``qwenfit.weights`` and ``qwenfit.recipe_from_gguf``: a model's weights under a quantization."""

from __future__ import annotations

import os
from typing import Any

from qwenfit.core.formats.names import normalise
from qwenfit.core.formats.recipes import Recipe
from qwenfit.core.formats.weights import WeightMap, weights_as_stored, weights_from_recipe
from qwenfit.core.model.spec import ModelSpec
from qwenfit.errors import SettingError
from qwenfit.loaders import load

__all__ = ["recipe_from_gguf", "weights"]


def weights(
    model: str | os.PathLike[str] | ModelSpec,
    quant: str | Recipe | None = None,
    *,
    mtp: bool | None = None,
    vision: bool | None = None,
    **options: Any,
) -> WeightMap:
    """The weights of ``model`` (a spec or anything :func:`qwenfit.load` accepts) per tensor, exact bytes.

    ``quant=None``: as the checkpoint stores them (from its headers when read from files, else as
    the official BF16 checkpoint); MTP and vision included unless turned off.

    ``quant`` a GPU format (``"fp8"``, ``"awq"``, ``"nvfp4"``, ``"mlx-4bit"``, …; see
    :data:`qwenfit.core.formats.gpu.FORMATS`): the checkpoint that recipe publishes, every scale and
    zero included; ``group_size`` where the format has one. Lower-case ``"bf16"``/``"fp16"`` mean the
    safetensors checkpoint; upper-case ``"BF16"``/``"F16"`` the llama.cpp file type
    (:mod:`qwenfit.core.formats.names`).

    ``quant`` a llama.cpp file type (``"Q4_K_M"``, ``"IQ2_XXS"``, …): the text GGUF llama-quantize
    writes. ``mtp`` defaults to what the converter writes (in, for the current regime);
    ``vision=True`` adds the separate mmproj file (``mmproj_type`` F16, BF16, F32 or Q8_0).
    Options as llama-quantize has them: ``pure``, ``output_tensor_type``, ``token_embedding_type``,
    ``tensor_types`` (``[(regex, type)]`` or ``["regex=type"]``), ``leave_output_tensor``, ``imatrix``,
    ``regime`` (``"current"`` or ``"pre-2026-03"``), and the converter's ``outtype`` (``"BF16"``).
    """
    spec = load(model)
    if isinstance(quant, Recipe):
        return weights_from_recipe(spec, quant, mtp=mtp)
    if quant is None:
        if options:
            raise SettingError(f"options {sorted(options)} need a quant")
        return weights_as_stored(
            spec, mtp=True if mtp is None else mtp, vision=True if vision is None else vision
        )
    name = normalise(quant)
    if name is None:
        from qwenfit.core.formats.gguf import FILE_TYPES
        from qwenfit.core.formats.gpu import FORMATS

        raise SettingError(
            f"unknown quantization {quant!r}; llama.cpp file types: {', '.join(FILE_TYPES)}; "
            f"GPU formats: {', '.join(FORMATS)}; or the path of a GGUF to copy"
        )
    if name.kind == "gguf_file":
        return weights_from_recipe(spec, recipe_from_gguf(name.canonical), mtp=mtp)
    try:
        if name.family == "gguf":
            from qwenfit.core.formats.weights import gguf_weights

            return gguf_weights(spec, name.canonical, mtp=mtp, vision=bool(vision), **options)
        from qwenfit.core.formats.gpu import gpu_weights

        unknown = sorted(set(options) - {"group_size"})
        if unknown:
            raise SettingError(f"{quant}: unknown options {unknown} (GPU formats take group_size)")
        return gpu_weights(spec, name.canonical, mtp=mtp, vision=vision, group_size=options.get("group_size"))
    except SettingError:
        raise
    except (TypeError, ValueError) as exc:
        raise SettingError(f"{quant}: {exc}") from None


def recipe_from_gguf(path: str | os.PathLike[str]) -> Recipe:
    """The per-role tensor types of a local GGUF (e.g. a community dynamic quant), to apply to
    other models with ``weights(model, recipe)`` or ``weights(model, "that.gguf")``."""
    from qwenfit.core.formats.recipes import learn_recipe

    source = load(path)
    ck = source.checkpoint
    if ck is None or ck.format != "gguf":
        raise SettingError(f"{path}: not a GGUF file")
    types = {t.name: t.dtype for t in ck.tensors}
    return learn_recipe(os.fspath(path), source.inventory, types, source.text.num_hidden_layers)
