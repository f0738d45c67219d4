"""The edge: files, the Hub and the catalog turn into ModelSpecs here (ARCHITECTURE.md)."""

from __future__ import annotations

import os
from pathlib import Path

from qwenfit.core.model.spec import ModelSpec
from qwenfit.errors import QwenfitError, SourceNotFoundError
from qwenfit.loaders.safetensors import Progress

__all__ = ["load"]


def load(
    source: str | os.PathLike[str] | ModelSpec,
    *,
    hub: bool | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    progress: Progress | None = None,
) -> ModelSpec:
    """Resolve a model source to a ModelSpec.

    ``source`` is a catalog name (``"35B-A3B"``, ``"Qwen3.5-35B-A3B"``, ``"Qwen/Qwen3.5-35B-A3B"``,
    any case), a local model folder, a config.json, a ``*.safetensors`` file or
    ``*.safetensors.index.json`` (with its config.json beside it), or a Hugging Face repo id.
    Files are read header-only; the result carries what they store in ``spec.checkpoint``.

    Offline by default: a repo id that names a catalog model is answered from the catalog. The Hub
    is used for repo ids the catalog does not know, or when ``hub=True`` (or a ``revision``) is
    given; ``token`` and ``revision`` go to huggingface_hub, ``progress(done, total, shard)``
    reports header reads.
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
    if isinstance(source, str) and not path.exists():
        from qwenfit.loaders.hub import is_repo_id, load_repo

        wants_hub = hub is True or (hub is None and revision is not None)
        if catalog.find(text) is not None and not wants_hub:
            return catalog.load_catalog_model(text)
        if is_repo_id(text.strip()):
            if hub is False:
                raise catalog.unknown_model(text)
            # not a catalog model, or the Hub was asked for: the Hub is where it comes from
            return load_repo(text.strip(), revision=revision, token=token, progress=progress)
    if path.is_dir():
        return _load_folder(path, progress)
    if path.is_file():
        return _load_file(path, progress)
    if isinstance(source, os.PathLike) or os.sep in text or text.endswith((".json", ".safetensors", ".gguf")):
        raise SourceNotFoundError(f"{text}: no such file or folder")
    raise catalog.unknown_model(text)


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or (folder / "model.safetensors.index.json").is_file()


def _load_folder(folder: Path, progress: Progress | None) -> ModelSpec:
    config = folder / "config.json"
    if not config.is_file():
        raise SourceNotFoundError(f"{folder}: folder has no config.json")
    return _from_config_and_weights(config, folder if _has_weights(folder) else None, progress)


def _load_file(path: Path, progress: Progress | None) -> ModelSpec:
    name = path.name
    if name.endswith(".gguf"):
        return _load_gguf(path, progress)
    if name.endswith(".safetensors") or name.endswith(".safetensors.index.json"):
        config = path.parent / "config.json"
        if not config.is_file():
            raise SourceNotFoundError(
                f"{path}: no config.json beside it; qwenfit needs the config for layer types and shapes"
            )
        return _from_config_and_weights(config, path, progress)
    return _from_config_and_weights(path, None, progress)


def _from_config_and_weights(config_path: Path, weights: Path | None, progress: Progress | None) -> ModelSpec:
    from qwenfit.core.model.checkpoint import attach
    from qwenfit.loaders.config import read_config_file, spec_from_config
    from qwenfit.loaders.safetensors import quantization_of, read_checkpoint

    config = read_config_file(config_path)
    folder = config_path.parent
    spec = spec_from_config(config, source=str(config_path), name=folder.name or None)
    if weights is None:
        return spec
    checkpoint = read_checkpoint(weights, quantization=quantization_of(config), progress=progress)
    return attach(spec, checkpoint)


def _load_gguf(path: Path, progress: Progress | None) -> ModelSpec:
    from qwenfit.core.model.checkpoint import attach
    from qwenfit.loaders.config import spec_from_config
    from qwenfit.loaders.gguf import checkpoint_of, config_from_gguf, read_gguf_split

    parts = read_gguf_split(path, progress)
    config, _ = config_from_gguf(parts)
    stem = path.name.removesuffix(".gguf")
    spec = spec_from_config(config, source=f"{path} (GGUF metadata)", name=stem)
    return attach(spec, checkpoint_of(parts))
