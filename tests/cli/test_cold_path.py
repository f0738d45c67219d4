"""The cold path: ``qwenfit --help``, no command and argument errors import nothing of the model, and the
static lists they use (each command's help, the built-in engines' names) equal what they stand for."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from cli_helpers import REPO

import qwenfit.cli as cli_module
from qwenfit.cli.args import BUILTIN_ENGINES

# nothing of the model, the engines, the catalog or the hardware data
HEAVY = ("qwenfit.core", "qwenfit.api", "qwenfit.loaders", "qwenfit.report", "typing", "difflib")


def _imported(*argv: str) -> list[str]:
    code = (
        "import sys, json\nfrom qwenfit.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n"
        "    pass\nprint(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=REPO, check=False
    )
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [(), ("--help",), ("--version",), ("nonsense",)])
def test_top_level_imports_nothing_heavy(argv):
    heavy = [m for m in _imported(*argv) if m.startswith(HEAVY)]
    assert heavy == []


def test_argument_error_imports_no_model_code():
    mods = _imported("check", "35B-A3B", "--vram", "x")
    assert not [m for m in mods if m.startswith(("qwenfit.core.engines", "qwenfit.api", "qwenfit.loaders"))]


def test_import_qwenfit_is_light():
    done = subprocess.run(
        [sys.executable, "-c", "import qwenfit, sys; print(sorted(sys.modules))"],
        capture_output=True, text=True, cwd=REPO, check=True,
    )  # fmt: skip
    assert "typing" not in done.stdout and "qwenfit.core" not in done.stdout


def test_top_level_help_equals_the_full_parsers():
    assert cli_module._top_parser().format_help() == cli_module.build_parser().format_help()


def test_command_help_is_each_modules_own():
    full = cli_module.build_parser()
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    assert helps == cli_module.COMMAND_HELP


def test_builtin_engine_names_are_the_registrys():
    from qwenfit.core.engines.base import names

    assert names()[: len(BUILTIN_ENGINES)] == BUILTIN_ENGINES


# what a check that fits never needs: the alternative search, the exact scheduler replay and the
# compute-buffer derivation (closed forms and precompiled values serve it), the calibration code
# (only its stored constants are read), command checks, the GPU formats (a GGUF check)
CHECK_FITS_SKIPS = (
    "qwenfit.core.fit.nearest",
    "qwenfit.core.engines.llama_cpp.derive",
    "qwenfit.core.engines.llama_cpp.gpu_compute",
    "qwenfit.core.engines.llama_cpp.sched",
    "qwenfit.core.engines.llama_cpp.ggml_alloc",
    "qwenfit.core.engines.llama_cpp.graph",
    "qwenfit.loaders.calibration",
    "qwenfit.api.commands",
    "qwenfit.core.formats.gpu",  # a GGUF quantization's name is resolved without the GPU formats
) + (("platformdirs",) if sys.platform.startswith("linux") else ())  # elsewhere it finds the config dir


def test_a_check_that_fits_imports_only_what_its_answer_uses():
    mods = _imported("check", "35B-A3B", "--quant", "Q4_K_M", "--vram", "24", "--context", "32768", "--json")
    assert "qwenfit.core.fit.assemble" in mods  # it did run
    assert [m for m in mods if m.startswith(CHECK_FITS_SKIPS)] == []


def test_a_check_that_does_not_fit_searches_alternatives():
    mods = _imported("check", "35B-A3B", "--quant", "Q4_K_M", "--vram", "24", "--json")
    assert "qwenfit.core.fit.nearest" in mods


# standard library modules a check's answer does not need: hashlib (OpenSSL: digests are compared
# by stamps, llama.cpp's model keys precompiled), difflib (misspellings only), shutil (argparse's
# help width, read without it)
CHECK_STDLIB_SKIPS = ("hashlib", "_hashlib", "difflib", "shutil")


@pytest.mark.parametrize("context", [("--context", "32768"), ()], ids=["fits", "does-not-fit"])
def test_a_check_imports_no_stdlib_module_it_does_not_use(context):
    argv = ("check", "35B-A3B", "--quant", "Q4_K_M", "--vram", "24", *context, "--json")
    _imported(*argv)  # the first run after a checkout writes the data files' stamps (hashing them)
    mods = _imported(*argv)
    assert [m for m in mods if m in CHECK_STDLIB_SKIPS] == []


def test_dataclass_code_kept_between_runs_makes_the_same_classes(tmp_path, monkeypatch):
    """The methods ``@dataclass`` writes, compiled once and reused from the kept file, behave as
    freshly compiled ones; a class outside qwenfit is compiled as before and not kept."""
    import builtins
    import dataclasses
    import types

    from qwenfit.cli import dataclass_code as dc

    monkeypatch.setattr(dc, "_FILE", tmp_path / "kept.marshal")
    monkeypatch.setattr(dc, "_codes", {})
    monkeypatch.setattr(dc, "_used", set())
    monkeypatch.setattr(dc, "_installed", False)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(dataclasses, "exec", builtins.exec, raising=False)  # restored after the test

    def make(module: str) -> type:
        mod = types.ModuleType(module)
        sys.modules[module] = mod
        try:
            ns: dict[str, object] = {"__name__": module}
            exec("from __future__ import annotations\nclass P:\n    x: int\n    y: str = 'a'\n", ns)
            return dataclasses.dataclass(frozen=True, slots=True)(ns["P"])  # type: ignore[arg-type]
        finally:
            del sys.modules[module]

    plain = make("qwenfit.fake_plain")
    dc.install()
    first = make("qwenfit.fake_kept")
    kept = len(dc._codes)
    assert kept >= 4  # __init__, __repr__, __eq__, __hash__, __setattr__, __delattr__
    dc.save()
    assert (tmp_path / "kept.marshal").exists()
    monkeypatch.setattr(dc, "_codes", {})
    monkeypatch.setattr(dc, "_installed", False)
    dc.install()
    assert len(dc._codes) == kept  # loaded: nothing to compile
    again = make("qwenfit.fake_kept")
    make("elsewhere.fake")
    assert len(dc._codes) == kept  # another package's texts are not kept
    for cls in (first, again):
        p = cls(1)
        assert repr(p).endswith("P(x=1, y='a')") and p == cls(1, "a") and hash(p) == hash(plain(1))
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.x = 2  # type: ignore[misc]


@pytest.mark.parametrize(("command", "collecting"), [("models", False), ("mcp", True)])
def test_a_command_runs_without_the_cyclic_collector_a_server_with_it(command, collecting, monkeypatch):
    """A short command runs with the cyclic garbage collector off (a tenth of a check's time), a server
    (``qwenfit mcp``) with it; either way it is on again when ``main`` returns."""
    import gc
    import importlib

    module = importlib.import_module(f"qwenfit.cli.{command}")
    seen: list[bool] = []
    monkeypatch.setattr(module, "run", lambda args: seen.append(gc.isenabled()) or 0)
    assert gc.isenabled()
    assert cli_module.main([command]) == 0
    assert seen == [collecting]
    assert gc.isenabled()
