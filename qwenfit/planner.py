"""plan(): which Qwen3.5 model, quantization, engine and placement to run on a machine, ranked.

For every (model, engine, quantization) the planner finds the best placement that fits — the way
the engine itself would place it — then the context and concurrency it leaves, a speed estimate
and the launch command. Every rejected combination says why.

Placement per engine (memory from :func:`qwenfit.estimate`'s terms, same code):

- **llama.cpp / Ollama / LM Studio**: like llama.cpp's ``--fit`` (common/fit.cpp), the context is
  reduced first, down to ``min_context`` (4,096, ``--fit-ctx``), before anything is offloaded; then
  for MoE models the smallest ``--n-cpu-moe N`` that fits (routed experts of the first N layers in
  host RAM), for dense models the largest ``-ngl`` that fits; several GPUs split layers evenly
  (``-ts``, identical GPUs); no GPU: CPU only.
- **vLLM / SGLang**: tensor parallelism over the GPUs of one node (the largest valid size: heads
  must divide), pipeline parallelism across nodes of the same machine when one node is not enough.
- **MLX**: Apple Silicon only, the GPU's working set.

Ranking (documented in docs/concepts): options that fit first; then the quantization's quality
class (``good``: 4 bits and more, ``usable``: 3-bit, ``poor``: 2-bit and below); within a class a
larger model first (more parameters); then the quantization's published quality order
(data/quants.yaml), except that the near-lossless types (quality rank ≤ 3: BF16/F16, Q8_0, Q6_K,
FP8, MLX 8/6-bit — published mean KLD ≤ 0.0055, perplexity within 0.35 %) count as equal, so the
fastest of them wins; then decode speed; then memory headroom.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwenfit.api import MAX_SEQUENCES, SettingError, _utilization_bp, resolve_target
from qwenfit.core.engines.commands import Launch, launch_command
from qwenfit.core.engines.llama_cpp.layout import (
    LlamaLayout,
    Placement,
    _split_reads,
    llama_layout,
    llama_read_env,
    llama_weight_env,
    speed_of,
)
from qwenfit.core.engines.profiles import Settings, engine_budget, engine_terms, llama_cpp_terms
from qwenfit.core.engines.vllm.pool import DEFAULT_GPU_MEMORY_UTILIZATION, check_tp
from qwenfit.core.expr import Num, as_int
from qwenfit.core.formats.weights import WeightMap
from qwenfit.core.hardware import Machine
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import DoesNotFit, Estimate

__all__ = ["Option", "Placement", "Plan", "plan"]

GGUF_ENGINES = ("llama.cpp", "ollama", "lm-studio")
MIN_CONTEXT = 4096  # llama.cpp --fit-ctx default (common.h fit_params_min_ctx)
YARN_CONTEXT = 1_010_000  # Qwen3.5 model cards: up to 1,010,000 tokens with YaRN rope scaling

# the quantizations the planner tries by default, per engine family (others on request: quants=)
DEFAULT_QUANTS = {
    "gguf": (
        "BF16",
        "Q8_0",
        "Q6_K",
        "Q5_K_M",
        "Q5_K_S",
        "Q4_K_M",
        "Q4_K_S",
        "IQ4_XS",
        "IQ4_NL",
        "Q3_K_L",
        "Q3_K_M",
        "IQ3_M",
        "IQ3_XXS",
        "Q3_K_S",
        "Q2_K",
        "IQ2_M",
        "IQ2_XXS",
        "IQ1_M",
    ),
    "vllm": ("bf16", "fp8"),
    "sglang": ("bf16", "fp8"),
    "mlx": ("bf16", "mlx-8bit", "mlx-6bit", "mlx-5bit", "mlx-4bit", "mlx-3bit"),
    "transformers": ("bf16",),
}


def quality_class(quant: str) -> int:
    """0 good (≥ 4 bits per weight), 1 usable (3-bit), 2 poor (≤ 2-bit): the planner's first
    quality cut, from the type's name (llama.cpp Qn/IQn types, GPU formats, MLX bits)."""
    q = quant.lower()
    if q.startswith(("iq1", "iq2", "q2", "tq1", "tq2", "q1_", "mlx-2bit")):
        return 2
    if q.startswith(("iq3", "q3", "mlx-3bit")):
        return 1
    return 0


QUALITY_CLASSES = ("good", "usable", "poor")
# quality ranks 1-3 of data/quants.yaml: BF16/F16/F32, Q8_0 (KLD 0.0014), Q6_K (KLD 0.0055), fp8, MLX 8/6-bit
NEAR_LOSSLESS_RANK = 3


