"""The nearest settings that fit, when a configuration does not: the one list ``qwenfit.check()``
(``DoesNotFit.alternatives``) and ``qwenfit check`` show.

In order: the same settings with the longest context that fits; with the most sequences that fit;
the placement the planner finds for this quantization at this context (expert offload, fewer layers
on the GPU, another parallel layout); then up to two smaller quantizations, best first. Each one is
an estimate from the same assembly, judged against the same budget, with its launch command.

The smaller quantizations are planned best first, a quality step at a time (the planner ranks one
model's options on one engine by quality class and rank before anything else), and the search stops
once two of them fit and a published one fits among those planned (so that the planner's rule for
files that must be made decides as it would over all of them): the same alternatives as planning
every smaller quantization (``exhaustive=True``; tests/plan/test_nearest_pruned.py compares them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from qwenfit.core.engines.base import Artifact, Deployment, Engine, Placement
from qwenfit.core.expr import as_int
from qwenfit.core.fit.assemble import assemble
from qwenfit.core.fit.planner import Option, Plan, PlanModel, Search, plan_options
from qwenfit.core.fit.ranking import NEAR_LOSSLESS_RANK, quality_class
from qwenfit.core.hardware import Machine, Target
from qwenfit.core.search import largest
from qwenfit.core.terms import Estimate
from qwenfit.errors import QwenfitError

__all__ = ["Alternative", "nearest"]


@dataclass(frozen=True, slots=True)
class Alternative:
    """A configuration near a failed one that fits the same budget; ``str()`` is its description."""

    kind: str  # "context" | "sequences" | "offload" | "placement" | "quant"
    description: str
    quant: str
    engine: str
    context: int  # tokens per sequence
    sequences: int
    placement: Placement | None  # None: the failed configuration's own placement
    estimate: Estimate
    decode_tokens_per_s: float | None
    command: str
    artifact: Artifact | None = None  # what the command loads

    def __str__(self) -> str:
        return self.description


def nearest(
    model: PlanModel,
    engine: Engine,
    quant: str,
    inputs: Mapping[str, Any],
    d: Deployment,
    o: Any,
    target: Target,
    machine: Machine,
    *,
    quality: Callable[[str], tuple[int, float]],
    user_options: Mapping[str, Any] | None = None,
    planned: bool = True,
    exhaustive: bool = False,
) -> tuple[Alternative, ...]:
    """Alternatives to the deployment ``d``/``o`` of ``quant`` that does not fit ``target``.
    ``planned``: also ask the planner (offload, placement, smaller quants); it needs ``machine``.
    ``exhaustive``: plan every smaller quantization (the same answer, slower; for tests)."""
    spec = model.spec
    out: list[Alternative] = []
    artifact = engine.artifact(model.where, quant, d)
    context, sequences = as_int(d.context), as_int(d.sequences)

    judge = _planners_judge(model, engine, quant, artifact, d, o, target, user_options)

    def fits(ctx: int, seqs: int) -> bool:
        e = assemble(
            spec, engine, quant, inputs, dataclasses.replace(d, context=ctx, sequences=seqs), o, target
        )
        return bool(e.fits)

    def same(kind: str, description: str, ctx: int, seqs: int) -> Alternative:
        dd = dataclasses.replace(d, context=ctx, sequences=seqs)
        e = assemble(spec, engine, quant, inputs, dd, o, target)
        return Alternative(
            kind,
            description,
            quant,
            engine.name,
            ctx,
            seqs,
            None,
            e,
            None,
            engine.command(artifact, dd, o).render(),
            artifact,
        )

    step = engine.context_step
    try:
        best_ctx = _largest(
            lambda c: fits(c, sequences),
            None if judge is None else lambda c: judge(c, sequences),
            step,
            context - 1,
            step,
        )
        if best_ctx:
            out.append(
                same(
                    "context", f"{best_ctx:,} tokens per sequence instead of {context:,}", best_ctx, sequences
                )
            )
        if sequences > 1:
            best_seq = _largest(
                lambda n: fits(context, n),
                None if judge is None else lambda n: judge(context, n),
                1,
                sequences - 1,
            )
            if best_seq:
                out.append(
                    same(
                        "sequences",
                        f"{best_seq} sequence(s) of {context:,} tokens instead of {sequences}",
                        context,
                        best_seq,
                    )
                )
    except QwenfitError:
        pass
    if planned:
        out += _planned(
            model,
            engine,
            quant,
            d,
            machine,
            quality=quality,
            user_options=user_options,
            exhaustive=exhaustive,
        )
    return tuple(out)


def _largest(
    fits: Callable[[int], bool], judged: Callable[[int], bool] | None, lo: int, hi: int, step: int = 1
) -> int:
    """``largest(fits, lo, hi, step)``: searched with the cheaper ``judged`` when given, its answer
    kept only when ``fits`` agrees at the boundary (true there, false one step beyond: ``fits`` is
    monotone, so that is its own answer); else searched with ``fits``."""
    if judged is not None and hi >= lo:
        try:
            best = largest(judged, lo, hi, step)
        except QwenfitError:
            best = None
        if best is not None:
            beyond = lo if not best else (best // step + 1) * step
            if (not best or fits(best)) and (beyond > hi or not fits(beyond)):
                return best
    return largest(fits, lo, hi, step)


def _planners_judge(
    model: PlanModel,
    engine: Engine,
    quant: str,
    artifact: Artifact,
    d: Deployment,
    o: Any,
    target: Target,
    user_options: Mapping[str, Any] | None,
) -> Callable[[int, int], bool] | None:
    """Whether ``d``/``o`` fit at another context and concurrency, judged as the planner judges its
    placements (:meth:`.planner.Search.fits`: the compiled traced formulas where they apply), when the
    planner deploys this very configuration (same deployment, options and artifact); else None. Its
    answers guide the searches; the assembled estimate confirms them (:func:`_largest`)."""
    search = Search(model, engine, quant, target, kv_cache=d.kv_cache, options=user_options, vision=d.vision,
                    mtp=d.mtp)  # fmt: skip
    p = engine.placement_of(d, o)
    if (
        p is None
        or search.artifact != artifact
        or search.deploy(p, as_int(d.context), as_int(d.sequences)) != (d, o)
    ):
        return None
    return lambda ctx, seqs: search.fits(p, ctx, seqs)


def _planned(
    model: PlanModel,
    engine: Engine,
    quant: str,
    d: Deployment,
    machine: Machine,
    *,
    quality: Callable[[str], tuple[int, float]],
    user_options: Mapping[str, Any] | None,
    exhaustive: bool = False,
) -> list[Alternative]:
    """The planner, restricted to this engine and this or smaller quants, at this context."""
    pool = engine.fallback_quants or engine.planner_quants
    try:
        mine = quality(quant)
        smaller = [q for q in pool if q != quant and quality(q) > mine]
        steps = (_quality_steps(engine, smaller, quality) if not exhaustive else []) or [smaller]
    except QwenfitError:
        smaller, steps = [], [[]]

    memo: dict[tuple[str, str, str], Option] = {}  # each quant placed once however often it is planned

    def planned(quants: list[str]) -> Plan:
        return plan_options(
            [model],
            machine,
            [engine],
            quants=quants,
            context=as_int(d.context),
            sequences=as_int(d.sequences),
            kv_cache=d.kv_cache,
            quality=quality,
            options={engine.name: dict(user_options or {})},
            vision=d.vision,
            mtp=d.mtp,
            hide_beaten=False,  # the quantization asked for is offered even where a smaller one is faster
            memo=memo,
        )

    try:
        tried: set[str] = set()
        for step in steps:
            tried.update(step)
            result = planned([quant, *(q for q in smaller if q in tried)])  # in the pool's order
            fitting = [o for o in result.options if o.quant != quant]
            published = any(
                o.artifact is None or o.artifact.published or o.artifact.stored for o in result.options
            )
            if len(fitting) >= 2 and published:
                break  # every later step ranks below these two
    except QwenfitError:
        return []
    out: list[Alternative] = []
    same = [o for o in result.options if o.quant == quant and o.placement is not None]
    if same:
        o = same[0]
        assert o.placement is not None
        kind = "offload" if o.placement.kind in ("n_cpu_moe", "ngl", "cpu") else "placement"
        out.append(_alternative(kind, str(o.placement), o))
    for o in [o for o in result.options if o.quant != quant][:2]:
        out.append(_alternative("quant", f"{o.quant}, {o.placement}", o))
    return out


def _quality_steps(
    engine: Engine, quants: list[str], quality: Callable[[str], tuple[int, float]]
) -> list[list[str]]:
    """``quants`` grouped by what ranks one model's fitting options on one engine first (quality class,
    then quality rank, the near-lossless ranks equal: :func:`.ranking.sort_key`), best group first."""
    steps: dict[tuple[int, int], list[str]] = {}
    for q in quants:
        name = engine.accepts(q) or q
        rank = quality(q)[0]
        steps.setdefault((quality_class(name), 0 if rank <= NEAR_LOSSLESS_RANK else rank), []).append(q)
    return [steps[k] for k in sorted(steps)]


def _alternative(kind: str, description: str, o: Option) -> Alternative:
    assert o.estimate is not None
    return Alternative(kind, description, o.quant, o.engine, o.context, o.sequences, o.placement,
                       o.estimate, o.decode_tokens_per_s, o.command, o.artifact)  # fmt: skip
