"""Catalog lookup: names, repo ids, case, suggestions; data found from the checkout."""

from __future__ import annotations

import json

import pytest

import qwenfit
from qwenfit.loaders import catalog


@pytest.mark.parametrize(
    "source",
    [
        "35B-A3B",
        "35b-a3b",
        "Qwen3.5-35B-A3B",
        "qwen3.5-35b-a3b",
        "Qwen/Qwen3.5-35B-A3B",
        " QWEN/QWEN3.5-35B-A3B ",
    ],
)
def test_lookup_forms(source):
    assert qwenfit.load(source).name == "Qwen3.5-35B-A3B"


def test_qwen3_next_instruct_and_thinking_share_one_config():
    a = qwenfit.load("Qwen/Qwen3-Next-80B-A3B-Instruct")
    b = qwenfit.load("Qwen3-Next-80B-A3B-Thinking")
    assert a is b


def test_unknown_name_lists_closest():
    with pytest.raises(qwenfit.UnknownModelError) as info:
        qwenfit.load("Qwen3.5-35B-A4B")
    err = info.value
    assert isinstance(err, LookupError) and isinstance(err, qwenfit.QwenfitError)
    assert err.suggestions[0] == "Qwen3.5-35B-A3B"
    assert "Did you mean 'Qwen3.5-35B-A3B'" in str(err)


def test_unknown_repo_id():
    with pytest.raises(qwenfit.UnknownModelError, match="meta-llama/Llama-3-8B"):
        qwenfit.load("meta-llama/Llama-3-8B", hub=False)


def test_every_catalog_file_records_its_source():
    for entry in catalog.entries():
        meta = json.loads(entry.path.read_text())["_qwenfit"]
        assert meta["source"] and meta["published_total_source"] and meta["repo_ids"]
        assert entry.path.name == f"{entry.name}.json"


def test_names_are_unique_across_entries():
    # building the index raises on a clash
    assert len(catalog._index()) >= 3 * len(catalog.entries())
