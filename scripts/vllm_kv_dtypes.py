#!/usr/bin/env python3
"""Fixture: every ``--kv-cache-dtype`` vLLM accepts, for every Qwen3.5 / Qwen3-Next catalog model, on CUDA.

Two parts, both computed by vLLM's own code imported from the pinned wheel (``_vllm_env``):

``selection``: for every name of ``vllm.config.cache.KV_CACHE_DTYPES`` and every CUDA compute
capability in ``CAPABILITIES``, what vLLM does when the model's attention layers are built: the
``VllmConfig`` check (``_reject_mismatched_float_kv_cache``), the attention backend vLLM's CUDA
selector picks (``vllm.v1.attention.selector.get_attn_backend`` -> ``CudaPlatformBase
.get_attn_backend_cls``: priorities + every backend's ``validate_configuration``), the backends it
found valid, the error it raises (its message, verbatim), the ``TritonAttentionImpl`` refusal
(FP8 below SM89), and the selected backend's KV page for one token (``customize_attention_spec``:
head slots x bytes per slot) and kernel block sizes. Checked identical for every model (the
models share head_dim 256, GQA, gated attention), so it is stored once.

``rows``: for every model x TP {1,2,4,8} x accepted dtype x (prefix caching off; on with the
Triton GDN prefill; on with the FlashInfer GDN prefill + 1 MTP token), the KV pool vLLM plans
(``_vllm_imported.compute``: attention page per token, Gated DeltaNet state, the attention block
size ``_align_hybrid_block_size`` picks, mamba padding, KV cache groups, bytes per block, blocks per
request) with the attention backend vLLM selects for that dtype. A dtype served by different
backends on different GPU generations (fp8: FLASH_ATTN on SM90, FLASHINFER elsewhere) is computed
with each (on a capability where it is selected: ``checked_with``) and the numbers must be
identical, or nothing is written; the Gated DeltaNet state dtypes must be the same for every KV
dtype (``gdn_state_dtypes``, per model).

Stubs beyond ``_vllm_env.STUBS`` (listed in the fixture's ``stubs``): see ``STUBS`` below.

How to run (the venv of scripts/vllm_fixtures.py; about 1 minute)::

    QWENFIT_VLLM_CACHE=/work/cache/vllm /work/venvs/vllm/bin/python scripts/vllm_kv_dtypes.py

Options: ``--cache DIR``, ``--out DIR`` (default ``tests/fixtures/vllm``), ``--models GLOB``,
``--quick`` (9B only, TP 1; prints, does not write).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.machinery
import itertools
import json
import sys
import time
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import _vllm_env as env  # noqa: E402

TPS = [1, 2, 4, 8]
GIB = 1 << 30
POOL_40GIB = 40 * GIB
# (prefix caching, GDN prefill backend, MTP tokens)
COMBOS = [(False, "-", 0), (True, "triton", 0), (True, "flashinfer", 1)]
CAPABILITIES = [
    ((8, 0), "A100"),
    ((8, 6), "RTX 3090 / A6000"),
    ((8, 9), "RTX 4090 / L40S"),
    ((9, 0), "H100 / H200"),
    ((10, 0), "B200 / GB200"),
    ((10, 3), "B300 / GB300"),
    ((11, 0), "Jetson Thor"),
    ((12, 0), "RTX 5090 / RTX PRO 6000"),
    ((12, 1), "GB10 (DGX Spark)"),
]

STUBS = [
    "vllm._C_stable_libtorch: an empty module, so vllm/platforms/cuda.py imports (it is imported only "
    "to register custom ops)",
    "vllm.vllm_flash_attn._vllm_fa2_C / _vllm_fa3_C: empty modules standing for the two extension "
    ".so files the vLLM 0.33.0 wheel ships, so FA2/FA3 count as available as on a CUDA install "
    "(FA4 is available from the wheel's cute/interface.py, unchanged)",
    "flashinfer, flashinfer.decode, flashinfer.prefill, flashinfer.utils: placeholder modules "
    "(flashinfer-python 0.7.2.post1 is a vLLM dependency; only FlashInferImpl/the metadata builder "
    "use its functions, none of which runs here)",
    "vllm.utils.flashinfer.has_nvidia_artifactory -> True (TRTLLM cubins downloadable or "
    "flashinfer-cubin installed, as on a normal SM100 install)",
    "GPU: the running platform's get_device_capability / get_device_name return the capability "
    "under test; for backend selection also is_cuda / is_cuda_alike -> True and "
    "get_attn_backend_cls / get_valid_backends / device_name taken from CudaPlatformBase "
    "(vllm/platforms/cuda.py). The attention backend modules are first imported under is_cuda=True, "
    "as on a CUDA machine. The pool rows run on the base Platform with the capability patched only "
    "(as scripts/vllm_fixtures.py does)",
    "TurboQuant boundary layers: arg_utils.create_engine_config adds "
    "TurboQuantConfig.get_boundary_skip_layers(model_config) to kv_cache_dtype_skip_layers; the "
    "function is called here for every model and returns [] (hybrid model), asserted",
]

# key -> (path inside the wheel, exact substring of the cited line, what it is)
SOURCES: dict[str, tuple[str, str, str]] = {
    "cache_dtypes": ("vllm/config/cache.py", "CacheDType = Literal[", "every --kv-cache-dtype name"),
    "float_mismatch": (
        "vllm/config/vllm.py",
        "def _reject_mismatched_float_kv_cache(self)",
        "explicit float16/bfloat16 must equal the model dtype",
    ),
    "quant_mode": ("vllm/v1/kv_cache_interface.py", "def get_kv_quant_mode(", "name -> KVQuantMode"),
    "attn_page": (
        "vllm/v1/kv_cache_interface.py",
        "return self.num_heads * self.num_states * self.state_content_size_bytes",
        "AttentionSpec page = head slots x tokens x bytes per slot",
    ),
    "dense_slot": (
        "vllm/v1/kv_cache_interface.py",
        "return (self.head_size + self.head_size_v) * get_dtype_size(self.dtype)",
        "dense slot: (K + V) x element size",
    ),
    "storage_dtypes": ("vllm/utils/torch_utils.py", "STR_DTYPE_TO_TORCH_DTYPE = {", "storage dtype per name"),
    "cuda_priorities": ("vllm/platforms/cuda.py", "def _get_backend_priorities(", "CUDA backend order"),
    "no_backend": ("vllm/platforms/cuda.py", 'f"No valid attention backend found for', "refusal"),
    "customize_attention_spec": ("vllm/v1/worker/utils.py", "def customize_attention_spec(", "backend spec"),
    "triton_pth": (
        "vllm/v1/attention/backends/triton_attn.py",
        "Per-token-head modes pack inline fp32 scales",
        "per-token-head slot: K + V data + 2 fp32 scales (int4: halves)",
    ),
    "triton_fp8_sm89": (
        "vllm/v1/attention/backends/triton_attn.py",
        "requires SM89+. Re-run with --kv-cache-dtype",
        "TritonAttentionImpl refuses fp8* below SM89",
    ),
    "flashinfer_nvfp4": (
        "vllm/v1/attention/backends/flashinfer.py",
        "NVFP4 stores K and V as separate per-head slots",
        "NVFP4: 2 x kv slots of head/2 + head/16 bytes",
    ),
    "flashinfer_nvfp4_support": (
        "vllm/v1/attention/backends/flashinfer.py",
        "def supports_kv_cache_dtype(cls, kv_cache_dtype: CacheDType | None) -> bool:",
        "nvfp4 on SM80/90/120 (fa2), both nvfp4 names on SM100 (trtllm-gen)",
    ),
    "nvfp4_full_dim": ("vllm/utils/torch_utils.py", "def nvfp4_kv_cache_full_dim(", "head/2 + head/16"),
    "turboquant_slot": (
        "vllm/v1/attention/backends/turboquant_attn.py",
        '"""TurboQuant packs K+V into one slot per head."""',
        "TurboQuant: one packed K|V slot per head",
    ),
    "turboquant_presets": (
        "vllm/model_executor/layers/quantization/turboquant/config.py",
        "TQ_PRESETS: dict[str, dict] = {",
        "key / value bits per preset",
    ),
    "turboquant_boundary": (
        "vllm/model_executor/layers/quantization/turboquant/config.py",
        "if model_config.is_hybrid:",
        "hybrid models: no boundary layers kept at the native dtype",
    ),
    "hybrid_tq_branch": (
        "vllm/platforms/interface.py",
        'cache_config.cache_dtype.startswith("turboquant_")',
        "_align_hybrid_block_size prices TurboQuant with its packed slot",
    ),
    "hybrid_1tok": (
        "vllm/platforms/interface.py",
        "attn_page_size_1_token = backend_cls.customize_spec(",
        "_align_hybrid_block_size: per-token page after the backend's customize_spec",
    ),
    "mamba_dtype": (
        "vllm/model_executor/layers/mamba/mamba_utils.py",
        "def _mamba_state_dtype(",
        "GDN state dtypes: mamba_cache_dtype / mamba_ssm_cache_dtype only",
    ),
    "rocm_only": ("vllm/platforms/rocm.py", "backends.append(AttentionBackendEnum.ROCM_OCTAVE)", "ROCm list"),
}


def resolve_sources(src: Path) -> dict[str, dict]:
    out = {}
    for key, (rel, needle, what) in SOURCES.items():
        lines = (Path(src) / rel).read_text().splitlines()
        hits = [i + 1 for i, line in enumerate(lines) if needle in line]
        if not hits:
            raise SystemExit(f"source citation {key}: {needle!r} not found in {rel}")
        out[key] = {"at": f"{rel}:{hits[0]}", "what": what}
    return out


def _placeholder(name: str) -> types.ModuleType:
    m = env._AnyAttrModule(name)
    m.__path__ = []
    m.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    return m


class Gpu:
    """Patches the running platform class to look like a CUDA GPU of one capability."""

    def __init__(self) -> None:
        from vllm.platforms import current_platform

        self.cls = type(current_platform)

    @contextlib.contextmanager
    def __call__(self, cap: tuple[int, int], cuda: bool):
        import vllm.platforms.cuda as cuda_mod
        from vllm.platforms.interface import DeviceCapability
        from vllm.v1.attention import selector

        dc = DeviceCapability(*cap)
        patches = {
            "get_device_capability": classmethod(lambda c, device_id=0: dc),
            "get_device_name": classmethod(lambda c, device_id=0: f"NVIDIA GPU (SM{cap[0]}{cap[1]})"),
        }
        if cuda:
            patches.update(
                is_cuda=lambda self: True,
                is_cuda_alike=lambda self: True,
                get_attn_backend_cls=cuda_mod.CudaPlatformBase.__dict__["get_attn_backend_cls"],
                get_valid_backends=cuda_mod.CudaPlatformBase.__dict__["get_valid_backends"],
                device_name="cuda",
            )
        saved = {k: self.cls.__dict__.get(k) for k in patches}
        for k, v in patches.items():
            setattr(self.cls, k, v)
        selector._cached_get_attn_backend.cache_clear()
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    delattr(self.cls, k)
                else:
                    setattr(self.cls, k, v)
            selector._cached_get_attn_backend.cache_clear()


def setup(src: Path) -> Gpu:
    env.bootstrap(src)
    sys.modules.setdefault("vllm._C_stable_libtorch", types.ModuleType("vllm._C_stable_libtorch"))
    for ext in ("_vllm_fa2_C", "_vllm_fa3_C"):
        sys.modules.setdefault(f"vllm.vllm_flash_attn.{ext}", types.ModuleType(f"vllm.vllm_flash_attn.{ext}"))
    for name in ("flashinfer", "flashinfer.decode", "flashinfer.prefill", "flashinfer.utils"):
        sys.modules.setdefault(name, _placeholder(name))
    import vllm.utils.flashinfer as ufi

    ufi.has_nvidia_artifactory = lambda: True
    import vllm.platforms.cuda  # noqa: F401

    gpu = Gpu()
    if "vllm.v1.attention.backends.fa_utils" in sys.modules:
        raise SystemExit("fa_utils was imported before the CUDA patch; its FlashAttention names are missing")
    from vllm.v1.attention.backends.registry import AttentionBackendEnum

    with gpu((9, 0), cuda=True):
        for b in ("FLASH_ATTN", "FLASHINFER", "TRITON_ATTN", "FLEX_ATTENTION", "TURBOQUANT"):
            AttentionBackendEnum[b].get_class()
    return gpu


def _first_line(e: BaseException) -> str:
    msg = str(e)
    if "Value error, " in msg:  # pydantic wraps the ValueError of a model validator
        msg = msg.split("Value error, ", 1)[1].split(" [type=")[0]
    return msg.strip()


def select(imp, gpu: Gpu, mdir: Path, kv: str, cap: tuple[int, int]) -> dict:
    """What vLLM does with ``--kv-cache-dtype kv`` for this model on a GPU of capability ``cap``."""
    from vllm.config import set_current_vllm_config
    from vllm.platforms import current_platform
    from vllm.platforms.interface import DeviceCapability
    from vllm.utils.torch_utils import kv_cache_dtype_str_to_dtype
    from vllm.v1.attention.selector import AttentionSelectorConfig, get_attn_backend
    from vllm.v1.kv_cache_interface import FullAttentionSpec, get_kv_quant_mode
    from vllm.v1.worker.utils import customize_attention_spec

    try:
        vc = imp.build_config(mdir, 1, kv, False, 0)
    except Exception as e:  # vLLM's own refusal (pydantic wraps it), recorded verbatim
        return {"refused_by": "VllmConfig", "error": _first_line(e)}
    mc, pc = vc.model_config, vc.parallel_config
    with gpu(cap, cuda=True), set_current_vllm_config(vc):
        sel = AttentionSelectorConfig(
            head_size=mc.get_head_size(), dtype=mc.dtype, kv_cache_dtype=kv, block_size=None,
            use_mm_prefix=mc.is_mm_prefix_lm,
        )  # fmt: skip
        valid, _ = current_platform.get_valid_backends(
            DeviceCapability(*cap), sel, num_heads=mc.get_num_attention_heads(pc)
        )
        out: dict = {"valid": [c.backend.name for c in sorted(valid, key=lambda c: c.priority)]}
        try:
            backend = get_attn_backend(
                mc.get_head_size(), mc.dtype, kv, use_mm_prefix=mc.is_mm_prefix_lm, attn_type="decoder"
            )
        except ValueError as e:
            out.update(refused_by="attention backend selection", error=str(e))  # its Reasons: every backend
            return out
        out["backend"] = backend.get_name()
        if backend.get_name() == "TRITON_ATTN":
            nh, nkv, hd = mc.get_num_attention_heads(pc), mc.get_num_kv_heads(pc), mc.get_head_size()
            try:
                backend.get_impl_cls()(nh, hd, hd**-0.5, nkv, None, None, kv)
            except ValueError as e:
                out.update(refused_by="TritonAttentionImpl", error=str(e))
                return out
        spec = customize_attention_spec(
            backend,
            FullAttentionSpec(
                block_size=1,
                num_kv_heads=mc.get_num_kv_heads(pc),
                head_size=mc.get_head_size(),
                dtype=kv_cache_dtype_str_to_dtype(kv, mc),
                kv_quant_mode=get_kv_quant_mode(kv),
            ),
        )
        sizes = backend.get_supported_kernel_block_sizes(spec)
        out.update(
            kv_quant_mode=get_kv_quant_mode(kv).name,
            storage_dtype=str(spec.dtype).replace("torch.", ""),
            head_slots_per_kv_head=spec.num_heads // mc.get_num_kv_heads(pc),
            slot_bytes=spec.state_content_size_bytes,
            bytes_per_kv_head_token=spec.page_size_bytes // mc.get_num_kv_heads(pc),
            kernel_block_sizes=[str(s) for s in sizes],
            min_kernel_block=min(getattr(s, "base", s) for s in sizes),
        )
        return out


def selection_table(imp, gpu: Gpu, model_dirs: dict[str, Path], names: list[str]) -> dict:
    """{dtype: {"8.0": result, ...}}, identical for every model (else SystemExit)."""
    table: dict[str, dict[str, dict]] = {}
    for kv in names:
        table[kv] = {}
        for cap, _gpu_name in CAPABILITIES:
            per_model = {m: select(imp, gpu, d, kv, cap) for m, d in model_dirs.items()}
            first = next(iter(per_model.values()))
            for m, r in per_model.items():
                if r != first:
                    raise SystemExit(f"selection differs by model: {kv} {cap} {m}: {r} vs {first}")
            table[kv][f"{cap[0]}.{cap[1]}"] = first
        print(kv, {c: r.get("backend") or r["refused_by"] for c, r in table[kv].items()}, flush=True)
    return table


def configs_for(sel: dict[str, dict]) -> list[tuple[str, tuple[int, int]]]:
    """(backend, capability) pairs to compute a dtype with: one per distinct backend + kernel sizes."""
    seen, out = set(), []
    for cap_s, r in sel.items():
        if "backend" not in r or "refused_by" in r:
            continue
        key = (r["backend"], tuple(r["kernel_block_sizes"]))
        if key not in seen:
            seen.add(key)
            out.append((r["backend"], tuple(int(x) for x in cap_s.split("."))))
    return out


COLUMNS = [
    "model",
    "tp",
    "kv_cache_dtype",
    "prefix_caching",
    "gdn_prefill",
    "num_spec",
    "kv_heads_per_rank",
    "attn_bytes_per_token",  # one full-attention layer, one rank: page / block_size
    "mamba_page",
    "block_size",
    "mamba_block_size",
    "page",
    "padding_pct",
    "log_padding",
    "attn_groups",
    "mamba_groups",
    "bytes_per_block",
    "attn_blocks_per_req",
    "mamba_blocks_per_req",
    "bytes_one_req",
    "num_blocks_40g",
    "concurrency_40g",
]


def pool_row(imp, gpu: Gpu, name: str, mdir: Path, tp: int, kv: str, combo, configs, states) -> list | None:
    """One fixture row, computed with every (backend, capability) of ``configs``; they must agree.
    ``states`` collects the GDN state dtypes vLLM gave (the KV dtype must not change them)."""
    from vllm.v1.attention.backends.registry import AttentionBackendEnum

    pc, gdn, spec = combo
    results = []
    for backend, cap in configs:
        imp.get_backend = lambda n: AttentionBackendEnum[n].get_class()
        with gpu(cap, cuda=False):
            try:
                real = imp.compute(mdir, tp, kv, pc, spec, gdn if pc else "triton", backend, [POOL_40GIB])
            except (ValueError, AssertionError) as e:
                if kv == "auto":
                    return None  # a TP vLLM refuses whatever the dtype (scripts/vllm_fixtures.py)
                raise SystemExit(f"{name} tp={tp} {kv}: vLLM refuses ({e}) though auto works") from e
        attn = sorted(g["n_layers"] for g in real["groups"] if g["kind"] == "attention")
        mamba = sorted(g["n_layers"] for g in real["groups"] if g["kind"] == "mamba")
        bpr = {g["kind"]: g["blocks_per_request"] for g in real["groups"]}
        page, block, mp = real["attn_spec_page_bytes"], real["block_size"], real["mamba_page_bytes_unpadded"]
        if page % block or real["mamba_spec_page_bytes"] != page:
            raise SystemExit(
                f"{name} tp={tp} {kv}: page {page} block {block} {real['mamba_spec_page_bytes']}"
            )
        pad_logs = [ln for ln in real["log"] if ln.startswith("Padding mamba")]
        log_pad = pad_logs[0].split("by ")[1].split(" ")[0] if pad_logs else None
        p40 = real["pools"][0]
        results.append(
            [
                real["num_kv_heads_per_rank"],
                page // block,
                mp,
                block,
                real["mamba_block_size"],
                page,
                round(100 * (page - mp) / mp, 6),
                log_pad,
                attn,
                mamba,
                real["bytes_per_block"],
                bpr["attention"],
                bpr["mamba"],
                real["bytes_one_request"],
                p40.get("num_blocks"),
                p40.get("max_concurrency"),
            ]
        )
        states.append(real["state_dtypes"])
    if any(r != results[0] for r in results):
        raise SystemExit(f"{name} tp={tp} {kv} {combo}: backends disagree: {configs} {results}")
    return [name, tp, kv, pc, gdn, spec, *results[0]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=env.DEFAULT_CACHE)
    ap.add_argument("--pin", default=env.VLLM_PIN)
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "vllm")
    ap.add_argument("--models", default="*.json")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()

    src = env.ensure_source(args.pin, args.cache)
    version = env.wheel_version(src)
    if version != args.pin:
        raise SystemExit(f"wheel says {version}, pin is {args.pin}")
    gpu = setup(src)
    import _vllm_imported as imp
    from vllm.config.cache import KV_CACHE_DTYPES
    from vllm.model_executor.layers.quantization.turboquant.config import TurboQuantConfig

    t0 = time.time()
    root = imp.tmp_models_root()
    files = sorted((REPO / "data" / "models").glob("Qwen3.5-9B.json" if args.quick else args.models))
    model_dirs = {f.stem: imp.write_model_dir(f, root) for f in files}
    names = list(KV_CACHE_DTYPES)

    boundary = {}
    for m, d in model_dirs.items():
        vc = imp.build_config(d, 1, "turboquant_k8v4", False, 0)
        boundary[m] = TurboQuantConfig.get_boundary_skip_layers(vc.model_config)
        if boundary[m]:
            raise SystemExit(f"{m}: TurboQuant boundary layers {boundary[m]} (per-layer dtypes not handled)")

    sel = selection_table(imp, gpu, model_dirs, names)
    accepted = [kv for kv in names if configs_for(sel[kv])]
    print("accepted:", accepted, f"{time.time() - t0:.0f}s", flush=True)

    rows, state_dtypes = [], {}
    for (name, mdir), tp, kv, combo in itertools.product(
        model_dirs.items(), [1] if args.quick else TPS, accepted, COMBOS
    ):
        states: list = []
        row = pool_row(imp, gpu, name, mdir, tp, kv, combo, configs_for(sel[kv]), states)
        if row is None:
            continue
        if any(st != state_dtypes.setdefault(name, states[0]) for st in states):
            raise SystemExit(f"{name} {kv}: GDN state dtypes {states} != {state_dtypes[name]}")
        rows.append(row)
        print(*row[:6], "block", row[9], "pad", row[12], flush=True)
    print(f"{len(rows)} rows, {time.time() - t0:.0f}s")
    if args.quick:
        return
    doc = {
        "vllm_version": version,
        "generated_by": "scripts/vllm_kv_dtypes.py",
        "max_model_len": imp.MAX_MODEL_LEN,
        "stubs": env.STUBS + STUBS,
        "sources": resolve_sources(src),
        "capabilities": {f"{c[0]}.{c[1]}": g for c, g in CAPABILITIES},
        "vllm_kv_cache_dtypes": names,
        "accepted": accepted,
        "turboquant_boundary_skip_layers": boundary,
        "gdn_state_dtypes": state_dtypes,  # conv, SSM: the same for every KV dtype (asserted)
        "checked_with": {kv: [f"{b}@{c[0]}.{c[1]}" for b, c in configs_for(sel[kv])] for kv in accepted},
        "selection": sel,
        "columns": COLUMNS,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "qwen35_kv_dtypes.json"
    text = json.dumps(doc, separators=(",", ":"))
    out.write_text(text + "\n")
    print(f"wrote {out} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
