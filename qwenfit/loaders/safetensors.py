"""Header-only reading of safetensors checkpoints: single files, sharded checkpoints, folders.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON, then the tensor
data. The JSON maps each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` with
offsets relative to the data section, plus an optional ``__metadata__`` string map
(huggingface/safetensors ``safetensors/src/tensor.rs``: ``Metadata::validate``). Only the header is
read, never the data: a 400 GB checkpoint costs a few hundred kilobytes of I/O.

Validation follows the safetensors crate: known dtypes, non-negative shapes, offsets that are
contiguous from 0, byte sizes that equal shape × dtype size, and a data section whose length is
the last offset. A header longer than the cap or than the file is rejected before it is read.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from qwenfit.core.formats.dtypes import SAFETENSORS_DTYPE_BITS
from qwenfit.core.model.checkpoint import Quantization, StoredCheckpoint, StoredEntry
from qwenfit.errors import CheckpointError, SourceNotFoundError

__all__ = [
    "DEFAULT_MAX_HEADER_BYTES",
    "SafetensorsHeader",
    "parse_header",
    "quantization_of",
    "read_checkpoint",
    "read_header",
    "read_header_from",
    "read_index",
]

# safetensors' own limit (MAX_HEADER_SIZE = 100_000_000 in safetensors/src/tensor.rs)
DEFAULT_MAX_HEADER_BYTES = 100_000_000
MAX_INDEX_BYTES = 64 * 1024 * 1024
INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"

Progress = Callable[[int, int, str], None]  # (done, total, file name)


@dataclass(frozen=True, slots=True)
class SafetensorsHeader:
    """One file's header: its tensors with exact byte sizes, and its ``__metadata__``."""

    file: str
    tensors: tuple[StoredEntry, ...]
    metadata: Mapping[str, str]
    header_bytes: int  # 8 + N
    data_bytes: int


def parse_header(
    header: bytes, *, source: str, file: str | None = None, data_bytes: int | None = None
) -> tuple[tuple[StoredEntry, ...], dict[str, str], int]:
    """Validate a header's JSON; returns (tensors in offset order, metadata, data section length).

    ``data_bytes`` is the length of the data section when the file size is known; it must equal the
    last offset (the safetensors crate rejects anything else).
    """
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"header is not UTF-8 (byte {exc.start})", source=source) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"header is not valid JSON ({exc.msg} at byte {exc.pos})", source=source
        ) from None
    except RecursionError:
        raise CheckpointError("header JSON is nested too deeply", source=source) from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"header must be a JSON object, not {type(doc).__name__}", source=source)
    metadata_raw = doc.pop("__metadata__", None) or {}
    if not isinstance(metadata_raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata_raw.items()
    ):
        raise CheckpointError("__metadata__ must map strings to strings", source=source)

    entries: list[tuple[int, int, StoredEntry]] = []
    for name, info in doc.items():
        where = f"tensor {name!r}"
        if not isinstance(info, dict):
            raise CheckpointError(f"{where}: entry must be an object", source=source)
        dtype = info.get("dtype")
        if dtype not in SAFETENSORS_DTYPE_BITS:
            known = ", ".join(SAFETENSORS_DTYPE_BITS)
            raise CheckpointError(f"{where}: unknown dtype {dtype!r} (known: {known})", source=source)
        shape = info.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise CheckpointError(f"{where}: shape must be a list of non-negative integers", source=source)
        offsets = info.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise CheckpointError(
                f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end", source=source
            )
        n = math.prod(shape)
        bits = SAFETENSORS_DTYPE_BITS[dtype] * n
        if bits % 8:
            raise CheckpointError(f"{where}: {n} elements of {dtype} do not fill whole bytes", source=source)
        size = offsets[1] - offsets[0]
        if size != bits // 8:
            raise CheckpointError(
                f"{where}: data_offsets span {size} bytes but shape {shape} of {dtype} needs {bits // 8}",
                source=source,
            )
        entries.append((offsets[0], offsets[1], StoredEntry(name, dtype, tuple(shape), size, file or source)))

    entries.sort(key=lambda e: (e[0], e[1]))
    position = 0
    for begin, end, entry in entries:
        if begin != position:
            kind = "overlaps the previous tensor" if begin < position else f"leaves a gap at byte {position}"
            raise CheckpointError(f"tensor {entry.name!r}: data_offsets {begin}..{end} {kind}", source=source)
        position = end
    if data_bytes is not None and data_bytes != position:
        raise CheckpointError(
            f"data section is {data_bytes} bytes but the tensors end at byte {position}"
            + (" (file truncated?)" if data_bytes < position else ""),
            source=source,
        )
    return tuple(e for _, _, e in entries), dict(metadata_raw), position


def read_header(
    path: str | os.PathLike[str], *, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
) -> SafetensorsHeader:
    """Read and validate one file's header, without reading its tensor data."""
    p = Path(path)
    source = str(p)
    try:
        with p.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            return read_header_from(f, size, source=source, file=p.name, max_header_bytes=max_header_bytes)
    except FileNotFoundError:
        raise SourceNotFoundError(f"{source}: no such file") from None
    except OSError as exc:
        raise CheckpointError(f"cannot be read: {exc.strerror or exc}", source=source) from None


