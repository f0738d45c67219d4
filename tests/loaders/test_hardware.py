"""The hardware catalog (data/hardware.yaml): validation, lookups, machine specs, host profiles, schema."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import get_args

import pytest
import yaml

from qwenfit.core import hardware as core
from qwenfit.errors import ConfigError, QwenfitError, UnknownHardwareError
from qwenfit.loaders import hardware as hw
from qwenfit.loaders import hardware_yaml

REPO = Path(__file__).resolve().parents[2]
GIB = 1 << 30
MIB = 1 << 20

# ---------------------------------------------------------------------------------------------------
# the shipped catalog

REQUIRED_IDS = {
    # NVIDIA consumer
    "rtx-3060", "rtx-3090", "rtx-3090-ti", "rtx-4060-ti-16gb", "rtx-4070-ti-super", "rtx-4080", "rtx-4090",
    "rtx-5060-ti-16gb", "rtx-5070", "rtx-5070-ti", "rtx-5080", "rtx-5090",
    # NVIDIA workstation
    "rtx-a6000", "rtx-6000-ada", "rtx-pro-6000",
    # NVIDIA datacenter
    "t4", "l4", "l40s", "a10g", "a100-40gb-pcie", "a100-40gb-sxm", "a100-80gb-pcie", "a100-80gb-sxm",
    "h100-pcie", "h100-sxm", "h100-nvl", "h200", "b200", "gb200", "b300",
    # NVIDIA unified
    "dgx-spark", "jetson-agx-orin-64gb", "jetson-agx-thor",
    # AMD
    "rx-7900-xtx", "rx-7900-xt", "radeon-ai-pro-r9700", "mi250x", "mi300x", "mi325x", "mi355x",
    "strix-halo-32", "strix-halo-64", "strix-halo-128",
    # Apple: every generation and tier
    "m1-16", "m1-pro-32", "m1-max-64", "m1-ultra-128", "m2-24", "m2-pro-32", "m2-max-96", "m2-ultra-192",
    "m3-24", "m3-pro-36", "m3-max-128", "m3-ultra-512", "m4-32", "m4-pro-64", "m4-max-128", "m5-32",
    "m5-pro-64", "m5-max-128",
    # Intel
    "arc-a770-16gb", "arc-b580", "arc-pro-b60",
}  # fmt: skip


@pytest.fixture(scope="module")
def catalog() -> dict[str, core.Device]:
    return hw.hardware_catalog()


def test_catalog_has_every_required_device_and_60_or_more(catalog):
    assert len(catalog) >= 60
    assert set(catalog) >= REQUIRED_IDS, sorted(REQUIRED_IDS - set(catalog))
    vendors = {d.vendor for d in catalog.values()}
    assert vendors == set(core.VENDORS)
    assert {d.kind for d in catalog.values()} == set(core.KINDS)


def test_literals_match_the_core_tuples():
    assert get_args(hardware_yaml.Vendor) == core.VENDORS
    assert get_args(hardware_yaml.Kind) == core.KINDS
    assert get_args(hardware_yaml.Backend) == core.BACKENDS


def test_every_record_is_sourced_and_sane(catalog):
    for d in catalog.values():
        assert d.source.strip(), d.id
        assert d.name.strip(), d.id
        assert 4 * GIB <= d.memory_bytes <= 600 * GIB, d.id
        assert 50 <= d.bandwidth_gbps <= 10_000, d.id
        assert 0 <= d.fp16_tflops <= 5_000, d.id  # 0.0: no sourced figure
        for low in (d.fp8_tflops, d.fp4_tflops):
            assert low is None or low >= d.fp16_tflops, d.id  # lower precision is never slower
        assert d.backends and set(d.backends) <= set(core.BACKENDS), d.id
        assert (d.interconnect_gbps is None) or d.interconnect, d.id
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", d.id), d.id


def test_exact_memory_cites_the_driver_figure(catalog):
    exact = [d for d in catalog.values() if d.memory_exact]
    assert len(exact) >= 15
    for d in exact:
        if d.memory_bytes % MIB == 0:
            mib = d.memory_bytes // MIB
            assert re.search(rf"{mib} ?MiB", d.source), d.id
        else:
            assert str(d.memory_bytes) in d.source or f"{d.memory_bytes:,}" in d.source, d.id
    for d in catalog.values():
        if not d.memory_exact and d.id != "gb200":  # GB200: NVIDIA's 186 GB (decimal) per GPU
            assert d.memory_bytes % GIB == 0, f"{d.id}: nominal memory should be whole GiB"


def test_memory_and_dense_compute_known_values(catalog):
    rtx4090 = catalog["rtx-4090"]
    assert abs(rtx4090.memory_bytes / (24 * GIB) - 1) < 0.01
    assert rtx4090.memory_bytes == 24564 * MIB and rtx4090.memory_exact
    # dense, FP32 accumulate: not the 330 (FP16 accumulate) or 660 (sparse) marketing figures
    assert rtx4090.fp16_tflops == 165.2
    assert catalog["h100-sxm"].fp16_tflops == 989.5  # datasheet 1,979 is with sparsity
    assert catalog["h100-sxm"].fp8_tflops == 1979.0
    assert catalog["rtx-5090"].fp4_tflops == 1676.0  # 3352 "AI TOPS" is sparse
    assert catalog["a100-80gb-sxm"].fp8_tflops is None  # Ampere has no FP8
    assert catalog["b200"].memory_bytes == 183359 * MIB  # 179 GiB visible of 192 GB physical
    assert catalog["rtx-4060-ti-16gb"].interconnect == "pcie4-x8"


def test_unified_records_and_apple_options(catalog):
    apple = [d for d in catalog.values() if d.vendor == "apple"]
    assert all(d.unified and d.backends == ("metal",) for d in apple)
    assert catalog["m4-max-128"].memory_bytes == 128 * GIB
    assert catalog["m4-max-36"].bandwidth_gbps == 410.0 and catalog["m4-max-48"].bandwidth_gbps == 546.0
    assert catalog["m3-max-36"].bandwidth_gbps == 300.0 and catalog["m3-max-128"].bandwidth_gbps == 400.0
    for d in apple:  # the id ends with the memory option in GB
        assert d.id.endswith(f"-{d.memory_bytes // GIB}"), d.id
    assert catalog["dgx-spark"].unified and catalog["strix-halo-128"].unified


def test_catalog_is_cached_and_copies_are_returned():
    first, second = hw.hardware_catalog(), hw.hardware_catalog()
    assert first == second and first is not second
    first.clear()
    assert hw.hardware_catalog()


# ---------------------------------------------------------------------------------------------------
# validation of a (bad) YAML file

GOOD = {
    "devices": [
        {
            "id": "rtx-4090",
            "name": "NVIDIA GeForce RTX 4090",
            "vendor": "nvidia",
            "kind": "gpu",
            "memory_bytes": 24564 * MIB,
            "memory_exact": True,
            "bandwidth_gbps": 1008.0,
            "fp16_tflops": 165.2,
            "backends": ["cuda"],
            "aliases": ["4090"],
            "source": "test",
        },
        {
            "id": "rtx-3090",
            "name": "NVIDIA GeForce RTX 3090",
            "vendor": "nvidia",
            "kind": "gpu",
            "memory_bytes": 24576 * MIB,
            "memory_exact": True,
            "bandwidth_gbps": 936.0,
            "fp16_tflops": None,
            "backends": ["cuda"],
            "aliases": ["3090"],
            "source": "test",
        },
    ],
    "host_memory": [
        {"id": "ddr5-5600-2ch", "name": "x", "bandwidth_gbps": 89.6, "effective_gbps": 67.2, "source": "test"}
    ],
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "hardware.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def mutate(record: int, **changes) -> dict:
    data = json.loads(json.dumps(GOOD))
    data["devices"][record].update(changes)
    return data


def test_a_small_valid_file_loads(tmp_path):
    devices, hosts = hw.load_hardware(write(tmp_path, GOOD))
    assert list(devices) == ["rtx-4090", "rtx-3090"]
    assert devices["rtx-3090"].fp16_tflops == 0.0  # null: unknown
    assert devices["rtx-4090"].backends == ("cuda",) and devices["rtx-4090"].aliases == ("4090",)
    assert hosts["ddr5-5600-2ch"].effective_gbps == 67.2


def test_a_typo_in_a_key_is_rejected_naming_the_record_and_field(tmp_path):
    data = mutate(0, memroy_bytes=1)
    with pytest.raises(ConfigError) as e:
        hw.load_hardware(write(tmp_path, data))
    text = str(e.value)
    assert "'rtx-4090'" in text and "memroy_bytes" in text and "did you mean 'memory_bytes'" in text
    assert isinstance(e.value, ValueError) and e.value.key and "rtx-4090" in e.value.key


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"vendor": "nvidea"}, "vendor", "nvidia"),
        ({"kind": "discrete"}, "kind", "gpu"),
        ({"backends": ["cuda", "opencl"]}, "backends", "vulkan"),
        ({"memory_bytes": -5}, "memory_bytes", "greater than 0"),
        ({"bandwidth_gbps": 0}, "bandwidth_gbps", "greater than 0"),
        ({"source": ""}, "source", "at least 1"),
        ({"id": "RTX 4090"}, "id", "pattern"),
        ({"interconnect_gbps": 31.5}, "device 'rtx-4090'", "interconnect"),
    ],
)
def test_bad_values_are_rejected_naming_the_record_and_field(tmp_path, changes, field, words):
    with pytest.raises(ConfigError) as e:
        hw.load_hardware(write(tmp_path, mutate(0, **changes)))
    assert field in str(e.value) and words in str(e.value)


def test_missing_key_and_bad_top_level(tmp_path):
    data = json.loads(json.dumps(GOOD))
    del data["devices"][1]["memory_exact"]
    with pytest.raises(ConfigError, match=r"device 'rtx-3090'.*memory_exact: required key is missing"):
        hw.load_hardware(write(tmp_path, data))
    with pytest.raises(ConfigError, match="devicez"):
        hw.load_hardware(write(tmp_path, {**GOOD, "devicez": []}))
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        hw.load_hardware(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("devices: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        hw.load_hardware(tmp_path / "broken.yaml")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "rtx-4090"}, "ids must be unique"),
        ({"aliases": ["4090"]}, "alias '4090' is already the id or an alias of 'rtx-4090'"),
        ({"aliases": ["RTX-4090"]}, "already the id or an alias of 'rtx-4090'"),
        ({"aliases": ["nvidia geforce rtx 4090"]}, "already the name of rtx-4090"),
        ({"name": "GeForce RTX 4090"}, "only memory options of one chip may share a name"),
    ],
)
def test_ids_and_aliases_must_be_unique(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        hw.load_hardware(write(tmp_path, mutate(1, **changes)))


# ---------------------------------------------------------------------------------------------------
# lookups


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("rtx-4090", "rtx-4090"),
        ("RTX-4090", "rtx-4090"),
        ("4090", "rtx-4090"),
        ("rtx 4090", "rtx-4090"),
        ("rtx4090", "rtx-4090"),
        ("geforce rtx 4090", "rtx-4090"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),  # nvidia-smi
        ("NVIDIA GeForce RTX 3090 Ti", "rtx-3090-ti"),
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H100 NVL", "h100-nvl"),
        ("h100", "h100-sxm"),
        ("NVIDIA A100-SXM4-80GB", "a100-80gb-sxm"),
        ("NVIDIA A100 80GB PCIe", "a100-80gb-pcie"),
        ("Tesla T4", "t4"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA B300 SXM6 AC", "b300"),
        ("NVIDIA RTX 6000 Ada Generation", "rtx-6000-ada"),
        ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "rtx-pro-6000"),
        ("NVIDIA GB10", "dgx-spark"),
        ("AMD Radeon RX 7900 XTX", "rx-7900-xtx"),  # rocm-smi
        ("Radeon RX 7900 XT", "rx-7900-xt"),
        ("AMD Instinct MI300X", "mi300x"),
        ("AMD Radeon AI PRO R9700", "radeon-ai-pro-r9700"),
        ("Intel(R) Arc(TM) B580 Graphics", "arc-b580"),
        ("Intel Arc Pro B60", "arc-pro-b60"),
        ("m4-max-128", "m4-max-128"),
        ("M4 Max 128GB", "m4-max-128"),
    ],
)
def test_find_device_by_id_alias_and_driver_name(name, expected):
    found = hw.find_device(name)
    assert found is not None and found.id == expected
    assert hw.device(name).id == expected


def test_find_device_unknown_gives_none():
    for name in ("rtx 4900", "", "   ", "banana"):
        assert hw.find_device(name) is None


def test_memory_picks_the_apple_and_strix_halo_option():
    assert hw.find_device("Apple M4 Max") is None  # ambiguous without memory
    assert hw.find_device("Apple M4 Max", memory_bytes=36 * GIB).id == "m4-max-36"
    assert hw.find_device("Apple M4 Max", memory_bytes=128 * GIB).id == "m4-max-128"
    assert hw.find_device("m4 max", memory_bytes=64 * GIB).id == "m4-max-64"
    assert hw.find_device("Apple M3 Ultra", memory_bytes=512 * GIB).id == "m3-ultra-512"
    assert hw.find_device("AMD Ryzen AI Max+ 395", memory_bytes=125 * GIB).id == "strix-halo-128"
    assert hw.find_device("strix halo", memory_bytes=64 * GIB).id == "strix-halo-64"
    # an exact id is what it says, whatever the memory
    assert hw.find_device("m4-max-36", memory_bytes=128 * GIB).id == "m4-max-36"
    # a single record is returned even if the driver's memory differs (the caller compares)
    assert hw.find_device("NVIDIA GeForce RTX 4060 Ti", memory_bytes=8 * GIB).id == "rtx-4060-ti-16gb"
    with pytest.raises(UnknownHardwareError) as e:
        hw.device("Apple M4 Max")
    assert e.value.suggestions == ("m4-max-36", "m4-max-48", "m4-max-64", "m4-max-128")
    assert "memory options" in str(e.value)


def test_unknown_hardware_suggests_close_names():
    with pytest.raises(UnknownHardwareError) as e:
        hw.device("rtx 4900")
    err = e.value
    assert isinstance(err, QwenfitError) and isinstance(err, LookupError) and isinstance(err, ValueError)
    assert "rtx-4090" in err.suggestions and len(err.suggestions) <= 3
    assert err.name == "rtx 4900"
    message = str(err)
    assert "\n" not in message and "'rtx 4900'" in message and "Did you mean" in message
    assert message == err.args[0]  # no KeyError-style quoting


# ---------------------------------------------------------------------------------------------------
# machine specs


@pytest.mark.parametrize(
    ("spec", "name", "n", "device_id"),
    [
        ("rtx-4090", "rtx-4090", 1, "rtx-4090"),
        ("2x rtx-3090", "2x rtx-3090", 2, "rtx-3090"),
        ("rtx-3090x2", "2x rtx-3090", 2, "rtx-3090"),
        ("rtx 3090 x 2", "2x rtx-3090", 2, "rtx-3090"),
        ("4 x h100-sxm", "4x h100-sxm", 4, "h100-sxm"),
        ("8xH200", "8x h200", 8, "h200"),
        ("2×4090", "2x rtx-4090", 2, "rtx-4090"),
        ("5090x2", "2x rtx-5090", 2, "rtx-5090"),
        ("rx-7900-xtxx2", "2x rx-7900-xtx", 2, "rx-7900-xtx"),
        ("64x b200", "64x b200", 64, "b200"),
        ("1x NVIDIA GeForce RTX 4090", "rtx-4090", 1, "rtx-4090"),
        ("m4-max-128", "m4-max-128", 1, "m4-max-128"),
    ],
)
def test_parse_machine_forms(spec, name, n, device_id):
    machine = hw.parse_machine(spec, ram_gb=64)
    assert machine.name == name and machine.n_devices == n
    assert {d.id for d in machine.devices} == {device_id}


def test_parse_machine_ram_and_unified_memory():
    gpu = hw.parse_machine("2x rtx-3090", ram_gb=128, host="ddr4-3200-2ch")
    assert gpu.ram_bytes == 128 * 10**9 and gpu.vram_bytes == 2 * 24576 * MIB
    assert gpu.host is not None and gpu.host.id == "ddr4-3200-2ch"
    assert hw.parse_machine("rtx-4090").ram_bytes is None and hw.parse_machine("rtx-4090").host is None
    mac = hw.parse_machine("m4-max-128", ram_gb=64)
    assert mac.unified and mac.ram_bytes == 128 * GIB == mac.vram_bytes  # not added twice
    assert any("ignored" in note for note in mac.notes)
    assert hw.parse_machine("m4-max-128").notes == ()
    cpu = hw.parse_machine("cpu", ram_gb=256)
    assert cpu.devices == () and cpu.ram_bytes == 256 * 10**9


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "empty machine spec"),
        ("rtx 4900", "Did you mean"),
        ("2x rtx 4900", "unknown hardware 'rtx 4900' in machine spec '2x rtx 4900'"),
        ("0x rtx-4090", "must be 1 to 64"),
        ("65x h100", "must be 1 to 64"),
        ("2x m4-max-128", "unified-memory system"),
        ("Apple M4 Max", "memory options"),
        ("x2", "unknown hardware"),
        ("2x", "unknown hardware"),
    ],
)
def test_parse_machine_rejects_bad_specs(spec, match):
    with pytest.raises(UnknownHardwareError, match=re.escape(match)):
        hw.parse_machine(spec)


def test_parse_machine_rejects_bad_ram_and_host():
    with pytest.raises(ValueError, match="ram_gb"):
        hw.parse_machine("rtx-4090", ram_gb=-1)
    with pytest.raises(UnknownHardwareError, match="ddr5-5600-2ch") as e:
        hw.parse_machine("rtx-4090", host="ddr5-5600")
    assert "ddr5-5600-2ch" in e.value.suggestions


def test_custom_machine_is_per_gpu_decimal_gb():
    m = hw.custom_machine(vram_gb=24, ram_gb=64, n_gpus=2)
    assert m.n_devices == 2 and m.vram_bytes == 48 * 10**9 and m.ram_bytes == 64 * 10**9
    d = m.devices[0]
    assert d.memory_bytes == 24 * 10**9 and not d.memory_exact
    assert d.vendor == "nvidia" and d.backends == ("cuda",) and not d.unified
    assert d.bandwidth_gbps == 0.0 and d.fp16_tflops == 0.0  # unknown, not invented
    assert hw.custom_machine(vram_gb=24, ram_gb=None, bandwidth_gbps=1008).devices[0].bandwidth_gbps == 1008
    mac = hw.custom_machine(vram_gb=None, ram_gb=96, unified=True, vendor="apple", name="my mac")
    assert mac.name == "my mac" and mac.unified and mac.ram_bytes == mac.vram_bytes == 96 * 10**9
    assert mac.devices[0].backends == ("metal",)
    cpu = hw.custom_machine(vram_gb=None, ram_gb=64)
    assert cpu.devices == () and cpu.ram_bytes == 64 * 10**9


@pytest.mark.parametrize(
    "kwargs",
    [
        {"vram_gb": -1, "ram_gb": None},
        {"vram_gb": float("nan"), "ram_gb": None},
        {"vram_gb": 24, "ram_gb": None, "n_gpus": 0},
        {"vram_gb": 24, "ram_gb": None, "n_gpus": 65},
        {"vram_gb": None, "ram_gb": 64, "n_gpus": 2},
        {"vram_gb": 64, "ram_gb": 128, "unified": True},
        {"vram_gb": None, "ram_gb": None, "unified": True},
        {"vram_gb": 24, "ram_gb": None, "vendor": "via"},
        {"vram_gb": 24, "ram_gb": None, "backends": ("opencl",)},
    ],
)
def test_custom_machine_rejects_bad_numbers(kwargs):
    with pytest.raises(UnknownHardwareError):
        hw.custom_machine(**kwargs)


# ---------------------------------------------------------------------------------------------------
# host memory profiles


def test_host_profiles_follow_the_formula():
    hosts = hw.host_profiles()
    required = {"ddr4-3200-2ch", "ddr5-5600-2ch", "ddr5-6000-2ch", "ddr5-4800-4ch", "ddr4-3200-8ch",
                "ddr5-4800-8ch", "ddr5-4800-12ch", "ddr5-6400-12ch", "lpddr5x-8000-256bit"}  # fmt: skip
    assert required <= set(hosts)
    for h in hosts.values():
        m = re.fullmatch(r"(?:lp)?ddr\dx?-(\d+)-(?:(\d+)ch|(\d+)bit)", h.id)
        assert m, h.id
        width_bytes = int(m.group(2)) * 8 if m.group(2) else int(m.group(3)) // 8
        assert h.bandwidth_gbps == pytest.approx(width_bytes * int(m.group(1)) / 1000), h.id
        assert 0 < h.effective_gbps <= h.bandwidth_gbps
        assert "assumed" in h.source and "STREAM" in h.source
    assert hosts["ddr5-5600-2ch"].bandwidth_gbps == pytest.approx(89.6)
    assert hosts["ddr5-4800-12ch"].bandwidth_gbps == pytest.approx(460.8)


def test_default_host():
    assert hw.default_host().id == hw.DEFAULT_HOST_ID == "ddr5-5600-2ch"
    assert hw.default_host("ddr4").id == "ddr4-3200-2ch"
    assert hw.default_host("DDR5").id == "ddr5-5600-2ch"
    assert hw.default_host("ddr5-6400-12ch").bandwidth_gbps == pytest.approx(614.4)
    with pytest.raises(UnknownHardwareError):
        hw.default_host("ddr6")


# ---------------------------------------------------------------------------------------------------
# JSON Schema and import cost


def test_committed_json_schema_is_current():
    path = REPO / "scripts" / "gen_hardware_schema.py"
    spec = importlib.util.spec_from_file_location("gen_hardware_schema", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (REPO / "data" / "hardware.schema.json").read_text(encoding="utf-8")
    assert committed == module.render(), "run: python scripts/gen_hardware_schema.py"
    assert module.main(["--check"]) == 0
    schema = json.loads(committed)
    device = schema["$defs"]["DeviceRecord"]
    assert device["additionalProperties"] is False
    assert set(device["properties"]) == {f.name for f in core.Device.__dataclass_fields__.values()}


def test_yaml_validates_against_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    data = yaml.safe_load((REPO / "data" / "hardware.yaml").read_text(encoding="utf-8"))
    jsonschema.validate(data, json.loads((REPO / "data" / "hardware.schema.json").read_text()))


def test_importing_the_loader_is_light():
    code = textwrap.dedent("""
        import sys
        import qwenfit.loaders.hardware
        print([m for m in ("pydantic", "yaml") if m in sys.modules])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_compiled_catalog_equals_the_validated_yaml():
    """data/hardware.json (read at start-up) holds exactly what validating the YAML gives."""
    from qwenfit.loaders import hardware

    hardware._catalog.cache_clear()
    fast = hardware._catalog()
    slow = hardware.load_hardware(hardware.hardware_yaml_path())
    assert fast.devices == slow.devices and fast.hosts == slow.hosts
