"""estimate(), the solvers and check(): terms, budgets, monotonicity, typed errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qwenfit
from qwenfit.core.engines.llama_cpp.memory import llama_kv_bytes_per_cell, llama_recurrent_bytes_per_cell

ENGINES = ["llama.cpp", "vllm", "sglang", "mlx", "transformers"]


def test_llama_cpp_terms_35b():
    e = qwenfit.estimate("35B-A3B", "Q4_K_M", context=131072, engine="llama.cpp", kv_cache="f16", vram_gb=24)
    assert e.term("kv_cache") == 131072 * 10 * 2 * 2 * 256 * 2  # 20 KiB per token, 10 attention layers
    assert e.term("recurrent_state") == 65_863_680  # 62.8 MiB per sequence (reference §4, a llama.cpp log)
    # the command loads unsloth's Q4_K_M: 22,016,023,168 B published (its own mix, no MTP layer)
    header = qwenfit.weights("35B-A3B", "Q4_K_M", mtp=False).header_bytes
    assert abs(e.term("weights") + header - 22_016_023_168) < 22_016_023_168 * 1e-4
    assert not next(t for t in e.terms if t.name == "weights").exact  # its types are not read: scaled
    # llama-quantize's own Q4_K_M: MTP tensors are skipped at load time unless speculative MTP is on
    recipe = qwenfit.estimate("35B-A3B", "Q4_K_M", context=131072, vram_gb=24, artifact="recipe")
    assert recipe.term("weights") == qwenfit.weights("35B-A3B", "Q4_K_M", mtp=False).total_bytes
    assert e.total_bytes == sum(t.bytes for t in e.terms) == sum(e.by_device.values())
    assert e.fits is False and e.shortfall_bytes == e.by_device["gpu"] - 24_000_000_000
    with pytest.raises(qwenfit.DoesNotFit) as info:
        e.raise_if_not_fits()
    assert info.value.shortfall_bytes == e.shortfall_bytes and "short by" in str(info.value)


def test_context_padding_and_streams():
    spec = qwenfit.load("9B")
    per_cell = llama_kv_bytes_per_cell(spec, "q8_0", "q8_0")
    e = qwenfit.estimate(spec, "Q4_K_M", context=334, kv_cache="q8_0", sequences=3)
    # context is per sequence: -c 1002, padded to 1024; 3 streams of pad(1002 // 3, 256) = 512 cells
    assert e.term("kv_cache") == 3 * 512 * per_cell
    assert e.term("recurrent_state") == 3 * llama_recurrent_bytes_per_cell(spec)
    unified = qwenfit.estimate(spec, "Q4_K_M", context=334, kv_cache="q8_0", sequences=3, kv_unified=True)
    assert unified.term("kv_cache") == 1024 * per_cell


def test_mtp_speculation_adds_draft_kv_and_rollback_rows():
    base = qwenfit.estimate("35B-A3B", context=8192)
    spec = qwenfit.estimate("35B-A3B", context=8192, mtp=True)
    assert spec.term("kv_cache") == base.term("kv_cache") * 11 // 10  # + the MTP layer's KV
    assert spec.term("recurrent_state") == 4 * base.term("recurrent_state")  # + 3 draft rows
    # no Q4_K_M with the MTP layer is published: the command makes one, which holds the MTP layer
    recipe = qwenfit.estimate("35B-A3B", context=8192, artifact="recipe")
    assert spec.term("weights") > recipe.term("weights")


def test_vllm_terms_use_the_pool_plan():
    from qwenfit.core.engines.vllm.pool import plan_pool

    e = qwenfit.estimate("9B", engine="vllm", tp=2, context=65536, sequences=4, vram_gb=24)
    plan = plan_pool(qwenfit.load("9B"), tp=2, max_model_len=65536)
    assert e.term("kv_cache") == plan.pool_bytes(4)
    assert e.budget == {"gpu": int(24e9 * 0.92)}


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_gives_labelled_terms(engine):
    e = qwenfit.estimate("35B-A3B", engine=engine, context=32768, sequences=2)
    assert e.total_bytes > 0 and {t.name for t in e.terms} >= {"weights", "kv_cache"}
    for t in e.terms:
        assert t.bytes >= 0 and t.source and t.device in ("gpu", "cpu")


@settings(max_examples=40, deadline=None)
@given(
    engine=st.sampled_from(ENGINES),
    ctx=st.integers(1, 200_000),
    more=st.integers(1, 50_000),
    seqs=st.integers(1, 8),
    kv=st.sampled_from([None, "q8_0"]),
)
def test_memory_never_decreases_with_context_or_sequences(engine, ctx, more, seqs, kv):
    kv = kv if engine == "llama.cpp" else None
    a = qwenfit.estimate("9B", engine=engine, context=ctx, sequences=seqs, kv_cache=kv)
    b = qwenfit.estimate("9B", engine=engine, context=ctx + more, sequences=seqs, kv_cache=kv)
    c = qwenfit.estimate("9B", engine=engine, context=ctx, sequences=seqs + 1, kv_cache=kv)
    assert b.total_bytes >= a.total_bytes and c.total_bytes >= a.total_bytes
    assert a.total_bytes == sum(t.bytes for t in a.terms)


def test_more_kv_bits_never_less_memory():
    sizes = [qwenfit.estimate("27B", context=65536, kv_cache=k).term("kv_cache")
             for k in ("q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "f16", "f32")]  # fmt: skip
    assert sizes == sorted(sizes)


@pytest.mark.parametrize("engine", ["llama.cpp", "vllm"])
def test_solved_max_context_fits_and_one_more_step_does_not(engine):
    kw = {"engine": engine, "vram_gb": 24, "sequences": 8}
    model, quant = ("35B-A3B", "Q4_K_M") if engine == "llama.cpp" else ("9B", "fp8")
    best = qwenfit.max_context(model, quant, **kw)
    assert 0 < best < 262144
    assert qwenfit.estimate(model, quant, context=best, **kw).fits
    step = 256 if engine == "llama.cpp" else 1
    assert not qwenfit.estimate(model, quant, context=best + step, **kw).fits


def test_max_sequences():
    n = qwenfit.max_sequences("9B", "Q4_K_M", context=32768, vram_gb=16)
    assert n > 0
    assert qwenfit.estimate("9B", "Q4_K_M", context=32768, sequences=n, vram_gb=16).fits
    assert not qwenfit.estimate("9B", "Q4_K_M", context=32768, sequences=n + 1, vram_gb=16).fits


def test_check():
    assert qwenfit.check("0.8B", context=4096, vram_gb=8).fits
    with pytest.raises(qwenfit.DoesNotFit):
        qwenfit.check("397B-A17B", context=4096, vram_gb=24)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "tgi"}, "unknown engine 'tgi'; valid: llama.cpp"),
        ({"context": 0}, "context must be a positive integer"),
        ({"context": -5}, "context must be a positive integer"),
        ({"sequences": 10_000}, "beyond llama.cpp's limit of 256"),
        ({"kv_cache": "q3_k"}, "KV cache type 'q3_k'; valid: f32, f16"),
        ({"kv_cache": "q8_0", "flash_attention": False}, "needs flash attention"),
        ({"engine": "vllm", "tp": 3}, "divisible by tp=3"),
        ({"engine": "vllm", "kv_cache": "int4"}, "'int4' is not a vLLM 0.33.0 choice; accepted for Qwen3.5"),
        ({"engine": "vllm", "quant": "Q4_K_M"}, "a llama.cpp file type, which vllm does not load"),
        ({"quant": "awq"}, "a safetensors format, which llama.cpp does not load"),
        ({"tp": 2}, "llama.cpp has no option tp; its options: n_gpu_layers"),
        ({"vram_gb": -1}, "vram_gb must be positive"),
        ({"backend": "tpu"}, "unknown backend 'tpu'"),
        ({"engine": "mlx", "kv_cache": "3"}, "mlx-lm KV cache '3'"),
    ],
)
def test_impossible_settings(kwargs, message):
    with pytest.raises(qwenfit.SettingError) as info:
        qwenfit.estimate("35B-A3B", **kwargs)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_mtp_on_a_model_without_mtp():
    path = qwenfit.load("tests/fixtures/tiny/dense-untied-text")
    with pytest.raises(qwenfit.SettingError, match="no MTP layer"):
        qwenfit.estimate(path, "F16", context=256, mtp=True)


def test_apple_working_set():
    from qwenfit.core.hardware import working_set_bytes

    assert working_set_bytes(16 * 2**30, recent_macos=False) == (16 * 2**30 * 2 // 3, False)  # 10922.67 MiB
    assert working_set_bytes(64 * 2**30)[0] == 48 * 2**30  # 49152 MiB logged on a 64 GB M1 Max
    assert working_set_bytes(512 * 2**30)[0] == 464 * 2**30  # M3 Ultra 512 GB
    assert working_set_bytes(128 * 2**30, wired_limit_mb=120_000) == (120_000 * 2**20, True)
    e = qwenfit.estimate("35B-A3B", engine="mlx", context=32768, ram_gb=64)
    # the GPU's share; all terms share the RAM, less what is kept for the system (6.4 GB of 64)
    assert e.budget == {"gpu": int(64e9) * 3 // 4, "total": int(64e9) - 6_400_000_000}
    assert "working set" in e.notes[0]


def test_sglang_pools_follow_sglang():
    """SGLang 0.5.23 (tests/fixtures/python_engines/sglang.json, checked in test_python_engines.py):
    5 state slots per running request with the radix cache (3 + 2, extra_buffer) plus 1 padding
    slot; one KV cell per token of the full-attention layers."""
    from qwenfit.core.engines.gdn_state import gdn_state

    spec = qwenfit.load("35B-A3B")
    e = qwenfit.estimate(spec, engine="sglang", context=8192, sequences=4)
    per_req = gdn_state(spec, conv_dtype="bfloat16", ssm_dtype="float32").bytes * 30
    assert e.term("recurrent_state") == (5 * 4 + 1) * per_req
    assert e.term("kv_cache") == 8192 * 4 * 10 * 2 * 2 * 256 * 2


def test_pipeline_stages_follow_vllm_get_pp_indices():
    from qwenfit.core.engines.vllm.pool import pp_partitions

    assert [len(r) for r in pp_partitions(60, 7)] == [8, 8, 9, 9, 9, 9, 8]
    assert [len(r) for r in pp_partitions(48, 5)] == [9, 10, 10, 10, 9]
    assert [len(r) for r in pp_partitions(40, 4)] == [10, 10, 10, 10]


def test_pipeline_and_expert_parallel_weights():
    """vLLM's weights per rank are what vLLM 0.33.0 allocates (tests/fixtures/vllm/rank_weights.json,
    its own model classes on the meta device): the vision tower built by default, the embedding on
    every pipeline stage, experts split tp x dp ways, sequence-parallel MoE replicating the shared expert;
    plus the rank's buffers (the rotary cache, the EP expert maps)."""
    from qwenfit.core.engines.sglang import rank_weights
    from qwenfit.core.engines.vllm.weights import vllm_rank_buffer_bytes

    spec = qwenfit.load("122B-A10B")
    w = qwenfit.weights(spec, "bf16")
    experts = sum(t.bytes for t in w.tensors if t.role.startswith("expert_"))
    tp8 = rank_weights(spec, w, 8)[0]  # SGLang's sharding (not measured): experts / tp
    ep16 = rank_weights(spec, w, 8, ep=16)[0]
    assert tp8 - ep16 == experts // 8 - experts // 16
    e = qwenfit.estimate(
        spec, "bf16", engine="vllm", tp=8, dp=2, expert_parallel=True, context=8192, vision=True
    )
    buffers = vllm_rank_buffer_bytes(spec, tp=8, dp=2, expert_parallel=True)
    assert e.term("weights") == 17_041_163_484 + buffers  # vLLM: Qwen3.5-122B-A10B bf16, H100, TP8 DP2 EP
    e = qwenfit.estimate(spec, "bf16", engine="vllm", tp=8, dp=2, context=8192, vision=True)
    buffers = vllm_rank_buffer_bytes(spec, tp=8, dp=2)
    assert e.term("weights") == 16_248_440_028 + buffers  # without EP the MoE TP group spans DP: experts / 16
    e = qwenfit.estimate(spec, "bf16", engine="vllm", tp=1, pp=4, context=8192, vision=False)
    assert e.term("weights") > 62_721_186_144  # every stage holds the embedding, not only the first
    with pytest.raises(qwenfit.SettingError, match="dense model"):
        qwenfit.estimate("9B", engine="vllm", expert_parallel=True)
    with pytest.raises(qwenfit.SettingError, match=r"llama\.cpp has no option pp"):
        qwenfit.estimate("9B", pp=2)


