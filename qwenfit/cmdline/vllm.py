"""``vllm serve`` (and ``python -m vllm.entrypoints.openai.api_server``), read as vLLM 0.33.0 reads it.

vLLM's ``FlexibleArgumentParser.parse_args`` (vllm/utils/argparse_utils.py) first moves ``--model`` in
front as the positional model, splices in ``--config file.yaml``, writes ``_`` in option names as
``-``, turns ``-O3`` into ``--optimization-level 3`` and merges dotted JSON options
(``--speculative-config.method mtp``); then argparse (:mod:`.argparse_like`) over its option table
(:mod:`.vllm_args`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from qwenfit.cmdline.argparse_like import Parsed, parse_args
from qwenfit.cmdline.argtables import vllm_actions
from qwenfit.cmdline.frontend import Launch, cwd_path
from qwenfit.cmdline.models import catalog_facts, python_model, safetensors_quant
from qwenfit.cmdline.parsed import Frame, ParsedCommand
from qwenfit.errors import UsageError

__all__ = ["parse_vllm", "prepare_vllm_args"]

# fmt: off
IGNORED = frozenset((
    "headless", "api_server_count", "grpc", "chat_template", "chat_template_content_format",
    "trust_request_chat_template", "trust_request_mm_kwargs", "default_chat_template_kwargs",
    "reasoning_effort_map", "response_role", "return_tokens_as_token_ids", "enable_auto_tool_choice",
    "exclude_tools_when_tool_choice_none", "tool_call_parser", "tool_parser_plugin", "tool_strict_level",
    "tool_server", "max_log_len", "enable_prompt_tokens_details", "enable_per_request_metrics",
    "enable_server_load_tracking", "enable_force_include_usage", "sse_keep_alive_interval",
    "enable_tokenizer_info_endpoint", "enable_log_outputs", "enable_log_deltas", "log_error_stack",
    "tokens_only", "fingerprint_mode", "fingerprint_value", "host", "port", "grpc_port",
    "data_parallel_supervisor_port", "dp_supervisor_probe_interval_s", "dp_supervisor_probe_timeout_s",
    "dp_supervisor_probe_failure_threshold", "uds", "uvicorn_log_level", "disable_uvicorn_access_log",
    "disable_access_log_for_endpoints", "allow_credentials", "allowed_origins", "allowed_methods",
    "allowed_headers", "api_key", "ssl_keyfile", "ssl_certfile", "ssl_ca_certs", "enable_ssl_refresh",
    "ssl_cert_reqs", "ssl_ciphers", "root_path", "middleware", "enable_request_id_headers",
    "disable_fastapi_docs", "h11_max_incomplete_event_size", "h11_max_header_count", "enable_offline_docs",
    "tokenizer", "tokenizer_mode", "trust_remote_code", "seed", "hf_config_path", "allowed_local_media_path",
    "allowed_media_domains", "revision", "code_revision", "tokenizer_revision", "max_logprobs",
    "logprobs_mode", "served_model_name", "config_format", "hf_token", "generation_config",
    "override_generation_config", "model_impl", "download_dir", "ignore_patterns", "use_tqdm_on_load",
    "safetensors_load_strategy", "safetensors_prefetch_num_threads", "safetensors_prefetch_block_size",
    "attention_backend", "reasoning_parser", "reasoning_parser_plugin", "distributed_executor_backend",
    "master_addr", "master_port", "node_rank", "distributed_timeout_seconds",
    "cpu_distributed_timeout_seconds", "numa_bind", "numa_bind_nodes", "numa_bind_cpus", "data_parallel_rank",
    "data_parallel_start_rank", "data_parallel_address", "data_parallel_rpc_port", "data_parallel_backend",
    "data_parallel_hybrid_lb", "data_parallel_external_lb", "data_parallel_multi_port_external_lb",
    "disable_custom_all_reduce", "worker_cls", "worker_extension_cls", "prefix_caching_hash_algo",
    "mm_processor_cache_gb", "mm_processor_cache_type", "mm_hasher_algorithm", "mm_encoder_attn_backend",
    "moe_backend", "linear_backend", "log_level", "logging_config", "show_hidden_metrics_for_version",
    "otlp_traces_endpoint", "collect_detailed_traces", "per_request_spec_decode_metrics", "kv_cache_metrics",
    "kv_cache_metrics_sample", "custom_histogram_buckets", "cudagraph_metrics", "enable_mfu_metrics",
    "enable_logging_iteration_details", "scheduling_policy", "async_scheduling", "stream_interval",
    "disable_log_stats", "aggregate_engine_logging", "enable_log_requests", "structured_outputs_config",
    "performance_mode", "shutdown_timeout", "fail_on_environ_validation", "long_prefill_token_threshold",
    "renderer_num_workers", "skip_tokenizer_init", "jit_monitor_mode", "jit_monitor_verbose",
))
# fmt: on
# fmt: off
ESTIMATED = frozenset((
    "compilation_config", "optimization_level", "cudagraph_capture_sizes",
    "max_cudagraph_capture_size", "skip_mm_profiling",
))  # cuda graph / profiling memory: a term qwenfit estimates (512 MiB) whatever they say
# fmt: on
# fmt: off
MAPPED = frozenset((
    "model", "model_tag", "tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size",
    "data_parallel_size_local", "enable_expert_parallel", "enable_prefix_caching", "gpu_memory_utilization",
    "max_model_len", "max_num_batched_tokens", "max_num_seqs", "kv_cache_dtype", "quantization",
    "speculative_config", "spec_method", "spec_model", "spec_tokens", "language_model_only",
    "limit_mm_per_prompt", "hf_overrides", "dtype", "nnodes", "load_format", "enable_chunked_prefill",
))
# fmt: on
MTP_METHODS = ("mtp", "qwen3_next_mtp", "qwen3_5_mtp")
_QUANT_FLAG = {
    "fp8": "fp8",
    "awq": "awq",
    "awq_marlin": "awq",
    "gptq": "gptq",
    "gptq_marlin": "gptq",
    "mxfp4": "mxfp4",
    "fp8_dynamic": "fp8-dynamic",
    "auto_round": "autoround",
}


def prepare_vllm_args(args: list[str], *, serve: bool, cwd: str | None) -> list[str]:
    """vLLM's own preprocessing before argparse (``FlexibleArgumentParser.parse_args``)."""
    if serve:
        idx = next((i for i, a in enumerate(args) if re.match(r"^--model(=.+|$)", a)), None)
        if idx is not None:
            tag = args[idx + 1] if args[idx] == "--model" and idx + 1 < len(args) else args[idx][8:]
            rest = idx + (2 if args[idx] == "--model" else 1)
            args = [tag, *args[:idx], *args[rest:]]
        elif (
            args
            and args[0].startswith("-")
            and "--config" not in args
            and any(re.match(r"^--served[-_]model[-_]name(=.+|$)", a) for a in args)
        ):
            raise UsageError(
                "vllm serve: `model` should be provided as the first positional argument when "
                "using `vllm serve`. i.e. `vllm serve <model> --<arg> <value>`."
            )
    if "--config" in args:
        idx = args.index("--config")
        if idx == len(args) - 1:
            raise UsageError(
                "vllm serve: No config file specified! Please check your command-line arguments."
            )
        config_args = _config_file(args[idx + 1], cwd)
        if serve and args and not args[0].startswith("-"):
            args = [args[0], *config_args, *args[1:idx], *args[idx + 2 :]]
        else:
            args = [*config_args, *args[:idx], *args[idx + 2 :]]
    out: list[str] = []
    for i, a in enumerate(args):
        if a.startswith("--"):
            key, eq, value = a.partition("=")
            head, dot, tail = key.partition(".")
            out.append(head.replace("_", "-") + dot + tail + eq + value)
        elif a.startswith("-O") and a != "-O":
            out += ["--optimization-level", a[3:] if a[2:3] == "=" else a[2:]]
        elif a == "-O" and i + 1 < len(args) and args[i + 1] in {"0", "1", "2", "3"}:
            out.append("--optimization-level")
        else:
            out.append(a)
    return _dotted(out)


