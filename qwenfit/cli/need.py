"""``qwenfit need``: reverse planning — the smallest catalog machines that run a model."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

from qwenfit.cli.args import (
    EXIT_DOES_NOT_FIT,
    EXIT_OK,
    add_json,
    engine_names,
    engines_arg,
    model_arg,
    positive,
    tokens,
)
from qwenfit.cli.output import emit, emit_json

if TYPE_CHECKING:
    from qwenfit.api.requirements import MachineFit, Requirements

__all__ = ["add", "requirements_json", "run"]

MAX_ROWS = 25  # machines listed without --all


def speed(text: str) -> float:
    """A decode speed in tokens/s: a positive number."""
    try:
        value = float(text.strip().lower().removesuffix("tok/s").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a speed in tokens/s (e.g. 20), got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive speed in tokens/s, got {text!r}")
    return value


def add(sub: Any, schema_id: str) -> None:
    p = sub.add_parser(
        "need",
        help="the smallest catalog machines that run a model (reverse planning)",
        description=run.__doc__,
    )
    p.add_argument("model", metavar="MODEL", help="catalog name, repo id or path")
    p.add_argument(
        "--quant",
        metavar="Q",
        help="only this quantization (llama.cpp file type or GPU/MLX format); default: any",
    )
    p.add_argument("--context", type=tokens, metavar="N", help="tokens per sequence (default: the planner's)")
    p.add_argument("--sequences", type=positive, default=1, metavar="N", help="concurrent sequences")
    p.add_argument(
        "--engine",
        action="append",
        metavar="E",
        help=f"engines to plan for, repeatable or comma-separated ({', '.join(engine_names())}); "
        "default: the planner's for each machine",
    )
    p.add_argument(
        "--min-speed",
        type=speed,
        metavar="TOK/S",
        help="estimated decode speed the machine must reach (an unknown speed does not)",
    )
    p.add_argument(
        "--min-context",
        type=tokens,
        metavar="N",
        help="without --context: the least context a machine must hold (default 4096)",
    )
    p.add_argument("--all", action="store_true", help=f"list every machine (default: the first {MAX_ROWS})")
    add_json(p, schema_id)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The machines of the hardware catalog that run MODEL as asked, smallest first (device memory
    + host RAM), each with the option the planner picks there: quant, engine, placement, context,
    speed; then the launch command on the smallest. Candidates: every catalog GPU 1, 2, 4 and 8
    times with 16 GB to 2 TB of host RAM, every Apple Silicon and other unified-memory system, and
    CPU-only machines; a machine is left out when one with the same GPU, no more of them and no
    more RAM also runs it. Exit 0 when a machine runs it, 1 when none does, 2 bad input."""
    from qwenfit.api.requirements import format_requirements, requirements
    from qwenfit.core.fit.planner import MIN_CONTEXT

    r = requirements(
        model_arg(args.model),
        args.quant,
        context=args.context,
        sequences=args.sequences,
        engines=engines_arg(args.engine),
        min_speed=args.min_speed,
        min_context=args.min_context or MIN_CONTEXT,
    )
    if args.json:
        emit_json(requirements_json(r))
    else:
        emit(format_requirements(r, max_rows=None if args.all else MAX_ROWS))
    return EXIT_OK if r.fits else EXIT_DOES_NOT_FIT


def machine_fit_json(m: MachineFit) -> dict[str, Any]:
    from qwenfit.report.json import machine_json, option_json

    dev = m.device
    return {
        "name": m.machine.name,
        "kind": m.kind,
        "device": None if dev is None else dev.id,
        "n_gpus": m.n_gpus,
        "vram_bytes": m.vram_bytes,
        "ram_bytes": m.ram_bytes,
        "memory_bytes": m.memory_bytes,
        "machine": machine_json(m.machine),
        "option": option_json(m.option),
    }


def requirements_json(r: Requirements) -> dict[str, Any]:
    """``qwenfit need --json``: a plain dict (no pydantic; the schema's ``NeedOut``)."""
    from qwenfit.report.json import SCHEMA_ID

    return {
        "schema": SCHEMA_ID,
        "kind": "need",
        "model": r.model,
        "quant": r.quant,
        "context": r.context,
        "sequences": r.sequences,
        "engines": None if r.engines is None else list(r.engines),
        "min_speed": r.min_speed,
        "min_context": r.min_context,
        "candidates": r.candidates,
        "evaluated": r.evaluated,
        "notes": list(r.notes),
        "fits": r.fits,
        "machines": [machine_fit_json(m) for m in r.machines],
    }
