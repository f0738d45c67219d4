"""Engine profiles: the named memory terms each engine allocates for one deployment.

Every function returns the terms of one device ("gpu" for the accelerator or unified memory, "cpu"
for host RAM) as functions of the settings. Exact terms reproduce what the engine allocates (checked
against the engine, see each module); estimated terms are labelled and say what they rest on.
Facts: shared/reference/engines-and-hardware.md §C, qwen35-architecture.md §4–5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qwenfit.core.engines.cache import llama_recurrent_bytes_per_cell
from qwenfit.core.engines.llama_cpp.layout import LlamaLayout, llama_layout, llama_weight_env
from qwenfit.core.engines.llama_cpp.memory import llama_context
from qwenfit.core.engines.vllm.pool import (
    PoolPlan,
    batch_defaults,
    plan_pool,
    pp_partitions,
    small_batch_device,
)
from qwenfit.core.expr import Expr, Num, at, lt, smax, smin, where
from qwenfit.core.formats.weights import WeightMap
from qwenfit.core.model.inventory import ROUTED_EXPERT_ROLES
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import Term

__all__ = [
    "ENGINES", "Settings", "engine_budget", "engine_terms", "rank_weights", "vllm_fullest_stage",
]  # fmt: skip

GIB = 1 << 30
MIB = 1 << 20
ENGINES = ("llama.cpp", "ollama", "lm-studio", "vllm", "sglang", "mlx", "transformers")
BACKENDS = ("cuda", "rocm", "metal", "vulkan", "sycl", "cpu")
# llama.cpp backend context per GPU (CUDA context ~128-256 MiB + cuBLAS workspace; engines §C.0): estimated
LLAMA_RUNTIME_RESERVE = {
    "cuda": 300 * MIB,
    "rocm": 300 * MIB,
    "vulkan": 200 * MIB,
    "sycl": 300 * MIB,
    "metal": 0,
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Deployment knobs shared by the engines (each reads the ones it has)."""

    context: Num  # an int, or a formula variable when the calculator export traces the terms
    sequences: Num = 1
    kv_cache: str | None = None  # engine default when None
    ubatch: int = 512
    batch: int = 2048
    flash_attention: bool = True
    mtp: bool = False  # speculative decoding with the MTP layer
    vision: bool = False
    backend: str = "cuda"
    kv_unified: bool = False
    tp: int = 1
    pp: int = 1
    dp: int = 1
    expert_parallel: bool = False
    prefix_caching: bool = True
    gpu_memory_bytes: Num | None = None  # the device's memory (vLLM/SGLang budgets, batch defaults)
    gpu_name: str = ""
    small_device: Num | None = None  # vLLM's A100/GB10 batch tier; None: from gpu_name
    server: bool = True  # llama-server (context checkpoints) rather than the library
    ctx_checkpoints: int = 32
    fit_margin: bool = True  # llama.cpp --fit leaves 1 GiB free per device
    # llama.cpp placement (qwenfit.core.engines.llama_cpp.layout): GPUs, -ngl (None = all), --n-cpu-moe, -ts
    n_gpus: int = 1
    n_gpu_layers: int | None = None
    n_cpu_moe: Num = 0
    tensor_split: tuple[float, ...] | None = None
    # the weight bytes on one rank, when given (the calculator export traces it as a variable);
    # None: summed from the WeightMap (rank_weights / total_bytes)
    rank_weight_bytes: Num | None = None
    runtime_reserve_bytes: Num | None = None  # llama.cpp's per-GPU backend reserve; None: by backend
    gpu_sm: str | None = None  # compute capability ("9.0", "10.0"): vLLM's MoE kernel choice pads on SM100


