"""The engine contract, the engine registry, and the settings every engine shares.

An engine is one object of a subclass of :class:`Engine`, living in its own home
(``qwenfit/core/engines/<engine>``), that owns everything qwenfit knows about it: its memory terms,
its budget rule, its defaults, its options (validated here, by the engine), how the planner places a
model on it, its launch command, its speed constants and what the docs calculator needs from it.
Nothing outside an engine's home branches on its name: the estimate assembly, the planner, the
nearest-fit search, the CLI and the calculator export ask the engine (ARCHITECTURE.md, "add an
engine"; every registered engine passes ``tests/engines/test_conformance.py``).

Three kinds of input reach an engine:

- :class:`Deployment`: what every engine is asked (tokens per sequence, sequences, KV type, MTP,
  vision, backend, GPUs and their memory);
- its own options (a frozen dataclass per engine: ``-ngl``/``--n-cpu-moe`` for llama.cpp, ``tp``/
  ``pp`` for vLLM, ...), built and checked by :meth:`Engine.options`;
- *inputs*: the numbers its terms need from the weights and the hardware (weight bytes per device or
  rank, the backend's reserve, ...), from :meth:`Engine.inputs`. Terms are pure arithmetic on
  inputs, so the same :meth:`Engine.terms` runs on ints (``estimate()``), on cached inputs (the
  planner) and on formula variables (:mod:`qwenfit.core.fit.formulas`, the calculator).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from qwenfit.core.expr import Num
from qwenfit.core.hardware import BACKENDS
from qwenfit.errors import SettingError

if TYPE_CHECKING:
    from qwenfit.core.artifacts import ModelSource, PublishedFile
    from qwenfit.core.command import Cmd
    from qwenfit.core.formats.recipes import Recipe
    from qwenfit.core.formats.weights import WeightMap
    from qwenfit.core.hardware import Device, Machine
    from qwenfit.core.model.spec import ModelSpec
    from qwenfit.core.terms import Term

__all__ = [
    "BACKENDS",
    "EXACT",
    "Artifact",
    "Deployment",
    "Engine",
    "FormulaPlacement",
    "Judge",
    "NoOptions",
    "Placement",
    "SpeedConstants",
    "engines",
    "exact_evaluation",
    "get",
    "names",
    "option_field",
    "register",
    "unregister",
]

# set while one configuration is evaluated for the caller (qwenfit.estimate, check, max_context): an
# engine may then run a slower exact computation that a planner's search cannot afford (llama.cpp's
# scheduler replay per GPU); searches evaluate with the engine's fast form
EXACT: ContextVar[bool] = ContextVar("qwenfit_exact_evaluation", default=False)


@contextlib.contextmanager
def exact_evaluation() -> Iterator[None]:
    token = EXACT.set(True)
    try:
        yield
    finally:
        EXACT.reset(token)


# --------------------------------------------------------------------------------------------------
# what every engine is asked


@dataclass(frozen=True, slots=True)
class Deployment:
    """The settings every engine shares. ``context`` is tokens per sequence, everywhere in qwenfit
    (an engine that counts otherwise, like llama.cpp's ``-c``, converts inside its home)."""

    context: Num  # tokens per sequence: an int, or a formula variable while the calculator traces
    sequences: Num = 1
    kv_cache: str | None = None  # the engine's default when None
    mtp: bool = False  # speculative decoding with the checkpoint's MTP layer
    vision: bool = False  # the vision tower loaded
    backend: str = "cuda"
    n_gpus: int = 1  # GPUs the engine may use; 0 = CPU only
    gpu_memory_bytes: Num | None = None  # one GPU's memory as the engine sees it (None: not known)
    gpu_name: str = ""
    gpu_sm: str | None = None  # CUDA compute capability ("8.6", "10.0"), when known
    gpu_shares: tuple[int, ...] | None = None  # each GPU's usable bytes when they differ (mixed GPUs)

    def settings(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True, slots=True)
class NoOptions:
    """An engine with no options of its own."""


def option_field(default: Any, help: str, *, check: str = "", choices: Sequence[Any] = ()) -> Any:
    """A field of an engine's options dataclass: ``check`` is one of "positive", "non-negative",
    "bool", "fraction", "float", "" (no check); ``choices`` lists the valid values."""
    return field(default=default, metadata={"help": help, "check": check, "choices": tuple(choices)})


def _checked(engine: str, name: str, value: Any, meta: Mapping[str, Any]) -> Any:
    check, choices = meta.get("check", ""), meta.get("choices", ())
    where = f"{engine} option {name}"
    if choices and value not in choices:
        raise SettingError(f"{where}={value!r}; valid: {', '.join(map(str, choices))}")
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if check == "positive" and not (is_int and value > 0):
        raise SettingError(f"{where} must be a positive integer, got {value!r}")
    if check == "positive_or_none" and value is not None and not (is_int and value > 0):
        raise SettingError(f"{where} must be None or a positive integer, got {value!r}")
    if check == "non-negative" and not (is_int and value >= 0):
        raise SettingError(f"{where} must be a non-negative integer, got {value!r}")
    if check == "bool" and not isinstance(value, bool):
        raise SettingError(f"{where} must be True or False, got {value!r}")
    if check == "fraction" and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1
    ):
        raise SettingError(f"{where} must be in (0, 1], got {value!r}")
    return value


