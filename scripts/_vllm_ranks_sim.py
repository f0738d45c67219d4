"""Build vLLM's own Qwen3.5 / Qwen3-Next model classes on the meta device, one simulated rank at a
time, and count the bytes of every parameter and buffer the rank allocates.

Runs inside the vLLM venv (see ``_vllm_env``); nothing from vLLM is copied. One process simulates one
GPU kind (the MoE kernel oracle depends on the compute capability), so ``bootstrap`` is called once.

What is real vLLM code: ``ModelConfig`` / ``ParallelConfig`` / ``VllmConfig`` (the model config hooks,
``verify_with_parallel_config``), ``initialize_model`` and everything a model ``__init__`` runs:
``make_layers`` + ``get_pp_indices`` + ``PPMissingLayer``, ``_mark_tower_model`` (vision tower on which
PP stage), ``VocabParallelEmbedding`` / ``ParallelLMHead`` (vocab padding), ``QKVParallelLinear`` (KV
head replication), ``MergedColumnParallelLinear`` / ``ColumnParallelLinear`` / ``RowParallelLinear`` /
``ReplicatedLinear``, the Gated DeltaNet layer, ``FusedMoEParallelConfig.make`` (TP across DP, EP),
``determine_expert_map``, the unquantized / FP8 MoE backend oracle and its size round-up, the quant
methods' ``create_weights``; for MTP, ``SpeculativeConfig`` and the drafter class.

The stubs (each needed because there is no GPU and no process group) are listed in ``STUBS`` and
recorded in the fixture.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import pkgutil
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _vllm_env as env  # noqa: E402

# The GPUs simulated: the compute capability drives vLLM's MoE kernel choice (and its size
# round-up); flashinfer-python is a hard dependency of the vllm 0.33.0 wheel (METADATA
# Requires-Dist: flashinfer-python==0.7.2.post1), so its MoE kernels count as installed.
GPUS = {
    "H100": {"capability": [9, 0], "name": "NVIDIA H100 80GB HBM3"},
    "B200": {"capability": [10, 0], "name": "NVIDIA B200"},
}

STUBS = [
    *env.STUBS[:2],
    "parallel state: vllm.distributed.parallel_state._TP/_PP/_DP/_EP/_PCP/_DCP/_WORLD are "
    "GroupCoordinator objects made without __init__ (no torch.distributed): world_size, "
    "rank_in_group, rank, ranks=range(world_size) (so is_first_rank/is_last_rank are vLLM's own "
    "properties) and a device_group whose size()/rank() return the same. EP group = TP x DP "
    "(rank dp_rank*tp + tp_rank), as vLLM builds it. One process simulates every rank in turn",
    "meta device: the model is built under torch.device('meta') and set_default_torch_dtype("
    "model dtype), as BaseModelLoader.load_model does with the CUDA device; "
    "current_platform.current_device() (read by the Gated DeltaNet's RMSNormGated) returns meta",
    "attention backend: the platform's get_attn_backend_cls returns vLLM's FlashAttentionBackend "
    "(attention layers own no weights, only 4 fp32 scale buffers)",
    "MoE kernel oracle: the modules under vllm/model_executor/layers/fused_moe/oracle and "
    "/experts see a CUDA platform of the simulated compute capability (their module-level "
    "current_platform is a view whose _enum is CUDA, with the capability and CudaPlatformBase's "
    "supports_fp8); flashinfer availability probes "
    "(has_flashinfer*, imported by name into those modules) return True. The rest of vLLM keeps "
    "the UnspecifiedPlatform of the CPU-only machine",
    "VLLM_USE_V2_MODEL_RUNNER=1 (the default on a CUDA machine with Triton, VllmConfig."
    "use_v2_model_runner); the V1 runner is measured separately for the vision-tower placement",
    "FP8: config.json gets Qwen's official quantization_config (quant_method fp8, "
    "weight_block_size [128, 128]); modules_to_not_convert lists every checkpoint module "
    "qwenfit's 'fp8' format keeps unquantized (shared/reference/quant-formats.md §4.2), by full HF "
    "name. Fp8LinearMethod's ScaledMM kernel choice (init_fp8_linear_kernel, made in create_weights "
    "after the parameters exist, probing CUDA ops) is replaced by a placeholder. Weights are "
    "counted as created, before process_weights_after_loading",
]

_BOOT: dict = {}


def bootstrap(gpu: str, v2_runner: bool = True):
    """Import vLLM from the pinned wheel and apply the stubs for GPU kind ``gpu``. Once per process."""
    if _BOOT:
        if _BOOT["gpu"] != gpu or _BOOT["v2"] != v2_runner:
            raise RuntimeError("one simulated GPU kind / runner per process")
        return _BOOT
    os.environ["VLLM_USE_V2_MODEL_RUNNER"] = "1" if v2_runner else "0"
    src = env.ensure_source(env.VLLM_PIN, Path(os.environ.get("QWENFIT_VLLM_CACHE", env.DEFAULT_CACHE)))
    env.bootstrap(src)
    import torch

    # import everything the constructors touch before any platform view exists
    import vllm.model_executor.layers.fused_moe.experts as experts_pkg
    import vllm.model_executor.layers.fused_moe.oracle as oracle_pkg
    import vllm.model_executor.layers.quantization.online.fp8
    import vllm.model_executor.models.qwen3_5
    import vllm.model_executor.models.qwen3_5_mtp
    import vllm.model_executor.models.qwen3_next
    import vllm.model_executor.models.qwen3_next_mtp  # noqa: F401
    from vllm.platforms import current_platform
    from vllm.platforms.interface import DeviceCapability, PlatformEnum, UnspecifiedPlatform

    cap = GPUS[gpu]["capability"]
    name = GPUS[gpu]["name"]

    class SimCudaView(UnspecifiedPlatform):
        _enum = PlatformEnum.CUDA
        device_name = "cuda"
        device_type = "cuda"

        @classmethod
        def get_device_capability(cls, device_id: int = 0):
            return DeviceCapability(*cap)

        @classmethod
        def get_device_name(cls, device_id: int = 0) -> str:
            return name

        @classmethod
        def supports_fp8(cls) -> bool:  # CudaPlatformBase.supports_fp8
            return cls.has_device_capability(89)

    view = SimCudaView()
    patched = []
    for pkg in (oracle_pkg, experts_pkg):
        for mi in pkgutil.iter_modules(pkg.__path__):
            try:
                mod = importlib.import_module(f"{pkg.__name__}.{mi.name}")
            except Exception:  # kernels whose imports need CUDA wheels (none of them is selected)
                continue
            if hasattr(mod, "current_platform"):
                mod.current_platform = view
                patched.append(mod.__name__)
            for fn in [n for n in vars(mod) if n.startswith("has_flashinfer")]:
                setattr(mod, fn, lambda: True)
    # FP8 linear: the ScaledMM kernel is picked in create_weights, after the weight and scale
    # parameters exist; the candidates probe CUDA ops, so the choice is replaced by a placeholder
    import vllm.model_executor.layers.quantization.fp8 as fp8_mod

    fp8_mod.init_fp8_linear_kernel = lambda *a, **k: None
    cls = type(current_platform)
    cls.current_device = classmethod(lambda c: torch.device("meta"))
    cls.get_attn_backend_cls = classmethod(
        lambda c, *a, **k: "vllm.v1.attention.backends.flash_attn.FlashAttentionBackend"
    )
    _BOOT.update(gpu=gpu, v2=v2_runner, src=src, patched=patched)
    return _BOOT


# --------------------------------------------------------------------------------------------------
# parallel state


def _group(name: str, size: int, rank: int):
    from vllm.distributed.parallel_state import GroupCoordinator

    class _PG:
        def size(self) -> int:
            return size

        def rank(self) -> int:
            return rank

    g = GroupCoordinator.__new__(GroupCoordinator)
    g.unique_name = name
    g.rank = rank
    g.ranks = list(range(size))
    g.world_size = size
    g.rank_in_group = rank
    g.local_rank = rank
    g.device_group = _PG()
    g.cpu_group = _PG()
    g.use_device_communicator = False
    g.device_communicator = None
    g.mq_broadcaster = None
    return g


def set_parallel_state(tp: int, tp_rank: int, pp: int, pp_rank: int, dp: int = 1, dp_rank: int = 0) -> None:
    from vllm.distributed import parallel_state as ps

    ps._TP = _group("tp", tp, tp_rank)
    ps._PP = _group("pp", pp, pp_rank)
    ps._DP = _group("dp", dp, dp_rank)
    ps._PCP = _group("pcp", 1, 0)
    ps._DCP = _group("dcp", 1, 0)
    ps._EP = _group("ep", tp * dp, dp_rank * tp + tp_rank)
    ps._WORLD = _group("world", tp * pp * dp, (dp_rank * pp + pp_rank) * tp + tp_rank)


# --------------------------------------------------------------------------------------------------
# configs


def write_model_dir(model_json: Path, root: Path, quant: str, not_convert: list[str] | None = None) -> Path:
    """config.json = the catalog file minus ``_qwenfit``; for ``fp8`` plus the quantization_config of
    Qwen's official FP8 checkpoints, with the checkpoint's full ``modules_to_not_convert`` list
    (``not_convert``: HF module names; vLLM's Fp8Config matches them exactly after its name mapping)."""
    d = json.loads(Path(model_json).read_text())
    d.pop("_qwenfit", None)
    if quant == "fp8":
        d["quantization_config"] = {
            "quant_method": "fp8",
            "fmt": "e4m3",
            "activation_scheme": "dynamic",
            "weight_block_size": [128, 128],
            "modules_to_not_convert": not_convert or [],
        }
    elif quant != "bf16":
        raise ValueError(quant)
    out = Path(root) / f"{Path(model_json).stem}-{quant}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(d))
    return out


_ROOT = Path(tempfile.mkdtemp(prefix="qwenfit-vllm-ranks-"))
atexit.register(shutil.rmtree, _ROOT, True)


def vllm_config(
    model_json: Path,
    quant: str,
    tp: int,
    pp: int,
    dp: int,
    ep: bool,
    mtp: bool = False,
    not_convert: list[str] | None = None,
):
    from vllm.config import DeviceConfig, ModelConfig, ParallelConfig, SpeculativeConfig, VllmConfig

    mdir = write_model_dir(model_json, _ROOT, quant, not_convert)
    mc = ModelConfig(model=str(mdir), skip_tokenizer_init=True, max_model_len=4096)
    pc = ParallelConfig(
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        data_parallel_size=dp,
        enable_expert_parallel=ep,
    )
    mc.verify_with_parallel_config(pc)
    sc = None
    if mtp:
        sc = SpeculativeConfig(
            method="mtp", num_speculative_tokens=1, target_model_config=mc, target_parallel_config=pc
        )
    return VllmConfig(
        model_config=mc, parallel_config=pc, device_config=DeviceConfig(device="cuda"), speculative_config=sc
    )


# --------------------------------------------------------------------------------------------------
# measuring


def _classify(name: str) -> str:
    if name.startswith("visual."):
        return "vision"
    if "embed_tokens" in name:
        return "embed"
    if "lm_head" in name:
        return "lm_head"
    if ".experts." in name and ("w13_" in name or "w2_" in name):
        return "routed_experts"
    return "other"


def count(model) -> dict:
    """Bytes of the rank's parameters (deduplicated: a tied lm_head counts once) and buffers."""
    by: dict[str, int] = {}
    dtypes: dict[str, int] = {}
    for n, p in model.named_parameters():
        b = p.numel() * p.element_size()
        k = _classify(n)
        by[k] = by.get(k, 0) + b
        dt = str(p.dtype).replace("torch.", "")
        dtypes[dt] = dtypes.get(dt, 0) + b
    buffers = 0
    large: dict[str, dict] = {}
    for n, b in model.named_buffers():
        buffers += b.numel() * b.element_size()
        if b.numel() > 1:
            e = large.setdefault(
                re.sub(r"\.\d+\.", ".N.", n),
                {"shape": list(b.shape), "dtype": str(b.dtype)[6:], "count": 0, "bytes": 0},
            )
            e["count"] += 1
            e["bytes"] += b.numel() * b.element_size()
    return {
        "param_bytes": sum(by.values()),
        "by_kind": by,
        "by_dtype": dtypes,
        "buffer_bytes": buffers,
        "large_buffers": large,
    }


def _moe_info(model) -> dict | None:
    for mod in model.modules():
        qm = getattr(mod, "quant_method", None)
        if qm is not None and hasattr(mod, "w13_weight") and hasattr(mod, "moe_config"):
            mc = mod.moe_config
            pc = mc.moe_parallel_config
            backend = getattr(qm, "unquantized_backend", None) or getattr(qm, "fp8_backend", None)
            if backend is None:
                backend = next((getattr(qm, a) for a in vars(qm) if a.endswith("backend")), None)
            return {
                "backend": getattr(backend, "value", str(backend)),
                "local_experts": int(mod.w13_weight.shape[0]),
                "moe_tp": pc.tp_size,
                "moe_ep": pc.ep_size,
                "intermediate_per_partition": mc.intermediate_size_per_partition,
                "intermediate_per_partition_unpadded": mc.intermediate_size_per_partition_unpadded,
                "hidden": mc.hidden_dim,
            }
    return None


def build(vc):
    import torch
    from vllm.model_executor.model_loader.utils import initialize_model
    from vllm.utils.torch_utils import set_default_torch_dtype

    vc.compilation_config.static_forward_context.clear()
    with set_default_torch_dtype(vc.model_config.dtype), torch.device("meta"):
        return initialize_model(vllm_config=vc)


def build_drafter(vc):
    import torch
    from vllm.model_executor.model_loader.utils import initialize_model
    from vllm.utils.torch_utils import set_default_torch_dtype

    sc = vc.speculative_config
    dvc = sc.apply_draft_overrides(vc)
    dvc.compilation_config.static_forward_context.clear()
    with set_default_torch_dtype(sc.draft_model_config.dtype), torch.device("meta"):
        return initialize_model(vllm_config=dvc, model_config=sc.draft_model_config)


def measure_rank(vc, tp_rank: int, pp_rank: int, dp_rank: int) -> dict:
    pc = vc.parallel_config
    set_parallel_state(
        pc.tensor_parallel_size, tp_rank, pc.pipeline_parallel_size, pp_rank, pc.data_parallel_size, dp_rank
    )
    model = build(vc)
    lm = model.language_model.model if hasattr(model, "language_model") else model.model
    out = count(model)
    out["layers"] = [lm.start_layer, lm.end_layer]
    out["moe"] = _moe_info(model)
    del model
    return out


def measure_drafter(vc, tp_rank: int, dp_rank: int) -> dict:
    """The MTP drafter as built on the last PP stage (V1 and V2 runners build it there only)."""
    pc = vc.parallel_config
    set_parallel_state(
        pc.tensor_parallel_size,
        tp_rank,
        pc.pipeline_parallel_size,
        pc.pipeline_parallel_size - 1,
        pc.data_parallel_size,
        dp_rank,
    )
    model = build_drafter(vc)
    out = count(model)
    out["architecture"] = type(model).__name__
    out["moe"] = _moe_info(model)
    del model
    return out


def worker(jobs: list[dict], gpu: str, v2_runner: bool = True) -> list[dict]:
    """Run measurement jobs: {model_json, quant, tp, pp, dp, ep, ranks: [[tp_rank, pp_rank, dp_rank]],
    mtp: bool}. A config vLLM rejects yields {"error": ...}."""
    bootstrap(gpu, v2_runner)
    results = []
    for job in jobs:
        res = dict(job)
        try:
            vc = vllm_config(
                Path(job["model_json"]),
                job["quant"],
                job["tp"],
                job["pp"],
                job["dp"],
                job["ep"],
                mtp=job.get("mtp", False),
                not_convert=job.get("not_convert"),
            )
            if job.get("mtp"):
                res["ranks"] = [
                    {"tp_rank": t, "dp_rank": d, **measure_drafter(vc, t, d)} for t, _, d in job["ranks"]
                ]
            else:
                res["ranks"] = [
                    {"tp_rank": t, "pp_rank": p, "dp_rank": d, **measure_rank(vc, t, p, d)}
                    for t, p, d in job["ranks"]
                ]
        except Exception as e:  # vLLM refusing the configuration is a result too
            res["error"] = (
                f"{type(e).__name__}: {str(e).splitlines()[0][:300]}" if str(e) else type(e).__name__
            )
            res.pop("ranks", None)
        results.append(res)
    return results


if __name__ == "__main__":  # python _vllm_ranks_sim.py GPU V2(0/1) JOBS.json OUT.json
    jobs = json.loads(Path(sys.argv[3]).read_text())
    Path(sys.argv[4]).write_text(json.dumps(worker(jobs, sys.argv[1], sys.argv[2] == "1")))
