"""Shared helpers for scripts/make_tiny_ggufs.py and scripts/llama_quantize_fixtures.py.

Not a script. Everything here runs in the fixtures venv (/work/venvs/fixtures: torch CPU,
transformers, tokenizers) and uses the llama.cpp tree and binaries that
``scripts/build_llama_cpp.sh`` built (located through ``build_llama_cpp.sh --print``; nothing
of llama.cpp is copied into the repository, and no llama.cpp file is edited).

* llama_env(): the KEY=VALUE paths of build_llama_cpp.sh --print, the llama.cpp commit and the
  bin/build directories.
* gguf_module(): the gguf-py package *vendored in that llama.cpp tree* (not the PyPI one), so the
  reader and GGML_QUANT_SIZES match the binaries.
* write_tokenizer(): a tiny byte-level BPE trained with the ``tokenizers`` library plus the
  tokenizer_config.json the converter's AutoTokenizer needs.
* run_converter(): convert_hf_to_gguf.py through scripts/_gguf_convert.py (pre-tokenizer check
  bypassed by a monkeypatch; optional header-only mode for sparse full-size files).
* read_gguf(): a GGUF header summary (KVs, per-tensor name/type/ne/nbytes/offset, data offset).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from functools import cache
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO_ROOT, "scripts")
BUILD_SCRIPT = os.path.join(SCRIPTS, "build_llama_cpp.sh")
CONVERT_DRIVER = os.path.join(SCRIPTS, "_gguf_convert.py")

# Pre-tokenizer name the converter must record. Qwen3.5 uses the "qwen35" pre-tokenizer
# (conversion/base.py get_vocab_base_pre: hash d30d75d9... -> "qwen35"); Qwen3-Next ships the Qwen2
# tokenizer, whose hash maps to "qwen2". Both are known to src/llama-vocab.cpp.
PRE_TOKENIZER = {"qwen3_5": "qwen35", "qwen3_5_moe": "qwen35", "qwen3_next": "qwen2"}
FAMILY = {
    "qwen3_5": "qwen3_5",
    "qwen3_5_text": "qwen3_5",
    "qwen3_5_moe": "qwen3_5_moe",
    "qwen3_5_moe_text": "qwen3_5_moe",
    "qwen3_next": "qwen3_next",
}


# ------------------------------------------------------------------------------------------------
# llama.cpp location
# ------------------------------------------------------------------------------------------------


@cache
def llama_env() -> dict[str, str]:
    """Paths printed by ``build_llama_cpp.sh --print`` (it must have been built), plus
    LLAMA_BIN, LLAMA_BUILD and LLAMA_CPP_COMMIT (full hash of the vendored llama.cpp tree)."""
    try:
        out = subprocess.run(
            ["bash", BUILD_SCRIPT, "--print"], check=True, capture_output=True, text=True
        ).stdout
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"llama.cpp is not built; run {BUILD_SCRIPT} first\n{e.stderr}") from e
    env = {}
    for line in out.splitlines():
        key, sep, val = line.partition("=")
        if sep and key.isupper():
            env[key] = val
    env["LLAMA_BIN"] = os.path.dirname(env["LLAMA_QUANTIZE"])
    env["LLAMA_BUILD"] = os.path.dirname(env["LLAMA_BIN"])
    env["LLAMA_CPP_COMMIT"] = _llama_commit(env["LLAMA_CPP_SRC"])
    return env


def _llama_commit(src: str) -> str:
    """HEAD of the llama.cpp submodule inside the sdist (.git is a 'gitdir:' file)."""
    dotgit = os.path.join(src, ".git")
    gitdir = dotgit
    if os.path.isfile(dotgit):
        with open(dotgit) as f:
            gitdir = os.path.normpath(os.path.join(src, f.read().split(":", 1)[1].strip()))
    try:
        with open(os.path.join(gitdir, "HEAD")) as f:
            head = f.read().strip()
    except OSError:
        return "unknown"
    if head.startswith("ref:"):
        with open(os.path.join(gitdir, head.split(None, 1)[1])) as f:
            head = f.read().strip()
    return head


def llama_version_line(stderr: str) -> str:
    """'version: 0.5.0-dev (build 1, commit 0c1e570)' from a llama.cpp tool's log."""
    for line in stderr.splitlines():
        if line.startswith("version:"):
            return line.strip()
    return "unknown"


