"""vllm serve (vLLM 0.33.0), SGLang 0.5.23 and mlx-lm 0.32.2 command lines, read by their argparse rules."""

from __future__ import annotations

import re

import pytest

from qwenfit.cmdline import ParsedCommand, parse_command
from qwenfit.errors import UsageError


def one(cmd: str | list[str], **kw: object) -> ParsedCommand:
    out = parse_command(cmd, **kw)  # type: ignore[arg-type]
    assert len(out) == 1
    return out[0]


# -------------------------------------------------------------------------------------------- vLLM


def test_vllm_serve_basics():
    c = one("vllm serve Qwen/Qwen3.5-27B-FP8 -tp 2 --max-model-len 65536 --gpu-memory-utilization 0.85 "
            "--kv-cache-dtype fp8 --max-num-seqs 16 --max-num-batched-tokens 8k --port 8000")  # fmt: skip
    assert (c.tool, c.engine, c.model, c.model_kind, c.quant, c.catalog) == (
        "vllm serve", "vllm", "Qwen/Qwen3.5-27B-FP8", "hf-repo", "fp8", "Qwen3.5-27B",
    )  # fmt: skip
    s = c.settings
    assert (s["tp"], s["pp"], s["dp"], s["n_gpus"], s["context"], s["kv_cache"]) == (2, 1, 1, 2, 65536, "fp8")
    assert (s["gpu_memory_utilization"], s["max_num_seqs"], s["max_num_batched_tokens"]) == (0.85, 16, 8000)
    assert c.ignored == ("--port",)


def test_vllm_equals_forms_underscores_and_abbreviations():
    c = one("vllm serve Qwen/Qwen3.5-9B --max_model_len=32k --tensor-parallel-size=2 --gpu-memory-util 0.8")
    assert (c.settings["context"], c.settings["tp"], c.settings["gpu_memory_utilization"]) == (32000, 2, 0.8)
    with pytest.raises(UsageError, match="ambiguous option: --device"):
        one("vllm serve Qwen/Qwen3.5-9B --device gcu")


def test_vllm_model_option_and_the_legacy_entrypoint():
    assert one("vllm serve -tp 2 --model Qwen/Qwen3.5-4B").model == "Qwen/Qwen3.5-4B"
    c = one("python -m vllm.entrypoints.openai.api_server --model Qwen/Qwen3.5-4B --max-model-len 8192")
    assert (c.model, c.settings["context"]) == ("Qwen/Qwen3.5-4B", 8192)


def test_vllm_max_model_len_auto_and_yarn():
    c = one("vllm serve Qwen/Qwen3.5-4B --max-model-len auto")
    assert "context" not in c.settings and any("auto" in n for n in c.notes)
    assert "context" not in one("vllm serve Qwen/Qwen3.5-4B --max-model-len -1").settings
    with pytest.raises(UsageError, match="VLLM_ALLOW_LONG_MAX_MODEL_LEN"):
        one("vllm serve Qwen/Qwen3.5-4B --max-model-len 1010000")
    yarn = ('{"text_config": {"rope_parameters": {"rope_type": "yarn", "factor": 4.0, '
            '"original_max_position_embeddings": 262144}}}')  # fmt: skip
    c = one(f"vllm serve Qwen/Qwen3.5-4B --max-model-len 1010000 --hf-overrides '{yarn}'")
    assert c.settings["context"] == 1010000
    assert one("vllm serve Qwen/Qwen3.5-4B --max-model-len 1010000",
               env={"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1"}).settings["context"] == 1010000  # fmt: skip


def test_vllm_speculative_config():
    c = one(
        """vllm serve Qwen/Qwen3.5-9B --speculative-config '{"method": "mtp", "num_speculative_tokens": 2}'"""
    )
    assert (c.settings["mtp"], c.settings["speculative_tokens"]) == (True, 2)
    c = one("vllm serve Qwen/Qwen3.5-9B --speculative-config.method qwen3_next_mtp "
            "--speculative-config.num_speculative_tokens 3")  # fmt: skip
    assert (c.settings["mtp"], c.settings["speculative_tokens"]) == (True, 3)
    with pytest.raises(UsageError, match="separate draft model"):
        one("""vllm serve Qwen/Qwen3.5-27B -sc '{"method": "dflash", "model": "z-lab/x"}'""")


