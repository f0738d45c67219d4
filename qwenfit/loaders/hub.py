"""Model sources on the Hugging Face Hub, read through huggingface_hub only.

A repo is first listed (``HfApi.model_info(files_metadata=True)``: every file with its size and LFS
sha256, and the commit sha), which says whether it holds a safetensors checkpoint or GGUF files
(:mod:`qwenfit.loaders.hub_gguf`). When the Hub cannot be asked (``HF_HUB_OFFLINE``, or the endpoint
does not answer) the listing comes from the local HF cache's snapshot, as llama.cpp does
(common/download.cpp: ``get_cached_files`` when ``get_repo_files`` finds nothing), and nothing
further is requested: no retries, no waiting.

config.json and the shard index come through ``hf_hub_download`` (so the local HF cache, tokens,
``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` behave as everywhere else). Headers are read with HTTP range
requests over huggingface_hub's own session (``get_session``, ``hf_hub_url``, ``build_hf_headers``,
``hf_raise_for_status``) — a few hundred KB per shard instead of the weights — and validated by the
same parser as local files; a file already in the local cache is read from disk with no request.
huggingface_hub is imported only when a repo is actually asked for.
"""

from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwenfit.core.model.checkpoint import StoredCheckpoint, attach
from qwenfit.errors import CheckpointError, HubError, QwenfitError
from qwenfit.loaders.config import read_config_file, spec_from_config
from qwenfit.loaders.safetensors import (
    DEFAULT_MAX_HEADER_BYTES,
    INDEX_NAME,
    SINGLE_NAME,
    Progress,
    SafetensorsHeader,
    check_shards_against_index,
    parse_header,
    quantization_of,
    read_header,
    read_index,
)

if TYPE_CHECKING:
    from qwenfit.core.model.spec import ModelSpec

__all__ = [
    "RepoFile",
    "RepoListing",
    "check_tag",
    "endpoint",
    "hf",
    "hub_error",
    "is_offline",
    "is_repo_id",
    "load_repo",
    "not_cached",
    "read_range",
    "repo_listing",
    "split_repo_tag",
    "unreachable",
]

log = logging.getLogger("qwenfit.hub")

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}/[\w.\-]{1,96}$")
_TAG = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
FIRST_READ_BYTES = 100_001  # one request covers most headers (huggingface_hub uses the same size)
TIMEOUT_S = 30  # seconds per request: listing and range reads
# transport failures that mean "the Hub is not there" (httpx's class names, whichever httpx build
# huggingface_hub uses), as opposed to an answer from the Hub
_UNREACHABLE = {"ConnectError", "ConnectTimeout", "NetworkError", "TimeoutException", "ProxyError"}


def is_repo_id(text: str) -> bool:
    """``owner/name`` as the Hub spells repository ids."""
    return bool(_REPO_ID.match(text)) and ".." not in text and not text.endswith(".")


def split_repo_tag(text: str) -> tuple[str, str | None]:
    """``owner/name:QUANT`` (llama.cpp's ``-hf`` syntax, common/download.cpp
    ``common_download_split_repo_tag``) -> (repo id, tag or None); an empty tag is no tag."""
    repo, sep, tag = text.partition(":")
    return (repo, tag or None) if sep else (text, None)


def check_tag(repo_id: str, tag: str) -> None:
    """A quant tag is a file-name fragment (``Q4_K_M``, ``UD-Q4_K_XL``): letters, digits, ``_.-``."""
    if not _TAG.match(tag):
        raise HubError(
            f"{repo_id}: {tag!r} is not a quant tag; give one such as {repo_id}:Q4_K_M", repo_id=repo_id
        )


@dataclass(frozen=True, slots=True)
class RepoFile:
    """One file of a repo as the Hub lists it (``model_info(files_metadata=True)`` siblings)."""

    name: str  # path in the repo
    size_bytes: int | None  # exact bytes (the Hub's ``size``; the file's size on disk from the cache)
    sha256: str | None  # LFS files only (the Hub's ``lfs.sha256``)


