"""llama-server / llama-cli / llama-bench command lines, read as llama.cpp 0c1e570 reads them."""

from __future__ import annotations

import pytest

from qwenfit.cmdline import ParsedCommand, parse_command
from qwenfit.errors import UsageError

GGUF = "Qwen3.5-35B-A3B-UD-Q4_K_XL.gguf"


def one(cmd: str | list[str], **kw: object) -> ParsedCommand:
    out = parse_command(cmd, **kw)  # type: ignore[arg-type]
    assert len(out) == 1
    return out[0]


def test_model_from_the_file_name():
    c = one(f"llama-server -m /models/{GGUF} -c 8192 -np 1")
    assert (c.tool, c.engine, c.model, c.model_kind, c.quant) == (
        "llama-server", "llama.cpp", "Qwen3.5-35B-A3B", "file-name", "UD-Q4_K_XL",
    )  # fmt: skip
    assert c.catalog == "Qwen3.5-35B-A3B"
    assert any("from the file name" in n for n in c.notes)


def test_model_path_when_the_file_exists(tmp_path):
    (tmp_path / GGUF).write_bytes(b"GGUF")
    c = one(f"llama-server -m {GGUF} -c 4096 -np 1", cwd=str(tmp_path))
    assert (c.model, c.model_kind, c.quant) == (GGUF, "path", "UD-Q4_K_XL")


def test_hf_repo_with_and_without_a_tag():
    c = one("llama-server -hf unsloth/Qwen3.6-27B-GGUF:ud-q4_k_xl -c 8192")
    assert (c.model, c.model_kind, c.quant, c.catalog) == (
        "unsloth/Qwen3.6-27B-GGUF", "hf-repo", "UD-Q4_K_XL", "Qwen3.6-27B",
    )  # fmt: skip
    c = one("llama-server -hf unsloth/Qwen3.5-2B-GGUF")
    assert c.quant == "Q4_K_M" and any("Q4_K_M" in n for n in c.notes)
    assert one("llama-server --hf-repo unsloth/Qwen3.5-2B-GGUF -hff Qwen3.5-2B-Q8_0.gguf").quant == "Q8_0"


@pytest.mark.parametrize(
    ("flags", "key", "value"),
    [
        ("-c 8192", "context", 8192),
        ("--ctx-size 8192", "context", 8192),
        ("-ngl 30", "n_gpu_layers", 30),
        ("--gpu-layers 30", "n_gpu_layers", 30),
        ("--n-gpu-layers 30", "n_gpu_layers", 30),
        ("-ngl all", "n_gpu_layers", None),
        ("-ngl auto", "n_gpu_layers", None),
        ("-ngl -1", "n_gpu_layers", None),
        ("-ub 1024", "ubatch", 1024),
        ("--ubatch-size 1024", "ubatch", 1024),
        ("-b 4096", "batch", 4096),
        ("-fa off", "flash_attention", False),
        ("--flash-attn on", "flash_attention", True),
        ("-fa 0", "flash_attention", False),
        ("-fa auto", "flash_attention", True),
        ("-ctk q8_0 -ctv q8_0", "kv_cache", "q8_0"),
        ("--cache-type-k q4_0 --cache-type-v q4_0", "kv_cache", "q4_0"),
        ("-ncmoe 12", "n_cpu_moe", 12),
        ("--n-cpu-moe 12", "n_cpu_moe", 12),
        ("-cmoe", "n_cpu_moe", 41),  # every block of 35B-A3B: 40 layers + the MTP layer
        ("--n-cpu-moe 99", "n_cpu_moe", 41),
        ("-ts 3,1", "tensor_split", (3.0, 1.0)),
        ("--tensor-split 3/1", "tensor_split", (3.0, 1.0)),
        ("-sm row", "split_mode", "row"),
        ("--split-mode none", "split_mode", "none"),
        ("-ctxcp 8", "ctx_checkpoints", 8),
        ("--swa-checkpoints 8", "ctx_checkpoints", 8),
        ("-kvu", "kv_unified", True),
        ("--no-kv-unified", "kv_unified", False),
        ("-ctkd q8_0 -ctvd q8_0", "draft_kv_cache", "q8_0"),
        ("--fit off", "fit_margin", False),
        ("-dev none", "n_gpus", 0),
        ("-dev CUDA0,CUDA1", "n_gpus", 2),
        ("--device Vulkan0", "backend", "vulkan"),
    ],
)
def test_aliases(flags, key, value):
    c = one(f"llama-server -m {GGUF} -np 1 {flags}")
    assert c.settings[key] == value


