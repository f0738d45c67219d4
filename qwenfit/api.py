"""estimate(), max_context(), max_sequences(), check(): runtime memory of one deployment.

``estimate`` weighs the model under the quantization (``qwenfit.weights``), asks the engine profile
for its terms (:mod:`qwenfit.core.engines.profiles`) and judges them against a budget when one is given.
The solvers search the same ``estimate`` (memory never decreases with context or sequences), so the
answer fits and one more step does not.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from qwenfit.core.engines.profiles import BACKENDS, ENGINES, Settings, engine_budget, engine_terms
from qwenfit.core.engines.vllm.pool import DEFAULT_GPU_MEMORY_UTILIZATION
from qwenfit.core.expr import as_int
from qwenfit.core.formats.gguf import FILE_TYPES
from qwenfit.core.hardware import Machine
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import DoesNotFit, Estimate
from qwenfit.errors import QwenfitError

__all__ = ["check", "estimate", "max_context", "max_sequences", "nearest_fits"]

DEFAULT_QUANT = {"llama.cpp": "Q4_K_M", "ollama": "Q4_K_M", "lm-studio": "Q4_K_M", "vllm": "bf16",
                 "sglang": "bf16", "mlx": "mlx-4bit", "transformers": "bf16"}  # fmt: skip
MAX_SEQUENCES = {"llama.cpp": 256, "ollama": 256, "lm-studio": 256, "vllm": 4096, "sglang": 4096,
                 "mlx": 1024, "transformers": 1024}  # fmt: skip


class SettingError(QwenfitError, ValueError):
    """An impossible setting: names the setting and the valid choices."""


@dataclass(frozen=True, slots=True)
class Target:
    """The memory an estimate is judged against, resolved from ``hardware`` / ``vram_gb`` / ``ram_gb``."""

    vram_bytes: int | None  # one GPU's usable memory (unified: the GPU's share, e.g. Metal's working set)
    n_gpus: int
    ram_bytes: int | None
    unified: bool
    backend: str | None  # the device's first backend, when known
    gpu_name: str
    notes: tuple[str, ...]
    machine: Machine | None = None


def resolve_target(
    hardware: str | Machine | None,
    vram_gb: float | None,
    ram_gb: float | None,
    *,
    engine: str,
    wired_limit_mb: int | None = None,
) -> Target:
    """Budgets from a hardware profile (catalog name, "2x rtx-3090", a :class:`Machine`) or numbers."""
    for name, value in (("vram_gb", vram_gb), ("ram_gb", ram_gb)):
        bad = isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
        if value is not None and bad:
            raise SettingError(f"{name} must be positive (a number of GB), got {value!r}")
    ram = None if ram_gb is None else int(ram_gb * 1e9)
    notes: list[str] = []
    if hardware is None:
        vram = None if vram_gb is None else int(vram_gb * 1e9)
        unified = engine == "mlx"
        if unified and ram is not None and vram is None:
            vram, exact = _apple_budget(ram, wired_limit_mb)
            notes.append(_apple_note(vram, ram, exact))
        return Target(vram, 1, ram, unified and vram is not None and ram is not None, None, "", tuple(notes))
    if vram_gb is not None:
        raise SettingError("give either hardware or vram_gb, not both (vram_gb describes a custom GPU)")
    if isinstance(hardware, str):
        from qwenfit.loaders.hardware import parse_machine

        machine = parse_machine(hardware, ram_gb=ram_gb)
    else:
        machine = hardware
    if not machine.devices:
        cpu_ram = machine.ram_bytes if ram is None else ram
        return Target(None, 0, cpu_ram, False, "cpu", "", machine.notes, machine)
    dev = machine.devices[0]
    if any(d.id != dev.id for d in machine.devices):
        notes.append("mixed GPUs: each is budgeted with the smallest one's memory")
    vram = min(d.memory_bytes for d in machine.devices)
    if dev.unified:
        total = dev.memory_bytes if ram is None else ram
        if dev.vendor == "apple":
            vram, exact = _apple_budget(total, wired_limit_mb)
            notes.append(_apple_note(vram, total, exact))
        else:
            vram = total
            notes.append(f"unified memory: GPU and CPU share {total / 1e9:g} GB")
        ram = total
    elif ram is None:
        ram = machine.ram_bytes
    backend = dev.backends[0] if dev.backends else None
    notes = [*machine.notes, *notes]
    return Target(vram, len(machine.devices), ram, dev.unified, backend, dev.name, tuple(notes), machine)


def _apple_note(gpu_bytes: int, ram_bytes: int, exact: bool) -> str:
    how = "(iogpu.wired_limit_mb)" if exact else "(Metal's recommended working set, estimated)"
    return f"unified memory: the GPU may use {gpu_bytes / 1e9:.2f} GB of {ram_bytes / 1e9:g} GB {how}"


def _gpu_sm(target: Target) -> str | None:
    """The GPU's compute capability, when the hardware profile says it."""
    return target.machine.devices[0].compute_capability if target.machine and target.machine.devices else None


