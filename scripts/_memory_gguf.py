"""Sparse full-size GGUF layouts for the llama.cpp memory fixtures (helper of llama_memory_fixtures.py).

Not a script. Runs in the fixtures venv (/work/venvs/fixtures: torch, transformers), like
scripts/_gguf_sparse.py, which it uses read-only.

Layouts (``variant`` names used in the fixtures):

* ``bf16-mtp``   -- convert_hf_to_gguf.py --outtype bf16 of the sparse checkpoint *with* the MTP
  block (``_gguf_sparse.write_sparse_checkpoint`` + ``convert_header_only``: the converter's own
  header, data section a sparse hole of the exact size). Qwen3-Next: the one MTP layer of the
  checkpoint (``_qwenfit.checkpoint_mtp_layers``).
* ``bf16-nomtp`` -- the same converted with ``--no-mtp`` (no ``blk.{n_layer}`` MTP tensors, no
  ``nextn_predict_layers`` key, ``block_count = num_hidden_layers``).
* ``q4km-mtp`` / ``q4km-nomtp`` -- the Q4_K_M layout of the BF16 file, written directly: the
  per-tensor types are those that the real ``llama-quantize --dry-run <bf16> Q4_K_M`` prints
  (its stderr is parsed), the KVs are copied in order with ``general.file_type = 15`` and
  ``general.quantization_version = 2`` re-set (llama-quant.cpp:1024-1026; gguf_set_val moves
  a key to the end), the tensors
  are in llama-quantize's order (weight_name_comparer, llama-model-loader.h:54-65: non-``blk``
  tensors first, then by layer, then by name) and the data section is again a sparse hole.
  ``check_against_real_quantize`` compares this layout with the file a real (non-dry) run of
  llama-quantize writes on the sparse BF16 input (done for Qwen3.5-0.8B only: the real run writes
  the quantized zeros, ~0.5 GB).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from typing import Any

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _gguf_common as g  # noqa: E402
import _gguf_sparse as sp  # noqa: E402

MODELS_DIR = os.path.join(g.REPO_ROOT, "data", "models")
Q4_K_M_FTYPE = 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M (include/llama.h)
_REQUANT_KEYS = ("general.architecture", "general.quantization_version", "general.file_type")

_TENSOR_RE = re.compile(
    r"^\[\s*(\d+)/\s*(\d+)\] (\S+)\s+- \[([\d,\s]+)\], type =\s*(\S+), size =\s*([\d.]+) MiB"
    r"(?: ->\s*([\d.]+) MiB \((\S+)\))?"
)


def load_catalog(name: str) -> dict[str, Any]:
    import json

    with open(os.path.join(MODELS_DIR, f"{name}.json")) as f:
        return json.load(f)


def make_bf16(name: str, work: str, mtp: bool, reuse: bool) -> tuple[str, list[str]]:
    """Sparse BF16 layout of catalog model ``name``; returns (path, converter command as recorded)."""
    raw = load_catalog(name)
    family = g.FAMILY[raw["model_type"]]
    n_mtp = sp.mtp_layer_count(raw)
    variant = "bf16-mtp" if mtp else "bf16-nomtp"
    out = os.path.join(work, f"{name}.{variant}.gguf")
    extra = sp.converter_extra(raw, n_mtp) if mtp else ["--no-mtp"]
    cmd = g.converter_command(f"<work>/ckpt/{name}", f"<work>/{name}.{variant}.gguf", g.PRE_TOKENIZER[family],
                              extra, True)  # fmt: skip
    if reuse and os.path.exists(out):
        return out, cmd
    ckpt = os.path.join(work, "ckpt", name)  # directory name -> general.name
    if os.path.exists(ckpt):
        shutil.rmtree(ckpt)
    sp.write_sparse_checkpoint(raw, ckpt, n_mtp)
    tmp = out + ".tmp"
    sp.convert_header_only(ckpt, tmp, family, extra)
    os.replace(tmp, out)
    shutil.rmtree(ckpt)
    return out, cmd


def quantize_dry_run_types(src: str, ftype: str = "Q4_K_M") -> dict[str, str]:
    """{tensor name: ggml type name} chosen by ``llama-quantize --dry-run SRC FTYPE``."""
    env = g.llama_env()
    r = subprocess.run([env["LLAMA_QUANTIZE"], "--dry-run", src, ftype], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"llama-quantize --dry-run failed:\n{r.stderr[-3000:]}")
    types: dict[str, str] = {}
    for line in r.stderr.splitlines():
        # a fallback warning may be printed in the middle of a tensor line: keep the tail
        m = _TENSOR_RE.search(line[line.find("[") :] if "[" in line else line)
        if m:
            types[m.group(3)] = m.group(8) or m.group(5)
    return types


def _comparer_key(name: str) -> tuple[int, int, str]:
    """weight_name_comparer (llama-model-loader.h:54-65): non-blk first, then layer, then name."""
    m = re.match(r"^blk\.(\d+)\.", name)
    return (1, int(m.group(1)), name) if m else (0, -1, name)


def write_quantized_layout(src: str, dst: str, types: dict[str, str], ftype: int = Q4_K_M_FTYPE) -> None:
    """Header of SRC with the given per-tensor types, tensors in llama-quantize's order, data a hole."""
    import numpy as np

    gguf = g.gguf_module()
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    tmp = dst + ".tmp"
    w = gguf.GGUFWriter(tmp, arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in _REQUANT_KEYS:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    # gguf_set_val_u32 on an existing key removes it and appends it: these two end up last
    w.add_uint32("general.quantization_version", 2)
    w.add_uint32("general.file_type", ftype)
    by_name = {g.ggml_type_name(t): t for t in gguf.GGMLQuantizationType}
    for t in sorted(reader.tensors, key=lambda t: _comparer_key(t.name)):
        tname = types.get(t.name, g.ggml_type_name(t.tensor_type))
        ne = [int(x) for x in t.shape]
        nbytes = g.tensor_nbytes(tname, ne)
        w.add_tensor_info(t.name, list(reversed(ne)), np.float32, nbytes, raw_dtype=by_name[tname])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    assert w.fout is not None
    fout = w.fout[0]
    w.write_padding(fout, fout.tell())
    data = sum(w.ggml_pad(ti.nbytes, w.data_alignment) for ti in w.tensors[0].values())
    fout.flush()
    fout.truncate(fout.tell() + data)
    w.close()
    os.replace(tmp, dst)


def make_q4km(bf16_path: str, dst: str, reuse: bool) -> tuple[str, list[str]]:
    cmd = ["$LLAMA_QUANTIZE", "--dry-run", f"<work>/{os.path.basename(bf16_path)}", "Q4_K_M",
           "-> per-tensor types written into a copy of the header (scripts/_memory_gguf.py)"]  # fmt: skip
    if not (reuse and os.path.exists(dst)):
        write_quantized_layout(bf16_path, dst, quantize_dry_run_types(bf16_path))
    return dst, cmd


def header_digest(path: str) -> dict[str, Any]:
    """KVs and tensor rows (name, type, ne, nbytes, offset) of a GGUF, for layout comparisons."""
    info = g.read_gguf(path)
    return {k: info[k] for k in ("n_kv", "n_tensors", "data_offset", "file_size", "kv", "tensors")}


def check_against_real_quantize(bf16_path: str, layout_path: str, scratch: str) -> dict[str, Any]:
    """Run the real llama-quantize (writes data) and compare its header with our direct layout."""
    env = g.llama_env()
    real = os.path.join(scratch, "real-quantize-Q4_K_M.gguf")
    r = subprocess.run([env["LLAMA_QUANTIZE"], bf16_path, real, "Q4_K_M"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"llama-quantize failed:\n{r.stderr[-3000:]}")
    a, b = header_digest(real), header_digest(layout_path)
    os.remove(real)
    diffs = []
    for k in ("n_kv", "n_tensors", "data_offset", "file_size"):
        if a[k] != b[k]:
            diffs.append(f"{k}: real {a[k]} vs layout {b[k]}")
    if list(a["kv"]) != list(b["kv"]):
        diffs.append("KV order differs")
    for k in sorted(set(a["kv"]) | set(b["kv"])):
        if a["kv"].get(k) != b["kv"].get(k):
            diffs.append(f"kv {k}: real {a['kv'].get(k)!r} vs layout {b['kv'].get(k)!r}")
    if a["tensors"] != b["tensors"]:
        diffs.append("tensor rows (name, type, ne, nbytes, offset) differ")
    cmd = ["$LLAMA_QUANTIZE", "<work>/" + os.path.basename(bf16_path), "<scratch>/real.gguf", "Q4_K_M"]
    return {"identical_header_and_size": not diffs, "diffs": diffs[:20], "command": cmd}