def test_override_tensor_split_on_commas_and_repeated():
    c = one(f'llama-server -m {GGUF} -np 1 -ot "blk\\.(1[0-9])\\.ffn_.*_exps=CPU,exps=CUDA0" -ot x=CPU')
    assert c.settings["override_tensor"] == (r"blk\.(1[0-9])\.ffn_.*_exps=CPU", "exps=CUDA0", "x=CPU")


def test_last_one_wins():
    c = one(f"llama-server -m {GGUF} -np 1 -c 4096 --ctx-size 16384 -ngl 10 -ngl 20 -fa on -fa off")
    assert (c.settings["context"], c.settings["n_gpu_layers"], c.settings["flash_attention"]) == (
        16384,
        20,
        False,
    )
    assert c.raw["ctx_size"] == 16384


def test_underscores_in_long_options():
    c = one(f"llama-server -m {GGUF} -np 1 --ctx_size 2048 --cache_type_k q8_0 --cache_type_v q8_0")
    assert (c.settings["context"], c.settings["kv_cache"]) == (2048, "q8_0")


def test_environment_variables_and_the_command_line_over_them():
    env = {"LLAMA_ARG_CTX_SIZE": "32768", "LLAMA_ARG_N_PARALLEL": "2", "LLAMA_ARG_FLASH_ATTN": "off",
           "LLAMA_ARG_NO_KV_UNIFIED": "1", "LLAMA_ARG_N_GPU_LAYERS": "12"}  # fmt: skip
    c = one(f"llama-server -m {GGUF} -ngl 20", env=env)
    s = c.settings
    assert (s["context"], s["sequences"], s["flash_attention"], s["kv_unified"]) == (16384, 2, False, False)
    assert s["n_gpu_layers"] == 20  # the command line wins
    assert any("LLAMA_ARG_CTX_SIZE=32768" in n for n in c.notes)
    with pytest.raises(UsageError, match='environment variable "LLAMA_ARG_CTX_SIZE"'):
        one(f"llama-server -m {GGUF}", env={"LLAMA_ARG_CTX_SIZE": "lots"})


def test_model_only_in_the_environment():
    c = one("llama-server --port 8080", env={"LLAMA_ARG_HF_REPO": "unsloth/Qwen3.5-4B-GGUF:Q8_0"})
    assert (c.model, c.quant) == ("unsloth/Qwen3.5-4B-GGUF", "Q8_0")


def test_np_auto_is_four_slots_with_a_unified_cache():
    c = one(f"llama-server -m {GGUF} -c 65536")
    assert (c.settings["sequences"], c.settings["context"], c.settings["kv_unified"]) == (4, 16384, True)
    assert c.raw["ctx_size"] == 65536 and c.raw["parallel"] == 4
    assert any("-np auto" in n for n in c.notes)
    assert one(f"llama-server -m {GGUF} -c 65536 -np -1").settings["sequences"] == 4
    c = one(f"llama-server -m {GGUF} -c 65536 -np 3")
    assert (c.settings["sequences"], c.settings["context"]) == (3, 21845) and "kv_unified" not in c.settings


def test_context_zero_or_absent_is_the_training_context():
    for flags in ("-c 0", ""):
        c = one(f"llama-server -m {GGUF} -np 2 {flags}")
        assert c.settings["context"] == 131072 and c.raw["ctx_size"] == 262144
    c = one("llama-server -m Qwen3-Coder-Next-Q4_K_M.gguf -np 1")  # not in the catalog: not known here
    assert "context" not in c.settings


def test_llama_cli_one_sequence_in_process_server():
    c = one(f"llama-cli -m {GGUF} -c 8192")
    assert (c.tool, c.settings["sequences"], c.settings["context"], c.settings["server"]) == (
        "llama-cli", 1, 8192, True,
    )  # fmt: skip


