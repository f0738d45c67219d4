"""The ``qwenfit`` command.

``qwenfit models`` prints every catalog model's exact parameter counts; ``qwenfit inspect MODEL``
breaks one model down by component and role. Exit codes: 0 success, 2 bad input or usage (one
line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _billions(n: int) -> str:
    return f"{n / 1e9:.2f}B"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def cmd_models(_: argparse.Namespace) -> int:
    from qwenfit.loaders import catalog

    rows = []
    for entry in catalog.entries():
        spec = catalog.load_catalog_model(entry.name)
        p, t = spec.params, spec.text
        layers = f"{t.num_hidden_layers} ({t.n_linear_attention} GDN + {t.n_full_attention} attn)"
        experts = f"{t.num_experts} (top {t.num_experts_per_tok} + shared)" if t.is_moe else "dense"
        rows.append(
            [
                entry.name,
                f"{p.total:,}",
                _billions(p.active),
                f"{p.text:,}",
                f"{p.mtp:,}",
                f"{p.vision:,}",
                layers,
                experts,
            ]
        )
    header = ["model", "total params (HF)", "active", "text", "MTP", "vision", "layers", "experts"]
    print(_table(header, rows, right={1, 2, 3, 4, 5}))
    print(
        "\ntotal = every tensor of the Hugging Face checkpoint (text + MTP + vision);"
        " active = per-token text params (routed experts at top-k, embeddings and lm_head in)."
    )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import qwenfit

    spec = qwenfit.load(args.model)
    p, t, inv = spec.params, spec.text, spec.inventory
    print(f"{spec.name}  ({spec.family}; source: {spec.source or 'catalog'})")
    print(
        f"  layers   {t.num_hidden_layers}: {t.n_linear_attention} Gated DeltaNet + "
        f"{t.n_full_attention} full attention; hidden {t.hidden_size}; vocab {t.vocab_size}"
        f"{'; tied embeddings' if t.tie_word_embeddings else ''}"
    )
    if t.is_moe:
        print(
            f"  experts  {t.num_experts} routed (top {t.num_experts_per_tok}) + shared "
            f"{t.shared_expert_intermediate_size}; expert FFN {t.moe_intermediate_size}"
        )
    else:
        print(f"  FFN      dense, intermediate {t.intermediate_size}")
    print(
        f"  MTP      {spec.mtp_layers} layer(s);  vision: "
        f"{'depth ' + str(spec.vision.depth) if spec.vision else 'none'}"
    )
    print(
        f"  params   total {p.total:,}  active {p.active:,}  "
        f"(text {p.text:,}, MTP {p.mtp:,}, vision {p.vision:,})"
    )
    print(
        f"  tensors  {len(inv)} inventory entries, {len(inv.hf_tensors())} stored safetensors tensors, "
        f"{inv.stored_bytes:,} bytes as stored"
    )
    ck = spec.checkpoint
    if ck is not None:
        quant = ""
        if ck.quantization is not None:
            q = ck.quantization
            quant = f" {q.config.get('file_type')}" if q.method == "gguf" else f", {q.method}"
        print(f"  files    {ck.format}{quant}: {len(ck.files)} file(s), {len(ck.tensors)} tensors, "
              f"{ck.tensor_bytes:,} bytes of tensor data")  # fmt: skip
        if ck.match is not None:
            print(
                "  match    "
                + ("exact: every stored tensor is accounted for" if ck.match.exact else "differs")
            )
            for note in ck.match.notes:
                print(f"           - {note}")
    rows = [
        [role, f"{n:,}", f"{100 * n / p.total:.2f}%"]
        for role, n in sorted(p.by_role.items(), key=lambda kv: -kv[1])
    ]
    print()
    print(_table(["role", "params", "share"], rows, right={1, 2}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qwenfit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="exact parameter counts of every catalog model").set_defaults(
        func=cmd_models
    )
    p = sub.add_parser("inspect", help="one model by component and role")
    p.add_argument("model", help="catalog name, repo id, model folder or config.json")
    p.set_defaults(func=cmd_inspect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from qwenfit.errors import QwenfitError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except QwenfitError as exc:
        print(f"qwenfit: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `qwenfit models | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
