"""Model sources on the Hugging Face Hub, read through huggingface_hub only.

config.json and the shard index come through ``hf_hub_download`` (so the local HF cache, tokens,
``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` behave as everywhere else). Safetensors headers are read
with HTTP range requests over huggingface_hub's own session (``get_session``, ``hf_hub_url``,
``build_hf_headers``, ``hf_raise_for_status``) — a few hundred KB per shard instead of the
weights — and validated by the same parser as local files; a shard already in the local cache is
read from disk with no request. huggingface_hub is imported only when a repo is actually asked for.
"""

from __future__ import annotations

import logging
import re
import struct
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

__all__ = ["is_repo_id", "load_repo"]

log = logging.getLogger("qwenfit.hub")

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}/[\w.\-]{1,96}$")
FIRST_READ_BYTES = 100_001  # one request covers most headers (huggingface_hub uses the same size)


def is_repo_id(text: str) -> bool:
    """``owner/name`` as the Hub spells repository ids."""
    return bool(_REPO_ID.match(text)) and ".." not in text and not text.endswith(".")


def load_repo(
    repo_id: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    progress: Progress | None = None,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
) -> ModelSpec:
    """Read a Hub repo's config.json and safetensors headers into a ModelSpec with its checkpoint."""
    where = f"{repo_id}" + (f"@{revision}" if revision else "")
    config_path = _download(repo_id, "config.json", revision, token, required=True)
    assert config_path is not None
    config = read_config_file(config_path)
    spec = spec_from_config(config, source=f"{where}/config.json", name=repo_id)

    index_path = _download(repo_id, INDEX_NAME, revision, token, required=False)
    if index_path is not None:
        weight_map = read_index(index_path)
        shards = sorted(set(weight_map.values()))
    else:
        weight_map, shards = {}, [SINGLE_NAME]
    headers: dict[str, SafetensorsHeader] = {}
    for i, shard in enumerate(shards):
        headers[shard] = _shard_header(
            repo_id, shard, revision, token, max_header_bytes, required=bool(weight_map)
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


def _hf() -> Any:
    try:
        import huggingface_hub
    except ImportError:  # pragma: no cover - a declared dependency
        raise QwenfitError(
            "reading from the Hugging Face Hub needs huggingface_hub: pip install 'qwenfit[hub]'"
        ) from None
    return huggingface_hub


def _download(
    repo_id: str, filename: str, revision: str | None, token: str | bool | None, *, required: bool
) -> str | None:
    """A small file through hf_hub_download (cache- and offline-aware); None if optional and absent."""
    hf = _hf()
    errors = hf.errors
    try:
        return str(hf.hf_hub_download(repo_id, filename, revision=revision, token=token))
    except errors.LocalEntryNotFoundError as exc:  # offline or unreachable, and not in the cache
        if not required and (
            _cached_absent(repo_id, filename, revision)
            or isinstance(hf.try_to_load_from_cache(repo_id, SINGLE_NAME, revision=revision), str)
        ):
            return None  # the cache knows this optional file is absent, or holds the single-file layout
        raise _hub_error(exc, repo_id, filename, revision) from None
    except errors.EntryNotFoundError:  # the Hub says 404 for this file
        if not required:
            return None
        raise HubError(
            f"{repo_id}: the repository has no {filename}" + _rev(revision), repo_id=repo_id
        ) from None
    except Exception as exc:
        raise _hub_error(exc, repo_id, filename, revision) from None


def _cached_absent(repo_id: str, filename: str, revision: str | None) -> bool:
    """The cache holds a marker that the file does not exist in the repo."""
    found = _hf().try_to_load_from_cache(repo_id, filename, revision=revision)
    return found is not None and not isinstance(found, str)


def _offline() -> bool:
    return bool(_hf().constants.is_offline_mode())


def _shard_header(
    repo_id: str, shard: str, revision: str | None, token: str | bool | None, cap: int, *, required: bool
) -> SafetensorsHeader:
    hf = _hf()
    cached = hf.try_to_load_from_cache(repo_id, shard, revision=revision)
    if isinstance(cached, str):
        return read_header(cached, max_header_bytes=cap)
    if _offline():
        raise HubError(
            f"{repo_id}: {shard} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
            "unset HF_HUB_OFFLINE to read its header (a range request of a few hundred KB)",
            repo_id=repo_id,
        )
    source = f"{repo_id}/{shard}"
    try:
        first, total = _range(repo_id, shard, revision, token, 0, FIRST_READ_BYTES - 1)
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
            rest, _ = _range(repo_id, shard, revision, token, 8 + len(header), 8 + n - 1)
            header += rest
        if len(header) != n:
            raise CheckpointError(f"the server sent {len(header)} of the {n} header bytes", source=source)
    except QwenfitError:
        raise
    except Exception as exc:
        if isinstance(exc, _hf().errors.EntryNotFoundError) and not required:
            raise HubError(
                f"{repo_id}: no {INDEX_NAME} and no {SINGLE_NAME}: not a safetensors repository"
                + _rev(revision),
                repo_id=repo_id,
            ) from None
        raise _hub_error(exc, repo_id, shard, revision) from None
    data = None if total is None else total - 8 - n
    tensors, metadata, data_bytes = parse_header(header, source=source, file=shard, data_bytes=data)
    return SafetensorsHeader(shard, tensors, metadata, 8 + n, data_bytes)


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _range(
    repo_id: str, filename: str, revision: str | None, token: str | bool | None, start: int, end: int
) -> tuple[bytes, int | None]:
    """Bytes start..end (inclusive) of a repo file, and the file's total size when the server says."""
    hf = _hf()
    url = hf.hf_hub_url(repo_id, filename, revision=revision)
    headers = hf.utils.build_hf_headers(token=token)
    headers["range"] = f"bytes={start}-{end}"
    response = hf.utils.get_session().get(url, headers=headers, follow_redirects=True, timeout=30)
    hf.utils.hf_raise_for_status(response)
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


def _hub_error(exc: Exception, repo_id: str, filename: str, revision: str | None) -> HubError:
    """One clear message per failure, naming the repo and what to do."""
    errors = _hf().errors
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
        _offline() and isinstance(exc, FileNotFoundError)
    ):
        msg = (
            f"{repo_id}: {filename} is not in the local Hugging Face cache and the Hub cannot be reached"
            f"{' (HF_HUB_OFFLINE is set)' if _offline() else ''}{rev}; connect once or unset HF_HUB_OFFLINE"
        )
    elif isinstance(exc, errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        msg = f"{repo_id}: the Hub answered HTTP {status} for {filename}{rev}: {_first_line(exc)}"
    else:
        msg = (
            f"{repo_id}: reading {filename}{rev} failed ({type(exc).__name__}: {_first_line(exc)}); "
            "the connection may have dropped: try again"
        )
    return HubError(msg, repo_id=repo_id)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
