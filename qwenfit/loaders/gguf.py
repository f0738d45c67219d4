"""Header-only reading of GGUF files (llama.cpp): metadata, tensor infos, exact tensor bytes.

Format (ggml/docs/gguf.md; ggml/src/gguf.cpp ``gguf_init_from_file_impl``): magic ``GGUF``, version
(u32, 2 or 3), tensor count and key-value count (u64), the key-value pairs, the tensor infos (name,
n_dims, ne[], ggml type, offset), padding to ``general.alignment`` (default 32), then the data.
Little-endian only.

The parser is written here rather than taken from the ``gguf`` package because it must refuse
hostile files cheaply: every count and length is checked against the bytes left in the file before
anything is allocated, large arrays (the 248k-token vocabulary) are skipped rather than
materialised, and every failure is a :class:`~qwenfit.errors.CheckpointError` naming the file.
The tests cross-check it against ``gguf.GGUFReader`` on files written by gguf-py and llama.cpp.
"""

from __future__ import annotations

import itertools
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from qwenfit.core.formats.dtypes import GGML_TYPES_BY_ID, LLAMA_FILE_TYPES
from qwenfit.core.model.checkpoint import Quantization, StoredCheckpoint, StoredEntry
from qwenfit.errors import CheckpointError, QwenfitError, SourceNotFoundError
from qwenfit.loaders.safetensors import Progress

__all__ = [
    "GGUFFile",
    "GGUFTensor",
    "check_split",
    "checkpoint_of",
    "config_from_gguf",
    "read_gguf",
    "read_gguf_from",
    "read_gguf_split",
    "split_parts",
]

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32  # GGUF_DEFAULT_ALIGNMENT
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_STRING_BYTES = 1 << 24  # no key or value string in a real file comes near 16 MiB
MAX_KEEP_ARRAY = 4096  # arrays up to this many items are kept; longer ones are summarised
MAX_HEADER_BYTES = 1 << 30  # a header (metadata + tensor infos) beyond 1 GiB is not a model

# GGUF value types (gguf.h enum gguf_type): (struct format, size) for fixed-size ones
_FIXED: dict[int, tuple[str, int]] = {
    0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
    6: ("<f", 4), 7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8),
}  # fmt: skip
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True, slots=True)
class GGUFTensor:
    name: str
    shape: tuple[int, ...]  # ggml order: ne0 first
    ggml_type: str
    offset: int  # relative to the data section
    nbytes: int


@dataclass(frozen=True, slots=True)
class GGUFArray:
    """A long metadata array, summarised: its item type and length (items not kept)."""

    item_type: int
    count: int


@dataclass(frozen=True, slots=True, eq=False)
class GGUFFile:
    """One GGUF file's header."""

    path: str
    version: int
    metadata: Mapping[str, Any]
    tensors: tuple[GGUFTensor, ...]
    alignment: int
    data_offset: int  # where the data section starts
    file_size: int

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def file_type(self) -> str | None:
        ft = self.metadata.get("general.file_type")
        return LLAMA_FILE_TYPES.get(ft, f"unknown({ft})") if isinstance(ft, int) else None

    @property
    def tensor_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def padding_bytes(self) -> int:
        """Everything in the file that is neither header nor tensor data: alignment padding."""
        return self.file_size - self.data_offset - self.tensor_bytes


