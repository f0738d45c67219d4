"""Hardware detection replayed from recorded tool outputs (tests/fixtures/detect/README.md says where each
recording comes from). No test here runs a real GPU tool except the two marked live ones, which only
check that detection on this machine answers without raising."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from qwenfit.core.hardware import Device, HostMemory, Machine
from qwenfit.loaders import detect as det
from qwenfit.loaders import gpu_probes as probes
from qwenfit.loaders import host_probes as hp
from qwenfit.loaders.detect import apple_wired_limit_mb, detect, gpu_memory_in_use

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
    # NVML twice: the GPUs, then their memory in use (kept out of the plan)
    assert "NVML" in notes_text(m) and nvml.shutdown_calls == 2


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
    assert {c[0] for c in calls} == {"sysctl", "vm_stat"}  # vm_stat: the RAM available (host_probes)


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


def _cpuinfo(cores: int, threads_per_core: int, sockets: int = 1) -> str:
    """A /proc/cpuinfo with one stanza per logical CPU, as the x86 kernel writes it."""
    out = []
    for sock in range(sockets):
        for _t in range(threads_per_core):
            for c in range(cores):
                out.append(f"processor\t: {len(out)}\nphysical id\t: {sock}\ncore id\t\t: {c}\n")
    return "\n".join(out)


def test_physical_cores_from_proc_cpuinfo_psutil_or_sysctl():
    """SMT siblings are counted once; an SMT-off host (EPYC 9175F: 16 threads, 16 cores) keeps all 16,
    where halving the threads would give 8; psutil wins when given; macOS asks hw.physicalcpu."""
    smt = detect(run=tools({})[0], read_file=files({det.PROC_CPUINFO: _cpuinfo(8, 2)}), env="linux",
                 lookup=fake_lookup)  # fmt: skip
    assert smt.cpu_cores == 8 and "8 physical cores (/proc/cpuinfo core ids)" in notes_text(smt)
    off = detect(run=tools({})[0], read_file=files({det.PROC_CPUINFO: _cpuinfo(16, 1)}), env="linux",
                 lookup=fake_lookup)  # fmt: skip
    two = detect(run=tools({})[0], read_file=files({det.PROC_CPUINFO: _cpuinfo(32, 2, sockets=2)}),
                 env="linux", lookup=fake_lookup)  # fmt: skip
    assert off.cpu_cores == 16 and two.cpu_cores == 64

    class Psutil:
        @staticmethod
        def cpu_count(logical: bool = True) -> int:
            return 6 if not logical else 12

        @staticmethod
        def virtual_memory() -> Any:
            raise OSError("not here")

    assert replay({}, psutil=Psutil()).cpu_cores == 6
    mac = replay({tuple(det.SYSCTL_PHYSICAL_CPU): "12\n"}, platform="darwin")
    assert mac.cpu_cores == 12
    none = replay({})
    assert none.cpu_cores is None and "physical cores unknown" in notes_text(none)


def test_host_rate_is_capped_by_physical_cores_not_half_the_threads():
    """speed.host_gbps: min(eta_host x peak, cores x host_core_gbps) with the physical cores when known;
    half the threads (an SMT guess) only when they are not."""
    from qwenfit.core.fit import speed, speed_fitted

    k = speed_fitted.CONSTANTS
    host = HostMemory(id="ddr5-6400-12ch", name="12 x DDR5-6400", bandwidth_gbps=614.4, effective_gbps=0.0)
    base = Machine(name="epyc", host=host, cpu_threads=16)
    guessed, known = speed.host_gbps(base), speed.host_gbps(dataclasses.replace(base, cpu_cores=16))
    assert guessed == min(k["eta_host"] * 614.4, k["host_core_gbps"] * 8)
    assert known == min(k["eta_host"] * 614.4, k["host_core_gbps"] * 16) > guessed


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
    gpu_tools = ["nvidia-smi", "amd-smi", "rocm-smi", "xpu-smi", "sycl-ls"]
    assert [c[0] for c in calls] == [*gpu_tools, "dmidecode", "lshw"]  # then the RAM's kind and speed


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


# -------------------------------------------------------------------------------------- Intel (Arc / Xe)


def real_lookup() -> Any:
    try:
        from qwenfit.loaders.hardware import find_device
    except ImportError as e:  # pragma: no cover
        pytest.skip(f"qwenfit.loaders.hardware.find_device is not importable ({e})")
    return find_device


def intel(name: str) -> str:
    return fixture(f"intel/{name}")


def sysfs_card(n: int, vendor: str, device: str, **extra: str) -> dict[str, str]:
    """The sysfs files detect() reads for /sys/class/drm/card<n> (kernel layouts: vendor and device are
    "0x%04x\\n", pci-sysfs.c; xe's physical_vram_size_bytes is "%llu\\n", xe_tile_sysfs.c)."""
    base = f"/sys/class/drm/card{n}"
    out = {f"{base}/device/vendor": vendor, f"{base}/device/device": device}
    out.update({f"{base}/{path}": text for path, text in extra.items()})
    return out


def test_xpu_smi_discovery_two_arc_pro_b60():
    run, calls = tools({tuple(probes.XPU_SMI_DISCOVERY): intel("xpu-smi-discovery-dump-b60.json")})
    m = detect(run=run, read_file=files(), env="linux", lookup=real_lookup())
    # "Intel(R) Graphics [0xe211]" (a driver too old to name it) and a record with only pci_device_id 0xe211
    assert [d.id for d in m.devices] == ["arc-pro-b60", "arc-pro-b60"]
    assert {(d.memory_bytes, d.memory_exact, d.vendor) for d in m.devices} == {(25669140480, True, "intel")}
    assert m.devices[0].backends[0] == "sycl" and m.name == "detected: 2x arc-pro-b60"
    assert "2x Intel Arc Pro B60 (24480 MiB each, xpu-smi)" in notes_text(m)
    # memory was in the list; the second discovery reads the memory in use (kept out of the plan)
    assert [c for c in calls if c[0] == "xpu-smi"] == [probes.XPU_SMI_DISCOVERY] * 2


def test_xpu_smi_device_without_memory_asks_detail_then_leaves_it_out():
    run, calls = tools({tuple(probes.XPU_SMI_DISCOVERY): intel("xpu-smi-discovery-userguide.json")})
    m = detect(run=run, read_file=files(), env="linux", lookup=real_lookup())
    assert probes.xpu_smi_detail(0) in calls  # discovery -j lists no memory: discovery -d 0 -j is asked
    assert m.devices == ()
    assert "Intel GPU [8086:020a] (xpu-smi) reports no memory" in notes_text(m)


def test_sycl_ls_names_the_arc_a770_and_drops_the_igpu():
    run, _ = tools({tuple(probes.SYCL_LS): intel("sycl-ls-a770-uhd770-windows.txt")})
    m = detect(run=run, read_file=files(), env="win32", lookup=real_lookup())
    (gpu,) = m.devices
    assert gpu.id == "arc-a770-16gb" and gpu.memory_exact is False  # sycl-ls gives no memory: nominal
    text = notes_text(m)
    assert "Intel(R) UHD Graphics 770 (sycl-ls) reports no memory and is not in the hardware catalog" in text
    assert "no memory reported) = catalog device 'arc-a770-16gb' with its nominal 16.0 GiB" in text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sycl-ls-a770-opencl-only.txt", ["Intel(R) Arc(TM) A770 Graphics"]),  # no Level Zero: OpenCL's
        ("sycl-ls-a750-ci.txt", ["Intel(R) Arc(TM) A750 Graphics"]),
        ("sycl-ls-b390-panther-lake.txt", ["Intel(R) Arc(TM) B390 GPU"]),  # level_zero listed first
        ("sycl-ls-a770-uhd770-windows.txt", ["Intel(R) UHD Graphics 770", "Intel(R) Arc(TM) A770 Graphics"]),
    ],
)
def test_parse_sycl_ls(name, expected):
    assert probes.parse_sycl_ls(intel(name)) == expected


