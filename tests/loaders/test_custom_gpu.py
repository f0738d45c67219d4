"""``custom:<memory>[:<bandwidth>][:<vendor>][:<arch>]``: a GPU the catalog does not have, built as
``custom_machine`` builds its device."""

from __future__ import annotations

import pytest

from qwenfit.core.hardware import VENDORS, Device
from qwenfit.errors import UnknownHardwareError
from qwenfit.loaders.custom_gpu import CUSTOM_GPU_FORMAT, parse_custom_gpu
from qwenfit.loaders.hardware import custom_machine

GB = 10**9
GIB = 1 << 30


@pytest.mark.parametrize(
    ("spec", "memory", "bandwidth", "vendor", "arch", "backends"),
    [
        ("custom:24GB:936GBps", 24 * GB, 936.0, "nvidia", None, ("cuda",)),
        ("custom:24GB", 24 * GB, 0.0, "nvidia", None, ("cuda",)),
        ("custom:16GiB:448GB/s:amd", 16 * GIB, 448.0, "amd", None, ("rocm",)),
        ("custom:12GB:360GBps:nvidia:8.6", 12 * GB, 360.0, "nvidia", "8.6", ("cuda",)),
        ("custom:24", 24 * GB, 0.0, "nvidia", None, ("cuda",)),  # a bare number is decimal GB, as vram_gb
        ("custom:8GB:gfx1100", 8 * GB, 0.0, "amd", "gfx1100", ("rocm",)),  # a gfx target says AMD
        ("custom:96GB:1.8TB/s", 96 * GB, 1800.0, "nvidia", None, ("cuda",)),
        ("custom:12GB:intel:456GBps", 12 * GB, 456.0, "intel", None, ("sycl",)),  # any order after memory
        ("CUSTOM: 24 GB : 936 GB/s", 24 * GB, 936.0, "nvidia", None, ("cuda",)),
        ("custom:0.5TiB:sm_90", 1 << 39, 0.0, "nvidia", "9.0", ("cuda",)),
    ],
)
def test_parse_custom_gpu(spec, memory, bandwidth, vendor, arch, backends):
    dev = parse_custom_gpu(spec)
    assert (dev.memory_bytes, dev.bandwidth_gbps, dev.vendor, dev.compute_capability, dev.backends) == (
        memory,
        bandwidth,
        vendor,
        arch,
        backends,
    )
    assert dev.id == "custom" and dev.kind == "gpu" and dev.memory_exact is False and dev.fp16_tflops == 0.0
    assert dev.usable_bytes == memory  # budgeted as given: no NVIDIA driver reserve taken off


def test_same_device_as_custom_machine():
    # custom_machine(vram_gb=24, bandwidth_gbps=936) builds the device this spec describes; only the
    # name and source (which say where it came from) differ
    (theirs,) = custom_machine(vram_gb=24, ram_gb=None, bandwidth_gbps=936.0).devices
    ours = parse_custom_gpu("custom:24GB:936GBps")
    strip = {"name": "", "source": ""}
    assert Device(**{**_fields(ours), **strip}) == Device(**{**_fields(theirs), **strip})
    assert ours.name == "custom 24 GB, 936 GB/s" and "custom:24GB:936GBps" in ours.source


def _fields(dev: Device) -> dict[str, object]:
    return {name: getattr(dev, name) for name in Device.__dataclass_fields__}


def test_apple_is_unified():
    dev = parse_custom_gpu("custom:64GB:400GBps:apple")
    assert dev.kind == "unified" and dev.unified and dev.backends == ("metal",)


@pytest.mark.parametrize(
    ("spec", "part"),
    [
        ("gpu:24GB", "gpu"),
        ("custom", "custom"),
        ("custom:", ""),
        ("custom:24XB", "24XB"),
        ("custom:0GB", "0GB"),
        ("custom:2000TB", "2000TB"),
        ("custom:24GB:936", "936"),  # no unit: not guessed
        ("custom:24GB:foo", "foo"),
        ("custom:24GB::", ""),
        ("custom:24GB:1GBps:2GBps", "2GBps"),
        ("custom:24GB:nvidia:amd", "amd"),
        ("custom:24GB:0GBps", "0GBps"),
        ("custom:24GB:nvidia:gfx1100", "gfx1100"),
        ("custom:24GB:amd:8.6", "8.6"),
    ],
)
def test_errors_name_the_part_and_show_the_format(spec, part):
    with pytest.raises(UnknownHardwareError) as info:
        parse_custom_gpu(spec)
    message = str(info.value)
    assert f"{part!r}" in message and CUSTOM_GPU_FORMAT in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, LookupError)


def test_vendors_come_from_core_hardware():
    assert all(v in CUSTOM_GPU_FORMAT for v in VENDORS)
    for vendor in VENDORS:
        assert parse_custom_gpu(f"custom:16GB:{vendor}").vendor == vendor
