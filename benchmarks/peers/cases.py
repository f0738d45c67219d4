"""The cases every peer tool and qwenfit are run on (shared by run_peers.py and benchmarks/accuracy)."""

from __future__ import annotations

# Catalog names (data/models/<name>.json); the llama.cpp reference (llama_reference.py) covers the same.
MODELS = ["Qwen3.5-9B", "Qwen3.5-27B", "Qwen3.5-35B-A3B", "Qwen3.5-122B-A10B", "Qwen3.5-397B-A17B"]
CONTEXTS = [32768, 131072, 262144]
QUANT = "Q4_K_M"  # a standard llama-quantize Q4_K_M text GGUF, no MTP tensors (the Hub's layout)
KV_TYPE = "f16"
SEQUENCES = 1

# Hardware scenarios for the fit verdicts (decimal GB, as the tools take them)
SCENARIOS = [
    # (id, model, vram_gb, ram_gb, max_context or None)
    ("35b-24g", "Qwen3.5-35B-A3B", 24, 64, None),
    ("35b-24g-262k", "Qwen3.5-35B-A3B", 24, 64, 262144),
    ("27b-24g-262k", "Qwen3.5-27B", 24, 64, 262144),
    ("122b-64g", "Qwen3.5-122B-A10B", 64, 128, None),
    ("122b-24g-128g", "Qwen3.5-122B-A10B", 24, 128, None),
]
