"""What plan mode must rank for a machine, computed by :func:`qwenfit.plan` itself.

:func:`random_cases` draws machines (seeded) from what plan mode offers: a catalog GPU or two of the
same, with or without host RAM; an Apple configuration; a custom GPU by its memory; no GPU — and
constraints (a model, an engine, prefer, a minimum speed, GPU only, a context). :func:`python_rows`
runs ``qwenfit.plan()`` on one and returns each option as the page's ``optionRow`` does:
``[model, quant, engine, placement, context, decode tok/s, [low, high] of its range as shown]``.
"""

from __future__ import annotations

import math
import random
from typing import Any

import qwenfit


def placement_key(p: Any) -> str:
    """docs/javascripts/qwenfit-plan.mjs placementKey()."""
    if p is None:
        return ""
    ts = ",".join(str(int(x)) if float(x).is_integer() else repr(x) for x in p.tensor_split or ())
    ngl = "" if p.n_gpu_layers is None else str(p.n_gpu_layers)
    return f"{p.kind}|{p.n_gpus}|{p.n_cpu_moe}|{ngl}|{ts}|{p.tp}|{p.pp}"


def random_cases(planner: dict[str, Any], n: int, seed: int = 17) -> list[dict[str, Any]]:
    """``n`` (machine, options) pairs in the page's form (qwenfit-plan.mjs planMachine)."""
    rng = random.Random(seed)
    hw = planner["hardware"]
    discrete = sorted(k for k, v in hw.items() if k not in ("cpu", "custom") and not v["unified"])
    apple = sorted(k for k, v in hw.items() if k not in ("cpu", "custom") and v["unified"])
    models = [m["key"] for m in planner["models"]]
    out = []
    for _ in range(n):
        r = rng.random()
        ram = rng.choice([None, 16, 32, 32, 64, 64, 96, 128, 192, 256])
        if r < 0.45:
            machine = {"hardware": rng.choice(discrete), "n_gpus": 1, "ram_gb": ram}
        elif r < 0.65:
            machine = {"hardware": rng.choice(discrete), "n_gpus": 2, "ram_gb": ram}
        elif r < 0.82:
            machine = {"hardware": rng.choice(apple), "n_gpus": 1, "ram_gb": None}
        elif r < 0.94:
            vram = rng.choice([6, 8, 12, 16, 20, 24, 32, 48, 80, 96])
            machine = {"hardware": "custom", "n_gpus": rng.choice([1, 1, 2]), "vram_gb": vram, "ram_gb": ram}
        else:
            machine = {"hardware": "cpu", "n_gpus": 0, "ram_gb": rng.choice([16, 32, 64, 128, 256])}
        opts: dict[str, Any] = {"prefer": rng.choice(["quality", "quality", "speed", "context"])}
        if rng.random() < 0.15:
            opts["gpu_only"] = True
        if rng.random() < 0.15:
            opts["min_speed"] = rng.choice([5, 10, 20, 40])
        if rng.random() < 0.2:
            opts["model"] = rng.choice(models)
        engines = hw[machine["hardware"]]["engines"]
        if rng.random() < 0.15 and len(engines) > 1:
            opts["engines"] = [rng.choice(engines)]
        c = rng.random()
        if c < 0.1:
            opts["context"] = "max"
        elif c < 0.2:
            opts["context"] = rng.choice([8192, 65536, 131072])
        out.append({"machine": machine, "opts": opts})
    return out


def plan_kwargs(planner: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    """qwenfit.plan()'s arguments for one case."""
    m, o = case["machine"], case["opts"]
    kw: dict[str, Any] = {"ram_gb": m.get("ram_gb")}
    if m["hardware"] == "custom":
        kw.update(vram_gb=m["vram_gb"], n_gpus=m["n_gpus"])
    elif m["hardware"] == "cpu":
        kw["detect"] = False
    else:
        kw["hardware"] = m["hardware"] if m["n_gpus"] == 1 else f"{m['n_gpus']}x {m['hardware']}"
    if o.get("model"):
        kw["model"] = next(x["name"] for x in planner["models"] if x["key"] == o["model"])
    for k in ("prefer", "min_speed", "gpu_only", "context", "engines"):
        if k in o:
            kw[k] = o[k]
    return kw


def shown_band(rate: Any) -> list[int] | None:
    """A decode speed's out-of-sample range as the CLI and the page show it (ends rounded half up)."""
    if rate is None:
        return None
    return [math.floor(rate.low + 0.5), math.floor(rate.high + 0.5)]


def python_rows(planner: dict[str, Any], case: dict[str, Any]) -> list[list[Any]]:
    p = qwenfit.plan(**plan_kwargs(planner, case))
    return [
        [
            o.model, o.quant, o.engine, placement_key(o.placement), o.context, o.decode_tokens_per_s,
            shown_band(o.decode_tokens_per_s),
        ]
        for o in p.options
    ]  # fmt: skip


FIXTURE_SEED = 17
FIXTURE_CASES = 200


def write_fixture(path: Any, planner: dict[str, Any]) -> dict[str, Any]:
    """tests/browser/fixtures/plan_parity.json: the cases and qwenfit.plan()'s answer to each."""
    import json

    cases = random_cases(planner, FIXTURE_CASES, FIXTURE_SEED)
    for c in cases:
        try:
            c["rows"] = python_rows(planner, c)
        except Exception as exc:  # the page must refuse the same machine
            c["error"] = f"{type(exc).__name__}: {exc}"
    out = {"qwenfit": qwenfit.__version__, "seed": FIXTURE_SEED, "n": FIXTURE_CASES, "cases": cases}
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    return out


if __name__ == "__main__":  # regenerate the fixture: python tests/browser/plan_reference.py (~3 min)
    from pathlib import Path

    from qwenfit.export_plan import planner_json

    here = Path(__file__).resolve().parent
    (here / "fixtures").mkdir(exist_ok=True)
    write_fixture(here / "fixtures" / "plan_parity.json", planner_json())
