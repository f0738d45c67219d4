"""GGUF repos on the Hub (``owner/name[:QUANT]``), against the local fake Hub (tests/fakehub.py).

The files served are the GGUF fixtures of tests/fixtures/gguf (written by llama.cpp's converter,
llama-quantize and llama-gguf-split); every spec read from the Hub must equal the local load of the
same file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from builders import gguf_of, safetensors_bytes, tiny_config, write_gguf

import qwenfit
from qwenfit.core.model.checkpoint import StoredCheckpoint, StoredEntry
from qwenfit.errors import CheckpointError, HubError
from qwenfit.loaders import hub_gguf
from qwenfit.loaders.config import spec_from_config
from qwenfit.loaders.hub_gguf import find_best_model, quant_tag, split_set

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gguf"
TEXT_GGUFS = sorted(p.name for p in FIXTURES.glob("*.gguf") if not p.name.startswith("mmproj"))
SPLIT = sorted((FIXTURES / "split").glob("*.gguf"))
REPO = "unsloth/Qwen3.5-35B-A3B-GGUF"


def _bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _fetched(hub, name: str) -> int:
    """Bytes asked for by range reads of ``name`` (``bytes=a-b``, inclusive)."""
    spans = [r.range.removeprefix("bytes=").split("-") for r in hub.range_reads(name) if r.range]
    return sum(int(b) - int(a) + 1 for a, b in spans)


def _assert_same(hub_spec: qwenfit.ModelSpec, local: qwenfit.ModelSpec, *, renamed: bool = False) -> None:
    """Equal specs, checkpoints and weights, as two loads of the same file are (``renamed``: the
    Hub serves it under another name, so the spec's name and the files' names differ)."""
    if renamed:
        hub_spec = dataclasses.replace(hub_spec, name=local.name)
    assert hub_spec == local and hub_spec.name == local.name
    a, b = hub_spec.checkpoint, local.checkpoint
    assert a is not None and b is not None

    def entries(ck: StoredCheckpoint) -> list[StoredEntry]:
        return [dataclasses.replace(t, file="") if renamed else t for t in ck.tensors]

    assert (a.format, a.file_bytes, a.quantization) == (b.format, b.file_bytes, b.quantization)
    assert entries(a) == entries(b) and (renamed or a.files == b.files)
    assert a.match is not None and b.match is not None
    assert (a.match.exact, a.match.missing, a.match.extra) == (b.match.exact, b.match.missing, b.match.extra)
    assert hub_spec.params == local.params
    wa, wb = qwenfit.weights(hub_spec), qwenfit.weights(local)
    assert wa.total_bytes == wb.total_bytes and wa.tensors == wb.tensors


@pytest.fixture
def quants_repo(fake_hub):
    """A repo laid out like unsloth's: several quants, a split set in a folder, an mmproj, no config.json."""
    files = {
        ".gitattributes": "*.gguf filter=lfs diff=lfs merge=lfs -text\n",
        "README.md": "# GGUFs\n",
        "Qwen3.5-35B-A3B-BF16.gguf": _bytes("moe-vision-mtp.gguf"),
        "Qwen3.5-35B-A3B-Q4_K_M.gguf": _bytes("moe-vision-mtp-Q8_0.gguf"),
        "Qwen3.5-35B-A3B-UD-Q4_K_XL.gguf": _bytes("moe-sharded-Q8_0.gguf"),
        "mmproj-F16.gguf": _bytes("mmproj-moe-vision-mtp.gguf"),
        **{
            f"Q8_0/Qwen3.5-35B-A3B-Q8_0-{i:05d}-of-00003.gguf": p.read_bytes() for i, p in enumerate(SPLIT, 1)
        },
    }
    fake_hub.add_repo(REPO, files=files)
    return fake_hub


# ------------------------------------------------------------------------------ equal to local loads


