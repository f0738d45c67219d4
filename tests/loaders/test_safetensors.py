"""Local safetensors checkpoints: single, sharded, folders, layouts, quantized, and hostile files."""

from __future__ import annotations

import json
import struct

import pytest
from builders import safetensors_bytes, tiny_config, write_checkpoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qwenfit
from qwenfit.errors import CheckpointError, QwenfitError, SourceNotFoundError
from qwenfit.loaders.config import spec_from_config
from qwenfit.loaders.safetensors import read_checkpoint, read_header


def stored_tensors(spec) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {s.name: (s.dtype, s.shape) for s in spec.inventory.hf_tensors()}


@pytest.mark.parametrize("shards", [1, 3])
def test_round_trip_exact(tmp_path, shards):
    config = tiny_config()
    spec = spec_from_config(config)
    folder = write_checkpoint(tmp_path / "m", config, stored_tensors(spec), shards=shards)
    loaded = qwenfit.load(folder)
    ck = loaded.checkpoint
    assert ck is not None and ck.match.exact and ck.match.notes == ()
    assert loaded.params == spec.params
    assert ck.tensor_bytes == spec.inventory.stored_bytes
    assert ck.file_bytes == sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    assert len(ck.files) == shards
    assert sum(ck.match.bytes_by_tensor.values()) == ck.tensor_bytes
    # every way of naming the checkpoint gives the same spec
    entry = "model.safetensors" if shards == 1 else "model.safetensors.index.json"
    assert qwenfit.load(folder / entry) == loaded
    assert qwenfit.load(str(folder / entry)).checkpoint.tensor_bytes == ck.tensor_bytes


def test_text_only_export_drops_vision_and_says_so(tmp_path):
    config = tiny_config()
    spec = spec_from_config(config)
    tensors = {k: v for k, v in stored_tensors(spec).items() if not k.startswith("model.visual.")}
    loaded = qwenfit.load(write_checkpoint(tmp_path / "m", config, tensors))
    assert loaded.vision is None
    assert loaded.params.total == spec.params.total - spec.params.vision
    assert any("no vision tensors" in n for n in loaded.checkpoint.match.notes)
    assert all(m.startswith("model.visual.") for m in loaded.checkpoint.match.missing)


def test_export_without_mtp(tmp_path):
    config = tiny_config()
    spec = spec_from_config(config)
    tensors = {k: v for k, v in stored_tensors(spec).items() if not k.startswith("mtp.")}
    loaded = qwenfit.load(write_checkpoint(tmp_path / "m", config, tensors))
    assert loaded.mtp_layers == 0 and loaded.params.mtp == 0
    assert any("no mtp tensors" in n for n in loaded.checkpoint.match.notes)


def test_flat_text_only_names(tmp_path):
    config = dict(tiny_config(vision=False)["text_config"], tie_word_embeddings=False)
    spec = spec_from_config(config)
    assert spec.text_prefix == "model."
    tensors = stored_tensors(spec)
    assert "model.embed_tokens.weight" in tensors
    loaded = qwenfit.load(write_checkpoint(tmp_path / "m", config, tensors))
    assert loaded.checkpoint.match.exact


def test_multimodal_config_with_flat_text_names(tmp_path):
    # a text-only export that kept the multimodal config.json
    config = tiny_config(vision=True)
    flat = spec_from_config(dict(config["text_config"], tie_word_embeddings=False))
    loaded = qwenfit.load(write_checkpoint(tmp_path / "m", config, stored_tensors(flat)))
    assert loaded.text_prefix == "model." and loaded.vision is None
    assert not [m for m in loaded.checkpoint.match.missing if not m.startswith("model.visual.")]


@pytest.mark.parametrize(
    ("main", "mtp"), [("per_expert", "per_expert"), ("fused", "fused"), ("fused", "per_expert")]
)
def test_expert_layouts_are_detected(tmp_path, main, mtp):
    from qwenfit.core.model.inventory import build_inventory

    config = tiny_config()
    spec = spec_from_config(config)
    inv = build_inventory(spec, main, mtp)
    tensors = {s.name: (s.dtype, s.shape) for s in inv.hf_tensors()}
    loaded = qwenfit.load(write_checkpoint(tmp_path / "m", config, tensors))
    assert (loaded.expert_layout, loaded.mtp_expert_layout) == (main, mtp)
    assert loaded.checkpoint.match.exact
    assert loaded.params == spec.params


def test_fp16_checkpoint_dtypes_flow_into_the_inventory(tmp_path):
    config = tiny_config(moe=False, vision=False)
    spec = spec_from_config(config)
    tensors = {k: ("F16" if d == "BF16" else d, s) for k, (d, s) in stored_tensors(spec).items()}
    loaded = qwenfit.load(write_checkpoint(tmp_path / "m", config, tensors))
    assert {t.dtype for t in loaded.inventory} == {"F16", "F32"}


