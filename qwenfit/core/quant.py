"""WeightMap: the weights of a model, per tensor, with their storage type and exact bytes.

``weights_as_stored`` gives the weights exactly as a checkpoint stores them: from the file headers
when the spec was read from files (quantization scales and zeros included, attributed to the tensor
they belong to), otherwise as the official Hugging Face checkpoint stores them (BF16, with the Gated
DeltaNet ``A_log`` and norm in F32). Quantization schemes (llama.cpp file types, GPU formats) build
WeightMaps the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from qwenfit.core.spec import ModelSpec

__all__ = ["WeightEntry", "WeightMap", "weights_as_stored"]


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
    """Weights of one model under one storage scheme. ``total_bytes`` is exact."""

    model: str
    scheme: str
    tensors: tuple[WeightEntry, ...]

    @property
    def total_bytes(self) -> int:
        return sum(t.bytes for t in self.tensors)

    @property
    def n_params(self) -> int:
        n = 0
        for t in self.tensors:
            k = 1
            for d in t.shape:
                k *= d
            n += k
        return n

    def by_component(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tensors:
            out[t.component] = out.get(t.component, 0) + t.bytes
        return out

    def by_role(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tensors:
            out[t.role] = out.get(t.role, 0) + t.bytes
        return out

    def by_type(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.tensors:
            out[t.type] = out.get(t.type, 0) + t.bytes
        return out


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
