#!/usr/bin/env bash
# Build llama.cpp's multimodal library (libmtmd: tools/mtmd, clip.cpp) and qwenfit-clipprobe, our
# probe of the vision encoder's compute buffer, from the same llama.cpp tree as
# scripts/build_llama_cpp.sh (llama-cpp-python 0.3.36 sdist = ggml-org/llama.cpp@0c1e57098).
#
#   scripts/build_mtmd_probe.sh            # build (or reuse) and print the paths
#   scripts/build_mtmd_probe.sh --print    # only print the paths (exit 1 if not built)
#
# It reuses the sdist that scripts/build_llama_cpp.sh downloaded and extracted (run that first) and
# builds in its own directory, <cache>/build-mtmd, so the main build (configured with
# LLAMA_BUILD_MTMD=OFF) is never touched. Same cmake options as the main build plus
# -DLLAMA_BUILD_MTMD=ON -DMTMD_VIDEO=OFF; targets mtmd and llama-mtmd-cli. About 5-8 minutes on
# 2 cores the first time (ggml and libllama are compiled again in this directory), then instant.
# Nothing is written inside the repository.
#
# qwenfit-clipprobe (source embedded below, ~150 lines) compiles clip.cpp itself into the probe
# (#include "clip.cpp") so that it can call clip.cpp's own warmup (clip_model_loader::warmup ->
# reserve_compute_meta -> ggml_backend_sched_reserve) with any image size, and read the exact
# bytes clip.cpp records per device (clip_ctx::mem_compute, clip_ctx::mem_usage) -- upstream only
# logs them in MiB with two decimals. Everything else (models/*.cpp graph builders, ggml) comes from
# the static libraries of this build. The mmproj is loaded with no_alloc (as llama-server's
# mtmd_get_memory_usage does), so full-size GGUFs whose data is a sparse hole work.
#
# Last lines on stdout: LLAMA_CPP_SRC, LLAMA_MTMD_CLI, QWENFIT_CLIPPROBE (KEY=VALUE).
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION="0.3.36"   # vendors ggml-org/llama.cpp@0c1e57098bba43ac29e6e3b677cdceebdd22334f
ROOT="${QWENFIT_LLAMA_DIR:-$HOME/.cache/qwenfit/llama.cpp-${LLAMA_CPP_PYTHON_VERSION}}"
JOBS="${QWENFIT_LLAMA_JOBS:-$(nproc 2>/dev/null || echo 2)}"
LLAMA="$ROOT/src/vendor/llama.cpp"
BUILD="$ROOT/build-mtmd"
BIN="$BUILD/bin"
PROBE_DIR="$ROOT/clipprobe"

log() { echo "[build_mtmd_probe] $*" >&2; }

print_paths() {
    echo "LLAMA_CPP_SRC=$LLAMA"
    echo "LLAMA_MTMD_CLI=$BIN/llama-mtmd-cli"
    echo "QWENFIT_CLIPPROBE=$BIN/qwenfit-clipprobe"
}

all_built() { [[ -x "$BIN/llama-mtmd-cli" && -x "$BIN/qwenfit-clipprobe" ]]; }

if [[ "${1:-}" == "--print" ]]; then
    all_built || { log "not built yet in $BUILD"; exit 1; }
    print_paths
    exit 0
fi
if all_built; then
    log "already built in $BUILD (delete $BIN/qwenfit-clipprobe to rebuild the probe)"
    print_paths
    exit 0
fi
[[ -f "$LLAMA/tools/mtmd/clip.cpp" ]] || { log "no llama.cpp tree in $LLAMA: run scripts/build_llama_cpp.sh first"; exit 1; }

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
        -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_MTMD=ON -DMTMD_VIDEO=OFF \
        -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_LLGUIDANCE=OFF \
        -DGGML_CCACHE=OFF -Wno-dev >&2
fi

log "building mtmd llama-mtmd-cli with -j${JOBS}"
start=$(date +%s)
cmake --build "$BUILD" --config Release -j "$JOBS" --target mtmd llama-mtmd-cli >&2
log "build finished in $(( $(date +%s) - start )) s"