# --------------------------------------------------------------------------------------------------
# placements, artifacts, speed constants


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the model runs: the engine's knobs that decide memory per device."""

    kind: str  # "gpu", "n_cpu_moe", "ngl", "cpu", "tp", "unified"
    n_gpus: int = 1
    n_cpu_moe: int = 0
    n_gpu_layers: int | None = None  # llama.cpp -ngl (None: all)
    tensor_split: tuple[float, ...] | None = None  # llama.cpp -ts (None: even, as for identical GPUs)
    tp: int = 1
    pp: int = 1
    nodes: int = 1
    description: str = ""

    def __str__(self) -> str:
        return self.description or self.kind


@dataclass(frozen=True, slots=True)
class FormulaPlacement:
    """A placement the traced formulas cover (the calculator's choices, the planner's fast path):
    ``key`` names it in the exported variables (``gpu1|w:gpu``)."""

    key: str
    n_gpus: int
    tp: int = 1
    cpu_only: bool = False


@dataclass(frozen=True, slots=True)
class Artifact:
    """What a launch command loads, and what it is.

    ``ref`` is what the engine's model argument takes (a repo id, ``repo:QUANT``, ``hf.co/…``, a local
    path), ``make`` the lines to run first ("" when nothing needs making: the artifact is published as
    loaded, or is the user's own file), ``tag`` the name a front end gives the model (Ollama, LM
    Studio). These three are strings, or :class:`qwenfit.core.command.Text` placeholders while the
    calculator traces a command. The rest describes the artifact for reports and is never traced."""

    ref: Any = None
    make: Any = ""
    tag: Any = None
    repo: str | None = None  # the Hub repo it comes from (published or the source of a make)
    file: str | None = None  # the file in it, or the user's / the made file's path
    quant: str = ""  # the quant as published ("UD-Q4_K_XL"), or qwenfit's name
    published: bool = False  # downloadable as loaded (no make step)
    local: bool = False  # the user's own files (a path)
    stored: bool = False  # the files the model was read from (local, or a Hub repo): weights as stored
    size_bytes: int | None = None  # published bytes (whole file / split set), when known
    published_file: PublishedFile | None = None
    note: str = ""  # why a make step is needed, or what the artifact is
    needs: str = ""  # an input the make steps need that qwenfit cannot name (a calibration text)


