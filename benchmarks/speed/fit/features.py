"""Features of every published speed measurement, computed by qwenfit itself (read-only use).

One :class:`Row` per record of ``benchmarks/speed/measurements/*.yaml``: what the record says
(engine, backend, hardware, depth, batch, MTP, offload, measured tok/s) and what qwenfit computes for
it (the bytes one decoded token reads on the GPU side and from host RAM, split into dense and
routed-expert parts; KV bytes per token of depth over the full-attention layers; Gated DeltaNet state
bytes; layer counts by type; active parameters; resident weight bytes; the hardware from
``data/hardware.yaml``). Nothing here is fitted.

Where a record leaves something open, the value used is written into ``Row.assumed`` (a list of
``assumed_*`` strings) so that the report can show it; see ``README.md`` for the rules.
"""

# ruff: noqa: E501  (report tables and constant tables read better on one line)
from __future__ import annotations

import dataclasses
import glob
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import qwenfit
from benchmarks.speed.fit.model import graph_family, kernel_cell  # engine family x backend (x GB10 for vLLM)
from qwenfit.core.engines import base as engine_base
from qwenfit.core.engines.gdn_state import gdn_state
from qwenfit.core.engines.llama_cpp.memory import llama_kv_bytes_per_cell, llama_recurrent_bytes_per_cell
from qwenfit.core.fit.speed import bf16_ppm
from qwenfit.core.fit.speed_kvq import vec_query_cols
from qwenfit.core.formats.reads import decode_read_bytes, tensor_read_bytes
from qwenfit.core.model.inventory import ROUTED_EXPERT_ROLES
from qwenfit.loaders.hardware import hardware_catalog, host_profiles

HERE = Path(__file__).resolve().parent
MEASUREMENTS = HERE.parent / "measurements"

# ------------------------------------------------------------------------------------------------
# vocabulary


def engine_family(engine: str) -> str:
    """The constant family of an engine: ik_llama.cpp shares llama.cpp's (same ggml lineage; its rows are
    listed, not scored: IK_LLAMA_SKIP, fitted only in the report's sensitivity run); vllm-mlx /
    rapid-mlx / mlx-lm are all recorded as engine ``mlx`` (a Python host loop); mlx-swift-lm runs the
    same MLX kernels from a Swift host loop: its own fixed costs (``mlx-swift``), MLX's kernel
    efficiencies."""
    return {"ik_llama.cpp": "llama.cpp", "mlx-swift-lm": "mlx-swift"}.get(engine, engine)


def hw_class(dev: Any) -> str:
    if dev is None:
        return "none"
    if dev.vendor == "apple":
        return "apple"
    if dev.kind == "unified":
        return "spark" if dev.vendor == "nvidia" else "strix"
    return "gpu"


# KV element bytes for safetensors-family engines (vLLM / MLX): K and V of one head-dim element
KV_ELEMENT_BYTES = {
    None: 2.0, "auto": 2.0, "bf16": 2.0, "f16": 2.0, "fp16": 2.0,
    "fp8": 1.0, "fp8/e4m3": 1.0, "fp8/e5m2": 1.0, "fp8_e5m2": 1.0, "fp8-e4m3": 1.0, "fp8_e4m3": 1.0,
    # TurboQuant 3-bit: 3 bits per element plus per-block scales; 0.4 B is assumed (not published)
    "TQ3 (3-bit)": 0.4,
    # TurboQuant 4-bit (vLLM --kv-cache-dtype turboquant_4bit_nc, PR #39931; inferRouter model card): 4 bits per
    # element = 0.5 B; its per-block scale overhead is not published and not added
    "turboquant_4bit_nc": 0.5,
}  # fmt: skip
GGUF_KV = {None: "f16", "f16": "f16", "q8_0": "q8_0", "q4_0": "q4_0"}
# a vLLM row's KV type as vLLM's --kv-cache-dtype (not set: the model's dtype, "auto"); TurboQuant rows
# are absent (their own backend packs the verify, qwenfit.core.engines.vllm.verify)
VLLM_KV_NAMES = {
    None: "auto", "auto": "auto", "bf16": "auto", "f16": "auto", "fp16": "auto", "fp8": "fp8",
    "fp8/e4m3": "fp8_e4m3", "fp8-e4m3": "fp8_e4m3", "fp8_e4m3": "fp8_e4m3", "fp8/e5m2": "fp8_e5m2",
    "fp8_e5m2": "fp8_e5m2",
}  # fmt: skip

# Rows whose quant is not named: the nearest standard quant used instead (assumed, see notes)
ASSUMED_QUANT = {
    # "~15 GB file class" for a 35B-A3B fine-tune (row notes); Q3_K_M is qwenfit's nearest standard
    # llama.cpp type of that size
    "club3090-deucebucket-35b-llamacpp-cerebellum-3090": "Q3_K_M",
}

# Architectures qwenfit has no spec for (calibration_only rows). Public config.json values, written
# from memory of the Hugging Face configs: assumed, not read from a stored source (README.md).
#   layers, kv heads, head dim, q heads, experts, experts/token, total params (B), active params (B)
ASSUMED_ARCH: dict[str, tuple[int, int, int, int, int, int, float, float]] = {
    "Llama-3.1-8B": (32, 8, 128, 32, 0, 0, 8.03, 8.03),
    "Llama-3.1-70B": (80, 8, 128, 64, 0, 0, 70.6, 70.6),
    "Qwen3-32B": (64, 8, 128, 64, 0, 0, 32.8, 32.8),
    "Qwen3-1.7B": (28, 8, 128, 16, 0, 0, 2.03, 2.03),
    "Qwen3-4B": (36, 8, 128, 32, 0, 0, 4.02, 4.02),
    "Qwen3-8B": (36, 8, 128, 32, 0, 0, 8.19, 8.19),
    "Qwen3-30B-A3B": (48, 4, 128, 32, 128, 8, 30.5, 3.3),
    "Qwen3-235B-A22B": (94, 4, 128, 64, 128, 8, 235.1, 22.2),
    "gpt-oss-20b": (24, 8, 64, 64, 32, 4, 20.9, 3.6),
    "gpt-oss-120b": (36, 8, 64, 64, 128, 4, 116.8, 5.1),
    # DeepSeek-V3 / R1 (deepseek2): layers, heads and experts from the GGUF metadata the rows' own load logs
    # print (ik_llama.cpp discussion #258: block_count 61, head_count 128, expert_count 256,
    # expert_used_count 8, kv_lora_rank 512, rope dimension 64); 671B total / 37B active: the DeepSeek-V3
    # technical report. MLA caches kv_lora_rank + rope = 576 values per layer and token ("c^KV" in the
    # logs: 1166.62 MiB at q8_0 for 32768 tokens x 61 layers), written here as one K+V "head" of 288; the
    # 128 x 288 attention width stands in for MLA's absorbed attention FLOPs (assumed; these rows are at
    # depth 0-640)
    "DeepSeek-V3-0324": (61, 1, 288, 128, 256, 8, 671.0, 37.0),
    "DeepSeek-R1-0528": (61, 1, 288, 128, 256, 8, 671.0, 37.0),
}
# Leading dense-FFN layers of an ASSUMED_ARCH MoE (deepseek2.leading_dense_block_count = 3 in the same logs;
# their "graph splits = 118" = 2 per MoE layer + 2 matches 58 offloaded layers)
ASSUMED_LEADING_DENSE = {"DeepSeek-V3-0324": 3, "DeepSeek-R1-0528": 3}
# bits per weight of the file types used by the calibration rows (llama.cpp type definitions;
# Q*_K_M are mixes, their typical average is assumed)
ASSUMED_BPW = {"Q4_K_M": 4.85, "Q8_0": 8.5, "Q3_K_M": 3.9, "Q6_K": 6.56, "MXFP4_MOE": 4.25, "mlx-4bit": 4.5,
               "gptq": 4.25, "BF16": 16.0}  # fmt: skip
