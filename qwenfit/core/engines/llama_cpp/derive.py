"""The derivation of llama.cpp's compute-buffer closed forms (:mod:`.compute`): ggml's graph
allocator replayed on (value, polynomial) sizes, recording every comparison it makes (the concolic
replay), walked along the KV cells for each sequence count, and turned into a decision tree.

Used by ``scripts/llama_compute_formulas.py`` (which writes :mod:`.compute_trees`) and by
:func:`.compute.compute_tree` for a text configuration with no stored tree (derived once, cached).
"""

from __future__ import annotations

import collections
import random
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from qwenfit.core.engines.llama_cpp.cells import context_cells
from qwenfit.core.engines.llama_cpp.compute import (
    KV_OF_CLASS,
    VARS,
    Dim,
    Guard,
    Poly,
    Structure,
    Tree,
    guard_holds,
    pad_poly,
    variables,
)
from qwenfit.core.engines.llama_cpp.ggml_alloc import CPU_ALIGNMENT, alloc_events
from qwenfit.core.expr import as_int
from qwenfit.core.model.spec import ModelSpec

__all__ = [
    "SAMPLE_SEQS", "ConcolicAllocator", "Sample", "check_tree", "concolic_alloc", "concolic_buffers",
    "derive_checked", "derive_tree", "envelope_winners", "grid_samples", "random_points", "run_sample",
    "steps_to_flip", "walk_samples",
]  # fmt: skip

# ------------------------------------------------------------------------------------------------
# ggml_dyn_tallocr on (value, polynomial) sizes, recording the comparisons it makes
# ------------------------------------------------------------------------------------------------

_Size = tuple[int, Poly]
_INF: _Size = (1 << 62, Poly.var("INF"))
_ZERO: _Size = (0, Poly.of(0))


def _add(a: _Size, b: _Size) -> _Size:
    return a[0] + b[0], a[1] + b[1]


def _sub(a: _Size, b: _Size) -> _Size:
    return a[0] - b[0], a[1] - b[1]


class _Concolic:
    def __init__(self) -> None:
        self.guards: dict[tuple[str, str], Guard] = {}

    def cmp(self, a: _Size, b: _Size, op: str) -> bool:
        v, p = _sub(a, b)
        res = v < 0 if op == "<" else v <= 0 if op == "<=" else v == 0
        if p.const() is None and ("INF",) not in p.terms:
            self.guards[(op, p.key())] = (op, p)
        return res


class ConcolicAllocator:
    """ggml_dyn_tallocr (ggml-alloc.c:121-352; one chunk) on (value, polynomial) sizes: allocations
    and frees decided on the values, every comparison recorded as a guard, every allocation's end
    address kept as a polynomial."""

    def __init__(self) -> None:
        self.cc = _Concolic()
        self.blocks: list[list[_Size]] = [[_ZERO, _INF]]
        self.ends: dict[str, Poly] = {}
        self.top = 0

    def alloc(self, size: _Size) -> _Size:
        blocks, cc = self.blocks, self.cc
        best, best_size = -1, _ZERO
        for i in range(len(blocks) - 1):
            bs = blocks[i][1]
            if cc.cmp(size, bs, "<=") and (best == -1 or cc.cmp(bs, best_size, "<=")):
                best, best_size = i, bs
        if best == -1:
            best = len(blocks) - 1
        b = blocks[best]
        a = b[0]
        b[0], b[1] = _add(b[0], size), _sub(b[1], size)
        if best != len(blocks) - 1 and cc.cmp(b[1], _ZERO, "=="):
            del blocks[best]
        end = _add(a, size)
        self.ends[end[1].key()] = end[1]
        self.top = max(self.top, end[0])
        return a

    def free(self, a: _Size, size: _Size) -> None:
        blocks, cc = self.blocks, self.cc
        for i, b in enumerate(blocks):
            if cc.cmp(_add(b[0], b[1]), a, "=="):
                b[1] = _add(b[1], size)
                if i < len(blocks) - 1 and cc.cmp(_add(b[0], b[1]), blocks[i + 1][0], "=="):
                    b[1] = _add(b[1], blocks[i + 1][1])
                    del blocks[i + 1]
                return
            if cc.cmp(_add(a, size), b[0], "=="):
                b[0], b[1] = a, _add(b[1], size)
                if i > 0 and cc.cmp(_add(blocks[i - 1][0], blocks[i - 1][1]), b[0], "=="):
                    blocks[i - 1][1] = _add(blocks[i - 1][1], b[1])
                    del blocks[i]
                return
        pos = 0
        while pos < len(blocks) and cc.cmp(blocks[pos][0], a, "<"):
            pos += 1
        blocks.insert(pos, [a, size])

    def result(self) -> tuple[int, list[Poly], list[Guard]]:
        return self.top, _prune(list(self.ends.values())), list(self.cc.guards.values())


