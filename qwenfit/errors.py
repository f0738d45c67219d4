"""qwenfit's exceptions: every one of them, here.

Every error qwenfit raises on purpose subclasses :class:`QwenfitError` *and* the builtin a caller
would naturally catch (``ValueError``, ``LookupError``, ``FileNotFoundError``), so
``except ValueError`` keeps working for code that does not know qwenfit. Messages say what failed,
on which input, why, and what to do.

This module is stdlib only: ``qwenfit.core`` may import it.

Hierarchy::

    QwenfitError
    ├── ConfigError (ValueError) ── UnsupportedModelError
    ├── CheckpointError (ValueError)
    ├── SettingError (ValueError): an impossible setting ── GpuFormatError, VisionSettingError
    ├── UsageError (ValueError): a command line that cannot be read (the CLI, check_command)
    ├── QuantDataError (ValueError): data/quants.yaml is malformed
    ├── ArtifactDataError (ValueError): data/artifacts/*.yaml (or a refreshed record) is malformed
    ├── UnknownModelError (LookupError)
    ├── UnknownQuantError (LookupError)
    ├── UnknownHardwareError (LookupError, ValueError)
    ├── SourceNotFoundError (FileNotFoundError)
    ├── HubError (OSError)
    └── DoesNotFit: a configuration that does not fit its budget (``shortfall_bytes``)

    LeftOut (LookupError): internal, never reaches a caller (a precompiled input left out)
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (``import qwenfit`` stays light)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ArtifactDataError",
    "CheckpointError",
    "ConfigError",
    "DoesNotFit",
    "EngineRefusal",
    "GpuFormatError",
    "HubError",
    "LeftOut",
    "QuantDataError",
    "QwenfitError",
    "SettingError",
    "SourceNotFoundError",
    "UnknownHardwareError",
    "UnknownModelError",
    "UnknownQuantError",
    "UnsupportedModelError",
    "UsageError",
    "VisionSettingError",
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


class _NameNotFound(QwenfitError, LookupError):
    """A name that matches nothing: ``name`` is the text that failed, ``suggestions`` the closest."""

    def __init__(self, message: str, *, name: str, suggestions: tuple[str, ...] = ()) -> None:
        self.name = name
        self.suggestions = suggestions
        super().__init__(message)

    def __str__(self) -> str:  # LookupError/KeyError would add quotes; keep the message readable
        return str(self.args[0])


class UnknownModelError(_NameNotFound):
    """A catalog name that matches no model; ``suggestions`` holds the closest names."""


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


class UnknownHardwareError(_NameNotFound, ValueError):
    """A hardware name or machine spec that matches nothing in the hardware catalog.

    ``name`` is the text that failed and ``suggestions`` the closest catalog ids (up to 3). It is a
    ``LookupError`` (an unknown name) and a ``ValueError`` (a malformed spec such as ``"0x rtx-4090"``),
    so either ``except`` catches it.
    """


class SettingError(QwenfitError, ValueError):
    """An impossible setting: names the setting and the valid choices."""


class GpuFormatError(SettingError):
    """A GPU checkpoint format (fp8, awq, nvfp4, mlx-4bit, ...) cannot be applied as asked."""


class VisionSettingError(SettingError):
    """A vision-encoder setting (image size, mmproj type) outside what the preprocessor allows."""


class EngineRefusal(SettingError):
    """A configuration the engine itself refuses to load (its own message quoted: a quantization it has
    no method for, a group size a tensor-parallel split breaks, ...)."""


class UsageError(QwenfitError, ValueError):
    """A command line (qwenfit's own, or an engine's given to ``check_command``) that cannot be read."""


class QuantDataError(QwenfitError, ValueError):
    """data/quants.yaml (or a file given in its place) is malformed; the message names the record."""


class ArtifactDataError(QwenfitError, ValueError):
    """data/artifacts/*.yaml (or a record ``qwenfit artifacts --refresh`` wrote) is malformed; the
    message names the file and the record."""


class UnknownQuantError(QwenfitError, LookupError):
    """A quantization name qwenfit does not know; the message lists the close names."""

    def __str__(self) -> str:  # LookupError/KeyError would add quotes; keep the message readable
        return str(self.args[0])


class DoesNotFit(QwenfitError):
    """A configuration that does not fit its memory budget; ``shortfall_bytes`` says by how much,
    ``estimate`` is the :class:`qwenfit.Estimate` judged, ``alternatives`` the nearest settings that
    fit (:class:`qwenfit.core.fit.nearest.Alternative`; ``str()`` of one is its description)."""

    def __init__(
        self,
        message: str,
        *,
        shortfall_bytes: int,
        estimate: Any = None,
        alternatives: tuple[Any, ...] = (),
    ) -> None:
        self.shortfall_bytes = shortfall_bytes
        self.estimate = estimate
        self.alternatives = alternatives
        super().__init__(message)


class LeftOut(LookupError):
    """Internal: a computation reached a value that precompiled inputs leave out (llama.cpp's GGUF
    tensor table, :data:`qwenfit.core.formats.compiled.TENSOR_TABLE`). Whoever evaluated precompiled
    inputs catches it and evaluates the inputs computed in full (:func:`qwenfit.api.resolve.evaluate`):
    it never reaches a caller of qwenfit, hence not a :class:`QwenfitError`."""
