"""Integer expressions: one formula, evaluated in Python and exported for the docs calculator.

The memory formulas that depend on what a user picks at run time (context, sequences, offload) are
written once, with ordinary Python operators and the helpers below (:func:`smax`, :func:`smin`,
:func:`where`, :func:`le`, :func:`lt`, :func:`at`). Called with ``int`` arguments they are plain
integer arithmetic (what ``estimate()`` does); called with :class:`Var` arguments they record the
formula as a tree, which :mod:`qwenfit.export` serialises and the calculator's JS evaluator
(``docs/javascripts/qwenfit-calc.mjs``) computes. The same tree is evaluated by :func:`evaluate`, so
the page and Python cannot disagree.

JSON form (``to_json``): an integer is a JSON number (all bytes stay below 2**53); a node is a list
``[op, *args]``:

    ["var", name]            the value of a variable (an int, or a list of ints for "at")
    ["+", a, b, ...]  ["-", a, b]  ["*", a, b, ...]
    ["//", a, b]             floor division (Python semantics; b > 0 in every formula here)
    ["max", a, b, ...]  ["min", a, b, ...]
    ["<=", a, b]  ["<", a, b]        1 if true else 0
    ["if", c, a, b]          a if c != 0 else b
    ["at", table, i]         table[i]; table is ["var", name] (a list) or a literal list of ints
    ["/", a, b]              true division (float), only in speed formulas
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "Expr", "Num", "Var", "as_int", "at", "compile_source", "evaluate", "evaluate_shared", "le", "lt",
    "smax", "smin", "to_json", "to_json_shared", "where",
]  # fmt: skip


class Expr:
    """A node of an integer formula; build it with operators on :class:`Var`."""

    __slots__ = ("args", "op")

    def __init__(self, op: str, *args: Any) -> None:
        self.op = op
        self.args = args

    # arithmetic -----------------------------------------------------------------------------------
    def __add__(self, o: Any) -> Expr:
        return _node("+", self, o)

    def __radd__(self, o: Any) -> Expr:
        return _node("+", o, self)

    def __sub__(self, o: Any) -> Expr:
        return _node("-", self, o)

    def __rsub__(self, o: Any) -> Expr:
        return _node("-", o, self)

    def __mul__(self, o: Any) -> Expr:
        return _node("*", self, o)

    def __rmul__(self, o: Any) -> Expr:
        return _node("*", o, self)

    def __floordiv__(self, o: Any) -> Expr:
        return _node("//", self, o)

    def __rfloordiv__(self, o: Any) -> Expr:
        return _node("//", o, self)

    def __truediv__(self, o: Any) -> Expr:
        return _node("/", self, o)

    def __rtruediv__(self, o: Any) -> Expr:
        return _node("/", o, self)

    def __neg__(self) -> Expr:
        return _node("-", 0, self)

    def __bool__(self) -> bool:
        raise TypeError("a symbolic formula has no truth value: use where()/le()/lt() instead of if/<")

    def __format__(self, spec: str) -> str:
        return str(self)

    def __repr__(self) -> str:
        if self.op == "var":
            return str(self.args[0])
        return "(" + f" {self.op} ".join(repr(a) for a in self.args) + ")"

    __str__ = __repr__


# an int or a formula (after Expr: a forward reference would compile its name at import, ~1 ms)
Num = int | Expr


class Var(Expr):
    """A named input: ``Var("ctx")``."""

    __slots__ = ()

    def __init__(self, name: str) -> None:
        super().__init__("var", name)


def _node(op: str, *args: Any) -> Expr:
    for a in args:
        if not isinstance(a, (int, Expr, list, tuple)) or isinstance(a, bool):
            raise TypeError(f"formula operand {a!r} ({type(a).__name__}) is not an int or an Expr")
    # fold neutral elements so traced trees stay small
    if op == "+":
        args = tuple(a for a in args if not (isinstance(a, int) and a == 0)) or (0,)
        if len(args) == 1:
            return args[0] if isinstance(args[0], Expr) else Expr("+", args[0], 0)
    if op == "*" and any(isinstance(a, int) and a == 1 for a in args):
        rest = tuple(a for a in args if not (isinstance(a, int) and a == 1))
        if len(rest) == 1 and isinstance(rest[0], Expr):
            return rest[0]
    return Expr(op, *args)


def as_int(x: Num) -> int:
    """``x`` as an int (a traced formula is an error here: evaluate it first)."""
    if isinstance(x, Expr):
        raise TypeError(f"a formula is not bytes: {x}")
    return x


def _symbolic(*xs: Any) -> bool:
    return any(isinstance(x, Expr) for x in xs)


def smax(*xs: Num) -> Num:
    """max() that also builds a formula."""
    if _symbolic(*xs):
        consts = [x for x in xs if not isinstance(x, Expr)]
        rest = [x for x in xs if isinstance(x, Expr)]
        return Expr("max", *rest, *([max(consts)] if consts else []))
    return max(xs)  # type: ignore[type-var]


def smin(*xs: Num) -> Num:
    """min() that also builds a formula."""
    if _symbolic(*xs):
        consts = [x for x in xs if not isinstance(x, Expr)]
        rest = [x for x in xs if isinstance(x, Expr)]
        return Expr("min", *rest, *([min(consts)] if consts else []))
    return min(xs)  # type: ignore[type-var]


def le(a: Num, b: Num) -> Num:
    """1 if a <= b else 0."""
    return Expr("<=", a, b) if _symbolic(a, b) else int(a <= b)  # type: ignore[operator]


def lt(a: Num, b: Num) -> Num:
    """1 if a < b else 0."""
    return Expr("<", a, b) if _symbolic(a, b) else int(a < b)  # type: ignore[operator]


def where(cond: Num, a: Num, b: Num) -> Num:
    """``a if cond else b`` that also builds a formula."""
    if isinstance(cond, Expr):
        return Expr("if", cond, a, b)
    return a if cond else b


def at(table: Sequence[int] | Expr, i: Num) -> Num:
    """``table[i]``: a lookup in a list of ints (e.g. cumulative bytes of the first i layers)."""
    if isinstance(i, Expr) or isinstance(table, Expr):
        return Expr("at", table if isinstance(table, Expr) else list(table), i)
    return table[i]


# evaluation and serialisation -------------------------------------------------------------------


def evaluate(e: Any, env: Mapping[str, Any]) -> Any:
    """The value of formula ``e`` (Expr, JSON list form, or int) with variables from ``env``."""
    if isinstance(e, bool):
        raise TypeError("booleans are not formula values")
    if isinstance(e, (int, float)):
        return e
    if isinstance(e, Expr):
        op, args = e.op, e.args
    elif isinstance(e, list) and e and isinstance(e[0], str):
        op, args = e[0], tuple(e[1:])
    else:
        raise TypeError(f"not a formula: {e!r}")
    if op == "var":
        try:
            return env[args[0]]
        except KeyError:
            raise KeyError(f"formula variable {args[0]!r} has no value") from None
    if op == "at":
        table = args[0]
        symbolic = isinstance(table, Expr) or (bool(table) and isinstance(table[0], str))
        rows = evaluate(table, env) if symbolic else table
        return rows[evaluate(args[1], env)]
    if op == "if":
        return evaluate(args[1], env) if evaluate(args[0], env) else evaluate(args[2], env)
    v = [evaluate(a, env) for a in args]
    if op == "+":
        out_sum = 0
        for x in v:  # 0 + left to right, like the page's JS (sum() compensates floats from 3.12)
            out_sum = out_sum + x
        return out_sum
    if op == "-":
        return v[0] - v[1]
    if op == "*":
        out = 1
        for x in v:
            out *= x
        return out
    if op == "//":
        return v[0] // v[1]
    if op == "/":
        return v[0] / v[1]
    if op == "max":
        return max(v)
    if op == "min":
        return min(v)
    if op == "<=":
        return int(v[0] <= v[1])
    if op == "<":
        return int(v[0] < v[1])
    raise ValueError(f"unknown formula operator {op!r}")


def to_json(e: Any) -> Any:
    """The JSON-ready form of a formula (see the module docstring)."""
    if isinstance(e, Expr):
        if e.op == "var":
            return ["var", e.args[0]]
        if e.op == "at" and isinstance(e.args[0], list):
            return ["at", list(e.args[0]), to_json(e.args[1])]
        return [e.op, *(to_json(a) for a in e.args)]
    if isinstance(e, bool) or not isinstance(e, (int, float)):
        raise TypeError(f"not a formula value: {e!r}")
    return e


def dumps(e: Any) -> str:
    return json.dumps(to_json(e), separators=(",", ":"))


def to_json_shared(exprs: Mapping[str, Any], prefix: str = "$") -> tuple[list[list[Any]], dict[str, Any]]:
    """Serialise several formulas with their common sub-formulas named once.

    Returns ``(defs, out)``: ``defs`` is an ordered list of ``[name, formula]`` — evaluate them in
    order into the environment — and ``out`` maps each key of ``exprs`` to its formula, where a
    shared node is ``["var", name]``. A node is shared when the same Python object appears more than
    once (traced formulas reuse intermediate values such as the padded token count).
    """
    seen: dict[int, int] = {}

    def count(e: Any) -> None:
        if not isinstance(e, Expr) or e.op == "var":
            return
        seen[id(e)] = seen.get(id(e), 0) + 1
        if seen[id(e)] == 1:
            for a in e.args:
                count(a)

    for e in exprs.values():
        count(e)
    names: dict[int, str] = {}
    defs: list[list[Any]] = []

    def emit(e: Any) -> Any:
        if not isinstance(e, Expr):
            return to_json(e)
        if id(e) in names:
            return ["var", names[id(e)]]
        if e.op == "var":
            return ["var", e.args[0]]
        if e.op == "at" and isinstance(e.args[0], list):
            node = ["at", list(e.args[0]), emit(e.args[1])]
        else:
            node = [e.op, *(emit(a) for a in e.args)]
        if seen.get(id(e), 0) > 1:
            name = f"{prefix}{len(defs)}"
            defs.append([name, node])
            names[id(e)] = name
            return ["var", name]
        return node

    out = {k: emit(e) for k, e in exprs.items()}
    return defs, out


def evaluate_shared(
    defs: Sequence[Sequence[Any]], exprs: Mapping[str, Any], env: Mapping[str, Any]
) -> dict[str, Any]:
    """Evaluate the output of :func:`to_json_shared` (what the calculator's JS does)."""
    scope = dict(env)
    for name, node in defs:
        scope[name] = evaluate(node, scope)
    return {k: evaluate(e, scope) for k, e in exprs.items()}


def compile_formulas(exprs: Mapping[str, Any]) -> Any:
    """A Python function ``f(env) -> dict`` evaluating ``exprs`` like :func:`evaluate` (shared
    sub-formulas once), generated as source and compiled: the planner's searches call the traced
    formulas thousands of times, ~100x faster than walking the trees."""
    defs, out = to_json_shared(exprs, prefix="_s")
    consts: list[Any] = []
    names: dict[str, str] = {}

    def var(name: str) -> str:
        if name.startswith("_s"):
            return name
        if name not in names:
            names[name] = f"_v{len(names)}"
        return names[name]

    def gen(node: Any) -> str:
        if isinstance(node, bool):
            raise TypeError("booleans are not formula values")
        if isinstance(node, (int, float)):
            return repr(node)
        op, args = node[0], node[1:]
        if op == "var":
            return var(args[0])
        if op == "at":
            table = args[0]
            if isinstance(table, list) and (not table or not isinstance(table[0], str)):
                consts.append(table)
                t = f"_c{len(consts) - 1}"
            else:
                t = gen(table)
            return f"{t}[{gen(args[1])}]"
        if op == "if":
            return f"({gen(args[1])} if {gen(args[0])} else {gen(args[2])})"
        if op in ("max", "min"):
            return gen(args[0]) if len(args) == 1 else f"{op}({', '.join(gen(a) for a in args)})"
        if op in ("<=", "<"):
            return f"int({gen(args[0])} {op} {gen(args[1])})"
        if op in ("+", "*"):
            return "(" + f" {op} ".join(gen(a) for a in args) + ")"
        if op in ("-", "//", "/"):
            return f"({gen(args[0])} {op} {gen(args[1])})"
        raise ValueError(f"unknown formula operator {op!r}")

    body = [f"    {name} = {gen(node)}" for name, node in defs]
    ret = "    return {" + ", ".join(f"{k!r}: {gen(v)}" for k, v in out.items()) + "}"
    head = [f"    {local} = env[{name!r}]" for name, local in names.items()]
    src = "def _f(env):\n" + "\n".join([*head, *body, ret]) + "\n"
    return compile_source(src, consts)


def compile_source(src: str, consts: list[Any]) -> Any:
    """The function :func:`compile_formulas` generated as ``src`` with tables ``consts`` (kept on it as
    ``source`` and ``consts``, so that it can be stored and compiled again)."""
    scope: dict[str, Any] = {f"_c{i}": c for i, c in enumerate(consts)}
    exec(compile(src, "<qwenfit formula>", "exec"), scope)  # generated from our own trees only
    f = scope["_f"]
    f.source, f.consts = src, consts
    return f
