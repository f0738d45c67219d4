"""Internal consistency of tests/fixtures/llama_graph_nodes/qwen35.json (scripts/llama_graph_nodes.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "llama_graph_nodes" / "qwen35.json"
DOC = json.loads(FIXTURE.read_text())
MODELS = DOC["models"]
PHASES = ("prefill_37", "prefill_512", "decode_1")
CASES = [(m, ph, kind) for m in MODELS for ph in PHASES for kind in ("gdn", "attn")]


def _layer(m: str, ph: str, kind: str) -> dict[str, Any]:
    c: dict[str, Any] = MODELS[m]["phases"][ph][kind]
    return c


def test_header() -> None:
    assert DOC["llama_cpp_commit"] == "0c1e57098bba43ac29e6e3b677cdceebdd22334f"
    assert set(MODELS) == {"Qwen3.5-9B", "Qwen3.5-27B", "Qwen3.5-35B-A3B"}
    for m in MODELS.values():
        assert set(m["phases"]) == set(PHASES)


@pytest.mark.parametrize("m,ph,kind", CASES)
def test_counts_add_up(m: str, ph: str, kind: str) -> None:
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
        assert not {"VIEW", "RESHAPE", "PERMUTE", "TRANSPOSE"} & set(g["ops"])
    # each fused group is a run of the layer's kernel op sequence, groups in order, disjoint
    seq, pos = c["kernel_op_sequence"], 0
    for g in c["fusions"]:
        while seq[pos : pos + len(g["ops"])] != g["ops"]:
            pos += 1
            assert pos < len(seq), g
        pos += len(g["ops"])


@pytest.mark.parametrize("m,kind", [(m, k) for m in MODELS for k in ("gdn", "attn")])
def test_layer_structure(m: str, kind: str) -> None:
    moe = "n_expert" in MODELS[m]["dims"]
    for ph in PHASES:
        ops = _layer(m, ph, kind)["kernel_ops"]
        assert ops.get("GATED_DELTA_NET", 0) == (kind == "gdn")  # fused GDN: one op, no chunk loop
        assert ops.get("FLASH_ATTN_EXT", 0) == (kind == "attn")
        assert ops.get("MUL_MAT_ID", 0) == (3 if moe else 0)  # gate, up, down experts
    # the prompt graph does not grow with the ubatch (no per-chunk nodes) ...
    assert _layer(m, "prefill_37", kind) == _layer(m, "prefill_512", kind)
    # ... and has the same nodes as the one-token graph; only the <= 8-token gate+up+GLU fusion differs
    pre, dec = _layer(m, "prefill_512", kind), _layer(m, "decode_1", kind)
    assert pre["kernel_op_sequence"] == dec["kernel_op_sequence"]
    extra = [g for g in dec["fusions"] if g not in pre["fusions"]]
    assert extra and all(g["fusion"] == "mul_mat_vec gate+up+glu" for g in extra)
    assert len(extra) == (2 if moe else 1)
