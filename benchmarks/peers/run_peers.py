#!/usr/bin/env python3
"""Run the peer tools on the cases of cases.py and record what they print, as fixtures.

What it produces (``benchmarks/peers/fixtures/``):

* ``llmfit.json`` -- llmfit (PyPI ``llmfit``, a Rust binary behind a Python launcher; its model
  catalog is embedded, so it runs offline). For every case: ``llmfit plan <repo id> --context C
  --quant Q4_K_M --json`` (weights, KV, total) and ``llmfit concurrency ... --json`` (its recurrent
  state per session); for every scenario of ``cases.SCENARIOS``: ``llmfit --memory .. --ram .. info
  <repo id> --json`` (fit verdict, usable context). Hardware is simulated with ``--memory``/``--ram``.
* ``hf_mem.json`` -- hf-mem (PyPI ``hf-mem``), whose only input is the Hugging Face Hub: its own
  ``hf_mem.run()`` pipeline, run by ``_hfmem_offline.py`` with the Hub replaced by local files
  (an ``httpx2.MockTransport``; nothing else is changed). Repositories served:

  - ``Qwen/<model>``: ``config.json`` (data/models, ``_qwenfit`` removed) and a ``model.safetensors``
    header with the real checkpoint's tensor names, shapes and dtypes (``qwenfit.load(name).inventory``:
    fused 3-D ``mlp.experts.gate_up_proj`` / ``down_proj``, per-expert MTP experts, vision tower,
    MTP; element count checked against the published total), data section left out;
  - ``offline/<model>-GGUF``: a Q4_K_M GGUF header, converter KVs of
    ``tests/fixtures/llama_quantize/<model>.json`` as llama.cpp's converter wrote them with
    ``--no-mtp`` (``block_count`` = text layers, no ``nextn_predict_layers``; tokenizer arrays left out),
    tensors and ggml types of ``qwenfit.weights(model, "Q4_K_M", mtp=False)`` (equal, tensor by
    tensor, to ``llama-quantize --dry-run``: tests/unit/test_llama_quantize_fixtures.py);
  - ``tiny/<variant>``: the real tiny checkpoints of ``tests/fixtures/tiny`` (transformers-written)
    and ``tiny-gguf/<file>``: the real GGUFs of ``tests/fixtures/gguf`` (llama.cpp-written).

  hf-mem's ``--experimental`` KV cache is asked for at each context of the cases.

Each fixture records the tool's version, the exact command line (or ``hf_mem.run`` arguments) and
its raw output, so ``python -m benchmarks.accuracy`` regenerates the report without the peers.

How to run (the peers live in their own venv, never in qwenfit's dependencies)::

    .venv/bin/python benchmarks/peers/run_peers.py --install    # creates /work/venvs/peers (pinned)
    .venv/bin/python benchmarks/peers/run_peers.py              # ~10 s
    .venv/bin/python -m benchmarks.accuracy --rerun-peers       # the same, then the report

Peers that could not run offline here are listed in ``NOT_RUN`` (written into both fixtures' index).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURES = HERE / "fixtures"
DEFAULT_VENV = Path(os.environ.get("QWENFIT_PEERS_VENV", "/work/venvs/peers"))
PINS = {"llmfit": "1.1.17", "hf-mem": "0.5.6"}

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.peers import cases  # noqa: E402

NOT_RUN = {
    "gguf-parser-go (gpustack)": "a Go program; no Go toolchain on this machine (Debian's golang 1.19 is "
    "older "
    "than the module needs) and no prebuilt binary may be downloaded. It also lacks qwen35/qwen35moe in its "
    "hybrid-architecture allowlist at v0.25.0 (gguf-parser-go #28: KV charged to every block).",
    "accelerate estimate-memory": "reads the model from the Hugging Face Hub (no local-config mode); "
    "weights only (no KV, no state), fp32/fp16/int8/int4 by a flat divisor.",
    "Ollama / LM Studio": "need the real model files and the runtime (GPU or full weights) to report memory.",
    "web calculators (Vokturz, NyxKrage, gpu_poor, canirun.ai, apxml)": "browser apps that fetch configs "
    "from the Hub; no offline mode.",
    "whichllm, kvfit, canirunllm": "resolve models through the Hub or their online catalogs at run time.",
}


# ------------------------------------------------------------------------------------------------
# venv
# ------------------------------------------------------------------------------------------------


def install(venv: Path) -> None:
    """Create the peers venv with the pinned peer packages (PyPI, through pip)."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pins = [f"{name}=={version}" for name, version in PINS.items()]
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *pins], check=True)


