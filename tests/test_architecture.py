"""The floor plan, enforced (ARCHITECTURE.md): imports flow one way, no module imports another's
private names, engine names live only in their engines' homes, and modules stay a readable size.

The import graph comes from the code itself: every ``import`` statement of every module, at module
level or inside a function (``if TYPE_CHECKING:`` blocks excluded: they do not run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "qwenfit"

# the layers, lowest first; a module may import only from its own layer or the ones below
LAYERS = [
    ("qwenfit.errors",),
    ("qwenfit.core.units", "qwenfit.core.expr", "qwenfit.core.search", "qwenfit.core.command"),
    ("qwenfit.core.formats.dtypes",),  # storage types: what a tensor's bytes are, below the model
    ("qwenfit.core.model",),
    ("qwenfit.core.formats",),
    ("qwenfit.core.hardware", "qwenfit.core.terms", "qwenfit.core.artifacts"),
    ("qwenfit.core.engines",),
    ("qwenfit.core.fit",),
    ("qwenfit.loaders",),
    ("qwenfit.cmdline",),  # engines' own command lines, read as each engine reads them
    ("qwenfit.report",),
    ("qwenfit.api",),
    (
        "qwenfit.export",
        "qwenfit.export_patch",
        "qwenfit.export_records",
        "qwenfit.export_split",
        "qwenfit.export_plan",
    ),
    ("qwenfit.cli", "qwenfit.__main__"),
    ("qwenfit",),  # the package's __init__: re-exports (lazily) anything
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) of every import that runs."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[str, str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                out.extend((alias.name, "", child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*parent, *([base] if base else [])])
                for alias in child.names:
                    out.append((base, alias.name, child.lineno))
            visit(child)

    visit(tree)
    return out


def _targets(module: str) -> list[tuple[str, str, int]]:
    """The qwenfit modules ``module`` imports: (module, name, line); ``from pkg import submodule``
    counts as importing the submodule."""
    out = []
    for base, name, line in _imports(module):
        if not base.startswith("qwenfit"):
            continue
        target = f"{base}.{name}" if name and f"{base}.{name}" in MODULES else base
        if target in MODULES and target != module:
            out.append((target, name, line))
    return out


GRAPH = {m: sorted({t for t, _, _ in _targets(m)}) for m in MODULES}


def _layer(module: str) -> int:
    best = -1, -1
    for rank, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                best = max(best, (len(p), rank))
    assert best[1] >= 0, f"{module} is in no layer of tests/test_architecture.py"
    return best[1]


def test_no_import_cycles():
    """Tarjan's strongly connected components over every import that runs: none has two modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            connect(v)
    assert not cycles, cycles


def test_imports_flow_one_way():
    """A module imports only from its own layer or lower ones (LAYERS, lowest first)."""
    bad = []
    for module in MODULES:
        for target, _, line in _targets(module):
            if module == "qwenfit" or target == "qwenfit":
                continue
            if _layer(target) > _layer(module):
                bad.append(f"{MODULES[module].relative_to(REPO)}:{line} imports {target}")
    assert not bad, "\n".join(bad)


def test_no_private_names_cross_modules():
    """No module imports another module's ``_private`` name or a ``_private`` module."""
    bad = []
    for module in MODULES:
        for base, name, line in _imports(module):
            if not base.startswith("qwenfit"):
                continue
            private_module = any(p.startswith("_") and not p.startswith("__") for p in base.split("."))
            private_name = name.startswith("_") and not name.startswith("__")
            if private_module or private_name:
                bad.append(f"{MODULES[module].relative_to(REPO)}:{line} imports {base} {name}".rstrip())
    assert not bad, "\n".join(bad)


ENGINE_NAMES = {
    "llama.cpp", "ollama", "lm-studio", "llama-cpp-python", "vllm", "sglang", "mlx", "transformers",
}  # fmt: skip


def _names_an_engine(node: ast.AST) -> bool:
    """A string constant that is an engine's name, or a tuple/list/set of them."""
    if isinstance(node, ast.Constant):
        return node.value in ENGINE_NAMES
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_names_an_engine(e) for e in node.elts)
    return False


def _is_engine_value(node: ast.AST) -> bool:
    """An expression that holds an engine's name: a variable or attribute called ``engine``, or
    ``<something>.name`` / ``["engine"]``."""
    text = ast.unparse(node)
    return "engine" in text.lower() or text.endswith(".name")


def test_nothing_outside_an_engine_home_branches_on_its_name():
    """No comparison of an engine (its name) with an engine's name (``engine == "vllm"``,
    ``engine in ("llama.cpp", "ollama")``) outside ``qwenfit/core/engines/``: everywhere else the
    engine is asked (its contract, core/engines/base.py), so adding an engine touches its home only."""
    bad = []
    for path in MODULES.values():
        rel = str(path.relative_to(REPO))
        if rel.startswith("qwenfit/core/engines/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            if any(_names_an_engine(s) for s in sides) and any(_is_engine_value(s) for s in sides):
                bad.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, "\n".join(bad)


GENERATED = {"qwenfit/core/engines/llama_cpp/compute_trees.py"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_readable(module):
    """No module over 600 lines except generated data (ARCHITECTURE.md: one job per module)."""
    path = MODULES[module]
    rel = str(path.relative_to(REPO))
    if rel in GENERATED:
        return
    assert len(path.read_text().splitlines()) <= 600, f"{rel} has more than 600 lines"


def test_every_exception_lives_in_errors():
    """An exception class is defined in ``qwenfit/errors.py`` only, so a caller finds every error
    qwenfit raises (and its meaning) in one module."""
    import qwenfit.errors as errors

    known = {name for name in dir(errors) if isinstance(getattr(errors, name), type)}
    bad = []
    for module, path in MODULES.items():
        if module == "qwenfit.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b).rpartition(".")[2] for b in node.bases}
                if bases & (known | {"Exception", "ValueError", "LookupError", "OSError", "RuntimeError"}):
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno}: class {node.name}")
    assert not bad, "\n".join(bad)
