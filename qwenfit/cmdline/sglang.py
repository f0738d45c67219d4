"""``python -m sglang.launch_server`` and ``sglang serve``, read as SGLang 0.5.23 reads them.

``prepare_server_args`` (sglang/srt/server_args.py): a plain ``argparse.ArgumentParser`` over
``ServerArgs.add_cli_args`` (table: :mod:`.sglang_args`), ``--config file.yaml`` merged first;
``sglang serve MODEL`` takes the model as its first word (sglang/cli/serve.py). SGLang sizes its
pools from ``--mem-fraction-static``; when that is not given, SGLang derives it from the GPU and from
options such as ``--chunked-prefill-size`` and the CUDA-graph settings (arg_groups/memory_hook.py), so
those are refused then, and ignored when it is given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from qwenfit.cmdline.argparse_like import parse_args
from qwenfit.cmdline.argtables import sglang_actions
from qwenfit.cmdline.frontend import Launch, cwd_path
from qwenfit.cmdline.models import catalog_facts, python_model, safetensors_quant
from qwenfit.cmdline.parsed import Frame, ParsedCommand
from qwenfit.errors import UsageError

__all__ = ["parse_sglang"]

# fmt: off
IGNORED = frozenset((
    "tokenizer_path", "tokenizer_mode", "skip_tokenizer_init", "load_format", "trust_remote_code", "revision",
    "host", "port", "served_model_name", "chat_template", "completion_template", "reasoning_parser",
    "tool_call_parser", "sampling_backend", "attention_backend", "prefill_attention_backend",
    "decode_attention_backend", "mm_attention_backend", "speculative_draft_attention_backend", "log_level",
    "log_requests", "log_requests_level", "show_time_cost", "enable_metrics", "api_key", "file_storage_path",
    "watchdog_timeout", "download_dir", "random_seed", "seed", "sampling_defaults", "stream_interval",
    "stream_output", "enable_cache_report", "tool_server", "kv_canary_real_data", "mamba_backend",
    "moe_runner_backend", "fp8_gemm_runner_backend", "fp4_gemm_runner_backend", "dtype", "skip_server_warmup",
    "warmups", "enable_custom_logit_processor", "dist_init_addr", "nnodes", "node_rank", "nccl_port",
    "enable_dynamic_batch_tokenizer", "tokenizer_worker_num",
))
# fmt: on
# fmt: off
DEFAULTS_MFS = frozenset((
    "chunked_prefill_size", "max_prefill_tokens", "cuda_graph_config", "cuda_graph_backend_decode",
    "cuda_graph_backend_prefill", "cuda_graph_max_bs_decode", "cuda_graph_max_bs_prefill",
    "cuda_graph_bs_decode", "cuda_graph_bs_prefill", "cuda_graph_prefill_max_context",
    "disable_prefill_cuda_graph", "disable_decode_cuda_graph", "disable_cuda_graph",
    "disable_cuda_graph_padding", "enable_torch_compile", "torch_compile_max_bs", "language_only",
    "language_model_only",
))  # change SGLang's default --mem-fraction-static (memory_hook.py)
# fmt: on
# fmt: off
MAPPED = frozenset((
    "model_path", "context_length", "mem_fraction_static", "tp_size", "kv_cache_dtype", "disable_radix_cache",
    "quantization", "speculative_algorithm", "speculative_draft_model_path", "speculative_num_steps",
    "speculative_eagle_topk", "speculative_num_draft_tokens", "json_model_override_args",
    "max_running_requests", "mamba_radix_cache_strategy", "cpu_offload_gb", "pp_size", "dp_size", "ep_size",
    "config",
))
# fmt: on
MTP_ALGORITHMS = ("NEXTN", "EAGLE", "MTP")
# renamed in SGLang before 0.5.23 (0.5.23 says "unrecognized arguments")
LEGACY = {"--mamba-scheduler-strategy": "--mamba-radix-cache-strategy"}


def _config(path: str, cwd: str | None) -> list[str]:
    full = cwd_path(path, cwd)
    if not os.path.isfile(full):
        raise UsageError(f"sglang --config {path}: no such file")
    from qwenfit.cmdline.configs import load_yaml

    with open(full, encoding="utf-8") as f:
        data = load_yaml(f.read(), f"sglang --config {path}") or {}
    out: list[str] = []
    for key, value in data.items():
        flag = "--" + str(key).replace("_", "-")
        if isinstance(value, bool):
            if value:
                out.append(flag)
        elif isinstance(value, list):
            out += [flag, *map(str, value)]
        elif isinstance(value, dict):
            out += [flag, json.dumps(value)]
        else:
            out += [flag, str(value)]
    return out


def parse_sglang(launch: Launch, env: Mapping[str, str], cwd: str | None) -> ParsedCommand:
    args = list(launch.args)
    notes = list(launch.notes)
    if launch.tool == "sglang serve" and args and not args[0].startswith("-"):
        args = ["--model-path", *args]
    if "--config" in args:
        i = args.index("--config")
        if i + 1 >= len(args):
            raise UsageError("sglang: argument --config: expected one argument")
        args = [*_config(args[i + 1], cwd), *args[:i], *args[i + 2 :]]
    for i, a in enumerate(args):
        head = a.split("=", 1)[0]
        if head in LEGACY:
            notes.append(f"{head}: not an option of SGLang 0.5.23, which calls it {LEGACY[head]}; read so")
            args[i] = LEGACY[head] + a[len(head) :]
    parsed = parse_args(args, sglang_actions(), prog="sglang serve")
    val = parsed.values
    spelled = {o.dest: o.option for o in parsed.occurrences}
    mfs_given = "mem_fraction_static" in val
    ignored, refused = [], []
    for dest, option in spelled.items():
        if dest == "help":
            raise UsageError("sglang --help prints the options and starts no model")
        if dest in IGNORED or (
            dest in DEFAULTS_MFS and mfs_given and dest not in ("language_only", "language_model_only")
        ):
            ignored.append(option)
        elif dest in DEFAULTS_MFS and dest not in ("language_only", "language_model_only"):
            refused.append(
                f"{option} (it changes SGLang's default --mem-fraction-static; give that explicitly)"
            )
        elif dest not in MAPPED and dest not in ("language_only", "language_model_only"):
            refused.append(option)
    for dest, bad in (("pp_size", 1), ("dp_size", 1), ("ep_size", 1)):
        if dest in val and int(val[dest]) != bad:
            refused.append(f"{spelled[dest]} {val[dest]}")
    if float(val.get("cpu_offload_gb", 0) or 0) > 0:
        refused.append(f"--cpu-offload-gb {val['cpu_offload_gb']}")
    strategy = val.get("mamba_radix_cache_strategy")
    if strategy not in (None, "auto", "extra_buffer"):
        refused.append(f"{spelled['mamba_radix_cache_strategy']} {strategy} (qwenfit models extra_buffer)")
    draft = val.get("speculative_draft_model_path")
    algo = str(val.get("speculative_algorithm") or "").upper()
    if algo and (draft or algo not in MTP_ALGORITHMS):
        refused.append(
            f"--speculative-algorithm {algo}"
            + (f" with draft model {draft}" if draft else "")
            + " (a separate draft model)"
        )
    if refused:
        raise UsageError(
            "sglang: these options change memory in ways qwenfit cannot model: " + "; ".join(refused)
        )
    model = val.get("model_path")
    if model is None:
        raise UsageError("sglang: no model given (--model-path)")
    served = val.get("served_model_name")
    model, kind, cat, more, named = python_model(str(model), cwd, str(served) if served else None)
    notes += more
    quant, word = safetensors_quant(named, cat)
    if (quant is None or word is None) and val.get("quantization"):
        # a BF16 checkpoint (the name says nothing more) quantized as it loads, or a name qwenfit
        # cannot read (the checkpoint's own format decides)
        q = str(val["quantization"])
        known = q if q in ("fp8", "awq", "gptq", "mxfp4") else None
        if known is not None and word is None:
            notes.append(f"--quantization {q}: SGLang quantizes the checkpoint to {q} as it loads")
        elif known is None:
            notes.append(f"--quantization {q}: the checkpoint's own format decides")
        quant = known if word is None else quant
    settings: dict[str, Any] = {}
    facts = catalog_facts(cat)
    tp = int(val.get("tp_size", 1))
    settings["tp"] = tp
    settings["n_gpus"] = tp
    if "context_length" in val:
        ctx = int(str(val["context_length"]).replace("_", ""))
        if (
            facts is not None
            and ctx > facts.n_ctx_train
            and env.get("SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN") != "1"
        ):
            rope = json.loads(val.get("json_model_override_args") or "{}").get("rope_scaling") or {}
            if not rope:
                raise UsageError(
                    f"sglang: --context-length {ctx} is longer than the model's {facts.n_ctx_train}; "
                    "SGLang refuses unless SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1"
                )
        settings["context"] = ctx
    else:
        notes.append("no --context-length: the model's native context")
    if "mem_fraction_static" in val:
        settings["mem_fraction_static"] = float(val["mem_fraction_static"])
    settings["prefix_caching"] = not val.get("disable_radix_cache", False)
    if "kv_cache_dtype" in val:
        settings["kv_cache"] = str(val["kv_cache_dtype"])
    settings["mtp"] = bool(algo)
    if algo:
        settings["speculative_tokens"] = int(val.get("speculative_num_draft_tokens") or 1)
        notes.append(
            f"--speculative-algorithm {algo} without a draft model: the checkpoint's MTP layer drafts"
        )
    if "max_running_requests" in val:
        notes.append(
            f"--max-running-requests {val['max_running_requests']}: a cap on concurrent requests; SGLang "
            "sizes its pools from --mem-fraction-static"
        )
    settings["vision"] = not (val.get("language_only") or val.get("language_model_only")) and (
        facts is None or facts.vision
    )
    if val.get("json_model_override_args"):
        notes.append("--json-model-override-args: " + str(val["json_model_override_args"]))
    if launch.engine_version:
        settings["engine_version"] = launch.engine_version
    raw = dict(val)
    raw["model_path"] = model
    return ParsedCommand(
        "sglang",
        "sglang",
        model,
        kind,
        quant,
        settings,
        raw,
        tuple(dict.fromkeys(ignored)),
        tuple(dict.fromkeys(notes)),
        tuple(launch.argv),
        cat,
        Frame("sglang", tuple(launch.prefix), tuple(args)),
    )