@pytest.mark.parametrize("fixture", TEXT_GGUFS)
def test_each_fixture_from_the_hub_equals_its_local_load(tmp_path, fake_hub, fixture):
    # llama.cpp skips files named "*mtp-*" (draft sidecars, gguf_filename_is_model): publishers write MTP
    name = fixture.replace("mtp-", "MTP-")
    local = tmp_path / name
    local.write_bytes(_bytes(fixture))
    repo = f"Acme/{name.removesuffix('.gguf')}-GGUF"
    fake_hub.add_repo(
        repo, files={name: _bytes(fixture), "mmproj-x-F16.gguf": _bytes("mmproj-moe-sharded.gguf")}
    )
    _assert_same(qwenfit.load(repo), qwenfit.load(local))
    # header-only: ranges of the text GGUF, nothing of the mmproj
    assert fake_hub.count("GET", "mmproj-x-F16.gguf") == 0
    reads = fake_hub.range_reads(name)
    assert [r.range for r in reads] == ["bytes=0-100000"] and fake_hub.count("GET", name) == 1


def test_split_set_from_the_hub_equals_its_local_load(fake_hub):
    files = {f"Q8_0/{p.name}": p.read_bytes() for p in SPLIT}
    fake_hub.add_repo("Acme/Split-GGUF", files={**files, "README.md": "x"})
    seen: list[tuple[int, int, str]] = []
    spec = qwenfit.load("Acme/Split-GGUF:Q8_0", progress=lambda d, t, n: seen.append((d, t, n)))
    _assert_same(spec, qwenfit.load(SPLIT[0]))
    assert seen == [(i, 3, p.name) for i, p in enumerate(SPLIT, 1)]
    assert spec.checkpoint is not None and spec.checkpoint.files == tuple(p.name for p in SPLIT)
    assert spec.source.startswith("Acme/Split-GGUF/Q8_0/moe-sharded-Q8_0-00001-of-00003.gguf")


def test_header_is_read_in_growing_ranges(fake_hub, monkeypatch):
    monkeypatch.setattr(hub_gguf, "FIRST_READ_BYTES", 1000)
    name = "moe-sharded.gguf"  # 18464-byte header
    fake_hub.add_repo("Acme/Grow-GGUF", files={name: _bytes(name)})
    _assert_same(qwenfit.load("Acme/Grow-GGUF"), qwenfit.load(FIXTURES / name))
    ranges = [r.range for r in fake_hub.range_reads(name)]
    assert ranges[:3] == ["bytes=0-999", "bytes=1000-2999", "bytes=3000-6999"]
    assert all(r.status == 206 for r in fake_hub.range_reads(name))
    assert 18464 <= _fetched(fake_hub, name) < 2 * 18464  # the header and less than one step more


def test_long_arrays_are_skipped_not_downloaded(tmp_path, fake_hub):
    spec = spec_from_config(tiny_config(moe=True, vision=False))
    arch, meta, tensors = gguf_of(spec)
    meta["tokenizer.ggml.token_type"] = [1] * 500_000  # 2 MB of u32 the parser skips (> MAX_KEEP_ARRAY)
    path = write_gguf(tmp_path / "big-Q8_0.gguf", arch, meta, tensors)
    fake_hub.add_repo("Acme/Big-GGUF", files={path.name: path.read_bytes()})
    _assert_same(qwenfit.load("Acme/Big-GGUF"), qwenfit.load(path))
    assert path.stat().st_size > 2_000_000
    assert _fetched(fake_hub, path.name) < 1_000_000  # the 2 MB array never crossed the wire


# ------------------------------------------------------------------------------ choosing the file


@pytest.mark.parametrize(
    ("source", "fixture"),
    [
        (f"{REPO}:Q4_K_M", "moe-vision-mtp-Q8_0.gguf"),
        (f"{REPO}:q4_k_m", "moe-vision-mtp-Q8_0.gguf"),  # tags are case-insensitive
        (f"{REPO}:UD-Q4_K_XL", "moe-sharded-Q8_0.gguf"),
        (f"{REPO}:ud-q4_k_xl", "moe-sharded-Q8_0.gguf"),
        (f"{REPO}:BF16", "moe-vision-mtp.gguf"),
        (REPO, "moe-vision-mtp-Q8_0.gguf"),  # no tag: Q4_K_M first, as llama.cpp
        (f"{REPO}:", "moe-vision-mtp-Q8_0.gguf"),  # an empty tag is no tag
    ],
)
def test_tag_picks_the_file(quants_repo, source, fixture):
    _assert_same(qwenfit.load(source), qwenfit.load(FIXTURES / fixture), renamed=True)


