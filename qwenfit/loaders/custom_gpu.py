"""A GPU the catalog does not have, from a spec: ``custom:<memory>[:<bandwidth>][:<vendor>][:<arch>]``.

``custom:24GB:936GBps``, ``custom:24GB``, ``custom:16GiB:448GB/s:amd``, ``custom:12GB:360GBps:nvidia:8.6``.
After the memory the parts may come in any order; each is recognised by its form:

* memory (first, required): a number with ``GB`` (decimal, 1e9 bytes) or ``GiB`` (2^30), or ``TB``/``TiB``;
  a bare number is decimal GB, as ``vram_gb`` is everywhere else;
* bandwidth: a number with ``GB/s``, ``GBps`` or ``TB/s``/``TBps`` (decimal); without it the bandwidth is
  unknown (0.0) and speed is not estimated, as in :func:`qwenfit.loaders.hardware.custom_machine`;
* vendor: one of ``qwenfit.core.hardware.VENDORS`` (default ``nvidia``); backends follow the vendor as in
  ``custom_machine`` (nvidia: cuda, amd: rocm, intel: sycl, apple: metal; an Apple device is unified);
* arch: an NVIDIA compute capability (``8.6``, or ``sm_86``) or an AMD gfx target (``gfx1100``), which
  also sets the vendor when none is given.

The device is built as ``custom_machine`` builds one: id ``"custom"``, nominal memory budgeted as given
(``runtime_total_bytes`` = memory), compute unknown (0.0).
"""

from __future__ import annotations

import math
import re

from qwenfit.core.hardware import VENDORS, Device
from qwenfit.errors import UnknownHardwareError

__all__ = ["CUSTOM_GPU_FORMAT", "parse_custom_gpu"]

CUSTOM_GPU_FORMAT = (
    "custom:<memory>[:<bandwidth>][:<vendor>][:<compute capability>], e.g. custom:24GB:936GBps, "
    "custom:16GiB:448GB/s:amd or custom:12GB:360GBps:nvidia:8.6 (memory in GB or GiB, bandwidth in GB/s, "
    f"vendor one of {', '.join(VENDORS)})"
)
_MEMORY_UNITS = {"": 10**9, "gb": 10**9, "gib": 1 << 30, "tb": 10**12, "tib": 1 << 40}
_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_MEMORY = re.compile(rf"{_NUMBER}\s*(gb|gib|tb|tib)?", re.IGNORECASE)
_BANDWIDTH = re.compile(rf"{_NUMBER}\s*(gb|tb)\s*(?:/s|ps)", re.IGNORECASE)
_CUDA_ARCH = re.compile(r"(?:sm_?)?(\d{1,2})\.?(\d)", re.IGNORECASE)
_GFX_ARCH = re.compile(r"gfx[0-9a-f]{3,4}", re.IGNORECASE)
_BACKENDS = {"nvidia": ("cuda",), "amd": ("rocm",), "intel": ("sycl",), "apple": ("metal",)}
_MAX_BYTES = 10**15  # 1 PB: anything larger is a typo


def _bad(spec: str, part: str, what: str) -> UnknownHardwareError:
    return UnknownHardwareError(
        f"custom GPU spec {spec!r}: {part!r} is not {what}. Format: {CUSTOM_GPU_FORMAT}", name=spec
    )


def parse_custom_gpu(spec: str) -> Device:
    """The :class:`~qwenfit.core.hardware.Device` a ``custom:...`` spec describes (module docstring).

    Raises:
        UnknownHardwareError: naming the part that is wrong (not ``custom:``, a missing or malformed memory
            size, a part that is no bandwidth, vendor or arch, a part given twice, an arch of another
            vendor, a size or bandwidth that is zero or absurd) and showing the format.
    """
    text = spec.strip() if isinstance(spec, str) else ""
    head, sep, rest = text.partition(":")
    if head.strip().casefold() != "custom" or not sep:
        raise _bad(str(spec), head or str(spec), "'custom' followed by ':'")
    parts = [p.strip() for p in rest.split(":")]
    if not parts[0]:
        raise _bad(text, parts[0], "a memory size")
    match = _MEMORY.fullmatch(parts[0])
    if match is None:
        raise _bad(text, parts[0], "a memory size (a number with GB or GiB)")
    value, unit = float(match.group(1)), (match.group(2) or "").lower()
    memory = round(value * _MEMORY_UNITS[unit])
    if not 0 < memory <= _MAX_BYTES:
        raise _bad(text, parts[0], "a positive memory size up to 1 PB")
    label = (
        f"{value:g} {'GiB' if unit == 'gib' else 'TiB' if unit == 'tib' else 'TB' if unit == 'tb' else 'GB'}"
    )

    bandwidth: float | None = None
    vendor: str | None = None
    arch: str | None = None
    for part in parts[1:]:
        kind, parsed = _classify(text, part)
        if {"bandwidth": bandwidth, "vendor": vendor, "arch": arch}[kind] is not None:
            raise _bad(text, part, f"a second {kind} (each part may be given once)")
        if kind == "bandwidth":
            bandwidth = float(parsed)
        elif kind == "vendor":
            vendor = parsed
        else:
            arch = parsed
    if arch is not None:
        arch_vendor = "amd" if arch.startswith("gfx") else "nvidia"
        if vendor is not None and vendor != arch_vendor:
            what = "an AMD gfx target" if arch_vendor == "amd" else "an NVIDIA compute capability"
            raise _bad(text, arch, f"for {vendor}: it is {what}")
        vendor = arch_vendor
    vendor = vendor or "nvidia"
    name = f"custom {label}" + (f", {bandwidth:g} GB/s" if bandwidth else "")
    return Device(
        id="custom",
        name=name,
        vendor=vendor,
        kind="unified" if vendor == "apple" else "gpu",
        memory_bytes=memory,
        memory_exact=False,  # a nominal size the user gave
        bandwidth_gbps=bandwidth or 0.0,  # 0.0: unknown
        fp16_tflops=0.0,  # unknown
        backends=_BACKENDS[vendor],
        compute_capability=arch,
        source=f"user-specified (custom GPU spec {text!r})",
        runtime_total_bytes=memory,  # the user's number is what they have: budgeted as given
        runtime_total_source="as given",
    )


def _classify(spec: str, part: str) -> tuple[str, str]:
    """("bandwidth" | "vendor" | "arch", its value as text) of one optional part."""
    if not part:
        raise _bad(spec, part, "a bandwidth, vendor or compute capability (an empty part)")
    if part.casefold() in VENDORS:
        return "vendor", part.casefold()
    if (match := _BANDWIDTH.fullmatch(part)) is not None:
        gbps = float(match.group(1)) * (1000 if match.group(2).lower() == "tb" else 1)
        if not 0 < gbps <= 100_000 or not math.isfinite(gbps):
            raise _bad(spec, part, "a positive bandwidth up to 100 TB/s")
        return "bandwidth", repr(gbps)
    if _GFX_ARCH.fullmatch(part):
        return "arch", part.lower()
    if (match := _CUDA_ARCH.fullmatch(part)) is not None and ("." in part or part[:2].lower() == "sm"):
        return "arch", f"{int(match.group(1))}.{match.group(2)}"
    if re.fullmatch(_NUMBER + r"\s*(gb|gib|mb|tb)?", part, re.IGNORECASE):
        raise _bad(spec, part, "a bandwidth: give its unit, e.g. 936GBps or 936GB/s")
    raise _bad(
        spec, part, f"a bandwidth (e.g. 936GBps), a vendor ({', '.join(VENDORS)}) or a compute capability"
    )
