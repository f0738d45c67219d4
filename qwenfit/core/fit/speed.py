"""Decode and prefill speed: a bandwidth/compute roofline plus fixed per-token costs (estimated).

Every number here is an *estimate* (``Speed.exact`` is False): the memory arithmetic of qwenfit is
exact, tokens per second are not. The model is described in docs/reports/speed.md; its constants were
chosen from first principles and published ranges *before* any published measurement was compared with
it, and none was fitted afterwards (``benchmarks/speed_accuracy.py`` reports how far off it is).

Decode (one sequence, batch 1)
------------------------------
A decode step streams every weight the token touches, the KV cache of the full-attention layers
and the Gated DeltaNet state once from memory, then pays fixed costs (kernel launches,
synchronisation, the engine's own step)::

    t_token = B_gpu / (η_mem · BW_gpu · tp) + B_cpu / BW_host_eff + t_fixed
    t_fixed = t_step(engine) + n_layers · c_layer(engine, backend)
              + n_offloaded_layers · c_offload + (tp > 1) · 2 · n_layers · t_allreduce(link)
    B_dev   = weights read on dev (decode_read_bytes) + KV read on dev + 2 · GDN state on dev

- **Weights read per token** (:func:`decode_read_bytes`): every non-expert text tensor once
  (attention/GDN projections, norms, router, shared expert, ``lm_head``); routed experts at
  ``num_experts_per_tok / num_experts`` of their bytes (the expected bytes one token touches, at
  batch 1 every layer reads exactly k of E experts); the token embedding one row only (``get_rows``
  in llama.cpp, ``nn.Embedding`` in PyTorch/MLX gather the token's row; the full matrix is read only
  when it doubles as the output layer, ``tie_word_embeddings``); vision not at all (text decode);
  the MTP block only with ``mtp=True`` (one draft step: the MTP layer, plus one more read of the
  shared output head, which the draft projects through; the acceptance-rate gain is *not* modelled).
- **KV**: the caller passes the bytes of the K and V cells attention reads (full-attention layers
  only, times the context depth). **GDN state** is read and written back every token: 2x.
- **η_mem = η_dram(kind) · η_kernel(backend)**:

  * ``η_dram``: the fraction of peak a streaming read reaches. Discrete GDDR6/6X/7 and HBM: 0.92
    (device-to-device copies in CUDA's bandwidthTest/nvbandwidth reach ~90-93 % of peak on
    RTX 30/40 and H100 class cards [engineering estimate]); unified LPDDR5/5X SoCs (Apple, Strix
    Halo, DGX Spark): 0.85 (STREAM-class reads on shared memory controllers reach ~80-90 %)
    [engineering estimate].
  * ``η_kernel``: how close quantized GEMV / MoE kernels come to a plain copy: CUDA 0.90 (llama.cpp
    MMVQ, Marlin, cuBLAS GEMV are mature), Metal 0.85 (llama.cpp/MLX quantized mat-vec), ROCm and
    Vulkan 0.80 (less tuned), SYCL 0.75 [engineering estimates]. Products: discrete CUDA 0.83,
    discrete ROCm/Vulkan 0.74, Apple 0.72, Vulkan/ROCm APU 0.68, DGX Spark 0.77, which sits inside
    the "0.8+ for dense models" usually quoted for discrete GPUs, where fixed costs are small.

- **c_layer** (per-layer fixed cost, kernel launch and small-kernel latency that no bandwidth
  hides): llama.cpp CUDA 0.10 ms, the middle of the 0.06-0.14 ms usually quoted; llama.cpp ROCm/Vulkan
  0.20 ms, the middle of the 0.1-0.3 ms usually quoted (measured on APUs; used for discrete cards too);
  llama.cpp Metal 0.15 ms (no sourced figure: Metal has no CUDA graphs, so between the two);
  llama.cpp CPU 0.05 ms (thread-pool barriers, ~20 ops per
  layer at a few µs); MLX 0.10 ms (compiled graphs, dispatch like CUDA without graphs)
  [assumption]; vLLM/SGLang CUDA 0.05 ms (the whole step is one CUDA graph, so only GPU-side gaps
  between ~25 kernels per layer remain, ~2 µs each), on ROCm 0.08 ms (HIP graphs, less tuned)
  [engineering estimates]; transformers 0.30 ms (eager PyTorch: ~30 launches per layer at ~10 µs).
- **t_step** (per-token engine cost independent of the model's depth): llama.cpp 0.2 ms (graph
  reuse/build, logits copy of a 248k vocabulary); Ollama and LM Studio 0.5 ms (a llama.cpp runner
  behind an HTTP stream); MLX 0.5 ms (Python generation loop, ``mx.eval`` sync per token);
  vLLM/SGLang 1.0 ms (scheduler, input preparation, sampler, detokenizer; partly overlapped by
  async scheduling); transformers 2.0 ms [assumptions].
- **Offload** (tensors on the CPU, e.g. ``--n-cpu-moe`` / ``-ot exps=CPU``): their bytes stream at
  ``machine.host.effective_gbps`` (a measured STREAM-like rate), or the default host profile
  (dual-channel DDR5-5600: 89.6 GB/s peak x 0.7 = 62.7 GB/s, a planning fraction for desktop
  DDR5), and every layer with CPU tensors adds ``c_offload`` = 0.05 ms: the graph splits there,
  so the activations go device -> host -> device (~10 µs each over PCIe) and the CPU thread pool
  wakes up (~10-30 µs) [engineering estimate].
- **Tensor parallelism**: ``tp`` GPUs read their ``1/tp`` of the bytes at the same time, and each
  layer adds two all-reduces of one hidden vector (after attention and after the MLP), which at
  a few KB are latency-bound: 15 µs over NVLink (vLLM's custom one-shot all-reduce), 30 µs over
  PCIe peer-to-peer [engineering estimates]. ``tp = 1`` on several GPUs (llama.cpp's default
  layer split) runs the GPUs one after the other: the time is that of one GPU reading all bytes.

Prefill
-------
Compute-bound from ``prompt_tokens`` up, per ubatch roofline against reading the resident
weights once::

    t_prefill = Σ_ubatch max(2 · active_params · n_ub / (η_c · F · tp), W_gpu / (η_mem · BW · tp))
                + n_ubatch · (t_fixed + W_cpu / (η_pcie · BW_pcie))

with ``F`` the device's dense FP16 tensor TFLOPS. ``W_cpu / BW_pcie`` is llama.cpp's *op offload*:
with a batch of >= 32 tokens (ggml-cuda ``offload_op``) matrix products whose weights live in host
RAM run on the GPU, after copying the whole weight tensor over PCIe, once per ubatch. The same
copy bounds vLLM's ``--cpu-offload-gb``. ``η_pcie`` = 0.75 (pageable host buffers reach
~70-80 % of a PCIe link) [engineering estimate]; the link is the device's ``interconnect_gbps``
when that is a PCIe link, else (unknown, or an NVLink figure, which is not the host link) PCIe 4.0
x16 at 31.5 GB/s per direction. ``η_c`` (fraction of dense FP16 tensor peak):
llama.cpp CUDA 0.35 (MMQ on quantized weights, small per-expert GEMMs), llama.cpp ROCm/Vulkan
0.25, llama.cpp Metal 0.40, MLX 0.45, vLLM/SGLang 0.50 (cuBLAS/CUTLASS/Triton GEMMs at large M,
fused-MoE lower), transformers 0.40 [engineering estimates]. Attention FLOPs (only the full-attention
quarter of the layers, quadratic in the prompt) are left out: small at the default 512 tokens.

Validation (not calibration)
----------------------------
``benchmarks/speed_accuracy.py`` compares these estimates with 38 published single-stream
measurements (``benchmarks/speed_measurements.yaml``), hardware from the catalog. At the time of
writing, decode: median absolute error 11 %, worst 95 %. Per category (median absolute / median
signed): APU 5 % / 0 %, offload 4 % / +4 %, Apple 14 % / -9 %, MoE on discrete GPUs 24 % / +24 %,
dense on discrete GPUs 25 % / +25 %. Known misses: Qwen3.5-397B with every expert in 12-channel
DDR5 behind a 16-core CPU (+95 %: a few cores cannot stream RAM at the profile's sustained rate);
~3B-active MoE on M3 Ultra (+44-61 %) and on RTX 3090 (up to +61 %), where the fixed costs are
larger than the middle values chosen; RTX 3090 dense (+25-55 %) while RTX 4090/5090 dense are
within -13 %; MLX on small models is under-estimated (-20 to -37 %). Prefill (5 records) is
over-estimated 2.5-3.3x for MoE (small per-expert GEMMs reach far less than η_c), -10 % for the
dense 27B. These numbers are reported, not fed back into the constants.

Tracing
-------
:func:`decode_tokens_per_s` is the decode formula in integer arithmetic (time in femtoseconds per
byte, so every product stays an integer below 2**53) with one final true division; called with
:class:`qwenfit.core.expr.Expr` byte counts (e.g. KV bytes as a function of context) it returns the
formula tree the docs calculator evaluates. :func:`estimate_speed` uses the same function.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import overload

from qwenfit.core.engines.base import Engine, Placement, SpeedConstants, get
from qwenfit.core.expr import Expr, Num, as_int, smin
from qwenfit.core.hardware import Device, HostMemory, Machine
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import Estimate, Term

__all__ = [
    "DEFAULT_DEPTH",
    "DEFAULT_HOST",
    "FS_PER_S",
    "DecodeRates",
    "Speed",
    "decode_bytes",
    "decode_rates",
    "decode_speed",
    "decode_tokens_per_s",
    "estimate_speed",
    "memory_efficiency",
    "rate_constants",
    "speed_of",
]

# Decode speed is quoted with this many tokens already in the context (4,096: the least context a plan
# is made for, so every option can be compared at it); depth= asks for another.
DEFAULT_DEPTH = 4096

FS_PER_S = 10**15  # femtoseconds per second: decode time is counted in integer fs

# η_dram: fraction of peak bandwidth a streaming read reaches, by Device.kind [engineering estimates,
# see the module docstring]
DRAM_EFFICIENCY = {"gpu": 0.92, "unified": 0.85}
# η_kernel: quantized GEMV / MoE decode kernels relative to a plain streaming read, by backend
KERNEL_EFFICIENCY = {"cuda": 0.90, "metal": 0.85, "rocm": 0.80, "vulkan": 0.80, "sycl": 0.75, "cpu": 1.0}

# the fixed costs of each engine (t_step, c_layer by backend, η_c by backend) live in its home:
# Engine.speed (qwenfit.core.engines.base.SpeedConstants); the values are the ones the module docstring gives

OFFLOAD_LAYER_US = 50  # c_offload: a graph split per layer with CPU tensors (copies + thread-pool wake-up)
ALLREDUCE_US = {"nvlink": 15, "pcie": 30}  # one latency-bound all-reduce of a hidden vector
ALLREDUCES_PER_LAYER = 2  # after attention and after the MLP (Megatron-style row-parallel outputs)

PCIE_EFFICIENCY = 0.75  # pageable host -> device copies
DEFAULT_PCIE_GBPS = 31.5  # PCIe 4.0 x16, per direction (PCIe 4.0 x16: 16 GT/s x 16 lanes, 128b/130b)
DEFAULT_UBATCH_TOKENS = 512  # llama.cpp -ub default; the other engines' chunks are larger, same effect

# the host RAM profile assumed when the machine does not say: dual-channel DDR5-5600, 89.6 GB/s peak
# (2 x 8 bytes x 5600 MT/s), 0.7 of it sustained (a planning fraction for desktop DDR5)
DEFAULT_HOST = HostMemory(
    id="ddr5-5600-2ch",
    name="dual-channel DDR5-5600 (assumed)",
    bandwidth_gbps=89.6,
    effective_gbps=62.72,
    source="peak = channels x 8 B x MT/s; ~0.7 of it sustained by a memory-bound decode "
    "(docs/reports/speed.md)",
)


@dataclass(frozen=True, slots=True)
class Speed:
    """Estimated decode and prefill speed of one sequence; None where the hardware does not say."""

    decode_tokens_per_s: float | None
    prefill_tokens_per_s: float | None
    detail: str  # the time per token, term by term
    basis: str  # the constants it rests on
    exact: bool = False


@dataclass(frozen=True, slots=True)
class DecodeRates:
    """Integer decode coefficients: femtoseconds per byte read on each side, and fixed fs per token."""

    gpu_fs_per_byte: int
    cpu_fs_per_byte: int
    fixed_fs: int
    basis: str


def _speed(engine: str | Engine) -> SpeedConstants:
    """An engine's speed constants (an engine object, or a registered engine's name)."""
    return (engine if isinstance(engine, Engine) else get(engine)).speed


def _fs_per_byte(gbps: float) -> int:
    """Femtoseconds to stream one byte at ``gbps`` GB/s (rounded; 1 fs of 1,000+ is below 0.1 %)."""
    return round(FS_PER_S / (gbps * 1e9))


def _link(device: Device) -> str:
    return "nvlink" if (device.interconnect or "").lower().startswith("nvlink") else "pcie"


def memory_efficiency(device: Device, backend: str) -> float:
    """η_mem = η_dram(kind) · η_kernel(backend) (see the module docstring)."""
    return DRAM_EFFICIENCY.get(device.kind, DRAM_EFFICIENCY["gpu"]) * KERNEL_EFFICIENCY.get(backend, 0.75)


@overload
def decode_tokens_per_s(gpu_bytes: int, cpu_bytes: int, rates: DecodeRates) -> float: ...
@overload
def decode_tokens_per_s(gpu_bytes: Num, cpu_bytes: Num, rates: DecodeRates) -> float | Expr: ...
def decode_tokens_per_s(gpu_bytes: Num, cpu_bytes: Num, rates: DecodeRates) -> float | Expr:
    """Tokens per second for these bytes read per token: integer arithmetic, one true division.

    With ``int`` arguments a float; with :class:`Expr` arguments the formula tree (for the docs
    calculator). Uses only ``+``, ``*`` and a final ``/``.
    """
    time_fs = gpu_bytes * rates.gpu_fs_per_byte + cpu_bytes * rates.cpu_fs_per_byte + rates.fixed_fs
    return FS_PER_S / time_fs


def rate_constants(
    *, machine: Machine, engine: str | Engine, tp: int = 1, backend: str = "cuda"
) -> dict[str, int] | None:
    """The model-independent inputs of :func:`decode_speed` on ``machine`` (what
    :func:`decode_rates` uses): fs per byte on each side and the µs costs; None when the device's
    bandwidth is unknown."""
    r = decode_rates(machine=machine, engine=engine, n_layers=0, tp=tp, backend=backend)
    if r is None:
        return None
    k = _speed(engine)
    ar_us = 0
    if tp > 1 and machine.devices:
        ar_us = ALLREDUCES_PER_LAYER * ALLREDUCE_US[_link(machine.devices[0])]
    return {
        "gpu_fs": r.gpu_fs_per_byte,
        "cpu_fs": r.cpu_fs_per_byte,
        "step_us": k.step_us,
        "layer_us": k.layer_us.get(backend, k.default_layer_us),
        "ar_us": ar_us,
    }


def decode_speed(
    gpu_bytes: Num, cpu_bytes: Num, k: Mapping[str, Num], *, n_layers: int, n_offloaded: Num = 0
) -> float | Expr:
    """Decode tokens/s from the bytes one token streams on each side and :func:`rate_constants`
    (the same sum as :func:`decode_rates` + :func:`decode_tokens_per_s`, in integers until the one
    division; traceable for the docs calculator)."""
    fixed_us = k["step_us"] + n_layers * (k["layer_us"] + k["ar_us"]) + n_offloaded * OFFLOAD_LAYER_US
    return FS_PER_S / (gpu_bytes * k["gpu_fs"] + cpu_bytes * k["cpu_fs"] + fixed_us * 10**9)


def decode_bytes(
    terms: Sequence[Term],
    sequences: Num,
    read_gpu: Num,
    read_cpu: Num,
    *,
    tp: int = 1,
    depth: Num | None = None,
    context: Num | None = None,
) -> tuple[Num, Num]:
    """(GPU bytes, CPU bytes) one decoded token of one sequence streams: the weights it reads, its
    share of the KV cache (``kv_cache`` bytes / sequences, every rank's under TP; with ``depth`` only
    the ``depth`` tokens already in a ``context``-token cache, not the whole allocation) and twice its
    recurrent state (read and written back)."""
    gpu, cpu = read_gpu, read_cpu
    for term in terms:
        if term.name not in ("kv_cache", "recurrent_state"):
            continue
        share = term.bytes * tp // sequences * (2 if term.name == "recurrent_state" else 1)
        if term.name == "kv_cache" and depth is not None and context is not None:
            share = share * smin(depth, context) // context
        if term.device == "cpu":
            cpu = cpu + share
        else:
            gpu = gpu + share
    return gpu, cpu


def _check_tp(machine: Machine, tp: int) -> None:
    if tp < 1:
        raise ValueError(f"tp must be >= 1, got {tp}")
    if machine.devices and tp > machine.n_devices:
        raise ValueError(f"tp={tp} needs {tp} GPUs; machine {machine.name!r} has {machine.n_devices}")


def decode_rates(
    *,
    machine: Machine,
    engine: str | Engine,
    n_layers: int,
    tp: int = 1,
    backend: str = "cuda",
    n_offloaded_layers: int = 0,
) -> DecodeRates | None:
    """The decode coefficients on ``machine``; None when its device bandwidth is unknown (0)."""
    _check_tp(machine, tp)
    k = _speed(engine)
    family = k.family
    host = machine.host or DEFAULT_HOST
    if host.effective_gbps <= 0:
        return None
    cpu_fs = _fs_per_byte(host.effective_gbps)
    layer_us = k.layer_us.get(backend, k.default_layer_us)
    step_us = k.step_us
    parts = [f"t_step {step_us} µs ({family})", f"{n_layers} layers x {layer_us} µs ({family}/{backend})"]
    fixed_us = step_us + n_layers * layer_us
    if n_offloaded_layers:
        fixed_us += n_offloaded_layers * OFFLOAD_LAYER_US
        parts.append(f"{n_offloaded_layers} offloaded layers x {OFFLOAD_LAYER_US} µs")
    if not machine.devices:  # CPU only: every byte streams from host RAM
        basis = f"host RAM {host.effective_gbps:g} GB/s effective ({host.name}); " + "; ".join(parts)
        return DecodeRates(cpu_fs, cpu_fs, fixed_us * 10**9, basis)
    device = machine.devices[0]
    if device.bandwidth_gbps <= 0:
        return None
    eta = memory_efficiency(device, backend)
    if tp > 1:
        link = _link(device)
        fixed_us += ALLREDUCES_PER_LAYER * n_layers * ALLREDUCE_US[link]
        parts.append(
            f"TP{tp}: {ALLREDUCES_PER_LAYER} x {n_layers} all-reduces x {ALLREDUCE_US[link]} µs ({link})"
        )
    basis = (
        f"GPU {device.id}: η_mem {eta:.2f} x {device.bandwidth_gbps:g} GB/s x tp {tp}; "
        f"host {host.effective_gbps:g} GB/s effective ({host.name}); " + "; ".join(parts)
    )
    return DecodeRates(_fs_per_byte(eta * device.bandwidth_gbps * tp), cpu_fs, fixed_us * 10**9, basis)


def estimate_speed(
    *,
    read_bytes: Mapping[str, int],
    kv_read_bytes: Mapping[str, int],
    state_bytes: Mapping[str, int],
    machine: Machine,
    engine: str | Engine,
    n_layers: int,
    active_params: int,
    tp: int = 1,
    backend: str = "cuda",
    prompt_tokens: int = 512,
    n_offloaded_layers: int | None = None,
    resident_bytes: Mapping[str, int] | None = None,
    ubatch_tokens: int = DEFAULT_UBATCH_TOKENS,
) -> Speed:
    """Estimated decode and prefill tokens/s of one sequence (see the module docstring).

    A CPU-only machine (no devices) streams everything from host RAM; pass ``backend="cpu"``.
    ``read_bytes``: weights read per token per device (:func:`decode_read_bytes`); ``kv_read_bytes``:
    KV bytes attention reads per token (context depth x KV bytes per cell); ``state_bytes``: GDN
    (recurrent) state of the sequence, read and written every token. ``n_offloaded_layers``: layers
    with tensors on the CPU (default: every layer when any weight is on the CPU). ``resident_bytes``:
    all weight bytes per device (every expert), for the prefill's weight pass and the PCIe copy of
    CPU weights (default: ``read_bytes``, a lower bound for MoE). Decode is None when the device's
    bandwidth is unknown, prefill when its FP16 throughput is.
    """
    gpu_bytes = read_bytes.get("gpu", 0) + kv_read_bytes.get("gpu", 0) + 2 * state_bytes.get("gpu", 0)
    cpu_bytes = read_bytes.get("cpu", 0) + kv_read_bytes.get("cpu", 0) + 2 * state_bytes.get("cpu", 0)
    if n_offloaded_layers is None:
        n_offloaded_layers = n_layers if read_bytes.get("cpu", 0) > 0 and machine.devices else 0
    rates = decode_rates(
        machine=machine, engine=engine, n_layers=n_layers, tp=tp, backend=backend,
        n_offloaded_layers=n_offloaded_layers,
    )  # fmt: skip
    if rates is None:
        return Speed(None, None, "device memory bandwidth unknown", "no estimate: bandwidth_gbps is 0")
    decode = decode_tokens_per_s(gpu_bytes, cpu_bytes, rates)
    gpu_ms = gpu_bytes * rates.gpu_fs_per_byte / 1e12
    cpu_ms = cpu_bytes * rates.cpu_fs_per_byte / 1e12
    fixed_ms = rates.fixed_fs / 1e12
    detail = (
        f"decode {1e3 / decode:.2f} ms/token = GPU {gpu_bytes / 1e9:.3f} GB in {gpu_ms:.2f} ms"
        + (f" + CPU {cpu_bytes / 1e9:.3f} GB in {cpu_ms:.2f} ms" if cpu_bytes else "")
        + f" + fixed {fixed_ms:.2f} ms"
    )
    prefill = _prefill(
        machine=machine, engine=engine, backend=backend, tp=tp, active_params=active_params,
        prompt_tokens=prompt_tokens, ubatch_tokens=ubatch_tokens, fixed_s=rates.fixed_fs / FS_PER_S,
        resident=resident_bytes if resident_bytes is not None else read_bytes,
    )  # fmt: skip
    if prefill is not None:
        detail += f"; prefill {prompt_tokens} tokens: {prefill[1]}"
    basis = "estimated: bandwidth roofline + fixed costs; " + rates.basis
    return Speed(decode, prefill[0] if prefill else None, detail, basis)


def _prefill(
    *,
    machine: Machine,
    engine: str | Engine,
    backend: str,
    tp: int,
    active_params: int,
    prompt_tokens: int,
    ubatch_tokens: int,
    fixed_s: float,
    resident: Mapping[str, int],
) -> tuple[float, str] | None:
    if not machine.devices or prompt_tokens <= 0:
        return None
    device = machine.devices[0]
    if device.fp16_tflops <= 0 or device.bandwidth_gbps <= 0:
        return None
    k = _speed(engine)
    eta_c = k.compute_efficiency.get(backend, k.default_compute_efficiency)
    flops_per_s = eta_c * device.fp16_tflops * 1e12 * tp
    weights_s = resident.get("gpu", 0) / (
        memory_efficiency(device, backend) * device.bandwidth_gbps * 1e9 * tp
    )
    pcie_gbps = device.interconnect_gbps if device.interconnect_gbps and _link(device) == "pcie" else None
    copy_s = resident.get("cpu", 0) / (PCIE_EFFICIENCY * (pcie_gbps or DEFAULT_PCIE_GBPS) * 1e9)
    n_ubatch = math.ceil(prompt_tokens / ubatch_tokens)
    total_s = 0.0
    for i in range(n_ubatch):
        n = min(ubatch_tokens, prompt_tokens - i * ubatch_tokens)
        total_s += max(2 * active_params * n / flops_per_s, weights_s) + fixed_s + copy_s
    detail = (
        f"{total_s * 1e3:.1f} ms ({n_ubatch} ubatch; η_c {eta_c:.2f} x {device.fp16_tflops:g} TFLOPS"
        + (f"; PCIe copy {copy_s * 1e3:.1f} ms/ubatch" if copy_s else "")
        + ")"
    )
    return prompt_tokens / total_s, detail


def speed_of(
    spec: ModelSpec, e: Estimate, machine: Machine, engine: Engine, p: Placement, backend: str,
    reads: tuple[Num, Num, Num], *, depth: int = DEFAULT_DEPTH,
) -> tuple[float | None, float | None, str]:  # fmt: skip
    """Decode and prefill tokens/s of one sequence for estimate ``e`` on ``machine`` (estimated):
    :func:`decode_speed` on the bytes one token streams with ``depth`` tokens already in the context
    (every option compared at the same depth, whatever context it allocates) — the formula the docs
    calculator evaluates — and :func:`estimate_speed`'s prefill. ``reads``: the engine's
    ``decode_reads`` (weights read on the GPU side, the CPU side, layers with tensors on the CPU)."""
    read_gpu, read_cpu, n_off = reads
    seqs = as_int(e.settings.get("sequences", 1))
    context = as_int(e.settings.get("context", depth)) or depth
    gb, cb = decode_bytes(e.terms, seqs, read_gpu, read_cpu, tp=p.tp, depth=depth, context=context)
    view = dataclasses.replace(machine, devices=()) if p.kind == "cpu" else machine
    backend = "cpu" if p.kind == "cpu" else backend
    k = rate_constants(machine=view, engine=engine, tp=p.tp, backend=backend)
    if k is None:
        return None, None, "device memory bandwidth unknown"
    decode = decode_speed(as_int(gb), as_int(cb), k, n_layers=spec.text.num_hidden_layers, n_offloaded=n_off)
    assert isinstance(decode, float)
    resident = {"gpu": e.term("weights") - e.term("weights", "cpu"), "cpu": e.term("weights", "cpu")}
    sp = estimate_speed(
        read_bytes={"gpu": as_int(read_gpu), "cpu": as_int(read_cpu)}, kv_read_bytes={}, state_bytes={},
        machine=view, engine=engine, n_layers=spec.text.num_hidden_layers, active_params=spec.params.active,
        tp=p.tp, backend=backend, n_offloaded_layers=as_int(n_off), resident_bytes=resident,
    )  # fmt: skip
    detail = (f"decode at {min(depth, context):,} tokens deep {1e3 / decode:.2f} ms/token: "
              f"{as_int(gb) / 1e9:.3f} GB read on the GPU side")  # fmt: skip
    if as_int(cb):
        detail += f", {as_int(cb) / 1e9:.3f} GB from host RAM"
    return decode, sp.prefill_tokens_per_s, detail
