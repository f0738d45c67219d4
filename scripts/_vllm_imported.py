"""Run vLLM's own KV-cache planning code (imported from the unzipped pinned wheel) for one
Qwen3.5 / Qwen3-Next configuration, without a GPU.

What is real vLLM code here (all imported, none copied):
  ModelConfig / ParallelConfig / CacheConfig / SpeculativeConfig / VllmConfig construction,
  which runs the model config hooks (Qwen3_5ForConditionalGenerationConfig copying
  mamba_ssm_dtype, MambaModelConfig setting mamba_cache_mode / mamba_block_size);
  ModelRegistry.resolve_model_cls + the model classes' get_mamba_state_shape/dtype_from_config;
  Platform.update_block_size_for_backend (-> _align_hybrid_block_size) on the platform class
  in use (CudaPlatform does not override it); Attention.get_kv_cache_spec,
  QwenGatedDeltaNetAttention.get_kv_cache_spec / MambaBase.get_kv_cache_spec;
  GPUModelRunner.get_kv_cache_spec (called with a minimal ``self``);
  resolve_kv_cache_layout; get_global_kv_cache_groups; get_kv_cache_configs (admission check,
  error message, estimated max model len); generate_scheduler_kv_cache_config;
  get_kv_cache_capacity (the "Maximum concurrency" number); EngineArgs.get_batch_defaults.

The stubs are listed in ``_vllm_env.STUBS``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from types import SimpleNamespace

MAX_MODEL_LEN = 262144


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "block size" in msg or "Padding mamba" in msg or "Mamba cache mode" in msg:
            self.lines.append(msg)


_CAPTURE = _Capture()


def _install_capture() -> None:
    lg = logging.getLogger("vllm")
    if lg.getEffectiveLevel() > logging.INFO:
        lg.setLevel(logging.INFO)
    if _CAPTURE not in lg.handlers:
        lg.addHandler(_CAPTURE)


def write_model_dir(model_json: Path, root: Path) -> Path:
    """config.json = the catalog file minus its ``_qwenfit`` key."""
    d = json.loads(Path(model_json).read_text())
    d.pop("_qwenfit", None)
    out = Path(root) / Path(model_json).stem
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(d))
    return out


def get_backend(name: str):
    if name == "FLASH_ATTN":
        from vllm.v1.attention.backends.flash_attn import FlashAttentionBackend

        return FlashAttentionBackend
    if name == "TRITON_ATTN":
        from vllm.v1.attention.backends.triton_attn import TritonAttentionBackend

        return TritonAttentionBackend
    raise ValueError(name)


def build_config(model_dir: Path, tp: int, kv_cache_dtype: str, prefix_caching: bool, num_spec: int):
    from vllm.config import (
        CacheConfig,
        DeviceConfig,
        ModelConfig,
        ParallelConfig,
        SpeculativeConfig,
        VllmConfig,
    )

    mc = ModelConfig(model=str(model_dir), skip_tokenizer_init=True, max_model_len=MAX_MODEL_LEN)
    pc = ParallelConfig(tensor_parallel_size=tp)
    mc.verify_with_parallel_config(pc)  # "Total number of attention heads ... divisible" check
    sc = None
    if num_spec:
        sc = SpeculativeConfig(
            method="mtp", num_speculative_tokens=num_spec, target_model_config=mc, target_parallel_config=pc
        )
    cc = CacheConfig(cache_dtype=kv_cache_dtype, enable_prefix_caching=prefix_caching)
    return VllmConfig(
        model_config=mc,
        cache_config=cc,
        parallel_config=pc,
        device_config=DeviceConfig(device="cuda"),
        speculative_config=sc,
    )


def make_layers(vc, backend_cls, gdn_prefill_backend: str) -> dict:
    """Real layer classes, __init__ skipped (see _vllm_env.STUBS), registered in
    compilation_config.static_forward_context like a constructed model would."""
    import torch
    from vllm.model_executor.layers.attention.attention import Attention
    from vllm.model_executor.layers.mamba.gdn.qwen_gdn_linear_attn import QwenGatedDeltaNetAttention
    from vllm.utils.torch_utils import kv_cache_dtype_str_to_dtype
    from vllm.v1.attention.backend import AttentionType
    from vllm.v1.attention.backends.gdn_attn import FLASHINFER_GDN_CHECKPOINT_ALIGNMENT

    mc, pc, cc = vc.model_config, vc.parallel_config, vc.cache_config
    text = mc.hf_text_config
    tp = pc.tensor_parallel_size
    ctx = vc.compilation_config.static_forward_context
    ctx.clear()

    def attention(prefix: str, draft: bool):
        a = Attention.__new__(Attention)
        torch.nn.Module.__init__(a)
        a.attn_type = AttentionType.DECODER
        a.kv_cache_dtype = cc.cache_dtype
        a.kv_cache_torch_dtype = kv_cache_dtype_str_to_dtype(cc.cache_dtype, mc)
        a.sliding_window = None
        a.num_kv_heads = mc.get_num_kv_heads(pc)
        a.head_size = mc.get_head_size()
        a.head_size_v = a.head_size
        a.attn_backend = backend_cls
        a.kv_sharing_target_layer_name = None
        a.layer_name = prefix
        a.is_draft_layer = draft
        ctx[prefix] = a

    def gdn(prefix: str):
        g = QwenGatedDeltaNetAttention.__new__(QwenGatedDeltaNetAttention)
        torch.nn.Module.__init__(g)
        g.tp_size = tp
        g.num_k_heads = text.linear_num_key_heads
        g.num_v_heads = text.linear_num_value_heads
        g.head_k_dim = text.linear_key_head_dim
        g.head_v_dim = text.linear_value_head_dim
        g.conv_kernel_size = text.linear_conv_kernel_dim
        g.num_spec = vc.speculative_config.num_speculative_tokens if vc.speculative_config else 0
        g.model_config = mc
        g.cache_config = cc
        g.vllm_config = vc
        g.speculative_config = vc.speculative_config
        # QwenGatedDeltaNetAttention.__init__: FlashInfer GDN prefill in align mode exports
        # mid-prefill checkpoints on a 64-token grid; Triton/FLA does not (None).
        g._checkpoint_alignment = None
        if cc.mamba_cache_mode == "align" and gdn_prefill_backend == "flashinfer":
            g._checkpoint_alignment = FLASHINFER_GDN_CHECKPOINT_ALIGNMENT
            g._max_num_batched_tokens = vc.scheduler_config.max_num_batched_tokens
        ctx[prefix] = g

    layer_types = list(text.layer_types)
    for i, lt in enumerate(layer_types):
        if lt == "full_attention":
            attention(f"language_model.model.layers.{i}.self_attn.attn", False)
        elif lt == "linear_attention":
            gdn(f"language_model.model.layers.{i}.linear_attn")
        else:
            raise ValueError(lt)
    n_draft = 0
    if vc.speculative_config is not None:
        dtext = vc.speculative_config.draft_model_config.hf_text_config
        if mc.architecture == "Qwen3NextForCausalLM":
            n_draft = getattr(dtext, "num_nextn_predict_layers", 1)  # qwen3_next_mtp.py
        else:
            n_draft = getattr(dtext, "mtp_num_hidden_layers", 1)  # qwen3_5_mtp.py
        for j in range(n_draft):
            attention(f"mtp.layers.{j}.self_attn.attn", True)
    return {
        "layer_types": layer_types,
        "n_full": layer_types.count("full_attention"),
        "n_gdn": layer_types.count("linear_attention"),
        "n_draft": n_draft,
    }


def compute(
    model_dir: Path,
    tp: int,
    kv_cache_dtype: str,
    prefix_caching: bool,
    num_spec: int,
    gdn_prefill_backend: str,
    backend_name: str,
    pools,
) -> dict:
    """Everything the fixtures record, from vLLM itself."""
    from vllm.config import set_current_vllm_config
    from vllm.platforms import current_platform
    from vllm.utils.torch_utils import get_dtype_size
    from vllm.v1.attention.backends.gdn_attn import GDNAttentionBackend
    from vllm.v1.attention.backends.utils import get_supported_kv_cache_layouts, resolve_kv_cache_layout
    from vllm.v1.core.kv_cache_config_builder import get_kv_cache_config_builder
    from vllm.v1.core.kv_cache_planning import (
        _max_memory_usage_bytes_from_groups,
        _pool_bytes_per_block_from_builder,
        get_global_kv_cache_groups,
        get_kv_cache_configs,
    )
    from vllm.v1.core.kv_cache_utils import generate_scheduler_kv_cache_config, get_kv_cache_capacity
    from vllm.v1.kv_cache_interface import FullAttentionSpec, MambaSpec
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    _install_capture()
    _CAPTURE.lines.clear()
    backend_cls = get_backend(backend_name)
    vc = build_config(model_dir, tp, kv_cache_dtype, prefix_caching, num_spec)
    mc, pc, cc = vc.model_config, vc.parallel_config, vc.cache_config
    info = make_layers(vc, backend_cls, gdn_prefill_backend)

    # What the model class says the state is (used by _align_hybrid_block_size)
    from vllm.model_executor.models import ModelRegistry

    model_cls, _ = ModelRegistry.resolve_model_cls(mc.architecture, model_config=mc)
    shapes = model_cls.get_mamba_state_shape_from_config(vc)
    dtypes = model_cls.get_mamba_state_dtype_from_config(vc)

    from vllm.utils.torch_utils import kv_cache_dtype_str_to_dtype
    from vllm.v1.kv_cache_interface import get_kv_quant_mode

    attn_1tok = FullAttentionSpec(
        block_size=1,
        num_kv_heads=mc.get_num_kv_heads(pc),
        head_size=mc.get_head_size(),
        dtype=kv_cache_dtype_str_to_dtype(kv_cache_dtype, mc),
        kv_quant_mode=get_kv_quant_mode(kv_cache_dtype),
    ).page_size_bytes
    mamba_unpadded = MambaSpec(shapes=shapes, dtypes=dtypes, block_size=-1).page_size_bytes

    current_platform.update_block_size_for_backend(vc)

    with set_current_vllm_config(vc):
        runner = SimpleNamespace(vllm_config=vc, shared_kv_cache_layers={})
        specs = GPUModelRunner.get_kv_cache_spec(runner)
        layout = resolve_kv_cache_layout(
            vc,
            [[lay.name for lay in get_supported_kv_cache_layouts([backend_cls, GDNAttentionBackend])]],
            list(specs.values()),
        )
        groups = get_global_kv_cache_groups(vc, [specs])
        builder = get_kv_cache_config_builder(vc)
        bytes_per_block = _pool_bytes_per_block_from_builder(builder, vc, groups)
        one_req = _max_memory_usage_bytes_from_groups(builder, vc, groups)

        group_desc = []
        for g in groups:
            s = g.kv_cache_spec
            group_desc.append(
                {
                    "kind": "mamba" if isinstance(s, MambaSpec) else "attention",
                    "n_layers": len(g.layer_names),
                    "n_draft": sum(1 for n in g.layer_names if n.startswith("mtp.")),
                    "block_size": s.block_size,
                    "page_bytes": s.page_size_bytes,
                    "blocks_per_request": -(-s.max_memory_usage_bytes(vc) // s.page_size_bytes),
                }
            )

        pool_results = []
        for pool in pools() if callable(pools) else pools:
            try:
                cfgs = get_kv_cache_configs(vc, [specs], [pool], groups)
            except ValueError as e:
                msg = str(e)
                est = None
                if "estimated maximum model length is " in msg:
                    est = int(msg.split("estimated maximum model length is ")[1].split(".")[0])
                pool_results.append({"pool_bytes": pool, "error": msg, "estimated_max_model_len": est})
                continue
            sched = generate_scheduler_kv_cache_config(cfgs)
            tokens, conc = get_kv_cache_capacity(vc, sched)
            pool_results.append(
                {
                    "pool_bytes": pool,
                    "num_blocks": sched.num_blocks,
                    "max_concurrency": conc,
                    "kv_cache_size_tokens": tokens,
                }
            )

    attn_specs = [s for s in specs.values() if not isinstance(s, MambaSpec)]
    mamba_specs = [s for s in specs.values() if isinstance(s, MambaSpec)]
    ms = mamba_specs[0]
    return {
        "architecture": mc.architecture,
        "model_dtype": str(mc.dtype).replace("torch.", ""),
        "mamba_cache_mode": cc.mamba_cache_mode,
        "mamba_cache_dtype": cc.mamba_cache_dtype,
        "mamba_ssm_cache_dtype": cc.mamba_ssm_cache_dtype,
        "mamba_block_size": cc.mamba_block_size,
        "block_size": cc.block_size,
        "mamba_page_size_padded": cc.mamba_page_size_padded,
        "num_kv_heads_per_rank": mc.get_num_kv_heads(pc),
        "head_size": mc.get_head_size(),
        "attn_page_bytes_per_token": attn_1tok,
        "state_shapes": [list(x) for x in shapes],
        "state_dtypes": [str(d).replace("torch.", "") for d in dtypes],
        "state_dtype_bytes": [get_dtype_size(d) for d in dtypes],
        "mamba_page_bytes_unpadded": mamba_unpadded,
        "layer_spec_shapes": [list(x) for x in ms.shapes],
        "mamba_spec_page_bytes": ms.page_size_bytes,
        "num_speculative_blocks": ms.num_speculative_blocks,
        "num_prefill_checkpoint_blocks": ms.num_prefill_checkpoint_blocks,
        "attn_spec_page_bytes": attn_specs[0].page_size_bytes,
        "attn_block_stride_alignment": str(attn_specs[0].block_stride_alignment),
        "kv_cache_layout": layout.name,
        "groups": group_desc,
        "bytes_per_block": bytes_per_block,
        "bytes_one_request": one_req,
        "pools": pool_results,
        "log": list(_CAPTURE.lines),
        **info,
    }


def batch_defaults() -> list[dict]:
    """EngineArgs.get_batch_defaults for a few GPUs (device name / memory / capability patched
    onto the platform object, nothing else)."""
    from vllm.engine.arg_utils import EngineArgs
    from vllm.platforms import current_platform
    from vllm.usage.usage_lib import UsageContext

    gib = 1 << 30
    gpus = [
        ("NVIDIA GeForce RTX 4090", 24 * gib, (8, 9)),
        ("NVIDIA A100-SXM4-80GB", 80 * gib, (8, 0)),
        ("NVIDIA H100 80GB HBM3", 80 * gib, (9, 0)),
        ("NVIDIA H200", 141 * gib, (9, 0)),
        ("NVIDIA B200", 180 * gib, (10, 0)),
        ("NVIDIA GB10", 120 * gib, (12, 1)),
    ]
    out = []
    cls = type(current_platform)
    saved = {
        k: cls.__dict__.get(k) for k in ("get_device_total_memory", "get_device_name", "is_device_capability")
    }
    try:
        for name, mem, cap in gpus:
            cls.get_device_total_memory = classmethod(lambda c, device_id=0, _m=mem: _m)
            cls.get_device_name = classmethod(lambda c, device_id=0, _n=name: _n)
            cls.is_device_capability = classmethod(
                lambda c, capability, device_id=0, _cap=cap: tuple(capability) == _cap
            )
            mnbt, mns = EngineArgs.get_batch_defaults(world_size=1)
            out.append(
                {
                    "gpu": name,
                    "memory_gib": mem // gib,
                    "max_num_batched_tokens": {
                        "LLM": mnbt[UsageContext.LLM_CLASS],
                        "api_server": mnbt[UsageContext.OPENAI_API_SERVER],
                    },
                    "max_num_seqs": {
                        "LLM": mns[UsageContext.LLM_CLASS],
                        "api_server": mns[UsageContext.OPENAI_API_SERVER],
                    },
                }
            )
    finally:
        for k, v in saved.items():
            if v is None:
                if k in cls.__dict__:
                    delattr(cls, k)
            else:
                setattr(cls, k, v)
    return out


def other_defaults(model_dir: Path) -> dict:
    from vllm.config import CacheConfig, ModelConfig, SchedulerConfig

    mc = ModelConfig(model=str(model_dir), skip_tokenizer_init=True)
    cc = CacheConfig()
    return {
        "gpu_memory_utilization": cc.gpu_memory_utilization,
        "block_size": cc.block_size,
        "DEFAULT_BLOCK_SIZE": CacheConfig.DEFAULT_BLOCK_SIZE,
        "cache_dtype": cc.cache_dtype,
        "mamba_cache_dtype": cc.mamba_cache_dtype,
        "mamba_ssm_cache_dtype_cli": cc.mamba_ssm_cache_dtype,
        "enable_prefix_caching_engine_default_for_qwen35": mc.is_prefix_caching_supported,
        "max_model_len_derived": mc.max_model_len,
        "SchedulerConfig.DEFAULT_MAX_NUM_SEQS": SchedulerConfig.DEFAULT_MAX_NUM_SEQS,
        "SchedulerConfig.DEFAULT_MAX_NUM_BATCHED_TOKENS": SchedulerConfig.DEFAULT_MAX_NUM_BATCHED_TOKENS,
    }


def tmp_models_root() -> Path:
    return Path(tempfile.mkdtemp(prefix="qwenfit-vllm-models-"))
