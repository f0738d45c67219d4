"""ggml's backend scheduler (``ggml_backend_sched``, ggml/src/ggml-backend.cpp, llama.cpp 0c1e570)
replayed on a graph of :mod:`.graph`: which backend runs each node, where the graph is cut into
splits, which tensors are copied between backends, and the graph the allocator then sees.

:func:`schedule` follows ``ggml_backend_sched_split_graph`` (:1066-1605) pass by pass:

1. pass 1 (:1087-1122, ``ggml_backend_sched_backend_id_from_cur`` :895-993): a tensor in a buffer
   (KV cache, recurrent state, weights, and views of them) goes to the highest-priority backend
   that supports its buffer type and op; a graph input to the CPU (the last backend); an op reading
   a weight to the weight's backend, except ROPE and FLASH_ATTN_EXT; with op_offload, an op whose
   weight is in host memory goes to the first backend whose ``offload_op`` wants it.
2. passes 2-4 (:1124-1295): GPU assignments spread down and up to unassigned neighbours (view ops
   skipped, the CPU never spreads), then any backend down and up; leftovers take the backend
   supporting most of their inputs; views and sources take their owner's backend.
3. pass 5 (:1297-1400): a new split where the backend changes, or before a node reading a weight
   another backend holds; every source on an incompatible backend gets ``n_copies`` copies
   (``ggml_dup_tensor_layout``, input+output flagged when n_copies > 1) on the split's backend,
   one per (tensor, backend) for the whole graph.
4. pass 6 (:1402-1440): with pipeline parallelism (n_copies > 1) every graph input gets n_copies
   copies on its own backend.
5. ``graph_optimize`` of each split's backend adds allocation dependencies (:1451-1480; the rules
   per backend in :mod:`.backends`); ``graph_copy`` (:1482-1595) puts, per split, each input's
   dependency view and copy before the split's nodes, the dependency nodes after their ``until``
   node, and with n_copies > 1 all copies as leafs first.

Backends are numbered by priority: the GPUs in device order, the CPU last. The result is the graph
``ggml_gallocr`` allocates, each tensor with the buffer (backend) it goes to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from qwenfit.core.engines.llama_cpp.backends import VIEW_OPS, BackendRules, Dep
from qwenfit.core.engines.llama_cpp.ggml_alloc import GraphTensor

__all__ = ["Schedule", "schedule"]

_NO_WEIGHT_CHOICE = frozenset({"ROPE", "FLASH_ATTN_EXT"})  # ggml-backend.cpp:955-959


@dataclass(slots=True)
class Schedule:
    """The scheduler's result: ``leafs`` / ``nodes`` of graph_copy with the backend of each
    (``leaf_backend`` / ``node_backend``), the splits as (backend, first node, end, inputs), and
    ``assigned``: id(tensor) -> backend of every tensor of the original graph."""

    leafs: list[GraphTensor] = field(default_factory=list)
    leaf_backend: list[int] = field(default_factory=list)
    nodes: list[GraphTensor] = field(default_factory=list)
    node_backend: list[int] = field(default_factory=list)
    splits: list[tuple[int, int, int, list[GraphTensor]]] = field(default_factory=list)
    assigned: dict[int, int] = field(default_factory=dict)


def _owner(t: GraphTensor) -> GraphTensor:
    return t.view_src if t.view_src is not None else t


def schedule(
    leafs: Sequence[GraphTensor],
    nodes: Sequence[GraphTensor],
    rules: Sequence[BackendRules],
    home: Mapping[int, int],
    *,
    n_copies: int = 1,
    op_offload: bool = True,
    min_batch: int = 32,
    fusion: bool = True,
    weight_home: Callable[[GraphTensor], int] | None = None,
    all_inputs: bool = True,
    user: Mapping[int, int] | None = None,
) -> Schedule:
    """Replay ggml_backend_sched_split_graph on a graph. ``rules``: one per backend in priority
    order (the CPU last). ``home``: id(tensor) -> backend whose buffer holds it, for every tensor in
    a buffer (KV cache, recurrent state); ``weight_home`` the same for the weights (host memory is
    the CPU's, index ``len(rules) - 1``). Mutates the graph's sources (copies replace them), as the
    C code does. ``all_inputs`` False: pass 6 of older builds, which gave pipeline copies only to the
    graph inputs a node reads (not the embeddings input of a token batch, nor inputs read through
    views), collected in pass 5's order. ``user``: id(node) -> backend set by the caller before the
    split (llama.cpp's graph callback, ggml_backend_sched_set_tensor_backend)."""
    nb = len(rules)
    cpu = nb - 1
    where: dict[int, int] = dict(home)
    if weight_home is not None:
        for t in leafs:
            if t.weight:
                where[id(t)] = weight_home(t)
    assigned: dict[int, int] = {}

    def buf(t: GraphTensor) -> int | None:  # the backend whose buffer holds t (or its owner)
        o = _owner(t)
        return where.get(id(o)) if o.ext else None

    def supports_op(b: int, t: GraphTensor) -> bool:
        if b == cpu or t.op in VIEW_OPS or t.op == "NONE":
            return True
        if rules[b].check_src_device:  # ggml-cuda.cu:5152-5161: sources in another CUDA device
            for s in t.srcs:
                h = where.get(id(s)) if s.ext and s.view_src is None else None
                if h is not None and h != b and h != cpu:
                    return False
        return True

    def from_buffer(t: GraphTensor, op: GraphTensor) -> int:
        h = buf(t)
        if h is None:
            return -1
        return h if supports_op(h, op) else -1  # only the owner backend supports its buffer type

    def from_cur(t: GraphTensor) -> int:
        b = from_buffer(t, t)
        if b != -1:
            return b
        if buf(t) is not None:
            raise ValueError(f"pre-allocated tensor {t.name} cannot run {t.op}")
        if t.flags & 1:
            return cpu
        if t.op not in _NO_WEIGHT_CHOICE:
            for s in t.srcs:
                if s.weight:
                    sb = from_buffer(s, t)
                    if op_offload and sb == cpu:
                        for g in range(sb):
                            if supports_op(g, t) and rules[g].offload(t, min_batch):
                                return g
                    return sb
        return -1

    def buffer_supported(t: GraphTensor, b: int) -> bool:  # ggml-backend.cpp:1034-1055
        h = buf(t)
        if h is None:
            h = assigned.get(id(t), -1)
            if h == -1 and t.view_src is not None:
                h = assigned.get(id(t.view_src), -1)
            if h == -1:
                return False
        return h == b

    # pass 1 (a node the caller assigned, ggml_backend_sched_set_tensor_backend, keeps its backend)
    user = user or {}
    for t in leafs:
        assigned[id(t)] = from_cur(t)
    for t in nodes:
        assigned[id(t)] = user[id(t)] if id(t) in user else from_cur(t)
    real = [t for t in nodes if t.op not in VIEW_OPS]
    # pass 2: expand GPU backends down and up, then any backend down and up
    for order, skip_cpu in ((real, True), (real[::-1], True), (real, False), (real[::-1], False)):
        cur = -1
        for t in order:
            a = assigned[id(t)]
            if a != -1:
                cur = -1 if skip_cpu and a == cpu else a
            elif cur != -1 and supports_op(cur, t):
                assigned[id(t)] = cur
    # pass 3: unassigned nodes take the backend supporting most of their inputs (the upgrade to a
    # higher-priority backend with the same buffer type never applies: every backend has its own)
    for t in real:
        if assigned[id(t)] != -1:
            continue
        best = -1
        for b in range(nb):
            if supports_op(b, t):
                n = sum(1 for s in t.srcs if (assigned.get(id(s), -1) != -1 or (
                    s.view_src is not None and assigned.get(id(s.view_src), -1) != -1))
                    and buffer_supported(s, b))  # fmt: skip
                if n > best:
                    best, assigned[id(t)] = n, b
    # pass 4: views and sources
    for t in nodes:
        if t.view_src is not None and assigned[id(t)] == -1:
            assigned[id(t)] = assigned.get(id(t.view_src), -1)
        for s in t.srcs:
            if assigned.get(id(s), -1) == -1:
                vs = s.view_src
                assigned[id(s)] = assigned.get(id(vs), -1) if vs is not None else assigned[id(t)]
        if assigned[id(t)] == -1:
            assigned[id(t)] = next(b for b in range(nb) if supports_op(b, t))
    return _split(leafs, nodes, rules, assigned, buffer_supported, n_copies, fusion, all_inputs)


def _dup(t: GraphTensor, backend: int, c: int, n_copies: int) -> GraphTensor:
    """ggml_dup_tensor_layout (ggml-backend.cpp:747-754): same type, shape and strides."""
    nb = t.layout()[2]
    return GraphTensor("NONE", t.type, t.ne, nb=(nb[0], nb[1], nb[2], nb[3]), flags=3 if n_copies > 1 else 0,
                       name=f"{backend}#{t.name}#{c}")  # fmt: skip


def _split(
    leafs: Sequence[GraphTensor],
    nodes: Sequence[GraphTensor],
    rules: Sequence[BackendRules],
    assigned: dict[int, int],
    buffer_supported: Callable[[GraphTensor, int], bool],
    n_copies: int,
    fusion: bool,
    all_inputs: bool = True,
) -> Schedule:
    """Passes 5 and 6, graph_optimize and graph_copy (ggml-backend.cpp:1297-1595)."""
    copies: dict[tuple[int, int], list[GraphTensor]] = {}
    splits: list[tuple[int, int, int, list[GraphTensor]]] = []
    first = next((i for i, t in enumerate(nodes) if t.op not in VIEW_OPS), len(nodes))
    cur = assigned[id(nodes[first])] if first < len(nodes) else len(rules) - 1
    start, inputs = 0, []  # type: ignore[var-annotated]
    consumed: dict[int, GraphTensor] = {}  # graph inputs a node reads, in pass 5's order
    for i in range(first, len(nodes)):
        t = nodes[i]
        if t.op in VIEW_OPS:
            continue
        b = assigned[id(t)]
        new = False
        if b == cur and inputs:  # a weight on another backend: cut, so its copies can be freed
            new = any(s.weight and assigned[id(s)] != cur and not buffer_supported(s, cur) for s in t.srcs)
        if b != cur or new:
            splits.append((cur, start, i, inputs))
            cur, start, inputs = b, i, []
        for j, s in enumerate(t.srcs):
            if s.flags & 1:
                consumed.setdefault(id(s), s)
            if assigned[id(s)] != cur and not buffer_supported(s, cur):
                key = (id(s), cur)
                if key not in copies:
                    copies[key] = [_dup(s, cur, c, n_copies) for c in range(n_copies)]
                    for c in copies[key]:
                        assigned[id(c)] = cur
                    inputs.append(s)
                t.srcs[j] = copies[key][0]
    splits.append((cur, start, len(nodes), inputs))
    graph_inputs: list[GraphTensor] = []
    if n_copies > 1:  # pass 6: the graph inputs' copies on their own backend
        for t in leafs if all_inputs else list(consumed.values()):
            if t.flags & 1:
                b = assigned[id(t)]
                key = (id(t), b)
                if key not in copies:
                    t.flags |= 2
                    copies[key] = [t, *(_dup(t, b, c, n_copies) for c in range(1, n_copies))]
                    for c in copies[key]:
                        assigned[id(c)] = b
                graph_inputs.append(t)
    # graph_optimize: the backend's reorder of each split, then its allocation dependencies
    uses: dict[int, int] = {}
    for t in nodes:
        for s in t.srcs:
            uses[id(s)] = uses.get(id(s), 0) + 1
    if any(rules[b].reorder is not None for b, _, _, _ in splits):
        nodes = list(nodes)
        for b, s0, s1, _ in splits:
            reorder = rules[b].reorder
            if reorder is not None:
                reorder(nodes, s0, s1, uses)
    deps: dict[int, list[GraphTensor]] = {}
    for b, s0, s1, _ in splits:
        hook = rules[b].deps
        if hook is None:
            continue
        dd: list[Dep] = hook(nodes, s0, s1, fusion, uses)
        for kept, until in dd:
            keep = deps.setdefault(id(until), [])
            if all(k is not kept for k in keep):
                keep.append(kept)
    sc = Schedule(splits=splits, assigned=assigned)
    for b, s0, s1, ins in splits:
        for inp in ins:
            dep = GraphTensor("NONE", inp.type, inp.ne, [inp], view_src=_owner(inp), ext=_owner(inp).ext,
                              name=f"{inp.name} (view)")  # fmt: skip
            sc.nodes += [dep, copies[(id(inp), b)][0]]
            sc.node_backend += [assigned[id(inp)], b]
        for j in range(s0, s1):
            t = nodes[j]
            sc.nodes.append(t)
            sc.node_backend.append(assigned[id(t)])
            keep = deps.get(id(t), [])
            for k in range(0, len(keep), 10):  # GGML_MAX_SRC sources per dependency node
                part, o = keep[k : k + 10], _owner(keep[k])
                dep = GraphTensor("NONE", o.type, o.ne, list(part), view_src=o, ext=o.ext, name="dep")
                sc.nodes.append(dep)
                sc.node_backend.append(b)
    if n_copies > 1:
        for t in graph_inputs:
            b = assigned[id(t)]
            sc.leafs += copies[(id(t), b)]
            sc.leaf_backend += [b] * n_copies
        for b, _, _, ins in splits:
            for inp in ins:
                sc.leafs += copies[(id(inp), b)]
                sc.leaf_backend += [b] * n_copies
    for t in leafs:
        sc.leafs.append(t)
        sc.leaf_backend.append(assigned[id(t)])
    return sc
