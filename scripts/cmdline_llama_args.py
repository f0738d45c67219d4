"""Regenerate qwenfit/cmdline/llama_args.py from llama.cpp's own option table, ``common/arg.cpp``.

Every ``add_opt(common_arg(...))`` is read: its flags, negative flags, the handler's signature (the
value kind), ``set_env``, ``set_examples``/``set_excludes`` (which programs take it), ``set_sampling``,
and whether the handler only throws "the argument has been removed" or exits. The options of
llama-server, llama-cli and llama-completion are written, one row each.

    .venv/bin/python scripts/cmdline_llama_args.py                  # rewrite the table
    .venv/bin/python scripts/cmdline_llama_args.py --check          # exit 1 if it is out of date

The source is the llama.cpp 0c1e570 vendored in the llama-cpp-python 0.3.36 sdist, unpacked by
scripts/build_llama_cpp.sh into ~/.cache/qwenfit/llama.cpp-0.3.36 (``--arg-cpp`` names another file).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "qwenfit" / "cmdline" / "llama_args.py"
DEFAULT_ARG_CPP = (
    Path.home()
    / ".cache"
    / "qwenfit"
    / "llama.cpp-0.3.36"
    / "src"
    / "vendor"
    / "llama.cpp"
    / "common"
    / "arg.cpp"
)
KIND = {"void": "flag", "bool": "bool", "int": "int", "string": "str", "str_str": "str2"}
HEADER = '''"""llama.cpp 0c1e570's command-line options for llama-server, llama-cli and llama-completion.

Generated (do not edit) from ``common/arg.cpp`` of llama.cpp 0c1e570, vendored in the llama-cpp-python
0.3.36 sdist: every ``add_opt(common_arg(...))`` whose examples include one of the three programs. One row
per option: (key, flags, negative flags, kind, environment variable, programs, group, arg.cpp line).

- key: the last long flag without dashes (the name llama.cpp itself uses for presets), ``-`` as ``_``;
- kind: ``flag`` (no value), ``bool`` (a flag with a negative form), ``int`` (``std::stoi``), ``str``,
  ``str2`` (two values);
