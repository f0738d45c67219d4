"""MTP in the decode model (:mod:`qwenfit.core.fit.speed`): tokens per verify cycle, and the cycle's
attention at depth where the engine runs the verify without packing the query heads or splitting the
cached tokens (vLLM's FA2: :mod:`qwenfit.core.engines.vllm.verify`)."""

from __future__ import annotations

from qwenfit.core.fit import speed_fitted

__all__ = ["mtp_tokens_per_cycle", "unsplit_verify_fs"]


def mtp_tokens_per_cycle(drafts: int, accept: float | None = None) -> float:
    """Tokens per verify cycle with ``drafts`` draft tokens, each accepted with probability ``accept``
    given the one before it: ``1 + a + ... + a^drafts``. ``accept`` is the fitted per-position acceptance
    (``mtp_accept``) unless given (the fit passes the value it is trying), as the leave-one-source-out
    scores use it for a run that publishes no acceptance. It sits below the published acceptance
    (benchmarks/speed/fit/results/report.md compares them) because it also carries the verify and draft
    costs the step model does not see."""
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
