"""``qwenfit check``: pre-flight one configuration (exit 0 fits, 1 does not fit, 2 bad input)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from qwenfit.cli import output
from qwenfit.cli.args import (
    EXIT_DOES_NOT_FIT,
    EXIT_OK,
    add_hardware,
    add_json,
    add_model_flags,
    detect_machine,
    engine_names,
    engine_quant,
    load_model,
    machine_of,
    ngl,
    nonnegative,
    positive,
    split,
    tokens,
)
from qwenfit.cli.output import (
    Style,
    describe_machine,
    emit,
    emit_json,
    gb_text,
    indent_command,
    memory_bars,
)
from qwenfit.errors import UsageError

if TYPE_CHECKING:
    from qwenfit.core.hardware import Machine
    from qwenfit.core.terms import Estimate

__all__ = ["add", "run"]

_LABELS = {
    "context": "less context",
    "sequences": "fewer sequences",
    "offload": "offload",
    "placement": "placement",
    "quant": "smaller quant",
}


def add(sub: Any, schema_id: str) -> None:
    names = engine_names()
    p = sub.add_parser(
        "check",
        help="pre-flight one configuration or an engine's own command (exit 0 fits, 1 not)",
        description=run.__doc__,
        usage="qwenfit check MODEL [options]\n       qwenfit check [hardware flags] [--json] -- COMMAND ...",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        nargs="?",
        help="catalog name, repo id or path; or, after --, an engine's launch command (llama-server, "
        "vllm serve, python -m sglang.launch_server, mlx_lm.server, ollama, a Modelfile / llama-swap "
        "config file)",
    )
    p.set_defaults(launch=None)
    p.add_argument(
        "--quant",
        metavar="Q",
        help="llama.cpp file type (Q4_K_M, UD-Q4_K_XL, ...) or GPU/MLX format (fp8, awq, mlx-4bit, ...); "
        "default: a file's own type, else the engine's usual (Q4_K_M, bf16, mlx-4bit)",
    )
    p.add_argument(
        "--engine",
        choices=names,
        metavar="E",
        help=f"{', '.join(names)} (default llama.cpp; vllm for a safetensors checkpoint, mlx for an MLX one)",
    )
    p.add_argument(
        "--context",
        type=tokens,
        metavar="N",
        help="tokens per sequence (default: the model's native context)",
    )
    p.add_argument("--sequences", type=positive, default=1, metavar="N", help="concurrent sequences")
    p.add_argument("--kv-cache", metavar="T", help="KV cache type (llama.cpp: f16, q8_0, ...; vLLM: fp8)")
    add_hardware(p)
    add_model_flags(p)
    g = p.add_argument_group("placement")
    g.add_argument(
        "--n-cpu-moe",
        type=nonnegative,
        default=0,
        metavar="N",
        help="llama.cpp: routed experts of the first N layers in RAM",
    )
    g.add_argument("--ngl", type=ngl, metavar="N", help="llama.cpp -ngl: layers on the GPU (default all)")
    g.add_argument(
        "--ts", type=split, metavar="A,B,...", help="llama.cpp -ts: each GPU's share of the layers"
    )
    g.add_argument(
        "--tp", type=positive, metavar="N", help="vLLM/SGLang tensor parallel size (default: GPUs)"
    )
    add_json(p, schema_id)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Pre-flight one configuration: does MODEL in quant Q, with this context and these sequences,
    fit this machine on this engine? Exit 0 fits, 1 does not fit (with the shortfall and the nearest
    options that fit: less context, fewer sequences, offload, a smaller quant), 2 bad input.
    With no hardware flag the local machine is detected.

    After ``--``, an engine's own launch command is read the way that engine reads it and checked
    (exit 2 names any option that changes memory in a way qwenfit does not model); when it does not
    fit, the edits to that command that fit are printed, each re-checked."""
    if args.launch is not None:
        from qwenfit.cli.check_launch import run_launch

        return run_launch(args)
    if args.model is None:
        raise UsageError(
            "give a MODEL, or an engine's command after -- (qwenfit check --vram 24 -- llama-server ...)"
        )
    from qwenfit.api import check_result
    from qwenfit.api.sources import stored_family
    from qwenfit.core.engines.base import get
    from qwenfit.core.fit.planner import YARN_CONTEXT
    from qwenfit.report.json import SCHEMA_ID, alternative_json, artifact_json, estimate_json, machine_json

    spec = load_model(args.model)
    family = stored_family(spec)
    engine = get(args.engine or {"safetensors": "vllm", "mlx": "mlx"}.get(family or "", "llama.cpp"))
    quant = None if args.quant is None else engine_quant(args.quant, engine)
    machine = machine_of(args, [engine.name]) or detect_machine(args)
    native = spec.text.max_position_embeddings
    context = args.context or native
    if context > YARN_CONTEXT:
        raise UsageError(
            f"--context {context:,} is beyond {spec.name}'s limit of {YARN_CONTEXT:,} tokens "
            f"(native {native:,}, more with YaRN rope scaling)"
        )
    options: dict[str, Any] = {}
    known = engine.option_help()
    for flag, name, value in (
        ("--n-cpu-moe", "n_cpu_moe", args.n_cpu_moe or None),
        ("--ngl", "n_gpu_layers", args.ngl),
        ("--ts", "tensor_split", args.ts),
        ("--tp", "tp", args.tp),
    ):
        if value is None:
            continue
        if name not in known:
            raise UsageError(
                f"{flag}: {engine.name} has no such setting (its options: {', '.join(known) or 'none'})"
            )
        options[name] = value
    if "tp" in known and "tp" not in options:
        options["tp"] = machine.n_devices if machine.n_devices > 1 else 1
    if not machine.devices and machine.ram_bytes is None:
        raise UsageError(f"no memory budget to check against on {machine.name}: give --ram GB")
    result = check_result(
        spec,
        quant,
        context=context,
        engine=engine.name,
        kv_cache=args.kv_cache,
        sequences=args.sequences,
        hardware=machine,
        vision=args.vision or None,
        mtp=args.mtp,
        **options,
    )
    e = result.estimate
    if context > native:
        import dataclasses

        note = f"{context:,} tokens is beyond the native {native:,}: it needs YaRN rope scaling (model card)"
        e = dataclasses.replace(e, notes=(*e.notes, note))
    alternatives = [alternative_json(a) for a in result.alternatives]
    if args.json:
        emit_json(
            {
                "schema": SCHEMA_ID,
                "kind": "check",
                **estimate_json(e),
                "context": context,
                "sequences": args.sequences,
                "machine": machine_json(machine),
                "command": result.command,
                "artifact": artifact_json(result.artifact),
                "alternatives": alternatives,
            }
        )
    else:
        from qwenfit.core.fit.text import artifact_line  # the text's alone (--json does not load it)

        loads = artifact_line(result.artifact) if result.artifact is not None else ""
        emit(format_check(e, machine, context, args.sequences, result.command, alternatives, loads))
    return EXIT_OK if e.fits else EXIT_DOES_NOT_FIT


