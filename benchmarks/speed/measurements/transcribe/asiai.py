"""Transcribe druide67/asiai's published Qwen3.5 / Qwen3.6 decode figures (Apple silicon) into
benchmarks/speed/measurements/edata-asiai-druide67-apple.yaml (printed to stdout):

    python benchmarks/speed/measurements/transcribe/asiai.py [MIRROR] \
        > benchmarks/speed/measurements/edata-asiai-druide67-apple.yaml

MIRROR: a git directory of github.com/druide67/asiai holding commit 607fe80 (default: the project's fetch-tool
mirror, /work/.mirror/druide67+asiai/repo). The figures are typed here from the four documents below; every
record's quote is the document's own table line, read from the mirror, and the script stops if a typed figure is
not in its quote.
"""

# ruff: noqa: E501  (table rows and quotes read better on one line)

import sys

import yaml
from _pinned import show  # the pinned source, read from its mirror (_pinned.py)
from _record import record  # one record in the corpus's field order (_record.py)

MIRROR = sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/druide67+asiai/repo"
COMMIT = "607fe808838f8dab18b8b5d9cd44827238ebd29a"
BLOB = f"https://github.com/druide67/asiai/blob/{COMMIT}/"
AGENTIC = "docs/agentic-benchmarks.md"
PANEL = "docs/research/comparison-panel/2026-05-apple-silicon-agentic-inference-panel.md"
AGENTWORLD = "docs/research/comparison-panel/2026-06-qwen-agentworld-35b.md"
VERSUS = "docs/ollama-vs-lmstudio.md"


def doc(path: str) -> list[str]:
    return show(MIRROR, COMMIT, path).split("\n")


DOCS = {p: doc(p) for p in (AGENTIC, PANEL, AGENTWORLD, VERSUS)}


def line(path: str, *keys: str, after: str = "") -> str:
    """The one line of ``path`` (below the first line holding ``after``) that holds every key."""
    lines = DOCS[path]
    start = next(i for i, s in enumerate(lines) if after in s) if after else 0
    hits = [s for s in lines[start:] if all(k in s for k in keys)]
    if not hits:
        raise SystemExit(f"{path}: no line with {keys}")
    return hits[0].strip()


