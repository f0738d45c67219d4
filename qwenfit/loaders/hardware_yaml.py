"""Reading and validating ``data/hardware.yaml``: pydantic models of its records (unknown keys are
errors, and errors name the record id and the field), the cross-record rules (unique ids, unique
aliases), the JSON Schema, and the conversion to the stdlib dataclasses of :mod:`qwenfit.core.hardware`.
pydantic and PyYAML are imported only here, only when the file is read.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Literal, NamedTuple

from qwenfit.core.hardware import Device, HostMemory
from qwenfit.errors import ConfigError

__all__ = [
    "ID_PATTERN", "Backend", "HardwareCatalog", "Kind", "Vendor", "close_matches", "hardware_schema",
    "hardware_yaml_path", "load_records",
]  # fmt: skip

# The allowed values of core/hardware.py (VENDORS, KINDS, BACKENDS), spelled as Literals so the
# JSON Schema lists them; tests/loaders/test_hardware.py checks they stay equal to the core tuples.
Vendor = Literal["nvidia", "amd", "apple", "intel"]
Kind = Literal["gpu", "unified"]
Backend = Literal["cuda", "rocm", "metal", "vulkan", "sycl", "cpu"]

ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


class HardwareCatalog(NamedTuple):
    """A validated catalog: devices and host-RAM profiles by id, in file order."""

    devices: dict[str, Device]
    hosts: dict[str, HostMemory]


def close_matches(word: str, possibilities: list[str], *, n: int, cutoff: float = 0.6) -> list[str]:
    """``difflib.get_close_matches``, importing difflib only when a misspelling is answered."""
    import difflib

    return difflib.get_close_matches(word, possibilities, n=n, cutoff=cutoff)


def hardware_yaml_path() -> Path:
    """``hardware.yaml`` in qwenfit's data directory (inside the wheel, or ``data/`` in a checkout)."""
    from qwenfit.loaders.catalog import data_dir

    return data_dir() / "hardware.yaml"


@functools.lru_cache(maxsize=1)
def _models() -> Any:
    """The pydantic models of the YAML file (built on first use: pydantic is imported lazily)."""
    from typing import Annotated

    from pydantic import BaseModel, ConfigDict, Field, model_validator

    name_str = Annotated[str, Field(min_length=1)]

    class DeviceRecord(BaseModel):
        """One accelerator: the fields of qwenfit.core.hardware.Device."""

        model_config = ConfigDict(extra="forbid", frozen=True)

        id: str = Field(pattern=ID_PATTERN, description="catalog key, lower-case kebab: rtx-4090, m4-max-128")
        name: name_str = Field(
            description="name the driver reports (nvidia-smi, rocm-smi, sysctl brand string)"
        )
        vendor: Vendor
        kind: Kind = Field(description="unified: the GPU shares system RAM (Apple, Strix Halo, GB10, Jetson)")
        memory_bytes: int = Field(
            gt=0, description="driver-reported bytes if memory_exact, else nominal GiB x 2^30"
        )
        memory_exact: bool = Field(description="true only for a driver-reported figure whose source is cited")
        bandwidth_gbps: float = Field(gt=0, description="peak memory bandwidth, decimal GB/s")
        fp16_tflops: float | None = Field(
            gt=0, description="dense FP16/BF16 tensor TFLOPS, FP32 accumulate; null: no sourced figure"
        )
        fp8_tflops: float | None = Field(
            default=None, gt=0, description="dense FP8 TFLOPS; null: none/unsourced"
        )
        fp4_tflops: float | None = Field(
            default=None, gt=0, description="dense FP4 TFLOPS; null: none/unsourced"
        )
        interconnect: str | None = Field(
            default=None, pattern=ID_PATTERN, description="pcie4-x16, nvlink4, ..."
        )
        interconnect_gbps: float | None = Field(default=None, gt=0, description="GB/s per direction")
        backends: tuple[Backend, ...] = Field(min_length=1)
        compute_capability: str | None = Field(default=None, min_length=1, description='"8.9", "gfx1100"')
        tdp_w: int | None = Field(default=None, gt=0)
        aliases: tuple[name_str, ...] = ()
        source: name_str = Field(description="datasheet URL or other citation for the numbers")
        runtime_total_bytes: int | None = Field(
            default=None, gt=0,
            description="the device total the runtime's memory API reports (cudaMemGetInfo / "
            "torch.cuda.mem_get_info): what engines budget against",
        )  # fmt: skip
        runtime_total_source: str | None = Field(
            default=None, min_length=1, description="where runtime_total_bytes was printed"
        )

        @model_validator(mode="after")
        def _consistent(self) -> DeviceRecord:
            if (self.runtime_total_bytes is None) != (self.runtime_total_source is None):
                raise ValueError("runtime_total_bytes needs runtime_total_source (and the other way round)")
            if self.runtime_total_bytes is not None and self.runtime_total_bytes > self.memory_bytes:
                raise ValueError("runtime_total_bytes exceeds memory_bytes")
            if self.interconnect_gbps is not None and self.interconnect is None:
                raise ValueError("interconnect_gbps is set but interconnect is not: name the link")
            if len(set(self.backends)) != len(self.backends):
                raise ValueError(f"backends lists a backend twice: {list(self.backends)}")
            return self

    class HostRecord(BaseModel):
        """A host-RAM bandwidth profile: the fields of qwenfit.core.hardware.HostMemory."""

        model_config = ConfigDict(extra="forbid", frozen=True)

        id: str = Field(pattern=ID_PATTERN, description="ddr5-5600-2ch, lpddr5x-8000-256bit")
        name: name_str
        bandwidth_gbps: float = Field(gt=0, description="theoretical peak: channels x 8 B x MT/s, GB/s")
        effective_gbps: float = Field(gt=0, description="what a memory-bound decode reaches (STREAM-like)")
        source: name_str

        @model_validator(mode="after")
        def _consistent(self) -> HostRecord:
            if self.effective_gbps > self.bandwidth_gbps:
                peak, effective = self.bandwidth_gbps, self.effective_gbps
                raise ValueError(f"effective_gbps {effective:g} exceeds the peak bandwidth_gbps {peak:g}")
            return self

    class HardwareFile(BaseModel):
        """qwenfit's hardware catalog (data/hardware.yaml)."""

        model_config = ConfigDict(extra="forbid", frozen=True, title="qwenfit hardware catalog")

        devices: tuple[DeviceRecord, ...] = Field(min_length=1)
        host_memory: tuple[HostRecord, ...] = Field(min_length=1)

    return HardwareFile


