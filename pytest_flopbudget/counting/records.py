"""What counting produces: one record per counted operator (or stage of one)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.access import ZERO_ACCESS, Access


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One counted operator (or one stage of a multi-stage operator) at one call site.

    ``flops`` includes ``2 * macs``. ``read``/``written`` are the bytes it moves. ``steps`` > 1
    marks sequential steps (a recurrent layer); ``step_read`` is what each step reads again when
    it does not stay on chip. ``supported`` is False for an operator without a formula: its
    traffic is counted, its FLOPs are unknown (0) and it is listed by name.
    """

    op: str
    module: str
    op_class: str
    macs: int
    flops: int
    read: Access
    written: Access
    steps: int = 1
    step_read: Access = ZERO_ACCESS
    label: str = ""
    supported: bool = True
    phase: str = "forward"
