"""What each ggml backend tells llama.cpp's scheduler and graph allocator (llama.cpp 0c1e570).

One :class:`BackendRules` per backend kind: the compute buffer's alignment and largest chunk, the
bytes ``get_alloc_size`` asks for a tensor, whether the backend runs an op (``supports_op``),
whether it wants an op whose weight lives in host memory (``offload_op``), and the allocation
dependencies its ``graph_optimize`` hook adds. :mod:`.sched` and :mod:`.gpu_compute` use them.

Measured (CUDA, scripts/README-fake-gpu.md, tests/fixtures/llama_memory_gpu): every rule of
``cuda`` below is the host-side code of ggml-cuda run for real against a fake runtime. ROCm builds
the same ggml-cuda sources (ggml/src/ggml-hip/CMakeLists.txt globs ../ggml-cuda/*.cu), so ``rocm``
is ``cuda``; its flash-attention kernel choice for AMD (fattn.cu:631-706) differs, but for a
prompt batch every branch picks a kernel that needs F16 K/V, as on NVIDIA. Metal and Vulkan are
read from the source only (not measured): ``metal`` and ``vulkan`` below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qwenfit.core.engines.llama_cpp.ggml_alloc import TYPE_SIZE, GraphTensor
from qwenfit.core.engines.llama_cpp.vulkan_order import vulkan_reorder

__all__ = [
    "BACKENDS",
    "VIEW_OPS",
    "BackendRules",
    "cuda_alloc_deps",
    "cuda_alloc_size_no_fa",
    "ggml_nbytes",
    "metal_alloc_deps",
    "metal_alloc_size_no_fa",
    "vulkan_alloc_deps",
]

VIEW_OPS = frozenset({"VIEW", "RESHAPE", "PERMUTE", "TRANSPOSE"})  # ggml-backend.cpp:757-759
_QUANT = frozenset(k for k, (_, blk) in TYPE_SIZE.items() if blk > 1)
GIB = 1 << 30

# a dependency a backend adds: (tensor kept alive, the node until which it is kept)
Dep = tuple[GraphTensor, GraphTensor]


def ggml_nbytes(t: GraphTensor) -> int:
    """ggml_nbytes (ggml.c): the bytes spanned by a tensor with its strides (a strided view spans
    more than its elements)."""
    if min(t.ne) <= 0:
        return 0
    typ, ne, nb = t.layout()
    size, blk = TYPE_SIZE[typ]
    n = ne[0] * nb[0] // blk if blk > 1 else size
    if blk == 1:
        n += (ne[0] - 1) * nb[0]
    return n + sum((ne[i] - 1) * nb[i] for i in range(1, 4))


def _pad(n: int, a: int) -> int:
    return -(-n // a) * a


def _nel(t: GraphTensor) -> int:
    return t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]


# ------------------------------------------------------------------------------------------------
# get_alloc_size
# ------------------------------------------------------------------------------------------------


def _cuda_alloc_size(t: GraphTensor) -> int:
    """ggml_backend_cuda_buffer_type_get_alloc_size (ggml-cuda.cu:903-919): flash attention adds F16
    copies of K and V (each 128-aligned) when the kernel it picks needs F16 and they are not F16
    (fattn.cu:722-756, fattn-common.cuh:53-85; llama.cpp PR #23907, before it the copies came from
    the CUDA pool at run time); quantized rows are padded to MATRIX_ROW_PADDING = 512 elements
    (common.cuh:186)."""
    return cuda_alloc_size(t, fa_workspace=True)


def cuda_alloc_size_no_fa(t: GraphTensor) -> int:
    """:func:`_cuda_alloc_size` of builds before llama.cpp PR #23907 (no flash-attention workspace)."""
    return cuda_alloc_size(t, fa_workspace=False)


def cuda_alloc_size(t: GraphTensor, *, fa_workspace: bool) -> int:
    size = ggml_nbytes(t)
    if t.op == "FLASH_ATTN_EXT" and fa_workspace:
        q, k, v = t.srcs[0], t.srcs[1], t.srcs[2]
        # ggml_cuda_get_best_fattn_kernel (fattn.cu:541-706): with tensor cores (Turing and newer;
        # AMD MFMA/WMMA alike for a batch) more than one Q row per stream gets the MMA or tile
        # kernel, both F16; the vector kernel (one row) converts only F32 K/V
        mma = q.ne[1] > 1
        if (mma and k.type != "f16") or k.type == "f32":
            size = _pad(size, 128) + _nel(k) * 2
        if (mma and v.type != "f16") or v.type == "f32":
            size = _pad(size, 128) + _nel(v) * 2
    if t.type in _QUANT and t.ne[0] % 512:
        size += TYPE_SIZE[t.type][0] * (512 - t.ne[0] % 512) // TYPE_SIZE[t.type][1]
    return size


