"""``qwenfit plan``: ranked options for a machine."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from qwenfit.cli import output
from qwenfit.cli.args import (
    EXIT_OK,
    add_hardware,
    add_json,
    add_model_flags,
    any_quant,
    context_arg,
    engine_names,
    engines_arg,
    machine_of,
    model_arg,
    positive,
    speed_arg,
    tokens,
)
from qwenfit.cli.output import emit, emit_json, memory_bars

__all__ = ["add", "run"]


def add(sub: Any, schema_id: str) -> None:
    p = sub.add_parser("plan", help="ranked options for a machine", description=run.__doc__)
    p.add_argument("models", nargs="*", metavar="MODEL", help="catalog name, repo id or path (default: all)")
    add_hardware(p)
    p.add_argument(
        "--engine",
        action="append",
        metavar="E",
        help=f"engines to plan for, repeatable or comma-separated ({', '.join(engine_names())}); "
        "default: llama.cpp, plus vLLM on NVIDIA/AMD or MLX on Apple",
    )
    p.add_argument("--quant", action="append", metavar="Q", help="quantizations to try, repeatable")
    p.add_argument(
        "--context",
        type=context_arg,
        metavar="N|max",
        help="tokens per sequence (default 32768, the output length Qwen's cards recommend for most "
        "queries, less where only less fits; max: the most that fits)",
    )
    p.add_argument(
        "--prefer",
        choices=("quality", "speed", "context"),
        default="quality",
        help="what ranks first (default quality: the best quantization that fits, then speed)",
    )
    p.add_argument("--min-speed", type=speed_arg, metavar="TOK/S", help="reject options decoding slower")
    p.add_argument("--gpu-only", action="store_true", help="nothing in host RAM: every layer on the GPUs")
    p.add_argument(
        "--depth",
        type=tokens,
        default=4096,
        metavar="N",
        help="tokens already in the context when speeds are compared (default 4096)",
    )
    add_model_flags(p)  # fmt: skip
    p.add_argument("--sequences", type=positive, default=1, metavar="N", help="concurrent sequences")
    p.add_argument("--kv-cache", metavar="T", help="KV cache type (llama.cpp: q8_0, ...; vLLM: fp8)")
    p.add_argument("--nodes", type=positive, default=1, metavar="N", help="machines vLLM may span (pp)")
    p.add_argument("--all", action="store_true", help="list every option and every rejection")
    add_json(p, schema_id)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Ranked options for running MODEL (default: every catalog model) on a machine: the best
    placement, context, concurrency, speed and launch command of each (model, engine, quant).
    With no hardware flag the local machine is detected."""
    from qwenfit.api import plan
    from qwenfit.core.fit.text import format_plan
    from qwenfit.report.json import plan_json

    engines = engines_arg(args.engine)
    quants = [any_quant(q) for v in args.quant or () for q in v.split(",") if q.strip()] or None
    machine = machine_of(args, engines or ())
    models = [model_arg(m) for m in args.models]
    model: Any = None if not models else models[0] if len(models) == 1 else models
    result = plan(
        model,
        hardware=machine,
        engines=engines,
        quants=quants,
        context=args.context,
        sequences=args.sequences,
        kv_cache=args.kv_cache,
        nodes=args.nodes,
        prefer=args.prefer,
        min_speed=args.min_speed,
        gpu_only=args.gpu_only,
        depth=args.depth,
        vision=args.vision,
        mtp=args.mtp,
        ram_reserve_gb=args.ram_reserve,
        gpu_reserve_gb=args.vram_reserve,
        wired_limit_mb=args.wired_limit_mb,
    )
    if args.json:
        emit_json(plan_json(result))
        return EXIT_OK
    many = 1 << 30
    text = format_plan(result, max_rows=many, max_rejected=many) if args.all else format_plan(result)
    lines = [text]
    best = result.best
    if best is not None and best.estimate is not None:
        lines += ["", f"best option, memory per device ({best.model} {best.quant} on {best.engine}):"]
        lines += memory_bars(best.estimate, color=output.use_color(sys.stdout))
    if not args.all and (len(result.options) > 15 or len(result.rejected) > 10):
        lines.append("\n(--all lists every option and rejection; --json gives every number)")
    emit("\n".join(lines))
    return EXIT_OK
