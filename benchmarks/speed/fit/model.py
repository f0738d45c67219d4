"""The fitted decode/prefill speed model: pure functions and one constants table.

Self-contained (stdlib ``math`` and the fitted constants' data module) so it can move into
``qwenfit/core/fit/speed.py`` and the engines' ``SpeedConstants``. Inputs are the quantities qwenfit
already computes (``features.Row`` has them as attributes; any object with the same attribute names
works). Every constant below is physically meaningful and bounded; ``fit.py`` fits them
(``CONSTANTS`` holds the values of the fit on all rows, read from ``qwenfit/core/fit/speed_fitted.py``,
which ``python -m benchmarks.speed.fit`` writes; ``PRIORS`` the prior median, log-sd and bounds they
are fitted under).

Decode, one step of ``T = b x m`` tokens (b sequences, m = 1 + MTP drafts per sequence)::

    t_mem   = [W_dense_gpu + W_exp_gpu x U(T)/k + b x (kv_factor x KV(depth) + 2 S)] / (eta x BW x tp)
            + [W_dense_cpu + W_exp_cpu x U(T)/k] / BW_host
    t_step  = t_mem
            + (T - 1) x 2 A / (eta_v[f] x F x tp)       # tokens beyond the first (F unknown:
                                                       #   (T - 1) x verify_token_frac x t_mem)
            + T x 4 H_q D_h n_attn x depth / (attn_decode x F x tp)   # attention FLOPs at depth (F known)
            + step_us[f] + n_layers x layer_us[f/be] x (moe_layer_factor[f] if MoE)
            + n_offloaded_layers x offload_layer_us
            + [tp > 1] x 2 n_layers (tp - 1) x allreduce_us[link]
            + (b - 1) x seq_us[f]
    eta     = eta_hw[hardware class] x eta_k[kernel cell] (x bf16_eta[cell] for BF16 weights)
    BW_host = min(eta_host x host peak, host_core_gbps x cores)
    U(T)    = E (1 - (1 - k/E)^T)      # distinct routed experts T tokens touch (k of E each)

KV(depth) = KV bytes per token of depth (full-attention layers only, the row's KV type) x the mean
depth while decoding (depth + generated/2); S = the Gated DeltaNet state (read and written: 2 S);
A = matmul parameters a token multiplies (routed experts at k/E, no embedding, no output head).
Attention at depth costs its bytes (the KV term) and its FLOPs: each query token computes Q.K and
P.V against every cached token of every full-attention layer, 4 H_q D_h FLOPs per cached token and
layer (the same count prefill's attention term uses). A batch-1 decode kernel runs them far below the
tensor peak: the query block of one KV head holds only its GQA group (H_q / H_kv = 4 to 16 rows for
the Qwen3.5/3.6 models: 27B 24/4, 35B-A3B 16/2, 122B 32/2) of a 16-row MMA tile, and split-K softmax
passes and KV dequantization run on the CUDA cores, so the time
grows faster with depth than the KV bytes do (RTX 4090 27B q4_0: 39.3 -> 33.4 tok/s at 64k, ~3x what
the bytes explain). ``attn_decode`` = the fraction of the FP16 peak those FLOPs run at; the prior
0.1 is an engineering estimate (GQA rows / tile rows ~0.4 for 6 of 16, halved twice for the split-K passes and
the CUDA-core softmax/dequant), set before fitting; rows on devices without an FP16 figure keep the
bytes term alone. llama.cpp CUDA over a quantized KV cache with 1 (2 on Ada and newer) query tokens per
sequence runs the vector kernel instead, one CTA per query head on the CUDA cores (qwenfit.core.fit.
speed_kvq): its FLOPs run at ``attn_decode_kvq.llama.cpp/cuda`` of the FP16 peak (:func:`attn_decode_eff`).

MTP (n drafts; E_acc = tokens per cycle = 1 + accepted drafts, published where the row gives it,
else 1 + sum_i mtp_accept^i)::

    t_cycle = t_step(m = n + 1) + n x t_draft
    t_draft = [W_mtp_dense + W_mtp_exp x U(b)/k] / (eta x BW x tp) + draft_us[f]
              + b x kv_factor x KV(depth) / n_attn / (eta x BW x tp)     # the MTP layer's own KV at depth
              + b x 4 H_q D_h x depth / (attn_decode x F x tp)            # and its attention FLOPs
    tok/s   = b x E_acc / t_cycle

vLLM's FA2 verify (CUDA SM8x/SM12x with an unquantized KV cache: qwenfit.core.engines.vllm.verify): a
query of 1 + n tokens is neither packed with its GQA group nor split over the SMs (flash_api.cpp:646,
757-763), so each query head of each sequence is one CTA running a kBlockM-row tile over the whole depth
on one SM; the cycle's verify attention FLOPs (T x ... above, and the first draft pass's) become

    t_verify_attn = (n_attn + 1) x 4 x kBlockM x D_h x depth / (verify_cta_tflops x 1e12)   (one wave)

Concurrency with prompts admitted while streams decode (club-3090 sweep): the i-th stream admitted
(i = 0..b-1) spends G / E_acc cycles plus ``interleave`` x (b - 1 - i) prefills of the later streams'
prompts on its G = 256 tokens; the sweep reports b x the median of the b per-stream rates.

Prefill of P tokens from depth d0, ubatches of u tokens (F = dense FP16 TFLOPS of the catalog)::

    t_pp = sum_ubatch [ max(2 n_u [A_d / mu(n_u) + A_r / mu(m_r)] / (eta_c x F x tp),
                            W_res_gpu / (eta x BW x tp))
                        + t_fixed + W_res_cpu / (eta_pcie x PCIe) ]
         + 4 H_q D_h n_attn (P d0 + P^2/2) / (attn_prefill x eta_c x F x tp)
         + [tp > 1] x 2 n_layers x P x hidden x 2 B x 2 (tp - 1)/tp / (eta_link x link)
    mu(m) = m / (m + gemm_m_half)      # a weight matrix multiplied by m tokens at once
    t_fixed = the decode step's fixed cost; llama.cpp CUDA (eager ubatches, no CUDA graph replay):
              with prefill_layer_us [x moe_layer_factor] per layer instead of layer_us (prefill_fixed_us)
    A_d, A_r = dense / routed (k/E) matmul parameters; m_r = n_u / U(n_u) tokens per touched expert
    eta_c x bf16_eta_c[cell] for BF16 weights

Constants by owner (what moves where): ``eta_hw.*`` belong to the hardware kind
(qwenfit.core.fit.speed.DRAM_EFFICIENCY); ``eta_k.<cell>``, ``layer_us.<family/backend>``,
``prefill_layer_us.<cell>``, ``eta_c.<cell>``, ``bf16_*`` to the engine family x backend
(SpeedConstants.layer_us / compute_efficiency plus a new kernel_efficiency); ``step_us.*``, ``kv_factor.*``,
``moe_layer_factor.*``, ``eta_v.*``, ``draft_us.*``, ``seq_us.*`` to the engine family
(SpeedConstants.step_us plus new fields; Ollama reads llama.cpp's where it has none of its own);
the rest are global constants of speed.py.
"""

