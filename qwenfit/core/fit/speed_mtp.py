"""MTP in the decode model (:mod:`qwenfit.core.fit.speed`): tokens per verify cycle, and the cycle's
attention at depth where the engine runs the verify without packing the query heads or splitting the
cached tokens (vLLM's FA2: :mod:`qwenfit.core.engines.vllm.verify`)."""

from __future__ import annotations

from qwenfit.core.fit import speed_fitted

__all__ = ["mtp_tokens_per_cycle", "unsplit_verify_fs"]


def mtp_tokens_per_cycle(drafts: int, accept: float | None = None) -> float:
    """Tokens per verify cycle with ``drafts`` draft tokens, each accepted with probability ``accept``
    given the one before it: ``1 + a + ... + a^drafts``. ``accept`` is ``mtp_accept`` unless given: the
    median of the acceptances the measurement corpus publishes, each read as its draft count's geometric
    per-position rate (benchmarks/speed/fit/fit.py ``published_accept``; 0.857, 3.22 tokens per cycle for
    3 drafts), not a value fitted to speed; the leave-one-source-out scores use it, from their training
    rows, for a run that publishes no acceptance (report.md "MTP tokens per verify cycle")."""
    a = speed_fitted.CONSTANTS["mtp_accept"] if accept is None else accept
    return 1 + sum(a**i for i in range(1, drafts + 1))


def unsplit_verify_fs(flops_per_token: int) -> int:
    """Femtoseconds per cached token of one MTP cycle whose verify attention runs one CTA per head and
    sequence (``flops_per_token``: :meth:`Engine.verify_flops`): every such CTA runs on its own SM
    at the fitted rate of one CTA, ``verify_cta_tflops`` (while batch x heads per rank fit on the GPU's
    SMs at once: one wave)."""
    if not flops_per_token:
        return 0
    return round(flops_per_token * 1e3 / speed_fitted.CONSTANTS["verify_cta_tflops"])