def _pip_version(venv: Path, name: str) -> str:
    out = subprocess.run([str(venv / "bin" / "pip"), "show", name], capture_output=True, text=True).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Version:")), "?")


# ------------------------------------------------------------------------------------------------
# llmfit
# ------------------------------------------------------------------------------------------------


def _llmfit(venv: Path, args: list[str], home: str) -> dict[str, Any]:
    exe = venv / "bin" / "llmfit"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": home, "LANG": "C.UTF-8"}
    r = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=120)
    rec: dict[str, Any] = {"command": ["llmfit", *args], "returncode": r.returncode}
    try:
        rec["output"] = json.loads(r.stdout)
    except json.JSONDecodeError:
        rec["stdout"] = r.stdout[-2000:]
    stderr = [ln for ln in r.stderr.splitlines() if "GLIBC" not in ln]  # the launcher's libc warning
    if stderr:
        rec["stderr"] = stderr[-20:]
    return rec


def run_llmfit(venv: Path) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="qwenfit-llmfit-home-")  # no user cache or config is read
    version = subprocess.run(
        [str(venv / "bin" / "llmfit"), "--version"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": home},
    ).stdout.strip()
    hw = ["--memory", "24G", "--ram", "64G"]  # plan/concurrency need a machine; the numbers compared don't
    runs: dict[str, Any] = {}
    for model in cases.MODELS:
        repo = f"Qwen/{model}"
        for ctx in cases.CONTEXTS:
            runs[f"plan/{model}/{ctx}"] = _llmfit(
                venv, [*hw, "plan", repo, "--context", str(ctx), "--quant", cases.QUANT, "--json"], home
            )
            runs[f"concurrency/{model}/{ctx}"] = _llmfit(
                venv,
                [*hw, "concurrency", repo, "--quant", cases.QUANT, "--context", str(ctx), "--json"],
                home,
            )
    for sid, model, vram, ram, max_ctx in cases.SCENARIOS:
        args = ["--memory", f"{vram}G", "--ram", f"{ram}G"]
        if max_ctx:
            args += ["--max-context", str(max_ctx)]
        runs[f"info/{sid}"] = _llmfit(venv, [*args, "info", f"Qwen/{model}", "--json"], home)
    return {
        "tool": "llmfit",
        "package": f"llmfit=={_pip_version(venv, 'llmfit')} (PyPI)",
        "version": version,
        "platform": f"{platform.system()} {platform.machine()}",
        "script": "benchmarks/peers/run_peers.py",
        "runs": runs,
    }


# ------------------------------------------------------------------------------------------------
# hf-mem: the offline Hub it reads
# ------------------------------------------------------------------------------------------------


def safetensors_header(name: str) -> bytes:
    """A header-only model.safetensors with the real checkpoint's tensors (names, shapes, dtypes)."""
    import qwenfit

    spec = qwenfit.load(name)
    merged: dict[str, tuple[list[int], str]] = {}
    for t in spec.inventory:
        shape = list(t.shape)
        if "{e}" in t.hf_name:  # one tensor per expert (MTP experts of the MoE checkpoints)
            for e in range(shape[0]):
                merged[t.hf_name.replace("{e}", str(e))] = (shape[1:], t.dtype)
            continue
        if t.hf_name in merged:  # fused tensor split into views (gate_up_proj -> gate, up)
            prev, _ = merged[t.hf_name]
            prev[t.hf_axis] += shape[t.hf_axis]
        else:
            merged[t.hf_name] = (shape, t.dtype)
    size = {"BF16": 2, "F16": 2, "F32": 4}
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    n_params = 0
    for hf_name in sorted(merged):
        shape, dtype = merged[hf_name]
        n = math.prod(shape)
        n_params += n
        header[hf_name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n * size[dtype]]}
        offset += n * size[dtype]
    if n_params != spec.params.total:
        raise SystemExit(f"{name}: synthetic header has {n_params} params, qwenfit says {spec.params.total}")
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