def test_panther_lake_igpu_from_sycl_ls_is_not_planned():
    run, _ = tools({tuple(probes.SYCL_LS): intel("sycl-ls-b390-panther-lake.txt")})
    m = detect(run=run, read_file=files(), env="linux", lookup=real_lookup())
    assert m.devices == () and "Intel(R) Arc(TM) B390 GPU (sycl-ls) reports no memory" in notes_text(m)


def test_sysfs_card_named_by_lspci_nn():
    # the B580 of ipex-llm #12994 (in a VM, at 00:10.0); pci.ids then named e20b "[Intel Graphics]"
    reader = files(sysfs_card(1, "0x8086\n", "0xe20b\n", **{"device/uevent": "PCI_SLOT_NAME=0000:00:10.0\n"}))
    run, calls = tools({tuple(probes.LSPCI): intel("lspci-vnn-b580-vm.txt")})
    m = detect(run=run, read_file=reader, env="linux", lookup=real_lookup())
    (gpu,) = m.devices
    assert gpu.id == "arc-b580" and gpu.memory_exact is False
    assert "Intel Arc B580 publishes no VRAM size" in notes_text(m)
    assert probes.LSPCI in calls


def test_sysfs_xe_tile_vram_is_the_memory():
    # 25669140480: the B60's memory_physical_size_byte in xpumanager #127, which Level Zero reads from here
    reader = files(
        sysfs_card(0, "0x8086\n", "0xe211\n", **{"device/tile0/physical_vram_size_bytes": "25669140480\n"})
    )
    m = detect(run=tools({})[0], read_file=reader, env="linux", lookup=real_lookup())
    (gpu,) = m.devices
    assert (gpu.id, gpu.memory_bytes, gpu.memory_exact) == ("arc-pro-b60", 25669140480, True)


