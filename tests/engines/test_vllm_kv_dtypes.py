"""Every --kv-cache-dtype of vLLM 0.33.0 against vLLM's own classes (scripts/vllm_kv_dtypes.py ->
tests/fixtures/vllm/qwen35_kv_dtypes.json): which it accepts for Qwen3.5 / Qwen3-Next on which CUDA
generation and attention backend, the bytes of one token, and the KV pool qwenfit plans with each (exact)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import qwenfit
from qwenfit.core.engines.vllm.kv_dtypes import (
    KV_CACHE_DTYPES,
    REFUSED_KV_CACHE_DTYPES,
    kv_dtype_backend,
    kv_dtype_support,
)
from qwenfit.core.engines.vllm.pool import KERNEL_BLOCK_ALIGNMENT, plan_pool
from qwenfit.errors import SettingError

FIXTURE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "vllm" / "qwen35_kv_dtypes.json").read_text()
)
ROWS = [dict(zip(FIXTURE["columns"], row, strict=True)) for row in FIXTURE["rows"]]
SELECTION = FIXTURE["selection"]
CAPS = {c: tuple(int(x) for x in c.split(".")) for c in FIXTURE["capabilities"]}
LEN = FIXTURE["max_model_len"]
# accepted by vLLM's backend selection, yet not a working configuration for a GQA model (kv_dtypes.py)
MISMATCHED = {"nvfp4_ds_mla"}
CUDA_BACKENDS = ("FLASH_ATTN", "FLASHINFER", "TRITON_ATTN", "FLEX_ATTENTION", "TURBOQUANT")


def _plan(spec, r, kv=None):
    return plan_pool(
        spec,
        tp=r["tp"],
        max_model_len=LEN,
        kv_cache_dtype=kv or r["kv_cache_dtype"],
        prefix_caching=r["prefix_caching"],
        num_speculative_tokens=r["num_spec"],
        flashinfer_gdn_prefill=r["gdn_prefill"] == "flashinfer",
    )


def test_fixture_is_complete():
    assert FIXTURE["vllm_version"] == "0.33.0"
    models = {r["model"] for r in ROWS}
    assert len(models) == len(list((Path(qwenfit.__file__).parent.parent / "data" / "models").glob("*.json")))
    assert len(ROWS) == len(models) * 4 * len(FIXTURE["accepted"]) * 3 == 1980


def test_every_vllm_name_is_classified_once():
    names = FIXTURE["vllm_kv_cache_dtypes"]
    assert next(iter(KV_CACHE_DTYPES)) == "auto"
    assert sorted(names) == sorted([*KV_CACHE_DTYPES, *REFUSED_KV_CACHE_DTYPES])
    assert not set(KV_CACHE_DTYPES) & set(REFUSED_KV_CACHE_DTYPES)
    # vLLM accepts (on some GPU) exactly qwenfit's names, float16 aside (a bf16 model refuses it) and the
    # MLA layout vLLM's selector lets through on SM10x
    assert set(FIXTURE["accepted"]) == set(KV_CACHE_DTYPES) - {"float16"} | MISMATCHED


@pytest.mark.parametrize("model", sorted({r["model"] for r in ROWS}))
def test_every_row(model):
    spec = qwenfit.load(model)
    for r in (r for r in ROWS if r["model"] == model and r["kv_cache_dtype"] not in MISMATCHED):
        plan = _plan(spec, r)
        key = (r["tp"], r["kv_cache_dtype"], r["prefix_caching"], r["gdn_prefill"], r["num_spec"])
        assert plan.attn_bytes_per_token == r["attn_bytes_per_token"], key
        assert plan.mamba_page == r["mamba_page"], key
        assert plan.block_size == r["block_size"], key
        assert plan.page_bytes == r["page"], key
        assert plan.padding_pct == pytest.approx(r["padding_pct"], abs=1e-6), key
        if r["log_padding"] is not None:
            assert f"{plan.padding_pct:.2f}%" == r["log_padding"], key
        assert (list(plan.attn_groups), list(plan.mamba_groups)) == (r["attn_groups"], r["mamba_groups"]), key
        assert plan.bytes_per_block == r["bytes_per_block"], key
        assert plan.attn_blocks_per_request == r["attn_blocks_per_req"], key
        assert plan.mamba_blocks_per_request == r["mamba_blocks_per_req"], key
        assert plan.bytes_per_block * plan.blocks() == r["bytes_one_req"], key
        assert (40 << 30) // plan.bytes_per_block == r["num_blocks_40g"], key
        assert plan.max_concurrency(40 << 30) == pytest.approx(r["concurrency_40g"], rel=1e-12), key


def test_kv_dtype_never_changes_the_gdn_state():
    """The GDN state page is the same whatever the KV dtype (vLLM: mamba_ssm_cache_dtype only)."""
    by_key: dict[tuple, set[int]] = {}
    for r in ROWS:
        by_key.setdefault((r["model"], r["tp"], r["num_spec"]), set()).add(r["mamba_page"])
    assert all(len(v) == 1 for v in by_key.values())
    conv_ssm = {m: tuple(v) for m, v in FIXTURE["gdn_state_dtypes"].items()}
    assert (
        conv_ssm["Qwen3.5-9B"] == ("bfloat16", "float32")
        and conv_ssm["Qwen3-Next-80B-A3B"] == ("bfloat16",) * 2
    )


def test_mismatched_mla_layout_is_refused_and_would_be_priced_as_fp8():
    spec = qwenfit.load("9B")
    rows = [r for r in ROWS if r["kv_cache_dtype"] == "nvfp4_ds_mla"]
    fp8 = {
        (r["model"], r["tp"], r["prefix_caching"], r["num_spec"]): r
        for r in ROWS
        if r["kv_cache_dtype"] == "fp8"
    }
    for r in rows:
        want = fp8[(r["model"], r["tp"], r["prefix_caching"], r["num_spec"])]
        assert {k: v for k, v in r.items() if k != "kv_cache_dtype"} == {
            k: v for k, v in want.items() if k != "kv_cache_dtype"
        }
    assert SELECTION["nvfp4_ds_mla"]["10.0"]["backend"] == "FLASHINFER"
    assert SELECTION["nvfp4_ds_mla"]["10.0"]["bytes_per_kv_head_token"] == 512
    with pytest.raises(SettingError, match=r"nvfp4_ds_mla.*Accepted: auto, "):
        plan_pool(spec, max_model_len=LEN, kv_cache_dtype="nvfp4_ds_mla")


@pytest.mark.parametrize("name", FIXTURE["vllm_kv_cache_dtypes"])
def test_backend_per_gpu_generation(name):
    """qwenfit's backend for each capability is the one vLLM's CUDA selector picks; where vLLM refuses,
    qwenfit refuses (quoting vLLM's reason)."""
    for cap_s, got in SELECTION[name].items():
        cap = CAPS[cap_s]
        if "refused_by" in got or name in MISMATCHED:
            with pytest.raises(SettingError, match=name):
                kv_dtype_backend(name, cap, model_dtype="bfloat16")
            continue
        assert kv_dtype_backend(name, cap, model_dtype="bfloat16") == got["backend"], cap_s


def test_vllm_messages_quoted():
    for name in ("nvfp4", "nvfp4_4over6"):
        for cap_s, got in SELECTION[name].items():
            if got.get("refused_by") == "attention backend selection":
                with pytest.raises(SettingError) as e:
                    kv_dtype_backend(name, CAPS[cap_s])
                quoted = str(e.value).split("vLLM says: ")[1].split("...")[0]
                assert got["error"].startswith(quoted), cap_s
                assert "Accepted on compute capability" in str(e.value)
    for name in sorted(set(REFUSED_KV_CACHE_DTYPES) - MISMATCHED):
        assert all(g["refused_by"] == "attention backend selection" for g in SELECTION[name].values())
        for g in SELECTION[name].values():  # every CUDA backend says why: none lists the name
            assert all(f"{b}: [kv_cache_dtype not supported" in g["error"] for b in CUDA_BACKENDS), name
        with pytest.raises(SettingError, match=f"refuses --kv-cache-dtype {name} .*Accepted: auto, bfloat16"):
            plan_pool(qwenfit.load("27B"), max_model_len=LEN, kv_cache_dtype=name)
    triton = SELECTION["fp8_per_token_head"]["8.0"]
    assert triton["refused_by"] == "TritonAttentionImpl"
    with pytest.raises(SettingError) as e:
        kv_dtype_backend("fp8_per_token_head", (8, 6))
    tail = "native FP8 (fp8e4nv) requires SM89+. Re-run with --kv-cache-dtype bfloat16."
    assert tail in triton["error"] and tail in str(e.value)
    f16 = SELECTION["float16"]["9.0"]
    assert f16["refused_by"] == "VllmConfig"
    with pytest.raises(SettingError) as e:
        plan_pool(qwenfit.load("9B"), max_model_len=LEN, kv_cache_dtype="float16")
    assert f16["error"] in str(e.value)


@pytest.mark.parametrize("name", sorted(KV_CACHE_DTYPES))
def test_bytes_of_one_token_and_kernel_block(name):
    """Bytes per KV head per token (vLLM's customize_attention_spec) and the smallest kernel block (16 on
    every backend selected: the hybrid alignment pool.py uses)."""
    k = KV_CACHE_DTYPES[name]
    for cap_s, got in SELECTION[name].items():
        if "bytes_per_kv_head_token" not in got:
            continue
        assert k.slot_bytes(256, 2) == got["bytes_per_kv_head_token"], cap_s
        assert got["min_kernel_block"] == KERNEL_BLOCK_ALIGNMENT, cap_s


def test_bytes_per_token_table():
    want = {
        "auto": 1024, "bfloat16": 1024, "float16": 1024, "fp8": 512, "fp8_e4m3": 512, "fp8_e5m2": 512,
        "turboquant_k8v4": 388, "turboquant_4bit_nc": 262,
        "turboquant_k3v4_nc": 230, "turboquant_3bit_nc": 198,
        "int8_per_token_head": 520, "fp8_per_token_head": 520, "int4_per_token_head": 264,
        "nvfp4": 288, "nvfp4_4over6": 288,
    }  # fmt: skip
    assert {n: k.slot_bytes(256) for n, k in KV_CACHE_DTYPES.items()} == want


@pytest.mark.parametrize("name", FIXTURE["vllm_kv_cache_dtypes"])
def test_support_summary(name):
    min_cc, backends, note = kv_dtype_support(name)
    served = {
        CAPS[c]: g["backend"]
        for c, g in SELECTION[name].items()
        if "refused_by" not in g and name not in MISMATCHED
    }
    assert note
    if name == "float16":  # accepted for a float16 model; every catalog model is bfloat16
        assert all(g["refused_by"] == "VllmConfig" for g in SELECTION[name].values())
        assert backends == kv_dtype_support("bfloat16").backends
    elif not served:
        assert (min_cc, backends) == (None, ()) and name in REFUSED_KV_CACHE_DTYPES
    else:
        assert min_cc == min(served) and set(backends) == set(served.values())


def test_capability_checked_by_plan_pool():
    spec = qwenfit.load("35B-A3B")
    plan_pool(spec, max_model_len=LEN, kv_cache_dtype="nvfp4_4over6", capability=(10, 0))
    with pytest.raises(SettingError, match=r"nvfp4_4over6 on compute capability 9\.0"):
        plan_pool(spec, max_model_len=LEN, kv_cache_dtype="nvfp4_4over6", capability=(9, 0))
    with pytest.raises(SettingError, match="Bfloat16 is only supported"):
        plan_pool(spec, max_model_len=LEN, kv_cache_dtype="auto", capability=(7, 5))
    with pytest.raises(SettingError, match=r"not a vLLM 0\.33\.0 choice"):
        plan_pool(spec, max_model_len=LEN, kv_cache_dtype="q8_0")


def test_turboquant_keeps_no_boundary_layer_on_hybrids():
    assert all(v == [] for v in FIXTURE["turboquant_boundary_skip_layers"].values())
