"""The hardware catalog: ``data/hardware.yaml`` -> :class:`Device` / :class:`HostMemory`, lookups, machines.

Every number comes from the YAML, where each record cites its source (datasheet, whitepaper,
driver output; see the conventions at the top of that file). This module validates the file at the
edge with pydantic (unknown keys are errors, and errors name the record id and the field), checks
the cross-record rules (unique ids, unique aliases), converts the records to the stdlib dataclasses
of :mod:`qwenfit.core.hardware`, and answers lookups by id, alias or the name a driver reports
(``nvidia-smi``, ``rocm-smi``, ``sysctl machdep.cpu.brand_string``).

pydantic and PyYAML are imported only when the catalog is first read, and the parsed catalog is
cached, so ``import qwenfit`` stays light.

Units follow ARCHITECTURE.md: bytes are ``int``; ``*_gb`` arguments are decimal gigabytes (1e9 bytes);
bandwidths are decimal GB/s; compute is dense TFLOPS.
"""

import dataclasses
import functools
import json
import math
import os
import re
from collections.abc import Sequence
from typing import NamedTuple

from qwenfit.core.hardware import Device, HostMemory, Machine
from qwenfit.errors import ConfigError, UnknownHardwareError
from qwenfit.loaders.hardware_yaml import (
    HardwareCatalog,
    close_matches,
    hardware_yaml_path,
    load_records,
)
from qwenfit.loaders.stamps import sha256, verified

__all__ = [
    "DEFAULT_HOST_ID",
    "MAX_DEVICES",
    "HardwareCatalog",
    "custom_mac",
    "custom_machine",
    "default_host",
    "device",
    "find_device",
    "hardware_catalog",
    "hardware_yaml_path",
    "host_profiles",
    "load_hardware",
    "parse_machine",
]

GB = 10**9
GIB = 1 << 30

# The host RAM assumed when the user says nothing: dual-channel DDR5-5600, the common desktop of
# 2024-2026 (2 x 8 B x 5600 MT/s = 89.6 GB/s peak); see its record in data/hardware.yaml.
DEFAULT_HOST_ID = "ddr5-5600-2ch"
# The default host profile for a memory kind named without speed ("ddr4", "ddr5", "lpddr5x").
_DEFAULT_HOST_BY_KIND = {"ddr4": "ddr4-3200-2ch", "ddr5": DEFAULT_HOST_ID, "lpddr5x": "lpddr5x-8533-128bit"}
MAX_DEVICES = 64  # the largest device count a machine spec may ask for

# Words a driver or a user may put around a model name: dropped from the front of a lookup name
# ("NVIDIA GeForce RTX 4090" -> "rtx 4090"), and "graphics"/"gpu" from its end.
_VENDOR_WORDS = frozenset({"nvidia", "geforce", "amd", "radeon", "intel", "apple", "tesla"})
_TRAILING_WORDS = frozenset({"graphics", "gpu"})


# ---------------------------------------------------------------------------------------------------
# the cached catalog and its index


def load_hardware(path: str | os.PathLike[str]) -> HardwareCatalog:
    """Read and validate a hardware YAML file (:func:`qwenfit.loaders.hardware_yaml.load_records`),
    and check that every alias names one record and collides with no other id or name."""
    cat = load_records(path)
    _build_index(cat.devices, source=str(path))  # raises on alias collisions
    return cat


@functools.lru_cache(maxsize=1)
def _catalog() -> HardwareCatalog:
    """The shipped catalog: from ``hardware.json`` (the validated YAML, compiled by
    ``scripts/gen_hardware_schema.py``) when it was made from the current YAML (its SHA-256
    matches), else by validating the YAML (pydantic + PyYAML cost ~0.2 s at CLI start-up)."""
    yaml_path = hardware_yaml_path()
    compiled = yaml_path.with_suffix(".json")
    if compiled.exists():
        data = json.loads(compiled.read_text(encoding="utf-8"))
        expected = data.get("yaml_sha256")  # the YAML hashed only when edited since the last match
        if isinstance(expected, str) and verified(compiled, expected, [yaml_path], lambda: sha256(yaml_path)):
            devices = {
                d["id"]: Device(**{**d, "backends": tuple(d["backends"]), "aliases": tuple(d["aliases"])})
                for d in data["devices"]
            }
            hosts = {h["id"]: HostMemory(**h) for h in data["hosts"]}
            return HardwareCatalog(devices, hosts)
    return load_hardware(yaml_path)


