"""``qwenfit.requirements``: reverse planning — the smallest catalog machines that run a model, and
how each runs it (:func:`qwenfit.plan` on every candidate machine, with pruning)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from qwenfit.api.planning import plan, plan_model
from qwenfit.api.resolve import positive
from qwenfit.core.engines.base import Engine
from qwenfit.core.engines.base import engines as all_engines
from qwenfit.core.fit.planner import MIN_CONTEXT, Option, Plan
from qwenfit.core.fit.speed_bands import format_cell, format_rate
from qwenfit.core.hardware import Device, Machine
from qwenfit.core.model.spec import ModelSpec
from qwenfit.errors import DoesNotFit, SettingError, UnknownQuantError
from qwenfit.loaders import load

__all__ = [
    "EIGHT_GPU_MIN_BYTES",
    "GPU_COUNTS",
    "RAM_LADDER_GB",
    "MachineFit",
    "Requirements",
    "candidate_count",
    "format_requirements",
    "gpu_counts",
    "host_for",
    "ram_ladder",
    "requirements",
]

GB = 10**9
GPU_COUNTS = (1, 2, 4, 8)  # how many of a discrete catalog GPU a candidate machine holds ...
EIGHT_GPU_MIN_BYTES = 20 << 30  # ... 8 only of GPUs with 20 GiB or more (8-GPU servers and rigs)
RAM_LADDER_GB = (16, 32, 64, 128, 256)  # host RAM of a candidate machine (decimal GB) ...
_SERVER_RAM_GB = {4: (512,), 8: (512, 1024, 2048)}  # ... and more for 4- and 8-GPU servers
_CPU_RAM_GB = (*RAM_LADDER_GB, 512, 1024, 2048)  # CPU-only machines: up to a two-socket server
# the host memory of a machine with that much RAM: up to 256 GB the planner's default (a dual-channel
# DDR5 desktop: 4 x 64 GB DIMMs), 512 GB an 8-channel workstation, 1 TB and more a 12-channel server
_HOST_BY_RAM_GB = ((256, None), (512, "ddr5-5200-8ch"), (math.inf, "ddr5-4800-12ch"))


def ram_ladder(n_gpus: int) -> tuple[int, ...]:
    """The host RAM sizes (decimal GB) tried with ``n_gpus`` discrete GPUs (0: a CPU-only machine)."""
    if n_gpus == 0:
        return _CPU_RAM_GB
    return (*RAM_LADDER_GB, *_SERVER_RAM_GB.get(n_gpus, ()))


def gpu_counts(dev: Device) -> tuple[int, ...]:
    """How many of discrete GPU ``dev`` the candidate machines hold: 1, 2 and 4 of every GPU; 8 of
    those with at least 20 GiB (the 24 GB class and up: the 8-GPU servers and rigs people build;
    four smaller cards with host RAM cover what eight would)."""
    return tuple(n for n in GPU_COUNTS if n < 8 or dev.memory_bytes >= EIGHT_GPU_MIN_BYTES)


def host_for(ram_gb: int) -> str | None:
    """The host-RAM profile id assumed for ``ram_gb`` of RAM (None: the planner's default)."""
    return next(host for limit, host in _HOST_BY_RAM_GB if ram_gb <= limit)


@dataclass(frozen=True, slots=True)
class MachineFit:
    """A machine that runs the model and the option the planner picks there (the best one that
    meets the speed asked for)."""

    machine: Machine
    option: Option
    options: tuple[Option, ...]  # every option that fits the machine, best first (``option`` among them)

    @property
    def kind(self) -> str:
        """``gpu`` (discrete GPUs + host RAM), ``unified`` (one unified-memory system) or ``cpu``."""
        if not self.machine.devices:
            return "cpu"
        return "unified" if self.machine.unified else "gpu"

    @property
    def device(self) -> Device | None:
        return self.machine.devices[0] if self.machine.devices else None

    @property
    def n_gpus(self) -> int:
        return self.machine.n_devices

    @property
    def vram_bytes(self) -> int:
        """Device memory summed over devices (a unified system: all its memory)."""
        return self.machine.vram_bytes

    @property
    def ram_bytes(self) -> int:
        """Host RAM besides the device memory (0 on a unified-memory system: it is the same memory)."""
        return 0 if self.machine.unified else self.machine.ram_bytes or 0

    @property
    def memory_bytes(self) -> int:
        """What the machine is ordered by: device memory summed + host RAM."""
        return self.vram_bytes + self.ram_bytes

    def sort_key(self) -> tuple[int, int, str]:
        return self.memory_bytes, self.n_gpus, self.machine.name


@dataclass(frozen=True, slots=True)
class Requirements:
    """The catalog machines that run ``model`` as asked, smallest first (see :func:`requirements`)."""

    model: str
    quant: str | None
    context: int | None
    sequences: int
    engines: tuple[str, ...] | None
    min_speed: float | None
    min_context: int
    machines: tuple[MachineFit, ...]
    candidates: int  # machines in the sweep
    evaluated: int  # plans run after pruning
    notes: tuple[str, ...] = field(default=())

    @property
    def smallest(self) -> MachineFit | None:
        return self.machines[0] if self.machines else None

    @property
    def fits(self) -> bool:
        return bool(self.machines)

    def raise_if_not_fits(self) -> Requirements:
        if not self.machines:
            raise DoesNotFit(
                f"no catalog machine runs {self.model} as asked ({self.asked()})", shortfall_bytes=0
            )
        return self

    def asked(self) -> str:
        """What was asked, in words."""
        parts = [self.quant or "any quant"]
        if self.context is None:
            parts.append(f"the planner's context, at least {self.min_context:,} tokens")
        else:
            parts.append(f"{self.context:,} tokens")
        parts.append(f"{self.sequences} sequence" + ("s" if self.sequences > 1 else ""))
        if self.engines is not None:
            parts.append(", ".join(self.engines))
        if self.min_speed is not None:
            parts.append(f"at least {self.min_speed:g} tok/s decode")
        return ", ".join(parts)

    def __str__(self) -> str:
        return format_requirements(self)


def requirements(
    model: str | os.PathLike[str] | ModelSpec,
    quant: str | None = None,
    *,
    context: int | None = None,
    sequences: int = 1,
    engines: Iterable[str] | None = None,
    min_speed: float | None = None,
    min_context: int = MIN_CONTEXT,
) -> Requirements:
    """The machines of the hardware catalog that run ``model``, smallest first, with the option the
    planner picks on each (quant, engine, placement, context, memory per device, speed, command).

    Candidate machines: every discrete catalog GPU 1, 2 and 4 times, and 8 times when it has at least
    20 GiB (:func:`gpu_counts`), each with host RAM from :func:`ram_ladder` (16 to 256 GB; 4-GPU
    machines up to 512 GB, 8-GPU ones up to 2 TB) so that expert and layer offload to RAM count;
    every unified-memory system (Apple Silicon, Strix Halo, DGX Spark, Jetson) as it is; CPU-only
    machines with 16 GB to 2 TB. Host
    memory is the planner's default (dual-channel DDR5) up to 256 GB, an 8-channel workstation at
    512 GB and a 12-channel server beyond (:func:`host_for`): it only changes speed estimates.

    Each candidate is planned for the one model (:func:`qwenfit.plan` with ``quants=[quant]``,
    ``context``, ``sequences``, ``engines``, ``min_context``; default engines: the planner's for that
    machine). A machine qualifies when an option fits and, with ``min_speed``, its estimated decode
    speed is at least ``min_speed`` tokens/s — an option whose speed is unknown never meets a
    ``min_speed``. Its option is the planner's best that qualifies.

    Kept are the machines no smaller one covers: a machine is dropped when one with the same GPU,
    no more of them and no more RAM qualifies (a unified system: the same chip with less memory).
    So for each GPU and count the RAM sizes are tried from the smallest up, stopping at the first
    that qualifies, and more GPUs are tried only with less RAM than fewer needed; the memory
    options of a unified chip likewise. A machine whose memory (device memory summed + host RAM)
    cannot hold the weights of any quantization tried is not planned (the planner's weights, read
    from its estimates on one such device), and a machine's plan leaves out the quantizations whose
    weights cannot fit it: its options are the same. Order: device memory summed + host RAM, then
    fewer GPUs, then the name (the catalog holds no prices). ``candidates`` counts the machines of
    the sweep, ``evaluated`` the plans run.

    Raises:
        UnknownModelError, SourceNotFoundError, ...: the model cannot be loaded.
        UnknownQuantError: ``quant`` is no quantization qwenfit knows.
        SettingError: an unknown engine, a quant none of the engines loads, a non-positive number.
    """
    spec = load(model)
    given: str | ModelSpec = spec
    if isinstance(model, str) and not os.path.exists(model):
        from qwenfit.loaders.catalog import find

        if find(model) is not None and spec.checkpoint is None:
            given = model  # as qwenfit.plan(name): the catalog's cache key and published artifacts
    for label, value in (("sequences", sequences), ("min_context", min_context)):
        positive(label, value)
    if context is not None:
        positive("context", context)
    if min_speed is not None and (
        isinstance(min_speed, bool)
        or not isinstance(min_speed, (int, float))
        or not math.isfinite(min_speed)
        or min_speed <= 0
    ):
        raise SettingError(f"min_speed must be a positive number of tokens/s, got {min_speed!r}")
    engine_list = None if engines is None else all_engines(list(dict.fromkeys(engines)))
    quant = None if quant is None else _checked_quant(quant, engine_list or all_engines())

    sweep = _Sweep(given, spec, quant, context, sequences, engine_list, min_speed, min_context)
    sweep.run()
    machines = tuple(sorted(sweep.found, key=MachineFit.sort_key))
    notes = []
    if min_speed is not None:
        notes.append("options whose decode speed is unknown do not count toward min_speed")
        if not machines and sweep.fastest is not None:
            notes.append(f"the fastest option found: {sweep.fastest[1]}")
    if not machines and sweep.largest is not None:  # why not, on the largest machine planned
        p = sweep.largest[1]
        why = [f"{o.quant} on {o.engine}: {o.reason}" for o in p.rejected[:3] if o.reason]
        notes += [f"on {p.machine.name}, the largest machine planned: {w}" for w in why]
    return Requirements(
        model=spec.name,
        quant=quant,
        context=context,
        sequences=sequences,
        engines=None if engine_list is None else tuple(e.name for e in engine_list),
        min_speed=None if min_speed is None else float(min_speed),
        min_context=min_context,
        machines=machines,
        candidates=candidate_count(),
        evaluated=sweep.evaluated,
        notes=tuple(notes),
    )


def _checked_quant(quant: str, engines: Sequence[Engine]) -> str:
    """``quant`` as the engines spell it; an error naming the close names when no engine takes it."""
    import difflib

    from qwenfit.core.formats.gguf import FILE_TYPES
    from qwenfit.core.formats.gpu import FORMATS
    from qwenfit.core.formats.names import normalise

    if not isinstance(quant, str):
        raise SettingError(f"quant must be a quantization name, got {quant!r}")
    name = normalise(quant)
    if name is None:
        close = difflib.get_close_matches(quant.strip(), [*FILE_TYPES, *FORMATS], n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownQuantError(f"unknown quant {quant!r}.{hint} See 'qwenfit quants MODEL'.")
    if name.kind == "gguf_file":
        raise SettingError(f"quant {quant!r} is a GGUF file: give it as the model instead")
    if not any(e.accepts(name.canonical) for e in engines):
        raise SettingError(
            f"quant {name.canonical!r} is loaded by none of the engines asked for "
            f"({', '.join(e.name for e in engines)})"
        )
    return name.canonical


def _catalog() -> tuple[list[Device], list[Device]]:
    """(discrete GPUs, unified-memory systems) of the hardware catalog, in file order."""
    from qwenfit.loaders.hardware import hardware_catalog

    devices = list(hardware_catalog().values())
    return [d for d in devices if d.kind == "gpu"], [d for d in devices if d.kind == "unified"]


def candidate_count() -> int:
    """How many machines the sweep covers (before pruning)."""
    discrete, unified = _catalog()
    gpus = sum(len(ram_ladder(n)) for dev in discrete for n in gpu_counts(dev))
    return gpus + len(unified) + len(ram_ladder(0))


def _machines(spec: str) -> Callable[[int], Machine]:
    """The machine ``spec`` with a given RAM size (decimal GB) and the host memory assumed for it."""
    from qwenfit.loaders.hardware import parse_machine

    return lambda ram_gb: parse_machine(spec, ram_gb=ram_gb, host=host_for(ram_gb))


class _Sweep:
    """The candidate machines planned one by one, with the pruning :func:`requirements` describes.

    Besides the order of the search, one bound saves work: the planner's weights of each (engine,
    quant) on a device (read from the estimates of the first plan made on one such device) must fit
    in the machine's memory (device memory summed + host RAM) — more GPUs only add copies and
    buffers. Quantizations that cannot fit are left out of a machine's plan (its options are the
    same: they could not be among them), and a machine where none can fit is not planned at all."""

    def __init__(
        self,
        model: str | ModelSpec,
        spec: ModelSpec,
        quant: str | None,
        context: int | None,
        sequences: int,
        engines: Sequence[Engine] | None,
        min_speed: float | None,
        min_context: int,
    ) -> None:
        self.model, self.quant, self.context, self.sequences = model, quant, context, sequences
        self.engines, self.min_speed, self.min_context = engines, min_speed, min_context
        self.where = plan_model(spec, model).where
        self.found: list[MachineFit] = []
        self.evaluated = 0
        self.bounded = 0  # machines not planned: no quantization's weights fit their memory
        self.largest: tuple[int, Plan] | None = None  # the plan on the machine with the most memory
        self.fastest: tuple[float, str] | None = None  # the fastest option seen, in words
        self.weights: dict[str, dict[tuple[str, str], int | None]] = {}  # _device_key -> (engine, quant)

    def run(self) -> None:
        from qwenfit.loaders.hardware import parse_machine

        discrete, unified = _catalog()
        for dev in discrete:
            bound = math.inf  # the least RAM with which fewer of these GPUs qualified
            for n in gpu_counts(dev):
                sizes = [r for r in ram_ladder(n) if r < bound]
                if not sizes:
                    break  # every machine with more of these GPUs is covered
                found = self.smallest(sizes, _machines(f"{n}x {dev.id}"))
                if found is not None:
                    bound = found
        families: dict[str, list[Device]] = {}
        for dev in unified:  # the memory options of one chip share its name
            families.setdefault(dev.name, []).append(dev)
        for members in families.values():
            for dev in sorted(members, key=lambda d: d.memory_bytes):
                found_fit, _ = self.evaluate(parse_machine(dev.id))
                if found_fit is not None:
                    self.found.append(found_fit)
                    break
        self.smallest(list(ram_ladder(0)), _machines("cpu"))

    def smallest(self, sizes: list[int], machine_of: Callable[[int], Machine]) -> int | None:
        """The smallest RAM size (of ``sizes``, ascending) whose machine qualifies, or None. With
        ``min_speed``, a size that runs the model too slowly sends the search to the largest size
        first: when that one is too slow as well, no size between is taken to be fast enough."""
        top: MachineFit | None = None
        topped = False
        for i, r in enumerate(sizes):
            last = i == len(sizes) - 1
            found, fits = (top, True) if topped and last else self.evaluate(machine_of(r))
            if found is not None:
                self.found.append(found)
                return r
            if fits and not topped and not last:  # it runs, too slowly
                topped = True
                top, _ = self.evaluate(machine_of(sizes[-1]))
                if top is None:
                    return None
        return None

    def evaluate(self, machine: Machine) -> tuple[MachineFit | None, bool]:
        """The machine's fit (the planner's best option meeting the speed) or None, and whether any
        option fits."""
        key = _device_key(machine)
        quants = self.quants(machine, key)
        if quants is not None and not quants:
            self.bounded += 1
            return None, False
        self.evaluated += 1
        p = plan(
            self.model,
            hardware=machine,
            engines=None if self.engines is None else [e.name for e in self.engines],
            quants=quants,
            context=self.context,
            sequences=self.sequences,
            min_context=self.min_context,
        )
        if key not in self.weights and machine.n_devices <= 1 and quants == self.asked():
            self.weights[key] = _weights_of(p)
        for o in p.options:
            speed = o.decode_tokens_per_s
            if speed is not None and (self.fastest is None or speed > self.fastest[0]):
                self.fastest = speed, f"{format_rate(speed)}, {o.quant} on {o.engine} on {machine.name}"
            if self.min_speed is None or (
                o.decode_tokens_per_s is not None and o.decode_tokens_per_s >= self.min_speed
            ):
                return MachineFit(machine, o, p.options), True
        size = _memory(machine)
        if self.largest is None or size > self.largest[0]:
            self.largest = size, p
        return None, p.fits

    def asked(self) -> list[str] | None:
        return None if self.quant is None else [self.quant]

    def quants(self, machine: Machine, key: str) -> list[str] | None:
        """The quantizations to plan on ``machine``: those the planner tries whose weights may fit
        (None: every one, as the planner chooses; empty: nothing can fit, no engine runs there)."""
        from qwenfit.core.fit.published import quants_tried

        engines = self.engines or [e for e in all_engines() if e.default_on(machine)]
        engines = [e for e in engines if not e.runs_on(machine)]
        tried: dict[str, list[Engine]] = {}
        for e in engines:
            for q in quants_tried(e, machine, self.where, self.asked(), mtp=False):
                name = e.accepts(q)
                if name is not None and not name.endswith(".gguf"):
                    tried.setdefault(name, []).append(e)
        known = self.weights.get(key)
        if not tried or known is None:
            return [] if not tried else self.asked()
        if any(e.accepts(q) == q and e not in es for q, es in tried.items() for e in engines):
            return self.asked()  # an engine would try a quant it does not try by itself: plan them all
        memory = _memory(machine)

        def may_fit(q: str, e: Engine) -> bool:
            w = known.get((e.name, q))
            return w is None or w <= memory

        return [q for q, es in tried.items() if any(may_fit(q, e) for e in es)]


def _memory(machine: Machine) -> int:
    """Device memory summed + host RAM (a unified system's memory once)."""
    return machine.vram_bytes + (0 if machine.unified else machine.ram_bytes or 0)


def _device_key(machine: Machine) -> str:
    """Machines whose weights are the same: one discrete GPU model (any count, any RAM), one
    unified-memory chip (its memory options share its name), or the CPU."""
    if not machine.devices:
        return "cpu"
    dev = machine.devices[0]
    return f"unified:{dev.name}" if dev.unified else dev.id


def _weights_of(p: Plan) -> dict[tuple[str, str], int | None]:
    """(engine, quant) -> the weights the planner's estimate holds, summed over devices (None: no
    estimate), from a plan on one device (or none)."""
    from qwenfit.core.expr import as_int

    out: dict[tuple[str, str], int | None] = {}
    for o in (*p.options, *p.rejected):
        w = (
            None
            if o.estimate is None
            else sum(as_int(t.bytes) for t in o.estimate.terms if t.name == "weights")
        )
        out[(o.engine, o.quant)] = w or None
    return out


# ---------------------------------------------------------------------------------------------
# text


def _gb(n_bytes: int) -> str:
    return f"{n_bytes / GB:,.0f}" if n_bytes >= 10 * GB else f"{n_bytes / GB:.1f}"


def format_requirements(r: Requirements, *, max_rows: int | None = None, command: bool = True) -> str:
    """The machines as a table (the first ``max_rows``; None: all), then the smallest one's launch
    command."""
    from qwenfit.core.fit.text import table

    head = (
        f"qwenfit need {r.model} ({r.asked()}): "
        + (f"{len(r.machines)} catalog machine(s) run it" if r.machines else "no catalog machine runs it")
        + f" ({r.candidates:,} candidates, {r.evaluated:,} planned)"
        + (", smallest first" if r.machines else "")
    )
    out = [head]
    out += [f"  note: {n}" for n in r.notes]
    rows = []
    shown = r.machines if max_rows is None else r.machines[:max_rows]
    for i, m in enumerate(shown, 1):
        o = m.option
        vram = "-" if m.kind == "cpu" else _gb(m.vram_bytes) + (" unified" if m.kind == "unified" else "")
        rows.append(
            [
                str(i),
                m.machine.name,
                str(m.n_gpus),
                vram,
                "-" if m.kind == "unified" else _gb(m.ram_bytes),
                o.quant,
                o.engine,
                str(o.placement),
                f"{o.context:,}",
                format_cell(o.decode_tokens_per_s, "?"),
            ]
        )
    if rows:
        header = [
            "#",
            "machine",
            "GPUs",
            "VRAM GB",
            "RAM GB",
            "quant",
            "engine",
            "placement",
            "context",
            "tok/s",
        ]
        out += ["", table(rows, header, right={0, 2, 3, 4, 8, 9})]
        if len(shown) < len(r.machines):
            out.append(f"({len(r.machines) - len(shown)} more; --all lists every machine)")
    best = r.smallest
    if best is not None and command:
        o = best.option
        ram = "" if best.kind == "unified" else f" + {_gb(best.ram_bytes)} GB RAM"
        out += ["", f"smallest: {best.machine.name}{ram}: {o.quant} on {o.engine}, {o.placement}"]
        out.append("command: " + o.command.replace("\n", "\n  "))
    return "\n".join(out)
