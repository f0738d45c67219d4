"""Repository-level checks: public API, import cost, lint, types, the wheel, README vs CI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

import qwenfit

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_public_api_is_pinned():
    assert sorted(qwenfit.__all__) == [
        "CheckpointError",
        "CommandCheck",
        "ConfigError",
        "Device",
        "DoesNotFit",
        "Estimate",
        "HubError",
        "Inventory",
        "Machine",
        "ModelSpec",
        "Option",
        "ParamCount",
        "Placement",
        "Plan",
        "QwenfitError",
        "Recipe",
        "Requirements",
        "SettingError",
        "SourceNotFoundError",
        "StoredTensor",
        "Tensor",
        "Term",
        "TextSpec",
        "UnknownHardwareError",
        "UnknownModelError",
        "UnsupportedModelError",
        "UsageError",
        "VisionSpec",
        "WeightEntry",
        "WeightMap",
        "__version__",
        "check",
        "check_command",
        "check_commands",
        "estimate",
        "load",
        "max_context",
        "max_sequences",
        "plan",
        "recipe_from_gguf",
        "requirements",
        "weights",
    ]
    for name in qwenfit.__all__:
        assert hasattr(qwenfit, name)


def test_import_is_light():
    code = textwrap.dedent("""
        import sys, qwenfit
        heavy = [m for m in ("numpy", "huggingface_hub", "gguf", "pydantic", "safetensors", "yaml", "torch")
                 if m in sys.modules]
        print(heavy)
        qwenfit.load("35B-A3B").params.total
        print([m for m in ("numpy", "huggingface_hub", "gguf", "pydantic") if m in sys.modules])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "[]"]


def test_core_is_pure():
    bad = re.compile(
        r"^\s*(from|import)\s+(qwenfit\.loaders|qwenfit\.cli|pydantic|numpy|huggingface_hub|gguf|"
        r"yaml|safetensors|os|pathlib|socket|urllib)\b",
        re.M,
    )
    for path in (REPO / "qwenfit" / "core").rglob("*.py"):
        assert not bad.search(path.read_text()), f"{path.name} imports I/O or edge modules"


