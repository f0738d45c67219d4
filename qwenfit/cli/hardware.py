"""``qwenfit hardware list|show|detect``: the hardware catalog and this machine."""

from __future__ import annotations

import argparse
from typing import Any

from qwenfit.cli.args import EXIT_OK, add_json, detect_machine, gb
from qwenfit.cli.output import emit, emit_json, gb_text, machine_lines
from qwenfit.report.json import SCHEMA_ID, device_json, host_json, machine_json

__all__ = ["add"]


def add(sub: Any, schema_id: str) -> None:
    p = sub.add_parser("hardware", help="the hardware catalog and this machine")
    hw = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = hw.add_parser("list", help="every catalog device and host-RAM profile")
    add_json(q, schema_id)
    q.set_defaults(func=run_list)
    q = hw.add_parser("show", help="one device or machine spec (rtx-4090, 2x rtx-3090, m4-max-128)")
    q.add_argument("name", metavar="NAME[xN]")
    q.add_argument("--ram", type=gb, metavar="GB", help="host RAM in decimal GB")
    add_json(q, schema_id)
    q.set_defaults(func=run_show)
    q = hw.add_parser("detect", help="this machine as the planner sees it")
    add_json(q, schema_id)
    q.set_defaults(func=run_detect)


def run_list(args: argparse.Namespace) -> int:
    """Every catalog device and host-RAM profile."""
    from qwenfit.core.fit.text import table
    from qwenfit.loaders.hardware import hardware_catalog, host_profiles

    devices, hosts = hardware_catalog(), host_profiles()
    if args.json:
        emit_json(
            {
                "schema": SCHEMA_ID,
                "kind": "hardware-list",
                "devices": [device_json(d) for d in devices.values()],
                "hosts": [host_json(h) for h in hosts.values()],
            }
        )
        return EXIT_OK
    rows = [
        [
            d.id,
            d.name,
            d.vendor,
            gb_text(d.memory_bytes).removesuffix(" GB"),
            f"{d.bandwidth_gbps:g}",
            f"{d.fp16_tflops:g}" if d.fp16_tflops else "-",
            ", ".join(d.backends),
        ]
        for d in devices.values()
    ]
    host_rows = [[h.id, h.name, f"{h.bandwidth_gbps:g}", f"{h.effective_gbps:g}"] for h in hosts.values()]
    emit(
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


def run_show(args: argparse.Namespace) -> int:
    """One device or machine spec resolved against the catalog."""
    from qwenfit.loaders.hardware import parse_machine

    machine = parse_machine(args.name, ram_gb=args.ram)
    if args.json:
        emit_json(
            {
                "schema": SCHEMA_ID,
                "kind": "hardware-show",
                "query": args.name,
                "machine": machine_json(machine),
            }
        )
        return EXIT_OK
    emit("\n".join(machine_lines(machine)))
    return EXIT_OK


def run_detect(args: argparse.Namespace) -> int:
    """This machine as the planner sees it (NVML/nvidia-smi, amd-smi/rocm-smi, sysctl, /proc)."""
    machine = detect_machine()
    if args.json:
        emit_json({"schema": SCHEMA_ID, "kind": "hardware-detect", "machine": machine_json(machine)})
        return EXIT_OK
    emit("\n".join(machine_lines(machine)))
    return EXIT_OK
