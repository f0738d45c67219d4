"""What each llama.cpp option means for memory: mapped to a qwenfit setting, accepted as irrelevant
(``IGNORED``, an explicit allow-list from ``common/arg.cpp``), or refused by name (``REFUSED``).
Then :func:`llama_settings` turns a :class:`~.llama_cpp.LlamaState` into qwenfit's settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from qwenfit.cmdline.llama_cpp import LlamaState
from qwenfit.cmdline.models import CatalogFacts, catalog_facts, catalog_name, gguf_name, hf_repo_quant
from qwenfit.errors import UsageError

__all__ = ["IGNORED", "MAPPED", "REFUSED", "ModelRef", "llama_model", "llama_settings"]

# options that do not change memory (llama.cpp 0c1e570 common/arg.cpp), by key
# fmt: off
IGNORED = frozenset((
    "threads", "threads_batch", "cpu_mask", "cpu_range", "cpu_strict", "prio", "poll", "cpu_mask_batch",
    "cpu_range_batch", "cpu_strict_batch", "prio_batch", "poll_batch", "lookup_cache_static",
    "lookup_cache_dynamic", "n_predict", "keep", "checkpoint_min_step", "cache_idle_slots", "context_shift",
    "prompt", "system_prompt", "perf", "show_timings", "file", "system_prompt_file", "binary_file", "escape",
    "print_token_count", "prompt_cache", "prompt_cache_all", "prompt_cache_ro", "reverse_prompt", "special",
    "conversation", "single_turn", "interactive", "interactive_first", "multiline_input", "in_prefix_bos",
    "in_prefix", "in_suffix", "warmup", "spm_infill", "display_prompt", "verbose_prompt", "color",
    "rope_scaling", "rope_scale", "rope_freq_base", "rope_freq_scale", "yarn_orig_ctx", "yarn_ext_factor",
    "yarn_attn_factor", "yarn_beta_slow", "yarn_beta_fast", "grp_attn_n", "grp_attn_w", "repack", "no_host",
    "defrag_thold", "cont_batching", "numa", "lazy_mode", "check_tensors", "alias", "tags", "hf_token",
    "host", "port", "reuse_port", "path", "cors_origins", "cors_methods", "cors_headers", "cors_credentials",
    "api_prefix", "webui_config", "webui_config_file", "webui_mcp_proxy", "tools", "tools_runtime",
    "mcp_servers_config", "mcp_servers_json", "agent", "webui", "api_key", "api_key_file", "ssl_key_file",
    "ssl_cert_file", "chat_template_kwargs", "timeout", "sse_ping_interval", "threads_http", "cache_prompt",
    "cache_reuse", "metrics", "props", "slots", "slot_save_path", "media_path", "jinja", "reasoning_format",
    "reasoning", "reasoning_effort", "reasoning_budget", "reasoning_budget_message", "reasoning_preserve",
    "chat_template", "chat_template_file", "skip_chat_parsing", "prefill_assistant", "slot_prompt_similarity",
    "sleep_idle_seconds", "simple_io", "log_disable", "log_file", "log_jsonl", "log_prompts_dir",
    "log_colors", "log_verbose", "offline", "log_verbosity", "log_prefix", "log_timestamps", "output_file",
    "video", "video_fps", "video_timestamp_interval", "video_ffmpeg_dir", "main_gpu", "fit_ctx", "models_max",
    "models_autoload", "embd_normalize", "pooling", "spec_draft_n_min", "spec_synth_len", "spec_synth_rates",
    "draft_p_split", "draft_p_min", "spec_draft_backend_sampling", "spec_ngram_mod_n_min",
    "spec_ngram_mod_n_max", "spec_ngram_mod_n_match", "spec_ngram_simple_size_n", "spec_ngram_simple_size_m",
    "spec_ngram_simple_min_hits", "spec_ngram_map_k_size_n", "spec_ngram_map_k_size_m",
    "spec_ngram_map_k_min_hits", "spec_ngram_map_k4v_size_n", "spec_ngram_map_k4v_size_m",
    "spec_ngram_map_k4v_min_hits", "cache_ram", "op_offload", "image_min_tokens", "image_max_tokens",
    "mtmd_batch_max_tokens", "swa_full",
))
# fmt: on
# options for a separate draft model: nothing to do with an MTP draft (it runs on the main model)
# fmt: off
DRAFT_MODEL_ONLY = frozenset((
    "threads_draft", "threads_batch_draft", "cpu_mask_draft", "cpu_range_draft", "cpu_strict_draft",
    "prio_draft", "poll_draft", "cpu_mask_batch_draft", "cpu_strict_batch_draft", "prio_batch_draft",
    "poll_batch_draft", "override_tensor_draft", "cpu_moe_draft", "n_cpu_moe_draft", "device_draft",
    "n_gpu_layers_draft",
))
# fmt: on
# fmt: off
MAPPED = frozenset((
    "ctx_size", "kv_unified_per_slot", "batch_size", "ubatch_size", "swa_checkpoints", "kv_unified",
    "flash_attn", "cache_type_k", "cache_type_v", "parallel", "mmproj", "mmproj_url", "mmproj_auto",
    "mmproj_offload", "mmproj_device", "device", "override_tensor", "cpu_moe", "n_cpu_moe", "n_cpu_ffn",
    "n_gpu_layers", "split_mode", "tensor_split", "fit", "fit_target", "model", "model_url", "hf_repo",
    "hf_file", "spec_type", "spec_draft_n_max", "cache_type_k_draft", "cache_type_v_draft", "load_mode",
    "kv_offload", "models_preset", "models_dir",
))
# fmt: on
REFUSED = {
    "rpc": "adds devices on other machines (RPC servers)",
    "lora": "loads LoRA adapters",
    "lora_scaled": "loads LoRA adapters",
    "lora_init_without_apply": "loads LoRA adapters",
    "control_vector": "loads control vectors",
    "control_vector_scaled": "loads control vectors",
    "control_vector_layer_range": "applies control vectors",
    "override_kv": "overrides the model's metadata (its shapes and context can change)",
    "embeddings": "serves embeddings (other output buffers)",
    "reranking": "serves reranking (other output buffers)",
    "hf_repo_draft": "loads a separate draft model",
    "model_draft": "loads a separate draft model",
    "docker_repo": "loads a Docker Hub model, which qwenfit cannot look up",
    "server_base": "connects to a running server and loads no model",
    "spec_default": "turns on ngram-mod speculative decoding with its own buffers",
}
# the options that print something and exit, or load another (preset) model
EXITS = {"usage", "version", "cache_list", "completion_bash", "list_devices"}
PRESETS = {
    "embd_gemma_default",
    "fim_qwen_1_5b_default",
    "fim_qwen_3b_default",
    "fim_qwen_7b_default",
    "fim_qwen_7b_spec",
    "fim_qwen_14b_spec",
    "fim_qwen_30b_default",
    "gpt_oss_20b_default",
    "gpt_oss_120b_default",
    "vision_gemma_4b_default",
    "vision_gemma_12b_default",
}
BACKENDS = (
    ("CUDA", "cuda"),
    ("ROCm", "rocm"),
    ("Vulkan", "vulkan"),
    ("SYCL", "sycl"),
    ("Metal", "metal"),
    ("MTL", "metal"),
    ("CANN", "cann"),
    ("OpenCL", "opencl"),
)


class ModelRef:
    """What loads the model: (model, model_kind, quant, catalog), with notes."""

    def __init__(self, model: str | None, kind: str, quant: str | None, catalog: str | None) -> None:
        self.model, self.kind, self.quant, self.catalog = model, kind, quant, catalog
        self.notes: list[str] = []


def llama_model(st: LlamaState, cwd: str | None) -> ModelRef:
    """The model a llama.cpp command loads: ``-hf repo[:quant]`` (with ``-hff``), else ``-m PATH``,
    else ``-mu URL`` (its file name)."""
    v = st.values
    if "hf_repo" in v:
        repo, tag = hf_repo_quant(str(v["hf_repo"]))
        ref = ModelRef(repo, "hf-repo", tag.upper() if tag else None, catalog_name(repo))
        if "hf_file" in v:
            _, ref.quant = gguf_name(str(v["hf_file"]))
            ref.notes.append(f"quantization from -hff {v['hf_file']}")
        elif tag is None:
            ref.quant = "Q4_K_M"
            ref.notes.append(
                "-hf without a tag: llama.cpp takes Q4_K_M (or the repo's first file if it has none)"
            )
        if "model" in v:
            ref.notes.append(f"-m {v['model']} is where -hf downloads to; the model is -hf {v['hf_repo']}")
        return ref
    path = v.get("model") or v.get("model_url")
    if path is None:
        return ModelRef(None, "path", None, None)
    path = str(path)
    name, quant = gguf_name(path.split("?")[0])
    full = os.path.join(cwd or "", os.path.expanduser(path)) if not path.startswith("http") else ""
    cat = catalog_name(name) if name else None
    if full and os.path.isfile(full):
        ref = ModelRef(path, "path", quant, cat)
        ref.notes.append(f"model: the file {path} (qwenfit reads its header)")
    elif name:
        ref = ModelRef(cat or name, "file-name", quant, cat)
        ref.notes.append(
            f"model {cat or name} and quantization {quant} from the file name {os.path.basename(path)}"
            + ("" if full == "" else " (the file is not here)")
        )
    else:
        ref = ModelRef(path, "path", quant, None)
        ref.notes.append(f"{path}: no model name in the file name and no such file here")
    if "$" in path:
        ref.notes.append(f"the path {path} holds an unset shell variable, kept as written")
    return ref


def _devices(names: tuple[str, ...]) -> tuple[int, str | None]:
    """(GPU count, backend) of a ``-dev`` list; refused when it mixes backends or names RPC servers."""
    backends = set()
    for name in names:
        b = next((be for prefix, be in BACKENDS if name.startswith(prefix)), None)
        if b is None or name.startswith("RPC"):
            raise UsageError(
                f"-dev {','.join(names)}: device {name!r} is not a local GPU qwenfit can place on"
            )
        backends.add(b)
    if len(backends) > 1:
        raise UsageError(
            f"-dev {','.join(names)} mixes backends ({', '.join(sorted(backends))}); qwenfit "
            "places a model on one kind of GPU"
        )
    return len(names), backends.pop()


def llama_settings(
    st: LlamaState, ref: ModelRef, *, server: bool, env: Mapping[str, str], n_gpus_hint: int | None = None
) -> tuple[dict[str, Any], dict[str, Any], list[str], list[str]]:
    """(settings, raw, ignored, notes) of a parsed llama.cpp command; UsageError for what qwenfit
    cannot map."""
    v = st.values
    notes: list[str] = list(ref.notes) + st.notes
    ignored: list[str] = list(st.ignored)
    refused: list[str] = []
    facts: CatalogFacts | None = catalog_facts(ref.catalog)
    draft_model = "model_draft" in v or "hf_repo_draft" in v
    for key, spelled in st.spelled.items():
        if key in EXITS:
            raise UsageError(f"{spelled} prints something and exits: this command starts no model")
        if key in PRESETS:
            raise UsageError(f"{spelled} loads llama.cpp's own preset model, not the one qwenfit would check")
        if key in REFUSED:
            refused.append(f"{spelled} ({REFUSED[key]})")
        elif key in IGNORED or (key in DRAFT_MODEL_ONLY and not draft_model) or key in ("sampling",):
            ignored.append(spelled)
        elif key not in MAPPED and key not in DRAFT_MODEL_ONLY:
            from qwenfit.cmdline.llama_args import LLAMA_OPTIONS

            group = next((r[6] for r in LLAMA_OPTIONS if r[0] == key), "")
            if group == "sampling":
                ignored.append(spelled)
            else:
                refused.append(f"{spelled} (qwenfit cannot tell how it changes memory)")
    if v.get("load_mode") in ("mlock", "mmap+mlock"):
        refused.append(f"{st.spelled['load_mode']} (locks the whole model file in RAM)")
    vision = _vision(st, ref, facts, notes)
    if vision and v.get("mmproj_offload") is False:
        refused.append(f"{st.spelled['mmproj_offload']} (keeps the vision projector on the CPU)")
    if vision and "mmproj_device" in v:
        refused.append(f"{st.spelled['mmproj_device']} {v['mmproj_device']} (places the vision projector)")
    if "fit_target" in v and str(v["fit_target"]).strip() not in ("1024",):
        refused.append(f"{st.spelled['fit_target']} {v['fit_target']} (another --fit margin than 1024 MiB)")
    types = [t for t in st.spec_types if t != "none"]
    draft_types = [t for t in types if t.startswith("draft-") and t != "draft-mtp"]
    if draft_types:
        refused.append(f"--spec-type {','.join(draft_types)} (a separate draft model)")
    if refused:
        raise UsageError("these options change memory in ways qwenfit cannot model: " + "; ".join(refused))

    settings: dict[str, Any] = {}
    raw: dict[str, Any] = {k: val for k, val in v.items()}
    if st.overrides:
        raw["override_tensor"] = tuple(str(val) for kind, val in st.overrides if kind == "ot")
    if st.spec_types:
        raw["spec_type"] = tuple(st.spec_types)
    for key, env_name in st.env.items():
        notes.append(f"{key} from the environment: {env_name}={env.get(env_name, '')}")
    # slots and context (server.cpp: -np auto = 4 slots and a unified KV cache)
    n_par = int(v.get("parallel", -1 if server and st.tool == "S" else 1))
    kv_unified = bool(v.get("kv_unified", False))
    if n_par < 0:
        notes.append(
            f"-np {'auto' if 'parallel' not in v else n_par}: llama-server runs 4 slots with a unified "
            "KV cache (server.cpp)"
        )
        n_par, kv_unified = 4, True
    raw["parallel"] = n_par
    n_ctx = int(v.get("ctx_size", 0))
    per_slot = int(v.get("kv_unified_per_slot", 0))
    if per_slot > 0 and n_ctx == 0 and "ctx_size" not in v:
        n_ctx = n_par * per_slot
        notes.append(f"--kv-unified-per-slot {per_slot}: a KV pool of {n_par} x {per_slot} = {n_ctx} cells")
    if n_ctx == 0:
        where = "-c 0" if "ctx_size" in v else "no -c"
        if facts is None:
            notes.append(f"{where}: the model's training context (not known here), over {n_par} slot(s)")
        else:
            n_ctx = facts.n_ctx_train
            notes.append(f"{where}: the model's training context, {n_ctx} cells in all")
            if "ctx_size" not in v and v.get("fit", True):
                notes.append("--fit on (the default) may shorten a context the command does not set")
    raw["ctx_size"] = n_ctx
    if n_ctx:
        settings["context"] = n_ctx // n_par
        if n_ctx % n_par:
            notes.append(
                f"-c {n_ctx} over {n_par} slots: {n_ctx // n_par} tokens each (llama.cpp pads to 256)"
            )
        if facts is not None and n_ctx // n_par > facts.n_ctx_train:
            notes.append(
                f"{n_ctx // n_par} tokens per slot exceed the training context {facts.n_ctx_train}: "
                "llama-server caps each slot there (the KV cache is still allocated)"
            )
    settings["sequences"] = n_par
    if kv_unified and n_par > 1 and n_ctx:
        notes.append(
            f"unified KV cache: the {n_par} slots share {n_ctx} cells (one request may use them all); "
            f"qwenfit counts {n_par} x {n_ctx // n_par}"
        )
    if kv_unified or "kv_unified" in v:
        settings["kv_unified"] = kv_unified
    # KV cache types
    k, vt = v.get("cache_type_k"), v.get("cache_type_v")
    if k or vt:
        if (k or "f16") != (vt or "f16"):
            raise UsageError(
                f"-ctk {k or 'f16'} -ctv {vt or 'f16'}: qwenfit takes one KV cache type for K and V"
            )
        settings["kv_cache"] = k or vt
    dk, dv = v.get("cache_type_k_draft"), v.get("cache_type_v_draft")
    if dk or dv:
        if (dk or "f16") != (dv or "f16"):
            raise UsageError(
                f"-ctkd {dk or 'f16'} -ctvd {dv or 'f16'}: qwenfit takes one draft KV cache type"
            )
        settings["draft_kv_cache"] = dk or dv
    # speculative decoding with the model's own MTP layer
    mtp = "draft-mtp" in types
    settings["mtp"] = mtp
    if mtp:
        settings["draft_tokens"] = int(v.get("spec_draft_n_max", 3))
        if "spec_draft_n_max" not in v:
            notes.append("--spec-draft-n-max not given: 3 draft tokens (common.h default)")
    elif types:
        notes.append(f"--spec-type {','.join(types)}: n-gram drafting, no draft model")
    settings["vision"] = vision
    # placement
    _placement(st, settings, notes, facts, env, n_gpus_hint)
    fa = v.get("flash_attn", "auto")
    settings["flash_attention"] = fa != "off"
    if fa == "auto":
        notes.append(
            "-fa auto: llama.cpp turns flash attention on where the device supports it (CUDA, Metal, "
            "Vulkan do for Qwen3.5's layers); taken as on"
        )
    if "ubatch_size" in v:
        settings["ubatch"] = int(v["ubatch_size"])
    if "batch_size" in v:
        settings["batch"] = int(v["batch_size"])
    settings["server"] = server
    if "swa_checkpoints" in v:
        settings["ctx_checkpoints"] = int(v["swa_checkpoints"])
    if v.get("fit") is False:
        settings["fit_margin"] = False
    if "kv_offload" in v:
        settings["kv_offload"] = bool(v["kv_offload"])
        if not v["kv_offload"]:
            notes.append(f"{st.spelled['kv_offload']}: the KV cache and recurrent state in host memory")
    if "cache_ram" in v:
        notes.append(
            f"{st.spelled['cache_ram']} {v['cache_ram']}: the prompt cache's host RAM is not in qwenfit's "
            "estimate (llama.cpp default 8192 MiB)"
        )
    if "image_max_tokens" in v or "image_min_tokens" in v:
        notes.append(
            "--image-min/max-tokens: qwenfit sizes the vision compute buffer for the largest image "
            "(4096 tokens), an upper bound"
        )
    if v.get("load_mode") in ("none", "dio", "mmap", "auto"):
        notes.append(
            f"{st.spelled['load_mode']}: how the file is read; qwenfit counts host-side weights in RAM "
            "either way"
        )
    if "swa_full" in v:
        notes.append("--swa-full: Qwen3.5 has no sliding-window layers; nothing changes")
    return settings, raw, _unique(ignored), _unique(notes)


def _vision(st: LlamaState, ref: ModelRef, facts: CatalogFacts | None, notes: list[str]) -> bool:
    v = st.values
    if "mmproj" in v or "mmproj_url" in v:
        if v.get("mmproj_auto") is False and ("mmproj" in v or "mmproj_url" in v):
            notes.append("--no-mmproj only stops -hf from fetching one; the --mmproj given is loaded")
        return True
    if ref.kind == "hf-repo" and v.get("mmproj_auto", True) and st.tool in ("S", "C"):
        if facts is not None and not facts.vision:
            return False
        notes.append(
            "-hf also fetches and loads the repo's mmproj (vision) file when it has one (add "
            "--no-mmproj for text only)"
        )
        return True
    return False


def _placement(
    st: LlamaState,
    settings: dict[str, Any],
    notes: list[str],
    facts: CatalogFacts | None,
    env: Mapping[str, str],
    n_gpus_hint: int | None,
) -> None:
    v = st.values
    devices = v.get("device")
    if devices == ("none",):
        settings["n_gpus"] = 0
        notes.append("-dev none: no GPU")
    elif devices:
        n, backend = _devices(tuple(devices))
        settings["n_gpus"] = n
        if backend:
            settings["backend"] = backend
    elif "tensor_split" in v:
        settings["n_gpus"] = len(v["tensor_split"])
    elif env.get("CUDA_VISIBLE_DEVICES", "").strip():
        settings["n_gpus"] = len([d for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()])
        notes.append(f"CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}: {settings['n_gpus']} GPU(s)")
    elif n_gpus_hint is not None:
        settings["n_gpus"] = n_gpus_hint
    if "tensor_split" in v:
        settings["tensor_split"] = tuple(float(x) for x in v["tensor_split"])
    if "split_mode" in v:
        settings["split_mode"] = v["split_mode"]
    ngl = v.get("n_gpu_layers")
    settings["n_gpu_layers"] = None if ngl is None or ngl < 0 else int(ngl)
    if ngl is None:
        notes.append("no -ngl: 'auto' (all layers; --fit on may move some to the CPU if they do not fit)")
    elif ngl < 0:
        notes.append(f"-ngl {'all' if ngl == -2 else 'auto' if ngl == -1 else ngl}: all layers on the GPUs")
    n_cpu_moe = 0
    ot: list[str] = []
    for kind, val in st.overrides:
        if kind == "ncmoe":
            n_cpu_moe = max(n_cpu_moe, int(val))
        elif kind == "cmoe":
            n_cpu_moe = facts.n_layer_all if facts else 10**6
            if facts is None:
                ot.append(r"\.ffn_(up|down|gate|gate_up)_(ch|)exps=CPU")
        elif kind == "ncffn":
            ot.extend(rf"blk\.{i}\.ffn_(up|down|gate)\.=CPU" for i in range(int(val)))
        else:
            ot.append(str(val))
    if n_cpu_moe >= 10**6:
        n_cpu_moe = 0
        notes.append("-cmoe on a model qwenfit does not know: its pattern, verbatim, in override_tensor")
    if facts is not None and n_cpu_moe > facts.n_layer_all:
        notes.append(
            f"--n-cpu-moe {n_cpu_moe}: more than the {facts.n_layer_all} blocks of {facts.name} "
            f"(incl. the MTP layer): all of them"
        )
        n_cpu_moe = facts.n_layer_all
    if n_cpu_moe:
        settings["n_cpu_moe"] = n_cpu_moe
        if any(k == "cmoe" for k, _ in st.overrides):
            notes.append(f"-cmoe: the routed experts of every block ({n_cpu_moe}) in host RAM")
    if ot:
        settings["override_tensor"] = tuple(ot)
        if n_cpu_moe:
            notes.append(
                "-ot and --n-cpu-moe together: llama.cpp applies the first pattern that matches, in "
                "command-line order"
            )


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
