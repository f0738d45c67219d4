"""The result of reading one launch command: :class:`ParsedCommand`."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Frame", "ParsedCommand", "quote_argv"]


@dataclass(frozen=True)
class Frame:
    """How to write the command again (for :meth:`ParsedCommand.edited`): ``prefix`` is what runs
    before the engine's own arguments (``VAR=x`` words, ``docker run ... image``, ``python -m
    module``), ``args`` the engine's arguments as given, ``kind`` the editor that knows their
    spelling ("llama", "bench", "vllm", "sglang", "mlx", "modelfile"), ``text`` the original text for
    editors that rewrite a file (a Modelfile), ``suffix`` what followed the arguments."""

    kind: str
    prefix: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    text: str = ""
    suffix: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedCommand:
    """One engine launch, read the way the engine's own parser reads it.

    ``settings`` are keywords for :func:`qwenfit.api.memory.check_result` (``context`` is tokens per
    sequence); ``raw`` every recognised option as the engine ends up with it (after aliases, defaults
    that matter, environment variables and "last one wins"), keyed by the engine's own name for it;
    ``ignored`` the options accepted because they do not change memory; ``notes`` what was inferred
    and how. ``catalog`` is the qwenfit catalog model the command loads, when its name says so.
    """

    tool: str
    engine: str
    model: str | None
    model_kind: str
    quant: str | None
    settings: dict[str, Any]
    raw: dict[str, Any]
    ignored: tuple[str, ...]
    notes: tuple[str, ...]
    argv: tuple[str, ...]
    catalog: str | None = None
    frame: Frame = field(default_factory=lambda: Frame("none"), repr=False, compare=False)

    def edited(self, **flags: Any) -> str:
        """This command with some options changed, in the engine's own spelling (the option as the
        command already writes it, else its long form), quoted as :func:`shlex.join` does. Keys are
        the engine's names (``ctx_size``, ``n_cpu_moe``, ``max_model_len``) or ``settings`` keys
        (``context``, ``kv_cache``, ``tp``, ...); ``None`` removes an option, ``True``/``False`` turn
        a switch on or off. Parsing the result gives the edited settings."""
        from qwenfit.cmdline.edit import edit

        return edit(self, dict(flags))


def quote_argv(words: tuple[str, ...] | list[str], assigns: Mapping[str, str] | None = None) -> str:
    """A shell command line for ``words`` (``VAR=value`` words first)."""
    pre = [f"{k}={shlex.quote(v)}" for k, v in (assigns or {}).items()]
    return " ".join([*pre, shlex.join(list(words))]) if pre else shlex.join(list(words))
