"""Gated DeltaNet without the fused op: ``build_delta_net_chunking`` (src/models/delta-net-base.cpp:
16-287, llama.cpp 0c1e570), the graph a prompt batch builds when ``cparams.fused_gdn_ch`` is off: in
builds before the fused GATED_DELTA_NET op, and when the op's probe finds it on another device than
its layer (llama-context.cpp resolve_fused_ops). The chunks of 64 tokens and the per-chunk state
update are ops of their own, so the compute buffer holds their intermediates.
"""

from __future__ import annotations

from typing import Protocol

from qwenfit.core.engines.llama_cpp.ggml_alloc import GraphTensor

__all__ = ["delta_net_chunking", "unfused_delta_net"]

CHUNK = 64  # CS for Qwen3.5 / Qwen3-Next (16 only for KDA gates)


class _G(Protocol):  # the graph builder of .graph (kept structural: no import cycle)
    def new(
        self, op: str, typ: str, ne: tuple[int, ...], *srcs: GraphTensor, name: str = ""
    ) -> GraphTensor: ...
    def view(
        self, op: str, a: GraphTensor, ne: tuple[int, ...], *extra: GraphTensor, name: str = "",
        nb: tuple[int, ...] | None = None,
    ) -> GraphTensor: ...  # fmt: skip
    def permute(self, a: GraphTensor, axes: tuple[int, int, int, int]) -> GraphTensor: ...
    def expand(self, root: GraphTensor) -> None: ...


def _contiguous_nb(t: GraphTensor) -> tuple[int, ...]:
    return t.layout()[2]


def _reshape(g: _G, a: GraphTensor, ne: tuple[int, int, int, int]) -> GraphTensor:
    return g.view("RESHAPE", a, ne)


def _cont_t(g: _G, a: GraphTensor) -> GraphTensor:
    """ggml_cont(ggml_transpose(a))."""
    t = g.permute(a, (1, 0, 2, 3))
    return g.new("CONT", "f32", t.ne, t)


def _slice(g: _G, t: GraphTensor, c: int) -> GraphTensor:
    """get_slice_2d (delta-net-base.cpp:9-12): [x, y, 1, b] view of chunk c."""
    nb = _contiguous_nb(t)
    return g.view("VIEW", t, (t.ne[0], t.ne[1], 1, t.ne[3]), nb=(nb[0], nb[1], nb[2], nb[3]))