@dataclass(frozen=True, slots=True)
class SpeedConstants:
    """An engine's fixed per-token costs (estimates; :mod:`qwenfit.core.fit.speed` explains them):
    ``step_us`` per token independent of depth, ``layer_us`` per decoder layer by backend, and the
    fraction of dense FP16 tensor throughput its prefill reaches, by backend."""

    family: str
    step_us: int
    layer_us: Mapping[str, int]
    compute_efficiency: Mapping[str, float] = field(default_factory=dict)
    default_layer_us: int = 200  # a backend not listed: the slow end of the listed ones
    default_compute_efficiency: float = 0.40
    # families whose fitted constants (fit.speed_fitted) it uses, first match wins; (): hand-set ones above
    fitted: tuple[str, ...] = ()
    ubatch: int = 512  # prompt tokens per prefill step when the settings do not say
    mat_vec_max_tokens: int = 0  # steps of more tokens run matrix kernels (0: none; speed.decode_speed)


class Judge(Protocol):
    """What the planner lets an engine ask while it searches placements (:mod:`qwenfit.core.fit.planner`)."""

    spec: ModelSpec
    n_gpus: int  # GPUs of the machine (0: none)
    vram: int | None  # one GPU's budget
    ram: int | None
    unified: bool
    user_options: Mapping[str, Any]  # the engine options the caller fixed (a placement must keep them)
    # the planner, not the caller, chose user_options' tensor_split (mixed GPUs: shares by usable memory),
    # so a placement may skew it
    split_free: bool

    def fits(self, p: Placement, context: int, sequences: int) -> bool: ...
    def gpus_fit(self, p: Placement, context: int, sequences: int) -> bool: ...
    def shortfall(self, p: Placement, context: int, sequences: int) -> int: ...


# --------------------------------------------------------------------------------------------------
# the contract

# the tools that make a GPU format's checkpoint (named in a make step when none is published)
_MAKERS = {
    "fp8": "llm-compressor (FP8_BLOCK scheme)",
    "fp8-dynamic": "llm-compressor (FP8_DYNAMIC scheme)",
    "w8a8": "llm-compressor (W8A8 scheme)",
    "w4a16": "llm-compressor (W4A16 scheme)",
    "nvfp4-all": "llm-compressor (NVFP4 scheme)",
    "nvfp4": "NVIDIA ModelOpt (NVFP4)",
    "awq": "GPTQModel / AutoAWQ",
    "gptq": "GPTQModel",
    "gptq-int8": "GPTQModel",
    "autoround": "Intel auto-round",
    "mxfp4": "llm-compressor (MXFP4 scheme)",
}


