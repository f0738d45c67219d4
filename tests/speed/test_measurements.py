"""benchmarks/speed/measurements: a decode figure its source flags as a fault of that board or build
(``decode_flagged_by_source``, the source's words) is neither fitted nor scored; the others are."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

import qwenfit
from benchmarks.speed.fit import features, fit

MEASUREMENTS = Path(__file__).resolve().parents[2] / "benchmarks" / "speed" / "measurements"


def _rows(name: str) -> dict[str, features.Row]:
    doc = yaml.safe_load((MEASUREMENTS / name).read_text())
    return {rec["id"]: features.build_row(rec, doc["source"]) for rec in doc["records"]}


def test_flagged_decode_figures_are_neither_fitted_nor_scored() -> None:
    rows = _rows("club3090-oven1231231234.yaml")
    phb, nvlink = (
        rows["club3090-oven-27b-vllm-dual-phb-2x3090"],
        rows["club3090-oven-27b-vllm-dual-nvlink-2x3090"],
    )
    assert phb.decode == 43.15 and "decode_flagged_by_source" in phb.skip_decode
    assert not fit.decode_target(phb)
    assert nvlink.skip_decode == "" and fit.decode_target(nvlink)  # same rig, not flagged: scored


def test_every_flag_quotes_its_source() -> None:
    flagged = []
    for path in sorted(MEASUREMENTS.glob("*.yaml")):
        for rec in yaml.safe_load(path.read_text())["records"]:
            if rec.get("decode_flagged_by_source"):
                flagged.append(rec["id"])
                assert len(rec["decode_flagged_by_source"]) > 100, rec[
                    "id"
                ]  # the source's words, not a label
                # the number stays as published (per stream, or the aggregate of a concurrency > 1 run)
                assert rec["decode_tokens_per_s"] is not None or rec["decode_total_tokens_per_s"] is not None
    assert flagged == [
        "club3090-noong-35b-vllm-preview-mtp3-2x3090",
        "club3090-oven-27b-vllm-dual-phb-2x3090",
        "lcpp-i26679-mickvel-r9700-35-35b-apex-q5k-bench-with-pr26371",
        "lcpp-i26679-mickvel-r9700-35-35b-apex-q5k-server-with-pr26371",
        "vllm57680-h100nvl-36-35b-fp8-v0290-c1",
        "vllm57680-h100nvl-36-35b-fp8-v0290-c12",
    ]


def test_acceptance_measured_on_another_prompt_is_not_the_rows() -> None:
    """club-3090 bench.sh prints the last SpecDecoding log windows after the code runs: a record whose
    published acceptance its source's method ties to another prompt does not take it (it takes the
    harness's documented prose figure, below); one that says its acceptance is the narrative prompt's
    keeps it."""
    v024 = _rows("club3090-noonghunna.yaml")["club3090-noong-27b-vllm-dual-v024-2x3090"]
    assert v024.mtp_n == 3 and v024.mtp_e == 2.5  # the documented prose figure, not the code 3.51
    assert v024.mtp_e_from == "documented prose"
    lauri = _rows("club3090-laurimyllari.yaml")["club3090-laurimyllari-27b-vllm-longtext-4090"]
    assert lauri.mtp_e is not None and 3.3 < lauri.mtp_e < 3.5  # "AL 3.34-3.45 narr"
    marked = []
    for path in sorted(MEASUREMENTS.glob("*.yaml")):
        for rec in yaml.safe_load(path.read_text())["records"]:
            mtp = rec.get("mtp") or {}
            if mtp.get("acceptance_prompt"):
                marked.append(rec["id"])
                assert len(mtp["acceptance_prompt_source"]) > 100, rec["id"]  # the method, quoted
                assert mtp.get("acceptance") is not None or mtp.get("mean_accept_length") is not None
    assert sorted(marked) == [
        "club3090-guybrush01-27b-vllm-dual-2x5090",
        "club3090-internalcore2-27b-vllm-dual-2x3090",
        "club3090-noong-27b-vllm-dual-v024-2x3090",
        "club3090-ovden13-27b-vllm-dual-2x3090",
    ]


def test_prose_rows_take_their_scripts_documented_prose_acceptance() -> None:
    """club-3090's bench.sh:40-42 documents prose at ~50 % per position, tedivm's bench_tps.py:6 at ~40 %:
    their single-stream prose MTP rows that publish no acceptance of their own for that prompt decode at
    1 + n x rate tokens per cycle; a row's own figure wins; the concurrency sweep (other prompts) and
    other sources are untouched; and the documented figures stay out of the shipped median
    (fit.published_accept)."""
    assert features.DOCUMENTED_PROSE_ACCEPT["club3090-"][0] == 0.5
    assert features.DOCUMENTED_PROSE_ACCEPT["tedivm-"][0] == 0.4
    whamp = _rows("club3090-whamp.yaml")["club3090-whamp-27b-vllm-multi4-4x3090"]
    assert (whamp.mtp_n, whamp.mtp_e, whamp.mtp_e_from) == (3, 2.5, "documented prose")
    assert any("documented prose acceptance (~50% per position" in a for a in whamp.assumed)
    (tedivm,) = _rows("tedivm-2x3090-qwen36-27b-autoround.yaml").values()
    assert tedivm.mtp_n == 3 and tedivm.mtp_e is not None and abs(tedivm.mtp_e - 2.2) < 1e-9
    noong = _rows("club3090-noonghunna.yaml")
    sweep = noong["club3090-noong-27b-vllm-conc-agent-n1"]
    assert sweep.mtp_n == 3 and sweep.mtp_e is None and not sweep.mtp_e_from
    own = noong["club3090-noong-35b-llamacpp-q6kp-mtp3-2x3090-layersplit"]  # "narr 47% / code 83%"
    assert own.mtp_e is not None and abs(own.mtp_e - 2.41) < 1e-9 and not own.mtp_e_from
    lauri = _rows("club3090-laurimyllari.yaml")["club3090-laurimyllari-27b-vllm-longtext-4090"]
    assert not lauri.mtp_e_from
    reddit = _rows("reddit-localllama-2x3090-nop2p-qwen36-27b-swap.yaml")
    assert not any(r.mtp_e_from for r in reddit.values())
    # the shipped median does not read them: the documented-prose rows alone give the prior fallback
    assert fit.published_accept([whamp, tedivm]) == fit.model.PRIORS["mtp_accept"][0]
    assert fit.published_accept([whamp, lauri]) == fit.published_accept([lauri])
    assert whamp.id not in str(fit.published_mtp([whamp, lauri]))
    # the sensitivity runs move them and only them
    moved = fit.with_prose_accept([whamp, tedivm, lauri], 0.05)
    assert [r.mtp_e for r in moved] == [whamp.mtp_e + 0.15, tedivm.mtp_e + 0.15, lauri.mtp_e]
    assert [r.mtp_e for r in fit.with_prose_accept([whamp, lauri], None)] == [None, lauri.mtp_e]


def test_nvfp4_checkpoints_with_fp8_attention_keep_their_fp4_tensors() -> None:
    """nvidia's NVFP4 checkpoints (the composes the paulp83 rows name): FP4 FFN / expert FFNs, FP8
    attention and linear attention. The dense 27B's FFN stays FP4 (qwenfit's nvfp4), the rest FP8."""
    rows = _rows("club3090-paulp83.yaml")
    dense = rows["club3090-paulp83-27b-vllm-nvfp4-mtp-2x5090"]
    single, dual = (
        rows["club3090-paulp83-35b-vllm-nvfp4-single-5090"],
        rows["club3090-paulp83-35b-vllm-nvfp4-dual-2x5090"],
    )
    assert single.dense_gpu == dual.dense_gpu and single.expert_gpu == dual.expert_gpu  # one checkpoint
    for r in (dense, single, dual):
        assert any("nvfp4's FP4 tensors" in a for a in r.assumed), r.id
    spec = qwenfit.load("Qwen3.6-27B")
    plain = {e.name: e for e in qwenfit.weights(spec, "nvfp4").tensors}
    composed = features._weights(spec, "nvfp4", "FP8-static attention")
    ffn = [e for e in composed.tensors if str(plain[e.name].type).startswith("nvfp4")]
    assert ffn and all(e.type == plain[e.name].type for e in ffn)  # FP4 FFN kept, not read as FP8
    rest = [e for e in composed.tensors if e.component == "text" and e not in ffn and e.role != "embed"]
    assert any(str(e.type).startswith("fp8") for e in rest)
    assert sum(e.bytes for e in composed.tensors) < 0.8 * sum(e.bytes for e in plain.values())


def test_concurrency_sweep_is_n_times_the_median_stream() -> None:
    """club-3090's sweep reports N x the median per-stream decode rate (concurrency_probe.py); the i-th
    stream admitted waits for a share of each later stream's prefill, so at N = 2 the figure is the sum
    of the first stream's rate (one prefill in its window) and the second's (none)."""
    from benchmarks.speed.fit import model

    rows = _rows("club3090-noonghunna.yaml")
    r = rows["club3090-noong-35b-vllm-conc-agent-n2"]
    assert r.batch == 2 and r.interleaved_prompt == 16384 and r.mtp_n == 0
    k = dict(model.CONSTANTS)
    t = model.step_time(r, k, 2, 1)
    pp = model.prefill_seconds(r, k, r.interleaved_prompt, 0.0)
    assert pp is not None and pp > 0.5  # a 16K prompt
    first, second = 256 / (256 * t + k["interleave"] * pp), 256 / (256 * t)
    assert abs(model.decode_tokens_per_s(r, k) - (first + second)) < 1e-6 * (first + second)
    k["interleave"] = 0.0  # no prefill in any window: b x one stream's decode rate
    assert abs(model.decode_tokens_per_s(r, k) - 2 / t) < 1e-6 * (2 / t)


def test_a_stated_memory_overclock_scales_the_bandwidth() -> None:
    """adrienbrault's RTX 5090 runs its memory at 16,051 vs 14,001 MHz: bandwidth = bus width x data rate."""
    rows = _rows("adrienbrault-qwen36-27b-rtx5090.yaml")
    stock = features.hardware_catalog()["rtx-5090"].bandwidth_gbps
    for row in rows.values():
        assert abs(row.bw_gbps - stock * 16051 / 14001) < 0.01 * stock
        assert any("memory overclock" in a for a in row.assumed)
    plain = _rows("jdkruzr-qwen36-27b-5060ti-bench.yaml")["jdkruzr-2x3090-36-27b-q8-llamacpp-tp2-d1k"]
    assert plain.bw_gbps == features.hardware_catalog()["rtx-3090"].bandwidth_gbps


