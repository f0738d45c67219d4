"""The docs calculator's data: qwenfit's memory and speed formulas, traced, as JSON.

``calculator_json()`` calls the same engine functions :func:`qwenfit.estimate` and
:func:`qwenfit.plan` call, with formula variables (:mod:`qwenfit.core.expr`) in place of the user's
choices, and writes the resulting expression trees; the page (docs/javascripts/qwenfit-calc.mjs)
only evaluates them. :func:`evaluate_config` computes a configuration through the library (the
reference the browser parity test compares the page against) and :func:`evaluate_export` through
the exported trees (what the page does, in Python).

Layout (``schema`` 1)::

    {"schema": 1, "qwenfit": version,
     "vars": {name: meaning},
     "display": {"gb": ..., "tok_s": ...},
     "engines": {engine: {"kv_cache": [...], "default_kv", "context_step", "max_sequences",
                          "placements": [...], "quants": [...], "command": template}},
     "models": {key: {"name", "repo", "is_moe", "n_layers", "native_context", "yarn_context",
                      "params_total", "params_active", "quants": {engine: {quant: {"env": {...}}}}}},
     "hardware": {id: {"name", "vendor", "kind", "memory_bytes", "bandwidth_gbps", "max_gpus",
                       "env": {rates_key: {...}}}},
     "custom_hardware": {"env": {rates_key: {...}}},
     "formulas": [{"model", "engine", "kv_cache", "placement", "rates", "defs": [[name, tree], ...],
                   "terms": [{"name", "device", "exact", "source", "bytes": tree}],
                   "budget": {device: tree}, "budget_unified": {device: tree},
                   "decode_tokens_per_s": tree}]}

A formula's environment is the quant's ``env`` + the hardware's ``env[formula.rates]`` (absent for
custom hardware: no speed) + ``vram`` (one GPU's usable bytes; a catalog record's ``memory_bytes``,
on Apple Silicon Metal's working set: ``env[...]["vram"]``) + ``ram`` + ``ctx`` (tokens per
sequence) + ``seqs`` + ``n_cpu_moe``; evaluate ``defs`` in order first. It fits when every budget
device's terms sum to at most its budget (``budget_unified`` for kind "unified"; ``total`` sums all
terms).
"""

from __future__ import annotations

import functools
import math
from typing import Any

from qwenfit.core.expr import Var, as_int, at, evaluate_shared, to_json_shared, where
from qwenfit.core.hardware import Device, Machine

__all__ = [
    "CALC_ENGINES",
    "calculator_json",
    "evaluate_config",
    "evaluate_export",
    "format_gb",
    "format_tok_s",
]

SCHEMA = 1
CALC_ENGINES = ("llama.cpp", "ollama", "lm-studio", "vllm", "sglang", "mlx")
CALC_KV = {
    "llama.cpp": ("f16", "q8_0", "q4_0"),
    "ollama": ("f16", "q8_0", "q4_0"),
    "lm-studio": ("f16", "q8_0", "q4_0"),
    "vllm": ("auto", "fp8"),
    "sglang": ("auto", "fp8_e4m3"),
    "mlx": ("bf16", "8", "4"),
}
LLAMA_GPUS = (1, 2)  # llama.cpp layer split in the calculator; the planner takes any count
TP_SIZES = (1, 2, 4, 8)
UTIL_BP = 9200  # vLLM's default gpu_memory_utilization 0.92, in basis points
COMMANDS = {
    "llama.cpp": "llama-server -m {model}-{quant}.gguf -c {ctx_total} -np {seqs} -ngl all "
    "--n-cpu-moe {n_cpu_moe} -fa on -ctk {kv_cache} -ctv {kv_cache}",
    "ollama": "OLLAMA_KV_CACHE_TYPE={kv_cache} OLLAMA_NUM_PARALLEL={seqs} ollama run {model_key}  "
    "# Modelfile: FROM ./{model}-{quant}.gguf, PARAMETER num_ctx {ctx}",
    "lm-studio": "lms load {model}-{quant}.gguf --context-length {ctx_total} --gpu max",
    "vllm": "vllm serve {repo} --tensor-parallel-size {n_gpus} --max-model-len {ctx} --max-num-seqs {seqs} "
    "--kv-cache-dtype {kv_cache} --language-model-only",
    "sglang": "python -m sglang.launch_server --model-path {repo} --tp {n_gpus} --context-length {ctx}",
    "mlx": "mlx_lm.server --model mlx-community/{model}-{quant}",
}


