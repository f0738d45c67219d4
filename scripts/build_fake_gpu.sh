#!/usr/bin/env bash
# Build llama.cpp's REAL ggml-cuda backend (vendored llama.cpp@0c1e570 from the llama-cpp-python
# 0.3.36 sdist) on a machine without a GPU, plus a fake CUDA runtime that it runs against, so that
# llama.cpp's own scheduler and CUDA backend decide buffer alignment, alloc sizes, supports_op,
# offload_op, graph splits, pipeline-parallel copies and the compute-buffer reservations.
#
#   scripts/build_fake_gpu.sh            # build (or reuse) and print the paths
#   scripts/build_fake_gpu.sh --print    # only print the paths (exit 1 if not built)
#   QWENFIT_FAKE_GPU_DIR=/somewhere QWENFIT_FAKE_GPU_JOBS=2 QWENFIT_FAKE_GPU_ARCH=86-virtual scripts/build_fake_gpu.sh
#
# What gets built (cache dir ${QWENFIT_FAKE_GPU_DIR:-~/.cache/qwenfit/fake-gpu}):
#   src/           the extracted sdist (same tarball and sha256 as build_llama_cpp.sh)
#   cublas/        cuBLAS *headers* from the PyPI wheel nvidia-cublas==13.0.2.14 (only headers are used)
#   build-cuda/    cmake build: static ggml, ggml-cpu, ggml-cuda (GGML_CUDA=ON, GGML_CUDA_NO_VMM=ON,
#                  one CUDA architecture), llama, llama-common
#   shim/          libcudart.so.13 + libcublas.so.13 compiled from scripts/fake_gpu/*.c (our code):
#                  a fake CUDA runtime that reports N devices from QWENFIT_FAKE_CUDA_DEVICES and hands
#                  out host memory; the cuBLAS stub only satisfies the linker (never called in no_alloc).
#   bin/qwenfit-gpuprobe   scripts/fake_gpu/gpuprobe.cpp linked against the above.
#
# Needs nvcc (CUDA 13.x toolkit, only nvcc + cudart headers) at $CUDA_HOME (default /usr/local/cuda).
# The first build compiles ~200 .cu files; with one virtual architecture (PTX only, no ptxas) it
# takes about 1-2 h on 2 cores. Idempotent: every step is skipped when its output exists.
# The last lines of stdout are KEY=VALUE pairs (FAKE_GPU_PROBE, FAKE_GPU_SHIM_DIR, FAKE_GPU_SRC,
# FAKE_GPU_ARCH, FAKE_GPU_LLAMA_COMMIT).
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION="0.3.36"   # vendors ggml-org/llama.cpp@0c1e57098bba43ac29e6e3b677cdceebdd22334f
SDIST_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
CUBLAS_WHEEL_VERSION="13.0.2.14"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FAKE_SRC="$HERE/fake_gpu"

ROOT="${QWENFIT_FAKE_GPU_DIR:-$HOME/.cache/qwenfit/fake-gpu}"
JOBS="${QWENFIT_FAKE_GPU_JOBS:-2}"
ARCH="${QWENFIT_FAKE_GPU_ARCH:-86-virtual}"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
PYTHON="${PYTHON:-python3}"
LLAMA_TARBALL_CACHE="${QWENFIT_LLAMA_DIR:-$HOME/.cache/qwenfit/llama.cpp-${LLAMA_CPP_PYTHON_VERSION}}/download/llama_cpp_python-${LLAMA_CPP_PYTHON_VERSION}.tar.gz"

DL="$ROOT/download"
SRC="$ROOT/src"
LLAMA="$SRC/vendor/llama.cpp"
CUBLAS_INC="$ROOT/cublas/include"
BUILD="$ROOT/build-cuda"
SHIM="$ROOT/shim"
BIN="$ROOT/bin"
PROBE="$BIN/qwenfit-gpuprobe"

log() { echo "[build_fake_gpu] $*" >&2; }

