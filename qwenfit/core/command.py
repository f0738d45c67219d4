"""Launch commands as data: one builder, rendered by Python and, traced, by the docs calculator.

An engine writes its launch command once (``Engine.command``) with :class:`Cmd`. Called with ints
it renders the line ``plan()`` and ``qwenfit check`` print; called with formula variables
(:mod:`qwenfit.core.expr`) for the context, sequences and offload, and :class:`Text` placeholders
for the artifact names, the same code records a template that :mod:`qwenfit.export` writes and
the page renders (docs/javascripts/qwenfit-calc.mjs, ``renderCommand``), so the calculator's
command cannot drift from the CLI's.

JSON form (``to_json``): a list of groups, each ``"\\n"`` (a line break) or ``[when, *tokens]``:
``when`` is 1 or a formula (the group is shown when it is not 0); a token is a string, or
``["num", formula]`` (a decimal integer), ``["text", name]`` (a string from the environment) or
``["cat", *tokens]`` (tokens written together).
Groups are joined by one space, except at the start of a line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qwenfit.core.expr import Expr, evaluate, to_json

__all__ = ["Cat", "Cmd", "Text", "render_json"]


class Text:
    """A string chosen at run time (an artifact's repo or file name in the calculator)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Text({self.name!r})"


class Cat:
    """Tokens written with no space between them (``OLLAMA_NUM_PARALLEL=`` + a number)."""

    __slots__ = ("parts",)

    def __init__(self, *parts: Any) -> None:
        self.parts = parts


def _concrete(x: Any) -> bool:
    if isinstance(x, Cat):
        return all(_concrete(p) for p in x.parts)
    return not isinstance(x, (Expr, Text))


class Cmd:
    """A command line being built: ``add(*tokens, when=...)`` appends a group of words."""

    __slots__ = ("groups",)

    def __init__(self) -> None:
        self.groups: list[Any] = []  # "\n" or (when, tokens)

    def add(self, *tokens: Any, when: Any = True) -> Cmd:
        """Append ``tokens`` (strings, ints, formulas, :class:`Text`) as one group, shown when
        ``when`` holds (a bool, an int, or a formula)."""
        if isinstance(when, Expr):
            self.groups.append((when, tokens))
        elif when:
            self.groups.append((1, tokens))
        return self

    def line(self) -> Cmd:
        """A line break (Ollama's Modelfile + commands)."""
        self.groups.append("\n")
        return self

    @property
    def concrete(self) -> bool:
        return all(g == "\n" or (_concrete(g[0]) and all(_concrete(t) for t in g[1])) for g in self.groups)

    def render(self, env: Mapping[str, Any] | None = None) -> str:
        """The command as text; ``env`` gives the variables of a traced command."""
        return (
            render_json(self.to_json(), env or {})
            if not self.concrete
            else _join([g if g == "\n" else " ".join(_token(t, {}) for t in g[1]) for g in self.groups])
        )

    def __str__(self) -> str:
        return self.render()

    def to_json(self) -> list[Any]:
        out: list[Any] = []
        for g in self.groups:
            if g == "\n":
                out.append("\n")
                continue
            when, tokens = g
            out.append([to_json(when) if isinstance(when, Expr) else 1, *(_token_json(t) for t in tokens)])
        return out


def _token(t: Any, env: Mapping[str, Any]) -> str:
    if isinstance(t, str):
        return t
    if isinstance(t, Cat):
        return "".join(_token(p, env) for p in t.parts)
    if isinstance(t, Text):
        return str(env[t.name])
    if isinstance(t, Expr):
        return str(evaluate(t, env))
    if isinstance(t, float):
        return f"{t:g}"
    return str(t)


def _token_json(t: Any) -> Any:
    if isinstance(t, str):
        return t
    if isinstance(t, Cat):
        return ["cat", *(_token_json(p) for p in t.parts)]
    if isinstance(t, Text):
        return ["text", t.name]
    if isinstance(t, Expr):
        return ["num", to_json(t)]
    if isinstance(t, int):
        return str(t)
    if isinstance(t, float):
        return f"{t:g}"
    raise TypeError(f"command token {t!r}")


def _join(parts: list[str]) -> str:
    out = ""
    for s in parts:
        if s == "\n":
            out += "\n"
        elif s:
            out += s if out == "" or out.endswith("\n") else " " + s
    return out


def render_json(groups: list[Any], env: Mapping[str, Any]) -> str:
    """A command from its JSON form (what the calculator page does, in Python)."""
    parts: list[str] = []
    for g in groups:
        if g == "\n":
            parts.append("\n")
            continue
        when, *tokens = g
        if when != 1 and not evaluate(when, env):
            continue
        parts.append(" ".join(_render_token(t, env) for t in tokens))
    return _join(parts)


def _render_token(t: Any, env: Mapping[str, Any]) -> str:
    if isinstance(t, str):
        return t
    if t[0] == "text":
        return str(env[t[1]])
    if t[0] == "cat":
        return "".join(_render_token(p, env) for p in t[1:])
    return str(evaluate(t[1], env))