def format_gb(n_bytes: int) -> str:
    """Decimal GB with two decimals, half up, in integers (the page's ``formatGB``)."""
    from qwenfit.report import format_gb as fmt

    return fmt(n_bytes)


def format_tok_s(x: float | None) -> str:
    """``~42 tok/s`` (round half up: ``floor(x + 0.5)``, the same float operations in JS)."""
    return "not known" if x is None else f"~{math.floor(x + 0.5)} tok/s"


# -------------------------------------------------------------------------------------------------
# tracing


def _placements(engine: str, spec: Any) -> list[tuple[str, int, int, bool]]:
    """(key, n_gpus, tp, cpu_only) per placement the calculator offers for ``engine``."""
    from qwenfit.core.engines.vllm.pool import check_tp

    if engine in ("llama.cpp", "ollama", "lm-studio"):
        return [*((f"gpu{n}", n, 1, False) for n in LLAMA_GPUS), ("cpu", 0, 1, True)]
    if engine in ("vllm", "sglang"):
        out = []
        for tp in TP_SIZES:
            try:
                check_tp(spec, tp)
            except ValueError:
                continue
            out.append((f"tp{tp}", tp, tp, False))
        return out
    return [("unified", 1, 1, False)]


def _rates_key(engine: str, tp: int, cpu_only: bool) -> str:
    return f"{engine}/cpu" if cpu_only else f"{engine}/tp{tp}"


def _trace(
    spec: Any, engine: str, kv: str, pkey: str, n_gpus: int, tp: int, cpu_only: bool
) -> dict[str, Any]:
    """One formula record (JSON): the engine's terms, budgets and decode speed as trees."""
    terms, exprs = trace_exprs(spec, engine, kv, pkey, n_gpus, tp, cpu_only)
    defs, out = to_json_shared(exprs)
    return {
        "defs": defs,
        "terms": [
            {"name": t.name, "device": t.device, "exact": t.exact, "source": t.source, "bytes": out[f"t{i}"]}
            for i, t in enumerate(terms)
        ],
        "budget": {k[2:]: v for k, v in out.items() if k.startswith("b:")},
        "budget_unified": {k[2:]: v for k, v in out.items() if k.startswith("u:")},
        "decode_tokens_per_s": out["speed"],
    }


