#!/usr/bin/env python3
"""Ground truth of llama.cpp's per-device GPU memory (CUDA), measured without a GPU.

What it measures
----------------
``scripts/build_fake_gpu.sh`` compiles llama.cpp@0c1e570 (the tree vendored in llama-cpp-python
0.3.36, same as build_llama_cpp.sh) with the REAL ggml-cuda backend and runs it against a fake
CUDA runtime (scripts/fake_gpu/fake_cudart.c) that reports N GPUs from
``QWENFIT_FAKE_CUDA_DEVICES``. ``qwenfit-gpuprobe`` (scripts/fake_gpu/gpuprobe.cpp) builds model +
context with no_alloc (as llama-fit-params does), so llama.cpp's own CUDA backend decides buffer
alignment, get_alloc_size padding, supports_op / offload_op, the scheduler's splits,
pipeline-parallel copies and every compute reservation; nothing is allocated, no kernel runs.

Every run is done twice with the same binary and flags: on the fake GPUs and CPU-only
(``QWENFIT_FAKE_CUDA_DEVICES=none``: ggml-cuda registers no device). The CPU-only numbers are the
ones qwenfit's CPU replay reproduces to the byte (tests/fixtures/llama_memory/), so ``delta`` is
exactly what a GPU adds.

Output: ``tests/fixtures/llama_memory_gpu/<model>.json`` + ``INDEX.json`` (see the README there).

How to run
----------
::

    scripts/build_llama_cpp.sh          # llama-quantize for the Q4_K_M layouts
    scripts/build_fake_gpu.sh           # the CUDA build + fake runtime + probe
    PY=<python with torch + transformers>  # e.g. the fixtures venv, for scripts/_memory_gguf.py
    $PY scripts/gpu_memory_fixtures.py [--models A,B] [--work DIR] [--reuse] [--keep] [--only RUN,...]

Sparse GGUFs (a few MB on disk each) are made by scripts/_memory_gguf.py (same layouts as
llama_memory_fixtures.py: bf16/q4km, with/without the MTP layer). Runtime: ~1-3 s per probe.
Deterministic for a given build (no timings or paths stored).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from typing import Any

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
REPO = os.path.dirname(HERE)
OUT = os.path.join(REPO, "tests", "fixtures", "llama_memory_gpu")
BUILD = os.path.join(HERE, "build_fake_gpu.sh")

MODELS = ["Qwen3.5-9B", "Qwen3.5-27B", "Qwen3.5-35B-A3B", "Qwen3.5-122B-A10B", "Qwen3-Next-80B-A3B"]

# fake devices: name|total MiB|free MiB|compute capability|SMs (free memory drives the default -ts)
GPU = {
    "3090": "NVIDIA GeForce RTX 3090|24576|24000|8.6|82",
    "4090": "NVIDIA GeForce RTX 4090|24564|24000|8.9|128",
    "h100": "NVIDIA H100 80GB HBM3|81559|80000|9.0|132",
    "5090": "NVIDIA GeForce RTX 5090|32607|32000|12.0|170",
}

NOMATCH_OT = "qwenfit_matches_no_tensor=CPU"

BASE: dict[str, Any] = {
    "variant": "q4km-nomtp", "gpus": ["3090"], "ngl": 999, "c": 32768, "ub": 512, "b": 2048, "np": 1,
    "ctk": "f16", "ctv": "f16", "fa": "on", "outputs": "library", "ts": None, "ncmoe": None, "ot": None,
    "mtp": False, "nkvo": False, "sm": None, "kvu": False, "env": {},
}  # fmt: skip


def grid(model: str) -> list[tuple[str, dict[str, Any]]]:
    """(run id, overrides of BASE). One factor at a time around BASE, plus combinations."""
    moe = "A3B" in model or "A10B" in model
    n_layer = {"Qwen3.5-9B": 32, "Qwen3.5-27B": 64, "Qwen3.5-35B-A3B": 40, "Qwen3.5-122B-A10B": 48,
               "Qwen3-Next-80B-A3B": 48}[model]  # fmt: skip
    r: list[tuple[str, dict[str, Any]]] = [("base", {})]
    add = r.append
    # output limits (llama-server reserves n_parallel outputs, the library n_batch)
    add(("srv", {"outputs": "server"}))
    # ubatch
    add(("ub1024", {"ub": 1024}))
    add(("ub2048", {"ub": 2048}))
    add(("ub2048-srv", {"ub": 2048, "outputs": "server"}))
    # context
    add(("c4096", {"c": 4096}))
    add(("c131072", {"c": 131072}))
    add(("c262144", {"c": 262144}))
    # parallel sequences
    add(("np2", {"np": 2}))
    add(("np4", {"np": 4}))
    add(("np4-srv", {"np": 4, "outputs": "server"}))
    # KV type / flash attention
    add(("kv-q8_0", {"ctk": "q8_0", "ctv": "q8_0"}))
    add(("kv-q8_0-c131072", {"ctk": "q8_0", "ctv": "q8_0", "c": 131072}))
    add(("fa-off", {"fa": "off"}))
    add(("fa-off-c4096", {"fa": "off", "c": 4096}))
    add(("nkvo", {"nkvo": True}))
    # ggml-cuda's fusion-driven allocation dependencies switched off (ggml-cuda.cu:4539-4611)
    add(("nofusion", {"env": {"GGML_CUDA_DISABLE_FUSION": "1"}}))
    add(("nofusion-srv", {"env": {"GGML_CUDA_DISABLE_FUSION": "1"}, "outputs": "server"}))
    # other GPU generations (kernel choice -> FA workspace, alignment)
    add(("gpu-4090", {"gpus": ["4090"]}))
    add(("gpu-h100", {"gpus": ["h100"]}))
    add(("gpu-5090", {"gpus": ["5090"]}))
    add(("gpu-h100-kv-q8_0", {"gpus": ["h100"], "ctk": "q8_0", "ctv": "q8_0"}))
    # several GPUs (pipeline parallelism: all layers offloaded, split-mode layer, no -ot)
    add(("gpu2", {"gpus": ["3090", "3090"]}))
    add(("gpu2-srv", {"gpus": ["3090", "3090"], "outputs": "server"}))
    add(("gpu3", {"gpus": ["3090", "3090", "3090"]}))
    add(("gpu2-ts3-1", {"gpus": ["3090", "3090"], "ts": "3,1"}))
    add(("gpu2-ub2048", {"gpus": ["3090", "3090"], "ub": 2048}))
    add(("gpu2-ub2048-np4-srv", {"gpus": ["3090", "3090"], "ub": 2048, "np": 4, "outputs": "server"}))
    add(("gpu2-c131072-kv-q8_0", {"gpus": ["3090", "3090"], "c": 131072, "ctk": "q8_0", "ctv": "q8_0"}))
    add(("gpu2-fa-off", {"gpus": ["3090", "3090"], "fa": "off"}))
    add(("gpu2-sm-none", {"gpus": ["3090", "3090"], "sm": "none"}))
    # the same two-GPU layer split with pipeline parallelism switched off: any -ot pattern does that
    # (llama-context.cpp:430-435 !model.has_tensor_overrides()); this one matches no tensor
    add(("gpu2-nopp", {"gpus": ["3090", "3090"], "ot": NOMATCH_OT}))
    add(("gpu2-srv-nopp", {"gpus": ["3090", "3090"], "outputs": "server", "ot": NOMATCH_OT}))
    add(("gpu3-ub1024-srv", {"gpus": ["3090", "3090", "3090"], "ub": 1024, "outputs": "server"}))
    # partial offload (pipeline parallelism off)
    half = n_layer // 2
    add((f"ngl{half}", {"ngl": half}))
    add((f"ngl{half}-ub2048", {"ngl": half, "ub": 2048}))
    add(("ngl0", {"ngl": 0}))
    add((f"gpu2-ngl{half}", {"gpus": ["3090", "3090"], "ngl": half}))
    if moe:
        add(("ot-exps-cpu", {"ot": "exps=CPU"}))
        add(("ot-exps-cpu-ub2048", {"ot": "exps=CPU", "ub": 2048}))
        add(("ot-exps-cpu-srv", {"ot": "exps=CPU", "outputs": "server"}))
        add(("ncmoe-all", {"ncmoe": n_layer}))
        add((f"ncmoe{half}", {"ncmoe": half}))
        add((f"ncmoe{half}-ub2048", {"ncmoe": half, "ub": 2048}))
        add((f"gpu2-ncmoe{half}", {"gpus": ["3090", "3090"], "ncmoe": half}))
        add(("gpu2-ot-exps-cpu", {"gpus": ["3090", "3090"], "ot": "exps=CPU"}))
    # weight layouts: with the MTP layer (not loaded / loaded as a draft), BF16
    add(("mtp-file", {"variant": "q4km-mtp"}))
    add(("mtp-draft", {"variant": "q4km-mtp", "mtp": True, "outputs": "server"}))
    add(
        (
            "mtp-draft-gpu2",
            {"variant": "q4km-mtp", "mtp": True, "outputs": "server", "gpus": ["3090", "3090"]},
        )
    )
    add(("bf16", {"variant": "bf16-nomtp"}))
    return r


def probe_args(spec: dict[str, Any], model_path: str) -> list[str]:
    a = ["-m", model_path, "-c", str(spec["c"]), "-np", str(spec["np"]), "-ub", str(spec["ub"]),
         "-b", str(spec["b"]), "-fa", spec["fa"], "-ctk", spec["ctk"], "-ctv", spec["ctv"],
         "-ngl", str(spec["ngl"])]  # fmt: skip
    if spec["ts"]:
        a += ["-ts", spec["ts"]]
    if spec["sm"]:
        a += ["-sm", spec["sm"]]
    if spec["ncmoe"] is not None:
        a += ["-ncmoe", str(spec["ncmoe"])]
    if spec["ot"]:
        a += ["-ot", spec["ot"]]
    if spec["nkvo"]:
        a.append("-nkvo")
    if spec["kvu"]:
        a.append("-kvu")
    if spec["mtp"]:
        a += ["--spec-type", "draft-mtp"]
    a += ["--qf-outputs", spec["outputs"]]
    return a


_GRAPH = re.compile(
    r"sched_reserve: graph(?: \(pp bs=(\d+), tg bs=(\d+)\))?: nodes = ([\d /]+), splits = ([\d /]+),"
)
_SPLIT = re.compile(r"^## SPLIT #(\d+): (\S+) # (\d+) inputs(?:: (.*))?$")
_INPUT = re.compile(r"\[([^\[\]]+?) \(\s*(\d+[KM])\)\]")


def parse_log(log: str) -> list[dict[str, Any]]:
    """Per context (main, then mtp): graph nodes/splits (pp / tg) and the splits of the last graph
    split by the scheduler (the final pp reservation), from GGML_SCHED_DEBUG=1."""
    ctxs: list[dict[str, Any]] = []
    cur: dict[str, Any] = {}
    listing: list[list[Any]] = []
    last_listing: list[list[Any]] = []
    for line in log.splitlines():
        m = _SPLIT.match(line.strip())
        if m:
            if m.group(1) == "0":
                if listing:
                    last_listing = listing
                listing = []
            ins = [[n, s] for n, s in _INPUT.findall(m.group(4) or "")]
            listing.append([m.group(2), int(m.group(3)), ins])
            continue
        m = _GRAPH.search(line)
        if m:
            nodes = [int(x) for x in m.group(3).split("/")]
            splits = [int(x) for x in m.group(4).split("/")]
            cur["graph_nodes_pp_tg"] = nodes if len(nodes) == 2 else nodes * 2
            cur["graph_splits_pp_tg"] = splits if len(splits) == 2 else splits * 2
        if line.startswith("qwenfit_probe:") and "ready" in line:
            # the final pp reserve is the last split_graph before the context is ready
            cur["splits_pp"] = listing or last_listing
            listing, last_listing = [], []
            ctxs.append(cur)
            cur = {}
    return ctxs


def run_probe(
    exe: str, args: list[str], devices: str, extra_env: dict[str, str] | None = None
) -> tuple[dict[str, Any] | None, str, int]:
    env = dict(os.environ, QWENFIT_FAKE_CUDA_DEVICES=devices, GGML_SCHED_DEBUG="1", LLAMA_ARG_THREADS="1")
    env.update(extra_env or {})
    env.pop("CUDA_VISIBLE_DEVICES", None)
    r = subprocess.run([exe, *args], capture_output=True, text=True, env=env)
    out = None
    if r.returncode == 0:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    return out, r.stderr, r.returncode


def summarize(res: dict[str, Any], log: str) -> dict[str, Any]:
    """Compact per-context record: per buffer type model/context(kv, rs)/compute, output, graph."""
    logs = parse_log(log)
    ctxs = {}
    for i, c in enumerate(res["contexts"]):
        bufs: dict[str, dict[str, int]] = {}
        for b in c["breakdown"]:
            row = {"model": b["model"], "context": b["context"], "compute": b["compute"]}
            row["kv"] = c.get("kv", {}).get(b["buft"], 0)
            row["rs"] = c.get("rs", {}).get(b["buft"], 0)
            bufs[b["buft"]] = {k: v for k, v in row.items() if v}
        rec = {
            k: c[k]
            for k in (
                "n_ctx",
                "n_ctx_seq",
                "n_seq_max",
                "n_batch",
                "n_ubatch",
                "n_outputs_max",
                "n_outputs_max_per_seq",
                "flash_attn",
                "pipeline_parallel",
                "sched_n_copies",
            )
        }
        rec["buffers"] = bufs
        rec["backends"] = [
            [b["backend"], b["buft"], b["buft_alignment"], b["compute"]] for b in c["backends"]
        ]
        if "output" in c:
            rec["output"] = [c["output"]["buft"], c["output"]["size"]]
        if i < len(logs):
            lg = logs[i]
            rec["graph_nodes_pp_tg"] = lg.get("graph_nodes_pp_tg")
            rec["graph_splits_pp_tg"] = lg.get("graph_splits_pp_tg")
            sp = lg.get("splits_pp") or []
            rec["splits_pp"] = sp
            per_backend: dict[str, list[int]] = {}
            for be, n_in, _ins in sp:
                x = per_backend.setdefault(be, [0, 0])
                x[0] += 1
                x[1] += n_in
            rec["splits_per_backend"] = per_backend  # backend: [n splits, n split inputs]
        ctxs[c["role"]] = rec
    return {"model_buffers": res["model_buffers"], "n_gpu_layers": res["n_gpu_layers"],
            "model_devices": res["model_devices"], "contexts": ctxs}  # fmt: skip


def delta(gpu: dict[str, Any], cpu: dict[str, Any]) -> dict[str, Any]:
    """GPU run minus CPU run, per context: total compute, total context, and the per-buft compute."""
    out = {}
    for role, g in gpu["contexts"].items():
        c = cpu["contexts"].get(role)
        if not c:
            continue
        g_comp = sum(b.get("compute", 0) for b in g["buffers"].values())
        c_comp = sum(b.get("compute", 0) for b in c["buffers"].values())
        g_ctx = sum(b.get("context", 0) for b in g["buffers"].values())
        c_ctx = sum(b.get("context", 0) for b in c["buffers"].values())
        out[role] = {
            "cpu_compute": c_comp, "gpu_compute_total": g_comp, "compute_total_minus_cpu": g_comp - c_comp,
            "compute_ratio_total": round(g_comp / c_comp, 4) if c_comp else None,
            "compute_per_buft": {k: v.get("compute", 0) for k, v in g["buffers"].items() if v.get("compute")},
            "context_total_minus_cpu": g_ctx - c_ctx,
        }  # fmt: skip
        g_model = sum(gpu["model_buffers"].values())
        c_model = sum(cpu["model_buffers"].values())
        out[role]["model_total_minus_cpu"] = g_model - c_model
    return out


def build_paths() -> dict[str, str]:
    r = subprocess.run(["bash", BUILD, "--print"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"run {BUILD} first\n{r.stderr}")
    return dict(ln.split("=", 1) for ln in r.stdout.splitlines() if "=" in ln)


def make_layouts(name: str, work: str, reuse: bool) -> dict[str, str]:
    import _memory_gguf as mg  # needs torch + transformers (scripts/_gguf_sparse.py)

    paths = {}
    for mtp in (False, True):
        p, _ = mg.make_bf16(name, work, mtp, reuse)
        v = "bf16-mtp" if mtp else "bf16-nomtp"
        paths[v] = p
        q = p.replace(".bf16-", ".q4km-")
        mg.make_q4km(p, q, reuse)
        paths[v.replace("bf16", "q4km")] = q
    return paths


def run_model(name: str, exe: str, work: str, reuse: bool, only: set[str] | None) -> dict[str, Any]:
    t0 = time.time()
    paths = make_layouts(name, work, reuse)
    runs: dict[str, Any] = {}
    for rid, ov in grid(name):
        if only and rid not in only:
            continue
        spec = dict(BASE, **ov)
        args = probe_args(spec, paths[spec["variant"]])
        devices = ";".join(GPU[x] for x in spec["gpus"])
        g, glog, grc = run_probe(exe, args, devices, spec["env"])
        c, clog, crc = run_probe(exe, args, "none", spec["env"])
        rec: dict[str, Any] = {
            "set": ov,
            "devices": devices,
            **({"env": spec["env"]} if spec["env"] else {}),
            "args": ["-m", f"<work>/{os.path.basename(paths[spec['variant']])}", *args[2:]],
        }
        if grc != 0 or crc != 0:
            tail = [ln for ln in (glog if grc else clog).splitlines() if ln.strip()][-3:]
            rec["status"] = "error"
            rec["error"] = tail
        else:
            rec["gpu"] = summarize(g, glog)
            rec["cpu"] = summarize(c, clog)
            rec["delta"] = delta(rec["gpu"], rec["cpu"])
        runs[rid] = rec
        if "delta" in rec:
            msg = json.dumps({k: v["compute_total_minus_cpu"] for k, v in rec["delta"].items()})
        else:
            msg = f"ERROR {rec.get('error')}"
        print(f"  {name} {rid}: {msg}", file=sys.stderr)
    print(f"{name}: {len(runs)} runs in {time.time() - t0:.1f} s", file=sys.stderr)
    return {"model": name, "base": BASE, "gpus": GPU, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/tmp/qwenfit-llama-memory-gpu", help="scratch dir (sparse GGUFs)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--only", default="", help="comma-separated run ids")
    ap.add_argument("--reuse", action="store_true", help="reuse sparse GGUFs of an earlier run")
    ap.add_argument("--keep", action="store_true", help="keep the sparse GGUFs")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args(argv)
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    bp = build_paths()
    exe = bp["FAKE_GPU_PROBE"]
    only = set(a.only.split(",")) if a.only else None
    import _gguf_common as g

    index: dict[str, Any] = {
        "llama_cpp": {"commit": bp["FAKE_GPU_LLAMA_COMMIT"], "cuda_arch": bp["FAKE_GPU_ARCH"],
                      "tool": "qwenfit-gpuprobe: real ggml-cuda + fake cudart (scripts/fake_gpu)"},
        "base": BASE, "gpus": GPU, "models": {},
    }  # fmt: skip
    for name in a.models.split(","):
        res = run_model(name, exe, a.work, a.reuse, only)
        res["llama_cpp"] = index["llama_cpp"]
        path = os.path.join(a.out, f"{name}.json")
        if only and os.path.exists(path):  # merge a partial re-run into the existing fixture
            with open(path) as f:
                old = json.load(f)
            old["runs"].update(res["runs"])
            res["runs"] = old["runs"]
        g.json_dump(res, path)
        index["models"][name] = {"runs": len(res["runs"]), "grid": [rid for rid, _ in grid(name)]}
        if not a.keep:
            for f in os.listdir(a.work):
                if f.startswith(name + ".") and f.endswith(".gguf"):
                    os.remove(os.path.join(a.work, f))
    ipath = os.path.join(a.out, "INDEX.json")
    if only and os.path.exists(ipath):
        with open(ipath) as f:
            old = json.load(f)
        old["models"].update(index["models"])
        index["models"] = old["models"]
    g.json_dump(index, ipath)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
