"""Traced formulas: an engine's terms, budget, decode speed and launch command as expression trees.

The engine methods that ``estimate()`` runs on ints are run here on formula variables
(:mod:`qwenfit.core.expr`, :mod:`qwenfit.core.command`): ``ctx`` (tokens per sequence), ``seqs``,
``n_cpu_moe`` (llama.cpp), ``vram`` (one GPU's usable bytes), ``ram``, the engine's hardware inputs
(``reserve``, ``util_bp``, ``small_device``, ``sm100``, ...), the weight inputs of one placement
(``<placement>|<name>``, e.g. ``gpu1|w:gpu``) and the speed constants ``k:*``. Two consumers:

- the docs calculator (:mod:`qwenfit.export` writes the trees; the page evaluates them);
- the planner's fast path (:func:`compiled`: the same trees compiled to Python, ~2 µs per check).

So the browser, the planner and ``estimate()`` compute one set of formulas.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qwenfit.core.command import Cmd, Text
from qwenfit.core.engines.base import Artifact, Deployment, Engine, FormulaPlacement, Placement
from qwenfit.core.expr import Var, compile_formulas, compile_source, smin, to_json_shared
from qwenfit.core.fit.speed import SPEED_KEYS, cache_parts, decode_speed, rate_constants, shape_of, with_bf16
from qwenfit.core.fit.speed_kvq import KVQ_TYPES
from qwenfit.core.formats.compiled import MISSING, lookup, remember
from qwenfit.core.formats.weights import WeightMap
from qwenfit.core.hardware import Device, Machine, target_for
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import Term

__all__ = [
    "SPEED_KEYS",
    "Compiled",
    "Traced",
    "compiled",
    "hardware_env",
    "placement_env",
    "placement_of",
    "read_shape",
    "trace",
    "trace_deployed",
    "variables_of",
]

ARTIFACT_FIELDS = ("ref", "make", "tag")


@dataclass(frozen=True, slots=True)
class Traced:
    """One engine x model x KV type x placement, traced: ``exprs`` holds ``t<i>`` (term i),
    ``b:<device>`` / ``u:<device>`` (budgets on discrete / unified memory) and ``speed``."""

    terms: tuple[Term, ...]
    exprs: dict[str, Any]
    command: Cmd

    def record(self) -> dict[str, Any]:
        """The calculator's JSON record: shared ``defs``, then the terms, budgets, decode speed and
        command as trees."""
        defs, out = to_json_shared(self.exprs)
        return {
            "defs": defs,
            "terms": [
                {
                    "name": t.name,
                    "device": t.device,
                    "exact": t.exact,
                    "source": t.source,
                    "bytes": out[f"t{i}"],
                }
                for i, t in enumerate(self.terms)
            ],
            "budget": {k[2:]: v for k, v in out.items() if k.startswith("b:")},
            "budget_unified": {k[2:]: v for k, v in out.items() if k.startswith("u:")},
            "decode_tokens_per_s": out["speed"],
            "command": self.command.to_json(),
        }


def _deployment(fp: FormulaPlacement, kv: str) -> Deployment:
    return Deployment(
        context=Var("ctx"),
        sequences=Var("seqs"),
        kv_cache=kv,
        backend="cpu" if fp.cpu_only else "cuda",
        n_gpus=max(fp.n_gpus, 1),
    )


def placement_of(fp: FormulaPlacement) -> Placement:
    """The placement a calculator formula describes."""
    if fp.cpu_only:
        return Placement("cpu", n_gpus=0)
    return Placement("tp" if fp.tp > 1 else "gpu", n_gpus=fp.n_gpus, tp=fp.tp)


def read_shape(p: Placement) -> Placement:
    """What the read inputs of ``p`` depend on: its kind, GPUs, -ngl, -ts and TP (--n-cpu-moe stays a
    variable of the formulas)."""
    return Placement(
        p.kind, n_gpus=p.n_gpus, n_gpu_layers=p.n_gpu_layers, tensor_split=p.tensor_split, tp=p.tp
    )


def variables_of(values: Mapping[str, Any], name: Any) -> dict[str, Any]:
    """Formula variables in place of the numbers of ``values`` (strings and flags stay literal)."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, bool):
            out[k] = False
        elif isinstance(v, str):
            out[k] = ""
        else:
            out[k] = Var(name(k))
    return out


