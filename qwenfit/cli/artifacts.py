"""``qwenfit artifacts [MODEL ...]``: what is published for each catalog model (repos, files with their
byte sizes, Ollama tags, LM Studio keys) and where that is known from; ``--refresh`` renews the
records from the Hugging Face Hub (file listings, exact sizes, GGUF tensor types from the headers)."""

from __future__ import annotations

import argparse
from typing import Any

from qwenfit.cli.args import EXIT_OK, add_json
from qwenfit.cli.output import emit, emit_json
from qwenfit.errors import UsageError

__all__ = ["add", "artifacts_json"]


def add(sub: Any, schema_id: str) -> None:
    p = sub.add_parser(
        "artifacts",
        help="what is published for each model: repos, GGUF files and sizes, Ollama tags",
        description=run.__doc__,
    )
    p.add_argument("models", nargs="*", metavar="MODEL", help="catalog names (default: every model)")
    kinds = ("gguf-repo", "safetensors-repo", "mlx-repo", "ollama-tag", "lmstudio-key")
    p.add_argument("--kind", choices=kinds, help="only artifacts of this kind")
    p.add_argument(
        "--refresh",
        action="store_true",
        help="read the Hub (huggingface_hub: token, cache and HF_HUB_OFFLINE respected) and store exact "
        "file lists, sizes and GGUF tensor types for these models' repos",
    )
    add_json(p, schema_id)
    p.set_defaults(func=run)


def _names(models: list[str]) -> list[str]:
    from qwenfit.loaders import catalog

    out = []
    for m in models:
        entry = catalog.find(m)
        if entry is None:
            catalog.load_catalog_model(m)  # raises UnknownModelError with the close names
            raise UsageError(f"{m!r} is not a catalog model")
        out.append(entry.name)
    return out or [e.name for e in catalog.entries()]


def artifacts_json(names: list[str], kind: str | None) -> list[dict[str, Any]]:
    """Each model's published artifacts as plain records (the ``--json`` ``models`` list)."""
    from qwenfit.loaders.artifacts import published_for

    return [
        {
            "model": name,
            "artifacts": [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "publisher": r.publisher,
                    "format": r.format,
                    "quant": r.quant,
                    "mtp": r.mtp,
                    "evidence": r.evidence,
                    "source": r.source,
                    "files": [_file_json(f) for f in r.files],
                }
                for r in published_for(name)
                if kind is None or r.kind == kind
            ],
        }
        for name in names
    ]


def _file_json(f: Any) -> dict[str, Any]:
    return {
        "name": f.name,
        "quant": f.quant,
        "size_bytes": f.size_bytes,
        "size_text": f.size_text,
        "parts": len(f.parts),
        "tensor_types_known": f.tensor_types is not None,
    }


def run(args: argparse.Namespace) -> int:
    """What is published for each catalog model: Hub repos (official BF16/FP8/GPTQ checkpoints,
    community GGUF, AWQ, NVFP4 and MLX builds) with their files and exact byte sizes where known, Ollama
    library tags and LM Studio keys, each with the evidence it rests on. Plans and checks launch these.
    ``--refresh`` reads the Hub for the models named (all by default) and stores what it finds."""
    from qwenfit.core.fit.text import format_gb, table
    from qwenfit.report.json import SCHEMA_ID

    names = _names(args.models)
    if args.refresh:
        from qwenfit.loaders.refresh import refresh

        report = refresh(models=names)
        emit(str(report))
    records = artifacts_json(names, args.kind)
    if args.json:
        emit_json({"schema": SCHEMA_ID, "kind": "artifacts", "models": records})
        return EXIT_OK
    lines: list[str] = []
    for m in records:
        arts = m["artifacts"]
        n_files = sum(len(a["files"]) for a in arts)
        lines.append(f"{m['model']}: {len(arts)} artifact(s), {n_files} file(s)")
        for a in arts:
            what = a["quant"] or a["format"]
            lines.append(
                f"  {a['id']}  [{a['kind']}, {what}{', MTP layer' if a['mtp'] else ''}; {a['evidence']}]"
            )
            rows = [
                [f["quant"], format_gb(f["size_bytes"]) if f["size_bytes"] else (f["size_text"] or "?"),
                 f"{f['parts']} parts" if f["parts"] > 1 else "", f["name"]]
                for f in a["files"]
            ]  # fmt: skip
            if rows:
                lines += [
                    "      " + row
                    for row in table(rows, ["quant", "size", "", "file"], right={1}).splitlines()
                ]
        lines.append("")
    emit("\n".join(lines).rstrip())
    return EXIT_OK
