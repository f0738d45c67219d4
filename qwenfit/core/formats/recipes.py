"""Quantize like this GGUF: learn the per-tensor types of an existing file and apply them elsewhere.

Community "dynamic" quants (unsloth UD-*, bartowski, mradermacher i1) are not llama.cpp file types:
each tensor gets a hand-picked type. A :class:`Recipe` records, for every role (``attn_qkv``,
``ffn_down_exps``, ``output``, …), the type at each relative depth of the source model. Applied to
the same model it reproduces the file's types exactly; applied to another size, each tensor takes
the type its role had at the nearest relative depth (layer / number of layers) — an estimate, and
labelled as one — then llama.cpp's fallback if its rows do not divide the block.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from qwenfit.core.formats.dtypes import GGML_TYPES
from qwenfit.core.formats.gguf import fallback_type
from qwenfit.core.model.checkpoint import fused_gate_up_name
from qwenfit.core.model.inventory import Tensor

__all__ = ["Recipe", "learn_recipe"]


def _role_key(t: Tensor) -> str:
    """Role and component: the MTP layer's attention is a recipe entry of its own."""
    return f"{t.component}:{t.role}"


@dataclass(frozen=True, slots=True)
class Recipe:
    """Per role, the (relative depth, ggml type) pairs of a source GGUF."""

    source: str
    types: dict[str, tuple[tuple[float, str], ...]]
    n_layers: int

    def type_for(self, t: Tensor, n_layers: int) -> str | None:
        """The type for tensor ``t`` of a model with ``n_layers`` decoder layers, or None if the
        source had no tensor of this role."""
        options = self.types.get(_role_key(t))
        if not options:
            return None
        if t.layer is None or t.component != "text" or len(options) == 1:
            return options[0][1]
        depth = t.layer / max(1, n_layers - 1)
        return min(options, key=lambda o: (abs(o[0] - depth), o[0]))[1]

    def apply(self, tensors: Iterable[Tensor], n_layers: int) -> list[tuple[Tensor, str, bool]]:
        """(tensor, type, exact) for each tensor that has a GGUF name; exact is False when the type
        was transferred from another size or fell back because its rows do not divide."""
        out = []
        for t in tensors:
            if t.gguf_name is None or t.gguf_shape is None:
                continue
            kind = self.type_for(t, n_layers)
            if kind is None:
                raise ValueError(f"the recipe from {self.source} has no tensor of role {_role_key(t)}")
            exact = n_layers == self.n_layers
            if GGML_TYPES[kind].block_size > 1:
                kind, fell_back = fallback_type(kind, t.gguf_shape[0], "current")
                exact = exact and not fell_back
            out.append((t, kind, exact))
        return out


def learn_recipe(
    source: str, inventory: Iterable[Tensor], stored_types: dict[str, str], n_layers: int
) -> Recipe:
    """A recipe from a GGUF's tensor types (``stored_types``: GGUF name -> ggml type) and the
    inventory of the model it holds."""
    by_role: dict[str, dict[float, str]] = {}
    for t in inventory:
        if t.gguf_name is None:
            continue
        kind = stored_types.get(t.gguf_name) or stored_types.get(fused_gate_up_name(t.gguf_name) or "")
        if kind is None:
            continue
        depth = 0.0 if t.layer is None or t.component != "text" else t.layer / max(1, n_layers - 1)
        by_role.setdefault(_role_key(t), {})[depth] = kind
    types = {role: tuple(sorted(d.items())) for role, d in by_role.items()}
    return Recipe(source=source, types=types, n_layers=n_layers)
