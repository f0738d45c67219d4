"""What the command writes: stdout helpers, colour (only on a terminal, never with NO_COLOR), sizes
in decimal GB, the stacked memory bars, and the descriptions of machines and devices."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (--help stays light)

if TYPE_CHECKING:
    from typing import Any, TextIO

    from qwenfit.core.hardware import Device, Machine
    from qwenfit.core.terms import Estimate

__all__ = [
    "BAR_WIDTH",
    "Style",
    "describe_machine",
    "device_key",
    "device_lines",
    "emit",
    "emit_json",
    "gb_text",
    "indent_command",
    "machine_lines",
    "memory_bars",
    "use_color",
]

BAR_WIDTH = 40


def use_color(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set to anything (no-color.org)."""
    if os.environ.get("NO_COLOR", ""):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled and text else text


# what a terminal that cannot encode the bars and signs gets instead (PYTHONIOENCODING=ascii, a C locale)
_ASCII = str.maketrans({"█": "#", "▓": "=", "▒": "+", "░": "-", "▚": "%", "·": ".", "—": "-", "–": "-",
                        "×": "x", "≤": "<=", "≥": ">=", "…": "...", "→": "->", "µ": "u",
                        "≈": "~"})  # fmt: skip


def emit(text: str) -> None:
    """``text`` on stdout; where the stream's encoding cannot hold a character, the ASCII stand-ins
    (``#=+-%.`` for the memory bars) and ``?`` for anything else."""
    text = text if text.endswith("\n") else text + "\n"
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        sys.stdout.write(text.translate(_ASCII).encode(encoding, "replace").decode(encoding))


def emit_json(data: dict[str, Any]) -> None:
    import json

    emit(json.dumps(data, indent=2, ensure_ascii=False))


def gb_text(n_bytes: int) -> str:
    from qwenfit.core.fit.text import format_gb

    return format_gb(n_bytes)


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


def device_key(d: str) -> tuple[int, int, str]:
    digits = "".join(ch for ch in d if ch.isdigit())
    rank = 2 if d == "total" else 1 if d == "cpu" else 0
    return (rank, int(digits) if digits else -1, d)


def _bar(parts: Sequence[int], scale: int, width: int, budgeted: bool, style: Style) -> str:
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

    style = Style(color)
    budget = dict(e.budget or {})
    devices = sorted({t.device for t in e.terms} | (set(budget) - {"total"}), key=device_key)
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
            text = f"{gb_text(used)}, no budget (not judged)"
        elif used <= cap:
            text = f"{gb_text(used)} of {gb_text(cap)}, {gb_text(cap - used)} free"
        else:
            text = f"{gb_text(used)} of {gb_text(cap)}, " + style(f"{gb_text(used - cap)} over", "1;31")
        lines.append(f"  {d:<{label_w}}  {bar}  {text}")
    return lines


# ---------------------------------------------------------------------------------------------------
# machines and devices


def describe_machine(m: Machine) -> str:
    from qwenfit.core.fit.text import device_groups

    if m.devices:
        d = m.devices[0]
        count = f"{m.n_devices}x " if m.n_devices > 1 else ""
        each = " each" if m.n_devices > 1 else ""
        if d.id == "custom":  # from --vram/--ram: say what was given, not the generated name
            kind = "unified memory" if d.unified else "GPU" if m.n_devices == 1 else "GPUs"
            return f"{count}{kind} of {gb_text(d.memory_bytes)}{each} (as given)" + (
                "" if d.unified else f", {gb_text(m.ram_bytes)} RAM" if m.ram_bytes else ", RAM not given"
            )
        groups = [f"{f'{n}x ' if n > 1 else ''}{g.name} ({gb_text(g.memory_bytes)}{' each' if n > 1 else ''})"
                  for g, n in device_groups(m)]  # fmt: skip
        text = f"{m.name}: {' + '.join(groups)}"
        if d.unified:
            return text + ", unified memory"
    else:
        text = f"{m.name}: no GPU"
    return text + (f", {gb_text(m.ram_bytes)} RAM" if m.ram_bytes else ", RAM not given")


def device_lines(d: Device) -> list[str]:
    def opt(value: float | None, unit: str) -> str:
        return "unknown" if not value else f"{value:g} {unit}"

    link = f"{d.interconnect} ({opt(d.interconnect_gbps, 'GB/s')})" if d.interconnect else "-"
    return [
        f"{d.id}: {d.name}",
        f"  vendor     {d.vendor} ({d.kind}); backends {', '.join(d.backends) or '-'}"
        + (f"; compute capability {d.compute_capability}" if d.compute_capability else ""),
        f"  memory     {d.memory_bytes:,} bytes = {gb_text(d.memory_bytes)} "
        f"({'driver-reported' if d.memory_exact else 'nominal'})",
        f"  bandwidth  {opt(d.bandwidth_gbps, 'GB/s')}",
        f"  compute    FP16 {opt(d.fp16_tflops, 'TFLOPS')}, FP8 {opt(d.fp8_tflops, 'TFLOPS')}, "
        f"FP4 {opt(d.fp4_tflops, 'TFLOPS')}",
        f"  link       {link}" + (f"; TDP {d.tdp_w} W" if d.tdp_w else ""),
        f"  aliases    {', '.join(d.aliases) or '-'}",
        f"  source     {d.source or '-'}",
    ]


def machine_lines(m: Machine) -> list[str]:
    lines = [f"machine: {describe_machine(m)}"]
    if m.cpu_threads:
        cores = f" ({m.cpu_cores} physical cores)" if m.cpu_cores else ""
        lines.append(f"  CPU threads {m.cpu_threads}{cores}")
    if m.host is not None:
        lines.append(f"  host RAM   {m.host.name} ({m.host.bandwidth_gbps:g} GB/s peak)")
    seen: set[str] = set()
    for d in m.devices:
        if d.id not in seen:
            seen.add(d.id)
            lines += ["", *device_lines(d)]
    if m.notes:
        lines += ["", *(f"note: {n}" for n in m.notes)]
    return lines


def indent_command(command: str, indent: int = 2) -> str:
    return command.replace("\n", "\n" + " " * (indent + 2))
