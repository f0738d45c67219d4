"""WeightMap: the weights of a model, per tensor, with their storage type and exact bytes.

``weights_as_stored`` gives the weights exactly as a checkpoint stores them: from the file headers
when the spec was read from files (quantization scales and zeros included, attributed to the tensor
they belong to), otherwise as the official Hugging Face checkpoint stores them (BF16, with the Gated
DeltaNet ``A_log`` and norm in F32). Quantization schemes (llama.cpp file types, GPU formats) build
WeightMaps the same way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from qwenfit.core.formats.compiled import MISSING, lookup, remember
from qwenfit.core.formats.dtypes import GGML_TYPES
from qwenfit.core.formats.gguf import (
    GGUFSource,
    LlamaQuantOptions,
    choose_types,
    converter_sources,
    gguf_header_bytes,
    visiting_order,
)
from qwenfit.core.formats.recipes import Recipe
from qwenfit.core.model.spec import ModelSpec

__all__ = [
    "WeightEntry",
    "WeightMap",
    "gguf_weights",
    "mmproj_header_bytes",
    "mmproj_weights",
    "weights_as_stored",
    "weights_from_recipe",
    "weights_gguf",
]


@dataclass(frozen=True, slots=True)
class WeightEntry:
    """One tensor's storage: ``type`` is a safetensors dtype, a ggml type or a GPU format name."""

    name: str
    gguf_name: str | None
    role: str
    component: str
    layer: int | None
    shape: tuple[int, ...]
    type: str
    bytes: int
    device: str = "unassigned"


