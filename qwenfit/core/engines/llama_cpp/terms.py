"""llama.cpp's memory terms per device, from the weight sums of a layout (:mod:`.layout`).

One function, :func:`llama_terms`, for every llama.cpp front end (llama-server, Ollama, LM Studio).
Its inputs may be formula variables (:mod:`qwenfit.core.expr`): the calculator export and the
planner's fast path trace it. Sources: llama.cpp 0c1e570 ``llama_context`` / ``load_tensors``
(:mod:`.memory`, :mod:`.layout`), checked by ``tests/fixtures/llama_memory``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from qwenfit.core.engines.base import EXACT
from qwenfit.core.engines.llama_cpp.layout import WEIGHT_ALIGNMENT, LlamaLayout
from qwenfit.core.engines.llama_cpp.memory import (
    llama_context,
    llama_kv_bytes_per_cell,
    llama_recurrent_bytes_per_cell,
)
from qwenfit.core.engines.llama_cpp.versions import (
    build_number,
    cuda_fa_workspace,
    gdn_fused,
    gdn_l2_op,
    h_nextn_output,
    kq_mask_f32,
    kv_rotation,
    server_limits_outputs,
)
from qwenfit.core.expr import Expr, Num, as_int, at, lt, smax, where
from qwenfit.core.formats.compiled import TENSOR_TABLE
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import Term
from qwenfit.core.units import GIB
from qwenfit.errors import LeftOut

if TYPE_CHECKING:
    from qwenfit.core.engines.base import Deployment
    from qwenfit.core.engines.llama_cpp.options import LlamaCppOptions

__all__ = [
    "DELTA_BACKENDS",
    "DRAFT_COMPUTE",
    "delta_backend",
    "delta_key",
    "gguf_tensor_table",
    "llama_terms",
]

SRC = "llama.cpp 0c1e570 (tests/fixtures/llama_memory)"
PLACE = "llama.cpp 0c1e570 load_tensors placement (qwenfit.core.engines.llama_cpp.layout)"


def outputs_reserved(d: Deployment, o: LlamaCppOptions) -> Num:
    """Logit rows llama_context reserves (``n_outputs_max``): llama-server's limit
    ``min(n_batch, n_parallel x (1 + n_draft))`` (server-context.cpp server_output_limits, from PR #23861:
    :mod:`.versions`), else the whole batch (the library default, llama-cli of old builds, fit-params)."""
    if o.server and server_limits_outputs(build_number(o.engine_version)):
        rows = d.sequences * (1 + (o.draft_tokens if d.mtp else 0))
        return rows if isinstance(rows, Expr) else min(o.batch, rows)  # traced: slots stay under -b
    return o.batch


def llama_terms(
    spec: ModelSpec, d: Deployment, o: LlamaCppOptions, inputs: Mapping[str, Any], layout: LlamaLayout,
    *, keeps_fit_margin: bool,
) -> list[Term]:  # fmt: skip
    """llama.cpp's terms per device. ``inputs``: the weight sums of ``layout``
    (:func:`.layout.llama_weight_env`: ``w:<dev>``, ``exps:<dev>``, ``exps_max:<dev>``, ``w:vision``),
    ``reserve`` (the backend's per-GPU context) and ``scheme`` (the weights' name, for details).
    ``keeps_fit_margin``: the front end runs ``--fit`` (Ollama does not)."""
    kv = d.kv_cache or "f16"
    if kv not in ("f16", "f32", "bf16") and not o.flash_attention:
        raise ValueError(f"a quantized V cache ({kv}) needs flash attention (llama-context.cpp)")
    n_ctx = d.context * d.sequences  # -c counts every slot
    draft_kv = o.draft_kv_cache or "f16"
    n_out = outputs_reserved(d, o)
    gpus = [dev for dev in layout.devices if dev != "cpu"]
    n_cpu_moe = o.n_cpu_moe
    kw: dict[str, Any] = {
        "n_ctx": n_ctx, "n_seq": d.sequences, "kv_unified": o.kv_unified, "type_k": kv, "type_v": kv,
        "n_ubatch": o.ubatch, "flash_attn": o.flash_attention, "mtp": d.mtp, "draft_tokens": o.draft_tokens,
        "draft_type": draft_kv, "n_outputs_max": n_out,
    }  # fmt: skip
    ctx = llama_context(spec, **kw, with_compute=False)
    closed = bool(gpus) and _closed_form(spec, d, o, ctx, n_cpu_moe)
    replay = bool(gpus) and not closed and EXACT.get()  # a search (planner) takes the fast form below
    if not replay or "cpu" in layout.layer_device or not o.kv_offload:  # the CPU graph's buffer is used
        ctx = llama_context(spec, **kw)
    t = spec.text
    scheme = inputs.get("scheme", "")
    if not isinstance(n_cpu_moe, Expr) and not 0 <= n_cpu_moe <= layout.n_layer_all:
        raise ValueError(f"n_cpu_moe must be between 0 and {layout.n_layer_all}, got {n_cpu_moe}")
    offloaded = {dev: at(inputs[f"exps:{dev}"], n_cpu_moe) for dev in gpus}  # expert bytes moved to the CPU
    # one cell of one layer: the decoder's full-attention layers in -ctk/-ctv, the MTP draft layer
    # in the draft context's own types (f16); their sum over the layers is ctx.kv_bytes_per_cell
    trunk_kv = llama_kv_bytes_per_cell(spec, kv, kv, layers=1)
    draft_kv_cell = llama_kv_bytes_per_cell(spec, draft_kv, draft_kv, layers=1)
    rs_layer = llama_recurrent_bytes_per_cell(spec) // max(1, t.n_linear_attention)
    terms: list[Term] = []
    for dev in layout.devices:
        layers = layout.layers_on(dev)
        n_trunk = sum(1 for i in layers if i < t.num_hidden_layers and t.layer_types[i] == "full_attention")
        n_draft = sum(1 for i in layers if i >= t.num_hidden_layers) if d.mtp else 0
        n_full = n_trunk + n_draft
        n_lin = sum(1 for i in layers if i < t.num_hidden_layers and t.layer_types[i] != "full_attention")
        w = inputs[f"w:{dev}"]
        if dev == "cpu":
            w = w + sum(offloaded.values()) if offloaded else w
            detail = "token embedding (llama.cpp keeps the input layer on the CPU)"
            if len(layers):
                detail += f", {len(layers)} layer(s)"
            if gpus and t.is_moe:
                detail += f", routed experts of the first {n_cpu_moe} layer(s) (--n-cpu-moe)"
        else:
            w = w - offloaded[dev]
            detail = f"{len(layers)} layer(s)" + (" + output" if layout.output_device == dev else "")
        align = 32 if dev == "cpu" else WEIGHT_ALIGNMENT.get(d.backend, 32)
        detail += f"; tensors aligned to {align} B"
        terms.append(Term("weights", dev, w, not inputs.get("w:estimated"), PLACE, f"{scheme}: {detail}"))
        cache_dev = dev if o.kv_offload else "cpu"  # -nkvo: KV and recurrent state in host memory
        if n_full:
            kv_bytes = ctx.n_ctx * (n_trunk * trunk_kv + n_draft * draft_kv_cell)
            terms.append(Term("kv_cache", cache_dev, kv_bytes, True, SRC,
                              f"{ctx.n_ctx} cells ({d.sequences} stream(s) of {ctx.n_ctx_seq}), {kv}, "
                              f"{n_full} full-attention layer(s)"))  # fmt: skip
        if n_lin:
            rows = ctx.recurrent_rows
            terms.append(Term("recurrent_state", cache_dev, rows * rs_layer * n_lin, True, SRC,
                              f"{rows} row(s) x {n_lin} Gated DeltaNet layer(s), F32"))  # fmt: skip
    last = gpus[-1] if gpus else "cpu"
    terms.append(Term("output_buffer", "cpu", ctx.output_bytes, True, SRC,
                      f"logits for {d.sequences} output(s)"))  # fmt: skip
    if d.mtp:  # the first decode grows the output buffer by the hidden states the MTP draft reads
        terms.append(Term("mtp_output", "cpu", t.hidden_size * o.batch * 4, True, SRC,
                          f"the MTP draft's hidden-state inputs for a batch of {o.batch} (F32)"))  # fmt: skip
    if not gpus:
        compute = ctx.compute_bytes + ctx.draft_compute_bytes
        terms.append(Term("compute_buffer", "cpu", compute, d.backend == "cpu",
                          "ggml's allocator over llama.cpp's worst-case graph (exact on the CPU backend: "
                          "tests/fixtures/llama_memory)" + ("" if d.backend == "cpu" else " (estimated)"),
                          f"ubatch {o.ubatch}, flash attention {'on' if o.flash_attention else 'off'}"
                          + (", + MTP draft graph" if d.mtp else "")))  # fmt: skip
    elif closed:
        terms += _closed_compute_terms(spec, d, o, ctx, inputs, layout, gpus, n_cpu_moe)
    elif replay:
        terms += _replayed_compute_terms(spec, d, o, ctx, inputs, layout, gpus, kv, draft_kv)
    else:
        terms += _search_compute_terms(spec, d, o, ctx, inputs, layout, gpus, n_cpu_moe)
    if d.vision:
        from qwenfit.core.engines.llama_cpp.vision import mmproj_compute_bytes

        tower = inputs["w:vision"]
        terms.append(Term("vision", last, tower, True, "mmproj GGUF tensor bytes", "vision encoder weights"))
        if spec.vision is not None:
            cpu = d.backend == "cpu"
            terms.append(Term(
                "vision_compute", last, mmproj_compute_bytes(spec, flash_attn=o.flash_attention), cpu,
                "clip.cpp graph replayed through ggml's allocator (tests/fixtures/vision_memory: 0 B error "
                "on 364 CPU reservations)"
                + ("" if cpu else f"; {d.backend} reserves the same graph (estimated)"),
                "the largest image the preprocessor allows (4096 tokens)",
            ))  # fmt: skip
    if gpus:
        for dev in gpus:
            terms.append(Term("runtime_reserve", dev, inputs["reserve"], False,
                              "backend context: CUDA context ~128-256 MiB + cuBLAS workspace "
                              "(docs/concepts.md#runtime_reserve)",
                              "estimated"))  # fmt: skip
            if o.fit_margin and keeps_fit_margin:
                terms.append(Term("fit_margin", dev, GIB, True, "llama.cpp --fit-target default 1024 MiB",
                                  "free memory --fit keeps on each device"))  # fmt: skip
    elif o.fit_margin and keeps_fit_margin:
        # without GPUs --fit keeps the same margin of system memory (common/fit.cpp, nd == 0)
        terms.append(Term("fit_margin", "cpu", GIB, True, "llama.cpp --fit-target default 1024 MiB",
                          "free system memory --fit keeps when no GPU is used"))  # fmt: skip
    if o.server:
        # llama-server keeps context checkpoints of the recurrent state in host RAM
        per_seq = llama_recurrent_bytes_per_cell(spec)
        terms.append(Term("ctx_checkpoints", "cpu", o.ctx_checkpoints * per_seq * d.sequences, False,
                          "llama-server --ctx-checkpoints (default 32) copies of the recurrent state",
                          "worst case, host RAM"))  # fmt: skip
    return terms


# ------------------------------------------------------------------------------------------------
# compute buffers per device with GPUs
# ------------------------------------------------------------------------------------------------

COMPUTE_SRC = ("ggml-backend's scheduler and ggml-alloc, one buffer per backend, replayed on llama.cpp's "
               "worst-case graph (qwenfit.core.engines.llama_cpp.gpu_compute)")  # fmt: skip
MEASURED = ("equal to the real ggml-cuda backend on all 574 buffers of tests/fixtures/llama_memory_gpu "
            "(llama.cpp 0c1e570 on fake GPUs)")  # fmt: skip


def gguf_tensor_table(weights: Any) -> str:
    """The GGUF's tensors as JSON {name: [ggml type, ggml shape, bytes]}: what the scheduler copies of
    host weights into GPU 0's compute buffer (op offload). A string, so traced formulas keep it literal."""
    table = {t.gguf_name: [t.type.lower(), list(reversed(t.shape)), t.bytes] for t in weights.tensors
             if t.gguf_name}  # fmt: skip
    return json.dumps(table, separators=(",", ":"), sort_keys=True)


