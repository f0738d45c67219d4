#!/usr/bin/env bash
# Build the llama.cpp tools qwenfit is verified against (llama-quantize, llama-fit-params,
# llama-completion) from the llama.cpp tree vendored in the llama-cpp-python sdist on PyPI.
#
#   scripts/build_llama_cpp.sh            # build (or reuse) and print the paths
#   QWENFIT_LLAMA_DIR=/work/build/llama scripts/build_llama_cpp.sh
#   QWENFIT_LLAMA_JOBS=4 scripts/build_llama_cpp.sh
#   scripts/build_llama_cpp.sh --print    # only print the paths (exit 1 if not built)
#
# Idempotent: every step is skipped when its output already exists. CPU only, Release,
# static libraries, no server/tests/examples/curl/openssl. 3-7 minutes on 2 cores.
# Nothing is written inside the repository.
#
# The last lines of stdout are KEY=VALUE pairs that other scripts can `eval`:
#   LLAMA_CPP_VERSION, LLAMA_CPP_SRC, LLAMA_QUANTIZE, LLAMA_FIT_PARAMS, LLAMA_COMPLETION,
#   QWENFIT_MEMPROBE, LLAMA_CONVERT_HF, LLAMA_GGUF_PY
#
# Besides the upstream targets it compiles qwenfit-memprobe (our own ~40-line program, source
# embedded below, linked against the static libs just built): same CLI as llama-fit-params, but
# prints llama_get_memory_breakdown() in exact bytes instead of MiB. Skip with QWENFIT_LLAMA_MEMPROBE=0.
# Progress/log messages go to stderr.
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION="0.3.36"   # vendors ggml-org/llama.cpp@0c1e57098bba43ac29e6e3b677cdceebdd22334f
SDIST_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
TARGETS=(llama-quantize llama-fit-params llama-completion llama-gguf-split)

ROOT="${QWENFIT_LLAMA_DIR:-$HOME/.cache/qwenfit/llama.cpp-${LLAMA_CPP_PYTHON_VERSION}}"
JOBS="${QWENFIT_LLAMA_JOBS:-$(nproc 2>/dev/null || echo 2)}"
PYTHON="${PYTHON:-python3}"

DL="$ROOT/download"
SRC="$ROOT/src"                    # extracted sdist (llama_cpp_python-<ver>/)
LLAMA="$SRC/vendor/llama.cpp"      # the llama.cpp tree
BUILD="$ROOT/build"
BIN="$BUILD/bin"
MEMPROBE="${QWENFIT_LLAMA_MEMPROBE:-1}"

log() { echo "[build_llama_cpp] $*" >&2; }

print_paths() {
    echo "LLAMA_CPP_VERSION=${LLAMA_CPP_PYTHON_VERSION}"
    echo "LLAMA_CPP_SRC=$LLAMA"
    echo "LLAMA_QUANTIZE=$BIN/llama-quantize"
    echo "LLAMA_FIT_PARAMS=$BIN/llama-fit-params"
    echo "LLAMA_GGUF_SPLIT=$BIN/llama-gguf-split"
    echo "LLAMA_COMPLETION=$BIN/llama-completion"
    [[ "$MEMPROBE" == "0" ]] || echo "QWENFIT_MEMPROBE=$BIN/qwenfit-memprobe"
    echo "LLAMA_CONVERT_HF=$LLAMA/convert_hf_to_gguf.py"
    echo "LLAMA_GGUF_PY=$LLAMA/gguf-py"
}

all_built() {
    local t
    for t in "${TARGETS[@]}"; do [[ -x "$BIN/$t" ]] || return 1; done
    [[ "$MEMPROBE" == "0" || -x "$BIN/qwenfit-memprobe" ]] || return 1
    [[ -f "$LLAMA/convert_hf_to_gguf.py" && -d "$LLAMA/gguf-py" ]]
}

if [[ "${1:-}" == "--print" ]]; then
    all_built || { log "not built yet in $ROOT"; exit 1; }
    print_paths
    exit 0
fi

if all_built; then
    log "already built in $ROOT (delete $BUILD to rebuild)"
    print_paths
    exit 0
fi

for tool in cmake tar; do
    command -v "$tool" >/dev/null || { log "missing required tool: $tool"; exit 1; }
done
command -v ninja >/dev/null || command -v make >/dev/null || { log "missing ninja or make"; exit 1; }
command -v c++ >/dev/null || command -v g++ >/dev/null || { log "missing a C++ compiler"; exit 1; }

mkdir -p "$DL"

# 1. sdist (pip download builds the sdist's metadata; --no-deps keeps it to this one package)
TARBALL="$DL/llama_cpp_python-${LLAMA_CPP_PYTHON_VERSION}.tar.gz"
if [[ ! -f "$TARBALL" ]]; then
    log "downloading llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION} sdist"
    "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: \
        "llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION}" -d "$DL" >&2
