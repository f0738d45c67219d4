"""Plan mode's data (issue 17 item 8): what the docs calculator needs to run qwenfit's planner in the
browser on the exported formulas — the placements :func:`qwenfit.export.calculator_json` does not
trace (llama.cpp ``-ngl`` and ``-ts``, 3-4 GPUs), each option's quality and artifact, and each
catalog device's budget, engine inputs and speed constants. The page (docs/javascripts/qwenfit-plan.mjs)
re-implements only the search and ranking of :mod:`qwenfit.core.fit.planner` over these numbers,
and the -ngl / -ts placements' weight inputs from each quantization's ``layers``
(:func:`layer_tables`, :func:`layers_env`: one table per quantization instead of one set of inputs
per placement); ``tests/browser/test_plan_parity.py`` checks it against :func:`qwenfit.plan`
machine by machine.

Layout (``schema`` 1)::

    {"schema": 1, "defaults": {...}, "engines": [{"name", "kv", "context_step", ...}],
     "models": [{"key", "name", "params_total", "is_moe", "n_layers", "n_layer_all",
                 "native_context", "tp": {engine: [tp for 1..8 GPUs]}, "published": {engine: [...]},
                 "quants": {engine: {name: {"rank", "class", "published", "stored", "needs",
                                            "env": {...}, "layers": {...}}}}}],
     "accepts": {engine: {quant: name or null}},
     "hardware": {id | "cpu" | "custom": {"vendor", "unified", "usable", "vram", "ram",
                  "engines", "runs", "quants", "inputs", "rates"}},
     "formulas": [{"model", "engine", "kv_cache", "placement", "defs", "terms", "budget",
                   "decode_tokens_per_s"}]}
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

from qwenfit.core.engines.base import Engine, FormulaPlacement
from qwenfit.errors import SettingError

__all__ = ["PLAN_GPUS", "VARIANTS", "plan_env", "planner_json", "trace_placement", "variants_json"]
PLAN_SCHEMA = 1
PLAN_GPUS = (1, 2)  # identical GPUs the page plans llama.cpp for (the calculator's layer splits)
PLAN_TP_GPUS = 8  # vLLM: its tensor-parallel formulas
SPLIT_FIRSTS = (3 / 2, 2, 3, 4, 6, 8, 12, 16)  # llama.cpp place(): the first GPU's -ts weight tried


def _plan_deploy(
    engine: Engine, spec: Any, kv: Any, fp: FormulaPlacement, p: Any, n_cpu_moe: Any, *,
    vision: bool = False, mtp: bool = False,
) -> Any:  # fmt: skip
    """The deployment and options the planner's Search gives placement ``p`` (formulas.trace's, with
    ``p``'s -ngl and -ts, the vision tower and MTP drafting as asked)."""
    import dataclasses

    from qwenfit.core.engines.base import Deployment

    backend = "cpu" if fp.cpu_only else "cuda"
    d = Deployment(context=kv[0], sequences=kv[1], kv_cache=kv[2], backend=backend, n_gpus=max(fp.n_gpus, 1),
                   vision=vision, mtp=mtp)  # fmt: skip
    o = engine.formula_options(spec, fp, {"n_cpu_moe": n_cpu_moe})
    fields = {f.name for f in dataclasses.fields(o)}
    extra = {k: v for k, v in engine.placement_options(p).items() if k in fields and k != "n_cpu_moe"}
    return d, dataclasses.replace(o, **extra)


