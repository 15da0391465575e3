"""The edge calibration set (shared/edge/calibration-set.md): published latencies of standard
networks on catalog devices.

``networks``: one PyTorch builder per network of the set; ``rows``: the 45 rows of
``calibration_set.toml``, typed, each able to build its (model, input).
"""
