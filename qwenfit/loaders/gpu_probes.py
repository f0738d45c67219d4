"""What the GPU tools say: NVIDIA (NVML, nvidia-smi), AMD (amd-smi, rocm-smi) and Apple (sysctl),
parsed into :class:`Found` GPUs, each failing soft (:mod:`qwenfit.loaders.detect` runs them and
matches what they found to the hardware catalog; the formats are described there).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

__all__ = [
    "AMD_SMI_METRIC", "AMD_SMI_STATIC", "NVIDIA_SMI", "ROCM_SMI", "SYSCTL_APPLE", "SYSCTL_MEMSIZE",
    "SYSCTL_PERF_CORES", "SYSCTL_WIRED_LIMIT", "SYSCTL_WIRED_LIMIT_13", "TIMEOUT_S", "AppleInfo", "Found",
    "amd_gpus", "apple_info", "brief", "clip", "command_text", "gib_text", "nvidia_gpus", "sysctl_values",
    "wired_limit",
]  # fmt: skip

MIB = 1 << 20
GIB = 1 << 30

Runner = Callable[[list[str]], "str | None"]

TIMEOUT_S = 5.0  # per tool; a hung driver tool must not hang plan()

NVIDIA_SMI = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"]
AMD_SMI_STATIC = ["amd-smi", "static", "--asic", "--vram", "--json"]
AMD_SMI_METRIC = ["amd-smi", "metric", "--mem-usage", "--json"]
ROCM_SMI = ["rocm-smi", "--showproductname", "--showmeminfo", "vram", "--json"]
SYSCTL_APPLE = ["sysctl", "-n", "hw.memsize", "machdep.cpu.brand_string"]
SYSCTL_PERF_CORES = ["sysctl", "-n", "hw.perflevel0.physicalcpu"]
SYSCTL_WIRED_LIMIT = ["sysctl", "-n", "iogpu.wired_limit_mb"]  # macOS 14+, MiB, 0 = macOS default
SYSCTL_WIRED_LIMIT_13 = ["sysctl", "-n", "debug.iogpu.wired_limit"]  # macOS 13, bytes, 0 = default
SYSCTL_MEMSIZE = ["sysctl", "-n", "hw.memsize"]


@dataclass(frozen=True, slots=True)
class Found:
    """One GPU as a tool reported it, before the catalog is consulted."""

    name: str
    memory_bytes: int | None  # None: the tool gave no memory (unified-memory parts)
    vendor: str
    tool: str
    arch: str | None = None  # NVIDIA compute capability "8.9" or AMD gfx target "gfx942"


def brief(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def clip(text: str, limit: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def command_text(cmd: Sequence[str]) -> str:
    return " ".join(cmd)


# ---------------------------------------------------------------------------------------------------
# NVIDIA


def nvidia_gpus(runner: Runner, nvml: Any, notes: list[str], tried: list[str]) -> list[Found]:
    if nvml is None:
        tried.append("NVML: pynvml not installed (pip install 'qwenfit[detect]')")
    else:
        gpus = _nvml_gpus(nvml, notes, tried)
        if gpus is not None:
            return gpus
    text = runner(NVIDIA_SMI)
    if text is None:
        tried.append("nvidia-smi: no answer")
        return []
    gpus = _parse_nvidia_smi(text, notes)
    if not gpus:
        tried.append("nvidia-smi: no GPU in its answer")
    return gpus


def _nvml_gpus(nvml: Any, notes: list[str], tried: list[str]) -> list[Found] | None:
    """GPUs from NVML, or None when NVML cannot answer (then nvidia-smi is asked)."""
    try:
        nvml.nvmlInit()
    except Exception as e:  # pynvml.NVMLError_LibraryNotFound / _DriverNotLoaded: no NVIDIA driver
        tried.append(f"NVML: {brief(e)}")
        return None
    try:
        count = int(nvml.nvmlDeviceGetCount())
        gpus: list[Found] = []
        for index in range(count):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            raw = nvml.nvmlDeviceGetName(handle)
            name = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)).strip()
            try:
                memory: int | None = int(nvml.nvmlDeviceGetMemoryInfo(handle).total)
            except Exception:  # NVML_ERROR_NOT_SUPPORTED on unified-memory parts (GB10, Jetson)
                memory = None
            arch: str | None
            try:
                major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
                arch = f"{int(major)}.{int(minor)}"
            except Exception:
                arch = None
            gpus.append(Found(name or f"NVIDIA GPU {index}", memory, "nvidia", "NVML", arch))
    except Exception as e:
        notes.append(f"NVML failed while listing GPUs ({brief(e)}); asking nvidia-smi instead")
        return None
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
    if not gpus:
        tried.append("NVML: 0 NVIDIA GPUs")
    return gpus


def _parse_nvidia_smi(text: str, notes: list[str]) -> list[Found]:
    gpus: list[Found] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, memory_text = line.rpartition(",")
        name, memory_text = name.strip(), memory_text.strip().removesuffix("MiB").strip()
        memory: int | None
        if sep and name and memory_text.isdigit():
            memory = int(memory_text) * MIB
        elif sep and name and memory_text.strip("[]").upper() == "N/A":
            memory = None
        else:
            notes.append(
                f"nvidia-smi: ignored line {lineno} {clip(line)!r} (expected 'name, memory.total in MiB')"
            )
            continue
        gpus.append(Found(name, memory, "nvidia", "nvidia-smi"))
    return gpus


# ---------------------------------------------------------------------------------------------------
# AMD


def amd_gpus(runner: Runner, notes: list[str], tried: list[str]) -> list[Found]:
    text = runner(AMD_SMI_STATIC)
    if text is None:
        tried.append("amd-smi: no answer")
    else:
        gpus = _parse_amd_smi_static(text, notes)
        if any(g.memory_bytes is None for g in gpus):
            gpus = _amd_smi_metric_memory(runner, gpus, notes)
        for gpu in gpus:
            if gpu.memory_bytes is None:
                notes.append(f"amd-smi: {gpu.name} reports no VRAM size; it is left out")
        gpus = [g for g in gpus if g.memory_bytes is not None]
        if gpus:
            return gpus
        tried.append("amd-smi: no GPU with a VRAM size in its answer")
    text = runner(ROCM_SMI)
    if text is None:
        tried.append("rocm-smi: no answer")
        return []
    gpus = _parse_rocm_smi(text, notes)
    if not gpus:
        tried.append("rocm-smi: no GPU in its answer")
    return gpus


def _load_json(text: str, tool: str, notes: list[str]) -> Any:
    """The JSON document in a tool's stdout (a warning banner before it is skipped), or None + a note."""
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        if text.strip():
            notes.append(f"{tool}: answer is not JSON ({clip(text)!r}); ignored")
        return None
    try:
        return json.loads(text[start:])
    except ValueError as e:
        notes.append(f"{tool}: malformed JSON ({brief(e)}); ignored")
        return None


