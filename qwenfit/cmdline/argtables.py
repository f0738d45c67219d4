"""The option tables of the Python engines (vLLM, SGLang, mlx-lm) as :class:`~.argparse_like.Action` s."""

from __future__ import annotations

import functools

from qwenfit.cmdline.argparse_like import Action

__all__ = ["BENCH_OPTIONS", "mlx_actions", "sglang_actions", "vllm_actions"]


def _inverses(flags: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for o in flags:
        for p, q in (("--enable-", "--disable-"), ("--disable-", "--enable-")):
            if o.startswith(p):
                out.append(q + o[len(p) :])
    return tuple(out)


def _actions(rows: list[str]) -> tuple[Action, ...]:
    out = []
    for row in rows:
        flags_s, neg_s, nargs, dest = row.split("|")
        flags = tuple(flags_s.split())
        neg = tuple(neg_s.split())
        if nargs == "b":
            neg = (*(f"--no-{o[2:]}" for o in flags if o.startswith("--")), *_inverses(flags))
            nargs = "0"
        longs = [o for o in flags if o.startswith("--")]
        dest = dest or (longs[0] if longs else flags[0]).lstrip("-").replace("-", "_")
        out.append(Action(dest, flags, nargs, neg))
    return tuple(out)


@functools.cache
def vllm_actions() -> tuple[Action, ...]:
    from qwenfit.cmdline.vllm_args import OPTIONS

    return _actions(OPTIONS)


@functools.cache
def sglang_actions() -> tuple[Action, ...]:
    from qwenfit.cmdline.sglang_args import OPTIONS

    return _actions(OPTIONS)


# mlx-lm 0.32.2: mlx_lm/server.py main() and mlx_lm/generate.py setup_arg_parser(), as "flags|neg|nargs|dest"
_MLX = {
    "mlx_lm.server": """
-h --help||0|
--model||1|
--adapter-path||1|
--host||1|
--port||1|
--allowed-origins||1|
--draft-model||1|
--num-draft-tokens||1|
--trust-remote-code||0|
--log-level||1|
--chat-template||1|
--use-default-chat-template||0|
--temp||1|
--top-p||1|
--top-k||1|
--min-p||1|
--max-tokens||1|
--chat-template-args||1|
--decode-concurrency||1|
--prompt-concurrency||1|
--prefill-step-size||1|
--prompt-cache-size||1|
--prompt-cache-bytes||1|
--kv-bits||1|
--kv-group-size||1|
--quantized-kv-start||1|
--pipeline||0|
""",
    "mlx_lm.generate": """
-h --help||0|
--model||1|
--trust-remote-code||0|
--adapter-path||1|
--extra-eos-token||+|
--system-prompt||1|
--prompt -p||1|
--image||+|
--prefill-response||1|
--max-tokens -m||1|
--temp||1|
--top-p||1|
--min-p||1|
--top-k||1|
--xtc-probability||1|
--xtc-threshold||1|
--min-tokens-to-keep||1|
--seed||1|
--ignore-chat-template||0|
--use-default-chat-template||0|
--chat-template-config||1|
--verbose||1|
--max-kv-size||1|
--prefill-step-size||1|
--prompt-cache-file||1|
--quantize-activations -qa||0|
--kv-bits||1|
--kv-group-size||1|
--quantized-kv-start||1|
--draft-model||1|
--num-draft-tokens||1|
""",
}


@functools.cache
def mlx_actions(tool: str) -> tuple[Action, ...]:
    return _actions(_MLX[tool].strip().splitlines())


# llama-bench (llama.cpp 0c1e570) has its own parser, not argparse (parse_cmd_params in
# tools/llama-bench/llama-bench.cpp): option -> (key, kind); kind "int" (a list of integers or ranges),
# "list" (a comma list), "one" (one value), "flag", "ot" (override groups)
_TABLE = """
-m --model|model|list
-hf -hfr --hf-repo|hf_repo|list
-hff --hf-file|hf_file|list
-hft --hf-token|hf_token|one
--offline|offline|flag
-p --n-prompt|n_prompt|int
-n --n-gen|n_gen|int
-pg|n_pg|one
-d --n-depth|n_depth|int
-b --batch-size|n_batch|int
-ub --ubatch-size|n_ubatch|int
-ctk --cache-type-k|type_k|list
-ctv --cache-type-v|type_v|list
-dev --device|devices|list
-t --threads|n_threads|int
-C --cpu-mask|cpu_mask|list
--cpu-strict|cpu_strict|list
--poll|poll|int
-ngl --n-gpu-layers|n_gpu_layers|int
-ncmoe --n-cpu-moe|n_cpu_moe|int
-rpc --rpc|rpc|one
-sm --split-mode|split_mode|list
-lm --load-mode|load_mode|list
-lzm --lazy-mode|lazy_mode|list
-mg --main-gpu|main_gpu|int
-nkvo --no-kv-offload|no_kv_offload|list
--numa|numa|one
-fa --flash-attn|flash_attn|list
-embd --embeddings|embeddings|list
-nopo --no-op-offload|no_op_offload|list
--no-host|no_host|list
--repack|repack|list
-ts --tensor-split|tensor_split|list
-ot --override-tensor|override_tensor|ot
-r --repetitions|reps|one
--prio|prio|one
--delay|delay|one
-o --output|output|one
-oe --output-err|output_err|one
-v --verbose|verbose|flag
--progress|progress|flag
--no-warmup|no_warmup|flag
-fitt --fit-target|fit_target|list
-fitc --fit-ctx|fit_ctx|list
-h --help|help|flag
--version|version|flag
--list-devices|list_devices|flag
"""
BENCH_OPTIONS: dict[str, tuple[str, str]] = {
    flag: (key, kind)
    for flags, key, kind in (line.split("|") for line in _TABLE.strip().splitlines())
    for flag in flags.split()
}
