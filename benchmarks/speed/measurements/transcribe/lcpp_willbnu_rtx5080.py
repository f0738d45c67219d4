"""Transcribe willbnu/qwen35-rtx5080-guide's llama-server benchmark artifacts (RTX 5080 16GB, Windows, llama.cpp
CUDA) into benchmarks/speed/measurements/lcpp-willbnu-rtx5080.yaml (printed to stdout).

    python benchmarks/speed/measurements/transcribe/lcpp_willbnu_rtx5080.py [MIRROR] \
        > benchmarks/speed/measurements/lcpp-willbnu-rtx5080.yaml

MIRROR: a git directory of github.com/willbnu/qwen35-rtx5080-guide holding commit 37b2175 (default: the project's
fetch-tool mirror, /work/.mirror/willbnu+qwen35-rtx5080-guide/repo).

Every JSON file in results/ is read. Files with a ``runs`` list (2026-03-07) give one record per run and prompt
case (reasoning / coding / vision: the case's own gen_tps, prompt_tps, prompt_tokens and completion_tokens, the
llama-server timings the harness stores); files with a ``tests`` dict (2026-03-04, tests/simple_benchmark.py) give
one record per file from the file's own ``summary`` (avg_gen_tps / avg_prompt_tps over its 15 requests)."""

import json
import sys

import yaml
import _pinned  # the pinned source, read from its mirror (_pinned.py)
from _record import record  # one record in the corpus's field order (_record.py)

MIRROR = sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/willbnu+qwen35-rtx5080-guide/repo"
COMMIT = "37b21759f5d95632409df3a2b56ca5c774389bd8"
REPO = "https://github.com/willbnu/qwen35-rtx5080-guide"


def show(path: str) -> str:
    return _pinned.show(MIRROR, COMMIT, path)


FILES = sorted(
    p
    for p in _pinned.names(MIRROR, COMMIT, "results/")
    if p.endswith(".json")
)

# model file (basename) -> (catalog model, qwenfit quant)
MODEL_FILES = {
    "Qwen3.5-9B-UD-Q4_K_XL.gguf": ("Qwen3.5-9B", "Q4_K_M"),
    "Qwen_Qwen3.5-9B-Q6_K.gguf": ("Qwen3.5-9B", "Q6_K"),
    "Qwen_Qwen3.5-9B-Q8_0.gguf": ("Qwen3.5-9B", "Q8_0"),
    "Qwen3.5-35B-A3B-Q3_K_S.gguf": ("Qwen3.5-35B-A3B", "Q3_K_S"),
    "Qwen3.5-27B-IQ4_XS.gguf": ("Qwen3.5-27B", "IQ4_XS"),
}
# runs whose entry names no model file: the file the repository's own text gives for that run key
KEY_MODEL = {
    "35b_256k_best": (
        "Qwen3.5-35B-A3B-Q3_K_S.gguf",
        "assumed_model_file: the run names no model file; its key is 35b_256k_best, results/BENCHMARK_RESULTS.md"
        " lists the file as 'Best 35B long-context comparison' and the repository's 35B file is Q3_K_S"
        " ('Strongest overall model on this machine remains `35B Q3_K_S`'; the 35b_best runs load"
        " Qwen3.5-35B-A3B-Q3_K_S.gguf)",
    ),
    "9b_256k_bestweights": (
        "Qwen_Qwen3.5-9B-Q8_0.gguf",
        "assumed_model_file: the run names no model file; results/BENCHMARK_RESULTS.md calls this file the 35B"
        " 'comparison against strongest-weight 9B' and 'Strongest-weight 9B tested: `Qwen_Qwen3.5-9B-Q8_0 + q8_0 +"
        " 256K`'",
    ),
}
# tests-format files (port, no model in the file): the model the repository's text gives for the file
TESTS_MODEL = {
    "results/benchmark_35b_128k_vis_final_20260304.json": (
        "Qwen3.5-35B-A3B-Q3_K_S.gguf",
        "assumed_model_file: the file names only port 8002; results/BENCHMARK_RESULTS.md lists it under '35B"
        " Artifacts' (context 131072, text prompts, mmproj loaded) and docs/PERFORMANCE_MATRIX.md (2026-03-05)"
        " gives the 35B-A3B as Q3_K_S, 41/41 layers on the GPU",
    ),
    "results/benchmark_35b_152k_vis_final_20260304.json": (
        "Qwen3.5-35B-A3B-Q3_K_S.gguf",
        "assumed_model_file: the file names only port 8002; results/BENCHMARK_RESULTS.md lists it under '35B"
        " Artifacts' (context 155904) and docs/PERFORMANCE_MATRIX.md gives '35B-A3B Q3_K_S ... 152K ~125 t/s"
        " ~538 t/s'",
    ),
    # the 9B port-8003 files are 'from different tuning states' (BENCHMARK_RESULTS.md): model file not known
    "results/benchmark_port8003_20260304_193218.json": (None, ""),
    "results/benchmark_port8003_20260304_195811.json": (None, ""),
}
HARDWARE = (
    "NVIDIA GeForce RTX 5080 16GB (Windows; llama.cpp built from source for SM120 with CUDA 12.6+, "
    "-DGGML_CUDA_FA_ALL_QUANTS=ON -DGGML_CUDA_F16=ON; config/servers.yaml: 96 GB host RAM)"
)
ENGINE_VERSION = "build-sm120 (native SM120 build from source; commit not stated)"
COMMON_NOTES = (
    "llama-server, --parallel 1, every layer on the GPU (-ngl 99), mmproj loaded, thinking disabled; decode and"
    " prompt rates are the server's timings (predicted_per_second / prompt_per_second) as the harness stores them."
    " Flash attention on, -b 1024 -ub 256: the repository's config/servers.yaml for these servers (assumed for the"
    " run; the artifact does not record its flags)."
)