def test_rows_of_settings_qwenfit_cannot_be_asked_about_are_listed_not_scored() -> None:
    """llama.cpp -sm tensor (qwenfit's llama.cpp engine splits by layer or not at all) and Ollama's CGO
    engine (before v0.30; qwenfit's ollama engine is Ollama >= 0.30) are neither fitted nor scored,
    with their reason; the same source's other rows are scored."""
    jd = _rows("jdkruzr-qwen36-27b-5060ti-bench.yaml")
    tensor = jd["jdkruzr-4x5060ti-36-27b-q8-llamacpp-tp4-d1k"]
    assert tensor.skip_decode == features.LLAMA_SM_TENSOR_SKIP and not fit.decode_target(tensor)
    assert fit.decode_target(jd["jdkruzr-4x5060ti-36-27b-fp8-vllm-tp4-d255k"])
    tian = _rows("tianchengwu-qwen35-27b-rtx4090.yaml")
    ollama = [r for r in tian.values() if r.family == "ollama"]
    assert ollama and all(r.runner == "cgo" and r.skip_decode == features.OLLAMA_CGO_SKIP for r in ollama)
    assert any(fit.decode_target(r) for r in tian.values() if r.family == "llama.cpp")
    scored = fit.with_listed(list(tian.values()), features.OLLAMA_CGO_SKIP)  # its sensitivity run
    assert all(fit.decode_target(r) for r in scored if r.family == "ollama" and r.decode is not None)


