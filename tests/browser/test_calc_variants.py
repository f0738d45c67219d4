"""The calculator's vision and MTP toggles: with them on, the page shows the terms, total, verdict and
launch command Python's ``qwenfit.estimate(..., vision=, mtp=)`` gives (formulas traced with the vision
tower / MTP drafting: ``qwenfit.export_plan.variants_json``, assets/calculator/variants.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import qwenfit
from qwenfit.core.hardware import Machine
from qwenfit.export import format_gb
from qwenfit.loaders.catalog import find, load_catalog_model
from qwenfit.loaders.hardware import device

pytestmark = pytest.mark.browser

CONFIGS = [
    ("35B-A3B", "llama.cpp", "Q4_K_M", "f16", "gpu1", "rtx-4090", True, False),
    ("9B", "llama.cpp", "Q8_0", "f16", "gpu1", "rtx-3060", True, False),
    ("27B", "ollama", "Q4_K_M", "f16", "gpu1", "rtx-4090", True, False),
    ("27B", "vllm", "fp8", "auto", "tp1", "h100-sxm", True, False),
    ("27B", "vllm", "fp8", "auto", "tp1", "h100-sxm", False, True),
    ("35B-A3B", "vllm", "fp8", "auto", "tp1", "h100-sxm", True, True),
    ("9B", "sglang", "bf16", "auto", "tp1", "rtx-5090", False, True),
    ("35B-A3B", "mlx", "mlx-4bit", "bf16", "unified", "m4-max-128", True, False),
]
APPLY = """(s) => { const texts = window.qwenfitCalc.apply(s); const v = window.qwenfitCalc.view;
    return {texts, state: {...window.qwenfitCalc.state}, terms: v ? v.terms.map((t) => t.name) : null,
            error: document.getElementById("qwenfit-calc").dataset.error || null}; }"""


def python_texts(*cfg: Any) -> dict[str, Any]:
    """Terms, their GB, total and verdict of (model, engine, quant, kv, placement, hardware, vision, mtp,
    ctx, ram_gb) through qwenfit.estimate."""
    model, engine, quant, kv, placement, hw, vision, mtp, ctx, ram_gb = cfg
    spec = load_catalog_model(find(model).name)  # type: ignore[union-attr]
    dev = device(hw)
    machine = Machine(name=dev.id, devices=(dev,), ram_bytes=None if dev.unified else int(ram_gb * 1e9))
    kw: dict[str, Any] = {"engine": engine, "kv_cache": kv, "sequences": 1, "vision": vision, "mtp": mtp}
    if placement.startswith("tp"):
        kw["tp"] = int(placement[2:])
    e = qwenfit.estimate(spec, quant, context=ctx, hardware=machine, **kw)
    return {
        "terms": [t.name for t in e.terms],
        "bytes": [format_gb(int(t.bytes)) for t in e.terms],
        "total": format_gb(sum(int(t.bytes) for t in e.terms)),
        "verdict": "Fits" if e.fits else "Does not fit",
    }


@pytest.fixture(scope="session")
def site_variants(site_dir: Path) -> Path:
    path = site_dir / "assets" / "calculator" / "variants.json"
    assert path.is_file()
    return path


def test_vision_and_mtp_toggles_match_python(page: Any, server: dict[str, Any], site_variants: Path) -> None:
    page.goto(f"{server['url']}/calculator/")
    page.wait_for_selector("#qwenfit-calc[data-ready]")
    changed = 0
    for model, engine, quant, kv, placement, hw, vision, mtp in CONFIGS:
        state = {
            "model": model,
            "engine": engine,
            "quant": quant,
            "kv": kv,
            "placement": placement,
            "hardware": hw,
        }
        state.update(ctx=32768, seqs=1, ram_gb=64, vision=vision, mtp=mtp)
        got = page.evaluate(APPLY, state)
        assert got["error"] is None, (state, got["error"])
        st = got["state"]
        assert (st["model"], st["engine"], st["quant"], st["vision"], st["mtp"]) == (
            model,
            engine,
            quant,
            vision,
            mtp,
        )
        want = python_texts(model, engine, quant, kv, placement, hw, vision, mtp, 32768, 64)
        page_bytes = [got["texts"][f"term:{i}"] for i in range(len(got["terms"]))]
        assert (got["terms"], page_bytes) == (want["terms"], want["bytes"]), state
        assert (got["texts"]["total"], got["texts"]["verdict"]) == (want["total"], want["verdict"]), state
        plain = python_texts(model, engine, quant, kv, placement, hw, False, False, 32768, 64)
        assert (want["terms"], want["bytes"]) != (plain["terms"], plain["bytes"]), (
            f"{state}: the toggle changes nothing"
        )
        changed += 1
    assert changed == len(CONFIGS)


def test_mtp_toggle_is_off_where_the_engine_cannot_draft(page: Any, server: dict[str, Any]) -> None:
    """mlx-lm drops the MTP weights on load (``Mlx.no_mtp``): Python rejects mtp=True and the export has no
    MTP formulas for it, so the page turns the toggle off instead of showing a plan it cannot run."""
    page.goto(f"{server['url']}/calculator/")
    page.wait_for_selector("#qwenfit-calc[data-ready]")
    state = {
        "model": "35B-A3B",
        "engine": "mlx",
        "quant": "mlx-4bit",
        "kv": "bf16",
        "placement": "unified",
        "hardware": "m4-max-128",
        "ctx": 32768,
        "seqs": 1,
        "ram_gb": 64,
        "vision": False,
        "mtp": True,
    }
    got = page.evaluate(APPLY, state)
    assert got["error"] is None and got["state"]["engine"] == "mlx" and got["state"]["mtp"] is False
    with pytest.raises(qwenfit.SettingError, match="does not draft with the MTP layer"):
        python_texts("35B-A3B", "mlx", "mlx-4bit", "bf16", "unified", "m4-max-128", False, True, 32768, 64)