def trace_placement(
    spec: Any,
    engine: Engine,
    kv: str,
    fp: FormulaPlacement,
    p: Any,
    *,
    vision: bool = False,
    mtp: bool = False,
) -> dict[str, Any]:
    """One formula record (as calculator_json's) for planner placement ``p`` on ``fp``'s GPUs:
    :func:`qwenfit.core.fit.formulas.trace_deployed` with ``p``'s options (and the vision tower / MTP
    drafting where asked: the calculator's toggles)."""
    from qwenfit.core.expr import Var
    from qwenfit.core.fit.formulas import trace_deployed

    n_cpu_moe = Var("n_cpu_moe") if p.kind in ("n_cpu_moe", "gpu") else 0  # -ngl placements keep every expert
    d, o = _plan_deploy(engine, spec, (Var("ctx"), Var("seqs"), kv), fp, p, n_cpu_moe, vision=vision, mtp=mtp)
    return trace_deployed(spec, engine, fp, d, o, p).record()


def plan_env(
    spec: Any,
    engine: Engine,
    w: Any,
    fp: FormulaPlacement,
    p: Any,
    *,
    vision: bool = False,
    mtp: bool = False,
) -> dict[str, Any]:
    """The weight inputs of ``trace_placement(..., fp, p)`` for weights ``w`` (placement_env's)."""
    from qwenfit.core.fit.formulas import read_shape
    from qwenfit.core.fit.speed import with_bf16

    d, o = _plan_deploy(engine, spec, (1, 1, engine.kv_types[0]), fp, p, 0, vision=vision, mtp=mtp)
    values = {k: v for k, v in engine.weight_inputs(spec, w, d, o).items() if not isinstance(v, (str, bool))}
    values.update(with_bf16(engine.read_inputs(spec, w, read_shape(p)), w))
    return {f"{fp.key}|{k}": v for k, v in values.items()}


LAYER_COLUMNS = ("h", "g", "r", "eg", "er")  # per block: host, GPU, read bytes (less h), experts: GPU, read