from __future__ import annotations

import statistics
from typing import Any

from qwenfit.core.engines.llama_cpp.engine import (
    GGML_MAT_VEC_MAX_TOKENS,
)  # ggml's mat-vec limit (sources there)
from qwenfit.core.fit import gemm, speed, speed_fitted

# ------------------------------------------------------------------------------------------------
# constants: name -> (prior median, prior log-sd, lower bound, upper bound, unit, meaning)
# A log-sd of 0 marks a constant held fixed (no data can move it).

PRIORS: dict[str, tuple[float, float, float, float, str, str]] = {
    # memory: fraction of peak bandwidth a streaming read reaches, by hardware class
    "eta_hw.gpu": (0.92, 0.10, 0.50, 1.0, "", "discrete GDDR/HBM, streaming read / peak"),
    "eta_hw.strix": (0.85, 0.15, 0.40, 1.0, "", "Strix Halo LPDDR5X, streaming read / peak"),
    "eta_hw.spark": (0.85, 0.15, 0.40, 1.0, "", "DGX Spark LPDDR5X, streaming read / peak"),
    "eta_hw.apple": (0.85, 0.15, 0.40, 1.0, "", "Apple unified memory, streaming read / peak"),
    # kernels: quantized GEMV / MoE decode kernels relative to a streaming read
    "eta_k.llama.cpp/cuda": (0.90, 0.20, 0.20, 1.0, "", "llama.cpp CUDA (MMVQ) decode kernels"),
    "eta_k.llama.cpp/rocm": (0.80, 0.25, 0.20, 1.0, "", "llama.cpp ROCm/HIP decode kernels"),
    "eta_k.llama.cpp/vulkan": (0.80, 0.25, 0.20, 1.0, "", "llama.cpp Vulkan decode kernels"),
    "eta_k.llama.cpp/metal": (0.85, 0.25, 0.20, 1.0, "", "llama.cpp Metal decode kernels"),
    "eta_k.llama.cpp/cpu": (1.0, 0.0, 1.0, 1.0, "", "CPU backend (host RAM rate already sustained)"),
    "eta_k.vllm/cuda": (0.85, 0.25, 0.20, 1.0, "", "vLLM CUDA (Marlin/CUTLASS/FLA) decode kernels"),
    "eta_k.vllm/rocm": (0.70, 0.35, 0.10, 1.0, "", "vLLM ROCm decode kernels"),
    "eta_k.vllm/gb10": (
        0.85,
        0.35,
        0.10,
        1.0,
        "",
        "vLLM on GB10 (sm_121: Marlin / Triton-FLA fallbacks, not the tuned sm_90/100 paths)",
    ),
    "eta_k.mlx": (0.85, 0.25, 0.20, 1.0, "", "MLX quantized mat-vec"),
    # fixed costs per token
    "step_us.llama.cpp": (
        200.0,
        0.7,
        10.0,
        5000.0,
        "us",
        "llama.cpp per-token step (graph, sampling, logits)",
    ),
    "step_us.ollama": (500.0, 0.7, 10.0, 20000.0, "us", "Ollama per-token step (runner + HTTP stream)"),
    "step_us.vllm": (1000.0, 0.7, 50.0, 10000.0, "us", "vLLM per-step scheduler, sampler, detokenizer"),
    "step_us.mlx": (500.0, 0.7, 10.0, 10000.0, "us", "MLX per-token Python loop + eval sync"),
    "step_us.mlx-swift": (500.0, 0.7, 10.0, 10000.0, "us", "mlx-swift-lm per-token step (Swift host loop)"),
    "layer_us.llama.cpp/cuda": (100.0, 0.7, 2.0, 2000.0, "us", "per decoder layer, llama.cpp CUDA"),
    "layer_us.llama.cpp/rocm": (200.0, 0.7, 2.0, 2000.0, "us", "per decoder layer, llama.cpp ROCm"),
    "layer_us.llama.cpp/vulkan": (200.0, 0.7, 2.0, 2000.0, "us", "per decoder layer, llama.cpp Vulkan"),
    "layer_us.llama.cpp/metal": (150.0, 0.7, 2.0, 2000.0, "us", "per decoder layer, llama.cpp Metal"),
    "layer_us.llama.cpp/cpu": (50.0, 0.0, 50.0, 50.0, "us", "per decoder layer, CPU backend (no data)"),
    # Ollama's CGO engine (its Go model code on vendored GGML, before v0.30 / PR #16031: features.
    # _ollama_runner); fit only: Ollama >= 0.30 runs llama-server (llama.cpp's costs), MLX models its
    # MLX engine (MLX's costs)
    "layer_us.ollama-cgo/cuda": (
        150.0,
        1.0,
        2.0,
        3000.0,
        "us",
        "per decoder layer, Ollama's CGO engine (Go model code on GGML, < v0.30) on CUDA",
    ),
    "layer_us.ollama-cgo/metal": (
        200.0,
        1.0,
        2.0,
        3000.0,
        "us",
        "per decoder layer, Ollama's CGO engine (Go model code on GGML, < v0.30) on Metal",
    ),
    "layer_us.vllm/cuda": (50.0, 0.7, 1.0, 1000.0, "us", "per decoder layer, vLLM CUDA graphs"),
    "layer_us.vllm/rocm": (80.0, 0.7, 1.0, 2000.0, "us", "per decoder layer, vLLM ROCm"),
    "layer_us.mlx": (100.0, 0.7, 2.0, 2000.0, "us", "per decoder layer, MLX"),
    "layer_us.mlx-swift": (
        100.0,
        0.7,
        2.0,
        2000.0,
        "us",
        "per decoder layer, MLX from a compiled host (mlx-swift-lm; Ollama's Go MLX engine)",
    ),
    "piecewise_layer_factor.vllm": (
        2.0,
        0.7,
        1.0,
        10.0,
        "x",
        "per-layer cost of vLLM builds before full CUDA graphs by default (PR #25444, v0.11.0) / after",
    ),
    "moe_layer_factor.llama.cpp": (
        1.5,
        0.5,
        1.0,
        8.0,
        "x",
        "per-layer fixed cost of an MoE layer / a dense one, llama.cpp",
    ),
    "moe_layer_factor.vllm": (
        1.5,
        0.5,
        1.0,
        8.0,
        "x",
        "per-layer fixed cost of an MoE layer / a dense one, vLLM",
    ),
    "moe_layer_factor.ollama-cgo": (
        1.5,
        0.5,
        1.0,
        8.0,
        "x",
        "per-layer fixed cost of an MoE layer / a dense one, Ollama's CGO engine (its own Go graph, < v0.30)",
    ),
    "moe_layer_factor.mlx": (
        1.5,
        0.5,
        1.0,
        8.0,
        "x",
        "per-layer fixed cost of an MoE layer / a dense one, MLX",
    ),
    # depth: KV read time multiplier (attention kernels vs a streaming read), per engine family
    "kv_factor.llama.cpp": (
        1.5,
        0.7,
        1.0,
        50.0,
        "x",
        "llama.cpp FA decode: KV read time / bytes at eta x BW",
    ),
    "kv_factor.ollama-cgo/cuda": (
        1.5,
        1.5,
        1.0,
        500.0,
        "x",
        "Ollama's CGO engine (< v0.30): attention at depth, CUDA",
    ),
    "kv_factor.ollama-cgo/metal": (
        1.5,
        1.5,
        1.0,
        500.0,
        "x",
        "Ollama's CGO engine (< v0.30): attention at depth, Metal",
    ),
    "kv_factor.vllm": (1.5, 0.7, 1.0, 50.0, "x", "vLLM attention backends"),
    "kv_factor.mlx": (1.5, 0.7, 1.0, 50.0, "x", "MLX SDPA"),
    # host RAM (experts offloaded to the CPU)
    "eta_host": (0.75, 0.20, 0.30, 1.0, "", "sustained / peak host RAM bandwidth for CPU expert matmuls"),
    # host_core_gbps binds only on a many-channel host with few cores. Catalog rows: loftllc's EPYC 9175F (16
    # cores, 12 x DDR5-6400); held out, it is fitted from the calibration rows of two other owners in
    # ik_llama.cpp discussion #258 (DeepSeek-V3/R1, every routed expert in RAM): cmoncure's EPYC 9175F (16
    # cores, 12 x DDR5-4800) and sousekd's EPYC 9355 (30-32 threads, 12 x DDR5-6400, Windows). The prior is an
    # engineering estimate. Evidence on the unit (issue #19, 2026-12-07):
    # * cores = the engine's thread count. loftllc's page gives no -t (its launch command breaks off at
    #   "-c 2621" in the stored copy); ik_llama.cpp's default is `n_threads = cpu_get_num_math()`
    #   (common/common.h at 007d6400), the physical cores of a non-hybrid x86 CPU: the 16 features._host
    #   reads. The same author's Kimi-K2.5 runs on that machine use `--threads 13` with `-ot exps=CPU`
    #   (loftllc.dev .../kimi-k2-5-1t-cpu-inference-and-long-context); the 397B page does not say 13, so
    #   it is not assumed (13 instead of 16 cores moves run 1's estimate at the 20 GB/s prior from 32.7 to
    #   29.7 tok/s, the other constants as fitted on all rows; measured 21-24).
    # * The rate is not one property of the CPU: with the other constants as fitted on every row, each row
    #   alone needs 11.8 GB/s per core (loftllc run 8, Qwen3.5 IQ4_NL experts), 23.2 (cmoncure, the same
    #   9175F part, DeepSeek IQ4_K_R4), 13.5 and 11.8 (sousekd, IQ4_K_R4 and IQ2_K_R4 at 30 threads).
    #   sousekd's quant sweep on one host and build (same GPU tensors, 6.97 -> 12.35 GB of experts per
    #   token: 17.98 -> 15.07 tok/s) costs 2.0 ms per extra GB, i.e. a marginal ~500 GB/s (0.81 of peak,
    #   16.7 GB/s per thread), and extrapolates to 41.7 ms a token at zero expert bytes, ~21 ms more than
    #   its 18.6 GB of GPU tensors take at 0.9 of the RTX 4090's 1008 GB/s. cmoncure's
    #   ik_llama.cpp#450 moved TG 12.5 -> 9.8 t/s on that 9175F between two builds of the same code (a
    #   CPU-matmul refactor, #435): CPU-side code, not RAM alone, sets these rates.
    # * Per-core *bytes* are not quant-independent either: fairydreaming measured the same Zen 5 part
    #   streaming F16 at >= 19 GB/s per core ("dual Epyc 9175F, 16 x DDR5 6400 MT/s RAM,
    #   Llama-3.1-70B-Instruct model, f16, tg increased from 2.4 t/s to 4.31 t/s", CPU only,
    #   ggml-org/llama.cpp#11744: 141 GB x 4.31 / 32 cores, 0.74 of its RAM peak). That row is not a fit
    #   row (no CPU-only decode path or NUMA model here). A per-core limit in weights/s, or a per-token CPU
    #   overhead that does not scale with bytes, would fit these better than bytes/s per core; four hosts
    #   do not pin either, so the bytes unit stays.
    "host_core_gbps": (20.0, 0.5, 3.0, 100.0, "GB/s", "quantized-matmul streaming rate per CPU core"),
    "offload_layer_us": (50.0, 0.7, 1.0, 3000.0, "us", "graph split per layer with CPU tensors"),
    # prefill_layer_us: a prompt's ubatches run eagerly on ggml-cuda (no CUDA graph replay: prefill_fixed_us),
    # so each layer pays its kernel launches. Prior from counts, not from rows: llama.cpp 0c1e570's real
    # ggml-cuda host code issues 42.75 (9B) / 42.0 (27B) launches per layer, averaged over 3 GDN + 1 attention
    # layers, for a 37-token ubatch (40.75 / 37.75 at 512; 58.75 for 35B-A3B, the same 1.4x of dense as its
    # graphed decode steps: 39.5 vs 28.5, so MoE layers take the fitted moe_layer_factor as in decode),
    # measured on the fake GPU (scripts/llama_graph_nodes.py -> tests/fixtures/llama_graph_nodes/qwen35.json),
    # x 4-6 us per launch on Linux (susun-blog.com "pegainfer (3)", RTX 5070 Ti, CUDA 13.0: "This process
    # takes about 4-6 us"; JuliaGPU CUDAdrv.jl PR #15: "launch overhead of 4.90us") = 210 us at 5 us.
    # Log-sd 0.6: Windows (WDDM) launches cost more (no clean published figure; 8-12 us estimated, 1-1.5 sd).
    "prefill_layer_us.llama.cpp/cuda": (
        210.0,
        0.6,
        2.0,
        5000.0,
        "us",
        "per decoder layer of an eager (not graph-replayed) prefill ubatch, llama.cpp CUDA",
    ),
    # tensor parallelism
    "allreduce_us.pcie": (30.0, 0.7, 1.0, 1000.0, "us", "one all-reduce of a hidden vector over PCIe"),
    "allreduce_us.nvlink": (15.0, 0.7, 1.0, 1000.0, "us", "one all-reduce over NVLink"),
    # MTP / batched decode
    "mtp_accept": (
        0.80,
        0.25,
        0.30,
        0.98,
        "",
        "per-position MTP acceptance when a row publishes none (geometric): the median of the published "
        "acceptances of the training rows (fit.published_accept), not fitted to speed; prior = fallback",
    ),
    "verify_token_frac": (
        0.05,
        0.8,
        0.001,
        1.0,
        "",
        "extra step time per extra token / t_mem, devices without FP16 figure",
    ),
    "eta_v.llama.cpp": (
        0.10,
        1.0,
        0.005,
        1.0,
        "",
        "small-batch (2-32 tokens) matmul efficiency / FP16 peak, llama.cpp",
    ),
    "eta_v.vllm": (0.20, 1.0, 0.005, 1.0, "", "small-batch matmul efficiency / FP16 peak, vLLM"),
    "eta_v.mlx": (0.10, 1.0, 0.005, 1.0, "", "small-batch matmul efficiency / FP16 peak, MLX"),
    # vLLM's FA2 verify (qwenfit.core.engines.vllm.verify): each query head of each sequence is one CTA
    # on one SM running a kBlockM-row tile over every cached token; the prior is one SM's FP16 tensor
    # rate (catalog FP16 TFLOPS / SM count from NVIDIA's spec sheets: RTX 3090 71.2/82 = 0.87, RTX 4090
    # 165.2/128 = 1.29, RTX 5090 209.5/170 = 1.23, RTX 5060 Ti 47.4/36 = 1.32 TFLOPS) at about half
    # (FlashAttention-2 forward: 50-73 % of the A100's peak with every SM busy, Dao 2023, arXiv
    # 2307.08691 sec. 4.1; here one 4-warp CTA per SM)
    "verify_cta_tflops": (0.5, 0.7, 0.05, 5.0, "TFLOPS", "one FA2 verify CTA's tensor rate (vLLM MTP)"),
    "draft_us.llama.cpp": (300.0, 0.7, 5.0, 5000.0, "us", "fixed cost of one MTP draft step, llama.cpp"),
    "draft_us.vllm": (100.0, 0.7, 5.0, 5000.0, "us", "fixed cost of one MTP draft step, vLLM"),
    "draft_us.mlx": (300.0, 0.7, 5.0, 5000.0, "us", "fixed cost of one MTP draft step, MLX"),
    "seq_us.llama.cpp": (30.0, 0.8, 1.0, 2000.0, "us", "per extra sequence in a decode step, llama.cpp"),
    "seq_us.vllm": (30.0, 0.8, 1.0, 2000.0, "us", "per extra sequence in a decode step, vLLM"),
    "seq_us.mlx": (50.0, 0.8, 1.0, 2000.0, "us", "per extra sequence in a decode step, MLX"),
    # interleave: prior 1.0 from the scheduler, not from the rows. vLLM v1 schedules the running
    # requests' decode tokens first and gives the rest of the step's token budget to waiting prompts
    # (v1/core/sched/scheduler.py:793, :1049); the club-3090 composes run max-num-batched-tokens 8192
    # (models/qwen3.6-27b/vllm/compose/dual/autoround-int4/fp8-mtp.yml, qwen3.6-35b-a3b/.../dual/
    # autoround-int4/fp8.yml @4a29ab57), so a 16K prompt takes 2 steps and every later stream's prompt
    # is prefilled inside the 256 decode steps of a stream already decoding: its whole prefill time is in
    # that stream's window. Slightly less than 1 where the chunk's GEMMs and the decode token share one
    # weight read. (It was 0.5, a placeholder.)
    "interleave": (1.0, 0.5, 0.05, 2.0, "", "share of a later stream's prefill in one stream's decode"),
    # prefill
    "eta_c.llama.cpp/cuda": (
        0.35,
        0.5,
        0.02,
        1.0,
        "",
        "prefill GEMM / dense FP16 tensor peak, llama.cpp CUDA",
    ),
    "eta_c.llama.cpp/rocm": (0.25, 0.5, 0.02, 1.0, "", "prefill, llama.cpp ROCm"),
    "eta_c.llama.cpp/vulkan": (0.25, 0.5, 0.02, 1.0, "", "prefill, llama.cpp Vulkan"),
    "eta_c.llama.cpp/metal": (0.40, 0.5, 0.02, 1.0, "", "prefill, llama.cpp Metal"),
    "eta_c.llama.cpp/cpu": (0.40, 0.0, 0.40, 0.40, "", "prefill, CPU (no data)"),
    "eta_c.vllm/cuda": (0.50, 0.5, 0.02, 1.0, "", "prefill, vLLM CUDA"),
    "eta_c.vllm/rocm": (0.40, 0.5, 0.02, 1.0, "", "prefill, vLLM ROCm"),
    "eta_c.mlx": (0.45, 0.5, 0.02, 1.0, "", "prefill, MLX"),
    # a weight matrix multiplied by m tokens at once runs at m / (m + gemm_m_half) of the large-m GEMM
    # rate: each weight tile is loaded (and, for quantized types, unpacked) once per m rows of output,
    # so small-m GEMMs are bound by that load, not by the tensor units (roofline, additive form).
    # m = the ubatch's tokens for a dense matrix; for a routed expert, the tokens routed to it
    # (ubatch x k / distinct experts touched): 16 for 35B-A3B / 122B-A10B (k 8 of 256) at ubatch 512,
    # 10 for Qwen3-Next / 397B (10 of 512), 64 for gpt-oss-20b (4 of 32). llama.cpp's MUL_MAT_ID
    # sorts the ubatch's tokens by expert and runs one MMQ tile column per expert
    # (ggml-cuda/mmq.cuh, mul_mat_q with ids; ggml_cuda_should_use_mmq takes n_experts, mmq.cu:318).
    "gemm_m_half": (16.0, 1.0, 1.0, 1024.0, "tokens", "tokens per weight matrix at half the GEMM rate"),
    "attn_prefill": (
        0.5,
        0.7,
        0.02,
        2.0,
        "x",
        "attention-score FLOP efficiency / GEMM (one value: the per-backend fits agreed)",
    ),
    "eta_link": (0.5, 0.5, 0.05, 1.0, "", "all-reduce bandwidth / link rate (prefill activations under TP)"),
    "bf16_eta.llama.cpp/rocm": (
        1.0,
        0.7,
        0.1,
        1.2,
        "x",
        "BF16 weights: decode kernel efficiency factor, llama.cpp ROCm",
    ),
    # BF16 on Vulkan, the mechanism (documented; the prior is not set from it): the BF16 rows' own log (kyuz0
    # benchmark/results/Qwen3.6-35B-A3B-BF16-00001-of-00002__vulkan_radv__fa1.log:2) reads "AMD Radeon 8060S
    # Graphics (RADV GFX1151) ... bf16: 0" (no VK_KHR_shader_bfloat16), so ggml-vulkan widens each BF16 weight
    # by an integer shift (vulkan-shaders/dequant_funcs.glsl:44-54, types.glsl:1968) and builds every bf16
    # shader without spirv-opt (vulkan-shaders-gen.cpp:360-363, llama.cpp issue #15344); llama.cpp as vendored
    # by llama-cpp-python 0.3.36. Three sources measure BF16 decode on Vulkan: kyuz0 and jingkaihe-skills-
    # strix-halo-bf16 (another person's Strix Halo, "bf16: 0", "about 10 to 11 tok/s" for 35B-A3B BF16) on
    # gfx1151 RADV, and gisenberg-local-model-eval-rtxpro6000 (RTX PRO 6000, BF16 and Q8_0 of one model).
    # One decode factor for every Vulkan device is the engine's own structure, not a lumping of devices: the
    # decode shaders (mul_mat_vec_bf16_*, mul_mat_vec_id_bf16_*) are created with no bf16 feature check
    # (ggml-vulkan.cpp:2929, 2958, 3015) and always built with the scalar bf16_to_fp32 widening
    # (vulkan-shaders-gen.cpp:577-578: "scalar path promotes to float"); VK_KHR_shader_bfloat16 ("bf16: 1")
    # selects only the coopmat matmul shaders, i.e. prefill (bf16_eta_c below).
    "bf16_eta.llama.cpp/vulkan": (
        1.0,
        0.7,
        0.1,
        1.2,
        "x",
        "BF16 weights: decode kernel efficiency factor, llama.cpp Vulkan",
    ),
    "bf16_eta.vllm/cuda": (
        1.0,
        0.7,
        0.1,
        1.3,
        "x",
        "BF16 weights: decode kernel efficiency factor, vLLM CUDA (unquantized GEMV, not Marlin/CUTLASS)",
    ),
    "bf16_eta_c.llama.cpp/rocm": (
        1.0,
        0.7,
        0.1,
        1.2,
        "x",
        "BF16 weights: prefill efficiency factor, llama.cpp ROCm",
    ),
    # Prefill's BF16 matmul does depend on the device: without bf16 coopmat support ("bf16: 0") ggml-vulkan
    # takes its "BF16 fallback for coopmat devices without bf16 coopmat support" tiles (ggml-vulkan.cpp:
    # 2794-2797, 4792). Only kyuz0 ("bf16: 0") publishes a BF16 Vulkan prefill figure, so held out its rows
    # get this prior; no prefill figure exists for a device reporting "bf16: 1", whose prefill path differs.
    "bf16_eta_c.llama.cpp/vulkan": (
        1.0,
        0.7,
        0.1,
        1.2,
        "x",
        "BF16 weights: prefill efficiency factor, llama.cpp Vulkan",
    ),
    "hipblas_eta_c.llama.cpp/rocm": (
        0.5,
        0.7,
        0.05,
        1.5,
        "x",
        "prefill efficiency of llama.cpp ROCm builds before WMMA-MMQ on RDNA3 (PR #17576: dequantize + "
        "hipBLAS) / after",
    ),
    "eta_pcie": (0.75, 0.3, 0.2, 1.0, "", "host->GPU copy / PCIe link rate (op offload in prefill)"),
    "attn_decode": (
        0.1,
        1.0,
        0.002,
        1.0,
        "",
        "decode attention FLOPs at depth (4 H_q D_h per cached token and layer) / dense FP16 peak",
    ),
    # llama.cpp CUDA, quantized KV cache (q4_0/q8_0/...), a step with at most 1 (Turing/Ampere) or 2 (Ada
    # and newer) query tokens per sequence: attention runs FlashAttention's vector kernel, one CTA per query
    # head on the CUDA cores with per-element dequantization, not the GQA-packed tensor-core kernel an F16
    # cache gets (qwenfit.core.fit.speed_kvq: fattn.cu:638-664, fattn-vec.cuh:107-111, 541). Prior median
    # from an independent measurement, not a row of this fit: jdkruzr's "q8-KV isolation" run
    # (jdkruzr-qwen36-27b-5060ti-bench.yaml, README @4e0ff17d: "**q8-KV tax:** ~15% slower decode at 255k
    # (23.4 vs 27.4)", Qwen3.6-27B Q8_0, 2x RTX 3090 -sm tensor, f16 vs q8_0 KV; not scorable: qwenfit has
    # no -sm tensor). Per GPU (12 of 24 query heads, 2 of 4 KV heads), at 261,248 tokens deep and the
    # constants of the b58240c fit (eta 0.9227 x 936 GB/s, kv_factor 1.021, attn_decode 0.357): q8_0 takes
    # 6.24 ms longer than f16 while reading 4.74 ms fewer KV bytes, and f16's packed attention took 2.02 ms,
    # so the vector kernel's 4 x 12 x 256 x 16 x 261,248 FLOPs take 13.0 ms: 3.95 TFLOPS, 0.0555 of the
    # RTX 3090's 71.2. Log-sd 0.5: one pair of runs, -sm tensor's head split assumed, other constants fixed;
    # over attn_decode's LOSO range (0.18-0.37; tianchengwu's q4_0 rows no longer inform it) the same
    # arithmetic gives 0.048-0.056. tianchengwu's rows (RTX 4090, q4_0, held out) were not used for it.
    "attn_decode_kvq.llama.cpp/cuda": (
        0.0555,
        0.5,
        0.002,
        1.0,
        "",
        "decode attention FLOPs at depth / dense FP16 peak, llama.cpp CUDA FlashAttention vector kernel "
        "(quantized KV cache, 1-2 query tokens per sequence)",
    ),
}