- programs: ``S`` llama-server, ``C`` llama-cli, ``P`` llama-completion;
- group: ``sampling`` (sampler settings), ``removed`` (the handler only throws "the argument has been
  removed"), ``exit`` (prints and exits), or empty.
"""
'''


def _match_paren(s: str, i: int) -> int:
    """The index of the ``)`` closing the ``(`` at ``s[i]`` (strings, chars and // comments skipped)."""
    depth, j = 0, i
    while j < len(s):
        c = s[j]
        if c in "\"'":
            j += 1
            while s[j] != c:
                j += 2 if s[j] == "\\" else 1
        elif s.startswith("//", j):
            j = s.index("\n", j)
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise ValueError(f"unbalanced parenthesis at {i}")


def _examples(text: str) -> list[str]:
    return [x.strip().replace("LLAMA_EXAMPLE_", "") for x in text.split(",")]


def extract(src: str) -> list[dict[str, Any]]:
    """Every option of arg.cpp, as read from its source."""
    out = []
    for m in re.finditer(r"add_opt\(common_arg\(", src):
        start = m.start() + len("add_opt")
        body = src[start + 1 : _match_paren(src, start)]
        ci = body.index("(")
        ctor, rest = body[ci + 1 : _match_paren(body, ci)], body[_match_paren(body, ci) + 1 :]
        txt = re.sub(r"^\s*(//[^\n]*\n\s*)*", "", ctor)
        lists = []
        while txt.startswith("{"):
            e = txt.index("}")
            lists.append(re.findall(r'"([^"]*)"', txt[1:e]))
            txt = txt[e + 1 :].lstrip().lstrip(",").lstrip()
        lam = re.search(r"\[[^\]]*\]\s*\((common_params[^)]*)\)", ctor)
        params = [p.strip() for p in (lam.group(1) if lam else "").split(",")]
        if len(params) == 1:
            kind = "void"
        elif "bool" in params[1]:
            kind = "bool"
        elif "int" in params[1]:
            kind = "int"
        elif len(params) == 3:
            kind = "str_str"
        else:
            kind = "string"
        env = re.findall(r'\.set_env\("([^"]+)"\)', rest)
        ex = re.findall(r"\.set_examples\(\{([^}]*)\}\)", rest)
        exc = re.findall(r"\.set_excludes\(\{([^}]*)\}\)", rest)
        out.append({
            "line": src.count("\n", 0, m.start()) + 1,
            "args": lists[0],
            "neg": lists[1] if len(lists) > 1 else [],
            "kind": kind,
            "env": env[0] if env else None,
            "examples": _examples(ex[0]) if ex else ["COMMON"],
            "excludes": _examples(exc[0]) if exc else [],
            "sampling": ".set_sampling()" in rest,
            "handler": (ctor[lam.end() :] if lam else "").strip()[:3000],
        })  # fmt: skip
    return out


def render(options: list[dict[str, Any]]) -> str:
    merged: dict[tuple[str, ...], dict[str, Any]] = {}
    order: list[tuple[str, ...]] = []
    for o in options:
        ex, exc = set(o["examples"]), set(o["excludes"])

        def member(e: str, ex: set[str] = ex, exc: set[str] = exc) -> bool:
            return (e in ex or "COMMON" in ex) and e not in exc

        tools = "".join(c for c, e in (("S", "SERVER"), ("C", "CLI"), ("P", "COMPLETION")) if member(e))
        args = tuple(o["args"])
        if args in merged:  # -np/--parallel is defined twice (the server's, the others')
            prev = merged[args]
            prev["tools"] = "".join(sorted(set(prev["tools"]) | set(tools), key="SCP".index))
            continue
        longs = [a for a in o["args"] if a.startswith("--")]
        key = (longs[-1] if longs else o["args"][-1]).lstrip("-").replace("-", "_").replace(".", "_")
        h = o["handler"]
        group = (
            "sampling"
            if o["sampling"]
            else ("removed" if "arg_removed" in h else ("exit" if "exit(0)" in h else ""))
        )
        if not tools:
            continue
        merged[args] = {"key": key, "args": args, "neg": tuple(o["neg"]), "kind": KIND[o["kind"]],
                        "env": o["env"] or "", "tools": tools, "group": group, "line": o["line"]}  # fmt: skip
        order.append(args)
    keys = [merged[a]["key"] for a in order]
    assert len(keys) == len(set(keys)), "two options with one key"
    out = [HEADER, "from __future__ import annotations\n", '__all__ = ["LLAMA_OPTIONS", "LlamaOption"]\n',
           "LlamaOption = tuple[str, tuple[str, ...], tuple[str, ...], str, str, str, str, int]\n",
           "# fmt: off", "LLAMA_OPTIONS: tuple[LlamaOption, ...] = ("]  # fmt: skip
    for a in order:
        m = merged[a]
        head = f"    ({m['key']!r}, {m['args']!r},"
        tail = f"{m['kind']!r}, {m['env']!r}, {m['tools']!r}, {m['group']!r}, {m['line']}),"
        row = f"{head} {m['neg']!r}, {tail}".replace("'", '"')
        if len(row) > 110:
            row = f"{head}\n     {m['neg']!r},\n     {tail}".replace("'", '"')
        out.append(row)
    out.append(")\n# fmt: on")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arg-cpp", type=Path, default=DEFAULT_ARG_CPP, help="llama.cpp's common/arg.cpp")
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed table is out of date")
    args = ap.parse_args()
    text = render(extract(args.arg_cpp.read_text(encoding="utf-8")))
    if args.check:
        same = OUT.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{OUT} is out of date: run scripts/cmdline_llama_args.py")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
