#!/usr/bin/env python3
"""GGUF fixtures written by llama.cpp's own tools from the tiny transformers checkpoints.

What it produces (``tests/fixtures/gguf/``)
-------------------------------------------
For every tiny checkpoint in ``tests/fixtures/tiny/<variant>/`` (made by
scripts/make_tiny_checkpoints.py):

* ``<variant>.gguf``: llama.cpp's ``convert_hf_to_gguf.py --outtype bf16`` of the checkpoint,
  MTP layer included the way the converter does it by default. ``dense-untied-text`` has no MTP
  layer and its config no ``mtp_num_hidden_layers``, so it is converted with ``--no-mtp``
  (the converter asserts otherwise). ``next-mtp``'s config has no MTP key; the converter counts
  the ``mtp.layers.*`` in the checkpoint (one).
* ``mmproj-<variant>.gguf``: ``--mmproj`` for the variants with a vision tower (written with the
  same ``--outtype bf16``; the converter keeps norms, biases and patch/position embeddings F32).
* ``<variant>-Q8_0.gguf``: the real ``llama-quantize IN OUT Q8_0`` (not a dry run). The tiny
  dimensions are not multiples of 32 everywhere, so some tensors fall back (to F16); the
  fallbacks llama-quantize reported are listed in MANIFEST.json.
* ``split/moe-sharded-Q8_0-0000{1,2,3}-of-00003.gguf``: llama.cpp's ``llama-gguf-split --split
  --split-max-tensors 64`` of ``moe-sharded-Q8_0.gguf`` (the target is built in the same build
  directory if missing; it takes about a second).
* ``MANIFEST.json``: for every file the command that produced it (symbolic paths), the llama.cpp
  commit, size, sha256, GGUF version, data offset (= header size incl. padding), alignment, every
  KV (arrays longer than 16 only as type+length), ``general.file_type`` and the per-tensor list
  ``[name, ggml type, ne (ggml order), nbytes, offset in the data section]`` read with the
  vendored gguf-py ``GGUFReader``. For the text GGUFs also the model size llama.cpp itself
  computes when it loads the file (``qwenfit-memprobe``): checked to equal the non-MTP tensor
  bytes with every tensor padded to 32 bytes (the CPU buffer alignment; only the tiny 1-D
  tensors are not already multiples of 32).

How the tokenizer problem is solved
-----------------------------------
The tiny checkpoints have no tokenizer. Each one is copied to a temporary directory named like
the variant (the converter derives ``general.name`` from the directory name), and gets a tiny
byte-level BPE trained with the ``tokenizers`` library (same fixed text every time, so the same
vocabulary; fewer tokens than ``vocab_size``, so the converter pads with ``[PAD{i}]`` up to
``vocab_size``) plus a ``tokenizer_config.json``. The pre-tokenizer hash check is bypassed by
monkeypatching ``conversion.base.TextModel.get_vocab_base_pre`` to return "qwen35" (Qwen3.5) or
"qwen2" (Qwen3-Next, whose real tokenizer is Qwen2's); see scripts/_gguf_convert.py. For
``--mmproj`` a ``preprocessor_config.json`` with image_mean/image_std is added. No llama.cpp
file is edited.

How to run
----------
::

    scripts/build_llama_cpp.sh                      # once; llama.cpp from llama-cpp-python 0.3.36
    /work/venvs/fixtures/bin/python scripts/make_tiny_ggufs.py   # about 30 s

The venv is the one of scripts/requirements-fixtures.txt (torch CPU, transformers, tokenizers;
the converter imports torch and transformers). llama.cpp is located with
``scripts/build_llama_cpp.sh --print`` (converter, gguf-py, llama-quantize). Deterministic:
re-running with the same llama.cpp build and package versions rewrites identical files
(``--check`` converts everything twice and compares the sha256s).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _gguf_common as g  # noqa: E402

TINY = os.path.join(g.REPO_ROOT, "tests", "fixtures", "tiny")
OUT = os.path.join(g.REPO_ROOT, "tests", "fixtures", "gguf")
VARIANTS = ["dense-vision-mtp", "dense-untied-text", "moe-vision-mtp", "moe-sharded", "next-mtp"]
SPLIT_SOURCE = "moe-sharded-Q8_0.gguf"
SPLIT_MAX_TENSORS = 64

_FALLBACK_RE = re.compile(
    r"^warning: (\S+)\s+- ncols\s+(\d+) not divisible by\s+(\d+) \(required for type\s+(\S+)\) "
    r"(\(WARNING: must use F16 due to unusual shape\) )?-> falling back to\s+(\S+)$"
)


def prepare_checkpoint(variant: str, tmp: str) -> tuple[str, str, list[str], bool, dict[str, Any]]:
    """Temp copy named like the variant + tokenizer (+ preprocessor config).
    Returns (dir, pre-tokenizer name, extra converter args, has_vision, tokenizer info)."""
    dst = os.path.join(tmp, variant)
    pre, extra, has_vision, tok_info = g.prepare_checkpoint_copy(os.path.join(TINY, variant), dst)
    return dst, pre, extra, has_vision, tok_info


def quantize(src: str, dst: str, ftype: str) -> dict[str, Any]:
    env = g.llama_env()
    r = subprocess.run([env["LLAMA_QUANTIZE"], src, dst, ftype], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"llama-quantize failed:\n{r.stderr[-3000:]}")
    fallbacks, notes = [], []
    for line in r.stderr.splitlines():
        m = _FALLBACK_RE.match(line)
        if m:
            fallbacks.append([m.group(1), int(m.group(2)), m.group(4), m.group(6)])
        elif "WARNING" in line or line.startswith("llama_model_quantize_impl:"):
            notes.append(line.strip())
    return {"fallbacks": fallbacks, "log": notes, "version": g.llama_version_line(r.stderr)}


def describe(path: str, entry: dict[str, Any]) -> dict[str, Any]:
    info = g.read_gguf(path)
    entry.update(
        file_size=info["file_size"],
        sha256=g.sha256(path),
        gguf_version=info["gguf_version"],
        data_offset=info["data_offset"],
        alignment=info["alignment"],
        n_kv=info["n_kv"],
        n_tensors=info["n_tensors"],
        file_type=info["kv"].get("general.file_type"),
        architecture=info["kv"].get("general.architecture"),
        kv=info["kv"],
        tensors=info["tensors"],
        tensor_bytes=sum(t[3] for t in info["tensors"]),
    )
    return entry


def check_model_bytes(entry: dict[str, Any]) -> None:
    """llama.cpp's model size must be the non-MTP tensor bytes of the header, each tensor padded
    to 32 bytes (the CPU buffer's alignment; it matters only for the tiny 1-D tensors)."""
    entry["non_mtp_tensor_bytes"] = g.non_mtp_tensor_bytes(entry)
    want = entry["non_mtp_tensor_bytes_padded32"] = g.non_mtp_tensor_bytes(entry, 32)
    got = entry.get("llama_cpp_model_bytes")
    if got is not None and got != want:
        raise SystemExit(f"llama.cpp model bytes {got} != padded non-MTP tensor bytes {want}")


def build(out_dir: str, tmp: str, log=print) -> dict[str, Any]:
    env = g.llama_env()
    os.makedirs(out_dir, exist_ok=True)
    files: dict[str, Any] = {}
    tok_info: dict[str, Any] = {}
    version = "unknown"
    for variant in VARIANTS:
        ckpt, pre, extra, has_vision, tok_info = prepare_checkpoint(variant, tmp)
        ref = f"<tmp>/{variant}"
        text_name = f"{variant}.gguf"
        text_path = os.path.join(out_dir, text_name)
        warnings = g.run_converter(ckpt, text_path, pre, extra)
        files[text_name] = describe(
            text_path,
            {
                "kind": "converter bf16",
                "source": f"tests/fixtures/tiny/{variant} + tokenizer" + (" + --no-mtp" if extra else ""),
                "command": g.converter_command(ref, f"tests/fixtures/gguf/{text_name}", pre, extra),
                "converter_warnings": warnings,
                "llama_cpp_model_bytes": g.memprobe_model_bytes(text_path),
            },
        )
        check_model_bytes(files[text_name])
        log(f"  {text_name:34s} {os.path.getsize(text_path):>9,d} B  {' '.join(extra)}")
        if has_vision:
            mm_name = f"mmproj-{variant}.gguf"
            mm_path = os.path.join(out_dir, mm_name)
            mm_extra = ["--mmproj"]
            warnings = g.run_converter(ckpt, mm_path, pre, mm_extra)
            files[mm_name] = describe(
                mm_path,
                {
                    "kind": "converter mmproj bf16",
                    "source": f"tests/fixtures/tiny/{variant} + preprocessor_config.json",
                    "command": g.converter_command(ref, f"tests/fixtures/gguf/{mm_name}", pre, mm_extra),
                    "converter_warnings": warnings,
                },
            )
            log(f"  {mm_name:34s} {os.path.getsize(mm_path):>9,d} B")
        q_name = f"{variant}-Q8_0.gguf"
        q_path = os.path.join(out_dir, q_name)
        qres = quantize(text_path, q_path, "Q8_0")
        version = qres["version"]
        files[q_name] = describe(
            q_path,
            {
                "kind": "llama-quantize Q8_0",
                "source": text_name,
                "command": [
                    "$LLAMA_QUANTIZE",
                    f"tests/fixtures/gguf/{text_name}",
                    f"tests/fixtures/gguf/{q_name}",
                    "Q8_0",
                ],
                "quantize_fallbacks": qres["fallbacks"],
                "quantize_fallback_format": ["tensor", "ncols", "requested type", "fallback type"],
                "quantize_log": qres["log"],
                "llama_cpp_model_bytes": g.memprobe_model_bytes(q_path),
            },
        )
        check_model_bytes(files[q_name])
        log(f"  {q_name:34s} {os.path.getsize(q_path):>9,d} B  ({len(qres['fallbacks'])} fallbacks)")

    # gguf-split of one quantized file
    split_tool = g.ensure_gguf_split()
    split_dir = os.path.join(out_dir, "split")
    os.makedirs(split_dir, exist_ok=True)
    prefix = os.path.join(split_dir, SPLIT_SOURCE[: -len(".gguf")])
    r = subprocess.run(
        [
            split_tool,
            "--split",
            "--split-max-tensors",
            str(SPLIT_MAX_TENSORS),
            os.path.join(out_dir, SPLIT_SOURCE),
            prefix,
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise RuntimeError(f"llama-gguf-split failed:\n{r.stdout}\n{r.stderr}")
    parts = sorted(f for f in os.listdir(split_dir) if f.endswith(".gguf"))
    for part in parts:
        files[f"split/{part}"] = describe(
            os.path.join(split_dir, part),
            {
                "kind": "llama-gguf-split",
                "source": SPLIT_SOURCE,
                "command": [
                    "$LLAMA_BIN/llama-gguf-split",
                    "--split",
                    "--split-max-tensors",
                    str(SPLIT_MAX_TENSORS),
                    f"tests/fixtures/gguf/{SPLIT_SOURCE}",
                    f"tests/fixtures/gguf/split/{SPLIT_SOURCE[: -len('.gguf')]}",
                ],
            },
        )
        log(f"  split/{part:28s} {os.path.getsize(os.path.join(split_dir, part)):>9,d} B")

    used_types = sorted({t[1] for f in files.values() for t in f["tensors"]})
    return {
        "generator": "scripts/make_tiny_ggufs.py",
        "llama_cpp": {
            "commit": env["LLAMA_CPP_COMMIT"],
            "source": f"llama-cpp-python {env['LLAMA_CPP_VERSION']} sdist (scripts/build_llama_cpp.sh)",
            "llama_quantize_version": version,
        },
        "versions": _versions(),
        "tokenizer": tok_info,
        "command_notes": (
            "python = the fixtures venv; scripts/_gguf_convert.py runs llama.cpp's "
            "convert_hf_to_gguf.py with get_vocab_base_pre patched to return --pre; "
            "<tmp>/<variant> = a copy of tests/fixtures/tiny/<variant> plus tokenizer.json, "
            "tokenizer_config.json (and preprocessor_config.json for vision variants); "
            "$LLAMA_QUANTIZE / $LLAMA_BIN from scripts/build_llama_cpp.sh --print"
        ),
        "tensor_row": [
            "name",
            "ggml_type",
            "ne (ggml order, ne0 first)",
            "nbytes",
            "offset from data_offset",
        ],
        "ggml_types": {t: g.ggml_type_info(t) for t in used_types},
        "ggml_types_format": ["ggml type id", "block size", "bytes per block"],
        "notes": [
            "data_offset is the header size: magic/version/counts + KVs + tensor infos, padded to alignment",
            "file_size = data_offset + sum(pad(nbytes, alignment)) (last tensor padded too)",
            "llama_cpp_model_bytes: qwenfit-memprobe -m FILE -c 256 -np 1 --no-repack, total model bytes "
            "(= non_mtp_tensor_bytes_padded32: every tensor padded to 32 B in the CPU buffer); "
            "llama.cpp skips the MTP tensors (load_mtp=false), so it is the non-MTP tensor bytes",
        ],
        "files": files,
    }


def _versions() -> dict[str, str]:
    import tokenizers
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=OUT, help="output directory (default tests/fixtures/gguf)")
    ap.add_argument("--check", action="store_true", help="build twice and compare every sha256")
    args = ap.parse_args(argv)

    if os.path.isdir(args.out):  # only our own products live here
        for name in os.listdir(args.out):
            p = os.path.join(args.out, name)
            if name.endswith(".gguf") or name == "MANIFEST.json":
                os.remove(p)
            elif name == "split":
                shutil.rmtree(p)
    with tempfile.TemporaryDirectory(prefix="qwenfit-gguf-") as tmp:
        manifest = build(args.out, tmp)
    g.json_dump(manifest, os.path.join(args.out, "MANIFEST.json"))

    if args.check:
        with tempfile.TemporaryDirectory(prefix="qwenfit-gguf-check-") as tmp2:
            again = build(os.path.join(tmp2, "out"), os.path.join(tmp2, "work_"), log=lambda *a: None)
        diff = [k for k in manifest["files"] if manifest["files"][k]["sha256"] != again["files"][k]["sha256"]]
        print("determinism check:", "OK, identical" if not diff else f"DIFFERENT: {diff}")
        if diff:
            return 1

    total = 0
    for root, _, fnames in os.walk(args.out):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in fnames)
    print(f"{len(manifest['files'])} GGUF files, {total:,d} bytes in {args.out} (MANIFEST.json included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
