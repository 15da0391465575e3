"""What counting produces: one record per counted operator (or stage of one)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.access import ZERO_ACCESS, Access


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One counted operator (or one stage of a multi-stage operator) at one call site.

    ``flops`` includes ``2 * macs``. ``read``/``written`` are the bytes it moves, ``weights``
    the part of ``read`` that is the model's parameters and buffers. ``steps`` > 1 marks
    sequential steps (a recurrent layer); ``step_read`` is what each step reads again when it
    does not stay on chip. ``supported`` is False for an operator without a formula: its
    traffic is counted, its FLOPs are unknown (0) and it is listed by name.

    The data flow, for a device model that fuses operators: ``call`` numbers the operator
    calls of a trace (the stages of one call share it) and ``inputs`` are the calls whose
    results this one reads (views looked through; weights and model inputs have none).
    ``kind`` is a finer operator kind within ``op_class`` (``core.op_classes.KINDS``) and
    ``mac_dims`` the ``(reduced, output)`` channels of a product, for MAC-array utilisation.
    ``lowered``: elements of the column matrix eager PyTorch writes before a convolution's
    product on this CPU (``counting.costs.Work.lowered``); ``rows``: a product's rows
    (``counting.costs.Work.rows``); ``weight_rows``: the rows of the weight matrices it reads
    (``counting.costs.Work.weight_rows``); ``input_macs``: the MACs of a recurrent layer's input
    projection, part of ``macs`` (``counting.costs.Work.input_macs``); ``runs_as``: the aten
    operator eager PyTorch runs it as on this CPU when that is another
    (``counting.costs.Work.runs_as``).
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
    weights: Access = ZERO_ACCESS
    call: int = -1
    inputs: tuple[int, ...] = ()
    kind: str = ""
    mac_dims: tuple[int, int] | None = None
    lowered: int = 0
    rows: int = 0
    weight_rows: int = 0
    input_macs: int = 0
    runs_as: str = ""
