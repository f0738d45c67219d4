"""Scoring qwenfit against the llama.cpp field logs: each record's settings -> ``qwenfit.estimate``,
each term per device -> the buffer the log printed.

What is compared (a row per record, term and device):

- ``kv_cache``, ``recurrent_state``, ``output_buffer``: the ``KV`` / ``RS`` / ``output`` buffer lines
  (the main context plus an MTP draft context, as qwenfit's terms include both); with ``--fit``'s dry
  run (0.00 MiB buffers) the ``size = ...`` line.
- ``compute_buffer``: ``sched_reserve: <dev> compute buffer size`` per GPU and on the host
  (``CUDA_Host`` / ``Vulkan_Host`` / ``ROCm_Host`` / Metal's ``CPU``).
- ``weights``: the ``model buffer`` lines, only for files qwenfit reproduces (stock llama-quantize
  types; unsloth's UD-* mixes are skipped).

A record is reproduced with the settings its command states and its log prints (context cells, slots,
batch sizes, KV types, flash attention, layers offloaded, the llama.cpp build). Where a record cannot be
reproduced the row says why instead of a number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import qwenfit
from benchmarks.field.logs import MIB_RESOLUTION, ContextLog, LlamaLog, parse_llama_log, records
from qwenfit.core.engines.llama_cpp.memory import llama_kv_bytes_per_cell
from qwenfit.core.engines.llama_cpp.terms import DRAFT_COMPUTE
from qwenfit.core.engines.llama_cpp.versions import OUTPUT_LIMIT_BUILD
from qwenfit.loaders.config import config_from_spec

MTP_DRAFT_NODES = 200  # fewer graph nodes than this: the MTP draft context's one-layer graph
STOCK = re.compile(r"^(Q[2-8]_[0-9K_]*[SML]?|Q8_0|Q4_0|Q4_1|Q5_0|Q5_1|IQ[1-4]_[A-Z]+|BF16|F16|F32)$")
HOST = ("CPU_Mapped", "CPU", "CUDA_Host", "Vulkan_Host", "ROCm_Host", "Metal_Host")
ENGINES = {"llama-server": "llama.cpp", "llama-cli": "llama.cpp", "ollama": "ollama"}


@dataclass(frozen=True)
class Row:
    record: str
    backend: str
    term: str
    device: str  # the log's buffer name (CUDA0, Vulkan_Host, ...)
    logged: int | None
    predicted: int | None
    exact: bool  # qwenfit labels the term exact
    skip: str = ""  # why this row has no comparison

    @property
    def error(self) -> float | None:
        if self.skip or self.logged is None or self.predicted is None or self.logged == 0:
            return None
        return (self.predicted - self.logged) / self.logged

    @property
    def within_print(self) -> bool:
        """Equal up to the log's rounding (two decimals of MiB)."""
        return (
            self.logged is not None
            and self.predicted is not None
            and abs(self.predicted - self.logged) <= MIB_RESOLUTION
        )


def _gpu_names(log: LlamaLog) -> list[str]:
    """The GPU buffer names the log uses, in device order (CUDA2, CUDA3 when the model sits there)."""
    names: set[str] = set()
    for group in [log.model, *(c.kv for c in log.contexts), *(c.compute for c in log.contexts)]:
        names.update(n for n in group if (n not in HOST and not n.endswith("_Mapped")) or n.startswith("MTL"))
    names = {n.removesuffix("_Mapped") for n in names if n not in HOST}
    return sorted(names, key=lambda n: (re.sub(r"[0-9]+$", "", n), int(re.sub(r"^\D+", "", n) or 0)))


