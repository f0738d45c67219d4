"""Argument types and the inputs every command shares: the parser with one-line errors, numbers,
sizes, token counts, the hardware flags (and the machine they describe), engines, quantizations and
models. Nothing heavy is imported at module level (``qwenfit --help`` starts fast)."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Iterable, Sequence

from qwenfit.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (--help stays light)

if TYPE_CHECKING:
    from typing import Any, NoReturn

    from qwenfit.core.engines.base import Engine
    from qwenfit.core.hardware import Machine
    from qwenfit.core.model.spec import ModelSpec

__all__ = [
    "BUILTIN_ENGINES",
    "EXIT_DOES_NOT_FIT",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_USAGE",
    "Parser",
    "add_hardware",
    "add_json",
    "add_model_flags",
    "context_arg",
    "engine_names",
    "engine_quant",
    "engines_arg",
    "gb",
    "load_model",
    "machine_of",
    "model_arg",
    "ngl",
    "nonnegative",
    "positive",
    "print_json_error",
    "speed_arg",
    "split",
    "suggestions_in",
    "tokens",
]

EXIT_OK = 0
EXIT_DOES_NOT_FIT = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``qwenfit check: error: ... (see 'qwenfit check --help')``;
    with ``json_errors`` set (``--json`` on the command line) also the JSON error object on stdout."""

    json_errors = False

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse sizes help to shutil.get_terminal_size(), importing shutil (and with it bz2, lzma,
        # fnmatch) for every parser it builds: the same width, read without it
        return self.formatter_class(prog=self.prog, width=terminal_columns() - 2)  # type: ignore[call-arg]

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        if Parser.json_errors:
            print_json_error("usage", text)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text} (see '{self.prog} --help')\n")


def terminal_columns() -> int:
    """The columns of ``shutil.get_terminal_size()``: ``$COLUMNS`` when a positive number, else the
    terminal's width of stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


_SUGGESTED = re.compile(r"[Dd]id you mean (?P<names>[^?]+)\?|\bwrite (?P<value>'[^']+')")


def suggestions_in(message: str) -> list[str]:
    """The names or values an error message suggests ("Did you mean 'a', 'b'?", "write '24.5'")."""
    out: list[str] = []
    for m in _SUGGESTED.finditer(message):
        out += re.findall(r"'([^']+)'", m.group("names") or m.group("value") or "")
    return out


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (its class name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def error_kind(exc: BaseException) -> str:
    """An error's kind for ``--json``: its class in snake_case without "Error" (``unknown_model``)."""
    name = type(exc).__name__.removesuffix("Error") or "error"
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def json_error(kind: str, message: str, suggestions: Sequence[str] = ()) -> dict[str, object]:
    """The ``--json`` error object: ``{"schema", "kind": "error", "error": {kind, message,
    suggestions}}`` (qwenfit.report.schema.ErrorOut); ``suggestions`` default to those the message
    names."""
    from qwenfit.report.json import SCHEMA_ID

    error = {"kind": kind, "message": message, "suggestions": list(suggestions) or suggestions_in(message)}
    return {"schema": SCHEMA_ID, "kind": "error", "error": error}


def exception_json(exc: BaseException) -> dict[str, object]:
    """:func:`json_error` of a qwenfit error (its kind, its message on one line, its suggestions)."""
    return json_error(error_kind(exc), one_line(exc), getattr(exc, "suggestions", None) or ())


def print_json_error(kind: str, message: str, suggestions: Sequence[str] = ()) -> None:
    """:func:`json_error` on stdout."""
    import json

    sys.stdout.write(json.dumps(json_error(kind, message, suggestions), indent=2) + "\n")


_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?([a-zA-Z]*)$")


def _number(text: str) -> str:
    """``text`` without ``_`` digit separators and ``,`` thousands separators (``32,768``); a comma
    that does not separate thousands (``24,5``: a decimal comma) is an error that says so."""
    t = text.strip().replace("_", "")
    if "," in t:
        if not _THOUSANDS.match(t):
            raise argparse.ArgumentTypeError(
                f"{text!r}: a comma here is not a thousands separator; for a decimal write "
                f"{t.replace(',', '.')!r} (qwenfit reads a decimal point only)"
            )
        t = t.replace(",", "")
    return t


def gb(text: str) -> float:
    """A size in decimal GB: ``24``, ``24GB``, ``24G``, ``22.5``; ``24GiB`` is converted. A comma is
    never a decimal separator (``24,5`` is refused, suggesting ``24.5``; ``1,024`` is 1024)."""
    t = _number(text).lower()
    factor = 1.0
    for suffix, f in (("gib", 2**30 / 1e9), ("gb", 1.0), ("g", 1.0)):
        if t.endswith(suffix):
            t, factor = t[: -len(suffix)].strip(), f
            break
    try:
        value = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of GB (e.g. 24 or 24GB), got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of GB, got {text!r}")
    return value * factor


def size_or_zero(text: str) -> float:
    """A size in decimal GB that may be 0 (a reserve)."""
    if _number(text).lower().rstrip("gbi") in ("0", "0.0"):
        return 0.0
    return gb(text)


