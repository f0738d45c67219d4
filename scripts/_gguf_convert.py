"""Run llama.cpp's own convert_hf_to_gguf.py, unmodified, with two monkeypatches (internal helper).

Used by scripts/make_tiny_ggufs.py and scripts/llama_quantize_fixtures.py through
_gguf_common.run_converter(); run it in the fixtures venv (/work/venvs/fixtures) with
LLAMA_CPP_SRC set to the llama.cpp tree of ``scripts/build_llama_cpp.sh --print``::

    LLAMA_CPP_SRC=... python scripts/_gguf_convert.py --pre qwen35 [--header-only] -- \\
        MODEL_DIR --outtype bf16 --outfile OUT.gguf [converter options]

1. ``--pre NAME``: ``conversion.base.TextModel.get_vocab_base_pre`` returns NAME instead of
   hashing the tokenizer's output (our tiny BPE tokenizers are unknown to the hash table; real
   Qwen3.5 maps to "qwen35", Qwen3-Next to "qwen2"). No llama.cpp file is edited: the converter
   script is executed with runpy and imports the already-patched ``conversion`` package.
2. ``--header-only``: ``gguf.GGUFWriter.write_tensors_to_file`` writes the tensor-info table and
   the alignment padding, then extends the file with ``truncate`` to its full size instead of
   writing (and therefore computing) the tensor data. The header is byte-for-byte what the
   converter writes; the data section is a sparse hole of the exact size (each tensor padded to
   the alignment, as the real writer does). Used for full-size layouts from sparse checkpoints.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pre", required=True, help="tokenizer.ggml.pre to record (qwen35, qwen2)")
    ap.add_argument("--header-only", action="store_true")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="-- then the converter's arguments")
    a = ap.parse_args()
    conv_args = a.args[1:] if a.args[:1] == ["--"] else a.args

    src = os.environ["LLAMA_CPP_SRC"]
    script = os.path.join(src, "convert_hf_to_gguf.py")
    sys.path.insert(0, src)
    sys.path.insert(1, os.path.join(src, "gguf-py"))

    import gguf
    from conversion.base import TextModel

    pre = a.pre
    TextModel.get_vocab_base_pre = lambda self, tokenizer: pre  # type: ignore[method-assign]

    if a.header_only:
        writer_cls = gguf.GGUFWriter

        def write_header_and_hole(self, *, progress: bool = False) -> None:
            self.write_ti_data_to_file()
            for fout, tensors in zip(self.fout, self.tensors, strict=True):
                self.write_padding(fout, fout.tell())
                data = sum(writer_cls.ggml_pad(ti.nbytes, self.data_alignment) for ti in tensors.values())
                fout.flush()
                fout.truncate(fout.tell() + data)
                for ti in tensors.values():
                    ti.tensor = None
            self.state = gguf.gguf_writer.WriterState.WEIGHTS

        writer_cls.write_tensors_to_file = write_header_and_hole  # type: ignore[method-assign]

    sys.argv = [script, *conv_args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
