"""The front ends that run llama.cpp: Ollama and LM Studio (llama-server underneath), and
llama-cpp-python (llama.cpp as a library). Each is :class:`~.engine.LlamaCpp` with its own defaults,
limits and launch command; the memory is llama.cpp's (:mod:`.terms`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from qwenfit.core.command import Cat, Cmd
from qwenfit.core.engines.base import Artifact, Deployment
from qwenfit.core.engines.llama_cpp.artifacts import gguf_pick, pick_artifact
from qwenfit.core.engines.llama_cpp.engine import LlamaCpp, share
from qwenfit.core.engines.llama_cpp.memory import LLAMA_KV_TYPES
from qwenfit.core.engines.llama_cpp.options import LlamaCppOptions
from qwenfit.core.expr import lt
from qwenfit.core.formats.dtypes import GGML_TYPES
from qwenfit.errors import SettingError

if TYPE_CHECKING:
    from qwenfit.core.artifacts import ModelSource
    from qwenfit.core.hardware import Machine

__all__ = ["LLAMA_CPP_PYTHON", "LM_STUDIO", "OLLAMA", "LlamaCppPython", "LmStudio", "Ollama"]


class Ollama(LlamaCpp):
    """Ollama ≥ 0.30 runs llama-server with the context ``num_ctx × num_parallel``; it does not run
    ``--fit`` (no margin kept), and streams over HTTP (a larger per-token cost). Its settings are the
    Modelfile's ``PARAMETER num_ctx`` and the server's environment (``OLLAMA_FLASH_ATTENTION``,
    ``OLLAMA_KV_CACHE_TYPE``, ``OLLAMA_NUM_PARALLEL``)."""

    name = "ollama"
    # its own fitted engine costs (Ollama's runner), llama.cpp's kernels for the rest
    speed = dataclasses.replace(LlamaCpp.speed, fitted=("ollama", "llama.cpp"))
    keeps_fit_margin = False
    # a Modelfile offloads whole layers (num_gpu); it has no --n-cpu-moe / -ot, so no expert placement
    expert_offload = False

    def default_on(self, machine: Machine) -> bool:
        return False

    def artifact(self, source: ModelSource, quant: str, d: Deployment) -> Artifact:
        """``hf.co/<repo>:<QUANT>`` (Ollama pulls GGUFs from the Hub by that name); a split set, which
        Ollama cannot pull, is downloaded and merged with ``llama-gguf-split --merge`` first."""
        pick = gguf_pick(source, quant, d)
        tag = f"{source.name}-{quant}".lower().replace("/", "-")
        if pick.file is None or pick.repo is None:
            return pick_artifact(pick, str(pick.path), tag=tag)
        if not pick.file.split:
            return pick_artifact(pick, f"hf.co/{pick.repo.id}:{pick.file.quant}", tag=tag)
        merged = f"./{pick.file.parts[0].rsplit('/', 1)[-1].split('-00001-of-')[0]}.gguf"
        folder = (
            pick.file.name.rsplit("/", 1)[0] + "/*" if "/" in pick.file.name else pick.file.name[:-20] + "*"
        )
        steps = (f'hf download {pick.repo.id} --include "{folder}" --local-dir .',
                 f"llama-gguf-split --merge {pick.file.name} {merged}")  # fmt: skip
        why = f"{pick.note} as {len(pick.file.parts)} parts: Ollama loads one file, so merge them"
        return pick_artifact(pick, merged, make=steps, why=why, tag=tag)

    def command(self, artifact: Artifact, d: Deployment, o: Any) -> Cmd:
        cmd = Cmd().add(artifact.make).add("# Modelfile").line().add("FROM", artifact.ref).line()
        cmd.add("PARAMETER", "num_ctx", d.context).line()
        if d.backend == "cpu" or d.n_gpus == 0:
            cmd.add("PARAMETER", "num_gpu", "0").line()
        elif o.n_gpu_layers is not None:  # the layers planned on the GPU (Ollama would pick its own)
            cmd.add("PARAMETER", "num_gpu", str(o.n_gpu_layers)).line()
        cmd.add("# then").line()
        cmd.add("OLLAMA_FLASH_ATTENTION=1")
        if d.kv_cache and d.kv_cache != "f16":
            cmd.add(f"OLLAMA_KV_CACHE_TYPE={d.kv_cache}")
        cmd.add(Cat("OLLAMA_NUM_PARALLEL=", d.sequences), when=lt(1, d.sequences))
        cmd.add("ollama", "serve", "&").line()
        return cmd.add(
            "ollama", "create", artifact.tag, "-f", "Modelfile", "&&", "ollama", "run", artifact.tag
        )


class LmStudio(LlamaCpp):
    """LM Studio runs llama.cpp; ``lms load`` takes the context and the GPU offload."""

    name = "lm-studio"

    def default_on(self, machine: Machine) -> bool:
        return False

    def artifact(self, source: ModelSource, quant: str, d: Deployment) -> Artifact:
        """``lms get https://huggingface.co/<repo>@<QUANT> -y`` (lmstudio-ai/docs, cli/get.md), loaded
        by its key: ``<publisher>/<repo name without -GGUF>`` in lower case, as ``lms ls`` lists
        downloads (cli/ls.md). A file of the user's or a made one is added with ``lms import``."""
        pick = gguf_pick(source, quant, d)
        if pick.file is None or pick.repo is None:
            name = str(pick.path).rsplit("/", 1)[-1].removesuffix(".gguf").lower()
            step = f"lms import {pick.path} --copy --user-repo local/{name} -y"  # cli/import.md
            return pick_artifact(pick, f"local/{name}", make=(step,), why="add the file to LM Studio")
        owner, repo_name = pick.repo.id.split("/", 1)
        key = f"{owner}/{repo_name.removesuffix('-GGUF').removesuffix('-gguf')}".lower()
        get = f"lms get https://huggingface.co/{pick.repo.id}@{pick.file.quant} -y"
        return pick_artifact(pick, key, make=(get,), why=f"{pick.note}: download it into LM Studio")

    def command(self, artifact: Artifact, d: Deployment, o: Any) -> Cmd:
        """``lms load``: ``--gpu`` takes off, max or a fraction (cli/load.md); a layer count or experts
        kept on the CPU are set in the app's load settings, as the trailing comment says."""
        cpu = d.backend == "cpu" or d.n_gpus == 0
        cmd = Cmd().add(artifact.make).add("lms", "load", artifact.ref, "--context-length", d.context,
                                           "--gpu", "off" if cpu else "max")  # fmt: skip
        if not cpu and o.n_gpu_layers is not None:
            cmd.add(f" # then set 'GPU Offload' to {o.n_gpu_layers} layers")
        moe = 0 if cpu else o.n_cpu_moe
        return cmd.add(" # then set 'MoE experts on CPU' to", moe, "layers", when=lt(0, moe))


