"""Launch commands for a planned deployment, per engine, with the flags that make it fit.

Flag names are the engines' own: llama.cpp common/arg.cpp (``-c``, ``-np``, ``-ngl``,
``--n-cpu-moe``, ``-ts``, ``-ctk``/``-ctv``, ``-fa``), Ollama's Modelfile ``PARAMETER num_ctx`` and
its environment (``OLLAMA_KV_CACHE_TYPE``, ``OLLAMA_FLASH_ATTENTION``, ``OLLAMA_NUM_PARALLEL``; the
context Ollama passes to llama-server is ``num_ctx × num_parallel``), vLLM's ``vllm serve``
(``--tensor-parallel-size``, ``--pipeline-parallel-size``, ``--data-parallel-size``,
``--enable-expert-parallel``, ``--max-model-len``, ``--gpu-memory-utilization``,
``--kv-cache-dtype``, ``--max-num-seqs``), SGLang's ``sglang.launch_server`` (``--tp``,
``--context-length``, ``--mem-fraction-static``) and ``mlx_lm.server``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Launch", "gguf_file_name", "launch_command"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Launch:
    """What to run: the engine, the model file or repo, and the placement it was planned with."""

    engine: str
    model_name: str  # "Qwen3.5-35B-A3B"
    repo_id: str | None  # the Hugging Face repo of the original checkpoint
    quant: str
    context: int
    sequences: int = 1
    kv_cache: str | None = None
    n_gpus: int = 1
    n_gpu_layers: int | None = None  # None: all
    n_cpu_moe: int = 0
    tensor_split: tuple[int, ...] | None = None
    cpu_only: bool = False
    tp: int = 1
    pp: int = 1
    dp: int = 1
    expert_parallel: bool = False
    gpu_memory_utilization: float | None = None
    mem_fraction_static: float | None = None
    vision: bool = False  # the vision tower loaded (vLLM builds it unless --language-model-only)


def gguf_file_name(model_name: str, quant: str) -> str:
    """The file name llama-quantize output conventionally gets: ``<model>-<TYPE>.gguf``."""
    return f"{model_name}-{quant.upper()}.gguf"


def _llama_server(x: Launch) -> str:
    seq_ctx = x.context * x.sequences  # -c is the total over all slots
    parts = ["llama-server", "-m", gguf_file_name(x.model_name, x.quant), "-c", str(seq_ctx)]
    if x.sequences > 1:
        parts += ["-np", str(x.sequences)]
    if x.cpu_only:
        parts += ["-ngl", "0", "--device", "none"]
    else:
        parts += ["-ngl", "all" if x.n_gpu_layers is None else str(x.n_gpu_layers)]
        if x.n_cpu_moe:
            parts += ["--n-cpu-moe", str(x.n_cpu_moe)]
        if x.tensor_split:
            parts += ["-ts", ",".join(str(s) for s in x.tensor_split)]
    parts += ["-fa", "on"]
    if x.kv_cache and x.kv_cache != "f16":
        parts += ["-ctk", x.kv_cache, "-ctv", x.kv_cache]
    return " ".join(parts)


def _ollama(x: Launch) -> str:
    env = ["OLLAMA_FLASH_ATTENTION=1"]
    if x.kv_cache and x.kv_cache != "f16":
        env.append(f"OLLAMA_KV_CACHE_TYPE={x.kv_cache}")
    if x.sequences > 1:
        env.append(f"OLLAMA_NUM_PARALLEL={x.sequences}")
    tag = x.model_name.lower()
    return (
        f"# Modelfile\nFROM ./{gguf_file_name(x.model_name, x.quant)}\nPARAMETER num_ctx {x.context}\n"
        f"# then\n{' '.join(env)} ollama serve &\nollama create {tag} -f Modelfile && ollama run {tag}"
    )


def _lm_studio(x: Launch) -> str:
    gpu = "off" if x.cpu_only else ("max" if x.n_gpu_layers is None else str(x.n_gpu_layers))
    return f"lms load {gguf_file_name(x.model_name, x.quant)} --context-length {x.context} --gpu {gpu}" + (
        f"  # then set 'MoE experts on CPU' to {x.n_cpu_moe} layers" if x.n_cpu_moe else ""
    )


_VLLM_KV = {"fp8": "fp8", "fp8_e4m3": "fp8_e4m3", "fp8_e5m2": "fp8_e5m2", "bfloat16": "bfloat16"}


def _vllm(x: Launch) -> str:
    repo = x.repo_id or x.model_name
    parts = ["vllm", "serve", repo + ("-FP8" if x.quant == "fp8" else "")]
    if x.quant not in ("bf16", "fp16", "fp8"):
        parts[2] = f"<{x.quant} checkpoint of {repo}>"
    if x.tp > 1:
        parts += ["--tensor-parallel-size", str(x.tp)]
    if x.pp > 1:
        parts += ["--pipeline-parallel-size", str(x.pp)]
    if x.dp > 1:
        parts += ["--data-parallel-size", str(x.dp)]
    if x.expert_parallel:
        parts.append("--enable-expert-parallel")
    parts += ["--max-model-len", str(x.context)]
    if x.gpu_memory_utilization is not None:
        parts += ["--gpu-memory-utilization", f"{x.gpu_memory_utilization:g}"]
    if x.kv_cache in _VLLM_KV:
        parts += ["--kv-cache-dtype", _VLLM_KV[x.kv_cache]]
    if x.sequences > 1:
        parts += ["--max-num-seqs", str(x.sequences)]
    if not x.vision:
        parts.append("--language-model-only")  # text only: vLLM would otherwise build the vision tower
    return " ".join(parts)


def _sglang(x: Launch) -> str:
    repo = x.repo_id or x.model_name
    parts = ["python", "-m", "sglang.launch_server", "--model-path", repo, "--context-length", str(x.context)]
    if x.tp > 1:
        parts += ["--tp", str(x.tp)]
    if x.mem_fraction_static is not None:
        parts += ["--mem-fraction-static", f"{x.mem_fraction_static:.3f}"]
    if x.kv_cache and x.kv_cache != "auto":
        parts += ["--kv-cache-dtype", x.kv_cache]
    return " ".join(parts)


def _mlx(x: Launch) -> str:
    bits = x.quant.removeprefix("mlx-").split("-")[0]
    repo = (
        f"mlx-community/{x.model_name}-{bits}" if x.quant.startswith("mlx-") else (x.repo_id or x.model_name)
    )
    parts = ["mlx_lm.server", "--model", repo]
    if x.kv_cache in ("4", "8"):
        parts += ["--kv-bits", x.kv_cache]
    return " ".join(parts)


def launch_command(x: Launch) -> str:
    """The shell command (or Modelfile + commands for Ollama) that starts ``x``."""
    if x.engine == "llama.cpp":
        return _llama_server(x)
    if x.engine == "ollama":
        return _ollama(x)
    if x.engine == "lm-studio":
        return _lm_studio(x)
    if x.engine == "vllm":
        return _vllm(x)
    if x.engine == "sglang":
        return _sglang(x)
    if x.engine == "mlx":
        return _mlx(x)
    if x.engine == "transformers":
        return f"python -c \"from transformers import pipeline; pipeline('text-generation', '{x.repo_id}')\""
    raise ValueError(f"no launch command for engine {x.engine!r}")
