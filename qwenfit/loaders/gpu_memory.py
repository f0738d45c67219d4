"""The memory each GPU has in use now (the desktop, other processes): asked of the same tools as
:func:`qwenfit.loaders.detect.detect` — NVML or ``nvidia-smi``'s ``memory.used``, ``amd-smi metric``
(``rocm-smi``), Intel's ``xpu-smi`` — so a detected machine is planned against what is free."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import Any

from qwenfit.core.hardware import Device
from qwenfit.loaders.gpu_probes import (
    AMD_SMI_METRIC,
    AMD_SMI_STATIC,
    ROCM_SMI,
    XPU_SMI_DISCOVERY,
    Found,
    Runner,
    amd_records,
    brief,
    clip,
    gib_text,
    int_value,
    intel_name,
    load_json,
    mib_value,
    optional_import,
    run_tool,
    text_value,
    xpu_smi_detail,
)

MIB = 1 << 20

__all__ = ["NVIDIA_SMI_USED", "GpuMemoryState", "gpu_memory_in_use", "gpu_reserves"]


NVIDIA_SMI_USED = ["nvidia-smi", "--query-gpu=name,memory.total,memory.used", "--format=csv,noheader,nounits"]


@dataclass(frozen=True, slots=True)
class GpuMemoryState:
    """One GPU's memory as its tool reported it when asked: bytes, None when the tool gave none."""

    vendor: str  # "nvidia", "amd", "intel"
    index: int  # the GPU's position in that tool's list (the order detect() keeps)
    name: str
    total_bytes: int | None
    used_bytes: int | None  # what other processes (and the driver) hold now
    source: str  # "NVML", "nvidia-smi", "amd-smi metric", "rocm-smi", "xpu-smi"

    @property
    def free_bytes(self) -> int | None:
        if self.total_bytes is None or self.used_bytes is None:
            return None
        return max(self.total_bytes - self.used_bytes, 0)


def gpu_memory_in_use(
    *, run: Runner | None = None, env: str | None = None, nvml: Any = None
) -> tuple[tuple[GpuMemoryState, ...], tuple[str, ...]]:
    """Each GPU's memory in use now, and notes: NVIDIA from NVML (``nvmlDeviceGetMemoryInfo().used``) or
    ``nvidia-smi --query-gpu=name,memory.total,memory.used`` (MiB); AMD from ``amd-smi metric --mem-usage``
    (``used_vram``, MiB) or ``rocm-smi --showmeminfo vram`` (``VRAM Total Used Memory (B)``); Intel from
    ``xpu-smi discovery -d N -j`` (``memory_physical_size_byte - memory_free_size_byte``). Vendors in
    :func:`detect`'s order. Empty on macOS (unified memory: see
    :func:`qwenfit.loaders.host_probes.host_memory_in_use`). ``run``/``env``/``nvml`` as in :func:`detect`;
    never raises for what the tools say."""
    runner: Runner = run if run is not None else run_tool
    if nvml is None and run is None:
        nvml = optional_import("pynvml")
    notes: list[str] = []
    if (env if env is not None else sys.platform) == "darwin":
        return (), ("GPU memory in use: unified memory on macOS, see the RAM available",)
    states = [*_nvidia_used(runner, nvml, notes), *_amd_used(runner, notes), *_intel_used(runner, notes)]
    for g in states:
        used = gib_text(g.used_bytes) if g.used_bytes is not None else "unknown"
        notes.append(
            f"GPU {g.vendor} {g.index} {g.name}: {used} of {gib_text(g.total_bytes)} in use ({g.source})"
        )
    return tuple(states), tuple(notes)


def _nvidia_used(runner: Runner, nvml: Any, notes: list[str]) -> list[GpuMemoryState]:
    out: list[GpuMemoryState] = []
    if nvml is not None:
        try:
            nvml.nvmlInit()
            try:
                for i in range(int(nvml.nvmlDeviceGetCount())):
                    handle = nvml.nvmlDeviceGetHandleByIndex(i)
                    raw = nvml.nvmlDeviceGetName(handle)
                    name = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)).strip()
                    total = used = None
                    with contextlib.suppress(Exception):  # NVML_ERROR_NOT_SUPPORTED on unified memory
                        info = nvml.nvmlDeviceGetMemoryInfo(handle)
                        total, used = int(info.total), int(info.used)
                    out.append(GpuMemoryState("nvidia", i, name, total, used, "NVML"))
                return out
            finally:
                nvml.nvmlShutdown()
        except Exception as e:
            notes.append(f"NVML: {brief(e)}; asking nvidia-smi")
            out = []
    for line in (runner(NVIDIA_SMI_USED) or "").splitlines():
        parts = [p.strip().removesuffix("MiB").strip() for p in line.rsplit(",", 2)]
        if len(parts) != 3 or not parts[0]:
            if line.strip():
                notes.append(f"nvidia-smi: ignored {clip(line)!r} (expected 'name, total, used' in MiB)")
            continue
        total, used = (int(p) * MIB if p.isdigit() else None for p in parts[1:])
        out.append(GpuMemoryState("nvidia", len(out), parts[0], total, used, "nvidia-smi"))
    return out


