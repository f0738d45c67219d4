"""What the GPU tools say: NVIDIA (NVML, nvidia-smi), AMD (amd-smi, rocm-smi), Intel (xpu-smi, the DRM
sysfs + lspci, sycl-ls) and Apple (sysctl), parsed into :class:`Found` GPUs, each failing soft
(:mod:`qwenfit.loaders.detect` runs them and matches what they found to the hardware catalog; the formats
are described in ``tests/fixtures/detect/README.md``).
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
    "AMD_SMI_METRIC", "AMD_SMI_STATIC", "DRM_CARDS", "INTEL_PCI_NAMES", "LSPCI", "NVIDIA_SMI", "ROCM_SMI",
    "SYCL_LS", "SYSCTL_APPLE", "SYSCTL_MEMSIZE", "SYSCTL_PERF_CORES", "SYSCTL_WIRED_LIMIT",
    "SYSCTL_WIRED_LIMIT_13", "TIMEOUT_S", "XPU_SMI_DISCOVERY", "AppleInfo", "Found", "amd_gpus",
    "amd_records", "apple_info", "brief", "clip", "command_text", "gib_text", "int_value", "intel_discrete",
    "intel_gpus", "intel_name", "load_json", "mib_value", "nvidia_gpus", "optional_import", "parse_lspci",
    "parse_sycl_ls", "read_text", "run_tool", "sysctl_values", "text_value", "wired_limit",
    "xpu_smi_detail", "xpu_smi_stats",
]  # fmt: skip

MIB = 1 << 20
GIB = 1 << 30

Runner = Callable[[list[str]], "str | None"]
FileReader = Callable[[str], "str | None"]

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


def run_tool(cmd: list[str]) -> str | None:
    """stdout of ``cmd``, or None when it is not installed, fails, or takes longer than TIMEOUT_S."""
    import subprocess

    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def optional_import(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except Exception:  # not installed, or broken (pynvml without its shared library): "not installed"
        return None


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


def load_json(text: str, tool: str, notes: list[str]) -> Any:
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


def amd_records(data: Any) -> list[Any] | None:
    """amd-smi's per-GPU records: a list (ROCm 6.x), the list under "gpu_data" (ROCm 7), or one record."""
    if isinstance(data, dict) and isinstance(data.get("gpu_data"), list):
        return cast(list[Any], data["gpu_data"])
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and "gpu" in data:
        return [data]
    return None


def mib_value(value: Any) -> int | None:
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
    records = amd_records(load_json(text, tool, notes))
    if records is None:
        return []
    gpus: list[Found] = []
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            notes.append(f"{tool}: GPU record {position} is not an object; ignored")
            continue
        asic: dict[str, Any] = record["asic"] if isinstance(record.get("asic"), dict) else {}
        name = text_value(asic.get("market_name"))
        if name is None:
            device_id = text_value(asic.get("device_id"))
            name = f"AMD GPU {device_id}" if device_id else f"AMD GPU {record.get('gpu', position)}"
        vram = record.get("vram")
        memory = None
        if isinstance(vram, dict):
            memory = mib_value(vram.get("size", vram.get("vram_size_mb", vram.get("vram_size"))))
        arch = text_value(asic.get("target_graphics_version"))
        gpus.append(Found(name, memory, "amd", tool, arch))
    return gpus


def _amd_smi_metric_memory(runner: Runner, gpus: list[Found], notes: list[str]) -> list[Found]:
    text = runner(AMD_SMI_METRIC)
    if text is None:
        return gpus
    records = amd_records(load_json(text, "amd-smi metric", notes)) or []
    totals: dict[int, int] = {}
    for position, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("mem_usage"), dict):
            continue
        index = record.get("gpu", position)
        total = mib_value(record["mem_usage"].get("total_vram"))
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
    data = load_json(text, tool, notes)
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
        name = text_value(fields.get("card series")) or text_value(fields.get("card sku"))
        model = text_value(fields.get("card model"))
        if name is None and model is not None and not model.lower().startswith("0x"):
            name = model
        name = name or f"AMD GPU {model or key}"
        raw = text_value(fields.get("vram total memory (b)"))
        if raw is None or not raw.isdigit() or int(raw) <= 0:
            notes.append(f"{tool}: {key} ({name}) has no usable 'VRAM Total Memory (B)' ({raw!r}); ignored")
            continue
        gpus.append(Found(name, int(raw), "amd", tool, text_value(fields.get("gfx version"))))
    return gpus


def text_value(value: Any) -> str | None:
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


# ---------------------------------------------------------------------------------------------------
# Intel (Arc / Xe): xpu-smi, the DRM sysfs + lspci -nn (Linux), sycl-ls

XPU_SMI_DISCOVERY = ["xpu-smi", "discovery", "-j"]
SYCL_LS = ["sycl-ls"]
LSPCI = ["lspci", "-nn"]
DRM_CARDS = 16  # /sys/class/drm/card0 .. card15 are looked at (numbers need not be contiguous)

