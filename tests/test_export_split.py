"""The calculator's split export (what the docs page loads): it gives back exactly the one-file export,
and it is small (issue #20: the whole export ≤ 1 MB, the first verdict's files ≤ 150 KB gzipped)."""

from __future__ import annotations

import gzip
import json

import pytest
from builders import has_row_columns, ngl_records

from qwenfit.export import calculator_json
from qwenfit.export_split import _compact, calculator_files, pack_value, unpack_files, unpack_value


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


def test_one_value_packs_and_unpacks_exactly():
    """pack_value (plan mode's planner.json and variants.json): dicts keyed "placement|name" by
    columns, repeated blocks of a list written once, integer lists as their differences."""
    layers = [1017126912 + 1686528768 * k - 12974848 * (k // 4) for k in range(41)]
    env = {f"gpu{n}-ngl{k}|{name}": (v if name != "exps" else [0]) for n in (1, 2)
           for k, v in enumerate(layers) for name in ("w:gpu", "w:cpu", "exps")}  # fmt: skip
    env["gpu2-ts3-2|rexps"] = 7
    value = {"env": env, "down": [5, 3, 1, -1, -3, -3, -3, 0.5], "rows": [["a", 1]] * 9 + [["b"]],
             "keys": {"|x": 1, "a|": 2, "b|c|d": 3}, "few": {"p|q": 1},
             "esc": ["~0", "^1", "!2"]}  # fmt: skip
    packed = json.loads(_text(pack_value(value)))
    assert _text(unpack_value(packed)) == _text(value)
    assert len(_text(packed)) < len(_text(value)) / 4
    assert '"|"' in _text(packed) and '"*"' in _text(packed) and '"+"' in _text(packed)
    for reserved in ("+", "*", "%", "|", "&", "$"):
        with pytest.raises(ValueError, match="reserves"):
            pack_value({"a": {reserved: 1}})
    with pytest.raises(ValueError, match="pack"):
        unpack_value({**packed, "pack": 1})


def test_the_export_packs_as_one_value_exactly():
    assert _text(unpack_value(json.loads(_text(pack_value(calculator_json()))))) == _text(calculator_json())


def test_formula_records_share_templates():
    """Records of one shape that differ only by constants are written as one template and rows of
    the constants; a record of another shape, or with too much of its own, stays whole."""
    tree = ["+", ["*", ["var", "ctx"], 12288], ["max", ["var", "seqs"], 1]]
    records = [{"model": f"m{k}", "terms": {"kv": ["*", tree, 1000 + k], "w": 5}} for k in range(6)]
    records += [{"model": "odd", "terms": {"kv": 1}}, {"model": "other", "terms": {"kv": 2}}]
    packed = json.loads(_text(pack_value({"formulas": records})))
    assert _text(unpack_value(packed)) == _text({"formulas": records})
    assert _text(packed).count("12288") == 1


def test_formula_rows_by_columns():
    """Rows of one template that repeat their model's numbers and step their placement's are written
    by columns (runs and differences) where that is shorter, and come back exactly, in their order."""
    records = ngl_records()
    packed = json.loads(_text(pack_value({"formulas": records})))
    assert has_row_columns(packed)
    assert _text(unpack_value(packed)) == _text({"formulas": records})
    rows_text = _text(packed)
    assert rows_text.count("86016") == 1 and rows_text.count("90112") == 1  # each model's number once


def test_strings_relative_to_the_records_placement():
    """A record's strings that begin with its own placement and "|" are written relative to it, so
    records for other placements share their template without a slot for them; strings that begin
    with "@" (the mark) or with another placement come back as they were."""
    records = [
        {
            "model": "m",
            "placement": p,
            "terms": {"w": ["var", f"{p}|w:gpu"], "o": ["var", "gpu9|w"], "a": "@x"},
        }
        for p in ("gpu1-ngl1", "gpu1-ngl2", "gpu2-ts3-1", "cpu")
    ]
    records.append({"model": "n", "terms": {"w": ["var", "@|w:gpu"], "a": "@@"}})  # no placement
    packed = json.loads(_text(pack_value({"formulas": records})))
    assert _text(unpack_value(packed)) == _text({"formulas": records})
    assert "gpu1-ngl1|w:gpu" not in _text(packed)


def test_weight_columns_written_as_sums():
    """A column of a "placement|name" dict that adds up with the others of its kind to a constant
    (a placement's weights on the CPU = the model's - those on the GPUs) is written as those sums;
    it unpacks exactly, also where a placement has only some of the others."""
    total, layer = 68_348_520_960, 1_686_528_768
    env: dict[str, int] = {}
    for n in range(1, 12):
        env[f"gpu1-ngl{n}|w:gpu"] = n * layer + n % 3
        env[f"gpu1-ngl{n}|w:cpu"] = total - n * layer - n % 3
        env[f"gpu1-ngl{n}|r:x"] = n * 7
    for n in range(1, 5):
        env[f"gpu2-ts{n}|w:gpu0"] = n * layer
        env[f"gpu2-ts{n}|w:gpu1"] = 2 * layer + n * 13
        env[f"gpu2-ts{n}|w:cpu"] = total - (n + 2) * layer - n * 13
    packed = json.loads(_text(pack_value({"env": env})))
    assert _text(unpack_value(packed)) == _text({"env": env})
    assert str(total - layer - 1) not in _text(packed)  # the CPU column: sums, not its values


def test_a_dict_value_close_to_the_one_before_is_a_patch_of_it():
    """Ollama's weight inputs are llama.cpp's but for the artifact's name: a dict value close to the
    dict value before it is written as its differences from it ({"<": [that key, patch]}), keys in
    their own order, added, removed or changed, lists longer or shorter; it unpacks exactly."""
    env = {f"gpu1|w:{k}": 1_000_000_007 * k for k in range(40)}
    quants = {
        "llama.cpp": {"Q4": {"env": {**env, "a:ref": "x.gguf"}}, "Q8": {"env": {**env, "a:ref": "y.gguf"}}},
        "ollama": {
            "Q4": {"env": {"a:tag": "t", **env, "a:ref": "z"}},
            "Q8": {"env": {**env, "a:ref": "y.gguf"}},
        },
        "other": {"Q4": [1, 2, 3]},
        "lm-studio": {"Q4": {"env": {**env, "a:ref": "x.gguf", "list": [1, 2]}}, "Q8": {"env": {}}},
        "five": [{"a": 1, "b": [1, 2, 3, 4, 5, 6]}, {"a": 1, "b": [1, 2, 3, 4, 5, 6, 7]}],
    }
    packed = json.loads(_text(pack_value(quants)))
    assert _text(unpack_value(packed)) == _text(quants)
    assert '"<"' in _text(packed)
    alone = {k: v for k, v in quants.items() if k != "ollama"}
    assert len(_text(packed)) - len(_text(pack_value(alone))) < len(_text(quants["ollama"])) / 2


def test_formula_records_written_against_the_calculators():
    """Plan mode's records (the vision / MTP variants of the calculator's) are written as patches
    of the calculator's records of their model, engine and KV cache; unpacked with those records
    (the page has them) they come back exactly, and not without them."""
    tree = ["+", ["*", ["var", "ctx"], 12288], ["max", ["var", "seqs"], 1]]
    bases = [{"model": "m", "engine": "e", "kv_cache": "f16", "placement": p, "defs": [["$0", tree]] * 9,
              "terms": [{"name": "w", "bytes": ["var", f"{p}|w"]}, {"name": "kv", "bytes": tree}]}
             for p in ("gpu1", "gpu2", "cpu")]  # fmt: skip
    records = [  # each of its own shape (records of one shape share a template instead)
        {**b, "variant": "vision", "terms": [*b["terms"], *[{"name": "vision", "bytes": 3}] * (i + 1)]}
        for i, b in enumerate(bases)
    ]
    records.append({**bases[0], "engine": "none"})  # no base of its engine: written whole
    records.append({"model": "m", "engine": "e", "kv_cache": "f16", "terms": []})  # not close to any
    value = {"formulas": records}
    packed = json.loads(_text(pack_value(value, bases)))
    assert _text(unpack_value(packed, bases)) == _text(value)
    assert _text(packed).count('"<"') == 3
    assert _text(packed).count("12288") == 1  # the record without a base
    with pytest.raises(ValueError, match="calculator's"):
        unpack_value(packed)


def test_export_split_writes_every_file_the_page_loads(tmp_path, monkeypatch):
    """``qwenfit export --split DIR`` writes what the docs site serves in assets/calculator/: the
    calculator's files and plan mode's planner.json and variants.json (qwenfit.export_split.site_files)."""
    from qwenfit import export_split
    from qwenfit.cli import main

    plan = {name: pack_value({"schema": 1, "name": name}) for name in export_split.PLAN_FILES}
    monkeypatch.setattr(export_split, "plan_files", lambda: plan)  # planner_json() takes ~1 min
    assert main(["export", "--split", str(tmp_path)]) == 0
    written = {p.name: json.loads(p.read_text()) for p in tmp_path.iterdir()}
    assert written == json.loads(_text(export_split.site_files()))
    assert {"planner.json", "variants.json", "index.json", "35B-A3B.json"} <= set(written)
