"""llama.cpp's options that change memory (common/arg.cpp at 0c1e570), and how a few of them read:
``-ot`` overrides, the MTP layer of the file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qwenfit.core.engines.base import option_field
from qwenfit.core.expr import Num
from qwenfit.errors import SettingError

if TYPE_CHECKING:
    from qwenfit.core.engines.base import Deployment

__all__ = ["LlamaCppOptions", "mtp_layer", "override_devices", "parse_overrides"]


@dataclass(frozen=True, slots=True)
class LlamaCppOptions:
    """llama.cpp's flags that change memory (common/arg.cpp)."""

    n_gpu_layers: int | None = option_field(
        None, "-ngl: layers on the GPUs (None: all)", check="optional-count"
    )
    n_cpu_moe: Num = option_field(
        0, "--n-cpu-moe: routed experts of the first N layers in host RAM", check="non-negative"
    )
    tensor_split: tuple[float, ...] | None = option_field(None, "-ts: each GPU's share of the layers")
    ubatch: int = option_field(512, "-ub: tokens per micro-batch", check="positive")
    batch: int = option_field(2048, "-b: tokens per logical batch", check="positive")
    flash_attention: bool = option_field(True, "-fa on|off", check="bool")
    kv_unified: bool = option_field(False, "--kv-unified: one KV stream for every slot", check="bool")
    kv_offload: bool = option_field(
        True, "KV cache and recurrent state on the layers' GPUs (False: -nkvo, in host memory)", check="bool"
    )
    server: bool = option_field(
        True, "llama-server (output limits, context checkpoints); False: the library", check="bool"
    )
    ctx_checkpoints: int = option_field(32, "llama-server --ctx-checkpoints", check="non-negative")
    fit_margin: bool = option_field(True, "--fit keeps 1 GiB free on every device", check="bool")
    engine_version: str | None = option_field(
        None, "the llama.cpp build, e.g. 'b9849' (None: the newest modelled, 0c1e570)"
    )
    mtp_layer: bool | None = option_field(
        None, "the GGUF holds the MTP layer (None: as the file launched: the MTP GGUF with mtp=True only)"
    )
    override_tensor: tuple[str, ...] = option_field(
        (), "-ot PATTERN=BUFFER overrides in order, e.g. 'blk\\.[0-9]\\.ffn_.*_exps=CPU' or 'exps=CPU'"
    )
    split_mode: str = option_field("layer", "-sm: layer (split layers over the GPUs) | none (one GPU)",
                                   choices=("layer", "none"))  # fmt: skip
    draft_kv_cache: str | None = option_field(
        None, "-ctkd/-ctvd: the MTP draft context's KV type (None: f16, llama.cpp's default)"
    )
    draft_tokens: int = option_field(
        3, "--spec-draft-n-max: tokens drafted per step (mtp=True)", check="positive"
    )


_DEVICE_PREFIXES = ("CUDA", "ROCm", "Vulkan", "MTL", "SYCL", "CANN", "OPENCL")


def parse_overrides(engine: str, value: Any) -> tuple[str, ...]:
    """``-ot`` as llama.cpp parses it (common/arg.cpp parse_tensor_buffer_overrides): comma-separated
    ``PATTERN=BUFFER`` items, each pattern a std::regex (ECMAScript), the buffer a device's buffer type
    (``CPU``, ``CUDA0``, ``Vulkan1``, ``MTL0``, ...)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        pattern, sep, buft = str(item).rpartition("=")
        if not sep or not pattern:
            raise SettingError(f"{engine} option override_tensor: {item!r} is not PATTERN=BUFFER (llama.cpp: "
                               "'invalid value')")  # fmt: skip
        try:
            re.compile(pattern)
        except re.error as exc:
            msg = f"{engine} option override_tensor: {pattern!r} is not a regex ({exc})"
            raise SettingError(msg) from None
        if buft != "CPU" and not re.fullmatch("(" + "|".join(_DEVICE_PREFIXES) + r")[0-9]+", buft):
            raise SettingError(f"{engine} option override_tensor: unknown buffer type {buft!r} (llama.cpp "
                               "takes a device's: CPU, CUDA0, ROCm0, Vulkan0, MTL0, ...)")  # fmt: skip
        out.append(f"{pattern}={buft}")
    return tuple(out)


def override_devices(o: LlamaCppOptions, d: Deployment) -> tuple[tuple[str, str], ...]:
    """``-ot`` items as (pattern, qwenfit device): ``CPU`` -> "cpu", the i-th GPU -> "gpu" / "gpu<i>"."""
    n_gpus = 0 if d.backend == "cpu" else d.n_gpus
    out = []
    for item in o.override_tensor:
        pattern, _, buft = item.rpartition("=")
        if buft == "CPU":
            out.append((pattern, "cpu"))
            continue
        index = int(re.sub(r"^\D+", "", buft))
        if index >= n_gpus:
            raise SettingError(f"-ot {item}: device {buft} is not one of the {n_gpus} GPU(s) in use")
        out.append((pattern, "gpu" if n_gpus == 1 else f"gpu{index}"))
    return tuple(out)


def mtp_layer(d: Deployment, o: LlamaCppOptions) -> bool:
    """Whether the GGUF holds the MTP layer: as given, else only when drafting with it (the files
    published for plain serving, e.g. unsloth's *-GGUF, are converted without it; *-MTP-GGUF with it)."""
    return d.mtp if o.mtp_layer is None else o.mtp_layer
