#!/usr/bin/env python3
"""Nodes and kernel launches of ONE Qwen3.5 layer in llama.cpp's CUDA backend, per phase.

What it measures
----------------
llama.cpp's scheduler builds the real graph of a Qwen3.5 model (llama.cpp 0c1e570, vendored in
llama-cpp-python 0.3.36) on the real ggml-cuda backend of the fake-GPU probe
(scripts/README-fake-gpu.md), with ``GGML_SCHED_DEBUG=2``: the scheduler prints every non-view node
of the graph it reserves (``ggml_backend_sched_print_assignments``, ggml-backend.cpp:997-1035) with
its graph index, op, name and backend, and skips VIEW/RESHAPE/PERMUTE/TRANSPOSE nodes
(``ggml_is_view_op``, :757-759). A layer ``il`` is the index range (l_out-(il-1), l_out-il]; the
indices missing from the print inside that range are the view nodes. The probe reserves the
prompt (pp) graph of ``-ub`` tokens last and the one-token (tg) graph before it; both are parsed:
phases ``prefill_37`` (-ub 37), ``prefill_512`` (-ub 512), ``decode_after_37`` and
``decode_after_512`` (the tg graph; identical in both runs, checked).

Which nodes launch a kernel: ggml-cuda evaluates every node of its split except
``ggml_cuda_is_view_or_noop`` (empty tensors and RESHAPE/TRANSPOSE/VIEW/PERMUTE/NONE,
ggml-cuda.cu); the printed nodes are the non-view ones (no NONE op is a graph node), ``kernel_nodes``
counts them before ggml-cuda's fusions. A few of them are empty for one sequence (the recurrent-state
copies for other sequences: GET_ROWS/CPY with 0 rows) and launch nothing; the measured
``launches_per_node_by_op`` shows them as [0, n]. ``fusions`` is this script's own replay of the fusion
rules (see ``FUSIONS``), a reading of the source that names WHICH nodes merge.

Launches (``launches`` of each layer/phase) are MEASURED: scripts/_launch_count.py runs ggml-cuda's
real host code on the fake GPU with kernel launches counted instead of refused (a prompt of 37 or
512 tokens, then two decode steps, CUDA graphs off = the eager path a prompt takes): the launches,
cuBLAS calls and memcpy/memset calls of the layer with ggml-cuda's fusions (the layer computed as
one chunk) and without them (every node computed alone; and again the layer chunk with
GGML_CUDA_DISABLE_FUSION=1, which gives the same numbers), and per op. The runner's graph is checked
to have the probe's node count for every layer counted, and the two decode steps the same launches.

Model: a sparse GGUF per model (header real, data a hole: the probe never reads it, the launch
runner reads zeros) with the FULL per-layer dimensions of data/models/<model>.json (hidden size,
heads, head dims, GDN heads, FFN / expert sizes, 256 experts) and 8 layers (full attention at 3 and
7, interval 4; layers 5 (GDN) and 3 (attention) are counted: neither the first nor the last layer,
which picks the output rows), a 288-token vocabulary (the tokenizer of
tests/fixtures/gguf/dense-untied-text.gguf; the vocabulary only sizes token_embd/output), weight
types Q4_K_M as ``llama-quantize --dry-run Q4_K_M`` assigns them to the same layout written in BF16
(q4_K/q6_K; norms, ssm vectors, conv and routers F32; scripts/_memory_gguf.py, needs
scripts/build_llama_cpp.sh; with Q4_K everywhere the counts were identical). Tensor names and the
split/fused layout are those convert_hf_to_gguf.py writes (separate attn_q/k/v,
ffn_gate_exps/ffn_up_exps), as in tests/fixtures/gguf/MANIFEST.json. Context 4096, 1 sequence,
-ngl 999, llama-server outputs (n_outputs 1), flash attention auto (on: CUDA supports head dim
256), fused GDN (always on in this tree: llama-context.cpp:233-235).

How to run
----------
::

    scripts/build_fake_gpu.sh          # once (~34 min): the probe, the static libs, the fake runtime
    PYTHONPATH=. /work/main/.venv/bin/python scripts/llama_graph_nodes.py   # ~2 min (35B: 3.8 GB of zeros)
    # --check: compare with tests/fixtures/llama_graph_nodes/qwen35.json instead of writing it

Needs: the probe (``FAKE_GPU_PROBE`` or ~/.cache/qwenfit/fake-gpu/bin/qwenfit-gpuprobe) and the
fake-GPU build tree (scripts/_launch_count.py compiles its runner against it: cc, c++, CUDA headers),
the ``gguf`` package (gguf-py), ~4 GB of free RAM (the runner really loads the weights, zeros).
Writes tests/fixtures/llama_graph_nodes/qwen35.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _launch_count as lc
import _memory_gguf as mg

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURE = os.path.join(REPO, "tests", "fixtures", "llama_graph_nodes", "qwen35.json")
TOKENIZER_GGUF = os.path.join(REPO, "tests", "fixtures", "gguf", "dense-untied-text.gguf")
LLAMA_COMMIT = "0c1e57098bba43ac29e6e3b677cdceebdd22334f"
MODELS = ("Qwen3.5-9B", "Qwen3.5-27B", "Qwen3.5-35B-A3B")
N_LAYER = 8  # full attention at 3 and 7 (interval 4)
LAYERS = {"gdn": 5, "attn": 3}
UBATCHES = (37, 512)
N_CTX = 4096
DEVICE = "NVIDIA GeForce RTX 5080|16303|15000|12.0|84"
VIEW_OPS = ("VIEW", "RESHAPE", "PERMUTE", "TRANSPOSE")
# ggml_op_desc truncated to 10 characters by the print (%10.10s) -> full name
OP_NAMES = {"GATED_DELT": "GATED_DELTA_NET", "FLASH_ATTN": "FLASH_ATTN_EXT"}


# --------------------------------------------------------------------------- the GGUF
def model_dims(name: str) -> dict[str, Any]:
    with open(os.path.join(REPO, "data", "models", f"{name}.json")) as f:
        t = json.load(f)["text_config"]
    rope = t["rope_parameters"]
    d = {
        "n_embd": t["hidden_size"],
        "n_head": t["num_attention_heads"],
        "n_head_kv": t["num_key_value_heads"],
        "head_dim": t["head_dim"],
        "n_rot": int(t["head_dim"] * rope["partial_rotary_factor"]),
        "rope_sections": [*rope["mrope_section"], 0],
        "conv_kernel": t["linear_conv_kernel_dim"],
        "gdn_k_heads": t["linear_num_key_heads"],
        "gdn_v_heads": t["linear_num_value_heads"],
        "gdn_k_dim": t["linear_key_head_dim"],
        "gdn_v_dim": t["linear_value_head_dim"],
        "layers_in_model": t["num_hidden_layers"],
    }
    if "num_experts" in t:
        d.update(
            n_expert=t["num_experts"],
            n_expert_used=t["num_experts_per_tok"],
            n_ff_exp=t["moe_intermediate_size"],
            n_ff_shexp=t["shared_expert_intermediate_size"],
        )
    else:
        d["n_ff"] = t["intermediate_size"]
    return d


def layer_tensors(d: dict[str, Any], il: int, attn: bool) -> dict[str, tuple[str, list[int]]]:
    """name -> (ggml type, ne0-first shape), as llama_model_qwen35{,moe}::load_arch_tensors wants."""
    E, p = d["n_embd"], f"blk.{il}."
    t: dict[str, tuple[str, list[int]]] = {
        p + "attn_norm.weight": ("F32", [E]),
        p + "post_attention_norm.weight": ("F32", [E]),
    }
    if attn:
        hd, nh, nkv = d["head_dim"], d["n_head"], d["n_head_kv"]
        t[p + "attn_q.weight"] = ("Q4_K", [E, hd * nh * 2])
        t[p + "attn_k.weight"] = ("Q4_K", [E, hd * nkv])
        t[p + "attn_v.weight"] = ("Q4_K", [E, hd * nkv])
        t[p + "attn_output.weight"] = ("Q4_K", [hd * nh, E])
        t[p + "attn_q_norm.weight"] = ("F32", [hd])
        t[p + "attn_k_norm.weight"] = ("F32", [hd])
    else:
        key_dim = d["gdn_k_dim"] * d["gdn_k_heads"]
        value_dim = d["gdn_v_dim"] * d["gdn_v_heads"]
        nv = d["gdn_v_heads"]
        t[p + "attn_qkv.weight"] = ("Q4_K", [E, 2 * key_dim + value_dim])
        t[p + "attn_gate.weight"] = ("Q4_K", [E, value_dim])
        t[p + "ssm_conv1d.weight"] = ("F32", [d["conv_kernel"], 2 * key_dim + value_dim])
        t[p + "ssm_dt.bias"] = ("F32", [nv])
        t[p + "ssm_a"] = ("F32", [nv])
        t[p + "ssm_beta.weight"] = ("Q4_K", [E, nv])
        t[p + "ssm_alpha.weight"] = ("Q4_K", [E, nv])
        t[p + "ssm_norm.weight"] = ("F32", [d["gdn_v_dim"]])
        t[p + "ssm_out.weight"] = ("Q4_K", [value_dim, E])
    if "n_expert" in d:
        ne, fe, fs = d["n_expert"], d["n_ff_exp"], d["n_ff_shexp"]
        t[p + "ffn_gate_inp.weight"] = ("F32", [E, ne])
        t[p + "ffn_gate_exps.weight"] = ("Q4_K", [E, fe, ne])
        t[p + "ffn_up_exps.weight"] = ("Q4_K", [E, fe, ne])
        t[p + "ffn_down_exps.weight"] = ("Q4_K", [fe, E, ne])
        t[p + "ffn_gate_inp_shexp.weight"] = ("F32", [E])
        t[p + "ffn_gate_shexp.weight"] = ("Q4_K", [E, fs])
        t[p + "ffn_up_shexp.weight"] = ("Q4_K", [E, fs])
        t[p + "ffn_down_shexp.weight"] = ("Q4_K", [fs, E])
    else:
        t[p + "ffn_gate.weight"] = ("Q4_K", [E, d["n_ff"]])
        t[p + "ffn_up.weight"] = ("Q4_K", [E, d["n_ff"]])
        t[p + "ffn_down.weight"] = ("Q4_K", [d["n_ff"], E])
    return t


def write_gguf(path: str, d: dict[str, Any], types: dict[str, str] | None = None, bf16: bool = False) -> None:
    """The sparse GGUF: ``bf16`` = every 2-D weight BF16 (the input of llama-quantize --dry-run),
    else ``types`` (tensor -> ggml type name) where given, Q4_K for the other 2-D weights."""
    import gguf
    import numpy as np

    moe = "n_expert" in d
    arch = "qwen35moe" if moe else "qwen35"
    recurrent = [(i + 1) % 4 != 0 for i in range(N_LAYER)]
    tok = gguf.GGUFReader(TOKENIZER_GGUF)
    n_vocab = len(tok.fields["tokenizer.ggml.tokens"].data)

    w = gguf.GGUFWriter(path, arch)
    w.add_string("general.name", "llama_graph_nodes")
    w.add_uint32("general.file_type", 15)
    w.add_uint32("general.quantization_version", 2)
    u32 = {
        "block_count": N_LAYER,
        "context_length": 262144,
        "embedding_length": d["n_embd"],
        "attention.head_count": d["n_head"],
        "attention.head_count_kv": d["n_head_kv"],
        "attention.key_length": d["head_dim"],
        "attention.value_length": d["head_dim"],
        "rope.dimension_count": d["n_rot"],
        "ssm.conv_kernel": d["conv_kernel"],
        "ssm.state_size": d["gdn_k_dim"],
        "ssm.group_count": d["gdn_k_heads"],
        "ssm.time_step_rank": d["gdn_v_heads"],
        "ssm.inner_size": d["gdn_v_dim"] * d["gdn_v_heads"],
        "full_attention_interval": 4,
    }
    if moe:
        u32.update(
            {
                "expert_count": d["n_expert"],
                "expert_used_count": d["n_expert_used"],
                "expert_feed_forward_length": d["n_ff_exp"],
                "expert_shared_feed_forward_length": d["n_ff_shexp"],
            }
        )
    else:
        u32["feed_forward_length"] = d["n_ff"]
    for k, v in u32.items():
        w.add_uint32(f"{arch}.{k}", v)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", 1e-6)
    w.add_float32(f"{arch}.rope.freq_base", 1e7)
    w.add_array(f"{arch}.rope.dimension_sections", d["rope_sections"])
    w.add_array(f"{arch}.attention.recurrent_layers", recurrent)
    for key, field in tok.fields.items():  # the tiny fixture's tokenizer, verbatim
        if key.startswith("tokenizer."):
            vtype = field.types[0]
            if vtype == gguf.GGUFValueType.ARRAY:
                w.add_key_value(key, list(field.contents()), vtype, sub_type=field.types[-1])
            else:
                w.add_key_value(key, field.contents(), vtype)

    tensors: dict[str, tuple[str, list[int]]] = {
        "token_embd.weight": ("Q4_K", [d["n_embd"], n_vocab]),
        "output_norm.weight": ("F32", [d["n_embd"]]),
        "output.weight": ("Q4_K", [d["n_embd"], n_vocab]),
    }
    for il in range(N_LAYER):
        tensors.update(layer_tensors(d, il, attn=not recurrent[il]))
    total = 0
    for name, (tname, shape) in tensors.items():
        if tname == "Q4_K":
            tname = "BF16" if bf16 else (types or {}).get(name, tname).upper()
        qt = gguf.GGMLQuantizationType[tname]
        bs, ts = gguf.GGML_QUANT_SIZES[qt]
        n = 1
        for x in shape:
            n *= x
        nbytes = n // bs * ts
        w.add_tensor_info(name, list(reversed(shape)), np.dtype(np.float32), nbytes, raw_dtype=qt)
        total += -(-nbytes // 32) * 32
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(-(-size // 32) * 32 + total)  # the data section: a sparse hole


# --------------------------------------------------------------------------- the probe
def probe_path() -> str:
    p = os.environ.get("FAKE_GPU_PROBE") or os.path.expanduser(
        "~/.cache/qwenfit/fake-gpu/bin/qwenfit-gpuprobe"
    )
    if not os.path.exists(p):
        sys.exit(f"probe not found: {p} (scripts/build_fake_gpu.sh)")
    return p


def run_probe(gguf_path: str, ubatch: int) -> str:
    cmd = [
        probe_path(),
        "-m",
        gguf_path,
        "-c",
        str(N_CTX),
        "-ub",
        str(ubatch),
        "-b",
        str(ubatch),
        "-np",
        "1",
        "-ngl",
        "999",
        "--qf-outputs",
        "server",
    ]
    env = dict(os.environ, GGML_SCHED_DEBUG="2", QWENFIT_FAKE_CUDA_DEVICES=DEVICE)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return r.stderr


_RESERVE = re.compile(r"^graph_reserve: reserving a graph for ubatch with n_tokens =\s*(\d+)")
_NODE = re.compile(r"^node #\s*(\d+) \((.{10})\): (.{20}) \((.{5})\) \[(.{5}) .{8}\] use=(\d+),c=\d:(.*)$")
_SRC_WIDTH = 46  # " %20.20s (%5.5s) [%5.5s %8.8s]" (ggml-backend.cpp:1029)
_SPLIT = re.compile(r"^## SPLIT #(\d+): (\S+)")


def parse_graphs(stderr: str) -> list[dict[str, Any]]:
    """Every graph the scheduler printed: n_tokens, its splits and its non-view nodes."""
    graphs: list[dict[str, Any]] = []
    for line in stderr.splitlines():
        m = _RESERVE.match(line)
        if m:
            graphs.append({"n_tokens": int(m.group(1)), "nodes": [], "splits": []})
            continue
        if not graphs:
            continue
        m = _SPLIT.match(line)
        if m:
            graphs[-1]["splits"].append(m.group(2))
            continue
        m = _NODE.match(line)
        if m:
            rest = m.group(7)
            chunks = [rest[k : k + _SRC_WIDTH] for k in range(0, len(rest), _SRC_WIDTH)]
            graphs[-1]["nodes"].append(
                {
                    "i": int(m.group(1)),
                    "op": OP_NAMES.get(m.group(2).strip(), m.group(2).strip()),
                    "name": m.group(3).strip(),
                    "size": m.group(4).strip(),  # ggml_nbytes as the print rounds it (fmt_size)
                    "backend": m.group(5).strip(),
                    "use": int(m.group(6)),
                    "srcs": [c[1:21].strip() for c in chunks],
                    "src_sizes": [c[23:28].strip() for c in chunks],
                }
            )
    return graphs


def layer_slice(graph: dict[str, Any], il: int) -> dict[str, Any]:
    """Layer il = graph indices (l_out-(il-1), l_out-il]; views = indices not printed."""
    ends = {n["name"]: n["i"] for n in graph["nodes"] if n["name"].startswith("l_out-")}
    lo, hi = ends[f"l_out-{il - 1}"], ends[f"l_out-{il}"]
    nodes = [n for n in graph["nodes"] if lo < n["i"] <= hi]
    return {"first": lo + 1, "last": hi, "nodes": nodes, "n_all": hi - lo}


# --------------------------------------------------------------------------- fusion replay
# ggml_cuda_try_fuse (ggml-cuda.cu:3444-4201), in its order. "VIEW" in a pattern matches any view node
# (the print does not say which view op it is). Replayed: op order on consecutive graph indices, the
# use count of every node but the last (ggml_can_fuse_ext: exactly 1), the previous node among the
# sources (names, 20 characters). NOT replayed: shapes, types, memory ranges, the should_fuse_* helpers.
FUSIONS: list[tuple[str, tuple[str, ...]]] = [
    ("rope+view+set_rows", ("ROPE", "VIEW", "SET_ROWS")),
    ("rms_norm+mul+rope+view+set_rows", ("RMS_NORM", "MUL", "ROPE", "VIEW", "SET_ROWS")),
    ("rms_norm+mul+rope", ("RMS_NORM", "MUL", "ROPE")),
    ("rms_norm+mul+add", ("RMS_NORM", "MUL", "ADD")),
    ("rms_norm+mul", ("RMS_NORM", "MUL")),
    ("rms_norm+scale", ("RMS_NORM", "SCALE")),
    ("ssm_conv+add+silu", ("SSM_CONV", "ADD", "SILU")),
    ("ssm_conv+silu", ("SSM_CONV", "SILU")),
    ("silu+mul", ("SILU", "MUL")),
    ("sigmoid+mul", ("SIGMOID", "MUL")),
    ("softplus+mul", ("SOFTPLUS", "MUL")),
]
TOPK_MOE = ("SOFT_MAX", "VIEW", "ARGSORT", "VIEW", "GET_ROWS", "VIEW", "SUM_ROWS", "CLAMP", "DIV", "VIEW")
# Qwen3.5 ropes with LLAMA_ROPE_TYPE_IMROPE (llama-model.cpp:3196); the rope fusions take the norm/neox
# modes only (ggml_cuda_should_fuse_rope_set_rows / _rms_norm_mul_rope, ggml-cuda.cu:2688-2692, 2728-2732)
ROPE_FUSABLE = False
MMVQ_MAX_BATCH_SIZE = 8  # mmvq.cuh:3; the gate/up/GLU fusion runs only through mul_mat_vec_{q,f}


def _match(seq: dict[int, dict[str, Any]], i: int, ops: tuple[str, ...], chain: bool = True) -> bool:
    for k, op in enumerate(ops):
        n = seq.get(i + k)
        if n is None:
            return False
        if op == "VIEW":
            if n["op"] != "VIEW":
                return False
            continue
        if n["op"] != op:
            return False
        if not chain:
            continue
        if k < len(ops) - 1 and n["use"] != 1:
            return False
        if k > 0:
            prev = seq[i + k - 1]
            if prev["op"] != "VIEW" and prev["name"][:20] not in n["srcs"]:
                return False
    return True


def _same_size_operand(seq: dict[int, dict[str, Any]], i: int) -> bool:
    """ggml_cuda_can_fuse (UNARY, MUL): ggml_are_same_shape(other, unary), ggml-cuda.cu:3366-3368.
    The print has no shapes; the rounded byte sizes stand in for them."""
    unary, mul = seq[i], seq.get(i + 1)
    if mul is None or mul["op"] != "MUL" or unary["name"][:20] not in mul["srcs"]:
        return False
    k = mul["srcs"].index(unary["name"][:20])
    others = [sz for j, sz in enumerate(mul["src_sizes"]) if j != k]
    return others == [unary["size"]]


def replay_fusions(seq: dict[int, dict[str, Any]], n_tokens: int) -> list[dict[str, Any]]:
    """Groups of graph indices ggml-cuda would evaluate as one fused op (see FUSIONS)."""
    groups: list[dict[str, Any]] = []
    idx = sorted(seq)
    i, end = idx[0], idx[-1]
    while i <= end:
        n = seq[i]
        if n["op"] == "VIEW":
            i += 1
            continue
        size, label = 0, ""
        if n["op"] == "MUL" and n["name"].startswith("ffn_moe_weighted"):
            # moe weighted reduction: mul + views + the chain of adds up to ffn_moe_out
            j = i + 1
            while (
                j <= end
                and seq[j]["op"] in ("VIEW", "ADD")
                and not seq[j - 1]["name"].startswith("ffn_moe_out")
            ):
                j += 1
            if seq[j - 1]["name"].startswith("ffn_moe_out"):
                size, label = j - i, "moe_weighted_reduction"
        elif n["op"] == "GATED_DELTA_NET":
            j = i + 1
            while j <= end and seq[j]["op"] == "VIEW":
                j += 1
            if j <= end and seq[j]["op"] == "CPY":
                size, label = j - i + 1, "gated_delta_net+state_cpy"
        elif n["op"] == "SOFT_MAX" and _match(seq, i, TOPK_MOE, chain=False):
            size, label = len(TOPK_MOE), "topk_moe"
        elif (
            n["op"] in ("MUL_MAT", "MUL_MAT_ID")
            and n_tokens <= MMVQ_MAX_BATCH_SIZE
            and _match(seq, i, (n["op"], n["op"], "SWIGLU"), chain=False)
        ):
            size, label = 3, "mul_mat_vec gate+up+glu"
        elif (
            n["op"] in ("MUL_MAT", "MUL_MAT_ID")
            and n_tokens <= MMVQ_MAX_BATCH_SIZE
            and _match(seq, i, (n["op"], "ADD"))
            and len(set(seq[i + 1]["src_sizes"])) == 1
        ):
            size, label = 2, "mul_mat_vec+add"  # ggml-cuda.cu:4080-4140: the ADD as the mmvq bias
        if not size and n["op"] in ("ADD", "MUL"):
            k = 0
            while (
                k < 7
                and _match(seq, i + k, (n["op"], n["op"]))
                and seq[i + k + 1]["srcs"][:1] == [seq[i + k]["name"][:20]]
            ):
                k += 1
            if k:
                size, label = k + 1, f"multi_{n['op'].lower()}"
        if not size:
            for name, ops in FUSIONS:
                if "ROPE" in ops and not ROPE_FUSABLE:
                    continue
                if ops[0] in ("SILU", "SIGMOID", "SOFTPLUS") and not _same_size_operand(seq, i):
                    continue  # unary+mul wants the other operand of the shape of the unary (no broadcast)
                if _match(seq, i, ops):
                    size, label = len(ops), name
                    break
        if size > 1:
            members = [j for j in range(i, i + size) if seq[j]["op"] != "VIEW"]
            groups.append(
                {"fusion": label, "kernel_nodes": len(members), "ops": [seq[j]["op"] for j in members]}
            )
            i += size
        else:
            i += 1
    return groups


# --------------------------------------------------------------------------- counting
def count_layer(graph: dict[str, Any], il: int) -> dict[str, Any]:
    sl = layer_slice(graph, il)
    seq: dict[int, dict[str, Any]] = {
        i: {"op": "VIEW", "name": "", "use": 0, "srcs": [], "size": "", "src_sizes": []}
        for i in range(sl["first"], sl["last"] + 1)
    }
    for n in sl["nodes"]:
        seq[n["i"]] = n
    kernel = [n for n in sl["nodes"]]
    backends = sorted({n["backend"] for n in kernel})
    ops = Counter(n["op"] for n in kernel)
    fusions = replay_fusions(seq, graph["n_tokens"])
    removed = sum(g["kernel_nodes"] - 1 for g in fusions)
    return {
        "nodes": sl["n_all"],
        "view_nodes": sl["n_all"] - len(kernel),
        "kernel_nodes": len(kernel),
        "kernel_nodes_after_fusion": len(kernel) - removed,
        "fusions_removed": removed,
        "backends": backends,
        "kernel_ops": dict(sorted(ops.items())),
        "kernel_op_sequence": [n["op"] for n in kernel],
        "fusions": fusions,
        "mul_mat_nodes": ops.get("MUL_MAT", 0) + ops.get("MUL_MAT_ID", 0),
    }


def measure(work: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in MODELS:
        dims = model_dims(name)
        path = os.path.join(work, f"{name}.gguf")
        write_gguf(path + ".bf16", dims, bf16=True)  # Q4_K_M as llama-quantize types it
        types = mg.quantize_dry_run_types(path + ".bf16", "Q4_K_M")
        os.remove(path + ".bf16")
        write_gguf(path, dims, types)
        phases: dict[str, dict[str, Any]] = {}
        tg: dict[int, list[Any]] = {}
        decode: dict[int, dict[str, Any]] = {}
        totals: dict[str, int] = {}
        for ub in UBATCHES:
            graphs = parse_graphs(run_probe(path, ub))
            pp, tgg = graphs[-1], graphs[-2]
            assert pp["n_tokens"] == ub and tgg["n_tokens"] == 1, (name, ub)
            counted = {"prefill": {kind: count_layer(pp, il) for kind, il in LAYERS.items()},
                       "decode": {kind: count_layer(tgg, il) for kind, il in LAYERS.items()}}  # fmt: skip
            totals[f"prefill_{ub}"] = max(n["i"] for n in pp["nodes"]) + 1
            totals[f"decode_after_{ub}"] = max(n["i"] for n in tgg["nodes"]) + 1
            tg[ub] = [[n["op"] for n in tgg["nodes"]], tgg["splits"]]
            # launches counted on the fake GPU (scripts/_launch_count.py): a prompt of ub tokens, 2 decodes
            by_layer, by_node = (lc.run(path, ub, mode, DEVICE) for mode in ("layer", "node"))
            no_fusion = lc.run(path, ub, "layer", DEVICE, {"GGML_CUDA_DISABLE_FUSION": "1"})
            for ph in ("prefill", "decode_1", "decode_2"):
                for kind, il in LAYERS.items():
                    got = lc.layer_launches(by_layer, by_node, no_fusion, ph, il)
                    c = counted["prefill" if ph == "prefill" else "decode"][kind]
                    assert got["callback_nodes"] == c["nodes"], (
                        name,
                        ub,
                        ph,
                        kind,
                    )  # runner graph == probe graph
                    if ph == "decode_2":
                        assert got == c["launches"], f"{name}: decode launches not stable"
                    else:
                        c["launches"] = got
            phases[f"prefill_{ub}"] = {**counted["prefill"], "splits": pp["splits"]}
            decode[ub] = {**counted["decode"], "splits": tgg["splits"]}
        assert tg[UBATCHES[0]] == tg[UBATCHES[-1]], f"{name}: the tg graph depends on -ub"
        for ub in UBATCHES:  # same graph; the launches may differ with the KV length (flash attention)
            phases[f"decode_after_{ub}"] = decode[ub]
        counted = {f"blk.{il}.": kind for kind, il in LAYERS.items()}
        layer_types = {t: ty for t, ty in sorted(types.items()) if any(t.startswith(p) for p in counted)}
        out[name] = {
            "dims": dims,
            "weight_types": layer_types,
            "graph_last_index_plus_one": totals,
            "phases": phases,
        }
        os.remove(path)
    return out


# Launches depend a little on the device (the mmq stream-k fix-up kernel runs or not depending on the
# number of SMs): the fused per-layer launches of Qwen3.5-9B on a few other devices (name|MiB|MiB|cc|SMs).
OTHER_DEVICES = (
    "NVIDIA GeForce RTX 3090|24576|24000|8.6|82",
    "NVIDIA GeForce RTX 4090|24564|24000|8.9|128",
    "NVIDIA GeForce RTX 4060|8188|7800|8.9|24",
)


def device_sensitivity(work: str, name: str = "Qwen3.5-9B") -> dict[str, Any]:
    path = os.path.join(work, f"{name}.devices.gguf")
    write_gguf(path, model_dims(name))  # Q4_K everywhere: same counts as Q4_K_M (see the docstring)
    out: dict[str, Any] = {"model": name}
    for dev in (DEVICE, *OTHER_DEVICES):
        per: dict[str, dict[str, int]] = {}
        for ub in UBATCHES:
            recs = lc.run(path, ub, "layer", dev)
            for ph, key in (("prefill", f"prefill_{ub}"), ("decode_1", f"decode_after_{ub}")):
                per[key] = {
                    kind: lc.layer_records(recs, ph, il)[0]["launches"] for kind, il in LAYERS.items()
                }
        out[dev] = per
    os.remove(path)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=FIXTURE)
    ap.add_argument("--check", action="store_true", help="compare with the fixture instead of writing it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="graph_nodes_") as work:
        models = measure(work)
        devices = device_sensitivity(work)
    doc = {
        "generator": "scripts/llama_graph_nodes.py",
        "llama_cpp_commit": LLAMA_COMMIT,
        "probe": "fake-GPU qwenfit-gpuprobe (real ggml-cuda host code, scripts/README-fake-gpu.md), "
        "GGML_SCHED_DEBUG=2",
        "setup": {
            "n_layer_in_gguf": N_LAYER,
            "layers_counted": LAYERS,
            "n_ctx": N_CTX,
            "n_seq": 1,
            "n_gpu_layers": 999,
            "outputs": "server (n_outputs 1)",
            "device": DEVICE,
            "flash_attn": "auto (enabled)",
            "fused_gdn": "auto (enabled: GATED_DELTA_NET op)",
            "weights": "Q4_K_M: the types llama-quantize --dry-run Q4_K_M gives the 8-layer BF16 layout "
            "(weight_types of each model: the counted layers)",
            "vocab": 288,
        },
        "phases": {
            "prefill_37": "pp graph, -ub 37",
            "prefill_512": "pp graph, -ub 512",
            "decode_after_37": "tg graph (1 token); launches of the decode steps after a 37-token prompt",
            "decode_after_512": "tg graph (1 token); launches of the decode steps after a 512-token prompt",
        },
        "definitions": {
            "nodes": "graph nodes of the layer: indices (l_out-(il-1), l_out-il]",
            "view_nodes": "VIEW/RESHAPE/PERMUTE/TRANSPOSE (not printed by the scheduler; "
            "ggml_cuda_is_view_or_noop)",
            "kernel_nodes": "non-view nodes (ggml-cuda evaluates each unless it is empty: "
            "see launches_per_node_by_op)",
            "kernel_nodes_after_fusion": "kernel_nodes minus the nodes the fusion replay merges "
            "(see fusions_note)",
            "mul_mat_nodes": "MUL_MAT + MUL_MAT_ID nodes (with quantized weights 2-3 launches each: "
            "see launches.launches_per_node_by_op)",
            "launches": "measured on the fake GPU (scripts/_launch_count.py): kernel launches, cuBLAS calls "
            "(>= 1 kernel each on a GPU, not in launches), memcpy/memset calls of the layer with ggml-cuda's "
            "fusions; unfused: every node computed alone; launches_per_node_by_op: op -> [[launches, nodes]]",
        },
        "fusions_note": "replay of ggml_cuda_try_fuse by op pattern on consecutive graph indices, use counts "
        "and producer names; of the shape/type conditions only: no rope fusion (Qwen3.5's IMROPE mode), "
        "unary+mul only without broadcast (sizes as printed), gate+up+GLU and mul_mat+add only at <= 8 "
        "tokens (mmvq). "
        "fusions_removed counts merged kernel NODES; launches.fusion_removed_launches is measured",
        "models": models,
        "device_sensitivity": devices,
    }
    if args.check:
        with open(args.out) as f:
            old = json.load(f)
        if old != json.loads(json.dumps(doc)):
            sys.exit("fixture differs from a fresh run")
        print("fixture up to date")
        return
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(args.out)


if __name__ == "__main__":
    main()