def _amd_records(data: Any) -> list[Any] | None:
    """amd-smi's per-GPU records: a list (ROCm 6.x), the list under "gpu_data" (ROCm 7), or one record."""
    if isinstance(data, dict) and isinstance(data.get("gpu_data"), list):
        return cast(list[Any], data["gpu_data"])
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and "gpu" in data:
        return [data]
    return None


def _mib_value(value: Any) -> int | None:
    """Bytes from amd-smi's ``{"value": N, "unit": "MB"}`` (MiB, see module docstring) or a bare N."""
    unit = "MB"
    if isinstance(value, dict):
        unit = str(value.get("unit", "MB"))
        value = value.get("value")
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            return None
        value = int(value)
    if not isinstance(value, int) or value <= 0:
        return None
    scale = {"MB": MIB, "MIB": MIB, "GB": GIB, "GIB": GIB, "B": 1}.get(unit.strip().upper())
    return None if scale is None else value * scale


def _parse_amd_smi_static(text: str, notes: list[str]) -> list[Found]:
    tool = "amd-smi"
    records = _amd_records(_load_json(text, tool, notes))
    if records is None:
        return []
    gpus: list[Found] = []
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            notes.append(f"{tool}: GPU record {position} is not an object; ignored")
            continue
        asic: dict[str, Any] = record["asic"] if isinstance(record.get("asic"), dict) else {}
        name = _text(asic.get("market_name"))
        if name is None:
            device_id = _text(asic.get("device_id"))
            name = f"AMD GPU {device_id}" if device_id else f"AMD GPU {record.get('gpu', position)}"
        vram = record.get("vram")
        memory = None
        if isinstance(vram, dict):
            memory = _mib_value(vram.get("size", vram.get("vram_size_mb", vram.get("vram_size"))))
        arch = _text(asic.get("target_graphics_version"))
        gpus.append(Found(name, memory, "amd", tool, arch))
    return gpus


def _amd_smi_metric_memory(runner: Runner, gpus: list[Found], notes: list[str]) -> list[Found]:
    text = runner(AMD_SMI_METRIC)
    if text is None:
        return gpus
    records = _amd_records(_load_json(text, "amd-smi metric", notes)) or []
    totals: dict[int, int] = {}
    for position, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("mem_usage"), dict):
            continue
        index = record.get("gpu", position)
        total = _mib_value(record["mem_usage"].get("total_vram"))
        if isinstance(index, int) and total is not None:
            totals[index] = total
    out = []
    for index, gpu in enumerate(gpus):
        if gpu.memory_bytes is None and index in totals:
            gpu = dataclasses.replace(gpu, memory_bytes=totals[index], tool="amd-smi metric")
        out.append(gpu)
    return out


