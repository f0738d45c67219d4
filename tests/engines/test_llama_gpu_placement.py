"""Where llama.cpp puts weights, KV cache, recurrent state and logits on GPUs, per device, to the byte.

Ground truth: tests/fixtures/llama_memory_gpu (llama.cpp 0c1e570's real ggml-cuda backend against a fake
CUDA runtime, scripts/README-fake-gpu.md): 234 runs over five models, one to three GPUs, partial ``-ngl``,
``-ts``, ``-sm none``, ``--n-cpu-moe``, ``-ot exps=CPU``, GGUFs with and without the MTP block, MTP drafting.
Every run's model, KV, recurrent-state and output buffers are compared with qwenfit's terms per device.
(Compute buffers are tested in test_llama_gpu_compute.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import qwenfit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llama_memory_gpu"
INDEX = json.loads((FIXTURES / "INDEX.json").read_text())
VARIANTS = {"q4km-nomtp": ("Q4_K_M", False), "q4km-mtp": ("Q4_K_M", True), "bf16-nomtp": ("BF16", False)}
HOST = ("CUDA_Host", "CPU")


def _runs():
    for model in INDEX["models"]:
        data = json.loads((FIXTURES / f"{model}.json").read_text())
        for name, run in data["runs"].items():
            yield pytest.param(model, name, {**INDEX["base"], **run["set"]}, run["gpu"], id=f"{model}-{name}")


def estimate_of(model: str, s: dict) -> qwenfit.Estimate:
    """The qwenfit estimate of one fixture run's settings."""
    quant, mtp_layer = VARIANTS[s["variant"]]
    n_gpus = 1 if s["sm"] == "none" else len(s["gpus"])
    kw = dict(
        context=s["c"] // s["np"],
        sequences=s["np"],
        engine="llama.cpp",
        kv_cache=s["ctk"],
        n_gpus=n_gpus,
        vram_gb=80,
        ram_gb=1024,
        ubatch=s["ub"],
        batch=s["b"],
        flash_attention=s["fa"] == "on",
        kv_unified=s["kvu"],
        mtp=s["mtp"],
        mtp_layer=mtp_layer,
        server=s["outputs"] == "server",
    )
    if s["ngl"] != 999:
        kw["n_gpu_layers"] = s["ngl"]
    if s["ts"]:
        kw["tensor_split"] = tuple(float(x) for x in s["ts"].split(","))
    if s["sm"]:
        kw["split_mode"] = s["sm"]
    if s["ncmoe"]:
        kw["n_cpu_moe"] = s["ncmoe"]
    if s["ot"]:
        kw["override_tensor"] = s["ot"]
    if s["nkvo"]:
        kw["kv_offload"] = False
    return qwenfit.estimate(model, quant, artifact="recipe", **kw)  # the fixtures are llama-quantize's files


def _device(buft: str, n_gpus: int) -> str:
    if buft in HOST:
        return "cpu"
    index = int(buft.removeprefix("CUDA"))
    return "gpu" if n_gpus == 1 else f"gpu{index}"


@pytest.mark.parametrize(("model", "name", "s", "gpu"), list(_runs()))
def test_weights_kv_state_and_logits_per_device(model, name, s, gpu):
    est = estimate_of(model, s)
    n_gpus = 1 if s["sm"] == "none" else len(s["gpus"])
    got: dict[tuple[str, str], int] = {}
    for t in est.terms:
        if t.name in ("weights", "kv_cache", "recurrent_state", "output_buffer"):
            got[(t.name, t.device)] = got.get((t.name, t.device), 0) + t.bytes
    want: dict[tuple[str, str], int] = {}
    for ctx in gpu["contexts"].values():
        for buft, parts in ctx["buffers"].items():
            dev = _device(buft, n_gpus)
            for key, term in (("kv", "kv_cache"), ("rs", "recurrent_state")):
                if parts.get(key):
                    want[(term, dev)] = want.get((term, dev), 0) + parts[key]
    for buft, size in gpu["model_buffers"].items():
        if size:
            dev = "cpu" if buft.startswith(HOST) else _device(buft, n_gpus)
            want[("weights", dev)] = want.get(("weights", dev), 0) + size
    if s["mtp"]:  # reserve-time logits here; qwenfit counts the MTP run's larger output (test_llama_memory)
        got.pop(("output_buffer", "cpu"), None)
    else:
        want[("output_buffer", "cpu")] = gpu["contexts"]["main"]["output"][1]
    assert {k: got.get(k, 0) for k in want} == want, name
    assert not {k: v for k, v in got.items() if k not in want and v}, name
