"""The planner: which model, quantization, engine and placement to run on a machine, ranked.

For every (model, engine, quantization) the engine places the model the way it would itself
(:meth:`Engine.place`: llama.cpp's ``--fit`` order, vLLM's tensor/pipeline parallelism, MLX's
working set), then the planner finds the context and concurrency that placement leaves, a speed
estimate and the launch command. Every rejected combination says why. Memory comes from the one
assembly (:mod:`.assemble`); searches use the traced formulas compiled to Python where they apply
(:mod:`.formulas`), the same numbers ~100x faster.

Ranking: options that fit first; then the quantization's quality class (``good``: 4 bits and more,
``usable``: 3-bit, ``poor``: 2-bit and below); within a class a larger model first; then the
quantization's published quality order (data/quants.yaml), except that the near-lossless types
(quality rank ≤ 3: BF16/F16, Q8_0, Q6_K, FP8, MLX 8/6-bit — published mean KLD ≤ 0.0055, perplexity
within 0.35 %) count as equal, so the fastest of them wins; then decode speed; then headroom.

Inputs come resolved (:func:`qwenfit.plan` does the loading and detection): :class:`PlanModel`\\ s, a
:class:`~qwenfit.core.hardware.Machine`, and a ``quality`` function for the ranking.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwenfit.core.artifacts import ModelSource
from qwenfit.core.engines.base import Artifact, Deployment, Engine, FormulaPlacement, Placement
from qwenfit.core.fit.assemble import assemble, deployment
from qwenfit.core.fit.formulas import compiled, placement_env
from qwenfit.core.fit.published import published_first, quants_tried
from qwenfit.core.fit.ranking import NEAR_LOSSLESS_RANK, QUALITY_CLASSES, quality_class
from qwenfit.core.fit.speed import speed_of
from qwenfit.core.formats.weights import WeightMap
from qwenfit.core.hardware import Machine, Target, target_for
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.search import largest
from qwenfit.core.terms import Estimate, shortfall
from qwenfit.errors import DoesNotFit, SettingError

__all__ = [
    "NEAR_LOSSLESS_RANK",
    "QUALITY_CLASSES",
    "Option",
    "Plan",
    "PlanModel",
    "Search",
    "plan_options",
    "quality_class",
]

YARN_CONTEXT = 1_010_000  # Qwen3.5 model cards: up to 1,010,000 tokens with YaRN rope scaling
MIN_CONTEXT = 4096  # the least context a plan is made for (llama.cpp --fit-ctx default)


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
    artifact: Artifact | None = None  # what the command loads (published, the user's, or made)

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
            where = (
                f"; nearest: {nearest.model} {nearest.quant} on {nearest.engine}: {nearest.reason}"
                if nearest
                else ""
            )
            raise DoesNotFit(
                f"nothing fits {self.machine.name}{where}",
                shortfall_bytes=short,
                estimate=nearest.estimate if nearest else None,
            )
        return self

    def __str__(self) -> str:
        from qwenfit.core.fit.text import format_plan

        return format_plan(self)


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


# ---------------------------------------------------------------------------------------------
# cached model data (warm calls reuse weights and their per-device sums)

_SPECS: dict[str, ModelSpec] = {}
_INPUTS: dict[tuple[Any, ...], dict[str, Any]] = {}


def _remember(key: str, spec: ModelSpec) -> None:
    if _SPECS.get(key) is not spec:
        if key in _SPECS or len(_SPECS) >= 256:  # a new spec under a known key: forget what was cached
            _SPECS.clear()
            _INPUTS.clear()
            for cached in (_weights_cached, _reads, _env):
                cached.cache_clear()
        _SPECS[key] = spec


def _weights(key: str, engine: Engine, quant: str, art: Artifact, vision: bool = False) -> WeightMap:
    # one cache entry whether ``vision`` is given or not (lru_cache keys f(a) and f(a, False) apart)
    return _weights_cached(key, engine, quant, art, vision)


@functools.lru_cache(maxsize=512)
def _weights_cached(key: str, engine: Engine, quant: str, art: Artifact, vision: bool) -> WeightMap:
    return engine.artifact_weights(_SPECS[key], art, quant, mtp=False, vision=vision)


def _inputs(key: str, engine: Engine, quant: str, art: Artifact, d: Deployment, o: Any) -> dict[str, Any]:
    """The engine's weight inputs, cached by what they depend on (:meth:`Engine.inputs_key`)."""
    k = (key, engine, quant, art, engine.inputs_key(d, o))
    found = _INPUTS.get(k)
    if found is None:
        if len(_INPUTS) >= 4096:
            _INPUTS.clear()
        w = _weights(key, engine, quant, art, d.vision)
        found = _INPUTS[k] = engine.weight_inputs(_SPECS[key], w, d, o)
    return found


