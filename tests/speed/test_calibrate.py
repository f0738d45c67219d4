"""``qwenfit calibrate`` on recorded tool outputs (tests/speed/recordings/README.md says where each
comes from): parsing, the fit, storage in the config directory, and plan()/estimate() using the
constants labelled "calibrated"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import qwenfit
from qwenfit.core.fit.speed import Rate, decode_speed, rate_constants, shape_of, use_calibration
from qwenfit.core.formats.reads import decode_read_bytes
from qwenfit.loaders import calibration as cal
from qwenfit.loaders.hardware import parse_machine

REC = Path(__file__).resolve().parent / "recordings"
STRIX_27B = REC / "llama-bench-strix-halo-rocm-qwen36-27b-q8.md.txt"


@pytest.fixture(autouse=True)
def _config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWENFIT_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv("QWENFIT_CALIBRATION", raising=False)
    use_calibration({})
    yield
    use_calibration({})


def _facts_27b_q8() -> cal.ModelFacts:
    spec = qwenfit.load("27B")
    read = decode_read_bytes(spec, qwenfit.weights(spec, "Q8_0"))
    return cal.ModelFacts(read["gpu"] + read["cpu"], shape_of(spec).matmul_params, 64, False, "27B Q8_0")


def test_llama_bench_markdown_rows() -> None:
    rows = cal.parse_llama_bench(STRIX_27B.read_text())
    assert [(r.test, r.tokens, r.depth, r.tokens_per_s, r.backend) for r in rows] == [
        ("pp", 512, 0, 367.47, "rocm"),
        ("tg", 128, 0, 6.51, "rocm"),
    ]
    moe = cal.parse_llama_bench((REC / "llama-bench-strix-halo-vulkan-qwen35-122b-q5.md.txt").read_text())
    assert [(r.test, r.tokens_per_s, r.backend) for r in moe] == [
        ("pp", 308.78, "vulkan"),
        ("tg", 22.3, "vulkan"),
    ]


def test_mlx_verbose_rows() -> None:
    rows = cal.parse_mlx_verbose((REC / "mlx-lm-generate-verbose-m2-max-qwen35-9b.txt").read_text())
    assert [(r.test, r.tokens, r.tokens_per_s) for r in rows] == [("pp", 512, 378.32), ("tg", 128, 63.503)]


def test_no_rows_is_a_usage_error() -> None:
    with pytest.raises(qwenfit.errors.UsageError):
        cal.parse_llama_bench("llama-bench: error: failed to load model")
    with pytest.raises(qwenfit.errors.UsageError):
        cal.parse_mlx_verbose("no numbers here")


def test_fit_reproduces_the_measurement_and_plan_uses_it() -> None:
    rows = cal.parse_llama_bench(STRIX_27B.read_text())
    machine = parse_machine("strix-halo-128")
    facts = _facts_27b_q8()
    result = cal.fit_constants(rows, facts, machine, "llama.cpp", "rocm", tool="llama-bench")
    assert set(result.constants) == {
        "eta_k.llama.cpp/rocm@strix-halo-128",
        "eta_c.llama.cpp/rocm@strix-halo-128",
    }
    path = cal.save(result)
    assert (
        path.parent == Path(cal.config_dir())
        and json.loads(path.read_text())["entries"][0]["tool"] == "llama-bench"
    )
    assert cal.load() == result.constants
    cal.activate(force=True)
    k = rate_constants(machine=machine, engine="llama.cpp", backend="rocm")
    assert k is not None
    spec = qwenfit.load("27B")
    tg = decode_speed(
        shape_of(spec), k, w_gpu=facts.read_bytes, w_cpu=0, kv_gpu=0, kv_cpu=0, st_gpu=0, st_cpu=0
    )
    assert tg == pytest.approx(6.51, rel=0.01)
    e = qwenfit.estimate(
        "27B", "Q8_0", engine="llama.cpp", context=8192, hardware="strix-halo-128", backend="rocm"
    )
    assert isinstance(e.decode_tokens_per_s, Rate) and e.decode_tokens_per_s.label == "calibrated"
    other = qwenfit.estimate("27B", "Q8_0", engine="llama.cpp", context=8192, hardware="strix-halo-128",
                             backend="vulkan")  # fmt: skip
    assert isinstance(other.decode_tokens_per_s, Rate) and other.decode_tokens_per_s.label == "estimated"


def test_calibration_off_and_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = cal.parse_llama_bench(STRIX_27B.read_text())
    cal.save(cal.fit_constants(rows, _facts_27b_q8(), parse_machine("strix-halo-128"), "llama.cpp", "rocm",
                               tool="llama-bench"))  # fmt: skip
    assert cal.load()
    monkeypatch.setenv("QWENFIT_CALIBRATION", "off")
    assert cal.load() == {}


def test_gguf_facts_match_qwenfits_reads(tmp_path: Path) -> None:
    from builders import gguf_of, write_gguf

    spec = qwenfit.load("0.8B")
    arch, meta, tensors = gguf_of(spec)
    path = write_gguf(tmp_path / "m.gguf", arch, meta, tensors)
    facts = cal.gguf_facts(path)
    assert facts.n_layers == spec.text.num_hidden_layers and not facts.moe
    assert facts.matmul_params == pytest.approx(shape_of(spec).matmul_params, rel=0.01)
    want = decode_read_bytes(spec, qwenfit.weights(spec, "BF16", mtp=False))
    assert facts.read_bytes == pytest.approx(want["gpu"] + want["cpu"], rel=0.02)


def test_cli_calibrate_from_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from builders import gguf_of, write_gguf

    from qwenfit.cli import main

    spec = qwenfit.load("0.8B")
    arch, meta, tensors = gguf_of(spec)
    gguf = write_gguf(tmp_path / "m.gguf", arch, meta, tensors)
    code = main(
        ["calibrate", "--from-output", str(STRIX_27B), "--gguf", str(gguf), "--gpu", "strix-halo-128"]
    )
    out = capsys.readouterr().out
    assert code == 0 and "eta_" in out and "stored in" in out
    assert cal.calibration_path().is_file()
    assert main(["calibrate", "--reset"]) == 0 and not cal.calibration_path().exists()


def test_mlx_directory_facts_and_fit(tmp_path: Path) -> None:
    """An MLX model directory (config.json + safetensors headers; 4-bit packed U32 weights) and the
    mlx_lm recording: the device's MLX constants are fitted and stored under its id."""
    import struct

    d = tmp_path / "mlx-model"
    d.mkdir()
    cfg = {"num_hidden_layers": 2, "num_experts": 4, "num_experts_per_tok": 1, "quantization": {"bits": 4}}
    (d / "config.json").write_text(json.dumps(cfg))
    tensors = {  # name: (dtype, shape, bytes)
        "model.embed_tokens.weight": ("U32", [1000, 64], 256_000),
        "model.layers.0.self_attn.q_proj.weight": ("U32", [512, 64], 131_072),
        "model.layers.0.mlp.switch_mlp.up_proj.weight": ("U32", [4, 512, 64], 524_288),
        "lm_head.weight": ("U32", [1000, 64], 256_000),
    }
    header, off = {}, 0
    for name, (dt, shape, n) in tensors.items():
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        off += n
    raw = json.dumps(header).encode()
    (d / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(off))
    facts = cal.mlx_facts(d)
    assert facts.read_bytes == 256_000 // 1000 + 131_072 + 524_288 // 4 + 256_000
    assert facts.matmul_params == (512 * 64 + 4 * 512 * 64 // 4) * 8 and facts.moe
    rows = cal.parse_mlx_verbose((REC / "mlx-lm-generate-verbose-m2-max-qwen35-9b.txt").read_text())
    result = cal.fit_constants(rows, facts, parse_machine("m2-max-32"), "mlx", "metal", tool="mlx")
    assert result.constants and all(k.endswith("mlx/metal@m2-max-32") for k in result.constants)
