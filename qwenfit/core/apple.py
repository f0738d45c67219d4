"""How much of an Apple Silicon Mac's unified memory the GPU may use.

Metal's ``recommendedMaxWorkingSetSize`` (what llama.cpp reports as the Metal device's free memory
and mlx-lm wires for generation) as a function of RAM, from logged values (engines-and-hardware.md
§B): 2/3 of RAM up to 32 GB on older macOS, 0.78 on recent macOS for 32–48 GB, 0.75 for 36–128 GB,
RAM − 48 GiB at 512 GB. A user's ``sysctl iogpu.wired_limit_mb`` replaces it.
"""

from __future__ import annotations

__all__ = ["working_set_bytes"]

GIB = 1 << 30


def working_set_bytes(
    ram_bytes: int, *, wired_limit_mb: int | None = None, recent_macos: bool = True
) -> tuple[int, bool]:
    """(GPU budget in bytes, exact). Exact only with an explicit ``wired_limit_mb`` (MiB)."""
    if wired_limit_mb is not None:
        if wired_limit_mb <= 0:
            raise ValueError(f"iogpu.wired_limit_mb must be positive, got {wired_limit_mb}")
        return min(wired_limit_mb * (1 << 20), ram_bytes), True
    gib = ram_bytes / GIB
    if gib >= 256:
        return ram_bytes - 48 * GIB, False  # 512 GB M3 Ultra logs exactly RAM - 48 GiB
    if gib <= 48 and recent_macos and gib > 24:
        return int(ram_bytes * 0.78), False
    if gib <= 32:
        return ram_bytes * 2 // 3, False
    return ram_bytes * 3 // 4, False
