"""Write benchmarks/speed/measurements/lcuda-pr22587-neroued-rtx5090.yaml (printed to stdout) from the end-to-end
llama-bench table of ggml-org/llama.cpp PR #22587 ("CUDA: row-per-warp kernel for GATED_DELTA_NET", Neroued,
2026-05-01), as stored in the search tool's issues corpus (the PR description; the stored copy ends inside the
tg256 row, after its 'this PR' mean).

    python benchmarks/speed/measurements/transcribe/lcuda_pr22587_neroued.py \
        > benchmarks/speed/measurements/lcuda-pr22587-neroued-rtx5090.yaml

TABLE holds the rows verbatim. llama-bench runs each ppN and tgN test on its own (empty cache), so every cell is
one record: ppN -> a prefill record (N tokens from depth 0), tgN -> a decode record (N tokens from depth 0), one
per build (master / this PR).
"""

import yaml
from _record import record  # one record in the corpus's field order (_record.py)

URL = "https://github.com/ggml-org/llama.cpp/pull/22587"
HEAD = "#### Qwen3.5-9B-BF16 | Test | master (t/s) | this PR (t/s) | Δ% |"
TABLE = """\
| pp128     | 5785.0 ± 620.9 | 6031.7 ± 636.0 | +4.3% |
| pp256     | 7639.3 ±  455.8 | 8170.6 ±  386.3 | +7.0% |
| pp512     | 8542.8 ±  237.5 | 8993.8 ±  293.1 | +5.3% |
| pp1024    | 8214.0 ±   52.1 | 8585.7 ±   21.1 | +4.5% |
| pp2048    | 8341.0 ±   43.0 | 8635.0 ±   33.5 | +3.5% |
| tg128     |   82.5 ±    0.1 |   82.1 ±    0.6 | -0.5% |
| tg256     |   82.6 ±    0.3 |   82.9 ±"""
BUILDS = {
    "master": "master as of the PR (2026-05-01; commit not stated)",
    "pr": "PR #22587 branch as of 2026-05-01 (commit not stated; row-per-warp GATED_DELTA_NET kernel)",
}
NOTES = (
    "llama-bench -ngl 99 -r 10 --delay 5 ('End-to-end (llama-bench, `-ngl 99 -r 10 --delay 5`)'), 'All numbers"
    " measured on RTX 5090'; no other flag stated: llama-bench defaults (f16 KV, n_ubatch 512, n_batch 2048; flash"
    " attention at the tool's default). Model file: Qwen3.5-9B-BF16 (the table heading; a BF16 GGUF)."
)

records = []
for line in TABLE.splitlines():
    cells = [c.strip() for c in line.strip("|").split("|")]
    test = cells[0]
    n = int(test[2:])
    for col, build in ((1, "master"), (2, "pr")):
        cell = cells[col]
        mean = float(cell.split("±")[0])
        pp = test.startswith("pp")
        quote = f"{HEAD} {line.strip()}"
        extra = ""
        if test == "tg256":
            extra = (
                " The stored copy of the PR description ends inside this row: the 'this PR' cell's mean (82.9) is"
                " complete, its spread and the Δ% are cut off."
            )
        records.append(record(
            id=f"lcuda-pr22587-5090-q35-9b-bf16-{build}-{test}", model="Qwen3.5-9B",
            quant_as_published="BF16 (Qwen3.5-9B-BF16 GGUF)", quant="BF16", engine="llama.cpp",
            engine_version=BUILDS[build], backend="cuda", hardware="RTX 5090 ('All numbers measured on RTX 5090')",
            hardware_id="rtx-5090", kv_cache="f16", ubatch=512, depth_tokens=0, decode_tokens=None if pp else n,
            mtp=None, decode_tokens_per_s=None if pp else mean, prefill_tokens_per_s=mean if pp else None,
            prefill_tokens=n if pp else None, url=URL, quote=quote,
            notes=NOTES + f" Column: {'master' if build == 'master' else 'this PR'}." + extra,
        ))  # fmt: skip

source = {
    "id": "lcuda-pr22587-neroued-rtx5090",
    "url": URL,
    "kind": "pr",
    "author": "Neroued (ggml-org/llama.cpp PR #22587, 'CUDA: row-per-warp kernel for GATED_DELTA_NET')",
    "date": "2026-05-01",
    "independent_of": [],
    "notes": (
        "The PR description as stored in the search tool's issues corpus, written by"
        " transcribe/lcuda_pr22587_neroued.py. Its kernel microbenchmark table (GATED_DELTA_NET op time in us by"
        " n_tokens) is not a decode / prefill figure and is not transcribed; anything after the tg256 row (cut off"
        " in the stored copy) was not seen. Both builds' commits are unstated ('master' vs 'this PR')."
    ),
}
print(
    yaml.safe_dump({"source": source, "records": records}, sort_keys=False, width=120, allow_unicode=True),
    end="",
)