def test_split_tag_reads_every_part(quants_repo):
    spec = qwenfit.load(f"{REPO}:Q8_0")
    assert spec.checkpoint is not None
    assert spec.checkpoint.files == tuple(f"Qwen3.5-35B-A3B-Q8_0-{i:05d}-of-00003.gguf" for i in (1, 2, 3))
    assert spec.name == "Qwen3.5-35B-A3B-Q8_0-00001-of-00003"
    assert spec.checkpoint.file_bytes == sum(p.stat().st_size for p in SPLIT)
    _assert_same(spec, qwenfit.load(SPLIT[0]), renamed=True)


def test_unknown_tag_lists_the_available_ones(quants_repo):
    with pytest.raises(HubError) as info:
        qwenfit.load(f"{REPO}:Q3_K_S")
    msg = str(info.value)
    assert len(msg.splitlines()) == 1 and info.value.repo_id == REPO
    assert "no GGUF file matches the quant 'Q3_K_S'" in msg
    assert "available: Q8_0, BF16, Q4_K_M, UD-Q4_K_XL" in msg and f"{REPO}:<QUANT>" in msg
    with pytest.raises(HubError, match="is not a quant tag"):
        qwenfit.load(f"{REPO}:Q4*")


@pytest.mark.parametrize(
    ("names", "tag", "expected"),
    [
        (["a-Q8_0.gguf", "a-Q4_K_M.gguf", "a-BF16.gguf"], None, "a-Q4_K_M.gguf"),
        (["a-BF16.gguf", "a-Q8_0.gguf"], None, "a-Q8_0.gguf"),
        (["mmproj-F16.gguf", "a-BF16.gguf", "b-IQ2_XXS.gguf"], None, "a-BF16.gguf"),
        (["a-IQ2_XXS-00002-of-00002.gguf", "a-IQ2_XXS-00001-of-00002.gguf"], None,
         "a-IQ2_XXS-00001-of-00002.gguf"),
        (["mmproj-Q4_K_M.gguf", "imatrix-Q4_K_M.gguf", "a-mtp-Q4_K_M.gguf", "x-Q4_K_M.gguf"], None,
         "x-Q4_K_M.gguf"),
        (["a-Q4_K_M.gguf", "a-UD-Q4_K_M.gguf"], "ud-q4_k_m", "a-UD-Q4_K_M.gguf"),
        (["a-UD-Q4_K_XL.gguf"], "Q4_K_XL", "a-UD-Q4_K_XL.gguf"),  # a fragment is enough, as llama.cpp
        (["Q4_K_M/a-Q4_K_M-00002-of-00002.gguf", "Q4_K_M/a-Q4_K_M-00001-of-00002.gguf"], "Q4_K_M",
         "Q4_K_M/a-Q4_K_M-00001-of-00002.gguf"),
        (["a-Q4_K_M.gguf"], "Q8_0", None),  # a tag never falls back
        (["README.md", "config.json"], None, None),
        (["a-Q4_K_M.GGUF"], None, None),  # ".gguf" is matched case-sensitively, as llama.cpp
    ],
)  # fmt: skip
def test_find_best_model_is_llama_cpps(names, tag, expected):
    assert find_best_model(names, tag) == expected


