"""Transcribe bluepaun/amd-strix-halo-context-bench's Qwen3.5 rows (llama-server on a Strix Halo 128 GB, ROCm) into
benchmarks/speed/measurements/lcpp-bluepaun-strix-halo-context.yaml (printed to stdout).

    python benchmarks/speed/measurements/transcribe/lcpp_bluepaun_strix_context.py [MIRROR] \
        > benchmarks/speed/measurements/lcpp-bluepaun-strix-halo-context.yaml

MIRROR: a git directory of github.com/bluepaun/amd-strix-halo-context-bench holding commit 55abbce (default: the
project's fetch-tool mirror). Every row of benchmark_results.csv whose model is a Qwen3.5 model is written, one record
per row; the other models of the file are not Qwen3.5/3.6 and are left out."""

import csv
import io
import sys

import yaml
from _pinned import show  # the pinned source, read from its mirror (_pinned.py)

MIRROR = sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/bluepaun+amd-strix-halo-context-bench/repo"
COMMIT = "55abbce5f3897a52002522fa2dda82bf087f2b87"
PATH = "benchmark_results.csv"
URL = f"https://github.com/bluepaun/amd-strix-halo-context-bench/blob/{COMMIT}/{PATH}"
text = show(MIRROR, COMMIT, PATH)
HEADER = text.splitlines()[0]
# file label -> (catalog model, qwenfit quant, note)
MODELS = {
    "Qwen3-5-122B-A10B-UD-Q4_K_XL": ("Qwen3.5-122B-A10B", "Q4_K_M", ""),
    "Qwen3-5-27B-UD-Q8_K_XL": ("Qwen3.5-27B", "Q8_0", ""),
    "Qwen3-5-27B-Claude-4-6-Opus-Reasoning-Distilled-v2-Q8_0": (
        "Qwen3.5-27B",
        "Q8_0",
        " A reasoning-distilled fine-tune of Qwen3.5-27B (its file name): the architecture and tensor shapes are the"
        " base model's (assumed).",
    ),
    "Qwen3-5-397B-A17B-UD-IQ1_M": ("Qwen3.5-397B-A17B", "IQ1_M", ""),
}
NOTES = (
    "llama-server /completion (SPEC.md: cache_prompt false, temperature 0, top_k 1, fixed seed, n_predict 128); decode ="
    " timings.predicted_per_second, prefill = timings.prompt_per_second. The prompt is filler text sized with /tokenize"
    " to context_k x 1024 tokens ('the actual evaluated token count may vary slightly'), read as the depth and the"
    " prefill length; 0K is 'a minimal or empty prompt baseline'. Runtime: distrobox with"
    " kyuz0/amd-strix-halo-toolboxes:rocm-7.2 (the llama.cpp build inside it is not stated); the server's KV type, flash"
    " attention and batch flags are not stated."
)
recs = []
for r in csv.DictReader(io.StringIO(text)):
    if r["model_name"] not in MODELS:
        continue
    model, quant, extra = MODELS[r["model_name"]]
    k = int(r["context_k"])
    ok = r["status"] == "ok"
    assert ok, r
    depth = k * 1024 if k else None
    line = ",".join(r[c] for c in HEADER.split(","))
    note = NOTES + extra
    if not k:
        note += " assumed_depth_tokens: 16 (0K: a minimal prompt; its length is not stated, so the prefill rate is listed)."
    recs.append(
        {
            "id": f"lcpp-bluepaun-strix-{r['model_name'].lower().replace('qwen3-5-', '35-')[:40]}-{k}k",
            "model": model,
            "model_family": None,
            "calibration_only": False,
            "quant_as_published": r["model_name"] + ".gguf (file label of the CSV)",
            "quant": quant,
            "engine": "llama.cpp",
            "engine_version": "kyuz0/amd-strix-halo-toolboxes:rocm-7.2 image (llama.cpp build not stated)",
            "backend": "rocm",
            "hardware": "AMD Strix Halo: Ryzen AI Max+ 395, Radeon 8060S (RDNA 3.5, gfx1151), 128 GB; kernel 6.19.8",
            "hardware_id": "strix-halo-128",
            "n_gpus": 1,
            "tp": 1,
            "interconnect": None,
            "host_ram": None,
            "offload": None,
            "kv_cache": None,
            "flash_attn": None,
            "ubatch": None,
            "threads": None,
            "date": r["test_date"][:10],
            "depth_tokens": depth,
            "decode_tokens": 128,
            "batch": 1,
            "mtp": None,
            "decode_tokens_per_s": float(r["decode_tps"]),
            "decode_total_tokens_per_s": None,
            "prefill_tokens_per_s": float(r["prefill_tps"]),
            "prefill_tokens": depth,
            "url": URL,
            "quote": f"{HEADER} | {line}",
            "notes": note,
        }
    )
doc = {
    "source": {
        "id": "lcpp-bluepaun-strix-halo-context",
        "url": "https://github.com/bluepaun/amd-strix-halo-context-bench",
        "kind": "repo",
        "author": "bluepaun (GitHub repository amd-strix-halo-context-bench: a llama-server context-length benchmark)",
        "date": "2026-03-22",
        "independent_of": [],
        "snapshot_commit": COMMIT,
        "notes": (
            "benchmark_results.csv at the pinned commit: every Qwen3.5 row (122B-A10B UD-Q4_K_XL 0-250K, 27B UD-Q8_K_XL and"
            " a 27B fine-tune at 0K, 397B-A17B UD-IQ1_M 0-150K). The runtime is kyuz0's ROCm toolbox image, the"
            " person and machine are bluepaun's own (not kyuz0's rows). Not transcribed: the file's other models"
            " (DeepSeek-R1-Llama-70B, EXAONE, Llama-4-Scout, Mistral-Small-4, Nemotron-3-Super, OmniCoder-9B,"
            " Qwen3-Coder-Next, gpt-oss-120b: not Qwen3.5/3.6). Generated by"
            " benchmarks/speed/measurements/transcribe/lcpp_bluepaun_strix_context.py."
        ),
    },
    "records": recs,
}
print(yaml.safe_dump(doc, sort_keys=False, width=120, allow_unicode=True), end="")
