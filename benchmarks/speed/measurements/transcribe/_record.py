"""One corpus record (``benchmarks/speed/measurements/README.md``: the fields and their order), for the
transcription scripts in this folder. Imported as ``_record`` (a script's own folder is on ``sys.path``)."""

from __future__ import annotations

from typing import Any

# every record's fields, in the order the YAML files list them (``date``, when a record has one, is
# inserted after the field a script names)
FIELDS = (
    "id", "model", "model_family", "calibration_only", "quant_as_published", "quant", "engine",
    "engine_version", "backend", "hardware", "hardware_id", "n_gpus", "tp", "interconnect", "host_ram",
    "offload", "kv_cache", "flash_attn", "ubatch", "threads", "depth_tokens", "decode_tokens", "batch",
    "mtp", "decode_tokens_per_s", "decode_total_tokens_per_s", "prefill_tokens_per_s", "prefill_tokens",
    "url", "quote", "notes",
)  # fmt: skip
# what a field is when a record does not say otherwise (one GPU, batch 1, nothing offloaded or stated)
DEFAULTS: dict[str, Any] = {
    "model_family": None, "calibration_only": False, "n_gpus": 1, "tp": 1, "interconnect": None,
    "host_ram": None, "offload": None, "kv_cache": None, "flash_attn": None, "ubatch": None, "threads": None,
    "batch": 1, "decode_total_tokens_per_s": None, "prefill_tokens_per_s": None, "prefill_tokens": None,
}  # fmt: skip


def record(*, date_after: str = "threads", **fields: Any) -> dict[str, Any]:
    """``fields`` over :data:`DEFAULTS`, in :data:`FIELDS` order (``date`` after ``date_after``); every
    other field must be given, and no unknown one."""
    r = {**DEFAULTS, **fields}
    order = list(FIELDS)
    if "date" in r:
        order.insert(order.index(date_after) + 1, "date")
    assert set(r) == set(order), set(r) ^ set(order)
    return {k: r[k] for k in order}
