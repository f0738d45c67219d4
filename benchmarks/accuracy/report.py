"""qwenfit's predictions against the real tools, one section per category (the data of the report).

Every "measured" number comes from a committed fixture that a real tool printed (the fixture's
script is named in each section), or from a published figure quoted in
shared/reference/quant-formats.md; every "predicted" number is computed here, now, by qwenfit's
public API or the core function the engine test uses. ``build()`` returns the whole report as
JSON-ready data; ``render.py`` turns it into Markdown.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import qwenfit
from benchmarks.accuracy.stats import err_pct, median, row, summary
from benchmarks.peers import cases

REPO = Path(__file__).resolve().parents[2]
FIX = REPO / "tests" / "fixtures"
PEERS = REPO / "benchmarks" / "peers" / "fixtures"
MiB = 1 << 20


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def input_files() -> list[Path]:
    """Every committed file a number of the report is read from (their hashes go into the report)."""
    files = sorted((FIX / "llama_quantize").glob("*.json")) + sorted((FIX / "llama_memory").glob("*.json"))
    files += [FIX / "vllm" / "qwen35_kv_pool.json", FIX / "meta_counts.json"]
    files += sorted((FIX / "tiny").glob("*/expected.json")) + sorted(
        (REPO / "data" / "models").glob("*.json")
    )
    files += sorted(PEERS.glob("*.json"))
    return files


def input_hashes() -> dict[str, str]:
    return {str(p.relative_to(REPO)): hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in input_files()}


# ------------------------------------------------------------------------------------------------
# 1. parameter counts
# ------------------------------------------------------------------------------------------------


def params_section() -> dict[str, Any]:
    published, meta, tiny = [], [], []
    counts = _load(FIX / "meta_counts.json")["models"]
    for path in sorted((REPO / "data" / "models").glob("*.json")):
        name = path.stem
        info = _load(path)["_qwenfit"]
        p = qwenfit.load(name).params
        published.append(
            row(
                {"model": name},
                p.total,
                info["published_total_params"],
                source=info.get("published_total_source", ""),
            )
        )
        if name in counts:
            meta.append(row({"model": name}, p.total - p.mtp, counts[name]["params_no_mtp"]))
    for exp in sorted((FIX / "tiny").glob("*/expected.json")):
        tiny.append(
            row(
                {"model": f"tiny/{exp.parent.name}"},
                qwenfit.load(exp.parent).params.total,
                _load(exp)["total_params"],
            )
        )
    groups = {
        "published": {"title": "Published Hugging Face totals (safetensors.total)", "rows": published},
        "meta": {
            "title": "transformers meta-device counts, MTP excluded (tests/fixtures/meta_counts.json)",
            "rows": meta,
        },
        "tiny": {
            "title": "Real tiny checkpoints written by transformers (tests/fixtures/tiny)",
            "rows": tiny,
        },
    }
    for g in groups.values():
        g["summary"] = summary((r["predicted"], r["measured"]) for r in g["rows"])
    return {"groups": groups}


# ------------------------------------------------------------------------------------------------
# 2. GGUF bytes vs llama-quantize --dry-run
# ------------------------------------------------------------------------------------------------


def _quant_options(run_name: str) -> tuple[str, Any]:
    from qwenfit.core.formats.gguf import LlamaQuantOptions

    ftype, *extras = run_name.split("+")
    kw: dict[str, Any] = {}
    for extra in extras:
        if extra == "imatrix":
            kw["imatrix"] = True
        elif extra == "pure":
            kw["pure"] = True
        elif extra == "leave-output-tensor":
            kw["leave_output_tensor"] = True
        elif extra.startswith("output-tensor-type="):
            kw["output_tensor_type"] = extra.split("=", 1)[1].upper()
        elif extra.startswith("token-embedding-type="):
            kw["token_embedding_type"] = extra.split("=", 1)[1].upper()
        elif extra.startswith("tensor-type="):
            pattern, kind = extra.split("=", 1)[1].rsplit("=", 1)
            kw["tensor_types"] = ((pattern, kind.upper()),)
        else:
            raise ValueError(f"unknown run option {extra}")
    return ftype, LlamaQuantOptions(**kw)


def gguf_fixture_rows(path: Path) -> list[dict[str, Any]]:
    """One row per llama-quantize run of one fixture file: total bytes and tensor types matched."""
    from qwenfit.core.formats.gguf import GGUFSource, choose_types

    fx = _load(path)
    kv = fx["source_gguf"]["kv"]
    arch = kv["general.architecture"]
    hp = {
        "n_head": kv[f"{arch}.attention.head_count"],
        "n_head_kv": kv[f"{arch}.attention.head_count_kv"],
        "n_expert": kv.get(f"{arch}.expert_count", 0),
        "n_layer_all": kv[f"{arch}.block_count"],
    }
    sources = [GGUFSource(n, tuple(ne), t.upper()) for n, t, ne in fx["source_gguf"]["tensors"]]
    names = fx["type_names"]
    rows = []
    for run_name, run in sorted(fx["runs"].items()):
        ftype, opts = _quant_options(run_name)
        label = {"file": path.stem, "kind": fx["kind"], "run": run_name}
        if run["status"] != "ok":
            try:
                choose_types(sources, ftype, options=opts, **hp)
                refused = False
            except ValueError:
                refused = True
            rows.append({**label, "refused_by_llama_quantize": True, "refused_by_qwenfit": refused})
            continue
        ours = choose_types(sources, ftype, options=opts, **hp)
        theirs = [names[i].upper() for i in run["types"]]
        types_ok = sum(q.type == t for q, t in zip(ours, theirs, strict=True))
        rows.append(
            row(
                label,
                sum(q.bytes for q in ours),
                run["total_bytes"],
                tensors=len(theirs),
                tensor_types_matched=types_ok,
            )
        )
    return rows


def file_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if "predicted" in r]
    return {
        **summary((r["predicted"], r["measured"]) for r in ok),
        "refused": len(rows) - len(ok),
        "tensors": sum(r["tensors"] for r in ok),
        "tensor_types_matched": sum(r["tensor_types_matched"] for r in ok),
    }


def gguf_section() -> dict[str, Any]:
    files = sorted(p for p in (FIX / "llama_quantize").glob("*.json") if p.name != "INDEX.json")
    rows = [r for p in files for r in gguf_fixture_rows(p)]
    ok = [r for r in rows if "predicted" in r]
    refused = [r for r in rows if "refused_by_llama_quantize" in r]
    by_kind = {}
    for kind in ("tiny", "kquant", "full-size"):
        rs = [r for r in ok if r["kind"] == kind]
        by_kind[kind] = {
            **summary((r["predicted"], r["measured"]) for r in rs),
            "files": len({r["file"] for r in rs}),
            "tensors": sum(r["tensors"] for r in rs),
            "tensor_types_matched": sum(r["tensor_types_matched"] for r in rs),
        }
    # the public API on the catalog specs (inventory -> converter tensor list -> rules)
    api = []
    for p in files:
        fx = _load(p)
        if fx["kind"] != "full-size":
            continue
        model, mtp = ("Qwen3.5-35B-A3B", False) if p.stem.endswith("--no-mtp") else (p.stem, True)
        for ftype in ("Q4_K_M", "Q8_0", "IQ2_XXS", "Q3_K_M", "IQ4_XS", "MXFP4_MOE", "Q6_K", "BF16"):
            api.append(
                row(
                    {"file": p.stem, "run": ftype},
                    qwenfit.weights(model, ftype, mtp=mtp).total_bytes,
                    fx["runs"][ftype]["total_bytes"],
                )
            )
    full_q4 = [r for r in ok if r["kind"] == "full-size" and r["run"] in ("Q4_K_M", "Q8_0", "IQ2_XXS")]
    return {
        "by_kind": by_kind,
        "by_file": {p.stem: file_summary([r for r in rows if r["file"] == p.stem]) for p in files},
        "all": summary((r["predicted"], r["measured"]) for r in ok),
        "refused": {
            "n": len(refused),
            "qwenfit_also_refuses": sum(r["refused_by_qwenfit"] for r in refused),
            "runs": sorted({r["run"] for r in refused}),
        },
        "api": {"rows": api, "summary": summary((r["predicted"], r["measured"]) for r in api)},
        "highlights": full_q4,
        "not_exact": [r for r in ok if not r["exact"]],
    }


# ------------------------------------------------------------------------------------------------
# 3. llama.cpp runtime memory
# ------------------------------------------------------------------------------------------------


def llama_memory_section() -> dict[str, Any]:
    from qwenfit.core.engines.llama_cpp.memory import llama_context

    files = sorted(p for p in (FIX / "llama_memory").glob("*.json") if p.name != "INDEX.json")
    exact: dict[str, list[tuple[int, int]]] = {
        "n_ctx": [],
        "kv": [],
        "recurrent": [],
        "output": [],
        "model": [],
    }
    compute: dict[str, list[tuple[int, int]]] = {"server": [], "library": []}
    worst: dict[str, dict[str, Any]] = {}
    per_model = {}
    for path in files:
        fx = _load(path)
        spec = qwenfit.load(fx["model"])
        m_rows = {"server": [], "library": []}
        for name, run in sorted(fx["runs"].items()):
            if run.get("status") == "refused":
                continue
            s = {**fx["base"], **run.get("set", {})}
            main = run["contexts"]["main"]
            ours = llama_context(
                spec,
                n_ctx=s["c"] or spec.text.max_position_embeddings,
                n_seq=main["n_seq_max"],
                kv_unified=bool(main["kv_unified"]),
                type_k=s["ctk"],
                type_v=s["ctv"],
                n_ubatch=s["ub"],
                flash_attn=s["fa"] == "on",
                mtp=bool(s["mtp"]),
                draft_tokens=s["draft"] if s["draft"] is not None else 3,
                n_outputs_max=main["n_outputs_max"],
            )
            kv = main["kv"][0] + main["kv"][1]
            if s["mtp"] and "mtp" in run["contexts"]:
                kv += run["contexts"]["mtp"]["kv"][0] + run["contexts"]["mtp"]["kv"][1]
            exact["n_ctx"].append((ours.n_ctx, main["n_ctx"]))
            exact["kv"].append((ours.kv_bytes, kv))
            exact["recurrent"].append((ours.recurrent_bytes, main["rs"][0] + main["rs"][1]))
            if not s["mtp"]:
                exact["output"].append((ours.output_bytes, main["output"]))
            kind = "server" if main["n_outputs_max"] == main["n_seq_max"] else "library"
            pair = (ours.compute_bytes, main["compute"])
            compute[kind].append(pair)
            m_rows[kind].append(pair)
            e = abs(err_pct(*pair))
            if e > worst.get(kind, {}).get("abs_err_pct", -1):
                worst[kind] = {
                    "model": fx["model"],
                    "run": name,
                    "abs_err_pct": e,
                    "predicted": pair[0],
                    "measured": pair[1],
                }
        for variant, quant in (("bf16-mtp", "BF16"), ("q4km-mtp", "Q4_K_M")):
            if variant in fx["layouts"]:
                w = qwenfit.weights(spec, quant)
                trunk = sum(-(-t.bytes // 32) * 32 for t in w.tensors if t.component == "text")
                exact["model"].append((trunk, fx["layouts"][variant]["tensor_bytes_trunk"]))
        per_model[fx["model"]] = {k: summary(v) for k, v in m_rows.items()}
    return {
        "exact": {k: summary(v) for k, v in exact.items()},
        "compute": {k: summary(v) for k, v in compute.items()},
        "compute_within": {
            k: {"1pct": sum(abs(err_pct(*p)) <= 1 for p in v), "5pct": sum(abs(err_pct(*p)) <= 5 for p in v)}
            for k, v in compute.items()
        },
        "compute_worst": worst,
        "compute_per_model": per_model,
        "llama_cpp": _load(files[0])["llama_cpp"]["commit"][:12],
        "n_runs": sum(len(_load(p)["runs"]) for p in files),
    }


# ------------------------------------------------------------------------------------------------
# 4. vLLM block / page arithmetic
# ------------------------------------------------------------------------------------------------

VLLM_FIELDS = [
    "mamba_page",
    "block_size",
    "page",
    "padding_pct",
    "attn_groups",
    "mamba_groups",
    "bytes_per_block",
    "blocks_per_req",
    "min_pool_one_req",
    "num_blocks_40g",
    "concurrency_40g",
    "est_max_len_below_min",
]


def vllm_section() -> dict[str, Any]:
    from qwenfit.core.engines.vllm.pool import plan_pool

    fx = _load(FIX / "vllm" / "qwen35_kv_pool.json")
    rows = [dict(zip(fx["columns"], r, strict=True)) for r in fx["rows"]]
    matched = dict.fromkeys(VLLM_FIELDS, 0)
    all_fields = 0
    specs: dict[str, Any] = {}
    mismatches = []
    for r in rows:
        spec = specs.setdefault(r["model"], qwenfit.load(r["model"]))
        plan = plan_pool(
            spec,
            tp=r["tp"],
            max_model_len=fx["max_model_len"],
            kv_cache_dtype=r["kv_cache_dtype"],
            prefix_caching=r["prefix_caching"],
            num_speculative_tokens=r["num_spec"],
            flashinfer_gdn_prefill=r["gdn_prefill"] == "flashinfer",
        )
        pool = 40 * (1 << 30)
        ours = {
            "mamba_page": plan.mamba_page,
            "block_size": plan.block_size,
            "page": plan.page_bytes,
            "padding_pct": round(plan.padding_pct, 6),
            "attn_groups": list(plan.attn_groups),
            "mamba_groups": list(plan.mamba_groups),
            "bytes_per_block": plan.bytes_per_block,
            "blocks_per_req": plan.blocks_per_request(),
            "min_pool_one_req": plan.pool_bytes(1),
            "num_blocks_40g": pool // plan.bytes_per_block,
            "concurrency_40g": plan.max_concurrency(pool),
            "est_max_len_below_min": plan.estimate_max_model_len(
                r["min_pool_one_req"] - 1, fx["max_model_len"]
            ),
        }
        ok_all = True
        for f in VLLM_FIELDS:
            theirs = round(r[f], 6) if f == "padding_pct" else r[f]
            same = (
                abs(ours[f] - theirs) <= 1e-9 * abs(theirs) if f == "concurrency_40g" else ours[f] == theirs
            )
            matched[f] += same
            if not same:
                ok_all = False
                mismatches.append(
                    {"model": r["model"], "tp": r["tp"], "field": f, "ours": ours[f], "vllm": r[f]}
                )
        all_fields += ok_all
    return {
        "vllm_version": fx["vllm_version"],
        "rows": len(rows),
        "rows_all_fields_exact": all_fields,
        "fields": matched,
        "mismatches": mismatches[:20],
        "models": sorted(specs),
    }


# ------------------------------------------------------------------------------------------------
# 5. published file sizes
# ------------------------------------------------------------------------------------------------

# (model, publisher/file, quant, published bytes, how qwenfit is asked, source). Like for like only:
# files made by a plain llama-quantize of that time (quant-formats.md §5.1/5.2).
PUBLISHED_EXACT = [
    ("Qwen3.5-35B-A3B", "unsloth/Qwen3.5-35B-A3B-GGUF", "Q8_0", 36_903_139_968, "pre-2026-03", "§5.1"),
    ("Qwen3.5-27B", "unsloth/Qwen3.5-27B-GGUF", "Q8_0", 28_595_763_104, "pre-2026-03", "§5.1"),
    (
        "Qwen3.5-122B-A10B",
        "unsloth/Qwen3.5-122B-A10B-GGUF (4 shards)",
        "Q8_0",
        129_871_935_040,
        "pre-2026-03",
        "§5.1",
    ),
    (
        "Qwen3.5-397B-A17B",
        "unsloth/Qwen3.5-397B-A17B-GGUF (10 shards)",
        "Q8_0",
        421_507_365_376,
        "pre-2026-03",
        "§5.1",
    ),
    ("Qwen3.5-9B", "khtsly/Mini-Coder-GGUF (9B finetune)", "Q4_K_S", 5_351_629_312, "current", "§5.1"),
    ("Qwen3.5-9B", "khtsly/Mini-Coder-GGUF (9B finetune)", "Q4_K_M", 5_629_108_736, "current", "§5.1"),
    ("Qwen3.5-9B", "khtsly/Mini-Coder-GGUF (9B finetune)", "Q8_0", 9_527_501_312, "current", "§5.1"),
]
PUBLISHED_MMPROJ = [
    ("Qwen3.5-35B-A3B", "unsloth mmproj-F16.gguf", 899_283_648),
    ("Qwen3.5-27B", "unsloth mmproj-F16.gguf", 927_607_040),
    ("Qwen3.5-2B", "unsloth mmproj-F16.gguf", 668_227_264),
]
# published to a rounding: (model, what, published text, unit bytes, digits, how)
PUBLISHED_ROUNDED = [
    (
        "Qwen3.5-35B-A3B",
        "llama.cpp PR #19770 log (BF16 GGUF tensors)",
        "66152.24 MiB",
        MiB,
        2,
        ("BF16", "pre"),
    ),
    (
        "Qwen3.5-35B-A3B",
        "llama.cpp PR #19770 log (Q4_K_M, master ecbcb7ea9)",
        "20177.96 MiB",
        MiB,
        2,
        ("Q4_K_M", "pre"),
    ),
    (
        "Qwen3.5-397B-A17B",
        "mlx-community/Qwen3.5-397B-A17B-4bit (text only)",
        "223 GB",
        10**9,
        0,
        ("mlx-4bit", ""),
    ),
    ("Qwen3.5-397B-A17B", "Qwen/Qwen3.5-397B-A17B BF16 safetensors", "807 GB", 10**9, 0, (None, "")),
    ("Qwen3.5-35B-A3B", "Qwen/Qwen3.5-35B-A3B BF16 safetensors", "72 GB", 10**9, 0, (None, "")),
]
# not like for like: custom per-tensor mixes qwenfit does not claim to predict (shown for scale)
PUBLISHED_CUSTOM = [
    ("Qwen3.5-35B-A3B", "unsloth Q4_K_M (dynamic mix, imatrix)", "Q4_K_M", 22_016_023_168),
    ("Qwen3.5-27B", "unsloth Q4_K_M (dynamic mix, imatrix)", "Q4_K_M", 16_740_812_704),
    ("Qwen3.5-122B-A10B", "unsloth Q4_K_M (dynamic mix, imatrix)", "Q4_K_M", 76_536_964_608),
    ("Qwen3.5-397B-A17B", "unsloth Q4_K_M (dynamic mix, imatrix)", "Q4_K_M", 244_093_630_912),
]


def published_section() -> dict[str, Any]:
    from qwenfit.core.formats.weights import mmproj_header_bytes, mmproj_weights

    exact_rows = []
    for model, repo, quant, size, regime, src in PUBLISHED_EXACT:
        kw = {"regime": "pre-2026-03"} if regime == "pre-2026-03" else {}
        w = qwenfit.weights(model, quant, mtp=False, **kw)
        exact_rows.append(
            row(
                {"model": model, "file": repo, "quant": quant, "rules": regime, "ref": src},
                w.file_bytes,
                size,
                tensor_bytes=w.total_bytes,
                metadata=size - w.total_bytes,
            )
        )
    mm_rows = []
    for model, what, size in PUBLISHED_MMPROJ:
        entries = mmproj_weights(qwenfit.load(model), "F16", regime="pre-2026-03")
        data = sum(e.bytes for e in entries)
        mm_rows.append(
            row(
                {"model": model, "file": what, "quant": "F16"},
                data + mmproj_header_bytes(entries),
                size,
                tensor_bytes=data,
            )
        )
    rounded = []
    for model, what, text, unit, digits, (quant, _rules) in PUBLISHED_ROUNDED:
        if quant is None:
            b = qwenfit.weights(model).total_bytes
        elif quant == "mlx-4bit":
            b = qwenfit.weights(model, quant, vision=False, mtp=False).total_bytes
        else:
            b = qwenfit.weights(model, quant, mtp=False, regime="pre-2026-03").total_bytes
        ours = f"{b / unit:.{digits}f}"
        published = float(text.split()[0])
        rounded.append(
            {
                "model": model,
                "what": what,
                "published": text,
                "qwenfit": f"{ours} {text.split()[1]}",
                "predicted_bytes": b,
                "matches_rounding": float(ours) == published,
                "err_pct": err_pct(b, published * unit),
            }
        )
    custom = []
    for model, what, quant, size in PUBLISHED_CUSTOM:
        w = qwenfit.weights(model, quant, mtp=False, regime="pre-2026-03")
        custom.append(
            {
                "model": model,
                "file": what,
                "standard_file_bytes": w.file_bytes,
                "published": size,
                "published_minus_standard": size - w.file_bytes,
            }
        )
    all_exact = exact_rows + mm_rows
    return {
        "exact": exact_rows,
        "mmproj": mm_rows,
        "exact_summary": summary((r["predicted"], r["measured"]) for r in all_exact),
        "tensor_data_residual": {
            "min": min(r["metadata"] for r in exact_rows),
            "max": max(r["metadata"] for r in exact_rows),
        },
        "rounded": rounded,
        "rounded_matches": sum(r["matches_rounding"] for r in rounded),
        "custom": custom,
    }


# ------------------------------------------------------------------------------------------------
# 6. decode speed
# ------------------------------------------------------------------------------------------------


def speed_section() -> dict[str, Any]:
    """Decode speed vs published measurements: the leave-one-source-out results of the fitted speed
    model (benchmarks/speed/fit/results/report.json, ``python -m benchmarks.speed.fit``), the same
    figures as docs/reports/speed.md; "pending" while they are absent."""
    from benchmarks.speed import page

    if not page.FIT.exists():
        return {"status": "pending", "why": "benchmarks/speed/fit/results/report.json is not in the tree"}
    j = json.loads(page.FIT.read_text())
    o = j["decode"]["qwenfit new (LOSO)"]["overall"]
    return {
        "status": "ok",
        "source": "benchmarks/speed/fit (leave-one-source-out over benchmarks/speed/measurements; "
        "the tables of docs/reports/speed.md)",
        "summary": {"decode": {"overall": {"n": o["n"], "median_abs_error_pct": o["median"],
                                           "p90_abs_error_pct": o["p90"], "max_abs_error_pct": o["max"]}}},
        "markdown": "\n".join(page.estimates_md(j)),
    }  # fmt: skip


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=lambda o: getattr(o, "__dict__", str(o))))


# ------------------------------------------------------------------------------------------------
# 7. peers
# ------------------------------------------------------------------------------------------------


def _llamacpp_truth() -> dict[str, Any]:
    return _load(PEERS / "llama_cpp_reference.json")


def _qwenfit_case(model: str, ctx: int, quant: str = cases.QUANT) -> dict[str, int]:
    """qwenfit's llama.cpp terms for one case.

    backend="cpu": the reference ran on llama.cpp's CPU backend, where every buffer is host memory (on
    CUDA the same bytes split: token_embd and a small compute buffer stay in host RAM).
    Weights: ``qwenfit.weights(model, quant, mtp=False)``, the GGUF converted without MTP tensors as
    the reference's (and the Hub's Qwen3.5 GGUFs are); ``estimate()`` prices the current converter's
    file, whose MTP tensors shift llama-quantize's counter-based choices slightly (397B: -0.24 %).
    ``planned_total_gpu``: what qwenfit plans on a CUDA GPU, CUDA reserve and --fit margin included."""
    kw = {
        "context": ctx,
        "engine": "llama.cpp",
        "kv_cache": cases.KV_TYPE,
        "sequences": cases.SEQUENCES,
        "artifact": "recipe",
    }  # the reference files are llama-quantize's own
    t: dict[str, int] = {}
    for term in qwenfit.estimate(model, quant, backend="cpu", **kw).terms:
        t[term.name] = t.get(term.name, 0) + term.bytes
    w = qwenfit.weights(model, quant, mtp=False)
    out = {
        "weights": sum(-(-e.bytes // 32) * 32 for e in w.tensors),
        "kv": t["kv_cache"],
        "recurrent": t["recurrent_state"],
        "compute": t["compute_buffer"],
        "output": t["output_buffer"],
    }
    out["total"] = out["weights"] + out["kv"] + out["recurrent"] + out["compute"]
    gpu = qwenfit.estimate(model, quant, **kw)
    out["planned_total_gpu"] = sum(term.bytes for term in gpu.terms if term.device == "gpu")
    return out


def peers_section() -> dict[str, Any]:
    ref = _llamacpp_truth()
    llmfit = _load(PEERS / "llmfit.json")
    hfm = _load(PEERS / "hf_mem.json")
    GB = 10**9
    rows = []
    for model in cases.MODELS:
        for ctx in cases.CONTEXTS:
            c = ref["models"][model]["cases"][str(ctx)]
            truth = {
                "weights": c["model_bytes"],
                "kv": c["kv_bytes"],
                "recurrent": c["recurrent_bytes"],
                "compute": c["compute_bytes"],
                "output": c["output_bytes"],
                "kv_layers": c["kv_layers"],
                "recurrent_layers": c["recurrent_layers"],
            }
            truth["total"] = truth["weights"] + truth["kv"] + truth["recurrent"] + truth["compute"]
            q = _qwenfit_case(model, ctx)
            plan = llmfit["runs"][f"plan/{model}/{ctx}"]["output"]
            conc = llmfit["runs"][f"concurrency/{model}/{ctx}"]["output"]["estimate"]
            kv16 = next(k for k in plan["kv_alternatives"] if k["kv_quant"] == "fp16")
            lf = {
                "weights": round(plan["disk_size_gb"] * GB),
                "kv": round(kv16["kv_cache_gb"] * GB),
                "recurrent_reported": round(conc["per_session_recurrent_gb"] * GB),
                "total": round(plan["minimum"]["vram_gb"] * GB),
            }
            lf["overhead"] = lf["total"] - lf["weights"] - lf["kv"]
            g = hfm["results"][f"gguf/{model}/{ctx}"]["result"]
            st = hfm["results"][f"safetensors/{model}/{ctx}"]
            hm = {
                "weights": g["memory"]["bytes"],
                "kv": g["kv_cache"]["bytes"],
                "total": g["total_memory"],
                "safetensors_kv": st["result"]["kv_cache"]["bytes"],
                "safetensors_moe_experts": (st["moe"] or {}).get("expert_count"),
                "safetensors_moe_expert_bytes": (st["moe"] or {}).get("expert_bytes_count"),
            }
            rows.append(
                {
                    "model": model,
                    "context": ctx,
                    "llama_cpp": truth,
                    "qwenfit": q,
                    "llmfit": lf,
                    "hf_mem": hm,
                    "err_pct": {
                        "qwenfit": {
                            k: err_pct(q[k], truth[k])
                            for k in ("weights", "kv", "recurrent", "compute", "total")
                        },
                        "llmfit": {
                            "weights": err_pct(lf["weights"], truth["weights"]),
                            "kv": err_pct(lf["kv"], truth["kv"]),
                            "recurrent": err_pct(lf["recurrent_reported"], truth["recurrent"]),
                            "total": err_pct(lf["total"], truth["total"]),
                        },
                        "hf_mem": {
                            "weights": err_pct(hm["weights"], truth["weights"]),
                            "kv": err_pct(hm["kv"], truth["kv"]),
                            "safetensors_kv": err_pct(hm["safetensors_kv"], truth["kv"]),
                            "total": err_pct(hm["total"], truth["total"]),
                        },
                    },
                }
            )
    tool_summary = {}
    for tool in ("qwenfit", "llmfit", "hf_mem"):
        keys = rows[0]["err_pct"][tool].keys()
        tool_summary[tool] = {
            k: {
                "median_abs_err_pct": round(median([abs(r["err_pct"][tool][k]) for r in rows]), 2),
                "max_abs_err_pct": round(max(abs(r["err_pct"][tool][k]) for r in rows), 2),
                "exact": sum(r["err_pct"][tool][k] == 0 for r in rows),
            }
            for k in keys
        }
    return {
        "llama_cpp": ref["llama_cpp"],
        "settings": ref["settings"],
        "llmfit_version": llmfit["version"],
        "hf_mem_version": hfm["version"],
        "rows": rows,
        "summary": tool_summary,
        "scenarios": scenarios(llmfit),
        "hf_mem_tiny": hf_mem_tiny(hfm),
        "not_run": _load(PEERS / "not_run.json")["not_run"],
    }


def _breakdown_max_context(model: str, vram: int, quant: str) -> int:
    """Largest context (256-token cells) with weights + KV + state + compute <= vram: llama.cpp's own
    breakdown terms (the part of qwenfit's estimate checked exact against llama.cpp)."""
    lo, hi = 0, 262144 // 256
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _qwenfit_case(model, mid * 256, quant)["total"] <= vram:
            lo = mid
        else:
            hi = mid - 1
    return lo * 256


def scenarios(llmfit: dict[str, Any]) -> list[dict[str, Any]]:
    """llmfit's verdict on simulated hardware vs the memory of what it recommends."""
    out = []
    for sid, model, vram, ram, max_ctx in cases.SCENARIOS:
        info = llmfit["runs"][f"info/{sid}"]["output"]["models"][0]
        quant = info["best_quant"]
        ctx = min(info.get("effective_context_length") or 8192, 262144)
        ours = _qwenfit_case(model, ctx, quant)
        rec: dict[str, Any] = {
            "id": sid,
            "model": model,
            "vram_gb": vram,
            "ram_gb": ram,
            "max_context_flag": max_ctx,
            "llmfit": {
                k: info.get(k)
                for k in (
                    "fit_level",
                    "run_mode",
                    "best_quant",
                    "memory_required_gb",
                    "usable_context",
                    "effective_context_length",
                    "moe_offloaded_gb",
                    "notes",
                )
            },
            "pick_breakdown_bytes": ours["total"],
            "pick_fits_breakdown": ours["total"] <= vram * 10**9,
            "pick_max_context_breakdown": _breakdown_max_context(model, vram * 10**9, quant),
            "qwenfit_max_context": qwenfit.max_context(
                model, quant, vram_gb=vram, kv_cache=cases.KV_TYPE, artifact="recipe"
            ),
        }
        rec["llmfit_required_err_pct"] = err_pct(round(info["memory_required_gb"] * 10**9), ours["total"])
        if info.get("run_mode") == "MoE":  # llama.cpp's way: every routed expert on the CPU (--n-cpu-moe)
            n = qwenfit.load(model).text.num_hidden_layers
            kw = {"kv_cache": cases.KV_TYPE, "n_cpu_moe": n, "artifact": "recipe"}
            e = qwenfit.estimate(model, quant, context=ctx, **kw)
            buffers = sum(
                t.bytes
                for t in e.terms
                if t.device == "gpu" and t.name not in ("runtime_reserve", "fit_margin")
            )
            rec["qwenfit_n_cpu_moe"] = {
                "n_cpu_moe": n,
                "gpu_bytes": e.by_device.get("gpu", 0),
                "cpu_bytes": e.by_device.get("cpu", 0),
                "gpu_buffers_bytes": buffers,
                "cpu_weights_bytes": sum(
                    t.bytes for t in e.terms if t.device == "cpu" and t.name == "weights"
                ),
                "max_context": qwenfit.max_context(model, quant, vram_gb=vram, ram_gb=ram, **kw),
            }
        out.append(rec)
    return out


def hf_mem_tiny(hfm: dict[str, Any]) -> list[dict[str, Any]]:
    """hf-mem's weight bytes on the real tiny files vs the bytes the files' headers hold."""
    out = []
    for jid, res in sorted(hfm["results"].items()):
        if not jid.startswith(("tiny/", "tiny-gguf/")):
            continue
        if jid.startswith("tiny/"):
            truth = _load(FIX / "tiny" / jid.split("/", 1)[1] / "expected.json")["total_bytes"]
            kind = "safetensors (transformers)"
        else:
            name = jid.split("/", 1)[1]
            w = qwenfit.weights(FIX / "gguf" / f"{name}.gguf")
            truth = w.total_bytes
            kind = "GGUF (llama.cpp)"
        got = res["result"]["memory"]["bytes"]
        out.append(
            row(
                {"file": jid, "kind": kind},
                got,
                truth,
                moe_experts=(res.get("moe") or {}).get("expert_count"),
            )
        )
    return out


# ------------------------------------------------------------------------------------------------


def build() -> dict[str, Any]:
    return {
        "generated_by": "python -m benchmarks.accuracy",
        "inputs": input_hashes(),
        "params": params_section(),
        "gguf": gguf_section(),
        "llama_memory": llama_memory_section(),
        "vllm": vllm_section(),
        "published": published_section(),
        "speed": speed_section(),
        "peers": peers_section(),
    }