@dataclass(frozen=True, slots=True)
class Option:
    """One (model, quant, engine) with its best placement — or why it does not fit."""

    model: str
    quant: str
    engine: str
    placement: Placement | None
    fits: bool
    context: int = 0  # tokens per sequence the option is planned (and commanded) at
    max_context: int = 0  # the longest context that fits this placement (one sequence)
    sequences: int = 1
    max_sequences: int = 0  # how many sequences of ``context`` tokens fit at once
    estimate: Estimate | None = None
    decode_tokens_per_s: float | None = None
    prefill_tokens_per_s: float | None = None
    speed_detail: str = ""
    command: str = ""
    reason: str = ""  # why it was rejected, or what was given up to fit
    quality_rank: int = 0
    quality_class: int = 0
    model_params: int = 0
    notes: tuple[str, ...] = ()

    @property
    def memory_by_device(self) -> dict[str, int]:
        return self.estimate.by_device if self.estimate else {}

    @property
    def headroom_bytes(self) -> int:
        """Smallest free memory over the budgeted devices (negative when it does not fit)."""
        if self.estimate is None or not self.estimate.budget:
            return 0
        used = self.estimate.used_by_budget
        return min(cap - used[d] for d, cap in self.estimate.budget.items())

    def sort_key(self) -> tuple[Any, ...]:
        """Smaller is better (see the module docstring)."""
        return (
            not self.fits,
            self.quality_class,
            -self.model_params,
            0 if self.quality_rank <= NEAR_LOSSLESS_RANK else self.quality_rank,
            -(self.decode_tokens_per_s or 0.0),
            -self.headroom_bytes,
            self.engine,
        )

    def raise_if_not_fits(self) -> Option:
        if not self.fits:
            raise DoesNotFit(
                f"{self.model} {self.quant} on {self.engine}: {self.reason}",
                shortfall_bytes=self.estimate.shortfall_bytes if self.estimate else 0,
                estimate=self.estimate,
            )
        return self


@dataclass(frozen=True, slots=True)
class Plan:
    """Ranked options for a machine: ``best`` (fits), ``options`` (fit, best first), ``rejected``."""

    machine: Machine
    options: tuple[Option, ...]
    rejected: tuple[Option, ...]
    notes: tuple[str, ...] = field(default=())
    budget: dict[str, int] = field(default_factory=dict)

    @property
    def best(self) -> Option | None:
        return self.options[0] if self.options else None

    @property
    def fits(self) -> bool:
        return bool(self.options)

    def raise_if_not_fits(self) -> Plan:
        if not self.options:
            nearest = min(
                self.rejected,
                key=lambda o: o.estimate.shortfall_bytes if o.estimate else 1 << 62,
                default=None,
            )
            short = nearest.estimate.shortfall_bytes if nearest and nearest.estimate else 0
            raise DoesNotFit(
                f"nothing fits {self.machine.name}"
                + (
                    f"; nearest: {nearest.model} {nearest.quant} on {nearest.engine}: {nearest.reason}"
                    if nearest
                    else ""
                ),
                shortfall_bytes=short,
                estimate=nearest.estimate if nearest else None,
            )
        return self

    def __str__(self) -> str:
        from qwenfit.report import format_plan

        return format_plan(self)


# ---------------------------------------------------------------------------------------------
# cached model data (warm calls reuse weights and their per-device sums)


_REGISTERED: dict[str, ModelSpec] = {}  # specs given as objects or files, by the key plan() uses


@functools.lru_cache(maxsize=64)
def _spec(name: str) -> ModelSpec:
    if name in _REGISTERED:
        return _REGISTERED[name]
    import qwenfit

    return qwenfit.load(name)


def _register(spec: ModelSpec, source: object) -> str:
    """A cache key for a spec that is not a catalog name (a ModelSpec or a file): its source or name,
    plus its identity so two different specs of the same name never share cached weights."""
    key = f"{spec.name}@{source}#{id(spec)}"
    if key not in _REGISTERED and len(_REGISTERED) >= 256:  # bounded: forget them all, and every
        _REGISTERED.clear()  # cache keyed by their names (an id may be reused once a spec is freed)
        for cached in (_spec, _weights, _llama_env, _llama_read, _gpu_read, _compiled, _base_env):
            cached.cache_clear()
    _REGISTERED[key] = spec  # holds the spec, so its id is not reused while the key is known
    return key


@functools.lru_cache(maxsize=512)
def _weights(name: str, quant: str) -> WeightMap:
    import qwenfit
    from qwenfit.core.formats.gguf import FILE_TYPES
    from qwenfit.core.formats.gpu import gpu_weights

    spec = _spec(name)
    if quant in FILE_TYPES:  # llama.cpp file types are upper case, GPU formats lower case
        return qwenfit.weights(spec, quant)
    return gpu_weights(spec, quant, mtp=False, vision=False)


