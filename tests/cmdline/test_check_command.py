"""check_command / ``qwenfit check -- COMMAND`` / ``qwenfit run``: an engine's own launch command
checked with the same numbers as ``qwenfit.estimate()``, edits that fit written in its own flags and
re-checked, unmodelled memory options named (exit 2), the model's origin stated (issue 18)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import qwenfit
import qwenfit.cli
from qwenfit.cmdline import parse_command
from qwenfit.errors import DoesNotFit, UsageError

REPO = Path(__file__).resolve().parents[2]
GGUF = REPO / "tests" / "fixtures" / "gguf" / "dense-untied-text-Q8_0.gguf"

DONE_WHEN = (
    "llama-server -m Qwen3.5-35B-A3B-Q4_K_M.gguf -c 65536 -np 2 --n-cpu-moe 8 -ctk q8_0 -ctv q8_0 "
    "-fa on --port 8080 --jinja"
)
VLLM_TP2 = "vllm serve Qwen/Qwen3.5-27B-FP8 --tensor-parallel-size 2 --max-model-len 32768 --port 8000"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = qwenfit.cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def terms(e) -> list[tuple[str, str, int]]:
    return sorted((t.name, t.device, int(t.bytes)) for t in e.terms)


def test_done_when_llama_server_equals_estimate():
    """The issue's command: the CLI's per-device bytes are estimate()'s for that deployment."""
    code, out, _ = cli("check", "--vram", "24", "--ram", "64", "--json", "--", *shlex.split(DONE_WHEN))
    data = json.loads(out)
    assert code == 0 and data["kind"] == "check-command" and data["fits"] is True
    (launch,) = data["launches"]
    e = qwenfit.estimate("Qwen3.5-35B-A3B", "Q4_K_M", context=32768, sequences=2, n_cpu_moe=8,
                         kv_cache="q8_0", flash_attention=True, vram_gb=24, ram_gb=64)  # fmt: skip
    assert launch["by_device"] == {k: int(v) for k, v in e.by_device.items()}
    assert launch["used_by_budget"] == {k: int(v) for k, v in e.used_by_budget.items()}
    assert sorted((t["name"], t["device"], t["bytes"]) for t in launch["terms"]) == terms(e)
    assert (launch["context"], launch["sequences"], launch["model_from"]) == (32768, 2, "file name")
    assert launch["ignored"] == ["--port", "--jinja"]
    # and the API says the same
    assert terms(qwenfit.check_command(DONE_WHEN, vram_gb=24, ram_gb=64)) == terms(e)


def test_done_when_vllm_tp2_on_two_4090s():
    code, out, _ = cli("check", "--gpu", "2x rtx-4090", "--json", "--", *shlex.split(VLLM_TP2))
    (launch,) = json.loads(out)["launches"]
    assert code == 0 and launch["fits"] is True
    assert launch["settings"]["tp"] == 2 and launch["model_from"] == "artifact catalog"
    e = qwenfit.estimate("Qwen3.5-27B", "fp8", engine="vllm", tp=2, context=32768, vision=True,
                         hardware="2x rtx-4090")  # fmt: skip
    assert sorted((t["name"], t["device"], t["bytes"]) for t in launch["terms"]) == terms(e)
    # one GPU is not enough for TP 2: vLLM's own refusal, exit 2
    code, _, err = cli("check", "--gpu", "rtx-4090", "--", *shlex.split(VLLM_TP2))
    assert code == 2 and "tensor parallelism over 2 GPUs" in err