def _table_text(inputs: Mapping[str, Any]) -> str:
    """The GGUF's tensor table of ``inputs``; :class:`~qwenfit.errors.LeftOut` when they
    are precompiled ones, which leave it out (the caller evaluates the inputs computed in full)."""
    text = str(inputs.get("gguf:tensors", ""))
    if text == TENSOR_TABLE:
        raise LeftOut("gguf:tensors")
    return text


@lru_cache(maxsize=32)
def _tensor_table(text: str) -> tuple[tuple[str, tuple[str, tuple[int, ...], int]], ...] | None:
    if not text:
        return None
    return tuple((k, (v[0], tuple(v[1]), v[2])) for k, v in sorted(json.loads(text).items()))


def _structure(spec: ModelSpec, d: Deployment, o: LlamaCppOptions, ctx: Any) -> Any:
    """The :class:`.compute.Structure` of a closed form for this context, or None (no stored tree)."""
    from qwenfit.core.engines.llama_cpp.compute import Structure, compute_tree, kv_class
    from qwenfit.core.engines.llama_cpp.memory import TREE_MAX_CELLS

    kv = d.kv_cache or "f16"
    traced = any(isinstance(x, Expr) for x in (ctx.n_ctx, ctx.n_ctx_seq, d.sequences))
    if o.kv_unified or d.mtp or (not traced and as_int(ctx.n_ctx_seq) > TREE_MAX_CELLS):
        return None
    st = Structure(o.flash_attention, kv_class(kv), kv_class(kv), o.ubatch, "seqs", 0, False)
    return st if compute_tree(spec, st) is not None else None


