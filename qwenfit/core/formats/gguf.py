"""llama.cpp's per-tensor type choice for every ``llama-quantize`` file type, reproduced.

Source: ``src/llama-quant.cpp`` of llama.cpp commit 0c1e57098bba (vendored in llama-cpp-python
0.3.36): ``tensor_allows_quantization``, ``tensor_get_category``, ``llama_tensor_get_type[_impl]``,
``tensor_type_fallback``, ``llama_ftype_get_default_type``, ``tensor_requires_imatrix`` and the
counters of ``init_quantize_state_counters``. Checked tensor by tensor against
``llama-quantize --dry-run`` (tests/fixtures/llama_quantize, scripts/llama_quantize_fixtures.py).

Two regimes (llama.cpp src/llama-quant.cpp before and after PR #19770):
- ``current``: the categorised rules after llama.cpp PR #19770 (commit 1dab5f5a44, March 2026):
  ``attn_qkv`` (the Gated DeltaNet input projection) is "attn_v-like" and shares the attn_v rules
  and counter; the MTP layer counts in ``n_ffn_*``; 32-block targets fall back to F16.
- ``pre-2026-03``: the rules every Feb–Mar 2026 Qwen3.5 GGUF was made with: ``attn_qkv`` has its
  own branch, only ``attn_v`` takes the attn_v rules; GGUFs of that time carry no MTP layer.

Tensors are visited in llama.cpp's ``weight_name_comparer`` order (non-``blk`` tensors first, then
by layer number, then by name), because the attn_v and dense ffn rules depend on running counters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from qwenfit.core.formats.dtypes import GGML_TYPES, GGMLType

__all__ = [
    "FILE_TYPES",
    "REGIMES",
    "GGUFSource",
    "LlamaQuantOptions",
    "QuantizedTensor",
    "choose_types",
    "converter_sources",
    "fallback_type",
    "ggml_n_dims",
    "gguf_header_bytes",
    "visiting_order",
]

Regime = Literal["current", "pre-2026-03"]
REGIMES: tuple[Regime, ...] = ("current", "pre-2026-03")

# llama-quantize file type -> default ggml type (llama_ftype_get_default_type)
FILE_TYPES: dict[str, str] = {
    "Q4_0": "Q4_0", "Q4_1": "Q4_1", "Q5_0": "Q5_0", "Q5_1": "Q5_1", "Q8_0": "Q8_0",
    "F16": "F16", "BF16": "BF16", "F32": "F32", "Q1_0": "Q1_0", "Q2_0": "Q2_0",
    "MXFP4_MOE": "MXFP4",
    "Q2_K_S": "Q2_K", "Q2_K": "Q2_K", "IQ3_XS": "IQ3_S",
    "Q3_K_S": "Q3_K", "Q3_K_M": "Q3_K", "Q3_K_L": "Q3_K",
    "Q4_K_S": "Q4_K", "Q4_K_M": "Q4_K", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K",
    "TQ1_0": "TQ1_0", "TQ2_0": "TQ2_0",
    "IQ2_XXS": "IQ2_XXS", "IQ2_XS": "IQ2_XS", "IQ2_S": "IQ2_XS", "IQ2_M": "IQ2_S",
    "IQ3_XXS": "IQ3_XXS", "IQ1_S": "IQ1_S", "IQ1_M": "IQ1_M",
    "IQ4_NL": "IQ4_NL", "IQ4_XS": "IQ4_XS", "IQ3_S": "IQ3_S", "IQ3_M": "IQ3_S",
}  # fmt: skip

_FLOAT_TYPES = frozenset({"F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64"})
_LOW_BIT = frozenset({"IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"})
_BLK = re.compile(r"^blk\.(\d+)\.")


def ggml_n_dims(ne: Sequence[int]) -> int:
    """ggml_n_dims: 1 + index of the last dimension larger than 1 (at least 1)."""
    for i in range(len(ne) - 1, 0, -1):
        if ne[i] > 1:
            return i + 1
    return 1


@dataclass(frozen=True, slots=True)
class GGUFSource:
    """A tensor of the GGUF being quantized: its name, ggml shape (ne0 first) and type."""

    name: str
    ne: tuple[int, ...]
    type: str

    @property
    def nbytes(self) -> int:
        return GGML_TYPES[self.type].n_bytes(self.ne)


@dataclass(frozen=True, slots=True)
class LlamaQuantOptions:
    """``llama-quantize`` options that change types.

    ``tensor_types`` are ``--tensor-type REGEX=TYPE`` overrides (first match wins, searched
    anywhere in the name); ``leave_output_tensor`` keeps ``output.weight`` as it is; ``imatrix``
    says whether an importance matrix is given (some IQ3/IQ4/Q4_0 rules depend on it).
    """

    pure: bool = False
    output_tensor_type: str | None = None
    token_embedding_type: str | None = None
    tensor_types: tuple[tuple[str, str], ...] = ()
    leave_output_tensor: bool = False
    imatrix: bool = False
    regime: Regime = "current"
    _compiled: tuple[tuple[re.Pattern[str], str], ...] = field(
        default=(), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for kind in (self.output_tensor_type, self.token_embedding_type, *(t for _, t in self.tensor_types)):
            if kind is not None and kind not in GGML_TYPES:
                raise ValueError(f"unknown ggml type {kind!r}; known: {', '.join(GGML_TYPES)}")
        if self.regime not in REGIMES:
            raise ValueError(f"unknown regime {self.regime!r}; known: {', '.join(REGIMES)}")
        compiled = []
        for pattern, kind in self.tensor_types:
            try:
                compiled.append((re.compile(pattern), kind))
            except re.error as exc:
                raise ValueError(f"--tensor-type pattern {pattern!r} is not a valid regex: {exc}") from None
        object.__setattr__(self, "_compiled", tuple(compiled))


@dataclass(frozen=True, slots=True)
class QuantizedTensor:
    name: str
    ne: tuple[int, ...]
    source_type: str
    type: str
    bytes: int
    requires_imatrix: bool
    fallback: bool  # the rules' choice did not fit ne0 and was replaced


def _category(name: str) -> str:
    """tensor_get_category: the first substring that matches decides."""
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    for needle, cat in (
        ("attn_qkv.weight", "attn_qkv"),
        ("attn_kv_b.weight", "attn_kv_b"),
        ("attn_v.weight", "attn_v"),
        ("attn_k.weight", "attn_k"),
        ("attn_q.weight", "attn_q"),
        ("attn_output.weight", "attn_output"),
        ("ffn_up", "ffn_up"),
        ("ffn_gate", "ffn_gate"),
        ("ffn_down", "ffn_down"),
    ):
        if needle in name:
            return cat
    return "other"


_NOT_QUANTIZED = (
    "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel", "per_layer_model_proj", "ssm_conv1d",
    "shortconv.conv.weight", "indexer.k_proj.weight", "indexer.q_proj.weight", "attn_rel_b.weight",
    ".position_embd", ".rel_pos", ".patch_embd", ".patch_merger",
)  # fmt: skip


def _allows_quantization(name: str, ne: tuple[int, ...], opts: LlamaQuantOptions) -> bool:
    """tensor_allows_quantization, the checks that can apply to Qwen3.5 / Qwen3-Next GGUFs."""
    return _allows(name, ne, opts.leave_output_tensor)


def _allows(name: str, ne: tuple[int, ...], leave_output_tensor: bool) -> bool:
    if ggml_n_dims(ne) < 2 or not name.endswith("weight"):
        return False
    if "_norm.weight" in name or (leave_output_tensor and name == "output.weight"):
        return False
    return not any(x in name for x in _NOT_QUANTIZED) and not name.startswith(("time_mix_", "sam."))


def _sort_key(name: str) -> tuple[int, str]:
    m = _BLK.match(name)
    return (int(m.group(1)) if m else -1, name)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What the rules read of a tensor list whatever the file type: the tensors in llama.cpp's visiting
    order with each one's category and whether it may be quantized, and the counts the state keeps."""

    rows: tuple[tuple[GGUFSource, str, bool], ...]
    n_attention_wv: int
    has_tied_embeddings: bool


