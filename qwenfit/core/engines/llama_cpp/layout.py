"""Where llama.cpp puts each tensor: layer offload (-ngl), multi-GPU layer split (-ts) and MoE expert
offload (--n-cpu-moe / -ot exps=CPU), as llama.cpp 0c1e570 does it.

Source: src/llama-model.cpp ``load_tensors`` (lines 1556–1610 of that tree):

- the input layer (``token_embd``) always stays on the CPU ("very little benefit to offloading");
- layers ``il`` in ``[0, n_layer_all]`` (``n_layer_all`` = GGUF ``block_count``, the MTP layer
  included; index ``n_layer_all`` is the output layer) are on the CPU when ``il < i_gpu_start`` with
  ``i_gpu_start = max(n_layer_all + 1 − ngl, 0)``; otherwise on GPU
  ``upper_bound(splits, float(il − i_gpu_start) / act_gpu_layers)`` where ``splits`` are the
  cumulative normalised ``-ts`` shares (float32; default: each device's free memory, so identical
  GPUs split evenly);
- a tied output (no ``output.weight``) is the token embedding loaded again on the output device
  (llama-model-loader.cpp ``TENSOR_DUPLICATED``), unless that device is the CPU too;
- ``--n-cpu-moe N`` adds ``-ot blk\\.i\\.ffn_(up|down|gate|gate_up)_(ch|)exps=CPU`` for ``i < N``
  (common/arg.cpp, common.h ``LLM_FFN_EXPS_REGEX``); ``--cpu-moe`` is every layer;
- KV cache and recurrent state of a layer live on that layer's device (llama-kv-cache.cpp:217,
  llama-memory-recurrent.cpp:88, ``offload_kqv`` on by default).

The weight sums are exported per quantization as formula inputs (``env``) so the calculator applies
the same ``n_cpu_moe`` lookup as Python.
"""

from __future__ import annotations

import functools
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from qwenfit.core.formats.reads import tensor_read_bytes
from qwenfit.core.formats.weights import WeightMap
from qwenfit.core.model.spec import ModelSpec

__all__ = [
    "EXPS_RE",
    "WEIGHT_ALIGNMENT",
    "LlamaLayout",
    "gpu_names",
    "llama_layout",
    "llama_read_env",
    "llama_weight_env",
    "override_device",
]

EXPS_RE = re.compile(r"\.ffn_(up|down|gate|gate_up)_(ch|)exps")  # common.h LLM_FFN_EXPS_REGEX


