"""The node order ggml-vulkan runs a split in: ``ggml_vk_graph_optimize`` (ggml-vulkan.cpp:
14663-15047, llama.cpp 0c1e570; since llama.cpp PR #15489) reorders the nodes of every split it is
given so that independent nodes run together, keeping fusion patterns intact. The scheduler calls it
on a view of its own graph (``ggml_graph_view`` shares the node array, ggml-backend.cpp:1474-1479), so
the reordered nodes are what ``graph_copy`` and ggml-alloc see: a node pulled forward is allocated
earlier and its result lives longer, which raises the compute buffer's peak.

:func:`vulkan_reorder` is a line-by-line transcription (patterns from ggml-vulkan-types.h:506-566).
Off with ``GGML_VK_DISABLE_GRAPH_OPTIMIZE``.
"""

from __future__ import annotations

from collections.abc import Sequence

from qwenfit.core.engines.llama_cpp.ggml_alloc import TYPE_SIZE, GraphTensor

__all__ = ["vulkan_reorder"]

_EMPTY = frozenset({"NONE", "RESHAPE", "TRANSPOSE", "VIEW", "PERMUTE"})

# ggml-vulkan-types.h:506-566
_TOPK_EARLY_NORM = (
    "SOFT_MAX",
    "RESHAPE",
    "ARGSORT",
    "VIEW",
    "GET_ROWS",
    "RESHAPE",
    "SUM_ROWS",
    "CLAMP",
    "DIV",
    "RESHAPE",
)
_TOPK_SIGMOID = (
    "UNARY",
    "RESHAPE",
    "ADD",
    "ARGSORT",
    "VIEW",
    "GET_ROWS",
    "RESHAPE",
    "SUM_ROWS",
    "CLAMP",
    "DIV",
    "RESHAPE",
)
_TOPK_SOFTPLUS = (
    "UNARY",
    "SQRT",
    "RESHAPE",
    "ADD",
    "ARGSORT",
    "VIEW",
    "GET_ROWS",
    "RESHAPE",
    "SUM_ROWS",
    "CLAMP",
    "DIV",
    "RESHAPE",
)
_TOPK_EARLY = ("SOFT_MAX", "RESHAPE", "ARGSORT", "VIEW", "GET_ROWS")
_TOPK_LATE = ("ARGSORT", "VIEW", "GET_ROWS", "RESHAPE", "SOFT_MAX", "RESHAPE")
_SNAKE = ("MUL", "SIN", "SQR", "MUL", "ADD")
_QSA = ("GET_ROWS", "PERMUTE", "CONT", "CPY", "RESHAPE", "ADD", "TOP_K")
_RMS_MUL_ADD_MUL = ("RMS_NORM", "MUL", "ADD", "MUL")
_RMS_MUL_ADD = ("RMS_NORM", "MUL", "ADD")
_RMS_MUL_ROPE_SET = ("RMS_NORM", "MUL", "ROPE", "VIEW", "SET_ROWS")
_RMS_VIEW_SET = ("RMS_NORM", "VIEW", "SET_ROWS")
_ROPE_VIEW_SET = ("ROPE", "VIEW", "SET_ROWS")
_HC_POST = ("SCALE", "UNARY", "SCALE", "DSV4_HC_POST")
_TOPK = (_TOPK_EARLY_NORM, _TOPK_SIGMOID, _TOPK_SOFTPLUS, _TOPK_EARLY, _TOPK_LATE)
_KEPT = (_SNAKE, _QSA, _RMS_MUL_ADD_MUL, _RMS_MUL_ADD, _RMS_MUL_ROPE_SET, _RMS_VIEW_SET, _ROPE_VIEW_SET)
_PROTECTED = (
    *_TOPK,
    _SNAKE,
    _RMS_MUL_ADD_MUL,
    _RMS_MUL_ADD,
    _RMS_MUL_ROPE_SET,
    _RMS_VIEW_SET,
    _ROPE_VIEW_SET,
    _HC_POST,
)
# (producer op, consumer op) pairs that may run back to back although dependent (:14868-14876)
_ADJACENT = frozenset(
    {
        ("MUL_MAT", "ADD"),
        ("MUL_MAT_ID", "ADD_ID"),
        ("MUL_MAT_ID", "MUL"),
        ("ADD", "ADD"),
        ("SSM_CONV", "ADD"),
        ("SSM_CONV", "UNARY"),
    }
)
_NUM_TO_CHECK = 20


def _base(t: GraphTensor) -> GraphTensor:
    return t.view_src if t.view_src is not None else t


