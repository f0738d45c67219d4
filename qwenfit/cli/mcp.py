"""``qwenfit mcp``: a Model Context Protocol server over stdio, for agents that launch models.

Tools (JSON Schema inputs from the signatures; each returns exactly what the matching command
prints with ``--json``, ``qwenfit-output-v2``):

- ``check_command``: an engine's own launch command (``qwenfit check -- COMMAND``);
- ``check``: one configuration (``qwenfit check MODEL``);
- ``plan``: ranked options for a machine (``qwenfit plan``);
- ``estimate``: the memory of one deployment, term by term (``qwenfit.estimate``; the ``estimate``
  object of ``check --json``, without a verdict when no budget is given).

No hardware argument: this machine is detected, as the command does. Needs the official SDK:
``pip install 'qwenfit[mcp]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import threading
from collections.abc import Sequence
from typing import Any

from qwenfit.errors import UsageError

__all__ = ["add", "build_server", "run"]

_LOCK = threading.Lock()  # the command writes to sys.stdout: one tool call at a time


def add(sub: Any, schema_id: str) -> None:
    p = sub.add_parser(
        "mcp",
        help="a Model Context Protocol server over stdio (tools: check_command, check, plan, estimate)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=run)


def _hardware(gpu: str | None, vram_gb: float | None, ram_gb: float | None, gpus: int | None) -> list[str]:
    out: list[str] = []
    if gpu:
        out += ["--gpu", gpu]
    if vram_gb is not None:
        out += ["--vram", str(vram_gb)]
    if gpus is not None:
        out += ["--gpus", str(gpus)]
    if ram_gb is not None:
        out += ["--ram", str(ram_gb)]
    return out


def cli_json(argv: Sequence[str]) -> dict[str, Any]:
    """What ``qwenfit ARGV --json`` prints, as a dict (the same function the command runs)."""
    import qwenfit.cli

    buf = io.StringIO()
    with _LOCK, contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        qwenfit.cli.main(list(argv))
    data: dict[str, Any] = json.loads(buf.getvalue())
    return data


def check_command(
    command: list[str] | str,
    gpu: str | None = None,
    vram_gb: float | None = None,
    ram_gb: float | None = None,
    gpus: int | None = None,
) -> dict[str, Any]:
    """Pre-flight an engine's own launch command (llama-server, llama-cli, llama-bench, vllm serve,
    python -m sglang.launch_server, mlx_lm.server/generate, ollama, or the text of a Modelfile,
    llama-swap config or compose file): per-device memory, whether it fits, and when it does not the
    smallest edits to the command that fit, each re-checked, with the rewritten command line.
    ``command``: the argv as a list of words, or one shell line. Hardware: ``gpu`` a catalog name
    ("rtx-4090", "2x rtx-3090", "m4-max-128"), or ``vram_gb`` per GPU (``gpus`` of them), plus
    ``ram_gb``; none: this machine."""
    words = [command] if isinstance(command, str) else list(command)
    return cli_json(["check", *_hardware(gpu, vram_gb, ram_gb, gpus), "--json", "--", *words])


def check(
    model: str,
    quant: str | None = None,
    engine: str | None = None,
    context: int | None = None,
    sequences: int = 1,
    kv_cache: str | None = None,
    gpu: str | None = None,
    vram_gb: float | None = None,
    ram_gb: float | None = None,
    gpus: int | None = None,
) -> dict[str, Any]:
    """Pre-flight one configuration of a Qwen3.5 model: the memory per device, whether it fits, the
    launch command, and the nearest options that fit when it does not. ``context`` is tokens per
    sequence (default: the model's native context)."""
    argv = ["check", model, *_hardware(gpu, vram_gb, ram_gb, gpus), "--sequences", str(sequences)]
    for flag, value in (
        ("--quant", quant),
        ("--engine", engine),
        ("--context", context),
        ("--kv-cache", kv_cache),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return cli_json([*argv, "--json"])


def plan(
    models: list[str] | None = None,
    engines: list[str] | None = None,
    context: int | None = None,
    sequences: int = 1,
    gpu: str | None = None,
    vram_gb: float | None = None,
    ram_gb: float | None = None,
    gpus: int | None = None,
) -> dict[str, Any]:
    """Which Qwen3.5 models and quantizations fit a machine, ranked, each with its engine, context,
    speed and launch command. ``models``: catalog names (default: all); ``context`` tokens per
    sequence (default 32768)."""
    argv = ["plan", *(models or []), *_hardware(gpu, vram_gb, ram_gb, gpus), "--sequences", str(sequences)]
    for e in engines or []:
        argv += ["--engine", e]
    if context is not None:
        argv += ["--context", str(context)]
    return cli_json([*argv, "--json"])


def estimate(
    model: str,
    quant: str | None = None,
    engine: str = "llama.cpp",
    context: int | None = None,
    sequences: int = 1,
    kv_cache: str | None = None,
    gpu: str | None = None,
    vram_gb: float | None = None,
    ram_gb: float | None = None,
) -> dict[str, Any]:
    """The memory of one deployment, term by term (weights, KV cache, recurrent state, buffers) per
    device, exact or labelled estimated; judged against a budget when one is given."""
    import qwenfit
    from qwenfit.cli.args import exception_json
    from qwenfit.errors import QwenfitError
    from qwenfit.report.json import estimate_json

    try:
        e = qwenfit.estimate(model, quant, engine=engine, context=context, sequences=sequences,
                             kv_cache=kv_cache, hardware=gpu, vram_gb=vram_gb, ram_gb=ram_gb)  # fmt: skip
    except QwenfitError as exc:
        return exception_json(exc)  # the --json error object the CLI prints
    return estimate_json(e)


def build_server() -> Any:
    """The MCP server with qwenfit's four tools."""
    try:
        from mcp.server import MCPServer
    except ImportError:
        raise UsageError(
            "qwenfit mcp needs the Model Context Protocol SDK: pip install 'qwenfit[mcp]' (mcp>=2)"
        ) from None
    from qwenfit import __version__

    server = MCPServer(
        "qwenfit",
        version=__version__,
        instructions="Memory pre-flight for Qwen3.5 models: call check_command with the exact command "
        "you are about to launch (llama-server, vllm serve, sglang, mlx_lm, ollama) before launching it.",
    )
    for fn in (check_command, check, plan, estimate):
        server.add_tool(fn, name=fn.__name__, description=(fn.__doc__ or "").replace("\n    ", " ").strip())
    return server


def run(args: argparse.Namespace) -> int:
    """Serve over stdio until the client closes the connection."""
    build_server().run("stdio")
    return 0
