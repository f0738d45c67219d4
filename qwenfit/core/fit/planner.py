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

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from qwenfit.core.engines.base import Deployment, Engine, FormulaPlacement, Placement
from qwenfit.core.fit.assemble import assemble, deployment, mixed_split
from qwenfit.core.fit.formulas import compiled
from qwenfit.core.fit.model_inputs import (
    PlanModel,
    cached_reads,
    clear_caches,
    formula_env,
    stored,
    use_spec,
    weight_inputs,
)
from qwenfit.core.fit.option import Option, Plan, at_least
from qwenfit.core.fit.published import published_first, quants_tried
from qwenfit.core.fit.ranking import (
    NEAR_LOSSLESS_RANK,
    PREFERENCES,
    QUALITY_CLASSES,
    quality_class,
    undominated,
)
from qwenfit.core.fit.speed import DEFAULT_DEPTH, speed_of
from qwenfit.core.hardware import Machine, Target, target_for
from qwenfit.core.search import largest
from qwenfit.core.terms import Estimate, shortfall
from qwenfit.errors import SettingError

__all__ = [
    "DEFAULT_CONTEXT",
    "NEAR_LOSSLESS_RANK",
    "QUALITY_CLASSES",
    "Option",
    "Plan",
    "PlanModel",
    "Search",
    "clear_caches",
    "plan_options",
    "quality_class",
]

