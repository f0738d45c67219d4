"""Full-size mmproj GGUF layouts without weights (helper of scripts/vision_memory_fixtures.py).

Not a script. Runs in the fixtures venv (/work/venvs/fixtures: torch, transformers), like
scripts/_gguf_sparse.py, which it uses read-only: the sparse checkpoint of a catalog model
(``write_sparse_checkpoint``: config.json, the tiny tokenizer, a model.safetensors whose data is a
sparse hole; the vision tower included) plus the ``preprocessor_config.json`` that ``--mmproj``
needs (_gguf_common.write_preprocessor_config), converted by llama.cpp's own convert_hf_to_gguf.py
``--mmproj --outtype bf16`` with the ``--header-only`` patch of _gguf_convert.py. The file is the
exact mmproj header (``clip.*`` KVs, ``v.*`` / ``mm.*`` tensor infos: patch embedding F32, norms and
biases F32, matrices BF16) followed by a sparse hole of the exact data size: clip.cpp loads it with
``no_alloc`` and plans memory exactly as for the real file.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Any

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _gguf_common as g  # noqa: E402
import _gguf_sparse as sp  # noqa: E402

MODELS_DIR = os.path.join(g.REPO_ROOT, "data", "models")


def load_catalog(name: str) -> dict[str, Any]:
    with open(os.path.join(MODELS_DIR, f"{name}.json")) as f:
        return json.load(f)


def vision_models() -> list[str]:
    """Catalog models with a vision tower (data/models/*.json with a vision_config)."""
    out = []
    for fn in sorted(os.listdir(MODELS_DIR)):
        if fn.endswith(".json") and load_catalog(fn[:-5]).get("vision_config"):
            out.append(fn[:-5])
    return out


def make_mmproj(name: str, work: str, reuse: bool) -> tuple[str, list[str]]:
    """Sparse full-size mmproj of catalog model ``name``; returns (path, converter command as recorded)."""
    raw = load_catalog(name)
    family = g.FAMILY[raw["model_type"]]
    out = os.path.join(work, f"mmproj-{name}.gguf")
    cmd = g.converter_command(f"<work>/ckpt/{name}", f"<work>/mmproj-{name}.gguf", g.PRE_TOKENIZER[family],
                              ["--mmproj"], True)  # fmt: skip
    if reuse and os.path.exists(out):
        return out, cmd
    ckpt = os.path.join(work, "ckpt", name)
    if os.path.exists(ckpt):
        shutil.rmtree(ckpt)
    sp.write_sparse_checkpoint(raw, ckpt, 0)
    g.write_preprocessor_config(ckpt)
    tmp = out + ".tmp"
    g.run_converter(ckpt, tmp, g.PRE_TOKENIZER[family], ["--mmproj"], header_only=True)
    os.replace(tmp, out)
    shutil.rmtree(ckpt)
    return out, cmd