def test_mtp_and_draft_tokens():
    c = one(f"llama-server -m {GGUF} -np 1 --spec-type draft-mtp --spec-draft-n-max 2")
    assert (c.settings["mtp"], c.settings["draft_tokens"]) == (True, 2)
    c = one(f"llama-server -m {GGUF} -np 1 --spec-type draft-mtp")
    assert c.settings["draft_tokens"] == 3
    c = one(f"llama-server -m {GGUF} -np 1 --spec-type mtp --draft-max 4")  # an older build's spelling
    assert (c.settings["mtp"], c.settings["draft_tokens"]) == (True, 4)
    assert sum("older builds" in n for n in c.notes) == 2
    assert one(f"llama-server -m {GGUF} -np 1 --spec-type ngram-mod").settings["mtp"] is False


def test_vision():
    assert one(f"llama-server -m {GGUF} -np 1").settings["vision"] is False
    assert one(f"llama-server -m {GGUF} -np 1 --mmproj mmproj-F16.gguf").settings["vision"] is True
    assert one("llama-server -hf unsloth/Qwen3.5-4B-GGUF -np 1").settings["vision"] is True
    assert one("llama-server -hf unsloth/Qwen3.5-4B-GGUF -np 1 --no-mmproj").settings["vision"] is False
    # Qwen3-Next has no vision tower: -hf finds no mmproj
    assert one("llama-server -hf unsloth/Qwen3-Next-80B-A3B-Instruct-GGUF").settings["vision"] is False


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ("-ctk q3_0", "Unsupported cache type: q3_0"),
        ("-fa maybe", "unknown value for --flash-attn: 'maybe'"),
        ("-np 0", "invalid value for n_parallel"),
        ("-sm diagonal", "invalid value"),
        ("-c lots", "stoi"),
        ("--fit perhaps", "unknown value for --fit"),
        ("-ncmoe -2", "invalid value"),
        ("--spec-type eagle", "unknown speculative type: eagle"),
        ("-ot exps", "invalid value"),
        ("-c", "expected value for argument"),
        ("--no-such-option", "invalid argument: --no-such-option"),
        ("-chat-template-kwargs {}", "invalid argument: -chat-template-kwargs"),
        ("-p hello", "invalid argument: -p"),  # llama-server takes no prompt
        ("-ctk q8_0 -ctv f16", "one KV cache type"),
    ],
)
def test_refused_as_llama_cpp_refuses(flags, reason):
    with pytest.raises(UsageError, match=__import__("re").escape(reason)):
        one(f"llama-server -m {GGUF} -np 1 {flags}")


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ("--mlock", "--mlock"),
        ("--load-mode mlock", "--load-mode"),
        ("--rpc 10.0.0.2:50052", "--rpc"),
        ("--lora adapter.gguf", "--lora"),
        ("--override-kv qwen35moe.expert_used_count=int:4", "--override-kv"),
        ("-md draft.gguf", "-md"),
        ("--spec-type draft-dflash", "draft-dflash"),
        ("--embeddings", "--embeddings"),
        ("--fit-target 512", "--fit-target"),
        ("-dev RPC0", "RPC0"),
        ("-dev CUDA0,Vulkan1", "mixes backends"),
        ("--mmproj m.gguf --no-mmproj-offload", "--no-mmproj-offload"),
    ],
)
def test_memory_options_qwenfit_cannot_map_are_named(flags, named):
    with pytest.raises(UsageError) as err:
        one(f"llama-server -m {GGUF} -np 1 {flags}")
    assert named in str(err.value)


def test_options_that_do_not_change_memory_are_ignored():
    c = one(
        f"llama-server -m {GGUF} -np 1 --host 0.0.0.0 --port 8080 --jinja -t 8 --temp 0.6 --top-k 20 "
        "--alias qwen --reasoning-format deepseek --no-warmup --metrics --chat-template-kwargs '{}' -lv 4"
    )
    assert set(c.ignored) == {
        "--host", "--port", "--jinja", "-t", "--temp", "--top-k", "--alias", "--reasoning-format",
        "--no-warmup", "--metrics", "--chat-template-kwargs", "-lv",
    }  # fmt: skip


def test_legacy_spellings_are_read_with_a_note():
    c = one(f"llama-server -m {GGUF} -np 1 --no-mmap -fa -ngl 99")
    assert c.settings["flash_attention"] is True and c.settings["n_gpu_layers"] == 99
    assert any("--no-mmap" in n for n in c.notes) and any("bare -fa" in n for n in c.notes)


def test_kv_unified_per_slot_sizes_the_pool():
    c = one(f"llama-server -m {GGUF} -np 2 --kv-unified-per-slot 8192")
    assert (c.settings["context"], c.settings["sequences"]) == (8192, 2)


