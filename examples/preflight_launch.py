"""A pre-flight wrapper: check with `qwenfit check --json` before launching llama-server or vLLM.

    python examples/preflight_launch.py 35B-A3B --quant Q4_K_M --context 65536 --gpu rtx-4090 --ram 64
    python examples/preflight_launch.py 27B --quant fp8 --engine vllm --context 32768 --gpu "2x rtx-4090"
    python examples/preflight_launch.py 35B-A3B --quant Q4_K_M --vram 24 --ram 64 --fallback

Everything after the wrapper's own flags goes to `qwenfit check` unchanged. When the configuration
fits, the wrapper prints the command it would run; ``--exec`` runs it (replacing this process).
When it does not fit, the wrapper prints the shortfall and qwenfit's nearest options that fit and
exits 1 — or, with ``--fallback``, takes the first of them instead. Bad input exits 2, as qwenfit
does. Any language can do the same: run the command, read the exit code and the JSON.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from typing import Any


def qwenfit_check(args: list[str]) -> tuple[int, dict[str, Any] | None, str]:
    """Run `qwenfit check ... --json`: (exit code, the parsed result or None, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "qwenfit", "check", *args, "--json"], capture_output=True, text=True
    )
    result = json.loads(done.stdout) if done.returncode in (0, 1) else None
    return done.returncode, result, done.stderr.strip()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    run = "--exec" in argv
    fallback = "--fallback" in argv
    args = [a for a in argv if a not in ("--exec", "--fallback")]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2

    code, result, error = qwenfit_check(args)
    if result is None:  # bad input: qwenfit said why in one line
        print(f"pre-flight failed: {error}", file=sys.stderr)
        return code
    assert result["schema"] == "qwenfit-output-v2"
    what = f"{result['model']} {result['quant']} on {result['engine']}, {result['context']:,} tokens"
    command = str(result["command"])
    if result["fits"]:
        print(f"pre-flight OK: {what} fits {result['machine']['name']}")
    else:
        print(f"pre-flight: {what} does NOT fit: short by {int(result['shortfall_bytes']) / 1e9:.2f} GB")
        alternatives = list(result["alternatives"])
        for a in alternatives:
            print(f"  option ({a['kind']}): {a['description']}")
        if not (fallback and alternatives):
            return 1
        chosen = alternatives[0]
        print(f"falling back to: {chosen['description']}")
        command = chosen["command"]
    print(f"would run: {command}")
    if run:
        if "\n" in command:
            print("this engine's launch is several steps (see above); run them yourself", file=sys.stderr)
            return 2
        words = shlex.split(command)
        os.execvp(words[0], words)  # replaces this process: the server inherits the terminal
    return 0


if __name__ == "__main__":
    sys.exit(main())
