"""Weight bytes per rank for quantized checkpoints: qwenfit's rule against what vLLM 0.33.0 allocates
(tests/fixtures/vllm/rank_weights_quant.json, written by scripts/vllm_quant_rank_weights.py: vLLM's own model
classes built full-size on the meta device with a simulated parallel state and a published-style
quantization_config, every parameter counted).

* ``test_rule``: :func:`qwenfit.core.engines.vllm.quant_weights.vllm_quant_rank_weight_bytes` reproduces every
  measured
  rank to the byte.
* ``test_buffers``: a quantization_config changes no buffer (rotary caches, attention scales, expert maps).
* ``test_refusals``: the formats vLLM refuses outright raise :class:`EngineRefusal` with vLLM's message.

No vLLM import: everything comes from the fixture.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

import qwenfit
from qwenfit.core.engines.vllm.quant_weights import (
    VLLM_QUANT_FORMATS,
    vllm_quant_rank_weight_bytes,
)
from qwenfit.core.engines.vllm.weights import vllm_rank_buffer_bytes
from qwenfit.errors import EngineRefusal

FIXTURE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "vllm" / "rank_weights_quant.json").read_text()
)
# published Qwen3.6 NVFP4 exports (NVIDIA's MIXED_PRECISION ones, sakamakismile's all-linear ModelOpt NVFP4),
# measured the same way into their own file (scripts/vllm_quant_rank_weights.py --models 'Qwen3.6-*'
# --formats 'nvfp4-modelopt-[am]*' --out ...)
MIXED = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "vllm" / "rank_weights_quant_qwen36.json").read_text()
)
ROWS = [dict(zip(FIXTURE["columns"], r, strict=True)) for r in FIXTURE["rows"]]
ROWS += [dict(zip(MIXED["columns"], r, strict=True)) for r in MIXED["rows"]]
GROUPS = sorted({(r["model"], r["format"]) for r in ROWS})


# AutoRound with a quantized MTP layer: its main model is the measured 'autoround'; the drafter (not built by
# the script) is priced by the formula, pinned below
FORMULA_ONLY = {"autoround-mtp"}


@cache
def _spec(model: str):
    return qwenfit.load(model)


def test_fixture():
    assert FIXTURE["vllm_version"] == MIXED["vllm_version"] == "0.33.0"
    assert MIXED["columns"] == FIXTURE["columns"]
    mixed = [dict(zip(MIXED["columns"], r, strict=True)) for r in MIXED["rows"]]
    assert {r["model"] for r in mixed} == {"Qwen3.6-27B", "Qwen3.6-35B-A3B"}
    assert {r["format"] for r in mixed} == {"nvfp4-modelopt-mixed", "nvfp4-modelopt-all"}
    models = {r["model"] for r in ROWS}
    assert models >= {"Qwen3.5-9B", "Qwen3.5-27B", "Qwen3.5-35B-A3B", "Qwen3.5-122B-A10B", "Qwen3.6-27B",
                      "Qwen3.6-35B-A3B", "Qwen3-Next-80B-A3B"}  # fmt: skip
    measured = {r["format"] for r in ROWS} | {r["format"] for r in FIXTURE["rejected"]}
    assert measured == set(VLLM_QUANT_FORMATS) - FORMULA_ONLY
    for name, f in {**FIXTURE["formats"], **MIXED["formats"]}.items():
        assert f["quantization_config"], name
        assert f["source"] or name.startswith("bnb"), name


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: "-".join(g))
def test_rule(group):
    """Every measured rank, to the byte."""
    model, fmt = group
    spec = _spec(model)
    for r in (r for r in ROWS if (r["model"], r["format"]) == group):
        got = vllm_quant_rank_weight_bytes(
            spec,
            fmt,
            tp=r["tp"],
            stage=range(r["layer_start"], r["layer_end"]),
            dp=r["dp"],
            expert_parallel=r["ep"],
            ep_rank=r["dp_rank"] * r["tp"] + r["tp_rank"],
            gpu=r["gpu"],
        )
        assert got == r["param_bytes"], (r, got - r["param_bytes"])


def _buffers(spec, *, stage: range, first: bool, tp: int, dp: int, ep: bool) -> int:
    """The BF16 ranks' buffers (tests/engines/test_vllm_rank_weights.py): rotary cache, the vision tower's on
    the first stage, 4 float32 scales per attention layer, an int32 expert map per MoE layer with EP."""
    t = spec.text
    total = t.max_position_embeddings * int(t.head_dim * t.partial_rotary_factor) * 2
    if spec.vision is not None and first:
        total += 8192 * (spec.vision.hidden_size // spec.vision.num_heads // 2) * 2
    total += 16 * sum(1 for i in stage if t.layer_types[i] == "full_attention")
    if t.num_experts and ep and tp * dp > 1:
        total += 4 * t.num_experts * len(stage)
    return total


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: "-".join(g))
def test_buffers(group):
    spec = _spec(group[0])
    for r in (r for r in ROWS if (r["model"], r["format"]) == group):
        stage = range(r["layer_start"], r["layer_end"])
        want = _buffers(spec, stage=stage, first=r["pp_rank"] == 0, tp=r["tp"], dp=r["dp"], ep=r["ep"])
        assert r["buffer_bytes"] == want, r


def test_refusals():
    """vLLM refuses GPTQ desc_act=True and has no bitsandbytes method: the rule says so with vLLM's words."""
    refused = {r["format"] for r in FIXTURE["rejected"] if VLLM_QUANT_FORMATS[r["format"]].refused}
    assert refused == {n for n, f in VLLM_QUANT_FORMATS.items() if f.refused}
    for r in FIXTURE["rejected"]:
        f = VLLM_QUANT_FORMATS[r["format"]]
        if not f.refused:
            continue
        assert f.refused in r["vllm_error"], r
        with pytest.raises(EngineRefusal):
            vllm_quant_rank_weight_bytes(_spec(r["model"]), r["format"], tp=r["tp"])


