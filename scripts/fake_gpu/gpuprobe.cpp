// qwenfit-gpuprobe: llama.cpp memory probe for (fake) multi-GPU builds. qwenfit's own code.
//
// Parses the llama-server command line (-m -c -ngl -ts -sm -ot -ncmoe -fa -ctk -ctv -np -ub -b -kvu
// --spec-type ...), builds model + context with no_alloc exactly like llama-fit-params does, and prints
// one JSON object on stdout with, per buffer type, the model / context / compute bytes
// (llama_get_memory_breakdown), the KV and recurrent-state bytes separately, the output buffer,
// per-backend compute reservations, pipeline parallelism, scheduler copies and splits.
//
// Extra flags (consumed here, not passed to llama.cpp's parser):
//   --qf-outputs MODE   library (default): n_outputs_max = 0 -> n_batch (llama-cli, llama-fit-params,
//                       plain llama_context_default_params users)
//                       server: llama-server's server_output_limits() (n_parallel * (1 + n_draft))
//                       <N>: n_outputs_max = N
//   --qf-no-mtp-ctx     with --spec-type draft-mtp: load the MTP weights but do not create the draft ctx
//
// Everything llama.cpp logs goes to stderr (GGML_SCHED_DEBUG=1 adds the "## SPLIT" listings); the line
// "qwenfit_probe: context ready" on stderr separates the main context's logs from the MTP context's.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>
#include <memory>
#include <functional>
#include <unordered_map>
#include <unordered_set>
#include <array>
#include <mutex>
#include <thread>
#include <atomic>
#include <optional>
#include <variant>
#include <sstream>
#include <cinttypes>

#include "llama.h"
#include "arg.h"
#include "common.h"
#include "speculative.h"
#include "ggml-backend.h"

// read-only access to a few private members (output buffer, per-backend compute reservations)
#define private public
#define protected public
#include "llama-context.h"
#include "llama-model.h"
#include "llama-memory-hybrid.h"
#include "llama-kv-cache.h"
#include "llama-memory-recurrent.h"
#undef private
#undef protected

static std::string jstr(const std::string & s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') { o += '\\'; o += c; }
        else if ((unsigned char) c < 0x20) { char b[8]; snprintf(b, sizeof(b), "\\u%04x", c); o += b; }
        else o += c;
    }
    return o + "\"";
}

static void log_cb(ggml_log_level level, const char * text, void * /*ud*/) {
    (void) level;
    fputs(text, stderr);
}

static std::string bufmap_json(const std::map<ggml_backend_buffer_type_t, size_t> & m) {
    std::string o = "{";
    bool first = true;
    for (const auto & [buft, size] : m) {
        if (!first) o += ",";
        first = false;
        o += jstr(ggml_backend_buft_name(buft)) + ":" + std::to_string(size);
    }
    return o + "}";
}

static std::string context_json(llama_context * ctx, const char * role) {
    std::ostringstream o;
    o << "{\"role\":" << jstr(role);
    const auto & cp = ctx->cparams;
    o << ",\"n_ctx\":" << llama_n_ctx(ctx) << ",\"n_ctx_seq\":" << cp.n_ctx_seq << ",\"n_seq_max\":" << llama_n_seq_max(ctx)
      << ",\"n_batch\":" << llama_n_batch(ctx) << ",\"n_ubatch\":" << llama_n_ubatch(ctx)
      << ",\"n_outputs_max\":" << cp.n_outputs_max << ",\"n_outputs_max_per_seq\":" << cp.n_outputs_max_per_seq
      << ",\"flash_attn\":" << (cp.flash_attn ? "true" : "false")
      << ",\"fused_gdn_ar\":" << (cp.fused_gdn_ar ? "true" : "false")
      << ",\"fused_gdn_ch\":" << (cp.fused_gdn_ch ? "true" : "false")
      << ",\"offload_kqv\":" << (cp.offload_kqv ? "true" : "false")
      << ",\"op_offload\":" << (cp.op_offload ? "true" : "false")
      << ",\"kv_unified\":" << (cp.kv_unified ? "true" : "false")
      << ",\"pipeline_parallel\":" << (cp.pipeline_parallel ? "true" : "false");

    ggml_backend_sched_t sched = ctx->sched.get();
    o << ",\"sched_n_copies\":" << ggml_backend_sched_get_n_copies(sched)
      << ",\"sched_n_splits_last\":" << ggml_backend_sched_get_n_splits(sched);

    // per-backend compute reservation (what llama-fit-params reports as "compute")
    o << ",\"backends\":[";
    for (size_t i = 0; i < ctx->backend_ptrs.size(); ++i) {
        ggml_backend_t b = ctx->backend_ptrs[i];
        if (i) o << ",";
        o << "{\"backend\":" << jstr(ggml_backend_name(b))
          << ",\"device\":" << jstr(ggml_backend_get_device(b) ? ggml_backend_dev_name(ggml_backend_get_device(b)) : "")
          << ",\"buft\":" << jstr(ggml_backend_buft_name(ctx->backend_buft[i]))
          << ",\"buft_alignment\":" << ggml_backend_buft_get_alignment(ctx->backend_buft[i])
          << ",\"compute\":" << ctx->backend_buf_exp_size[i] << "}";
    }
    o << "]";

    // llama_get_memory_breakdown (per buffer type)
    o << ",\"breakdown\":[";
    bool first = true;
    for (const auto & [buft, mb] : llama_get_memory_breakdown(ctx)) {
        if (!first) o << ",";
        first = false;
        o << "{\"buft\":" << jstr(ggml_backend_buft_name(buft)) << ",\"model\":" << mb.model
          << ",\"context\":" << mb.context << ",\"compute\":" << mb.compute << "}";
    }
    o << "]";

    // KV / recurrent state separately
    llama_memory_i * mem = ctx->memory.get();
    if (mem) {
        if (auto * h = dynamic_cast<llama_memory_hybrid *>(mem)) {
            o << ",\"kv\":" << bufmap_json(h->get_mem_attn()->memory_breakdown())
              << ",\"rs\":" << bufmap_json(h->get_mem_recr()->memory_breakdown());
        } else if (auto * kv = dynamic_cast<llama_kv_cache *>(mem)) {
            o << ",\"kv\":" << bufmap_json(kv->memory_breakdown()) << ",\"rs\":{}";
        } else if (auto * rs = dynamic_cast<llama_memory_recurrent *>(mem)) {
            o << ",\"kv\":{},\"rs\":" << bufmap_json(rs->memory_breakdown());
        } else {
            o << ",\"memory_other\":" << bufmap_json(mem->memory_breakdown());
        }
    }

    // output buffer (logits), a host buffer of the output device
    if (ctx->buf_output) {
        o << ",\"output\":{\"buft\":" << jstr(ggml_backend_buft_name(ggml_backend_buffer_get_type(ctx->buf_output.get())))
          << ",\"size\":" << ggml_backend_buffer_get_size(ctx->buf_output.get()) << "}";
    }
    o << "}";
    return o.str();
}

