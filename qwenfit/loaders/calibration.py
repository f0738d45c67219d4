"""Speed calibration on the user's machine (``qwenfit calibrate``): read what ``llama-bench`` or
``mlx_lm.generate --verbose`` printed for a small model the user has, fit the machine's own constants
(memory efficiency of the decode kernels, prefill efficiency; fixed per-layer cost when a small model
is fixed-cost bound), store them in the user's config directory and hand them to the speed model.

Fit (one model, one machine; the model's other constants stay the fitted ones of
:mod:`qwenfit.core.fit.speed_fitted`):

* decode (``tg`` rows): ``1 / tok/s = B / (η · BW) + t_fixed`` with B the bytes one token reads
  (from the model file: every tensor, routed experts at k/E, the embedding one row) and t_fixed the
  engine's step + per-layer costs; solved for η's kernel factor (``eta_k``). When the fixed costs are
  more than 3/4 of the measured time the bytes say little: the per-layer cost (``layer_us``) is
  solved for instead.
* prefill (``pp`` rows): ``n / tok/s = 2 A n / (η_c · F) + t_fixed`` solved for ``eta_c`` (devices with
  a catalog FP16 figure); a prompt ubatch's t_fixed has ``prefill_layer_us`` per layer.

Constants are stored as ``<name>.<family>/<backend>@<device id>`` (they apply to that device only);
:func:`activate` hands them to :func:`qwenfit.core.fit.speed.use_calibration`.
``QWENFIT_CALIBRATION=off`` ignores the stored file; ``QWENFIT_CONFIG_DIR`` moves it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qwenfit.core.hardware import Device, Machine
from qwenfit.errors import UsageError
from qwenfit.loaders.calibrated import activate, calibration_path, config_dir, load

__all__ = [
    "BenchRow",
    "ModelFacts",
    "activate",
    "calibration_path",
    "config_dir",
    "fit_constants",
    "gguf_facts",
    "load",
    "mlx_facts",
    "parse_llama_bench",
    "parse_mlx_verbose",
    "save",
]

SCHEMA = 1
BACKENDS = {"cuda": "cuda", "rocm": "rocm", "hip": "rocm", "vulkan": "vulkan", "metal": "metal",
            "mtl": "metal",
            "blas": "cpu", "cpu": "cpu", "sycl": "sycl"}  # fmt: skip


# --------------------------------------------------------------------------------------------------
# tool outputs


@dataclass(frozen=True, slots=True)
class BenchRow:
    """One measurement a tool printed: ``test`` is ``pp`` (prompt) or ``tg`` (generation)."""

    test: str
    tokens: int
    depth: int
    tokens_per_s: float
    backend: str = ""
    model: str = ""


_TEST = re.compile(r"^(pp|tg)(\d+)(?:\s*@\s*d(\d+))?$")


def _backend(text: str) -> str:
    first = re.split(r"[,\s]+", text.strip().lower())[0] if text.strip() else ""
    return BACKENDS.get(first, first)


def parse_llama_bench(text: str) -> list[BenchRow]:
    """Rows of ``llama-bench`` output: its markdown table (``-o md``, the default) or JSON
    (``-o json`` / ``-o jsonl``)."""
    s = text.strip()
    if s.startswith("[") or s.startswith("{"):
        items = (
            json.loads(s) if s.startswith("[") else [json.loads(ln) for ln in s.splitlines() if ln.strip()]
        )
        out = []
        for it in items:
            n_p, n_g = int(it.get("n_prompt", 0)), int(it.get("n_gen", 0))
            test = "tg" if n_g and not n_p else "pp"
            backend = _backend(str(it.get("backends", "")))
            depth = int(it.get("n_depth", 0))
            out.append(
                BenchRow(test, n_g or n_p, depth, float(it["avg_ts"]), backend, str(it.get("model_type", "")))
            )
        return out
    rows: list[BenchRow] = []
    header: list[str] | None = None
    for line in s.splitlines():
        if not line.lstrip().startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if "test" in cells and "t/s" in cells:
            header = cells
            continue
        if header is None or set("".join(cells)) <= set("-: "):
            continue
        row = dict(zip(header, cells, strict=False))
        m = _TEST.match(row.get("test", ""))
        if not m:
            continue
        tps = float(row["t/s"].split("±")[0])
        rows.append(BenchRow(m.group(1), int(m.group(2)), int(m.group(3) or 0), tps,
                             _backend(row.get("backend", "")), row.get("model", "")))  # fmt: skip
    if not rows:
        raise UsageError("no llama-bench result rows (pp/tg lines of its table or JSON) in the output")
    return rows


_MLX = re.compile(r"^\s*(Prompt|Generation):\s*(\d+)\s+tokens,\s*([\d.]+)\s+tokens-per-sec", re.M)


def parse_mlx_verbose(text: str) -> list[BenchRow]:
    """The ``Prompt: N tokens, X tokens-per-sec`` / ``Generation: ...`` lines ``mlx_lm.generate
    --verbose`` prints."""
    rows = [
        BenchRow("pp" if kind == "Prompt" else "tg", int(n), 0, float(tps), "metal", "")
        for kind, n, tps in _MLX.findall(text)
    ]
    if not rows:
        raise UsageError("no 'Prompt:' / 'Generation:' tokens-per-sec lines in the mlx_lm output")
    return rows


# --------------------------------------------------------------------------------------------------
# the model the user ran


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What the fit needs of the model file."""

    read_bytes: int  # bytes one decoded token reads
    matmul_params: int  # parameters one prompt token multiplies (no embedding, no output head)
    n_layers: int
    moe: bool
    source: str
    routed_params: int = 0  # the routed experts' share of matmul_params (at k/E)
    n_experts: int = 0
    k_experts: int = 0