class Engine:
    """The contract every engine implements (defaults: one GPU, safetensors weights, no options)."""

    name: ClassVar[str] = ""
    weights_family: ClassVar[str] = "safetensors"  # "gguf" | "safetensors" | "mlx"
    kv_types: ClassVar[tuple[str, ...]] = ("auto",)  # the first is the default
    calc_kv_types: ClassVar[tuple[str, ...]] = ()  # the calculator's choices ((): not in the calculator)
    # formats the engine makes from the BF16 checkpoint while loading it, with the flag that asks for it
    online_quant: ClassVar[Mapping[str, str]] = {}
    default_quant: ClassVar[str] = "bf16"
    planner_quants: ClassVar[tuple[str, ...]] = ("bf16",)
    fallback_quants: ClassVar[tuple[str, ...]] = ()  # smaller quants `check` may offer ((): planner_quants)
    max_sequences: ClassVar[int] = 1024
    context_step: ClassVar[int] = 1  # the granularity the engine allocates context in
    context_beyond_native: ClassVar[bool] = False  # whether it runs past the native context (YaRN)
    loads_vision_by_default: ClassVar[bool] = False
    default_backend: ClassVar[str] = "cuda"  # when the hardware does not say
    unified_only: ClassVar[bool] = False  # runs on unified memory only (plain RAM numbers describe a Mac)
    no_mtp: ClassVar[str] = ""  # why it cannot draft with the MTP layer ("": it can); check / plan reject mtp
    # options the traced formulas take as inputs (beside the placement's): any other option set away from
    # its default makes the planner evaluate ints instead of the compiled formulas
    traced_options: ClassVar[frozenset[str]] = frozenset()
    Options: ClassVar[type] = NoOptions
    speed: ClassVar[SpeedConstants]

    def __repr__(self) -> str:
        return f"<engine {self.name}>"

    # options --------------------------------------------------------------------------------------
    def options(self, values: Mapping[str, Any] | None = None, **overrides: Any) -> Any:
        """This engine's options from ``values`` (user keywords), each checked; an option the engine
        does not have is a :class:`~qwenfit.errors.SettingError` that lists the valid ones."""
        given = {**(values or {}), **overrides}
        fields = {f.name: f for f in dataclasses.fields(self.Options)}
        unknown = sorted(k for k in given if k not in fields)
        if unknown:
            valid = ", ".join(fields) or "none"
            raise SettingError(f"{self.name} has no option {', '.join(unknown)}; its options: {valid}")
        for k, v in given.items():
            _checked(self.name, k, v, fields[k].metadata)
        return self.Options(**given)

    def option_help(self) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(self.Options)}

    # quantizations ----------------------------------------------------------------------------------
    def accepts(self, quant: str) -> str | None:
        """``quant`` as this engine spells it, or None when it does not load that format."""
        from qwenfit.core.formats.names import normalise

        name = normalise(quant, self.weights_family)
        return None if name is None else name.canonical

    def weights(
        self, spec: ModelSpec, quant: str | Recipe, *, mtp: bool, vision: bool, **quant_options: Any
    ) -> WeightMap:
        """The weights this engine loads for ``quant`` (a name :meth:`accepts` returned, or a
        :class:`~qwenfit.core.formats.recipes.Recipe` learned from a file)."""
        from qwenfit.core.formats.gpu import gpu_weights

        if not isinstance(quant, str):
            raise SettingError(f"{self.name} loads safetensors checkpoints, not a GGUF recipe")
        return gpu_weights(spec, quant, mtp=mtp, vision=vision, **quant_options)

    # memory -----------------------------------------------------------------------------------------
    def inputs(self, spec: ModelSpec, weights: WeightMap, d: Deployment, o: Any) -> dict[str, Any]:
        """The numbers :meth:`terms` needs: :meth:`weight_inputs` and :meth:`hardware_inputs`."""
        return {**self.weight_inputs(spec, weights, d, o), **self.hardware_inputs(d, o)}

    def weight_inputs(self, spec: ModelSpec, weights: WeightMap, d: Deployment, o: Any) -> dict[str, Any]:
        return {"w:rank": weights.total_bytes, "scheme": weights.scheme}

    def hardware_inputs(self, d: Deployment, o: Any) -> dict[str, Any]:
        return {}

    def inputs_key(self, d: Deployment, o: Any) -> tuple[Any, ...]:
        """What :meth:`weight_inputs` depends on besides the weights (the planner caches by it)."""
        return (d.mtp, d.vision)

    def terms(self, spec: ModelSpec, inputs: Mapping[str, Any], d: Deployment, o: Any) -> list[Term]:
        """The named memory terms, per device, from ``inputs``; traceable (ints or formulas)."""
        raise NotImplementedError

    def budget(
        self,
        devices: Sequence[str],
        *,
        vram: Num | None,
        ram: Num | None,
        unified: bool,
        o: Any,
        inputs: Mapping[str, Any] | None = None,
    ) -> dict[str, Num]:
        """Usable bytes per device: ``vram`` is one GPU's memory (on unified memory what the GPU may
        use), ``ram`` the host RAM; on unified memory GPU and CPU terms share the RAM (``"total"``).
        ``inputs``: :meth:`hardware_inputs` (formula variables while tracing)."""
        budget: dict[str, Num] = {}
        if vram is not None:
            cap = self.gpu_cap(vram, o, inputs)
            for d in devices:
                if d.startswith("gpu"):
                    budget[d] = cap
        if ram is not None:
            if unified:
                budget["total"] = ram
            elif "cpu" in devices or not budget:
                budget["cpu"] = ram
        return budget

    def gpu_cap(self, vram: Num, o: Any, inputs: Mapping[str, Any] | None = None) -> Num:
        """The bytes of one GPU's ``vram`` this engine plans with (``inputs`` as for :meth:`budget`)."""
        return vram

    def notes(
        self,
        spec: ModelSpec,
        inputs: Mapping[str, Any],
        d: Deployment,
        o: Any,
        terms: Sequence[Term],
        budget: Mapping[str, int] | None,
    ) -> tuple[str, ...]:
        """What the engine would say about this deployment (e.g. that it would refuse to start)."""
        used = self.gpus_used(d, o)
        if d.n_gpus > 1 and used != d.n_gpus:
            return (f"{self.name} uses tp x pp x dp = {used} of the {d.n_gpus} GPUs",)
        return ()

    def gpus_used(self, d: Deployment, o: Any) -> int:
        """How many of the deployment's GPUs the engine uses with options ``o``."""
        return 1

    def check(self, spec: ModelSpec, d: Deployment, o: Any) -> None:
        """Reject settings the engine would reject (SettingError, in the engine's words)."""
        if d.mtp and self.no_mtp:
            raise SettingError(self.no_mtp)
        if d.kv_cache is not None and d.kv_cache not in self.kv_types:
            raise SettingError(f"{self.name} KV cache {d.kv_cache!r}; valid: {', '.join(self.kv_types)}")

    # machines and placements --------------------------------------------------------------------
    def runs_on(self, machine: Machine) -> str:
        """Why this engine cannot run on ``machine`` ("" when it can)."""
        return "" if machine.devices else f"{self.name} needs a GPU"

    def default_on(self, machine: Machine) -> bool:
        """Whether the planner tries this engine on ``machine`` when no engine is asked for."""
        return False

    def quants_for(self, machine: Machine) -> tuple[str, ...]:
        """The quantizations the planner tries on ``machine``."""
        return self.planner_quants

    def published_quants(self, source: ModelSource, *, mtp: bool) -> tuple[str, ...]:
        """The quantizations published for ``source`` in this engine's format that it loads (tried
        by the planner beside :meth:`quants_for`; the default: whole safetensors repos)."""
        from qwenfit.core.artifacts import repo_quants

        return tuple(q for q in repo_quants(source.published, "safetensors-repo") if self.accepts(q))

    def place(self, judge: Judge, need: int, sequences: int, max_nodes: int) -> tuple[Placement | None, str]:
        """The least-offload placement at which ``need`` tokens per sequence fit, or (None, why)."""
        one = Placement("gpu", description="one GPU")
        return (one, "") if judge.fits(one, need, sequences) else (None, "does not fit")

    def widen(
        self, judge: Judge, p: Placement, max_context: int, sequences: int
    ) -> tuple[Placement, int, str]:
        """After :meth:`place`: a placement that buys the native context at a small cost, if any
        (placement, its max context, a note); the default keeps ``p``."""
        return p, max_context, ""

    def fallback(self, machine: Machine, spec: ModelSpec | None = None) -> Placement:
        """The placement a rejection's shortfall is quoted for (every GPU of the machine used, as
        ``check`` would judge it)."""
        return (
            Placement("gpu", n_gpus=max(1, machine.n_devices))
            if machine.devices
            else Placement("cpu", n_gpus=0)
        )

    def placement_options(self, p: Placement) -> dict[str, Any]:
        """The engine options that realise placement ``p``."""
        return {}

    def placement_gpus(self, p: Placement) -> int:
        """GPUs the deployment of ``p`` uses (the Deployment's ``n_gpus``)."""
        return 0 if p.kind == "cpu" else max(p.n_gpus, 1)

    def placement_of(self, d: Deployment, o: Any) -> Placement | None:
        """The placement a deployment amounts to, for the speed model (None: no speed estimate)."""
        return Placement("cpu", n_gpus=0) if d.backend == "cpu" else Placement("gpu", n_gpus=max(d.n_gpus, 1))

    # launch -------------------------------------------------------------------------------------------
    def artifact(self, source: ModelSource, quant: str, d: Deployment) -> Artifact:
        """What a launch of ``quant`` loads: the user's files, else a published artifact, else the
        published checkpoint and the step that makes ``quant`` from it (the default: safetensors
        repos, :func:`qwenfit.core.artifacts.repo_choice`)."""
        from qwenfit.core.artifacts import repo_choice

        if source.file_format is not None:
            where = source.path or source.repo_id
            return Artifact(ref=where, repo=source.repo_id, file=source.path, quant=quant,
                            local=source.local, published=not source.local, stored=True)  # fmt: skip
        repo = repo_choice(source.published, quant, "safetensors-repo")
        if repo is not None:
            return Artifact(ref=repo.id, repo=repo.id, quant=quant, published=True, note=repo.format)
        base = repo_choice(source.published, "bf16", "safetensors-repo")
        if base is not None and quant in self.online_quant:  # the engine quantizes the BF16 checkpoint
            note = f"no {quant} checkpoint published: quantized on load"
            return Artifact(ref=f"{base.id} {self.online_quant[quant]}", repo=base.id, quant=quant,
                            published=True, note=note)  # fmt: skip
        origin = base.id if base is not None else (source.repo_id or source.name)
        made = f"./{source.name}-{quant.upper()}"
        return Artifact(
            ref=made,
            make=f"# no {quant} checkpoint of {source.name} is published: make one from {origin} with "
            f"{_MAKERS.get(quant, 'its quantization tool')} (a calibration run on a GPU), saved to {made}\n",
            repo=origin,
            file=made,
            quant=quant,
            note=f"no published {quant} checkpoint",
        )

    def artifact_weights(
        self,
        spec: ModelSpec,
        artifact: Artifact,
        quant: str,
        *,
        mtp: bool,
        vision: bool,
        **quant_options: Any,
    ) -> WeightMap:
        """The weights ``artifact`` holds: a GGUF the model was read from as stored (its header), else
        :meth:`weights` of ``quant`` (the format's recipe — for a safetensors checkpoint read from
        files, the recipe of the format its config declares, which the engine's per-rank arithmetic
        needs; an engine whose published files have their own sizes overrides this)."""
        if artifact.stored and spec.checkpoint is not None and self.weights_family == "gguf":
            from qwenfit.core.formats.weights import weights_as_stored

            return weights_as_stored(spec, mtp=mtp, vision=vision)
        return self.weights(spec, quant, mtp=mtp, vision=vision, **quant_options)

    def command(self, artifact: Artifact, d: Deployment, o: Any) -> Cmd:
        """The launch command of this deployment (traceable: the calculator renders the same parts)."""
        raise NotImplementedError

    # traced formulas (the calculator and the planner's fast path) ---------------------------------
    def calc_kv_types_for(self, spec: ModelSpec) -> tuple[str, ...]:
        """The calculator's KV choices this model can take (the default: all of them)."""
        return self.calc_kv_types

    def prepare_formulas(self, spec: ModelSpec) -> None:
        """Make :meth:`terms` traceable for ``spec`` before the calculator export traces it (e.g.
        derive a closed form the stored data lacks); the default has nothing to prepare."""

    def formula_placements(self, spec: ModelSpec) -> list[FormulaPlacement]:
        return [FormulaPlacement("unified" if self.weights_family == "mlx" else "gpu1", 1)]

    def formula_placement(self, p: Placement) -> FormulaPlacement | None:
        """The traced placement that computes ``p`` exactly, or None."""
        return None

    def formula_options(self, spec: ModelSpec, fp: FormulaPlacement, variables: Mapping[str, Any]) -> Any:
        """The options of ``fp`` with formula variables where the calculator lets the user choose."""
        return self.options()

    def calc_hardware_inputs(self, device: Device | None, fp: FormulaPlacement) -> dict[str, int] | None:
        """The hardware inputs of the calculator for ``device`` (None: a custom GPU); None when the
        calculator does not offer this engine on that device."""
        return {}

    # speed ------------------------------------------------------------------------------------------
    def read_inputs(self, spec: ModelSpec, weights: WeightMap, p: Placement) -> dict[str, Any]:
        """Weight bytes one decoded token reads, as inputs of :meth:`decode_reads`."""
        from qwenfit.core.formats.reads import decode_read_bytes

        return {"r:gpu": decode_read_bytes(spec, weights)["gpu"]}

    def mtp_drafts(self, settings: Mapping[str, Any]) -> int:
        """Tokens the MTP layer drafts per step with ``mtp=True`` (the checkpoints carry one layer)."""
        return 1

    def verify_flops(self, settings: Mapping[str, Any], device: Device | None, spec: ModelSpec) -> int:
        """FLOPs per cached token of a verify's attention run on one SM per head (0: packed and split)."""
        return 0

    def decode_reads(
        self, spec: ModelSpec, reads: Mapping[str, Any], p: Placement, o: Any
    ) -> tuple[Num, Num, Num]:
        """(weights read on the GPU side, on the CPU side, layers with tensors on the CPU) per token."""
        return reads["r:gpu"], 0, 0


