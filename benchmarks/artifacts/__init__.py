"""Whether printed launch commands load real artifacts (``python -m benchmarks.artifacts``)."""
