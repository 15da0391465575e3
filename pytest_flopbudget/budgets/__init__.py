"""Budgets: what a test may cost, and the measurement checked against it.

:mod:`.limits` (the limits a marker or config may set, validated where they are written, and
the check), :mod:`.growth` (growth limits over a baseline), :mod:`.scaling` (how cost grows
with input size), :mod:`.config` (``[tool.flopbudget]``) and :mod:`.measurement` (one profile
priced on its device, and a test's record, as plain data).
"""