def test_fp8_block_checkpoint(tmp_path):
    """Qwen's FP8 layout: F8_E4M3 linears with F32 128x128-block weight_scale_inv; some modules BF16."""
    config = tiny_config(moe=False, vision=False)
    config["quantization_config"] = {
        "quant_method": "fp8",
        "weight_block_size": [128, 128],
        "activation_scheme": "dynamic",
        "modules_to_not_convert": ["lm_head"],
    }
    spec = spec_from_config(config)
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    n_scales = 0
    for name, (dtype, shape) in stored_tensors(spec).items():
        quantize = (
            name.endswith(("proj.weight", "in_proj_qkv.weight", "in_proj_z.weight")) and len(shape) == 2
        )
        tensors[name] = ("F8_E4M3", shape) if quantize else (dtype, shape)
        if quantize:
            tensors[name.replace(".weight", ".weight_scale_inv")] = (
                "F32",
                (-(-shape[0] // 128), -(-shape[1] // 128)),
            )
            n_scales += 1
    loaded = qwenfit.load(write_checkpoint(tmp_path / "m", config, tensors))
    match = loaded.checkpoint.match
    assert loaded.checkpoint.quantization.method == "fp8"
    assert match.exact and len(match.quant_tensors) == n_scales
    assert loaded.params == spec.params  # scales are not parameters
    assert sum(match.bytes_by_tensor.values()) == loaded.checkpoint.tensor_bytes
    assert "quantized checkpoint (fp8)" in match.notes[0]
    q = next(t for t in loaded.inventory if t.name.endswith("layers.0.mlp.gate_proj.weight"))
    assert q.dtype == "F8_E4M3"


def test_awq_packed_checkpoint(tmp_path):
    """AWQ int4: qweight I32 [in, out/8], qzeros I32 [in/g, out/8], scales F16 [in/g, out]."""
    config = tiny_config(moe=False, vision=False, mtp=0)
    config["quantization_config"] = {"quant_method": "awq", "bits": 4, "group_size": 32}
    spec = spec_from_config(config)
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, (dtype, shape) in stored_tensors(spec).items():
        if name.endswith("mlp.down_proj.weight"):
            out, inp = shape
            base = name[: -len(".weight")]
            tensors[base + ".qweight"] = ("I32", (inp, out // 8))
            tensors[base + ".qzeros"] = ("I32", (inp // 32, out // 8))
            tensors[base + ".scales"] = ("F16", (inp // 32, out))
        else:
            tensors[name] = (dtype, shape)
    loaded = qwenfit.load(write_checkpoint(tmp_path / "m", config, tensors))
    match = loaded.checkpoint.match
    assert not match.extra and not match.shape_mismatches
    # the packed weights stand in for .weight: reported as quantization tensors, not missing params
    assert {m.rsplit(".", 2)[-2] for m in match.missing} == {"down_proj"}
    assert sum(match.bytes_by_tensor.values()) == loaded.checkpoint.tensor_bytes


def test_unknown_extra_tensors_are_reported(tmp_path):
    config = tiny_config(moe=False, vision=False)
    tensors = stored_tensors(spec_from_config(config))
    tensors["model.language_model.layers.0.weird.weight"] = ("BF16", (3,))
    loaded = qwenfit.load(write_checkpoint(tmp_path / "m", config, tensors))
    assert [e.name for e in loaded.checkpoint.match.extra] == ["model.language_model.layers.0.weird.weight"]
    assert not loaded.checkpoint.match.exact


def test_shape_mismatch_is_reported(tmp_path):
    config = tiny_config(moe=False, vision=False)
    tensors = stored_tensors(spec_from_config(config))
    tensors["model.language_model.embed_tokens.weight"] = ("BF16", (321, 64))
    match = qwenfit.load(write_checkpoint(tmp_path / "m", config, tensors)).checkpoint.match
    assert match.shape_mismatches == (("model.language_model.embed_tokens.weight", (320, 64), (321, 64)),)


# ---- hostile files -------------------------------------------------------------------------------


def _file(tmp_path, raw: bytes):
    path = tmp_path / "model.safetensors"
    path.write_bytes(raw)
    return path


def _header_file(tmp_path, header: dict, data: int = 0) -> object:
    raw = json.dumps(header).encode()
    return _file(tmp_path, struct.pack("<Q", len(raw)) + raw + bytes(data))


GOOD = {"a": ("BF16", (2, 3)), "b": ("F32", (4,))}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: b"", "too short"),
        (lambda: b"\x01\x02", "too short"),
        (lambda: struct.pack("<Q", 10**9), "above the 100,000,000-byte limit"),
        (lambda: struct.pack("<Q", 500) + b"{}", "only 2 bytes after the length"),
        (lambda: safetensors_bytes(GOOD)[:-3], "file truncated?"),
        (lambda: safetensors_bytes(GOOD) + b"xx", "data section is 30 bytes but the tensors end at byte 28"),
        (lambda: struct.pack("<Q", 4) + b"{{{{", "not valid JSON"),
        (lambda: struct.pack("<Q", 2) + b"[]", "must be a JSON object"),
        (lambda: struct.pack("<Q", 3) + b'"\xff"', "not UTF-8"),
    ],
)
def test_broken_files(tmp_path, make, message):
    path = _file(tmp_path, make())
    with pytest.raises(CheckpointError) as info:
        read_header(path)
    assert str(path) in str(info.value) and message in str(info.value)


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        ({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}}, 2, "unknown dtype 'Q4'"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, 4, "needs 8"),
        ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, 4, "non-negative integers"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, 4, "0 <= begin <= end"),
        (
            {
                "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]},
            },
            6,
            "overlaps the previous tensor",
        ),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, 8, "leaves a gap at byte 0"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, 2, "file truncated?"),
        ({"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, 2, "do not fill whole bytes"),
        ({"a": {"dtype": "F32", "shape": [1]}}, 4, "data_offsets must be"),
        ({"a": [1, 2]}, 0, "entry must be an object"),
        ({"__metadata__": {"k": 1}}, 0, "__metadata__ must map strings to strings"),
    ],
)
def test_invalid_headers(tmp_path, header, data, message):
    path = _header_file(tmp_path, header, data)
    with pytest.raises(CheckpointError, match=None) as info:
        read_header(path)
    assert message in str(info.value)


def test_huge_declared_header_is_rejected_without_reading_it(tmp_path):
    # an 8 GiB sparse file declaring a 4 GiB header: above the cap, so it must not be read
    path = tmp_path / "model.safetensors"
    with path.open("wb") as f:
        f.write(struct.pack("<Q", 2**32))
        f.truncate(2**33)
    with pytest.raises(CheckpointError, match="above the 100,000,000-byte limit"):
        read_header(path)
    # under a raised cap it would be read: prove the cap is what stopped it, with a small file
    small = _file(tmp_path, safetensors_bytes(GOOD))
    with pytest.raises(CheckpointError, match="limit"):
        read_header(small, max_header_bytes=16)


def test_non_utf8_tensor_name(tmp_path):
    good = safetensors_bytes({"ab": ("F32", (1,))})
    bad = good.replace(b'"ab"', b'"a\xff"')
    path = _file(tmp_path, bad)
    with pytest.raises(CheckpointError, match="not UTF-8"):
        read_header(path)


def test_index_problems(tmp_path):
    config = tiny_config(moe=False, vision=False)
    folder = write_checkpoint(tmp_path / "m", config, stored_tensors(spec_from_config(config)), shards=2)
    index = folder / "model.safetensors.index.json"
    doc = json.loads(index.read_text())
    name = next(iter(doc["weight_map"]))
    doc["weight_map"][name] = (
        "model-00002-of-00002.safetensors"
        if doc["weight_map"][name].startswith("model-00001")
        else "model-00001-of-00002.safetensors"
    )
    index.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="but the index says"):
        qwenfit.load(folder)
    doc["weight_map"][name] = "../../etc/passwd"
    index.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="not a shard file name"):
        qwenfit.load(folder)
    doc["weight_map"][name] = "missing.safetensors"
    index.write_text(json.dumps(doc))
    with pytest.raises(SourceNotFoundError, match=r"missing\.safetensors is listed in the index"):
        qwenfit.load(folder)
    index.write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid JSON index"):
        qwenfit.load(folder)


def test_safetensors_without_config(tmp_path):
    path = _file(tmp_path, safetensors_bytes(GOOD))
    with pytest.raises(SourceNotFoundError, match=r"no config\.json beside it"):
        qwenfit.load(path)


def test_progress_callback(tmp_path):
    config = tiny_config(moe=False, vision=False)
    folder = write_checkpoint(tmp_path / "m", config, stored_tensors(spec_from_config(config)), shards=3)
    seen: list[tuple[int, int, str]] = []
    read_checkpoint(folder, progress=lambda done, total, name: seen.append((done, total, name)))
    assert [(d, t) for d, t, _ in seen] == [(1, 3), (2, 3), (3, 3)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=400),
    flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
    length=st.one_of(st.none(), st.integers(0, 2**64 - 1)),
)
def test_mutated_files_fail_cleanly(tmp_path, cut, flips, length):
    raw = bytearray(safetensors_bytes(GOOD, {"format": "pt"}))
    for pos, value in flips:
        if pos < len(raw):
            raw[pos] = value
    if length is not None:
        raw[:8] = struct.pack("<Q", length)
    raw = raw[: len(raw) - cut] if cut < len(raw) else raw[:cut]
    path = _file(tmp_path, bytes(raw))
    try:
        header = read_header(path)
    except QwenfitError as exc:
        assert str(path) in str(exc)
    else:
        assert sum(t.nbytes for t in header.tensors) == header.data_bytes