def _integer(text: str, *, minimum: int, what: str) -> int:
    try:
        value = int(_number(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive(text: str) -> int:
    return _integer(text, minimum=1, what="a positive integer")


def nonnegative(text: str) -> int:
    return _integer(text, minimum=0, what="a non-negative integer")


def tokens(text: str) -> int:
    """A token count: ``32768``, ``32,768``, or ``32k`` (x 1024)."""
    t = _number(text).lower()
    if t.endswith("k"):
        return 1024 * _integer(t[:-1], minimum=1, what="a positive number of tokens (e.g. 32768 or 32k)")
    return _integer(t, minimum=1, what="a positive number of tokens (e.g. 32768 or 32k)")


def context_arg(text: str) -> int | str:
    """``--context``: a token count (``32768``, ``32k``) or ``max`` (the most that fits)."""
    return "max" if text.strip().lower() == "max" else tokens(text)


def speed_arg(text: str) -> float:
    """Tokens per second, positive."""
    try:
        value = float(_number(text).lower().removesuffix("tok/s").removesuffix("t/s").strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected tokens per second (e.g. 20), got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of tokens per second, got {text!r}")
    return value


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """--vision and --mtp: the vision tower and MTP drafting, as plan and check take them."""
    p.add_argument(
        "--vision",
        action="store_true",
        help="load the vision tower (llama.cpp: the mmproj file; vLLM/SGLang: the encoder)",
    )
    p.add_argument("--mtp", action="store_true", help="draft tokens with the model's MTP layer")  # fmt: skip


def ngl(text: str) -> int | None:
    """llama.cpp ``-ngl``: a layer count or ``all`` (None)."""
    if text.strip().lower() in ("all", "auto", "-1"):
        return None
    return _integer(text, minimum=0, what="a number of layers or 'all'")


def split(text: str) -> tuple[float, ...]:
    """llama.cpp ``-ts``: comma-separated non-negative shares (``3,1``)."""
    try:
        shares = tuple(float(x) for x in text.replace("/", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected shares such as 3,1, got {text!r}") from None
    if not shares or any(not math.isfinite(s) or s < 0 for s in shares) or not any(shares):
        raise argparse.ArgumentTypeError(f"expected non-negative shares such as 3,1, got {text!r}")
    return shares


def add_hardware(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("hardware (none given: this machine is detected)")
    one = g.add_mutually_exclusive_group()
    one.add_argument(
        "--gpu",
        action="append",
        metavar="NAME[xN]",
        help="a catalog GPU or machine: rtx-4090, 2x rtx-3090, h100-sxm x8, m4-max-128, cpu "
        "(qwenfit hardware list); repeat it for GPUs of different kinds (--gpu rtx-4090 --gpu rtx-3060)",
    )
    one.add_argument("--vram", type=gb, metavar="GB", help="memory of each GPU in decimal GB (any GPU)")
    g.add_argument("--gpus", type=positive, metavar="N", help="number of --vram GPUs (default 1)")
    g.add_argument("--ram", type=gb, metavar="GB", help="host RAM in decimal GB (unified memory: all of it)")
    g.add_argument(
        "--ram-reserve",
        type=size_or_zero,
        metavar="GB",
        help="host RAM kept for the system (default 10%% of RAM, 4-16 GB; detected: in use)",
    )
    g.add_argument(
        "--vram-reserve",
        type=size_or_zero,
        metavar="GB",
        help="memory kept on each GPU, e.g. for the desktop (default 0; detected: what is in use)",
    )
    g.add_argument(
        "--ram-speed",
        metavar="SPEC",
        help="host RAM type and speed, e.g. ddr5-6000, DDR4-3200x2 (channels), 6000 (MT/s); "
        "sets the offload speed (detected where the OS tells)",
    )
    g.add_argument("--wired-limit-mb", type=positive, metavar="MB",
                   help="a Mac's raised iogpu.wired_limit_mb (default: macOS's GPU working set)")  # fmt: skip


def add_json(p: argparse.ArgumentParser, schema_id: str) -> None:
    p.add_argument("--json", action="store_true", help=f"print one JSON object ({schema_id})")


# The built-in engines' names (qwenfit.core.engines.base.names() starts with them; a test keeps them
# equal), so that building a command's parser imports no engine code.
BUILTIN_ENGINES = (
    "llama.cpp",
    "ollama",
    "lm-studio",
    "llama-cpp-python",
    "vllm",
    "sglang",
    "mlx",
    "transformers",
)


def engine_names() -> tuple[str, ...]:
    """Every registered engine's name (without importing any engine): the built-ins, and those
    registered at run time once the registry is loaded."""
    base = sys.modules.get("qwenfit.core.engines.base")
    return BUILTIN_ENGINES if base is None else tuple(base.names())


def engines_arg(values: Iterable[str] | None) -> list[str] | None:
    """``--engine`` values (repeatable or comma-separated), checked against the registry."""
    if not values:
        return None
    known = engine_names()
    out: list[str] = []
    for value in values:
        for name in (v.strip() for v in value.split(",")):
            if not name:
                continue
            key = name.lower().replace("llamacpp", "llama.cpp").replace("lmstudio", "lm-studio")
            if key not in known:
                import difflib  # here: only a misspelling needs it

                close = difflib.get_close_matches(key, known, n=2, cutoff=0.5)
                hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise UsageError(f"unknown engine {name!r}.{hint} Engines: {', '.join(known)}.")
            if key not in out:
                out.append(key)
    return out or None


def engine_quant(quant: str, engine: Engine) -> str:
    """``quant`` as ``engine`` spells it (Q4_K_M, fp8, mlx-4bit, a GGUF path), or a UsageError that
    says why and suggests (the rule: :mod:`qwenfit.core.formats.names`)."""
    from qwenfit.core.engines.base import engines
    from qwenfit.core.formats.names import why_not

    name = engine.accepts(quant)
    if name is not None:
        return name
    runs = {e.weights_family: e.name for e in reversed(engines())}
    message = why_not(quant, engine.weights_family, engine.name, runs)
    raise UsageError(
        f"--{message}"
        if message.startswith("quant ")
        else f"{message} See 'qwenfit quants MODEL --engine {engine.name}'."
    )


def any_quant(quant: str) -> str:
    """A quant for plan's --quant: any llama.cpp file type or GPU/MLX format (the planner pairs them
    with the engines that run them)."""
    from qwenfit.core.formats.gguf import FILE_TYPES
    from qwenfit.core.formats.gpu import FORMATS
    from qwenfit.core.formats.names import normalise

    name = normalise(quant)
    if name is not None and name.kind != "gguf_file":
        return name.canonical
    import difflib  # here: only a misspelling needs it

    close = difflib.get_close_matches(quant.strip(), [*FILE_TYPES, *FORMATS], n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UsageError(f"unknown quant {quant!r}.{hint} See 'qwenfit quants MODEL'.")


class Progress:
    """Header reads of a Hub or local checkpoint, on stderr, only when stderr is a terminal."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        isatty = getattr(stream, "isatty", None)
        self.active = bool(isatty and isatty())

    def __call__(self, done: int, total: int, name: str) -> None:
        if not self.active:
            return
        self.stream.write(f"\r\033[Kreading headers {done}/{total}: {name}")
        if done >= total:
            self.stream.write("\r\033[K")
        self.stream.flush()


def load_model(source: str) -> ModelSpec:
    """A ModelSpec; header reads of files or the Hub show progress on stderr (a terminal only)."""
    from qwenfit.loaders import catalog, load

    if catalog.find(source) is not None and not os.path.exists(source):
        return catalog.load_catalog_model(source)  # as qwenfit.load does, without importing the Hub
    return load(source, progress=Progress(sys.stderr))  # spec.origin: the path or repo (for commands)


def model_arg(source: str) -> str | ModelSpec:
    """Catalog names stay names (the planner caches by name); anything else is read once, here."""
    from qwenfit.loaders import catalog

    if catalog.find(source) is not None and not os.path.exists(source):
        return source
    return load_model(source)


def machine_of(args: argparse.Namespace, engines: Sequence[str]) -> Machine | None:
    """The machine the flags describe, or None when none is given (the caller detects)."""
    from qwenfit.loaders.hardware import custom_mac, custom_machine, parse_machine

    gpus = getattr(args, "gpus", None)
    if gpus is not None and args.vram is None:
        raise UsageError("--gpus counts --vram GPUs: give --vram GB, or --gpu NAMExN for a catalog GPU")
    if args.gpu:
        if len(args.gpu) > 1:  # GPUs of different kinds in one machine
            from qwenfit.loaders.hardware import mixed_machine

            return _reserves(mixed_machine(args.gpu, ram_gb=args.ram), args)
        return _reserves(parse_machine(args.gpu[0], ram_gb=args.ram), args)
    if args.vram is None and args.ram is None:
        return None
    if engines and all(_unified_only(e) for e in engines):  # e.g. MLX: a Mac; one memory pool of that size
        return _reserves(custom_mac(args.ram if args.ram is not None else args.vram), args)
    return _reserves(custom_machine(vram_gb=args.vram, ram_gb=args.ram, n_gpus=gpus or 1), args)


def _reserves(machine: Machine, args: argparse.Namespace) -> Machine:
    """``machine`` with the --ram-reserve / --vram-reserve / --wired-limit-mb / --ram-speed the command
    line gave."""
    from qwenfit.api.planning import with_reserves

    if getattr(args, "ram_speed", None):
        import dataclasses

        from qwenfit.loaders.host_probes import parse_ram_spec

        machine = dataclasses.replace(machine, host=parse_ram_spec(args.ram_speed))
    return with_reserves(machine, getattr(args, "ram_reserve", None), getattr(args, "vram_reserve", None),
                         getattr(args, "wired_limit_mb", None))  # fmt: skip


def _unified_only(engine: str) -> bool:
    from qwenfit.core.engines.base import get

    return get(engine).unified_only


def detect_machine(args: argparse.Namespace | None = None) -> Machine:
    from qwenfit.loaders.detect import detect

    machine = detect()
    return machine if args is None else _reserves(machine, args)
