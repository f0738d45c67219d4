"""Refreshing the published-artifacts catalog from the Hub (qwenfit.loaders.refresh), against the fake Hub.

The fake repos mirror catalog repo ids (data/artifacts/Qwen3.5-35B-A3B.yaml) and serve the tiny GGUFs of
tests/fixtures/gguf under publisher-style names; what ``published()`` shows afterwards must be the
fake's exact sizes, sha256 and the fixtures' tensor types.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import pytest

from qwenfit.errors import HubError, UnknownModelError
from qwenfit.loaders import artifacts
from qwenfit.loaders.gguf import read_gguf
from qwenfit.loaders.refresh import RefreshReport, record_name, refresh

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gguf"
SPLIT = sorted((FIXTURES / "split").glob("*.gguf"))
MODEL = "Qwen3.5-35B-A3B"
REPO = "unsloth/Qwen3.5-35B-A3B-GGUF"
GATED = "bartowski/Qwen_Qwen3.5-35B-A3B-GGUF"
FILES = {
    "Qwen3.5-35B-A3B-Q4_K_M.gguf": FIXTURES / "moe-vision-mtp-Q8_0.gguf",
    "Qwen3.5-35B-A3B-UD-Q4_K_XL.gguf": FIXTURES / "moe-sharded-Q8_0.gguf",
    **{f"Q8_0/Qwen3.5-35B-A3B-Q8_0-{i:05d}-of-00003.gguf": p for i, p in enumerate(SPLIT, 1)},
    "mmproj-F16.gguf": FIXTURES / "mmproj-moe-vision-mtp.gguf",
}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """QWENFIT_CACHE in tmp_path (refresh_dir() honours it); published()'s cache cleared around the test."""
    monkeypatch.setenv("QWENFIT_CACHE", str(tmp_path / "qwenfit"))
    artifacts.clear_caches()
    yield tmp_path / "qwenfit" / "artifacts"
    artifacts.clear_caches()


@pytest.fixture
def hub(fake_hub):
    files = {name: path.read_bytes() for name, path in FILES.items()}
    fake_hub.add_repo(REPO, files={**files, "README.md": "# GGUFs\n", ".gitattributes": "*.gguf lfs\n"})
    return fake_hub


def _types(path: Path) -> dict[str, str]:
    return {t.name: t.ggml_type for t in read_gguf(path).tensors}


