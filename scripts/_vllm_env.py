"""Fetch the pinned vLLM wheel's Python source and make it importable on a CPU-only machine.

Nothing from vLLM is committed: ``ensure_source`` runs ``pip download --no-deps vllm==PIN``
into a cache directory outside the repository and unzips only the ``*.py`` files (plus the
dist-info METADATA) from the wheel. ``bootstrap`` puts that tree first on ``sys.path``.

Stubs (the only ones; each is unavoidable on a machine without a GPU or CUDA wheels):

1. ``torchvision``: the vLLM wheel wants torchvision 0.29 (CUDA torch 2.14). Only the CPU
   torch 2.13 wheel may be installed here, and the PyPI torchvision wheels fail to load their
   ops against it. vLLM's Qwen3.5 model module (via Qwen3-VL) imports transformers' Qwen2-VL
   image processor, which does ``from torchvision.transforms.v2 import functional`` at import
   time. We first let transformers record that torchvision is *unavailable*, then register
   empty placeholder modules so that import succeeds. No memory number touches torchvision.
2. ``vllm.model_executor.models.registry._run_in_subprocess``: vLLM inspects model classes in
   a child ``python -m`` process "to avoid initializing CUDA"; there is no CUDA here and the
   child would not have the sys.path / stub above, so the call runs in-process instead.
3. No GPU means no constructed model: the attention / Gated DeltaNet *layer objects* are real
   vLLM classes (``Attention``, ``QwenGatedDeltaNetAttention``) created without running their
   ``__init__`` (which builds weights and needs a tensor-parallel process group) and given the
   attributes their ``get_kv_cache_spec`` reads. See ``_vllm_imported.make_layers``.
"""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

VLLM_PIN = "0.33.0"
DEFAULT_CACHE = Path(os.environ.get("QWENFIT_VLLM_CACHE", Path.home() / ".cache" / "qwenfit" / "vllm"))

# What the venv running the imported path needs (pip, PyPI only). torch is installed FIRST and
# pinned by a constraint so nothing upgrades it to a CUDA build:
#   python3.11 -m venv /work/venvs/vllm
#   /work/venvs/vllm/bin/pip install torch==2.13.0          # CPU wheel (+cpu local version)
#   /work/venvs/vllm/bin/python scripts/vllm_fixtures.py --install-deps
VENV_REQUIREMENTS = [
    "transformers==5.20.2",  # vLLM 0.33.0 wants >=5.16.1,<5.21
    "pydantic==2.14.4",
    "regex",
    "cachetools",
    "psutil",
    "numpy",
    "msgspec",
    "pyzmq",
    "cloudpickle",
    "blake3",
    "cbor2",
    "pyyaml",
    "einops",
    "tqdm",
    "requests",
    "py-cpuinfo",
    "aiohttp",
    "oss-harmony==0.0.11",
    "openai",
    "pillow",
    "sentencepiece",
    "tiktoken",
    "partial-json-parser",
    "pybase64",
    "uvloop",
    "prometheus_client",
    "fastapi[standard]>=0.133.0,<0.137.0",
    "llguidance>=1.7.0,<1.8.0",
    "compressed-tensors==0.17.0",
    "apache-tvm-ffi",  # imported by xgrammar 0.2.8 (installed below with --no-deps)
]
# installed with --no-deps (its dependency list would pull triton; not needed to import)
VENV_REQUIREMENTS_NO_DEPS = ["xgrammar==0.2.8"]


def install_deps(python: str = sys.executable) -> None:
    """pip-install VENV_REQUIREMENTS into the running interpreter's environment, with torch
    held at the already-installed CPU build by a constraints file."""
    import importlib.metadata as md
    import tempfile

    try:
        tv = md.version("torch")
    except md.PackageNotFoundError as e:
        raise SystemExit("install the CPU torch first: pip install torch==2.13.0") from e
    if "+cpu" not in tv:
        raise SystemExit(f"torch {tv} is not a +cpu build; refusing to continue")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(f"torch=={tv}\n")
        constraints = f.name
    subprocess.run([python, "-m", "pip", "install", "-c", constraints, *VENV_REQUIREMENTS], check=True)
    subprocess.run([python, "-m", "pip", "install", "--no-deps", *VENV_REQUIREMENTS_NO_DEPS], check=True)


