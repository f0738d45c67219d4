"""``qwenfit inspect``: one model by component, role and quantization."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from qwenfit.cli.args import EXIT_OK, add_json, load_model
from qwenfit.cli.output import emit, emit_json, gb_text
from qwenfit.cli.quants import quant_sizes
from qwenfit.report.json import SCHEMA_ID, params_json

if TYPE_CHECKING:
    from qwenfit.core.model.spec import ModelSpec

__all__ = ["add"]

SUMMARY_QUANTS = (
    "BF16",
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q4_K_M",
    "IQ4_XS",
    "Q3_K_M",
    "IQ2_XXS",
    "bf16",
    "fp8",
    "awq",
    "nvfp4",
    "mlx-8bit",
    "mlx-4bit",
)


def add(sub: Any, schema_id: str) -> None:
    p = sub.add_parser("inspect", help="one model by component, role and quantization")
    p.add_argument("model", metavar="MODEL", help="catalog name, repo id, model folder, config.json or GGUF")
    add_json(p, schema_id)
    p.set_defaults(func=run_inspect)


def _inspect_json(spec: ModelSpec, sizes: list[dict[str, Any]]) -> dict[str, Any]:
    t, inv, ck = spec.text, spec.inventory, spec.checkpoint
    checkpoint = None
    if ck is not None:
        quantization = None
        if ck.quantization is not None:
            q = ck.quantization
            quantization = str(q.config.get("file_type")) if q.method == "gguf" else q.method
        checkpoint = {
            "format": ck.format,
            "quantization": quantization,
            "files": len(ck.files),
            "tensors": len(ck.tensors),
            "tensor_bytes": ck.tensor_bytes,
            "match_exact": None if ck.match is None else ck.match.exact,
            "match_notes": [] if ck.match is None else list(ck.match.notes),
        }
    return {
        "schema": SCHEMA_ID,
        "kind": "inspect",
        "name": spec.name,
        "family": str(spec.family),
        "source": spec.source or "catalog",
        "n_layers": t.num_hidden_layers,
        "n_linear_attention": t.n_linear_attention,
        "n_full_attention": t.n_full_attention,
        "hidden_size": t.hidden_size,
        "vocab_size": t.vocab_size,
        "tie_word_embeddings": t.tie_word_embeddings,
        "max_position_embeddings": t.max_position_embeddings,
        "num_experts": t.num_experts,
        "num_experts_per_tok": t.num_experts_per_tok,
        "moe_intermediate_size": t.moe_intermediate_size,
        "shared_expert_intermediate_size": t.shared_expert_intermediate_size,
        "intermediate_size": t.intermediate_size,
        "mtp_layers": spec.mtp_layers,
        "vision_depth": None if spec.vision is None else spec.vision.depth,
        "params": params_json(spec),
        "inventory_entries": len(inv),
        "stored_tensors": len(inv.hf_tensors()),
        "stored_bytes": inv.stored_bytes,
        "checkpoint": checkpoint,
        "quant_sizes": sizes,
    }


def run_inspect(args: argparse.Namespace) -> int:
    """One model by component and role, with its size under common quantizations."""
    from qwenfit.core.fit.text import table

    spec = load_model(args.model)
    sizes = quant_sizes(spec, SUMMARY_QUANTS, ranked=False)
    if args.json:
        emit_json(_inspect_json(spec, sizes))
        return EXIT_OK
    p, t, inv = spec.params, spec.text, spec.inventory
    lines = [
        f"{spec.name}  ({spec.family}; source: {spec.source or 'catalog'})",
        f"  layers   {t.num_hidden_layers}: {t.n_linear_attention} Gated DeltaNet + "
        f"{t.n_full_attention} full attention; hidden {t.hidden_size}; vocab {t.vocab_size}"
        f"{'; tied embeddings' if t.tie_word_embeddings else ''}",
    ]
    if t.is_moe:
        lines.append(
            f"  experts  {t.num_experts} routed (top {t.num_experts_per_tok}) + shared "
            f"{t.shared_expert_intermediate_size}; expert FFN {t.moe_intermediate_size}"
        )
    else:
        lines.append(f"  FFN      dense, intermediate {t.intermediate_size}")
    lines += [
        f"  MTP      {spec.mtp_layers} layer(s);  vision: "
        f"{'depth ' + str(spec.vision.depth) if spec.vision else 'none'}",
        f"  params   total {p.total:,}  active {p.active:,}  "
        f"(text {p.text:,}, MTP {p.mtp:,}, vision {p.vision:,})",
        f"  tensors  {len(inv)} inventory entries, {len(inv.hf_tensors())} stored safetensors tensors, "
        f"{inv.stored_bytes:,} bytes as stored",
    ]
    ck = spec.checkpoint
    if ck is not None:
        quant = ""
        if ck.quantization is not None:
            q = ck.quantization
            quant = f" {q.config.get('file_type')}" if q.method == "gguf" else f", {q.method}"
        lines.append(
            f"  files    {ck.format}{quant}: {len(ck.files)} file(s), {len(ck.tensors)} tensors, "
            f"{ck.tensor_bytes:,} bytes of tensor data"
        )
        if ck.match is not None:
            lines.append(
                "  match    "
                + ("exact: every stored tensor is accounted for" if ck.match.exact else "differs")
            )
            lines += [f"           - {note}" for note in ck.match.notes]
    rows = [
        [role, f"{n:,}", f"{100 * n / p.total:.2f}%"]
        for role, n in sorted(p.by_role.items(), key=lambda kv: -kv[1])
    ]
    lines += ["", table(rows, ["role", "params", "share"], right={1, 2})]
    if sizes:
        size_rows = [
            [
                q["name"],
                gb_text(q["file_bytes"]).removesuffix(" GB"),
                f"{q['bits_per_weight']:.2f}",
                q["quality_class"],
            ]
            for q in sizes
        ]
        lines += [
            "",
            "sizes (every quantization: qwenfit quants MODEL)",
            table(size_rows, ["quant", "GB", "bits/w", "class"], right={1, 2}),
        ]
    emit("\n".join(lines))
    return EXIT_OK
