"""Files that hold launch commands: a llama-swap ``config.yaml``, a docker compose file, a systemd
unit, and llama-server's ``--models-preset`` INI. Each yields the shell text (or argv) of its
commands with their environment; YAML is imported only here, when such a file is read."""

from __future__ import annotations

import functools
import importlib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qwenfit.cmdline.shell import expand_text
from qwenfit.errors import UsageError

__all__ = [
    "Entry",
    "compose_entries",
    "detect",
    "llama_swap_entries",
    "load_yaml",
    "modelfile_lines",
    "preset_sections",
    "set_parameter",
    "systemd_entry",
]


@dataclass
class Entry:
    """One command found in a file: its name there, the shell text or argv, its environment, and
    (docker compose) the positional arguments of an entrypoint script and the image."""

    name: str
    text: str = ""
    argv: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    positional: list[str] = field(default_factory=list)
    image: str | None = None
    notes: list[str] = field(default_factory=list)


def detect(text: str) -> str:
    """ "llama-swap" | "compose" | "systemd" | "nix" | "shell" (Modelfiles are told apart elsewhere)."""
    if re.search(r"^models:\s*$", text, re.M) and re.search(r"^\s+cmd:", text, re.M):
        return "llama-swap"
    if re.search(r"^services:\s*$", text, re.M):
        return "compose"
    if re.search(r"^\[Service\]\s*$", text, re.M) or re.search(r"^ExecStart=", text, re.M):
        return "systemd"
    if re.search(r"^\s*[\w.\"-]+\s*=\s*\{\s*$", text, re.M) and re.search(r";\s*$", text, re.M):
        return "nix"
    return "shell"


def load_yaml(text: str, what: str) -> Any:
    """``yaml.safe_load`` (PyYAML is imported only when a YAML file is read)."""
    yaml = importlib.import_module("yaml")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{what}: not valid YAML: {exc}") from None


def llama_swap_entries(text: str) -> list[Entry]:
    """llama-swap: one entry per ``models:`` entry; ``${name}`` macros (global ``macros:`` and the
    model's own) expanded, ``${PORT}`` kept (it only sets --port); comment lines dropped."""
    data = load_yaml(text, "llama-swap config")
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise UsageError("llama-swap config without a models: mapping")
    macros = {str(k): str(v).strip() for k, v in (data.get("macros") or {}).items()}
    out = []
    for name, model in data["models"].items():
        if not isinstance(model, dict) or "cmd" not in model:
            raise UsageError(f"llama-swap model {name!r} has no cmd")
        local = {**macros, **{str(k): str(v).strip() for k, v in (model.get("macros") or {}).items()}}
        cmd = _macros(str(model["cmd"]), local)
        lines = [ln for ln in cmd.splitlines() if not ln.strip().startswith("#")]
        env = {}
        for item in model.get("env") or []:
            k, _, v = str(item).partition("=")
            env[k] = v
        out.append(Entry(f"llama-swap model {name!r}", text=" ".join(ln.strip() for ln in lines), env=env))
    return out


def _macros(cmd: str, macros: Mapping[str, str]) -> str:
    for _ in range(5):  # macros may use macros
        cmd = re.sub(r"\$\{([\w.-]+)\}", lambda m: macros.get(m.group(1), m.group(0)), cmd)
    return cmd


def compose_entries(text: str, env: Mapping[str, str]) -> list[Entry]:
    """docker compose: one entry per service, with compose's ``${VAR:-default}`` interpolation; the
    command runs through the entrypoint (a ``bash -c SCRIPT`` entrypoint gets the command as "$@")."""
    data = load_yaml(text, "docker compose file")
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise UsageError("docker compose file without services:")
    out = []
    for name, svc in data["services"].items():
        if not isinstance(svc, dict):
            continue
        notes: list[str] = []
        interp = functools.partial(_interp, env=env, notes=notes)

        senv: dict[str, str] = {}
        environment = svc.get("environment") or {}
        items = (
            environment.items()
            if isinstance(environment, dict)
            else (tuple(str(e).partition("=")[::2]) if "=" in str(e) else (str(e), None) for e in environment)
        )
        for k, v in items:
            if v is None:
                if k in env:
                    senv[k] = env[k]
            else:
                senv[str(k)] = interp(str(v))
        image = interp(str(svc["image"])) if "image" in svc else None
        entry = _words(svc.get("entrypoint"), interp)
        command = _words(svc.get("command"), interp)
        e = Entry(f"compose service {name!r}", env=senv, image=image, notes=notes)
        if entry and re.fullmatch(r"(/usr)?(/bin/)?(ba)?sh", entry[0]) and entry[1:2] == ["-c"]:
            rest = [*entry[2:], *(command or [])]
            if not rest:
                raise UsageError(f"{e.name}: bash -c without a script")
            e.text, e.positional = rest[0], rest[2:]  # bash -c SCRIPT $0 $1 ...
        else:
            e.argv = [*(entry or []), *(command or [])]
        out.append(e)
    return out


def _interp(value: str, *, env: Mapping[str, str], notes: list[str]) -> str:
    text, unset = expand_text(value, env)
    notes.extend(f"${{{u}}} is not set" for u in sorted(unset))
    return text


def _words(value: Any, interp: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return [interp(str(v)) for v in value]
    return shlex.split(interp(str(value)))


def systemd_entry(text: str) -> Entry:
    """A systemd unit's ``ExecStart=`` (with its ``\\`` continuations) and ``Environment=``."""
    joined = re.sub(r"\\\n", " ", text)
    env: dict[str, str] = {}
    for m in re.finditer(r"^Environment=(.*)$", joined, re.M):
        for item in shlex.split(m.group(1)):
            k, _, v = item.partition("=")
            env[k] = v
    start = re.search(r"^ExecStart=[-@:+!]*(.*)$", joined, re.M)
    if not start:
        raise UsageError("systemd unit without ExecStart=")
    return Entry("systemd ExecStart", text=start.group(1), env=env)


def preset_sections(text: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """llama-server ``--models-preset`` INI (common/preset.cpp): the ``[*]`` section and the others."""
    sections: dict[str, dict[str, str]] = {}
    current = "default"
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith(("#", ";")):
            continue
        m = re.fullmatch(r"\[(.+)\]", s)
        if m:
            current = m.group(1)
            sections.setdefault(current, {})
            continue
        key, eq, value = s.partition("=")
        if not eq:
            raise UsageError(f"models preset: cannot read the line {s!r}")
        if key.strip() != "version":
            sections.setdefault(current, {})[key.strip()] = value.strip()
    glob = sections.pop("*", {})
    default = sections.pop("default", {})
    return {**default, **glob}, sections


def modelfile_lines(text: str) -> list[str]:
    """The Modelfile's lines without its common indentation (Modelfiles embedded in other files)."""
    lines = text.splitlines()
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents) if indents else 0
    return [line[cut:] for line in lines]


def set_parameter(text: str, name: str, value: Any) -> str:
    """The Modelfile with ``PARAMETER name value`` set (None: removed)."""
    lines = modelfile_lines(text)
    pat = re.compile(rf"^\s*PARAMETER\s+{re.escape(name)}\s", re.I)
    kept = [line for line in lines if not pat.match(line + " ")]
    if value is not None:
        at = max(
            (i for i, line in enumerate(kept) if line.strip().upper().startswith(("FROM", "PARAMETER"))),
            default=len(kept) - 1,
        )
        kept.insert(at + 1, f"PARAMETER {name} {shlex.quote(str(value))}")
    return "\n".join(kept) + "\n"
