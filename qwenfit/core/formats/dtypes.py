"""Storage types of checkpoint tensors.

Safetensors dtype names and their sizes, from the safetensors format specification
(huggingface/safetensors ``safetensors/src/tensor.rs`` ``Dtype``; sub-byte types are bit sizes).
ggml block types and GPU quantization formats are added here by the quantization work.
"""

from __future__ import annotations

__all__ = [
    "GGML_TYPES",
    "GGML_TYPES_BY_ID",
    "LLAMA_FILE_TYPES",
    "SAFETENSORS_DTYPE_BITS",
    "GGMLType",
    "safetensors_nbytes",
]

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


# --------------------------------------------------------------------------------------------------
# ggml tensor types (GGUF): id, name, weights per block, bytes per block.
# Source: ggml/src/ggml.c type_traits and gguf-py/gguf/constants.py GGML_QUANT_SIZES, llama.cpp
# commit 0c1e57098bba (vendored in llama-cpp-python 0.3.36); QK_K = 256. Byte layouts per block:
# e.g. block_q4_K = 2 fp16 scales + 12 bytes of 6-bit sub-scales + 128 bytes of nibbles = 144.


class GGMLType:
    """One ggml storage type: ``n_bytes(n)`` is exact for whole blocks."""

    __slots__ = ("block_size", "id", "name", "type_size")

    def __init__(self, type_id: int, name: str, block_size: int, type_size: int) -> None:
        self.id = type_id
        self.name = name
        self.block_size = block_size
        self.type_size = type_size

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.type_size / self.block_size

    def row_bytes(self, n_per_row: int) -> int:
        """ggml_row_size: bytes of one row of ``n_per_row`` weights (must be whole blocks)."""
        if n_per_row % self.block_size:
            raise ValueError(
                f"{self.name}: a row of {n_per_row} is not a multiple of the block size {self.block_size}"
            )
        return n_per_row // self.block_size * self.type_size

    def n_bytes(self, shape_ggml: tuple[int, ...]) -> int:
        """ggml_nbytes of a tensor with ggml shape (ne0 first)."""
        if not shape_ggml:
            return self.type_size
        rows = 1
        for d in shape_ggml[1:]:
            rows *= d
        return rows * self.row_bytes(shape_ggml[0])

    def __repr__(self) -> str:
        return f"GGMLType({self.name}, {self.block_size} weights / {self.type_size} B)"


_QK_K = 256
GGML_TYPES: dict[str, GGMLType] = {
    t.name: t
    for t in (
        GGMLType(0, "F32", 1, 4),
        GGMLType(1, "F16", 1, 2),
        GGMLType(2, "Q4_0", 32, 2 + 16),
        GGMLType(3, "Q4_1", 32, 2 + 2 + 16),
        GGMLType(6, "Q5_0", 32, 2 + 4 + 16),
        GGMLType(7, "Q5_1", 32, 2 + 2 + 4 + 16),
        GGMLType(8, "Q8_0", 32, 2 + 32),
        GGMLType(9, "Q8_1", 32, 2 + 2 + 32),
        GGMLType(10, "Q2_K", _QK_K, 2 + 2 + _QK_K // 16 + _QK_K // 4),
        GGMLType(11, "Q3_K", _QK_K, 2 + _QK_K // 4 + _QK_K // 8 + 12),
        GGMLType(12, "Q4_K", _QK_K, 2 + 2 + _QK_K // 2 + 12),
        GGMLType(13, "Q5_K", _QK_K, 2 + 2 + _QK_K // 2 + _QK_K // 8 + 12),
        GGMLType(14, "Q6_K", _QK_K, 2 + _QK_K // 2 + _QK_K // 4 + _QK_K // 16),
        GGMLType(15, "Q8_K", _QK_K, 4 + _QK_K + _QK_K // 8),
        GGMLType(16, "IQ2_XXS", _QK_K, 2 + _QK_K // 4),
        GGMLType(17, "IQ2_XS", _QK_K, 2 + _QK_K // 4 + _QK_K // 32),
        GGMLType(18, "IQ3_XXS", _QK_K, 2 + _QK_K // 4 + _QK_K // 8),
        GGMLType(19, "IQ1_S", _QK_K, 2 + _QK_K // 8 + _QK_K // 16),
        GGMLType(20, "IQ4_NL", 32, 2 + 16),
        GGMLType(21, "IQ3_S", _QK_K, 2 + _QK_K // 4 + _QK_K // 8 + _QK_K // 32 + 4),
        GGMLType(22, "IQ2_S", _QK_K, 2 + _QK_K // 4 + _QK_K // 16),
        GGMLType(23, "IQ4_XS", _QK_K, 2 + 2 + _QK_K // 2 + _QK_K // 64),
        GGMLType(24, "I8", 1, 1),
        GGMLType(25, "I16", 1, 2),
        GGMLType(26, "I32", 1, 4),
        GGMLType(27, "I64", 1, 8),
        GGMLType(28, "F64", 1, 8),
        GGMLType(29, "IQ1_M", _QK_K, _QK_K // 8 + _QK_K // 16 + _QK_K // 32),
        GGMLType(30, "BF16", 1, 2),
        GGMLType(34, "TQ1_0", _QK_K, 2 + 4 * 13),
        GGMLType(35, "TQ2_0", _QK_K, 2 + 64),
        GGMLType(39, "MXFP4", 32, 1 + 16),
        GGMLType(40, "NVFP4", 64, 4 + 32),
        GGMLType(41, "Q1_0", 128, 2 + 16),
        GGMLType(42, "Q2_0", 64, 2 + 16),
    )
}
GGML_TYPES_BY_ID: dict[int, GGMLType] = {t.id: t for t in GGML_TYPES.values()}

# llama_ftype (general.file_type) -> llama-quantize name; gguf-py LlamaFileType, same commit
LLAMA_FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M",
    18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S",
    25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M",
    32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0", 41: "Q2_0",
    1024: "GUESSED",
}  # fmt: skip
