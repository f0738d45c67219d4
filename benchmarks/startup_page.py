"""The calculator page's first verdict on a throttled phone profile, in Chromium (Playwright + CDP).

    .venv/bin/python benchmarks/startup_page.py                 # builds the site, 5 cold loads per profile
    .venv/bin/python benchmarks/startup_page.py --site DIR --runs 9 --write

The site (``mkdocs build``) is served on 127.0.0.1 with gzip, as a static host serves it (GitHub
Pages compresses HTML, CSS, JS and JSON). Each run is a fresh browser context (empty cache) with
the CPU slowed 4x (``Emulation.setCPUThrottlingRate``) and the network shaped by
``Network.emulateNetworkConditions`` to Chrome DevTools' presets: "Slow 4G" (the former "Fast 3G":
562.5 ms latency, 1.44 Mbit/s down, 675 kbit/s up) and "3G" (the former "Slow 3G": 2,000 ms, 400
kbit/s, 400 kbit/s). It times, from navigation start, the first verdict ("Fits" / "Does not fit" in
the page: when a poll sees it, when the page's own mark says it set it, when the frame with it is
painted) and the moment every model is loaded (``data-ready``), and sums the bytes on the wire of
what the first verdict waits for: the page's HTML (which carries the first data inline, with the
calculator's scripts and the theme's styles) plus any calculator data fetched before it
(``transferSize`` of ``assets/calculator/*``).
Figures only; nothing here passes or fails. Chromium is Debian's (/usr/bin/chromium or
$QWENFIT_CHROMIUM).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "startup" / "page.json"
PROFILES = {  # Chrome DevTools' network presets (front_end/core/sdk/NetworkManager.ts)
    "Slow 4G": {"latency": 562.5, "downloadThroughput": 1.6e6 * 0.9 / 8, "uploadThroughput": 750e3 * 0.9 / 8},
    "3G": {"latency": 2000, "downloadThroughput": 500e3 * 0.8 / 8, "uploadThroughput": 500e3 * 0.8 / 8},
}
CPU_SLOWDOWN = 4
GZIP_TYPES = (".html", ".css", ".js", ".mjs", ".json", ".svg")


class GzipHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, gzipped when the client accepts it (as a static host does)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        if not path.suffix.endswith(GZIP_TYPES) or "gzip" not in self.headers.get("Accept-Encoding", ""):
            super().do_GET()
            return
        if not path.is_file():
            self.send_error(404)
            return
        body = gzip.compress(path.read_bytes(), 6)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


FIRST_VERDICT = """() => {
  const v = document.querySelector('#qwenfit-calc [data-parity="verdict"]');
  return v && v.textContent ? performance.now() : null;
}"""
DATA_BYTES = """() => performance.getEntriesByType("resource")
  .filter((r) => r.name.includes("/assets/calculator/"))
  .map((r) => ({name: r.name.split("/assets/calculator/")[1],
                transfer: r.transferSize, raw: r.decodedBodySize}))"""


def throttled_load(browser: Any, url: str, profile: dict[str, float], *, timeout_ms: int) -> tuple[Any, Any]:
    """A fresh phone-sized context (no service worker) on ``profile``'s network with the CPU slowed
    CPU_SLOWDOWN times, PAINTED installed, navigating to ``url``: (context, page)."""
    context = browser.new_context(viewport={"width": 412, "height": 915}, service_workers="block")
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, **profile})
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
    page.set_default_timeout(timeout_ms)
    page.add_init_script(f"({PAINTED})()")
    page.goto(url, wait_until="commit")
    return context, page


def first_verdict(browser: Any, url: str, profile: dict[str, float]) -> tuple[float, float]:
    """The first verdict alone (any version of the page: its DOM is the same), seen by polling and
    painted (see PAINTED)."""
    context, page = throttled_load(browser, url, profile, timeout_ms=300_000)
    t = float(page.wait_for_function(FIRST_VERDICT, polling=10).json_value())
    painted = float(
        page.wait_for_function("() => window.__qfVerdictPainted ?? null", polling=10).json_value()
    )
    context.close()
    return t, painted


def build_site(out: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)


# installed before the page loads: when the verdict first has its text, the time of the next frame
# (a requestAnimationFrame callback runs just before a frame is painted, a timeout queued there runs
# after it; none runs while the page may not render, its stylesheets still loading)
PAINTED = """() => {
  const seen = () => {
    const v = document.querySelector('#qwenfit-calc [data-parity="verdict"]');
    if (!v || !v.textContent || window.__qfVerdictSeen) return;
    window.__qfVerdictSeen = true;
    requestAnimationFrame(() => setTimeout(() => { window.__qfVerdictPainted = performance.now(); }, 0));
  };
  new MutationObserver(seen).observe(document, { childList: true, subtree: true, characterData: true });
}"""
MARK = """(name) => performance.getEntriesByName(name, "mark").map((m) => m.startTime)[0] ?? null"""
PAGE_BYTES = """() => { const n = performance.getEntriesByType("navigation")[0];
  return {transfer: n.transferSize, raw: n.decodedBodySize}; }"""


def one_load(browser: Any, url: str, profile: dict[str, float]) -> dict[str, Any]:
    """One cold load: when the first verdict is in the page (seen by polling, as the figures before
    the page carried its data: ``first_verdict_ms``; the calculator's own mark right after it set the
    verdict: ``verdict_set_ms``), when the first frame with it is painted (``verdict_painted_ms``, see
    PAINTED), when every model is loaded, and the bytes on the wire."""
    context, page = throttled_load(browser, url, profile, timeout_ms=120_000)
    first = page.wait_for_function(FIRST_VERDICT, polling=10).json_value()
    at_first = page.evaluate(DATA_BYTES)
    painted = page.wait_for_function("() => window.__qfVerdictPainted ?? null", polling=10).json_value()
    marked = page.evaluate(MARK, "qwenfit:verdict")
    page.wait_for_selector("#qwenfit-calc[data-ready], #qwenfit-calc[data-error]")
    error = page.get_attribute("#qwenfit-calc", "data-error")
    if error:
        raise SystemExit(f"the calculator failed: {error}")
    ready = page.evaluate("() => performance.now()")
    every = page.evaluate(DATA_BYTES)
    html = page.evaluate(PAGE_BYTES)
    context.close()
    return {
        "first_verdict_ms": round(first),
        "verdict_set_ms": None if marked is None else round(marked),
        "verdict_painted_ms": None if painted is None else round(painted),
        "all_models_ms": round(ready),
        "first_verdict_data": at_first,
        "page_html": html,
        "all_data_transfer_bytes": sum(r["transfer"] for r in every),
        "all_data_raw_bytes": sum(r["raw"] for r in every),
    }


def _median(values: list[Any]) -> Any:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def export_sizes(site: Path) -> dict[str, Any]:
    """Bytes (raw, gzip -9) of everything the calculator page can load: the split export's files
    (the page carries the index and its first model inline, the others it fetches), plan mode's
    planner.json and variants.json (packed, beside the split export's index.json); the one-file
    export (``qwenfit export``, not loaded by the page) for comparison. ``first_verdict_*``: the data
    the first verdict needs (index + 35B-A3B, inline in the page)."""
    found = {p.name: p.read_bytes() for p in sorted((site / "assets" / "calculator").glob("*.json"))}
    plan = {name: found.pop(name) for name in ("planner.json", "variants.json")}
    split = found
    files = {**split, **plan}
    one = (site / "assets" / "calculator.json").read_bytes()
    gz = {name: len(gzip.compress(b, 9)) for name, b in files.items()}
    html = (site / "calculator" / "index.html").read_bytes()
    return {
        "files": {name: [len(b), gz[name]] for name, b in files.items()},
        "total_raw": sum(len(b) for b in files.values()),
        "total_gzip": sum(gz.values()),
        "calculator_raw": sum(len(b) for b in split.values()),
        "calculator_gzip": sum(gz[name] for name in split),
        "plan_raw": sum(len(b) for b in plan.values()),
        "plan_gzip": sum(gz[name] for name in plan),
        "first_verdict_gzip": gz["index.json"] + gz["35B-A3B.json"],
        "first_verdict_raw": len(split["index.json"]) + len(split["35B-A3B.json"]),
        "page_html_raw": len(html),
        "page_html_gzip": len(gzip.compress(html, 9)),
        "one_file_raw": len(one),
        "one_file_gzip": len(gzip.compress(one, 9)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--site", type=Path, help="a built site (default: mkdocs build into a temporary folder)")
    ap.add_argument("--runs", type=int, default=5, help="cold loads per profile (default 5)")
    ap.add_argument("--write", action="store_true", help=f"write {RESULTS.relative_to(ROOT)}")
    ap.add_argument(
        "--before",
        nargs=2,
        metavar=("SITE", "LABEL"),
        help="also time the first verdict (first profile only) on another built site, e.g. of the commit "
        "before the split export (git archive REV | tar -x; mkdocs build), labelled LABEL",
    )
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("QWENFIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        raise SystemExit("chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        site = args.site or Path(tmp) / "site"
        if args.site is None:
            build_site(site)
        sizes = export_sizes(site)
        for name, (raw, gz) in sizes["files"].items():
            print(f"  {name}: {raw / 1e3:.1f} kB raw, {gz / 1e3:.1f} kB gzipped")
        print(
            f"whole export: {sizes['total_raw'] / 1e3:.1f} kB raw in {len(sizes['files'])} files "
            f"({sizes['total_gzip'] / 1e3:.1f} kB gzipped): split calculator "
            f"{sizes['calculator_raw'] / 1e3:.1f} kB raw ({sizes['calculator_gzip'] / 1e3:.1f} kB gzipped), "
            f"plan mode {sizes['plan_raw'] / 1e3:.1f} kB raw ({sizes['plan_gzip'] / 1e3:.1f} kB gzipped); "
            "first verdict's data (index + 35B-A3B, "
            f"inline in the page) {sizes['first_verdict_raw'] / 1e3:.1f} kB raw, "
            f"{sizes['first_verdict_gzip'] / 1e3:.1f} kB gzipped; the page's HTML "
            f"{sizes['page_html_raw'] / 1e3:.1f} kB raw, {sizes['page_html_gzip'] / 1e3:.1f} kB gzipped; "
            f"the one-file export (not loaded by the page): {sizes['one_file_raw'] / 1e6:.2f} MB raw, "
            f"{sizes['one_file_gzip'] / 1e3:.1f} kB gzipped"
        )
        handler = functools.partial(GzipHandler, directory=str(site))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/calculator/"
        results: dict[str, Any] = {}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"]
                )
                before_url = None
                if args.before:
                    handler_before = functools.partial(GzipHandler, directory=str(args.before[0]))
                    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_before)
                    threading.Thread(target=other.serve_forever, daemon=True).start()
                    before_url = f"http://127.0.0.1:{other.server_address[1]}/calculator/"
                for name, profile in PROFILES.items():
                    runs = [one_load(browser, url, profile) for _ in range(args.runs)]
                    first = statistics.median(r["first_verdict_ms"] for r in runs)
                    ready = statistics.median(r["all_models_ms"] for r in runs)
                    data = runs[0]["first_verdict_data"]
                    results[name] = {
                        "runs": args.runs,
                        "first_verdict_ms_median": first,
                        "first_verdict_ms": [r["first_verdict_ms"] for r in runs],
                        "verdict_set_ms_median": _median([r["verdict_set_ms"] for r in runs]),
                        "verdict_set_ms": [r["verdict_set_ms"] for r in runs],
                        "verdict_painted_ms_median": _median([r["verdict_painted_ms"] for r in runs]),
                        "verdict_painted_ms": [r["verdict_painted_ms"] for r in runs],
                        "page_html": runs[0]["page_html"],
                        "all_models_ms_median": ready,
                        "first_verdict_data": data,
                        # the page's HTML carries the first verdict's data (and scripts, styles): counted
                        "first_verdict_data_transfer_bytes": runs[0]["page_html"]["transfer"]
                        + sum(r["transfer"] for r in data),
                        "all_data_transfer_bytes": runs[0]["all_data_transfer_bytes"],
                        "all_data_raw_bytes": runs[0]["all_data_raw_bytes"],
                    }
                    r = results[name]
                    if before_url is not None and name == next(iter(PROFILES)):
                        old = [first_verdict(browser, before_url, profile) for _ in range(args.runs)]
                        r["before_first_verdict_ms_median"] = statistics.median(t for t, _ in old)
                        r["before_verdict_painted_ms_median"] = statistics.median(p for _, p in old)
                        print(
                            f"{name}, before ({args.before[1]}): first verdict "
                            f"{r['before_first_verdict_ms_median'] / 1000:.2f} s, painted at "
                            f"{r['before_verdict_painted_ms_median'] / 1000:.2f} s"
                        )
                    names = ", ".join(d["name"] for d in data)
                    wire, raw = r["all_data_transfer_bytes"] / 1000, r["all_data_raw_bytes"] / 1000
                    head = r["first_verdict_data_transfer_bytes"] / 1000
                    set_at, painted = r["verdict_set_ms_median"], r["verdict_painted_ms_median"]
                    print(
                        f"{name}, CPU /{CPU_SLOWDOWN}: first verdict {first / 1000:.2f} s "
                        f"(median of {args.runs}; set by the page at "
                        f"{'-' if set_at is None else f'{set_at / 1000:.2f} s'}, painted at "
                        f"{'-' if painted is None else f'{painted / 1000:.2f} s'}; the page's HTML "
                        f"{r['page_html']['transfer'] / 1000:.1f} kB on the wire), "
                        f"every model {ready / 1000:.2f} s; data before the first "
                        f"verdict {head:.1f} kB on the wire ({names}), "
                        f"all data {wire:.1f} kB on the wire, {raw:.1f} kB raw"
                    )
                browser.close()
        finally:
            httpd.shutdown()
            httpd.server_close()
    if args.write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        meta = {"cpu_slowdown": CPU_SLOWDOWN, "profiles": PROFILES, "gzip": True}
        if args.before:
            meta["before"] = args.before[1]
        RESULTS.write_text(json.dumps({"meta": meta, "export": sizes, "results": results}, indent=1) + "\n")
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
