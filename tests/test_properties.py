"""Property-based checks: random conv, linear and recurrent configurations against closed-form
counts derived from the configuration alone (not from the traced shapes)."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pytest_flopbudget import profile

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def conv_configs(draw):
    rank = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    transposed = draw(st.booleans())
    # an input large enough for every output dimension to be >= 1
    size = tuple(
        draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 6))
        for k, d in zip(kernel, dilation, strict=True)
    )
    if transposed:
        # output_padding must be smaller than stride or dilation
        padding = tuple(min(p, d * (k - 1)) for p, k, d in zip(padding, kernel, dilation,
                                                                strict=True))
    return rank, c_in, c_out, groups, kernel, stride, padding, dilation, transposed, size, \
        draw(st.integers(1, 2)), draw(st.booleans())


@SETTINGS
@given(conv_configs())
def test_conv_macs_and_params_match_closed_form(cfg):
    rank, c_in, c_out, groups, k, s, p, d, transposed, size, batch, bias = cfg
    cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[rank]
    if transposed:
        cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[rank]
    conv = cls(c_in, c_out, k, stride=s, padding=p, dilation=d, groups=groups, bias=bias)
    prof = profile(conv, torch.randn(batch, c_in, *size))
    per_position = (c_out if not transposed else c_in) * math.prod(k) * \
        ((c_in if not transposed else c_out) // groups)
    if transposed:
        out = [(i - 1) * st_ - 2 * pd + dl * (kk - 1) + 1
               for i, st_, pd, dl, kk in zip(size, s, p, d, k, strict=True)]
        macs = batch * math.prod(size) * per_position
    else:
        out = [(i + 2 * pd - dl * (kk - 1) - 1) // st_ + 1
               for i, st_, pd, dl, kk in zip(size, s, p, d, k, strict=True)]
        macs = batch * math.prod(out) * per_position
    assert prof.layers[0].output_shapes == [(batch, c_out, *out)]
    assert prof.macs == macs
    bias_adds = batch * c_out * math.prod(out) if bias else 0
    assert prof.flops == 2 * macs + bias_adds
    # seed 001 generalised: (prod(K) * C_in/groups + 1) * C_out parameters (bias optional)
    weights = math.prod(k) * (c_in // groups) * c_out if not transposed else \
        math.prod(k) * c_in * (c_out // groups)
    assert prof.params == weights + (c_out if bias else 0)


@SETTINGS
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.integers(1, 32),
       st.integers(1, 32), st.booleans())
def test_linear_matches_closed_form(lead, n_in, n_out, bias):
    prof = profile(nn.Linear(n_in, n_out, bias=bias), torch.randn(*lead, n_in))
    rows = math.prod(lead)
    assert prof.macs == rows * n_in * n_out
    assert prof.flops == 2 * rows * n_in * n_out + (rows * n_out if bias else 0)
    assert prof.params == (n_in + (1 if bias else 0)) * n_out


GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
ELEMENTWISE = {"LSTM": (22, 8), "GRU": (16, 6), "RNN": (2, 2)}


@st.composite
def rnn_configs(draw):
    kind = draw(st.sampled_from(sorted(GATES)))
    hidden = draw(st.integers(2, 8))
    proj = draw(st.integers(0, hidden - 1)) if kind == "LSTM" else 0
    return (kind, draw(st.integers(1, 8)), hidden, proj, draw(st.integers(1, 2)),
            draw(st.booleans()), draw(st.booleans()), draw(st.booleans()),
            draw(st.integers(1, 5)), draw(st.integers(1, 3)))


@SETTINGS
@given(rnn_configs())
def test_recurrent_layers_match_closed_form(cfg):
    kind, n_in, hidden, proj, layers, bidir, batch_first, bias, steps, batch = cfg
    kwargs = {"proj_size": proj} if kind == "LSTM" else {}
    rnn = getattr(nn, kind)(n_in, hidden, layers, bias=bias, batch_first=batch_first,
                            bidirectional=bidir, **kwargs)
    shape = (batch, steps, n_in) if batch_first else (steps, batch, n_in)
    prof = profile(rnn, torch.randn(*shape))
    g, dirs, width = GATES[kind], 2 if bidir else 1, proj or hidden
    rows = steps * batch
    macs = params = 0
    for layer in range(layers):
        layer_in = n_in if layer == 0 else dirs * width
        per_row = g * hidden * (layer_in + width) + (width * hidden if proj else 0)
        macs += dirs * rows * per_row
        per_dir = g * hidden * (layer_in + width) + (2 * g * hidden if bias else 0) + \
            (width * hidden if proj else 0)
        params += dirs * per_dir
    cell, bias_cost = ELEMENTWISE[kind]
    elementwise = layers * dirs * rows * (cell + (bias_cost if bias else 0)) * hidden
    assert prof.macs == macs
    assert prof.flops == 2 * macs + elementwise
    assert prof.params == params
