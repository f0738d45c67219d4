"""data/quants.yaml -> QuantQuality records: how good each quantization is, for ranking options.

``quant_quality()`` reads and validates the shipped file once (pydantic, unknown keys rejected)
and returns the records by canonical name: llama.cpp file types upper case (``"Q4_K_M"``,
``"BF16"``), GPU and MLX formats lower case (``"fp8"``, ``"bf16"``, ``"mlx-4bit-g32"``).
``quality_key(name)`` sorts names best first and accepts any case, resolving the one clash the
way :func:`qwenfit.weights` does: ``"bf16"``/``"fp16"`` are the safetensors checkpoint,
``"BF16"``/``"F16"`` the llama.cpp file type.

YAML and pydantic are imported inside the functions, so ``import qwenfit`` stays fast; at start-up the
records come from ``data/quants.json`` (the validated YAML as plain records, written by
scripts/gen_quants_json.py) when it carries the YAML's SHA-256, so neither is imported at all.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
from pathlib import Path
from typing import Any

from qwenfit.core.formats.quality import QuantQuality
from qwenfit.errors import QuantDataError, UnknownQuantError
from qwenfit.loaders.stamps import sha256, verified

__all__ = [
    "QuantDataError",
    "UnknownQuantError",
    "compiled_quants_json",
    "load_quant_quality",
    "quality_key",
    "quant_quality",
    "resolve_quant_name",
]

_BASIS_PREFIXES = ("published", "ordered by bits per weight", "same as ")


def _record_model() -> Any:
    """The pydantic model of one record (built on first use: pydantic stays out of import)."""
    from typing import Literal

    from pydantic import BaseModel, ConfigDict, Field

    class QuantRecord(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        name: str = Field(min_length=1)
        family: Literal["gguf", "gpu", "mlx"]
        quality_rank: int = Field(ge=1, strict=True)
        kld: float | None = Field(default=None, ge=0)
        ppl_delta_pct: float | None = None
        measured_on: str | None = None
        basis: str = Field(min_length=1)
        source: str = Field(min_length=1)
        notes: str = ""

    return QuantRecord


def _field_hint(field: str, fields: list[str]) -> str:
    import difflib  # here: only a misspelling needs it

    close = difflib.get_close_matches(field, fields, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_record(record: QuantQuality) -> str | None:
    """Cross-field rules; the problem as a sentence, or None."""
    if not record.basis.startswith(_BASIS_PREFIXES):
        return f"basis {record.basis!r} must start with one of {', '.join(map(repr, _BASIS_PREFIXES))}"
    has_number = record.kld is not None or record.ppl_delta_pct is not None
    if has_number and not record.published:
        return "kld/ppl_delta_pct are set, so basis must start with 'published'"
    if record.published and not record.measured_on:
        return "basis is 'published' but measured_on does not say which model the number is for"
    if not record.published and record.measured_on:
        return "measured_on is set but basis is not 'published'"
    return None


def load_quant_quality(path: str | Path) -> dict[str, QuantQuality]:
    """Read and validate a quants.yaml file (uncached; :func:`quant_quality` caches the shipped one).

    Raises :class:`QuantDataError` naming the file, the record and the field that is wrong.
    """
    from pydantic import ValidationError

    yaml = importlib.import_module("yaml")
    path = Path(path)
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 5x faster
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except OSError as exc:
        raise QuantDataError(f"{path}: cannot read the quantization quality table: {exc}") from None
    except yaml.YAMLError as exc:
        raise QuantDataError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"quants"} or not isinstance(data["quants"], list):
        raise QuantDataError(f"{path}: expected one top-level key 'quants' holding a list of records")
    model = _record_model()
    fields = list(model.model_fields)
    out: dict[str, QuantQuality] = {}
    for index, raw in enumerate(data["quants"], start=1):
        label = f"{path}: quants entry {index}"
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            label += f" ({raw['name']!r})"
        if not isinstance(raw, dict):
            raise QuantDataError(f"{label}: expected a mapping of {', '.join(fields)}")
        try:
            parsed = model.model_validate(raw)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(part) for part in err["loc"]) or "record"
                hint = _field_hint(where, fields) if err["type"] == "extra_forbidden" else ""
                problems.append(f"{where}: {err['msg']}{hint}")
            raise QuantDataError(f"{label}: {'; '.join(problems)}") from None
        record = QuantQuality(**parsed.model_dump())
        problem = _check_record(record)
        if problem:
            raise QuantDataError(f"{label}: {problem}")
        if record.name in out:
            raise QuantDataError(f"{label}: duplicate record for {record.name!r}")
        out[record.name] = record
    if not out:
        raise QuantDataError(f"{path}: no quantization records")
    return out


def compiled_quants_json(path: str | Path | None = None) -> str:
    """``data/quants.json``: the records of a quants.yaml (default: the shipped one), validated by
    :func:`load_quant_quality`, as plain records with the YAML's SHA-256."""
    if path is None:
        from qwenfit.loaders.catalog import data_dir

        path = data_dir() / "quants.yaml"
    path = Path(path)
    records = [dataclasses.asdict(r) for r in load_quant_quality(path).values()]
    data = {"yaml_sha256": sha256(path), "quants": records}
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


@functools.lru_cache(maxsize=1)
def quant_quality() -> dict[str, QuantQuality]:
    """Every shipped quality record, by canonical name (do not mutate the returned dict): from
    quants.json when it was compiled from this quants.yaml, else from the YAML itself."""
    from qwenfit.loaders.catalog import data_dir

    path = data_dir() / "quants.yaml"
    compiled = path.with_suffix(".json")
    if compiled.exists():
        try:
            data = json.loads(compiled.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        expected = data.get("yaml_sha256") if isinstance(data, dict) else None
        # the YAML is hashed only when edited since the last check that matched (a stat stamp)
        if isinstance(expected, str) and verified(compiled, expected, [path], lambda: sha256(path)):
            return {r["name"]: QuantQuality(**r) for r in data["quants"]}
    return load_quant_quality(path)


def resolve_quant_name(name: str) -> str:
    """The canonical record name for ``name`` in any case (``"q4_k_m"`` -> ``"Q4_K_M"``).

    An exact match wins; otherwise the lower-case GPU/MLX name, unless the upper-case spelling
    is a llama.cpp file type (so ``"bf16"`` is the checkpoint and ``"Bf16"`` the file type).
    """
    records = quant_quality()
    key = name.strip()
    if key in records:
        return key
    upper, lower = key.upper(), key.lower()
    gguf = upper in records and records[upper].family == "gguf"
    if not gguf and lower in records and records[lower].family != "gguf":
        return lower
    if gguf:
        return upper
    from qwenfit.core.formats.names import dynamic_base

    base = dynamic_base(key)
    if base is not None and base in records:  # a publisher's dynamic mix ranks as the type it builds on
        return base
    import difflib  # here: only a misspelling needs it

    close = difflib.get_close_matches(key, list(records), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownQuantError(
        f"no quality record for quantization {name!r}.{hint} Known: {', '.join(records)}."
    )


def quality_key(name: str) -> tuple[int, float]:
    """Sort key, best first: (quality rank, published KLD or infinity). Any case accepted."""
    return quant_quality()[resolve_quant_name(name)].sort_key
