"""Closed forms of llama.cpp's compute buffer, derived from ggml's allocator replayed symbolically.

:mod:`qwenfit.core.engines.llama_cpp.graph` gives the compute buffer to the byte for one set of
integers (the text graph rebuilt node for node, replayed through
:mod:`qwenfit.core.engines.llama_cpp.ggml_alloc`). The planner and
the docs calculator need it as a *formula* of the context and the number of sequences
(:mod:`qwenfit.core.expr`), and fast. This module derives that formula from the replay itself:

1. **Concolic replay.** The graph is built with every dimension carrying both its value and a
   polynomial in four variables — ``tps`` (ubatch tokens per sequence), ``ns`` (sequences =
   streams), ``no`` (output rows), ``kv`` (KV cells per stream) — so every tensor's aligned size
   is a polynomial (``pad32`` of a non-multiple is an opaque factor). ggml-alloc's best-fit choices
   are taken on the values, and each comparison it makes is recorded as a *guard*
   (``poly <= 0``, ``< 0`` or ``== 0``). Every allocation's end address is a polynomial; the buffer
   is their maximum, exact wherever all the guards come out the same way.
2. **Decision tree.** For each sequence count of a grid, the replay walks ``kv`` from 256 cells to
   262,144: every guard is linear in ``kv``, so where the first one flips is solved and the next
   replay starts there — every allocator path along ``kv`` is seen. The guards whose outcome
   differs across the grid split the grid into regions; a decision tree on those guards selects
   the region. Its leaves are ``max(poly, ...)`` over the end polynomials that are the buffer
   somewhere on one of the region's paths.
3. **Checks.** The tree reproduces every sample, and ``scripts/llama_compute_formulas.py`` checks it
   against the plain replay on random points it never saw, adding any that disagree to the samples
   and deriving again (the figures are stored with each tree in
   ``qwenfit/core/engines/llama_cpp/compute_trees.py``; tests/engines/test_llama_graph.py repeats a sample).

The trees for the catalog models at llama-server's defaults (ubatch 512, one output per sequence,
flash attention on, f16/bf16 or quantized KV) are precomputed; other settings and other models use
the replay on integers (a traced formula raises TypeError there; the planner then evaluates
integers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from qwenfit.core.expr import Num, le, lt, smax, smin, where
from qwenfit.core.formats.compiled import MISSING, lookup, remember
from qwenfit.core.model.spec import ModelSpec

__all__ = [
    "KV_OF_CLASS",
    "VARS",
    "Dim",
    "Guard",
    "Poly",
    "Structure",
    "Tree",
    "compute_tree",
    "eval_tree",
    "guard_holds",
    "kv_class",
    "model_key",
    "pad_poly",
    "register_tree",
    "tree_expr",
]

VARS = ("tps", "ns", "no", "kv")
Mono = tuple[Any, ...]  # sorted factors: variable names or opaque atoms ("pad"|"fd", Poly, int)


class Poly:
    """A polynomial with int coefficients; a factor is a variable name or an opaque atom
    ``("pad", p, a)`` = ceil(p / a)·a, ``("fd", p, a)`` = p // a (for sizes that are not multiples)."""

    __slots__ = ("_repr", "terms")

    def __init__(self, terms: Mapping[Mono, int]) -> None:
        self.terms: dict[Mono, int] = {m: c for m, c in terms.items() if c}
        self._repr: str | None = None  # a Poly is never changed: its text is computed once

    @staticmethod
    def of(x: Poly | int) -> Poly:
        return x if isinstance(x, Poly) else Poly({(): x})

    @staticmethod
    def var(name: str) -> Poly:
        return Poly({(name,): 1})

    def __add__(self, o: Poly | int) -> Poly:
        t = dict(self.terms)
        for m, c in Poly.of(o).terms.items():
            t[m] = t.get(m, 0) + c
        return Poly(t)

    __radd__ = __add__

    def __neg__(self) -> Poly:
        return Poly({m: -c for m, c in self.terms.items()})

    def __sub__(self, o: Poly | int) -> Poly:
        return self + (-Poly.of(o))

    def __mul__(self, o: Poly | int) -> Poly:
        t: dict[Mono, int] = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in Poly.of(o).terms.items():
                m = tuple(sorted(m1 + m2, key=_factor_key))
                t[m] = t.get(m, 0) + c1 * c2
        return Poly(t)

    __rmul__ = __mul__

    def const(self) -> int | None:
        if all(m == () for m in self.terms):
            return self.terms.get((), 0)
        return None

    def floordiv(self, o: Poly | int) -> Poly:
        o = Poly.of(o)
        oc = o.const()
        if oc is not None:
            if all(c % oc == 0 for c in self.terms.values()):
                return Poly({m: c // oc for m, c in self.terms.items()})
            return Poly({(("fd", self, oc),): 1})
        if len(o.terms) == 1:  # a monomial that divides every term (T // n_seq)
            ((mo, co),) = o.terms.items()
            out: dict[Mono, int] = {}
            for m, c in self.terms.items():
                rest = list(m)
                for f in mo:
                    if f not in rest or c % co:
                        raise ValueError(f"inexact division {self} // {o}")
                    rest.remove(f)
                out[tuple(rest)] = c // co
            return Poly(out)
        raise ValueError(f"inexact division {self} // {o}")

    def key(self) -> str:
        return repr(self)

    def __repr__(self) -> str:
        if self._repr is not None:
            return self._repr
        if not self.terms:
            self._repr = "0"
            return "0"
        parts = []
        for m, c in sorted(self.terms.items(), key=lambda mc: _mono_key(mc[0])):
            parts.append("*".join([str(c), *(_factor_str(f) for f in m)]))
        self._repr = " + ".join(parts)
        return self._repr

    def value(self, env: Mapping[str, int]) -> int:
        total = 0
        for m, c in self.terms.items():
            x = c
            for f in m:
                x *= env[f] if isinstance(f, str) else _atom_value(f, env)
            total += x
        return total

    def expr(self, env: Mapping[str, Num]) -> Num:
        total: Num = 0
        for m, c in sorted(self.terms.items(), key=lambda mc: _mono_key(mc[0])):
            x: Num = c
            for f in m:
                x = x * (env[f] if isinstance(f, str) else _atom_expr(f, env))
            total = total + x
        return total

    def to_json(self) -> list[Any]:
        return [[c, [f if isinstance(f, str) else [f[0], f[1].to_json(), f[2]] for f in m]]
                for m, c in sorted(self.terms.items(), key=lambda mc: _mono_key(mc[0]))]  # fmt: skip

    @staticmethod
    def from_json(data: list[Any]) -> Poly:
        terms: dict[Mono, int] = {}
        for c, factors in data:
            m = tuple(f if isinstance(f, str) else (f[0], Poly.from_json(f[1]), f[2]) for f in factors)
            terms[tuple(sorted(m, key=_factor_key))] = c
        return Poly(terms)


def _factor_str(f: Any) -> str:
    return f if isinstance(f, str) else f"{f[0]}[{f[1]!r}|{f[2]}]"


def _factor_key(f: Any) -> str:
    return _factor_str(f)


def _mono_key(m: Mono) -> tuple[int, str]:
    return len(m), "*".join(_factor_str(f) for f in m)


def _atom_value(f: tuple[str, Poly, int], env: Mapping[str, int]) -> int:
    kind, p, a = f
    x = p.value(env)
    return -(-x // a) * a if kind == "pad" else x // a


def _atom_expr(f: tuple[str, Poly, int], env: Mapping[str, Num]) -> Num:
    kind, p, a = f
    x = p.expr(env)
    return -(-x // a) * a if kind == "pad" else x // a


def pad_poly(p: Poly, a: int) -> Poly:
    if all(c % a == 0 for c in p.terms.values()):
        return p
    return Poly({(("pad", p, a),): 1})


class Dim:
    """A concolic integer: a value and the polynomial it equals (graph dimensions)."""

    __slots__ = ("p", "v")

    def __init__(self, v: int, p: Poly | int) -> None:
        self.v, self.p = v, Poly.of(p)

    @staticmethod
    def of(x: Dim | int) -> Dim:
        return x if isinstance(x, Dim) else Dim(x, x)

    def __add__(self, o: Dim | int) -> Dim:
        o = Dim.of(o)
        return Dim(self.v + o.v, self.p + o.p)

    __radd__ = __add__

    def __sub__(self, o: Dim | int) -> Dim:
        o = Dim.of(o)
        return Dim(self.v - o.v, self.p - o.p)

    def __rsub__(self, o: Dim | int) -> Dim:
        return Dim.of(o) - self

    def __mul__(self, o: Dim | int) -> Dim:
        o = Dim.of(o)
        return Dim(self.v * o.v, self.p * o.p)

    __rmul__ = __mul__

    def __floordiv__(self, o: Dim | int) -> Dim:
        o = Dim.of(o)
        return Dim(self.v // o.v, self.p.floordiv(o.p))

    def __rfloordiv__(self, o: Dim | int) -> Dim:
        return Dim.of(o) // self

    def __neg__(self) -> Dim:
        return Dim(-self.v, -self.p)

    # comparisons decide on the value (the graph's structure is fixed for a given structure key)
    def __lt__(self, o: Dim | int) -> bool:
        return self.v < Dim.of(o).v

    def __le__(self, o: Dim | int) -> bool:
        return self.v <= Dim.of(o).v

    def __gt__(self, o: Dim | int) -> bool:
        return self.v > Dim.of(o).v

    def __ge__(self, o: Dim | int) -> bool:
        return self.v >= Dim.of(o).v

    def __eq__(self, o: object) -> bool:
        return isinstance(o, (int, Dim)) and self.v == Dim.of(o).v

    def __hash__(self) -> int:
        return hash(self.v)


Guard = tuple[str, Poly]  # ("<=" | "<" | "==", p): p <= 0 / p < 0 / p == 0


def guard_holds(g: Guard, env: Mapping[str, int]) -> bool:
    op, p = g
    v = p.value(env)
    return v < 0 if op == "<" else v <= 0 if op == "<=" else v == 0


# ------------------------------------------------------------------------------------------------
# the decision tree
# ------------------------------------------------------------------------------------------------

Tree = dict[str, Any]  # {"max": [Poly]} | {"if": Guard, "then": Tree, "else": Tree}


def eval_tree(tree: Tree, env: Mapping[str, int]) -> int:
    while "if" in tree:
        tree = tree["then"] if guard_holds(tree["if"], env) else tree["else"]
    best: int = max(p.value(env) for p in tree["max"])
    return best


def tree_expr(tree: Tree, env: Mapping[str, Num]) -> Num:
    """The tree as a formula (:mod:`qwenfit.core.expr`) of ``env``'s values for :data:`VARS`."""
    if "if" not in tree:
        return smax(*(p.expr(env) for p in tree["max"]))
    op, p = tree["if"]
    x = p.expr(env)
    a, b = tree_expr(tree["then"], env), tree_expr(tree["else"], env)
    if op == "<=":
        return where(le(x, 0), a, b)
    if op == "<":
        return where(lt(x, 0), a, b)
    return where(le(x, 0), where(le(0, x), a, b), b)


def tree_to_json(tree: Tree) -> Any:
    if "if" in tree:
        op, p = tree["if"]
        return {
            "if": [op, p.to_json()],
            "then": tree_to_json(tree["then"]),
            "else": tree_to_json(tree["else"]),
        }
    return {"max": [p.to_json() for p in tree["max"]]}


def tree_from_json(data: Any) -> Tree:
    if "if" in data:
        op, p = data["if"]
        return {"if": (op, Poly.from_json(p)), "then": tree_from_json(data["then"]),
                "else": tree_from_json(data["else"])}  # fmt: skip
    return {"max": [Poly.from_json(p) for p in data["max"]]}


def tree_stats(tree: Tree) -> tuple[int, int]:
    """(leaves, end polynomials)."""
    if "if" not in tree:
        return 1, len(tree["max"])
    a, b = tree_stats(tree["then"]), tree_stats(tree["else"])
    return a[0] + b[0], a[1] + b[1]


# ------------------------------------------------------------------------------------------------
# what a tree is keyed by
# ------------------------------------------------------------------------------------------------


def kv_class(kind: str) -> str:
    """What a KV cache type changes in the graph: nothing for f16/bf16 ("0"), the Hadamard rotation
    inputs for a quantized type ("1"), F16 casts of the cache views with flash attention for f32."""
    if kind in ("f16", "bf16"):
        return "0"
    return "f32" if kind == "f32" else "1"


KV_OF_CLASS = {"0": "f16", "1": "q8_0", "f32": "f32"}  # a cache type of each class


@dataclass(frozen=True, slots=True)
class Structure:
    """The settings that fix the graph's structure (everything but the four variables):
    ``k`` / ``v``: :func:`kv_class` of the cache types; ``outputs``: "seqs" (one output row per
    sequence: llama-server's limits); ``n_rs_seq``: extra recurrent rows (MTP rollback)."""

    flash_attn: bool
    k: str
    v: str
    n_ubatch: int
    outputs: str = "seqs"
    n_rs_seq: int = 0
    mtp_draft: bool = False

    def key(self) -> str:
        return (f"fa{int(self.flash_attn)}-k{self.k}v{self.v}-ub{self.n_ubatch}"
                f"-out_{self.outputs}-rs{self.n_rs_seq}" + ("-mtp" if self.mtp_draft else ""))  # fmt: skip


@lru_cache(maxsize=64)
def model_key(spec: ModelSpec) -> str:
    """A digest of what the text graph depends on (two catalog names with one text config share it);
    precompiled for the catalog's configs, keyed by the hashed text itself (importing hashlib loads
    OpenSSL: a few milliseconds of every ``qwenfit check``)."""
    parts = (spec.family, repr(spec.text), repr(spec.mtp_layers))
    found = lookup("*", "model_key", parts)
    if found is MISSING:
        import hashlib

        found = hashlib.sha256("".join(parts).encode()).hexdigest()[:16]
        remember("*", "model_key", parts, found)
    return str(found)


def variables(n_ctx: Num, n_ctx_seq: Num, n_seq: Num, st: Structure) -> dict[str, Num]:
    """The four variables of the settings (non-unified KV, one output per sequence; ints or
    formulas): the ubatch holds min(n_ctx, n_ubatch) tokens rounded up to a multiple of n_seq."""
    n = smin(n_ctx, st.n_ubatch)
    return {"tps": (n + n_seq - 1) // n_seq, "ns": n_seq, "no": smin(n, n_seq), "kv": n_ctx_seq}


@lru_cache(maxsize=1)
def stored() -> dict[str, Any]:
    """The precomputed trees (``compute_trees.py`` here, written by scripts/llama_compute_formulas.py)."""
    from qwenfit.core.engines.llama_cpp.compute_trees import DATA_JSON

    data: dict[str, Any] = json.loads(DATA_JSON)
    return data


_REGISTERED: dict[tuple[str, str], Tree] = {}  # trees derived in this process (register_tree)


def register_tree(model: str, structure: str, tree: Tree) -> None:
    """Make a tree derived at run time (:func:`.derive.derive_checked`) available like a stored one:
    how a model outside the stored trees gets its formulas (the calculator export does this)."""
    _REGISTERED[(model, structure)] = tree


def stored_tree(model: str, structure: str) -> Tree | None:
    """The tree of a model key and structure key: stored (``compute_trees.py``) or registered, or None."""
    if (model, structure) in _REGISTERED:
        return _REGISTERED[(model, structure)]
    return _parsed(model, structure)


@lru_cache(maxsize=256)
def _parsed(model: str, structure: str) -> Tree | None:
    rec = stored()["trees"].get(model, {}).get(structure)
    return None if rec is None else tree_from_json(rec["tree"])


def compute_tree(spec: ModelSpec, st: Structure) -> Tree | None:
    """The precomputed tree of this model and structure, or None."""
    return stored_tree(model_key(spec), st.key())
