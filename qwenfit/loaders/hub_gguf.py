"""GGUF files on the Hugging Face Hub: ``owner/name:QUANT`` as llama.cpp's ``-hf`` reads it.

The file is chosen exactly as llama.cpp chooses it (common/download.cpp ``find_best_model`` of llama.cpp
0c1e570, the tree vendored in llama-cpp-python 0.3.36): with a tag, the first model GGUF whose path matches
``<tag>[.-]`` (case-insensitive); without one, ``Q4_K_M``, else ``Q8_0``, else the first model GGUF —
in the order the Hub lists the repo, skipping ``mmproj``/``imatrix``/``mtp-``/``eagle3-``/
``dflash-``/``dspark-`` files and every split part but ``-00001-of-``. A split set is every file with
the same prefix and part count (``get_split_files``).

Headers are read with HTTP range requests (:func:`qwenfit.loaders.hub.read_range`): the first
:data:`~qwenfit.loaders.hub.FIRST_READ_BYTES`, then doubling steps up to :data:`MAX_STEP_BYTES` until
the parser has every key-value pair and tensor info; long arrays the parser skips (token types) are
not fetched. A file in the local HF cache is read from disk. The bytes go through the same parser
as a local file (:mod:`qwenfit.loaders.gguf`), so the ModelSpec equals the local file's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, cast

from qwenfit.errors import CheckpointError, HubError, QwenfitError
from qwenfit.loaders.gguf import GGUFFile, check_split, checkpoint_of, config_from_gguf, read_gguf_from
from qwenfit.loaders.hub import (
    FIRST_READ_BYTES,
    RepoListing,
    check_tag,
    hf,
    hub_error,
    not_cached,
    read_range,
    repo_listing,
)
from qwenfit.loaders.safetensors import Progress

if TYPE_CHECKING:
    from qwenfit.core.model.spec import ModelSpec

__all__ = [
    "MAX_STEP_BYTES",
    "GGUFRead",
    "find_best_model",
    "is_model_gguf",
    "load_gguf_repo",
    "model_ggufs",
    "quant_tag",
    "read_hub_gguf",
    "split_info",
    "split_set",
]

# A Qwen3.5 GGUF header is ~10 MB (248k-token vocabulary and merges); steps of up to 8 MiB keep
# the over-read per file under one step and the requests per file under ten.
MAX_STEP_BYTES = 8 * 1024 * 1024
_NOT_MODEL = ("mmproj", "imatrix", "mtp-", "eagle3-", "dflash-", "dspark-")  # gguf_filename_is_model
_SPLIT = re.compile(r"^(.+)-([0-9]{5})-of-([0-9]{5})$", re.IGNORECASE)  # get_gguf_split_info re_split
_TAG = re.compile(r"[-.]((?:UD-)?[A-Z0-9_]+)$", re.IGNORECASE)  # re_tag, with unsloth's "UD-" kept


def is_model_gguf(path: str) -> bool:
    """A model GGUF, not a projector, an imatrix or a draft sidecar (``gguf_filename_is_model``)."""
    name = path.rsplit("/", 1)[-1]
    return path.endswith(".gguf") and not any(word in name for word in _NOT_MODEL)


def split_info(path: str) -> tuple[str, int, int]:
    """(prefix, part index, part count) of a GGUF path (``get_gguf_split_info``); (path, 1, 1) if
    it is not a split part."""
    prefix = path.removesuffix(".gguf")
    m = _SPLIT.match(prefix)
    return (m.group(1), int(m.group(2)), int(m.group(3))) if m else (prefix, 1, 1)


def quant_tag(path: str) -> str | None:
    """The tag a user types after ``repo:`` to get this file (``Q4_K_M``, ``UD-Q4_K_XL``), upper-case."""
    m = _TAG.search(split_info(path)[0])
    return m.group(1).upper() if m else None


def model_ggufs(names: Sequence[str]) -> list[str]:
    """Model GGUFs in listing order, one per split set (its part 1)."""
    return [n for n in names if is_model_gguf(n) and not (split_info(n)[2] > 1 and split_info(n)[1] != 1)]


def find_best_model(names: Sequence[str], tag: str | None) -> str | None:
    """The file llama.cpp's ``-hf repo[:tag]`` loads (``find_best_model``), or None."""
    candidates = model_ggufs(names)
    for t in [tag] if tag else ["Q4_K_M", "Q8_0"]:
        pattern = re.compile(t + "[.-]", re.IGNORECASE)  # std::regex(t + "[.-]", icase), regex_search
        found = next((n for n in candidates if pattern.search(n)), None)
        if found is not None:
            return found
    return None if tag else next(iter(candidates), None)