def _contiguous_1(t: GraphTensor) -> bool:
    """ggml_is_contiguous_1 (ggml.c ggml_is_contiguous_n with n = 1)."""
    typ, ne, nb = t.layout()
    size, blk = TYPE_SIZE[typ]
    if ne[0] != blk and nb[0] != size:
        return False
    nxt = size * ne[0] // blk
    for i in range(1, 4):
        if ne[i] != 1:
            if i > 1:
                if nb[i] != nxt:
                    return False
                nxt *= ne[i]
            else:
                nxt = ne[i] * nb[i]
    return True


def _can_repeat(a: GraphTensor, b: GraphTensor) -> bool:
    """ggml_can_repeat: b's shape is a whole multiple of a's."""
    return all(x > 0 and y % x == 0 for x, y in zip(a.ne, b.ne, strict=True))


def _can_fuse_unary_mul(unary: GraphTensor, mul: GraphTensor) -> bool:
    """ggml_vk_can_fuse_unary_mul (:13422-13450); every unary op of these graphs (silu, sigmoid,
    softplus) has a fused shader (ggml_vk_unary_mul_op_index, :9953-9961)."""
    if unary.type not in ("f32", "f16") or unary.type != mul.type:
        return False
    if not mul.srcs or (mul.srcs[0] is not unary and (len(mul.srcs) < 2 or mul.srcs[1] is not unary)):
        return False
    other = mul.srcs[1] if mul.srcs[0] is unary else mul.srcs[0]
    if other.type != unary.type or not _contiguous_1(other):
        return False
    if not unary.srcs or not _contiguous_1(unary.srcs[0]):
        return False
    return _can_repeat(other, unary) if mul.srcs[0] is unary else _can_repeat(unary, mul.srcs[0])


