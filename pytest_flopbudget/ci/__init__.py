"""CI gating: baseline files and how a run compares with one.

:mod:`.baseline_file` (what ``--flop-save-baseline`` writes and how a file is read back and
validated) and :mod:`.comparison` (per test, per model, per metric, and the layers that grew).
Plain data in, plain data out; the text is :mod:`pytest_flopbudget.reporting`'s job.
"""
