"""The calculator's split export (what the docs page loads): it gives back exactly the one-file export,
and it is small (issue #20: the whole export ≤ 1 MB, the first verdict's files ≤ 150 KB gzipped)."""

from __future__ import annotations

import gzip
import json

import pytest

from qwenfit.export import calculator_json
from qwenfit.export_split import _compact, calculator_files, unpack_files


def _text(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.fixture(scope="module")
def files() -> dict[str, object]:
    return json.loads(_text(calculator_files()))  # as the page reads them: through JSON text


def test_split_export_unpacks_to_the_export_exactly(files):
    assert _text(unpack_files(files)) == _text(calculator_json())


def test_split_export_is_small(files):
    sizes = {name: len(_text(f).encode()) for name, f in files.items()}
    assert sum(sizes.values()) <= 1_000_000
    first = sum(len(gzip.compress(_text(files[n]).encode(), 9)) for n in ("index.json", "35B-A3B.json"))
    assert first <= 150_000
    assert set(files) == {"index.json", *(f"{k}.json" for k in calculator_json()["models"])}


def test_packing_escapes_what_it_reserves():
    from qwenfit.export_split import _Packer, _unpack

    value = {"a": ["~1", "^x", "!y", "plain"], "b": [1, 2, 2, 5, 5, 5], "c": {"x": 1, "y": [0, 1, 2, 3]}}
    packer = _Packer({"index.json": {"one": value, "two": value}, "m.json": {"one": value}})
    files = {name: {"pack": 1, **packer.pack(name)} for name in ("index.json", "m.json")}
    files["index.json"]["shared"] = packer.shared
    assert _text(files["m.json"]).count("plain") == 0  # shared with the index: written once
    shared: list[object] = []
    for entry in packer.shared:
        shared.append(_unpack({"t": [], "v": entry}, shared))
    assert _unpack(json.loads(_text(files["m.json"])), shared) == {"one": value}
    assert _unpack(json.loads(_text(files["index.json"])), shared) == {"one": value, "two": value}
    with pytest.raises(ValueError, match="reserves"):
        _compact({"+": 1})
