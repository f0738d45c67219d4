"""A tool consuming `qwenfit plan --json`: the best option that is fast enough with enough context.

    python examples/pick_from_plan_json.py --gpu rtx-4090 --ram 64 --min-context 65536 --min-speed 30
    qwenfit plan --gpu "2x rtx-3090" --ram 128 --json | python examples/pick_from_plan_json.py -

"Best" is the planner's own ranking (quality class, then the larger model, then the better quant);
this tool only filters it: good quality (4 bits or more), at least --min-context tokens of context
and at least --min-speed estimated decode tokens/s.

The JSON follows data/schema/qwenfit-output-v2.schema.json (``"schema": "qwenfit-output-v2"``); this
script needs nothing but the standard library, as any other consumer would.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any


def load_plan(args: argparse.Namespace) -> dict[str, Any]:
    if args.source == "-":
        text = sys.stdin.read()
    else:
        cmd = [sys.executable, "-m", "qwenfit", "plan", "--json", "--gpu", args.gpu, "--ram", str(args.ram)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"qwenfit failed: {done.stderr.strip()}")
        text = done.stdout
    data: dict[str, Any] = json.loads(text)
    if data.get("schema") != "qwenfit-output-v2" or data.get("kind") != "plan":
        sys.exit("not the JSON of `qwenfit plan --json` (schema qwenfit-output-v2)")
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("source", nargs="?", default="run", help="'-' reads the plan JSON from stdin")
    ap.add_argument("--gpu", default="rtx-4090")
    ap.add_argument("--ram", type=float, default=64)
    ap.add_argument("--min-context", type=int, default=32768, help="tokens the option must reach")
    ap.add_argument("--min-speed", type=float, default=20, help="estimated decode tokens/s")
    ap.add_argument("--top", type=int, default=3)
    args = ap.parse_args(argv)

    plan = load_plan(args)
    good = [  # plan["options"] is ranked best first
        o
        for o in plan["options"]
        if o["quality_class"] == "good"
        and o["max_context"] >= args.min_context
        and (o["decode_tokens_per_s"] or 0) >= args.min_speed
    ]
    print(
        f"{plan['machine']['name']}: {len(good)} good option(s) with >= {args.min_context:,} tokens "
        f"at >= {args.min_speed:g} tok/s"
    )
    for o in good[: args.top]:
        gpu = sum(v for k, v in o["memory_by_device"].items() if k != "cpu") / 1e9
        print(
            f"  ~{o['decode_tokens_per_s']:.0f} tok/s  {o['model']} {o['quant']} on {o['engine']}, "
            f"{o['placement']['description']}, {gpu:.1f} GB on the GPU(s)"
        )
    if not good:
        return 1
    print(f"best: {good[0]['command']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