M5 = ("m5-max-128", "Apple MacBook Pro M5 Max 128 GB (High Power Mode)")
M4 = ("m4-pro-64", "Apple Mac mini M4 Pro 64 GB (High Power Mode)")
WARM = (
    "assumed_depth_tokens: 7550 (the agentic protocol's warm run: SYS_A ~6018-6084 + USER_X ~1495-1497 tokens, "
    "src/asiai/benchmark/prompts.py; chat-template tokens not counted). decode_tokens 400 = the warm run's "
    "max_tokens (agentic.py PHASES); thinking disabled, so a reply may stop earlier. 'dec' = median warm-phase "
    "decode over --runs 5 ((completion_tokens - 1) / (t_end - t_first), agentic.py:296)."
)
LONG = (
    "assumed_depth_tokens: 55850 (the long-context run: SYS_A ~6018-6084 + USER_L ~49804 tokens, "
    "src/asiai/benchmark/prompts.py). decode_tokens 200 = that run's max_tokens. '50K' = median long-context "
    "decode."
)
AG_HEAD = (
    "Campaign 2026-06-03 ... Engines: llama.cpp (b9430) and the MLX family (mlx-lm, mlx_vlm, omlx, rapid-mlx, "
    "vllm-mlx). MTP = the model's built-in Multi-Token Prediction head used for speculative decoding "
    "(`--spec-type draft-mtp`). ... | | model · engine · MTP | dec t/s | peak | 50K | TTFT ms | reuse | t/s/W | "
    "RAMpk GB | valid% | "
)
QWOPUS = (
    "calibration_only: Qwopus3.6 is an Opus-distilled finetune of Qwen3.6 (same architecture, its own weights and "
    "MTP head; the source: 'finetuning erodes the draft head'); recorded under the Qwen3.6 model whose geometry "
    "it shares, not scored. "
)
ENGINES = {  # label in the table -> (engine, engine_version, backend)
    "llamacpp b9430": ("llama.cpp", "b9430", "metal"),
    "mlx-lm 0.31.3": ("mlx", "mlx-lm 0.31.3", "mlx"),
    "rapid-mlx 0.6.71": ("mlx", "rapid-mlx 0.6.71", "mlx"),
    "omlx 0.4.0": ("mlx", "omlx 0.4.0", "mlx"),
    "mlx_vlm 0.6.0": ("mlx", "mlx_vlm 0.6.0", "mlx"),
    "vllm-mlx 0.3.0": ("mlx", "vllm-mlx 0.3.0", "mlx"),
}
# (machine, label in the table, model, qwopus, engine label, mtp, dec, 50K)
AGENTIC_ROWS = [  # (machine, table key, id slug, model, qwopus, engine label, mtp, dec, 50K)
    (
        M5,
        "Qwopus-35B · llamacpp b9430 ▲MTP |",
        "qwopus35b-llamacpp-mtp",
        "Qwen3.6-35B-A3B",
        True,
        "llamacpp b9430",
        True,
        "123.3",
        "83.8",
    ),
    (
        M5,
        "Qwen-35B · llamacpp b9430 ▲MTP |",
        "qwen35b-llamacpp-mtp",
        "Qwen3.6-35B-A3B",
        False,
        "llamacpp b9430",
        True,
        "118.3",
        "82.9",
    ),
    (
        M5,
        "Qwopus-35B · llamacpp b9430 |",
        "qwopus35b-llamacpp",
        "Qwen3.6-35B-A3B",
        True,
        "llamacpp b9430",
        False,
        "105.7",
        "76.1",
    ),
    (
        M5,
        "Qwen-35B · llamacpp b9430 |",
        "qwen35b-llamacpp",
        "Qwen3.6-35B-A3B",
        False,
        "llamacpp b9430",
        False,
        "85.5",
        "66.7",
    ),
    (
        M5,
        "Qwen-27B · llamacpp b9430 ▲MTP |",
        "qwen27b-llamacpp-mtp",
        "Qwen3.6-27B",
        False,
        "llamacpp b9430",
        True,
        "28.0",
        "22.9",
    ),
    (
        M5,
        "Qwopus-27B · llamacpp b9430 ▲MTP |",
        "qwopus27b-llamacpp-mtp",
        "Qwen3.6-27B",
        True,
        "llamacpp b9430",
        True,
        "26.7",
        "22.0",
    ),
    (
        M5,
        "Qwopus-27B · llamacpp b9430 |",
        "qwopus27b-llamacpp",
        "Qwen3.6-27B",
        True,
        "llamacpp b9430",
        False,
        "25.9",
        "20.8",
    ),
    (
        M5,
        "Qwen-27B · llamacpp b9430 |",
        "qwen27b-llamacpp",
        "Qwen3.6-27B",
        False,
        "llamacpp b9430",
        False,
        "23.8",
        "19.2",
    ),
    (
        M5,
        "Qwopus-27B · mlx-lm 0.31.3 |",
        "qwopus27b-mlxlm",
        "Qwen3.6-27B",
        True,
        "mlx-lm 0.31.3",
        False,
        "29.2",
        "24.3",
    ),
    (
        M5,
        "Qwen-27B · rapid-mlx 0.6.71 |",
        "qwen27b-rapidmlx",
        "Qwen3.6-27B",
        False,
        "rapid-mlx 0.6.71",
        False,
        "20.6",
        "17.9",
    ),
    (
        M5,
        "Qwen-27B · omlx 0.4.0 |",
        "qwen27b-omlx",
        "Qwen3.6-27B",
        False,
        "omlx 0.4.0",
        False,
        "20.0",
        "17.5",
    ),
    (
        M5,
        "Qwen-27B · mlx_vlm 0.6.0 ▲MTP~~",
        "qwen27b-mlxvlm-mtp",
        "Qwen3.6-27B",
        False,
        "mlx_vlm 0.6.0",
        True,
        "41.0",
        None,
    ),
    (
        M5,
        "Qwen-27B · mlx_vlm 0.6.0~~",
        "qwen27b-mlxvlm",
        "Qwen3.6-27B",
        False,
        "mlx_vlm 0.6.0",
        False,
        "31.9",
        "26.0",
    ),
    (
        M5,
        "Qwen-27B · vllm-mlx 0.3.0~~",
        "qwen27b-vllmmlx",
        "Qwen3.6-27B",
        False,
        "vllm-mlx 0.3.0",
        False,
        "20.5",
        "18.1",
    ),
    (
        M4,
        "Qwen-35B · llamacpp b9430 ▲MTP |",
        "qwen35b-llamacpp-mtp",
        "Qwen3.6-35B-A3B",
        False,
        "llamacpp b9430",
        True,
        "44.6",
        "32.6",
    ),
    (
        M4,
        "Qwen-35B · llamacpp b9430 |",
        "qwen35b-llamacpp",
        "Qwen3.6-35B-A3B",
        False,
        "llamacpp b9430",
        False,
        "36.3",
        "29.6",
    ),
    (
        M4,
        "Qwen-27B · llamacpp b9430 |",
        "qwen27b-llamacpp",
        "Qwen3.6-27B",
        False,
        "llamacpp b9430",
        False,
        "10.4",
        "7.2",
    ),
    (
        M4,
        "Qwen-27B · llamacpp b9430 ▲MTP |",
        "qwen27b-llamacpp-mtp",
        "Qwen3.6-27B",
        False,
        "llamacpp b9430",
        True,
        "9.7",
        "7.5",
    ),
]
recs: list[dict] = []


