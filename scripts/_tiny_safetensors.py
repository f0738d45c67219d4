"""Header-only safetensors helpers for scripts/make_tiny_checkpoints.py.

Nothing here imports torch or transformers: the inventory is read straight from the files
(8-byte little-endian header length, then that many bytes of JSON), so what it reports is what
is on disk, not what a model class believes.
"""

from __future__ import annotations

import json
import math
import os
import struct
from typing import Any

DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}


def read_header(path: str) -> dict[str, Any]:
    """Return the JSON header of one .safetensors file (including '__metadata__' if present)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def checkpoint_files(model_dir: str) -> list[str]:
    """The safetensors files of a checkpoint directory, in index order if sharded."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        return sorted(set(weight_map.values()))
    return ["model.safetensors"]


def inventory(model_dir: str) -> list[dict[str, Any]]:
    """Every tensor of the checkpoint as {name, shape, dtype, file}, sorted by name."""
    rows = []
    for fn in checkpoint_files(model_dir):
        for name, info in read_header(os.path.join(model_dir, fn)).items():
            if name == "__metadata__":
                continue
            rows.append({"name": name, "shape": list(info["shape"]), "dtype": info["dtype"], "file": fn})
    rows.sort(key=lambda r: r["name"])
    return rows


def part_of(name: str) -> str:
    """Which part of a Qwen3.5 / Qwen3-Next checkpoint a tensor belongs to."""
    if name.startswith("mtp."):
        return "mtp"
    if name.startswith("model.visual."):
        return "vision"
    return "text"


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Parameter totals (split text / mtp / vision) and bytes per dtype, from an inventory."""
    params = {"text": 0, "mtp": 0, "vision": 0}
    bytes_by_dtype: dict[str, int] = {}
    params_by_dtype: dict[str, int] = {}
    for r in rows:
        n = math.prod(r["shape"])
        params[part_of(r["name"])] += n
        params_by_dtype[r["dtype"]] = params_by_dtype.get(r["dtype"], 0) + n
        bytes_by_dtype[r["dtype"]] = bytes_by_dtype.get(r["dtype"], 0) + n * DTYPE_BYTES[r["dtype"]]
    return {
        "total_params": sum(params.values()),
        "params": params,
        "params_by_dtype": dict(sorted(params_by_dtype.items())),
        "bytes_by_dtype": dict(sorted(bytes_by_dtype.items())),
        "total_bytes": sum(bytes_by_dtype.values()),
        "tensor_count": len(rows),
    }