def test_check_raises_with_the_nearest_settings_that_fit():
    with pytest.raises(qwenfit.DoesNotFit) as info:
        qwenfit.check("35B-A3B", "Q8_0", context=131072, hardware="rtx-4090", ram_gb=64)
    alts = info.value.alternatives
    assert {a.kind for a in alts} >= {"offload", "quant"}  # the same list as `qwenfit check`
    n = next(a for a in alts if a.kind == "offload").placement.n_cpu_moe
    kw = dict(context=131072, hardware="rtx-4090", ram_gb=64)
    assert qwenfit.estimate("35B-A3B", "Q8_0", n_cpu_moe=n, **kw).fits  # the suggestion fits
    assert not qwenfit.estimate("35B-A3B", "Q8_0", n_cpu_moe=n - 1, **kw).fits  # and is the least offload
    with pytest.raises(qwenfit.DoesNotFit) as info:
        qwenfit.check("27B", "Q4_K_M", context=262144, vram_gb=24)
    (ctx,) = [a for a in info.value.alternatives if a.kind == "context"]
    best = ctx.context
    assert qwenfit.estimate("27B", "Q4_K_M", context=best, vram_gb=24).fits
    assert not qwenfit.estimate("27B", "Q4_K_M", context=best + 256, vram_gb=24).fits


