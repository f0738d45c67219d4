#!/usr/bin/env python3
# ruff: noqa: E501  (SGLANG_SOURCES quotes file:line ranges)
"""Fixtures of the memory that SGLang, mlx-lm and transformers allocate for Qwen3.5.

Three sections, each written to ``tests/fixtures/python_engines/<engine>.json``; the tests
(``tests/engines/test_python_engines.py``) read them without importing torch.

``transformers`` (run in the helper venv with torch + transformers, e.g. /work/venvs/fixtures)
    Real forward passes and one generate() of the tiny checkpoints in tests/fixtures/tiny, and every
    tensor of the cache objects they return (``_pyengine_transformers``).

``sglang`` (run in a venv with the CPU torch and SGLang's pure-Python dependencies, see
``_pyengine_sglang.VENV_REQUIREMENTS``)
    SGLang's own code imported from the pinned wheel: server-argument resolution
    (mem_fraction_static, chunked prefill, CUDA-graph batch sizes, the radix-cache strategy) and the
    pool sizing (state slots, KV tokens, max running requests) over a grid of GPU memory sizes,
    tensor-parallel sizes and models (``_pyengine_sglang``).

``mlx`` (any Python; reads the mlx-lm wheel, which is pure Python, but cannot run MLX without Apple)
    The constants and allocation rules qwenfit transcribes, each with the wheel version, file and
    line, and the text of that line checked against the wheel (``_pyengine_mlx``).

Usage::

    /work/venvs/fixtures/bin/python scripts/python_engine_fixtures.py transformers
    python3 scripts/python_engine_fixtures.py mlx
    python3.11 -m venv /work/venvs/sglang && /work/venvs/sglang/bin/pip install torch==2.13.0
    /work/venvs/sglang/bin/python scripts/python_engine_fixtures.py --install-deps sglang
    /work/venvs/sglang/bin/python scripts/python_engine_fixtures.py sglang        # ~3 min

Engine sources are never copied into the repository: wheels are fetched with
``pip download --no-deps`` into ``~/.cache/qwenfit/<engine>`` and unzipped there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = REPO / "tests" / "fixtures" / "python_engines"
sys.dont_write_bytecode = True
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

SGLANG_MODELS = ["Qwen3.5-9B", "Qwen3.5-27B", "Qwen3.5-35B-A3B", "Qwen3.5-122B-A10B", "Qwen3.5-397B-A17B"]
SGLANG_GPU_GB = [24, 48, 80, 141, 192]
SGLANG_TPS = [1, 2, 4, 8]


def write(name: str, data: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path.relative_to(REPO)}")


def run_transformers() -> None:
    import _pyengine_transformers as T

    write("transformers", T.measure(REPO))


def run_mlx() -> None:
    import _pyengine_mlx as M

    write("mlx", M.transcribe(M.ensure_source()))


def _model_dir(tmp: Path, name: str) -> Path:
    cfg = json.loads((REPO / "data" / "models" / f"{name}.json").read_text())
    cfg.pop("_qwenfit", None)
    d = tmp / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def run_sglang(quick: bool = False) -> None:
    import tempfile

    import _pyengine_sglang as S

    import qwenfit
    from qwenfit.core.engines.sglang import rank_weights, sglang_cuda_context_bytes
    from qwenfit.core.formats.gpu import gpu_weights

    sg = S.Sglang(S.ensure_source())
    rows = []
    t0 = time.time()
    models = SGLANG_MODELS[:2] if quick else SGLANG_MODELS
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            spec = qwenfit.load(name)
            d = _model_dir(Path(tmp), name)
            w = gpu_weights(spec, "bf16", mtp=False, vision=True)
            for gb in SGLANG_GPU_GB:
                memory = gb * 10**9
                gpu_mib = float(memory // (1 << 20))  # nvidia-smi memory.total, MiB
                for tp in SGLANG_TPS:
                    for radix in (True, False):
                        if not radix and tp not in (1, 8):
                            continue
                        row: dict = {"model": name, "gpu_bytes": memory, "gpu_mib": gpu_mib, "tp": tp,
                                     "radix_cache": radix}  # fmt: skip
                        try:
                            sa = sg.resolve(
                                d, gpu_mib, tp, language_model_only=False, disable_radix_cache=not radix
                            )
                        except (ValueError, RuntimeError, AssertionError) as exc:
                            row["resolve_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                            rows.append(row)
                            continue
                        row.update(sg.server_settings(sa))
                        weights, _ = rank_weights(spec, w, tp)
                        pre = (memory - sglang_cuda_context_bytes(tp)) / (1 << 30)
                        row.update(weights_bytes=weights, pre_model_load_gib=pre)
                        row.update(sg.pools(sa, pre_model_load_gib=pre, weights_bytes=weights))
                        rows.append(row)
            print(f"{name}: {len(rows)} rows, {time.time() - t0:.0f}s", flush=True)
        # kv cache dtypes on one model
        spec = qwenfit.load("Qwen3.5-35B-A3B")
        d = _model_dir(Path(tmp), "Qwen3.5-35B-A3B")
        for kv in ("fp8_e4m3", "fp8_e5m2"):
            sa = sg.resolve(
                d, float(141 * 10**9 // (1 << 20)), 1, language_model_only=False, kv_cache_dtype=kv
            )
            row = {"model": "Qwen3.5-35B-A3B", "gpu_bytes": 141 * 10**9, "tp": 1, "radix_cache": True,
                   "kv_cache_dtype": kv}  # fmt: skip
            w = gpu_weights(spec, "bf16", mtp=False, vision=True)
            weights, _ = rank_weights(spec, w, 1)
            pre = (141 * 10**9 - sglang_cuda_context_bytes(1)) / (1 << 30)
            row.update(sg.server_settings(sa), weights_bytes=weights, pre_model_load_gib=pre)
            row.update(sg.pools(sa, pre_model_load_gib=pre, weights_bytes=weights))
            rows.append(row)
    data = {
        "sglang_version": sg.version,
        "source": "pip download --no-deps sglang==" + S.SGLANG_PIN + " (pure-Python parts of the wheel)",
        "stubs": [
            line.strip()
            for line in (S.__doc__ or "")
            .split("Stubs (each unavoidable without a GPU):")[1]
            .strip()
            .split("\n\n")
        ],
        "inputs": "weights_bytes = qwenfit rank_weights(gpu_weights(spec, 'bf16', vision=True), tp); "
        "pre_model_load_gib = (gpu_bytes - qwenfit sglang_cuda_context_bytes(tp)) / 2**30 (an estimate of "
        "the free memory before the weights load); free memory after loading = pre - weights",
        "sources": SGLANG_SOURCES,
        "rows": rows,
    }
    if quick:
        print(json.dumps(rows[:3], indent=1))
        return
    write("sglang", data)


# file:line in the sglang 0.5.23 wheel for every rule qwenfit transcribes (checked by --check-sources)
SGLANG_SOURCES = {
    "gpu tiers -> chunked_prefill_size, decode cuda graph max_bs": "sglang/srt/arg_groups/memory_hook.py:89-180",
    "reserved_mem = 512 + 1.5*max(chunk,2048) + tp*pp/8*1024 + graph; >=10 GiB above 60 GiB":
        "sglang/srt/arg_groups/memory_hook.py:305-315",
    "graph reserve = 2*decode max_bs (+8 per prefill graph size; prefill graphs disabled for Qwen3.5)":
        "sglang/srt/arg_groups/memory_hook.py:357-399",
    "mem_fraction_static = round((gpu_mem - reserved_mem) / gpu_mem, 3)": "sglang/srt/arg_groups/memory_hook.py:324-328",
    "VLM: mem_fraction_static *= 0.95 * clamp(1 - 0.1*(24*h^2/(24*1024^2) - 1), 0.8, 1.05)":
        "sglang/srt/arg_groups/memory_hook.py:417-462",
    "--language-model-only rejects Qwen3_5(Moe)ForConditionalGeneration": "sglang/srt/arg_groups/model_hook.py:1106",
    "mm reservation SGLANG_VLM_CACHE_SIZE_MB = 100": "sglang/srt/mem_cache/kv_cache_configurator.py:202-224; "
        "sglang/srt/environ.py:1598",
    "rest = free after load - pre_load*(1 - mem_fraction_static) - mm reservation":
        "sglang/srt/mem_cache/kv_cache_configurator.py:2990-3060",
    "state slots per running request: 3 (+2 extra_buffer with overlap), 1 without radix cache":
        "sglang/srt/mem_cache/kv_cache_configurator.py:227-229, 3062-3088; sglang/srt/mem_cache/allocation_sizing.py:11-19",
    "extra_buffer on CUDA when overlap schedule and linear_attn_backend triton": "sglang/srt/arg_groups/overrides.py:438-487",
    "mamba budget = rest*r/(1+r), r = --mamba-full-memory-ratio 0.9; K = int((budget - per_req)//per_req); "
    "state memory (K+1)*per_req": "sglang/srt/mem_cache/kv_cache_configurator.py:3345-3409; "
        "sglang/srt/arg_groups/fields/schedule.py:220-227",
    "max_running_requests = min(clamp(int(tokens/context_len*512), 2048, 4096), tokens//2, K//ratio)":
        "sglang/srt/mem_cache/kv_cache_configurator.py:3119-3172",
    "KV cell = kv_heads_per_rank*(head_dim+v_head_dim)*full_attention_layers*dtype bytes; tokens = bytes//cell":
        "sglang/srt/model_executor/pool_configurator.py:225-240, 474-480, 637-647",
    "kv heads per rank = max(1, kv_heads // tp)": "sglang/srt/configs/model_config.py:1700-1711",
    "GDN state: conv (conv_dim/tp, K-1) bf16 (SGLANG_MAMBA_CONV_DTYPE), temporal (nv/tp, dv, dk) in "
    "config mamba_ssm_dtype (default float32)": "sglang/srt/configs/mamba_utils.py:47-107, 195-243; "
        "sglang/srt/configs/qwen3_next.py:288-313",
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("engine", choices=["transformers", "sglang", "mlx"])
    ap.add_argument("--install-deps", action="store_true", help="pip-install the sglang venv's requirements")
    ap.add_argument("--quick", action="store_true", help="sglang: two models, print, do not write")
    args = ap.parse_args()
    if args.install_deps:
        import _pyengine_sglang as S

        S.install_deps()
        return
    {"transformers": run_transformers, "mlx": run_mlx, "sglang": lambda: run_sglang(args.quick)}[
        args.engine
    ]()


if __name__ == "__main__":
    main()
