"""Predictions scored against published engine logs (tests/fixtures/field_logs)."""
