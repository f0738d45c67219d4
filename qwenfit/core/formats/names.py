"""Quantization names: the one place that decides what a spelling means.

Two vocabularies share some names. llama.cpp file types are upper case (``Q4_K_M``, ``BF16``,
``F16``); GPU checkpoint formats and MLX formats are lower case (``fp8``, ``awq``, ``bf16``,
``mlx-4bit``). The rule (used by :func:`qwenfit.weights`, every engine's ``accepts``, the planner,
the quality table and the CLI):

1. an exact GPU/MLX format name is that format (``"bf16"`` is the safetensors checkpoint);
2. otherwise a name whose upper case is a llama.cpp file type is that file type (``"q4_k_m"``,
   ``"Bf16"``, ``"BF16"``);
3. otherwise a name whose lower case is a GPU/MLX format is that format (``"FP8"``);
4. a path ending in ``.gguf`` names a GGUF file ("quantize like this file");
5. a publisher's dynamic mix (unsloth's ``UD-Q4_K_XL``) is a GGUF name of its own, known only by its
   published files (:mod:`qwenfit.core.artifacts`).

With an engine family given, only that family's names count (vLLM reads ``"BF16"`` as its bf16
checkpoint; MLX takes ``mlx-*`` and the 16-bit checkpoints).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from qwenfit.core.formats.gguf import FILE_TYPES

__all__ = [
    "DYNAMIC_QUANT",
    "QUANT_OPTIONS",
    "QuantName",
    "dynamic_base",
    "family_names",
    "normalise",
    "why_not",
]

FAMILIES = ("gguf", "safetensors", "mlx")
_SIXTEEN_BIT = ("bf16", "fp16")  # the unquantized checkpoint, which MLX loads too
# keyword options of qwenfit.weights() (llama-quantize's and the converter's, and group_size for GPU
# formats): estimate() passes these to the weights and everything else to the engine
QUANT_OPTIONS = frozenset(
    {
        "pure",
        "output_tensor_type",
        "token_embedding_type",
        "tensor_types",
        "leave_output_tensor",
        "imatrix",
        "regime",
        "outtype",
        "mmproj_type",
        "group_size",
    }
)


# A publisher's own GGUF mixes (unsloth "dynamic" UD-* quants, llama.cpp's MXFP4_MOE is a file type):
# the name -> the llama-quantize file type whose tensor list they are scaled from when only the size
# is known. UD-Qn_K_XL/L/M/S keep attention and the shared tensors at higher types than Qn_K_M.
DYNAMIC_QUANT = re.compile(r"^UD-(?P<base>(?:IQ|Q)[1-8](?:_K)?(?:_[A-Z0-9]+)?)$", re.IGNORECASE)
_UD_BASE = {"Q2_K_XL": "Q2_K", "Q3_K_XL": "Q3_K_M", "Q4_K_XL": "Q4_K_M", "Q4_K_L": "Q4_K_M",
            "Q5_K_XL": "Q5_K_M", "Q6_K_XL": "Q6_K", "Q6_K_S": "Q6_K", "Q8_K_XL": "Q8_0"}  # fmt: skip


def dynamic_base(name: str) -> str | None:
    """The llama.cpp file type a publisher's dynamic quant (``UD-Q4_K_XL``) is modelled on, or None
    when ``name`` is not one."""
    m = DYNAMIC_QUANT.match(name.strip())
    if m is None:
        return None
    base = m.group("base").upper()
    return _UD_BASE.get(base, base)


@dataclass(frozen=True, slots=True)
class QuantName:
    """A resolved quantization: its canonical spelling and which weights family it belongs to."""

    canonical: str  # "Q4_K_M", "fp8", "mlx-4bit", or the path of a GGUF to copy
    family: str  # "gguf" | "safetensors" | "mlx"
    kind: str  # "file_type" | "gguf_file" | "format" | "dynamic" (a publisher's own GGUF mix)


def _formats() -> Mapping[str, object]:
    """The GPU and MLX formats (:data:`.gpu.FORMATS`), imported when a name is not a GGUF type."""
    from qwenfit.core.formats.gpu import FORMATS

    return FORMATS


def _format(name: str) -> QuantName:
    return QuantName(name, "mlx" if name.startswith("mlx-") else "safetensors", "format")


def normalise(quant: str, family: str | None = None) -> QuantName | None:
    """``quant`` resolved by the module's rule (within ``family`` when given), or None."""
    q = quant.strip()
    if not q:
        return None
    if q.endswith(".gguf"):
        return QuantName(q, "gguf", "gguf_file") if family in (None, "gguf") else None
    upper, lower = q.upper(), q.lower()
    if family is None:
        if q in _formats():
            return _format(q)
        if upper in FILE_TYPES:
            return QuantName(upper, "gguf", "file_type")
        if dynamic_base(upper):
            return QuantName(upper, "gguf", "dynamic")
        return _format(lower) if lower in _formats() else None
    if family == "gguf":
        if upper in FILE_TYPES:
            return QuantName(upper, "gguf", "file_type")
        return QuantName(upper, "gguf", "dynamic") if dynamic_base(upper) else None
    if lower not in _formats():
        return None
    if family == "mlx":
        return (
            QuantName(lower, "mlx", "format") if lower.startswith("mlx-") or lower in _SIXTEEN_BIT else None
        )
    return QuantName(lower, "safetensors", "format") if not lower.startswith("mlx-") else None


def family_names(family: str) -> tuple[str, ...]:
    """Every quantization name of a weights family."""
    if family == "gguf":
        return tuple(FILE_TYPES)
    if family == "mlx":
        return tuple(f for f in _formats() if f.startswith("mlx-") or f in _SIXTEEN_BIT)
    return tuple(f for f in _formats() if not f.startswith("mlx-"))


def why_not(quant: str, family: str, engine: str, engines_of: dict[str, str] | None = None) -> str:
    """Why ``engine`` (which loads ``family`` weights) cannot take ``quant``, with the nearest names;
    ``engines_of`` maps each family to the engines that load it, for the hint."""
    other = normalise(quant)
    hint_engines = engines_of or {}
    if other is not None and other.family != family:
        what = {
            "gguf": "a llama.cpp file type",
            "safetensors": "a safetensors format",
            "mlx": "an MLX format",
        }[other.family]
        if other.kind == "gguf_file":
            what = "a GGUF file"
        runs = hint_engines.get(other.family)
        return f"quant {quant}: {what}, which {engine} does not load" + (
            f"; use --engine {runs}" if runs else ""
        )
    names = family_names(family)
    import difflib  # here: only a misspelling needs it

    close = difflib.get_close_matches(
        quant.strip().upper() if family == "gguf" else quant.strip().lower(), names, n=3, cutoff=0.5
    )
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown quant {quant!r} for {engine}.{hint}"