def _f32(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


def gpu_names(n_gpus: int) -> tuple[str, ...]:
    """Device names: "gpu" for one GPU, "gpu0".."gpuN-1" for several."""
    if n_gpus <= 0:
        return ()
    return ("gpu",) if n_gpus == 1 else tuple(f"gpu{i}" for i in range(n_gpus))


@dataclass(frozen=True, slots=True)
class LlamaLayout:
    """The device of each layer (index ``n_layer_all`` is the output layer)."""

    n_layer_all: int
    layer_device: tuple[str, ...]  # length n_layer_all + 1
    devices: tuple[str, ...]  # the GPUs, then "cpu"

    @property
    def output_device(self) -> str:
        return self.layer_device[-1]

    def layers_on(self, device: str) -> list[int]:
        return [i for i, d in enumerate(self.layer_device[:-1]) if d == device]


def layer_devices(n_layer_all: int, gpus: Sequence[str], ngl: int, shares: Sequence[float]) -> list[str]:
    """The device of each of ``n_layer_all`` blocks and the output layer: the last ``ngl`` go to the
    GPUs, split at the single-precision cumulative ``shares`` (llama-model.cpp's split points,
    ``std::upper_bound``); the rest stay on the CPU. The calculator's plan mode mirrors it
    (:mod:`qwenfit.export_plan`, docs/javascripts/qwenfit-plan.mjs)."""
    splits: list[float] = []
    acc = 0.0
    for s in shares:
        acc = _f32(acc + _f32(s))
        splits.append(acc)
    splits = [_f32(s / acc) for s in splits] if gpus else []
    i_gpu_start = max(n_layer_all + 1 - ngl, 0)
    act = min(ngl, n_layer_all + 1) if gpus else 0
    out = []
    for il in range(n_layer_all + 1):
        if il < i_gpu_start or il - i_gpu_start >= act:
            out.append("cpu")
            continue
        x = _f32(_f32(il - i_gpu_start) / act)
        k = next((i for i, s in enumerate(splits) if s > x), len(splits))  # std::upper_bound
        out.append(gpus[min(k, len(gpus) - 1)])
    return out


def llama_layout(
    spec: ModelSpec,
    *,
    n_gpus: int,
    n_gpu_layers: int | None = None,
    tensor_split: Sequence[float] | None = None,
    mtp_layer: bool = True,
) -> LlamaLayout:
    """Layer → device as llama.cpp assigns it. ``n_gpu_layers`` None means all (``-ngl all``).
    ``mtp_layer``: the GGUF holds the MTP block (its ``block_count`` counts it, which moves the output
    layer and every split point by one; GGUFs converted without it have block_count 64 / 48 / 40 / 32)."""
    split = None if tensor_split is None else tuple(tensor_split)
    return _layout(spec, n_gpus, n_gpu_layers, split, mtp_layer)


@functools.lru_cache(maxsize=1024)  # a pure function of its arguments; the planner asks it often
def _layout(
    spec: ModelSpec,
    n_gpus: int,
    n_gpu_layers: int | None,
    tensor_split: tuple[float, ...] | None,
    mtp_layer: bool,
) -> LlamaLayout:
    n_layer_all = spec.text.num_hidden_layers + (spec.mtp_layers if mtp_layer else 0)
    gpus = gpu_names(n_gpus)
    ngl = n_layer_all + 1 if n_gpu_layers is None else n_gpu_layers
    if ngl < 0:
        raise ValueError(f"n_gpu_layers must be >= 0, got {n_gpu_layers}")
    shares = list(tensor_split) if tensor_split else [1.0] * len(gpus)
    if gpus and (len(shares) != len(gpus) or any(s < 0 for s in shares) or not any(shares)):
        raise ValueError(f"tensor_split needs {len(gpus)} non-negative shares, got {list(shares)}")
    out = layer_devices(n_layer_all, gpus, ngl, shares)
    return LlamaLayout(n_layer_all, tuple(out), (*gpus, "cpu"))


# Each tensor of a weight buffer starts at a multiple of its buffer type's alignment: CPU and pinned
# host buffers 32 (ggml-impl.h TENSOR_ALIGNMENT), CUDA / ROCm 128 (ggml-cuda.cu:897-901; measured:
# tests/fixtures/llama_memory_gpu, 27B +6144 B), Metal 32 (ggml-metal.cpp:269-273), Vulkan the device's
# minStorageBufferOffsetAlignment (16-64 on common devices; 64 assumed, an upper bound).
WEIGHT_ALIGNMENT = {"cpu": 32, "cuda": 128, "rocm": 128, "metal": 32, "vulkan": 64, "sycl": 32}


def _aligned(nbytes: int, alignment: int = 32) -> int:
    return -(-nbytes // alignment) * alignment


def override_device(name: str, overrides: Sequence[tuple[str, str]]) -> str | None:
    """The device the first matching ``-ot`` pattern sends tensor ``name`` to (llama-model-loader.cpp
    ``std::regex_search`` over the overrides in order), or None."""
    for pattern, dev in overrides:
        if re.search(pattern, name):
            return dev
    return None


def llama_weight_env(
    spec: ModelSpec,
    weights: WeightMap,
    layout: LlamaLayout,
    *,
    mtp: bool,
    overrides: Sequence[tuple[str, str]] = (),
    gpu_alignment: int = 32,
) -> dict[str, object]:
    """Weight bytes per device before expert offload (``w:<dev>``) and, per GPU, the cumulative routed
    expert bytes of layers ``< N`` (``exps:<dev>``, a list indexed by N = 0..n_layer_all) that
    ``--n-cpu-moe N`` moves to the CPU. ``overrides``: ``-ot`` (pattern, device) pairs, applied before
    ``--n-cpu-moe``; a tensor they move stays out of ``exps``. MTP tensors are skipped at load unless MTP
    speculation is on (llama-model-loader.cpp TENSOR_SKIP); vision tensors live in the mmproj file.
    ``gpu_alignment``: the GPU buffers' tensor alignment (:data:`WEIGHT_ALIGNMENT`)."""
    base = dict.fromkeys(layout.devices, 0)
    exps = {d: [0] * (layout.n_layer_all + 1) for d in layout.devices if d != "cpu"}
    has_output = any(t.role == "lm_head" for t in weights.tensors)
    for t in weights.tensors:
        if t.component == "vision" or (t.component == "mtp" and not mtp):
            continue
        host_size, gpu_size = _aligned(t.bytes), _aligned(t.bytes, gpu_alignment)
        moved = override_device(t.gguf_name, overrides) if overrides and t.gguf_name else None
        if moved is not None and moved not in base:
            raise ValueError(f"-ot sends {t.gguf_name} to {moved}, which this layout does not have")
        if t.role == "embed":
            base[moved or "cpu"] += host_size if (moved or "cpu") == "cpu" else gpu_size
            if not has_output and layout.output_device != "cpu":
                base[layout.output_device] += gpu_size  # the tied output, duplicated on its device
            continue
        # MTP tensors are GGUF block n_layer (blk.40 for a 40-layer model), like their inventory layer
        il = layout.n_layer_all if t.layer is None else t.layer
        dev = moved or layout.layer_device[il]
        size = host_size if dev == "cpu" else gpu_size
        base[dev] += size
        if moved is not None:
            continue
        if dev != "cpu" and t.layer is not None and t.gguf_name and EXPS_RE.search(t.gguf_name):
            exps[dev][il + 1] += size
    env: dict[str, object] = {f"w:{d}": b for d, b in base.items()}
    for d, per_layer in exps.items():
        cum, acc = [], 0
        for b in per_layer:
            acc += b
            cum.append(acc)
        env[f"exps:{d}"] = cum
        env[f"exps_max:{d}"] = max(per_layer)  # the largest single layer's experts (offload copies)
    return env


def llama_read_env(
    spec: ModelSpec,
    weights: WeightMap,
    layout: LlamaLayout,
    *,
    mtp: bool = False,
    overrides: Sequence[tuple[str, str]] = (),
) -> dict[str, object]:
    """Weight bytes one decoded token reads (:func:`qwenfit.core.formats.reads.tensor_read_bytes`) on the
    GPUs (``r:gpu``, all GPUs together: a layer split reads them one after another) and on the CPU
    (``r:cpu``) before expert offload, and the cumulative routed-expert reads of layers ``< N``
    (``rexps``) that ``--n-cpu-moe N`` moves to the CPU."""
    gpu = cpu = 0
    per_layer = [0] * (layout.n_layer_all + 1)
    for t in weights.tensors:
        if t.component == "vision" or (t.component == "mtp" and not mtp):
            continue
        n = tensor_read_bytes(spec, t)
        if t.role == "embed":  # tied: the output layer's copy on its device is what a token reads
            if spec.text.tie_word_embeddings and layout.output_device != "cpu":
                gpu += n
            else:
                cpu += n
            continue
        il = layout.n_layer_all if t.layer is None else t.layer
        moved = override_device(t.gguf_name, overrides) if overrides and t.gguf_name else None
        if (moved or layout.layer_device[il]) == "cpu":
            cpu += n
            continue
        gpu += n
        if t.layer is not None and t.gguf_name and EXPS_RE.search(t.gguf_name):
            per_layer[il + 1] += n
    cum, acc = [], 0
    for b in per_layer:
        acc += b
        cum.append(acc)
    return {"r:gpu": gpu, "r:cpu": cpu, "rexps": cum}
