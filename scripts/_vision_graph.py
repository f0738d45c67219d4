"""The graphs qwenfit-clipprobe dumps, as qwenfit.core.engines.llama_cpp.vision.GraphTensor lists (helper of
scripts/vision_memory_fixtures.py; not a script).

``qwenfit-clipprobe MMPROJ --dump-graph WxH`` prints every leaf and node of the graph clip.cpp
builds for that image (scripts/build_mtmd_probe.sh):
``qwenfit_graph: leaf|node ID OP UNARY TYPE NE0,NE1,NE2,NE3 NB0,NB1,NB2,NB3 NBYTES VIEW_SRC FLAGS
ext|- SRC... | NAME`` (one line per tensor).

* :func:`parse_dump` turns it into GraphTensor lists, weights included (``ext``: data already set),
  so that ``graph_alloc_bytes`` replays ggml-alloc on llama.cpp's own graph;
* then ``qwenfit.core.engines.llama_cpp.vision.graph_rows`` / ``graph_digest`` give the allocator-relevant
  content of llama.cpp's graph, to compare row for row with the graph qwenfit rebuilds
  (``clip_graph_qwen3vl``); the fixtures keep the sha256, which the tests recompute.
"""

from __future__ import annotations

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from qwenfit.core.engines.llama_cpp.vision import GraphTensor  # noqa: E402


def parse_dump(lines: list[str]) -> tuple[list[GraphTensor], list[GraphTensor]]:
    rows = []
    for ln in lines:
        if ln.startswith("qwenfit_graph: "):
            head, _, name = ln[len("qwenfit_graph: ") :].partition(" | ")
            rows.append((head.split(), name.strip()))
    by_id: dict[str, GraphTensor] = {}
    for f, name in rows:
        ne = tuple(int(x) for x in f[5].split(","))
        nb = tuple(int(x) for x in f[6].split(","))
        by_id[f[1]] = GraphTensor(f[2], f[4], (ne[0], ne[1], ne[2], ne[3]), flags=int(f[9]) & 3,
                                  ext=f[10] == "ext", name=name, nb=(nb[0], nb[1], nb[2], nb[3]))  # fmt: skip
    leafs: list[GraphTensor] = []
    nodes: list[GraphTensor] = []
    for f, _ in rows:
        t = by_id[f[1]]
        t.view_src = by_id[f[8]] if f[8] != "-" else None
        t.srcs = [by_id[s] for s in f[11:]]
        (leafs if f[0] == "leaf" else nodes).append(t)
    return leafs, nodes
