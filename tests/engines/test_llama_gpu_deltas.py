"""The precomputed closed-form GPU deltas (qwenfit/core/engines/llama_cpp/gpu_deltas.py, written by
scripts/llama_gpu_deltas.py) are what the scheduler replay gives, and cover every catalog model's stored
structure on 1..8 GPUs (a stale or incomplete table fails here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from qwenfit.core.engines.llama_cpp import terms
from qwenfit.core.engines.llama_cpp.compute import model_key, stored
from qwenfit.core.engines.llama_cpp.gpu_deltas import DATA_JSON
from qwenfit.loaders.catalog import load_catalog_model, names

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "llama_gpu_deltas.py"


def _script():
    spec = importlib.util.spec_from_file_location("llama_gpu_deltas", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["llama_gpu_deltas"] = mod
    spec.loader.exec_module(mod)
    return mod


TABLE = json.loads(DATA_JSON)


def test_the_table_covers_every_stored_structure():
    for name in names():
        key = model_key(load_catalog_model(name))
        for st_key in stored()["trees"].get(key, {}):
            for backend in terms.DELTA_BACKENDS:
                got = TABLE[key][f"{backend}:{st_key}" if backend != "cuda" else st_key]
                assert [str(n) for n in range(1, 9)] == sorted(got, key=int), (name, backend, st_key)


@pytest.mark.parametrize(("model", "n_gpus"), [("9B", 1), ("35B-A3B", 2), ("27B", 3)])
def test_the_table_is_what_the_replay_gives(model, n_gpus):
    script = _script()
    spec = load_catalog_model({"9B": "Qwen3.5-9B", "35B-A3B": "Qwen3.5-35B-A3B", "27B": "Qwen3.5-27B"}[model])
    for key, by_n in TABLE[model_key(spec)].items():
        backend, st = script.backend_structure_of(key)
        assert list(terms.replay_gpu_delta(spec, st, n_gpus, backend)) == by_n[str(n_gpus)], (model, key)
        assert terms._gpu_delta(spec, st, n_gpus, backend) == tuple(by_n[str(n_gpus)])
