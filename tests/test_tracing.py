"""How a model is traced: fake tensors first, a real forward only when needed, and the model
left exactly as it was found."""

from __future__ import annotations

import copy

import pytest
import torch
from reference_models import VibrationClassifier
from torch import nn

from pytest_flopbudget import TraceError, profile


class ReadsValues(nn.Module):
    """Branches on a tensor value, so it cannot run on fake tensors; trains a BatchNorm."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        x = self.bn(x)
        if x.sum().item() > -1e9:  # data-dependent control flow
            x = self.fc(x)
        return x


def test_fake_trace_is_the_default():
    p = profile(nn.Linear(4, 4), torch.randn(2, 4))
    assert (p.traced, p.fallback_reason) == ("fake", "")


def test_falls_back_to_one_real_forward_and_says_why():
    p = profile(ReadsValues().train(), torch.randn(3, 4))
    assert p.traced == "real"
    assert "reads tensor values" in p.fallback_reason
    assert "_local_scalar_dense" in p.fallback_reason
    # BN train: 12 elements * 8 + num_batches_tracked add 1 = 97; sum 12; fc 3*4*4 MACs =
    # 48 -> 96 + 12 bias adds
    assert p.flops == 97 + 12 + 96 + 12


def test_trace_fake_refuses_a_model_that_needs_real_data():
    with pytest.raises(TraceError, match="reads tensor values.*trace='auto' or 'real'"):
        profile(ReadsValues(), torch.randn(3, 4), trace="fake")


def test_data_dependent_output_shape_falls_back():
    class Select(nn.Module):
        def forward(self, x):
            return x[x > 0] * 2

    p = profile(Select(), torch.arange(-3.0, 5.0))
    assert p.traced == "real"
    assert "output shape depends on tensor values" in p.fallback_reason
    # x > 0: 8 compares; x[mask] keeps 4 values; * 2 -> 4 multiplies
    assert p.flops == 8 + 4


def test_item_on_a_model_constant_stays_fake():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", torch.tensor(2.0))

        def forward(self, x):
            return x * self.scale.item()

    p = profile(Scaled(), torch.randn(10))
    assert (p.traced, p.flops) == ("fake", 10)


def test_a_small_integer_cpu_tensor_keeps_its_value():
    # the caller's step counts are integer CPU data: their max is read on the trace's own
    # copy, so the loop runs 3 times on fake tensors. max over 3 elements: 3; 3 multiplies
    # of 4 elements: 12
    class Steps(nn.Module):
        def forward(self, x, n):
            for _ in range(int(n.max())):
                x = x * 2
            return x

    n = torch.tensor([1, 3, 2])
    p = profile(Steps(), torch.randn(4), n)
    assert (p.traced, p.flops) == ("fake", 3 + 12)
    assert n.tolist() == [1, 3, 2]


def test_an_integer_value_written_from_float_data_is_no_longer_known():
    # m is the caller's n shifted in place by a sum of x: a value a fake trace cannot know,
    # so int(m[0]) needs the real forward, which says so
    class Shifted(nn.Module):
        def forward(self, x, n):
            m = n.clone()
            m += x.sum().long()
            return x * int(m[0])

    p = profile(Shifted(), torch.zeros(4), torch.tensor([2, 1]))
    assert p.traced == "real"
    assert "reads tensor values" in p.fallback_reason


def test_model_on_the_meta_device():
    with torch.device("meta"):
        model = nn.Sequential(nn.Embedding(32_000, 512), nn.Linear(512, 512))
    p = profile(model, torch.randint(0, 32_000, (1, 16)))
    # 16 tokens * 512 * 512 = 4,194,304 MACs; embedding 0 FLOPs
    assert p.macs == 4_194_304
    assert p.params == 32_000 * 512 + 512 * 512 + 512


def test_meta_model_needing_real_data_is_a_clear_error():
    with torch.device("meta"):
        model = ReadsValues()
    with pytest.raises(TraceError, match="on the meta device.*build it on a real device"):
        profile(model, torch.randn(3, 4))


def test_a_broken_model_raises_its_own_error():
    class Broken(nn.Module):
        def forward(self, x):
            raise ValueError("shape mismatch in my model")

    with pytest.raises(ValueError, match="shape mismatch in my model"):
        profile(Broken(), torch.randn(2))


def test_counting_needs_no_memory_for_a_huge_input():
    # a 1 x 3 x 20000 x 20000 input (4.8 GB as real floats) given on the meta device:
    # nothing is allocated or computed, the count is exact.
    # 3 -> 8 channels, 3x3, padding 1: MACs = 8 * 20000^2 * 3 * 9 = 86,400,000,000
    x = torch.empty(1, 3, 20_000, 20_000, device="meta")
    p = profile(nn.Conv2d(3, 8, 3, padding=1, bias=False), x)
    assert p.macs == 86_400_000_000


def test_number_of_ops_recorded_does_not_grow_with_input_size():
    model = VibrationClassifier().eval()
    small = profile(model, torch.randn(1, 1, 1024))
    large = profile(model, torch.empty(64, 1, 65_536, device="meta"))
    assert [r.op for r in small.records] == [r.op for r in large.records]
    assert large.macs > 64 * 64 * small.macs / 2


def snapshot(model):
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "versions": {k: v._version for k, v in model.state_dict().items()},
        "training": {n: m.training for n, m in model.named_modules()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "grads": {n: p.grad for n, p in model.named_parameters()},
        "attrs": {n: sorted(vars(m)) for n, m in model.named_modules()},
        "hooks": {n: (dict(m._forward_hooks), dict(m._forward_pre_hooks))
                  for n, m in model.named_modules()},
        "rng": torch.get_rng_state(),
    }


def assert_same(before, after):
    assert before["state"].keys() == after["state"].keys()
    for k in before["state"]:
        assert torch.equal(before["state"][k], after["state"][k]), k
    for key in ("versions", "training", "requires_grad", "attrs", "hooks"):
        assert before[key] == after[key], key
    for n, g in before["grads"].items():
        assert after["grads"][n] is g, n
    assert torch.equal(before["rng"], after["rng"])


class Meddler(nn.Module):
    """Does everything a forward should not: trains BatchNorm, caches a tensor on itself,
    flips a flag, registers a hook, uses dropout randomness, and (optionally) needs real data."""

    def __init__(self, needs_real: bool):
        super().__init__()
        self.needs_real = needs_real
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        x = self.drop(self.bn(x))
        self.cache = x  # attribute written by forward
        self.fc.training = False  # flag flipped by forward
        self.fc.register_forward_hook(lambda *a: None)  # hook added by forward
        if self.needs_real and x.sum().item() > -1e9:
            x = x + 1
        return self.fc(x)


@pytest.mark.parametrize("needs_real", [False, True], ids=["fake", "real-fallback"])
def test_the_model_is_left_exactly_as_found(needs_real):
    model = Meddler(needs_real).train()
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    model.bn.weight.requires_grad_(False)
    model.register_forward_pre_hook(lambda *a: None)
    model.bn.running_mean.fill_(0.25)
    x = torch.randn(3, 4)
    before = snapshot(model)
    p = profile(model, x)
    assert p.traced == ("real" if needs_real else "fake")
    assert_same(before, snapshot(model))
    assert not hasattr(model, "cache")


class ReassignsItsTensors(nn.Module):
    """A forward that replaces a registered buffer and a parameter, as running-statistics
    code written by hand does."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("last", torch.zeros(4))

    def forward(self, x):
        y = self.fc(x)
        self.last = y.mean(0).detach()  # a registered buffer replaced by a new tensor
        self.fc.bias = nn.Parameter(self.fc.bias * 0)  # a parameter replaced
        return y


