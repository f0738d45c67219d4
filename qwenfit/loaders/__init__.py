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
    any case), a local model folder, a config.json, a ``*.safetensors`` file or
    ``*.safetensors.index.json`` (with its config.json beside it). Files are read header-only; the
    result carries what they store in ``spec.checkpoint``.
    """
    from qwenfit.loaders import catalog

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
        return _load_folder(path)
    if path.is_file():
        return _load_file(path)
    if isinstance(source, os.PathLike) or os.sep in text or text.endswith((".json", ".safetensors", ".gguf")):
        if text.count("/") == 1 and not path.parent.exists():
            raise catalog.unknown_model(text)  # looks like a repo id that is not in the catalog
        raise SourceNotFoundError(f"{text}: no such file or folder")
    raise catalog.unknown_model(text)


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or (folder / "model.safetensors.index.json").is_file()


def _load_folder(folder: Path) -> ModelSpec:
    config = folder / "config.json"
    if not config.is_file():
        raise SourceNotFoundError(f"{folder}: folder has no config.json")
    return _from_config_and_weights(config, folder if _has_weights(folder) else None)


def _load_file(path: Path) -> ModelSpec:
    name = path.name
    if name.endswith(".gguf"):
        raise QwenfitError(f"{path}: reading GGUF headers is not supported in this version")
    if name.endswith(".safetensors") or name.endswith(".safetensors.index.json"):
        config = path.parent / "config.json"
        if not config.is_file():
            raise SourceNotFoundError(
                f"{path}: no config.json beside it; qwenfit needs the config for layer types and shapes"
            )
        return _from_config_and_weights(config, path)
    return _from_config_and_weights(path, None)


def _from_config_and_weights(config_path: Path, weights: Path | None) -> ModelSpec:
    from qwenfit.core.checkpoint import attach
    from qwenfit.loaders.config import read_config_file, spec_from_config
    from qwenfit.loaders.safetensors import quantization_of, read_checkpoint

    config = read_config_file(config_path)
    folder = config_path.parent
    spec = spec_from_config(config, source=str(config_path), name=folder.name or None)
    if weights is None:
        return spec
    checkpoint = read_checkpoint(weights, quantization=quantization_of(config))
    return attach(spec, checkpoint)
