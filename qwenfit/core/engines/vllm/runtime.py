"""vLLM's memory that is neither weights nor KV cache: the device total it budgets against, the profile
run's activation peak, CUDA-graph memory, and what MTP with ``num_speculative_tokens = k`` adds.

Paths and line numbers are vLLM 0.33.0's wheel (``vllm/...``). How vLLM sizes the KV pool
(v1/worker/gpu_worker.py:641-757, utils/mem_utils.py:230-321, v1/worker/utils.py:716-727)::

    requested  = ceil(total × gpu_memory_utilization)          total = cudaMemGetInfo's total
    non_kv     = total_consumed + (torch_peak − torch_allocated_after)
               = weights + torch's peak of everything else during the profile run
                 + non-torch memory created after the init snapshot (+ allocator slack)
    available  = requested − non_kv − cuda_graph_estimate       ("Available KV cache memory")

The init snapshot is taken after the CUDA context, NCCL and the cuBLAS handles exist
(gpu_worker.py:500-541): those only have to fit in ``total − requested`` (else vLLM refuses:
"Free memory on device ... is less than desired GPU memory utilization", utils.py:761). The
CUDA-graph estimate is subtracted by default since v0.21 (envs.py:2219
VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1); earlier versions captured the graphs after sizing the pool.

Exact here: the per-GPU totals that carry a published figure (still a driver-dependent number: the
same board reports a few tens of MiB more or less across driver versions), the persistent sampler and
input buffers, the capture-size lists. Estimated, and labelled so: the forward / sampler / vision
encoder transients (shapes from the source, no allocator replay), the non-torch increase, the
per-graph CUDA-graph memory (fitted on logs, tests/fixtures/field_logs/vllm).
"""

from __future__ import annotations

from dataclasses import dataclass

from qwenfit.core.expr import Num, as_int, lt, smax, smin, where
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.units import MIB, cdiv

__all__ = [
    "GraphPlan",
    "ProfilePeak",
    "RuntimeMemory",
    "cudagraph_capture_sizes",
    "cudagraph_memory_bytes",
    "cudagraph_plan",
    "decode_query_len",
    "encoder_profile_tokens",
    "flashinfer_workspace_bytes",
    "profile_peak",
    "runtime_memory",
]


# --------------------------------------------------------------------------------------------------
# 1. the device total vLLM budgets against: cudaMemGetInfo's total, which is less than nvidia-smi's.
#    The published figures per catalog GPU live in data/hardware.yaml (``runtime_total_bytes``, with
#    their sources); qwenfit.core.hardware.Device.usable_bytes applies them (and the 512 MiB rule for
#    the GPUs without one), for every engine. Deployment.gpu_memory_bytes carries it here.


# --------------------------------------------------------------------------------------------------
# 2. the profile run's peak (v1/worker/gpu/model_runner.py:1022 profile_run, Model Runner V2)

# non-torch memory created after the init snapshot (kernel modules, Triton/inductor, allocator slack):
# vLLM's own "non_torch_increase" 0.11 GiB for Qwen3.5-4B on one A100 (kvcached PR 448). Estimated.
NON_TORCH_INCREASE = 110 * MIB
IMAGE_TOKENS_PER_ITEM = 16384  # Qwen3.5 dummy image: "budget of 16384 tokens ... 1 image items" (logs)


@dataclass(frozen=True, slots=True)
class ProfilePeak:
    """Bytes above the weights that torch holds at the profile run's peak on one rank, by cause."""

    persistent: Num  # buffers that stay: sampler/penalty/grammar states, input buffers, inputs_embeds
    forward: Num  # the dummy forward over max_num_batched_tokens: the widest layer's live activations
    sampler: Num  # the dummy sampler pass over the max_num_seqs rows (fp32 logits pipeline)
    encoder: Num  # the vision encoder's profile pass (0 without a vision tower or off the first stage)
    encoder_output: Num  # the dummy image embeddings, alive until the profile run ends
    non_torch: int  # estimated

    @property
    def transient(self) -> Num:
        """The largest of the three phases (they do not overlap in time)."""
        return smax(self.encoder, self.encoder_output + smax(self.forward, self.sampler))

    @property
    def total(self) -> Num:
        return self.persistent + self.transient + self.non_torch