def base(rid: str, model: str, quant: str | None, published: str, ctx: int, kv: str, date: str) -> dict:
    return {
        "id": rid,
        "model": model,
        "quant_as_published": published,
        "quant": quant,
        "engine": "llama.cpp",
        "engine_version": ENGINE_VERSION,
        "backend": "cuda",
        "hardware": HARDWARE,
        "hardware_id": "rtx-5080",
        "kv_cache": kv,
        "flash_attn": True,
        "ubatch": 256,
        "date": date,
    }


recs = []
for path in FILES:
    doc = json.loads(show(path))
    url = f"{REPO}/blob/{COMMIT}/{path}"
    name = path.split("/")[-1]
    date = doc["timestamp"][:10]
    if "runs" in doc:
        for run in doc["runs"]:
            key = run["key"]
            if "model" in run:
                mfile = run["model"].replace("\\", "/").split("/")[-1]
                assumed = ""
            else:
                mfile, assumed = KEY_MODEL[key]
            model, quant = MODEL_FILES[mfile]
            for case, c in run["cases"].items():
                rec = base(
                    f"lcpp-willbnu-5080-{date[5:]}-{doc['timestamp'][11:16].replace(':', '')}-{key.replace('_', '-')}-{case}",
                    model, quant, mfile, run["context"], run["cache"], date,
                )  # fmt: skip
                vision = case == "vision"
                ptok = c.get("prompt_tokens")
                rec.update(
                    {
                        "depth_tokens": ptok,
                        "decode_tokens": c["completion_tokens"],
                        "batch": 1,
                        "mtp": None,
                        "decode_tokens_per_s": c["gen_tps"],
                        "decode_total_tokens_per_s": None,
                        "prefill_tokens_per_s": None if vision else c["prompt_tps"],
                        "prefill_tokens": None if vision else ptok,
                        "url": url,
                        "quote": (
                            f"{name} runs[key={key}] (context {run['context']}, cache {run['cache']}) cases.{case}: "
                            + ", ".join(f"{k} {c[k]}" for k in c if k not in ("content_preview", "preview"))
                        ),
                    }
                )
                notes = [COMMON_NOTES]
                if ptok is None:
                    notes.append("assumed_depth_tokens: 50 (prompt_tokens not stored in this file; the same"
                                 " reasoning/coding/vision prompts count 37-53 tokens in the other 2026-03-07 files)")  # fmt: skip
                if vision:
                    notes.append(
                        f"vision case: the prompt carries an image, so its prompt rate ({c['prompt_tps']} tok/s)"
                        " includes the vision encoder and is not transcribed as a text prefill figure"
                    )
                elif ptok is None:
                    rec["prefill_tokens_per_s"] = c["prompt_tps"]
                if assumed:
                    notes.append(assumed)
                rec["notes"] = " ".join(notes)
                recs.append(rec)
    else:
        mfile, assumed = TESTS_MODEL[path]
        model, quant = MODEL_FILES[mfile] if mfile else ("Qwen3.5-9B", None)
        s = doc["summary"]
        ctx = {"results/benchmark_35b_128k_vis_final_20260304.json": 131072,
               "results/benchmark_35b_152k_vis_final_20260304.json": 155904}.get(path)  # fmt: skip
        rec = base(
            f"lcpp-willbnu-5080-{date[5:]}-{doc['timestamp'][11:16].replace(':', '')}-port{doc['port']}",
            model, quant, mfile or "not stated (port 8003, the 9B server)", ctx,
            "iq4_nl" if mfile else None, date,
        )  # fmt: skip
        rec.update(
            {
                "depth_tokens": None,
                "decode_tokens": None,
                "batch": 1,
                "mtp": None,
                "decode_tokens_per_s": s["avg_gen_tps"],
                "decode_total_tokens_per_s": None,
                "prefill_tokens_per_s": s["avg_prompt_tps"],
                "prefill_tokens": None,
                "url": url,
                "quote": f"{name} (port {doc['port']}{f', context {ctx}' if ctx else ''}) summary: "
                + ", ".join(f"{k} {v}" for k, v in s.items()),
            }
        )
        notes = [
            COMMON_NOTES,
            f"Mean over the file's {s['total_tests']} requests (simple / coding / reasoning prompts, 3 runs each:"
            " 'What is 2+2?', 'Say hello', 'Write a Python function to calculate fibonacci...'); mean generated"
            f" tokens {s['avg_tokens']}; prompt lengths not stored. assumed_depth_tokens: 20 (one-line prompts).",
        ]
        if mfile:
            notes.append(assumed + "; KV iq4_nl from config/servers.yaml's 35B server (assumed)")
        else:
            notes.append(
                "Model file, KV type and context not recorded: results/BENCHMARK_RESULTS.md says the two port-8003"
                " 9B files are 'from different tuning states' ('Do not collapse these into a single headline"
                " number'), so the quant is left null (listed, not scored)."
            )
        rec["notes"] = " ".join(notes)
        recs.append(rec)

doc = {
    "source": {
        "id": "lcpp-willbnu-rtx5080",
        "url": REPO,
        "kind": "repo",
        "author": "willbnu (William Finger)",
        "date": "2026-03-07",
        "independent_of": [],
        "snapshot_commit": COMMIT,
        "notes": (
            "A Windows RTX 5080 16GB guide for Qwen3.5 9B / 27B / 35B-A3B on llama-server. Every JSON artifact in"
            " results/ at the pinned commit is transcribed (the repository says to use them 'as the source of truth"
            " when a narrative summary and a raw artifact disagree'); the approximate figures of its prose docs"
            " (~125 t/s etc.) are not. Generated by benchmarks/speed/measurements/transcribe/lcpp_willbnu_rtx5080.py."
        ),
    },
    "records": [record(**r) for r in recs],
}
print(yaml.safe_dump(doc, sort_keys=False, width=120, allow_unicode=True), end="")