def _closed_form(spec: ModelSpec, d: Deployment, o: LlamaCppOptions, ctx: Any, n_cpu_moe: Num) -> bool:
    """Whether the compute buffers take the closed form: wherever the CPU graph has one (a stored
    tree: llama-server's output limits of the modelled builds, non-unified KV, no MTP draft), as the
    calculator and the planner's fast path trace it, so that the integers equal the formulas and the
    planner's searches stay fast. Everything else (the library's or older builds' output limits,
    other ubatch sizes, flash attention off, MTP) replays the scheduler."""
    if any(isinstance(x, Expr) for x in (d.context, d.sequences, n_cpu_moe)):
        return True
    build = build_number(o.engine_version)
    modelled = not kq_mask_f32(build) and cuda_fa_workspace(build) and not gdn_l2_op(build)
    modelled = modelled and kv_rotation(build) and gdn_fused(build)
    return outputs_reserved(d, o) == d.sequences and modelled and _structure(spec, d, o, ctx) is not None


def _closed_compute_terms(
    spec: ModelSpec, d: Deployment, o: LlamaCppOptions, ctx: Any, inputs: Mapping[str, Any],
    layout: LlamaLayout, gpus: list[str], n_cpu_moe: Num,
) -> list[Term]:  # fmt: skip
    """The compute buffers in closed form. Host: every graph input (4 copies with pipeline
    parallelism) + the token embeddings, exact with every layer on the GPUs (the fake-GPU runs);
    + the CPU graph's buffer when layers or the KV cache stay in host memory (estimated). Each GPU:
    the CPU graph's buffer less the embeddings + 4 copies of its split inputs with pipeline
    parallelism (estimated: ggml-cuda's fusion lifetimes, the layer split and the weight copies of
    partial offload are in the replay only)."""
    from qwenfit.core.engines.llama_cpp.gpu_forms import host_compute_closed

    t = spec.text
    st = _structure(spec, d, o, ctx)
    if st is None:
        raise TypeError("llama.cpp's compute buffer has no closed form for these settings (integers only)")
    on_host = "cpu" in layout.layer_device or not o.kv_offload
    pipeline = len(gpus) > 1 and not on_host and not o.override_tensor and o.split_mode == "layer"
    n_copies: Num = where(lt(0, n_cpu_moe), 1, 4) if pipeline else 1
    host, ins = host_compute_closed(spec, st, n_ctx=ctx.n_ctx, n_ctx_seq=ctx.n_ctx_seq, n_seq=d.sequences,
                                    n_copies=n_copies)  # fmt: skip
    emb = host - n_copies * ins
    # 4 copies of the split inputs, one of which the CPU graph's buffer already holds live
    extra = where(lt(0, n_cpu_moe), 0, 3 * ins) if pipeline else 0
    note = f"ubatch {o.ubatch}, flash attention {'on' if o.flash_attention else 'off'}"
    used = [g for g in gpus if layout.layers_on(g) or layout.output_device == g] or gpus[:1]
    delta = _backend_delta(spec, st, len(gpus), inputs, d.backend)
    gpu_bytes = ctx.compute_bytes - emb + extra
    out = [Term("compute_buffer", dev, gpu_bytes + delta[i] if dev in used else 0, False,
                "the CPU graph's buffer less the token embeddings"
                + (", + 3 more pipeline copies of the split inputs" if pipeline else "")
                + " + what the replayed scheduler adds at 4,096 / 32,768 tokens (fusion lifetimes, layer "
                "split; estimated closed form: the scheduler is replayed where the CPU graph has none)", note)
           for i, dev in enumerate(gpus)]  # fmt: skip
    if t.is_moe:  # host experts: each MoE layer's matmul runs on GPU 0 with the experts copied in
        copies = where(lt(0, n_cpu_moe), smax(*(inputs[f"exps_max:{g}"] for g in gpus)), 0)
        out.append(Term("offload_copies", gpus[0], copies, False,
                        "ggml-backend sched: host weights copied to the first GPU for prompt batches (op "
                        "offload to backend 0)",
                        "one layer's routed experts, when --n-cpu-moe > 0"))  # fmt: skip
    exact = d.backend == "cuda" and not on_host
    if on_host:
        host = host + ctx.compute_bytes
    out.append(Term("compute_buffer", "cpu", host, exact,
                    "host compute buffer: graph inputs x copies + token embeddings"
                    + (" + the CPU graph (layers or KV in host memory)" if on_host else "")
                    + (f"; {MEASURED}" if exact else " (estimated)"),
                    "graph inputs (KQ mask, positions, ...), token embeddings of one ubatch"))  # fmt: skip
    return out


