"""Transcribe jiegec/kb docs/software/llm_local_serving.md (Jiege Chen's notes, "LLM 本地部署") into
benchmarks/speed/measurements/lcuda-jiegec-kb-rtx4090.yaml (printed to stdout).

    python benchmarks/speed/measurements/transcribe/lcuda_jiegec_kb.py [MIRROR] \
        > benchmarks/speed/measurements/lcuda-jiegec-kb-rtx4090.yaml

MIRROR: a git directory of github.com/jiegec/kb holding commit 23addc7 (default: the project's fetch-tool mirror,
/work/.mirror/jiegec+kb/repo). 23addc7 is the last commit touching the file (the repository's HEAD, 559be7c,
carries the same text).

Every Qwen3.5 / Qwen3.6 figure of the file's performance sections ("推理性能测试") is read:
* llama-bench tables (RTX 4090 CUDA, Apple M4 Metal): one record per model file and depth, the ppN and tgN rows of
  the same ``@ dD`` paired (llama-bench measures each at KV depth D: depth_tokens = D);
* llama-benchy tables of llama-server and vLLM on the RTX 4090 (``--no-cache --depth 0 8192 16384 32768``): the
  prompt of a ``pp2048 @ dD`` row is D + 2048 tokens sent with an empty cache (est_ppt x t/s = D + 2048 on every
  row, checked below), so each depth gives a prefill record (D + 2048 tokens from depth 0) and a decode record
  (tg32 after the D + 2048-token prompt);
* the mlx_lm.benchmark run (Apple M4): its printed averages.
The SGLang 0.5.10 tables are quoted in the source notes, not written as records: qwenfit has no SGLang engine and
the fit has no SGLang kernel cell (an earlier pass skipped SGLang-only sources for the same reason).
"""

import copy
import re
import sys

import yaml
from _pinned import show  # the pinned source, read from its mirror (_pinned.py)
from _record import record  # one record in the corpus's field order (_record.py)

MIRROR = sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/jiegec+kb/repo"
COMMIT = "23addc71733ac6976d6efbddd1c52e8e557af87e"
PATH = "docs/software/llm_local_serving.md"
URL = f"https://github.com/jiegec/kb/blob/{COMMIT}/{PATH}"

TEXT = show(MIRROR, COMMIT, PATH)

# GGUF / checkpoint -> (catalog model, quant_as_published, qwenfit quant)
FILES = {
    "Qwen3.6-35B-A3B-UD-Q3_K_XL.gguf": ("Qwen3.6-35B-A3B", "UD-Q3_K_XL", "Q3_K_M"),
    "Qwen3.6-35B-A3B-UD-Q4_K_XL.gguf": ("Qwen3.6-35B-A3B", "UD-Q4_K_XL", "Q4_K_M"),
    "Qwen3.5-9B-Q8_0.gguf": ("Qwen3.5-9B", "Q8_0", "Q8_0"),
    "Qwen3.5-27B-UD-Q4_K_XL.gguf": ("Qwen3.5-27B", "UD-Q4_K_XL", "Q4_K_M"),
    "Qwen3.5-35B-A3B-UD-Q3_K_XL.gguf": ("Qwen3.5-35B-A3B", "UD-Q3_K_XL", "Q3_K_M"),
    "Qwen3.5-35B-A3B-UD-Q4_K_XL.gguf": ("Qwen3.5-35B-A3B", "UD-Q4_K_XL", "Q4_K_M"),
    "Qwen3.5-4B-Q8_0.gguf": ("Qwen3.5-4B", "Q8_0", "Q8_0"),
    "Qwen3.5-9B-UD-Q4_K_XL.gguf": ("Qwen3.5-9B", "UD-Q4_K_XL", "Q4_K_M"),
    "Qwen3.5-4B-UD-Q4_K_XL.gguf": ("Qwen3.5-4B", "UD-Q4_K_XL", "Q4_K_M"),
}
SHORT = {"Qwen3.6-35B-A3B": "q36-35b", "Qwen3.5-35B-A3B": "q35-35b", "Qwen3.5-27B": "q35-27b",
         "Qwen3.5-9B": "q35-9b", "Qwen3.5-4B": "q35-4b"}  # fmt: skip
