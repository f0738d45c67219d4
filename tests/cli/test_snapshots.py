"""Human output of the qwenfit command, compared with tests/cli/snapshots/<case>.txt.

The output has no timings, paths or machine-specific parts in these cases, so it is compared as
it is (nothing is normalised). After an intended change to the numbers or the layout, regenerate:

    QWENFIT_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/cli/test_snapshots.py

and review the diff of tests/cli/snapshots/ like code.
"""

from __future__ import annotations

import shlex

import pytest
from cli_helpers import SNAPSHOTS, UPDATE_SNAPSHOTS

CASES = {
    "plan-35b-rtx4090": "plan 35B-A3B --gpu rtx-4090 --ram 64",
    "plan-2x3090-32k": "plan 122B-A10B 27B --gpu '2x rtx-3090' --ram 128 --context 32k",
    "check-fits": "check 35B-A3B --quant Q4_K_M --context 32768 --gpu rtx-4090 --ram 64",
    "check-does-not-fit": "check 35B-A3B --quant Q4_K_M --vram 24 --ram 64",
    "check-vllm": "check 27B --quant fp8 --engine vllm --context 131072 --sequences 4 --gpu '2x rtx-3090'",
    "check-mac": "check 122B-A10B --quant mlx-4bit --engine mlx --context 65536 --gpu m4-max-128",
    "inspect-35b": "inspect 35B-A3B",
    "quants-9b-llama": "quants 9B --engine llama.cpp",
    "hardware-show-rtx4090": "hardware show rtx-4090",
    "models": "models",
}


@pytest.mark.parametrize("case", list(CASES))
def test_human_output_snapshot(cli, monkeypatch, case):
    monkeypatch.setenv("NO_COLOR", "1")
    r = cli(*shlex.split(CASES[case]))
    assert r.err == "" and r.code in (0, 1)
    path = SNAPSHOTS / f"{case}.txt"
    text = f"$ qwenfit {CASES[case]}\n# exit {r.code}\n{r.out}"
    if UPDATE_SNAPSHOTS or not path.exists():
        path.write_text(text, encoding="utf-8")
        if not UPDATE_SNAPSHOTS:
            pytest.fail(f"{path.name} did not exist: written, review it and commit it")
    assert text == path.read_text(encoding="utf-8"), (
        f"{case}: the output changed; if that is intended, regenerate with "
        "QWENFIT_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/cli/test_snapshots.py"
    )


def test_no_stale_snapshots():
    stale = sorted(p.name for p in SNAPSHOTS.glob("*.txt") if p.stem not in CASES)
    assert not stale, f"snapshots without a case: {stale}"
