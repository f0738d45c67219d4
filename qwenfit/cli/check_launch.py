"""``qwenfit check [hardware flags] [--json] -- COMMAND``: pre-flight of an engine's own launch command
(also what ``qwenfit run`` and ``qwenfit mcp`` use).

The words after ``--`` are the command as it would run (an argv); one word holding spaces or
newlines is a shell command or script; one word naming a file is that file (a Modelfile, a llama-swap
``config.yaml``, a compose file, a script). The command is read with this process's environment
(``LLAMA_ARG_*``, ``OLLAMA_*``, ``CUDA_VISIBLE_DEVICES``), as it would start with it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from qwenfit.cli import output
from qwenfit.cli.args import EXIT_DOES_NOT_FIT, EXIT_OK, detect_machine, machine_of
from qwenfit.cli.output import (
    Style,
    describe_machine,
    device_key,
    emit,
    emit_json,
    gb_text,
    indent_command,
    memory_bars,
)
from qwenfit.errors import UsageError

if TYPE_CHECKING:
    from qwenfit.api.commands import CommandCheck
    from qwenfit.core.hardware import Machine
    from qwenfit.core.terms import Estimate

__all__ = ["check_launch_json", "checks_of", "format_launch", "read_launch", "run_launch", "terms_table"]

_MODEL_FLAGS = ("quant", "engine", "context", "kv_cache", "ngl", "ts", "tp")


def read_launch(words: Sequence[str]) -> tuple[str | list[str], str | None]:
    """(what :func:`qwenfit.cmdline.parse_command` takes, the directory relative paths are read in)."""
    if not words:
        raise UsageError("no command after --: give the engine's command (qwenfit check -- llama-server ...)")
    if len(words) == 1:
        word = words[0]
        if os.path.isfile(word) and not os.access(word, os.X_OK):
            with open(word, encoding="utf-8") as f:
                return f.read(), os.path.dirname(os.path.abspath(word))
        if any(c in word for c in " \n\t"):
            return word, None
    return list(words), None


def checks_of(args: argparse.Namespace) -> tuple[list[CommandCheck], Machine]:
    """Read the command after ``--`` and check each launch on the machine the flags describe (or this
    machine)."""
    from qwenfit.api.commands import check_parsed
    from qwenfit.cmdline import parse_command

    given = [f"--{k.replace('_', '-')}" for k in _MODEL_FLAGS if getattr(args, k, None) not in (None, 0)]
    if getattr(args, "model", None):
        given.insert(0, args.model)
    if given:
        raise UsageError(
            f"{' '.join(given)}: with a command after --, the command's own flags say the model and its "
            "settings; give only hardware flags before --"
        )
    cmd, cwd = read_launch(args.launch)
    env = dict(os.environ)
    parsed = parse_command(cmd, env=env, cwd=cwd)
    machine = machine_of(args, [pc.engine for pc in parsed]) or detect_machine(args)
    if not machine.devices and machine.ram_bytes is None:
        raise UsageError(f"no memory budget to check against on {machine.name}: give --ram GB")
    return [check_parsed(pc, {"hardware": machine}, cwd=cwd, env=env) for pc in parsed], machine


def _settings_json(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()}


def launch_json(c: CommandCheck) -> dict[str, Any]:
    """One launch's verdict as the ``check-command`` output lists it."""
    from qwenfit.core.expr import as_int
    from qwenfit.report.json import alternative_json, artifact_json, estimate_json

    r = c.result
    return {
        **estimate_json(r.estimate),
        "tool": c.parsed.tool,
        "read": c.command,
        "model_from": c.model_from,
        "context": c.context,
        "sequences": c.sequences,
        "ignored": list(c.parsed.ignored),
        "read_notes": list(c.notes),
        "qwenfit_command": r.command,
        "artifact": artifact_json(r.artifact),
        "fixes": [
            {
                "kind": f.kind,
                "description": f.description,
                "settings": _settings_json(f.settings),
                "command": f.command,
                "memory_by_device": {k: as_int(v) for k, v in f.estimate.used_by_budget.items()},
            }
            for f in c.fixes
        ],
        "alternatives": [alternative_json(a) for a in r.alternatives],
    }


def check_launch_json(checks: Sequence[CommandCheck], machine: Machine) -> dict[str, Any]:
    """``qwenfit check --json -- COMMAND``: every launch of the command, one verdict each."""
    from qwenfit.report.json import SCHEMA_ID, machine_json

    return {
        "schema": SCHEMA_ID,
        "kind": "check-command",
        "fits": all(c.fits for c in checks),
        "machine": machine_json(machine),
        "launches": [launch_json(c) for c in checks],
    }


def terms_table(e: Estimate) -> str:
    """The estimate's terms, grouped by device in the order the memory bars show them."""
    from qwenfit.core.fit.text import terms_table as table_of

    return table_of(sorted(e.terms, key=lambda t: device_key(t.device)))


def format_launch(c: CommandCheck, machine: Machine, *, color: bool = False) -> str:
    """One launch's verdict as text: what was read, the terms and bars, fits or the edits that fit."""
    style = Style(color)
    e = c.estimate
    seqs = f" x {c.sequences} sequences" if c.sequences > 1 else ", 1 sequence"
    lines = [
        f"{c.parsed.tool}: {e.model} {e.quant} on {e.engine}: {c.context:,} tokens{seqs} "
        f"(model from the {c.model_from})",
        f"machine: {describe_machine(machine)}",
    ]
    if c.parsed.ignored:
        lines.append(f"no memory effect, ignored: {' '.join(c.parsed.ignored)}")
    lines += ["", terms_table(e), f"total {gb_text(e.total_bytes)}", "", *memory_bars(e, color=color), ""]
    budget, used = dict(e.budget or {}), e.used_by_budget
    if c.fits:
        device = min(budget, key=lambda d: budget[d] - used[d])
        lines.append(style("fits", "1;32") + f": {gb_text(budget[device] - used[device])} free on {device}"
                     + (" (the fullest device)" if len(budget) > 1 else ""))  # fmt: skip
    else:
        worst = max(budget, key=lambda d: used[d] - budget[d])
        lines.append(
            style("DOES NOT FIT", "1;31") + f": short by {gb_text(e.shortfall_bytes)} on {worst} "
            f"({gb_text(used[worst])} needed, {gb_text(budget[worst])} available)"
        )
        if c.fixes:
            lines += ["", "edits to this command that fit (each re-checked):"]
            for f in c.fixes:
                lines.append(f"  - {f.description}")
                lines.append(f"      {indent_command(f.command, 6)}")
        others = [a for a in c.result.alternatives if a.kind in ("quant", "placement")]
        if others:
            lines += ["", "other options that fit (qwenfit's commands):"]
            for a in others:
                lines.append(f"  - {a.description}, {a.context:,} tokens")
                lines.append(f"      {indent_command(a.command, 6)}")
        if not c.fixes and not others:
            lines.append("nothing nearby fits: try a smaller model ('qwenfit plan --gpu ...' ranks them)")
    lines += [f"read: {n}" for n in c.notes if n]
    lines += [f"note: {n}" for n in e.notes]
    return "\n".join(lines)


def run_launch(args: argparse.Namespace) -> int:
    checks, machine = checks_of(args)
    if args.json:
        emit_json(check_launch_json(checks, machine))
    else:
        color = output.use_color(sys.stdout)
        emit("\n\n".join(format_launch(c, machine, color=color) for c in checks))
    return EXIT_OK if all(c.fits for c in checks) else EXIT_DOES_NOT_FIT
