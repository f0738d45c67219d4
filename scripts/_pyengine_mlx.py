# ruff: noqa: E501  (a table of quoted source lines)
"""mlx-lm's cache allocation rules, transcribed from the pinned wheel with file:line citations.

MLX needs Apple silicon, so nothing here runs mlx-lm: each entry names the wheel file and line a
qwenfit constant or rule comes from, and ``transcribe`` checks that the line still holds the quoted
text in the downloaded wheel (``pip download --no-deps mlx-lm==PIN``, pure Python) before writing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

MLX_LM_PIN = "0.32.2"
DEFAULT_CACHE = Path(os.environ.get("QWENFIT_MLX_CACHE", Path.home() / ".cache" / "qwenfit" / "mlx"))

# (key, value qwenfit uses, file, line, text that line must contain, what it means)
RULES: list[tuple[str, Any, str, int, str, str]] = [
    ("make_cache", "ArraysCache(size=2) per linear layer, KVCache per full-attention layer",
     "mlx_lm/models/qwen3_5.py", 348, "return [ArraysCache(size=2) if l.is_linear else KVCache() for l in self.layers]",
     "no KV for Gated DeltaNet layers; qwen3_5_moe.Model subclasses qwen3_5.Model"),
    ("conv_state_shape", "(B, K-1, conv_dim)", "mlx_lm/models/qwen3_5.py", 154,
     "(B, self.conv_kernel_size - 1, self.conv_dim)", "conv window K-1 rows"),
    ("conv_state_dtype", "activation dtype (bfloat16 for Qwen3.5 checkpoints)", "mlx_lm/models/qwen3_5.py", 155,
     "dtype=inputs.dtype", "conv state in the activation dtype"),
    ("conv_state_kept", "K-1 rows", "mlx_lm/models/qwen3_5.py", 162, "n_keep = self.conv_kernel_size - 1",
     "the cache keeps the last K-1 inputs"),
    ("ssm_state", "(B, Hv, Dv, Dk) float32", "mlx_lm/models/gated_delta.py", 637,
     "state = mx.zeros((B, Hv, Dv, Dk), dtype=mx.float32)", "recurrent state starts float32"),
    ("ssm_state_kernel_dtype", "state dtype kept", "mlx_lm/models/gated_delta.py", 493,
     "output_dtypes=[input_type, state_type]", "the Metal kernel returns the state in its own dtype (float32)"),
    ("kv_step", 256, "mlx_lm/models/cache.py", 340, "step = 256", "KVCache.step"),
    ("kv_grow", "ceil(n/256)*256 more slots, model dtype", "mlx_lm/models/cache.py", 352,
     "n_steps = (self.step + keys.shape[2] - 1) // self.step", "growth in whole steps"),
    ("kv_dtype", "keys.dtype", "mlx_lm/models/cache.py", 355, "new_k = mx.zeros(k_shape, keys.dtype)",
     "KV in the activation dtype"),
    ("quantized_kv_step", 256, "mlx_lm/models/cache.py", 252, "step = 256", "QuantizedKVCache.step"),
    ("quantized_kv_packing", "uint32 words of 32/bits values", "mlx_lm/models/cache.py", 273,
     "mx.zeros((*shape, dim // el_per_int), dtype=mx.uint32)", "dim*bits/8 bytes per row"),
    ("quantized_kv_scales", "scale and bias per group in keys.dtype", "mlx_lm/models/cache.py", 274,
     "mx.zeros((*shape, dim // self.group_size), dtype=keys.dtype)", "2 x dim/group x 2 bytes per row"),
    ("kv_group_size", 64, "mlx_lm/generate.py", 325, "kv_group_size: int = 64", "--kv-group-size default"),
    ("quantized_kv_start", 5000, "mlx_lm/generate.py", 49, "DEFAULT_QUANTIZED_KV_START = 5000",
     "KV stays unquantized until the cache holds 5000 tokens"),
    ("quantize_when", "offset >= quantized_kv_start", "mlx_lm/generate.py", 309,
     'if hasattr(c, "to_quantized") and c.offset >= quantized_kv_start:', "checked after every model call"),
    ("prefill_step_size", 2048, "mlx_lm/generate.py", 323, "prefill_step_size: int = 2048",
     "generate_step prompt chunk"),
    ("prefill_chunk", "min(prefill_step_size, remaining - 1) tokens", "mlx_lm/generate.py", 439,
     "n_to_process = min(prefill_step_size, remaining)", "chunks of 2048 (multiples of the 256 KV step)"),
    ("prefill_eval_state_only", "only the cache state is evaluated during prefill", "mlx_lm/generate.py", 450,
     "mx.eval([c.state for c in prompt_cache])", "lazy graph: prefill-chunk logits are never computed"),
    ("logits_last", "logits of the last position only", "mlx_lm/generate.py", 414, "logits = logits[:, -1, :]",
     "sampling step"),
]  # fmt: skip


def ensure_source(pin: str = MLX_LM_PIN, cache: Path = DEFAULT_CACHE) -> Path:
    src = Path(cache) / f"src-{pin}"
    if (src / "mlx_lm" / "models" / "cache.py").exists():
        return src
    Path(cache).mkdir(parents=True, exist_ok=True)
    wheels = sorted(Path(cache).glob(f"mlx_lm-{pin}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", f"mlx-lm=={pin}", "-d", str(cache)],
                       check=True)  # fmt: skip
        wheels = sorted(Path(cache).glob(f"mlx_lm-{pin}-*.whl"))
    with zipfile.ZipFile(wheels[0]) as z:
        z.extractall(src)
    return src


def transcribe(src: Path) -> dict[str, Any]:
    rules = {}
    for key, value, path, line, text, meaning in RULES:
        actual = (src / path).read_text().splitlines()[line - 1]
        if text not in actual:
            raise SystemExit(f"{path}:{line} no longer reads {text!r}: {actual.strip()!r}")
        rules[key] = {"value": value, "source": f"{path}:{line}", "line": actual.strip(), "meaning": meaning}
    version = _metadata_version(src, "mlx_lm")
    return {
        "mlx_lm_version": version,
        "source": f"pip download --no-deps mlx-lm=={MLX_LM_PIN}",
        "rules": rules,
    }


def _metadata_version(src: Path, dist: str) -> str:
    text = next(src.glob(f"{dist}-*.dist-info/METADATA")).read_text()
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Version:"))