@functools.lru_cache(maxsize=1024)
def _reads(
    key: str, engine: Engine, quant: str, art: Artifact, shape: Placement, mtp: bool
) -> dict[str, Any]:
    return engine.read_inputs(_SPECS[key], _weights(key, engine, quant, art), shape)


@functools.lru_cache(maxsize=8192)
def _env(key: str, engine: Engine, quant: str, art: Artifact, fp: FormulaPlacement) -> dict[str, Any]:
    return placement_env(_SPECS[key], engine, _weights(key, engine, quant, art), fp)


# ---------------------------------------------------------------------------------------------
# the search


_UNSEEN = object()


def _formulas_cover(engine: Engine, user_options: Mapping[str, Any]) -> bool:
    """Whether the traced formulas describe ``user_options``: each option the caller set is a placement
    knob, an input of the formulas (:attr:`Engine.traced_options`) or at its default."""
    if not user_options:
        return True
    placed = set(engine.placement_options(Placement("gpu")))
    given, default = engine.options(user_options), engine.options({})
    return all(
        name in placed or name in engine.traced_options or getattr(given, name) == getattr(default, name)
        for name in user_options
    )


class Search:
    """What every evaluation of one (model, engine, quant) on one target shares; the Judge an
    engine's :meth:`~Engine.place` asks."""

    def __init__(
        self,
        model: PlanModel,
        engine: Engine,
        quant: str,
        target: Target,
        *,
        kv_cache: str | None = None,
        options: Mapping[str, Any] | None = None,
        vision: bool = False,
        mtp: bool = False,
    ) -> None:
        _remember(model.key, model.spec)
        self.model, self.spec, self.engine, self.quant, self.target = model, model.spec, engine, quant, target
        self.kv_cache = kv_cache
        self.vision, self.mtp = vision, mtp
        self.user_options: Mapping[str, Any] = dict(options or {})
        self.n_gpus = target.n_gpus
        self.vram = target.vram_bytes
        self.ram = target.ram_bytes
        self.unified = target.unified
        self.backend = deployment(engine, target, context=1).backend
        self._options: dict[tuple[Any, ...], Any] = {}
        self._hardware: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._fast: dict[Placement, Any] = {}
        self._fast_ok = _formulas_cover(engine, self.user_options)
        self._fast_shared: dict[tuple[Any, ...], Any] = {}
        self.artifact = engine.artifact(model.where, quant, self.deploy(Placement("gpu"), 1, 1)[0])

    def deploy(self, p: Placement, context: int, sequences: int) -> tuple[Deployment, Any]:
        """The deployment and engine options of placement ``p``."""
        cpu = p.kind == "cpu"
        d = deployment(
            self.engine,
            self.target,
            context=context,
            sequences=sequences,
            kv_cache=self.kv_cache,
            mtp=self.mtp,
            vision=self.vision,
            backend="cpu" if cpu else self.backend,
            n_gpus=self.engine.placement_gpus(p),
        )
        key = (p.n_cpu_moe, p.n_gpu_layers, p.tensor_split, p.tp, p.pp)
        o = self._options.get(key)
        if o is None:
            o = self._options[key] = self.engine.options(
                {**self.user_options, **self.engine.placement_options(p)}
            )
        return d, o

    def _hardware_inputs(self, d: Deployment, o: Any) -> dict[str, Any]:
        key = (d.backend, d.n_gpus)
        found = self._hardware.get(key)
        if found is None:
            found = self._hardware[key] = self.engine.hardware_inputs(d, o)
        return found

    def evaluate(self, p: Placement, context: int, sequences: int) -> Estimate:
        d, o = self.deploy(p, context, sequences)
        inputs = {
            **_inputs(self.model.key, self.engine, self.quant, self.artifact, d, o),
            **self.engine.hardware_inputs(d, o),
        }
        return assemble(self.spec, self.engine, self.quant, inputs, d, o, self.target)

    def fast_check(self, p: Placement, context: int, sequences: int) -> tuple[int, bool] | None:
        """(shortfall, GPUs fit) from the compiled traced formulas — the same formulas as
        :meth:`evaluate` — or None when ``p`` is not traced (partial -ngl, pipeline stages, ...)."""
        fast = self._fast.get(p, _UNSEEN)
        if fast is _UNSEEN:
            fast = self._fast[p] = self._fast_base(p)
        if fast is None:
            return None
        c, base, terms, budget_keys = fast[0]
        if not budget_keys:
            return 1, True  # nothing is judged: as Estimate.fits, not known to fit
        env = base.copy()
        env["ctx"] = context
        env["seqs"] = sequences
        env["n_cpu_moe"] = fast[1]
        r = c.f(env)
        used: dict[str, int] = {}
        for key, dev in terms:
            used[dev] = used.get(dev, 0) + r[key]
        budget = {dev: r[key] for dev, key in budget_keys}
        gpus = {dev: cap for dev, cap in budget.items() if dev.startswith("gpu")}
        return shortfall(used, budget), shortfall(used, gpus) == 0

    def _fast_base(self, p: Placement) -> tuple[Any, int] | None:
        """What every fast check of placement ``p`` shares: its compiled formulas, the variables that
        change with neither the context nor ``--n-cpu-moe``, (result key, device) of each term, the
        budgets the engine's rule keeps for this target (as :meth:`Engine.budget`); and ``p``'s
        ``n_cpu_moe``."""
        fp = self.engine.formula_placement(p)
        if fp is None or self.vision or self.mtp or not self._fast_ok:  # text-only, no drafting, defaults
            return None
        cpu = p.kind == "cpu"
        key = (fp, cpu, self.engine.placement_gpus(p))
        shared = self._fast_shared.get(key, _UNSEEN)
        if shared is _UNSEEN:
            shared = self._fast_shared[key] = self._fast_shared_base(p, fp, cpu)
        return None if shared is None else (shared, p.n_cpu_moe)

    def _fast_shared_base(self, p: Placement, fp: FormulaPlacement, cpu: bool) -> Any:
        kv = self.kv_cache or self.engine.kv_types[0]
        c = compiled(self.model.key, self.spec, self.engine, kv, fp)
        if c is None:
            return None
        d, o = self.deploy(p, 1, 1)
        env = dict(_env(self.model.key, self.engine, self.quant, self.artifact, fp))
        env.update(self._hardware_inputs(d, o))
        env.update(vram=0 if cpu or self.vram is None else self.vram, ram=self.ram or 0)
        prefix, devices = ("u:", c.unified) if self.unified else ("b:", c.discrete)
        budget_keys = tuple(
            (dev, prefix + dev)
            for dev in devices
            if (self.ram is not None if dev in ("cpu", "total") else self.vram is not None and not cpu)
        )
        terms = tuple((f"t{i}", dev) for i, dev in enumerate(c.devices))
        return c, env, terms, budget_keys

    # the Judge an engine asks
    def fits(self, p: Placement, context: int, sequences: int = 1) -> bool:
        fast = self.fast_check(p, context, sequences)
        if fast is not None:
            return fast[0] == 0
        return bool(self.evaluate(p, context, sequences).fits)

    def gpus_fit(self, p: Placement, context: int, sequences: int = 1) -> bool:
        """Whether the GPU budgets hold (host RAM not judged)."""
        fast = self.fast_check(p, context, sequences)
        if fast is not None:
            return fast[1]
        e = self.evaluate(p, context, sequences)
        used = e.used_by_budget
        return all(used[d] <= cap for d, cap in (e.budget or {}).items() if d.startswith("gpu"))

    def shortfall(self, p: Placement, context: int, sequences: int = 1) -> int:
        return self.evaluate(p, context, sequences).shortfall_bytes

    # what the plan shows
    def speed(self, p: Placement, e: Estimate, machine: Machine) -> tuple[float | None, float | None, str]:
        shape = Placement(
            p.kind, n_gpus=p.n_gpus, n_gpu_layers=p.n_gpu_layers, tensor_split=p.tensor_split, tp=p.tp
        )
        reads = _reads(self.model.key, self.engine, self.quant, self.artifact, shape, self.mtp)
        _, o = self.deploy(p, 1, 1)
        return speed_of(
            self.spec,
            e,
            machine,
            self.engine,
            p,
            self.backend,
            self.engine.decode_reads(self.spec, reads, p, o),
        )

    def command(self, p: Placement, context: int, sequences: int) -> str:
        d, o = self.deploy(p, context, sequences)
        return self.engine.command(self.artifact, d, o).render()


