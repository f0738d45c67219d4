"""Loading from the Hub through huggingface_hub, against the local fake Hub (tests/fakehub.py)."""

from __future__ import annotations

import pytest
from builders import safetensors_bytes, tiny_config

import qwenfit
from qwenfit.errors import CheckpointError, HubError, UnsupportedModelError
from qwenfit.loaders.config import spec_from_config

REPO = "Acme/Qwen3.5-Tiny"


def _tensors(config: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    return {s.name: (s.dtype, s.shape) for s in spec_from_config(config).inventory.hf_tensors()}


def _single(config: dict) -> dict:
    return {"config.json": config, "model.safetensors": safetensors_bytes(_tensors(config))}


def _sharded(config: dict, shards: int = 3) -> dict:
    tensors = _tensors(config)
    names = list(tensors)
    files: dict = {"config.json": config}
    weight_map = {}
    for i in range(shards):
        shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        files[shard] = safetensors_bytes({n: tensors[n] for n in names[i::shards]})
        weight_map.update(dict.fromkeys(names[i::shards], shard))
    files["model.safetensors.index.json"] = {"metadata": {}, "weight_map": weight_map}
    return files


def test_single_file_repo(fake_hub):
    config = tiny_config()
    files = _single(config)
    fake_hub.add_repo(REPO, files=files)
    spec = qwenfit.load(REPO)
    assert spec.checkpoint.match.exact
    assert spec.params == spec_from_config(config).params
    assert spec.checkpoint.file_bytes == len(files["model.safetensors"])
    # the header came by range reads: no full download of the weights
    reads = fake_hub.range_reads("model.safetensors")
    assert len(reads) == 1 and reads[0].range == "bytes=0-100000"
    assert fake_hub.count("GET", "model.safetensors") == 1


def test_sharded_repo_with_progress(fake_hub):
    config = tiny_config()
    fake_hub.add_repo(REPO, files=_sharded(config))
    seen: list[tuple[int, int, str]] = []
    spec = qwenfit.load(REPO, progress=lambda d, t, name: seen.append((d, t, name)))
    assert spec.checkpoint.match.exact and len(spec.checkpoint.files) == 3
    assert [(d, t) for d, t, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert spec.params == spec_from_config(config).params


def test_large_header_takes_a_second_range_read(fake_hub):
    config = tiny_config()
    tensors = _tensors(config)
    blob = safetensors_bytes(tensors, metadata={"pad": "x" * 150_000})
    fake_hub.add_repo(REPO, files={"config.json": config, "model.safetensors": blob})
    spec = qwenfit.load(REPO)
    assert spec.checkpoint.match.exact
    assert len(fake_hub.range_reads("model.safetensors")) == 2


def test_revision_and_token_are_passed(fake_hub):
    config = tiny_config(moe=False, vision=False)
    fake_hub.add_repo(REPO, files=_single(config), private=True, authorized_tokens=("hf_good",))
    sha = fake_hub.commit_sha(REPO)
    spec = qwenfit.load(REPO, revision=sha, token="hf_good")
    assert spec.checkpoint.match.exact
    assert all(r.revision == sha for r in fake_hub.requests if r.kind == "resolve")
    assert all(r.authorization == "Bearer hf_good" for r in fake_hub.requests if r.kind == "resolve")


def test_missing_repo(fake_hub):
    with pytest.raises(HubError) as info:
        qwenfit.load("Acme/Nope")
    assert "Acme/Nope: repository not found" in str(info.value) and "token" in str(info.value)
    assert info.value.repo_id == "Acme/Nope"


def test_repo_without_safetensors(fake_hub):
    fake_hub.add_repo(REPO, files={"config.json": tiny_config()})
    with pytest.raises(HubError, match="not a safetensors repository"):
        qwenfit.load(REPO)


@pytest.mark.parametrize("token", [None, "hf_wrong"])
def test_gated_repo(fake_hub, token):
    fake_hub.add_repo(REPO, files=_single(tiny_config()), gated="manual", authorized_tokens=("hf_ok",))
    with pytest.raises(HubError) as info:
        qwenfit.load(REPO, token=token)
    assert f"{REPO} is gated" in str(info.value) and "HF_TOKEN" in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_connection_dropped_mid_header(fake_hub):
    fake_hub.add_repo(REPO, files=_single(tiny_config()))
    fake_hub.inject(REPO, "model.safetensors", drop_after=100)
    with pytest.raises(HubError) as info:
        qwenfit.load(REPO)
    assert "model.safetensors" in str(info.value) and "try again" in str(info.value)
    fake_hub.clear_faults()
    assert qwenfit.load(REPO).checkpoint.match.exact  # the next attempt works


def test_truncated_header_from_server_is_a_checkpoint_error(fake_hub):
    config = tiny_config()
    blob = safetensors_bytes(_tensors(config))
    fake_hub.add_repo(REPO, files={"config.json": config, "model.safetensors": blob[:-10]})
    with pytest.raises(CheckpointError, match="file truncated"):
        qwenfit.load(REPO)


def test_non_qwen_repo(fake_hub):
    fake_hub.add_repo("Acme/Llama", files={"config.json": {"model_type": "llama"}})
    with pytest.raises(UnsupportedModelError, match=r"Acme/Llama/config\.json: model_type: 'llama'"):
        qwenfit.load("Acme/Llama")


def test_offline_without_cache_makes_no_request(fake_hub):
    fake_hub.add_repo(REPO, files=_single(tiny_config()))
    fake_hub.set_offline()
    with pytest.raises(HubError) as info:
        qwenfit.load(REPO)
    assert "HF_HUB_OFFLINE" in str(info.value) and "not in the local Hugging Face cache" in str(info.value)
    assert fake_hub.requests == []


@pytest.mark.parametrize("make", [_single, _sharded])
def test_offline_with_a_full_cache_reads_headers_from_disk(fake_hub, make):
    from huggingface_hub import snapshot_download

    config = tiny_config()
    fake_hub.add_repo(REPO, files=make(config))
    snapshot_download(REPO)
    fake_hub.set_offline()
    fake_hub.clear_log()
    spec = qwenfit.load(REPO)
    assert spec.checkpoint.match.exact and fake_hub.requests == []


def test_offline_with_only_config_cached(fake_hub):
    fake_hub.add_repo(REPO, files=_single(tiny_config()))
    qwenfit.load(REPO)  # online: config cached, header range-read (not cached)
    fake_hub.set_offline()
    fake_hub.clear_log()
    with pytest.raises(HubError, match=r"model\.safetensors is not in the local Hugging Face cache"):
        qwenfit.load(REPO)
    assert fake_hub.requests == []


def test_catalog_repo_ids_stay_offline_unless_asked(fake_hub):
    spec = qwenfit.load("Qwen/Qwen3.5-35B-A3B")
    assert spec.params.total == 35_951_822_704 and fake_hub.requests == []
    config = tiny_config()
    fake_hub.add_repo("Qwen/Qwen3.5-35B-A3B", files=_single(config))
    from_hub = qwenfit.load("Qwen/Qwen3.5-35B-A3B", hub=True)
    assert from_hub.checkpoint is not None and from_hub.params == spec_from_config(config).params


def test_no_network_for_local_sources(tmp_path, fake_hub):
    # the fixture's server is up, but nothing but a repo id may talk to it
    from builders import write_checkpoint

    config = tiny_config()
    folder = write_checkpoint(tmp_path / "m", config, _tensors(config))
    qwenfit.load(folder)
    qwenfit.load("0.8B")
    qwenfit.load(folder / "config.json")
    assert fake_hub.requests == []


def test_repo_without_config_json(fake_hub):
    fake_hub.add_repo(
        REPO, files={"README.md": "x", "model.safetensors": _single(tiny_config())["model.safetensors"]}
    )
    with pytest.raises(HubError, match=r"has no config\.json and no GGUF model file"):
        qwenfit.load(REPO)
    assert fake_hub.count(kind="resolve") == 0  # the listing said so: nothing else was asked


def test_unknown_revision(fake_hub):
    fake_hub.add_repo(REPO, files=_single(tiny_config()))
    with pytest.raises(HubError, match="revision 'nope' not found"):
        qwenfit.load(REPO, revision="nope")


def test_unreachable_hub_fails_fast_and_falls_back_to_the_cache(fake_hub, monkeypatch):
    from huggingface_hub import constants, snapshot_download

    fake_hub.add_repo(REPO, files=_single(tiny_config()))
    with monkeypatch.context() as m:
        m.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # a closed port
        with pytest.raises(HubError) as info:
            qwenfit.load(REPO)
    msg = str(info.value)
    assert (
        len(msg.splitlines()) == 1 and "http://127.0.0.1:9 cannot be reached" in msg and "HF_ENDPOINT" in msg
    )
    assert fake_hub.client_sleeps == []  # no retry loop
    snapshot_download(REPO)
    fake_hub.clear_log()
    with monkeypatch.context() as m:
        m.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
        assert qwenfit.load(REPO).checkpoint.match.exact
    assert fake_hub.requests == []
