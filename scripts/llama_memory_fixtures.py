#!/usr/bin/env python3
"""Ground truth of llama.cpp's runtime memory (CPU backend) for Qwen3.5 / Qwen3-Next, as test fixtures.

What it produces (``tests/fixtures/llama_memory/``)
---------------------------------------------------
One JSON per model (Qwen3.5-0.8B, 9B, 27B, 35B-A3B, 122B-A10B, 397B-A17B, Qwen3-Next-80B-A3B) and
INDEX.json (grid, error statistics of the compute-buffer formula). Each model file holds:

* ``layouts``: the four weight layouts measured, full size and sparse (scripts/_memory_gguf.py):
  ``bf16-mtp`` / ``bf16-nomtp`` (llama.cpp's convert_hf_to_gguf.py, header only, with the MTP
  layer / with ``--no-mtp``) and ``q4km-mtp`` / ``q4km-nomtp`` (the per-tensor types of the real
  ``llama-quantize --dry-run <bf16> Q4_K_M`` written into a copy of the header; for 0.8B
  ``q4km_layout_check`` shows that this layout equals, KV for KV and tensor for tensor, the file a
  real llama-quantize run writes).
  Per layout: file size, tensor bytes (all / trunk / MTP), bytes per ggml type, the commands.
* ``hparams`` (from the GGUF, what the formulas of scripts/_memory_formulas.py use), ``base``.
* ``runs``: one-factor-at-a-time grid around ``base`` (-c 4096 -ctk/-ctv f16 -np 1 -ub 512 -b 2048
  -fa on, bf16-mtp layout, MTP not loaded, llama-cli/fit-params output limits) plus combinations --
  see grid(). Per run: ``set`` (overrides of base), ``args`` (the llama.cpp flags; ``env`` when the
  llama-server output limits are applied), and per context (``main`` = the model's context; with
  ``--spec-type draft-mtp`` also ``mtp`` = the MTP draft context, and ``main_runtime`` /
  ``mtp_runtime`` = both after the speculative driver attached its samplers and nextn outputs):
  n_ctx, n_ctx_seq, n_seq_max, n_batch, n_ubatch, n_outputs_max, flash_attn, kv_unified, n_rs_seq,
  the exact bytes of ``model`` / ``context`` / ``compute`` (llama_get_memory_breakdown, as
  qwenfit-memprobe prints them), ``kv`` = [K bytes, V bytes, cells per stream, layers, streams,
  type_k, type_v], ``rs`` = [R bytes, S bytes, cells, n_rs_seq, GDN layers], ``output`` (the host
  output buffer, not part of the breakdown), ``compute_tg`` (the tg graph; the no_alloc breakdown
  counts only the pp graph), ``formula_compute`` = [formula, error %, low bound, high bound] of
  the candidate-peak approximation in scripts/_memory_formulas.py (a record of that approximation:
  qwenfit itself now rebuilds the graph and replays ggml's allocator, qwenfit.core.engines.llama_cpp.graph,
  which matches every ``compute`` here to the byte).
  ``log``: the llama.cpp lines parsed (``llama_kv_cache: size = ...``, ``llama_memory_recurrent:
  size = ...``, output / compute buffer MiB, n_ctx, unused-tensor count and bytes); ``memprobe``:
  [model, context, compute] of the official qwenfit-memprobe on the same flags where it accepts them.
  A refused configuration (quantized V without flash attention) has ``status: refused``.
* ``alloc_checks`` (0.8B): the same runs with everything really allocated (weights mmap-ed from the
  sparse file): identical context bytes, compute = max(pp, tg) of the dry run, output identical.

Every number comes from llama.cpp itself: ``qwenfit-memgrid`` (scripts/_memory_probe.py) is a
small C++ program linked against the static llama.cpp libraries of scripts/build_llama_cpp.sh
(commit 0c1e57098), always ``--no-repack``. The script stops if an exact formula below disagrees
with llama.cpp by one byte, if a MiB figure of the log disagrees with the bytes, or if
qwenfit-memprobe disagrees with qwenfit-memgrid.

How to run
----------
::

    scripts/build_llama_cpp.sh                                     # once
    /work/venvs/fixtures/bin/python scripts/llama_memory_fixtures.py   # ~8 min, 2 cores

Options: ``--work DIR`` (scratch: sparse GGUFs of ~5.5 MB on disk each, the probe; default
/tmp/qwenfit-llama-memory), ``--models A,B``, ``--reuse`` (reuse GGUFs), ``--keep`` (keep them;
by default each model's GGUFs are deleted after its runs), ``--no-alloc-checks``, ``--out DIR``.
It needs the fixtures venv (torch + transformers for the sparse checkpoints of
scripts/_gguf_sparse.py). Deterministic for a given llama.cpp build (no timings or paths stored).

Formulas (all bytes; implemented in scripts/_memory_formulas.py; lines refer to the llama.cpp tree)
--------------------------------------------------------------------------------------------------
Notation: trunk = n_layer = block_count - nextn_predict_layers; n_full = trunk layers with
(i+1) % full_attention_interval == 0, n_recr = n_layer - n_full; H = n_embd; V = n_vocab;
np = -np (n_seq_max). row(t, n) = ggml_row_size: f32 4n, f16/bf16 2n, q8_0 34n/32, q4_0 18n/32.

Context padding (llama-context.cpp:133, 290-304; independent of flash attention, KV type, ubatch)::

    n_ctx = pad(c == 0 ? n_ctx_train : c, 256)
    unified KV (-kvu):  n_ctx_seq = n_ctx
    otherwise:          n_ctx_seq = pad(n_ctx // np, 256);  n_ctx = n_ctx_seq * np   (rounds UP)

e.g. -c 1000 -> 1024; -c 1000 -np 4 -> 4 x 256; -c 1000 -np 3 -> 3 x 512 = 1536; -c 4096 -np 3
-> 3 x 1536 = 4608 (the log says "rounding down"); -c 4096 -np 3 -kvu -> 4096.
n_batch = min(n_ctx, -b), n_ubatch = min(n_batch, -ub) (:246-248).

KV cache (llama-kv-cache.cpp:84, 221-234, 1914-1932; layer filter llama-model.cpp:2699-2705;
kv_size = n_ctx_seq :2761)::

    streams = kvu ? 1 : np;   cells per stream = n_ctx_seq   (log: "cells" per stream, "np/streams seqs")
    K = n_full * streams * n_ctx_seq * row(type_k, n_head_kv * head_dim)       (= n_full * n_ctx * row)
    V = n_full * streams * n_ctx_seq * row(type_v, n_head_kv * head_dim)

Same bytes with and without flash attention (V is stored transposed without FA); quantized V
without FA is refused (llama-context.cpp:3840-3848; -fa auto turns FA on). MTP layers are never in
the trunk cache. The KV buffer is not allocated in a no_alloc (fit-params) run but is counted by
the breakdown.

Recurrent state (llama-memory-recurrent.cpp:101-103; n_embd_r/s llama-hparams.cpp:229/257;
rs_size llama-model.cpp:2747), always F32, independent of the context::

    rows = max(1, np) * (1 + n_rs_seq)
    R = n_recr * rows * (d_conv - 1) * (d_inner + 2 * n_group * d_state) * 4
    S = n_recr * rows * d_state * d_inner * 4

n_rs_seq = 0, except with ``--spec-type draft-mtp``: n_rs_seq = --spec-draft-n-max (default 3,
common.cpp:1635, common.h:396-402) for qwen35/qwen35moe -- the recurrent state is multiplied by
1 + n_draft (x4 by default); qwen3next has no partial rollback, clamped to 0
(llama-context.cpp:105-109, llama-arch.cpp:1123-1135). The RS buffer is allocated (and cleared) even
in a no_alloc dry run. Context (breakdown) = K + V + R + S exactly.

Output buffer (llama-context.cpp:377, 2116-2206; host memory, NOT in llama_get_memory_breakdown)::

    at creation: V * np * 4
    grows (never shrinks) to V * max(outputs of a batch, np) * 4 at decode time; llama-cli allows
    up to n_outputs_max = n_batch outputs per batch (:250), llama-server limits them to
    min(n_batch, np * (1 + n_draft)) (server-context.cpp:41-53, 995-997)
    MTP target at runtime: + H * n_batch * 4 (unmasked nextn embeddings, :2145-2149)
    MTP draft at runtime:  V*n*4 + H*n*4 + 2*V*n*4 + (1+V)*n*4  (logits, masked nextn, backend
                           top-k sampling floats + tokens; n = np; :2141-2172)

Model (weights): sum of ggml_nbytes of the loaded tensors (CPU buffer; --no-repack), i.e. the trunk
tensors, or all tensors when MTP is loaded (``--spec-type draft-mtp`` -> load_mtp, common.cpp:1625;
otherwise the MTP tensors are skipped: "model has unused tensor ... -- ignoring",
llama-model-loader.cpp:1180).

Compute buffer (approximate; ``compute_terms`` / ``compute_bytes``). llama_context::sched_reserve
(llama-context.cpp:615-757) reserves the pp graph for n_tokens T = min(n_ctx, n_ubatch) rounded up
to a multiple of np (graph_reserve :2528-2531), n_seqs = np, n_outputs = min(min(n_ctx, n_ubatch),
n_outputs_max) (:629, 670); in a no_alloc run only this first pp reservation is measured
(:674-675, 3494-3499), a real context keeps max(pp, tg) (tg = np tokens; smaller in every run
here). The size is the
high-water mark of ggml's graph allocator (best-fit, in-place reuse, ggml-alloc.c), so it is the
maximum over the steps of [graph inputs] + [live residual-sized tensors] + [step temporaries]::

    I (inputs, allocated first)  = a(4T) + a(4HT) [inp_embd] + a(4 np) + [k_rot hd^2*4, v_rot 64^2*4
                                   if K/V quantized] + a(16T) [4 M-RoPE positions] + a(8T) [k_idxs]
                                   + a(8T * (FA ? 1 : n_head_kv*head_dim)) [v_idxs]
                                   + a(n_kv * T * (FA ? 2 : 4)) [KQ mask] + a(4 n_out)
    head   = a(4T) + 4HT + 4H*n_out + 4HT + 4*V*n_out       (logits; reuses the freed mask)
    head'  = I + 8HT + 4*V*n_out                              (logits above the mask)
    gdn    = I + 8HT + 4*np*(d_conv-1)*conv_dim + 4*conv_dim*(3T + (d_conv-1)*np)
             [+ 4*(d_inner*T + (1+n_rs_seq)*d_state*d_inner*np) if the GDN output does not fit
              the hole of the freed qkv/conv input]            conv_dim = d_inner + 2*n_group*d_state
    attn   = I + 8HT + 12*n_head*head_dim*T [+ 4*n_kv*T*n_head without FA: the KQ matrix]
    ffn    = dense: I + 8HT + 12*n_ff*T;  MoE: I + 12HT + 4*(3*n_ff_exp + H)*n_expert_used*T

with a(x) = 32-byte alignment and n_kv = n_ctx (kvu) or n_ctx_seq. compute = max(head or head',
gdn, attn, ffn); head' is used when the mask is < 2 % of the logits. The MTP draft context (one
attention layer + FFN on T tokens; qwen3next selects the output rows before its FFN) uses
I + 4HT + attn, I + 12HT, the FFN term and head (see compute_terms(mtp=True)).
Dominant terms: llama-cli / fit-params (n_outputs = T) -> the logits 4*V*T (508.6 MB at -ub 512,
2.03 GB at -ub 2048 for V = 248320: ~97 % of the buffer); llama-server (n_outputs = np) -> the GDN
step (0.8B; 122B with np 4), the dense FFN (9B, 27B: 3*n_ff), the MoE FFN (35B, 80B, 122B, 397B),
or without flash attention the KQ matrix n_kv*T*n_head*4, linear in the context (35B -c 32768:
1.07 GB of 1.18 GB).
Error over the grid: main context, llama-server limits: max 4.2 %; llama-cli limits: median
0.002 %, max 34 %: where the KQ mask is large (long context) the allocator sometimes leaves the
last residual above the mask, so the logits cannot reuse its space and the buffer is larger by
up to the mask size (0.8B and 27B at -c 262144: +268 MB); which layout it ends in depends on
best-fit placement in the last layer, so compute_bounds() gives both; measured values lie within
[low, high * 1.05] for every main-context run. MTP draft context: max 18 % (a few MB).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from typing import Any

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _gguf_common as g  # noqa: E402
import _memory_formulas as mf  # noqa: E402
import _memory_gguf as mg  # noqa: E402
import _memory_probe as mp  # noqa: E402

OUT = os.path.join(g.REPO_ROOT, "tests", "fixtures", "llama_memory")
MODELS = [
    "Qwen3.5-0.8B",
    "Qwen3.5-9B",
    "Qwen3.5-27B",
    "Qwen3.5-35B-A3B",
    "Qwen3.5-122B-A10B",
    "Qwen3.5-397B-A17B",
    "Qwen3-Next-80B-A3B",
]
VARIANTS = ["bf16-mtp", "bf16-nomtp", "q4km-mtp", "q4km-nomtp"]
BASE: dict[str, Any] = {
    "variant": "bf16-mtp", "c": 4096, "ctk": "f16", "ctv": "f16", "np": 1, "ub": 512, "b": 2048, "fa": "on",
    "kvu": False, "server": False, "mtp": False, "draft": None,
}  # fmt: skip


def grid() -> list[tuple[str, dict[str, Any]]]:
    """One-factor-at-a-time around BASE, plus combinations. (run id, overrides of BASE)."""
    runs: list[tuple[str, dict[str, Any]]] = [("base", {})]
    add = runs.append
    # context (and its padding)
    for c in (256, 1000, 32768, 262144):
        add((f"c{c}", {"c": c}))
    add(("c0", {"c": 0}))  # 0 = n_ctx_train
    add(("c1000-np3", {"c": 1000, "np": 3}))
    add(("c1000-np4", {"c": 1000, "np": 4}))
    add(("np3", {"np": 3}))
    add(("np3-kvu", {"np": 3, "kvu": True}))
    # KV cache types
    for t in ("q8_0", "q4_0", "bf16", "f32"):
        add((f"kv-{t}", {"ctk": t, "ctv": t}))
    add(("ctk-q8_0", {"ctk": "q8_0"}))
    add(("kv-q4_0-c262144", {"ctk": "q4_0", "ctv": "q4_0", "c": 262144}))
    # sequences
    for n in (2, 4):
        add((f"np{n}", {"np": n}))
    add(("np4-c32768", {"np": 4, "c": 32768}))
    add(("np4-kvu-c32768", {"np": 4, "c": 32768, "kvu": True}))
    # ubatch
    for u in (128, 2048):
        add((f"ub{u}", {"ub": u}))
    add(("ub1024", {"ub": 1024}))
    add(("ub2048-c32768", {"ub": 2048, "c": 32768}))
    add(("ub4096-b4096", {"ub": 4096, "b": 4096}))
    add(("ub128-c256", {"ub": 128, "c": 256}))
    # flash attention off
    add(("fa-off", {"fa": "off"}))
    for c in (256, 32768, 262144):
        add((f"fa-off-c{c}", {"fa": "off", "c": c}))
    add(("fa-off-kv-f32", {"fa": "off", "ctk": "f32", "ctv": "f32"}))
    add(("fa-off-kv-bf16", {"fa": "off", "ctk": "bf16", "ctv": "bf16"}))
    add(("fa-off-ctk-q8_0", {"fa": "off", "ctk": "q8_0"}))
    add(("fa-off-kv-q8_0", {"fa": "off", "ctk": "q8_0", "ctv": "q8_0"}))  # refused by llama.cpp
    add(("fa-off-ub128", {"fa": "off", "ub": 128}))
    add(("fa-off-ub2048", {"fa": "off", "ub": 2048}))
    add(("fa-off-np4", {"fa": "off", "np": 4}))
    # combinations
    add(("c32768-np4-ub2048-q8_0", {"c": 32768, "np": 4, "ub": 2048, "ctk": "q8_0", "ctv": "q8_0"}))
    add(("c262144-np2-q4_0", {"c": 262144, "np": 2, "ctk": "q4_0", "ctv": "q4_0"}))
    add(("fa-off-np2-ub128-c32768", {"fa": "off", "np": 2, "ub": 128, "c": 32768}))
    # llama-server output limits (n_outputs_max = min(n_batch, n_parallel))
    add(("srv", {"server": True}))
    add(("srv-c262144", {"server": True, "c": 262144}))
    add(("srv-np4", {"server": True, "np": 4}))
    add(("srv-np-auto", {"server": True, "np": -1}))
    add(("srv-ub128", {"server": True, "ub": 128}))
    add(("srv-ub2048", {"server": True, "ub": 2048}))
    add(("srv-c32768-np4-ub2048-q8_0", {"server": True, "c": 32768, "np": 4, "ub": 2048, "ctk": "q8_0",
                                        "ctv": "q8_0"}))  # fmt: skip
    add(("srv-fa-off", {"server": True, "fa": "off"}))
    add(("srv-fa-off-c32768", {"server": True, "fa": "off", "c": 32768}))
    # weight layouts
    add(("nomtp", {"variant": "bf16-nomtp"}))
    add(("nomtp-srv-np4", {"variant": "bf16-nomtp", "server": True, "np": 4}))
    add(("q4km", {"variant": "q4km-mtp"}))
    add(("q4km-nomtp", {"variant": "q4km-nomtp"}))
    add(("q4km-c32768-np4", {"variant": "q4km-mtp", "c": 32768, "np": 4}))
    add(("q4km-srv", {"variant": "q4km-mtp", "server": True}))
    # MTP loaded (speculative draft-mtp): model + MTP tensors, n_rs_seq, MTP draft context
    add(("mtp", {"mtp": True}))
    add(("mtp-np2", {"mtp": True, "np": 2}))
    add(("mtp-np4-c32768", {"mtp": True, "np": 4, "c": 32768}))
    add(("mtp-kv-q8_0", {"mtp": True, "ctk": "q8_0", "ctv": "q8_0"}))
    add(("mtp-ub2048", {"mtp": True, "ub": 2048}))
    add(("mtp-fa-off", {"mtp": True, "fa": "off"}))
    add(("mtp-draft1", {"mtp": True, "draft": 1}))
    add(("mtp-draft6-np2", {"mtp": True, "draft": 6, "np": 2}))
    add(("mtp-srv", {"mtp": True, "server": True}))
    add(("mtp-srv-np4", {"mtp": True, "server": True, "np": 4}))
    add(("mtp-q4km", {"mtp": True, "variant": "q4km-mtp"}))
    return runs


def llama_args(spec: dict[str, Any], model_ref: str) -> list[str]:
    a = ["-m", model_ref, "-c", str(spec["c"]), "-np", str(spec["np"]), "-ub", str(spec["ub"]),
         "-b", str(spec["b"]), "-fa", spec["fa"], "-ctk", spec["ctk"], "-ctv", spec["ctv"],
         "--no-repack"]  # fmt: skip
    if spec["kvu"]:
        a.append("-kvu")
    if spec["mtp"]:
        a += ["--spec-type", "draft-mtp"]
        if spec["draft"] is not None:
            a += ["--spec-draft-n-max", str(spec["draft"])]
    return a


# ------------------------------------------------------------------------------------------------
# log parsing
# ------------------------------------------------------------------------------------------------

_LOG_PATTERNS = {
    "kv": re.compile(
        r"llama_kv_cache: size =\s*([\d.]+) MiB \(\s*(\d+) cells,\s*(\d+) layers,\s*(\d+)/(\d+) seqs\), "
        r"K \((\w+)\):\s*([\d.]+) MiB, V \((\w+)\):\s*([\d.]+) MiB"
    ),
    "rs": re.compile(
        r"llama_memory_recurrent: size =\s*([\d.]+) MiB \(\s*(\d+) cells,\s*(\d+) layers,\s*(\d+) seqs"
        r"\s+(\d+) "
        r"rs_seq\), R \((\w+)\):\s*([\d.]+) MiB, S \((\w+)\):\s*([\d.]+) MiB, P \((\w+)\):\s*([\d.]+) MiB"
    ),
    "output": re.compile(r"llama_context:\s+(\S+)\s+output buffer size =\s*([\d.]+) MiB"),
    "compute": re.compile(r"sched_reserve:\s+(\S+) compute buffer size =\s*([\d.]+) MiB"),
    "n_ctx": re.compile(r"llama_context: n_ctx\s+= (\d+)"),
    "n_ctx_seq": re.compile(r"llama_context: n_ctx_seq\s+= (\d+)"),
    "rounding": re.compile(r"n_ctx is not divisible by n_seq_max - rounding down to (\d+)"),
    "fa": re.compile(r"resolve_fused_ops: Flash Attention (enabled|not supported)"),
    "graph": re.compile(r"sched_reserve: graph.*: nodes = ([\d /]+), splits = ([\d /]+)"),
    "unused": re.compile(r"model has unused tensor (\S+) \(size = (\d+) bytes\)"),
}


def parse_log(log: str) -> dict[str, Any]:
    """The llama.cpp log lines of one run, in order (several contexts -> several entries)."""
    out: dict[str, Any] = {}
    unused = 0
    n_unused = 0
    for line in log.splitlines():
        body = re.sub(r"^\d+\.\d+\.\d+\.\d+ [A-Z] ", "", line)
        for key, pat in _LOG_PATTERNS.items():
            m = pat.search(body)
            if not m:
                continue
            if key == "unused":
                n_unused += 1
                unused += int(m.group(2))
            elif key == "kv":
                out.setdefault("kv", []).append({
                    "size_mib": float(m.group(1)), "cells": int(m.group(2)), "layers": int(m.group(3)),
                    "seqs": int(m.group(4)), "streams": int(m.group(5)), "type_k": m.group(6),
                    "k_mib": float(m.group(7)), "type_v": m.group(8),
                    "v_mib": float(m.group(9))})  # fmt: skip
            elif key == "rs":
                out.setdefault("rs", []).append({
                    "size_mib": float(m.group(1)), "cells": int(m.group(2)), "layers": int(m.group(3)),
                    "seqs": int(m.group(4)), "rs_seq": int(m.group(5)), "type_r": m.group(6),
                    "r_mib": float(m.group(7)), "type_s": m.group(8), "s_mib": float(m.group(9)),
                    "p_mib": float(m.group(11))})  # fmt: skip
            elif key in ("output", "compute"):
                out.setdefault(key, []).append([m.group(1), float(m.group(2))])
            elif key in ("n_ctx", "n_ctx_seq", "rounding"):
                out.setdefault(key, []).append(int(m.group(1)))
            elif key == "fa":
                out.setdefault("fa", []).append(m.group(1))
            elif key == "graph":
                out.setdefault("graph_nodes", []).append(m.group(1).strip())
            break
    if n_unused:
        out["unused_tensors"] = [n_unused, unused]
    return out


# ------------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------------


def memprobe(path: str, args: list[str]) -> dict[str, Any] | None:
    """The official qwenfit-memprobe (build_llama_cpp.sh) on the same flags: exact bytes."""
    exe = g.llama_env().get("QWENFIT_MEMPROBE")
    if not exe:
        return None
    r = subprocess.run([exe, *args], capture_output=True, text=True)
    m = re.search(r"qwenfit_mem: total model=(\d+) context=(\d+) compute=(\d+) n_ctx=(\d+) n_seq_max=(\d+) "
                  r"n_ubatch=(\d+) n_batch=(\d+)", r.stdout)  # fmt: skip
    if r.returncode != 0 or not m:
        return {"returncode": r.returncode}
    k = ("model", "context", "compute", "n_ctx", "n_seq_max", "n_ubatch", "n_batch")
    return dict(zip(k, (int(x) for x in m.groups()), strict=True))


def run_one(exe: str, paths: dict[str, str], spec: dict[str, Any], alloc: bool = False) -> dict[str, Any]:
    """One qwenfit-memgrid run (and, where it accepts the flags, qwenfit-memprobe on the same flags)."""
    args = llama_args(spec, paths[spec["variant"]])
    env = {"QWENFIT_SERVER": "1"} if spec["server"] else {}
    if alloc:
        env["QWENFIT_ALLOC"] = "1"
    res = mp.run(exe, args, env)
    rec: dict[str, Any] = {
        "build": res.get("args", {}).get("build"),
        "returncode": res["returncode"],
        "contexts": res["contexts"],
        "log": parse_log(res["log"]),
    }
    if res["returncode"] != 0:
        # llama.cpp's own error line comes from an asynchronous logger and may be lost at exit: record
        # the probe's (synchronous) line and the rule that explains the refusal
        tail = [ln for ln in res["log"].splitlines() if ln.startswith("qwenfit-memgrid:")]
        rec["error"] = tail[-1] if tail else f"exit code {res['returncode']}"
        if spec["fa"] == "off" and spec["ctv"] not in ("f32", "f16", "bf16"):
            rec["error"] += " (quantized V cache requires flash attention, llama-context.cpp:3840-3848)"
    # qwenfit-memprobe parses like llama-fit-params: no -kvu, no --spec-type, no server limits
    if not (spec["server"] or spec["mtp"] or spec["kvu"] or alloc):
        rec["memprobe"] = memprobe(paths[spec["variant"]], args)
    return rec


# ------------------------------------------------------------------------------------------------
# formulas vs measurements
# ------------------------------------------------------------------------------------------------


def expected(hp: dict[str, Any], tag: str, c: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Formula values for one context record of qwenfit-memgrid."""
    unified = bool(c["kv_unified"])
    streams = 1 if unified else c["n_seq_max"]
    mtp_ctx = tag.startswith("mtp")
    n_layers = hp["n_nextn"] if mtp_ctx else hp["n_full"]
    tk, tv = ("f16", "f16") if mtp_ctx else (spec["ctk"], spec["ctv"])  # draft: -ctkd/-ctvd, default f16
    n_ctx, n_ctx_seq = mf.context_cells(spec["c"], c["n_seq_max"], unified)
    k, v = mf.kv_bytes(hp, n_ctx_seq, streams, tk, tv, n_layers)
    out = {"n_ctx": n_ctx, "n_ctx_seq": n_ctx_seq, "kv": [k, v]}
    if not mtp_ctx:
        n_rs = (spec["draft"] if spec["draft"] is not None else 3) if spec["mtp"] else 0
        r, s_ = mf.rs_bytes(hp, c["n_seq_max"], n_rs)
        out["rs"] = [r, s_]
    ctx_bytes = k + v + sum(out.get("rs", [0, 0]))
    out["context"] = ctx_bytes
    runtime = tag.endswith("_runtime")
    out["output"] = mf.output_bytes(hp, c["n_seq_max"], n_batch=c["n_batch"],
                                    nextn_unmasked=runtime and not mtp_ctx, nextn_masked=runtime and mtp_ctx,
                                    backend_sampling=runtime and mtp_ctx)  # fmt: skip
    kw = dict(n_ctx=c["n_ctx"], n_ctx_seq=c["n_ctx_seq"], n_seq=c["n_seq_max"], kv_unified=unified,
              n_ubatch=c["n_ubatch"], n_outputs_max=c["n_outputs_max"], flash_attn=bool(c["flash_attn"]),
              type_k=tk, type_v=tv, n_rs_seq=c["n_rs_seq"], mtp=mtp_ctx)  # fmt: skip
    out["compute"] = mf.compute_bytes(hp, **kw)
    out["compute_bounds"] = list(mf.compute_bounds(hp, **kw))
    return out


