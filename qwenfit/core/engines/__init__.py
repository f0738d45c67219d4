"""The engines: one home per engine, one contract (:mod:`.base`), one registry.

- ``llama_cpp/``: llama.cpp (llama-server) and its front ends Ollama and LM Studio
- ``vllm/``: vLLM (weights per rank, KV pool)
- ``sglang.py``, ``mlx.py``, ``transformers.py``
- ``gdn_state.py``: the Gated DeltaNet state layout the Python engines share

``base.get("vllm")`` gives an engine; ``base.names()`` lists them (ARCHITECTURE.md: "add an engine").
"""
