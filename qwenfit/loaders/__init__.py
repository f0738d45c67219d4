"""The edge: files, the Hub and the catalog turn into ModelSpecs here (ARCHITECTURE.md)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from qwenfit.core.model.spec import ModelSpec
from qwenfit.errors import QwenfitError, SourceNotFoundError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from qwenfit.loaders.safetensors import Progress  # (the reader itself: only for a checkpoint's files)

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

    A repo holding GGUFs instead of a safetensors checkpoint gives the GGUF llama.cpp's
    ``-hf owner/name[:QUANT]`` would load (``"unsloth/Qwen3.5-35B-A3B-GGUF:Q4_K_M"``; no tag:
    Q4_K_M, else Q8_0, else the first), read header-only like a local ``*.gguf``.

    Offline by default: a repo id that names a catalog model is answered from the catalog. The Hub
    is used for repo ids the catalog does not know, or when ``hub=True`` (or a ``revision``, or a
    ``:QUANT`` tag) is given; ``token`` and ``revision`` go to huggingface_hub,
    ``progress(done, total, file)`` reports header reads.
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
        from qwenfit.loaders.hub import is_repo_id, split_repo_tag

        repo_id, tag = split_repo_tag(text.strip())
        wants_hub = hub is True or (hub is None and revision is not None) or tag is not None
        if catalog.find(text) is not None and not wants_hub:
            return catalog.load_catalog_model(text)
        if is_repo_id(repo_id):
            if hub is False:
                raise catalog.unknown_model(text)
            # not a catalog model, or the Hub was asked for: the Hub is where it comes from
            spec = _load_hub(repo_id, tag, revision=revision, token=token, progress=progress)
            return dataclasses.replace(spec, origin=text.strip())
    if path.is_dir():
        return dataclasses.replace(_load_folder(path, progress), origin=text)
    if path.is_file():
        return dataclasses.replace(_load_file(path, progress), origin=text)
    if isinstance(source, os.PathLike) or os.sep in text or text.endswith((".json", ".safetensors", ".gguf")):
        raise SourceNotFoundError(f"{text}: no such file or folder")
    raise catalog.unknown_model(text)


def _load_hub(
    repo_id: str,
    tag: str | None,
    *,
    revision: str | None,
    token: str | bool | None,
    progress: Progress | None,
) -> ModelSpec:
    """A Hub repo: its safetensors checkpoint, or the GGUF a tag (or a repo of GGUFs only) names.

    The repo is listed once (from the local HF cache when offline or unreachable); a listing with
    a safetensors checkpoint (or, from the cache, a config.json) goes to the safetensors reader.
    """
    from qwenfit.loaders.hub import load_repo, not_cached, repo_listing
    from qwenfit.loaders.hub_gguf import load_gguf_repo, model_ggufs
    from qwenfit.loaders.safetensors import INDEX_NAME, SINGLE_NAME

    listing = repo_listing(repo_id, revision=revision, token=token)
    if listing.offline_reason is not None and not listing.files:
        raise not_cached(listing, "the repository", revision)
    if tag is None:
        if listing.offline_reason is None:
            safetensors = listing.has(INDEX_NAME) or listing.has(SINGLE_NAME)
        else:  # only what the cache holds: config.json means a checkpoint was read before
            safetensors = listing.has("config.json")
        if safetensors or not model_ggufs(listing.names):
            return load_repo(repo_id, revision=revision, token=token, progress=progress, listing=listing)
    return load_gguf_repo(repo_id, tag, revision=revision, token=token, progress=progress, listing=listing)


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
