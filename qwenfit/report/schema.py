"""The JSON the ``qwenfit`` command prints with ``--json``, as pydantic models, and its JSON Schema.

Every ``--json`` output is one object with ``"schema": "qwenfit-output-v2"`` and a ``"kind"``
saying which result it is: ``plan``, ``check``, ``check-command``, ``inspect``, ``quants``,
``models``, ``hardware-list``, ``hardware-show`` or ``hardware-detect``. :class:`Output` validates
any of them::

    from qwenfit.report.schema import Output
    result = Output.model_validate_json(text).root     # a PlanOut, CheckOut, ...

The committed JSON Schema, ``data/schema/qwenfit-output-v2.schema.json``, is
:func:`output_json_schema` written by ``scripts/gen_output_schema.py``; a test checks the two agree.
The version changes when a field is removed, renamed or changes meaning; adding a field to a result
is a new version too (the models forbid unknown keys, so consumers validating strictly notice).

Units: ``*_bytes`` are bytes (int), ``*_gbps`` decimal GB/s, ``*_tflops`` dense TFLOPS, token counts
are per sequence unless said otherwise. Memory is keyed by device: ``gpu`` (each GPU, when all are
alike), ``gpu0``/``gpu1``/… (layer split), ``cpu`` (host RAM) and, in budgets, ``total`` (unified
memory: every term counts against it).

The command builds its JSON without pydantic (so ``qwenfit check --json`` starts fast); these models
are the contract, and the tests validate every output against them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

__all__ = [
    "SCHEMA_FILE",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "AlternativeOut",
    "CheckCommandOut",
    "CheckOut",
    "CheckpointOut",
    "CommandFixOut",
    "DeviceOut",
    "EstimateOut",
    "HardwareDetectOut",
    "HardwareListOut",
    "HardwareShowOut",
    "HostOut",
    "InspectOut",
    "LaunchCheckOut",
    "MachineOut",
    "ModelOut",
    "ModelsOut",
    "OptionOut",
    "Output",
    "ParamsOut",
    "PlacementOut",
    "PlanOut",
    "QuantSizeOut",
    "QuantsOut",
    "TermOut",
    "output_json_schema",
]

SCHEMA_VERSION = 2
SCHEMA_ID = f"qwenfit-output-v{SCHEMA_VERSION}"
SCHEMA_FILE = f"{SCHEMA_ID}.schema.json"

Bytes = Annotated[int, Field(ge=0, description="bytes")]
Count = Annotated[int, Field(ge=0)]
SettingValue = int | float | str | bool | None | list[float]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Top(_Out):
    schema_: Literal["qwenfit-output-v2"] = Field(alias="schema", description="this schema's id")


# ---------------------------------------------------------------------------------------------------
# memory


class TermOut(_Out):
    """One named piece of memory on one device (``qwenfit.Term``)."""

    name: str = Field(description="weights, kv_cache, recurrent_state, compute_buffer, output_buffer, ...")
    device: str = Field(description="gpu, gpu0, gpu1, ..., cpu")
    bytes: Bytes
    exact: bool = Field(description="false: an estimate (engine behaviour qwenfit cannot derive exactly)")
    source: str
    detail: str


class EstimateOut(_Out):
    """The memory of one deployment, term by term (``qwenfit.Estimate``)."""

    model: str
    quant: str
    engine: str
    settings: dict[str, SettingValue] = Field(
        description="the engine settings the terms were computed with; for llama.cpp engines "
        "`context` is llama.cpp's -c (the total over all sequences)"
    )
    terms: list[TermOut]
    by_device: dict[str, Bytes]
    budget: dict[str, Bytes] | None = Field(description="usable bytes per device; null: no budget known")
    used_by_budget: dict[str, Bytes] = Field(description="bytes counted against each budget entry")
    total_bytes: Bytes
    fits: bool | None = Field(description="null when no budget is known")
    shortfall_bytes: Bytes = Field(description="bytes missing on the worst device (0 when it fits)")
    exact: bool = Field(description="every term exact")
    notes: list[str]


# ---------------------------------------------------------------------------------------------------
# hardware


class DeviceOut(_Out):
    """One accelerator (a GPU, or a unified-memory SoC with one memory option)."""

    id: str
    name: str
    vendor: str
    kind: Literal["gpu", "unified"]
    memory_bytes: Bytes
    memory_exact: bool = Field(description="true: the driver's figure; false: the nominal size")
    bandwidth_gbps: float = Field(description="peak memory bandwidth, GB/s; 0: unknown")
    fp16_tflops: float = Field(description="dense FP16/BF16 TFLOPS; 0: unknown")
    fp8_tflops: float | None
    fp4_tflops: float | None
    interconnect: str | None
    interconnect_gbps: float | None
    backends: list[str]
    compute_capability: str | None
    tdp_w: int | None
    aliases: list[str]
    source: str


class HostOut(_Out):
    """A host-RAM bandwidth profile."""

    id: str
    name: str
    bandwidth_gbps: float
    effective_gbps: float
    source: str


class MachineOut(_Out):
    """What a plan or check runs on: identical devices (none: CPU only) and host RAM."""

    name: str
    devices: list[DeviceOut]
    n_devices: Count
    vram_bytes: Bytes = Field(description="device memory summed over devices")
    unified: bool
    ram_bytes: Bytes | None = Field(description="host RAM; null: unknown (not judged)")
    host: HostOut | None
    cpu_threads: int | None
    cpu_cores: int | None = Field(default=None, description="physical CPU cores; null: unknown")
    notes: list[str]


# ---------------------------------------------------------------------------------------------------
# plans


class PlacementOut(_Out):
    """Where a model runs: the engine knobs that decide memory per device."""

    kind: str = Field(description="gpu, n_cpu_moe, ngl, cpu, tp or unified")
    n_gpus: Count
    n_cpu_moe: Count = Field(description="llama.cpp --n-cpu-moe")
    n_gpu_layers: int | None = Field(description="llama.cpp -ngl; null: all layers")
    tensor_split: list[float] | None = Field(description="llama.cpp -ts shares per GPU; null: an even split")
    tp: Count
    pp: Count
    nodes: Count
    description: str


class ArtifactOut(_Out):
    """What a launch command loads: a published artifact, the user's files, or a file it makes first."""

    ref: str = Field(description="what the engine's model argument takes (repo id, -hf repo:QUANT, path)")
    repo: str | None = Field(description="the Hub repo it comes from (or that a make step starts from)")
    file: str | None = Field(description="the file in that repo, the user's file, or the made file")
    quant: str = Field(description="the quantization as published (UD-Q4_K_XL) or qwenfit's name")
    published: bool = Field(description="downloadable as loaded: no make step")
    local: bool = Field(description="the user's own files")
    size_bytes: Bytes | None = Field(description="published bytes of the file / split set, when known")
    make: str = Field(description="lines the command runs first (download, convert, merge); '' when none")
    note: str