def test_vllm_vision():
    assert one("vllm serve Qwen/Qwen3.5-9B").settings["vision"] is True
    assert one("vllm serve Qwen/Qwen3.5-9B --language-model-only").settings["vision"] is False
    c = one("""vllm serve Qwen/Qwen3.5-9B --limit-mm-per-prompt '{"image": 0, "video": 0}'""")
    assert c.settings["vision"] is False
    assert (
        one("""vllm serve Qwen/Qwen3.5-9B --limit-mm-per-prompt '{"image": 2}'""").settings["vision"] is True
    )


def test_vllm_switches_and_parallelism():
    c = one("vllm serve Qwen/Qwen3.5-397B-A17B-FP8 -dp 8 -ep --no-enable-prefix-caching --enforce-eager")
    s = c.settings
    assert (s["dp"], s["n_gpus"], s["expert_parallel"], s["prefix_caching"]) == (8, 8, True, False)
    assert s["enforce_eager"] is True and "--enforce-eager" not in c.ignored
    c = one('vllm serve Qwen/Qwen3.5-9B -O3 --compilation-config \'{"cudagraph_mode": "FULL"}\'')
    assert set(c.ignored) == {"--optimization-level", "--compilation-config"}
    assert any("estimate" in n for n in c.notes)
    c = one("vllm serve Qwen/Qwen3-Next-80B-A3B-Instruct -tp 4 --no-enable-chunked-prefill")
    assert c.settings["max_num_batched_tokens"] == 262144


def test_vllm_config_file(tmp_path):
    (tmp_path / "cfg.yaml").write_text(
        "tensor-parallel-size: 4\nmax-model-len: 16384\nenable-prefix-caching: false\n"
    )
    c = one("vllm serve Qwen/Qwen3.5-27B --config cfg.yaml -tp 2", cwd=str(tmp_path))
    assert (c.settings["tp"], c.settings["context"], c.settings["prefix_caching"]) == (2, 16384, False)
    with pytest.raises(UsageError, match="no such file"):
        one("vllm serve Qwen/Qwen3.5-27B --config missing.yaml", cwd=str(tmp_path))


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        ("vllm serve Qwen/Qwen3.5-9B --enforce_eager true", "unrecognized arguments: true"),
        ("vllm serve Qwen/Qwen3.5-9B --rope-scaling {}", "unrecognized arguments: --rope-scaling"),
        ("vllm serve Qwen/Qwen3.5-9B -tp", "expected one argument"),
        ("vllm serve Qwen/Qwen3.5-9B --cpu-offload-gb 4", "--cpu-offload-gb"),
        ("vllm serve Qwen/Qwen3.5-9B --kv-offloading-size 8", "--kv-offloading-size"),
        ("vllm serve Qwen/Qwen3.5-9B --dtype float32", "float32"),
        ("vllm serve Qwen/Qwen3.5-9B --gpu-memory-utilization 1.5", "must be in"),
        ("vllm serve ... --tool-call-parser hermes", "placeholder"),
        ("vllm serve <PATH>/model", "placeholder"),
        ("vllm serve --served-model-name x --port 1", "first positional argument"),
    ],
)
def test_vllm_refusals(cmd, reason):
    with pytest.raises(UsageError, match=re.escape(reason)):
        one(cmd)


def test_vllm_local_directory(tmp_path):
    (tmp_path / "qwen3.6-35b-a3b-nvfp4").mkdir()
    c = one("vllm serve ./qwen3.6-35b-a3b-nvfp4", cwd=str(tmp_path))
    assert (c.model_kind, c.quant, c.catalog) == ("path", "nvfp4", "Qwen3.6-35B-A3B")
    c = one("vllm serve /elsewhere/qwen35-27b-awq --served-model-name Qwen3.5-27B-AWQ")
    assert (c.model, c.model_kind, c.quant) == ("Qwen3.5-27B", "file-name", "awq")


def test_vllm_edited_round_trips():
    c = one("vllm serve Qwen/Qwen3.5-27B-FP8 -tp 2 --max-model-len=32768 --no-enable-prefix-caching")
    for change in ({"context": 65536}, {"tp": 4}, {"prefix_caching": True}, {"vision": False},
                   {"mtp": True, "speculative_tokens": 3}, {"gpu_memory_utilization": 0.85},
                   {"max_num_seqs": 4}, {"kv_cache": "fp8"}):  # fmt: skip
        back = one(c.edited(**change))
        for key, value in change.items():
            assert back.settings[key] == value, c.edited(**change)
    assert (
        c.edited(tp=4)
        == "vllm serve Qwen/Qwen3.5-27B-FP8 -tp 4 --max-model-len=32768 --no-enable-prefix-caching"
    )


# ------------------------------------------------------------------------------------------- SGLang