def _aligned(nb: Any, alignment: int) -> _Size:
    d = Dim.of(nb)
    return -(-d.v // alignment) * alignment, pad_poly(d.p, alignment)


def concolic_alloc(
    leafs: list[Any], nodes: list[Any], alignment: int = CPU_ALIGNMENT
) -> tuple[int, list[Poly], list[Guard]]:
    """ggml_dyn_tallocr (ggml-alloc.c:121-352, as :mod:`qwenfit.core.engines.llama_cpp.ggml_alloc`)
    over a graph whose sizes are :class:`Dim`: (buffer bytes, the end polynomial of every allocation,
    the guards)."""
    placed, events = alloc_events(leafs, nodes)
    ca = ConcolicAllocator()
    sizes = [_aligned(t.nbytes, alignment) for t in placed]
    addr: list[_Size] = [_ZERO] * len(placed)
    for kind, i, j in events:
        if kind == "A":
            addr[i] = ca.alloc(sizes[i])
        elif kind == "I":
            addr[i] = addr[j]
        else:
            ca.free(addr[i], sizes[i])
    return ca.result()


def concolic_buffers(
    leafs: list[Any], nodes: list[Any], buffer_of: dict[int, int], bufts: list[Any]
) -> list[tuple[int, list[Poly], list[Guard]]]:
    """:func:`.ggml_alloc.allocate_buffers` (one allocator per buffer, each with its buffer type's
    alignment and alloc size) over :class:`Dim` sizes: per buffer (bytes, end polynomials, guards).
    One chunk per buffer (no ``max_size``)."""
    placed, events = alloc_events(leafs, nodes)
    allocs = [ConcolicAllocator() for _ in bufts]
    owner = [buffer_of[id(t)] for t in placed]
    sizes = [_aligned(bufts[owner[i]].alloc_size(t), bufts[owner[i]].alignment) for i, t in enumerate(placed)]
    addr: list[_Size] = [_ZERO] * len(placed)
    for kind, i, j in events:
        if kind == "A":
            addr[i] = allocs[owner[i]].alloc(sizes[i])
        elif kind == "I":
            owner[i], addr[i] = owner[j], addr[j]
            extra = _sub(sizes[j], sizes[i])
            if extra[0] > 0:
                allocs[owner[j]].free(_add(addr[j], sizes[i]), extra)
        else:
            allocs[owner[i]].free(addr[i], sizes[i])
    return [a.result() for a in allocs]


def _prune(polys: list[Poly]) -> list[Poly]:
    """Drop polynomials another one bounds everywhere (every coefficient of the difference >= 0;
    all variables and atoms are non-negative)."""
    keep: list[Poly] = []
    for p in polys:
        if any(all(c >= 0 for c in (q - p).terms.values()) for q in keep):
            continue
        keep = [q for q in keep if not all(c >= 0 for c in (p - q).terms.values())]
        keep.append(p)
    return sorted(keep, key=repr)


@dataclass(frozen=True, slots=True)
class Sample:
    """One concolic replay: the variables, the buffer, every allocation's end polynomial, the guards;
    ``kv_last``: the largest ``kv`` up to which the same path holds (:func:`walk_samples`; -1 = only
    this ``kv``)."""

    env: dict[str, int]
    size: int
    ends: list[Poly]
    guards: list[Guard]
    kv_last: int = -1


def envelope_winners(s: Sample) -> list[Poly]:
    """The end polynomials that are the buffer somewhere on ``kv`` in [env kv, kv_last]: all of them
    are linear in ``kv`` there, so this walks the upper envelope of lines from the left end."""
    a = s.env["kv"]
    b = max(a, s.kv_last)
    start = [p.value(s.env) for p in s.ends]
    rise = [p.value({**s.env, "kv": b}) - v for p, v in zip(s.ends, start, strict=True)]
    top = max(start)
    cur = max((i for i, v in enumerate(start) if v == top), key=lambda i: rise[i])
    won = {cur}
    t = Fraction(0)
    while b > a:
        best: tuple[Fraction, int] | None = None
        for i in range(len(start)):
            if rise[i] <= rise[cur]:
                continue
            x = Fraction(start[cur] - start[i], rise[i] - rise[cur])  # where line i meets the winner
            if x < t or x > 1:
                continue
            if best is None or x < best[0] or (x == best[0] and rise[i] > rise[best[1]]):
                best = (x, i)
        if best is None:
            break
        t, cur = best
        won.add(cur)
    return [s.ends[i] for i in sorted(won)]


def derive_tree(samples: Iterable[Sample]) -> Tree:
    """The decision tree of :func:`concolic_alloc` runs (see the module docstring). A leaf keeps the
    end polynomials that are the maximum somewhere on one of its samples' paths at least
    (:func:`envelope_winners`; the others never set the buffer there). scripts/llama_compute_formulas.py
    checks the result on points off the grid and adds any point that disagrees to the samples."""
    samples = [Sample(s.env, s.size, envelope_winners(s), s.guards) for s in samples]
    seen: dict[tuple[str, str], Guard] = {}
    for s in samples:
        for g in s.guards:
            seen.setdefault((g[0], g[1].key()), g)
    varying = [g for g in seen.values() if len({guard_holds(g, s.env) for s in samples}) > 1]
    groups: dict[tuple[bool, ...], dict[str, Poly]] = collections.defaultdict(dict)
    for s in samples:
        sig = tuple(guard_holds(g, s.env) for g in varying)
        groups[sig].update((p.key(), p) for p in s.ends)
    items = [(sig, frozenset(forms), forms) for sig, forms in groups.items()]
    return _build(varying, items)


def _build(
    varying: list[Guard], items: list[tuple[tuple[bool, ...], frozenset[str], dict[str, Poly]]]
) -> Tree:
    if len({it[1] for it in items}) == 1:
        return {"max": _prune(list(items[0][2].values()))}
    best: tuple[int, int, int] | None = None
    for gi in range(len(varying)):
        left = {it[1] for it in items if it[0][gi]}
        right = {it[1] for it in items if not it[0][gi]}
        if not left or not right:
            continue
        score = (len(left) + len(right), len(varying[gi][1].terms), gi)
        if best is None or score < best:
            best = score
    if best is None:  # one signature with several end lists cannot happen for a fixed path
        merged: dict[str, Poly] = {}
        for it in items:
            merged.update(it[2])
        return {"max": _prune(list(merged.values()))}
    gi = best[2]
    return {
        "if": varying[gi],
        "then": _build(varying, [it for it in items if it[0][gi]]),
        "else": _build(varying, [it for it in items if not it[0][gi]]),
    }


# the sequence counts the trees are derived on (each walked over every KV size: walk_samples)
SAMPLE_SEQS = (*range(1, 49), 56, 64, 80, 96, 112, 128, 160, 192, 224, 256)


def run_sample(spec: ModelSpec, st: Structure, n_seq: int, ctx_per_seq: int) -> Sample:
    """One concolic replay at llama-server's non-unified layout: ``n_seq`` streams of ``ctx_per_seq``."""
    from qwenfit.core.engines.llama_cpp.graph import GraphSettings, text_graph

    cells, per = (as_int(x) for x in context_cells(ctx_per_seq * n_seq, n_seq, kv_unified=False))
    env = {k: as_int(v) for k, v in variables(cells, per, n_seq, st).items()}
    tps, ns, no, kv = (Poly.var(v) for v in VARS)
    gs = GraphSettings(
        n_tokens=Dim(env["tps"] * n_seq, tps * ns), n_seq=Dim(n_seq, ns),  # type: ignore[arg-type]
        n_outputs=Dim(env["no"], no), n_kv=Dim(per, kv), n_stream=Dim(n_seq, ns),  # type: ignore[arg-type]
        flash_attn=st.flash_attn, type_k=KV_OF_CLASS[st.k], type_v=KV_OF_CLASS[st.v],
        n_rs_seq=st.n_rs_seq,
    )  # fmt: skip
    leafs, nodes = text_graph(spec, gs, mtp_draft=st.mtp_draft)
    size, ends, guards = concolic_alloc(leafs, nodes)
    return Sample(env, size, ends, guards)


def steps_to_flip(g: Guard, env: dict[str, int], step: int) -> int | None:
    """How many ``step``-cell increments of ``kv`` first change the guard's outcome (None: never).
    Every guard is linear in ``kv`` along multiples of 256 cells (the KQ mask and the KQ matrix are
    ``kv`` times a multiple of 32 bytes), so the crossing is solved, not searched."""
    op, p = g
    v0 = p.value(env)
    slope = p.value({**env, "kv": env["kv"] + step}) - v0
    if slope == 0:
        return None
    if op == "==":
        if v0 == 0:
            return 1
        k, r = divmod(-v0, slope)
        return k if r == 0 and k > 0 else None
    strict = op == "<"
    now = v0 < 0 if strict else v0 <= 0
    if now and slope > 0:  # becomes false once v0 + k*slope > 0 (>= 0 for "<")
        return (-v0) // slope + (0 if strict and -v0 % slope == 0 else 1)
    if not now and slope < 0:  # becomes true once v0 + k*slope <= 0 (< 0 for "<")
        k = -(-v0 // -slope)
        return k + 1 if strict and v0 + k * slope == 0 else k
    return None


def walk_samples(spec: ModelSpec, st: Structure, n_seq: int, kv_max: int = 262144) -> list[Sample]:
    """Every allocator path along ``kv`` for one sequence count: a replay at 256 cells per stream,
    then from the first ``kv`` whose ubatch is full one replay per stretch of ``kv`` over which no
    comparison the allocator made changes its outcome (the next replay starts where the first one
    flips); each sample records where its stretch ends (``kv_last``)."""
    step = 256
    first = run_sample(spec, st, n_seq, step)
    start = max(step, -(-st.n_ubatch // n_seq // step) * step)
    out: list[Sample] = []
    sample = first
    if start != step:
        out.append(first)
        sample = run_sample(spec, st, n_seq, start)
    while True:
        flips = [k for g in sample.guards if (k := steps_to_flip(g, sample.env, step)) is not None]
        nxt = sample.env["kv"] + step * min(flips) if flips else kv_max + step
        out.append(Sample(sample.env, sample.size, sample.ends, sample.guards, min(nxt - step, kv_max)))
        if nxt > kv_max:
            return out
        sample = run_sample(spec, st, n_seq, nxt)


def grid_samples(spec: ModelSpec, st: Structure) -> list[Sample]:
    """:func:`walk_samples` for every sequence count of :data:`SAMPLE_SEQS`."""
    return [x for ns in SAMPLE_SEQS for x in walk_samples(spec, st, ns)]


def random_points(n: int, seed: int) -> list[tuple[int, int]]:
    """``n`` (sequences, tokens per sequence) points off the grid: sequences 1-256 (mostly up to 48),
    contexts up to 262,144 (some up to 4,096)."""
    rnd = random.Random(seed)
    out: list[tuple[int, int]] = []
    while len(out) < n:
        ns = rnd.randint(1, 256) if rnd.random() < 0.3 else rnd.randint(1, 48)
        ctx = rnd.randint(1, 262144) if rnd.random() < 0.7 else rnd.randint(1, 4096)
        out.append((ns, ctx))
    return out


def check_tree(
    spec: ModelSpec, st: Structure, tree: Tree, points: Iterable[tuple[int, int]]
) -> list[list[int]]:
    """[sequences, context, tree, replay] where the tree and the plain replay
    (:func:`qwenfit.core.engines.llama_cpp.graph.text_compute_bytes`) disagree."""
    from qwenfit.core.engines.llama_cpp.compute import eval_tree
    from qwenfit.core.engines.llama_cpp.graph import text_compute_bytes

    bad = []
    for ns, ctx in points:
        cells, per = (as_int(x) for x in context_cells(ctx * ns, ns, kv_unified=False))
        ref = text_compute_bytes(
            spec, n_ctx=cells, n_ctx_seq=per, n_seq=ns, kv_unified=False, n_ubatch=st.n_ubatch,
            n_outputs_max=ns, flash_attn=st.flash_attn, type_k=KV_OF_CLASS[st.k], type_v=KV_OF_CLASS[st.v],
        )  # fmt: skip
        got = eval_tree(tree, {k: as_int(v) for k, v in variables(cells, per, ns, st).items()})
        if got != ref:
            bad.append([ns, ctx, got, ref])
    return bad


def derive_checked(
    spec: ModelSpec, st: Structure, *, n_check: int = 300, rounds: int = 10
) -> tuple[Tree, list[Any]]:
    """Derive a tree from the grid (:func:`grid_samples`); points off the grid where it disagrees with
    the plain replay become samples too (up to ``rounds`` rounds, each checked on ``n_check`` fresh
    points), so the tree returned passed its last check. Returns (tree, the checks of every round)."""
    samples = grid_samples(spec, st)
    checks: list[Any] = []
    for r in range(rounds):
        tree = derive_tree(samples)
        points = random_points(n_check, seed=zlib.crc32(f"{st.key()}/{r}".encode()))
        bad = check_tree(spec, st, tree, points)
        checks.append({"checked": n_check, "mismatches": bad})
        if not bad:
            break
        samples += [run_sample(spec, st, ns, ctx) for ns, ctx, _got, _ref in bad]
    return tree, checks
