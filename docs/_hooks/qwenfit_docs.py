"""MkDocs hooks: what the docs site generates at build time (never committed, never stale).

- ``assets/calculator.json``: the calculator's data, ``qwenfit.export.calculator_json()`` — the same
  formulas Python evaluates (the page only evaluates them) — in one file, as ``qwenfit export`` writes it;
  ``assets/calculator/``: the same split and packed (``qwenfit.export_split.calculator_files()``), what
  the page loads (the index and one model inline in the page, the other models after).
- ``assets/calculator/planner.json``: plan mode's data, ``qwenfit.export_plan.planner_json()`` (the
  planner's extra placements, quality and artifacts, each device's budget and speed constants), and
  ``assets/calculator/variants.json``: the calculator's formulas with the vision tower and/or MTP
  drafting, ``qwenfit.export_plan.variants_json()``; packed as the split export's files are, their
  formula records patches of the calculator's (``qwenfit.export_split.plan_files``). The folder is
  what ``qwenfit export --split`` writes (``qwenfit.export_split.site_files``).
- The exports are kept in ``build/cache`` under a digest of the package, its data and
  pyproject.toml: a rebuild from unchanged sources reads them back (``QWENFIT_DOCS_NO_CACHE=1``: never).
- The CLI reference: ``<!-- qwenfit:cli-reference -->`` in a page becomes ``qwenfit --help`` and the
  help of every subcommand (and theirs), from the argparse parser the ``qwenfit`` command uses.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from typing import Any

CLI_MARKER = "<!-- qwenfit:cli-reference -->"
CALCULATOR_JSON = "assets/calculator.json"
CALCULATOR_DIR = "assets/calculator"
HELP_COLUMNS = "100"
CALCULATOR_PAGE = "calculator.md"
INLINE_MARKER = "<!-- qwenfit:calculator-inline -->"
INLINE_FILES = ("index.json", "35B-A3B.json")  # the index and the model the page shows first
SCRIPTS = ("javascripts/qwenfit-data.mjs", "javascripts/qwenfit-calc.mjs")  # inlined in this order
_SPLIT: dict[str, str] = {}  # the split export's files as on_files wrote them (name -> text)
_STYLES: dict[str, Any] = {}  # the site's stylesheets (dest_uri -> mkdocs File), for the calculator page


def calculator_json_text() -> str:
    """The export as compact JSON."""
    from qwenfit.export import calculator_json

    return json.dumps(calculator_json(), separators=(",", ":"))


def calculator_split_text() -> str:
    """The export split per model and packed (one JSON object: file name -> content)."""
    from qwenfit.export_split import calculator_files

    return json.dumps(calculator_files(), separators=(",", ":"), ensure_ascii=False)


def plan_files_text() -> str:
    """Plan mode's files, packed (one JSON object: file name -> content)."""
    from qwenfit.export_split import plan_files

    return json.dumps(plan_files(), separators=(",", ":"), ensure_ascii=False)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_reference() -> str:
    """Markdown: the top-level help, then one section per subcommand with its help."""
    from qwenfit.cli import build_parser

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS  # argparse wraps to the terminal width: keep it fixed
    try:
        parser = build_parser()
        parts = ["```text", parser.format_help().rstrip(), "```"]

        def walk(p: argparse.ArgumentParser, prefix: str, level: int) -> None:
            for name, sub in _subcommands(p).items():
                title = f"{prefix} {name}"
                parts.extend(
                    ["", f"{'#' * level} `{title}`", "", "```text", sub.format_help().rstrip(), "```"]
                )
                walk(sub, title, min(level + 1, 4))

        walk(parser, "qwenfit", 2)
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(parts)


def _sources_key() -> str:
    """A digest of everything the exports are computed from: the package, its data, its version."""
    import hashlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for path in sorted([*root.joinpath("qwenfit").rglob("*.py"), *root.joinpath("data").rglob("*"),
                        root / "pyproject.toml"]):  # fmt: skip
        if path.is_file():
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _cached(name: str, make: Any) -> str:
    """``make()``, kept in build/cache under a digest of its sources (planner.json takes ~25 s of CPU):
    a rebuild from unchanged sources reads it back. QWENFIT_DOCS_NO_CACHE=1 always recomputes."""
    from pathlib import Path

    if os.environ.get("QWENFIT_DOCS_NO_CACHE"):
        return str(make())
    cache = Path(__file__).resolve().parents[2] / "build" / "cache"
    path = cache / f"{name}-{_sources_key()}.json"
    if path.is_file():
        return path.read_text()
    text = str(make())
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob(f"{name}-*.json"):
        old.unlink()
    path.write_text(text)
    return text


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, CALCULATOR_JSON, content=_cached("calculator", calculator_json_text)))
    split = json.loads(_cached("calculator-split", calculator_split_text))
    plan = json.loads(_cached("plan-packed", plan_files_text))
    _SPLIT.clear()
    for name, packed in {**split, **plan}.items():
        text = json.dumps(packed, separators=(",", ":"), ensure_ascii=False)
        _SPLIT[name] = text
        files.append(File.generated(config, f"{CALCULATOR_DIR}/{name}", content=text))
    _STYLES.clear()
    _STYLES.update({f.dest_uri: f for f in files if f.dest_uri.endswith(".css")})
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    return markdown


