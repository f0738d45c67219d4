"""qwenfit: which Qwen3.5 model, in which quantization, fits this hardware — exactly.

``qwenfit.load(source)`` gives a :class:`ModelSpec`; ``spec.params`` and ``spec.inventory`` are
exact sums over every tensor of the checkpoint. See DESIGN.md for the whole API.
"""

from __future__ import annotations

from qwenfit.core.inventory import Inventory, ParamCount, StoredTensor, Tensor
from qwenfit.core.spec import ModelSpec, TextSpec, VisionSpec
from qwenfit.errors import (
    ConfigError,
    QwenfitError,
    SourceNotFoundError,
    UnknownModelError,
    UnsupportedModelError,
)
from qwenfit.loaders import load

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
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
    "__version__",
    "load",
]
