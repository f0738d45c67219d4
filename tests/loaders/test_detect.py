"""Hardware detection replayed from recorded tool outputs (tests/fixtures/detect/README.md says where each
recording comes from). No test here runs a real GPU tool except the two marked live ones, which only
check that detection on this machine answers without raising."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from qwenfit.core.hardware import Device, Machine
from qwenfit.loaders import detect as det
from qwenfit.loaders import gpu_probes as probes
from qwenfit.loaders.detect import apple_wired_limit_mb, detect

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "detect"
MIB = 1 << 20
GIB = 1 << 30


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def tools(outputs: dict[tuple[str, ...], str | None]) -> tuple[Any, list[list[str]]]:
    """A ``run`` that answers recorded commands and treats every other tool as missing."""
    calls: list[list[str]] = []

    def run(cmd: list[str]) -> str | None:
        calls.append(cmd)
        return outputs.get(tuple(cmd))

    return run, calls


def files(contents: dict[str, str] | None = None) -> Any:
    contents = contents or {}
    return lambda path: contents.get(path)


# a stand-in catalog, so these tests do not depend on data/hardware.yaml: nominal memory, memory_exact=False
CATALOG = {
    "rtx 4090": Device(
        id="rtx-4090",
        name="NVIDIA GeForce RTX 4090",
        vendor="nvidia",
        kind="gpu",
        memory_bytes=24 * 10**9,
        memory_exact=False,
        bandwidth_gbps=1008.0,
        fp16_tflops=165.2,
        backends=("cuda", "vulkan"),
        compute_capability="8.9",
    ),
    "rtx 3090": Device(
        id="rtx-3090",
        name="NVIDIA GeForce RTX 3090",
        vendor="nvidia",
        kind="gpu",
        memory_bytes=24 * 10**9,
        memory_exact=False,
        bandwidth_gbps=936.0,
        fp16_tflops=71.0,
    ),
    "h100 80gb hbm3": Device(
        id="h100-sxm",
        name="NVIDIA H100 80GB HBM3",
        vendor="nvidia",
        kind="gpu",
        memory_bytes=80 * 10**9,
        memory_exact=False,
        bandwidth_gbps=3350.0,
        fp16_tflops=989.0,
    ),
    "mi300x": Device(
        id="mi300x",
        name="AMD Instinct MI300X",
        vendor="amd",
        kind="gpu",
        memory_bytes=192 * 10**9,
        memory_exact=False,
        bandwidth_gbps=5300.0,
        fp16_tflops=1307.4,
    ),
    "rx 7900 xtx": Device(
        id="rx-7900-xtx",
        name="AMD Radeon RX 7900 XTX",
        vendor="amd",
        kind="gpu",
        memory_bytes=24 * 10**9,
        memory_exact=False,
        bandwidth_gbps=960.0,
        fp16_tflops=122.8,
    ),
    "rx 7900 xt": Device(
        id="rx-7900-xt",
        name="AMD Radeon RX 7900 XT",
        vendor="amd",
        kind="gpu",
        memory_bytes=20 * 10**9,
        memory_exact=False,
        bandwidth_gbps=800.0,
        fp16_tflops=103.0,
    ),
    "apple m4 max": Device(
        id="m4-max-128",
        name="Apple M4 Max",
        vendor="apple",
        kind="unified",
        memory_bytes=128 * GIB,
        memory_exact=False,
        bandwidth_gbps=546.0,
        fp16_tflops=34.0,
    ),
}


def fake_lookup(name: str, memory_bytes: int | None = None) -> Device | None:
    """Matches driver names loosely ("NVIDIA GeForce RTX 4090", "MI300X-O", "Radeon RX 7900 XTX")."""
    key = " ".join(
        w for w in name.lower().split() if w not in ("nvidia", "geforce", "amd", "radeon", "instinct")
    )
    for alias, device in CATALOG.items():
        if key == alias or key.startswith(alias + "-"):
            return device
    return None


def replay(
    outputs: dict[tuple[str, ...], str | None],
    *,
    platform: str = "linux",
    meminfo: str | None = None,
    lookup: Any = fake_lookup,
    **kwargs: Any,
) -> Machine:
    run, _ = tools(outputs)
    reader = files({det.PROC_MEMINFO: meminfo} if meminfo is not None else {})
    return detect(run=run, read_file=reader, env=platform, lookup=lookup, **kwargs)


def notes_text(machine: Machine) -> str:
    return "\n".join(machine.notes)


# -------------------------------------------------------------------------------------- NVIDIA (nvidia-smi)


def test_one_rtx_4090_from_nvidia_smi():
    m = replay({tuple(probes.NVIDIA_SMI): fixture("rtx4090-x1/nvidia-smi.csv")})
    assert m.name == "detected: rtx-4090"
    (gpu,) = m.devices
    assert gpu.id == "rtx-4090"
    assert gpu.memory_bytes == 24564 * 1048576 == 25757220864  # the driver's figure, not the nominal 24 GB
    assert gpu.memory_exact is True
    assert gpu.bandwidth_gbps == 1008.0 and gpu.compute_capability == "8.9"  # the rest is the catalog's
    assert "nvidia-smi" in notes_text(m) and "rtx-4090" in notes_text(m)


def test_two_rtx_3090s_are_two_devices():
    m = replay({tuple(probes.NVIDIA_SMI): fixture("rtx3090-x2/nvidia-smi.csv")})
    assert m.name == "detected: 2x rtx-3090"
    assert [d.id for d in m.devices] == ["rtx-3090", "rtx-3090"]
    assert all(d.memory_bytes == 24576 * MIB == 25769803776 and d.memory_exact for d in m.devices)
    assert m.vram_bytes == 2 * 24576 * MIB
    assert "mixed" not in notes_text(m)
    assert "2x NVIDIA GeForce RTX 3090 (24576 MiB each" in notes_text(m)


def test_eight_h100s():
    m = replay({tuple(probes.NVIDIA_SMI): fixture("h100-x8/nvidia-smi.csv")})
    assert m.n_devices == 8 and m.name == "detected: 8x h100-sxm"
    assert {d.memory_bytes for d in m.devices} == {81559 * MIB}
    assert m.vram_bytes == 8 * 81559 * 1048576 == 684166479872


def test_unknown_gpu_becomes_a_detected_device_with_unknown_speed():
    m = replay({tuple(probes.NVIDIA_SMI): "NVIDIA RTX PRO 6000 Blackwell Workstation Edition, 97887\n"})
    (gpu,) = m.devices
    assert gpu.id == "detected-nvidia-rtx-pro-6000-blackwell-workstation-edition"
    assert gpu.name == "NVIDIA RTX PRO 6000 Blackwell Workstation Edition"
    assert (gpu.vendor, gpu.kind, gpu.memory_bytes, gpu.memory_exact) == ("nvidia", "gpu", 97887 * MIB, True)
    assert gpu.bandwidth_gbps == 0.0 and gpu.fp16_tflops == 0.0
    assert gpu.source == "detected by nvidia-smi" and "cuda" in gpu.backends
    assert "speed cannot be estimated" in notes_text(m)


def test_mixed_gpus_are_all_kept_and_noted():
    csv = "NVIDIA GeForce RTX 4090, 24564\nNVIDIA GeForce RTX 3090, 24576\nNVIDIA GeForce RTX 4090, 24564\n"
    m = replay({tuple(probes.NVIDIA_SMI): csv})
    assert [d.id for d in m.devices] == ["rtx-4090", "rtx-3090", "rtx-4090"]  # in the driver's order
    assert [d.memory_bytes for d in m.devices] == [24564 * MIB, 24576 * MIB, 24564 * MIB]
    assert "mixed GPUs (1x rtx-3090, 2x rtx-4090)" in notes_text(m)
    assert m.name == "detected: 2x rtx-4090 + rtx-3090"


def test_unified_nvidia_part_without_memory_shares_ram():
    # DGX Spark / Jetson: nvidia-smi prints [N/A] for memory.total
    meminfo = "MemTotal:       127601868 kB\n"
    m = replay({tuple(probes.NVIDIA_SMI): "NVIDIA GB10, [N/A]\n"}, meminfo=meminfo)
    (gpu,) = m.devices
    assert gpu.kind == "unified" and gpu.memory_bytes == 127601868 * 1024 == m.ram_bytes
    assert "shares system RAM" in notes_text(m)


# -------------------------------------------------------------------------------------- NVIDIA (NVML)


class FakeNVML:
    """The slice of pynvml detect() uses; names as bytes, as pynvml < 11.5 returned them."""

    def __init__(self, gpus: list[tuple[Any, int | None]], *, init_error: Exception | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.shutdown_calls = 0

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> Any:
        return self.gpus[handle][0]

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        total = self.gpus[handle][1]
        if total is None:
            raise RuntimeError("Not Supported")
        return SimpleNamespace(total=total, free=total // 2, used=total - total // 2)

    def nvmlDeviceGetCudaComputeCapability(self, handle: int) -> tuple[int, int]:
        return (8, 9)


def test_nvml_is_asked_first_and_reports_bytes():
    nvml = FakeNVML([(b"NVIDIA GeForce RTX 4090", 25757220864), ("NVIDIA GeForce RTX 4090", 25757220864)])
    m = replay({tuple(probes.NVIDIA_SMI): "NVIDIA GeForce RTX 3090, 24576\n"}, nvml=nvml)
    assert [d.id for d in m.devices] == ["rtx-4090", "rtx-4090"]
    assert {d.memory_bytes for d in m.devices} == {25757220864}
    assert "NVML" in notes_text(m) and nvml.shutdown_calls == 1


def test_nvml_unknown_gpu_keeps_compute_capability():
    m = replay({}, nvml=FakeNVML([("NVIDIA L40S", 48305799168)]))
    (gpu,) = m.devices
    assert gpu.id == "detected-nvidia-l40s" and gpu.compute_capability == "8.9"
    assert gpu.memory_bytes == 48305799168 and gpu.source == "detected by NVML"


def test_nvml_failure_falls_back_to_nvidia_smi():
    nvml = FakeNVML([], init_error=RuntimeError("NVML Shared Library Not Found"))
    m = replay({tuple(probes.NVIDIA_SMI): fixture("rtx4090-x1/nvidia-smi.csv")}, nvml=nvml)
    assert [d.id for d in m.devices] == ["rtx-4090"]
    assert "nvidia-smi" in notes_text(m)


def test_replay_never_imports_the_installed_nvml(monkeypatch):
    # a replay uses what it is given: a real pynvml on the test machine must not leak in
    monkeypatch.setitem(sys.modules, "pynvml", FakeNVML([("NVIDIA GeForce RTX 4090", 25757220864)]))
    assert replay({}).devices == ()


# -------------------------------------------------------------------------------------- AMD


def test_eight_mi300x_from_amd_smi_gpu_data():
    m = replay({tuple(probes.AMD_SMI_STATIC): fixture("mi300x-x8/amd-smi-static.json")})
    assert m.name == "detected: 8x mi300x"
    assert {d.memory_bytes for d in m.devices} == {196592 * MIB}
    assert 196592 * MIB == 206141652992  # what rocm-smi prints in bytes for the same card
    assert all(d.memory_exact for d in m.devices)


def test_amd_smi_list_form_from_rocm_6():
    m = replay({tuple(probes.AMD_SMI_STATIC): fixture("mi300x-blog/amd-smi-static.json")})
    (gpu,) = m.devices
    assert gpu.id == "mi300x" and gpu.memory_bytes == 206141652992
    assert "MI300X-O" in notes_text(m)


def test_amd_smi_rocm_6_0_flat_vram_size():
    # ROCm 6.0 printed amdsmi_get_gpu_vram_info()'s keys as they are
    text = '[{"gpu": 0, "asic": {"market_name": "AMD Instinct MI300X"}, "vram": {"vram_size_mb": 196592}}]'
    m = replay({tuple(probes.AMD_SMI_STATIC): text})
    assert [d.memory_bytes for d in m.devices] == [206141652992]


def test_unknown_amd_gpu_keeps_gfx_target():
    text = fixture("mi300x-x8/amd-smi-static.json").replace("AMD Instinct MI300X", "AMD Instinct MI999Z")
    m = replay({tuple(probes.AMD_SMI_STATIC): text})
    assert {(d.id, d.compute_capability, d.vendor) for d in m.devices} == {
        ("detected-amd-instinct-mi999z", "gfx942", "amd")
    }
    assert "rocm" in m.devices[0].backends


def test_amd_smi_metric_supplies_memory_static_leaves_out():
    m = replay(
        {
            tuple(probes.AMD_SMI_STATIC): fixture("rx7800xt/amd-smi-static-no-vram.json"),
            tuple(probes.AMD_SMI_METRIC): fixture("rx7800xt/amd-smi-metric.json"),
        }
    )
    (gpu,) = m.devices
    assert gpu.name == "AMD Radeon RX 7800 XT" and gpu.memory_bytes == 16368 * MIB
    assert gpu.compute_capability == "gfx1101" and gpu.source == "detected by amd-smi metric"


def test_amd_smi_without_any_memory_falls_back_to_rocm_smi():
    m = replay(
        {
            tuple(probes.AMD_SMI_STATIC): fixture("rx7800xt/amd-smi-static-no-vram.json"),
            tuple(probes.ROCM_SMI): fixture("rx7900xtx/rocm-smi.json"),
        }
    )
    assert [d.id for d in m.devices] == ["rx-7900-xtx"]
    assert "reports no VRAM size" in notes_text(m)


def test_rx_7900_xtx_from_rocm_smi():
    m = replay({tuple(probes.ROCM_SMI): fixture("rx7900xtx/rocm-smi.json")})
    (gpu,) = m.devices
    assert gpu.id == "rx-7900-xtx" and gpu.memory_bytes == 25753026560 == 24560 * MIB
    assert gpu.memory_exact and "rocm-smi" in notes_text(m)


def test_rocm_smi_unknown_card_keeps_gfx_version():
    text = fixture("rx7900xtx/rocm-smi.json").replace("Radeon RX 7900 XTX", "Radeon RX 9999")
    (gpu,) = replay({tuple(probes.ROCM_SMI): text}).devices
    assert gpu.id == "detected-radeon-rx-9999" and gpu.compute_capability == "gfx1100"


def test_pci_ids_names_resolve_by_memory_and_integrated_gpu_is_dropped():
    m = replay({tuple(probes.ROCM_SMI): fixture("rx7900xtx/rocm-smi-pciids-igpu.json")})
    # "Navi 31 [Radeon RX 7900 XT/7900 XTX/7900M]" with 24560 MiB is the XTX, not the 20 GB XT
    assert [d.id for d in m.devices] == ["rx-7900-xtx"]
    assert m.devices[0].memory_bytes == 25753026560
    assert "ignored Rembrandt [Radeon 680M] (512 MiB" in notes_text(m)


def test_name_candidates():
    assert det._name_candidates("Navi 31 [Radeon RX 7900 XT/7900 XTX/7900M]") == [
        "Radeon RX 7900 XT",
        "Radeon RX 7900 XTX",
        "Radeon RX 7900M",
        "Navi 31 [Radeon RX 7900 XT/7900 XTX/7900M]",
    ]
    assert det._name_candidates("Navi 31 [Radeon Pro W7900]") == [
        "Radeon Pro W7900",
        "Navi 31 [Radeon Pro W7900]",
    ]
    assert det._name_candidates("NVIDIA GeForce RTX 4090") == ["NVIDIA GeForce RTX 4090"]


def test_amd_smi_warning_banner_before_json_is_skipped():
    text = "WARNING: User is missing the following required groups: render, video.\n" + fixture(
        "mi300x-blog/amd-smi-static.json"
    )
    assert [d.id for d in replay({tuple(probes.AMD_SMI_STATIC): text}).devices] == ["mi300x"]


# -------------------------------------------------------------------------------------- Apple


def apple_outputs() -> dict[tuple[str, ...], str | None]:
    return {
        tuple(probes.SYSCTL_APPLE): fixture("m4-max-128/sysctl-hw.txt"),
        tuple(probes.SYSCTL_PERF_CORES): fixture("m4-max-128/sysctl-perflevel0-physicalcpu.txt"),
        tuple(probes.SYSCTL_WIRED_LIMIT): fixture("m4-max-128/sysctl-iogpu-wired-limit-mb.txt"),
    }


def test_apple_m4_max_128():
    m = replay(apple_outputs(), platform="darwin")
    (soc,) = m.devices
    assert soc.id == "m4-max-128" and soc.unified and m.unified
    assert soc.memory_bytes == 137438953472 == 128 * GIB and soc.memory_exact
    assert m.ram_bytes == 137438953472  # the same memory, not added again (Machine docstring)
    text = notes_text(m)
    assert "Apple M4 Max" in text and "12 performance cores" in text
    assert "iogpu.wired_limit_mb = 0" in text and "default GPU memory limit" in text
    assert m.name == "detected: m4-max-128"


def test_apple_detection_never_asks_nvidia_or_amd_tools():
    run, calls = tools(apple_outputs())
    detect(run=run, read_file=files(), env="darwin", lookup=fake_lookup)
    assert {c[0] for c in calls} == {"sysctl"}


def test_unknown_apple_chip_is_a_detected_unified_device():
    outputs = apple_outputs() | {tuple(probes.SYSCTL_APPLE): "68719476736\nApple M7 Ultra\n"}
    (soc,) = replay(outputs, platform="darwin").devices
    assert (soc.id, soc.kind, soc.vendor, soc.memory_bytes) == (
        "detected-apple-m7-ultra",
        "unified",
        "apple",
        64 * GIB,
    )
    assert soc.backends == ("metal",)


def test_intel_mac_plans_for_cpu():
    outputs = {tuple(probes.SYSCTL_APPLE): "17179869184\nIntel(R) Core(TM) i7-9750H CPU @ 2.60GHz\n"}
    m = replay(outputs, platform="darwin")
    assert m.devices == () and m.ram_bytes == 16 * GIB
    assert "not Apple Silicon" in notes_text(m)


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        ({tuple(probes.SYSCTL_WIRED_LIMIT): "0\n"}, None),  # macOS default
        ({tuple(probes.SYSCTL_WIRED_LIMIT): "114688\n"}, 114688),
        ({tuple(probes.SYSCTL_WIRED_LIMIT): "iogpu.wired_limit_mb: 65536\n"}, 65536),  # without -n
        ({tuple(probes.SYSCTL_WIRED_LIMIT_13): "12884901888\n"}, 12288),  # macOS 13: bytes
        ({}, None),  # not readable
        ({tuple(probes.SYSCTL_WIRED_LIMIT): "lots\n"}, None),
    ],
)
def test_apple_wired_limit_mb(outputs, expected):
    run, _ = tools(outputs)
    assert apple_wired_limit_mb(run=run, env="darwin") == expected


def test_apple_wired_limit_set_by_user_is_noted():
    outputs = apple_outputs() | {tuple(probes.SYSCTL_WIRED_LIMIT): "114688\n"}
    assert "may wire up to 114688 MiB" in notes_text(replay(outputs, platform="darwin"))


def test_apple_wired_limit_is_none_off_macos():
    run, calls = tools({tuple(probes.SYSCTL_WIRED_LIMIT): "114688\n"})
    assert apple_wired_limit_mb(run=run, env="linux") is None and calls == []


# -------------------------------------------------------------------------------------- RAM, CPU


def test_proc_meminfo_kib_to_bytes():
    m = replay({}, meminfo=fixture("linux-64g/proc-meminfo.txt"))
    assert m.ram_bytes == 65759288 * 1024 == 67337510912
    assert "/proc/meminfo MemTotal" in notes_text(m)


def test_psutil_is_preferred_when_given():
    fake = SimpleNamespace(virtual_memory=lambda: SimpleNamespace(total=34359738368))
    m = replay({}, meminfo=fixture("linux-64g/proc-meminfo.txt"), psutil=fake)
    assert m.ram_bytes == 34359738368 and "psutil" in notes_text(m)


def test_cgroup_memory_limit_replaces_host_ram():
    run, _ = tools({})
    reader = files(
        {det.PROC_MEMINFO: fixture("linux-64g/proc-meminfo.txt"), det.CGROUP2_MEMORY_MAX: "17179869184\n"}
    )
    m = detect(run=run, read_file=reader, env="linux", lookup=fake_lookup)
    assert m.ram_bytes == 16 * GIB and "cgroup" in notes_text(m)
    reader = files({det.PROC_MEMINFO: fixture("linux-64g/proc-meminfo.txt"), det.CGROUP2_MEMORY_MAX: "max\n"})
    assert detect(run=run, read_file=reader, env="linux", lookup=fake_lookup).ram_bytes == 67337510912


def test_cpu_threads_from_os_cpu_count():
    m = replay({})
    assert m.cpu_threads == os.cpu_count()


# -------------------------------------------------------------------------------------- nothing, or garbage


def test_cpu_only_machine():
    run, calls = tools({})
    m = detect(run=run, read_file=files(), env="linux", lookup=fake_lookup)
    assert m.devices == () and m.vram_bytes == 0 and m.name == "detected: CPU only"
    assert m.ram_bytes is None
    text = notes_text(m)
    assert "no GPU found" in text and "planning for CPU only" in text
    for tool in ("nvidia-smi", "amd-smi", "rocm-smi"):
        assert tool in text
    assert "RAM: unknown" in text
    assert [c[0] for c in calls] == ["nvidia-smi", "amd-smi", "rocm-smi"]


MALFORMED = [
    ({tuple(probes.NVIDIA_SMI): "malformed/nvidia-smi-no-driver.txt"}, "linux", "nvidia-smi: ignored line 1"),
    (
        {tuple(probes.AMD_SMI_STATIC): "malformed/amd-smi-static-truncated.json"},
        "linux",
        "amd-smi: malformed JSON",
    ),
    ({tuple(probes.ROCM_SMI): "malformed/rocm-smi-truncated.json"}, "linux", "rocm-smi: malformed JSON"),
    (
        {tuple(probes.SYSCTL_APPLE): "malformed/sysctl-unknown-oid.txt"},
        "darwin",
        "hw.memsize is not a byte count",
    ),
]


@pytest.mark.parametrize(("outputs", "platform", "note"), MALFORMED)
def test_malformed_outputs_become_notes(outputs, platform, note):
    m = replay({cmd: fixture(path) for cmd, path in outputs.items()}, platform=platform)
    assert m.devices == ()
    assert note in notes_text(m)


def test_garbage_lines_are_skipped_and_good_ones_kept():
    m = replay({tuple(probes.NVIDIA_SMI): fixture("malformed/nvidia-smi-garbage.csv")})
    assert [d.memory_bytes for d in m.devices] == [24564 * MIB]
    text = notes_text(m)
    assert "ignored line 2 'this is not csv'" in text
    assert "ignored line 3" in text and "ignored line 4" in text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{}",
        "[]",
        "null",
        '"a string"',
        '{"gpu_data": [1, "x", null]}',
        '[{"gpu": 0, "asic": "N/A", "vram": {"size": {"value": "N/A", "unit": "MB"}}}]',
        '[{"gpu": 0, "vram": {"size": {"value": 16, "unit": "furlongs"}}}]',
        '[{"gpu": 0, "vram": {"size": {"value": -5, "unit": "MB"}}}]',
        '[{"gpu": 0, "vram": {"size": {"value": true, "unit": "MB"}}}]',
    ],
)
def test_odd_amd_smi_json_never_raises(text):
    m = replay({tuple(probes.AMD_SMI_STATIC): text, tuple(probes.AMD_SMI_METRIC): text})
    assert m.devices == ()


@pytest.mark.parametrize(
    "text",
    [
        '["card0"]',
        '{"card0": "N/A"}',
        '{"card0": {"Card Series": "Radeon RX 7900 XTX", "VRAM Total Memory (B)": "N/A"}}',
        '{"card0": {"Card Series": "Radeon RX 7900 XTX"}}',
        '{"system": {"Driver version": "6.8.5"}}',
    ],
)
def test_odd_rocm_smi_json_never_raises(text):
    assert replay({tuple(probes.ROCM_SMI): text}).devices == ()


def test_meminfo_without_memtotal_is_a_note():
    m = replay({}, meminfo="MemFree: 12 kB\n")
    assert m.ram_bytes is None and "no 'MemTotal: N kB' line" in notes_text(m)


def test_failing_lookup_is_a_note_not_an_exception():
    def broken(name: str, memory_bytes: int | None = None) -> Device | None:
        raise KeyError("catalog is being rewritten")

    m = replay({tuple(probes.NVIDIA_SMI): fixture("rtx4090-x1/nvidia-smi.csv")}, lookup=broken)
    assert [d.id for d in m.devices] == ["detected-nvidia-geforce-rtx-4090"]
    assert "lookup of 'NVIDIA GeForce RTX 4090' failed" in notes_text(m)


def test_psutil_failure_is_a_note():
    def explode() -> Any:
        raise OSError("no /proc")

    m = replay(
        {}, meminfo=fixture("linux-64g/proc-meminfo.txt"), psutil=SimpleNamespace(virtual_memory=explode)
    )
    assert m.ram_bytes == 67337510912 and "psutil.virtual_memory() failed" in notes_text(m)


# -------------------------------------------------------------------------------------- the real pieces


def test_real_find_device_matches_the_recorded_rtx_4090():
    try:
        from qwenfit.loaders.hardware import find_device
    except ImportError as e:
        pytest.skip(f"qwenfit.loaders.hardware.find_device is not importable yet ({e})")
    run, _ = tools({tuple(probes.NVIDIA_SMI): fixture("rtx4090-x1/nvidia-smi.csv")})
    m = detect(run=run, read_file=files(), env="linux", lookup=find_device)
    assert detect(run=run, read_file=files(), env="linux") == m  # the default lookup is find_device
    (gpu,) = m.devices
    assert not gpu.id.startswith("detected-"), notes_text(m)
    assert gpu.memory_bytes == 24564 * MIB and gpu.memory_exact
    assert gpu.bandwidth_gbps > 0


def test_default_runner():
    assert det._run_tool(["qwenfit-no-such-tool-anywhere"]) is None
    assert det._run_tool([sys.executable, "-c", "print('ok')"]) == "ok\n"
    assert det._run_tool([sys.executable, "-c", "import sys; sys.exit(3)"]) is None


def test_live_detection_answers_on_this_machine():
    m = detect()
    assert isinstance(m, Machine) and m.notes
    if sys.platform.startswith("linux"):
        assert m.ram_bytes is not None and m.ram_bytes > 0


def test_importing_detect_stays_light():
    code = (
        "import sys, qwenfit.loaders.detect\n"
        "heavy = {'pynvml', 'psutil'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