DRAFT_COMPUTE = "MTP draft context: its own graph and scheduler"
REFERENCE_CONTEXTS = (4096, 32768)  # the delta is the most of these (conservative)


DELTA_BACKENDS = ("cuda", "vulkan", "metal")  # ROCm runs ggml-cuda's host code: CUDA's deltas


def delta_backend(backend: str) -> str:
    """The backend whose replayed deltas the closed form of ``backend`` takes."""
    return backend if backend in DELTA_BACKENDS else "cuda"


def backend_inputs(backend: str) -> dict[str, int]:
    """The hardware inputs that pick a backend's deltas in a traced formula (``metal``, ``vulkan``: 0 or
    1; neither: CUDA's), so that one calculator or planner formula serves every GPU backend."""
    chosen = delta_backend(backend)
    return {"metal": int(chosen == "metal"), "vulkan": int(chosen == "vulkan")}


def _backend_delta(
    spec: ModelSpec, st: Any, n_gpus: int, inputs: Mapping[str, Any], backend: str
) -> list[Num]:
    """Per GPU, the delta of ``backend``; in a traced formula (the ``metal`` / ``vulkan`` inputs are
    variables) the choice between the backends' deltas is part of the formula."""
    metal, vulkan = inputs.get("metal", 0), inputs.get("vulkan", 0)
    if not (isinstance(metal, Expr) or isinstance(vulkan, Expr)):
        return list(_gpu_delta(spec, st, n_gpus, delta_backend(backend)))
    per = {b: _gpu_delta(spec, st, n_gpus, b) for b in DELTA_BACKENDS}
    return [
        where(metal, per["metal"][i], where(vulkan, per["vulkan"][i], per["cuda"][i])) for i in range(n_gpus)
    ]