def test_reassigned_buffers_and_parameters_are_put_back():
    model = ReassignsItsTensors()
    last, bias = model.last, model.fc.bias
    p = profile(model, torch.randn(3, 4))
    assert p.traced == "fake"
    assert model.last is last and model.fc.bias is bias  # the very same tensor objects
    assert model._buffers["last"] is last and model.fc._parameters["bias"] is bias
    assert torch.equal(last, torch.zeros(4))


class CachesThenReadsValues(nn.Module):
    """Stores a tensor on itself, then needs its value: the fake attempt stores a fake tensor
    before it fails, and the real fallback must not find it there."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if not hasattr(self, "scale"):
            self.scale = x.abs().amax()
        return self.fc(x) * self.scale.item()


def test_the_real_fallback_starts_from_the_model_as_found():
    model = CachesThenReadsValues()
    p = profile(model, torch.randn(3, 4))
    assert p.traced == "real"
    assert not hasattr(model, "scale")
    # real run: abs 12 + amax 12 (reduction, 1 per element) + fc 3*4*4 = 48 MACs -> 96 +
    # 12 bias adds + 12 multiplies by the scalar
    assert p.macs == 48


def test_the_seed_classifier_is_unchanged_bit_for_bit():
    model = VibrationClassifier().train()
    reference = copy.deepcopy(model)
    profile(model, torch.randn(2, 1, 1024))
    for (name, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name


def test_no_global_hooks_are_left_behind():
    from torch.nn.modules import module as nn_module

    before = (dict(nn_module._global_forward_pre_hooks), dict(nn_module._global_forward_hooks))
    profile(VibrationClassifier().eval(), torch.randn(1, 1, 1024))
    after = (dict(nn_module._global_forward_pre_hooks), dict(nn_module._global_forward_hooks))
    assert before == after


def test_unknown_ops_are_listed_by_name_never_silently_zero():
    class Spectral(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 5)

        def forward(self, x):
            return self.fc(torch.fft.rfft(x).abs())

    p = profile(Spectral(), torch.randn(2, 8))
    assert p.unsupported == {"aten._fft_r2c": 1}
    [row] = [r for r in p.layers if r.name == ""]
    assert row.unsupported == {"aten._fft_r2c": 1}
    # its traffic is still counted: reads 16 floats, writes 2 x 5 complex64 (8 bytes each)
    [fft] = [r for r in p.records if not r.supported]
    assert (fft.read.bytes(), fft.written.bytes(), fft.flops) == (64, 80, 0)


def test_rows_in_execution_order_and_layer_aggregation():
    p = profile(VibrationClassifier().eval(), torch.randn(1, 1, 1024))
    names = [r.name for r in p.layers]
    assert names[:4] == ["", "features", "features.0", "features.1"]
    assert names.index("lstm") < names.index("attention") < names.index("norm") \
        < names.index("head")
    # rows hold own work; they sum to the totals
    assert sum(r.flops for r in p.layers) == p.flops
    assert sum(r.bytes for r in p.layers) == p.bytes
    # layer() aggregates over children
    children = [r for r in p.layers if r.name.startswith("features.")]
    assert p.layer("features").macs == sum(r.macs for r in children)
    assert p.layer("").flops == p.flops
    # data flow: seed 000's shapes
    assert p.layer("features").output_shapes == [(1, 128, 128)]
    assert p.layer("features.4").output_shapes == [(1, 32, 512)]  # first MaxPool1d


def test_layer_lookup_of_an_unknown_path_suggests():
    p = profile(VibrationClassifier().eval(), torch.randn(1, 1, 1024))
    with pytest.raises(KeyError, match="no module 'lstm.0'.*did you mean 'lstm'"):
        p.layer("lstm.0")


def test_kwargs_go_to_forward():
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x, *, scale=None, dtype="a forward argument"):
            y = self.fc(x)
            return y * scale if scale is not None else y

    # 2 rows: fc 32 MACs -> 64 + 8 bias; "* scale" adds 8
    assert profile(Gated(), torch.randn(2, 4)).flops == 72
    assert profile(Gated(), torch.randn(2, 4), scale=torch.tensor(3.0)).flops == 80
    # an argument named like an option goes through forward_kwargs
    p = profile(Gated(), torch.randn(2, 4), forward_kwargs={"dtype": "x"})
    assert p.dtype is None


def test_peak_activation_memory():
    # conv 1 -> 4 on 1x1x10x10 writes 400 floats (1,600 bytes); the ReLU (not in place)
    # writes another 400 while the conv output is still alive: peak 3,200 bytes. Weights and
    # the input are not activations. At int8: 800.
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU())
    p = profile(model, torch.randn(1, 1, 10, 10))
    assert p.peak_activation_bytes == 3_200
    assert p.at_dtype("int8").peak_activation_bytes == 800


def test_not_a_module_is_a_clear_error():
    with pytest.raises(TypeError, match="needs a torch.nn.Module, got function"):
        profile(lambda x: x, torch.randn(2))


def test_a_model_built_under_inference_mode():
    # its tensors are inference tensors, which keep no version counter
    with torch.inference_mode():
        model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)).eval()
    # linear: 2 rows * 16 MACs -> 64 + 8 bias adds; batch norm eval: 8 elements * 4
    assert profile(model, torch.randn(2, 4)).flops == 72 + 32


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_an_integer_scalar_the_model_keeps_in_a_container_is_not_written_by_a_fake_trace():
    # fake mode runs an operator whose inputs are all constants for real: a tensor of the
    # model's, kept in a dict or list (no parameter, no buffer), must never be one
    class Counts(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.state = {"n": torch.tensor(0)}
            self.seen = [torch.tensor(5)]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.state["n"] += 1
            self.seen[0].mul_(2)
            return x * 2

    class Steps(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.n = torch.tensor(0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.n.add_(1)
            return x * 2

    model = Counts()
    p = profile(model, torch.randn(2, 3), trace="fake")
    # x * 2 over 2 x 3 elements: 6 FLOPs, plus the scalar add and the scalar multiply: 1 each,
    # 8 in all; the model's counters are still 0 and 5
    assert (p.traced, p.flops) == ("fake", 8)
    assert model.state["n"].item() == 0 and model.seen[0].item() == 5
    scripted = torch.jit.script(Steps())
    p = profile(scripted, torch.randn(2, 3), trace="fake")
    assert p.traced == "fake" and scripted.n.item() == 0