class LlamaCppPython(LlamaCpp):
    """llama.cpp as a library: llama-cpp-python (``Llama(...)`` and its OpenAI server
    ``python3 -m llama_cpp.server``, llama-cpp-python 0.3.36 = llama.cpp 0c1e570).

    A library context reserves logits for the whole batch (``n_outputs_max`` 0 -> ``n_batch``,
    llama-context.cpp:250), keeps no context checkpoints, runs no ``--fit`` and serves one sequence at
    a time. llama-cpp-python's own defaults (llama_cpp/llama.py, server/settings.py): ``n_batch`` =
    ``n_ubatch`` = 512, flash attention off; it has no expert offload (``--n-cpu-moe`` / ``-ot``) and
    no MTP drafting."""

    name = "llama-cpp-python"
    calc_kv_types = ()  # not in the docs calculator (one sequence; the calculator's llama.cpp covers it)
    keeps_fit_margin = False
    max_sequences = 1
    expert_offload = False

    def options(self, values: Mapping[str, Any] | None = None, **overrides: Any) -> LlamaCppOptions:
        given = {"server": False, "flash_attention": False, "batch": 512, **(values or {}), **overrides}
        for key in ("n_cpu_moe", "override_tensor"):
            if given.get(key):
                raise SettingError(f"{self.name} has no {key} (llama-cpp-python 0.3.36 exposes no tensor "
                                   "overrides); use engine 'llama.cpp'")  # fmt: skip
        if given.get("server"):
            raise SettingError(f"{self.name} is llama.cpp as a library; server=True is engine 'llama.cpp'")
        return super().options(given)

    no_mtp = "llama-cpp-python does not draft with the MTP layer; use engine 'llama.cpp'"

    def default_on(self, machine: Machine) -> bool:
        return False

    def artifact(self, source: ModelSource, quant: str, d: Deployment) -> Artifact:
        """``--hf_model_repo_id <repo> --model <file>`` (Llama.from_pretrained); a split set is
        downloaded first and loaded from its first part."""
        pick = gguf_pick(source, quant, d)
        if pick.file is None or pick.repo is None:
            return pick_artifact(pick, f"--model {pick.path}")
        if not pick.file.split:
            return pick_artifact(pick, f"--hf_model_repo_id {pick.repo.id} --model {pick.file.name}")
        folder = (
            pick.file.name.rsplit("/", 1)[0] + "/*" if "/" in pick.file.name else pick.file.name[:-20] + "*"
        )
        step = f'hf download {pick.repo.id} --include "{folder}" --local-dir .'
        why = f"{pick.note} as {len(pick.file.parts)} parts: download them (loaded from the first)"
        return pick_artifact(pick, f"--model ./{pick.file.name}", make=(step,), why=why)

    def command(self, artifact: Artifact, d: Deployment, o: Any) -> Cmd:
        """llama-cpp-python's server (llama_cpp/server/settings.py field names; KV types as ggml ids)."""
        cmd = Cmd().add(artifact.make).add("python3", "-m", "llama_cpp.server", artifact.ref,
                                           "--n_ctx", d.context)  # fmt: skip
        if d.backend == "cpu" or d.n_gpus == 0:
            cmd.add("--n_gpu_layers", "0")
        else:
            cmd.add("--n_gpu_layers", "-1" if o.n_gpu_layers is None else str(o.n_gpu_layers))
            if d.n_gpus > 1:
                cmd.add("--tensor_split", *(share(s) for s in (o.tensor_split or (1,) * d.n_gpus)))
        if o.batch != 512:
            cmd.add("--n_batch", o.batch)
        if o.ubatch != 512:
            cmd.add("--n_ubatch", o.ubatch)
        if o.flash_attention:
            cmd.add("--flash_attn", "true")
        if d.kv_cache and d.kv_cache != "f16":
            kind = GGML_TYPES[LLAMA_KV_TYPES[d.kv_cache]].id
            cmd.add("--type_k", kind, "--type_v", kind)
        return cmd


OLLAMA = Ollama()
LM_STUDIO = LmStudio()
LLAMA_CPP_PYTHON = LlamaCppPython()
