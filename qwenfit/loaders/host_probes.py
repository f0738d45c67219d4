"""The host's RAM: how much is available now (:func:`host_memory_in_use`), what kind and speed it is, as a
bandwidth profile (:func:`detect_host_profile`), and a user's RAM spec (:func:`parse_ram_spec`).

Each probe fails soft, like :mod:`qwenfit.loaders.detect`: a missing tool or a tool that needs root
(``dmidecode``) gives no answer, a malformed one a note. Sources, in order:

* available: ``psutil.virtual_memory().available``; Linux ``/proc/meminfo`` ``MemAvailable`` (kernel
  3.14+; older kernels: ``MemFree + Buffers + Cached``, an estimate), capped by the cgroup's
  ``memory.max - memory.current``; macOS ``vm_stat`` (free + inactive + speculative + purgeable pages x its
  page size; ``Pages free`` already excludes the speculative ones, vm_stat prints ``free - speculative``)
  with ``sysctl -n hw.memsize`` as the total; Windows through psutil only.
* kind and speed: Linux ``dmidecode -t memory`` (root), else ``lshw -class memory``; macOS on Apple
  Silicon the chip's bandwidth (catalog), on Intel Macs ``system_profiler SPMemoryDataType -json``;
  Windows ``Get-CimInstance Win32_PhysicalMemory | Format-List`` (PowerShell), else ``wmic memorychip``.
  The configured speed wins over the rated one (XMP/EXPO off: a DDR5-6000 kit runs at 4800). Channels
  come from the slot labels ("P0 CHANNEL A", "ChannelB-DIMM0", "Controller1-DIMMB1"); without them one
  module is one channel, and more than two are assumed to be two per channel (a note says so). Every
  tool's "MHz" is the transfer rate (MT/s): SMBIOS stores MT/s, and older dmidecode printed it as MHz.

The profile is the catalog's (``qwenfit.loaders.hardware.host_profiles()``) when one has that kind, speed
and width, else one built the catalog's way: peak = channels x 8 B x MT/s (LPDDR: bus bytes x MT/s),
effective = the catalog default's effective/peak ratio (0.75).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from qwenfit.core.hardware import Device, HostMemory
from qwenfit.errors import UnknownHardwareError
from qwenfit.loaders.gpu_probes import (
    SYSCTL_APPLE,
    SYSCTL_MEMSIZE,
    brief,
    load_json,
    optional_import,
    read_text,
    run_tool,
    sysctl_values,
)

__all__ = [
    "DMIDECODE", "LSHW", "POWERSHELL_MEMORY", "SYSTEM_PROFILER", "VM_STAT", "WMIC_MEMORY", "HostMemoryState",
    "MemoryModule", "detect_host_profile", "host_memory_in_use", "parse_dmidecode", "parse_lshw",
    "parse_ram_spec", "parse_system_profiler", "parse_vm_stat", "parse_win32_memory", "profile_for",
]  # fmt: skip

Runner = Callable[[list[str]], "str | None"]
FileReader = Callable[[str], "str | None"]
KIB = 1 << 10

PROC_MEMINFO = "/proc/meminfo"
CGROUP_LIMITS = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # v1
)
VM_STAT = ["vm_stat"]
DMIDECODE = ["dmidecode", "-t", "memory"]
LSHW = ["lshw", "-class", "memory"]
SYSTEM_PROFILER = ["system_profiler", "SPMemoryDataType", "-json"]
_WIN32_FIELDS = "BankLabel,DeviceLocator,Capacity,DataWidth,SMBIOSMemoryType,Speed,ConfiguredClockSpeed"
POWERSHELL_MEMORY = [
    "powershell", "-NoProfile", "-NonInteractive", "-Command",
    f"Get-CimInstance Win32_PhysicalMemory | Format-List {_WIN32_FIELDS}",
]  # fmt: skip
WMIC_MEMORY = ["wmic", "memorychip", "get", _WIN32_FIELDS]

# SMBIOS type 17 "Memory Type" (DMTF DSP0134 3.7, table 76), as Win32_PhysicalMemory.SMBIOSMemoryType
_SMBIOS_TYPES = {24: "ddr3", 26: "ddr4", 27: "lpddr", 28: "lpddr2", 29: "lpddr3", 30: "lpddr4", 34: "ddr5",
                 35: "lpddr5"}  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# available memory


@dataclass(frozen=True, slots=True)
class HostMemoryState:
    """The host RAM when asked: total and available bytes (None: not known), where from, and notes."""

    total_bytes: int | None
    available_bytes: int | None
    source: str  # "psutil", "MemAvailable", "vm_stat", ...
    notes: tuple[str, ...] = ()


def host_memory_in_use(
    *,
    run: Runner | None = None,
    read_file: FileReader | None = None,
    env: str | None = None,
    psutil: Any = None,
) -> HostMemoryState | None:
    """The RAM available now (see the module docstring for the sources), or None when nothing answers.

    Arguments as in :func:`qwenfit.loaders.detect.detect`: a call given ``run`` or ``read_file`` is a replay
    and uses the installed psutil only when it is passed. ``available_bytes`` never exceeds the total nor a
    container's cgroup headroom. Never raises for what the system says.
    """
    import sys

    live = run is None and read_file is None
    runner = run if run is not None else run_tool
    reader = read_file if read_file is not None else read_text
    platform = env if env is not None else sys.platform
    psutil = psutil if psutil is not None or not live else optional_import("psutil")
    notes: list[str] = []
    state: HostMemoryState | None = None
    if psutil is not None:
        try:
            vm = psutil.virtual_memory()
            state = HostMemoryState(int(vm.total), int(vm.available), "psutil")
        except Exception as e:
            notes.append(f"psutil.virtual_memory() failed ({brief(e)})")
    if state is None and platform.startswith("linux"):
        state = _meminfo(reader(PROC_MEMINFO) or "", notes)
    if state is None and platform == "darwin":
        memsize = sysctl_values(runner(SYSCTL_MEMSIZE) or "")
        pages = parse_vm_stat(runner(VM_STAT) or "")
        if pages is not None:
            size = int(memsize[0]) if memsize and memsize[0].isdigit() else None
            state = HostMemoryState(size, pages, "vm_stat: free + inactive + speculative + purgeable pages")
    if state is None:
        if platform == "win32" and psutil is None:
            notes.append("RAM available: unknown on Windows without psutil (pip install 'qwenfit[detect]')")
        return HostMemoryState(None, None, "none", tuple(notes)) if notes else None
    if platform.startswith("linux") and state.available_bytes is not None:
        state = _cgroup_headroom(reader, state, notes)
    available, total = state.available_bytes, state.total_bytes
    if available is not None and total is not None:
        available = min(available, total)
    return HostMemoryState(total, available, state.source, (*state.notes, *notes))


def _meminfo(text: str, notes: list[str]) -> HostMemoryState | None:
    fields = {m[1]: int(m[2]) * KIB for m in re.finditer(r"^(\w+):\s*(\d+)\s*kB\s*$", text, re.MULTILINE)}
    if "MemAvailable" in fields:
        return HostMemoryState(fields.get("MemTotal"), fields["MemAvailable"], "MemAvailable")
    if {"MemFree", "Buffers", "Cached"} <= fields.keys():
        available = fields["MemFree"] + fields["Buffers"] + fields["Cached"]
        note = "/proc/meminfo has no MemAvailable (kernel < 3.14): MemFree + Buffers + Cached, an estimate"
        return HostMemoryState(fields.get("MemTotal"), available, "MemFree + Buffers + Cached", (note,))
    if text:
        notes.append("/proc/meminfo: no MemAvailable, MemFree, Buffers or Cached line")
    return None


def _cgroup_headroom(reader: FileReader, state: HostMemoryState, notes: list[str]) -> HostMemoryState:
    for limit_path, usage_path in CGROUP_LIMITS:
        limit, usage = (reader(limit_path) or "").strip(), (reader(usage_path) or "").strip()
        if limit.isdigit() and usage.isdigit() and int(limit) < (state.total_bytes or 1 << 62):
            headroom = max(int(limit) - int(usage), 0)
            if state.available_bytes is not None and headroom < state.available_bytes:
                notes.append(f"RAM available: capped by the cgroup ({limit_path} minus {usage_path})")
                return HostMemoryState(int(limit), headroom, f"cgroup {limit_path}", state.notes)
    return state


def parse_vm_stat(text: str) -> int | None:
    """Bytes available from ``vm_stat``: (free + inactive + speculative + purgeable pages) x page size."""
    size = re.search(r"page size of (\d+) bytes", text)
    pages = dict(re.findall(r"^Pages (\w[\w ]*?):\s+(\d+)\.?\s*$", text, re.MULTILINE))
    wanted = ("free", "inactive", "speculative", "purgeable")
    if size is None or not all(k in pages for k in wanted):
        return None
    return sum(int(pages[k]) for k in wanted) * int(size.group(1))


# ---------------------------------------------------------------------------------------------------
# kind and speed


@dataclass(frozen=True, slots=True)
class MemoryModule:
    """One populated memory module (or soldered package) as a tool described it."""

    kind: str | None  # "ddr5", "lpddr5", ... lower case
    mts: int | None  # transfer rate: configured, else rated
    width_bits: int | None  # data width
    channel: str | None  # a channel key from the slot labels ("P0:A"), None when they name none
    rated_mts: int | None = None


def detect_host_profile(
    *,
    run: Runner | None = None,
    env: str | None = None,
    unified: Device | None = None,
    profiles: Mapping[str, HostMemory] | None = None,
) -> tuple[HostMemory | None, tuple[str, ...]]:
    """This machine's host-RAM bandwidth profile, and notes; (None, notes) when no tool tells.

    ``unified``: the Apple Silicon device detected (its bandwidth is the RAM's); without it macOS asks
    ``sysctl`` for the chip. ``profiles``: the catalog's (default ``host_profiles()``). ``run``/``env`` as
    in :func:`qwenfit.loaders.detect.detect`.
    """
    import sys

    runner = run if run is not None else run_tool
    platform = env if env is not None else sys.platform
    notes: list[str] = []
    if platform == "darwin":
        chip = unified if unified is not None else _apple_chip(runner, notes)
        if chip is not None and chip.bandwidth_gbps > 0:
            return _unified_profile(chip, profiles), tuple(notes)
        tools = [(SYSTEM_PROFILER, parse_system_profiler)]
    elif platform == "win32":
        tools = [(POWERSHELL_MEMORY, parse_win32_memory), (WMIC_MEMORY, parse_win32_memory)]
    else:
        tools = [(DMIDECODE, parse_dmidecode), (LSHW, parse_lshw)]
    for cmd, parse in tools:
        text = runner(cmd)
        modules = parse(text) if text else []
        if not modules:
            why = "no memory module" if text else "no answer (not installed, or it needs root)"
            notes.append(f"{cmd[0]}: {why}")
            continue
        host, more = profile_for(modules, source=" ".join(cmd[:2]), profiles=profiles)
        notes.extend(more)
        if host is not None:
            return host, tuple(notes)
    return None, tuple(notes)


def _apple_chip(runner: Runner, notes: list[str]) -> Device | None:
    values = sysctl_values(runner(SYSCTL_APPLE) or "")
    if len(values) < 2 or not values[1].startswith("Apple") or not values[0].isdigit():
        return None
    try:
        from qwenfit.loaders.hardware import find_device

        return find_device(values[1], memory_bytes=int(values[0]))
    except Exception as e:
        notes.append(f"hardware catalog lookup of {values[1]!r} failed ({brief(e)})")
        return None


def _catalog(profiles: Mapping[str, HostMemory] | None) -> tuple[Mapping[str, HostMemory], float]:
    """The host profiles and the catalog default's effective/peak ratio."""
    from qwenfit.loaders.hardware import DEFAULT_HOST_ID, host_profiles

    hosts = profiles if profiles is not None else host_profiles()
    default = hosts.get(DEFAULT_HOST_ID)
    return hosts, (default.effective_gbps / default.bandwidth_gbps if default is not None else 0.75)


def _unified_profile(chip: Device, profiles: Mapping[str, HostMemory] | None) -> HostMemory:
    _, ratio = _catalog(profiles)
    peak = chip.bandwidth_gbps
    return HostMemory(
        id=f"{chip.id}-unified",
        name=f"{chip.name} unified memory",
        bandwidth_gbps=peak,
        effective_gbps=round(peak * ratio, 3),
        source=f"the chip's memory bandwidth (catalog device {chip.id!r}); effective = {ratio:g} x peak as "
        "the catalog's host profiles (assumed: the CPU cores alone may reach less)",
    )


def profile_for(
    modules: list[MemoryModule], *, source: str, profiles: Mapping[str, HostMemory] | None = None
) -> tuple[HostMemory | None, list[str]]:
    """The host profile of these modules (the catalog's, or built), and notes on what was assumed."""
    notes: list[str] = []
    speeds = [m.mts for m in modules if m.mts]
    if not speeds:
        return None, [f"{source}: {len(modules)} memory module(s) but no speed"]
    mts = min(speeds)  # the memory runs at its slowest module's rate
    kinds = Counter(m.kind for m in modules if m.kind)
    kind = kinds.most_common(1)[0][0] if kinds else None
    rated = [m.rated_mts for m in modules if m.rated_mts and m.mts and m.rated_mts > m.mts]
    if rated:
        notes.append(
            f"{source}: the RAM runs at {mts} MT/s, below its rated {max(rated)} MT/s (XMP/EXPO off?)"
        )
    by_channel: dict[str, int] = {}
    for m in modules:
        if m.channel is not None:
            by_channel[m.channel] = max(by_channel.get(m.channel, 0), m.width_bits or 64)
    if by_channel and all(m.channel is not None for m in modules):
        bits = sum(by_channel.values())
    else:
        n = len(modules) if len(modules) <= 2 else len(modules) // 2
        bits = sum(sorted((m.width_bits or 64 for m in modules), reverse=True)[:n])
        notes.append(
            f"{source}: slot labels name no channels: {len(modules)} module(s) taken as {n} channel(s)"
        )
    host = _profile(kind, mts, bits, f"detected by {source}", profiles)
    notes.append(
        f"host RAM: {len(modules)} module(s), {kind or 'unknown kind'} at {mts} MT/s, {bits}-bit bus"
    )
    return host, notes


def _profile(
    kind: str | None, mts: int, bits: int, how: str, profiles: Mapping[str, HostMemory] | None
) -> HostMemory:
    hosts, ratio = _catalog(profiles)
    channels = max(bits // 64, 1)
    lp = kind is not None and kind.startswith("lp")
    width = f"{bits}bit" if lp else f"{channels}ch"
    for candidate in [kind] if kind else ["ddr5", "ddr4", "lpddr5x"]:
        if f"{candidate}-{mts}-{width}" in hosts:
            return hosts[f"{candidate}-{mts}-{width}"]
    label = (kind or "ram").upper() if kind else "RAM"
    peak = bits / 8 * mts / 1000
    return HostMemory(
        id=f"{kind or 'ram'}-{mts}-{width}",
        name=f"{label}-{mts} {bits}-bit" if lp else f"{channels}-channel {label}-{mts}",
        bandwidth_gbps=round(peak, 3),
        effective_gbps=round(peak * ratio, 3),
        source=f"{how}: peak = {bits // 8} B x {mts} MT/s = {peak:g} GB/s (channels x 8 B x MT/s); "
        f"effective = {ratio:g} x peak, as the catalog's host profiles",
    )


def _mts(text: Any) -> int | None:
    match = re.match(r"\s*(\d+)\s*(?:MT/s|MHz)?\s*$", str(text or ""))
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


def _kind(text: Any) -> str | None:
    word = re.sub(r"[\s_-]", "", str(text or "")).lower()
    return word if re.fullmatch(r"(lp)?ddr\d+x?", word) else None


def _channel(*labels: Any) -> str | None:
    """A channel key from slot labels: "P0 CHANNEL A" -> "P0:A", "Controller1-DIMMB1" -> "Controller1:B"."""
    text = " ".join(str(label) for label in labels if label)
    match = (
        re.search(r"(?i)channel[\s_-]*([a-z0-9]+)", text)
        or re.search(r"(?i)(?<![a-z])CH[\s_]?([a-z])\d?(?![a-z])", text)
        or re.search(r"(?i)DIMM_?([a-z])\d", text)
    )
    if match is None:
        return None
    scope = re.findall(
        r"(?i)(?<![a-z])(?:p|cpu|proc\s?|socket\s?|node|mc|controller)\d+", text[: match.start()]
    )
    return ":".join([*(s.replace(" ", "").upper() for s in scope), match.group(1).upper()])


def _blocks(text: str, separator: str) -> list[dict[str, str]]:
    """``Key: value`` blocks split on blank lines (dmidecode, PowerShell Format-List)."""
    blocks = []
    for chunk in re.split(r"\n\s*\n", text):
        fields = {}
        for line in chunk.splitlines():
            key, sep, value = line.partition(separator)
            if sep:
                fields[key.strip()] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def parse_dmidecode(text: str) -> list[MemoryModule]:
    """Populated "Memory Device" (DMI type 17) records of ``dmidecode -t memory``."""
    modules = []
    for block in _blocks(text, ":"):
        size = block.get("Size", "")
        if "Type" not in block or not re.match(r"\d", size):  # "No Module Installed"
            continue
        rated = _mts(block.get("Speed"))
        configured = _mts(block.get("Configured Memory Speed", block.get("Configured Clock Speed")))
        width = re.match(r"(\d+) bits", block.get("Data Width", ""))
        channel = _channel(block.get("Bank Locator"), block.get("Locator"))
        modules.append(
            MemoryModule(
                _kind(block["Type"]), configured or rated, int(width[1]) if width else None, channel, rated
            )
        )
    return modules


def parse_lshw(text: str) -> list[MemoryModule]:
    """The ``*-bank`` entries of ``lshw -class memory`` (English output) that hold a module."""
    modules = []
    for chunk in re.split(r"\n\s*\*-", text):
        if not chunk.startswith("bank") or "[empty]" in chunk:
            continue
        fields = dict(re.findall(r"^\s*(\w+): (.*)$", chunk, re.MULTILINE))
        desc = fields.get("description", "")
        speed = re.search(r"(\d+) (?:MT/s|MHz)", desc) or re.match(r"(\d+)\s*MHz", fields.get("clock", ""))
        kind = next((_kind(w) for w in desc.split() if _kind(w)), None)
        width = re.match(r"(\d+) bits", fields.get("width", ""))
        mts = int(speed[1]) if speed else None
        modules.append(
            MemoryModule(kind, mts, int(width[1]) if width else None, _channel(fields.get("slot")), mts)
        )
    return modules


def parse_system_profiler(text: str) -> list[MemoryModule]:
    """Modules of ``system_profiler SPMemoryDataType -json`` (Intel Macs list ``_items`` with a speed;
    Apple Silicon gives only the kind, e.g. ``"dimm_type": "LPDDR5"``, so no module comes back)."""
    data = load_json(text, "system_profiler", [])
    modules = []
    for group in data.get("SPMemoryDataType", []) if isinstance(data, dict) else []:
        for item in group.get("_items", []) if isinstance(group, dict) else []:
            if not isinstance(item, dict) or str(item.get("dimm_size", "")).lower() in ("", "empty"):
                continue
            mts = _mts(str(item.get("dimm_speed", "")).replace(" ", ""))
            channel = _channel(item.get("_name"))
            modules.append(MemoryModule(_kind(item.get("dimm_type")), mts, 64, channel, mts))
    return modules


def parse_win32_memory(text: str) -> list[MemoryModule]:
    """Win32_PhysicalMemory from PowerShell ``Format-List`` (``Key : value`` blocks) or a ``wmic memorychip
    get ...`` table (columns aligned under their headers)."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if lines and " : " not in lines[0] and "Speed" in lines[0]:
        starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
        keys = lines[0].split()
        rows = [
            {k: line[a:b].strip() for k, a, b in zip(keys, starts, [*starts[1:], None], strict=True)}
            for line in lines[1:]
        ]
    else:
        rows = [{k.strip(): v for k, v in b.items()} for b in _blocks(text, " : ")]
    modules = []
    for row in rows:
        code = int(row["SMBIOSMemoryType"]) if row.get("SMBIOSMemoryType", "").isdigit() else None
        rated = _mts(row.get("Speed"))
        width = int(row["DataWidth"]) if row.get("DataWidth", "").isdigit() else None
        channel = _channel(row.get("BankLabel"), row.get("DeviceLocator"))
        kind = _SMBIOS_TYPES.get(code or 0)
        modules.append(
            MemoryModule(kind, _mts(row.get("ConfiguredClockSpeed")) or rated, width or None, channel, rated)
        )
    return [m for m in modules if m.mts]


# ---------------------------------------------------------------------------------------------------
# a user's RAM spec (--ram-speed)

_SPEC = re.compile(
    r"(?:(?P<kind>(?:lp)?ddr\d+x?)[\s_-]*)?(?P<mts>\d{3,5})\s*(?:mt/?s|mhz)?"
    r"(?:\s*(?:[x×*]\s*(?P<x>\d+)|[\s_-]*(?P<ch>\d+)\s*ch|[\s_-]*(?P<bits>\d+)\s*-?bit))?",
    re.IGNORECASE,
)
_SPEC_FORMAT = (
    "give [ddr4|ddr5|lpddr5x-]<MT/s>[x<channels> | -<N>ch | -<bits>bit], e.g. 'ddr5-6000', 'DDR4-3200x2', "
    "'6000', 'ddr5-4800-8ch', 'lpddr5x-8533-128bit', or a profile id"
)


def parse_ram_spec(spec: str, *, profiles: Mapping[str, HostMemory] | None = None) -> HostMemory:
    """A host-RAM profile from a user's spec (``--ram-speed``): a catalog profile id (``ddr5-6000-2ch``),
    ``ddr5-6000`` (2 channels unless said), ``DDR4-3200x2`` (x channels), ``6000`` (MT/s, 2 channels),
    ``ddr5-4800-8ch``, ``lpddr5x-8533`` (128-bit unless said) or ``lpddr5x-8000-256bit``. The catalog's
    profile when it has one, else one built the catalog's way.

    Raises:
        UnknownHardwareError: a spec of none of these forms, or a speed or width out of range.
    """
    hosts, _ = _catalog(profiles)
    text = spec.strip() if isinstance(spec, str) else ""
    if text.casefold() in hosts:
        return hosts[text.casefold()]
    match = _SPEC.fullmatch(text)
    if match is None:
        raise UnknownHardwareError(f"RAM spec {spec!r} is not understood: {_SPEC_FORMAT}", name=str(spec))
    kind = match["kind"].lower() if match["kind"] else None
    mts = int(match["mts"])
    if not 800 <= mts <= 20000:
        raise UnknownHardwareError(f"RAM spec {spec!r}: {mts} MT/s is out of range (800-20000)", name=spec)
    given = match["x"] or match["ch"]
    bits = int(match["bits"]) if match["bits"] else int(given) * 64 if given else 128  # LPDDR: 128-bit
    if not 16 <= bits <= 24 * 64 or bits % 16:
        raise UnknownHardwareError(
            f"RAM spec {spec!r}: a {bits}-bit bus is out of range (1 to 24 channels of 64 bits)", name=spec
        )
    return _profile(kind, mts, bits, f"from the RAM spec {spec!r}", profiles)
