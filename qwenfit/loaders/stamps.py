"""Stat stamps: a digest check of source files skipped while the files are the ones last checked.

A compiled data file carries the SHA-256 of the sources it was made from; checking it reads and hashes
every source at each start. After a check that matched, :func:`verified` writes a stamp next to the
compiled file: each source's path, size and modification time (ns), the compiled file's own, and the
digest. While a later start finds the same stamp (nothing was edited, added or removed) the sources are
not read again, as Python trusts a ``.pyc`` whose source's size and mtime are unchanged; any other
stamp means the digest is computed again, so a stale file is never used. Writing the stamp is best
effort (a read-only install checks the digest each time).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["files_sha256", "fingerprint", "sha256", "verified"]


def fingerprint(paths: Sequence[Path | str]) -> str:
    """Each path with its size and mtime (ns), one a line (``-`` for a missing file)."""
    lines = []
    for p in paths:
        try:
            st = os.stat(p)
            lines.append(f"{p}\t{st.st_size}\t{st.st_mtime_ns}")
        except OSError:
            lines.append(f"{p}\t-")
    return "\n".join(lines)


def sha256(path: Path | str) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    import hashlib  # only when a stamp does not answer

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def files_sha256(paths: Sequence[Path]) -> str:
    """One SHA-256 over several files: each file's name, a NUL, then its bytes (none for a missing
    file), in the order given."""
    import hashlib  # only when a stamp does not answer

    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0")
        h.update(p.read_bytes() if p.exists() else b"")
    return h.hexdigest()


def stamp_path(compiled: Path) -> Path:
    return compiled.with_name(f".{compiled.name}.stamp")


def verified(compiled: Path, expected: str, sources: Sequence[Path | str], digest: Callable[[], str]) -> bool:
    """Whether ``digest()`` (of ``sources``) equals ``expected``, the digest ``compiled`` was made
    from: from the stamp when the sources and ``compiled`` are unchanged since the last match."""
    stamp = stamp_path(compiled)
    text = f"{expected}\n{fingerprint([compiled, *sources])}\n"
    try:
        if stamp.read_text(encoding="utf-8") == text:
            return True
    except (OSError, ValueError):
        pass
    if digest() != expected:
        return False
    try:
        tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, stamp)
    except OSError:
        pass
    return True
