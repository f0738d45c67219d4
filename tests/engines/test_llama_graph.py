"""llama.cpp's text compute buffer: the rebuilt graph, ggml's allocator replayed, and the closed forms.

Ground truth: tests/fixtures/llama_memory (scripts/llama_memory_fixtures.py), every reservation
llama.cpp 0c1e570 made on the CPU backend for 7 full-size layouts, and the node count it logged.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import qwenfit
from qwenfit.core.engines.llama_cpp.compute import (
    Structure,
    compute_tree,
    eval_tree,
    model_key,
    stored,
    tree_expr,
    variables,
)
from qwenfit.core.engines.llama_cpp.derive import run_sample
from qwenfit.core.engines.llama_cpp.graph import reserve_settings, text_compute_bytes, text_graph
from qwenfit.core.engines.llama_cpp.memory import compute_buffer_bytes, context_cells
from qwenfit.core.expr import Var, evaluate
from qwenfit.loaders.catalog import load_catalog_model, names

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llama_memory"
FILES = sorted(p for p in FIXTURES.glob("*.json") if p.name != "INDEX.json")
STORED = stored()


def _reservations():
    for path in FILES:
        fx = json.loads(path.read_text())
        spec = qwenfit.load(fx["model"])
        for name, run in fx["runs"].items():
            if run.get("status") == "refused":
                continue
            for cname, c in run["contexts"].items():
                yield spec, f"{path.stem}/{name}/{cname}", run, c, cname.startswith("mtp")


def _kw(c: dict) -> dict:
    return {
        "n_ctx": c["n_ctx"], "n_ctx_seq": c["n_ctx_seq"], "n_seq": c["n_seq_max"],
        "kv_unified": bool(c["kv_unified"]), "n_ubatch": c["n_ubatch"],
        "n_outputs_max": c["n_outputs_max"], "flash_attn": bool(c["flash_attn"]),
        "type_k": c["kv"][5], "type_v": c["kv"][6], "n_rs_seq": c["n_rs_seq"],
    }  # fmt: skip


def test_replay_equals_every_llama_cpp_reservation():
    n = 0
    for spec, name, _run, c, draft in _reservations():
        assert text_compute_bytes(spec, **_kw(c), mtp_draft=draft) == c["compute"], name
        n += 1
    assert n == 686


def test_graph_node_count_equals_llama_cpp_log():
    n = 0
    for spec, name, run, c, draft in _reservations():
        if draft or name.split("/")[2] != "main" or not run["log"].get("graph_nodes"):
            continue
        kw = _kw(c)
        if spec.family == "qwen3_next":
            kw["n_rs_seq"] = 0
        _leafs, nodes = text_graph(spec, reserve_settings(**kw))
        assert len(nodes) == int(run["log"]["graph_nodes"][0]), name
        n += 1
    assert n == 455


def test_compute_buffer_bytes_equals_every_reservation():
    """What estimate() reports (closed form where one is stored, else the replay) is llama.cpp's figure."""
    for spec, name, _run, c, draft in _reservations():
        assert compute_buffer_bytes(spec, **_kw(c), mtp_draft=draft) == c["compute"], name


def test_every_catalog_model_has_the_planner_trees():
    for n in names():
        spec = load_catalog_model(n)
        assert STORED["models"][n] == model_key(spec)
        for st in ("fa1-k0v0", "fa1-k1v1"):
            rec = STORED["trees"][model_key(spec)][f"{st}-ub512-out_seqs-rs0"]
            assert rec["checks"][-1]["mismatches"] == [] and rec["checks"][-1]["checked"] >= 100, (n, st)


@pytest.mark.parametrize("model", ["Qwen3.5-0.8B", "Qwen3.5-27B", "Qwen3.5-35B-A3B", "Qwen3-Next-80B-A3B"])
@pytest.mark.parametrize("kv", ["f16", "q4_0"])
def test_closed_form_equals_replay_off_grid(model, kv):
    """Random points the trees were not derived on (sequences 1-256, any context up to 262,144)."""
    spec = load_catalog_model(model)
    rnd = random.Random(f"{model}{kv}")
    for _ in range(8):
        ns = rnd.choice([rnd.randint(1, 48), rnd.randint(1, 256)])
        ctx = rnd.choice([rnd.randint(1, 262144), rnd.randint(1, 6000)])
        cells, per = context_cells(ctx * ns, ns, kv_unified=False)
        kw = {"n_ctx": cells, "n_ctx_seq": per, "n_seq": ns, "kv_unified": False, "n_ubatch": 512,
              "n_outputs_max": ns, "flash_attn": True, "type_k": kv, "type_v": kv}  # fmt: skip
        assert compute_buffer_bytes(spec, **kw) == text_compute_bytes(spec, **kw), (ns, ctx)


