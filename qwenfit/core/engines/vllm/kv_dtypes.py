"""vLLM's ``--kv-cache-dtype`` choices for Qwen3.5 / Qwen3-Next on CUDA: which it accepts, on which GPU
generation and attention backend, and the bytes one token of one KV head takes (K and V, scales included).

vLLM 0.33.0 (paths under ``vllm/``; checked against vLLM's own classes for every catalog model, TP size
and CUDA capability by scripts/vllm_kv_dtypes.py -> tests/fixtures/vllm/qwen35_kv_dtypes.json):

- The names: ``config/cache.py:44`` (``CacheDType``). A name maps to a storage dtype
  (``utils/torch_utils.py:40``) and a ``KVQuantMode`` (``v1/kv_cache_interface.py:121``).
- The page: ``AttentionSpec.page_size_bytes`` = head slots x tokens x bytes per slot
  (``v1/kv_cache_interface.py:586-599``); dense slot = (K + V) x element size. The attention backend
  owns the packing (``customize_spec``, applied by ``v1/worker/utils.py:476`` and, for the hybrid
  alignment, ``platforms/interface.py:1041``; TurboQuant ``:987``). Every backend vLLM selects here has
  16 as its smallest kernel block, so the hybrid block alignment (``pool.py``) is unchanged.
- The backend: the attention layer asks ``v1/attention/selector.py`` ``get_attn_backend``, which on CUDA
  takes the first backend of ``platforms/cuda.py:84`` ``_get_backend_priorities`` (SM10x: FLASHINFER,
  FLASH_ATTN, TRITON_ATTN, FLEX_ATTENTION, TURBOQUANT; others: FLASH_ATTN first, then FLASHINFER) whose
  ``validate_configuration`` passes for head_dim 256, bf16, decoder; none: ``ValueError("No valid
  attention backend found for cuda with AttentionSelectorConfig(...)")`` (``platforms/cuda.py:473``).
- The Gated DeltaNet state is not affected by the KV dtype: its dtypes come from ``mamba_cache_dtype`` /
  ``mamba_ssm_cache_dtype`` only (``model_executor/layers/mamba/mamba_utils.py:98``).
- Below SM80 vLLM refuses the models' bfloat16 itself (``platforms/cuda.py:638``); capabilities are
  considered from 8.0 (A100) to 12.1 (GB10).

Short names below: ``flash_attn.py``, ``fa_utils.py``, ``flashinfer.py``, ``triton_attn.py``,
``turboquant_attn.py``, ``rocm_octave_attn.py`` are in ``v1/attention/backends/``; ``turboquant/config.py``
is ``model_executor/layers/quantization/turboquant/config.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from qwenfit.errors import SettingError

__all__ = [
    "KV_CACHE_DTYPES",
    "REFUSED_KV_CACHE_DTYPES",
    "KvDtype",
    "KvSupport",
    "kv_dtype",
    "kv_dtype_backend",
    "kv_dtype_support",
]

Capability = tuple[int, int]
_ANY = ((8, 0), (12, 9))  # every CUDA generation vLLM runs a bfloat16 model on
_FI_MAX = (12, 1)  # FlashInferBackend.supports_compute_capability: 8.0 <= cc <= 12.1 (flashinfer.py:696)
_FP_DENSE = (
    ((8, 0), (9, 9), "FLASH_ATTN"),
    ((10, 0), (10, 9), "FLASHINFER"),
    ((11, 0), (12, 9), "FLASH_ATTN"),
)
_FP8 = (((8, 0), (8, 9), "FLASHINFER"), ((9, 0), (9, 9), "FLASH_ATTN"), ((10, 0), _FI_MAX, "FLASHINFER"))


@dataclass(frozen=True, slots=True)
class KvDtype:
    """One ``--kv-cache-dtype`` vLLM accepts for these models, its page layout and where it runs.

    ``layout``: ``dense`` (K and V, ``element_bytes`` each; 0 = the model dtype), ``per_token_head``
    (``bits``-wide K and V plus one float32 scale each), ``nvfp4`` (4-bit K and V plus one fp8 scale per
    16 values), ``turboquant`` (one packed K|V slot: ``key_bits`` keys, ``value_bits`` values).
    ``backends``: (lowest capability, highest capability, attention backend vLLM selects), inclusive.
    """

    name: str
    layout: str
    backends: tuple[tuple[Capability, Capability, str], ...]
    note: str
    element_bytes: int = 0
    bits: int = 8
    key_bits: int = 0
    value_bits: int = 0

    def slot_bytes(self, head_dim: int, model_dtype_bytes: int = 2) -> int:
        """Bytes one KV head takes for one token in one attention layer (K and V, with scales)."""
        if self.layout == "dense":
            return 2 * head_dim * (self.element_bytes or model_dtype_bytes)
        if self.layout == "per_token_head":
            # triton_attn.py:308 customize_spec: (hs_k + hs_v) x 1 byte (int4: hs // 2) + 2 float32 scales
            data = head_dim * self.bits // 8
            return 2 * data + 2 * 4
        if self.layout == "nvfp4":
            # flashinfer.py:558 customize_spec: 2 head slots of nvfp4_kv_cache_full_dim (torch_utils.py:542)
            return 2 * (head_dim // 2 + head_dim // 16)
        if self.layout == "turboquant":
            # turboquant/config.py:129-175: FP8 keys are head_dim bytes, MSE keys ceil(d·bits/8) + fp16
            # norm; values ceil(d·bits/8) + fp16 scale + fp16 zero; the slot is rounded up to even
            # (turboquant_attn.py:141 customize_spec: state_content_bytes = slot_size_aligned)
            key = head_dim if self.key_bits == 8 else math.ceil(head_dim * self.key_bits / 8) + 2
            slot = key + math.ceil(head_dim * self.value_bits / 8) + 4
            return slot + slot % 2
        raise AssertionError(self.layout)

    def backend(self, capability: Capability) -> str | None:
        """The attention backend vLLM selects on a GPU of this compute capability (None: refused)."""
        return next((b for lo, hi, b in self.backends if lo <= capability <= hi), None)


def _tq(name: str, key_bits: int, value_bits: int) -> KvDtype:
    return KvDtype(
        name,
        "turboquant",
        ((_ANY[0], _ANY[1], "TURBOQUANT"),),
        f"TurboQuant {'FP8' if key_bits == 8 else f'{key_bits}-bit'} keys + {value_bits}-bit values, packed "
        "K|V slot per head (turboquant/config.py:20 TQ_PRESETS). Only the TURBOQUANT backend lists it "
        "(turboquant_attn.py:133), last in the CUDA priorities; no capability limit (Triton kernels, "
        "fp8e4b15 keys below SM89). Hybrid models keep no boundary layer at bf16 "
        "(turboquant/config.py:194, engine/arg_utils.py:2345). vLLM forces FlashAttention 2 for the "
        "prefill (engine/arg_utils.py:2754) and reserves a dequant workspace outside the KV pool.",
        key_bits=key_bits,
        value_bits=value_bits,
    )


def _pth(
    name: str, bits: int, backends: tuple[tuple[Capability, Capability, str], ...], note: str
) -> KvDtype:
    return KvDtype(
        name,
        "per_token_head",
        backends,
        f"{note} Only TRITON_ATTN lists it (triton_attn.py:326); its page packs one float32 scale after "
        "K and after V of each head (triton_attn.py:308).",
        bits=bits,
    )


_DENSE_NOTE = (
    "Default: the model dtype (bfloat16 for every catalog model). FLASHINFER on SM10x, FLASH_ATTN "
    "elsewhere (platforms/cuda.py:160)."
)
_FP8_NOTE = (
    "FP8 E4M3 with per-tensor scales. FLASH_ATTN (FA3) on SM90; elsewhere FLASH_ATTN refuses quantized KV "
    "(flash_attn.py:496, FA4 head_dim 256 falls back to FA2) and FLASHINFER serves it "
    "(flashinfer.py:573); TRITON_ATTN only if FlashInfer is missing (needs SM89+, triton_attn.py:514)."
)

KV_CACHE_DTYPES: dict[str, KvDtype] = {
    k.name: k
    for k in (
        KvDtype("auto", "dense", _FP_DENSE, _DENSE_NOTE),
        KvDtype(
            "bfloat16",
            "dense",
            _FP_DENSE,
            "Must equal the model dtype (config/vllm.py:1492). " + _DENSE_NOTE,
            element_bytes=2,
        ),
        KvDtype(
            "float16",
            "dense",
            _FP_DENSE,
            "Only for a model run in float16 (--dtype float16): vLLM refuses it for a bfloat16 model "
            "(config/vllm.py:1492).",
            element_bytes=2,
        ),
        KvDtype("fp8", "dense", _FP8, _FP8_NOTE, element_bytes=1),
        KvDtype("fp8_e4m3", "dense", _FP8, _FP8_NOTE, element_bytes=1),
        KvDtype(
            "fp8_e5m2",
            "dense",
            (((8, 0), _FI_MAX, "FLASHINFER"),),
            "FP8 E5M2: FLASH_ATTN never takes it (fa_utils.py:293); FLASHINFER on every generation.",
            element_bytes=1,
        ),
        _tq("turboquant_k8v4", 8, 4),
        _tq("turboquant_4bit_nc", 4, 4),
        _tq("turboquant_k3v4_nc", 3, 4),
        _tq("turboquant_3bit_nc", 3, 3),
        _pth(
            "int8_per_token_head",
            8,
            ((_ANY[0], _ANY[1], "TRITON_ATTN"),),
            "INT8 K/V, dynamic per-token-head scales.",
        ),
        _pth(
            "fp8_per_token_head",
            8,
            (((8, 9), _ANY[1], "TRITON_ATTN"),),
            "FP8 K/V, dynamic per-token-head scales; TritonAttentionImpl refuses FP8 below SM89 "
            "(triton_attn.py:514: 'native FP8 (fp8e4nv) requires SM89+').",
        ),
        _pth(
            "int4_per_token_head",
            4,
            ((_ANY[0], _ANY[1], "TRITON_ATTN"),),
            "INT4 K/V packed 2 per byte after a Hadamard rotation, zero point folded into the scale.",
        ),
        KvDtype(
            "nvfp4",
            "nvfp4",
            (((8, 0), (10, 9), "FLASHINFER"), ((12, 0), _FI_MAX, "FLASHINFER")),
            "NVFP4 K/V + FP8 block scales, FLASHINFER only (flashinfer.py:573): FlashInfer's fa2 path on "
            "SM8x/SM90/SM12x, trtllm-gen on SM10x (needs the TRTLLM cubins: flashinfer-cubin or NVIDIA's "
            "artifactory); refused on SM11x (flashinfer.py:654).",
        ),
        KvDtype(
            "nvfp4_4over6",
            "nvfp4",
            (((10, 0), (10, 9), "FLASHINFER"),),
            "NVFP4 layout with a max/6-or-max/4 scale search at store: FLASHINFER's trtllm-gen path only, "
            "so SM10x only (flashinfer.py:654).",
        ),
    )
}

_OCTAVE = "ROCm RDNA3/CDNA3 only (ROCM_OCTAVE: platforms/rocm.py:566, rocm_octave_attn.py:120)."
# name -> why vLLM 0.33.0 does not serve these models with it on CUDA
REFUSED_KV_CACHE_DTYPES: dict[str, str] = {
    "fp8_inc": "Intel Gaudi (HPU) FP8; no CUDA attention backend lists it (platforms/cuda.py:84).",
    "fp8_ds_mla": "DeepSeek sparse-MLA FP8 layout, MLA models only; no CUDA backend of a GQA model lists it.",
    "nvfp4_ds_mla": (
        "DeepSeek sparse-MLA NVFP4 layout, MLA models only. vLLM 0.33.0 does not refuse it here on SM10x: "
        "FlashInferBackend.supports_kv_cache_dtype matches the 'nvfp4' prefix (flashinfer.py:655), but the "
        "page stays dense uint8, 2 x head_dim bytes per head as fp8 (KVQuantMode.NVFP4_DS_MLA, "
        "kv_cache_interface.py:135, is not the NVFP4 mode customize_spec packs, flashinfer.py:561) while "
        "FlashInferImpl reads it as NVFP4: not a working configuration. Elsewhere: no backend."
    ),
    "octave_k3v4": _OCTAVE,
    "octave_k3v3": _OCTAVE,
    "octave_k3v3_compact": _OCTAVE,
    "ultraquant_4bit": (
        "ROCm: ULTRAQUANT is in vLLM's ROCm backend list only (platforms/rocm.py:567; FlyDSL MFMA decode); "
        "no backend of the CUDA priorities lists it (its packed slot would be 272 bytes per head, "
        "v1/attention/ops/ultraquant/format.py:195)."
    ),
}

_NO_BACKEND = (
    "No valid attention backend found for cuda with AttentionSelectorConfig(head_size={hd}, "
    "dtype=torch.bfloat16, kv_cache_dtype={name}, block_size=None, ..."
)


class KvSupport(NamedTuple):
    """Where vLLM accepts a KV dtype for these models: lowest compute capability (None: nowhere on CUDA),
    the attention backends it selects, and why."""

    min_capability: Capability | None
    backends: tuple[str, ...]
    note: str


def kv_dtype_support(name: str) -> KvSupport:
    """(min compute capability or None, backends vLLM selects, note) for a ``--kv-cache-dtype`` name."""
    if name in KV_CACHE_DTYPES:
        k = KV_CACHE_DTYPES[name]
        backends = tuple(dict.fromkeys(b for _, _, b in k.backends))
        return KvSupport(min(lo for lo, _, _ in k.backends), backends, k.note)
    if name in REFUSED_KV_CACHE_DTYPES:
        return KvSupport(None, (), REFUSED_KV_CACHE_DTYPES[name])
    raise _unknown(name)


def _unknown(name: str) -> SettingError:
    return SettingError(
        f"vLLM --kv-cache-dtype {name!r} is not a vLLM 0.33.0 choice; accepted for Qwen3.5 / Qwen3-Next on "
        f"CUDA: {', '.join(KV_CACHE_DTYPES)}"
    )


def _refused(name: str, why: str, model_dtype: str | None = None) -> SettingError:
    floats = {"float16", "bfloat16"} - {model_dtype} if model_dtype else set()
    accepted = ", ".join(n for n in KV_CACHE_DTYPES if n not in floats)
    return SettingError(
        f"vLLM 0.33.0 refuses --kv-cache-dtype {name} for Qwen3.5 / Qwen3-Next on CUDA: {why} "
        f"Accepted: {accepted}"
    )


def kv_dtype_backend(
    name: str, capability: Capability, *, model_dtype: str | None = None, head_dim: int = 256
) -> str:
    """The attention backend vLLM 0.33.0 selects for ``name`` on a GPU of ``capability`` (e.g. (9, 0)) for a
    model of ``model_dtype``; SettingError, quoting vLLM, where it refuses it there."""
    k = kv_dtype(name, model_dtype=model_dtype)
    backend = k.backend(capability)
    if backend is not None:
        return backend
    cc = f"{capability[0]}.{capability[1]}"
    if capability < _ANY[0]:
        why = (
            f"Bfloat16 is only supported on GPUs with compute capability of at least 8.0 (platforms/cuda.py"
            f":638); this GPU has {cc}."
        )
    elif name == "fp8_per_token_head" and capability < (8, 9):
        why = (
            f"on compute capability {cc}: FP8 KV cache is not supported by the Triton attention backend on "
            f"this GPU (compute capability {cc}); native FP8 (fp8e4nv) requires SM89+. Re-run with "
            "--kv-cache-dtype bfloat16. (triton_attn.py:514)"
        )
    else:
        why = f"on compute capability {cc} ({k.note}) vLLM says: " + _NO_BACKEND.format(
            hd=head_dim, name=name
        )
    floats = {"float16", "bfloat16"} - {model_dtype} if model_dtype else set()
    here = [n for n, other in KV_CACHE_DTYPES.items() if other.backend(capability) and n not in floats]
    raise SettingError(
        f"vLLM 0.33.0 refuses --kv-cache-dtype {name} {why} Accepted on compute capability {cc}: "
        f"{', '.join(here) or 'none'}"
    )


def kv_dtype(name: str, *, model_dtype: str | None = None, capability: Capability | None = None) -> KvDtype:
    """The accepted KV dtype ``name``; SettingError (naming it and listing the accepted ones) for a name vLLM
    refuses for these models, an explicit float dtype other than ``model_dtype`` (config/vllm.py:1492), or
    one it refuses on ``capability``."""
    if name in REFUSED_KV_CACHE_DTYPES:
        raise _refused(name, REFUSED_KV_CACHE_DTYPES[name])
    if name not in KV_CACHE_DTYPES:
        raise _unknown(name)
    if model_dtype is not None and name in ("float16", "bfloat16") and name != model_dtype:
        allowed = f"`auto` or `{model_dtype}`" if model_dtype in ("float16", "bfloat16") else "`auto`"
        raise _refused(
            name,
            f'kv_cache_dtype="{name}" is incompatible with dtype="{model_dtype}". Please set '
            f"`--kv-cache-dtype` to {allowed}. (config/vllm.py:1506)",
            model_dtype,
        )
    if capability is not None:
        kv_dtype_backend(name, capability)
    return KV_CACHE_DTYPES[name]
