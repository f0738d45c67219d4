"""The command-line corpus (tests/fixtures/command_lines/corpus.yaml: 149 published launch commands for
Qwen3.5-family models): every record either parses or fails with a UsageError that says why, and the
outcome of each record is pinned here so it cannot change unnoticed. Then every record is checked
(``check_commands`` on a stated machine): it fits, does not fit, or is refused with a one-line reason;
the counts of each are pinned and printed."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import yaml

from qwenfit.cmdline import parse_command
from qwenfit.errors import UsageError

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "command_lines" / "corpus.yaml"
RECORDS = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["records"]

# id -> (commands read, tool of the first, catalog model of the first), or the start of the UsageError
# fmt: off
EXPECTED: dict[str, tuple[int, str, str | None] | str] = {
    "cl-001": (1, "llama-server", None),
    "cl-002": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-003": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-004": 'error while handling argument "--draft":',
    "cl-005": 'these options change memory in ways qwen',
    "cl-006": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-007": 'systemd ExecStart: <username> is a place',
    "cl-008": (1, "llama-server", 'Qwen3.5-35B-A3B'),
    "cl-009": (1, "llama-server", None),
    "cl-010": (1, "llama-server", 'Qwen3.5-35B-A3B'),
    "cl-011": (1, "llama-server", 'Qwen3.5-2B'),
    "cl-012": (1, "llama-server", 'Qwen3.5-9B'),
    "cl-013": (1, "llama-server", 'Qwen3.5-9B'),
    "cl-014": (1, "llama-cli", 'Qwen3.5-9B'),
    "cl-015": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-016": (1, "llama-server", 'Qwen3.6-35B-A3B'),
    "cl-017": 'these options change memory in ways qwen',
    "cl-018": (1, "llama-server", 'Qwen3.5-2B'),
    "cl-019": (1, "llama-server", 'Qwen3.5-35B-A3B'),
    "cl-020": (1, "llama-server", 'Qwen3.5-9B'),
    "cl-021": (1, "llama-server", 'Qwen3.5-2B'),
    "cl-022": (1, "llama-server", 'Qwen3.5-4B'),
    "cl-023": (1, "llama-server", 'Qwen3.5-27B'),
    "cl-024": 'llama-server: error while handling argum',
    "cl-025": (1, "llama-cli", 'Qwen3.5-27B'),
    "cl-026": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-027": 'llama-bench: error: invalid parameter fo',
    "cl-028": 'line 3 starts with --alias: the line bef',
    "cl-029": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-030": 'llama-server: error: invalid argument: -',
    "cl-031": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-032": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-033": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-034": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-035": 'llama-bench: these options change memory',
    "cl-036": (1, "llama-bench", 'Qwen3.6-35B-A3B'),
    "cl-037": (1, "llama-cli", 'Qwen3.6-35B-A3B'),
    "cl-038": 'llama-server: error: invalid argument: -',
    "cl-039": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-040": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-041": 'llama-server: error: invalid argument: -',
    "cl-042": 'these options change memory in ways qwen',
    "cl-043": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-044": 'llama-server: error: invalid argument: -',
    "cl-045": (1, "llama-server", None),
    "cl-046": (1, "llama-server", None),
    "cl-047": (1, "llama-server", 'Qwen3.6-35B-A3B'),
    "cl-048": (1, "llama-cli", 'Qwen3.6-35B-A3B'),
    "cl-049": (1, "llama-server", 'Qwen3.6-35B-A3B'),
    "cl-050": (1, "llama-server", 'Qwen3.6-35B-A3B'),
    "cl-051": (1, "llama-server", 'Qwen3.6-35B-A3B'),
    "cl-052": 'llama-bench: error: invalid parameter fo',
    "cl-053": (1, "llama-server", 'Qwen3.6-35B-A3B'),
    "cl-054": (1, "llama-server", None),
    "cl-055": (1, "llama-server", 'Qwen3-Next-80B-A3B'),
    "cl-056": (1, "llama-server", 'Qwen3.5-397B-A17B'),
    "cl-057": (1, "llama-server", 'Qwen3.5-397B-A17B'),
    "cl-058": (1, "vllm serve", 'Qwen3.6-35B-A3B'),
    "cl-059": (1, "vllm serve", 'Qwen3.5-397B-A17B'),
    "cl-060": (1, "vllm serve", 'Qwen3.5-397B-A17B'),
    "cl-061": (1, "vllm serve", 'Qwen3.5-35B-A3B'),
    "cl-062": (1, "vllm serve", 'Qwen3.5-397B-A17B'),
    "cl-063": (1, "vllm serve", 'Qwen3.5-397B-A17B'),
    "cl-064": (1, "vllm serve", 'Qwen3.5-397B-A17B'),
    "cl-065": "the model '...' is a placeholder or an u",
    "cl-066": (1, "vllm serve", 'Qwen3-Next-80B-A3B'),
    "cl-067": (1, "vllm serve", 'Qwen3-Next-80B-A3B'),
    "cl-068": (1, "vllm serve", 'Qwen3-Next-80B-A3B'),
    "cl-069": (1, "vllm serve", 'Qwen3-Next-80B-A3B'),
    "cl-070": "the model '...' is a placeholder or an u",
    "cl-071": (1, "vllm serve", 'Qwen3.5-27B'),
    "cl-072": (1, "vllm serve", 'Qwen3.5-35B-A3B'),
    "cl-073": (1, "vllm serve", 'Qwen3.5-122B-A10B'),
    "cl-074": (1, "vllm serve", 'Qwen3.5-122B-A10B'),
    "cl-075": (1, "vllm serve", 'Qwen3.5-9B'),
    "cl-076": (1, "vllm serve", 'Qwen3.6-27B'),
    "cl-077": (2, "vllm serve", 'Qwen3.6-27B'),
    "cl-078": (1, "vllm serve", 'Qwen3.6-27B'),
    "cl-079": (1, "vllm serve", 'Qwen3.6-27B'),
    "cl-080": (1, "vllm serve", 'Qwen3.6-35B-A3B'),
    "cl-081": (1, "vllm serve", 'Qwen3.6-35B-A3B'),
    "cl-082": (1, "vllm serve", 'Qwen3.5-35B-A3B'),
    "cl-083": (1, "vllm serve", 'Qwen3.5-397B-A17B'),
    "cl-084": 'vllm serve speculative decoding with met',
    "cl-085": 'vllm serve: unrecognized arguments: --ro',
    "cl-086": (1, "vllm serve", 'Qwen3.6-35B-A3B'),
    "cl-087": (1, "vllm serve", 'Qwen3.5-27B'),
    "cl-088": 'vllm serve: these options change memory ',
    "cl-089": (1, "vllm serve", 'Qwen3-Next-80B-A3B'),
    "cl-090": 'ambiguous option: --device could match -',
    "cl-091": (1, "vllm serve", 'Qwen3-Next-80B-A3B'),
    "cl-092": (1, "vllm serve", 'Qwen3.5-27B'),
    "cl-093": (1, "vllm serve", 'Qwen3.5-4B'),
    "cl-094": (1, "vllm serve", None),
    "cl-095": '<PATH> is a placeholder: replace it with',
    "cl-096": 'vllm serve: unrecognized arguments: true',
    "cl-097": '/nfs/aihub_modelcenter/models/23/1dda1ab',
    "cl-098": (1, "sglang", 'Qwen3.5-35B-A3B'),
    "cl-099": (1, "sglang", 'Qwen3.5-397B-A17B'),
    "cl-100": (1, "sglang", 'Qwen3.5-397B-A17B'),
    "cl-101": (1, "sglang", 'Qwen3.5-397B-A17B'),
    "cl-102": (1, "sglang", 'Qwen3.5-397B-A17B'),
    "cl-103": (1, "sglang", 'Qwen3.5-397B-A17B'),
    "cl-104": (1, "sglang", 'Qwen3.6-35B-A3B'),
    "cl-105": (1, "sglang", 'Qwen3-Next-80B-A3B'),
    "cl-106": (1, "sglang", 'Qwen3-Next-80B-A3B'),
    "cl-107": (1, "sglang", 'Qwen3-Next-80B-A3B'),
    "cl-108": 'sglang: these options change memory in w',
    "cl-109": (1, "sglang", 'Qwen3.6-35B-A3B'),
    "cl-110": 'mlx_vlm.generate: mlx-vlm is not an engi',
    "cl-111": 'mlx_vlm.server: mlx-vlm is not an engine',
    "cl-112": 'mlx_vlm.generate: mlx-vlm is not an engi',
    "cl-113": (1, "mlx_lm.server", 'Qwen3.5-9B'),
    "cl-114": (1, "mlx_lm.server", 'Qwen3.5-2B'),
    "cl-115": (1, "mlx_lm.server", 'Qwen3.5-9B'),
    "cl-116": (1, "mlx_lm.server", 'Qwen3.5-0.8B'),
    "cl-117": (1, "mlx_lm.server", 'Qwen3.5-35B-A3B'),
    "cl-118": (1, "mlx_lm.server", 'Qwen3.5-4B'),
    "cl-119": '<folder with this adapter> is a placehol',
    "cl-120": (1, "mlx_lm.generate", 'Qwen3.5-9B'),
    "cl-121": 'mlx_lm.generate: unrecognized arguments:',
    "cl-122": 'mlx_lm.generate: argument --verbose: exp',
    "cl-123": (1, "mlx_lm.server", None),
    "cl-124": (1, "ollama", None),
    "cl-125": (1, "ollama", 'Qwen3.5-27B'),
    "cl-126": (1, "ollama", 'Qwen3.5-27B'),
    "cl-127": 'FROM ~/MasterBase/local-models/Qwopus3.6',
    "cl-128": (1, "ollama", 'Qwen3.5-2B'),
    "cl-129": (1, "ollama", 'Qwen3.5-27B'),
    "cl-130": (1, "ollama", 'Qwen3.5-9B'),
    "cl-131": (1, "ollama", 'Qwen3.6-27B'),
    "cl-132": (1, "ollama", 'Qwen3.6-27B'),
    "cl-133": (1, "ollama", 'Qwen3.6-35B-A3B'),
    "cl-134": (1, "ollama", None),
    "cl-135": 'ollama serve loads no model until a requ',
    "cl-136": (1, "llama-server", None),
    "cl-137": "llama-swap model 'qwen3-4b': vllm serve:",
    "cl-138": "llama-swap model 'qwen3-4b': vllm serve:",
    "cl-139": (2, "llama-server", None),
    "cl-140": 'this is a Nix expression (an attribute s',
    "cl-141": "llama-swap model 'qwen3-coder': llama-se",
    "cl-142": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-143": (1, "llama-server", 'Qwen3.6-27B'),
    "cl-144": (1, "llama-server", 'Qwen3.6-35B-A3B'),
    "cl-145": "compose service 'ik-llama-qwen36-35b-a3b",
    "cl-146": (1, "vllm serve", 'Qwen3.6-27B'),
    "cl-147": "compose service 'vllm-qwen36-27b-dual': ",
    "cl-148": (1, "vllm serve", 'Qwen3.6-35B-A3B'),
    "cl-149": "compose service 'sglang-qwen36-27b-eagle",
}
# fmt: on
PARSED = 110
REFUSED = 39


def _env(record: dict) -> dict[str, str]:
    return {k: str(v).strip("'\"") for k, v in (record.get("env") or {}).items()}


@pytest.mark.parametrize("record", RECORDS, ids=[r["id"] for r in RECORDS])
def test_record(record):
    expected = EXPECTED[record["id"]]
    if isinstance(expected, str):
        with pytest.raises(UsageError) as err:
            parse_command(record["command"], env=_env(record))
        assert str(err.value).startswith(expected), str(err.value)
        return
    out = parse_command(record["command"], env=_env(record))
    assert (len(out), out[0].tool, out[0].catalog) == expected
    for c in out:
        assert c.model and c.engine and c.argv
        assert c.settings.get("context", 1) > 0


def test_counts(capsys):
    outcome: collections.Counter[str] = collections.Counter()
    by_tool: collections.Counter[tuple[str, str]] = collections.Counter()
    for record in RECORDS:
        try:
            parse_command(record["command"], env=_env(record))
            result = "parsed"
        except UsageError:
            result = "refused"
        outcome[result] += 1
        by_tool[(record["tool"], result)] += 1
    with capsys.disabled():
        print(
            f"\ncommand-line corpus: {outcome['parsed']} parsed, {outcome['refused']} refused "
            f"(UsageError), {len(RECORDS)} records"
        )
        for (tool, result), n in sorted(by_tool.items()):
            print(f"  {tool:18} {result:8} {n}")
    assert len(RECORDS) == 149 == len(EXPECTED)
    assert (outcome["parsed"], outcome["refused"]) == (PARSED, REFUSED)


@pytest.mark.parametrize(
    ("record_id", "reason"),
    [
        ("cl-028", "missing '\\' line continuation"),  # a missing \ continuation
        ("cl-030", "invalid argument: -chat-template-kwargs"),  # single-dash long option
        ("cl-027", "--repetitions"),  # --repetitions without a value
        ("cl-096", "unrecognized arguments: true"),  # --enforce_eager true
        ("cl-065", "placeholder"),  # vllm serve ...
        ("cl-070", "placeholder"),
        ("cl-097", "cannot tell which model"),  # an opaque UUID path
    ],
)
def test_the_deliberately_broken_records_fail_for_their_reason(record_id, reason):
    record = next(r for r in RECORDS if r["id"] == record_id)
    with pytest.raises(UsageError, match=__import__("re").escape(reason)):
        parse_command(record["command"], env=_env(record))


def test_nothing_heavy_at_import():
    import subprocess
    import sys

    code = (
        "import sys, qwenfit.cmdline; "
        "print(sorted(m for m in ('yaml', 'pydantic', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------------
# every record checked (qwenfit.check_commands): it checks (fits or not, on a stated machine) or is
# refused with a one-line reason; nothing else (an exception that is not a QwenfitError is a bug)

BIG = "8x h100-sxm"  # GPU engines: 8 x H100 80GB, 2 TB of RAM
MAC = "m3-ultra-512"  # mlx_lm
# cl-076 (nvidia Qwen3.6-27B-NVFP4, a vLLM recipe) fits since NVIDIA's mixed NVFP4 export is priced as it is
CHECKED_FITS, CHECKED_DOES_NOT_FIT, CHECK_REFUSED = 84, 4, 61


def _check_outcome(record: dict) -> tuple[str, str]:
    from qwenfit.api.commands import check_commands
    from qwenfit.errors import QwenfitError

    hardware, ram = (MAC, None) if record["tool"].startswith("mlx") else (BIG, 2048)
    try:
        checks = check_commands(
            record["command"], hardware=hardware, ram_gb=ram, env=_env(record), fixes=False
        )
    except QwenfitError as exc:
        reason = " ".join(str(exc).split())
        assert reason and "Traceback" not in reason
        return "refused", f"{type(exc).__name__}: {reason}"
    assert checks and all(c.estimate.fits is not None for c in checks)
    return ("fits" if all(c.fits for c in checks) else "does not fit"), ""


def test_check_counts(capsys):
    outcome: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    for record in RECORDS:
        result, reason = _check_outcome(record)
        outcome[result] += 1
        if reason:
            reasons[reason.split(":")[0]] += 1
    with capsys.disabled():
        print(
            f"\ncommand-line corpus checked ({BIG} + 2 TB RAM; {MAC} for mlx_lm): {outcome['fits']} fit, "
            f"{outcome['does not fit']} do not fit, {outcome['refused']} refused with a reason "
            f"({', '.join(f'{k} {n}' for k, n in reasons.most_common())})"
        )
    assert sum(outcome.values()) == len(RECORDS)
    assert (outcome["fits"], outcome["does not fit"], outcome["refused"]) == (
        CHECKED_FITS,
        CHECKED_DOES_NOT_FIT,
        CHECK_REFUSED,
    )
