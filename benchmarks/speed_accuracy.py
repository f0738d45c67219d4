"""How far qwenfit's speed estimates are from published measurements.

Runs :func:`qwenfit.core.fit.speed.estimate_speed` over every record of
``benchmarks/speed_measurements.yaml`` and prints predicted vs measured decode (and prefill, where the
source gives it) tokens/s, the error of each record, and the median and maximum absolute error overall
and per category (dense GPU, MoE GPU, offload, Apple, APU).

The measurements validate the model; nothing in ``qwenfit.core.fit.speed`` is fitted to them
(shared/reference/engines-and-hardware.md §D.2). There is no calibration split: every record is
held out.

    .venv/bin/python benchmarks/speed_accuracy.py              # Markdown to stdout
    .venv/bin/python benchmarks/speed_accuracy.py --json       # JSON to stdout
    .venv/bin/python benchmarks/speed_accuracy.py --out DIR    # DIR/speed_accuracy.md + .json

Hardware comes from the hardware catalog (``qwenfit.loaders.hardware.parse_machine``). While that
loader does not exist yet, a small labelled FALLBACK table below stands in for it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

import qwenfit
from qwenfit.core.engines.base import get as get_engine
from qwenfit.core.engines.gdn_state import gdn_state
from qwenfit.core.engines.llama_cpp.memory import llama_kv_bytes_per_cell, llama_recurrent_bytes_per_cell
from qwenfit.core.fit.speed import Speed, estimate_speed
from qwenfit.core.formats.reads import decode_read_bytes
from qwenfit.core.formats.weights import WeightMap
from qwenfit.core.hardware import Device, HostMemory, Machine
from qwenfit.core.model.inventory import ROUTED_EXPERT_ROLES
from qwenfit.core.model.spec import ModelSpec

HERE = Path(__file__).resolve().parent
MEASUREMENTS = HERE / "speed_measurements.yaml"
CATEGORIES = ("dense GPU", "MoE GPU", "offload", "Apple", "APU")

# FALLBACK only (the catalog's host profiles are used when it exists): sustained fraction of peak
# host-RAM bandwidth, shared/reference/engines-and-hardware.md §A.7 ("η_mem ≈ 0.7 on desktop DDR5,
# 0.8 on servers").
HOST_FRACTION = {"desktop": 0.7, "server": 0.8}

# ------------------------------------------------------------------------------------------------
# FALLBACK hardware table — TEMPORARY. Used only while qwenfit.loaders.hardware (the catalog loader)
# does not exist. Figures from shared/reference/engines-and-hardware.md §A; compute marked [recall]
# there is carried over as such; 0.0 = not known (the estimate is then None, not a guess).
_GB = 10**9


def _gpu(id_: str, gb: int, bw: float, fp16: float, link: str, link_gbps: float, source: str) -> Device:
    return Device(id=id_, name=id_, vendor="nvidia", kind="gpu", memory_bytes=gb * _GB, memory_exact=False,
                  bandwidth_gbps=bw, fp16_tflops=fp16, interconnect=link, interconnect_gbps=link_gbps,
                  backends=("cuda", "vulkan"), source=source)  # fmt: skip


def _unified(id_: str, vendor: str, gb: int, bw: float, fp16: float, source: str) -> Device:
    backends = ("metal",) if vendor == "apple" else ("cuda",) if vendor == "nvidia" else ("rocm", "vulkan")
    return Device(id=id_, name=id_, vendor=vendor, kind="unified", memory_bytes=gb * _GB, memory_exact=False,
                  bandwidth_gbps=bw, fp16_tflops=fp16, backends=backends, source=source)  # fmt: skip


FALLBACK_DEVICES: dict[str, Device] = {
    d.id: d
    for d in (
        _gpu("rtx-3090", 24, 936, 71, "pcie4-x16", 31.5, "§A.1 (FP16 tensor [recall])"),
        _gpu("rtx-4090", 24, 1008, 165.2, "pcie4-x16", 31.5, "§A.1 waredb"),
        # 5080 FP16 dense = 1801 AI TOPS (sparse FP4) / 16, the ratio that gives the 5090's 209.5 from 3352
        _gpu("rtx-5080", 16, 960, 112.6, "pcie5-x16", 63, "§A.1 tweaktown [derived FP16]"),
        _gpu("rtx-5090", 32, 1792, 209.5, "pcie5-x16", 63, "§A.1"),
        _gpu("rtx-pro-6000", 96, 1792, 500, "pcie5-x16", 63, "§A.2 [derived FP16]"),
        _unified("dgx-spark", "nvidia", 128, 273, 100, "§A.3 (FP16 [recall])"),
        _unified("strix-halo-128", "amd", 128, 256, 59, "§A.4 (FP16 [recall])"),
        _unified("m4-16", "apple", 16, 120, 0.0, "§A.5 (M4 120 GB/s; FP16 not in the reference)"),
        _unified("m2-max-64", "apple", 64, 400, 0.0, "§A.5"),
        _unified("m3-max-48", "apple", 48, 400, 0.0, "§A.5 (48 GB exists only on the 16c/40c part)"),
        _unified("m3-ultra-256", "apple", 256, 819, 0.0, "§A.5"),
        _unified("m5-max-128", "apple", 128, 0.0, 0.0, "§A.5: M5 Max bandwidth not verified"),
    )
}


def _fallback_machine(name: str, offload: Mapping[str, Any] | None) -> Machine:
    count, _, device_id = name.partition("x ") if "x " in name else ("1", "", name)
    device = FALLBACK_DEVICES[device_id.strip()]
    host = None
    if offload:
        peak = float(offload["ram_peak_gbps"])
        effective = peak * HOST_FRACTION[offload["ram_class"]]
        host = HostMemory(id="record", name=offload["ram"], bandwidth_gbps=peak, effective_gbps=effective)
    return Machine(name=name, devices=(device,) * int(count), host=host, notes=("FALLBACK hardware table",))


MachineFor = Callable[[str, "Mapping[str, Any] | None"], Machine]


def _machine_loader() -> tuple[MachineFor, str]:
    try:
        module = importlib.import_module("qwenfit.loaders.hardware")
        parse_machine: Callable[..., Machine] = module.parse_machine
    except (ImportError, AttributeError):
        return (
            _fallback_machine,
            "FALLBACK table in benchmarks/speed_accuracy.py (no qwenfit.loaders.hardware)",
        )

    def from_catalog(name: str, offload: Mapping[str, Any] | None) -> Machine:
        try:
            return parse_machine(name, host=offload["host"] if offload else None)
        except Exception as exc:  # a device the catalog does not know yet: say so, use the fallback
            if name.rpartition("x ")[2].strip() not in FALLBACK_DEVICES:
                raise
            machine = _fallback_machine(name, offload)
            return replace(machine, notes=(*machine.notes, f"catalog: {exc}"))

    return from_catalog, "hardware catalog (qwenfit.loaders.hardware; FALLBACK table for ids it lacks)"


# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: str
    category: str
    model: str
    quant: str
    engine: str
    hardware: str
    measured: float
    predicted: float | None
    prefill_measured: float | None
    prefill_predicted: float | None
    detail: str
    note: str = ""

    @property
    def error_pct(self) -> float | None:
        return None if self.predicted is None else 100 * (self.predicted - self.measured) / self.measured

    @property
    def prefill_error_pct(self) -> float | None:
        if self.prefill_predicted is None or not self.prefill_measured:
            return None
        return 100 * (self.prefill_predicted - self.prefill_measured) / self.prefill_measured


def _kv_bytes_per_token(spec: ModelSpec, engine: str, kv_cache: str) -> int:
    if get_engine(engine).weights_family == "gguf":
        return llama_kv_bytes_per_cell(spec, kv_cache, kv_cache)
    t = spec.text
    element = {"bf16": 2, "f16": 2, "fp16": 2, "fp8": 1}[kv_cache]
    return t.n_full_attention * 2 * t.num_key_value_heads * t.head_dim * element


def _state_bytes(spec: ModelSpec, engine: str) -> int:
    if get_engine(engine).weights_family == "gguf":
        return llama_recurrent_bytes_per_cell(spec)
    return gdn_state(spec).bytes * spec.text.n_linear_attention


def _cpu_tensors(weights: WeightMap, offload: Mapping[str, Any] | None) -> tuple[set[str], int]:
    """Names of the tensors -ot exps=CPU / --n-cpu-moe N keep in RAM, and how many layers that splits."""
    if not offload:
        return set(), 0
    limit = offload.get("n_cpu_moe") if offload["tensors"] == "n-cpu-moe" else None
    names = {
        e.name
        for e in weights.tensors
        if e.component == "text" and e.role in ROUTED_EXPERT_ROLES
        and (limit is None or (e.layer is not None and e.layer < limit))
    }  # fmt: skip
    layers = {e.layer for e in weights.tensors if e.name in names}
    return names, len(layers)


def _category(spec: ModelSpec, machine: Machine, offload: object) -> str:
    if offload:
        return "offload"
    device = machine.devices[0]
    if device.vendor == "apple":
        return "Apple"
    if device.unified:
        return "APU"
    return "MoE GPU" if spec.text.is_moe else "dense GPU"


def evaluate(record: Mapping[str, Any], machine_for: MachineFor) -> Row:
    spec = qwenfit.load(record["model"])
    weights = qwenfit.weights(spec, record["quant"])
    engine = record["engine"]
    offload = record.get("offload")
    machine = machine_for(record["hardware"], offload)
    cpu, n_split = _cpu_tensors(weights, offload)
    read = decode_read_bytes(spec, weights, cpu_tensors=cpu)
    resident = {"gpu": 0, "cpu": 0}
    for e in weights.tensors:
        if e.component == "text":
            resident["cpu" if e.name in cpu else "gpu"] += e.bytes
    kv = _kv_bytes_per_token(spec, engine, record["kv_cache"]) * int(record["context_tokens"])
    speed: Speed = estimate_speed(
        read_bytes=read,
        kv_read_bytes={"gpu": kv},
        state_bytes={"gpu": _state_bytes(spec, engine)},
        machine=machine,
        engine=engine,
        n_layers=spec.text.num_hidden_layers,
        active_params=spec.params.active,
        tp=int(record.get("tp", 1)),
        backend=record["backend"],
        prompt_tokens=int(record.get("prompt_tokens") or 512),
        n_offloaded_layers=n_split if offload else None,
        resident_bytes=resident,
    )
    return Row(
        id=record["id"],
        category=_category(spec, machine, offload),
        model=record["model"],
        quant=record["quant"],
        engine=engine,
        hardware=record["hardware"],
        measured=float(record["decode_tokens_per_s"]),
        predicted=speed.decode_tokens_per_s,
        prefill_measured=record.get("prefill_tokens_per_s"),
        prefill_predicted=speed.prefill_tokens_per_s if record.get("prefill_tokens_per_s") else None,
        detail=speed.detail,
        note="; ".join(machine.notes)
        + ("" if speed.decode_tokens_per_s is not None else "; " + speed.detail),
    )


def _stats(errors: list[float]) -> dict[str, Any]:
    if not errors:
        return {"n": 0}
    absolute = [abs(e) for e in errors]
    return {
        "n": len(errors),
        "median_abs_error_pct": round(statistics.median(absolute), 1),
        "max_abs_error_pct": round(max(absolute), 1),
        "median_signed_error_pct": round(statistics.median(errors), 1),
    }


def summarize(rows: list[Row]) -> dict[str, Any]:
    decode = [r for r in rows if r.error_pct is not None]
    prefill = [r for r in rows if r.prefill_error_pct is not None]
    return {
        "decode": {
            "overall": _stats([r.error_pct for r in decode if r.error_pct is not None]),
            **{
                c: _stats([r.error_pct for r in decode if r.category == c and r.error_pct is not None])
                for c in CATEGORIES
            },
        },
        "prefill": _stats([r.prefill_error_pct for r in prefill if r.prefill_error_pct is not None]),
        "no_estimate": [r.id for r in rows if r.predicted is None],
        "records": len(rows),
    }


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "n/a" if x is None else format(x, spec)


def markdown(rows: list[Row], summary: dict[str, Any], hardware_source: str) -> str:
    out = [
        "# Speed estimates vs published measurements",
        "",
        f"Model: `qwenfit.core.fit.speed` (constants fixed before comparison; no calibration). "
        f"Hardware: {hardware_source}. Error = (predicted − measured) / measured.",
        "",
        "| record | category | model | quant | engine | hardware | measured t/s | predicted t/s | error % "
        "| prefill meas. | prefill pred. | prefill err % |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (CATEGORIES.index(r.category), r.id)):
        out.append(
            f"| {r.id} | {r.category} | {r.model} | {r.quant} | {r.engine} | {r.hardware} | {r.measured:g} "
            f"| {_fmt(r.predicted)} | {_fmt(r.error_pct, '+.0f')} | {_fmt(r.prefill_measured, 'g')} "
            f"| {_fmt(r.prefill_predicted, '.0f')} | {_fmt(r.prefill_error_pct, '+.0f')} |"
        )
    out += ["", "## Decode error by category", "",
            "| category | n | median abs error % | max abs error % | median signed error % |",
            "|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, s in summary["decode"].items():
        cells = [
            s.get(k, "n/a") for k in ("median_abs_error_pct", "max_abs_error_pct", "median_signed_error_pct")
        ]
        out.append(f"| {name} | {s['n']} | " + " | ".join(str(c) for c in cells) + " |")
    p = summary["prefill"]
    out += [
        "",
        f"Prefill: n={p['n']}, median abs error {p.get('median_abs_error_pct', 'n/a')} %, "
        f"max {p.get('max_abs_error_pct', 'n/a')} %, "
        f"median signed {p.get('median_signed_error_pct', 'n/a')} %.",
    ]
    if summary["no_estimate"]:
        out += ["", "No estimate (device bandwidth unknown): " + ", ".join(summary["no_estimate"])]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--measurements", type=Path, default=MEASUREMENTS)
    parser.add_argument("--out", type=Path, help="write speed_accuracy.md and speed_accuracy.json here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args(argv)
    records = yaml.safe_load(args.measurements.read_text())["records"]
    machine_for, hardware_source = _machine_loader()
    rows = [evaluate(r, machine_for) for r in records]
    summary = summarize(rows)
    payload = {
        "hardware_source": hardware_source,
        "summary": summary,
        "rows": [
            {
                **{k: getattr(r, k) for k in r.__dataclass_fields__},
                "error_pct": r.error_pct,
                "prefill_error_pct": r.prefill_error_pct,
            }
            for r in rows
        ],
    }
    md = markdown(rows, summary, hardware_source)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "speed_accuracy.md").write_text(md)
        (args.out / "speed_accuracy.json").write_text(json.dumps(payload, indent=2) + "\n")
    sys.stdout.write(json.dumps(payload, indent=2) + "\n" if args.json else md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