class SpeedBandOut(_Out):
    """The range a speed figure earned out of sample (docs/reports/speed.md): p10-p90 of measured /
    predicted over the leave-one-source-out predictions of its category, times the figure."""

    category: str = Field(description="the measurement category whose band applies")
    basis: Literal["estimated", "calibrated"] = Field(description="calibrated: `qwenfit calibrate` constants")
    decode_low: float | None = Field(description="tokens/s, p10 of the category")
    decode_high: float | None = Field(description="tokens/s, p90 of the category")
    prefill_low: float | None
    prefill_high: float | None


class OptionOut(_Out):
    """One (model, quant, engine) with its best placement, or why it does not fit."""

    model: str
    quant: str
    engine: str
    fits: bool
    placement: PlacementOut | None
    context: Count = Field(description="tokens per sequence the option is planned at")
    max_context: Count = Field(description="the longest context that fits this placement (one sequence)")
    sequences: Count
    max_sequences: Count = Field(description="sequences of `context` tokens that fit at once")
    decode_tokens_per_s: float | None = Field(description="estimated; null: unknown")
    prefill_tokens_per_s: float | None
    speed_band: SpeedBandOut | None = Field(description="null: no speed estimate")
    speed_detail: str
    command: str = Field(description="the launch command; empty when it does not fit")
    artifact: ArtifactOut | None = Field(description="what the command loads; null when not placed")
    reason: str = Field(description="why it was rejected")
    quality_rank: int = Field(description="1 is best (data/quants.yaml)")
    quality_class: Literal["good", "usable", "poor"]
    model_params: Count
    headroom_bytes: int = Field(description="smallest free memory over budgeted devices (< 0: short)")
    memory_by_device: dict[str, Bytes]
    notes: list[str]
    estimate: EstimateOut | None


