"""Plan for a machine: which Qwen3.5 model, quantization and engine to run on it, and how.

    python examples/plan_for_machine.py                       # an RTX 4090 with 64 GB of RAM
    python examples/plan_for_machine.py --gpu "2x rtx-3090" --ram 128 --context 65536
    python examples/plan_for_machine.py --vram 16 --ram 32 --model 35B-A3B

Then a Python pre-flight: ``qwenfit.check`` returns the estimate when a configuration fits and
raises ``qwenfit.DoesNotFit`` (with the shortfall in bytes) when it does not.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import qwenfit
from qwenfit import plan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--gpu", help="a catalog GPU or machine (default rtx-4090 unless --vram is given)")
    ap.add_argument("--vram", type=float, help="GB of each GPU, for a GPU not in the catalog")
    ap.add_argument("--ram", type=float, default=64, help="GB of host RAM (default 64)")
    ap.add_argument("--model", action="append", help="a model to consider (default: every catalog model)")
    ap.add_argument("--context", type=int, help="tokens per sequence (default: the most that fits)")
    args = ap.parse_args(argv)
    hardware = args.gpu or (None if args.vram else "rtx-4090")

    p = plan(args.model, hardware=hardware, vram_gb=args.vram, ram_gb=args.ram, context=args.context)
    print(f"{p.machine.name}: {len(p.options)} option(s) fit, {len(p.rejected)} rejected")
    best = p.best
    if best is None:
        print("nothing fits; the nearest miss:", p.rejected[0].reason if p.rejected else "-")
        return 1
    for i, o in enumerate(p.options[:5], 1):
        speed = f"~{o.decode_tokens_per_s:.0f} tok/s" if o.decode_tokens_per_s else "speed unknown"
        print(f"{i}. {o.model} {o.quant} on {o.engine}: {o.placement}; {o.context:,} tokens; {speed}")
    print(f"\nrun the best one with:\n  {best.command}")

    # Python pre-flight of the best option as planned (its placement flags), then at 1,010,000 tokens
    placement = best.placement
    assert placement is not None
    settings: dict[str, Any] = {
        "engine": best.engine,
        "hardware": hardware,
        "vram_gb": args.vram,
        "ram_gb": args.ram,
    }
    if best.engine in ("llama.cpp", "ollama", "lm-studio"):
        settings.update(n_cpu_moe=placement.n_cpu_moe, n_gpu_layers=placement.n_gpu_layers)
    elif best.engine in ("vllm", "sglang"):
        settings.update(tp=placement.tp, pp=placement.pp)
    e = qwenfit.check(best.model, best.quant, context=best.context, **settings)
    print(f"\npre-flight: fits, {e.total_bytes / 1e9:.2f} GB in total")
    try:
        qwenfit.check(best.model, best.quant, context=1_010_000, **settings)
        print("pre-flight at 1,010,000 tokens: fits too")
    except qwenfit.DoesNotFit as exc:
        print(f"pre-flight at 1,010,000 tokens: does not fit, short by {exc.shortfall_bytes / 1e9:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
