"""The memory of one deployment: ``estimate``, ``max_context``, ``max_sequences``, and the pre-flight
``check`` / ``check_result`` with the nearest settings that fit."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qwenfit.api.planning import plan_model
from qwenfit.api.resolve import Prepared, evaluate, prepare, with_speed
from qwenfit.core.engines.base import Artifact
from qwenfit.core.hardware import Machine
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.search import largest
from qwenfit.core.terms import Estimate
from qwenfit.errors import DoesNotFit, SettingError

if TYPE_CHECKING:
    from qwenfit.core.fit.nearest import Alternative

__all__ = ["CheckResult", "check", "check_result", "estimate", "max_context", "max_sequences"]


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
    artifact: str | None = None,
    **options: Any,
) -> Estimate:
    """The memory of running ``model`` on ``engine``: named terms per device, exact or estimated.

    ``context`` is tokens per sequence (default: the model's native 262,144); ``sequences`` run at
    once. ``quant`` defaults to the engine's usual format (Q4_K_M for llama.cpp, bf16 for
    vLLM/SGLang, mlx-4bit for MLX). ``mtp`` turns on speculative decoding with the MTP layer;
    ``vision`` loads the vision tower (default: text only, as :func:`plan` plans and the printed
    command runs — vLLM with ``--language-model-only``, llama.cpp without an mmproj file; SGLang loads
    it whatever is asked, so its estimate always holds it).

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

    The weights are those of what the launch command loads: a published file of ``quant`` where one
    is catalogued (its own size: unsloth's Q4_K_M is not llama-quantize's stock mix), the user's own
    file as it is (``model`` a GGUF path: ``quant`` then defaults to, and must match, its type), else
    the file qwenfit's recipe makes. ``artifact="recipe"`` asks for that recipe's file even when a
    published one exists (llama-quantize's stock types, the format's recipe).
    """
    p = prepare(
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
        artifact=artifact,
    )
    return with_speed(p, evaluate(p))


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
    "artifact",
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
        ("artifact", None),
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
    p = prepare(model, quant, context=kw.get("context"), options=options, **common)
    step = p.engine.context_step
    hi = limit or p.spec.text.max_position_embeddings
    return largest(lambda c: bool(evaluate(p, dataclasses.replace(p.d, context=c)).fits), step, hi, step)


def max_sequences(model: str | os.PathLike[str] | ModelSpec, quant: str | None = None, **kw: Any) -> int:
    """The most concurrent sequences of ``context`` tokens that fit (0 if one does not)."""
    common, options = _split(kw)
    p = prepare(model, quant, context=kw.get("context"), options=options, **common)
    return largest(
        lambda n: bool(evaluate(p, dataclasses.replace(p.d, sequences=n)).fits), 1, p.engine.max_sequences
    )


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A pre-flight verdict: the estimate, the machine it was judged on, the command that launches
    it, and when it does not fit the nearest settings that do."""

    estimate: Estimate
    machine: Machine | None
    command: str
    alternatives: tuple[Alternative, ...]
    artifact: Artifact | None = None  # what the command loads

    @property
    def fits(self) -> bool:
        return bool(self.estimate.fits)


def machine_of(p: Prepared) -> Machine | None:
    if p.target.machine is not None:
        return p.target.machine
    if p.target.vram_bytes is None and p.target.ram_bytes is None:
        return None
    from qwenfit.loaders.hardware import custom_mac, custom_machine

    vram = None if p.target.vram_bytes is None else p.target.vram_bytes / 1e9
    ram = None if p.target.ram_bytes is None else p.target.ram_bytes / 1e9
    if p.target.unified and vram is not None and ram is not None:
        return custom_mac(ram)
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
    p = prepare(model, quant, context=context, options=options, precompiled=True, **common)
    e = with_speed(p, evaluate(p))
    if e.fits is None:
        raise SettingError("check needs a budget: hardware=, vram_gb= and/or ram_gb=")
    pm = plan_model(p.spec, model, p.source)
    command = p.engine.command(p.artifact, p.d, p.o).render()
    alternatives: tuple[Alternative, ...] = ()
    machine = machine_of(p)
    if not e.fits:
        from qwenfit.core.fit.nearest import nearest  # the alternative search: only for a misfit
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
    return CheckResult(e, machine, command, alternatives, p.artifact)


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
