"""What a launch command loads, read back from its text: every Hub repo it names (with the quant tag),
every local path it loads and every path its make steps write — so a command can be checked against
the published-artifact catalog (``tests/test_artifacts.py``, ``benchmarks/artifacts_coverage.py``).

The forms are those qwenfit's engines print: llama-server ``-hf REPO:QUANT`` / ``-m PATH``, Ollama
``FROM hf.co/REPO:QUANT`` / ``FROM ./PATH``, LM Studio ``lms get https://huggingface.co/REPO@QUANT``,
``lms import PATH --user-repo KEY`` and ``lms load KEY``, llama-cpp-python ``--hf_model_repo_id REPO
--model FILE`` / ``--model PATH``, ``vllm serve REF``, SGLang ``--model-path REF``, ``mlx_lm.server
--model REF``, transformers ``pipeline('text-generation', 'REF')``; make steps ``hf download REPO``,
``--outfile``, ``llama-quantize IN OUT TYPE``, ``llama-gguf-split --merge IN OUT``, ``--mlx-path``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

__all__ = ["Loads", "read_command"]


@dataclass
class Loads:
    """What one command names: ``hub`` (repo, quant tag or None, file or None) it loads or downloads,
    ``paths`` it loads, ``made`` paths its steps write, ``keys`` front-end keys it loads (LM Studio)
    and ``key_sources`` where those keys come from."""

    hub: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    made: list[str] = field(default_factory=list)
    made_prefixes: list[str] = field(default_factory=list)  # downloads of a glob (--include "Q4_K_M/*")
    keys: list[str] = field(default_factory=list)
    key_sources: dict[str, str] = field(default_factory=dict)


def _norm(path: str) -> str:
    return path.removeprefix("./").rstrip("/")


def read_command(command: str) -> Loads:
    """Parse ``command`` (one or more lines; ``#`` comments skipped)."""
    out = Loads()
    for raw in command.splitlines():
        line = raw.split("  #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("python -c "):
            m = re.search(r"pipeline\('text-generation', '([^']+)'", line)
            if m:
                _ref(out, m.group(1))
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        _words(out, words)
    return out


def _ref(out: Loads, ref: str) -> None:
    """A model argument: a local path (./x, /x, x.gguf) or a Hub repo id."""
    if ref.startswith(("./", "/")) or ref.endswith(".gguf") or "/" not in ref:
        out.paths.append(_norm(ref))
    else:
        out.hub.append((ref, None, None))


def _after(words: list[str], flag: str) -> str | None:
    return words[words.index(flag) + 1] if flag in words and words.index(flag) + 1 < len(words) else None


def _words(out: Loads, w: list[str]) -> None:
    cmd = w[0]
    if cmd == "hf" and w[1:2] == ["download"]:
        out.hub.append((w[2], None, None))
        target = _after(w, "--local-dir")
        include = _after(w, "--include")
        files = [x for x in w[3:] if not x.startswith("-") and x not in (target, include)]
        if include and target:
            stem = include.rstrip("*")
            out.made_prefixes.append(_norm(stem if target == "." else f"{target}/{stem}"))
        for f in files:
            out.made.append(_norm(f))
        if target and target != ".":
            out.made.append(_norm(target))
        return
    if cmd in ("python", "python3") and len(w) > 1 and w[1].endswith("convert_hf_to_gguf.py"):
        out.paths.append(_norm(w[2]))
        out.made.append(_norm(_after(w, "--outfile") or ""))
        return
    if cmd == "llama-quantize":
        rest = [x for x in w[1:] if not x.startswith("--")]
        if "--imatrix" in w:
            rest.remove(_after(w, "--imatrix") or "")
        out.paths.append(_norm(rest[0]))
        out.made.append(_norm(rest[1]))
        return
    if cmd == "llama-imatrix":
        out.paths.append(_norm(_after(w, "-m") or ""))
        out.made.append(_norm(_after(w, "-o") or ""))
        return
    if cmd == "llama-gguf-split":
        out.paths.append(_norm(w[-2]))
        out.made.append(_norm(w[-1]))
        return
    if cmd == "mlx_lm.convert":
        out.hub.append((_after(w, "--hf-path") or "", None, None))
        out.made.append(_norm(_after(w, "--mlx-path") or ""))
        return
    if cmd == "llama-server":
        hf = _after(w, "-hf")
        if hf:
            repo, _, tag = hf.partition(":")
            out.hub.append((repo, tag or None, None))
        path = _after(w, "-m")
        if path:
            out.paths.append(_norm(path))
        return
    if cmd == "FROM":
        ref = w[1]
        if ref.startswith("hf.co/"):
            repo, _, tag = ref.removeprefix("hf.co/").partition(":")
            out.hub.append((repo, tag or None, None))
        else:
            out.paths.append(_norm(ref))
        return
    if cmd == "lms":
        if w[1] == "get":
            url = w[2].removeprefix("https://huggingface.co/")
            repo, _, tag = url.partition("@")
            out.hub.append((repo, tag or None, None))
            owner, name = repo.split("/", 1)
            out.key_sources[f"{owner}/{name.removesuffix('-GGUF')}".lower()] = repo
        elif w[1] == "import":
            out.paths.append(_norm(w[2]))
            key = _after(w, "--user-repo")
            if key:
                out.key_sources[key] = w[2]
        elif w[1] == "load":
            out.keys.append(w[2])
        return
    if cmd in ("python", "python3") and "llama_cpp.server" in w:
        repo = _after(w, "--hf_model_repo_id")
        model = _after(w, "--model")
        if repo:
            out.hub.append((repo, None, model))
        elif model:
            out.paths.append(_norm(model))
        return
    if cmd == "vllm" and w[1:2] == ["serve"]:
        _ref(out, w[2])
        return
    if cmd in ("python", "python3") and "sglang.launch_server" in w:
        _ref(out, _after(w, "--model-path") or "")
        return
    if cmd == "mlx_lm.server":
        _ref(out, _after(w, "--model") or "")
        return
    # environment assignments, `ollama serve &`, `ollama create ... && ollama run ...`: nothing loaded
