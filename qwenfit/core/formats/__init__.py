"""A model's weights under a quantization: llama.cpp file types (:mod:`.gguf`), GPU formats
(:mod:`.gpu`, :mod:`.gpu_layouts`), the per-tensor result (:mod:`.weights`), what a name means
(:mod:`.names`), quality ranks (:mod:`.quality`) and what one token reads (:mod:`.reads`)."""