class _Reader:
    """Bounds-checked sequential reads; never reads or allocates past the end of the file."""

    def __init__(self, f: BinaryIO, size: int, source: str) -> None:
        self.f = f
        self.size = size
        self.source = source
        self.pos = 0

    def fail(self, message: str) -> CheckpointError:
        return CheckpointError(f"{message} (at byte {self.pos})", source=self.source)

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.size - self.pos:
            raise self.fail(
                f"{what} needs {n:,} bytes but only {self.size - self.pos:,} remain: truncated or corrupt"
            )
        if self.pos + n > MAX_HEADER_BYTES:
            raise self.fail(f"header is larger than {MAX_HEADER_BYTES:,} bytes")
        data = self.f.read(n)
        if len(data) != n:
            raise self.fail(f"{what}: file ended early")
        self.pos += n
        return data

    def skip(self, n: int, what: str) -> None:
        if n < 0 or n > self.size - self.pos:
            raise self.fail(
                f"{what} needs {n:,} bytes but only {self.size - self.pos:,} remain: truncated or corrupt"
            )
        self.f.seek(n, os.SEEK_CUR)
        self.pos += n

    def fixed(self, vtype: int, what: str) -> Any:
        fmt, n = _FIXED[vtype]
        return struct.unpack(fmt, self.take(n, what))[0]

    def u32(self, what: str) -> int:
        return int(self.fixed(4, what))

    def u64(self, what: str) -> int:
        return int(self.fixed(10, what))

    def string(self, what: str) -> str:
        n = self.u64(f"{what} length")
        if n > MAX_STRING_BYTES:
            raise self.fail(f"{what} declares {n:,} bytes, more than any GGUF string needs")
        raw = self.take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not UTF-8") from None

    def skip_string(self, what: str) -> None:
        n = self.u64(f"{what} length")
        if n > MAX_STRING_BYTES:
            raise self.fail(f"{what} declares {n:,} bytes, more than any GGUF string needs")
        self.skip(n, what)

    def value(self, vtype: int, what: str, depth: int = 0) -> Any:
        if vtype in _FIXED:
            return self.fixed(vtype, what)
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY:
            if depth > 0:
                raise self.fail(f"{what}: nested arrays are not used by llama.cpp")
            item = self.u32(f"{what} item type")
            count = self.u64(f"{what} count")
            if item not in _FIXED and item != _STRING:
                raise self.fail(f"{what}: array item type {item} is not a GGUF value type")
            # each item takes at least one byte (8 for a string length): refuse impossible counts now
            min_item = 8 if item == _STRING else _FIXED[item][1]
            if count > (self.size - self.pos) // min_item:
                raise self.fail(
                    f"{what}: {count:,} items cannot fit in the {self.size - self.pos:,} bytes left"
                )
            if count <= MAX_KEEP_ARRAY:
                return [self.value(item, what, depth + 1) for _ in range(count)]
            if item == _STRING:
                for _ in range(count):
                    self.skip_string(what)
            else:
                self.skip(count * _FIXED[item][1], what)
            return GGUFArray(item, count)
        raise self.fail(f"{what}: value type {vtype} is not a GGUF value type")


def read_gguf(path: str | os.PathLike[str]) -> GGUFFile:
    """Read and validate one GGUF file's header (metadata and tensor infos) without its data."""
    p = Path(path)
    source = str(p)
    try:
        with p.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            return _parse(_Reader(f, size, source), source, size)
    except FileNotFoundError:
        raise SourceNotFoundError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise SourceNotFoundError(f"{source}: is a folder, not a GGUF file") from None
    except OSError as exc:
        raise CheckpointError(f"cannot be read: {exc.strerror or exc}", source=source) from None


def read_gguf_from(f: BinaryIO, size: int, *, source: str) -> GGUFFile:
    """The header of a GGUF stream of ``size`` bytes, read from its start (no tensor data)."""
    return _parse(_Reader(f, size, source), source, size)


