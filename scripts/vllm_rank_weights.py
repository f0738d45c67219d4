#!/usr/bin/env python3
"""Fixture of the weight bytes each vLLM rank allocates for Qwen3.5 / Qwen3-Next, from vLLM's own code.

vLLM 0.33.0's model classes (``Qwen3_5ForConditionalGeneration``, ``Qwen3_5MoeForConditionalGeneration``,
``Qwen3NextForCausalLM`` and the MTP drafters ``Qwen3_5MTP`` / ``Qwen3_5MoeMTP`` / ``Qwen3NextMTP``) are
built full-size on the meta device (no memory) with a simulated parallel state, one rank at a time
(``_vllm_ranks_sim``; stubs recorded in the fixture). For every model x quant (BF16 checkpoint; Qwen's
block FP8) x simulated GPU (H100 = SM90, B200 = SM100: vLLM picks a different MoE kernel, and the
Blackwell one pads the expert width) x TP {1,2,4,8} x PP {1,2,3,4} x {no DP, EP, DP=2, DP=2 + EP}
(MoE only), the bytes of every parameter and buffer of the rank are counted: every rank for PP=1, the
first and last TP/DP rank of every stage for PP>1 (the ranks of one stage only differ by expert
remainders). Configurations vLLM refuses are recorded with its error.

Also recorded: the MTP drafter's own weights on the last stage (speculative decoding only; the main
model allocates no MTP weights), and the vision tower's stage under the V1 model runner.

How to run (CPU-only, PyPI only; the venv of scripts/vllm_fixtures.py)::

    QWENFIT_VLLM_CACHE=/work/cache/vllm /work/venvs/vllm/bin/python scripts/vllm_rank_weights.py

Options: ``--models GLOB``, ``--quick`` (H100, BF16, TP 1-2, PP 1-2: smoke run, does not write),
``--workers N`` (parallel processes, default 2), ``--out DIR``. About 11 minutes on 2 cores.
``--compare [FIXTURE]`` needs no vLLM: it prints, per configuration, vLLM's fullest rank next to
qwenfit's ``rank_weights`` (fullest stage) for the weights vLLM loads (vision tower in, MTP out).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import _vllm_env as env  # noqa: E402
import _vllm_ranks_sources as S  # noqa: E402

MODELS = [
    "Qwen3.5-9B",
    "Qwen3.5-27B",
    "Qwen3.5-35B-A3B",
    "Qwen3.5-122B-A10B",
    "Qwen3.5-397B-A17B",
    "Qwen3-Next-80B-A3B",
    "Qwen3.5-4B",  # tied embeddings
]
GPUS = ["H100", "B200"]
QUANTS = ["bf16", "fp8"]
TPS = [1, 2, 4, 8]
PPS = [1, 2, 3, 4]
FP8_PPS = [1, 2]
MOE_PARALLEL = [(1, False), (1, True), (2, False), (2, True)]  # (dp, expert parallel)

COLUMNS = [
    "model",
    "quant",
    "gpu",
    "tp",
    "pp",
    "dp",
    "ep",  # --enable-expert-parallel (EP size = tp * dp)
    "pp_rank",
    "tp_rank",
    "dp_rank",
    "layer_start",
    "layer_end",
    "param_bytes",  # every parameter the rank allocates (a tied lm_head once)
    "vision_bytes",
    "embed_bytes",
    "lm_head_bytes",  # 0 when tied (counted in embed_bytes)
    "routed_expert_bytes",
    "buffer_bytes",  # rotary cos_sin caches, attention scales, expert maps
    "moe_backend",
    "local_experts",
    "moe_intermediate_per_partition",  # after the kernel's round-up
]
MTP_COLUMNS = [
    "model",
    "gpu",
    "tp",
    "pp",
    "dp",
    "ep",
    "tp_rank",
    "dp_rank",
    "architecture",
    "param_bytes",  # as the drafter class builds them
    "embed_bytes",  # replaced by the target's embedding when pp == 1 (freed)
    "lm_head_bytes",  # always replaced by the target's lm_head (freed)
    "routed_expert_bytes",
    "own_bytes",  # what stays allocated: param_bytes - lm_head - (embed if pp == 1)
    "buffer_bytes",  # rotary cache: the same get_rope cache object as the target's in one process
]


def is_moe(cfg: dict) -> bool:
    return "num_experts" in cfg.get("text_config", cfg)


def fp8_not_convert(model: str) -> list[str]:
    """HF module names of the official FP8 checkpoint's modules_to_not_convert: every module qwenfit's
    'fp8' format (ref quant-formats.md §4.2) keeps unquantized."""
    import qwenfit
    from qwenfit.core.formats.gpu import gpu_weights

    w = gpu_weights(qwenfit.load(model), "fp8", mtp=True, vision=True)
    out: list[str] = []
    for t in w.tensors:
        if t.type.startswith("fp8"):
            continue
        n = t.name.split(":")[0]
        for suffix in (".weight", ".bias"):
            n = n.removesuffix(suffix)
        if n not in out:
            out.append(n)
    return out


def rank_list(tp: int, pp: int, dp: int) -> list[list[int]]:
    """[tp_rank, pp_rank, dp_rank]: every rank for pp == 1, else first and last TP/DP rank per stage."""
    if pp == 1:
        return [[t, 0, d] for d in range(dp) for t in range(tp)]
    out = []
    for p in range(pp):
        for t, d in {(0, 0), (tp - 1, dp - 1)}:
            out.append([t, p, d])
    return sorted(out, key=lambda r: (r[1], r[2], r[0]))


def make_jobs(models: list[str], gpus: list[str], quants: list[str], tps, pps) -> dict[str, list[dict]]:
    jobs: dict[str, list[dict]] = {g: [] for g in gpus}
    nc_cache: dict[str, list[str]] = {}
    for name in models:
        path = REPO / "data" / "models" / f"{name}.json"
        cfg = json.loads(path.read_text())
        moe = is_moe(cfg)
        for quant in quants:
            if quant == "fp8" and name not in nc_cache:
                nc_cache[name] = fp8_not_convert(name)
            for gpu in gpus:
                for tp in tps:
                    for pp in pps if quant == "bf16" else [p for p in pps if p in FP8_PPS]:
                        for dp, ep in MOE_PARALLEL if moe else [(1, False)]:
                            job = {
                                "model": name,
                                "model_json": str(path),
                                "quant": quant,
                                "gpu": gpu,
                                "tp": tp,
                                "pp": pp,
                                "dp": dp,
                                "ep": ep,
                                "ranks": rank_list(tp, pp, dp),
                            }
                            if quant == "fp8":
                                job["not_convert"] = nc_cache[name]
                            jobs[gpu].append(job)
                # the MTP drafter, on the last stage (bf16)
                if quant == "bf16":
                    for tp in tps:
                        for pp in [p for p in pps if p <= 2]:
                            for dp, ep in MOE_PARALLEL if moe else [(1, False)]:
                                jobs[gpu].append(
                                    {
                                        "model": name,
                                        "model_json": str(path),
                                        "quant": quant,
                                        "gpu": gpu,
                                        "tp": tp,
                                        "pp": pp,
                                        "dp": dp,
                                        "ep": ep,
                                        "mtp": True,
                                        "ranks": [[0, pp - 1, 0]],
                                    }
                                )
    return jobs


def run_workers(jobs: dict[str, list[dict]], n_workers: int, v2_runner: bool = True) -> list[dict]:
    """One subprocess per (GPU kind, share of the jobs); each simulates one GPU kind."""
    tmp = Path(tempfile.mkdtemp(prefix="qwenfit-vllm-rank-jobs-"))
    procs = []
    chunks = []
    for gpu, js in jobs.items():
        per = max(1, -(-len(js) // max(1, n_workers)))
        chunks += [(gpu, js[i : i + per]) for i in range(0, len(js), per)]
    results: list[dict] = []
    pending = list(enumerate(chunks))
    running: list[tuple[subprocess.Popen, Path, str]] = []
    while pending or running:
        while pending and len(running) < n_workers:
            i, (gpu, js) = pending.pop(0)
            jf, of = tmp / f"jobs{i}.json", tmp / f"out{i}.json"
            jf.write_text(json.dumps(js))
            cmd = [
                sys.executable,
                str(HERE / "_vllm_ranks_sim.py"),
                gpu,
                "1" if v2_runner else "0",
                str(jf),
                str(of),
            ]
            log = open(tmp / f"log{i}.txt", "w")  # noqa: SIM115
            running.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), of, gpu))
            procs.append(log)
        time.sleep(1)
        for item in list(running):
            p, of, gpu = item
            if p.poll() is None:
                continue
            running.remove(item)
            if p.returncode:
                raise SystemExit(f"worker for {gpu} failed (rc {p.returncode}); logs in {tmp}")
            results += json.loads(of.read_text())
            print(f"  {len(results)} jobs done", flush=True)
    for log in procs:
        log.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return results


def to_rows(results: list[dict]) -> tuple[list, list, list]:
    rows, mtp_rows, rejected = [], [], []
    for r in results:
        key = {k: r[k] for k in ("model", "quant", "gpu", "tp", "pp", "dp", "ep")}
        if "error" in r:
            rejected.append({**key, "mtp": r.get("mtp", False), "vllm_error": r["error"]})
            continue
        for k in r["ranks"]:
            kinds = k["by_kind"]
            moe = k.get("moe") or {}
            if r.get("mtp"):
                own = (
                    k["param_bytes"]
                    - kinds.get("lm_head", 0)
                    - (kinds.get("embed", 0) if r["pp"] == 1 else 0)
                )
                mtp_rows.append(
                    [
                        r["model"],
                        r["gpu"],
                        r["tp"],
                        r["pp"],
                        r["dp"],
                        r["ep"],
                        k["tp_rank"],
                        k["dp_rank"],
                        k["architecture"],
                        k["param_bytes"],
                        kinds.get("embed", 0),
                        kinds.get("lm_head", 0),
                        kinds.get("routed_experts", 0),
                        own,
                        k["buffer_bytes"],
                    ]
                )
                continue
            rows.append(
                [
                    r["model"],
                    r["quant"],
                    r["gpu"],
                    r["tp"],
                    r["pp"],
                    r["dp"],
                    r["ep"],
                    k["pp_rank"],
                    k["tp_rank"],
                    k["dp_rank"],
                    k["layers"][0],
                    k["layers"][1],
                    k["param_bytes"],
                    kinds.get("vision", 0),
                    kinds.get("embed", 0),
                    kinds.get("lm_head", 0),
                    kinds.get("routed_experts", 0),
                    k["buffer_bytes"],
                    moe.get("backend"),
                    moe.get("local_experts"),
                    moe.get("intermediate_per_partition"),
                ]
            )
    order = {m: i for i, m in enumerate(MODELS)}
    rows.sort(key=lambda x: (order.get(x[0], 99), x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[9], x[8]))
    mtp_rows.sort(key=lambda x: (order.get(x[0], 99), x[0], x[1], x[2], x[3], x[4], x[5]))
    rejected.sort(
        key=lambda x: (
            order.get(x["model"], 99),
            x["model"],
            x["quant"],
            x["gpu"],
            x["tp"],
            x["pp"],
            x["dp"],
            x["ep"],
            x["mtp"],
        )
    )
    return rows, mtp_rows, rejected


def v1_runner_vision(models: list[str]) -> list[dict]:
    """Vision-tower bytes per PP stage under the V1 model runner (VLLM_USE_V2_MODEL_RUNNER=0)."""
    jobs = []
    for name in models:
        cfg = json.loads((REPO / "data" / "models" / f"{name}.json").read_text())
        if "vision_config" not in cfg:
            continue
        path = REPO / "data" / "models" / f"{name}.json"
        jobs.append(
            {
                "model": name,
                "model_json": str(path),
                "quant": "bf16",
                "gpu": "H100",
                "tp": 1,
                "pp": 2,
                "dp": 1,
                "ep": False,
                "ranks": [[0, 0, 0], [0, 1, 0]],
            }
        )
    if not jobs:
        return []
    out = []
    for r in run_workers({"H100": jobs}, 1, v2_runner=False):
        out.append(
            {
                "model": r["model"],
                "tp": 1,
                "pp": 2,
                "vision_bytes_per_stage": [k["by_kind"].get("vision", 0) for k in r["ranks"]],
                "param_bytes_per_stage": [k["param_bytes"] for k in r["ranks"]],
            }
        )
    return out


def compare(fixture: Path, models: str = "*") -> None:
    """Markdown table: vLLM's fullest rank vs qwenfit's rank_weights on its fullest stage."""
    import qwenfit
    from qwenfit.core.engines.sglang import rank_weights
    from qwenfit.core.engines.vllm.pool import pp_partitions
    from qwenfit.core.formats.gpu import gpu_weights

    doc = json.loads(Path(fixture).read_text())
    cases: dict[tuple, int] = {}
    for row in doc["rows"]:
        r = dict(zip(doc["columns"], row, strict=True))
        if not fnmatch.fnmatch(r["model"], models):
            continue
        key = (r["model"], r["quant"], r["gpu"], r["tp"], r["pp"], r["dp"], r["ep"])
        cases[key] = max(cases.get(key, 0), r["param_bytes"])
    print(
        "| model | quant | GPU | TP | PP | DP | EP | vLLM fullest rank (B) | qwenfit rank_weights (B) | "
        "qwenfit - vLLM (B) | % |"
    )
    print("|---|---|---|---|---|---|---|---:|---:|---:|---:|")
    weights: dict[tuple, object] = {}
    for (model, quant, gpu, tp, pp, dp, ep), got in cases.items():
        spec = qwenfit.load(model)
        if (model, quant) not in weights:
            weights[model, quant] = gpu_weights(spec, quant, mtp=False, vision=spec.vision is not None)
        w = weights[model, quant]
        ours = max(
            rank_weights(spec, w, tp, stage=st, pp=pp, ep=tp * dp if ep else 0)[0]
            for st in pp_partitions(spec.text.num_hidden_layers, pp)
        )
        print(
            f"| {model} | {quant} | {gpu} | {tp} | {pp} | {dp} | {'on' if ep else 'off'} | {got:,} | "
            f"{ours:,} | {ours - got:+,} | {100 * (ours - got) / got:+.3f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--compare",
        nargs="?",
        const=REPO / "tests" / "fixtures" / "vllm" / "rank_weights.json",
        type=Path,
        metavar="FIXTURE",
    )
    ap.add_argument("--models", default="*")
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "vllm")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.compare:
        compare(args.compare, args.models)
        return

    src = env.ensure_source(env.VLLM_PIN, Path(env.DEFAULT_CACHE))
    version = env.wheel_version(src)
    if version != env.VLLM_PIN:
        raise SystemExit(f"wheel says {version}, pin is {env.VLLM_PIN}")
    models = [m for m in MODELS if fnmatch.fnmatch(m, args.models)]
    if args.quick:
        jobs = make_jobs(models, ["H100"], ["bf16"], [1, 2], [1, 2])
    else:
        jobs = make_jobs(models, GPUS, QUANTS, TPS, PPS)
    t0 = time.time()
    print(f"{sum(len(j) for j in jobs.values())} jobs", flush=True)
    results = run_workers(jobs, args.workers)
    rows, mtp_rows, rejected = to_rows(results)
    print(
        f"{len(rows)} rank rows, {len(mtp_rows)} MTP drafter rows, {len(rejected)} rejected, "
        f"{time.time() - t0:.0f}s"
    )
    if args.quick:
        for r in rows[:20]:
            print(r)
        return
    import _vllm_ranks_sim as sim

    doc = {
        "vllm_version": version,
        "generated_by": "scripts/vllm_rank_weights.py",
        "how": "vLLM's model classes built on the meta device with a simulated parallel state, one rank at "
        "a time; bytes = sum(param.numel() * element_size()) over the rank's parameters (named_parameters "
        "deduplicates a tied lm_head) and, separately, its buffers. BF16 = the official checkpoints' "
        "config.json; FP8 = the same plus Qwen's block-FP8 quantization_config. vLLM's default Model Runner "
        "V2 (vision tower on the first PP stage only)",
        "gpus": sim.GPUS,
        "stubs": sim.STUBS,
        "sources": S.resolve(src),
        "columns": COLUMNS,
        "rows": rows,
        "mtp_columns": MTP_COLUMNS,
        "mtp_drafter": mtp_rows,
        "rejected": rejected,
        "v1_runner_vision": v1_runner_vision(models),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "rank_weights.json"
    text = json.dumps(doc, separators=(",", ":"))
    out.write_text(text + "\n")
    print(f"wrote {out} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
