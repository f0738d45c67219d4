"""``qwenfit.plan``: the machine, the models and the engines resolved, then the planner
(:mod:`qwenfit.core.fit.planner`)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from qwenfit.api.resolve import gb_bytes, plan_model, positive
from qwenfit.core.engines.base import engines as all_engines
from qwenfit.core.fit.planner import MIN_CONTEXT, Plan, plan_options
from qwenfit.core.fit.speed import DEFAULT_DEPTH
from qwenfit.core.hardware import Machine
from qwenfit.core.model.spec import ModelSpec
from qwenfit.errors import SettingError
from qwenfit.loaders import load

__all__ = ["plan", "plan_machine", "plan_model", "reserve_bytes", "with_reserves"]


def plan(
    model: str | os.PathLike[str] | ModelSpec | Sequence[str | ModelSpec] | None = None,
    *,
    hardware: str | Machine | Sequence[str] | None = None,
    vram_gb: float | None = None,
    ram_gb: float | None = None,
    n_gpus: int = 1,
    engines: Iterable[str] | None = None,
    quants: Iterable[str] | None = None,
    context: int | str | None = None,
    sequences: int = 1,
    kv_cache: str | None = None,
    min_context: int = MIN_CONTEXT,
    nodes: int = 1,
    gpu_memory_utilization: float | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    detect: bool | None = None,
    prefer: str = "quality",
    depth: int = DEFAULT_DEPTH,
    min_speed: float | None = None,
    gpu_only: bool = False,
    vision: bool = False,
    mtp: bool = False,
    ram_reserve_gb: float | None = None,
    gpu_reserve_gb: float | None = None,
    wired_limit_mb: int | None = None,
) -> Plan:
    """Ranked options for running ``model`` (or every catalog model) on a machine.

    The machine: ``hardware`` (a catalog device such as ``"rtx-4090"``, ``"2x rtx-3090"``,
    ``"m4-max-128"``, or a :class:`~qwenfit.Machine`), or ``vram_gb`` (one GPU's memory, decimal GB)
    × ``n_gpus`` and ``ram_gb``. With none of them the local machine is detected
    (:func:`qwenfit.loaders.detect.detect`) and the plan says what was found.

    ``hardware`` may also list GPUs of different kinds (``["rtx-4090", "rtx-3060"]``): each GPU is
    budgeted on its own, and llama.cpp splits the layers by their memory (``-ts``).

    ``context``: tokens per sequence to plan for: by default 32,768 (the output length Qwen's cards
    recommend for most queries), less where only less fits (never under ``min_context``); ``"max"``
    plans the most that fits, up to the native 262,144; a number plans exactly that. Speeds are
    compared with ``depth`` tokens already in the context (4,096). ``prefer``: ``"quality"`` (the
    default), ``"speed"`` or ``"context"`` orders the options; ``min_speed`` (tokens/s) rejects
    slower ones; ``gpu_only`` places nothing in host RAM. An option another one beats on every axis
    (same model and engine, as much context and quality, at least as fast, no more memory) is not
    listed among the options. ``vision`` loads the vision tower (llama.cpp's mmproj file); ``mtp``
    drafts with the MTP layer.

    Memory kept for the system: host RAM is budgeted net of ``ram_reserve_gb`` (default 10 % of RAM,
    4-16 GB; a detected machine: what was in use), each GPU net of ``gpu_reserve_gb`` (default 0: the
    engines keep their own margins — llama.cpp's ``--fit`` 1 GiB, vLLM's 8 %; a detected GPU: what
    was in use, e.g. the desktop's). ``wired_limit_mb``: a Mac's raised ``iogpu.wired_limit_mb``.
    ``nodes``: how many such machines an engine may
    span (vLLM's pipeline parallelism). ``engines`` default: those each engine says suit the machine
    (llama.cpp; vLLM on NVIDIA/AMD GPUs; MLX on Apple Silicon). ``quants`` default: each engine's own
    list. ``options``: each engine's own options by engine name (``{"vllm": {"tp": 2}}``), checked by
    that engine; ``gpu_memory_utilization`` is a shorthand for every engine that has that option.
    Returns a :class:`Plan`; nothing fitting is an answer, not an exception
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
    machine = plan_machine(hardware, vram_gb, ram_gb, n_gpus)
    machine = with_reserves(machine, ram_reserve_gb, gpu_reserve_gb, wired_limit_mb)
    from qwenfit.loaders.calibrated import activate

    activate()  # `qwenfit calibrate` constants, if stored (speed labelled "calibrated")
    if context is not None and context != "max":
        positive("context", context)
    positive("depth", depth)
    if min_speed is not None and (isinstance(min_speed, bool) or not isinstance(min_speed, (int, float))
                                  or not min_speed > 0):  # fmt: skip
        raise SettingError(f"min_speed must be a positive number of tokens/s, got {min_speed!r}")
    for label, value in (("sequences", sequences), ("min_context", min_context), ("nodes", nodes)):
        positive(label, value)
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
    engine_options: dict[str, dict[str, Any]] = {}
    if gpu_memory_utilization is not None:
        for e in engine_list:
            if "gpu_memory_utilization" in e.option_help():
                engine_options[e.name] = {"gpu_memory_utilization": gpu_memory_utilization}
    if options is not None:
        if not isinstance(options, Mapping):
            raise SettingError(f"options must map engine names to their options, got {options!r}")
        planned = {e.name: e for e in engine_list}
        for name, values in options.items():
            if name not in planned:
                raise SettingError(
                    f"options for {name!r}, which this plan does not consider "
                    f"(engines: {', '.join(planned) or 'none'})"
                )
            if not isinstance(values, Mapping):
                raise SettingError(f"options[{name!r}] must map option names to values, got {values!r}")
            merged = {**engine_options.get(name, {}), **values}
            planned[name].options(merged)  # the engine checks its own options (SettingError)
            engine_options[name] = merged
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
        options=engine_options,
        notes=notes,
        vision=vision,
        mtp=mtp,
        prefer=prefer,
        depth=depth,
        min_speed=min_speed,
        gpu_only=gpu_only,
    )


def with_reserves(machine: Machine, ram_reserve_gb: Any, gpu_reserve_gb: Any, wired_limit_mb: Any) -> Machine:
    """``machine`` with the memory kept for the system the caller gave (None: the machine's own, or the
    default rule of :func:`qwenfit.core.hardware.target_for`) and a Mac's wired limit."""
    changes: dict[str, Any] = {}
    if ram_reserve_gb is not None:
        changes["ram_reserve_bytes"] = reserve_bytes("ram_reserve_gb", ram_reserve_gb)
    if gpu_reserve_gb is not None:
        changes["gpu_reserve_bytes"] = (reserve_bytes("gpu_reserve_gb", gpu_reserve_gb),) * machine.n_devices
    if wired_limit_mb is not None:
        changes["wired_limit_mb"] = wired_limit_mb
    return dataclasses.replace(machine, **changes) if changes else machine


def reserve_bytes(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise SettingError(f"{name} must be a number of GB, 0 or more, got {value!r}")
    return int(value * 1e9)


def plan_machine(
    hardware: str | Machine | Sequence[str] | None, vram_gb: Any, ram_gb: Any, n_gpus: int
) -> Machine:
    if isinstance(hardware, (list, tuple)):
        from qwenfit.loaders.hardware import mixed_machine

        if vram_gb is not None:
            raise SettingError("give either hardware or vram_gb, not both (vram_gb describes a custom GPU)")
        return mixed_machine(list(hardware), ram_gb=ram_gb)
    if hardware is None:
        from qwenfit.loaders.hardware import custom_machine

        return custom_machine(vram_gb=vram_gb, ram_gb=ram_gb, n_gpus=n_gpus)
    if isinstance(hardware, str):
        from qwenfit.loaders.hardware import parse_machine

        if vram_gb is not None:
            raise SettingError("give either hardware or vram_gb, not both (vram_gb describes a custom GPU)")
        return parse_machine(hardware, ram_gb=ram_gb)
    if not isinstance(hardware, Machine):
        raise SettingError(f"hardware must be a catalog name, a list of them or a Machine, got {hardware!r}")
    if ram_gb is None:
        return hardware
    return dataclasses.replace(hardware, ram_bytes=gb_bytes("ram_gb", ram_gb))
