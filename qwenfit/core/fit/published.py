"""Which quantizations the planner tries for a model, and which of its options stand: those whose
command loads a published artifact (or the user's own files) come first (issue: commands that run as
printed)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from qwenfit.core.artifacts import ModelSource
from qwenfit.core.engines.base import Engine
from qwenfit.core.hardware import Machine

if TYPE_CHECKING:
    from qwenfit.core.fit.planner import Option

__all__ = ["published_first", "quants_tried"]


def quants_tried(
    engine: Engine, machine: Machine, src: ModelSource, quants: Sequence[str] | None, *, mtp: bool
) -> tuple[str, ...]:
    """The quantizations tried: the user's files as they are; else those asked for; else the
    engine's list for the machine plus every other one published for the model in its format
    (unsloth's dynamic GGUFs, AWQ/NVFP4/... checkpoints)."""
    if src.file_format is not None:
        return (src.file_quant,) if src.file_quant else ()
    if quants is not None:
        return tuple(quants)
    return tuple(dict.fromkeys((*engine.quants_for(machine), *engine.published_quants(src, mtp=mtp))))


def published_first(group: list[Option]) -> list[Option]:
    """Options whose command loads a published artifact (or the user's files) stand; an option that
    needs its file made stays only when no published one of the model fits this engine — then it
    says so — and only when qwenfit can print every step (an importance matrix needs a calibration
    text it cannot name: those are rejected). The others are kept as rejected, with the reason."""

    def made(o: Option) -> bool:
        return o.fits and o.artifact is not None and not (o.artifact.published or o.artifact.stored)

    group = [
        dataclasses.replace(
            o, fits=False, reason=f"{o.artifact.note}, and making it needs {o.artifact.needs}"
        )
        if made(o) and o.artifact is not None and o.artifact.needs
        else o
        for o in group
    ]
    if not any(o.fits and not made(o) for o in group):
        return [
            dataclasses.replace(o, notes=(*o.notes, f"{o.artifact.note}: the command makes it first"))
            if made(o) and o.artifact is not None
            else o
            for o in group
        ]
    return [
        dataclasses.replace(o, fits=False, reason=f"{o.artifact.note} (a published quantization fits)")
        if made(o) and o.artifact is not None
        else o
        for o in group
    ]
