"""Refresh the published-artifacts catalog from the Hugging Face Hub (``qwenfit artifacts --refresh``).

For every Hub repo of the selected catalog models (``data/artifacts/*.yaml`` through
:func:`qwenfit.loaders.artifacts.published`: kinds gguf-repo, safetensors-repo, mlx-repo; Ollama tags
and LM Studio keys are not on the Hub and are skipped), the repo is listed with
``HfApi.model_info(files_metadata=True)`` — exact sizes, LFS sha256 and the commit sha, one request —
and every text GGUF's header is read by HTTP range requests (:func:`qwenfit.loaders.hub_gguf.read_hub_gguf`,
the parser of local files) for each tensor's ggml type. One JSON record per repo is written
atomically to :func:`qwenfit.loaders.artifacts.refresh_dir` as ``<owner>--<name>.json``::

    {"repo": "<owner/name>", "revision": "<sha>", "retrieved": "<YYYY-MM-DD>",
     "source": "huggingface_hub",
     "files": [{"name": "<path in repo>", "size_bytes": <int>, "sha256": "<hex or null>",
                "tensor_types": {"<gguf tensor name>": "<ggml type>"} or null}]}

A repo that fails (not found, gated, unreachable, a corrupt header) is reported and keeps its
previous record, if any; the others go on. huggingface_hub is imported only when a refresh runs.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwenfit.errors import HubError, QwenfitError
from qwenfit.loaders.hub import RepoListing, is_offline, is_repo_id, repo_listing
from qwenfit.loaders.hub_gguf import GGUFRead, read_hub_gguf

__all__ = ["RefreshReport", "RepoRefresh", "record_name", "refresh"]

HUB_KINDS = ("gguf-repo", "safetensors-repo", "mlx-repo")
_NOT_ON_HUB = {
    "ollama-tag": "an Ollama library tag, not a Hugging Face repo: nothing to list",
    "lmstudio-key": "an LM Studio catalog key, not a Hugging Face repo: nothing to list",
}
# files whose header carries no model tensors worth typing: vision projectors, importance matrices
_NO_TYPES = ("mmproj", "imatrix")

RefreshProgress = Callable[[int, int, str], None]  # (done, total, what)


@dataclass(frozen=True, slots=True)
class RepoRefresh:
    """What the refresh of one repo did."""

    repo: str
    ok: bool
    reason: str = ""  # why it failed (one line); "" when ok
    model: str | None = None  # the catalog model it belongs to (None: a repo given by id only)
    revision: str | None = None  # the commit sha the record describes
    files: int = 0  # files listed
    ggufs_read: int = 0  # GGUF headers read (each split part counts)
    header_bytes: int = 0  # bytes downloaded for those headers (0 for files in the local HF cache)
    path: str | None = None  # the record written


@dataclass(frozen=True, slots=True)
class RefreshReport:
    """Per repo: ok or failed and why, files listed, GGUF headers read, bytes downloaded for them;
    ``skipped``: (artifact id, why) of the catalog entries that are not Hub repos."""

    out_dir: str
    repos: tuple[RepoRefresh, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> tuple[RepoRefresh, ...]:
        return tuple(r for r in self.repos if r.ok)

    @property
    def failed(self) -> tuple[RepoRefresh, ...]:
        return tuple(r for r in self.repos if not r.ok)

    @property
    def header_bytes(self) -> int:
        return sum(r.header_bytes for r in self.repos)

    def __str__(self) -> str:
        lines = [
            f"refreshed {len(self.ok)} of {len(self.repos)} Hub repos into {self.out_dir} "
            f"({self.header_bytes:,} bytes of GGUF headers read)"
        ]
        for r in self.repos:
            if r.ok:
                lines.append(f"  ok      {r.repo}: {r.files} files, {r.ggufs_read} GGUF headers")
            else:
                lines.append(f"  failed  {r.repo}: {r.reason}")
        lines.extend(f"  skipped {rid}: {why}" for rid, why in self.skipped)
        return "\n".join(lines)


def record_name(repo_id: str) -> str:
    """``owner/name`` -> ``owner--name.json``."""
    return repo_id.replace("/", "--") + ".json"


def refresh(
    models: Sequence[str] | None = None,
    repos: Sequence[str] | None = None,
    *,
    token: str | bool | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: RefreshProgress | None = None,
    workers: int = 4,
) -> RefreshReport:
    """Re-read the Hub repos of ``models`` (catalog names, any spelling ``qwenfit.load`` accepts) and
    ``repos`` (repo ids); neither: every Hub repo of the catalog.

    ``progress(0, n, repo)`` after a repo is listed (n: its GGUF headers to read), then
    ``progress(i, n, "repo/file")`` after each header. ``workers`` header reads run at once.
    Offline (``HF_HUB_OFFLINE``): :class:`HubError` before anything is read or written.
    """
    from qwenfit.loaders.artifacts import clear_caches, refresh_dir

    targets, skipped = _select(models, repos)
    if is_offline():
        raise HubError(
            "HF_HUB_OFFLINE is set: refreshing the artifacts catalog lists repos on the Hugging Face Hub; "
            "unset HF_HUB_OFFLINE and try again",
            repo_id=", ".join(repo for repo, _ in targets),
        )
    out = Path(out_dir) if out_dir is not None else refresh_dir()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QwenfitError(
            f"{out}: cannot create the folder for refreshed records ({exc.strerror or exc}); "
            "give out_dir= a writable folder or set QWENFIT_CACHE"
        ) from None
    done = tuple(_refresh_repo(repo, model, token, out, progress, max(1, workers)) for repo, model in targets)
    clear_caches()
    return RefreshReport(str(out), done, skipped)


def _select(
    models: Sequence[str] | None, repos: Sequence[str] | None
) -> tuple[list[tuple[str, str | None]], tuple[tuple[str, str], ...]]:
    """(repo id, catalog model) to refresh, in catalog order then as given; (id, why) skipped."""
    from qwenfit.loaders import catalog
    from qwenfit.loaders.artifacts import published

    everything = published()
    if models is None and repos is None:
        chosen = list(everything)
    else:
        chosen = []
        for name in models or ():
            entry = catalog.find(name)
            if entry is None:
                raise catalog.unknown_model(name)
            chosen.extend(r for r in everything if r.model == entry.name)
    by_id = {r.id.casefold(): r for r in everything}
    targets: dict[str, tuple[str, str | None]] = {}
    skipped: dict[str, str] = {}
    for r in chosen:
        if r.kind in HUB_KINDS:
            targets.setdefault(r.id, (r.id, r.model))
        else:
            skipped.setdefault(r.id, _NOT_ON_HUB.get(r.kind, f"kind {r.kind}: not a Hugging Face repo"))
    for rid in repos or ():
        known = by_id.get(rid.strip().casefold())
        if known is not None and known.kind not in HUB_KINDS:
            skipped.setdefault(known.id, _NOT_ON_HUB.get(known.kind, f"kind {known.kind}"))
        elif known is not None:
            targets.setdefault(known.id, (known.id, known.model))
        elif is_repo_id(rid.strip()):
            targets.setdefault(rid.strip(), (rid.strip(), None))
        else:
            skipped.setdefault(rid, "not a Hugging Face repo id (owner/name)")
    return list(targets.values()), tuple(skipped.items())


def _reads_types(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return name.endswith(".gguf") and not any(word in base for word in _NO_TYPES)


def _refresh_repo(
    repo: str,
    model: str | None,
    token: str | bool | None,
    out: Path,
    progress: RefreshProgress | None,
    workers: int,
) -> RepoRefresh:
    listing: RepoListing | None = None
    reads: dict[str, GGUFRead] = {}
    try:
        listing = repo_listing(repo, token=token)
        if listing.offline_reason is not None:
            raise HubError(f"{repo}: {listing.offline_reason}; a refresh needs the Hub", repo_id=repo)
        _read_headers(listing, token, progress, workers, reads)
        record = _record(listing, reads)
        path = out / record_name(repo)
        _write_atomic(path, json.dumps(record, indent=1) + "\n")
    except QwenfitError as exc:
        return _failed(repo, model, listing, reads, str(exc).strip().splitlines()[0])
    except OSError as exc:  # writing the record
        return _failed(repo, model, listing, reads, f"{out}: cannot write the record ({exc.strerror or exc})")
    return RepoRefresh(
        repo,
        True,
        model=model,
        revision=listing.revision,
        files=len(listing.files),
        ggufs_read=len(reads),
        header_bytes=sum(r.downloaded_bytes for r in reads.values()),
        path=str(path),
    )


def _failed(
    repo: str, model: str | None, listing: RepoListing | None, reads: dict[str, GGUFRead], reason: str
) -> RepoRefresh:
    return RepoRefresh(
        repo,
        False,
        reason=reason,
        model=model,
        revision=listing.revision if listing is not None else None,
        files=len(listing.files) if listing is not None else 0,
        ggufs_read=len(reads),
        header_bytes=sum(r.downloaded_bytes for r in reads.values()),
    )


def _read_headers(
    listing: RepoListing,
    token: str | bool | None,
    progress: RefreshProgress | None,
    workers: int,
    reads: dict[str, GGUFRead],
) -> None:
    """Every typed GGUF's header into ``reads``, ``workers`` at a time; the first failure cancels
    the reads not started and is raised."""
    names = [f.name for f in listing.files if _reads_types(f.name)]
    if progress is not None:
        progress(0, len(names), listing.repo_id)
    if not names:
        return
    pool = ThreadPoolExecutor(max_workers=min(workers, len(names)), thread_name_prefix="qwenfit-refresh")
    try:
        futures: dict[Future[GGUFRead], str] = {
            pool.submit(read_hub_gguf, listing, name, revision=listing.revision, token=token): name
            for name in names
        }
        for future in as_completed(futures):
            reads[futures[future]] = future.result()
            if progress is not None:
                progress(len(reads), len(names), f"{listing.repo_id}/{futures[future]}")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _record(listing: RepoListing, reads: dict[str, GGUFRead]) -> dict[str, Any]:
    files = []
    for f in listing.files:
        read = reads.get(f.name)
        types = {t.name: t.ggml_type for t in read.header.tensors} if read is not None else None
        files.append({"name": f.name, "size_bytes": f.size_bytes, "sha256": f.sha256, "tensor_types": types})
    return {
        "repo": listing.repo_id,
        "revision": listing.revision,
        "retrieved": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "source": "huggingface_hub",
        "files": files,
    }


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path`` (os.replace is
    atomic on one file system): a reader sees the old record or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
