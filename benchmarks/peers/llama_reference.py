#!/usr/bin/env python3
"""llama.cpp's own memory for the peer-comparison cases: the reference the peers are judged against.

What it produces: ``benchmarks/peers/fixtures/llama_cpp_reference.json``. For every case of
``CASES`` (Qwen3.5 9B, 27B, 35B-A3B, 122B-A10B, 397B-A17B; Q4_K_M; -c 32768 / 131072 / 262144;
one sequence; f16 KV; flash attention on; llama-server's output limits) it records what
llama.cpp itself allocates, in exact bytes: the model buffer, the KV cache, the recurrent (Gated
DeltaNet) state, the compute buffer and the host output buffer, plus the log lines llama.cpp
printed (``llama_kv_cache: size = ...``, ``llama_memory_recurrent: size = ...``).

How: the same machinery as ``scripts/llama_memory_fixtures.py`` (read it for the details), reused
read-only: a full-size sparse GGUF written by llama.cpp's own ``convert_hf_to_gguf.py`` (header
only, ``--no-mtp``: the layout of the GGUFs on the Hub), its Q4_K_M layout from the real
``llama-quantize --dry-run`` (scripts/_memory_gguf.py), and ``qwenfit-memgrid``
(scripts/_memory_probe.py), which creates the model and context exactly like
``llama-fit-params`` (no_alloc) and prints ``llama_get_memory_breakdown`` in bytes;
``QWENFIT_SERVER=1`` applies llama-server's output limits. Always ``--no-repack`` (CPU backend: the
model buffer is then the tensor bytes a GPU would hold).

How to run (llama.cpp built by scripts/build_llama_cpp.sh; the fixtures venv of scripts/)::

    /work/venvs/fixtures/bin/python benchmarks/peers/llama_reference.py    # ~5 min on 2 cores

Options: ``--work DIR`` (scratch, sparse GGUFs; default /tmp/qwenfit-peers-llama), ``--models``,
``--reuse``. Deterministic for a given llama.cpp build (no timings or paths stored).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import _gguf_common as g  # noqa: E402
import _memory_gguf as mg  # noqa: E402
import _memory_probe as mp  # noqa: E402
import llama_memory_fixtures as lmf  # noqa: E402

OUT = os.path.join(HERE, "fixtures", "llama_cpp_reference.json")
MODELS = ["Qwen3.5-9B", "Qwen3.5-27B", "Qwen3.5-35B-A3B", "Qwen3.5-122B-A10B", "Qwen3.5-397B-A17B"]
CONTEXTS = [32768, 131072, 262144]
SETTINGS = {
    "np": 1,
    "ub": 512,
    "b": 2048,
    "fa": "on",
    "ctk": "f16",
    "ctv": "f16",
    "kvu": False,
    "server": True,
    "mtp": False,
    "draft": None,
}


def run_model(name: str, work: str, exe: str, reuse: bool) -> dict[str, Any]:
    bf16, how_bf16 = mg.make_bf16(name, work, False, reuse)
    q4, how_q4 = mg.make_q4km(bf16, bf16.replace(".bf16-", ".q4km-"), reuse)
    layout = lmf.layout_info(q4, [" ".join(how_bf16), " ".join(how_q4)])
    cases: dict[str, Any] = {}
    for c in CONTEXTS:
        spec = dict(SETTINGS, c=c, variant="q4km-nomtp")
        res = mp.run(exe, lmf.llama_args(spec, q4), {"QWENFIT_SERVER": "1"})
        if res["returncode"] != 0:
            raise SystemExit(f"{name} -c {c}: qwenfit-memgrid failed\n{res['log'][-2000:]}")
        m = res["contexts"]["main"]
        log = lmf.parse_log(res["log"])
        cases[str(c)] = {
            "args": lmf.llama_args(spec, f"<work>/{os.path.basename(q4)}"),
            "env": {"QWENFIT_SERVER": "1"},
            "n_ctx": m["n_ctx"],
            "model_bytes": m["model"],
            "kv_bytes": m["kv"]["k"] + m["kv"]["v"],
            "kv_layers": m["kv"]["layers"],
            "recurrent_bytes": m["rs"]["r"] + m["rs"]["s"],
            "recurrent_layers": m["rs"]["layers"],
            "context_bytes": m["context"],
            "compute_bytes": m["compute"],  # the breakdown's figure (pp graph), as llama-fit-params
            "compute_tg_bytes": m["compute_tg"],
            "output_bytes": m["output"],
            "log": {k: log[k] for k in ("kv", "rs", "compute", "output") if k in log},
        }
    return {"layout": layout, "cases": cases}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/tmp/qwenfit-peers-llama")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args(argv)
    os.makedirs(a.work, exist_ok=True)
    exe = mp.build(a.work)
    env = g.llama_env()
    out: dict[str, Any] = {
        "what": "llama.cpp's own memory breakdown (bytes) for the peer-comparison cases",
        "script": "benchmarks/peers/llama_reference.py",
        "llama_cpp": {
            "commit": env["LLAMA_CPP_COMMIT"],
            "version": env.get("LLAMA_CPP_VERSION"),
            "tool": "qwenfit-memgrid (scripts/_memory_probe.py), no_alloc like llama-fit-params",
        },
        "settings": SETTINGS,
        "models": {},
    }
    for name in a.models.split(","):
        out["models"][name] = run_model(name, a.work, exe, a.reuse)
        print(f"{name}: done", file=sys.stderr)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    g.json_dump(out, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
