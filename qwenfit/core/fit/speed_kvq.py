"""A quantized KV cache in llama.cpp's CUDA FlashAttention decode (issue 19): which steps run the vector
kernel, whose attention at depth the decode model charges at its own rate (``attn_decode_kvq``).

llama.cpp (as vendored by llama-cpp-python 0.3.36), ggml/src/ggml-cuda/fattn.cu,
``ggml_cuda_get_best_fattn_kernel``: on an NVIDIA GPU with Turing tensor cores or newer (cc >= 7.5,
``turing_mma_available``, fattn.cu:638) a K/V cache of a quantized type (``ggml_is_quantized``: q4_0, q4_1,
q5_0, q5_1, q8_0 have vector-kernel instances, fattn.cu:525-539) takes ``BEST_FATTN_KERNEL_VEC`` when the
query has at most 2 columns on Ada Lovelace or newer (cc >= 8.9) and exactly 1 before (fattn.cu:649-658);
an F16 cache takes the tensor-core MMA kernel for head size 256 with GQA > 4 (27B 24/4, 35B-A3B 16/2,
122B/397B 32/2: fattn.cu:640-648, 664) and before Ada (gqa_opt_applies: fattn.cu:660-664).

The vector kernel is launched with ``ncols2 = 1`` (fattn-vec.cuh:541): one CTA per *query* head
(``blockIdx.z`` = head, K/V at ``head / gqa_ratio``: fattn-vec.cuh:107-111), so each KV head's cache is
read and dequantized once per query head of its group, the K dot products run as int8 ``dp4a`` against a
q8_1 copy of Q and V is dequantized to half per element, all on the CUDA cores (fattn-vec.cuh:181, 273,
337-364; fattn-common.cuh ``vec_dot_fattn_vec_KQ_q4_0``:149, ``dequantize_V_q4_0``:409), split over the
cached tokens (``gridDim.y``: fattn-common.cuh:1186-1212). Its attention FLOPs (4 H_q D_h per cached
token and layer, every query head's own) therefore run at a fraction of the FP16 peak of their own, far
below the packed MMA kernel's (``attn_decode``).

Not modelled: an F16 cache of the 0.8B-9B (GQA 4) takes the vector kernel too on Ada and newer
(fattn.cu:645-647), without the dequantization, a case no measurement here covers (it stays at
``attn_decode``). With more query columns per sequence (MTP verify) the quantized cache goes to the MMA
kernel after a conversion of K/V to F16 (fattn-common.cuh:1031-1090); that pass is not modelled (the MMA
rate applies).
Each sequence is its own stream (``kv_unified`` defaults to false, common/common.h:575), so the columns
are the query tokens of one sequence.
"""

from __future__ import annotations

__all__ = ["KVQ_TYPES", "vec_query_cols"]

# llama.cpp KV cache types with a CUDA FlashAttention vector-kernel instance that ggml_is_quantized
KVQ_TYPES = frozenset({"q4_0", "q4_1", "q5_0", "q5_1", "q8_0"})


def _cc(compute_capability: str | None) -> tuple[int, int] | None:
    try:
        major, minor = str(compute_capability or "").split(".")
        return int(major), int(minor)
    except ValueError:
        return None


def vec_query_cols(kv_cache: str | None, compute_capability: str | None) -> int:
    """The most query tokens per sequence for which llama.cpp's CUDA FlashAttention runs the vector
    kernel over a ``kv_cache`` cache on a GPU of ``compute_capability`` (module docstring): 2 on Ada
    Lovelace or newer, 1 on Turing / Ampere; 0 when the rule does not apply (an unquantized cache, an
    unknown or pre-Turing GPU, a non-NVIDIA target)."""
    cc = _cc(compute_capability)
    if kv_cache not in KVQ_TYPES or cc is None or cc < (7, 5):
        return 0
    return 2 if cc >= (8, 9) else 1
