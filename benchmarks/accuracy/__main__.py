"""``python -m benchmarks.accuracy``: qwenfit vs the real engines and the peer tools, one command.

Writes ``report.json`` and ``report.md`` to ``--out`` (default ``benchmarks/accuracy/results``) and the
same Markdown to ``docs/reports/accuracy.md``. Offline and deterministic; a few seconds.
``--rerun-peers`` first re-runs the peer tools (benchmarks/peers/run_peers.py, their own venv) and
re-records their fixtures. The llama.cpp reference of the peer cases is re-recorded separately
(benchmarks/peers/llama_reference.py: needs the llama.cpp build and the fixtures venv).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.accuracy.render import render  # noqa: E402
from benchmarks.accuracy.report import build  # noqa: E402

DEFAULT_OUT = REPO / "benchmarks" / "accuracy" / "results"
DOCS_PAGE = REPO / "docs" / "reports" / "accuracy.md"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--docs", type=Path, default=DOCS_PAGE, help="docs copy of report.md (%(default)s)")
    ap.add_argument("--rerun-peers", action="store_true", help="re-run llmfit and hf-mem and re-record them")
    ap.add_argument("--venv", type=Path, default=None, help="peers venv for --rerun-peers")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    if a.rerun_peers:
        from benchmarks.peers import run_peers

        run_peers.main([] if a.venv is None else ["--venv", str(a.venv)])
    rep = build()
    md = render(json.loads(json.dumps(rep)))  # exactly what report.json holds
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "report.json").write_text(json.dumps(rep, indent=1) + "\n")  # insertion order = page order
    (a.out / "report.md").write_text(md)
    a.docs.parent.mkdir(parents=True, exist_ok=True)
    a.docs.write_text(md)
    print(
        f"wrote {a.out / 'report.md'}, {a.out / 'report.json'}, {a.docs} in {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
