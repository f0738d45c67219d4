"""The public functions: they resolve inputs (models, quantizations, machines, engine options)
through the loaders and the engine registry, check them, and delegate to :mod:`qwenfit.core.fit`.
No engine is named here; every engine answers through its contract (:mod:`qwenfit.core.engines.base`).

``context`` is tokens per sequence everywhere (``estimate``, ``check``, ``max_context``, ``plan``, the
CLI, ``--json`` and the calculator); an engine that counts otherwise converts inside its home
(llama.cpp's ``-c`` is ``context × sequences``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qwenfit.core.engines.base import Deployment, Engine, get
from qwenfit.core.engines.base import engines as all_engines
from qwenfit.core.fit.assemble import assemble, deployment
from qwenfit.core.fit.nearest import Alternative, nearest
from qwenfit.core.fit.planner import MIN_CONTEXT, Plan, PlanModel, plan_options
from qwenfit.core.fit.speed import speed_of
from qwenfit.core.formats.names import QUANT_OPTIONS, normalise, why_not
from qwenfit.core.formats.recipes import Recipe
from qwenfit.core.formats.weights import WeightMap, weights_as_stored, weights_from_recipe
from qwenfit.core.hardware import BACKENDS, Machine, Target, target_for
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.search import largest
from qwenfit.core.terms import Estimate
from qwenfit.errors import DoesNotFit, SettingError
from qwenfit.loaders import load

__all__ = [
    "CheckResult",
    "check",
    "check_result",
    "estimate",
    "max_context",
    "max_sequences",
    "plan",
    "plan_model",
    "recipe_from_gguf",
    "weights",
]


# --------------------------------------------------------------------------------------------------
# weights


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


# --------------------------------------------------------------------------------------------------
# resolving one deployment


def _positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SettingError(f"{name} must be a positive integer, got {value!r}")


def _gb(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise SettingError(f"{name} must be positive (a number of GB), got {value!r}")
    return int(value * 1e9)


def _target(
    engine: Engine, hardware: str | Machine | None, vram_gb: Any, ram_gb: Any, wired_limit_mb: int | None
) -> Target:
    vram, ram = _gb("vram_gb", vram_gb), _gb("ram_gb", ram_gb)
    if hardware is None:
        return target_for(
            None,
            vram_bytes=vram,
            ram_bytes=ram,
            unified_default=engine.weights_family == "mlx",
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
class _Prepared:
    """One deployment, resolved: everything an estimate, a search or a check needs."""

    spec: ModelSpec
    engine: Engine
    quant: str
    weights: WeightMap
    inputs: dict[str, Any]
    d: Deployment
    o: Any
    target: Target
    engine_options: dict[str, Any]


def _prepare(
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
) -> _Prepared:
    eng = get(engine)
    target = _target(eng, hardware, vram_gb, ram_gb, wired_limit_mb)
    if backend is not None and backend not in BACKENDS:
        raise SettingError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    spec = load(model)
    if context is None:
        context = spec.text.max_position_embeddings
    _positive("context", context)
    _positive("sequences", sequences)
    if n_gpus is not None and (isinstance(n_gpus, bool) or not isinstance(n_gpus, int) or n_gpus < 0):
        raise SettingError(f"n_gpus must be a non-negative integer, got {n_gpus!r}")
    if sequences > eng.max_sequences:
        raise SettingError(f"sequences={sequences} is beyond {eng.name}'s limit of {eng.max_sequences}")
    quant_options = {k: v for k, v in options.items() if k in QUANT_OPTIONS}
    engine_options = {k: v for k, v in options.items() if k not in QUANT_OPTIONS}
    o = eng.options(engine_options)
    if mtp and not spec.mtp_layers:
        raise SettingError(f"mtp=True but {spec.name} has no MTP layer in its checkpoint")
    if vision is None:
        vision = eng.loads_vision_by_default and spec.vision is not None
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
    quant = quant or eng.default_quant
    name = eng.accepts(quant)
    if name is None:
        runs = {e.weights_family: e.name for e in reversed(all_engines())}
        raise SettingError(f"{eng.name}: " + why_not(quant, eng.weights_family, eng.name, runs))
    try:
        if name.endswith(".gguf"):
            w = eng.weights(spec, recipe_from_gguf(name), mtp=mtp, vision=vision, **quant_options)
        else:
            w = eng.weights(spec, name, mtp=mtp, vision=vision, **quant_options)
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
    return _Prepared(spec, eng, name, w, inputs, d, o, target, engine_options)


def _estimate(p: _Prepared, d: Deployment | None = None) -> Estimate:
    return assemble(p.spec, p.engine, p.quant, p.inputs, d or p.d, p.o, p.target)


def _with_speed(p: _Prepared, e: Estimate) -> Estimate:
    """The estimate with decode/prefill speed when the machine is known (the planner's speed path)."""
    machine = p.target.machine
    placement = p.engine.placement_of(p.d, p.o)
    if machine is None or placement is None:
        return e
    reads = p.engine.decode_reads(p.spec, p.engine.read_inputs(p.spec, p.weights, placement), placement, p.o)
    decode, prefill, detail = speed_of(p.spec, e, machine, p.engine, placement, p.d.backend, reads)
    return dataclasses.replace(
        e, decode_tokens_per_s=decode, prefill_tokens_per_s=prefill, speed_detail=detail
    )


# --------------------------------------------------------------------------------------------------
# the public functions


def estimate(
    model: str | os.PathLike[str] | ModelSpec,
    quant: str | None = None,
    *,
    context: int | None = None,
    engine: str = "llama.cpp",
    kv_cache: str | None = None,
    sequences: int = 1,
    mtp: bool = False,
    vision: bool | None = None,
    backend: str | None = None,
    n_gpus: int | None = None,
    hardware: str | Machine | None = None,
    vram_gb: float | None = None,
    ram_gb: float | None = None,
    wired_limit_mb: int | None = None,
    **options: Any,
) -> Estimate:
    """The memory of running ``model`` on ``engine``: named terms per device, exact or estimated.

    ``context`` is tokens per sequence (default: the model's native 262,144); ``sequences`` run at
    once. ``quant`` defaults to the engine's usual format (Q4_K_M for llama.cpp, bf16 for
    vLLM/SGLang, mlx-4bit for MLX). ``mtp`` turns on speculative decoding with the MTP layer;
    ``vision`` loads the vision tower (default: as the engine does — vLLM and SGLang build it,
    llama.cpp loads the mmproj file only when given one).

    The budget: ``hardware`` (a catalog device such as ``"rtx-4090"``, ``"2x rtx-3090"``,
    ``"m4-max-128"``, or a :class:`~qwenfit.Machine`) or ``vram_gb`` (one GPU's memory, decimal GB)
    and ``ram_gb`` (host RAM). On Apple Silicon the GPU budget is Metal's recommended working set for
    the RAM, or ``wired_limit_mb`` (``iogpu.wired_limit_mb``).

    Every other keyword is an option of the engine, checked by it (an option it does not have is a
    :class:`~qwenfit.SettingError` listing its options) — llama.cpp: ``n_gpu_layers`` (``-ngl``),
    ``n_cpu_moe``, ``tensor_split`` (``-ts``), ``ubatch``, ``batch``, ``flash_attention``,
    ``kv_unified``, ``server``; vLLM: ``tp``, ``pp``, ``dp``, ``expert_parallel``, ``prefix_caching``,
    ``gpu_memory_utilization``; SGLang: ``tp``, ``prefix_caching`` — or of the weights
    (:func:`weights`: ``group_size``, ``mmproj_type``, llama-quantize's options).
    """
    p = _prepare(
        model,
        quant,
        context=context,
        engine=engine,
        kv_cache=kv_cache,
        sequences=sequences,
        mtp=mtp,
        vision=vision,
        backend=backend,
        n_gpus=n_gpus,
        hardware=hardware,
        vram_gb=vram_gb,
        ram_gb=ram_gb,
        wired_limit_mb=wired_limit_mb,
        options=options,
    )
    return _with_speed(p, _estimate(p))


_COMMON = (
    "engine",
    "kv_cache",
    "sequences",
    "mtp",
    "vision",
    "backend",
    "n_gpus",
    "hardware",
    "vram_gb",
    "ram_gb",
    "wired_limit_mb",
)


def _split(kw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    common = {k: kw[k] for k in _COMMON if k in kw}
    common.setdefault("engine", "llama.cpp")
    for k, default in (
        ("kv_cache", None),
        ("sequences", 1),
        ("mtp", False),
        ("vision", None),
        ("backend", None),
        ("n_gpus", None),
        ("hardware", None),
        ("vram_gb", None),
        ("ram_gb", None),
        ("wired_limit_mb", None),
    ):
        common.setdefault(k, default)
    return common, {k: v for k, v in kw.items() if k not in _COMMON and k != "context"}


def _needs_budget(what: str, kw: Mapping[str, Any]) -> None:
    if kw.get("vram_gb") is None and kw.get("ram_gb") is None and kw.get("hardware") is None:
        raise SettingError(f"{what} needs a budget: hardware=, vram_gb= and/or ram_gb=")


def max_context(
    model: str | os.PathLike[str] | ModelSpec,
    quant: str | None = None,
    *,
    limit: int | None = None,
    **kw: Any,
) -> int:
    """The largest context (tokens per sequence) that fits the budget, 0 if not even one step does;
    the same terms as :func:`estimate`, searched in the engine's allocation step (llama.cpp: 256).
    ``limit`` defaults to the model's native context (262,144; YaRN allows up to 1,010,000)."""
    _needs_budget("max_context", kw)
    common, options = _split(kw)
    p = _prepare(model, quant, context=kw.get("context"), options=options, **common)
    step = p.engine.context_step
    hi = limit or p.spec.text.max_position_embeddings
    return largest(lambda c: bool(_estimate(p, dataclasses.replace(p.d, context=c)).fits), step, hi, step)


def max_sequences(model: str | os.PathLike[str] | ModelSpec, quant: str | None = None, **kw: Any) -> int:
    """The most concurrent sequences of ``context`` tokens that fit (0 if one does not)."""
    common, options = _split(kw)
    p = _prepare(model, quant, context=kw.get("context"), options=options, **common)
    return largest(
        lambda n: bool(_estimate(p, dataclasses.replace(p.d, sequences=n)).fits), 1, p.engine.max_sequences
    )


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A pre-flight verdict: the estimate, the machine it was judged on, the command that launches
    it, and when it does not fit the nearest settings that do."""

    estimate: Estimate
    machine: Machine | None
    command: str
    alternatives: tuple[Alternative, ...]

    @property
    def fits(self) -> bool:
        return bool(self.estimate.fits)


def _machine_of(p: _Prepared) -> Machine | None:
    if p.target.machine is not None:
        return p.target.machine
    if p.target.vram_bytes is None and p.target.ram_bytes is None:
        return None
    from qwenfit.loaders.hardware import custom_machine

    vram = None if p.target.vram_bytes is None else p.target.vram_bytes / 1e9
    ram = None if p.target.ram_bytes is None else p.target.ram_bytes / 1e9
    if p.target.unified and vram is not None:
        return custom_machine(
            vram_gb=None,
            ram_gb=ram,
            unified=True,
            vendor="apple",
            name=f"custom Mac, {ram:g} GB unified memory",
        )
    return custom_machine(vram_gb=vram, ram_gb=ram)


def check_result(
    model: str | os.PathLike[str] | ModelSpec,
    quant: str | None = None,
    *,
    context: int | None = None,
    planned: bool = True,
    **kw: Any,
) -> CheckResult:
    """Pre-flight, never raising for a misfit: the estimate, the launch command and, if it does not
    fit, the nearest settings that do (what ``qwenfit check`` prints)."""
    common, options = _split(kw)
    p = _prepare(model, quant, context=context, options=options, **common)
    e = _with_speed(p, _estimate(p))
    if e.fits is None:
        raise SettingError("check needs a budget: hardware=, vram_gb= and/or ram_gb=")
    pm = plan_model(p.spec, model)
    command = p.engine.command(p.engine.artifact(p.spec.name, pm.repo_id, p.quant), p.d, p.o).render()
    alternatives: tuple[Alternative, ...] = ()
    machine = _machine_of(p)
    if not e.fits:
        from qwenfit.loaders.quants import quality_key

        alternatives = nearest(
            pm,
            p.engine,
            p.quant,
            p.inputs,
            p.d,
            p.o,
            p.target,
            machine or Machine(name="?"),
            quality=quality_key,
            user_options=p.engine_options,
            planned=planned and machine is not None,
        )
    return CheckResult(e, machine, command, alternatives)


def check(model: str | os.PathLike[str] | ModelSpec, quant: str | None = None, **kw: Any) -> Estimate:
    """Pre-flight: the estimate if it fits, else :class:`~qwenfit.DoesNotFit` with the shortfall and
    the nearest settings that fit (``alternatives``: less context, fewer sequences, offload, another
    placement, smaller quants — the same list as ``qwenfit check``)."""
    r = check_result(model, quant, **kw)
    try:
        return r.estimate.raise_if_not_fits()
    except DoesNotFit as exc:
        text = str(exc) + (
            "; nearest that fit: " + "; ".join(map(str, r.alternatives)) if r.alternatives else ""
        )
        raise DoesNotFit(
            text, shortfall_bytes=exc.shortfall_bytes, estimate=r.estimate, alternatives=r.alternatives
        ) from None


# --------------------------------------------------------------------------------------------------
# plan


def plan_model(spec: ModelSpec, source: object) -> PlanModel:
    """A catalog model keeps its name as cache key; anything else gets a key unique to the spec."""
    from qwenfit.loaders.catalog import find

    entry = find(spec.name)
    repo = entry.repo_ids[0] if entry and entry.repo_ids else None
    if isinstance(source, str) and find(source) is not None and entry is not None and spec.checkpoint is None:
        return PlanModel(spec, entry.name, repo)
    return PlanModel(spec, f"{spec.name}@{getattr(spec, 'source', '') or source}#{id(spec)}", repo)


def plan(
    model: str | os.PathLike[str] | ModelSpec | Sequence[str | ModelSpec] | None = None,
    *,
    hardware: str | Machine | None = None,
    vram_gb: float | None = None,
    ram_gb: float | None = None,
    n_gpus: int = 1,
    engines: Iterable[str] | None = None,
    quants: Iterable[str] | None = None,
    context: int | None = None,
    sequences: int = 1,
    kv_cache: str | None = None,
    min_context: int = MIN_CONTEXT,
    nodes: int = 1,
    gpu_memory_utilization: float | None = None,
    detect: bool | None = None,
) -> Plan:
    """Ranked options for running ``model`` (or every catalog model) on a machine.

    The machine: ``hardware`` (a catalog device such as ``"rtx-4090"``, ``"2x rtx-3090"``,
    ``"m4-max-128"``, or a :class:`~qwenfit.Machine`), or ``vram_gb`` (one GPU's memory, decimal GB)
    × ``n_gpus`` and ``ram_gb``. With none of them the local machine is detected
    (:func:`qwenfit.loaders.detect.detect`) and the plan says what was found.

    ``context``: tokens per sequence to plan for (default: the most that fits, at least
    ``min_context``, at most the native 262,144). ``nodes``: how many such machines an engine may
    span (vLLM's pipeline parallelism). ``engines`` default: those each engine says suit the machine
    (llama.cpp; vLLM on NVIDIA/AMD GPUs; MLX on Apple Silicon). ``quants`` default: each engine's own
    list. Returns a :class:`Plan`; nothing fitting is an answer, not an exception
    (``plan.raise_if_not_fits()`` raises :class:`~qwenfit.DoesNotFit`).
    """
    from qwenfit.loaders.catalog import find, load_catalog_model, names
    from qwenfit.loaders.quants import quality_key

    notes: list[str] = []
    if hardware is None and vram_gb is None and ram_gb is None and detect is not False:
        from qwenfit.loaders.detect import detect as detect_machine

        hardware = detect_machine()
        notes.append(hardware.name)
        notes.extend(hardware.notes)
    if isinstance(n_gpus, bool) or not isinstance(n_gpus, int) or n_gpus < 1:
        raise SettingError(f"n_gpus must be a positive integer, got {n_gpus!r}")
    machine = _plan_machine(hardware, vram_gb, ram_gb, n_gpus)
    for label, value in (("sequences", sequences), ("min_context", min_context), ("nodes", nodes)):
        _positive(label, value)
    if context is not None:
        _positive("context", context)
    if model is None:
        sources: list[Any] = list(names())
    elif isinstance(model, (list, tuple)):
        sources = list(model)
    else:
        sources = [model]
    models = []
    for m in sources:
        if isinstance(m, str) and find(m) is not None and not os.path.exists(m):
            models.append(plan_model(load_catalog_model(find(m).name), m))  # type: ignore[union-attr]
        else:
            models.append(plan_model(load(m), m))
    engine_list = (
        all_engines(engines)
        if engines is not None
        else tuple(e for e in all_engines() if e.default_on(machine))
    )
    options: dict[str, dict[str, Any]] = {}
    if gpu_memory_utilization is not None:
        for e in engine_list:
            if "gpu_memory_utilization" in e.option_help():
                options[e.name] = {"gpu_memory_utilization": gpu_memory_utilization}
    if kv_cache is not None and engine_list and not any(kv_cache in e.kv_types for e in engine_list):
        valid = "; ".join(f"{e.name}: {', '.join(e.kv_types)}" for e in engine_list)
        raise SettingError(f"KV cache type {kv_cache!r} is not one these engines take ({valid})")
    return plan_options(
        models,
        machine,
        engine_list,
        quants=None if quants is None else list(quants),
        context=context,
        sequences=sequences,
        kv_cache=kv_cache,
        min_context=min_context,
        nodes=nodes,
        quality=quality_key,
        options=options,
        notes=notes,
    )


def _plan_machine(hardware: str | Machine | None, vram_gb: Any, ram_gb: Any, n_gpus: int) -> Machine:
    if hardware is None:
        from qwenfit.loaders.hardware import custom_machine

        return custom_machine(vram_gb=vram_gb, ram_gb=ram_gb, n_gpus=n_gpus)
    if isinstance(hardware, str):
        from qwenfit.loaders.hardware import parse_machine

        if vram_gb is not None:
            raise SettingError("give either hardware or vram_gb, not both (vram_gb describes a custom GPU)")
        return parse_machine(hardware, ram_gb=ram_gb)
    if ram_gb is None:
        return hardware
    return dataclasses.replace(hardware, ram_bytes=_gb("ram_gb", ram_gb))
