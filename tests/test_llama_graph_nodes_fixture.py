"""Internal consistency of tests/fixtures/llama_graph_nodes/qwen35.json (scripts/llama_graph_nodes.py).

Two tools wrote it: the scheduler's node print of the fake-GPU probe (nodes, kernel nodes, ops) and the
launch counter on the fake GPU (launches per layer and per node). The checks tie them together."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "llama_graph_nodes" / "qwen35.json"
DOC = json.loads(FIXTURE.read_text())
MODELS = DOC["models"]
PHASES = ("prefill_37", "prefill_512", "decode_after_37", "decode_after_512")
KINDS = ("gdn", "attn")
VIEW_OPS = {"VIEW", "RESHAPE", "PERMUTE", "TRANSPOSE"}
CASES = [(m, ph, kind) for m in MODELS for ph in PHASES for kind in KINDS]


def _layer(m: str, ph: str, kind: str) -> dict[str, Any]:
    c: dict[str, Any] = MODELS[m]["phases"][ph][kind]
    return c


def _graph_only(c: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in c.items() if k != "launches"}


def test_header() -> None:
    assert DOC["llama_cpp_commit"] == "0c1e57098bba43ac29e6e3b677cdceebdd22334f"
    assert set(MODELS) == {"Qwen3.5-9B", "Qwen3.5-27B", "Qwen3.5-35B-A3B"}
    for m in MODELS.values():
        assert set(m["phases"]) == set(PHASES)


@pytest.mark.parametrize("m,ph,kind", CASES)
def test_node_counts_add_up(m: str, ph: str, kind: str) -> None:
    c = _layer(m, ph, kind)
    assert c["nodes"] == c["view_nodes"] + c["kernel_nodes"]
    assert 0 < c["kernel_nodes"] <= c["nodes"]
    assert sum(c["kernel_ops"].values()) == c["kernel_nodes"] == len(c["kernel_op_sequence"])
    assert Counter(c["kernel_op_sequence"]) == Counter(c["kernel_ops"])
    assert c["fusions_removed"] == sum(g["kernel_nodes"] - 1 for g in c["fusions"])
    assert c["kernel_nodes_after_fusion"] == c["kernel_nodes"] - c["fusions_removed"]
    assert c["mul_mat_nodes"] == c["kernel_ops"].get("MUL_MAT", 0) + c["kernel_ops"].get("MUL_MAT_ID", 0)
    assert c["backends"] == ["CUDA0"]  # full offload: every node of the layer on the GPU
    for g in c["fusions"]:
        assert g["kernel_nodes"] == len(g["ops"]) >= 2
        assert not VIEW_OPS & set(g["ops"])
    # each fused group is a run of the layer's kernel op sequence, groups in order, disjoint
    seq, pos = c["kernel_op_sequence"], 0
    for g in c["fusions"]:
        while seq[pos : pos + len(g["ops"])] != g["ops"]:
            pos += 1
            assert pos < len(seq), g
        pos += len(g["ops"])


@pytest.mark.parametrize("m,ph,kind", CASES)
def test_launches_add_up_and_match_the_probe(m: str, ph: str, kind: str) -> None:
    c = _layer(m, ph, kind)
    la = c["launches"]
    per_node = la["launches_per_node_by_op"]
    # the runner's graph is the probe's: same node count, same kernel ops
    assert la["callback_nodes"] == c["nodes"] == sum(n for v in per_node.values() for _, n in v)
    assert sum(n for op, v in per_node.items() if op in VIEW_OPS for _, n in v) == c["view_nodes"]
    assert {op: sum(n for _, n in v) for op, v in per_node.items() if op not in VIEW_OPS} == c["kernel_ops"]
    assert all(k == 0 for op in VIEW_OPS & set(per_node) for k, _ in per_node[op])
    unfused = la["unfused"]["launches"]
    assert (
        unfused
        == sum(k * n for v in per_node.values() for k, n in v)
        == sum(la["unfused_launches_by_op"].values())
    )
    assert 0 < la["launches"] <= unfused
    assert la["fusion_removed_launches"] == unfused - la["launches"]
    # computing every node alone == the layer chunk with GGML_CUDA_DISABLE_FUSION=1 (two measurements)
    assert la["unfused"] == la["fusion_disabled_by_env"]
    # the fusion replay (source reading) explains the measured reduction exactly: each merged node is one
    # launch less, except the state CPY merged into GATED_DELTA_NET (2 device copies, no kernel) and the
    # mmvq gate+up+GLU, which also quantizes the shared input once instead of twice
    groups = Counter(g["fusion"] for g in c["fusions"])
    predicted = c["fusions_removed"] - groups["gated_delta_net+state_cpy"] + groups["mul_mat_vec gate+up+glu"]
    assert la["fusion_removed_launches"] == predicted
    assert la["unfused"]["d2d_copies"] - la["d2d_copies"] == 2 * groups["gated_delta_net+state_cpy"]
    # quantized mat-muls: 2 (decode: q8_1 + mmvq) or 3 (prefill: q8_1 + mmq + stream-k fixup) launches,
    # except the F32 routers (cuBLAS or a one-launch kernel)
    for op in ("MUL_MAT", "MUL_MAT_ID"):
        assert sum(n for k, n in per_node.get(op, []) if k >= 2) >= c["kernel_ops"].get(op, 0) - 2


@pytest.mark.parametrize("m,kind", [(m, k) for m in MODELS for k in KINDS])
def test_layer_structure(m: str, kind: str) -> None:
    moe = "n_expert" in MODELS[m]["dims"]
    for ph in PHASES:
        c = _layer(m, ph, kind)
        ops = c["kernel_ops"]
        assert ops.get("GATED_DELTA_NET", 0) == (kind == "gdn")  # the fused GDN op
        assert ops.get("FLASH_ATTN_EXT", 0) == (kind == "attn")
        assert ops.get("MUL_MAT_ID", 0) == (3 if moe else 0)  # gate, up, down experts
        if kind == "gdn":  # one launch at 37 and at 512 tokens: the chunked GDN does not loop over chunks
            assert c["launches"]["launches_per_node_by_op"]["GATED_DELTA_NET"] == [[1, 1]]
    # the prompt graph does not grow with the ubatch ...
    assert _graph_only(_layer(m, "prefill_37", kind)) == _graph_only(_layer(m, "prefill_512", kind))
    assert _graph_only(_layer(m, "decode_after_37", kind)) == _graph_only(_layer(m, "decode_after_512", kind))
    # ... and has the same nodes as the one-token graph; only the <= 8-token gate+up+GLU fusion differs
    pre, dec = _layer(m, "prefill_512", kind), _layer(m, "decode_after_512", kind)
    assert pre["kernel_op_sequence"] == dec["kernel_op_sequence"]
    assert not [g for g in pre["fusions"] if g["fusion"].startswith("mul_mat_vec")]
    extra = Counter(g["fusion"] for g in dec["fusions"]) - Counter(g["fusion"] for g in pre["fusions"])
    assert extra["mul_mat_vec gate+up+glu"] == (2 if moe else 1)  # experts + shared expert / dense FFN
    # the residual ADD after the ffn_down (dense) and attn_output mat-muls becomes the mmvq bias
    assert extra["mul_mat_vec+add"] == (kind == "attn") + (not moe)
    # softplus(alpha) * ssm_a broadcasts over the tokens: fused only for one token
    assert extra["softplus+mul"] == (kind == "gdn")
    assert set(extra) <= {"mul_mat_vec gate+up+glu", "mul_mat_vec+add", "softplus+mul"}
    # decode issues fewer launches than a prompt ubatch (mmvq without fixup, more fusions)
    assert dec["launches"]["launches"] < pre["launches"]["launches"]


def test_device_sensitivity() -> None:
    """Other devices (SM count decides the mmq stream-k fix-up launch) move the prefill launches by a few."""
    sens = dict(DOC["device_sensitivity"])
    model = sens.pop("model")
    assert len(sens) >= 2
    main = DOC["setup"]["device"]
    for ph in PHASES:
        for kind in KINDS:
            # the main device's entry is the same measurement as the model's fixture
            assert sens[main][ph][kind] == _layer(model, ph, kind)["launches"]["launches"]
            values = [dev[ph][kind] for dev in sens.values()]
            unfused = _layer(model, ph, kind)["launches"]["unfused"]["launches"]
            assert all(0 < v <= unfused for v in values)
            if ph.startswith("decode"):  # mmvq: no stream-k, the same launches everywhere but FA's split
                assert max(values) - min(values) <= 1
            else:
                assert max(values) - min(values) <= _layer(model, ph, kind)["mul_mat_nodes"]
