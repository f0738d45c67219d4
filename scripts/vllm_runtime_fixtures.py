"""vLLM 0.33.0's CUDA-graph capture plan and sampler buffers, from its own code, for
qwenfit.core.engines.vllm.runtime (tests/engines/test_vllm_runtime.py).

Runs, on a CPU-only machine, with the wheel's source (scripts/_vllm_env.py; stubs listed there):

- ``VllmConfig._set_cudagraph_sizes`` (config/vllm.py:2398) on a stand-in config object carrying only the
  attributes it reads (scheduler max_num_seqs / max_num_batched_tokens, uniform_decode_query_len, a real
  ``CompilationConfig`` with cudagraph_mode FULL_AND_PIECEWISE, performance_mode "balanced"), and
- ``ModelCudaGraphManager._init_candidates`` (v1/worker/gpu/cudagraph_utils.py:256) on a stand-in manager,
  giving the FULL (uniform decode) and PIECEWISE descriptors vLLM captures,
- ``PenaltiesState`` (v1/worker/gpu/sample/penalties.py:27) built on the CPU device: the persistent
  vocab-sized sampler buffers.

Writes tests/fixtures/vllm/runtime_cudagraph_sizes.json. Usage (the venv of scripts/vllm_fixtures.py)::

    QWENFIT_VLLM_CACHE=/work/cache/vllm /work/venvs/vllm/bin/python scripts/vllm_runtime_fixtures.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import _vllm_env as env  # noqa: E402

OUT = REPO / "tests" / "fixtures" / "vllm" / "runtime_cudagraph_sizes.json"
SEQS = [1, 2, 4, 8, 16, 128, 256, 512, 1024]
MNBT = [2048, 8192, 16384, 65536]
SPEC = [0, 1, 3]


def capture_sizes(seqs: int, mnbt: int, k: int, sm100: bool) -> tuple[list[int], list[int], list[int]]:
    from vllm.config.compilation import CompilationConfig, CUDAGraphMode
    from vllm.config.vllm import VllmConfig
    from vllm.platforms import current_platform
    from vllm.v1.worker.gpu.cudagraph_utils import ModelCudaGraphManager

    type(current_platform).is_device_capability_family = classmethod(  # type: ignore[method-assign]
        lambda cls, fam, device_id=0: sm100 and fam == 100
    )
    cc = CompilationConfig(cudagraph_mode=CUDAGraphMode.FULL_AND_PIECEWISE)
    spec = None if k == 0 else SimpleNamespace(uses_dynamic_speculative_decoding=lambda: False)
    cfg = SimpleNamespace(
        model_config=SimpleNamespace(enforce_eager=False),
        compilation_config=cc,
        scheduler_config=SimpleNamespace(max_num_seqs=seqs, max_num_batched_tokens=mnbt),
        speculative_config=spec,
        uniform_decode_query_len=1 + k,
        num_speculative_tokens=k,
        performance_mode="balanced",
    )
    VllmConfig._set_cudagraph_sizes(cfg)  # type: ignore[arg-type]
    sizes = list(cc.cudagraph_capture_sizes)
    mgr = SimpleNamespace(
        compilation_config=cc,
        cudagraph_mode=CUDAGraphMode.FULL_AND_PIECEWISE,
        max_num_reqs=seqs,
        decode_query_len=1 + k,
        vllm_config=SimpleNamespace(
            speculative_config=None, num_speculative_tokens=k,
            cache_config=SimpleNamespace(use_kda_recoverssm=False),
        ),
        varlen_decode=False,
        lora_capture_cases=[0],
        ubatch_runner=None,
        _capture_descs={},
        _candidates={},
        _maybe_ubatch_twin=lambda desc: None,
    )  # fmt: skip
    ModelCudaGraphManager._init_candidates(mgr)  # type: ignore[arg-type]
    full = sorted(d.num_tokens for d in mgr._capture_descs.get(CUDAGraphMode.FULL, []))
    pw = sorted(d.num_tokens for d in mgr._capture_descs.get(CUDAGraphMode.PIECEWISE, []))
    return sizes, full, pw


def penalties_bytes(seqs: int, vocab: int) -> int:
    import torch
    import vllm.v1.worker.gpu.buffer_utils as bu
    from vllm.v1.worker.gpu.sample.penalties import PenaltiesState

    def _host_buffer(self: object, size: object, dtype: torch.dtype) -> None:  # no pinned memory here
        self.cpu = torch.zeros(size, dtype=dtype)  # type: ignore[attr-defined]
        self.np = self.cpu.numpy()  # type: ignore[attr-defined]
        self._uva = self.cpu  # type: ignore[attr-defined]

    bu.UvaBuffer.__init__ = _host_buffer  # type: ignore[method-assign,assignment]
    req = SimpleNamespace(max_num_reqs=seqs, vocab_size=vocab, device=torch.device("cpu"))
    p = PenaltiesState(None, req)  # type: ignore[arg-type]
    return sum(t.numel() * t.element_size() for t in (p.prompt_bin_mask, p.output_bin_counts))


def main() -> int:
    src = env.ensure_source()
    env.bootstrap(src)
    rows = []
    for seqs in SEQS:
        for mnbt in MNBT:
            for k in SPEC:
                for sm100 in (False, True):
                    sizes, full, pw = capture_sizes(seqs, mnbt, k, sm100)
                    rows.append([seqs, mnbt, k, sm100, sizes, full, pw])
    pen = [[s, v, penalties_bytes(s, v)] for s in (1, 256, 1024) for v in (151936, 248320)]
    OUT.write_text(json.dumps({
        "vllm_version": env.wheel_version(src),
        "generated_by": "scripts/vllm_runtime_fixtures.py",
        "sources": {
            "capture_sizes": "vllm/config/vllm.py:2398-2636 VllmConfig._set_cudagraph_sizes",
            "descriptors":
                "vllm/v1/worker/gpu/cudagraph_utils.py:256-392 ModelCudaGraphManager._init_candidates",
            "penalties": "vllm/v1/worker/gpu/sample/penalties.py:27-50 PenaltiesState",
        },
        "stubs": [
            *env.STUBS,
            "config / manager objects are SimpleNamespace stand-ins with only the attributes the two methods "
            "read; CompilationConfig is vLLM's own; is_device_capability_family patched for the SM100 rows",
            "PenaltiesState: UvaBuffer's pinned host buffers replaced by plain host tensors (no CUDA: no "
            "pinned allocator); only the device tensors' bytes are recorded",
        ],
        "columns": ["max_num_seqs", "max_num_batched_tokens", "num_speculative_tokens", "sm100",
                    "cudagraph_capture_sizes", "full_descriptor_tokens", "piecewise_descriptor_tokens"],
        "rows": rows,
        "penalties_columns": ["max_num_seqs", "vocab_size", "bytes"],
        "penalties": pen,
    }, indent=1) + "\n")  # fmt: skip
    print(f"wrote {OUT} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
