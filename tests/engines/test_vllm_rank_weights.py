"""Weight bytes per rank: qwenfit's ``rank_weights`` against what vLLM 0.33.0 allocates on each rank
(tests/fixtures/vllm/rank_weights.json, written by scripts/vllm_rank_weights.py: vLLM's own model classes
built full-size on the meta device with a simulated parallel state, every parameter counted).

Per configuration (model x quant x simulated GPU x TP x PP x DP x expert parallel):

* ``test_vllm_rule``: qwenfit's rule (:mod:`qwenfit.core.engines.vllm.weights`, vLLM file:line for each part
  there and in the fixture's ``sources``) reproduces every measured rank to the byte.
* ``test_estimate_uses_the_rule``: ``qwenfit.estimate(engine="vllm")`` reports those bytes.
* the MTP drafter (speculative decoding only) and the buffers get the same check.

No vLLM import: everything comes from the fixture.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from pathlib import Path

import pytest

import qwenfit
from qwenfit.core.engines.vllm.pool import pp_partitions
from qwenfit.core.engines.vllm.weights import (
    marlin_padded_nk,
    vllm_drafter_weight_bytes,
    vllm_rank_buffer_bytes,
    vllm_rank_weight_bytes,
)
from qwenfit.core.formats.gpu import gpu_weights

FIXTURE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "vllm" / "rank_weights.json").read_text()
)
ROWS = [dict(zip(FIXTURE["columns"], r, strict=True)) for r in FIXTURE["rows"]]
MTP_ROWS = [dict(zip(FIXTURE["mtp_columns"], r, strict=True)) for r in FIXTURE["mtp_drafter"]]

# configuration -> {pp_rank: [rows of that stage]}
CASES: dict[tuple, dict[int, list[dict]]] = {}
for _r in ROWS:
    _key = (_r["model"], _r["quant"], _r["gpu"], _r["tp"], _r["pp"], _r["dp"], _r["ep"])
    CASES.setdefault(_key, {}).setdefault(_r["pp_rank"], []).append(_r)


@cache
def _spec(model: str):
    return qwenfit.load(model)


@cache
def _weights(model: str, quant: str, mtp: bool = False):
    """The checkpoint as vLLM loads it by default: the vision tower is built (unless
    --language-model-only), mtp.* is dropped by the main model (``mtp=True``: for the drafter)."""
    spec = _spec(model)
    return gpu_weights(spec, quant, mtp=mtp, vision=spec.vision is not None)


def as_allocated(w):
    """``w`` with the F32 tensors vLLM allocates in the model dtype (the GDN gated norm) as BF16."""
    return dataclasses.replace(
        w,
        tensors=tuple(
            dataclasses.replace(e, type="BF16", bytes=e.bytes // 2)
            if e.role == "gdn_norm" and e.type == "F32"
            else e
            for e in w.tensors
        ),
    )


# --------------------------------------------------------------------------------------------------
# the library's rule (qwenfit.core.engines.vllm.weights), as the tests call it


def vllm_rank_bytes(spec, w, *, tp, pp, pp_rank, dp=1, ep=False, gpu="H100", ep_rank=0) -> int:
    stage = pp_partitions(spec.text.num_hidden_layers, pp)[pp_rank]
    return vllm_rank_weight_bytes(spec, w, tp=tp, stage=stage, dp=dp, expert_parallel=ep, sm100=gpu == "B200",
                                  ep_rank=ep_rank)  # fmt: skip


def vllm_drafter_bytes(spec, w, *, tp, pp, dp=1, ep=False, gpu="H100") -> int:
    return vllm_drafter_weight_bytes(spec, w, tp=tp, pp=pp, dp=dp, expert_parallel=ep, sm100=gpu == "B200")


# --------------------------------------------------------------------------------------------------


def test_fixture():
    assert FIXTURE["vllm_version"] == "0.33.0"
    assert {r["model"] for r in ROWS} >= {
        "Qwen3.5-9B",
        "Qwen3.5-27B",
        "Qwen3.5-35B-A3B",
        "Qwen3.5-122B-A10B",
        "Qwen3.5-397B-A17B",
        "Qwen3-Next-80B-A3B",
    }
    assert {r["quant"] for r in ROWS} == {"bf16", "fp8"} and {r["gpu"] for r in ROWS} == {"H100", "B200"}
    for stages in CASES.values():  # the ranks of one stage hold the same bytes (no expert remainder here)
        for rows in stages.values():
            assert len({r["param_bytes"] for r in rows}) == 1
    # BF16: vLLM accepts TP 1-8 for every model; block FP8 refuses per-rank widths under 128
    assert not [r for r in FIXTURE["rejected"] if r["quant"] == "bf16"]
    assert all(
        "block_k = 128" in r["vllm_error"] or "No FP8 MoE backend" in r["vllm_error"]
        for r in FIXTURE["rejected"]
    )


GROUPS = sorted({c[:3] for c in CASES})  # (model, quant, gpu)


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: "-".join(g))
def test_vllm_rule(group):
    """Every measured rank, to the byte."""
    model, quant, gpu = group
    spec, w = _spec(model), _weights(model, quant)
    for case in (c for c in CASES if c[:3] == group):
        _, _, _, tp, pp, dp, ep = case
        for pp_rank, rows in CASES[case].items():
            for r in rows:
                got = vllm_rank_bytes(
                    spec,
                    w,
                    tp=tp,
                    pp=pp,
                    pp_rank=pp_rank,
                    dp=dp,
                    ep=ep,
                    gpu=gpu,
                    ep_rank=r["dp_rank"] * tp + r["tp_rank"],
                )
                assert got == r["param_bytes"], (
                    case,
                    pp_rank,
                    r["tp_rank"],
                    r["dp_rank"],
                    got - r["param_bytes"],
                )


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: "-".join(g))
def test_vllm_buffers(group):
    spec = _spec(group[0])
    for case in (c for c in CASES if c[:3] == group):
        _, _, _, tp, pp, dp, ep = case
        for pp_rank, rows in CASES[case].items():
            stage = pp_partitions(spec.text.num_hidden_layers, pp)[pp_rank]
            want = vllm_rank_buffer_bytes(spec, stage=stage, tp=tp, dp=dp, expert_parallel=ep)
            assert {r["buffer_bytes"] for r in rows} == {want}, (case, pp_rank)


@pytest.mark.parametrize("model", sorted({c[0] for c in CASES}))
def test_estimate_uses_the_rule(model):
    """qwenfit.estimate(engine="vllm") reports the fullest rank as vLLM allocates it (H100, PP 1 and 2)."""
    for case in (c for c in CASES if c[0] == model and c[1] == "bf16" and c[2] == "H100" and c[4] <= 2):
        _, quant, _, tp, pp, dp, ep = case
        if spec_heads_reject(model, tp):
            continue
        e = qwenfit.estimate(
            model, quant, engine="vllm", tp=tp, pp=pp, dp=dp, expert_parallel=ep, context=4096,
            vision=True,  # vLLM builds the vision tower unless --language-model-only
        )
        want = max(r["param_bytes"] + r["buffer_bytes"] for rows in CASES[case].values() for r in rows)
        assert e.term("weights") == want, case


def spec_heads_reject(model: str, tp: int) -> bool:
    from qwenfit.core.engines.vllm.pool import check_tp

    try:
        check_tp(_spec(model), tp)
    except ValueError:
        return True
    return False


def test_vision_tower_stage():
    """Model Runner V2 (the default) builds the vision tower on the first PP stage only, V1 on every stage."""
    for r in ROWS:
        if r["pp"] > 1 and r["pp_rank"] > 0:
            assert r["vision_bytes"] == 0
    v1 = FIXTURE["v1_runner_vision"]
    assert v1 and all(v["vision_bytes_per_stage"][0] == v["vision_bytes_per_stage"][1] > 0 for v in v1)


MTP_CASES = sorted({(r["model"], r["gpu"], r["tp"], r["pp"], r["dp"], r["ep"]) for r in MTP_ROWS})


def _mtp_row(case) -> dict:
    (row,) = [r for r in MTP_ROWS if (r["model"], r["gpu"], r["tp"], r["pp"], r["dp"], r["ep"]) == case]
    return row


@pytest.mark.parametrize("model", sorted({c[0] for c in MTP_CASES}))
def test_mtp_drafter_rule(model):
    spec, w = _spec(model), _weights(model, "bf16", mtp=True)
    for case in (c for c in MTP_CASES if c[0] == model):
        _, gpu, tp, pp, dp, ep = case
        assert (
            vllm_drafter_bytes(spec, w, tp=tp, pp=pp, dp=dp, ep=ep, gpu=gpu) == _mtp_row(case)["own_bytes"]
        ), case


def test_block_fp8_on_marlin_takes_group_scales_in_the_model_dtype():
    """Below compute capability 8.9 block FP8 linears run as weight-only Marlin
    (kernels/linear/scaled_mm/marlin.py:65-80, quantization/utils/marlin_utils_fp8.py:179-201): the f32
    128x128 scale grid becomes [k/128, n] in BF16. Qwen3.6-27B FP8 at TP2: +0.18 GiB per rank, the size of
    the gap between qwenfit's created bytes and the 14.68 GiB a 2x RTX 3090 log loaded (club-3090 #751)."""
    spec = _spec("Qwen3.6-27B")
    w = _weights("Qwen3.6-27B", "fp8", mtp=True)
    created = vllm_rank_weight_bytes(spec, w, tp=2) + vllm_drafter_weight_bytes(spec, w, tp=2)
    loaded = vllm_rank_weight_bytes(spec, w, tp=2, marlin_fp8=True) + vllm_drafter_weight_bytes(
        spec, w, tp=2, marlin_fp8=True
    )
    assert 0.17 < (loaded - created) / (1 << 30) < 0.18
    # BF16 checkpoints and FP8 experts are unchanged
    b = _weights("Qwen3.5-9B", "bf16")
    assert vllm_rank_weight_bytes(_spec("Qwen3.5-9B"), b, marlin_fp8=True) == vllm_rank_weight_bytes(
        _spec("Qwen3.5-9B"), b
    )
    assert marlin_padded_nk(96, 5120, 128) == (128, 5120)
    assert marlin_padded_nk(1024, 2048, 128) == (1024, 2048)
