"""The code of the methods ``@dataclass`` writes for qwenfit's classes, kept between runs.

Python's ``dataclasses`` writes each class's ``__init__``, ``__repr__``, ``__eq__``, ``__hash__`` and
(frozen) ``__setattr__``/``__delattr__`` as source text and compiles it with ``exec`` when the class is
created: for the ~55 classes a ``qwenfit check`` creates, about a third of the command's time after
the interpreter starts. :func:`install` gives the ``dataclasses`` module an ``exec`` that compiles
each text once and keeps the code object, keyed by the text itself, in a file beside the package's
bytecode (``qwenfit/__pycache__``, named by the interpreter's version); the next run executes the
same code objects without compiling. The functions made are the ones ``exec`` would make from the same
text (compiled as ``exec`` compiles a string: file ``<string>``, no inherited future flags): only the
compiling is skipped. Texts of classes outside qwenfit are compiled as before and not kept. The file
is written like bytecode: not under ``PYTHONDONTWRITEBYTECODE``, and not when the folder is read-only.
"""

from __future__ import annotations

import builtins
import marshal
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["install", "save"]

_PACKAGE = Path(__file__).resolve().parent.parent  # qwenfit/
_FILE = _PACKAGE / "__pycache__" / f"dataclass-code.{sys.implementation.cache_tag}.marshal"
_codes: dict[str, Any] = {}  # source text -> code object
_used: set[str] = set()
_loaded = 0
_installed = False
_MAX = 4000  # texts kept (qwenfit's classes write ~1,000)


def _exec(source: Any, globals: dict[str, Any] | None = None, locals: Any = None) -> None:
    """``exec`` as ``dataclasses`` calls it, with the code of a qwenfit class's text reused."""
    name = globals.get("__name__", "") if isinstance(globals, dict) else ""
    if isinstance(source, str) and isinstance(name, str) and name.startswith("qwenfit."):
        code = _codes.get(source)
        if code is None:
            code = _codes[source] = compile(source, "<string>", "exec", dont_inherit=True)
        _used.add(source)
        source = code
    builtins.exec(source, globals, locals)


def install() -> None:
    """Load the kept code and give ``dataclasses`` the reusing ``exec`` (once; a no-op after)."""
    global _installed, _loaded
    if _installed:
        return
    _installed = True
    try:
        with open(_FILE, "rb") as f:
            version, codes = marshal.loads(f.read())
        if version == sys.version and isinstance(codes, dict):
            _codes.update(codes)
    except (OSError, ValueError, EOFError, TypeError):
        pass
    _loaded = len(_codes)
    import dataclasses

    dataclasses.exec = _exec  # type: ignore[attr-defined]  # the module's name shadows the builtin


def save() -> None:
    """Write the kept code when this run compiled a text the file lacked (best effort)."""
    if not _installed or len(_codes) == _loaded or sys.dont_write_bytecode:
        return
    keep = _codes  # every command's classes (pruned to this run's when old texts pile up)
    if len(keep) > _MAX:
        keep = {s: c for s, c in _codes.items() if s in _used}
    try:
        tmp = _FILE.with_name(f"{_FILE.name}.{os.getpid()}")
        tmp.write_bytes(marshal.dumps((sys.version, keep)))
        os.replace(tmp, _FILE)
    except OSError:
        pass
