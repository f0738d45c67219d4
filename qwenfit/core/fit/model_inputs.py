"""What the planner knows of a model before it places it: :class:`PlanModel`, and its inputs per
engine, quantization and artifact (the weights, their per-device sums, the bytes a token reads, the
traced formulas' environments), cached across calls and read from the precompiled tables for the
catalog's models (:mod:`qwenfit.core.formats.compiled`). A check reads the same tables
(:func:`stored_inputs`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qwenfit.core.artifacts import ModelSource
from qwenfit.core.engines.base import EXACT, Artifact, Deployment, Engine, FormulaPlacement, Placement
from qwenfit.core.fit.formulas import placement_env
from qwenfit.core.fit.speed import with_bf16
from qwenfit.core.formats.compiled import MISSING, lookup, remember
from qwenfit.core.formats.weights import WeightMap
from qwenfit.core.model.spec import ModelSpec

__all__ = [
    "PlanModel",
    "cached_reads",
    "clear_caches",
    "formula_env",
    "model_weights",
    "stored",
    "stored_inputs",
    "use_spec",
    "weight_inputs",
]


@dataclass(frozen=True, slots=True)
class PlanModel:
    """A model the planner may place: its spec, a cache key (a catalog name, or a unique key for a
    file), and where its weights come from (what launch commands load)."""

    spec: ModelSpec
    key: str
    source: ModelSource | None = None

    @property
    def where(self) -> ModelSource:
        return self.source or ModelSource(name=self.spec.name)


_SPECS: dict[str, ModelSpec] = {}
_INPUTS: dict[tuple[Any, ...], dict[str, Any]] = {}


def use_spec(key: str, spec: ModelSpec) -> None:
    """Cache ``spec``'s inputs under ``key`` from now on (a new spec under a known key clears the caches)."""
    if _SPECS.get(key) is not spec:
        if key in _SPECS or len(_SPECS) >= 256:  # a new spec under a known key: forget what was cached
            clear_caches()
        _SPECS[key] = spec


def clear_caches() -> None:
    """Forget every cached model input (weights, sums, formulas' environments)."""
    _SPECS.clear()
    _INPUTS.clear()
    for cached in (_weights_cached, cached_reads, formula_env):
        cached.cache_clear()


def model_weights(key: str, engine: Engine, quant: str, art: Artifact, vision: bool = False) -> WeightMap:
    """What ``art`` holds of the model under ``key`` (computed once)."""
    # one cache entry whether ``vision`` is given or not (lru_cache keys f(a) and f(a, False) apart)
    return _weights_cached(key, engine, quant, art, vision)


@functools.lru_cache(maxsize=512)
def _weights_cached(key: str, engine: Engine, quant: str, art: Artifact, vision: bool) -> WeightMap:
    return engine.artifact_weights(_SPECS[key], art, quant, mtp=False, vision=vision)


def weight_inputs(
    key: str, engine: Engine, quant: str, art: Artifact, d: Deployment, o: Any
) -> dict[str, Any]:
    """The engine's weight inputs, cached by what they depend on (:meth:`Engine.inputs_key`);
    precompiled for the catalog (:mod:`qwenfit.core.formats.compiled`) outside exact evaluation."""
    exact = EXACT.get()  # exact evaluation may read what precompiled inputs leave out (tensor tables)
    k = (key, engine, quant, art, engine.inputs_key(d, o), exact)
    found = _INPUTS.get(k)
    if found is None:
        if len(_INPUTS) >= 4096:
            _INPUTS.clear()
        parts = (engine.name, quant, repr(art), repr(k[4]))
        found = MISSING if exact else lookup(key, "inputs", parts)
        if found is MISSING:
            w = model_weights(key, engine, quant, art, d.vision)
            found = engine.weight_inputs(_SPECS[key], w, d, o)
            if not exact:
                remember(key, "inputs", parts, found)
        _INPUTS[k] = found
    return found


def stored(key: str, kind: str, parts: tuple[str, ...], compute: Callable[[], Any]) -> Any:
    """The precompiled value of ``kind``/``parts`` for model ``key``, else ``compute()``."""
    found = lookup(key, kind, parts)
    if found is MISSING:
        found = compute()
        remember(key, kind, parts, found)
    return found


@functools.lru_cache(maxsize=1024)
def cached_reads(
    key: str, engine: Engine, quant: str, art: Artifact, shape: Placement, mtp: bool
) -> dict[str, Any]:
    """The bytes a token reads at placement ``shape`` (:meth:`Engine.read_inputs`, with ``r:bf16_ppm``)."""

    def compute() -> dict[str, Any]:
        w = model_weights(key, engine, quant, art)
        return with_bf16(engine.read_inputs(_SPECS[key], w, shape), w)

    return stored(key, "reads", (engine.name, quant, repr(art), repr(shape)), compute)  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=8192)
def formula_env(key: str, engine: Engine, quant: str, art: Artifact, fp: FormulaPlacement) -> dict[str, Any]:
    """The traced formulas' environment of placement ``fp`` (:func:`.formulas.placement_env`)."""
    return stored(  # type: ignore[no-any-return]
        key,
        "env",
        (engine.name, quant, repr(art), repr(fp)),
        lambda: placement_env(_SPECS[key], engine, model_weights(key, engine, quant, art), fp),
    )


def stored_inputs(
    model: PlanModel, engine: Engine, quant: str, art: Artifact, d: Deployment, o: Any
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """One deployment's inputs (:meth:`Engine.inputs`) as precompiled for a catalog model (``model.key``
    its name), or None when they are not, with the bytes a token reads at its placement when those are
    precompiled too (else None): what a check reads instead of computing the weights. llama.cpp's
    inputs leave out the GGUF's tensor table (:class:`~qwenfit.errors.LeftOut` when the
    exact replay reaches for it)."""
    weight = lookup(model.key, "inputs", (engine.name, quant, repr(art), repr(engine.inputs_key(d, o))))
    if weight is MISSING:
        return None
    placement = engine.placement_of(d, o)
    reads = MISSING
    if placement is not None:
        reads = lookup(model.key, "reads", (engine.name, quant, repr(art), repr(placement)))
    return {**weight, **engine.hardware_inputs(d, o)}, None if reads is MISSING else reads