def test_sysfs_i915_lmem_total_bytes_and_other_vendors_ignored():
    reader = files(
        sysfs_card(0, "0x1002\n", "0x744c\n")  # an AMD card: not Intel's business
        | sysfs_card(2, "0x8086\n", "0x56a0\n", lmem_total_bytes="17079205888\n")  # 16288 MiB
    )
    m = detect(run=tools({})[0], read_file=reader, env="linux", lookup=real_lookup())
    assert [(d.id, d.memory_bytes) for d in m.devices] == [("arc-a770-16gb", 16288 * MIB)]


def test_panther_lake_igpu_at_00_02_0_is_integrated():
    reader = files(
        sysfs_card(0, "0x8086\n", "0xb080\n", **{"device/uevent": "DRIVER=xe\nPCI_SLOT_NAME=0000:00:02.0\n"})
    )
    run, _ = tools({tuple(probes.LSPCI): intel("lspci-nn-b080-panther-lake.txt")})
    m = detect(run=run, read_file=reader, env="linux", lookup=real_lookup())
    assert m.devices == ()
    assert "Intel GPU [8086:b080] at 0000:00:02.0 is integrated (shares system RAM)" in notes_text(m)


def test_parse_lspci_and_intel_names():
    assert probes.parse_lspci(intel("lspci-vnn-b580-vm.txt")) == {0xE20B: "Device"}  # "[Intel Graphics]"
    assert probes.parse_lspci(intel("lspci-nn-b080-panther-lake.txt")) == {0xB080: "Device"}
    assert probes.parse_lspci(
        "03:00.0 VGA compatible controller [0300]: Intel Corporation DG2 [Arc A770] [8086:56a0]"
    ) == {0x56A0: "DG2 [Arc A770]"}
    assert probes.intel_name("Intel(R) Graphics [0xe211]", None) == "Intel Arc Pro B60"
    assert probes.intel_name("Device", 0xE20B) == "Intel Arc B580"
    assert probes.intel_name(None, 0xABCD) == "Intel GPU [8086:abcd]"
    assert probes.intel_name("Intel(R) Arc(TM) A770 Graphics", 0x56A0) == "Intel(R) Arc(TM) A770 Graphics"
    assert (probes.intel_discrete(0xE20B), probes.intel_discrete(0xB080), probes.intel_discrete(None)) == (
        True,
        None,
        None,
    )
    assert probes.intel_discrete(0xE20B, "0000:00:02.0") is False


def test_intel_tools_are_not_asked_on_macos():
    run, calls = tools(apple_outputs())
    detect(run=run, read_file=files(), env="darwin", lookup=fake_lookup)
    assert not {"xpu-smi", "sycl-ls", "lspci"} & {c[0] for c in calls}


@pytest.mark.parametrize(
    "text", ["", "{}", "[]", '{"device_list": "x"}', '{"device_list": [1, null, {"device_type": 3}]}']
)
def test_odd_xpu_smi_json_never_raises(text):
    assert replay({tuple(probes.XPU_SMI_DISCOVERY): text}).devices == ()


# -------------------------------------------------------------------------------------- RAM available


def host(name: str) -> str:
    return fixture(f"host/{name}")


