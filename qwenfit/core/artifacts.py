"""Published artifacts: what can really be downloaded for a model, and which one a launch loads.

The records come from ``data/artifacts/<model>.yaml`` (read and validated by
:mod:`qwenfit.loaders.artifacts`; how they were gathered and how ``qwenfit artifacts --refresh``
renews them is in ``data/artifacts/README.md``). This module holds the records and the pure rules
that pick one of them for an engine, a quantization and a deployment:

- **GGUF files** (llama.cpp, Ollama, LM Studio, llama-cpp-python): a repo's file of that quant name,
  preferring files whose byte size is published, then by publisher (unsloth, ggml-org, Qwen,
  lmstudio-community, bartowski — the order of :data:`GGUF_PUBLISHERS`). Drafting with the MTP layer
  needs a file that carries it: only the ``*-MTP-GGUF`` repos do (unsloth's other GGUFs are converted
  without it: their Q8_0 and BF16 files match llama-quantize's types without the MTP block to
  0.00–0.04 % of the published bytes on 7 models, and are 2.4 % short of them with it).
- **Whole-repo formats** (vLLM, SGLang, transformers: BF16, FP8, GPTQ, AWQ, NVFP4, …; MLX): a repo
  whose ``quant`` is that format, official publishers first.

A published file's weights are its own: with the tensor types a header read recorded
(``tensor_types``) they are exact; otherwise, when its published size differs from what qwenfit's
recipe for the quant name computes by more than :data:`SAME_FILE_TOLERANCE`, the recipe's tensors
are scaled to the published size and labelled estimated (:func:`fit_to_file`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qwenfit.core.formats.names import DYNAMIC_QUANT, dynamic_base
from qwenfit.core.formats.weights import WeightEntry, WeightMap

__all__ = [
    "ARTIFACT_KINDS",
    "DYNAMIC_QUANT",
    "GGUF_PUBLISHERS",
    "SAME_FILE_TOLERANCE",
    "ModelSource",
    "PublishedFile",
    "PublishedRepo",
    "dynamic_base",
    "fit_to_file",
    "gguf_choice",
    "gguf_quants",
    "repo_choice",
    "repo_quants",
]

ARTIFACT_KINDS = ("gguf-repo", "safetensors-repo", "mlx-repo", "ollama-tag", "lmstudio-key")
# GGUF publishers in order of preference when several publish a quant name (unsloth: exact sizes and
# every quant; ggml-org: llama.cpp's own; Qwen: official; then the community re-publishers)
GGUF_PUBLISHERS = ("unsloth", "ggml-org", "Qwen", "lmstudio-community", "bartowski")
# safetensors / MLX publishers, official first
REPO_PUBLISHERS = ("Qwen", "nvidia", "RedHatAI", "mlx-community", "lmstudio-community", "Intel", "cyankiwi")
# A published size within this fraction of qwenfit's computed file is the same file (what remains is
# the header estimate: tokenizer metadata); beyond it the published file has its own tensor types.
SAME_FILE_TOLERANCE = 0.001


@dataclass(frozen=True, slots=True)
class PublishedFile:
    """One downloadable GGUF (a split set counts as one file: ``parts`` lists every part)."""

    name: str  # the file (first part of a split set), as in the repo
    quant: str  # the quant as the publisher names it: "Q4_K_M", "UD-Q4_K_XL", "mmproj-F16"
    size_bytes: int | None  # exact bytes of the whole file or split set; None: not published exactly
    size_text: str | None  # the size as the source printed it, when no exact bytes
    parts: tuple[str, ...]  # every part's name (one entry for a single file)
    sha256: str | None
    source: str
    tensor_types: tuple[tuple[str, str], ...] | None = None  # (GGUF tensor name, ggml type), from a header

    @property
    def is_mmproj(self) -> bool:
        return self.quant.lower().startswith("mmproj")

    @property
    def split(self) -> bool:
        return len(self.parts) > 1


@dataclass(frozen=True, slots=True)
class PublishedRepo:
    """One published artifact: a Hugging Face repo, an Ollama library tag or an LM Studio key."""

    id: str  # "unsloth/Qwen3.5-35B-A3B-GGUF", "ollama:qwen3.5:35b-a3b", "qwen/qwen3.5-35b-a3b"
    kind: str  # one of ARTIFACT_KINDS
    publisher: str
    model: str  # the catalog model it is a build of
    format: str  # the format as recorded ("gguf", "fp8", "awq (4-bit, compressed-tensors)")
    quant: str | None  # qwenfit's name for a whole-repo format; None: no qwenfit recipe models it
    evidence: str
    source: str
    files: tuple[PublishedFile, ...] = ()
    mtp: bool = False  # its GGUFs carry the MTP layer
    revision: str | None = None
    notes: str = ""

    @property
    def hub_id(self) -> str | None:
        """The Hugging Face repo id (None for an Ollama tag or an LM Studio key)."""
        return self.id if self.kind in ("gguf-repo", "safetensors-repo", "mlx-repo") else None

    def file(self, quant: str) -> PublishedFile | None:
        """The text GGUF of ``quant`` (any case), or None."""
        q = quant.strip().upper()
        return next((f for f in self.files if f.quant.upper() == q and not f.is_mmproj), None)

    def mmproj(self) -> PublishedFile | None:
        """The vision projector file (F16 preferred), or None."""
        found = [f for f in self.files if f.is_mmproj]
        return next((f for f in found if f.quant.upper().endswith("F16")), found[0] if found else None)


@dataclass(frozen=True, slots=True)
class ModelSource:
    """Where a model's weights come from, for the launch command: a catalog model (its official repo
    and what is published for it), a Hub repo the user named, or local files."""

    name: str  # the model's name ("Qwen3.5-35B-A3B", or the file's / repo's)
    repo_id: str | None = None  # the official (or named) Hub repo of the full checkpoint
    path: str | None = None  # local files the user gave (a GGUF, or a checkpoint folder)
    file_format: str | None = None  # "gguf" | "safetensors" for local files
    file_quant: str | None = None  # the files' own quantization (a GGUF file type, a GPU format)
    files: tuple[str, ...] = ()  # the files read (a GGUF's parts, safetensors shards)
    file_bytes: int | None = None  # their size, when known
    published: tuple[PublishedRepo, ...] = field(default=())

    @property
    def local(self) -> bool:
        return self.path is not None


def _rank(order: tuple[str, ...], publisher: str) -> int:
    return order.index(publisher) if publisher in order else len(order)


def gguf_choice(
    published: Iterable[PublishedRepo], quant: str, *, mtp: bool
) -> tuple[PublishedRepo, PublishedFile] | None:
    """The published GGUF file of ``quant`` to launch (see the module docstring), or None."""
    found = []
    for repo in published:
        if repo.kind != "gguf-repo" or (mtp and not repo.mtp):
            continue
        f = repo.file(quant)
        if f is not None:
            key = (f.size_bytes is None, repo.mtp != mtp, _rank(GGUF_PUBLISHERS, repo.publisher), repo.id)
            found.append((key, repo, f))
    if not found:
        return None
    _, repo, f = min(found, key=lambda x: x[0])
    return repo, f


def gguf_quants(published: Iterable[PublishedRepo], *, mtp: bool) -> tuple[str, ...]:
    """Every text-GGUF quant name published (by any repo; with ``mtp`` only by repos with the MTP
    layer), in upper case."""
    out: dict[str, None] = {}
    for repo in published:
        if repo.kind == "gguf-repo" and (repo.mtp or not mtp):
            for f in repo.files:
                if not f.is_mmproj:
                    out[f.quant.upper()] = None
    return tuple(out)


def repo_choice(published: Iterable[PublishedRepo], quant: str, kind: str) -> PublishedRepo | None:
    """The published repo of ``kind`` ("safetensors-repo" | "mlx-repo") holding ``quant`` whole."""
    found = [r for r in published if r.kind == kind and r.quant == quant]
    return min(found, key=lambda r: (_rank(REPO_PUBLISHERS, r.publisher), r.id)) if found else None


def repo_quants(published: Iterable[PublishedRepo], kind: str) -> tuple[str, ...]:
    """The qwenfit formats published as whole repos of ``kind``."""
    return tuple(dict.fromkeys(r.quant for r in published if r.kind == kind and r.quant))


# ---------------------------------------------------------------------------------------------
# the weights of a published file


def fit_to_file(w: WeightMap, f: PublishedFile, *, label: str) -> WeightMap:
    """``w`` (qwenfit's recipe for the file's quant name) as the published file ``f`` holds it.

    With the file's tensor types (a header read) each tensor takes its own type: exact. Otherwise,
    when the published size differs from ``w.file_bytes`` by more than :data:`SAME_FILE_TOLERANCE`,
    every quantized text tensor (F32 ones are F32 in every mix) is scaled by the ratio of tensor bytes
    (labelled estimated: the per-tensor split, hence the per-device split, is the recipe's); within it
    ``w`` stands (its header is the estimate).
    ``label`` names the file in the scheme ("unsloth/…:UD-Q4_K_XL")."""
    if f.tensor_types:
        return _retyped(w, dict(f.tensor_types), label)
    if f.size_bytes is None:
        return dataclasses.replace(w, scheme=f"{label} (size not published: {w.scheme} types)",
                                   exact=False)  # fmt: skip
    text = [t for t in w.tensors if t.component != "vision"]
    vision = [t for t in w.tensors if t.component == "vision"]
    computed = (
        w.header_bytes - (_mmproj_header(w) if vision else 0) + sum(-(-t.bytes // 32) * 32 for t in text)
    )
    if abs(f.size_bytes - computed) <= SAME_FILE_TOLERANCE * f.size_bytes:
        return dataclasses.replace(w, scheme=f"{label} ({w.scheme}, {f.size_bytes:,} B published)")
    header = w.header_bytes - (_mmproj_header(w) if vision else 0)
    kept = [t for t in text if t.type == "F32"]  # norms, routers, conv, A_log: F32 in every mix
    target = f.size_bytes - header - sum(-(-t.bytes // 32) * 32 for t in kept)
    ratio = target / sum(t.bytes for t in text if t.type != "F32")
    scaled = [t if t.type == "F32" else dataclasses.replace(t, bytes=_scaled(t, ratio)) for t in text]
    return dataclasses.replace(
        w,
        tensors=(*scaled, *vision),
        scheme=f"{label} ({f.size_bytes:,} B published: {w.scheme} types scaled x{ratio:.3f})",
        exact=False,
    )


def _scaled(t: WeightEntry, ratio: float) -> int:
    """``t``'s bytes times ``ratio``, as a whole number of 32-byte units (ggml's alignment) per expert
    of a stacked expert tensor (so expert offload splits it evenly, as a real file's)."""
    unit = 32 * (t.shape[0] if len(t.shape) == 3 else 1)
    return max(unit, round(t.bytes * ratio / unit) * unit)


def _mmproj_header(w: WeightMap) -> int:
    from qwenfit.core.formats.weights import mmproj_header_bytes

    return mmproj_header_bytes(tuple(t for t in w.tensors if t.component == "vision"))


def _retyped(w: WeightMap, types: Mapping[str, str], label: str) -> WeightMap:
    from qwenfit.core.formats.dtypes import GGML_TYPES

    out: list[WeightEntry] = []
    missing = []
    for t in w.tensors:
        kind = types.get(t.gguf_name or "") if t.component != "vision" else None
        if kind is None:
            if t.component != "vision":
                missing.append(t.gguf_name or t.name)
            out.append(t)
            continue
        ne = tuple(reversed(t.shape))  # GGUF order: the row length first (bytes need only that and the rows)
        out.append(dataclasses.replace(t, type=kind, bytes=GGML_TYPES[kind].n_bytes(ne)))
    exact = not missing
    note = "file's own types" if exact else f"file's own types, {len(missing)} tensors not in its header"
    return dataclasses.replace(w, tensors=tuple(out), scheme=f"{label} ({note})", exact=exact)


def published_summary(repos: Iterable[PublishedRepo]) -> dict[str, Any]:
    """Counts for reports: repos, files, files with exact sizes."""
    repos = tuple(repos)
    files = [f for r in repos for f in r.files]
    return {
        "repos": len(repos),
        "files": len(files),
        "files_with_bytes": sum(1 for f in files if f.size_bytes is not None),
        "models": len({r.model for r in repos}),
    }
