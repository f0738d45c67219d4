"""llama.cpp as an engine: llama-server, and the front ends that run it (Ollama, LM Studio).

Everything qwenfit knows about llama.cpp that is not arithmetic of one module lives here: options
(``-ngl``, ``--n-cpu-moe``, ``-ts``, ``-ub``/``-b``, ``-fa``, ``--kv-unified``), defaults (Q4_K_M,
an f16 KV cache, up to 256 slots, context in 256-token cells), how ``--fit`` places a model (the
planner's search), the launch command, the per-token costs of the speed model, and what the
calculator needs. Memory: :mod:`.terms` over the layout of :mod:`.layout` and the context of
:mod:`.memory`. ``context`` is tokens per sequence; llama.cpp's ``-c`` (all slots together) is
``context × sequences`` and appears only here and in :mod:`.terms`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from qwenfit.core.command import Cmd
from qwenfit.core.engines.base import (
    Artifact,
    Deployment,
    Engine,
    FormulaPlacement,
    Judge,
    Placement,
    SpeedConstants,
)
from qwenfit.core.engines.llama_cpp.artifacts import llama_server_artifact
from qwenfit.core.engines.llama_cpp.layout import (
    WEIGHT_ALIGNMENT,
    llama_layout,
    llama_read_env,
    llama_weight_env,
)
from qwenfit.core.engines.llama_cpp.memory import LLAMA_KV_TYPES
from qwenfit.core.engines.llama_cpp.options import (
    LlamaCppOptions,
    mtp_layer,
    override_devices,
    parse_overrides,
)
from qwenfit.core.engines.llama_cpp.terms import backend_inputs, gguf_tensor_table, llama_terms
from qwenfit.core.engines.llama_cpp.versions import build_number
from qwenfit.core.expr import Expr, Num, at, lt
from qwenfit.core.formats.dtypes import GGML_TYPES
from qwenfit.core.search import largest, smallest
from qwenfit.core.units import MIB
from qwenfit.errors import SettingError

if TYPE_CHECKING:
    from qwenfit.core.artifacts import ModelSource
    from qwenfit.core.formats.weights import WeightMap
    from qwenfit.core.hardware import Device, Machine
    from qwenfit.core.model.spec import ModelSpec
    from qwenfit.core.terms import Term

__all__ = [
    "COMPUTE_EFFICIENCY",
    "LAYER_US",
    "LLAMA_CPP",
    "LlamaCpp",
    "LlamaCppOptions",
    "share",
]

MIN_CONTEXT = (
    4096  # --fit-ctx default (common.h fit_params_min_ctx): --fit shortens the context to here first
)
# backend context per GPU (CUDA context ~128-256 MiB + cuBLAS workspace): estimated
RUNTIME_RESERVE = {"cuda": 300 * MIB, "rocm": 300 * MIB, "vulkan": 200 * MIB, "sycl": 300 * MIB, "metal": 0}
GGUF_QUANTS = (
    "BF16",
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q5_K_S",
    "Q4_K_M",
    "Q4_K_S",
    "IQ4_XS",
    "IQ4_NL",
    "Q3_K_L",
    "Q3_K_M",
    "IQ3_M",
    "IQ3_XXS",
    "Q3_K_S",
    "Q2_K",
    "IQ2_M",
    "IQ2_XXS",
    "IQ1_M",
)
CALC_GPUS = (1, 2)  # the calculator's layer splits; the planner takes any count
# c_layer: per decoder layer per token, by backend (µs). CUDA: the middle of 60-140 µs measured on
# RTX cards; ROCm/Vulkan: the middle of 100-300 µs measured on APUs; Metal between the two; CPU:
# thread-pool barriers (estimates, docs/reports/speed.md)
LAYER_US = {"cuda": 100, "rocm": 200, "vulkan": 200, "sycl": 200, "metal": 150, "cpu": 50}
COMPUTE_EFFICIENCY = {"cuda": 0.35, "rocm": 0.25, "vulkan": 0.25, "sycl": 0.25, "metal": 0.40}
# ggml multiplies up to 8 tokens a step with its mat-vec kernels (one read of each weight for all of them)
# and switches to its matrix kernels above: CUDA/HIP MMVQ_MAX_BATCH_SIZE (ggml-cuda/mmvq.cuh:3; MoE 4-8 by
# type and arch, mmvq.cu:147-315), Vulkan mul_mat_vec_max_cols (ggml-vulkan-types.h:381; mul_mat_vec_id for
# <= 8), Metal mul_mm for ne11 > 8 (ggml-metal-common.cpp:41); the tree llama-cpp-python 0.3.36 vendors.
# The fit (benchmarks/speed/fit/model.step_time) imports it; lcpp-botagi's 1-32-slot curve dips at 10.
GGML_MAT_VEC_MAX_TOKENS = 8


class LlamaCpp(Engine):
    """llama-server (llama.cpp 0c1e570)."""

    name = "llama.cpp"
    weights_family = "gguf"
    kv_types = ("f16", *(k for k in LLAMA_KV_TYPES if k != "f16"))
    calc_kv_types: ClassVar[tuple[str, ...]] = ("f16", "q8_0", "q4_0")
    default_quant = "Q4_K_M"
    planner_quants = GGUF_QUANTS
    max_sequences = 256
    context_step = 256  # llama_context pads n_ctx to 256 cells
    context_beyond_native = True  # YaRN rope scaling (--rope-scaling yarn)
    Options = LlamaCppOptions
    speed = SpeedConstants(
        "llama.cpp",
        200,
        LAYER_US,
        COMPUTE_EFFICIENCY,
        fitted=("llama.cpp",),
        mat_vec_max_tokens=GGML_MAT_VEC_MAX_TOKENS,
    )
    keeps_fit_margin: ClassVar[bool] = True  # the front end runs --fit (1 GiB free per device)
    expert_offload: ClassVar[bool] = True  # the front end offers --n-cpu-moe / -ot

    # options ----------------------------------------------------------------------------------------
    def options(self, values: Mapping[str, Any] | None = None, **overrides: Any) -> LlamaCppOptions:
        given = {**(values or {}), **overrides}
        ngl = given.get("n_gpu_layers")
        if ngl is not None and (isinstance(ngl, bool) or not isinstance(ngl, int) or ngl < 0):
            raise SettingError(
                f"{self.name} option n_gpu_layers must be None (all) or a count >= 0, got {ngl!r}"
            )
        ts = given.get("tensor_split")
        if ts is not None:
            try:
                given["tensor_split"] = tuple(float(x) for x in ts)
            except (TypeError, ValueError):
                raise SettingError(f"{self.name} option tensor_split must be numbers, got {ts!r}") from None
        given.pop("n_gpu_layers", None)
        if given.get("split_mode") == "row":
            raise SettingError(
                f"{self.name} option split_mode='row' (weights split by rows over the GPUs) is not modelled; "
                "valid: layer, none"
            )
        ot = given.get("override_tensor")
        if ot is not None:
            given["override_tensor"] = parse_overrides(self.name, ot)
        draft_kv = given.get("draft_kv_cache")
        if draft_kv is not None and draft_kv not in LLAMA_KV_TYPES:
            raise SettingError(
                f"{self.name} option draft_kv_cache={draft_kv!r}; valid: {', '.join(LLAMA_KV_TYPES)}"
            )
        mtp_layer = given.get("mtp_layer")
        if mtp_layer is not None and not isinstance(mtp_layer, bool):
            raise SettingError(f"{self.name} option mtp_layer must be None, True or False, got {mtp_layer!r}")
        build_number(given.get("engine_version"))  # SettingError for a version it cannot read
        o: LlamaCppOptions = super().options({k: v for k, v in given.items() if k != "tensor_split"})
        return dataclasses.replace(o, n_gpu_layers=ngl, tensor_split=given.get("tensor_split"))

    def mtp_drafts(self, settings: Mapping[str, Any]) -> int:
        return int(settings.get("draft_tokens") or 3)

    def check(self, spec: ModelSpec, d: Deployment, o: Any) -> None:
        if d.kv_cache is not None and d.kv_cache not in LLAMA_KV_TYPES:
            raise SettingError(
                f"{self.name}: KV cache type {d.kv_cache!r}; valid: {', '.join(LLAMA_KV_TYPES)}"
            )
        if o.n_cpu_moe and not spec.is_moe:
            raise SettingError(f"n_cpu_moe={o.n_cpu_moe}: {spec.name} is a dense model (use n_gpu_layers)")
        if d.mtp and o.mtp_layer is False:
            raise SettingError(
                f"{self.name}: mtp=True drafts with the GGUF's MTP layer; mtp_layer=False says the file has "
                "none (use an MTP GGUF, e.g. unsloth's *-MTP-GGUF)"
            )
        if d.mtp and not spec.mtp_layers:
            raise SettingError(f"{self.name}: {spec.name} has no MTP layer to draft with")
        if o.split_mode == "none" and d.n_gpus > 1:
            raise SettingError(f"{self.name}: split_mode='none' runs on one GPU; n_gpus={d.n_gpus}")
        kv = d.kv_cache or "f16"
        if not self.kv_fits(spec, kv):  # ggml_row_size needs whole blocks (the cache is [width, cells])
            block = GGML_TYPES[LLAMA_KV_TYPES[kv]].block_size
            width = spec.text.num_key_value_heads * spec.text.head_dim
            raise SettingError(
                f"{self.name}: a {kv} KV cache needs rows of whole {block}-value blocks; "
                f"{spec.name}'s rows hold {width} values"
            )

    # weights and memory ---------------------------------------------------------------------------
    def weights(
        self, spec: ModelSpec, quant: Any, *, mtp: bool, vision: bool, **quant_options: Any
    ) -> WeightMap:
        """The GGUF of file type ``quant`` as the converter writes it (its MTP layer included; the
        engine loads it only when drafting) and, with ``vision``, the mmproj file."""
        from qwenfit.core.formats.recipes import Recipe
        from qwenfit.core.formats.weights import gguf_weights, weights_from_recipe

        if isinstance(quant, Recipe):
            return weights_from_recipe(spec, quant)
        return gguf_weights(spec, quant, vision=vision, **quant_options)

    def _layout(self, spec: ModelSpec, d: Deployment, o: LlamaCppOptions) -> Any:
        n_gpus = 0 if d.backend == "cpu" else d.n_gpus
        try:
            return llama_layout(spec, n_gpus=n_gpus, n_gpu_layers=o.n_gpu_layers, tensor_split=o.tensor_split,
                                mtp_layer=mtp_layer(d, o))  # fmt: skip
        except ValueError as exc:
            raise SettingError(f"{self.name}: {exc}") from None

    def weight_inputs(self, spec: ModelSpec, weights: WeightMap, d: Deployment, o: Any) -> dict[str, Any]:
        layout = self._layout(spec, d, o)
        try:
            env: dict[str, Any] = dict(llama_weight_env(
                spec, weights, layout, mtp=d.mtp, overrides=override_devices(o, d),
                gpu_alignment=WEIGHT_ALIGNMENT.get(d.backend, 32),
            ))  # fmt: skip
        except ValueError as exc:
            raise SettingError(f"{self.name}: {exc}") from None
        if d.vision:
            env["w:vision"] = sum(t.bytes for t in weights.tensors if t.component == "vision")
        env["scheme"] = weights.scheme
        if (
            d.backend != "cpu" and d.n_gpus
        ):  # what the scheduler copies of host weights (a string: traced literal)
            env["gguf:tensors"] = gguf_tensor_table(weights)
        env["w:estimated"] = "" if weights.exact else "estimated"  # a string: traced formulas keep it literal
        return env

    def hardware_inputs(self, d: Deployment, o: Any) -> dict[str, Any]:
        return {"reserve": RUNTIME_RESERVE.get(d.backend, 0), **backend_inputs(d.backend)}

    def inputs_key(self, d: Deployment, o: Any) -> tuple[Any, ...]:
        n_gpus = 0 if d.backend == "cpu" else d.n_gpus
        return (n_gpus, d.backend, o.n_gpu_layers, o.tensor_split, d.mtp, d.vision, o.mtp_layer,
                o.override_tensor)  # fmt: skip

    def terms(self, spec: ModelSpec, inputs: Mapping[str, Any], d: Deployment, o: Any) -> list[Term]:
        return llama_terms(
            spec, d, o, inputs, self._layout(spec, d, o), keeps_fit_margin=self.keeps_fit_margin
        )

    # machines and placements (llama.cpp --fit's order) ----------------------------------------------
    def runs_on(self, machine: Machine) -> str:
        return ""

    def default_on(self, machine: Machine) -> bool:
        return True

    def placement_options(self, p: Placement) -> dict[str, Any]:
        return {"n_cpu_moe": p.n_cpu_moe, "n_gpu_layers": p.n_gpu_layers, "tensor_split": p.tensor_split}

    def place(self, judge: Judge, need: int, sequences: int, max_nodes: int) -> tuple[Placement | None, str]:
        """The least offload at which ``need`` tokens per sequence fit, in llama.cpp --fit's order:
        everything on the GPUs; then (MoE) the smallest ``--n-cpu-moe``, with ``-ts`` giving the first
        of several GPUs more layers; (dense) the largest ``-ngl``; no GPU: the CPU. Options the caller
        fixed (``n_cpu_moe``, ``n_gpu_layers``, ``tensor_split``) are kept as given."""
        spec = judge.spec
        t = spec.text
        n_layer_all = t.num_hidden_layers + spec.mtp_layers  # GGUF block_count (the MTP block included)
        n_layers = t.num_hidden_layers  # --n-cpu-moe beyond these would only touch the (skipped) MTP block
        if judge.n_gpus == 0 or judge.vram is None:
            p = Placement("cpu", n_gpus=0, description="CPU only")
            return (p, "") if judge.fits(p, need, sequences) else (None, "does not fit in RAM on the CPU")
        gpus = judge.n_gpus
        fixed = judge.user_options
        given_ts = fixed.get("tensor_split")
        split = None if given_ts is None else tuple(given_ts)
        ts_note = "" if split is None else ", -ts " + ",".join(share(x) for x in split)

        def full() -> Placement:
            where = "the GPU" if gpus == 1 else f"{gpus} GPUs"
            return Placement(
                "gpu", n_gpus=gpus, tensor_split=split, description=f"all layers on {where}{ts_note}"
            )

        def moe(n: int) -> Placement:
            return Placement(
                "n_cpu_moe",
                n_gpus=gpus,
                n_cpu_moe=n,
                tensor_split=split,
                description=f"routed experts of the first {n} of {n_layers} layers in RAM "
                f"(--n-cpu-moe {n}){ts_note}",
            )

        def ngl(n: int) -> Placement:
            return Placement(
                "ngl",
                n_gpus=gpus,
                n_gpu_layers=n,
                tensor_split=split,
                description=f"{n} of {n_layer_all + 1} layers on the GPU (-ngl {n}){ts_note}",
            )

        if fixed.get("n_cpu_moe") or fixed.get("n_gpu_layers") is not None:  # the caller's offload
            n_cpu_moe = int(fixed.get("n_cpu_moe") or 0)
            n_gpu: int = n_layer_all + 1 if fixed.get("n_gpu_layers") is None else int(fixed["n_gpu_layers"])
            partial = n_gpu <= n_layer_all
            p = moe(n_cpu_moe) if n_cpu_moe else ngl(n_gpu) if partial else full()
            if n_cpu_moe and partial:
                p = dataclasses.replace(p, n_gpu_layers=n_gpu, description=f"{p}, -ngl {n_gpu}")
            if judge.fits(p, need, sequences):
                return p, ""
            return None, f"does not fit with {p} (as given)"
        if judge.fits(full(), need, sequences):
            return full(), ""
        if judge.unified:
            return None, "does not fit the GPU's share of unified memory"
        if judge.ram is None:
            return (
                None,
                "needs weights in host RAM, and no RAM size was given (pass ram_gb= to allow offload)",
            )
        # GPU memory falls and host memory grows with the offload: find the least offload the GPUs
        # hold, then check the host at that point (more offload would only need more host memory)
        if spec.is_moe and self.expert_offload:
            n = smallest(lambda k: judge.gpus_fit(moe(k), need, sequences), 1, n_layers)
            if n is not None and gpus > 1 and (split is None or judge.split_free):
                # --n-cpu-moe empties the first layers, which sit on the first GPU: giving it more
                # layers (-ts) lets fewer experts leave the GPUs. The smallest N wins (even on ties).
                # Mixed GPUs start from the planner's split by usable memory and skew it the same way.
                chosen: tuple[int, Placement] | None = None
                for first in (3 / 2, 2, 3, 4, 6, 8, 12, 16):
                    shares = _split_shares(first, gpus) if split is None else _skew(split, first)
                    ts = ",".join(share(x) for x in shares)

                    def moe_ts(k: int, shares: tuple[float, ...] = shares, ts: str = ts) -> Placement:
                        plain = str(moe(k)).removesuffix(ts_note)
                        return dataclasses.replace(
                            moe(k), tensor_split=shares, description=f"{plain}, -ts {ts}"
                        )

                    m = smallest(lambda k, f=moe_ts: judge.gpus_fit(f(k), need, sequences), 1, n)  # type: ignore[misc]
                    if (
                        m is not None
                        and m < (chosen[0] if chosen else n)
                        and judge.fits(moe_ts(m), need, sequences)
                    ):
                        chosen = (m, moe_ts(m))
                if chosen is not None:
                    return chosen[1], ""
            if n is not None:
                if judge.fits(moe(n), need, sequences):
                    return moe(n), ""
                short = judge.shortfall(moe(n), need, sequences)
                return (
                    None,
                    f"with --n-cpu-moe {n} the GPU holds it but host RAM is short by {short / 1e9:.2f} GB",
                )

        best = largest(lambda k: judge.gpus_fit(ngl(k), need, sequences), 1, n_layer_all)
        if best:
            if judge.fits(ngl(best), need, sequences):
                return ngl(best), ""
            short = judge.shortfall(ngl(best), need, sequences)
            return None, f"with -ngl {best} the GPU holds it but host RAM is short by {short / 1e9:.2f} GB"
        return None, "does not fit even with every layer in RAM"

    def widen(
        self, judge: Judge, p: Placement, max_context: int, sequences: int
    ) -> tuple[Placement, int, str]:
        """MoE: a few more layers' experts in RAM buy the whole native context (the KV cache of the
        1-in-4 attention layers is small); dense models keep all layers on the GPU and shorten it."""
        native = judge.spec.text.max_position_embeddings
        if max_context >= native or not judge.spec.is_moe or p.kind == "cpu":
            return p, max_context, ""
        more, _ = self.place(judge, native, sequences, 1)
        if more is None or more.kind != "n_cpu_moe":
            return p, max_context, ""
        note = (
            f"{p}: {max_context:,} tokens; {more.n_cpu_moe - p.n_cpu_moe} more layer(s) of experts in "
            f"RAM give the native {native:,}"
        )
        return more, native, note

    def placement_gpus(self, p: Placement) -> int:
        return 0 if p.kind == "cpu" else p.n_gpus

    def gpus_used(self, d: Deployment, o: Any) -> int:
        return d.n_gpus

    def placement_of(self, d: Deployment, o: Any) -> Placement | None:
        if d.backend == "cpu":
            return Placement("cpu", n_gpus=0)
        return Placement("gpu", n_gpus=max(d.n_gpus, 1), n_cpu_moe=o.n_cpu_moe, n_gpu_layers=o.n_gpu_layers)

    # launch ------------------------------------------------------------------------------------------
    def published_quants(self, source: ModelSource, *, mtp: bool) -> tuple[str, ...]:
        """Every GGUF quant published for the model (unsloth's dynamic UD-* mixes included)."""
        from qwenfit.core.artifacts import gguf_quants

        return tuple(q for q in gguf_quants(source.published, mtp=mtp) if self.accepts(q))

    def artifact(self, source: ModelSource, quant: str, d: Deployment) -> Artifact:
        """``-hf <repo>:<QUANT>`` of a published GGUF, the user's ``-m FILE``, or a made file
        (:mod:`.artifacts`)."""
        return llama_server_artifact(source, quant, d)

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
        """A published GGUF as published (its MTP layer only in ``*-MTP-GGUF`` repos; a dynamic quant
        from its base type, scaled to the file: :func:`qwenfit.core.artifacts.fit_to_file`); a made
        one as the converter and llama-quantize write it."""
        from qwenfit.core.artifacts import dynamic_base, fit_to_file
        from qwenfit.core.formats.weights import gguf_weights

        f = artifact.published_file
        if f is None and dynamic_base(quant) and not artifact.stored:
            raise SettingError(
                f"{quant} is a publisher's own GGUF mix, known only by its published files; none of "
                f"{spec.name} is in qwenfit's catalog (qwenfit artifacts {spec.name} lists what is)"
            )
        if f is None or artifact.stored:
            return super().artifact_weights(spec, artifact, quant, mtp=mtp, vision=vision, **quant_options)
        carries_mtp = bool(spec.mtp_layers) and "-MTP-" in (artifact.repo or "").upper()
        base = dynamic_base(f.quant) or f.quant.upper()
        try:
            w = gguf_weights(spec, base, mtp=carries_mtp, vision=vision, **quant_options)
        except ValueError as exc:
            raise SettingError(f"{f.quant}: {exc}") from None
        return fit_to_file(w, f, label=f"{(artifact.repo or '').split('/')[0]}'s {f.quant}")

    def command(self, artifact: Artifact, d: Deployment, o: Any) -> Cmd:
        """llama-server's command line (common/arg.cpp flag names at 0c1e570); ``-c`` is the total over
        slots. Flags at their defaults are left out."""
        cmd = Cmd().add(artifact.make).add("llama-server", artifact.ref, "-c", d.context * d.sequences)
        cmd.add("-np", d.sequences)  # always: llama-server without -np runs 4 slots (-np auto, server.cpp)
        _common_flags(cmd, d, o)
        if d.mtp:
            cmd.add("--spec-type", "draft-mtp", "--spec-draft-n-max", o.draft_tokens)
            if o.draft_kv_cache and o.draft_kv_cache != "f16":
                cmd.add("-ctkd", o.draft_kv_cache, "-ctvd", o.draft_kv_cache)
        return cmd

    # traced formulas --------------------------------------------------------------------------------
    def calc_kv_types_for(self, spec: ModelSpec) -> tuple[str, ...]:
        return tuple(kv for kv in self.calc_kv_types if self.kv_fits(spec, kv))

    def kv_fits(self, spec: ModelSpec, kv: str) -> bool:
        """Whether this model's KV rows hold whole blocks of ``kv`` (see :meth:`check`)."""
        width = spec.text.num_key_value_heads * spec.text.head_dim
        return kv in LLAMA_KV_TYPES and width % GGML_TYPES[LLAMA_KV_TYPES[kv]].block_size == 0

    def prepare_formulas(self, spec: ModelSpec) -> None:
        """The compute buffer's closed forms for the calculator's structures (flash attention on,
        ubatch 512, f16/bf16 or quantized KV): stored for every catalog model
        (scripts/llama_compute_formulas.py); a model outside them has them derived here, from the
        same allocator replay, checked against it on random points, and kept for this process."""
        from qwenfit.core.engines.llama_cpp.compute import (
            Structure,
            compute_tree,
            kv_class,
            model_key,
            register_tree,
        )
        from qwenfit.core.engines.llama_cpp.derive import derive_checked

        classes = {kv_class(kv) for kv in self.calc_kv_types_for(spec)}
        for k in sorted(classes):
            st = Structure(flash_attn=True, k=k, v=k, n_ubatch=512)
            if compute_tree(spec, st) is None:
                tree, _ = derive_checked(spec, st, n_check=60)
                register_tree(model_key(spec), st.key(), tree)

    def formula_placements(self, spec: ModelSpec) -> list[FormulaPlacement]:
        return [
            *(FormulaPlacement(f"gpu{n}", n) for n in CALC_GPUS),
            FormulaPlacement("cpu", 0, cpu_only=True),
        ]

    def formula_placement(self, p: Placement) -> FormulaPlacement | None:
        if p.kind == "cpu":
            return FormulaPlacement("cpu", 0, cpu_only=True)
        if p.n_gpu_layers is None and p.tensor_split is None and p.kind in ("gpu", "n_cpu_moe"):
            return FormulaPlacement(f"gpu{p.n_gpus}", p.n_gpus)
        return None

    def formula_options(self, spec: ModelSpec, fp: FormulaPlacement, variables: Mapping[str, Any]) -> Any:
        # a front end without expert offload (Ollama, llama-cpp-python) has no --n-cpu-moe to vary
        n_cpu_moe = variables["n_cpu_moe"] if spec.is_moe and not fp.cpu_only and self.expert_offload else 0
        return LlamaCppOptions(n_cpu_moe=n_cpu_moe)

    def calc_hardware_inputs(self, device: Device | None, fp: FormulaPlacement) -> dict[str, int]:
        if fp.cpu_only or device is None:
            return {"reserve": 0 if fp.cpu_only else RUNTIME_RESERVE["cuda"], **backend_inputs("cuda")}
        backend = device.backends[0] if device.backends else "cuda"
        return {"reserve": RUNTIME_RESERVE.get(backend, 0), **backend_inputs(backend)}

    # speed --------------------------------------------------------------------------------------------
    def read_inputs(self, spec: ModelSpec, weights: WeightMap, p: Placement) -> dict[str, Any]:
        layout = llama_layout(
            spec, n_gpus=self.placement_gpus(p), n_gpu_layers=p.n_gpu_layers, tensor_split=p.tensor_split
        )
        return dict(llama_read_env(spec, weights, layout))

    def decode_reads(
        self, spec: ModelSpec, reads: Mapping[str, Any], p: Placement, o: Any
    ) -> tuple[Num, Num, Num]:
        """Experts of ``--n-cpu-moe`` layers are read from host RAM; every layer with tensors on the
        CPU (offloaded experts, or layers beyond ``-ngl``) costs a graph split."""
        n = o.n_cpu_moe if o is not None else p.n_cpu_moe
        moved = at(reads["rexps"], n) if isinstance(n, Expr) or n else 0
        cpu_layers = 0
        if p.kind != "cpu" and p.n_gpu_layers is not None:
            layout = llama_layout(
                spec, n_gpus=p.n_gpus, n_gpu_layers=p.n_gpu_layers, tensor_split=p.tensor_split
            )
            cpu_layers = sum(1 for dev in layout.layer_device[:-1] if dev == "cpu")
        return reads["r:gpu"] - moved, reads["r:cpu"] + moved, n + cpu_layers


def share(x: float) -> str:
    """A ``-ts`` share as llama.cpp's flag takes it (``3``, ``1.5``)."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _common_flags(cmd: Cmd, d: Deployment, o: LlamaCppOptions) -> None:
    """The flags llama-server and llama-cli share: placement, batch sizes, attention and KV cache."""
    if d.backend == "cpu" or d.n_gpus == 0:
        cmd.add("-ngl", "0", "--device", "none")
    else:
        cmd.add("-ngl", "all" if o.n_gpu_layers is None else str(o.n_gpu_layers))
        for ot in o.override_tensor:
            cmd.add("-ot", ot)
        cmd.add("--n-cpu-moe", o.n_cpu_moe, when=lt(0, o.n_cpu_moe))
        if o.split_mode != "layer":
            cmd.add("-sm", o.split_mode)
        elif d.n_gpus > 1:
            cmd.add("-ts", ",".join(share(s) for s in (o.tensor_split or (1,) * d.n_gpus)))
    if o.ubatch != 512:
        cmd.add("-ub", o.ubatch)
    if o.batch != 2048:
        cmd.add("-b", o.batch)
    cmd.add("-fa", "on" if o.flash_attention else "off")
    if d.kv_cache and d.kv_cache != "f16":
        cmd.add("-ctk", d.kv_cache, "-ctv", d.kv_cache)
    if o.kv_unified:
        cmd.add("--kv-unified")
    if not o.kv_offload:
        cmd.add("-nkvo")


def _skew(split: tuple[float, ...], first: float) -> tuple[float, ...]:
    """``split`` with the first GPU's share ``first`` times larger (two decimals, as -ts prints it)."""
    return (round(split[0] * first, 2), *split[1:])


def _split_shares(first: float, n_gpus: int) -> tuple[int, ...]:
    """``-ts`` shares giving the first GPU ``first`` times the layers of each other one (integers)."""
    scale = 2 if first != int(first) else 1
    return (int(first * scale), *([scale] * (n_gpus - 1)))


LLAMA_CPP = LlamaCpp()