def test_mlx_off_apple_rows_are_listed_not_scored() -> None:
    """Ollama's MLX engine on an RTX 5090 (MLX's CUDA backend) is no engine qwenfit plans (its mlx engine is
    Apple-only, its ollama engine the GGML runner): listed with the reason; Ollama's MLX engine on a Mac is
    scored."""
    pr = _rows("edata-ollama-pr14789-dhiltgen-rtx5090.yaml")
    assert pr and all(r.skip_decode == features.MLX_OFF_APPLE_SKIP == r.skip_prefill for r in pr.values())
    mac = _rows("ollama-blog-mlx-m5max.yaml")
    assert any(r.backend == "mlx" and fit.decode_target(r) for r in mac.values())


def test_ik_llama_rows_are_listed_not_scored() -> None:
    """ik_llama.cpp is no qwenfit engine (`--engine ik_llama.cpp`, its `-fmoe` flag and its IQ4_KSS quant
    are all rejected): its rows, catalog or calibration, are neither fitted nor scored; the report's
    sensitivity run fits and scores them as llama.cpp; the same source's llama.cpp rows are scored."""
    from qwenfit.cli import main

    for argv in (
        ["check", "27B", "--engine", "ik_llama.cpp", "--vram", "24"],
        ["check", "397B-A17B", "--quant", "IQ4_KSS", "--vram", "96", "--ram", "768"],
        ["check", "--", "llama-server", "-m", "x.gguf", "-fmoe"],
    ):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's own rejection
            code = int(e.code or 0)
        assert code == 2, argv
    noong = _rows("club3090-noonghunna.yaml")
    ik = [r for r in noong.values() if r.engine == "ik_llama.cpp"]
    assert ik and all(r.skip_decode == features.IK_LLAMA_SKIP and not fit.decode_target(r) for r in ik)
    assert any(fit.decode_target(r) for r in noong.values() if r.engine == "llama.cpp")
    loft = _rows("loftllc-qwen35-397b-hybrid.yaml")
    assert loft and all(r.skip_decode == features.IK_LLAMA_SKIP for r in loft.values())
    scored = fit.with_listed(list(loft.values()), features.IK_LLAMA_SKIP)
    assert all(fit.decode_target(r) for r in scored)