class PlanOut(_Top):
    """``qwenfit plan --json``: ranked options for a machine."""

    kind: Literal["plan"]
    machine: MachineOut
    notes: list[str]
    fits: bool = Field(description="at least one option fits")
    best: OptionOut | None = Field(description="options[0], or null when nothing fits")
    options: list[OptionOut] = Field(description="the options that fit, best first")
    rejected: list[OptionOut]


# ---------------------------------------------------------------------------------------------------
# check


class AlternativeOut(_Out):
    """A nearby configuration that fits, offered when a check does not."""

    kind: Literal["context", "sequences", "offload", "placement", "quant"]
    description: str
    quant: str
    engine: str
    context: Count = Field(description="tokens per sequence")
    sequences: Count
    placement: PlacementOut | None = Field(description="null: the placement that was checked")
    memory_by_device: dict[str, Bytes]
    decode_tokens_per_s: float | None
    speed_band: SpeedBandOut | None
    command: str
    artifact: ArtifactOut | None


class CheckOut(EstimateOut):
    """``qwenfit check --json``: one configuration judged against a machine (exit 0 fits, 1 not)."""

    schema_: Literal["qwenfit-output-v2"] = Field(alias="schema", description="this schema's id")
    kind: Literal["check"]
    context: Count = Field(description="tokens per sequence")
    sequences: Count
    machine: MachineOut
    command: str = Field(description="the launch command of this configuration")
    artifact: ArtifactOut | None = Field(description="what the command loads")
    alternatives: list[AlternativeOut] = Field(description="nearest options that fit; empty when it fits")


class CommandFixOut(_Out):
    """An edit to the checked command that fits, written in the command's own flags and re-checked."""

    kind: Literal["context", "sequences", "offload", "kv_cache", "gpu_memory_utilization", "tp"]
    description: str = Field(description="what changes, in the command's words: '-c 262144 → 98304'")
    settings: dict[str, SettingValue] = Field(description="the settings changed, in qwenfit's names")
    command: str = Field(description="the rewritten command line")
    memory_by_device: dict[str, Bytes] = Field(description="the rewritten command, read and checked again")


class LaunchCheckOut(EstimateOut):
    """One engine launch of a checked command: its estimate, what was read and the edits that fit."""

    tool: str = Field(description="llama-server, llama-cli, llama-bench, vllm serve, sglang, mlx_lm.server, "
                      "mlx_lm.generate, ollama")  # fmt: skip
    read: str = Field(description="the launch as read, one line")
    model_from: Literal["file header", "artifact catalog", "catalog", "repo name", "file name", "hub"] = (
        Field(description="where the model and its quantization came from")
    )
    context: Count = Field(description="tokens per sequence")
    sequences: Count
    ignored: list[str] = Field(description="options accepted because they do not change memory")
    read_notes: list[str] = Field(description="what was inferred while reading the command, and how")
    qwenfit_command: str = Field(description="the command qwenfit prints for the same deployment")
    artifact: ArtifactOut | None = Field(description="what the command loads")
    fixes: list[CommandFixOut] = Field(description="edits to this command that fit; empty when it fits")
    alternatives: list[AlternativeOut] = Field(description="qwenfit's nearest plans that fit (other quants)")


class CheckCommandOut(_Top):
    """``qwenfit check --json -- COMMAND``: every engine launch of the command judged against a machine
    (exit 0 all fit, 1 one does not)."""

    kind: Literal["check-command"]
    fits: bool = Field(description="every launch fits")
    machine: MachineOut
    launches: list[LaunchCheckOut] = Field(description="one per launch (a llama-swap config has several)")