# Intel discrete GPUs by PCI device id, names as pci.ids spells them (pciutils/pciids c1c12547,
# 2026-08-22): driver tools often print "Intel(R) Graphics [0xe211]" for a card the driver is too old
# to name, and older pci.ids name e20b "Battlemage G21 [Intel Graphics]".
INTEL_PCI_NAMES = {
    0x56A0: "Arc A770", 0x56A1: "Arc A750", 0x56A2: "Arc A580", 0x56A5: "Arc A380", 0x56A6: "Arc A310",
    0x5690: "Arc A770M", 0x5691: "Arc A730M", 0x5692: "Arc A550M", 0x5693: "Arc A370M",
    0x5694: "Arc A350M", 0x5696: "Arc A570M", 0x5697: "Arc A530M", 0x56B0: "Arc Pro A30M",
    0x56B1: "Arc Pro A40/A50", 0x56B2: "Arc Pro A60M", 0x56B3: "Arc Pro A60",
    0x56C0: "Data Center GPU Flex 170", 0x56C1: "Data Center GPU Flex 140", 0xE20B: "Arc B580",
    0xE20C: "Arc B570", 0xE211: "Arc Pro B60", 0xE212: "Arc Pro B50", 0xE222: "Arc Pro B65",
    0xE223: "Arc Pro B70",
}  # fmt: skip
# discrete families in pci.ids: DG2 / ATS-M (0x4f80-0x4f88, 0x5690-0x56ff), Ponte Vecchio (0x0bd0-0x0bdb),
# Battlemage (0xe200-0xe2ff); every other Intel display device is integrated (it shares system RAM)
_INTEL_DISCRETE = ((0x4F80, 0x4F88), (0x5690, 0x56FF), (0x0BD0, 0x0BDB), (0xE200, 0xE2FF))


def xpu_smi_detail(device_id: int) -> list[str]:
    return ["xpu-smi", "discovery", "-d", str(device_id), "-j"]


def xpu_smi_stats(device_id: int) -> list[str]:
    return ["xpu-smi", "stats", "-d", str(device_id), "-j"]


def intel_discrete(pci_id: int | None, slot: str | None = None) -> bool | None:
    """False for Intel's integrated GPU (always at PCI 00:02.0), True for a discrete family's PCI id,
    None when neither tells."""
    if slot is not None and slot.strip().lower().endswith("00:02.0"):
        return False
    return None if pci_id is None else any(lo <= pci_id <= hi for lo, hi in _INTEL_DISCRETE) or None


def intel_name(name: str | None, pci_id: int | None) -> str:
    """A lookup name; pci.ids' model for a generic one ("Intel(R) Graphics [0xe211]": "Intel Arc Pro B60")."""
    generic = name is None or re.fullmatch(r"(?i)(intel(\(r\))? )?graphics( \[0x[0-9a-f]+\])?|device", name)
    in_name = re.search(r"\[0x([0-9a-f]{3,4})\]", name or "", re.IGNORECASE)
    pci_id = pci_id if pci_id is not None or in_name is None else int(in_name.group(1), 16)
    if generic and pci_id in INTEL_PCI_NAMES:
        return f"Intel {INTEL_PCI_NAMES[pci_id]}"
    if generic and pci_id is not None:
        return f"Intel GPU [8086:{pci_id:04x}]"
    return name or "Intel GPU"


def int_value(value: Any, base: int = 10) -> int | None:
    text = text_value(value)
    if text is None:
        return None
    try:
        return int(text, 16 if text.lower().startswith("0x") else base)
    except ValueError:
        return None


def intel_gpus(
    runner: Runner, reader: FileReader, linux: bool, notes: list[str], tried: list[str]
) -> list[Found]:
    """Discrete Intel GPUs: xpu-smi, else (Linux) the DRM sysfs named by lspci -nn, else sycl-ls."""
    gpus = _xpu_smi_gpus(runner, notes, tried)
    if gpus and all(g.memory_bytes is not None for g in gpus):
        return gpus
    if linux:
        drm = _drm_gpus(runner, reader, notes, tried)
        if drm:
            return drm
    return gpus or _sycl_ls_gpus(runner, notes, tried)


def _keep_intel(name: str, pci_id: int | None, slot: str | None, tool: str, notes: list[str]) -> bool:
    if intel_discrete(pci_id, slot) is False:
        notes.append(f"{tool}: {name} at {slot or '?'} is integrated (shares system RAM): not planned for")
        return False
    return True