_GGUF_STR, _GGUF_U32, _GGUF_I32, _GGUF_F32, _GGUF_BOOL, _GGUF_ARR = 8, 4, 5, 6, 7, 9


def _gguf_str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def _gguf_value(v: Any) -> bytes:
    if isinstance(v, bool):
        return struct.pack("<I?", _GGUF_BOOL, v)
    if isinstance(v, int):
        return struct.pack("<II", _GGUF_U32, v)
    if isinstance(v, float):
        return struct.pack("<If", _GGUF_F32, v)
    if isinstance(v, str):
        return struct.pack("<I", _GGUF_STR) + _gguf_str(v)
    if isinstance(v, dict) and v.get("array") == "int32" and "values" in v:
        return struct.pack("<IIQ", _GGUF_ARR, _GGUF_I32, len(v["values"])) + b"".join(
            struct.pack("<i", x) for x in v["values"]
        )
    raise TypeError(v)


def gguf_header(name: str) -> bytes:
    """A header-only Q4_K_M GGUF of the --no-mtp layout (see the module docstring)."""
    import qwenfit
    from qwenfit.core.formats.dtypes import GGML_TYPES

    kv_src = json.loads((REPO / "tests/fixtures/llama_quantize" / f"{name}.json").read_text())["source_gguf"][
        "kv"
    ]
    spec = qwenfit.load(name)
    arch = kv_src["general.architecture"]
    kv: dict[str, Any] = {}
    for key, value in kv_src.items():
        if key.startswith("tokenizer.ggml.") and isinstance(value, dict):
            continue  # token/merge arrays: not needed to read the header, and not recorded
        if isinstance(value, dict) and "values" not in value:
            continue  # arrays recorded by length only (recurrent_layers)
        kv[key] = value
    kv[f"{arch}.block_count"] = spec.text.num_hidden_layers
    kv.pop(f"{arch}.nextn_predict_layers", None)
    kv["general.file_type"] = 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M
    w = qwenfit.weights(name, cases.QUANT, mtp=False)
    out = [b"GGUF", struct.pack("<IQQ", 3, len(w.tensors), len(kv))]
    out += [_gguf_str(k) + _gguf_value(v) for k, v in kv.items()]
    offset = 0
    for t in w.tensors:
        ne = list(reversed(t.shape))  # ggml order
        out.append(
            _gguf_str(t.gguf_name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        )
        out.append(struct.pack("<IQ", GGML_TYPES[t.type].id, offset))
        offset += -(-t.bytes // 32) * 32
    raw = b"".join(out)
    return raw + b"\0" * (-len(raw) % 32)


def _catalog_config(name: str) -> dict[str, Any]:
    raw = json.loads((REPO / "data/models" / f"{name}.json").read_text())
    raw.pop("_qwenfit", None)
    return raw


def hfmem_jobs(work: Path) -> dict[str, Any]:
    repos: dict[str, dict[str, str]] = {}
    jobs: list[dict[str, Any]] = []
    for name in cases.MODELS:
        d = work / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(_catalog_config(name)))
        (d / "model.safetensors").write_bytes(safetensors_header(name))
        (d / f"{name}-Q4_K_M.gguf").write_bytes(gguf_header(name))
        repos[f"Qwen/{name}"] = {
            "config.json": str(d / "config.json"),
            "model.safetensors": str(d / "model.safetensors"),
        }
        repos[f"offline/{name}-GGUF"] = {f"{name}-Q4_K_M.gguf": str(d / f"{name}-Q4_K_M.gguf")}
        jobs.append({"id": f"safetensors/{name}/weights", "model_id": f"Qwen/{name}", "kwargs": {}})
        for ctx in cases.CONTEXTS:
            jobs.append(
                {
                    "id": f"safetensors/{name}/{ctx}",
                    "model_id": f"Qwen/{name}",
                    "kwargs": {"experimental": True, "max_model_len": ctx},
                }
            )
            jobs.append(
                {
                    "id": f"gguf/{name}/{ctx}",
                    "model_id": f"offline/{name}-GGUF",
                    "kwargs": {
                        "experimental": True,
                        "max_model_len": ctx,
                        "gguf_file": f"{name}-Q4_K_M.gguf",
                    },
                }
            )
    tiny = REPO / "tests/fixtures/tiny"
    for variant in sorted(p.name for p in tiny.iterdir() if p.is_dir()):
        files = {
            p.name: str(p)
            for p in sorted((tiny / variant).iterdir())
            if p.name == "config.json" or p.name.endswith((".safetensors", ".safetensors.index.json"))
        }
        repos[f"tiny/{variant}"] = files
        jobs.append(
            {
                "id": f"tiny/{variant}",
                "model_id": f"tiny/{variant}",
                "kwargs": {"experimental": True, "max_model_len": 4096},
            }
        )
    for p in sorted((REPO / "tests/fixtures/gguf").glob("*.gguf")):
        if p.name.startswith("mmproj-"):
            continue
        repos[f"tiny-gguf/{p.stem}"] = {p.name: str(p)}
        jobs.append(
            {
                "id": f"tiny-gguf/{p.stem}",
                "model_id": f"tiny-gguf/{p.stem}",
                "kwargs": {"experimental": True, "max_model_len": 4096, "gguf_file": p.name},
            }
        )
    return {"repos": repos, "jobs": jobs}


def run_hfmem(venv: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qwenfit-hfmem-") as tmp:
        spec = hfmem_jobs(Path(tmp))
        jobs_path = Path(tmp) / "jobs.json"
        jobs_path.write_text(json.dumps(spec))
        r = subprocess.run(
            [str(venv / "bin" / "python"), str(HERE / "_hfmem_offline.py"), str(jobs_path)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if r.returncode != 0:
            raise SystemExit(f"hf-mem driver failed:\n{r.stderr[-3000:]}")
        out = json.loads(r.stdout)
    return {
        "tool": "hf-mem",
        "package": f"hf-mem=={out['hf_mem_version']} (PyPI)",
        "version": out["hf_mem_version"],
        "script": "benchmarks/peers/run_peers.py + benchmarks/peers/_hfmem_offline.py",
        "how": "hf_mem.run(model_id, details=True, **kwargs) with the Hub replaced by local files "
        "(httpx2.MockTransport); see the run_peers.py docstring for what each repository holds",
        "jobs": {j["id"]: {"model_id": j["model_id"], "kwargs": j["kwargs"]} for j in spec["jobs"]},
        "results": out["results"],
    }


def dump(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="the peers venv (default %(default)s)")
    ap.add_argument("--install", action="store_true", help="create/update the venv with the pinned peers")
    ap.add_argument("--out", type=Path, default=FIXTURES)
    a = ap.parse_args(argv)
    if a.install or not (a.venv / "bin" / "llmfit").exists():
        install(a.venv)
    a.out.mkdir(parents=True, exist_ok=True)
    dump(run_llmfit(a.venv), a.out / "llmfit.json")
    dump(run_hfmem(a.venv), a.out / "hf_mem.json")
    dump({"not_run": NOT_RUN, "pins": PINS}, a.out / "not_run.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
