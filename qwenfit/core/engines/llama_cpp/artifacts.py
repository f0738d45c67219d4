"""Which GGUF a llama.cpp-family launch loads, and the steps that make one when none is published.

A published file (:func:`qwenfit.core.artifacts.gguf_choice`) is loaded the way each front end
downloads from the Hub: llama-server's ``-hf <repo>:<QUANT>`` (common/download.cpp
``find_best_model``: the first file whose name holds ``<QUANT>.`` or ``<QUANT>-``, split sets from
their first part, the mmproj beside it unless ``--no-mmproj``), Ollama's ``hf.co/<repo>:<QUANT>``
(one file only: a split set is merged first), LM Studio's ``lms get <url>@<QUANT>``, llama-cpp-python's
``--hf_model_repo_id``. The user's own file is loaded by path. Otherwise the make steps convert the
official checkpoint with llama.cpp's ``convert_hf_to_gguf.py`` (BF16, MTP layer included) and
``llama-quantize`` it; the types that need an importance matrix get a ``llama-imatrix`` step.
"""

from __future__ import annotations

from dataclasses import dataclass

from qwenfit.core.artifacts import ModelSource, PublishedFile, PublishedRepo, gguf_choice, repo_choice
from qwenfit.core.engines.base import Artifact, Deployment

__all__ = [
    "IMATRIX_TYPES",
    "GgufPick",
    "gguf_pick",
    "llama_server_artifact",
    "made_gguf_lines",
    "pick_artifact",
]

# llama-quantize refuses these without --imatrix (src/llama-quant.cpp: IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS,
# IQ2_S; Q2_K_S when not pure)
IMATRIX_TYPES = frozenset({"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "Q2_K_S"})


@dataclass(frozen=True, slots=True)
class GgufPick:
    """A GGUF to load: published (``repo`` + ``file``), the user's own (``path``), or made (``make``
    lines write ``path``; ``origin`` is the checkpoint they start from)."""

    quant: str
    repo: PublishedRepo | None = None
    file: PublishedFile | None = None
    path: str | None = None
    make: tuple[str, ...] = ()
    origin: str | None = None
    mmproj: str | None = None  # the projector file to pass with -m (local or made), when vision is on
    note: str = ""
    stored: bool = False  # the files the model was read from (weights as stored)

    @property
    def published(self) -> bool:
        return self.file is not None


def made_gguf_lines(
    source: ModelSource, quant: str, *, vision: bool
) -> tuple[tuple[str, ...], str, str, str]:
    """(make lines, output file, mmproj file, origin repo) for a GGUF of ``quant`` made from the
    official checkpoint."""
    base = repo_choice(source.published, "bf16", "safetensors-repo")
    origin = base.id if base is not None else (source.repo_id or source.name)
    name = source.name
    folder, bf16 = name, f"{name}-BF16.gguf"
    out = bf16 if quant.upper() == "BF16" else f"{name}-{quant.upper()}.gguf"
    lines = [f"hf download {origin} --local-dir {folder}",
             f"python llama.cpp/convert_hf_to_gguf.py {folder} --outtype bf16 --outfile {bf16}"]  # fmt: skip
    if quant.upper() != "BF16":
        if quant.upper() in IMATRIX_TYPES:
            lines.append(f"llama-imatrix -m {bf16} -f calibration.txt -o imatrix.gguf  # calibration.txt: "
                         "representative text (llama-quantize needs an importance matrix)")  # fmt: skip
            lines.append(f"llama-quantize --imatrix imatrix.gguf {bf16} {out} {quant.upper()}")
        else:
            lines.append(f"llama-quantize {bf16} {out} {quant.upper()}")
    mmproj = f"mmproj-{name}-F16.gguf"
    if vision:
        lines.append(
            f"python llama.cpp/convert_hf_to_gguf.py {folder} --mmproj --outtype f16 --outfile {mmproj}"
        )
    return tuple(lines), out, mmproj, origin


def gguf_pick(source: ModelSource, quant: str, d: Deployment) -> GgufPick:
    """The GGUF a launch of ``quant`` loads (see the module docstring)."""
    if source.local:
        return GgufPick(quant, path=source.path, note="your file", stored=True)
    if source.file_format == "gguf" and source.repo_id:  # read from a Hub repo: load that very file
        repo_id, _, tag = source.repo_id.partition(":")
        url = f"https://huggingface.co/{repo_id}"
        repo = PublishedRepo(id=repo_id, kind="gguf-repo", publisher=repo_id.split("/")[0], model=source.name,
                             format="gguf", quant=None, evidence="hub-listing", source=url)  # fmt: skip
        f = PublishedFile(name=source.files[0] if source.files else "", quant=tag or quant,
                          size_bytes=source.file_bytes, size_text=None, parts=source.files, sha256=None,
                          source=repo.source)  # fmt: skip
        return GgufPick(quant, repo=repo, file=f, note=f"{repo_id} as read", stored=True)
    chosen = gguf_choice(source.published, quant, mtp=d.mtp)
    if chosen is not None:
        repo, f = chosen
        return GgufPick(quant, repo=repo, file=f, note=f"published by {repo.publisher}")
    lines, out, mmproj, origin = made_gguf_lines(source, quant, vision=d.vision)
    why = f"no {quant.upper()} GGUF{' with the MTP layer' if d.mtp else ''} of {source.name} is published"
    return GgufPick(quant, path=f"./{out}", make=lines, origin=origin,
                    mmproj=f"./{mmproj}" if d.vision else None, note=why)  # fmt: skip


def pick_artifact(
    pick: GgufPick, ref: str, *, make: tuple[str, ...] = (), why: str = "", tag: str | None = None
) -> Artifact:
    """The :class:`Artifact` of ``pick`` loaded as ``ref``; ``make``: steps the front end needs
    first (``why`` says what they do)."""
    lines: list[str] = []
    if pick.make:
        lines += [f"# {pick.note}: make it", *pick.make]
    if make:
        lines += [f"# {why}", *make] if why else list(make)
    return Artifact(
        ref=ref,
        make="".join(f"{line}\n" for line in lines),
        tag=tag,
        repo=pick.repo.id if pick.repo else pick.origin,
        file=pick.file.name if pick.file else pick.path,
        quant=pick.file.quant if pick.file else pick.quant,
        published=pick.published,
        local=pick.path is not None and not pick.make,
        stored=pick.stored,
        size_bytes=pick.file.size_bytes if pick.file else None,
        published_file=pick.file,
        note=pick.note,
        needs="a calibration text for the importance matrix"
        if pick.make and pick.quant.upper() in IMATRIX_TYPES
        else "",
    )


def llama_server_artifact(source: ModelSource, quant: str, d: Deployment) -> Artifact:
    """llama-server: ``-hf repo:QUANT`` (``--no-mmproj`` unless vision) or ``-m FILE``."""
    pick = gguf_pick(source, quant, d)
    if pick.file is not None and pick.repo is not None:
        ref = f"-hf {pick.repo.id}:{pick.file.quant}" + ("" if d.vision else " --no-mmproj")
    else:
        ref = f"-m {pick.path}" + (f" --mmproj {pick.mmproj}" if d.vision and pick.mmproj else "")
    return pick_artifact(pick, ref)
