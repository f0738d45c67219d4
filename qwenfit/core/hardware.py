"""Hardware as the planner sees it: devices (GPUs, unified-memory SoCs), host RAM, and machines.

Records come from ``data/hardware.yaml`` (validated by :mod:`qwenfit.loaders.hardware`) or from the
local machine (:mod:`qwenfit.loaders.detect`), or are built from a user's numbers (``vram_gb=``).
Memory is in bytes as the driver reports it (``nvidia-smi`` total; Metal's
``recommendedMaxWorkingSetSize`` is derived here, :func:`working_set_bytes`). Bandwidths are decimal
GB/s, compute is dense TFLOPS (no sparsity). :class:`Target` is what an estimate is judged against,
resolved from a machine or from plain numbers by :func:`target_for`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qwenfit.errors import SettingError

__all__ = [
    "BACKENDS",
    "Device",
    "HostMemory",
    "Machine",
    "Target",
    "default_ram_reserve",
    "target_for",
    "working_set_bytes",
]

VENDORS = ("nvidia", "amd", "apple", "intel")
KINDS = ("gpu", "unified")  # unified: the GPU shares system RAM (Apple, Strix Halo, DGX Spark, Jetson)
BACKENDS = ("cuda", "rocm", "metal", "vulkan", "sycl", "cpu")
GIB = 1 << 30


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
    runtime_total_bytes: int | None = None  # what cudaMemGetInfo / torch reports as total (cited)
    runtime_total_source: str = ""

    @property
    def unified(self) -> bool:
        return self.kind == "unified"

    @property
    def usable_bytes(self) -> int:
        """The device total an engine budgets against: the runtime's figure where one was published
        (``runtime_total_bytes``); NVIDIA GPUs otherwise ``memory_bytes`` minus 512 MiB, the median
        driver reservation of the GPUs with a published figure (266-870 MiB: an estimate); other devices
        ``memory_bytes``."""
        if self.runtime_total_bytes is not None:
            return self.runtime_total_bytes
        if self.vendor == "nvidia" and not self.unified:
            return self.memory_bytes - NVIDIA_DRIVER_RESERVE
        return self.memory_bytes

    @property
    def usable_note(self) -> str:
        if self.runtime_total_source == "as given":
            return ""
        if self.runtime_total_bytes is not None:
            return (f"{self.id}: {self.runtime_total_bytes / GIB_F:.2f} GiB as its runtime reports it "
                    f"({self.runtime_total_source})")  # fmt: skip
        if self.vendor == "nvidia" and not self.unified:
            return (f"{self.id}: {self.usable_bytes / GIB_F:.2f} GiB usable, estimated "
                    "(memory minus the 512 MiB the driver typically keeps)")  # fmt: skip
        return ""


# what cudaMemGetInfo's total lacks of nvidia-smi's on the GPUs with both figures published: 266 (T4) ..
# 870 (A100 80GB) MiB, median 515 MiB (data/hardware.yaml runtime_total_bytes). An estimate.
NVIDIA_DRIVER_RESERVE = 512 << 20
GIB_F = float(1 << 30)


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
    cpu_cores: int | None = None  # physical cores (None: unknown; speed.host_gbps then halves the threads)
    notes: tuple[str, ...] = field(default=())  # what detection found, what was assumed
    # host RAM kept for the OS, the desktop and the page cache (None: :func:`default_ram_reserve`, or
    # what was in use when detected); the planner budgets ram_bytes minus it
    ram_reserve_bytes: int | None = None
    # memory kept on each GPU (a desktop's display GPU; what was in use when detected): one per device
    gpu_reserve_bytes: tuple[int, ...] = ()
    wired_limit_mb: int | None = None  # a Mac's raised ``iogpu.wired_limit_mb`` (None: macOS's default)

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


# --------------------------------------------------------------------------------------------------
# Apple Silicon: how much of the unified memory the GPU may use


def working_set_bytes(
    ram_bytes: int, *, wired_limit_mb: int | None = None, recent_macos: bool = True
) -> tuple[int, bool]:
    """(GPU budget in bytes, exact) of a Mac with ``ram_bytes``: Metal's
    ``recommendedMaxWorkingSetSize`` (what llama.cpp reports as the Metal device's free memory and
    mlx-lm wires for generation) from logged values — 2/3 of RAM up to 32 GB on older macOS, 0.78 on
    recent macOS for 32–48 GB, 0.75 for 36–128 GB, RAM − 48 GiB at 512 GB — or a user's
    ``sysctl iogpu.wired_limit_mb`` (MiB; then exact)."""
    if wired_limit_mb is not None:
        if wired_limit_mb <= 0:
            raise ValueError(f"iogpu.wired_limit_mb must be positive, got {wired_limit_mb}")
        return min(wired_limit_mb * (1 << 20), ram_bytes), True
    gib = ram_bytes / GIB
    if gib >= 256:
        return ram_bytes - 48 * GIB, False  # 512 GB M3 Ultra logs exactly RAM - 48 GiB
    if gib <= 48 and recent_macos and gib > 24:
        return int(ram_bytes * 0.78), False
    if gib <= 32:
        return ram_bytes * 2 // 3, False
    return ram_bytes * 3 // 4, False


# --------------------------------------------------------------------------------------------------
# memory kept for the system

# Host RAM the planner leaves to the OS, the desktop and the page cache: 10 % of RAM, at least 4 GB and at
# most 16 GB (an estimate). Evidence: a published Linux /proc/meminfo of a 64 GB machine had 5.6 GB in use
# (MemTotal 65,759,288 kB, MemAvailable 60,233,968 kB: tests/fixtures/detect/linux-64g, 8.4 %); Metal's
# recommended working set leaves 25 % of a Mac's RAM outside the GPU (working_set_bytes); Windows 11 idles at
# 2-4 GB on 8 GB machines and 8-10 GB on 32 GB ones (windowsforum.com/threads/339807). Detection uses the
# memory actually in use instead; ram_reserve_gb= / --ram-reserve set it.
RAM_RESERVE_DIVISOR = 10  # 10 %, in integers (the docs calculator computes the same in BigInt)
RAM_RESERVE_MIN = 4_000_000_000
RAM_RESERVE_MAX = 16_000_000_000


def default_ram_reserve(ram_bytes: int) -> int:
    """Host RAM kept for the system on a machine with ``ram_bytes`` (see RAM_RESERVE_DIVISOR); never
    more than half the RAM (a small machine still gets a plan)."""
    reserve = min(max(ram_bytes // RAM_RESERVE_DIVISOR, RAM_RESERVE_MIN), RAM_RESERVE_MAX)
    return min(reserve, ram_bytes // 2)


# --------------------------------------------------------------------------------------------------
# the budget an estimate is judged against


@dataclass(frozen=True, slots=True)
class Target:
    """The memory an estimate is judged against."""

    vram_bytes: int | None  # one GPU's usable memory (unified: the GPU's share, e.g. Metal's working set)
    n_gpus: int
    ram_bytes: int | None
    unified: bool
    backend: str | None  # the device's first backend, when known
    gpu_name: str
    notes: tuple[str, ...]
    machine: Machine | None = None
    ram_reserve_bytes: int = 0  # kept for the system: ``ram_bytes`` is already net of it
    gpu_bytes: tuple[int, ...] = ()  # each GPU's usable memory when they differ (mixed GPUs)

    @property
    def gpu_sm(self) -> str | None:
        """The GPU's compute capability, when the hardware profile says it."""
        return self.machine.devices[0].compute_capability if self.machine and self.machine.devices else None


