"""Full-size GGUF layouts without weights: sparse checkpoint -> llama.cpp's converter, header only.

Helper for scripts/llama_quantize_fixtures.py (fixtures venv; llama.cpp from build_llama_cpp.sh).

Instead of re-implementing the converter's naming, shape and dtype rules, the full-size GGUF
headers are written by llama.cpp's own ``convert_hf_to_gguf.py``:

1. ``checkpoint_tensors(config)``: the Hugging Face tensors of the model (name, shape, dtype) as
   transformers builds them on the meta device (classes and helpers of
   scripts/make_tiny_checkpoints.py: tied weights once, experts as fused 3-D
   ``mlp.experts.gate_up_proj`` / ``down_proj``, vision tower included) plus the ``mtp.*`` block
   that real checkpoints carry (one full-attention decoder layer of the model's own class under
   ``mtp.layers.0.``, ``mtp.fc`` [H, 2H] and three norms). Dtypes as in the real checkpoints: BF16,
   except ``linear_attn.A_log`` and ``linear_attn.norm.weight`` F32.
2. ``write_sparse_checkpoint()``: ``config.json`` (catalog config, ``_qwenfit`` key stripped), the
   tiny tokenizer of _gguf_common (the converter pads the token list to ``vocab_size``: 248320 /
   151936 entries) and a ``model.safetensors`` whose header lists those tensors and whose data
   section is a sparse hole of the exact size (``truncate``; no disk space used).
3. ``convert_header_only()``: the converter with ``--outtype bf16`` and _gguf_convert.py's
   ``--header-only`` patch: it names, reshapes (expert split/stack, conv1d squeeze, V-head
   reordering, qkvz regrouping for Qwen3-Next) and types every tensor lazily, writes the exact
   header (KVs + tensor infos), and extends the file to its full size without computing any data.

The same path applied to the committed tiny configs reproduces the converter's output on the real
tiny checkpoints (same header size, KVs and tensor infos): that is the check that the meta-device
tensor list is the real one (``compare_headers``).
"""

from __future__ import annotations

import json
import os
import struct
import sys
from typing import Any

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _gguf_common as g  # noqa: E402

F32_SUFFIXES = (".linear_attn.A_log", ".linear_attn.norm.weight")
_ST_DTYPE_SIZE = {"BF16": 2, "F32": 4}


def strip_config(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k != "_qwenfit"}


def mtp_layer_count(raw: dict[str, Any], default: int | None = None) -> int:
    """MTP layers stored in the checkpoint: mtp_num_hidden_layers, else the catalog's
    _qwenfit.checkpoint_mtp_layers (Qwen3-Next: config has no key, checkpoint has one layer)."""
    text = raw.get("text_config") or raw
    n = text.get("mtp_num_hidden_layers")
    if n is None:
        n = raw.get("_qwenfit", {}).get("checkpoint_mtp_layers", default)
    return int(n or 0)


def checkpoint_tensors(raw: dict[str, Any], n_mtp: int) -> list[tuple[str, list[int], str]]:
    """[(name, HF shape, safetensors dtype)] of the full checkpoint, sorted by name."""
    import make_tiny_checkpoints as mtc
    import torch

    cfg = strip_config(raw)
    config = mtc.config_from_dict(cfg)
    cls = mtc.model_class_for(cfg)
    with torch.device("meta"):
        model = cls(config)
    rows: dict[str, list[int]] = {n: list(p.shape) for n, p in model.named_parameters()}
    if n_mtp:
        tc = mtc.text_config_of(config)
        with torch.device("meta"):
            layer = mtc.build_mtp_layer(mtc.family_of(cfg["model_type"]), tc)
        H = tc.hidden_size
        for k in range(n_mtp):
            for n, p in layer.named_parameters():
                rows[f"mtp.layers.{k}.{n}"] = list(p.shape)
        rows["mtp.fc.weight"] = [H, 2 * H]
        for n in ("mtp.pre_fc_norm_embedding.weight", "mtp.pre_fc_norm_hidden.weight", "mtp.norm.weight"):
            rows[n] = [H]
    return [(n, s, "F32" if n.endswith(F32_SUFFIXES) else "BF16") for n, s in sorted(rows.items())]


def write_sparse_checkpoint(
    raw: dict[str, Any], out_dir: str, n_mtp: int, with_bos: bool | None = None
) -> dict[str, Any]:
    """config.json + tokenizer + sparse model.safetensors in out_dir. Returns a summary."""
    os.makedirs(out_dir, exist_ok=True)
    cfg = strip_config(raw)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    g.write_tokenizer(out_dir, with_bos=("bos_token_id" in cfg) if with_bos is None else with_bos)
    tensors = checkpoint_tensors(raw, n_mtp)
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    off = 0
    n_params = 0
    for name, shape, dt in tensors:
        numel = 1
        for d in shape:
            numel *= d
        nbytes = numel * _ST_DTYPE_SIZE[dt]
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + nbytes]}
        off += nbytes
        n_params += numel
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    path = os.path.join(out_dir, "model.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        f.truncate(8 + len(hb) + off)
    return {"tensors": len(tensors), "params": n_params, "bytes": off}


def convert_header_only(ckpt_dir: str, out_path: str, family: str, extra: list[str]) -> list[str]:
    return g.run_converter(ckpt_dir, out_path, g.PRE_TOKENIZER[family], extra, header_only=True)


def converter_extra(raw: dict[str, Any], n_mtp: int) -> list[str]:
    family = g.FAMILY[raw["model_type"]]
    if family != "qwen3_next" and not n_mtp:
        return ["--no-mtp"]
    return []


def compare_headers(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Differences between two read_gguf() summaries, ignoring tensor order and data offsets."""
    diffs = []
    for key in ("data_offset", "file_size", "n_kv", "n_tensors", "alignment"):
        if a[key] != b[key]:
            diffs.append(f"{key}: {a[key]} != {b[key]}")
    for k in sorted(set(a["kv"]) | set(b["kv"])):
        if a["kv"].get(k) != b["kv"].get(k):
            diffs.append(f"kv {k}: {a['kv'].get(k)!r} != {b['kv'].get(k)!r}")
    ta = {t[0]: t[1:4] for t in a["tensors"]}
    tb = {t[0]: t[1:4] for t in b["tensors"]}
    for n in sorted(set(ta) | set(tb)):
        if ta.get(n) != tb.get(n):
            diffs.append(f"tensor {n}: {ta.get(n)} != {tb.get(n)}")
    return diffs


def dtype_rule_violations(info: dict[str, Any]) -> list[str]:
    """The converter's --outtype bf16 rule (README-llama-cpp.md (d)): F32 for 1-D tensors,
    *_norm.weight, ffn_gate_inp(_shexp), ssm_conv1d and names not ending in .weight; BF16 else."""
    bad = []
    for name, typ, ne, _, _ in info["tensors"]:
        f32 = (
            len(ne) <= 1
            or name.endswith("_norm.weight")
            or ".ffn_gate_inp." in name
            or ".ffn_gate_inp_shexp." in name
            or ".ssm_conv1d." in name
            or not name.endswith(".weight")
        )
        want = "f32" if f32 else "bf16"
        if typ != want:
            bad.append(f"{name} {ne}: {typ}, rule says {want}")
    return bad