def test_tp_refusals():
    """Layouts vLLM refuses (a quantized partition narrower than the group): the rule refuses them too."""
    for r in FIXTURE["rejected"]:
        if VLLM_QUANT_FORMATS[r["format"]].refused:
            continue
        with pytest.raises(EngineRefusal):
            vllm_quant_rank_weight_bytes(
                _spec(r["model"]), r["format"], tp=r["tp"], dp=r["dp"], expert_parallel=r["ep"], gpu=r["gpu"]
            )


def test_same_bytes_on_every_gpu():
    """Created bytes do not depend on the GPU generation (SM86, SM90, SM100, SM120), only the kernels do --
    except ModelOpt NVFP4 experts (any recipe) under EP, whose FlashInfer backends (SM100+) size
    the input scales by the global expert count."""
    by: dict[tuple, set[int]] = {}
    for r in ROWS:
        if r["format"].startswith("nvfp4-modelopt") and r["ep"]:
            continue
        key = (
            r["model"],
            r["format"],
            r["tp"],
            r["pp"],
            r["dp"],
            r["ep"],
            r["pp_rank"],
            r["tp_rank"],
            r["dp_rank"],
        )
        by.setdefault(key, set()).add(r["param_bytes"])
    assert all(len(v) == 1 for v in by.values())
    assert {r["gpu"] for r in ROWS} >= {"H100", "B200", "RTX5090", "RTX3090"}


def test_modelopt_mixed_on_the_field_log():  # the measured rule (test_rule) against the GB10 log
    """NVIDIA's MIXED_PRECISION Qwen3.6-27B (FFN + lm_head NVFP4, attention / linear attention FP8): the GB10
    log (tests/fixtures/field_logs/vllm/vllm-qwen36-27b-nvfp4-modelopt-gb10-v0231.yaml) prints "Model
    loading took 19.78 GiB"; the BF16 records' load figure sits 0.1-0.2 GiB above the parameters (allocator
    and kernel workspaces), so the parameters are within 1.5 % below it. lm_head kept BF16 (+1.70 GiB) or the
    experts-only recipe (28.0 GiB) would not be."""
    spec = _spec("Qwen3.6-27B")
    got = vllm_quant_rank_weight_bytes(spec, "nvfp4-modelopt-mixed", gpu=121) / 2**30
    assert 0 < 19.78 - got < 0.015 * 19.78
    assert vllm_quant_rank_weight_bytes(spec, "nvfp4-modelopt", gpu=121) / 2**30 > 27


