"""A test-only engine: the smallest complete implementation of the Engine contract.

ARCHITECTURE.md, "add an engine": this file plus ``register(TOY)`` is everything an engine needs to
work in ``estimate()``, ``plan()``, ``check()``, the nearest-fit search and the calculator's traced
formulas; ``tests/engines/test_conformance.py`` runs it through the same suite as every real engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qwenfit.core.command import Cmd
from qwenfit.core.engines.base import (
    Artifact,
    Deployment,
    Engine,
    FormulaPlacement,
    Placement,
    SpeedConstants,
    option_field,
)
from qwenfit.core.expr import lt
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import Term
from qwenfit.core.units import GIB


@dataclass(frozen=True, slots=True)
class ToyOptions:
    reserve_gib: int = option_field(1, "memory the toy server keeps for itself, GiB", check="positive")


class Toy(Engine):
    """A server that keeps the weights, a bf16 KV cache of the full-attention layers and a reserve."""

    name = "toy"
    weights_family = "safetensors"
    kv_types = ("auto",)
    calc_kv_types = ("auto",)
    default_quant = "bf16"
    planner_quants = ("bf16", "fp8")
    max_sequences = 64
    Options = ToyOptions
    speed = SpeedConstants("toy", 500, {"cuda": 80})

    def terms(self, spec: ModelSpec, inputs: Mapping[str, Any], d: Deployment, o: Any) -> list[Term]:
        t = spec.text
        per_token = t.n_full_attention * 2 * t.num_key_value_heads * t.head_dim * 2
        src = "tests/engines/toy_engine.py"
        return [
            Term("weights", "gpu", inputs["w:rank"], True, src, inputs.get("scheme", "")),
            Term(
                "kv_cache",
                "gpu",
                d.context * d.sequences * per_token,
                True,
                src,
                "bf16, full-attention layers",
            ),
            Term("runtime_reserve", "gpu", o.reserve_gib * GIB, False, src, "estimated"),
        ]

    def default_on(self, machine: Any) -> bool:
        return False

    def command(self, artifact: Artifact, d: Deployment, o: Any) -> Cmd:
        cmd = Cmd().add(artifact.make).add("toy-serve", artifact.ref, "--context", d.context)
        return cmd.add("--slots", d.sequences, when=lt(1, d.sequences))

    def formula_placement(self, p: Placement) -> FormulaPlacement | None:
        return FormulaPlacement("gpu1", 1)


TOY = Toy()