def delta_key(st: Any, backend: str) -> str:
    """The structure's key in the delta table (CUDA: the structure key; else prefixed by the backend)."""
    return st.key() if backend == "cuda" else f"{backend}:{st.key()}"


def _gpu_delta(spec: ModelSpec, st: Any, n_gpus: int, backend: str = "cuda") -> tuple[int, ...]:
    """:func:`replay_gpu_delta`, read from the table scripts/llama_gpu_deltas.py precomputes for the
    catalog's models and stored structures (``gpu_deltas.py``), else replayed."""
    from qwenfit.core.engines.llama_cpp.compute import model_key

    got = _delta_table().get(model_key(spec), {}).get(delta_key(st, backend), {}).get(str(n_gpus))
    return tuple(got) if got is not None else replay_gpu_delta(spec, st, n_gpus, backend)


@lru_cache(maxsize=1)
def _delta_table() -> dict[str, Any]:
    import json

    from qwenfit.core.engines.llama_cpp.gpu_deltas import DATA_JSON

    table: dict[str, Any] = json.loads(DATA_JSON)
    return table


@lru_cache(maxsize=256)
def replay_gpu_delta(spec: ModelSpec, st: Any, n_gpus: int, backend: str = "cuda") -> tuple[int, ...]:
    """Per GPU: the replayed buffer (``backend``, every layer offloaded, the default split, llama-server's
    limits) less the closed form's GPU term, the most of one sequence of 4,096 and of 32,768 tokens.
    The closed form adds it everywhere (the fusion lifetimes of a MoE graph and the layer split are
    assumed to cost the same at every context: estimated)."""
    from qwenfit.core.engines.llama_cpp.cells import context_cells
    from qwenfit.core.engines.llama_cpp.compute import KV_OF_CLASS
    from qwenfit.core.engines.llama_cpp.gpu_compute import device_compute_buffers
    from qwenfit.core.engines.llama_cpp.gpu_forms import GpuPlacement, host_compute_closed, placement_setup
    from qwenfit.core.engines.llama_cpp.memory import compute_buffer_bytes

    kv_k, kv_v = KV_OF_CLASS[st.k], KV_OF_CLASS[st.v]
    setup = placement_setup(spec, GpuPlacement(n_gpus, backend))
    copies = 4 if n_gpus > 1 else 1
    best = [-(1 << 62)] * n_gpus
    for context in REFERENCE_CONTEXTS:
        got = device_compute_buffers(spec, setup, context=context, n_outputs_max=1, n_ubatch=st.n_ubatch,
                                     flash_attn=st.flash_attn, type_k=kv_k, type_v=kv_v)  # fmt: skip
        cells, per = (as_int(x) for x in context_cells(context, 1, kv_unified=False))
        cpu = as_int(compute_buffer_bytes(spec, n_ctx=cells, n_ctx_seq=per, n_seq=1, kv_unified=False,
                                          n_ubatch=st.n_ubatch, n_outputs_max=1, flash_attn=st.flash_attn,
                                          type_k=kv_k, type_v=kv_v))  # fmt: skip
        host, ins = (as_int(x) for x in host_compute_closed(spec, st, n_ctx=cells, n_ctx_seq=per, n_seq=1,
                                                             n_copies=copies))  # fmt: skip
        closed = cpu - (host - copies * ins) + (3 * ins if n_gpus > 1 else 0)
        best = [max(b, got[g] - closed) for b, g in zip(best, setup.gpus, strict=True)]
    return tuple(best)


