"""data/quants.yaml: a quality record for every quantization qwenfit plans, ranks that agree with
the published KLD they cite, and a loader that rejects malformed records by name."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import pytest

from qwenfit.core.formats.gguf import FILE_TYPES
from qwenfit.core.formats.gpu import FORMATS
from qwenfit.core.formats.quality import QuantQuality
from qwenfit.errors import QwenfitError
from qwenfit.loaders.quants import (
    QuantDataError,
    UnknownQuantError,
    load_quant_quality,
    quality_key,
    quant_quality,
    resolve_quant_name,
)

UNQUANTIZED = ("BF16", "F16", "F32", "bf16", "fp16")


@pytest.fixture(scope="module")
def records() -> dict[str, QuantQuality]:
    return quant_quality()


def test_every_file_type_and_format_has_a_record(records: dict[str, QuantQuality]) -> None:
    missing = [name for name in (*FILE_TYPES, *FORMATS) if name not in records]
    assert not missing, f"no quality record for {missing}"
    extra = sorted(set(records) - set(FILE_TYPES) - set(FORMATS))
    assert not extra, f"quality records for quantizations qwenfit does not plan: {extra}"


def test_families_match_the_name(records: dict[str, QuantQuality]) -> None:
    for name in FILE_TYPES:
        assert records[name].family == "gguf", name
    for name in FORMATS:
        assert records[name].family == ("mlx" if name.startswith("mlx-") else "gpu"), name
        assert records[name].name == name


def test_ranks_agree_with_published_kld_on_the_same_model(records: dict[str, QuantQuality]) -> None:
    measured = [r for r in records.values() if r.kld is not None]
    assert len({r.measured_on for r in measured}) >= 2  # Llama-3-8B sweep and Qwen3.6 runs
    for a, b in itertools.permutations(measured, 2):
        if a.measured_on == b.measured_on and a.kld is not None and b.kld is not None and a.kld < b.kld:
            assert a.quality_rank <= b.quality_rank, (
                f"{a.name} (KLD {a.kld}) ranks {a.quality_rank}, worse than {b.name} "
                f"(KLD {b.kld}) at {b.quality_rank}, both on {a.measured_on}"
            )


def test_unquantized_rank_best(records: dict[str, QuantQuality]) -> None:
    for name in UNQUANTIZED:
        assert records[name].quality_rank == 1, name
    quantized = [r for name, r in records.items() if name not in UNQUANTIZED]
    assert min(r.quality_rank for r in quantized) > 1


def test_published_records_name_their_model_and_others_say_how_they_were_placed(
    records: dict[str, QuantQuality],
) -> None:
    for r in records.values():
        assert r.source.strip(), r.name
        if r.kld is not None or r.ppl_delta_pct is not None:
            assert r.published and r.measured_on, r.name
        if not r.published:
            assert r.basis.startswith(("ordered by bits per weight", "same as ")), r.name
    # the Qwen3.5/3.6 measurements are used where a standard file was measured
    assert "Qwen3.6-27B" in (records["Q4_0"].measured_on or "")
    assert "Qwen3.6-27B" in (records["Q3_K_M"].measured_on or "")


def test_more_bits_never_rank_worse_within_mlx_affine(records: dict[str, QuantQuality]) -> None:
    bits = (2, 3, 4, 5, 6, 8)
    for b in bits:
        ranks = [records[f"mlx-{b}bit-g{g}"].quality_rank for g in (32, 64, 128)]
        assert ranks == sorted(ranks), (b, ranks)
        assert records[f"mlx-{b}bit"].quality_rank == records[f"mlx-{b}bit-g64"].quality_rank
    for g in (32, 64, 128):
        ranks = [records[f"mlx-{b}bit-g{g}"].quality_rank for b in reversed(bits)]
        assert ranks == sorted(ranks), (g, ranks)


def test_known_orderings(records: dict[str, QuantQuality]) -> None:
    def rank(name: str) -> int:
        return records[name].quality_rank

    assert rank("Q8_0") < rank("Q6_K") < rank("Q5_K_M") < rank("Q4_K_M") < rank("Q3_K_M") < rank("Q2_K")
    assert rank("IQ4_XS") < rank("Q4_0")  # IQ beats legacy at similar bits (llama.cpp's table)
    assert rank("nvfp4") <= rank("nvfp4-all") < rank("mxfp4") <= rank("mxfp4-quark")
    assert rank("bnb-nf4") < rank("bnb-fp4")
    assert rank("MXFP4_MOE") == rank("mxfp4")
    assert rank("IQ1_S") < rank("Q1_0")


def test_quality_key_sorts_best_first_in_any_case() -> None:
    names = ["Q2_K", "mlx-4bit", "Q8_0", "bf16", "q4_k_m", "IQ2_XXS"]
    assert sorted(names, key=quality_key) == ["bf16", "Q8_0", "q4_k_m", "mlx-4bit", "Q2_K", "IQ2_XXS"]
    assert quality_key("q4_k_m") == quality_key("Q4_K_M") == quant_quality()["Q4_K_M"].sort_key
    assert quality_key("FP8") == quality_key("fp8")
    rank, kld = quality_key("mlx-4bit")
    assert kld == float("inf") and rank == quant_quality()["mlx-4bit"].quality_rank


def test_case_resolution_keeps_checkpoint_and_file_type_apart() -> None:
    assert resolve_quant_name("bf16") == "bf16"  # the safetensors checkpoint
    assert resolve_quant_name("BF16") == "BF16"  # the llama.cpp file type
    assert resolve_quant_name("Bf16") == "BF16"  # as qwenfit.weights() resolves it
    assert resolve_quant_name("mxfp4_moe") == "MXFP4_MOE"
    assert resolve_quant_name("MXFP4") == "mxfp4"
    assert resolve_quant_name(" MLX-4BIT-G32 ") == "mlx-4bit-g32"
    with pytest.raises(UnknownQuantError, match=r"Q4_K_X") as info:
        quality_key("Q4_K_X")
    assert isinstance(info.value, LookupError) and isinstance(info.value, QwenfitError)


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "quants.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


GOOD = """\
    quants:
      - name: Q8_0
        family: gguf
        quality_rank: 2
        kld: 0.001355
        ppl_delta_pct: 0.04
        measured_on: Llama-3-8B
        basis: "published: KLD"
        source: https://example.org/table
      - name: Q4_K_M
        family: gguf
        quality_rank: 10
        basis: ordered by bits per weight
        source: https://example.org/bpw
