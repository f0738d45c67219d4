"""llama.cpp's home: the engine (:mod:`.engine`), its options (:mod:`.options`) and builds
(:mod:`.versions`), the front ends that run it (:mod:`.frontends`: Ollama, LM Studio, llama-cpp-python),
its memory terms (:mod:`.terms`), layer placement
(:mod:`.layout`), context memory (:mod:`.memory`), the worst-case graph and ggml's allocator
(:mod:`.graph`, :mod:`.ggml_alloc`), the compute buffer's closed forms (:mod:`.compute`,
:mod:`.compute_trees`) and the mmproj vision encoder (:mod:`.vision`)."""

from qwenfit.core.engines.llama_cpp.engine import LLAMA_CPP, LlamaCpp, LlamaCppOptions
from qwenfit.core.engines.llama_cpp.frontends import LLAMA_CPP_PYTHON, LM_STUDIO, OLLAMA, LlamaCppPython

__all__ = [
    "LLAMA_CPP",
    "LLAMA_CPP_PYTHON",
    "LM_STUDIO",
    "OLLAMA",
    "LlamaCpp",
    "LlamaCppOptions",
    "LlamaCppPython",
]
