"""llama.cpp's compute buffer per device (each GPU and the host) against the real ggml-cuda backend.

Ground truth: tests/fixtures/llama_memory_gpu (scripts/gpu_memory_fixtures.py: llama.cpp 0c1e570 with
the real ggml-cuda backend on fake GPUs), 234 runs of 5 models, each with the main context and, with
``--spec-type draft-mtp``, the MTP draft context: every compute buffer llama.cpp reserved per buffer
type (CUDA0.., CUDA_Host) must come out of :func:`device_compute_buffers` to the byte.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import qwenfit
from qwenfit.core.engines.llama_cpp.gpu_compute import (
    HOST,
    DeviceSetup,
    device_compute_buffers,
    pipeline_parallel,
)
from qwenfit.core.engines.llama_cpp.graph import text_compute_bytes
from qwenfit.core.engines.llama_cpp.layout import llama_layout
from qwenfit.core.formats.weights import weights_gguf
from qwenfit.core.model.spec import ModelSpec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llama_memory_gpu"
INDEX = json.loads((FIXTURES / "INDEX.json").read_text())
MODELS = sorted(INDEX["models"])
# compute buffers per model file (GPUs + host, main + MTP contexts): 574 in all
BUFFERS = {"Qwen3-Next-80B-A3B": 122, "Qwen3.5-122B-A10B": 122, "Qwen3.5-27B": 104, "Qwen3.5-35B-A3B": 122,
           "Qwen3.5-9B": 104}  # fmt: skip


@cache
def _weights(name: str, variant: str) -> Any:
    """The GGUF the run loaded (only the Q4_K_M layouts put weights in host memory in the grid)."""
    spec = qwenfit.load(name)
    return weights_gguf(spec, "Q4_K_M", mtp=variant.endswith("-mtp")) if variant.startswith("q4km") else None


def _spec(name: str, variant: str) -> ModelSpec:
    """The model as llama.cpp loaded it: without the MTP block in the -nomtp files (n_layer_all)."""
    spec = qwenfit.load(name)
    return spec if variant.endswith("-mtp") else dataclasses.replace(spec, mtp_layers=0)


def setup_of(spec: ModelSpec, s: dict[str, Any]) -> DeviceSetup:
    """The placement a run's flags give (-ngl, -ts, -sm, -ot, -ncmoe, -nkvo, fusion env)."""
    n_gpus = len(s["gpus"])
    split = [float(x) for x in s["ts"].split(",")] if s["ts"] else None
    layout = llama_layout(spec, n_gpus=n_gpus, n_gpu_layers=None if s["ngl"] >= 999 else s["ngl"],
                          tensor_split=split)  # fmt: skip
    host: frozenset[int] = frozenset()
    if s["ncmoe"] is not None:
        host = frozenset(range(s["ncmoe"]))
    if s["ot"] == "exps=CPU":
        host = frozenset(range(layout.n_layer_all))
    return DeviceSetup(
        layer_device=layout.layer_device,
        gpus=tuple(d for d in layout.devices if d != "cpu"),
        host_expert_layers=host,
        backend="cuda",
        split_mode=s["sm"] or "layer",
        tensor_override=bool(s["ot"]) or s["ncmoe"] is not None,
        offload_kqv=not s["nkvo"],
        fusion=not s["env"].get("GGML_CUDA_DISABLE_FUSION"),
        measure=True,  # the probe reserves in no_alloc mode (ggml_backend_sched_reserve_size)
    )


