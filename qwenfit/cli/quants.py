"""``qwenfit quants``: every quantization of a model: exact bytes, bits per weight, quality."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from qwenfit.cli.args import EXIT_OK, add_json, engine_names, load_model
from qwenfit.cli.output import emit, emit_json, gb_text
from qwenfit.errors import QwenfitError
from qwenfit.report.json import SCHEMA_ID

if TYPE_CHECKING:
    from qwenfit.core.model.spec import ModelSpec

__all__ = ["add", "quant_sizes"]


def add(sub: Any, schema_id: str) -> None:
    p = sub.add_parser("quants", help="every quantization of a model: bytes, bits per weight, quality")
    p.add_argument("model", metavar="MODEL", help="catalog name, repo id or path")
    p.add_argument("--engine", choices=engine_names(), metavar="E", help="only the formats this engine loads")
    add_json(p, schema_id)
    p.set_defaults(func=run_quants)


def quant_sizes(spec: ModelSpec, names: Iterable[str], *, ranked: bool = True) -> list[dict[str, Any]]:
    """Exact weight bytes per quantization (skipping any a model's shapes cannot take); ``ranked``:
    best first (quality rank, published KLD, size), else in the order given."""
    import qwenfit
    from qwenfit.core.engines.base import engines as all_engines
    from qwenfit.core.fit.planner import QUALITY_CLASSES, quality_class
    from qwenfit.core.formats.names import normalise
    from qwenfit.errors import UnknownQuantError
    from qwenfit.loaders.quants import quant_quality, resolve_quant_name

    records = quant_quality()
    out: list[dict[str, Any]] = []
    for name in names:
        try:
            w = qwenfit.weights(spec, name)
        except (QwenfitError, ValueError):
            continue
        resolved = normalise(name)
        family = {"gguf": "gguf", "mlx": "mlx"}.get(resolved.family if resolved else "", "gpu")
        engines = [e.name for e in all_engines() if e.accepts(name) == name]
        try:
            record = records[resolve_quant_name(name)]
        except UnknownQuantError:
            record = None
        n_params = w.n_params
        out.append(
            {
                "name": name,
                "family": family,
                "engines": engines,
                "file_bytes": w.file_bytes,
                "tensor_bytes": w.total_bytes,
                "n_params": n_params,
                "bits_per_weight": round(8 * w.total_bytes / n_params, 4) if n_params else 0.0,
                "quality_rank": None if record is None else record.quality_rank,
                "quality_class": QUALITY_CLASSES[quality_class(name)],
                "kld": None if record is None else record.kld,
                "ppl_delta_pct": None if record is None else record.ppl_delta_pct,
            }
        )
    if ranked:
        out.sort(
            key=lambda q: (
                q["quality_rank"] is None,
                q["quality_rank"] or 0,
                q["kld"] is None,
                q["kld"] or 0.0,
                -q["tensor_bytes"],
                q["name"],
            )
        )
    return out


def _quant_table(rows: Sequence[dict[str, Any]]) -> str:
    from qwenfit.core.fit.text import table

    cells = [
        [
            q["name"],
            q["family"],
            gb_text(q["file_bytes"]).removesuffix(" GB"),
            f"{q['file_bytes']:,}",
            f"{q['bits_per_weight']:.2f}",
            "-" if q["quality_rank"] is None else str(q["quality_rank"]),
            q["quality_class"],
            "-" if q["kld"] is None else f"{q['kld']:.4f}",
        ]
        for q in rows
    ]
    header = ["quant", "family", "GB", "bytes", "bits/w", "rank", "class", "KLD"]
    return table(cells, header, right={2, 3, 4, 5, 7})


def run_quants(args: argparse.Namespace) -> int:
    """Every quantization of MODEL: exact file bytes, bits per weight and the quality record."""
    from qwenfit.core.engines.base import get
    from qwenfit.core.formats.gguf import FILE_TYPES
    from qwenfit.core.formats.gpu import FORMATS
    from qwenfit.core.formats.names import family_names

    spec = load_model(args.model)
    engine = args.engine
    names = [*FILE_TYPES, *FORMATS] if engine is None else list(family_names(get(engine).weights_family))
    rows = quant_sizes(spec, names)
    if args.json:
        emit_json(
            {"schema": SCHEMA_ID, "kind": "quants", "model": spec.name, "engine": engine, "quants": rows}
        )
        return EXIT_OK
    lines = [
        f"{spec.name}: {spec.params.total:,} parameters; weights per quantization"
        + (f" for {engine}" if engine else ""),
        "",
        _quant_table(rows),
        "",
        "GB/bytes: the file(s) to download, exact (GGUF: the text model + MTP layer, header included;",
        "GPU/MLX formats: the published checkpoint). rank: quality, 1 best (data/quants.yaml);",
        "class: good (>= 4 bits), usable (3-bit), poor (<= 2-bit); KLD: published, against BF16.",
    ]
    emit("\n".join(lines))
    return EXIT_OK
