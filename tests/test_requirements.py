"""``qwenfit.requirements`` / ``qwenfit need``: reverse planning over the hardware catalog.

Properties rather than snapshots: every machine returned runs the model with the option shown (the
full planner agrees on that machine), the list is ordered and holds no machine a smaller one covers,
one RAM step or half the GPUs less does not run it (minimality), ``min_speed`` is met, a larger
model needs a larger machine; unknown inputs are typed errors; the command prints and exits.
"""

from __future__ import annotations

import json

import pytest

import qwenfit
import qwenfit.cli
from qwenfit.api.requirements import (
    EIGHT_GPU_MIN_BYTES,
    GPU_COUNTS,
    MachineFit,
    Requirements,
    candidate_count,
    gpu_counts,
    host_for,
    ram_ladder,
    requirements,
)
from qwenfit.core.engines.base import get
from qwenfit.errors import SettingError, UnknownModelError, UnknownQuantError
from qwenfit.loaders.hardware import hardware_catalog, parse_machine


@pytest.fixture(scope="module")
def small() -> Requirements:
    return requirements("9B", "Q4_K_M")


@pytest.fixture(scope="module")
def dense() -> Requirements:
    return requirements("27B", "Q4_K_M")


@pytest.fixture(scope="module")
def moe() -> Requirements:
    return requirements("35B-A3B")


def _same_gpu_config(m: MachineFit, n_gpus: int, ram_gb: int) -> qwenfit.Machine:
    """``m``'s machine with another GPU count or RAM size (the sweep's host-memory rule)."""
    spec = "cpu" if m.device is None else f"{n_gpus}x {m.device.id}"
    return parse_machine(spec, ram_gb=ram_gb, host=host_for(ram_gb))


def _replan(r: Requirements, machine: qwenfit.Machine) -> qwenfit.Plan:
    return qwenfit.plan(
        r.model,
        hardware=machine,
        quants=None if r.quant is None else [r.quant],
        context=r.context,
        sequences=r.sequences,
        engines=r.engines,
        min_context=r.min_context,
    )


def _ram_gb(m: MachineFit) -> int:
    return round(m.ram_bytes / 1e9)


def test_candidates_and_ladder() -> None:
    devices = list(hardware_catalog().values())
    unified = sum(d.kind == "unified" for d in devices)
    machines = sum(len(ram_ladder(n)) for d in devices if d.kind == "gpu" for n in gpu_counts(d))
    assert candidate_count() == machines + unified + len(ram_ladder(0))
    for d in devices:
        if d.kind == "gpu":
            assert gpu_counts(d) == (GPU_COUNTS if d.memory_bytes >= EIGHT_GPU_MIN_BYTES else (1, 2, 4))
    assert ram_ladder(1)[:5] == (16, 32, 64, 128, 256)
    assert max(ram_ladder(8)) > max(ram_ladder(1))
    assert all(list(ram_ladder(n)) == sorted(ram_ladder(n)) for n in (0, *GPU_COUNTS))
    assert host_for(64) is None and host_for(2048) is not None


@pytest.mark.parametrize("which", ["small", "dense", "moe"])
def test_ordered_and_undominated(which: str, request: pytest.FixtureRequest) -> None:
    r: Requirements = request.getfixturevalue(which)
    assert r.fits and r.smallest is r.machines[0]
    keys = [m.sort_key() for m in r.machines]
    assert keys == sorted(keys)
    assert r.candidates == candidate_count() and 0 < r.evaluated < r.candidates
    for a in r.machines:
        assert a.option in a.options and a.option.fits and a.option.command
        assert a.memory_bytes == a.vram_bytes + a.ram_bytes
        for b in r.machines:
            if a is b or a.kind != b.kind or a.kind == "unified":
                continue
            same_gpu = a.device is None if b.device is None else a.device == b.device
            covered = a.n_gpus <= b.n_gpus and a.ram_bytes <= b.ram_bytes
            assert not (same_gpu and covered), (
                f"{b.machine.name} + {_ram_gb(b)} GB is covered by {a.machine.name}"
            )
    chips = [m.device.name for m in r.machines if m.kind == "unified" and m.device is not None]
    assert len(chips) == len(set(chips)), "one memory option per unified chip"


