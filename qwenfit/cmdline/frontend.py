"""From text to launches: which commands of a script start an engine, unwrapped from ``nohup``,
``env``, ``uv run``, ``exec``, ``sudo``, ``python -m``, ``docker run``, and handed to the parser of
the engine's own flags."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qwenfit.cmdline.shell import Command, split_script
from qwenfit.errors import UsageError

__all__ = ["Launch", "cwd_path", "identify", "image_program", "image_version", "launches"]

TOOLS = {
    "llama-server": "llama-server",
    "llama-cli": "llama-cli",
    "llama-bench": "llama-bench",
    "llama-completion": "llama-completion",
    "mlx_lm.server": "mlx_lm.server",
    "mlx_lm.generate": "mlx_lm.generate",
    "llama-swap": "llama-swap",
}
PY_MODULES = {
    "vllm.entrypoints.openai.api_server": "vllm serve",
    "sglang.launch_server": "sglang",
    "mlx_lm.server": "mlx_lm.server",
    "mlx_lm.generate": "mlx_lm.generate",
}
NOT_LAUNCHES = {
    "echo",
    "printf",
    "cat",
    "grep",
    "pkill",
    "killall",
    "kill",
    "which",
    "type",
    "cd",
    "source",
    ".",
    "ls",
    "pip",
    "pip3",
    "brew",
    "apt",
    "apt-get",
    "git",
    "curl",
    "wget",
    "mkdir",
    "rm",
    "cp",
    "mv",
    "huggingface-cli",
    "hf",
    "test",
    "[",
    "[[",
    "sleep",
    "tee",
    "chmod",
    "tail",
    "head",
    "set",
    "trap",
    "wait",
    "read",
    "local",
}
# wrappers: name -> options that take a value
WRAPPERS: dict[str, set[str]] = {
    "nohup": set(),
    "exec": set(),
    "time": set(),
    "command": set(),
    "stdbuf": set(),
    "caffeinate": set(),
    "sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"},
    "nice": {"-n"},
    "ionice": {"-c", "-n"},
    "taskset": set(),
    "numactl": set(),
    "env": {"-u", "-C", "-S"},
    "chrt": set(),
}
RUNNERS = {
    "uv": {
        "--with",
        "--python",
        "-p",
        "--project",
        "--directory",
        "--env-file",
        "--extra",
        "--group",
        "--index",
        "--from",
        "--with-requirements",
    },
    "uvx": {"--with", "--python", "--from"},
    "pipx": {"--spec", "--python"},
    "conda": {"-n", "--name", "-p", "--prefix"},
    "poetry": set(),
    "pdm": set(),
    "pixi": {"-e"},
}
DOCKER_VALUE_OPTS = set(
    [
        "--add-host",
        "--annotation",
        "--attach",
        "-a",
        "--blkio-weight",
        "--blkio-weight-device",
        "--cap-add",
        "--cap-drop",
        "--cgroup-parent",
        "--cgroupns",
        "--cidfile",
        "--cpu-period",
        "--cpu-quota",
        "--cpu-rt-period",
        "--cpu-rt-runtime",
        "--cpu-shares",
        "-c",
        "--cpus",
        "--cpuset-cpus",
        "--cpuset-mems",
        "--detach-keys",
        "--device",
        "--device-cgroup-rule",
        "--device-read-bps",
        "--device-read-iops",
        "--device-write-bps",
        "--device-write-iops",
        "--dns",
        "--dns-option",
        "--dns-search",
        "--domainname",
        "--entrypoint",
        "--env",
        "-e",
        "--env-file",
        "--expose",
        "--gpus",
        "--group-add",
        "--health-cmd",
        "--health-interval",
        "--health-retries",
        "--health-start-period",
        "--health-timeout",
        "--hostname",
        "-h",
        "--ip",
        "--ip6",
        "--ipc",
        "--isolation",
        "--kernel-memory",
        "--label",
        "-l",
        "--label-file",
        "--link",
        "--link-local-ip",
        "--log-driver",
        "--log-opt",
        "--mac-address",
        "--memory",
        "-m",
        "--memory-reservation",
        "--memory-swap",
        "--memory-swappiness",
        "--mount",
        "--name",
        "--network",
        "--net",
        "--network-alias",
        "--oom-score-adj",
        "--pid",
        "--pids-limit",
        "--platform",
        "--publish",
        "-p",
        "--pull",
        "--restart",
        "--runtime",
        "--security-opt",
        "--shm-size",
        "--stop-signal",
        "--stop-timeout",
        "--storage-opt",
        "--sysctl",
        "--tmpfs",
        "--ulimit",
        "--user",
        "-u",
        "--userns",
        "--uts",
        "--volume",
        "-v",
        "--volumes-from",
        "--workdir",
        "-w",
    ]
)


@dataclass
class Launch:
    """One engine start: the tool, the words before its own arguments (``prefix``), its arguments,
    its environment, and what was learned unwrapping it."""

    tool: str
    program: str
    args: list[str]
    prefix: list[str]
    env: dict[str, str]
    argv: list[str]
    notes: list[str] = field(default_factory=list)
    unresolved: set[str] = field(default_factory=set)
    engine_version: str | None = None
    n_gpus_hint: int | None = None
    legacy_entrypoint: bool = False


def _base(word: str) -> str:
    b = word.replace("\\", "/").rsplit("/", 1)[-1]
    return b[:-4] if b.lower().endswith(".exe") else b


def _skip_options(argv: list[str], i: int, with_value: set[str]) -> int:
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in with_value else 1
    return i


def identify(argv: list[str], env: dict[str, str], notes: list[str]) -> Launch | None:
    """The launch ``argv`` runs (through wrappers), or None when it runs no engine."""
    i, prefix_env = 0, dict(env)
    while i < len(argv):
        word = _base(argv[i])
        if word in WRAPPERS:
            i += 1
            if word == "env":
                while i < len(argv) and (argv[i].startswith("-") or "=" in argv[i]):
                    if "=" in argv[i] and not argv[i].startswith("-"):
                        k, val = argv[i].split("=", 1)
                        prefix_env[k] = val
                        i += 1
                    else:
                        i += 2 if argv[i] in WRAPPERS["env"] else 1
            elif word == "taskset":
                listed = any(a in ("-c", "--cpu-list") for a in argv[i : i + 3])
                i = _skip_options(argv, i, {"-c", "--cpu-list"}) + (0 if listed else 1)
            else:
                i = _skip_options(argv, i, WRAPPERS[word])
            continue
        if (word in RUNNERS and i + 1 < len(argv) and argv[i + 1] in ("run", "exec")) or word == "uvx":
            i = _skip_options(argv, i + (1 if word == "uvx" else 2), RUNNERS[word])
            continue
        break
    if i >= len(argv):
        return None
    rest = argv[i:]
    first = _base(rest[0])
    found = _tool(rest, first)
    if found is None and first not in NOT_LAUNCHES and first not in ("vllm", "sglang", "ollama", "docker"):
        # an unknown wrapper script (./profile.sh /app/llama-bench ...): the first word that is a tool
        for j in range(1, len(rest)):
            found = _tool(rest[j:], _base(rest[j]))
            if found is not None:
                notes.append(f"run through {rest[0]}")
                i, rest = i + j, rest[j:]
                break
    if found is None:
        return None
    tool, n_prog = found
    if tool == "docker":
        return _docker(argv, i, prefix_env, notes)
    launch = Launch(tool, rest[0], list(rest[n_prog:]), list(argv[: i + n_prog]), prefix_env, list(argv))
    launch.legacy_entrypoint = "vllm.entrypoints.openai.api_server" in rest[:n_prog]
    return launch


def _tool(rest: list[str], word: str) -> tuple[str, int] | None:
    if word in TOOLS:
        return TOOLS[word], 1
    if word.startswith(("mlx_vlm", "mlx-vlm")):
        raise UsageError(f"{rest[0]}: mlx-vlm is not an engine qwenfit models (its MLX engine is mlx-lm)")
    nxt = rest[1] if len(rest) > 1 else ""
    if word == "vllm" and nxt == "serve":
        return "vllm serve", 2
    if word == "sglang" and nxt == "serve":
        return "sglang serve", 2
    if word == "mlx_lm" and nxt in ("server", "generate"):
        return f"mlx_lm.{nxt}", 2
    if word == "ollama" and nxt in ("run", "serve", "create"):
        return "ollama", 1
    if word in ("docker", "podman", "nerdctl") and (nxt == "run" or rest[1:3] == ["container", "run"]):
        return "docker", 1
    if re.fullmatch(r"python[0-9.]*", word):
        j = _skip_options(rest, 1, {"-X", "-W"}) if nxt != "-m" else 1
        if j + 1 < len(rest) and rest[j] == "-m":
            module = rest[j + 1]
            if module.startswith("mlx_vlm"):
                raise UsageError(f"python -m {module}: mlx-vlm is not an engine qwenfit models")
            if module == "mlx_lm" and j + 2 < len(rest) and rest[j + 2] in ("server", "generate"):
                return f"mlx_lm.{rest[j + 2]}", j + 3
            if module in PY_MODULES:
                return PY_MODULES[module], j + 2
    return None


def _docker(argv: list[str], i: int, env: dict[str, str], notes: list[str]) -> Launch | None:
    """``docker run [options] IMAGE [args]``: the container's command, with its ``-e`` environment."""
    j = i + (3 if argv[i + 1] == "container" else 2)
    cenv: dict[str, str] = {}
    entrypoint: str | None = None
    gpus: int | None = None
    while j < len(argv) and argv[j].startswith("-"):
        opt, _, inline = argv[j].partition("=")
        if opt in DOCKER_VALUE_OPTS:
            value = inline if "=" in argv[j] else (argv[j + 1] if j + 1 < len(argv) else "")
            j += 1 if "=" in argv[j] else 2
            if opt in ("-e", "--env"):
                k, eq, val = value.partition("=")
                if eq:
                    cenv[k] = val
                elif k in env:
                    cenv[k] = env[k]
            elif opt == "--entrypoint":
                entrypoint = value
            elif opt == "--gpus":
                m = re.fullmatch(r"\"?(?:device=)?([0-9,]+)\"?", value.strip("'"))
                gpus = (int(m.group(1)) if "," not in m.group(1) and "device" not in value
                        else len(m.group(1).split(","))) if m else None  # fmt: skip
            elif opt == "--env-file":
                notes.append(f"--env-file {value}: not read")
        else:
            j += 1
    if j >= len(argv):
        raise UsageError("docker run without an image")
    image = argv[j]
    cargs = argv[j + 1 :]
    prefix = argv[: j + 1]
    launch: Launch | None = None
    if entrypoint:
        cargs = [entrypoint, *cargs]
        prefix = prefix[:-1]
    if entrypoint is not None or image_program(image) is None:
        launch = identify(cargs, cenv, notes) if cargs else None
        if launch is not None:
            launch.prefix = [*prefix, *launch.prefix]
    if launch is None:
        program = image_program(image)
        if program is None:
            raise UsageError(
                f"docker image {image}: qwenfit does not know what it runs; give the engine's command"
            )
        tool, words, how = program
        if how:
            notes.append(how)
        launch = Launch(tool, words[0], list(cargs), [*prefix, *words[1:]], cenv, list(argv))
    launch.argv = list(argv)
    launch.engine_version = image_version(image)
    if gpus is not None:
        launch.n_gpus_hint = gpus
    return launch