RTX4090 = "NVIDIA GeForce RTX 4090, compute capability 8.9, VMM: yes, VRAM: 24210 MiB (ggml_cuda_init)"
M4 = "Apple M4 (the section heading 'Apple M4:'; memory size not stated)"
M4_NOTE = (
    " Hardware: 'Apple M4:' without its memory size: m4-16 assumed (the catalog's base-M4 entries differ in"
    " capacity, not bandwidth; a 5.55 GiB / 2.70 GiB model fits all of them)."
)


def mean(cell: str) -> float:
    return float(cell.split("±")[0].strip())


def base(rec_id: str, model: str, qpub: str, quant: str) -> dict:
    return {"id": rec_id, "model": model, "quant_as_published": qpub, "quant": quant}


def tail(rec: dict, **kw) -> dict:
    out = dict(rec)
    out.update(copy.deepcopy(kw))  # no shared dicts (YAML anchors)
    return out


records: list[dict] = []
lines = TEXT.splitlines()
section = ""  # "4090" or "m4"
model_file = ""
server = ""  # llama-server build, vllm / sglang version
engine = ""
mtp = False
table: list[list[str]] = []
pending_bench: list[list[str]] = []


def flush_llama_bench(build: str) -> None:
    """one record per depth from the pp / tg rows of one llama-bench run"""
    model, qpub, quant = FILES[model_file]
    rows = {r[-2].strip(): r for r in pending_bench}
    depths = []
    for test in rows:
        m = re.fullmatch(r"pp(\d+)(?: @ d(\d+))?", test)
        if m:
            depths.append((int(m.group(1)), int(m.group(2) or 0), test))
    num, sha = re.fullmatch(r"(\w+) \((\d+)\)", build).groups()
    for ptok, d, pp_test in depths:
        tg_test = next(t for t in rows if re.fullmatch(rf"tg\d+{' @ d' + str(d) if d else ''}", t))
        ntg = int(re.match(r"tg(\d+)", tg_test).group(1))
        pp_row, tg_row = rows[pp_test], rows[tg_test]
        backend = pp_row[3].strip()
        gpu = section == "4090"
        rec = base(
            f"lcuda-jiegec-{'4090' if gpu else 'm4'}-{SHORT[model]}-{qpub.lower().replace('_', '')}-lbench-d{d}",
            model,
            f"{qpub} (unsloth GGUF {model_file}; llama-bench: {pp_row[0].strip()}, {pp_row[1].strip()})",
            quant,
        )
        quote = f"{pp_test} | {pp_row[-1].strip()} ; {tg_test} | {tg_row[-1].strip()} ; build: {build}"
        notes = (
            f"llama-bench -p {ptok} -n {ntg} -d ... --model {model_file} ({'ngl 99, ' if gpu else 'threads 4, '}"
            f"backend {backend}); no other flag: llama-bench defaults (f16 KV, n_ubatch 512, n_batch 2048; flash"
            " attention at the tool's default, not shown in the table)."
        )
        records.append(tail(
            rec, engine="llama.cpp", engine_version=f"b{sha} ({num})", backend="cuda" if gpu else "metal",
            hardware=RTX4090 if gpu else M4, hardware_id="rtx-4090" if gpu else "m4-16", kv_cache="f16",
            ubatch=512, threads=None if gpu else 4, depth_tokens=d, decode_tokens=ntg, mtp=None,
            decode_tokens_per_s=mean(tg_row[-1]), prefill_tokens_per_s=mean(pp_row[-1]), prefill_tokens=ptok,
            url=URL, quote=quote,
            notes=notes + ("" if gpu else M4_NOTE),
        ))  # fmt: skip


