"""vLLM's home: the engine (:mod:`.engine`), weights per rank (:mod:`.weights`) and the KV pool
(:mod:`.pool`)."""

from qwenfit.core.engines.vllm.engine import VLLM, Vllm, VllmOptions

__all__ = ["VLLM", "Vllm", "VllmOptions"]
