"""``mlx_lm.server`` / ``mlx_lm.generate`` (and ``python -m mlx_lm ...``), read as mlx-lm 0.32.2 reads
them (plain argparse; tables in :mod:`.argtables`).

mlx-lm allocates the KV cache as tokens arrive, so the context is what the command will hold:
``mlx_lm.generate`` holds the prompt and ``--max-tokens`` (default 100) — at most ``--max-kv-size``
when that is given (a rotating cache); ``mlx_lm.server`` holds whatever each request asks for, so
without a client's numbers qwenfit checks the model's native context.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qwenfit.cmdline.argparse_like import parse_args
from qwenfit.cmdline.argtables import mlx_actions
from qwenfit.cmdline.frontend import Launch
from qwenfit.cmdline.models import python_model, safetensors_quant
from qwenfit.cmdline.parsed import Frame, ParsedCommand
from qwenfit.errors import UsageError

__all__ = ["parse_mlx"]

DEFAULT_MAX_TOKENS = {"mlx_lm.generate": 100, "mlx_lm.server": 512}  # generate.py:39, server.py --max-tokens
DEFAULT_PROMPT = "hello"  # generate.py:38
# fmt: off
IGNORED = frozenset((
    "trust_remote_code", "chat_template", "use_default_chat_template", "temp", "top_p", "top_k", "min_p",
    "host", "port", "allowed_origins", "log_level", "chat_template_args", "chat_template_config",
    "extra_eos_token", "system_prompt", "prefill_response", "xtc_probability", "xtc_threshold",
    "min_tokens_to_keep", "seed", "ignore_chat_template", "verbose", "num_draft_tokens", "pipeline",
    "prefill_step_size", "decode_concurrency", "prompt_concurrency", "prompt_cache_size",
    "prompt_cache_bytes", "max_tokens", "prompt",
))
# fmt: on


def _int(value: Any, option: str, tool: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{tool}: argument {option}: invalid int value: {value!r}") from None


def parse_mlx(launch: Launch, env: Mapping[str, str], cwd: str | None) -> ParsedCommand:
    tool = launch.tool
    parsed = parse_args(launch.args, mlx_actions(tool), prog=tool, allow_abbrev=True)
    val = parsed.values
    spelled = {o.dest: o.option for o in parsed.occurrences}
    notes = list(launch.notes)
    ignored, refused = [], []
    for dest, option in spelled.items():
        if dest == "help":
            raise UsageError(f"{tool} --help prints the options and starts no model")
        if dest in IGNORED:
            ignored.append(option)
        elif dest in ("adapter_path", "draft_model", "image", "prompt_cache_file", "quantize_activations"):
            refused.append(option)
    if "kv_group_size" in val and _int(val["kv_group_size"], "--kv-group-size", tool) != 64:
        refused.append(f"--kv-group-size {val['kv_group_size']} (qwenfit models groups of 64)")
    if "quantized_kv_start" in val and _int(val["quantized_kv_start"], "--quantized-kv-start", tool) != 5000:
        refused.append(f"--quantized-kv-start {val['quantized_kv_start']} (qwenfit models 5000)")
    if refused:
        raise UsageError(
            f"{tool}: these options change memory in ways qwenfit cannot model: " + ", ".join(refused)
        )
    model = val.get("model")
    if model is None:
        raise UsageError(f"{tool}: no --model (mlx-lm would load its default model)")
    model, kind, cat, more, named = python_model(str(model), cwd)
    notes += more
    quant, word = safetensors_quant(named, cat)
    if quant is None and word:
        notes.append(f"the repo name ends in {word!r}, not a format qwenfit knows")
    settings: dict[str, Any] = {"vision": False, "sequences": 1}
    if "kv_bits" in val:
        bits = _int(val["kv_bits"], "--kv-bits", tool)
        if bits not in (4, 8):
            raise UsageError(f"{tool} --kv-bits {bits}: qwenfit models 4- and 8-bit KV caches")
        settings["kv_cache"] = str(bits)
        if tool == "mlx_lm.server":
            notes.append("--kv-bits: mlx_lm.server serves one request at a time (no batching)")
    max_tokens = _int(val.get("max_tokens", DEFAULT_MAX_TOKENS[tool]), "--max-tokens", tool)
    if tool == "mlx_lm.generate":
        prompt = str(val.get("prompt", DEFAULT_PROMPT))
        if prompt == "-":
            raise UsageError(
                "mlx_lm.generate --prompt -: the prompt comes from stdin; qwenfit cannot see its length"
            )
        if "$(" in prompt or "`" in prompt:
            raise UsageError(
                "mlx_lm.generate --prompt: a command substitution; qwenfit cannot see its length"
            )
        bound = len(prompt.encode()) + max_tokens
        context = bound
        notes.append(
            f"context: --max-tokens {max_tokens} + at most {len(prompt.encode())} prompt tokens (one "
            "per byte of the prompt, an upper bound; the chat template adds a few)"
        )
        if "max_kv_size" in val:
            kv = _int(val["max_kv_size"], "--max-kv-size", tool)
            context = min(context, kv)
            notes.append(f"--max-kv-size {kv}: a rotating cache of at most {kv} tokens")
        settings["context"] = context
    else:
        notes.append(
            f"mlx_lm.server: each request's prompt + max_tokens (default {max_tokens}) decides the KV "
            "cache; checked at the model's native context"
        )
        notes.append(
            "mlx_lm.server keeps up to --prompt-cache-size (10) prompt caches and batches up to "
            "--decode-concurrency (32) requests; neither is in the estimate"
        )
    raw = dict(val)
    raw["model"] = model
    return ParsedCommand(
        tool,
        "mlx",
        model,
        kind,
        quant,
        settings,
        raw,
        tuple(dict.fromkeys(ignored)),
        tuple(dict.fromkeys(notes)),
        tuple(launch.argv),
        cat,
        Frame("mlx", tuple(launch.prefix), tuple(launch.args)),
    )