def trace(spec: ModelSpec, engine: Engine, kv: str, fp: FormulaPlacement) -> Traced:
    """Trace ``engine``'s terms, budgets, decode speed and command for one placement."""
    d = _deployment(fp, kv)
    o = engine.formula_options(spec, fp, {"n_cpu_moe": Var("n_cpu_moe")})
    return trace_deployed(spec, engine, fp, d, o, placement_of(fp))


def trace_deployed(
    spec: ModelSpec, engine: Engine, fp: FormulaPlacement, d: Deployment, o: Any, p: Placement
) -> Traced:
    """:func:`trace` for a given deployment, engine options and placement ``p`` on ``fp``'s devices
    (plan mode's placements: -ngl, -ts, the vision tower, MTP drafting); the weight inputs are
    variables named ``<fp.key>|<name>`` (the read inputs by ``p``'s shape: its kind, GPUs, -ngl,
    -ts and TP, not its --n-cpu-moe)."""
    empty = WeightMap(spec.name, "", ())
    inputs = {
        **variables_of(engine.weight_inputs(spec, empty, d, o), lambda k: f"{fp.key}|{k}"),
        **variables_of(engine.hardware_inputs(d, o), lambda k: k),
    }
    terms = engine.terms(spec, inputs, d, o)
    devices = sorted({t.device for t in terms})
    budget = engine.budget(devices, vram=Var("vram"), ram=Var("ram"), unified=False, o=o, inputs=inputs)
    budget_u = engine.budget(devices, vram=Var("vram"), ram=Var("ram"), unified=True, o=o, inputs=inputs)
    read_in = with_bf16(engine.read_inputs(spec, empty, read_shape(p)), empty)
    reads = variables_of(read_in, lambda k: f"{fp.key}|{k}")
    read_gpu, read_cpu, n_off = engine.decode_reads(spec, reads, p, o)
    kv_g, kv_c, st_g, st_c = cache_parts(terms, d.sequences, tp=fp.tp, depth=Var("depth"), context=d.context)
    if fp.cpu_only:  # every byte streams from host RAM (the CPU rates stand in for the GPU ones)
        read_gpu, read_cpu = 0, read_gpu + read_cpu
    k = {name: Var(f"k:{name}") for name in SPEED_KEYS}
    exprs: dict[str, Any] = {f"t{i}": t.bytes for i, t in enumerate(terms)}
    exprs.update({f"b:{dev}": b for dev, b in budget.items()})
    exprs.update({f"u:{dev}": b for dev, b in budget_u.items()})
    exprs["speed"] = decode_speed(
        shape_of(spec),
        k,
        w_gpu=read_gpu,
        w_cpu=read_cpu,
        kv_gpu=kv_g,
        kv_cpu=kv_c,
        st_gpu=st_g,
        st_cpu=st_c,
        n_offloaded=n_off,
        sequences=d.sequences,
        bf16_ppm=reads["r:bf16_ppm"],
        depth=smin(Var("depth"), d.context),
        # a quantized cache: one token per sequence attends at k:aq_fs1k (= k:a_fs1k where no vector kernel)
        kvq_cols=int(d.kv_cache in KVQ_TYPES),
    )
    artifact = Artifact(**{f: Text(f"a:{f}") for f in ARTIFACT_FIELDS})  # type: ignore[arg-type]
    return Traced(tuple(terms), exprs, engine.command(artifact, d, o))


def placement_env(
    spec: ModelSpec, engine: Engine, weights: WeightMap, fp: FormulaPlacement
) -> dict[str, Any]:
    """The weight inputs of one placement's formulas for one quantization (``<placement>|<name>``):
    the engine's weight sums and the bytes one decoded token reads."""
    d = _deployment(fp, engine.kv_types[0])
    o = engine.formula_options(spec, fp, {"n_cpu_moe": 0})
    values = {
        k: v for k, v in engine.weight_inputs(spec, weights, d, o).items() if not isinstance(v, (str, bool))
    }
    values.update(with_bf16(engine.read_inputs(spec, weights, placement_of(fp)), weights))
    return {f"{fp.key}|{k}": v for k, v in values.items()}