@dataclass(frozen=True, slots=True)
class RepoListing:
    """A repo's files at one commit. ``offline_reason`` is set when the listing comes from the local
    HF cache because the Hub could not be asked (then only cached files are listed, and nothing
    that is not cached can be read)."""

    repo_id: str
    revision: str | None  # the commit sha (None: the cache has no snapshot of it)
    files: tuple[RepoFile, ...]
    offline_reason: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files)

    def has(self, name: str) -> bool:
        return any(f.name == name for f in self.files)


def hf() -> Any:
    """huggingface_hub with the submodules qwenfit uses imported (its ``__init__`` loads them lazily:
    ``huggingface_hub.errors`` is not an attribute until something imports it)."""
    try:
        import huggingface_hub
        import huggingface_hub.constants
        import huggingface_hub.errors
        import huggingface_hub.file_download
        import huggingface_hub.utils
    except ImportError:  # pragma: no cover - a declared dependency
        raise QwenfitError(
            "reading from the Hugging Face Hub needs huggingface_hub: pip install 'qwenfit[hub]'"
        ) from None
    return huggingface_hub


def is_offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub reads it."""
    return bool(hf().constants.is_offline_mode())


def endpoint() -> str:
    return str(hf().constants.ENDPOINT)


def unreachable(exc: BaseException) -> bool:
    """The request never got an answer from the Hub (offline mode, refused, timed out, no route)."""
    if isinstance(exc, (ConnectionError, TimeoutError)):  # OfflineModeIsEnabled is a ConnectionError
        return True
    return any(cls.__name__ in _UNREACHABLE for cls in type(exc).__mro__)


def repo_listing(
    repo_id: str, *, revision: str | None = None, token: str | bool | None = None
) -> RepoListing:
    """The repo's files with sizes and sha256, and its commit sha (``HfApi.model_info``, one request).

    Offline or unreachable: the files of the cached snapshot, with ``offline_reason`` saying why.
    Not found, gated listing, bad revision: :class:`HubError`.
    """
    h = hf()
    if is_offline():
        return _cached_listing(repo_id, revision, "HF_HUB_OFFLINE is set")
    try:
        info = h.HfApi().model_info(
            repo_id, revision=revision, token=token, files_metadata=True, timeout=TIMEOUT_S
        )
    except Exception as exc:
        if unreachable(exc):
            return _cached_listing(
                repo_id, revision, f"the Hub at {endpoint()} cannot be reached ({_what(exc)})"
            )
        raise hub_error(exc, repo_id, "its file list", revision) from None
    files = tuple(
        RepoFile(s.rfilename, s.size, s.lfs.sha256 if s.lfs is not None else None)
        for s in info.siblings or ()
    )
    return RepoListing(repo_id, info.sha, files)


def _cached_listing(repo_id: str, revision: str | None, reason: str) -> RepoListing:
    """The files of the repo's snapshot in the local HF cache (``refs/<revision>`` -> ``snapshots/<sha>``)."""
    h = hf()
    folder = Path(h.constants.HF_HUB_CACHE) / h.file_download.repo_folder_name(
        repo_id=repo_id, repo_type="model"
    )
    rev = revision or "main"
    sha: str | None = rev if _SHA.match(rev) else None
    if sha is None and ".." not in rev:
        try:
            sha = (folder / "refs" / rev).read_text().strip() or None
        except OSError:
            sha = None
    files: list[RepoFile] = []
    snapshot = folder / "snapshots" / sha if sha else None
    if snapshot is not None and snapshot.is_dir():
        for path in sorted(snapshot.rglob("*")):
            if path.is_file():  # follows the symlink into blobs/: a complete download
                files.append(RepoFile(path.relative_to(snapshot).as_posix(), path.stat().st_size, None))
    return RepoListing(repo_id, sha, tuple(files), offline_reason=reason)


