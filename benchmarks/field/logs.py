"""Reading the field-log corpus (tests/fixtures/field_logs/): records and the numbers their logs print.

A record is one published model load (see tests/fixtures/field_logs/llama_cpp/README.md for the format).
This module only reads what the log says, line by line, into :class:`LlamaLog`: model buffers, and per
llama_context (the main context, then an MTP or draft-model context) the KV, recurrent-state, output and
compute buffers per device, the ``size = ...`` line of the KV cache (what a ``--fit`` dry run prints
when it allocates nothing) and the graph lines. Sizes are printed in MiB with two decimals, so a logged
value is known to +-0.005 MiB (:data:`MIB_RESOLUTION` bytes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "fixtures" / "field_logs"
MIB = 1 << 20
MIB_RESOLUTION = 5243  # 0.005 MiB: half the last printed digit

_BUF = r"\s*(?P<buf>[A-Za-z_]+[0-9]*(?:_[A-Za-z]+)?)\s+"
_SIZE = r"=\s*(?P<mib>[0-9]+\.[0-9]+) MiB"
PATTERNS = {
    "model": re.compile(r"load_tensors:" + _BUF + r"model buffer size\s*" + _SIZE),
    "kv": re.compile(r"llama_kv_cache:" + _BUF + r"KV buffer size\s*" + _SIZE),
    "kv_size": re.compile(
        r"llama_kv_cache: size =\s*(?P<mib>[0-9]+\.[0-9]+) MiB \(\s*(?P<cells>[0-9]+) cells,\s*(?P<layers>[0-9]+) "
        r"layers"
    ),
    "rs": re.compile(r"llama_memory_recurrent:" + _BUF + r"RS buffer size\s*" + _SIZE),
    "rs_size": re.compile(
        r"llama_memory_recurrent: size =\s*(?P<mib>[0-9]+\.[0-9]+) MiB \(\s*(?P<cells>[0-9]+) cells,\s*"
        r"(?P<layers>[0-9]+) layers"
    ),
    "output": re.compile(r"llama_context:" + _BUF + r"output buffer size\s*" + _SIZE),
    "compute": re.compile(r"sched_reserve:" + _BUF + r"compute buffer size\s*" + _SIZE),
    "graph": re.compile(
        r"sched_reserve: graph nodes\s*=\s*(?P<pp>[0-9]+)(?: \(with bs=(?P<bs>[0-9]+)\), (?P<tg>[0-9]+))?"
    ),
    "splits": re.compile(r"sched_reserve: graph splits\s*=\s*(?P<n>[0-9]+)"),
    "vision_compute": re.compile(r"alloc_compute_meta:" + _BUF + r"compute buffer size\s*" + _SIZE),
    "n_ctx": re.compile(r"llama_context: n_ctx\s*=\s*(?P<v>[0-9]+)"),
    "n_ctx_seq": re.compile(r"llama_context: n_ctx_seq\s*=\s*(?P<v>[0-9]+)"),
    "n_seq_max": re.compile(r"llama_context: n_seq_max\s*=\s*(?P<v>[0-9]+)"),
    "n_batch": re.compile(r"llama_context: n_batch\s*=\s*(?P<v>[0-9]+)"),
    "n_ubatch": re.compile(r"llama_context: n_ubatch\s*=\s*(?P<v>[0-9]+)"),
    "flash_attn": re.compile(r"llama_context: flash_attn\s*=\s*(?P<v>\w+)"),
    "draft": re.compile(r"creating MTP draft context|common_speculative|draft model|ctx_dft"),
}


@dataclass
class ContextLog:
    """One llama_context's buffers as printed: device/buffer name -> bytes."""

    kv: dict[str, int] = field(default_factory=dict)
    kv_size: int | None = None  # the "size = ..." line (a --fit dry run allocates 0 but prints it)
    kv_layers: int | None = None
    rs: dict[str, int] = field(default_factory=dict)
    rs_size: int | None = None
    output: dict[str, int] = field(default_factory=dict)
    compute: dict[str, int] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    graph_nodes: tuple[int, int, int] | None = None  # (pp nodes, with bs, tg nodes)
    graph_splits: int | None = None

    @property
    def started(self) -> bool:
        return bool(self.kv or self.rs or self.output or self.compute or self.kv_size is not None)


@dataclass
class LlamaLog:
    model: dict[str, int] = field(default_factory=dict)
    contexts: list[ContextLog] = field(default_factory=list)
    vision_compute: dict[str, int] = field(default_factory=dict)


def _mib(m: re.Match[str]) -> int:
    return round(float(m.group("mib")) * MIB)


def parse_llama_log(text: str) -> LlamaLog:
    """The buffers a llama.cpp log prints, context by context (a new context starts with its
    ``llama_context:`` parameter lines or KV lines after the previous one reserved its compute)."""
    out = LlamaLog()
    ctx = ContextLog()

    def new_context() -> ContextLog:
        nonlocal ctx
        if ctx.started or ctx.params:
            out.contexts.append(ctx)
        ctx = ContextLog()
        return ctx

    reserved = False
    for line in text.splitlines():
        if m := PATTERNS["model"].search(line):
            out.model[m.group("buf")] = out.model.get(m.group("buf"), 0) + _mib(m)
            continue
        if m := PATTERNS["vision_compute"].search(line):
            out.vision_compute[m.group("buf")] = _mib(m)
            continue
        param = next((k for k in ("n_seq_max", "n_ctx", "n_ctx_seq", "n_batch", "n_ubatch", "flash_attn")
                      if PATTERNS[k].search(line)), None)  # fmt: skip
        if param is not None:
            if reserved or (param in ctx.params and param != "n_ctx_seq"):
                new_context()
                reserved = False
            v = PATTERNS[param].search(line).group("v")  # type: ignore[union-attr]
            ctx.params[param] = int(v) if v.isdigit() else v
            continue
        if m := PATTERNS["kv"].search(line):
            if reserved:
                new_context()
                reserved = False
            ctx.kv[m.group("buf")] = ctx.kv.get(m.group("buf"), 0) + _mib(m)
        elif m := PATTERNS["kv_size"].search(line):
            ctx.kv_size, ctx.kv_layers = _mib(m), int(m.group("layers"))
        elif m := PATTERNS["rs"].search(line):
            ctx.rs[m.group("buf")] = ctx.rs.get(m.group("buf"), 0) + _mib(m)
        elif m := PATTERNS["rs_size"].search(line):
            ctx.rs_size = _mib(m)
        elif m := PATTERNS["output"].search(line):
            ctx.output[m.group("buf")] = _mib(m)
        elif m := PATTERNS["compute"].search(line):
            if m.group("buf") in ctx.compute and reserved:  # a second reserve: a new context
                new_context()
            ctx.compute[m.group("buf")] = _mib(m)
        elif m := PATTERNS["graph"].search(line):
            ctx.graph_nodes = (int(m.group("pp")), int(m.group("bs") or 0), int(m.group("tg") or 0))
            reserved = True
        elif m := PATTERNS["splits"].search(line):
            ctx.graph_splits = int(m.group("n"))
            reserved = True
    if ctx.started or ctx.params:
        out.contexts.append(ctx)
    return out


def records(engine_dir: str) -> list[dict[str, Any]]:
    """Every record of ``tests/fixtures/field_logs/<engine_dir>/``, in file order."""
    out = []
    for path in sorted((CORPUS / engine_dir).glob("*.yaml")):
        rec = yaml.safe_load(path.read_text())
        rec["_path"] = str(path.relative_to(REPO))
        out.append(rec)
    return out