@pytest.mark.parametrize("which", ["dense", "moe"])
def test_the_planner_agrees(which: str, request: pytest.FixtureRequest) -> None:
    """On every kind of machine returned, the full planner (every quantization, no pruning) picks the
    same option: the sweep's pruning changes nothing."""
    r: Requirements = request.getfixturevalue(which)
    sample: dict[tuple[str, int], MachineFit] = {}
    for m in r.machines:
        sample.setdefault((m.kind, m.n_gpus), m)
    for m in sample.values():
        best = _replan(r, m.machine).best
        assert best is not None, m.machine.name
        o = m.option
        got = (o.quant, o.engine, str(o.placement), o.context, o.command)
        assert got == (best.quant, best.engine, str(best.placement), best.context, best.command)


def test_check_agrees(small: Requirements) -> None:
    """``qwenfit.check`` of each machine's option (its placement as engine options) fits."""
    for m in small.machines[::4]:
        o = m.option
        assert o.placement is not None
        options = {k: v for k, v in get(o.engine).placement_options(o.placement).items() if v is not None}
        e = qwenfit.check(
            small.model,
            o.quant,
            context=o.context,
            sequences=o.sequences,
            engine=o.engine,
            hardware=m.machine,
            **options,
        )
        assert e.fits, m.machine.name


