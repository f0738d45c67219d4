"""Run llmfit 1.1.17 on every measurement row it can express; write ``llmfit_scores.json``.

    python3 -m venv /work/scratch/speedfit/llmfit-venv
    /work/scratch/speedfit/llmfit-venv/bin/pip install llmfit==1.1.17
    LLMFIT=/work/scratch/speedfit/llmfit-venv/bin/llmfit .venv/bin/python -m benchmarks.speed.fit.llmfit_scores

``python -m benchmarks.speed.fit`` only reads the JSON (llmfit need not be installed to regenerate
the report).

How a row becomes an llmfit question
------------------------------------
* Hardware: a user profile (``llmfit --profile <file>``; the schema llmfit validates: total_ram_gb,
  unified_memory, gpu_memory_bandwidth_gbps, gpu_compute_tflops_fp16, ddr_bandwidth_gbps) written
  from the same ``data/hardware.yaml`` figures qwenfit uses (peak bandwidth, dense FP16 TFLOPS when
  known) and, for CPU-offload rows, the row's host-RAM profile peak (otherwise 89.6 GB/s, the
  DDR5-5600 dual-channel figure of llmfit's own bundled RTX 4090 profile and qwenfit's default).
  Both tools therefore get the same hardware facts.
* Decode: ``llmfit --profile P plan <model> --context C --quant Q --json`` and the ``gpu`` run path
  (everything on the GPU or unified memory), or the ``cpu_offload`` path for rows that keep experts
  in host RAM. llmfit's plan estimate does not depend on the context or KV type (checked: identical
  at 512 .. 131072 tokens), nor on the engine.
* Prefill: llmfit reports ``prefill_tps`` only from ``info`` (its own choice of quant) and only in
  GPU run mode; a discrete-GPU profile cannot state VRAM, so ``info`` falls back to CPU mode there.
  llmfit's prefill depends only on the FP16 TFLOPS and the model (checked: the same value with 128
  and 48 GB profiles and different chosen quants), so it is read from a unified-memory profile with
  the device's bandwidth and FP16 TFLOPS. No FP16 figure, or weights in host RAM (llmfit's
  offload mode needs a VRAM size a profile cannot give): no llmfit prefill.
* Not expressible (no llmfit number): several GPUs (profiles have no GPU count; ``--memory`` cannot
  carry a bandwidth), batch > 1 (no throughput-under-concurrency estimate), MTP speculative decoding,
  hardware not in the catalog. Quants llmfit rejects (IQ*, fp8, nvfp4, mlx-6bit, mlx-mxfp8) are
  mapped to the nearest type it accepts, and the row is flagged ``quant_mapped``.
"""

# ruff: noqa: E501  (report tables and constant tables read better on one line)
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.speed.fit.features import Row, load_rows
from qwenfit.loaders.hardware import hardware_catalog

HERE = Path(__file__).resolve().parent
OUT = HERE / "llmfit_scores.json"
LLMFIT = Path(os.environ.get("LLMFIT", "/work/scratch/speedfit/llmfit-venv/bin/llmfit"))

MODELS = {
    "Qwen3.5-0.8B": "Qwen/Qwen3.5-0.8B", "Qwen3.5-2B": "Qwen/Qwen3.5-2B", "Qwen3.5-4B": "Qwen/Qwen3.5-4B",
    "Qwen3.5-9B": "Qwen/Qwen3.5-9B", "Qwen3.5-27B": "Qwen/Qwen3.5-27B", "Qwen3.5-35B-A3B": "Qwen/Qwen3.5-35B-A3B",
    "Qwen3.5-122B-A10B": "Qwen/Qwen3.5-122B-A10B", "Qwen3.5-397B-A17B": "Qwen/Qwen3.5-397B-A17B",
    "Qwen3.6-27B": "Qwen/Qwen3.6-27B", "Qwen3.6-35B-A3B": "Qwen/Qwen3.6-35B-A3B",
    "Qwen3-Next-80B-A3B": "Qwen/Qwen3-Next-80B-A3B-Instruct",
    "Qwen3-Coder-Next-80B-A3B": "Qwen/Qwen3-Coder-Next", "Qwen3-30B-A3B": "Qwen/Qwen3-30B-A3B",
    "Qwen3-32B": "Qwen/Qwen3-32B", "Qwen3-235B-A22B": "Qwen/Qwen3-235B-A22B",
    "gpt-oss-20b": "openai/gpt-oss-20b", "gpt-oss-120b": "openai/gpt-oss-120b",
    "Llama-3.1-8B": "meta-llama/Llama-3.1-8B-Instruct", "Llama-3.1-70B": "meta-llama/Llama-3.1-70B-Instruct",
}  # fmt: skip
# qwenfit quant -> the llmfit --quant it accepts (identity where llmfit knows the name)
QUANTS = {
    "Q3_K_M": "Q3_K_M", "Q4_K_M": "Q4_K_M", "Q5_K_M": "Q5_K_M", "Q6_K": "Q6_K", "Q8_0": "Q8_0", "BF16": "BF16",
    "gptq": "GPTQ-Int4", "awq": "AWQ-4bit", "mlx-4bit": "mlx-4bit", "mlx-8bit": "mlx-8bit", "MXFP4_MOE": "MXFP4",
    # not accepted by llmfit 1.1.17: nearest bit width it accepts (flagged quant_mapped)
    "IQ4_XS": "Q4_K_M", "IQ4_NL": "Q4_0", "IQ2_XXS": "Q2_K", "fp8": "Q8_0", "nvfp4": "MXFP4",
    "mlx-6bit": "Q6_K", "mlx-mxfp8": "mlx-8bit",
}  # fmt: skip
EXACT = {
    "Q3_K_M",
    "Q4_K_M",
    "Q5_K_M",
    "Q6_K",
    "Q8_0",
    "BF16",
    "gptq",
    "awq",
    "mlx-4bit",
    "mlx-8bit",
    "MXFP4_MOE",
}


