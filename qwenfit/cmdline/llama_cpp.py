"""llama-server / llama-cli / llama-completion command lines, read as llama.cpp 0c1e570 reads them.

``common/arg.cpp`` (table: :mod:`.llama_args`): environment variables first (``LLAMA_ARG_*``; a
negative switch also answers to ``LLAMA_ARG_NO_*``), then the command line in order, where a later
value replaces an earlier one — except ``-ot``, ``-ncmoe``, ``-cmoe``, ``-ncffn`` (each adds tensor
overrides) and ``--spec-type`` (each adds types). ``--x_y`` is ``--x-y``. An option llama.cpp does not
know is its "invalid argument"; a value it refuses is refused with its reason. Options that change
memory are mapped to qwenfit's settings or refused by name (:mod:`.llama_rules`); the rest are listed
in ``ignored``. A few spellings of older llama.cpp builds that 0c1e570 no longer accepts
(``--no-mmap``, ``--mlock``, ``--draft-max``, a bare ``-fa``, ``--spec-type mtp``) are read as those
builds read them, with a note.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwenfit.cmdline.llama_args import LLAMA_OPTIONS, LlamaOption
from qwenfit.errors import UsageError

__all__ = ["LlamaState", "llama_table", "read_llama_args"]

KV_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")  # arg.cpp kv_cache_types
SPEC_TYPES = (
    "none",
    "draft-simple",
    "draft-eagle3",
    "draft-mtp",
    "draft-dflash",
    "draft-dspark",
    "ngram-simple",
    "ngram-map-k",
    "ngram-map-k4v",
    "ngram-mod",
    "ngram-cache",
)
TRUTHY, FALSEY, AUTOY = ("on", "enabled", "true", "1"), ("off", "disabled", "false", "0"), ("auto", "-1")
ACCUMULATE = {"override_tensor", "n_cpu_moe", "cpu_moe", "n_cpu_ffn", "spec_type"}
# the options whose values qwenfit reads (and checks as llama.cpp would); the others are kept as written
TYPED = frozenset(
    [
        "ctx_size",
        "kv_unified_per_slot",
        "batch_size",
        "ubatch_size",
        "swa_checkpoints",
        "flash_attn",
        "cache_type_k",
        "cache_type_v",
        "cache_type_k_draft",
        "cache_type_v_draft",
        "parallel",
        "device",
        "override_tensor",
        "n_cpu_moe",
        "n_cpu_ffn",
        "n_gpu_layers",
        "split_mode",
        "tensor_split",
        "fit",
        "load_mode",
        "spec_type",
        "spec_draft_n_max",
    ]
)
# spellings of older llama.cpp builds: (what 0c1e570 says, how older builds read it)
LEGACY_FLAGS = {
    "--no-mmap": ("load_mode", "none"),
    "--mmap": ("load_mode", "mmap"),
    "--mlock": ("load_mode", "mlock"),
    "-dio": ("load_mode", "dio"),
    "--direct-io": ("load_mode", "dio"),
    "-ndio": ("load_mode", "auto"),
    "--no-direct-io": ("load_mode", "auto"),
}
LEGACY_NOTE = "{flag}: not an option of llama.cpp 0c1e570 ({why}); read as older builds read it: {meaning}"


@dataclass
class LlamaState:
    """What the command sets: ``values`` (key -> typed value, last one wins), the option spelling
    used for each, ``overrides`` in order (("ot", "regex=buffer") | ("ncmoe", n) | ("cmoe", None) |
    ("ncffn", n)), ``spec_types`` in order, ``env`` (key -> the variable that set it), ``ignored``
    option spellings, ``notes``."""

    tool: str
    values: dict[str, Any] = field(default_factory=dict)
    spelled: dict[str, str] = field(default_factory=dict)
    overrides: list[tuple[str, Any]] = field(default_factory=list)
    spec_types: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unresolved: set[str] = field(default_factory=set)

    def has(self, key: str) -> bool:
        return key in self.values


def llama_table(tool_letter: str) -> dict[str, tuple[LlamaOption, bool]]:
    """Option string -> (row, positive?) for one program ("S", "C" or "P")."""
    out: dict[str, tuple[LlamaOption, bool]] = {}
    for row in LLAMA_OPTIONS:
        if tool_letter in row[5]:
            for a in row[1]:
                out[a] = (row, True)
            for a in row[2]:
                out[a] = (row, False)
    return out


def _stoi(value: str) -> int:
    """``std::stoi``: leading blanks, a sign and digits; the rest is ignored; nothing -> error."""
    m = re.match(r"\s*([+-]?\d+)", value)
    if not m:
        hint = " (an unset shell variable?)" if re.fullmatch(r"\s*\$\{?\w+\}?\s*", value) else ""
        raise ValueError(f"stoi: {value!r} is not a number{hint}")
    n = int(m.group(1))
    if not -(2**31) <= n < 2**31:
        raise ValueError("stoi: out of range")
    return n


def _stof(value: str) -> float:
    m = re.match(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", value)
    if not m:
        raise ValueError(f"stof: {value!r} is not a number")
    return float(m.group(1))


def _kv_type(value: str) -> str:
    if value not in KV_TYPES:
        raise ValueError(f"Unsupported cache type: {value}")
    return value


def _typed(key: str, kind: str, value: str, tool: str) -> Any:
    """The value as llama.cpp's handler for ``key`` turns it into (its error when it refuses it);
    options qwenfit does not read keep their text."""
    if key not in TYPED:
        return value
    if key == "n_gpu_layers" or key == "n_gpu_layers_draft":
        return {"auto": -1, "all": -2}.get(value) if value in ("auto", "all") else _stoi(value)
    if key == "flash_attn":
        if value in TRUTHY:
            return "on"
        if value in FALSEY:
            return "off"
        if value in AUTOY:
            return "auto"
        raise ValueError(f"error: unknown value for --flash-attn: '{value}'")
    if key == "fit":
        if value in TRUTHY or value in FALSEY:
            return value in TRUTHY
        raise ValueError(f"error: unknown value for --fit: '{value}'")
    if key == "split_mode":
        if value not in ("none", "layer", "row", "tensor"):
            raise ValueError("invalid value")
        return value
    if key in ("cache_type_k", "cache_type_v", "cache_type_k_draft", "cache_type_v_draft"):
        return _kv_type(value)
    if key == "tensor_split":
        parts = [p for p in re.split(r"[,/]+", value)]
        if len(parts) >= 16:  # llama_max_devices() in a CUDA build (GGML_CUDA_MAX_DEVICES)
            raise ValueError(f"got {len(parts)} input configs, but system only has 16 devices")
        return tuple(_stof(p) for p in parts)
    if key == "override_tensor":
        items = value.split(",")
        for item in items:
            if "=" not in item:
                raise ValueError("invalid value")
        return tuple(items)
    if key == "device":
        names = value.split(",")
        if not value or not names:
            raise ValueError("no devices specified")
        return tuple(names)
    if key == "load_mode":
        if value not in ("auto", "none", "mmap", "mlock", "mmap+mlock", "dio"):
            raise ValueError("invalid value")
        return value
    if key == "spec_type":
        types = value.split(",")
        for t in types:
            if t not in SPEC_TYPES:
                raise ValueError(f"unknown speculative type: {t}")
        return ["none"] if "none" in types else types
    if key == "parallel" and tool == "S" and _stoi(value) == 0:
        raise ValueError("error: invalid value for n_parallel")
    if key in ("n_cpu_moe", "n_cpu_ffn", "spec_draft_n_max") and _stoi(value) < 0:
        raise ValueError("invalid value")
    if kind == "int" and key in TYPED:
        return _stoi(value)
    return value


def _bool_env(value: str) -> bool:
    if value in TRUTHY:
        return True
    if value in FALSEY:
        return False
    raise ValueError("invalid boolean value")


def _apply(st: LlamaState, row: LlamaOption, spelled: str, value: Any) -> None:
    key = row[0]
    if key == "override_tensor":
        st.overrides.extend(("ot", item) for item in value)
    elif key == "n_cpu_moe":
        st.overrides.append(("ncmoe", value))
    elif key == "cpu_moe":
        if value:
            st.overrides.append(("cmoe", None))
    elif key == "n_cpu_ffn":
        st.overrides.append(("ncffn", value))
    elif key == "spec_type":
        st.spec_types.extend(value)
    st.values[key] = value
    st.spelled[key] = spelled


def read_llama_args(
    tool: str, args: Sequence[str], env: Mapping[str, str], unresolved: set[str] | None = None
) -> LlamaState:
    """``args`` (after the program name) and the process environment, as ``tool`` reads them."""
    letter = {"llama-server": "S", "llama-cli": "C", "llama-completion": "P"}[tool]
    table = llama_table(letter)
    st = LlamaState(letter, unresolved=set(unresolved or ()))
    # environment variables first (common_params_parse_ex)
    for row in LLAMA_OPTIONS:
        if letter not in row[5] or not row[4]:
            continue
        key, _, neg, kind, env_name = row[:5]
        raw = None
        used = env_name
        negative = env_name.replace("LLAMA_ARG_", "LLAMA_ARG_NO_")
        if neg and env_name.startswith("LLAMA_ARG_") and negative in env:
            raw, used = "0", negative
        elif env_name in env:
            raw = env[env_name]
        if raw is None:
            continue
        try:
            if row[6] == "removed":
                _legacy_removed(st, row, env_name, raw)
                continue
            if kind == "flag":
                if raw in TRUTHY:
                    _apply(st, row, env_name, True)
            elif kind == "bool":
                _apply(st, row, env_name, _bool_env(raw))
            else:
                _apply(st, row, env_name, _typed(key, kind, raw, letter))
        except UsageError:
            raise
        except ValueError as exc:
            raise UsageError(
                f'{tool}: error while handling environment variable "{env_name}": {exc}'
            ) from None
        st.env[key] = used
    # the command line, in order
    i, n = 0, len(args)
    while i < n:
        arg = args[i]
        if arg.startswith("--"):
            arg = arg.replace("_", "-")
        i += 1
        if arg not in table:
            i = _legacy_or_fail(st, tool, arg, args, i)
            continue
        row, positive = table[arg]
        key, kind = row[0], row[3]
        st.env.pop(key, None)
        try:
            if kind == "flag":
                _apply(st, row, arg, True)
                continue
            if kind == "bool":
                _apply(st, row, arg, positive)
                continue
            if key == "flash_attn" and (i >= n or (args[i].startswith("-") and args[i] not in AUTOY)):
                st.notes.append(
                    LEGACY_NOTE.format(
                        flag=f"a bare {arg}",
                        why=f"it takes on|off|auto and would read {args[i]!r} as its value"
                        if i < n
                        else "it takes on|off|auto",
                        meaning="flash attention on",
                    )
                )
                _apply(st, row, arg, "on")
                continue
            if i >= n:
                raise ValueError("expected value for argument")
            value = args[i]
            i += 1
            if kind == "str2":
                if i >= n:
                    raise ValueError("expected value for argument")
                value = f"{value} {args[i]}"
                i += 1
            if row[6] == "removed":
                _legacy_removed(st, row, arg, value)
                continue
            if key == "spec_type" and value == "mtp":
                st.notes.append(
                    LEGACY_NOTE.format(
                        flag="--spec-type mtp",
                        why="it names the type draft-mtp; 0c1e570 says 'unknown speculative type: mtp'",
                        meaning="draft-mtp (llama.cpp PR #22673 builds)",
                    )
                )
                value = "draft-mtp"
            _apply(st, row, arg, _typed(key, kind, value, letter))
        except UsageError:
            raise
        except ValueError as exc:
            raise UsageError(f'{tool}: error while handling argument "{arg}": {exc}') from None
    return st


def _legacy_removed(st: LlamaState, row: LlamaOption, spelled: str, value: str) -> None:
    """``--draft-max``/``--draft-min`` (0c1e570: "the argument has been removed")."""
    key = row[0]
    if key == "draft_max":
        try:
            n = _stoi(value)
        except ValueError as exc:
            raise UsageError(f'error while handling argument "{spelled}": the argument has been removed. use '
                             f"--spec-draft-n-max or --spec-ngram-mod-n-max ({exc})") from None  # fmt: skip
        st.notes.append(
            LEGACY_NOTE.format(
                flag=spelled,
                why="0c1e570: 'the argument has been removed. use --spec-draft-n-max'",
                meaning=f"--spec-draft-n-max {n}",
            )
        )
        st.values["spec_draft_n_max"] = n
        st.spelled["spec_draft_n_max"] = spelled
    elif key == "draft_n_min":
        st.notes.append(
            LEGACY_NOTE.format(
                flag=spelled,
                why="removed, like --draft-max",
                meaning="the draft's minimum length, which does not change memory",
            )
        )
        st.ignored.append(spelled)
    else:
        raise UsageError(
            f'error while handling argument "{spelled}": the argument has been removed. use the '
            "respective --spec-ngram-* option"
        )


def _legacy_or_fail(st: LlamaState, tool: str, arg: str, args: Sequence[str], i: int) -> int:
    if arg in LEGACY_FLAGS:
        key, mode = LEGACY_FLAGS[arg]
        st.values[key] = mode
        st.spelled[key] = arg
        st.notes.append(
            LEGACY_NOTE.format(
                flag=arg, why=f"0c1e570 spells it --load-mode {mode}", meaning=f"--load-mode {mode}"
            )
        )
        return i
    hint = ""
    programs = {"S": "llama-server", "C": "llama-cli", "P": "llama-completion"}
    elsewhere = next((r for r in LLAMA_OPTIONS if arg in r[1] or arg in r[2]), None)
    if elsewhere is not None:
        hint = f" (llama.cpp 0c1e570 takes it only in {', '.join(programs[c] for c in elsewhere[5])})"
    elif arg.startswith("-") and not arg.startswith("--") and len(arg) > 3:
        double = "--" + arg.lstrip("-")
        if any(double in r[1] or double in r[2] for r in LLAMA_OPTIONS):
            hint = f" (a long option takes two dashes: {double}?)"
    if "$" in arg:
        hint = " (an unset shell variable?)"
    if not arg.startswith("-"):
        hint = " (llama.cpp takes no positional arguments: a missing option name or a quoting mistake?)"
    raise UsageError(f"{tool}: error: invalid argument: {arg}{hint}")