def test_refresh_writes_the_record_and_published_shows_it(cache, hub):
    seen: list[tuple[int, int, str]] = []
    report = refresh(repos=[REPO], progress=lambda d, t, w: seen.append((d, t, w)))
    assert isinstance(report, RefreshReport) and report.failed == () and report.out_dir == str(cache)
    (r,) = report.repos
    assert (r.repo, r.ok, r.model, r.revision) == (REPO, True, MODEL, hub.commit_sha(REPO))
    assert (r.files, r.ggufs_read) == (len(FILES) + 2, 5)  # 2 single GGUFs + 3 split parts; not the mmproj
    assert 0 < r.header_bytes < sum(FILES[n].stat().st_size for n in FILES if "mmproj" not in n)
    assert r.header_bytes == report.header_bytes
    assert seen[0] == (0, 5, REPO) and sorted(d for d, _, _ in seen[1:]) == [1, 2, 3, 4, 5]
    assert {w for _, _, w in seen[1:]} == {f"{REPO}/{n}" for n in FILES if "mmproj" not in n}
    assert hub.count("GET", "mmproj-F16.gguf") == 0

    path = cache / "unsloth--Qwen3.5-35B-A3B-GGUF.json"
    assert r.path == str(path) and record_name(REPO) == path.name
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temporary file left behind
    record = json.loads(path.read_text())
    assert set(record) == {"repo", "revision", "retrieved", "source", "files"}
    assert record["repo"] == REPO and record["revision"] == hub.commit_sha(REPO)
    assert record["source"] == "huggingface_hub"
    assert record["retrieved"] == datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    files = {f["name"]: f for f in record["files"]}
    assert set(files) == {*FILES, "README.md", ".gitattributes"}
    for name, local in FILES.items():
        data = local.read_bytes()
        assert files[name]["size_bytes"] == len(data)
        assert files[name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert files[name]["tensor_types"] == (None if "mmproj" in name else _types(local))
    assert files["README.md"] == {"name": "README.md", "size_bytes": 8, "sha256": None, "tensor_types": None}
    assert all(set(f) == {"name", "size_bytes", "sha256", "tensor_types"} for f in record["files"])

    (repo,) = [p for p in artifacts.published_for(MODEL) if p.id == REPO]
    assert repo.revision == hub.commit_sha(REPO) and repo.evidence == "hub-listing"
    q4 = repo.file("Q4_K_M")
    assert q4 is not None and q4.size_bytes == FILES["Qwen3.5-35B-A3B-Q4_K_M.gguf"].stat().st_size
    assert q4.tensor_types == tuple(sorted(_types(FILES["Qwen3.5-35B-A3B-Q4_K_M.gguf"]).items()))
    ud = repo.file("UD-Q4_K_XL")
    assert ud is not None and ud.tensor_types == tuple(
        sorted(_types(FIXTURES / "moe-sharded-Q8_0.gguf").items())
    )
    q8 = repo.file("Q8_0")
    assert q8 is not None and q8.split and len(q8.parts) == 3
    assert q8.size_bytes == sum(p.stat().st_size for p in SPLIT)
    assert q8.sha256 == hashlib.sha256(SPLIT[0].read_bytes()).hexdigest()
    assert repo.mmproj() is not None and repo.mmproj().tensor_types is None
    assert {f.quant for f in repo.files} == {
        "Q4_K_M",
        "UD-Q4_K_XL",
        "Q8_0",
        "mmproj-F16",
    }  # the refreshed list


def test_a_model_refreshes_its_hub_repos_and_reports_each(cache, hub):
    hub.add_repo(
        GATED, files={"x-Q8_0.gguf": SPLIT[0].read_bytes()}, gated="manual", authorized_tokens=["hf_ok"]
    )
    hub.add_repo(
        "Qwen/Qwen3.5-35B-A3B-FP8", files={"config.json": {"model_type": "qwen3_5_moe"}, "README.md": "x"}
    )
    cache.mkdir(parents=True)
    old = cache / record_name(GATED)
    old.write_text(json.dumps({"repo": GATED, "revision": "old", "files": []}))  # an earlier refresh
    report = refresh(models=["35B-A3B"])
    by_id = {r.repo: r for r in report.repos}
    hub_ids = [p.id for p in artifacts.published_for(MODEL) if p.hub_id]
    assert list(by_id) == hub_ids  # every Hub repo of the model, in catalog order
    assert by_id[REPO].ok and by_id["Qwen/Qwen3.5-35B-A3B-FP8"].ok
    assert by_id["Qwen/Qwen3.5-35B-A3B-FP8"].ggufs_read == 0 and by_id["Qwen/Qwen3.5-35B-A3B-FP8"].files == 2
    gated = by_id[GATED]
    assert not gated.ok and f"{GATED} is gated" in gated.reason and "HF_TOKEN" in gated.reason
    assert gated.files == 1 and gated.path is None
    missing = by_id["ggml-org/Qwen3.5-35B-A3B-GGUF"]
    assert not missing.ok and "repository not found" in missing.reason and "\n" not in missing.reason
    assert dict(report.skipped) == {
        "ollama:qwen3.5:35b-a3b": "an Ollama library tag, not a Hugging Face repo: nothing to list",
        "ollama:qwen3.5:35b-a3b-q8_0": "an Ollama library tag, not a Hugging Face repo: nothing to list",
        "ollama:qwen3.5:35b": "an Ollama library tag, not a Hugging Face repo: nothing to list",
        "qwen/qwen3.5-35b-a3b": "an LM Studio catalog key, not a Hugging Face repo: nothing to list",
    }
    written = sorted(p.name for p in cache.iterdir())
    assert written == sorted([record_name(REPO), record_name("Qwen/Qwen3.5-35B-A3B-FP8"), old.name])
    assert json.loads(old.read_text())["revision"] == "old"  # a failed repo keeps its previous record
    text = str(report)
    assert f"failed  {GATED}: {GATED} is gated" in text and f"ok      {REPO}" in text
    assert "skipped ollama:qwen3.5:35b" in text

    # with the token the gated repo refreshes too
    assert refresh(repos=[GATED], token="hf_ok").repos[0].ok
    assert json.loads(old.read_text())["revision"] == hub.commit_sha(GATED)


def test_a_failing_header_fails_its_repo_only(cache, hub):
    hub.add_repo("Acme/Other-GGUF", files={"o-Q8_0.gguf": SPLIT[0].read_bytes()})
    hub.inject(REPO, "Qwen3.5-35B-A3B-UD-Q4_K_XL.gguf", drop_after=10)
    report = refresh(repos=[REPO, "Acme/Other-GGUF"], workers=1)
    failed, ok = report.repos
    assert (
        not failed.ok and "Qwen3.5-35B-A3B-UD-Q4_K_XL.gguf" in failed.reason and "try again" in failed.reason
    )
    assert ok.ok and ok.model is None and ok.ggufs_read == 1
    assert sorted(p.name for p in cache.iterdir()) == [record_name("Acme/Other-GGUF")]


def test_corrupt_gguf_fails_its_repo(cache, fake_hub):
    fake_hub.add_repo("Acme/Bad-GGUF", files={"b-Q8_0.gguf": b"GGUF" + b"\xff" * 100})
    (r,) = refresh(repos=["Acme/Bad-GGUF"]).repos
    assert not r.ok and r.reason.startswith("Acme/Bad-GGUF/b-Q8_0.gguf: ")
    assert not cache.exists() or list(cache.iterdir()) == []


def test_offline_is_an_error_before_any_work(cache, hub, tmp_path):
    hub.set_offline()
    with pytest.raises(HubError) as info:
        refresh(repos=[REPO], out_dir=tmp_path / "out")
    assert "HF_HUB_OFFLINE" in str(info.value) and len(str(info.value).splitlines()) == 1
    assert hub.requests == [] and not (tmp_path / "out").exists()


def test_unreachable_hub_fails_each_repo(cache, hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    report = refresh(repos=[REPO, "Acme/Other"])
    assert [r.ok for r in report.repos] == [False, False]
    assert all("cannot be reached" in r.reason for r in report.repos)


def test_out_dir_and_selection_errors(cache, hub, tmp_path):
    report = refresh(repos=[REPO, "ollama:qwen3.5:35b", "not a repo"], out_dir=tmp_path / "elsewhere")
    assert report.out_dir == str(tmp_path / "elsewhere") and report.repos[0].ok
    assert (tmp_path / "elsewhere" / record_name(REPO)).is_file() and not cache.exists()
    assert dict(report.skipped) == {
        "ollama:qwen3.5:35b": "an Ollama library tag, not a Hugging Face repo: nothing to list",
        "not a repo": "not a Hugging Face repo id (owner/name)",
    }
    with pytest.raises(UnknownModelError):
        refresh(models=["no-such-model"])


def test_the_cli_refreshes_then_lists_what_it_read(cache, hub, capsys):
    """`qwenfit artifacts MODEL --refresh`: the report (each repo ok or why not, tags and keys skipped),
    then the listing with the refreshed files."""
    import qwenfit.cli

    assert qwenfit.cli.main(["artifacts", MODEL, "--refresh", "--kind", "gguf-repo"]) == 0
    out = capsys.readouterr().out
    assert f"  ok      {REPO}: {len(FILES) + 2} files, 5 GGUF headers" in out
    assert "  failed  Qwen/Qwen3.5-35B-A3B:" in out  # not on the fake Hub: reported, not fatal
    assert "  skipped ollama:qwen3.5:35b-a3b:" in out
    assert f"  {REPO}  [gguf-repo, gguf; hub-listing]" in out
    assert "UD-Q4_K_XL" in out and "3 parts" in out