def decode_query_len(speculative_tokens: int = 0) -> int:
    """Tokens per request in a decode step: 1 + k draft tokens (model_runner.py:469)."""
    return 1 + speculative_tokens


def encoder_profile_tokens(max_num_batched_tokens: Num, max_model_len: Num | None = None) -> Num:
    """Vision tokens the encoder profile runs: budget ``max(max_num_batched_tokens, per item)``
    (v1/core/encoder_cache_manager.py:373, config/scheduler.py:306) filled with whole dummy images of
    ``per item`` tokens (16384 for Qwen3.5 images: logs). A ``max_model_len`` under 16384 shrinks the
    dummy image: estimated as max_model_len / 4 (one log: 4096 -> 2 items in a 2048 budget). Ints or
    formulas (:mod:`qwenfit.core.expr`)."""
    item = IMAGE_TOKENS_PER_ITEM
    whole = (smax(max_num_batched_tokens, item) // item) * item
    if max_model_len is None:
        return whole
    # a shorter context: items of max_model_len / 4 tokens filling the budget (the rounding down to whole
    # items is left out, which keeps the estimate monotone in the context)
    small = smax(max_num_batched_tokens, smax(max_model_len // 4, 1))
    return where(lt(max_model_len, IMAGE_TOKENS_PER_ITEM), small, whole)


def _layer_widths(spec: ModelSpec, tp: int, dp: int, ep: bool) -> dict[str, int]:
    """Elements per token each layer kind holds live at its widest point, beyond the two hidden-size
    streams (hidden states, residual). Shapes from the 0.33.0 source; estimated (no allocator replay)."""
    t = spec.text
    h = t.hidden_size
    out: dict[str, int] = {}
    # GDN, qwen_gdn_linear_attn.py:1147-1209: in_proj_qkvz + in_proj_ba outputs, core_attn_out
    # (torch.zeros), the gated norm's output; the core op itself is skipped in the profile run
    # (attn_metadata None -> _warmup_prefill_kernels on 64 tokens, :1308).
    kd, vd = t.linear_key_dim, t.linear_value_dim
    if t.n_linear_attention:
        out["gdn"] = (2 * kd + 2 * vd) // tp + 2 * t.linear_num_value_heads // tp + 2 * vd // tp + h
    # full attention (qwen3_next.py Qwen3NextAttention): qkv (with the output gate), attention
    # output, gated output, o_proj output
    kv_r = max(1, t.num_key_value_heads // tp)
    q_out = t.num_attention_heads * t.head_dim // tp
    out["attention"] = t.q_proj_rows // tp + 2 * kv_r * t.head_dim + 2 * q_out + h
    if t.intermediate_size and not spec.is_moe:
        out["mlp"] = 3 * t.intermediate_size // tp + h  # gate_up + silu_and_mul output + down output
    if spec.is_moe:
        k, e = t.num_experts_per_tok, t.num_experts
        n = t.moe_intermediate_size if ep and tp * dp > 1 else t.moe_intermediate_size // (tp * dp)
        # router logits (fp32) and top-k ids/weights, fused_moe intermediate caches 1/3 (shared) and 2,
        # the reduced output, the shared expert's gate_up / act / down
        routing = 2 * e + 4 * k
        fused = k * max(2 * n, h) + k * n + h
        shared = 3 * t.shared_expert_intermediate_size // tp + h if t.shared_expert_intermediate_size else 0
        out["moe"] = routing + fused + shared
    return out


def profile_peak(
    spec: ModelSpec,
    *,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    tp: int = 1,
    dp: int = 1,
    expert_parallel: bool = False,
    dtype_bytes: int = 2,
    vision: bool = True,
    speculative_tokens: int = 0,
    first_stage: bool = True,
    last_stage: bool = True,
    max_model_len: Num | None = None,
    uva: bool = True,
) -> ProfilePeak:
    """What vLLM 0.33.0's profile run holds above the weights on one rank
    (v1/worker/gpu/model_runner.py:1022-1052: encoder profile, ``_dummy_run(max_num_batched_tokens,
    skip_attn=True)``, then ``_dummy_sampler_run`` on the last PP stage).

    - persistent (exact shapes): PenaltiesState ``output_bin_counts`` int32 [max_num_seqs, V] and
      ``prompt_bin_mask`` [max_num_seqs, V/32] (v1/worker/gpu/sample/penalties.py:43-50),
      StructuredOutputsWorker ``grammar_bitmask`` int32 [max_num_seqs·(1+k), V/32]
      (v1/worker/gpu/structured_outputs.py:57-62), InputBuffers (input_batch.py:29-35), the encoder
      runner's ``inputs_embeds`` [max_num_batched_tokens, H] (mm/encoder_runner.py:58), draft tokens
      [max_num_seqs, k] int64 (states.py:76); ``all_token_ids`` [max_num_seqs, max_model_len] int32 is
      host memory (UVA) unless UVA is unavailable (WSL: ``uva=False``; states.py:37).
    - forward (estimated): the two hidden-size streams plus the widest layer's live outputs over
      ``max_num_batched_tokens`` (:func:`_layer_widths`); the MTP drafter's dummy propose runs one more
      layer of the same width over the same tokens and keeps a hidden-state buffer.
    - sampler (estimated): hidden states [T, H] still alive, logits [R, V] in the model dtype (another
      copy for the TP all-gather), and the warmup pass's fp32 copy (sample/sampler.py:242; the top-k/top-p,
      gumbel and logprob kernels are Triton, in place); R = min(T, max_num_seqs) (model_runner.py:862).
    - encoder (estimated): the Qwen3.5 ViT over 4 patches per token of :func:`encoder_profile_tokens`:
      pixel input (3·2·16² values per patch), and per block the larger of the attention (residual, norm,
      qkv, rotated q/k, output) and the MLP (residual, norm, fc1, activation); its output embeddings
      [tokens, H] stay in the encoder cache until the run ends.
    """
    t = spec.text
    b = dtype_bytes
    tokens = max_num_batched_tokens
    v = t.vocab_size
    h = t.hidden_size
    q = decode_query_len(speculative_tokens)
    reqs = smin(tokens, max_num_seqs)
    vis = spec.vision if (vision and first_stage) else None

    persistent: Num = tokens * (4 + 8 + 1) + max_num_seqs * 4 * 4  # input_ids, positions, is_padding, ...
    persistent += max_num_seqs * 8 * (1 + speculative_tokens)  # last_sampled_tokens, draft_tokens
    if last_stage:
        persistent += 4 * max_num_seqs * v + 4 * max_num_seqs * cdiv(v, 32)
        persistent += 4 * max_num_seqs * q * cdiv(v, 32)
    if vis is not None:
        persistent += tokens * h * b
    if not uva and max_model_len is not None:
        persistent += 4 * max_num_seqs * max_model_len

    widths = _layer_widths(spec, tp, dp, expert_parallel)
    forward = tokens * b * (2 * h + max(widths.values()))
    if speculative_tokens and last_stage:
        forward += tokens * b * h  # the drafter's hidden-state input kept beside the target's

    sampler: Num = 0
    if last_stage:
        sampler = tokens * h * b + reqs * h * b + reqs * v * b + reqs * v * 4
        if tp > 1:
            sampler += reqs * v * b

    encoder: Num = 0
    encoder_out: Num = 0
    if vis is not None:
        enc_tokens = encoder_profile_tokens(tokens, max_model_len)
        patches = enc_tokens * vis.spatial_merge_size**2
        pixel = vis.in_channels * vis.temporal_patch_size * vis.patch_size**2
        hv, iv = vis.hidden_size, vis.intermediate_size
        block = max(7 * hv, 2 * hv + 2 * iv)
        encoder = patches * b * (pixel + block)
        encoder_out = enc_tokens * vis.out_hidden_size * b
    return ProfilePeak(persistent, forward, sampler, encoder, encoder_out, NON_TORCH_INCREASE)


# --------------------------------------------------------------------------------------------------
# 3. CUDA graphs

# Per captured graph, fitted on the logs' "Estimated CUDA graph memory" / "Graph capturing ... took"
# (tests/fixtures/field_logs/vllm; benchmarks/field/vllm_runtime_score.py prints the fit). Estimated.
GRAPH_BYTES_DENSE = 410 * 1024  # Qwen3.5-0.8B/4B/9B: 0.30-0.46 MiB per graph
GRAPH_BYTES_MOE = 820 * 1024  # Qwen3.5-397B-A17B, Qwen3-Next-80B: 0.74-0.83 MiB per graph


@dataclass(frozen=True, slots=True)
class GraphPlan:
    """The graphs vLLM captures on one rank."""

    sizes: tuple[int, ...]  # cudagraph_capture_sizes (PIECEWISE: every size)
    full_sizes: tuple[int, ...]  # FULL graphs for uniform decode batches
    pieces: int  # piecewise subgraphs per size: one per layer plus one (split at attention / GDN ops)
    drafter_graphs: int

    @property
    def graphs(self) -> int:
        return len(self.sizes) * self.pieces + len(self.full_sizes) + self.drafter_graphs


def cudagraph_capture_sizes(
    max_num_seqs: int,
    max_num_batched_tokens: int,
    *,
    speculative_tokens: int = 0,
    sm100: bool = False,
) -> tuple[int, ...]:
    """vLLM's default ``cudagraph_capture_sizes`` (config/vllm.py:2452-2600): a ceiling of
    ``min(max_num_seqs·(1+k)·2, 512)`` (1024 on SM100) capped at max_num_batched_tokens; 1, 2, 4, then
    steps of 8 below 256 and 16 from 256; max_num_batched_tokens if under the ceiling; with k > 0 also
    every uniform decode size ``n·(1+k)`` for n in the request-count grid."""
    q = decode_query_len(speculative_tokens)
    default_max = 1024 if sm100 else 512
    ceiling = min(max_num_seqs * q * 2, default_max)
    uniform: list[int] = []
    if q > 1:
        max_reqs = min(max_num_seqs, default_max)
        counts = [n for n in (1, 2, 4) if n <= max_reqs]
        counts += list(range(8, min(max_reqs + 1, 256), 8)) + list(range(256, max_reqs + 1, 16))
        uniform = sorted({n * q for n in {*counts, max_reqs} if n * q <= ceiling})
    elif max_num_seqs <= ceiling:
        uniform = [max_num_seqs]
    ceiling = min(max_num_batched_tokens, ceiling)
    sizes = [i for i in (1, 2, 4) if i <= ceiling]
    if ceiling >= 8:
        sizes += list(range(8, min(ceiling + 1, 256), 8))
    if ceiling >= 256:
        sizes += list(range(256, ceiling + 1, 16))
    if max_num_batched_tokens <= ceiling and max_num_batched_tokens not in sizes:
        sizes.append(max_num_batched_tokens)
    sizes += [s for s in uniform if s <= max_num_batched_tokens]
    return tuple(sorted(set(sizes)))


def cudagraph_plan(
    spec: ModelSpec,
    *,
    max_num_seqs: int,
    max_num_batched_tokens: int,
    speculative_tokens: int = 0,
    mode: str = "FULL_AND_PIECEWISE",
    layers: int | None = None,
    last_stage: bool = True,
    sm100: bool = False,
) -> GraphPlan:
    """The graphs of one rank. ``mode``: vLLM's cudagraph_mode (FULL_AND_PIECEWISE is the default for
    Qwen3.5 in 0.33; PIECEWISE when spec decode runs on FlashInfer; NONE with --enforce-eager).
    FULL graphs: every capture size rounded up to a multiple of 1+k that stays within
    max_num_seqs·(1+k) and the largest size (v1/worker/gpu/cudagraph_utils.py:256-330)."""
    if mode == "NONE":
        return GraphPlan((), (), 0, 0)
    sizes = cudagraph_capture_sizes(
        max_num_seqs, max_num_batched_tokens, speculative_tokens=speculative_tokens, sm100=sm100
    )
    q = decode_query_len(speculative_tokens)
    full: tuple[int, ...] = ()
    if mode in ("FULL_AND_PIECEWISE", "FULL_DECODE_ONLY") and sizes:
        limit = min(max_num_seqs * q, sizes[-1])
        full = tuple(sorted({cdiv(s, q) * q for s in sizes if cdiv(s, q) * q <= limit}))
    n_layers = spec.text.num_hidden_layers if layers is None else layers
    pw = sizes if mode in ("FULL_AND_PIECEWISE", "PIECEWISE") else ()
    drafter = len(sizes) * (spec.mtp_layers + 1) if speculative_tokens and last_stage else 0
    return GraphPlan(pw, full, n_layers + 1, drafter)


# FlashInfer's attention workspace: envs.py:225 VLLM_FLASHINFER_WORKSPACE_BUFFER_SIZE = 394 MiB, allocated
# lazily by the metadata builder (v1/attention/backends/flashinfer.py:1255-1280 _get_workspace_buffer) the
# first time a wrapper is planned. The profile run skips attention (no metadata), so the buffer is first
# allocated inside vLLM's CUDA-graph profiling (v1/worker/gpu/cudagraph_utils.py:922-1009; V1 runner:
# gpu_model_runner.py profile_cudagraph_memory), which measures free device memory around the captures:
# the buffer is part of "Estimated CUDA graph memory" and of the "took" of the real capture.
# Logs (tests/fixtures/field_logs/vllm): 0.47 GiB for 1+1 graphs (Qwen3.6-35B-A3B, GB10, FLASHINFER),
# 0.61 GiB for 5+4 graphs (Qwen3.6-27B, GB10, FLASHINFER), 0.49 GiB for Qwen3.6-27B TP2 on RTX 3090
# (fp8_e5m2 KV: FLASHINFER), against 0.04 GiB for 4+3 graphs of Qwen3.5-0.8B on FLASH_ATTN.
FLASHINFER_WORKSPACE_BYTES = 394 * MIB
# 0.33.0 sizes it to the prefill chunk's query footprint, never below the default (flashinfer.py:1261-1277):
# max_num_batched_tokens × query heads on the rank × head_dim × 16 B (FLASHINFER_PREFILL_WORKSPACE_BYTES_
# PER_ELEM, flashinfer.py:104). The logs above (vLLM 0.20-0.24) show the fixed default.
FLASHINFER_PREFILL_WORKSPACE_BYTES_PER_ELEM = 16


def flashinfer_workspace_bytes(
    spec: ModelSpec, *, max_num_batched_tokens: Num, tp: int = 1, sized_by_chunk: bool = True
) -> Num:
    """FlashInfer's workspace buffer on one rank (vLLM 0.33.0: ``max(394 MiB, tokens × heads/tp × head_dim
    × 16)``; ``sized_by_chunk=False``: the fixed 394 MiB of the versions the field logs come from)."""
    if not sized_by_chunk:
        return FLASHINFER_WORKSPACE_BYTES
    t = spec.text
    heads = max(1, t.num_attention_heads // tp)
    est = max_num_batched_tokens * heads * t.head_dim * FLASHINFER_PREFILL_WORKSPACE_BYTES_PER_ELEM
    return smax(FLASHINFER_WORKSPACE_BYTES, est)


def cudagraph_memory_bytes(spec: ModelSpec, plan: GraphPlan, workspace: Num = 0) -> Num:
    """Estimated CUDA-graph memory of ``plan``: graphs × a per-graph cost fitted on the logs (dense
    0.40 MiB, MoE 0.80 MiB), plus ``workspace``: buffers first allocated during the capture
    (:func:`flashinfer_workspace_bytes` on the FLASHINFER attention backend). vLLM measures it
    (v1/worker/gpu/cudagraph_utils.py:922-1009 captures every PIECEWISE graph and a few FULL ones into a
    throwaway pool and extrapolates), so no closed form exists; the fit's error on the logs is printed by
    ``python -m benchmarks.field.vllm``."""
    if not plan.graphs:
        return 0
    per = GRAPH_BYTES_MOE if spec.is_moe else GRAPH_BYTES_DENSE
    return plan.graphs * per + workspace


# --------------------------------------------------------------------------------------------------
# 4. everything together


@dataclass(frozen=True, slots=True)
class RuntimeMemory:
    """vLLM's non-weight, non-KV memory on one rank and the KV pool it leaves."""

    requested: int  # ceil(total × gpu_memory_utilization)
    peak: ProfilePeak
    cudagraphs: int  # subtracted from the pool (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS, default on)
    graphs: GraphPlan

    def available_kv(self, weights: int) -> Num:
        """ "Available KV cache memory" for a rank holding ``weights`` bytes (gpu_worker.py:753)."""
        return self.requested - weights - self.peak.total - self.cudagraphs


def runtime_memory(
    spec: ModelSpec,
    *,
    total: int,
    gpu_memory_utilization: float,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    tp: int = 1,
    dp: int = 1,
    expert_parallel: bool = False,
    dtype_bytes: int = 2,
    vision: bool = True,
    speculative_tokens: int = 0,
    enforce_eager: bool = False,
    cudagraph_mode: str = "FULL_AND_PIECEWISE",
    estimate_cudagraphs: bool = True,
    layers: range | None = None,
    max_model_len: int | None = None,
    uva: bool = True,
    sm100: bool = False,
    attention_backend: str = "FLASH_ATTN",
    workspace_sized_by_chunk: bool = True,
) -> RuntimeMemory:
    """Requested budget, profile peak and CUDA-graph memory of one rank (``layers``: its PP stage).
    ``estimate_cudagraphs=False`` reproduces vLLM before 0.21 (graphs captured after the pool).
    ``attention_backend``: the backend vLLM selects (:func:`.kv_dtypes.kv_dtype_backend`); FLASHINFER
    allocates its workspace during the graph profiling."""
    t = spec.text
    stage = layers if layers is not None else range(t.num_hidden_layers)
    first, last = stage.start == 0, stage.stop == t.num_hidden_layers
    requested = -(-total * round(gpu_memory_utilization * 10000) // 10000)
    peak = profile_peak(
        spec, max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs, tp=tp, dp=dp,
        expert_parallel=expert_parallel, dtype_bytes=dtype_bytes, vision=vision,
        speculative_tokens=speculative_tokens, first_stage=first, last_stage=last,
        max_model_len=max_model_len, uva=uva,
    )  # fmt: skip
    plan = cudagraph_plan(
        spec, max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens,
        speculative_tokens=speculative_tokens, mode="NONE" if enforce_eager else cudagraph_mode,
        layers=len(stage), last_stage=last, sm100=sm100,
    )  # fmt: skip
    workspace: Num = 0
    if attention_backend == "FLASHINFER":
        workspace = flashinfer_workspace_bytes(
            spec,
            max_num_batched_tokens=max_num_batched_tokens,
            tp=tp,
            sized_by_chunk=workspace_sized_by_chunk,
        )
    graphs = as_int(cudagraph_memory_bytes(spec, plan, workspace)) if estimate_cudagraphs else 0
    return RuntimeMemory(requested, peak, graphs, plan)