def test_a_command_that_does_not_fit_exits_1_with_edits_in_its_own_flags():
    cmd = "llama-server -m Qwen3.5-35B-A3B-Q4_K_M.gguf -c 262144 -np 4 -ctk q8_0 -ctv q8_0 -fa on"
    code, out, _ = cli("check", "--vram", "24", "--ram", "64", "--", *shlex.split(cmd))
    assert code == 1 and "DOES NOT FIT" in out and "edits to this command that fit" in out
    checks = qwenfit.check_commands(cmd, vram_gb=24, ram_gb=64)
    fixes = {f.kind: f for f in checks[0].fixes}
    assert set(fixes) >= {"context", "offload"}
    ctx = fixes["context"]
    assert ctx.description.startswith("-c 262144 → ") and " -np 4 " in ctx.command
    moe = fixes["offload"]
    assert moe.description.startswith("add --n-cpu-moe ")
    for f in checks[0].fixes:  # each rewritten command, read again from scratch, fits
        (again,) = qwenfit.check_commands(f.command, vram_gb=24, ram_gb=64, fixes=False)
        assert again.fits and terms(again.estimate) == terms(f.estimate)
    # the smallest edits: one step further does not fit
    per_slot = ctx.settings["context"]
    n = moe.settings["n_cpu_moe"]
    for bigger in (f"-c {4 * (per_slot + 256)}", f"-c 262144 --n-cpu-moe {n - 1}"):
        worse = cmd.replace("-c 262144", bigger)
        assert not qwenfit.check_commands(worse, vram_gb=24, ram_gb=64, fixes=False)[0].fits
    with pytest.raises(DoesNotFit) as err:
        qwenfit.check_command(cmd, vram_gb=24, ram_gb=64)
    assert err.value.alternatives and err.value.alternatives[0].command.startswith("llama-server -m ")


def test_vllm_gpu_memory_utilization_edit():
    cmd = "vllm serve Qwen/Qwen3.5-9B --max-model-len 262144 --gpu-memory-utilization 0.6"
    (c,) = qwenfit.check_commands(cmd, hardware="l40s")
    assert not c.fits
    gmu = [f for f in c.fixes if f.kind == "gpu_memory_utilization"]
    assert gmu and gmu[0].description.startswith("--gpu-memory-utilization 0.6 → ")
    k = gmu[0].settings["gpu_memory_utilization"]
    below = cmd.replace("0.6", f"{k - 0.01:.2f}")
    assert not qwenfit.check_commands(below, hardware="l40s", fixes=False)[0].fits
    assert {f.kind for f in c.fixes} >= {"context", "kv_cache", "gpu_memory_utilization"}


@pytest.mark.parametrize(
    ("command", "named"),
    [
        ("llama-server -m Qwen3.5-9B-Q4_K_M.gguf --lora a.gguf", "--lora"),
        ("llama-server -m Qwen3.5-9B-Q4_K_M.gguf --mlock", "--mlock"),
        ("vllm serve Qwen/Qwen3.5-9B --kv-transfer-config {}", "--kv-transfer-config"),
        ("python -m sglang.launch_server --model-path Qwen/Qwen3.5-9B --mem-fraction-static 0.8",
         "--mem-fraction-static"),
    ],
)  # fmt: skip
def test_unmodelled_memory_flags_exit_2_naming_them(command, named):
    code, out, err = cli("check", "--vram", "24", "--ram", "64", "--", *shlex.split(command))
    assert code == 2 and out == "" and named in err and "cannot model" in err


def test_flags_without_memory_effect_are_accepted():
    base = "llama-server -m Qwen3.5-9B-Q4_K_M.gguf -c 32768 -np 1"
    extra = "--port 8080 --host 0.0.0.0 --jinja --alias q -t 8 --temp 0.6 --metrics"
    plain, more = (qwenfit.check_commands(c, vram_gb=24, ram_gb=64)[0] for c in (base, f"{base} {extra}"))
    assert terms(plain.estimate) == terms(more.estimate)
    assert set(more.parsed.ignored) == {"--port", "--host", "--jinja", "--alias", "-t", "--temp", "--metrics"}


def test_where_the_model_comes_from():
    header = qwenfit.check_commands(["llama-server", "-m", str(GGUF), "-c", "4096", "-np", "1"], ram_gb=16)
    assert header[0].model_from == "file header" and header[0].quant == "Q8_0"
    name = qwenfit.check_commands("llama-server -m Qwen3.5-9B-UD-Q4_K_XL.gguf -np 1", ram_gb=64)
    assert (name[0].model_from, name[0].model, name[0].quant) == ("file name", "Qwen3.5-9B", "UD-Q4_K_XL")
    hf = qwenfit.check_commands("llama-server -hf bartowski/Qwen_Qwen3.5-9B-GGUF:Q4_K_M -np 1", ram_gb=64)
    assert hf[0].model_from == "artifact catalog"
    art = hf[0].result.artifact
    assert art is not None and art.repo == "bartowski/Qwen_Qwen3.5-9B-GGUF"  # the repo named, not another
    assert any("artifact catalog" in n for n in hf[0].notes)


