"""The qwenfit command: exit codes, errors, flags and output, mostly in-process (fast), with a
representative handful as real subprocesses (the console script and ``python -m qwenfit``)."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import REPO, assert_one_line_error, run_subprocess

import qwenfit
import qwenfit.cli as cli_module
import qwenfit.cli.args
import qwenfit.cli.models
import qwenfit.cli.output
import qwenfit.loaders.detect
from qwenfit.core.hardware import Machine
from qwenfit.report.schema import CheckOut, Output, PlanOut

QWENFIT = [str(Path(sys.executable).parent / "qwenfit")]
FIXTURES = REPO / "tests" / "fixtures"


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*QWENFIT, *args], capture_output=True, text=True)


# ---------------------------------------------------------------------------------------------------
# as a subprocess: the console script and python -m qwenfit


def test_models_table():
    r = run_script("models")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["model", "total", "params"]
    row = next(line for line in lines if line.startswith("Qwen3.5-397B-A17B"))
    assert "403,397,928,944" in row and "17.35B" in row and "60 (45 GDN + 15 attn)" in row
    assert sum(1 for line in lines if line.startswith("Qwen")) == 11


def test_inspect():
    r = run_script("inspect", "qwen/qwen3.5-122b-a10b")
    assert r.returncode == 0, r.stderr
    assert "total 125,086,497,008" in r.stdout and "active 9,771,288,576" in r.stdout
    assert "expert_gate" in r.stdout


def test_unknown_model_exits_2_with_one_line():
    r = run_script("inspect", "Qwen3.5-36B")
    assert r.returncode == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "Did you mean" in r.stderr


def test_usage_error_exits_2():
    for args in ((), ("frobnicate",)):
        r = run_script(*args)
        assert r.returncode == 2
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_subprocess_check_fits_exits_0_with_valid_json():
    r = run_subprocess(
        "check", "35B-A3B", "--quant", "Q4_K_M", "--context", "32768", "--vram", "24", "--ram", "64", "--json"
    )
    assert r.code == 0, r.err
    out = Output.model_validate_json(r.out).root
    assert isinstance(out, CheckOut) and out.fits is True and out.shortfall_bytes == 0
    assert out.command.startswith("llama-server -hf unsloth/Qwen3.5-35B-A3B-GGUF:Q4_K_M --no-mmproj -c 32768")
    assert out.artifact is not None and out.artifact.published and out.artifact.size_bytes == 22_016_023_168
    assert out.alternatives == []


def test_subprocess_check_does_not_fit_exits_1_with_valid_json():
    r = run_subprocess("check", "35B-A3B", "--quant", "Q4_K_M", "--vram", "24", "--ram", "64", "--json")
    assert r.code == 1, r.err
    out = Output.model_validate_json(r.out).root
    assert isinstance(out, CheckOut) and out.fits is False and out.shortfall_bytes > 0
    assert {a.kind for a in out.alternatives} >= {"context", "offload", "quant"}


def test_subprocess_plan_json_validates():
    r = run_subprocess("plan", "9B", "--gpu", "rtx-4090", "--ram", "64", "--json")
    assert r.code == 0, r.err
    out = Output.model_validate_json(r.out).root
    assert isinstance(out, PlanOut) and out.fits and out.best is not None
    assert out.best == out.options[0]


def test_subprocess_bad_input_one_line():
    line = assert_one_line_error(run_subprocess("check", "9B", "--quant", "Q4_K_M", "--vram", "abc"))
    assert "--vram" in line and "'abc'" in line
    line = assert_one_line_error(run_subprocess("check", "9B", "--quant", "Q4_K_M", "--gpu", "rtx-4091"))
    assert "Did you mean 'rtx-4090'" in line


def test_check_path_imports_no_pydantic_yaml_or_numpy():
    """Startup: `qwenfit check` (numbers or a catalog GPU) imports none of the heavy modules."""
    code = (
        "import io, sys, contextlib\n"
        "from qwenfit.cli import main\n"
        "argv = ['check', '35B-A3B', '--quant', 'Q4_K_M', '--context', '32768']\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for extra in ([], ['--json'], ['--gpu', 'rtx-4090']):\n"
        "        main([*argv, *(extra if '--gpu' in extra else ['--vram', '24', *extra])])\n"
        "heavy = ('pydantic', 'yaml', 'numpy', 'huggingface_hub', 'gguf')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------------
# check, in-process


def test_check_exit_codes(cli):
    assert cli("check", "9B", "--quant", "Q4_K_M", "--vram", "24").code == 0
    assert cli("check", "397B-A17B", "--quant", "Q4_K_M", "--vram", "24", "--ram", "32").code == 1
    assert cli("check", "9B", "--quant", "Q4_K_X", "--vram", "24").code == 2


def test_check_human_output(cli):
    r = cli("check", "35B-A3B", "--quant", "q4_k_m", "--context", "32k", "--gpu", "rtx-4090", "--ram", "64")
    assert r.code == 0 and r.err == ""
    assert r.out.startswith("Qwen3.5-35B-A3B Q4_K_M on llama.cpp: 32,768 tokens, 1 sequence\n")
    assert "machine: rtx-4090: NVIDIA GeForce RTX 4090 (25.76 GB), 64.00 GB RAM" in r.out
    assert "memory  █ weights  ▓ KV cache  ▒ recurrent state  ░ buffers  ▚ other  · free" in r.out
    assert "\nfits: " in r.out
    assert (
        "loads: unsloth/Qwen3.5-35B-A3B-GGUF Qwen3.5-35B-A3B-Q4_K_M.gguf (Q4_K_M, 22.02 GB published)"
        in r.out
    )
    cmd = "command: llama-server -hf unsloth/Qwen3.5-35B-A3B-GGUF:Q4_K_M --no-mmproj -c 32768 -np 1"
    cmd += " -ngl all -fa on"
    assert cmd in r.out
    assert "\033[" not in r.out  # not a terminal: no colour


def test_check_does_not_fit_shows_shortfall_and_alternatives(cli):
    r = cli("check", "35B-A3B", "--quant", "Q4_K_M", "--vram", "24", "--ram", "64")
    assert r.code == 1
    # unsloth's Q4_K_M file (22.02 GB published), at the native 262,144 tokens
    assert "DOES NOT FIT: short by 4.91 GB on gpu (28.91 GB needed, 24.00 GB available)" in r.out
    assert "]▓" in r.out  # the bar runs past the budget
    assert "nearest options that fit:" in r.out
    assert "  - less context: " in r.out and "  - offload: " in r.out and "  - smaller quant: " in r.out


@pytest.mark.parametrize(
    "argv",
    [
        ["35B-A3B", "--quant", "Q4_K_M", "--vram", "24", "--ram", "64"],
        ["122B-A10B", "--quant", "Q4_K_M", "--context", "65536", "--gpu", "2x rtx-3090", "--ram", "128"],
        [
            "27B",
            "--quant",
            "Q8_0",
            "--context",
            "65536",
            "--sequences",
            "2",
            "--gpu",
            "rtx-4090",
            "--ram",
            "32",
        ],
        ["27B", "--quant", "bf16", "--engine", "vllm", "--context", "65536", "--gpu", "2x rtx-4090"],
        ["27B", "--quant", "mlx-4bit", "--engine", "mlx", "--ram", "32"],
    ],
    ids=["moe-offload", "moe-2gpu", "dense-sequences", "vllm", "mlx"],
)
def test_check_alternatives_really_fit(cli, argv):
    """Each alternative a failed check offers passes the check itself (same code, same budget)."""
    r = cli("check", *argv, "--json")
    out = CheckOut.model_validate_json(r.out)
    assert r.code == 1 and out.alternatives
    model, rest = argv[0], argv[1:]
    keep: list[str] = []  # the hardware and engine flags of the failed check
    for flag in ("--engine", "--gpu", "--vram", "--ram"):
        if flag in rest:
            keep += [flag, rest[rest.index(flag) + 1]]
    for a in out.alternatives:
        again = [
            "check",
            model,
            "--quant",
            a.quant,
            "--context",
            str(a.context),
            "--sequences",
            str(a.sequences),
            *keep,
        ]
        if a.placement is not None and a.placement.n_cpu_moe:
            again += ["--n-cpu-moe", str(a.placement.n_cpu_moe)]
        if a.placement is not None and a.placement.n_gpu_layers is not None:
            again += ["--ngl", str(a.placement.n_gpu_layers)]
        if a.placement is not None and a.placement.tensor_split is not None:
            again += ["--ts", ",".join(f"{s:g}" for s in a.placement.tensor_split)]
        if a.placement is not None and a.engine == "vllm":
            again += ["--tp", str(a.placement.tp)]
        assert cli(*again).code == 0, (a.kind, again)
        if a.kind == "context":  # the largest that fits: one more step does not
            step = 256 if a.engine == "llama.cpp" else 1
            bigger = [*again[:5], str(a.context + step), *again[6:]]
            assert cli(*bigger).code == 1, bigger


def test_check_sequences_are_per_sequence_context(cli):
    r = cli(
        "check", "9B", "--quant", "Q4_K_M", "--context", "32768", "--sequences", "4", "--vram", "24", "--json"
    )
    out = CheckOut.model_validate_json(r.out)
    assert (out.context, out.sequences) == (32768, 4)
    assert out.settings["context"] == 32768  # tokens per sequence, everywhere
    assert "-c 131072 -np 4" in out.command  # llama.cpp's -c is the total over the slots


def test_check_vllm_defaults_tp_to_the_gpus(cli):
    r = cli(
        "check",
        "27B",
        "--quant",
        "fp8",
        "--engine",
        "vllm",
        "--context",
        "65536",
        "--gpu",
        "2x rtx-4090",
        "--json",
    )
    out = CheckOut.model_validate_json(r.out)
    assert r.code == 0 and out.settings["tp"] == 2
    assert "--tensor-parallel-size 2" in out.command and out.machine.n_devices == 2


def test_check_mlx_with_ram_is_a_mac(cli):
    r = cli(
        "check", "9B", "--quant", "mlx-4bit", "--engine", "mlx", "--context", "32768", "--ram", "32", "--json"
    )
    out = CheckOut.model_validate_json(r.out)
    assert r.code == 0 and out.machine.unified and out.budget is not None and "total" in out.budget


def test_check_detects_the_machine_without_hardware_flags(cli, monkeypatch):
    from qwenfit.loaders.hardware import custom_machine

    machine = custom_machine(vram_gb=None, ram_gb=64, name="detected: CPU only")
    monkeypatch.setattr(qwenfit.loaders.detect, "detect", lambda: machine)
    r = cli("check", "4B", "--quant", "Q4_K_M", "--context", "8192")
    assert r.code == 0, r.err
    assert "machine: detected: CPU only: no GPU, 64.00 GB RAM" in r.out
    assert "-ngl 0 --device none" in r.out


def test_check_cpu_only_without_ram_is_bad_input(cli):
    line = assert_one_line_error(cli("check", "9B", "--quant", "Q4_K_M", "--gpu", "cpu"))
    assert "give --ram GB" in line


def test_check_beyond_yarn_limit_is_bad_input(cli):
    assert "limit of 1,010,000" in assert_one_line_error(
        cli("check", "9B", "--quant", "Q4_K_M", "--context", "2000000", "--vram", "24")
    )


def test_check_beyond_native_context_notes_yarn(cli):
    r = cli("check", "0.8B", "--quant", "Q8_0", "--context", "300000", "--vram", "80")
    assert r.code == 0 and "needs YaRN rope scaling" in r.out


# ---------------------------------------------------------------------------------------------------
# bad input: exit 2, one line on stderr, no traceback


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["check", "Qwen3.5-36B", "--quant", "Q4_K_M", "--vram", "24"], "Did you mean 'Qwen3.5-9B'"),
        (["check", "9B", "--quant", "Q4_K_X", "--vram", "24"], "Did you mean 'Q4_K_S', 'Q4_K_M'"),
        (["check", "9B", "--quant", "fp8", "--vram", "24"], "use --engine vllm"),
        (["check", "9B", "--quant", "Q4_K_M", "--engine", "vllm", "--vram", "24"], "use --engine llama.cpp"),
        (["check", "9B", "--quant", "mlx-4bit", "--engine", "vllm", "--vram", "24"], "use --engine mlx"),
        (["check", "9B", "--quant", "x.gguf", "--engine", "vllm", "--vram", "24"], "GGUF file, which vllm"),
        (["check", "9B", "--quant", "Q4_K_M", "--gpu", "rtx-4091"], "Did you mean 'rtx-4090'"),
        (["check", "9B", "--quant", "Q4_K_M", "--gpu", "0x rtx-4090"], "rtx-4090"),
        (["check", "9B", "--quant", "Q4_K_M", "--vram", "abc"], "argument --vram: expected a number of GB"),
        (["check", "9B", "--quant", "Q4_K_M", "--vram", "-3"], "argument --vram"),
        (["check", "9B", "--quant", "Q4_K_M", "--vram", "nan"], "argument --vram"),
        (["check", "9B", "--quant", "Q4_K_M", "--ram", "0"], "argument --ram"),
        (["check", "9B", "--quant", "Q4_K_M", "--context", "-5", "--vram", "24"], "argument --context"),
        (["check", "9B", "--quant", "Q4_K_M", "--context", "lots", "--vram", "24"], "argument --context"),
        (["check", "9B", "--quant", "Q4_K_M", "--sequences", "0", "--vram", "24"], "argument --sequences"),
        (["check", "9B", "--quant", "Q4_K_M", "--n-cpu-moe", "-1", "--vram", "24"], "argument --n-cpu-moe"),
        (["check", "9B", "--quant", "Q4_K_M", "--gpu", "rtx-4090", "--vram", "24"], "not allowed with"),
        (["check", "9B", "--quant", "Q4_K_M", "--gpus", "2"], "--gpus counts --vram GPUs"),
        (["check", "9B", "--quant", "Q4_K_M", "--gpu", "rtx-4090", "--gpus", "2"], "--gpus counts --vram"),
        (["check", "9B", "--quant", "Q4_K_M", "--kv-cache", "q9", "--vram", "24"], "KV cache type 'q9'"),
        (["check", "9B", "--quant", "Q4_K_M", "--engine", "foo", "--vram", "24"], "invalid choice: 'foo'"),
        (["check", "9B", "--quant", "Q4_K_M", "--tp", "2", "--vram", "24"], "--tp: llama.cpp has no"),
        (["check", "9B", "--quant", "Q4_K_M", "--n-cpu-moe", "3", "--vram", "24"], "dense model"),
        (["check", "9B", "--vram", "24,5"], "for a decimal write '24.5'"),
        (["plan", "9B", "--gpu", "rtx-4090", "--gpu", "m4-max-128"], "cannot be one of several GPUs"),
        (
            [
                "check",
                "397B-A17B",
                "--quant",
                "fp8",
                "--engine",
                "vllm",
                "--gpu",
                "8x h100-sxm",
                "--tp",
                "16",
            ],
            "needs 16 GPUs in one machine",
        ),
        (["check", "tests/nowhere/config.json", "--quant", "Q4_K_M", "--vram", "24"], "no such file"),
        (["plan", "9B", "--engine", "vlm", "--vram", "24"], "Did you mean 'vllm'"),
        (["plan", "9B", "--quant", "Q4_K_X", "--vram", "24"], "unknown quant 'Q4_K_X'"),
        (["plan", "9B", "--kv-cache", "q9", "--vram", "24"], "KV cache type 'q9'"),
        (["plan", "9B", "--vram", "24", "--gpu", "rtx-4090"], "not allowed with"),
        (["plan", "Qwen3.5-36B", "--vram", "24"], "unknown model"),
        (["plan", "9B", "--nodes", "0", "--vram", "24"], "argument --nodes"),
        (["quants", "9B", "--engine", "tensorrt"], "invalid choice"),
        (["hardware", "show", "rtx-4091"], "Did you mean 'rtx-4090'"),
        (["hardware"], "required: ACTION"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "required: COMMAND"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, argv, expected):
    line = assert_one_line_error(cli(*argv))
    assert expected in line, line


def test_unknown_hardware_suggests_the_cli_flag(cli):
    line = assert_one_line_error(cli("check", "9B", "--quant", "Q4_K_M", "--gpu", "rtx-4091"))
    assert "--vram GB" in line


def test_internal_errors_are_one_line_and_exit_3(cli, monkeypatch):
    def boom(args):
        raise RuntimeError("simulated\nbug")

    monkeypatch.setattr(qwenfit.cli.models, "run", boom)  # build_parser() picks it up by name
    r = cli("models")
    assert r.code == 3 and r.out == ""
    assert r.err.strip() == (
        "qwenfit models: internal error: RuntimeError: simulated bug "
        "(QWENFIT_DEBUG=1 shows the traceback; please report it)"
    )
    monkeypatch.setenv("QWENFIT_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli("models")


def test_help_and_version_exit_0(cli):
    assert cli("--version").code == 0
    r = cli("check", "--help")
    assert r.code == 0 and "--n-cpu-moe" in r.out and "exit 0 fits" in " ".join(r.out.lower().split())


# ---------------------------------------------------------------------------------------------------
# plan


def test_plan_human_output_has_bars_for_the_best_option(cli):
    r = cli("plan", "9B", "--gpu", "rtx-4090", "--ram", "64", "--engine", "llama.cpp")
    assert r.code == 0
    assert r.out.startswith("qwenfit plan for rtx-4090")
    assert "best option, memory per device (Qwen3.5-9B " in r.out
    assert "  gpu  [" in r.out and "  cpu  [" in r.out


def test_plan_flags_reach_plan(cli):
    r = cli(
        "plan",
        "9B",
        "4B",
        "--vram",
        "24",
        "--gpus",
        "2",
        "--ram",
        "64",
        "--engine",
        "llama.cpp,vllm",
        "--quant",
        "Q4_K_M",
        "--quant",
        "fp8",
        "--context",
        "65536",
        "--sequences",
        "2",
        "--json",
    )
    out = PlanOut.model_validate_json(r.out)
    assert out.machine.n_devices == 2 and out.machine.ram_bytes == 64 * 10**9
    assert {(o.model, o.engine, o.quant) for o in [*out.options, *out.rejected]} == {
        (m, e, q) for m in ("Qwen3.5-9B", "Qwen3.5-4B") for e, q in (("llama.cpp", "Q4_K_M"), ("vllm", "fp8"))
    }
    assert all(o.context == 65536 and o.sequences == 2 for o in out.options)


def test_plan_all_lists_everything(cli):
    short = cli("plan", "35B-A3B", "--gpu", "rtx-4090", "--ram", "64")
    full = cli("plan", "35B-A3B", "--gpu", "rtx-4090", "--ram", "64", "--all")
    assert "(top 15)" in short.out and "--all lists every option" in short.out
    assert "(top 15)" not in full.out and len(full.out) > len(short.out)


def test_plan_detects_without_hardware_flags(cli, monkeypatch):
    import qwenfit.loaders.detect
    from qwenfit.loaders.hardware import parse_machine

    machine = dataclasses.replace(parse_machine("rtx-3090", ram_gb=32), name="detected: rtx-3090")
    monkeypatch.setattr(qwenfit.loaders.detect, "detect", lambda: machine)
    r = cli("plan", "4B", "--engine", "llama.cpp", "--quant", "Q4_K_M")
    assert r.code == 0 and "detected: rtx-3090" in r.out


# ---------------------------------------------------------------------------------------------------
# inspect, quants, models, hardware, export


def test_inspect_sizes_per_quant(cli):
    r = cli("inspect", "9B")
    assert r.code == 0
    assert "sizes (every quantization: qwenfit quants MODEL)" in r.out
    sizes = r.out.split("sizes (every quantization")[1]
    assert "Q4_K_M" in sizes and "fp8" in sizes and "mlx-4bit" in sizes


def test_inspect_gguf_file(cli):
    r = cli("inspect", str(FIXTURES / "gguf" / "moe-vision-mtp-Q8_0.gguf"))
    assert r.code == 0, r.err
    assert "files    gguf Q8_0: 1 file(s), 96 tensors" in r.out and "match    exact" in r.out


def test_quants_match_the_library(cli):
    r = cli("quants", "35B-A3B", "--json")
    rows = {q["name"]: q for q in json.loads(r.out)["quants"]}
    w = qwenfit.weights("35B-A3B", "Q4_K_M")
    assert rows["Q4_K_M"]["file_bytes"] == w.file_bytes and rows["Q4_K_M"]["tensor_bytes"] == w.total_bytes
    assert rows["fp8"]["tensor_bytes"] == qwenfit.weights("35B-A3B", "fp8").total_bytes
    ranks = [q["quality_rank"] for q in rows.values() if q["quality_rank"] is not None]
    assert ranks == sorted(ranks)  # best first


def test_quants_engine_filter(cli):
    def names(engine: str) -> set[str]:
        return {
            q["name"] for q in json.loads(cli("quants", "4B", "--engine", engine, "--json").out)["quants"]
        }

    assert "Q4_K_M" in names("llama.cpp") and "fp8" not in names("llama.cpp")
    assert "fp8" in names("vllm") and "Q4_K_M" not in names("vllm") and "mlx-4bit" not in names("vllm")
    assert {n for n in names("mlx") if not n.startswith("mlx-")} <= {"bf16", "fp16"}


def test_hardware_commands(cli):
    r = cli("hardware", "list")
    assert r.code == 0 and "rtx-4090" in r.out and "host RAM profile" in r.out
    r = cli("hardware", "show", "2x rtx-3090", "--ram", "128")
    assert r.code == 0
    assert r.out.startswith("machine: 2x rtx-3090: 2x NVIDIA GeForce RTX 3090 (25.77 GB each), 128.00 GB RAM")
    r = cli("hardware", "detect")
    assert r.code == 0 and r.out.startswith("machine: ")


def test_export(cli, monkeypatch, tmp_path):
    import types

    fake = types.ModuleType("qwenfit.export")
    fake.calculator_json = lambda: {"schema": 1, "models": {}}
    monkeypatch.setitem(sys.modules, "qwenfit.export", fake)
    r = cli("export")
    assert r.code == 0 and json.loads(r.out) == {"schema": 1, "models": {}}
    target = tmp_path / "calc.json"
    assert cli("export", "-o", str(target)).code == 0 and r.out.strip() == target.read_text().strip()
    line = assert_one_line_error(cli("export", "-o", str(tmp_path / "missing" / "x.json")))
    assert "cannot write" in line


# ---------------------------------------------------------------------------------------------------
# pieces: number parsing, colour, bars, progress


def test_number_parsing():
    from qwenfit.cli import args

    assert args.tokens("32k") == 32768 and args.tokens("131,072") == 131072
    assert args.gb("24GB") == 24.0 and args.gb("24 g") == 24.0
    assert args.gb("1GiB") == pytest.approx(1.073741824)
    assert args.ngl("all") is None and args.ngl("12") == 12
    assert args.split("3,1") == (3.0, 1.0)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    from qwenfit.cli.output import use_color

    assert use_color(_Tty()) and not use_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(_Tty())
    monkeypatch.setenv("NO_COLOR", "")  # no-color.org: set but empty does not disable colour
    assert use_color(_Tty())


def test_colour_on_a_terminal(cli, monkeypatch):
    monkeypatch.setattr(qwenfit.cli.output, "use_color", lambda stream: True)
    r = cli("check", "9B", "--quant", "Q4_K_M", "--vram", "24")
    assert "\033[1;32mfits\033[0m" in r.out and "\033[34m█" in r.out


def _estimate(terms: dict[str, int], budget: dict[str, int] | None) -> qwenfit.Estimate:
    return qwenfit.Estimate(
        model="m",
        quant="q",
        engine="llama.cpp",
        settings={},
        terms=tuple(
            qwenfit.Term(name, dev, n, True, "")
            for (name, dev), n in ((tuple(k.split("@")), v) for k, v in terms.items())
        ),
        budget=budget,
    )


def test_bars_scale_to_the_budget():
    e = _estimate({"weights@gpu": 50, "kv_cache@gpu": 25, "weights@cpu": 10}, {"gpu": 100})
    legend, gpu, cpu = cli_module.memory_bars(e, width=20)
    assert legend.startswith("memory  █ weights")
    assert gpu == "  gpu  [██████████▓▓▓▓▓·····]  0.00 GB of 0.00 GB, 0.00 GB free"
    assert cpu.startswith("  cpu   ██                   ") and "no budget" in cpu


def test_bars_overflow_past_the_bracket():
    e = _estimate(
        {"weights@gpu": 150, "recurrent_state@gpu": 10, "compute_buffer@gpu": 20, "fit_margin@gpu": 20},
        {"gpu": 100},
    )
    _, gpu = cli_module.memory_bars(e, width=10)
    assert gpu.startswith("  gpu  [██████████]█████▒░░▚▚  ")
    huge = _estimate({"weights@gpu": 1000}, {"gpu": 100})
    assert cli_module.memory_bars(huge, width=10)[1].startswith("  gpu  [██████████]██████████»")


def test_bars_unified_total_row():
    e = _estimate({"weights@gpu": 60, "kv_cache@cpu": 20}, {"gpu": 75, "total": 100})
    rows = cli_module.memory_bars(e, width=20)
    assert [r.split()[0] for r in rows[1:]] == ["gpu", "cpu", "total"]
    assert rows[-1].startswith("  total  [████████████▓▓▓▓····]")


def test_progress_only_on_a_terminal():
    tty, pipe = _Tty(), io.StringIO()
    for stream in (tty, pipe):
        progress = qwenfit.cli.args.Progress(stream)
        progress(1, 2, "model-00001-of-00002.safetensors")
        progress(2, 2, "model-00002-of-00002.safetensors")
    assert "reading headers 1/2: model-00001-of-00002.safetensors" in tty.getvalue()
    assert pipe.getvalue() == ""


def test_plain_dict_json_matches_schema_id():
    from qwenfit.report.schema import SCHEMA_ID

    assert cli_module.SCHEMA_ID == SCHEMA_ID


def test_machine_flags(monkeypatch):
    import argparse

    def machine(**kw: object) -> Machine | None:
        ns = argparse.Namespace(**{"gpu": None, "vram": None, "gpus": None, "ram": None, **kw})
        return qwenfit.cli.args.machine_of(ns, ["llama.cpp"])

    assert machine() is None
    m = machine(vram=24.0, gpus=2, ram=64.0)
    assert m is not None and m.n_devices == 2 and m.vram_bytes == 48 * 10**9
    m = machine(ram=64.0)
    assert m is not None and not m.devices and m.ram_bytes == 64 * 10**9
    m = machine(gpu=["2x rtx-3090"])
    assert m is not None and m.n_devices == 2 and m.devices[0].id == "rtx-3090"


def test_parser_knows_every_command():
    import argparse

    full = cli_module.build_parser()
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(cli_module.COMMANDS)
    for name in cli_module.COMMANDS:  # main() builds only the command it runs
        only = cli_module.build_parser(name)
        assert set(next(a for a in only._actions if isinstance(a, argparse._SubParsersAction)).choices) == {
            name
        }