def test_meminfo_available_and_the_detect_note():
    state = hp.host_memory_in_use(
        run=tools({})[0], read_file=files({hp.PROC_MEMINFO: host("proc-meminfo-16g.txt")}), env="linux"
    )
    assert state == hp.HostMemoryState(16268680 * 1024, 8366284 * 1024, "MemAvailable")
    m = replay({}, meminfo=host("proc-meminfo-16g.txt"))
    assert m.ram_bytes == 16268680 * 1024  # ram_bytes keeps meaning the total
    assert "RAM: 15.5 GiB total, 8.0 GiB available (MemAvailable)" in notes_text(m)


def test_meminfo_without_memavailable_is_an_estimate():
    reader = files({hp.PROC_MEMINFO: host("proc-meminfo-openwrt-no-memavailable.txt")})
    state = hp.host_memory_in_use(run=tools({})[0], read_file=reader, env="linux")
    assert state is not None and state.available_bytes == (80288 + 7652 + 21700) * 1024
    assert state.source == "MemFree + Buffers + Cached" and "an estimate" in state.notes[0]


def test_cgroup_caps_what_is_available():
    reader = files(
        {
            hp.PROC_MEMINFO: host("proc-meminfo-16g.txt"),
            "/sys/fs/cgroup/memory.max": "4294967296\n",
            "/sys/fs/cgroup/memory.current": "1073741824\n",
        }
    )
    state = hp.host_memory_in_use(run=tools({})[0], read_file=reader, env="linux")
    assert state is not None and (state.total_bytes, state.available_bytes) == (4 * GIB, 3 * GIB)
    assert "capped by the cgroup" in state.notes[-1]


def test_psutil_available_is_preferred():
    fake = SimpleNamespace(virtual_memory=lambda: SimpleNamespace(total=64 * GIB, available=41 * GIB))
    state = hp.host_memory_in_use(run=tools({})[0], read_file=files(), env="win32", psutil=fake)
    assert state == hp.HostMemoryState(64 * GIB, 41 * GIB, "psutil")


def test_windows_without_psutil_says_so():
    state = hp.host_memory_in_use(run=tools({})[0], read_file=files(), env="win32")
    assert state is not None and state.available_bytes is None and "psutil" in state.notes[0]
    assert hp.host_memory_in_use(run=tools({})[0], read_file=files(), env="linux") is None


@pytest.mark.parametrize(
    ("name", "pages", "page_size"),
    [
        ("vm_stat-4k-pages.txt", 6127229 + 628646 + 430715 + 11820, 4096),
        ("vm_stat-16k-pages.txt", 3857 + 443760 + 1075 + 17340, 16384),
    ],
)
def test_vm_stat_available(name, pages, page_size):
    run, _ = tools({tuple(hp.VM_STAT): host(name)})
    state = hp.host_memory_in_use(run=run, read_file=files(), env="darwin")
    assert state is not None and state.available_bytes == pages * page_size and state.total_bytes is None
    assert hp.parse_vm_stat("Pages free: 12.\n") is None  # no page size: not guessed


# -------------------------------------------------------------------------------------- RAM kind and speed


@pytest.mark.parametrize(
    ("name", "kind", "mts", "rated", "width", "channel"),
    [
        ("dmidecode-ddr5-6000-expo.txt", "ddr5", 6000, 4800, 64, "P0:A"),  # EXPO on: configured > rated
        ("dmidecode-ddr5-5600-at-4200.txt", "ddr5", 4200, 5600, 64, "P0:A"),
        ("dmidecode-strix-halo-lpddr5.txt", "lpddr5", 8000, 8532, 32, "P0:A"),
        ("dmidecode-ddr4-server-channels.txt", "ddr4", 2666, 2666, 64, "P1:NODE0:0"),
        ("dmidecode-ddr3-configured-clock.txt", "ddr3", 1067, 1333, 64, None),  # "Configured Clock Speed"
    ],
)
def test_parse_dmidecode(name, kind, mts, rated, width, channel):
    assert hp.parse_dmidecode(host(name)) == [hp.MemoryModule(kind, mts, width, channel, rated)]


def test_dmidecode_profile_and_machine_host():
    run, _ = tools({tuple(hp.DMIDECODE): host("dmidecode-ddr5-5600-at-4200.txt")})
    m = detect(run=run, read_file=files(), env="linux", lookup=fake_lookup)
    assert m.host is not None and m.host.id == "ddr5-4200-1ch" and m.host.bandwidth_gbps == 33.6
    text = notes_text(m)
    assert "runs at 4200 MT/s, below its rated 5600 MT/s" in text
    assert "host RAM: 1-channel DDR5-4200 (33.6 GB/s peak, 25.2 GB/s effective)" in text
    assert "default host profile" not in text


