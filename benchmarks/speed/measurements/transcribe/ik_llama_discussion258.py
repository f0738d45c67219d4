"""Transcribe two users' CPU-expert-offload runs from ik_llama.cpp discussion #258 ("Quick-start Guide coming
over from llama.cpp and ktransformers", archived in the repository's github-data/) into
benchmarks/speed/measurements/ (printed to stdout):

    python benchmarks/speed/measurements/transcribe/ik_llama_discussion258.py sousekd [MIRROR] \
        > benchmarks/speed/measurements/ikllama-d258-sousekd-epyc9355.yaml
    python benchmarks/speed/measurements/transcribe/ik_llama_discussion258.py cmoncure [MIRROR] \
        > benchmarks/speed/measurements/ikllama-d258-cmoncure-epyc9175f.yaml

MIRROR: a git directory of github.com/ikawrakow/ik_llama.cpp holding commit 8337e4cd (default: the project's
fetch-tool mirror, /work/.mirror/ikawrakow+ik_llama.cpp/repo). Every number is read from the thread's text;
the rows kept are the llama-sweep-bench runs with every routed expert on the CPU (`-ot exps=CPU`) and
nothing else overridden (runs that also put a layer's experts on the GPU are left out)."""

import re
import sys

import yaml
from _pinned import show  # the pinned source, read from its mirror (_pinned.py)

WHO = sys.argv[1]
MIRROR = sys.argv[2] if len(sys.argv) > 2 else "/work/.mirror/ikawrakow+ik_llama.cpp/repo"
COMMIT = "8337e4cd3861406fc04e0854b1409cd1b027fbc9"
PATH = "github-data/discussions/258 - Quick-start Guide coming over from llama.cpp and ktransformers_.md"
THREAD = "https://github.com/ikawrakow/ik_llama.cpp/discussions/258"
URL = (
    f"{THREAD} (archived: https://github.com/ikawrakow/ik_llama.cpp/blob/{COMMIT}/{PATH.replace(' ', '%20')})"
)
TEXT = show(MIRROR, COMMIT, PATH)
LINES = [ln[2:] if ln.startswith("> ") else ln.lstrip(">") for ln in TEXT.split("\n")]


def post(author: str, stamp: str) -> list[str]:
    """The lines of one reply, from its header to the next reply's."""
    head = f"**{author}** replied the **{stamp}**"
    start = next(i for i, ln in enumerate(LINES) if head in ln)
    end = next((i for i in range(start + 1, len(LINES)) if "replied the **" in LINES[i]), len(LINES))
    return LINES[start:end]


def block(lines: list[str], summary: str) -> list[str]:
    """The <details> block of one model inside a reply."""
    start = next(i for i, ln in enumerate(lines) if f"<summary>{summary}</summary>" in ln)
    end = next(i for i in range(start + 1, len(lines)) if "</details>" in lines[i])
    return lines[start:end]


def one(lines: list[str], pattern: str) -> str:
    hits = [ln.strip() for ln in lines if re.search(pattern, ln)]
    assert len(hits) == 1, (pattern, hits)
    return hits[0]


def row(lines: list[str], n_kv: int) -> tuple[str, list[str]]:
    """The sweep-bench table row at N_KV = n_kv: (the verbatim row, its cells)."""
    for ln in lines:
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[2] == str(n_kv) and cells[0].isdigit():
            return ln.strip(), cells
    raise AssertionError(n_kv)