def read_header_from(
    f: BinaryIO, size: int, *, source: str, file: str, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
) -> SafetensorsHeader:
    """The header of a safetensors stream of ``size`` bytes, read from its start (no tensor data)."""
    prefix = f.read(8)
    if len(prefix) < 8:
        raise CheckpointError(
            f"is {size} bytes: too short to be safetensors (no header length)", source=source
        )
    (n,) = struct.unpack("<Q", prefix)
    if n > max_header_bytes:
        raise CheckpointError(
            f"declares a {n:,}-byte header, above the {max_header_bytes:,}-byte limit", source=source
        )
    if n > size - 8:
        raise CheckpointError(
            f"declares a {n:,}-byte header but the file has only {size - 8:,} bytes after the length "
            "(truncated, or not a safetensors file)",
            source=source,
        )
    header = f.read(n)
    tensors, metadata, data = parse_header(header, source=source, file=file, data_bytes=size - 8 - n)
    return SafetensorsHeader(file, tensors, metadata, 8 + n, data)


def read_index(path: str | os.PathLike[str]) -> dict[str, str]:
    """``weight_map`` of a model.safetensors.index.json: tensor name -> shard file name."""
    p = Path(path)
    source = str(p)
    try:
        if p.stat().st_size > MAX_INDEX_BYTES:
            raise CheckpointError(f"is larger than {MAX_INDEX_BYTES:,} bytes", source=source)
        doc = json.loads(p.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise SourceNotFoundError(f"{source}: no such file") from None
    except OSError as exc:
        raise CheckpointError(f"cannot be read: {exc.strerror or exc}", source=source) from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"is not a valid JSON index ({exc})", source=source) from None
    return validate_weight_map(doc, source=source)


def validate_weight_map(doc: Any, *, source: str) -> dict[str, str]:
    weight_map = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError("has no weight_map object", source=source)
    for name, shard in weight_map.items():
        if not isinstance(shard, str) or not shard or "/" in shard or "\\" in shard or shard in (".", ".."):
            raise CheckpointError(f"weight_map[{name!r}] is not a shard file name: {shard!r}", source=source)
    return dict(weight_map)


def check_shards_against_index(
    weight_map: Mapping[str, str], headers: Mapping[str, SafetensorsHeader], *, source: str
) -> None:
    """Every tensor the index names is in its shard, and no shard holds an unlisted tensor."""
    for shard, header in headers.items():
        for t in header.tensors:
            listed = weight_map.get(t.name)
            if listed is None:
                raise CheckpointError(
                    f"shard {shard} holds {t.name!r}, which the index does not list", source=source
                )
            if listed != shard:
                raise CheckpointError(f"{t.name!r} is in {shard} but the index says {listed}", source=source)
    present = {t.name for h in headers.values() for t in h.tensors}
    for name, shard in weight_map.items():
        if name not in present:
            raise CheckpointError(
                f"the index lists {name!r} in {shard} but that shard does not hold it", source=source
            )


def quantization_of(config: Mapping[str, Any]) -> Quantization | None:
    """The quantization a config.json declares: ``quantization_config`` (transformers) or MLX's
    top-level ``quantization`` (mlx-lm), else None."""
    qc = config.get("quantization_config")
    if isinstance(qc, dict):
        method = qc.get("quant_method")
        if not isinstance(method, str):
            method = "unknown"
        if method == "bitsandbytes":
            method = "bitsandbytes-4bit" if qc.get("load_in_4bit") else "bitsandbytes-8bit"
        return Quantization(method=method, config=qc)
    mlx = config.get("quantization")
    if isinstance(mlx, dict) and "bits" in mlx:
        return Quantization(method="mlx", config=mlx)
    return None


def read_checkpoint(
    path: str | os.PathLike[str],
    *,
    quantization: Quantization | None = None,
    progress: Progress | None = None,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
) -> StoredCheckpoint:
    """The stored tensors of a folder, a ``*.safetensors`` file or a ``*.safetensors.index.json``.

    A folder is read through its index when it has one, else its ``model.safetensors``, else its
    only ``*.safetensors`` file. ``progress(done, total, file)`` is called after each shard.
    """
    p = Path(path)
    if p.is_dir():
        if (p / INDEX_NAME).is_file():
            p = p / INDEX_NAME
        elif (p / SINGLE_NAME).is_file():
            p = p / SINGLE_NAME
        else:
            files = sorted(p.glob("*.safetensors"))
            if len(files) != 1:
                what = (
                    "no *.safetensors file" if not files else f"{len(files)} *.safetensors files and no index"
                )
                raise SourceNotFoundError(f"{p}: folder has {what}")
            p = files[0]
    if p.name.endswith(".index.json"):
        weight_map = read_index(p)
        shards = sorted(set(weight_map.values()))
        headers: dict[str, SafetensorsHeader] = {}
        for i, shard in enumerate(shards):
            shard_path = p.parent / shard
            if not shard_path.is_file():
                raise SourceNotFoundError(f"{p}: shard {shard} is listed in the index but not in {p.parent}")
            headers[shard] = read_header(shard_path, max_header_bytes=max_header_bytes)
            if progress is not None:
                progress(i + 1, len(shards), shard)
        check_shards_against_index(weight_map, headers, source=str(p))
        return _checkpoint(list(headers.values()), quantization)
    header = read_header(p, max_header_bytes=max_header_bytes)
    if progress is not None:
        progress(1, 1, p.name)
    return _checkpoint([header], quantization)


def _checkpoint(headers: list[SafetensorsHeader], quantization: Quantization | None) -> StoredCheckpoint:
    return StoredCheckpoint(
        format="safetensors",
        files=tuple(h.file for h in headers),
        tensors=tuple(t for h in headers for t in h.tensors),
        file_bytes=sum(h.header_bytes + h.data_bytes for h in headers),
        quantization=quantization,
    )