def engine_budget(
    engine: str,
    devices: Sequence[str],
    *,
    vram: Num | None,
    ram: Num | None,
    unified: bool = False,
    gpu_memory_utilization_bp: Num = 9200,
) -> dict[str, Num]:
    """Usable bytes per device: ``vram`` is one GPU's memory (on unified memory: what the GPU may
    use, e.g. Metal's working set), ``ram`` the host RAM. vLLM plans against
    ``gpu_memory_utilization`` of each GPU (``_bp``: basis points, 9200 = 0.92; vLLM takes
    ``ceil(total * utilization)``, worker/utils.py). On unified memory GPU and CPU terms share the
    RAM (the ``"total"`` entry). ``devices`` are those the terms name."""
    budget: dict[str, Num] = {}
    if vram is not None:
        cap = -(-vram * gpu_memory_utilization_bp // 10000) if engine == "vllm" else vram
        for d in devices:
            if d.startswith("gpu"):
                budget[d] = cap
    if ram is not None:
        if unified:
            budget["total"] = ram
        elif "cpu" in devices or not budget:
            budget["cpu"] = ram
    return budget


def engine_terms(engine: str, spec: ModelSpec, weights: WeightMap, s: Settings) -> list[Term]:
    """The memory terms of ``engine`` (one of ENGINES) for ``spec`` with ``weights``."""
    if engine in ("llama.cpp", "ollama", "lm-studio"):
        return _llama_cpp(spec, weights, s, engine)
    if engine == "vllm":
        return _vllm(spec, weights, s)
    from qwenfit.core.engines.others import mlx_terms, sglang_terms, transformers_terms

    if engine == "sglang":
        return sglang_terms(spec, weights, s)
    if engine == "mlx":
        return mlx_terms(spec, weights, s)
    if engine == "transformers":
        return transformers_terms(spec, weights, s)
    raise ValueError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")


# --------------------------------------------------------------------------------------------------
# llama.cpp (Ollama ≥ 0.30 and LM Studio run llama-server)


def _llama_cpp(spec: ModelSpec, weights: WeightMap, s: Settings, engine: str) -> list[Term]:
    if s.backend not in BACKENDS:
        raise ValueError(f"unknown backend {s.backend!r}; valid: {', '.join(BACKENDS)}")
    layout = llama_layout(
        spec, n_gpus=0 if s.backend == "cpu" else s.n_gpus, n_gpu_layers=s.n_gpu_layers,
        tensor_split=s.tensor_split,
    )  # fmt: skip
    env = llama_weight_env(spec, weights, layout, mtp=s.mtp)
    if s.vision:
        env["w:vision"] = sum(t.bytes for t in weights.tensors if t.component == "vision")
    return llama_cpp_terms(spec, s, env, layout, engine, weights.scheme)


def llama_cpp_terms(
    spec: ModelSpec, s: Settings, env: Mapping[str, Any], layout: LlamaLayout, engine: str, scheme: str
) -> list[Term]:
    """llama.cpp's terms per device from the weight sums ``env`` (:func:`llama_weight_env`).

    ``s.context``, ``s.sequences``, ``s.n_cpu_moe`` and the values of ``env`` may be formula
    variables (:mod:`qwenfit.core.expr`): the calculator export traces this function.
    """
    kv = s.kv_cache or "f16"
    if kv not in ("f16", "f32", "bf16") and not s.flash_attention:
        raise ValueError(f"a quantized V cache ({kv}) needs flash attention (llama-context.cpp)")
    ctx = llama_context(
        spec, n_ctx=s.context, n_seq=s.sequences, kv_unified=s.kv_unified, type_k=kv, type_v=kv,
        n_ubatch=s.ubatch, flash_attn=s.flash_attention, mtp=s.mtp,
        n_outputs_max=s.sequences if s.server else s.batch,
    )  # fmt: skip
    t = spec.text
    gpus = [d for d in layout.devices if d != "cpu"]
    n_cpu_moe = s.n_cpu_moe
    if not isinstance(n_cpu_moe, Expr) and not 0 <= n_cpu_moe <= layout.n_layer_all:
        raise ValueError(f"n_cpu_moe must be between 0 and {layout.n_layer_all}, got {n_cpu_moe}")
    offloaded = {d: at(env[f"exps:{d}"], n_cpu_moe) for d in gpus}  # expert bytes moved to the CPU
    src = "llama.cpp 0c1e570 (tests/fixtures/llama_memory)"
    place = "llama.cpp 0c1e570 load_tensors placement (qwenfit.core.engines.llama_cpp.layout)"
    per_layer_kv = ctx.kv_bytes_per_cell // max(1, t.n_full_attention + (spec.mtp_layers if s.mtp else 0))
    rs_layer = llama_recurrent_bytes_per_cell(spec) // max(1, t.n_linear_attention)
    terms: list[Term] = []
    for d in layout.devices:
        layers = layout.layers_on(d)
        n_full = sum(1 for i in layers if i < t.num_hidden_layers and t.layer_types[i] == "full_attention")
        n_full += sum(1 for i in layers if i >= t.num_hidden_layers) if s.mtp else 0
        n_lin = sum(1 for i in layers if i < t.num_hidden_layers and t.layer_types[i] != "full_attention")
        w = env[f"w:{d}"]
        if d == "cpu":
            w = w + sum(offloaded.values()) if offloaded else w
            detail = "token embedding (llama.cpp keeps the input layer on the CPU)"
            if len(layers):
                detail += f", {len(layers)} layer(s)"
            if gpus and t.is_moe:
                detail += f", routed experts of the first {n_cpu_moe} layer(s) (--n-cpu-moe)"
        else:
            w = w - offloaded[d]
            detail = f"{len(layers)} layer(s)" + (" + output" if layout.output_device == d else "")
        terms.append(Term("weights", d, w, True, place, f"{scheme}: {detail}; tensors aligned to 32 B"))
        if n_full:
            terms.append(Term("kv_cache", d, ctx.n_ctx * per_layer_kv * n_full, True, src,
                              f"{ctx.n_ctx} cells ({s.sequences} stream(s) of {ctx.n_ctx_seq}), {kv}, "
                              f"{n_full} full-attention layer(s)"))  # fmt: skip
        if n_lin:
            rows = ctx.recurrent_rows
            terms.append(Term("recurrent_state", d, rows * rs_layer * n_lin, True, src,
                              f"{rows} row(s) x {n_lin} Gated DeltaNet layer(s), F32"))  # fmt: skip
    dev = gpus[-1] if gpus else "cpu"
    mtp_hidden = t.hidden_size * s.batch * 4 if s.mtp else 0
    terms.append(Term("output_buffer", "cpu", ctx.output_bytes + mtp_hidden, True, src,
                      f"logits for {s.sequences} output(s)" + (" + MTP hidden states" * s.mtp)))  # fmt: skip
    backend_note = "" if s.backend == "cpu" else f"; {s.backend} reserves the same graph (estimated)"
    for d in gpus or ["cpu"]:
        compute = ctx.compute_bytes + ctx.draft_compute_bytes
        terms.append(Term("compute_buffer", d, compute, s.backend == "cpu",
                          "ggml's allocator over llama.cpp's worst-case graph (exact on the CPU backend: "
                          "tests/fixtures/llama_memory)" + backend_note,
                          f"ubatch {s.ubatch}, flash attention {'on' if s.flash_attention else 'off'}"
                          + (", + MTP draft graph" if s.mtp else "")))  # fmt: skip
    if gpus:
        # with weights on the host, ggml's scheduler copies them into the GPU compute buffer for
        # prompt batches (op offload, batch >= 32): one layer's experts at a time (estimated)
        if t.is_moe:
            copies = where(lt(0, n_cpu_moe), smax(*(env[f"exps_max:{g}"] for g in gpus)), 0)
            terms.append(Term("offload_copies", dev, copies, False,
                              "ggml-backend sched: host weights copied to the GPU for prompt batches",
                              "one layer's routed experts, when --n-cpu-moe > 0"))  # fmt: skip
        host = 4 * t.hidden_size * smin(s.ubatch, ctx.n_ctx) * 2  # token embeddings + their copy
        terms.append(Term("compute_buffer", "cpu", host, False,
                          "host compute buffer: the input embedding runs on the CPU (estimated)",
                          "token embeddings of one ubatch"))  # fmt: skip
    if s.vision:
        from qwenfit.core.engines.llama_cpp.vision import mmproj_compute_bytes

        terms.append(
            Term("vision", dev, env["w:vision"], True, "mmproj GGUF tensor bytes", "vision encoder weights")
        )
        if spec.vision is not None:
            cpu = s.backend == "cpu"
            terms.append(Term(
                "vision_compute", dev, mmproj_compute_bytes(spec, flash_attn=s.flash_attention), cpu,
                "clip.cpp graph replayed through ggml's allocator (tests/fixtures/vision_memory: 0 B error "
                "on 364 CPU reservations)"
                + ("" if cpu else f"; {s.backend} reserves the same graph (estimated)"),
                "the largest image the preprocessor allows (4096 tokens)",
            ))  # fmt: skip
    if gpus:
        reserve = (
            LLAMA_RUNTIME_RESERVE[s.backend] if s.runtime_reserve_bytes is None else s.runtime_reserve_bytes
        )
        for d in gpus:
            terms.append(Term("runtime_reserve", d, reserve, False,
                              "backend context (CUDA context ~128-256 MiB + cuBLAS workspace; engines §C.0)",
                              "estimated"))  # fmt: skip
            if s.fit_margin and engine != "ollama":
                terms.append(Term("fit_margin", d, GIB, True, "llama.cpp --fit-target default 1024 MiB",
                                  "free memory --fit keeps on each device"))  # fmt: skip
    elif s.fit_margin and engine != "ollama":
        # without GPUs --fit keeps the same margin of system memory (common/fit.cpp, nd == 0)
        terms.append(Term("fit_margin", "cpu", GIB, True, "llama.cpp --fit-target default 1024 MiB",
                          "free system memory --fit keeps when no GPU is used"))  # fmt: skip
    if s.server:
        # llama-server keeps context checkpoints of the recurrent state in host RAM
        per_seq = llama_recurrent_bytes_per_cell(spec)
        terms.append(Term("ctx_checkpoints", "cpu", s.ctx_checkpoints * per_seq * s.sequences, False,
                          "llama-server --ctx-checkpoints (default 32) copies of the recurrent state",
                          "worst case, host RAM"))  # fmt: skip
    return terms


# --------------------------------------------------------------------------------------------------
# vLLM


_REPLICATED = frozenset({"norm", "attn_q_norm", "attn_k_norm", "gdn_norm", "router", "shared_expert_gate",
                         "mtp_norm", "vision_norm", "vision_merger_norm", "vision_pos_embed",
                         "vision_patch_embed"})  # fmt: skip


def rank_weights(
    spec: ModelSpec, weights: WeightMap, tp: int, *, stage: range | None = None, pp: int = 1, ep: int = 0
) -> tuple[int, bool]:
    """Bytes on one rank: TP-sharded tensors / tp, replicated ones whole (KV projections are replicated
    once tp exceeds the KV heads); with ``ep`` ranks of expert parallelism, routed experts are divided
    whole among them instead. ``stage``: the layers of this pipeline stage (vllm get_pp_indices); the
    first stage holds the embedding and vision tower, the last the final norm, lm_head (a copy of the
    embedding when tied) and the MTP layer. Exact only for one GPU."""
    t = spec.text
    kv_factor = max(1, tp // t.num_key_value_heads)  # copies of each KV head across ranks
    layers = stage if stage is not None else range(t.num_hidden_layers)
    first, last = layers.start == 0, layers.stop == t.num_hidden_layers
    total = 0
    for e in weights.tensors:
        if e.component == "vision":
            keep = first
        elif e.component == "mtp":
            keep = last
        elif e.layer is not None:
            keep = e.layer in layers
        elif e.role == "embed":
            keep = first or (last and pp > 1 and t.tie_word_embeddings)
        else:  # final norm, lm_head
            keep = last
        if not keep:
            continue
        if e.role in ROUTED_EXPERT_ROLES and ep:
            total += -(-e.bytes // ep)
        elif e.role in _REPLICATED:
            total += e.bytes
        elif e.role in ("attn_k", "attn_v"):
            total += e.bytes * kv_factor // tp
        else:
            total += -(-e.bytes // tp)
    return total, tp == 1 and pp == 1 and not ep


def vllm_fullest_stage(spec: ModelSpec, weights: WeightMap, s: Settings) -> tuple[Num, PoolPlan, range]:
    """(weight bytes per rank, pool plan, layers) of the pipeline stage that needs the most memory.
    Weights per rank as vLLM 0.33.0 allocates them (:mod:`qwenfit.core.engines.vllm.weights`, measured on
    4,546 ranks); the MTP drafter on the last stage when speculative decoding is on."""
    from qwenfit.core.engines.vllm.weights import vllm_drafter_weight_bytes, vllm_rank_weight_bytes

    sm100 = (s.gpu_sm or "").split(".")[0] == "10"
    worst: tuple[Num, PoolPlan, range] | None = None
    stages = pp_partitions(spec.text.num_hidden_layers, s.pp)
    if len(stages) > 1 and (isinstance(s.context, Expr) or isinstance(s.sequences, Expr)):
        raise ValueError("pipeline stages are compared by their bytes: give context and sequences as ints")
    for stage in stages:
        plan = plan_pool(
            spec, tp=s.tp, max_model_len=s.context, kv_cache_dtype=s.kv_cache or "auto",
            prefix_caching=s.prefix_caching, num_speculative_tokens=1 if s.mtp else 0, layers=stage,
        )  # fmt: skip
        w: Num
        if s.rank_weight_bytes is not None and len(stages) == 1:
            w = s.rank_weight_bytes
        else:
            w = vllm_rank_weight_bytes(spec, weights, tp=s.tp, stage=stage, dp=s.dp,
                                       expert_parallel=s.expert_parallel, sm100=sm100)  # fmt: skip
            if s.mtp and stage.stop == spec.text.num_hidden_layers:
                w += vllm_drafter_weight_bytes(spec, weights, tp=s.tp, pp=s.pp, dp=s.dp,
                                               expert_parallel=s.expert_parallel, sm100=sm100)  # fmt: skip
        if worst is None or w + plan.pool_bytes(s.sequences) > worst[0] + worst[1].pool_bytes(s.sequences):  # type: ignore[operator]
            worst = (w, plan, stage)
    assert worst is not None
    return worst


def _vllm(spec: ModelSpec, weights: WeightMap, s: Settings) -> list[Term]:
    ep = s.tp * s.dp if s.expert_parallel else 0
    per_rank, plan, stage = vllm_fullest_stage(spec, weights, s)
    kv_bytes = plan.pool_bytes(s.sequences)
    where = f"tp={s.tp}"
    if s.pp > 1:
        where += f", pp={s.pp} (stage of layers {stage.start}-{stage.stop - 1})"
    if ep:
        where += f", expert parallel over {ep} ranks"
    memory = 80 * GIB if s.gpu_memory_bytes is None else s.gpu_memory_bytes
    small = small_batch_device(s.gpu_name) if s.small_device is None else s.small_device
    max_seqs, mnbt = batch_defaults(memory, small)
    t = spec.text
    # profile run: max_num_batched_tokens through the widest layer in bf16, plus sampler logits for
    # max_num_seqs in fp32 — an estimate of torch's peak allocation (vLLM measures it on the GPU)
    widest = max(t.q_proj_rows, t.linear_conv_dim + t.linear_value_dim, 2 * t.intermediate_size,
                 2 * t.moe_intermediate_size * t.num_experts_per_tok) // s.tp  # fmt: skip
    activation = mnbt * (4 * t.hidden_size + 2 * widest) * 2 + max_seqs * t.vocab_size * 4 // s.tp
    src = "vLLM 0.33.0 kv_cache_interface / kv_cache_planning (tests/fixtures/vllm)"
    return [
        Term("weights", "gpu", per_rank, True,
             "vLLM 0.33.0's allocation on the fullest rank (tests/fixtures/vllm/rank_weights.json)",
             f"{weights.scheme}, {where}" + (", SM100 MoE padding" * (s.gpu_sm or "").startswith("10."))),
        Term("kv_cache", "gpu", kv_bytes, True, src,
             f"{s.sequences} request(s) of {s.context:,} tokens: {plan.blocks_per_request()} blocks of "
             f"{plan.bytes_per_block:,} B; attention block {plan.block_size} tokens, state page padded "
             f"{plan.padding_pct:.2f}%"),
        Term("compute_buffer", "gpu", activation, False,
             "profile-run peak: max_num_batched_tokens activations + sampler logits (vLLM measures it)",
             f"max_num_batched_tokens {mnbt}, max_num_seqs {max_seqs}"),
        Term("cuda_graphs", "gpu", 512 * MIB, False,
             "CUDA graph memory: vLLM logs 0.17-0.94 GiB for these models (engines §C.1)", "estimated"),
        Term("runtime_reserve", "gpu", (600 + (400 if s.tp > 1 else 0)) * MIB, False,
             "non-torch memory: CUDA context, cuBLAS, NCCL buffers when tp > 1 (engines §C.0-C.1)",
             "estimated"),
    ]  # fmt: skip
