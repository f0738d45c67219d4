"""llama.cpp's memory terms per device, from the weight sums of a layout (:mod:`.layout`).

One function, :func:`llama_terms`, for every llama.cpp front end (llama-server, Ollama, LM Studio).
Its inputs may be formula variables (:mod:`qwenfit.core.expr`): the calculator export and the
planner's fast path trace it. Sources: llama.cpp 0c1e570 ``llama_context`` / ``load_tensors``
(:mod:`.memory`, :mod:`.layout`), checked by ``tests/fixtures/llama_memory``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from qwenfit.core.engines.llama_cpp.layout import WEIGHT_ALIGNMENT, LlamaLayout
from qwenfit.core.engines.llama_cpp.memory import (
    llama_context,
    llama_kv_bytes_per_cell,
    llama_recurrent_bytes_per_cell,
)
from qwenfit.core.engines.llama_cpp.versions import build_number, server_limits_outputs
from qwenfit.core.expr import Expr, Num, at, lt, smax, smin, where
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import Term
from qwenfit.core.units import GIB

if TYPE_CHECKING:
    from qwenfit.core.engines.base import Deployment
    from qwenfit.core.engines.llama_cpp.options import LlamaCppOptions

__all__ = ["llama_terms"]

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
    ctx = llama_context(
        spec, n_ctx=n_ctx, n_seq=d.sequences, kv_unified=o.kv_unified, type_k=kv, type_v=kv,
        n_ubatch=o.ubatch, flash_attn=o.flash_attention, mtp=d.mtp, draft_tokens=o.draft_tokens,
        draft_type=draft_kv, n_outputs_max=outputs_reserved(d, o),
    )  # fmt: skip
    t = spec.text
    scheme = inputs.get("scheme", "")
    gpus = [dev for dev in layout.devices if dev != "cpu"]
    n_cpu_moe = o.n_cpu_moe
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
    backend_note = "" if d.backend == "cpu" else f"; {d.backend} reserves the same graph (estimated)"
    for dev in gpus or ["cpu"]:
        compute = ctx.compute_bytes + ctx.draft_compute_bytes
        terms.append(Term("compute_buffer", dev, compute, d.backend == "cpu",
                          "ggml's allocator over llama.cpp's worst-case graph (exact on the CPU backend: "
                          "tests/fixtures/llama_memory)" + backend_note,
                          f"ubatch {o.ubatch}, flash attention {'on' if o.flash_attention else 'off'}"
                          + (", + MTP draft graph" if d.mtp else "")))  # fmt: skip
    if gpus:
        # with weights on the host, ggml's scheduler copies them into the GPU compute buffer for
        # prompt batches (op offload, batch >= 32): one layer's experts at a time (estimated)
        if t.is_moe:
            copies = where(lt(0, n_cpu_moe), smax(*(inputs[f"exps_max:{g}"] for g in gpus)), 0)
            terms.append(Term("offload_copies", last, copies, False,
                              "ggml-backend sched: host weights copied to the GPU for prompt batches",
                              "one layer's routed experts, when --n-cpu-moe > 0"))  # fmt: skip
        host = 4 * t.hidden_size * smin(o.ubatch, ctx.n_ctx) * 2  # token embeddings + their copy
        terms.append(Term("compute_buffer", "cpu", host, False,
                          "host compute buffer: the input embedding runs on the CPU (estimated)",
                          "token embeddings of one ubatch"))  # fmt: skip
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
