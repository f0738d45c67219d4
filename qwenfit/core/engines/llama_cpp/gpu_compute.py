"""llama.cpp's compute buffer on every device of a GPU (or CPU) setup: each GPU and the host.

:func:`device_compute_buffers` rebuilds the worst-case graph of ``sched_reserve`` with its weights
(:mod:`.graph`), places the weights, KV cache and recurrent state as ``load_tensors`` and the
memory modules do, replays the backend scheduler (:mod:`.sched`: node assignment, splits, copies,
pipeline-parallel copies, op offload of host weights, the backend's fusion dependencies) and
ggml's graph allocator with one buffer per backend (:func:`.ggml_alloc.allocate_buffers`, each with
its backend's alignment, ``get_alloc_size`` and chunk size from :mod:`.backends`).

Checked against the real ggml-cuda backend (tests/fixtures/llama_memory_gpu, 234 runs of llama.cpp
0c1e570, main and MTP draft contexts: tests/engines/test_llama_gpu_compute.py). ROCm is the CUDA
code; Metal and Vulkan are from source only (:mod:`.backends`).

Where things go (llama.cpp 0c1e570):

- backends: the model's GPUs in order, then the CPU; the CPU's buffer type is the first GPU's host
  buffer type (CUDA_Host, Vulkan_Host; plain CPU with Metal) (llama-context.cpp:360-420);
- pipeline parallelism (n_copies 4) iff more than one GPU, every layer and the output offloaded,
  split mode layer, KV offloaded, no tensor override (-ot, --n-cpu-moe) and every GPU reporting
  async + events (llama-context.cpp:429-457);
- ``token_embd`` always in host memory (llama-model.cpp:1603-1605), the output layer (``output``,
  ``output_norm``) on the device of layer ``n_layer_all`` (:1613-1614), a layer's weights, KV cache
  and recurrent state on its device (llama-kv-cache.cpp:217, llama-memory-recurrent.cpp:88; host
  memory with -nkvo), routed experts of --n-cpu-moe / -ot exps=CPU layers in host memory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import Any

from qwenfit.core.engines.llama_cpp.backends import (
    BACKENDS,
    BackendRules,
    cuda_alloc_size_no_fa,
    metal_alloc_size_no_fa,
)
from qwenfit.core.engines.llama_cpp.cells import context_cells
from qwenfit.core.engines.llama_cpp.ggml_alloc import TYPE_SIZE, BufferType, GraphTensor, allocate_buffers
from qwenfit.core.engines.llama_cpp.graph import GraphSettings, reserve_settings, text_graph
from qwenfit.core.engines.llama_cpp.sched import schedule
from qwenfit.core.engines.llama_cpp.versions import (
    graph_alloc_deps,
    sched_all_inputs,
    vk_unary_mul,
    vk_view_alias,
)
from qwenfit.core.engines.llama_cpp.vulkan_order import vulkan_reorder
from qwenfit.core.expr import as_int
from qwenfit.core.model.spec import ModelSpec

__all__ = [
    "HOST",
    "DeviceSetup",
    "ScheduledGraph",
    "backend_rules",
    "device_compute_buffers",
    "host_buffer_name",
    "pipeline_parallel",
    "scheduled_graph",
]

HOST = "host"  # the CPU backend's compute buffer (CUDA_Host, Vulkan_Host, Metal's CPU)
_LAYER = re.compile(r"^blk\.(\d+)\.")
_EXPS = re.compile(r"\.ffn_(up|down|gate|gate_up)_(ch|)exps")  # common.h LLM_FFN_EXPS_REGEX
_CACHE = re.compile(r"^cache_[kvrs]_l(\d+)$")
_NORM = re.compile(r"^norm-(\d+)$")


@dataclass(frozen=True, slots=True)
class DeviceSetup:
    """Where the model sits. ``layer_device``: the device of each layer 0..n_layer_all - 1 and, last,
    of the output layer (:class:`.layout.LlamaLayout` ``layer_device``; "cpu" = host); ``gpus``: the
    model's GPUs in backend order (LlamaLayout ``devices`` without "cpu"); ``host_expert_layers``:
    layers whose routed experts are in host memory (--n-cpu-moe N: 0..N-1; -ot exps=CPU: all);
    ``backend``: cuda / rocm / metal / vulkan / cpu; ``split_mode``: layer / none / row (row is
    treated as none: the main GPU); ``tensor_override``: any -ot / --n-cpu-moe (turns pipeline
    parallelism off even when it matches nothing); ``offload_kqv`` False = -nkvo; ``fusion`` False
    = GGML_CUDA_DISABLE_FUSION=1; ``op_offload`` False = --no-op-offload; ``min_batch``:
    GGML_OP_OFFLOAD_MIN_BATCH."""

    layer_device: tuple[str, ...]
    gpus: tuple[str, ...]
    host_expert_layers: frozenset[int] = frozenset()
    backend: str = "cuda"
    split_mode: str = "layer"
    tensor_override: bool = False
    offload_kqv: bool = True
    fusion: bool = True
    op_offload: bool = True
    min_batch: int = 32
    fa_workspace: bool = True  # flash attention's scratch in the buffer (CUDA: PR #23907; Metal: estimated)
    build: int | None = None  # the llama.cpp build (None: the modelled tree)
    measure: bool = False  # a no_alloc measurement (llama-fit-params, --fit's dry run, the fake-GPU probe)


def backend_rules(setup: DeviceSetup) -> BackendRules:
    """The GPU backend's rules in ``setup.build``: no allocation dependencies from ``graph_optimize``
    before llama.cpp PR #27301 (the hook had no way to add them), the Vulkan reorder without the
    UNARY + MUL fusion (PR #27220) and the view-alias dependencies (PR #27812) before those."""
    rules = BACKENDS[setup.backend]
    b = setup.build
    if not graph_alloc_deps(b):
        rules = replace(rules, deps=None)
    if rules.reorder is not None:
        rules = replace(
            rules, reorder=partial(vulkan_reorder, unary_mul=vk_unary_mul(b), view_alias=vk_view_alias(b))
        )
    return rules


def pipeline_parallel(setup: DeviceSetup) -> bool:
    """llama-context.cpp:429-457: more than one device, all layers and the output offloaded, split
    mode layer, KV offloaded, no tensor override, and async + events on every device."""
    return (
        len(setup.gpus) > 1
        and "cpu" not in setup.layer_device
        and setup.split_mode == "layer"
        and setup.offload_kqv
        and not setup.tensor_override
        and BACKENDS[setup.backend].pipeline
    )


def _weight_info(weights: Any) -> dict[str, tuple[str, tuple[int, ...], int]]:
    """GGUF name -> (ggml type, ggml shape, bytes) from a WeightMap or a mapping of the same."""
    if weights is None:
        return {}
    if isinstance(weights, (Mapping, tuple)):
        return dict(weights)
    out = {}
    for t in weights.tensors:
        if t.gguf_name:
            out[t.gguf_name] = (t.type.lower(), tuple(reversed(t.shape)), t.bytes)
    return out


@dataclass(slots=True)
class ScheduledGraph:
    """The graph ggml-alloc sees after the scheduler, with a buffer per backend: ``leafs`` /
    ``nodes`` of graph_copy, ``buffer_of`` id(tensor) -> buffer, ``bufts`` per buffer (the GPUs, then
    the host), ``names`` the device of each buffer (the GPUs' names, then "host")."""

    leafs: list[GraphTensor]
    nodes: list[GraphTensor]
    buffer_of: dict[int, int]
    bufts: list[BufferType]
    names: list[str]
    host_extra: int


def scheduled_graph(
    spec: ModelSpec, setup: DeviceSetup, gs: GraphSettings, *, mtp_draft: bool = False, weights: Any = None
) -> ScheduledGraph:
    """The reserved graph of ``gs`` (ints, or :class:`.compute.Dim` for the closed forms) placed and
    split by the scheduler (:func:`.sched.schedule`); see :func:`device_compute_buffers`."""
    gpus = setup.gpus[:1] if setup.split_mode != "layer" else setup.gpus
    layer_device = tuple(d if d == "cpu" or d in gpus else gpus[0] for d in setup.layer_device)
    leafs, nodes = text_graph(spec, gs, mtp_draft=mtp_draft)
    cpu = len(gpus)
    index = {g: i for i, g in enumerate(gpus)}
    index["cpu"] = cpu
    info = _weight_info(weights)

    def device_of_layer(il: int) -> int:
        return index[layer_device[il]] if il < len(layer_device) - 1 else index[layer_device[-1]]

    def weight_home(t: GraphTensor) -> int:
        name = t.name
        if name == "token_embd.weight":
            return cpu
        m = _LAYER.match(name)
        if m is None:  # output, output_norm
            return index[layer_device[-1]]
        il = int(m.group(1))
        if il in setup.host_expert_layers and _EXPS.search(name):
            return cpu
        return device_of_layer(il)

    home: dict[int, int] = {}
    for t in leafs:
        m = _CACHE.match(t.name)
        if t.ext and m is not None:
            home[id(t)] = device_of_layer(int(m.group(1))) if setup.offload_kqv else cpu
        if t.weight:
            w = info.get(t.name) or (info.get("token_embd.weight") if t.name == "output.weight" else None)
            if w is not None and w[0] in TYPE_SIZE:
                t.type, t.ne = w[0], (*w[1], 1, 1, 1, 1)[:4]  # type: ignore[assignment]
    rules: list[BackendRules] = [backend_rules(setup)] * len(gpus) + [BACKENDS["cpu"]]
    user: dict[int, int] = {}
    if not setup.measure and ("cpu" not in setup.layer_device or gs.n_tokens < 32):
        # llama_context::graph_get_cb: a layer's "norm" (build_norm's rms_norm) is set to the layer's
        # device with full offload or a batch under 32 tokens (llama-context.cpp:2643-2656). A no_alloc
        # measurement loses it: ggml_backend_sched_reserve_size resets the scheduler before the split
        # (ggml-backend.cpp:1977-1989), ggml_backend_sched_reserve does not (:1991-2006)
        for t in nodes:
            m = _NORM.match(t.name) if t.op == "RMS_NORM" else None
            if m is not None:
                user[id(t)] = device_of_layer(int(m.group(1)))
    sc = schedule(
        leafs, nodes, rules, home, n_copies=4 if pipeline_parallel(setup) else 1, op_offload=setup.op_offload,
        min_batch=setup.min_batch, fusion=setup.fusion, weight_home=weight_home,
        all_inputs=sched_all_inputs(setup.build), user=user,
    )  # fmt: skip
    gpu_rules = BACKENDS[setup.backend]
    alloc_size = gpu_rules.alloc_size
    if not setup.fa_workspace and gpu_rules.name in ("cuda", "rocm"):
        alloc_size = cuda_alloc_size_no_fa
    elif not setup.fa_workspace and gpu_rules.name == "metal":
        alloc_size = metal_alloc_size_no_fa
    bufts = [BufferType(gpu_rules.alignment, alloc_size, gpu_rules.max_size)] * len(gpus)
    if gpus:
        bufts.append(
            BufferType(gpu_rules.host_alignment, BACKENDS["cpu"].alloc_size, gpu_rules.host_max_size)
        )
    else:
        bufts.append(BufferType(32, BACKENDS["cpu"].alloc_size))
    buffer_of = {id(t): b for t, b in zip(sc.leafs, sc.leaf_backend, strict=True)}
    buffer_of.update((id(t), b) for t, b in zip(sc.nodes, sc.node_backend, strict=True))
    return ScheduledGraph(sc.leafs, sc.nodes, buffer_of, bufts, [*gpus, HOST],
                          gpu_rules.host_extra if gpus else 0)  # fmt: skip


def device_compute_buffers(
    spec: ModelSpec,
    setup: DeviceSetup,
    *,
    context: int,
    n_seq: int = 1,
    n_ubatch: int = 512,
    n_outputs_max: int,
    flash_attn: bool = True,
    type_k: str = "f16",
    type_v: str = "f16",
    kv_unified: bool = False,
    n_rs_seq: int = 0,
    mtp_draft: bool = False,
    weights: Any = None,
    mask_f32: bool = False,
    h_nextn_output: bool = True,
    gdn_l2_op: bool = False,
    kv_rot: bool = True,
    gdn_fused: bool = True,
) -> dict[str, int]:
    """The compute buffer llama.cpp reserves on each device: ``{gpu name: bytes, ..., "host": bytes}``
    (GPU names as in ``setup.gpus``; a GPU with nothing to do reports 0).

    ``context``: tokens per sequence (llama.cpp's -c is ``context * n_seq``); ``n_outputs_max``: the
    output rows one batch may ask for (library / llama-cli / fit-params: n_batch; llama-server:
    min(n_batch, n_parallel * (1 + n_draft)); the MTP draft context: n_parallel); ``n_rs_seq``: extra
    recurrent rows per sequence (MTP partial rollback: the draft length; Qwen3.5 main context only);
    ``mtp_draft``: the MTP draft context's graph (its KV in f16 unless -ctkd/-ctvd). ``weights``: a
    :class:`~qwenfit.core.formats.weights.WeightMap` (or GGUF name -> (type, ggml shape, bytes), as a
    mapping or a tuple of pairs): the
    bytes of host weights the scheduler copies to GPU 0 (op offload); without it those copies count
    the weights as F32 of the graph's shapes."""
    cells, per = (as_int(x) for x in context_cells(context * n_seq, n_seq, kv_unified=kv_unified))
    if spec.family == "qwen3_next" or mtp_draft:
        n_rs_seq = 0
    gs = reserve_settings(
        n_ctx=cells, n_ctx_seq=per, n_seq=n_seq, kv_unified=kv_unified, n_ubatch=n_ubatch,
        n_outputs_max=n_outputs_max, flash_attn=flash_attn, type_k=type_k, type_v=type_v, n_rs_seq=n_rs_seq,
        mask_f32=mask_f32, h_nextn_output=h_nextn_output, gdn_l2_op=gdn_l2_op, kv_rot=kv_rot,
        gdn_fused=gdn_fused,
    )  # fmt: skip
    try:
        hash(weights)
    except TypeError:  # a plain mapping: not cached
        return dict(_buffers.__wrapped__(spec, setup, gs, mtp_draft, weights))
    return dict(_buffers(spec, setup, gs, mtp_draft, weights))


@lru_cache(maxsize=2048)  # a pure function of its arguments; the planner asks for the same points often
def _buffers(
    spec: ModelSpec, setup: DeviceSetup, gs: GraphSettings, mtp_draft: bool, weights: Any
) -> dict[str, int]:
    if gs.gdn_fused and not mtp_draft and "cpu" in setup.layer_device and setup.gpus:
        gs = replace(gs, gdn_fused=_fused_gdn_resolves(spec, setup, gs, weights))
    g = scheduled_graph(spec, setup, gs, mtp_draft=mtp_draft, weights=weights)
    chunks = allocate_buffers(g.leafs, g.nodes, g.buffer_of, g.bufts)
    out = {name: sum(c) for name, c in zip(g.names, chunks, strict=True)}
    out[HOST] += g.host_extra * len(chunks[-1])
    for gpu in setup.gpus:
        out.setdefault(gpu, 0)
    return out


_GDN_CH_PROBE_TOKENS = 16  # llm_fused_op_gdn_ch_probe.n_tokens_per_seq (llama-context.cpp:54-58)


def _fused_gdn_resolves(spec: ModelSpec, setup: DeviceSetup, gs: GraphSettings, weights: Any) -> bool:
    """llama_context::resolve_fused_ops for the chunked fused Gated DeltaNet (llama-context.cpp:
    505-565): a graph of 16 tokens per sequence is reserved and the op stays enabled only if every
    layer's GATED_DELTA_NET node runs on the device of its layer. With layers in host memory, the
    scheduler can move a host layer's op to a GPU (op offload of its matmuls at >= 32 tokens, then
    the expansion passes), which disables the fused op for the whole context."""
    n = _GDN_CH_PROBE_TOKENS * gs.n_seq
    probe = replace(gs, n_tokens=n, n_outputs=n)
    g = scheduled_graph(spec, setup, probe, weights=weights)
    gpus = setup.gpus[:1] if setup.split_mode != "layer" else setup.gpus
    index = {d: i for i, d in enumerate(gpus)}
    for t in g.nodes:
        if t.op == "GATED_DELTA_NET":
            il = int(t.name.rsplit("-", 1)[1])
            dev = setup.layer_device[il]
            want = len(gpus) if dev == "cpu" else index.get(dev, 0)
            if g.buffer_of[id(t)] != want:
                return False
    return True


def host_buffer_name(setup: DeviceSetup) -> str:
    """How llama.cpp logs the host compute buffer: CUDA_Host, ROCm_Host, Vulkan_Host, CPU (Metal, no GPU)."""
    return BACKENDS[setup.backend].host_name if setup.gpus else "CPU"
