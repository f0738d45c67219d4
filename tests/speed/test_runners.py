"""Which engine a measurement ran, where the engine's name hides it: Ollama's three runners (its CGO
engine before v0.30, llama-server from v0.30 / PR #16031, its MLX engine) and MTP drafting on MLX, which
qwenfit's mlx engine (mlx-lm) cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import qwenfit
from benchmarks.speed.fit import features, fit, model
from qwenfit.core.engines.base import get
from qwenfit.core.fit import speed, speed_fitted
from qwenfit.errors import SettingError

MEASUREMENTS = Path(__file__).resolve().parents[2] / "benchmarks" / "speed" / "measurements"


def _rows(name: str) -> dict[str, features.Row]:
    doc = yaml.safe_load((MEASUREMENTS / name).read_text())
    return {rec["id"]: features.build_row(rec, doc["source"]) for rec in doc["records"]}


def _rec(**kw: object) -> dict[str, object]:
    return {"id": "r", "backend": "metal", "engine_version": None, **kw}


def test_ollama_runner_from_version_backend_and_date() -> None:
    src = {"id": "s", "date": "2026-03-31"}
    assert features._ollama_runner(_rec(backend="mlx"), src)[0] == "mlx"
    assert (
        features._ollama_runner(_rec(engine_version="ollama_v30_rc31 (llama-server engine)"), src)[0]
        == "llama-server"
    )
    assert features._ollama_runner(_rec(engine_version="ollama_v24"), src)[0] == "cgo"
    assert features._ollama_runner(_rec(engine_version="0.18"), src)[0] == "cgo"
    assert features._ollama_runner(_rec(engine_version="0.30.7"), src)[0] == "llama-server"
    assert features._ollama_runner(_rec(), src)[0] == "cgo"  # unversioned, before v0.30
    assert features._ollama_runner(_rec(), {"id": "s", "date": "2026-08-17"})[0] == "llama-server"
    with pytest.raises(ValueError, match="runner unknown"):  # between the last rc and the release
        features._ollama_runner(_rec(), {"id": "s", "date": "2026-06-01"})


def test_each_ollama_runner_reads_its_engines_constants() -> None:
    rows = _rows("ollama-pr16031-sharki13.yaml")
    cgo, server = rows["ollama-pr16031-m5max-36-27b-v24-q8"], rows["ollama-pr16031-m5max-36-27b-v30-q8"]
    mlx = rows["ollama-pr16031-m5max-36-27b-v30-mxfp8"]
    assert (cgo.runner, server.runner, mlx.runner) == ("cgo", "llama-server", "mlx")
    used = {r.runner: model.constants_used(r) for r in (cgo, server, mlx)}
    assert {"layer_us.ollama-cgo/metal", "kv_factor.ollama-cgo/metal"} <= used["cgo"]
    assert {"layer_us.llama.cpp/metal", "kv_factor.llama.cpp"} <= used["llama-server"]
    assert {"layer_us.mlx-swift", "kv_factor.mlx", "eta_k.mlx"} <= used["mlx"]
    for names in used.values():
        assert "step_us.ollama" in names  # Ollama's server in front of each runner
    assert not any("ollama-cgo" in n for n in used["llama-server"] | used["mlx"])


def test_shipped_ollama_is_llama_server_not_the_cgo_engine() -> None:
    """qwenfit plans Ollama >= 0.30 (llama-server): its per-layer and KV costs are llama.cpp's, its step
    Ollama's; the CGO engine's constants are never looked up."""
    for backend in ("metal", "cuda"):
        k = speed._resolve(get("ollama").speed, backend, None)
        c = speed_fitted.CONSTANTS
        assert k.layer_us == c[f"layer_us.llama.cpp/{backend}"]
        assert k.kv_factor == c["kv_factor.llama.cpp"]
        assert k.step_us == c["step_us.ollama"]
    assert not any(n.startswith(("layer_us.ollama/", "kv_factor.ollama/")) for n in speed_fitted.CONSTANTS)


def test_mtp_on_mlx_is_neither_fitted_nor_scored() -> None:
    rows = _rows("vllm-mlx-pr82-janhilgard.yaml")
    assert rows and all("MTP on MLX" in r.skip_decode and not fit.decode_target(r) for r in rows.values())


def test_mlx_lm_rejects_mtp() -> None:
    with pytest.raises(SettingError, match="does not draft with the MTP layer"):
        qwenfit.estimate("Qwen3.5-9B", engine="mlx", hardware="m4-16", mtp=True)
    plan = qwenfit.plan(
        "Qwen3-Next-80B-A3B", hardware="m3-ultra-256", engines=["mlx"], mtp=True, quants=["mlx-4bit"]
    )
    assert (
        plan.best is None
        and plan.rejected
        and all("does not draft with the MTP layer" in o.reason for o in plan.rejected)
    )
    assert qwenfit.estimate(
        "Qwen3.5-9B", engine="mlx", hardware="m4-16"
    ).decode_tokens_per_s  # without MTP: fine
