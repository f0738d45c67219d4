"""Plan mode's -ngl / -ts placements: their weight inputs are not exported one by one but computed
(qwenfit.export_plan.layers_env; the page's layersEnv is the same) from each quantization's layer
tables (layer_tables). They must be what the planner's own inputs (plan_env) are, to the byte."""

from __future__ import annotations

import pytest

from qwenfit.export_plan import _artifact, _extra_placements, layer_tables, layers_env, plan_env


@pytest.mark.parametrize(("model", "quant"), [("0.8B", "Q4_K_M"), ("35B-A3B", "UD-Q4_K_XL"), ("27B", "BF16")])
def test_layer_tables_give_every_plan_placements_inputs(model: str, quant: str) -> None:
    from qwenfit.api.sources import model_source
    from qwenfit.export import calculator_engines
    from qwenfit.loaders.catalog import entries, load_catalog_model

    entry = next(e for e in entries() if e.short_name == model)
    spec = load_catalog_model(entry.name)
    engine = next(e for e in calculator_engines() if _extra_placements(spec, e))
    engine.prepare_formulas(spec)
    art = _artifact(engine, model_source(spec, entry.name), quant)
    w = engine.artifact_weights(spec, art, quant, mtp=False, vision=False)
    tables = layer_tables(spec, engine, w)
    placements = _extra_placements(spec, engine)
    assert len(placements) > 2 * spec.text.num_hidden_layers  # -ngl k on 1 and 2 GPUs (and -ts)
    for fp, p in placements:
        assert layers_env(tables, fp.key) == plan_env(spec, engine, w, fp, p), fp.key


def test_layers_env_refuses_a_placement_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="plan placement"):
        layers_env({"h": []}, "tp2")