def as_model(model: str, qwopus: bool) -> dict:
    """A row's model fields: a Qwopus3.6 finetune is a calibration row under the catalog model it shares."""
    return dict(model=model, calibration_only=qwopus, model_family=f"Qwopus3.6 ({model} finetune)" if qwopus else None)


def rec(**kw) -> None:
    base = record(date_after="id", **kw)
    for fig in (base["decode_tokens_per_s"],):
        assert fig is None or f"{fig:g}" in base["quote"] or str(fig) in base["quote"], (base["id"], fig)
    recs.append(base)


for (hw_id, hw), key, slug, model, qwopus, eng, mtp, dec, long in AGENTIC_ROWS:
    after = "## Mac mini M4 Pro" if hw_id == "m4-pro-64" else "## MacBook Pro M5 Max"
    q = line(AGENTIC, key, after=after)
    assert dec in q and (long is None or long in q), (key, q)
    engine, version, backend = ENGINES[eng]
    gguf = engine == "llama.cpp"
    m5 = hw_id == "m5-max-128"
    if gguf and m5:
        qp, quant = (
            "GGUF, M5 block 'Q4' (the page: 'M5 Q4_K_S/Q4_K_XL'; which of the two this row ran is not said)",
            None,
        )
        qn = (
            "quant null: the M5 GGUF rows ran Q4_K_S or UD-Q4_K_XL and the row does not say which; listed, not "
            "scored ('quant unknown'). "
        )
    elif gguf:
        qp, quant, qn = (
            "GGUF UD-Q5_K_XL (the page: 'M4 Q5_K_XL')",
            "Q5_K_M",
            "quant Q5_K_M for UD-Q5_K_XL (corpus convention). ",
        )
    else:
        qp, quant, qn = (
            "MLX 4-bit (M5 block 'Q4')",
            "mlx-4bit",
            "quant mlx-4bit (affine 4-bit, group 64) assumed for the M5 block's MLX 'Q4'. ",
        )
    struck = "~~" in q
    sn = (
        "The source strikes this row through ('Tier 4 — eliminated') for its TTFT / validity gates, not for the "
        "decode figure, which is transcribed as published. "
        if struck
        else ""
    )
    mtpd = (
        dict(
            draft_tokens=None,
            acceptance=None,
            method="llama.cpp --spec-type draft-mtp (draft count not stated; 'no acceptance rate logged')"
            if gguf
            else "mlx_vlm MTP drafter (draft block not stated)",
        )
        if mtp
        else None
    )
    mn = (
        "MTP: draft count and acceptance not published (the panel: 'benefit = intra-session decode delta (no "
        "acceptance rate logged)'). "
        if mtp
        else ""
    )
    for kind, fig, depth_note, dtok in (("dec", dec, WARM, 400), ("50k", long, LONG, 200)):
        if fig is None:
            continue
        rec(
            id=f"asiai-{'m5max' if m5 else 'm4pro'}-{slug}-{kind}",
            **as_model(model, qwopus),
            quant_as_published=qp,
            quant=quant,
            engine=engine,
            engine_version=version,
            backend=backend,
            hardware=hw,
            hardware_id=hw_id,
            depth_tokens=None,
            decode_tokens=dtok,
            mtp=mtpd,
            decode_tokens_per_s=float(fig),
            url=BLOB + AGENTIC,
            quote=AG_HEAD + q,
            notes=(
                (QWOPUS if qwopus else "")
                + qn
                + mn
                + sn
                + depth_note
                + " Thinking disabled (chat_template_kwargs.enable_thinking=false); one engine resident at a time."
            ),
        )

