"""Stages `evaluate` and `figures`: predictions on a subset, metrics with bootstrap intervals, and
the per-experiment figures."""
