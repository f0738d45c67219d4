"""``qwenfit models``: exact parameter counts of every catalog model."""

from __future__ import annotations

import argparse
from typing import Any

from qwenfit.cli.args import EXIT_OK, add_json
from qwenfit.cli.output import emit, emit_json
from qwenfit.report.json import SCHEMA_ID, params_json

__all__ = ["add"]


def add(sub: Any, schema_id: str) -> None:
    p = sub.add_parser("models", help="exact parameter counts of every catalog model")
    add_json(p, schema_id)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exact parameter counts of every catalog model."""
    from qwenfit.core.fit.text import table
    from qwenfit.loaders import catalog

    entries = [(entry, catalog.load_catalog_model(entry.name)) for entry in catalog.entries()]
    if args.json:
        models = [
            {
                "name": entry.name,
                "aliases": list(entry.aliases),
                "repo_ids": list(entry.repo_ids),
                "params": params_json(spec),
                "n_layers": spec.text.num_hidden_layers,
                "n_linear_attention": spec.text.n_linear_attention,
                "n_full_attention": spec.text.n_full_attention,
                "num_experts": spec.text.num_experts,
                "num_experts_per_tok": spec.text.num_experts_per_tok,
            }
            for entry, spec in entries
        ]
        emit_json({"schema": SCHEMA_ID, "kind": "models", "models": models})
        return EXIT_OK
    rows = []
    for entry, spec in entries:
        p, t = spec.params, spec.text
        layers = f"{t.num_hidden_layers} ({t.n_linear_attention} GDN + {t.n_full_attention} attn)"
        experts = f"{t.num_experts} (top {t.num_experts_per_tok} + shared)" if t.is_moe else "dense"
        rows.append(
            [
                entry.name,
                f"{p.total:,}",
                f"{p.active / 1e9:.2f}B",
                f"{p.text:,}",
                f"{p.mtp:,}",
                f"{p.vision:,}",
                layers,
                experts,
            ]
        )
    header = ["model", "total params (HF)", "active", "text", "MTP", "vision", "layers", "experts"]
    emit(table(rows, header, right={1, 2, 3, 4, 5}))
    emit(
        "\ntotal = every tensor of the Hugging Face checkpoint (text + MTP + vision);"
        " active = per-token text params (routed experts at top-k, embeddings and lm_head in)."
    )
    return EXIT_OK