def _apple_budget(ram_bytes: int, wired_limit_mb: int | None) -> tuple[int, bool]:
    from qwenfit.core.apple import working_set_bytes

    try:
        return working_set_bytes(ram_bytes, wired_limit_mb=wired_limit_mb)
    except ValueError as exc:
        raise SettingError(str(exc)) from None


def _utilization_bp(value: float | None) -> int:
    if value is None:
        return round(DEFAULT_GPU_MEMORY_UTILIZATION * 10000)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise SettingError(f"gpu_memory_utilization must be in (0, 1], got {value!r}")
    return round(value * 10000)


def estimate(
    model: str | os.PathLike[str] | ModelSpec,
    quant: str | None = None,
    *,
    context: int | None = None,
    engine: str = "llama.cpp",
    kv_cache: str | None = None,
    sequences: int = 1,
    ubatch: int = 512,
    batch: int = 2048,
    mtp: bool = False,
    vision: bool | None = None,
    backend: str | None = None,
    tp: int = 1,
    pp: int = 1,
    dp: int = 1,
    expert_parallel: bool = False,
    n_gpus: int | None = None,
    n_gpu_layers: int | None = None,
    n_cpu_moe: int = 0,
    tensor_split: tuple[float, ...] | None = None,
    flash_attention: bool = True,
    kv_unified: bool = False,
    prefix_caching: bool = True,
    vram_gb: float | None = None,
    ram_gb: float | None = None,
    gpu_memory_utilization: float | None = None,
    wired_limit_mb: int | None = None,
    hardware: str | Machine | None = None,
    **quant_options: Any,
) -> Estimate:
    """The memory of running ``model`` on ``engine``: named terms per device, exact or estimated.

    ``quant`` defaults to the engine's usual format (Q4_K_M for llama.cpp, bf16 for vLLM/SGLang,
    mlx-4bit for MLX). ``context`` defaults to the model's native 262,144 tokens.

    The budget: ``hardware`` (a catalog device such as ``"rtx-4090"``, ``"2x rtx-3090"``,
    ``"m4-max-128"``, or a :class:`~qwenfit.core.hardware.Machine`) or ``vram_gb`` (one GPU's memory,
    decimal GB) and ``ram_gb`` (host RAM). For vLLM each GPU is judged at ``gpu_memory_utilization``
    (default 0.92). On Apple Silicon (``engine="mlx"`` or a Mac profile) the GPU budget is Metal's
    recommended working set for the RAM, or ``wired_limit_mb`` (``iogpu.wired_limit_mb``).

    llama.cpp placement: ``n_gpus`` (default: the profile's GPU count, else 1), ``n_gpu_layers``
    (``-ngl``; None = all), ``n_cpu_moe`` (``--n-cpu-moe``: routed experts of the first N layers stay
    in host RAM), ``tensor_split`` (``-ts``). vLLM: ``tp``, ``pp``, ``dp``, ``expert_parallel``.
    ``mtp`` turns on speculative decoding with the MTP layer; ``vision`` loads the vision tower
    (default: as the engine does — vLLM and SGLang build it unless told ``--language-model-only``,
    llama.cpp loads the mmproj file only when given one).
    """
    import qwenfit

    if engine not in ENGINES:
        raise SettingError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    target = resolve_target(hardware, vram_gb, ram_gb, engine=engine, wired_limit_mb=wired_limit_mb)
    if backend is None:
        backend = target.backend or ("metal" if engine == "mlx" else "cuda")
    if backend not in BACKENDS:
        raise SettingError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    spec = qwenfit.load(model)
    if context is None:
        context = spec.text.max_position_embeddings
    gpus = target.n_gpus if n_gpus is None else n_gpus
    if backend == "cpu":
        gpus = 0
    for name, value in (("context", context), ("sequences", sequences), ("ubatch", ubatch), ("batch", batch),
                        ("tp", tp), ("pp", pp), ("dp", dp)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SettingError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise SettingError(f"n_gpus must be a non-negative integer, got {gpus!r}")
    if sequences > MAX_SEQUENCES[engine]:
        raise SettingError(f"sequences={sequences} is beyond {engine}'s limit of {MAX_SEQUENCES[engine]}")
    if tp > 1 and engine not in ("vllm", "sglang"):
        raise SettingError(f"tp={tp}: tensor parallelism is for vllm and sglang; {engine} splits layers")
    if (pp > 1 or dp > 1 or expert_parallel) and engine != "vllm":
        raise SettingError("pp, dp and expert_parallel are modelled for vllm only")
    gguf_engine = engine in ("llama.cpp", "ollama", "lm-studio")
    if not gguf_engine and (n_gpu_layers is not None or n_cpu_moe or tensor_split):
        raise SettingError(f"n_gpu_layers, n_cpu_moe and tensor_split are llama.cpp placements, not {engine}")
    if not gguf_engine and target.n_gpus > 1 and tp * pp * dp != target.n_gpus and n_gpus is None:
        used = f"{engine} uses tp x pp x dp = {tp * pp * dp} of the {target.n_gpus} GPUs"
        target = dataclasses.replace(target, notes=(*target.notes, used))
    if pp > spec.text.num_hidden_layers:
        raise SettingError(
            f"pp={pp} is more pipeline stages than {spec.name}'s {spec.text.num_hidden_layers} layers"
        )
    if expert_parallel and not spec.is_moe:
        raise SettingError(f"expert_parallel: {spec.name} is a dense model")
    if n_cpu_moe and not spec.is_moe:
        raise SettingError(f"n_cpu_moe={n_cpu_moe}: {spec.name} is a dense model (use n_gpu_layers)")
    if mtp and not spec.mtp_layers:
        raise SettingError(f"mtp=True but {spec.name} has no MTP layer in its checkpoint")
    quant = quant or DEFAULT_QUANT[engine]
    if vision is None:
        vision = engine in ("vllm", "sglang") and spec.vision is not None
    if gguf_engine:
        if quant.strip().upper() not in FILE_TYPES and not quant.endswith(".gguf"):
            raise SettingError(f"{engine} runs GGUF files: quant {quant!r} is not a llama.cpp file type "
                               f"({', '.join(FILE_TYPES)}) or a .gguf to copy")  # fmt: skip
        w = qwenfit.weights(spec, quant, vision=vision or None, **quant_options)
    else:
        from qwenfit.core.formats.gpu import FORMATS, gpu_weights  # GPU formats: only off the GGUF path

        if quant.strip().lower() not in FORMATS:
            raise SettingError(f"{engine} loads safetensors checkpoints: quant {quant!r} is not one of "
                               f"{', '.join(FORMATS)}")  # fmt: skip
        w = gpu_weights(spec, quant.strip().lower(), mtp=mtp, vision=vision, **quant_options)
    settings = Settings(
        context=context, sequences=sequences, kv_cache=kv_cache, ubatch=ubatch, batch=batch,
        flash_attention=flash_attention, mtp=mtp, vision=vision, backend=backend, kv_unified=kv_unified,
        tp=tp, pp=pp, dp=dp, expert_parallel=expert_parallel, prefix_caching=prefix_caching,
        gpu_memory_bytes=target.vram_bytes, gpu_name=target.gpu_name,
        gpu_sm=_gpu_sm(target),
        n_gpus=max(gpus, 1) if backend != "cpu" else 1, n_gpu_layers=n_gpu_layers, n_cpu_moe=n_cpu_moe,
        tensor_split=tensor_split,
    )  # fmt: skip
    try:
        terms = engine_terms(engine, spec, w, settings)
    except ValueError as exc:
        raise SettingError(f"{engine}: {exc}") from None
    devices = sorted({t.device for t in terms})
    budget_n = engine_budget(
        engine, devices, vram=target.vram_bytes if backend != "cpu" else None, ram=target.ram_bytes,
        unified=target.unified, gpu_memory_utilization_bp=_utilization_bp(gpu_memory_utilization),
    )  # fmt: skip
    budget = {d: as_int(b) for d, b in budget_n.items()} or None
    notes: tuple[str, ...] = target.notes
    if backend == "cpu" and target.vram_bytes is not None:
        notes += ("backend cpu: the GPU memory is not used",)
    if engine == "vllm" and budget is not None and "gpu" in budget:
        from qwenfit.core.engines.profiles import vllm_fullest_stage

        _, plan, _ = vllm_fullest_stage(spec, w, settings)
        pool = budget["gpu"] - sum(
            as_int(t.bytes) for t in terms if t.device == "gpu" and t.name != "kv_cache"
        )
        message = plan.cannot_serve_message(pool, context)
        if message:
            notes += (f"vLLM would refuse to start: ValueError: {message}",)
        else:
            notes += (f"vLLM would give the KV pool the rest of the budget: maximum concurrency for "
                      f"{context:,} tokens per request: {plan.max_concurrency(pool):.2f}x",)  # fmt: skip
    result = Estimate(
        model=spec.name,
        quant=quant,
        engine=engine,
        settings={k: getattr(settings, k) for k in Settings.__dataclass_fields__},
        terms=tuple(terms),
        budget=budget,
        notes=notes,
    )
    if target.machine is not None and pp == 1:
        from qwenfit.core.engines.llama_cpp.layout import Placement, read_inputs, speed_of

        kind = "cpu" if backend == "cpu" else "gpu"
        p = Placement(kind, n_gpus=0 if kind == "cpu" else max(gpus, 1), n_cpu_moe=n_cpu_moe,
                      n_gpu_layers=n_gpu_layers, tp=tp)  # fmt: skip
        decode, prefill, detail = speed_of(spec, result, target.machine, engine, p, backend,
                                           read_inputs(spec, w, engine, p))  # fmt: skip
        result = dataclasses.replace(result, decode_tokens_per_s=decode, prefill_tokens_per_s=prefill,
                                     speed_detail=detail)  # fmt: skip
    return result


def _search(fits: Any, lo: int, hi: int, step: int) -> int:
    """Largest multiple of ``step`` in [lo, hi] with fits(x) True (fits monotone), or 0."""
    if not fits(lo):
        return 0
    best, a, b = lo, lo // step, hi // step
    while a <= b:
        mid = (a + b) // 2
        if mid * step >= lo and fits(mid * step):
            best, a = mid * step, mid + 1
        else:
            b = mid - 1
    return best


def max_context(model: str | os.PathLike[str] | ModelSpec, quant: str | None = None, *,
                limit: int | None = None, **kw: Any) -> int:  # fmt: skip
    """The largest context that fits the budget (0 if even 256 tokens do not), same terms as
    :func:`estimate`. Searched in llama.cpp's 256-token cells for GGUF engines, per token otherwise.
    ``limit`` defaults to the model's native context (262,144; 1,010,000 with YaRN). As in
    :func:`estimate`, ``context`` is the engine's whole context (llama.cpp's ``-c``: all sequences
    together); :func:`qwenfit.plan` speaks of tokens per sequence."""
    import qwenfit

    spec = qwenfit.load(model)
    if kw.get("vram_gb") is None and kw.get("ram_gb") is None and kw.get("hardware") is None:
        raise SettingError("max_context needs a budget: hardware=, vram_gb= and/or ram_gb=")
    step = 256 if kw.get("engine", "llama.cpp") in ("llama.cpp", "ollama", "lm-studio") else 1
    hi = limit or spec.text.max_position_embeddings

    def fits(ctx: int) -> bool:
        return bool(estimate(spec, quant, context=ctx, **kw).fits)

    return _search(fits, step, hi, step)


def max_sequences(model: str | os.PathLike[str] | ModelSpec, quant: str | None = None, **kw: Any) -> int:
    """The most concurrent sequences that fit at ``context`` (0 if one does not)."""
    import qwenfit

    spec = qwenfit.load(model)
    engine = kw.get("engine", "llama.cpp")

    def fits(n: int) -> bool:
        return bool(estimate(spec, quant, sequences=n, **kw).fits)

    return _search(fits, 1, MAX_SEQUENCES[engine], 1)


def check(model: str | os.PathLike[str] | ModelSpec, quant: str | None = None, **kw: Any) -> Estimate:
    """Pre-flight: the estimate if it fits, else :class:`DoesNotFit` with the shortfall and the
    nearest settings that fit (``alternatives``: less context, expert offload, smaller quants)."""
    result = estimate(model, quant, **kw)
    if result.fits is None:
        raise SettingError("check needs a budget: hardware=, vram_gb= and/or ram_gb=")
    try:
        return result.raise_if_not_fits()
    except DoesNotFit as exc:
        alternatives = nearest_fits(model, result, kw)
        text = str(exc) + ("; nearest that fit: " + "; ".join(alternatives) if alternatives else "")
        raise DoesNotFit(text, shortfall_bytes=exc.shortfall_bytes, estimate=result,
                         alternatives=alternatives) from None  # fmt: skip


def nearest_fits(
    model: str | os.PathLike[str] | ModelSpec, failed: Estimate, kw: dict[str, Any]
) -> tuple[str, ...]:
    """Settings near ``failed`` that fit the same budget: the longest context, the least expert
    offload (llama.cpp, MoE, host RAM known) and the best smaller quantizations (the planner's)."""
    import qwenfit

    spec = qwenfit.load(model)
    engine = failed.engine
    gguf = engine in ("llama.cpp", "ollama", "lm-studio")
    context = int(failed.settings["context"])
    out: list[str] = []
    base = {k: v for k, v in kw.items() if k != "context"}
    try:
        best = max_context(spec, failed.quant, limit=context, **base)
        if best:
            out.append(f"context {best:,} instead of {context:,}")
        if gguf and spec.is_moe and failed.budget and "cpu" in failed.budget:
            now = int(kw.get("n_cpu_moe", 0))

            def offload_fits(n: int) -> bool:
                return bool(estimate(spec, failed.quant, **{**kw, "n_cpu_moe": n}).fits)

            n_layers = spec.text.num_hidden_layers
            if now < n_layers and offload_fits(n_layers):
                lo, hi = now + 1, n_layers
                while lo < hi:
                    mid = (lo + hi) // 2
                    lo, hi = (lo, mid) if offload_fits(mid) else (mid + 1, hi)
                out.append(f"n_cpu_moe={lo} (routed experts of the first {lo} layers in host RAM)")
        from qwenfit.loaders.quants import quality_key
        from qwenfit.planner import DEFAULT_QUANTS, plan

        pool = DEFAULT_QUANTS["gguf" if gguf else engine] if (gguf or engine in DEFAULT_QUANTS) else ()
        mine = quality_key(failed.quant)
        smaller = [q for q in pool if quality_key(q) > mine]
        hardware = kw.get("hardware")
        if smaller and (hardware is not None or kw.get("vram_gb") is not None):
            seqs = int(failed.settings["sequences"])
            per_seq = context // seqs if gguf else context
            p = plan(spec, hardware=hardware, vram_gb=kw.get("vram_gb"), ram_gb=kw.get("ram_gb"),
                     engines=[engine], quants=smaller, context=per_seq, sequences=seqs,
                     detect=False)  # fmt: skip
            for o in p.options[:3]:
                out.append(f"quant {o.quant} ({o.placement})")
    except QwenfitError:
        pass  # alternatives are a courtesy: never hide the original verdict
    return tuple(out)