def ensure_gguf_split() -> str:
    """Build llama.cpp's llama-gguf-split target in the same build dir if missing (a ~1 s build
    once libllama/ggml exist; build_llama_cpp.sh configures with LLAMA_BUILD_TOOLS=ON)."""
    env = llama_env()
    path = os.path.join(env["LLAMA_BIN"], "llama-gguf-split")
    if not os.access(path, os.X_OK):
        subprocess.run(
            ["cmake", "--build", env["LLAMA_BUILD"], "--config", "Release", "--target", "llama-gguf-split"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return path


@cache
def gguf_module():
    """The gguf-py package vendored in the llama.cpp tree that the binaries were built from."""
    path = llama_env()["LLAMA_GGUF_PY"]
    if path not in sys.path:
        sys.path.insert(0, path)
    import gguf

    if not os.path.abspath(gguf.__file__).startswith(os.path.abspath(path)):
        raise SystemExit(f"imported gguf from {gguf.__file__}, expected the copy in {path}")
    return gguf


# ------------------------------------------------------------------------------------------------
# ggml type names / sizes
# ------------------------------------------------------------------------------------------------


def ggml_type_name(qtype) -> str:
    """ggml_type_name() spelling (what llama.cpp prints): f32, bf16, q8_0, q4_K, iq2_xxs, mxfp4."""
    name = qtype.name.lower()
    if name.endswith("_k"):
        name = name[:-2] + "_K"
    return name


@cache
def ggml_types_by_name() -> dict[str, Any]:
    gguf = gguf_module()
    return {ggml_type_name(t): t for t in gguf.GGMLQuantizationType}


def ggml_type_info(name: str) -> list[int]:
    """[type id, block size, bytes per block] from the vendored gguf-py GGML_QUANT_SIZES."""
    gguf = gguf_module()
    t = ggml_types_by_name()[name]
    blck, size = gguf.GGML_QUANT_SIZES[t]
    return [int(t), blck, size]


def tensor_nbytes(type_name: str, ne: list[int]) -> int:
    """nrows * ggml_row_size(type, ne0) — llama-quantize's new size (llama-quant.cpp) and, for a
    contiguous tensor, ggml_nbytes. Raises if ne0 is not a multiple of the block size."""
    _, blck, size = ggml_type_info(type_name)
    if ne[0] % blck:
        raise ValueError(f"ne0={ne[0]} not a multiple of the {type_name} block size {blck}")
    nrows = 1
    for d in ne[1:]:
        nrows *= d
    return nrows * (ne[0] // blck) * size


# ------------------------------------------------------------------------------------------------
# Tokenizer for the converter
# ------------------------------------------------------------------------------------------------

# Fixed training text: the result (vocab, merges) is deterministic. It contains a newline so the
# byte-level vocabulary has "Ċ" (llama.cpp warns "missing newline token" otherwise).
_CORPUS = [
    "The quick brown fox jumps over the lazy dog.\n",
    "Qwen3.5 is a hybrid model: Gated DeltaNet linear attention layers, one full attention layer\n"
    "in four, a mixture of experts with a shared expert, and a multi-token prediction layer.\n",
    "llama.cpp quantizes tensors to q8_0, q6_K, q5_K, q4_K, iq4_xs and friends; 0123456789.\n",
]
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TOKENIZER_TARGET_VOCAB = 200  # < every config vocab_size here, so the converter pads with [PAD{i}]


@cache
def tokenizer_json() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_TARGET_VOCAB, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    return tok.to_str()


def write_tokenizer(model_dir: str, with_bos: bool) -> dict[str, Any]:
    """tokenizer.json + tokenizer_config.json for AutoTokenizer (the converter's get_vocab_base).

    with_bos: also declare bos_token (=<|endoftext|>, id 0). Qwen3-Next's config.json has
    bos_token_id 151643, which gguf.SpecialVocab would otherwise copy into the GGUF although it is
    out of range for a tiny vocabulary (llama.cpp then warns "bad special token")."""
    tj = tokenizer_json()
    with open(os.path.join(model_dir, "tokenizer.json"), "w") as f:
        f.write(tj)
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|endoftext|>" if with_bos else None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "add_bos_token": False,
        "model_max_length": 262144,
    }
    with open(os.path.join(model_dir, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    d = json.loads(tj)
    return {
        "kind": "byte-level BPE trained with the tokenizers library on a fixed 3-line text",
        "trained_vocab": len(d["model"]["vocab"]),
        "merges": len(d["model"]["merges"]),
        "special_tokens": SPECIAL_TOKENS,
        "tokenizer_config": cfg,
    }


def write_preprocessor_config(model_dir: str) -> None:
    """--mmproj reads image_mean/image_std from preprocessor_config.json (conversion/base.py)."""
    cfg = {
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "merge_size": 2,
        "patch_size": 16,
        "temporal_patch_size": 2,
    }
    with open(os.path.join(model_dir, "preprocessor_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)


def prepare_checkpoint_copy(src: str, dst: str) -> tuple[str, list[str], bool, dict[str, Any]]:
    """Copy a checkpoint directory to dst (named like the model: the converter derives
    general.name from it) and add what the converter needs: tokenizer files, and
    preprocessor_config.json when there is a vision tower.

    Returns (pre-tokenizer name, extra converter args, has_vision, tokenizer info). The extra
    args are ``--no-mtp`` for a Qwen3.5 config without ``mtp_num_hidden_layers`` (the converter's
    _QwenMtpMixin asserts a non-zero MTP layer count otherwise)."""
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("expected.json"))
    with open(os.path.join(dst, "config.json")) as f:
        cfg = json.load(f)
    text = cfg.get("text_config") or cfg
    family = FAMILY[cfg["model_type"]]
    tok_info = write_tokenizer(dst, with_bos="bos_token_id" in cfg)
    has_vision = "vision_config" in cfg
    if has_vision:
        write_preprocessor_config(dst)
    extra = ["--no-mtp"] if family != "qwen3_next" and not text.get("mtp_num_hidden_layers") else []
    return PRE_TOKENIZER[family], extra, has_vision, tok_info


# ------------------------------------------------------------------------------------------------
# Converter
# ------------------------------------------------------------------------------------------------


def run_converter(
    model_dir: str, outfile: str, pre: str, extra: list[str], header_only: bool = False
) -> list[str]:
    """convert_hf_to_gguf.py MODEL --outtype bf16 --outfile OUT EXTRA..., in a subprocess of
    this Python (the fixtures venv). Returns the converter's WARNING lines. Raises on failure."""
    env = llama_env()
    cmd = [sys.executable, CONVERT_DRIVER, "--pre", pre]
    if header_only:
        cmd.append("--header-only")
    cmd += ["--", model_dir, "--outtype", "bf16", "--outfile", outfile, *extra]
    penv = dict(os.environ, LLAMA_CPP_SRC=env["LLAMA_CPP_SRC"], PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run(cmd, capture_output=True, text=True, env=penv)
    log = r.stdout + r.stderr
    if r.returncode != 0 or not os.path.exists(outfile):
        raise RuntimeError(f"converter failed ({r.returncode}): {' '.join(cmd)}\n{log[-4000:]}")
    return sorted({ln.strip() for ln in log.splitlines() if ln.startswith("WARNING")})


def converter_command(model_ref: str, out_ref: str, pre: str, extra: list[str], header_only: bool = False):
    """The command as recorded in the fixtures (symbolic paths)."""
    cmd = ["python", "scripts/_gguf_convert.py", "--pre", pre]
    if header_only:
        cmd.append("--header-only")
    return [*cmd, "--", model_ref, "--outtype", "bf16", "--outfile", out_ref, *extra]


# ------------------------------------------------------------------------------------------------
# GGUF reading
# ------------------------------------------------------------------------------------------------


def _kv_summary(field, gguf) -> Any:
    vt = gguf.GGUFValueType
    if field.types[0] == vt.ARRAY:
        sub = vt(field.types[-1]).name.lower()
        n = len(field.data)
        if n <= 16 and field.types[-1] != vt.ARRAY:
            return {"array": sub, "len": n, "values": [_plain(field.contents(i)) for i in range(n)]}
        return {"array": sub, "len": n}
    return _plain(field.contents())


def _plain(v: Any) -> Any:
    if isinstance(v, float):
        return float(f"{v:.9g}")  # f32 values: stable text
    return v


def read_gguf(path: str) -> dict[str, Any]:
    """Header summary with gguf-py's GGUFReader. Tensor rows: [name, ggml type, ne, nbytes,
    offset relative to the data section]."""
    gguf = gguf_module()
    r = gguf.GGUFReader(path)
    kv: dict[str, Any] = {}
    for f in r.fields.values():
        if f.name.startswith("GGUF."):
            continue
        kv[f.name] = _kv_summary(f, gguf)
    tensors = []
    for t in r.tensors:
        ne = [int(x) for x in t.shape]  # GGUFReader.shape is in ggml order (ne0 first)
        tname = ggml_type_name(t.tensor_type)
        nb = int(t.n_bytes)
        assert nb == tensor_nbytes(tname, ne), (t.name, nb)
        tensors.append([t.name, tname, ne, nb, int(t.data_offset - r.data_offset)])
    align_f = r.fields.get("general.alignment")
    return {
        "file_size": os.path.getsize(path),
        "gguf_version": int(r.fields["GGUF.version"].contents()),
        "n_kv": len(kv),
        "n_tensors": len(tensors),
        "data_offset": int(r.data_offset),
        "alignment": int(align_f.contents()) if align_f else 32,
        "kv": kv,
        "tensors": tensors,
    }


def memprobe_model_bytes(path: str) -> int | None:
    """llama.cpp's own model size in bytes when it loads the file (qwenfit-memprobe of
    build_llama_cpp.sh, no_alloc: shapes are checked against the architecture, no data is read).
    llama.cpp does not load the MTP tensors by default, so this is the non-MTP tensor bytes."""
    import re

    probe = llama_env().get("QWENFIT_MEMPROBE")
    if not probe:
        return None
    cmd = [probe, "-m", path, "-c", "256", "-np", "1", "--no-repack"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"qwenfit_mem: total model=(\d+)", r.stdout)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"llama.cpp could not load {path}:\n{r.stderr[-2000:]}")
    return int(m.group(1))


def non_mtp_tensor_bytes(info: dict[str, Any], align: int = 1) -> int:
    """Sum of tensor bytes outside the MTP blocks (blk.N with N >= block_count - nextn layers),
    each padded to ``align`` (llama.cpp's CPU buffer pads every tensor to 32 bytes)."""
    kv = info["kv"]
    arch = kv["general.architecture"]
    n_all = kv[f"{arch}.block_count"]
    n_mtp = kv.get(f"{arch}.nextn_predict_layers", 0)
    total = 0
    for name, _, _, nbytes, _ in info["tensors"]:
        parts = name.split(".")
        if parts[0] == "blk" and int(parts[1]) >= n_all - n_mtp:
            continue
        total += -(-nbytes // align) * align
    return total


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def json_dump(obj: Any, path: str, compact_rows: bool = True) -> None:
    """Sorted, indented JSON, but every innermost list (tensor rows, shapes) on one line."""
    text = json.dumps(obj, indent=1, sort_keys=True)
    if compact_rows:
        text = _collapse_leaf_lists(text)
    with open(path, "w") as f:
        f.write(text + "\n")


def _collapse_leaf_lists(text: str) -> str:
    """Re-join onto one line every JSON list that holds no dict and at most one level of nested
    lists (a tensor row with its shape, a shape, a list of names): small, diffable files."""
    out: list[str] = []
    stack: list[list] = []  # [index of the '[' line in out, has_dict, nesting depth]
    for line in text.split("\n"):
        s = line.strip()
        if s.endswith("[") and not s.endswith("[]"):
            stack.append([len(out), False, 0])
            out.append(line)
            continue
        if s.endswith("{"):
            for entry in stack:
                entry[1] = True
        if s in ("]", "],") and stack:
            start, has_dict, depth = stack.pop()
            if stack:
                stack[-1][2] = max(stack[-1][2], depth + 1)
            if not has_dict and depth <= 1:
                items = [x.strip() for x in out[start + 1 :]]
                out[start:] = [out[start] + " ".join(items) + s]
                continue
        out.append(line)
    return "\n".join(out)