def _dotted(args: list[str]) -> list[str]:
    """``--x.y v`` -> ``--x '{"y": v}'`` (vLLM merges dotted keys into one JSON argument)."""
    merged: dict[str, dict[str, Any]] = {}
    out: list[str] = []
    skip = False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a.startswith("-") and "." in a.split("=", 1)[0] and not a.startswith("-O"):
            key, eq, value = a.partition("=")
            if not eq:
                value = args[i + 1] if i + 1 < len(args) else ""
                skip = True
            name, *path = key.split(".")
            try:
                parsed: Any = json.loads(value)
            except json.JSONDecodeError:
                parsed = value
            node = merged.setdefault(name, {})
            for p in path[:-1]:
                node = node.setdefault(p, {})
            node[path[-1]] = parsed
            continue
        out.append(a)
    for name, tree in merged.items():
        out += [name, json.dumps(tree)]
    return out


def _config_file(path: str, cwd: str | None) -> list[str]:
    if path.split(".")[-1] not in ("yaml", "yml"):
        raise UsageError(
            f"vllm serve: Config file must be of a yaml/yml type. {path.split('.')[-1]} supplied"
        )
    full = cwd_path(path, cwd)
    if not os.path.isfile(full):
        raise UsageError(f"vllm serve --config {path}: no such file (looked in {os.path.dirname(full)})")
    from qwenfit.cmdline.configs import load_yaml

    with open(full, encoding="utf-8") as f:
        config = load_yaml(f.read(), f"vllm serve --config {path}") or {}
    out: list[str] = []
    for key, value in config.items():
        if isinstance(value, bool):
            if value:
                out.append("--" + key)
            else:
                out.append(f"--no-{key}")
        elif isinstance(value, list):
            if value:
                out += ["--" + key, *map(str, value)]
        elif isinstance(value, dict):
            out += ["--" + key, json.dumps(value)]
        else:
            out += ["--" + key, str(value)]
    return out


