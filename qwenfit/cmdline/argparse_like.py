"""Python's ``argparse`` as vLLM, SGLang and mlx-lm use it, reproduced over an option table.

What it reproduces: long-option abbreviations (``allow_abbrev``: ``--speculative-algo`` is
``--speculative-algorithm`` when no other option starts so), ``--flag=value``, a short option with
its value attached (``-tp2``), values that look like negative numbers, ``nargs`` 0/1/?/+/*, boolean
pairs (``--x``/``--no-x``; vLLM's ``--enable-x``/``--disable-x``), "last one wins" for stored values,
and argparse's own error messages (``unrecognized arguments``, ``expected one argument``,
``ambiguous option``, ``ignored explicit argument``), raised as :class:`~qwenfit.errors.UsageError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qwenfit.errors import UsageError

__all__ = ["Action", "Occurrence", "Parsed", "parse_args"]

_NEGATIVE = re.compile(r"^-\d+$|^-\d*\.\d+$")


@dataclass(frozen=True)
class Action:
    """One option: ``dest``, its option strings, those that store False (``neg``), and ``nargs``:
    "0" (a flag), "1" (one value), "?", "+", "*"; ``const`` is what a flag stores (True)."""

    dest: str
    flags: tuple[str, ...]
    nargs: str = "1"
    neg: tuple[str, ...] = ()
    const: Any = True


@dataclass(frozen=True)
class Occurrence:
    """Where an option was given: ``argv[start:end]`` is the option and its values."""

    dest: str
    option: str
    start: int
    end: int
    value: Any


@dataclass
class Parsed:
    values: dict[str, Any] = field(default_factory=dict)
    occurrences: list[Occurrence] = field(default_factory=list)
    positionals: list[tuple[int, str]] = field(default_factory=list)

    def given(self, dest: str) -> bool:
        return dest in self.values


def _lookup(
    arg: str, table: dict[str, Action], longs: Sequence[str], allow_abbrev: bool
) -> tuple[Action, str, str | None] | None:
    """(action, option string, explicit value) for an option-looking ``arg``, or None."""
    if arg in table:
        return table[arg], arg, None
    if "=" in arg:
        head, value = arg.split("=", 1)
        if head in table:
            return table[head], head, value
    if arg.startswith("--"):
        if not allow_abbrev:
            return None
        head, _, value = arg.partition("=")
        hits = sorted({o for o in longs if o.startswith(head)})
        if len(hits) > 1:
            raise UsageError(f"ambiguous option: {head} could match {', '.join(hits)}")
        if hits:
            return table[hits[0]], hits[0], (value if "=" in arg else None)
        return None
    if len(arg) > 2 and arg[:2] in table and table[arg[:2]].nargs != "0":
        return table[arg[:2]], arg[:2], arg[2:]  # -q fp8 written -qfp8
    return None


def _is_option(arg: str) -> bool:
    return arg.startswith("-") and arg != "-" and not _NEGATIVE.match(arg) and " " not in arg


def parse_args(
    argv: Sequence[str],
    actions: Sequence[Action],
    *,
    prog: str,
    positionals: int = 0,
    allow_abbrev: bool = True,
) -> Parsed:
    """``argv`` parsed over ``actions``; ``positionals``: how many positional arguments it takes."""
    table: dict[str, Action] = {}
    for a in actions:
        for o in (*a.flags, *a.neg):
            table[o] = a
    longs = [o for o in table if o.startswith("--")]
    out = Parsed()
    extras: list[str] = []
    i, n = 0, len(argv)
    only_positional = False
    while i < n:
        arg = argv[i]
        if only_positional or not _is_option(arg):
            if arg == "--" and not only_positional:
                only_positional = True
            elif len(out.positionals) < positionals:
                out.positionals.append((i, arg))
            else:
                extras.append(arg)
            i += 1
            continue
        found = _lookup(arg, table, longs, allow_abbrev)
        if found is None:
            extras.append(arg)
            i += 1
            continue
        action, option, explicit = found
        shown = "/".join(action.flags[:2]) if action.flags else option
        start = i
        i += 1
        value: Any
        if action.nargs == "0":
            if explicit is not None:
                raise UsageError(f"{prog}: argument {shown}: ignored explicit argument {explicit!r}")
            value = action.const if option not in action.neg else (not action.const)
        elif explicit is not None:
            value = explicit if action.nargs in ("1", "?") else [explicit]
        elif action.nargs in ("1", "?"):
            if i < n and not _is_option(argv[i]):
                value = argv[i]
                i += 1
            elif action.nargs == "?":
                value = action.const
            else:
                raise UsageError(f"{prog}: argument {shown}: expected one argument")
        else:
            items = []
            while i < n and not _is_option(argv[i]):
                items.append(argv[i])
                i += 1
            if action.nargs == "+" and not items:
                raise UsageError(f"{prog}: argument {shown}: expected at least one argument")
            value = items
        out.values[action.dest] = value
        out.occurrences.append(Occurrence(action.dest, option, start, i, value))
    if extras:
        raise UsageError(f"{prog}: unrecognized arguments: {' '.join(extras)}")
    return out