@pytest.mark.parametrize("which", ["dense", "moe"])
def test_minimal(which: str, request: pytest.FixtureRequest) -> None:
    """One RAM step less, or half the GPUs with the same RAM, or a unified chip's next smaller memory
    option: none of them runs the model."""
    r: Requirements = request.getfixturevalue(which)
    smaller: list[qwenfit.Machine] = []
    for m in r.machines:
        if m.kind == "unified":
            assert m.device is not None
            less = [
                d
                for d in hardware_catalog().values()
                if d.name == m.device.name and d.memory_bytes < m.device.memory_bytes
            ]
            if less:
                smaller.append(parse_machine(max(less, key=lambda d: d.memory_bytes).id))
            continue
        ladder = ram_ladder(m.n_gpus)
        at = ladder.index(_ram_gb(m))
        if at:
            smaller.append(_same_gpu_config(m, m.n_gpus, ladder[at - 1]))
        if m.n_gpus > 1:
            smaller.append(_same_gpu_config(m, m.n_gpus // 2, _ram_gb(m)))
    assert smaller
    for machine in smaller[:12]:
        assert not _replan(r, machine).options, f"{machine.name} + {machine.ram_bytes} B RAM runs it"


def test_a_larger_model_needs_a_larger_machine(small: Requirements, dense: Requirements) -> None:
    assert small.smallest is not None and dense.smallest is not None
    assert small.smallest.memory_bytes < dense.smallest.memory_bytes
    assert all(m.option.quant == "Q4_K_M" for m in (*small.machines, *dense.machines))


def test_min_speed(small: Requirements) -> None:
    speeds = sorted(m.option.decode_tokens_per_s or 0.0 for m in small.machines)
    floor = speeds[len(speeds) // 2]  # half the machines are too slow at their best option
    fast = requirements("9B", "Q4_K_M", min_speed=floor)
    assert fast.fits and fast.min_speed == floor
    assert any("unknown" in n for n in fast.notes)
    for m in fast.machines:
        assert all(o.fits for o in m.options)
        assert m.option.decode_tokens_per_s is not None and m.option.decode_tokens_per_s >= floor
    assert fast.smallest is not None and small.smallest is not None
    assert fast.smallest.memory_bytes >= small.smallest.memory_bytes
    # a machine of the plain sweep stays exactly when one of its options is fast enough
    fast_ones = {(m.machine.name, m.ram_bytes) for m in fast.machines}
    for m in small.machines:
        quick = any((o.decode_tokens_per_s or 0.0) >= floor for o in m.options)
        assert quick == ((m.machine.name, m.ram_bytes) in fast_ones), m.machine.name


def test_context_and_sequences_are_kept() -> None:
    r = requirements("0.8B", "Q8_0", context=65536, sequences=2, engines=["llama.cpp"])
    assert r.fits and r.engines == ("llama.cpp",)
    for m in r.machines:
        assert (m.option.context, m.option.sequences, m.option.engine) == (65536, 2, "llama.cpp")


def test_a_model_spec_is_planned_as_given(small: Requirements) -> None:
    """A ModelSpec (loaded once by the caller) gives the same machines as the catalog name."""
    r = requirements(qwenfit.load("9B"), "Q4_K_M")
    assert [(m.machine.name, m.ram_bytes, m.option.quant, str(m.option.placement)) for m in r.machines] == [
        (m.machine.name, m.ram_bytes, m.option.quant, str(m.option.placement)) for m in small.machines
    ]


def test_errors() -> None:
    with pytest.raises(UnknownModelError):
        requirements("Qwen9-1T")
    with pytest.raises(UnknownQuantError, match="Q4_K_M"):
        requirements("9B", "Q4_K_N")
    with pytest.raises(SettingError, match="none of the engines"):
        requirements("9B", "Q4_K_M", engines=["vllm"])
    with pytest.raises(SettingError, match="unknown engine"):
        requirements("9B", engines=["vllm2"])
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(SettingError, match="min_speed"):
            requirements("9B", min_speed=bad)
    with pytest.raises(SettingError, match="sequences"):
        requirements("9B", sequences=0)


def test_nothing_runs_it() -> None:
    """A speed no catalog machine reaches: an answer, not an exception (until asked)."""
    r = requirements("0.8B", "Q8_0", min_speed=1e6)
    assert not r.fits and r.smallest is None and "no catalog machine" in str(r)
    assert any(n.startswith("the fastest option found: ~") for n in r.notes)
    with pytest.raises(qwenfit.DoesNotFit):
        r.raise_if_not_fits()


@pytest.fixture
def need(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """``need("9B", ...)``: ``qwenfit need`` in-process (registered here until qwenfit.cli lists it)."""
    monkeypatch.setattr(qwenfit.cli, "COMMANDS", tuple(dict.fromkeys((*qwenfit.cli.COMMANDS, "need"))))
    monkeypatch.setenv("NO_COLOR", "1")

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = qwenfit.cli.main(["need", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_cli(need, small: Requirements) -> None:
    code, out, err = need("9B", "--quant", "Q4_K_M")
    assert code == 0 and not err
    first = small.machines[0]
    assert out.splitlines()[0].startswith("qwenfit need Qwen3.5-9B (Q4_K_M")
    assert f"smallest: {first.machine.name}" in out and first.option.command.splitlines()[0] in out
    assert "--all lists every machine" in out

    code, out, _ = need("9B", "--quant", "Q4_K_M", "--json")
    data = json.loads(out)
    assert code == 0 and data["kind"] == "need" and data["fits"] and data["quant"] == "Q4_K_M"
    assert len(data["machines"]) == len(small.machines)
    row = data["machines"][0]
    assert row["name"] == first.machine.name and row["memory_bytes"] == first.memory_bytes
    assert row["option"]["command"] == first.option.command and row["machine"]["name"] == first.machine.name
    assert [m["memory_bytes"] for m in data["machines"]] == sorted(
        m["memory_bytes"] for m in data["machines"]
    )


def test_cli_errors(need) -> None:
    for args, words in [
        (("9B", "--quant", "Q4_K_N"), "unknown quant"),
        (("Qwen9-1T",), "Qwen9-1T"),
        (("9B", "--min-speed", "fast"), "--min-speed"),
        (("9B", "--engine", "vllm", "--quant", "Q4_K_M"), "none of the engines"),
    ]:
        code, out, err = need(*args)
        assert code == 2 and out == "", args
        assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err

    code, out, _ = need("0.8B", "--quant", "Q8_0", "--min-speed", "1000000", "--json")
    assert code == 1 and json.loads(out)["machines"] == []
