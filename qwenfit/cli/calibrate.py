"""``qwenfit calibrate``: measure this machine with a small model and keep its speed constants."""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from qwenfit.cli.args import EXIT_OK, add_hardware, machine_of
from qwenfit.errors import UsageError

__all__ = ["add", "run"]

LLAMA_BENCH_ARGS = ("-p", "512", "-n", "128", "-r", "3", "-o", "md")  # pp512 + tg128, 3 repetitions
MLX_PROMPT = "Write a short story about a lighthouse keeper. " * 20  # ~200 prompt tokens


def add(sub: Any, schema_id: str) -> None:
    p = sub.add_parser(
        "calibrate",
        help="measure this machine with a small model (llama-bench / mlx_lm) and keep its speed constants",
        description=run.__doc__,
    )
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="a small model you have: a .gguf file (llama-bench) or an MLX model directory/repo "
                   "(mlx_lm); needed unless --from-output is given with --gguf")  # fmt: skip
    p.add_argument(
        "--tool", choices=("llama-bench", "mlx"), help="default: llama-bench, or mlx on a Mac without it"
    )
    p.add_argument("--from-output", metavar="FILE",
                   help="calibrate from a saved llama-bench / mlx_lm.generate --verbose output")  # fmt: skip
    p.add_argument(
        "--gguf", metavar="FILE", help="the GGUF the saved output measured (its tensors give the bytes)"
    )
    p.add_argument(
        "--backend", help="the backend measured (default: what llama-bench printed, else the device's)"
    )
    p.add_argument("--dry-run", action="store_true", help="show the constants, do not store them")
    p.add_argument("--reset", action="store_true", help="delete the stored calibration and exit")
    add_hardware(p)
    p.set_defaults(func=run)


def _run_tool(tool: str, model: str) -> str:
    if tool == "llama-bench":
        exe = shutil.which("llama-bench")
        if exe is None:
            raise UsageError(
                "llama-bench is not installed (on PATH); install llama.cpp or pass --from-output"
            )
        cmd = [exe, "-m", model, *LLAMA_BENCH_ARGS]
    else:
        exe = shutil.which("mlx_lm.generate")
        if exe is None:
            raise UsageError("mlx_lm.generate is not installed; pip install mlx-lm or pass --from-output")
        cmd = [exe, "--model", model, "--prompt", MLX_PROMPT, "--max-tokens", "128", "--verbose", "True"]
    print("running: " + " ".join(cmd[:3]) + " ...")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UsageError(f"{cmd[0]} failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    return done.stdout


def run(args: argparse.Namespace) -> int:
    """Run llama-bench (or mlx_lm.generate --verbose on a Mac) with a small model you have, fit this
    machine's speed constants from what it measured (decode kernel efficiency, or the per-layer cost
    when the model is too small to say; prefill efficiency) and store them in your config directory
    (calibration.json). plan / check / need then use them for this device, labelled "calibrated".
    QWENFIT_CALIBRATION=off ignores them."""
    from qwenfit.loaders import calibration as cal

    if args.reset:
        path = cal.calibration_path()
        if path.exists():
            path.unlink()
            print(f"removed {path}")
        else:
            print(f"no calibration stored ({path})")
        return EXIT_OK
    tool = args.tool or (
        "mlx" if platform.system() == "Darwin" and not shutil.which("llama-bench") else "llama-bench"
    )
    if args.from_output:
        text = Path(args.from_output).read_text()
    else:
        if not args.model:
            raise UsageError("give MODEL (a small .gguf or MLX model you have) or --from-output FILE")
        text = _run_tool(tool, args.model)
    rows = cal.parse_mlx_verbose(text) if tool == "mlx" else cal.parse_llama_bench(text)
    if tool == "mlx":
        model_path = args.model or args.gguf
        if not model_path:
            raise UsageError("give MODEL (the MLX model directory measured)")
        facts = cal.mlx_facts(model_path)
        engine = "mlx"
    else:
        gguf = args.gguf or args.model
        if not gguf or not str(gguf).endswith(".gguf"):
            raise UsageError("give the .gguf file the output measured (MODEL or --gguf)")
        facts = cal.gguf_facts(gguf)
        engine = "llama.cpp"
    machine = machine_of(args, [engine])
    if machine is None or not machine.devices:
        raise UsageError("no GPU or unified-memory device found; name it with --gpu (qwenfit hardware list)")
    dev = machine.devices[0]
    backend = (
        args.backend
        or next((r.backend for r in rows if r.backend), "")
        or (dev.backends[0] if dev.backends else "cuda")
    )
    result = cal.fit_constants(rows, facts, machine, engine, backend, tool=tool)
    print(
        f"calibrated {engine} on {dev.id} ({backend}) from {len(rows)} {tool} row(s), model {facts.source}:"
    )
    for r in rows:
        print(f"  measured {r.test}{r.tokens}{f' @ d{r.depth}' if r.depth else ''}: {r.tokens_per_s:g} tok/s")
    for k, v in result.before.items():
        print(f"  the fitted model said {k}: {v:.1f} tok/s")
    for k, v in result.constants.items():
        print(f"  {k} = {v:g}")
    if args.dry_run:
        print("(dry run: not stored)")
    else:
        print(f"stored in {cal.save(result)}")
    return EXIT_OK
