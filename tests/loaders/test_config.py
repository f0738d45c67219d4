"""config.json parsing: every layout, and bad input that must fail clearly."""

from __future__ import annotations

import copy
import json

import pytest

import qwenfit
from qwenfit.errors import ConfigError, QwenfitError, SourceNotFoundError, UnsupportedModelError
from qwenfit.loaders import catalog
from qwenfit.loaders.config import spec_from_config


@pytest.fixture
def cfg_35b() -> dict:
    return catalog.find("35B-A3B").config


@pytest.fixture
def cfg_08b() -> dict:
    return catalog.find("0.8B").config


@pytest.fixture
def cfg_next() -> dict:
    return catalog.find("Qwen3-Next-80B-A3B").config


def test_folder_and_file_sources(tmp_path, cfg_35b):
    (tmp_path / "config.json").write_text(json.dumps(cfg_35b))
    by_dir = qwenfit.load(tmp_path)
    by_file = qwenfit.load(str(tmp_path / "config.json"))
    assert by_dir == by_file
    assert by_dir.params.total == 35_951_822_704
    assert by_dir.name == tmp_path.name


def test_layer_types_derived_from_interval(cfg_35b):
    del cfg_35b["text_config"]["layer_types"]
    spec = spec_from_config(cfg_35b)
    assert spec.text.layer_types == qwenfit.load("35B-A3B").text.layer_types


def test_explicit_layer_types_win_over_interval(cfg_08b):
    types = cfg_08b["text_config"]["layer_types"]
    types[0], types[3] = "full_attention", "linear_attention"
    spec = spec_from_config(cfg_08b)
    assert spec.text.layer_types[0] == "full_attention"
    assert spec.params.total == qwenfit.load("0.8B").params.total + 0  # same counts per type


def test_tie_word_embeddings_at_either_level(cfg_08b, cfg_35b):
    del cfg_08b["tie_word_embeddings"]
    assert spec_from_config(cfg_08b).text.tie_word_embeddings is True
    cfg_35b["text_config"]["tie_word_embeddings"] = True
    del cfg_35b["tie_word_embeddings"]
    assert spec_from_config(cfg_35b).text.tie_word_embeddings is True


def test_contradictory_tie_word_embeddings(cfg_08b):
    cfg_08b["tie_word_embeddings"] = False
    with pytest.raises(ConfigError, match=r"text_config\.tie_word_embeddings: is true but the top-level"):
        spec_from_config(cfg_08b, source="x/config.json")


def test_text_only_flat_export(cfg_35b):
    flat = dict(cfg_35b["text_config"], tie_word_embeddings=False)
    spec = spec_from_config(flat)
    full = qwenfit.load("35B-A3B").params
    assert spec.vision is None and spec.family == "qwen3_5_moe"
    assert spec.params.total == full.total - full.vision


def test_qwen3_next_config_without_mtp_key(cfg_next):
    spec = spec_from_config(cfg_next)
    assert spec.mtp_layers == 0  # the config does not say; the catalog supplies 1
    assert spec.params.total == 79_674_391_296  # = Qwen3-Coder-Next's published total (no MTP)


def test_mamba_ssm_dtype(cfg_35b, cfg_next):
    assert spec_from_config(cfg_35b).text.mamba_ssm_dtype == "float32"
    assert spec_from_config(cfg_next).text.mamba_ssm_dtype is None


# ---- bad input ---------------------------------------------------------------------------------


def test_truncated_json(write_config, cfg_35b):
    path = write_config(json.dumps(cfg_35b)[:500])
    with pytest.raises(ConfigError) as info:
        qwenfit.load(path)
    assert str(path) in str(info.value) and "not valid JSON" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("content", ["", "[1, 2]", "null", '{"model_type": ', "\x00\x01"])
def test_malformed_files(write_config, content):
    path = write_config(content)
    with pytest.raises(ConfigError, match=str(path)):
        qwenfit.load(path)


def test_not_utf8(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"model_type": "\xff"}')
    with pytest.raises(ConfigError, match="not UTF-8"):
        qwenfit.load(path)


def test_wrong_layer_types_length(write_config, cfg_35b):
    cfg_35b["text_config"]["layer_types"].pop()
    path = write_config(cfg_35b)
    with pytest.raises(ConfigError) as info:
        qwenfit.load(path)
    msg = str(info.value)
    assert msg == f"{path}: text_config.layer_types: has 39 entries but num_hidden_layers is 40"
    assert info.value.key == "text_config.layer_types" and info.value.source == str(path)