# the fitted values (all rows): what python -m benchmarks.speed.fit wrote into the module qwenfit ships
# (a constant not fitted yet, e.g. one just added to PRIORS, at its prior median)
CONSTANTS: dict[str, float] = {n: speed_fitted.CONSTANTS.get(n, prior[0]) for n, prior in PRIORS.items()}

DEFAULT_PCIE_GBPS = 31.5  # PCIe 4.0 x16 per direction, when the device does not say


def _c(k: Any, name: str, fallback: str | None = None) -> float:
    if name in k:
        return float(k[name])
    if fallback is not None:
        return float(k[fallback])
    raise KeyError(name)


def graph_family(family: str, runner: str = "") -> str:
    """The family whose per-layer / KV constants a row reads: for Ollama its runner's - llama-server:
    llama.cpp's; its CGO engine: Ollama's own (``ollama-cgo`` cells); its MLX engine: ``mlx-swift``, the
    cell of MLX driven from a compiled host (Ollama's MLX runner is Go calling MLX, as mlx-swift-lm is
    Swift calling it; mlx-lm's constants carry its Python host loop, which builds the graph every token)
    - else the family itself. The CGO engine's names (``ollama-cgo``) are not ones qwenfit's Ollama
    (>= 0.30: llama-server) looks up, so they stay in the fit."""
    if family == "ollama":
        return {"llama-server": "llama.cpp", "mlx": "mlx-swift"}.get(runner, "ollama-cgo")
    return family


