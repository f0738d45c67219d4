"""estimate(), max_context(), max_sequences(), check(): runtime memory of one deployment.

``estimate`` weighs the model under the quantization (``qwenfit.weights``), asks the engine profile
for its terms (:mod:`qwenfit.core.engines`) and judges them against a budget when one is given.
The solvers search the same ``estimate`` (memory never decreases with context or sequences), so the
answer fits and one more step does not.
"""

from __future__ import annotations

import os
from typing import Any

from qwenfit.core.engines import ENGINES, Settings, engine_terms
from qwenfit.core.gpu_quant import FORMATS, gpu_weights
from qwenfit.core.llama_quant import FILE_TYPES
from qwenfit.core.spec import ModelSpec
from qwenfit.core.terms import Estimate
from qwenfit.core.vllm import DEFAULT_GPU_MEMORY_UTILIZATION
from qwenfit.errors import QwenfitError

__all__ = ["check", "estimate", "max_context", "max_sequences"]

DEFAULT_QUANT = {"llama.cpp": "Q4_K_M", "ollama": "Q4_K_M", "lm-studio": "Q4_K_M", "vllm": "bf16",
                 "sglang": "bf16", "mlx": "mlx-4bit", "transformers": "bf16"}  # fmt: skip
MAX_SEQUENCES = {"llama.cpp": 256, "ollama": 256, "lm-studio": 256, "vllm": 4096, "sglang": 4096,
                 "mlx": 1024, "transformers": 1024}  # fmt: skip


class SettingError(QwenfitError, ValueError):
    """An impossible setting: names the setting and the valid choices."""