@functools.lru_cache(maxsize=1024)
def _llama_env(
    name: str, quant: str, n_gpus: int, n_gpu_layers: int | None, tensor_split: tuple[int, ...] | None = None
) -> tuple[LlamaLayout, dict[str, Any]]:
    spec = _spec(name)
    layout = llama_layout(spec, n_gpus=n_gpus, n_gpu_layers=n_gpu_layers, tensor_split=tensor_split)
    return layout, llama_weight_env(spec, _weights(name, quant), layout, mtp=False)


# ---------------------------------------------------------------------------------------------
# the search


@dataclass(frozen=True, slots=True)
class _Ctx:
    """What every evaluation of one (model, engine, quant) shares."""

    spec: ModelSpec
    name: str
    quant: str
    engine: str
    vram: int | None
    ram: int | None
    unified: bool
    backend: str
    gpu_name: str
    util_bp: int
    kv_cache: str | None
    n_gpus: int
    gpu_sm: str | None = None  # compute capability: vLLM pads BF16 expert widths on SM100


def _evaluate(c: _Ctx, p: Placement, context: int, sequences: int) -> Estimate:
    """The estimate of one placement, context and sequence count (same terms as estimate())."""
    total_ctx = context * sequences if c.engine in GGUF_ENGINES else context
    s = Settings(
        context=total_ctx,
        sequences=sequences,
        kv_cache=c.kv_cache,
        backend=c.backend,
        gpu_memory_bytes=c.vram,
        gpu_name=c.gpu_name,
        n_gpus=max(p.n_gpus, 1),
        n_gpu_layers=p.n_gpu_layers,
        n_cpu_moe=p.n_cpu_moe,
        tp=p.tp,
        pp=p.pp,
        gpu_sm=c.gpu_sm,
    )
    if c.engine in GGUF_ENGINES:
        n_gpus = 0 if p.kind == "cpu" else p.n_gpus
        layout, env = _llama_env(c.name, c.quant, n_gpus, p.n_gpu_layers, p.tensor_split)
        terms = llama_cpp_terms(c.spec, s, env, layout, c.engine, c.quant)
    else:
        terms = engine_terms(c.engine, c.spec, _weights(c.name, c.quant), s)
    devices = sorted({t.device for t in terms})
    vram = None if p.kind == "cpu" else c.vram
    budget = engine_budget(
        c.engine, devices, vram=vram, ram=c.ram, unified=c.unified, gpu_memory_utilization_bp=c.util_bp
    )
    return Estimate(
        model=c.spec.name,
        quant=c.quant,
        engine=c.engine,
        settings={k: getattr(s, k) for k in Settings.__dataclass_fields__},
        terms=tuple(terms),
        budget={d: as_int(b) for d, b in budget.items()} or None,
    )


def _fits(c: _Ctx, p: Placement, context: int, sequences: int = 1) -> bool:
    fast = _fast_check(c, p, context, sequences)
    if fast is not None:
        return fast[0]
    return bool(_evaluate(c, p, context, sequences).fits)


_DEFAULT_KV = {"llama.cpp": "f16", "ollama": "f16", "lm-studio": "f16", "vllm": "auto", "sglang": "auto",
               "mlx": "bf16", "transformers": "bf16"}  # fmt: skip


def _trace_key(c: _Ctx, p: Placement) -> tuple[str, int, int, bool] | None:
    """(placement key, n_gpus, tp, cpu only) of a placement the traced formulas cover, else None."""
    if c.engine in GGUF_ENGINES:
        if p.kind == "cpu":
            return ("cpu", 0, 1, True)
        if p.n_gpu_layers is None and p.tensor_split is None and p.kind in ("gpu", "n_cpu_moe"):
            return (f"gpu{p.n_gpus}", p.n_gpus, 1, False)
        return None
    if c.engine in ("vllm", "sglang") and p.pp == 1:
        return (f"tp{p.tp}", p.tp, p.tp, False)
    if c.engine == "mlx":
        return ("unified", 1, 1, False)
    return None


@functools.lru_cache(maxsize=4096)
def _compiled(name: str, engine: str, kv: str, key: tuple[str, int, int, bool]) -> Any:
    """The traced memory formulas of one placement, compiled (None when the engine's formulas do
    not trace): ``(f, term devices, budget entries (discrete), budget entries (unified))``."""
    from qwenfit.core.expr import compile_formulas
    from qwenfit.export import trace_exprs

    try:
        terms, exprs = trace_exprs(_spec(name), engine, kv, *key)
    except (TypeError, ValueError):
        return None
    exprs.pop("speed")
    f = compile_formulas(exprs)
    devices = tuple(t.device for t in terms)
    budgets = tuple(tuple((k, k[2:]) for k in exprs if k.startswith(prefix)) for prefix in ("b:", "u:"))
    return f, devices, budgets[0], budgets[1]