def load_repo(
    repo_id: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    progress: Progress | None = None,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    listing: RepoListing | None = None,
) -> ModelSpec:
    """Read a Hub repo's config.json and safetensors headers into a ModelSpec with its checkpoint."""
    where = f"{repo_id}" + (f"@{revision}" if revision else "")
    if listing is None:
        listing = repo_listing(repo_id, revision=revision, token=token)
    local = listing.offline_reason
    if local is None and not listing.has("config.json"):
        raise HubError(
            f"{repo_id}: the repository has no config.json and no GGUF model file{_rev(revision)}: "
            "qwenfit reads a safetensors checkpoint with its config.json, or a GGUF",
            repo_id=repo_id,
        )
    config = read_config_file(_download(repo_id, "config.json", revision, token, local=local))
    spec = spec_from_config(config, source=f"{where}/config.json", name=repo_id)

    if local is None and not listing.has(INDEX_NAME) and not listing.has(SINGLE_NAME):
        raise HubError(
            f"{repo_id}: no {INDEX_NAME}, no {SINGLE_NAME} and no GGUF model file: not a safetensors "
            f"repository{_rev(revision)}; give the repo of the checkpoint (or of its GGUFs)",
            repo_id=repo_id,
        )
    # from the cache: config.json and the index are downloaded together, so a cached config.json
    # without a cached index is a single-file checkpoint
    has_index = listing.has(INDEX_NAME)
    index_path = _download(repo_id, INDEX_NAME, revision, token, local=local) if has_index else None
    if index_path is not None:
        weight_map = read_index(index_path)
        shards = sorted(set(weight_map.values()))
    else:
        weight_map, shards = {}, [SINGLE_NAME]
    headers: dict[str, SafetensorsHeader] = {}
    for i, shard in enumerate(shards):
        headers[shard] = _shard_header(
            repo_id, shard, revision, token, max_header_bytes, required=bool(weight_map), local=local
        )
        log.info("%s: read the header of %s (%d/%d)", repo_id, shard, i + 1, len(shards))
        if progress is not None:
            progress(i + 1, len(shards), shard)
    if weight_map:
        check_shards_against_index(weight_map, headers, source=f"{where}/{INDEX_NAME}")
    checkpoint = StoredCheckpoint(
        format="safetensors",
        files=tuple(headers),
        tensors=tuple(t for h in headers.values() for t in h.tensors),
        file_bytes=sum(h.header_bytes + h.data_bytes for h in headers.values()),
        quantization=quantization_of(config),
    )
    return attach(spec, checkpoint)


def _download(
    repo_id: str, filename: str, revision: str | None, token: str | bool | None, *, local: str | None
) -> str:
    """A small file through hf_hub_download (cache- and offline-aware). ``local``: why the Hub cannot
    be asked — then only the cache is read (no retries, no waiting)."""
    h = hf()
    errors = h.errors
    try:
        return str(
            h.hf_hub_download(
                repo_id, filename, revision=revision, token=token, local_files_only=local is not None
            )
        )
    except errors.LocalEntryNotFoundError as exc:  # offline or unreachable, and not in the cache
        if local is not None:
            raise _not_cached(repo_id, filename, revision, local) from None
        raise hub_error(exc, repo_id, filename, revision) from None
    except errors.EntryNotFoundError:  # the Hub says 404 for this file
        raise HubError(
            f"{repo_id}: the repository has no {filename}" + _rev(revision), repo_id=repo_id
        ) from None
    except Exception as exc:
        raise hub_error(exc, repo_id, filename, revision) from None


def _not_cached(repo_id: str, filename: str, revision: str | None, reason: str) -> HubError:
    """The one message for "needed from the Hub, which cannot be asked"."""
    if "HF_HUB_OFFLINE" in reason:
        todo = "unset HF_HUB_OFFLINE to read it (header reads are range requests of a few hundred KB)"
    else:
        todo = "check the network, a proxy or HF_ENDPOINT, then try again"
    return HubError(
        f"{repo_id}: {filename} is not in the local Hugging Face cache and {reason}{_rev(revision)}; {todo}",
        repo_id=repo_id,
    )


def not_cached(listing: RepoListing, filename: str, revision: str | None) -> HubError:
    """:func:`_not_cached` for a listing that came from the cache."""
    return _not_cached(listing.repo_id, filename, revision, listing.offline_reason or "the Hub was not asked")