def hardware_env(engine: Engine, device: Device | None, fp: FormulaPlacement) -> dict[str, int] | None:
    """The hardware inputs of ``fp``'s formulas on ``device`` (None: a custom GPU, no speed): one
    GPU's usable bytes (``vram``, as :func:`qwenfit.core.hardware.target_for` gives it; on unified
    memory also ``ram``), the engine's own inputs and the speed constants ``k:*``. None when the
    placement does not apply to the device (several GPUs of a unified-memory SoC)."""
    own = engine.calc_hardware_inputs(device, fp)
    if own is None:
        return None
    env: dict[str, int] = dict(own)
    if device is None:
        if fp.cpu_only:
            env["vram"] = 0
        return env
    if device.unified and fp.n_gpus > 1:
        return None
    if fp.cpu_only:
        env["vram"] = 0
        if device.unified:
            env["ram"] = device.memory_bytes
        k = rate_constants(machine=Machine(name="cpu"), engine=engine, backend="cpu")
    else:
        machine = Machine(name=device.id, devices=(device,) * max(fp.n_gpus, 1))
        target = target_for(machine, unified_default=engine.unified_only)
        env["vram"] = target.vram_bytes or 0
        if device.unified:  # all of it: the page and evaluate_export take the system's reserve off
            env["ram"] = device.memory_bytes
        backend = device.backends[0] if device.backends else "cuda"
        k = rate_constants(machine=machine, engine=engine, tp=fp.tp, backend=backend)
    env.update({f"k:{n}": v for n, v in (k or {}).items()})
    return env


@dataclass(frozen=True, slots=True)
class Compiled:
    """The traced memory formulas of one placement compiled to Python (the planner's fast path)."""

    f: Any  # env -> {"t<i>": bytes, "b:<dev>": cap, "u:<dev>": cap}
    devices: tuple[str, ...]  # the device of term i
    discrete: tuple[str, ...]  # budgeted devices on discrete memory
    unified: tuple[str, ...]


@functools.lru_cache(maxsize=4096)
def _compiled(spec_key: str, engine_name: str, kv: str, fp: FormulaPlacement) -> Compiled | None:
    parts = (engine_name, kv, repr(fp))
    found = lookup(spec_key, "formulas", parts)  # precompiled for the catalog (gen_compiled_json.py)
    if found is MISSING:
        found = _compiled_record(spec_key, engine_name, kv, fp)
        remember(spec_key, "formulas", parts, found)
    if found is None:
        return None
    return Compiled(
        compile_source(found["src"], found["consts"]),
        tuple(found["devices"]),
        tuple(found["discrete"]),
        tuple(found["unified"]),
    )


def _compiled_record(spec_key: str, engine_name: str, kv: str, fp: FormulaPlacement) -> dict[str, Any] | None:
    """The traced memory formulas of one placement as generated source, or None when they do not trace."""
    from qwenfit.core.engines.base import get

    spec, engine = _SPECS[spec_key], get(engine_name)
    try:
        traced = trace(spec, engine, kv, fp)
    except (TypeError, ValueError):
        return None
    exprs = {k: v for k, v in traced.exprs.items() if k != "speed"}
    f = compile_formulas(exprs)
    return {
        "src": f.source,
        "consts": f.consts,
        "devices": [t.device for t in traced.terms],
        "discrete": [k[2:] for k in exprs if k.startswith("b:")],
        "unified": [k[2:] for k in exprs if k.startswith("u:")],
    }


_SPECS: dict[str, ModelSpec] = {}


def compiled(
    spec_key: str, spec: ModelSpec, engine: Engine, kv: str, fp: FormulaPlacement
) -> Compiled | None:
    """The compiled formulas of ``spec`` (cached under ``spec_key``) or None when the engine's terms
    do not trace for it (a configuration with no closed form: the planner then evaluates ints)."""
    _SPECS[spec_key] = spec
    return _compiled(spec_key, engine.name, kv, fp)


def clear_cache() -> None:
    _compiled.cache_clear()
    _SPECS.clear()
