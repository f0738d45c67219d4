"""Storage types of checkpoint tensors.

Safetensors dtype names and their sizes, from the safetensors format specification
(huggingface/safetensors ``safetensors/src/tensor.rs`` ``Dtype``; sub-byte types are bit sizes).
ggml block types and GPU quantization formats are added here by the quantization work.
"""

from __future__ import annotations

__all__ = ["SAFETENSORS_DTYPE_BITS", "safetensors_nbytes"]

# bits per element as stored; sub-byte types pack several elements per byte
SAFETENSORS_DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F4": 4,  # FP4 E2M1, two per byte
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "C64": 64,
}


def safetensors_nbytes(dtype: str, n_elements: int) -> int:
    """Bytes of ``n_elements`` stored as ``dtype`` (rounded up to whole bytes for sub-byte types)."""
    bits = SAFETENSORS_DTYPE_BITS[dtype]
    return (bits * n_elements + 7) // 8