def metal_alloc_size_no_fa(t: GraphTensor) -> int:
    """:func:`_metal_alloc_size` without the flash-attention scratch: what the field logs of builds
    b8999-b9222 show (estimated: the change that added the scratch to the compute buffer is not
    identified; qwenfit takes CUDA's boundary, :mod:`.versions`)."""
    if t.op == "FLASH_ATTN_EXT":
        return ggml_nbytes(t)
    return _metal_alloc_size(t)


def _metal_alloc_size(t: GraphTensor) -> int:
    """ggml_backend_metal_buffer_type_get_alloc_size (ggml-metal.cpp:220-252) with the scratch sizes
    of ggml-metal-ops.cpp:2650-2674 (MUL_MAT_ID) and :2949-3229 (FLASH_ATTN_EXT, always reserved for
    the non-vec kernel; the sparse index list is off: llama.cpp sets no n_kv_max hint)."""
    size = ggml_nbytes(t)
    if t.op == "MUL_MAT_ID":  # tpe + ids + amax (N_MM_NPART_AMAX = 256)
        n_exp, ids = t.srcs[0].ne[2], t.srcs[2]
        return size + 4 * n_exp + 4 * n_exp * ids.ne[1] + 8 + 256 * 4
    if t.op == "FLASH_ATTN_EXT":
        q, k, v = t.srcs[0], t.srcs[1], t.srcs[2]
        mask = t.srcs[3] if len(t.srcs) > 3 else None
        kv_f16 = q.ne[1] >= 32 and k.type in ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0")
        nb11 = 2 * k.ne[0] if kv_f16 else k.layout()[2][1]
        nb21 = 2 * v.ne[0] if kv_f16 else v.layout()[2][1]
        m = 2 * mask.ne[1] * mask.ne[2] * mask.ne[3] if mask is not None else 0
        size += 64 * (nb11 * k.ne[2] * k.ne[3] + nb21 * v.ne[2] * v.ne[3] + m)  # pad (NCPSG 64)
        if mask is not None:  # blk (NQPSG 8, NCPSG 64; vec: 1, 32)
            nq, nc = (1, 32) if q.ne[1] < 20 and q.ne[0] % 32 == 0 else (8, 64)
            size += _pad(-(-q.ne[1] // nq) * -(-mask.ne[0] // nc) * mask.ne[2] * mask.ne[3], 32)
        size += 4 * min(q.ne[1], 32) * q.ne[2] * q.ne[3] * 32 * (v.ne[0] + 2)  # tmp
        size += _pad(2 * _nel(k), 16) + _pad(2 * _nel(v), 16)  # kv_f16, always reserved
        return size
    if t.op in ("CUMSUM", "ARGSORT"):
        return 2 * size
    if t.op == "TOP_K":
        return 8 * _nel(t.srcs[0])
    return size


# ------------------------------------------------------------------------------------------------
# supports_op / offload_op
# ------------------------------------------------------------------------------------------------


def _batch(t: GraphTensor, rope: bool) -> int:
    """get_op_batch_size (ggml-cuda.cu:5636-5649; Metal ggml-metal.cpp:761-770 has no GET_ROWS /
    ROPE case; Vulkan ggml-vulkan-debug.cpp:766-779 is CUDA's)."""
    if t.op == "GET_ROWS" and rope:
        return 0
    if t.op == "MUL_MAT":
        return t.ne[1]
    if t.op == "MUL_MAT_ID" or (rope and t.op in ("ROPE", "ROPE_BACK")):
        return t.ne[2]
    return t.ne[1] * t.ne[2] * t.ne[3]  # ggml_nrows


def _offload_cuda(t: GraphTensor, min_batch: int) -> bool:
    """ggml_backend_cuda_device_offload_op (ggml-cuda.cu:5651-5655; min batch 32, env
    GGML_OP_OFFLOAD_MIN_BATCH, :5825-5850). Vulkan: ggml-vulkan.cpp:15973-15977, the same."""
    return _batch(t, True) >= min_batch


def _offload_metal(t: GraphTensor, min_batch: int) -> bool:
    """ggml_backend_metal_device_offload_op (ggml-metal.cpp:774-780): matmuls only."""
    return t.op in ("MUL_MAT", "MUL_MAT_ID") and _batch(t, False) >= min_batch


# ------------------------------------------------------------------------------------------------
# the rules per backend kind
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackendRules:
    """One backend kind. ``alignment`` / ``max_size``: its compute buffer type (max_size None = one
    chunk); ``host_*``: the buffer type llama.cpp gives the CPU backend next to it (the first
    GPU's host buffer type, llama-context.cpp:411-420); ``host_name`` how llama.cpp logs it;
    ``host_extra``: bytes a host buffer allocation adds to each chunk; ``check_src_device``: the
    op is refused when a source sits in another device's buffer (CUDA: ggml-cuda.cu:5152-5161);
    ``pipeline``: the device reports async + events (llama-context.cpp:437-457)."""

    name: str
    alignment: int
    alloc_size: Callable[[GraphTensor], int]
    offload: Callable[[GraphTensor, int], bool]
    deps: Callable[[Sequence[GraphTensor], int, int, bool, dict[int, int]], list[Dep]] | None
    max_size: int | None = None
    host_name: str = "CPU"
    host_alignment: int = 32
    host_max_size: int | None = None
    host_extra: int = 0
    check_src_device: bool = False
    pipeline: bool = True
    measured: bool = False
    reorder: Callable[[list[GraphTensor], int, int, dict[int, int]], None] | None = None


def _nbytes_only(t: GraphTensor) -> int:
    return ggml_nbytes(t)


# ------------------------------------------------------------------------------------------------
# graph_optimize: allocation dependencies
# ------------------------------------------------------------------------------------------------


def _can_fuse(
    nodes: Sequence[GraphTensor],
    i: int,
    end: int,
    ops: Sequence[str],
    outputs: set[int],
    uses: dict[int, int],
) -> bool:
    """ggml_can_fuse_subgraph (ggml-impl.h:736-754, ggml.c:7769-7826): the op sequence, and every
    node but the outputs used only inside the subgraph (and not a graph output)."""
    if i + len(ops) > end:
        return False
    ids = {id(nodes[i + j]) for j in range(len(ops))}
    for j, op in enumerate(ops):
        n = nodes[i + j]
        if n.op != op:
            return False
        if i + j in outputs:
            continue
        if n.flags & 2:
            return False
        inside = sum(1 for k in range(j + 1, len(ops)) for s in nodes[i + k].srcs if s is n)
        if inside != uses.get(id(n), 0):
            return False
        if n.view_src is not None and id(n.view_src) not in ids and not n.view_src.ext:
            return False
    return True


_TOPK = ("SOFT_MAX", "RESHAPE", "ARGSORT", "VIEW", "GET_ROWS")
_NORM = ("RESHAPE", "SUM_ROWS", "CLAMP", "DIV", "RESHAPE")


def cuda_alloc_deps(
    nodes: Sequence[GraphTensor], start: int, end: int, fusion: bool, uses: dict[int, int]
) -> list[Dep]:
    """ggml_backend_cuda_graph_optimize (ggml-cuda.cu:4522-4612) on the split ``nodes[start:end]``
    (a graph view: the node after the split is still reachable, as in C); the fused MoE
    weighted reduction keeps the experts' output and the router weights alive until the last ADD
    (ggml_cuda_match_moe_weighted_reduction, :3044-3148); the fused top-k routing keeps its nodes
    and their sources until the node after the chain (ggml_cuda_topk_moe_fusion, :2813-2960, with
    add_alloc_deps(i, i + n) taking node i + n). GGML_CUDA_DISABLE_FUSION=1 turns both off."""
    deps: list[Dep] = []
    if not fusion:
        return deps
    i = start
    n_nodes = end
    while i < n_nodes:
        node = nodes[i]
        m = _moe_reduction(nodes, i, end, uses)
        if m is not None:
            experts, weights, dst, count = m
            deps += [(experts, dst), (weights, dst)]
            i += count - 1
            node = nodes[i]
        if node.op == "SOFT_MAX" and len(node.srcs) == 1:  # no mask: ggml_cuda_should_use_topk_moe
            ops = list(_TOPK)
            if tuple(n.op for n in nodes[i + 5 : i + 10]) == _NORM:
                ops += _NORM
            n_exp = node.ne[0]
            if (
                _topk_edges(nodes, i, len(ops), end)
                and _can_fuse(nodes, i, end, ops, {i + 3, i + len(ops) - 1}, uses)
                and (((n_exp & (n_exp - 1)) == 0 and n_exp <= 512) or n_exp in (288, 576))
                and i + len(ops) < len(nodes)
            ):
                until = nodes[i + len(ops)]
                for k in range(i, i + len(ops)):
                    deps.append((nodes[k], until))
                    deps += [(s, until) for s in nodes[k].srcs]
                i += len(ops) - 1
        i += 1
    return deps


def _topk_edges(nodes: Sequence[GraphTensor], i: int, n: int, end: int) -> bool:
    """The src links ggml_cuda_topk_moe_fusion checks (softmax -> reshape, argsort(probs), view,
    get_rows(reshape, view), and the normalisation chain)."""
    if i + n > end:
        return False
    sm, rs, ar, vw, gr = nodes[i : i + 5]
    ok = rs.srcs[0] is sm and ar.srcs[0] is sm and vw.srcs[0] is ar and gr.srcs[0] is rs and gr.srcs[-1] is vw
    if ok and n > 5:
        r1, su, cl, dv, r2 = nodes[i + 5 : i + 10]
        ok = (r1.srcs[0] is gr and su.srcs[0] is r1 and cl.srcs[0] is su and dv.srcs[0] is r1
              and dv.srcs[1] is cl and r2.srcs[0] is dv)  # fmt: skip
    return ok


def _moe_reduction(
    nodes: Sequence[GraphTensor], i: int, end: int, uses: dict[int, int]
) -> tuple[GraphTensor, GraphTensor, GraphTensor, int] | None:
    """ggml_cuda_match_moe_weighted_reduction (ggml-cuda.cu:3044-3148), the one-MUL form:
    MUL(experts [h, k, n], weights [1, k, n]), k VIEWs, k-1 ADDs (2 <= k <= 15)."""
    first = nodes[i]
    if first.op != "MUL" or len(first.srcs) != 2:
        return None
    experts, weights = first.srcs
    if experts.ne != first.ne or weights.ne[0] != 1 or weights.ne[1:] != first.ne[1:]:
        return None
    k = first.ne[1]
    if not 2 <= k <= 15:
        return None
    count = 2 * k
    if i + count > end:
        return None
    views = [nodes[i + 1 + j] for j in range(k)]
    adds = [nodes[i + 1 + k + j] for j in range(k - 1)]
    if any(v.op != "VIEW" or v.srcs[0] is not first for v in views):
        return None
    prev = views[0]
    for j, a in enumerate(adds):
        if a.op != "ADD" or a.srcs[0] is not prev or a.srcs[1] is not views[j + 1]:
            return None
        prev = a
    ops = ["MUL", *(["VIEW"] * k), *(["ADD"] * (k - 1))]
    if not _can_fuse(nodes, i, end, ops, {i + count - 1}, uses):
        return None
    return experts, weights, adds[-1], count


# Metal's fusion table (ggml-metal-fusion.cpp:627-701): op sequences matched on ops alone
# (ggml_metal_fusion_match_raw_pattern, :704-718); the longest match at each node wins.
_METAL_PATTERNS: tuple[tuple[str, ...], ...] = (
    ("RMS_NORM", "MUL"), ("RMS_NORM", "MUL", "ADD"), ("RMS_NORM", "SCALE"),
    *(tuple(["ADD"] * n) for n in range(2, 8)),
    ("GATED_DELTA_NET", "CPY"), ("SSM_CONV", "UNARY"),
    _TOPK, (*_TOPK, "SCALE"), (*_TOPK, *_NORM), (*_TOPK, *_NORM, "SCALE"),  # ggml-metal-fusion.cpp:332-345
    *(tuple(["MUL", *(["VIEW"] * k), *(["ADD"] * (k - 1))]) for k in range(2, 9)),
)  # fmt: skip


def _pattern_deps(nodes: Sequence[GraphTensor], i: int, n: int, last: int) -> list[Dep]:
    """Keep every external input of nodes i..i+n-1 alive until node ``last``
    (ggml-metal-fusion.cpp:720-740, ggml-vulkan.cpp add_pattern_alloc_deps)."""
    seen: set[int] = set()
    out: list[Dep] = []
    for j in range(n):
        node = nodes[i + j]
        for s in node.srcs:
            if id(s) not in seen:
                seen.add(id(s))
                out.append((s, nodes[last]))
        seen.add(id(node))
    return out


def metal_alloc_deps(
    nodes: Sequence[GraphTensor], start: int, end: int, fusion: bool, uses: dict[int, int]
) -> list[Dep]:
    """ggml_metal_fusion_add_alloc_deps (ggml-metal-fusion.cpp:742-764), from source only. Not
    modelled: the concurrency reorder ggml_graph_optimize then applies (ggml-metal-common.cpp:
    453-510, on unless GGML_METAL_GRAPH_OPTIMIZE_DISABLE), which moves nodes within a split."""
    deps: list[Dep] = []
    i = start
    while i < end:
        best = max((p for p in _METAL_PATTERNS if tuple(n.op for n in nodes[i : min(i + len(p), end)]) == p),
                   key=len, default=None)  # fmt: skip
        if best is not None:
            deps += _pattern_deps(nodes, i, len(best), i + len(best) - 1)
            i += len(best) - 1
        i += 1
    return deps


_VK_TOPK = (
    ("SOFT_MAX", "RESHAPE", "ARGSORT", "VIEW", "GET_ROWS", "RESHAPE", "SUM_ROWS", "CLAMP", "DIV", "RESHAPE"),
    ("SOFT_MAX", "RESHAPE", "ARGSORT", "VIEW", "GET_ROWS"),
)


def vulkan_alloc_deps(
    nodes: Sequence[GraphTensor], start: int, end: int, fusion: bool, uses: dict[int, int]
) -> list[Dep]:
    """ggml_vk_graph_optimize (ggml-vulkan.cpp:14663-14790), from source only: the top-k MoE
    patterns keep their external inputs alive until the last node of the pattern (or a trailing
    SCALE). The reorder it applies to the other nodes is :func:`.vulkan_order.vulkan_reorder` (run
    first, by the scheduler: the patterns stay contiguous)."""
    deps: list[Dep] = []
    i = start
    while i < end:
        for p in _VK_TOPK:
            if tuple(n.op for n in nodes[i : min(i + len(p), end)]) == p:
                last = i + len(p) - 1
                if last + 1 < end and nodes[last + 1].op == "SCALE":
                    last += 1
                deps += _pattern_deps(nodes, i, len(p), last)
                i += len(p) - 1
                break
        i += 1
    return deps


BACKENDS: dict[str, BackendRules] = {
    "cuda": BackendRules(
        "cuda",
        128,
        _cuda_alloc_size,
        _offload_cuda,
        cuda_alloc_deps,
        host_name="CUDA_Host",
        check_src_device=True,
        measured=True,
    ),
    # ggml-hip compiles ggml-cuda (ggml/src/ggml-hip/CMakeLists.txt): the same host code
    "rocm": BackendRules(
        "rocm",
        128,
        _cuda_alloc_size,
        _offload_cuda,
        cuda_alloc_deps,
        host_name="ROCm_Host",
        check_src_device=True,
    ),
    # ggml-metal.cpp:269-273, 345-349 (alignment 32), 220-252 (alloc size); no host buffer type
    # (caps.host_buffer false, :689-695): the CPU backend keeps the plain CPU buffer type
    "metal": BackendRules("metal", 32, _metal_alloc_size, _offload_metal, metal_alloc_deps),
    # ggml-vulkan.cpp:13034-13048: minStorageBufferOffsetAlignment (64 assumed: the largest common
    # value), nbytes, chunks of suballocation_block_size = 1 GiB (:4210-4218); Vulkan_Host:
    # minMemoryMapAlignment (64 assumed), 1 GiB chunks, +32 B per allocation (:13069, 13093-13100)
    "vulkan": BackendRules(
        "vulkan",
        64,
        _nbytes_only,
        _offload_cuda,
        vulkan_alloc_deps,
        max_size=GIB,
        host_name="Vulkan_Host",
        host_alignment=64,
        host_max_size=GIB,
        host_extra=32,
        reorder=vulkan_reorder,
    ),
    "cpu": BackendRules("cpu", 32, _nbytes_only, _offload_cuda, None, measured=True),
}
