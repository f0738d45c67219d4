"""A fake Hugging Face Hub HTTP server for tests (standard library only).

It speaks the small part of the Hub protocol that ``huggingface_hub`` uses to fetch files and
safetensors headers, so tests can drive the real client (``hf_hub_download``,
``HfApi.parse_safetensors_file_metadata``, ``HfApi.get_safetensors_metadata``, ``model_info``,
``list_repo_files``) against ``http://127.0.0.1:<ephemeral port>`` with no internet.

Import it as ``from fakehub import FakeHub``: ``tests/`` is on ``sys.path`` (``tests/loaders/conftest.py``
makes sure of it). Most tests should use the ``fake_hub`` fixture from that conftest instead of
starting a server by hand; it also points ``huggingface_hub`` at the server and isolates the cache.

Routes (all served from memory):

* ``HEAD|GET /{repo_id}/resolve/{revision}/{filename}``: the file, with exact single-range semantics
  (``bytes=a-b``, ``bytes=a-``, ``bytes=-n`` -> 206 + ``Content-Range``; unsatisfiable -> 416 with
  ``Content-Range: bytes */size``; malformed or multi-range headers are ignored -> 200, as RFC 9110
  allows), plus ``ETag``, ``X-Repo-Commit``, ``Content-Length``, ``Accept-Ranges`` and, for LFS files,
  ``X-Linked-Etag`` / ``X-Linked-Size``. With ``lfs_redirect=True`` LFS files answer 302 to a fake CDN
  on ``http://localhost:<same port>`` (a different origin, like the real CDN: ``huggingface_hub`` then
  takes the metadata from the 302 and drops the ``Authorization`` header when it downloads).
* ``GET /cdn-lfs/...``: that fake CDN (no auth, ranges, no ``X-Repo-Commit``).
* ``GET /api/models/{repo_id}[/revision/{rev}]`` (model_info; ``?blobs=true`` adds each file's size,
  blob id and LFS sha256, as ``model_info(files_metadata=True)`` asks) and
  ``GET /api/models/{repo_id}/tree/{rev}[/{path}]`` (list_repo_tree / list_repo_files): paginated like
  the Hub (``tree_page_size`` entries per page, ``tree_expand_page_size`` with ``?expand=true``; the
  next page in a ``Link: <...&cursor=N>; rel="next"`` header), ``?expand=true`` adding ``lastCommit``
  and ``securityFileStatus`` to each entry.

Errors carry the headers ``huggingface_hub.utils.hf_raise_for_status`` maps to exception classes:
``X-Error-Code: RepoNotFound | GatedRepo | RevisionNotFound | EntryNotFound`` and ``X-Error-Message``
(plus a JSON ``{"error": ...}`` body on GET).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import socketserver
import struct
import sys
import threading
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

HOST = "127.0.0.1"
CDN_HOST = "localhost"  # same socket, different origin (see module docstring)
DEFAULT_LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".h5", ".msgpack", ".onnx", ".npz")
MAX_FILE_BYTES = 64 * 1024 * 1024  # per file: the server keeps everything in memory
MAX_LOG_ENTRIES = 100_000  # beyond this the server answers 507, so a runaway client is noticed
MAX_REQUEST_BODY = 1024 * 1024
_TOKEN_PREFIX = "bearer "
_UNSATISFIABLE = "unsatisfiable"

FileContent = bytes | str | dict | list


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob (what the Hub sends as ETag for non-LFS files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One ``Range`` header against a body of ``size`` bytes.

    Returns ``(first, last)`` (inclusive), ``"unsatisfiable"`` (-> 416), or ``None`` when the header must
    be ignored (malformed, not ``bytes``, several ranges, or ``last < first``) -> 200 with the full body.
    """
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header, flags=re.IGNORECASE)
    if match is None:
        return None
    first_s, last_s = match.groups()
    if not first_s and not last_s:
        return None
    if not first_s:  # suffix range: the last n bytes
        n = int(last_s)
        if n == 0 or size == 0:
            return _UNSATISFIABLE
        return max(0, size - n), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last_s and last < first:
        return None
    if first >= size:
        return _UNSATISFIABLE
    return first, min(last, size - 1)


