"""The --json outputs and their committed JSON Schema (data/schema/qwenfit-output-v2.schema.json).

Outputs are validated twice: through the pydantic models the schema is generated from
(``Output.model_validate_json``: unknown keys, missing keys and wrong types all fail), and against the
committed file itself with jsonschema; the committed file must equal a fresh generation.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Any, get_args

import pytest
from cli_helpers import REPO
from pydantic import ValidationError

from qwenfit.report.schema import (
    SCHEMA_FILE,
    SCHEMA_ID,
    SCHEMA_VERSION,
    AnyOutput,
    Output,
    output_json_schema,
)

SCHEMA_PATH = REPO / "data" / "schema" / SCHEMA_FILE

COMMANDS = {
    "plan": ["plan", "35B-A3B", "--gpu", "rtx-4090", "--ram", "64"],
    "plan-cpu": ["plan", "4B", "--ram", "16", "--engine", "llama.cpp"],
    "plan-nothing-fits": ["plan", "397B-A17B", "--vram", "8", "--ram", "16", "--engine", "llama.cpp"],
    "check-fits": ["check", "35B-A3B", "--quant", "Q4_K_M", "--context", "32768", "--gpu", "rtx-4090"],
    "check-does-not-fit": ["check", "35B-A3B", "--quant", "Q4_K_M", "--vram", "24", "--ram", "64"],
    "check-vllm": ["check", "27B", "--quant", "fp8", "--engine", "vllm", "--gpu", "2x rtx-3090"],
    "check-mlx": ["check", "27B", "--quant", "mlx-4bit", "--engine", "mlx", "--gpu", "m4-max-128"],
    "inspect": ["inspect", "35B-A3B"],
    "inspect-gguf": ["inspect", str(REPO / "tests" / "fixtures" / "gguf" / "moe-vision-mtp-Q8_0.gguf")],
    "quants": ["quants", "9B"],
    "quants-mlx": ["quants", "9B", "--engine", "mlx"],
    "models": ["models"],
    "hardware-list": ["hardware", "list"],
    "hardware-show": ["hardware", "show", "2x rtx-3090", "--ram", "128"],
    "hardware-detect": ["hardware", "detect"],
    "artifacts": ["artifacts", "9B"],
    "need": ["need", "9B", "--quant", "Q4_K_M"],
    "error": ["check", "9X", "--vram", "24"],  # an unknown model: exit 2 and the error object
    "check-command": ["check", "--vram", "24", "--ram", "64", "--json", "--", "llama-server", "-m",
                      "Qwen3.5-35B-A3B-Q4_K_M.gguf", "-c", "262144", "-np", "2", "-fa", "on", "--jinja"],
}  # fmt: skip


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "gen_output_schema", REPO / "scripts" / "gen_output_schema.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_schema_equals_a_fresh_generation():
    gen = _generator()
    assert gen.OUT == SCHEMA_PATH
    assert SCHEMA_PATH.read_text(encoding="utf-8") == gen.render(), (
        "data/schema is out of date: run .venv/bin/python scripts/gen_output_schema.py"
    )


def test_schema_is_versioned():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert f"qwenfit-output-v{SCHEMA_VERSION}" == SCHEMA_ID and schema["$id"] == SCHEMA_FILE
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    kinds = {get_args(m.model_fields["kind"].annotation)[0] for m in get_args(get_args(AnyOutput)[0])}
    assert set(schema["discriminator"]["mapping"]) == kinds
    assert output_json_schema() == schema


@pytest.fixture(scope="module")
def outputs() -> dict[str, tuple[int, str]]:
    import contextlib
    import io

    import qwenfit.cli

    out: dict[str, tuple[int, str]] = {}
    for name, argv in COMMANDS.items():
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = qwenfit.cli.main(argv if "--json" in argv else [*argv, "--json"])
        out[name] = (code, buf.getvalue())
    return out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_json_output_validates(outputs, name):
    code, text = outputs[name]
    assert code in ((2,) if name == "error" else (0, 1)), (name, text[:500])
    result = Output.model_validate_json(text).root
    assert result.kind == (name if name.startswith(("hardware", "check-command")) else name.split("-")[0])
    assert json.loads(text)["schema"] == SCHEMA_ID


def test_every_kind_is_exercised(outputs):
    seen = {Output.model_validate_json(text).root.kind for _, text in outputs.values()}
    kinds = {get_args(m.model_fields["kind"].annotation)[0] for m in get_args(get_args(AnyOutput)[0])}
    assert seen == kinds


def _mutations(data: dict[str, Any]) -> list[dict[str, Any]]:
    extra = {**data, "surprise": 1}
    missing = {k: v for k, v in data.items() if k != "kind" and k != "schema"}
    wrong_schema = {**data, "schema": "qwenfit-output-v0"}
    return [extra, missing, wrong_schema]


@pytest.mark.parametrize(
    "name", ["plan", "check-does-not-fit", "check-command", "inspect", "quants", "hardware-show"]
)
def test_validation_rejects_altered_output(outputs, name):
    data = json.loads(outputs[name][1])
    for bad in _mutations(data):
        with pytest.raises(ValidationError):
            Output.model_validate_json(json.dumps(bad))


def test_validation_is_strict_about_nested_types(outputs):
    data = json.loads(outputs["check-does-not-fit"][1])
    data["terms"][0]["bytes"] = "12"  # a string is not bytes
    with pytest.raises(ValidationError):
        Output.model_validate_json(json.dumps(data))
    data = json.loads(outputs["plan"][1])
    data["options"][0]["quality_class"] = "great"
    with pytest.raises(ValidationError):
        Output.model_validate_json(json.dumps(data))
    data = json.loads(outputs["plan"][1])
    del data["best"]["estimate"]["terms"][0]["exact"]
    with pytest.raises(ValidationError):
        Output.model_validate_json(json.dumps(data))


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_json_output_validates_against_the_committed_schema_file(outputs, name):
    """The committed JSON Schema itself, applied by jsonschema (what a consuming tool would use)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(outputs[name][1]), schema, cls=jsonschema.Draft202012Validator)
