"""Run hf-mem's own pipeline offline: the Hugging Face Hub replaced by local files (peers venv only).

Not imported by qwenfit. ``run_peers.py`` starts it with the peers venv's Python::

    /work/venvs/peers/bin/python benchmarks/peers/_hfmem_offline.py JOBS.json

hf-mem (PyPI ``hf-mem``) has no local-file mode: ``hf_mem.run()`` lists a repository through
``https://huggingface.co/api/models/<id>/tree/<rev>``, reads ``config.json`` and HTTP-Range reads the
safetensors / GGUF headers. Here its ``httpx2.AsyncClient`` gets an ``httpx2.MockTransport`` that
answers those same URLs from local files (Range requests honoured, 206 responses), so every line of
hf-mem that runs is its own: listing, header parsing, MoE detection, the ``--experimental`` KV cache.
Nothing leaves the machine: a request for any other URL fails the job.

JOBS.json: ``{"repos": {model_id: {path in repo: local file}}, "jobs": [{"id", "model_id", "kwargs"}]}``
(``kwargs`` are ``hf_mem.run`` keyword arguments). Prints one JSON document on stdout:
``{"hf_mem_version", "results": {id: {"result": Result.to_json() (details=True), "moe": ...,
"warnings": [...]} | {"error": ...}}}``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import warnings
from typing import Any
from urllib.parse import unquote, urlparse

import hf_mem
import hf_mem.run
import httpx2

hf_run = sys.modules["hf_mem.run"]

_TREE = re.compile(r"^/api/models/(.+)/tree/([^/]+)$")
_RESOLVE = re.compile(r"^/(.+?/.+?)/resolve/([^/]+)/(.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def make_handler(repos: dict[str, dict[str, str]]):
    def handler(request: httpx2.Request) -> httpx2.Response:
        url = urlparse(str(request.url))
        if url.hostname != "huggingface.co":
            return httpx2.Response(599, text=f"offline: refused {request.url}")
        path = unquote(url.path)
        m = _TREE.match(path)
        if m and m.group(1) in repos:
            files = [
                {"type": "file", "path": p, "size": os.path.getsize(f)} for p, f in repos[m.group(1)].items()
            ]
            return httpx2.Response(200, json=files)
        m = _RESOLVE.match(path)
        if m and m.group(1) in repos and m.group(3) in repos[m.group(1)]:
            with open(repos[m.group(1)][m.group(3)], "rb") as f:
                data = f.read()
            r = _RANGE.match(request.headers.get("Range", ""))
            if r:
                start, end = int(r.group(1)), int(r.group(2) or len(data) - 1)
                return httpx2.Response(206, content=data[start : end + 1])
            return httpx2.Response(200, content=data)
        return httpx2.Response(404, text=f"not in the offline repos: {path}")

    return handler


def main(jobs_path: str) -> int:
    with open(jobs_path) as f:
        spec = json.load(f)
    transport = httpx2.MockTransport(make_handler(spec["repos"]))
    real_client = httpx2.AsyncClient

    class OfflineClient(real_client):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("http2", None)
            kwargs["transport"] = transport
            super().__init__(*args, **kwargs)

    hf_run.httpx2.AsyncClient = OfflineClient  # hf_mem.run calls httpx2.AsyncClient(...)
    os.environ.pop("HF_TOKEN", None)
    os.environ["HF_HOME"] = tempfile.mkdtemp()  # no token file is read
    results: dict[str, Any] = {}
    for job in spec["jobs"]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = hf_run.run(model_id=job["model_id"], details=True, **job["kwargs"])
            except Exception as e:  # a peer's failure is a result to record
                results[job["id"]] = {"error": f"{type(e).__name__}: {e}"}
                continue
        moe = res.moe_metadata
        results[job["id"]] = {
            "result": res.to_json(),
            "moe": None
            if moe is None
            else {
                "expert_count": moe.expert_count,
                "active_expert_count": moe.active_expert_count,
                "expert_param_count": moe.expert_param_count,
                "expert_bytes_count": moe.expert_bytes_count,
                "base_model_bytes": moe.base_model.bytes_count,
            },
            "warnings": sorted({str(w.message).split("\n")[0][:200] for w in caught}),
        }
    json.dump(
        {"hf_mem_version": hf_mem.__version__, "results": results}, sys.stdout, indent=1, sort_keys=True
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