def layer_cell(family: str, backend: str, runner: str = "") -> str:
    family = graph_family(family, runner)
    if family == "mlx-swift":
        return "mlx-swift"
    if family == "ollama-cgo":
        return "ollama-cgo/cuda" if backend in ("cuda", "rocm", "vulkan") else "ollama-cgo/metal"
    if family == "mlx" or backend == "mlx":
        return "mlx"
    return f"{family}/{backend}"


def kernel_cell(family: str, backend: str, hw: str = "") -> str:
    if backend == "mlx" or family == "mlx":
        return "mlx"
    if family == "vllm" and hw == "spark":
        return "vllm/gb10"
    return f"{'llama.cpp' if family in ('llama.cpp', 'ollama') else family}/{backend}"


def _fam(family: str, prefix: str, k: Any) -> str:
    """per-family constant name, with llama.cpp's value for Ollama where Ollama has none (MLX's for
    mlx-swift-lm)"""
    name = f"{prefix}.{family}"
    if name in k:
        return name
    return f"{prefix}.mlx" if family == "mlx-swift" else f"{prefix}.llama.cpp"


def eta_mem(r: Any, k: Any) -> float:
    """Streaming efficiency of the row's weights as a whole (prefill's weight pass): the BF16 factor
    when the row's quant is BF16."""
    cell = kernel_cell(r.family, r.backend, r.hw)
    eta = _c(k, f"eta_hw.{r.hw}") * _c(k, f"eta_k.{cell}")
    if r.quant == "BF16" and f"bf16_eta.{cell}" in k:
        eta *= _c(k, f"bf16_eta.{cell}")
    return eta