# Qwen3-Coder-Next has Qwen3-Next-80B-A3B's architecture (README of the measurements); Qwen3.8-27B's text geometry
# is Qwen3.6-27B's (hidden 5120, 24/4 heads of 256, 64 layers, full attention every 4th, FFN 17408, vocab 248320:
# club-3090 models/qwen3.8-27b/vllm/compose/dual/fp8/mtp.yml quoting its config.json; its rows are calibration_only)
SPEC_ALIAS = {"Qwen3-Coder-Next-80B-A3B": "Qwen3-Next-80B-A3B", "Qwen3.8-27B": "Qwen3.6-27B"}

CATEGORIES = (
    "GPU dense",
    "GPU MoE",
    "CPU-expert offload",
    "Apple/MLX",
    "unified-memory APU",
    "multi-GPU TP/PP",
    "batched (concurrency > 1)",
    "CPU only",
)

# ------------------------------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    source: str
    fold: str
    model: str
    calibration: bool
    engine: str
    family: str
    backend: str
    cell: str
    hw_id: str | None
    hw: str  # gpu | strix | spark | apple | none
    bw_gbps: float
    fp16_tflops: float
    pcie_gbps: float
    link: str | None
    link_gbps: float  # GPU-to-GPU link, GB/s per direction (0: single device)
    n_gpus: int
    tp: int
    host_id: str | None
    host_peak_gbps: float
    host_cores: int
    quant: str | None
    # bytes one decoded token reads (weights), by side and kind
    dense_gpu: float = 0.0
    expert_gpu: float = 0.0
    dense_cpu: float = 0.0
    expert_cpu: float = 0.0
    n_experts: int = 0
    k_experts: int = 0
    mtp_dense: float = 0.0  # one draft step: the MTP block (non-routed) + the output head again
    mtp_expert: float = 0.0  # the MTP block's routed experts, k/E share
    kv_per_token: float = 0.0  # KV bytes per token of depth, all full-attention layers
    state_bytes: float = 0.0  # GDN state of one sequence, all linear-attention layers
    n_layers: int = 0
    n_gdn: int = 0
    n_attn: int = 0
    n_moe: int = 0
    n_dense: int = 0
    n_offloaded_layers: int = 0
    active_total: float = 0.0  # qwenfit's spec.params.active (the old model's prefill input)
    active_params: float = 0.0  # matmul parameters a token multiplies (no embedding, no output head)
    active_routed: float = 0.0  # the routed experts' share of those (k/E of every expert tensor)
    head_params: float = 0.0  # output-head parameters (logits of the last prompt token)
    hidden: int = 0
    attn_width: float = 0.0  # q heads x head dim (attention FLOPs per cached token = 4 x this x n_attn)
    # vLLM CUDA rows whose MTP verify runs through FA2 unsplit: FLOPs per cached token of one CTA over a
    # cycle (the vllm engine's verify_flops, qwenfit.core.engines.vllm.verify); 0: packed and split
    verify_flops: float = 0.0
    # llama.cpp CUDA rows with a quantized KV cache: the most query tokens per sequence for which decode
    # attention runs FlashAttention's vector kernel (qwenfit.core.fit.speed_kvq.vec_query_cols; 0: never)
    kv_vec_cols: int = 0
    resident_gpu: float = 0.0  # text weights resident on the GPU side (all experts)
    resident_cpu: float = 0.0
    is_moe: bool = False
    # vLLM run before full CUDA graphs became its default (PR #25444, FULL_AND_PIECEWISE, in v0.11.0,
    # 2025-10-02): decode replays piecewise graphs, attention and MoE routing outside them
    vllm_piecewise: bool = False
    # llama.cpp ROCm on RDNA3/3.5 before MMQ ran on WMMA there (PR #17576, "HIP: enable WMMA-MMQ INT
    # kernels for RDNA 3", opened 2025-11-28; and PR #18202: MoE always MMQ): prompt-size quantized
    # matmuls were dequantized and run through hipBLAS/rocBLAS (today's rule: mmq.cu:407-429)
    rocm_hipblas: bool = False
    # Ollama's runner (features._ollama_runner): "cgo" (Go model code on GGML, before v0.30),
    # "llama-server" (v0.30+, PR #16031), "mlx" (its MLX engine); empty for other engines
    runner: str = ""
    # share of the decoded weight bytes stored as BF16 (qwenfit.core.fit.speed.bf16_ppm; calibration rows:
    # 1 for a BF16 row), read at the cell's BF16 factor like qwenfit's formula
    bf16_share: float = 0.0
    # the measurement
    depth: float = 0.0  # mean KV depth while decoding (depth + decode_tokens / 2)
    batch: int = 1
    mtp_n: int = 0
    mtp_e: float | None = None  # published tokens per verify cycle (1 + accepted), when given
    mtp_e_from: str = ""  # "documented prose": the script's documented prose acceptance, not the run's own
    interleaved_prompt: float = 0.0  # prompt tokens of other streams prefilled while this one decodes
    decode: float | None = None  # aggregate tok/s over the batch
    prefill: float | None = None
    prefill_tokens: float = 0.0
    prefill_depth: float = 0.0
    ubatch: int = 512
    category: str = ""
    tags: tuple[str, ...] = ()
    assumed: list[str] = field(default_factory=list)
    skip_decode: str = ""  # why the decode figure cannot be predicted (empty: it can)
    skip_prefill: str = ""
    url: str = ""
    quant_as_published: str = ""
    hardware_text: str = ""


