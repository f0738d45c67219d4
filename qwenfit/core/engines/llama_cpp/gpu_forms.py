"""Closed forms of llama.cpp's per-device compute buffers for the calculator's GPU placements.

The same derivation as the CPU buffer's (:mod:`.compute`, :mod:`.derive`): the graph is built with
:class:`.compute.Dim` dimensions, placed and split by the scheduler (:func:`.gpu_compute.scheduled_graph`),
and each backend's allocator replayed on (value, polynomial) sizes (:func:`.derive.concolic_buffers`),
recording every comparison. For each sequence count of :data:`.derive.SAMPLE_SEQS` the replay walks the
KV cells per stream from 256 to 262,144 (a new replay where the first comparison of any buffer flips);
per device, the comparisons of its own allocator split the samples into the regions of a decision tree
whose leaves are maxima of end polynomials (:func:`.derive.derive_tree`). Each tree is checked against
the plain replay (:func:`.gpu_compute.device_compute_buffers`) on random points and re-derived with the
points that disagree.

Placements (:class:`GpuPlacement`): ``n_gpus`` GPUs of one backend, every layer and the output
offloaded with the default (even) layer split, no tensor override: one GPU (the GPU and the host
buffer), and 2-4 GPUs with pipeline parallelism (each GPU and the host). The structures are the
CPU trees' (:class:`.compute.Structure`: llama-server's output limits, ubatch 512, flash attention,
f16/bf16 or quantized KV). Not covered: --n-cpu-moe / -ot (the expert copies depend on the
quantization of each host layer), partial -ngl, -nkvo, and Metal / Vulkan (not measured; their
buffers come from the replay on integers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from qwenfit.core.engines.llama_cpp.cells import context_cells
from qwenfit.core.engines.llama_cpp.compute import (
    KV_OF_CLASS,
    VARS,
    Dim,
    Poly,
    Structure,
    Tree,
    eval_tree,
    model_key,
    pad_poly,
    tree_expr,
    tree_from_json,
    variables,
)
from qwenfit.core.engines.llama_cpp.layout import llama_layout
from qwenfit.core.expr import Num, as_int
from qwenfit.core.formats.compiled import MISSING, lookup, remember
from qwenfit.core.model.spec import ModelSpec

if TYPE_CHECKING:  # the derivation's modules load when a tree is derived, not for the closed forms
    from qwenfit.core.engines.llama_cpp.derive import Sample
    from qwenfit.core.engines.llama_cpp.gpu_compute import DeviceSetup

__all__ = [
    "GpuPlacement",
    "derive_gpu_checked",
    "gpu_compute_exprs",
    "gpu_compute_trees",
    "gpu_samples",
    "host_compute_closed",
    "host_input_poly",
    "placement_setup",
    "register_gpu_trees",
    "stored_gpu_trees",
]


@dataclass(frozen=True, slots=True)
class GpuPlacement:
    """``n_gpus`` GPUs of ``backend``, everything offloaded, the default layer split."""

    n_gpus: int
    backend: str = "cuda"

    def key(self) -> str:
        return f"{self.backend}-g{self.n_gpus}"


def placement_setup(spec: ModelSpec, pl: GpuPlacement) -> DeviceSetup:
    """The layer split llama.cpp makes for identical GPUs (:func:`.layout.llama_layout`)."""
    from qwenfit.core.engines.llama_cpp.gpu_compute import DeviceSetup

    layout = llama_layout(spec, n_gpus=pl.n_gpus)
    gpus = tuple(d for d in layout.devices if d != "cpu")
    return DeviceSetup(layer_device=layout.layer_device, gpus=gpus, backend=pl.backend)


def gpu_sample(spec: ModelSpec, st: Structure, pl: GpuPlacement, n_seq: int, ctx: int) -> dict[str, Sample]:
    """One concolic replay of every device's buffer (llama-server's non-unified layout, ``n_seq``
    streams of ``ctx`` tokens): device -> :class:`.derive.Sample`."""
    from qwenfit.core.engines.llama_cpp.derive import Sample, concolic_buffers
    from qwenfit.core.engines.llama_cpp.gpu_compute import scheduled_graph
    from qwenfit.core.engines.llama_cpp.graph import GraphSettings

    cells, per = (as_int(x) for x in context_cells(ctx * n_seq, n_seq, kv_unified=False))
    env = {k: as_int(v) for k, v in variables(cells, per, n_seq, st).items()}
    tps, ns, no, kv = (Poly.var(v) for v in VARS)
    gs = GraphSettings(
        n_tokens=Dim(env["tps"] * n_seq, tps * ns), n_seq=Dim(n_seq, ns),  # type: ignore[arg-type]
        n_outputs=Dim(env["no"], no), n_kv=Dim(per, kv), n_stream=Dim(n_seq, ns),  # type: ignore[arg-type]
        flash_attn=st.flash_attn, type_k=KV_OF_CLASS[st.k], type_v=KV_OF_CLASS[st.v], n_rs_seq=st.n_rs_seq,
    )  # fmt: skip
    g = scheduled_graph(spec, placement_setup(spec, pl), gs, mtp_draft=st.mtp_draft)
    res = concolic_buffers(g.leafs, g.nodes, g.buffer_of, g.bufts)
    return {
        name: Sample(env, size, ends, guards) for name, (size, ends, guards) in zip(g.names, res, strict=True)
    }


def _walk(
    spec: ModelSpec, st: Structure, pl: GpuPlacement, n_seq: int, kv_max: int = 262144
) -> dict[str, list[Sample]]:
    """:func:`.derive.walk_samples` for every device at once: a new replay where the first guard of
    any device flips (so each sample's stretch holds for every device)."""
    from qwenfit.core.engines.llama_cpp.derive import Sample, steps_to_flip

    step = 256
    start = max(step, -(-st.n_ubatch // n_seq // step) * step)
    out: dict[str, list[Sample]] = {}
    first = gpu_sample(spec, st, pl, n_seq, step)
    sample = first
    if start != step:
        for d, s in first.items():
            out.setdefault(d, []).append(s)
        sample = gpu_sample(spec, st, pl, n_seq, start)
    while True:
        any_s = next(iter(sample.values()))
        flips = [
            k for s in sample.values() for g in s.guards if (k := steps_to_flip(g, s.env, step)) is not None
        ]
        nxt = any_s.env["kv"] + step * min(flips) if flips else kv_max + step
        for d, s in sample.items():
            out.setdefault(d, []).append(Sample(s.env, s.size, s.ends, s.guards, min(nxt - step, kv_max)))
        if nxt > kv_max:
            return out
        sample = gpu_sample(spec, st, pl, n_seq, nxt)


def gpu_samples(
    spec: ModelSpec, st: Structure, pl: GpuPlacement, seqs: Iterable[int] | None = None
) -> dict[str, list[Sample]]:
    """The walked samples of every device for the sequence counts ``seqs`` (default
    :data:`.derive.SAMPLE_SEQS`)."""
    from qwenfit.core.engines.llama_cpp.derive import SAMPLE_SEQS

    seqs = SAMPLE_SEQS if seqs is None else seqs
    out: dict[str, list[Sample]] = {}
    for ns in seqs:
        for d, ss in _walk(spec, st, pl, ns).items():
            out.setdefault(d, []).extend(ss)
    return out


def check_gpu_trees(
    spec: ModelSpec,
    st: Structure,
    pl: GpuPlacement,
    trees: Mapping[str, Tree],
    points: Iterable[tuple[int, int]],
) -> list[list[Any]]:
    """[sequences, context, device, tree, replay] wherever a tree disagrees with the replay."""
    from qwenfit.core.engines.llama_cpp.gpu_compute import device_compute_buffers

    setup = placement_setup(spec, pl)
    bad: list[list[Any]] = []
    for ns, ctx in points:
        ref = device_compute_buffers(
            spec, setup, context=ctx, n_seq=ns, n_ubatch=st.n_ubatch, n_outputs_max=ns,
            flash_attn=st.flash_attn, type_k=KV_OF_CLASS[st.k], type_v=KV_OF_CLASS[st.v],
        )  # fmt: skip
        cells, per = (as_int(x) for x in context_cells(ctx * ns, ns, kv_unified=False))
        env = {k: as_int(v) for k, v in variables(cells, per, ns, st).items()}
        for d, tree in trees.items():
            got = eval_tree(tree, env)
            if got != ref[d]:
                bad.append([ns, ctx, d, got, ref[d]])
    return bad


def derive_gpu_checked(
    spec: ModelSpec, st: Structure, pl: GpuPlacement, *, n_check: int = 300, rounds: int = 10,
    seqs: Iterable[int] | None = None,
) -> tuple[dict[str, Tree], list[Any]]:  # fmt: skip
    """Every device's tree (:func:`.derive.derive_tree` on :func:`gpu_samples`), re-derived with the
    random points that disagree with the replay until a round of ``n_check`` fresh points passes
    (at most ``rounds``). Returns (device -> tree, the checks of every round)."""
    import zlib  # here: only a derivation seeds its check points

    from qwenfit.core.engines.llama_cpp.derive import derive_tree, random_points

    samples = gpu_samples(spec, st, pl, seqs)
    checks: list[Any] = []
    trees: dict[str, Tree] = {}
    for r in range(rounds):
        trees = {d: derive_tree(ss) for d, ss in samples.items()}
        points = random_points(n_check, seed=zlib.crc32(f"{st.key()}/{pl.key()}/{r}".encode()))
        bad = check_gpu_trees(spec, st, pl, trees, points)
        checks.append({"checked": n_check, "mismatches": bad})
        if not bad:
            break
        for ns, ctx in sorted({(b[0], b[1]) for b in bad}):
            for d, s in gpu_sample(spec, st, pl, ns, ctx).items():
                samples[d].append(s)
    return trees, checks


# ------------------------------------------------------------------------------------------------
# the stored trees (gpu_compute_trees.py, written by scripts/llama_compute_formulas.py --gpu)
# ------------------------------------------------------------------------------------------------

_REGISTERED: dict[tuple[str, str, str], dict[str, Tree]] = {}


def register_gpu_trees(spec: ModelSpec, st: Structure, pl: GpuPlacement, trees: dict[str, Tree]) -> None:
    """Make trees derived at run time available like stored ones."""
    _REGISTERED[(model_key(spec), st.key(), pl.key())] = trees


@lru_cache(maxsize=1)
def stored_gpu_trees() -> dict[str, Any]:
    """The stored trees (``gpu_compute_trees.py``)."""
    from qwenfit.core.engines.llama_cpp.gpu_compute_trees import DATA_JSON

    data: dict[str, Any] = json.loads(DATA_JSON)
    return data


@lru_cache(maxsize=256)
def _parsed(model: str, structure: str, placement: str) -> dict[str, Tree] | None:
    rec = stored_gpu_trees()["trees"].get(model, {}).get(structure, {}).get(placement)
    return None if rec is None else {d: tree_from_json(r["tree"]) for d, r in rec.items()}


def gpu_compute_trees(spec: ModelSpec, st: Structure, pl: GpuPlacement) -> dict[str, Tree] | None:
    """device -> tree for this model, structure and placement (stored or registered), or None."""
    key = (model_key(spec), st.key(), pl.key())
    return _REGISTERED.get(key) or _parsed(*key)


def gpu_compute_exprs(
    spec: ModelSpec, st: Structure, pl: GpuPlacement, *, n_ctx: Num, n_ctx_seq: Num, n_seq: Num
) -> dict[str, Num] | None:
    """Each device's compute buffer as a formula (or an int) of the padded cells ``n_ctx`` /
    ``n_ctx_seq`` and the sequences, llama-server's output limits; None without trees."""
    trees = gpu_compute_trees(spec, st, pl)
    if trees is None:
        return None
    env = variables(n_ctx, n_ctx_seq, n_seq, st)
    if all(isinstance(v, int) for v in env.values()):
        ints = {k: as_int(v) for k, v in env.items()}
        return {d: eval_tree(t, ints) for d, t in trees.items()}
    return {d: tree_expr(t, env) for d, t in trees.items()}


# ------------------------------------------------------------------------------------------------
# the host compute buffer with every layer offloaded, in closed form
# ------------------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def host_input_poly(spec: ModelSpec, st: Structure) -> Poly:
    """Σ align32(graph inputs) of the reserved graph as a polynomial of :data:`.compute.VARS`: the
    token ids, the (unused) embeddings input, positions, KV write indices, the KQ mask, the recurrent
    state copy indices, the output ids and, with a quantized cache, the Hadamard rotations. The
    scheduler assigns every graph input to the CPU backend (ggml-backend.cpp:944-949). Precompiled for
    the catalog's models (qwenfit.core.formats.compiled), else the graph is rebuilt here."""
    stored = lookup("*", "host_inputs", (model_key(spec), st.key()))
    if stored is not MISSING:
        return Poly.from_json(stored)
    from qwenfit.core.engines.llama_cpp.graph import GraphSettings, text_graph

    tps, ns, no, kv = (Poly.var(v) for v in VARS)
    env = {"tps": 256, "ns": 1, "no": 1, "kv": 4096}  # any point: the inputs' sizes are polynomials
    gs = GraphSettings(
        n_tokens=Dim(env["tps"], tps * ns), n_seq=Dim(1, ns), n_outputs=Dim(1, no),  # type: ignore[arg-type]
        n_kv=Dim(4096, kv), n_stream=Dim(1, ns), flash_attn=st.flash_attn,  # type: ignore[arg-type]
        type_k=KV_OF_CLASS[st.k], type_v=KV_OF_CLASS[st.v], n_rs_seq=st.n_rs_seq,
    )  # fmt: skip
    leafs, _ = text_graph(spec, gs, mtp_draft=st.mtp_draft)
    total = Poly({})
    for t in leafs:
        if t.flags & 1 and not t.ext:
            total = total + pad_poly(Dim.of(t.nbytes).p, 32)
    remember("*", "host_inputs", (model_key(spec), st.key()), total.to_json())
    return total


def host_compute_closed(
    spec: ModelSpec, st: Structure, *, n_ctx: Num, n_ctx_seq: Num, n_seq: Num, n_copies: Num
) -> tuple[Num, Num]:
    """(host compute buffer, Σ align32(graph inputs)) with every layer and the output on the GPUs:
    ``n_copies`` × the inputs (4 with pipeline parallelism, else 1) + the token embeddings GET_ROWS
    writes on the CPU (the input layer stays in host memory, llama-model.cpp:1603-1605; GET_ROWS is
    never offloaded). Equal to the real ggml-cuda backend on every full-offload run of
    tests/fixtures/llama_memory_gpu (incl. --n-cpu-moe / -ot exps=CPU: their experts run on GPU 0).
    Integer settings are memoised (a plan evaluates many quantizations at one context)."""
    key = (spec, st, n_ctx, n_ctx_seq, n_seq, n_copies)
    ints = all(type(v) is int for v in key[2:])
    if ints and key in _HOST_CLOSED:
        return _HOST_CLOSED[key]
    env = variables(n_ctx, n_ctx_seq, n_seq, st)
    inputs = host_input_poly(spec, st).expr(env)
    emb = pad_poly(Poly.var("tps") * Poly.var("ns") * (4 * spec.text.hidden_size), 32).expr(env)
    if ints:
        if len(_HOST_CLOSED) >= 4096:
            _HOST_CLOSED.clear()
        _HOST_CLOSED[key] = (n_copies * inputs + emb, inputs)
    return n_copies * inputs + emb, inputs


_HOST_CLOSED: dict[tuple[Any, ...], tuple[Num, Num]] = {}