def compiled_catalog_json() -> str:
    """``hardware.json``: the validated YAML as plain records, with the YAML's SHA-256."""
    path = hardware_yaml_path()
    cat = load_hardware(path)
    data = {
        "generated_by": "scripts/gen_hardware_schema.py from hardware.yaml (do not edit)",
        "yaml_sha256": sha256(path),
        "devices": [dataclasses.asdict(d) for d in cat.devices.values()],
        "hosts": [dataclasses.asdict(h) for h in cat.hosts.values()],
    }
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def hardware_catalog() -> dict[str, Device]:
    """Every catalog device by id (a copy; the parsed file is cached)."""
    return dict(_catalog().devices)


def host_profiles() -> dict[str, HostMemory]:
    """Every host-RAM bandwidth profile by id (a copy)."""
    return dict(_catalog().hosts)


def _words(text: str) -> list[str]:
    """Lower-case words of a hardware name: "(R)", "(TM)" and -, _, /, commas dropped."""
    text = re.sub(r"\((?:r|tm)\)|[®™]", "", text.casefold())
    return re.sub(r"[\s\-_/,]+", " ", text).split()


def _key(text: str) -> str:
    return "".join(_words(text))


def _stripped_key(text: str) -> str:
    """The key without leading vendor words and trailing "graphics": "GeForce RTX 4090" -> "rtx4090"."""
    words = _words(text)
    while len(words) > 1 and words[0] in _VENDOR_WORDS:
        words = words[1:]
    while len(words) > 1 and words[-1] in _TRAILING_WORDS:
        words = words[:-1]
    return "".join(words)


def _family(dev: Device) -> str | None:
    """Memory options of a unified chip share an id stem: "m4-max-128" -> "m4-max"."""
    match = re.fullmatch(r"(.+)-\d+", dev.id)
    return match.group(1) if dev.unified and match else None


class _Index(NamedTuple):
    ids: dict[str, str]  # key(id) -> id
    keys: dict[str, tuple[str, ...]]  # key(alias | name | family) -> ids, file order
    words: dict[str, str]  # a readable spelling of each id, alias and name -> an id, for suggestions


def _build_index(devices: dict[str, Device], *, source: str) -> _Index:
    """Lookup keys, checking that an alias names one record and collides with no other id or name."""
    ids: dict[str, str] = {}
    for dev in devices.values():
        k = _key(dev.id)
        if k in ids:
            raise ConfigError(
                f"ids {ids[k]!r} and {dev.id!r} differ only in punctuation",
                source=source,
                key=f"device {dev.id!r}.id",
            )
        ids[k] = dev.id
    groups: dict[str, list[str]] = {}  # name and family keys: may name several memory options
    for dev in devices.values():
        for k in {_key(dev.name), _stripped_key(dev.name), _key(_family(dev) or "")} - {""}:
            groups.setdefault(k, []).append(dev.id)
    for k, members in groups.items():
        names = {_key(devices[m].name) for m in members}
        if len(names) > 1:
            raise ConfigError(
                f"name key {k!r} is shared by records with different names ({', '.join(members)}); "
                "only memory options of one chip may share a name",
                source=source,
                key=f"device {members[-1]!r}.name",
            )
        if k in ids and ids[k] not in members:
            raise ConfigError(
                f"the name of {members[0]!r} reads as the id {ids[k]!r}",
                source=source,
                key=f"device {members[0]!r}.name",
            )
    aliases: dict[str, str] = {}
    for dev in devices.values():
        for alias in dev.aliases:
            k = _key(alias)
            owner = ids.get(k) or aliases.get(k)
            clash = groups.get(k)
            if owner is not None and owner != dev.id:
                raise ConfigError(
                    f"alias {alias!r} is already the id or an alias of {owner!r}",
                    source=source,
                    key=f"device {dev.id!r}.aliases",
                )
            if clash is not None and clash != [dev.id]:
                raise ConfigError(
                    f"alias {alias!r} is already the name of {', '.join(clash)}",
                    source=source,
                    key=f"device {dev.id!r}.aliases",
                )
            aliases[k] = dev.id
    keys = {k: tuple(v) for k, v in groups.items()}
    keys.update({k: (v,) for k, v in aliases.items() if k not in ids})
    words: dict[str, str] = {}
    for dev in devices.values():
        for spelling in (dev.id, *dev.aliases, dev.name):
            words.setdefault(" ".join(_words(spelling)), dev.id)
    return _Index(ids, keys, words)