mkdir -p "$PROBE_DIR"
cat > "$PROBE_DIR/clipprobe.cpp" <<'CPP'
// qwenfit-clipprobe: the compute buffer clip.cpp (llama.cpp tools/mtmd) reserves for a vision
// encoder, in exact bytes, for the warmup image and for any image size.
//
//   qwenfit-clipprobe MMPROJ.gguf [--fa on|off|auto] [--image-min-tokens N] [--image-max-tokens N]
//                     [--image WxH ...] [--sequential] [--encode WxH] [--dump-graph WxH]
//
// * always: clip_init(no_alloc, warmup) as llama-server's mtmd_get_memory_usage does and print the
//   warmup reservation ("what = warmup");
// * --image WxH (repeatable): a fresh context per size, clip.cpp's own warmup with that image
//   (clip_model_loader::warmup -> reserve_compute_meta), "what = image";
// * --sequential: the --image sizes reserved one after another in the warmup context (the
//   buffer then holds the largest graph seen, as at runtime), "what = sequential";
// * --encode WxH: really allocate the weights (no_alloc off), warm up, then encode one image of
//   that size with clip_image_batch_encode (tiny models only) and print the buffer afterwards;
// * --dump-graph WxH: print every node of the graph for that size (op, type, ne, view source,
//   sources, flags) for the allocator simulation: "qwenfit_graph: leaf|node ID OP UNARY TYPE
//   NE0,NE1,NE2,NE3 NB0,NB1,NB2,NB3 NBYTES VIEW_SRC FLAGS ext|- SRC... | NAME".
#include "clip.cpp"
#include "ggml-impl.h"  // struct ggml_cgraph (leafs) for --dump-graph

#include <cstdio>
#include <string>
#include <vector>

static clip_flash_attn_type parse_fa(const std::string & s) {
    if (s == "on") return CLIP_FLASH_ATTN_TYPE_ENABLED;
    if (s == "off") return CLIP_FLASH_ATTN_TYPE_DISABLED;
    return CLIP_FLASH_ATTN_TYPE_AUTO;
}

static bool parse_wh(const char * s, int & w, int & h) { return sscanf(s, "%dx%d", &w, &h) == 2; }

static size_t sum_map(const std::map<ggml_backend_dev_t, size_t> & m) {
    size_t t = 0;
    for (auto & [d, s] : m) t += s;
    return t;
}

static void report(const char * what, clip_ctx * ctx, int w, int h) {
    const auto & hp = ctx->model.hparams;
    size_t sched = 0;
    for (size_t i = 0; i < ctx->backend_ptrs.size(); ++i) {
        sched += ggml_backend_sched_get_buffer_size(ctx->sched.get(), ctx->backend_ptrs[i]);
    }
    printf("qwenfit_clip: what=%s image=%dx%d n_patches=%d fa=%s compute=%zu sched=%zu weights=%zu "
           "image_min_pixels=%d image_max_pixels=%d warmup_image_size=%d n_merge=%d patch_size=%d\n",
           what, w, h, (w / hp.patch_size) * (h / hp.patch_size),
           ctx->flash_attn_type == CLIP_FLASH_ATTN_TYPE_ENABLED ? "on" : "off",
           sum_map(ctx->mem_compute), sched, sum_map(ctx->mem_usage),
           hp.image_min_pixels, hp.image_max_pixels, hp.warmup_image_size, hp.n_merge, hp.patch_size);
    fflush(stdout);
}

static clip_image_f32_batch batch_of(int w, int h, bool with_data) {
    clip_image_f32_batch batch;
    clip_image_f32 img;
    img.set_size({w, h}, false, false);
    if (with_data) {
        std::vector<float> buf((size_t) w * h * 3, 0.25f);
        img.cpy_buf(buf);
    }
    batch.entries.push_back(img);
    return batch;
}

static void dump_graph(clip_ctx * ctx, int w, int h) {
    auto batch = batch_of(w, h, false);
    ggml_cgraph * gf = clip_get_graph_builder(ctx, batch)->build();
    auto id = [&](const ggml_tensor * t) -> std::string {
        if (!t) return "-";
        char b[32];
        snprintf(b, sizeof b, "%p", (const void *) t);
        return b;
    };
    auto row = [&](const char * kind, ggml_tensor * t) {
        printf("qwenfit_graph: %s %s %s %s %s %lld,%lld,%lld,%lld %zu,%zu,%zu,%zu %zu %s %d %s", kind,
               id(t).c_str(), ggml_op_name(t->op),
               t->op == GGML_OP_UNARY ? ggml_unary_op_name(ggml_get_unary_op(t)) : "-",
               ggml_type_name(t->type), (long long) t->ne[0], (long long) t->ne[1], (long long) t->ne[2],
               (long long) t->ne[3], t->nb[0], t->nb[1], t->nb[2], t->nb[3], ggml_nbytes(t),
               id(t->view_src).c_str(), (int) t->flags, t->data || t->buffer ? "ext" : "-");
        for (int j = 0; j < GGML_MAX_SRC; j++) {
            if (t->src[j]) printf(" %s", id(t->src[j]).c_str());
        }
        printf(" | %s\n", t->name);
    };
    for (int i = 0; i < gf->n_leafs; i++) row("leaf", gf->leafs[i]);
    for (int i = 0; i < ggml_graph_n_nodes(gf); i++) row("node", ggml_graph_node(gf, i));
    fflush(stdout);
}