def hardware_schema() -> dict[str, Any]:
    """The JSON Schema of ``hardware.yaml``, as ``scripts/gen_hardware_schema.py`` writes it."""
    schema: dict[str, Any] = _models().model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def load_records(path: str | os.PathLike[str]) -> HardwareCatalog:
    """Read and validate a hardware YAML file (uncached; :func:`hardware_catalog` caches the shipped one).

    Raises:
        ConfigError: the file is not valid YAML, a record has an unknown or missing key or a bad value
            (the message names the record id and the field), or two records share an id or an alias.
    """
    import importlib

    yaml: Any = importlib.import_module("yaml")  # PyYAML ships no type stubs; imported on first read
    path = Path(path)
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 5x faster
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {e}", source=str(path)) from None
    if not isinstance(raw, dict):
        raise ConfigError("must be a mapping with 'devices' and 'host_memory' lists", source=str(path))
    from pydantic import ValidationError

    try:
        parsed = _models().model_validate(raw)
    except ValidationError as e:
        raise _explain(e, raw, path) from None
    devices = {}
    for rec in parsed.devices:
        if rec.id in devices:
            raise ConfigError(
                "two device records have this id; ids must be unique",
                source=str(path),
                key=f"device {rec.id!r}.id",
            )
        devices[rec.id] = _to_device(rec)
    hosts = {}
    for rec in parsed.host_memory:
        if rec.id in hosts:
            raise ConfigError(
                "two host_memory records have this id; ids must be unique",
                source=str(path),
                key=f"host_memory {rec.id!r}.id",
            )
        hosts[rec.id] = HostMemory(
            id=rec.id,
            name=rec.name,
            bandwidth_gbps=float(rec.bandwidth_gbps),
            effective_gbps=float(rec.effective_gbps),
            source=rec.source,
        )
    return HardwareCatalog(devices, hosts)


def _to_device(rec: Any) -> Device:
    return Device(
        id=rec.id,
        name=rec.name,
        vendor=rec.vendor,
        kind=rec.kind,
        memory_bytes=rec.memory_bytes,
        memory_exact=rec.memory_exact,
        bandwidth_gbps=float(rec.bandwidth_gbps),
        fp16_tflops=float(rec.fp16_tflops) if rec.fp16_tflops is not None else 0.0,  # 0.0: unknown
        fp8_tflops=None if rec.fp8_tflops is None else float(rec.fp8_tflops),
        fp4_tflops=None if rec.fp4_tflops is None else float(rec.fp4_tflops),
        interconnect=rec.interconnect,
        interconnect_gbps=None if rec.interconnect_gbps is None else float(rec.interconnect_gbps),
        backends=tuple(rec.backends),
        compute_capability=rec.compute_capability,
        tdp_w=rec.tdp_w,
        aliases=tuple(rec.aliases),
        runtime_total_bytes=rec.runtime_total_bytes,
        runtime_total_source=rec.runtime_total_source or "",
        source=rec.source,
    )


def _explain(error: Any, raw: dict[str, Any], path: Path) -> ConfigError:
    """A ValidationError as one message that names each failing record by id, and its field."""
    problems: list[tuple[str, str]] = []
    for err in error.errors():
        loc = tuple(err["loc"])
        where = _where(loc, raw)
        msg = str(err["msg"])
        if err["type"] == "extra_forbidden" and loc:
            allowed = _allowed_keys(loc)
            close = close_matches(str(loc[-1]), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            msg = f"unknown key{hint}; allowed: {', '.join(allowed)}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        problems.append((where, msg))
    if len(problems) == 1:
        return ConfigError(problems[0][1], source=str(path), key=problems[0][0])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    listed = "; ".join(f"{where}: {msg}" for where, msg in problems[:5])
    return ConfigError(f"{len(problems)} problems: {listed}{more}", source=str(path))


def _where(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    if len(loc) >= 2 and loc[0] in ("devices", "host_memory") and isinstance(loc[1], int):
        section, index = loc[0], loc[1]
        items = raw.get(section)
        record = items[index] if isinstance(items, list) and index < len(items) else None
        rid = record.get("id") if isinstance(record, dict) else None
        label = "device" if section == "devices" else "host_memory"
        head = f"{label} {rid!r} ({section}[{index}])" if isinstance(rid, str) else f"{section}[{index}]"
        field = ".".join(str(p) for p in loc[2:])
        return f"{head}.{field}" if field else head
    return ".".join(str(p) for p in loc) or "top level"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    models = _models()
    if len(loc) == 1:
        return list(models.model_fields)
    record_model = models.model_fields[str(loc[0])].annotation.__args__[0]
    return list(record_model.model_fields)