# ---------------------------------------------------------------------------------------------
# one option, all options


def plan_one(
    model: PlanModel,
    engine: Engine,
    quant: str,
    machine: Machine,
    target: Target,
    *,
    context: int | None,
    sequences: int,
    kv_cache: str | None,
    min_context: int,
    max_nodes: int,
    quality: Callable[[str], tuple[int, float]],
    options: Mapping[str, Any] | None = None,
    vision: bool = False,
    mtp: bool = False,
) -> Option:
    """The best placement of one (model, engine, quant) on ``machine``, or why there is none."""
    spec = model.spec
    base: dict[str, Any] = dict(
        model=spec.name,
        quant=quant,
        engine=engine.name,
        quality_rank=quality(quant)[0],
        quality_class=quality_class(quant),
        model_params=spec.params.total,
    )
    native = spec.text.max_position_embeddings
    need = context or min(min_context, native)
    if need > YARN_CONTEXT or (need > native and not engine.context_beyond_native):
        return Option(
            **base, placement=None, fits=False, reason=f"context {need:,} is beyond the model's limit"
        )
    why = engine.runs_on(machine)
    if why:
        return Option(**base, placement=None, fits=False, reason=why)
    s = Search(model, engine, quant, target, kv_cache=kv_cache, options=options, vision=vision, mtp=mtp)
    try:
        placement, why = engine.place(s, need, sequences, max_nodes)
    except ValueError as exc:
        return Option(**base, placement=None, fits=False, reason=str(exc))
    if placement is None:
        e = s.evaluate(engine.fallback(machine), need, sequences)
        if "short by" not in why:
            why += f" (all on the GPU: short by {e.shortfall_bytes / 1e9:.2f} GB)"
        return Option(**base, placement=None, fits=False, estimate=e, reason=f"{why}, at {need:,} tokens")
    step = engine.context_step
    limit = native if context is None else max(context, native)
    placed: Placement = placement
    max_ctx = largest(lambda c: s.fits(placed, c, sequences), need, limit, step) or need
    notes: list[str] = []
    if context is None:
        placement, max_ctx, note = engine.widen(s, placement, max_ctx, sequences)
        if note:
            notes.append(note)
    ctx = context or max_ctx
    max_seq = largest(lambda n: s.fits(placement, ctx, n), 1, engine.max_sequences)
    if max_seq < sequences:
        return Option(
            **base,
            placement=placement,
            fits=False,
            estimate=s.evaluate(placement, ctx, sequences),
            context=ctx,
            max_context=max_ctx,
            sequences=sequences,
            max_sequences=max_seq,
            reason=f"{sequences} sequences of {ctx:,} tokens do not fit (at most {max_seq})",
        )
    e = s.evaluate(placement, ctx, sequences)
    decode = prefill = None
    detail = ""
    try:
        decode, prefill, detail = s.speed(placement, e, machine)
    except ValueError as exc:
        detail = f"no speed estimate: {exc}"
    if context is None and max_ctx < native:
        notes.append(f"context reduced to {max_ctx:,} of the native {native:,} to fit")
    return Option(
        **base,
        placement=placement,
        fits=True,
        estimate=e,
        context=ctx,
        max_context=max_ctx,
        sequences=sequences,
        max_sequences=max_seq,
        decode_tokens_per_s=decode,
        prefill_tokens_per_s=prefill,
        speed_detail=detail,
        command=s.command(placement, ctx, sequences),
        notes=tuple(notes),
        artifact=s.artifact,
    )