def visiting_order(tensors: Iterable[GGUFSource]) -> list[GGUFSource]:
    """The tensors in the order llama-quantize visits them (that of :func:`choose_types`' result)."""
    return sorted(tensors, key=lambda t: _sort_key(t.name))


@functools.lru_cache(maxsize=64)
def _prepare(tensors: tuple[GGUFSource, ...], leave_output_tensor: bool) -> _Prepared:
    """Shared by every file type of one model (a plan quantizes each model many ways)."""
    ordered = visiting_order(tensors)
    rows = tuple((t, _category(t.name), _allows(t.name, t.ne, leave_output_tensor)) for t in ordered)
    attn_v_like = ("attn_v", "attn_qkv", "attn_kv_b")
    return _Prepared(
        rows,
        # both regimes count attn_v, attn_qkv and attn_kv_b in n_attention_wv
        n_attention_wv=sum(1 for _, cat, _ in rows if cat in attn_v_like),
        has_tied_embeddings=not any(t.name == "output.weight" for t in ordered),
    )


class _State:
    """quantize_state_impl: counters and model facts the rules read."""

    def __init__(
        self, prepared: _Prepared, *, ftype: str, n_gqa: int, n_expert: int, n_layer_all: int,
        opts: LlamaQuantOptions,
    ) -> None:  # fmt: skip
        self.ftype = ftype
        self.n_gqa = n_gqa
        self.n_expert = n_expert  # hparams.n_expert: 0 for dense models
        self.opts = opts
        self.old = opts.regime == "pre-2026-03"
        self.n_attention_wv = prepared.n_attention_wv
        self.has_tied_embeddings = prepared.has_tied_embeddings
        self.n_ffn = n_layer_all
        self.i_attention_wv = self.i_ffn_down = self.i_ffn_gate = self.i_ffn_up = 0

    def is_attn_v_like(self, cat: str) -> bool:
        return cat == "attn_v" if self.old else cat in ("attn_v", "attn_qkv", "attn_kv_b")

    def layer(self, counter: int, name: str) -> int:
        """layer_info: the layer from the name for MoE models, the running counter otherwise."""
        if max(1, self.n_expert) > 1:
            m = _BLK.match(name)
            if m is None:
                raise ValueError(f"cannot determine the layer of {name!r}")
            layer = int(m.group(1))
            if not 0 <= layer < self.n_ffn:
                raise ValueError(
                    f"layer {layer} of {name!r} is outside [0, {self.n_ffn}): "
                    "an MTP layer needs the current regime"
                )
            return layer
        return counter


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _impl(qs: _State, new: str, t: GGUFSource, cat: str) -> str:
    """llama_tensor_get_type_impl for one tensor (non-Falcon, non-70B, non-GLM5 model)."""
    f = qs.ftype
    gqa = qs.n_gqa
    n_exp = qs.n_expert
    if cat == "output" or (qs.has_tied_embeddings and cat == "token_embd"):
        if qs.opts.output_tensor_type is not None:
            return qs.opts.output_tensor_type
        if f == "MXFP4_MOE" or t.ne[0] % GGML_TYPES[new].block_size:
            return "Q8_0"
        if f in ("IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"):
            return "Q5_K"
        return new if new == "Q8_0" else "Q6_K"
    if f == "MXFP4_MOE":
        return "MXFP4" if len(t.ne) > 2 and t.ne[2] > 1 else "Q8_0"
    if cat == "token_embd":
        if qs.opts.token_embedding_type is not None:
            return qs.opts.token_embedding_type
        if f in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
            return "Q2_K"
        if f in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
            return "IQ3_S"
        if f in ("TQ1_0", "TQ2_0", "Q2_0"):
            return "Q4_K"
        return new
    if f in _LOW_BIT:
        if qs.is_attn_v_like(cat):
            new = "Q4_K" if gqa >= 4 or n_exp >= 4 else ("IQ3_S" if f in ("IQ2_S", "IQ2_M") else "Q2_K")
            qs.i_attention_wv += 1
        elif n_exp == 8 and cat == "attn_k":
            new = "Q4_K"
        elif cat == "ffn_down":
            if qs.i_ffn_down < qs.n_ffn // 8:
                new = "IQ3_S" if f in ("IQ2_S", "IQ2_M") else "Q2_K"
            qs.i_ffn_down += 1
        elif cat == "attn_output":
            if n_exp == 8:
                new = "Q5_K"
            elif f in ("IQ1_S", "IQ1_M"):
                new = "IQ2_XXS"
            elif f in ("IQ2_S", "IQ2_M"):
                new = "IQ3_S"
        return new
    if qs.is_attn_v_like(cat):
        i, n = qs.i_attention_wv, qs.n_attention_wv
        if f == "Q2_K":
            new = "Q4_K" if gqa >= 4 else "Q3_K"
        elif f == "Q2_K_S" and gqa >= 4:
            new = "Q4_K"
        elif f == "IQ3_XXS":
            new = "Q4_K" if gqa >= 4 else ("IQ3_XXS" if qs.opts.imatrix else "IQ3_S")
        elif (f in ("IQ3_XS", "IQ3_S") and gqa >= 4) or f == "IQ3_M":
            new = "Q4_K"
        elif f == "Q3_K_M":
            new = "Q5_K" if i < 2 else "Q4_K"
        elif f == "Q3_K_L" or (f in ("IQ4_NL", "IQ4_XS") and gqa >= 4):
            new = "Q5_K"
        elif f in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i, n):
            new = "Q6_K"
        elif f == "Q4_K_S" and i < 4:
            new = "Q5_K"
        if n_exp == 8:
            new = "Q8_0"
        qs.i_attention_wv += 1
        return new
    if cat == "attn_k":
        if n_exp == 8:
            return "Q8_0"
        if f == "IQ3_XS":
            return "IQ3_XXS"
        if f == "IQ3_XXS":
            return "IQ2_S"
        return new
    if cat == "attn_q":
        if f == "IQ3_XS":
            return "IQ3_XXS"
        if f == "IQ3_XXS":
            return "IQ2_S"
        return new
    if cat == "ffn_down":
        i, n = qs.layer(qs.i_ffn_down, t.name), qs.n_ffn
        if f == "Q2_K":
            new = "Q3_K"
        elif f == "Q2_K_S":
            if i < n // 8:
                new = "Q4_K"
        elif f == "IQ3_XXS" and not qs.opts.imatrix:
            new = "Q4_K" if i < n // 8 else "Q3_K"
        elif f == "Q3_K_M":
            new = "Q5_K" if i < n // 16 else "Q4_K"
        elif f == "IQ3_M" and (i < n // 8 or (n_exp == 8 and _use_more_bits(i, n))):
            new = "Q4_K"
        elif f == "Q3_K_L":
            new = "Q5_K"
        elif f == "Q4_K_M":
            if _use_more_bits(i, n):
                new = "Q6_K"
        elif i < n // 8 and f in ("IQ4_NL", "IQ4_XS") and not qs.opts.imatrix:
            new = "Q5_K"
        elif f == "Q5_K_M" and _use_more_bits(i, n):
            new = "Q6_K"
        elif f == "Q4_K_S" and i < n // 8:
            new = "Q5_K"
        elif f in ("Q4_0", "Q5_0") and qs.opts.imatrix and i < n // 8:
            new = "Q4_1" if f == "Q4_0" else "Q5_1"
        qs.i_ffn_down += 1
        return new
    if cat == "attn_output":
        if n_exp == 8:
            if f in ("Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S",
                     "IQ3_M", "IQ4_XS"):  # fmt: skip
                return "Q5_K"
            return new
        return {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K", "IQ3_M": "Q4_K"}.get(
            f, new
        )
    if cat == "attn_qkv":  # reachable only in the pre-2026-03 regime
        if f in ("Q3_K_M", "Q3_K_L", "IQ3_M"):
            return "Q4_K"
        return {"Q4_K_M": "Q5_K", "Q5_K_M": "Q6_K"}.get(f, new)
    if cat in ("ffn_gate", "ffn_up"):
        counter = qs.i_ffn_gate if cat == "ffn_gate" else qs.i_ffn_up
        i, n = qs.layer(counter, t.name), qs.n_ffn
        if f == "IQ3_XS" and n // 8 <= i < 7 * n // 8:
            new = "IQ3_XXS"
        if cat == "ffn_gate":
            qs.i_ffn_gate += 1
        else:
            qs.i_ffn_up += 1
        return new
    return new


_FALLBACK_CURRENT = {
    "IQ1_S": "IQ4_NL", "IQ1_M": "IQ4_NL", "IQ2_XXS": "IQ4_NL", "IQ2_XS": "IQ4_NL", "IQ2_S": "IQ4_NL",
    "IQ3_XXS": "IQ4_NL", "IQ3_S": "IQ4_NL", "IQ4_XS": "IQ4_NL",
    "Q2_0": "Q4_0", "Q2_K": "Q4_0", "Q3_K": "Q4_0", "TQ1_0": "Q4_0", "TQ2_0": "Q4_0",
    "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0",
}  # fmt: skip
# before PR #19770 Q2_K and Q3_K fell back to IQ4_NL (same 18 bytes per 32 weights as Q4_0)
_FALLBACK_OLD = {**_FALLBACK_CURRENT, "Q2_K": "IQ4_NL", "Q3_K": "IQ4_NL"}


def fallback_type(new: str, ncols: int, regime: Regime) -> tuple[str, bool]:
    """tensor_type_fallback: a type whose block divides ne0 (F16 as the last resort)."""
    block = GGML_TYPES[new].block_size
    if ncols % block == 0:
        return new, False
    table = _FALLBACK_OLD if regime == "pre-2026-03" else _FALLBACK_CURRENT
    if new in table:
        out = table[new]
    elif block <= 32:
        out = new  # already a 32-block type: nothing smaller to demote to
    else:
        raise ValueError(f"llama.cpp defines no fallback for {new} (a row of {ncols} is not whole blocks)")
    if ncols % GGML_TYPES[out].block_size:
        out = "F16"
    return out, True


def _requires_imatrix(name: str, kind: str, ftype: str) -> bool:
    if name in ("token_embd.weight", "per_layer_token_embd.weight", "output.weight"):
        return False
    if kind in ("IQ3_XXS", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_M", "IQ1_S"):
        return True
    return kind == "Q2_K" and ftype == "Q2_K_S"


def choose_types(
    tensors: Iterable[GGUFSource],
    ftype: str,
    *,
    n_head: int,
    n_head_kv: int,
    n_expert: int,
    n_layer_all: int,
    options: LlamaQuantOptions | None = None,
) -> list[QuantizedTensor]:
    """The type and exact bytes llama-quantize gives every tensor, in llama.cpp's visiting order.

    ``n_layer_all`` counts decoder and MTP layers (``block_count``); ``n_expert`` is 0 for dense
    models. Bytes are ``nrows × ggml_row_size(type, ne0)`` as llama-quantize computes them.
    """
    opts = options or LlamaQuantOptions()
    if ftype not in FILE_TYPES:
        raise ValueError(f"unknown llama-quantize file type {ftype!r}; known: {', '.join(FILE_TYPES)}")
    prepared = _prepare(tuple(tensors), opts.leave_output_tensor)
    default = FILE_TYPES[ftype]
    quantized_default = default not in _FLOAT_TYPES
    qs = _State(
        prepared, ftype=ftype, n_gqa=n_head // n_head_kv if n_head_kv else 0, n_expert=n_expert,
        n_layer_all=n_layer_all, opts=opts,
    )  # fmt: skip
    out: list[QuantizedTensor] = []
    for t, cat, allowed in prepared.rows:
        new, fell_back = t.type, False
        if allowed:
            new = _choose_one(qs, t, cat, default, quantized_default)
            if quantized_default:
                new, fell_back = fallback_type(new, t.ne[0], opts.regime)
        gtype: GGMLType = GGML_TYPES[new]
        nbytes = t.nbytes if new == t.type else gtype.n_bytes(t.ne)
        requires = _requires_imatrix(t.name, new, ftype)
        out.append(QuantizedTensor(t.name, t.ne, t.type, new, nbytes, requires, fell_back))
    return out


def _choose_one(qs: _State, t: GGUFSource, cat: str, default: str, quantized_default: bool) -> str:
    """llama_tensor_get_type (the outer wrapper) for a tensor that may be quantized."""
    opts = qs.opts
    if opts.token_embedding_type is not None and cat == "token_embd":
        return opts.token_embedding_type
    if opts.output_tensor_type is not None and cat == "output":
        return opts.output_tensor_type
    if not quantized_default:
        return default
    for pattern, kind in opts._compiled:
        if pattern.search(t.name):
            return kind  # a manual override skips the mix rules
    if opts.pure:
        return default
    return _impl(qs, default, t, cat)


def converter_sources(
    tensors: Iterable[tuple[str, tuple[int, ...]]], outtype: str = "BF16"
) -> list[GGUFSource]:
    """The types ``convert_hf_to_gguf.py --outtype`` writes (conversion/base.py prepare_tensors).

    F32 is forced for 1-D tensors, ``*_norm.weight``, the routers (``ffn_gate_inp``,
    ``ffn_gate_inp_shexp``), ``ssm_conv1d`` and names not ending in ``.weight`` (``ssm_a``,
    ``ssm_dt.bias``); everything else takes ``outtype``.
    """
    if outtype not in ("BF16", "F16", "F32"):
        raise ValueError(f"converter outtype must be BF16, F16 or F32, not {outtype!r}")
    return list(_converter_sources(tuple(tensors), outtype))


@functools.lru_cache(maxsize=64)
def _converter_sources(
    tensors: tuple[tuple[str, tuple[int, ...]], ...], outtype: str
) -> tuple[GGUFSource, ...]:
    out = []
    for name, ne in tensors:
        f32 = (
            ggml_n_dims(ne) <= 1
            or name.endswith("_norm.weight")
            or ".ffn_gate_inp." in name
            or ".ffn_gate_inp_shexp." in name
            or ".ssm_conv1d." in name
            or not name.endswith(".weight")
        )
        out.append(GGUFSource(name, ne, "F32" if f32 else outtype))
    return tuple(out)


# --------------------------------------------------------------------------------------------------
# GGUF file size: tensor data + header (metadata key-values and tensor infos), 32-byte aligned.

# The tokenizer block (248,320 token strings, 247,587 merges, token types, chat template) and the
# general.* keys of the published Qwen3.5 GGUFs: fitted on unsloth's Qwen3.5-35B-A3B Q8_0 (36,903,139,968 B
# = 36,892,150,272 B of tensors + 24 B fixed header + 46,576 B of tensor infos + 1,072 B of hyperparameter
# keys + this). The real token strings are not available offline, so this part is an estimate: the
# same constant predicts unsloth's 27B, 122B and 397B Q8_0 files to within 608 bytes
# (tests/unit/test_llama_quant.py).
QWEN35_TOKENIZER_METADATA_BYTES = 10_942_024
# Qwen3-Next uses the 151,936-token Qwen3 tokenizer: ~5.97 MB of metadata in published Qwen3 MoE GGUFs
# (Qwen/Qwen3-30B-A3B-GGUF Q8_0); rounded, an estimate.
QWEN3_TOKENIZER_METADATA_BYTES = 5_970_000


def gguf_header_bytes(names_and_ne: Iterable[tuple[str, tuple[int, ...]]], *, arch: str, n_layers: int,
                      moe: bool, vocab_size: int, mtp_layers: int = 0) -> int:  # fmt: skip
    """Estimated header bytes of a text GGUF (labelled estimate: see QWEN35_TOKENIZER_METADATA_BYTES).

    Exact parts: the fixed 24-byte header, each tensor info (8 + name + 4 + 8·n_dims + 4 + 8 bytes) and
    the hyperparameter keys the converter writes; the tokenizer/general block is the fitted constant.
    """
    infos = sum(8 + len(name.encode()) + 4 + 8 * len(ne) + 4 + 8 for name, ne in names_and_ne)
    scalars = ["block_count", "context_length", "embedding_length", "attention.head_count",
               "attention.head_count_kv", "attention.key_length", "attention.value_length",
               "attention.layer_norm_rms_epsilon", "rope.freq_base", "rope.dimension_count",
               "ssm.conv_kernel", "ssm.state_size", "ssm.group_count", "ssm.time_step_rank",
               "ssm.inner_size", "full_attention_interval"]  # fmt: skip
    scalars += (["expert_count", "expert_used_count", "expert_feed_forward_length",
                 "expert_shared_feed_forward_length"] if moe else ["feed_forward_length"])  # fmt: skip
    if mtp_layers:
        scalars.append("nextn_predict_layers")
    kv = sum(8 + len(f"{arch}.{k}") + 4 + 4 for k in scalars)
    kv += 8 + len(f"{arch}.rope.dimension_sections") + 4 + 4 + 8 + 4 * 4  # int32[4]
    kv += 8 + len(f"{arch}.attention.recurrent_layers") + 4 + 4 + 8 + (n_layers + mtp_layers)  # bool[]
    tokenizer = QWEN35_TOKENIZER_METADATA_BYTES if vocab_size == 248320 else QWEN3_TOKENIZER_METADATA_BYTES
    header = 24 + kv + infos + tokenizer
    return -(-header // 32) * 32