def format_check(
    e: Estimate,
    machine: Machine,
    context: int,
    sequences: int,
    command: str,
    alternatives: Sequence[dict[str, Any]],
    loads: str = "",
) -> str:
    from qwenfit.cli.check_launch import terms_table

    color = output.use_color(sys.stdout)
    style = Style(color)
    seqs = f" x {sequences} sequences" if sequences > 1 else ", 1 sequence"
    lines = [
        f"{e.model} {e.quant} on {e.engine}: {context:,} tokens{seqs}",
        f"machine: {describe_machine(machine)}",
        "",
        terms_table(e),
        f"total {gb_text(e.total_bytes)}",
        "",
        *memory_bars(e, color=color),
        "",
    ]
    budget, used = dict(e.budget or {}), e.used_by_budget
    if e.fits:
        device = min(budget, key=lambda d: budget[d] - used[d])
        lines.append(
            style("fits", "1;32")
            + f": {gb_text(budget[device] - used[device])} free on {device}"
            + (" (the fullest device)" if len(budget) > 1 else "")
        )
        if loads:
            lines.append(f"loads: {loads}")
        lines.append(f"command: {indent_command(command)}")
    else:
        worst = max(budget, key=lambda d: used[d] - budget[d])
        lines.append(
            style("DOES NOT FIT", "1;31") + f": short by {gb_text(e.shortfall_bytes)} on {worst} "
            f"({gb_text(used[worst])} needed, {gb_text(budget[worst])} available)"
        )
        if alternatives:
            lines += ["", "nearest options that fit:"]
            for a in alternatives:
                band = a.get("speed_band") or {}
                rng = f" ({band['decode_low']:.0f}-{band['decode_high']:.0f})" if band else ""
                speed = f", ~{a['decode_tokens_per_s']:.0f} tok/s{rng}" if a["decode_tokens_per_s"] else ""
                where = "" if a["kind"] in ("context", "sequences") else f", {a['context']:,} tokens"
                lines.append(f"  - {_LABELS[a['kind']]}: {a['description']}{where}{speed}")
                lines.append(f"      {indent_command(a['command'], 6)}")
        else:
            lines.append("nothing nearby fits: try a smaller model ('qwenfit plan --gpu ...' ranks them)")
    lines += [f"note: {n}" for n in e.notes]
    return "\n".join(lines)
