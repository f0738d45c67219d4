"""What a checkpoint file actually stores, and how it lines up with the config-derived inventory.

A :class:`StoredCheckpoint` is the tensor list read from safetensors or GGUF headers (names, dtypes,
shapes, exact byte sizes). :func:`match` pairs it with an :class:`~qwenfit.core.model.inventory.Inventory`
and reports the difference as data: tensors the config implies but the file lacks (a text-only
export has no ``model.visual.*``, an MTP-less export no ``mtp.*``), tensors the file has beyond the
parameters (FP8 ``weight_scale_inv``, AWQ ``qzeros``/``scales``, MLX ``biases``: a quantized
checkpoint), and shape disagreements.

Quantization suffixes: transformers' quantizers and the checkpoints they read — fp8
(``weight_scale_inv``), AWQ/GPTQ (``qweight``, ``qzeros``, ``scales``, ``g_idx``),
compressed-tensors (``weight_packed``, ``weight_scale``, ``weight_zero_point``, ``weight_shape``,
``weight_global_scale``, ``input_global_scale``), ModelOpt (``weight_scale``, ``weight_scale_2``,
``input_scale``), bitsandbytes (``weight.absmax``, ``weight.quant_map``, ``weight.nested_*``,
``weight.quant_state.*``, ``SCB``, ``weight_format``), MLX (``scales``, ``biases``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from qwenfit.core.model.inventory import Inventory, Tensor
    from qwenfit.core.model.kinds import ExpertLayout
    from qwenfit.core.model.spec import ModelSpec

__all__ = [
    "CheckpointMatch",
    "Quantization",
    "StoredCheckpoint",
    "StoredEntry",
    "match",
    "split_quant_suffix",
]

# suffix -> what replaces it to name the logical weight it belongs to (longest first)
_QUANT_SUFFIXES: tuple[tuple[str, str], ...] = tuple(
    sorted(
        {
            ".weight_scale_inv": ".weight",
            ".weight_scale_2": ".weight",
            ".weight_scale": ".weight",
            ".weight_packed": ".weight",
            ".weight_shape": ".weight",
            ".weight_zero_point": ".weight",
            ".weight_global_scale": ".weight",
            ".input_global_scale": ".weight",
            ".input_scale": ".weight",
            ".weight_format": ".weight",
            ".weight.absmax": ".weight",
            ".weight.quant_map": ".weight",
            ".weight.nested_absmax": ".weight",
            ".weight.nested_quant_map": ".weight",
            ".weight.quant_state.bitsandbytes__nf4": ".weight",
            ".weight.quant_state.bitsandbytes__fp4": ".weight",
            ".SCB": ".weight",
            ".qweight": ".weight",
            ".qzeros": ".weight",
            ".scales": ".weight",
            ".g_idx": ".weight",
            ".biases": ".weight",
            # fused 3-D experts quantized in place
            "_scale_inv": "",
            "_scale": "",
        }.items(),
        key=lambda kv: -len(kv[0]),
    )
)


def split_quant_suffix(name: str) -> tuple[str, str] | None:
    """``(logical weight name, suffix)`` for a quantization tensor name, or None."""
    for suffix, replacement in _QUANT_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)] + replacement, suffix
    return None


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One tensor as a file stores it: exact bytes from the header offsets."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    file: str


@dataclass(frozen=True, slots=True)
class Quantization:
    """A quantized checkpoint's method (``quantization_config.quant_method`` or GGUF file type)."""

    method: str
    config: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True, eq=False)
class StoredCheckpoint:
    """The tensors of one checkpoint as its headers list them."""

    format: Literal["safetensors", "gguf"]
    files: tuple[str, ...]
    tensors: tuple[StoredEntry, ...]
    file_bytes: int | None = None  # all files, headers included, when the sizes are known
    quantization: Quantization | None = None
    match: CheckpointMatch | None = None  # set by attach(): the file against the config

    @property
    def tensor_bytes(self) -> int:
        """Bytes of tensor data: the sum of every stored tensor (exact, from header offsets)."""
        return sum(t.nbytes for t in self.tensors)

    def names(self) -> dict[str, StoredEntry]:
        return {t.name: t for t in self.tensors}


@dataclass(frozen=True, slots=True, eq=False)
class CheckpointMatch:
    """How a stored checkpoint lines up with the inventory its config implies.

    ``stored_by_tensor`` maps each inventory tensor name to the stored tensors holding it (its
    weight, or its share of a fused tensor, plus quantization scales/zeros);
    ``bytes_by_tensor`` gives each inventory tensor's exact stored bytes (a fused tensor's bytes are
    split by the parts' sizes). ``missing`` lists stored names the config implies but the file lacks;
    ``extra`` what the file has that is neither a parameter nor a known quantization tensor.
    """

    stored_by_tensor: dict[str, tuple[StoredEntry, ...]]
    bytes_by_tensor: dict[str, int]
    missing: tuple[str, ...]
    extra: tuple[StoredEntry, ...]
    shape_mismatches: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]
    quant_tensors: tuple[StoredEntry, ...]
    notes: tuple[str, ...]

    @property
    def exact(self) -> bool:
        """Every stored tensor is accounted for and every expected one is there."""
        return not (self.missing or self.extra or self.shape_mismatches)


