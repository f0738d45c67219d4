"""``qwenfit export --split DIR``: the files the docs page loads, one JSON each."""

from __future__ import annotations

import json
import sys
import types

from cli_helpers import assert_one_line_error


def test_export_split(cli, monkeypatch, tmp_path):
    files = {"index.json": {"pack": 1, "t": [], "v": {"schema": 2}, "shared": []}, "9B.json": {"pack": 1}}
    fake = types.ModuleType("qwenfit.export_split")
    fake.site_files = lambda: files  # the calculator's files and plan mode's
    monkeypatch.setitem(sys.modules, "qwenfit.export_split", fake)
    out = tmp_path / "calc"
    assert cli("export", "--split", str(out)).code == 0
    assert {p.name: json.loads(p.read_text()) for p in out.iterdir()} == files
    (tmp_path / "file").write_text("")
    assert "cannot write" in assert_one_line_error(cli("export", "--split", str(tmp_path / "file" / "x")))