def _apple_budget(ram_bytes: int, wired_limit_mb: int | None) -> tuple[int, bool]:
    try:
        return working_set_bytes(ram_bytes, wired_limit_mb=wired_limit_mb)
    except ValueError as exc:
        raise SettingError(str(exc)) from None


def _apple_note(gpu_bytes: int, ram_bytes: int, exact: bool) -> str:
    how = "(iogpu.wired_limit_mb)" if exact else "(Metal's recommended working set, estimated)"
    return f"unified memory: the GPU may use {gpu_bytes / 1e9:.2f} GB of {ram_bytes / 1e9:g} GB {how}"


def _kept(ram: int | None, reserve: int | None, notes: list[str]) -> tuple[int | None, int]:
    """(RAM budget, reserve) of ``ram`` bytes with ``reserve`` kept (None: the default rule)."""
    if ram is None:
        return None, 0
    kept = default_ram_reserve(ram) if reserve is None else reserve
    if kept >= ram:
        raise SettingError(f"the RAM reserve ({kept / 1e9:.2f} GB) is all of the {ram / 1e9:.2f} GB of RAM")
    if kept:
        how = "default: 10 % of RAM, 4-16 GB" if reserve is None else "as given"
        notes.append(f"{kept / 1e9:.2f} GB of the {ram / 1e9:.2f} GB of RAM kept for the system ({how})")
    return ram - kept, kept


