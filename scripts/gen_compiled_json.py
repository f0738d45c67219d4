"""Write data/compiled.json: what the catalog's plans and checks compute from a model, its quantization,
its artifact and the engine's deployment alone (weight sums per placement, the bytes a token reads,
the compiled traced formulas, llama.cpp's host-input polynomial), recorded while planning a set of
common machines (qwenfit.core.formats.compiled; read by qwenfit.loaders.compiled, which ignores the
file when qwenfit/core or the catalog's data changed since it was written).

    python scripts/gen_compiled_json.py           # rewrite the file (~1 min)
    python scripts/gen_compiled_json.py --check   # exit 1 if the committed file is stale

tests/test_compiled_data.py checks that the file is current and that a sample equals fresh computation.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _compiled import write_or_check  # noqa: E402  (this script's own folder)

COMPILED_PATH = REPO / "data" / "compiled.json"

# the machines planned while recording (plan() keywords): a single GPU of common sizes with and
# without RAM for offload, two GPUs, CPU only, Macs
MACHINES: tuple[dict[str, object], ...] = (
    {"vram_gb": 24, "ram_gb": 64},
    {"vram_gb": 8, "ram_gb": 32},
    {"vram_gb": 12, "ram_gb": 32},
    {"vram_gb": 16, "ram_gb": 64},
    {"vram_gb": 32, "ram_gb": 128},
    {"vram_gb": 48, "ram_gb": 128},
    {"vram_gb": 80, "ram_gb": 256},
    {"vram_gb": 24},
    {"ram_gb": 64},
)


def make() -> str:
    import qwenfit
    from qwenfit.core.engines.llama_cpp.compute import model_key
    from qwenfit.core.engines.llama_cpp.gpu_forms import host_input_poly
    from qwenfit.core.fit import formulas, planner
    from qwenfit.core.formats import compiled
    from qwenfit.loaders.compiled import compiled_json

    os.environ.pop("QWENFIT_DATA_DIR", None)
    compiled.recording(True)
    try:
        formulas.clear_cache()
        planner.clear_caches()
        host_input_poly.cache_clear()
        model_key.cache_clear()
        for machine in MACHINES:
            qwenfit.plan(**machine)  # type: ignore[arg-type]
        recorded = compiled.recording(False)
    finally:
        compiled.recording(False)
    return compiled_json(recorded)


def main(argv: list[str] | None = None) -> int:
    return write_or_check(__doc__.splitlines()[0], COMPILED_PATH, make, "scripts/gen_compiled_json.py", argv)


if __name__ == "__main__":
    raise SystemExit(main())