def test_traced_formula_equals_the_tree():
    spec = load_catalog_model("Qwen3.5-9B")
    ctx, seqs = Var("ctx"), Var("seqs")
    cells, per = context_cells(ctx * seqs, seqs, kv_unified=False)
    kw = {"n_ubatch": 512, "flash_attn": True, "type_k": "q8_0", "type_v": "q8_0", "kv_unified": False}
    f = compute_buffer_bytes(spec, n_ctx=cells, n_ctx_seq=per, n_seq=seqs, n_outputs_max=seqs, **kw)
    for c, s in [(256, 1), (4096, 3), (32768, 17), (262144, 1), (1000, 256), (131072, 40)]:
        ci, pi = context_cells(c * s, s, kv_unified=False)
        assert evaluate(f, {"ctx": c, "seqs": s}) == compute_buffer_bytes(
            spec, n_ctx=ci, n_ctx_seq=pi, n_seq=s, n_outputs_max=s, **kw
        )


def test_concolic_replay_equals_plain_replay():
    """The symbolic allocator takes the same decisions and reaches the same size as the plain one."""
    spec = load_catalog_model("Qwen3.5-35B-A3B")
    structures = (
        Structure(True, "0", "0", 512), Structure(False, "0", "0", 256), Structure(True, "1", "1", 1024),
    )  # fmt: skip
    for st in structures:
        for ns, ctx in ((1, 4096), (3, 70000), (32, 1000)):
            sample = run_sample(spec, st, ns, ctx)
            cells, per = context_cells(ctx * ns, ns, kv_unified=False)
            kv = {"0": "f16", "1": "q8_0"}[st.k]
            ref = text_compute_bytes(spec, n_ctx=cells, n_ctx_seq=per, n_seq=ns, kv_unified=False,
                                     n_ubatch=st.n_ubatch, n_outputs_max=ns, flash_attn=st.flash_attn,
                                     type_k=kv, type_v=kv)  # fmt: skip
            assert sample.size == ref
            assert max(p.value(sample.env) for p in sample.ends) == ref
            assert sample.env == variables(cells, per, ns, st)


def test_tree_expression_round_trip():
    spec = load_catalog_model("Qwen3.5-2B")
    tree = compute_tree(spec, Structure(True, "0", "0", 512))
    assert tree is not None
    env = {"tps": Var("tps"), "ns": Var("ns"), "no": Var("no"), "kv": Var("kv")}
    f = tree_expr(tree, env)
    for point in ({"tps": 512, "ns": 1, "no": 1, "kv": 4096}, {"tps": 43, "ns": 12, "no": 12, "kv": 65536}):
        assert evaluate(f, point) == eval_tree(tree, point)


def test_closed_form_exact_along_the_context_for_a_sampled_sequence_count():
    """The walk sees every allocator path along kv, so a sampled sequence count is exact everywhere."""
    spec = load_catalog_model("Qwen3.5-0.8B")
    for ns in (1, 7):
        for per in range(256, 262145, 256 * 37):
            kw = {"n_ctx": per * ns, "n_ctx_seq": per, "n_seq": ns, "kv_unified": False, "n_ubatch": 512,
                  "n_outputs_max": ns, "flash_attn": True, "type_k": "q8_0", "type_v": "q8_0"}  # fmt: skip
            assert compute_buffer_bytes(spec, **kw) == text_compute_bytes(spec, **kw), (ns, per)


@pytest.mark.parametrize(
    ("op", "poly", "kv", "flips"),
    [
        ("<=", {("kv",): 1, (): -1000}, 256, 3),  # 256 + 3*256 = 1024 > 1000
        ("<=", {("kv",): 1, (): -1024}, 256, 4),  # true up to 1024 itself
        ("<", {("kv",): 1, (): -1024}, 256, 3),  # false at 1024
        ("<=", {("kv",): -1, (): 1000}, 256, 3),  # false until 1024 >= 1000
        ("<", {("kv",): -1, (): 1024}, 256, 4),  # 1024 - 1024 = 0 is not < 0
        ("==", {("kv",): 1, (): -1024}, 256, 3),
        ("==", {("kv",): 1, (): -1000}, 256, None),
        ("<=", {("ns",): 1, (): -1}, 256, None),  # does not depend on kv
    ],
)
def teststeps_to_flip(op, poly, kv, flips):
    from qwenfit.core.engines.llama_cpp.compute import Poly, guard_holds
    from qwenfit.core.engines.llama_cpp.derive import steps_to_flip

    g = (op, Poly(poly))
    env = {"tps": 1, "ns": 2, "no": 2, "kv": kv}
    assert steps_to_flip(g, env, 256) == flips
    if flips is not None:
        before = guard_holds(g, env)
        assert all(guard_holds(g, {**env, "kv": kv + 256 * k}) == before for k in range(flips))
        assert guard_holds(g, {**env, "kv": kv + 256 * flips}) != before
