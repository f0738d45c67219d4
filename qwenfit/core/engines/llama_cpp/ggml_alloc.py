"""ggml's graph allocator (``ggml/src/ggml-alloc.c``, llama.cpp 0c1e570) replayed in Python.

A compute buffer in llama.cpp is the high-water mark of ``ggml_gallocr`` over one graph: the graph's
tensors are placed, in graph order, into one growing buffer by a best-fit free-list allocator,
freed as soon as their last consumer has run, and reused in place by element-wise ops. The size
depends on the node order, every tensor's size, the views and the in-place rules, so it is
reproduced here to the byte rather than approximated: :func:`graph_alloc_bytes` replays
``ggml_gallocr_alloc_graph_impl`` (ggml-alloc.c:718-823) with ``ggml_gallocr_allocate_node``
(:623-689, in-place reuse of a parent's memory), ``ggml_gallocr_free_node`` (:691-710) and the
dynamic allocator ``ggml_dyn_tallocr`` (:121-352: best fit among all free blocks but the last, else
the last block, which grows the buffer; 32-byte alignment on the CPU backend, ``TENSOR_ALIGNMENT``
ggml-impl.h:44). The CPU buffer type has no maximum size, so there is one chunk.

Used by :mod:`qwenfit.core.engines.llama_cpp.vision` (clip.cpp's vision graph) and
:mod:`qwenfit.core.engines.llama_cpp.graph` (the text model's worst-case graph); both rebuild
llama.cpp's graph node for node (checked against the graphs llama.cpp itself builds, row for row:
:func:`graph_rows` / :func:`graph_digest`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qwenfit.core.formats.dtypes import GGML_TYPES

__all__ = [
    "CPU_ALIGNMENT",
    "INPLACE_OPS",
    "TYPE_SIZE",
    "AllocResult",
    "BufferType",
    "GraphBuilder",
    "GraphTensor",
    "alloc_events",
    "allocate_buffers",
    "allocate_graph",
    "graph_alloc_bytes",
    "graph_digest",
    "graph_rows",
]

CPU_ALIGNMENT = 32  # ggml-impl.h:44 TENSOR_ALIGNMENT; ggml_backend_cpu_buffer_type_get_alignment

# ggml type -> (bytes per block, elements per block) (ggml.c type_traits)
TYPE_SIZE: dict[str, tuple[int, int]] = {
    "f32": (4, 1), "f16": (2, 1), "bf16": (2, 1), "i32": (4, 1), "i64": (8, 1), "i16": (2, 1), "i8": (1, 1),
    "q8_0": (34, 32), "q4_0": (18, 32), "q4_1": (20, 32), "q5_0": (22, 32), "q5_1": (24, 32),
    "iq4_nl": (18, 32),
}  # fmt: skip
for _t in GGML_TYPES.values():  # every other ggml type (weights the scheduler copies)
    TYPE_SIZE.setdefault(_t.name.lower(), (_t.type_size, _t.block_size))

# ggml-alloc.c:22-50 ggml_op_can_inplace
INPLACE_OPS = frozenset({
    "FILL", "SCALE", "DIAG_MASK_ZERO", "DIAG_MASK_INF", "ADD", "ADD_ID", "ADD1", "SUB", "MUL", "DIV",
    "SQR", "SQRT", "LOG", "UNARY", "ROPE", "ROPE_BACK", "SILU_BACK", "RMS_NORM", "RMS_NORM_BACK",
    "CLAMP", "SOFT_MAX", "SOFT_MAX_BACK",
})  # fmt: skip


def _align(n: int, a: int) -> int:
    return -(-n // a) * a


def row_bytes(typ: str, n: int) -> int:
    """ggml_row_size: bytes of ``n`` elements of ``typ`` (``n`` a multiple of the block size)."""
    size, block = TYPE_SIZE[typ]
    return size * n // block


@dataclass(eq=False, slots=True)
class GraphTensor:
    """One tensor of a ggml graph as the graph allocator sees it.

    ``op``: the ggml op name (``ggml_op_name``: ``UNARY``/``GLU`` for all unary/gated ops, which is
    what the in-place rule looks at). ``srcs``: the sources that are graph tensors (weights may be
    omitted: they live in the weights buffer, so ggml-alloc never allocates or frees them); a tensor
    may list itself (``ggml_cast``'s self-reference, ggml.c:3628). ``view_src``: the tensor whose
    memory a view (RESHAPE, VIEW, PERMUTE, TRANSPOSE, in-place ops) aliases; views are never
    allocated. ``ext``: memory set outside the graph allocator (weights, KV cache and recurrent
    state, and views of them). ``flags``: ggml's INPUT=1 / OUTPUT=2. ``nb``: strides when not
    contiguous (views); None = contiguous. ``weight``: a model weight (external, in a buffer of usage
    WEIGHTS: the scheduler runs the op that reads it where it lives, ggml-backend.cpp:962-990)."""

    op: str
    type: str
    ne: tuple[int, int, int, int]
    srcs: list[GraphTensor] = field(default_factory=list)
    view_src: GraphTensor | None = None
    flags: int = 0
    ext: bool = False
    name: str = ""
    nb: tuple[int, int, int, int] | None = None
    weight: bool = False

    @property
    def nbytes(self) -> int:
        """ggml_nbytes of a contiguous tensor (the only kind the allocator places); 0 if a dim is 0."""
        ne0, ne1, ne2, ne3 = self.ne
        if ne0 <= 0 or ne1 <= 0 or ne2 <= 0 or ne3 <= 0:
            return 0
        return row_bytes(self.type, ne0) * ne1 * ne2 * ne3

    def layout(self) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
        """(type, ne, nb) for ggml_are_same_layout."""
        if self.nb is not None:
            return self.type, self.ne, self.nb
        size, block = TYPE_SIZE[self.type]
        nb = [size, size * self.ne[0] // block]
        nb.append(nb[-1] * self.ne[1])
        nb.append(nb[-1] * self.ne[2])
        return self.type, self.ne, tuple(nb)


class GraphBuilder:
    """A graph's leafs and nodes in ggml's depth-first order (ggml_build_forward_expand /
    ggml_visit_parents_graph, ggml.c:7245-7352: sources left to right, a tensor after its sources,
    each tensor once; op NONE -> leaf). The vision and text graph builders extend it with their ops."""

    def __init__(self) -> None:
        self.leafs: list[GraphTensor] = []
        self.nodes: list[GraphTensor] = []
        self._seen: set[int] = set()

    def expand(self, root: GraphTensor) -> None:
        if id(root) in self._seen:
            return
        self._seen.add(id(root))
        stack: list[tuple[GraphTensor, int]] = [(root, 0)]
        while stack:
            t, i = stack[-1]
            if i < len(t.srcs):
                stack[-1] = (t, i + 1)
                s = t.srcs[i]
                if id(s) not in self._seen:
                    self._seen.add(id(s))
                    stack.append((s, 0))
                continue
            stack.pop()
            (self.leafs if t.op == "NONE" else self.nodes).append(t)


# ------------------------------------------------------------------------------------------------
# ggml_dyn_tallocr, one chunk
# ------------------------------------------------------------------------------------------------


class _DynAlloc:
    """ggml_dyn_tallocr (ggml-alloc.c:121-352) with a single chunk: the CPU buffer type has no max size.
    ``blocks``: the free list [offset, size], sorted by offset; the last block is the open end."""

    __slots__ = ("alignment", "blocks", "live", "max_size", "peak", "track")

    def __init__(self, alignment: int, track: bool) -> None:
        self.alignment = alignment
        self.blocks: list[list[int]] = [[0, 1 << 62]]
        self.max_size = 0
        self.track = track
        self.live: dict[int, tuple[GraphTensor, int, int]] = {}
        self.peak: list[tuple[GraphTensor, int, int]] = []

    def alloc(self, t: GraphTensor, size: int) -> int:  # ggml_dyn_tallocr_alloc, ggml-alloc.c:202-309
        size = _align(size, self.alignment)
        blocks = self.blocks
        best, best_size = -1, 0
        for i in range(len(blocks) - 1):  # best fit among all blocks but the last (ties: the later one)
            bs = blocks[i][1]
            if bs >= size and (best == -1 or bs <= best_size):
                best, best_size = i, bs
        if best == -1:  # else the last block, which grows the chunk
            best = len(blocks) - 1
        b = blocks[best]
        addr = b[0]
        b[0] += size
        b[1] -= size
        if b[1] == 0:
            del blocks[best]
        if self.track:
            self.live[id(t)] = (t, addr, size)
        if addr + size > self.max_size:
            self.max_size = addr + size
            if self.track:
                self.peak = sorted(self.live.values(), key=lambda x: x[1])
        return addr

    def free(self, addr: int, size: int) -> None:  # ggml_dyn_tallocr_free_bytes, ggml-alloc.c:312-350
        _free_block(self.blocks, addr, _align(size, self.alignment))


def _free_block(blocks: list[list[int]], addr: int, size: int) -> None:
    """Return ``size`` bytes at ``addr`` to the free list ``blocks`` ([offset, size], sorted): merged
    with the block that ends or starts there (and that block with its neighbour), else inserted in
    order (ggml_dyn_tallocr_free_bytes, ggml-alloc.c:312-350)."""
    for i, b in enumerate(blocks):
        if b[0] + b[1] == addr:
            b[1] += size
            if i < len(blocks) - 1 and b[0] + b[1] == blocks[i + 1][0]:
                b[1] += blocks[i + 1][1]
                del blocks[i + 1]
            return
        if addr + size == b[0]:
            b[0] = addr
            b[1] += size
            if i > 0 and blocks[i - 1][0] + blocks[i - 1][1] == b[0]:
                blocks[i - 1][1] += b[1]
                del blocks[i]
            return
    pos = 0
    while pos < len(blocks) and blocks[pos][0] < addr:
        pos += 1
    blocks.insert(pos, [addr, size])


@dataclass(slots=True)
class _HashNode:
    n_children: int = 0
    n_views: int = 0
    allocated: bool = False


# One step of the allocator: ("A", i) place tensor i; ("I", i, j) tensor i takes tensor j's memory in
# place; ("F", i) free tensor i. ``i``/``j`` index the list of placed tensors (see alloc_events).
Event = tuple[str, int, int]


def alloc_events(leafs: list[GraphTensor], nodes: list[GraphTensor]) -> tuple[list[GraphTensor], list[Event]]:
    """The order of allocations, in-place reuses and frees ``ggml_gallocr_alloc_graph_impl``
    (ggml-alloc.c:718-823) performs on this graph: it depends on the graph's structure only (children
    and view counts, op, layouts, flags), not on where the tensors land. Returns the tensors the
    allocator places (own memory, not views or external) and the events, tensors by index.
    ``ggml_gallocr_allocate_node`` (:623-689) lets an in-place op take its parent's memory when it is
    the parent's only consumer, has the same layout and the parent is neither an output nor
    external; ``ggml_gallocr_free_node`` (:691-710) never frees outputs."""
    hn: dict[int, _HashNode] = {}
    index: dict[int, int] = {}
    placed: list[GraphTensor] = []
    events: list[Event] = []

    def h(t: GraphTensor) -> _HashNode:
        x = hn.get(id(t))
        if x is None:
            x = hn[id(t)] = _HashNode()
        return x

    def allocate(t: GraphTensor) -> None:
        x = h(t)
        if t.ext or x.allocated or t.view_src is not None:
            return
        x.allocated = True
        i = index[id(t)] = len(placed)
        placed.append(t)
        if t.op in INPLACE_OPS:
            for p in t.srcs:
                px = h(p)
                if not px.allocated:  # ggml_gallocr_is_own: views and external memory are never reused
                    continue
                if p.flags & 2 or (p.view_src is not None and p.view_src.flags & 2):  # outputs: not reused
                    continue
                if p.layout() != t.layout():
                    continue
                if px.n_children == 1 and px.n_views == 0:
                    px.allocated = False
                    events.append(("I", i, index[id(p)]))
                    return
        events.append(("A", i, -1))

    def free(t: GraphTensor) -> None:
        if t.flags & 2:  # graph outputs are never freed
            return
        events.append(("F", index[id(t)], -1))
        h(t).allocated = False

    for t in leafs:
        allocate(t)
    for t in nodes:
        if t.view_src is not None and t.op != "NONE":
            h(t.view_src).n_views += 1
        if t.flags & 1:
            allocate(t)
        for p in t.srcs:
            h(p).n_children += 1
            if p.flags & 1:
                allocate(p)
    for t in nodes:
        for p in t.srcs:
            allocate(p)
        allocate(t)
        for p in t.srcs:
            px = h(p)
            px.n_children -= 1
            if px.n_children == 0 and px.n_views == 0:
                if p.view_src is not None:
                    vx = h(p.view_src)
                    vx.n_views -= 1
                    if vx.n_views == 0 and vx.n_children == 0 and vx.allocated:
                        free(p.view_src)
                elif px.allocated:
                    free(p)
    return placed, events


@dataclass(frozen=True, slots=True)
class AllocResult:
    """``size``: the buffer ggml_gallocr_reserve sizes. ``offsets``: where each placed tensor went
    (id(tensor) -> (tensor, offset)), ``peak``: the tensors live when the high-water mark was last
    raised, as (tensor, offset, aligned size) sorted by offset (both only with ``track=True``)."""

    size: int
    offsets: dict[int, tuple[GraphTensor, int]]
    peak: list[tuple[GraphTensor, int, int]]


def allocate_graph(
    leafs: list[GraphTensor], nodes: list[GraphTensor], *, alignment: int = CPU_ALIGNMENT, track: bool = False
) -> AllocResult:
    """A replay of ``ggml_gallocr_alloc_graph_impl`` (ggml-alloc.c:718-823): the events of
    :func:`alloc_events` placed by the best-fit dynamic allocator (:121-352). An in-place child
    takes its parent's address (every in-place op here has its parent's size, so
    ``ggml_gallocr_free_extra_space`` frees nothing)."""
    placed, events = alloc_events(leafs, nodes)
    da = _DynAlloc(alignment, track)
    addr = [0] * len(placed)
    sizes = [_align(t.nbytes, alignment) for t in placed]
    for kind, i, j in events:
        t = placed[i]
        if kind == "A":
            addr[i] = da.alloc(t, sizes[i])
        elif kind == "I":
            addr[i] = addr[j]
            if sizes[j] > sizes[i]:  # ggml_gallocr_free_extra_space (:598-621)
                da.free(addr[i] + sizes[i], sizes[j] - sizes[i])
            if track:
                da.live.pop(id(placed[j]), None)
                da.live[id(t)] = (t, addr[i], sizes[i])
        else:
            if track:
                da.live.pop(id(t), None)
            da.free(addr[i], sizes[i])
    offsets = {id(t): (t, addr[i]) for i, t in enumerate(placed)} if track else {}
    return AllocResult(da.max_size, offsets, da.peak)


def graph_alloc_bytes(
    leafs: list[GraphTensor],
    nodes: list[GraphTensor],
    *,
    alignment: int = CPU_ALIGNMENT,
    peak: list[tuple[GraphTensor, int, int]] | None = None,
) -> int:
    """The buffer ggml_gallocr_reserve sizes for this graph (:func:`allocate_graph`). If ``peak`` is
    given it receives the tensors live at the high-water mark as (tensor, offset, size)."""
    res = allocate_graph(leafs, nodes, alignment=alignment, track=peak is not None)
    if peak is not None:
        peak[:] = res.peak
    return res.size


def graph_rows(leafs: list[GraphTensor], nodes: list[GraphTensor]) -> list[str]:
    """The allocator-relevant content of a graph, one row per tensor it can place (weights and views
    of weights left out), in graph order: op, type, shape, input flag, view owner and sources, tensors
    named by their row. Two graphs with the same rows get the same buffer from ggml-alloc."""
    keep = [t for t in leafs + nodes if not t.ext]
    index = {id(t): i for i, t in enumerate(keep)}
    rows = []
    for i, t in enumerate(keep):
        vs = index[id(t.view_src)] if t.view_src is not None else -1
        srcs = ",".join(str(index[id(s)]) for s in t.srcs if id(s) in index)
        rows.append(f"{i} {t.op} {t.type} {','.join(map(str, t.ne))} in={t.flags & 1} view={vs} src={srcs}")
    return rows


def graph_digest(leafs: list[GraphTensor], nodes: list[GraphTensor]) -> str:
    """sha256 of :func:`graph_rows` (the fixtures record it for the graphs llama.cpp builds)."""
    return hashlib.sha256("\n".join(graph_rows(leafs, nodes)).encode()).hexdigest()


# ------------------------------------------------------------------------------------------------
# several buffers (one per backend of a split graph), each with its own buffer type
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BufferType:
    """What ggml-alloc asks a buffer type: alignment, ``get_alloc_size`` and the largest buffer
    (``max_size`` None: no limit, one chunk; else ``ggml_dyn_tallocr`` splits the buffer into chunks
    of at most that size, ggml-alloc.c:121-177, 366-375)."""

    alignment: int
    alloc_size: Callable[[GraphTensor], int]
    max_size: int | None = None


class _Chunks:
    """ggml_dyn_tallocr (ggml-alloc.c:121-352) with chunks: ``chunks`` per chunk [max_size, free
    blocks [offset, size] sorted by offset]; addresses are (chunk, offset)."""

    __slots__ = ("alignment", "chunks", "max_chunk")

    def __init__(self, alignment: int, max_size: int | None) -> None:
        self.alignment = alignment
        self.max_chunk = (1 << 63) - 1 if max_size is None else max_size
        self.chunks: list[list[Any]] = []

    def _new_chunk(self, min_size: int) -> int:  # ggml_dyn_tallocr_new_chunk (:160-177)
        size = max(min_size, self.max_chunk)
        if len(self.chunks) == 15:  # GGML_VBUFFER_MAX_CHUNKS - 1: the last one is unbounded
            size = (1 << 63) - 1
        self.chunks.append([0, [[0, size]]])
        return len(self.chunks) - 1

    def alloc(self, size: int) -> tuple[int, int]:  # ggml_dyn_tallocr_alloc (:202-309)
        size = _align(size, self.alignment)
        best_c, best_b, best_size = -1, -1, 1 << 64
        for c, (_, blocks) in enumerate(self.chunks):
            best_size = 1 << 64
            for i in range(len(blocks) - 1):
                if blocks[i][1] >= size and blocks[i][1] <= best_size:
                    best_c, best_b, best_size = c, i, blocks[i][1]
        if best_b == -1:
            best_reuse = -(1 << 63)
            for c, (top, blocks) in enumerate(self.chunks):
                if blocks:
                    last = blocks[-1]
                    reuse = top - last[0] - size
                    better_reuse = best_reuse < 0 and reuse > best_reuse
                    better_fit = reuse >= 0 and reuse < best_reuse
                    if last[1] >= size and (better_reuse or better_fit):
                        best_c, best_b, best_reuse = c, len(blocks) - 1, reuse
        if best_b == -1:
            best_c, best_b = self._new_chunk(size), 0
        chunk = self.chunks[best_c]
        block = chunk[1][best_b]
        addr = block[0]
        block[0] += size
        block[1] -= size
        if block[1] == 0:
            del chunk[1][best_b]
        chunk[0] = max(chunk[0], addr + size)
        return best_c, addr

    def free(self, where: tuple[int, int], size: int) -> None:  # ggml_dyn_tallocr_free_bytes (:312-350)
        c, addr = where
        _free_block(self.chunks[c][1], addr, _align(size, self.alignment))

    def sizes(self) -> list[int]:
        return [c[0] for c in self.chunks]


def allocate_buffers(
    leafs: list[GraphTensor],
    nodes: list[GraphTensor],
    buffer_of: dict[int, int],
    bufts: list[BufferType],
) -> list[list[int]]:
    """ggml_gallocr_alloc_graph_impl with ``node_buffer_ids`` / ``leaf_buffer_ids`` (ggml-alloc.c:
    718-823): one dynamic allocator per buffer, each tensor placed in its buffer (``buffer_of``:
    id(tensor) -> buffer index) with that buffer type's alloc size and alignment; an in-place child
    takes its parent's memory and gives back the difference when it asks less
    (ggml_gallocr_free_extra_space, :598-621). Returns each buffer's chunk sizes (the buffer
    ggml_gallocr_reserve sizes is their sum)."""
    placed, events = alloc_events(leafs, nodes)
    allocs = [_Chunks(b.alignment, b.max_size) for b in bufts]
    where: list[tuple[int, int]] = [(0, 0)] * len(placed)
    owner = [buffer_of[id(t)] for t in placed]
    sizes = [bufts[owner[i]].alloc_size(t) for i, t in enumerate(placed)]
    for kind, i, j in events:
        if kind == "A":
            where[i] = allocs[owner[i]].alloc(sizes[i])
        elif kind == "I":
            owner[i] = owner[j]
            where[i] = where[j]
            a = bufts[owner[j]].alignment
            extra = _align(sizes[j], a) - _align(sizes[i], a)
            if extra > 0:
                allocs[owner[j]].free((where[j][0], where[j][1] + _align(sizes[i], a)), extra)
        else:
            allocs[owner[i]].free(where[i], sizes[i])
    return [a.sizes() for a in allocs]