def test_split_set_and_quant_tags():
    names = ["x/a-Q8_0-00002-of-00003.gguf", "x/a-Q8_0-00001-of-00003.gguf", "x/a-Q8_0-00003-of-00003.gguf",
             "x/b-Q8_0-00001-of-00002.gguf", "a-Q8_0.gguf"]  # fmt: skip
    assert split_set(names, "x/a-Q8_0-00001-of-00003.gguf") == sorted(names[:3])
    assert split_set(names, "a-Q8_0.gguf") == ["a-Q8_0.gguf"]
    assert [
        quant_tag(n) for n in ("a-UD-Q4_K_XL.gguf", "a-q8_0-00001-of-00002.gguf", "a.BF16.gguf", "nodash")
    ] == [
        "UD-Q4_K_XL",
        "Q8_0",
        "BF16",
        None,
    ]


def test_missing_split_part_is_a_hub_error(fake_hub):
    files = {p.name: p.read_bytes() for p in SPLIT[:2]}
    fake_hub.add_repo("Acme/Broken-GGUF", files=files)
    with pytest.raises(HubError, match=r"split part moe-sharded-Q8_0-00003-of-00003\.gguf .* is missing"):
        qwenfit.load("Acme/Broken-GGUF")


# ------------------------------------------------------------------------------ which reader


def test_safetensors_repo_with_ggufs_reads_the_checkpoint_unless_tagged(fake_hub):
    config = tiny_config()
    tensors = {s.name: (s.dtype, s.shape) for s in spec_from_config(config).inventory.hf_tensors()}
    files = {"config.json": config, "model.safetensors": safetensors_bytes(tensors)}
    fake_hub.add_repo("Acme/Both", files={**files, "Both-Q8_0.gguf": _bytes("moe-sharded-Q8_0.gguf")})
    assert qwenfit.load("Acme/Both").checkpoint.format == "safetensors"
    assert qwenfit.load("Acme/Both:Q8_0").checkpoint.format == "gguf"


def test_repo_with_config_but_only_ggufs_reads_the_gguf(fake_hub):
    fake_hub.add_repo(
        "Acme/Cfg-GGUF", files={"config.json": tiny_config(), "m-Q8_0.gguf": _bytes("next-mtp-Q8_0.gguf")}
    )
    _assert_same(qwenfit.load("Acme/Cfg-GGUF"), qwenfit.load(FIXTURES / "next-mtp-Q8_0.gguf"), renamed=True)


def test_repo_with_nothing_readable(fake_hub):
    fake_hub.add_repo(
        "Acme/Empty", files={"README.md": "x", "mmproj-F16.gguf": _bytes("mmproj-moe-sharded.gguf")}
    )
    with pytest.raises(HubError, match=r"no config\.json and no GGUF model file"):
        qwenfit.load("Acme/Empty")
    with pytest.raises(HubError, match="has no GGUF model file"):
        qwenfit.load("Acme/Empty:Q4_K_M")


def test_catalog_repo_with_tag_goes_to_the_hub(fake_hub):
    fake_hub.add_repo(
        "Qwen/Qwen3.5-35B-A3B", files={"Qwen3.5-35B-A3B-Q8_0.gguf": _bytes("moe-sharded-Q8_0.gguf")}
    )
    assert qwenfit.load("Qwen/Qwen3.5-35B-A3B:Q8_0").checkpoint.format == "gguf"
    with pytest.raises(qwenfit.QwenfitError, match="unknown model"):
        qwenfit.load("Qwen/Qwen3.5-35B-A3B:Q8_0", hub=False)


# ------------------------------------------------------------------------------ cache, offline, failures


def test_cached_file_is_read_from_disk(quants_repo):
    from huggingface_hub import hf_hub_download

    hf_hub_download(REPO, "Qwen3.5-35B-A3B-Q4_K_M.gguf")
    quants_repo.clear_log()
    spec = qwenfit.load(f"{REPO}:Q4_K_M")
    assert quants_repo.range_reads() == [] and [r.kind for r in quants_repo.requests] == ["api"]
    _assert_same(spec, qwenfit.load(FIXTURES / "moe-vision-mtp-Q8_0.gguf"), renamed=True)


