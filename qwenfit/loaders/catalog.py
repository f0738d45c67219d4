"""The model catalog: data/models/*.json -> ModelSpec, looked up by short name, full name or repo id.

Each catalog file is the model's Hugging Face config.json with one extra top-level key,
``_qwenfit``, that records the canonical name, aliases, repo ids, where the values come from, and
the published parameter total they reproduce. The data directory is found inside an installed wheel
(``qwenfit/data``, put there by the build configuration) or, in a source checkout, at the top of
the tree (``data/``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwenfit.core.model.spec import ModelSpec
from qwenfit.errors import QwenfitError, SourceNotFoundError, UnknownModelError
from qwenfit.loaders import compiled as compiled_tables
from qwenfit.loaders.config import spec_from_config

__all__ = ["CatalogEntry", "clear_caches", "data_dir", "entries", "find", "load_catalog_model", "names"]

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The directory holding models/, hardware.yaml and quants.yaml: ``$QWENFIT_DATA_DIR`` when set
    (a catalog of one's own), else the one shipped in the wheel (or ``data/`` in a checkout)."""
    override = os.environ.get("QWENFIT_DATA_DIR")
    if override:
        path = Path(override).expanduser()
        if not (path / "models").is_dir():
            raise SourceNotFoundError(f"QWENFIT_DATA_DIR={override}: no models/ folder there")
        return path
    for candidate in (_PACKAGE_DIR / "data", _PACKAGE_DIR.parent / "data"):
        if (candidate / "models").is_dir():
            return candidate
    raise QwenfitError(
        f"qwenfit's data files are missing: looked for models/ in {_PACKAGE_DIR / 'data'} and "
        f"{_PACKAGE_DIR.parent / 'data'}; reinstall qwenfit"
    )


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One catalog model: its names and provenance; ``config`` is the config.json content."""

    name: str
    aliases: tuple[str, ...]
    repo_ids: tuple[str, ...]
    source: str
    published_total_params: int | None
    published_total_source: str
    checkpoint_mtp_layers: int | None
    expert_layout: str | None
    mtp_expert_layout: str | None
    path: Path

    @property
    def config(self) -> dict[str, Any]:
        data = json.loads(self.path.read_text(encoding="utf-8"))
        data.pop("_qwenfit", None)
        return dict(data)

    @property
    def short_name(self) -> str:
        return self.aliases[0] if self.aliases else self.name


@functools.lru_cache(maxsize=1)
def entries() -> tuple[CatalogEntry, ...]:
    """All catalog entries, smallest model first."""
    out = []
    for path in sorted((data_dir() / "models").glob("*.json")):
        meta = json.loads(path.read_text(encoding="utf-8")).get("_qwenfit")
        if not isinstance(meta, dict) or "name" not in meta:
            raise QwenfitError(f"{path}: catalog file has no _qwenfit.name record")
        out.append(
            CatalogEntry(
                name=meta["name"],
                aliases=tuple(meta.get("aliases", ())),
                repo_ids=tuple(meta.get("repo_ids", ())),
                source=meta.get("source", ""),
                published_total_params=meta.get("published_total_params"),
                published_total_source=meta.get("published_total_source", ""),
                checkpoint_mtp_layers=meta.get("checkpoint_mtp_layers"),
                expert_layout=meta.get("expert_layout"),
                mtp_expert_layout=meta.get("mtp_expert_layout"),
                path=path,
            )
        )
    # smallest first, Qwen3.5 before its Qwen3.6 twin
    return tuple(sorted(out, key=lambda e: (e.published_total_params or 0, e.name)))


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, CatalogEntry]:
    index: dict[str, CatalogEntry] = {}
    for e in entries():
        keys = {e.name, *e.aliases, *e.repo_ids}
        keys |= {"Qwen/" + e.name}
        for key in keys:
            k = key.casefold()
            if k in index and index[k] is not e:
                raise QwenfitError(f"catalog name {key!r} is used by both {index[k].name} and {e.name}")
            index[k] = e
    return index


def clear_caches() -> None:
    """Forget the catalog read so far (after ``data/models`` or ``$QWENFIT_DATA_DIR`` changed)."""
    entries.cache_clear()
    _index.cache_clear()
    _load_entry.cache_clear()
    compiled_tables.clear_cache()


def names() -> tuple[str, ...]:
    """Canonical names of every catalog model."""
    return tuple(e.name for e in entries())


def find(name: str) -> CatalogEntry | None:
    """The entry for a short name, full name or repo id (case-insensitive), or None."""
    return _index().get(name.strip().casefold())


def suggestions(name: str, n: int = 3) -> tuple[str, ...]:
    """Closest catalog names to a misspelt one, canonical names first."""
    index = _index()
    query = name.strip().casefold()
    import difflib  # here: only a misspelling needs it

    close = difflib.get_close_matches(query, list(index), n=n * 3, cutoff=0.5)
    if not close:  # fall back to substring matches ("35b" -> Qwen3.5-35B-A3B, Qwen3.6-35B-A3B)
        close = [k for k in index if query and query in k]
    out: list[str] = []
    for k in close:
        if index[k].name not in out:
            out.append(index[k].name)
    return tuple(out[:n])


def unknown_model(name: str) -> UnknownModelError:
    close = suggestions(name)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UnknownModelError(
        f"unknown model {name!r}: not a catalog name, repo id or existing path.{hint} "
        f"Catalog: {', '.join(names())}.",
        name=name,
        suggestions=close,
    )


@functools.lru_cache(maxsize=64)
def _load_entry(entry: CatalogEntry) -> ModelSpec:
    spec = spec_from_config(
        entry.config,
        source=f"catalog model {entry.name} ({entry.path.name})",
        name=entry.name,
        mtp_layers=entry.checkpoint_mtp_layers,
    )
    layouts = {"fused", "per_expert", None}
    if entry.expert_layout not in layouts or entry.mtp_expert_layout not in layouts:
        raise QwenfitError(f"{entry.path}: _qwenfit expert layouts must be 'fused' or 'per_expert'")
    return dataclasses.replace(
        spec,
        expert_layout=entry.expert_layout,  # type: ignore[arg-type]
        mtp_expert_layout=entry.mtp_expert_layout,  # type: ignore[arg-type]
    )


def load_catalog_model(name: str) -> ModelSpec:
    """The ModelSpec of a catalog model; UnknownModelError (with suggestions) if there is none."""
    entry = find(name)
    if entry is None:
        raise unknown_model(name)
    return _load_entry(entry)


compiled_tables.install(data_dir)  # values precompiled for this catalog (data/compiled.json)