def _parse_rocm_smi(text: str, notes: list[str]) -> list[Found]:
    tool = "rocm-smi"
    data = _load_json(text, tool, notes)
    if data is None:
        return []
    if not isinstance(data, dict):
        notes.append(f"{tool}: expected an object of cards, got {type(data).__name__}; ignored")
        return []
    cards = [(key, card) for key, card in data.items() if key.lower().startswith("card")]
    cards.sort(key=lambda kc: int(d) if (d := re.sub(r"\D", "", kc[0])) else 0)
    gpus: list[Found] = []
    for key, card in cards:
        if not isinstance(card, dict):
            notes.append(f"{tool}: {key} is not an object; ignored")
            continue
        fields = {str(k).lower(): v for k, v in card.items()}
        name = _text(fields.get("card series")) or _text(fields.get("card sku"))
        model = _text(fields.get("card model"))
        if name is None and model is not None and not model.lower().startswith("0x"):
            name = model
        name = name or f"AMD GPU {model or key}"
        raw = _text(fields.get("vram total memory (b)"))
        if raw is None or not raw.isdigit() or int(raw) <= 0:
            notes.append(f"{tool}: {key} ({name}) has no usable 'VRAM Total Memory (B)' ({raw!r}); ignored")
            continue
        gpus.append(Found(name, int(raw), "amd", tool, _text(fields.get("gfx version"))))
    return gpus


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return None if not text or text.upper() in ("N/A", "NA") else text


# ---------------------------------------------------------------------------------------------------
# Apple


@dataclass(frozen=True, slots=True)
class AppleInfo:
    chip: str | None  # machdep.cpu.brand_string: "Apple M4 Max", or an Intel CPU on an Intel Mac
    memsize: int | None  # hw.memsize, bytes

    @property
    def silicon(self) -> bool:
        return self.chip is not None and self.chip.startswith("Apple") and self.memsize is not None


def sysctl_values(text: str) -> list[str]:
    """``sysctl -n`` prints one value per line; ``sysctl`` without -n prints ``name: value``."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(": ")
        out.append(value.strip() if sep and re.fullmatch(r"[\w.]+", name) else line.strip())
    return out


def apple_info(runner: Runner, notes: list[str], tried: list[str]) -> AppleInfo:
    text = runner(SYSCTL_APPLE)
    if text is None:
        tried.append("sysctl hw.memsize: no answer")
        return AppleInfo(None, None)
    values = sysctl_values(text)
    memsize = int(values[0]) if values and values[0].isdigit() and int(values[0]) > 0 else None
    chip = values[1] if len(values) > 1 else None
    if memsize is None:
        notes.append(f"sysctl: hw.memsize is not a byte count ({clip(text)!r})")
    if chip is None:
        notes.append("sysctl: machdep.cpu.brand_string missing")
    apple = AppleInfo(chip, memsize)
    if chip is not None and not apple.silicon and not chip.startswith("Apple"):
        tried.append(f"{chip}: not Apple Silicon, its GPU is not planned for")
    if apple.silicon:
        perf = runner(SYSCTL_PERF_CORES)
        values = sysctl_values(perf or "")
        perf_note = f", {values[0]} performance cores" if values and values[0].isdigit() else ""
        notes.append(
            f"Apple: {chip}, {gib_text(memsize)} unified memory "
            f"(sysctl hw.memsize = {memsize} bytes){perf_note}"
        )
        _, how = wired_limit(runner)
        notes.append(how)
    return apple


def wired_limit(runner: Runner) -> tuple[int | None, str]:
    """(limit MiB or None for macOS's default, a note saying what was read)."""
    for cmd, unit in ((SYSCTL_WIRED_LIMIT, MIB), (SYSCTL_WIRED_LIMIT_13, 1)):
        text = runner(cmd)
        values = sysctl_values(text or "")
        if not values:
            continue
        name = cmd[-1]
        if not values[0].isdigit():
            return (
                None,
                f"sysctl {name}: unreadable value {clip(values[0])!r}; macOS's default GPU limit assumed",
            )
        raw = int(values[0])
        if raw == 0:
            return None, (
                f"sysctl {name} = 0: macOS's default GPU memory limit applies (about 2/3 to 3/4 of RAM); "
                f"raise it with 'sudo sysctl iogpu.wired_limit_mb=N'"
            )
        mib = raw * unit // MIB
        return mib, f"sysctl {name} = {raw}: the GPU may wire up to {mib} MiB (set by the user)"
    return None, "sysctl iogpu.wired_limit_mb: not readable; macOS's default GPU memory limit assumed"


def gib_text(n: int | None) -> str:
    return "unknown" if n is None else f"{n / GIB:.1f} GiB"