def check_run(
    hp: dict[str, Any], layout: dict[str, Any], spec: dict[str, Any], rec: dict[str, Any]
) -> dict[str, Any]:
    """Compact fixture record of one run; raises if an exact formula disagrees with llama.cpp."""
    out: dict[str, Any] = {}
    if rec["returncode"] != 0:
        return {"status": "refused", "error": rec.get("error")}
    ctxs: dict[str, Any] = {}
    worst = 0.0
    for tag, c in rec["contexts"].items():
        e = expected(hp, tag, c, spec)
        kv, rs = c["kv"], c["rs"]
        got = {
            "n_ctx": c["n_ctx"], "n_ctx_seq": c["n_ctx_seq"], "n_seq_max": c["n_seq_max"],
            "n_batch": c["n_batch"],
            "n_ubatch": c["n_ubatch"], "n_outputs_max": c["n_outputs_max"], "flash_attn": c["flash_attn"],
            "kv_unified": c["kv_unified"], "n_rs_seq": c["n_rs_seq"],
            "model": c["model"], "context": c["context"], "compute": c["compute"],
            "compute_tg": c["compute_tg"],
            "output": c["output"],
            "kv": [kv["k"], kv["v"], kv["cells"], kv["layers"], kv["streams"], kv["type_k"], kv["type_v"]],
        }  # fmt: skip
        if rs:
            got["rs"] = [rs["r"], rs["s"], rs["cells"], rs["n_rs_seq"], rs["layers"]]
        bad = []
        if (c["n_ctx"], c["n_ctx_seq"]) != (e["n_ctx"], e["n_ctx_seq"]):
            bad.append(f"n_ctx {c['n_ctx']}/{c['n_ctx_seq']} != {e['n_ctx']}/{e['n_ctx_seq']}")
        if [kv["k"], kv["v"]] != e["kv"] or kv["buffer"] != kv["k"] + kv["v"]:
            bad.append(f"kv {kv} != {e['kv']}")
        if "rs" in e and (not rs or [rs["r"], rs["s"]] != e["rs"] or rs["buffer"] != rs["r"] + rs["s"]):
            bad.append(f"rs {rs} != {e['rs']}")
        if c["context"] != e["context"]:
            bad.append(f"context {c['context']} != {e['context']}")
        if c["output"] != e["output"]:
            bad.append(f"output {c['output']} != {e['output']}")
        want_model = layout["tensor_bytes_all"] if spec["mtp"] else layout["tensor_bytes_trunk"]
        if c["model"] != want_model:
            bad.append(f"model {c['model']} != {want_model}")
        if c["compute"] != c["compute_pp"]:
            bad.append(f"compute {c['compute']} != pp graph {c['compute_pp']}")
        if bad:
            raise SystemExit(f"{spec} {tag}: " + "; ".join(bad))
        err = (e["compute"] - c["compute"]) / c["compute"] * 100
        if not tag.endswith("_runtime"):
            worst = max(worst, abs(err))
        got["formula_compute"] = [e["compute"], round(err, 3)] + e["compute_bounds"]
        ctxs[tag] = got
    out["contexts"] = ctxs
    out["log"] = rec["log"]
    if rec.get("memprobe") is not None:
        mpb = rec["memprobe"]
        main = rec["contexts"]["main"]
        same = all(mpb.get(k) == main[k] for k in ("model", "context", "compute", "n_ctx", "n_seq_max"))
        if not same:
            raise SystemExit(f"{spec}: qwenfit-memprobe {mpb} != qwenfit-memgrid main context")
        out["memprobe"] = [mpb["model"], mpb["context"], mpb["compute"]]
    check_log(out)
    return out