def _amd_used(runner: Runner, notes: list[str]) -> list[GpuMemoryState]:
    records = amd_records(load_json(runner(AMD_SMI_METRIC) or "", "amd-smi metric", notes)) or []
    static = amd_records(load_json(runner(AMD_SMI_STATIC) or "", "amd-smi", notes)) if records else None
    names = {
        r.get("gpu"): text_value(r["asic"].get("market_name"))
        for r in static or []
        if isinstance(r, dict) and isinstance(r.get("asic"), dict)
    }
    out: list[GpuMemoryState] = []
    for position, record in enumerate(records):
        usage = record.get("mem_usage") if isinstance(record, dict) else None
        if isinstance(usage, dict):
            index = record.get("gpu", position)
            name = names.get(index) or f"AMD GPU {index}"
            total, used = mib_value(usage.get("total_vram")), mib_value(usage.get("used_vram"))
            out.append(GpuMemoryState("amd", len(out), name, total, used, "amd-smi metric"))
    if out:
        return out
    data = load_json(runner(ROCM_SMI) or "", "rocm-smi", notes)
    cards = (
        sorted((k, c) for k, c in data.items() if k.lower().startswith("card"))
        if isinstance(data, dict)
        else []
    )
    for key, card in cards:
        if isinstance(card, dict):
            fields = {str(k).lower(): v for k, v in card.items()}
            name = text_value(fields.get("card series")) or f"AMD GPU {key}"
            total, used = (
                int_value(fields.get("vram total memory (b)")),
                int_value(fields.get("vram total used memory (b)")),
            )
            out.append(GpuMemoryState("amd", len(out), name, total, used, "rocm-smi"))
    return out


def _intel_used(runner: Runner, notes: list[str]) -> list[GpuMemoryState]:
    data = load_json(runner(XPU_SMI_DISCOVERY) or "", "xpu-smi", notes)
    records = data.get("device_list") if isinstance(data, dict) else None
    out: list[GpuMemoryState] = []
    for position, record in enumerate(records if isinstance(records, list) else []):
        if not isinstance(record, dict):
            continue
        index = record.get("device_id", position)
        if "memory_free_size_byte" not in record and isinstance(index, int):
            detail = load_json(runner(xpu_smi_detail(index)) or "", "xpu-smi", notes)
            record = {**record, **detail} if isinstance(detail, dict) else record
        total, free = (
            int_value(record.get("memory_physical_size_byte")),
            int_value(record.get("memory_free_size_byte")),
        )
        used = total - free if total is not None and free is not None else None
        name = intel_name(text_value(record.get("device_name")), int_value(record.get("pci_device_id"), 16))
        out.append(GpuMemoryState("intel", len(out), name, total, used, "xpu-smi"))
    return out


# ---------------------------------------------------------------------------------------------------
# running tools


def gpu_reserves(
    kept: list[Found], devices: list[Device], runner: Runner, platform: str, nvml: Any, notes: list[str]
) -> tuple[int, ...]:
    """The memory each detected GPU has in use now (the desktop, other processes), kept out of its
    budget; () when no tool says (then no GPU memory is kept beyond the engines' own margins)."""
    if not kept or any(d.unified for d in devices):
        return ()
    states, more = gpu_memory_in_use(run=runner, env=platform, nvml=nvml)
    notes.extend(more)
    pool = list(states)
    out: list[int] = []
    for gpu in kept:
        match = next((s for s in pool if s.vendor == gpu.vendor and s.name == gpu.name), None)
        if match is not None:
            pool.remove(match)
        out.append(match.used_bytes or 0 if match is not None else 0)
    if any(out):
        notes.append("GPU memory in use now, kept out of the plan: "
                     + ", ".join(f"{u / 1e9:.2f} GB" for u in out))  # fmt: skip
    return tuple(out) if any(out) else ()