def _runs(model: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    fx = json.loads((FIXTURES / f"{model}.json").read_text())
    return [(rid, dict(INDEX["base"], **run["set"]), run) for rid, run in fx["runs"].items()]


def _predict(
    model: str, s: dict[str, Any], c: dict[str, Any], role: str, measure: bool = True
) -> dict[str, int]:
    spec = _spec(model, s["variant"])
    draft = role == "mtp"
    n_rs = 3 if s["mtp"] and not draft else 0  # --spec-draft-n-max 3: MTP partial rollback rows
    kv = ("f16", "f16") if draft else (s["ctk"], s["ctv"])
    return device_compute_buffers(
        spec, dataclasses.replace(setup_of(spec, s), measure=measure), context=c["n_ctx"] // c["n_seq_max"],
        n_seq=c["n_seq_max"],
        n_ubatch=c["n_ubatch"], n_outputs_max=c["n_outputs_max"], flash_attn=bool(c["flash_attn"]),
        type_k=kv[0], type_v=kv[1], n_rs_seq=n_rs, mtp_draft=draft, weights=_weights(model, s["variant"]),
    )  # fmt: skip


def _measured(c: dict[str, Any], gpus: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for backend, _buft, _align, compute in c["backends"]:
        out[HOST if backend == "CPU" else gpus[int(backend.removeprefix("CUDA"))]] = compute
    return out


@pytest.mark.parametrize("model", MODELS)
def test_every_buffer_of_every_run_exact(model: str) -> None:
    """Each GPU's and the host's compute buffer, main and MTP draft context, to the byte."""
    n = 0
    wrong = []
    for rid, s, run in _runs(model):
        spec = _spec(model, s["variant"])
        gpus = setup_of(spec, s).gpus
        for role, c in run["gpu"]["contexts"].items():
            got = _predict(model, s, c, role)
            for dev, want in _measured(c, gpus).items():
                n += 1
                if got[dev] != want:
                    wrong.append((rid, role, dev, got[dev], want))
    assert not wrong, wrong
    assert n == BUFFERS[model]


@pytest.mark.parametrize("model", MODELS)
def test_pipeline_parallel_as_llama_cpp_decides(model: str) -> None:
    for rid, s, run in _runs(model):
        spec = _spec(model, s["variant"])
        assert pipeline_parallel(setup_of(spec, s)) == run["gpu"]["contexts"]["main"]["pipeline_parallel"], (
            rid
        )


def test_fixture_size() -> None:
    assert sum(m["runs"] for m in INDEX["models"].values()) == 234


@pytest.mark.parametrize(("model", "n_seq", "context", "outputs"), [
    ("Qwen3.5-9B", 1, 32768, 2048), ("Qwen3.5-35B-A3B", 4, 8192, 4), ("Qwen3-Next-80B-A3B", 2, 131072, 2),
])  # fmt: skip
def test_cpu_only_is_the_cpu_replay(model: str, n_seq: int, context: int, outputs: int) -> None:
    """Without a GPU the scheduler has one backend and one split: the host buffer is the CPU replay
    the CPU fixtures pin (tests/engines/test_llama_graph.py)."""
    spec = qwenfit.load(model)
    layout = llama_layout(spec, n_gpus=0)
    setup = DeviceSetup(layer_device=layout.layer_device, gpus=(), backend="cpu")
    got = device_compute_buffers(spec, setup, context=context, n_seq=n_seq, n_outputs_max=outputs)
    cells = -(-context * n_seq // 256) * 256
    per = -(-(cells // n_seq) // 256) * 256
    want = text_compute_bytes(
        spec, n_ctx=per * n_seq, n_ctx_seq=per, n_seq=n_seq, kv_unified=False, n_ubatch=512,
        n_outputs_max=outputs, flash_attn=True, type_k="f16", type_v="f16",
    )  # fmt: skip
    assert got == {HOST: want}


# ------------------------------------------------------------------------------------------------
# the host buffer's closed form and the terms of qwenfit.estimate
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_host_closed_form_on_every_full_offload_run(model: str) -> None:
    """Host = copies x Σ align32(graph inputs) + the token embeddings (gpu_forms.host_compute_closed),
    on every run with every layer and the output on the GPUs (incl. --n-cpu-moe / -ot exps=CPU)."""
    from qwenfit.core.engines.llama_cpp.cells import context_cells
    from qwenfit.core.engines.llama_cpp.compute import Structure, kv_class
    from qwenfit.core.engines.llama_cpp.gpu_forms import host_compute_closed

    n = 0
    for rid, s, run in _runs(model):
        spec = _spec(model, s["variant"])
        setup = setup_of(spec, s)
        c = run["gpu"]["contexts"]["main"]
        if "cpu" in setup.layer_device or not setup.offload_kqv or c["n_outputs_max"] != c["n_seq_max"]:
            continue
        n_rs = 3 if s["mtp"] and spec.family != "qwen3_next" else 0
        st = Structure(
            bool(c["flash_attn"]), kv_class(s["ctk"]), kv_class(s["ctv"]), c["n_ubatch"], "seqs", n_rs
        )
        cells, per = context_cells(c["n_ctx"], c["n_seq_max"], kv_unified=False)
        copies = c["sched_n_copies"] if c["pipeline_parallel"] else 1
        host, _ = host_compute_closed(
            spec, st, n_ctx=cells, n_ctx_seq=per, n_seq=c["n_seq_max"], n_copies=copies
        )
        assert host == _measured(c, setup.gpus)[HOST], rid
        n += 1
    assert n >= 5  # the server-output runs (the closed form is for llama-server's output limits)


@pytest.mark.parametrize(("rid", "kw"), [
    ("base", {"n_gpus": 1, "server": False}),
    ("ngl16", {"n_gpus": 1, "n_gpu_layers": 16, "server": False}),
    ("gpu2", {"n_gpus": 2, "server": False}),
    ("gpu2-ts3-1", {"n_gpus": 2, "tensor_split": (3, 1), "server": False}),
])  # fmt: skip
def test_estimate_terms_are_the_replay(rid: str, kw: dict[str, Any]) -> None:
    """qwenfit.estimate's compute_buffer terms per device, where no closed form is traced (library
    output limits, partial -ngl, -ts), equal the fake-GPU run's replay (9B, Q4_K_M without the MTP
    layer) as a real run reserves it: with the graph callback's norm assignments, which the probe's
    no_alloc measurement drops (on one GPU or with host layers they change nothing: the measurement)."""
    model = "Qwen3.5-9B"
    s, run = next((s, r) for i, s, r in _runs(model) if i == rid)
    c = run["gpu"]["contexts"]["main"]
    e = qwenfit.estimate(model, "Q4_K_M", engine="llama.cpp", context=c["n_ctx"], kv_cache=s["ctk"],
                         mtp_layer=False, **kw)  # fmt: skip
    got = {t.device: t.bytes for t in e.terms if t.name == "compute_buffer"}
    assert all(t.exact for t in e.terms if t.name == "compute_buffer")
    want = _predict(model, s, c, "main", measure=False)
    assert got == {("cpu" if d == HOST else d): v for d, v in want.items()}
    if kw["n_gpus"] == 1:
        assert want == _measured(c, setup_of(_spec(model, s["variant"]), s).gpus)


def test_closed_form_on_the_server_runs() -> None:
    """Where the CPU graph has a closed form (llama-server's output limits, ubatch 512, flash attention)
    the estimate's terms are traced formulas: the host buffer equals every fake-GPU run (full offload),
    each GPU's equals the run's replay as a real run reserves it (with the norm assignments the no_alloc
    probe drops) in 19 of the 20 (the 122B-A10B with 4 slots: +25.1 %, its MoE peak moves with the
    context; the delta the closed form adds is taken at 4,096 and 32,768 tokens of one slot)."""
    from qwenfit.core.engines.llama_cpp.compute import kv_class

    exact, gpu_errors = 0, []
    for model in MODELS:
        for _rid, s, run in _runs(model):
            c = run["gpu"]["contexts"]["main"]
            plain = not (s["ot"] or s["sm"] or s["nkvo"] or s["env"] or s["mtp"] or s["ts"] or s["ncmoe"])
            if not plain or s["ngl"] < 999 or c["n_outputs_max"] != c["n_seq_max"] or c["n_ubatch"] != 512:
                continue
            if not c["flash_attn"] or kv_class(s["ctk"]) not in ("0", "1"):
                continue
            e = qwenfit.estimate(
                model, "Q4_K_M" if s["variant"].startswith("q4km") else "BF16", engine="llama.cpp",
                n_gpus=len(s["gpus"]), context=c["n_ctx"] // c["n_seq_max"], sequences=c["n_seq_max"],
                kv_cache=s["ctk"], mtp_layer=s["variant"].endswith("-mtp"),
            )  # fmt: skip
            got = {t.device: t.bytes for t in e.terms if t.name == "compute_buffer"}
            real = _predict(model, s, c, "main", measure=False)  # the run's replay with its norm assignments
            for dev, want in _measured(c, setup_of(_spec(model, s["variant"]), s).gpus).items():
                if dev == HOST:
                    assert got["cpu"] == want
                else:
                    gpu_errors.append(abs(got[dev] - real[dev]) / real[dev])
                    exact += got[dev] == real[dev]
    assert len(gpu_errors) == 20 and exact == 19 and max(gpu_errors) < 0.26, (exact, max(gpu_errors))


def test_a_planner_search_takes_the_fast_form() -> None:
    """Outside qwenfit.estimate (engines.base.EXACT unset: a planner's search) the configurations
    without a closed form take the CPU graph's buffer per GPU, labelled estimated (one scheduler
    replay per placement and context would make plans several times slower)."""
    from qwenfit.core.engines.base import Deployment, get

    eng = get("llama.cpp")
    spec = qwenfit.load("Qwen3.5-9B")
    d = Deployment(context=32768, sequences=1, kv_cache="f16", backend="cuda", n_gpus=1)
    o = eng.options({"server": False, "mtp_layer": False})
    terms = eng.terms(
        spec, eng.inputs(spec, eng.weights(spec, "Q4_K_M", mtp=False, vision=False), d, o), d, o
    )
    compute = [t for t in terms if t.name == "compute_buffer"]
    assert {t.device for t in compute} == {"gpu", "cpu"} and not any(t.exact for t in compute)