static clip_ctx * init(const char * path, clip_context_params p) {
    clip_init_result r = clip_init(path, p);
    if (!r.ctx_v) {
        fprintf(stderr, "qwenfit-clipprobe: failed to load %s\n", path);
        exit(1);
    }
    if (r.ctx_a) clip_free(r.ctx_a);
    if (r.ctx_gen_a) clip_free(r.ctx_gen_a);
    return r.ctx_v;
}

int main(int argc, char ** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MMPROJ.gguf [--fa on|off|auto] [--image-min-tokens N] [--image-max-tokens N] "
                        "[--image WxH ...] [--sequential] [--encode WxH] [--dump-graph WxH]\n", argv[0]);
        return 2;
    }
    const char * path = argv[1];
    clip_flash_attn_type fa = CLIP_FLASH_ATTN_TYPE_AUTO;
    int min_tok = -1, max_tok = -1;
    std::vector<std::pair<int, int>> images;
    bool sequential = false;
    int enc_w = 0, enc_h = 0, dump_w = 0, dump_h = 0;
    for (int i = 2; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> const char * {
            if (i + 1 >= argc) { fprintf(stderr, "missing value for %s\n", a.c_str()); exit(2); }
            return argv[++i];
        };
        if (a == "--fa") fa = parse_fa(next());
        else if (a == "--image-min-tokens") min_tok = atoi(next());
        else if (a == "--image-max-tokens") max_tok = atoi(next());
        else if (a == "--image") { int w, h; if (!parse_wh(next(), w, h)) return 2; images.push_back({w, h}); }
        else if (a == "--sequential") sequential = true;
        else if (a == "--encode") { if (!parse_wh(next(), enc_w, enc_h)) return 2; }
        else if (a == "--dump-graph") { if (!parse_wh(next(), dump_w, dump_h)) return 2; }
        else { fprintf(stderr, "unknown argument %s\n", a.c_str()); return 2; }
    }
    ggml_backend_load_all();
    clip_context_params p{};
    p.use_gpu = false;
    p.device = nullptr;
    p.flash_attn_type = fa;
    p.image_min_tokens = min_tok;
    p.image_max_tokens = max_tok;
    p.warmup = true;
    p.cb_eval = nullptr;
    p.cb_eval_user_data = nullptr;
    p.no_alloc = true;
    p.progress_callback = nullptr;
    p.progress_callback_user_data = nullptr;

    clip_ctx * ctx = init(path, p);
    const int ws = ctx->model.hparams.warmup_image_size;
    report("warmup", ctx, ws, ws);
    if (sequential) {
        for (auto [w, h] : images) {
            clip_model_loader::warmup(*ctx, batch_of(w, h, false));
            report("sequential", ctx, w, h);
        }
    }
    if (dump_w > 0) dump_graph(ctx, dump_w, dump_h);
    clip_free(ctx);

    p.warmup = false;
    for (auto [w, h] : images) {
        clip_ctx * c = init(path, p);
        c->flash_attn_type = fa;
        clip_model_loader::warmup(*c, batch_of(w, h, false));
        report("image", c, w, h);
        clip_free(c);
    }

    if (enc_w > 0) {
        p.warmup = true;
        p.no_alloc = false;
        clip_ctx * c = init(path, p);
        report("encode_before", c, ws, ws);
        std::vector<float> out;
        auto batch = batch_of(enc_w, enc_h, true);
        if (!clip_image_batch_encode(c, 1, &batch, out)) {
            fprintf(stderr, "qwenfit-clipprobe: encode failed\n");
            return 1;
        }
        report("encode_after", c, enc_w, enc_h);
        printf("qwenfit_clip: encode_out_floats=%zu\n", out.size());
        clip_free(c);
    }
    return 0;
}
CPP

log "compiling qwenfit-clipprobe"
MT="$LLAMA/tools/mtmd"
CXX="${CXX:-$(command -v c++ || command -v g++)}"
"$CXX" -std=c++17 -O2 -DGGML_USE_OPENMP -Wno-cast-qual \
    -I"$MT" -I"$LLAMA/include" -I"$LLAMA/ggml/include" -I"$LLAMA/vendor" -I"$LLAMA/src" -I"$LLAMA/ggml/src" \
    "$PROBE_DIR/clipprobe.cpp" -o "$BIN/qwenfit-clipprobe.tmp" \
    "$BUILD/tools/mtmd/libmtmd.a" "$BUILD/src/libllama.a" \
    "$BUILD/ggml/src/libggml.a" "$BUILD/ggml/src/libggml-cpu.a" "$BUILD/ggml/src/libggml-base.a" \
    -ldl -lm -fopenmp -lpthread >&2
mv "$BIN/qwenfit-clipprobe.tmp" "$BIN/qwenfit-clipprobe"

all_built || { log "build did not produce all binaries"; exit 1; }
print_paths