def test_lshw_when_dmidecode_needs_root():
    run, calls = tools({tuple(hp.LSHW): host("lshw-memory-ddr4-server.txt")})
    profile, notes = hp.detect_host_profile(run=run, env="linux")
    assert hp.parse_lshw(host("lshw-memory-ddr4-server.txt")) == [
        hp.MemoryModule("ddr4", 2666, 64, "P0:MC0:A", 2666)
    ]
    assert profile is not None and profile.id == "ddr4-2666-1ch" and profile.bandwidth_gbps == 21.328
    assert "dmidecode: no answer (not installed, or it needs root)" in notes and [c[0] for c in calls] == [
        "dmidecode",
        "lshw",
    ]


def test_windows_powershell_and_wmic():
    modules = hp.parse_win32_memory(host("powershell-win32-physicalmemory.txt"))
    assert modules == [hp.MemoryModule("ddr4", 2400, 64, "P0:A", 2400)] * 2  # SMBIOSMemoryType 26 = DDR4
    run, calls = tools({tuple(hp.WMIC_MEMORY): host("wmic-memorychip-table.txt")})
    profile, _ = hp.detect_host_profile(run=run, env="win32")
    # ChannelA-DIMM0/1 + ChannelB-DIMM0/1: two channels; no SMBIOSMemoryType column: kind unknown
    assert profile is not None and (profile.id, profile.bandwidth_gbps) == ("ram-2133-2ch", 34.128)
    assert [c[0] for c in calls] == ["powershell", "wmic"]


def test_catalog_profile_is_used_when_it_exists():
    modules = [
        hp.MemoryModule("ddr5", 6000, 64, "P0:A", 6000),
        hp.MemoryModule("ddr5", 6000, 64, "P0:B", 6000),
    ]
    profile, _ = hp.profile_for(modules, source="test")
    assert (
        profile is not None
        and profile.id == "ddr5-6000-2ch"
        and profile.name == "2-channel DDR5-6000 (desktop)"
    )
    unlabelled = [hp.MemoryModule("ddr4", 3200, 64, None)] * 4  # four DIMMs, no labels: two per channel
    profile, notes = hp.profile_for(unlabelled, source="test")
    assert profile is not None and profile.id == "ddr4-3200-2ch" and "taken as 2 channel(s)" in notes[0]


def test_system_profiler_gives_no_speed_on_apple_silicon_and_bad_json_is_soft():
    for name in ("system-profiler-apple-silicon-lpddr5.json", "system-profiler-m1-lpddr4.json"):
        assert hp.parse_system_profiler(host(name)) == []
    assert hp.parse_system_profiler(host("system-profiler-intel-mac-abridged.json")) == []  # trailing comma


def test_apple_silicon_host_profile_is_the_chips_bandwidth():
    m = replay(apple_outputs(), platform="darwin")
    assert m.host is not None and m.host.id == "m4-max-128-unified"
    assert (m.host.bandwidth_gbps, m.host.effective_gbps) == (546.0, 409.5)
    run, calls = tools(apple_outputs())
    profile, _ = hp.detect_host_profile(run=run, env="darwin")  # no device given: the chip from sysctl
    assert (
        profile is not None and profile.bandwidth_gbps > 0 and "system_profiler" not in {c[0] for c in calls}
    )


def test_no_tool_no_profile():
    profile, notes = hp.detect_host_profile(run=tools({})[0], env="linux")
    assert profile is None and len(notes) == 2


@pytest.mark.parametrize(
    ("spec", "profile_id", "peak"),
    [
        ("ddr5-6000", "ddr5-6000-2ch", 96.0),
        ("DDR4-3200x2", "ddr4-3200-2ch", 51.2),
        ("6000", "ddr5-6000-2ch", 96.0),
        ("3200", "ddr4-3200-2ch", 51.2),
        ("ddr5-4800-8ch", "ddr5-4800-8ch", 307.2),
        ("ddr4-3200x4", "ddr4-3200-4ch", 102.4),
        ("lpddr5x-8533", "lpddr5x-8533-128bit", 136.528),
        ("lpddr5x-8000-256bit", "lpddr5x-8000-256bit", 256.0),
        ("ddr5-6000-2ch", "ddr5-6000-2ch", 96.0),
        ("DDR5 6000", "ddr5-6000-2ch", 96.0),
        ("6000MT/s", "ddr5-6000-2ch", 96.0),
        ("ddr5-7200", "ddr5-7200-2ch", 115.2),  # not in the catalog: built
        ("ddr5-6400x12", "ddr5-6400-12ch", 614.4),
        ("4000", "ram-4000-2ch", 64.0),
    ],
)
def test_parse_ram_spec(spec, profile_id, peak):
    profile = hp.parse_ram_spec(spec)
    assert (profile.id, profile.bandwidth_gbps) == (profile_id, peak)
    assert profile.effective_gbps == pytest.approx(0.75 * peak)


