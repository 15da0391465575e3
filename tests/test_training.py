"""Training steps: forward, backward and optimizer step, counted by hand.

MLP used below: Linear(8, 16) -> ReLU -> Linear(16, 4) on a batch of 2.
forward MACs: 2*16*8 = 256 and 2*4*16 = 128.
"""

from __future__ import annotations

import pytest
import torch
from reference_models import VibrationClassifier
from torch import nn

from pytest_flopbudget import TraceError, profile


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def rows(p, phase):
    return {r.name: (r.macs, r.flops) for r in p.phase(phase).layers if r.name}


def test_linear_backward_is_twice_its_forward_macs():
    p = profile(mlp(), torch.randn(2, 8), train=True)
    forward, backward = rows(p, "forward"), rows(p, "backward")
    # layer "2": grad input (2x4 @ 4x16 = 128) + grad weight (4x2 @ 2x16 = 128) = 2 x 128;
    # bias grad sums the 2x4 output gradient: 8
    assert backward["2"] == (2 * forward["2"][0], 2 * 256 + 8)
    # layer "0" sees an input that needs no gradient: only grad weight (256 MACs), bias 32
    assert backward["0"] == (256, 2 * 256 + 32)
    # ReLU backward: x > 0 ? g : 0, 1 per element of the 2x16 gradient (the compare; a select
    # is free, as in the forward table)
    assert backward["1"] == (0, 32)
    assert p.phases == ["forward", "backward"]
    assert p.flops == p.phase("forward").flops + p.phase("backward").flops


def test_frozen_layer_costs_no_weight_gradient():
    model = mlp()
    model[2].weight.requires_grad_(False)
    p = profile(model, torch.randn(2, 8), train=True)
    # layer "2": grad input only (128 MACs); its bias still trains (8 adds)
    assert rows(p, "backward")["2"] == (128, 256 + 8)
    assert model[2].weight.requires_grad is False  # left as found


class GlueBetweenLayers(nn.Module):
    """Functional code in the parent's forward, between two child layers."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.b = nn.Linear(16, 4)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)) * 3)


def test_backward_of_glue_code_is_booked_to_the_module_that_ran_it():
    p = profile(GlueBetweenLayers(), torch.randn(2, 8), train=True)
    backward = rows(p, "backward")
    # tanh and * 3 ran in the root's forward, on a 2x16 tensor: their backward is the root's
    # (mul by 3: 32 multiplies; tanh_backward g * (1 - y^2): 3 per element = 96)
    assert p.phase("backward").layer("").flops - sum(f for _, f in backward.values()) == 32 + 96
    # b: grad input 2x4 @ 4x16 = 128 + grad weight 4x2 @ 2x16 = 128 MACs; bias grad 8 adds
    assert backward["b"] == (256, 2 * 256 + 8)
    # a: its input needs no gradient: grad weight 16x2 @ 2x8 = 256 MACs; bias grad 32 adds
    assert backward["a"] == (256, 2 * 256 + 32)


def test_adam_step_costs_11_flops_per_parameter():
    model = mlp()
    adam = torch.optim.Adam(model.parameters())
    p = profile(model, torch.randn(2, 8), train=True, optimizer=adam)
    # 16*8 + 16 + 4*16 + 4 = 212 parameters; Adam: lerp 3, mul 1, addcmul 2, sqrt/div/add 3,
    # addcdiv 2 = 11 per element (optimizers.py)
    assert p.phase("optimizer").flops == 11 * 212 == 2_332
    assert rows(p, "optimizer") == {"0": (0, 11 * 144), "1": (0, 0), "2": (0, 11 * 68)}
    # traffic per element: reads p, g, m, v; writes p, m, v (fp32)
    assert p.phase("optimizer").bytes == 212 * 4 * (4 + 3)


@pytest.mark.parametrize("make,per_element", [
    (lambda ps: torch.optim.SGD(ps, lr=0.1), 1),
    (lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-4), 4),
    (lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), 4),
    (lambda ps: torch.optim.Adam(ps, weight_decay=1e-4, amsgrad=True), 13),
    (lambda ps: torch.optim.AdamW(ps), 12),
])
def test_optimizer_costs(make, per_element):
    model = mlp()
    p = profile(model, torch.randn(2, 8), train=True, optimizer=make(model.parameters()))
    assert p.phase("optimizer").flops == per_element * 212


def test_unknown_optimizer_is_listed_by_name():
    model = mlp()
    p = profile(model, torch.randn(2, 8), train=True,
                optimizer=torch.optim.RMSprop(model.parameters()))
    assert p.unsupported == {"optimizer.RMSprop (step not counted)": 1}
    assert p.phase("optimizer").flops == 0


def test_conv_backward_and_loss():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(),
                          nn.Conv2d(4, 2, 3, padding=1, bias=False))
    x = torch.randn(1, 3, 8, 8)
    # conv 1: 4*64*3*9 = 6,912 MACs; conv 2: 2*64*4*9 = 4,608 MACs
    p = profile(model, x, train=True, loss=lambda y: y.pow(2).mean())
    assert rows(p, "forward")["0"][0] == 6_912
    # conv 2 needs grad input and grad weight: 2 x 4,608; conv 1 grad weight only
    assert rows(p, "backward")["2"][0] == 2 * 4_608
    assert rows(p, "backward")["0"][0] == 6_912
    assert p.unsupported == {}


def test_lstm_backward_is_twice_its_forward_macs():
    lstm = nn.LSTM(8, 16)

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lstm

        def forward(self, x):
            return self.lstm(x)[0]

    p = profile(Wrap(), torch.randn(5, 2, 8), train=True)
    # forward 10 rows * 4*16*(8+16) = 15,360 MACs; backward: input and weight gradients
    assert p.phase("forward").layer("lstm").macs == 15_360
    assert p.phase("backward").layer("lstm").macs == 2 * 15_360
    assert p.unsupported == {}


def test_training_the_seed_classifier_leaves_it_untouched():
    model = VibrationClassifier().train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 1, 1024)
    p = profile(model, x, train=True, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert p.traced == "fake" and p.unsupported == {}
    assert all(q.grad is None for q in model.parameters())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    # the forward phase counts what an inference profile of a train-mode model counts
    assert p.phase("forward").macs == profile(model, x).macs


def test_training_on_the_meta_device():
    with torch.device("meta"):
        model = nn.Sequential(nn.Embedding(100, 32), nn.Linear(32, 100))
    p = profile(model, torch.randint(0, 100, (1, 8)), train=True)
    # the linear layer: 8*100*32 = 25,600 MACs forward; weight gradient only backward
    # (the embedding output needs a gradient though: grad input too) = 2 x 25,600
    assert p.phase("forward").macs == 25_600
    assert p.phase("backward").macs == 51_200


def test_nothing_to_train_is_a_clear_error():
    model = mlp().requires_grad_(False)
    with pytest.raises(TraceError, match="nothing to train"):
        profile(model, torch.randn(2, 8), train=True)


def test_optimizer_without_train_is_an_error():
    model = mlp()
    with pytest.raises(ValueError, match="pass train=True"):
        profile(model, torch.randn(2, 8), optimizer=torch.optim.SGD(model.parameters(), lr=1))