@pytest.mark.parametrize("model", ["27B", "35B-A3B", "122B-A10B", "Qwen3-Next-80B-A3B"])
@pytest.mark.parametrize("kv", ["f16", "q8_0", "q4_0", "q5_1"])
@pytest.mark.parametrize("n_gpus", [1, 2, 3])
def test_kv_terms_per_device_sum_to_the_context_kv_with_mtp(model, kv, n_gpus):
    """The per-device KV terms are exact: the MTP draft layer keeps its f16 cells, the decoder's
    layers their -ctk/-ctv cells, on whichever device holds each layer (was: an average per layer,
    floored, up to 512 KiB short with MTP and a quantized cache)."""
    from qwenfit.core.engines.llama_cpp.memory import llama_context

    spec = qwenfit.load(model)
    for mtp in (False, True):
        e = qwenfit.estimate(spec, "Q4_K_M", context=32768, sequences=2, kv_cache=kv, mtp=mtp, n_gpus=n_gpus)
        ctx = llama_context(spec, n_ctx=65536, n_seq=2, type_k=kv, type_v=kv, mtp=mtp)
        per_device = [(t.device, t.bytes) for t in e.terms if t.name == "kv_cache"]
        assert e.term("kv_cache") == ctx.kv_bytes, (mtp, per_device)
