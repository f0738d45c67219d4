"""The weight bytes of one rank per pipeline stage, as vLLM holds them once the model is loaded: the
main model's parameters (:mod:`.weights` / :mod:`.quant_weights`), the MTP drafter's on the last stage,
and the buffers every rank keeps (chiefly the rotary cache: :func:`.weights.vllm_rank_buffer_bytes`).
``sm100``: a Blackwell data-centre GPU (its MoE kernels pad some expert widths); ``sm8x``: a GPU
without FP8 tensor cores (compute capability 7.5-8.8), where FP8 and GPTQ / AutoRound linears are
repacked for Marlin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qwenfit.core.engines.vllm.quant_weights import (
    VllmQuantFormat,
    vllm_quant_drafter_weight_bytes,
    vllm_quant_rank_weight_bytes,
)
from qwenfit.core.engines.vllm.weights import (
    vllm_drafter_weight_bytes,
    vllm_rank_buffer_bytes,
    vllm_rank_weight_bytes,
)

if TYPE_CHECKING:
    from qwenfit.core.engines.base import Deployment
    from qwenfit.core.formats.weights import WeightMap
    from qwenfit.core.model.spec import ModelSpec

__all__ = ["stage_weights"]


def stage_weights(
    spec: ModelSpec, weights: WeightMap, modelled: VllmQuantFormat | None, ratio: tuple[int, int] | None,
    d: Deployment, o: Any, stages: list[range], *, sm100: bool, sm8x: bool, rope_positions_factor: int = 1,
) -> list[int]:  # fmt: skip
    """Bytes per rank of each stage in ``stages``. ``modelled``: the quantized checkpoint format vLLM
    loads (None: BF16 / FP8 from ``weights``); ``ratio``: scale the BF16 rank by (kept, bf16) bytes for a
    format whose allocation is not modelled; ``rope_positions_factor``: the version's rotary cache length
    (:func:`.weights.mrope_positions_factor`)."""
    out = []
    marlin_fp8 = sm8x and weights.gpu_format == "fp8"
    for stage in stages:
        if modelled is not None:
            w = vllm_quant_rank_weight_bytes(
                spec, modelled, tp=o.tp, stage=stage, dp=o.dp, expert_parallel=o.expert_parallel,
                gpu=100 if sm100 else 90, vision=d.vision, loaded_sm8x=sm8x,
            )  # fmt: skip
        else:
            w = vllm_rank_weight_bytes(
                spec, weights, tp=o.tp, stage=stage, dp=o.dp, expert_parallel=o.expert_parallel,
                sm100=sm100, marlin_fp8=marlin_fp8,
            )  # fmt: skip
            if ratio is not None:
                w = w * ratio[0] // ratio[1]
        if d.mtp and stage.stop == spec.text.num_hidden_layers:
            # the drafter's layer as the checkpoint stores it (most published quantized checkpoints keep
            # mtp.* in BF16; FP8 ones and Qwen3.6-27B's int4 AutoRound quantize it)
            if modelled is not None and modelled.quant_mtp:
                w += vllm_quant_drafter_weight_bytes(
                    spec, modelled, tp=o.tp, pp=o.pp, dp=o.dp, expert_parallel=o.expert_parallel,
                    loaded_sm8x=sm8x,
                )  # fmt: skip
            else:
                w += vllm_drafter_weight_bytes(
                    spec, weights, tp=o.tp, pp=o.pp, dp=o.dp, expert_parallel=o.expert_parallel,
                    sm100=sm100, marlin_fp8=marlin_fp8,
                )  # fmt: skip
        out.append(w + vllm_rank_buffer_bytes(
            spec, stage=stage, tp=o.tp, dp=o.dp, expert_parallel=o.expert_parallel, vision=d.vision,
            rope_positions_factor=rope_positions_factor,
        ))  # fmt: skip
    return out
