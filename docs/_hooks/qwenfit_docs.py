"""MkDocs hooks: what the docs site generates at build time (never committed, never stale).

- ``assets/calculator.json``: the calculator's data, ``qwenfit.export.calculator_json()`` — the same
  formulas Python evaluates (the page only evaluates them) — in one file, as ``qwenfit export`` writes it;
  ``assets/calculator/``: the same split and packed (``qwenfit.export_split.calculator_files()``), what the page
  loads (the index and one model first, the other models after).
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
HELP_COLUMNS = "100"


def calculator_json_text() -> str:
    """The export as compact JSON."""
    from qwenfit.export import calculator_json

    return json.dumps(calculator_json(), separators=(",", ":"))


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


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    from qwenfit.export_split import calculator_files

    files.append(File.generated(config, CALCULATOR_JSON, content=calculator_json_text()))
    for name, packed in calculator_files().items():
        text = json.dumps(packed, separators=(",", ":"), ensure_ascii=False)
        files.append(File.generated(config, f"{CALCULATOR_DIR}/{name}", content=text))
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
