"""Regenerate qwenfit/cmdline/vllm_args.py and sglang_args.py from each engine's own argparse parser.

Two steps, because the engines are not qwenfit's dependencies:

1. ``dump``, run with the engine installed (a throw-away venv with the engine's wheel: vLLM 0.33.0,
   SGLang 0.5.23), builds the engine's parser exactly as its CLI does and writes every action
   (option strings, dest, nargs, action class) as JSON:

       venv-vllm/bin/python scripts/cmdline_py_args.py dump vllm vllm_args.json
       venv-sglang/bin/python scripts/cmdline_py_args.py dump sglang sglang_args.json

2. ``write`` turns the two dumps into the committed tables (no engine needed):

       .venv/bin/python scripts/cmdline_py_args.py write vllm_args.json sglang_args.json

vLLM: ``make_arg_parser(FlexibleArgumentParser(prog='vllm serve'))``; SGLang:
``ServerArgs.add_cli_args(argparse.ArgumentParser())``. mlx-lm's two small parsers are transcribed in
qwenfit/cmdline/argtables.py (mlx_lm/server.py main(), mlx_lm/generate.py setup_arg_parser()).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = {
    "vllm": REPO / "qwenfit" / "cmdline" / "vllm_args.py",
    "sglang": REPO / "qwenfit" / "cmdline" / "sglang_args.py",
}
SOURCES = {
    "vllm": ("vLLM", "0.33.0", "``make_arg_parser(FlexibleArgumentParser(prog='vllm serve'))``\n"
             "(vllm/entrypoints/common/cli_args.py)"),
    "sglang": ("SGLang", "0.5.23", "``ServerArgs.add_cli_args(argparse.ArgumentParser())``\n"
               "(sglang/srt/server_args.py)"),
}  # fmt: skip


def _parser(engine: str) -> Any:
    if engine == "vllm":
        from vllm.entrypoints.common.cli_args import make_arg_parser  # type: ignore[import-not-found]
        from vllm.utils.argparse_utils import FlexibleArgumentParser  # type: ignore[import-not-found]

        return make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
    from sglang.srt.server_args import ServerArgs  # type: ignore[import-not-found]

    p = argparse.ArgumentParser(prog="sglang serve")
    ServerArgs.add_cli_args(p)
    return p


def dump(engine: str, path: Path) -> None:
    p = _parser(engine)
    actions = []
    for a in p._actions:
        t = a.type
        actions.append({
            "opts": list(a.option_strings),
            "all": sorted(k for k, v in p._option_string_actions.items() if v is a),
            "dest": a.dest,
            "nargs": a.nargs,
            "action": type(a).__name__,
            "type": getattr(t, "__name__", repr(t)) if t is not None else None,
            "choices": [str(c) for c in a.choices] if a.choices else None,
            "default": repr(a.default)[:80],
        })  # fmt: skip
    path.write_text(json.dumps({"allow_abbrev": p.allow_abbrev, "actions": actions}, indent=1))
    print(f"{engine}: {len(actions)} actions -> {path}")


def _inverses(opts: list[str]) -> list[str]:
    out = []
    for o in opts:
        for p, q in (("--enable-", "--disable-"), ("--disable-", "--enable-")):
            if o.startswith(p):
                out.append(q + o[len(p) :])
    return out


def _derived_neg(pos: list[str]) -> list[str]:
    return [*("--no-" + o[2:] for o in pos if o.startswith("--")), *_inverses(pos)]


def rows(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(flags, negative flags, nargs, dest) of every option, as the table stores them."""
    res = []
    for a in data["actions"]:
        if not a["opts"]:
            continue  # a positional
        allo = a["all"]
        if a["action"] == "EnableDisableAction":  # vLLM's --enable-x/--disable-x pairs
            vis = a["opts"]
            orig = next((vis[:k] for k in range(1, len(vis) + 1) if _inverses(vis[:k]) == vis[k:]), None)
            if orig is None:
                raise SystemExit(f"cannot split {vis}")
            pos, neg, nargs = [o for o in allo if o in orig], [o for o in allo if o not in orig], "0"
        elif a["action"] == "BooleanOptionalAction":
            pos = [o for o in allo if not o.startswith("--no-")]
            neg, nargs = [o for o in allo if o.startswith("--no-")], "0"
        else:
            pos, neg = allo, []
            nargs = {0: "0", None: "1", "?": "?", "+": "+", "*": "*"}[a["nargs"]]
            if a["action"] == "DeprecatedStoreConstAction":
                nargs = "1"
        pos = sorted(pos, key=lambda o, a=a: a["opts"].index(o) if o in a["opts"] else 99)  # argparse's order
        longs = [o for o in pos if o.startswith("--")]
        derived = (longs[0] if longs else pos[0]).lstrip("-").replace("-", "_")
        dest = "" if a["dest"] == derived else a["dest"]
        if nargs == "0" and neg and sorted(neg) == sorted(_derived_neg(pos)):
            neg, nargs = [], "b"
        res.append((" ".join(pos), " ".join(neg), nargs, dest))
    return res


def render(engine: str, data: dict[str, Any]) -> str:
    name, version, source = SOURCES[engine]
    lines = [
        f'"""{name} {version}\'s command-line options (generated from its own argument parser; do not edit).',
        "",
        f"Built by constructing {source}",
        f"from the {name} {version} wheel and reading every action of the parser "
        "(``parser._option_string_actions``).",
        "One row per option:",
        '``"flags|negative flags|nargs|dest"``: nargs "0" is a flag, "b" a flag whose negative forms are',
        "``--no-<flag>`` and, for ``--enable-x``/``--disable-x``, the other one (BooleanOptionalAction,",
        'vLLM\'s EnableDisableAction), "1" one value, "?", "+", "*"; ``dest`` only when',
        "it is not argparse's default (the first long flag, dashes as underscores).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        '__all__ = ["ALLOW_ABBREV", "OPTIONS"]',
        "",
        f"ALLOW_ABBREV = {data['allow_abbrev']}",
        "",
        "# fmt: off",
        'OPTIONS = """',
    ]  # fmt: skip
    for pos, neg, nargs, dest in rows(data):
        row = f"{pos}|{neg}|{nargs}|{dest}"
        assert len(row) <= 110, row
        lines.append(row)
    return "\n".join([*lines, '""".strip().splitlines()', "# fmt: on", ""])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    d = sub.add_parser("dump", help="write the engine's parser as JSON (run with the engine installed)")
    d.add_argument("engine", choices=sorted(OUT))
    d.add_argument("json", type=Path)
    w = sub.add_parser("write", help="rewrite the committed tables from the two dumps")
    w.add_argument("vllm_json", type=Path)
    w.add_argument("sglang_json", type=Path)
    w.add_argument("--check", action="store_true", help="exit 1 if a committed table is out of date")
    args = ap.parse_args()
    if args.step == "dump":
        dump(args.engine, args.json)
        return 0
    stale = 0
    for engine, path in (("vllm", args.vllm_json), ("sglang", args.sglang_json)):
        text = render(engine, json.loads(path.read_text()))
        if args.check:
            stale += OUT[engine].read_text() != text
        else:
            OUT[engine].write_text(text)
            print(f"wrote {OUT[engine].relative_to(REPO)}")
    if args.check:
        print("out of date" if stale else "up to date")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