def eta_decode(r: Any, k: Any) -> tuple[float, float]:
    """(efficiency of the decoded weight bytes, of the cache bytes): the weights' BF16 share
    (``bf16_share``, bytes; qwenfit's ``bf16_ppm``) streams at the cell's BF16 factor, the rest and
    the KV cache / state at the plain rate - as qwenfit's formula reads them (k:bf16_fs)."""
    cell = kernel_cell(r.family, r.backend, r.hw)
    eta = _c(k, f"eta_hw.{r.hw}") * _c(k, f"eta_k.{cell}")
    s = float(getattr(r, "bf16_share", 0.0) or 0.0)
    if s and f"bf16_eta.{cell}" in k:
        return eta / ((1 - s) + s / _c(k, f"bf16_eta.{cell}")), eta
    return eta, eta


def _kv_name(r: Any, k: Any) -> str:
    fam = graph_family(r.family, getattr(r, "runner", ""))
    if fam == "ollama-cgo":
        return f"kv_factor.{layer_cell(fam, r.backend)}"
    return _fam(fam, "kv_factor", k)


def attn_decode_eff(r: Any, k: Any, m: int) -> float:
    """The FP16-peak share decode attention at depth runs at, for a step of ``m`` query tokens per
    sequence: llama.cpp CUDA's vector kernel over a quantized cache (``kv_vec_cols``:
    qwenfit.core.fit.speed_kvq.vec_query_cols), else the packed kernels' ``attn_decode``."""
    cols = int(getattr(r, "kv_vec_cols", 0) or 0)
    if cols and m <= cols:
        return _c(k, "attn_decode_kvq.llama.cpp/cuda")
    return _c(k, "attn_decode")


