"""Transcribe BAEM1N/llm-bench's Ollama CUDA rows (RTX 3090 x2 rig) into benchmarks/speed/measurements/
baem1n-llm-bench.yaml (printed to stdout).

    python benchmarks/speed/measurements/transcribe/baem1n_llm_bench.py [MIRROR] \
        > benchmarks/speed/measurements/baem1n-llm-bench.yaml

MIRROR: a git directory of github.com/BAEM1N/llm-bench holding commit fa1f98e (default: the project's
fetch-tool mirror, /work/.mirror/BAEM1N+llm-bench/repo)."""

import csv
import io
import statistics as st
import sys

import yaml
from _pinned import show  # the pinned source, read from its mirror (_pinned.py)
from _record import record  # one record in the corpus's field order (_record.py)

MIRROR = sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/BAEM1N+llm-bench/repo"
COMMIT = "fa1f98e10d9186a9fdd84a86acc88f291fc289ea"
PATH = "results/remote/3090/bench_3090_trackA_20260404_160347.csv"
URL = f"https://github.com/BAEM1N/llm-bench/blob/{COMMIT}/{PATH}"
text = show(MIRROR, COMMIT, PATH)
rows = list(csv.DictReader(io.StringIO(text)))
MODELS = {"qwen3.5-27b": "Qwen3.5-27B", "qwen3.5-35b-a3b": "Qwen3.5-35B-A3B", "qwen3.5-9b": "Qwen3.5-9B"}
KEEP = [
    ("qwen3.5-27b", "Q4_K_M"),
    ("qwen3.5-35b-a3b", "Q4_K_M"),
    ("qwen3.5-9b", "Q4_K_M"),
    ("qwen3.5-9b", "Q8_0"),
]
TRACKS = ["gen-512", "prefill-1k", "prefill-4k", "prefill-16k", "prefill-64k", "prefill-128k"]
recs = []
for model, quant in KEEP:
    for track in TRACKS:
        sel = [
            r
            for r in rows
            if r["hardware_id"] == "linux-5950x-3090x2"
            and r["backend"] == "ollama"
            and r["model"] == model
            and r["quantization"] == quant
            and r["track_id"] == track
            and r["run_status"] == "ok"
        ]
        vals = [float(r["gen_tps"]) for r in sel]
        assert len(vals) >= 5, (model, quant, track, vals)
        r0 = sel[0]
        med = round(st.median(vals), 2)
        depth = int(r0["input_tokens"])
        dec = int(r0["max_tokens"])
        qs = ", ".join(r["gen_tps"] for r in sel)
        recs.append(
            record(**{
                "id": f"baem1n-3090x2-ollama-{model.replace('qwen3.5-', '')}-{quant.lower()}-{track}",
                "model": MODELS[model],
                "quant_as_published": f"{quant} (unsloth GGUF)",
                "quant": quant,
                "engine": "ollama",
                "engine_version": r0["backend_version"],
                "backend": "cuda",
                "hardware": "Ryzen 9 5950X + RTX 3090 x2, 128GB DDR4 + 48GB VRAM (config.linux.yaml)",
                "hardware_id": "rtx-3090",
                "n_gpus": 2,
                "depth_tokens": depth,
                "decode_tokens": dec,
                "mtp": None,
                "decode_tokens_per_s": med,
                "url": URL,
                "quote": (
                    f"bench_3090_trackA_20260404_160347.csv rows hardware_id=linux-5950x-3090x2, backend=ollama, backend_version="
                    f"{r0['backend_version']}, model={model}, quantization={quant}, track_id={track}, input_tokens="
                    f"{depth}, max_tokens={dec}, context_window={r0['context_window']}, run_status=ok: gen_tps {qs}"
                ),
                "notes": (
                    "decode_tokens_per_s = median of the quoted per-run gen_tps (src/backends/ollama.py: "
                    "eval_count / eval_duration, Ollama's own decode timing, prompt excluded). Ollama num_ctx = "
                    "context_window 262144 (config.linux.yaml generation.context_window); KV type and flash "
                    "attention not set by the harness (Ollama defaults). Two RTX 3090s: Ollama splits layers "
                    "(n_gpus 2, tp 1); weights + 262K KV of this model fit the 48 GB, placement not logged."
                ),
            })
        )
doc = {
    "source": {
        "id": "baem1n-llm-bench",
        "url": "https://github.com/BAEM1N/llm-bench",
        "kind": "repo",
        "author": "BAEM1N",
        "date": "2026-04-04",
        "independent_of": [],
        "snapshot_commit": COMMIT,
        "notes": (
            "Cold-prefill harness (server restart, nonce prompts, 1 warmup + 5 runs); runs of 2026-04-04 in "
            "results/remote/3090/ at snapshot commit fa1f98e (repo HEAD 2026-04-17). Transcribed: Ollama 0.19.0 on "
            "the RTX 3090 x2 rig (CUDA), the models whose weights + 262K-token KV fit the 48 GB (27B / 35B-A3B / 9B "
            "Q4_K_M, 9B Q8_0): decode at depth 64 (gen-512, 512 tokens) and after 1k-128k-token prompts (prefill-Nk "
            "tracks, 10 generated tokens each; on the same rig llama.cpp reads 44.9 tok/s at 1k depth over 10 tokens "
            "against 41.4 at depth 64 over 512, so these short windows read a few per cent high). Not transcribed: "
            "27B Q8_0 (5.37 tok/s), 35B-A3B Q8_0 (30.9) and 122B Q4_K_M (4.7): weights + 262K-token f16 KV take about "
            "46 GB, 42 GB and 75 GB of the 48 GB, so Ollama's scheduler probably kept part of each on the CPU (the "
            "27B Q8_0 runs 7x below its Q4_K_M), and the CSV records no placement; the rig's llama.cpp rows, "
            "because the harness keeps measuring the previous llama-server when a reload fails (the consolidated "
            "CSV lists 122B Q4_K_M at 129 tok/s on 2x 3090 after 'skip:reload_fail ... unable to allocate CUDA0 "
            "buffer' rows), which Ollama, loading the model each request names, is not exposed to; the vLLM rows "
            "and the other machines (M5 Max, DGX Spark, Ryzen AI MAX 395), and every prefill figure (left for a "
            "later pass). Generated by benchmarks/speed/measurements/transcribe/baem1n_llm_bench.py."
        ),
    },
    "records": recs,
}
print(yaml.safe_dump(doc, sort_keys=False, width=120, allow_unicode=True), end="")