_INTEGER_DTYPES = frozenset({"U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F4", "BOOL"})


def _shape_key(shape: tuple[int, ...], gguf: bool) -> tuple[int, ...]:
    """GGUF shapes compare without trailing 1s: the converter writes the shared-expert gate as
    {H, 1}, llama-quantize rewrites it as {H} (ggml drops trailing unit dimensions)."""
    if not gguf:
        return shape
    out = list(shape)
    while len(out) > 1 and out[-1] == 1:
        out.pop()
    return tuple(out)


def _hf_holders(inventory: Inventory) -> tuple[dict[str, list[Tensor]], dict[str, tuple[int, ...]]]:
    """Stored safetensors name -> the inventory tensors it holds, and its expected shape."""
    holders: dict[str, list[Tensor]] = {}
    for t in inventory.tensors:
        names = [t.hf_name.format(e=e) for e in range(t.n_experts)] if "{e}" in t.hf_name else [t.hf_name]
        for n in names:
            holders.setdefault(n, []).append(t)
    return holders, {s.name: s.shape for s in inventory.hf_tensors()}


def _gguf_holders(inventory: Inventory) -> tuple[dict[str, list[Tensor]], dict[str, tuple[int, ...]]]:
    """GGUF tensor name -> inventory tensors, with ggml shapes. Vision lives in a separate mmproj
    file; routed gate and up experts may be fused into ``ffn_gate_up_exps`` (--fuse-gate-up-exps)."""
    holders: dict[str, list[Tensor]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for t in inventory.tensors:
        if t.gguf_name is None or t.gguf_shape is None:
            continue
        holders[t.gguf_name] = [t]
        shapes[t.gguf_name] = t.gguf_shape
    return holders, shapes


def fused_gate_up_name(gguf_name: str) -> str | None:
    """``blk.N.ffn_gate_up_exps.weight`` for ``blk.N.ffn_gate_exps.weight`` or ``..._up_exps``."""
    for part in (".ffn_gate_exps.", ".ffn_up_exps."):
        if part in gguf_name:
            return gguf_name.replace(part, ".ffn_gate_up_exps.")
    return None


def match(inventory: Inventory, checkpoint: StoredCheckpoint) -> CheckpointMatch:
    """Pair stored tensors with inventory tensors; report what is missing, extra or mismatched.

    Safetensors checkpoints are matched by Hugging Face names, GGUF files by llama.cpp names.
    """
    stored = checkpoint.names()
    quantized = checkpoint.quantization is not None
    gguf = checkpoint.format == "gguf"
    holders, expected_shape = _gguf_holders(inventory) if gguf else _hf_holders(inventory)
    if gguf:  # a fused gate_up_exps stands for both halves
        for name in list(holders):
            fused = fused_gate_up_name(name)
            if fused is not None and fused in stored:
                part = holders.pop(name)[0]
                shape = expected_shape.pop(name)
                holders.setdefault(fused, []).append(part)
                prev = expected_shape.get(fused)
                expected_shape[fused] = shape if prev is None else (shape[0], prev[1] + shape[1], *shape[2:])

    by_tensor: dict[str, list[StoredEntry]] = {t.name: [] for t in inventory.tensors}
    bytes_by: dict[str, int] = {t.name: 0 for t in inventory.tensors}
    extra: list[StoredEntry] = []
    quant: list[StoredEntry] = []
    mismatches: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []

    for entry in checkpoint.tensors:
        base = entry.name
        if entry.name not in holders:
            split = None if gguf else split_quant_suffix(entry.name)
            if split is None or split[0] not in holders:
                extra.append(entry)
                continue
            base = split[0]
            quant.append(entry)
        elif _shape_key(entry.shape, gguf) != _shape_key(expected_shape[entry.name], gguf):
            packed = quantized and not gguf and entry.dtype in _INTEGER_DTYPES | {"F8_E4M3", "F8_E5M2"}
            if not packed:
                mismatches.append((entry.name, expected_shape[entry.name], entry.shape))
        _attribute(entry, holders[base], by_tensor, bytes_by)

    missing = tuple(n for n in holders if n not in stored)
    notes = _notes(holders, missing, extra, quant, checkpoint)
    return CheckpointMatch(
        stored_by_tensor={k: tuple(v) for k, v in by_tensor.items()},
        bytes_by_tensor=bytes_by,
        missing=missing,
        extra=tuple(extra),
        shape_mismatches=tuple(mismatches),
        quant_tensors=tuple(quant),
        notes=notes,
    )


def _attribute(
    entry: StoredEntry,
    parts: list[Tensor],
    by_tensor: dict[str, list[StoredEntry]],
    bytes_by: dict[str, int],
) -> None:
    """Give each inventory tensor its share of a stored tensor, in exact integers."""
    if len(parts) == 1:
        by_tensor[parts[0].name].append(entry)
        bytes_by[parts[0].name] += entry.nbytes
        return
    sizes = [p.shape[p.hf_axis] for p in parts]
    total, given = sum(sizes), 0
    for i, (p, size) in enumerate(zip(parts, sizes, strict=True)):
        share = entry.nbytes - given if i == len(parts) - 1 else entry.nbytes * size // total
        given += share
        by_tensor[p.name].append(entry)
        bytes_by[p.name] += share


def _notes(
    holders: dict[str, list[Tensor]],
    missing: tuple[str, ...],
    extra: list[StoredEntry],
    quant: list[StoredEntry],
    checkpoint: StoredCheckpoint,
) -> tuple[str, ...]:
    notes: list[str] = []
    if checkpoint.quantization is not None and checkpoint.format == "safetensors":
        notes.append(
            f"quantized checkpoint ({checkpoint.quantization.method}): {len(quant)} "
            f"scale/zero/index tensors, {sum(q.nbytes for q in quant):,} bytes"
        )
    elif quant:
        notes.append(
            f"{len(quant)} tensors look like quantization data but config.json has no quantization_config"
        )
    expected: dict[str, int] = {}
    for holder in holders.values():
        expected[holder[0].component] = expected.get(holder[0].component, 0) + 1
    lacking: dict[str, list[str]] = {}
    for name in missing:
        lacking.setdefault(holders[name][0].component, []).append(name)
    for component in ("vision", "mtp"):
        names = lacking.pop(component, [])
        if names and len(names) == expected[component]:
            notes.append(f"no {component} tensors: the config describes them but this file omits them")
        elif names:
            notes.append(
                f"{len(names)} of {expected[component]} {component} tensors missing, e.g. {names[0]}"
            )
    if lacking.get("text"):
        notes.append(f"{len(lacking['text'])} text tensors missing, e.g. {lacking['text'][0]}")
    if extra:
        notes.append(f"{len(extra)} unexpected tensors, e.g. {extra[0].name}")
    return tuple(notes)


_MTP_LAYER = re.compile(r"^mtp\.layers\.(\d+)\.")
_GGUF_BLOCK = re.compile(r"^blk\.(\d+)\.")


def mtp_layers_stored(names: list[str] | tuple[str, ...]) -> int:
    """Number of MTP layers a checkpoint stores (``mtp.layers.{j}.*``)."""
    layers = {int(m.group(1)) for n in names if (m := _MTP_LAYER.match(n))}
    return max(layers) + 1 if layers else 0


def _expert_layout(names: set[str], prefix: str) -> ExpertLayout | None:
    pattern = re.compile(rf"^{re.escape(prefix)}layers\.\d+\.mlp\.experts\.(gate_up_proj|0\.gate_proj\.)")
    found = {m.group(1) for n in names if (m := pattern.match(n))}
    if "gate_up_proj" in found:
        return "fused"
    return "per_expert" if found else None


def attach(spec: ModelSpec, checkpoint: StoredCheckpoint) -> ModelSpec:
    """The spec of what a checkpoint stores, with the checkpoint and its match attached.

    Layout details come from the tensor names (where the text weights live, fused or per-expert
    experts); a vision tower or MTP layer the config describes but the file lacks is dropped from
    the spec, and the match (taken against the config's full inventory) records that it was.
    """
    names = {t.name for t in checkpoint.tensors}
    if checkpoint.format == "gguf":
        # MTP layers are the blocks after the decoder (blk.L.*); vision lives in a separate mmproj
        n = spec.text.num_hidden_layers
        blocks = {int(m.group(1)) for name in names if (m := _GGUF_BLOCK.match(name))}
        stored_mtp = sum(1 for b in blocks if b >= n)
        full = replace(spec, mtp_layers=max(spec.mtp_layers, stored_mtp), vision=None, checkpoint=None)
        found = match(full.inventory, checkpoint)
        return replace(full, mtp_layers=stored_mtp, checkpoint=replace(checkpoint, match=found))
    prefix = spec.text_prefix
    for candidate in ("model.language_model.", "model."):
        if candidate + "embed_tokens.weight" in names:
            prefix = candidate
            break
    stored_mtp = mtp_layers_stored(tuple(names))
    full = replace(
        spec,
        text_prefix=prefix,
        mtp_layers=max(spec.mtp_layers, stored_mtp),
        expert_layout=_expert_layout(names, prefix) or spec.expert_layout,
        mtp_expert_layout=_expert_layout(names, "mtp.") or spec.mtp_expert_layout,
        checkpoint=None,
    )
    found = match(full.inventory, checkpoint)
    has_vision = any(n.startswith("model.visual.") for n in names)
    return replace(
        full,
        vision=full.vision if has_vision else None,
        mtp_layers=stored_mtp,
        checkpoint=replace(checkpoint, match=found),
    )
