"""llama.cpp's home: the engine (:mod:`.engine`), its memory terms (:mod:`.terms`), layer placement
(:mod:`.layout`), context memory (:mod:`.memory`), the worst-case graph and ggml's allocator
(:mod:`.graph`, :mod:`.ggml_alloc`), the compute buffer's closed forms (:mod:`.compute`,
:mod:`.compute_trees`) and the mmproj vision encoder (:mod:`.vision`)."""

from qwenfit.core.engines.llama_cpp.engine import LLAMA_CPP, LM_STUDIO, OLLAMA, LlamaCpp, LlamaCppOptions

__all__ = ["LLAMA_CPP", "LM_STUDIO", "OLLAMA", "LlamaCpp", "LlamaCppOptions"]