def test_modelopt_mixed_parts():
    """The mixed format is the ModelOpt NVFP4 and FP8 methods' shapes (both measured above) applied per
    module: dense MLP NVFP4 as 'nvfp4-modelopt'; attention and linear-attention projections FP8; lm_head
    NVFP4 (uint8 [V/tp, H/2] + fp8 [V/tp, H/16] + two f32 scalars)."""
    spec = _spec("Qwen3.6-27B")
    t = spec.text
    mixed = vllm_quant_rank_weight_bytes(spec, "nvfp4-modelopt-mixed", gpu=90)
    mlp_only = vllm_quant_rank_weight_bytes(spec, "nvfp4-modelopt", gpu=90)
    v = -(-t.vocab_size // 64) * 64
    h = t.hidden_size
    lm_saving = v * h * 2 - (v * h // 2 + v * h // 16 + 8)
    # attention + GDN projections: BF16 -> FP8 (1 B per weight, f32 weight/input scale per shard)
    attn = t.num_attention_heads * t.head_dim
    kv = t.num_key_value_heads * t.head_dim
    q_rows = t.q_proj_rows
    n_full = sum(1 for x in t.layer_types if x == "full_attention")
    n_gdn = t.num_hidden_layers - n_full
    kd, vd = t.linear_key_dim, t.linear_value_dim
    attn_params = n_full * (h * (q_rows + 2 * kv) + attn * h)
    gdn_params = n_gdn * (h * (2 * kd + 2 * vd) + vd * h)
    scales = n_full * (3 + 1) * 8 + n_gdn * (4 + 1) * 8
    fp8_saving = attn_params + gdn_params - scales
    assert mlp_only - mixed == lm_saving + fp8_saving
    with pytest.raises(ValueError, match="unknown vLLM checkpoint format"):
        vllm_quant_rank_weight_bytes(spec, "nvfp4-modelopt-mix")


def test_autoround_mtp_drafter():
    """The drafter's decoder layer takes the checkpoint's quant config (models/qwen3_5_mtp.py:110-126): with
    'autoround-mtp' (Lorbus / Intel Qwen3.6-27B-int4-AutoRound: mtp.layers quantized, mtp.fc BF16) its
    q/k/v, o, gate/up and down are GPTQ-shaped (qweight [in/8, out], qzeros [in/128, out/8], scales
    [in/128, out]); 'autoround' keeps the published BF16 layer (nchapman's 35B-A3B)."""
    from qwenfit.core.engines.vllm.quant_weights import vllm_quant_drafter_weight_bytes

    spec = _spec("Qwen3.6-27B")
    t = spec.text
    h, tp, g = t.hidden_size, 2, 128

    def gptq(inp: int, out: int) -> int:
        return 4 * (inp // 8) * out + 4 * (inp // g) * (out // 8) + 2 * (inp // g) * out

    kv = t.num_key_value_heads * t.head_dim // tp
    attn = t.num_attention_heads * t.head_dim // tp
    linears = [(h, t.q_proj_rows // tp + 2 * kv), (attn, h), (h, 2 * t.intermediate_size // tp),
               (t.intermediate_size // tp, h)]  # fmt: skip
    bf16 = vllm_quant_drafter_weight_bytes(spec, "autoround", tp=tp)
    mtp = vllm_quant_drafter_weight_bytes(spec, "autoround-mtp", tp=tp)
    assert bf16 - mtp == sum(2 * i * o - gptq(i, o) for i, o in linears)
    assert round((bf16 - mtp) / 2**30, 3) == 0.257  # what the club's TP=2 MTP runs gain
    for tp in (1, 2, 4):  # the main model is the measured 'autoround'
        assert vllm_quant_rank_weight_bytes(spec, "autoround-mtp", tp=tp) == vllm_quant_rank_weight_bytes(
            spec, "autoround", tp=tp
        )


def test_modelopt_all_on_the_field_log():
    """sakamakismile/Qwen3.6-27B-Text-NVFP4-MTP (ModelOpt NVFP4, every text linear): 'Model loading took
    17.62 GiB' text-only (tests/fixtures/field_logs/vllm/vllm-qwen36-27b-nvfp4-wsl-eager-v0200.yaml): the
    parameters sit 0.1-0.2 GiB below the load figure, as on the BF16 records."""
    got = vllm_quant_rank_weight_bytes(_spec("Qwen3.6-27B"), "nvfp4-modelopt-all", gpu=120, vision=False)
    assert 0 < 17.62 - got / 2**30 < 0.015 * 17.62


def test_public_nvfp4_of_qwen36_is_nvidias_export():
    """qwenfit's "nvfp4" on a Qwen3.6 model names NVIDIA's own export for vLLM (MIXED_PRECISION); on
    Qwen3.5 the experts-only ModelOpt recipe. Through qwenfit.estimate, the published configurations that
    started (the RTX 5090 logs: 27B NVFP4 text-only at 32K / utilization 0.80, 35B-A3B at 131K / 0.92) are
    not predicted to refuse (the experts-only recipe made the 27B one refuse: 28 GiB of weights)."""
    runs = (("Qwen3.6-27B", 32768, 0.80, False), ("Qwen3.6-35B-A3B", 131072, 0.92, True))
    for model, ctx, util, vision in runs:
        e = qwenfit.estimate(model, "nvfp4", engine="vllm", hardware="rtx-5090", context=ctx, kv_cache="fp8",
                             gpu_memory_utilization=util, vision=vision)  # fmt: skip
        weights = next(t for t in e.terms if t.name == "weights")
        want = vllm_quant_rank_weight_bytes(_spec(model), "nvfp4-modelopt-mixed", vision=vision)
        assert weights.bytes == want + vllm_rank_buffer_bytes(_spec(model), vision=vision)
        assert weights.exact and "MIXED_PRECISION" in weights.detail
        assert not any("would refuse" in n for n in e.notes), e.notes
    e = qwenfit.estimate("Qwen3.5-35B-A3B", "nvfp4", engine="vllm", hardware="h100-sxm", context=32768)
    weights = next(t for t in e.terms if t.name == "weights")
    want = vllm_quant_rank_weight_bytes(_spec("Qwen3.5-35B-A3B"), "nvfp4-modelopt", vision=False)
    want += vllm_rank_buffer_bytes(_spec("Qwen3.5-35B-A3B"), vision=False)
    assert weights.bytes == want


def test_public_autoround_of_qwen36_27b_quantizes_the_drafter():
    """qwenfit's "autoround" on Qwen3.6-27B is Intel's / Lorbus' int4 export (data/artifacts): with MTP the
    drafter's layer is INT4 too; on Qwen3.6-35B-A3B (nchapman's export, measured) it stays BF16. On RTX 3090s
    the rank is as Marlin leaves it (symmetric zero points freed)."""
    from qwenfit.core.engines.vllm.quant_weights import vllm_quant_drafter_weight_bytes

    for model, drafter in (("Qwen3.6-27B", "autoround-mtp"), ("Qwen3.6-35B-A3B", "autoround")):
        spec = _spec(model)
        e = qwenfit.estimate(model, "autoround", engine="vllm", hardware="2x rtx-3090", tp=2, n_gpus=2,
                             context=65536, mtp=True, speculative_tokens=3, vision=False)  # fmt: skip
        weights = next(t for t in e.terms if t.name == "weights")
        main = vllm_quant_rank_weight_bytes(spec, "autoround", tp=2, vision=False, loaded_sm8x=True)
        buffers = vllm_rank_buffer_bytes(spec, vision=False)
        mtp = vllm_quant_drafter_weight_bytes(spec, drafter, tp=2, loaded_sm8x=True)
        assert weights.bytes == main + mtp + buffers
    assert vllm_quant_drafter_weight_bytes(_spec("Qwen3.6-35B-A3B"), "autoround", tp=2) > 2**30 // 2


def test_marlin_frees_symmetric_gptq_zero_points_below_sm89():
    """On compute capability < 8.9 every GPTQ / AutoRound linear runs on Marlin, which replaces a symmetric
    checkpoint's qzeros by an empty tensor (kernels/linear/mixed_precision/marlin.py:171): the loaded rank is
    the created rank less in//128 x out/8 int32 per quantized linear (no Marlin padding on these shapes)."""
    spec = _spec("Qwen3.6-27B")
    f = VLLM_QUANT_FORMATS["autoround"]
    for tp in (1, 2, 4):
        created = vllm_quant_rank_weight_bytes(spec, f, tp=tp)
        loaded = vllm_quant_rank_weight_bytes(spec, f, tp=tp, loaded_sm8x=True)
        t = spec.text
        h = t.hidden_size
        kd, vd = t.linear_key_dim, t.linear_value_dim
        q = t.q_proj_rows
        kv = max(1, t.num_key_value_heads // tp) * t.head_dim
        per_gdn = [((2 * kd + 2 * vd) // tp, h), (h, vd // tp)]  # in_proj_qkvz, out_proj
        per_attn = [(q // tp + 2 * kv, h), (h, t.num_attention_heads * t.head_dim // tp)]
        per_mlp = [(2 * t.intermediate_size // tp, h), (h, t.intermediate_size // tp)]
        zeros = 0
        for kind in t.layer_types:
            for out, inp in (per_gdn if kind == "linear_attention" else per_attn) + per_mlp:
                zeros += 4 * (inp // 128) * (out // 8)
        assert created - loaded == zeros
    # a format that keeps its zero points (AWQ) or has none (compressed-tensors W4A16) is unchanged
    for name in ("awq", "w4a16"):
        assert vllm_quant_rank_weight_bytes(spec, name, tp=2) == vllm_quant_rank_weight_bytes(
            spec, name, tp=2, loaded_sm8x=True
        )