def test_offline_reads_a_cached_gguf_and_names_what_is_missing(quants_repo):
    from huggingface_hub import hf_hub_download

    hf_hub_download(REPO, "Qwen3.5-35B-A3B-Q4_K_M.gguf")
    quants_repo.set_offline()
    quants_repo.clear_log()
    assert qwenfit.load(f"{REPO}:Q4_K_M").checkpoint.file_bytes == len(_bytes("moe-vision-mtp-Q8_0.gguf"))
    assert qwenfit.load(REPO).checkpoint.format == "gguf"  # the only cached model GGUF
    with pytest.raises(HubError) as info:
        qwenfit.load(f"{REPO}:Q8_0")
    assert "HF_HUB_OFFLINE" in str(info.value) and "Q4_K_M" in str(info.value)  # lists what the cache has
    assert quants_repo.requests == []


def test_offline_without_cache(quants_repo):
    quants_repo.set_offline()
    with pytest.raises(HubError) as info:
        qwenfit.load(f"{REPO}:Q4_K_M")
    msg = str(info.value)
    assert len(msg.splitlines()) == 1 and REPO in msg and "HF_HUB_OFFLINE" in msg
    assert "not in the local Hugging Face cache" in msg
    assert quants_repo.requests == []


@pytest.mark.parametrize("token", [None, "hf_wrong"])
def test_gated_gguf_repo(fake_hub, token):
    fake_hub.add_repo(
        "Acme/Gated-GGUF",
        files={"m-Q8_0.gguf": _bytes("moe-sharded-Q8_0.gguf")},
        gated="manual",
        authorized_tokens=["hf_ok"],
    )
    with pytest.raises(HubError) as info:
        qwenfit.load("Acme/Gated-GGUF", token=token)
    assert "Acme/Gated-GGUF is gated" in str(info.value) and len(str(info.value).splitlines()) == 1
    assert qwenfit.load("Acme/Gated-GGUF", token="hf_ok").checkpoint.format == "gguf"
    assert fake_hub.requests[-1].authorization == "Bearer hf_ok"


def test_missing_repo(fake_hub):
    with pytest.raises(HubError, match="Acme/Nope-GGUF: repository not found"):
        qwenfit.load("Acme/Nope-GGUF:Q4_K_M")


def test_connection_dropped_mid_header(quants_repo):
    quants_repo.inject(REPO, "Qwen3.5-35B-A3B-Q4_K_M.gguf", drop_after=100, times=1)
    with pytest.raises(HubError) as info:
        qwenfit.load(f"{REPO}:Q4_K_M")
    assert "Qwen3.5-35B-A3B-Q4_K_M.gguf" in str(info.value) and "try again" in str(info.value)
    assert qwenfit.load(f"{REPO}:Q4_K_M").checkpoint.format == "gguf"  # the next attempt works


def test_truncated_gguf_is_a_checkpoint_error_naming_the_file(fake_hub):
    data = _bytes("moe-sharded-Q8_0.gguf")
    fake_hub.add_repo("Acme/Cut-GGUF", files={"m-Q8_0.gguf": data[:20_000]})  # header whole, data cut
    with pytest.raises(CheckpointError, match=r"Acme/Cut-GGUF/m-Q8_0\.gguf: .*truncated"):
        qwenfit.load("Acme/Cut-GGUF")


def test_revision_and_token_are_passed(fake_hub):
    fake_hub.add_repo(
        "Acme/Priv-GGUF",
        files={"m-Q8_0.gguf": _bytes("moe-sharded-Q8_0.gguf")},
        private=True,
        authorized_tokens=["hf_me"],
    )
    sha = fake_hub.commit_sha("Acme/Priv-GGUF")
    spec = qwenfit.load("Acme/Priv-GGUF:Q8_0", revision=sha, token="hf_me")
    assert spec.checkpoint.format == "gguf" and f"Acme/Priv-GGUF@{sha}/" in spec.source
    assert all(r.authorization == "Bearer hf_me" for r in fake_hub.requests)
    assert all(r.revision == sha for r in fake_hub.requests if r.kind == "resolve")
