"""llama.cpp's worst-case text graph for Qwen3.5 / Qwen3-Next, rebuilt node for node, and its compute
buffer replayed through ggml's graph allocator (the reference the closed forms of
:mod:`qwenfit.core.engines.llama_cpp.memory` are checked against).

What llama.cpp reserves (llama.cpp 0c1e570; line numbers of that tree)
-----------------------------------------------------------------------
``llama_context::sched_reserve`` (src/llama-context.cpp:615-757) builds the prompt-processing graph
for the worst-case ubatch and sizes the compute buffer with ``ggml_backend_sched_reserve``; a
no_alloc (fit-params) context keeps the bytes of this first reservation (:674-675). The ubatch
(``graph_reserve``, :2523-2575; ``llama_batch_allocr::ubatch_reserve``, llama-batch.cpp:425-470)
has ``T = min(n_ctx, n_ubatch)`` tokens rounded up to a multiple of ``n_seq``, ``n_seq``
sequences of ``T / n_seq`` tokens each, and ``n_outputs = min(min(n_ctx, n_ubatch), n_outputs_max)``
outputs. The memory module is ``init_full()``: every KV cell is in view (``n_kv`` = cells per
stream, llama-kv-cache.cpp:2789-2804) and the recurrent state has ``n_rs = n_seq`` rows at head 0
(llama-memory-recurrent.cpp:1318-1332).

On the CPU backend the scheduler hands the graph unchanged to ggml-alloc (one split, no copies, no
``graph_optimize`` hook: ggml-backend.cpp:1403-1600, ggml-cpu.cpp:209), so the buffer is exactly
``ggml_gallocr``'s high-water mark over this graph: :mod:`qwenfit.core.engines.llama_cpp.ggml_alloc`.

The graph (src/models/qwen35.cpp, qwen35moe.cpp, qwen3next.cpp; delta-net-base.cpp; llama-graph.cpp)
------------------------------------------------------------------------------------------------------
:func:`text_graph` reproduces, in ggml's depth-first node order (``ggml_build_forward_expand`` at the
same places as the C++ code), every tensor the allocator can see: the graph inputs (token ids, the
unused embeddings input kept by ``ggml_build_forward_select``, the recurrent-state copy indices,
M-RoPE positions, the KV write indices, the KQ mask, the Hadamard rotations of a quantized K/V cache,
the output row ids), the KV cache and recurrent state (external memory: only their views appear),
and per layer the RMS norms, projections, Gated DeltaNet (conv state concat, ``ssm_conv``, L2 norms,
the fused ``gated_delta_net`` op the CPU backend runs, state snapshots), gated attention (flash
attention or the KQ matrix), dense FFN or routed experts with the shared expert; then the final norm
(``h_nextn``, an output), the output rows and the logits. Weights appear as external sources named
by their GGUF name (ggml-alloc never places them; the scheduler of :mod:`.sched` runs an op where
its weight lives). ``mtp_draft=True`` builds the MTP draft context's graph (``graph_mtp``). The
CPU backend's choices are assumed: fused Gated DeltaNet and flash attention exactly when asked.

Checked against llama.cpp (tests/engines/test_llama_graph.py, tests/fixtures/llama_memory): the
node count llama.cpp logs on all 455 runs, and the compute buffer to the byte on all 686
reservations (main, MTP draft and runtime contexts) of the 7 full-size layouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from qwenfit.core.engines.llama_cpp.ggml_alloc import GraphBuilder, GraphTensor, allocate_graph, row_bytes
from qwenfit.core.engines.llama_cpp.graph_gdn import unfused_delta_net
from qwenfit.core.engines.llama_cpp.reserve import GraphSettings, reserve_settings
from qwenfit.core.model.spec import FULL_ATTENTION, ModelSpec

__all__ = ["GraphSettings", "reserve_settings", "text_compute_bytes", "text_graph"]

_QUANT_KV = frozenset({"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"})


# ------------------------------------------------------------------------------------------------
# a tiny ggml: the ops the graph uses, with ggml's result shapes, types and source order
# ------------------------------------------------------------------------------------------------


def _ne(ne: tuple[int, ...]) -> tuple[int, int, int, int]:
    full = (*ne, 1, 1, 1, 1)
    return full[0], full[1], full[2], full[3]


class _Graph(GraphBuilder):
    """The text graph's ops, in ggml's node order (:class:`GraphBuilder`)."""

    def __init__(self) -> None:
        super().__init__()
        self.tag = ""  # default tensor name suffix (the layer), for reading allocator traces
        self.il = -1  # the layer whose weights the ops read (-1: outside the layers)

    # --- tensors ---
    def new(self, op: str, typ: str, ne: tuple[int, ...], *srcs: GraphTensor, name: str = "") -> GraphTensor:
        return GraphTensor(op, typ, _ne(ne), list(srcs), name=name or f"{op.lower()}{self.tag}")

    def wt(self, suffix: str, ne: tuple[int, ...]) -> GraphTensor:
        """A model weight, GGUF name ``blk.<il>.<suffix>`` (``suffix`` outside the layers); external:
        only the scheduler looks at it (the backend of an op reading a weight)."""
        name = suffix if self.il < 0 else f"blk.{self.il}.{suffix}"
        return GraphTensor("NONE", "f32", _ne(ne), ext=True, name=name, weight=True)

    @staticmethod
    def input(typ: str, ne: tuple[int, ...], name: str) -> GraphTensor:
        return GraphTensor("NONE", typ, _ne(ne), flags=1, name=name)  # ggml_set_input

    @staticmethod
    def external(typ: str, ne: tuple[int, ...], name: str) -> GraphTensor:  # KV cache, recurrent state
        return GraphTensor("NONE", typ, _ne(ne), ext=True, name=name)

    def view(
        self, op: str, a: GraphTensor, ne: tuple[int, ...], *extra: GraphTensor, name: str = "",
        nb: tuple[Any, ...] | None = None,
    ) -> GraphTensor:  # fmt: skip
        """A tensor aliasing ``a``'s memory (RESHAPE, VIEW, PERMUTE, TRANSPOSE, and the ops that
        return ``ggml_view_tensor``: CPY into a destination, SET_ROWS, in-place SCALE).
        ggml_new_tensor_impl points ``view_src`` at the owner of the memory (ggml.c:1690-1694).
        ``nb``: the strides of a strided view (ggml_view_Nd's nb1.. with nb0 the type size)."""
        owner = a.view_src or a
        srcs = list(extra) if extra else [a]
        full, st = _ne(ne), list(nb or ())
        while nb is not None and len(st) < 4:  # ggml_view_Nd: nb[i] = nb[i-1] * ne[i-1] above
            st.append(st[-1] * full[len(st) - 1])
        strides = (st[0], st[1], st[2], st[3]) if nb is not None else None
        return GraphTensor(
            op,
            a.type,
            full,
            srcs,
            view_src=owner,
            ext=owner.ext,
            name=name or f"{op.lower()}{self.tag}",
            nb=strides,
        )

    def permute(self, a: GraphTensor, axes: tuple[int, int, int, int]) -> GraphTensor:
        """ggml_permute (ggml.c ggml_permute): dimension i of ``a`` becomes dimension axes[i]."""
        nb_a = a.layout()[2]
        ne, nb = [0] * 4, [0] * 4
        for i, ax in enumerate(axes):
            ne[ax], nb[ax] = a.ne[i], nb_a[i]
        return self.view("TRANSPOSE" if axes == (1, 0, 2, 3) else "PERMUTE", a, tuple(ne), nb=tuple(nb))

    def unary(self, a: GraphTensor, name: str = "") -> GraphTensor:  # ggml_unary: silu, sigmoid, softplus
        return self.new("UNARY", a.type, a.ne, a, name=name)

    def mul_mat(self, rows: int, b: GraphTensor, a: GraphTensor | str, name: str = "") -> GraphTensor:
        """ggml_mul_mat(a, b) -> [a.ne1, b.ne1, b.ne2, b.ne3] F32; ``a`` a str = the weight of that name."""
        w = self.wt(a, (b.ne[0], rows)) if isinstance(a, str) else a
        return self.new("MUL_MAT", "f32", (rows, b.ne[1], b.ne[2], b.ne[3]), w, b, name=name)

    def rms_norm(self, a: GraphTensor, w: str, name: str = "") -> GraphTensor:
        """build_norm(LLM_NORM_RMS) with weight ``w``: rms_norm then mul (llama-graph.cpp:1597-1631)."""
        cur = self.new("RMS_NORM", "f32", a.ne, a, name=name or f"norm{self.tag}")  # cb(cur, "norm", il)
        return self.new("MUL", "f32", cur.ne, cur, self.wt(w, (a.ne[0],)), name=name)


# ------------------------------------------------------------------------------------------------
# the model graphs
# ------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Inputs:
    pos: GraphTensor
    out_ids: GraphTensor
    k_idxs: GraphTensor
    v_idxs: GraphTensor
    kq_mask: GraphTensor
    k_rot: GraphTensor | None
    v_rot: GraphTensor | None
    mask_f16: GraphTensor | None = None  # builds before PR #23764: the F32 mask cast to F16 once

    def fa_mask(self, g: _Graph) -> GraphTensor:
        """The mask flash attention reads: the F16 input, or (an F32 input, builds before llama.cpp
        PR #23764) ``ggml_cast(mask, F16)``, a node entering the graph before the first attention."""
        if self.kq_mask.type == "f16":
            return self.kq_mask
        if self.mask_f16 is None:
            self.mask_f16 = g.new("CPY", "f16", self.kq_mask.ne, self.kq_mask)
            self.mask_f16.srcs.append(self.mask_f16)
        return self.mask_f16


def _attn_inputs(g: _Graph, spec: ModelSpec, s: GraphSettings) -> tuple[GraphTensor, ...]:
    """build_attn_inp_kv_impl (llama-graph.cpp:2835-2858): k/v write indices (llama-kv-cache.cpp:
    1419-1445; per V element without flash attention: the V cache is transposed), the KQ mask
    [n_kv, T/n_stream, 1, n_stream] (F16 with flash attention, :29-46) and the Hadamard rotations of
    a quantized K/V cache (llama-kv-cache.cpp:321-338, 1447-1485)."""
    t = spec.text
    hd = t.head_dim
    T = s.n_tokens
    k_idxs = g.input("i64", (T,), "attn_inp_k_idxs")
    v_idxs = g.input("i64", (T if s.flash_attn else T * t.num_key_value_heads * hd,), "attn_inp_v_idxs")
    f16 = s.flash_attn and not s.mask_f32
    mask = g.input("f16" if f16 else "f32", (s.n_kv, T // s.n_stream, 1, s.n_stream), "attn_inp_kq_mask")
    k_rot = v_rot = None
    if s.type_k in _QUANT_KV and hd % 64 == 0 and s.kv_rot:
        nrot = 64
        while hd % (nrot * 2) == 0:
            nrot *= 2
        k_rot = g.input("f32", (nrot, nrot), "attn_inp_k_rot")
    if s.type_v in _QUANT_KV and hd % 64 == 0 and s.kv_rot:
        v_rot = g.input("f32", (64, 64), "attn_inp_v_rot")
    return k_idxs, v_idxs, mask, k_rot, v_rot  # type: ignore[return-value]


def _hadamard(g: _Graph, cur: GraphTensor, rot: GraphTensor, contiguous: bool) -> GraphTensor:
    """llama_mul_mat_hadamard (llama-impl.h:57-75)."""
    n = rot.ne[0]
    nel = cur.ne[0] * cur.ne[1] * cur.ne[2] * cur.ne[3]
    res = g.view("RESHAPE", cur, (n, nel // n)) if contiguous else g.new("CONT", cur.type, (n, nel // n), cur)
    res = g.mul_mat(n, res, rot)
    return g.view("RESHAPE", res, cur.ne)


def _build_attn(
    g: _Graph, spec: ModelSpec, s: GraphSettings, inp: _Inputs,
    q: GraphTensor, k: GraphTensor, v: GraphTensor, k_cache: GraphTensor, v_cache: GraphTensor,
) -> GraphTensor:  # fmt: skip
    """llm_graph_context::build_attn with a KV cache (llama-graph.cpp:2868-2955) and build_attn_mha
    (:2616-2755). ``q`` [hd, n_head, T] (a tensor), ``k``/``v`` [hd, n_head_kv, T]."""
    t = spec.text
    hd, nkv = t.head_dim, t.num_key_value_heads
    T, ns = s.n_tokens, s.n_stream
    if inp.k_rot is not None:
        q = _hadamard(g, q, inp.k_rot, True)
        k = _hadamard(g, k, inp.k_rot, True)
    if inp.v_rot is not None:
        v = _hadamard(g, v, inp.v_rot, True)
    g.expand(q)
    g.expand(v)
    g.expand(k)
    # cpy_k / cpy_v (llama-kv-cache.cpp:1328-1417)
    kv_rows = s.n_kv * ns
    kview = g.view("VIEW", k, (hd * nkv, T))
    kc = g.view("RESHAPE", k_cache, (hd * nkv, kv_rows)) if ns > 1 else k_cache
    g.expand(g.view("SET_ROWS", kc, kc.ne, kview, inp.k_idxs, kc))
    if s.flash_attn:  # V not transposed
        vview = g.view("VIEW", v, (hd * nkv, T))
        vc = g.view("RESHAPE", v_cache, (hd * nkv, kv_rows)) if ns > 1 else v_cache
    else:
        vview = g.view("RESHAPE", v, (hd * nkv, T))
        vview = g.view("RESHAPE", vview, (1, hd * nkv * T))
        vc = g.view("RESHAPE", v_cache, (1, hd * nkv * kv_rows))
    g.expand(g.view("SET_ROWS", vc, vc.ne, vview, inp.v_idxs, vc))
    # get_k / get_v (:1276-1326)
    kk = g.view("VIEW", k_cache, (hd, nkv, s.n_kv, ns))
    if s.flash_attn:
        vv = g.view("VIEW", v_cache, (hd, nkv, s.n_kv, ns))
    else:  # the transposed V cache (llama-kv-cache.cpp get_v)
        rv = row_bytes(s.type_v, 1)
        vv = g.view("VIEW", v_cache, (s.n_kv, nkv, hd, ns), nb=(rv, rv * s.n_kv * hd, rv * s.n_kv))
    nh = q.ne[1]
    qv = g.view("VIEW", q, (hd, nh, T // ns, ns))
    qp = g.permute(qv, (0, 2, 1, 3))
    kp = g.permute(kk, (0, 2, 1, 3))
    if s.flash_attn:
        vp = g.permute(vv, (0, 2, 1, 3))
        if kp.type == "f32":  # ggml_cast to F16 (:2646-2652)
            kp = g.new("CPY", "f16", kp.ne, kp)
            kp.srcs.append(kp)
        if vp.type == "f32":
            vp = g.new("CPY", "f16", vp.ne, vp)
            vp.srcs.append(vp)
        cur = g.new("FLASH_ATTN_EXT", "f32", (hd, nh, T // ns, ns), qp, kp, vp, inp.fa_mask(g))
        cur = g.view("RESHAPE", cur, (hd * nh, T))
    else:
        vp = g.permute(vv, (0, 2, 1, 3))
        kq = g.new("MUL_MAT", "f32", (s.n_kv, T // ns, nh, ns), kp, qp)
        kq = g.new("SOFT_MAX", "f32", kq.ne, kq, inp.kq_mask)
        kqv = g.new("MUL_MAT", "f32", (hd, T // ns, nh, ns), vp, kq)
        kqv = g.permute(kqv, (0, 2, 1, 3))
        cur = g.new("CONT", "f32", (hd * nh, T), kqv)
    g.expand(cur)
    if inp.v_rot is not None:
        cur = _hadamard(g, cur, inp.v_rot, True)
    return cur


def _attention_layer(
    g: _Graph, spec: ModelSpec, s: GraphSettings, inp: _Inputs, x: GraphTensor, il: int, *, mtp: bool = False
) -> GraphTensor:
    """build_layer_attn (qwen35.cpp:123-201, qwen3next.cpp build_layer_attn; graph_mtp's block):
    Q+gate, K, V projections, Q/K RMS norms, (M-)RoPE, attention, sigmoid gate, output projection."""
    t = spec.text
    hd, nh, nkv, T = t.head_dim, t.num_attention_heads, t.num_key_value_heads, s.n_tokens
    next_main = spec.family == "qwen3_next" and not mtp
    q_full = g.mul_mat(2 * hd * nh, x, "attn_q.weight")
    k = g.mul_mat(hd * nkv, x, "attn_k.weight")
    v = g.mul_mat(hd * nkv, x, "attn_v.weight")
    if next_main:
        q_full = g.view("RESHAPE", q_full, (2 * hd, nh, T, 1))
    qnb = (4, 8 * hd, 8 * hd * nh)  # Q and gate interleaved per head
    q = g.view("VIEW", q_full, (hd, nh, T), nb=qnb)
    if next_main:  # gate view taken first, K and V reshaped before the norms
        gate = g.view("VIEW", q_full, (hd, nh, T, 1), nb=qnb)
        k = g.view("RESHAPE", k, (hd, nkv, T))
        v = g.view("RESHAPE", v, (hd, nkv, T))
        q = g.rms_norm(q, "attn_q_norm.weight")
        k = g.rms_norm(k, "attn_k_norm.weight")
    else:
        q = g.rms_norm(q, "attn_q_norm.weight")
        k = g.rms_norm(g.view("RESHAPE", k, (hd, nkv, T)), "attn_k_norm.weight")
        if not mtp:
            gate = g.new("CONT", "f32", (hd * nh, T), g.view("VIEW", q_full, (hd, nh, T), nb=qnb))
        v = g.view("RESHAPE", v, (hd, nkv, T))
    q = g.new("ROPE", "f32", q.ne, q, inp.pos)
    k = g.new("ROPE", "f32", k.ne, k, inp.pos)
    kc = g.external(s.type_k, (hd * nkv, s.n_kv, s.n_stream), f"cache_k_l{il}")
    vc = g.external(s.type_v, (hd * nkv, s.n_kv, s.n_stream), f"cache_v_l{il}")
    cur = _build_attn(g, spec, s, inp, q, k, v, kc, vc)
    if next_main or mtp:
        src = gate if next_main else g.view("VIEW", q_full, (hd, nh, T), nb=qnb)
        gate = g.new("CONT", "f32", (hd * nh, T), src)
    gate = g.unary(gate)
    cur = g.new("MUL", "f32", cur.ne, cur, gate)
    return g.mul_mat(t.hidden_size, cur, "attn_output.weight")


def _gdn_layer(g: _Graph, spec: ModelSpec, s: GraphSettings, x: GraphTensor,
               s_copy: tuple[GraphTensor, GraphTensor], il: int) -> GraphTensor:  # fmt: skip
    """build_layer_attn_linear (qwen35.cpp:203-336, qwen3next.cpp) with build_conv_state /
    build_rs / build_recurrent_attn (delta-net-base.cpp:400-606, llama-graph.cpp:3512-3590) and the
    fused gated_delta_net op (delta-net-base.cpp:306-350)."""
    t = spec.text
    T, ns = s.n_tokens, s.n_seq
    tps = T // ns
    dk, hk, hv = t.linear_key_head_dim, t.linear_num_key_heads, t.linear_num_value_heads
    dv = t.linear_value_head_dim
    conv_dim, d_conv = t.linear_conv_dim, t.linear_conv_kernel_dim
    n_rs = ns  # init_full: n_rs = mem size = n_seq_max
    K = s.n_rs_seq + 1
    r_size, s_size = (d_conv - 1) * conv_dim, dk * dv * hv
    next_arch = spec.family == "qwen3_next"
    r_all = g.external("f32", (r_size, n_rs * K), f"cache_r_l{il}")
    s_all = g.external("f32", (s_size, n_rs * K), f"cache_s_l{il}")
    s_main, s_extra = s_copy

    def build_rs(all_: GraphTensor, size: int) -> GraphTensor:
        states = g.view("RESHAPE", all_, (size, all_.ne[1]))
        zero = g.view("VIEW", states, (size,))
        g.expand(g.view("SCALE", zero, zero.ne))  # ggml_scale_inplace
        out = g.new("GET_ROWS", "f32", (size, ns), states, s_main)
        g.expand(out)
        extra = g.new("GET_ROWS", "f32", (size, n_rs - ns), states, s_extra)
        dst = g.view("VIEW", all_, (size, n_rs - ns))
        g.expand(g.view("CPY", dst, dst.ne, extra, dst))
        return out

    # input projections
    qkv = g.mul_mat(conv_dim, x, "attn_qkv.weight")
    qkv = g.view("RESHAPE", qkv, (conv_dim, tps, ns))
    z = g.mul_mat(hv * dv, x, "attn_gate.weight")
    dt_bias, ssm_a = g.wt("ssm_dt.bias", (hv,)), g.wt("ssm_a", (hv,))
    if next_arch:
        ba = g.mul_mat(2 * hv, x, "ssm_ba.weight")
        ba_r = g.view("RESHAPE", ba, (2 * hv // hk, hk, tps, ns))
        b = g.view("VIEW", ba_r, (hv // hk, hk, tps, ns))
        a = g.view("VIEW", ba_r, (hv // hk, hk, tps, ns))
        beta = g.unary(g.new("CONT", "f32", b.ne, b))
        alpha = g.new("CONT", "f32", (hv, tps, ns), a)
        gate = g.new("MUL", "f32", alpha.ne, g.unary(g.new("ADD", "f32", alpha.ne, alpha, dt_bias)), ssm_a)
        beta = g.view("RESHAPE", beta, (1, hv, tps, ns))
        gate = g.view("RESHAPE", gate, (1, hv, tps, ns))
    else:
        beta = g.mul_mat(hv, x, "ssm_beta.weight")
        beta = g.unary(g.view("RESHAPE", beta, (1, hv, tps, ns)))
        alpha = g.view("RESHAPE", g.mul_mat(hv, x, "ssm_alpha.weight"), (hv, tps, ns))
        gate = g.new("MUL", "f32", alpha.ne, g.unary(g.new("ADD", "f32", alpha.ne, alpha, dt_bias)), ssm_a)
        gate = g.view("RESHAPE", gate, (1, hv, tps, ns))
    # build_conv_state
    conv_states = build_rs(r_all, r_size)
    conv_states = g.view("RESHAPE", conv_states, (d_conv - 1, conv_dim, ns))
    qkv_t = g.permute(qkv, (1, 0, 2, 3))
    conv_input = g.new("CONCAT", "f32", (d_conv - 1 + tps, conv_dim, ns), conv_states, qkv_t)
    for _ in range(K):
        last = g.view("VIEW", conv_input, (d_conv - 1, conv_dim, ns), nb=conv_input.layout()[2][:3])
        upd = g.view("VIEW", r_all, (r_size, ns))
        g.expand(g.view("CPY", upd, upd.ne, last, upd))
    state = build_rs(s_all, s_size)
    state = g.view("RESHAPE", state, (dv, dv, hv, ns))
    conv_w = g.wt("ssm_conv1d.weight", (d_conv, conv_dim))
    conv_out = g.new("SSM_CONV", "f32", (conv_dim, tps, ns), conv_input, conv_w)
    conv_out = g.unary(conv_out)
    cnb = (4 * conv_dim, 4 * conv_dim * tps)  # q, k, v: column slices of the conv output
    q = g.view("VIEW", conv_out, (dk, hk, tps, ns), nb=(4, 4 * dk, *cnb))
    k = g.view("VIEW", conv_out, (dk, hk, tps, ns), nb=(4, 4 * dk, *cnb))
    v = g.view("VIEW", conv_out, (dv, hv, tps, ns), nb=(4, 4 * dv, *cnb))
    if s.gdn_l2_op:  # ggml_l2_norm, before PR #28068 (qwen35.cpp: q_conv = ggml_l2_norm(...))
        q, k = g.new("L2_NORM", "f32", q.ne, q), g.new("L2_NORM", "f32", k.ne, k)
    else:  # build_gdn_l2_norm (models.h:14-18): rms_norm then scale
        q = g.new("SCALE", "f32", q.ne, g.new("RMS_NORM", "f32", q.ne, q))
        k = g.new("SCALE", "f32", k.ne, g.new("RMS_NORM", "f32", k.ne, k))
    if next_arch and hk != hv:  # qwen3next repeats K heads even for the fused op
        rf = hv // hk
        rep = (dk, rf, hk, tps * ns)
        q = g.view(
            "RESHAPE",
            g.new("REPEAT", "f32", rep, g.view("RESHAPE", q, (dk, 1, hk, tps * ns))),
            (dk, hv, tps, ns),
        )
        k = g.view(
            "RESHAPE",
            g.new("REPEAT", "f32", rep, g.view("RESHAPE", k, (dk, 1, hk, tps * ns))),
            (dk, hv, tps, ns),
        )
    if not s.gdn_fused and tps > 1 and K == 1:  # build_delta_net_chunking (fused_gdn_ch off)
        output = unfused_delta_net(g, q, k, v, gate, beta, state, s_all, repeat=not next_arch and hk != hv)
    else:  # build_recurrent_attn / build_delta_net_fused
        gdn = g.new("GATED_DELTA_NET", "f32", (dv * hv, T + K * dv * ns), q, k, v, gate, beta, state)
        output = g.view("VIEW", gdn, (dv, hv, tps, ns))
        if K == 1:
            new_state = g.view("VIEW", gdn, (dv, dv, hv, ns))
            dst = g.view("VIEW", s_all, (s_size, ns))
        else:
            n_written = min(tps, K)
            new_state = g.view("VIEW", gdn, (s_size, ns, n_written))
            dst = g.view("VIEW", s_all, (s_size, ns, n_written))
        g.expand(g.view("CPY", dst, dst.ne, new_state, dst))
    z4 = g.view("RESHAPE", z, (dv, hv, tps, ns))
    normed = g.rms_norm(output, "ssm_norm.weight")
    cur = g.new("MUL", "f32", normed.ne, normed, g.unary(z4))
    cur = g.view("RESHAPE", cur, (dv * hv, tps, ns))
    cur = g.mul_mat(t.hidden_size, cur, "ssm_out.weight")
    return g.view("RESHAPE", cur, (t.hidden_size, T))


def _dense_ffn(g: _Graph, x: GraphTensor, n_ff: int, n_embd: int, sfx: str = "") -> GraphTensor:
    """build_ffn(SILU, PAR) (llama-graph.cpp:1762-1961): up, gate, swiglu_split(gate, up), down;
    ``sfx`` "_shexp" for the shared expert."""
    up = g.mul_mat(n_ff, x, f"ffn_up{sfx}.weight")
    gate = g.mul_mat(n_ff, x, f"ffn_gate{sfx}.weight")
    cur = g.new("GLU", "f32", gate.ne, gate, up)
    return g.mul_mat(n_embd, cur, f"ffn_down{sfx}.weight")


def _moe_ffn(g: _Graph, spec: ModelSpec, x: GraphTensor) -> GraphTensor:
    """build_moe_ffn (llama-graph.cpp:2007-2374) with softmax gating, normalised weights, separate
    gate/up experts, then the gated shared expert (qwen35moe.cpp / qwen3next.cpp build_layer_ffn)."""
    t = spec.text
    h, n_exp, k, ff = t.hidden_size, t.num_experts, t.num_experts_per_tok, t.moe_intermediate_size
    n = x.ne[1]
    logits = g.mul_mat(n_exp, x, "ffn_gate_inp.weight")
    probs = g.new("SOFT_MAX", "f32", logits.ne, logits)
    argsort = g.new("ARGSORT", "i32", probs.ne, probs)
    selected = g.view("VIEW", argsort, (k, n), nb=(4, 4 * n_exp))
    probs3 = g.view("RESHAPE", probs, (1, n_exp, n))
    weights = g.new("GET_ROWS", "f32", (1, k, n), probs3, selected)
    weights = g.view("RESHAPE", weights, (k, n))
    wsum = g.new("SUM_ROWS", "f32", (1, n), weights)
    wsum = g.new("CLAMP", "f32", wsum.ne, wsum)
    weights = g.new("DIV", "f32", weights.ne, weights, wsum)
    weights = g.view("RESHAPE", weights, (1, k, n))
    g.expand(weights)
    cur = g.view("RESHAPE", x, (h, 1, n))
    up = g.new("MUL_MAT_ID", "f32", (ff, k, n), g.wt("ffn_up_exps.weight", (h, ff, n_exp)), cur, selected)
    gate = g.new("MUL_MAT_ID", "f32", (ff, k, n), g.wt("ffn_gate_exps.weight", (h, ff, n_exp)), cur, selected)
    act = g.new("GLU", "f32", gate.ne, gate, up)
    down = g.wt("ffn_down_exps.weight", (ff, h, n_exp))
    experts = g.new("MUL_MAT_ID", "f32", (h, k, n), down, act, selected)
    experts = g.new("MUL", "f32", experts.ne, experts, weights)
    g.expand(experts)
    views = [g.view("VIEW", experts, (h, n), nb=(4, 4 * h * k)) for _ in range(k)]
    for v in views:
        g.expand(v)
    moe_out = views[0]
    for v in views[1:]:
        moe_out = g.new("ADD", "f32", (h, n), moe_out, v)
        g.expand(moe_out)
    if k == 1:
        moe_out = g.new("CONT", "f32", (h, n), moe_out)
    if t.shared_expert_intermediate_size <= 0:
        return moe_out
    shexp = _dense_ffn(g, x, t.shared_expert_intermediate_size, h, "_shexp")
    sgate = g.unary(g.mul_mat(1, x, "ffn_gate_inp_shexp.weight"))
    shexp = g.new("MUL", "f32", shexp.ne, shexp, sgate)
    return g.new("ADD", "f32", moe_out.ne, moe_out, shexp)


def _ffn(g: _Graph, spec: ModelSpec, x: GraphTensor, il: int) -> GraphTensor:
    t = spec.text
    if spec.family == "qwen3_next":
        if t.layer_is_moe(il):
            return _moe_ffn(g, spec, x)
        return _dense_ffn(g, x, t.intermediate_size, t.hidden_size)
    if t.is_moe:
        return _moe_ffn(g, spec, x)
    return _dense_ffn(g, x, t.intermediate_size, t.hidden_size)


def _n_pos(spec: ModelSpec) -> int:
    """n_pos_per_embd: 4 M-RoPE sections for Qwen3.5 (qwen35/qwen35moe), 1 for Qwen3-Next
    (llama-hparams.cpp:285-288)."""
    return 1 if spec.family == "qwen3_next" else 4


def _main_graph(spec: ModelSpec, s: GraphSettings) -> _Graph:
    t = spec.text
    g = _Graph()
    T, h = s.n_tokens, t.hidden_size
    # build_inp_embd (llama-graph.cpp:2376-2463): token rows, and the embeddings input kept by
    # ggml_build_forward_select
    tokens = g.input("i32", (T,), "inp_tokens")
    embd = g.input("f32", (h, T), "inp_embd")
    embd_w = g.wt("token_embd.weight", (h, t.vocab_size))
    inpL = g.new("GET_ROWS", "f32", (h, T), embd_w, tokens, name="model.input_embed")
    g.expand(inpL)
    g.expand(embd)
    # build_inp_mem_hybrid (:3633-3642), build_inp_pos, build_inp_out_ids (:2465-2514)
    rs = g.input("i32", (s.n_seq,), "rs_s_copy")  # n_rs = n_seq rows (init_full)
    s_copy = (g.view("VIEW", rs, (s.n_seq,)), g.view("VIEW", rs, (0,)))  # build_rs_inp_impl (:3548-3569)
    k_idxs, v_idxs, mask, k_rot, v_rot = _attn_inputs(g, spec, s)
    pos = g.input("i32", (T * _n_pos(spec),), "inp_pos")
    out_ids = g.input("i32", (s.n_outputs,), "out_ids")
    inp = _Inputs(pos, out_ids, k_idxs, v_idxs, mask, k_rot, v_rot)
    # before MTP support (PR #22673) qwen35.cpp picked the output rows in the last layer (cur and
    # inpSA, as every llama.cpp model does); since, after the final norm (qwen35.cpp:174-213)
    early = not s.h_nextn_output
    for il, kind in enumerate(t.layer_types):
        g.tag, g.il = f"-{il}", il
        inpSA = inpL
        cur = g.rms_norm(inpL, "attn_norm.weight")
        g.expand(cur)
        if kind == FULL_ATTENTION:
            cur = _attention_layer(g, spec, s, inp, cur, il)
        else:
            cur = _gdn_layer(g, spec, s, cur, s_copy, il)
        if early and il == len(t.layer_types) - 1:  # the output rows picked in the last layer
            cur = g.new("GET_ROWS", "f32", (h, s.n_outputs), cur, out_ids)
            inpSA = g.new("GET_ROWS", "f32", (h, s.n_outputs), inpSA, out_ids)
        cur = g.new("ADD", "f32", cur.ne, cur, inpSA)
        ffn_residual = cur
        cur = g.rms_norm(cur, "post_attention_norm.weight")
        cur = _ffn(g, spec, cur, il)
        inpL = g.new("ADD", "f32", cur.ne, cur, ffn_residual)
    g.tag, g.il = "", -1
    cur = g.rms_norm(inpL, "output_norm.weight", name="h_nextn")
    if s.h_nextn_output:  # res->t_h_nextn: an output (llama-graph.cpp:1367-1379; from the MTP PR #22673)
        cur.flags |= 2
    if not early:
        cur = g.new("GET_ROWS", "f32", (h, s.n_outputs), cur, out_ids, name="result_norm")
    cur.flags |= 2  # t_embd
    cur = g.mul_mat(t.vocab_size, cur, "output.weight", name="result_output")
    cur.flags |= 2  # t_logits
    g.expand(cur)
    return g


def _mtp_graph(spec: ModelSpec, s: GraphSettings) -> _Graph:
    """graph_mtp of qwen35.cpp / qwen35moe.cpp / qwen3next.cpp (the MTP draft context)."""
    t = spec.text
    g = _Graph()
    T, h = s.n_tokens, t.hidden_size
    tokens = g.input("i32", (T,), "tokens")
    tok_embd = g.new("GET_ROWS", "f32", (h, T), g.wt("token_embd.weight", (h, t.vocab_size)), tokens)
    il = g.il = t.num_hidden_layers
    h_embd = g.input("f32", (h, T), "mtp_h_input")
    pos = g.input("i32", (T * _n_pos(spec),), "inp_pos")
    out_ids = g.input("i32", (s.n_outputs,), "out_ids")
    k_idxs, v_idxs, mask, k_rot, v_rot = _attn_inputs(g, spec, s)
    inp = _Inputs(pos, out_ids, k_idxs, v_idxs, mask, k_rot, v_rot)
    h_norm = g.rms_norm(h_embd, "nextn.hnorm.weight")
    e_norm = g.rms_norm(tok_embd, "nextn.enorm.weight")
    concat = g.new("CONCAT", "f32", (2 * h, T), e_norm, h_norm)
    cur = g.mul_mat(h, concat, "nextn.eh_proj.weight")
    inpSA = cur
    cur = g.rms_norm(cur, "attn_norm.weight")
    cur = _attention_layer(g, spec, s, inp, cur, il, mtp=True)
    if spec.family == "qwen3_next":  # the output rows are selected before the residual
        cur = g.new("GET_ROWS", "f32", (h, s.n_outputs), cur, out_ids)
        inpSA = g.new("GET_ROWS", "f32", (h, s.n_outputs), inpSA, out_ids)
    cur = g.new("ADD", "f32", cur.ne, cur, inpSA)
    ffn_residual = cur
    cur = g.rms_norm(cur, "post_attention_norm.weight")
    cur = _moe_ffn(g, spec, cur) if t.is_moe else _dense_ffn(g, cur, t.intermediate_size, h)
    cur = g.new("ADD", "f32", cur.ne, cur, ffn_residual)
    cur = g.rms_norm(cur, "nextn.shared_head_norm.weight", name="h_nextn")
    cur.flags |= 2
    if spec.family != "qwen3_next":
        cur = g.new("GET_ROWS", "f32", (h, s.n_outputs), cur, out_ids)
    g.il = -1
    cur = g.mul_mat(t.vocab_size, cur, "output.weight", name="result_output")
    cur.flags |= 2
    g.expand(cur)
    return g


def text_graph(
    spec: ModelSpec, s: GraphSettings, *, mtp_draft: bool = False
) -> tuple[list[GraphTensor], list[GraphTensor]]:
    """(leafs, nodes) of the graph llama.cpp reserves for these settings (weights external leafs)."""
    g = _mtp_graph(spec, s) if mtp_draft else _main_graph(spec, s)
    return g.leafs, g.nodes


@lru_cache(maxsize=4096)
def _bytes(spec: ModelSpec, s: GraphSettings, mtp_draft: bool) -> int:
    leafs, nodes = text_graph(spec, s, mtp_draft=mtp_draft)
    return allocate_graph(leafs, nodes).size


def text_compute_bytes(spec: ModelSpec, *, mtp_draft: bool = False, **settings: Any) -> int:
    """The CPU compute buffer ``sched_reserve`` sizes (exact: the allocator replayed on the rebuilt
    graph). ``settings``: the keyword arguments of :func:`reserve_settings`, as for
    :func:`qwenfit.core.engines.llama_cpp.memory.compute_buffer_bytes`."""
    if spec.family == "qwen3_next" or mtp_draft:
        settings["n_rs_seq"] = 0
    return _bytes(spec, reserve_settings(**settings), mtp_draft)
