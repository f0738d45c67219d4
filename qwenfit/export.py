"""The docs calculator's data: qwenfit's memory, speed and launch-command formulas, traced, as JSON.

``calculator_json()`` asks every engine of the registry that has a calculator form
(``Engine.calc_kv_types``) for its traced formulas (:func:`qwenfit.core.fit.formulas.trace`: the
same engine methods :func:`qwenfit.estimate` and :func:`qwenfit.plan` run) and writes the expression
trees; the page (docs/javascripts/qwenfit-calc.mjs) only evaluates them. :func:`evaluate_config`
computes a configuration through the library (the reference the browser parity test compares the
page against), :func:`evaluate_export` through the exported trees (what the page does, in Python).
No engine is named here.

Layout (``schema`` 2)::

    {"schema": 2, "qwenfit": version,
     "vars": {name: meaning},
     "display": {"gb": ..., "tok_s": ...},
     "engines": {engine: {"kv_cache": [...], "default_kv", "context_step", "max_sequences",
                          "placements": [...], "quants": [...]}},
     "models": {key: {"name", "repo", "is_moe", "n_layers", "native_context", "yarn_context",
                      "params_total", "params_active", "quants": {engine: {quant: {"env": {...}}}}}},
     "hardware": {id: {"name", "vendor", "kind", "memory_bytes", "bandwidth_gbps", "max_gpus",
                       "env": {rates_key: {...}}}},
     "custom_hardware": {"env": {rates_key: {...}}},
     "formulas": [{"model", "engine", "kv_cache", "placement", "rates", "defs": [[name, tree], ...],
                   "terms": [{"name", "device", "exact", "source", "bytes": tree}],
                   "budget": {device: tree}, "budget_unified": {device: tree},
                   "decode_tokens_per_s": tree, "command": [group, ...]}]}

A formula's environment is the quant's ``env`` (weight inputs, and the artifact names ``a:repo``,
``a:file``, ``a:tag`` its command loads) + the hardware's ``env[formula.rates]`` (absent for custom
hardware: no speed) + ``vram`` (one GPU's usable bytes; a catalog record's ``memory_bytes``, on Apple
Silicon Metal's working set: ``env[...]["vram"]``) + ``ram`` + ``ctx`` (tokens per sequence) +
``seqs`` + ``n_cpu_moe``; evaluate ``defs`` in order first. It fits when every budget device's
terms sum to at most its budget (``budget_unified`` for kind "unified"; ``total`` sums all terms).
``command`` renders as :func:`qwenfit.core.command.render_json` says.

The page loads it split (:func:`calculator_files`): ``index.json`` (everything but the models' quants
and the formulas, and a table of what the model files share) and one file per model (its quants and
formulas), each packed: a JSON value that occurs more than once is written once in a table and
referred to (``"~<base 36>"`` in the file's own table, ``"^<base 36>"`` in the index's shared one),
a dict of three or more keys is ``{"%": [keys, value, ...]}`` (its key list shared like any value),
an ascending list of integers is ``{"+": [delta, run length, ...]}``, and a string that starts with
``~``, ``^`` or ``!`` gets a ``!`` in front. :func:`unpack_files` (and
docs/javascripts/qwenfit-data.mjs) give back exactly :func:`calculator_json`.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from qwenfit.core.command import render_json
from qwenfit.core.engines.base import Engine, FormulaPlacement, engines
from qwenfit.core.expr import as_int, evaluate_shared
from qwenfit.core.fit.formulas import ARTIFACT_FIELDS, hardware_env, placement_env, trace
from qwenfit.core.fit.planner import YARN_CONTEXT
from qwenfit.core.fit.speed import DEFAULT_DEPTH, Rate
from qwenfit.core.fit.text import format_gb as _format_gb
from qwenfit.core.hardware import (
    RAM_RESERVE_DIVISOR,
    RAM_RESERVE_MAX,
    RAM_RESERVE_MIN,
    Machine,
    default_ram_reserve,
)
from qwenfit.core.search import largest
from qwenfit.core.terms import shortfall, used_by_budget
from qwenfit.errors import SettingError

__all__ = [
    "calculator_engines",
    "calculator_json",
    "evaluate_config",
    "evaluate_export",
    "format_gb",
    "format_tok_s",
]

SCHEMA = 2


def format_gb(n_bytes: int) -> str:
    """Decimal GB with two decimals, half up, in integers (the page's ``formatGB``)."""
    return _format_gb(n_bytes)


def format_tok_s(x: float | None) -> str:
    """``~42 tok/s`` (round half up: ``floor(x + 0.5)``, the same float operations in JS)."""
    return "not known" if x is None else f"~{math.floor(x + 0.5)} tok/s"


def speed_bands_json() -> dict[str, Any]:
    """The decode bands each measurement category earned out of sample (qwenfit.core.fit.speed_fitted),
    as [p10, p90] of measured / predicted, and how the page picks the category."""
    from qwenfit.core.fit import speed_fitted

    return {
        "decode": {c: [b[0], b[2]] for c, b in speed_fitted.BANDS["decode"].items()},
        "rule": "seqs > 1: batched; CPU only; several GPUs: multi-GPU; n_cpu_moe > 0: offload; Apple; "
        "unified memory: APU; else GPU MoE / GPU dense; a category without a band: overall",
        "source": "docs/reports/speed.md (leave-one-source-out)",
    }


def speed_category(data: dict[str, Any], f: dict[str, Any], cfg: dict[str, Any]) -> str:
    """The measurement category of a calculator configuration (qwenfit.core.fit.speed.category_of)."""
    if cfg["seqs"] > 1:
        return "batched (concurrency > 1)"
    if f["cpu_only"]:
        return "CPU only"
    if f["n_gpus"] > 1:
        return "multi-GPU TP/PP"
    if cfg.get("n_cpu_moe", 0) > 0 and data["models"][cfg["model"]]["is_moe"]:
        return "CPU-expert offload"
    hw = data["hardware"].get(cfg["hardware"])
    if hw is not None and hw["vendor"] == "apple":
        return "Apple/MLX"
    if hw is not None and hw["kind"] == "unified":
        return "unified-memory APU"
    return "GPU MoE" if data["models"][cfg["model"]]["is_moe"] else "GPU dense"


def format_speed_range(low: float | None, high: float | None) -> str:
    """``43-58 tok/s``: the out-of-sample range (each end rounded half up, as the page does)."""
    if low is None or high is None:
        return ""
    return f"{math.floor(low + 0.5)}-{math.floor(high + 0.5)} tok/s"


def calculator_engines() -> tuple[Engine, ...]:
    """The engines the calculator offers: those with a calculator form (``calc_kv_types``)."""
    return tuple(e for e in engines() if e.calc_kv_types)


def _rates_key(engine: Engine, fp: FormulaPlacement) -> str:
    return f"{engine.name}/cpu" if fp.cpu_only else f"{engine.name}/tp{fp.tp}"


def _rates_placements(engine: Engine, spec_placements: list[FormulaPlacement]) -> dict[str, FormulaPlacement]:
    """One placement per rates key (the hardware's inputs depend on the GPUs the rates speak of)."""
    out: dict[str, FormulaPlacement] = {}
    for fp in spec_placements:
        key = _rates_key(engine, fp)
        out.setdefault(key, FormulaPlacement(key, 0 if fp.cpu_only else fp.tp, fp.tp, fp.cpu_only))
    return out


def _record(spec: Any, engine: Engine, kv: str, fp: FormulaPlacement) -> dict[str, Any]:
    """One formula record (JSON): the engine's terms, budgets, decode speed and command as trees."""
    return trace(spec, engine, kv, fp).record()


def _quant_env(spec: Any, source: Any, engine: Engine, quant: str) -> dict[str, Any]:
    """The weight inputs of every placement the calculator offers for one quant, and its artifact
    (what the planner's command loads: the same :meth:`Engine.artifact` and weights)."""
    from qwenfit.core.engines.base import Deployment

    artifact = engine.artifact(source, quant, Deployment(context=1))
    w = engine.artifact_weights(spec, artifact, quant, mtp=False, vision=False)
    env: dict[str, Any] = {}
    for fp in engine.formula_placements(spec):
        env.update(placement_env(spec, engine, w, fp))
    for name in ARTIFACT_FIELDS:
        value = getattr(artifact, name)
        if value is not None:
            env[f"a:{name}"] = value
    env["a:published"] = int(artifact.published)
    if artifact.size_bytes is not None:
        env["a:size"] = artifact.size_bytes
    return env


def calc_quants(engine: Engine, source: Any) -> tuple[str, ...]:
    """The calculator's quants of one model on ``engine``: the engine's list plus what is published
    for the model in its format (as the planner tries them)."""
    return tuple(dict.fromkeys((*engine.planner_quants, *engine.published_quants(source, mtp=False))))


def _hardware(
    device: Any, engine_list: tuple[Engine, ...], placements: dict[str, list[FormulaPlacement]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for engine in engine_list:
        for key, fp in _rates_placements(engine, placements[engine.name]).items():
            env = hardware_env(engine, device, fp)
            if env is not None:
                out[key] = env
    return out


@functools.lru_cache(maxsize=1)
def calculator_json() -> dict[str, Any]:
    """The calculator's data (see the module docstring); deterministic for a given qwenfit."""
    from qwenfit import __version__
    from qwenfit.api.sources import model_source
    from qwenfit.loaders.catalog import entries, load_catalog_model
    from qwenfit.loaders.hardware import hardware_catalog

    engine_list = calculator_engines()
    models: dict[str, Any] = {}
    formulas: list[dict[str, Any]] = []
    placements: dict[str, list[FormulaPlacement]] = {e.name: [] for e in engine_list}
    for entry in entries():
        spec = load_catalog_model(entry.name)
        key = entry.short_name
        repo = entry.repo_ids[0] if entry.repo_ids else None
        source = model_source(spec, entry.name)
        quants: dict[str, Any] = {}
        for engine in engine_list:
            engine.prepare_formulas(spec)
            quants[engine.name] = {}
            for q in calc_quants(engine, source):
                try:
                    quants[engine.name][q] = {"env": _quant_env(spec, source, engine, q)}
                except SettingError:  # e.g. a group size some tensor-parallel split breaks: not offered
                    continue
            for fp in engine.formula_placements(spec):
                if fp not in placements[engine.name]:
                    placements[engine.name].append(fp)
                for kv in engine.calc_kv_types_for(spec):
                    formulas.append(
                        {
                            "model": key,
                            "engine": engine.name,
                            "kv_cache": kv,
                            "placement": fp.key,
                            "rates": _rates_key(engine, fp),
                            "n_gpus": fp.n_gpus,
                            "cpu_only": fp.cpu_only,
                            **_record(spec, engine, kv, fp),
                        }
                    )
        models[key] = {
            "name": spec.name,
            "repo": repo,
            "is_moe": spec.is_moe,
            "n_layers": spec.text.num_hidden_layers,
            "native_context": spec.text.max_position_embeddings,
            "yarn_context": YARN_CONTEXT,
            "params_total": spec.params.total,
            "params_active": spec.params.active,
            "quants": quants,
        }
    hardware = {
        dev.id: {
            "name": dev.name,
            "vendor": dev.vendor,
            "kind": dev.kind,
            "memory_bytes": dev.memory_bytes,
            "bandwidth_gbps": dev.bandwidth_gbps,
            "max_gpus": 1 if dev.unified else 8,
            "env": _hardware(dev, engine_list, placements),
        }
        for dev in hardware_catalog().values()
    }
    engine_info = {
        e.name: {
            "kv_cache": list(e.calc_kv_types),
            "default_kv": e.calc_kv_types[0],
            "context_step": e.context_step,
            "max_sequences": e.max_sequences,
            "placements": sorted({f["placement"] for f in formulas if f["engine"] == e.name}),
            "quants": list(e.planner_quants),
        }
        for e in engine_list
    }
    return {
        "schema": SCHEMA,
        "qwenfit": __version__,
        "vars": {
            "ctx": "tokens per sequence",
            "depth": "tokens already in the context when decode speed is quoted (4096 by default)",
            "seqs": "concurrent sequences",
            "n_cpu_moe": "llama.cpp --n-cpu-moe",
            "vram": "one GPU's usable bytes",
            "ram": "host RAM bytes",
        },
        "ram_reserve": {  # host RAM kept for the system (qwenfit.core.hardware.default_ram_reserve)
            "divisor": RAM_RESERVE_DIVISOR,
            "min": RAM_RESERVE_MIN,
            "max": RAM_RESERVE_MAX,
        },
        "display": {
            "gb": "q = (bytes + 5_000_000) // 10_000_000 -> f'{q // 100}.{q % 100:02d} GB'",
            "tok_s": "~floor(x + 0.5) tok/s",
        },
        "speed_bands": speed_bands_json(),
        "engines": engine_info,
        "models": models,
        "hardware": hardware,
        "custom_hardware": {"env": _hardware(None, engine_list, placements)},
        "formulas": formulas,
    }


# -------------------------------------------------------------------------------------------------
# evaluating one configuration: through the export (what the page does) and through the library


def _display(
    terms: list[tuple[str, str, int]],
    budget: dict[str, int],
    speed: float | None,
    max_ctx: int,
    step: int,
    command: str,
    band: tuple[float, float] | None = None,
) -> dict[str, str]:
    """The strings the page shows, from byte counts (one rounding rule for both sides)."""
    used: dict[str, int] = {}
    for _, device, n in terms:
        used[device] = used.get(device, 0) + n
    judged = used_by_budget(used, budget)
    short = shortfall(used, budget)
    out = {f"term:{i}": format_gb(n) for i, (_, _, n) in enumerate(terms)}
    out.update({f"used:{d}": format_gb(n) for d, n in judged.items()})
    out.update({f"budget:{d}": format_gb(cap) for d, cap in budget.items()})
    out["total"] = format_gb(sum(n for _, _, n in terms))
    out["verdict"] = "Fits" if short == 0 else "Does not fit"
    out["shortfall"] = "" if short == 0 else format_gb(short)
    out["max_context"] = f"{max_ctx:,} tokens" if max_ctx else f"none (not even {step:,} tokens fit)"
    out["speed"] = format_tok_s(speed)
    out["speed_range"] = format_speed_range(*(band or (None, None)))
    out["command"] = command
    return out


def _gb_bytes(gb: float) -> int:
    return int(gb * 1e9)  # the page: BigInt(Math.trunc(gb * 1e9)), the same double product


def evaluate_export(data: dict[str, Any], cfg: dict[str, Any]) -> dict[str, str]:
    """What the calculator page displays for ``cfg`` (keys: model, engine, quant, kv, placement,
    ctx, seqs, n_cpu_moe, hardware (an id or "custom"), vram_gb, ram_gb), from the export alone."""
    f = next(
        x
        for x in data["formulas"]
        if (x["model"], x["engine"], x["kv_cache"], x["placement"])
        == (cfg["model"], cfg["engine"], cfg["kv"], cfg["placement"])
    )
    env: dict[str, Any] = dict(data["models"][cfg["model"]]["quants"][cfg["engine"]][cfg["quant"]]["env"])
    unified = False
    if cfg["hardware"] == "custom":
        env.update(data["custom_hardware"]["env"][f["rates"]])
        if cfg["placement"] != "cpu":
            env["vram"] = _gb_bytes(cfg["vram_gb"])
    else:
        hw = data["hardware"][cfg["hardware"]]
        env.update(hw["env"][f["rates"]])
        unified = hw["kind"] == "unified"
    if "ram" in env:  # unified memory: all of the device's, less the reserve below (as target_for takes it)
        env["ram"] = data["hardware"][cfg["hardware"]]["memory_bytes"]
    else:
        env["ram"] = _gb_bytes(cfg["ram_gb"])
    reserve = cfg.get("ram_reserve_gb")
    env["ram"] -= default_ram_reserve(env["ram"]) if reserve is None else _gb_bytes(reserve)
    env.update(
        {"seqs": cfg["seqs"], "n_cpu_moe": cfg.get("n_cpu_moe", 0), "depth": cfg.get("depth", DEFAULT_DEPTH)}
    )
    budget_trees = f["budget_unified"] if unified else f["budget"]
    exprs = {f"t{i}": t["bytes"] for i, t in enumerate(f["terms"])}
    exprs.update({f"b:{d}": b for d, b in budget_trees.items()})
    has_speed = "k:gpu_fs" in env
    if has_speed:
        exprs["speed"] = f["decode_tokens_per_s"]

    def run(ctx: int) -> dict[str, Any]:
        return evaluate_shared(f["defs"], exprs, {**env, "ctx": ctx})

    def used_at(r: dict[str, Any]) -> dict[str, int]:
        used: dict[str, int] = {}
        for i, t in enumerate(f["terms"]):
            used[t["device"]] = used.get(t["device"], 0) + r[f"t{i}"]
        return used

    def fits(ctx: int) -> bool:
        r = run(ctx)
        return shortfall(used_at(r), {d: r[f"b:{d}"] for d in budget_trees}) == 0

    r = run(cfg["ctx"])
    engine = data["engines"][cfg["engine"]]
    step = engine["context_step"]
    limit = data["models"][cfg["model"]]["native_context"]
    terms = [(t["name"], t["device"], r[f"t{i}"]) for i, t in enumerate(f["terms"])]
    budget = {d: r[f"b:{d}"] for d in budget_trees}
    command = render_json(f["command"], {**env, "ctx": cfg["ctx"]})
    speed = r.get("speed") if has_speed else None
    band = None
    if speed is not None:
        bands = data["speed_bands"]["decode"]
        lo, hi = bands.get(speed_category(data, f, cfg), bands["overall"])
        band = (speed * lo, speed * hi)
    return _display(terms, budget, speed, largest(fits, step, limit, step), step, command, band)


def evaluate_config(cfg: dict[str, Any]) -> dict[str, str]:
    """What the page should display for ``cfg``, computed through the library: :func:`qwenfit.estimate`
    for the memory and context, the planner's speed and command paths — not the exported trees."""
    import dataclasses

    import qwenfit
    from qwenfit.api import plan_model
    from qwenfit.core.engines.base import get
    from qwenfit.core.fit.planner import Search
    from qwenfit.core.hardware import target_for
    from qwenfit.loaders.catalog import find, load_catalog_model
    from qwenfit.loaders.hardware import device

    entry = find(cfg["model"])
    assert entry is not None
    spec = load_catalog_model(entry.name)
    engine = get(cfg["engine"])
    fp = next(p for p in engine.formula_placements(spec) if p.key == cfg["placement"])
    n_gpus = 0 if fp.cpu_only else fp.n_gpus
    seqs = cfg["seqs"]
    placement_kw = engine.placement_options(_placement(fp, cfg.get("n_cpu_moe", 0) if spec.is_moe else 0))
    kw: dict[str, Any] = {
        "engine": engine.name,
        "kv_cache": cfg["kv"],
        "sequences": seqs,
        "vision": False,
        **{k: v for k, v in placement_kw.items() if v not in (None, 0) or k == "tp"},
    }
    if fp.cpu_only:
        kw["backend"] = "cpu"
    if cfg["hardware"] == "custom":
        kw.update(vram_gb=cfg["vram_gb"], ram_gb=cfg["ram_gb"])
        machine = None
    else:
        dev = device(cfg["hardware"])
        machine = Machine(
            name=dev.id,
            devices=(dev,) * (1 if dev.unified else max(n_gpus, fp.tp, 1)),
            ram_bytes=None if dev.unified else _gb_bytes(cfg["ram_gb"]),
        )
        kw["hardware"] = machine
    if not fp.cpu_only:
        kw["n_gpus"] = max(n_gpus, fp.tp, 1)

    def est(ctx: int) -> Any:
        return qwenfit.estimate(spec, cfg["quant"], context=ctx, **kw)

    e = est(cfg["ctx"])
    step = engine.context_step
    max_ctx = largest(lambda c: bool(est(c).fits), step, spec.text.max_position_embeddings, step)
    speed = None
    model = plan_model(spec, entry.name)
    if machine is not None:
        s = Search(model, engine, cfg["quant"], target_for(machine), kv_cache=cfg["kv"])
        p = _placement(fp, cfg.get("n_cpu_moe", 0) if spec.is_moe else 0)
        speed = s.speed(p, e, machine)[0]
    d = dataclasses.replace(_deployment_of(engine, e), context=cfg["ctx"])
    o = engine.options({k: v for k, v in e.settings.items() if k in engine.option_help()})
    command = engine.command(engine.artifact(model.where, cfg["quant"], d), d, o).render()
    terms = [(t.name, t.device, as_int(t.bytes)) for t in e.terms]
    band = (speed.low, speed.high) if isinstance(speed, Rate) else None
    return _display(terms, dict(e.budget or {}), speed, max_ctx, step, command, band)


def _placement(fp: FormulaPlacement, n_cpu_moe: int) -> Any:
    from qwenfit.core.engines.base import Placement

    if fp.cpu_only:
        return Placement("cpu", n_gpus=0)
    return Placement("gpu" if fp.tp == 1 else "tp", n_gpus=fp.n_gpus, tp=fp.tp, n_cpu_moe=n_cpu_moe)


def _deployment_of(engine: Engine, e: Any) -> Any:
    from qwenfit.core.engines.base import Deployment

    fields = Deployment.__dataclass_fields__
    return Deployment(**{k: v for k, v in e.settings.items() if k in fields})
