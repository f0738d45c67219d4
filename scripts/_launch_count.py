"""Kernel launches ggml-cuda issues per layer, counted on the fake GPU (helper of llama_graph_nodes.py).

Not a script. ``scripts/launch_count/launch_count.c`` is LD_PRELOADed in front of the fake CUDA
runtime (scripts/fake_gpu/fake_cudart.c): kernel launches are accepted and counted instead of refused
(the kernels do not run), cuBLAS GEMM calls and memcpy/memset calls are counted too.
``scripts/launch_count/launch_runner.cpp`` loads the GGUF for real on one fake RTX 5080 (every layer
offloaded, n_ctx 4096, n_batch = n_ubatch = 512), decodes one prompt of N tokens (logits of the last
only, like llama-server) and two one-token steps, with an eval callback:

* mode ``layer`` asks the scheduler for every ``l_out-<il>`` node, so each layer is computed as one
  chunk (ggml-cuda's fusions inside the layer intact) and the counters are read after it;
* mode ``node`` asks for every node, so each node is computed alone (no fusion across nodes): the
  launches of each op without fusion;
* mode ``layer`` again with ``GGML_CUDA_DISABLE_FUSION=1``: the unfused launches a second way.

CUDA graphs are disabled (``GGML_CUDA_DISABLE_GRAPHS=1``): what is counted is the eager path, which is
what a prompt ubatch takes (a CUDA graph is only replayed after two calls with the same graph).
The runner's third mode, ``time`` (not used by the fixture: timings are not fixtures), evaluates the
prompt and a decode step 50 times each without callback and prints the mean host wall time per call:
llama.cpp's own CPU cost of a ubatch (graph build, scheduler, ggml-cuda dispatch) without any driver
cost, e.g. ``LD_PRELOAD=<dir>/launch_count.so GGML_CUDA_DISABLE_GRAPHS=1 <dir>/launch-runner m.gguf 37 time``.

Both binaries are built (about 2 s) into ``${QWENFIT_LAUNCH_COUNT_DIR:-~/.cache/qwenfit/launch-count}``
against the static libraries of scripts/build_fake_gpu.sh; nothing is written in the repo.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "launch_count")
FAKE = os.environ.get("QWENFIT_FAKE_GPU_DIR", os.path.expanduser("~/.cache/qwenfit/fake-gpu"))
OUT = os.environ.get("QWENFIT_LAUNCH_COUNT_DIR", os.path.expanduser("~/.cache/qwenfit/launch-count"))
CUDA_INC = os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "include")
COUNTERS = ("launches", "cublas_calls", "d2h_copies", "d2d_copies", "memsets", "other_copies")
_STATIC = (
    "common/libllama-common.a",
    "common/libllama-common-base.a",
    "vendor/cpp-httplib/libcpp-httplib.a",
    "src/libllama.a",
    "ggml/src/libggml.a",
    "ggml/src/libggml-cpu.a",
    "ggml/src/ggml-cuda/libggml-cuda.a",
    "ggml/src/libggml-base.a",
)


def build() -> tuple[str, str]:
    """(launch_count.so, launch-runner), rebuilt when a source is newer."""
    os.makedirs(OUT, exist_ok=True)
    so, runner = os.path.join(OUT, "launch_count.so"), os.path.join(OUT, "launch-runner")
    c_src, cpp_src = os.path.join(SRC, "launch_count.c"), os.path.join(SRC, "launch_runner.cpp")

    def stale(out: str, src: str) -> bool:
        return not os.path.exists(out) or os.path.getmtime(src) > os.path.getmtime(out)

    if stale(so, c_src):
        subprocess.run(
            ["cc", "-O1", "-shared", "-fPIC", f"-I{CUDA_INC}", "-o", so, c_src, "-ldl"], check=True
        )
    if stale(runner, cpp_src):
        llama, b, shim = (
            os.path.join(FAKE, "src/vendor/llama.cpp"),
            os.path.join(FAKE, "build-cuda"),
            os.path.join(FAKE, "shim"),
        )
        cmd = ["c++", "-std=c++17", "-O1", "-DGGML_USE_CUDA", f"-I{llama}/include", f"-I{llama}/ggml/include"]
        cmd += [
            cpp_src,
            "-o",
            runner,
            *[os.path.join(b, x) for x in _STATIC],
            f"-L{shim}",
            f"-Wl,-rpath,{shim}",
        ]
        cmd += ["-lcublas", "-lcudart", "-ldl", "-lm", "-fopenmp", "-lpthread", "-lrt"]
        subprocess.run(cmd, check=True)
    return so, runner


def run(
    gguf: str, n_prompt: int, mode: str, device: str, extra_env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One runner process: a record per callback point (phase, tensor name, op, counter deltas)."""
    so, runner = build()
    env = dict(os.environ, LD_PRELOAD=so, GGML_CUDA_DISABLE_GRAPHS="1", QWENFIT_FAKE_CUDA_DEVICES=device)
    env.update(extra_env or {})
    r = subprocess.run(
        [runner, gguf, str(n_prompt), mode], env=env, capture_output=True, text=True, check=True
    )
    recs = []
    for line in r.stdout.splitlines():
        if not line.startswith("QF "):
            continue
        parts = line.split(" ")
        head, nums = parts[1:-6], parts[-6:]
        phase, op = head[0], head[-1]
        name = " ".join(head[1:-1])
        recs.append(
            {"phase": phase, "name": name, "op": op, **dict(zip(COUNTERS, map(int, nums), strict=True))}
        )
    return recs


def layer_records(recs: list[dict[str, Any]], phase: str, il: int) -> list[dict[str, Any]]:
    """The records of layer il: after the l_out-(il-1) record up to and including l_out-il."""
    rs = [r for r in recs if r["phase"] == phase]
    names = [r["name"] for r in rs]
    lo, hi = names.index(f"l_out-{il - 1}"), names.index(f"l_out-{il}")
    return rs[lo + 1 : hi + 1]


def layer_launches(
    by_layer: list[dict[str, Any]],
    by_node: list[dict[str, Any]],
    no_fusion: list[dict[str, Any]],
    phase: str,
    il: int,
) -> dict[str, Any]:
    """Counters of layer il: fused (layer chunk), unfused (sum over nodes), and the layer chunk with
    GGML_CUDA_DISABLE_FUSION=1 (``no_fusion``: a second way to get the unfused numbers)."""
    fused = layer_records(by_layer, phase, il)
    nofu = layer_records(no_fusion, phase, il)
    assert len(fused) == 1 and len(nofu) == 1, (fused, nofu)
    nodes = layer_records(by_node, phase, il)
    unfused = {c: sum(r[c] for r in nodes) for c in COUNTERS}
    by_op: Counter[str] = Counter()
    for r in nodes:
        if r["launches"]:
            by_op[r["op"]] += r["launches"]
    per_node: dict[str, list[int]] = {}
    for r in nodes:
        per_node.setdefault(r["op"], []).append(r["launches"])
    return {
        **{c: fused[0][c] for c in COUNTERS},
        "unfused": unfused,
        "fusion_disabled_by_env": {c: nofu[0][c] for c in COUNTERS},
        "fusion_removed_launches": unfused["launches"] - fused[0]["launches"],
        "unfused_launches_by_op": dict(sorted(by_op.items())),
        "launches_per_node_by_op": {op: sorted(Counter(v).items()) for op, v in sorted(per_node.items())},
        "callback_nodes": len(nodes),
    }
