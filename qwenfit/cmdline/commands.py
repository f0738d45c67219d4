"""``parse_command``: a command line, a script, or a file's text in; one ParsedCommand per engine
launch out (a llama-swap config or a compose file with several services gives several)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from qwenfit.cmdline.configs import Entry
from qwenfit.cmdline.frontend import Launch, cwd_path, identify, image_program, launches
from qwenfit.cmdline.parsed import ParsedCommand
from qwenfit.errors import UsageError

__all__ = ["parse_command"]


def parse_command(
    cmd: str | Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
) -> list[ParsedCommand]:
    """Read ``cmd`` the way the engine it starts reads it.

    ``cmd`` is an argv (a list of words, run as given) or text: a shell command or script (line
    continuations, ``VAR=x`` prefixes, ``export``, ``nohup``/``uv run``/``docker run`` wrappers), an
    Ollama Modelfile, a llama-swap ``config.yaml``, a docker compose file or a systemd unit. ``env`` is
    the environment the command starts in (``LLAMA_ARG_*``, ``OLLAMA_*``, shell variables it uses);
    ``cwd`` where relative paths (``-m model.gguf``, ``--config x.yaml``, ``-f Modelfile``) are
    looked up. Raises :class:`~qwenfit.errors.UsageError` naming what cannot be read or mapped.
    """
    env = dict(env or {})
    if not isinstance(cmd, str):
        argv = [str(w) for w in cmd]
        notes: list[str] = []
        launch = identify(argv, env, notes)
        if launch is None:
            raise UsageError(
                f"{argv[0] if argv else '(empty)'}: not a command that starts an engine qwenfit reads"
            )
        launch.notes = notes
        return _dispatch(launch, cwd)
    from qwenfit.cmdline.configs import detect, modelfile_lines
    from qwenfit.cmdline.ollama import is_modelfile, parse_modelfile

    recipe = _ollama_recipe(cmd, env)
    if recipe is not None:
        text, serve_env = recipe
        return [parse_modelfile(text, serve_env, cwd)]
    if is_modelfile(cmd):
        return [parse_modelfile("\n".join(modelfile_lines(cmd)), env, cwd)]
    kind = detect(cmd)
    if kind == "nix":
        raise UsageError(
            "this is a Nix expression (an attribute set), not a command or YAML: give the generated "
            "config (e.g. llama-swap's config.yaml) or the command itself"
        )
    if kind == "llama-swap":
        from qwenfit.cmdline.configs import llama_swap_entries

        return _entries(llama_swap_entries(cmd), env, cwd)
    if kind == "compose":
        from qwenfit.cmdline.configs import compose_entries

        return _entries(compose_entries(cmd, env), env, cwd, compose=True)
    if kind == "systemd":
        from qwenfit.cmdline.configs import systemd_entry

        return _entries([systemd_entry(cmd)], env, cwd)
    found = launches(cmd, env)
    if not found:
        raise UsageError(
            "no engine launch found (llama-server, llama-cli, llama-bench, vllm serve, sglang, "
            "mlx_lm.server/generate, ollama, docker run of one of them)"
        )
    out: list[ParsedCommand] = []
    for launch in found:
        out.extend(_dispatch(launch, cwd))
    return out


def _ollama_recipe(text: str, env: Mapping[str, str]) -> tuple[str, dict[str, str]] | None:
    """An Ollama recipe as qwenfit prints it (``# Modelfile`` / its lines / ``# then`` / ``VAR=x
    ollama serve &`` / ``ollama create ...``): the Modelfile, and the environment the server starts
    with (the ``OLLAMA_*`` words before ``ollama serve``)."""
    lines = text.splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip() in ("# Modelfile", "# then")]
    if len(marks) != 2 or lines[marks[0]].strip() != "# Modelfile" or lines[marks[1]].strip() != "# then":
        return None
    from qwenfit.cmdline.shell import split_script

    serve_env = dict(env)
    for command in split_script("\n".join(lines[marks[1] + 1 :]), dict(env)):
        if command.argv[:2] == ["ollama", "serve"]:
            serve_env.update(command.assigns)
    return "\n".join(lines[marks[0] + 1 : marks[1]]), serve_env


def _entries(
    entries: list[Entry], env: Mapping[str, str], cwd: str | None, *, compose: bool = False
) -> list[ParsedCommand]:
    out: list[ParsedCommand] = []
    errors: list[str] = []
    for e in entries:
        try:
            run_env = {**env, **e.env}
            if e.argv is not None:
                found = _compose_argv(e, run_env)
            else:
                found = launches(e.text, run_env, positional=e.positional)
                if compose:
                    found = found[:1]  # the script's first launch (its exec)
            if not found:
                continue
            for launch in found:
                arrays = sorted(u for u in launch.unresolved if "[" in u)
                if arrays:
                    raise UsageError(
                        f"the command adds arguments from a bash array (${{{arrays[0]}}}), which "
                        "qwenfit cannot evaluate without running the script"
                    )
                launch.notes = [f"{e.name}", *e.notes, *launch.notes]
                if compose and e.image:
                    from qwenfit.cmdline.frontend import image_version

                    launch.engine_version = launch.engine_version or image_version(e.image)
                out.extend(_dispatch(launch, cwd))
        except UsageError as exc:
            errors.append(f"{e.name}: {exc}")
    if errors:
        raise UsageError("; ".join(errors))
    if not out:
        raise UsageError("no engine launch found in the file")
    return out


def _compose_argv(e: Entry, env: Mapping[str, str]) -> list[Launch]:
    notes: list[str] = []
    if e.argv:
        launch = identify(e.argv, dict(env), notes)
        if launch is not None:
            launch.notes = notes
            return [launch]
    program = image_program(e.image or "")
    if program is None:
        return []
    tool, words, how = program
    return [
        Launch(
            tool,
            words[0],
            list(e.argv or []),
            list(words),
            dict(env),
            [*words, *(e.argv or [])],
            [how] if how else [],
        )
    ]


def _dispatch(launch: Launch, cwd: str | None) -> list[ParsedCommand]:
    env = launch.env
    tool = launch.tool
    if tool in ("llama-server", "llama-cli", "llama-completion"):
        from qwenfit.cmdline.llama_command import parse_llama

        return parse_llama(launch, env, cwd)
    if tool == "llama-bench":
        from qwenfit.cmdline.llama_bench import parse_bench

        return parse_bench(launch, env, cwd)
    if tool == "vllm serve":
        from qwenfit.cmdline.vllm import parse_vllm

        return [parse_vllm(launch, env, cwd)]
    if tool in ("sglang", "sglang serve"):
        from qwenfit.cmdline.sglang import parse_sglang

        return [parse_sglang(launch, env, cwd)]
    if tool.startswith("mlx_lm."):
        from qwenfit.cmdline.mlx import parse_mlx

        return [parse_mlx(launch, env, cwd)]
    if tool == "ollama":
        from qwenfit.cmdline.ollama import parse_ollama

        return [parse_ollama(launch, env, cwd)]
    if tool == "llama-swap":
        args = launch.args
        path = next(
            (args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--config", "-config")), "config.yaml"
        )
        full = cwd_path(path, cwd)
        if not os.path.isfile(full):
            raise UsageError(f"llama-swap --config {path}: the file is not here")
        with open(full, encoding="utf-8") as f:
            return parse_command(f.read(), env=env, cwd=os.path.dirname(full))
    raise UsageError(f"{tool}: not an engine qwenfit reads")
