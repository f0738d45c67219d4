"""Builders of test inputs: hand-written safetensors files, checkpoint folders, tiny configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def safetensors_bytes(
    tensors: dict[str, tuple[str, tuple[int, ...]]], metadata: dict[str, str] | None = None
) -> bytes:
    """A valid safetensors file with zero-filled data, written by hand (format: 8-byte LE header
    length, JSON header, data). Used for loader tests where the content of the data is irrelevant."""
    import math
    import struct

    from qwenfit.core.formats.dtypes import safetensors_nbytes

    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = safetensors_nbytes(dtype, math.prod(shape))
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


def write_checkpoint(
    folder: Path,
    config: dict,
    tensors: dict[str, tuple[str, tuple[int, ...]]],
    shards: int = 1,
) -> Path:
    """config.json + model.safetensors (or N shards with an index) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    if shards == 1:
        (folder / "model.safetensors").write_bytes(safetensors_bytes(tensors))
        return folder
    names = list(tensors)
    weight_map = {}
    for i in range(shards):
        part = names[i::shards]
        shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        (folder / shard).write_bytes(safetensors_bytes({n: tensors[n] for n in part}))
        weight_map.update(dict.fromkeys(part, shard))
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    return folder


def tiny_config(moe: bool = True, vision: bool = True, mtp: int = 1) -> dict:
    """A small but complete Qwen3.5 config.json (dims are small; structure is the real one)."""
    text = {
        "model_type": "qwen3_5_moe_text" if moe else "qwen3_5_text",
        "hidden_size": 64,
        "num_hidden_layers": 4,
        "full_attention_interval": 2,
        "vocab_size": 320,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
        "linear_key_head_dim": 8,
        "linear_value_head_dim": 8,
        "linear_conv_kernel_dim": 4,
        "mtp_num_hidden_layers": mtp,
        "mamba_ssm_dtype": "float32",
    }
    if moe:
        text.update(
            num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16, shared_expert_intermediate_size=16
        )
    else:
        text["intermediate_size"] = 96
    config = {
        "model_type": "qwen3_5_moe" if moe else "qwen3_5",
        "text_config": text,
        "tie_word_embeddings": False,
    }
    if vision:
        config["vision_config"] = {
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": 4,
            "num_position_embeddings": 16,
        }
    return config


