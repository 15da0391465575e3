"""The edge calibration set (shared/edge/calibration-set.md): published latencies of standard
networks on catalog devices.

``networks``: one PyTorch builder per network of the set.
"""
