"""Decode and prefill speed: the model fitted to published measurements (issue 19), with the band
each figure earned out of sample. Every figure is an *estimate*.

The equations are those of ``benchmarks/speed/fit/model.py``, whose constants were fitted to the
published measurements of ``benchmarks/speed/measurements/`` and scored leave-one-source-out
(``docs/reports/speed.md``); the fitted values, the bands and their provenance are data in
:mod:`qwenfit.core.fit.speed_fitted`, which the fit writes. Here they are evaluated on qwenfit's own
byte counts, in integers, so that the same function gives the planner's figure and the formula tree
the docs calculator evaluates.

Decode (one step of ``b`` sequences, ``1 + n`` tokens each when MTP drafts ``n``)::

    t_step = W_dense / (η BW tp) + W_experts · U(T) / (η BW tp) + b · (κ · KV(depth) + 2 S) / (η BW tp)
             + W_cpu / BW_host + (T - 1) · 2 A / (η_v F tp) + T · 4 H_q D_h n_attn depth / (α F tp)
             + t_fixed + (b - 1) · t_seq
    t_fixed = t_step(engine) + n_layers · c_layer (x moe factor) + n_offloaded · c_offload
              + 2 n_layers (tp - 1) t_allreduce(link)
    per-sequence tok/s = E / (t_step + n · t_draft)          (E: tokens per verify cycle, 1 without MTP)
    T > mat_vec_max_tokens (llama.cpp: 8): (T - 1) · 2 A / (η_v F tp) -> max(0, GEMMs at the prefill rate
              (gemm.decode_gemm_fs) - the GPU weight read)    (the engine's matrix kernels)
    t_draft = W_mtp / (η BW tp) + t_draft(engine) + b · (κ · KV(depth) / n_attn / (η BW tp) + 4 H_q D_h depth
              / (α F tp))     (vLLM's FA2 verify, one SM per head, unsplit: speed_mtp replaces T's FLOPs)

with ``T = b (1 + n)`` tokens in the step, ``U(T)`` the distinct routed experts ``T`` tokens read in
units of one token's ``k`` (``E/k · (1 - (1 - k/E)^T)``), ``η = η_hw(device class) · η_kernel(engine,
backend)``, ``κ`` the engine's KV-read factor, ``α`` the attention FLOPs' share of the FP16 peak
(``attn_decode``; llama.cpp CUDA over a quantized KV cache runs them in FlashAttention's vector kernel, one
CTA per query head on the CUDA cores, at ``attn_decode_kvq``: :mod:`qwenfit.core.fit.speed_kvq`),
``BW_host = min(η_host · peak, cores · host_core_gbps)``; MTP tokens per cycle come
from the published per-position acceptance (``mtp_accept``, :func:`mtp_tokens_per_cycle`). Each engine names
the families whose fitted constants it uses (:class:`qwenfit.core.engines.base.SpeedConstants.fitted`);
an engine with none keeps its own hand-set ``step_us`` / ``layer_us`` / ``compute_efficiency``
(estimates with no measurement behind).

Prefill: per ubatch, ``max(GEMM time, weights / (η BW tp))`` + fixed costs (``prefill_layer_us`` per layer: an
eager ubatch where decode replays a graph) + the PCIe copy of host-RAM weights (GEMMs by tokens per matrix:
:mod:`qwenfit.core.fit.gemm`), plus attention FLOPs ``4 H_q D_h (P d0 + P²/2)`` per full-attention layer at
``attn_prefill`` of the GEMM rate, plus TP activation traffic.

Which bytes: :func:`decode_bytes` (weights read, the sequence's KV cache at ``depth`` tokens, twice
its GDN state); the routed-expert share of the reads and the MTP block's bytes come from the model's
parameter counts at the reads' average bytes per parameter (an estimate: quant mixes differ per
tensor).

Calibrated constants (``qwenfit calibrate``) override the fitted ones for the device they were
measured on (:func:`use_calibration`); figures that use them are labelled "calibrated".
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qwenfit.core.engines.base import Engine, Placement, SpeedConstants, get
from qwenfit.core.expr import Expr, Num, as_int, at, lt, smax, smin, where
from qwenfit.core.fit import speed_fitted
from qwenfit.core.fit.gemm import decode_gemm_fs, gemm_efficiency, prefill_gemm_seconds
from qwenfit.core.fit.speed_bands import (
    Rate,
    band_of,
    category_of,
    format_rate,
    hw_class,
    rate_of,
    speed_band,
)
from qwenfit.core.fit.speed_kvq import vec_query_cols
from qwenfit.core.fit.speed_mtp import mtp_tokens_per_cycle, unsplit_verify_fs
from qwenfit.core.formats.compiled import MISSING, lookup, remember
from qwenfit.core.formats.weights import WeightMap
from qwenfit.core.hardware import Device, HostMemory, Machine
from qwenfit.core.model.inventory import ROUTED_EXPERT_ROLES
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import Estimate, Term

__all__ = ["DEFAULT_DEPTH", "DEFAULT_HOST", "FS_PER_S", "SPEED_KEYS", "Rate", "Shape", "band_of",
           "bf16_ppm", "category_of", "constants_for", "decode_bytes", "decode_speed", "format_rate",
           "hw_class", "mtp_tokens_per_cycle", "rate_constants", "shape_of", "speed_band", "speed_of",
           "use_calibration", "with_bf16"]  # fmt: skip

DEFAULT_DEPTH = 4096  # context tokens a decode figure is quoted at (a plan's least context); depth=: other
FS_PER_S = 10**15  # femtoseconds per second: decode time is counted in integer fs
NS_FS = 10**6  # fs per ns
U_TABLE = 256  # U(T) tabulated up to this many tokens per step (beyond: within 0.01 % of E/k)
PREFILL_TOKENS = 512  # the prompt the prefill figure is quoted for (from depth 0)

# the integer inputs of the traced decode formula (``k:<name>`` in the calculator)
SPEED_KEYS = ("gpu_fs", "kv_fs", "cpu_fs", "step_ns", "layer_ns", "moe_layer_ns", "ar_ns", "off_ns",
              "v_fs1k", "vtf_ppm", "seq_ns", "draft_ns", "bf16_fs", "a_fs1k", "aq_fs1k", "mm_tokens",
              "g_fs1k", "gh_milli")  # fmt: skip

# the host RAM profile assumed when the machine does not say: dual-channel DDR5-5600, 89.6 GB/s peak
# (2 x 8 bytes x 5600 MT/s); the sustained rate is the fitted eta_host x peak
DEFAULT_HOST = HostMemory(
    id="ddr5-5600-2ch", name="dual-channel DDR5-5600 (assumed)", bandwidth_gbps=89.6,
    effective_gbps=round(89.6 * speed_fitted.CONSTANTS["eta_host"], 2),
    source="peak = channels x 8 B x MT/s; sustained = fitted eta_host x peak (docs/reports/speed.md)",
)  # fmt: skip
DEFAULT_PCIE_GBPS = 31.5  # PCIe 4.0 x16 per direction, when the device does not say

# constants from `qwenfit calibrate` (name -> value; names as the fitted ones, ``@<device id>`` cells)
_CALIBRATED: dict[str, float] = {}


def use_calibration(constants: Mapping[str, float]) -> None:
    """Use these calibrated constants (``<prefix>.<family>/<backend>@<device id>``; {}: none) from now on."""
    _CALIBRATED.clear()
    _CALIBRATED.update({k: float(v) for k, v in constants.items()})
    rate_constants.cache_clear()
    _RESOLVED.clear()


# --------------------------------------------------------------------------------------------------
# constants


def _lookup(
    prefix: str, fams: Sequence[str], backend: str, device: Device | None
) -> tuple[float, bool] | None:
    """The first of ``prefix.<fam>/<backend>@<device>``, ``@<class>``, ``/<backend>``, ``.<fam>`` for
    each family in order, then ``prefix`` alone; (value, calibrated) or None."""
    names: list[str] = []
    for f in fams:
        if device is not None:
            names.append(f"{prefix}.{f}/{backend}@{device.id}")
            names.append(f"{prefix}.{f}/{backend}@{hw_class(device)}")
        names += [f"{prefix}.{f}/{backend}", f"{prefix}.{f}"]
    names.append(prefix)
    for n in names:
        if n in _CALIBRATED:
            return _CALIBRATED[n], True
        if n in speed_fitted.CONSTANTS:
            return speed_fitted.CONSTANTS[n], False
    return None


@dataclass(frozen=True, slots=True)
class _K:
    """Resolved constants of one engine x backend x device (floats) and whether any is calibrated."""

    eta: float
    kv_factor: float
    step_us: float
    layer_us: float
    moe_factor: float
    eta_v: float
    draft_us: float
    seq_us: float
    eta_c: float
    bf16_eta: float
    bf16_eta_c: float
    ubatch: int
    calibrated: bool
    prefill_layer_us: float  # a prefill ubatch's per-layer cost (llama.cpp CUDA: eager; else layer_us)


_RESOLVED: dict[tuple[int, str, Device | None], tuple[SpeedConstants, _K]] = {}


def _resolve(sc: SpeedConstants, backend: str, device: Device | None) -> _K:
    """:func:`_resolve_uncached`, memoised per engine constants x backend x device (calibration clears it)."""
    key = (id(sc), backend, device)
    hit = _RESOLVED.get(key)
    if hit is None or hit[0] is not sc:
        hit = _RESOLVED[key] = (sc, _resolve_uncached(sc, backend, device))
    return hit[1]


def _resolve_uncached(sc: SpeedConstants, backend: str, device: Device | None) -> _K:
    fams = sc.fitted
    cal = False

    def c(prefix: str, default: float, *, fam: bool = True) -> float:
        nonlocal cal
        got = _lookup(prefix, fams if fam else (), backend, device)
        if got is None:
            return default
        cal = cal or got[1]
        return got[0]

    hw = hw_class(device)
    eta_hw = c(f"eta_hw.{hw}", 1.0, fam=False) if device is not None else 1.0
    eta_k = c("eta_k", 0.8) if device is not None else 1.0
    if not fams:  # an engine with no measurements: its own hand-set fixed costs
        layer_us = float(sc.layer_us.get(backend, sc.default_layer_us))
        step_us, moe = float(sc.step_us), 1.0
        eta_c = sc.compute_efficiency.get(backend, sc.default_compute_efficiency)
    else:
        layer_us = c("layer_us", float(sc.layer_us.get(backend, sc.default_layer_us)))
        step_us = c("step_us", float(sc.step_us))
        moe = c("moe_layer_factor", 1.0)
        eta_c = c("eta_c", sc.compute_efficiency.get(backend, sc.default_compute_efficiency))
    return _K(
        eta=eta_hw * eta_k, kv_factor=c("kv_factor", 1.0), step_us=step_us, layer_us=layer_us,
        moe_factor=moe, eta_v=c("eta_v", 0.1), draft_us=c("draft_us", 300.0), seq_us=c("seq_us", 30.0),
        eta_c=eta_c, bf16_eta=c("bf16_eta", 1.0), bf16_eta_c=c("bf16_eta_c", 1.0), ubatch=sc.ubatch,
        calibrated=cal, prefill_layer_us=c("prefill_layer_us", layer_us),
    )  # fmt: skip


def constants_for(engine: str | Engine, backend: str, device: Device | None) -> dict[str, float]:
    """The constants the model uses for ``engine`` on ``backend`` / ``device`` (calibration's start)."""
    k = _resolve(_speed(engine), backend, device)
    eta_hw = _lookup(f"eta_hw.{hw_class(device)}", (), backend, device) if device is not None else None
    return {
        "eta": k.eta, "eta_k": k.eta / (eta_hw[0] if eta_hw else 1.0), "step_us": k.step_us,
        "layer_us": k.layer_us, "moe_factor": k.moe_factor, "eta_c": k.eta_c,
        "prefill_layer_us": k.prefill_layer_us, "gemm_m_half": speed_fitted.CONSTANTS["gemm_m_half"],
    }  # fmt: skip


def _speed(engine: str | Engine) -> SpeedConstants:
    return (engine if isinstance(engine, Engine) else get(engine)).speed


def _link(device: Device) -> str:
    return "nvlink" if (device.interconnect or "").lower().startswith("nvlink") else "pcie"


def _fs(gbps: float) -> int:
    """Femtoseconds to stream one byte at ``gbps`` GB/s."""
    return round(FS_PER_S / (gbps * 1e9))


def host_gbps(machine: Machine) -> float:
    """Sustained host RAM rate for CPU matmuls: min(η_host x peak, cores x host_core_gbps); cores are the
    machine's physical cores, else half its threads (an SMT guess), else not capped."""
    host = machine.host or DEFAULT_HOST
    k = speed_fitted.CONSTANTS
    cores = machine.cpu_cores or (max(1, machine.cpu_threads // 2) if machine.cpu_threads else None)
    bw = k["eta_host"] * host.bandwidth_gbps
    return min(bw, k["host_core_gbps"] * cores) if cores else bw


@functools.lru_cache(maxsize=1024)
def rate_constants(
    *, machine: Machine, engine: str | Engine, tp: int = 1, backend: str = "cuda"
) -> dict[str, int] | None:
    """The model-independent integer inputs of :func:`decode_speed` on ``machine`` (``k:*`` in the
    calculator); None when the device's bandwidth is unknown."""
    if tp < 1:
        raise ValueError(f"tp must be >= 1, got {tp}")
    if machine.devices and tp > machine.n_devices:
        raise ValueError(f"tp={tp} needs {tp} GPUs; machine {machine.name!r} has {machine.n_devices}")
    device = machine.devices[0] if machine.devices else None
    sc = _speed(engine)
    k = _resolve(sc, backend, device)
    cpu_fs = _fs(host_gbps(machine))
    # attention FLOPs at depth, fs per 1000 at the fitted share of the FP16 peak (TP splits heads); aq_:
    # llama.cpp CUDA's FlashAttention vector kernel over a quantized KV cache (speed_kvq); mm_tokens, g_fs1k:
    # above the engine's mat_vec_max_tokens tokens a step its matrix kernels, at the prefill GEMM rate
    a_fs1k = aq_fs1k = mm_tokens = g_fs1k = ar_ns = 0
    v_fs1k, vtf = 0, round(1e6 * speed_fitted.CONSTANTS["verify_token_frac"])  # no FP16 figure
    if device is None:
        gpu_fs = kv_fs = bf16_fs = cpu_fs
    else:
        if device.bandwidth_gbps <= 0:
            return None
        gpu_fs = _fs(k.eta * device.bandwidth_gbps * tp)
        # BF16 weights stream at their own rate where the fit has a factor (llama.cpp ROCm: kyuz0; llama.cpp
        # Vulkan: kyuz0, jingkaihe, gisenberg); the formula weighs it by the share of BF16 bytes (bf16_ppm)
        bf16_fs = _fs(k.eta * k.bf16_eta * device.bandwidth_gbps * tp)
        kv_fs = round(gpu_fs * k.kv_factor)
        if device.fp16_tflops > 0:
            v_fs1k, vtf = round(2e3 * FS_PER_S / (k.eta_v * device.fp16_tflops * 1e12 * tp)), 0
            a_fs1k = aq_fs1k = round(
                1e3 * FS_PER_S / (speed_fitted.CONSTANTS["attn_decode"] * device.fp16_tflops * 1e12 * tp)
            )
            vec = _lookup("attn_decode_kvq", sc.fitted, backend, device)
            if vec is not None and vec_query_cols("q4_0", device.compute_capability):
                aq_fs1k = round(1e3 * FS_PER_S / (vec[0] * device.fp16_tflops * 1e12 * tp))
            mm_tokens = sc.mat_vec_max_tokens
            g_fs1k = round(1e3 * FS_PER_S / (k.eta_c * device.fp16_tflops * 1e12 * tp))
        ar_ns = round(2 * (tp - 1) * speed_fitted.CONSTANTS[f"allreduce_us.{_link(device)}"] * 1e3)
    return {
        "gpu_fs": gpu_fs, "kv_fs": kv_fs, "cpu_fs": cpu_fs, "step_ns": round(k.step_us * 1e3),
        "layer_ns": round(k.layer_us * 1e3), "moe_layer_ns": round(k.layer_us * k.moe_factor * 1e3),
        "ar_ns": ar_ns, "off_ns": round(speed_fitted.CONSTANTS["offload_layer_us"] * 1e3), "v_fs1k": v_fs1k,
        "vtf_ppm": vtf, "seq_ns": round(k.seq_us * 1e3), "draft_ns": round(k.draft_us * 1e3),
        "bf16_fs": bf16_fs, "a_fs1k": a_fs1k, "aq_fs1k": aq_fs1k, "mm_tokens": mm_tokens, "g_fs1k": g_fs1k,
        "gh_milli": round(1e3 * speed_fitted.CONSTANTS["gemm_m_half"]),
    }  # fmt: skip


# --------------------------------------------------------------------------------------------------
# the model's shape (from its parameter counts)


@dataclass(frozen=True, slots=True)
class Shape:
    """What the speed model needs of a model beyond the bytes: per-token parameter counts."""

    n_layers: int
    moe: bool
    read_params: int  # text parameters one token reads (routed experts at k/E, output head, no embedding)
    expert_ppm: int  # routed-expert share of those, parts per million
    matmul_params: int  # parameters one token multiplies (no embedding, no output head)
    head_params: int
    mtp_params: int  # one MTP draft step: the MTP block (routed at k/E) + the output head again
    u_milli: tuple[int, ...]  # 1000 x U(T) for T = 0..U_TABLE (MoE; dense: T)
    n_attn: int
    attn_width: int  # q heads x head dim
    hidden: int


def _u(n_experts: int, k: int, tokens: int) -> float:
    if not n_experts or not k:
        return float(tokens)
    p = k / n_experts
    return n_experts * (1 - (1 - p) ** tokens) / k


@functools.lru_cache(maxsize=64)
def _shape(spec: ModelSpec) -> Shape:
    # precompiled for the catalog's configs (qwenfit.core.formats.compiled): no inventory to build
    key = (spec.family, repr(spec.text), str(spec.mtp_layers))
    stored = MISSING if spec.checkpoint is not None else lookup("*", "shape", key)
    if stored is not MISSING:
        return Shape(**{**stored, "u_milli": tuple(stored["u_milli"])})
    shape = _shape_computed(spec)
    if spec.checkpoint is None:
        remember("*", "shape", key, {**dataclasses.asdict(shape), "u_milli": list(shape.u_milli)})
    return shape


def _shape_computed(spec: ModelSpec) -> Shape:
    t = spec.text
    n_e, k = t.num_experts, t.num_experts_per_tok
    head_roles = ("embed",) if t.tie_word_embeddings else ("lm_head",)
    matmul = head = routed = mtp = 0.0
    for e in spec.inventory.tensors:
        n = math.prod(e.shape)
        routed_share = k / n_e if e.role in ROUTED_EXPERT_ROLES and n_e else 1.0
        if e.component == "text":
            if e.role in head_roles:
                head += n
            elif e.role != "embed":
                matmul += n * routed_share
                if e.role in ROUTED_EXPERT_ROLES:
                    routed += n * routed_share
        elif e.component == "mtp":
            mtp += n * routed_share
    read = matmul + head
    return Shape(
        n_layers=t.num_hidden_layers, moe=bool(n_e), read_params=round(read),
        expert_ppm=round(1e6 * routed / read) if read else 0, matmul_params=round(matmul),
        head_params=round(head), mtp_params=round(mtp + head) if spec.mtp_layers else 0,
        u_milli=tuple(round(1000 * _u(n_e, k, i)) for i in range(U_TABLE + 1)),
        n_attn=t.n_full_attention, attn_width=t.num_attention_heads * t.head_dim, hidden=t.hidden_size,
    )  # fmt: skip


def shape_of(spec: ModelSpec) -> Shape:
    return _shape(spec)


def bf16_ppm(weights: WeightMap) -> int:
    """Share (parts per million) of the decoder's weight bytes (text tensors, no embedding) stored as
    BF16: the bytes :func:`decode_speed` streams at the BF16 rate (``k:bf16_fs``)."""
    total = bf16 = 0
    for e in weights.tensors:
        if e.component != "text" or e.role == "embed":
            continue
        total += e.bytes
        if e.type.upper() == "BF16":
            bf16 += e.bytes
    return bf16 * 10**6 // total if total else 0


def with_bf16(reads: Mapping[str, Any], weights: WeightMap) -> dict[str, Any]:
    """An engine's ``read_inputs`` plus ``r:bf16_ppm`` (:func:`bf16_ppm`), the speed formula's input."""
    return {**reads, "r:bf16_ppm": bf16_ppm(weights)}


# --------------------------------------------------------------------------------------------------
# decode


def decode_bytes(
    terms: Sequence[Term],
    sequences: Num,
    read_gpu: Num,
    read_cpu: Num,
    *,
    tp: int = 1,
    depth: Num | None = None,
    context: Num | None = None,
) -> tuple[Num, Num, Num, Num]:
    """(GPU weight bytes, CPU weight bytes, GPU cache bytes, CPU cache bytes) one decoded token of one
    sequence streams: the weights it reads, its share of the KV cache (``kv_cache`` bytes /
    sequences, every rank's under TP; with ``depth`` only the ``depth`` tokens already in a
    ``context``-token cache) and twice its recurrent state (read and written back). Cache bytes are
    KV + 2 x state; the KV part is returned separately by :func:`cache_parts`."""
    kv_g, kv_c, st_g, st_c = cache_parts(terms, sequences, tp=tp, depth=depth, context=context)
    return read_gpu, read_cpu, kv_g + st_g, kv_c + st_c


def cache_parts(
    terms: Sequence[Term],
    sequences: Num,
    *,
    tp: int = 1,
    depth: Num | None = None,
    context: Num | None = None,
) -> tuple[Num, Num, Num, Num]:
    """(KV on the GPU side, KV on the CPU, 2 x state on the GPU side, on the CPU) of one sequence."""
    out: list[Num] = [0, 0, 0, 0]
    for term in terms:
        if term.name not in ("kv_cache", "recurrent_state"):
            continue
        share = term.bytes * tp // sequences * (2 if term.name == "recurrent_state" else 1)
        if term.name == "kv_cache" and depth is not None and context is not None:
            share = share * smin(depth, context) // context
        i = (0 if term.name == "kv_cache" else 2) + (1 if term.device == "cpu" else 0)
        out[i] = out[i] + share
    return out[0], out[1], out[2], out[3]


def _u_of(shape: Shape, tokens: Num) -> Num:
    """1000 x U(tokens) (an int, or a table look-up in a traced formula)."""
    if isinstance(tokens, Expr):
        return at(list(shape.u_milli), smin(tokens, U_TABLE))
    t = as_int(tokens)
    return shape.u_milli[t] if t <= U_TABLE else shape.u_milli[U_TABLE]


def decode_speed(
    shape: Shape, k: Mapping[str, Num], *, w_gpu: Num, w_cpu: Num, kv_gpu: Num, kv_cpu: Num, st_gpu: Num,
    st_cpu: Num, n_offloaded: Num = 0, sequences: Num = 1, drafts: int = 0,
    tokens_per_cycle_milli: int = 1000, bf16_ppm: Num = 0, depth: Num = 0, verify_fs: int = 0,
    kvq_cols: int = 0,
) -> float | Expr:  # fmt: skip
    """Decode tokens/s of one of ``sequences`` sequences decoding together (module docstring), in
    integers until the one division; with :class:`Expr` inputs the calculator's formula tree.
    ``w_*``: main-model weight bytes one token reads (no MTP block); ``kv_*``/``st_*``: one
    sequence's KV at depth and 2 x its recurrent state; ``bf16_ppm``: the share of the weight bytes
    stored as BF16, read at ``k["bf16_fs"]`` (:func:`bf16_ppm`); ``depth``: tokens already in the context
    (their attention FLOPs, module docstring, at ``k["a_fs1k"]`` fs per 1000); ``verify_fs``: fs per cached
    token of a cycle whose verify attention runs unsplit (:func:`unsplit_verify_fs`: replaces those FLOPs);
    ``kvq_cols``: steps of up to that many tokens per sequence attend at ``k["aq_fs1k"]`` (speed_kvq)."""
    b = sequences
    tokens = b * (1 + drafts)
    u = _u_of(shape, tokens)
    x_all = (w_gpu + w_cpu) * shape.expert_ppm // 10**6  # routed-expert bytes of the reads
    x_cpu = smin(w_cpu, x_all)  # offloaded tensors are experts first
    x_gpu = smax(0, x_all - x_cpu)
    gfs, cfs = k["gpu_fs"], k["cpu_fs"]

    def wfs() -> Num:  # GPU-side weight rate, BF16 bytes at theirs (a fresh node per use: none shared)
        if isinstance(bf16_ppm, int) and bf16_ppm == 0:
            return gfs
        return (gfs * (10**6 - bf16_ppm) + k["bf16_fs"] * bf16_ppm) // 10**6

    def w_mem() -> Num:  # the GPU-side weight read (a fresh node per use)
        return (w_gpu - x_gpu) * wfs() + x_gpu * wfs() * u // 1000

    mem = (
        w_mem()
        + (w_cpu - x_cpu) * cfs + x_cpu * cfs * u // 1000
        + b * (kv_gpu * k["kv_fs"] + st_gpu * gfs + (kv_cpu + st_cpu) * cfs)
    )  # fmt: skip
    extra = tokens - 1
    # each extra token multiplies the weights again: at the small-batch GEMM rate, or (no FP16 figure)
    # a fraction of the memory time; mem appears once so that no shared node holds k: or depth
    compute = extra * shape.matmul_params * k["v_fs1k"] // 1000
    # above k:mm_tokens tokens a step (0: never) the matrix kernels' GEMMs, where longer than the weight read
    matrix = smin(1, k["mm_tokens"]) * lt(k["mm_tokens"], tokens)  # one use: no shared node holds k:
    routed = shape.expert_ppm * shape.read_params // 10**6 if shape.moe else 0
    gemm = decode_gemm_fs(shape.matmul_params, routed, tokens, u, k["g_fs1k"], k["gh_milli"])
    compute = where(matrix, smax(0, gemm - w_mem()), compute)
    if not verify_fs:
        a_fs1k = k["aq_fs1k"] if 1 + drafts <= kvq_cols else k["a_fs1k"]
        compute = compute + tokens * 4 * shape.attn_width * shape.n_attn * depth * a_fs1k // 1000
    layer = k["moe_layer_ns"] if shape.moe else k["layer_ns"]
    fixed_ns = (
        k["step_ns"]
        + shape.n_layers * (layer + k["ar_ns"])
        + n_offloaded * k["off_ns"]
        + (b - 1) * k["seq_ns"]
    )
    t = mem * (10**6 + extra * k["vtf_ppm"]) // 10**6 + compute + fixed_ns * NS_FS
    if drafts:
        mtp_bytes = shape.mtp_params * (w_gpu + w_cpu) // max(1, shape.read_params)
        draft = mtp_bytes * wfs() + k["draft_ns"] * NS_FS  # the draft's experts: one token's (k of E)
        # each draft step also attends over its own layer's KV at depth (one of the n_attn layers' bytes)
        draft = draft + b * (kv_gpu * k["kv_fs"] + kv_cpu * cfs) // max(1, shape.n_attn)
        attn_fs = b * 4 * shape.attn_width * depth * k["aq_fs1k" if kvq_cols else "a_fs1k"] // 1000
        t = t + drafts * draft + (drafts - (1 if verify_fs else 0)) * attn_fs + verify_fs * depth
    return FS_PER_S * tokens_per_cycle_milli / (1000 * t)


# --------------------------------------------------------------------------------------------------
# prefill


def _prefill(
    shape: Shape, k: _K, machine: Machine, tp: int, quant: str, resident_gpu: int, resident_cpu: int,
    fixed_s: float, tokens: int = PREFILL_TOKENS, depth: int = 0, ubatch: int = 512,
) -> float | None:  # fmt: skip
    if not machine.devices or tokens <= 0:
        return None
    device = machine.devices[0]
    if device.fp16_tflops <= 0 or device.bandwidth_gbps <= 0:
        return None
    c = speed_fitted.CONSTANTS
    bf16 = quant.lower() == "bf16"
    flops = k.eta_c * (k.bf16_eta_c if bf16 else 1.0) * device.fp16_tflops * 1e12 * tp
    bw = k.eta * (k.bf16_eta if bf16 else 1.0) * device.bandwidth_gbps * 1e9 * tp
    w_pass = resident_gpu / bw
    pcie = device.interconnect_gbps if device.interconnect_gbps and _link(device) == "pcie" else None
    copy = resident_cpu / (c["eta_pcie"] * (pcie or DEFAULT_PCIE_GBPS) * 1e9) if resident_cpu else 0.0
    total, left = 0.0, tokens
    while left > 0:
        n = min(max(1, ubatch), left)
        total += max(prefill_gemm_seconds(shape, n, flops), w_pass) + fixed_s + copy
        left -= n
    total += 2 * shape.head_params / (flops * gemm_efficiency(1.0))
    attn = 4 * shape.attn_width * shape.n_attn * (tokens * depth + tokens * tokens / 2)
    total += attn / (flops * c["attn_prefill"])
    if tp > 1 and device.interconnect_gbps:
        moved = 2 * shape.n_layers * tokens * shape.hidden * 2 * 2 * (tp - 1) / tp
        total += moved / (c["eta_link"] * device.interconnect_gbps * 1e9)
    return tokens / total


# --------------------------------------------------------------------------------------------------
# the planner's entry point


def speed_of(
    spec: ModelSpec, e: Estimate, machine: Machine, engine: Engine, p: Placement, backend: str,
    reads: tuple[Num, Num, Num], *, depth: int = DEFAULT_DEPTH, bf16: int = 0,
) -> tuple[float | None, float | None, str]:  # fmt: skip
    """Decode and prefill (``PREFILL_TOKENS`` more prompt tokens at the same depth) tokens/s of one
    sequence for estimate ``e`` on ``machine`` (estimated, as
    :class:`Rate` with their bands): :func:`decode_speed` (the formula the docs calculator evaluates)
    with ``depth`` tokens already in the context and the estimate's sequences decoding together;
    with ``mtp`` in its settings, the engine's draft count (:meth:`Engine.mtp_drafts`; the reads then
    include the MTP block) at the published acceptance. ``reads``: the engine's ``decode_reads``;
    ``bf16``: the weights' BF16 share (:func:`bf16_ppm`)."""
    read_gpu, read_cpu, n_off = reads
    shape = _shape(spec)
    seqs = as_int(e.settings.get("sequences", 1))
    context = as_int(e.settings.get("context", depth)) or depth
    view = dataclasses.replace(machine, devices=()) if p.kind == "cpu" else machine
    backend = "cpu" if p.kind == "cpu" else backend
    quant = str(getattr(e, "quant", "") or "")
    k = rate_constants(machine=view, engine=engine, tp=p.tp, backend=backend)
    if k is None:
        return None, None, "device memory bandwidth unknown"
    kv_g, kv_c, st_g, st_c = cache_parts(e.terms, seqs, tp=p.tp, depth=depth, context=context)
    w_gpu, w_cpu = as_int(read_gpu), as_int(read_cpu)
    if not view.devices:
        w_gpu, w_cpu = 0, w_gpu + w_cpu
    drafts = engine.mtp_drafts(e.settings) if e.settings.get("mtp") and shape.mtp_params else 0
    if drafts:  # the reads include the MTP block + a second head read: the main step reads without them
        total = w_gpu + w_cpu
        main = total * shape.read_params // (shape.read_params + shape.mtp_params)
        w_gpu = max(0, w_gpu - (total - main))
    e_milli = round(1000 * mtp_tokens_per_cycle(drafts)) if drafts else 1000
    device = view.devices[0] if view.devices else None
    gpu_sm = device.compute_capability if device is not None else None
    flops = engine.verify_flops(e.settings, device, spec) * bool(drafts)
    decode = decode_speed(
        shape, k, w_gpu=w_gpu, w_cpu=w_cpu, kv_gpu=as_int(kv_g), kv_cpu=as_int(kv_c), st_gpu=as_int(st_g),
        st_cpu=as_int(st_c), n_offloaded=as_int(n_off), sequences=seqs, drafts=drafts,
        tokens_per_cycle_milli=e_milli, bf16_ppm=bf16, depth=min(depth, context),
        verify_fs=unsplit_verify_fs(flops), kvq_cols=vec_query_cols(e.settings.get("kv_cache"), gpu_sm),
    )  # fmt: skip
    assert isinstance(decode, float)
    kk = _resolve(_speed(engine), backend, device)
    ub = e.settings.get("ubatch")
    cat = category_of(view, p, seqs, as_int(n_off), shape)
    layer_ns = kk.prefill_layer_us * (kk.moe_factor if shape.moe else 1.0) * 1e3  # a prompt ubatch's layers
    fixed_s = (k["step_ns"] + shape.n_layers * (layer_ns + k["ar_ns"]) + as_int(n_off) * k["off_ns"]) * 1e-9
    resident_cpu = e.term("weights", "cpu")
    ubatch = ub if isinstance(ub, int) and ub > 0 else kk.ubatch
    prefill = _prefill(shape, kk, view, p.tp, quant, e.term("weights") - resident_cpu, resident_cpu, fixed_s,
                       depth=min(depth, context), ubatch=ubatch)  # fmt: skip
    label = "calibrated" if kk.calibrated else "estimated"
    detail = (f"decode at {min(depth, context):,} tokens deep {1e3 / decode:.2f} ms/token: "
              f"{(w_gpu + as_int(kv_g) + as_int(st_g)) / 1e9:.3f} GB read on the GPU side")  # fmt: skip
    if w_cpu:
        detail += f", {(w_cpu + as_int(kv_c) + as_int(st_c)) / 1e9:.3f} GB from host RAM"
    if seqs > 1:
        detail += f"; {seqs} sequences decode together ({seqs * decode:.0f} tok/s in all)"
    if drafts:
        detail += (f"; MTP {drafts} draft(s), {e_milli / 1000:g} tokens per cycle (published acceptance, "
                   "median; by text: ~40-50 % of drafts accepted for prose, ~80 % for code)")  # fmt: skip
        detail += "; verify attention unsplit, an SM per head (vLLM FA2; FP8 KV: FlashInfer)" * bool(flops)
    detail += f"; {label}, band of {cat!r} out of sample"
    return (
        rate_of(decode, "decode", cat, kk.calibrated),
        rate_of(prefill, "prefill", cat, kk.calibrated),
        detail,
    )
