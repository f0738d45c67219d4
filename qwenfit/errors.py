"""qwenfit's exceptions.

Every error qwenfit raises on purpose subclasses :class:`QwenfitError` *and* the builtin a caller
would naturally catch (``ValueError``, ``LookupError``, ``FileNotFoundError``), so
``except ValueError`` keeps working for code that does not know qwenfit. Messages say what failed,
on which input, why, and what to do.

This module is stdlib only: ``qwenfit.core`` may import it.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "HubError",
    "QwenfitError",
    "SourceNotFoundError",
    "UnknownHardwareError",
    "UnknownModelError",
    "UnsupportedModelError",
]


class QwenfitError(Exception):
    """Base class of every error qwenfit raises on purpose."""


class ConfigError(QwenfitError, ValueError):
    """A model configuration is malformed or inconsistent.

    ``source`` names the file (or catalog entry) and ``key`` the offending key path, e.g.
    ``text_config.layer_types``; both are also in the message.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        self.source = source
        self.key = key
        prefix = ""
        if source:
            prefix += f"{source}: "
        if key:
            prefix += f"{key}: "
        super().__init__(prefix + message)


class UnsupportedModelError(ConfigError):
    """The configuration is valid JSON but not a model family qwenfit knows."""


class UnknownModelError(QwenfitError, LookupError):
    """A catalog name that matches no model; ``suggestions`` holds the closest names."""

    def __init__(self, message: str, *, name: str, suggestions: tuple[str, ...] = ()) -> None:
        self.name = name
        self.suggestions = suggestions
        super().__init__(message)

    def __str__(self) -> str:  # LookupError/KeyError would add quotes; keep the message readable
        return str(self.args[0])


class SourceNotFoundError(QwenfitError, FileNotFoundError):
    """A path given as a model source does not exist or holds nothing qwenfit can read."""


class CheckpointError(QwenfitError, ValueError):
    """A checkpoint file (safetensors, GGUF, index) is malformed, truncated or inconsistent.

    ``source`` names the file; the message says what is wrong in it.
    """

    def __init__(self, message: str, *, source: str) -> None:
        self.source = source
        super().__init__(f"{source}: {message}")


class HubError(QwenfitError, OSError):
    """The Hugging Face Hub could not give what was asked (not found, gated, offline, network).

    ``repo_id`` names the repository; the message says what to do.
    """

    def __init__(self, message: str, *, repo_id: str) -> None:
        self.repo_id = repo_id
        super().__init__(message)


class UnknownHardwareError(QwenfitError, LookupError, ValueError):
    """A hardware name or machine spec that matches nothing in the hardware catalog.

    ``name`` is the text that failed and ``suggestions`` the closest catalog ids (up to 3). It is a
    ``LookupError`` (an unknown name) and a ``ValueError`` (a malformed spec such as ``"0x rtx-4090"``),
    so either ``except`` catches it.
    """

    def __init__(self, message: str, *, name: str, suggestions: tuple[str, ...] = ()) -> None:
        self.name = name
        self.suggestions = suggestions
        super().__init__(message)

    def __str__(self) -> str:  # LookupError/KeyError would add quotes; keep the message readable
        return str(self.args[0])