def target_for(
    machine: Machine | None,
    *,
    vram_bytes: int | None = None,
    ram_bytes: int | None = None,
    unified_default: bool = False,
    wired_limit_mb: int | None = None,
    ram_reserve_bytes: int | None = None,
) -> Target:
    """The budget of ``machine`` (with ``ram_bytes`` overriding its RAM), or, with no machine, of one
    GPU of ``vram_bytes`` and ``ram_bytes`` of RAM. ``unified_default``: plain numbers describe a Mac
    (MLX) — RAM alone then means unified memory with Metal's working set as the GPU's share.

    Host RAM is budgeted net of what is kept for the system: ``ram_reserve_bytes``, else the machine's
    own ``ram_reserve_bytes`` (detection: what was in use), else :func:`default_ram_reserve`. Each GPU
    is budgeted net of its ``gpu_reserve_bytes``; GPUs of different sizes each get their own budget
    (``Target.gpu_bytes``; ``vram_bytes`` is then the smallest)."""
    notes: list[str] = []
    if machine is None:
        vram = vram_bytes
        if unified_default and ram_bytes is not None and vram is None:
            vram, exact = _apple_budget(ram_bytes, wired_limit_mb)
            notes.append(_apple_note(vram, ram_bytes, exact))
        unified = unified_default and vram is not None and ram_bytes is not None
        ram, kept = _kept(ram_bytes, ram_reserve_bytes, notes)
        return Target(vram, 1, ram, unified, None, "", tuple(notes), ram_reserve_bytes=kept)
    ram = ram_bytes
    reserve = ram_reserve_bytes if ram_reserve_bytes is not None else machine.ram_reserve_bytes
    if wired_limit_mb is None:
        wired_limit_mb = machine.wired_limit_mb
    if not machine.devices:
        cpu_ram, kept = _kept(machine.ram_bytes if ram is None else ram, reserve, notes)
        return Target(None, 0, cpu_ram, False, "cpu", "", (*machine.notes, *notes), machine, kept)
    dev = machine.devices[0]
    keep = machine.gpu_reserve_bytes or (0,) * len(machine.devices)
    if len(keep) != len(machine.devices):
        raise SettingError(f"{len(keep)} GPU reserves for {len(machine.devices)} GPUs")
    per_gpu = tuple(d.usable_bytes - k for d, k in zip(machine.devices, keep, strict=True))
    if any(k for k in keep):
        notes.append("kept on each GPU for the system: " + ", ".join(f"{k / 1e9:.2f} GB" for k in keep))
    vram = min(per_gpu)
    if dev.unified:
        total = dev.memory_bytes if ram is None else ram
        if dev.vendor == "apple":
            vram, exact = _apple_budget(total, wired_limit_mb)
            notes.append(_apple_note(vram, total, exact))
        else:
            vram = min(total, dev.usable_bytes)
            notes.append(f"unified memory: GPU and CPU share {total / 1e9:g} GB")
        ram = total
    else:
        notes.extend(dict.fromkeys(d.usable_note for d in machine.devices if d.usable_note))
        if ram is None:
            ram = machine.ram_bytes
    ram, kept = _kept(ram, reserve, notes)
    backend = dev.backends[0] if dev.backends else None
    notes_all = (*machine.notes, *notes)
    mixed = per_gpu if len(set(per_gpu)) > 1 and not dev.unified else ()
    return Target(vram, len(machine.devices), ram, dev.unified, backend, dev.name, notes_all, machine, kept,
                  mixed)  # fmt: skip