@functools.lru_cache(maxsize=1)
def _index() -> _Index:
    return _build_index(_catalog().devices, source=str(hardware_yaml_path()))


def _candidates(name: str) -> tuple[tuple[str, ...], bool]:
    """Record ids a name may mean, and whether it was an exact id (which memory does not override)."""
    index = _index()
    for k in dict.fromkeys((_key(name), _stripped_key(name))):
        if k in index.ids:
            return (index.ids[k],), True
        if k in index.keys:
            return index.keys[k], False
    return (), False


def _nearest(ids: tuple[str, ...], memory_bytes: int) -> Device:
    devices = _catalog().devices
    return min((devices[i] for i in ids), key=lambda d: abs(math.log(d.memory_bytes / memory_bytes)))


def find_device(name: str, memory_bytes: int | None = None) -> Device | None:
    """The catalog device a name means, or None.

    ``name`` is matched without regard to case, spaces, ``-``/``_``, "(R)"/"(TM)" or leading vendor
    words, against ids (``"rtx-4090"``, ``"RTX 4090"``), aliases (``"4090"``) and the names
    drivers report: ``nvidia-smi`` ("NVIDIA GeForce RTX 4090", "NVIDIA H100 80GB HBM3"), ``rocm-smi``
    ("AMD Radeon RX 7900 XTX") and macOS's brand string ("Apple M4 Max").

    Memory options of one chip (Apple Silicon, Strix Halo) share a name: ``memory_bytes`` (total RAM,
    e.g. ``sysctl hw.memsize``) picks the option nearest in size, so the returned record's memory may
    differ from ``memory_bytes``; without it an ambiguous name gives None. An exact id is returned as
    it is, whatever ``memory_bytes`` says.
    """
    if not isinstance(name, str) or not name.strip():
        return None
    ids, exact = _candidates(name)
    if not ids:
        return None
    if exact or len(ids) == 1:
        return _catalog().devices[ids[0]]
    if memory_bytes is None or memory_bytes <= 0:
        return None
    return _nearest(ids, memory_bytes)


def _suggest(name: str, n: int = 3) -> tuple[str, ...]:
    """Up to ``n`` catalog ids close to a misspelt name (difflib over ids, aliases and names)."""
    words = _index().words
    query = " ".join(_words(name))
    close = close_matches(query, list(words), n=n * 4, cutoff=0.6)
    if not close and query:
        close = [w for w in words if query in w or w in query]
    out: list[str] = []
    for w in close:
        if words[w] not in out:
            out.append(words[w])
    return tuple(out[:n])


def _unknown(name: str, spec: str | None = None) -> UnknownHardwareError:
    close = _suggest(name)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    where = f" in machine spec {spec!r}" if spec is not None and spec.strip() != name.strip() else ""
    return UnknownHardwareError(
        f"unknown hardware {name!r}{where}: not a catalog id, alias or driver name.{hint} "
        "For hardware not in the catalog, give its memory instead (--vram GB on the command line, "
        "vram_gb= in Python).",
        name=name,
        suggestions=close,
    )


def device(name: str, memory_bytes: int | None = None) -> Device:
    """Like :func:`find_device`, but raises instead of returning None.

    Raises:
        UnknownHardwareError: no record matches (``suggestions`` holds up to 3 close ids), or the name
            covers several memory options and no ``memory_bytes`` was given (``suggestions`` lists them).
    """
    found = find_device(name, memory_bytes)
    if found is not None:
        return found
    ids, _ = _candidates(name) if isinstance(name, str) else ((), False)
    if len(ids) > 1:
        raise UnknownHardwareError(
            f"{name!r} comes with several memory options ({', '.join(ids)}): name one, e.g. {ids[-1]!r}",
            name=name,
            suggestions=ids,
        )
    raise _unknown(str(name))


# ---------------------------------------------------------------------------------------------------
# machines

_COUNT_FIRST = re.compile(r"(\d+)\s*[x×*]\s*(.+)", re.IGNORECASE)
_COUNT_LAST = re.compile(r"(.+?)\s*[x×*]\s*(\d+)", re.IGNORECASE)
_CPU_ONLY = frozenset({"cpu", "cpuonly", "none"})


def _host(host: str | None) -> HostMemory | None:
    return None if host is None else _host_profile(host)