SEARCH_DIALOG = '<div class="md-search" data-md-component="search" role="dialog">'


def _script_text(text: str) -> str:
    """``text`` safe inside a <script> element: no "</" (nor "<!--") in it. Only JSON strings and the
    calculator's JavaScript strings, regular expressions and comments can hold a "<", where "<\\/" and
    "\\u003c" mean the same."""
    return text.replace("<!--", "\\u003c!--").replace("</", "<\\/")


def calculator_inline(docs_dir: str) -> str:
    """What the calculator page carries in its HTML so that its first verdict waits for nothing else
    (issue #20: on a slow phone the theme's stylesheets and scripts took ~2 s before the calculator
    started): the index and the first model's file of the split export, read by qwenfit-data.mjs
    instead of fetching them, and the calculator's modules (qwenfit-data.mjs, qwenfit-calc.mjs) as one
    ``async`` module script, which runs as soon as it is parsed: a module does not wait for stylesheets,
    nor an ``async`` one for the theme's scripts."""
    from pathlib import Path

    parts = []
    for name in INLINE_FILES:
        if name in _SPLIT:
            parts.append(
                f'<script type="application/json" data-qf-file="{name}">{_script_text(_SPLIT[name])}</script>'
            )
    code = []
    for rel in SCRIPTS:
        text = Path(docs_dir, rel).read_text()
        code.append("\n".join(line for line in text.splitlines() if not line.startswith("import ")))
    parts.append(f'<script type="module" async>{_script_text(chr(10).join(code))}</script>')
    return "\n".join(parts)


def on_post_page(output: str, page: Any, config: Any) -> str:
    """The theme's search dialog gets an accessible name (axe-core: aria-dialog-name); the calculator
    page gets its first data and its scripts inline (:func:`calculator_inline`)."""
    output = output.replace(SEARCH_DIALOG, SEARCH_DIALOG[:-1] + ' aria-label="Search">')
    if page.file.src_uri == CALCULATOR_PAGE and INLINE_MARKER in output:
        inline = calculator_inline(config["docs_dir"])
        output = _styles_inline(_unblocked(output.replace(INLINE_MARKER, inline, 1), inline), page.url)
    return output


STYLESHEET = re.compile(r'<link rel="stylesheet" href="([^"]+)">')


def _styles_inline(html: str, url: str) -> str:
    """The calculator page with the site's stylesheets in <style> elements: a page paints nothing
    until its stylesheets are in, and on a slow network each one is a round trip after the HTML
    (~0.6 s on Slow 4G) that the HTML's own bytes do not need. The stylesheets have no relative
    url() (the theme's icons are data: URLs), so they mean the same inline; one not among the site's
    files when this runs (mkdocstrings' own, written after the pages: its API pages' styles) or with a
    "</style" stays a link that does not hold the first paint. The theme's script bundle is deferred:
    it ran, parser-blocking, before the page was first painted."""
    import posixpath

    def inline(m: re.Match[str]) -> str:
        f = _STYLES.get(posixpath.normpath(posixpath.join(url, m[1])))
        css = f.content_bytes.decode() if f is not None else ""
        if not css or "</style" in css.lower():  # loaded without holding the first paint
            return f'<link rel="stylesheet" href="{m[1]}" media="print" onload="this.media=\'all\'">'

        css = re.sub(r"/\*# sourceMappingURL=[^*]*\*/", "", css)
        return f"<style>{css}</style>"

    html = STYLESHEET.sub(inline, html)
    return re.sub(r'(<script src="[^"]*/assets/javascripts/bundle\.[0-9a-f]+\.min\.js")>', r"\1 defer>", html)


def _inline_script(html: str, start: str) -> str:
    """The inline <script> element of ``html`` that begins with ``start`` ("" if there is none)."""
    i = html.find(start)
    return html[i : html.index("</script>", i) + len("</script>")] if i >= 0 else ""


def _unblocked(html: str, after: str) -> str:
    """The calculator page with the theme's two inline scripts out of its first verdict's way. A
    browser runs no inline script while a stylesheet before it is loading, and parses nothing past it
    meanwhile: the theme's ``__md_scope`` definitions (in <head>, after the stylesheets) and its palette
    script (first in <body>) held the parser, so the calculator, until the theme's CSS was in. The
    first moves before the stylesheets (it defines functions and reads nothing they set), the second
    after the calculator's scripts (``after``; it sets the colour scheme the visitor chose, before
    anything is painted as the stylesheets are still loading). Either not found: left as it is."""
    scope = _inline_script(html, "<script>__md_scope=")
    first_css = html.find('<link rel="stylesheet"')
    if scope and 0 <= first_css < html.index(scope):
        html = html.replace(scope, "", 1)
        html = html[:first_css] + scope + html[first_css:]
    palette = _inline_script(html, "<script>var palette=")
    if palette and after in html and html.index(palette) < html.index(after):
        html = html.replace(palette, "", 1)
        at = html.index(after) + len(after)
        html = html[:at] + palette + html[at:]
    return html