BASE = {
    "model_family": "deepseek",
    "calibration_only": True,
    "engine": "ik_llama.cpp",
    "backend": "cuda",
    "n_gpus": 1,
    "tp": 1,
    "interconnect": None,
    "offload": "-ot exps=CPU (every routed expert in RAM)",
    "flash_attn": True,
    "batch": 1,
    "mtp": None,
    "decode_total_tokens_per_s": None,
    "prefill_tokens_per_s": None,
    "prefill_tokens": None,
    "url": URL,
}
HEADER = "| PP | TG | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s |"
NO_PP = (
    " Prefill not transcribed: row-interleaved (_R4, or repacked at load by -rtr) experts have no CUDA"
    " kernels, so they are"
    " computed on the CPU during prompt processing too (ikawrakow in this thread: \"Don't use row-interleaved"
    " quants (`*_R4` or `*_R8`). These don't have a CUDA implementation and will always get computed on the"
    ' CPU"), and ik_llama.cpp offloads RAM experts to the GPU only for batches of 32 x experts / active ='
    " 1024 tokens (ikawrakow, same thread): a prefill regime qwenfit's offload model does not describe."
)


def sousekd() -> dict:
    # 2025-06-27: RTX 4090 on PCIe 4.0, 30 threads, clang build 3772, BIOS "LLC as NUMA domain" disabled;
    # 2025-07-09: RTX 5090 on PCIe 5.0, 32 threads (system: "EPYC 9355 (32 cores) with 12x DDR5-6400")
    system = one(post("sousekd", "2025-07-10** at **11:01:17"), r"The system is an EPYC 9355")
    system = system.split(", and the latest")[0]
    tuned = post("sousekd", "2025-06-27** at **23:10:41")
    tuned_why = one(tuned, r'Disabled \*\*"LLC as NUMA domain')
    runs = [
        # (post, summary, id suffix, model, quant, quant published, GPU id, GPU text, threads, kv)
        (
            tuned,
            "ubergarm_DeepSeek-V3-0324-IQ2_K_R4",
            "4090-v3-iq2kr4",
            "DeepSeek-V3-0324",
            "IQ2_S",
            "IQ2_K_R4 (ubergarm/DeepSeek-V3-0324-GGUF)",
            "rtx-4090",
            "NVIDIA GeForce RTX 4090",
            30,
            "q8_0",
        ),
        (
            tuned,
            "ubergarm_DeepSeek-R1-0528-IQ4_KS_R4",
            "4090-r1-iq4ksr4",
            "DeepSeek-R1-0528",
            "IQ4_XS",
            "IQ4_KS_R4 (ubergarm/DeepSeek-R1-0528-GGUF)",
            "rtx-4090",
            "NVIDIA GeForce RTX 4090",
            30,
            "q8_0",
        ),
        (
            tuned,
            "ubergarm_DeepSeek-V3-0324-IQ4_K_R4",
            "4090-v3-iq4kr4",
            "DeepSeek-V3-0324",
            "IQ4_NL",
            "IQ4_K_R4 (ubergarm/DeepSeek-V3-0324-GGUF)",
            "rtx-4090",
            "NVIDIA GeForce RTX 4090",
            30,
            "q8_0",
        ),
        (
            tuned,
            "unsloth_DeepSeek-V3-0324-UD-Q4_K_XL",
            "4090-v3-udq4kxl",
            "DeepSeek-V3-0324",
            "Q4_K_M",
            "UD-Q4_K_XL (unsloth/DeepSeek-V3-0324-GGUF-UD), -rtr",
            "rtx-4090",
            "NVIDIA GeForce RTX 4090",
            30,
            "f16",
        ),
        (
            post("sousekd", "2025-07-09** at **07:12:18"),
            "ubergarm_DeepSeek-V3-0324-IQ2_K_R4",
            "5090-v3-iq2kr4",
            "DeepSeek-V3-0324",
            "IQ2_S",
            "IQ2_K_R4 (ubergarm/DeepSeek-V3-0324-GGUF)",
            "rtx-5090",
            "NVIDIA GeForce RTX 5090",
            32,
            "f16",
        ),
    ]
    recs = []
    for lines, summary, suffix, model, quant, published, gpu, gpu_text, threads, kv in runs:
        posted = "2025-07-09" if gpu == "rtx-5090" else "2025-06-27"
        b = block(lines, summary)
        ot = [ln.strip() for ln in b if re.match(r"\s*(-ot|--override-tensor) ", ln)]
        assert ot == ["-ot exps=CPU `"], ot
        assert one(b, r"--threads \d+").startswith(f"--threads {threads} ")
        assert one(b, r"^\s*-ctk ").startswith(f"-ctk {kv} ")
        text, cells = row(b, 0)
        quote = " ... ".join(
            [
                "-ot exps=CPU",
                f"--threads {threads}",
                f"-ctk {kv}",
                one(b, r"Device 0:"),
                one(b, r"model size"),
                *[ln.strip() for ln in b if re.search(r"llm_load_tensors: .*buffer size", ln)],
                one(b, r"^main: n_kv_max"),
                HEADER,
                text,
            ]
        )
        version = [ln.strip() for ln in lines if ln.strip().startswith("version: ")]
        recs.append(
            {
                "id": f"ikllama-d258-sousekd-{suffix}",
                "model": model,
                **{k: BASE[k] for k in ("model_family", "calibration_only")},
                "quant_as_published": published,
                "quant": quant,
                "engine": BASE["engine"],
                "engine_version": version[0].removeprefix("version: ") if version else None,
                "backend": BASE["backend"],
                "hardware": f"{gpu_text}, AMD EPYC 9355 32C (Zen 5), Windows",
                "hardware_id": gpu,
                **{k: BASE[k] for k in ("n_gpus", "tp", "interconnect")},
                "host_ram": f"{system} (12ch)",
                "offload": BASE["offload"],
                "kv_cache": kv,
                "flash_attn": BASE["flash_attn"],
                "ubatch": int(re.search(r"n_ubatch = (\d+)", one(b, r"^main: n_kv_max")).group(1)),  # type: ignore[union-attr]
                "threads": threads,
                "depth_tokens": 0,
                "decode_tokens": int(cells[1]),
                "batch": 1,
                "mtp": None,
                "decode_tokens_per_s": float(cells[6]),
                **{
                    k: BASE[k]
                    for k in ("decode_total_tokens_per_s", "prefill_tokens_per_s", "prefill_tokens")
                },
                "url": URL,
                "quote": quote,
                "notes": (
                    f"sweep-bench first row (N_KV 0), posted {posted}."
                    f" From 2025-06-27 on the author's runs follow this BIOS change: {tuned_why.strip()} The"
                    " 2025-06-24 runs before it (that option on: one NUMA node per CCD, a setting qwenfit"
                    " cannot be asked about) are not transcribed. Host RAM: the same author, 2025-07-10."
                    + NO_PP
                ),
            }
        )
    return {
        "source": {
            "id": "ikllama-d258-sousekd-epyc9355",
            "url": URL,
            "kind": "discussion",
            "author": "sousekd (ik_llama.cpp discussion #258)",
            "date": "2025-07-09",
            "independent_of": [],
            "notes": (
                "DeepSeek-V3/R1 (architecture without a qwenfit spec: features.ASSUMED_ARCH) with every"
                " routed expert in RAM on a 32-core, 12-channel EPYC: calibration rows for the host RAM /"
                " CPU-core / graph-split constants. Transcribed by benchmarks/speed/measurements/transcribe/"
                "ik_llama_discussion258.py from the repository's archive of the thread."
            ),
        },
        "records": recs,
    }


