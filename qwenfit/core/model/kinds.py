"""The kinds a model is made of: layer types, families, expert layouts (what both the spec and the
inventory name; here so that neither imports the other for them)."""

from __future__ import annotations

from typing import Literal

__all__ = ["FULL_ATTENTION", "LAYER_TYPES", "LINEAR_ATTENTION", "ExpertLayout", "Family"]

LINEAR_ATTENTION = "linear_attention"  # Gated DeltaNet: fixed-size state, no KV cache
FULL_ATTENTION = "full_attention"  # gated softmax attention: KV cache grows with context
LAYER_TYPES = (LINEAR_ATTENTION, FULL_ATTENTION)

Family = Literal["qwen3_5", "qwen3_5_moe", "qwen3_next"]
ExpertLayout = Literal["fused", "per_expert"]
