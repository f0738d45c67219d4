"""The front ends that run llama.cpp: Ollama and LM Studio (llama-server underneath), and
llama-cpp-python (llama.cpp as a library). Each is :class:`~.engine.LlamaCpp` with its own defaults,
limits and launch command; the memory is llama.cpp's (:mod:`.terms`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from qwenfit.core.command import Cat, Cmd
from qwenfit.core.engines.base import Artifact, Deployment, SpeedConstants
from qwenfit.core.engines.llama_cpp.engine import (
    COMPUTE_EFFICIENCY,
    LAYER_US,
    LlamaCpp,
    gguf_file_name,
    share,
)
from qwenfit.core.engines.llama_cpp.memory import LLAMA_KV_TYPES
from qwenfit.core.engines.llama_cpp.options import LlamaCppOptions
from qwenfit.core.expr import lt
from qwenfit.core.formats.dtypes import GGML_TYPES
from qwenfit.errors import SettingError

if TYPE_CHECKING:
    from qwenfit.core.hardware import Machine
    from qwenfit.core.model.spec import ModelSpec

__all__ = ["LLAMA_CPP_PYTHON", "LM_STUDIO", "OLLAMA", "LlamaCppPython", "LmStudio", "Ollama"]


class Ollama(LlamaCpp):
    """Ollama ≥ 0.30 runs llama-server with the context ``num_ctx × num_parallel``; it does not run
    ``--fit`` (no margin kept), and streams over HTTP (a larger per-token cost). Its settings are the
    Modelfile's ``PARAMETER num_ctx`` and the server's environment (``OLLAMA_FLASH_ATTENTION``,
    ``OLLAMA_KV_CACHE_TYPE``, ``OLLAMA_NUM_PARALLEL``)."""

    name = "ollama"
    speed = SpeedConstants("llama.cpp", 200, LAYER_US, COMPUTE_EFFICIENCY)  # the family's (issue 19 refits)
    keeps_fit_margin = False

    def default_on(self, machine: Machine) -> bool:
        return False

    def artifact(self, spec_name: str, repo_id: str | None, quant: str) -> Artifact:
        return Artifact(repo=repo_id, file=gguf_file_name(spec_name, quant), tag=spec_name.lower())

    def command(self, artifact: Artifact, d: Deployment, o: Any) -> Cmd:
        cmd = Cmd().add("# Modelfile").line().add("FROM", Cat("./", artifact.file)).line()
        cmd.add("PARAMETER", "num_ctx", d.context).line().add("# then").line()
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
    speed = SpeedConstants("llama.cpp", 200, LAYER_US, COMPUTE_EFFICIENCY)  # the family's (issue 19 refits)

    def default_on(self, machine: Machine) -> bool:
        return False

    def command(self, artifact: Artifact, d: Deployment, o: Any) -> Cmd:
        cpu = d.backend == "cpu" or d.n_gpus == 0
        gpu = "off" if cpu else ("max" if o.n_gpu_layers is None else str(o.n_gpu_layers))
        cmd = Cmd().add("lms", "load", artifact.file, "--context-length", d.context, "--gpu", gpu)
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
    speed = SpeedConstants("llama.cpp", 200, LAYER_US, COMPUTE_EFFICIENCY)

    def options(self, values: Mapping[str, Any] | None = None, **overrides: Any) -> LlamaCppOptions:
        given = {"server": False, "flash_attention": False, "batch": 512, **(values or {}), **overrides}
        for key in ("n_cpu_moe", "override_tensor"):
            if given.get(key):
                raise SettingError(f"{self.name} has no {key} (llama-cpp-python 0.3.36 exposes no tensor "
                                   "overrides); use engine 'llama.cpp'")  # fmt: skip
        if given.get("server"):
            raise SettingError(f"{self.name} is llama.cpp as a library; server=True is engine 'llama.cpp'")
        return super().options(given)

    def check(self, spec: ModelSpec, d: Deployment, o: Any) -> None:
        super().check(spec, d, o)
        if d.mtp:
            raise SettingError(f"{self.name} does not draft with the MTP layer; use engine 'llama.cpp'")

    def default_on(self, machine: Machine) -> bool:
        return False

    def command(self, artifact: Artifact, d: Deployment, o: Any) -> Cmd:
        """llama-cpp-python's server (llama_cpp/server/settings.py field names; KV types as ggml ids)."""
        cmd = Cmd().add("python3", "-m", "llama_cpp.server", "--model", artifact.file, "--n_ctx", d.context)
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
