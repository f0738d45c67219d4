"""Pre-flight for the command people actually run: ``check_command`` / ``check_commands``.

An engine's own launch command (``llama-server -m … -c 65536 -np 2``, ``vllm serve … -tp 2``, an
Ollama Modelfile, a llama-swap config, …) is read by :mod:`qwenfit.cmdline` the way that engine reads
it; its settings go through the same :func:`~qwenfit.api.resolve.prepare` and assembly as
:func:`qwenfit.estimate`, so the bytes are the same as ``estimate()`` of that deployment. When it
does not fit, the smallest edits to *this* command that fit (``-c 262144 → 98304``, ``--n-cpu-moe 8
→ 14``, ``--gpu-memory-utilization 0.9 → 0.93``) are searched, each rewritten in the command's own
spelling and re-checked by reading the rewritten command again (:mod:`qwenfit.api.command_fixes`).

Where the model comes from, in order: the file's header when ``-m PATH`` exists here; the artifact
catalog (``data/artifacts.json``) for ``-hf repo[:QUANT]`` and repo ids (the repo's own file of that
quantization); the catalog model a repo id or file name names. Each :class:`CommandCheck` says which
(``model_from``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qwenfit.api.memory import CheckResult, machine_of
from qwenfit.api.planning import plan_model
from qwenfit.api.resolve import Prepared, evaluate, prepare, with_speed
from qwenfit.core.expr import as_int
from qwenfit.core.hardware import Machine
from qwenfit.core.terms import Estimate
from qwenfit.errors import DoesNotFit, SettingError, UsageError

if TYPE_CHECKING:
    from qwenfit.api.command_fixes import CommandFix
    from qwenfit.cmdline.parsed import ParsedCommand
    from qwenfit.core.artifacts import PublishedRepo

__all__ = ["CommandCheck", "check_command", "check_commands", "check_parsed"]

# settings every engine shares (keywords of prepare); the rest are the engine's options
_COMMON = ("context", "sequences", "kv_cache", "mtp", "vision", "backend", "n_gpus")
# settings a reader keeps that no engine models: the flag that set them, for the refusal
_NOT_MODELLED = {
    "mem_fraction_static": "--mem-fraction-static (SGLang's static memory fraction)",
    "chunked_prefill": "--no-enable-chunked-prefill (vLLM without chunked prefill under a short context)",
    "speculative_tokens": "--speculative-num-draft-tokens / --speculative-num-steps (SGLang's MTP drafts)",
}


@dataclass(frozen=True, slots=True)
class CommandCheck:
    """The verdict on one engine launch of a command: what was read (``parsed``), where the model
    came from (``model_from``: "file header", "artifact catalog", "catalog", "file name", "repo
    name", "hub"), the check (``result``: estimate, machine, the command qwenfit would print, the
    nearest plans that fit) and, when it does not fit, ``fixes``: edits to this command that fit,
    smallest first, each re-checked."""

    parsed: ParsedCommand
    model: str
    quant: str | None
    model_from: str
    result: CheckResult
    fixes: tuple[CommandFix, ...]
    notes: tuple[str, ...]
    context: int = 0  # tokens per sequence, as checked
    sequences: int = 1

    @property
    def estimate(self) -> Estimate:
        return self.result.estimate

    @property
    def fits(self) -> bool:
        return bool(self.result.estimate.fits)

    @property
    def command(self) -> str:
        """The command as read (quoted as the shell would take it)."""
        return self.parsed.edited()


def _published_repo(repo_id: str) -> PublishedRepo | None:
    from qwenfit.loaders.artifacts import published

    low = repo_id.lower().removeprefix("hf.co/").removeprefix("huggingface.co/")
    return next((r for r in published() if r.id.lower() == low), None)


def resolve_model(
    pc: ParsedCommand, cwd: str | None
) -> tuple[str, str | None, str, PublishedRepo | None, str]:
    """(model for :func:`prepare`, quant, where it came from, the published repo to load from, a
    note saying so) of a parsed command."""
    from qwenfit.loaders.catalog import find

    model = str(pc.model)
    if pc.model_kind == "path":
        full = os.path.join(cwd or os.getcwd(), os.path.expanduser(model))
        if os.path.exists(full):
            what = "header" if os.path.isfile(full) else "config"
            return full, None, "file header", None, f"model: {model}, read from its {what}"
        raise UsageError(f"{model}: no such file here, and its name names no model qwenfit knows")
    if pc.model_kind in ("hf-repo", "ollama-tag"):
        rid = model if pc.model_kind == "hf-repo" else "ollama:" + model
        repo = _published_repo(rid)
        if repo is not None:
            model_name = repo.model
            # a GGUF repo: the tag names the file; a checkpoint repo: its own format, unless the
            # command quantizes it as it loads (vLLM --quantization fp8 on a BF16 repo)
            if repo.kind in ("gguf-repo", "ollama-tag"):
                quant = pc.quant
            else:
                quant = pc.quant if pc.raw.get("quantization") else repo.quant or pc.quant
            if repo.kind not in ("gguf-repo", "ollama-tag") and quant != repo.quant:
                repo = None
            if repo is not None and repo.kind == "gguf-repo" and pc.quant and repo.file(pc.quant) is None:
                return (repo.model, pc.quant, "artifact catalog", None,
                        f"model {repo.model} from the artifact catalog ({repo.id}); the catalog lists no "
                        f"{pc.quant} file in it, so the file is priced as qwenfit's {pc.quant}")  # fmt: skip
            note = f"model {model_name} {quant or ''} from the artifact catalog: {rid}"
            return model_name, quant, "artifact catalog", repo, note.replace("  ", " ")
        entry = find(model) if pc.model_kind == "hf-repo" else None
        if entry is not None:
            return entry.name, pc.quant, "catalog", None, f"model {entry.name}: {model} is its official repo"
        if pc.catalog:
            _quant_named(pc)
            return (pc.catalog, pc.quant, "repo name", None,
                    f"model {pc.catalog} {pc.quant or ''} from the name {model} (not in the artifact "
                    "catalog)".replace("  ", " "))  # fmt: skip
        return model, pc.quant, "hub", None, f"model: {model}, read from the Hugging Face Hub"
    if pc.catalog is None:
        raise UsageError(f"{model}: not a model qwenfit knows (its catalog holds the Qwen3.5 family)")
    _quant_named(pc)
    return pc.catalog, pc.quant, "file name", None, f"model {pc.catalog} {pc.quant or ''} from the file name"


def _quant_named(pc: ParsedCommand) -> None:
    """A checkpoint known only by its name must name its format: never a silent BF16."""
    from qwenfit.cmdline.models import safetensors_quant
    from qwenfit.core.engines.base import get

    if pc.quant is not None:
        return
    if get(pc.engine).weights_family == "gguf":
        if pc.model_kind == "file-name":
            raise UsageError(
                f"{pc.model}: the file is not here and its name names no quantization (Q4_K_M, "
                "UD-Q4_K_XL, ...): give the file's path, or a name with its type"
            )
        return
    key = (pc.catalog or str(pc.model)).lower()
    name = next((w for w in pc.argv if key in w.lower()), str(pc.model))
    _, word = safetensors_quant(name, pc.catalog)
    says = f"says {word!r} after the model" if word else "names no quantization"
    raise UsageError(
        f"{name}: the name {says}, which is not a format qwenfit reads, and the checkpoint is not here "
        "to read its config (give the checkpoint's directory, or a repo id the artifact catalog lists)"
    )


def split_settings(pc: ParsedCommand, engine_options: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(shared keywords, engine options) of a parsed command; a setting no engine models is refused
    naming the flag that set it."""
    from qwenfit.core.formats.names import QUANT_OPTIONS

    common = {k: v for k, v in pc.settings.items() if k in _COMMON}
    options = {k: v for k, v in pc.settings.items() if k not in _COMMON}
    refused = [_NOT_MODELLED.get(k, k) for k in options if k not in engine_options and k not in QUANT_OPTIONS]
    if refused:
        raise UsageError(
            f"{pc.tool}: these options change memory in ways qwenfit cannot model: " + "; ".join(refused)
        )
    return common, options