# The May panel (Section 1), M5 Max 128 GB: single-call warm decode, thinking ON
P_HEAD = (
    "## Section 1 — Single-call performance ... 📌 **Versions tested (May 2026)**: Rapid-MLX 0.6.66, LM Studio "
    "0.4.14, llama.cpp b9270. ... | # | Engine | Model | Format | Warm decode (t/s) ¹ | TTFT warm (ms) | ... "
)
P_NOTE = (
    "The author heads this table '🟠 May 2026 snapshot — indicative, not the reference numbers ... its source "
    "fixtures have not been re-verified' and footnotes that the figures were captured with thinking ON "
    "(reasoning tokens are decoded tokens too, so the rate is a decode rate). assumed_depth_tokens: 1500 (the "
    "panel's methodology, agentic-mode v1.6.0: 'system prompt ~7 KB, user prompt ~150-200 tokens'; ~7 KB at "
    "~5.3 chars/token). Generated length not stated. Hardware: the panel's methodology 'MacBook Pro M5 Max 128 GB "
    "unified memory, macOS 26.4.1'."
)
PANEL_ROWS = [  # (row number, model, qwopus, engine, version, quant_as_published, quant, mtp, figure)
    (
        "| 1 |",
        "Qwen3.6-35B-A3B",
        True,
        "mlx",
        "rapid-mlx 0.6.66",
        "Qwopus 3.6-35B-A3B-v1 (zaydiscold MLX-4bit)",
        "mlx-4bit",
        False,
        "109.1",
    ),
    (
        "| 2 |",
        "Qwen3.6-35B-A3B",
        False,
        "mlx",
        "rapid-mlx 0.6.66",
        "Qwen 3.6-35B-A3B-UD (MLX-4bit)",
        "mlx-4bit",
        False,
        "106.9",
    ),
    (
        "| 3 |",
        "Qwen3.6-27B",
        True,
        "mlx",
        "rapid-mlx 0.6.66",
        "Qwopus 3.6-27B-v2 (Jackrong MLX-4bit)",
        "mlx-4bit",
        False,
        "31.8",
    ),
    (
        "| 4 |",
        "Qwen3.6-27B",
        False,
        "mlx",
        "rapid-mlx 0.6.66",
        "Qwen 3.6-27B-UD (MLX-4bit)",
        "mlx-4bit",
        False,
        "20.5",
    ),
    (
        "| 5 |",
        "Qwen3.6-35B-A3B",
        False,
        "llama.cpp",
        "LM Studio 0.4.14 (its llama.cpp-derived GGUF backend)",
        "Qwen 3.6-35B-A3B-MTP (Unsloth GGUF), 'GGUF Q4 + MTP'",
        None,
        True,
        "123.9",
    ),
    (
        "| 6 |",
        "Qwen3.6-35B-A3B",
        True,
        "llama.cpp",
        "LM Studio 0.4.14 (its llama.cpp-derived GGUF backend)",
        "Qwopus 3.6-35B-A3B-v1 (Jackrong GGUF) Q4_K_S",
        "Q4_K_S",
        False,
        "105.6",
    ),
    (
        "| 7 |",
        "Qwen3.6-35B-A3B",
        False,
        "llama.cpp",
        "b9270",
        "Qwen 3.6-35B-A3B (UD Q5_K_XL)",
        "Q5_K_M",
        False,
        "80.9",
    ),
    (
        "| 8 |",
        "Qwen3.6-27B",
        True,
        "llama.cpp",
        "b9270",
        "Qwopus 3.6-27B-v2 (Jackrong GGUF Q4)",
        None,
        False,
        "25.3",
    ),
]
for num, model, qwopus, engine, version, qp, quant, mtp, fig in PANEL_ROWS:
    q = line(PANEL, num, fig, after="## Section 1")
    n = int(num.strip("| "))
    extra = ""
    if quant is None:
        extra = "quant null: 'GGUF Q4' does not name the type; listed, not scored. "
    elif quant == "Q5_K_M":
        extra = "quant Q5_K_M for UD-Q5_K_XL (corpus convention). "
    elif quant == "mlx-4bit":
        extra = "quant mlx-4bit assumed for 'MLX-4bit' (group size not stated). "
    if version.startswith("LM Studio"):
        extra += (
            "engine recorded as llama.cpp: the panel's footnote 2, 'rows 5-6 used a GGUF file, which routes "
            "through LM Studio's llama.cpp-derived backend (NOT the MLX runtime mlx-engine)'. "
        )
    if mtp:
        extra += (
            "MTP: the GGUF's MTP head through LM Studio's backend; draft count and acceptance not published. "
        )
    rec(
        id=f"asiai-panel-m5max-row{n}",
        **as_model(model, qwopus),
        quant_as_published=qp,
        quant=quant,
        engine=engine,
        engine_version=version,
        backend="mlx" if engine == "mlx" else "metal",
        hardware="Apple MacBook Pro M5 Max 128 GB",
        hardware_id="m5-max-128",
        depth_tokens=None,
        decode_tokens=None,
        mtp=(dict(draft_tokens=None, acceptance=None, method="GGUF MTP head via LM Studio") if mtp else None),
        decode_tokens_per_s=float(fig),
        url=BLOB + PANEL,
        quote=P_HEAD + q,
        notes=(QWOPUS if qwopus else "") + extra + P_NOTE,
    )