def test_unknown_layer_type(cfg_35b):
    cfg_35b["text_config"]["layer_types"][5] = "sliding_attention"
    with pytest.raises(ConfigError, match=r"text_config\.layer_types: entry 5 is 'sliding_attention'"):
        spec_from_config(cfg_35b)


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("text_config", "hidden_size", -2048, "must be a positive integer, got -2048"),
        ("text_config", "num_attention_heads", 0, "must be a positive integer, got 0"),
        ("text_config", "hidden_size", "2048", "must be an integer, got '2048'"),
        ("text_config", "hidden_size", 2048.5, "must be an integer, got 2048.5"),
        ("text_config", "num_experts", True, "must be an integer, got True"),
        (
            "text_config",
            "num_key_value_heads",
            3,
            "num_attention_heads=16 is not a multiple of num_key_value_heads=3",
        ),
        ("text_config", "linear_num_value_heads", 24, "linear_num_value_heads=24 is not a multiple"),
        ("text_config", "num_experts_per_tok", 300, "300 routed experts per token but only 256 experts"),
        ("vision_config", "depth", -1, "must be a positive integer, got -1"),
        ("vision_config", "out_hidden_size", 1024, "must equal the text hidden_size=2048"),
        ("vision_config", "deepstack_visual_indexes", [8, 16], "DeepStack mergers belong to Qwen3-VL"),
    ],
)
def test_bad_values_name_file_and_key(write_config, cfg_35b, section, key, value, expected):
    cfg_35b[section][key] = value
    path = write_config(cfg_35b)
    with pytest.raises(ConfigError) as info:
        qwenfit.load(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: {section}.")
    assert expected in msg
    assert info.value.key.startswith(section + ".")


@pytest.mark.parametrize(
    "key",
    [
        "hidden_size",
        "num_hidden_layers",
        "vocab_size",
        "num_experts",
        "moe_intermediate_size",
        "num_key_value_heads",
    ],
)
def test_missing_required_key(write_config, cfg_35b, key):
    del cfg_35b["text_config"][key]
    path = write_config(cfg_35b)
    with pytest.raises(ConfigError, match=rf"{path}: text_config\.{key}: is required but missing"):
        qwenfit.load(path)


def test_dense_model_needs_intermediate_size(cfg_08b):
    del cfg_08b["text_config"]["intermediate_size"]
    with pytest.raises(ConfigError, match=r"text_config\.intermediate_size: is required"):
        spec_from_config(cfg_08b)


def test_missing_text_config(cfg_35b):
    del cfg_35b["text_config"]
    with pytest.raises(ConfigError, match="text_config: is required"):
        spec_from_config(cfg_35b)


def test_non_qwen_model(write_config):
    path = write_config({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32})
    with pytest.raises(UnsupportedModelError) as info:
        qwenfit.load(path)
    msg = str(info.value)
    assert f"{path}: model_type: 'llama' is not a Qwen3.5 / Qwen3-Next model" in msg
    assert "qwen3_5, qwen3_5_moe, qwen3_5_text, qwen3_5_moe_text, qwen3_next" in msg


def test_missing_model_type(write_config):
    path = write_config({"hidden_size": 8})
    with pytest.raises(UnsupportedModelError, match=rf"{path}: model_type: is missing"):
        qwenfit.load(path)


def test_no_full_attention_layer(cfg_08b):
    cfg_08b["text_config"]["layer_types"] = ["linear_attention"] * 24
    with pytest.raises(ConfigError, match="has no full_attention layer"):
        spec_from_config(cfg_08b)


def test_missing_path_and_folder_without_config(tmp_path):
    with pytest.raises(SourceNotFoundError, match="no such file"):
        qwenfit.load(tmp_path / "nope" / "config.json")
    with pytest.raises(SourceNotFoundError, match=r"folder has no config\.json"):
        qwenfit.load(tmp_path)
    assert issubclass(SourceNotFoundError, FileNotFoundError)


def test_empty_and_wrong_type_sources():
    with pytest.raises(QwenfitError, match="empty"):
        qwenfit.load("  ")
    with pytest.raises(TypeError):
        qwenfit.load(35)  # type: ignore[arg-type]


def test_input_dict_is_not_modified(cfg_35b):
    before = copy.deepcopy(cfg_35b)
    spec_from_config(cfg_35b)
    assert cfg_35b == before


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("text_config", "num_hidden_layers", 10**12),
        ("text_config", "num_experts", 2**40),
        ("vision_config", "depth", 10**9),
        ("text_config", "mtp_num_hidden_layers", 10**6),
    ],
)
def test_absurd_dimensions_are_refused_before_any_work(cfg_35b, section, key, value):
    cfg_35b[section][key] = value
    if key == "num_hidden_layers":
        del cfg_35b["text_config"]["layer_types"]  # else the list length would be the first complaint
    with pytest.raises(ConfigError, match=rf"{section}\.{key}: is [0-9,]+, above the limit of"):
        spec_from_config(cfg_35b, source="big/config.json")
