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
