"""Resolving one deployment from what a caller gives (a model source, a quantization name, a machine
or plain numbers, engine options): every public function of :mod:`qwenfit.api` starts here."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from qwenfit.api.files import recipe_from_gguf
from qwenfit.api.sources import check_quant_matches_file, model_source
from qwenfit.core.artifacts import ModelSource
from qwenfit.core.engines.base import Artifact, Deployment, Engine, get
from qwenfit.core.engines.base import engines as all_engines
from qwenfit.core.fit.assemble import assemble, deployment, mixed_split
from qwenfit.core.fit.model_inputs import PlanModel, stored_inputs
from qwenfit.core.fit.speed import speed_of, with_bf16
from qwenfit.core.formats.names import QUANT_OPTIONS, why_not
from qwenfit.core.formats.weights import WeightMap
from qwenfit.core.hardware import BACKENDS, Machine, Target, target_for
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import Estimate
from qwenfit.errors import LeftOut, SettingError
from qwenfit.loaders import load

__all__ = ["Prepared", "evaluate", "gb_bytes", "plan_model", "positive", "prepare", "target_of", "with_speed"]


def positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SettingError(f"{name} must be a positive integer, got {value!r}")


def gb_bytes(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise SettingError(f"{name} must be positive (a number of GB), got {value!r}")
    return int(value * 1e9)


def target_of(
    engine: Engine, hardware: str | Machine | None, vram_gb: Any, ram_gb: Any, wired_limit_mb: int | None
) -> Target:
    vram, ram = gb_bytes("vram_gb", vram_gb), gb_bytes("ram_gb", ram_gb)
    if hardware is None:
        return target_for(
            None,
            vram_bytes=vram,
            ram_bytes=ram,
            unified_default=engine.unified_only,
            wired_limit_mb=wired_limit_mb,
        )
    if vram_gb is not None:
        raise SettingError("give either hardware or vram_gb, not both (vram_gb describes a custom GPU)")
    if isinstance(hardware, str):
        from qwenfit.loaders.hardware import parse_machine

        machine = parse_machine(hardware, ram_gb=ram_gb)
    else:
        machine = hardware
    return target_for(machine, ram_bytes=ram, wired_limit_mb=wired_limit_mb)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One deployment, resolved: everything an estimate, a search or a check needs. ``reads``: the
    bytes a token reads at its placement when precompiled with the inputs (else computed from the
    weights); the weights themselves are computed on first use (``weights``)."""

    spec: ModelSpec
    engine: Engine
    quant: str
    weights_of: Callable[[], WeightMap]
    inputs: dict[str, Any]
    d: Deployment
    o: Any
    target: Target
    engine_options: dict[str, Any]
    source: ModelSource
    artifact: Artifact
    reads: dict[str, Any] | None = None

    @property
    def weights(self) -> WeightMap:
        """What the artifact holds (computed once, when first asked)."""
        return self.weights_of()


def plan_model(spec: ModelSpec, given: object, source: ModelSource | None = None) -> PlanModel:
    """A catalog model keeps its name as cache key; anything else gets a key unique to the spec.
    ``source``: where its weights come from (default: from ``given``, :func:`.sources.model_source`)."""
    from qwenfit.loaders.catalog import find, load_catalog_model

    where = source or model_source(spec, given)
    entry = find(spec.name)
    if isinstance(given, str) and find(given) is not None and entry is not None and spec.checkpoint is None:
        return PlanModel(spec, entry.name, where)
    catalogs = entry is not None and spec.checkpoint is None
    if catalogs and given is spec and entry is not None and spec is load_catalog_model(entry.name):
        return PlanModel(spec, entry.name, where)  # the catalog's own spec, passed as loaded (the CLI does)
    return PlanModel(spec, f"{spec.name}@{getattr(spec, 'source', '') or given}#{id(spec)}", where)