def vulkan_reorder(
    nodes: list[GraphTensor],
    start: int,
    end: int,
    uses: dict[int, int],
    *,
    unary_mul: bool = True,
    view_alias: bool = True,
) -> None:
    """ggml_vk_graph_optimize's reorder of ``nodes[start:end]`` (one split), in place.

    ``unary_mul``: UNARY + MUL fusion (llama.cpp PR #27220: a UNARY's consuming MUL is pulled
    forward and may follow it although dependent); ``view_alias``: ``is_src_of`` also sees a node
    reading or writing memory through another view of the same tensor (PR #27812). Builds before
    them (every field log, b9849 included) have neither: :mod:`.versions`."""
    g: Sequence[GraphTensor] = nodes[start:end]
    n = len(g)
    used = [False] * n
    used_set: set[int] = set()
    order: list[GraphTensor] = []
    first = 0

    def empty(t: GraphTensor) -> bool:
        return t.op in _EMPTY

    def is_src_of(dst: GraphTensor, src: GraphTensor) -> bool:  # :14676-14698
        ds, ss = dst.srcs, src.srcs
        for s in range(max(len(ds), len(ss))):
            d = ds[s] if s < len(ds) else None
            if d is src:
                return True
            if not view_alias or empty(dst) or empty(src):
                continue
            if d is not None and _base(d) is _base(src):
                return True
            x = ss[s] if s < len(ss) else None
            if x is not None and _base(dst) is _base(x):
                return True
        return _base(dst) is _base(src)

    def empty_or_scheduled(lo: int, hi: int) -> bool:
        return all(used[v] or empty(g[v]) for v in range(lo, hi))

    def match(p: tuple[str, ...], at: int) -> bool:
        return at + len(p) <= n and all(g[at + j].op == op and not used[at + j] for j, op in enumerate(p))

    def keep(p: tuple[str, ...]) -> bool:
        nonlocal first
        if not match(p, first):
            return False
        for j in range(len(p)):
            order.append(g[first + j])
            used_set.add(id(g[first + j]))
            used[first + j] = True
        while first < n and used[first]:
            first += 1
        return True

    def in_qsa(j: int) -> bool:
        return any(j - o >= 0 and match(_QSA, j - o) for o in range(len(_QSA)))

    def set_rows_fusable(rope: int, view: int, set_rows: int) -> bool:
        """ggml_can_fuse_subgraph_ext(graph, {rope, view, set_rows}, 3, ops, {set_rows}, 1)."""
        idx = (rope, view, set_rows)
        sub = {id(g[i]) for i in idx}
        for a, i in enumerate(idx[:2]):
            t = g[i]
            if t.flags & 2:
                return False
            inside = sum(1 for b in idx[a + 1 :] for s in g[b].srcs if s is t)
            if inside != uses.get(id(t), 0):
                return False
            if t.view_src is not None and id(t.view_src) not in sub and not t.view_src.weight:
                return False
        return True

    while first < n:
        if any(match(p, first) for p in _TOPK):  # keep_topk_moe_pattern: deps are added by vulkan_alloc_deps
            keep(next(p for p in _TOPK if match(p, first)))
            continue
        if any(keep(p) for p in _KEPT):
            continue
        if match(_HC_POST, first):
            keep(_HC_POST)
            continue
        cur = [first]
        for j in range(first + 1, min(first + _NUM_TO_CHECK, n)):
            if used[j] or empty(g[j]):
                continue
            if any(match(p, j) for p in _PROTECTED) or in_qsa(j):
                continue
            ok = True
            gj = g[j]
            for c in range(first, j):
                if used[c] or not is_src_of(gj, g[c]):
                    continue
                gc = g[c]
                last = c == cur[-1]
                fused = (gc.op, gj.op) == ("RMS_NORM", "MUL") or (
                    unary_mul and (gc.op, gj.op) == ("UNARY", "MUL")
                )
                if last and fused and empty_or_scheduled(c + 1, j):
                    continue
                if last and j == c + 1 and (gc.op, gj.op) in _ADJACENT:
                    continue
                ok = False
                break
            if not ok:
                continue
            cur.append(j)
            rope = j
            if j > 0 and gj.op == "MUL" and g[j - 1].op == "RMS_NORM":  # RMS_NORM + MUL -> its ROPE
                for k in range(j + 1, min(j + 15, n)):
                    r = g[k]
                    if (
                        r.op == "ROPE"
                        and r.srcs[0] is gj
                        and r.srcs[1].op == "NONE"
                        and (len(r.srcs) < 3 or r.srcs[2].op == "NONE")
                    ):
                        rope = k
                        cur.append(k)
                        used[k] = True
                        break
            if g[rope].op in ("ROPE", "RMS_NORM"):  # ROPE/RMS_NORM + VIEW + SET_ROWS made consecutive
                view = set_rows = -1
                for k in range(rope + 1, min(rope + 15, n)):
                    if used[k]:
                        continue
                    if view == -1 and g[k].op == "VIEW" and g[k].srcs and g[k].srcs[0] is g[rope]:
                        view = k
                        continue
                    if view != -1 and g[k].op == "SET_ROWS" and g[k].srcs[0] is g[view]:
                        set_rows = k
                        break
                if set_rows != -1:
                    pull = set_rows_fusable(rope, view, set_rows)
                    for c in range(rope + 1, set_rows):
                        if not pull:
                            break
                        if not used[c] and c != view and not empty(g[c]) and is_src_of(g[set_rows], g[c]):
                            pull = False
                    if pull:
                        cur += [view, set_rows]
                        used[view] = used[set_rows] = True
            if j > 0 and gj.op == "ADD_ID" and g[j - 1].op == "MUL_MAT_ID":
                _pull(g, j, n, "MUL", cur, used, used_set)
            if j > 0 and gj.op == "ADD" and g[j - 1].op == "MUL_MAT":
                _pull(g, j, n, "ADD", cur, used, used_set)
            if j > 0 and gj.op == "ADD" and g[j - 1].op == "SSM_CONV":
                for k in range(j + 1, min(j + 15, n)):
                    if g[k].op == "UNARY" and g[k].srcs[0] is gj:
                        cur.append(k)
                        used[k] = True
                        break
            if unary_mul and j > 0 and gj.op == "UNARY":  # UNARY + MUL: the consuming MUL pulled forward
                for k in range(j + 1, min(j + 15, n)):
                    mul = g[k]
                    if mul.op != "MUL" or not any(s is gj for s in mul.srcs[:2]):
                        continue
                    other = mul.srcs[1] if mul.srcs[0] is gj else mul.srcs[0]
                    if not (other.op == "NONE" or id(other) in used_set):
                        continue
                    if not _can_fuse_unary_mul(gj, mul):
                        continue
                    cur.append(k)
                    used[k] = True
                    break
        if g[cur[-1]].op != "ADD":  # second pass: view nodes
            for j in range(first + 1, min(first + _NUM_TO_CHECK, n)):
                if used[j] or not empty(g[j]):
                    continue
                if all(used[c] or not is_src_of(g[j], g[c]) or c in cur for c in range(first, j)):
                    cur.append(j)
        for c in cur:
            order.append(g[c])
            used_set.add(id(g[c]))
            used[c] = True
        while first < n and used[first]:
            first += 1
    nodes[start:end] = order


def _pull(
    g: Sequence[GraphTensor], j: int, n: int, op: str, cur: list[int], used: list[bool], used_set: set[int]
) -> None:
    """MUL_MAT_ID + ADD_ID + MUL and MUL_MAT + ADD + ADD (:14937-14969): the next ``op`` reading
    node j whose other source is a weight or already scheduled."""
    for k in range(j + 1, min(j + 15, n)):
        t = g[k]
        ready = len(t.srcs) > 1 and (t.srcs[1].op == "NONE" or id(t.srcs[1]) in used_set)
        if t.op == op and t.srcs[0] is g[j] and ready:
            cur.append(k)
            used[k] = True
            break
