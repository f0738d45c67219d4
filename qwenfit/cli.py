"""The ``qwenfit`` command: which Qwen3.5 model and quantization fits this hardware, from a shell.

Subcommands::

    qwenfit plan [MODEL ...]   ranked options for a machine (detected when no hardware flag is given)
    qwenfit check MODEL --quant Q ...   pre-flight of one configuration
    qwenfit inspect MODEL      a model by component, role and quantization
    qwenfit quants MODEL       every quantization of a model: bytes, bits per weight, quality
    qwenfit models             the catalog's exact parameter counts
    qwenfit hardware list|show NAME|detect
    qwenfit export [-o FILE]   the docs calculator's JSON

Exit codes: 0 success (``check``: it fits), 1 ``check``: it does not fit, 2 bad input or usage (one
line on stderr, no traceback), 3 an internal error (one line; ``QWENFIT_DEBUG=1`` shows the
traceback). ``--json`` prints one object of the schema in :mod:`qwenfit.schema`
(``data/schema/qwenfit-output-v1.schema.json``); the JSON is built here from plain dicts so that
``qwenfit check --json`` never imports pydantic.

Context is tokens per sequence everywhere in the command (``--context 32768 --sequences 4`` is four
sequences of 32,768 tokens: llama.cpp's ``-c 131072 -np 4``). Sizes are decimal GB (1e9 bytes).
Colour only when stdout is a terminal and ``NO_COLOR`` is unset or empty (https://no-color.org).

Startup matters (other tools call ``qwenfit check`` before every launch): every import below the
module level is deferred to the subcommand that needs it.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from qwenfit.errors import QwenfitError

if TYPE_CHECKING:
    from qwenfit.core.hardware import Device, HostMemory, Machine
    from qwenfit.core.model.spec import ModelSpec
    from qwenfit.core.terms import Estimate
    from qwenfit.planner import Option, Placement, Plan

__all__ = ["EXIT_DOES_NOT_FIT", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "UsageError", "main", "memory_bars"]

EXIT_OK = 0
EXIT_DOES_NOT_FIT = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3

SCHEMA_ID = "qwenfit-output-v1"  # = qwenfit.schema.SCHEMA_ID (a test keeps them equal)
GGUF_ENGINES = ("llama.cpp", "ollama", "lm-studio")
ENGINE_NAMES = ("llama.cpp", "ollama", "lm-studio", "vllm", "sglang", "mlx", "transformers")
BAR_WIDTH = 40
YARN_CONTEXT = 1_010_000  # = qwenfit.planner.YARN_CONTEXT: Qwen3.5 model cards, up to 1,010,000 with YaRN

# quantizations `inspect` summarises (every one: `qwenfit quants`)
SUMMARY_QUANTS = (
    "BF16",
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q4_K_M",
    "IQ4_XS",
    "Q3_K_M",
    "IQ2_XXS",
    "bf16",
    "fp8",
    "awq",
    "nvfp4",
    "mlx-8bit",
    "mlx-4bit",
)
# smaller formats a failed GPU-engine check may suggest, best first (GGUF and MLX: plan's defaults)
_GPU_FALLBACKS = ("bf16", "fp8", "w8a16", "awq", "gptq", "nvfp4")
_TRANSFORMERS_FALLBACKS = ("bf16", "bnb-int8", "bnb-nf4")


class UsageError(QwenfitError, ValueError):
    """Bad command-line input the parser could not catch (exit 2)."""


# ---------------------------------------------------------------------------------------------------
# argument parsing


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``qwenfit check: error: ... (see 'qwenfit check --help')``."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text} (see '{self.prog} --help')\n")


def _number(text: str) -> str:
    return text.strip().replace("_", "").replace(",", "")


def _gb(text: str) -> float:
    """A size in decimal GB: ``24``, ``24GB``, ``24G``, ``22.5``; ``24GiB`` is converted."""
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


def _integer(text: str, *, minimum: int, what: str) -> int:
    try:
        value = int(_number(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive(text: str) -> int:
    return _integer(text, minimum=1, what="a positive integer")


def _nonnegative(text: str) -> int:
    return _integer(text, minimum=0, what="a non-negative integer")


def _tokens(text: str) -> int:
    """A token count: ``32768``, ``32,768``, or ``32k`` (x 1024)."""
    t = _number(text).lower()
    if t.endswith("k"):
        return 1024 * _integer(t[:-1], minimum=1, what="a positive number of tokens (e.g. 32768 or 32k)")
    return _integer(t, minimum=1, what="a positive number of tokens (e.g. 32768 or 32k)")


def _ngl(text: str) -> int | None:
    """llama.cpp ``-ngl``: a layer count or ``all`` (None)."""
    if text.strip().lower() in ("all", "auto", "-1"):
        return None
    return _integer(text, minimum=0, what="a number of layers or 'all'")


def _add_hardware(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("hardware (none given: this machine is detected)")
    one = g.add_mutually_exclusive_group()
    one.add_argument(
        "--gpu",
        metavar="NAME[xN]",
        help="a catalog GPU or machine: rtx-4090, 2x rtx-3090, h100-sxm x8, m4-max-128, cpu "
        "(qwenfit hardware list)",
    )
    one.add_argument("--vram", type=_gb, metavar="GB", help="memory of each GPU in decimal GB (any GPU)")
    g.add_argument("--gpus", type=_positive, metavar="N", help="number of --vram GPUs (default 1)")
    g.add_argument("--ram", type=_gb, metavar="GB", help="host RAM in decimal GB (unified memory: all of it)")


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help=f"print one JSON object ({SCHEMA_ID})")


COMMANDS = ("plan", "check", "inspect", "quants", "models", "hardware", "export")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of ``only`` that one (what ``main`` runs: it starts faster)."""
    parser = _Parser(
        prog="qwenfit",
        description="Which Qwen3.5 model, in which quantization, fits this hardware: with how much "
        "context, on which engine, how fast, and the command to launch it.",
        epilog="exit codes: 0 ok / fits, 1 does not fit (check), 2 bad input or usage",
    )
    from qwenfit import __version__

    parser.add_argument("--version", action="version", version=f"qwenfit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    if only in (None, "plan"):
        p = sub.add_parser("plan", help="ranked options for a machine", description=cmd_plan.__doc__)
        p.add_argument(
            "models", nargs="*", metavar="MODEL", help="catalog name, repo id or path (default: all)"
        )
        _add_hardware(p)
        p.add_argument(
            "--engine",
            action="append",
            metavar="E",
            help=f"engines to plan for, repeatable or comma-separated ({', '.join(ENGINE_NAMES)}); "
            "default: llama.cpp, plus vLLM on NVIDIA/AMD or MLX on Apple",
        )
        p.add_argument("--quant", action="append", metavar="Q", help="quantizations to try, repeatable")
        p.add_argument(
            "--context", type=_tokens, metavar="N", help="tokens per sequence (default: most that fits)"
        )
        p.add_argument("--sequences", type=_positive, default=1, metavar="N", help="concurrent sequences")
        p.add_argument("--kv-cache", metavar="T", help="KV cache type (llama.cpp: q8_0, ...; vLLM: fp8)")
        p.add_argument("--nodes", type=_positive, default=1, metavar="N", help="machines vLLM may span (pp)")
        p.add_argument("--all", action="store_true", help="list every option and every rejection")
        _add_json(p)
        p.set_defaults(func=cmd_plan)

    if only in (None, "check"):
        p = sub.add_parser(
            "check", help="pre-flight one configuration (exit 0 fits, 1 not)", description=cmd_check.__doc__
        )
        p.add_argument("model", metavar="MODEL", help="catalog name, repo id or path")
        p.add_argument(
            "--quant",
            required=True,
            metavar="Q",
            help="llama.cpp file type (Q4_K_M, ...) or GPU/MLX format (fp8, awq, mlx-4bit, ...)",
        )
        p.add_argument(
            "--engine",
            default="llama.cpp",
            choices=ENGINE_NAMES,
            metavar="E",
            help=f"{', '.join(ENGINE_NAMES)} (default llama.cpp)",
        )
        p.add_argument(
            "--context",
            type=_tokens,
            metavar="N",
            help="tokens per sequence (default: the model's native context)",
        )
        p.add_argument("--sequences", type=_positive, default=1, metavar="N", help="concurrent sequences")
        p.add_argument("--kv-cache", metavar="T", help="KV cache type (llama.cpp: f16, q8_0, ...; vLLM: fp8)")
        _add_hardware(p)
        g = p.add_argument_group("placement")
        g.add_argument(
            "--n-cpu-moe",
            type=_nonnegative,
            default=0,
            metavar="N",
            help="llama.cpp: routed experts of the first N layers in RAM",
        )
        g.add_argument(
            "--ngl", type=_ngl, metavar="N", help="llama.cpp -ngl: layers on the GPU (default all)"
        )
        g.add_argument(
            "--tp", type=_positive, metavar="N", help="vLLM/SGLang tensor parallel size (default: GPUs)"
        )
        _add_json(p)
        p.set_defaults(func=cmd_check)

    if only in (None, "inspect"):
        p = sub.add_parser("inspect", help="one model by component, role and quantization")
        p.add_argument(
            "model", metavar="MODEL", help="catalog name, repo id, model folder, config.json or GGUF"
        )
        _add_json(p)
        p.set_defaults(func=cmd_inspect)

    if only in (None, "quants"):
        p = sub.add_parser("quants", help="every quantization of a model: bytes, bits per weight, quality")
        p.add_argument("model", metavar="MODEL", help="catalog name, repo id or path")
        p.add_argument(
            "--engine", choices=ENGINE_NAMES, metavar="E", help="only the formats this engine loads"
        )
        _add_json(p)
        p.set_defaults(func=cmd_quants)

    if only in (None, "models"):
        p = sub.add_parser("models", help="exact parameter counts of every catalog model")
        _add_json(p)
        p.set_defaults(func=cmd_models)

    if only in (None, "hardware"):
        p = sub.add_parser("hardware", help="the hardware catalog and this machine")
        hw = p.add_subparsers(dest="action", required=True, metavar="ACTION")
        q = hw.add_parser("list", help="every catalog device and host-RAM profile")
        _add_json(q)
        q.set_defaults(func=cmd_hardware_list)
        q = hw.add_parser("show", help="one device or machine spec (rtx-4090, 2x rtx-3090, m4-max-128)")
        q.add_argument("name", metavar="NAME[xN]")
        q.add_argument("--ram", type=_gb, metavar="GB", help="host RAM in decimal GB")
        _add_json(q)
        q.set_defaults(func=cmd_hardware_show)
        q = hw.add_parser("detect", help="this machine as the planner sees it")
        _add_json(q)
        q.set_defaults(func=cmd_hardware_detect)

    if only in (None, "export"):
        p = sub.add_parser("export", help="the docs calculator's JSON")
        p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
        p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # always JSON
        p.set_defaults(func=cmd_export)

    return parser


# ---------------------------------------------------------------------------------------------------
# output helpers


def _use_color(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set to anything (no-color.org)."""
    if os.environ.get("NO_COLOR", ""):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class _Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled and text else text


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _emit_json(data: dict[str, Any]) -> None:
    import json

    _emit(json.dumps(data, indent=2, ensure_ascii=False))


def _gb_text(n_bytes: int) -> str:
    from qwenfit.report import format_gb

    return format_gb(n_bytes)


class _Progress:
    """Header reads of a Hub or local checkpoint, on stderr, only when stderr is a terminal."""

    def __init__(self, stream: TextIO) -> None:
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


# ---------------------------------------------------------------------------------------------------
# the stacked memory bar

# term name -> segment: weights, KV cache, recurrent state, buffers, other (everything else)
_SEGMENT_OF = {
    "weights": 0,
    "vision": 0,
    "kv_cache": 1,
    "recurrent_state": 2,
    "compute_buffer": 3,
    "output_buffer": 3,
    "cuda_graphs": 3,
    "offload_copies": 3,
}
_SEGMENTS = (
    ("█", "weights", "34"),
    ("▓", "KV cache", "32"),
    ("▒", "recurrent state", "33"),
    ("░", "buffers", "35"),
    ("▚", "other", "36"),
)
_FREE = "·"


def _device_key(d: str) -> tuple[int, int, str]:
    digits = "".join(ch for ch in d if ch.isdigit())
    rank = 2 if d == "total" else 1 if d == "cpu" else 0
    return (rank, int(digits) if digits else -1, d)


def _bar(parts: Sequence[int], scale: int, width: int, budgeted: bool, style: _Style) -> str:
    """``[████▓▒░····]███`` : ``scale`` bytes fill ``width`` cells; cells past it overflow the budget."""
    limit = 2 * width
    cells: list[int] = []
    cum = 0
    for i, b in enumerate(parts):
        cum += b
        pos = min(limit, (cum * width + scale // 2) // max(scale, 1))
        cells += [i] * max(0, pos - len(cells))
    clipped = cum * width > limit * max(scale, 1)

    def paint(seq: list[int]) -> str:
        out, i = [], 0
        while i < len(seq):
            j = i
            while j < len(seq) and seq[j] == seq[i]:
                j += 1
            char, _, code = _SEGMENTS[seq[i]]
            out.append(style(char * (j - i), code))
            i = j
        return "".join(out)

    inside, over = cells[:width], cells[width:]
    free = style(_FREE * (width - len(inside)), "2")
    if not budgeted:
        return " " + paint(inside) + " " * (width - len(inside)) + " "
    tail = style("".join(_SEGMENTS[c][0] for c in over), "31")  # past the budget: red
    return "[" + paint(inside) + free + "]" + tail + ("»" if clipped else "")


def memory_bars(e: Estimate, *, width: int = BAR_WIDTH, color: bool = False) -> list[str]:
    """One stacked bar per device (and per ``total`` budget): weights / KV / state / buffers / other,
    scaled to the device's budget; what does not fit runs past the closing bracket."""
    from qwenfit.core.expr import as_int

    style = _Style(color)
    budget = dict(e.budget or {})
    devices = sorted({t.device for t in e.terms} | (set(budget) - {"total"}), key=_device_key)
    rows: list[tuple[str, list[int], int | None]] = []
    for d in [*devices, *(["total"] if "total" in budget else [])]:
        parts = [0] * len(_SEGMENTS)
        for t in e.terms:
            if d == "total" or t.device == d:
                parts[_SEGMENT_OF.get(t.name, 4)] += as_int(t.bytes)
        rows.append((d, parts, budget.get(d)))
    caps = [c for _, _, c in rows if c]
    reference = max(caps) if caps else max([sum(p) for _, p, _ in rows] + [1])
    label_w = max([len(d) for d, _, _ in rows] + [3])
    legend = "  ".join(style(char, code) + " " + name for char, name, code in _SEGMENTS)
    lines = [f"memory  {legend}  {style(_FREE, '2')} free"]
    for d, parts, cap in rows:
        used = sum(parts)
        bar = _bar(parts, cap or reference, width, cap is not None, style)
        if cap is None:
            text = f"{_gb_text(used)}, no budget (not judged)"
        elif used <= cap:
            text = f"{_gb_text(used)} of {_gb_text(cap)}, {_gb_text(cap - used)} free"
        else:
            text = f"{_gb_text(used)} of {_gb_text(cap)}, " + style(f"{_gb_text(used - cap)} over", "1;31")
        lines.append(f"  {d:<{label_w}}  {bar}  {text}")
    return lines


# ---------------------------------------------------------------------------------------------------
# models and machines


def _load(source: str) -> ModelSpec:
    """A ModelSpec; header reads of files or the Hub show progress on stderr (a terminal only)."""
    import qwenfit
    from qwenfit.loaders import catalog

    if catalog.find(source) is not None and not os.path.exists(source):
        return catalog.load_catalog_model(source)  # as qwenfit.load does, without importing the Hub
    return qwenfit.load(source, progress=_Progress(sys.stderr))


def _model_arg(source: str) -> str | ModelSpec:
    """Catalog names stay names (the planner caches by name); anything else is read once, here."""
    from qwenfit.loaders import catalog

    if catalog.find(source) is not None and not os.path.exists(source):
        return source
    return _load(source)


def _machine(args: argparse.Namespace, engines: Sequence[str]) -> Machine | None:
    """The machine the flags describe, or None when none is given (the caller detects)."""
    from qwenfit.loaders.hardware import custom_machine, parse_machine

    gpus = getattr(args, "gpus", None)
    if gpus is not None and args.vram is None:
        raise UsageError("--gpus counts --vram GPUs: give --vram GB, or --gpu NAMExN for a catalog GPU")
    if args.gpu is not None:
        return parse_machine(args.gpu, ram_gb=args.ram)
    if args.vram is None and args.ram is None:
        return None
    if engines and all(e == "mlx" for e in engines):  # MLX: a Mac; its one memory pool is the size given
        size = args.ram if args.ram is not None else args.vram
        return custom_machine(
            vram_gb=None,
            ram_gb=size,
            unified=True,
            vendor="apple",
            name=f"custom Mac, {size:g} GB unified memory",
        )
    return custom_machine(vram_gb=args.vram, ram_gb=args.ram, n_gpus=gpus or 1)


def _detect() -> Machine:
    from qwenfit.loaders.detect import detect

    return detect()


def _describe_machine(m: Machine) -> str:
    if m.devices:
        d = m.devices[0]
        count = f"{m.n_devices}x " if m.n_devices > 1 else ""
        each = " each" if m.n_devices > 1 else ""
        if d.id == "custom":  # from --vram/--ram: say what was given, not the generated name
            kind = "unified memory" if d.unified else "GPU" if m.n_devices == 1 else "GPUs"
            return f"{count}{kind} of {_gb_text(d.memory_bytes)}{each} (as given)" + (
                "" if d.unified else f", {_gb_text(m.ram_bytes)} RAM" if m.ram_bytes else ", RAM not given"
            )
        text = f"{m.name}: {count}{d.name} ({_gb_text(d.memory_bytes)}{each})"
        if d.unified:
            return text + ", unified memory"
    else:
        text = f"{m.name}: no GPU"
    return text + (f", {_gb_text(m.ram_bytes)} RAM" if m.ram_bytes else ", RAM not given")


def _repo_id(spec: ModelSpec) -> str | None:
    from qwenfit.loaders import catalog

    entry = catalog.find(spec.name)
    return entry.repo_ids[0] if entry and entry.repo_ids else None


def _canonical_quant(quant: str, engine: str) -> str:
    """The quant as ``engine`` spells it (Q4_K_M, fp8, mlx-4bit), or a UsageError that suggests."""
    import difflib

    from qwenfit.core.formats.gguf import FILE_TYPES
    from qwenfit.core.formats.gpu import FORMATS

    q = quant.strip()
    gguf = engine in GGUF_ENGINES
    if q.endswith(".gguf"):
        if gguf:
            return q
        raise UsageError(f"--quant {quant}: a GGUF file runs on llama.cpp, ollama or lm-studio, not {engine}")
    lower, upper = q.lower(), q.upper()
    if gguf:
        if upper in FILE_TYPES:
            return upper
        if lower in FORMATS:
            other = "mlx" if lower.startswith("mlx-") else "vllm"
            raise UsageError(
                f"--quant {quant}: a safetensors format, not a llama.cpp file type; use "
                f"--engine {other}, or a GGUF type such as Q4_K_M"
            )
        names = list(FILE_TYPES)
    else:
        mlx_ok = engine == "mlx"
        if lower in FORMATS and (lower.startswith("mlx-") == mlx_ok or lower in ("bf16", "fp16")):
            return lower
        if lower in FORMATS:
            want = "--engine mlx" if lower.startswith("mlx-") else "--engine vllm (or sglang, transformers)"
            raise UsageError(f"--quant {quant}: {engine} does not load this format; use {want}")
        if upper in FILE_TYPES:
            example = "mlx-4bit" if mlx_ok else "fp8"
            raise UsageError(
                f"--quant {quant}: a llama.cpp file type; use --engine llama.cpp (or ollama, "
                f"lm-studio), or a {engine} format such as {example}"
            )
        names = [f for f in FORMATS if f.startswith("mlx-") == mlx_ok or f in ("bf16", "fp16")]
    close = difflib.get_close_matches(upper if gguf else lower, names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UsageError(
        f"unknown quant {quant!r} for {engine}.{hint} See 'qwenfit quants MODEL --engine {engine}'."
    )


def _any_quant(quant: str) -> str:
    """A quant for plan's --quant: any llama.cpp file type or GPU/MLX format (the planner pairs them
    with the engines that run them)."""
    import difflib

    from qwenfit.core.formats.gguf import FILE_TYPES
    from qwenfit.core.formats.gpu import FORMATS

    q = quant.strip()
    if q.upper() in FILE_TYPES:
        return q.upper()
    if q.lower() in FORMATS:
        return q.lower()
    close = difflib.get_close_matches(q, [*FILE_TYPES, *FORMATS], n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UsageError(f"unknown quant {quant!r}.{hint} See 'qwenfit quants MODEL'.")


def _engines(values: Iterable[str] | None) -> list[str] | None:
    import difflib

    if not values:
        return None
    out: list[str] = []
    for value in values:
        for name in (v.strip() for v in value.split(",")):
            if not name:
                continue
            key = name.lower().replace("llamacpp", "llama.cpp").replace("lmstudio", "lm-studio")
            if key not in ENGINE_NAMES:
                close = difflib.get_close_matches(key, ENGINE_NAMES, n=2, cutoff=0.5)
                hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise UsageError(f"unknown engine {name!r}.{hint} Engines: {', '.join(ENGINE_NAMES)}.")
            if key not in out:
                out.append(key)
    return out or None


def _engine_context(engine: str, context: int, sequences: int) -> int:
    """estimate()'s ``context``: llama.cpp engines take the total -c, the others tokens per sequence."""
    return context * sequences if engine in GGUF_ENGINES else context


# ---------------------------------------------------------------------------------------------------
# JSON (plain dicts; qwenfit.schema describes them)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _estimate_json(e: Estimate) -> dict[str, Any]:
    from qwenfit.core.expr import as_int

    return {
        "model": e.model,
        "quant": e.quant,
        "engine": e.engine,
        "settings": {k: _jsonable(v) for k, v in e.settings.items()},
        "terms": [
            {
                "name": t.name,
                "device": t.device,
                "bytes": as_int(t.bytes),
                "exact": t.exact,
                "source": t.source,
                "detail": t.detail,
            }
            for t in e.terms
        ],
        "by_device": e.by_device,
        "budget": None if e.budget is None else dict(e.budget),
        "used_by_budget": e.used_by_budget,
        "total_bytes": e.total_bytes,
        "fits": e.fits,
        "shortfall_bytes": e.shortfall_bytes,
        "exact": e.exact,
        "notes": list(e.notes),
    }


def _device_json(d: Device) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "vendor": d.vendor,
        "kind": d.kind,
        "memory_bytes": d.memory_bytes,
        "memory_exact": d.memory_exact,
        "bandwidth_gbps": d.bandwidth_gbps,
        "fp16_tflops": d.fp16_tflops,
        "fp8_tflops": d.fp8_tflops,
        "fp4_tflops": d.fp4_tflops,
        "interconnect": d.interconnect,
        "interconnect_gbps": d.interconnect_gbps,
        "backends": list(d.backends),
        "compute_capability": d.compute_capability,
        "tdp_w": d.tdp_w,
        "aliases": list(d.aliases),
        "source": d.source,
    }


def _host_json(h: HostMemory) -> dict[str, Any]:
    return {
        "id": h.id,
        "name": h.name,
        "bandwidth_gbps": h.bandwidth_gbps,
        "effective_gbps": h.effective_gbps,
        "source": h.source,
    }


def _machine_json(m: Machine) -> dict[str, Any]:
    return {
        "name": m.name,
        "devices": [_device_json(d) for d in m.devices],
        "n_devices": m.n_devices,
        "vram_bytes": m.vram_bytes,
        "unified": m.unified,
        "ram_bytes": m.ram_bytes,
        "host": None if m.host is None else _host_json(m.host),
        "cpu_threads": m.cpu_threads,
        "notes": list(m.notes),
    }


def _placement_json(p: Placement | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "kind": p.kind,
        "n_gpus": p.n_gpus,
        "n_cpu_moe": p.n_cpu_moe,
        "n_gpu_layers": p.n_gpu_layers,
        "tp": p.tp,
        "pp": p.pp,
        "nodes": p.nodes,
        "description": str(p),
    }


def _option_json(o: Option) -> dict[str, Any]:
    from qwenfit.planner import QUALITY_CLASSES

    return {
        "model": o.model,
        "quant": o.quant,
        "engine": o.engine,
        "fits": o.fits,
        "placement": _placement_json(o.placement),
        "context": o.context,
        "max_context": o.max_context,
        "sequences": o.sequences,
        "max_sequences": o.max_sequences,
        "decode_tokens_per_s": o.decode_tokens_per_s,
        "prefill_tokens_per_s": o.prefill_tokens_per_s,
        "speed_detail": o.speed_detail,
        "command": o.command,
        "reason": o.reason,
        "quality_rank": o.quality_rank,
        "quality_class": QUALITY_CLASSES[o.quality_class],
        "model_params": o.model_params,
        "headroom_bytes": o.headroom_bytes,
        "memory_by_device": o.memory_by_device,
        "notes": list(o.notes),
        "estimate": None if o.estimate is None else _estimate_json(o.estimate),
    }


def _plan_json(p: Plan) -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID,
        "kind": "plan",
        "machine": _machine_json(p.machine),
        "notes": list(p.notes),
        "fits": p.fits,
        "best": None if p.best is None else _option_json(p.best),
        "options": [_option_json(o) for o in p.options],
        "rejected": [_option_json(o) for o in p.rejected],
    }


# ---------------------------------------------------------------------------------------------------
# plan


def cmd_plan(args: argparse.Namespace) -> int:
    """Ranked options for running MODEL (default: every catalog model) on a machine: the best
    placement, context, concurrency, speed and launch command of each (model, engine, quant).
    With no hardware flag the local machine is detected."""
    from qwenfit.planner import plan
    from qwenfit.report import format_plan

    engines = _engines(args.engine)
    quants = [_any_quant(q) for v in args.quant or () for q in v.split(",") if q.strip()] or None
    machine = _machine(args, engines or ())
    models = [_model_arg(m) for m in args.models]
    model: Any = None if not models else models[0] if len(models) == 1 else models
    if args.kv_cache is not None:
        _validate_kv_cache(args.kv_cache, models[0] if models else "0.8B", engines or ["llama.cpp"])
    result = plan(
        model,
        hardware=machine,
        engines=engines,
        quants=quants,
        context=args.context,
        sequences=args.sequences,
        kv_cache=args.kv_cache,
        nodes=args.nodes,
    )
    if args.json:
        _emit_json(_plan_json(result))
        return EXIT_OK
    many = 1 << 30
    text = format_plan(result, max_rows=many, max_rejected=many) if args.all else format_plan(result)
    lines = [text]
    best = result.best
    if best is not None and best.estimate is not None:
        lines += ["", f"best option, memory per device ({best.model} {best.quant} on {best.engine}):"]
        lines += memory_bars(best.estimate, color=_use_color(sys.stdout))
    if not args.all and (len(result.options) > 15 or len(result.rejected) > 10):
        lines.append("\n(--all lists every option and rejection; --json gives every number)")
    _emit("\n".join(lines))
    return EXIT_OK


def _validate_kv_cache(kv_cache: str, model: str | ModelSpec, engines: Sequence[str]) -> None:
    """A KV cache type every engine asked for understands (the planner would otherwise reject every
    option with the same reason): one tiny estimate per engine, no budget."""
    import qwenfit

    for engine in engines:
        try:
            qwenfit.estimate(model, context=256, engine=engine, kv_cache=kv_cache)
        except QwenfitError as exc:
            if "kv" in str(exc).lower():
                raise UsageError(f"--kv-cache {kv_cache}: {exc}") from None


# ---------------------------------------------------------------------------------------------------
# check


def cmd_check(args: argparse.Namespace) -> int:
    """Pre-flight one configuration: does MODEL in quant Q, with this context and these sequences,
    fit this machine on this engine? Exit 0 fits, 1 does not fit (with the shortfall and the nearest
    options that fit: less context, fewer sequences, offload, a smaller quant), 2 bad input.
    With no hardware flag the local machine is detected."""
    import dataclasses

    import qwenfit
    from qwenfit.core.engines.vllm.pool import DEFAULT_GPU_MEMORY_UTILIZATION

    engine = args.engine
    quant = _canonical_quant(args.quant, engine)
    machine = _machine(args, [engine])
    if machine is None:
        machine = _detect()
    spec = _load(args.model)
    native = spec.text.max_position_embeddings
    context = args.context or native
    if context > YARN_CONTEXT:
        raise UsageError(
            f"--context {context:,} is beyond {spec.name}'s limit of {YARN_CONTEXT:,} tokens "
            f"(native {native:,}, more with YaRN rope scaling)"
        )
    sequences = args.sequences
    tp = args.tp
    if tp is None:
        tp = machine.n_devices if engine in ("vllm", "sglang") and machine.n_devices > 1 else 1
    kw: dict[str, Any] = {
        "engine": engine,
        "kv_cache": args.kv_cache,
        "sequences": sequences,
        "hardware": machine,
        "n_cpu_moe": args.n_cpu_moe,
        "tp": tp,
    }
    if args.ngl is not None:
        kw["n_gpu_layers"] = args.ngl
    e = qwenfit.estimate(spec, quant, context=_engine_context(engine, context, sequences), **kw)
    if context > native:
        e = dataclasses.replace(
            e,
            notes=(
                *e.notes,
                f"{context:,} tokens is beyond the native {native:,}: "
                "it needs YaRN rope scaling (see the model card)",
            ),
        )
    if e.fits is None:
        need = "--ram GB" if not machine.devices else "--gpu, --vram or --ram"
        raise UsageError(f"no memory budget to check against on {machine.name}: give {need}")
    from qwenfit.core.engines.commands import Launch, launch_command

    gguf = engine in GGUF_ENGINES
    n_gpus = machine.n_devices if gguf else tp
    launch = Launch(
        engine=engine,
        model_name=spec.name,
        repo_id=_repo_id(spec),
        quant=quant,
        context=context,
        sequences=sequences,
        kv_cache=args.kv_cache,
        n_gpus=max(1, n_gpus),
        n_gpu_layers=args.ngl,
        n_cpu_moe=args.n_cpu_moe,
        tensor_split=(1,) * n_gpus if gguf and n_gpus > 1 else None,
        cpu_only=not machine.devices,
        tp=tp,
        gpu_memory_utilization=DEFAULT_GPU_MEMORY_UTILIZATION if engine == "vllm" else None,
        vision=bool(e.settings.get("vision")),
    )
    command = launch_command(launch)
    alternatives = [] if e.fits else _alternatives(spec, quant, machine, context, sequences, kw, launch)
    if args.json:
        _emit_json(
            {
                "schema": SCHEMA_ID,
                "kind": "check",
                **_estimate_json(e),
                "context": context,
                "sequences": sequences,
                "machine": _machine_json(machine),
                "command": command,
                "alternatives": alternatives,
            }
        )
    else:
        _emit(_format_check(e, machine, context, sequences, command, alternatives))
    return EXIT_OK if e.fits else EXIT_DOES_NOT_FIT


def _largest(fits: Callable[[int], bool], lo: int, hi: int, step: int) -> int:
    """Largest multiple of ``step`` in [lo, hi] with fits() (monotone), else 0."""
    if hi < lo or not fits(lo):
        return 0
    a, b, best = lo // step, hi // step, lo
    while a <= b:
        mid = (a + b) // 2
        if mid * step >= lo and fits(mid * step):
            best, a = mid * step, mid + 1
        else:
            b = mid - 1
    return best


def _alternatives(
    spec: ModelSpec,
    quant: str,
    machine: Machine,
    context: int,
    sequences: int,
    kw: dict[str, Any],
    launch: Any,
) -> list[dict[str, Any]]:
    """The nearest configurations that fit: the same one with less context or fewer sequences, the
    planner's offload/placement for this quant, and the best smaller quants."""
    import dataclasses

    import qwenfit
    from qwenfit.core.engines.commands import launch_command

    engine = kw["engine"]
    out: list[dict[str, Any]] = []

    def estimate(ctx: int, seqs: int) -> Estimate:
        return qwenfit.estimate(
            spec, quant, context=_engine_context(engine, ctx, seqs), **{**kw, "sequences": seqs}
        )

    def same(kind: str, description: str, ctx: int, seqs: int) -> dict[str, Any]:
        e = estimate(ctx, seqs)
        return {
            "kind": kind,
            "description": description,
            "quant": quant,
            "engine": engine,
            "context": ctx,
            "sequences": seqs,
            "placement": None,
            "memory_by_device": e.by_device,
            "decode_tokens_per_s": None,
            "command": launch_command(dataclasses.replace(launch, context=ctx, sequences=seqs)),
        }

    step = 256 if engine in GGUF_ENGINES else 1
    try:
        best_ctx = _largest(lambda c: bool(estimate(c, sequences).fits), step, context - 1, step)
        if best_ctx:
            out.append(
                same(
                    "context", f"{best_ctx:,} tokens per sequence instead of {context:,}", best_ctx, sequences
                )
            )
        if sequences > 1:
            best_seq = _largest(lambda n: bool(estimate(context, n).fits), 1, sequences - 1, 1)
            if best_seq:
                out.append(
                    same(
                        "sequences",
                        f"{best_seq} sequence(s) of {context:,} tokens instead of {sequences}",
                        context,
                        best_seq,
                    )
                )
    except QwenfitError:
        pass
    out += _planned_alternatives(spec, quant, machine, context, sequences, kw)
    return out


def _planned_alternatives(
    spec: ModelSpec, quant: str, machine: Machine, context: int, sequences: int, kw: dict[str, Any]
) -> list[dict[str, Any]]:
    """The planner, restricted to this engine and this or smaller quants, at this context."""
    from qwenfit.loaders.quants import UnknownQuantError, quality_key
    from qwenfit.planner import DEFAULT_QUANTS, plan

    engine = kw["engine"]
    family = "gguf" if engine in GGUF_ENGINES else engine
    candidates = {"vllm": _GPU_FALLBACKS, "sglang": _GPU_FALLBACKS, "transformers": _TRANSFORMERS_FALLBACKS}
    pool = candidates.get(family) or DEFAULT_QUANTS.get(family, ())
    try:
        mine = quality_key(quant)
        smaller = [q for q in pool if q != quant and quality_key(q) > mine]
    except UnknownQuantError:
        smaller = []
    try:
        result = plan(
            spec if spec.checkpoint is not None else spec.name,
            hardware=machine,
            engines=[engine],
            quants=[quant, *smaller],
            context=context,
            sequences=sequences,
            kv_cache=kw.get("kv_cache"),
        )
    except QwenfitError:
        return []
    # offered only when the check itself agrees: `qwenfit check` with the option's flags exits 0
    verified = [o for o in result.options if o.placement is not None and _passes_check(spec, o, machine, kw)]
    out: list[dict[str, Any]] = []
    same = [o for o in verified if o.quant == quant]
    if same:
        o = same[0]
        assert o.placement is not None
        kind = "offload" if o.placement.kind in ("n_cpu_moe", "ngl", "cpu") else "placement"
        out.append(_alternative_json(kind, str(o.placement), o))
    for o in [o for o in verified if o.quant != quant][:2]:
        out.append(_alternative_json("quant", f"{o.quant}, {o.placement}", o))
    return out


def _passes_check(spec: ModelSpec, o: Option, machine: Machine, kw: dict[str, Any]) -> bool:
    """Whether ``qwenfit check`` with the option's quant, context, sequences and placement fits."""
    import qwenfit

    p = o.placement
    assert p is not None
    engine = kw["engine"]
    args: dict[str, Any] = {**kw, "sequences": o.sequences, "n_cpu_moe": p.n_cpu_moe}
    if engine in GGUF_ENGINES:
        args["n_gpu_layers"] = p.n_gpu_layers
    elif engine in ("vllm", "sglang"):
        args["tp"], args["pp"] = p.tp, p.pp
    try:
        e = qwenfit.estimate(spec, o.quant, context=_engine_context(engine, o.context, o.sequences), **args)
    except QwenfitError:
        return False
    return bool(e.fits)


def _alternative_json(kind: str, description: str, o: Option) -> dict[str, Any]:
    return {
        "kind": kind,
        "description": description,
        "quant": o.quant,
        "engine": o.engine,
        "context": o.context,
        "sequences": o.sequences,
        "placement": _placement_json(o.placement),
        "memory_by_device": o.memory_by_device,
        "decode_tokens_per_s": o.decode_tokens_per_s,
        "command": o.command,
    }


def _terms_table(e: Estimate) -> str:
    from qwenfit.core.expr import as_int
    from qwenfit.report import table

    rows = [
        [t.name, t.device, _gb_text(as_int(t.bytes)), "exact" if t.exact else "estimated", t.detail]
        for t in sorted(e.terms, key=lambda t: _device_key(t.device))
        if t.bytes
    ]
    return table(rows, ["term", "device", "size", "", "detail"], right={2})


def _format_check(
    e: Estimate,
    machine: Machine,
    context: int,
    sequences: int,
    command: str,
    alternatives: Sequence[dict[str, Any]],
) -> str:
    color = _use_color(sys.stdout)
    style = _Style(color)
    seqs = f" x {sequences} sequences" if sequences > 1 else ", 1 sequence"
    lines = [
        f"{e.model} {e.quant} on {e.engine}: {context:,} tokens{seqs}",
        f"machine: {_describe_machine(machine)}",
        "",
        _terms_table(e),
        f"total {_gb_text(e.total_bytes)}",
        "",
        *memory_bars(e, color=color),
        "",
    ]
    budget, used = dict(e.budget or {}), e.used_by_budget
    if e.fits:
        device = min(budget, key=lambda d: budget[d] - used[d])
        lines.append(
            style("fits", "1;32")
            + f": {_gb_text(budget[device] - used[device])} free on {device}"
            + (" (the fullest device)" if len(budget) > 1 else "")
        )
        lines.append(f"command: {_indent_command(command)}")
    else:
        worst = max(budget, key=lambda d: used[d] - budget[d])
        lines.append(
            style("DOES NOT FIT", "1;31") + f": short by {_gb_text(e.shortfall_bytes)} on {worst} "
            f"({_gb_text(used[worst])} needed, {_gb_text(budget[worst])} available)"
        )
        if alternatives:
            lines.append("")
            lines.append("nearest options that fit:")
            for a in alternatives:
                speed = f", ~{a['decode_tokens_per_s']:.0f} tok/s" if a["decode_tokens_per_s"] else ""
                label = {
                    "context": "less context",
                    "sequences": "fewer sequences",
                    "offload": "offload",
                    "placement": "placement",
                    "quant": "smaller quant",
                }[a["kind"]]
                where = "" if a["kind"] in ("context", "sequences") else f", {a['context']:,} tokens"
                lines.append(f"  - {label}: {a['description']}{where}{speed}")
                lines.append(f"      {_indent_command(a['command'], 6)}")
        else:
            lines.append("nothing nearby fits: try a smaller model ('qwenfit plan --gpu ...' ranks them)")
    lines += [f"note: {n}" for n in e.notes]
    return "\n".join(lines)


def _indent_command(command: str, indent: int = 2) -> str:
    return command.replace("\n", "\n" + " " * (indent + 2))


# ---------------------------------------------------------------------------------------------------
# inspect, quants, models


def _quant_sizes(spec: ModelSpec, names: Iterable[str], *, ranked: bool = True) -> list[dict[str, Any]]:
    """Exact weight bytes per quantization (skipping any a model's shapes cannot take); ``ranked``:
    best first (quality rank, published KLD, size), else in the order given."""
    import qwenfit
    from qwenfit.core.formats.gguf import FILE_TYPES
    from qwenfit.loaders.quants import UnknownQuantError, quant_quality, resolve_quant_name
    from qwenfit.planner import QUALITY_CLASSES, quality_class

    records = quant_quality()
    out: list[dict[str, Any]] = []
    for name in names:
        try:
            w = qwenfit.weights(spec, name)
        except (QwenfitError, ValueError):
            continue
        family = "gguf" if name in FILE_TYPES else "mlx" if name.startswith("mlx-") else "gpu"
        if family == "gguf":
            engines = list(GGUF_ENGINES)
        elif family == "mlx":
            engines = ["mlx"]
        else:
            engines = ["vllm", "sglang", "transformers", *(["mlx"] if name in ("bf16", "fp16") else [])]
        try:
            record = records[resolve_quant_name(name)]
        except UnknownQuantError:
            record = None
        n_params = w.n_params
        out.append(
            {
                "name": name,
                "family": family,
                "engines": engines,
                "file_bytes": w.file_bytes,
                "tensor_bytes": w.total_bytes,
                "n_params": n_params,
                "bits_per_weight": round(8 * w.total_bytes / n_params, 4) if n_params else 0.0,
                "quality_rank": None if record is None else record.quality_rank,
                "quality_class": QUALITY_CLASSES[quality_class(name)],
                "kld": None if record is None else record.kld,
                "ppl_delta_pct": None if record is None else record.ppl_delta_pct,
            }
        )
    if ranked:
        out.sort(
            key=lambda q: (
                q["quality_rank"] is None,
                q["quality_rank"] or 0,
                q["kld"] is None,
                q["kld"] or 0.0,
                -q["tensor_bytes"],
                q["name"],
            )
        )
    return out


def _quant_table(rows: Sequence[dict[str, Any]]) -> str:
    from qwenfit.report import table

    cells = [
        [
            q["name"],
            q["family"],
            _gb_text(q["file_bytes"]).removesuffix(" GB"),
            f"{q['file_bytes']:,}",
            f"{q['bits_per_weight']:.2f}",
            "-" if q["quality_rank"] is None else str(q["quality_rank"]),
            q["quality_class"],
            "-" if q["kld"] is None else f"{q['kld']:.4f}",
        ]
        for q in rows
    ]
    header = ["quant", "family", "GB", "bytes", "bits/w", "rank", "class", "KLD"]
    return table(cells, header, right={2, 3, 4, 5, 7})


def cmd_quants(args: argparse.Namespace) -> int:
    """Every quantization of MODEL: exact file bytes, bits per weight and the quality record."""
    from qwenfit.core.formats.gguf import FILE_TYPES
    from qwenfit.core.formats.gpu import FORMATS

    spec = _load(args.model)
    engine = args.engine
    if engine is None:
        names = [*FILE_TYPES, *FORMATS]
    elif engine in GGUF_ENGINES:
        names = list(FILE_TYPES)
    elif engine == "mlx":
        names = [f for f in FORMATS if f.startswith("mlx-") or f in ("bf16", "fp16")]
    else:
        names = [f for f in FORMATS if not f.startswith("mlx-")]
    rows = _quant_sizes(spec, names)
    if args.json:
        _emit_json(
            {"schema": SCHEMA_ID, "kind": "quants", "model": spec.name, "engine": engine, "quants": rows}
        )
        return EXIT_OK
    lines = [
        f"{spec.name}: {spec.params.total:,} parameters; weights per quantization"
        + (f" for {engine}" if engine else ""),
        "",
        _quant_table(rows),
        "",
        "GB/bytes: the file(s) to download, exact (GGUF: the text model + MTP layer, header included;",
        "GPU/MLX formats: the published checkpoint). rank: quality, 1 best (data/quants.yaml);",
        "class: good (>= 4 bits), usable (3-bit), poor (<= 2-bit); KLD: published, against BF16.",
    ]
    _emit("\n".join(lines))
    return EXIT_OK


def _params_json(spec: ModelSpec) -> dict[str, Any]:
    p = spec.params
    return {
        "total": p.total,
        "active": p.active,
        "text": p.text,
        "mtp": p.mtp,
        "vision": p.vision,
        "by_role": dict(p.by_role),
    }


def _inspect_json(spec: ModelSpec, sizes: list[dict[str, Any]]) -> dict[str, Any]:
    t, inv, ck = spec.text, spec.inventory, spec.checkpoint
    checkpoint = None
    if ck is not None:
        quantization = None
        if ck.quantization is not None:
            q = ck.quantization
            quantization = str(q.config.get("file_type")) if q.method == "gguf" else q.method
        checkpoint = {
            "format": ck.format,
            "quantization": quantization,
            "files": len(ck.files),
            "tensors": len(ck.tensors),
            "tensor_bytes": ck.tensor_bytes,
            "match_exact": None if ck.match is None else ck.match.exact,
            "match_notes": [] if ck.match is None else list(ck.match.notes),
        }
    return {
        "schema": SCHEMA_ID,
        "kind": "inspect",
        "name": spec.name,
        "family": str(spec.family),
        "source": spec.source or "catalog",
        "n_layers": t.num_hidden_layers,
        "n_linear_attention": t.n_linear_attention,
        "n_full_attention": t.n_full_attention,
        "hidden_size": t.hidden_size,
        "vocab_size": t.vocab_size,
        "tie_word_embeddings": t.tie_word_embeddings,
        "max_position_embeddings": t.max_position_embeddings,
        "num_experts": t.num_experts,
        "num_experts_per_tok": t.num_experts_per_tok,
        "moe_intermediate_size": t.moe_intermediate_size,
        "shared_expert_intermediate_size": t.shared_expert_intermediate_size,
        "intermediate_size": t.intermediate_size,
        "mtp_layers": spec.mtp_layers,
        "vision_depth": None if spec.vision is None else spec.vision.depth,
        "params": _params_json(spec),
        "inventory_entries": len(inv),
        "stored_tensors": len(inv.hf_tensors()),
        "stored_bytes": inv.stored_bytes,
        "checkpoint": checkpoint,
        "quant_sizes": sizes,
    }


def cmd_inspect(args: argparse.Namespace) -> int:
    """One model by component and role, with its size under common quantizations."""
    from qwenfit.report import table

    spec = _load(args.model)
    sizes = _quant_sizes(spec, SUMMARY_QUANTS, ranked=False)
    if args.json:
        _emit_json(_inspect_json(spec, sizes))
        return EXIT_OK
    p, t, inv = spec.params, spec.text, spec.inventory
    lines = [
        f"{spec.name}  ({spec.family}; source: {spec.source or 'catalog'})",
        f"  layers   {t.num_hidden_layers}: {t.n_linear_attention} Gated DeltaNet + "
        f"{t.n_full_attention} full attention; hidden {t.hidden_size}; vocab {t.vocab_size}"
        f"{'; tied embeddings' if t.tie_word_embeddings else ''}",
    ]
    if t.is_moe:
        lines.append(
            f"  experts  {t.num_experts} routed (top {t.num_experts_per_tok}) + shared "
            f"{t.shared_expert_intermediate_size}; expert FFN {t.moe_intermediate_size}"
        )
    else:
        lines.append(f"  FFN      dense, intermediate {t.intermediate_size}")
    lines += [
        f"  MTP      {spec.mtp_layers} layer(s);  vision: "
        f"{'depth ' + str(spec.vision.depth) if spec.vision else 'none'}",
        f"  params   total {p.total:,}  active {p.active:,}  "
        f"(text {p.text:,}, MTP {p.mtp:,}, vision {p.vision:,})",
        f"  tensors  {len(inv)} inventory entries, {len(inv.hf_tensors())} stored safetensors tensors, "
        f"{inv.stored_bytes:,} bytes as stored",
    ]
    ck = spec.checkpoint
    if ck is not None:
        quant = ""
        if ck.quantization is not None:
            q = ck.quantization
            quant = f" {q.config.get('file_type')}" if q.method == "gguf" else f", {q.method}"
        lines.append(
            f"  files    {ck.format}{quant}: {len(ck.files)} file(s), {len(ck.tensors)} tensors, "
            f"{ck.tensor_bytes:,} bytes of tensor data"
        )
        if ck.match is not None:
            lines.append(
                "  match    "
                + ("exact: every stored tensor is accounted for" if ck.match.exact else "differs")
            )
            lines += [f"           - {note}" for note in ck.match.notes]
    rows = [
        [role, f"{n:,}", f"{100 * n / p.total:.2f}%"]
        for role, n in sorted(p.by_role.items(), key=lambda kv: -kv[1])
    ]
    lines += ["", table(rows, ["role", "params", "share"], right={1, 2})]
    if sizes:
        size_rows = [
            [
                q["name"],
                _gb_text(q["file_bytes"]).removesuffix(" GB"),
                f"{q['bits_per_weight']:.2f}",
                q["quality_class"],
            ]
            for q in sizes
        ]
        lines += [
            "",
            "sizes (every quantization: qwenfit quants MODEL)",
            table(size_rows, ["quant", "GB", "bits/w", "class"], right={1, 2}),
        ]
    _emit("\n".join(lines))
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    """Exact parameter counts of every catalog model."""
    from qwenfit.loaders import catalog
    from qwenfit.report import table

    entries = [(entry, catalog.load_catalog_model(entry.name)) for entry in catalog.entries()]
    if args.json:
        models = [
            {
                "name": entry.name,
                "aliases": list(entry.aliases),
                "repo_ids": list(entry.repo_ids),
                "params": _params_json(spec),
                "n_layers": spec.text.num_hidden_layers,
                "n_linear_attention": spec.text.n_linear_attention,
                "n_full_attention": spec.text.n_full_attention,
                "num_experts": spec.text.num_experts,
                "num_experts_per_tok": spec.text.num_experts_per_tok,
            }
            for entry, spec in entries
        ]
        _emit_json({"schema": SCHEMA_ID, "kind": "models", "models": models})
        return EXIT_OK
    rows = []
    for entry, spec in entries:
        p, t = spec.params, spec.text
        layers = f"{t.num_hidden_layers} ({t.n_linear_attention} GDN + {t.n_full_attention} attn)"
        experts = f"{t.num_experts} (top {t.num_experts_per_tok} + shared)" if t.is_moe else "dense"
        rows.append(
            [
                entry.name,
                f"{p.total:,}",
                f"{p.active / 1e9:.2f}B",
                f"{p.text:,}",
                f"{p.mtp:,}",
                f"{p.vision:,}",
                layers,
                experts,
            ]
        )
    header = ["model", "total params (HF)", "active", "text", "MTP", "vision", "layers", "experts"]
    _emit(table(rows, header, right={1, 2, 3, 4, 5}))
    _emit(
        "\ntotal = every tensor of the Hugging Face checkpoint (text + MTP + vision);"
        " active = per-token text params (routed experts at top-k, embeddings and lm_head in)."
    )
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------
# hardware, export


def _device_lines(d: Device) -> list[str]:
    def opt(value: float | None, unit: str) -> str:
        return "unknown" if not value else f"{value:g} {unit}"

    link = f"{d.interconnect} ({opt(d.interconnect_gbps, 'GB/s')})" if d.interconnect else "-"
    return [
        f"{d.id}: {d.name}",
        f"  vendor     {d.vendor} ({d.kind}); backends {', '.join(d.backends) or '-'}"
        + (f"; compute capability {d.compute_capability}" if d.compute_capability else ""),
        f"  memory     {d.memory_bytes:,} bytes = {_gb_text(d.memory_bytes)} "
        f"({'driver-reported' if d.memory_exact else 'nominal'})",
        f"  bandwidth  {opt(d.bandwidth_gbps, 'GB/s')}",
        f"  compute    FP16 {opt(d.fp16_tflops, 'TFLOPS')}, FP8 {opt(d.fp8_tflops, 'TFLOPS')}, "
        f"FP4 {opt(d.fp4_tflops, 'TFLOPS')}",
        f"  link       {link}" + (f"; TDP {d.tdp_w} W" if d.tdp_w else ""),
        f"  aliases    {', '.join(d.aliases) or '-'}",
        f"  source     {d.source or '-'}",
    ]


def _machine_lines(m: Machine) -> list[str]:
    lines = [f"machine: {_describe_machine(m)}"]
    if m.cpu_threads:
        lines.append(f"  CPU threads {m.cpu_threads}")
    if m.host is not None:
        lines.append(f"  host RAM   {m.host.name} ({m.host.bandwidth_gbps:g} GB/s peak)")
    seen: set[str] = set()
    for d in m.devices:
        if d.id not in seen:
            seen.add(d.id)
            lines += ["", *_device_lines(d)]
    if m.notes:
        lines += ["", *(f"note: {n}" for n in m.notes)]
    return lines


def cmd_hardware_list(args: argparse.Namespace) -> int:
    """Every catalog device and host-RAM profile."""
    from qwenfit.loaders.hardware import hardware_catalog, host_profiles
    from qwenfit.report import table

    devices, hosts = hardware_catalog(), host_profiles()
    if args.json:
        _emit_json(
            {
                "schema": SCHEMA_ID,
                "kind": "hardware-list",
                "devices": [_device_json(d) for d in devices.values()],
                "hosts": [_host_json(h) for h in hosts.values()],
            }
        )
        return EXIT_OK
    rows = [
        [
            d.id,
            d.name,
            d.vendor,
            _gb_text(d.memory_bytes).removesuffix(" GB"),
            f"{d.bandwidth_gbps:g}",
            f"{d.fp16_tflops:g}" if d.fp16_tflops else "-",
            ", ".join(d.backends),
        ]
        for d in devices.values()
    ]
    host_rows = [[h.id, h.name, f"{h.bandwidth_gbps:g}", f"{h.effective_gbps:g}"] for h in hosts.values()]
    _emit(
        "\n".join(
            [
                table(
                    rows, ["id", "name", "vendor", "GB", "GB/s", "FP16 TFLOPS", "backends"], right={3, 4, 5}
                ),
                "",
                table(host_rows, ["host RAM profile", "name", "peak GB/s", "effective GB/s"], right={2, 3}),
                "",
                f"{len(rows)} devices. Use an id (or 'Nx id') with --gpu; "
                "'qwenfit hardware show ID' for sources.",
            ]
        )
    )
    return EXIT_OK


def cmd_hardware_show(args: argparse.Namespace) -> int:
    """One device or machine spec resolved against the catalog."""
    from qwenfit.loaders.hardware import parse_machine

    machine = parse_machine(args.name, ram_gb=args.ram)
    if args.json:
        _emit_json(
            {
                "schema": SCHEMA_ID,
                "kind": "hardware-show",
                "query": args.name,
                "machine": _machine_json(machine),
            }
        )
        return EXIT_OK
    _emit("\n".join(_machine_lines(machine)))
    return EXIT_OK


def cmd_hardware_detect(args: argparse.Namespace) -> int:
    """This machine as the planner sees it (NVML/nvidia-smi, amd-smi/rocm-smi, sysctl, /proc)."""
    machine = _detect()
    if args.json:
        _emit_json({"schema": SCHEMA_ID, "kind": "hardware-detect", "machine": _machine_json(machine)})
        return EXIT_OK
    _emit("\n".join(_machine_lines(machine)))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """The docs calculator's JSON (qwenfit.export.calculator_json)."""
    import importlib
    import json

    try:
        export = importlib.import_module("qwenfit.export")
    except ModuleNotFoundError as exc:
        if exc.name != "qwenfit.export":
            raise
        raise UsageError(
            "the calculator export is not available in this version (no qwenfit.export)"
        ) from None
    data = export.calculator_json()
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text if text.endswith("\n") else text + "\n")
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        return EXIT_OK
    _emit(text)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------
# entry point


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (the console script passes it to ``sys.exit``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (already printed, one line)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    prog = f"qwenfit {args.command}" + (f" {args.action}" if getattr(args, "action", None) else "")
    try:
        return int(args.func(args))
    except QwenfitError as exc:
        message = _one_line(exc).replace("give vram_gb= (or custom_machine())", "give --vram GB")
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `qwenfit plan | head`: stop quietly
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("QWENFIT_DEBUG"):
            raise
        print(
            f"{prog}: internal error: {type(exc).__name__}: {_one_line(exc)} "
            "(QWENFIT_DEBUG=1 shows the traceback; please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