def test_the_readmes_counts_are_generated_from_the_files() -> None:
    from benchmarks.speed.measurements import counts

    assert counts.section() in (MEASUREMENTS / "README.md").read_text(), (
        "run python -m benchmarks.speed.measurements.counts --write"
    )


def test_bf16_weights_on_vulkan_are_measured_by_more_than_one_source() -> None:
    """bf16_eta.llama.cpp/vulkan: with one source (kyuz0) its rows fell to the prior 1.0 when held out
    (+136..+166 %); each of these sources' BF16 Vulkan rows is now predicted from the others'."""
    sources = set()
    for path in sorted(MEASUREMENTS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for rec in doc["records"]:
            if rec.get("quant") == "BF16" and rec["backend"] == "vulkan" and rec["engine"] == "llama.cpp":
                assert rec["decode_tokens_per_s"] is not None, rec["id"]
                sources.add(doc["source"]["id"])
    assert sources == {
        "gisenberg-local-model-eval-rtxpro6000",
        "jingkaihe-skills-strix-halo-bf16",
        "kyuz0-strix-halo-toolboxes",
    }


def test_a_figure_read_from_a_published_range_is_listed_as_assumed() -> None:
    """jingkaihe publishes "about 10 to 11 tok/s": the row's 10.5 is the midpoint, and the report's
    assumptions for the row say so; a verbatim figure carries no such note."""
    row = _rows("jingkaihe-skills-strix-halo-bf16.yaml")["jingkaihe-qwen35-35b-a3b-bf16-vulkan-radv"]
    assert row.decode == 10.5 and row.quant == "BF16" and row.cell == "llama.cpp/vulkan"
    assert any(a.startswith("assumed_decode_tokens_per_s: 10.5") for a in row.assumed)
    kyuz0 = _rows("kyuz0-strix-halo-toolboxes.yaml")["kyuz0-qwen36-35b-a3b-bf16-vulkan-d0"]
    assert kyuz0.decode == 10.68 and not any("assumed_decode_tokens_per_s" in a for a in kyuz0.assumed)


def test_the_shipped_mtp_acceptance_is_the_published_median_not_a_speed_fit() -> None:
    """mtp_accept is set from what rows publish (fit.published_accept): each row's tokens per cycle read
    as the geometric per-position rate of its draft count, the median taken; speed does not move it."""
    import statistics

    from qwenfit.core.fit import speed, speed_fitted

    for n, a in ((1, 0.9), (3, 0.8), (4, 0.55)):
        assert abs(fit.geometric_accept(n, speed.mtp_tokens_per_cycle(n, a)) - a) < 1e-9
    assert "mtp_accept" not in fit.free_names()
    rows = list(_rows("kyuz0-strix-halo-toolboxes.yaml").values())
    published = [r for r in rows if r.mtp_n and r.mtp_e is not None and fit.decode_target(r)]
    assert len(published) >= 4
    expect = statistics.median(fit.geometric_accept(r.mtp_n, r.mtp_e) for r in published)  # type: ignore[arg-type]
    assert fit.published_accept(rows) == expect
    # a row's speed does not enter: doubling every measured decode leaves it unchanged
    faster = [dataclasses.replace(r, decode=(r.decode or 0) * 2) for r in rows]
    assert fit.published_accept(faster) == expect
    assert fit.published_accept([]) == fit.model.PRIORS["mtp_accept"][0]
    # the shipped constant is the statistic of every scored row (python -m benchmarks.speed.fit writes it)
    everything = features.load_rows()
    shipped = speed_fitted.CONSTANTS["mtp_accept"]
    assert abs(shipped - fit.published_accept(everything)) < 1e-4  # written rounded


def test_vllm_release_regression_is_flagged_and_confidential_computing_is_listed() -> None:
    """vllm-project/vllm#57680: one H100 NVL, three stock vLLM releases, the same flags; the issue files
    0.29.0's figures as that release's regression (flagged); the GPU runs in confidential-computing mode
    inside an SEV-SNP VM, a setting qwenfit has no input for, so 0.24.0 and 0.26.0 are listed, not scored
    (features.CONFIDENTIAL_SKIP); c=12 is the 12-stream aggregate."""
    rows = _rows("vllm-issue57680-yeighta-h100nvl.yaml")
    for rid, row in rows.items():
        assert row.hw_id == "h100-nvl" and row.family == "vllm" and row.mtp_n == 0
        assert not fit.decode_target(row), rid
        assert row.skip_decode == features.CONFIDENTIAL_SKIP == row.skip_prefill  # 0.29.0: flagged as well
    # the reason is the hardware text, not the source: the same record without CC mode is scored
    doc = yaml.safe_load((MEASUREMENTS / "vllm-issue57680-yeighta-h100nvl.yaml").read_text())
    rec = dict(doc["records"][0], hardware="1x H100 NVL (SM90), no MIG, TP=1, PP=1")
    assert "v0240" in rec["id"] and fit.decode_target(features.build_row(rec, doc["source"]))
    c12 = rows["vllm57680-h100nvl-36-35b-fp8-v0260-c12"]
    assert c12.batch == 12 and c12.decode == 1295.0  # aggregate, not 12 x a per-stream figure
    assert rows["vllm57680-h100nvl-36-35b-fp8-v0260-c1"].decode == 148.3
    doc = yaml.safe_load((MEASUREMENTS / "vllm-issue57680-yeighta-h100nvl.yaml").read_text())
    assert {rec["engine_version"].split()[0] for rec in doc["records"]} == {"0.24.0", "0.26.0", "0.29.0"}
