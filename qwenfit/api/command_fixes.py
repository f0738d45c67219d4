"""The smallest edits to a launch command that make it fit, in the command's own flags.

For a command that does not fit, each kind of edit is searched on its own, the others kept as the
command has them: the longest context (``-c``, ``--max-model-len``, ``num_ctx``), the most sequences
(``-np``), the fewest routed-expert layers moved to host RAM (``--n-cpu-moe``) or the most layers kept
on the GPUs (``-ngl``), the next smaller KV cache type (``-ctk/-ctv``, ``--kv-cache-dtype``), the
smallest ``--gpu-memory-utilization`` up to 0.95, the next tensor-parallel size the machine has GPUs
for. Each candidate is written into the command (:meth:`ParsedCommand.edited`), and the rewritten
command is read and checked again from scratch: only edits whose rewritten command fits are kept.
"""

from __future__ import annotations

import dataclasses
import difflib
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qwenfit.core.expr import as_int
from qwenfit.core.fit.assemble import assemble, mixed_split
from qwenfit.core.search import largest, smallest
from qwenfit.core.terms import Estimate
from qwenfit.errors import QwenfitError

if TYPE_CHECKING:
    from qwenfit.api.resolve import Prepared
    from qwenfit.cmdline.parsed import ParsedCommand

__all__ = ["GMU_CEILING", "CommandFix", "command_fixes", "word_diff"]

# the highest --gpu-memory-utilization qwenfit proposes: a choice, not vLLM's limit (vLLM takes up to
# 1.0), leaving room for what runs outside vLLM's budget on the same GPU
GMU_CEILING = 0.95


@dataclass(frozen=True, slots=True)
class CommandFix:
    """One edit to the command that fits: ``kind`` ("context", "sequences", "offload", "kv_cache",
    "gpu_memory_utilization", "tp": with the longest context that fits on those GPUs when the
    context does not), ``settings`` changed (qwenfit's names), ``description`` in the
    command's own words (``-c 262144 → 98304``), ``command`` the rewritten command line and
    ``estimate`` its check (the rewritten command read and estimated again)."""

    kind: str
    settings: dict[str, Any]
    description: str
    command: str
    estimate: Estimate

    def __str__(self) -> str:
        return self.description


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False)
    except ValueError:
        return text.split()


def word_diff(before: str, after: str) -> str:
    """What changed between two command lines, word by word: ``-c 262144 → 98304``, ``add --n-cpu-moe 6``."""
    a, b = _words(before), _words(after)
    parts: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        old, new = " ".join(a[i1:i2]), " ".join(b[j1:j2])
        context = a[i1 - 1] + " " if i1 > 0 and a[i1 - 1].startswith("-") and op == "replace" else ""
        if op == "replace":
            parts.append(f"{context}{old} → {new}")
        elif op == "insert":
            parts.append(f"add {new}")
        else:
            parts.append(f"drop {old}")
    return ", ".join(parts) or "(no change)"


def _evaluator(p: Prepared) -> Callable[..., bool]:
    """fits(context=, sequences=, kv_cache=, **options) for ``p`` with those changes."""

    def fits(**changes: Any) -> bool:
        shared = {k: changes.pop(k) for k in ("context", "sequences", "kv_cache", "n_gpus") if k in changes}
        d = dataclasses.replace(p.d, **shared)
        try:
            if changes:
                o = p.engine.options(mixed_split(p.engine, p.target, {**p.engine_options, **changes}))
            else:
                o = p.o
            p.engine.check(p.spec, d, o)
            rebuilt = changes or "kv_cache" in shared or "n_gpus" in shared
            inputs = p.engine.inputs(p.spec, p.weights, d, o) if rebuilt else p.inputs
            return bool(assemble(p.spec, p.engine, p.quant, inputs, d, o, p.target).fits)
        except (QwenfitError, ValueError):
            return False

    return fits