def test_router_mode_needs_its_preset(tmp_path):
    with pytest.raises(UsageError, match="router"):
        one("llama-server --port 8080")
    (tmp_path / "models.ini").write_text(
        "version = 1\n[*]\nflash-attn = on\nno-mmproj = true\n\n[qwen]\nmodel = Qwen3.6-27B-Q8_0.gguf\n"
        "ctx-size = 32768\nparallel = 1\nspec-type = draft-mtp\nkv-unified = false\n"
    )
    out = parse_command("llama-server --models-preset models.ini --port 9000", cwd=str(tmp_path))
    assert len(out) == 1
    s = out[0].settings
    assert (out[0].model, s["context"], s["mtp"], s["kv_unified"], s["vision"]) == (
        "Qwen3.6-27B", 32768, True, False, False,
    )  # fmt: skip


def test_llama_bench():
    out = parse_command(
        f"llama-bench -m {GGUF} -p 512,2048 -n 128 -d 0,4096 -ngl 99 -fa 1 -ctk q8_0 -ctv q8_0"
    )
    assert len(out) == 1
    s = out[0].settings
    assert (s["context"], s["sequences"], s["kv_cache"], s["server"], s["fit_margin"]) == (
        2048 + 4096, 1, "q8_0", False, False,
    )  # fmt: skip
    out = parse_command(f"llama-bench -m {GGUF} -ngl 10,20 -ub 256-1024*2")
    assert sorted((c.settings["n_gpu_layers"], c.settings["ubatch"]) for c in out) == [
        (10, 256), (10, 512), (10, 1024), (20, 256), (20, 512), (20, 1024),
    ]  # fmt: skip
    with pytest.raises(UsageError, match="invalid parameter for argument: --repetitions"):
        parse_command(f"llama-bench -m {GGUF} --repetitions")
    with pytest.raises(UsageError, match="-rpc"):
        parse_command(f"llama-bench -m {GGUF} -rpc 1.2.3.4:5")


@pytest.mark.parametrize(
    "change",
    [
        {"n_cpu_moe": 14},
        {"ctx_size": 98304},
        {"context": 8192},
        {"sequences": 2},
        {"kv_cache": "q4_0"},
        {"mtp": True, "draft_tokens": 2},
        {"flash_attention": False},
        {"n_gpu_layers": 30},
        {"n_gpu_layers": None},
        {"tensor_split": (3.0, 1.0)},
        {"ubatch": 1024, "batch": 1024},
        {"ctx_checkpoints": 4},
        {"vision": False},
        {"override_tensor": ("exps=CPU",)},
        {"split_mode": "row"},
        {"fit_margin": False},
    ],
)
def test_edited_round_trips(change):
    c = one("LLAMA_CACHE='my models' llama-server -hf unsloth/Qwen3.5-35B-A3B-GGUF:UD-Q4_K_XL -c 65536 "
            "-ngl 99 -fa on -ctk q8_0 -ctv q8_0 --port 8080 -cmoe")  # fmt: skip
    text = c.edited(**change)
    back = one(text)
    expected = dict(c.settings)
    settings_change = {k: v for k, v in change.items() if k != "ctx_size"}
    expected.update(settings_change)
    if "ctx_size" in change:
        expected["context"] = change["ctx_size"] // expected["sequences"]
    if "tensor_split" in change:
        expected["n_gpus"] = 2
    assert back.settings == expected, text
    assert text.startswith("LLAMA_CACHE='my models' llama-server")


def test_edited_keeps_the_spelling_and_place():
    c = one(f"llama-server -m {GGUF} -c 4096 -np 1 --port 1")
    assert c.edited(ctx_size=8192) == f"llama-server -m {GGUF} -c 8192 -np 1 --port 1"
    assert c.edited(n_cpu_moe=3).endswith("--n-cpu-moe 3")
    assert c.edited(context=None) == f"llama-server -m {GGUF} -np 1 --port 1"


@pytest.mark.parametrize("flag", ["-nkvo", "--no-kv-offload"])
def test_no_kv_offload_is_modelled(flag):
    # llama.cpp's -nkvo keeps the KV cache in host memory; the engine models it (kv_offload=False)
    assert one(f"llama-server -m {GGUF} -np 1 {flag}").settings["kv_offload"] is False
    assert "kv_offload" not in one(f"llama-server -m {GGUF} -np 1").settings
