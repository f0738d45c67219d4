"""Every code example in the docs runs.

Per page (docs/**/*.md), the fenced blocks run in order in one namespace, like a session:

- ```` ```python ```` blocks are executed;
- ```` ```pycon ```` blocks are doctests: the output shown must be the output printed
  (ELLIPSIS and NORMALIZE_WHITESPACE on);
- ```` ```console ```` lines ``$ qwenfit ...`` run the CLI in-process and must exit 0.

Other languages (bash, text, ...) are not run. A block that must not run, or runs only sometimes,
is preceded by an HTML comment (invisible on the site):

- ``<!-- docs-test: skip -->`` never runs it (say why in the text);
- ``<!-- docs-test: if EXPR -->`` runs it only when the Python expression EXPR is true, evaluated
  with ``qwenfit`` imported and ``cli_has(name)`` telling whether the CLI has a subcommand, e.g.
  ``<!-- docs-test: if hasattr(qwenfit, "plan") -->``.
"""

from __future__ import annotations

import argparse
import contextlib
import doctest
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

import qwenfit
import qwenfit.cli

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^(?P<fence>```+)(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
MARKER = re.compile(r"<!--\s*docs-test:\s*(?P<what>skip|if\s+(?P<expr>.*?))\s*-->\s*\Z", re.S)
RUN = {"python", "pycon", "console"}


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    line: int
    marker: str | None  # "skip", or the expression of "if EXPR", or None


def blocks(text: str) -> list[Block]:
    out = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip()
        marker = MARKER.search(before[-300:])
        what = None
        if marker:
            what = "skip" if marker["what"] == "skip" else marker["expr"].strip()
        out.append(Block(m["lang"], m["body"], text.count("\n", 0, m.start()) + 1, what))
    return out


def cli_has(name: str) -> bool:
    parser = qwenfit.cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return name in action.choices
    return False


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if any(b.lang in RUN for b in blocks(p.read_text())))


def _should_run(block: Block) -> bool:
    if block.marker is None:
        return True
    if block.marker == "skip":
        return False
    return bool(eval(block.marker, {"qwenfit": qwenfit, "cli_has": cli_has}))


def _run_console(block: Block, where: str) -> None:
    for line in block.body.splitlines():
        if not line.startswith("$ qwenfit"):
            continue
        argv = shlex.split(line[2:])[1:]
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                code = qwenfit.cli.main(argv)
            except SystemExit as exc:  # argparse: usage errors and --help
                code = exc.code if isinstance(exc.code, int) else 1
        assert code == 0, f"{where}: `{line}` exited {code}:\n{out.getvalue()[-2000:]}"
        assert out.getvalue().strip(), f"{where}: `{line}` printed nothing"


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_docs_page_examples_run(page: Path):
    namespace: dict[str, object] = {"__name__": "__docs__"}
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    ran = 0
    for block in blocks(page.read_text()):
        if block.lang not in RUN or not _should_run(block):
            continue
        where = f"{page.relative_to(DOCS.parent)}:{block.line}"
        if block.lang == "python":
            exec(compile(block.body, where, "exec"), namespace)
        elif block.lang == "pycon":
            test = parser.get_doctest(block.body, namespace, where, str(page), block.line)
            report = io.StringIO()
            result = runner.run(test, out=report.write, clear_globs=False)
            assert result.failed == 0, report.getvalue()
            namespace.update(test.globs)  # DocTest runs in a copy of the namespace
        else:
            _run_console(block, where)
        ran += 1
    assert ran or all(b.marker for b in blocks(page.read_text()) if b.lang in RUN)


def test_docs_have_runnable_examples():
    found = [b for p in pages() for b in blocks(p.read_text()) if b.lang in RUN]
    assert len(found) >= 10
    assert {b.lang for b in found} == RUN


def test_the_markers_are_understood():
    text = (
        "<!-- docs-test: skip -->\n```python\nraise SystemExit\n```\n\n"
        '<!-- docs-test: if hasattr(qwenfit, "nope") -->\n\n```python\nraise SystemExit\n```\n'
        "```pycon\n>>> 1 + 1\n2\n```\n"
    )
    found = blocks(text)
    assert [b.marker for b in found] == ["skip", 'hasattr(qwenfit, "nope")', None]
    assert [_should_run(b) for b in found] == [False, False, True]