def _search_compute_terms(
    spec: ModelSpec, d: Deployment, o: LlamaCppOptions, ctx: Any, inputs: Mapping[str, Any],
    layout: LlamaLayout, gpus: list[str], n_cpu_moe: Num,
) -> list[Term]:  # fmt: skip
    """What a planner's search takes where the CPU graph has no closed form (one scheduler replay per
    placement and context would be too slow): the CPU graph's buffer on every GPU with layers, the
    experts of host layers copied to the first GPU, and in host memory the token embeddings (+ the CPU
    graph for layers or KV there). Estimated; qwenfit.estimate replays the scheduler instead."""
    t = spec.text
    compute = ctx.compute_bytes + ctx.draft_compute_bytes
    used = [g for g in gpus if layout.layers_on(g) or layout.output_device == g] or gpus[:1]
    src = "the CPU graph's buffer (a planner search's fast form; qwenfit.estimate replays the scheduler)"
    out = [Term("compute_buffer", g, compute if g in used else 0, False, src, "estimated") for g in gpus]
    if t.is_moe:
        copies = where(lt(0, n_cpu_moe), smax(*(inputs[f"exps_max:{g}"] for g in gpus)), 0)
        out.append(Term("offload_copies", gpus[0], copies, False, src, "one layer's routed experts"))
    host = 2 * 4 * t.hidden_size * min(o.ubatch, as_int(ctx.n_ctx))
    if "cpu" in layout.layer_device or not o.kv_offload:
        host += compute
    out.append(Term("compute_buffer", "cpu", host, False, src, "token embeddings (+ the CPU graph)"))
    return out


