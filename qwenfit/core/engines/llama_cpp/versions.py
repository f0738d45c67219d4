"""llama.cpp builds: which memory rules a given build follows.

qwenfit models llama.cpp at commit 0c1e570 (the tree vendored in llama-cpp-python 0.3.36, newer than
every build below). Older builds differ in ways that change memory; ``engine_version`` ("b9849",
"9849", or a commit prefix of the modelled tree) selects the rules of that build. Build numbers are
llama.cpp's release tags (``bNNNN`` = commits on master).

- **Logits reserved by llama-server.** PR #23861 (commit de6f727, 2026-06-01) lets llama-server reserve
  logits for ``n_parallel x (1 + n_draft)`` rows instead of the whole batch. A benchmark note compares
  de6f727 as newer than b9235, so builds up to b9235 reserve ``n_batch`` rows; from b9236 on the
  limit applies (the boundary is known to lie in b9236..b9294, the first build seen with the limit).
  The library (llama-cpp-python, llama-fit-params) reserves ``n_batch`` rows in every build.
"""

from __future__ import annotations

import re

from qwenfit.errors import SettingError

__all__ = ["MODELLED_COMMIT", "OUTPUT_LIMIT_BUILD", "build_number", "server_limits_outputs"]

MODELLED_COMMIT = "0c1e570"
OUTPUT_LIMIT_BUILD = 9236  # first build with PR #23861 (de6f727): see the module docstring

_BUILD = re.compile(r"^b?(\d{3,6})(?:[-\s(].*)?$")


def build_number(version: str | None) -> int | None:
    """The build number of ``version`` (None: the modelled tree, newer than every numbered rule)."""
    if version is None:
        return None
    v = str(version).strip()
    if (MODELLED_COMMIT.startswith(v.lower()) and len(v) >= 7) or v.lower().startswith(MODELLED_COMMIT):
        return None
    m = _BUILD.match(v)
    if not m:
        raise SettingError(
            f"llama.cpp engine_version {version!r}: give a build number such as 'b9849' (the `build:` line "
            f"of llama.cpp's log), or {MODELLED_COMMIT!r} for the tree qwenfit models"
        )
    return int(m.group(1))


def server_limits_outputs(build: int | None) -> bool:
    """Whether llama-server of this build reserves logits only for the rows it can sample."""
    return build is None or build >= OUTPUT_LIMIT_BUILD
