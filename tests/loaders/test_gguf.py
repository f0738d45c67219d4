"""GGUF headers: round trips through gguf-py's writer, cross-checks with GGUFReader, hostile files."""

from __future__ import annotations

import struct

import pytest
from builders import gguf_of, tiny_config, write_gguf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qwenfit
from qwenfit.errors import CheckpointError, QwenfitError, SourceNotFoundError, UnsupportedModelError
from qwenfit.loaders.config import spec_from_config
from qwenfit.loaders.gguf import read_gguf


def _write(tmp_path, spec, name="model.gguf", **kw):
    arch, meta, tensors = gguf_of(spec, **kw)
    return write_gguf(tmp_path / name, arch, meta, tensors, n_vocab_tokens=spec.text.vocab_size)


@pytest.mark.parametrize(("moe", "fuse"), [(False, False), (True, False), (True, True)])
def test_round_trip(tmp_path, moe, fuse):
    spec = spec_from_config(tiny_config(moe=moe, vision=True))
    path = _write(tmp_path, spec, fuse_gate_up=fuse)
    loaded = qwenfit.load(path)
    ck = loaded.checkpoint
    assert ck.format == "gguf" and ck.match.exact, ck.match.notes
    assert loaded.vision is None and loaded.mtp_layers == 1  # the vision tower goes to an mmproj file
    assert loaded.params.total == spec.params.total - spec.params.vision
    assert loaded.params.active == spec.params.active
    g = read_gguf(path)
    # every byte of the file is header, tensor data or alignment padding
    assert g.data_offset + sum(-(-t.nbytes // 32) * 32 for t in g.tensors) == path.stat().st_size
    assert g.data_offset + g.tensor_bytes + g.padding_bytes == path.stat().st_size
    assert ck.tensor_bytes == g.tensor_bytes == sum(x.stored_bytes for x in loaded.inventory)
    assert ck.quantization.config["file_type"] == "BF16"


def test_matches_gguf_reader(tmp_path):
    import gguf

    spec = spec_from_config(tiny_config(moe=True))
    path = _write(tmp_path, spec)
    ours = read_gguf(path)
    theirs = gguf.GGUFReader(path)
    assert [(t.name, t.shape, t.ggml_type, t.nbytes) for t in ours.tensors] == [
        (t.name, tuple(int(d) for d in t.shape), t.tensor_type.name, int(t.n_bytes)) for t in theirs.tensors
    ]
    assert ours.data_offset == theirs.data_offset
    for key in ("qwen35moe.block_count", "qwen35moe.expert_count", "general.architecture"):
        field = theirs.fields[key]
        value = field.contents()
        assert ours.metadata[key] == value


def test_quantized_types_and_file_type(tmp_path):
    spec = spec_from_config(tiny_config(moe=False, vision=False))
    types = {
        t.gguf_name: "Q8_0"
        for t in spec.inventory
        if t.gguf_shape
        and len(t.gguf_shape) == 2
        and t.gguf_shape[0] % 32 == 0
        and not t.gguf_name.startswith("blk.0.ssm_conv")
    }
    arch, meta, tensors = gguf_of(spec, types=types)
    meta["general.file_type"] = 7
    path = write_gguf(tmp_path / "q8.gguf", arch, meta, tensors, n_vocab_tokens=spec.text.vocab_size)
    loaded = qwenfit.load(path)
    assert loaded.checkpoint.quantization.config["file_type"] == "Q8_0"
    q = next(t for t in loaded.inventory if t.gguf_name == "blk.0.attn_qkv.weight")
    assert q.dtype == "Q8_0" and q.stored_bytes == q.n_params // 32 * 34
    assert loaded.checkpoint.tensor_bytes == sum(t.stored_bytes for t in loaded.inventory)


def test_gguf_without_mtp(tmp_path):
    spec = spec_from_config(tiny_config(moe=True, vision=False, mtp=0))
    loaded = qwenfit.load(_write(tmp_path, spec))
    assert loaded.mtp_layers == 0 and loaded.checkpoint.match.exact


def test_nextn_declared_but_mtp_tensors_missing(tmp_path):
    spec = spec_from_config(tiny_config(moe=True, vision=False))
    arch, meta, tensors = gguf_of(spec)
    tensors = {k: v for k, v in tensors.items() if not k.startswith("blk.4.")}
    path = write_gguf(tmp_path / "m.gguf", arch, meta, tensors, n_vocab_tokens=spec.text.vocab_size)
    loaded = qwenfit.load(path)
    assert loaded.mtp_layers == 0
    assert any("no mtp tensors" in n for n in loaded.checkpoint.match.notes)


def test_split_gguf(tmp_path):
    spec = spec_from_config(tiny_config(moe=True, vision=False))
    arch, meta, tensors = gguf_of(spec)
    names = list(tensors)
    half = len(names) // 2
    for i, part in enumerate((names[:half], names[half:])):
        m = dict(meta) if i == 0 else {}
        m.update({"split.no": i, "split.count": 2, "split.tensors.count": len(names)})
        write_gguf(
            tmp_path / f"m-{i + 1:05d}-of-00002.gguf",
            arch,
            m,
            {n: tensors[n] for n in part},
            n_vocab_tokens=spec.text.vocab_size if i == 0 else 0,
        )
    loaded = qwenfit.load(tmp_path / "m-00001-of-00002.gguf")
    assert loaded.checkpoint.match.exact and len(loaded.checkpoint.files) == 2
    (tmp_path / "m-00002-of-00002.gguf").unlink()
    with pytest.raises(SourceNotFoundError, match=r"split part m-00002-of-00002\.gguf is missing"):
        qwenfit.load(tmp_path / "m-00001-of-00002.gguf")


def test_mmproj_and_other_architectures(tmp_path):
    path = write_gguf(
        tmp_path / "mmproj-x.gguf",
        "clip",
        {"clip.projector_type": "qwen3vl_merger"},
        {"v.blk.0.attn_qkv.weight": ("F16", (32, 96))},
    )
    g = read_gguf(path)
    assert g.architecture == "clip" and g.tensors[0].nbytes == 32 * 96 * 2
    with pytest.raises(UnsupportedModelError, match="vision projector"):
        qwenfit.load(path)
    llama = write_gguf(tmp_path / "llama.gguf", "llama", {}, {"token_embd.weight": ("F16", (8, 4))})
    with pytest.raises(UnsupportedModelError, match=r"'llama': not a Qwen3\.5 model"):
        qwenfit.load(llama)


# ---- hostile files -------------------------------------------------------------------------------


def _raw(tmp_path, data: bytes):
    path = tmp_path / "x.gguf"
    path.write_bytes(data)
    return path


def _gstr(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


HEAD = b"GGUF" + struct.pack("<I", 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a GGUF file"),
        (b"GGML" + bytes(20), "not a GGUF file"),
        (b"GGUF" + struct.pack("<I", 1) + bytes(16), "GGUF version 1 is not supported"),
        (b"GGUF" + struct.pack(">I", 3) + bytes(16), "big-endian"),
        (HEAD + struct.pack("<QQ", 2**60, 0), "more than a"),
        (HEAD + struct.pack("<QQ", 0, 1) + struct.pack("<Q", 2**40), "more than any GGUF string needs"),
        (HEAD + struct.pack("<QQ", 0, 1) + _gstr(b"k") + struct.pack("<I", 99), "value type 99"),
        (HEAD + struct.pack("<QQ", 0, 1) + _gstr(b"k") + struct.pack("<IIQ", 9, 8, 2**50), "cannot fit"),
        (
            HEAD
            + struct.pack("<QQ", 0, 1)
            + _gstr(b"k")
            + struct.pack("<I", 8)
            + struct.pack("<Q", 50)
            + b"ab",
            "truncated or corrupt",
        ),
        (HEAD + struct.pack("<QQ", 0, 1) + _gstr(b"\xff\xfe") + struct.pack("<I", 4) + bytes(4), "not UTF-8"),
        (
            HEAD + struct.pack("<QQ", 0, 2) + (_gstr(b"k") + struct.pack("<II", 4, 1)) * 2,
            "duplicate metadata key",
        ),
        (HEAD + struct.pack("<QQ", 1, 0) + _gstr(b"t") + struct.pack("<I", 5) + bytes(60), "5 dimensions"),
        (
            HEAD + struct.pack("<QQ", 1, 0) + _gstr(b"t") + struct.pack("<IQIQ", 1, 4, 77, 0) + bytes(64),
            "unknown ggml type id 77",
        ),
        (
            HEAD + struct.pack("<QQ", 1, 0) + _gstr(b"t") + struct.pack("<IQIQ", 1, 4, 0, 16) + bytes(64),
            "not aligned",
        ),
        (
            HEAD + struct.pack("<QQ", 1, 0) + _gstr(b"t") + struct.pack("<IQIQ", 1, 1000, 0, 0) + bytes(24),
            "truncated file?",
        ),
        (
            HEAD + struct.pack("<QQ", 1, 0) + _gstr(b"t") + struct.pack("<IQIQ", 1, 100, 12, 0) + bytes(2000),
            "not a multiple of the Q4_K block size 256",
        ),
        (
            HEAD
            + struct.pack("<QQ", 2, 0)
            + (_gstr(b"t") + struct.pack("<IQIQ", 1, 4, 0, 0)) * 2
            + bytes(64),
            "duplicate tensor name",
        ),
        (
            HEAD
            + struct.pack("<QQ", 2, 0)
            + _gstr(b"a")
            + struct.pack("<IQIQ", 1, 16, 0, 0)
            + _gstr(b"b")
            + struct.pack("<IQIQ", 1, 4, 0, 32)
            + bytes(100),
            "overlap",
        ),
    ],
)
def test_broken_gguf(tmp_path, data, message):
    path = _raw(tmp_path, data)
    with pytest.raises(CheckpointError) as info:
        read_gguf(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_metadata_is_a_checkpoint_error(tmp_path):
    spec = spec_from_config(tiny_config(moe=True, vision=False))
    arch, meta, tensors = gguf_of(spec)
    del meta[f"{arch}.expert_count"]
    path = write_gguf(tmp_path / "m.gguf", arch, meta, tensors)
    with pytest.raises(CheckpointError, match=r"metadata qwen35moe\.expert_count is missing"):
        qwenfit.load(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=3000),
    flips=st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 255)), max_size=6),
)
def test_mutated_gguf_fails_cleanly(tmp_path_factory, cut, flips):
    base = tmp_path_factory.getbasetemp() / "gguf-seed.gguf"
    if not base.exists():
        spec = spec_from_config(tiny_config(moe=False, vision=False, mtp=0))
        arch, meta, tensors = gguf_of(spec)
        write_gguf(base, arch, meta, tensors, n_vocab_tokens=8)
    raw = bytearray(base.read_bytes())
    for pos, value in flips:
        if pos < len(raw):
            raw[pos] = value
    raw = raw[: max(0, len(raw) - cut)]
    path = base.with_name("gguf-mutant.gguf")
    path.write_bytes(bytes(raw))
    try:
        g = read_gguf(path)
    except QwenfitError as exc:
        assert str(path) in str(exc)
    else:
        assert g.data_offset + g.tensor_bytes <= g.file_size