@pytest.mark.parametrize(
    "spec", ["", "fast", "ddr5", "ddr5-60", "ddr5-99999", "ddr5-6000x0", "ddr5-6000x30", "ddr6-6000-2ch-x"]
)
def test_parse_ram_spec_errors(spec):
    from qwenfit.errors import UnknownHardwareError

    with pytest.raises(UnknownHardwareError) as info:
        hp.parse_ram_spec(spec)
    assert repr(spec) in str(info.value)


# -------------------------------------------------------------------------------------- GPU memory in use


def test_gpu_memory_in_use_from_nvml():
    nvml = FakeNVML([(b"NVIDIA GeForce RTX 4090", 25757220864)])
    states, notes = gpu_memory_in_use(run=tools({})[0], env="linux", nvml=nvml)
    (gpu,) = states
    assert (gpu.vendor, gpu.name, gpu.total_bytes, gpu.used_bytes) == (
        "nvidia",
        "NVIDIA GeForce RTX 4090",
        25757220864,
        25757220864 - 25757220864 // 2,
    )
    assert gpu.free_bytes == 25757220864 // 2 and gpu.source == "NVML" and nvml.shutdown_calls == 1
    assert "in use (NVML)" in notes[-1]


def test_gpu_memory_in_use_from_nvidia_smi():
    run, _ = tools({tuple(det.NVIDIA_SMI_USED): host("nvidia-smi-used-p100.csv")})
    (gpu,), _ = gpu_memory_in_use(run=run, env="linux")
    assert (gpu.name, gpu.total_bytes, gpu.used_bytes, gpu.free_bytes) == (
        "Tesla P100-PCIE-16GB",
        16384 * MIB,
        0,
        16384 * MIB,
    )
    run, _ = tools({tuple(det.NVIDIA_SMI_USED): "NVIDIA GB10, [N/A], [N/A]\nnot csv\n"})
    states, notes = gpu_memory_in_use(run=run, env="linux")
    assert [(g.total_bytes, g.used_bytes, g.free_bytes) for g in states] == [(None, None, None)]
    assert any("ignored 'not csv'" in n for n in notes)


def test_gpu_memory_in_use_amd_smi_and_rocm_smi():
    run, _ = tools(
        {
            tuple(probes.AMD_SMI_METRIC): fixture("rx7800xt/amd-smi-metric.json"),
            tuple(probes.AMD_SMI_STATIC): fixture("rx7800xt/amd-smi-static-no-vram.json"),
        }
    )
    (gpu,), _ = gpu_memory_in_use(run=run, env="linux")
    assert (gpu.name, gpu.total_bytes, gpu.used_bytes) == ("AMD Radeon RX 7800 XT", 16368 * MIB, 14569 * MIB)
    run, _ = tools({tuple(probes.ROCM_SMI): fixture("rx7900xtx/rocm-smi.json")})
    (gpu,), _ = gpu_memory_in_use(run=run, env="linux")
    assert (gpu.name, gpu.total_bytes, gpu.used_bytes, gpu.source) == (
        "Radeon RX 7900 XTX",
        25753026560,
        563187712,
        "rocm-smi",
    )


def test_gpu_memory_in_use_xpu_smi():
    run, _ = tools({tuple(probes.XPU_SMI_DISCOVERY): intel("xpu-smi-discovery-dump-b60.json")})
    states, _ = gpu_memory_in_use(run=run, env="linux")
    assert [(g.vendor, g.name, g.total_bytes, g.used_bytes) for g in states] == [
        ("intel", "Intel Arc Pro B60", 25669140480, 25669140480 - 25447600128),
        ("intel", "Intel Arc Pro B60", 25669140480, 25669140480 - 25447604224),
    ]


def test_gpu_memory_in_use_on_macos_and_with_nothing():
    assert gpu_memory_in_use(run=tools({})[0], env="darwin")[0] == ()
    assert gpu_memory_in_use(run=tools({})[0], env="linux") == ((), ())