def _replayed_compute_terms(
    spec: ModelSpec, d: Deployment, o: LlamaCppOptions, ctx: Any, inputs: Mapping[str, Any],
    layout: LlamaLayout, gpus: list[str], kv: str, draft_kv: str,
) -> list[Term]:  # fmt: skip
    """Each GPU's and the host's buffer from the scheduler replay (:mod:`.gpu_compute`)."""
    from qwenfit.core.engines.llama_cpp.backends import BACKENDS
    from qwenfit.core.engines.llama_cpp.gpu_compute import HOST, DeviceSetup, device_compute_buffers
    from qwenfit.core.engines.llama_cpp.options import override_devices

    t = spec.text
    spec_r = spec if layout.n_layer_all > t.num_hidden_layers else dataclasses.replace(spec, mtp_layers=0)
    n_cpu_moe = as_int(o.n_cpu_moe)
    host_exps = set(range(n_cpu_moe)) if t.is_moe else set()
    cpu_patterns = [re.compile(p) for p, dev in override_devices(o, d) if dev == "cpu"]
    if t.is_moe and cpu_patterns:
        for il in range(layout.n_layer_all):
            names = (f"blk.{il}.ffn_{w}_exps.weight" for w in ("up", "gate", "down"))
            if any(p.search(n) for p in cpu_patterns for n in names):
                host_exps.add(il)
    backend = d.backend if d.backend in BACKENDS and d.backend != "cpu" else "cuda"
    on_host = "cpu" in layout.layer_device or not o.kv_offload
    canonical = not (host_exps or o.override_tensor or o.tensor_split or on_host or o.split_mode != "layer")
    setup = DeviceSetup(
        layer_device=tuple(layout.layer_device), gpus=tuple(gpus), host_expert_layers=frozenset(host_exps),
        backend=backend, split_mode=o.split_mode, tensor_override=bool(o.override_tensor) or n_cpu_moe > 0,
        offload_kqv=o.kv_offload, fa_workspace=cuda_fa_workspace(build_number(o.engine_version)),
        build=build_number(o.engine_version),
    )  # fmt: skip
    common: dict[str, Any] = {
        "context": as_int(d.context), "n_seq": as_int(d.sequences), "n_ubatch": o.ubatch,
        "flash_attn": o.flash_attention, "kv_unified": o.kv_unified,
        # the weights' types matter only for host weights the scheduler copies (none in a full offload:
        # without them one replay serves every quantization)
        "weights": None if canonical else _tensor_table(_table_text(inputs)),
        "mask_f32": kq_mask_f32(build_number(o.engine_version)),
        "h_nextn_output": h_nextn_output(build_number(o.engine_version)),
        "gdn_l2_op": gdn_l2_op(build_number(o.engine_version)),
        "kv_rot": kv_rotation(build_number(o.engine_version)),
        "gdn_fused": gdn_fused(build_number(o.engine_version)),
    }  # fmt: skip
    mtp = d.mtp and spec_r.mtp_layers > 0
    got = device_compute_buffers(spec_r, setup, **common, n_outputs_max=as_int(outputs_reserved(d, o)),
                                 type_k=kv, type_v=kv, n_rs_seq=o.draft_tokens if mtp else 0)  # fmt: skip
    exact = BACKENDS[backend].measured and backend == d.backend
    label = MEASURED if exact else f"{d.backend}: alignment, alloc sizes and fusions from source (estimated)"
    note = f"ubatch {o.ubatch}, flash attention {'on' if o.flash_attention else 'off'}"
    out = [
        Term("compute_buffer", dev, got.get(dev, 0), exact, f"{COMPUTE_SRC}; {label}", note) for dev in gpus
    ]
    out.append(Term("compute_buffer", "cpu", got[HOST], exact, f"{COMPUTE_SRC}; {label}",
                    "graph inputs, embeddings, layers and ops left on the CPU"))  # fmt: skip
    if mtp:  # the MTP draft context: its own graph and scheduler (n_outputs_max = n_parallel)
        draft = device_compute_buffers(spec_r, setup, **common, n_outputs_max=as_int(d.sequences),
                                       type_k=draft_kv, type_v=draft_kv, mtp_draft=True)  # fmt: skip
        for dev in [*gpus, "cpu"]:
            out.append(Term("compute_buffer", dev, draft.get(HOST if dev == "cpu" else dev, 0), exact,
                            f"{COMPUTE_SRC}; {label}", DRAFT_COMPUTE))  # fmt: skip
    return out
