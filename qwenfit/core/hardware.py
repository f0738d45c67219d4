"""Hardware as the planner sees it: devices (GPUs, unified-memory SoCs), host RAM, and machines.

Records come from ``data/hardware.yaml`` (validated by :mod:`qwenfit.loaders.hardware`) or from the
local machine (:mod:`qwenfit.loaders.detect`), or are built from a user's numbers (``vram_gb=``).
Memory is in bytes as the driver reports it (``nvidia-smi`` total, ``recommendedMaxWorkingSetSize``
is *not* stored here: Apple budgets come from :mod:`qwenfit.core.apple`). Bandwidths are decimal GB/s,
compute is dense TFLOPS (no sparsity).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Device", "HostMemory", "Machine"]

VENDORS = ("nvidia", "amd", "apple", "intel")
KINDS = ("gpu", "unified")  # unified: the GPU shares system RAM (Apple, Strix Halo, DGX Spark, Jetson)
BACKENDS = ("cuda", "rocm", "metal", "vulkan", "sycl", "cpu")


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    """One accelerator model (one GPU, or one unified-memory SoC with one memory option)."""

    id: str  # catalog key, lower-case kebab: "rtx-4090", "h100-sxm", "m4-max-128"
    name: str  # marketing / driver name: "NVIDIA GeForce RTX 4090"
    vendor: str  # one of VENDORS
    kind: str  # one of KINDS
    memory_bytes: int  # total device memory (unified: total system RAM of that configuration)
    memory_exact: bool  # True when memory_bytes is what the driver reports, False when nominal GB/GiB
    bandwidth_gbps: float  # peak memory bandwidth, GB/s
    fp16_tflops: float  # dense FP16/BF16 tensor throughput
    fp8_tflops: float | None = None  # dense FP8 (None: not supported in hardware)
    fp4_tflops: float | None = None  # dense FP4 (None: not supported in hardware)
    interconnect: str | None = None  # "nvlink4", "pcie4-x16", "infinity-fabric", ...
    interconnect_gbps: float | None = None  # per-direction GB/s of that link
    backends: tuple[str, ...] = ()  # engines' backends this device runs: cuda, rocm, metal, vulkan, sycl
    compute_capability: str | None = None  # NVIDIA SM version "8.9"; gfx target for AMD "gfx1100"
    tdp_w: int | None = None
    aliases: tuple[str, ...] = ()
    source: str = ""  # datasheet URL or other citation

    @property
    def unified(self) -> bool:
        return self.kind == "unified"


@dataclass(frozen=True, slots=True, kw_only=True)
class HostMemory:
    """A host RAM bandwidth profile for CPU offload (e.g. dual-channel DDR5-5600)."""

    id: str  # "ddr5-5600-2ch"
    name: str
    bandwidth_gbps: float  # theoretical peak, GB/s (channels x 8 bytes x MT/s)
    effective_gbps: float  # what a memory-bound decode reaches (measured STREAM-like fraction)
    source: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Machine:
    """What a plan runs on: ``n`` identical devices (or none: CPU only) plus host RAM.

    ``devices`` is empty for a CPU-only machine. Unified-memory machines have one device whose
    ``memory_bytes`` is the system RAM; ``ram_bytes`` is then the same memory and is not added again.
    """

    name: str  # "2x rtx-3090", "m4-max-128", "custom 24 GB + 64 GB RAM", "detected: ..."
    devices: tuple[Device, ...] = ()
    ram_bytes: int | None = None  # host RAM (None: unknown, not judged)
    host: HostMemory | None = None  # host RAM bandwidth profile (None: a default profile is assumed)
    cpu_threads: int | None = None
    notes: tuple[str, ...] = field(default=())  # what detection found, what was assumed

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    @property
    def unified(self) -> bool:
        return bool(self.devices) and self.devices[0].unified

    @property
    def vram_bytes(self) -> int:
        """Device memory summed over devices (0 for CPU only)."""
        return sum(d.memory_bytes for d in self.devices)