def cmoncure() -> dict:
    rig = one(post("cmoncure", "2025-05-13** at **01:48:14"), r"I've built a system with EPYC 9175F")
    ram = one(post("cmoncure", "2025-05-14** at **00:25:32"), r"Got my RAM configured at 4800")
    run = post("cmoncure", "2025-05-14** at **20:23:32")
    cmd = [one(run, p) for p in (r"I got GPU 1 online", r"^--threads 16", r"^--n-gpu-layers 99",
                                 r"^--override-tensor exps=CPU")]  # fmt: skip
    assert [ln for ln in run if ln.startswith("--override-tensor")] == ["--override-tensor exps=CPU \\"]
    gpu = one(run, r"CUDA0 buffer size")
    sweep = post("cmoncure", "2025-05-15** at **00:39:16")
    text, cells = row(sweep, 512)
    quote = " ... ".join([rig, ram, *cmd, gpu, HEADER, text])
    rec = {
        "id": "ikllama-d258-cmoncure-6000ada-v3-iq4kr4",
        "model": "DeepSeek-V3-0324",
        **{k: BASE[k] for k in ("model_family", "calibration_only")},
        "quant_as_published": "IQ4_K_R4 (ubergarm/DeepSeek-V3-0324-GGUF)",
        "quant": "IQ4_NL",
        "engine": BASE["engine"],
        "engine_version": None,
        "backend": BASE["backend"],
        "hardware": "NVIDIA RTX 6000 Ada Generation (one of two; 'I got GPU 1 online'), AMD EPYC 9175F 16C"
        " (Zen 5)",
        "hardware_id": "rtx-6000-ada",
        **{k: BASE[k] for k in ("n_gpus", "tp", "interconnect")},
        "host_ram": "768 GB DDR5-4800 (12ch assumed: the source gives no channel count)",
        "offload": BASE["offload"],
        "kv_cache": "f16",
        "flash_attn": BASE["flash_attn"],
        "ubatch": None,
        "threads": 16,
        "depth_tokens": 512,
        "decode_tokens": int(cells[1]),
        "batch": 1,
        "mtp": None,
        "decode_tokens_per_s": float(cells[6]),
        **{k: BASE[k] for k in ("decode_total_tokens_per_s", "prefill_tokens_per_s", "prefill_tokens")},
        "url": URL,
        "quote": quote,
        "notes": (
            "sweep-bench row at N_KV 512 (the first the post keeps: 'Here's the result with many rows"
            " removed'), posted 2025-05-15 in answer to ubergarm's suggested llama-sweep-bench command"
            " (-mla 3 -fa -ctk f16 -fmoe -amb 512 --threads 16 --threads-batch 24 --n-gpu-layers 99"
            " --override-tensor exps=CPU); threads, layers, override and the CUDA0 buffer are quoted from the"
            " author's own server run of the same file a day earlier. RAM speed: the 2025-05-14 post"
            " (4800 MT/s; 3600 before)."
            " assumed_file_gib: 386.183 (the same file, ubergarm/DeepSeek-V3-0324-IQ4_K_R4, loads as"
            " 'model size = 386.183 GiB (4.936 BPW)' in"
            " sousekd's log in this thread). 12 channels assumed: the EPYC 9175F has 12 DDR5 channels (AMD"
            " product page) and 768 GB is 12 x 64 GB." + NO_PP
        ),
    }
    return {
        "source": {
            "id": "ikllama-d258-cmoncure-epyc9175f",
            "url": URL,
            "kind": "discussion",
            "author": "cmoncure (ik_llama.cpp discussion #258)",
            "date": "2025-05-15",
            "independent_of": [],
            "notes": (
                "DeepSeek-V3-0324 (architecture without a qwenfit spec: features.ASSUMED_ARCH) with every"
                " routed expert in RAM on a 16-core EPYC 9175F (one core per CCD, like loftllc's host, but"
                " another owner and machine): a calibration row for the host RAM / CPU-core / graph-split"
                " constants."
                " The same author's issue ikawrakow/ik_llama.cpp#450 measured TG 12.5 -> 9.8 t/s on this"
                " machine between two builds (bisected to #435, a refactor of the CPU matmul code; the author"
                " later reports newer builds within 10 %): CPU-side code, not RAM alone, sets the rate there."
                " Transcribed by benchmarks/speed/measurements/transcribe/ik_llama_discussion258.py."
            ),
        },
        "records": [rec],
    }


doc = {"sousekd": sousekd, "cmoncure": cmoncure}[WHO]()
print(yaml.safe_dump(doc, sort_keys=False, width=120, allow_unicode=True), end="")
