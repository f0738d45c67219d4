"""Engines' own launch command lines, read the way each engine's parser reads them.

:func:`parse_command` turns a command line (or a script, a Modelfile, a llama-swap config, a docker
compose file, a systemd unit) into :class:`ParsedCommand` s: the model, its quantization, and the
keywords of :func:`qwenfit.api.memory.check_result`. Supported: llama-server, llama-cli, llama-bench
(llama.cpp 0c1e570), ``vllm serve`` (vLLM 0.33.0), SGLang 0.5.23, mlx-lm 0.32.2, Ollama, llama-swap,
``docker run`` and docker compose wrapping any of them. Options that change memory are mapped or
refused by name (:class:`~qwenfit.errors.UsageError`); the others are listed as ignored.
"""

from __future__ import annotations

from qwenfit.cmdline.commands import parse_command
from qwenfit.cmdline.parsed import ParsedCommand

__all__ = ["ParsedCommand", "parse_command"]