fi
if command -v sha256sum >/dev/null; then
    echo "${SDIST_SHA256}  $TARBALL" | sha256sum -c --status - \
        || { log "sha256 mismatch for $TARBALL"; exit 1; }
fi

# 2. extract
if [[ ! -f "$LLAMA/CMakeLists.txt" ]]; then
    log "extracting into $SRC"
    rm -rf "$SRC" "$SRC.tmp"
    mkdir -p "$SRC.tmp"
    tar -xzf "$TARBALL" -C "$SRC.tmp" --strip-components=1
    mv "$SRC.tmp" "$SRC"
fi

# 3. configure (CPU only, Release, static, nothing optional)
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
    log "configuring in $BUILD"
    GEN=()
    command -v ninja >/dev/null && GEN=(-G Ninja)
    cmake -S "$LLAMA" -B "$BUILD" "${GEN[@]}" \
        -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF \
        -DGGML_NATIVE=OFF \
        -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_HIP=OFF -DGGML_SYCL=OFF \
        -DGGML_OPENCL=OFF -DGGML_RPC=OFF -DGGML_BACKEND_DL=OFF \
        -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=ON \
        -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_MTMD=OFF \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_LLGUIDANCE=OFF \
        -DGGML_CCACHE=OFF -Wno-dev >&2
fi

# 4. build only the targets we need
log "building ${TARGETS[*]} with -j${JOBS}"
start=$(date +%s)
cmake --build "$BUILD" --config Release -j "$JOBS" --target "${TARGETS[@]}" >&2
log "build finished in $(( $(date +%s) - start )) s"

# 5. qwenfit-memprobe (exact-byte memory breakdown, same flags as llama-fit-params)
if [[ "$MEMPROBE" != "0" && ! -x "$BIN/qwenfit-memprobe" ]]; then
    log "compiling qwenfit-memprobe"
    mkdir -p "$ROOT/memprobe"
    cat > "$ROOT/memprobe/memprobe.cpp" <<'CPP'
// qwenfit-memprobe: parses the same CLI as llama-fit-params (-m -c -ctk -ctv -np -ub -b --no-repack ...),
// builds the model + context with no_alloc (like llama-fit-params does) and prints
// llama_get_memory_breakdown() per buffer type in exact bytes.
#include "llama.h"
#include "llama-ext.h"
#include "arg.h"
#include "common.h"
#include <cstdio>

int main(int argc, char ** argv) {
    common_params params;
    common_init();
    if (!common_params_parse(argc, argv, params, LLAMA_EXAMPLE_FIT_PARAMS)) {
        return 1;
    }
    llama_backend_init();
    auto mparams = common_model_params_to_llama(params);
    auto cparams = common_context_params_to_llama(params);
    mparams.no_alloc  = true;
    mparams.load_mode = LLAMA_LOAD_MODE_NONE;
    llama_model * model = llama_model_load_from_file(params.model.path.c_str(), mparams);
    if (!model) { fprintf(stderr, "qwenfit-memprobe: failed to load model\n"); return 1; }
    llama_context * ctx = llama_init_from_model(model, cparams);
    if (!ctx) { fprintf(stderr, "qwenfit-memprobe: failed to create context\n"); return 1; }
    size_t tm = 0, tc = 0, tk = 0;
    for (const auto & [buft, mb] : llama_get_memory_breakdown(ctx)) {
        printf("qwenfit_mem: buft=%s model=%zu context=%zu compute=%zu\n",
               ggml_backend_buft_name(buft), mb.model, mb.context, mb.compute);
        tm += mb.model; tc += mb.context; tk += mb.compute;
    }
    printf("qwenfit_mem: total model=%zu context=%zu compute=%zu n_ctx=%u n_seq_max=%u n_ubatch=%u n_batch=%u\n",
           tm, tc, tk, llama_n_ctx(ctx), llama_n_seq_max(ctx), llama_n_ubatch(ctx), llama_n_batch(ctx));
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
CPP
    CXX="${CXX:-$(command -v c++ || command -v g++)}"
    "$CXX" -std=c++17 -O2 -DGGML_USE_OPENMP \
        -I"$LLAMA/include" -I"$LLAMA/ggml/include" -I"$LLAMA/common" -I"$LLAMA/src" -I"$LLAMA/vendor" \
        "$ROOT/memprobe/memprobe.cpp" -o "$BIN/qwenfit-memprobe.tmp" \
        "$BUILD/common/libllama-common.a" "$BUILD/common/libllama-common-base.a" \
        "$BUILD/vendor/cpp-httplib/libcpp-httplib.a" "$BUILD/src/libllama.a" \
        "$BUILD/ggml/src/libggml.a" "$BUILD/ggml/src/libggml-cpu.a" "$BUILD/ggml/src/libggml-base.a" \
        -ldl -lm -fopenmp -lpthread >&2
    mv "$BIN/qwenfit-memprobe.tmp" "$BIN/qwenfit-memprobe"
fi

all_built || { log "build did not produce all binaries"; exit 1; }
print_paths