def _shard_header(
    repo_id: str,
    shard: str,
    revision: str | None,
    token: str | bool | None,
    cap: int,
    *,
    required: bool,
    local: str | None,
) -> SafetensorsHeader:
    h = hf()
    cached = h.try_to_load_from_cache(repo_id, shard, revision=revision)
    if isinstance(cached, str):
        return read_header(cached, max_header_bytes=cap)
    if local is not None:
        raise _not_cached(repo_id, shard, revision, local)
    source = f"{repo_id}/{shard}"
    try:
        first, total = read_range(repo_id, shard, revision, token, 0, FIRST_READ_BYTES - 1)
        if len(first) < 8:
            raise CheckpointError(f"is {len(first)} bytes: too short to be safetensors", source=source)
        (n,) = struct.unpack("<Q", first[:8])
        if n > cap:
            raise CheckpointError(
                f"declares a {n:,}-byte header, above the {cap:,}-byte limit", source=source
            )
        if total is not None and n > total - 8:
            raise CheckpointError(
                f"declares a {n:,}-byte header but the file has {total:,} bytes", source=source
            )
        header = first[8 : 8 + n]
        if len(header) < n:
            rest, _ = read_range(repo_id, shard, revision, token, 8 + len(header), 8 + n - 1)
            header += rest
        if len(header) != n:
            raise CheckpointError(f"the server sent {len(header)} of the {n} header bytes", source=source)
    except QwenfitError:
        raise
    except Exception as exc:
        if isinstance(exc, h.errors.EntryNotFoundError) and not required:
            raise HubError(
                f"{repo_id}: no {INDEX_NAME} and no {SINGLE_NAME}: not a safetensors repository"
                + _rev(revision),
                repo_id=repo_id,
            ) from None
        raise hub_error(exc, repo_id, shard, revision) from None
    data = None if total is None else total - 8 - n
    tensors, metadata, data_bytes = parse_header(header, source=source, file=shard, data_bytes=data)
    return SafetensorsHeader(shard, tensors, metadata, 8 + n, data_bytes)


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def read_range(
    repo_id: str, filename: str, revision: str | None, token: str | bool | None, start: int, end: int
) -> tuple[bytes, int | None]:
    """Bytes start..end (inclusive) of a repo file, and the file's total size when the server says."""
    h = hf()
    url = h.hf_hub_url(repo_id, filename, revision=revision)
    headers = h.utils.build_hf_headers(token=token)
    headers["range"] = f"bytes={start}-{end}"
    response = h.utils.get_session().get(url, headers=headers, follow_redirects=True, timeout=TIMEOUT_S)
    h.utils.hf_raise_for_status(response)
    content = response.content
    total = None
    m = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
    if m and m.group(3) != "*":
        total = int(m.group(3))
    elif response.status_code == 200:  # server ignored the range: it sent the whole file
        total = len(content)
        content = content[start : end + 1]
    return content, total


def _rev(revision: str | None) -> str:
    return f" (revision {revision})" if revision else ""


def hub_error(exc: BaseException, repo_id: str, filename: str, revision: str | None) -> HubError:
    """One clear message per failure, naming the repo and what to do."""
    errors = hf().errors
    rev = _rev(revision)
    if isinstance(exc, errors.GatedRepoError):
        msg = (
            f"{repo_id} is gated: accept its license on the Hub with your account, then pass token=... "
            "or set HF_TOKEN"
        )
    elif isinstance(exc, errors.RepositoryNotFoundError):
        msg = (
            f"{repo_id}: repository not found{rev}, or private: check the id, or pass token=... / set "
            "HF_TOKEN for a private repo"
        )
    elif isinstance(exc, errors.RevisionNotFoundError):
        msg = f"{repo_id}: revision {revision!r} not found"
    elif isinstance(exc, (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled)) or (
        is_offline() and isinstance(exc, FileNotFoundError)
    ):
        msg = (
            f"{repo_id}: {filename} is not in the local Hugging Face cache and the Hub cannot be reached"
            f"{' (HF_HUB_OFFLINE is set)' if is_offline() else ''}{rev}; connect once or unset HF_HUB_OFFLINE"
        )
    elif unreachable(exc):
        msg = (
            f"{repo_id}: the Hub at {endpoint()} cannot be reached while reading {filename}{rev} "
            f"({_what(exc)}); check the network, a proxy or HF_ENDPOINT, then try again"
        )
    elif isinstance(exc, errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        msg = f"{repo_id}: the Hub answered HTTP {status} for {filename}{rev}: {_first_line(exc)}"
    else:
        msg = (
            f"{repo_id}: reading {filename}{rev} failed ({_what(exc)}); "
            "the connection may have dropped: try again"
        )
    return HubError(msg, repo_id=repo_id)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _what(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_first_line(exc)}"