def flush_benchy() -> None:
    """llama-benchy: a prefill record (D + 2048 tokens, empty cache) and a decode record per depth"""
    rows = {r[2].strip(): r for r in table}
    if engine == "sglang":
        return
    for test, row in rows.items():
        m = re.fullmatch(r"pp(\d+)(?: @ d(\d+))?", test)
        if not m:
            continue
        ptok, d = int(m.group(1)), int(m.group(2) or 0)
        tg_test = next(t for t in rows if re.fullmatch(rf"tg\d+{' @ d' + str(d) if d else ''}", t))
        tg = rows[tg_test]
        ntg = int(re.match(r"tg(\d+)", tg_test).group(1))
        pps, est_ppt = mean(row[3]), mean(row[6])
        total = d + ptok
        # the reading checked where it matters (d > 0; at depth 0 the prompt is the test prompt either way, and
        # a mean of noisy per-run rates need not equal tokens / mean time)
        assert d == 0 or abs(pps * est_ppt / 1000 - total) / total < 0.05, (test, pps, est_ppt)
        if engine == "llama.cpp":
            model, qpub, quant = FILES[model_file]
            qtag = qpub.lower().replace("_", "")
            qtext = f"{qpub} (unsloth GGUF {model_file})"
            eng = {"engine": "llama.cpp", "engine_version": server, "backend": "cuda", "kv_cache": "f16",
                   "flash_attn": None, "ubatch": None, "mtp": None}  # fmt: skip
            how = (
                f"llama-server --model {model_file} --jinja --ctx-size 262144 (defaults otherwise: f16 KV,"
                " ubatch 512, one slot)"
            )
        else:
            model, qpub, quant, qtag = "Qwen3.5-4B", "Qwen/Qwen3.5-4B (BF16 safetensors)", "bf16", "bf16"
            qtext = qpub
            eng = {"engine": "vllm", "engine_version": server, "backend": "cuda", "kv_cache": None,
                   "flash_attn": None, "ubatch": None,
                   "mtp": {"draft_tokens": 1, "acceptance": None} if mtp else None}  # fmt: skip
            how = (
                "vllm serve Qwen/Qwen3.5-4B --reasoning-parser qwen3"
                + (" --speculative-config '{\"method\": \"mtp\", \"num_speculative_tokens\": 1}' (acceptance"
                   " not published)" if mtp else " (no speculative decoding)")
            )  # fmt: skip
        tag = f"{'vllm' + ('-mtp1' if mtp else '') if engine == 'vllm' else 'lserver'}"
        rid = f"lcuda-jiegec-4090-{SHORT[model]}-{qtag}-{tag}-d{d}"
        common = {"hardware": RTX4090, "hardware_id": "rtx-4090"}
        bench = f"uvx llama-benchy@v0.3.5 --no-cache --depth 0 8192 16384 32768 --runs 5 against {how}."
        prompt = (
            f" assumed_prefill_from_empty_cache: the row's prompt is the {d}-token depth plus the {ptok}-token"
            f" test prompt sent with --no-cache, {total} tokens prefilled from an empty cache: est_ppt"
            f" {row[6].strip()} ms x {row[3].strip()} t/s = {pps * est_ppt / 1000:.0f} tokens"
            + (
                " (the depth-0 row's spread is large: a mean of per-run rates is not tokens / mean time)."
                if not d
                else "."
            )
        )
        pp_quote = f"{test} | {row[3].strip()} | est_ppt (ms) {row[6].strip()}"
        tg_quote = f"{tg_test} | {tg[3].strip()} | peak t/s {tg[4].strip()}"
        recp = base(rid + "-pp", model, qtext, quant)
        records.append(tail(
            recp, **eng, **common, depth_tokens=0, decode_tokens=None, decode_tokens_per_s=None,
            prefill_tokens_per_s=pps, prefill_tokens=total, url=URL,
            quote=pp_quote, notes=bench + prompt + " Prefill record of the pair (the decode figure is "
            + rid + "-tg).",
        ))  # fmt: skip
        recd = base(rid + "-tg", model, qtext, quant)
        records.append(tail(
            recd, **eng, **common, depth_tokens=total, decode_tokens=ntg, decode_tokens_per_s=mean(tg[3]),
            url=URL,
            quote=tg_quote, notes=bench + prompt + " Decode record of the pair: tg" + str(ntg) + " after that"
            " prompt, depth_tokens = " + str(total) + "; t/s is llama-benchy's generation rate (peak t/s not"
            " used).",
        ))  # fmt: skip



