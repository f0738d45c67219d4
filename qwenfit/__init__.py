"""qwenfit: which Qwen3.5 model, in which quantization, fits this hardware — exactly.

``qwenfit.load(source)`` gives a :class:`ModelSpec`; ``spec.params`` and ``spec.inventory`` are
exact sums over every tensor of the checkpoint; ``qwenfit.estimate()``, ``check()`` and ``plan()``
answer what fits; ``check_command()`` checks an engine's own launch command. ARCHITECTURE.md has
the floor plan.

Re-exports only. Every name is imported on first use, so ``import qwenfit`` costs almost nothing
(pre-flight checks run before every model launch).
"""

from __future__ import annotations

import importlib

from qwenfit.errors import (
    CheckpointError,
    ConfigError,
    DoesNotFit,
    HubError,
    QwenfitError,
    SettingError,
    SourceNotFoundError,
    UnknownHardwareError,
    UnknownModelError,
    UnsupportedModelError,
    UsageError,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (``import qwenfit`` stays light)

if TYPE_CHECKING:
    from typing import Any

    from qwenfit.api import (
        check,
        check_command,
        check_commands,
        estimate,
        max_context,
        max_sequences,
        plan,
        recipe_from_gguf,
        requirements,
        weights,
    )
    from qwenfit.api.commands import CommandCheck
    from qwenfit.api.requirements import Requirements
    from qwenfit.core.engines.base import Placement
    from qwenfit.core.fit.planner import Option, Plan
    from qwenfit.core.formats.recipes import Recipe
    from qwenfit.core.formats.weights import WeightEntry, WeightMap
    from qwenfit.core.hardware import Device, Machine
    from qwenfit.core.model.inventory import Inventory, ParamCount, StoredTensor, Tensor
    from qwenfit.core.model.spec import ModelSpec, TextSpec, VisionSpec
    from qwenfit.core.terms import Estimate, Term
    from qwenfit.loaders import load

_LAZY = {
    "check": "qwenfit.api", "check_command": "qwenfit.api", "check_commands": "qwenfit.api",
    "CommandCheck": "qwenfit.api.commands", "estimate": "qwenfit.api", "max_context": "qwenfit.api",
    "max_sequences": "qwenfit.api", "plan": "qwenfit.api", "recipe_from_gguf": "qwenfit.api",
    "requirements": "qwenfit.api", "Requirements": "qwenfit.api.requirements",
    "weights": "qwenfit.api", "load": "qwenfit.loaders",
    "Placement": "qwenfit.core.engines.base", "Option": "qwenfit.core.fit.planner",
    "Plan": "qwenfit.core.fit.planner", "Recipe": "qwenfit.core.formats.recipes",
    "WeightEntry": "qwenfit.core.formats.weights", "WeightMap": "qwenfit.core.formats.weights",
    "Device": "qwenfit.core.hardware", "Machine": "qwenfit.core.hardware",
    "Inventory": "qwenfit.core.model.inventory", "ParamCount": "qwenfit.core.model.inventory",
    "StoredTensor": "qwenfit.core.model.inventory", "Tensor": "qwenfit.core.model.inventory",
    "ModelSpec": "qwenfit.core.model.spec", "TextSpec": "qwenfit.core.model.spec",
    "VisionSpec": "qwenfit.core.model.spec", "Estimate": "qwenfit.core.terms", "Term": "qwenfit.core.terms",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qwenfit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "CommandCheck",
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
    "Requirements",
    "SettingError",
    "SourceNotFoundError",
    "StoredTensor",
    "Tensor",
    "Term",
    "TextSpec",
    "UnknownHardwareError",
    "UnknownModelError",
    "UnsupportedModelError",
    "UsageError",
    "VisionSpec",
    "WeightEntry",
    "WeightMap",
    "__version__",
    "check",
    "check_command",
    "check_commands",
    "estimate",
    "load",
    "max_context",
    "max_sequences",
    "plan",
    "recipe_from_gguf",
    "requirements",
    "weights",
]