def _run(args: list[str], home: str) -> dict[str, Any]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "LANG": "C.UTF-8"}
    r = subprocess.run([str(LLMFIT), *args], capture_output=True, text=True, env=env, timeout=120)
    try:
        return {"ok": r.returncode == 0, "output": json.loads(r.stdout)}
    except json.JSONDecodeError:
        return {"ok": False, "stderr": [ln for ln in r.stderr.splitlines() if "GLIBC" not in ln][-5:]}


def _profile(r: Row, pdir: Path, *, unified: bool | None = None) -> Path:
    dev = hardware_catalog()[r.hw_id or ""]
    uni = (dev.kind == "unified") if unified is None else unified
    ram = dev.memory_bytes / 2**30 if dev.kind == "unified" else 64.0
    ddr = dev.bandwidth_gbps if dev.kind == "unified" else (r.host_peak_gbps or 89.6)
    hw: dict[str, Any] = {"total_ram_gb": round(ram, 1), "unified_memory": uni,
                          "gpu_memory_bandwidth_gbps": dev.bandwidth_gbps, "ddr_bandwidth_gbps": ddr}  # fmt: skip
    if dev.fp16_tflops > 0:
        hw["gpu_compute_tflops_fp16"] = dev.fp16_tflops
    name = f"qf-{dev.id}-{'u' if uni else 'd'}-{int(ddr)}"
    path = pdir / f"{name}.json"
    path.write_text(json.dumps({"schema_version": 1, "name": name, "hardware": hw}, indent=1))
    return path


def expressible(r: Row) -> str:
    if r.hw_id is None:
        return "hardware not named"
    if r.n_gpus > 1:
        return "several GPUs (llmfit profiles have no GPU count)"
    if r.batch > 1:
        return "batch > 1 (no throughput-under-concurrency estimate)"
    if r.mtp_n:
        return "MTP speculative decoding (not modelled by llmfit)"
    if r.model not in MODELS:
        return "model not in llmfit's database"
    if r.quant not in QUANTS:
        return f"quant {r.quant} not expressible"
    return ""


def main() -> int:
    version = subprocess.run([str(LLMFIT), "--version"], capture_output=True, text=True).stdout.strip()
    home = tempfile.mkdtemp(prefix="qwenfit-llmfit-home-")
    pdir = Path(tempfile.mkdtemp(prefix="qwenfit-llmfit-profiles-"))
    rows = load_rows()
    out: dict[str, Any] = {"tool": "llmfit", "version": version, "package": "llmfit==1.1.17 (PyPI)",
                           "script": "benchmarks/speed/fit/llmfit_scores.py", "rows": {}}  # fmt: skip
    prefill_cache: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        why = expressible(r)
        rec: dict[str, Any] = {"expressible": not why, "reason": why}
        if why:
            out["rows"][r.id] = rec
            continue
        prof = _profile(r, pdir)
        model = MODELS[r.model]
        quant = QUANTS[r.quant or ""]
        path = "cpu_offload" if (r.dense_cpu + r.expert_cpu) > 0 else "gpu"
        ctx = max(4096, int(2 * r.depth))
        args = ["--profile", str(prof), "plan", model, "--context", str(ctx), "--quant", quant, "--json"]
        res = _run(args, home)
        tps = None
        if res["ok"]:
            for p in res["output"].get("run_paths", []):
                if p.get("path") == path:
                    tps = p.get("estimated_tps")
        rec.update({"model": model, "quant": quant, "quant_mapped": r.quant not in EXACT, "run_path": path,
                    "command": ["llmfit", *args[:1], prof.name, *args[2:]], "decode_tps": tps,
                    "profile": json.loads(prof.read_text())})  # fmt: skip
        if not res["ok"]:
            rec["error"] = res.get("stderr")
        # prefill (see the module docstring)
        if (
            r.prefill is not None and path == "gpu"
        ):  # offload rows: llmfit's prefill needs its MoE-offload mode
            key = (r.hw_id or "", model)
            if key not in prefill_cache:
                uprof = _profile(r, pdir, unified=True)
                iargs = ["--profile", str(uprof), "info", model, "--json"]
                ires = _run(iargs, home)
                pp = None
                if ires["ok"]:
                    pp = ires["output"]["models"][0].get("prefill_tps")
                prefill_cache[key] = {
                    "prefill_tps": pp,
                    "command": ["llmfit", "--profile", uprof.name, *iargs[2:]],
                }
            rec["prefill_tps"] = prefill_cache[key]["prefill_tps"]
            rec["prefill_command"] = prefill_cache[key]["command"]
        out["rows"][r.id] = rec
    OUT.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    n = sum(1 for v in out["rows"].values() if v.get("decode_tps"))
    print(f"wrote {OUT}: {n} rows with an llmfit decode estimate of {len(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