# ---------------------------------------------------------------------------------------------------
# models and quantizations


class ParamsOut(_Out):
    """Exact parameter counts (``spec.params``)."""

    total: Count = Field(description="every stored tensor: the Hugging Face safetensors total")
    active: Count = Field(description="per-token active text parameters")
    text: Count
    mtp: Count
    vision: Count
    by_role: dict[str, Count]


class QuantSizeOut(_Out):
    """One quantization of one model: exact weight bytes and its quality record."""

    name: str
    family: Literal["gguf", "gpu", "mlx"]
    engines: list[str] = Field(description="engines that load this format")
    file_bytes: Bytes = Field(description="the file(s) to download: GGUF header and padding included")
    tensor_bytes: Bytes
    n_params: Count
    bits_per_weight: float = Field(description="8 x tensor_bytes / n_params")
    quality_rank: int | None = Field(description="1 is best; null: no quality record")
    quality_class: Literal["good", "usable", "poor"]
    kld: float | None = Field(description="published mean KL-divergence against BF16")
    ppl_delta_pct: float | None


class CheckpointOut(_Out):
    """The files a model was read from."""

    format: Literal["safetensors", "gguf"]
    quantization: str | None
    files: Count
    tensors: Count
    tensor_bytes: Bytes
    match_exact: bool | None = Field(description="every stored tensor accounted for; null: not compared")
    match_notes: list[str]


class InspectOut(_Top):
    """``qwenfit inspect --json``: one model by component, role and quantization."""

    kind: Literal["inspect"]
    name: str
    family: str
    source: str
    n_layers: Count
    n_linear_attention: Count
    n_full_attention: Count
    hidden_size: Count
    vocab_size: Count
    tie_word_embeddings: bool
    max_position_embeddings: Count
    num_experts: Count = Field(description="0: dense")
    num_experts_per_tok: Count
    moe_intermediate_size: Count
    shared_expert_intermediate_size: Count
    intermediate_size: Count
    mtp_layers: Count
    vision_depth: int | None
    params: ParamsOut
    inventory_entries: Count
    stored_tensors: Count
    stored_bytes: Bytes
    checkpoint: CheckpointOut | None
    quant_sizes: list[QuantSizeOut] = Field(description="a summary over common quantizations")


class QuantsOut(_Top):
    """``qwenfit quants --json``: every quantization of a model."""

    kind: Literal["quants"]
    model: str
    engine: str | None = Field(description="the engine filter; null: every format")
    quants: list[QuantSizeOut]


class ModelOut(_Out):
    """One catalog model."""

    name: str
    aliases: list[str]
    repo_ids: list[str]
    params: ParamsOut
    n_layers: Count
    n_linear_attention: Count
    n_full_attention: Count
    num_experts: Count = Field(description="0: dense")
    num_experts_per_tok: Count


class ModelsOut(_Top):
    """``qwenfit models --json``: the catalog."""

    kind: Literal["models"]
    models: list[ModelOut]


class HardwareListOut(_Top):
    """``qwenfit hardware list --json``: the hardware catalog."""

    kind: Literal["hardware-list"]
    devices: list[DeviceOut]
    hosts: list[HostOut]


class HardwareShowOut(_Top):
    """``qwenfit hardware show NAME --json``: one machine spec resolved against the catalog."""

    kind: Literal["hardware-show"]
    query: str
    machine: MachineOut


class HardwareDetectOut(_Top):
    """``qwenfit hardware detect --json``: the local machine as the planner sees it."""

    kind: Literal["hardware-detect"]
    machine: MachineOut


class PublishedFileOut(_Out):
    """One published file (a split set counts as one)."""

    name: str
    quant: str = Field(description="the quant as the publisher names it (Q4_K_M, UD-Q4_K_XL, mmproj-F16)")
    size_bytes: Bytes | None = Field(description="exact bytes of the file or split set; null: not known")
    size_text: str | None = Field(description="the size as the source printed it, when no exact bytes")
    parts: Count
    tensor_types_known: bool = Field(description="the tensor types were read from its header (--refresh)")