def write_gguf(
    path: Path,
    arch: str,
    metadata: dict[str, object],
    tensors: dict[str, tuple[str, tuple[int, ...]]],
    *,
    n_vocab_tokens: int = 0,
) -> Path:
    """A GGUF file written by gguf-py's GGUFWriter: real header, zero (sparse) tensor data.

    ``tensors`` maps names to (ggml type name, ggml shape ne0-first). Values in ``metadata`` are
    written with gguf-py's type inference (int -> UINT32 unless given as (value, GGUFValueType))."""
    import gguf
    import numpy as np

    from qwenfit.core.formats.dtypes import GGML_TYPES

    writer = gguf.GGUFWriter(str(path), arch)
    for key, value in metadata.items():
        if isinstance(value, tuple):
            writer.add_key_value(key, value[0], value[1])
        elif isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        elif isinstance(value, float):
            writer.add_float32(key, value)
        elif isinstance(value, str):
            writer.add_string(key, value)
        elif isinstance(value, list):
            writer.add_array(key, value)
    if n_vocab_tokens:
        writer.add_tokenizer_model("gpt2")
        writer.add_token_list([f"t{i}" for i in range(n_vocab_tokens)])
    total = 0
    for name, (type_name, shape) in tensors.items():
        gtype = GGML_TYPES[type_name]
        nbytes = gtype.n_bytes(shape)
        writer.add_tensor_info(
            name,
            list(reversed(shape)),
            np.dtype(np.float32),
            nbytes,
            raw_dtype=gguf.GGMLQuantizationType(gtype.id),
        )
        total += -(-nbytes // 32) * 32
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(-(-size // 32) * 32 + total)
    return path


def gguf_of(spec, *, types: dict[str, str] | None = None, fuse_gate_up: bool = False):  # type: ignore[no-untyped-def]
    """(metadata, tensors) of the GGUF llama.cpp's converter would write for a spec: its names,
    ggml shapes, and dtypes (F32 for 1-D, norms, ssm_conv1d and routers; BF16 otherwise)."""
    t = spec.text
    arch = {"qwen3_5": "qwen35", "qwen3_5_moe": "qwen35moe", "qwen3_next": "qwen3next"}[spec.family]
    meta: dict[str, object] = {
        f"{arch}.block_count": t.num_hidden_layers + spec.mtp_layers,
        f"{arch}.context_length": t.max_position_embeddings,
        f"{arch}.embedding_length": t.hidden_size,
        f"{arch}.attention.head_count": t.num_attention_heads,
        f"{arch}.attention.head_count_kv": t.num_key_value_heads,
        f"{arch}.attention.key_length": t.head_dim,
        f"{arch}.attention.value_length": t.head_dim,
        f"{arch}.attention.layer_norm_rms_epsilon": 1e-6,
        f"{arch}.rope.freq_base": 10_000_000.0,
        f"{arch}.rope.dimension_count": t.head_dim // 4,
        f"{arch}.ssm.conv_kernel": t.linear_conv_kernel_dim,
        f"{arch}.ssm.state_size": t.linear_key_head_dim,
        f"{arch}.ssm.group_count": t.linear_num_key_heads,
        f"{arch}.ssm.time_step_rank": t.linear_num_value_heads,
        f"{arch}.ssm.inner_size": t.linear_value_dim,
        f"{arch}.full_attention_interval": 4,
        f"{arch}.attention.recurrent_layers": [k == "linear_attention" for k in t.layer_types]
        + [False] * spec.mtp_layers,
        "general.file_type": 32,
    }
    if spec.mtp_layers:
        meta[f"{arch}.nextn_predict_layers"] = spec.mtp_layers
    if t.is_moe:
        meta.update(
            {
                f"{arch}.expert_count": t.num_experts,
                f"{arch}.expert_used_count": t.num_experts_per_tok,
                f"{arch}.expert_feed_forward_length": t.moe_intermediate_size,
                f"{arch}.expert_shared_feed_forward_length": t.shared_expert_intermediate_size,
            }
        )
    else:
        meta[f"{arch}.feed_forward_length"] = t.intermediate_size
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    for x in spec.inventory:
        if x.gguf_name is None:
            continue
        f32 = (
            len(x.gguf_shape) == 1
            or x.gguf_name.endswith("_norm.weight")
            or ".ffn_gate_inp" in x.gguf_name
            or ".ssm_conv1d" in x.gguf_name
            or not x.gguf_name.endswith(".weight")
        )
        dtype = (types or {}).get(x.gguf_name, "F32" if f32 else "BF16")
        name, shape = x.gguf_name, x.gguf_shape
        if fuse_gate_up and (".ffn_gate_exps." in name or ".ffn_up_exps." in name):
            fused = name.replace(".ffn_gate_exps.", ".ffn_gate_up_exps.").replace(
                ".ffn_up_exps.", ".ffn_gate_up_exps."
            )
            if fused in tensors:
                prev = tensors[fused][1]
                tensors[fused] = (dtype, (prev[0], prev[1] + shape[1], prev[2]))
            else:
                tensors[fused] = (dtype, shape)
            continue
        tensors[name] = (dtype, shape)
    return arch, meta, tensors


def engine_terms(engine: str, spec, weights, **settings):  # type: ignore[no-untyped-def]
    """An engine's terms for ``spec`` with ``weights``: ``settings`` are Deployment fields (context,
    sequences, kv_cache, gpu_memory_bytes, ...; ints or formula variables) and engine options."""
    import dataclasses

    from qwenfit.core.engines.base import Deployment, get

    eng = get(engine)
    fields = {f.name for f in dataclasses.fields(Deployment)}
    d = Deployment(**{k: v for k, v in settings.items() if k in fields})
    o = eng.Options(**{k: v for k, v in settings.items() if k not in fields})
    return eng.terms(spec, eng.inputs(spec, weights, d, o), d, o)


def ngl_records() -> list[dict[str, Any]]:
    """Records of plan mode's -ngl k shape: a model's numbers repeated, the placement's stepping."""
    tree = ["+", ["*", ["var", "ctx"], 12288], ["max", ["var", "seqs"], 1]]
    return [
        {
            "model": m,
            "placement": f"gpu1-ngl{k}",
            "terms": {
                "kv": ["*", tree, 86016 + size],
                "w": ["var", f"gpu1-ngl{k}|w:gpu"],
                "n": 2048 * (k // 2),
            },
            "command": ["-ngl", str(k), "--n-cpu-moe", 40 - k],
        }
        for m, size in (("0.8B", 0), ("9B", 4096))
        for k in range(1, 25)
    ] + [{"model": "odd", "terms": {"kv": 1}}]


def has_row_columns(v: Any) -> bool:
    if isinstance(v, dict):
        if isinstance(v.get("#"), list) and len(v["#"]) == 4:
            return True
        return any(has_row_columns(x) for x in v.values())
    return isinstance(v, list) and any(has_row_columns(x) for x in v)
