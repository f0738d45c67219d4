"""``qwenfit run [hardware flags] [--force] -- COMMAND``: check an engine's launch command, then start it
unchanged (``os.execvp``: the engine replaces qwenfit, with the same environment, PID and signals).

Exit 1 without starting it when it does not fit, 2 when it cannot be read or sets memory in a way
qwenfit does not model; ``--force`` starts it anyway (the verdict still goes to stderr). The verdict
is written on stderr, so the engine's own output is all that goes to stdout. A command given as one
word with spaces runs through ``/bin/sh -c``, as a shell line would.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any

from qwenfit.cli.args import EXIT_DOES_NOT_FIT, EXIT_USAGE, add_hardware
from qwenfit.errors import QwenfitError, UsageError

__all__ = ["add", "run"]

EXIT_NOT_STARTED = 127  # the program could not be started (the shell's code for "command not found")


def add(sub: Any, schema_id: str) -> None:
    p = sub.add_parser(
        "run",
        help="check an engine's command, then start it if it fits",
        description=__doc__,
        usage="qwenfit run [hardware flags] [--force] [--quiet] -- COMMAND ...",
    )
    add_hardware(p)
    p.add_argument("--force", action="store_true", help="start the command even when it does not fit")
    p.add_argument("--quiet", action="store_true", help="write nothing when it fits")
    p.set_defaults(func=run, launch=None, json=False)


def _argv(words: list[str]) -> list[str]:
    if len(words) == 1 and any(c in words[0] for c in " \n\t"):
        return ["/bin/sh", "-c", words[0]]
    return list(words)


def run(args: argparse.Namespace) -> int:
    """Check, then exec."""
    from qwenfit.cli.check_launch import checks_of, format_launch, read_launch

    if args.launch is None:
        raise UsageError("give the command to run after --: qwenfit run --vram 24 -- llama-server ...")
    cmd, _ = read_launch(args.launch)
    if not isinstance(cmd, list) and not any(c in args.launch[0] for c in " \n\t"):
        raise UsageError(f"{args.launch[0]} is a file, not a command: qwenfit run starts a command")
    fits = True
    try:
        checks, machine = checks_of(args)
    except QwenfitError as exc:
        if not args.force:
            raise
        print(f"qwenfit run: not checked ({' '.join(str(exc).split())}); starting it anyway (--force)",
              file=sys.stderr)  # fmt: skip
    else:
        fits = all(c.fits for c in checks)
        if not (fits and args.quiet):
            print("\n\n".join(format_launch(c, machine) for c in checks), file=sys.stderr)
    if not fits and not args.force:
        print("qwenfit run: does not fit; not started (--force starts it anyway)", file=sys.stderr)
        return EXIT_DOES_NOT_FIT
    argv = _argv(args.launch)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        with contextlib.suppress(Exception):
            print(f"qwenfit run: cannot start {argv[0]}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_NOT_STARTED if isinstance(exc, FileNotFoundError) else EXIT_USAGE
    return EXIT_USAGE  # not reached: execvp does not return
