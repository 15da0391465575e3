"""Shared test setup: the reference models are importable as ``reference_models``."""
