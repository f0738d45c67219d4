"""llama-bench, read as llama.cpp 0c1e570's tools/llama-bench/llama-bench.cpp reads it.

llama-bench has its own parser: every test parameter takes a comma-separated list (integers also as
ranges ``first-last[+step|*mult]``), a repeated option adds to the list, and every combination is a test
(``get_cmd_params_instances``). Each test makes a context of ``n_prompt + n_gen + n_depth`` cells for
one sequence, so the memory of a set of tests is that of its longest test; one ParsedCommand per
model and combination of the memory parameters. No ``--fit`` unless ``-fitt`` is given.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from qwenfit.cmdline.argtables import BENCH_OPTIONS as OPTIONS
from qwenfit.cmdline.frontend import Launch
from qwenfit.cmdline.llama_cpp import AUTOY, FALSEY, KV_TYPES, TRUTHY, LlamaState
from qwenfit.cmdline.llama_rules import llama_model
from qwenfit.cmdline.parsed import Frame, ParsedCommand
from qwenfit.errors import UsageError

__all__ = ["parse_bench"]

IGNORED = {
    "hf_token",
    "offline",
    "n_threads",
    "cpu_mask",
    "cpu_strict",
    "poll",
    "main_gpu",
    "numa",
    "no_op_offload",
    "no_host",
    "repack",
    "lazy_mode",
    "reps",
    "prio",
    "delay",
    "output",
    "output_err",
    "verbose",
    "progress",
    "no_warmup",
    "n_prompt",
    "n_gen",
    "n_pg",
    "n_depth",
}
LEGACY = {"-mmp": "load_mode", "--mmap": "load_mode"}  # older llama-bench: -mmp/--mmap <0|1>


def _ints(value: str) -> list[int]:
    out: list[int] = []
    for m in re.finditer(r"(?:^|,)(-?\d+)(?:-(\d+)(?:([+*])(\d+))?)?", value):
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        op, step = m.group(3) or "+", int(m.group(4) or 1)
        i = first
        while i <= last:
            out.append(i)
            nxt = i + step if op == "+" else i * step
            if nxt <= i:
                raise ValueError("invalid range")
            i = nxt
    if not out or re.sub(r"(?:^|,)-?\d+(?:-\d+(?:[+*]\d+)?)?", "", value):
        raise ValueError("invalid range format")
    return out


def _read(launch: Launch) -> tuple[dict[str, list[Any]], dict[str, str], list[str]]:
    vals: dict[str, list[Any]] = {}
    spelled: dict[str, str] = {}
    notes: list[str] = []
    args, i = launch.args, 0
    while i < len(args):
        arg = args[i].replace("_", "-") if args[i].startswith("--") else args[i]
        i += 1
        if arg in LEGACY and i < len(args):
            notes.append(
                f"{arg} {args[i]}: not an option of llama-bench 0c1e570 (it says 'invalid parameter'); "
                "older builds read it as the mmap switch, which does not change qwenfit's estimate"
            )
            spelled[arg] = arg
            i += 1
            continue
        if arg not in OPTIONS:
            raise UsageError(f"llama-bench: error: invalid parameter for argument: {arg}")
        key, kind = OPTIONS[arg]
        spelled[key] = arg
        if kind == "flag":
            if key in ("help", "version", "list_devices"):
                raise UsageError(f"llama-bench {arg} prints something and exits")
            vals.setdefault(key, []).append(True)
            continue
        if i >= len(args):
            raise UsageError(f"llama-bench: error: invalid parameter for argument: {arg}")
        value = args[i]
        i += 1
        try:
            if kind == "int":
                vals.setdefault(key, []).extend(_ints(value))
            elif kind == "ot":
                vals.setdefault(key, []).extend(g.split(";") for g in value.split(","))
            elif kind == "list":
                vals.setdefault(key, []).extend(value.split(","))
            else:
                vals.setdefault(key, []).append(value)
        except ValueError as exc:
            raise UsageError(f"llama-bench: error: {exc}; invalid parameter for argument: {arg}") from None
    return vals, spelled, notes


def parse_bench(launch: Launch, env: Mapping[str, str], cwd: str | None) -> list[ParsedCommand]:
    vals, spelled, notes = _read(launch)
    refused = [spelled[k] for k in ("rpc", "fit_target", "fit_ctx") if k in vals]
    if any(str(v) in TRUTHY for v in vals.get("no_kv_offload", [])):
        refused.append(spelled["no_kv_offload"])
    if any(str(v) in TRUTHY for v in vals.get("embeddings", [])):
        refused.append(spelled["embeddings"])
    if any(v in ("mlock", "mmap+mlock") for v in vals.get("load_mode", [])):
        refused.append(spelled["load_mode"] + " mlock")
    if refused:
        raise UsageError(
            "llama-bench: these options change memory in ways qwenfit cannot model: " + ", ".join(refused)
        )
    for t in (*vals.get("type_k", []), *vals.get("type_v", [])):
        if t not in KV_TYPES or t == "f32":
            raise UsageError(f"llama-bench: error: invalid parameter for argument: -ctk/-ctv {t}")
    fas = []
    for v in vals.get("flash_attn", ["auto"]):
        if v not in (*TRUTHY, *FALSEY, *AUTOY):
            raise UsageError(f"llama-bench: error: invalid parameter for argument: {spelled['flash_attn']}")
        fas.append(v not in FALSEY)
    n_prompt = vals.get("n_prompt", [512])
    n_gen = vals.get("n_gen", [128])
    pgs = []
    for pg in vals.get("n_pg", []):
        a, _, b = str(pg).partition(",")
        pgs.append(int(a) + int(b))
    tests = [p for p in n_prompt if p > 0] + [g for g in n_gen if g > 0] + [p for p in pgs if p > 0]
    if not tests:
        raise UsageError("llama-bench: no test (every -p, -n and -pg is 0)")
    context = max(tests) + max(vals.get("n_depth", [0]))
    models = [("model", m) for m in vals.get("model", [])] + [("hf_repo", h) for h in vals.get("hf_repo", [])]
    if not models:
        raise UsageError(
            "llama-bench without -m or -hf benchmarks its default models/7B/ggml-model-q4_0.gguf"
        )
    dims = {
        "ubatch": [int(x) for x in vals.get("n_ubatch", [512])],
        "batch": [int(x) for x in vals.get("n_batch", [2048])],
        "kv": list(itertools.product(vals.get("type_k", ["f16"]), vals.get("type_v", ["f16"]))),
        "ngl": vals.get("n_gpu_layers", [-1]),
        "ncmoe": vals.get("n_cpu_moe", [0]),
        "sm": vals.get("split_mode", [None]),
        "fa": fas,
        "ts": vals.get("tensor_split", [None]),
        "ot": vals.get("override_tensor", [None]),
        "dev": vals.get("devices", [None]),
    }
    combos: list[tuple[Any, ...]] = list(itertools.product(models, *dims.values()))
    if len(combos) > 16:
        raise UsageError(
            f"llama-bench: {len(combos)} model/memory combinations; qwenfit checks up to 16 at once"
        )
    out = []
    for combo in combos:
        (src, model), ub, b, (k, v), ngl, ncmoe, sm, fa, ts, ot, dev = combo
        if k != v:
            raise UsageError(f"llama-bench -ctk {k} -ctv {v}: qwenfit takes one KV cache type for K and V")
        st = LlamaState("B", values={src: model})
        ref = llama_model(st, cwd)
        settings: dict[str, Any] = {
            "context": context,
            "sequences": 1,
            "kv_cache": k,
            "mtp": False,
            "vision": False,
            "n_gpu_layers": None if int(ngl) < 0 else int(ngl),
            "flash_attention": fa,
            "ubatch": ub,
            "batch": b,
            "server": False,
            "fit_margin": False,
        }
        if int(ncmoe):
            settings["n_cpu_moe"] = int(ncmoe)
        if sm:
            settings["split_mode"] = sm
        if ts:
            shares = tuple(float(x) for x in re.split(r"[;/]+", str(ts)))
            settings["tensor_split"], settings["n_gpus"] = shares, len(shares)
        if ot:
            settings["override_tensor"] = tuple(o for o in ot if o)
        if dev and dev != "auto":
            names = str(dev).split("/")
            settings["n_gpus"] = 0 if names == ["none"] else len(names)
        if launch.engine_version:
            settings["engine_version"] = launch.engine_version
        raw = {"model" if src == "model" else "hf_repo": model, **{k2: v2 for k2, v2 in vals.items()}}
        ignored = tuple(dict.fromkeys(spelled[k2] for k2 in vals if k2 in IGNORED))
        more = [
            *launch.notes,
            *notes,
            *ref.notes,
            f"context: the longest test, {context} cells (n_prompt + n_gen + n_depth)",
        ]
        if "flash_attn" not in vals:
            more.append("-fa auto (the default): taken as on where the device supports it")
        out.append(
            ParsedCommand(
                "llama-bench",
                "llama.cpp",
                ref.model,
                ref.kind,
                ref.quant,
                settings,
                raw,
                ignored,
                tuple(dict.fromkeys(more)),
                tuple(launch.argv),
                ref.catalog,
                Frame("bench", tuple(launch.prefix), tuple(launch.args)),
            )
        )
    return out
