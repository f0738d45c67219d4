"""Measure what transformers really allocates for Qwen3.5 caches (run in the helper venv with torch).

For each tiny checkpoint of ``tests/fixtures/tiny`` (real configs written by transformers'
``save_pretrained``; see ``make_tiny_checkpoints.py``) it loads the model the way a user does
(``AutoModelForCausalLM.from_pretrained(dir)``: text-only ``Qwen3_5ForCausalLM`` /
``Qwen3_5MoeForCausalLM``, default dtype = the config's bfloat16), runs a real forward pass with
``use_cache=True`` for several (batch, prompt length) pairs and one ``generate()``, and walks the
returned cache object: every tensor held by every cache layer, its shape, dtype and bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VARIANTS = ["dense-untied-text", "dense-vision-mtp", "moe-vision-mtp", "moe-sharded"]
PAIRS = [(1, 1), (1, 37), (2, 37), (3, 100), (2, 257)]  # (batch, prompt tokens)
GENERATE = (2, 37, 5)  # batch, prompt tokens, new tokens


def _tensors(obj: Any) -> dict[str, Any]:
    """name -> tensor for the tensors an object holds directly or in dict/list attributes."""
    import torch

    out: dict[str, Any] = {}
    for name, value in vars(obj).items():
        if isinstance(value, torch.Tensor):
            out[name] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, torch.Tensor):
                    out[f"{name}[{k}]"] = v
        elif isinstance(value, (list, tuple)):
            for k, v in enumerate(value):
                if isinstance(v, torch.Tensor):
                    out[f"{name}[{k}]"] = v
    return out


def walk_cache(cache: Any) -> dict[str, Any]:
    layers = []
    totals = {"kv_bytes": 0, "conv_bytes": 0, "recurrent_bytes": 0, "other_bytes": 0}
    for i, layer in enumerate(cache.layers):
        tensors = {}
        for name, t in _tensors(layer).items():
            nbytes = t.numel() * t.element_size()
            tensors[name] = {
                "shape": list(t.shape),
                "dtype": str(t.dtype).removeprefix("torch."),
                "bytes": nbytes,
            }
            if name in ("keys", "values"):
                totals["kv_bytes"] += nbytes
            elif name.startswith("conv_states"):
                totals["conv_bytes"] += nbytes
            elif name.startswith("recurrent_states"):
                totals["recurrent_bytes"] += nbytes
            else:
                totals["other_bytes"] += nbytes
        layers.append({"layer": i, "class": type(layer).__name__, "tensors": tensors})
    return {"cache_class": type(cache).__name__, **totals, "layers": layers}


def measure(repo: Path) -> dict[str, Any]:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    out: dict[str, Any] = {
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "how": "AutoModelForCausalLM.from_pretrained(<tiny dir>) (dtype from config: bfloat16), "
        "model(input_ids, use_cache=True) on CPU; the cache object's tensors are walked layer by layer",
        "variants": {},
    }
    for name in VARIANTS:
        path = repo / "tests" / "fixtures" / "tiny" / name
        model = AutoModelForCausalLM.from_pretrained(path)
        model.eval()
        cfg = model.config
        seen: set[int] = set()
        param_bytes, dtypes = 0, set()
        for p in model.parameters():
            if p.data_ptr() in seen:
                continue
            seen.add(p.data_ptr())
            param_bytes += p.numel() * p.element_size()
            dtypes.add(str(p.dtype).removeprefix("torch."))
        buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())
        runs = []
        vocab = cfg.vocab_size
        for batch, length in PAIRS:
            ids = torch.randint(0, vocab, (batch, length))
            with torch.no_grad():
                res = model(input_ids=ids, use_cache=True)
            cache = getattr(res, "cache", None) or res.past_key_values
            runs.append(
                {
                    "batch": batch,
                    "tokens": length,
                    "logits_shape": list(res.logits.shape),
                    "logits_dtype": str(res.logits.dtype).removeprefix("torch."),
                    **walk_cache(cache),
                }
            )
        batch, length, new = GENERATE
        ids = torch.randint(0, vocab, (batch, length))
        with torch.no_grad():
            g = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new,
                min_new_tokens=new,
                do_sample=False,
                use_cache=True,
                return_dict_in_generate=True,
                eos_token_id=None,
                pad_token_id=0,
            )
        cache = getattr(g, "cache", None) or g.past_key_values
        gen = {
            "batch": batch,
            "prompt_tokens": length,
            "new_tokens": new,
            "sequence_length": int(g.sequences.shape[1]),
            **walk_cache(cache),
        }
        gen["kv_tokens"] = next(
            x["tensors"]["keys"]["shape"][2] for x in gen["layers"] if "keys" in x["tensors"]
        )
        out["variants"][name] = {
            "model_class": type(model).__name__,
            "layer_types": list(cfg.layer_types),
            "param_bytes": param_bytes,
            "param_dtypes": sorted(dtypes),
            "buffer_bytes": buffer_bytes,
            "forward": runs,
            "generate": gen,
        }
        del model
    return out


if __name__ == "__main__":  # pragma: no cover - manual run
    print(json.dumps(measure(Path(__file__).resolve().parent.parent), indent=1)[:2000])