print_paths() {
    echo "FAKE_GPU_LLAMA_COMMIT=0c1e57098bba43ac29e6e3b677cdceebdd22334f"
    echo "FAKE_GPU_SRC=$LLAMA"
    echo "FAKE_GPU_ARCH=$ARCH"
    echo "FAKE_GPU_SHIM_DIR=$SHIM"
    echo "FAKE_GPU_PROBE=$PROBE"
}

STATIC_LIBS=(
    "$BUILD/common/libllama-common.a" "$BUILD/common/libllama-common-base.a"
    "$BUILD/vendor/cpp-httplib/libcpp-httplib.a" "$BUILD/src/libllama.a"
    "$BUILD/ggml/src/libggml.a" "$BUILD/ggml/src/libggml-cpu.a"
    "$BUILD/ggml/src/ggml-cuda/libggml-cuda.a" "$BUILD/ggml/src/libggml-base.a"
)

all_built() {
    [[ -x "$PROBE" && -f "$SHIM/libcudart.so.13" && -f "$SHIM/libcublas.so.13" ]] || return 1
    # rebuild shim/probe when our sources are newer
    local f
    for f in "$FAKE_SRC"/*; do [[ "$f" -nt "$PROBE" ]] && return 1; done
    return 0
}

if [[ "${1:-}" == "--print" ]]; then
    all_built || { log "not built yet in $ROOT"; exit 1; }
    print_paths
    exit 0
fi
if all_built; then
    log "already built in $ROOT (delete $BIN to relink, $BUILD to rebuild)"
    print_paths
    exit 0
fi

for tool in cmake tar unzip cc c++; do
    command -v "$tool" >/dev/null || { log "missing required tool: $tool"; exit 1; }
done
[[ -x "$CUDA_HOME/bin/nvcc" ]] || { log "nvcc not found at $CUDA_HOME/bin/nvcc (set CUDA_HOME)"; exit 1; }
mkdir -p "$DL" "$SHIM" "$BIN"

# 1. sdist: reuse build_llama_cpp.sh's download when present, else pip download it
TARBALL="$DL/llama_cpp_python-${LLAMA_CPP_PYTHON_VERSION}.tar.gz"
if [[ ! -f "$TARBALL" ]]; then
    if [[ -f "$LLAMA_TARBALL_CACHE" ]]; then
        cp "$LLAMA_TARBALL_CACHE" "$TARBALL"
    else
        log "downloading llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION} sdist"
        "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: \
            "llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION}" -d "$DL" >&2
    fi
fi
echo "${SDIST_SHA256}  $TARBALL" | sha256sum -c --status - || { log "sha256 mismatch for $TARBALL"; exit 1; }
if [[ ! -f "$LLAMA/CMakeLists.txt" ]]; then
    log "extracting into $SRC"
    rm -rf "$SRC" "$SRC.tmp"; mkdir -p "$SRC.tmp"
    tar -xzf "$TARBALL" -C "$SRC.tmp" --strip-components=1
    mv "$SRC.tmp" "$SRC"
fi

# 2. cuBLAS headers (the toolkit here has only nvcc + cudart; ggml-cuda includes <cublas_v2.h>)
if [[ ! -f "$CUBLAS_INC/cublas_v2.h" ]]; then
    WHL="$(ls "$DL"/nvidia_cublas-${CUBLAS_WHEEL_VERSION}-*.whl 2>/dev/null | head -1 || true)"
    if [[ -z "$WHL" ]]; then
        log "downloading nvidia-cublas==${CUBLAS_WHEEL_VERSION} wheel (headers only are used)"
        "$PYTHON" -m pip download --quiet --no-deps "nvidia-cublas==${CUBLAS_WHEEL_VERSION}" -d "$DL" >&2
        WHL="$(ls "$DL"/nvidia_cublas-${CUBLAS_WHEEL_VERSION}-*.whl | head -1)"
    fi
    rm -rf "$ROOT/cublas.tmp"; mkdir -p "$ROOT/cublas.tmp"
    unzip -q -o "$WHL" 'nvidia/*/include/*' -d "$ROOT/cublas.tmp"
    mkdir -p "$ROOT/cublas"
    rm -rf "$CUBLAS_INC"; mv "$ROOT"/cublas.tmp/nvidia/*/include "$CUBLAS_INC"
    rm -rf "$ROOT/cublas.tmp"
fi

# 3. fake runtime + cuBLAS stub (our code). Built first: cmake's FindCUDAToolkit is pointed at the
#    stub libcublas so that the CUDA::cublas target exists.
log "compiling the fake CUDA runtime"
cc -O1 -g -fPIC -shared -Wall -I"$CUDA_HOME/include" -Wl,-soname,libcudart.so.13 \
    -o "$SHIM/libcudart.so.13" "$FAKE_SRC/fake_cudart.c" -ldl -lpthread
cc -O1 -g -fPIC -shared -Wall -Wl,-soname,libcublas.so.13 \
    -o "$SHIM/libcublas.so.13" "$FAKE_SRC/fake_cublas.c"
ln -sf libcudart.so.13 "$SHIM/libcudart.so"
ln -sf libcublas.so.13 "$SHIM/libcublas.so"
ln -sf libcublas.so.13 "$SHIM/libcublasLt.so"

# 4. configure + build the static libs (GGML_CUDA=ON, one architecture)
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
    log "configuring in $BUILD (CMAKE_CUDA_ARCHITECTURES=$ARCH)"
    GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
    cmake -S "$LLAMA" -B "$BUILD" "${GEN[@]}" \
        -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF \
        -DGGML_CUDA=ON -DGGML_CUDA_NO_VMM=ON -DGGML_CUDA_NCCL=OFF \
        -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc" -DCUDAToolkit_ROOT="$CUDA_HOME" \
        -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
        -DCMAKE_CUDA_FLAGS="-I$CUBLAS_INC" -DCMAKE_CXX_FLAGS="-I$CUBLAS_INC" \
        -DCUDA_cublas_LIBRARY="$SHIM/libcublas.so" -DCUDA_cublasLt_LIBRARY="$SHIM/libcublasLt.so" \
        -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_HIP=OFF -DGGML_SYCL=OFF -DGGML_OPENCL=OFF \
        -DGGML_RPC=OFF -DGGML_BACKEND_DL=OFF \
        -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=OFF \
        -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_MTMD=OFF \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_LLGUIDANCE=OFF \
        -DGGML_CCACHE=OFF -Wno-dev >&2
fi
missing=0; for l in "${STATIC_LIBS[@]}"; do [[ -f "$l" ]] || missing=1; done
if [[ $missing == 1 ]]; then
    log "building static libs with -j${JOBS} (ggml-cuda is the long part)"
    start=$(date +%s)
    cmake --build "$BUILD" --config Release -j "$JOBS" \
        --target ggml-cuda ggml-cpu ggml llama llama-common >&2
    log "build finished in $(( $(date +%s) - start )) s"
fi

# 5. the probe (our code), linked against the static libs + the fake runtime
log "linking qwenfit-gpuprobe"
c++ -std=c++17 -O1 -g -DGGML_USE_OPENMP -DGGML_USE_CUDA \
    -I"$LLAMA/include" -I"$LLAMA/ggml/include" -I"$LLAMA/common" -I"$LLAMA/src" -I"$LLAMA/vendor" \
    -I"$LLAMA/ggml/src" \
    "$FAKE_SRC/gpuprobe.cpp" -o "$PROBE.tmp" \
    "${STATIC_LIBS[@]}" \
    -L"$SHIM" -Wl,-rpath,"$SHIM" -lcublas -lcudart \
    -ldl -lm -fopenmp -lpthread -lrt
mv "$PROBE.tmp" "$PROBE"

all_built || { log "build did not produce all outputs"; exit 1; }
print_paths
