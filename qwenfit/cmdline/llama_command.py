"""A llama-server / llama-cli launch as ParsedCommands: one, or one per preset when llama-server runs
as a router over a ``--models-preset`` INI (common/preset.cpp: the ``[*]`` section applies to all)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from qwenfit.cmdline.frontend import Launch, cwd_path
from qwenfit.cmdline.llama_args import LLAMA_OPTIONS
from qwenfit.cmdline.llama_cpp import FALSEY, read_llama_args
from qwenfit.cmdline.llama_rules import llama_model, llama_settings
from qwenfit.cmdline.parsed import Frame, ParsedCommand
from qwenfit.errors import UsageError

__all__ = ["parse_llama", "preset_args"]

ENGINE = "llama.cpp"


def parse_llama(launch: Launch, env: Mapping[str, str], cwd: str | None) -> list[ParsedCommand]:
    tool = launch.tool
    st = read_llama_args(tool, launch.args, env, launch.unresolved)
    if (
        tool == "llama-server"
        and "model" not in st.values
        and "hf_repo" not in st.values
        and "model_url" not in st.values
    ):
        if "models_preset" in st.values:
            return _router(launch, env, cwd, str(st.values["models_preset"]))
        raise UsageError(
            "llama-server without -m or -hf runs as a router and loads models on request"
            + (" from --models-dir" if "models_dir" in st.values else "")
            + ": give the model's own command (or --models-preset with the file)"
        )
    if "models_preset" in st.values:
        st.ignored.append(st.spelled["models_preset"])
    return [_one(launch, env, cwd, st, list(launch.args))]


def _one(
    launch: Launch, env: Mapping[str, str], cwd: str | None, st: Any, args: list[str], name: str = ""
) -> ParsedCommand:
    ref = llama_model(st, cwd)
    if ref.model is None:
        raise UsageError(f"{launch.tool}: error: --model is required")
    server = launch.tool in ("llama-server", "llama-cli")
    settings, raw, ignored, notes = llama_settings(
        st, ref, server=server, env=env, n_gpus_hint=launch.n_gpus_hint
    )
    if launch.tool == "llama-cli":
        notes.append("llama-cli (0c1e570) runs llama-server in-process (tools/cli/cli-server.h): server=True")
    if launch.engine_version:
        settings["engine_version"] = launch.engine_version
    notes = [*launch.notes, *([f"preset {name}"] if name else []), *notes]
    return ParsedCommand(
        launch.tool,
        ENGINE,
        ref.model,
        ref.kind,
        ref.quant,
        settings,
        raw,
        tuple(ignored),
        tuple(dict.fromkeys(notes)),
        tuple(launch.argv),
        ref.catalog,
        Frame("llama", tuple(launch.prefix), tuple(args)),
    )


def preset_args(options: Mapping[str, str]) -> list[str]:
    """INI ``key = value`` pairs as llama-server arguments (common_preset::to_args): the key is a flag
    without its dashes (or an environment variable name); a switch set to a false value becomes its
    negative form, or is left out."""
    by_key: dict[str, tuple[str, bool, Any]] = {}
    for row in LLAMA_OPTIONS:
        if "S" not in row[5]:
            continue
        for a in row[1]:
            by_key[a.lstrip("-")] = (row[1][-1], True, row)
        for a in row[2]:
            by_key[a.lstrip("-")] = (row[2][-1], False, row)
        if row[4]:
            by_key[row[4]] = (row[1][-1], True, row)
    out: list[str] = []
    for key, value in options.items():
        if key in ("load-on-startup", "stop-timeout", "dedup-cache-models"):
            continue
        if key not in by_key:
            out.append("--" + key)  # llama.cpp: "option not recognized in preset"; the parser names it
            out.append(value)
            continue
        flag, positive, row = by_key[key]
        if row[3] == "bool":
            on = value not in FALSEY if positive else value not in ("on", "enabled", "true", "1")
            out.append(row[1][-1] if on else row[2][-1])
        elif row[3] == "flag":
            if value not in FALSEY:
                out.append(flag)
        else:
            out += [flag, value]
    return out


def _router(launch: Launch, env: Mapping[str, str], cwd: str | None, path: str) -> list[ParsedCommand]:
    from qwenfit.cmdline.configs import preset_sections

    full = cwd_path(path, cwd)
    if not os.path.isfile(full):
        raise UsageError(
            f"llama-server --models-preset {path}: router mode, and the preset file is not here "
            f"({os.path.dirname(full)}); give the file (or each model's command)"
        )
    with open(full, encoding="utf-8") as f:
        glob, sections = preset_sections(f.read())
    base = [
        a
        for i, a in enumerate(launch.args)
        if a != "--models-preset" and (i == 0 or launch.args[i - 1] != "--models-preset")
    ]
    out, errors = [], []
    for name, options in sections.items():
        args = [*base, *preset_args(glob), *preset_args(options)]
        try:
            st = read_llama_args(launch.tool, args, env, launch.unresolved)
            out.append(_one(launch, env, cwd, st, args, name))
        except UsageError as exc:
            errors.append(f"preset [{name}]: {exc}")
    if errors:
        raise UsageError("; ".join(errors))
    return out
