"""One answer, one path: the calculator's launch command is the CLI's, and ``qwenfit.check()`` offers
the nearest settings ``qwenfit check`` prints (the two disagreements the engine-home refactor fixed)."""

from __future__ import annotations

import json

import pytest

import qwenfit
from qwenfit.api import check_result
from qwenfit.core.command import render_json
from qwenfit.core.engines.base import get
from qwenfit.export import calculator_engines, calculator_json

# one quantization of each quality class and weights family per engine
QUANTS = {"gguf": ("Q8_0", "Q4_K_M", "Q3_K_M", "IQ2_XXS"), "safetensors": ("bf16", "fp8"),
          "mlx": ("bf16", "mlx-8bit", "mlx-4bit", "mlx-3bit")}  # fmt: skip
# the machine a placement of the calculator is on, for `qwenfit check`
MACHINES = {"gpu1": "rtx-4090", "gpu2": "2x rtx-3090", "cpu": "cpu", "tp1": "h100-sxm", "tp2": "2x h100-sxm",
            "tp4": "4x h100-sxm", "tp8": "8x h100-sxm", "unified": "m4-max-128"}  # fmt: skip
CASES = [(4096, 1, 0), (32768, 2, 7), (100000, 4, 0), (262144, 1, 20)]


@pytest.fixture(scope="module")
def export() -> dict:
    return json.loads(json.dumps(calculator_json()))


@pytest.mark.parametrize("engine", [e.name for e in calculator_engines()])
@pytest.mark.parametrize("model", ["9B", "35B-A3B", "122B-A10B"])
def test_calculator_commands_are_the_cli_commands(export, engine, model):
    """For every engine, quant class and placement kind the calculator offers, the command the page
    renders from the export equals the one ``qwenfit check`` prints for the same deployment."""
    eng = get(engine)
    key = next(k for k, m in export["models"].items() if m["name"] == qwenfit.load(model).name)
    spec = qwenfit.load(model)
    checked = 0
    for f in export["formulas"]:
        if (f["model"], f["engine"]) != (key, engine):
            continue
        for quant in QUANTS[eng.weights_family]:
            env = dict(export["models"][key]["quants"][engine][quant]["env"])
            for ctx, seqs, n_cpu_moe in CASES:
                n_cpu_moe = n_cpu_moe if spec.is_moe and f["placement"].startswith("gpu") else 0
                if eng.weights_family == "gguf":
                    ctx = ctx // 256 * 256
                page = render_json(f["command"], {**env, "ctx": ctx, "seqs": seqs, "n_cpu_moe": n_cpu_moe})
                options = {"n_cpu_moe": n_cpu_moe} if n_cpu_moe and "n_cpu_moe" in eng.option_help() else {}
                if "tp" in eng.option_help():
                    options["tp"] = int(f["placement"].removeprefix("tp"))
                ram = {} if f["placement"] == "unified" else {"ram_gb": 1024}
                cli = check_result(
                    spec, quant, context=ctx, engine=engine, kv_cache=f["kv_cache"], sequences=seqs,
                    hardware=MACHINES[f["placement"]], vision=False, planned=False, **ram, **options,
                )  # fmt: skip
                assert page == cli.command, (f["placement"], quant, f["kv_cache"], ctx, seqs, n_cpu_moe)
                checked += 1
    assert checked


def test_calculator_commands_load_what_the_cli_names():
    """The fixes the single command path brought, pinned: MLX's published repo and --kv-bits, vLLM's
    FP8 repo (and the make step where none is published), CPU-only llama.cpp without GPU layers, Ollama
    with flash attention on and the published GGUF."""
    data = calculator_json()

    def render(model: str, engine: str, kv: str, placement: str, quant: str, **v: int) -> str:
        f = next(x for x in data["formulas"] if (x["model"], x["engine"], x["kv_cache"], x["placement"])
                 == (model, engine, kv, placement))  # fmt: skip
        env = {
            **data["models"][model]["quants"][engine][quant]["env"],
            "ctx": 32768,
            "seqs": 2,
            "n_cpu_moe": 0,
        }
        return render_json(f["command"], {**env, **v})

    assert render("9B", "mlx", "8", "unified", "mlx-4bit") == (
        "mlx_lm.server --model mlx-community/Qwen3.5-9B-MLX-4bit --kv-bits 8 --decode-concurrency 2"
    )
    assert render("27B", "vllm", "auto", "tp1", "fp8").startswith("vllm serve Qwen/Qwen3.5-27B-FP8 ")
    # Qwen publishes no 9B FP8 checkpoint: vLLM quantizes the BF16 one on load
    fp8 = render("9B", "vllm", "auto", "tp1", "fp8")
    assert fp8.startswith("vllm serve Qwen/Qwen3.5-9B --quantization fp8 ")
    assert render("9B", "llama.cpp", "f16", "gpu1", "Q4_K_M").startswith(
        "llama-server -hf unsloth/Qwen3.5-9B-GGUF:Q4_K_M --no-mmproj -c 65536"
    )
    assert "-ngl 0 --device none" in render("9B", "llama.cpp", "f16", "cpu", "Q4_K_M")
    assert "OLLAMA_FLASH_ATTENTION=1 OLLAMA_KV_CACHE_TYPE=q8_0 OLLAMA_NUM_PARALLEL=2" in render(
        "9B", "ollama", "q8_0", "gpu1", "Q4_K_M"
    )


@pytest.mark.parametrize(
    ("model", "quant", "kw"),
    [
        ("27B", "Q8_0", {"hardware": "rtx-4090", "ram_gb": 64, "context": 131072}),
        ("35B-A3B", "Q8_0", {"hardware": "rtx-4090", "ram_gb": 64, "context": 131072}),
        ("35B-A3B", "Q4_K_M", {"vram_gb": 24, "ram_gb": 64, "context": 65536, "sequences": 4}),
        ("27B", "bf16", {"engine": "vllm", "hardware": "2x rtx-4090", "context": 65536, "tp": 2}),
    ],
)
def test_check_offers_what_the_cli_offers(cli, model, quant, kw):
    """``qwenfit.check()``'s alternatives are ``qwenfit check``'s, in the same order (one function,
    core/fit/nearest.py); a dense model gets layer offload (``-ngl``) too."""
    with pytest.raises(qwenfit.DoesNotFit) as info:
        qwenfit.check(model, quant, **kw)
    api = [(a.kind, a.quant, a.context, a.sequences, a.command) for a in info.value.alternatives]
    argv = ["check", model, "--quant", quant, "--json", "--context", str(kw["context"])]
    flags = (("--gpu", "hardware"), ("--vram", "vram_gb"), ("--ram", "ram_gb"), ("--engine", "engine"),
             ("--sequences", "sequences"), ("--tp", "tp"))  # fmt: skip
    for flag, key in flags:
        if key in kw:
            argv += [flag, str(kw[key])]
    r = cli(*argv)
    assert r.code == 1
    shown = [
        (a["kind"], a["quant"], a["context"], a["sequences"], a["command"])
        for a in json.loads(r.out)["alternatives"]
    ]
    assert api == shown and api
    if model == "27B" and quant == "Q8_0":
        assert any(a.kind == "offload" and a.placement.n_gpu_layers for a in info.value.alternatives)