def test_sglang_launch_server_and_serve():
    c = one(
        "python -m sglang.launch_server --model-path Qwen/Qwen3.5-35B-A3B --tp-size 4 --context-length "
        "65536 --mem-fraction-static 0.85 --kv-cache-dtype fp8_e4m3 --disable-radix-cache --port 8000"
    )
    s = c.settings
    assert (c.tool, c.engine, c.catalog) == ("sglang", "sglang", "Qwen3.5-35B-A3B")
    assert (s["tp"], s["context"], s["mem_fraction_static"], s["kv_cache"], s["prefix_caching"]) == (
        4, 65536, 0.85, "fp8_e4m3", False,
    )  # fmt: skip
    c = one("sglang serve Qwen/Qwen3.5-9B --tp 2 --speculative-algo NEXTN --speculative-num-draft-tokens 4")
    assert (c.model, c.settings["tp"], c.settings["mtp"], c.settings["speculative_tokens"]) == (
        "Qwen/Qwen3.5-9B", 2, True, 4,
    )  # fmt: skip


def test_sglang_refusals_and_legacy():
    with pytest.raises(UsageError, match="--chunked-prefill-size"):
        one("sglang serve --model-path Qwen/Qwen3.5-9B --chunked-prefill-size 4096")
    assert one(
        "sglang serve --model-path Qwen/Qwen3.5-9B --chunked-prefill-size 4096 --mem-fraction-static 0.8"
    )
    with pytest.raises(UsageError, match="unrecognized arguments: --tp_size"):
        one("sglang serve --model-path Qwen/Qwen3.5-9B --tp_size 2")
    with pytest.raises(UsageError, match="draft model"):
        one("sglang serve --model-path Qwen/Qwen3.5-9B --speculative-algorithm EAGLE3 "
            "--speculative-draft-model-path x/y")  # fmt: skip
    c = one("sglang serve --model-path Qwen/Qwen3.5-9B --mamba-scheduler-strategy extra_buffer")
    assert any("--mamba-radix-cache-strategy" in n for n in c.notes)
    with pytest.raises(UsageError, match="SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN"):
        one("sglang serve --model-path Qwen/Qwen3.5-9B --context-length 1000000")


def test_sglang_edited_round_trip():
    c = one("sglang serve --model-path Qwen/Qwen3.5-9B --tp 2 --context-length 32768")
    back = one(c.edited(context=65536, prefix_caching=False, mem_fraction_static=0.7))
    s = back.settings
    assert (s["context"], s["prefix_caching"], s["mem_fraction_static"]) == (
        65536, False, 0.7,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- MLX


def test_mlx_server_and_generate():
    c = one("mlx_lm.server --model mlx-community/Qwen3.5-9B-4bit --kv-bits 8 --port 8080")
    assert (c.tool, c.engine, c.quant, c.settings["kv_cache"], c.settings["vision"]) == (
        "mlx_lm.server", "mlx", "mlx-4bit", "8", False,
    )  # fmt: skip
    assert "context" not in c.settings
    c = one('mlx_lm.generate --model mlx-community/Qwen3.5-4B-MLX-4bit --prompt "hello there" -m 200')
    assert c.settings["context"] == 200 + len("hello there")
    c = one("python -m mlx_lm generate --model mlx-community/Qwen3.5-4B-4bit --max-kv-size 64")
    assert c.settings["context"] == 64


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        ("mlx_lm.server --model mlx-community/Qwen3.5-9B-4bit --kv-bits 3", "4- and 8-bit"),
        ("mlx_lm.generate --model mlx-community/Qwen3.5-9B-4bit --verbose", "expected one argument"),
        ("mlx_lm.generate --model mlx-community/Qwen3.5-9B-4bit --chat-template-args {}", "unrecognized"),
        ("mlx_lm.server --model mlx-community/Qwen3.5-9B-4bit --draft-model x", "--draft-model"),
        ("mlx_lm.server --port 1", "no --model"),
        ("mlx_vlm.server --model mlx-community/Qwen3.5-9B-4bit", "mlx-vlm"),
    ],
)
def test_mlx_refusals(cmd, reason):
    with pytest.raises(UsageError, match=re.escape(reason)):
        one(cmd)


def test_mlx_edited_round_trip():
    c = one("mlx_lm.server --model mlx-community/Qwen3.5-9B-4bit --port 8080")
    assert one(c.edited(kv_cache="4")).settings["kv_cache"] == "4"
    assert "kv_cache" not in one(one(c.edited(kv_cache="4")).edited(kv_cache=None)).settings
