"""The public functions: they resolve inputs (models, quantizations, machines, engine options)
through the loaders and the engine registry, check them, and delegate to :mod:`qwenfit.core.fit`.
No engine is named here; every engine answers through its contract (:mod:`qwenfit.core.engines.base`).

``context`` is tokens per sequence everywhere (``estimate``, ``check``, ``max_context``, ``plan``, the
CLI, ``--json`` and the calculator); an engine that counts otherwise converts inside its home
(llama.cpp's ``-c`` is ``context × sequences``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# eager: the function ``requirements`` shares its module's name, which importing the module would
# otherwise bind here in its place
from qwenfit.api.requirements import MachineFit, Requirements, requirements

if TYPE_CHECKING:
    from qwenfit.api.commands import CommandCheck, check_command, check_commands
    from qwenfit.api.files import recipe_from_gguf, weights
    from qwenfit.api.memory import CheckResult, check, check_result, estimate, max_context, max_sequences
    from qwenfit.api.planning import plan, plan_model

# each other public name's module, imported on first use (a check loads no command checks)
_HOMES = {
    "CommandCheck": "commands", "check_command": "commands", "check_commands": "commands",
    "recipe_from_gguf": "files", "weights": "files",
    "CheckResult": "memory", "check": "memory", "check_result": "memory", "estimate": "memory",
    "max_context": "memory", "max_sequences": "memory",
    "plan": "planning", "plan_model": "planning",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'qwenfit.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"qwenfit.api.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CheckResult",
    "CommandCheck",
    "MachineFit",
    "Requirements",
    "check",
    "check_command",
    "check_commands",
    "check_result",
    "estimate",
    "max_context",
    "max_sequences",
    "plan",
    "plan_model",
    "recipe_from_gguf",
    "requirements",
    "weights",
]