int main(int argc, char ** argv) {
    std::string outputs_mode = "library";
    bool no_mtp_ctx = false;
    std::vector<char *> args;
    for (int i = 0; i < argc; ++i) {
        if (strcmp(argv[i], "--qf-outputs") == 0 && i + 1 < argc) { outputs_mode = argv[++i]; continue; }
        if (strcmp(argv[i], "--qf-no-mtp-ctx") == 0) { no_mtp_ctx = true; continue; }
        args.push_back(argv[i]);
    }

    common_params params;
    common_init();
    if (!common_params_parse((int) args.size(), args.data(), params, LLAMA_EXAMPLE_SERVER)) {
        return 1;
    }
    if (params.n_parallel < 1) {
        fprintf(stderr, "qwenfit-gpuprobe: pass -np explicitly (server auto mode not emulated)\n");
        return 1;
    }
    llama_log_set(log_cb, nullptr);
    llama_backend_init();

    const bool spec_mtp = std::find(params.speculative.types.begin(), params.speculative.types.end(),
                                    COMMON_SPECULATIVE_TYPE_DRAFT_MTP) != params.speculative.types.end();

    if (outputs_mode == "server") {
        // llama-server: server_output_limits() (tools/server/server-context.cpp)
        const auto lim = common_speculative_get_output_limits(params.n_batch, params.n_parallel,
                                                              common_speculative_n_max(&params.speculative));
        params.n_outputs_max         = std::max<int32_t>(1, lim.total);
        params.n_outputs_max_per_seq = std::max<int32_t>(1, lim.per_seq);
    } else if (outputs_mode != "library") {
        params.n_outputs_max = atoi(outputs_mode.c_str());
    }

    auto mparams = common_model_params_to_llama(params);
    auto cparams = common_context_params_to_llama(params);
    mparams.no_alloc  = true;
    mparams.load_mode = LLAMA_LOAD_MODE_NONE;

    llama_model * model = llama_model_load_from_file(params.model.path.c_str(), mparams);
    if (!model) { fprintf(stderr, "qwenfit-gpuprobe: failed to load model\n"); return 1; }
    llama_context * ctx = llama_init_from_model(model, cparams);
    if (!ctx) { fprintf(stderr, "qwenfit-gpuprobe: failed to create context\n"); return 1; }
    fprintf(stderr, "qwenfit_probe: context ready\n");

    std::ostringstream o;
    o << "{\"outputs_mode\":" << jstr(outputs_mode);
    o << ",\"devices\":[";
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t d = ggml_backend_dev_get(i);
        size_t fr = 0, tot = 0;
        ggml_backend_dev_memory(d, &fr, &tot);
        if (i) o << ",";
        o << "{\"name\":" << jstr(ggml_backend_dev_name(d)) << ",\"description\":" << jstr(ggml_backend_dev_description(d))
          << ",\"total\":" << tot << ",\"free\":" << fr << "}";
    }
    o << "]";
    o << ",\"model_devices\":[";
    for (int i = 0; i < llama_model_n_devices(model); ++i) {
        if (i) o << ",";
        o << jstr(ggml_backend_dev_name(llama_model_get_device(model, i)));
    }
    o << "],\"n_layer\":" << llama_model_n_layer(model) << ",\"n_gpu_layers\":" << model->n_gpu_layers()
      << ",\"model_buffers\":" << bufmap_json(model->memory_breakdown());
    o << ",\"contexts\":[" << context_json(ctx, "main");

    if (spec_mtp && !no_mtp_ctx) {
        common_params params_dft = common_base_params_to_speculative(params);
        auto spec_init = common_speculative_init_from_params(params_dft, model, ctx);
        if (!spec_init || !spec_init->context()) {
            fprintf(stderr, "qwenfit-gpuprobe: failed to create the MTP draft context\n");
            return 1;
        }
        fprintf(stderr, "qwenfit_probe: mtp context ready\n");
        o << "," << context_json(spec_init->context(), "mtp");
        printf("%s]}\n", o.str().c_str());
        fflush(stdout);
        spec_init.reset();
    } else {
        printf("%s]}\n", o.str().c_str());
        fflush(stdout);
    }

    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
