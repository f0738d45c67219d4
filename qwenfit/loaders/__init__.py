"""The edge: files, the Hub and the catalog turn into ModelSpecs here (DESIGN.md)."""

from __future__ import annotations

import os
from pathlib import Path

from qwenfit.core.spec import ModelSpec
from qwenfit.errors import QwenfitError, SourceNotFoundError

__all__ = ["load"]


def load(source: str | os.PathLike[str] | ModelSpec) -> ModelSpec:
    """Resolve a model source to a ModelSpec.

    ``source`` is a catalog name (``"35B-A3B"``, ``"Qwen3.5-35B-A3B"``, ``"Qwen/Qwen3.5-35B-A3B"``,
    any case), a local model folder holding a config.json, or a path to a config.json.
    """
    from qwenfit.loaders import catalog
    from qwenfit.loaders.config import read_config_file, spec_from_config

    if isinstance(source, ModelSpec):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"model source must be a name or a path, not {type(source).__name__}")
    text = os.fspath(source)
    if isinstance(source, str) and not text.strip():
        raise QwenfitError("model source is empty: give a catalog name (e.g. '35B-A3B') or a path")

    path = Path(text).expanduser()
    if isinstance(source, str) and catalog.find(text) is not None and not path.exists():
        return catalog.load_catalog_model(text)
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise SourceNotFoundError(f"{path}: folder has no config.json")
        return spec_from_config(read_config_file(config), source=str(config), name=path.name)
    if path.is_file():
        if path.name.endswith((".safetensors", ".gguf")) or path.name.endswith(".safetensors.index.json"):
            raise QwenfitError(
                f"{path}: reading safetensors and GGUF headers is not supported in this version; "
                "pass the model folder or its config.json"
            )
        return spec_from_config(read_config_file(path), source=str(path), name=path.parent.name or None)
    if isinstance(source, os.PathLike) or os.sep in text or text.endswith(".json"):
        if "/" in text and text.count("/") == 1 and not path.parent.exists():
            raise catalog.unknown_model(text)  # looks like a repo id that is not in the catalog
        raise SourceNotFoundError(f"{text}: no such file or folder")
    raise catalog.unknown_model(text)
