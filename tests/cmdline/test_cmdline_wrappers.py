"""Scripts, wrappers and files that hold launch commands: shell, docker run, docker compose, llama-swap,
systemd units, Ollama Modelfiles."""

from __future__ import annotations

import pytest

from qwenfit.cmdline import ParsedCommand, parse_command
from qwenfit.cmdline.shell import split_script
from qwenfit.errors import UsageError

GGUF = "Qwen3.5-9B-Q4_K_M.gguf"


def one(cmd: str | list[str], **kw: object) -> ParsedCommand:
    out = parse_command(cmd, **kw)  # type: ignore[arg-type]
    assert len(out) == 1
    return out[0]


def test_shell_words():
    [c] = split_script(
        """A=1 cmd 'x y' "z $HOME" ${UNSET:-d} $UNSET \\\n  --k="{\\"a\\": 1}" # comment""", {"HOME": "/h"}
    )
    assert c.assigns == {"A": "1"}
    assert c.argv == ["cmd", "x y", "z /h", "d", "$UNSET", '--k={"a": 1}']
    assert c.unresolved == {"UNSET"}
    cmds = split_script("a && b | tee log > out 2>&1 &\nc ; d")
    assert [c.argv[0] for c in cmds] == ["a", "b", "tee", "c", "d"]


def test_script_with_exports_and_inline_variables():
    text = f"""
    # launch
    export LLAMA_ARG_CTX_SIZE=16384
    MODEL_DIR=/models
    LLAMA_ARG_N_PARALLEL=2 nohup llama-server -m "$MODEL_DIR/{GGUF}" --port 8080 > log 2>&1 &
    """
    c = one(text)
    assert (c.model, c.settings["context"], c.settings["sequences"]) == ("Qwen3.5-9B", 8192, 2)
    assert c.argv[:3] == ("nohup", "llama-server", "-m")


def test_wrappers():
    assert one(f"uv run --with x env FOO=1 sudo -E llama-server -m {GGUF} -np 1").tool == "llama-server"
    assert one(f"./profile.sh /app/llama-server -m {GGUF} -np 1").notes[0] == "run through ./profile.sh"
    assert one("exec python3 -m mlx_lm.server --model mlx-community/Qwen3.5-9B-4bit").tool == "mlx_lm.server"
    assert one(["numactl", "--interleave=all", "llama-server", "-m", GGUF, "-np", "1"]).tool == "llama-server"


def test_windows_caret_continuations():
    text = (
        ".\\llama\\llama-server.exe ^\n  -m c:\\models\\Qwen3.5-9B-Q8_0.gguf ^\n"
        '  -ot "\\.(1[0-9])\\.ffn_.*_exps=CPU" ^\n  -np 1'
    )
    c = one(text)
    assert (c.model, c.quant) == ("Qwen3.5-9B", "Q8_0")
    assert c.settings["override_tensor"] == ("\\.(1[0-9])\\.ffn_.*_exps=CPU",)


def test_missing_line_continuation_and_placeholders():
    with pytest.raises(UsageError, match="missing '\\\\' line continuation"):
        parse_command(f"llama-server \\\n  -m {GGUF}\n  --ctx-size 8192 \\\n  --port 1")
    with pytest.raises(UsageError, match="<PATH> is a placeholder"):
        parse_command("vllm serve <PATH>/model --port 1")
    with pytest.raises(UsageError, match="no engine launch"):
        parse_command("echo llama-server is great")


def test_several_commands_in_one_text():
    out = parse_command(
        "vllm serve Qwen/Qwen3.5-9B --port 1\n\n# second\nvllm serve Qwen/Qwen3.5-4B --port 2"
    )
    assert [c.model for c in out] == ["Qwen/Qwen3.5-9B", "Qwen/Qwen3.5-4B"]


def test_docker_run():
    c = one("docker run --gpus all -p 8000:8000 --ipc=host -v ~/.cache:/root/.cache vllm/vllm-openai:v0.27.1 "
            "Qwen/Qwen3.5-27B -tp 2")  # fmt: skip
    assert (c.tool, c.model, c.settings["tp"], c.settings["engine_version"]) == (
        "vllm serve", "Qwen/Qwen3.5-27B", 2, "0.27.1",
    )  # fmt: skip
    c = one(f"docker run --rm -e LLAMA_ARG_CTX_SIZE=8192 --gpus '\"device=0,1\"' "
            f"ghcr.io/ggml-org/llama.cpp:server-cuda-b9246 -m /models/{GGUF} -np 1")  # fmt: skip
    assert (c.settings["context"], c.settings["n_gpus"], c.settings["engine_version"]) == (8192, 2, "b9246")
    c = one('docker run --entrypoint="" my/image vllm serve Qwen/Qwen3.5-9B')
    assert c.model == "Qwen/Qwen3.5-9B"
    with pytest.raises(UsageError, match="does not know what it runs"):
        parse_command("docker run some/thing --flag")


COMPOSE = """
services:
  llama:
    image: ${LLAMACPP_IMAGE:-ghcr.io/ggml-org/llama.cpp:server-cuda-b10236}
    environment:
      - SPEC_N=${SPEC_N:-}
    entrypoint:
      - /bin/bash
      - -c
      - |
        _n="$${SPEC_N:-1}"
        if [ "$$_n" -gt 0 ]; then
          exec /app/llama-server "$$@"
        fi
        exec /app/llama-server --other
      - --
    command: >-
      -m /models/${GGUF_FILE:-Qwen3.6-27B-Q4_K_M.gguf}
      -c ${CTX_SIZE:-200000}
      -np 1
      --spec-type draft-mtp
  vllm:
    image: vllm/vllm-openai:v0.27.1
    command:
      - --model
      - /root/.cache/huggingface/qwen3.6-27b-fp8
      - --max-model-len
      - "${MAX_MODEL_LEN:-32768}"
"""


