"""benchmarks/speed/fit/features: a calibration row with every routed expert in host RAM reads its GPU / RAM
byte split from the llama.cpp load log its source quotes (the CUDA0 buffer is read every token, the file
minus the CUDA0 and CUDA_Host buffers holds the routed experts, k/E of them read per token), and every MoE
layer counts as an offloaded layer."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmarks.speed.fit import features, model

MEASUREMENTS = Path(__file__).resolve().parents[2] / "benchmarks" / "speed" / "measurements"
MIB, GIB = 2**20, 2**30


def _rows(name: str) -> dict[str, features.Row]:
    doc = yaml.safe_load((MEASUREMENTS / name).read_text())
    return {rec["id"]: features.build_row(rec, doc["source"]) for rec in doc["records"]}


def test_the_quoted_load_log_splits_the_file_between_gpu_and_ram() -> None:
    r = _rows("ikllama-d258-sousekd-epyc9355.yaml")["ikllama-d258-sousekd-4090-v3-iq4kr4"]
    # quoted: model size = 386.183 GiB, CUDA_Host 938.98 MiB, CPU 376768.00 MiB, CUDA0 17744.02 MiB
    assert r.dense_gpu == pytest.approx(17744.02 * MIB)
    assert r.resident_cpu == pytest.approx(386.183 * GIB - (17744.02 + 938.98) * MIB)
    assert r.resident_cpu == pytest.approx(376768.00 * MIB, rel=1e-3)  # the log's own CPU buffer
    assert r.expert_cpu == pytest.approx(r.resident_cpu * 8 / 256) and r.expert_gpu == 0.0
    assert (r.n_offloaded_layers, r.n_moe, r.n_dense) == (58, 58, 3)
    assert r.category == "CPU-expert offload" and r.calibration and r.host_cores == 30


def test_a_smaller_expert_file_reads_fewer_ram_bytes_and_decodes_faster() -> None:
    rows = _rows("ikllama-d258-sousekd-epyc9355.yaml")
    iq2, iq4 = rows["ikllama-d258-sousekd-4090-v3-iq2kr4"], rows["ikllama-d258-sousekd-4090-v3-iq4kr4"]
    assert iq2.dense_gpu == iq4.dense_gpu and iq2.expert_cpu < 0.6 * iq4.expert_cpu
    k = {name: p[0] for name, p in model.PRIORS.items()}
    assert model.decode_tokens_per_s(iq2, k) > model.decode_tokens_per_s(iq4, k)
    assert iq2.decode > iq4.decode  # as measured: 17.98 and 15.07 tok/s


def test_a_row_without_its_own_file_size_uses_the_noted_one() -> None:
    r = _rows("ikllama-d258-cmoncure-epyc9175f.yaml")["ikllama-d258-cmoncure-6000ada-v3-iq4kr4"]
    assert "assumed_file_bytes: assumed_file_gib in the notes" in r.assumed
    assert r.resident_cpu + r.resident_gpu == pytest.approx(386.183 * GIB)
    assert r.host_peak_gbps == pytest.approx(460.8) and r.host_cores == 16
