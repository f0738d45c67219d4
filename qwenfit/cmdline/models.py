"""What a command loads: the model and its quantization, read from the names people use.

A GGUF file name (``Qwen3.5-35B-A3B-UD-Q4_K_XL.gguf`` -> Qwen3.5-35B-A3B, UD-Q4_K_XL), a Hugging Face
repo id (``unsloth/Qwen3.6-27B-GGUF``, ``Qwen/Qwen3.5-27B-FP8``, ``mlx-community/Qwen3.5-9B-4bit``) or
an Ollama tag (``qwen3.5:27b-q4_K_M``); and, for a name found in qwenfit's catalog, the facts a parser
needs (the training context, the layer count with the MTP layer, whether there is a vision tower).
The catalog is read lazily (only when a command names a model).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from qwenfit.errors import UsageError

__all__ = [
    "CatalogFacts",
    "catalog_facts",
    "catalog_name",
    "gguf_name",
    "hf_repo_quant",
    "ollama_tag",
    "python_model",
    "safetensors_quant",
]

_SPLIT = re.compile(r"-\d{5}-of-\d{5}$")
_GGUF_QUANT = re.compile(
    r"(?<![A-Za-z0-9])((?:UD-)?(?:I?Q\d_(?:K_)?[A-Z0-9]+(?:_[A-Z0-9]+)?|Q\d_K|Q\d_\d|BF16|F16|F32|TQ\d_\d"
    r"|MXFP4(?:_MOE)?))(?![A-Za-z0-9])",
    re.I,
)


@dataclass(frozen=True)
class CatalogFacts:
    name: str
    n_ctx_train: int
    n_layer_all: int  # decoder layers + MTP layers: the blocks llama.cpp counts
    vision: bool
    moe: bool


def _candidates() -> list[tuple[str, str]]:
    """(lower-case text, catalog name) for every name or long alias, longest first."""
    from qwenfit.loaders import catalog

    out = []
    for e in catalog.entries():
        for text in (e.name, *e.aliases):
            if text.lower().startswith("qwen"):
                out.append((text.lower(), e.name))
    return sorted(out, key=lambda x: -len(x[0]))


def catalog_name(text: str | None) -> str | None:
    """The catalog model whose name appears in ``text`` (a repo id, path or file name), or None."""
    if not text:
        return None
    from qwenfit.loaders import catalog

    found = catalog.find(text)
    if found is not None:
        return found.name
    low = text.lower()
    for cand, name in _candidates():
        for m in re.finditer(re.escape(cand), low):
            before = low[m.start() - 1] if m.start() else ""
            after = low[m.end()] if m.end() < len(low) else ""
            if not (before.isalnum()) and not (after.isalnum() or after == "."):
                return name
    return None


def catalog_facts(name: str | None) -> CatalogFacts | None:
    if name is None:
        return None
    from qwenfit.loaders import catalog

    spec = catalog.load_catalog_model(name)
    return CatalogFacts(
        spec.name,
        spec.text.max_position_embeddings,
        spec.text.num_hidden_layers + spec.mtp_layers,
        spec.vision is not None,
        spec.is_moe,
    )


def gguf_name(path: str) -> tuple[str | None, str | None]:
    """(model, quant) from a GGUF file name: the text before the quantization, or the catalog model
    it names; None when the name carries none."""
    stem = os.path.basename(path.replace("\\", "/"))
    if stem.lower().endswith(".gguf"):
        stem = stem[:-5]
    stem = _SPLIT.sub("", stem)
    hits = list(_GGUF_QUANT.finditer(stem))
    quant = None
    head = stem
    if hits:
        m = hits[-1]
        quant = m.group(1).upper()
        head = stem[: m.start()].rstrip("-._")
    return catalog_name(head) or catalog_name(stem) or (head if hits and head else None), quant


def hf_repo_quant(value: str) -> tuple[str, str | None]:
    """llama.cpp ``-hf <user>/<model>[:quant]``: (repo, quant or None)."""
    repo, sep, tag = value.rpartition(":")
    if sep and "/" in repo and "/" not in tag:
        return repo, tag
    return value, None


_SAFETENSORS_SUFFIXES = (
    (r"nvfp4", "nvfp4"),
    (r"mxfp4", "mxfp4"),
    (r"fp8[-_]dynamic", "fp8-dynamic"),
    (r"fp8", "fp8"),
    (r"gptq[-_]int8", "gptq-int8"),
    (r"gptq(?:[-_]int4)?", "gptq"),
    (r"awq(?:[-_]4bit)?", "awq"),
    (r"(?:int4[-_])?auto[-_]?round(?:[-_]int4)?", "autoround"),  # Intel's auto_round exports
    (r"w4a16", "w4a16"),
    (r"w8a16", "w8a16"),
    (r"w8a8", "w8a8"),
    (r"(?:mlx[-_])?(\d)bit", "mlx-{}bit"),
    (r"bf16", "bf16"),
)


def safetensors_quant(repo: str, catalog: str | None) -> tuple[str | None, str | None]:
    """(quant, the suffix read) of a GPU/MLX checkpoint repo or directory name: the words after the
    catalog model's name (``-FP8``, ``-AWQ-4bit``, ``-4bit``); ("bf16", None) for the bare name."""
    base = repo.rstrip("/").replace("\\", "/").rsplit("/", 1)[-1]
    low = base.lower()
    rest = low
    if catalog:
        i = low.find(catalog.lower())
        rest = low[i + len(catalog) :] if i >= 0 else low
    rest = re.sub(r"^(?:-(?:instruct|thinking|base|mtp|mlx(?=-\d)))+", "", rest)
    if not rest.strip("-_"):
        return "bf16", None
    word = rest.strip("-_")
    for pattern, name in _SAFETENSORS_SUFFIXES:
        m = re.fullmatch(r"(?:mlx[-_])?" + pattern if "bit" not in pattern else pattern, word)
        if m:
            return (name.format(*m.groups()) if m.groups() else name), word
    return None, word


