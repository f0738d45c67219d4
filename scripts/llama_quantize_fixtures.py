#!/usr/bin/env python3
"""llama-quantize's per-tensor type choice, for every file type, as test fixtures.

What it produces (``tests/fixtures/llama_quantize/``)
-----------------------------------------------------
One JSON per model, plus ``INDEX.json`` (totals per model and run, refusals, header checks).
Every run is the real ``llama-quantize --dry-run [OPTIONS] IN.gguf TYPE`` of the llama.cpp build
of ``scripts/build_llama_cpp.sh`` (it reads only the GGUF header); its stderr is parsed.

Models (``kind``):

* ``full-size``: the FULL-SIZE layouts of Qwen3.5-0.8B, 9B, 27B, 35B-A3B, 122B-A10B, 397B-A17B and
  Qwen3-Next-80B-A3B (configs ``data/models/*.json``, ``_qwenfit`` key stripped), plus
  ``Qwen3.5-35B-A3B--no-mtp`` (converted with ``--no-mtp``, the layout of the GGUFs published
  before llama.cpp wrote MTP tensors). The GGUFs are sparse: scripts/_gguf_sparse.py writes a
  sparse safetensors checkpoint (tensor list from transformers on the meta device + the mtp.*
  block; parameter count checked against the published total) and llama.cpp's own
  convert_hf_to_gguf.py writes the header (``--outtype bf16``, header only, data section a
  sparse hole of the exact size). Token list: the tiny BPE of _gguf_common padded by the
  converter to vocab_size (248320, 151936 for Qwen3-Next) entries, ~150 merges.
* ``kquant``: ``make_tiny_checkpoints.py --profile kquant`` (every matrix input dim a multiple of
  256) dense-vision-mtp, moe-vision-mtp and next-mtp, converted with real data (bf16).
* ``tiny``: the committed ``tests/fixtures/gguf/<variant>.gguf`` (run scripts/make_tiny_ggufs.py
  first): hidden size 64 etc., so most rows do not divide 256 and llama-quantize falls back.

The generated GGUFs (tens of MB of real files, sparse files of up to ~800 GB apparent size) stay in
``--work`` (default /tmp/qwenfit-llama-quantize); they are not fixtures.

Header checks (INDEX.json ``header_checks``): the sparse path (meta-device tensor list ->
sparse checkpoint -> converter header only) applied to the 5 committed tiny configs and the 3
kquant configs gives the same header as the converter on the real checkpoints (header size, file
size, every KV, every tensor name/type/shape); every full-size tensor follows the converter's
bf16/f32 rule (README-llama-cpp.md (d)); every generated GGUF loads in llama.cpp
(qwenfit-memprobe, shapes checked against the architecture) with a model size equal to its
non-MTP tensor bytes (each padded to 32 B); and (``real_q8_0_vs_dry_run``) the real Q8_0 files
of tests/fixtures/gguf have exactly the types and bytes of the Q8_0 dry runs.

Runs (``runs`` keys): every file type of ``FTYPES`` (a type this llama-quantize does not accept
is recorded with ``status: "refused"`` and its error text), ``<TYPE>+imatrix`` for the types
whose choice depends on an imatrix or that require one (a one-entry legacy imatrix file: only
``has_imatrix`` matters to the type choice), and option variants of Q4_K_M (``--pure``,
``--output-tensor-type q8_0``, ``--token-embedding-type q8_0``, ``--leave-output-tensor``,
``--tensor-type ffn_down_exps=q8_0``, ``--tensor-type attn_(qkv|gate)=q6_k``).

Per model JSON: ``source_gguf`` (how it was made, KV summary, header size, ``tensors`` =
``[name, source ggml type, ne]`` in llama-quantize's order, i.e. weight_name_comparer: non-blk
first, then by layer, then by name) and ``runs``: ``types`` = indices into ``type_names``,
aligned with ``source_gguf.tensors``; ``total_bytes`` = sum over tensors of nrows *
ggml_row_size(type, ne0) (GGML_QUANT_SIZES of the vendored gguf-py; kept tensors: their own
bytes; header and alignment padding excluded, like llama-quantize's totals); ``printed`` = the
MiB / BPW lines llama-quantize printed. The script fails unless every per-tensor MiB figure and
both totals agree with the computed bytes after printf rounding. ``fallbacks`` =
``[tensor index, ncols, requested, fallback]``, ``overrides`` = ``[tensor index, from, to]``.

How to run
----------
::

    scripts/build_llama_cpp.sh                              # once
    /work/venvs/fixtures/bin/python scripts/make_tiny_ggufs.py   # the tiny GGUFs it reads
    /work/venvs/fixtures/bin/python scripts/llama_quantize_fixtures.py     # ~3-5 minutes

Options: ``--work DIR``, ``--models NAME,...`` (catalog names for full-size layouts),
``--reuse`` (keep generated GGUFs from an earlier run), ``--jobs N``. Deterministic for a given
llama.cpp build and package versions (no timings, no absolute paths in the output).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _gguf_common as g  # noqa: E402
import _gguf_sparse as sp  # noqa: E402

OUT = os.path.join(g.REPO_ROOT, "tests", "fixtures", "llama_quantize")
MODELS_DIR = os.path.join(g.REPO_ROOT, "data", "models")
TINY_GGUF = os.path.join(g.REPO_ROOT, "tests", "fixtures", "gguf")
TINY_CKPT = os.path.join(g.REPO_ROOT, "tests", "fixtures", "tiny")

FULL_MODELS = [
    "Qwen3.5-0.8B",
    "Qwen3.5-9B",
    "Qwen3.5-27B",
    "Qwen3.5-35B-A3B",
    "Qwen3.5-122B-A10B",
    "Qwen3.5-397B-A17B",
    "Qwen3-Next-80B-A3B",
]
NO_MTP_EXTRA = ["Qwen3.5-35B-A3B"]  # also converted with --no-mtp (published pre-MTP layout)
KQUANT_VARIANTS = ["dense-vision-mtp", "moe-vision-mtp", "next-mtp"]
TINY_VARIANTS = ["dense-vision-mtp", "dense-untied-text", "moe-vision-mtp", "moe-sharded", "next-mtp"]

FTYPES = [
    "Q2_K", "Q2_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_1", "Q4_K_S", "Q4_K_M",
    "Q5_0", "Q5_1", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0",
    "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M",
    "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4_MOE", "F16", "BF16", "F32",
    "Q1_0", "Q2_0", "NVFP4",
]  # fmt: skip
IMATRIX_FTYPES = [
    "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M",
    "IQ4_NL", "IQ4_XS", "Q2_K_S", "Q4_0", "Q5_0",
]  # fmt: skip
OPTION_RUNS = {
    "Q4_K_M+pure": (["--pure"], "Q4_K_M"),
    "Q4_K_M+output-tensor-type=q8_0": (["--output-tensor-type", "q8_0"], "Q4_K_M"),
    "Q4_K_M+token-embedding-type=q8_0": (["--token-embedding-type", "q8_0"], "Q4_K_M"),
    "Q4_K_M+leave-output-tensor": (["--leave-output-tensor"], "Q4_K_M"),
    "Q4_K_M+tensor-type=ffn_down_exps=q8_0": (["--tensor-type", "ffn_down_exps=q8_0"], "Q4_K_M"),
    "Q4_K_M+tensor-type=attn_(qkv|gate)=q6_k": (["--tensor-type", "attn_(qkv|gate)=q6_k"], "Q4_K_M"),
}
IMATRIX_NAME = "imatrix-one-entry.dat"
_NOISE = ("llama_model_loader", "version:", "built with", "usage:", "  ")

_TENSOR_RE = re.compile(
    r"^\[\s*(\d+)/\s*(\d+)\] (\S+)\s+- \[([\d,\s]+)\], type =\s*(\S+), size =\s*([\d.]+) MiB"
    r"(?: ->\s*([\d.]+) MiB \((\S+)\))?\s*$"
)
_FALLBACK_RE = re.compile(
    r"^warning: (\S+)\s+- ncols\s+(\d+) not divisible by\s+(\d+) \(required for type\s+(\S+)\) "
    r"(?:\(WARNING: must use F16 due to unusual shape\) )?-> falling back to\s+(\S+)$"
)
_OVERRIDE_RE = re.compile(r"^llama_tensor_get_type: (\S+)\s+- applying manual override: (\S+) -> (\S+)$")
_SIZE_RE = re.compile(r"^llama_model_quantize_impl: (model|quant) size\s*=\s*([\d.]+) MiB \(([\d.]+) BPW\)")


# ------------------------------------------------------------------------------------------------
# Source GGUFs
# ------------------------------------------------------------------------------------------------


def load_catalog(name: str) -> dict[str, Any]:
    with open(os.path.join(MODELS_DIR, f"{name}.json")) as f:
        return json.load(f)


def make_full_size(name: str, work: str, reuse: bool, no_mtp: bool = False) -> dict[str, Any]:
    raw = load_catalog(name)
    model_id = f"{name}--no-mtp" if no_mtp else name
    n_mtp = 0 if no_mtp else sp.mtp_layer_count(raw)
    ckpt = os.path.join(work, "full", name)  # directory name -> general.name
    out = os.path.join(work, "full", f"{model_id}.gguf")
    extra = ["--no-mtp"] if no_mtp else sp.converter_extra(raw, n_mtp)
    family = g.FAMILY[raw["model_type"]]
    ck = None
    if not (reuse and os.path.exists(out)):
        if os.path.exists(ckpt):
            shutil.rmtree(ckpt)
        ck = sp.write_sparse_checkpoint(raw, ckpt, sp.mtp_layer_count(raw))
        sp.convert_header_only(ckpt, out, family, extra)
        os.remove(os.path.join(ckpt, "model.safetensors"))
    else:
        ck = {"params": None}
    published = raw.get("_qwenfit", {}).get("published_total_params")
    info = g.read_gguf(out)
    checks: dict[str, Any] = {"dtype_rule_violations": sp.dtype_rule_violations(info)}
    checks.update(load_check(out, info))
    if ck["params"] is not None:
        checks["checkpoint_params"] = ck["params"]
        checks["published_total_params"] = published
        checks["params_match_published"] = published is None or ck["params"] == published
        if published is not None and ck["params"] != published:
            raise SystemExit(f"{name}: sparse checkpoint has {ck['params']} params, published {published}")
    if checks["dtype_rule_violations"]:
        raise SystemExit(f"{model_id}: {checks['dtype_rule_violations'][:5]}")
    how = {
        "config": f"data/models/{name}.json (_qwenfit stripped)",
        "steps": [
            "scripts/_gguf_sparse.py write_sparse_checkpoint: transformers meta-device tensor list + "
            f"{sp.mtp_layer_count(raw)} MTP layer(s), BF16 (A_log, linear_attn.norm F32), sparse "
            "model.safetensors, tiny BPE tokenizer",
            " ".join(
                g.converter_command(
                    f"<work>/full/{name}",
                    f"<work>/full/{model_id}.gguf",
                    g.PRE_TOKENIZER[family],
                    extra,
                    True,
                )
            ),
        ],
    }
    return {"model": model_id, "kind": "full-size", "path": out, "ref": f"<work>/full/{model_id}.gguf",
            "how": how, "checks": checks}  # fmt: skip


def load_check(path: str, info: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp loads the file (tensor shapes checked against the architecture) and its model size
    equals the non-MTP tensor bytes of the header (each padded to 32 B, the CPU buffer alignment)."""
    got = g.memprobe_model_bytes(path)
    want = g.non_mtp_tensor_bytes(info, 32)
    if got is not None and got != want:
        raise SystemExit(f"{path}: llama.cpp model bytes {got} != non-MTP tensor bytes {want}")
    return {
        "llama_cpp_loads": got is not None,
        "llama_cpp_model_bytes": got,
        "non_mtp_tensor_bytes": g.non_mtp_tensor_bytes(info),
    }