def plan_options(
    models: Sequence[PlanModel],
    machine: Machine,
    engines: Sequence[Engine],
    *,
    quants: Sequence[str] | None = None,
    context: int | None = None,
    sequences: int = 1,
    kv_cache: str | None = None,
    min_context: int = MIN_CONTEXT,
    nodes: int = 1,
    quality: Callable[[str], tuple[int, float]],
    options: Mapping[str, Mapping[str, Any]] | None = None,
    notes: Sequence[str] = (),
    vision: bool = False,
    mtp: bool = False,
) -> Plan:
    """Every (model, engine, quant) placed on ``machine`` and ranked (see the module docstring).
    ``quants``: names in any spelling, each tried with the engines that load it (default: each
    engine's own list for the machine). ``options``: engine options by engine name."""
    out: list[Option] = []
    all_notes = list(notes)
    for model in models:
        src = model.where
        for engine in engines:
            if src.file_format is not None and src.file_format != engine.weights_family:
                continue  # the user's files load in the engines of their format only (noted below)
            target = target_for(machine)
            tried = quants_tried(engine, machine, src, quants, mtp=mtp)
            group: list[Option] = []
            for q in tried:
                name = engine.accepts(q)
                if name is None or name.endswith(".gguf"):
                    continue
                try:
                    group.append(
                        plan_one(
                            model,
                            engine,
                            name,
                            machine,
                            target,
                            context=context,
                            sequences=sequences,
                            kv_cache=kv_cache,
                            min_context=min_context,
                            max_nodes=nodes,
                            quality=quality,
                            options=(options or {}).get(engine.name),
                            vision=vision,
                            mtp=mtp,
                        )
                    )
                except SettingError as exc:
                    group.append(
                        Option(
                            model=model.spec.name,
                            quant=name,
                            engine=engine.name,
                            placement=None,
                            fits=False,
                            reason=str(exc),
                        )
                    )
            out.extend(published_first(group))
        if src.file_format is not None and not any(e.weights_family == src.file_format for e in engines):
            all_notes.append(
                f"{src.path or src.repo_id} is a {src.file_format} checkpoint; none of the engines "
                f"planned loads it ({', '.join(e.name for e in engines)})"
            )
    if machine.devices and machine.ram_bytes is None and not machine.unified:
        all_notes.append(
            "host RAM not given: only placements with every layer on the GPU are considered "
            "(pass ram_gb= to allow expert or layer offload)"
        )
    fit = sorted((o for o in out if o.fits), key=Option.sort_key)
    rejected = sorted((o for o in out if not o.fits), key=lambda o: (o.model, o.engine, o.quality_rank))
    return Plan(machine=machine, options=tuple(fit), rejected=tuple(rejected), notes=tuple(all_notes))
