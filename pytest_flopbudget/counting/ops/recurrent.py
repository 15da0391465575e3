"""Recurrent layers: RNN (tanh/relu), LSTM (with ``proj_size``) and GRU, whole or per cell.

Each layer and direction is one stage of ``T`` sequential steps. Per step and batch row, with
``G`` gates (LSTM 4, GRU 3, RNN 1), hidden size ``H``, recurrent width ``R`` (``proj_size`` if
set, else ``H``) and layer input width ``I``:

* MACs: ``G*H*I`` (input projection) + ``G*H*R`` (recurrent projection) + ``R*H`` (LSTM
  projection, when ``proj_size`` is set);
* elementwise FLOPs, as ATen's cell computes them (``aten/src/ATen/native/RNN.cpp``):

  - LSTM: gate sum 4H, sigmoid of i, f, o 3 x 4H, tanh of g H, ``c = f*c + i*g`` 3H,
    ``h = o * tanh(c)`` 2H: 22H; biases +8H;
  - GRU: r and z sums 2H, their sigmoids 2 x 4H, ``n = tanh(x_n + r*h_n)`` 3H,
    ``h = (h - n)*z + n`` 3H: 16H; biases +6H;
  - RNN: sum H, tanh/relu H: 2H; biases +2H.

A packed sequence (``data`` with one ``batch_sizes`` entry per step) counts the rows it
holds: at each step only the sequences still running, so lengths 5, 3, 2 are 10 rows, not
3 x 5; its state has the first (largest) batch size's rows, read from ``hx``.

So a one-layer LSTM over ``T`` steps does ``T*B*4H*(I+H)`` MACs: the seed-000 Bi-LSTM
(``T=128, I=H=128``, two directions) is ``2*128*4*128*(128+128) = 33,554,432``.

The input projection (``rows * G*H*I`` MACs) depends on no step: ATen's CPU GRU and RNN
layers (``FullLayer`` in ``RNN.cpp``; its fp32 LSTM runs oneDNN's RNN primitive instead) and
ONNX Runtime's (``deep_cpu_lstm.cc``, ``deep_cpu_gru.cc``) compute it for the whole sequence
as one matrix product before the steps. A stage records those MACs as ``input_macs`` (part
of its ``macs``), for a device that prices them so; a cell runs one step and records none.

Traffic of a stage: its input sequence, initial state and weights read once, its output
sequence and final state written. The recurrent weights are also the stage's ``step_reads``:
a device without room for them on chip reads them again at every step (see ``roofline``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from ..costs import TensorMeta, Work, one_of, outputs
from ..registry import FormulaFn, register

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
CELL_ELEMENTWISE = {"lstm": 22, "gru": 16, "rnn_tanh": 2, "rnn_relu": 2}
BIAS_ELEMENTWISE = {"lstm": 8, "gru": 6, "rnn_tanh": 2, "rnn_relu": 2}
_MKLDNN_MODES = {0: "rnn_relu", 1: "rnn_tanh", 2: "lstm", 3: "gru"}


def stage_work(kind: str, steps: int, rows: int, x: TensorMeta, weights: Sequence[TensorMeta],
               has_bias: bool, label: str, batch: int | None = None) -> Work:
    """One layer-direction over ``steps`` steps; ``rows`` is batch x steps (or the packed
    row count: the sequences still running, summed over the steps) and ``x`` the layer's
    input sequence; ``batch`` (the state's rows) is ``rows / steps`` unless given."""
    w_ih, w_hh = weights[0], weights[1]
    gates = GATES[kind]
    hidden = w_hh.shape[0] // gates
    width_in = w_ih.shape[1]
    recurrent = w_hh.shape[1]
    # LSTM with proj_size (always < hidden_size): w_hh is (4H, P) and w_hr (P, H) comes last
    proj = weights[-1] if kind == "lstm" and recurrent != hidden else None
    macs_per_row = gates * hidden * (width_in + recurrent) + (recurrent * hidden if proj else 0)
    per_row = (CELL_ELEMENTWISE[kind] + (BIAS_ELEMENTWISE[kind] if has_bias else 0)) * hidden
    if batch is None:
        batch = max(rows // steps, 1) if steps else 0
    dt = x.dtype
    state = [TensorMeta((batch, recurrent), dt)]
    if kind == "lstm":
        state.append(TensorMeta((batch, hidden), dt))
    out = TensorMeta((rows, recurrent), dt)
    step_reads = [w_hh]
    if has_bias:
        step_reads.append(weights[3])
    if proj is not None:
        step_reads.append(proj)
    return Work(
        macs=rows * macs_per_row,
        input_macs=rows * gates * hidden * width_in,
        elementwise=rows * per_row,
        op_class="recurrent",
        reads=(x, *state, *weights),
        writes=(out, *state),
        steps=steps,
        step_reads=tuple(step_reads),
        label=label,
        weights=tuple(weights),
        mac_dims=(width_in, gates * hidden),
    )


def rnn_stages(kind: str, steps: int, rows: int, x: TensorMeta, params: Sequence[TensorMeta],
               has_biases: bool, num_layers: int, bidirectional: bool,
               batch: int | None = None) -> list[Work]:
    """All layer-direction stages of a whole recurrent operator."""
    directions = 2 if bidirectional else 1
    per_stage = len(params) // (num_layers * directions)
    stages = []
    layer_in = x
    for layer in range(num_layers):
        width = 0
        for d in range(directions):
            i = (layer * directions + d) * per_stage
            weights = params[i:i + per_stage]
            label = f"layer {layer}" + (" reverse" if d else "")
            stage = stage_work(kind, steps, rows, layer_in, weights, has_biases, label, batch)
            width += weights[1].shape[1]
            stages.append(stage)
        layer_in = TensorMeta((rows, width), x.dtype)
    return stages


def packed_batch(hx: object) -> int | None:
    """The batch of a packed sequence (its first batch size): the rows of the initial
    state ``hx`` (``(layers x directions, batch, width)``, or a list of such)."""
    h = hx[0] if isinstance(hx, (list, tuple)) else hx
    return h.shape[1] if isinstance(h, TensorMeta) and h.ndim == 3 else None


def _steps_rows(x: TensorMeta, batch_first: bool) -> tuple[int, int]:
    if x.ndim == 2:  # unbatched (T, I)
        return x.shape[0], x.shape[0]
    steps = x.shape[1] if batch_first else x.shape[0]
    return steps, x.shape[0] * x.shape[1]


def _whole(kind: str) -> FormulaFn:
    def formula(params: Sequence[TensorMeta], has_biases: bool, num_layers: int,
                bidirectional: bool, hx: object, input: TensorMeta | None = None,
                data: TensorMeta | None = None, batch_sizes: TensorMeta | None = None,
                batch_first: bool = False, **_: object) -> list[Work]:
        # ``input`` (T, B, I), (B, T, I) with batch_first, or unbatched (T, I); or packed:
        # ``data`` (rows, I), the rows of the sequences still running at each of the
        # ``batch_sizes`` steps, so a step computes only those; its state has the first
        # (largest) batch size's rows
        x = one_of(input, data)
        if batch_sizes is not None:
            steps, rows, batch = batch_sizes.shape[0], x.shape[0], packed_batch(hx)
        else:
            (steps, rows), batch = _steps_rows(x, batch_first), None
        return rnn_stages(kind, steps, rows, x, params, has_biases, num_layers, bidirectional,
                          batch)

    return formula


for _kind in GATES:
    register(_kind, op_class="recurrent")(_whole(_kind))


@register("mkldnn_rnn_layer", op_class="recurrent")
def mkldnn_rnn_layer(input: TensorMeta, weight0: TensorMeta, weight1: TensorMeta,
                     weight2: TensorMeta, weight3: TensorMeta, reverse: bool, mode: int,
                     has_biases: bool, **_: object) -> list[Work]:
    kind = _MKLDNN_MODES[int(mode)]
    # ATen hands this layer a time-major input even when the module is batch_first (the flag
    # is passed along, the transpose already done)
    steps, rows = _steps_rows(input, batch_first=False)
    weights = [weight0, weight1, weight2, weight3] if has_biases else [weight0, weight1]
    label = "reverse" if reverse else "forward"
    return [stage_work(kind, steps, rows, input, weights, has_biases, label)]


def _cell(kind: str) -> FormulaFn:
    def formula(input: TensorMeta, w_ih: TensorMeta, w_hh: TensorMeta,
                b_ih: TensorMeta | None = None, b_hh: TensorMeta | None = None, *,
                result: object, **_: object) -> list[Work]:
        rows = math.prod(input.shape[:-1]) if input.ndim > 1 else 1
        biases = [b for b in (b_ih, b_hh) if b is not None]
        weights = [w_ih, w_hh, *biases]
        stage = stage_work(kind, 1, rows, input, weights, bool(biases), "cell")
        # a cell writes only its results (h', and c' for LSTM), not a sequence and a state;
        # its one step has nothing to compute ahead of the steps
        return [replace(stage, writes=outputs(result), input_macs=0)]

    return formula


for _kind in GATES:
    register(_kind + "_cell", op_class="recurrent")(_cell(_kind))
