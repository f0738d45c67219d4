"""MkDocs hooks: what the docs site generates at build time (never committed, never stale).

- ``assets/calculator.json``: the calculator's data, ``qwenfit.export.calculator_json()`` — the same
  formulas Python evaluates (the page only evaluates them) — in one file, as ``qwenfit export`` writes it;
  ``assets/calculator/``: the same split and packed (``qwenfit.export_split.calculator_files()``), what the page
  loads (the index and one model first, the other models after).
- ``assets/planner.json``: plan mode's data, ``qwenfit.export_plan.planner_json()`` (the planner's extra
  placements, quality and artifacts, each device's budget and speed constants).
- ``assets/variants.json``: the calculator's formulas with the vision tower and/or MTP drafting,
  ``qwenfit.export_plan.variants_json()``.
- The exports are kept in ``build/cache`` under a digest of the package, its data and
  pyproject.toml: a rebuild from unchanged sources reads them back (``QWENFIT_DOCS_NO_CACHE=1``: never).
- The CLI reference: ``<!-- qwenfit:cli-reference -->`` in a page becomes ``qwenfit --help`` and the
  help of every subcommand (and theirs), from the argparse parser the ``qwenfit`` command uses.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

CLI_MARKER = "<!-- qwenfit:cli-reference -->"
CALCULATOR_JSON = "assets/calculator.json"
CALCULATOR_DIR = "assets/calculator"
PLANNER_JSON = "assets/planner.json"
VARIANTS_JSON = "assets/variants.json"
HELP_COLUMNS = "100"


def calculator_json_text() -> str:
    """The export as compact JSON."""
    from qwenfit.export import calculator_json

    return json.dumps(calculator_json(), separators=(",", ":"))


def calculator_split_text() -> str:
    """The export split per model and packed (one JSON object: file name -> content)."""
    from qwenfit.export_split import calculator_files

    return json.dumps(calculator_files(), separators=(",", ":"), ensure_ascii=False)


def planner_json_text() -> str:
    """Plan mode's data as compact JSON."""
    from qwenfit.export_plan import planner_json

    return json.dumps(planner_json(), separators=(",", ":"))


def variants_json_text() -> str:
    """The vision / MTP toggles' formulas as compact JSON."""
    from qwenfit.export_plan import variants_json

    return json.dumps(variants_json(), separators=(",", ":"))


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
    for name, packed in split.items():
        text = json.dumps(packed, separators=(",", ":"), ensure_ascii=False)
        files.append(File.generated(config, f"{CALCULATOR_DIR}/{name}", content=text))
    files.append(File.generated(config, PLANNER_JSON, content=_cached("planner", planner_json_text)))
    files.append(File.generated(config, VARIANTS_JSON, content=_cached("variants", variants_json_text)))
    return files


def on_post_page(output: str, page: Any, config: Any) -> str:
    """The calculator page asks for its data as soon as its HTML arrives (``<link rel=preload>``: the
    index and the model it shows first, fetched by docs/javascripts/qwenfit-data.mjs), not after the
    theme's stylesheets and scripts: the first verdict sooner on a slow network."""
    if page.file.src_uri != "calculator.md" or "</head>" not in output:
        return output
    base = "../" * page.url.count("/")
    links = "".join(
        f'<link rel="preload" href="{base}{CALCULATOR_DIR}/{name}" as="fetch" crossorigin>'
        for name in ("index.json", "35B-A3B.json")
    )
    return output.replace("</head>", links + "</head>", 1)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    return markdown


SEARCH_DIALOG = '<div class="md-search" data-md-component="search" role="dialog">'


def on_post_page(output: str, page: Any, config: Any) -> str:
    """The theme's search dialog gets an accessible name (axe-core: aria-dialog-name)."""
    return output.replace(SEARCH_DIALOG, SEARCH_DIALOG[:-1] + ' aria-label="Search">')