def _restricted(p: Prepared, repo: PublishedRepo) -> Prepared:
    """``p`` loading from the repo the command names (its own file of the quantization), not the
    catalog's first choice among publishers."""
    source = dataclasses.replace(p.source, published=(repo,))
    art = p.engine.artifact(source, p.quant, p.d)
    if art.repo is not None and art.repo != repo.id:
        return p
    w = p.engine.artifact_weights(p.spec, art, p.quant, mtp=p.d.mtp, vision=p.d.vision)
    inputs = p.engine.inputs(p.spec, w, p.d, p.o)
    return dataclasses.replace(
        p, source=source, artifact=art, weights_of=lambda: w, inputs=inputs, reads=None
    )


def prepare_parsed(
    pc: ParsedCommand, budget: Mapping[str, Any], cwd: str | None
) -> tuple[Prepared, str, str]:
    """The :class:`Prepared` deployment a parsed command runs, with where its model came from."""
    from qwenfit.core.engines.base import get

    model, quant, how, repo, note = resolve_model(pc, cwd)
    engine = get(pc.engine)
    common, options = split_settings(pc, tuple(engine.option_help()))
    p = prepare(
        model,
        quant,
        context=common.get("context"),
        engine=engine.name,
        kv_cache=common.get("kv_cache"),
        sequences=int(common.get("sequences", 1)),
        mtp=bool(common.get("mtp", False)),
        vision=bool(common.get("vision", False)),
        backend=common.get("backend"),
        n_gpus=common.get("n_gpus"),
        hardware=budget.get("hardware"),
        vram_gb=budget.get("vram_gb"),
        ram_gb=budget.get("ram_gb"),
        wired_limit_mb=budget.get("wired_limit_mb"),
        options=options,
    )
    if repo is not None:
        p = _restricted(p, repo)
    return p, how, note