def ollama_tag(tag: str) -> tuple[str | None, str | None]:
    """(catalog model, quant) of an Ollama library tag such as ``qwen3.5:27b-q4_K_M``."""
    name, _, variant = tag.partition(":")
    name = name.rsplit("/", 1)[-1]
    quant = None
    m = _GGUF_QUANT.search(variant)
    size = variant
    if m:
        quant = m.group(1).upper()
        size = variant[: m.start()].rstrip("-")
    model = catalog_name(f"{name}-{size}") if size else None
    return model, quant


def python_model(
    model: str, cwd: str | None, hint: str | None = None
) -> tuple[str, str, str | None, list[str], str]:
    """(model, model_kind, catalog, notes, the name its quantization is read from) of a ``--model``
    value: a repo id or a local directory (``hint``: a served model name, used when the directory's
    name says nothing)."""
    notes: list[str] = []
    if model in ("...", "\u2026") or re.fullmatch(r"<[^>]*>.*|.*\$\{?[A-Za-z_].*", model):
        raise UsageError(
            f"the model {model!r} is a placeholder or an unset shell variable: give the real one"
        )
    full = os.path.join(cwd or os.getcwd(), os.path.expanduser(model))
    local = model.startswith(("/", "./", "../", "~")) or os.path.isdir(full)
    base = model.rstrip("/").replace("\\", "/").rsplit("/", 1)[-1]
    cat = catalog_name(base if local else model)
    named = base
    if cat is None and hint:
        cat = catalog_name(hint)
        if cat:
            named = hint
            notes.append(f"model {cat} from the served model name {hint!r}")
    if not local:
        return model, "hf-repo", cat, notes, model
    if os.path.isdir(full):
        return model, "path", cat, [*notes, f"model: the directory {model} (qwenfit reads its config)"], named
    if cat is None:
        raise UsageError(
            f"{model}: no such directory here and no catalog model in its name: qwenfit cannot tell "
            "which model it is"
        )
    return cat, "file-name", cat, [*notes, f"model {cat} from the directory name {model} (not here)"], named