def _candidates(pc: ParsedCommand, p: Prepared) -> list[tuple[str, dict[str, Any]]]:
    """(kind, settings) of the nearest settings that fit, one kind of edit at a time."""
    fits = _evaluator(p)
    out: list[tuple[str, dict[str, Any]]] = []
    ctx, seqs = as_int(p.d.context), as_int(p.d.sequences)
    step = p.engine.context_step
    best = largest(lambda c: fits(context=c), step, ctx - 1, step)
    if best:
        out.append(("context", {"context": best}))
    if seqs > 1 and "sequences" in pc.settings:
        n = largest(lambda s: fits(sequences=s), 1, seqs - 1)
        if n:
            out.append(("sequences", {"sequences": n}))
    known = p.engine.option_help()
    machine = p.target.machine
    gpus = bool(p.d.n_gpus) and bool(p.target.vram_bytes or (machine is not None and machine.devices))
    blocks = p.spec.text.num_hidden_layers + p.spec.mtp_layers
    if "n_cpu_moe" in known and gpus:
        # not monotone: each layer moved frees the GPU and fills host RAM, so walk up (down) one
        # layer at a time and take the first that fits
        cur = int(getattr(p.o, "n_cpu_moe", 0) or 0)
        moe = None
        if p.spec.is_moe:
            moe = next((n for n in range(cur + 1, blocks + 1) if fits(n_cpu_moe=n)), None)
            if moe is not None:
                out.append(("offload", {"n_cpu_moe": moe}))
        ngl = getattr(p.o, "n_gpu_layers", None)
        top = blocks + 1 if ngl is None else int(ngl)  # the output layer counts as one more
        if moe is None:
            k = next((k for k in range(top - 1, -1, -1) if fits(n_gpu_layers=k)), None)
            if k is not None:
                out.append(("offload", {"n_gpu_layers": k}))
    kv_order = p.engine.calc_kv_types
    cur_kv = p.d.kv_cache or (kv_order[0] if kv_order else None)
    if cur_kv in kv_order and kv_order.index(cur_kv) + 1 < len(kv_order):
        for kv in kv_order[kv_order.index(cur_kv) + 1 :]:
            if fits(kv_cache=kv):
                out.append(("kv_cache", {"kv_cache": kv}))
                break
    if "gpu_memory_utilization" in known and gpus:
        cur_pct = round(float(p.o.gpu_memory_utilization) * 100)
        ceiling = round(GMU_CEILING * 100)
        pct = smallest(lambda k: fits(gpu_memory_utilization=k / 100), cur_pct + 1, ceiling)
        if pct is not None:
            out.append(("gpu_memory_utilization", {"gpu_memory_utilization": pct / 100}))
    if "tp" in known and machine is not None:
        tp = int(getattr(p.o, "tp", 1))
        others = max(1, as_int(p.d.n_gpus) // max(tp, 1))  # pipeline x data-parallel ranks
        t = next((t for t in (2, 4, 8) if tp < t and t * others <= machine.n_devices), None)
        if t is not None:
            if fits(tp=t, n_gpus=t * others):
                out.append(("tp", {"tp": t}))
            else:  # more GPUs, and the longest context that fits on them
                best = largest(lambda c: fits(tp=t, n_gpus=t * others, context=c), step, ctx - 1, step)
                if best:
                    out.append(("tp", {"tp": t, "context": best}))
    return out


def command_fixes(
    pc: ParsedCommand, p: Prepared, recheck: Callable[[str], Estimate | None]
) -> tuple[CommandFix, ...]:
    """The edits to ``pc`` that fit: ``recheck`` reads a rewritten command again and checks it (its
    estimate, None when it cannot be read as one launch); only those whose estimate fits are kept."""
    before = pc.edited()
    out: list[CommandFix] = []
    for kind, settings in _candidates(pc, p):
        try:
            text = pc.edited(**settings)
            e = recheck(text)
        except QwenfitError:
            continue
        if e is not None and e.fits:
            out.append(CommandFix(kind, settings, word_diff(before, text), text, e))
    return tuple(out)