def _result(p: Prepared, *, planned: bool) -> CheckResult:
    """What :func:`qwenfit.api.memory.check_result` gives, for a prepared deployment."""
    from qwenfit.core.fit.nearest import nearest
    from qwenfit.loaders.quants import quality_key

    e = with_speed(p, evaluate(p))
    if e.fits is None:
        raise SettingError("check_command needs a budget: hardware=, vram_gb= and/or ram_gb=")
    machine = machine_of(p)
    command = p.engine.command(p.artifact, p.d, p.o).render()
    alternatives: tuple[Any, ...] = ()
    if not e.fits and planned:
        pm = plan_model(p.spec, p.spec.name, p.source)
        alternatives = nearest(pm, p.engine, p.quant, p.inputs, p.d, p.o, p.target,
                               machine or Machine(name="?"), quality=quality_key,
                               user_options=p.engine_options, planned=machine is not None)  # fmt: skip
    return CheckResult(e, machine, command, alternatives, p.artifact)


def _fit_adjusts(pc: ParsedCommand) -> bool:
    """llama.cpp's --fit would adjust this command's placement itself (it leaves -ngl unset)."""
    raw = pc.raw
    return (
        pc.frame.kind == "llama"
        and raw.get("fit", True) is not False
        and "n_gpu_layers" not in raw
        and not raw.get("override_tensor")
        and "n_cpu_moe" not in raw
        and "cpu_moe" not in raw
    )