def delta_net_chunking(
    g: _G,
    q: GraphTensor,
    k: GraphTensor,
    v: GraphTensor,
    gate: GraphTensor,
    beta: GraphTensor,
    s: GraphTensor,
) -> tuple[GraphTensor, GraphTensor]:
    """(output [S_v, H_v, T, n_seqs] view, new state [S_v, S_v, H_v, n_seqs]) of
    build_delta_net_chunking; ``q``/``k`` already repeated to H_v heads (qwen35.cpp repeats them
    when the fused op is off)."""
    sk, h, T, ns = q.ne
    sv = v.ne[0]
    pad = (CHUNK - T % CHUNK) % CHUNK
    nch = (T + pad) // CHUNK
    hn = h * ns
    q = g.new("SCALE", "f32", q.ne, q)
    q, k, v = g.permute(q, (0, 2, 1, 3)), g.permute(k, (0, 2, 1, 3)), g.permute(v, (0, 2, 1, 3))
    gate, beta = g.permute(gate, (0, 2, 1, 3)), g.permute(beta, (0, 2, 1, 3))

    def padded(a: GraphTensor) -> GraphTensor:  # ggml_pad: a new tensor even when pad is 0
        return g.new("PAD", "f32", (a.ne[0], a.ne[1] + pad, a.ne[2], a.ne[3]), a)

    q, k, v, gate, beta = padded(q), padded(k), padded(v), padded(gate), padded(beta)
    v_b = g.new("MUL", "f32", v.ne, v, beta)
    k_b = g.new("MUL", "f32", k.ne, k, beta)
    q = _reshape(g, q, (sk, CHUNK, nch, hn))
    k = _reshape(g, k, (sk, CHUNK, nch, hn))
    k_b = _reshape(g, k_b, (sk, CHUNK, nch, hn))
    v = _reshape(g, v, (sv, CHUNK, nch, hn))
    v_b = _reshape(g, v_b, (sv, CHUNK, nch, hn))
    gate = _reshape(g, gate, (1, CHUNK, nch, hn))
    beta = _reshape(g, beta, (1, CHUNK, nch, hn))
    g_cs = _cont_t(g, gate)
    g_cs = g.new("CUMSUM", "f32", g_cs.ne, g_cs)
    cc = (CHUNK, CHUNK, nch, hn)
    g_cs_j = _reshape(g, g_cs, (1, CHUNK, nch, hn))
    g_cs_j = g.new("REPEAT", "f32", cc, g_cs_j)
    decay = g.new("SUB", "f32", cc, g_cs_j, g_cs)
    decay = g.new("TRI", "f32", cc, decay)
    decay = g.new("UNARY", "f32", cc, decay)  # exp
    kb = g.new("MUL_MAT", "f32", cc, k, k_b)
    kb = g.new("MUL", "f32", cc, kb, decay)
    kq = g.new("MUL_MAT", "f32", cc, k, q)
    kq = g.new("MUL", "f32", cc, kq, decay)
    kq = g.new("TRI", "f32", cc, kq)
    attn = g.new("TRI", "f32", cc, kb)
    identity = g.view("VIEW", attn, (CHUNK,))
    identity = g.new("FILL", "f32", identity.ne, identity)
    identity = g.new("DIAG", "f32", (CHUNK, CHUNK), identity)
    lhs = g.new("ADD", "f32", cc, attn, identity)
    attn = g.new("UNARY", "f32", cc, attn)  # neg
    solved = g.new("SOLVE_TRI", "f32", cc, lhs, attn)
    attn = g.new("ADD", "f32", cc, solved, identity)
    v_bt = _cont_t(g, v_b)
    v = g.new("MUL_MAT", "f32", (sv, CHUNK, nch, hn), v_bt, attn)
    g_exp = g.new("UNARY", "f32", g_cs.ne, g_cs)  # exp
    k_b = _cont_t(g, k_b)
    kbg = g.new("MUL", "f32", k_b.ne, k_b, g_exp)
    k_cd = g.new("MUL_MAT", "f32", (sk, CHUNK, nch, hn), kbg, attn)
    g_exp_t = _cont_t(g, g_exp)
    q_g_exp = g.new("MUL", "f32", q.ne, q, g_exp_t)
    nb = _contiguous_nb(g_cs)
    g_last = g.view("VIEW", g_cs, (1, g_cs.ne[1], nch, hn), nb=(nb[0], nb[1], nb[2], nb[3]))
    g_last = g.new("CONT", "f32", g_last.ne, g_last)
    g_last_exp = g.new("UNARY", "f32", g_last.ne, g_last)  # exp
    g_last_exp_t = g.permute(g_last_exp, (1, 0, 2, 3))
    g_diff = g.new("SUB", "f32", g_cs.ne, g_cs, g_last)
    g_diff = g.new("UNARY", "f32", g_diff.ne, g_diff)  # neg
    g_diff_exp = g.new("UNARY", "f32", g_diff.ne, g_diff)  # exp
    g_diff_exp_t = _cont_t(g, g_diff_exp)
    kg = g.new("MUL", "f32", k.ne, k, g_diff_exp_t)
    kg_t = _cont_t(g, kg)
    s = _reshape(g, s, (sv, sv, 1, hn))
    v_t = _cont_t(g, v)
    for _ in range(nch):
        ch_k_cd, ch_v_t, ch_kq = _slice(g, k_cd, 0), _slice(g, v_t, 0), _slice(g, kq, 0)
        ch_q_g_exp, ch_kg_t = _slice(g, q_g_exp, 0), _slice(g, kg_t, 0)
        v_t_p = g.new("MUL_MAT", "f32", (CHUNK, sv, 1, hn), ch_k_cd, s)
        v_t_new = g.new("SUB", "f32", v_t_p.ne, ch_v_t, v_t_p)
        v_attn = g.new("MUL_MAT", "f32", (sv, CHUNK, 1, hn), v_t_new, ch_kq)
        attn_inter = g.new("MUL_MAT", "f32", (sv, CHUNK, 1, hn), s, ch_q_g_exp)
        o_ch = g.new("ADD", "f32", attn_inter.ne, attn_inter, v_attn)
        v = g.view("SET", v, v.ne, v, o_ch)  # ggml_set_inplace
        kgv = g.new("MUL_MAT", "f32", (sk, sv, 1, hn), ch_kg_t, v_t_new)
        ch_g_last = _slice(g, g_last_exp_t, 0)
        s = g.new("MUL", "f32", s.ne, s, ch_g_last)
        s = g.new("ADD", "f32", s.ne, s, kgv)
    vnb = 4 * sv
    o = g.view("VIEW", v, (sv, T, h, ns), nb=(4, vnb, vnb * CHUNK * nch, vnb * CHUNK * nch * h))
    o = g.permute(o, (0, 2, 1, 3))
    s = _reshape(g, s, (sv, sv, h, ns))
    return o, s


def unfused_delta_net(
    g: _G, q: GraphTensor, k: GraphTensor, v: GraphTensor, gate: GraphTensor, beta: GraphTensor,
    state: GraphTensor, s_all: GraphTensor, *, repeat: bool,
) -> GraphTensor:  # fmt: skip
    """The layer's part without the fused op: q and k repeated to the value heads (qwen35.cpp
    ``ggml_repeat_4d`` when the fused op is off), :func:`delta_net_chunking`, and the new state copied
    into the recurrent cache (build_recurrent_attn). Returns the output view."""
    if repeat:
        ne = (q.ne[0], v.ne[1], q.ne[2], q.ne[3])
        q, k = g.new("REPEAT", "f32", ne, q), g.new("REPEAT", "f32", ne, k)
    output, new_state = delta_net_chunking(g, q, k, v, gate, beta, state)
    size = state.ne[0] * state.ne[1] * state.ne[2]
    dst = g.view("VIEW", s_all, (size, state.ne[3]))
    g.expand(g.view("CPY", dst, dst.ne, new_state, dst))
    return output
