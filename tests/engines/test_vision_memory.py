"""llama.cpp's vision-encoder compute buffer (mmproj, clip.cpp) against llama.cpp itself
(tests/fixtures/vision_memory).

Made by scripts/vision_memory_fixtures.py: every Qwen3.5 vision tower at full size (sparse mmproj
GGUFs written by llama.cpp's converter) and the tiny mmproj fixtures, run through clip.cpp's own
warmup / reservation (qwenfit-clipprobe: exact bytes of clip_ctx::mem_compute) and llama-mtmd-cli,
over image sizes, --image-max-tokens and flash attention on/off; plus the graphs llama.cpp builds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import qwenfit
from qwenfit.core.engines.llama_cpp.vision import (
    clip_compute_bytes,
    clip_graph_qwen3vl,
    graph_digest,
    image_max_pixels,
    largest_image,
    mmproj_compute_bytes,
    warmup_image_size,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "vision_memory"
FILES = sorted(p for p in FIXTURES.glob("*.json") if p.name != "INDEX.json")
MIB = 1024 * 1024


def _spec(fx: dict):
    key = fx["model"]
    if key.startswith("tiny:"):
        return qwenfit.load(str(REPO / "tests" / "fixtures" / "tiny" / key.split(":", 1)[1] / "config.json"))
    return qwenfit.load(key)


def test_fixtures_present():
    index = json.loads((FIXTURES / "INDEX.json").read_text())
    assert index["llama_cpp"]["commit"].startswith("0c1e570")
    assert len(FILES) >= 11
    assert {json.loads(p.read_text())["kind"] for p in FILES} == {"tiny", "full-size sparse"}
    assert index["totals"]["max_relative_error"] == 0


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_compute_buffer_exact(path):
    fx = json.loads(path.read_text())
    spec = _spec(fx)
    assert {k: getattr(spec.vision, k) for k in fx["vision"]} == fx["vision"]
    ws = warmup_image_size(spec)
    assert fx["hparams"]["warmup_image_size"] == ws
    assert fx["hparams"]["image_max_pixels"] == image_max_pixels(spec)
    for run in fx["runs"]:
        fa_on = run["fa_resolved"] == "on"
        w, h = run["image"]
        if run["what"] == "warmup":
            assert (w, h) == (ws, ws)  # also with --image-max-tokens: the warmup size ignores it
            got = mmproj_compute_bytes(spec, flash_attn=fa_on, at_load=True)
            if "image_max_tokens" in run:
                assert run["image_max_pixels"] == image_max_pixels(spec, run["image_max_tokens"])
        elif run["what"] == "image":
            got = clip_compute_bytes(spec, w, h, flash_attn=fa_on)
        else:  # sequential reservations in one context: the buffer keeps the largest graph
            got = max(clip_compute_bytes(spec, a, b, flash_attn=fa_on) for a, b in run["after"])
        assert got == run["compute"], (run["args"], got, run["compute"])
        if run["log"]:
            assert run["log"]["mib"] == round(run["compute"] / MIB, 2)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_rebuilt_graph_is_llama_cpps(path):
    fx = json.loads(path.read_text())
    spec = _spec(fx)
    assert fx["graph_checks"]
    for chk in fx["graph_checks"]:
        leafs, nodes = clip_graph_qwen3vl(spec.vision, *chk["image"], flash_attn=chk["fa"] == "on")
        assert graph_digest(leafs, nodes) == chk["sha256"], chk["args"]
        assert chk["qwenfit_graph_equal"]
        assert chk["replay_of_llama_graph"] == chk["measured"]  # ggml-alloc replayed on llama.cpp's own graph
        assert chk["llama_nodes"] == chk["llama_nodes_logged"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_defaults_weights_cli_encode(path):
    fx = json.loads(path.read_text())
    spec = _spec(fx)
    d = fx["defaults"]
    assert d["at_load_fa_on"] == mmproj_compute_bytes(spec, at_load=True)
    assert d["at_load_fa_off"] == mmproj_compute_bytes(spec, at_load=True, flash_attn=False)
    assert d["worst_fa_on"] == mmproj_compute_bytes(spec)
    assert d["worst_fa_off"] == mmproj_compute_bytes(spec, flash_attn=False)
    # the weights clip.cpp counts are the inventory's BF16 vision tensors
    w = qwenfit.weights(spec, "BF16", vision=True)
    assert fx["weights"] == sum(t.bytes for t in w.tensors if t.component == "vision")
    for run in fx["cli"] or []:  # llama-mtmd-cli's own log line at load
        got = mmproj_compute_bytes(spec, flash_attn=run["fa_on"], at_load=True)
        assert run["logged_mib"] == round(got / MIB, 2)
    if fx["encode"]:  # a real 2048x2048 encode grows the buffer to the default worst case
        assert fx["encode"]["sched_before"] == mmproj_compute_bytes(spec, at_load=True)
        assert fx["encode"]["sched_after"] == mmproj_compute_bytes(spec)


def test_known_values_and_rules():
    spec = qwenfit.load("Qwen3.5-9B")
    assert warmup_image_size(spec) == 1472
    assert image_max_pixels(spec) == 4096 * 32 * 32
    assert largest_image(spec, image_max_pixels(spec)) == (2048, 2048)
    assert largest_image(spec, 576 * 1024) == (1024, 576)  # 24x24 tokens is the stored grid: not returned
    assert mmproj_compute_bytes(spec, at_load=True) == 260_149_504
    assert mmproj_compute_bytes(spec) == 503_578_624
    assert mmproj_compute_bytes(spec, flash_attn=False) == 17_758_945_280
    # a smaller image limit never goes below the load-time reservation
    assert mmproj_compute_bytes(spec, image_max_tokens=256) == mmproj_compute_bytes(spec, at_load=True)
    assert mmproj_compute_bytes(spec, max_pixels=1024 * 8192) > mmproj_compute_bytes(spec)
    prev = 0
    for tokens in (64, 512, 2116, 4096, 8192):
        cur = mmproj_compute_bytes(spec, image_max_tokens=tokens)
        assert cur >= prev
        prev = cur
    with pytest.raises(ValueError, match="multiples of 32"):
        clip_compute_bytes(spec, 100, 64)
    with pytest.raises(ValueError, match="no vision tower"):
        mmproj_compute_bytes(qwenfit.load("Qwen3-Next-80B-A3B"))


def test_closed_forms_of_the_docstring():
    """The high-water mark as the module docstring spells it out, on every measured full-size run."""
    for path in FILES:
        fx = json.loads(path.read_text())
        if fx["kind"] == "tiny":
            continue
        v = _spec(fx).vision
        for run in fx["runs"]:
            if run["what"] not in ("warmup", "image"):
                continue
            w, h = run["image"]
            p = (w // v.patch_size) * (h // v.patch_size)
            e, r, s, kq = 4 * v.hidden_size * p, 12 * w * h, 16 * p, 4 * v.num_heads * p * p
            if run["fa_resolved"] == "on":
                want = r + s + 6 * e if v.hidden_size > 768 else s + 13 * e // 2
            else:  # the KQ matrix lands in the freed QKV's hole when it fits
                want = (r + s + 7 * e if v.hidden_size > 768 else s + 7 * e) + (kq if kq > 3 * e else 0)
            assert want == run["compute"], (fx["model"], run["args"])