# The AgentWorld page: the Qwen3.6 baseline column (mlx-community/Qwen3.6-35B-A3B-4bit, mlx-lm 0.31.3, M5 Max)
AW_SETUP = line(AGENTWORLD, "`mlx-lm` 0.31.3", "M5 Max 128 GB")
for key, fig, depth, tag, extra in (
    ("Decode throughput ★", "117", None, "short", "Context of this measurement not stated (depth null)."),
    (
        "Decode at 64K context",
        "160",
        65536,
        "64k",
        "depth_tokens 65536 read from '64K context' (assumed binary K). The page's own reading column says '~73% "
        "retained' although ~160 exceeds its short-context ~117 t/s; transcribed as published, the inconsistency is "
        "the source's.",
    ),
):
    q = line(AGENTWORLD, key)
    assert f"~{fig} t/s" in q, q
    rec(
        id=f"asiai-agentworld-m5max-qwen36-35b-mlx4bit-{tag}",
        model="Qwen3.6-35B-A3B",
        quant_as_published="mlx-community/Qwen3.6-35B-A3B-4bit (MLX 4-bit; the MoE gate in 8-bit per the page)",
        quant="mlx-4bit",
        engine="mlx",
        engine_version="mlx-lm 0.31.3",
        backend="mlx",
        hardware="Apple MacBook Pro M5 Max 128 GB",
        hardware_id="m5-max-128",
        depth_tokens=depth,
        decode_tokens=None,
        mtp=None,
        decode_tokens_per_s=float(fig),
        url=BLOB + AGENTWORLD,
        quote="## 6. Performance (single-run, indicative ★) ... | Measure | AgentWorld | Qwen3.6 | Reading | ... "
        + q
        + " ... "
        + AW_SETUP,
        notes=(
            f"assumed_decode_tokens_per_s: {fig} (the page writes '~{fig} t/s'). The Qwen3.6 column only: the "
            "AgentWorld column is another checkpoint (jedisct1/Qwen-AgentWorld-35B-A3B-oQ4-MLX, a finetune in a "
            "different 4-bit recipe). Sampling temp 0.6 / top-p 0.95 / top-k 20; single run ('indicative'). "
            + extra
        ),
    )

