"""The calculator's first verdict on the throttled phone profile (issue #20), in the browser tests' output.

One cold load of the built site, served gzipped as a static host serves it, in Chromium with the CPU
slowed 4x and Chrome DevTools' "Slow 4G" network (benchmarks/startup_page.py's load, which the start-up
report's medians come from). The time is printed with the other browser-test timings, never asserted;
the test asserts what must hold whatever the machine: the verdict appears without a calculator file
fetched before it (its data is inline in the page) and every model loads afterwards without an error."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import Any

import pytest

from benchmarks.startup_page import PROFILES, GzipHandler, one_load

pytestmark = pytest.mark.browser


def test_first_verdict_on_the_throttled_profile(
    browser: Any, site_dir: Path, timings: dict[str, float]
) -> None:
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(GzipHandler, directory=str(site_dir))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        load = one_load(
            browser, f"http://127.0.0.1:{httpd.server_address[1]}/calculator/", PROFILES["Slow 4G"]
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    timings["first verdict, Slow 4G + 4x CPU (painted)"] = load["verdict_painted_ms"] / 1e3
    timings["every model loaded, Slow 4G + 4x CPU"] = load["all_models_ms"] / 1e3
    assert load["first_verdict_data"] == []  # nothing fetched before the verdict: its data is in the page
    assert load["all_data_raw_bytes"] > 0  # the other models came afterwards