def test_ruff():
    result = subprocess.run(
        [str(BIN / "ruff"), "check", "qwenfit", "tests", "scripts"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy():
    result = subprocess.run(
        [str(BIN / "mypy"), "--no-error-summary"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert len(blocks) >= 2, "README must open with the install command and the test command"
    install, tests = blocks[0].strip(), blocks[1].strip()
    assert "pip install" in install and ".[dev]" in install
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci, f"{tests!r} is not a line of .ci/run"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    (found,) = dist.glob("qwenfit-*.whl")
    return found


@pytest.mark.slow
def test_wheel_ships_the_data(tmp_path, wheel):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "import json, qwenfit; s = qwenfit.load('Qwen/Qwen3.5-35B-A3B'); "
        "from qwenfit.loaders import compiled; "
        "found = compiled.table('Qwen3.5-35B-A3B') is not None; "
        "print(json.dumps([qwenfit.__file__, s.params.total, s.source, found]))"
    )
    out = subprocess.run(
        [str(py), "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    where, total, source, precompiled = json.loads(out.stdout)
    assert where.startswith(str(env_dir)), where  # the installed copy, not the checkout
    assert total == 35_951_822_704
    assert "Qwen3.5-35B-A3B.json" in source
    # the wheel's data/compiled.json matches the installed sources' digest: the installed copy
    # starts from the precompiled tables (issue #20), it does not silently compute them
    assert precompiled


CHECK = ["check", "35B-A3B", "--quant", "Q4_K_M", "--vram", "24", "--context", "32768", "--json"]
_SYSTEM_PYTHON = Path("/usr/bin/python3")  # readable by an unprivileged user (this venv's may not be)


@pytest.mark.slow
@pytest.mark.skipif(
    not (
        hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("runuser") and _SYSTEM_PYTHON.exists()
    ),
    reason="needs root, runuser and /usr/bin/python3 to run as an unprivileged user",
)
def test_a_read_only_install_checks_and_writes_nothing(wheel):
    """Installed where the user cannot write (a system site-packages), a check gives the same answer
    as anywhere and leaves the install as it was: the stamps that spare the digest (loaders/stamps.py)
    are best effort, and the precompiled tables are still used (their digest is checked each start)."""
    root = Path(tempfile.mkdtemp(prefix="qwenfit-ro-"))
    try:
        site = root / "site"
        with zipfile.ZipFile(wheel) as z:  # a pure-Python wheel's install: its files in site-packages
            z.extractall(site)
        for p in [root, *root.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        before = sorted((str(p), p.stat().st_mtime_ns) for p in site.rglob("*"))
        env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "PYTHONDONTWRITEBYTECODE": "1"}

        def as_nobody(code: str) -> str:
            done = subprocess.run(
                [str(shutil.which("runuser")), "-u", "nobody", "--", str(_SYSTEM_PYTHON), "-I", "-c",
                 f"import sys; sys.path.insert(0, {str(site)!r}); {code}"],
                capture_output=True, text=True, env=env, cwd=root, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            return done.stdout

        answer = as_nobody(
            f"import runpy; sys.argv = {['qwenfit', *CHECK]!r}; "
            "runpy.run_module('qwenfit', run_name='__main__')"
        )
        precompiled = as_nobody(
            "import qwenfit.loaders.catalog; from qwenfit.loaders import compiled; "
            "print(compiled.table('Qwen3.5-35B-A3B') is not None)"
        )
        assert precompiled.strip() == "True"
        assert sorted((str(p), p.stat().st_mtime_ns) for p in site.rglob("*")) == before
        mine = subprocess.run(
            [sys.executable, "-m", "qwenfit", *CHECK], capture_output=True, text=True, cwd=REPO, check=True
        )
        assert json.loads(answer) == json.loads(mine.stdout)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_readme_shows_the_current_plan():
    """The README's example output is the CLI snapshot of its own first command."""
    readme = (REPO / "README.md").read_text()
    shown = re.findall(r"```text\n(qwenfit plan for .*?)\n```", readme, re.S)
    snapshot = (REPO / "tests" / "cli" / "snapshots" / "plan-35b-rtx4090.txt").read_text().split("\n", 2)[2]
    assert shown and shown[0].strip() == snapshot.strip(), "paste tests/cli/snapshots/plan-35b-rtx4090.txt"


_OUTSIDE = re.compile(r"shared/reference|DESIGN\.md|\bref §|reference §|engines §|§[A-D]\.\d")


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def test_sources_cite_nothing_outside_the_repository():
    """Every string a user can see (the shipped data, the calculator export, the terms of an estimate)
    cites engine files, URLs or this repository's docs: never the research notes the project started from."""
    from qwenfit.export import calculator_json

    texts: list[tuple[str, str]] = []
    for path in sorted((REPO / "data").rglob("*")):
        if path.suffix in (".yaml", ".json", ".yml"):
            texts.append((str(path.relative_to(REPO)), path.read_text()))
    for path in sorted((REPO / "qwenfit").rglob("*.py")):
        texts.append((str(path.relative_to(REPO)), path.read_text()))
    texts.append(("calculator export", "\n".join(_strings(calculator_json()))))
    for model, quant, engine in [("35B-A3B", "Q4_K_M", "llama.cpp"), ("27B", "fp8", "vllm"),
                                 ("35B-A3B", "fp8", "sglang"), ("9B", "mlx-4bit", "mlx")]:  # fmt: skip
        hardware = "rtx-4090" if engine != "mlx" else "m4-max-128"
        est = qwenfit.estimate(model, quant, context=8192, engine=engine, hardware=hardware)
        texts.append((f"estimate {model} {quant} {engine}", "\n".join(t.source for t in est.terms)))
    bad = [(where, m.group(0)) for where, text in texts for m in _OUTSIDE.finditer(text)]
    assert not bad, bad


def test_architecture_names_real_files():
    """Every file ARCHITECTURE.md names in backticks exists (the floor plan does not rot): a path from
    the repository root or the package, a bare file name somewhere in the repository."""
    text = (REPO / "ARCHITECTURE.md").read_text()
    tops = ("qwenfit", "tests", "scripts", "data", "docs")
    tracked = {p.name for top in tops for p in (REPO / top).rglob("*")}
    missing = []
    for name in sorted(set(re.findall(r"`([\w./-]+\.(?:py|md|yaml|json|mjs))`", text))):
        if name in ("config.json",) or "*" in name:  # a model's config, a pattern
            continue
        if "/" in name:
            found = (REPO / name).exists() or (REPO / "qwenfit" / name).exists()
        else:
            found = name in tracked
        if not found:
            missing.append(name)
    assert not missing, missing