def _xpu_smi_gpus(runner: Runner, notes: list[str], tried: list[str]) -> list[Found]:
    tool = "xpu-smi"
    text = runner(XPU_SMI_DISCOVERY)
    if text is None:
        tried.append("xpu-smi: no answer")
        return []
    data = load_json(text, tool, notes)
    records = data.get("device_list") if isinstance(data, dict) else None
    if not isinstance(records, list):
        tried.append("xpu-smi: no device_list in its answer")
        return []
    gpus: list[Found] = []
    for position, record in enumerate(records):
        kind = str(record.get("device_type", "GPU")).upper() if isinstance(record, dict) else ""
        if "GPU" not in kind or str(record.get("device_function_type", "")).lower() == "virtual":
            continue
        pci_id = int_value(record.get("pci_device_id"), 16)
        name = intel_name(text_value(record.get("device_name")), pci_id)
        slot = "00:02.0" if "INTEGRATED" in kind else text_value(record.get("pci_bdf_address"))  # xpu-smi 2
        if not _keep_intel(name, pci_id, slot, tool, notes):
            continue
        memory = int_value(record.get("memory_physical_size_byte"))
        if memory is None and isinstance(index := record.get("device_id", position), int):
            detail = load_json(runner(xpu_smi_detail(index)) or "", tool, notes)
            memory = int_value(detail.get("memory_physical_size_byte")) if isinstance(detail, dict) else None
        gpus.append(Found(name, memory if memory else None, "intel", tool))
    return gpus


def _drm_gpus(runner: Runner, reader: FileReader, notes: list[str], tried: list[str]) -> list[Found]:
    cards: list[tuple[int | None, str | None, int | None]] = []  # (pci id, slot, bytes) per Intel card
    for n in range(DRM_CARDS):
        base = f"/sys/class/drm/card{n}"
        if int_value(reader(f"{base}/device/vendor"), 16) != 0x8086:
            continue
        tiles = [int_value(reader(f"{base}/device/tile{t}/physical_vram_size_bytes")) for t in range(4)]  # xe
        memory = sum(t for t in tiles if t) or None
        for path in (f"{base}/lmem_total_bytes", f"{base}/device/lmem_total_bytes"):  # i915 (DKMS)
            memory = memory or int_value(reader(path)) or None
        found = re.search(r"^PCI_SLOT_NAME=(\S+)", reader(f"{base}/device/uevent") or "", re.MULTILINE)
        cards.append((int_value(reader(f"{base}/device/device"), 16), found[1] if found else None, memory))
    if not cards:
        tried.append("sysfs: no Intel card under /sys/class/drm")
        return []
    names = parse_lspci(runner(LSPCI) or "")
    gpus: list[Found] = []
    for pci_id, slot, memory in cards:
        name = intel_name(names.get(pci_id or 0), pci_id)
        if not _keep_intel(name, pci_id, slot, "sysfs", notes):
            continue
        if memory is None:
            notes.append(f"sysfs: {name} publishes no VRAM size (mainline i915 has none)")
        gpus.append(Found(name, memory, "intel", "sysfs"))
    return gpus


_LSPCI_LINE = re.compile(r"\S+ (?:VGA compatible|Display|3D) controller \[03\d\d\]: (.*) \[8086:(\w{4})\]")


def parse_lspci(text: str) -> dict[int, str]:
    """Intel display controllers' names by PCI device id from ``lspci -nn``:
    ``03:00.0 VGA compatible controller [0300]: Intel Corporation DG2 [Arc A770] [8086:56a0] (rev 08)``."""
    names: dict[int, str] = {}
    for line in text.splitlines():
        match = _LSPCI_LINE.match(line)
        if match is None:
            continue
        name = match.group(1).removeprefix("Intel Corporation").strip()
        generic = re.fullmatch(r".*\[Intel Graphics\]|Device", name)
        names[int(match.group(2), 16)] = "Device" if generic else name
    return names


def parse_sycl_ls(text: str) -> list[str]:
    """GPU names from ``sycl-ls``: Level Zero devices, else OpenCL ones (each GPU is listed under both)."""
    by_backend: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = re.match(r"\s*\[([\w:]+)\](?:\[[\w:]+\])?\s*[^,]*, (.+)", line)
        if match is None or "gpu" not in match.group(1).split(":"):
            continue
        name = re.sub(r"\s*\[[^\]]*\]\s*$", "", match.group(2))  # "[1.3.28044]": the driver version
        name = re.sub(r"\s+(OpenCL \d.*|\d+(\.\d+)+)$", "", name)  # "OpenCL 3.0 NEO", "1.3", "30.0.4"
        backend = "level_zero" if "level_zero" in match.group(1) else match.group(1).split(":")[0]
        by_backend.setdefault(backend, []).append(name)
    return by_backend.get("level_zero") or by_backend.get("opencl") or []


def _sycl_ls_gpus(runner: Runner, notes: list[str], tried: list[str]) -> list[Found]:
    text = runner(SYCL_LS)
    if text is None:
        tried.append("sycl-ls: no answer")
        return []
    names = [n for n in parse_sycl_ls(text) if "intel" in n.lower()]
    if not names:
        tried.append("sycl-ls: no Intel GPU in its answer")
    return [Found(n, None, "intel", "sycl-ls") for n in names]
