"""The public functions: they resolve inputs (models, quantizations, machines, engine options)
through the loaders and the engine registry, check them, and delegate to :mod:`qwenfit.core.fit`.
No engine is named here; every engine answers through its contract (:mod:`qwenfit.core.engines.base`).

``context`` is tokens per sequence everywhere (``estimate``, ``check``, ``max_context``, ``plan``, the
CLI, ``--json`` and the calculator); an engine that counts otherwise converts inside its home
(llama.cpp's ``-c`` is ``context × sequences``).
"""

from __future__ import annotations

from qwenfit.api.commands import CommandCheck, check_command, check_commands
from qwenfit.api.files import recipe_from_gguf, weights
from qwenfit.api.memory import CheckResult, check, check_result, estimate, max_context, max_sequences
from qwenfit.api.planning import plan, plan_model
from qwenfit.api.requirements import MachineFit, Requirements, requirements

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
