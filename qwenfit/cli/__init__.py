"""The ``qwenfit`` command: which Qwen3.5 model and quantization fits this hardware, from a shell.

Subcommands (one module each)::

    qwenfit plan [MODEL ...]   ranked options for a machine (detected when no hardware flag is given)
    qwenfit check MODEL --quant Q ...   pre-flight of one configuration
    qwenfit check [hardware] -- COMMAND  pre-flight of an engine's own launch command
    qwenfit run [hardware] -- COMMAND    check it, then start it (exec) if it fits
    qwenfit mcp                a Model Context Protocol server over stdio (plan, check, check_command)
    qwenfit need MODEL         the smallest catalog machines that run a model (reverse planning)
    qwenfit inspect MODEL      a model by component, role and quantization
    qwenfit quants MODEL       every quantization of a model: bytes, bits per weight, quality
    qwenfit models             the catalog's exact parameter counts
    qwenfit artifacts [MODEL]  what is published for each model (repos, files, sizes); --refresh
    qwenfit hardware list|show NAME|detect
    qwenfit export [-o FILE]   the docs calculator's JSON

Exit codes: 0 success (``check``: it fits), 1 ``check``: it does not fit, 2 bad input or usage (one
line on stderr, no traceback), 3 an internal error (one line; ``QWENFIT_DEBUG=1`` shows the
traceback). ``--json`` prints one object of the schema in :mod:`qwenfit.report.schema`
(``data/schema/qwenfit-output-v2.schema.json``), built by :mod:`qwenfit.report.json` from plain
dicts so that ``qwenfit check --json`` never imports pydantic.

Context is tokens per sequence everywhere in the command (``--context 32768 --sequences 4`` is four
sequences of 32,768 tokens: llama.cpp's ``-c 131072 -np 4``). Sizes are decimal GB (1e9 bytes).
Colour only when stdout is a terminal and ``NO_COLOR`` is unset or empty (https://no-color.org).

Startup matters (other tools call ``qwenfit check`` before every launch): every import below the
module level is deferred to the subcommand that needs it.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
from collections.abc import Sequence

from qwenfit.cli.args import (
    EXIT_DOES_NOT_FIT,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    error_kind,
    one_line,
    print_json_error,
)
from qwenfit.cli.output import memory_bars
from qwenfit.errors import QwenfitError, UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (--help stays light)
if TYPE_CHECKING:
    from typing import Any


__all__ = [
    "EXIT_DOES_NOT_FIT",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_USAGE",
    "SCHEMA_ID",
    "UsageError",
    "build_parser",
    "main",
    "memory_bars",
]

COMMANDS = (
    "plan",
    "check",
    "need",
    "inspect",
    "quants",
    "models",
    "artifacts",
    "hardware",
    "export",
    "calibrate",
    "run",
    "mcp",
)
LAUNCHERS = ("check", "run")  # commands whose words after "--" are an engine's command line, kept verbatim

# What ``qwenfit --help`` lists: each command's one-line help, as its module's add() gives it (a test keeps
# them equal), so that ``qwenfit``, ``qwenfit --help`` and ``qwenfit nonsense`` import no command module.
COMMAND_HELP = {
    "plan": "ranked options for a machine",
    "check": "pre-flight one configuration or an engine's own command (exit 0 fits, 1 not)",
    "need": "the smallest catalog machines that run a model (reverse planning)",
    "inspect": "one model by component, role and quantization",
    "quants": "every quantization of a model: bytes, bits per weight, quality",
    "models": "exact parameter counts of every catalog model",
    "artifacts": "what is published for each model: repos, GGUF files and sizes, Ollama tags",
    "hardware": "the hardware catalog and this machine",
    "export": "the docs calculator's JSON",
    "calibrate": (
        "measure this machine with a small model (llama-bench / mlx_lm) and keep its speed constants"
    ),
    "run": "check an engine's command, then start it if it fits",
    "mcp": "a Model Context Protocol server over stdio (tools: check_command, check, plan, estimate)",
}


def __getattr__(name: str) -> Any:
    if name == "SCHEMA_ID":  # re-exported on first use: report.json is not needed by --help
        from qwenfit.report.json import SCHEMA_ID

        return SCHEMA_ID
    raise AttributeError(f"module 'qwenfit.cli' has no attribute {name!r}")


def _top_parser() -> Parser:
    """The parser and its subcommands' names and help alone: what runs when no command is given."""
    parser = _root()
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub.add_parser(command, help=COMMAND_HELP[command])
    return parser


def _root() -> Parser:
    from qwenfit import __version__

    parser = Parser(
        prog="qwenfit",
        description="Which Qwen3.5 model, in which quantization, fits this hardware: with how much "
        "context, on which engine, how fast, and the command to launch it.",
        epilog="exit codes: 0 ok / fits, 1 does not fit (check), 2 bad input or usage, "
        "3 internal error (please report it)",
    )
    parser.add_argument("--version", action="version", version=f"qwenfit {__version__}")
    return parser


def build_parser(only: str | None = None) -> Parser:
    """The parser of every subcommand, or of ``only`` that one (what ``main`` runs: it starts faster)."""
    from qwenfit.report.json import SCHEMA_ID

    parser = _root()
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS if only is None else [only]:  # one module per command
        importlib.import_module(f"qwenfit.cli.{command}").add(sub, SCHEMA_ID)
    return parser


SERVERS = ("mcp",)  # commands that keep running: the cyclic garbage collector stays on for them


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (the console script passes it to ``sys.exit``).

    A command other than a server runs with Python's cyclic garbage collector off: it lives for a
    fraction of a second, and the collector's passes over the tens of thousands of objects that
    importing and answering create (a ``qwenfit check`` made ~60 of them and freed ~200 objects)
    cost about a tenth of its time. Reference counting still frees everything else; the collector
    is switched back on when the command returns."""
    collecting = gc.isenabled()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not (argv and argv[0] in SERVERS):
        gc.disable()
    try:
        return _main(argv)
    finally:
        if collecting:
            gc.enable()


def _main(argv: list[str]) -> int:
    as_json = "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv
    Parser.json_errors = as_json
    parser = build_parser(argv[0]) if argv and argv[0] in COMMANDS else _top_parser()
    launch = None
    if argv and argv[0] in LAUNCHERS and "--" in argv:  # argparse would drop a "--" inside the command
        launch, argv = argv[argv.index("--") + 1 :], argv[: argv.index("--")]
    try:
        args = parser.parse_args(argv)
        if launch is not None:
            args.launch = launch
    except SystemExit as exc:  # --help, --version, usage errors (already printed, one line)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    finally:
        Parser.json_errors = False
    prog = f"qwenfit {args.command}" + (f" {args.action}" if getattr(args, "action", None) else "")
    from qwenfit.cli import dataclass_code

    dataclass_code.install()  # the classes' methods compiled by an earlier run
    try:
        return int(args.func(args))
    except QwenfitError as exc:
        message = one_line(exc)
        if as_json:
            print_json_error(error_kind(exc), message, getattr(exc, "suggestions", None) or ())
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `qwenfit plan | head`: stop quietly
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("QWENFIT_DEBUG"):
            raise
        message = f"{type(exc).__name__}: {one_line(exc)}"
        if as_json:
            print_json_error("internal", message)
        print(
            f"{prog}: internal error: {message} (QWENFIT_DEBUG=1 shows the traceback; please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        dataclass_code.save()


if __name__ == "__main__":
    sys.exit(main())