def _offloaded(text: str) -> tuple[int, int] | None:
    m = re.search(r"offloaded (\d+)/(\d+) layers to GPU", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def catalog_model(rec: dict[str, Any]) -> str:
    """The record's catalog model; with several candidates, one when they share every shape."""
    model = rec["model"]
    if model.get("catalog") and model["catalog"] != "unknown":
        return str(model["catalog"])
    candidates = model.get("catalog_candidates") or []
    shapes = {json.dumps(config_from_spec(qwenfit.load(c))["text_config"], sort_keys=True)
              for c in candidates}  # fmt: skip
    if candidates and len(shapes) == 1:
        return str(candidates[0])
    raise ValueError("model not identified")


def estimate_kwargs(rec: dict[str, Any], log: LlamaLog) -> dict[str, Any]:
    """``qwenfit.estimate`` arguments that reproduce the record (raises ValueError when it cannot)."""
    build = str(rec.get("build") or "")
    if re.match(r"^b[0-9]{1,3}-", build):
        raise ValueError(f"build {build!r} is a fork (its MTP context is not llama.cpp's)")
    if "--spec-draft-backend-sampling" in str(rec.get("command")):
        raise ValueError(
            "Ollama runs its bundled llama-server (llama.cpp's graph, build not printed); "
            "--spec-draft-backend-sampling attaches samplers to the MTP draft context "
            "(common/speculative.cpp), whose graph ops qwenfit does not model (without them the draft's "
            "compute buffer is 38.75 MiB under the log on CUDA0 and on the host)"
        )
    s = rec["settings"]
    main = log.contexts[0] if log.contexts else ContextLog()
    n_ctx = main.params.get("n_ctx") or s.get("n_ctx")
    n_seq = main.params.get("n_seq_max") or s.get("n_parallel") or 1
    if not n_ctx:
        raise ValueError("context not known")
    kt, vt = s.get("type_k") or "f16", s.get("type_v") or "f16"
    if kt != vt:
        raise ValueError(f"K and V cache types differ ({kt}/{vt})")
    fa = main.params.get("flash_attn", s.get("flash_attn"))
    other = s.get("other") or []
    kv_unified = "kv_unified    = true" in rec["log"] or any("kv_unified = true" in o for o in other)
    gpus = _gpu_names(log)
    kw: dict[str, Any] = dict(
        context=n_ctx // n_seq,
        sequences=n_seq,
        engine=ENGINES[rec["engine"]],
        kv_cache=kt,
        backend=rec["backend"],
        n_gpus=max(len(gpus), 1),
        vram_gb=1000,  # scoring compares the terms, not the fit
        ram_gb=1000,
        ubatch=main.params.get("n_ubatch") or s.get("n_ubatch") or 512,
        batch=main.params.get("n_batch") or s.get("n_batch") or 2048,
        flash_attention=str(fa).lower() not in ("off", "disabled", "false", "0"),
        kv_unified=kv_unified,
        mtp=bool(s.get("speculative")) and "mtp" in str(s.get("speculative")),
        vision=False,
    )
    off = _offloaded(rec["log"])
    if off is not None and off[0] < off[1]:
        kw["n_gpu_layers"] = off[0]
    if s.get("n_cpu_moe"):
        kw["n_cpu_moe"] = int(s["n_cpu_moe"])
    build = _build(rec.get("build")) or era_build(rec["log"])
    if build is not None:
        kw["engine_version"] = f"b{build}"
    if rec["engine"] == "llama-cli" and (build is None or build < OUTPUT_LIMIT_BUILD):
        kw["server"] = False  # llama-cli of these builds is a library context (whole-batch logits)
    if rec["model"].get("mtp_layer") is True:
        kw["mtp_layer"] = True
    if kw["mtp"]:
        stated = str(s.get("speculative")) + " " + str(rec.get("command"))
        m = re.search(r"--spec-draft-n-max\s+(\d+)", stated)
        if m:
            kw["draft_tokens"] = int(m.group(1))
    return kw


# The newest build seen printing each log format: llama.cpp moved --fit from libllama
# (``llama_params_fit_impl``, builds 8193-8863 in the corpus) to libcommon (``common_params_fit_impl``,
# b8999 on). A record without a build number is scored as the newest build of its format.
LAST_LLAMA_FIT_BUILD = 8863


def era_build(text: str) -> int | None:
    """The build a log without a build number is scored as, from its line formats (None: unknown)."""
    if "llama_params_fit_impl:" in text:
        return LAST_LLAMA_FIT_BUILD
    return None


def _build(build: Any) -> int | None:
    m = re.match(r"^[bB]?(\d{3,6})\b", str(build or ""))
    return int(m.group(1)) if m else None


def _sum_ctx(log: LlamaLog, what: str, contexts: list[ContextLog]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in contexts:
        group: dict[str, int] = getattr(c, what)
        size = c.kv_size if what == "kv" else c.rs_size if what == "rs" else None
        if group and all(v == 0 for v in group.values()) and size is not None:  # --fit dry run
            group = {next(iter(group)): size}
        for k, v in group.items():
            out[k] = out.get(k, 0) + v
    return out


def score_record(rec: dict[str, Any]) -> Iterator[Row]:
    log = parse_llama_log(rec["log"])
    rid, backend = rec["id"], rec["backend"]
    try:
        kw = estimate_kwargs(rec, log)
        est = qwenfit.estimate(catalog_model(rec), _quant(rec), **kw)
    except (ValueError, LookupError) as exc:
        yield Row(rid, backend, "all", "", None, None, False, skip=f"not reproduced: {exc}")
        return
    except Exception as exc:  # a qwenfit bug: reported, never hidden
        why = f"qwenfit error {type(exc).__name__}: {exc}"
        yield Row(rid, backend, "all", "", None, None, False, skip=why)
        return
    gpus = _gpu_names(log)
    qdev = {g: ("gpu" if len(gpus) == 1 else f"gpu{i}") for i, g in enumerate(gpus)}
    contexts = [c for c in log.contexts if c.started]
    draft_model = "draft model" in str(rec["settings"].get("speculative"))
    if draft_model:  # a separate draft model's context is not modelled: the target's context only
        contexts = contexts[:1]
    # with MTP and one context in the log: the MTP draft's (a one-layer graph of tens of nodes) or the
    # target's; the compute terms of the other context are left out
    only_draft = (
        kw["mtp"] and len(contexts) == 1 and (contexts[0].graph_nodes or (1 << 30,))[0] < MTP_DRAFT_NODES
    )
    only_main = kw["mtp"] and len(contexts) == 1 and not only_draft
    by: dict[tuple[str, str], tuple[int, bool]] = {}
    for t in est.terms:
        dev = t.device
        if t.name == "compute_buffer" and ((only_main and t.detail == DRAFT_COMPUTE)
                                           or (only_draft and t.detail != DRAFT_COMPUTE)):  # fmt: skip
            continue
        old = by.get((t.name, dev), (0, True))
        by[(t.name, dev)] = (old[0] + t.bytes, old[1] and t.exact)
    if only_main:  # the log shows the target's context only: leave out the draft's
        spec = qwenfit.load(catalog_model(rec))
        cells = contexts[0].params.get("n_ctx") or kw["context"] * kw["sequences"]
        draft = cells * llama_kv_bytes_per_cell(spec, "f16", "f16", layers=spec.mtp_layers)
        dev = qdev.get(gpus[-1], "cpu") if gpus else "cpu"
        old = by[("kv_cache", dev)]
        by[("kv_cache", dev)] = (old[0] - draft, old[1])
    for term, what in (("kv_cache", "kv"), ("recurrent_state", "rs"), ("output_buffer", "output"),
                       ("compute_buffer", "compute")):  # fmt: skip
        logged = _sum_ctx(log, what, contexts)
        for buf, value in sorted(logged.items()):
            dev = "cpu" if buf in HOST else qdev.get(buf.removesuffix("_Mapped"))
            if dev is None:
                yield Row(rid, backend, term, buf, value, None, False, skip="device not mapped")
                continue
            predicted, exact = by.get((term, dev), (0, True))
            yield Row(rid, backend, term, buf, value, predicted, exact)
    if STOCK.match(str(rec["model"].get("quant"))) and log.model:
        for buf, value in sorted(log.model.items()):
            dev = "cpu" if buf in HOST else qdev.get(buf.removesuffix("_Mapped"))
            if dev is None or value == 0:
                continue
            predicted, exact = by.get(("weights", dev), (0, True))
            yield Row(rid, backend, "weights", buf, value, predicted, exact)


# unsloth's dynamic mixes, as the stock type nearest in size: only the weights differ (and are not scored)
UD = {"UD-Q4_K_XL": "Q4_K_M", "UD-Q5_K_XL": "Q5_K_M", "UD-Q6_K_XL": "Q6_K", "UD-Q8_K_XL": "Q8_0",
      "UD-IQ3_XXS": "IQ3_XXS", "UD-Q3_K_XL": "Q3_K_M", "UD-Q2_K_XL": "Q2_K"}  # fmt: skip


def _quant(rec: dict[str, Any]) -> str:
    q = str(rec["model"].get("quant") or "")
    if STOCK.match(q):
        return q
    if q in UD:
        return UD[q]
    if q in ("unknown", "", "None"):
        return "Q4_K_M"  # only the weights depend on it, and they are not scored then
    raise ValueError(f"quantization {q!r} not identified")


def score(engine_dir: str = "llama_cpp") -> list[Row]:
    return [row for rec in records(engine_dir) for row in score_record(rec)]


if __name__ == "__main__":
    rows = score()
    for r in rows:
        err = "" if r.error is None else f"{100 * r.error:+7.1f}%"
        print(f"{r.record[:44]:44s} {r.term:16s} {r.device:12s} {r.logged or 0:>13,} {r.predicted or 0:>13,} "
              f"{err:>9s} {'exact' if r.exact else ''} {r.skip}")  # fmt: skip