@dataclass(frozen=True, slots=True)
class WeightMap:
    """Weights of one model under one storage scheme. ``total_bytes`` is exact.

    ``header_bytes`` is the file's header where qwenfit models it (GGUF: an estimate, see
    :func:`qwenfit.core.formats.gguf.gguf_header_bytes`), else 0; ``file_bytes`` adds it.
    """

    model: str
    scheme: str
    tensors: tuple[WeightEntry, ...]
    header_bytes: int = 0
    gpu_format: str = ""  # the GPU format's name (qwenfit.core.formats.gpu) when it is one
    group_size: int | None = None  # its group size, when the format has groups
    exact: bool = True  # False: a published file's bytes spread over the recipe's tensors (an estimate)

    @property
    def file_bytes(self) -> int:
        """Tensor data (each tensor padded to 32 bytes in a GGUF) plus the header."""
        if self.header_bytes:
            return self.header_bytes + sum(-(-t.bytes // 32) * 32 for t in self.tensors)
        return self.total_bytes

    @property
    def total_bytes(self) -> int:
        return sum(t.bytes for t in self.tensors)

    @property
    def n_params(self) -> int:
        return sum(math.prod(t.shape) for t in self.tensors)

    def _bytes_by(self, field: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tensors:
            key = getattr(t, field)
            out[key] = out.get(key, 0) + t.bytes
        return out

    def by_component(self) -> dict[str, int]:
        return self._bytes_by("component")

    def by_role(self) -> dict[str, int]:
        return self._bytes_by("role")

    def by_type(self) -> dict[str, int]:
        return self._bytes_by("type")


def weights_as_stored(spec: ModelSpec, *, mtp: bool = True, vision: bool = True) -> WeightMap:
    """The weights as the checkpoint stores them; ``mtp``/``vision`` False leave those parts out.

    With a checkpoint read from files, bytes come from the header offsets: every stored tensor is
    counted once, scales and zeros with the weight they quantize, and stored tensors that match no
    parameter as role ``unmatched``; so with ``mtp`` and ``vision`` on, ``total_bytes`` equals the
    sum of the checkpoint's tensor bytes.
    """
    keep = {"text"} | ({"mtp"} if mtp else set()) | ({"vision"} if vision else set())
    ck = spec.checkpoint
    match = ck.match if ck is not None else None
    entries: list[WeightEntry] = []
    for t in spec.inventory:
        if t.component not in keep:
            continue
        kind, nbytes = t.dtype, t.stored_bytes
        if match is not None and ck is not None:
            nbytes = match.bytes_by_tensor.get(t.name, 0)
            stored = match.stored_by_tensor.get(t.name, ())
            weight = t.gguf_name if ck.format == "gguf" else t.hf_name.format(e=0)
            if (
                ck.quantization is not None
                and ck.format == "safetensors"
                and not any(s.name == weight for s in stored)
            ):
                kind = ck.quantization.method  # packed under other names (qweight, weight_packed, ...)
        entries.append(WeightEntry(t.name, t.gguf_name, t.role, t.component, t.layer, t.shape, kind, nbytes))
    if match is not None:
        for e in match.extra:
            entries.append(WeightEntry(e.name, None, "unmatched", "text", None, e.shape, e.dtype, e.nbytes))
    scheme = (
        "stored"
        if ck is None
        else f"stored ({ck.format}" + (f", {ck.quantization.method})" if ck.quantization else ")")
    )
    return WeightMap(model=spec.name, scheme=scheme, tensors=tuple(entries))


def weights_gguf(
    spec: ModelSpec,
    ftype: str,
    *,
    mtp: bool | None = None,
    outtype: str = "BF16",
    options: LlamaQuantOptions | None = None,
) -> WeightMap:
    """The text GGUF ``llama-quantize`` writes for ``ftype`` from a ``convert_hf_to_gguf.py`` file.

    Source tensors and their types are the converter's (``outtype`` for matrices, F32 for norms,
    routers, conv and 1-D tensors); each then gets llama-quantize's type (see
    :mod:`qwenfit.core.formats.gguf`). ``mtp`` defaults to what the converter of the regime writes:
    the current converter includes the MTP layer, the pre-2026-03 one did not.
    """
    opts = options or LlamaQuantOptions()
    if mtp is None:
        mtp = opts.regime == "current"
    t = spec.text
    inventory = [x for x in spec.inventory if x.gguf_name is not None and (mtp or x.component != "mtp")]
    if mtp and opts.regime != "current" and spec.mtp_layers:
        raise ValueError("GGUFs of the pre-2026-03 regime had no MTP layer: use mtp=False")
    sources = converter_sources([(x.gguf_name or "", x.gguf_shape or ()) for x in inventory], outtype)
    chosen = _chosen(spec, sources, ftype, outtype, opts, mtp)
    by_name = {x.gguf_name: x for x in inventory}
    entries = []
    for name, _, kind, nbytes in chosen:
        x = by_name[name]
        entries.append(WeightEntry(x.name, name, x.role, x.component, x.layer, x.shape, kind, nbytes))
    arch = {"qwen3_5": "qwen35", "qwen3_5_moe": "qwen35moe", "qwen3_next": "qwen3next"}[spec.family]
    header = gguf_header_bytes(
        [(q[0], q[1]) for q in chosen], arch=arch, n_layers=t.num_hidden_layers, moe=t.is_moe,
        vocab_size=t.vocab_size, mtp_layers=spec.mtp_layers if mtp else 0,
    )  # fmt: skip
    return WeightMap(model=spec.name, scheme=f"gguf {ftype}", tensors=tuple(entries), header_bytes=header)


def _chosen(
    spec: ModelSpec, sources: list[GGUFSource], ftype: str, outtype: str, opts: LlamaQuantOptions, mtp: bool
) -> list[tuple[str, tuple[int, ...], str, int]]:
    """llama-quantize's type for each tensor (in its visiting order) and the tensor's bytes; precompiled
    for the catalog's configs (qwenfit.core.formats.compiled: the types, one character each), else
    :func:`~qwenfit.core.formats.gguf.choose_types`. Each: (name, ne, type, bytes)."""
    t = spec.text
    # a spec read from files may differ from the catalog's under the same name: computed. Stored on a
    # line of their own ("<model> gguf"): a plan, which reads precompiled sums, does not parse them
    key = (spec.family, repr(t), str(spec.mtp_layers), ftype, outtype, repr(opts), str(mtp))
    stored = MISSING if spec.checkpoint is not None else lookup(f"{spec.name} gguf", "gguf_types", key)
    if stored is not MISSING:
        ordered = visiting_order(sources)
        alphabet, kinds = stored
        if len(kinds) == len(ordered):
            return [
                (s.name, s.ne, kind, s.nbytes if kind == s.type else GGML_TYPES[kind].n_bytes(s.ne))
                for s, kind in zip(ordered, (alphabet[ord(c) - 48] for c in kinds), strict=True)
            ]
    chosen = [
        (q.name, q.ne, q.type, q.bytes)
        for q in choose_types(
            sources,
            ftype,
            n_head=t.num_attention_heads,
            n_head_kv=t.num_key_value_heads,
            n_expert=t.num_experts,
            n_layer_all=t.num_hidden_layers + (spec.mtp_layers if mtp else 0),
            options=opts,
        )
    ]
    if spec.checkpoint is None:
        alphabet = sorted({q[2] for q in chosen})
        if len(alphabet) < 64:
            kinds = "".join(chr(48 + alphabet.index(q[2])) for q in chosen)
            remember(f"{spec.name} gguf", "gguf_types", key, [alphabet, kinds])
    return chosen


def gguf_weights(
    spec: ModelSpec,
    ftype: str,
    *,
    mtp: bool | None = None,
    vision: bool = False,
    mmproj_type: str = "F16",
    outtype: str = "BF16",
    tensor_types: Iterable[Any] = (),
    **options: Any,
) -> WeightMap:
    """What a GGUF of file type ``ftype`` holds: the text GGUF (:func:`weights_gguf`) and, with
    ``vision``, the separate mmproj file (``mmproj_type`` F16, BF16, F32 or Q8_0). ``options`` are
    llama-quantize's (:class:`qwenfit.core.formats.gguf.LlamaQuantOptions`); ``tensor_types`` takes
    ``[(regex, type)]`` or ``["regex=type"]``. Bad options raise ValueError naming them."""
    pairs = tuple(
        (pattern, kind.upper())
        for pattern, kind in (item.split("=", 1) if isinstance(item, str) else item for item in tensor_types)
    )
    for key in ("output_tensor_type", "token_embedding_type"):
        if isinstance(options.get(key), str):
            options[key] = options[key].upper()
    try:
        opts = LlamaQuantOptions(tensor_types=pairs, **options)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    text = weights_gguf(spec, ftype, mtp=mtp, outtype=outtype.upper(), options=opts)
    if not vision:
        return text
    if spec.vision is None:
        raise ValueError(f"{spec.name} has no vision tower")
    projector = mmproj_weights(spec, mmproj_type.upper(), regime=opts.regime)
    return dataclasses.replace(
        text,
        scheme=f"{text.scheme} + mmproj {mmproj_type.upper()}",
        tensors=text.tensors + projector,
        header_bytes=text.header_bytes + mmproj_header_bytes(projector),
    )


def weights_from_recipe(spec: ModelSpec, recipe: Recipe, *, mtp: bool | None = None) -> WeightMap:
    """The text GGUF of ``spec`` quantized the way ``recipe``'s source file was.

    ``mtp`` defaults to whether the source file had an MTP layer. Entries whose type was carried
    over from a different model size (or fell back) are marked with a ``~`` in the scheme name.
    """
    if mtp is None:
        mtp = any(role.startswith("mtp:") for role in recipe.types)
    tensors = [t for t in spec.inventory if t.component != "vision" and (mtp or t.component != "mtp")]
    entries = []
    all_exact = True
    for t, kind, exact in recipe.apply(tensors, spec.text.num_hidden_layers):
        all_exact = all_exact and exact
        nbytes = GGML_TYPES[kind].n_bytes(t.gguf_shape or ())
        entries.append(WeightEntry(t.name, t.gguf_name, t.role, t.component, t.layer, t.shape, kind, nbytes))
    label = "exact" if all_exact else "estimated: types carried over from another size"
    return WeightMap(model=spec.name, scheme=f"like {recipe.source} ({label})", tensors=tuple(entries))


# vision tower HF name (after model.visual.) -> mmproj GGUF name (conversion/qwen3vl.py, checked
# against mmproj files written by llama.cpp's converter: tests/fixtures/gguf/mmproj-*.gguf)
_MMPROJ_NAMES = (
    ("blocks.{b}.attn.proj.", "v.blk.{b}.attn_out."),
    ("blocks.{b}.attn.qkv.", "v.blk.{b}.attn_qkv."),
    ("blocks.{b}.mlp.linear_fc1.", "v.blk.{b}.ffn_up."),
    ("blocks.{b}.mlp.linear_fc2.", "v.blk.{b}.ffn_down."),
    ("blocks.{b}.norm1.", "v.blk.{b}.ln1."),
    ("blocks.{b}.norm2.", "v.blk.{b}.ln2."),
    ("merger.linear_fc1.", "mm.0."),
    ("merger.linear_fc2.", "mm.2."),
    ("merger.norm.", "v.post_ln."),
    ("patch_embed.proj.", "v.patch_embd."),
    ("pos_embed.", "v.position_embd."),
)


# mmproj metadata (clip.* and general.* keys) besides the tensor infos: fitted on unsloth's
# mmproj-F16 files of Qwen3.5-2B/27B/35B-A3B (668,227,264 / 927,607,040 / 899,283,648 B), whose
# key-value blocks measure 1,295–1,743 B; an estimate, within 310 B of all three.
MMPROJ_METADATA_BYTES = 1_600


def mmproj_weights(
    spec: ModelSpec, outtype: str = "F16", *, regime: str = "current"
) -> tuple[WeightEntry, ...]:
    """The vision tower as ``convert_hf_to_gguf.py --mmproj --outtype X`` writes it (a separate file).

    Linear weights take ``outtype`` (Q8_0 only where rows are whole 32-blocks, else F16 — the
    converter's QuantError fallback); biases, norms and the position table stay F32. The Conv3d
    patch embedding is split into its two temporal halves (``v.patch_embd.weight``, ``.weight.1``):
    F32 with the current converter (tests/fixtures/gguf/mmproj-*.gguf), ``outtype`` in the
    pre-2026-03 files (unsloth's Qwen3.5 mmproj-F16 sizes are reproduced only that way).
    """
    if outtype not in ("F16", "BF16", "F32", "Q8_0"):
        raise ValueError(f"mmproj type must be F16, BF16, F32 or Q8_0, not {outtype!r}")
    out = []
    for t in spec.inventory:
        if t.component != "vision":
            continue
        rest = t.name.removeprefix("model.visual.")
        name = rest
        for hf, gg in _MMPROJ_NAMES:
            hf_prefix = hf.format(b=t.layer) if "{b}" in hf else hf
            if rest.startswith(hf_prefix):
                name = (gg.format(b=t.layer) if "{b}" in gg else gg) + rest[len(hf_prefix) :]
                break
        n = math.prod(t.shape)
        matrix = len(t.shape) == 2 and name.endswith(".weight") and not name.startswith("v.position_embd")
        if matrix:
            kind = outtype
            if kind == "Q8_0" and t.shape[1] % 32:
                kind = "F16"
            nbytes = GGML_TYPES[kind].n_bytes((t.shape[1], t.shape[0]))
            out.append(WeightEntry(t.name, name, t.role, "vision", t.layer, t.shape, kind, nbytes))
        elif name == "v.patch_embd.weight":
            half = n // t.shape[2]
            kind = "F32" if regime == "current" or outtype == "Q8_0" else outtype
            for i in range(t.shape[2]):  # one kernel per temporal slice
                suffix = "" if i == 0 else f".{i}"
                shape = (t.shape[0], t.shape[1], 1, t.shape[3], t.shape[4])
                nbytes = GGML_TYPES[kind].type_size * half
                out.append(WeightEntry(t.name, name + suffix, t.role, "vision", t.layer, shape, kind, nbytes))
        else:
            out.append(WeightEntry(t.name, name, t.role, "vision", t.layer, t.shape, "F32", 4 * n))
    return tuple(out)


def mmproj_header_bytes(entries: tuple[WeightEntry, ...]) -> int:
    """Estimated header of an mmproj GGUF: exact tensor infos + the fitted metadata block."""
    infos = 0
    for e in entries:
        n_dims = 4 if e.gguf_name and e.gguf_name.startswith("v.patch_embd.weight") else len(e.shape)
        infos += 8 + len((e.gguf_name or "").encode()) + 4 + 8 * n_dims + 4 + 8
    return -(-(24 + infos + MMPROJ_METADATA_BYTES) // 32) * 32