def _budget(engine: str, vram_gb: float | None, ram_gb: float | None, backend: str,
            gpu_memory_utilization: float | None) -> dict[str, int] | None:  # fmt: skip
    budget: dict[str, int] = {}
    if vram_gb is not None:
        if vram_gb <= 0:
            raise SettingError(f"vram_gb must be positive, got {vram_gb}")
        gpu = int(vram_gb * 1e9)
        if engine == "vllm":
            gpu = int(gpu * (gpu_memory_utilization or DEFAULT_GPU_MEMORY_UTILIZATION))
        budget["cpu" if backend == "cpu" else "gpu"] = gpu
    if ram_gb is not None:
        if ram_gb <= 0:
            raise SettingError(f"ram_gb must be positive, got {ram_gb}")
        budget["cpu"] = budget.get("cpu", 0) + int(ram_gb * 1e9) if backend == "cpu" else int(ram_gb * 1e9)
    return budget or None


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
    vision: bool = False,
    backend: str = "cuda",
    tp: int = 1,
    pp: int = 1,
    dp: int = 1,
    expert_parallel: bool = False,
    flash_attention: bool = True,
    kv_unified: bool = False,
    prefix_caching: bool = True,
    vram_gb: float | None = None,
    ram_gb: float | None = None,
    gpu_memory_utilization: float | None = None,
    wired_limit_mb: int | None = None,
    hardware: str | None = None,
    **quant_options: Any,
) -> Estimate:
    """The memory of running ``model`` on ``engine``: named terms per device, exact or estimated.

    ``quant`` defaults to the engine's usual format (Q4_K_M for llama.cpp, bf16 for vLLM/SGLang,
    mlx-4bit for MLX). ``context`` defaults to the model's native 262,144 tokens. ``vram_gb`` /
    ``ram_gb`` (decimal GB) give the budget; for vLLM the GPU budget is scaled by
    ``gpu_memory_utilization`` (default 0.92). ``mtp`` turns on speculative decoding with the MTP
    layer; ``vision`` loads the vision tower. On Apple Silicon (``engine="mlx"`` or
    ``backend="metal"``) give ``ram_gb``: the GPU budget is Metal's recommended working set for that
    RAM, or ``wired_limit_mb`` when the user raised ``iogpu.wired_limit_mb``.
    """
    import qwenfit

    if engine not in ENGINES:
        raise SettingError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    if hardware is not None:
        raise SettingError("hardware profiles come with the hardware catalog; pass vram_gb / ram_gb")
    spec = qwenfit.load(model)
    if context is None:
        context = spec.text.max_position_embeddings
    for name, value in (("context", context), ("sequences", sequences), ("ubatch", ubatch), ("batch", batch),
                        ("tp", tp), ("pp", pp), ("dp", dp)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SettingError(f"{name} must be a positive integer, got {value!r}")
    if sequences > MAX_SEQUENCES[engine]:
        raise SettingError(f"sequences={sequences} is beyond {engine}'s limit of {MAX_SEQUENCES[engine]}")
    if tp > 1 and engine not in ("vllm", "sglang"):
        raise SettingError(f"tp={tp}: tensor parallelism is for vllm and sglang; {engine} splits layers")
    if (pp > 1 or dp > 1 or expert_parallel) and engine != "vllm":
        raise SettingError("pp, dp and expert_parallel are modelled for vllm only")
    if pp > spec.text.num_hidden_layers:
        raise SettingError(
            f"pp={pp} is more pipeline stages than {spec.name}'s {spec.text.num_hidden_layers} layers"
        )
    if expert_parallel and not spec.is_moe:
        raise SettingError(f"expert_parallel: {spec.name} is a dense model")
    if mtp and not spec.mtp_layers:
        raise SettingError(f"mtp=True but {spec.name} has no MTP layer in its checkpoint")
    quant = quant or DEFAULT_QUANT[engine]
    gguf_engine = engine in ("llama.cpp", "ollama", "lm-studio")
    if gguf_engine:
        if quant.strip().upper() not in FILE_TYPES and not quant.endswith(".gguf"):
            raise SettingError(f"{engine} runs GGUF files: quant {quant!r} is not a llama.cpp file type "
                               f"({', '.join(FILE_TYPES)}) or a .gguf to copy")  # fmt: skip
        w = qwenfit.weights(spec, quant, vision=vision or None, **quant_options)
    else:
        if quant.strip().lower() not in FORMATS:
            raise SettingError(f"{engine} loads safetensors checkpoints: quant {quant!r} is not one of "
                               f"{', '.join(FORMATS)}")  # fmt: skip
        w = gpu_weights(spec, quant.strip().lower(), mtp=mtp, vision=vision, **quant_options)
    settings = Settings(
        context=context, sequences=sequences, kv_cache=kv_cache, ubatch=ubatch, batch=batch,
        flash_attention=flash_attention, mtp=mtp, vision=vision, backend=backend, kv_unified=kv_unified,
        tp=tp, pp=pp, dp=dp, expert_parallel=expert_parallel, prefix_caching=prefix_caching,
        gpu_memory_bytes=int(vram_gb * 1e9) if vram_gb else None,
    )  # fmt: skip
    try:
        terms = engine_terms(engine, spec, w, settings)
    except ValueError as exc:
        raise SettingError(f"{engine}: {exc}") from None
    budget = _budget(engine, vram_gb, ram_gb, backend, gpu_memory_utilization)
    notes: tuple[str, ...] = ()
    if (engine == "mlx" or backend == "metal") and vram_gb is None and ram_gb is not None:
        from qwenfit.core.apple import working_set_bytes

        try:
            gpu, exact = working_set_bytes(int(ram_gb * 1e9), wired_limit_mb=wired_limit_mb)
        except ValueError as exc:
            raise SettingError(str(exc)) from None
        budget = {"gpu": gpu}
        notes += (
            f"unified memory: the GPU may use {gpu / 1e9:.2f} GB of {ram_gb} GB "
            + ("(iogpu.wired_limit_mb)" if exact else "(Metal's recommended working set, estimated)"),
        )
    if engine == "vllm" and budget is not None and "gpu" in budget:
        from qwenfit.core.engines import vllm_fullest_stage

        _, plan, _ = vllm_fullest_stage(spec, w, settings)
        pool = budget["gpu"] - sum(t.bytes for t in terms if t.device == "gpu" and t.name != "kv_cache")
        message = plan.cannot_serve_message(pool, context)
        if message:
            notes = (f"vLLM would refuse to start: ValueError: {message}",)
        else:
            notes = (f"vLLM would give the KV pool the rest of the budget: maximum concurrency for "
                     f"{context:,} tokens per request: {plan.max_concurrency(pool):.2f}x",)  # fmt: skip
    return Estimate(
        model=spec.name,
        quant=quant,
        engine=engine,
        settings={k: getattr(settings, k) for k in Settings.__dataclass_fields__},
        terms=tuple(terms),
        budget=budget,
        notes=notes,
    )


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
    ``limit`` defaults to the model's native context (262,144; 1,010,000 with YaRN)."""
    import qwenfit

    spec = qwenfit.load(model)
    if kw.get("vram_gb") is None and kw.get("ram_gb") is None:
        raise SettingError("max_context needs a budget: vram_gb and/or ram_gb")
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
    """Pre-flight: the estimate if it fits, else :class:`DoesNotFit` with the shortfall."""
    result = estimate(model, quant, **kw)
    if result.fits is None:
        raise SettingError("check needs a budget: vram_gb and/or ram_gb")
    return result.raise_if_not_fits()
