"""Reporting: what people read, built from the plain record dicts of a run.

:mod:`.text` (failure messages, hotspot tables, the ``--flop-report`` table),
:mod:`.baseline_text` and :mod:`.markdown` (a baseline comparison for the terminal and for a
pull-request comment), :mod:`.html_page`, :mod:`.html_assets` and :mod:`.charts` (the
self-contained HTML report; matplotlib only when it is drawn).
"""
