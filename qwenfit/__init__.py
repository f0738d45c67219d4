"""qwenfit: which Qwen3.5 model, in which quantization, fits this hardware — exactly.

``qwenfit.load(source)`` gives a :class:`ModelSpec`; ``spec.params`` and ``spec.inventory`` are
exact sums over every tensor of the checkpoint. See DESIGN.md for the whole API.
"""

from __future__ import annotations

import os

from qwenfit.core.inventory import Inventory, ParamCount, StoredTensor, Tensor
from qwenfit.core.quant import WeightEntry, WeightMap
from qwenfit.core.spec import ModelSpec, TextSpec, VisionSpec
from qwenfit.errors import (
    CheckpointError,
    ConfigError,
    HubError,
    QwenfitError,
    SourceNotFoundError,
    UnknownModelError,
    UnsupportedModelError,
)
from qwenfit.loaders import load


def weights(
    model: str | os.PathLike[str] | ModelSpec,
    quant: None = None,
    *,
    mtp: bool = True,
    vision: bool = True,
) -> WeightMap:
    """The weights of ``model`` (a spec or anything :func:`load` accepts) per tensor, exact bytes.

    With no ``quant``: as the checkpoint stores them (from its headers when read from files, else
    as the official BF16 checkpoint). ``mtp``/``vision`` False leave those parts out.
    """
    from qwenfit.core.quant import weights_as_stored

    spec = load(model)
    if quant is not None:
        raise QwenfitError(f"quantization {quant!r}: quantization schemes are not available in this version")
    return weights_as_stored(spec, mtp=mtp, vision=vision)


__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "HubError",
    "Inventory",
    "ModelSpec",
    "ParamCount",
    "QwenfitError",
    "SourceNotFoundError",
    "StoredTensor",
    "Tensor",
    "TextSpec",
    "UnknownModelError",
    "UnsupportedModelError",
    "VisionSpec",
    "WeightEntry",
    "WeightMap",
    "__version__",
    "load",
    "weights",
]
