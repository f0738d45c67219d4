"""How the planner ranks: the quality class of a quantization from its name, which ranks count as
near-lossless (data/quants.yaml; a publisher's dynamic mix ``UD-Q4_K_XL`` is judged by the type it
builds on), the order each preference sorts by, and which options another beats on every axis (never
shown as options: the issue's "a best that another option beats on every axis")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qwenfit.core.formats.names import dynamic_base

if TYPE_CHECKING:
    from qwenfit.core.fit.planner import Option

__all__ = [
    "NEAR_LOSSLESS_RANK",
    "PREFERENCES",
    "QUALITY_CLASSES",
    "dominates",
    "quality_class",
    "sort_key",
    "undominated",
]

QUALITY_CLASSES = ("good", "usable", "poor")
# quality ranks 1-3 of data/quants.yaml: BF16/F16/F32, Q8_0 (KLD 0.0014), Q6_K (KLD 0.0055), fp8, MLX 8/6-bit
NEAR_LOSSLESS_RANK = 3


def quality_class(quant: str) -> int:
    """0 good (≥ 4 bits per weight), 1 usable (3-bit), 2 poor (≤ 2-bit): the planner's first
    quality cut, from the type's name (llama.cpp Qn/IQn types, GPU formats, MLX bits)."""
    q = (dynamic_base(quant) or quant).lower()
    if q.startswith(("iq1", "iq2", "q2", "tq1", "tq2", "q1_", "mlx-2bit")):
        return 2
    if q.startswith(("iq3", "q3", "mlx-3bit")):
        return 1
    return 0


PREFERENCES = ("quality", "speed", "context")


def sort_key(o: Option, prefer: str = "quality") -> tuple[Any, ...]:
    """Smaller is better. ``quality`` (the default): fits, quality class, larger model, published
    quality order (the near-lossless ranks equal), decode speed, headroom. ``speed``: fits, not a
    2-bit-class type, decode speed first. ``context``: fits, longest context first, then as quality."""
    rank = 0 if o.quality_rank <= NEAR_LOSSLESS_RANK else o.quality_rank
    speed = -(o.decode_tokens_per_s or 0.0)
    quality = (o.quality_class, -o.model_params, rank, speed, -o.headroom_bytes, o.engine)
    if prefer == "speed":
        return (not o.fits, o.quality_class == 2, speed, o.quality_class, -o.model_params, rank, o.engine)
    if prefer == "context":
        return (not o.fits, -o.context, *quality)
    return (not o.fits, *quality)


def _used(o: Option) -> tuple[int, int]:
    by = o.memory_by_device
    return (sum(v for d, v in by.items() if d != "cpu"), by.get("cpu", 0))


def dominates(b: Option, a: Option) -> bool:
    """Whether ``b`` beats ``a`` on every axis: the same model and engine, at least ``a``'s context, at
    least its quality (class and rank, the near-lossless ranks equal), at least its decode speed (an
    unknown speed is only matched by an unknown one), no more memory on the GPUs nor in host RAM — and
    strictly better on one of them."""
    return _dominates(b, a, _used(b), _used(a))


def _dominates(b: Option, a: Option, used_b: tuple[int, int], used_a: tuple[int, int]) -> bool:
    """:func:`dominates` with each option's (GPU, host) memory given."""
    if (a.model, a.engine) != (b.model, b.engine) or not (a.fits and b.fits):
        return False
    ra = 0 if a.quality_rank <= NEAR_LOSSLESS_RANK else a.quality_rank
    rb = 0 if b.quality_rank <= NEAR_LOSSLESS_RANK else b.quality_rank
    sa, sb = a.decode_tokens_per_s, b.decode_tokens_per_s
    if (sa is None) != (sb is None):
        return False
    (ga, ca), (gb, cb) = used_a, used_b
    no_worse = (b.context >= a.context and (b.quality_class, rb) <= (a.quality_class, ra)
                and (sb or 0.0) >= (sa or 0.0) and gb <= ga and cb <= ca)  # fmt: skip
    better = (b.context > a.context or (b.quality_class, rb) < (a.quality_class, ra)
              or (sb or 0.0) > (sa or 0.0) or gb < ga or cb < ca)  # fmt: skip
    return no_worse and better


def undominated(options: list[Option]) -> tuple[list[Option], list[tuple[Option, Option]]]:
    """(the options no other beats on every axis, [(dominated option, a kept one that beats it)]) —
    dominance is transitive, so every dominated option is beaten by one that is kept. Only options
    of one model and engine can beat each other: each is compared with those of its own group."""
    used = [_used(o) for o in options]  # each option's memory once, not once per comparison
    groups: dict[tuple[str, str], list[int]] = {}
    for i, o in enumerate(options):
        groups.setdefault((o.model, o.engine), []).append(i)

    def beats(j: int, i: int) -> bool:
        return _dominates(options[j], options[i], used[j], used[i])

    beaten = [any(j != i and beats(j, i) for j in groups[(a.model, a.engine)]) for i, a in enumerate(options)]
    kept = [a for a, lost in zip(options, beaten, strict=True) if not lost]
    dropped = [
        (a, options[next(j for j in groups[(a.model, a.engine)] if not beaten[j] and beats(j, i))])
        for i, (a, lost) in enumerate(zip(options, beaten, strict=True))
        if lost
    ]
    return kept, dropped
