"""Local hardware detection: which GPUs, how much device memory, how much RAM, how many CPU threads.

``detect()`` asks, in order and each failing soft (a missing tool is not an error, a malformed answer
becomes a note, never a traceback):

* NVIDIA: NVML through ``pynvml`` (package ``nvidia-ml-py``, extra ``[detect]``), else
  ``nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`` (MiB; ``[N/A]`` on
  unified-memory parts such as GB10 and Jetson);
* AMD: ``amd-smi static --asic --vram --json`` (``amd-smi metric --mem-usage --json`` for memory
  it leaves out), else ``rocm-smi --showproductname --showmeminfo vram --json``;
* Intel (not macOS): ``xpu-smi discovery -j`` (+ ``-d N -j`` for memory), else on Linux the DRM sysfs
  (``/sys/class/drm/cardN/device/{vendor,device}``; memory from xe's ``tileN/physical_vram_size_bytes``
  or the DKMS i915's ``lmem_total_bytes``) named by ``lspci -nn``, else ``sycl-ls`` (names only: the
  catalog's nominal memory); integrated Intel GPUs (by PCI id) are noted and left out;
* Apple (macOS only): ``sysctl -n hw.memsize machdep.cpu.brand_string``, ``hw.perflevel0.physicalcpu``
  and the GPU wired-memory limit ``iogpu.wired_limit_mb`` (:func:`apple_wired_limit_mb`);
* RAM: ``psutil.virtual_memory().total``, else ``/proc/meminfo`` ``MemTotal``, else ``hw.memsize``;
  a smaller cgroup memory limit (containers) replaces it. The RAM available now and the RAM's kind and
  speed (``Machine.host``) come from :mod:`qwenfit.loaders.host_probes`;
* CPU threads: ``os.cpu_count()``; physical cores: ``psutil.cpu_count(logical=False)``, else the distinct
  ``(physical id, core id)`` pairs of ``/proc/cpuinfo``, else ``sysctl -n hw.physicalcpu`` (unknown when
  none answers: the speed model then takes half the threads, an SMT guess, and says so).

Detected GPUs are matched to the hardware catalog (``qwenfit.loaders.hardware.find_device``); the
driver's memory replaces the catalog's nominal figure (``memory_exact=True``). A GPU the catalog does
not know becomes a ``detected-<slug>`` device with the driver's memory and unknown speed (bandwidth and
compute 0.0). Everything found, by which tool, and everything assumed goes into ``Machine.notes``.
:func:`gpu_memory_in_use` reports what each GPU's memory holds now. Every output format parsed, and
the published outputs it is tested on, is described in ``tests/fixtures/detect/README.md``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Callable
from typing import Any, Protocol, cast

from qwenfit.core.hardware import Device, HostMemory, Machine
from qwenfit.loaders.gpu_memory import NVIDIA_SMI_USED, GpuMemoryState, gpu_memory_in_use, gpu_reserves
from qwenfit.loaders.gpu_probes import (
    SYSCTL_MEMSIZE,
    AppleInfo,
    Found,
    amd_gpus,
    apple_info,
    brief,
    gib_text,
    intel_gpus,
    nvidia_gpus,
    optional_import,
    read_text,
    run_tool,
    sysctl_values,
    wired_limit,
)
from qwenfit.loaders.host_probes import detect_host_profile, host_memory_in_use

__all__ = ["NVIDIA_SMI_USED", "GpuMemoryState", "apple_wired_limit_mb", "detect", "gpu_memory_in_use"]

_run_tool, _read_text, _optional_import = run_tool, read_text, optional_import

MIB = 1 << 20
GIB = 1 << 30

PROC_MEMINFO = "/proc/meminfo"
PROC_CPUINFO = "/proc/cpuinfo"
SYSCTL_PHYSICAL_CPU = ["sysctl", "-n", "hw.physicalcpu"]
CGROUP2_MEMORY_MAX = "/sys/fs/cgroup/memory.max"
CGROUP1_MEMORY_LIMIT = "/sys/fs/cgroup/memory/memory.limit_in_bytes"

# A GPU this small next to a bigger one is an APU's carve-out (e.g. a 512 MiB "Radeon 680M" beside a
# 7900 XTX in rocm-smi); planning across both would put layers on the carve-out.
_INTEGRATED_BELOW_BYTES = 4 * GIB

Runner = Callable[[list[str]], "str | None"]
FileReader = Callable[[str], "str | None"]


class DeviceLookup(Protocol):
    """``qwenfit.loaders.hardware.find_device``: a catalog device for a driver name, or None."""

    def __call__(self, name: str, memory_bytes: int | None = None) -> Device | None: ...


# ---------------------------------------------------------------------------------------------------
# public API


def detect(
    *,
    run: Runner | None = None,
    read_file: FileReader | None = None,
    env: str | None = None,
    lookup: DeviceLookup | None = None,
    nvml: Any = None,
    psutil: Any = None,
) -> Machine:
    """The local machine as the planner sees it: GPUs, RAM, CPU threads, and notes on how.

    ``run(cmd)`` runs a tool and returns its stdout, or None when it is missing or fails (default: the
    real tool, with a 5 s timeout); ``read_file(path)`` returns a file's text or None (default: the
    real file); ``env`` is the platform, as ``sys.platform`` spells it. ``lookup(name, memory_bytes=)``
    finds catalog devices (default: ``qwenfit.loaders.hardware.find_device``). ``nvml`` and ``psutil``
    stand in for the ``pynvml`` and ``psutil`` modules.

    A call given ``run`` or ``read_file`` is a replay: it uses exactly what it is given, and consults
    the installed ``pynvml``/``psutil`` only when they are passed, so recorded outputs give the same
    Machine on any computer. Never raises for what the tools say; what they say is in ``notes``.
    """
    live = run is None and read_file is None
    runner: Runner = run if run is not None else _run_tool
    reader: FileReader = read_file if read_file is not None else _read_text
    platform = env if env is not None else sys.platform
    if nvml is None and live:
        nvml = _optional_import("pynvml")
    if psutil is None and live:
        psutil = _optional_import("psutil")

    notes: list[str] = []
    tried: list[str] = []
    found: list[Found] = []
    apple: AppleInfo | None = None
    if platform == "darwin":
        apple = apple_info(runner, notes, tried)
    else:
        found += nvidia_gpus(runner, nvml, notes, tried)
        found += amd_gpus(runner, notes, tried)
        found += intel_gpus(runner, reader, platform.startswith("linux"), notes, tried)

    ram_bytes = _ram(runner, reader, psutil, platform, apple, notes)
    state = host_memory_in_use(run=runner, read_file=reader, env=platform, psutil=psutil)
    if state is not None and state.available_bytes is not None:
        total = gib_text(state.total_bytes) if state.total_bytes is not None else "unknown"
        notes.append(f"RAM: {total} total, {gib_text(state.available_bytes)} available ({state.source})")
    notes.extend(state.notes if state is not None else ["RAM available: unknown (no tool answered)"])
    cpu_threads = os.cpu_count()
    if cpu_threads is not None:
        notes.append(f"CPU: {cpu_threads} threads (os.cpu_count)")
    cpu_cores = _cpu_cores(runner, reader, psutil, platform, notes)

    if lookup is None:
        lookup = _catalog_lookup(notes)
    devices: list[Device] = []
    if apple is not None and apple.silicon:
        devices.append(_apple_device(apple, lookup, notes))
    found = _drop_integrated(found, notes)
    kept: list[Found] = []
    devices += _to_devices(found, ram_bytes, lookup, notes, kept)
    gpu_reserve = gpu_reserves(kept, devices, runner, platform, nvml, notes)

    if not devices:
        where = "; ".join(tried) if tried else "no GPU tool applies to this platform"
        notes.append(f"no GPU found ({where}): planning for CPU only")
    host = _host_profile(runner, platform, devices, notes)
    ram_reserve = None  # plan against what is available now: what is in use stays in use
    if (
        state is not None
        and state.available_bytes is not None
        and ram_bytes is not None
        and not (devices and devices[0].unified)
    ):
        ram_reserve = max(ram_bytes - state.available_bytes, 0)
        notes.append(f"host RAM planned: the {state.available_bytes / 1e9:.2f} GB available now "
                     f"({ram_reserve / 1e9:.2f} GB in use is kept)")  # fmt: skip
    return Machine(
        name=_machine_name(devices),
        devices=tuple(devices),
        ram_bytes=ram_bytes,
        host=host,
        cpu_threads=cpu_threads,
        cpu_cores=cpu_cores,
        notes=tuple(notes),
        ram_reserve_bytes=ram_reserve,
        gpu_reserve_bytes=gpu_reserve,
        wired_limit_mb=_wired(runner, notes) if apple is not None and apple.silicon else None,
    )


def _wired(runner: Runner, notes: list[str]) -> int | None:
    """A Mac's ``iogpu.wired_limit_mb`` (None: macOS's default working set), with a note."""
    mib, note = wired_limit(runner)
    notes.append(note)
    return mib


def apple_wired_limit_mb(*, run: Runner | None = None, env: str | None = None) -> int | None:
    """The macOS GPU wired-memory limit a user set with ``sudo sysctl iogpu.wired_limit_mb=N``, in MiB.

    None when it is not set (the sysctl reads 0: macOS's default working-set limit applies, see
    :func:`qwenfit.core.hardware.working_set_bytes`), when this is not macOS, or when the sysctl cannot
    be read. macOS 13 spelled it ``debug.iogpu.wired_limit``, in bytes; that is read when the macOS 14+
    name is absent.
    """
    platform = env if env is not None else sys.platform
    if platform != "darwin":
        return None
    return wired_limit(run if run is not None else _run_tool)[0]


# ---------------------------------------------------------------------------------------------------
# memory in use on the GPUs


def _catalog_lookup(notes: list[str]) -> DeviceLookup:
    # imported by name: qwenfit.loaders.hardware is optional here (detection works without a catalog)
    import importlib

    try:
        module = importlib.import_module("qwenfit.loaders.hardware")
        return cast(DeviceLookup, module.find_device)
    except (ImportError, AttributeError) as e:
        notes.append(f"hardware catalog unavailable ({brief(e)}): GPUs are described from the driver only")
        return _no_lookup


def _no_lookup(name: str, memory_bytes: int | None = None) -> Device | None:
    return None


def _apple_device(apple: AppleInfo, lookup: DeviceLookup, notes: list[str]) -> Device:
    assert apple.chip is not None and apple.memsize is not None
    found = Found(apple.chip, apple.memsize, "apple", "sysctl")
    device = _device_for(found, [found], None, lookup, notes)
    assert device is not None  # memory is known: a device always comes back
    return device


# ---------------------------------------------------------------------------------------------------
# RAM


def _host_profile(
    runner: Runner, platform: str, devices: list[Device], notes: list[str]
) -> HostMemory | None:
    unified = devices[0] if devices and devices[0].vendor == "apple" else None
    try:
        host, found = detect_host_profile(run=runner, env=platform, unified=unified)
    except Exception as e:  # the host-profile catalog failing to load must not stop detection
        host, found = None, (f"host RAM profile: not determined ({brief(e)})",)
    notes.extend(found)
    if host is None:
        notes.append("host RAM bandwidth is not measured: the planner's default host profile applies")
    else:
        peak, effective = host.bandwidth_gbps, host.effective_gbps
        notes.append(f"host RAM: {host.name} ({peak:g} GB/s peak, {effective:g} GB/s effective)")
    return host


def _cpu_cores(
    runner: Runner, reader: FileReader, psutil: Any, platform: str, notes: list[str]
) -> int | None:
    """Physical CPU cores (SMT siblings counted once): what bounds CPU matmuls (speed.host_gbps)."""
    cores, source = None, ""
    if psutil is not None:
        try:
            n = psutil.cpu_count(logical=False)
            cores, source = (int(n), "psutil") if n else (None, "")
        except Exception as e:
            notes.append(f"psutil.cpu_count(logical=False) failed ({brief(e)})")
    if cores is None and platform.startswith("linux"):
        pairs: set[tuple[str, str]] = set()
        physical = ""
        for line in (reader(PROC_CPUINFO) or "").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "physical id":
                physical = value.strip()
            elif key.strip() == "core id":
                pairs.add((physical, value.strip()))
        cores, source = (len(pairs), "/proc/cpuinfo core ids") if pairs else (None, "")
    if cores is None and platform == "darwin":
        values = sysctl_values(runner(SYSCTL_PHYSICAL_CPU) or "")
        cores, source = (
            (int(values[0]), "sysctl hw.physicalcpu") if values and values[0].isdigit() else (None, "")
        )
    notes.append(f"CPU: {cores} physical cores ({source})" if cores else "CPU: physical cores unknown")
    return cores


def _ram(
    runner: Runner, reader: FileReader, psutil: Any, platform: str, apple: AppleInfo | None, notes: list[str]
) -> int | None:
    total: int | None = None
    source = ""
    if psutil is not None:
        try:
            total = int(psutil.virtual_memory().total)
            source = "psutil"
        except Exception as e:
            notes.append(f"psutil.virtual_memory() failed ({brief(e)})")
    if total is None and platform.startswith("linux"):
        text = reader(PROC_MEMINFO)
        if text is not None:
            total = _meminfo_total(text, notes)
            source = "/proc/meminfo MemTotal"
    if total is None and platform == "darwin":
        if apple is not None and apple.memsize is not None:
            total, source = apple.memsize, "sysctl hw.memsize"
        else:
            values = sysctl_values(runner(SYSCTL_MEMSIZE) or "")
            if values and values[0].isdigit():
                total, source = int(values[0]), "sysctl hw.memsize"
    if total is None:
        notes.append("RAM: unknown (no psutil, /proc/meminfo or sysctl answer): host RAM is not judged")
        return None
    notes.append(f"RAM: {gib_text(total)} ({source})")
    if platform.startswith("linux"):
        total = _cgroup_limit(reader, total, notes)
    return total


def _meminfo_total(text: str, notes: list[str]) -> int | None:
    match = re.search(r"^MemTotal:\s*(\d+)\s*kB\s*$", text, re.MULTILINE)
    if match is None:
        notes.append("/proc/meminfo: no 'MemTotal: N kB' line")
        return None
    return int(match.group(1)) * 1024  # the kernel's "kB" is KiB (fs/proc/meminfo.c shifts by 10)


def _cgroup_limit(reader: FileReader, total: int, notes: list[str]) -> int:
    for path in (CGROUP2_MEMORY_MAX, CGROUP1_MEMORY_LIMIT):
        text = (reader(path) or "").strip()
        if text.isdigit() and 0 < int(text) < total:
            limit = int(text)
            cap = gib_text(limit)
            notes.append(f"RAM: this process is limited to {cap} by its cgroup ({path}); using that")
            return limit
    return total


# ---------------------------------------------------------------------------------------------------
# devices


def _drop_integrated(found: list[Found], notes: list[str]) -> list[Found]:
    if not any((g.memory_bytes or 0) >= _INTEGRATED_BELOW_BYTES for g in found):
        return found
    kept = []
    for gpu in found:
        if gpu.memory_bytes is not None and gpu.memory_bytes < _INTEGRATED_BELOW_BYTES:
            notes.append(
                f"ignored {gpu.name} ({gpu.memory_bytes // MIB} MiB, {gpu.tool}): an integrated GPU's "
                "carve-out next to a discrete GPU"
            )
            continue
        kept.append(gpu)
    return kept


def _to_devices(
    found: list[Found], ram_bytes: int | None, lookup: DeviceLookup, notes: list[str], kept_found: list[Found]
) -> list[Device]:
    groups: dict[tuple[str, int | None, str], list[Found]] = {}
    for gpu in found:
        groups.setdefault((gpu.name, gpu.memory_bytes, gpu.tool), []).append(gpu)
    by_group = {
        key: _device_for(members[0], members, ram_bytes, lookup, notes) for key, members in groups.items()
    }
    in_order = [by_group[(gpu.name, gpu.memory_bytes, gpu.tool)] for gpu in found]  # in the tools' order
    devices = [d for d in in_order if d is not None]
    kept_found[:] = [gpu for gpu, d in zip(found, in_order, strict=True) if d is not None]
    kinds = sorted({d.id for d in devices})
    if len(kinds) > 1:
        counts = ", ".join(f"{sum(d.id == k for d in devices)}x {k}" for k in kinds)
        notes.append(f"mixed GPUs ({counts}): all are kept, each with its own memory")
    if len({d.vendor for d in devices}) > 1:
        notes.append("GPUs of more than one vendor: one engine process usually uses only one vendor's GPUs")
    return devices


def _device_for(
    gpu: Found, members: list[Found], ram_bytes: int | None, lookup: DeviceLookup, notes: list[str]
) -> Device | None:
    count = len(members)
    prefix = f"{count}x " if count > 1 else ""
    each = " each" if count > 1 else ""
    memory = gpu.memory_bytes
    unified = gpu.vendor == "apple"
    if memory is None and gpu.vendor == "intel":  # sycl-ls, or sysfs of mainline i915: a name only
        catalog = _lookup(gpu.name, None, lookup, notes)
        if catalog is None:
            notes.append(
                f"{prefix}{gpu.name} ({gpu.tool}) reports no memory and is not in the hardware catalog: "
                "not planned for (an integrated GPU shares system RAM)"
            )
        else:
            notes.append(
                f"{prefix}{gpu.name} ({gpu.tool}, no memory reported) = catalog device '{catalog.id}' "
                f"with its nominal {gib_text(catalog.memory_bytes)}"
            )
        return catalog
    if memory is None:  # NVIDIA part with no memory.total of its own: the GPU shares system RAM
        unified = True
        memory = ram_bytes
        how = f"no memory of its own in {gpu.tool}: shares system RAM" + (
            f" ({gib_text(ram_bytes)})" if ram_bytes is not None else ", which is unknown"
        )
    elif gpu.vendor == "apple":
        how = f"{gib_text(memory)} unified"
    else:
        how = f"{memory // MIB} MiB{each}"
    catalog = _lookup(gpu.name, memory, lookup, notes)
    if catalog is not None:
        nominal = catalog.memory_bytes
        device = (
            catalog
            if memory is None
            else dataclasses.replace(catalog, memory_bytes=memory, memory_exact=True)
        )
        note = f"{prefix}{gpu.name} ({how}, {gpu.tool}) = catalog device '{catalog.id}'"
        if memory is not None and nominal > 0 and abs(memory - nominal) > 0.1 * nominal:
            catalog_memory = gib_text(nominal)
            note += f"; the driver's memory differs from the catalog's {catalog_memory}, the driver's is used"
        notes.append(note)
        return device
    slug = re.sub(r"[^a-z0-9]+", "-", gpu.name.lower()).strip("-") or "gpu"
    notes.append(
        f"{prefix}{gpu.name} ({how}, {gpu.tool}) is not in the hardware catalog: device 'detected-{slug}' "
        "uses the memory it reports; its bandwidth and compute are unknown, so speed cannot be estimated"
    )
    backends = {"nvidia": ("cuda", "vulkan"), "amd": ("rocm", "vulkan"), "apple": ("metal",)}
    backends["intel"] = ("sycl", "vulkan")
    return Device(
        id=f"detected-{slug}",
        name=gpu.name,
        vendor=gpu.vendor,
        kind="unified" if unified else "gpu",
        memory_bytes=memory if memory is not None else 0,
        memory_exact=memory is not None,
        bandwidth_gbps=0.0,  # unknown
        fp16_tflops=0.0,  # unknown
        backends=backends.get(gpu.vendor, ()),
        compute_capability=gpu.arch,
        source=f"detected by {gpu.tool}",
    )


def _lookup(name: str, memory: int | None, lookup: DeviceLookup, notes: list[str]) -> Device | None:
    """The catalog device for a driver name; pci.ids-style AMD names try each model they list."""
    hits: list[Device] = []
    for candidate in _name_candidates(name):
        try:
            device = lookup(candidate, memory_bytes=memory)
        except Exception as e:
            notes.append(f"hardware catalog lookup of {candidate!r} failed ({brief(e)})")
            return None
        if device is not None and device not in hits:
            hits.append(device)
    if not hits:
        return None
    if memory is None or len(hits) == 1:
        return hits[0]
    return min(hits, key=lambda d: abs(d.memory_bytes - memory))  # "7900 XT/7900 XTX": the 24 GB one


def _name_candidates(name: str) -> list[str]:
    """``"Navi 31 [Radeon RX 7900 XT/7900 XTX/7900M]"`` -> each Radeon it names, then the name itself."""
    match = re.fullmatch(r"[^\[\]]*\[([^\[\]]+)\]\s*", name)
    if match is None:
        return [name]
    inner = match.group(1).strip()
    parts = [p.strip() for p in inner.split("/") if p.strip()]
    if not parts:
        return [name]
    # the model number is the first token starting with a digit (or a letter + digit: "W7900"); the
    # words before it ("Radeon RX") are shared by the short names after each "/"
    tokens = parts[0].split()
    stem = next((i for i, t in enumerate(tokens) if re.match(r"[A-Za-z]?\d", t)), 0)
    prefix = " ".join(tokens[:stem])
    candidates = [parts[0]]
    for part in parts[1:]:
        candidates.append(part if not prefix or part.startswith(prefix) else f"{prefix} {part}")
    return [*dict.fromkeys([*candidates, name])]


def _machine_name(devices: list[Device]) -> str:
    if not devices:
        return "detected: CPU only"
    counts: dict[str, int] = {}
    for d in devices:
        counts[d.id] = counts.get(d.id, 0) + 1
    # ids of uncatalogued devices already say "detected-"; the name says it once
    return "detected: " + " + ".join(
        f"{n}x {i.removeprefix('detected-')}" if n > 1 else i.removeprefix("detected-")
        for i, n in counts.items()
    )
