"""What one decoded token reads: the weight bytes each tensor streams per token.

Every non-expert text tensor is read once per token (attention/GDN projections, norms, router,
shared expert, ``lm_head``); routed experts at ``num_experts_per_tok / num_experts`` of their bytes
(the expected bytes one token touches: at batch 1 every layer reads exactly k of E experts); the
token embedding one row only (``get_rows`` in llama.cpp, ``nn.Embedding`` in PyTorch/MLX gather the
token's row; the full matrix is read only when it doubles as the output layer); vision not at all;
the MTP block only when drafting. The speed model (:mod:`qwenfit.core.fit.speed`) and the engines'
``read_inputs`` use these sums.
"""

from __future__ import annotations

from collections.abc import Collection

from qwenfit.core.formats.weights import WeightEntry, WeightMap
from qwenfit.core.model.inventory import ROUTED_EXPERT_ROLES
from qwenfit.core.model.spec import ModelSpec

__all__ = ["decode_read_bytes", "tensor_read_bytes"]


def tensor_read_bytes(spec: ModelSpec, e: WeightEntry) -> int:
    """Bytes of one tensor a decoded token reads (routed experts: k/E of them, floor; the untied
    token embedding: one row)."""
    t = spec.text
    if e.role in ROUTED_EXPERT_ROLES:
        return e.bytes * t.num_experts_per_tok // t.num_experts if t.num_experts else e.bytes
    if e.role == "embed" and not t.tie_word_embeddings:
        return -(-e.bytes // t.vocab_size)  # one row: rows are quantized independently
    return e.bytes


def decode_read_bytes(
    spec: ModelSpec,
    weights: WeightMap,
    *,
    cpu_tensors: Collection[str] = (),
    mtp: bool = False,
) -> dict[str, int]:
    """Weight bytes one decoded token reads, per device: ``{"gpu": ..., "cpu": ...}``.

    A tensor is on ``"cpu"`` when its name (qwenfit or GGUF name) is in ``cpu_tensors``. Routed
    experts count ``num_experts_per_tok / num_experts`` of their bytes (floor), the token embedding
    one row unless it is tied to the output layer, vision nothing, MTP only with ``mtp`` (see the
    module docstring). Exact for the tensors; the routed share is an expectation.
    """
    t = spec.text
    cpu = frozenset(cpu_tensors)
    out = {"gpu": 0, "cpu": 0}
    head_bytes = {"gpu": 0, "cpu": 0}
    for e in weights.tensors:
        if e.component == "vision" or (e.component == "mtp" and not mtp):
            continue
        dev = "cpu" if e.name in cpu or (e.gguf_name is not None and e.gguf_name in cpu) else "gpu"
        n = tensor_read_bytes(spec, e)
        if e.component == "text" and (e.role == "lm_head" or (e.role == "embed" and t.tie_word_embeddings)):
            head_bytes[dev] += e.bytes
        out[dev] += n
    if mtp and spec.mtp_layers:
        for dev, n in head_bytes.items():  # the draft step projects through the shared output head
            out[dev] += n
    return out