in_perf = False
mlx_quote = ""
for i, line in enumerate(lines):
    s = line.strip()
    if s.startswith("### "):
        in_perf = "推理性能测试" in s
    if s == "NVIDIA GeForce RTX 4090:":
        section = "4090"
    elif s == "Apple M4:":
        section = "m4"
    if not in_perf and section != "m4":
        continue
    if s.startswith("## ") and "模型能力" in s:
        break
    m = re.search(r"--model (\S+\.gguf)", s)
    if m:
        model_file = m.group(1).split("/")[-1]
    if s.startswith("$ llama-bench"):
        pending_bench = []
    elif s.startswith("| qwen35"):
        pending_bench.append(s.strip("|").split("|"))
    elif s.startswith("build: ") and pending_bench:
        flush_llama_bench(s[len("build: ") :])
        pending_bench = []
    m = re.match(r"# llama-server version: (\d+) \((\w+)\)", s)
    if m:
        server, engine = f"b{m.group(1)} ({m.group(2)})", "llama.cpp"
    m = re.match(r"# (sglang|vllm) ([\d.]+)", s)
    if m:
        engine, server = m.group(1), f"{m.group(1)} {m.group(2)}"
    if s == "# w/o mtp":
        mtp = False
    elif s == "# w/ mtp":
        mtp = True
    if s.startswith("$ uvx llama-benchy"):
        table = []
    elif s.startswith("| Qwen/"):
        table.append(s.split("|"))
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if not nxt.startswith("| Qwen/"):
            flush_benchy()
    if s.startswith("# mlx-lm "):
        mlx_version = s[2:]
    m = re.match(r"Averages: prompt_tps=([\d.]+), generation_tps=([\d.]+)", s)
    if m:
        model, quant = "Qwen3.5-4B", "mlx-4bit"
        records.append({
            "id": "lcuda-jiegec-m4-q35-4b-mlx4bit-mlxlm-d0", "model": model,
            "quant_as_published": "mlx-community/Qwen3.5-4B-MLX-4bit", "quant": quant, "engine": "mlx",
            "engine_version": mlx_version, "backend": "mlx", "hardware": M4, "hardware_id": "m4-16",
            "depth_tokens": 0, "decode_tokens": 64, "mtp": None, "decode_tokens_per_s": float(m.group(2)),
            "prefill_tokens_per_s": float(m.group(1)), "prefill_tokens": 1024, "url": URL, "quote": s,
            "notes": "python3 -m mlx_lm.benchmark --model ./mlx-community/Qwen3.5-4B-MLX-4bit -p 1024 -g 64 ('Timing"
            " with prompt_tokens=1024, generation_tokens=64, batch_size=1'); the averages of its 5 trials as"
            " printed." + M4_NOTE,
        })  # fmt: skip

records = [record(**r) for r in records]
source = {
    "id": "lcuda-jiegec-kb-rtx4090",
    "url": URL,
    "kind": "repo",
    "author": "Jiege Chen (jiegec; GitHub repository kb, notes page 'LLM 本地部署' docs/software/llm_local_serving.md)",
    "date": "2026-04-17",
    "independent_of": [],
    "notes": (
        "One person's notes page, read at 23addc7 (2026-04-17, the last commit to the file; the repository HEAD"
        " 559be7c has the same text), written by transcribe/lcuda_jiegec_kb.py. Earlier versions of the page (44"
        " commits since 2026-02-11) published older builds' figures for the same runs; the author replaced them"
        " ('Refresh llama cpp perf'), only the pinned version is transcribed. Not transcribed: the GLM-4.7-Flash"
        " rows of earlier versions (no longer on the page) and the SGLang 0.5.10 llama-benchy tables of"
        " Qwen/Qwen3.5-4B on the RTX 4090 (qwenfit has no SGLang engine and the fit no SGLang cell), quoted here:"
        " w/o MTP pp2048 9296.18 / 13406.82 / 13279.58 / 12285.20 t/s and tg32 92.16 / 90.15 / 87.97 / 83.11 t/s"
        " at depth 0 / 8192 / 16384 / 32768; with EAGLE (MTP) --speculative-num-steps 3"
        " --speculative-num-draft-tokens 4: pp2048 7835.05 / 11527.59 / 11610.54 / 10953.04, tg32 53.04 / 51.45 /"
        " 50.78 / 48.48."
    ),
}
doc = {"source": source, "records": records}
print(yaml.safe_dump(doc, sort_keys=False, width=120, allow_unicode=True), end="")