def _int(parsed: Parsed, dest: str, option: str, default: int) -> int:
    v = parsed.values.get(dest)
    if v is None:
        return default
    try:
        return int(v)
    except (TypeError, ValueError):
        raise UsageError(f"vllm serve: argument {option}: invalid int value: {v!r}") from None


def _human_int(value: str, option: str) -> int:
    """vLLM's human_readable_int(_or_auto): 1k = 1000, 1K = 1024, -1/auto = -1."""
    v = value.strip()
    if v == "-1" or v.lower() == "auto":
        return -1
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgGtT])", v)
    if m:
        num, suf = m.groups()
        if suf in "kmgt":
            return int(float(num) * 10 ** {"k": 3, "m": 6, "g": 9, "t": 12}[suf])
        if "." in num:
            raise UsageError(f"vllm serve: argument {option}: decimals are not allowed with binary suffixes")
        return int(num) * int(2 ** {"K": 10, "M": 20, "G": 30, "T": 40}[suf])
    try:
        return int(v)
    except ValueError:
        raise UsageError(f"vllm serve: argument {option}: invalid value: {value!r}") from None


def _json(value: Any, option: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise UsageError(f"vllm serve: argument {option}: not JSON ({exc.msg}): {value!r}") from None


def parse_vllm(launch: Launch, env: Mapping[str, str], cwd: str | None) -> ParsedCommand:
    serve = not launch.legacy_entrypoint
    args = prepare_vllm_args(list(launch.args), serve=serve, cwd=cwd)
    parsed = parse_args(args, vllm_actions(), prog="vllm serve", positionals=1)
    val = parsed.values
    spelled = {o.dest: o.option for o in parsed.occurrences}
    notes = list(launch.notes)
    ignored, refused = [], []
    for dest, option in spelled.items():
        if dest in IGNORED:
            ignored.append(option)
        elif dest == "enforce_eager":
            continue
        elif dest in ESTIMATED:
            ignored.append(option)
            notes.append(
                f"{option}: CUDA graph memory is an estimate in qwenfit (512 MiB), whatever it is set to"
            )
        elif dest == "help":
            raise UsageError("vllm serve --help prints the options and starts no model")
        elif dest not in MAPPED and not (dest == "enable_lora" and val[dest] is False):
            refused.append(option)
    model = parsed.positionals[0][1] if parsed.positionals else val.get("model")
    if refused:
        raise UsageError(
            "vllm serve: these options change memory in ways qwenfit cannot model: " + ", ".join(refused)
        )
    if model is None:
        raise UsageError("vllm serve: no model given")
    served = val.get("served_model_name")
    model, kind, cat, more, named = python_model(
        str(model), cwd, served[0] if isinstance(served, list) else None
    )
    notes += more
    settings: dict[str, Any] = {}
    raw: dict[str, Any] = {k: v for k, v in val.items()}
    raw["model"] = model
    quant, word = safetensors_quant(named, cat)
    q = val.get("quantization")
    if q is not None:
        qn = _QUANT_FLAG.get(str(q).replace("-", "_").lower())
        if word is None and qn:
            quant = qn
            notes.append(f"--quantization {q}: vLLM quantizes the checkpoint to {qn} as it loads")
        elif quant is None:
            notes.append(f"--quantization {q}: the checkpoint's own format decides; its name says {word!r}")
    elif quant is None and word:
        notes.append(f"the repo name ends in {word!r}, not a format qwenfit knows")
    dtype = val.get("dtype")
    if dtype in ("float", "float32"):
        raise UsageError(f"vllm serve --dtype {dtype}: float32 weights, which qwenfit does not model")
    tp = _int(parsed, "tensor_parallel_size", "-tp", 1)
    pp = _int(parsed, "pipeline_parallel_size", "-pp", 1)
    dp = _int(parsed, "data_parallel_size", "-dp", 1)
    settings.update(tp=tp, pp=pp, dp=dp)
    nnodes = _int(parsed, "nnodes", "--nnodes", 1)
    settings["n_gpus"] = tp * pp * dp
    if nnodes > 1:
        notes.append(f"--nnodes {nnodes}: the {tp * pp * dp} ranks span {nnodes} machines")
    if "data_parallel_size_local" in val:
        notes.append(f"-dpl {val['data_parallel_size_local']}: data-parallel ranks on this machine")
    if val.get("enforce_eager"):
        settings["enforce_eager"] = True
        notes.append("--enforce-eager: no CUDA graphs are captured")
    if val.get("enable_expert_parallel"):
        settings["expert_parallel"] = True
    if "enable_prefix_caching" in val:
        settings["prefix_caching"] = bool(val["enable_prefix_caching"])
    if "gpu_memory_utilization" in val:
        try:
            gmu = float(val["gpu_memory_utilization"])
        except ValueError:
            raise UsageError(f"vllm serve: argument --gpu-memory-utilization: invalid float value: "
                             f"{val['gpu_memory_utilization']!r}") from None  # fmt: skip
        if not 0 < gmu <= 1:
            raise UsageError(f"vllm serve: --gpu-memory-utilization {gmu}: must be in (0, 1]")
        settings["gpu_memory_utilization"] = gmu
    facts = catalog_facts(cat)
    context = _context(val, env, facts, notes)
    if context is not None:
        settings["context"] = context
    for dest, option in (
        ("max_num_batched_tokens", "--max-num-batched-tokens"),
        ("max_num_seqs", "--max-num-seqs"),
    ):
        if dest in val:
            settings[dest] = (
                _human_int(str(val[dest]), option)
                if dest.endswith("tokens")
                else _int(parsed, dest, option, 0)
            )
    if val.get("enable_chunked_prefill") is False and "max_num_batched_tokens" not in val:
        ctx = context or (facts.n_ctx_train if facts else None)
        if ctx is not None and ctx >= 16384:
            settings["max_num_batched_tokens"] = ctx
            notes.append(
                f"--no-enable-chunked-prefill: vLLM batches up to max_model_len ({ctx}) tokens at once"
            )
        else:
            settings["chunked_prefill"] = False
    if "kv_cache_dtype" in val:
        settings["kv_cache"] = str(val["kv_cache_dtype"])
    _speculative(val, spelled, settings, notes)
    settings["vision"] = _vision(val, facts, notes)
    fmt = val.get("load_format")
    if fmt is not None and fmt not in (
        "auto",
        "safetensors",
        "fastsafetensors",
        "pt",
        "runai_streamer",
        "instanttensor",
        "npcache",
    ):
        raise UsageError(
            f"vllm serve --load-format {fmt}: loads other weights than the checkpoint's safetensors"
        )
    if launch.engine_version:
        settings["engine_version"] = launch.engine_version
    image = next((w for w in launch.prefix if "vllm-openai" in w), "")
    for marker, backend in (("-cpu", "cpu"), ("-rocm", "rocm")):
        if marker in image:
            settings["backend"] = backend
            if backend == "cpu":
                settings["n_gpus"] = 0
            notes.append(f"the image {image} runs vLLM's {backend} build")
    frame = Frame("vllm", tuple(launch.prefix), tuple(args))
    return ParsedCommand(
        "vllm serve",
        "vllm",
        model,
        kind,
        quant,
        settings,
        raw,
        tuple(dict.fromkeys(ignored)),
        tuple(dict.fromkeys(notes)),
        tuple(launch.argv),
        cat,
        frame,
    )


def _context(val: Mapping[str, Any], env: Mapping[str, str], facts: Any, notes: list[str]) -> int | None:
    if "max_model_len" not in val:
        notes.append("no --max-model-len: the model's native context")
        return None
    n = _human_int(str(val["max_model_len"]), "--max-model-len")
    if n == -1:
        notes.append(
            "--max-model-len auto: vLLM takes the longest context that fits (checked at the native one)"
        )
        return None
    hf = _json(val.get("hf_overrides") or "{}", "--hf-overrides")
    rope: Any = {}
    if isinstance(hf, dict):
        tc = hf.get("text_config", hf)
        rope = tc.get("rope_parameters") or tc.get("rope_scaling") or {}
    factor = (
        float(rope.get("factor", 1)) if isinstance(rope, dict) and rope.get("rope_type") == "yarn" else 1.0
    )
    if factor > 1:
        notes.append(f"--hf-overrides: YaRN rope scaling x{factor:g}")
    if facts is not None:
        derived = int(facts.n_ctx_train * factor)
        if n > derived and env.get("VLLM_ALLOW_LONG_MAX_MODEL_LEN") != "1":
            raise UsageError(
                f"vllm serve: User-specified max_model_len ({n}) is greater than the derived max_model_len "
                f"({derived}). To allow overriding, set VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 (or add YaRN rope "
                "scaling with --hf-overrides)"
            )
    return n


def _speculative(
    val: Mapping[str, Any], spelled: Mapping[str, str], settings: dict[str, Any], notes: list[str]
) -> None:
    spec = _json(val.get("speculative_config"), "--speculative-config") if "speculative_config" in val else {}
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise UsageError(f"vllm serve --speculative-config: expected a JSON object, got {spec!r}")
    method = val.get("spec_method") or spec.get("method")
    tokens = val.get("spec_tokens") or spec.get("num_speculative_tokens")
    draft = val.get("spec_model") or spec.get("model")
    if method is None and draft is None and tokens is None:
        settings["mtp"] = False
        return
    if method in MTP_METHODS and not draft:
        settings["mtp"] = True
        settings["speculative_tokens"] = int(tokens) if tokens is not None else 1
        if tokens is None:
            notes.append("speculative method without num_speculative_tokens: 1 assumed")
        return
    if method in ("ngram", "suffix"):
        settings["mtp"] = False
        notes.append(f"speculative method {method}: drafts from the prompt, no draft model")
        return
    raise UsageError(
        f"vllm serve speculative decoding with method {method!r}"
        + (f" and draft model {draft!r}" if draft else "")
        + ": a separate draft model, which "
        "qwenfit does not estimate"
    )


def _vision(val: Mapping[str, Any], facts: Any, notes: list[str]) -> bool:
    if val.get("language_model_only"):
        return False
    if facts is not None and not facts.vision:
        return False
    limits = _json(val.get("limit_mm_per_prompt") or "{}", "--limit-mm-per-prompt")
    if isinstance(limits, dict) and limits:
        counts = {k: (v.get("count", 999) if isinstance(v, dict) else v) for k, v in limits.items()}
        if all(counts.get(m, 999) == 0 for m in ("image", "video")):
            notes.append("--limit-mm-per-prompt with 0 images and 0 videos: vLLM skips the vision tower")
            return False
    return True