def prepare(
    model: str | os.PathLike[str] | ModelSpec,
    quant: str | None,
    *,
    context: int | None,
    engine: str,
    kv_cache: str | None,
    sequences: int,
    mtp: bool,
    vision: bool | None,
    backend: str | None,
    n_gpus: int | None,
    hardware: str | Machine | None,
    vram_gb: Any,
    ram_gb: Any,
    wired_limit_mb: int | None,
    options: Mapping[str, Any],
    artifact: str | None = None,
    precompiled: bool = False,
) -> Prepared:
    """``precompiled``: for a catalog model, read the inputs precompiled for it (the weights are then
    computed only if asked for); they may leave out what only :func:`evaluate` reads (it copes)."""
    eng = get(engine)
    target = target_of(eng, hardware, vram_gb, ram_gb, wired_limit_mb)
    if backend is not None and backend not in BACKENDS:
        raise SettingError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    spec = load(model)
    if context is None:
        context = spec.text.max_position_embeddings
    positive("context", context)
    positive("sequences", sequences)
    if n_gpus is not None and (isinstance(n_gpus, bool) or not isinstance(n_gpus, int) or n_gpus < 0):
        raise SettingError(f"n_gpus must be a non-negative integer, got {n_gpus!r}")
    if sequences > eng.max_sequences:
        raise SettingError(f"sequences={sequences} is beyond {eng.name}'s limit of {eng.max_sequences}")
    quant_options = {k: v for k, v in options.items() if k in QUANT_OPTIONS}
    engine_options = mixed_split(eng, target, {k: v for k, v in options.items() if k not in QUANT_OPTIONS})
    o = eng.options(engine_options)
    if mtp and not spec.mtp_layers:
        raise SettingError(f"mtp=True but {spec.name} has no MTP layer in its checkpoint")
    if vision is None:
        vision = False  # text only, as plan() and the printed command (vLLM: --language-model-only)
    d = deployment(
        eng,
        target,
        context=context,
        sequences=sequences,
        kv_cache=kv_cache,
        mtp=mtp,
        vision=vision,
        backend=backend,
        n_gpus=n_gpus,
    )
    eng.check(spec, d, o)
    machine = target.machine
    placed = eng.placement_of(d, o)
    if machine is not None and placed is not None and machine.devices and placed.tp > machine.n_devices:
        raise SettingError(
            f"{eng.name}: tensor parallelism over {placed.tp} GPUs needs {placed.tp} GPUs in one machine; "
            f"{machine.name} has {machine.n_devices}"
        )
    source = model_source(spec, model)
    check_quant_matches_file(source, quant)
    if source.file_format is not None:
        if source.file_quant is None:
            raise SettingError(f"{source.path or source.repo_id}: qwenfit has no model of this checkpoint's "
                               "quantization method (qwenfit inspect shows what it found)")  # fmt: skip
        if source.file_format != eng.weights_family:
            loaders = [e.name for e in all_engines() if e.weights_family == source.file_format]
            where = source.path or source.repo_id
            raise SettingError(f"{where} is a {source.file_format} checkpoint, which {eng.name} does not "
                               f"load; engines that do: {', '.join(loaders)}")  # fmt: skip
        quant = source.file_quant
    elif artifact == "recipe":
        source = dataclasses.replace(source, published=())
    elif artifact is not None:
        raise SettingError(f"artifact={artifact!r}; valid: None (what the command loads) or 'recipe'")
    quant = quant or eng.default_quant
    name = eng.accepts(quant) if source.file_format is None or quant != "as stored" else quant
    if name is None:
        runs = {e.weights_family: e.name for e in reversed(all_engines())}
        raise SettingError(f"{eng.name}: " + why_not(quant, eng.weights_family, eng.name, runs))
    try:
        if name.endswith(".gguf"):
            art = eng.artifact(dataclasses.replace(source, published=()), eng.default_quant, d)
            w = eng.weights(spec, recipe_from_gguf(name), mtp=mtp, vision=vision, **quant_options)
        else:
            art = eng.artifact(source, name, d)
            if precompiled and not (mtp or vision or quant_options):
                stored = stored_inputs(plan_model(spec, model, source), eng, name, art, d, o)
                if stored is not None:  # a catalog model's: its weights computed only if asked for
                    weights_of = functools.partial(
                        eng.artifact_weights, spec, art, name, mtp=False, vision=False
                    )
                    return Prepared(spec, eng, name, functools.cache(weights_of), stored[0], d, o, target,
                                    engine_options, source, art, stored[1])  # fmt: skip
            w = eng.artifact_weights(spec, art, name, mtp=mtp, vision=vision, **quant_options)
    except SettingError:
        raise
    except (TypeError, ValueError) as exc:
        raise SettingError(f"{quant}: {exc}") from None
    try:
        inputs = eng.inputs(spec, w, d, o)
    except SettingError:
        raise
    except ValueError as exc:
        raise SettingError(f"{eng.name}: {exc}") from None
    return Prepared(spec, eng, name, lambda: w, inputs, d, o, target, engine_options, source, art)


def evaluate(p: Prepared, d: Deployment | None = None) -> Estimate:
    from qwenfit.core.engines.base import exact_evaluation

    with exact_evaluation():  # one configuration for the caller: engines may compute exactly
        try:
            return assemble(p.spec, p.engine, p.quant, p.inputs, d or p.d, p.o, p.target)
        except LeftOut:  # precompiled inputs lack what the exact computation reads: computed in full
            inputs = p.engine.inputs(p.spec, p.weights, p.d, p.o)
            return assemble(p.spec, p.engine, p.quant, inputs, d or p.d, p.o, p.target)


def with_speed(p: Prepared, e: Estimate) -> Estimate:
    """The estimate with decode/prefill speed when the machine is known (the planner's speed path)."""
    machine = p.target.machine
    placement = p.engine.placement_of(p.d, p.o)
    if machine is None or placement is None:
        return e
    from qwenfit.loaders.calibrated import activate

    activate()  # `qwenfit calibrate` constants, if stored
    inputs = p.reads
    if inputs is None:
        inputs = with_bf16(p.engine.read_inputs(p.spec, p.weights, placement), p.weights)
    reads = p.engine.decode_reads(p.spec, inputs, placement, p.o)
    decode, prefill, detail = speed_of(
        p.spec, e, machine, p.engine, placement, p.d.backend, reads, bf16=inputs["r:bf16_ppm"]
    )
    return dataclasses.replace(
        e, decode_tokens_per_s=decode, prefill_tokens_per_s=prefill, speed_detail=detail
    )