def check_parsed(
    pc: ParsedCommand,
    budget: Mapping[str, Any],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    fixes: bool = True,
) -> CommandCheck:
    """The verdict on one parsed launch against ``budget`` (``hardware``/``vram_gb``/``ram_gb``/
    ``wired_limit_mb``)."""
    p, how, note = prepare_parsed(pc, budget, cwd)
    result = _result(p, planned=fixes)
    found: tuple[CommandFix, ...] = ()
    if fixes and not result.fits:
        from qwenfit.api.command_fixes import command_fixes
        from qwenfit.cmdline import parse_command

        def recheck(text: str) -> Estimate | None:
            again = parse_command(text, env=env, cwd=cwd)
            return (
                check_parsed(again[0], budget, cwd=cwd, env=env, fixes=False).estimate
                if len(again) == 1
                else None
            )

        found = command_fixes(pc, p, recheck)
    notes = pc.notes if how == "file name" else (note, *pc.notes)  # the reader says it for a file name
    if not result.fits and _fit_adjusts(pc):
        notes = (*notes, "llama.cpp's --fit (on by default) adjusts the options this command leaves unset "
                 "(-ngl; -c when not given) to fit device memory, so it would start with layers moved off "
                 "the GPU; the offload edit says how many, explicitly")  # fmt: skip
    return CommandCheck(pc, str(p.spec.name), p.quant, how, result, found, notes,
                        as_int(p.d.context), as_int(p.d.sequences))  # fmt: skip


def check_commands(
    cmd: str | Sequence[str],
    *,
    hardware: str | Machine | None = None,
    vram_gb: float | None = None,
    ram_gb: float | None = None,
    wired_limit_mb: int | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    fixes: bool = True,
) -> list[CommandCheck]:
    """Every engine launch in ``cmd`` (an argv, a shell command or script, a Modelfile, a llama-swap
    config, a compose file), each checked against the budget: one :class:`CommandCheck` per launch,
    never raising for a misfit. ``env`` is the environment the command starts in (``LLAMA_ARG_*``,
    ``OLLAMA_*``, ``CUDA_VISIBLE_DEVICES``), ``cwd`` where its relative paths are looked up.
    Raises :class:`~qwenfit.errors.UsageError` for a command that cannot be read or that sets memory
    in ways qwenfit does not model (naming the options)."""
    from qwenfit.cmdline import parse_command

    if hardware is None and vram_gb is None and ram_gb is None:
        raise SettingError("check_command needs a budget: hardware=, vram_gb= and/or ram_gb=")
    budget = {"hardware": hardware, "vram_gb": vram_gb, "ram_gb": ram_gb, "wired_limit_mb": wired_limit_mb}
    parsed = parse_command(cmd, env=env, cwd=cwd)
    return [check_parsed(pc, budget, cwd=cwd, env=env, fixes=fixes) for pc in parsed]


def check_command(
    cmd: str | Sequence[str],
    *,
    hardware: str | Machine | None = None,
    vram_gb: float | None = None,
    ram_gb: float | None = None,
    wired_limit_mb: int | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Estimate:
    """Pre-flight of an engine's own launch command: the :class:`~qwenfit.Estimate` if it fits, else
    :class:`~qwenfit.DoesNotFit` whose ``alternatives`` are edits to this command that fit (smallest
    first; ``.command`` of each is the rewritten command line, ``.estimate`` its re-checked
    estimate). ``cmd`` is an argv or a command line (``"llama-server -m Qwen3.5-9B-Q4_K_M.gguf -c
    32768"``); a text with several launches (a llama-swap config) is :func:`check_commands`' job.

    The budget as for :func:`qwenfit.estimate`: ``hardware`` (``"rtx-4090"``, ``"2x rtx-3090"``, a
    :class:`~qwenfit.Machine`) or ``vram_gb``, and ``ram_gb``. Options that change memory in ways
    qwenfit does not model are a :class:`~qwenfit.errors.UsageError` naming them; the others
    (``--port``, ``--jinja``, ``-t``) are ignored."""
    checks = check_commands(
        cmd,
        hardware=hardware,
        vram_gb=vram_gb,
        ram_gb=ram_gb,
        wired_limit_mb=wired_limit_mb,
        env=env,
        cwd=cwd,
    )
    if len(checks) != 1:
        raise SettingError(
            f"the command holds {len(checks)} engine launches: check_commands() gives one verdict each"
        )
    c = checks[0]
    try:
        return c.estimate.raise_if_not_fits()
    except DoesNotFit as exc:
        text = str(exc) + ("; edits that fit: " + "; ".join(map(str, c.fixes)) if c.fixes else "")
        raise DoesNotFit(
            text, shortfall_bytes=exc.shortfall_bytes, estimate=c.estimate, alternatives=c.fixes
        ) from None
