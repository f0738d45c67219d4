"""llama.cpp runtime-memory formulas for Qwen3.5 / Qwen3-Next (helper of llama_memory_fixtures.py).

Not a script; pure Python, no dependencies. Every function reproduces one figure of llama.cpp
(commit 0c1e57098, the tree of scripts/build_llama_cpp.sh); line numbers refer to that tree and the
derivations are written up in scripts/llama_memory_fixtures.py's docstring. All results in bytes.

``hp`` is a dict built by ``hparams_from_gguf`` from the GGUF KVs:
n_layer (trunk layers, block_count - nextn_predict_layers), n_nextn, n_full (trunk full-attention
layers), n_recr (trunk GDN layers), n_embd, n_head, n_head_kv, head_dim, n_vocab, d_conv, d_state,
n_group, dt_rank (linear v heads), d_inner, n_ff, n_expert, n_expert_used, n_ff_exp, n_ff_shexp.
"""

from __future__ import annotations

from typing import Any

# ggml block size and bytes per block (ggml/src/ggml.c type_traits) for the KV cache types
KV_TYPES = {"f32": (1, 4), "f16": (1, 2), "bf16": (1, 2), "q8_0": (32, 34), "q4_0": (32, 18),
            "q4_1": (32, 20), "q5_0": (32, 22), "q5_1": (32, 24), "iq4_nl": (32, 18)}  # fmt: skip
GGML_PAD_CTX = 256  # llama-context.cpp:290 cparams.n_ctx = GGML_PAD(cparams.n_ctx, 256)


def pad(x: int, n: int) -> int:
    return (x + n - 1) // n * n


def row_size(type_name: str, n: int) -> int:
    """ggml_row_size(type, n): bytes of one row of n elements."""
    blck, size = KV_TYPES[type_name]
    assert n % blck == 0, (type_name, n)
    return n // blck * size


def hparams_from_gguf(kv: dict[str, Any]) -> dict[str, Any]:
    """The hyper-parameters the formulas need, from a GGUF KV dict (read_gguf()['kv'])."""
    arch = kv["general.architecture"]

    def a(key: str, default: Any = None) -> Any:
        return kv.get(f"{arch}.{key}", default)

    n_all = a("block_count")
    n_nextn = a("nextn_predict_layers", 0)
    n_layer = n_all - n_nextn
    interval = a("full_attention_interval", 4)
    # llama-model.cpp hparams: recurrent layers = (i < n_layer) && ((i+1) % interval != 0)
    n_full = sum(1 for i in range(n_layer) if (i + 1) % interval == 0)
    tokens = kv["tokenizer.ggml.tokens"]
    n_vocab = tokens["len"] if isinstance(tokens, dict) else len(tokens)
    return {
        "arch": arch,
        "n_layer": n_layer,
        "n_nextn": n_nextn,
        "n_full": n_full,
        "n_recr": n_layer - n_full,
        "n_embd": a("embedding_length"),
        "n_head": a("attention.head_count"),
        "n_head_kv": a("attention.head_count_kv"),
        "head_dim": a("attention.key_length"),
        "head_dim_v": a("attention.value_length"),
        "n_vocab": n_vocab,
        "d_conv": a("ssm.conv_kernel"),
        "d_state": a("ssm.state_size"),
        "n_group": a("ssm.group_count"),
        "dt_rank": a("ssm.time_step_rank"),
        "d_inner": a("ssm.inner_size"),
        "n_ff": a("feed_forward_length", 0),
        "n_expert": a("expert_count", 0),
        "n_expert_used": a("expert_used_count", 0),
        "n_ff_exp": a("expert_feed_forward_length", 0),
        "n_ff_shexp": a("expert_shared_feed_forward_length", 0),
        "n_ctx_train": a("context_length"),
    }


# ------------------------------------------------------------------------------------------------
# context size
# ------------------------------------------------------------------------------------------------