def trace_exprs(
    spec: Any, engine: str, kv: str, pkey: str, n_gpus: int, tp: int, cpu_only: bool
) -> tuple[list[Any], dict[str, Any]]:
    """The engine's terms (bytes as formulas) and the formulas ``t<i>`` (term i), ``b:<device>`` /
    ``u:<device>`` (budgets, discrete / unified memory) and ``speed`` (decode tokens/s). Weight
    inputs are the variables ``<placement>|<name>`` of :func:`placement_env`; the rest are
    ``ctx``, ``seqs``, ``n_cpu_moe``, ``vram``, ``ram``, ``small_device``, ``reserve``, ``util_bp``
    and the speed constants ``k:*``."""
    from qwenfit.core.engines.llama_cpp.layout import llama_layout
    from qwenfit.core.engines.profiles import Settings, engine_budget, engine_terms, llama_cpp_terms
    from qwenfit.core.expr import Num
    from qwenfit.core.fit.speed import decode_bytes, decode_speed
    from qwenfit.core.formats.weights import WeightMap

    def v(name: str) -> Var:
        return Var(f"{pkey}|{name}")

    ctx, seqs, n_cpu_moe = Var("ctx"), Var("seqs"), Var("n_cpu_moe")
    gguf = engine in ("llama.cpp", "ollama", "lm-studio")
    s = Settings(
        context=ctx * seqs if gguf else ctx,
        sequences=seqs,
        kv_cache=kv,
        backend="cpu" if cpu_only else "cuda",
        n_gpus=max(n_gpus, 1),
        n_cpu_moe=n_cpu_moe if gguf and spec.is_moe and not cpu_only else 0,
        tp=tp,
        gpu_memory_bytes=Var("vram"),
        small_device=Var("small_device"),
        rank_weight_bytes=None
        if gguf
        else where(Var("sm100"), v("w:rank_sm100"), v("w:rank"))
        if engine == "vllm"
        else v("w:rank"),
        runtime_reserve_bytes=Var("reserve") if gguf else None,
    )
    read_gpu: Num
    read_cpu: Num
    n_off: Num
    if gguf:
        layout = llama_layout(spec, n_gpus=0 if cpu_only else n_gpus)
        env: dict[str, Any] = {f"w:{d}": v(f"w:{d}") for d in layout.devices}
        env.update({f"exps:{d}": v(f"exps:{d}") for d in layout.devices if d != "cpu"})
        env.update({f"exps_max:{d}": v(f"exps_max:{d}") for d in layout.devices if d != "cpu"})
        terms = llama_cpp_terms(spec, s, env, layout, engine, "")
        moved = at(v("rexps"), s.n_cpu_moe) if spec.is_moe and not cpu_only else 0
        read_gpu, read_cpu, n_off = v("r:gpu") - moved, v("r:cpu") + moved, s.n_cpu_moe
    else:
        terms = engine_terms(engine, spec, WeightMap(spec.name, "", ()), s)
        read_gpu, read_cpu, n_off = v("r:gpu"), 0, 0
    devices = sorted({t.device for t in terms})
    bp = Var("util_bp")
    budget = engine_budget(engine, devices, vram=Var("vram"), ram=Var("ram"), gpu_memory_utilization_bp=bp)
    budget_u = engine_budget(
        engine, devices, vram=Var("vram"), ram=Var("ram"), unified=True, gpu_memory_utilization_bp=bp
    )
    gb, cb = decode_bytes(terms, seqs, read_gpu, read_cpu, tp=tp)
    k = {name: Var(f"k:{name}") for name in ("gpu_fs", "cpu_fs", "step_us", "layer_us", "ar_us")}
    speed = decode_speed(gb, cb, k, n_layers=spec.text.num_hidden_layers, n_offloaded=n_off)
    exprs: dict[str, Any] = {f"t{i}": t.bytes for i, t in enumerate(terms)}
    exprs.update({f"b:{d}": b for d, b in budget.items()})
    exprs.update({f"u:{d}": b for d, b in budget_u.items()})
    exprs["speed"] = speed
    return terms, exprs


# -------------------------------------------------------------------------------------------------
# inputs per quant and per hardware


def placement_env(
    spec: Any, name: str, engine: str, quant: str, pkey: str, n_gpus: int, tp: int, cpu_only: bool
) -> dict[str, Any]:
    """The weight inputs of one placement's formulas for one quant (``<placement>|<name>``)."""
    from qwenfit.core.engines.llama_cpp.layout import llama_layout, llama_read_env, llama_weight_env
    from qwenfit.core.engines.profiles import rank_weights
    from qwenfit.core.engines.vllm.weights import vllm_rank_weight_bytes
    from qwenfit.planner import _gpu_read, _weights

    w = _weights(name, quant)
    values: dict[str, Any]
    if engine in ("llama.cpp", "ollama", "lm-studio"):
        layout = llama_layout(spec, n_gpus=0 if cpu_only else n_gpus)
        values = {**llama_weight_env(spec, w, layout, mtp=False), **llama_read_env(spec, w, layout)}
    else:
        if engine == "vllm":  # what vLLM 0.33.0 allocates per rank (SM100 pads BF16 expert widths)
            values = {
                "w:rank": vllm_rank_weight_bytes(spec, w, tp=tp),
                "w:rank_sm100": vllm_rank_weight_bytes(spec, w, tp=tp, sm100=True),
            }
        else:
            values = {"w:rank": rank_weights(spec, w, tp)[0] if engine == "sglang" else w.total_bytes}
        values["r:gpu"] = _gpu_read(name, quant)
    return {f"{pkey}|{k}": val for k, val in values.items()}


def _quant_env(spec: Any, name: str, engine: str, quant: str) -> dict[str, Any]:
    """The weight inputs of every placement the calculator offers, for one quant."""
    env: dict[str, Any] = {}
    for pkey, n_gpus, tp, cpu_only in _placements(engine, spec):
        env.update(placement_env(spec, name, engine, quant, pkey, n_gpus, tp, cpu_only))
    return env


