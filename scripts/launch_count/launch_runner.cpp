// launch_runner.cpp -- qwenfit's own code. Loads a GGUF on the fake GPU (real allocation, every layer
// offloaded), evaluates one prompt batch of N tokens and then two one-token decode steps through
// llama.cpp's public API, and prints how many kernel launches / cuBLAS calls / copies ggml-cuda issued
// (counted by launch_count.c, LD_PRELOADed) between eval-callback points:
//   mode "layer": the callback asks for every "l_out-<il>" node -> the scheduler computes the graph in
//                 per-layer chunks (fusions inside a layer intact); one line per layer;
//   mode "node":  the callback asks for every node -> each node is computed alone (no fusion); one line
//                 per node with its op;
//   mode "time":  no callback; the prompt (memory cleared before each) and one decode step are each
//                 evaluated REPS times (argv[4], default 50) and the mean host wall time per call is
//                 printed ("QT <phase> <ms per call> <launches per call>"): llama.cpp's CPU cost of a
//                 ubatch (graph build, scheduler, ggml-cuda dispatch) without any CUDA driver cost.
// Output lines: "QF <phase> <name> <op> <launches> <cublas> <d2h> <d2d> <memset> <other_copies>"
#include "llama.h"
#include "ggml.h"

#include <chrono>
#include <dlfcn.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static volatile long * g_counts;
static long g_last[8];
static const char * g_phase = "";
static bool g_node_mode = false;

static void emit(const ggml_tensor * t) {
    long d[8];
    for (int i = 0; i < 8; i++) { d[i] = g_counts[i] - g_last[i]; g_last[i] = g_counts[i]; }
    printf("QF %s %s %s %ld %ld %ld %ld %ld %ld\n", g_phase, t->name, ggml_op_desc(t), d[0], d[1], d[2], d[3], d[4], d[5]);
}

static bool cb(ggml_tensor * t, bool ask, void * ud) {
    (void) ud;
    if (ask) {
        return g_node_mode || strncmp(t->name, "l_out-", 6) == 0;
    }
    emit(t);
    return true;
}

static void reset() { for (int i = 0; i < 8; i++) g_last[i] = g_counts[i]; }

int main(int argc, char ** argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s model.gguf n_prompt layer|node\n", argv[0]); return 2; }
    const char * path = argv[1];
    const int n_prompt = atoi(argv[2]);
    g_node_mode = strcmp(argv[3], "node") == 0;
    const bool time_mode = strcmp(argv[3], "time") == 0;
    const int reps = argc > 4 ? atoi(argv[4]) : 50;
    g_counts = (volatile long *) dlsym(RTLD_DEFAULT, "qf_counts");
    if (!g_counts) { fprintf(stderr, "qf_counts not found: LD_PRELOAD launch_count.so\n"); return 2; }

    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 999;
    llama_model * model = llama_model_load_from_file(path, mp);
    if (!model) { fprintf(stderr, "load failed\n"); return 1; }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 4096;
    cp.n_batch = 512;
    cp.n_ubatch = 512;
    cp.n_seq_max = 1;
    cp.cb_eval = time_mode ? nullptr : cb;
    cp.cb_eval_user_data = nullptr;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

    std::vector<llama_token> toks(n_prompt);
    for (int i = 0; i < n_prompt; i++) toks[i] = 3 + i % (n_vocab - 3);
    llama_batch b = llama_batch_init(n_prompt, 0, 1);
    auto run = [&](const char * phase, int n, int pos0) {
        b.n_tokens = n;
        for (int i = 0; i < n; i++) {
            b.token[i] = toks[i % n_prompt]; b.pos[i] = pos0 + i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0;
            b.logits[i] = i == n - 1;
        }
        g_phase = phase;
        reset();
        if (llama_decode(ctx, b) != 0) { fprintf(stderr, "decode failed (%s)\n", phase); exit(1); }
        long d[8];
        for (int i = 0; i < 8; i++) d[i] = g_counts[i] - g_last[i];
        printf("QF %s <after-last-callback> - %ld %ld %ld %ld %ld %ld\n", phase, d[0], d[1], d[2], d[3], d[4], d[5]);
    };
    if (time_mode) {
        auto timed = [&](const char * phase, int n, bool clear) {
            double total = 0.0;
            long launches = 0;
            for (int r = 0; r < reps + 1; r++) {
                if (clear) llama_memory_clear(llama_get_memory(ctx), true);
                const long l0 = g_counts[0];
                const auto t0 = std::chrono::steady_clock::now();
                b.n_tokens = n;
                for (int i = 0; i < n; i++) {
                    b.token[i] = toks[i % n_prompt]; b.pos[i] = (clear ? 0 : n_prompt + r) + i; b.n_seq_id[i] = 1;
                    b.seq_id[i][0] = 0; b.logits[i] = i == n - 1;
                }
                if (llama_decode(ctx, b) != 0) { fprintf(stderr, "decode failed\n"); exit(1); }
                const auto t1 = std::chrono::steady_clock::now();
                if (r == 0) continue;  // warm-up
                total += std::chrono::duration<double, std::milli>(t1 - t0).count();
                launches += g_counts[0] - l0;
            }
            printf("QT %s %.4f %ld\n", phase, total / reps, launches / reps);
        };
        timed("prefill", n_prompt, true);
        timed("decode", 1, false);
        return 0;
    }
    run("prefill", n_prompt, 0);
    run("decode_1", 1, n_prompt);
    run("decode_2", 1, n_prompt + 1);
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