# Ollama vs LM Studio page (March 2026, Mac Mini M4 Pro 64 GB, asiai 1.4.0): the Qwen3.5-35B-A3B row
V_HEAD = line(VERSUS, "**Hardware**", "M4 Pro")
V_SETUP = line(VERSUS, "**Model**", "Qwen3-Coder-30B")
VQ = line(VERSUS, "| Qwen3.5-35B-A3B (MoE) |")
for eng, fig in (("lmstudio-mlx", "71.2"), ("ollama", "30.3")):
    assert fig in VQ
    mlx = eng == "lmstudio-mlx"
    rec(
        id=f"asiai-versus-m4pro64-35-35b-{eng}",
        date="2026-03-28",
        model="Qwen3.5-35B-A3B",
        quant_as_published=(
            "MLX 4-bit (assumed: the setup table names 'Q4_K_M / MLX 4-bit' for the Qwen3-Coder-30B "
            "head-to-head)"
            if mlx
            else "Q4_K_M (assumed, as above)"
        ),
        quant="mlx-4bit" if mlx else "Q4_K_M",
        engine="mlx" if mlx else "ollama",
        engine_version="LM Studio (MLX runtime; version not stated)" if mlx else "not stated (March 2026)",
        backend="mlx" if mlx else "metal",
        hardware="Apple Mac Mini M4 Pro 64 GB",
        hardware_id="m4-pro-64",
        depth_tokens=None,
        decode_tokens=None,
        mtp=None,
        decode_tokens_per_s=float(fig),
        url=BLOB + VERSUS,
        quote=V_HEAD
        + " ... "
        + V_SETUP
        + " ... | Model | LM Studio (MLX) | Ollama (llama.cpp) | Gap | ... "
        + VQ,
        notes=(
            "Page dated 2026-03-28 (updated 2026-03-29): 1 warmup + 1 measured run per engine, temperature 0, "
            "`asiai bench --engines ollama,lmstudio --prompts code` (the code prompt; its length is not stated, "
            "depth null). "
            + (
                "LM Studio's MLX runtime (mlx-engine, on mlx-lm) recorded as engine mlx."
                if mlx
                else "An Ollama of March 2026 is before v0.30 (its CGO engine): listed, not scored."
            )
        ),
    )

doc_out = dict(
    source=dict(
        id="edata-asiai-druide67-apple",
        url=f"https://github.com/druide67/asiai/tree/{COMMIT}",
        kind="repo",
        author="druide67 (asiai: an Apple-silicon LLM benchmark tool and its published results pages)",
        date="2026-06-26",
        independent_of=[],
        notes=(
            "Mirrored with the fetch tool and read with git at commit 607fe80 (2026-07-02); written by "
            "benchmarks/speed/measurements/transcribe/asiai.py. Every Qwen3.5 / Qwen3.6 decode figure with a "
            "defined setting in docs/agentic-benchmarks.md (June campaign: 'dec' and '50K' columns of both machine "
            "blocks), the May panel's Section 1, the AgentWorld page's Qwen3.6 column and docs/ollama-vs-lmstudio.md "
            "is transcribed. Not transcribed: the 'peak' column (the maximum over all eight protocol phases, which "
            "run at different depths), the panel's MTP table (the same June measurements as agentic-benchmarks.md, "
            "118.4 there for 118.3 here), TTFT / energy / RAM, the burst smoke cell (Qwopus, aggregate of 5 "
            "serialised calls), the Qwen3-Coder-30B head-to-head (not a catalog model) and the AgentWorld column (a "
            "finetune in another recipe). Qwopus rows are calibration_only under the Qwen3.6 model they share "
            "their geometry with."
        ),
    ),
    records=recs,
)
sys.stdout.write(yaml.safe_dump(doc_out, sort_keys=False, width=120, allow_unicode=True))
