"""``ParsedCommand.edited``: the same command with some options changed, in the engine's spelling.

An option is replaced where it stands (every spelling of it removed, the new value written where the
last one was, with the spelling the command used), or appended. Keys are the engine's own names or
qwenfit's settings; the result parses back to the edited settings."""

from __future__ import annotations

import json
import re
import shlex
from typing import TYPE_CHECKING, Any

from qwenfit.errors import UsageError

if TYPE_CHECKING:
    from qwenfit.cmdline.parsed import ParsedCommand

__all__ = ["edit"]

Change = tuple[str, Any]  # (engine key, value: None removes, True/False a switch, else the value)


def _word(w: str) -> str:
    m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", w, re.S)
    return f"{m.group(1)}={shlex.quote(m.group(2))}" if m else shlex.quote(w)


def _join(prefix: tuple[str, ...] | list[str], args: list[str]) -> str:
    return " ".join([*(_word(w) for w in prefix), *(shlex.quote(a) for a in args)])


def _share(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def edit(pc: ParsedCommand, flags: dict[str, Any]) -> str:
    kind = pc.frame.kind
    if kind == "llama":
        return _edit_llama(pc, flags)
    if kind in ("vllm", "sglang", "mlx"):
        return _edit_argparse(pc, flags)
    if kind == "bench":
        return _edit_bench(pc, flags)
    if kind == "modelfile":
        return _edit_modelfile(pc, flags)
    raise UsageError(
        f"{pc.tool}: qwenfit cannot rewrite this command (edit the Modelfile or the environment)"
    )


# --------------------------------------------------------------------------------------------------
# llama.cpp


def _llama_changes(pc: ParsedCommand, flags: dict[str, Any]) -> list[Change]:
    s = pc.settings
    out: list[Change] = []
    seq = int(flags.get("sequences", s.get("sequences", 1)))
    for key, value in flags.items():
        if key == "context":
            out.append(("ctx_size", None if value is None else int(value) * seq))
        elif key == "sequences":
            out.append(("parallel", value))
            if s.get("kv_unified") and "kv_unified" not in flags and "kv_unified" not in pc.raw:
                out.append(("kv_unified", True))  # -np auto turned the unified cache on; keep it
            if "context" not in flags and s.get("context") and value is not None:
                out.append(("ctx_size", int(s["context"]) * int(value)))
        elif key == "kv_cache":
            out += [("cache_type_k", value), ("cache_type_v", value)]
        elif key == "draft_kv_cache":
            out += [("cache_type_k_draft", value), ("cache_type_v_draft", value)]
        elif key == "n_gpu_layers":
            out.append(("n_gpu_layers", "all" if value is None else int(value)))
        elif key == "n_cpu_moe":
            out += [("cpu_moe", None), ("n_cpu_moe", value or None)]
        elif key == "tensor_split":
            out.append(("tensor_split", None if value is None else ",".join(_share(x) for x in value)))
        elif key in ("ubatch", "batch"):
            out.append((f"{key}_size", value))
        elif key == "flash_attention":
            out.append(("flash_attn", None if value is None else ("on" if value else "off")))
        elif key == "ctx_checkpoints":
            out.append(("swa_checkpoints", value))
        elif key == "override_tensor":
            out.append(("override_tensor", None if not value else ",".join(value)))
        elif key == "draft_tokens":
            out += [("draft_max", None), ("spec_draft_n_max", value)]
        elif key == "mtp":
            out.append(("spec_type", "draft-mtp" if value else None))
        elif key == "vision":
            if value:
                if pc.model_kind != "hf-repo" and not pc.raw.get("mmproj"):
                    raise UsageError("vision=True needs an mmproj file: add --mmproj PATH")
                out.append(("mmproj_auto", None))
            else:
                out += [("mmproj", None), ("mmproj_url", None), ("mmproj_auto", False)]
        elif key == "n_gpus":
            if value != 0:
                raise UsageError(
                    "n_gpus: llama.cpp uses every GPU it sees; set -dev/-ts (tensor_split) instead"
                )
            out.append(("device", "none"))
        elif key == "fit_margin":
            out.append(("fit", None if value else "off"))
        elif key == "split_mode":
            out.append(("split_mode", value))
        elif key == "kv_unified":
            out.append(("kv_unified", value))
        else:
            out.append((key, value))
    return out


def _llama_arity(row: Any, args: list[str], i: int) -> int:
    kind = row[3]
    if kind in ("flag", "bool"):
        return 0
    if (
        row[0] == "flash_attn"
        and (i + 1 >= len(args) or args[i + 1].startswith("-"))
        and (i + 1 >= len(args) or args[i + 1] not in ("-1",))
    ):
        return 0  # a bare -fa (older builds)
    return 2 if kind == "str2" else 1


def _edit_llama(pc: ParsedCommand, flags: dict[str, Any]) -> str:
    from qwenfit.cmdline.llama_cpp import LEGACY_FLAGS, llama_table

    letter = {"llama-server": "S", "llama-cli": "C", "llama-completion": "P"}[pc.tool]
    table = llama_table(letter)
    by_key = {row[0]: row for row, _ in table.values()}
    args = list(pc.frame.args)
    for key, value in _llama_changes(pc, flags):
        if key not in by_key:
            raise UsageError(f"{pc.tool} has no option {key!r}")
        row = by_key[key]
        spelled: str | None = None
        at: int | None = None
        kept: list[str] = []
        i = 0
        while i < len(args):
            a = args[i].replace("_", "-") if args[i].startswith("--") else args[i]
            hit = table.get(a)
            legacy = key == "load_mode" and a in LEGACY_FLAGS
            if (
                (hit and hit[0][0] == key)
                or legacy
                or (key == "spec_draft_n_max" and hit and hit[0][0] == "draft_max")
            ):
                n = 0 if legacy else _llama_arity(hit[0] if hit else row, args, i)
                if hit and hit[1]:
                    spelled = args[i]
                at = len(kept)
                i += 1 + n
                continue
            n = _llama_arity(hit[0], args, i) if hit else 0
            kept.extend(args[i : i + 1 + n])
            i += 1 + n
        args = kept
        if value is None:
            continue
        new: list[str]
        if row[3] == "bool":
            neg = next((f for f in row[2] if f.startswith("--")), row[2][-1])
            new = [(spelled if spelled and value else None) or (row[1][-1] if value else neg)]
        elif row[3] == "flag":
            new = [spelled or row[1][-1]] if value else []
        else:
            flag = spelled or ("--ctx-checkpoints" if key == "swa_checkpoints" else row[1][-1])
            new = [flag, str(value)]
        pos = len(args) if at is None else at
        args[pos:pos] = new
    return _join(pc.frame.prefix, args)


# --------------------------------------------------------------------------------------------------
# vLLM, SGLang, mlx-lm (argparse)

_SETTINGS = {
    "vllm": {
        "context": "max_model_len",
        "tp": "tensor_parallel_size",
        "pp": "pipeline_parallel_size",
        "dp": "data_parallel_size",
        "expert_parallel": "enable_expert_parallel",
        "prefix_caching": "enable_prefix_caching",
        "kv_cache": "kv_cache_dtype",
    },
    "sglang": {"context": "context_length", "tp": "tp_size", "kv_cache": "kv_cache_dtype"},
    "mlx": {"kv_cache": "kv_bits"},
}


def _argparse_changes(pc: ParsedCommand, flags: dict[str, Any]) -> list[Change]:
    kind = pc.frame.kind
    out: list[Change] = []
    for key, value in flags.items():
        if kind == "vllm" and key in ("mtp", "speculative_tokens"):
            mtp = flags.get("mtp", pc.settings.get("mtp"))
            n = flags.get("speculative_tokens", pc.settings.get("speculative_tokens") or 1)
            spec = json.dumps({"method": "mtp", "num_speculative_tokens": int(n)}) if mtp else None
            out += [("spec_method", None), ("spec_tokens", None), ("speculative_config", spec)]
        elif key == "vision" and kind in ("vllm", "sglang"):
            dest = "language_model_only"
            out.append((dest, not value))
            if value and kind == "vllm":
                out.append(("limit_mm_per_prompt", None))
        elif kind == "sglang" and key == "prefix_caching":
            out.append(("disable_radix_cache", not value))
        elif kind == "mlx" and key == "kv_cache":
            out.append(("kv_bits", None if value in (None, "bf16", "f16") else value))
        else:
            out.append((_SETTINGS[kind].get(key, key), value))
    return out


def _edit_argparse(pc: ParsedCommand, flags: dict[str, Any]) -> str:
    from qwenfit.cmdline.argparse_like import parse_args
    from qwenfit.cmdline.argtables import mlx_actions, sglang_actions, vllm_actions

    kind = pc.frame.kind
    actions = {"vllm": vllm_actions, "sglang": sglang_actions}.get(kind, lambda: mlx_actions(pc.tool))()
    by_dest = {a.dest: a for a in actions}
    args = list(pc.frame.args)
    for dest, value in _argparse_changes(pc, flags):
        action = by_dest.get(dest)
        if action is None:
            raise UsageError(f"{pc.tool} has no option {dest!r}")
        parsed = parse_args(args, actions, prog=pc.tool, positionals=1 if kind == "vllm" else 0)
        hits = [o for o in parsed.occurrences if o.dest == dest]
        spelled = next((o.option for o in reversed(hits) if o.option in action.flags), None)
        for o in reversed(hits):
            del args[o.start : o.end]
        at = hits[-1].start - sum(o.end - o.start for o in hits[:-1]) if hits else len(args)
        if value is None:
            continue
        if action.nargs == "0":
            if value:
                new = [spelled or action.flags[0]]
            elif action.neg:
                new = [action.neg[0]]
            else:
                new = []
        else:
            flag = spelled or next((f for f in action.flags if f.startswith("--")), action.flags[0])
            new = [flag, *(map(str, value) if isinstance(value, (list, tuple)) else [str(value)])]
        args[at:at] = new
    return _join(pc.frame.prefix, args)


# --------------------------------------------------------------------------------------------------
# llama-bench, Modelfile

_BENCH = {"n_gpu_layers": "-ngl", "n_cpu_moe": "-ncmoe", "ubatch": "-ub", "batch": "-b", "split_mode": "-sm"}


def _edit_bench(pc: ParsedCommand, flags: dict[str, Any]) -> str:
    from qwenfit.cmdline.argtables import BENCH_OPTIONS as OPTIONS

    args = list(pc.frame.args)
    for key, value in flags.items():
        if key == "kv_cache":
            pairs = [("type_k", value), ("type_v", value)]
        elif key == "flash_attention":
            pairs = [("flash_attn", None if value is None else ("1" if value else "0"))]
        elif key in _BENCH:
            pairs = [(OPTIONS[_BENCH[key]][0], "-1" if key == "n_gpu_layers" and value is None else value)]
        else:
            pairs = [(key, value)]
        for bkey, bval in pairs:
            names = [f for f, (k, _) in OPTIONS.items() if k == bkey]
            if not names:
                raise UsageError(f"llama-bench has no option {bkey!r}")
            kept: list[str] = []
            spelled, at, i = None, None, 0
            while i < len(args):
                if args[i] in names:
                    spelled, at = args[i], len(kept)
                    i += 1 if OPTIONS[args[i]][1] == "flag" else 2
                    continue
                kept.append(args[i])
                i += 1
            args = kept
            if bval is not None:
                pos = len(args) if at is None else at
                args[pos:pos] = [spelled or names[-1], str(bval)]
    return _join(pc.frame.prefix, args)


def _edit_modelfile(pc: ParsedCommand, flags: dict[str, Any]) -> str:
    from qwenfit.cmdline.configs import set_parameter

    text = pc.frame.text
    for key, value in flags.items():
        name = {"context": "num_ctx", "n_gpu_layers": "num_gpu"}.get(key, key)
        if name in ("sequences", "kv_cache", "flash_attention"):
            raise UsageError(
                f"{key} is the Ollama server's environment (OLLAMA_NUM_PARALLEL, OLLAMA_KV_CACHE_TYPE, "
                "OLLAMA_FLASH_ATTENTION), not the Modelfile's"
            )
        text = set_parameter(text, name, value)
    return text
