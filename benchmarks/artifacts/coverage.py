"""Do the commands qwenfit prints load real artifacts? Every option the planner places (every catalog
model, every engine, machines from a hobbyist's RTX 3060 to 8x H100) and every ``check`` of each
engine's quantizations, read back (:mod:`.launch`) and checked against the published-artifact catalog:

- every Hub repo a command loads or downloads is in the catalog, with the quant tag / file it names;
- every local path it loads is written by an earlier step of the same command (a download, a
  conversion, a merge) or is the user's own file;
- every LM Studio key it loads was fetched or imported by the command.

``python -m benchmarks.artifacts`` writes ``benchmarks/artifacts/results/coverage.{json,md}`` (and the
docs page ``docs/reports/artifacts.md``): the
catalog's size (repos, files, models) and how many planned options load a published artifact as is,
after a download step, or only after a make step. ``tests/test_artifacts.py`` runs the same checks on
a subset.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import qwenfit
from benchmarks.artifacts.launch import read_command
from qwenfit.core.artifacts import PublishedRepo, published_summary
from qwenfit.core.engines.base import names as engine_names
from qwenfit.loaders.artifacts import published

RESULTS = Path(__file__).resolve().parent / "results"
DOCS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "reports" / "artifacts.md"
# (label, plan keywords): the users issue 16 names
MACHINES = (
    ("rtx-3060 + 32 GB", {"hardware": "rtx-3060", "ram_gb": 32}),
    ("rtx-4090 + 64 GB", {"hardware": "rtx-4090", "ram_gb": 64}),
    ("2x rtx-3090 + 128 GB", {"hardware": "2x rtx-3090", "ram_gb": 128}),
    ("m4-max-128", {"hardware": "m4-max-128"}),
    ("8x h100-sxm", {"hardware": "8x h100-sxm", "ram_gb": 2048}),
)


def catalog_index() -> dict[str, PublishedRepo]:
    return {r.id: r for r in published()}


def problems(command: str, index: dict[str, PublishedRepo], own: Iterable[str] = ()) -> list[str]:
    """What in ``command`` does not load a real artifact (empty: all of it does)."""
    loads = read_command(command)
    out: list[str] = []
    for repo, tag, file in loads.hub:
        r = index.get(repo)
        if r is None:
            out.append(f"repo {repo} is not in the catalog")
            continue
        if tag is not None and r.kind == "gguf-repo" and r.file(tag) is None:
            out.append(f"{repo} publishes no {tag} file")
        if file is not None and not any(file in f.parts for f in r.files):
            out.append(f"{repo} has no file {file}")
    made = {p for p in loads.made if p}
    mine = {p.removeprefix("./") for p in own}
    for path in loads.paths:
        prefixes = [*(m + "/" for m in made), *loads.made_prefixes]
        if path not in made and path not in mine and not any(path.startswith(m) for m in prefixes):
            out.append(f"loads {path}, which nothing in the command makes")
    for key in loads.keys:
        if key not in loads.key_sources:
            out.append(f"lms load {key}: no lms get / lms import gives that key")
    return out


def plan_rows(machines: Iterable[tuple[str, dict[str, Any]]] = MACHINES) -> list[dict[str, Any]]:
    """One row per placed option of every catalog model, engine and machine."""
    index = catalog_index()
    rows = []
    for label, kw in machines:
        plan = qwenfit.plan(engines=engine_names(), context=8192, **kw)
        for o in plan.options:
            a = o.artifact
            kind = "published" if a and a.published and not a.make else (
                "published, prepared" if a and a.published else "made")  # fmt: skip
            rows.append({
                "machine": label, "model": o.model, "engine": o.engine, "quant": o.quant, "kind": kind,
                "repo": a.repo if a else None, "problems": problems(o.command, index),
            })  # fmt: skip
    return rows


def check_rows(models: Iterable[str] = ("9B", "35B-A3B", "397B-A17B")) -> list[dict[str, Any]]:
    """``check`` of each engine's planner quantizations (published or not): every command must still
    load a real artifact (published, or made by its own steps)."""
    from qwenfit.api import check_result
    from qwenfit.core.engines.base import get

    index = catalog_index()
    rows = []
    for model in models:
        for name in engine_names():
            engine = get(name)
            hw = (
                {"hardware": "m4-max-128"}
                if engine.unified_only
                else {"hardware": "8x h100-sxm", "ram_gb": 2048}
            )
            for quant in engine.planner_quants:
                try:
                    r = check_result(model, quant, engine=name, context=8192, **hw)
                except qwenfit.QwenfitError as exc:
                    rows.append({"model": model, "engine": name, "quant": quant, "refused": str(exc)})
                    continue
                rows.append({"model": model, "engine": name, "quant": quant,
                             "published": bool(r.artifact and r.artifact.published),
                             "problems": problems(r.command, index)})  # fmt: skip
    return rows


def summary() -> dict[str, Any]:
    repos = published()
    plans, checks = plan_rows(), check_rows()
    kinds = Counter(r["kind"] for r in plans)
    return {
        "catalog": {**published_summary(repos), "by_kind": dict(Counter(r.kind for r in repos)),
                    "files_with_tensor_types": sum(1 for r in repos for f in r.files if f.tensor_types)},
        "planned_options": {"total": len(plans), **dict(kinds),
                            "with_problems": sum(1 for r in plans if r["problems"])},
        "by_engine": {e: dict(Counter(r["kind"] for r in plans if r["engine"] == e)) for e in engine_names()},
        "checks": {"total": len(checks), "refused": sum(1 for r in checks if "refused" in r),
                   "published": sum(1 for r in checks if r.get("published")),
                   "with_problems": sum(1 for r in checks if r.get("problems"))},
        "problems": [r for r in (*plans, *checks) if r.get("problems")],
    }  # fmt: skip


def render(s: dict[str, Any]) -> str:
    c, p = s["catalog"], s["planned_options"]
    lines = [
        "# Commands that load real artifacts",
        "",
        "Generated by `python -m benchmarks.artifacts` (benchmarks/artifacts/coverage.py).",
        "",
        f"Catalog: {c['repos']} artifacts ({', '.join(f'{n} {k}' for k, n in sorted(c['by_kind'].items()))}) "
        f"for {c['models']} models; {c['files']} files, {c['files_with_bytes']} with exact byte sizes, "
        f"{c['files_with_tensor_types']} with tensor types read from their headers.",
        "",
        f"Planned options (every model and engine on {len(MACHINES)} machines, 8,192 tokens): {p['total']}; "
        f"loading a published artifact as is: {p.get('published', 0)}; after a download/merge step: "
        f"{p.get('published, prepared', 0)}; only after a make step (nothing published fits): "
        f"{p.get('made', 0)}; with a command that names something unreal: {p['with_problems']}.",
        "",
        "| engine | published | published, prepared | made |",
        "|---|---:|---:|---:|",
    ]
    for e, k in s["by_engine"].items():
        lines.append(
            f"| {e} | {k.get('published', 0)} | {k.get('published, prepared', 0)} | {k.get('made', 0)} |"
        )
    ch = s["checks"]
    lines += ["", f"`check` of every engine's own quantizations of 9B, 35B-A3B and 397B-A17B: {ch['total']} "
              f"({ch['refused']} refused by the engine); {ch['published']} load a published artifact, the "
              f"rest make theirs first; with problems: {ch['with_problems']}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    s = summary()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "coverage.json").write_text(json.dumps(s, indent=1) + "\n", encoding="utf-8")
    text = render(s)
    (RESULTS / "coverage.md").write_text(text, encoding="utf-8")
    DOCS_PAGE.write_text(text, encoding="utf-8")
    print(text)
    return 1 if s["problems"] else 0