def ensure_source(pin: str = VLLM_PIN, cache: Path = DEFAULT_CACHE) -> Path:
    """Return the directory holding ``vllm/`` from the pinned wheel, downloading it if needed."""
    cache = Path(cache)
    src = cache / f"src-{pin}"
    marker = src / "vllm" / "__init__.py"
    if marker.exists():
        return src
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob(f"vllm-{pin}-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", f"vllm=={pin}", "-d", str(cache)],
            check=True,
        )
        wheels = sorted(cache.glob(f"vllm-{pin}-*.whl"))
    if not wheels:
        raise SystemExit(f"pip download did not produce vllm-{pin}-*.whl in {cache}")
    with zipfile.ZipFile(wheels[0]) as z:
        names = [n for n in z.namelist() if n.endswith(".py") or n.endswith("METADATA")]
        z.extractall(src, names)
    return src


def wheel_version(src: Path) -> str:
    for meta in src.glob("vllm-*.dist-info/METADATA"):
        for line in meta.read_text().splitlines():
            if line.startswith("Version:"):
                return line.split(":", 1)[1].strip()
    raise SystemExit(f"no METADATA under {src}")


STUBS = [
    "torchvision: empty placeholder modules registered after transformers recorded torchvision "
    "as unavailable (only the transformers Qwen2-VL image processor import needs it)",
    "vllm.model_executor.models.registry._run_in_subprocess -> runs the model-class inspection "
    "in-process (no CUDA to protect, and the child would lack sys.path/stubs)",
    "Attention / QwenGatedDeltaNetAttention layer objects are real vLLM classes instantiated "
    "without __init__ (no weights, no TP process group); attributes set = those their "
    "get_kv_cache_spec / get_prefill_checkpoint_alignment read; the GDN "
    "_checkpoint_alignment is set as QwenGatedDeltaNetAttention.__init__ does for the chosen "
    "GDN prefill backend",
    "attention backend of those layers is chosen by the script (FLASH_ATTN, cross-checked with "
    "TRITON_ATTN); FLASHINFER cannot be imported without the flashinfer package, its kernel "
    "block sizes are read from source",
    "platform: no GPU, so vLLM resolves UnspecifiedPlatform; its support_hybrid_kv_cache() is "
    "patched to True as CudaPlatform returns (vllm/platforms/cuda.py). The block-size code "
    "(Platform.update_block_size_for_backend) is the base-class method CudaPlatform inherits",
    "no GPU: determine_available_memory is not run; pools are given as bytes",
]


class _AnyAttrMeta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _AnyAttrMeta(name, (), {})


class _AnyAttrModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _AnyAttrMeta(name, (), {})


def _stub_torchvision() -> None:
    try:
        import torchvision  # noqa: F401

        return
    except Exception:
        pass
    import transformers.utils.import_utils as iu

    # cache "torchvision unavailable" in transformers before the placeholders exist
    iu.is_torchvision_available()
    for name in [
        "torchvision",
        "torchvision.transforms",
        "torchvision.transforms.v2",
        "torchvision.transforms.v2.functional",
        "torchvision.transforms.functional",
        "torchvision.io",
        "torchvision.ops",
    ]:
        m = _AnyAttrModule(name)
        m.__path__ = []
        m.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        sys.modules[name] = m


_BOOTSTRAPPED: Path | None = None


def bootstrap(src: Path) -> Path:
    """Make ``import vllm`` resolve to ``src`` and apply the stubs. Idempotent."""
    global _BOOTSTRAPPED
    if _BOOTSTRAPPED is not None:
        return _BOOTSTRAPPED
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    sys.path.insert(0, str(src))
    _stub_torchvision()
    import vllm

    got = Path(vllm.__file__).resolve()
    if not str(got).startswith(str(Path(src).resolve())):
        raise SystemExit(f"imported vllm from {got}, not from {src}")
    import vllm.model_executor.models.registry as reg

    reg._run_in_subprocess = lambda fn: fn()
    from vllm.platforms.interface import UnspecifiedPlatform

    # CudaPlatform.support_hybrid_kv_cache() is True; without it VllmConfig disables the
    # hybrid KV cache manager and Qwen3.5 cannot be planned at all.
    UnspecifiedPlatform.support_hybrid_kv_cache = classmethod(lambda cls: True)
    _BOOTSTRAPPED = Path(src)
    return _BOOTSTRAPPED