def test_run_execs_the_command_unchanged(tmp_path):
    fake = tmp_path / "llama-server"
    fake.write_text('#!/bin/sh\necho "started: $*"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qwenfit", "run", *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=120)  # fmt: skip

    fits = ["llama-server", "-m", "Qwen3.5-9B-Q4_K_M.gguf", "-c", "32768", "-np", "1", "--port", "8080"]
    r = run("--vram", "24", "--ram", "64", "--", *fits)
    assert r.returncode == 0 and r.stdout == "started: " + " ".join(fits[1:]) + "\n"
    assert "fits" in r.stderr
    big = ["llama-server", "-m", "Qwen3.5-122B-A10B-Q4_K_M.gguf", "-c", "262144", "-np", "1", "-ngl", "99"]
    r = run("--vram", "24", "--ram", "32", "--", *big)
    assert r.returncode == 1 and r.stdout == "" and "not started" in r.stderr
    r = run("--vram", "24", "--ram", "32", "--force", "--", *big)
    assert r.returncode == 0 and r.stdout.startswith("started: ")
    r = run("--vram", "24", "--ram", "64", "--", "llama-server", "-m", "x-Q4_K_M.gguf", "--lora", "a.gguf")
    assert r.returncode == 2 and r.stdout == "" and "--lora" in r.stderr


def test_check_reads_a_llama_swap_config_file_one_verdict_each(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "models:\n"
        "  small:\n    cmd: llama-server --port ${PORT} -m Qwen3.5-4B-Q4_K_M.gguf -c 32768 -np 1\n"
        "  big:\n    cmd: llama-server --port ${PORT} -m Qwen3.5-122B-A10B-Q4_K_M.gguf -c 32768 -np 1\n"
    )
    code, out, _ = cli("check", "--vram", "24", "--ram", "32", "--json", "--", str(config))
    data = json.loads(out)
    assert code == 1 and [x["fits"] for x in data["launches"]] == [True, False]
    assert [x["model"] for x in data["launches"]] == ["Qwen3.5-4B", "Qwen3.5-122B-A10B"]


def test_model_flags_with_a_command_are_refused():
    code, _, err = cli("check", "--vram", "24", "--quant", "Q8_0", "--", "llama-server", "-m", "x.gguf")
    assert code == 2 and "--quant" in err


def test_the_reader_round_trips_an_edit():
    (pc,) = parse_command(DONE_WHEN)
    edited = pc.edited(context=16384, n_cpu_moe=12)
    assert "-c 32768" in edited and "--n-cpu-moe 12" in edited
    (again,) = parse_command(edited)
    assert (again.settings["context"], again.settings["n_cpu_moe"]) == (16384, 12)


def test_usage_error_is_public():
    with pytest.raises(UsageError):
        qwenfit.check_command("llama-server -m Qwen3.5-9B-Q4_K_M.gguf --no-such-flag", vram_gb=24)


def test_a_checkpoint_known_only_by_its_name_must_name_its_format():
    # never a silent BF16: an unreadable suffix of a directory that is not here is refused, naming it
    with pytest.raises(UsageError, match="'frobnicated'"):
        qwenfit.check_commands(
            "vllm serve /models/Qwen3.5-27B-Frobnicated --max-model-len 8192", hardware="l40s"
        )
    (c,) = qwenfit.check_commands("vllm serve /models/qwen3.6-27b-autoround-int4 --max-model-len 8192",
                                  hardware="l40s")  # fmt: skip
    assert (c.model, c.quant, c.model_from) == ("Qwen3.6-27B", "autoround", "file name")
    with pytest.raises(UsageError, match="names no quantization"):  # not Q4_K_M by default
        qwenfit.check_commands("llama-server -m /models/Qwen3.5-9B.gguf -np 1", vram_gb=24)


def test_tensor_parallel_edit_with_the_context_that_fits_on_those_gpus():
    cmd = "vllm serve Qwen/Qwen3.5-27B-FP8 --max-model-len 262144 --max-num-seqs 8"
    (c,) = qwenfit.check_commands(cmd, hardware="2x rtx-4090")
    (tp,) = [f for f in c.fixes if f.kind == "tp"]
    assert tp.settings["tp"] == 2 and tp.settings["context"] < 262144
    assert "--tensor-parallel-size 2" in tp.command and tp.estimate.fits
