"""benchmarks/speed/measurements: a decode figure its source flags as a fault of that board or build
(``decode_flagged_by_source``, the source's words) is neither fitted nor scored; the others are."""

from __future__ import annotations

from pathlib import Path

import yaml

from benchmarks.speed.fit import features, fit

MEASUREMENTS = Path(__file__).resolve().parents[2] / "benchmarks" / "speed" / "measurements"


def _rows(name: str) -> dict[str, features.Row]:
    doc = yaml.safe_load((MEASUREMENTS / name).read_text())
    return {rec["id"]: features.build_row(rec, doc["source"]) for rec in doc["records"]}


def test_flagged_decode_figures_are_neither_fitted_nor_scored() -> None:
    rows = _rows("club3090-oven1231231234.yaml")
    phb, nvlink = (
        rows["club3090-oven-27b-vllm-dual-phb-2x3090"],
        rows["club3090-oven-27b-vllm-dual-nvlink-2x3090"],
    )
    assert phb.decode == 43.15 and "decode_flagged_by_source" in phb.skip_decode
    assert not fit.decode_target(phb)
    assert nvlink.skip_decode == "" and fit.decode_target(nvlink)  # same rig, not flagged: scored


def test_every_flag_quotes_its_source() -> None:
    flagged = []
    for path in sorted(MEASUREMENTS.glob("*.yaml")):
        for rec in yaml.safe_load(path.read_text())["records"]:
            if rec.get("decode_flagged_by_source"):
                flagged.append(rec["id"])
                assert len(rec["decode_flagged_by_source"]) > 100, rec[
                    "id"
                ]  # the source's words, not a label
                assert rec["decode_tokens_per_s"] is not None  # the number stays as published
    assert flagged == [
        "club3090-noong-35b-vllm-preview-mtp3-2x3090",
        "club3090-oven-27b-vllm-dual-phb-2x3090",
    ]


def test_acceptance_measured_on_another_prompt_is_not_the_rows() -> None:
    """club-3090 bench.sh prints the last SpecDecoding log windows after the code runs: a record whose
    published acceptance its source's method ties to another prompt takes the fitted acceptance; one
    that says its acceptance is the narrative prompt's keeps it."""
    v024 = _rows("club3090-noonghunna.yaml")["club3090-noong-27b-vllm-dual-v024-2x3090"]
    assert v024.mtp_n == 3 and v024.mtp_e is None
    assert any("code prompt" in a for a in v024.assumed)
    lauri = _rows("club3090-laurimyllari.yaml")["club3090-laurimyllari-27b-vllm-longtext-4090"]
    assert lauri.mtp_e is not None and 3.3 < lauri.mtp_e < 3.5  # "AL 3.34-3.45 narr"
    marked = []
    for path in sorted(MEASUREMENTS.glob("*.yaml")):
        for rec in yaml.safe_load(path.read_text())["records"]:
            mtp = rec.get("mtp") or {}
            if mtp.get("acceptance_prompt"):
                marked.append(rec["id"])
                assert len(mtp["acceptance_prompt_source"]) > 100, rec["id"]  # the method, quoted
                assert mtp.get("acceptance") is not None or mtp.get("mean_accept_length") is not None
    assert sorted(marked) == [
        "club3090-guybrush01-27b-vllm-dual-2x5090",
        "club3090-internalcore2-27b-vllm-dual-2x3090",
        "club3090-noong-27b-vllm-dual-v024-2x3090",
        "club3090-ovden13-27b-vllm-dual-2x3090",
    ]