def split_set(names: Sequence[str], primary: str) -> list[str]:
    """Every part of ``primary``'s split set, by part index (``get_split_files``)."""
    prefix, _, count = split_info(primary)
    if count <= 1:
        return [primary]
    parts = sorted((split_info(n)[1], n) for n in names if split_info(n)[::2] == (prefix, count))
    return [n for _, n in parts]


@dataclass(frozen=True, slots=True)
class GGUFRead:
    """One GGUF header read from the Hub: the parsed header and the bytes requested for it
    (0 when the file came from the local cache)."""

    header: GGUFFile
    downloaded_bytes: int


def load_gguf_repo(
    repo_id: str,
    tag: str | None = None,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    progress: Progress | None = None,
    listing: RepoListing | None = None,
) -> ModelSpec:
    """The ModelSpec of the GGUF llama.cpp would load for ``repo_id[:tag]``, with its checkpoint
    (every part of a split set), equal to loading the same file from disk."""
    from qwenfit.core.model.checkpoint import attach
    from qwenfit.loaders.config import spec_from_config

    if tag is not None:
        check_tag(repo_id, tag)
    if listing is None:
        listing = repo_listing(repo_id, revision=revision, token=token)
    names = listing.names
    primary = find_best_model(names, tag)
    if primary is None:
        raise _no_file(listing, tag, revision)
    parts = split_set(names, primary)
    prefix, _, count = split_info(primary)
    indices = {split_info(p)[1]: p for p in parts}
    missing = [i for i in range(1, count + 1) if i not in indices]
    if missing:
        cached = (
            f" in the local Hugging Face cache ({listing.offline_reason})" if listing.offline_reason else ""
        )
        raise HubError(
            f"{repo_id}: split part {prefix}-{missing[0]:05d}-of-{count:05d}.gguf of {primary} is missing"
            f"{cached}; the set cannot be read",
            repo_id=repo_id,
        )
    parts = [indices[i] for i in range(1, count + 1)]
    rev = listing.revision or revision
    headers: list[GGUFFile] = []
    for i, part in enumerate(parts):
        headers.append(read_hub_gguf(listing, part, revision=rev, token=token).header)
        if progress is not None:
            progress(i + 1, len(parts), part.rsplit("/", 1)[-1])
    source = f"{repo_id}/{primary}"
    check_split(headers, source=source)
    config, _ = config_from_gguf(headers)
    stem = primary.rsplit("/", 1)[-1].removesuffix(".gguf")
    at = f"@{revision}" if revision else ""
    spec = spec_from_config(config, source=f"{repo_id}{at}/{primary} (GGUF metadata)", name=stem)
    return attach(spec, checkpoint_of(headers))


