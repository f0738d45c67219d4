"""Issue 17: plans that fit the person — memory kept for the system, speeds compared at one depth, no
option beaten on every axis, a default context, the constraints people ask for, mixed GPUs, vision
and MTP from the command line."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qwenfit
from qwenfit.api import check_result
from qwenfit.core.fit.planner import DEFAULT_CONTEXT
from qwenfit.core.fit.ranking import dominates
from qwenfit.core.hardware import default_ram_reserve
from qwenfit.errors import SettingError
from qwenfit.loaders.hardware import custom_machine, mixed_machine, parse_machine

DOMINANCE_RUNS = 30


def test_host_ram_is_kept_for_the_system():
    assert default_ram_reserve(8 * 10**9) == 4 * 10**9  # at least 4 GB
    assert default_ram_reserve(64 * 10**9) == 6_400_000_000  # 10 %
    assert default_ram_reserve(512 * 10**9) == 16 * 10**9  # at most 16 GB
    p = qwenfit.plan("35B-A3B", hardware="rtx-3060", ram_gb=32, engines=["llama.cpp"])
    assert any("3.20 GB of RAM kept" in n or "4.00 GB of RAM kept" in n for n in p.notes)
    for o in p.options:
        assert o.estimate is not None and o.estimate.budget is not None
        assert o.estimate.budget["cpu"] == 28 * 10**9  # 32 GB minus the 4 GB default
    none = qwenfit.plan("35B-A3B", hardware="rtx-3060", ram_gb=32, engines=["llama.cpp"], ram_reserve_gb=0)
    assert all(o.estimate.budget["cpu"] == 32 * 10**9 for o in none.options)  # type: ignore[union-attr]
    assert len(none.options) >= len(p.options)


def test_a_gpu_reserve_is_taken_from_each_gpu():
    e = qwenfit.estimate("9B", "Q4_K_M", context=8192, hardware="rtx-4090")
    kept = qwenfit.plan(
        "9B", hardware="rtx-4090", engines=["llama.cpp"], gpu_reserve_gb=1.5, quants=["Q4_K_M"]
    )
    assert kept.best is not None and kept.best.estimate is not None
    assert e.budget is not None and kept.best.estimate.budget is not None
    assert kept.best.estimate.budget["gpu"] == e.budget["gpu"] - 1_500_000_000


def test_the_default_context_and_max():
    p = qwenfit.plan("9B", hardware="rtx-4090", ram_gb=64, engines=["llama.cpp"], quants=["Q4_K_M"])
    assert p.best is not None and p.best.context == DEFAULT_CONTEXT == 32768
    assert p.best.max_context == 262144  # what fits is still reported
    m = qwenfit.plan(
        "9B", hardware="rtx-4090", ram_gb=64, engines=["llama.cpp"], quants=["Q4_K_M"], context="max"
    )
    assert m.best is not None and m.best.context == 262144
    small = qwenfit.plan("27B", hardware="rtx-3060", ram_gb=32, engines=["llama.cpp"], quants=["Q4_K_M"],
                         gpu_only=True)  # fmt: skip
    for o in small.options:  # less than the default fits: planned at what fits, and said so
        assert o.context < DEFAULT_CONTEXT and any("the default 32,768 does not fit" in n for n in o.notes)


def test_speeds_are_compared_at_one_depth():
    """Decode speed does not depend on how much context an option allocates, only on the depth."""
    kw = dict(hardware="rtx-4090", ram_gb=64, engines=["llama.cpp"], quants=["Q4_K_M"])
    a = qwenfit.plan("9B", context=8192, **kw).best
    b = qwenfit.plan("9B", context=131072, **kw).best
    assert a is not None and b is not None and a.decode_tokens_per_s == b.decode_tokens_per_s
    deep = qwenfit.plan("9B", context=131072, depth=131072, **kw).best
    assert deep is not None and deep.decode_tokens_per_s < b.decode_tokens_per_s


@settings(max_examples=DOMINANCE_RUNS, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.sampled_from(["9B", "27B", "35B-A3B", "122B-A10B"]),
    gpu=st.sampled_from(
        ["rtx-3060", "rtx-4060-ti-16gb", "rtx-4090", "2x rtx-3090", "h100-sxm", "m4-max-128"]
    ),
    ram=st.sampled_from([16, 32, 64, 128]),
    prefer=st.sampled_from(["quality", "speed", "context"]),
)
def test_no_option_shown_is_beaten_on_every_axis(model, gpu, ram, prefer):
    p = qwenfit.plan(model, hardware=gpu, ram_gb=ram, prefer=prefer)
    for a in p.options:
        assert not any(dominates(b, a) for b in p.options if b is not a), (a.quant, a.engine)
    for r in p.rejected:  # each option set aside names one that really beats it
        if "beats it on every axis" in r.reason:
            beater = r.reason.split(" ", 1)[0]
            assert any(o.quant == beater and o.engine == r.engine for o in p.options)


def test_prefer_speed_and_min_speed():
    kw = dict(hardware="rtx-3060", ram_gb=32, engines=["llama.cpp"])
    fast = qwenfit.plan("35B-A3B", prefer="speed", **kw)
    good = [o for o in fast.options if o.quality_class < 2]
    assert fast.best is not None and fast.best.decode_tokens_per_s == max(
        o.decode_tokens_per_s or 0 for o in good
    )
    floor = qwenfit.plan("35B-A3B", min_speed=50, **kw)
    assert floor.options and all((o.decode_tokens_per_s or 0) >= 50 for o in floor.options)
    assert any("below the 50 tok/s asked" in r.reason for r in floor.rejected)
    with pytest.raises(SettingError, match="prefer="):
        qwenfit.plan("9B", prefer="vibes", **kw)


def test_gpu_only_places_nothing_in_host_ram():
    p = qwenfit.plan("35B-A3B", hardware="rtx-4090", ram_gb=64, engines=["llama.cpp"], gpu_only=True)
    assert p.options and all(o.placement is not None and o.placement.kind == "gpu" for o in p.options)
    assert any("GPU only" in n for n in p.notes)


def test_mixed_gpus_each_get_their_budget_and_a_split():
    m = mixed_machine(["rtx-4090", "rtx-3060"], ram_gb=64)
    assert [d.id for d in m.devices] == ["rtx-4090", "rtx-3060"] and m.name == "rtx-4090 + rtx-3060"
    p = qwenfit.plan("27B", hardware=["rtx-4090", "rtx-3060"], ram_gb=64, engines=["llama.cpp"],
                     quants=["Q4_K_M"])  # fmt: skip
    best = p.best
    assert best is not None and best.estimate is not None and best.estimate.budget is not None
    assert best.estimate.budget["gpu0"] > best.estimate.budget["gpu1"]  # each GPU its own memory
    assert "-ts 25.25,12.35" in best.command
    r = check_result("27B", "Q4_K_M", context=best.context, hardware=m)
    assert r.estimate.budget == best.estimate.budget and "-ts 25.25,12.35" in r.command


def test_mixed_gpus_with_experts_in_ram_fill_the_first_gpu():
    """--n-cpu-moe empties the first layers, which -ts puts on the first GPU: the planner skews its split
    by usable memory towards that GPU (as for identical GPUs), so fewer experts leave the GPUs than with
    the plain split (which left the RTX 4090 at 3.97 of 25.25 GB), and check agrees it fits."""
    m = mixed_machine(["rtx-4090", "rtx-3060"], ram_gb=64)
    kw = dict(hardware=["rtx-4090", "rtx-3060"], ram_gb=64, engines=["llama.cpp"], quants=["UD-IQ4_NL"])
    skewed = qwenfit.plan("122B-A10B", **kw).best
    plain = qwenfit.plan("122B-A10B", options={"llama.cpp": {"tensor_split": (25.25, 12.35)}}, **kw).best
    assert skewed is not None and plain is not None and skewed.estimate is not None
    assert skewed.placement.n_cpu_moe is not None and plain.placement.n_cpu_moe is not None
    assert skewed.placement.n_cpu_moe < plain.placement.n_cpu_moe
    assert "-ts 25.25,12.35" in plain.command and "-ts 25.25,12.35" not in skewed.command
    assert skewed.memory_by_device["gpu0"] > 0.9 * skewed.estimate.budget["gpu0"]
    p = skewed.placement
    r = check_result("122B-A10B", "UD-IQ4_NL", context=skewed.context, hardware=m,
                     n_cpu_moe=p.n_cpu_moe, tensor_split=p.tensor_split)  # fmt: skip
    assert r.estimate.fits and r.estimate.terms == skewed.estimate.terms


def test_plan_and_check_quote_the_same_per_gpu_shortfall():
    p = qwenfit.plan("397B-A17B", hardware="8x rtx-4090", ram_gb=256, engines=["vllm"], quants=["fp8"],
                     context=4096)  # fmt: skip
    (o,) = p.rejected
    r = check_result(
        "397B-A17B",
        "fp8",
        engine="vllm",
        hardware="8x rtx-4090",
        ram_gb=256,
        context=4096,
        tp=8,
        vision=False,
    )
    assert f"short by {r.estimate.shortfall_bytes / 1e9:.2f} GB on each GPU" in o.reason


def test_vision_and_mtp_reach_the_plan():
    kw = dict(hardware="rtx-4090", ram_gb=64, engines=["llama.cpp"], quants=["Q4_K_M"])
    plain = qwenfit.plan("9B", **kw).best
    seeing = qwenfit.plan("9B", vision=True, **kw).best
    assert plain is not None and seeing is not None
    assert "--no-mmproj" in plain.command and "--no-mmproj" not in seeing.command
    assert (
        seeing.estimate is not None and seeing.estimate.term("vision") > 0
    )  # the mmproj file and its buffer
    assert seeing.estimate.term("vision_compute") > 0
    drafting = qwenfit.plan("9B", mtp=True, **kw).best
    assert drafting is not None and "--spec-type draft-mtp" in drafting.command


def test_the_cli_takes_the_new_flags(capsys):
    import qwenfit.cli

    argv = ["plan", "35B-A3B", "--gpu", "rtx-4090", "--gpu", "rtx-3060", "--ram", "64", "--ram-reserve", "8",
            "--prefer", "speed", "--min-speed", "20", "--context", "max", "--vision",
            "--engine", "llama.cpp"]  # fmt: skip
    assert qwenfit.cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("qwenfit plan for rtx-4090 + rtx-3060: NVIDIA GeForce RTX 4090")
    assert "8.00 GB of RAM kept for the system" in out and "-ts " in out
    assert qwenfit.cli.main(["check", "9B", "--quant", "Q4_K_M", "--vram", "24", "--mtp", "--vision"]) == 0
    out = capsys.readouterr().out
    assert "--spec-type draft-mtp" in out and "vision" in out


def test_a_custom_machine_keeps_its_numbers():
    m = custom_machine(vram_gb=24, ram_gb=64)
    assert parse_machine("rtx-4090").devices[0].usable_bytes != m.devices[0].usable_bytes


def test_a_detected_machine_plans_against_the_memory_available_now():
    """Detection keeps what is in use: host RAM (MemAvailable) and each GPU's used memory."""
    from pathlib import Path

    from qwenfit.core.hardware import target_for
    from qwenfit.loaders import detect as detection

    meminfo = (
        Path(__file__).parents[1] / "fixtures" / "detect" / "linux-64g" / "proc-meminfo.txt"
    ).read_text()
    smi = "NVIDIA GeForce RTX 4090, 24564\n"
    used = "NVIDIA GeForce RTX 4090, 24564, 1024\n"

    def run(cmd: list[str]) -> str | None:
        if cmd[:1] == ["nvidia-smi"]:
            return used if "memory.used" in ",".join(cmd) else smi
        return None

    m = detection.detect(run=run, read_file=lambda p: meminfo if p == "/proc/meminfo" else None, env="linux",
                         nvml=False, psutil=False)  # fmt: skip
    assert m.ram_bytes == 65759288 * 1024
    assert m.ram_reserve_bytes == (65759288 - 60233968) * 1024  # in use now
    assert m.gpu_reserve_bytes == (1024 << 20,)
    t = target_for(m)
    assert t.ram_bytes == 60233968 * 1024 and t.vram_bytes == m.devices[0].usable_bytes - (1024 << 20)


def test_a_gpu_outside_the_catalog_and_the_ram_speed():
    p = qwenfit.plan(
        "9B", hardware="custom:24GB:936GBps", ram_gb=64, engines=["llama.cpp"], quants=["Q4_K_M"]
    )
    assert p.best is not None and p.best.decode_tokens_per_s  # a bandwidth given: a speed estimate
    from qwenfit.cli import main

    assert main(["plan", "35B-A3B", "--gpu", "rtx-3060", "--ram", "32", "--ram-speed", "ddr4-3200",
                             "--json", "--engine", "llama.cpp"]) == 0  # fmt: skip