def _host_profile(host: str) -> HostMemory:
    hosts = _catalog().hosts
    key = host.strip().casefold()
    if key in hosts:
        return hosts[key]
    close = tuple(close_matches(key, list(hosts), n=3, cutoff=0.5))
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownHardwareError(
        f"unknown host memory profile {host!r}.{hint} Profiles: {', '.join(hosts)}.",
        name=host,
        suggestions=close,
    )


def _ram_bytes(ram_gb: float | None) -> int | None:
    if ram_gb is None:
        return None
    if (
        isinstance(ram_gb, bool)
        or not isinstance(ram_gb, (int, float))
        or not math.isfinite(ram_gb)
        or ram_gb <= 0
    ):
        raise UnknownHardwareError(
            f"ram_gb must be a positive number of GB, got {ram_gb!r}", name=str(ram_gb)
        )
    return round(ram_gb * GB)


def parse_machine(spec: str, *, ram_gb: float | None = None, host: str | None = None) -> Machine:
    """A machine from a spec: ``"rtx-4090"``, ``"2x rtx-3090"``, ``"rtx-3090x2"``, ``"4 x h100-sxm"``,
    ``"8xH200"``, ``"m4-max-128"``, or ``"cpu"`` for a machine without a GPU.

    The device part is anything :func:`find_device` understands; the count is 1 to 64 identical
    devices. ``ram_gb`` is the host RAM in decimal GB (1e9 bytes); on a unified-memory device the RAM
    *is* the device memory, so ``ram_gb`` is ignored there (with a note) and not added twice.
    ``host`` names a host-RAM profile (e.g. ``"ddr5-6000-2ch"``); None leaves the default to the planner
    (:func:`default_host`).

    Raises:
        UnknownHardwareError: an unknown device (with suggestions), a count outside 1..64, several
            unified-memory devices, an unknown host profile, or a spec that is not of these forms.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise UnknownHardwareError(
            "empty machine spec: give a catalog device such as 'rtx-4090', '2x rtx-3090' or 'm4-max-128'",
            name=str(spec),
        )
    text = spec.strip()
    ram_bytes = _ram_bytes(ram_gb)
    host_memory = _host(host)
    custom = re.fullmatch(r"(?:(\d+)\s*[x×*]\s*)?(custom:.+)", text, re.IGNORECASE)
    if custom:  # a GPU outside the catalog: custom:<memory>[:<bandwidth>][:<vendor>][:<arch>]
        from qwenfit.loaders.custom_gpu import parse_custom_gpu

        dev = parse_custom_gpu(custom.group(2))
        count = int(custom.group(1) or 1)
        if not 1 <= count <= MAX_DEVICES or (dev.unified and count > 1):
            what = "a unified-memory system is one machine" if dev.unified else f"1 to {MAX_DEVICES} GPUs"
            raise UnknownHardwareError(f"machine spec {spec!r}: {count} devices; {what}", name=spec)
        ram = dev.memory_bytes if dev.unified else ram_bytes
        return Machine(name=text, devices=(dev,) * count, ram_bytes=ram, host=host_memory)
    if _key(text) in _CPU_ONLY:
        return Machine(name="cpu", ram_bytes=ram_bytes, host=host_memory, notes=("no GPU: CPU only",))

    # readings, in order: the whole text is a device ("4090"), "N x device", "device x N"
    readings: list[tuple[str, str]] = [(text, "1")]
    first = _COUNT_FIRST.fullmatch(text)
    last = _COUNT_LAST.fullmatch(text)
    if first:
        readings.append((first.group(2), first.group(1)))
    if last:
        readings.append((last.group(1), last.group(2)))
    chosen = next(((part, count) for part, count in readings if _candidates(part)[0]), None)
    if chosen is None:  # suggest for the device part of "N x device", else for the whole text
        raise _unknown(first.group(2) if first else text, spec)
    part, count_text = chosen
    count = int(count_text)
    if not 1 <= count <= MAX_DEVICES:
        raise UnknownHardwareError(
            f"machine spec {spec!r}: {count} devices; the count must be 1 to {MAX_DEVICES}", name=spec
        )
    dev = device(part)
    notes: list[str] = []
    if dev.unified:
        if count > 1:
            raise UnknownHardwareError(
                f"machine spec {spec!r}: {dev.id} is a whole unified-memory system; several of them are "
                "several machines, which qwenfit does not plan together",
                name=spec,
            )
        if ram_bytes is not None and ram_bytes != dev.memory_bytes:
            notes.append(
                f"ram_gb={ram_gb:g} ignored: {dev.id} has unified memory "
                f"({dev.memory_bytes / GIB:g} GiB shared by CPU and GPU)"
            )
        ram_bytes = dev.memory_bytes
    name = dev.id if count == 1 else f"{count}x {dev.id}"
    return Machine(
        name=name, devices=(dev,) * count, ram_bytes=ram_bytes, host=host_memory, notes=tuple(notes)
    )


def mixed_machine(specs: Sequence[str], *, ram_gb: float | None = None, host: str | None = None) -> Machine:
    """One machine of GPUs of different kinds: ``["rtx-4090", "rtx-3060"]`` or ``["2x rtx-3090",
    "rtx-4090"]`` (each part as :func:`parse_machine` reads it). The GPUs keep their own memory (the
    planner budgets each on its own); a unified-memory system or ``cpu`` cannot be one of the parts.

    Raises:
        UnknownHardwareError: an unknown part, a unified or CPU-only part, more than 64 GPUs."""
    if isinstance(specs, str) or not specs:
        raise UnknownHardwareError("give the GPUs as a list of catalog names, e.g. ['rtx-4090', 'rtx-3060']",
                                   name=str(specs))  # fmt: skip
    if len(specs) == 1:
        return parse_machine(specs[0], ram_gb=ram_gb, host=host)
    devices: list[Device] = []
    for spec in specs:
        part = parse_machine(spec)
        if not part.devices or part.unified:
            what = "no GPU" if not part.devices else "a whole unified-memory system"
            raise UnknownHardwareError(
                f"{spec!r} cannot be one of several GPUs of a machine ({what}); give discrete GPUs, "
                "e.g. ['rtx-4090', 'rtx-3060']",
                name=spec,
            )
        devices.extend(part.devices)
    if len(devices) > MAX_DEVICES:
        raise UnknownHardwareError(
            f"{len(devices)} GPUs; a machine holds 1 to {MAX_DEVICES}", name=str(specs)
        )
    counts: dict[str, int] = {}
    for d in devices:
        counts[d.id] = counts.get(d.id, 0) + 1
    name = " + ".join(d if n == 1 else f"{n}x {d}" for d, n in counts.items())
    return Machine(name=name, devices=tuple(devices), ram_bytes=_ram_bytes(ram_gb), host=_host(host))


def custom_machine(
    *,
    vram_gb: float | None,
    ram_gb: float | None,
    n_gpus: int = 1,
    bandwidth_gbps: float | None = None,
    unified: bool = False,
    name: str | None = None,
    vendor: str = "nvidia",
    backends: tuple[str, ...] | None = None,
) -> Machine:
    """A machine from plain numbers, for hardware the catalog does not have.

    Args:
        vram_gb: memory of EACH GPU in decimal GB (``vram_gb=24, n_gpus=2`` is two 24e9-byte GPUs, 48e9
            in total). None or 0 with ``unified=False``: no GPU (CPU only).
        ram_gb: host RAM in decimal GB, or None (unknown). With ``unified=True`` it is the shared memory.
        n_gpus: number of identical GPUs, 1 to 64.
        bandwidth_gbps: the GPU's memory bandwidth in GB/s. None leaves it 0.0, which means unknown: the
            memory plan is unaffected and speed is not estimated (no invented default).
        unified: one device that shares system RAM (Apple-, Strix-Halo-, GB10-like): give its memory as
            ``vram_gb`` or ``ram_gb`` (the same number if both); it is not counted twice.
        name: the machine's name (default "custom ...").
        vendor, backends: what the custom device reports (default NVIDIA with CUDA; Apple gets Metal).

    The device's compute is unknown (``fp16_tflops=0.0``) and its memory nominal (``memory_exact=False``).

    Raises:
        UnknownHardwareError: a non-positive or non-finite size, a count outside 1..64, or an unknown
            vendor/backend.
    """
    from qwenfit.core.hardware import BACKENDS, VENDORS

    def positive(value: float | None, what: str) -> float | None:
        if value is None:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < 0:
            raise UnknownHardwareError(
                f"{what} must be a non-negative number, got {value!r}", name=str(value)
            )
        return float(value) if value > 0 else None

    vram = positive(vram_gb, "vram_gb")
    ram = positive(ram_gb, "ram_gb")
    bandwidth = positive(bandwidth_gbps, "bandwidth_gbps") or 0.0
    if isinstance(n_gpus, bool) or not isinstance(n_gpus, int) or not 1 <= n_gpus <= MAX_DEVICES:
        raise UnknownHardwareError(
            f"n_gpus must be an integer from 1 to {MAX_DEVICES}, got {n_gpus!r}", name=str(n_gpus)
        )
    if vendor not in VENDORS:
        raise UnknownHardwareError(f"vendor must be one of {', '.join(VENDORS)}, got {vendor!r}", name=vendor)
    if backends is None:
        backends = (
            ("metal",) if vendor == "apple" else {"amd": ("rocm",), "intel": ("sycl",)}.get(vendor, ("cuda",))
        )
    bad = [b for b in backends if b not in BACKENDS]
    if bad:
        raise UnknownHardwareError(
            f"unknown backend(s) {bad}: choose from {', '.join(BACKENDS)}", name=str(bad[0])
        )

    if unified:
        if vram is not None and ram is not None and round(vram * GB) != round(ram * GB):
            raise UnknownHardwareError(
                f"unified memory is one pool: vram_gb={vram_gb:g} and ram_gb={ram_gb:g} disagree; give one",
                name="unified",
            )
        size = vram if vram is not None else ram
        if size is None:
            raise UnknownHardwareError(
                "unified=True needs the memory size: give vram_gb (or ram_gb)", name="unified"
            )
        if n_gpus != 1:
            raise UnknownHardwareError(
                "a unified-memory machine has one device; n_gpus must be 1", name="unified"
            )
        memory = round(size * GB)
        dev = _custom_device(memory, bandwidth, "unified", vendor, tuple(backends))
        label = name or f"custom {size:g} GB unified"
        return Machine(name=label, devices=(dev,), ram_bytes=memory, notes=(f"{label}: from user numbers",))

    ram_bytes = None if ram is None else round(ram * GB)
    if vram is None:
        if n_gpus != 1:
            raise UnknownHardwareError(
                f"n_gpus={n_gpus} but no vram_gb: give each GPU's memory", name="custom"
            )
        label = name or (f"custom CPU only + {ram:g} GB RAM" if ram is not None else "custom CPU only")
        return Machine(name=label, ram_bytes=ram_bytes, notes=(f"{label}: from user numbers",))
    dev = _custom_device(round(vram * GB), bandwidth, "gpu", vendor, tuple(backends))
    gpus = f"{n_gpus}x {vram:g} GB" if n_gpus > 1 else f"{vram:g} GB"
    label = name or (f"custom {gpus} + {ram:g} GB RAM" if ram is not None else f"custom {gpus}")
    return Machine(
        name=label, devices=(dev,) * n_gpus, ram_bytes=ram_bytes, notes=(f"{label}: from user numbers",)
    )


def custom_mac(memory_gb: float) -> Machine:
    """A Mac the catalog does not name: ``memory_gb`` of unified memory (what a plain size means for
    an engine that runs on unified memory only, such as MLX)."""
    return custom_machine(
        vram_gb=None,
        ram_gb=memory_gb,
        unified=True,
        vendor="apple",
        name=f"custom Mac, {memory_gb:g} GB unified memory",
    )


def _custom_device(
    memory: int, bandwidth: float, kind: str, vendor: str, backends: tuple[str, ...]
) -> Device:
    return Device(
        id="custom",
        name=f"custom {memory / GB:g} GB",
        vendor=vendor,
        kind=kind,
        memory_bytes=memory,
        memory_exact=False,  # a nominal size the user gave
        bandwidth_gbps=bandwidth,  # 0.0: unknown
        fp16_tflops=0.0,  # unknown
        backends=backends,
        source="user-specified (custom_machine)",
        runtime_total_bytes=memory,  # the user's number is what they have: budgeted as given
        runtime_total_source="as given",
    )


def default_host(ram_kind: str | None = None) -> HostMemory:
    """The host-RAM profile assumed when the user names none.

    ``None``: dual-channel DDR5-5600 (89.6 GB/s peak), the common desktop of 2024-2026. A memory kind
    (``"ddr4"``, ``"ddr5"``, ``"lpddr5x"``) gives that kind's common desktop/laptop profile
    (DDR4-3200 dual channel, DDR5-5600 dual channel, LPDDR5X-8533 128-bit); a profile id gives that
    profile.

    Raises:
        UnknownHardwareError: an unknown kind or profile id.
    """
    if ram_kind is None:
        return host_profiles()[DEFAULT_HOST_ID]
    key = ram_kind.strip().casefold()
    return _host_profile(_DEFAULT_HOST_BY_KIND.get(key, key))
