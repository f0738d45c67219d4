"""llama.cpp file types: per-tensor type choice and exact bytes (qwenfit.core.formats.gguf)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import qwenfit
from qwenfit.core.formats.dtypes import GGML_TYPES
from qwenfit.core.formats.gguf import FILE_TYPES, GGUFSource, LlamaQuantOptions, choose_types, ggml_n_dims

MiB = 1024 * 1024


def test_llama_cpp_pr_19770_log_for_35b():
    """llama.cpp PR #19770 log (master ecbcb7ea9, Qwen3.5-35B-A3B without MTP): bf16 66152.24 MiB,
    Q4_K_M 20177.96 MiB under the rules of that time (reference quant-formats.md §2.0)."""
    bf16 = qwenfit.weights("35B-A3B", "BF16", mtp=False)
    assert f"{bf16.total_bytes / MiB:.2f}" == "66152.24"
    q4 = qwenfit.weights("35B-A3B", "Q4_K_M", mtp=False, regime="pre-2026-03")
    assert f"{q4.total_bytes / MiB:.2f}" == "20177.96"


@pytest.mark.parametrize(
    ("model", "file_bytes"),
    [
        # unsloth Q8_0 files (quant-formats.md §5.1): tensor data + ~11.0 MB of GGUF metadata
        ("35B-A3B", 36_903_139_968),
        ("27B", 28_595_763_104),
        ("122B-A10B", 129_871_935_040),
        ("397B-A17B", 421_507_365_376),
    ],
)
def test_q8_0_published_file_sizes(model, file_bytes):
    w = qwenfit.weights(model, "Q8_0", mtp=False, regime="pre-2026-03")
    assert 10_900_000 < file_bytes - w.total_bytes < 11_100_000  # tensor data exact; the rest is metadata
    # the header is an estimate (tokenizer block fitted on the 35B file): within 1 KB of all four
    assert abs(w.file_bytes - file_bytes) <= 1024
    if model == "35B-A3B":
        assert w.file_bytes == file_bytes


def test_mtp_is_in_by_default_and_counts_in_n_ffn():
    with_mtp = qwenfit.weights("35B-A3B", "Q4_K_M")
    without = qwenfit.weights("35B-A3B", "Q4_K_M", mtp=False)
    assert with_mtp.by_component()["mtp"] > 0 and "mtp" not in without.by_component()
    assert with_mtp.total_bytes > without.total_bytes


def test_attn_qkv_is_attn_v_like_in_the_current_regime():
    w = {t.gguf_name: t.type for t in qwenfit.weights("35B-A3B", "Q4_K_M", mtp=False).tensors}
    old = {
        t.gguf_name: t.type
        for t in qwenfit.weights("35B-A3B", "Q4_K_M", mtp=False, regime="pre-2026-03").tensors
    }
    assert old["blk.0.attn_qkv.weight"] == "Q5_K"  # dedicated attn_qkv branch (before PR #19770)
    assert w["blk.0.attn_qkv.weight"] == "Q6_K"  # first eighth of attn_v-like tensors: use_more_bits
    assert w["blk.8.attn_qkv.weight"] == "Q4_K"
    assert w["output.weight"] == "Q6_K" and w["token_embd.weight"] == "Q4_K"
    assert w["blk.0.ssm_conv1d.weight"] == "F32" and w["blk.0.ffn_gate_inp.weight"] == "F32"
    assert w["blk.0.attn_gate.weight"] == "Q4_K" and w["blk.0.ssm_beta.weight"] == "Q4_K"


def test_mxfp4_moe():
    w = {t.gguf_name: t.type for t in qwenfit.weights("35B-A3B", "MXFP4_MOE").tensors}
    assert w["blk.0.ffn_up_exps.weight"] == "MXFP4"
    assert w["blk.0.ffn_up_shexp.weight"] == "Q8_0" and w["output.weight"] == "Q8_0"
    dense = {t.type for t in qwenfit.weights("9B", "MXFP4_MOE").tensors}
    assert "MXFP4" not in dense


def test_options():
    base = qwenfit.weights("9B", "Q4_K_M")
    pure = {t.gguf_name: t.type for t in qwenfit.weights("9B", "Q4_K_M", pure=True).tensors}
    assert {pure[n] for n in pure if n.endswith("ffn_down.weight")} == {"Q4_K"}
    out = {t.gguf_name: t.type for t in qwenfit.weights("9B", "Q4_K_M", output_tensor_type="q8_0").tensors}
    assert out["output.weight"] == "Q8_0"
    emb = {t.gguf_name: t.type for t in qwenfit.weights("9B", "Q4_K_M", token_embedding_type="Q8_0").tensors}
    assert emb["token_embd.weight"] == "Q8_0"
    keep = {t.gguf_name: t.type for t in qwenfit.weights("9B", "Q4_K_M", leave_output_tensor=True).tensors}
    assert keep["output.weight"] == "BF16"
    tt = {
        t.gguf_name: t.type for t in qwenfit.weights("9B", "Q4_K_M", tensor_types=["ffn_down=q8_0"]).tensors
    }
    assert tt["blk.3.ffn_down.weight"] == "Q8_0"
    assert qwenfit.weights("9B", "q4_k_m").total_bytes == base.total_bytes


def test_bad_quant_inputs():
    with pytest.raises(qwenfit.QwenfitError, match="unknown quantization 'Q4_K_X'"):
        qwenfit.weights("9B", "Q4_K_X")
    with pytest.raises(qwenfit.QwenfitError, match="unknown ggml type 'Q9_K'"):
        qwenfit.weights("9B", "Q4_K_M", output_tensor_type="Q9_K")
    with pytest.raises(qwenfit.QwenfitError, match="not a valid regex"):
        qwenfit.weights("9B", "Q4_K_M", tensor_types=["(=q8_0"])
    with pytest.raises(qwenfit.QwenfitError, match="unknown regime"):
        qwenfit.weights("9B", "Q4_K_M", regime="2024")
    with pytest.raises(qwenfit.QwenfitError, match="no MTP layer"):
        qwenfit.weights("9B", "Q4_K_M", regime="pre-2026-03", mtp=True)


def test_fallback_when_rows_do_not_divide():
    t = [
        GGUFSource("blk.0.attn_gate.weight", (96, 64), "BF16"),
        GGUFSource("blk.0.attn_q.weight", (40, 64), "BF16"),
    ]
    out = {q.name: q for q in choose_types(t, "Q4_K_M", n_head=4, n_head_kv=2, n_expert=0, n_layer_all=1)}
    assert out["blk.0.attn_gate.weight"].type == "Q5_0" and out["blk.0.attn_gate.weight"].fallback
    assert out["blk.0.attn_q.weight"].type == "F16"  # 40 is not a multiple of 32 either
    old = choose_types(t, "Q2_K", n_head=4, n_head_kv=2, n_expert=0, n_layer_all=1,
                       options=LlamaQuantOptions(regime="pre-2026-03"))  # fmt: skip
    assert old[0].type == "IQ4_NL"


def test_ggml_n_dims():
    assert ggml_n_dims((2048, 1)) == 1 and ggml_n_dims((4, 8192)) == 2 and ggml_n_dims((8, 1, 3)) == 3


BITS_ORDER = ["IQ1_S", "IQ2_XXS", "Q2_K", "Q3_K_S", "Q4_K_S", "Q5_K_S", "Q6_K", "Q8_0", "BF16", "F32"]


@pytest.mark.parametrize("model", ["0.8B", "35B-A3B"])
def test_more_bits_never_fewer_bytes_for_the_whole_model(model):
    sizes = [qwenfit.weights(model, f).total_bytes for f in BITS_ORDER]
    assert sizes == sorted(sizes)


@settings(max_examples=200, deadline=None)
@given(
    ne0=st.sampled_from([256, 512, 1024, 2048, 4096]),
    ne1=st.integers(1, 64),
    a=st.sampled_from(sorted(GGML_TYPES)),
    b=st.sampled_from(sorted(GGML_TYPES)),
)
def test_more_bits_per_weight_never_fewer_bytes_per_tensor(ne0, ne1, a, b):
    ta, tb = GGML_TYPES[a], GGML_TYPES[b]
    if ta.bits_per_weight <= tb.bits_per_weight:
        assert ta.n_bytes((ne0, ne1)) <= tb.n_bytes((ne0, ne1))


@pytest.mark.parametrize("ftype", sorted(FILE_TYPES))
def test_every_file_type_sums_per_tensor(ftype):
    w = qwenfit.weights("35B-A3B", ftype)
    assert w.total_bytes == sum(t.bytes for t in w.tensors)
    assert len(w.tensors) == len([t for t in qwenfit.load("35B-A3B").inventory if t.component != "vision"])


def test_three_published_9b_files_differ_exactly_by_their_tensor_data():
    """khtsly/Mini-Coder-GGUF (a Qwen3.5-9B finetune exported with 2026 llama.cpp; quant-formats.md §5.1):
    Q4_K_S 5,351,629,312 B, Q4_K_M 5,629,108,736 B, Q8_0 9,527,501,312 B. Under the current rules every
    file is our tensor bytes plus the same 10,967,552 B of metadata: the tensor data is exact to the byte
    (the pre-2026-03 rules are off by 11.0 MB and 2.1 MB)."""
    published = {"Q4_K_S": 5_351_629_312, "Q4_K_M": 5_629_108_736, "Q8_0": 9_527_501_312}
    meta = {ft: size - qwenfit.weights("9B", ft, mtp=False).total_bytes for ft, size in published.items()}
    assert set(meta.values()) == {10_967_552}
    old = {ft: size - qwenfit.weights("9B", ft, mtp=False, regime="pre-2026-03").total_bytes
           for ft, size in published.items()}  # fmt: skip
    assert old["Q4_K_S"] != 10_967_552 and old["Q4_K_M"] != 10_967_552


@pytest.mark.parametrize(
    ("model", "file_bytes"),
    [("35B-A3B", 899_283_648), ("27B", 927_607_040), ("2B", 668_227_264)],  # unsloth mmproj-F16 files
)
def test_mmproj_f16_published_sizes(model, file_bytes):
    from qwenfit.core.formats.weights import mmproj_header_bytes, mmproj_weights

    entries = mmproj_weights(qwenfit.load(model), "F16", regime="pre-2026-03")
    data = sum(e.bytes for e in entries)
    assert 17_000 < file_bytes - data < 21_000  # the rest is header: tensor infos + clip/general keys
    assert abs(data + mmproj_header_bytes(entries) - file_bytes) <= 512


def test_vision_adds_the_mmproj_file():
    text = qwenfit.weights("35B-A3B", "Q4_K_M")
    both = qwenfit.weights("35B-A3B", "Q4_K_M", vision=True, mmproj_type="q8_0")
    assert both.total_bytes - text.total_bytes == both.by_component()["vision"]
    assert {t.type for t in both.tensors if t.component == "vision"} == {"Q8_0", "F16", "F32"}
    with pytest.raises(qwenfit.QwenfitError, match="no vision tower"):
        qwenfit.weights("Qwen3-Next-80B-A3B", "Q4_K_M", vision=True)


def test_ggml_type_table_matches_gguf_py():
    """Block sizes and bytes per block against the gguf package's GGML_QUANT_SIZES (PyPI gguf-py)."""
    import gguf

    theirs = {t.name: (t.value, *gguf.GGML_QUANT_SIZES[t]) for t in gguf.GGMLQuantizationType}
    for name, t in GGML_TYPES.items():
        # the PyPI package may predate the newest types (Q1_0, Q2_0, NVFP4); its Q8_1 entry (40 B)
        # is stale: ggml's block_q8_1 is two halves + 32 int8 = 36 B (ggml-common.h static_assert,
        # and the vendored gguf-py of llama.cpp 0c1e570 says 2 + 2 + 32). Q8_1 never appears in files.
        if name in theirs and name != "Q8_1":
            assert (t.id, t.block_size, t.type_size) == theirs[name], name
    assert {"Q4_K", "IQ2_XXS", "MXFP4", "TQ1_0", "BF16"} <= set(theirs)