@functools.lru_cache(maxsize=8192)
def _base_env(
    name: str, engine: str, quant: str, key: tuple[str, int, int, bool], util_bp: int, gpu_name: str,
    backend: str, vram: int | None, ram: int | None, gpu_sm: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    from qwenfit.core.engines.profiles import LLAMA_RUNTIME_RESERVE
    from qwenfit.core.engines.vllm.pool import small_batch_device
    from qwenfit.export import placement_env

    env = dict(placement_env(_spec(name), name, engine, quant, *key))
    env.update(util_bp=util_bp, small_device=small_batch_device(gpu_name),
               reserve=LLAMA_RUNTIME_RESERVE.get(backend, 0), vram=0 if key[3] or vram is None else vram,
               ram=ram or 0, sm100=int((gpu_sm or "").split(".")[0] == "10"))  # fmt: skip
    return env


def _fast_check(c: _Ctx, p: Placement, context: int, sequences: int) -> tuple[bool, bool] | None:
    """(fits, GPUs fit) from the compiled traced formulas — the same formulas as _evaluate — or None
    when this placement is not traced (partial -ngl, pipeline stages, untraceable engines)."""
    key = _trace_key(c, p)
    if key is None:
        return None
    compiled = _compiled(c.name, c.engine, c.kv_cache or _DEFAULT_KV[c.engine], key)
    if compiled is None:
        return None
    f, devices, discrete, unified = compiled
    env = _base_env(
        c.name, c.engine, c.quant, key, c.util_bp, c.gpu_name, c.backend, c.vram, c.ram, c.gpu_sm
    ).copy()
    env["ctx"], env["seqs"], env["n_cpu_moe"] = context, sequences, p.n_cpu_moe
    r = f(env)
    used: dict[str, int] = {}
    for i, d in enumerate(devices):
        used[d] = used.get(d, 0) + r[f"t{i}"]
    fits = gpus = True
    judged = False  # as Estimate.fits: with no budget at all nothing is known to fit
    for k, d in unified if c.unified else discrete:
        if d == "cpu" or d == "total":
            if c.ram is None:
                continue  # not budgeted
            over = (sum(used.values()) if d == "total" else used.get(d, 0)) > r[k]
            fits &= not over
        elif c.vram is not None and p.kind != "cpu":
            over = used.get(d, 0) > r[k]
            fits &= not over
            gpus &= not over
        else:
            continue
        judged = True
    return fits and judged, gpus


def _fits_ctx(c: _Ctx, p: Placement, sequences: int, context: int) -> bool:
    return _fits(c, p, context, sequences)


def _gpus_fit_k(c: _Ctx, make: Any, context: int, sequences: int, k: int) -> bool:
    return _gpus_fit(c, make(k), context, sequences)


def _split_shares(first: float, n_gpus: int) -> tuple[int, ...]:
    """``-ts`` shares giving the first GPU ``first`` times the layers of each other one (integers)."""
    scale = 2 if first != int(first) else 1
    return (int(first * scale), *([scale] * (n_gpus - 1)))


def _gpus_fit(c: _Ctx, p: Placement, context: int, sequences: int = 1) -> bool:
    """Whether the GPU budgets hold (host RAM not judged)."""
    fast = _fast_check(c, p, context, sequences)
    if fast is not None:
        return fast[1]
    e = _evaluate(c, p, context, sequences)
    used = e.used_by_budget
    return all(used[d] <= cap for d, cap in (e.budget or {}).items() if d.startswith("gpu"))


def _largest(fits: Callable[[int], bool], lo: int, hi: int, step: int = 1) -> int:
    """Largest multiple of ``step`` in [lo, hi] with fits() (monotone: true then false), else 0."""
    if hi < lo or not fits(lo):
        return 0
    a, b, best = lo // step, hi // step, lo
    while a <= b:
        mid = (a + b) // 2
        if mid * step >= lo and fits(mid * step):
            best, a = mid * step, mid + 1
        else:
            b = mid - 1
    return best


def _smallest(fits: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """Smallest n in [lo, hi] with fits() (monotone: false then true), else None."""
    if not fits(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _llama_placements(c: _Ctx, need: int, seqs: int) -> tuple[Placement | None, str]:
    """The least offload at which ``need`` tokens fit, llama.cpp --fit's order."""
    t = c.spec.text
    n_layer_all = t.num_hidden_layers + c.spec.mtp_layers  # GGUF block_count (the MTP block included)
    n_layers = t.num_hidden_layers  # --n-cpu-moe beyond these would only touch the (skipped) MTP block
    if c.n_gpus == 0 or c.vram is None:
        p = Placement("cpu", n_gpus=0, description="CPU only")
        return (p, "") if _fits(c, p, need, seqs) else (None, "does not fit in RAM on the CPU")
    gpus = c.n_gpus
    full = Placement(
        "gpu", n_gpus=gpus, description="all layers on " + ("the GPU" if gpus == 1 else f"{gpus} GPUs")
    )
    if _fits(c, full, need, seqs):
        return full, ""
    if c.unified:
        return None, "does not fit the GPU's share of unified memory"
    if c.ram is None:
        return None, "needs weights in host RAM, and no RAM size was given (pass ram_gb= to allow offload)"
    # GPU memory falls and host memory grows with the offload: find the least offload the GPUs
    # hold, then check the host at that point (more offload would only need more host memory)
    if c.spec.is_moe:

        def moe(n: int) -> Placement:
            return Placement(
                "n_cpu_moe",
                n_gpus=gpus,
                n_cpu_moe=n,
                description=f"routed experts of the first {n} of {n_layers} layers in RAM (--n-cpu-moe {n})",
            )

        n = _smallest(lambda k: _gpus_fit(c, moe(k), need, seqs), 1, n_layers)
        if n is not None and gpus > 1:
            # --n-cpu-moe empties the first layers, which sit on the first GPU: giving it more layers
            # (-ts) lets fewer experts leave the GPUs. The split with the smallest N wins (even on ties).
            chosen: tuple[int, Placement] | None = None
            for first in (3 / 2, 2, 3, 4, 6, 8, 12, 16):
                split = _split_shares(first, gpus)
                ts = ",".join(map(str, split))

                def moe_ts(k: int, split: tuple[int, ...] = split, ts: str = ts) -> Placement:
                    return dataclasses.replace(moe(k), tensor_split=split, description=f"{moe(k)}, -ts {ts}")

                m = _smallest(functools.partial(_gpus_fit_k, c, moe_ts, need, seqs), 1, n)
                if m is not None and m < (chosen[0] if chosen else n) and _fits(c, moe_ts(m), need, seqs):
                    chosen = (m, moe_ts(m))
            if chosen is not None:
                return chosen[1], ""
        if n is not None:
            if _fits(c, moe(n), need, seqs):
                return moe(n), ""
            short = _evaluate(c, moe(n), need, seqs).shortfall_bytes
            return (
                None,
                f"with --n-cpu-moe {n} the GPU holds it but host RAM is short by {short / 1e9:.2f} GB",
            )

    def ngl(n: int) -> Placement:
        return Placement(
            "ngl",
            n_gpus=gpus,
            n_gpu_layers=n,
            description=f"{n} of {n_layer_all + 1} layers on the GPU (-ngl {n})",
        )

    best = _largest(lambda k: _gpus_fit(c, ngl(k), need, seqs), 1, n_layer_all)
    if best:
        if _fits(c, ngl(best), need, seqs):
            return ngl(best), ""
        short = _evaluate(c, ngl(best), need, seqs).shortfall_bytes
        return None, f"with -ngl {best} the GPU holds it but host RAM is short by {short / 1e9:.2f} GB"
    return None, "does not fit even with every layer in RAM"


def _parallel_placements(c: _Ctx, need: int, seqs: int, max_nodes: int) -> tuple[Placement | None, str]:
    """vLLM / SGLang: the largest valid tensor-parallel size on one node, then pipeline stages over
    more nodes of the same machine (vLLM only)."""
    sizes = [n for n in (8, 4, 2, 1) if n <= max(c.n_gpus, 1)]
    valid = []
    for tp in sizes:
        try:
            check_tp(c.spec, tp)
            valid.append(tp)
        except ValueError:
            continue
    if not valid:
        return None, "no tensor-parallel size divides the model's heads"
    tp = valid[0]
    p = Placement(
        "tp", n_gpus=tp, tp=tp, description=f"tensor parallel over {tp} GPU(s)" if tp > 1 else "one GPU"
    )
    if _fits(c, p, need, seqs):
        return p, ""
    if c.engine != "vllm":
        return None, f"does not fit {tp} GPU(s) with tensor parallelism"
    for nodes in range(2, max_nodes + 1):
        q = Placement(
            "tp",
            n_gpus=tp * nodes,
            tp=tp,
            pp=nodes,
            nodes=nodes,
            description=f"tensor parallel {tp} x pipeline parallel {nodes} ({nodes} nodes)",
        )
        if _fits(c, q, need, seqs):
            return q, ""
    return None, f"does not fit {max_nodes} node(s) of {tp} GPU(s)"


@functools.lru_cache(maxsize=1024)
def _llama_read(
    name: str, quant: str, n_gpus: int, n_gpu_layers: int | None, tensor_split: tuple[int, ...] | None = None
) -> dict[str, Any]:
    layout, _ = _llama_env(name, quant, n_gpus, n_gpu_layers, tensor_split)
    return llama_read_env(_spec(name), _weights(name, quant), layout)


@functools.lru_cache(maxsize=1024)
def _gpu_read(name: str, quant: str) -> int:
    from qwenfit.core.fit.speed import decode_read_bytes

    return decode_read_bytes(_spec(name), _weights(name, quant))["gpu"]


def decode_inputs(c: _Ctx, p: Placement) -> tuple[Num, Num, Num]:
    """(weights read on the GPU side, on the CPU side, layers with tensors on the CPU) per token,
    from the planner's caches (the same sums as :func:`read_inputs`)."""
    if c.engine not in GGUF_ENGINES:
        return _gpu_read(c.name, c.quant), 0, 0
    n_gpus = 0 if p.kind == "cpu" else p.n_gpus
    r = _llama_read(c.name, c.quant, n_gpus, p.n_gpu_layers, p.tensor_split)
    layout, _ = _llama_env(c.name, c.quant, n_gpus, p.n_gpu_layers, p.tensor_split)
    return _split_reads(r, layout, p)


def _speed(c: _Ctx, p: Placement, e: Estimate, machine: Machine) -> tuple[float | None, float | None, str]:
    return speed_of(c.spec, e, machine, c.engine, p, c.backend, decode_inputs(c, p))


def _engines_for(machine: Machine) -> tuple[str, ...]:
    if not machine.devices:
        return ("llama.cpp",)
    dev = machine.devices[0]
    if dev.vendor == "apple":
        return ("llama.cpp", "mlx")
    if dev.vendor in ("nvidia", "amd") and ("cuda" in dev.backends or "rocm" in dev.backends):
        return ("llama.cpp", "vllm")
    return ("llama.cpp",)


def _quants_for(engine: str, machine: Machine, spec: ModelSpec) -> tuple[str, ...]:
    if engine in GGUF_ENGINES:
        return DEFAULT_QUANTS["gguf"]
    quants = DEFAULT_QUANTS.get(engine, ("bf16",))
    if engine in ("vllm", "sglang") and machine.devices and machine.devices[0].fp8_tflops is None:
        quants = tuple(q for q in quants if q != "fp8")  # no FP8 hardware: vLLM would run it as W8A16
    return quants


def _plan_one(
    spec: ModelSpec,
    name: str,
    engine: str,
    quant: str,
    machine: Machine,
    target: Any,
    *,
    context: int | None,
    sequences: int,
    kv_cache: str | None,
    min_context: int,
    max_nodes: int,
    gpu_memory_utilization: float | None,
) -> Option:
    from qwenfit.loaders.quants import quality_key

    backend = target.backend or ("metal" if engine == "mlx" else "cuda")
    if not machine.devices:
        backend = "cpu"
    c = _Ctx(
        spec,
        name,
        quant,
        engine,
        target.vram_bytes,
        target.ram_bytes,
        target.unified,
        backend,
        target.gpu_name,
        _utilization_bp(gpu_memory_utilization),
        kv_cache,
        target.n_gpus,
        machine.devices[0].compute_capability if machine.devices else None,
    )
    rank = quality_key(quant)[0]
    base: dict[str, Any] = dict(
        model=spec.name,
        quant=quant,
        engine=engine,
        quality_rank=rank,
        quality_class=quality_class(quant),
        model_params=spec.params.total,
    )
    native = spec.text.max_position_embeddings
    need = context or min(min_context, native)
    if need > YARN_CONTEXT or (need > native and engine not in ("vllm", "sglang", *GGUF_ENGINES)):
        return Option(
            **base, placement=None, fits=False, reason=f"context {need:,} is beyond the model's limit"
        )
    try:
        if engine in GGUF_ENGINES:
            placement, why = _llama_placements(c, need, sequences)
        elif engine in ("vllm", "sglang"):
            if not machine.devices:
                return Option(**base, placement=None, fits=False, reason=f"{engine} needs a GPU")
            placement, why = _parallel_placements(c, need, sequences, max_nodes)
        elif engine == "mlx":
            if not machine.devices or machine.devices[0].vendor != "apple":
                return Option(**base, placement=None, fits=False, reason="MLX runs on Apple Silicon only")
            apple = Placement("unified", description="Apple GPU (unified memory)")
            why = "" if _fits(c, apple, need, sequences) else "does not fit Metal's working set"
            placement = apple if not why else None
        else:
            one = Placement("gpu", description="one GPU")
            why = "" if _fits(c, one, need, sequences) else "does not fit"
            placement = one if not why else None
    except (ValueError, SettingError) as exc:
        return Option(**base, placement=None, fits=False, reason=str(exc))
    if placement is None:
        fallback = (
            Placement("gpu", n_gpus=max(1, c.n_gpus)) if machine.devices else Placement("cpu", n_gpus=0)
        )
        e = _evaluate(c, fallback, need, sequences)
        if "short by" not in why:
            why += f" (all on the GPU: short by {e.shortfall_bytes / 1e9:.2f} GB)"
        return Option(**base, placement=None, fits=False, estimate=e, reason=f"{why}, at {need:,} tokens")
    assert placement is not None
    step = 256 if engine in GGUF_ENGINES else 1
    limit = native if context is None else max(context, native)
    max_ctx = _largest(functools.partial(_fits_ctx, c, placement, sequences), need, limit, step) or need
    notes: list[str] = []
    if (
        context is None
        and max_ctx < native
        and engine in GGUF_ENGINES
        and spec.is_moe
        and placement.kind != "cpu"
    ):
        # MoE: a few more layers' experts in RAM buy the whole native context (the KV cache of the
        # 1-in-4 attention layers is small); dense models keep all layers on the GPU and shorten it
        more, _ = _llama_placements(c, native, sequences)
        if more is not None and more.kind == "n_cpu_moe":
            notes.append(
                f"{placement}: {max_ctx:,} tokens; {more.n_cpu_moe - placement.n_cpu_moe} more "
                f"layer(s) of experts in RAM give the native {native:,}"
            )
            placement, max_ctx = more, native
    ctx = context or max_ctx
    max_seq = _largest(functools.partial(_fits, c, placement, ctx), 1, MAX_SEQUENCES[engine])
    seqs = sequences
    if max_seq < seqs:
        e = _evaluate(c, placement, ctx, seqs)
        return Option(
            **base,
            placement=placement,
            fits=False,
            estimate=e,
            context=ctx,
            max_context=max_ctx,
            sequences=seqs,
            max_sequences=max_seq,
            reason=f"{seqs} sequences of {ctx:,} tokens do not fit (at most {max_seq})",
        )
    e = _evaluate(c, placement, ctx, seqs)
    decode = prefill = None
    detail = ""
    try:
        decode, prefill, detail = _speed(c, placement, e, machine)
    except ValueError as exc:
        detail = f"no speed estimate: {exc}"
    util = gpu_memory_utilization or DEFAULT_GPU_MEMORY_UTILIZATION
    launch = Launch(
        engine=engine,
        model_name=spec.name,
        repo_id=_repo_id(spec),
        quant=quant,
        context=ctx,
        sequences=seqs,
        kv_cache=kv_cache,
        n_gpus=placement.n_gpus,
        n_gpu_layers=placement.n_gpu_layers,
        n_cpu_moe=placement.n_cpu_moe,
        tensor_split=(placement.tensor_split or tuple([1] * placement.n_gpus))
        if engine in GGUF_ENGINES and placement.n_gpus > 1
        else None,
        cpu_only=placement.kind == "cpu",
        tp=placement.tp,
        pp=placement.pp,
        gpu_memory_utilization=util if engine == "vllm" else None,
    )
    if context is None and max_ctx < native:
        notes.append(f"context reduced to {max_ctx:,} of the native {native:,} to fit")
    return Option(
        **base,
        placement=placement,
        fits=True,
        estimate=e,
        context=ctx,
        max_context=max_ctx,
        sequences=seqs,
        max_sequences=max_seq,
        decode_tokens_per_s=decode,
        prefill_tokens_per_s=prefill,
        speed_detail=detail,
        command=launch_command(launch),
        notes=tuple(notes),
    )


def plan(
    model: str | os.PathLike[str] | ModelSpec | Sequence[str] | None = None,
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
    ``"m4-max-128"``, or a :class:`~qwenfit.core.hardware.Machine`), or ``vram_gb`` (one GPU's memory,
    decimal GB) × ``n_gpus`` and ``ram_gb``. With none of them the local machine is detected
    (:func:`qwenfit.loaders.detect.detect`) and the plan says what was found.

    ``nodes``: how many such machines vLLM may span with pipeline parallelism (default 1).
    ``context``: tokens per sequence to plan for (default: the most that fits, at least
    ``min_context``, at most the native 262,144). ``engines`` default: llama.cpp, plus vLLM on
    NVIDIA/AMD GPUs or MLX on Apple Silicon. ``quants`` default: the common GGUF types, bf16/fp8 for
    vLLM, MLX 3-8 bit. Returns a :class:`Plan`; nothing fitting is an answer, not an exception
    (``plan.raise_if_not_fits()`` raises :class:`~qwenfit.DoesNotFit`).
    """
    from qwenfit.loaders.catalog import names as catalog_names

    notes: list[str] = []
    if hardware is None and vram_gb is None and ram_gb is None and detect is not False:
        from qwenfit.loaders.detect import detect as detect_machine

        hardware = detect_machine()
        notes.append(hardware.name)
        notes.extend(hardware.notes)
    if isinstance(n_gpus, bool) or not isinstance(n_gpus, int) or n_gpus < 1:
        raise SettingError(f"n_gpus must be a positive integer, got {n_gpus!r}")
    if hardware is None:
        from qwenfit.loaders.hardware import custom_machine

        machine = custom_machine(vram_gb=vram_gb, ram_gb=ram_gb, n_gpus=n_gpus)
    elif isinstance(hardware, str):
        from qwenfit.loaders.hardware import parse_machine

        if vram_gb is not None:
            raise SettingError("give either hardware or vram_gb, not both (vram_gb describes a custom GPU)")
        machine = parse_machine(hardware, ram_gb=ram_gb)
    else:
        machine = hardware if ram_gb is None else dataclasses.replace(hardware, ram_bytes=int(ram_gb * 1e9))
    for label, value in (("sequences", sequences), ("min_context", min_context), ("nodes", nodes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SettingError(f"{label} must be a positive integer, got {value!r}")
    if context is not None and (isinstance(context, bool) or not isinstance(context, int) or context < 1):
        raise SettingError(f"context must be a positive integer, got {context!r}")
    if model is None:
        names = list(catalog_names())
    elif isinstance(model, (list, tuple)):
        names = list(model)
    else:
        names = [model]  # type: ignore[list-item]
    engine_list = tuple(engines) if engines is not None else _engines_for(machine)
    from qwenfit.core.engines.profiles import ENGINES

    for e in engine_list:
        if e not in ENGINES:
            raise SettingError(f"unknown engine {e!r}; valid: {', '.join(ENGINES)}")
    quant_list = tuple(quants) if quants is not None else None
    options: list[Option] = []
    for m in names:
        from qwenfit.loaders.catalog import find

        if isinstance(m, str) and find(m) is not None:
            spec, key = _spec(m), m
        else:
            spec = m if isinstance(m, ModelSpec) else _spec_path(m)
            key = _register(spec, getattr(spec, "source", "") or m)
        for engine in engine_list:
            target = resolve_target(machine, None, None, engine=engine)
            qs = quant_list or _quants_for(engine, machine, spec)
            for q in qs:
                q_engine = _engine_quant(engine, q)
                if q_engine is None:
                    continue
                options.append(
                    _plan_one(
                        spec,
                        key,
                        engine,
                        q_engine,
                        machine,
                        target,
                        context=context,
                        sequences=sequences,
                        kv_cache=kv_cache,
                        min_context=min_context,
                        max_nodes=nodes,
                        gpu_memory_utilization=gpu_memory_utilization,
                    )
                )
    if machine.devices and machine.ram_bytes is None and not machine.unified:
        notes.append(
            "host RAM not given: only placements with every layer on the GPU are considered "
            "(pass ram_gb= to allow expert or layer offload)"
        )
    fit = sorted((o for o in options if o.fits), key=Option.sort_key)
    rejected = sorted((o for o in options if not o.fits), key=lambda o: (o.model, o.engine, o.quality_rank))
    return Plan(machine=machine, options=tuple(fit), rejected=tuple(rejected), notes=tuple(notes))


def _repo_id(spec: ModelSpec) -> str | None:
    from qwenfit.loaders.catalog import find

    entry = find(spec.name)
    return entry.repo_ids[0] if entry and entry.repo_ids else None


def _spec_path(m: Any) -> ModelSpec:
    import qwenfit

    return qwenfit.load(m)


def _engine_quant(engine: str, quant: str) -> str | None:
    """The quant spelled as ``engine`` takes it, or None when the engine cannot run it."""
    from qwenfit.core.formats.gguf import FILE_TYPES
    from qwenfit.core.formats.gpu import FORMATS

    if engine in GGUF_ENGINES:
        return quant.upper() if quant.upper() in FILE_TYPES else None
    q = quant.lower()
    if engine == "mlx":
        return q if q.startswith("mlx-") or q in ("bf16", "fp16") else None
    return q if q in FORMATS and not q.startswith("mlx-") else None
