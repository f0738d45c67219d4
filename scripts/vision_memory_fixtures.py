#!/usr/bin/env python3
"""Ground truth of llama.cpp's vision-encoder compute buffer (mmproj, libmtmd clip.cpp) for Qwen3.5.

What it produces (``tests/fixtures/vision_memory/``)
----------------------------------------------------
One JSON per mmproj layout and INDEX.json (llama.cpp commit, tools, totals, error statistics):

* full size: every catalog model with a vision tower (data/models/*.json with ``vision_config``),
  its mmproj written by llama.cpp's own ``convert_hf_to_gguf.py --mmproj --outtype bf16`` from a
  sparse checkpoint, header only (scripts/_vision_gguf.py): the exact header, the data a sparse
  hole, so clip.cpp plans memory exactly as for the real file;
* tiny: the committed ``tests/fixtures/gguf/mmproj-*.gguf`` (real converter output of the tiny
  checkpoints, scripts/make_tiny_ggufs.py).

Per layout:

* ``mmproj``: file size, tensor count and bytes, the ``clip.*`` KVs, the command that made it;
  ``weights``: the bytes clip.cpp counts for the weights (clip_ctx::mem_usage);
  ``hparams``: image_min/max_pixels, warmup_image_size, n_merge, patch_size as clip.cpp set them;
* ``runs``: compute-buffer reservations in exact bytes (clip_ctx::mem_compute, which is what
  ``reserve_compute_meta`` logs in MiB; the logged MiB figure is kept and checked):
  ``warmup`` = the reservation made at load (flash attention auto / on / off, and with
  --image-max-tokens 1024 and 16384, which do not change it), ``image`` = the reservation for one
  preprocessed image size (a fresh context, clip.cpp's own warmup with that image; flash attention
  on and off; off only up to 2048² because the KQ matrix is allocated), ``sequential`` = the
  buffer after reserving several sizes one after the other in the warmup context (= the largest,
  as at runtime), ``encode`` (tiny only) = the scheduler's buffer before and after really encoding a
  2048 × 2048 image with ``clip_image_batch_encode`` (the buffer grows to the image's graph);
  each run has ``predicted`` (qwenfit.core.engines.llama_cpp.vision) -- the script stops on any difference;
* ``graph_checks``: for a few sizes, the graph llama.cpp builds (qwenfit-clipprobe --dump-graph):
  its node count, the sha256 of its allocator-relevant rows (qwenfit.core.engines.llama_cpp.vision.graph_rows)
  and whether qwenfit's rebuilt graph (``clip_graph_qwen3vl``) is identical row for row; plus the
  replay of ggml-alloc on llama.cpp's own graph (``graph_alloc_bytes``) against the bytes measured;
* ``cli``: real ``llama-mtmd-cli`` runs (tiny pairs, and Qwen3.5-0.8B with its sparse text GGUF):
  the command and the clip.cpp log lines (warmup size, image_max_pixels, compute buffer MiB, flash
  attention);
* ``log_excerpt``: clip.cpp's own lines for the default load.

How to run
----------
::

    scripts/build_llama_cpp.sh && scripts/build_mtmd_probe.sh             # once
    /work/venvs/fixtures/bin/python scripts/vision_memory_fixtures.py      # ~2 min, 2 cores

Options: ``--work DIR`` (scratch: sparse GGUFs of a few MB on disk; default
/tmp/qwenfit-vision-memory), ``--models A,B`` (catalog names and/or ``tiny:<variant>``), ``--reuse``,
``--keep``, ``--no-cli``, ``--out DIR``. Deterministic for a given llama.cpp build (no timings or
absolute paths stored).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))
import _gguf_common as g  # noqa: E402
import _vision_graph as vg  # noqa: E402

import qwenfit  # noqa: E402
from qwenfit.core.engines.llama_cpp.vision import (  # noqa: E402
    clip_compute_bytes,
    clip_graph_qwen3vl,
    graph_alloc_bytes,
    graph_digest,
    graph_rows,
    image_max_pixels,
    mmproj_compute_bytes,
    warmup_image_size,
)

REPO = g.REPO_ROOT
MIB = 1024 * 1024
# tiny variant -> (mmproj, text GGUF for llama-mtmd-cli), both in tests/fixtures/gguf
TINY = {v: (f"tests/fixtures/gguf/mmproj-{v}.gguf", f"tests/fixtures/gguf/{v}.gguf")
        for v in ("dense-vision-mtp", "moe-vision-mtp", "moe-sharded")}  # fmt: skip
IMAGES_FA_ON = [(64, 64), (256, 256), (512, 512), (640, 480), (768, 768), (1024, 768), (1024, 1024),
                (1472, 1472), (2048, 2048), (4096, 1024), (32, 4096), (2880, 2880), (4096, 4096)]  # fmt: skip
IMAGES_FA_OFF = [(64, 64), (512, 512), (768, 768), (1024, 768), (1472, 1472), (2048, 2048), (4096, 1024)]
SEQUENTIAL = [(512, 512), (2048, 2048), (1024, 1024)]
GRAPH_CHECKS = [((1472, 1472), "on"), ((1472, 1472), "off"), ((768, 768), "on"), ((1024, 768), "on"),
                ((2048, 2048), "off")]  # fmt: skip
MAX_TOKENS_VARIANTS = [1024, 16384]
VISION_FIELDS = ("depth", "hidden_size", "intermediate_size", "num_heads", "out_hidden_size", "patch_size",
                 "spatial_merge_size", "num_position_embeddings")  # fmt: skip

_CLIP_RE = re.compile(r"qwenfit_clip: (.*)$")
_NODES_RE = re.compile(r"graph splits = \d+, nodes = (\d+)")
_RESERVE_RE = re.compile(r"reserve_compute_meta:\s+(\S+) compute buffer size =\s+([\d.]+) MiB")
_LOG_KEEP = re.compile(
    r"(get_dummy_batch: warmup|reserve_compute_meta:|warmup: flash attention|load_hparams: (projector|"
    r"n_embd|n_head|n_ff|n_layer|projection_dim|image_size|patch_size|n_merge|image_min_pixels|image_max_pixels)|"
    r"clip_ctx: CLIP using|encoding mtmd batch|mtmd_batch_encode_impl|image_tokens->n[xy])"
)


def tools() -> dict[str, str]:
    env = g.llama_env()
    r = subprocess.run([os.path.join(HERE, "build_mtmd_probe.sh"), "--print"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("run scripts/build_mtmd_probe.sh first")
    for ln in r.stdout.splitlines():
        k, _, v = ln.partition("=")
        env[k] = v
    return env


def probe(exe: str, mmproj: str, args: list[str]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """(qwenfit_clip records, stdout lines, stderr lines) of one qwenfit-clipprobe run."""
    r = subprocess.run([exe, mmproj, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"qwenfit-clipprobe {mmproj} {' '.join(args)} failed:\n{r.stderr[-3000:]}")
    recs = []
    for ln in r.stdout.splitlines():
        m = _CLIP_RE.match(ln)
        if m:
            rec: dict[str, Any] = {}
            for kv in m.group(1).split():
                k, _, v = kv.partition("=")
                rec[k] = int(v) if v.lstrip("-").isdigit() else v
            recs.append(rec)
    return recs, r.stdout.splitlines(), r.stderr.splitlines()


def reserve_lines(err: list[str]) -> list[tuple[str, float]]:
    return [(m.group(1), float(m.group(2))) for m in map(_RESERVE_RE.search, err) if m]


def wh(rec: dict[str, Any]) -> list[int]:
    w, h = rec["image"].split("x")
    return [int(w), int(h)]


@dataclass
class Layout:
    key: str  # catalog name or tiny:<variant>
    spec: Any  # qwenfit ModelSpec
    mmproj: str  # path
    shown: str  # path as recorded
    command: list[str]
    kind: str  # "tiny" | "full-size sparse"


def run_layout(lay: Layout, env: dict[str, str], cli: bool, work: str, reuse: bool) -> dict[str, Any]:
    exe = env["QWENFIT_CLIPPROBE"]
    v = lay.spec.vision
    runs: list[dict[str, Any]] = []
    failures: list[str] = []
    sym = lay.shown

    def add(rec: dict[str, Any], what: str, args: list[str], fa: str, logged: tuple[str, float] | None,
            predicted: int, extra: dict[str, Any] | None = None) -> None:  # fmt: skip
        run = {"what": what, "args": ["qwenfit-clipprobe", sym, *args], "fa": fa, "fa_resolved": rec["fa"],
               "image": wh(rec), "n_patches": rec["n_patches"], "compute": rec["compute"],
               "log": {"buft": logged[0], "mib": logged[1]} if logged else None, "predicted": predicted,
               **(extra or {})}  # fmt: skip
        if rec["compute"] != predicted:
            failures.append(f"{lay.key} {what} {args}: llama.cpp {rec['compute']} != qwenfit {predicted}")
        if logged and round(rec["compute"] / MIB, 2) != logged[1]:
            failures.append(f"{lay.key} {what} {args}: log {logged[1]} MiB != {rec['compute']} bytes")
        runs.append(run)

    # 1. the reservation at load: flash attention auto/on/off, and two --image-max-tokens
    ws = warmup_image_size(v)
    base_rec = None
    log_excerpt: list[str] = []
    hparams: dict[str, Any] = {}
    for fa in ("auto", "on", "off"):
        args = ["--fa", fa]
        recs, _, err = probe(exe, lay.mmproj, args)
        rl = reserve_lines(err)
        fa_on = fa != "off"
        add(recs[0], "warmup", args, fa, rl[-1], mmproj_compute_bytes(v, flash_attn=fa_on, at_load=True))
        if fa == "auto":
            base_rec = recs[0]
            log_excerpt = [ln for ln in err if _LOG_KEEP.search(ln)]
            hparams = {k: recs[0][k] for k in ("image_min_pixels", "image_max_pixels", "warmup_image_size",
                                                "n_merge", "patch_size")}  # fmt: skip
    assert base_rec is not None
    for mt in MAX_TOKENS_VARIANTS:
        args = ["--image-max-tokens", str(mt)]
        recs, _, err = probe(exe, lay.mmproj, args)
        rec = recs[0]
        add(rec, "warmup", args, "auto", reserve_lines(err)[-1], mmproj_compute_bytes(v, at_load=True),
            {"image_max_tokens": mt, "image_max_pixels": rec["image_max_pixels"]})
        if rec["image_max_pixels"] != image_max_pixels(v, mt):
            failures.append(f"{lay.key} --image-max-tokens {mt}: image_max_pixels {rec['image_max_pixels']}")
    if hparams["warmup_image_size"] != ws or hparams["image_max_pixels"] != image_max_pixels(v):
        failures.append(f"{lay.key}: hparams {hparams} (qwenfit: warmup {ws}, max {image_max_pixels(v)})")

    # 2. one reservation per image size (fresh context each), flash attention on and off
    for fa, sizes in (("on", IMAGES_FA_ON), ("off", IMAGES_FA_OFF)):
        args = ["--fa", fa]
        for w, h in sizes:
            args += ["--image", f"{w}x{h}"]
        recs, _, err = probe(exe, lay.mmproj, args)
        rl = reserve_lines(err)[1:]  # the first is the warmup of the initial context
        img_recs = [r for r in recs if r["what"] == "image"]
        assert len(img_recs) == len(sizes) == len(rl), (lay.key, len(img_recs), len(rl))
        for rec, logged in zip(img_recs, rl, strict=True):
            w, h = wh(rec)
            add(rec, "image", ["--fa", fa, "--image", f"{w}x{h}"], fa, logged,
                clip_compute_bytes(v, w, h, flash_attn=fa == "on"))  # fmt: skip

    # 3. sequential reservations in the warmup context: the buffer keeps the largest
    args = ["--fa", "on", "--sequential"]
    for w, h in SEQUENTIAL:
        args += ["--image", f"{w}x{h}"]
    recs, _, err = probe(exe, lay.mmproj, args)
    seen = [(ws, ws)]
    for rec in (r for r in recs if r["what"] == "sequential"):
        seen.append((wh(rec)[0], wh(rec)[1]))
        pred = max(clip_compute_bytes(v, a, b) for a, b in seen)
        add(rec, "sequential", args, "on", None, pred, {"after": [list(s) for s in seen]})

    # 4. graph checks: llama.cpp's graph == qwenfit's rebuilt graph; ggml-alloc replay == measured
    checks = []
    for (w, h), fa in GRAPH_CHECKS:
        args = ["--fa", fa, "--image", f"{w}x{h}", "--dump-graph", f"{w}x{h}"]
        recs, out, err = probe(exe, lay.mmproj, args)
        leafs, nodes = vg.parse_dump(out)
        rows = graph_rows(leafs, nodes)
        ql, qn = clip_graph_qwen3vl(v, w, h, flash_attn=fa == "on")
        qrows = graph_rows(ql, qn)
        measured = next(r["compute"] for r in recs if r["what"] == "image")
        replay = graph_alloc_bytes(leafs, nodes)
        n_nodes_log = [int(m.group(1)) for m in map(_NODES_RE.search, err) if m]
        checks.append({
            "image": [w, h], "fa": fa, "args": ["qwenfit-clipprobe", sym, *args],
            "llama_nodes": len(nodes), "llama_nodes_logged": n_nodes_log[-1], "rows": len(rows),
            "sha256": graph_digest(leafs, nodes), "qwenfit_graph_equal": rows == qrows,
            "replay_of_llama_graph": replay, "measured": measured,
        })  # fmt: skip
        if rows != qrows or replay != measured or len(nodes) != n_nodes_log[-1]:
            diff = next((f"{a} | {b}" for a, b in zip(rows, qrows, strict=False) if a != b), "length")
            failures.append(f"{lay.key} graph {w}x{h} fa={fa}: equal={rows == qrows} ({diff}) "
                            f"replay {replay} measured {measured}")  # fmt: skip

    # 5. tiny: a real encode grows the scheduler's buffer to the image's graph
    encode = None
    if lay.kind == "tiny":
        args = ["--encode", "2048x2048"]
        recs, _, _ = probe(exe, lay.mmproj, args)
        before = next(r for r in recs if r["what"] == "encode_before")
        after = next(r for r in recs if r["what"] == "encode_after")
        pred = mmproj_compute_bytes(v)  # max(warmup, 2048²) = the default worst case
        encode = {"args": ["qwenfit-clipprobe", sym, *args], "sched_before": before["sched"],
                  "sched_after": after["sched"], "predicted_after": pred,
                  "predicted_before": mmproj_compute_bytes(v, at_load=True)}  # fmt: skip
        if after["sched"] != pred or before["sched"] != encode["predicted_before"]:
            failures.append(f"{lay.key} encode: {encode}")

    if failures:
        raise SystemExit("llama.cpp and qwenfit disagree:\n  " + "\n  ".join(failures))

    weights = base_rec["weights"]
    inv = qwenfit.weights(lay.spec, "BF16", vision=True)
    inv_vision = sum(t.bytes for t in inv.tensors if t.component == "vision")
    info = g.read_gguf(lay.mmproj)
    out = {
        "model": lay.key,
        "kind": lay.kind,
        "mmproj": {
            "file": lay.shown,
            "command": lay.command,
            "file_size": info["file_size"],
            "n_tensors": info["n_tensors"],
            "tensor_bytes": sum(t[3] for t in info["tensors"]),
            "clip_kv": {k: val for k, val in info["kv"].items() if k.startswith("clip.")},
        },
        "vision": {f: getattr(v, f) for f in VISION_FIELDS},
        "weights": weights,
        "weights_inventory_bf16": inv_vision,
        "hparams": hparams,
        "defaults": {
            "at_load_fa_on": mmproj_compute_bytes(v, at_load=True),
            "at_load_fa_off": mmproj_compute_bytes(v, at_load=True, flash_attn=False),
            "worst_fa_on": mmproj_compute_bytes(v),
            "worst_fa_off": mmproj_compute_bytes(v, flash_attn=False),
        },
        "runs": runs,
        "graph_checks": checks,
        "encode": encode,
        "cli": run_cli(lay, env, work, reuse) if cli else None,
        "log_excerpt": log_excerpt,
    }
    return out


def run_cli(lay: Layout, env: dict[str, str], work: str, reuse: bool) -> list[dict[str, Any]] | None:
    """llama-mtmd-cli itself: text model + mmproj, a short prompt; clip.cpp's log lines kept."""
    if lay.kind == "tiny":
        text_shown = TINY[lay.key.split(":", 1)[1]][1]
        text = os.path.join(REPO, text_shown)
    elif lay.key == "Qwen3.5-0.8B":
        import _memory_gguf as mg

        text, _ = mg.make_bf16(lay.key, work, mtp=False, reuse=reuse)
        text_shown = f"<work>/{lay.key}.bf16-nomtp.gguf (scripts/_memory_gguf.py make_bf16, --no-mtp)"
    else:
        return None
    res = []
    v = lay.spec.vision
    variants: list[tuple[list[str], bool, int | None]] = [
        ([], True, None),
        (["-fa", "off"], False, None),
        (["--image-max-tokens", "1024"], True, 1024),
    ]
    for extra, fa_on, mt in variants:
        args = ["-m", text, "--mmproj", lay.mmproj, "-p", "x", "-n", "1", "-c", "512", "--temp", "0", "-v",
                "--chat-template", "chatml", *extra]  # fmt: skip
        r = subprocess.run([env["LLAMA_MTMD_CLI"], *args], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"llama-mtmd-cli failed: {args}\n{r.stderr[-3000:]}")
        err = r.stderr.splitlines()
        rl = reserve_lines(err)
        pred = mmproj_compute_bytes(v, flash_attn=fa_on, at_load=True)
        if len(rl) != 1 or rl[0][1] != round(pred / MIB, 2):
            raise SystemExit(f"llama-mtmd-cli {lay.key} {extra}: logged {rl}, qwenfit {pred / MIB:.2f} MiB")
        shown = ["llama-mtmd-cli", "-m", text_shown, "--mmproj", lay.shown, *args[4:]]
        keep = [re.sub(r"^\d+\.\d+\.\d+\.\d+ \S ", "", ln) for ln in err if _LOG_KEEP.search(ln)]
        res.append({"args": shown, "log": keep, "logged_mib": rl[0][1], "predicted": pred,
                    "image_max_tokens": mt, "fa_on": fa_on})  # fmt: skip
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/tmp/qwenfit-vision-memory")
    ap.add_argument("--models", default="")
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--no-cli", action="store_true")
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "vision_memory"))
    a = ap.parse_args()
    import _vision_gguf as vgg

    env = tools()
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    keys = [k for k in a.models.split(",") if k] or [*vgg.vision_models(), *(f"tiny:{t}" for t in TINY)]
    index: dict[str, Any] = {
        "llama_cpp": {
            "source": "llama-cpp-python 0.3.36 sdist (PyPI), vendor/llama.cpp",
            "commit": env.get("LLAMA_CPP_COMMIT", "0c1e57098bba43ac29e6e3b677cdceebdd22334f"),
            "build": "scripts/build_mtmd_probe.sh (Release, static, CPU only, GGML_NATIVE=OFF, "
                     "LLAMA_BUILD_MTMD=ON)",
            "probe": "qwenfit-clipprobe (clip.cpp compiled in; exact clip_ctx::mem_compute / mem_usage)",
        },
        "backend": "CPU",
        "layouts": {},
    }
    errors = []
    for key in keys:
        if key.startswith("tiny:"):
            variant = key.split(":", 1)[1]
            spec = qwenfit.load(os.path.join(REPO, "tests", "fixtures", "tiny", variant, "config.json"))
            mm = TINY[variant][0]
            made = ["see tests/fixtures/gguf/MANIFEST.json"]
            lay = Layout(key, spec, os.path.join(REPO, mm), mm, made, "tiny")
        else:
            spec = qwenfit.load(key)
            path, cmd = vgg.make_mmproj(key, a.work, a.reuse)
            lay = Layout(key, spec, path, f"<work>/mmproj-{key}.gguf", cmd, "full-size sparse")
        print(f"[vision_memory] {key}", file=sys.stderr)
        res = run_layout(lay, env, not a.no_cli, a.work, a.reuse)
        fname = key.replace("tiny:", "tiny-") + ".json"
        with open(os.path.join(a.out, fname), "w") as f:
            json.dump(res, f, indent=1, sort_keys=False)
            f.write("\n")
        n = len(res["runs"])
        errors += [abs(r["compute"] - r["predicted"]) / r["compute"] for r in res["runs"]]
        index["layouts"][key] = {"file": fname, "runs": n, "graph_checks": len(res["graph_checks"]),
                                 "cli_runs": len(res["cli"] or []), "defaults": res["defaults"],
                                 "weights": res["weights"]}  # fmt: skip
        if not a.keep and lay.kind != "tiny":
            os.remove(path)
    index["totals"] = {
        "layouts": len(index["layouts"]),
        "runs": len(errors),
        "graph_checks": sum(x["graph_checks"] for x in index["layouts"].values()),
        "cli_runs": sum(x["cli_runs"] for x in index["layouts"].values()),
        "max_relative_error": max(errors),
        "median_relative_error": statistics.median(errors),
    }
    with open(os.path.join(a.out, "INDEX.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    if not a.keep:
        for fn in os.listdir(a.work):
            if fn.endswith(".gguf"):
                os.remove(os.path.join(a.work, fn))
        shutil.rmtree(os.path.join(a.work, "ckpt"), ignore_errors=True)
    print(json.dumps(index["totals"]), file=sys.stderr)


if __name__ == "__main__":
    main()
