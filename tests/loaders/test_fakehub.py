"""Self-tests of tests/fakehub.py, driven by the real huggingface_hub client only (no qwenfit code)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import numpy as np
import pytest
from fakehub import FakeHub, parse_range
from huggingface_hub import (
    HfApi,
    RepoFile,
    get_safetensors_metadata,
    hf_hub_download,
    parse_safetensors_file_metadata,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    NotASafetensorsRepoError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import get_session, hf_raise_for_status
from safetensors.numpy import save

REPO = "Qwen/Tiny"
CONFIG = {"model_type": "qwen3_5", "hidden_size": 64}


def tensors(n: int = 2) -> dict[str, np.ndarray]:
    return {f"layers.{i}.weight": np.arange(12, dtype=np.float32).reshape(3, 4) + i for i in range(n)}


@pytest.fixture
def tiny(fake_hub: FakeHub) -> FakeHub:
    fake_hub.add_repo(REPO, files={"config.json": CONFIG, "model.safetensors": save(tensors())})
    return fake_hub


# ------------------------------------------------------------------------------------------ downloads


def test_download_then_offline_from_cache(tiny: FakeHub) -> None:
    path = Path(hf_hub_download(REPO, "config.json"))
    assert json.loads(path.read_text()) == CONFIG
    sha = tiny.commit_sha(REPO)
    assert tiny.cache_dir is not None and path.is_relative_to(tiny.cache_dir)
    assert path.parent.name == sha  # snapshots/<X-Repo-Commit>/config.json
    assert [(r.method, r.status) for r in tiny.requests] == [("HEAD", 200), ("GET", 200)]
    assert all(r.authorization is None for r in tiny.requests)  # no machine token leaked in

    tiny.clear_log()
    tiny.set_offline()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert hf_hub_download(REPO, "config.json") == str(path)
    assert try_to_load_from_cache(REPO, "config.json") == str(path)
    assert tiny.requests == []


def test_online_again_revalidates_with_one_head(tiny: FakeHub) -> None:
    first = hf_hub_download(REPO, "config.json")
    tiny.clear_log()
    assert hf_hub_download(REPO, "config.json") == first
    assert [r.method for r in tiny.requests] == ["HEAD"]  # etag check only, blob reused


def test_commit_sha_revision_is_served_and_short_circuits(tiny: FakeHub) -> None:
    sha = tiny.commit_sha(REPO)
    same_content = FakeHub().add_repo(REPO, {"config.json": CONFIG, "model.safetensors": save(tensors())})
    assert len(sha) == 40 and same_content.sha() == sha  # deterministic
    path = hf_hub_download(REPO, "config.json", revision=sha)
    assert tiny.requests[0].revision == sha
    tiny.clear_log()
    assert hf_hub_download(REPO, "config.json", revision=sha) == path
    assert tiny.requests == []  # a cached file at a commit sha needs no request, even online


def test_new_commit_on_main_is_picked_up(tiny: FakeHub) -> None:
    old = tiny.commit_sha(REPO)
    hf_hub_download(REPO, "config.json")
    tiny.add_repo(REPO, files={"config.json": {**CONFIG, "hidden_size": 128}})
    assert tiny.commit_sha(REPO) != old
    assert json.loads(Path(hf_hub_download(REPO, "config.json")).read_text())["hidden_size"] == 128
    assert json.loads(Path(hf_hub_download(REPO, "config.json", revision=old)).read_text()) == CONFIG


def test_offline_with_empty_cache_fails_without_a_request(tiny: FakeHub) -> None:
    tiny.set_offline()
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(REPO, "config.json")
    with pytest.raises(OfflineModeIsEnabled):  # never cached: always a network call
        HfApi().parse_safetensors_file_metadata(REPO, "model.safetensors")
    assert tiny.requests == []
    tiny.set_offline(False)
    assert hf_hub_download(REPO, "config.json")


def test_add_repo_from_dir(fake_hub: FakeHub, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text(json.dumps(CONFIG))
    (src / "sub" / "notes.txt").write_text("hello")
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref: refs/heads/main")
    fake_hub.add_repo_from_dir("me/fromdir", src)
    assert sorted(fake_hub.repo("me/fromdir").commits[fake_hub.commit_sha("me/fromdir")]) == [
        "config.json",
        "sub/notes.txt",
    ]
    assert Path(hf_hub_download("me/fromdir", "sub/notes.txt")).read_text() == "hello"
    assert Path(hf_hub_download("me/fromdir", "notes.txt", subfolder="sub")).read_text() == "hello"


# ------------------------------------------------------------------------------------------ safetensors


def test_parse_safetensors_single_file(tiny: FakeHub) -> None:
    meta = HfApi().parse_safetensors_file_metadata(REPO, "model.safetensors")
    assert meta.tensors["layers.1.weight"].shape == [3, 4]
    assert meta.tensors["layers.1.weight"].dtype == "F32"
    assert meta.parameter_count == {"F32": 24}
    (read,) = tiny.range_reads("model.safetensors")
    assert (read.range, read.status) == ("bytes=0-100000", 206)
    # the module-level helper is bound to an HfApi created at import: the fixture re-points it too
    assert parse_safetensors_file_metadata(REPO, "model.safetensors") == meta


def test_parse_safetensors_large_header_needs_second_range_read(fake_hub: FakeHub) -> None:
    blob = save(tensors(), metadata={"pad": "x" * 120_000})
    fake_hub.add_repo(REPO, files={"model.safetensors": blob})
    header_len = int.from_bytes(blob[:8], "little")
    meta = HfApi().parse_safetensors_file_metadata(REPO, "model.safetensors")
    assert len(meta.metadata["pad"]) == 120_000
    assert [r.range for r in fake_hub.range_reads()] == ["bytes=0-100000", f"bytes=8-{header_len + 7}"]


def test_get_safetensors_metadata_single(tiny: FakeHub) -> None:
    meta = get_safetensors_metadata(REPO)
    assert not meta.sharded
    assert set(meta.weight_map) == {"layers.0.weight", "layers.1.weight"}
    assert [(r.method, r.filename, r.status) for r in tiny.requests] == [
        ("HEAD", "model.safetensors", 200),
        ("GET", "model.safetensors", 206),
    ]


def test_get_safetensors_metadata_sharded(fake_hub: FakeHub) -> None:
    shards = {
        "model-00001-of-00002.safetensors": save({"embed.weight": np.zeros((8, 4), np.float16)}),
        "model-00002-of-00002.safetensors": save({"head.weight": np.zeros((4, 8), np.float16)}),
    }
    index = {
        "metadata": {"total_size": 128},
        "weight_map": {
            "embed.weight": "model-00001-of-00002.safetensors",
            "head.weight": "model-00002-of-00002.safetensors",
        },
    }
    files = {"config.json": CONFIG, "model.safetensors.index.json": index, **shards}
    fake_hub.add_repo("Qwen/Sharded", files=files)
    meta = HfApi().get_safetensors_metadata("Qwen/Sharded")
    assert meta.sharded and meta.metadata == {"total_size": 128}
    assert meta.files_metadata["model-00002-of-00002.safetensors"].tensors["head.weight"].shape == [4, 8]
    assert meta.parameter_count == {"F16": 64}
    log = [(r.method, r.filename, r.status) for r in fake_hub.requests]
    assert log[:4] == [
        ("HEAD", "model.safetensors", 404),  # file_exists() probe, EntryNotFound
        ("HEAD", "model.safetensors.index.json", 200),
        ("HEAD", "model.safetensors.index.json", 200),  # hf_hub_download of the index
        ("GET", "model.safetensors.index.json", 200),
    ]
    assert sorted(log[4:]) == [("GET", name, 206) for name in sorted(shards)]  # parsed from 8 threads


def test_not_a_safetensors_repo(fake_hub: FakeHub) -> None:
    fake_hub.add_repo("Qwen/NoWeights", files={"config.json": CONFIG})
    with pytest.raises(NotASafetensorsRepoError):
        get_safetensors_metadata("Qwen/NoWeights")


# ------------------------------------------------------------------------------------------ HTTP details


def test_range_semantics(tiny: FakeHub) -> None:
    data = bytes(range(10))
    tiny.add_repo("me/bytes", files={"blob.bin": data})
    url = f"{tiny.url}/me/bytes/resolve/main/blob.bin"

    def get(range_header: str | None) -> httpx2.Response:
        return get_session().get(url, headers={"Range": range_header} if range_header else {})

    for header, status, body, content_range in [
        (None, 200, data, None),
        ("bytes=2-5", 206, data[2:6], "bytes 2-5/10"),
        ("bytes=7-", 206, data[7:], "bytes 7-9/10"),
        ("bytes=-3", 206, data[7:], "bytes 7-9/10"),
        ("bytes=-100", 206, data, "bytes 0-9/10"),
        ("bytes=8-100000", 206, data[8:], "bytes 8-9/10"),
        ("bytes=9-9", 206, data[9:], "bytes 9-9/10"),
        ("bytes=5-2", 200, data, None),  # invalid: ignored
        ("bytes=0-1,4-5", 200, data, None),  # multi-range: ignored
        ("bytes=10-", 416, b"", "bytes */10"),
        ("bytes=-0", 416, b"", "bytes */10"),
    ]:
        response = get(header)
        assert (response.status_code, response.content) == (status, body), header
        assert response.headers.get("Content-Range") == content_range, header
        assert int(response.headers["Content-Length"]) == len(body)
    with pytest.raises(HfHubHTTPError) as err:
        hf_raise_for_status(get("bytes=10-20"))
    assert err.value.response.status_code == 416

    head = get_session().head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == "10" and head.headers["Accept-Ranges"] == "bytes"
    assert head.headers["X-Repo-Commit"] == tiny.commit_sha("me/bytes")
    assert (
        head.headers["X-Linked-Etag"].strip('"')
        == tiny.repo("me/bytes").commits[tiny.commit_sha("me/bytes")]["blob.bin"].sha256
    )  # .bin is LFS by default
    assert parse_range("bytes=0-0", 0) == "unsatisfiable"


def test_lfs_redirect_to_cdn_drops_auth(fake_hub: FakeHub) -> None:
    blob = save(tensors())
    fake_hub.add_repo(REPO, files={"model.safetensors": blob}, lfs_redirect=True)
    path = hf_hub_download(REPO, "model.safetensors", token="hf_user")
    assert Path(path).read_bytes() == blob
    assert [(r.kind, r.method, r.status, r.authorization) for r in fake_hub.requests] == [
        ("resolve", "HEAD", 302, "Bearer hf_user"),  # metadata taken from the 302 itself
        ("cdn", "GET", 200, None),  # download from the CDN location, token not forwarded
    ]
    fake_hub.clear_log()
    meta = HfApi().parse_safetensors_file_metadata(REPO, "model.safetensors", token="hf_user")
    assert set(meta.tensors) == set(tensors())
    assert [(r.kind, r.status, r.range, r.authorization) for r in fake_hub.requests] == [
        ("resolve", 302, "bytes=0-100000", "Bearer hf_user"),
        ("cdn", 206, "bytes=0-100000", None),  # httpx follows, keeps Range, strips Authorization
    ]


def test_model_info_and_list_repo_files(tiny: FakeHub) -> None:
    tiny.add_repo(REPO, files={"config.json": CONFIG, "model.safetensors": save(tensors()), "a/b/c.txt": "x"})
    api = HfApi()
    info = api.model_info(REPO, files_metadata=True)
    assert info.sha == tiny.commit_sha(REPO)
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert set(siblings) == {"config.json", "model.safetensors", "a/b/c.txt"}
    assert siblings["model.safetensors"].lfs is not None and siblings["config.json"].lfs is None
    assert api.model_info(REPO, revision=info.sha).sha == info.sha
    assert sorted(api.list_repo_files(REPO)) == ["a/b/c.txt", "config.json", "model.safetensors"]
    top = {e.path for e in api.list_repo_tree(REPO)}
    assert top == {"a", "config.json", "model.safetensors"}
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("nobody/nothing")


def test_tree_pages_and_expand_like_the_hub(fake_hub: FakeHub) -> None:
    files = {f"d/f{i:02d}.txt": str(i) for i in range(7)} | {"m.gguf": b"GGUF" + bytes(60)}
    fake_hub.add_repo(REPO, files=files)
    fake_hub.tree_page_size, fake_hub.tree_expand_page_size = 3, 2
    api = HfApi()
    plain = list(api.list_repo_tree(REPO, recursive=True))
    assert [e.path for e in plain] == ["d", *sorted(n for n in files if n.startswith("d/")), "m.gguf"]
    assert all(getattr(e, "last_commit", None) is None for e in plain)
    tree_gets = [r for r in fake_hub.requests if r.kind == "api" and "/tree/" in r.path]
    assert len(tree_gets) == 3 and "cursor=3" in tree_gets[1].path  # pages of 3 through Link headers
    fake_hub.clear_log()
    expanded = list(api.list_repo_tree(REPO, recursive=True, expand=True))
    assert [e.path for e in expanded] == [e.path for e in plain]
    assert fake_hub.count("GET", kind="api") == 5  # 9 entries, pages of 2 with expand=true
    gguf = expanded[-1]
    assert isinstance(gguf, RepoFile) and gguf.size == 64 and gguf.lfs is not None
    assert gguf.lfs.sha256 == hashlib.sha256(files["m.gguf"]).hexdigest()
    assert gguf.last_commit is not None and gguf.last_commit.oid == fake_hub.commit_sha(REPO)
    assert gguf.security is not None and gguf.security.safe
    info = api.model_info(REPO, files_metadata=True)
    sizes = {s.rfilename: (s.size, s.lfs.sha256 if s.lfs else None) for s in info.siblings or []}
    assert sizes["m.gguf"] == (64, gguf.lfs.sha256) and sizes["d/f00.txt"] == (1, None)


# ------------------------------------------------------------------------------------------ failures


def test_missing_repo_file_and_revision_raise_distinct_errors(tiny: FakeHub) -> None:
    with pytest.raises(RepositoryNotFoundError) as repo_err:
        hf_hub_download("nobody/nothing", "config.json")
    assert not isinstance(repo_err.value, GatedRepoError)
    assert repo_err.value.response.status_code == 404

    with pytest.raises(RemoteEntryNotFoundError) as file_err:
        hf_hub_download(REPO, "missing.json")
    assert isinstance(file_err.value, EntryNotFoundError)
    assert file_err.value.response.headers["X-Error-Code"] == "EntryNotFound"
    assert try_to_load_from_cache(REPO, "missing.json") is not None  # the .no_exist marker

    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "config.json", revision="no-such-branch")
    with pytest.raises(RemoteEntryNotFoundError):
        HfApi().parse_safetensors_file_metadata(REPO, "missing.safetensors")
    with pytest.raises(RepositoryNotFoundError):
        HfApi().parse_safetensors_file_metadata("nobody/nothing", "model.safetensors")
    assert HfApi().file_exists(REPO, "missing.json") is False


def test_gated_repo_401_403_and_authorized_token(fake_hub: FakeHub) -> None:
    fake_hub.add_repo(
        "Qwen/Gated", files={"config.json": CONFIG}, gated="manual", authorized_tokens=["hf_ok"]
    )
    with pytest.raises(GatedRepoError) as anonymous:
        hf_hub_download("Qwen/Gated", "config.json")
    assert anonymous.value.response.status_code == 401
    with pytest.raises(GatedRepoError) as no_access:
        hf_hub_download("Qwen/Gated", "config.json", token="hf_other")
    assert no_access.value.response.status_code == 403
    with pytest.raises(GatedRepoError):
        HfApi().parse_safetensors_file_metadata("Qwen/Gated", "model.safetensors", token="hf_other")

    fake_hub.set_token("hf_ok")  # implicit token from HF_TOKEN
    assert json.loads(Path(hf_hub_download("Qwen/Gated", "config.json")).read_text()) == CONFIG
    assert fake_hub.requests[-1].authorization == "Bearer hf_ok"
    assert HfApi().model_info("Qwen/Gated").gated == "manual"


def test_gated_repo_with_warm_cache_falls_back_to_it(fake_hub: FakeHub) -> None:
    fake_hub.add_repo("Qwen/Gated", files={"config.json": CONFIG})
    path = hf_hub_download("Qwen/Gated", "config.json")
    fake_hub.add_repo("Qwen/Gated", files={"config.json": CONFIG}, gated="auto")
    fake_hub.clear_log()
    assert hf_hub_download("Qwen/Gated", "config.json") == path  # huggingface_hub swallows the 401
    assert [(r.method, r.status) for r in fake_hub.requests] == [("HEAD", 401)]


def test_private_repo_and_invalid_token(fake_hub: FakeHub) -> None:
    fake_hub.add_repo("me/private", files={"config.json": CONFIG}, private=True, authorized_tokens={"hf_me"})
    with pytest.raises(RepositoryNotFoundError) as err:
        hf_hub_download("me/private", "config.json")
    assert err.value.response.status_code == 401 and not isinstance(err.value, GatedRepoError)
    assert hf_hub_download("me/private", "config.json", token="hf_me")

    fake_hub.accepted_tokens = {"hf_me"}
    with pytest.raises(HfHubHTTPError) as bad:
        hf_hub_download(REPO, "config.json", token="hf_typo")
    assert bad.value.response.status_code == 401
    assert not isinstance(bad.value, RepositoryNotFoundError)
    assert fake_hub.requests[-1].authorization == "Bearer hf_typo"


def test_dropped_connection_raises_and_server_stays_usable(tiny: FakeHub) -> None:
    fault = tiny.inject(REPO, "model.safetensors", drop_after=16, times=1)
    with pytest.raises(httpx2.RemoteProtocolError):  # no retry in parse_safetensors_file_metadata
        HfApi().parse_safetensors_file_metadata(REPO, "model.safetensors")
    assert fault.hits == 1 and tiny.requests[-1].dropped
    assert HfApi().parse_safetensors_file_metadata(REPO, "model.safetensors").tensors

    tiny.inject(REPO, "model.safetensors", drop_after=16, times=1, reset=True)
    with pytest.raises(httpx2.ReadError):
        HfApi().parse_safetensors_file_metadata(REPO, "model.safetensors")
    assert hf_hub_download(REPO, "config.json")
    assert tiny.client_sleeps == []


def test_dropped_download_is_retried(tiny: FakeHub) -> None:
    blob = save(tensors())
    tiny.inject(REPO, "model.safetensors", drop_after=40, times=1)
    path = hf_hub_download(REPO, "model.safetensors")
    assert Path(path).read_bytes() == blob
    gets = [(r.range, r.status, r.dropped) for r in tiny.requests if r.method == "GET"]
    # http_get reads 10 MiB chunks: the 40 bytes never reached it, so it starts over without a Range
    assert gets == [(None, 200, True), (None, 200, False)]
    assert tiny.client_sleeps == [1.0]  # http_get sleeps 1 s before retrying (virtual here)


def test_download_gives_up_when_nothing_arrives(tiny: FakeHub) -> None:
    tiny.inject(REPO, "model.safetensors", drop_after=0)
    with pytest.raises(httpx2.RemoteProtocolError):
        hf_hub_download(REPO, "model.safetensors")
    assert tiny.count("GET", "model.safetensors") == 6  # first try + 5 resumes
    assert tiny.client_sleeps == [1.0] * 5
    assert try_to_load_from_cache(REPO, "model.safetensors") is None
    assert not list(Path(tiny.cache_dir or "").rglob("*.incomplete"))


def test_transient_503_on_head_is_retried(tiny: FakeHub) -> None:
    fault = tiny.inject(REPO, "config.json", status=503, times=2, methods={"HEAD"})
    assert hf_hub_download(REPO, "config.json")
    assert fault.hits == 2
    assert [(r.method, r.status) for r in tiny.requests] == [
        ("HEAD", 503),
        ("HEAD", 503),
        ("HEAD", 200),
        ("GET", 200),
    ]
    assert tiny.client_sleeps == [1.0]  # backoff of the retrying second metadata call


def test_delay_fault_trips_the_client_timeout(tiny: FakeHub) -> None:
    tiny.inject(REPO, "model.safetensors", delay=2.0, times=1)
    started = time.monotonic()
    with pytest.raises(httpx2.ReadTimeout):
        HfApi().parse_safetensors_file_metadata(REPO, "model.safetensors", timeout=0.2)
    assert time.monotonic() - started < 1.5


# ------------------------------------------------------------------------------------------ lifecycle


def test_server_stops_cleanly_with_idle_keepalive_connection() -> None:
    with FakeHub() as hub:
        hub.add_repo(REPO, files={"config.json": CONFIG})
        client = httpx2.Client()  # keeps its connection open after the request
        assert client.head(f"{hub.url}/{REPO}/resolve/main/config.json").status_code == 200
        port = hub.port
        started = time.monotonic()
    assert time.monotonic() - started < 2
    client.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert not hub.server_errors


def test_wiring_hides_machine_settings_and_reaches_subprocesses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants
    from huggingface_hub.utils import close_session

    monkeypatch.setenv("HF_TOKEN", "hf_machine")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with FakeHub() as hub:
        hub.use_with_huggingface_hub(monkeypatch, tmp_path / "home")
        hub.add_repo(REPO, files={"config.json": CONFIG})
        assert constants.ENDPOINT == os.environ["HF_ENDPOINT"] == hub.url
        assert hf_hub_download(REPO, "config.json")
        assert hub.requests[-1].authorization is None
        code = "from huggingface_hub import hf_hub_download as d; print(d('Qwen/Tiny', 'config.json'))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert Path(out.strip()).is_relative_to(tmp_path / "home" / "hub")
        assert hub.count("GET") == 1  # the subprocess found the blob in the shared cache: HEAD only
        close_session()
