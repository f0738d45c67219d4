"""ARCHITECTURE.md, "add a model": a config.json with a ``_qwenfit`` record in ``data/models`` works
everywhere — load, estimate, plan, and the calculator export — with no regeneration step (the
compute buffer's closed forms are derived from the allocator replay when none is stored)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import qwenfit
from qwenfit.export import calculator_json, evaluate_config, evaluate_export
from qwenfit.loaders import catalog

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "fixtures" / "tiny" / "moe-vision-mtp" / "config.json"


@pytest.fixture
def new_catalog(tmp_path, monkeypatch):
    """A data directory holding one new model (a tiny Qwen3.5-MoE config no stored tree covers)."""
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    for name in ("hardware.yaml", "hardware.json", "quants.yaml"):
        shutil.copy(REPO / "data" / name, data / name)
    config = json.loads(TINY.read_text())
    config["_qwenfit"] = {
        "name": "Qwen3.5-Tiny-A1M",
        "aliases": ["tiny-a1m"],
        "repo_ids": ["example/Qwen3.5-Tiny-A1M"],
        "source": "tests/fixtures/tiny/moe-vision-mtp/config.json",
    }
    (data / "models" / "Qwen3.5-Tiny-A1M.json").write_text(json.dumps(config))
    monkeypatch.setenv("QWENFIT_DATA_DIR", str(data))
    catalog.clear_caches()
    calculator_json.cache_clear()
    yield "Qwen3.5-Tiny-A1M"
    monkeypatch.delenv("QWENFIT_DATA_DIR")
    catalog.clear_caches()
    calculator_json.cache_clear()


@pytest.mark.slow
def test_a_new_catalog_model_works_everywhere(new_catalog):
    from qwenfit.core.engines.llama_cpp.compute import Structure, compute_tree

    spec = qwenfit.load("tiny-a1m")
    assert spec.name == new_catalog
    assert (
        compute_tree(spec, Structure(flash_attn=True, k="0", v="0", n_ubatch=512)) is None
    )  # nothing stored
    e = qwenfit.estimate("tiny-a1m", "Q8_0", context=4096, vram_gb=8)
    assert e.fits and e.term("compute_buffer") > 0
    assert qwenfit.plan("tiny-a1m", vram_gb=8, ram_gb=16).best is not None
    data = json.loads(json.dumps(calculator_json()))  # derives the closed forms it needs
    assert list(data["models"]) == ["tiny-a1m"]
    assert {f["engine"] for f in data["formulas"]} >= {"llama.cpp", "vllm", "sglang", "mlx"}
    # its rows hold 2 x 24 KV values: llama.cpp's q8_0 / q4_0 blocks of 32 do not fit,
    # so no formula offers them
    assert {f["kv_cache"] for f in data["formulas"] if f["engine"] == "llama.cpp"} == {"f16"}
    with pytest.raises(qwenfit.SettingError, match="whole 32-value blocks"):
        qwenfit.estimate("tiny-a1m", "Q8_0", context=4096, kv_cache="q8_0")
    for cfg in (
        {"engine": "llama.cpp", "quant": "Q8_0", "kv": "f16", "placement": "gpu1", "ctx": 8192, "seqs": 3},
        {
            "engine": "llama.cpp",
            "quant": "Q4_K_M",
            "kv": "f16",
            "placement": "gpu2",
            "ctx": 100000,
            "seqs": 1,
        },
        {"engine": "vllm", "quant": "bf16", "kv": "auto", "placement": "tp2", "ctx": 65536, "seqs": 4},
    ):
        n_cpu_moe = 1 if cfg["placement"] == "gpu1" else 0
        machine = {"hardware": "rtx-4090", "vram_gb": 24, "ram_gb": 64}
        full = {"model": "tiny-a1m", "n_cpu_moe": n_cpu_moe, **machine, **cfg}
        assert evaluate_export(data, full) == evaluate_config(full), cfg
