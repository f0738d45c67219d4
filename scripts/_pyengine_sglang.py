"""Run SGLang's own memory arithmetic (imported from the pinned wheel) on a CPU-only machine.

Nothing from SGLang is committed: ``ensure_source`` runs ``pip download --no-deps sglang==PIN``
into a cache outside the repository and unzips everything but the compiled ``*.so`` files.

What runs is SGLang's real code: ``ServerArgs.resolve_once()`` (the whole argument-resolution
pipeline, including ``arg_groups/memory_hook.py::handle_gpu_memory_settings`` and the Qwen3.5
model overrides), ``ModelConfig`` / ``Qwen3_5TextConfig.mamba2_cache_params`` (state shapes and
dtypes), and ``KVCacheConfigurator._resolve_memory_pool_config`` (``_profile_available_bytes``,
``_handle_max_mamba_cache``, ``DefaultPoolConfigurator`` token sizing, ``resolve_max_num_reqs``).

Stubs (each unavoidable without a GPU):

1. ``torchvision``: SGLang wants a CUDA torch build; only the CPU torch wheel is installed and
   torchvision's ops do not load against it. Placeholder modules are registered (transformers'
   image processors import it at import time). No memory number touches torchvision.
2. ``memory_hook.get_device_memory_capacity``: returns the GPU memory under test, in MiB, as
   ``nvidia-smi --query-gpu=memory.total`` would (``utils/common.py::get_nvgpu_memory_capacity``).
3. ``mamba_hook._platform_supports_mamba_cache_extra_buffer``: True, as on CUDA (the platform here
   is CPU). It decides the radix-cache strategy for Qwen3.5 ("extra_buffer" on CUDA).
4. ``kv_cache_configurator.get_available_gpu_memory``: the free memory after the weights load, in
   GiB (what ``torch.cuda.mem_get_info`` would say): pre-load free memory − weights per rank.
5. The ``KVCacheConfigurator`` is built with the real ``ModelConfig`` and ``ServerArgs`` but no
   model object (``model=None``), a one-stage ``layer_info``, and a placeholder WORLD group
   (only passed to the stubbed ``get_available_gpu_memory``).
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

SGLANG_PIN = "0.5.23"
DEFAULT_CACHE = Path(os.environ.get("QWENFIT_SGLANG_CACHE", Path.home() / ".cache" / "qwenfit" / "sglang"))

# The venv (PyPI only; torch FIRST, CPU wheel, and nothing may upgrade it):
#   python3.11 -m venv /work/venvs/sglang
#   /work/venvs/sglang/bin/pip install torch==2.13.0
#   /work/venvs/sglang/bin/python scripts/python_engine_fixtures.py --install-deps sglang
VENV_REQUIREMENTS = [
    "transformers==5.19.0",  # sglang 0.5.23 pins it
    "orjson", "msgspec", "pydantic", "numpy", "psutil", "requests", "pyzmq", "aiohttp", "fastapi", "uvicorn",
    "setproctitle", "packaging", "pybase64", "einops", "tqdm", "partial_json_parser", "pillow", "regex",
    "sentencepiece", "triton", "IPython", "dill", "apache-tvm-ffi==0.1.11", "compressed_tensors", "gguf",
]  # fmt: skip


def install_deps(python: str = sys.executable) -> None:
    import importlib.metadata as md
    import tempfile

    tv = md.version("torch")
    if "+cpu" not in tv:
        raise SystemExit(f"torch {tv} is not a +cpu build; install torch==2.13.0 (CPU) first")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(f"torch=={tv}\n")
    subprocess.run([python, "-m", "pip", "install", "-c", f.name, *VENV_REQUIREMENTS], check=True)


def ensure_source(pin: str = SGLANG_PIN, cache: Path = DEFAULT_CACHE) -> Path:
    src = Path(cache) / f"src-{pin}"
    if (src / "sglang" / "srt" / "server_args.py").exists() and (src / "sglang" / "kernels").exists():
        return src
    Path(cache).mkdir(parents=True, exist_ok=True)
    wheels = sorted(Path(cache).glob(f"sglang-{pin}-*.whl"))
    if not wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", f"sglang=={pin}", "-d", str(cache)]
        subprocess.run(cmd,
                       check=True)  # fmt: skip
        wheels = sorted(Path(cache).glob(f"sglang-{pin}-*.whl"))
    with zipfile.ZipFile(wheels[0]) as z:
        z.extractall(src, [n for n in z.namelist() if not n.endswith(".so")])
    return src


class _Placeholder(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


def bootstrap(src: Path) -> None:
    import transformers.utils.import_utils  # noqa: F401  (records torchvision as unavailable first)

    for name in (
        "torchvision",
        "torchvision.transforms",
        "torchvision.transforms.v2",
        "torchvision.transforms.v2.functional",
        "torchvision.transforms.functional",
        "torchvision.io",
    ):
        m = _Placeholder(name)
        m.__spec__ = importlib.machinery.ModuleSpec(name, None)
        m.__path__ = []
        sys.modules[name] = m  # fmt: skip
    sys.path.insert(0, str(src))


class Sglang:
    """SGLang's server-argument resolution and pool sizing for one configuration at a time."""

    def __init__(self, src: Path) -> None:
        bootstrap(src)
        import sglang.srt.arg_groups.mamba_hook as mamba_hook
        import sglang.srt.arg_groups.memory_hook as memory_hook
        import sglang.srt.mem_cache.kv_cache_configurator as kcc
        import sglang.srt.runtime_context as rc
        from sglang.srt.arg_groups.overrides import model_config_of, resolved_view
        from sglang.srt.server_args import ServerArgs
        from sglang.srt.speculative.spec_info import SpeculativeAlgorithm

        self.memory_hook, self.kcc, self.rc = memory_hook, kcc, rc
        self.ServerArgs, self.resolved_view, self.model_config_of = ServerArgs, resolved_view, model_config_of
        self.spec_none = SpeculativeAlgorithm.NONE
        self.gpu_mib = 0.0
        self.available_gib = 0.0
        memory_hook.get_device_memory_capacity = lambda device=None: self.gpu_mib
        mamba_hook._platform_supports_mamba_cache_extra_buffer = lambda: True
        kcc.get_available_gpu_memory = lambda *a, **kw: self.available_gib
        self.handle_inputs: list[float] = []
        original = kcc.KVCacheConfigurator._handle_max_mamba_cache

        def recording(kvc: Any, total_rest_memory: float) -> Any:
            self.handle_inputs.append(total_rest_memory)
            return original(kvc, total_rest_memory)

        kcc.KVCacheConfigurator._handle_max_mamba_cache = recording
        self.version = _metadata_version(src, "sglang")

    def resolve(self, model_dir: Path, gpu_mib: float, tp: int, *, language_model_only: bool,
                disable_radix_cache: bool = False, kv_cache_dtype: str = "auto") -> Any:  # fmt: skip
        self.gpu_mib = gpu_mib
        sa = self.ServerArgs(model_path=str(model_dir), device="cuda", tp_size=tp,
                             language_model_only=language_model_only, disable_radix_cache=disable_radix_cache,
                             kv_cache_dtype=kv_cache_dtype)  # fmt: skip
        sa.resolve_once()
        return sa

    def server_settings(self, sa: Any) -> dict[str, Any]:
        r = self.resolved_view(sa)
        mc = self.model_config_of(sa)
        cg = r.cuda_graph_config
        return {
            "mem_fraction_static": r.mem_fraction_static,
            "chunked_prefill_size": r.chunked_prefill_size,
            "decode_cuda_graph_max_bs": cg.decode.max_bs,
            "decode_cuda_graph_backend": str(cg.decode.backend),
            "prefill_cuda_graph_backend": str(cg.prefill.backend),
            "mamba_radix_cache_strategy": getattr(r, "mamba_radix_cache_strategy", None),
            "disable_overlap_schedule": r.disable_overlap_schedule,
            "page_size": r.page_size,
            "is_multimodal": mc.is_multimodal,
            "context_len": mc.context_len,
        }

    def pools(self, sa: Any, *, pre_model_load_gib: float, weights_bytes: int) -> dict[str, Any]:
        import torch

        rc, kcc = self.rc, self.kcc
        tp = sa.tp_size
        rc.publish(sa, role="test", ranks=rc.SpawnRanks(world_rank=0, gpu_id=0))
        rc.get_parallel().override_permanently(world_group=types.SimpleNamespace(cpu_group=None))
        mc = self.model_config_of(sa)
        from sglang.srt.configs.hybrid_arch import mambaish_config

        mamba = mambaish_config(mc)
        params = mamba.mamba2_cache_params
        n_layers = mc.num_hidden_layers
        layer_info = types.SimpleNamespace(is_hybrid_swa_mtp_draft=False, swa_attention_layer_ids=[],
                                           start_layer=0,
                                           end_layer=n_layers, num_effective_layers=n_layers)  # fmt: skip
        kv_dtype = {"auto": torch.bfloat16, "fp8_e4m3": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2,
                    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}[sa.kv_cache_dtype]  # fmt: skip
        kvc = kcc.KVCacheConfigurator(
            device="cuda", gpu_id=0, attn_dp_size=1, pp_size=1, pp_group=None, model=None, model_config=mc,
            server_args=sa, kv_cache_dtype=kv_dtype, model_dtype=torch.bfloat16, page_size=1,
            sliding_window_size=None, spec_algorithm=self.spec_none, is_draft_worker=False,
            post_capture_kv_active=False,
            spec_aux_config=types.SimpleNamespace(draft_model_config=None, dflash_draft_num_layers=None),
            is_hybrid_swa=False, is_hybrid_swa_compress=False, use_mla_backend=False, layer_info=layer_info,
            forward_stream=None, req_to_token_pool=None, token_to_kv_pool_allocator=None,
            memory_pool_config=None, kv_cache_dtype_str=sa.kv_cache_dtype,
        )  # fmt: skip
        from sglang.srt.model_executor.pool_configurator import create_memory_pool_configurator

        cell = create_memory_pool_configurator(kvc)._cell_size
        out: dict[str, Any] = {
            "tp": tp,
            "conv_shape": [list(s) for s in params.shape.conv],
            "temporal_shape": list(params.shape.temporal),
            "conv_dtype": str(params.dtype.conv).removeprefix("torch."),
            "temporal_dtype": str(params.dtype.temporal).removeprefix("torch."),
            "mamba_cache_per_req": params.mamba_cache_per_req,
            "mamba_layers": len(params.layers),
            "kv_cell_bytes": cell,
            "mamba_ratio": kvc._calculate_mamba_ratio(),
            "mamba_full_memory_ratio": rc.get_schedule().mamba_full_memory_ratio,
        }
        self.available_gib = pre_model_load_gib - weights_bytes / (1 << 30)
        self.handle_inputs.clear()
        try:
            conf = kvc._resolve_memory_pool_config(pre_model_load_gib)
        except (RuntimeError, ValueError) as exc:
            out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            out["rest_gib"] = self.handle_inputs[0] if self.handle_inputs else None
            return out
        out.update(
            rest_gib=self.handle_inputs[0],
            max_mamba_cache_size=rc.get_schedule().max_mamba_cache_size,
            max_total_num_tokens=conf.max_total_num_tokens,
            max_running_requests=conf.max_running_requests,
        )
        return out


if __name__ == "__main__":  # pragma: no cover
    sg = Sglang(ensure_source())
    sa = sg.resolve(Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), language_model_only=False)
    print(json.dumps(sg.server_settings(sa), indent=1, default=str))


def _metadata_version(src: Path, dist: str) -> str:
    text = next(src.glob(f"{dist}-*.dist-info/METADATA")).read_text()
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Version:"))
