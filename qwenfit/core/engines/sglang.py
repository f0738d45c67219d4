"""SGLang as an engine (SGLang 0.5.23; file:line below are in the pip wheel sglang-0.5.23).

Checked against SGLang's own code: its argument resolution and pool sizing imported from the wheel
and run over a grid of GPUs, TP sizes and models (``scripts/python_engine_fixtures.py``,
``tests/fixtures/python_engines/sglang.json``). Everything that depends on context or sequences uses
only ``+ - * //`` and the :mod:`qwenfit.core.expr` helpers, so the terms trace into the calculator's
formulas (SGLang's float ratios are rewritten as integer fractions that give its results for
realistic inputs; see each function). ``context`` is SGLang's ``--context-length``.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from qwenfit.core.engines.gdn_state import STATE_DTYPE_BYTES, gdn_state
from qwenfit.core.engines.vllm.engine import TP_SIZES, tp_sizes
from qwenfit.core.expr import Num, lt, smax, where
from qwenfit.core.formats.weights import WeightMap
from qwenfit.core.model.inventory import ROUTED_EXPERT_ROLES
from qwenfit.core.model.spec import ModelSpec
from qwenfit.core.terms import Term
from qwenfit.core.units import GIB, MIB

if TYPE_CHECKING:
    from qwenfit.core.hardware import Machine

__all__ = [
    "SGLANG",
    "SGLANG_VERSION",
    "Sglang",
    "SglangOptions",
    "rank_weights",
    "sglang_cuda_context_bytes",
    "sglang_kv_cell_bytes",
    "sglang_mem_fraction_static",
    "sglang_pools",
    "sglang_server_defaults",
    "sglang_state_bytes_per_request",
    "sglang_state_slots_per_request",
]


@dataclass(frozen=True, slots=True)
class SglangOptions:
    """``sglang.launch_server`` flags that change memory."""

    tp: int = option_field(1, "--tp", check="positive")
    prefix_caching: bool = option_field(True, "radix cache on (False: --disable-radix-cache)", check="bool")


# --------------------------------------------------------------------------------------------------
# SGLang 0.5.23 (sgl-project/sglang; file:line below are in the pip wheel sglang-0.5.23)
#
# How SGLang sizes its memory on one GPU (all of it reproduced by tests/fixtures/python_engines/sglang.json):
#  1. mem_fraction_static (arg_groups/memory_hook.py:281-343): round((gpu_mem - reserved)/gpu_mem, 3)
#     with gpu_mem in MiB (nvidia-smi) and reserved = 512 + 1.5*max(chunked_prefill, 2048) + tp/8*1024
#     + 2*decode_cuda_graph_max_bs (>= 10 GiB above 60 GiB); Qwen3.5 is a VLM, so the fraction is then
#     multiplied by 0.95 x clamp(1.1 - 0.1*h^2/1024^2, 0.8, 1.05), h = vision hidden size (:417-462).
#     --language-model-only is refused for Qwen3_5(Moe)ForConditionalGeneration (model_hook.py:1106),
#     so SGLang always loads the vision tower and reserves 100 MiB for it (SGLANG_VLM_CACHE_SIZE_MB,
#     mem_cache/kv_cache_configurator.py:202-224).
#  2. After the weights load: rest = free - pre_load_free*(1 - mem_fraction_static) - 100 MiB
#     (kv_cache_configurator.py:2990-3060).
#  3. The rest is split: the GDN state pool gets rest*0.9/1.9 (--mamba-full-memory-ratio 0.9) in whole
#     slots, K = int((budget - per_req)//per_req) usable + 1 padding slot; the KV token pool gets what
#     is left, tokens = bytes // cell (kv_cache_configurator.py:3345-3409; pool_configurator.py:637-647).
#  4. max_running_requests = min(clamp(int(tokens/context_len*512), 2048, 4096), tokens//2, K//slots),
#     slots = 3 + 2 extra-buffer slots per running request with the radix cache on (CUDA default:
#     "extra_buffer" strategy with the overlap scheduler), 1 with it off (:3062-3172).
SGLANG_VERSION = "0.5.23"
_SGLANG_KV_BYTES = {"bf16": 2, "bfloat16": 2, "fp8_e4m3": 1, "fp8_e5m2": 1}


def sglang_cuda_context_bytes(tp: int) -> int:
    """Memory already in use on each GPU when SGLang measures free memory before loading (CUDA
    context, cuBLAS, NCCL when tp > 1). An estimate (docs/concepts.md#runtime_reserve), as for vLLM."""
    return (600 + (400 if tp > 1 else 0)) * MIB


def sglang_server_defaults(gpu_memory_bytes: Num, tp: int) -> tuple[Num, Num]:
    """(chunked_prefill_size, decode CUDA-graph max batch size) SGLang picks for this GPU
    (arg_groups/memory_hook.py:89-170; gpu_mem in MiB as nvidia-smi reports it). Traceable in the
    device memory."""
    gpu = gpu_memory_bytes // MIB
    big_tp = tp >= 4
    chunk = where(
        lt(gpu, 20 * 1024), 2048, where(lt(gpu, 60 * 1024), 4096, where(lt(gpu, 160 * 1024), 8192, 16384))
    )
    graph_bs = where(
        lt(gpu, 20 * 1024), 8,
        where(lt(gpu, 35 * 1024), 160 if big_tp else 48,
              where(lt(gpu, 60 * 1024), 160 if big_tp else 32,
                    where(lt(gpu, 160 * 1024), 512 if big_tp else 256, 512))),
    )  # fmt: skip
    return chunk, graph_bs


def sglang_mem_fraction_static(spec: ModelSpec, gpu_memory_bytes: Num, tp: int) -> tuple[Num, int]:
    """SGLang's default ``mem_fraction_static`` as an exact fraction (numerator, denominator).

    SGLang computes it in floats; here ``round(x, 3)`` becomes integer thousandths (reserved memory
    is a whole number of half MiB) and the VLM factor 0.95 x (11·2^20 − h²)/(10·2^20) an integer
    ratio, which equals SGLang's float to ~1e-16 (tests/fixtures/python_engines/sglang.json).
    Prefill CUDA graphs are off for Qwen3.5 (the resolved backend is "disabled"), so the graph
    reserve is 2 MiB per decode graph batch size. Traceable in the device memory."""
    gpu = gpu_memory_bytes // MIB
    chunk, graph_bs = sglang_server_defaults(gpu_memory_bytes, tp)
    reserved2 = 2 * 512 + 3 * smax(chunk, 2048) + 256 * tp + 4 * graph_bs  # half MiB
    reserved2 = where(lt(60 * 1024, gpu), smax(reserved2, 2 * 10 * 1024), reserved2)
    num, den = 1000 * (2 * gpu - reserved2), 2 * gpu
    thousandths = (2 * num + den) // (2 * den)  # round half up; SGLang's round() never meets a tie here
    if spec.vision is None:
        return thousandths, 1000
    # complexity ratio = 24 h^2 / (24 * 1024^2): SGLang reads num_hidden_layers, absent from the
    # Qwen3.5 vision config, so both sides use its default 24
    factor = min(max(11 * 2**20 - spec.vision.hidden_size**2, 8 * 2**20), 21 * 2**19)  # x 10*2^20
    return thousandths * 95 * factor, 1000 * 100 * 10 * 2**20


def sglang_kv_cell_bytes(spec: ModelSpec, tp: int, kv_cache: str | None) -> int:
    """KV bytes per token on one rank: full-attention layers x kv heads per rank x (K + V) head dims."""
    t = spec.text
    kv = kv_cache or "auto"
    size = STATE_DTYPE_BYTES.get(t.dtype, 2) if kv == "auto" else _SGLANG_KV_BYTES.get(kv)
    if size is None:
        raise ValueError(f"SGLang kv cache dtype {kv!r}; valid: auto, {', '.join(_SGLANG_KV_BYTES)}")
    return max(1, t.num_key_value_heads // tp) * 2 * t.head_dim * t.n_full_attention * size


def sglang_state_bytes_per_request(spec: ModelSpec, tp: int) -> int:
    """``mamba_cache_per_req``: conv (conv_dim/tp, K−1) bfloat16 + temporal (nv/tp, dv, dk) in the
    config's mamba_ssm_dtype (float32 when absent), over every Gated DeltaNet layer."""
    t = spec.text
    state = gdn_state(spec, tp=tp, conv_dtype="bfloat16", ssm_dtype=t.mamba_ssm_dtype or "float32")
    return state.bytes * t.n_linear_attention


def sglang_state_slots_per_request(prefix_caching: bool) -> int:
    """State-pool slots each running request needs: 3 + 2 (extra_buffer with the overlap scheduler,
    the CUDA default for Qwen3.5) with the radix cache on, 1 with it off."""
    return 5 if prefix_caching else 1


def sglang_pools(spec: ModelSpec, o: SglangOptions, kv_cache: str | None, rest_bytes: int,
                 context_len: int) -> tuple[int, int, int]:  # fmt: skip
    """(state slots K, KV tokens, max_running_requests) SGLang makes of ``rest_bytes`` (the memory
    left for both pools). Integer form of kv_cache_configurator.py:3345-3409 and :3119-3172:
    ``rest*0.9/1.9`` is ``9*rest/19``."""
    per_req = sglang_state_bytes_per_request(spec, o.tp)
    slots = 9 * rest_bytes // (19 * per_req) - 1
    tokens = (rest_bytes - (slots + 1) * per_req) // sglang_kv_cell_bytes(spec, o.tp, kv_cache)
    estimated = min(max(tokens * 512 // context_len, 2048), 4096)
    running = min(estimated, tokens // 2, slots // sglang_state_slots_per_request(o.prefix_caching))
    return slots, tokens, running


_REPLICATED = frozenset({"norm", "attn_q_norm", "attn_k_norm", "gdn_norm", "router", "shared_expert_gate",
                         "mtp_norm", "vision_norm", "vision_merger_norm", "vision_pos_embed",
                         "vision_patch_embed"})  # fmt: skip


def rank_weights(
    spec: ModelSpec, weights: WeightMap, tp: int, *, stage: range | None = None, pp: int = 1, ep: int = 0
) -> tuple[int, bool]:
    """Bytes on one rank: TP-sharded tensors / tp, replicated ones whole (KV projections are replicated
    once tp exceeds the KV heads); with ``ep`` ranks of expert parallelism, routed experts are divided
    whole among them instead. ``stage``: the layers of this pipeline stage (vllm get_pp_indices); the
    first stage holds the embedding and vision tower, the last the final norm, lm_head (a copy of the
    embedding when tied) and the MTP layer. Exact only for one GPU."""
    t = spec.text
    kv_factor = max(1, tp // t.num_key_value_heads)  # copies of each KV head across ranks
    layers = stage if stage is not None else range(t.num_hidden_layers)
    first, last = layers.start == 0, layers.stop == t.num_hidden_layers
    total = 0
    for e in weights.tensors:
        if e.component == "vision":
            keep = first
        elif e.component == "mtp":
            keep = last
        elif e.layer is not None:
            keep = e.layer in layers
        elif e.role == "embed":
            keep = first or (last and pp > 1 and t.tie_word_embeddings)
        else:  # final norm, lm_head
            keep = last
        if not keep:
            continue
        if e.role in ROUTED_EXPERT_ROLES and ep:
            total += -(-e.bytes // ep)
        elif e.role in _REPLICATED:
            total += e.bytes
        elif e.role in ("attn_k", "attn_v"):
            total += e.bytes * kv_factor // tp
        else:
            total += -(-e.bytes // tp)
    return total, tp == 1 and pp == 1 and not ep


def sglang_terms(spec: ModelSpec, inputs: Mapping[str, Any], d: Deployment, o: SglangOptions) -> list[Term]:
    """What SGLang needs so that ``sequences`` requests of ``context`` tokens run at once: the KV
    pool must hold every token and the state pool 5 slots per request (+1 padding slot), and since
    SGLang splits the memory left for both pools 0.9:1 (state:KV), the binding pool sets both
    (``pool_split``). Exact when the state pool binds; when the KV pool binds, SGLang's rounding to
    whole state slots can make do with up to 1.9 slots' worth less. Outside the pools SGLang keeps
    (device memory − CUDA context) x (1 − mem_fraction_static) for activations and CUDA graphs."""
    t = spec.text
    memory = inputs["vram"]
    cell = sglang_kv_cell_bytes(spec, o.tp, d.kv_cache)
    per_req = sglang_state_bytes_per_request(spec, o.tp)
    slots = sglang_state_slots_per_request(o.prefix_caching)
    kv_need = d.context * d.sequences * cell
    state_need = (slots * d.sequences + 1) * per_req
    rest: Num = smax(
        (19 * kv_need + 9) // 10, (19 * state_need + 8) // 9
    )  # ceil(kv*1.9), ceil(state*1.9/0.9)
    num, den = sglang_mem_fraction_static(spec, memory, o.tp)
    context = sglang_cuda_context_bytes(o.tp)
    per_rank: Num = inputs["w:rank"]
    exact = o.tp == 1  # rank_weights: exact only for one GPU
    chunk, graph_bs = sglang_server_defaults(memory, o.tp)
    src = f"sglang {SGLANG_VERSION} kv_cache_configurator.py (tests/fixtures/python_engines/sglang.json)"
    mfs = "mem_fraction_static " + (f"{num / den:.4f}" if isinstance(num, int) else f"{num}/{den}")
    terms = [
        Term("weights", "gpu", per_rank, exact, "checkpoint bytes per TP rank", inputs.get("scheme", "")),
        Term("kv_cache", "gpu", kv_need, True, src + ": token pool, full-attention layers, page size 1",
             f"{d.sequences} x {d.context:,} tokens x {cell:,} B"),
        Term("recurrent_state", "gpu", state_need, True,
             src + ": state pool, conv bf16 + SSM " + (t.mamba_ssm_dtype or "float32"),
             f"{slots} slot(s) per running request + 1 padding slot, {per_req:,} B each"),
        Term("pool_split", "gpu", rest - kv_need - state_need, True,
             src + ": the memory left for the pools is split state:KV = 0.9:1 (--mamba-full-memory-ratio)",
             "what the split gives the pool that is not the binding one"),
        Term("runtime_reserve", "gpu", (memory - context) * (den - num) // den, True,
             f"sglang {SGLANG_VERSION} arg_groups/memory_hook.py: (free memory before loading) x "
             "(1 - mem_fraction_static)",
             f"{mfs} (chunked prefill {chunk}, decode CUDA graphs up to batch {graph_bs}"
             + (", x VLM factor)" if spec.vision is not None else ")")),
        Term("cuda_context", "gpu", context, False,
             "CUDA context, cuBLAS and NCCL before SGLang measures free memory "
             "(docs/concepts.md#runtime_reserve)", "estimated"),
    ]  # fmt: skip
    if spec.vision is not None:
        terms.append(Term("vision", "gpu", 100 * MIB, True,
                          "SGLANG_VLM_CACHE_SIZE_MB: multimodal embedding cache reserved from the KV budget",
                          "100 MiB"))  # fmt: skip
        if not inputs.get("vision_in_weights"):
            # SGLang loads the tower even for text-only use (--language-model-only refuses Qwen3.5)
            terms.append(Term("vision", "gpu", spec.params.vision * 2 // o.tp, False,
                              "vision tower weights, BF16, split over TP ranks (SGLang always loads it)",
                              "estimated"))  # fmt: skip
    return terms


class Sglang(Engine):
    """SGLang 0.5.23 on one node (tensor parallelism)."""

    name = "sglang"
    weights_family = "safetensors"
    kv_types = ("auto", "bf16", "bfloat16", "fp8_e4m3", "fp8_e5m2")
    calc_kv_types = ("auto", "fp8_e4m3")
    default_quant = "bf16"
    planner_quants = ("bf16", "fp8")
    # SGLang's online FP8 of a BF16 checkpoint (as vLLM's)
    online_quant: ClassVar[Mapping[str, str]] = {"fp8": "--quantization fp8"}
    fallback_quants = ("bf16", "fp8", "w8a16", "awq", "gptq", "nvfp4")
    max_sequences = 4096
    context_beyond_native = True
    loads_vision_by_default = True  # --language-model-only is refused for Qwen3.5 (model_hook.py:1106)
    Options = SglangOptions
    # no SGLang measurements: vLLM's fitted constants (same kind of engine: CUDA graphs, batched steps)
    speed = SpeedConstants(
        "sglang", 1000, {"cuda": 50, "rocm": 80}, {"cuda": 0.50, "rocm": 0.50}, fitted=("vllm",), ubatch=8192
    )

    def check(self, spec: ModelSpec, d: Deployment, o: Any) -> None:
        sglang_kv_cell_bytes(spec, o.tp, d.kv_cache)  # raises for an unknown KV dtype

    def weight_inputs(self, spec: ModelSpec, weights: WeightMap, d: Deployment, o: Any) -> dict[str, Any]:
        return {"w:rank": rank_weights(spec, weights, o.tp)[0], "scheme": weights.scheme,
                "vision_in_weights": any(e.component == "vision" for e in weights.tensors)}  # fmt: skip

    def hardware_inputs(self, d: Deployment, o: Any) -> dict[str, Any]:
        return {"vram": 80 * GIB if d.gpu_memory_bytes is None else d.gpu_memory_bytes}

    def inputs_key(self, d: Deployment, o: Any) -> tuple[Any, ...]:
        return (d.vision, o.tp)

    def terms(self, spec: ModelSpec, inputs: Mapping[str, Any], d: Deployment, o: Any) -> list[Term]:
        return sglang_terms(spec, inputs, d, o)

    def fallback(self, machine: Machine, spec: ModelSpec | None = None) -> Placement:
        """Tensor parallelism over the most GPUs the model's heads allow (what ``check`` judges)."""
        n = max(machine.n_devices, 1)
        tp = tp_sizes(spec, n)[0] if spec is not None and tp_sizes(spec, n) else 1
        return Placement("tp", n_gpus=tp, tp=tp)

    def placement_options(self, p: Placement) -> dict[str, Any]:
        return {"tp": p.tp}

    def gpus_used(self, d: Deployment, o: Any) -> int:
        return int(o.tp)

    def placement_of(self, d: Deployment, o: Any) -> Placement | None:
        return Placement("tp", n_gpus=o.tp, tp=o.tp)

    def placement_gpus(self, p: Placement) -> int:
        return max(p.tp, 1)

    def place(self, judge: Judge, need: int, sequences: int, max_nodes: int) -> tuple[Placement | None, str]:
        """The largest valid tensor-parallel size on one node."""
        valid = tp_sizes(judge.spec, judge.n_gpus)
        if "tp" in judge.user_options:  # the caller's tensor-parallel size, judged as given
            tp = int(judge.user_options["tp"])
            if tp not in valid:
                return None, f"tp={tp} is not a tensor-parallel size {self.name} takes here (valid: {valid})"
            valid = [tp]
        if not valid:
            return None, "no tensor-parallel size divides the model's heads"
        tp = valid[0]
        what = f"tensor parallel over {tp} GPU(s)" if tp > 1 else "one GPU"
        p = Placement("tp", n_gpus=tp, tp=tp, description=what)
        if judge.fits(p, need, sequences):
            return p, ""
        return None, f"does not fit {tp} GPU(s) with tensor parallelism"

    def command(self, artifact: Artifact, d: Deployment, o: Any) -> Cmd:
        cmd = Cmd().add(artifact.make)
        cmd.add("python", "-m", "sglang.launch_server", "--model-path", artifact.ref)
        cmd.add("--context-length", d.context)
        cmd.add("--tp", o.tp, when=o.tp > 1)
        if d.kv_cache and d.kv_cache != "auto":
            cmd.add("--kv-cache-dtype", d.kv_cache)
        return cmd

    def formula_placements(self, spec: ModelSpec) -> list[FormulaPlacement]:
        return [FormulaPlacement(f"tp{tp}", tp, tp) for tp in TP_SIZES if tp in tp_sizes(spec, tp)]

    def formula_placement(self, p: Placement) -> FormulaPlacement | None:
        return FormulaPlacement(f"tp{p.tp}", p.tp, p.tp) if p.pp == 1 else None

    def formula_options(self, spec: ModelSpec, fp: FormulaPlacement, variables: Mapping[str, Any]) -> Any:
        return SglangOptions(tp=fp.tp)


SGLANG = Sglang()
