"""Builders of test inputs: hand-written safetensors files, checkpoint folders, tiny configs."""

from __future__ import annotations

import json
from pathlib import Path


def safetensors_bytes(
    tensors: dict[str, tuple[str, tuple[int, ...]]], metadata: dict[str, str] | None = None
) -> bytes:
    """A valid safetensors file with zero-filled data, written by hand (format: 8-byte LE header
    length, JSON header, data). Used for loader tests where the content of the data is irrelevant."""
    import math
    import struct

    from qwenfit.core.dtypes import safetensors_nbytes

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

