"""data/artifacts/*.yaml (+ what ``qwenfit artifacts --refresh`` read from the Hub) -> PublishedRepo records.

One YAML per catalog model lists what is published for it (``data/artifacts/README.md`` explains every
field, the sources and how they were gathered). Each file is validated here: a malformed record is an
:class:`~qwenfit.errors.ArtifactDataError` naming the file and the record, never a wrong command.

A refresh (``qwenfit artifacts --refresh``, :mod:`qwenfit.loaders.refresh`) stores, per Hub repo, the
file listing with exact sizes and, for GGUFs, each file's tensor types read from its header with HTTP
range requests — one JSON per repo in :func:`refresh_dir`. Those records take precedence over the
shipped YAML for the repo they describe (its files, sizes and types); nothing else changes.

``data/artifacts.json`` is the validated YAML as plain records (``scripts/gen_artifacts_json.py``),
read at start-up when it was made from the current YAML files (their SHA-256 matches): a CLI check
then needs no YAML parser. YAML is imported inside the functions, so ``import qwenfit`` stays fast.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qwenfit.core.artifacts import ARTIFACT_KINDS, PublishedFile, PublishedRepo
from qwenfit.errors import ArtifactDataError
from qwenfit.loaders.stamps import files_sha256, verified

__all__ = [
    "clear_caches",
    "compiled_artifacts_json",
    "load_artifacts_file",
    "published",
    "published_for",
    "refresh_dir",
]

EVIDENCE = (
    "catalog-with-bytes", "catalog-with-size-string", "official-recipe", "official-recipe-link",
    "publisher-code", "publisher-doc", "hf-page", "hf-tree", "third-party-page", "issue", "discussion",
    "usage", "listing", "hub-listing",
)  # fmt: skip
# llama.cpp's split-file pattern (common/download.cpp get_gguf_split_info)
_SPLIT = re.compile(r"^(?P<prefix>.+)-(?P<i>[0-9]{5})-of-(?P<n>[0-9]{5})\.gguf$", re.IGNORECASE)
_FILE_TYPE = re.compile(r"^(?:UD-)?(?:I?Q[1-8]_[A-Z0-9_]+|BF16|F16|F32|MXFP4_MOE)$", re.IGNORECASE)


def refresh_dir() -> Path:
    """Where refreshed Hub records live: ``$QWENFIT_CACHE/artifacts`` (default
    ``~/.cache/qwenfit/artifacts``, or ``$XDG_CACHE_HOME/qwenfit/artifacts``)."""
    root = os.environ.get("QWENFIT_CACHE")
    if root:
        return Path(root).expanduser() / "artifacts"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "qwenfit" / "artifacts"


def _source(raw: Any) -> str:
    if not isinstance(raw, Mapping):
        return ""
    return str(raw.get("url") or raw.get("locator") or "")


def _need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise ArtifactDataError(f"{where}: {what}")


def _size(value: Any, where: str, key: str) -> int | None:
    if value is None:
        return None
    _need(isinstance(value, int) and not isinstance(value, bool) and value > 0, where,
          f"{key} must be a positive integer (bytes), got {value!r}")  # fmt: skip
    return int(value)


def _files(raw: Any, where: str) -> tuple[PublishedFile, ...]:
    """File entries -> one PublishedFile per file or split set (parts grouped by their prefix)."""
    if raw is None:
        return ()
    _need(isinstance(raw, list), where, "files must be a list")
    groups: dict[str, list[dict[str, Any]]] = {}
    for i, f in enumerate(raw):
        at = f"{where} files[{i}]"
        _need(isinstance(f, Mapping), at, "each file must be a mapping")
        name, quant = f.get("name"), f.get("quant")
        _need(isinstance(name, str) and bool(name), at, "name must be a file name")
        _need(isinstance(quant, str) and bool(quant), at, f"{name}: quant must be the publisher's quant name")
        _size(f.get("size_bytes"), f"{at} {name}", "size_bytes")
        _size(f.get("set_total_size_bytes"), f"{at} {name}", "set_total_size_bytes")
        m = _SPLIT.match(name.rsplit("/", 1)[-1])
        key = f"{name.rsplit('/', 1)[0]}/{m.group('prefix')}" if m and "/" in name else (
            m.group("prefix") if m else name)  # fmt: skip
        groups.setdefault(key, []).append(dict(f))
    out = []
    for members in groups.values():
        members.sort(key=lambda f: f["name"])
        first = members[0]
        m = _SPLIT.match(first["name"].rsplit("/", 1)[-1])
        n = int(m.group("n")) if m else 1
        where_f = f"{where} {first['name']}"
        if m:
            _need(int(m.group("i")) == 1, where_f, "a split set is listed without its first part")
        total = first.get("set_total_size_bytes")
        if total is None and len(members) == n and all(f.get("size_bytes") for f in members):
            total = sum(int(f["size_bytes"]) for f in members)
        elif total is None and n == 1:
            total = first.get("size_bytes")
        names = tuple(f["name"] for f in members)
        if m and len(members) < n:  # parts 2..n follow llama.cpp's naming
            prefix = first["name"][: -len("-00001-of-00000.gguf")]
            names = tuple(f"{prefix}-{i:05d}-of-{n:05d}.gguf" for i in range(1, n + 1))
        # a split set's tensors are spread over its parts: its types are every part's, or unknown
        typed = [f.get("tensor_types") for f in members]
        types = (
            {k: v for t in typed if isinstance(t, Mapping) for k, v in t.items()}
            if len(members) == n and all(isinstance(t, Mapping) for t in typed)
            else None
        )
        out.append(PublishedFile(
            name=first["name"],
            quant=str(first["quant"]).split(" ")[0],
            size_bytes=int(total) if total else None,
            size_text=first.get("size_as_published") or first.get("set_size_as_published"),
            parts=names,
            sha256=first.get("sha256") or first.get("sha256_part1"),
            source=_source(first.get("source")) or _source(first.get("set_total_source")),
            tensor_types=tuple(sorted(types.items())) if isinstance(types, Mapping) else None,
        ))  # fmt: skip
    return tuple(out)


def _repo(raw: Any, model: str, where: str) -> PublishedRepo:
    _need(isinstance(raw, Mapping), where, "each artifact must be a mapping")
    rid, kind = raw.get("id"), raw.get("kind")
    _need(isinstance(rid, str) and bool(rid), where, "id must be a repo id, ollama:<tag> or an LM Studio key")
    at = f"{where} ({rid})"
    _need(kind in ARTIFACT_KINDS, at, f"kind {kind!r}; valid: {', '.join(ARTIFACT_KINDS)}")
    evidence = raw.get("evidence")
    _need(evidence in EVIDENCE, at, f"evidence {evidence!r}; valid: {', '.join(EVIDENCE)}")
    if kind in ("gguf-repo", "safetensors-repo", "mlx-repo"):
        _need(re.match(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$", rid) is not None, at, "not a Hugging Face repo id")
    if kind == "ollama-tag":
        _need(rid.startswith("ollama:"), at, "an Ollama tag's id is ollama:<name>:<tag>")
    quant = raw.get("quant")
    if kind == "ollama-tag" and isinstance(quant, str):
        quant = quant.split(" ")[0]
        quant = quant if _FILE_TYPE.match(quant) else None
    elif kind in ("safetensors-repo", "mlx-repo"):
        _need("quant" in raw, at, "a whole-repo artifact needs quant: its qwenfit format name (or null)")
        if quant is not None:
            from qwenfit.core.formats.gpu import FORMATS

            _need(quant in FORMATS, at, f"quant {quant!r} is not a qwenfit format ({', '.join(FORMATS)})")
    else:
        quant = None
    files = _files(raw.get("files"), at)
    mtp = raw.get("mtp")
    if mtp is None:
        mtp = "-MTP-" in rid.upper() and kind == "gguf-repo"
    _need(isinstance(mtp, bool), at, "mtp must be true or false")
    base = kind in ("safetensors-repo", "mlx-repo") and rid.endswith("-Base")
    return PublishedRepo(
        id=rid,
        kind=kind,
        publisher=str(raw.get("publisher") or rid.split("/")[0]),
        model=model,
        format=str(raw.get("format") or ""),
        quant=None if base else quant,  # a -Base (pre-trained) checkpoint is not a build of the model
        evidence=evidence,
        source=_source(raw.get("source")),
        files=files,
        mtp=mtp,
        revision=raw.get("revision"),
        notes=str(raw.get("notes") or ""),
    )


def load_artifacts_file(path: str | os.PathLike[str]) -> tuple[str, tuple[PublishedRepo, ...]]:
    """One model's YAML -> (model name, its artifacts), validated."""
    import importlib

    yaml = importlib.import_module("yaml")  # untyped; imported on first use (import qwenfit stays fast)
    where = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as exc:
        raise ArtifactDataError(f"{where}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ArtifactDataError(f"{where}: not valid YAML ({exc})") from None
    _need(isinstance(data, Mapping), where, "expected a mapping with model and artifacts")
    model = data.get("model")
    _need(isinstance(model, str) and bool(model), where, "model must name a catalog model")
    arts = data.get("artifacts")
    _need(isinstance(arts, list), where, "artifacts must be a list")
    repos = tuple(_repo(a, model, f"{where} artifacts[{i}]") for i, a in enumerate(arts))
    seen: set[str] = set()
    for r in repos:
        _need(r.id not in seen, where, f"artifact {r.id} is listed twice")
        seen.add(r.id)
    return model, repos


def _refreshed(repo: PublishedRepo, record: Mapping[str, Any]) -> PublishedRepo:
    """``repo`` with the files a refresh read (exact sizes, sha256, GGUF tensor types)."""
    files = []
    for f in record.get("files") or []:
        name = str(f.get("name", ""))
        if (repo.kind == "gguf-repo" and not name.endswith(".gguf")) or not f.get("size_bytes"):
            continue  # not a GGUF, or an empty placeholder file
        quant = f.get("quant") or _quant_of(name)
        if quant is None:
            continue
        files.append({**f, "quant": quant, "source": {"url": f"https://huggingface.co/{repo.id}"}})
    return dataclasses.replace(
        repo,
        files=_files(files, f"{record.get('_path')}") if repo.kind == "gguf-repo" else repo.files,
        revision=record.get("revision") or repo.revision,
        evidence="hub-listing",
        source=f"https://huggingface.co/{repo.id} (listed {record.get('retrieved', '?')})",
    )


def _quant_of(name: str) -> str | None:
    """The quant tag of a GGUF file name as llama.cpp reads it (common/download.cpp): the last
    ``-``/``.``-separated field before ``.gguf`` and any split suffix; ``UD-`` kept."""
    stem = name.rsplit("/", 1)[-1]
    m = _SPLIT.match(stem)
    stem = m.group("prefix") if m else stem.removesuffix(".gguf")
    if "mmproj" in stem.lower():
        return "mmproj-" + stem.rsplit("-", 1)[-1]
    ud = re.search(r"(UD-[A-Z0-9_]+)$", stem, re.IGNORECASE)
    if ud:
        return ud.group(1)
    tag = re.search(r"[-.]([A-Z0-9_]+)$", stem, re.IGNORECASE)
    return tag.group(1) if tag and _FILE_TYPE.match(tag.group(1)) else None


def _refresh_records() -> dict[str, dict[str, Any]]:
    folder = refresh_dir()
    out: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ArtifactDataError(
                f"{path}: unreadable refresh record ({exc}); delete it or refresh again"
            ) from None
        _need(
            isinstance(record, dict) and isinstance(record.get("repo"), str), str(path), "no repo in record"
        )
        record["_path"] = str(path)
        out[record["repo"]] = record
    return out


def _yaml_files() -> list[Path]:
    from qwenfit.loaders.catalog import data_dir

    folder = data_dir() / "artifacts"
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def _from_yaml(paths: list[Path]) -> list[PublishedRepo]:
    return [r for path in paths for r in load_artifacts_file(path)[1]]


def compiled_artifacts_json() -> str:
    """``data/artifacts.json``: every YAML record validated, as plain records, with the YAMLs' SHA-256."""
    paths = _yaml_files()
    data = {
        "generated_by": "scripts/gen_artifacts_json.py from artifacts/*.yaml (do not edit)",
        "yaml_sha256": files_sha256(paths),
        "repos": [dataclasses.asdict(r) for r in _from_yaml(paths)],
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n"


def _from_json(record: dict[str, Any]) -> PublishedRepo:
    def one(f: dict[str, Any]) -> PublishedFile:
        types = f["tensor_types"]
        typed = None if types is None else tuple(map(tuple, types))
        return PublishedFile(**{**f, "parts": tuple(f["parts"]), "tensor_types": typed})

    files = tuple(one(f) for f in record["files"])
    return PublishedRepo(**{**record, "files": files})


@functools.lru_cache(maxsize=1)
def _shipped() -> tuple[dict[str, Any], ...] | None:
    """The records of ``data/artifacts.json`` when it holds the YAMLs as they are (else None: read them)."""
    from qwenfit.loaders.catalog import data_dir

    paths = _yaml_files()
    compiled = data_dir() / "artifacts.json"
    if paths and compiled.is_file():
        data = json.loads(compiled.read_text(encoding="utf-8"))
        expected = data.get("yaml_sha256")
        # the YAMLs are hashed only when edited since the last check that matched (a stat stamp)
        if isinstance(expected, str) and verified(compiled, expected, paths, lambda: files_sha256(paths)):
            return tuple(data["repos"]) or None
    return None


def _published(model: str | None) -> tuple[PublishedRepo, ...]:
    """The artifacts of ``model`` (None: of every model), refreshed records applied."""
    shipped = _shipped()
    if shipped is not None:  # only the records asked for become objects
        repos = [_from_json(r) for r in shipped if model is None or r["model"] == model]
    else:
        repos = [r for r in _from_yaml(_yaml_files()) if model is None or r.model == model]
    records = _refresh_records()
    return tuple(_refreshed(r, records[r.id]) if r.id in records else r for r in repos)


@functools.lru_cache(maxsize=1)
def published() -> tuple[PublishedRepo, ...]:
    """Every published artifact of every catalog model (shipped records, refreshed ones applied)."""
    return _published(None)


@functools.lru_cache(maxsize=64)
def published_for(model: str) -> tuple[PublishedRepo, ...]:
    """The artifacts of one catalog model (canonical name), in file order."""
    return _published(model)


def clear_caches() -> None:
    """Forget the records read so far (after a refresh, or QWENFIT_DATA_DIR changed)."""
    _shipped.cache_clear()
    published.cache_clear()
    published_for.cache_clear()