def host_gbps(r: Any, k: Any) -> float:
    bw = _c(k, "eta_host") * r.host_peak_gbps if r.host_peak_gbps else 0.0
    if r.host_cores:
        cap = _c(k, "host_core_gbps") * r.host_cores
        bw = min(bw, cap) if bw else cap
    return bw


def distinct_experts(r: Any, tokens: float) -> float:
    """U(T)/k: routed-expert bytes T tokens read, in units of one token's k experts."""
    if not r.n_experts or not r.k_experts:
        return float(tokens)
    p = r.k_experts / r.n_experts
    return r.n_experts * (1 - (1 - p) ** tokens) / r.k_experts


def _layer_us(r: Any, k: Any, base: float | None = None) -> float:
    """Fixed cost (µs) of one decoder layer: ``base`` per dense layer (default: a decode step's
    ``layer_us``), x the MoE factor for an MoE layer."""
    runner = getattr(r, "runner", "")
    layer = _c(k, f"layer_us.{layer_cell(r.family, r.backend, runner)}") if base is None else base
    if r.is_moe:
        layer *= _c(k, _fam(graph_family(r.family, runner), "moe_layer_factor", k))
    if getattr(r, "vllm_piecewise", False):
        layer *= _c(k, "piecewise_layer_factor.vllm")
    return layer


