"""Read a source at its pinned commit from a fetch-tool mirror (a bare git directory): the one way the
transcription scripts in this folder read their sources. Imported as ``_pinned`` (a script's own folder
is on ``sys.path`` when it is run as ``python .../transcribe/<script>.py``)."""

from __future__ import annotations

import subprocess


def _git(mirror: str, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", mirror, *args], capture_output=True, text=True, check=True
    ).stdout


def show(mirror: str, commit: str, path: str) -> str:
    """The text of ``path`` at ``commit`` in the git directory ``mirror``."""
    return _git(mirror, "show", f"{commit}:{path}")


def names(mirror: str, commit: str, folder: str) -> list[str]:
    """The paths directly under ``folder`` at ``commit`` (``git ls-tree --name-only``)."""
    return _git(mirror, "ls-tree", "--name-only", commit, folder).split()