@dataclass(frozen=True)
class FakeFile:
    """One file of a commit. ``etag`` is what the ``ETag`` header carries."""

    name: str
    data: bytes
    lfs: bool
    sha256: str
    git_sha1: str  # blob id of the content (non-LFS) or of the LFS pointer (LFS)
    pointer_size: int | None

    @classmethod
    def make(cls, name: str, data: bytes, lfs: bool) -> FakeFile:
        sha256 = hashlib.sha256(data).hexdigest()
        if lfs:
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n"
            return cls(name, data, True, sha256, git_blob_sha1(pointer.encode()), len(pointer))
        return cls(name, data, False, sha256, git_blob_sha1(data), None)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def etag(self) -> str:
        return self.git_sha1


@dataclass
class FakeRepo:
    """A registered model repo. Branch names map to commit shas; every commit stays resolvable by sha."""

    repo_id: str
    gated: str | None = None  # None, "auto" or "manual" (both deny content to tokens without access)
    private: bool = False
    authorized_tokens: set[str] = field(default_factory=set)
    lfs_redirect: bool = False
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, FakeFile]] = field(default_factory=dict)

    def sha(self, revision: str = "main") -> str:
        resolved = self.resolve(revision)
        if resolved is None:
            raise KeyError(f"{self.repo_id}: no revision {revision!r}")
        return resolved

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None


@dataclass
class LoggedRequest:
    """One request as the server saw it (headers are the raw request headers, last value wins)."""

    method: str
    path: str  # raw request target, query included
    kind: str  # "resolve", "cdn", "api" or "other"
    repo_id: str | None = None
    revision: str | None = None
    filename: str | None = None
    range: str | None = None
    authorization: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None  # None until the response status line is written
    dropped: bool = False  # the connection was cut by an injected fault


@dataclass
class Fault:
    """An injected failure. ``hits`` counts how many requests it was applied to."""

    repo_id: str | None  # None: any repo
    filename: str | None  # None: any file of the repo (and its /api/ routes)
    status: int | None = None
    error_code: str | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None
    reset: bool = False
    delay: float = 0.0
    times: int | None = None  # None: every matching request
    methods: frozenset[str] = frozenset({"GET", "HEAD"})
    hits: int = 0

    @property
    def kind(self) -> str:
        return "drop" if self.drop_after is not None else "status"

    def matches(self, kind: str, method: str, repo_id: str | None, filename: str | None) -> bool:
        if self.kind != kind or method not in self.methods:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        if self.repo_id is not None and self.repo_id != repo_id:
            return False
        return self.filename is None or self.filename == filename


class _InstantTime:
    """Stands in for the ``time`` module inside huggingface_hub: ``sleep`` only records the delay."""

    def __init__(self, real: Any, record: list[float]) -> None:
        self._real = real
        self._record = record

    def sleep(self, seconds: float) -> None:
        self._record.append(float(seconds))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