def _no_file(listing: RepoListing, tag: str | None, revision: str | None) -> HubError:
    repo_id = listing.repo_id
    cached = (
        f" (listed from the local Hugging Face cache: {listing.offline_reason})"
        if listing.offline_reason
        else ""
    )
    tags = list(dict.fromkeys(t for n in model_ggufs(listing.names) if (t := quant_tag(n))))
    rev = f" (revision {revision})" if revision else ""
    if tag is not None and tags:
        return HubError(
            f"{repo_id}: no GGUF file matches the quant {tag!r}{rev}{cached}; available: {', '.join(tags)}; "
            f"give one as {repo_id}:<QUANT>",
            repo_id=repo_id,
        )
    if listing.offline_reason:
        return not_cached(listing, f"a GGUF{'' if tag is None else ' of ' + tag}", revision)
    return HubError(
        f"{repo_id}: the repository has no GGUF model file{rev}; give a repo that publishes GGUFs "
        "(e.g. unsloth/<model>-GGUF:Q4_K_M)",
        repo_id=repo_id,
    )


def read_hub_gguf(
    listing: RepoListing, filename: str, *, revision: str | None = None, token: str | bool | None = None
) -> GGUFRead:
    """One GGUF's header (metadata and tensor infos) from the local HF cache or by range requests.

    ``revision`` should be the listing's commit sha, so every file comes from the same commit.
    """
    repo_id = listing.repo_id
    source = f"{repo_id}/{filename}"
    cached = hf().try_to_load_from_cache(repo_id, filename, revision=revision)
    if isinstance(cached, str):
        try:
            with open(cached, "rb") as f:
                return GGUFRead(read_gguf_from(f, os.fstat(f.fileno()).st_size, source=source), 0)
        except OSError as exc:
            raise CheckpointError(
                f"cannot be read from the cache ({exc.strerror or exc})", source=source
            ) from None
    if listing.offline_reason:
        raise not_cached(listing, filename, revision)
    try:
        first, total = read_range(repo_id, filename, revision, token, 0, FIRST_READ_BYTES - 1)
        if total is None:
            raise CheckpointError("the server did not say the file's size (no Content-Range)", source=source)
        reader = _RangeFile(
            lambda a, b: read_range(repo_id, filename, revision, token, a, b)[0], total, first, source
        )
        header = read_gguf_from(cast(BinaryIO, reader), total, source=source)
    except QwenfitError:
        raise
    except Exception as exc:
        raise hub_error(exc, repo_id, filename, revision) from None
    return GGUFRead(header, reader.downloaded)


class _RangeFile:
    """What the GGUF parser reads of a remote file (``read``, relative ``seek``), fetched in HTTP
    ranges that double up to :data:`MAX_STEP_BYTES`. Forward only: bytes before the position are
    dropped; a seek past the fetched window (a skipped array) starts a new window there."""

    def __init__(self, fetch: Callable[[int, int], bytes], size: int, first: bytes, source: str) -> None:
        self._fetch = fetch  # (first byte, last byte inclusive) -> bytes
        self._source = source
        self._size = size
        self._buf = first
        self._start = 0  # file offset of _buf[0]
        self._pos = 0
        self._step = max(len(first), 1)
        self.downloaded = len(first)

    def read(self, n: int = -1) -> bytes:
        end = self._size if n < 0 else min(self._pos + n, self._size)
        if self._pos < self._start or end > self._start + len(self._buf):
            self._fill(end)
        off = self._pos - self._start
        data = self._buf[off : off + max(end - self._pos, 0)]
        self._pos += len(data)
        return data

    def _fill(self, end: int) -> None:
        have = self._start + len(self._buf)
        if self._start <= self._pos <= have:
            keep, begin = self._buf[self._pos - self._start :], have
        else:
            keep, begin = b"", self._pos
        self._step = min(2 * self._step, MAX_STEP_BYTES)
        stop = min(self._size, max(end, begin + self._step))
        data = self._fetch(begin, stop - 1) if stop > begin else b""
        if len(data) != stop - begin:
            raise CheckpointError(
                f"the server sent {len(data):,} of the {stop - begin:,} bytes asked for at byte {begin:,}",
                source=self._source,
            )
        self.downloaded += len(data)
        self._buf, self._start = keep + data, self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def tell(self) -> int:
        return self._pos