YARN_CONTEXT = 1_010_000  # Qwen3.5 model cards: up to 1,010,000 tokens with YaRN rope scaling
MIN_CONTEXT = 4096  # the least context a plan is made for (llama.cpp --fit-ctx default)
# The context a plan is made for by default: 32,768 tokens per sequence, the output length Qwen's model
# cards recommend "for most queries" (81,920 for hard maths and coding); context="max" plans the most.
DEFAULT_CONTEXT = 32_768


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
        use_spec(model.key, model.spec)
        self.model, self.spec, self.engine, self.quant, self.target = model, model.spec, engine, quant, target
        self.kv_cache = kv_cache
        self.vision, self.mtp = vision, mtp
        self.user_options: Mapping[str, Any] = mixed_split(engine, target, options or {})
        self.split_free = (options or {}).get("tensor_split") is None and bool(target.gpu_bytes)
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
            **weight_inputs(self.model.key, self.engine, self.quant, self.artifact, d, o),
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
        c, env, terms, budget_keys, gpu_keys = fast[0]
        if not budget_keys:
            return 1, True  # nothing is judged: as Estimate.fits, not known to fit
        env["ctx"] = context  # the formulas only read env: the shared one takes this call's values
        env["seqs"] = sequences
        env["n_cpu_moe"] = fast[1]
        r = c.f(env)
        used: dict[str, int] = {}
        for key, dev in terms:
            used[dev] = used.get(dev, 0) + r[key]
        budget = {dev: r[key] for dev, key in budget_keys}
        gpus = {dev: r[key] for dev, key in gpu_keys}
        return shortfall(used, budget), shortfall(used, gpus) == 0

    def _fast_base(self, p: Placement) -> tuple[Any, int] | None:
        """What every fast check of placement ``p`` shares: its compiled formulas, the variables that
        change with neither the context nor ``--n-cpu-moe``, (result key, device) of each term, the
        budgets the engine's rule keeps for this target (as :meth:`Engine.budget`); and ``p``'s
        ``n_cpu_moe``."""
        fp = self.engine.formula_placement(p)
        if fp is None or self.vision or self.mtp or not self._fast_ok or self.target.gpu_bytes:
            return None  # the formulas: text-only, no drafting, default options, one GPU size
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
        env = dict(formula_env(self.model.key, self.engine, self.quant, self.artifact, fp))
        env.update(self._hardware_inputs(d, o))
        env.update(vram=0 if cpu or self.vram is None else self.vram, ram=self.ram or 0)
        prefix, devices = ("u:", c.unified) if self.unified else ("b:", c.discrete)
        budget_keys = tuple(
            (dev, prefix + dev)
            for dev in devices
            if (self.ram is not None if dev in ("cpu", "total") else self.vram is not None and not cpu)
        )
        terms = tuple((f"t{i}", dev) for i, dev in enumerate(c.devices))
        gpu_keys = tuple((dev, key) for dev, key in budget_keys if dev.startswith("gpu"))
        return c, env, terms, budget_keys, gpu_keys

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
    def speed(
        self, p: Placement, e: Estimate, machine: Machine, *, depth: int = DEFAULT_DEPTH
    ) -> tuple[float | None, float | None, str]:
        shape = Placement(
            p.kind, n_gpus=p.n_gpus, n_gpu_layers=p.n_gpu_layers, tensor_split=p.tensor_split, tp=p.tp
        )
        reads = cached_reads(self.model.key, self.engine, self.quant, self.artifact, shape, self.mtp)
        _, o = self.deploy(p, 1, 1)
        return speed_of(
            self.spec,
            e,
            machine,
            self.engine,
            p,
            self.backend,
            self.engine.decode_reads(self.spec, reads, p, o),
            depth=depth,
            bf16=reads["r:bf16_ppm"],
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
    context: int | str | None,
    sequences: int,
    kv_cache: str | None,
    min_context: int,
    max_nodes: int,
    quality: Callable[[str], tuple[int, float]],
    options: Mapping[str, Any] | None = None,
    vision: bool = False,
    mtp: bool = False,
    depth: int = DEFAULT_DEPTH,
) -> Option:
    """The best placement of one (model, engine, quant) on ``machine``, or why there is none.

    ``context``: tokens per sequence — a number (exactly that), None (the default: DEFAULT_CONTEXT,
    less when only less fits, never under ``min_context``) or ``"max"`` (the most that fits, up to the
    native context, buying it with more offload where that is cheap)."""
    spec = model.spec
    base: dict[str, Any] = dict(
        model=spec.name,
        quant=quant,
        engine=engine.name,
        quality_rank=quality(quant)[0],
        quality_class=quality_class(quant),
        model_params=stored(model.key, "params", (), lambda: spec.params.total),  # not its inventory
    )
    native = spec.text.max_position_embeddings
    floor = min(min_context, native)
    wanted = min(DEFAULT_CONTEXT, native) if context is None else None
    exact = context if isinstance(context, int) else None
    need = exact or wanted or floor
    if need > YARN_CONTEXT or (need > native and not engine.context_beyond_native):
        return Option(
            **base, placement=None, fits=False, reason=f"context {need:,} is beyond the model's limit"
        )
    why = engine.runs_on(machine) or (engine.no_mtp if mtp else "")
    if why:
        return Option(**base, placement=None, fits=False, reason=why)
    s = Search(model, engine, quant, target, kv_cache=kv_cache, options=options, vision=vision, mtp=mtp)
    try:
        placement, why = engine.place(s, need, sequences, max_nodes)
        if placement is None and wanted is not None and floor < need:  # less than the default context
            need = floor
            placement, why = engine.place(s, need, sequences, max_nodes)
    except ValueError as exc:
        return Option(**base, placement=None, fits=False, reason=str(exc))
    if placement is None:
        fallback = engine.fallback(machine, spec)
        e = s.evaluate(fallback, need, sequences)
        if "short by" not in why:
            used, budget = e.used_by_budget, dict(e.budget or {})
            worst = max(budget, key=lambda dev: used[dev] - budget[dev], default="gpu")
            where = "each GPU" if worst == "gpu" and fallback.n_gpus > 1 else worst
            short = f"short by {e.shortfall_bytes / 1e9:.2f} GB on {where}"
            why += f" (all on {fallback.n_gpus or 'no'} GPU(s): {short})"
        return Option(**base, placement=None, fits=False, estimate=e, reason=f"{why}, at {need:,} tokens")
    step = engine.context_step
    limit = max(exact or 0, native)
    placed: Placement = placement
    max_ctx = largest(lambda c: s.fits(placed, c, sequences), need, limit, step) or need
    notes: list[str] = []
    if context == "max":
        placement, max_ctx, note = engine.widen(s, placement, max_ctx, sequences)
        if note:
            notes.append(note)
    ctx = exact or (min(wanted, max_ctx) if wanted is not None else max_ctx)
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
        decode, prefill, detail = s.speed(placement, e, machine, depth=depth)
    except ValueError as exc:
        detail = f"no speed estimate: {exc}"
    if context == "max" and max_ctx < native:
        notes.append(f"context reduced to {max_ctx:,} of the native {native:,} to fit")
    if wanted is not None and ctx < wanted:
        notes.append(f"context {ctx:,}: the default {wanted:,} does not fit")
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
    context: int | str | None = None,
    sequences: int = 1,
    kv_cache: str | None = None,
    min_context: int = MIN_CONTEXT,
    nodes: int = 1,
    quality: Callable[[str], tuple[int, float]],
    options: Mapping[str, Mapping[str, Any]] | None = None,
    notes: Sequence[str] = (),
    vision: bool = False,
    mtp: bool = False,
    prefer: str = "quality",
    depth: int = DEFAULT_DEPTH,
    min_speed: float | None = None,
    gpu_only: bool = False,
    ram_reserve_bytes: int | None = None,
    hide_beaten: bool = True,
    memo: dict[tuple[str, str, str], Option] | None = None,
) -> Plan:
    """Every (model, engine, quant) placed on ``machine`` and ranked (see the module docstring).
    ``quants``: names in any spelling, each tried with the engines that load it (default: each
    engine's own list for the machine). ``options``: engine options by engine name. ``prefer``:
    quality, speed or context (:func:`.ranking.sort_key`); speeds are compared ``depth`` tokens
    deep. ``min_speed``: options slower (or of unknown speed) are rejected; ``gpu_only``: nothing is
    placed in host RAM. An option another one beats on every axis is not shown (it is listed among
    the rejected, with the one that beats it) unless ``hide_beaten`` is False. ``memo``: each (model,
    engine, quant)'s option as placed, kept across calls that differ only in ``quants`` (the nearest
    fit's search widens its list a step at a time)."""
    if prefer not in PREFERENCES:
        raise SettingError(f"prefer={prefer!r}; valid: {', '.join(PREFERENCES)}")
    out: list[Option] = []
    all_notes = list(notes)
    for model in models:
        src = model.where
        for engine in engines:
            if src.file_format is not None and src.file_format != engine.weights_family:
                continue  # the user's files load in the engines of their format only (noted below)
            target = target_for(machine, ram_reserve_bytes=ram_reserve_bytes)
            reserve = f"{target.ram_reserve_bytes / 1e9:.2f} GB of RAM kept for the system"
            if target.ram_reserve_bytes and not gpu_only and reserve not in " ".join(all_notes):
                all_notes.append(reserve + " (--ram-reserve / ram_reserve_gb= to change it)")
            if gpu_only:
                target = dataclasses.replace(target, ram_bytes=None)
            tried = quants_tried(engine, machine, src, quants, mtp=mtp)
            group: list[Option] = []
            for q in tried:
                name = engine.accepts(q)
                if name is None or name.endswith(".gguf"):
                    continue
                known = None if memo is None else memo.get((model.key, engine.name, name))
                if known is not None:
                    group.append(known)
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
                            depth=depth,
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
                if memo is not None:
                    memo[(model.key, engine.name, name)] = group[-1]
            out.extend(published_first(group))
        if src.file_format is not None and not any(e.weights_family == src.file_format for e in engines):
            all_notes.append(
                f"{src.path or src.repo_id} is a {src.file_format} checkpoint; none of the engines "
                f"planned loads it ({', '.join(e.name for e in engines)})"
            )
    if gpu_only and machine.devices:
        all_notes.append("GPU only: every layer on the GPUs, nothing offloaded to host RAM")
    elif machine.devices and machine.ram_bytes is None and not machine.unified:
        all_notes.append(
            "host RAM not given: only placements with every layer on the GPU are considered "
            "(pass ram_gb= to allow expert or layer offload)"
        )
    if min_speed is not None:
        out = [at_least(o, min_speed) for o in out]
    kept, beaten = (
        undominated([o for o in out if o.fits]) if hide_beaten else ([o for o in out if o.fits], [])
    )
    aside = [dataclasses.replace(a, fits=False, reason=f"{b.quant} beats it on every axis (as much context "
             f"and quality, faster or the same, no more memory)") for a, b in beaten]  # fmt: skip
    fit = sorted(kept, key=lambda o: o.sort_key(prefer))
    rejected = sorted(
        (*(o for o in out if not o.fits), *aside), key=lambda o: (o.model, o.engine, o.quality_rank)
    )
    return Plan(machine=machine, options=tuple(fit), rejected=tuple(rejected), notes=tuple(all_notes))
