"""Ollama: a Modelfile (``FROM``, ``PARAMETER``) and the server's ``OLLAMA_*`` environment, or
``ollama run TAG`` / ``ollama create NAME -f Modelfile``.

Ollama >= 0.30 runs llama-server with ``-c num_ctx x OLLAMA_NUM_PARALLEL -np OLLAMA_NUM_PARALLEL``, so the
context per sequence is ``num_ctx``: the Modelfile's ``PARAMETER num_ctx``, else
``OLLAMA_CONTEXT_LENGTH``, else a default Ollama picks from the GPU memory (4096 / 32768 / 262144 below
23 GiB / from 23 GiB / from 47 GiB; envconfig/config.go and server/routes.go at HEAD fb3076099).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from qwenfit.cmdline.frontend import Launch, cwd_path
from qwenfit.cmdline.llama_cpp import KV_TYPES
from qwenfit.cmdline.models import catalog_name, gguf_name, hf_repo_quant, ollama_tag
from qwenfit.cmdline.parsed import Frame, ParsedCommand
from qwenfit.errors import UsageError

__all__ = ["is_modelfile", "parse_modelfile", "parse_ollama"]

_INSTRUCTIONS = (
    "FROM",
    "PARAMETER",
    "TEMPLATE",
    "SYSTEM",
    "ADAPTER",
    "LICENSE",
    "MESSAGE",
    "REQUIRES",
    "RENDERER",
    "PARSER",
)
# fmt: off
IGNORED_PARAMETERS = frozenset((
    "num_thread", "num_keep", "seed", "num_predict", "top_k", "top_p", "min_p", "typical_p", "repeat_last_n",
    "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty", "stop", "penalize_newline",
    "tfs_z", "mirostat", "mirostat_tau", "mirostat_eta", "use_mmap", "main_gpu", "numa", "think",
))
# fmt: on


def is_modelfile(text: str) -> bool:
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        return s.split(None, 1)[0].upper() == "FROM"
    return False


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, argument) pairs; triple-quoted arguments may span lines."""
    out: list[tuple[str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        i += 1
        if not s or s.startswith("#"):
            continue
        word, _, arg = s.partition(" ")
        if word.upper() not in _INSTRUCTIONS:
            raise UsageError(f"Modelfile line {i}: unknown instruction {word!r}")
        arg = arg.strip()
        if arg.startswith('"""') and (arg.count('"""') == 1):
            body = [arg[3:]]
            while i < len(lines) and '"""' not in lines[i]:
                body.append(lines[i])
                i += 1
            if i < len(lines):
                body.append(lines[i].split('"""')[0])
                i += 1
            arg = "\n".join(body)
        out.append((word.upper(), arg))
    return out


def _from(value: str, cwd: str | None, notes: list[str]) -> tuple[str, str, str | None, str | None]:
    """(model, kind, quant, catalog) of a ``FROM`` line."""
    v = value.strip().strip('"')
    if v.startswith(("hf.co/", "huggingface.co/")):
        repo, tag = hf_repo_quant(v.split("/", 1)[1])
        notes.append(f"FROM {v}: Ollama pulls the GGUF from Hugging Face")
        return repo, "hf-repo", tag.upper() if tag else None, catalog_name(repo)
    if v.startswith(("/", "./", "../", "~")) or v.lower().endswith(".gguf"):
        name, quant = gguf_name(v)
        full = cwd_path(v, cwd)
        cat = catalog_name(name) if name else None
        if os.path.isfile(full):
            return v, "path", quant, cat
        if cat or name:
            notes.append(f"model and quantization from the file name {os.path.basename(v)}")
            return cat or str(name), "file-name", quant, cat
        raise UsageError(f"FROM {v}: no such file here and no model name in it")
    model, quant = ollama_tag(v)
    if model:
        notes.append(
            f"the Ollama tag {v} is {model}" + ("" if quant else " (the tag's default quantization)")
        )
    return v, "ollama-tag", quant, model


def _settings(params: dict[str, str], env: Mapping[str, str], notes: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    refused = []
    for name, value in params.items():
        if name == "num_ctx":
            settings["context"] = _num(name, value)
        elif name == "num_gpu":
            n = _num(name, value)
            settings["n_gpu_layers"] = None if n < 0 else n
        elif name in ("num_batch", "use_mlock", "low_vram", "f16_kv"):
            refused.append(f"PARAMETER {name} {value}")
        elif name not in IGNORED_PARAMETERS:
            raise UsageError(f"Modelfile: unknown parameter '{name}'")
    if refused:
        raise UsageError(
            "these Modelfile parameters change memory in ways qwenfit cannot model: " + ", ".join(refused)
        )
    if "context" not in settings:
        if env.get("OLLAMA_CONTEXT_LENGTH"):
            settings["context"] = _num("OLLAMA_CONTEXT_LENGTH", env["OLLAMA_CONTEXT_LENGTH"])
            notes.append(f"num_ctx from OLLAMA_CONTEXT_LENGTH={env['OLLAMA_CONTEXT_LENGTH']}")
        else:
            notes.append(
                "no num_ctx: Ollama picks 4096, 32768 or 262144 tokens from the GPU memory (< 23 GiB, "
                ">= 23 GiB, >= 47 GiB); the machine decides"
            )
    par = env.get("OLLAMA_NUM_PARALLEL", "")
    settings["sequences"] = _num("OLLAMA_NUM_PARALLEL", par) if par else 1
    fa = env.get("OLLAMA_FLASH_ATTENTION")
    if fa is None or fa == "":
        settings["flash_attention"] = True
        notes.append(
            "OLLAMA_FLASH_ATTENTION not set: Ollama passes --flash-attn auto (assumed), which llama.cpp "
            "turns on where the device supports it"
        )
    else:
        settings["flash_attention"] = fa.lower() in ("1", "true", "t", "yes", "on")
    kv = env.get("OLLAMA_KV_CACHE_TYPE")
    if kv:
        if kv not in KV_TYPES:
            raise UsageError(
                f"OLLAMA_KV_CACHE_TYPE={kv}: not a llama.cpp KV cache type ({', '.join(KV_TYPES)})"
            )
        settings["kv_cache"] = kv
        if not settings["flash_attention"] and kv not in ("f16", "f32", "bf16"):
            notes.append(
                f"OLLAMA_KV_CACHE_TYPE={kv} needs flash attention, which OLLAMA_FLASH_ATTENTION turns off"
            )
    gpu_overhead = env.get("OLLAMA_GPU_OVERHEAD", "")
    if gpu_overhead not in ("", "0"):
        raise UsageError(f"OLLAMA_GPU_OVERHEAD={gpu_overhead}: a per-GPU reserve qwenfit does not model")
    settings["mtp"] = False
    return settings


def _num(name: str, value: str) -> int:
    try:
        return int(value.strip().strip('"'))
    except ValueError:
        raise UsageError(f"{name}: {value!r} is not a number") from None


def parse_modelfile(
    text: str,
    env: Mapping[str, str],
    cwd: str | None,
    *,
    argv: tuple[str, ...] = (),
    prefix: tuple[str, ...] = (),
) -> ParsedCommand:
    notes: list[str] = []
    params: dict[str, str] = {}
    source = None
    for word, arg in _instructions(text):
        if word == "FROM":
            source = arg
        elif word == "PARAMETER":
            name, _, value = arg.partition(" ")
            if name != "stop":
                params[name] = value.strip()
        elif word == "ADAPTER":
            raise UsageError(f"Modelfile ADAPTER {arg}: loads an adapter, which qwenfit does not model")
    if source is None:
        raise UsageError("Modelfile without FROM")
    model, kind, quant, cat = _from(source, cwd, notes)
    settings = _settings(params, env, notes)
    raw: dict[str, Any] = {"from": source, **params}
    raw.update({k: v for k, v in env.items() if k.startswith("OLLAMA_")})
    return ParsedCommand(
        "ollama",
        "ollama",
        model,
        kind,
        quant,
        settings,
        raw,
        (),
        tuple(dict.fromkeys(notes)),
        argv or tuple(text.splitlines()),
        cat,
        Frame("modelfile", prefix, (), text),
    )


def parse_ollama(launch: Launch, env: Mapping[str, str], cwd: str | None) -> ParsedCommand:
    args = launch.args
    sub = args[0] if args else ""
    if sub == "serve":
        raise UsageError(
            "ollama serve loads no model until a request names one: give the Modelfile or "
            "`ollama run TAG` (with the server's OLLAMA_* environment)"
        )
    if sub == "create":
        rest = args[1:]
        path = next((rest[i + 1] for i, a in enumerate(rest[:-1]) if a in ("-f", "--file")), "Modelfile")
        full = cwd_path(path, cwd)
        if not os.path.isfile(full):
            raise UsageError(f"ollama create: the Modelfile {path} is not here (cwd {os.path.dirname(full)})")
        with open(full, encoding="utf-8") as f:
            return parse_modelfile(f.read(), env, cwd, argv=tuple(launch.argv))
    if sub != "run" or len(args) < 2:
        raise UsageError(f"ollama {sub}: not a command that loads a model")
    tag = next((a for a in args[1:] if not a.startswith("-")), None)
    if tag is None:
        raise UsageError("ollama run: no model")
    text = f"FROM {tag}\n"
    pc = parse_modelfile(text, env, cwd, argv=tuple(launch.argv), prefix=tuple(launch.prefix))
    return ParsedCommand(
        pc.tool,
        pc.engine,
        pc.model,
        pc.model_kind,
        pc.quant,
        pc.settings,
        pc.raw,
        (),
        pc.notes,
        pc.argv,
        pc.catalog,
        Frame("ollama-run", tuple(launch.prefix), tuple(args)),
    )