class PublishedOut(_Out):
    """One published artifact: a Hub repo, an Ollama tag or an LM Studio key."""

    id: str
    kind: Literal["gguf-repo", "safetensors-repo", "mlx-repo", "ollama-tag", "lmstudio-key"]
    publisher: str
    format: str = Field(description="the format as recorded")
    quant: str | None = Field(description="qwenfit's format name for a whole repo; null: not modelled")
    mtp: bool = Field(description="its GGUFs carry the MTP layer")
    evidence: str
    source: str
    files: list[PublishedFileOut]


class ModelArtifactsOut(_Out):
    model: str
    artifacts: list[PublishedOut]


class ArtifactsOut(_Top):
    """``qwenfit artifacts --json``: what is published for each model."""

    kind: Literal["artifacts"]
    models: list[ModelArtifactsOut]


class MachineFitOut(_Out):
    """One machine that runs the model, and the option the planner picks there."""

    name: str = Field(description="the machine spec: 'rtx-4090', '2x rtx-3090', 'm4-max-64', 'cpu'")
    kind: Literal["gpu", "unified", "cpu"]
    device: str | None = Field(description="the catalog id of its GPU or unified system; null: CPU only")
    n_gpus: Count
    vram_bytes: Bytes = Field(description="device memory summed over devices (unified: all of it)")
    ram_bytes: Bytes = Field(description="host RAM besides the device memory (0 on unified memory)")
    memory_bytes: Bytes = Field(description="vram_bytes + ram_bytes: what the machines are ordered by")
    machine: MachineOut
    option: OptionOut = Field(description="the planner's best option there that meets min_speed")


class NeedOut(_Top):
    """``qwenfit need --json``: the catalog machines that run a model, smallest first."""

    kind: Literal["need"]
    model: str
    quant: str | None = Field(description="the quantization asked for; null: any")
    context: Count | None = Field(description="tokens per sequence asked for; null: the planner's default")
    sequences: Count
    engines: list[str] | None = Field(description="the engines asked for; null: the planner's per machine")
    min_speed: float | None = Field(description="decode tokens/s a machine's option must reach; null: any")
    min_context: Count
    candidates: Count = Field(description="machines in the sweep")
    evaluated: Count = Field(description="plans run after pruning")
    notes: list[str]
    fits: bool = Field(description="at least one machine runs it")
    machines: list[MachineFitOut] = Field(description="smallest first (device memory + host RAM)")


class ErrorDetail(_Out):
    """What went wrong, for a program: the same words as the one line on stderr."""

    kind: str = Field(description="usage, setting, unknown_model, unknown_hardware, hub, checkpoint, config, "
                      "source_not_found, internal, ... (the error's class, snake_case)")  # fmt: skip
    message: str
    suggestions: list[str] = Field(description="the names or values the message suggests instead")


class ErrorOut(_Top):
    """Any command with ``--json`` that fails: this object on stdout, the same exit code (2 bad input,
    3 internal error)."""

    kind: Literal["error"]
    error: ErrorDetail


AnyOutput = Annotated[
    PlanOut
    | NeedOut
    | ErrorOut
    | ArtifactsOut
    | CheckOut
    | CheckCommandOut
    | InspectOut
    | QuantsOut
    | ModelsOut
    | HardwareListOut
    | HardwareShowOut
    | HardwareDetectOut,
    Field(discriminator="kind"),
]


class Output(RootModel[AnyOutput]):
    """Any ``qwenfit ... --json`` output; ``.root`` is the specific result."""


def output_json_schema() -> dict[str, Any]:
    """The JSON Schema of every ``--json`` output, as ``data/schema/qwenfit-output-v2.schema.json``."""
    schema = Output.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_FILE,
        "title": f"qwenfit --json output, version {SCHEMA_VERSION}",
        "description": (__doc__ or "").split("\n\n")[0].replace("\n", " "),
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }
