"""Calibration: measure the machine the tests run on and describe it as a device.

:mod:`.timing` (medians of samples, dropping those other processes disturbed),
:mod:`.hostinfo` (what ``/proc`` and ``/sys`` say), :mod:`.microbench` (the fixed
microbenchmarks) and :mod:`.calibrate` (run them, derive the figures, write the device file).
"""