def _mib(x: int) -> float:
    return float(f"{x / 1048576:.2f}")


def check_log(out: dict[str, Any]) -> None:
    """The MiB figures llama.cpp printed agree with the exact bytes (printf %.2f of bytes / 2^20)."""
    log, ctxs = out["log"], out["contexts"]
    inits = [t for t in ("main", "mtp") if t in ctxs]
    kv_lines = log.get("kv", [])
    for tag, line in zip(inits, kv_lines, strict=False):
        k, v, cells, layers, streams = ctxs[tag]["kv"][:5]
        if (line["k_mib"], line["v_mib"], line["cells"], line["layers"], line["streams"]) != (
            _mib(k),
            _mib(v),
            cells,
            layers,
            streams,
        ):
            raise SystemExit(f"KV log line {line} disagrees with {ctxs[tag]['kv']}")
    for line in log.get("rs", []):
        r, s_, cells, n_rs, _ = ctxs["main"]["rs"]
        if (line["r_mib"], line["s_mib"], line["cells"], line["rs_seq"]) != (_mib(r), _mib(s_), cells, n_rs):
            raise SystemExit(f"RS log line {line} disagrees with {ctxs['main']['rs']}")
    for tag, line in zip(inits, log.get("output", []), strict=False):
        if line[1] != _mib(ctxs[tag]["output"]):
            raise SystemExit(f"output log line {line} disagrees with {ctxs[tag]['output']}")
    computes = log.get("compute", [])
    for tag, line in zip(inits, computes, strict=False):
        if line[1] != _mib(ctxs[tag]["compute"]):
            raise SystemExit(f"compute log line {line} disagrees with {ctxs[tag]['compute']}")


