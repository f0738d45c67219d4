"""data/compiled.json (scripts/gen_compiled_json.py): current for the running tree, and each value it
holds equal to what the code computes (values recorded afresh for a sample of plans)."""

from __future__ import annotations

import json

import pytest

import qwenfit
from qwenfit.core.engines.llama_cpp.gpu_forms import host_input_poly
from qwenfit.core.fit import formulas, planner
from qwenfit.core.formats import compiled
from qwenfit.loaders import compiled as compiled_tables
from qwenfit.loaders.catalog import data_dir

SHIPPED = data_dir() / compiled_tables.FILE_NAME


def _fresh() -> None:
    formulas.clear_cache()
    planner.clear_caches()
    host_input_poly.cache_clear()


@pytest.fixture
def no_tables():
    _fresh()
    compiled.install(None)
    yield
    compiled_tables.install(data_dir)
    _fresh()


def test_the_shipped_file_is_current():
    raw = json.loads(SHIPPED.read_text(encoding="utf-8").split("\n")[0])
    assert raw["sources_sha256"] == compiled_tables.sources_digest(), (
        "data/compiled.json is stale: run python scripts/gen_compiled_json.py"
    )
    assert compiled_tables.table("Qwen3.5-35B-A3B") is not None


def _recorded(**plan_kwargs):
    _fresh()
    compiled.recording(True)
    try:
        qwenfit.plan(**plan_kwargs)
        return compiled.recording(False)
    finally:
        compiled.recording(False)
        _fresh()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(model="35B-A3B", vram_gb=24, ram_gb=64),
        dict(model="27B", vram_gb=12, ram_gb=32),  # -ngl offload: inputs per layer count
        dict(model="397B-A17B", vram_gb=80, ram_gb=256),
        dict(model="9B", ram_gb=64),  # CPU only
    ],
)
def test_stored_values_equal_fresh_computation(kwargs):
    recorded = _recorded(**kwargs)
    checked = 0
    for model, kinds in recorded.items():
        for kind, values in kinds.items():
            for key, value in values.items():
                stored = compiled.lookup(model, kind, key)
                assert stored is not compiled.MISSING, (model, kind, key)
                if kind == "inputs" and "gguf:tensors" in value:
                    assert stored["gguf:tensors"] == compiled_tables.TENSOR_TABLE
                    value = {**value, "gguf:tensors": compiled_tables.TENSOR_TABLE}
                assert stored == value, (model, kind, key)  # lists stay lists: == tells a tuple apart
                checked += 1
    assert checked > 10


@pytest.mark.parametrize("model", ["35B-A3B", "27B"])
def test_plans_are_the_same_without_the_tables(model, no_tables):
    computed = qwenfit.plan(model, vram_gb=16, ram_gb=32)
    compiled_tables.install(data_dir)
    _fresh()
    assert compiled_tables.table(computed.options[0].model) is not None
    assert qwenfit.plan(model, vram_gb=16, ram_gb=32) == computed


@pytest.mark.parametrize("stale", [False, True])
def test_a_stale_file_is_ignored(stale, tmp_path, monkeypatch):
    """The same catalog in another folder: its file is used as long as its digest is the sources'."""
    import shutil

    shutil.copytree(data_dir() / "models", tmp_path / "models")
    for name in ("artifacts.json", "quants.json"):
        shutil.copy(data_dir() / name, tmp_path / name)
    header, *lines = SHIPPED.read_text(encoding="utf-8").split("\n")
    if stale:
        header = json.dumps({**json.loads(header), "sources_sha256": "0" * 64})
    (tmp_path / compiled_tables.FILE_NAME).write_text("\n".join([header, *lines]), encoding="utf-8")
    monkeypatch.setattr(compiled_tables, "_catalog_dir", lambda: tmp_path)
    compiled_tables.clear_cache()
    try:
        assert (compiled_tables.table("Qwen3.5-35B-A3B") is None) == stale
    finally:
        monkeypatch.undo()
        compiled_tables.clear_cache()


def test_a_catalog_of_ones_own_gets_no_tables(monkeypatch, tmp_path):
    (tmp_path / "models").mkdir()
    monkeypatch.setenv("QWENFIT_DATA_DIR", str(tmp_path))
    assert compiled_tables.table("Qwen3.5-35B-A3B") is None


@pytest.mark.parametrize(
    ("model", "quant"), [("35B-A3B", "Q4_K_M"), ("27B", "IQ2_XXS"), ("397B-A17B", "Q8_0")]
)
def test_weight_maps_from_stored_types_equal_computed(model, quant, no_tables, monkeypatch):
    """llama-quantize's types stored per catalog model and quant give the computed weight map, tensor
    order and bytes included."""
    from qwenfit.core.formats import weights
    from qwenfit.core.formats.weights import gguf_weights
    from qwenfit.loaders import load

    spec = load(model)
    computed = gguf_weights(spec, quant, mtp=False)
    compiled_tables.install(data_dir)
    monkeypatch.setattr(weights, "choose_types", None)  # the stored types, or a TypeError
    assert gguf_weights(spec, quant, mtp=False) == computed


def test_a_source_edited_after_the_stamp_is_seen(tmp_path):
    from qwenfit.loaders.stamps import stamp_path, verified

    source, made = tmp_path / "a.py", tmp_path / "made.json"
    source.write_text("x = 1\n")
    made.write_text("{}\n")
    calls = []

    def digest() -> str:
        calls.append(1)
        return "d1" if source.read_text() == "x = 1\n" else "d2"

    assert verified(made, "d1", [source], digest) and len(calls) == 1
    assert stamp_path(made).exists()
    assert verified(made, "d1", [source], digest) and len(calls) == 1  # the stamp: not hashed again
    source.write_text("x = 22\n")  # another size (and mtime)
    assert not verified(made, "d1", [source], digest) and len(calls) == 2
    (tmp_path / "b.py").write_text("")
    source.write_text("x = 1\n")
    assert verified(made, "d1", [source, tmp_path / "b.py"], digest) and len(calls) == 3  # a new source


@pytest.mark.parametrize(
    ("vram_gb", "context", "options"),
    [
        (24, 32768, {}),  # fits
        (24, None, {}),  # does not fit: the alternatives searched
        (8, 32768, {"flash_attention": False, "n_cpu_moe": 20}),  # the exact replay reads the tensor table
    ],
    ids=["fits", "does-not-fit", "replay"],
)
def test_a_check_reading_precompiled_inputs_answers_as_computed(vram_gb, context, options, no_tables):
    """check_result reads the catalog model's inputs from the tables instead of computing its weights;
    where the exact replay needs what they leave out (the GGUF's tensor table) it computes them."""
    from qwenfit.api.memory import check_result
    from qwenfit.api.resolve import prepare
    from qwenfit.loaders.hardware import custom_machine

    machine = custom_machine(vram_gb=vram_gb, ram_gb=64)
    computed = check_result("35B-A3B", "Q4_K_M", context=context, hardware=machine, **options)
    compiled_tables.install(data_dir)
    _fresh()
    p = prepare(
        "35B-A3B", "Q4_K_M", context=context, engine="llama.cpp", kv_cache=None, sequences=1, mtp=False,
        vision=None, backend=None, n_gpus=None, hardware=machine, vram_gb=None, ram_gb=None,
        wired_limit_mb=None, options=options, precompiled=True,
    )  # fmt: skip
    assert p.inputs["gguf:tensors"] == compiled_tables.TENSOR_TABLE  # read from the tables
    assert check_result("35B-A3B", "Q4_K_M", context=context, hardware=machine, **options) == computed