def fixed_us(r: Any, k: Any) -> float:
    """Per-step fixed cost (µs) of one sequence: engine step, layers, graph splits, all-reduces."""
    t = _c(k, f"step_us.{r.family}", "step_us.llama.cpp") + r.n_layers * _layer_us(r, k)
    if r.n_offloaded_layers:
        t += r.n_offloaded_layers * _c(k, "offload_layer_us")
    if r.tp > 1:
        t += 2 * r.n_layers * (r.tp - 1) * _c(k, f"allreduce_us.{r.link or 'pcie'}")
    return t


def prefill_fixed_us(r: Any, k: Any) -> float:
    """Per-ubatch fixed cost (µs) of a prefill step. llama.cpp's CUDA backend replays a CUDA graph only
    after two calls with the same graph properties (ggml-cuda.cu:4440-4470, vendored 0c1e570); a prompt's
    ubatches change shape (tokens, KV length), so they run eagerly, every kernel launched from the CPU:
    ``prefill_layer_us`` (x the MoE factor) per layer replaces the graphed decode step's ``layer_us``
    (Ollama >= 0.30 runs llama-server: the same). Other cells' decode steps run eagerly too, or there is
    no data: their decode fixed cost."""
    if not (graph_family(r.family, getattr(r, "runner", "")) == "llama.cpp" and r.backend == "cuda"):
        return fixed_us(r, k)
    eager = _layer_us(r, k, _c(k, "prefill_layer_us.llama.cpp/cuda"))
    return fixed_us(r, k) + r.n_layers * (eager - _layer_us(r, k))


def ggml_kernels(r: Any) -> bool:
    """The row's matmuls run on ggml's kernels (llama.cpp, Ollama's GGML engines; not its MLX engine)."""
    return r.family in ("llama.cpp", "ollama") and r.backend != "mlx"


def step_time(r: Any, k: Any, b: int = 1, m: int = 1) -> float:
    """Seconds of one decode step: b sequences, m tokens each (m = 1 + drafts when verifying)."""
    T = b * m
    eta_w, eta = eta_decode(r, k)
    bw = eta * r.bw_gbps * 1e9 * r.tp
    u = distinct_experts(r, T)
    kappa = _c(k, _kv_name(r, k))
    weights = r.dense_gpu + r.expert_gpu * u
    t_mem = weights / (eta_w * r.bw_gbps * 1e9 * r.tp)
    t_mem += b * (kappa * r.kv_per_token * r.depth + 2 * r.state_bytes) / bw
    cpu = r.dense_cpu + r.expert_cpu * u
    if cpu:
        t_mem += cpu / (host_gbps(r, k) * 1e9)
    t = t_mem
    if m > 1 and r.verify_flops:  # vLLM FA2 verify: one CTA per head on one SM, no split (draft_time)
        t += r.verify_flops * r.depth / (_c(k, "verify_cta_tflops") * 1e12)
    elif r.fp16_tflops > 0 and r.depth > 0 and r.n_attn:  # attention FLOPs at depth (module docstring)
        attn = T * 4 * r.attn_width * r.n_attn * r.depth
        t += attn / (attn_decode_eff(r, k, m) * r.fp16_tflops * 1e12 * r.tp)
    if T > GGML_MAT_VEC_MAX_TOKENS and ggml_kernels(r) and r.fp16_tflops > 0:
        # ggml's matrix kernels (MMQ / mul_mm) above 8 tokens a step: the prefill GEMM rate at T tokens
        # per weight matrix (routed experts: the tokens routed to each), or the weight read if longer
        # (the cell's eta_c alone: the shipped formula has no BF16 / pre-WMMA-ROCm prefill factors here)
        w_gpu = weights / (eta_w * r.bw_gbps * 1e9 * r.tp)
        flops = _c(k, f"eta_c.{kernel_cell(r.family, r.backend)}") * r.fp16_tflops * 1e12 * r.tp
        t += max(0.0, gemm_seconds(r, k, T, flops) - w_gpu)
    elif T > 1:  # every token beyond the first multiplies the weights once more (small-batch kernels)
        if r.fp16_tflops > 0:
            t += (
                (T - 1)
                * 2
                * r.active_params
                / (_c(k, _fam(r.family, "eta_v", k)) * r.fp16_tflops * 1e12 * r.tp)
            )
        else:
            t += (T - 1) * _c(k, "verify_token_frac") * t_mem
    t += fixed_us(r, k) * 1e-6
    if b > 1:
        t += (b - 1) * _c(k, _fam(r.family, "seq_us", k)) * 1e-6
    return t


def draft_time(r: Any, k: Any, b: int = 1) -> float:
    """One draft step: the MTP block's weights, its fixed cost and its attention layer over the KV at depth
    (the layer's bytes, one of the n_attn layers'); its attention FLOPs: :func:`draft_attention`."""
    eta_w, eta = eta_decode(r, k)
    byts = r.mtp_dense + r.mtp_expert * distinct_experts(r, b)
    t = byts / (eta_w * r.bw_gbps * 1e9 * r.tp) + _c(k, _fam(r.family, "draft_us", k)) * 1e-6
    if r.n_attn:
        kv = b * _c(k, _kv_name(r, k)) * r.kv_per_token * r.depth / r.n_attn
        t += kv / (eta * r.bw_gbps * 1e9 * r.tp)
    return t