def context_cells(n_ctx: int, n_seq: int, kv_unified: bool, n_ctx_train: int = 262144) -> tuple[int, int]:
    """(n_ctx, n_ctx_seq) after llama_context's padding (llama-context.cpp:133, 290-304).

    n_ctx = 0 means n_ctx_train. n_ctx is padded up to a multiple of 256; without a unified KV
    cache the per-sequence size n_ctx_seq = pad(n_ctx / n_seq, 256) (integer division) and n_ctx
    becomes n_ctx_seq * n_seq -- rounded *up* despite the log text "rounding down". The padding
    does not depend on flash attention, the KV type or n_ubatch."""
    n = n_ctx_train if n_ctx == 0 else n_ctx
    n = pad(n, GGML_PAD_CTX)
    if kv_unified:
        return n, n
    seq = pad(n // n_seq, GGML_PAD_CTX)
    return seq * n_seq, seq


# ------------------------------------------------------------------------------------------------
# KV cache, recurrent state, output buffer
# ------------------------------------------------------------------------------------------------


def kv_bytes(hp: dict[str, Any], n_ctx_seq: int, n_stream: int, type_k: str, type_v: str,
             n_layers: int | None = None) -> tuple[int, int]:  # fmt: skip
    """(K bytes, V bytes) of llama_kv_cache (llama-kv-cache.cpp:221-222, 1914-1932).

    One K and one V tensor per cached layer, [n_head_kv*head_dim, kv_size, n_stream], kv_size =
    n_ctx_seq, n_stream = 1 with a unified cache else n_seq_max: K = n_layers * n_stream *
    n_ctx_seq * row_size(type_k, n_head_kv*head_dim). The trunk caches only its full-attention
    layers (filter_attn, llama-model.cpp:2698-2705); an MTP context caches its nextn layers."""
    layers = hp["n_full"] if n_layers is None else n_layers
    cells = n_stream * n_ctx_seq
    k = layers * cells * row_size(type_k, hp["n_head_kv"] * hp["head_dim"])
    v = layers * cells * row_size(type_v, hp["n_head_kv"] * hp["head_dim_v"])
    return k, v


def rs_bytes(hp: dict[str, Any], n_seq: int, n_rs_seq: int = 0) -> tuple[int, int]:
    """(R bytes, S bytes) of llama_memory_recurrent (llama-memory-recurrent.cpp:101-105), always F32.

    Rows per GDN layer = max(1, n_seq_max) * (1 + n_rs_seq); n_embd_r = (d_conv-1) *
    (d_inner + 2*n_group*d_state) (llama-hparams.cpp:229), n_embd_s = d_state * d_inner (:257).
    n_rs_seq = --spec-draft-n-max (default 3) when MTP speculation is on (common.cpp:1636,
    common.h:396-402), clamped to 0 for archs without partial rollback (llama-context.cpp:105-109;
    qwen35/qwen35moe have it, qwen3next does not, llama-arch.cpp:1123-1135)."""
    if hp["arch"] not in ("qwen35", "qwen35moe"):
        n_rs_seq = 0
    rows = max(1, n_seq) * (1 + n_rs_seq)
    n_embd_r = (hp["d_conv"] - 1) * (hp["d_inner"] + 2 * hp["n_group"] * hp["d_state"])
    n_embd_s = hp["d_state"] * hp["d_inner"]
    return hp["n_recr"] * rows * n_embd_r * 4, hp["n_recr"] * rows * n_embd_s * 4


def output_bytes(hp: dict[str, Any], n_seq: int, n_outputs: int | None = None, n_batch: int = 2048,
                 nextn_unmasked: bool = False, nextn_masked: bool = False,
                 backend_sampling: bool = False) -> int:  # fmt: skip
    """llama_context::output_reserve (llama-context.cpp:2116-2206): host buffer, not part of
    llama_get_memory_breakdown. At context creation n_outputs = n_seq_max (:376), so it is
    n_vocab * n_seq_max * 4. It grows (never shrinks) when a batch asks for more outputs:
    n = max(n_outputs, n_seq_max) rows of logits. MTP adds nextn embeddings: unmasked (target
    context) n_embd * n_batch floats, masked (draft) n_embd * n floats; backend sampling (the
    draft's top-k chains) adds 2 * n_vocab * n floats and (1 + n_vocab) * n int32."""
    n = max(n_outputs or n_seq, n_seq)
    floats = hp["n_vocab"] * n
    if nextn_unmasked:
        floats += hp["n_embd"] * n_batch
    elif nextn_masked:
        floats += hp["n_embd"] * n
    ints = 0
    if backend_sampling:
        floats += 2 * hp["n_vocab"] * n
        ints = (1 + hp["n_vocab"]) * n
    return floats * 4 + ints * 4


# ------------------------------------------------------------------------------------------------
# compute buffer (CPU backend)
# ------------------------------------------------------------------------------------------------


def a32(x: int) -> int:
    """ggml CPU buffer alignment (32 bytes) applied by the graph allocator to every tensor."""
    return (x + 31) // 32 * 32


def reserve_shape(n_ctx: int, n_seq: int, n_ubatch: int, n_outputs_max: int) -> tuple[int, int]:
    """(n_tokens, n_outputs) of the worst-case pp graph reserved by llama_context::sched_reserve
    (llama-context.cpp:629, 670): n_tokens = min(n_ctx, n_ubatch) rounded up to a multiple of
    n_seq_max (graph_reserve, :2528-2531), n_outputs = min(min(n_ctx, n_ubatch), n_outputs_max)."""
    t = min(n_ctx, n_ubatch)
    return (t + n_seq - 1) // n_seq * n_seq, min(t, n_outputs_max)


def compute_terms(hp: dict[str, Any], *, n_ctx: int, n_ctx_seq: int, n_seq: int, kv_unified: bool,
                  n_ubatch: int, n_outputs_max: int, flash_attn: bool, type_k: str = "f16",
                  type_v: str = "f16", n_rs_seq: int = 0, mtp: bool = False) -> dict[str, int]:  # fmt: skip
    """Candidate peaks of the CPU compute buffer, in bytes (see compute_bytes).

    Each term is the end offset of the graph allocator's buffer at one point of the pp graph, written
    as [tensors below] + [tensors of the step]: the graph inputs (allocated first and kept),
    2-3 residual-sized tensors [n_embd, n_tokens] f32, then the big temporaries of the step. mtp=True:
    the MTP draft context (LLM_GRAPH_TYPE_DECODER_MTP: one attention layer + FFN, no GDN)."""
    T, n_out = reserve_shape(n_ctx, n_seq, n_ubatch, n_outputs_max)
    H = hp["n_embd"]
    hd = hp["head_dim"]
    nh = hp["n_head"]
    nkv_dim = hp["n_head_kv"] * hd
    n_kv = n_ctx if kv_unified else n_ctx_seq  # KV cells per stream
    HT = 4 * H * T
    mask = n_kv * T * (2 if flash_attn else 4)  # KQ mask: F16 with flash attention, else F32
    rot = 0
    if type_k not in ("f32", "f16", "bf16") and hd % 64 == 0:  # attn_inp_k_rot (llama-kv-cache.cpp:1447)
        nrot = 64
        while hd % (nrot * 2) == 0:
            nrot *= 2
        rot += a32(nrot * nrot * 4)
    if type_v not in ("f32", "f16", "bf16") and hd % 64 == 0:  # attn_inp_v_rot, 64x64 (:1468)
        rot += a32(64 * 64 * 4)
    v_idx = 8 * T * (1 if flash_attn else nkv_dim)  # transposed V (no FA) is scattered per element
    # inp_tokens, inp_embd, rs_s_copy, [k_rot, v_rot], inp_pos (4 per token, M-RoPE), k/v idxs, mask, out_ids
    inputs = (a32(4 * T) + a32(HT) + a32(4 * n_seq) + rot + a32(16 * T) + a32(8 * T) + a32(v_idx)
              + a32(mask) + a32(4 * n_out))  # fmt: skip
    logits = hp["n_vocab"] * n_out * 4
    attn = 4 * 3 * nh * hd * T + (0 if flash_attn else 4 * n_kv * T * nh)  # Q+gate, Q, KQ (softmax in place)
    # MoE: gate+up, swiglu, down [n_embd, k, T]; dense: gate, up, swiglu
    moe = 4 * (3 * hp["n_ff_exp"] + H) * hp["n_expert_used"] * T
    ffn = moe if hp["n_expert"] else 4 * 3 * hp["n_ff"] * T
    if mtp:
        # draft graph (qwen35.cpp:489-644, qwen35moe.cpp, qwen3next.cpp:640-822): the h input
        # replaces inp_embd, concat(enorm(embd), hnorm(h)) [2*n_embd, T], eh_proj, one attention
        # layer (+ flash-attention output), FFN; qwen3next selects the output rows before its FFN
        if hp["arch"] == "qwen3next":
            ffn_t = inputs + HT + ffn * n_out // T
        elif hp["n_expert"]:
            ffn_t = inputs + ffn + 2 * 4 * hp["n_expert"] * T
        else:
            ffn_t = inputs + HT + ffn
        return {
            "head": a32(4 * T) + a32(HT) + a32(4 * H * n_out) + a32(HT) + logits,
            "concat": inputs + 3 * HT,
            "attn": inputs + HT + attn + (4 * nh * hd * T if flash_attn else 0),
            "ffn": ffn_t,
        }
    if hp["arch"] not in ("qwen35", "qwen35moe"):
        n_rs_seq = 0
    d_inner, d_state = hp["d_inner"], hp["d_state"]
    conv_dim = d_inner + 2 * hp["n_group"] * d_state
    qkv = 4 * conv_dim * T
    conv_in = 4 * conv_dim * (T + (hp["d_conv"] - 1) * n_seq)  # concat(conv state, qkv^T)
    s_rows = 4 * d_state * d_inner * n_seq
    qk = 2 * 4 * hp["n_group"] * d_state * T
    gdn_out = 4 * (d_inner * T + (1 + n_rs_seq) * d_state * d_inner * n_seq)  # output + state snapshot(s)
    hole = qkv + conv_in - s_rows - qk  # what the freed qkv/conv input leave for the GDN output
    return {
        # LM head: [tokens | inp_embd | result_norm | h_nextn | logits], KQ mask already freed
        "head": a32(4 * T) + a32(HT) + a32(4 * H * n_out) + a32(HT) + logits,
        # same, but the last residual stayed above the KQ mask: the logits come after all inputs
        "head_pinned": inputs + 2 * HT + logits,
        "gdn": (
            inputs
            + 2 * HT
            + a32(4 * n_seq * (hp["d_conv"] - 1) * conv_dim)
            + qkv
            + conv_in
            + qkv
            + (gdn_out if gdn_out > hole else 0)
        ),
        "attn": inputs + 2 * HT + attn,
        "ffn": inputs + (3 * HT if hp["n_expert"] else 2 * HT) + ffn,
    }


PIN_RATIO = 0.02  # the pinned head layout is assumed when the KQ mask is < 2% of the logits


def compute_bytes(hp: dict[str, Any], **kw: Any) -> int:
    """CPU compute buffer of the worst-case pp graph (llama_context::sched_reserve), approximate.

    max over the candidate peaks of compute_terms(); for the LM-head step the layout with the last
    residual above the KQ mask (the mask's hole cannot take the logits) is used when the mask is
    small (< PIN_RATIO of the logits), else the layout where it reuses the mask's space. Which one
    llama.cpp's graph allocator ends in depends on best-fit placement in the last layer and cannot
    be predicted from sizes alone: the truth lies between compute_bounds()."""
    t = compute_terms(hp, **kw)
    pinned = t.pop("head_pinned", None)
    if pinned is not None and pinned - t["head"] <= PIN_RATIO * t["head"]:
        t["head"] = pinned
    return max(t.values())


def compute_bounds(hp: dict[str, Any], **kw: Any) -> tuple[int, int]:
    """(low, high): the LM-head step with the mask's space reused / not reused."""
    t = compute_terms(hp, **kw)
    pinned = t.pop("head_pinned", t["head"])
    low = max(t.values())
    return low, max(low, pinned)
