"""data/compiled.json: values precompiled at build time for the catalog's models (see
:mod:`qwenfit.core.formats.compiled`), read lazily, one model's table at a time.

The file carries the SHA-256 of what its values are computed from: every module of ``qwenfit/core``
and the catalog's data files (models/, artifacts.json, quants.json). When the running tree's digest
differs, or a catalog of one's own is in use (``$QWENFIT_DATA_DIR``), no table is handed out and
everything is computed as before; a stale file is never used. ``scripts/gen_compiled_json.py``
writes it; tests/test_compiled_data.py checks it is current and equal to fresh computation.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from qwenfit.core.formats import compiled
from qwenfit.loaders.stamps import files_sha256, verified

__all__ = ["FILE_NAME", "TENSOR_TABLE", "compiled_json", "install", "sources_digest", "table"]

FILE_NAME = "compiled.json"
TENSOR_TABLE = compiled.TENSOR_TABLE  # what stored llama.cpp inputs hold instead of the tensor table
_CORE = Path(compiled.__file__).resolve().parent.parent  # qwenfit/core


_data_dir: Callable[[], Path] | None = None  # the catalog's data_dir, given to install()


def _sources(data: Path) -> list[Path]:
    """qwenfit/core's modules and the catalog's data files the values come from, in digest order."""
    paths = [Path(p) for p in sorted(_py_files(str(_CORE)))]
    paths += sorted((data / "models").glob("*.json"))
    return [*paths, data / "artifacts.json", data / "quants.json"]


def sources_digest(data: Path | None = None, paths: list[Path] | None = None) -> str:
    """SHA-256 over qwenfit/core's modules and the catalog's data files the values come from."""
    return files_sha256(paths if paths is not None else _sources(data or _catalog_dir()))


def _py_files(root: str) -> list[str]:
    """Every ``.py`` file under ``root`` (not descending into ``__pycache__``: Path.rglob would)."""
    out: list[str] = []
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in entries:
                if e.is_dir():
                    if e.name != "__pycache__":
                        stack.append(e.path)
                elif e.name.endswith(".py"):
                    out.append(e.path)
    return out


@functools.lru_cache(maxsize=1)
def _models() -> tuple[Path, int, dict[str, tuple[int, int]]] | None:
    """(the file, where its body starts, each model's line as (offset in the body, bytes)) when the
    shipped file is current, else None. Line 1 is the header: the sources' digest and the lines."""
    data = _catalog_dir()
    path = data / FILE_NAME
    try:
        with path.open("rb") as f:
            header = json.loads(f.readline())
            start = f.tell()
        if not isinstance(header, dict) or not isinstance(header.get("sources_sha256"), str):
            return None
        sources = _sources(data)
        if not verified(path, header["sources_sha256"], sources, lambda: sources_digest(data, sources)):
            return None
        lines = {name: (int(at), int(n)) for name, (at, n) in header["lines"].items()}
    except (OSError, ValueError, LookupError, TypeError):
        return None
    return path, start, lines


_TABLES: dict[str, Mapping[str, Any] | None] = {}


def table(model: str) -> Mapping[str, Any] | None:
    """The precompiled values of ``model`` (``"*"``: those keyed by content), or None. Only the
    model's own line of the file is read and parsed."""
    if os.environ.get("QWENFIT_DATA_DIR"):
        return None  # a catalog of one's own: its models may share names with the shipped ones
    if model in _TABLES:
        return _TABLES[model]
    found = _models()
    where = None if found is None else found[2].get(model)
    out: dict[str, Any] | None = None
    if found is not None and where is not None:
        try:
            with found[0].open("rb") as f:
                f.seek(found[1] + where[0])
                out = json.loads(f.read(where[1]))
            out["long"] = {s: i for i, s in enumerate(out["long"])}
        except (OSError, ValueError, KeyError, TypeError):
            out = None
    _TABLES[model] = out
    return out


def _catalog_dir() -> Path:
    if _data_dir is None:
        raise RuntimeError("qwenfit.loaders.compiled.install(data_dir) was not called")
    return _data_dir()


def install(data_dir: Callable[[], Path]) -> None:
    """Hand the tables shipped in ``data_dir()`` to the computing functions (the catalog does, on
    import)."""
    global _data_dir
    _data_dir = data_dir
    compiled.install(table)


def clear_cache() -> None:
    _models.cache_clear()
    _TABLES.clear()


def _same(a: Any, b: Any) -> bool:
    """Equal with the same types throughout (what a JSON round trip must keep)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _stored_value(kind: str, value: Any) -> Any:
    if kind == "inputs" and isinstance(value, dict) and "gguf:tensors" in value:
        return {**value, "gguf:tensors": TENSOR_TABLE}
    return value


def compiled_json(recorded: Mapping[str, Mapping[str, Mapping[tuple[str, ...], Any]]]) -> str:
    """``data/compiled.json`` from what :func:`qwenfit.core.formats.compiled.recording` recorded: a
    header line (the sources' digest; each model's line as [byte offset after the header, bytes]),
    then one JSON line per model: the long key parts once and each kind's values by
    key. Values a JSON round trip would change (tuples, non-string keys) are left out (computed at
    run time)."""
    models: dict[str, str] = {}
    for model in sorted(recorded):
        long: list[str] = sorted(
            {p for kinds in recorded[model].values() for key in kinds for p in key if len(p) > compiled.LONG}
        )
        index = {s: i for i, s in enumerate(long)}
        out: dict[str, Any] = {"long": long}
        for kind in sorted(recorded[model]):
            values: dict[str, Any] = {}
            for key, value in recorded[model][kind].items():
                stored = _stored_value(kind, value)
                if not _same(json.loads(json.dumps(stored)), stored):
                    continue
                values["|".join(f"#{index[p]}" if len(p) > compiled.LONG else p for p in key)] = stored
            out[kind] = dict(sorted(values.items()))
        models[model] = json.dumps(out, separators=(",", ":"), sort_keys=True)
    lines: dict[str, list[int]] = {}
    at = 0
    for model, line in models.items():
        n = len(line.encode("utf-8"))
        lines[model] = [at, n]
        at += n + 1
    header = {"lines": lines, "sources_sha256": sources_digest()}
    return "\n".join([json.dumps(header, sort_keys=True), *models.values()]) + "\n"