def image_program(image: str) -> tuple[str, list[str], str] | None:
    """(tool, the words the image's entrypoint adds, note) of a known image."""
    name = image.split("@")[0]
    repo = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    tag = name[len(repo) + 1 :]
    if re.search(r"(^|/)vllm-openai", repo) or repo.endswith("vllm/vllm-openai"):
        return "vllm serve", ["vllm", "serve"], ""
    if "ggml-org/llama.cpp" in repo or repo.endswith("ggerganov/llama.cpp"):
        if tag.startswith("server"):
            return "llama-server", ["/app/llama-server"], ""
        if tag.startswith("light"):
            return "llama-cli", ["/app/llama-cli"], ""
        return None
    if repo.endswith("ollama/ollama"):
        return "ollama", ["ollama", "serve"], ""
    if re.search(r"llama[.-]?cpp.*server|llama-server", repo):
        return (
            "llama-server",
            ["llama-server"],
            f"image {image}: taken to run llama-server (its name says so)",
        )
    return None


def image_version(image: str) -> str | None:
    tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    m = re.search(r"(?:^|-)(b\d{4,})$", tag) or re.match(r"v?(\d+\.\d+\.\d+(?:\.post\d+)?)", tag)
    return m.group(1) if m else None


def launches(text: str, env: Mapping[str, str], *, positional: Sequence[str] = ()) -> list[Launch]:
    """The engine launches of a shell script, each with the environment its process would get."""
    commands = split_script(text, dict(env), positional=positional)
    out: list[Launch] = []
    last: Command | None = None
    for cmd in commands:
        if not cmd.argv:
            continue
        if last is not None and cmd.sep == "\n" and cmd.argv[0].startswith("-") and cmd.line > last.line:
            raise UsageError(
                f"line {cmd.line} starts with {cmd.argv[0]}: the line before it ends the {out[-1].tool} "
                "command (a missing '\\' line continuation?)"
            )
        last = None
        proc_env = {k: v for k, v in cmd.variables.items() if k in cmd.exported}
        proc_env.update(cmd.assigns)
        wrapper_notes: list[str] = []
        launch = identify(cmd.argv, proc_env, wrapper_notes)
        if launch is None:
            continue
        launch.notes = wrapper_notes + launch.notes
        launch.unresolved |= cmd.unresolved
        if cmd.assigns:
            launch.prefix = [*(f"{k}={v}" for k, v in cmd.assigns.items()), *launch.prefix]
        out.append(launch)
        last = cmd
    return out


def cwd_path(path: str, cwd: str | None) -> str:
    return os.path.join(cwd or os.getcwd(), os.path.expanduser(path))