# ------------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------------


def layout_info(path: str, how: list[str]) -> dict[str, Any]:
    info = g.read_gguf(path)
    trunk = g.non_mtp_tensor_bytes(info)
    total = sum(t[3] for t in info["tensors"])
    types: dict[str, int] = {}
    for t in info["tensors"]:
        types[t[1]] = types.get(t[1], 0) + t[3]
    return {"file_size": info["file_size"], "data_offset": info["data_offset"],
            "n_tensors": info["n_tensors"],
            "tensor_bytes_all": total, "tensor_bytes_trunk": trunk, "tensor_bytes_mtp": total - trunk,
            "bytes_by_type": dict(sorted(types.items())), "how": how}  # fmt: skip


ALLOC_CHECKS = ["base", "fa-off", "np4", "kv-q8_0", "srv", "mtp-np2"]


def run_model(name: str, work: str, exe: str, reuse: bool, alloc_checks: bool) -> dict[str, Any]:
    t0 = time.time()
    paths: dict[str, str] = {}
    layouts: dict[str, Any] = {}
    for mtp in (True, False):
        p, how = mg.make_bf16(name, work, mtp, reuse)
        v = "bf16-mtp" if mtp else "bf16-nomtp"
        paths[v] = p
        layouts[v] = layout_info(p, [" ".join(how)])
        q = p.replace(".bf16-", ".q4km-")
        q, qhow = mg.make_q4km(p, q, reuse)
        paths[v.replace("bf16", "q4km")] = q
        layouts[v.replace("bf16", "q4km")] = layout_info(q, [" ".join(qhow)])
    kv = g.read_gguf(paths["bf16-mtp"])["kv"]
    hp = mf.hparams_from_gguf(kv)
    runs: dict[str, Any] = {}
    worst: dict[str, float] = {}
    build = None
    for rid, ov in grid():
        spec = dict(BASE, **ov)
        rec = run_one(exe, paths, spec)
        build = build or rec["build"]
        r = check_run(hp, layouts[spec["variant"]], spec, rec)
        r["set"] = ov
        r["args"] = llama_args(spec, f"<work>/{os.path.basename(paths[spec['variant']])}")
        if spec["server"]:
            r["env"] = {"QWENFIT_SERVER": "1"}
        for tag, c in r.get("contexts", {}).items():
            if not tag.endswith("_runtime"):
                key = f"{tag}-{'server' if spec['server'] else 'cli'}"
                worst[key] = max(worst.get(key, 0.0), abs(c["formula_compute"][1]))
        runs[rid] = r
    out: dict[str, Any] = {
        "model": name,
        "llama_cpp": {"commit": g.llama_env()["LLAMA_CPP_COMMIT"], "build": build,
                      "tool": "qwenfit-memgrid (scripts/_memory_probe.py); qwenfit-memprobe for comparison"},
        "hparams": hp,
        "layouts": layouts,
        "base": BASE,
        "runs": runs,
        "compute_formula_max_abs_err_pct": {k: round(v, 3) for k, v in sorted(worst.items())},
    }  # fmt: skip
    if alloc_checks and name == "Qwen3.5-0.8B":
        out["alloc_checks"] = run_alloc_checks(exe, paths, runs)
        out["q4km_layout_check"] = mg.check_against_real_quantize(paths["bf16-mtp"], paths["q4km-mtp"], work)
    print(
        f"{name}: {len(runs)} runs in {time.time() - t0:.1f} s; compute formula max |err| % {worst}",
        file=sys.stderr,
    )
    return out