def draft_attention(r: Any, k: Any, b: int, n: int) -> float:
    """Attention FLOPs at depth of a cycle's n draft steps (one layer, b tokens each; FA2's first draft
    pass is in the unsplit verify term, r.verify_flops)."""
    if not (r.fp16_tflops > 0 and r.depth > 0 and r.n_attn and n):
        return 0.0
    steps = n - 1 if r.verify_flops else n
    rate = attn_decode_eff(r, k, 1) * r.fp16_tflops * 1e12 * r.tp  # a draft step: one token per sequence
    return steps * b * 4 * r.attn_width * r.depth / rate


def mtp_tokens_per_cycle(r: Any, k: Any) -> float:
    if not r.mtp_n:
        return 1.0
    if r.mtp_e is not None:
        return float(r.mtp_e)
    return speed.mtp_tokens_per_cycle(r.mtp_n, _c(k, "mtp_accept"))


def decode_tokens_per_s(r: Any, k: Any) -> float:
    """Aggregate decode tok/s over the row's batch (one sequence: its decode speed)."""
    b = max(1, int(r.batch))
    n = int(r.mtp_n or 0)
    t = step_time(r, k, b, 1 + n) + n * (draft_time(r, k, b) if n else 0.0) + draft_attention(r, k, b, n)
    tokens = b * mtp_tokens_per_cycle(r, k)
    if r.interleaved_prompt and b > 1:
        # The sweep's figure is b x the MEDIAN per-stream decode rate, each stream's rate being its tokens
        # over first-to-last token (club-3090 scripts/lib/concurrency_probe.py @4a29ab57: lines 501-506
        # and 562; BENCHMARKS.md "per-stream = median decode tok/s", "xN decode-agg"). The b prompts
        # arrive together and vLLM admits waiting requests in order once the running ones have their
        # tokens (v1/core/sched/scheduler.py:793 running first, :1049 then waiting, one token budget):
        # the i-th stream starts decoding while the b-1-i later prompts are still prefilled, so its
        # window holds ``interleave`` x those prefills (the share of a later prefill a decoding stream
        # waits for; prior 1.0, see CONSTANTS). One harmonic mean over all streams (before) is not the
        # median of their rates.
        g = 256.0  # the sweep's generation length (club-3090 agent shape: 16K prompt / 256 gen)
        cycles = g / mtp_tokens_per_cycle(r, k)
        pp = prefill_seconds(r, k, r.interleaved_prompt, 0.0)
        if pp is not None:
            return b * statistics.median(
                g / (cycles * t + _c(k, "interleave") * (b - 1 - i) * pp) for i in range(b)
            )
    return tokens / t


def gemm_seconds(r: Any, k: Any, n: float, flops: float) -> float:
    """Seconds of the weight GEMMs of one ubatch of ``n`` tokens at ``flops`` (large-m rate): dense
    matrices see all ``n`` tokens, each routed expert the tokens routed to it (n k / distinct experts);
    qwenfit's own :func:`qwenfit.core.fit.gemm.gemm_seconds` at the ``gemm_m_half`` being fitted."""
    per_expert = n / distinct_experts(r, n) if r.active_routed else n  # tokens per touched expert
    return gemm.gemm_seconds(r.active_params, r.active_routed, n, per_expert, flops, _c(k, "gemm_m_half"))


def prefill_flops(r: Any, k: Any) -> float:
    """Large-batch GEMM rate of the row's prefill kernels (FLOP/s over its tp devices)."""
    cell = kernel_cell(r.family, r.backend)  # prefill: one cell per engine x backend
    eta_c = _c(k, f"eta_c.{cell}")
    if r.quant == "BF16" and f"bf16_eta_c.{cell}" in k:
        eta_c *= _c(k, f"bf16_eta_c.{cell}")
    if getattr(r, "rocm_hipblas", False):
        eta_c *= _c(k, "hipblas_eta_c.llama.cpp/rocm")
    return eta_c * r.fp16_tflops * 1e12 * r.tp


def prefill_seconds(r: Any, k: Any, tokens: float, depth: float) -> float | None:
    """Seconds to prefill ``tokens`` prompt tokens of one sequence from ``depth`` (None: FP16 unknown)."""
    if r.fp16_tflops <= 0 or r.bw_gbps <= 0 or tokens <= 0:
        return None
    flops = prefill_flops(r, k)
    bw = eta_mem(r, k) * r.bw_gbps * 1e9 * r.tp
    w_pass = r.resident_gpu / bw
    pcie = r.pcie_gbps or DEFAULT_PCIE_GBPS
    copy = r.resident_cpu / (_c(k, "eta_pcie") * pcie * 1e9) if r.resident_cpu else 0.0
    fixed = prefill_fixed_us(r, k) * 1e-6
    ub = max(1, int(r.ubatch))
    total = 0.0
    left = tokens
    while left > 0:
        n = min(ub, left)
        total += max(gemm_seconds(r, k, n, flops), w_pass) + fixed + copy
        left -= n
    total += (
        2 * r.head_params / (flops * gemm.gemm_efficiency(1.0, _c(k, "gemm_m_half")))
    )  # last token's logits
    attn = 4 * r.attn_width * r.n_attn * (tokens * depth + tokens * tokens / 2)
    total += attn / (flops * _c(k, "attn_prefill"))
    if r.tp > 1 and r.link_gbps > 0:  # two all-reduces of the activations per layer (ring: 2 (tp-1)/tp)
        moved = 2 * r.n_layers * tokens * r.hidden * 2 * 2 * (r.tp - 1) / r.tp
        total += moved / (_c(k, "eta_link") * r.link_gbps * 1e9)
    return total


def prefill_tokens_per_s(r: Any, k: Any) -> float | None:
    s = prefill_seconds(r, k, r.prefill_tokens, r.prefill_depth)
    return None if s is None else r.prefill_tokens / s


def constants_used(r: Any) -> set[str]:
    """Names of the constants a row's predictions read (for the sparse Jacobian in fit.py)."""

    class Spy(dict):  # type: ignore[type-arg]
        def __init__(self) -> None:
            super().__init__(CONSTANTS)
            self.seen: set[str] = set()

        def __getitem__(self, key: str) -> float:
            self.seen.add(key)
            return super().__getitem__(key)

    s = Spy()
    decode_tokens_per_s(r, s)
    prefill_tokens_per_s(r, s)
    return s.seen