"""


def test_a_valid_file_loads(tmp_path: Path) -> None:
    loaded = load_quant_quality(_write(tmp_path, GOOD))
    assert loaded["Q8_0"] == QuantQuality(
        name="Q8_0", family="gguf", quality_rank=2, kld=0.001355, ppl_delta_pct=0.04,
        measured_on="Llama-3-8B", basis="published: KLD", source="https://example.org/table",
    )  # fmt: skip
    assert loaded["Q4_K_M"].kld is None and loaded["Q4_K_M"].notes == ""


def test_a_typo_in_a_key_is_rejected_naming_the_record(tmp_path: Path) -> None:
    bpw_source = "source: https://example.org/bpw"
    typo = GOOD.replace(bpw_source, f"{bpw_source}\n        kdl: 0.03")
    path = _write(tmp_path, typo)
    with pytest.raises(QuantDataError, match=r"'Q4_K_M'.*kdl.*did you mean 'kld'") as info:
        load_quant_quality(path)
    assert isinstance(info.value, ValueError) and str(path) in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("quality_rank: 10", "quality_rank: 0", "quality_rank"),
        ("quality_rank: 10", "quality_rank: '10'", "quality_rank"),
        ("family: gguf\n        quality_rank: 10", "family: cuda\n        quality_rank: 10", "family"),
        ("basis: ordered by bits per weight", "basis: guessed", "must start with"),
        ("source: https://example.org/bpw", "source: https://example.org/bpw\n        kld: 0.1", "published"),
        ("        measured_on: Llama-3-8B\n", "", "measured_on"),
        ("name: Q4_K_M", "name: Q8_0", "duplicate"),
    ],
)
def test_malformed_records_are_rejected(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(QuantDataError, match=message):
        load_quant_quality(_write(tmp_path, GOOD.replace(old, new)))


def test_wrong_top_level_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(QuantDataError, match="top-level key 'quants'"):
        load_quant_quality(_write(tmp_path, "- name: Q8_0\n"))
    with pytest.raises(QuantDataError, match="not valid YAML"):
        load_quant_quality(_write(tmp_path, "quants: [\n"))