def run_alloc_checks(exe: str, paths: dict[str, str], runs: dict[str, Any]) -> dict[str, Any]:
    """Real allocation (weights mmap-ed from the sparse file, KV/RS/compute buffers allocated) gives
    the same bytes as the no_alloc dry run; the compute buffer of a real context is max(pp, tg)."""
    grid_map = dict(grid())
    res: dict[str, Any] = {}
    for rid in ALLOC_CHECKS:
        spec = dict(BASE, **grid_map[rid])
        rec = run_one(exe, paths, spec, alloc=True)
        dry = runs[rid]["contexts"]
        row = {}
        for tag, c in rec["contexts"].items():
            d = dry[tag]
            row[tag] = {
                "context": [c["context"], d["context"]], "compute": [c["compute"], d["compute"]],
                "output": [c["output"], d["output"]],
                "model_buffers": {b["buft"]: b["model"] for b in c["bufts"] if b["model"]},
            }  # fmt: skip
            if c["context"] != d["context"] or c["compute"] != max(d["compute"], d["compute_tg"]):
                raise SystemExit(f"alloc check {rid} {tag}: {row[tag]}")
        res[rid] = row
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/tmp/qwenfit-llama-memory", help="scratch dir (sparse GGUFs, probe)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--reuse", action="store_true", help="reuse sparse GGUFs of an earlier run")
    ap.add_argument("--keep", action="store_true", help="keep the sparse GGUFs (default: delete them)")
    ap.add_argument("--no-alloc-checks", action="store_true")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args(argv)
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    exe = mp.build(a.work)
    index: dict[str, Any] = {"models": {}, "grid": [[rid, ov] for rid, ov in grid()], "base": BASE}
    errors: dict[str, list[float]] = {}
    for name in a.models.split(","):
        res = run_model(name, a.work, exe, a.reuse, not a.no_alloc_checks)
        g.json_dump(res, os.path.join(a.out, f"{name}.json"))
        index["models"][name] = {
            "runs": len(res["runs"]),
            "compute_formula_max_abs_err_pct": res["compute_formula_max_abs_err_pct"],
        }
        index["llama_cpp"] = res["llama_cpp"]
        for r in res["runs"].values():
            for tag, c in r.get("contexts", {}).items():
                if not tag.endswith("_runtime"):
                    key = f"{tag}-{'server' if 'env' in r else 'cli'}"
                    errors.setdefault(key, []).append(abs(c["formula_compute"][1]))
        if not a.keep:
            for f in os.listdir(a.work):
                if f.startswith(name + ".") and f.endswith(".gguf"):
                    os.remove(os.path.join(a.work, f))
    index["compute_formula_abs_err_pct"] = {
        k: {"n": len(v), "max": max(v), "median": sorted(v)[len(v) // 2], "p90": sorted(v)[int(0.9 * len(v))],
            "n_over_1pct": sum(x > 1 for x in v), "n_over_5pct": sum(x > 5 for x in v)}
        for k, v in sorted(errors.items())
    }  # fmt: skip
    g.json_dump(index, os.path.join(a.out, "INDEX.json"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
