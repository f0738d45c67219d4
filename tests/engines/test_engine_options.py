"""Engine options users name on the command line: each is checked by its engine, changes the memory
it should and shows in the launch command (llama.cpp, llama-cpp-python, vLLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import qwenfit
from qwenfit.api import check_result
from qwenfit.core.engines.llama_cpp.versions import OUTPUT_LIMIT_BUILD, build_number
from qwenfit.core.engines.vllm.quant_weights import vllm_format_of, vllm_quant_rank_weight_bytes
from qwenfit.core.engines.vllm.weights import vllm_rank_buffer_bytes
from qwenfit.loaders import load

GIB = 1 << 30
V = 248320  # Qwen3.5's vocabulary


def _term(e, name, device=None):
    return sum(t.bytes for t in e.terms if t.name == name and (device is None or t.device == device))


# --- llama.cpp --------------------------------------------------------------------------------------


def test_engine_version_reads_build_numbers_and_refuses_the_rest():
    assert build_number("b9849") == 9849 and build_number("9849 (799fcc04a)") == 9849
    assert build_number(None) is None and build_number("0c1e570") is None
    with pytest.raises(qwenfit.SettingError, match="engine_version 'latest'"):
        qwenfit.estimate("9B", "Q4_K_M", context=8192, engine_version="latest", vram_gb=24)


def test_llama_server_reserves_logits_for_the_whole_batch_before_pr_23861():
    """The main context's compute buffer holds the logits rows llama_context reserves: n_batch rows
    (library, old llama-server), or n_parallel x (1 + n_draft) rows (llama-server from PR #23861)."""
    kw = dict(context=32768, vram_gb=24, ram_gb=64, backend="cpu")
    new = qwenfit.estimate("9B", "Q4_K_M", **kw)
    old = qwenfit.estimate("9B", "Q4_K_M", engine_version=f"b{OUTPUT_LIMIT_BUILD - 1}", **kw)
    lib = qwenfit.estimate("9B", "Q4_K_M", engine="llama-cpp-python", batch=2048, flash_attention=True, **kw)
    assert _term(old, "compute_buffer") == _term(lib, "compute_buffer") > _term(new, "compute_buffer")
    assert qwenfit.estimate("9B", "Q4_K_M", engine_version=f"b{OUTPUT_LIMIT_BUILD}", **kw).terms == new.terms


def test_a_gguf_without_the_mtp_layer_cannot_draft():
    with pytest.raises(qwenfit.SettingError, match="mtp_layer=False"):
        qwenfit.estimate("27B", "Q4_K_M", context=8192, mtp=True, mtp_layer=False, vram_gb=24)


def test_override_tensor_is_read_as_llama_cpp_does():
    def cpu(**kw):
        e = qwenfit.estimate("35B-A3B", "Q4_K_M", context=8192, vram_gb=24, ram_gb=64, **kw)
        return _term(e, "weights", "cpu")

    # experts of layers 10-19 by -ot = those of layers 0-19 by --n-cpu-moe minus those of layers 0-9
    ot = cpu(override_tensor="blk\\.(1[0-9])\\.ffn_.*_exps=CPU")
    assert ot - cpu() == cpu(n_cpu_moe=20) - cpu(n_cpu_moe=10) > 0
    r = check_result("35B-A3B", "Q4_K_M", context=8192, vram_gb=24, ram_gb=64, override_tensor="exps=CPU")
    assert "-ot exps=CPU" in r.command
    bad_values = (("exps", "not PATTERN=BUFFER"), ("(=CPU", "not a regex"), ("exps=GPU0", "unknown buffer"))
    for bad, msg in bad_values:
        with pytest.raises(qwenfit.SettingError, match=msg):
            qwenfit.estimate("35B-A3B", "Q4_K_M", context=8192, vram_gb=24, override_tensor=bad)
    with pytest.raises(qwenfit.SettingError, match="CUDA1 is not one of the 1 GPU"):
        qwenfit.estimate("35B-A3B", "Q4_K_M", context=8192, vram_gb=24, override_tensor="exps=CUDA1")


def test_split_modes():
    with pytest.raises(qwenfit.SettingError, match="split_mode='row'"):
        qwenfit.estimate("27B", "Q4_K_M", context=8192, vram_gb=24, split_mode="row")
    with pytest.raises(qwenfit.SettingError, match="valid: layer, none"):
        qwenfit.estimate("27B", "Q4_K_M", context=8192, vram_gb=24, split_mode="tensor")
    r = check_result("27B", "Q4_K_M", context=8192, vram_gb=80, split_mode="none")
    assert "-sm none" in r.command


def test_draft_settings_change_the_draft_cache():
    kw = dict(context=32768, vram_gb=48, mtp=True)
    f16 = qwenfit.estimate("27B", "Q4_K_M", **kw)
    q8 = qwenfit.estimate("27B", "Q4_K_M", draft_kv_cache="q8_0", **kw)
    cells = 32768
    per_layer_f16 = 2 * 4 * 256 * 2 * cells  # K and V, 4 KV heads x 256, f16
    assert _term(f16, "kv_cache") - _term(q8, "kv_cache") == per_layer_f16 - per_layer_f16 * 34 // 64
    six = qwenfit.estimate("27B", "Q4_K_M", draft_tokens=6, **kw)
    rows = [next(t.detail for t in e.terms if t.name == "recurrent_state") for e in (f16, six)]
    assert rows[0].startswith("4 row(s)") and rows[1].startswith("7 row(s)")
    r = check_result("27B", "Q4_K_M", draft_kv_cache="q8_0", draft_tokens=6, **kw)
    assert "--spec-type draft-mtp --spec-draft-n-max 6 -ctkd q8_0 -ctvd q8_0" in r.command


def test_llama_cpp_python_is_the_library():
    r = check_result("9B", "Q4_K_M", engine="llama-cpp-python", context=8192, vram_gb=24, kv_cache="q8_0",
                     flash_attention=True)  # fmt: skip
    assert r.command.startswith(
        "python3 -m llama_cpp.server --hf_model_repo_id unsloth/Qwen3.5-9B-GGUF "
        "--model Qwen3.5-9B-Q4_K_M.gguf --n_ctx 8192"
    )
    assert "--n_gpu_layers -1" in r.command and "--flash_attn true --type_k 8 --type_v 8" in r.command
    assert not any(t.name in ("ctx_checkpoints", "fit_margin") for t in r.estimate.terms)
    for option in ({"n_cpu_moe": 4}, {"server": True}):
        with pytest.raises(qwenfit.SettingError, match="llama-cpp-python"):
            qwenfit.estimate("35B-A3B", "Q4_K_M", engine="llama-cpp-python", context=8192, vram_gb=24,
                             **option)  # fmt: skip
    with pytest.raises(qwenfit.SettingError, match="beyond llama-cpp-python's limit of 1"):
        qwenfit.estimate("9B", "Q4_K_M", engine="llama-cpp-python", context=8192, sequences=2, vram_gb=24)


def test_non_default_batch_flags_are_in_the_command():
    r = check_result("9B", "Q4_K_M", context=8192, vram_gb=24, ubatch=2048, batch=4096, kv_unified=True,
                     kv_offload=False)  # fmt: skip
    assert "-ub 2048 -b 4096" in r.command and "--kv-unified" in r.command and "-nkvo" in r.command


# --- vLLM -------------------------------------------------------------------------------------------

QUANT_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "vllm" / "rank_weights_quant.json"


@pytest.mark.parametrize(
    ("model", "quant", "tp"),
    [("35B-A3B", "nvfp4", 1), ("35B-A3B", "awq", 1), ("35B-A3B", "gptq", 2), ("27B", "autoround", 2),
     ("27B", "w4a16", 2), ("9B", "nvfp4-all", 1), ("122B-A10B", "w8a8", 4)],
)  # fmt: skip
def test_vllm_charges_quantized_checkpoints_what_vllm_allocates(model, quant, tp):
    """The estimate's weights are vLLM's create_weights bytes for the format (measured:
    tests/fixtures/vllm/rank_weights_quant.json, pinned in test_vllm_quant_weights.py) and the rank's
    buffers (the rotary cache), not BF16."""
    spec = load(model)
    fmt, exact = vllm_format_of(quant, 128 if quant not in ("nvfp4", "nvfp4-all", "w8a8") else None)
    e = qwenfit.estimate(model, quant, engine="vllm", context=8192, tp=tp, vram_gb=80, n_gpus=tp, vision=True)
    want = vllm_quant_rank_weight_bytes(spec, fmt, tp=tp, gpu=90) + vllm_rank_buffer_bytes(spec, tp=tp)
    assert _term(e, "weights") == want and exact
    assert next(t for t in e.terms if t.name == "weights").exact
    bf16 = qwenfit.estimate(model, "bf16", engine="vllm", context=8192, tp=tp, vram_gb=80, n_gpus=tp)
    assert _term(e, "weights") < _term(bf16, "weights")  # was charged at BF16 size


def test_vllm_quant_fixture_rows_through_the_engine():
    data = json.loads(QUANT_FIXTURE.read_text())
    rows = [dict(zip(data["columns"], r, strict=True)) for r in data["rows"]]
    row = next(r for r in rows if (r["model"], r["format"], r["gpu"], r["tp"], r["pp"], r["dp"], r["ep"])
               == ("Qwen3.5-35B-A3B", "nvfp4-modelopt", "H100", 1, 1, 1, False))  # fmt: skip
    e = qwenfit.estimate("35B-A3B", "nvfp4", engine="vllm", context=8192, vram_gb=80, vision=True)
    # the vision tower built, as vLLM does by default
    assert _term(e, "weights") == row["param_bytes"] + row["buffer_bytes"]


def test_vllm_refusals_and_estimates_are_labelled():
    with pytest.raises(qwenfit.SettingError, match="Unknown quantization method: bitsandbytes"):
        qwenfit.estimate("9B", "bnb-nf4", engine="vllm", context=8192, vram_gb=24)
    e = qwenfit.estimate("35B-A3B", "mxfp4", engine="vllm", context=8192, vram_gb=80)
    assert not next(t for t in e.terms if t.name == "weights").exact  # vLLM's MXFP4 path is not modelled


def test_vllm_options():
    r = check_result("27B", "autoround", engine="vllm", context=32768, hardware="2x rtx-3090", tp=2, mtp=True,
                     speculative_tokens=3, max_num_batched_tokens=8192, max_num_seqs=4)  # fmt: skip
    assert "--max-num-seqs 4 --max-num-batched-tokens 8192" in r.command
    assert """--speculative-config '{"method": "mtp", "num_speculative_tokens": 3}'""" in r.command
    with pytest.raises(qwenfit.SettingError, match="speculative_tokens needs mtp=True"):
        qwenfit.estimate("27B", engine="vllm", context=8192, vram_gb=80, speculative_tokens=2)
    with pytest.raises(qwenfit.SettingError, match="max_num_seqs=2 runs fewer requests"):
        qwenfit.estimate("27B", engine="vllm", context=8192, sequences=4, vram_gb=80, max_num_seqs=2)
    with pytest.raises(qwenfit.SettingError, match="must be None or a positive integer"):
        qwenfit.estimate("27B", engine="vllm", context=8192, vram_gb=80, max_num_batched_tokens=0)