def make_kquant(work: str, reuse: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """kquant-profile tiny checkpoints -> real bf16 conversion (+ the sparse path, compared)."""
    kdir = os.path.join(work, "kquant")
    ckpts = os.path.join(kdir, "checkpoints")
    if not (reuse and all(os.path.exists(os.path.join(ckpts, v, "config.json")) for v in KQUANT_VARIANTS)):
        if os.path.exists(kdir):
            shutil.rmtree(kdir)
        subprocess.run(
            [sys.executable, os.path.join(g.SCRIPTS, "make_tiny_checkpoints.py"), "--profile", "kquant",
             "--out", ckpts, "--variants", ",".join(KQUANT_VARIANTS), "--no-verify"],
            check=True, capture_output=True,
        )  # fmt: skip
    models, checks = [], {}
    for v in KQUANT_VARIANTS:
        conv_dir = os.path.join(kdir, "convert", v)
        out = os.path.join(kdir, f"{v}.gguf")
        if not (reuse and os.path.exists(out)):
            if os.path.exists(conv_dir):
                shutil.rmtree(conv_dir)
            pre, extra, _, _ = g.prepare_checkpoint_copy(os.path.join(ckpts, v), conv_dir)
            g.run_converter(conv_dir, out, pre, extra)
            shutil.rmtree(conv_dir)
        else:
            pre, extra = g.PRE_TOKENIZER[_family_of_dir(os.path.join(ckpts, v))], []
        checks[f"kquant-{v}"] = header_check(os.path.join(ckpts, v), out, os.path.join(kdir, "sparse"))
        models.append(
            {
                "model": f"kquant-{v}",
                "kind": "kquant",
                "path": out,
                "ref": f"<work>/kquant/{v}.gguf",
                "how": {
                    "steps": [
                        "python scripts/make_tiny_checkpoints.py --profile kquant --out "
                        f"<work>/kquant/checkpoints --variants {','.join(KQUANT_VARIANTS)} --no-verify",
                        "copy + tokenizer (+ preprocessor_config.json) as in scripts/make_tiny_ggufs.py, "
                        "then "
                        + " ".join(g.converter_command(f"<tmp>/{v}", f"<work>/kquant/{v}.gguf", pre, extra)),
                    ]
                },
                "checks": {
                    "sparse_path_header_diffs": checks[f"kquant-{v}"],
                    **load_check(out, g.read_gguf(out)),
                },
            }
        )
    return models, checks


def _family_of_dir(d: str) -> str:
    with open(os.path.join(d, "config.json")) as f:
        return g.FAMILY[json.load(f)["model_type"]]


def header_check(ckpt_dir: str, real_gguf: str, scratch: str) -> list[str]:
    """Sparse path on the same config vs the converter on the real checkpoint: list of diffs."""
    with open(os.path.join(ckpt_dir, "config.json")) as f:
        raw = json.load(f)
    n_mtp = _checkpoint_mtp_layers(ckpt_dir)
    name = os.path.basename(os.path.normpath(ckpt_dir))
    d = os.path.join(scratch, name)
    if os.path.exists(d):
        shutil.rmtree(d)
    sp.write_sparse_checkpoint(raw, d, n_mtp)
    out = os.path.join(scratch, f"{name}.gguf")
    sp.convert_header_only(d, out, g.FAMILY[raw["model_type"]], sp.converter_extra(raw, n_mtp))
    diffs = sp.compare_headers(g.read_gguf(out), g.read_gguf(real_gguf))
    shutil.rmtree(d)
    os.remove(out)
    return diffs


def _checkpoint_mtp_layers(ckpt_dir: str) -> int:
    idx = os.path.join(ckpt_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            names = list(json.load(f)["weight_map"])
    else:
        with open(os.path.join(ckpt_dir, "model.safetensors"), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            names = list(json.loads(f.read(n)))
    layers = {int(m.group(1)) for x in names if (m := re.match(r"mtp\.layers\.(\d+)\.", x))}
    return len(layers)


def tiny_models(work: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    models, checks = [], {}
    for v in TINY_VARIANTS:
        path = os.path.join(TINY_GGUF, f"{v}.gguf")
        if not os.path.exists(path):
            raise SystemExit(f"{path} missing: run scripts/make_tiny_ggufs.py first")
        checks[f"tiny-{v}"] = header_check(os.path.join(TINY_CKPT, v), path, os.path.join(work, "sparse"))
        models.append(
            {
                "model": f"tiny-{v}",
                "kind": "tiny",
                "path": path,
                "ref": f"tests/fixtures/gguf/{v}.gguf",
                "how": {"steps": ["scripts/make_tiny_ggufs.py (see tests/fixtures/gguf/MANIFEST.json)"]},
                "checks": {"sparse_path_header_diffs": checks[f"tiny-{v}"]},
            }
        )
    return models, checks


# ------------------------------------------------------------------------------------------------
# Dry runs
# ------------------------------------------------------------------------------------------------


def write_imatrix(path: str) -> None:
    """Legacy imatrix format (common/imatrix-loader.cpp): n_entries, then per entry name length,
    name, ncall, nval, values. One entry is enough to set has_imatrix in a dry run."""
    name = b"qwenfit.placeholder"
    with open(path, "wb") as f:
        f.write(struct.pack("<ii", 1, len(name)) + name + struct.pack("<iif", 1, 1, 1.0))


def run_plan() -> dict[str, tuple[list[str], str]]:
    plan: dict[str, tuple[list[str], str]] = {ft: ([], ft) for ft in FTYPES}
    for ft in IMATRIX_FTYPES:
        plan[f"{ft}+imatrix"] = (["--imatrix", "<imatrix>"], ft)
    plan.update(OPTION_RUNS)
    return plan


def dry_run(path: str, args: list[str], ftype: str, imatrix: str) -> tuple[int, str]:
    env = g.llama_env()
    cmd = [
        env["LLAMA_QUANTIZE"],
        "--dry-run",
        *[imatrix if a == "<imatrix>" else a for a in args],
        path,
        ftype,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, r.stderr + ("\n" + r.stdout if r.returncode else "")


def _mib(n: int, prec: int) -> str:
    return f"{n / 1024.0 / 1024.0:.{prec}f}"


def parse_run(
    log: str, rc: int, src: list[list[Any]] | None, n_elements: int | None
) -> tuple[dict[str, Any], list[list[Any]]]:
    """Parse one dry run. Returns (record, tensor rows [name, src type, ne, new type])."""
    rows, fallbacks, overrides, notes = [], [], [], []
    printed: dict[str, str] = {}
    per_tensor_mib = []
    imatrix_needed = False
    for line in log.splitlines():
        if m := _TENSOR_RE.match(line):
            ne = [int(x) for x in m.group(4).split(",")]  # always 4 dims as printed
            new = m.group(8) or m.group(5)
            rows.append([m.group(3), m.group(5), ne, new])
            per_tensor_mib.append((m.group(6), m.group(7)))
        elif m := _FALLBACK_RE.match(line):
            fallbacks.append([m.group(1), int(m.group(2)), m.group(4), m.group(5)])
        elif m := _OVERRIDE_RE.match(line):
            overrides.append([m.group(1), m.group(2), m.group(3)])
        elif m := _SIZE_RE.match(line):
            printed[f"{m.group(1)}_mib"] = m.group(2)
            printed[f"{m.group(1)}_bpw"] = m.group(3)
        elif "will require an imatrix" in line:
            imatrix_needed = True
            notes.append(line.split(": ", 1)[1].strip())
        elif "required fallback quantization" in line:
            notes.append(line.split(": ", 1)[1].strip())
    if rc != 0 or not rows:
        err = [
            ln.strip()
            for ln in log.splitlines()
            if ln.strip()
            and not ln.startswith(("llama_model_loader", "version:", "built with", "usage:", "  "))
        ]
        return {"status": "refused", "exit_code": rc, "error": err[:6]}, []

    if src is not None and [r[:3] for r in rows] != src:
        raise RuntimeError("tensor list differs between runs of the same model")
    src_bytes = total = 0
    for (name, styp, ne, new), (org_mib, new_mib) in zip(rows, per_tensor_mib, strict=True):
        sb = g.tensor_nbytes(styp, ne)
        nb = g.tensor_nbytes(new, ne)
        src_bytes += sb
        total += nb
        if new_mib is None:
            assert new == styp and org_mib == _mib(sb, 3), (name, org_mib, sb)
        elif org_mib != _mib(sb, 2) or new_mib != _mib(nb, 2):
            raise RuntimeError(f"{name}: printed {org_mib} -> {new_mib} MiB, computed {sb} -> {nb} B")
    for key, val, prec in (("model_mib", src_bytes, 2), ("quant_mib", total, 2)):
        if printed.get(key) != _mib(val, prec):
            raise RuntimeError(f"{key}: printed {printed.get(key)}, computed {val} B")
    if n_elements:
        for key, val in (("model_bpw", src_bytes), ("quant_bpw", total)):
            if printed.get(key) != f"{val * 8.0 / n_elements:.2f}":
                raise RuntimeError(f"{key}: printed {printed.get(key)}, computed {val * 8.0 / n_elements}")
    index = {r[0]: i for i, r in enumerate(rows)}
    rec = {
        "status": "ok",
        "total_bytes": total,
        "source_bytes": src_bytes,
        "printed": printed,
        "n_retyped": sum(1 for r in rows if r[3] != r[1]),
        "fallbacks": [[index[f[0]], *f[1:]] for f in fallbacks],
        "overrides": [[index[o[0]], *o[1:]] for o in overrides],
        "requires_imatrix": imatrix_needed,
        "notes": notes,
    }
    return rec, rows


def run_model(m: dict[str, Any], imatrix: str, jobs: int) -> dict[str, Any]:
    info = g.read_gguf(m["path"])
    n_elements = 0
    for t in info["tensors"]:
        n = 1
        for d in t[2]:
            n *= d
        n_elements += n
    plan = run_plan()
    with ThreadPoolExecutor(max_workers=jobs) as ex:
        logs = dict(
            zip(
                plan, ex.map(lambda k: dry_run(m["path"], plan[k][0], plan[k][1], imatrix), plan), strict=True
            )
        )
    src_rows: list[list[Any]] | None = None
    runs: dict[str, Any] = {}
    run_types: dict[str, list[str]] = {}
    for key, (args, ftype) in plan.items():
        rc, log = logs[key]
        log = log.replace(m["path"], m["ref"]).replace(imatrix, "<imatrix>")  # no absolute paths
        rec, rows = parse_run(log, rc, src_rows, n_elements)
        if rows and src_rows is None:
            src_rows = [r[:3] for r in rows]
            version = g.llama_version_line(log)
        shown = [*args, m["ref"], ftype]
        rec = {"args": [*args, ftype], "command": " ".join(["$LLAMA_QUANTIZE", "--dry-run", *shown]), **rec}
        runs[key] = rec
        if rows:
            run_types[key] = [r[3] for r in rows]
    assert src_rows is not None
    # the printed shape has 4 dims; keep the file's own ne (e.g. ffn_gate_inp_shexp is [H, 1])
    gguf_rows = {t[0]: t for t in info["tensors"]}
    for row in src_rows:
        name, styp, ne4 = row
        ne = gguf_rows[name][2]
        assert gguf_rows[name][1] == styp and ne + [1] * (4 - len(ne)) == ne4, name
        row[2] = ne
    type_names = sorted({t for ts in run_types.values() for t in ts} | {r[1] for r in src_rows})
    tix = {t: i for i, t in enumerate(type_names)}
    for key, ts in run_types.items():
        runs[key]["types"] = [tix[t] for t in ts]
    env = g.llama_env()
    return {
        "model": m["model"],
        "kind": m["kind"],
        "llama_cpp": {"commit": env["LLAMA_CPP_COMMIT"], "llama_quantize_version": version},
        "command": f"$LLAMA_QUANTIZE --dry-run [args except the last] {m['ref']} [last arg]",
        "command_notes": "<imatrix> = a one-entry legacy imatrix file (a dry run only uses has_imatrix)",
        "source_gguf": {
            "how": m["how"],
            "checks": m["checks"],
            "file_size": info["file_size"],
            "data_offset": info["data_offset"],
            "alignment": info["alignment"],
            "n_kv": info["n_kv"],
            "n_tensors": info["n_tensors"],
            "n_elements": n_elements,
            "kv": info["kv"],
            "tensor_row": ["name", "source ggml type", "ne (ggml order)"],
            "tensor_order": "llama-quantize's (weight_name_comparer): non-blk, then by layer, then by name",
            "tensors": src_rows,
        },
        "type_names": type_names,
        "ggml_types": {t: g.ggml_type_info(t) for t in type_names},
        "ggml_types_format": ["ggml type id", "block size", "bytes per block"],
        "run_fields": {
            "types": "per tensor, index into type_names, aligned with source_gguf.tensors",
            "total_bytes": "sum of nrows * ggml_row_size(type, ne0); header/padding excluded",
            "fallbacks": "[tensor index, ncols, requested type, fallback type]",
            "overrides": "[tensor index, from, to] (--tensor-type)",
        },
        "runs": runs,
    }


# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--work", default="/tmp/qwenfit-llama-quantize")
    ap.add_argument("--models", default=",".join(FULL_MODELS), help="full-size catalog models")
    ap.add_argument("--reuse", action="store_true", help="reuse GGUFs already in --work")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args(argv)

    os.makedirs(args.work, exist_ok=True)
    imatrix = os.path.join(args.work, IMATRIX_NAME)
    write_imatrix(imatrix)

    print("generating source GGUFs ...", file=sys.stderr)
    models: list[dict[str, Any]] = []
    header_checks: dict[str, Any] = {}
    tm, tc = tiny_models(args.work)
    models += tm
    header_checks.update(tc)
    km, kc = make_kquant(args.work, args.reuse)
    models += km
    header_checks.update(kc)
    for name in [x for x in args.models.split(",") if x]:
        models.append(make_full_size(name, args.work, args.reuse))
        print(f"  {name}", file=sys.stderr)
        if name in NO_MTP_EXTRA:
            models.append(make_full_size(name, args.work, args.reuse, no_mtp=True))
    bad = {k: v for k, v in header_checks.items() if v}
    if bad:
        raise SystemExit(f"sparse path differs from the converter: {json.dumps(bad, indent=1)[:3000]}")

    os.makedirs(args.out, exist_ok=True)
    for f in os.listdir(args.out):
        if f.endswith(".json"):
            os.remove(os.path.join(args.out, f))
    index: dict[str, Any] = {"models": {}}
    for m in models:
        print(f"dry runs: {m['model']}", file=sys.stderr)
        res = run_model(m, imatrix, args.jobs)
        fname = f"{m['model']}.json"
        g.json_dump(res, os.path.join(args.out, fname))
        index["models"][m["model"]] = {
            "file": fname,
            "kind": m["kind"],
            "n_tensors": res["source_gguf"]["n_tensors"],
            "source_bytes": next(r["source_bytes"] for r in res["runs"].values() if r["status"] == "ok"),
            "header_bytes": res["source_gguf"]["data_offset"],
            "total_bytes": {k: r["total_bytes"] for k, r in res["runs"].items() if r["status"] == "ok"},
            "n_fallbacks": {k: len(r["fallbacks"]) for k, r in res["runs"].items() if r.get("fallbacks")},
            "refused": {k: r["error"] for k, r in res["runs"].items() if r["status"] != "ok"},
        }
    index["real_q8_0_vs_dry_run"] = real_vs_dry_run(args.out)
    env = g.llama_env()
    index.update(
        generator="scripts/llama_quantize_fixtures.py",
        llama_cpp={
            "commit": env["LLAMA_CPP_COMMIT"],
            "source": f"llama-cpp-python {env['LLAMA_CPP_VERSION']} sdist",
        },
        runs={k: v[0] + [v[1]] for k, v in run_plan().items()},
        header_checks={k: (v or "identical") for k, v in header_checks.items()},
    )
    g.json_dump(index, os.path.join(args.out, "INDEX.json"))
    print_summary(index)
    return 0


def real_vs_dry_run(out_dir: str) -> dict[str, str]:
    """The real llama-quantize Q8_0 files of tests/fixtures/gguf (MANIFEST.json) must have exactly the
    per-tensor types and bytes of the Q8_0 dry run of the same bf16 file."""
    with open(os.path.join(TINY_GGUF, "MANIFEST.json")) as f:
        manifest = json.load(f)["files"]
    res = {}
    for v in TINY_VARIANTS:
        with open(os.path.join(out_dir, f"tiny-{v}.json")) as f:
            m = json.load(f)
        names = [t[0] for t in m["source_gguf"]["tensors"]]
        dry = {n: m["type_names"][t] for n, t in zip(names, m["runs"]["Q8_0"]["types"], strict=True)}
        real = {t[0]: t[1] for t in manifest[f"{v}-Q8_0.gguf"]["tensors"]}
        real_bytes = sum(t[3] for t in manifest[f"{v}-Q8_0.gguf"]["tensors"])
        if dry != real or real_bytes != m["runs"]["Q8_0"]["total_bytes"]:
            raise SystemExit(f"{v}: real Q8_0 file differs from the Q8_0 dry run")
        res[f"tiny-{v}"] = f"identical types, {real_bytes} tensor bytes"
    return res


def print_summary(index: dict[str, Any]) -> None:
    full = [k for k, v in index["models"].items() if v["kind"] == "full-size"]
    small = [k for k, v in index["models"].items() if v["kind"] != "full-size"]
    runs = list(index["runs"])
    print("\nllama-quantize --dry-run totals (tensor bytes, GB = 1e9; '-' = refused)")
    w = 10
    print(
        f"{'run':38s}"
        + "".join(f"{k.replace('Qwen3.5-', '').replace('Qwen3-', '')[:w]:>{w + 1}s}" for k in full)
    )
    for r in runs:
        cells = []
        for k in full:
            t = index["models"][k]["total_bytes"].get(r)
            cells.append(f"{t / 1e9:>{w + 1}.3f}" if t is not None else f"{'-':>{w + 1}s}")
        print(f"{r:38s}" + "".join(cells))
    print("\nsmall models: fallbacks per run (Q4_K_M / Q8_0 / IQ2_XXS), refused runs")
    for k in small:
        v = index["models"][k]
        nf = v["n_fallbacks"]
        print(
            f"  {k:28s} tensors={v['n_tensors']:4d} fallbacks Q4_K_M={nf.get('Q4_K_M', 0)} "
            f"Q8_0={nf.get('Q8_0', 0)} IQ2_XXS={nf.get('IQ2_XXS', 0)} refused={sorted(v['refused'])}"
        )
    print("\nheader checks (sparse path vs converter on real checkpoints):", index["header_checks"])
    print("real Q8_0 files vs Q8_0 dry runs:", index["real_q8_0_vs_dry_run"])


if __name__ == "__main__":
    sys.exit(main())
