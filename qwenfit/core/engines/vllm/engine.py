"""vLLM as an engine: options (TP/PP/DP/EP, gpu_memory_utilization, prefix caching), the budget rule,
the terms of the fullest rank, refusals in vLLM's words, tensor/pipeline-parallel placement, the
``vllm serve`` command, speed constants and what the calculator needs.

Weights per rank: :mod:`.weights` (vLLM 0.33.0's allocation, measured on 4,546 ranks); the KV pool:
:mod:`.pool` (vLLM's block and page arithmetic, 528/528 against its own code). ``context`` is vLLM's
``max_model_len``: tokens per request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from qwenfit.core.command import Cmd
from qwenfit.core.engines.base import (
    Artifact,
    Deployment,
    Engine,
    FormulaPlacement,
    Judge,
    Placement,
    SpeedConstants,
    option_field,
)
from qwenfit.core.engines.vllm.kv_dtypes import kv_dtype, kv_dtype_backend
from qwenfit.core.engines.vllm.pool import (
    BATCH_TIERS,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    KV_CACHE_DTYPES,
    PoolPlan,
    batch_tier,
    check_tp,
    pick_tier,
    plan_pool,
    pp_partitions,
    small_batch_device,
)
from qwenfit.core.engines.vllm.quant_weights import vllm_format_of
from qwenfit.core.engines.vllm.rank_inputs import stage_weights
from qwenfit.core.engines.vllm.runtime import (
    ProfilePeak,
    cudagraph_memory_bytes,
    cudagraph_plan,
    flashinfer_workspace_bytes,
    profile_peak,
)
from qwenfit.core.engines.vllm.verify import unsplit_verify_flops
from qwenfit.core.engines.vllm.weights import mrope_positions_factor
from qwenfit.core.expr import Expr, Num, as_int, lt, where
from qwenfit.core.formats.gpu import gpu_weights
from qwenfit.core.terms import Term
from qwenfit.core.units import GIB
from qwenfit.errors import SettingError

if TYPE_CHECKING:
    from qwenfit.core.formats.weights import WeightMap
    from qwenfit.core.hardware import Device, Machine
    from qwenfit.core.model.spec import ModelSpec

__all__ = ["TP_SIZES", "VLLM", "Vllm", "VllmOptions", "tp_sizes"]

TP_SIZES = (1, 2, 4, 8)
SRC_POOL = "vLLM 0.33.0 kv_cache_interface / kv_cache_planning (tests/fixtures/vllm)"


@dataclass(frozen=True, slots=True)
class VllmOptions:
    """``vllm serve`` flags that change memory."""

    tp: int = option_field(1, "--tensor-parallel-size", check="positive")
    pp: int = option_field(1, "--pipeline-parallel-size", check="positive")
    dp: int = option_field(1, "--data-parallel-size", check="positive")
    expert_parallel: bool = option_field(False, "--enable-expert-parallel", check="bool")
    prefix_caching: bool = option_field(
        True, "--enable-prefix-caching (on by default for Qwen3.5)", check="bool"
    )
    gpu_memory_utilization: float = option_field(
        DEFAULT_GPU_MEMORY_UTILIZATION, "--gpu-memory-utilization", check="fraction"
    )
    max_num_batched_tokens: int | None = option_field(
        None, "--max-num-batched-tokens (default: vLLM's per-device value, 2048 / 8192 / 16384)",
        check="positive_or_none",
    )  # fmt: skip
    max_num_seqs: int | None = option_field(
        None, "--max-num-seqs (default: the sequences planned for, or vLLM's 256 / 1024 when fewer than 2)",
        check="positive_or_none",
    )  # fmt: skip
    speculative_tokens: int = option_field(
        1, "num_speculative_tokens of --speculative-config (with mtp=True)", check="positive"
    )
    enforce_eager: bool = option_field(False, "--enforce-eager: no CUDA graphs", check="bool")
    engine_version: str | None = option_field(
        None, "the vLLM version, e.g. '0.19.0' (None: 0.33.0, the version modelled)"
    )


def _capability(sm: str | None) -> tuple[int, int] | None:
    """A compute capability "8.6" as (8, 6); None when the deployment names no NVIDIA GPU."""
    m = re.match(r"^(\d+)\.(\d+)$", sm or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def sm8x(cap: tuple[int, int] | None) -> int:
    """1 on a GPU that runs FP8 and GPTQ linears through Marlin (compute capability 7.5-8.8: no FP8
    tensor cores, no Machete; kernels/linear/scaled_mm/marlin.py, quantization/utils/marlin_utils_fp8.py)."""
    return int(cap is not None and (7, 5) <= cap < (8, 9))


def vllm_version(version: str | None) -> tuple[int, int] | None:
    """(major, minor) of a vLLM version string ("0.19.0", "v0.21.1"); None: the modelled 0.33."""
    if version is None:
        return None
    m = re.match(r"^v?(\d+)\.(\d+)(?:[.\w+-]*)$", str(version).strip())
    if not m:
        raise SettingError(f"vllm engine_version {version!r}: give a version such as '0.33.0'")
    return int(m.group(1)), int(m.group(2))


def graphs_in_budget(version: str | None) -> bool:
    """vLLM subtracts its CUDA-graph estimate from the KV budget from 0.21 on
    (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS, envs.py:2219); before, graphs were captured after."""
    v = vllm_version(version)
    return v is None or v >= (0, 21)


def attention_backend(d: Deployment, sm100: bool = False) -> str:
    """The attention backend vLLM selects for the deployment's KV dtype (platforms/cuda.py:84
    _get_backend_priorities, measured per capability in tests/fixtures/vllm/qwen35_kv_dtypes.json):
    exact where the GPU is named; without one, FLASHINFER on SM100 (``sm100``) or with a quantized KV
    cache (every capability but 9.0 picks it for fp8), else FLASH_ATTN."""
    kv = d.kv_cache or "auto"
    cap = _capability(d.gpu_sm)
    if cap is not None:
        try:
            return kv_dtype_backend(kv, cap)
        except SettingError:
            return ""
    if sm100 or kv not in ("auto", "bfloat16", "float16"):
        return "FLASHINFER"
    return "FLASH_ATTN"


def _select(choose: Callable[[list[Num]], Num], peaks: Sequence[ProfilePeak]) -> ProfilePeak:
    """One profile peak out of alternatives (device tiers, GPU generations), part by part."""
    return ProfilePeak(
        persistent=choose([p.persistent for p in peaks]),
        forward=choose([p.forward for p in peaks]),
        sampler=choose([p.sampler for p in peaks]),
        encoder=choose([p.encoder for p in peaks]),
        encoder_output=choose([p.encoder_output for p in peaks]),
        non_torch=peaks[0].non_torch,
    )


def tp_sizes(spec: ModelSpec, n_gpus: int) -> list[int]:
    """Tensor-parallel sizes vLLM (and SGLang) accept for ``spec`` on ``n_gpus``, largest first."""
    out = []
    for tp in (8, 4, 2, 1):
        if tp > max(n_gpus, 1):
            continue
        try:
            check_tp(spec, tp)
        except ValueError:
            continue
        out.append(tp)
    return out


class Vllm(Engine):
    """vLLM 0.33.0 (V1 engine), one node or pipeline stages over several."""

    name = "vllm"
    weights_family = "safetensors"
    kv_types = tuple(KV_CACHE_DTYPES)
    calc_kv_types = ("auto", "fp8")
    default_quant = "bf16"
    planner_quants = ("bf16", "fp8")
    # no FP8 checkpoint published (the small models): vLLM quantizes the BF16 one on load (Fp8Config with
    # is_checkpoint_fp8_serialized False: per-tensor FP8 weights; priced as Qwen's FP8 recipe, estimated)
    online_quant: ClassVar[Mapping[str, str]] = {"fp8": "--quantization fp8"}
    fallback_quants = ("bf16", "fp8", "w8a16", "awq", "gptq", "nvfp4")
    max_sequences = 4096
    context_beyond_native = True  # with --hf-overrides rope_scaling (YaRN)
    loads_vision_by_default = True  # vLLM builds the tower unless --language-model-only
    Options = VllmOptions
    traced_options = frozenset({"gpu_memory_utilization"})  # util_bp, a hardware input
    speed = SpeedConstants(
        "vllm", 1000, {"cuda": 50, "rocm": 80}, {"cuda": 0.50, "rocm": 0.50}, fitted=("vllm",), ubatch=8192
    )

    def mtp_drafts(self, settings: Mapping[str, Any]) -> int:
        return int(settings.get("speculative_tokens") or 1)

    def verify_flops(self, settings: Mapping[str, Any], device: Device | None, spec: ModelSpec) -> int:
        cap = _capability(None if device is None else device.compute_capability)
        t = spec.text
        return unsplit_verify_flops(settings.get("kv_cache"), cap, t.head_dim, t.n_full_attention)

    def check(self, spec: ModelSpec, d: Deployment, o: Any) -> None:
        if d.kv_cache is not None and d.kv_cache != "auto":
            # vLLM's own answer, per GPU generation where the deployment names the GPU
            kv_dtype(d.kv_cache, model_dtype=spec.text.dtype, capability=_capability(d.gpu_sm))
        super().check(spec, d, o)
        if o.pp > spec.text.num_hidden_layers:
            raise SettingError(
                f"pp={o.pp} is more pipeline stages than {spec.name}'s {spec.text.num_hidden_layers} layers"
            )
        if o.expert_parallel and not spec.is_moe:
            raise SettingError(f"expert_parallel: {spec.name} is a dense model")
        if o.max_num_seqs is not None and isinstance(d.sequences, int) and o.max_num_seqs < d.sequences:
            raise SettingError(
                f"max_num_seqs={o.max_num_seqs} runs fewer requests at once than the {d.sequences} "
                "sequences asked for"
            )
        vllm_version(o.engine_version)  # a SettingError for a version it cannot read
        if o.speculative_tokens != 1 and not d.mtp:
            raise SettingError("speculative_tokens needs mtp=True (vLLM drafts with the model's MTP layer)")

    # memory -------------------------------------------------------------------------------------------
    def weight_inputs(self, spec: ModelSpec, weights: WeightMap, d: Deployment, o: Any) -> dict[str, Any]:
        """Weights vLLM allocates on the fullest rank of each pipeline stage (``w:rank``; on SM100,
        whose MoE kernels pad some expert widths, ``w:rank_sm100``; below compute capability 8.9, where
        FP8 and GPTQ linears are repacked for Marlin, ``w:rank_sm8x``); the MTP drafter on
        the last; the rotary cache on every rank (:mod:`.rank_inputs`).

        BF16/FP16/FP8 checkpoints: :mod:`.weights` over the checkpoint's tensors; AWQ, GPTQ, AutoRound,
        compressed-tensors and ModelOpt checkpoints: the quant methods' ``create_weights``
        (:mod:`.quant_weights`); a format whose vLLM allocation is not modelled (``w8a16``, ``mxfp4``):
        the BF16 rank scaled by the checkpoint's size ratio, labelled estimated (``w:estimated``)."""
        stages = pp_partitions(spec.text.num_hidden_layers, o.pp)
        out: dict[str, Any] = {"scheme": weights.scheme}
        fmt = weights.gpu_format
        modelled = vllm_format_of(fmt, weights.group_size, spec) if fmt else None
        native = weights.gpu_format in ("", "bf16", "fp16", "fp8")
        ratio = None
        if not native and modelled is None:
            bf16 = gpu_weights(spec, "bf16", mtp=False, vision=d.vision and spec.vision is not None)
            kept = sum(t.bytes for t in weights.tensors if t.component != "mtp")
            ratio = (kept, bf16.total_bytes)
            out["w:estimated"] = True
            weights = bf16
        elif modelled is not None and not modelled[1]:
            out["w:estimated"] = True
        if modelled is not None and modelled[0].name == "nvfp4-modelopt-mixed":
            out["scheme"] = f"{weights.scheme}; vLLM loads NVIDIA's MIXED_PRECISION export"
        elif modelled is not None and modelled[0].quant_mtp and d.mtp:
            out["scheme"] = f"{weights.scheme}; the published export's MTP layer quantized too"
        fmt_ = modelled[0] if modelled is not None else None
        rope = mrope_positions_factor(spec, vllm_version(o.engine_version))
        for key, blackwell, marlin in (
            ("w:rank", False, False),
            ("w:rank_sm100", True, False),
            ("w:rank_sm8x", False, True),
        ):
            per_stage = stage_weights(
                spec, weights, fmt_, ratio, d, o, stages, sm100=blackwell, sm8x=marlin,
                rope_positions_factor=rope,
            )  # fmt: skip
            out[key] = per_stage[0] if len(stages) == 1 else per_stage
        # kept when equal too (only FP8 and GPTQ / AutoRound linears change on Marlin): the traced
        # formulas, made once per model for every quantization, must hold the choice for the quants where
        # it differs, or the calculator and the planner's fast path miss Marlin's repacking
        return out

    def hardware_inputs(self, d: Deployment, o: Any) -> dict[str, Any]:
        return {
            "vram": 80 * GIB if d.gpu_memory_bytes is None else d.gpu_memory_bytes,
            "small_device": small_batch_device(d.gpu_name),
            "sm100": int((d.gpu_sm or "").split(".")[0] == "10"),
            "sm8x": sm8x(_capability(d.gpu_sm)),
            "util_bp": round(o.gpu_memory_utilization * 10000),
        }

    def inputs_key(self, d: Deployment, o: Any) -> tuple[Any, ...]:
        old_rope = (vllm_version(o.engine_version) or (0, 33)) < (0, 32)  # the rotary cache's length
        return (d.mtp, d.vision, o.tp, o.pp, o.dp, o.expert_parallel, old_rope)

    def fullest_stage(
        self, spec: ModelSpec, inputs: Mapping[str, Any], d: Deployment, o: Any
    ) -> tuple[Num, PoolPlan, range]:
        """(weight bytes per rank, pool plan, layers) of the pipeline stage that needs the most memory."""
        sm100 = inputs["sm100"]
        stages = pp_partitions(spec.text.num_hidden_layers, o.pp)
        if len(stages) > 1 and (isinstance(d.context, Expr) or isinstance(d.sequences, Expr)):
            raise ValueError(
                "pipeline stages are compared by their bytes: give context and sequences as ints"
            )
        worst: tuple[Num, PoolPlan, range] | None = None
        for i, stage in enumerate(stages):
            plan = plan_pool(
                spec,
                tp=o.tp,
                max_model_len=d.context,
                kv_cache_dtype=d.kv_cache or "auto",
                prefix_caching=o.prefix_caching,
                num_speculative_tokens=o.speculative_tokens if d.mtp else 0,
                layers=stage,
                capability=_capability(d.gpu_sm),
            )
            plain, padded = inputs["w:rank"], inputs["w:rank_sm100"]
            if len(stages) > 1:
                plain, padded = plain[i], padded[i]
            marlin = inputs["w:rank_sm8x"] if len(stages) == 1 else inputs["w:rank_sm8x"][i]
            plain = where(inputs["sm8x"], marlin, plain)  # Marlin's repacking: no FP8 tensor cores
            w = where(sm100, padded, plain)
            if worst is None or as_int(w) + as_int(plan.pool_bytes(d.sequences)) > as_int(worst[0]) + as_int(
                worst[1].pool_bytes(d.sequences)
            ):
                worst = (w, plan, stage)
        assert worst is not None
        return worst

    def terms(self, spec: ModelSpec, inputs: Mapping[str, Any], d: Deployment, o: Any) -> list[Term]:
        ep = o.tp * o.dp if o.expert_parallel else 0
        try:
            per_rank, plan, stage = self.fullest_stage(spec, inputs, d, o)
        except ValueError as exc:
            raise SettingError(f"{self.name}: {exc}") from None
        kv_bytes = plan.pool_bytes(d.sequences)
        where_ = f"tp={o.tp}"
        if o.pp > 1:
            where_ += f", pp={o.pp} (stage of layers {stage.start}-{stage.stop - 1})"
        if ep:
            where_ += f", expert parallel over {ep} ranks"
        peak, graphs, runtime_detail = self._runtime(spec, inputs, d, o, stage)
        padding = ", SM100 MoE padding" * (d.gpu_sm or "").startswith("10.")
        return [
            Term(
                "weights",
                "gpu",
                per_rank,
                inputs.get("w:estimated") is not True,
                "vLLM 0.33.0's allocation on the fullest rank, rotary cache included (tests/fixtures/vllm/"
                "rank_weights.json, rank_weights_quant.json)",
                f"{inputs.get('scheme', '')}, {where_}" + padding,
            ),
            Term(
                "kv_cache",
                "gpu",
                kv_bytes,
                True,
                SRC_POOL,
                f"{d.sequences} request(s) of {d.context:,} tokens: {plan.blocks_per_request()} blocks of "
                f"{plan.bytes_per_block:,} B; attention block {plan.block_size} tokens, state page padded "
                f"{plan.padding_pct:.2f}%",
            ),
            Term(
                "compute_buffer",
                "gpu",
                peak.persistent + peak.transient,
                False,
                "vLLM 0.33.0's profile run: sampler/penalty/grammar buffers, then the largest of the vision "
                "encoder pass and the dummy forward / sampler over max_num_batched_tokens "
                "(qwenfit.core.engines.vllm.runtime; shapes from the source, checked on field logs)",
                runtime_detail,
            ),
            Term(
                "cuda_graphs",
                "gpu",
                graphs if graphs_in_budget(o.engine_version) else 0,
                False,
                "CUDA graphs: captured graphs x a per-graph cost fitted on field logs (vLLM >= 0.21 "
                "subtracts its estimate from the KV budget; docs/concepts.md#cuda_graphs)",
                "none: --enforce-eager"
                if o.enforce_eager
                else "estimated"
                if graphs_in_budget(o.engine_version)
                else f"vLLM < 0.21 captures them after sizing the pool, outside gpu_memory_utilization "
                f"(~{as_int(graphs) / 2**30:.2f} GiB there, estimated)",
            ),
            Term(
                "runtime_reserve",
                "gpu",
                peak.non_torch,
                False,
                "non-torch memory created after vLLM's start-up snapshot (vLLM's own figure for Qwen3.5-4B); "
                "the CUDA context, cuBLAS and NCCL sit outside gpu_memory_utilization "
                "(docs/concepts.md#runtime_reserve)",
                "estimated",
            ),
        ]

    def _runtime(
        self, spec: ModelSpec, inputs: Mapping[str, Any], d: Deployment, o: Any, stage: range
    ) -> tuple[ProfilePeak, Num, str]:
        """The profile-run peak and CUDA-graph memory of the rank holding ``stage``
        (:mod:`.runtime`). max_num_seqs / max_num_batched_tokens default to vLLM's tier of the device
        (:func:`.pool.batch_defaults`); traced, each tier is computed and the device's picks one."""
        n = spec.text.num_hidden_layers
        k = o.speculative_tokens if d.mtp else 0

        def one(seqs: int, tokens: int, sm100: bool) -> tuple[ProfilePeak, Num]:
            peak = profile_peak(
                spec, max_num_batched_tokens=tokens, max_num_seqs=seqs, tp=o.tp, dp=o.dp,
                expert_parallel=o.expert_parallel, vision=d.vision and spec.vision is not None,
                speculative_tokens=k, first_stage=stage.start == 0, last_stage=stage.stop == n,
                max_model_len=d.context,
            )  # fmt: skip
            flashinfer = attention_backend(d, sm100) == "FLASHINFER"
            mode = "FULL_AND_PIECEWISE"
            if o.enforce_eager:
                mode = "NONE"
            elif k and flashinfer and not v033:
                # before 0.33 FlashInfer's metadata builder reported UNIFORM_SINGLE_TOKEN_DECODE: with
                # spec decode vLLM falls back to PIECEWISE (config/compilation.py:1448-1465; logged
                # "CUDAGraphMode.FULL_AND_PIECEWISE is not supported with spec-decode for attention backend
                # FlashInferBackend ... setting cudagraph_mode=PIECEWISE"). 0.33.0 reports UNIFORM_BATCH
                # below SM90 (flashinfer.py:118, :1186).
                mode = "PIECEWISE"
            plan = cudagraph_plan(
                spec, max_num_seqs=seqs, max_num_batched_tokens=tokens, speculative_tokens=k, mode=mode,
                layers=len(stage), last_stage=stage.stop == n, sm100=sm100,
            )  # fmt: skip
            workspace: Num = 0
            # only FULL captures build attention metadata (gpu_model_runner.py:5637 force_attention), so
            # the workspace is allocated during graph profiling only when FULL graphs are captured
            if flashinfer and plan.full_sizes:
                workspace = flashinfer_workspace_bytes(
                    spec, max_num_batched_tokens=tokens, tp=o.tp, sized_by_chunk=sized_workspace
                )
            return peak, cudagraph_memory_bytes(spec, plan, workspace)

        version = vllm_version(o.engine_version)
        v033 = sized_workspace = version is None or version >= (0, 33)

        tiers = list(BATCH_TIERS)
        if o.max_num_seqs is not None or o.max_num_batched_tokens is not None:
            tiers = [(o.max_num_seqs or s, o.max_num_batched_tokens or t) for s, t in tiers]
        small, big = batch_tier(inputs["vram"], inputs["small_device"])
        sm = inputs["sm100"]
        per_gpu = []
        for sm100 in (False, True):  # SM100 raises the capture-size ceiling
            results = [one(s, t, sm100) for s, t in tiers]
            per_gpu.append((
                _select(lambda v: pick_tier(small, big, v), [r[0] for r in results]),
                pick_tier(small, big, [r[1] for r in results]),
            ))  # fmt: skip
        peak = _select(lambda v: where(sm, v[1], v[0]), [per_gpu[0][0], per_gpu[1][0]])
        graphs = where(sm, per_gpu[1][1], per_gpu[0][1])
        seqs = o.max_num_seqs or pick_tier(small, big, [s for s, _ in BATCH_TIERS])
        tokens = o.max_num_batched_tokens or pick_tier(small, big, [t for _, t in BATCH_TIERS])
        return peak, graphs, f"max_num_batched_tokens {tokens}, max_num_seqs {seqs}"

    def gpu_cap(self, vram: Num, o: Any, inputs: Mapping[str, Any] | None = None) -> Num:
        """Each GPU at ``gpu_memory_utilization``: vLLM takes ``ceil(total × utilization)``
        (worker/utils.py); ``util_bp`` is the utilization in basis points."""
        bp: Num = (inputs or {}).get("util_bp", round(o.gpu_memory_utilization * 10000))
        return -(-vram * bp // 10000)

    def notes(
        self,
        spec: ModelSpec,
        inputs: Mapping[str, Any],
        d: Deployment,
        o: Any,
        terms: Sequence[Term],
        budget: Mapping[str, int] | None,
    ) -> tuple[str, ...]:
        base = super().notes(spec, inputs, d, o, terms, budget)
        if budget is None or "gpu" not in budget:
            return base
        _, plan, _ = self.fullest_stage(spec, inputs, d, o)
        others = sum(as_int(t.bytes) for t in terms if t.device == "gpu" and t.name != "kv_cache")
        pool = budget["gpu"] - others
        message = plan.cannot_serve_message(pool, as_int(d.context))
        if message:
            return (*base, f"vLLM would refuse to start: ValueError: {message}")
        return (
            *base,
            f"vLLM would give the KV pool the rest of the budget: maximum concurrency for "
            f"{d.context:,} tokens per request: {plan.max_concurrency(pool):.2f}x",
        )

    def gpus_used(self, d: Deployment, o: Any) -> int:
        return int(o.tp * o.pp * o.dp)

    def placement_of(self, d: Deployment, o: Any) -> Placement | None:
        return None if o.pp > 1 else Placement("tp", n_gpus=o.tp, tp=o.tp)

    # machines and placements ----------------------------------------------------------------------------
    def runs_on(self, machine: Machine) -> str:
        return "" if machine.devices else f"{self.name} needs a GPU"

    def default_on(self, machine: Machine) -> bool:
        if not machine.devices:
            return False
        dev = machine.devices[0]
        return dev.vendor in ("nvidia", "amd") and ("cuda" in dev.backends or "rocm" in dev.backends)

    def quants_for(self, machine: Machine) -> tuple[str, ...]:
        if machine.devices and machine.devices[0].fp8_tflops is None:
            return tuple(q for q in self.planner_quants if q != "fp8")  # no FP8 hardware: W8A16 instead
        return self.planner_quants

    def fallback(self, machine: Machine, spec: ModelSpec | None = None) -> Placement:
        """Tensor parallelism over the most GPUs the model's heads allow (what ``check`` judges)."""
        n = max(machine.n_devices, 1)
        tp = tp_sizes(spec, n)[0] if spec is not None and tp_sizes(spec, n) else 1
        return Placement("tp", n_gpus=tp, tp=tp)

    def placement_options(self, p: Placement) -> dict[str, Any]:
        return {"tp": p.tp, "pp": p.pp}

    def placement_gpus(self, p: Placement) -> int:
        return max(p.tp * p.pp, 1)

    def place(self, judge: Judge, need: int, sequences: int, max_nodes: int) -> tuple[Placement | None, str]:
        """The largest valid tensor-parallel size on one node, then pipeline stages over more nodes
        of the same machine."""
        fixed = judge.user_options
        if "tp" in fixed or "pp" in fixed:  # the caller's layout, judged as given
            tp, pp = int(fixed.get("tp", 1)), int(fixed.get("pp", 1))
            check_tp(judge.spec, tp)  # ValueError: the planner reports it
            nodes = -(-tp * pp // max(judge.n_gpus, 1))
            if nodes > max_nodes:
                return None, f"tp={tp} x pp={pp} needs {nodes} node(s) of {judge.n_gpus} GPU(s)"
            p = Placement("tp", n_gpus=tp * pp, tp=tp, pp=pp, nodes=nodes,
                          description=f"tensor parallel {tp} x pipeline parallel {pp} (as given)"
                          if pp > 1 else f"tensor parallel over {tp} GPU(s) (as given)")  # fmt: skip
            if judge.fits(p, need, sequences):
                return p, ""
            return None, f"does not fit with tp={tp}, pp={pp}"
        valid = tp_sizes(judge.spec, judge.n_gpus)
        if not valid:
            return None, "no tensor-parallel size divides the model's heads"
        tp = valid[0]
        p = Placement(
            "tp", n_gpus=tp, tp=tp, description=f"tensor parallel over {tp} GPU(s)" if tp > 1 else "one GPU"
        )
        if judge.fits(p, need, sequences):
            return p, ""
        for nodes in range(2, max_nodes + 1):
            q = Placement(
                "tp",
                n_gpus=tp * nodes,
                tp=tp,
                pp=nodes,
                nodes=nodes,
                description=f"tensor parallel {tp} x pipeline parallel {nodes} ({nodes} nodes)",
            )
            if judge.fits(q, need, sequences):
                return q, ""
        return None, f"does not fit {max_nodes} node(s) of {tp} GPU(s)"

    # launch -------------------------------------------------------------------------------------------
    def command(self, artifact: Artifact, d: Deployment, o: Any) -> Cmd:
        cmd = Cmd().add(artifact.make).add("vllm", "serve", artifact.ref)
        cmd.add("--tensor-parallel-size", o.tp, when=o.tp > 1)
        cmd.add("--pipeline-parallel-size", o.pp, when=o.pp > 1)
        cmd.add("--data-parallel-size", o.dp, when=o.dp > 1)
        cmd.add("--enable-expert-parallel", when=o.expert_parallel)
        cmd.add("--max-model-len", d.context)
        cmd.add("--gpu-memory-utilization", float(o.gpu_memory_utilization))
        if d.kv_cache and d.kv_cache != "auto":
            cmd.add("--kv-cache-dtype", d.kv_cache)
        if o.max_num_seqs is not None:
            cmd.add("--max-num-seqs", o.max_num_seqs)
        else:
            cmd.add("--max-num-seqs", d.sequences, when=lt(1, d.sequences))
        if o.max_num_batched_tokens is not None:
            cmd.add("--max-num-batched-tokens", o.max_num_batched_tokens)
        cmd.add("--enforce-eager", when=o.enforce_eager)
        if d.mtp:
            spec_config = json.dumps({"method": "mtp", "num_speculative_tokens": o.speculative_tokens})
            cmd.add("--speculative-config", f"'{spec_config}'")
        return cmd.add("--language-model-only", when=not d.vision)

    # traced formulas ------------------------------------------------------------------------------------
    def formula_placements(self, spec: ModelSpec) -> list[FormulaPlacement]:
        return [FormulaPlacement(f"tp{tp}", tp, tp) for tp in TP_SIZES if tp in tp_sizes(spec, tp)]

    def formula_placement(self, p: Placement) -> FormulaPlacement | None:
        return FormulaPlacement(f"tp{p.tp}", p.tp, p.tp) if p.pp == 1 else None

    def formula_options(self, spec: ModelSpec, fp: FormulaPlacement, variables: Mapping[str, Any]) -> Any:
        return VllmOptions(tp=fp.tp)

    def calc_hardware_inputs(self, device: Device | None, fp: FormulaPlacement) -> dict[str, int]:
        return {
            "small_device": 0 if device is None else small_batch_device(device.name),
            "util_bp": round(DEFAULT_GPU_MEMORY_UTILIZATION * 10000),
            "sm100": int(device is not None and (device.compute_capability or "").split(".")[0] == "10"),
            "sm8x": sm8x(_capability(None if device is None else device.compute_capability)),
        }


VLLM = Vllm()
