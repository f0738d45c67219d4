"""The ``--json`` objects of the ``qwenfit`` command, as plain dicts (:mod:`qwenfit.report.schema`
describes them; the tests validate every output against it). No pydantic here, so ``qwenfit check
--json`` starts fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qwenfit.core.expr import as_int
from qwenfit.core.fit.speed_bands import speed_band

if TYPE_CHECKING:
    from qwenfit.core.engines.base import Artifact, Placement
    from qwenfit.core.fit.nearest import Alternative
    from qwenfit.core.fit.planner import Option, Plan
    from qwenfit.core.hardware import Device, HostMemory, Machine
    from qwenfit.core.model.spec import ModelSpec
    from qwenfit.core.terms import Estimate

__all__ = [
    "SCHEMA_ID",
    "alternative_json",
    "device_json",
    "estimate_json",
    "host_json",
    "jsonable",
    "machine_json",
    "option_json",
    "params_json",
    "placement_json",
    "plan_json",
]

SCHEMA_ID = "qwenfit-output-v2"  # = qwenfit.report.schema.SCHEMA_ID (a test keeps them equal)


def jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def estimate_json(e: Estimate) -> dict[str, Any]:
    return {
        "model": e.model,
        "quant": e.quant,
        "engine": e.engine,
        "settings": {k: jsonable(v) for k, v in e.settings.items()},
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


def device_json(d: Device) -> dict[str, Any]:
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


def host_json(h: HostMemory) -> dict[str, Any]:
    return {
        "id": h.id,
        "name": h.name,
        "bandwidth_gbps": h.bandwidth_gbps,
        "effective_gbps": h.effective_gbps,
        "source": h.source,
    }


def machine_json(m: Machine) -> dict[str, Any]:
    return {
        "name": m.name,
        "devices": [device_json(d) for d in m.devices],
        "n_devices": m.n_devices,
        "vram_bytes": m.vram_bytes,
        "unified": m.unified,
        "ram_bytes": m.ram_bytes,
        "host": None if m.host is None else host_json(m.host),
        "cpu_threads": m.cpu_threads,
        "cpu_cores": m.cpu_cores,
        "notes": list(m.notes),
    }


def placement_json(p: Placement | None) -> dict[str, Any] | None:
    if p is None:
        return None
    split = None if p.tensor_split is None else [float(s) for s in p.tensor_split]
    return {
        "kind": p.kind,
        "n_gpus": p.n_gpus,
        "n_cpu_moe": p.n_cpu_moe,
        "n_gpu_layers": p.n_gpu_layers,
        "tensor_split": split,
        "tp": p.tp,
        "pp": p.pp,
        "nodes": p.nodes,
        "description": str(p),
    }


def artifact_json(a: Artifact | None) -> dict[str, Any] | None:
    """What a command loads (:class:`qwenfit.core.engines.base.Artifact`), or None."""
    if a is None:
        return None
    return {
        "ref": a.ref,
        "repo": a.repo,
        "file": a.file,
        "quant": a.quant,
        "published": a.published,
        "local": a.local,
        "size_bytes": a.size_bytes,
        "make": a.make,
        "note": a.note,
    }


def option_json(o: Option) -> dict[str, Any]:
    from qwenfit.core.fit.planner import QUALITY_CLASSES

    return {
        "model": o.model,
        "quant": o.quant,
        "engine": o.engine,
        "fits": o.fits,
        "placement": placement_json(o.placement),
        "context": o.context,
        "max_context": o.max_context,
        "sequences": o.sequences,
        "max_sequences": o.max_sequences,
        "decode_tokens_per_s": o.decode_tokens_per_s,
        "prefill_tokens_per_s": o.prefill_tokens_per_s,
        "speed_band": speed_band(o.decode_tokens_per_s, o.prefill_tokens_per_s),
        "speed_detail": o.speed_detail,
        "command": o.command,
        "artifact": artifact_json(o.artifact),
        "reason": o.reason,
        "quality_rank": o.quality_rank,
        "quality_class": QUALITY_CLASSES[o.quality_class],
        "model_params": o.model_params,
        "headroom_bytes": o.headroom_bytes,
        "memory_by_device": o.memory_by_device,
        "notes": list(o.notes),
        "estimate": None if o.estimate is None else estimate_json(o.estimate),
    }


def plan_json(p: Plan) -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID,
        "kind": "plan",
        "machine": machine_json(p.machine),
        "notes": list(p.notes),
        "fits": p.fits,
        "best": None if p.best is None else option_json(p.best),
        "options": [option_json(o) for o in p.options],
        "rejected": [option_json(o) for o in p.rejected],
    }


def alternative_json(a: Alternative) -> dict[str, Any]:
    return {
        "kind": a.kind,
        "description": a.description,
        "quant": a.quant,
        "engine": a.engine,
        "context": a.context,
        "sequences": a.sequences,
        "placement": placement_json(a.placement),
        "memory_by_device": a.estimate.by_device,
        "decode_tokens_per_s": a.decode_tokens_per_s,
        "speed_band": speed_band(a.decode_tokens_per_s, None),
        "command": a.command,
        "artifact": artifact_json(a.artifact),
    }


def params_json(spec: ModelSpec) -> dict[str, Any]:
    p = spec.params
    return {
        "total": p.total,
        "active": p.active,
        "text": p.text,
        "mtp": p.mtp,
        "vision": p.vision,
        "by_role": dict(p.by_role),
    }
