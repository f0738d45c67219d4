"""The one estimate assembly: an engine's terms, judged against a budget.

``qwenfit.estimate()``, ``plan()``, ``check()``, the nearest-fit search and the CLI all build their
:class:`~qwenfit.core.terms.Estimate` here, from the same three steps: the engine's inputs (weight
sums, hardware facts), its terms, its budget rule. The calculator export traces the same engine
methods (:mod:`qwenfit.core.fit.formulas`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from qwenfit.core.engines.base import Deployment, Engine
from qwenfit.core.expr import as_int
from qwenfit.core.hardware import Target
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import Estimate
from qwenfit.errors import SettingError

__all__ = ["assemble", "deployment", "mixed_split"]


def deployment(
    engine: Engine,
    target: Target,
    *,
    context: int,
    sequences: int = 1,
    kv_cache: str | None = None,
    mtp: bool = False,
    vision: bool = False,
    backend: str | None = None,
    n_gpus: int | None = None,
) -> Deployment:
    """The :class:`Deployment` of ``engine`` on ``target``: the backend defaults to the device's
    (Metal for MLX, else CUDA), the GPUs to the target's (none on the CPU backend)."""
    if backend is None:
        backend = target.backend or engine.default_backend
    gpus = target.n_gpus if n_gpus is None else n_gpus
    if backend == "cpu":
        gpus = 0
    n = max(gpus, 1) if backend != "cpu" else 1
    return Deployment(
        context=context,
        sequences=sequences,
        kv_cache=kv_cache,
        mtp=mtp,
        vision=vision,
        backend=backend,
        n_gpus=n,
        gpu_memory_bytes=target.vram_bytes,
        gpu_name=target.gpu_name,
        gpu_sm=target.gpu_sm,
        gpu_shares=target.gpu_bytes[:n] if len(target.gpu_bytes) >= n > 1 and backend != "cpu" else None,
    )


def mixed_split(engine: Engine, target: Target, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with, on GPUs of different sizes, each GPU's share of the layers in proportion to its
    usable memory (llama.cpp's own default split is by free memory: ``-ts`` written out so the command
    does what was planned), unless the caller split them or the engine has no such option."""
    out = dict(options)
    if target.gpu_bytes and "tensor_split" in engine.option_help() and out.get("tensor_split") is None:
        out["tensor_split"] = tuple(round(b / 1e9, 2) for b in target.gpu_bytes)
    return out


def assemble(
    spec: ModelSpec,
    engine: Engine,
    quant: str,
    inputs: Mapping[str, Any],
    d: Deployment,
    o: Any,
    target: Target,
) -> Estimate:
    """The estimate of ``engine`` running ``spec`` with ``inputs`` (:meth:`Engine.inputs`), judged
    against ``target`` (on the CPU backend the GPU budget is not used)."""
    try:
        terms = engine.terms(spec, inputs, d, o)
    except ValueError as exc:
        if isinstance(exc, SettingError):
            raise
        raise SettingError(f"{engine.name}: {exc}") from None
    devices = sorted({t.device for t in terms})
    cpu = d.backend == "cpu"
    budget_n = engine.budget(
        devices,
        vram=None if cpu else target.vram_bytes,
        ram=target.ram_bytes,
        unified=target.unified,
        o=o,
        inputs=inputs,
    )
    if d.gpu_shares and not cpu:  # GPUs of different sizes: each its own budget (devices gpu0, gpu1, ...)
        for dev in budget_n:
            index = dev.removeprefix("gpu")
            if dev.startswith("gpu") and index.isdigit() and int(index) < len(d.gpu_shares):
                budget_n[dev] = engine.gpu_cap(d.gpu_shares[int(index)], o, inputs)
    budget = {dev: as_int(b) for dev, b in budget_n.items()} or None
    notes: tuple[str, ...] = target.notes
    if cpu and target.vram_bytes is not None:
        notes += ("backend cpu: the GPU memory is not used",)
    settings = {**d.settings(), **{f.name: getattr(o, f.name) for f in dataclasses.fields(o)}}
    e = Estimate(
        model=spec.name, quant=quant, engine=engine.name, settings=settings, terms=tuple(terms), budget=budget
    )
    notes += engine.notes(spec, inputs, d, o, terms, budget)
    return dataclasses.replace(e, notes=notes) if notes else e
