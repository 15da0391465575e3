"""The bottom layer: names and numbers every other layer shares, without torch or pytest.

Deployment precisions (:mod:`.dtypes`), operator classes (:mod:`.op_classes`), the one table of
metrics a budget can bound (:mod:`.metrics`), bytes that re-price at a precision
(:mod:`.access`), text formatting (:mod:`.text`) and crash-safe file writing (:mod:`.files`).
"""