def gguf_facts(path: str | os.PathLike[str]) -> ModelFacts:
    """From a GGUF's tensor list: every tensor's bytes, routed experts (``*_exps``) at k/E, the token
    embedding one row (unless it is also the output layer)."""
    from qwenfit.loaders.gguf import read_gguf_split

    parts = read_gguf_split(path)
    meta = parts[0].metadata
    arch = str(meta.get("general.architecture", ""))
    n_mtp = int(meta.get(f"{arch}.nextn_predict_layers", 0) or 0)
    n_layers = int(meta.get(f"{arch}.block_count", 0) or 0) - n_mtp  # MTP blocks come last
    n_e = int(meta.get(f"{arch}.expert_count", 0) or 0)
    k = int(meta.get(f"{arch}.expert_used_count", 0) or 0)
    tensors = [t for p in parts for t in p.tensors]
    names = {t.name for t in tensors}
    read = 0.0
    params = routed = 0.0
    for t in tensors:
        m = re.match(r"blk\.(\d+)\.", t.name)
        if m and int(m.group(1)) >= n_layers:  # the MTP block: not read by a plain decode step
            continue
        n = math.prod(t.shape)
        share = k / n_e if "_exps" in t.name and n_e else 1.0
        if t.name == "token_embd.weight" and "output.weight" in names:
            read += t.nbytes / max(1, t.shape[-1])
            continue
        read += t.nbytes * share
        if (
            t.name.endswith(".weight")
            and len(t.shape) >= 2
            and t.name not in ("token_embd.weight", "output.weight")
        ):
            params += n * share
            routed += n * share if "_exps" in t.name and n_e else 0.0
    return ModelFacts(round(read), round(params), n_layers, bool(n_e), str(path), round(routed), n_e, k)


def mlx_facts(path: str | os.PathLike[str]) -> ModelFacts:
    """From an MLX model directory: config.json and the safetensors headers (routed experts, the
    ``switch_mlp`` / ``experts`` tensors, at k/E; the embedding one row unless tied)."""
    import struct

    root = Path(path)
    if not (root / "config.json").is_file():
        raise UsageError(f"{root} is not an MLX model directory (no config.json)")
    cfg = json.loads((root / "config.json").read_text())
    cfg = cfg.get("text_config", cfg)
    n_layers = int(cfg.get("num_hidden_layers", 0))
    n_e = int(cfg.get("num_experts", 0) or 0)
    k = int(cfg.get("num_experts_per_tok", 0) or 0)
    tied = bool(cfg.get("tie_word_embeddings", False))
    bits = int((cfg.get("quantization") or {}).get("bits", 32) or 32)  # packed U32 weights: 32 / bits each
    read = params = routed_params = 0.0
    for f in sorted(root.glob("*.safetensors")):
        with f.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for name, t in header.items():
            if name == "__metadata__":
                continue
            nbytes = t["data_offsets"][1] - t["data_offsets"][0]
            routed = ("switch_mlp" in name or ".experts." in name) and n_e
            share = k / n_e if routed else 1.0
            if "embed_tokens" in name and not tied:
                read += nbytes / max(1, t["shape"][0])
                continue
            read += nbytes * share
            if (
                name.endswith(".weight")
                and len(t["shape"]) >= 2
                and "embed_tokens" not in name
                and "lm_head" not in name
            ):
                per = 32 / bits if t.get("dtype") == "U32" else 1
                params += math.prod(t["shape"]) * per * share
                routed_params += math.prod(t["shape"]) * per * share if routed else 0.0
    return ModelFacts(
        round(read), round(params), n_layers, bool(n_e), str(path), round(routed_params), n_e, k
    )


