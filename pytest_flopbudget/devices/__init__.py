"""The device model: target devices and the roofline that prices counted work on them.

:mod:`.device` (one device's figures and their checks), :mod:`.catalog` (built-in devices in
``devices.toml``, devices a project declares, lookup by name), :mod:`.device_file` (device
tables as TOML files, such as the calibrated ``host``) and :mod:`.roofline` (the latency of a
profile's operators on a device). Torch-free: the roofline reads counted operators through
small protocols, never the tracer.
"""