def test_docker_compose():
    out = parse_command(COMPOSE)
    assert [c.tool for c in out] == ["llama-server", "vllm serve"]
    llama, vllm = out
    s = llama.settings
    assert (llama.model, s["context"], s["mtp"], s["engine_version"]) == (
        "Qwen3.6-27B", 200000, True, "b10236",
    )  # fmt: skip
    assert (vllm.model, vllm.quant, vllm.settings["context"]) == ("Qwen3.6-27B", "fp8", 32768)
    out = parse_command(COMPOSE, env={"CTX_SIZE": "65536", "MAX_MODEL_LEN": "8192"})
    assert [c.settings["context"] for c in out] == [65536, 8192]


LLAMA_SWAP = """
macros:
  "server": >
    /app/llama-server
    --port ${PORT}
models:
  "qwen-9b":
    cmd: |
      ${server}
      -m /models/Qwen3.5-9B-Q8_0.gguf
      # --parallel 4
      -c 32768 -np 1
  "qwen-4b":
    cmd: llama-server --port ${PORT} -hf unsloth/Qwen3.5-4B-GGUF:Q4_K_M -c 8192 -np 1 --no-mmproj
    env:
      - "LLAMA_ARG_FLASH_ATTN=off"
"""


def test_llama_swap():
    out = parse_command(LLAMA_SWAP)
    assert [(c.model, c.settings["context"], c.settings["sequences"]) for c in out] == [
        ("Qwen3.5-9B", 32768, 1), ("unsloth/Qwen3.5-4B-GGUF", 8192, 1),
    ]  # fmt: skip
    assert out[1].settings["flash_attention"] is False
    with pytest.raises(UsageError, match="Nix expression"):
        parse_command("services.llama-swap = {\n  settings = {\n    models = {};\n  };\n};")


def test_llama_swap_file(tmp_path):
    (tmp_path / "config.yaml").write_text(LLAMA_SWAP)
    assert len(parse_command("llama-swap --config config.yaml --listen :8080", cwd=str(tmp_path))) == 2


def test_systemd_unit():
    unit = f"""[Unit]
Description=llama
[Service]
Environment="LLAMA_ARG_CTX_SIZE=4096"
ExecStart=/usr/bin/llama-server \\
    -m /srv/{GGUF} -np 1
"""
    c = one(unit)
    assert c.settings["context"] == 4096


def test_modelfile_and_ollama_environment():
    text = (
        "    FROM qwen3.5:27b-q4_K_M\n    PARAMETER num_ctx 32768\n    PARAMETER num_gpu 40\n"
        "    PARAMETER temperature 0.6\n"
    )
    env = {"OLLAMA_NUM_PARALLEL": "2", "OLLAMA_KV_CACHE_TYPE": "q8_0", "OLLAMA_FLASH_ATTENTION": "1"}
    c = one(text, env=env)
    assert (c.tool, c.engine, c.model, c.model_kind, c.quant, c.catalog) == (
        "ollama", "ollama", "qwen3.5:27b-q4_K_M", "ollama-tag", "Q4_K_M", "Qwen3.5-27B",
    )  # fmt: skip
    s = c.settings
    assert (s["context"], s["sequences"], s["kv_cache"], s["flash_attention"], s["n_gpu_layers"]) == (
        32768, 2, "q8_0", True, 40,
    )  # fmt: skip
    c = one("FROM hf.co/unsloth/Qwen3.5-27B-GGUF:Q4_K_M\n", env={"OLLAMA_CONTEXT_LENGTH": "8192"})
    assert (c.model, c.model_kind, c.quant, c.settings["context"]) == (
        "unsloth/Qwen3.5-27B-GGUF", "hf-repo", "Q4_K_M", 8192,
    )  # fmt: skip
    assert "context" not in one("FROM qwen3.6:27b\n").settings  # Ollama's default depends on the GPU
    with pytest.raises(UsageError, match="unknown parameter 'num_ctxx'"):
        parse_command("FROM qwen3.6:27b\nPARAMETER num_ctxx 4\n")
    with pytest.raises(UsageError, match="num_batch"):
        parse_command("FROM qwen3.6:27b\nPARAMETER num_batch 1024\n")
    edited = one(text).edited(context=65536)
    assert "PARAMETER num_ctx 65536" in edited and one(edited).settings["context"] == 65536


def test_ollama_commands(tmp_path):
    c = one("OLLAMA_CONTEXT_LENGTH=16384 OLLAMA_NUM_PARALLEL=4 ollama run qwen3.6:35b-a3b")
    assert (c.catalog, c.settings["context"], c.settings["sequences"]) == ("Qwen3.6-35B-A3B", 16384, 4)
    with pytest.raises(UsageError, match="loads no model"):
        parse_command("OLLAMA_FLASH_ATTENTION=1 ollama serve")
    (tmp_path / "Modelfile").write_text("FROM qwen3.5:9b\nPARAMETER num_ctx 4096\n")
    assert one("ollama create mine -f Modelfile", cwd=str(tmp_path)).settings["context"] == 4096