# --------------------------------------------------------------------------------------------------
# fit


@dataclass
class Calibration:
    device: str
    backend: str
    family: str
    tool: str
    model: str
    constants: dict[str, float]
    measured: list[dict[str, Any]] = field(default_factory=list)
    before: dict[str, float] = field(default_factory=dict)  # the fitted model's figures for the same rows


def fit_constants(rows: list[BenchRow], facts: ModelFacts, machine: Machine, engine: str, backend: str,
                  *, tool: str) -> Calibration:  # fmt: skip
    """The machine's constants from the tool's rows (module docstring)."""
    from qwenfit.core.engines.base import get
    from qwenfit.core.fit.gemm import gemm_seconds
    from qwenfit.core.fit.speed import constants_for

    if not machine.devices:
        raise UsageError(
            "calibrate needs a GPU or unified-memory device (the CPU backend has no fitted cell)"
        )
    dev: Device = machine.devices[0]
    eng = get(engine)
    family = eng.speed.fitted[0] if eng.speed.fitted else eng.speed.family
    k = constants_for(eng, backend, dev)
    bw = k["eta"] * dev.bandwidth_gbps * 1e9
    moe = k["moe_factor"] if facts.moe else 1.0

    def fixed_s(layer_us: float) -> float:  # a step's fixed cost at ``layer_us`` per (dense) layer
        return (k["step_us"] + facts.n_layers * layer_us * moe) * 1e-6

    fixed = fixed_s(k["layer_us"])
    cell = f"{family}/{backend}@{dev.id}"
    consts: dict[str, float] = {}
    before: dict[str, float] = {}
    tg = [r for r in rows if r.test == "tg" and r.depth <= 512]
    if tg:
        t = 1 / statistics.median(r.tokens_per_s for r in tg)
        t_mem = facts.read_bytes / bw
        before["tg"] = 1 / (t_mem + fixed)
        if t - fixed > 0.25 * t:
            m = min(2.0, max(0.3, t_mem / (t - fixed)))
            consts[f"eta_k.{cell}"] = round(k["eta_k"] * m, 4)
        elif facts.n_layers:
            layer_cal = (t - t_mem - k["step_us"] * 1e-6) / facts.n_layers / moe
            consts[f"layer_us.{cell}"] = round(max(2.0, layer_cal * 1e6), 1)
    pp = [r for r in rows if r.test == "pp" and r.depth <= 512]
    if pp and dev.fp16_tflops > 0 and facts.matmul_params:
        r = max(pp, key=lambda r: r.tokens)
        t = r.tokens / r.tokens_per_s
        ub = min(r.tokens, eng.speed.ubatch)
        n_ub = math.ceil(r.tokens / ub)
        chunks = [min(ub, r.tokens - i) for i in range(0, r.tokens, ub)]
        e, kk = facts.n_experts, facts.k_experts  # routed experts see n k / E tokens each
        gemm = sum(
            gemm_seconds(
                facts.matmul_params, facts.routed_params, n, n * kk / e if e else n, dev.fp16_tflops * 1e12
            )
            for n in chunks
        )
        # a prompt ubatch's fixed cost: its own per-layer cost (llama.cpp CUDA runs it eagerly: speed._K)
        fixed_pp = fixed_s(k["prefill_layer_us"])
        spare = t - n_ub * fixed_pp
        if spare > 0:
            before["pp"] = r.tokens / (gemm / k["eta_c"] + n_ub * fixed_pp)
            consts[f"eta_c.{cell}"] = round(min(1.0, max(0.01, gemm / spare)), 4)
    if not consts:
        raise UsageError("the output has no generation (tg) or prompt (pp) rows at depth 0 to calibrate from")
    return Calibration(dev.id, backend, family, tool, facts.source, consts, [asdict(r) for r in rows], before)


# --------------------------------------------------------------------------------------------------
# store / load


def save(cal: Calibration) -> Path:
    """Store ``cal`` (replacing an earlier calibration of the same device, backend and engine family)."""
    path = calibration_path()
    doc: dict[str, Any] = {"schema": SCHEMA, "entries": []}
    if path.is_file():
        with contextlib.suppress(ValueError):
            doc = json.loads(path.read_text())
    key = (cal.device, cal.backend, cal.family)
    entries = [
        e for e in doc.get("entries", []) if (e.get("device"), e.get("backend"), e.get("family")) != key
    ]
    entries.append(asdict(cal))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": SCHEMA, "entries": entries}, indent=1, sort_keys=True) + "\n")
    return path