# Environment variables of the machine that would change what huggingface_hub does in a test.
_LEAKY_ENV = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_ASSETS_CACHE",
    "HUGGINGFACE_ASSETS_CACHE",
    "HF_XET_CACHE",
    "HF_TOKEN_PATH",
    "HF_OIDC_RESOURCE",
    "HF_OIDC_ID_TOKEN",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN",
    "HF_HUB_ETAG_TIMEOUT",
    "HF_HUB_DOWNLOAD_TIMEOUT",
    "HF_HUB_ENABLE_HF_TRANSFER",
    "HF_DEBUG",
    "HF_STAGING",
    "HUGGINGFACE_CO_STAGING",
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real Hub: exercises connection reuse
    server_version = "FakeHub/1"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms stalls
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.hub.idle_timeout  # bounds idle keep-alive connections
        super().setup()
        self.server.hub._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.hub._track(self.connection, add=False)

    def do_GET(self) -> None:
        self.server.hub._dispatch(self, "GET")

    def do_HEAD(self) -> None:
        self.server.hub._dispatch(self, "HEAD")

    def do_POST(self) -> None:
        self.server.hub._dispatch(self, "POST")

    def do_PUT(self) -> None:
        self.server.hub._dispatch(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.hub._dispatch(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        super().__init__((HOST, 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall for seconds
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        hub = self.hub
        if not hub._slots.acquire(timeout=hub.idle_timeout):
            hub._record_error(f"connection from {client_address} refused: {hub.max_connections} busy")
            self.shutdown_request(request)
            return
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), daemon=True, name="fakehub-conn"
        )
        with hub._lock:
            hub._threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self.hub._lock:
                self.hub._threads.discard(threading.current_thread())
            self.hub._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # client went away, reset, timeout: not a server bug
            return
        self.hub._record_error(traceback.format_exc())


class FakeHub:
    """In-memory fake of the Hugging Face Hub, served on 127.0.0.1 from a daemon thread.

    ``accepted_tokens``: ``None`` accepts any bearer token as a valid account; a collection makes every
    other token answer 401 "Invalid credentials in Authorization header".
    """

    def __init__(
        self,
        *,
        accepted_tokens: Iterable[str] | None = None,
        max_connections: int = 64,
        idle_timeout: float = 5.0,
        tree_page_size: int = 1000,
        tree_expand_page_size: int = 50,
    ) -> None:
        self.accepted_tokens: set[str] | None = set(accepted_tokens) if accepted_tokens is not None else None
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        # the Hub's tree pages: 1000 entries, 50 with expand=true (huggingface_hub hf_api.py
        # _iter_repo_tree_pages docstring)
        self.tree_page_size = tree_page_size
        self.tree_expand_page_size = tree_expand_page_size
        self.server_errors: list[str] = []  # tracebacks of bugs in the fake itself; should stay empty
        self.client_sleeps: list[float] = []  # huggingface_hub retry sleeps (see use_with_huggingface_hub)
        self.hf_home: Path | None = None
        self.cache_dir: Path | None = None
        self._repos: dict[str, FakeRepo] = {}
        self._faults: list[Fault] = []
        self._log: list[LoggedRequest] = []
        self._lock = threading.RLock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._conns: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._monkeypatch: Any = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FakeHub:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self)
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="fakehub"
        )
        self._serve_thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, cut open (keep-alive) connections, join the threads. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout)
        if self._serve_thread is not None:
            self._serve_thread.join(timeout)

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeHub is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The endpoint to give huggingface_hub (``HF_ENDPOINT``)."""
        return f"http://{HOST}:{self.port}"

    @property
    def cdn_url(self) -> str:
        return f"http://{CDN_HOST}:{self.port}"

    # ---------------------------------------------------------------- repos

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, FileContent],
        *,
        revision: str = "main",
        gated: str | bool | None = None,
        private: bool = False,
        authorized_tokens: Iterable[str] = (),
        lfs: Iterable[str] | bool | None = None,
        lfs_redirect: bool = False,
    ) -> FakeRepo:
        """Register (or update) ``repo_id`` and point branch ``revision`` at a commit holding ``files``.

        ``files`` values: bytes, str (UTF-8) or a dict/list (written as JSON). The commit sha is a
        deterministic function of repo id and content; older commits stay resolvable by sha.
        ``gated``: None/False, "auto" or "manual" (True means "auto"). ``authorized_tokens`` may read
        gated/private content. ``lfs``: None = by suffix (``DEFAULT_LFS_SUFFIXES``), True/False = all/none,
        or the exact set of LFS file names. Repo settings are replaced on each call.
        """
        if re.fullmatch(r"[0-9a-f]{40}", revision):
            raise ValueError("revision must be a branch name; commit shas are computed")
        encoded = {name: _encode(name, content) for name, content in files.items()}
        lfs_names = _lfs_names(encoded, lfs)
        commit = {name: FakeFile.make(name, data, name in lfs_names) for name, data in encoded.items()}
        digest = hashlib.sha1(f"fakehub\0{repo_id}\0".encode())
        for name in sorted(commit):
            digest.update(f"{name}\0{commit[name].sha256}\0".encode())
        sha = digest.hexdigest()
        with self._lock:
            repo = self._repos.get(repo_id) or FakeRepo(repo_id)
            repo.gated = "auto" if gated is True else (gated or None)
            repo.private = private
            repo.authorized_tokens = set(authorized_tokens)
            repo.lfs_redirect = lfs_redirect
            repo.commits[sha] = commit
            repo.branches[revision] = sha
            self._repos[repo_id] = repo
        return repo

    def add_repo_from_dir(self, repo_id: str, path: str | os.PathLike[str], **kwargs: Any) -> FakeRepo:
        """Register every regular file under ``path`` (recursively, ``.git/`` skipped), posix names."""
        root = Path(path)
        files: dict[str, bytes] = {}
        for file in sorted(root.rglob("*")):
            rel = file.relative_to(root)
            if not file.is_file() or rel.parts[0] == ".git":
                continue
            if file.stat().st_size > MAX_FILE_BYTES:
                raise ValueError(f"{file} is larger than {MAX_FILE_BYTES} bytes")
            files[rel.as_posix()] = file.read_bytes()
        if not files:
            raise ValueError(f"no files under {root}")
        return self.add_repo(repo_id, files, **kwargs)

    def remove_repo(self, repo_id: str) -> None:
        with self._lock:
            self._repos.pop(repo_id, None)

    def repo(self, repo_id: str) -> FakeRepo:
        with self._lock:
            return self._repos[repo_id]

    def commit_sha(self, repo_id: str, revision: str = "main") -> str:
        return self.repo(repo_id).sha(revision)

    # ---------------------------------------------------------------- failure injection

    def inject(
        self,
        repo_id: str | None = None,
        filename: str | None = None,
        *,
        status: int | None = None,
        error_code: str | None = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
        drop_after: int | None = None,
        reset: bool = False,
        delay: float = 0.0,
        times: int | None = None,
        methods: Iterable[str] | None = None,
    ) -> Fault:
        """Make matching requests fail; returns the ``Fault`` (see ``.hits``).

        Either ``status`` (answer that status, with optional ``X-Error-Code``/message/extra headers; applies
        to HEAD and GET by default, before any access check) or ``drop_after`` (GET only by default: send
        the status line and headers with the full ``Content-Length``, then ``drop_after`` body bytes, then
        close the socket; ``reset=True`` closes with a TCP RST instead of a FIN). ``delay`` seconds are
        waited first (alone, it just slows responses down). ``times``: how many requests it applies to
        (None = all). ``repo_id``/``filename`` None match anything.
        """
        if status is not None and drop_after is not None:
            raise ValueError("a fault either answers a status or drops the connection, not both")
        if drop_after is not None and drop_after < 0:
            raise ValueError("drop_after must be >= 0")
        if methods is None:
            methods = ("GET",) if drop_after is not None else ("GET", "HEAD")
        fault = Fault(
            repo_id=repo_id,
            filename=filename,
            status=status,
            error_code=error_code,
            message=message,
            headers=dict(headers or {}),
            drop_after=drop_after,
            reset=reset,
            delay=min(max(delay, 0.0), 30.0),
            times=times,
            methods=frozenset(m.upper() for m in methods),
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # ---------------------------------------------------------------- request log

    @property
    def requests(self) -> list[LoggedRequest]:
        """A copy of the request log, in arrival order."""
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def count(self, method: str | None = None, filename: str | None = None, kind: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method)
            and (filename is None or r.filename == filename)
            and (kind is None or r.kind == kind)
        )

    def range_reads(self, filename: str | None = None) -> list[LoggedRequest]:
        """GET requests that carried a Range header (on /resolve/ or the fake CDN)."""
        return [
            r
            for r in self.requests
            if r.method == "GET" and r.range is not None and (filename is None or r.filename == filename)
        ]

    # ---------------------------------------------------------------- huggingface_hub wiring

    def use_with_huggingface_hub(self, monkeypatch: Any, hf_home: str | os.PathLike[str]) -> None:
        """Point huggingface_hub (this process and its subprocesses) at this server, isolated.

        ``monkeypatch`` is pytest's (anything with setenv/delenv/setattr). Sets ``HF_ENDPOINT``,
        ``HF_HOME`` (empty, with ``hub/`` as ``HF_HUB_CACHE``) and friends in ``os.environ`` for
        subprocesses, removes machine settings that would leak in (tokens, offline mode, caches), and,
        because huggingface_hub reads all of these once at import, patches the same values into
        ``huggingface_hub.constants`` plus the endpoint captured by ``huggingface_hub.hf_api.api`` (the
        object behind the module-level helpers). ``time.sleep`` inside huggingface_hub's retry loops is
        replaced by a recorder (``self.client_sleeps``) so retries cost no wall time.
        """
        self._monkeypatch = monkeypatch
        home = Path(hf_home)
        cache = home / "hub"
        cache.mkdir(parents=True, exist_ok=True)
        self.hf_home, self.cache_dir = home, cache
        for name in _LEAKY_ENV:
            monkeypatch.delenv(name, raising=False)
        values = {
            "HF_ENDPOINT": self.url,
            "HF_HOME": str(home),
            "HF_HUB_CACHE": str(cache),
            "HF_ASSETS_CACHE": str(home / "assets"),
            "HF_XET_CACHE": str(home / "xet"),
            "HF_TOKEN_PATH": str(home / "token"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        }
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        for name in ("NO_PROXY", "no_proxy"):  # never send 127.0.0.1/localhost through a proxy
            current = os.environ.get(name, "")
            monkeypatch.setenv(name, ",".join(p for p in (current, HOST, CDN_HOST) if p))

        try:
            import huggingface_hub  # noqa: F401
        except ImportError:  # pragma: no cover - the env vars above are all a subprocess needs
            return
        import time

        from huggingface_hub import constants, file_download, hf_api
        from huggingface_hub.utils import _auth, _http

        patches: dict[str, Any] = {
            "ENDPOINT": self.url,
            "HUGGINGFACE_CO_URL_TEMPLATE": self.url + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HOME": str(home),
            "HF_HUB_CACHE": str(cache),
            "HUGGINGFACE_HUB_CACHE": str(cache),
            "HF_ASSETS_CACHE": str(home / "assets"),
            "HUGGINGFACE_ASSETS_CACHE": str(home / "assets"),
            "HF_XET_CACHE": str(home / "xet"),
            "HF_TOKEN_PATH": str(home / "token"),
            "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
            "HF_HUB_OFFLINE": False,
            "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
            "HF_HUB_DISABLE_TELEMETRY": True,
            "HF_DEBUG": False,
            "HF_HUB_ETAG_TIMEOUT": getattr(constants, "DEFAULT_ETAG_TIMEOUT", 10),
            "HF_HUB_DOWNLOAD_TIMEOUT": getattr(constants, "DEFAULT_DOWNLOAD_TIMEOUT", 10),
        }
        for name, value in patches.items():
            if hasattr(constants, name):
                monkeypatch.setattr(constants, name, value)
        monkeypatch.setattr(hf_api.api, "endpoint", self.url)
        for module in (file_download, _http):
            if getattr(module, "time", None) is time:
                monkeypatch.setattr(module, "time", _InstantTime(time, self.client_sleeps))
        if hasattr(_auth, "_OAUTH_REFRESH_CACHE"):
            monkeypatch.setattr(_auth, "_OAUTH_REFRESH_CACHE", None)
        # The shared httpx client is built lazily from the environment (proxies): rebuild it under ours.
        _http.close_session()

    def set_offline(self, offline: bool = True) -> None:
        """Toggle huggingface_hub's offline mode (``HF_HUB_OFFLINE`` env + ``constants.HF_HUB_OFFLINE``)."""
        monkeypatch = self._require_wiring()
        if offline:
            monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        else:
            monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)

    def set_token(self, token: str | None) -> None:
        """Set (or remove) ``HF_TOKEN``, which huggingface_hub reads on every request."""
        monkeypatch = self._require_wiring()
        if token is None:
            monkeypatch.delenv("HF_TOKEN", raising=False)
        else:
            monkeypatch.setenv("HF_TOKEN", token)

    def _require_wiring(self) -> Any:
        if self._monkeypatch is None:
            raise RuntimeError("call use_with_huggingface_hub() first (the fake_hub fixture does)")
        return self._monkeypatch

    # ---------------------------------------------------------------- server side

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def _record_error(self, text: str) -> None:
        with self._lock:
            if len(self.server_errors) < 1000:
                self.server_errors.append(text)

    def _take_fault(self, kind: str, method: str, repo_id: str | None, filename: str | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(kind, method, repo_id, filename):
                    fault.hits += 1
                    return fault
        return None

    def _dispatch(self, h: _Handler, method: str) -> None:
        auth = h.headers.get("Authorization")
        entry = LoggedRequest(
            method=method,
            path=h.path,
            kind="other",
            range=h.headers.get("Range"),
            authorization=auth,
            headers={k: v for k, v in h.headers.items()},
        )
        try:
            length = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > MAX_REQUEST_BODY:
            h.close_connection = True
        elif length > 0:
            h.rfile.read(length)
        try:
            with self._lock:
                if len(self._log) >= MAX_LOG_ENTRIES:
                    self._error(h, method, entry, 507, None, "fakehub request log is full")
                    return
                self._log.append(entry)
            raw, _, query = h.path.partition("?")
            if raw.startswith("/api/models/"):
                self._api(h, method, raw[len("/api/models/") :], query, entry)
            elif raw.startswith("/cdn-lfs/"):
                self._cdn(h, method, raw[len("/cdn-lfs/") :], entry)
            elif "/resolve/" in raw:
                self._resolve(h, method, raw, entry)
            else:
                self._error(h, method, entry, 404, None, "Not Found")
        except OSError:
            h.close_connection = True  # the client went away
        except Exception:
            self._record_error(traceback.format_exc())
            h.close_connection = True
            if entry.status is None:
                with contextlib.suppress(Exception):
                    self._error(h, method, entry, 500, None, "fakehub internal error")

    def _token(self, entry: LoggedRequest) -> str | None:
        auth = entry.authorization
        if auth and auth.lower().startswith(_TOKEN_PREFIX):
            return auth[len(_TOKEN_PREFIX) :].strip() or None
        return None

    def _access(
        self, entry: LoggedRequest, repo: FakeRepo | None, *, content: bool
    ) -> tuple[int, str | None, str] | None:
        token = self._token(entry)
        if token is not None and self.accepted_tokens is not None and token not in self.accepted_tokens:
            return 401, None, "Invalid credentials in Authorization header"
        if repo is None:
            return 404, "RepoNotFound", "Repository not found"
        has_access = token is not None and token in repo.authorized_tokens
        if repo.private and not has_access:
            return (401 if token is None else 404), "RepoNotFound", "Repository not found"
        if content and repo.gated and not has_access:
            if token is None:
                return (
                    401,
                    "GatedRepo",
                    f"Access to model {repo.repo_id} is restricted. You must have access to it and be"
                    " authenticated to access it. Please log in.",
                )
            return (
                403,
                "GatedRepo",
                f"Access to model {repo.repo_id} is restricted and you are not in the authorized list."
                f" Visit {self.url}/{repo.repo_id} to ask for access.",
            )
        return None

    def _apply_status_fault(
        self, h: _Handler, method: str, entry: LoggedRequest, repo_id: str | None, filename: str | None
    ) -> bool:
        fault = self._take_fault("status", method, repo_id, filename)
        if fault is None:
            return False
        if fault.delay:
            self._stopping.wait(fault.delay)
        if fault.status is None:
            return False
        message = fault.message or f"fakehub: injected HTTP {fault.status}"
        self._error(h, method, entry, fault.status, fault.error_code, message, fault.headers)
        return True

    def _resolve(self, h: _Handler, method: str, raw: str, entry: LoggedRequest) -> None:
        repo_part, _, rest = raw[1:].partition("/resolve/")
        rev_part, _, file_part = rest.partition("/")
        repo_id, revision, filename = unquote(repo_part), unquote(rev_part), unquote(file_part)
        entry.kind, entry.repo_id, entry.revision, entry.filename = "resolve", repo_id, revision, filename
        if method not in ("GET", "HEAD"):
            self._error(h, method, entry, 405, None, "Method not allowed")
            return
        if self._apply_status_fault(h, method, entry, repo_id, filename):
            return
        with self._lock:
            repo = self._repos.get(repo_id)
            denied = self._access(entry, repo, content=True)
            sha = repo.resolve(revision) if repo is not None and denied is None else None
            file = repo.commits[sha].get(filename) if repo is not None and sha is not None else None
        if denied is not None:
            self._error(h, method, entry, *denied)
            return
        assert repo is not None
        if sha is None:
            self._error(h, method, entry, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        if file is None:
            headers = {"X-Repo-Commit": sha}
            self._error(h, method, entry, 404, "EntryNotFound", "Entry not found", headers)
            return
        headers = {"X-Repo-Commit": sha, "ETag": f'"{file.etag}"', "Content-Type": _content_type(filename)}
        if file.lfs:
            headers["X-Linked-Etag"] = f'"{file.sha256}"'
            headers["X-Linked-Size"] = str(file.size)
            if repo.lfs_redirect:
                headers["Location"] = (
                    f"{self.cdn_url}/cdn-lfs/{quote(repo_id, safe='')}/{sha}/{quote(filename)}"
                )
                self._send(h, method, entry, 302, headers, b"")
                return
        self._serve_bytes(h, method, entry, file.data, headers)

    def _cdn(self, h: _Handler, method: str, rest: str, entry: LoggedRequest) -> None:
        repo_part, _, rest = rest.partition("/")
        sha, _, file_part = rest.partition("/")
        repo_id, filename = unquote(repo_part), unquote(file_part)
        entry.kind, entry.repo_id, entry.revision, entry.filename = "cdn", repo_id, sha, filename
        with self._lock:
            repo = self._repos.get(repo_id)
            file = repo.commits.get(sha, {}).get(filename) if repo is not None else None
        if method not in ("GET", "HEAD") or file is None:
            self._error(h, method, entry, 404 if file is None else 405, None, "Not Found")
            return
        headers = {"ETag": f'"{file.sha256}"', "Content-Type": "application/octet-stream"}
        self._serve_bytes(h, method, entry, file.data, headers)

    def _serve_bytes(
        self, h: _Handler, method: str, entry: LoggedRequest, data: bytes, headers: dict[str, str]
    ) -> None:
        size = len(data)
        headers["Accept-Ranges"] = "bytes"
        status, first, last = 200, 0, size - 1
        if entry.range is not None:
            parsed = parse_range(entry.range, size)
            if parsed == _UNSATISFIABLE:
                headers["Content-Range"] = f"bytes */{size}"
                self._send(h, method, entry, 416, headers, b"")
                return
            if isinstance(parsed, tuple):
                status, (first, last) = 206, parsed
                headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        body = data[first : last + 1]
        drop = self._take_fault("drop", method, entry.repo_id, entry.filename)
        if drop is not None and drop.delay:
            self._stopping.wait(drop.delay)
        self._send(h, method, entry, status, headers, body, drop=drop)

    def _api(self, h: _Handler, method: str, rest: str, query: str, entry: LoggedRequest) -> None:
        entry.kind = "api"
        parts = [unquote(p) for p in rest.split("/")]
        with self._lock:
            two = "/".join(parts[:2])
            if len(parts) >= 2 and (two in self._repos or parts[1] not in ("revision", "tree")):
                repo_id, tail = two, parts[2:]
            else:
                repo_id, tail = parts[0], parts[1:]
        entry.repo_id = repo_id
        if self._apply_status_fault(h, method, entry, repo_id, None):
            return
        if method != "GET":
            self._error(h, method, entry, 405, None, "Method not allowed")
            return
        params = {k.lower(): v[-1].lower() for k, v in parse_qs(query).items()}
        if not tail or (tail[0] == "revision" and len(tail) == 2):
            revision = tail[1] if tail else "main"
            self._api_model_info(h, method, entry, repo_id, revision, blobs=params.get("blobs") == "true")
        elif tail[0] == "tree" and len(tail) >= 2:
            path = "/".join(p for p in tail[2:] if p)
            self._api_tree(h, method, entry, repo_id, tail[1], path, params)
        else:
            self._error(h, method, entry, 404, None, "Not Found")

    def _resolve_api(
        self, h: _Handler, method: str, entry: LoggedRequest, repo_id: str, revision: str
    ) -> tuple[FakeRepo, str, dict[str, FakeFile]] | None:
        entry.revision = revision
        with self._lock:
            repo = self._repos.get(repo_id)
            denied = self._access(entry, repo, content=False)  # gated repos list their files publicly
            sha = repo.resolve(revision) if repo is not None and denied is None else None
            files = dict(repo.commits[sha]) if repo is not None and sha is not None else {}
        if denied is not None:
            self._error(h, method, entry, *denied)
            return None
        assert repo is not None
        if sha is None:
            self._error(h, method, entry, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return repo, sha, files

    def _api_model_info(
        self, h: _Handler, method: str, entry: LoggedRequest, repo_id: str, revision: str, *, blobs: bool
    ) -> None:
        resolved = self._resolve_api(h, method, entry, repo_id, revision)
        if resolved is None:
            return
        repo, sha, files = resolved
        siblings: list[dict[str, Any]] = []
        for name in sorted(files):
            sibling: dict[str, Any] = {"rfilename": name}
            if blobs:
                f = files[name]
                sibling.update(size=f.size, blobId=f.git_sha1)
                if f.lfs:
                    sibling["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": f.pointer_size}
            siblings.append(sibling)
        info = {
            "_id": sha[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "sha": sha,
            "lastModified": "2025-01-01T00:00:00.000Z",
            "createdAt": "2025-01-01T00:00:00.000Z",
            "private": repo.private,
            "gated": repo.gated or False,
            "disabled": False,
            "tags": [],
            "siblings": siblings,
        }
        self._json(h, method, entry, info, {"X-Repo-Commit": sha})

    def _api_tree(
        self,
        h: _Handler,
        method: str,
        entry: LoggedRequest,
        repo_id: str,
        revision: str,
        path: str,
        params: Mapping[str, str],
    ) -> None:
        resolved = self._resolve_api(h, method, entry, repo_id, revision)
        if resolved is None:
            return
        _, sha, files = resolved
        recursive, expand = params.get("recursive") == "true", params.get("expand") == "true"
        prefix = f"{path}/" if path else ""
        if path and path in files:
            self._error(h, method, entry, 400, None, f"{path} is a file, not a folder")
            return
        last_commit = {"id": sha, "title": "fakehub commit", "date": "2025-01-01T00:00:00.000Z"}
        entries: dict[str, dict[str, Any]] = {}
        for name in sorted(files):
            if not name.startswith(prefix):
                continue
            parts = name[len(prefix) :].split("/")
            upto = len(parts) - 1 if recursive else min(1, len(parts) - 1)
            for depth in range(1, upto + 1):
                folder = prefix + "/".join(parts[:depth])
                oid = hashlib.sha1(f"tree\0{sha}\0{folder}".encode()).hexdigest()
                folder_entry: dict[str, Any] = {"type": "directory", "oid": oid, "path": folder}
                if expand:
                    folder_entry["lastCommit"] = last_commit
                entries.setdefault(folder, folder_entry)
            if recursive or len(parts) == 1:
                f = files[name]
                item: dict[str, Any] = {"type": "file", "oid": f.git_sha1, "size": f.size, "path": name}
                if f.lfs:
                    item["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": f.pointer_size}
                if expand:
                    item["lastCommit"] = last_commit
                    item["securityFileStatus"] = {
                        "status": "safe",
                        "avScan": {"virusFound": False, "virusNames": None},
                        "pickleImportScan": None,
                    }
                entries[name] = item
        if path and not entries:
            self._error(h, method, entry, 404, "EntryNotFound", f"{path} does not exist on {revision}")
            return
        listing = list(entries.values())
        size = max(1, self.tree_expand_page_size if expand else self.tree_page_size)
        try:
            cursor = max(0, int(params.get("cursor") or 0))
        except ValueError:
            self._error(h, method, entry, 400, None, "invalid cursor")
            return
        headers = {"X-Repo-Commit": sha}
        if cursor + size < len(listing):
            query = urlencode({**params, "cursor": str(cursor + size)})
            raw = entry.path.partition("?")[0]
            headers["Link"] = f'<{self.url}{raw}?{query}>; rel="next"'
        self._json(h, method, entry, listing[cursor : cursor + size], headers)

    def _json(
        self, h: _Handler, method: str, entry: LoggedRequest, payload: Any, headers: dict[str, str]
    ) -> None:
        body = json.dumps(payload).encode()
        self._send(h, method, entry, 200, {**headers, "Content-Type": "application/json"}, body)

    def _error(
        self,
        h: _Handler,
        method: str,
        entry: LoggedRequest,
        status: int,
        code: str | None,
        message: str,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Error-Message": message}
        if code is not None:
            headers["X-Error-Code"] = code
        headers.update(extra or {})
        self._send(h, method, entry, status, headers, json.dumps({"error": message}).encode())

    def _send(
        self,
        h: _Handler,
        method: str,
        entry: LoggedRequest,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        drop: Fault | None = None,
    ) -> None:
        entry.status = status
        h.send_response(status)
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if method == "HEAD":
            return
        if drop is None or drop.drop_after is None:
            h.wfile.write(body)
            return
        entry.dropped = True
        h.close_connection = True
        if drop.drop_after:
            h.wfile.write(body[: drop.drop_after])
        if drop.reset:  # RST: the client sees ECONNRESET instead of an early EOF
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
        else:
            h.connection.shutdown(socket.SHUT_RDWR)


def _encode(name: str, content: FileContent) -> bytes:
    if isinstance(content, bytes):
        data = content
    elif isinstance(content, str):
        data = content.encode()
    elif isinstance(content, dict | list):
        data = json.dumps(content, indent=2).encode()
    else:
        raise TypeError(f"{name}: unsupported content type {type(content).__name__}")
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{name} is larger than {MAX_FILE_BYTES} bytes")
    return data


def _lfs_names(files: Mapping[str, bytes], lfs: Iterable[str] | bool | None) -> set[str]:
    if lfs is None:
        return {name for name in files if name.lower().endswith(DEFAULT_LFS_SUFFIXES)}
    if isinstance(lfs, bool):
        return set(files) if lfs else set()
    return set(lfs)


def _content_type(filename: str) -> str:
    if filename.endswith(".json"):
        return "application/json; charset=utf-8"
    if filename.endswith((".md", ".txt", ".py", ".yaml", ".yml")):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"