def _hardware_env(dev: Device | None, engines: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Per rates key (engine / TP size or CPU), the hardware's formula inputs: ``vram`` (one GPU's
    usable bytes as :func:`qwenfit.api.resolve_target` gives it), ``ram`` on unified memory,
    ``reserve`` (llama.cpp's backend context), vLLM's ``small_device`` and the speed constants
    ``k:*`` (:func:`qwenfit.core.fit.speed.rate_constants`). ``dev`` None: custom hardware (no speed)."""
    from qwenfit.api import resolve_target
    from qwenfit.core.engines.profiles import LLAMA_RUNTIME_RESERVE
    from qwenfit.core.engines.vllm.pool import small_batch_device
    from qwenfit.core.fit.speed import rate_constants

    out: dict[str, dict[str, int]] = {}
    for engine in engines:
        if engine == "mlx" and (dev is None or dev.vendor != "apple"):
            continue
        gguf = engine in ("llama.cpp", "ollama", "lm-studio")
        backend = dev.backends[0] if dev is not None and dev.backends else "cuda"
        sizes = TP_SIZES if engine in ("vllm", "sglang") else LLAMA_GPUS if gguf else (1,)
        for tp in sizes:
            env: dict[str, int] = {
                "reserve": LLAMA_RUNTIME_RESERVE.get(backend, 0),
                "small_device": 0,
                "util_bp": UTIL_BP,
                "sm100": int(dev is not None and (dev.compute_capability or "").split(".")[0] == "10"),
            }
            if dev is not None:
                if dev.unified and tp > 1:
                    continue
                machine = Machine(name=dev.id, devices=(dev,) * tp)
                target = resolve_target(machine, None, None, engine=engine)
                env.update(vram=as_int(target.vram_bytes or 0), small_device=small_batch_device(dev.name))
                if dev.unified:
                    env["ram"] = as_int(target.ram_bytes or 0)
                k = rate_constants(machine=machine, engine=engine, tp=1 if gguf else tp, backend=backend)
                env.update({f"k:{n}": val for n, val in (k or {}).items()})
            out[_rates_key(engine, tp, False)] = env
        if gguf:
            env = {"vram": 0, "small_device": 0, "reserve": 0, "util_bp": UTIL_BP, "sm100": 0}
            if dev is not None:
                if dev.unified:
                    env["ram"] = dev.memory_bytes
                k = rate_constants(machine=Machine(name="cpu"), engine=engine, backend="cpu")
                env.update({f"k:{n}": val for n, val in (k or {}).items()})
            out[_rates_key(engine, 1, True)] = env
    return out


@functools.lru_cache(maxsize=1)
def calculator_json() -> dict[str, Any]:
    """The calculator's data (see the module docstring); deterministic for a given qwenfit."""
    from qwenfit import __version__
    from qwenfit.api import MAX_SEQUENCES
    from qwenfit.loaders.catalog import entries
    from qwenfit.loaders.hardware import hardware_catalog
    from qwenfit.planner import DEFAULT_QUANTS, YARN_CONTEXT, _spec

    models: dict[str, Any] = {}
    formulas: list[dict[str, Any]] = []
    for entry in entries():
        spec = _spec(entry.name)
        key = entry.short_name
        quants: dict[str, Any] = {}
        for engine in CALC_ENGINES:
            family = "gguf" if engine in ("llama.cpp", "ollama", "lm-studio") else engine
            quants[engine] = {
                q: {"env": _quant_env(spec, entry.name, engine, q)} for q in DEFAULT_QUANTS[family]
            }
            for pkey, n_gpus, tp, cpu_only in _placements(engine, spec):
                for kv in CALC_KV[engine]:
                    record = _trace(spec, engine, kv, pkey, n_gpus, tp, cpu_only)
                    formulas.append(
                        {
                            "model": key,
                            "engine": engine,
                            "kv_cache": kv,
                            "placement": pkey,
                            "rates": _rates_key(engine, tp, cpu_only),
                            **record,
                        }
                    )
        models[key] = {
            "name": spec.name,
            "repo": entry.repo_ids[0] if entry.repo_ids else None,
            "is_moe": spec.is_moe,
            "n_layers": spec.text.num_hidden_layers,
            "native_context": spec.text.max_position_embeddings,
            "yarn_context": YARN_CONTEXT,
            "params_total": spec.params.total,
            "params_active": spec.params.active,
            "quants": quants,
        }
    hardware = {}
    for dev in hardware_catalog().values():
        hardware[dev.id] = {
            "name": dev.name,
            "vendor": dev.vendor,
            "kind": dev.kind,
            "memory_bytes": dev.memory_bytes,
            "bandwidth_gbps": dev.bandwidth_gbps,
            "max_gpus": 1 if dev.unified else 8,
            "env": _hardware_env(dev, CALC_ENGINES),
        }
    engines = {
        e: {
            "kv_cache": list(CALC_KV[e]),
            "default_kv": CALC_KV[e][0],
            "context_step": 256 if e in ("llama.cpp", "ollama", "lm-studio") else 1,
            "max_sequences": MAX_SEQUENCES[e],
            "placements": sorted({p for f in formulas if f["engine"] == e for p in [f["placement"]]}),
            "quants": list(DEFAULT_QUANTS["gguf" if e in ("llama.cpp", "ollama", "lm-studio") else e]),
            "command": COMMANDS[e],
        }
        for e in CALC_ENGINES
    }
    return {
        "schema": SCHEMA,
        "qwenfit": __version__,
        "vars": {
            "ctx": "tokens per sequence",
            "seqs": "concurrent sequences",
            "n_cpu_moe": "llama.cpp --n-cpu-moe",
            "vram": "one GPU's usable bytes",
            "ram": "host RAM bytes",
            "small_device": "vLLM A100/GB10 tier",
        },
        "display": {
            "gb": "q = (bytes + 5_000_000) // 10_000_000 -> f'{q // 100}.{q % 100:02d} GB'",
            "tok_s": "~floor(x + 0.5) tok/s",
        },
        "engines": engines,
        "models": models,
        "hardware": hardware,
        "custom_hardware": {"env": _hardware_env(None, CALC_ENGINES)},
        "formulas": formulas,
    }


# -------------------------------------------------------------------------------------------------
# evaluating one configuration: through the export (what the page does) and through the library


def _display(
    terms: list[tuple[str, str, int]], budget: dict[str, int], speed: float | None, max_ctx: int, step: int
) -> dict[str, str]:
    """The strings the page shows, from byte counts (one rounding rule for both sides)."""
    used: dict[str, int] = {}
    for _, device, n in terms:
        used[device] = used.get(device, 0) + n
    total = sum(n for _, _, n in terms)
    judged = {d: (total if d == "total" else used.get(d, 0)) for d in budget}
    short = max([0] + [judged[d] - cap for d, cap in budget.items()])
    out = {f"term:{i}": format_gb(n) for i, (_, _, n) in enumerate(terms)}
    out.update({f"used:{d}": format_gb(n) for d, n in judged.items()})
    out.update({f"budget:{d}": format_gb(cap) for d, cap in budget.items()})
    out["total"] = format_gb(total)
    out["verdict"] = "Fits" if short == 0 else "Does not fit"
    out["shortfall"] = "" if short == 0 else format_gb(short)
    out["max_context"] = f"{max_ctx:,} tokens" if max_ctx else f"none (not even {step:,} tokens fit)"
    out["speed"] = format_tok_s(speed)
    return out


def _search(fits: Any, lo: int, hi: int, step: int) -> int:
    from qwenfit.api import _search as search

    return int(search(fits, lo, hi, step))


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
    if "ram" not in env:
        env["ram"] = _gb_bytes(cfg["ram_gb"])
    env.update({"seqs": cfg["seqs"], "n_cpu_moe": cfg.get("n_cpu_moe", 0)})
    budget_trees = f["budget_unified"] if unified else f["budget"]
    exprs = {f"t{i}": t["bytes"] for i, t in enumerate(f["terms"])}
    exprs.update({f"b:{d}": b for d, b in budget_trees.items()})
    has_speed = "k:gpu_fs" in env
    if has_speed:
        exprs["speed"] = f["decode_tokens_per_s"]

    def run(ctx: int) -> dict[str, Any]:
        return evaluate_shared(f["defs"], exprs, {**env, "ctx": ctx})

    def fits(ctx: int) -> bool:
        r = run(ctx)
        used: dict[str, int] = {}
        for i, t in enumerate(f["terms"]):
            used[t["device"]] = used.get(t["device"], 0) + r[f"t{i}"]
        total = sum(used.values())
        return all((total if d == "total" else used.get(d, 0)) <= r[f"b:{d}"] for d in budget_trees)

    r = run(cfg["ctx"])
    engine = data["engines"][cfg["engine"]]
    step = engine["context_step"]
    limit = data["models"][cfg["model"]]["native_context"]
    terms = [(t["name"], t["device"], r[f"t{i}"]) for i, t in enumerate(f["terms"])]
    budget = {d: r[f"b:{d}"] for d in budget_trees}
    return _display(
        terms, budget, r.get("speed") if has_speed else None, _search(fits, step, limit, step), step
    )


def evaluate_config(cfg: dict[str, Any]) -> dict[str, str]:
    """What the page should display for ``cfg``, computed through the library: :func:`qwenfit.estimate`
    for the memory and the planner's speed path — not through the exported trees."""
    import qwenfit
    from qwenfit.api import resolve_target
    from qwenfit.loaders.catalog import find
    from qwenfit.planner import GGUF_ENGINES, Placement, _Ctx, _spec, _speed

    entry = find(cfg["model"])
    assert entry is not None
    spec = _spec(entry.name)
    engine, pkey = cfg["engine"], cfg["placement"]
    gguf = engine in GGUF_ENGINES
    seqs = cfg["seqs"]
    kw: dict[str, Any] = {"engine": engine, "kv_cache": cfg["kv"], "sequences": seqs, "vision": False}
    n_gpus, tp = 1, 1
    if gguf:
        if pkey == "cpu":
            kw["backend"] = "cpu"
        else:
            n_gpus = int(pkey.removeprefix("gpu"))
            kw["n_gpus"] = n_gpus
            if spec.is_moe:
                kw["n_cpu_moe"] = cfg.get("n_cpu_moe", 0)
    elif engine in ("vllm", "sglang"):
        tp = int(pkey.removeprefix("tp"))
        kw["tp"] = tp
    if cfg["hardware"] == "custom":
        kw.update(vram_gb=cfg["vram_gb"], ram_gb=cfg["ram_gb"])
        machine = None
    else:
        from qwenfit.loaders.hardware import device

        dev = device(cfg["hardware"])
        count = n_gpus if gguf else tp
        machine = Machine(
            name=dev.id,
            devices=(dev,) * (1 if dev.unified else count),
            ram_bytes=None if dev.unified else _gb_bytes(cfg["ram_gb"]),
        )
        kw["hardware"] = machine

    def total_ctx(ctx: int) -> int:
        return ctx * seqs if gguf else ctx

    def est(ctx: int) -> Any:
        return qwenfit.estimate(spec, cfg["quant"], context=total_ctx(ctx), **kw)

    e = est(cfg["ctx"])
    step = 256 if gguf else 1
    max_ctx = _search(lambda c: bool(est(c).fits), step, spec.text.max_position_embeddings, step)
    speed = None
    if machine is not None:
        target = resolve_target(machine, None, None, engine=engine)
        placement = Placement(
            "cpu" if pkey == "cpu" else "gpu",
            n_gpus=0 if pkey == "cpu" else n_gpus,
            n_cpu_moe=kw.get("n_cpu_moe", 0),
            tp=tp,
        )
        c = _Ctx(
            spec,
            entry.name,
            cfg["quant"],
            engine,
            target.vram_bytes,
            target.ram_bytes,
            target.unified,
            "cpu" if pkey == "cpu" else target.backend or "cuda",
            target.gpu_name,
            9200,
            cfg["kv"],
            n_gpus,
        )
        speed = _speed(c, placement, e, machine)[0]
    terms = [(t.name, t.device, as_int(t.bytes)) for t in e.terms]
    return _display(terms, dict(e.budget or {}), speed, max_ctx, step)