# ------------------------------------------------------------------------------------------------
# helpers


def fold_of(source_id: str) -> str:
    """LOSO group. club-3090 contributors share one harness, recipes and patched vLLM builds written
    by the maintainer; their rows are near-replicates of his, so the whole table is one source.
    Rapid-MLX submissions are different people on different Macs with the same benchmark script:
    one source each (README.md)."""
    return "club-3090" if source_id.startswith("club3090-") else source_id


def _host(rec: dict[str, Any]) -> tuple[str | None, float, int]:
    text = str(rec.get("host_ram") or "")
    m = re.search(r"DDR(\d)-(\d{4})", text)
    if not m:
        return None, 0.0, 0
    ch = re.search(r"(\d+)\s*ch", text) or re.search(r"\b(dual|quad)[ -]channel", text)
    n = {"dual": 2, "quad": 4}.get(ch.group(1)) if ch and not ch.group(1).isdigit() else None
    channels = n or (int(ch.group(1)) if ch else 2)
    pid = f"ddr{m.group(1)}-{m.group(2)}-{channels}ch"
    prof = host_profiles().get(pid)
    hw = str(rec.get("hardware") or "")
    cores_m = re.search(r"(\d+)C\b", hw)
    threads_m = re.search(r"\((\d+) threads\)", hw)
    cores = int(cores_m.group(1)) if cores_m else (int(threads_m.group(1)) // 2 if threads_m else 0)
    # without -t, llama.cpp and ik_llama.cpp run `n_threads = cpu_get_num_math()` threads (common/common.h),
    # the physical cores of a non-hybrid x86 CPU; a stated -t caps them
    if rec.get("threads"):
        cores = min(cores, int(rec["threads"])) if cores else int(rec["threads"])
    return (pid if prof else None), (prof.bandwidth_gbps if prof else 0.0), cores


# RTX 3090 NVLink bridge: data/hardware.yaml's rtx-3090 comment gives 112.5 GB/s bidirectional
# (reference §A.7); the catalog convention for links is per direction, so half of it
NVLINK_BRIDGE_GBPS = {"rtx-3090": 112.5 / 2}


def _link_gbps(link: str | None, dev: Any, n_gpus: int) -> float:
    if n_gpus < 2 or dev is None or dev.kind != "gpu":
        return 0.0
    if link == "nvlink":
        return NVLINK_BRIDGE_GBPS.get(dev.id, 0.0)
    return float(dev.interconnect_gbps or 0.0)


def _weights(spec: Any, quant: str, published: str) -> Any:
    """qwenfit's weights of the quant; a row that says its NVFP4 checkpoint keeps attention in FP8
    gets the FP4 tensors of qwenfit's ``nvfp4`` (routed experts; a dense model's FFN) and every other
    tensor of qwenfit's ``fp8`` (the nearest composition of standard qwenfit formats)."""
    w = qwenfit.weights(spec, quant)
    if quant == "nvfp4" and re.search(r"FP8(-static)? attention", published):
        # a tensor qwenfit's nvfp4 stores in FP4 stays FP4 (routed experts; a dense model's FFN, which
        # nvidia's dense NVFP4 checkpoints also hold in FP4: "NVFP4 gs16 FFN + FP8-static
        # attention/linear_attn", club-3090 compose dual/nvfp4/mtp.yml); the rest is qwenfit's fp8
        fp8 = {e.name: e for e in qwenfit.weights(spec, "fp8").tensors}
        tensors = tuple(
            e
            if e.role in ROUTED_EXPERT_ROLES or str(e.type).startswith("nvfp4") or e.name not in fp8
            else fp8[e.name]
            for e in w.tensors
        )
        w = dataclasses.replace(w, tensors=tensors, scheme="nvfp4 + fp8 (composed)")
    return w


def _mtp(rec: dict[str, Any], family: str) -> tuple[int, float | None, str]:
    """(draft tokens, published tokens per verify cycle or None, how it was read)."""
    m = rec.get("mtp")
    if not m:
        return 0, None, ""
    n = m.get("draft_tokens")
    if n is None:  # the checkpoints carry one MTP layer; one draft per step is assumed (README.md)
        return 1, None, "assumed_mtp_draft_tokens: 1 (not stated)"
    n = int(n)
    if m.get("acceptance_prompt") not in (None, "narrative"):
        # the source's method measures the published acceptance on another prompt than the row's
        # decode figure (club-3090 bench.sh: the narrative runs, then the code runs, then "the last 3
        # SpecDecoding metrics" from the server log; quoted in the record as acceptance_prompt_source):
        # the figure takes the fitted acceptance, like a row that publishes none
        return (
            n,
            None,
            f"assumed_mtp_acceptance: fitted (published one measured on the {m['acceptance_prompt']} prompt)",
        )
    mal = m.get("mean_accept_length")
    acc = m.get("acceptance")

    def nums(x: Any) -> list[float]:
        return [float(v) for v in re.findall(r"\d+\.?\d*", str(x))]

    if mal is not None:  # vLLM mean acceptance length: 1 + accepted drafts per cycle (range -> mid)
        v = nums(mal)
        return n, sum(v[:2]) / len(v[:2]), "mean_accept_length"
    if acc is None:
        return n, None, ""
    s = str(acc)
    if "/" in s and "per position" in s:  # vLLM per-position acceptance: E = 1 + sum p_i
        return n, 1 + sum(nums(s)[:n]), "per-position acceptance"
    v = nums(s)
    if not v:
        return n, None, ""
    first = v[0] if len(v) == 1 or "–" not in s else (v[0] + v[1]) / 2
    if "%" in s:  # llama.cpp draft acceptance rate (the narrative figure first)
        return n, 1 + n * first / 100, "draft acceptance rate"
    if first > 1:  # an acceptance length (vLLM 'AL', 'acceptance 3.02')
        return n, first, "acceptance length"
    if family == "llama.cpp":  # llama.cpp server 'draft acceptance rate' = accepted / drafted
        return n, 1 + n * first, "draft acceptance rate"
    return n, 1 + sum(first**i for i in range(1, n + 1)) if n > 1 else 1 + first, "acceptance rate"


# Benchmark scripts that document the MTP acceptance of the prose prompt whose figure a row holds (the
# rows publish none of their own for that prompt). Both scripts read vLLM's spec-decode counters, whose
# per-position rate is accepted at position i / cycles and whose mean acceptance length is 1 + accepted /
# cycles (v1/spec_decode/metrics.py:113-117 in 0.33; the "draft acceptance rate" accepted / drafted is
# the mean of the per-position rates), so tokens per cycle = 1 + n x rate.
# * club-3090, scripts/bench.sh @4a29ab57 lines 40-42 ("Why narrative + code"): "MTP acceptance varies
#   wildly by prompt structure. Code (repetitive, token-predictable) accepts at ~80% per position; prose
#   (semantically rich) at ~50%." Read this way the code figure, 1 + 3 x 0.8 = 3.4, is what the
#   harness's rows publish after their code runs (3.44, 3.51 in club3090-noonghunna.yaml), and the rows'
#   own narrative / code speed pairs (one server, one cycle time: the speed ratio is the acceptance
#   ratio) run 0.76-0.83 against 2.5 / 3.4 = 0.74. One contributor publishes a higher narrative figure
#   (laurimyllari, "AL 3.34-3.45 narr", RTX 4090): a row's own figure wins.
# * tedivm/qwen36-27b-docker, scripts/bench_tps.py @82ad86f0 line 6: "Code prompts see materially higher
#   MTP acceptance (>80%) than prose (~40%)"; its "draft accept %" is accepted / drafted (line 106).
# Published figures, not fitted to speed; kept out of the shipped median (fit.published_accept), which
# stays what rows publish for their own runs. {source id prefix: (rate, text the row's notes carry when
# its figure is that prose prompt's)}; club-3090's concurrency sweep (notes "SWEEP") uses other prompts.
DOCUMENTED_PROSE_ACCEPT: dict[str, tuple[float, str]] = {
    "club3090-": (0.5, "bench.sh: narrative prompt"),
    "tedivm-": (0.4, "decode_tokens_per_s = the prose figure"),
}


def _documented_prose(source_id: str, notes: str) -> float | None:
    """The documented prose acceptance of the row's benchmark script when its figure is that prompt's."""
    for prefix, (rate, marker) in DOCUMENTED_PROSE_ACCEPT.items():
        if source_id.startswith(prefix) and marker in notes and "SWEEP" not in notes:
            return rate
    return None


VLLM_FULL_GRAPHS = (0, 11)  # vLLM PR #25444: cudagraph_mode FULL_AND_PIECEWISE by default from v0.11.0
VLLM_FULL_GRAPHS_DATE = "2025-10-02"  # v0.11.0's release: a run dated earlier used an older build


# PR #17576 was opened on this date: a run dated earlier cannot have had WMMA-MMQ on RDNA3
ROCM_WMMA_MMQ_DATE = "2025-11-28"


def _vllm_before_full_graphs(version: str, date: str) -> bool:
    """Whether a vLLM row ran a build with piecewise CUDA graphs by default: its version when stated,
    else its date (before v0.11.0's release)."""
    m = re.match(r"v?(\d+)\.(\d+)", version)
    if m:
        return (int(m.group(1)), int(m.group(2))) < VLLM_FULL_GRAPHS
    return bool(date) and date < VLLM_FULL_GRAPHS_DATE


# Ollama's runners. Before PR #16031 ("runner: Remove CGO engines, use llama-server exclusively for
# GGML models", merged for v0.30; the draft #15122 of 2026-03-28 says it removes "the vendored GGML and
# llama.cpp backend, CGO runner, GGML-based Go model implementations" and that "llama-server ... is now
# the sole inference engine for GGUF-based models. (Safetensor based models continue to run on the new
# MLX engine.)") a GGUF ran through Ollama's own Go model code on vendored GGML ("cgo"); from v0.30 it
# runs llama-server ("llama-server"); MLX models (Ollama 0.19+, "Ollama is now powered by MLX on Apple
# Silicon in preview", 2026-03-30) run its MLX engine ("mlx"). Each runner executes a different graph:
# its per-layer / KV costs are the CGO engine's own constants (fit only: qwenfit plans Ollama >= 0.30),
# llama.cpp's, or MLX's kernels with the compiled-host MLX per-layer cost (model.graph_family).
OLLAMA_LLAMA_SERVER = (0, 30)
# v0.30.0-rc31 was still a release candidate on 2026-05-30 (sharki13 on PR #16031); v0.30.7 was out on
# 2026-06-07 (https://craftrigs.pages.dev/news/ollama-0-19-mlx-apple-silicon-speed/: "the current
# release is v0.30.7, shipped June 7, 2026"): an unversioned run dated on or after that ran llama-server,
# one dated before 2026-05-30 the CGO engine
OLLAMA_LLAMA_SERVER_DATE = "2026-06-07"
OLLAMA_CGO_BEFORE = "2026-05-30"
# A run of the CGO engine measures an engine qwenfit cannot be asked about: qwenfit's ollama engine is
# Ollama >= 0.30 (qwenfit.core.engines.llama_cpp.frontends.Ollama: llama-server's memory and speed), and
# no Ollama a user installs now runs a GGUF that way. Such rows are neither fitted nor scored; they are
# listed in the report with this reason, and its sensitivity table scores them (fit.py: the CGO
# engine's own fit-only ollama-cgo constants).
OLLAMA_CGO_SKIP = (
    "Ollama before v0.30 (its CGO engine, replaced by llama-server in PR #16031): qwenfit's ollama "
    "engine is Ollama >= 0.30"
)
# a record's split_mode "tensor" (llama.cpp -sm tensor): listed, not scored (build_row says why)
LLAMA_SM_TENSOR_SKIP = "llama.cpp -sm tensor: qwenfit's llama.cpp engine splits by layer or not at all"
# ik_llama.cpp (ikawrakow's fork) is an engine qwenfit cannot be asked about: qwenfit's engines are
# llama.cpp, ollama, lm-studio, llama-cpp-python, vllm, sglang, mlx and transformers (`qwenfit check
# --engine ik_llama.cpp` is rejected), its own launch flags are rejected (`qwenfit check -- llama-server
# -fmoe ...`: "invalid argument: -fmoe"), and so are its own quant types that these rows' files use
# (IQ4_KS, IQ4_KSS, the *_R4 repacks: "unknown quant 'IQ4_KSS' for llama.cpp"). Its CPU matmuls (IQK),
# fused MoE and MTP are its own code, not llama.cpp's. Such rows are neither fitted nor scored; they are
# listed in the report with this reason, and its sensitivity table fits and scores them as llama.cpp.
IK_LLAMA_SKIP = (
    "ik_llama.cpp: qwenfit has no ik_llama.cpp engine (its IQK kernels, fused MoE, MTP and IQ4_KS/IQ4_KSS/_R4 "
    "quants are its own)"
)


# A GPU in confidential-computing mode (NVIDIA H100/Blackwell CC inside an SEV-SNP / TDX VM) copies every
# host-device transfer through encrypted bounce buffers: Zhu et al. 2024 (arXiv 2409.03992, H100) "the overall
# performance penalty is primarily attributable to data transfer"; arXiv 2606.23969 "small crossings pay a fixed
# toll". qwenfit has no input for it (Machine, hardware catalog and engine settings carry no CC mode), so such
# rows are listed with this reason, neither fitted nor scored (vllm#57680's H100 NVL rows: c=1 +72..+83 % held
# out when scored, c=12 +14..+25 %, the pattern of a fixed per-step toll).
CONFIDENTIAL_SKIP = (
    "confidential computing: the GPU runs in CC mode inside an encrypted VM (bounce-buffered host-device "
    "copies), a setting qwenfit has no input for"
)


# MLX on an NVIDIA GPU (MLX's CUDA backend; ollama PR #14789 runs Ollama's MLX engine that way) is an engine
# qwenfit cannot be asked about: its mlx engine is mlx_lm.server on Apple silicon only
# (qwenfit.core.engines.mlx.Mlx.check: "MLX runs on Apple Silicon only") and its ollama engine is Ollama's
# llama-server (GGML) runner. Such rows are neither fitted nor scored; the report lists them with this reason.
MLX_OFF_APPLE_SKIP = (
    "MLX on a non-Apple GPU (MLX's CUDA backend): qwenfit's mlx engine is Apple silicon only and its ollama "
    "engine is Ollama's GGML runner"
)


def _list(r: Row, reason: str) -> None:
    """List the row for ``reason``: neither its decode nor its prefill figure is fitted or scored (a reason
    already given stays)."""
    r.skip_decode = r.skip_decode or reason
    r.skip_prefill = r.skip_prefill or reason


def _confidential(rec: dict[str, Any]) -> bool:
    """Whether the record's hardware text says the GPU ran in confidential-computing mode."""
    return "confidential computing" in str(rec.get("hardware") or "").lower()


def _ollama_runner(rec: dict[str, Any], source: dict[str, Any]) -> tuple[str, str]:
    """(runner, why) of an Ollama row: ``mlx`` (backend mlx: its MLX engine), ``llama-server``
    (version >= 0.30 or the record says so), ``cgo`` (older: Go model code on vendored GGML)."""
    version = str(rec.get("engine_version") or "")
    when = str(rec.get("date") or source.get("date") or "")
    if rec["backend"] == "mlx":
        return (
            "mlx",
            "Ollama MLX engine (backend mlx): the per-layer cost of MLX from a compiled host (mlx-swift), MLX kernels",
        )
    if "llama-server" in version:
        return "llama-server", f"Ollama runner llama-server (engine_version {version!r})"
    m = re.search(r"v?(\d+)\.(\d+)", version) or re.search(r"v(\d+)$", version)
    if m:
        got = (0, int(m.group(1))) if m.lastindex == 1 else (int(m.group(1)), int(m.group(2)))
        runner = "llama-server" if got >= OLLAMA_LLAMA_SERVER else "cgo"
        return (
            runner,
            f"Ollama runner {runner} (engine_version {version!r}; llama-server from v0.30, PR #16031)",
        )
    if when >= OLLAMA_LLAMA_SERVER_DATE:
        return (
            "llama-server",
            f"Ollama runner llama-server: unversioned run dated {when}, after v0.30 (PR #16031)",
        )
    if when and when < OLLAMA_CGO_BEFORE:
        return "cgo", f"Ollama runner cgo (Go model code on GGML): unversioned run dated {when}, before v0.30"
    raise ValueError(f"{rec['id']}: Ollama run of {when or 'no date'} without a version: runner unknown")


def _category(r: Row) -> str:
    if r.batch > 1:
        return "batched (concurrency > 1)"
    if r.n_gpus > 1:
        return "multi-GPU TP/PP"
    if r.hw == "none" and r.backend == "cpu":
        return "CPU only"
    if r.dense_cpu + r.expert_cpu > 0:
        return "CPU-expert offload"
    if r.hw == "apple" or r.family == "mlx":
        return "Apple/MLX"
    if r.hw in ("strix", "spark"):
        return "unified-memory APU"
    return "GPU MoE" if r.is_moe else "GPU dense"


# ------------------------------------------------------------------------------------------------
# qwenfit features


def _fit_n_cpu_moe(rec: dict[str, Any], quant: str) -> int | None:
    """--fit on: llama.cpp chose the split; the expert layers kept in RAM are inferred from the VRAM
    the source quotes (qwenfit's own memory estimate at the quoted context and KV type, the
    N whose GPU total without the 1 GiB --fit margin is nearest)."""
    mv = re.findall(r"(\d{4,5}) MB", str(rec.get("quote")))
    ctx = re.search(r"(\d+)K context", str(rec.get("quote")))
    if not mv or not ctx:
        return None
    vram = int(mv[-1]) * 2**20
    best = None
    for n in range(0, 41):
        e = qwenfit.estimate(rec["model"], quant, context=int(ctx.group(1)) * 1024, engine="llama.cpp",
                             kv_cache=rec.get("kv_cache") or "f16", hardware=rec["hardware_id"],
                             ram_gb=128, n_cpu_moe=n)  # fmt: skip
        gpu = sum(t.bytes for t in e.terms if t.device == "gpu" and t.name != "fit_margin")
        if best is None or abs(gpu - vram) < best[0]:
            best = (abs(gpu - vram), n)
    return best[1] if best else None


def _cpu_tensors(rec: dict[str, Any], weights: Any, quant: str, assumed: list[str]) -> set[str]:
    off = str(rec.get("offload") or "")
    if not off:
        return set()
    limit: int | None = None
    if "n-cpu-moe" in off:
        limit = int(re.search(r"n-cpu-moe\s+(\d+)", off).group(1))  # type: ignore[union-attr]
    elif "--fit" in off:
        limit = _fit_n_cpu_moe(rec, quant)
        assumed.append(f"assumed_n_cpu_moe: {limit} (--fit; from the quoted VRAM via qwenfit.estimate)")
    # exps=CPU / --cpu-moe: every routed expert in RAM
    return {
        e.name
        for e in weights.tensors
        if e.component == "text" and e.role in ROUTED_EXPERT_ROLES
        and (limit is None or (e.layer is not None and e.layer < limit))
    }  # fmt: skip


def _qwen_features(r: Row, rec: dict[str, Any]) -> None:
    spec = qwenfit.load(SPEC_ALIAS.get(rec["model"], rec["model"]))
    t = spec.text
    w = _weights(spec, r.quant or "", r.quant_as_published)
    r.bf16_share = bf16_ppm(w) / 1e6
    if w.scheme.startswith("nvfp4 + fp8"):
        r.assumed.append(
            "assumed_weights: qwenfit nvfp4's FP4 tensors (routed experts / dense FFN) + fp8 for the rest"
            " (row: NVFP4 + FP8 attention)"
        )
    gguf = w.scheme.startswith("gguf")
    cpu = _cpu_tensors(rec, w, r.quant or "", r.assumed)
    k, E = t.num_experts_per_tok, t.num_experts
    head_roles = ("lm_head",) if not t.tie_word_embeddings else ("embed",)
    a_lin = 0.0
    a_routed = 0.0
    head = 0.0
    off_layers: set[int] = set()
    for e in w.tensors:
        n_el = math.prod(e.shape)
        if e.component == "text":
            routed = e.role in ROUTED_EXPERT_ROLES
            if e.role in head_roles:
                head += n_el
            elif e.role != "embed":
                a_lin += n_el * k / E if routed and E else n_el
                a_routed += n_el * k / E if routed and E else 0.0
            read = tensor_read_bytes(spec, e)
            side = "cpu" if e.name in cpu else "gpu"
            if side == "cpu" and e.layer is not None:
                off_layers.add(e.layer)
            if routed:
                setattr(r, f"expert_{side}", getattr(r, f"expert_{side}") + read)
            else:
                setattr(r, f"dense_{side}", getattr(r, f"dense_{side}") + read)
            if side == "cpu":
                r.resident_cpu += e.bytes
            else:
                r.resident_gpu += e.bytes
        elif e.component == "mtp":
            read = tensor_read_bytes(spec, e)
            if e.role in ROUTED_EXPERT_ROLES:
                r.mtp_expert += read
            else:
                r.mtp_dense += read
    # check against qwenfit's own sum
    ref = decode_read_bytes(spec, w, cpu_tensors=cpu)
    assert (
        abs(ref["gpu"] - (r.dense_gpu + r.expert_gpu)) < 1e3
        and abs(ref["cpu"] - (r.dense_cpu + r.expert_cpu)) < 1e3
    )
    ref_mtp = decode_read_bytes(spec, w, cpu_tensors=cpu, mtp=True)
    head_bytes = (ref_mtp["gpu"] + ref_mtp["cpu"]) - (ref["gpu"] + ref["cpu"]) - (r.mtp_dense + r.mtp_expert)
    r.mtp_dense += head_bytes  # the draft projects through the shared output head once more
    r.n_experts, r.k_experts = E, k
    r.is_moe = bool(E)
    r.n_layers = t.num_hidden_layers
    r.n_attn = t.n_full_attention
    r.n_gdn = t.n_linear_attention
    r.n_moe = t.num_hidden_layers if E else 0
    r.n_dense = 0 if E else t.num_hidden_layers
    r.n_offloaded_layers = len(off_layers)
    r.active_params = a_lin
    r.active_routed = a_routed
    r.active_total = spec.params.active
    r.head_params = head
    r.attn_width = t.num_attention_heads * t.head_dim
    r.hidden = t.hidden_size
    kv = rec.get("kv_cache")
    if r.family == "vllm" and r.backend == "cuda" and kv in VLLM_KV_NAMES:  # the shipped engine's answer
        dev = hardware_catalog().get(r.hw_id or "")
        r.verify_flops = engine_base.get("vllm").verify_flops({"kv_cache": VLLM_KV_NAMES[kv]}, dev, spec)
    if gguf:
        kt = GGUF_KV.get(kv, "f16")
        r.kv_per_token = llama_kv_bytes_per_cell(spec, kt, kt)
        r.state_bytes = llama_recurrent_bytes_per_cell(spec)
    else:
        r.kv_per_token = t.n_full_attention * 2 * t.num_key_value_heads * t.head_dim * KV_ELEMENT_BYTES[kv]
        r.state_bytes = gdn_state(spec).bytes * t.n_linear_attention


def _assumed_features(r: Row, rec: dict[str, Any]) -> None:
    """Calibration rows of architectures qwenfit does not model: bytes from the file size the source
    quotes (llama-bench prints 'NN.NN GiB'), else params x assumed bits per weight; the routed share
    from the assumed config (every tensor assumed at the file's average bits per weight)."""
    L, kvh, hd, qh, E, k, total_b, active_b = ASSUMED_ARCH[rec["model"]]
    quote, notes = str(rec.get("quote")), str(rec.get("notes") or "")
    m = re.search(r"\|\s*([\d.]+) GiB\s*\|", quote) or re.search(r"model size\s*=\s*([\d.]+) GiB", quote)
    noted = re.search(r"assumed_file_gib:\s*([\d.]+)", notes)
    if m:
        size = float(m.group(1)) * 2**30
        r.assumed.append("assumed_file_bytes: from the quoted GiB")
    elif noted:  # the same file's size quoted elsewhere (the record's notes say where)
        size = float(noted.group(1)) * 2**30
        r.assumed.append("assumed_file_bytes: assumed_file_gib in the notes")
    else:
        size = total_b * 1e9 * ASSUMED_BPW[r.quant or "Q4_K_M"] / 8
        r.assumed.append(f"assumed_file_bytes: {total_b}B params x {ASSUMED_BPW[r.quant or 'Q4_K_M']} bpw")
    bpp = size / (total_b * 1e9)
    routed = (total_b - active_b) / (1 - k / E) if E else 0.0  # params in routed experts
    dense = total_b - routed
    r.dense_gpu = dense * 1e9 * bpp
    r.expert_gpu = routed * 1e9 * bpp * (k / E if E else 0)
    r.resident_gpu = size
    r.n_experts, r.k_experts, r.is_moe = E, k, bool(E)
    r.n_layers = r.n_attn = L
    r.n_moe = L if E else 0
    r.n_dense = 0 if E else L
    r.active_params = r.active_total = active_b * 1e9
    r.active_routed = routed * 1e9 * (k / E if E else 0.0)
    r.attn_width = qh * hd
    r.hidden = qh * hd  # assumed: hidden = q heads x head dim (true of Llama-3.1 / Qwen3 dense)
    r.bf16_share = 1.0 if r.quant == "BF16" else 0.0
    kv_el = 2.0 if rec.get("kv_cache") in (None, "f16") else KV_ELEMENT_BYTES.get(rec.get("kv_cache"), 1.0)
    r.kv_per_token = L * 2 * kvh * hd * kv_el
    r.assumed.append(f"assumed_arch: {rec['model']} {ASSUMED_ARCH[rec['model']]}")
    _assumed_cpu_experts(r, rec, size, routed * 1e9 * bpp)


def _assumed_cpu_experts(r: Row, rec: dict[str, Any], size: float, routed_bytes: float) -> None:
    """A calibration row with every routed expert in host RAM (-ot exps=CPU / --cpu-moe): llama.cpp's load
    log splits the file where the source quotes it - `CUDA0 buffer size` holds every tensor left on the GPU
    (all read per token), `CUDA_Host buffer size` the token embedding (one row read per token), the rest of
    the file is the routed experts, k/E of them read per token; without the log, the assumed routed share at
    the file's average bits per weight. Every MoE layer then has CPU tensors (a graph split)."""
    off = str(rec.get("offload") or "")
    if "exps=CPU" not in off and "cpu-moe" not in off:
        return
    quote = str(rec.get("quote"))
    mib = [
        (m.group(1), float(m.group(2)))
        for m in re.finditer(r"(CUDA\d+|CUDA_Host) buffer size\s*=\s*([\d.]+) MiB", quote)
    ]
    gpu = sum(v for d, v in mib if d != "CUDA_Host") * 2**20
    if gpu:
        experts = size - gpu - sum(v for d, v in mib if d == "CUDA_Host") * 2**20
        r.dense_gpu = gpu
        r.assumed.append("assumed_expert_bytes: file - CUDA0 - CUDA_Host buffers of the quoted load log")
    else:
        experts = routed_bytes
    r.expert_gpu = 0.0
    r.expert_cpu = experts * r.k_experts / r.n_experts
    r.resident_cpu, r.resident_gpu = experts, size - experts
    lead = ASSUMED_LEADING_DENSE.get(rec["model"], 0)
    r.n_moe, r.n_dense = r.n_layers - lead, lead
    r.n_offloaded_layers = r.n_moe


# ------------------------------------------------------------------------------------------------


def build_row(rec: dict[str, Any], source: dict[str, Any]) -> Row:
    cat = hardware_catalog()
    dev = cat.get(rec.get("hardware_id") or "")
    engine = rec["engine"]
    family = engine_family(engine)
    backend = rec["backend"]
    n_gpus = int(rec.get("n_gpus") or 1)
    tp = int(rec.get("tp") or 1)
    host_id, host_peak, cores = _host(rec)
    link = rec.get("interconnect")
    if n_gpus > 1 and link is None and dev is not None and dev.kind == "gpu":
        link = "pcie"
    quant = rec.get("quant") or ASSUMED_QUANT.get(rec["id"])
    r = Row(
        id=rec["id"], source=source["id"], fold=fold_of(source["id"]), model=rec["model"],
        calibration=bool(rec.get("calibration_only")), engine=engine, family=family, backend=backend,
        cell=kernel_cell(family, backend, hw_class(dev)), hw_id=rec.get("hardware_id"), hw=hw_class(dev),
        bw_gbps=dev.bandwidth_gbps if dev else 0.0, fp16_tflops=dev.fp16_tflops if dev else 0.0,
        pcie_gbps=(dev.interconnect_gbps or 0.0) if dev and dev.kind == "gpu" else 0.0,
        link=link, link_gbps=_link_gbps(link, dev, n_gpus), n_gpus=n_gpus, tp=tp, host_id=host_id, host_peak_gbps=host_peak, host_cores=cores,
        quant=quant, url=str(rec.get("url") or ""), quant_as_published=str(rec.get("quant_as_published") or ""),
        hardware_text=str(rec.get("hardware") or ""),
    )  # fmt: skip
    # A memory overclock raises the DRAM data rate, and peak bandwidth = bus width x data rate: a row whose source
    # states its memory clock against stock (memory_clock_ratio, quoted in the YAML) scales the catalog bandwidth.
    if rec.get("memory_clock_ratio"):
        r.bw_gbps *= float(rec["memory_clock_ratio"])
        r.assumed.append(
            f"bandwidth x {float(rec['memory_clock_ratio']):.4f} (memory overclock stated by the source)"
        )
    if rec.get("quant") is None and quant:
        r.assumed.append(f"assumed_quant: {quant} (row does not name the GGUF type)")
    notes = str(rec.get("notes") or "")
    # depth while decoding: the record's depth, else the notes' assumed_depth_tokens, else 0
    depth = rec.get("depth_tokens")
    if depth is None:
        m = re.search(r"assumed_depth_tokens:\s*(\d+)", notes)
        depth = int(m.group(1)) if m else 0
        if not m:
            r.assumed.append("assumed_depth_tokens: 0 (not stated)")
    dec_tokens = rec.get("decode_tokens")
    if dec_tokens is None:
        dec_tokens = 128
        r.assumed.append("assumed_decode_tokens: 128 (not stated)")
    r.depth = float(depth) + float(dec_tokens) / 2
    r.batch = int(rec.get("batch") or 1)
    if family == "vllm":
        when = str(rec.get("date") or source.get("date") or "")
        r.vllm_piecewise = _vllm_before_full_graphs(str(rec.get("engine_version") or ""), when)
        if r.vllm_piecewise:
            r.assumed.append(f"vLLM before full CUDA graphs by default (PR #25444, v0.11.0): run {when}")
    if family == "llama.cpp" and backend == "rocm":
        when = str(rec.get("date") or source.get("date") or "")
        r.rocm_hipblas = bool(when) and when < ROCM_WMMA_MMQ_DATE
        if r.rocm_hipblas:
            r.assumed.append(f"llama.cpp ROCm before WMMA-MMQ on RDNA3 (PR #17576): run {when}")
    if family == "ollama":
        r.runner, why = _ollama_runner(rec, source)
        r.assumed.append(why)
    r.mtp_n, r.mtp_e, how = _mtp(rec, family)
    prose = _documented_prose(source["id"], notes) if r.mtp_n and r.mtp_e is None else None
    if prose is not None:
        r.mtp_e = 1 + r.mtp_n * prose
        r.mtp_e_from = "documented prose"
        how = ""  # replaces what _mtp said (a published figure measured on another prompt)
        r.assumed.append(
            f"mtp tokens/cycle {r.mtp_e:.2f} from the benchmark script's documented prose acceptance "
            f"(~{prose:.0%} per position; features.DOCUMENTED_PROSE_ACCEPT), the row publishing none for its prompt"
        )
    if how.startswith("assumed"):
        r.assumed.append(how)
    elif how and r.mtp_e is not None:
        r.assumed.append(f"mtp tokens/cycle {r.mtp_e:.3f} from {how}")
    # decode target: aggregate tok/s
    total = rec.get("decode_total_tokens_per_s")
    per = rec.get("decode_tokens_per_s")
    r.decode = float(total) if total is not None else (float(per) * r.batch if per is not None else None)
    m = re.search(r"assumed_decode_tokens_per_s:\s*([\d.]+)", notes)
    if m:  # the source publishes a range or an approximate figure: the notes say how the number was read
        r.assumed.append(f"assumed_decode_tokens_per_s: {m.group(1)} (read from the source's range; notes)")
    if r.batch > 1 and "SWEEP" in notes:
        # club-3090 concurrency sweep: per-stream decode measured while the other streams' prompts
        # are admitted (chunked prefill shares the steps)
        r.interleaved_prompt = float(rec.get("depth_tokens") or 0)
    # prefill target
    pp, ptok = rec.get("prefill_tokens_per_s"), rec.get("prefill_tokens")
    if pp is not None:
        r.prefill = float(pp)
        m = re.search(r"assumed_prefill_tokens:\s*(\d+)", notes) if not ptok else None
        if m:  # the source's method gives the prompt length the row leaves out (quoted in the notes)
            ptok = int(m.group(1))
            r.assumed.append(f"assumed_prefill_tokens: {ptok} (the source's benchmark default)")
        r.prefill_tokens = float(ptok or 0)
        r.prefill_depth = float(rec.get("depth_tokens") or 0) if "@ d" in str(rec.get("quote")) else 0.0
        if not ptok:
            r.skip_prefill = "prompt length not stated"
    ub = rec.get("ubatch")
    r.ubatch = int(ub) if ub else {"vllm": 8192, "mlx": 2048, "mlx-swift": 2048}.get(family, 512)
    if not ub:
        r.assumed.append(f"assumed_ubatch: {r.ubatch} (engine default)")
    # skips
    if dev is None:
        r.skip_decode = r.skip_prefill = "hardware not named (no catalog device)"
    elif source["id"].startswith("conselara"):
        r.skip_decode = "2-node RoCE cluster: no link constant"
    if dev is not None and dev.fp16_tflops <= 0 and not r.skip_prefill:
        r.skip_prefill = "device FP16 TFLOPS unknown in data/hardware.yaml"
    if quant is None:
        r.skip_decode = r.skip_decode or "quant unknown"
    if family in ("mlx", "mlx-swift") and r.mtp_n:
        # MTP drafting on MLX (vllm-mlx --enable-mtp) is a setting qwenfit cannot plan: its mlx engine is
        # mlx_lm.server, and mlx-lm drops the checkpoint's MTP weights on load (ml-explore/mlx-lm at
        # d78bf58, mlx_lm/models/qwen3_next.py:455 and qwen3_5.py:352: `if "mtp." not in k`), so the
        # engine rejects mtp=True (qwenfit.core.engines.mlx.Mlx.check); listed in the report, not scored
        r.skip_decode = r.skip_decode or (
            "MTP on MLX (vllm-mlx --enable-mtp): qwenfit's mlx engine (mlx_lm.server) has no MTP drafting"
        )
    if rec.get("split_mode") == "tensor":
        # llama.cpp -sm tensor (tensor parallel inside llama.cpp) is a setting qwenfit cannot plan: its
        # llama.cpp engine splits by layer or not at all (`qwenfit check -- llama-server -sm tensor ...`
        # answers "llama.cpp option split_mode='tensor'; valid: layer, none"); listed, not scored
        _list(r, LLAMA_SM_TENSOR_SKIP)
    if r.runner == "cgo":
        _list(r, OLLAMA_CGO_SKIP)
    if rec["engine"] == "ik_llama.cpp":
        _list(r, IK_LLAMA_SKIP)
    if _confidential(rec):
        _list(r, CONFIDENTIAL_SKIP)
    if backend == "mlx" and dev is not None and dev.vendor != "apple":
        _list(r, MLX_OFF_APPLE_SKIP)
    if rec.get("decode_flagged_by_source"):
        # the source itself says the figure is a fault of that board or build, not the engine on that
        # hardware (its verbatim words in the record): neither fitted nor scored, listed in the report
        r.skip_decode = (
            r.skip_decode or "flagged by its source as not representative (decode_flagged_by_source)"
        )
    # qwenfit features
    if quant is not None and (rec["model"] in ASSUMED_ARCH):
        _assumed_features(r, rec)
    elif quant is not None:
        _qwen_features(r, rec)
    if graph_family(family, r.runner) == "llama.cpp" and backend == "cuda":  # the shipped rule (speed_kvq)
        r.kv_vec_cols = vec_query_cols(rec.get("kv_cache"), dev.compute_capability if dev else None)
    r.category = _category(r)
    tags = []
    if r.mtp_n:
        tags.append("mtp")
    if r.family == "vllm":
        tags.append("vllm")
    if r.batch > 1:
        tags.append("batched")
    if r.n_gpus > 1:
        tags.append("multi-gpu")
    if r.prefill is not None:
        tags.append("prefill")
    if r.calibration:
        tags.append("calibration")
    r.tags = tuple(tags)
    return r


def load_rows(directory: Path = MEASUREMENTS) -> list[Row]:
    rows: list[Row] = []
    for path in sorted(glob.glob(str(directory / "*.yaml"))):
        doc = yaml.safe_load(Path(path).read_text())
        for rec in doc["records"]:
            rows.append(build_row(rec, doc["source"]))
    return rows


if __name__ == "__main__":  # a quick look
    for r in load_rows():
        print(f"{r.id[:44]:44} {r.category[:14]:14} {r.cell:18} {r.hw:6} Wg={(r.dense_gpu + r.expert_gpu) / 1e9:6.2f} "
              f"Wc={(r.dense_cpu + r.expert_cpu) / 1e9:6.2f} kv={r.kv_per_token:7.0f} S={r.state_bytes / 1e6:5.1f}MB "
              f"d={r.depth:7.0f} b={r.batch} mtp={r.mtp_n}/{r.mtp_e} dec={r.decode} pp={r.prefill} "
              f"{r.skip_decode}")  # fmt: skip