# --------------------------------------------------------------------------------------------------
# the registry

_BUILTIN: dict[str, tuple[str, str]] = {
    "llama.cpp": ("qwenfit.core.engines.llama_cpp", "LLAMA_CPP"),
    "ollama": ("qwenfit.core.engines.llama_cpp", "OLLAMA"),
    "lm-studio": ("qwenfit.core.engines.llama_cpp", "LM_STUDIO"),
    "llama-cpp-python": ("qwenfit.core.engines.llama_cpp", "LLAMA_CPP_PYTHON"),
    "vllm": ("qwenfit.core.engines.vllm", "VLLM"),
    "sglang": ("qwenfit.core.engines.sglang", "SGLANG"),
    "mlx": ("qwenfit.core.engines.mlx", "MLX"),
    "transformers": ("qwenfit.core.engines.transformers", "TRANSFORMERS"),
}
_REGISTERED: dict[str, Engine] = {}  # engines added at run time (register()), and built-ins once loaded
_EXTRA: list[str] = []  # names registered at run time, in order


def register(engine: Engine) -> Engine:
    """Add an engine (its ``name`` must be new); returns it."""
    if not engine.name:
        raise SettingError("an engine needs a name")
    if engine.name in _BUILTIN or engine.name in _EXTRA:
        raise SettingError(f"engine {engine.name!r} is already registered")
    _REGISTERED[engine.name] = engine
    _EXTRA.append(engine.name)
    return engine


def unregister(name: str) -> None:
    """Remove an engine added with :func:`register` (built-ins stay)."""
    if name in _EXTRA:
        _EXTRA.remove(name)
        _REGISTERED.pop(name, None)


def names() -> tuple[str, ...]:
    """Every engine name: the built-ins, then those registered at run time."""
    return (*_BUILTIN, *_EXTRA)


def get(name: str) -> Engine:
    """The engine called ``name``; a SettingError naming the valid ones otherwise."""
    found = _REGISTERED.get(name)
    if found is not None:
        return found
    if not isinstance(name, str) or name not in _BUILTIN:
        raise SettingError(f"unknown engine {name!r}; valid: {', '.join(names())}")
    module, attr = _BUILTIN[name]
    engine: Engine = getattr(importlib.import_module(module), attr)
    _REGISTERED[name] = engine
    return engine


def engines(wanted: Iterable[str] | None = None) -> tuple[Engine, ...]:
    """The engines named in ``wanted`` (default: all), each checked."""
    return tuple(get(n) for n in (names() if wanted is None else wanted))
