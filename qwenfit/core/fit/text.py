"""Plain-text rendering of plans and estimates (``print(plan)``, the CLI's tables).

Sizes print in decimal GB (1e9 bytes, two decimals, rounded half up on the exact byte count) — the
same rounding as the docs calculator (``qwenfit.export.format_gb``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qwenfit.core.expr import as_int
from qwenfit.core.fit.speed_bands import Rate, format_cell, format_rate

if TYPE_CHECKING:
    from collections.abc import Iterable

    from qwenfit.core.engines.base import Artifact
    from qwenfit.core.fit.planner import Option, Plan
    from qwenfit.core.hardware import Device, Machine
    from qwenfit.core.terms import Estimate, Term

__all__ = [
    "artifact_line",
    "device_group",
    "device_groups",
    "format_estimate",
    "format_gb",
    "format_plan",
    "table",
    "terms_table",
]


def format_gb(n_bytes: int) -> str:
    """``12.35 GB``: bytes in decimal GB, two decimals, half up, computed in integers."""
    q = (n_bytes + 5_000_000) // 10_000_000 if n_bytes >= 0 else -((-n_bytes + 5_000_000) // 10_000_000)
    sign = "-" if q < 0 else ""
    q = abs(q)
    return f"{sign}{q // 100}.{q % 100:02d} GB"


def table(rows: list[list[str]], header: list[str], right: set[int] | None = None) -> str:
    """A fixed-width text table; columns in ``right`` are right-aligned."""
    right = right or set()
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        cells = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _memory_line(e: Estimate) -> str:
    used = e.by_device
    budget = e.budget or {}
    parts = []
    for d in sorted(used, key=lambda d: (d == "cpu", d)):
        cap = budget.get(d)
        parts.append(f"{d} {format_gb(used[d])}" + (f" of {format_gb(cap)}" if cap is not None else ""))
    if "total" in budget:
        parts.append(f"total {format_gb(e.total_bytes)} of {format_gb(budget['total'])}")
    return ", ".join(parts)


def _speed(o: Option) -> str:
    """``~51 tok/s (43-58) decode, ~1200 tok/s (800-1600) prefill (estimated; band: out of sample)``."""
    d = o.decode_tokens_per_s
    if d is None:
        return "unknown (device bandwidth not known)"
    text = f"{format_rate(d)} decode"
    if o.sequences > 1:
        together = d.times(o.sequences) if isinstance(d, Rate) else d * o.sequences
        text += f" per sequence ({format_rate(together)} for {o.sequences} sequences)"
    if o.prefill_tokens_per_s:
        text += f", {format_rate(o.prefill_tokens_per_s)} prefill"
    return text + f" ({getattr(d, 'label', 'estimated')}; ranges: p10-p90 out of sample)"


def format_option(o: Option, *, indent: str = "  ") -> str:
    lines = [f"{o.model} {o.quant} on {o.engine}: {o.placement}"]
    lines.append(
        f"{indent}context {o.context:,} tokens (max {o.max_context:,}), "
        f"{o.sequences} sequence(s) (max {o.max_sequences} at this context)"
    )
    if o.estimate is not None:
        lines.append(f"{indent}memory: {_memory_line(o.estimate)}")
    lines.append(f"{indent}speed: {_speed(o)}")
    for n in o.notes:
        lines.append(f"{indent}note: {n}")
    if o.artifact is not None:
        lines.append(f"{indent}loads: {artifact_line(o.artifact)}")
    if o.command:
        cmd = o.command.replace("\n", "\n" + indent + "  ")
        lines.append(f"{indent}command: {cmd}")
    return "\n".join(lines)


def format_plan(p: Plan, *, max_rows: int = 15, max_rejected: int = 10) -> str:
    m = p.machine
    budget = [device_group(dev, n) for dev, n in device_groups(m)]
    if m.ram_bytes:
        budget.append(f"{format_gb(m.ram_bytes)} RAM")
    out = [f"qwenfit plan for {m.name}: " + (", ".join(budget) or "no budget")]
    out += [f"  {n}" for n in p.notes]
    if p.best is None:
        out.append("nothing fits.")
    else:
        out.append("best: " + format_option(p.best))
    if p.options:
        rows = []
        for i, o in enumerate(p.options[:max_rows], 1):
            used = o.memory_by_device
            gpu = sum(v for d, v in used.items() if d != "cpu")
            rows.append(
                [
                    str(i),
                    o.model,
                    o.quant,
                    o.engine,
                    str(o.placement),
                    f"{o.context:,}",
                    str(o.max_sequences),
                    format_gb(gpu).removesuffix(" GB"),
                    format_gb(used.get("cpu", 0)).removesuffix(" GB"),
                    format_cell(o.decode_tokens_per_s),
                ]
            )
        out.append(
            f"\n{len(p.options)} option(s) fit"
            + (f" (top {max_rows})" if len(p.options) > max_rows else "")
            + ":"
        )
        out.append(
            table(
                rows,
                [
                    "#",
                    "model",
                    "quant",
                    "engine",
                    "placement",
                    "context",
                    "max seqs",
                    "GPU GB",
                    "RAM GB",
                    "tok/s",
                ],
                right={0, 5, 6, 7, 8, 9},
            )
        )
    if p.rejected:
        out.append(
            f"\n{len(p.rejected)} rejected"
            + (f" (first {max_rejected})" if len(p.rejected) > max_rejected else "")
            + ":"
        )
        for o in p.rejected[:max_rejected]:
            out.append(f"  {o.model} {o.quant} on {o.engine}: {o.reason}")
    return "\n".join(out)


def terms_table(terms: Iterable[Term]) -> str:
    """The non-zero terms as a table: name, device, size, exact or estimated, detail."""
    rows = [
        [t.name, t.device, format_gb(as_int(t.bytes)), "exact" if t.exact else "estimated", t.detail]
        for t in terms
        if t.bytes
    ]
    return table(rows, ["term", "device", "size", "", "detail"], right={2})


def format_estimate(e: Estimate) -> str:
    out = [f"{e.model} {e.quant} on {e.engine}", terms_table(e.terms)]
    out.append(f"total {format_gb(e.total_bytes)}: {_memory_line(e)}")
    if e.fits is not None:
        out.append("fits" if e.fits else f"does NOT fit: short by {format_gb(e.shortfall_bytes)}")
    out += [f"note: {n}" for n in e.notes]
    return "\n".join(out)


def artifact_line(a: Artifact) -> str:
    """What an option's command loads, in one line: the published file and its size, the user's
    file, or the file the command makes first."""
    if a.local or (a.stored and not a.published):
        return f"your file {a.file}"
    where = f"{a.repo}" + (f" {a.file}" if a.file and a.published_file is not None else "")
    if a.published:
        size = f", {format_gb(a.size_bytes)} published" if a.size_bytes else ""
        return f"{where} ({a.quant}{size})"
    return f"{a.file}, made from {a.repo} ({a.note})"


def device_groups(m: Machine) -> list[tuple[Device, int]]:
    """The machine's devices, alike ones counted together, in order."""
    groups: list[tuple[Device, int]] = []
    for d in m.devices:
        if groups and groups[-1][0].id == d.id:
            groups[-1] = (d, groups[-1][1] + 1)
        else:
            groups.append((d, 1))
    return groups


def device_group(dev: Device, n: int) -> str:
    """``2x NVIDIA GeForce RTX 3090 (24.00 GB, 23.56 GB usable each)``."""
    size = format_gb(dev.memory_bytes)
    if dev.usable_bytes != dev.memory_bytes and not dev.unified:
        size += f", {format_gb(dev.usable_bytes)} usable"
    return f"{n}x {dev.name} ({size} each)" if n > 1 else f"{dev.name} ({size})"