def layer_tables(spec: Any, engine: Engine, w: Any) -> dict[str, Any]:
    """What the weight inputs of the -ngl / -ts placements (:func:`_extra_placements`) are computed
    from, per GGUF block (llama.cpp's ``llama_weight_env`` and ``llama_read_env``, without the vision
    tower and MTP): its bytes in host buffers (``h``, 32-byte aligned), in GPU buffers (CUDA's 128)
    and what a token reads of it, each less ``h`` (``g``, ``r``), of which routed experts (``eg``,
    ``er``, not less ``h``); the output
    layer's and the token embedding's [host, GPU, reads]; the block counts of the weights' and reads'
    layouts (``n_w``, ``n_r``: with the MTP block or not). :func:`layers_env` (and the page,
    docs/javascripts/qwenfit-plan.mjs) gives each placement's inputs from them."""
    from qwenfit.core.engines.llama_cpp.layout import EXPS_RE, WEIGHT_ALIGNMENT
    from qwenfit.core.engines.llama_cpp.options import mtp_layer
    from qwenfit.core.fit.speed import bf16_ppm
    from qwenfit.core.formats.reads import tensor_read_bytes

    n = spec.text.num_hidden_layers
    cols: dict[str, list[int]] = {c: [0] * n for c in LAYER_COLUMNS}
    ends = {"out": [0, 0, 0], "embed": [0, 0, 0]}
    align = WEIGHT_ALIGNMENT["cuda"]
    for t in w.tensors:
        if t.component in ("vision", "mtp"):
            continue
        sizes = (-(-t.bytes // 32) * 32, -(-t.bytes // align) * align, tensor_read_bytes(spec, t))
        if t.role == "embed" or t.layer is None:
            end = ends["embed" if t.role == "embed" else "out"]
            end[:] = [a + b for a, b in zip(end, sizes, strict=True)]
            continue
        if not 0 <= t.layer < n:
            raise ValueError(f"{t.gguf_name}: layer {t.layer} of a {n}-layer model")
        for c, x in zip(("h", "g", "r"), (sizes[0], sizes[1] - sizes[0], sizes[2] - sizes[0]), strict=True):
            cols[c][t.layer] += x  # the GPU bytes and reads less the host bytes: mostly a few bytes
        if t.gguf_name and EXPS_RE.search(t.gguf_name):
            cols["eg"][t.layer] += sizes[1]
            cols["er"][t.layer] += sizes[2]
    fp, p = _extra_placements(spec, engine)[0]
    d, o = _plan_deploy(engine, spec, (1, 1, engine.kv_types[0]), fp, p, 0)
    return {
        "n_w": n + (spec.mtp_layers if mtp_layer(d, o) else 0),  # the GGUF holds the MTP block
        "n_r": n + spec.mtp_layers,
        **cols,
        **ends,
        "lm_head": int(any(t.role == "lm_head" for t in w.tensors)),
        "tied": int(bool(spec.text.tie_word_embeddings)),
        "bf16_ppm": bf16_ppm(w),
    }


def _layout(
    n_all: int, n_gpus: int, ngl: int | None, shares: tuple[int, ...] | None
) -> tuple[list[str], list[str]]:
    """(GPU names, device of each block and the output layer): llama.cpp's layer split
    (:func:`qwenfit.core.engines.llama_cpp.layout.layer_devices`)."""
    from qwenfit.core.engines.llama_cpp.layout import gpu_names, layer_devices

    gpus = list(gpu_names(n_gpus))
    return gpus, layer_devices(n_all, gpus, n_all + 1 if ngl is None else ngl, shares or (1,) * n_gpus)


def layers_env(t: dict[str, Any], key: str) -> dict[str, Any]:
    """The weight inputs of plan placement ``key`` ("gpu2-ngl7", "gpu2-ts3-1", "gpu1") from
    :func:`layer_tables` ``t``: what :func:`plan_env` gives (docs/javascripts/qwenfit-plan.mjs's
    layersEnv is the same)."""
    import re

    m = re.fullmatch(r"gpu(\d+)(?:-ngl(\d+))?(?:-ts([\d-]+))?", key)
    if m is None:
        raise ValueError(f"not a plan placement: {key}")
    n_gpus, ngl = int(m[1]), None if m[2] is None else int(m[2])
    shares = None if m[3] is None else tuple(int(x) for x in m[3].split("-"))
    n = len(t["h"])

    def block(il: int, n_all: int) -> tuple[int, ...]:  # (h, g, r, eg, er) of block il
        if il == n_all:
            return (*t["out"], 0, 0)
        if il >= n:
            return (0, 0, 0, 0, 0)  # the MTP block: skipped
        h = t["h"][il]
        return (h, h + t["g"][il], h + t["r"][il], t["eg"][il], t["er"][il])

    gpus, dev = _layout(t["n_w"], n_gpus, ngl, shares)
    w = dict.fromkeys([*gpus, "cpu"], 0)
    exps = {g: [0] * (t["n_w"] + 1) for g in gpus}
    w["cpu"] += t["embed"][0]
    if not t["lm_head"] and dev[-1] != "cpu":
        w[dev[-1]] += t["embed"][1]
    for il, d in enumerate(dev):
        h, g, _, eg, _ = block(il, t["n_w"])
        w[d] += h if d == "cpu" else g
        if d != "cpu" and il < t["n_w"]:
            exps[d][il + 1] += eg
    env: dict[str, Any] = {f"w:{d}": b for d, b in w.items()}
    for d, per in exps.items():
        env[f"exps:{d}"] = list(itertools.accumulate(per))
        env[f"exps_max:{d}"] = max(per)
    _, dev = _layout(t["n_r"], n_gpus, ngl, shares)
    reads = {"gpu": 0, "cpu": 0}
    per = [0] * (t["n_r"] + 1)
    reads["gpu" if t["tied"] and dev[-1] != "cpu" else "cpu"] += t["embed"][2]
    for il, d in enumerate(dev):
        _, _, r, _, er = block(il, t["n_r"])
        reads["cpu" if d == "cpu" else "gpu"] += r
        if d != "cpu" and il < t["n_r"]:
            per[il + 1] += er
    env.update({"r:gpu": reads["gpu"], "r:cpu": reads["cpu"], "rexps": list(itertools.accumulate(per))})
    env["r:bf16_ppm"] = t["bf16_ppm"]
    return {f"{key}|{k}": v for k, v in env.items()}


def _extra_placements(spec: Any, engine: Engine) -> list[tuple[FormulaPlacement, Any]]:
    """Placements the planner tries that the calculator's formulas do not cover: all layers (and
    --n-cpu-moe) on more GPUs than the calculator's, -ngl k, MoE -ts splits (engines whose options
    have no -ngl: none)."""
    from qwenfit.core.engines.base import Placement

    knobs = engine.placement_options(Placement("gpu"))
    if "n_gpu_layers" not in knobs:
        return []
    covered = {fp.key for fp in engine.formula_placements(spec)}
    n_all = spec.text.num_hidden_layers + spec.mtp_layers
    out: list[tuple[FormulaPlacement, Any]] = []
    for n in PLAN_GPUS:
        if f"gpu{n}" not in covered:
            out.append((FormulaPlacement(f"gpu{n}", n), Placement("gpu", n_gpus=n)))
        for k in range(1, n_all + 1):
            out.append((FormulaPlacement(f"gpu{n}-ngl{k}", n), Placement("ngl", n_gpus=n, n_gpu_layers=k)))
        if n > 1 and spec.is_moe and "tensor_split" in knobs:
            for first in SPLIT_FIRSTS:
                scale = 2 if first != int(first) else 1
                shares = (int(first * scale), *([scale] * (n - 1)))
                key = f"gpu{n}-ts" + "-".join(map(str, shares))
                out.append((FormulaPlacement(key, n), Placement("n_cpu_moe", n_gpus=n, tensor_split=shares)))
    return out


def _artifact(engine: Engine, source: Any, quant: str) -> Any:
    from qwenfit.core.engines.base import Deployment

    return engine.artifact(source, quant, Deployment(context=1))


def _quant_record(spec: Any, source: Any, engine: Engine, quant: str, calc_env: Any) -> dict[str, Any]:
    """One quantization of one model on ``engine``: its ranking inputs, what its command loads and
    the weight inputs of every placement the planner may try (those calculator.json lacks)."""
    from qwenfit.core.fit.formulas import placement_env
    from qwenfit.core.fit.ranking import quality_class
    from qwenfit.loaders.quants import quality_key

    art = _artifact(engine, source, quant)
    rec: dict[str, Any] = {
        "rank": quality_key(quant)[0],
        "class": quality_class(quant),
        "published": int(art.published),
        "stored": int(art.stored),
        "needs": int(bool(art.needs)),
    }
    try:
        w = engine.artifact_weights(spec, art, quant, mtp=False, vision=False)
    except SettingError as exc:
        rec["error"] = str(exc)
        return rec
    env: dict[str, Any] = {}
    if calc_env is None:  # not among the calculator's quants: every placement here
        for fp in engine.formula_placements(spec):
            try:
                env.update(placement_env(spec, engine, w, fp))
            except (SettingError, ValueError):
                continue
    rec["env"] = env
    if _extra_placements(spec, engine):  # their weight inputs: from the layers (layers_env)
        rec["layers"] = layer_tables(spec, engine, w)
    return rec


def _rates(engine: Engine, device: Any, n_max: int) -> dict[str, Any]:
    """Speed constants of ``engine`` on ``n`` such devices at tensor-parallel size ``tp``
    (``"n/tp"``), and on the CPU (``"cpu"``): :func:`qwenfit.core.fit.speed.rate_constants`. Those
    of a ``tp`` that are the same for every ``n`` from ``tp`` to ``n_max`` are written once, as
    ``"*/tp"``, with ``"gpus"``: ``n_max`` (the page looks ``"n/tp"`` up, then ``"*/tp"``)."""
    from qwenfit.core.fit.speed import rate_constants
    from qwenfit.core.hardware import Machine

    out: dict[str, Any] = {"cpu": rate_constants(machine=Machine(name="cpu"), engine=engine, backend="cpu")}
    if device is None:
        return out
    backend = device.backends[0] if device.backends else "cuda"
    for n in range(1, n_max + 1):
        machine = Machine(name=device.id, devices=(device,) * n)
        for tp in (1, 2, 4, 8):
            if tp <= n:
                out[f"{n}/{tp}"] = rate_constants(machine=machine, engine=engine, tp=tp, backend=backend)
    for tp in (1, 2, 4, 8):
        keys = [f"{n}/{tp}" for n in range(tp, n_max + 1)]
        if len(keys) > 1 and all(out[k] == out[keys[0]] for k in keys):
            out[f"*/{tp}"] = out[keys[0]]
            for k in keys:
                del out[k]
            out["gpus"] = n_max
    return out


def _machine_record(device: Any, engine_list: tuple[Engine, ...]) -> dict[str, Any]:
    """A device's budget inputs (one GPU's usable bytes; unified memory: Metal's share and the whole
    memory, before the RAM reserve), which engines plan on it, their quants and inputs, its rates."""
    from qwenfit.core.hardware import Machine, target_for

    machine = Machine(name="cpu") if device is None else Machine(name=device.id, devices=(device,))
    rec: dict[str, Any] = {
        "vendor": None if device is None else device.vendor,
        "unified": bool(device is not None and device.unified),
        "engines": [e.name for e in engine_list if e.default_on(machine)],
        "runs": [e.name for e in engine_list if not e.runs_on(machine)],
        "quants": {e.name: list(e.quants_for(machine)) for e in engine_list},
        "inputs": {},
        "rates": {},
    }
    if device is not None:
        t = target_for(machine, ram_reserve_bytes=0)
        rec["usable"] = device.usable_bytes
        rec["vram"] = t.vram_bytes
        rec["ram"] = t.ram_bytes if device.unified else None
    n_max = 1 if device is None or device.unified else PLAN_TP_GPUS
    for e in engine_list:
        inputs = {}
        for fp in e.formula_placements(_ANY_SPEC[0]):
            own = e.calc_hardware_inputs(device, fp)
            if own is not None:
                inputs["cpu" if fp.cpu_only else "gpu"] = own
        rec["inputs"][e.name] = inputs
        rec["rates"][e.name] = _rates(e, device, n_max) if device is None or "gpu" in inputs else {}
    return rec


_ANY_SPEC: list[Any] = []


def _refusals(
    devices: list[Any], engine_list: tuple[Engine, ...], models: list[tuple[str, Any]]
) -> dict[str, Any]:
    """Per device: {engine: {model: why}} where the engine refuses the model on that GPU whatever the
    quantization (vLLM's attention backends by compute capability): one evaluation through the
    planner's Search per kind of GPU (vendor, compute capability, backends)."""
    from qwenfit.api import plan_model
    from qwenfit.core.fit.planner import Search
    from qwenfit.core.hardware import Machine, target_for

    by_kind: dict[tuple[Any, ...], dict[str, Any]] = {}
    out: dict[str, Any] = {}
    for dev in devices:
        kind = (dev.vendor, dev.compute_capability, dev.backends, dev.unified)
        if kind not in by_kind:
            machine = Machine(name=dev.id, devices=(dev,))
            target = target_for(machine)
            found: dict[str, Any] = {}
            for e in engine_list:
                if e.runs_on(machine):
                    continue
                for key, spec in models:
                    quant = next((q for q in e.quants_for(machine) if e.accepts(q)), None)
                    if quant is None:
                        continue
                    try:
                        Search(plan_model(spec, key), e, e.accepts(quant) or quant, target).evaluate(
                            e.fallback(machine, spec), 4096, 1
                        )
                    except SettingError as exc:
                        found.setdefault(e.name, {})[key] = str(exc)
            by_kind[kind] = found
        out[dev.id] = by_kind[kind]
    return out


@functools.lru_cache(maxsize=1)
def planner_json() -> dict[str, Any]:
    """Plan mode's data (the module docstring); deterministic for a given qwenfit."""
    from qwenfit.api.sources import model_source
    from qwenfit.core.fit.planner import DEFAULT_CONTEXT, MIN_CONTEXT, YARN_CONTEXT
    from qwenfit.core.fit.ranking import NEAR_LOSSLESS_RANK
    from qwenfit.core.fit.speed import DEFAULT_DEPTH
    from qwenfit.core.hardware import Machine
    from qwenfit.export import calculator_engines, calculator_json
    from qwenfit.loaders.catalog import entries, load_catalog_model
    from qwenfit.loaders.hardware import custom_machine, hardware_catalog

    calc = calculator_json()
    catalog = hardware_catalog()
    machines = [Machine(name="cpu"), *(Machine(name=d.id, devices=(d,)) for d in catalog.values())]
    engine_list = tuple(e for e in calculator_engines() if any(e.default_on(m) for m in machines))
    models: list[dict[str, Any]] = []
    specs: list[tuple[str, Any]] = []
    formulas: list[dict[str, Any]] = []
    accepts: dict[str, dict[str, Any]] = {e.name: {} for e in engine_list}
    for entry in entries():
        spec = load_catalog_model(entry.name)
        _ANY_SPEC[:] = _ANY_SPEC or [spec]
        key = entry.short_name
        specs.append((key, spec))
        source = model_source(spec, entry.name)
        calc_quants = calc["models"][key]["quants"]
        rec: dict[str, Any] = {
            "key": key,
            "name": spec.name,
            "params_total": spec.params.total,
            "is_moe": spec.is_moe,
            "n_layers": spec.text.num_hidden_layers,
            "n_layer_all": spec.text.num_hidden_layers + spec.mtp_layers,
            "native_context": spec.text.max_position_embeddings,
            "tp": {},
            "published": {},
            "quants": {},
        }
        for engine in engine_list:
            engine.prepare_formulas(spec)
            rec["published"][engine.name] = list(engine.published_quants(source, mtp=False))
            rec["tp"][engine.name] = [
                engine.fallback(Machine(name="n", devices=(next(iter(catalog.values())),) * n), spec).tp
                for n in range(1, 9)
            ]
            kv = engine.kv_types[0]
            for fp, p in _extra_placements(spec, engine):
                try:
                    traced = trace_placement(spec, engine, kv, fp, p)
                except (SettingError, ValueError, TypeError):
                    continue
                formulas.append(
                    {"model": key, "engine": engine.name, "kv_cache": kv, "placement": fp.key, **traced}
                )
            wanted = dict.fromkeys((*engine.planner_quants, *rec["published"][engine.name]))
            for m in machines:
                wanted.update(dict.fromkeys(engine.quants_for(m)))
            quants: dict[str, Any] = {}
            for q in wanted:
                name = engine.accepts(q)
                accepts[engine.name][q] = name
                if name is None or name.endswith(".gguf") or name in quants:
                    continue
                quants[name] = _quant_record(spec, source, engine, name, calc_quants[engine.name].get(name))
            rec["quants"][engine.name] = quants
        models.append(rec)
    hardware = {"cpu": _machine_record(None, engine_list)}
    hardware.update({dev.id: _machine_record(dev, engine_list) for dev in catalog.values()})
    for dev_id, refused in _refusals(list(catalog.values()), engine_list, specs).items():
        hardware[dev_id]["refuses"] = refused
    custom = custom_machine(vram_gb=24, ram_gb=None).devices[0]
    hardware["custom"] = {
        **_machine_record(custom, engine_list),
        "driver_reserve": custom.memory_bytes - custom.usable_bytes,
    }
    return {
        "schema": PLAN_SCHEMA,
        "defaults": {
            "context": DEFAULT_CONTEXT,
            "min_context": MIN_CONTEXT,
            "yarn_context": YARN_CONTEXT,
            "depth": DEFAULT_DEPTH,
            "near_lossless_rank": NEAR_LOSSLESS_RANK,
            "split_firsts": list(SPLIT_FIRSTS),
            "gpus": list(PLAN_GPUS),
        },
        "engines": [
            {
                "name": e.name,
                "kv": e.kv_types[0],
                "context_step": e.context_step,
                "max_sequences": e.max_sequences,
                "context_beyond_native": e.context_beyond_native,
                "expert_offload": bool(getattr(e, "expert_offload", False)),
            }
            for e in engine_list
        ],
        "models": models,
        "accepts": accepts,
        "hardware": hardware,
        "formulas": formulas,
    }


# -------------------------------------------------------------------------------------------------
# the calculator's vision and MTP toggles (issue 17 item 5): its formulas traced with the vision tower
# loaded and/or MTP drafting on, and the weight inputs that change with them (assets/variants.json)

VARIANTS = {"vision": (True, False), "mtp": (False, True), "vision+mtp": (True, True)}


@functools.lru_cache(maxsize=1)
def variants_json() -> dict[str, Any]:
    """{"schema": 1, "formulas": [{"model", "engine", "kv_cache", "placement", "variant", ...}],
    "env": {model: {engine: {quant: {variant: {name: value}}}}}}: for each calculator formula at the
    engine's default KV cache, the same record traced with the vision tower and/or MTP drafting, and
    each quantization's weight inputs where they differ from calculator.json's (an engine that
    refuses a variant — Ollama and LM Studio do not draft with MTP — has none)."""
    from qwenfit.api.sources import model_source
    from qwenfit.core.fit.formulas import placement_of
    from qwenfit.export import calculator_engines, calculator_json
    from qwenfit.loaders.catalog import entries, load_catalog_model

    calc = calculator_json()
    formulas: list[dict[str, Any]] = []
    envs: dict[str, Any] = {}
    for entry in entries():
        spec = load_catalog_model(entry.name)
        key = entry.short_name
        source = model_source(spec, entry.name)
        for engine in calculator_engines():
            kvs = (
                engine.calc_kv_types_for(spec)
                if hasattr(engine, "calc_kv_types_for")
                else engine.calc_kv_types
            )
            if not kvs:
                continue
            engine.prepare_formulas(spec)
            for variant, (vision, mtp) in VARIANTS.items():
                if (vision and spec.vision is None) or (mtp and (not spec.mtp_layers or engine.no_mtp)):
                    continue
                traced_any = False
                for fp in engine.formula_placements(spec):
                    try:
                        rec = trace_placement(
                            spec, engine, kvs[0], fp, placement_of(fp), vision=vision, mtp=mtp
                        )
                    except (SettingError, ValueError, TypeError):
                        continue
                    traced_any = True
                    rates = (
                        f"{engine.name}/cpu" if fp.cpu_only else f"{engine.name}/tp{fp.tp}"
                    )  # calculator_json's
                    ident = {"model": key, "engine": engine.name, "kv_cache": kvs[0], "placement": fp.key}
                    formulas.append({**ident, "variant": variant, "rates": rates, **rec})
                if not traced_any:
                    continue
                for q, base in calc["models"][key]["quants"][engine.name].items():
                    try:
                        art = _artifact(engine, source, q)
                        w = engine.artifact_weights(spec, art, q, mtp=mtp, vision=vision)
                    except SettingError:
                        continue
                    diff: dict[str, Any] = {}
                    for fp in engine.formula_placements(spec):
                        try:
                            env = plan_env(spec, engine, w, fp, placement_of(fp), vision=vision, mtp=mtp)
                        except (SettingError, ValueError):
                            continue
                        diff.update({k: v for k, v in env.items() if base["env"].get(k) != v})
                    envs.setdefault(key, {}).setdefault(engine.name, {}).setdefault(q, {})[variant] = diff
    return {"schema": 1, "formulas": formulas, "env": envs}
