"""What the calculator page must show for one state of its form, computed in Python.

A state is the configuration ``qwenfit.export.evaluate_export`` takes (model, engine, quant, kv,
placement, ctx, seqs, n_cpu_moe, hardware, vram_gb, ram_gb). ``evaluate_export`` evaluates the
exported trees in Python (what the page does in JavaScript) and ``evaluate_config`` goes through
the library (``qwenfit.estimate`` and the engine's launch command); the page must show exactly the
strings they return, the launch command included.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from typing import Any

from qwenfit.export import evaluate_export

STATE_KEYS = (
    "model", "engine", "quant", "kv", "placement", "n_cpu_moe", "ctx", "seqs",
    "hardware", "vram_gb", "ram_gb",
)  # fmt: skip


def formula_index(data: Mapping[str, Any]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    return {(f["model"], f["engine"], f["kv_cache"], f["placement"]): f for f in data["formulas"]}


def expected_texts(data: Mapping[str, Any], st: Mapping[str, Any]) -> dict[str, Any]:
    """Every string the page shows (its data-parity elements) for ``st``, or {"error": message} where
    the export cannot evaluate it (the page must then refuse too)."""
    try:
        texts: dict[str, Any] = dict(evaluate_export(dict(data), dict(st)))
    except (KeyError, ValueError, ZeroDivisionError, IndexError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return texts


def uses_n_cpu_moe(formula: Mapping[str, Any]) -> bool:
    return '["var", "n_cpu_moe"]' in json.dumps([formula.get("defs"), formula["terms"]])


def rates_for(data: Mapping[str, Any], hardware: str, formula: Mapping[str, Any]) -> Any:
    source = data["custom_hardware"] if hardware == "custom" else data["hardware"][hardware]
    return source.get("env", {}).get(formula["rates"])


def random_states(data: Mapping[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` random states the page's form offers (every choice valid for the ones before it)."""
    rng = random.Random(seed)
    index = formula_index(data)
    hardware = sorted(data["hardware"])
    out: list[dict[str, Any]] = []
    while len(out) < n:
        hw = "custom" if rng.random() < 0.25 else rng.choice(hardware)
        model = rng.choice(sorted(data["models"]))
        m = data["models"][model]
        engine = rng.choice([e for e in data["engines"] if m["quants"].get(e)])
        info = data["engines"][engine]
        kv = rng.choice(info["kv_cache"])
        options = [p for p in info["placements"] if (model, engine, kv, p) in index]
        options = [p for p in options if rates_for(data, hw, index[(model, engine, kv, p)]) is not None]
        if not options:
            continue
        placement = rng.choice(options)
        formula = index[(model, engine, kv, placement)]
        limit = int(m["native_context"])
        if rng.random() < 0.3:
            ctx = rng.choice([c for c in (4096, 8192, 32768, 65536, 131072, 262144) if c <= limit])
        else:  # log-uniform over the whole range, so small and odd contexts occur
            ctx = min(limit, max(1, int(math.exp(rng.uniform(0, math.log(limit))))))
        max_seqs = int(info["max_sequences"])
        seqs = min(max_seqs, rng.choice([1, 1, 1, 2, 4, 8, rng.randint(1, max_seqs)]))
        n_cpu_moe = rng.randint(0, int(m["n_layers"])) if uses_n_cpu_moe(formula) else 0
        out.append(
            {
                "model": model,
                "engine": engine,
                "quant": rng.choice(sorted(m["quants"][engine])),
                "kv": kv,
                "placement": placement,
                "n_cpu_moe": n_cpu_moe,
                "ctx": ctx,
                "seqs": seqs,
                "hardware": hw,
                "vram_gb": round(rng.uniform(4, 200), rng.choice([0, 1, 2, 3])),
                "ram_gb": rng.choice([8, 16, 32, 64, 96, 128, 192, 256, 512, round(rng.uniform(4, 1024), 2)]),
            }
        )
    return out