def _parse(r: _Reader, source: str, size: int) -> GGUFFile:
    magic = r.take(4, "magic") if size >= 4 else b""
    if magic != MAGIC:
        raise CheckpointError(f"not a GGUF file (magic {magic!r}, expected {MAGIC!r})", source=source)
    version = r.u32("version")
    if version not in (2, 3):
        hint = " (big-endian files are not supported)" if version > 0xFFFF else ""
        raise CheckpointError(f"GGUF version {version} is not supported (2 and 3 are){hint}", source=source)
    n_tensors = r.u64("tensor count")
    n_kv = r.u64("metadata count")
    # a tensor info takes >= 8+4+8+4+8 bytes, a key-value >= 8+4+1: refuse impossible counts early
    if n_tensors > size // 32 or n_kv > size // 13:
        raise CheckpointError(
            f"declares {n_tensors:,} tensors and {n_kv:,} metadata entries, "
            f"more than a {size:,}-byte file holds",
            source=source,
        )
    metadata: dict[str, Any] = {}
    for i in range(n_kv):
        key = r.string(f"metadata key {i}")
        vtype = r.u32(f"type of {key!r}")
        if key in metadata:
            raise r.fail(f"duplicate metadata key {key!r}")
        metadata[key] = r.value(vtype, f"metadata {key!r}")
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if (
        not isinstance(alignment, int)
        or isinstance(alignment, bool)
        or alignment <= 0
        or alignment & (alignment - 1)
    ):
        raise CheckpointError(f"general.alignment {alignment!r} is not a power of two", source=source)

    infos: list[tuple[str, tuple[int, ...], int, int]] = []
    names: set[str] = set()
    for i in range(n_tensors):
        name = r.string(f"tensor {i} name")
        if name in names:
            raise r.fail(f"duplicate tensor name {name!r}")
        names.add(name)
        n_dims = r.u32(f"{name!r} n_dims")
        if not 1 <= n_dims <= MAX_DIMS:
            raise r.fail(f"tensor {name!r} has {n_dims} dimensions (1..{MAX_DIMS} allowed)")
        shape = tuple(r.u64(f"{name!r} ne[{d}]") for d in range(n_dims))
        type_id = r.u32(f"{name!r} type")
        offset = r.u64(f"{name!r} offset")
        infos.append((name, shape, type_id, offset))
    data_offset = -(-r.pos // alignment) * alignment
    data_size = size - data_offset

    tensors: list[GGUFTensor] = []
    for name, shape, type_id, offset in infos:
        gtype = GGML_TYPES_BY_ID.get(type_id)
        if gtype is None:
            raise CheckpointError(f"tensor {name!r} has unknown ggml type id {type_id}", source=source)
        if offset % alignment:
            raise CheckpointError(
                f"tensor {name!r} offset {offset} is not aligned to {alignment}", source=source
            )
        if any(d < 0 for d in shape) or shape[0] % gtype.block_size:
            raise CheckpointError(
                f"tensor {name!r} ne0={shape[0]} is not a multiple of the {gtype.name} "
                f"block size {gtype.block_size}",
                source=source,
            )
        n = 1
        for d in shape:
            n *= d
        if n > 1 << 48:
            raise CheckpointError(f"tensor {name!r} declares {n:,} elements", source=source)
        nbytes = gtype.n_bytes(shape)
        if offset + nbytes > data_size:
            raise CheckpointError(
                f"tensor {name!r} ends at data byte {offset + nbytes:,} but the data section has "
                f"{data_size:,} bytes (truncated file?)",
                source=source,
            )
        tensors.append(GGUFTensor(name, shape, gtype.name, offset, nbytes))
    ordered = sorted(tensors, key=lambda t: t.offset)
    for a, b in itertools.pairwise(ordered):
        if a.offset + a.nbytes > b.offset:
            raise CheckpointError(
                f"tensors {a.name!r} and {b.name!r} overlap in the data section", source=source
            )
    return GGUFFile(source, version, metadata, tuple(tensors), alignment, data_offset, size)


_SPLIT = re.compile(r"^(?P<stem>.*)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


def split_parts(path: Path) -> list[Path]:
    """All files of a split GGUF (``name-00001-of-00003.gguf``), or just ``[path]``."""
    m = _SPLIT.match(path.name)
    if not m:
        return [path]
    count = int(m.group("count"))
    parts = [path.with_name(f"{m.group('stem')}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
    for part in parts:
        if not part.is_file():
            raise SourceNotFoundError(f"{path}: split part {part.name} is missing")
    return parts


def read_gguf_split(path: str | os.PathLike[str], progress: Progress | None = None) -> list[GGUFFile]:
    """Every part of a (possibly split) GGUF, checked against its ``split.*`` metadata;
    ``progress(done, total, file)`` after each part."""
    files = split_parts(Path(path))
    parts = []
    for i, part in enumerate(files):
        parts.append(read_gguf(part))
        if progress is not None:
            progress(i + 1, len(files), part.name)
    check_split(parts, source=str(path))
    return parts


def check_split(parts: list[GGUFFile], *, source: str) -> None:
    """The parts of a split GGUF hold the declared number of tensors, each once."""
    if len(parts) > 1:
        declared = parts[0].metadata.get("split.tensors.count")
        total = sum(len(p.tensors) for p in parts)
        if isinstance(declared, int) and declared != total:
            raise CheckpointError(
                f"split.tensors.count is {declared} but the parts hold {total} tensors", source=source
            )
        seen: set[str] = set()
        for part in parts:
            for t in part.tensors:
                if t.name in seen:
                    raise CheckpointError(
                        f"tensor {t.name!r} appears in more than one split part", source=part.path
                    )
                seen.add(t.name)


def checkpoint_of(parts: list[GGUFFile]) -> StoredCheckpoint:
    file_type = parts[0].file_type
    return StoredCheckpoint(
        format="gguf",
        files=tuple(Path(p.path).name for p in parts),
        tensors=tuple(
            StoredEntry(t.name, t.ggml_type, t.shape, t.nbytes, Path(p.path).name)
            for p in parts
            for t in p.tensors
        ),
        file_bytes=sum(p.file_size for p in parts),
        quantization=Quantization("gguf", {"file_type": file_type}) if file_type else None,
    )


# --------------------------------------------------------------------------------------------------
# GGUF metadata -> config.json (the keys convert_hf_to_gguf.py writes: conversion/qwen.py, base.py)

_ARCH_MODEL_TYPE = {"qwen35": "qwen3_5_text", "qwen35moe": "qwen3_5_moe_text", "qwen3next": "qwen3_next"}


def config_from_gguf(parts: list[GGUFFile]) -> tuple[dict[str, Any], int]:
    """A flat config.json equivalent to a text GGUF's metadata (first part of a split file holds
    it; tensors may be in any part), and its MTP layer count."""
    g = parts[0]
    try:
        return _config_from_gguf(g, {t.name: t for p in parts for t in p.tensors})
    except QwenfitError:
        raise
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise CheckpointError(f"metadata has a value of the wrong type ({exc})", source=g.path) from None


def _config_from_gguf(g: GGUFFile, tensors: dict[str, GGUFTensor]) -> tuple[dict[str, Any], int]:
    arch = g.architecture
    if arch not in _ARCH_MODEL_TYPE:
        from qwenfit.errors import UnsupportedModelError

        what = (
            "a vision projector (mmproj); load the text GGUF instead"
            if arch == "clip"
            else "not a Qwen3.5 model"
        )
        raise UnsupportedModelError(
            f"general.architecture is {arch!r}: {what}; supported: {', '.join(_ARCH_MODEL_TYPE)}",
            source=g.path,
        )
    m = g.metadata

    def key(name: str, default: Any = None) -> Any:
        value = m.get(f"{arch}.{name}", default)
        if value is None:
            raise CheckpointError(f"metadata {arch}.{name} is missing", source=g.path)
        return value

    embd = tensors.get("token_embd.weight")
    if embd is None or len(embd.shape) != 2:
        raise CheckpointError("has no 2-D token_embd.weight", source=g.path)
    n_mtp = int(key("nextn_predict_layers", 0))
    n_layers = int(key("block_count")) - n_mtp
    head_dim = int(key("attention.key_length"))
    n_v_heads = int(key("ssm.time_step_rank"))
    config: dict[str, Any] = {
        "model_type": _ARCH_MODEL_TYPE[arch],
        "hidden_size": int(key("embedding_length")),
        "num_hidden_layers": n_layers,
        "vocab_size": embd.shape[1],
        "tie_word_embeddings": "output.weight" not in tensors,
        "num_attention_heads": int(key("attention.head_count")),
        "num_key_value_heads": int(key("attention.head_count_kv")),
        "head_dim": head_dim,
        "linear_num_key_heads": int(key("ssm.group_count")),
        "linear_num_value_heads": n_v_heads,
        "linear_key_head_dim": int(key("ssm.state_size")),
        "linear_value_head_dim": int(key("ssm.inner_size")) // n_v_heads if n_v_heads else 0,
        "linear_conv_kernel_dim": int(key("ssm.conv_kernel")),
        "max_position_embeddings": int(key("context_length")),
        "rms_norm_eps": float(key("attention.layer_norm_rms_epsilon", 1e-6)),
        "rope_theta": float(key("rope.freq_base", 10_000_000.0)),
        "partial_rotary_factor": int(key("rope.dimension_count", head_dim // 4)) / head_dim,
        "mtp_num_hidden_layers": n_mtp,
    }
    recurrent = m.get(f"{arch}.attention.recurrent_layers")
    if isinstance(recurrent, list):
        config["layer_types"] = ["linear_attention" if r else "full_attention" for r in recurrent[:n_layers]]
    else:
        config["full_attention_interval"] = int(key("full_attention_interval", 4))
    if arch == "qwen35":
        config["intermediate_size"] = int(key("feed_forward_length"))
    else:
        config.update(
            num_experts=int(key("expert_count")),
            num_experts_per_tok=int(key("expert_used_count")),
            moe_intermediate_size=int(key("expert_feed_forward_length")),
            shared_expert_intermediate_size=int(key("expert_shared_feed_forward_length", 0)),
        )
    return config, n_mtp
