"""Quantized models (``torch.ao``: eager static and dynamic, FX graph mode) count the MACs and
params of their float twins, on fake tensors, with bytes at their int8 widths.

Per element (see ops/quantized.py): quantize 5 (div, round, add zp, two clamps), dequantize
2 (sub zp, mul), dynamic quantization + 2 (min, max); a quantized product adds requantize 5
per output to its float twin (a fused ReLU is free); ``quantized::add`` is 2 + 2 + 1 + 5 = 10.
Per-channel weights carry a float32 scale and an int32 zero point per output channel.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.ao.quantization as tq
import torch.ao.quantization.fx._decomposed  # defines the quantized_decomposed operators
import torch.nn.functional as F
from reference_models import Fn
from torch import nn

from pytest_flopbudget import profile
from pytest_flopbudget.budgets.limits import check
from pytest_flopbudget.budgets.measurement import unseen_text

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def _engine():
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = "x86"
    yield
    torch.backends.quantized.engine = before


class ResBlock(nn.Module):
    """quant -> conv1 -> relu -> conv2 -> + x -> dequant, 4 channels, 3x3, padding 1."""

    def __init__(self) -> None:
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.skip = nn.quantized.FloatFunctional()
        self.dequant = tq.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x)
        y = self.conv2(self.relu(self.conv1(x)))
        return self.dequant(self.skip.add(y, x))


def static_quantized(model: nn.Module, x: torch.Tensor, fuse: list[list[str]] | None = None
                     ) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = model.eval()
        if fuse:
            model = tq.fuse_modules(model, fuse)
        model.qconfig = tq.get_default_qconfig("x86")  # per-channel weights
        prepared = tq.prepare(model)
        prepared(x)
        return tq.convert(prepared)


X = torch.randn(1, 4, 6, 6)


def test_static_quantized_block_counts_its_float_twin_on_fake_tensors():
    q = static_quantized(ResBlock(), X)
    p, f = profile(q, X), profile(ResBlock().eval(), X)
    assert (p.traced, p.unsupported) == ("fake", {})
    # each conv: 6*6 positions * 4 out * 4 in * 3*3 = 5,184 MACs; two: 10,368
    assert p.macs == f.macs == 10_368
    # params: 2 x (4*4*3*3 weights + 4 biases) = 296, as the float model
    assert p.params == f.params == 296
    # FLOPs: quantize 144 elements * 5 = 720; each conv 2*5,184 + bias 144 + requantize
    # 144*5 = 720; relu 144; add 144 * (2 + 2 + 1 + 5) = 1,440; dequantize 144 * 2 = 288
    assert p.flops == 720 + 2 * (10_368 + 144 + 720) + 144 + 1_440 + 288
    # weights: per conv 144 int8 + 4 channels * (4-byte scale + 4-byte zero point) + 4
    # float biases * 4 = 144 + 32 + 16 = 192
    assert p.weight_bytes == 2 * 192
    assert p.layer("conv1").params == 148


def test_static_quantized_bytes_are_int8():
    q = static_quantized(ResBlock(), X)
    p = profile(q, X)
    [conv1] = [r for r in p.records if r.module == "conv1"]
    # reads the quint8 input (144 B), the int8 weight (144 B), 4 scales + 4 zero points
    # (32 B) and the float bias (16 B); writes the quint8 output (144 B)
    assert (conv1.read.bytes(), conv1.written.bytes()) == (144 + 144 + 32 + 16, 144)
    assert conv1.weights.bytes() == 144 + 32 + 16
    # the same kind and MAC-array dims as the float twin, so a device prices them alike
    [twin] = [r for r in profile(ResBlock().eval(), X).records if r.module == "conv1"]
    assert (conv1.op_class, conv1.kind, conv1.mac_dims) == \
        (twin.op_class, twin.kind, twin.mac_dims) == ("conv", "conv3x3", (4, 4))
    # quantize: reads 144 floats (576 B), writes 144 quint8
    [quant] = [r for r in p.records if r.op == "aten.quantize_per_tensor"]
    assert (quant.read.bytes(), quant.written.bytes()) == (576, 144)


def test_fused_conv_relu_folds_the_relu_into_the_requantize():
    q = static_quantized(ResBlock(), X, fuse=[["conv1", "relu"]])
    p = profile(q, X)
    assert "quantized.conv2d_relu" in {r.op for r in p.records}
    # as above without the relu's 144 FLOPs
    assert p.flops == 720 + 2 * (10_368 + 144 + 720) + 1_440 + 288
    assert (p.macs, p.params, p.unsupported) == (10_368, 296, {})


class Head(nn.Module):
    """A quantized linear head and a depthwise 1-D conv: conv1d is packed as 2-D."""

    def __init__(self) -> None:
        super().__init__()
        self.quant = tq.QuantStub()
        self.dw = nn.Conv1d(6, 6, 5, stride=2, groups=6)
        self.fc = nn.Linear(6 * 6, 10)
        self.dequant = tq.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(self.quant(x))
        return self.dequant(self.fc(y.flatten(1)))


def test_quantized_conv1d_and_linear():
    x = torch.randn(2, 6, 16)
    q = static_quantized(Head(), x)
    p = profile(q, x)
    # dw: L_out = (16 - 5) // 2 + 1 = 6; 2 * 6 * 6 channels * 1 * 5 = 360 MACs
    # fc: 2 rows * 36 * 10 = 720 MACs
    assert (p.macs, p.unsupported, p.traced) == (360 + 720, {}, "fake")
    assert p.layer("dw").macs == 360
    assert p.layer("fc").macs == 720
    # params: dw 6*1*5 + 6 = 36; fc 360 + 10 = 370
    assert p.params == profile(Head().eval(), x).params == 406
    assert p.layer("fc").params == 370
    [dw] = [r for r in p.records if r.module == "dw"]
    assert dw.op_class == "depthwise_conv"


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(x)
        return self.fc(h)


def dynamic(model: nn.Module, dtype: torch.dtype = torch.qint8) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tq.quantize_dynamic(model.eval(), {nn.LSTM, nn.GRU, nn.Linear}, dtype=dtype)


def test_dynamic_quantized_lstm_and_linear():
    x = torch.randn(2, 5, 8)
    p, f = profile(dynamic(Recurrent()), x), profile(Recurrent().eval(), x)
    assert (p.traced, p.unsupported) == ("fake", {})
    # LSTM: 10 rows * 4*16*(8 + 16) = 15,360; fc: 10 rows * 16 * 4 = 640
    assert p.macs == f.macs == 16_000
    # LSTM 4*16*(8+16) + 2 * 64 biases = 1,664; fc 64 + 4 = 68
    assert p.params == f.params == 1_732
    # LSTM elementwise: the float cell 10 rows * (22 + 8) * 16 = 4,800, + per row quantizing
    # x_t and h (7 * (8 + 16) = 168) and rescaling both products (2 * 64 = 128): 10 * 296
    # fc: bias 40 + quantize the input 7 * 160 + rescale 40
    assert p.flops == 2 * 16_000 + 4_800 + 2_960 + 40 + 1_120 + 40
    # weights: LSTM 1,536 int8 + 2 per-tensor (scale, zero point) pairs 16 B + 128 float
    # biases 512 B; fc 64 + 8 + 16
    assert p.weight_bytes == (1_536 + 16 + 512) + (64 + 8 + 16)


def test_a_dynamic_quantized_lstm_over_a_packed_sequence_counts_on_fake_tensors():
    # lengths 2, 5, 3: steps run 3, 3, 2, 1, 1 sequences = 10 packed rows (not 15):
    # 10 * 4*16*(8 + 16) = 15,360 MACs
    class PackedLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(8, 16, batch_first=True)

        def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                       enforce_sorted=False)
            return self.lstm(packed)[1][0]

    q, x, lengths = dynamic(PackedLSTM()), torch.randn(3, 5, 8), torch.tensor([2, 5, 3])
    p, real = profile(q, x, lengths), profile(q, x, lengths, trace="real")
    assert (p.traced, p.unsupported, p.macs) == ("fake", {}, 15_360)
    assert (real.macs, real.flops, real.bytes) == (p.macs, p.flops, p.bytes)


def test_dynamic_quantized_gru_and_fp16_weights():
    x = torch.randn(5, 2, 8)
    # quantize_dynamic swaps a model's children, never the model itself: wrap the GRU
    gru = nn.Sequential(nn.GRU(8, 16, num_layers=2, bidirectional=True))
    # layer 0: 2 dirs * 10 rows * 3*16*(8 + 16) = 23,040; layer 1: 2 * 10 * 3*16*(32 + 16)
    # = 46,080
    macs = 2 * 10 * 3 * 16 * 24 + 2 * 10 * 3 * 16 * 48
    # params: layer 0 2 * (48*8 + 48*16 + 96) = 2,496; layer 1 2 * (48*32 + 48*16 + 96)
    params = 2 * (48 * 8 + 48 * 16 + 96) + 2 * (48 * 32 + 48 * 16 + 96)
    p = profile(dynamic(gru), x)
    assert (p.macs, p.params, p.unsupported, p.traced) == (macs, params, {}, "fake")
    assert {r.op for r in p.records} == {"aten.zeros", "aten.quantized_gru"}
    # elementwise: the float cell with biases (16 + 6) * 16 = 352 per row, 10 rows, 4
    # stages: 14,080; quantizing x_t and h each step, 7 per element: layer 0 7 * (8 + 16)
    # = 168, layer 1 7 * (32 + 16) = 336 per row; rescaling both products' 48 gate outputs:
    # 2 * 48 = 96 per row. 2 directions * 10 rows * ((168 + 96) + (336 + 96)) = 13,920
    assert p.flops == 2 * macs + 14_080 + 13_920
    # weights per stage: int8 w_ih and w_hh, a (scale, zero point) pair each (16 B), 96
    # float biases (384 B): layer 0 384 + 768 + 16 + 384 = 1,552, layer 1 1,536 + 768 + 16
    # + 384 = 2,704
    assert p.weight_bytes == 2 * (1_552 + 2_704)
    # fp16 weights: the float model's MACs, FLOPs and params
    x = torch.randn(2, 5, 8)
    p, f = profile(dynamic(Recurrent(), torch.float16), x), profile(Recurrent().eval(), x)
    assert (p.macs, p.flops, p.params, p.unsupported) == (f.macs, f.flops, f.params, {})


class CatMul(nn.Module):
    """quant -> 1x1 conv -> hardswish, concatenated with its input, squared, dequant."""

    def __init__(self) -> None:
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv = nn.Conv2d(4, 4, 1)
        self.act = nn.Hardswish()
        self.cat = nn.quantized.FloatFunctional()
        self.mul = nn.quantized.FloatFunctional()
        self.dequant = tq.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x)
        c = self.cat.cat([self.act(self.conv(x)), x], 1)
        return self.dequant(self.mul.mul(c, c))


def test_quantized_cat_mul_and_hardswish():
    q = static_quantized(CatMul(), X)
    p = profile(q, X)
    assert (p.traced, p.unsupported) == ("fake", {})
    ops = {r.op: r for r in p.records}
    # cat: a copy of two quint8 tensors of 144 elements (inputs at the output's scale)
    cat = ops["quantized.cat"]
    assert (cat.flops, cat.read.bytes(), cat.written.bytes()) == (0, 288, 288)
    # mul: per output, dequantize both operands 2 + 2, multiply 1, requantize 5: 288 * 10
    assert (ops["quantized.mul"].flops, ops["quantized.mul"].written.bytes()) == (2_880, 288)
    # hardswish: dequantize 2, the float hardswish 5, requantize 5: 144 * 12
    assert ops["quantized.hardswish"].flops == 1_728
    # conv: 36 positions * 4 * 4 = 576 MACs, bias 144, requantize 144 * 5 = 720
    assert (p.macs, ops["quantized.conv2d"].flops) == (576, 2 * 576 + 144 + 720)
    # all: quantize 144 * 5 = 720, conv 2,016, hardswish 1,728, cat 0, mul 2,880,
    # dequantize 288 * 2 = 576
    assert p.flops == 720 + 2_016 + 1_728 + 2_880 + 576
    assert p.params == 4 * 4 + 4


def test_fx_graph_mode_quantized_model():
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 8, 3)
            self.bn = nn.BatchNorm2d(8)
            self.fc = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn(self.conv(x)))
            return self.fc(y.mean(dim=(2, 3)))

    x = torch.randn(1, 4, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(Net().eval(), get_default_qconfig_mapping("x86"), (x,))
        prepared(x)
        q = convert_fx(prepared)
    p = profile(q, x)
    assert (p.traced, p.unsupported) == ("fake", {})
    # conv: 4*4 positions * 8 * 4 * 9 = 4,608; fc 8 * 3 = 24 (the BN is folded into the conv)
    assert p.macs == 4_608 + 24
    # folded conv 8*4*9 + 8 = 296; fc 27
    assert p.params == 296 + 27


def test_a_scripted_quantized_model_counts_the_same():
    q = static_quantized(ResBlock(), X)
    p, s = profile(q, X), profile(torch.jit.script(q), X)
    assert (s.macs, s.flops, s.params, s.unsupported) == (p.macs, p.flops, p.params, {})


def test_a_quantized_input_tensor_is_carried_at_its_width():
    class Deq(nn.Module):
        def forward(self, q: torch.Tensor) -> torch.Tensor:
            return q.dequantize() * 2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qx = torch.quantize_per_tensor(torch.randn(3, 5), 0.1, 10, torch.quint8)
    p = profile(Deq(), qx)
    # dequantize 15 * 2, mul 15; dequantize reads 15 quint8 bytes
    assert (p.traced, p.flops) == ("fake", 30 + 15)
    assert p.records[0].read.bytes() == 15


class Hidden(nn.Module):
    """Holds recurrent weights in a form the plugin cannot read (legacy static cells)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.cell = torch.ops.quantized.make_quantized_cell_params(
            torch.randn(8, 4), torch.randn(8, 2), torch.randn(8), torch.randn(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_weights_it_cannot_see_are_said_never_zero():
    p = profile(Hidden(), torch.randn(1, 4))
    assert p.params == 20  # fc only
    assert list(p.hidden_weights) == [""]
    assert "CellParamsBase" in p.hidden_weights[""]
    assert "weights not visible" in str(p)
    assert p.to_dict()["hidden_weights"] == p.hidden_weights
    # a params limit fails with the reason, even one the counted figure is within
    [v] = check({"params": p.params}, {"max_params": 1_000_000},
                unseen=unseen_text(p.hidden_weights))
    assert v.reason and "cannot be checked" in v.text and "CellParamsBase" in v.text


def test_max_params_fails_on_unseen_weights_in_a_test(pytester):
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r})")
    pytester.makepyfile(test_h="""
import pytest, torch
from test_quantized import Hidden

@pytest.mark.flop_budget(max_params=1_000_000, max_mflops=10)
def test_hidden(flop_budget):
    flop_budget(Hidden(), torch.randn(1, 4))
""")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*max_params: 20 params counted, but the weights of 1 "
                                 "module(s) cannot be seen*cannot be checked*",
                                 "*weights not visible (not in params)*CellParamsBase*"])


def test_unseen_weights_are_said_in_the_summary_of_a_passing_test(pytester):
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r})")
    pytester.makepyfile(test_h="""
import pytest, torch
from test_quantized import Hidden

@pytest.mark.flop_budget(max_mflops=10)
def test_hidden(flop_budget):
    flop_budget(Hidden(), torch.randn(1, 4))
""")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "operators without a formula (their FLOPs are not counted) and weights not visible "
        "(not in params):",
        "test_h.py::test_hidden: Hidden",
        "*weights not visible (not in params): <model>: cell (CellParamsBase)*"])
    result = pytester.runpytest("-p", "no:cacheprovider", "-q")
    result.stdout.fnmatch_lines(["test_h.py::test_hidden: Hidden: weights not visible"])


class Int8Weight(torch.Tensor):
    """An int8 weight-only tensor as torchao makes them: a tensor subclass holding int8 data
    and a float scale per output row, dequantized where it is used."""

    @staticmethod
    def __new__(cls, qdata: torch.Tensor, scale: torch.Tensor) -> Int8Weight:
        return torch.Tensor._make_wrapper_subclass(cls, qdata.shape, dtype=torch.float32,
                                                   device=qdata.device)

    def __init__(self, qdata: torch.Tensor, scale: torch.Tensor) -> None:
        self.qdata, self.scale = qdata, scale

    def __tensor_flatten__(self) -> tuple[list[str], None]:
        return ["qdata", "scale"], None

    @staticmethod
    def __tensor_unflatten__(inner, meta, outer_size, outer_stride):  # type: ignore[no-untyped-def]
        return Int8Weight(inner["qdata"], inner["scale"])

    @classmethod
    def of(cls, w: torch.Tensor) -> Int8Weight:
        scale = w.abs().amax(1, keepdim=True) / 127
        return cls((w / scale).round().to(torch.int8), scale)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        from torch.utils._python_dispatch import return_and_correct_aliasing

        if func in (torch.ops.aten.detach.default, torch.ops.aten.alias.default):
            w = args[0]
            return return_and_correct_aliasing(func, args, kwargs or {},
                                               Int8Weight(func(w.qdata), func(w.scale)))
        plain = [a.qdata.float() * a.scale if isinstance(a, Int8Weight) else a for a in args]
        return func(*plain, **(kwargs or {}))


def test_an_int8_weight_only_tensor_subclass_is_priced_at_what_it_holds():
    fc = nn.Linear(16, 8)
    fc.weight = nn.Parameter(Int8Weight.of(fc.weight.detach()), requires_grad=False)
    p = profile(fc, torch.randn(2, 16))
    # 2 rows * 16 * 8 = 256 MACs; params 128 + 8: the logical weight, as the float layer's
    assert (p.traced, p.unsupported, p.macs, p.params) == ("fake", {}, 256, 136)
    # bytes: 128 int8 + 8 float scales (32 B) + 8 float biases (32 B), not 136 floats
    assert p.weight_bytes == 128 + 32 + 32
    # the linear reads x (32 floats), the weight as held (160 B) and the bias (32 B)
    assert p.records[0].read.bytes() == 128 + 160 + 32


def test_a_real_forward_of_a_quantized_model_counts_the_same():
    # trace="real" runs the quantized kernels; the formulas read the same packed weights
    q = static_quantized(ResBlock(), X)
    fake, real = profile(q, X), profile(q, X, trace="real")
    assert (real.traced, real.unsupported) == ("real", {})
    assert (real.macs, real.flops, real.params) == (fake.macs, fake.flops, fake.params)
    x = torch.randn(2, 5, 8)
    d = dynamic(Recurrent())
    fake, real = profile(d, x), profile(d, x, trace="real")
    assert (real.macs, real.flops, real.bytes) == (fake.macs, fake.flops, fake.bytes)


# -- int8 weights as plain integer tensors (PT2E quantization, torchao) --------------------
# PT2E's convert_pt2e and torchao keep an int8 weight as an integer tensor of the model and
# call torch.ops.quantized_decomposed.dequantize_* on it where it is used; activations pass
# through quantize_per_tensor / dequantize_per_tensor pairs. Built by hand here (this torch
# ships no prepare_pt2e and torchao is not installed).

qd = torch.ops.quantized_decomposed


class Int8Conv(nn.Module):
    """A 3 -> 8 channel 3x3 conv (padding 1): int8 weight buffer with a float32 scale and an
    int64 zero point per output channel, float bias."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weight_int8",
                             torch.randint(-128, 128, (8, 3, 3, 3), dtype=torch.int8))
        self.register_buffer("scale", torch.rand(8) / 100)
        self.register_buffer("zero_point", torch.zeros(8, dtype=torch.int64))
        self.bias = nn.Parameter(torch.zeros(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = qd.dequantize_per_channel(self.weight_int8, self.scale, self.zero_point, 0,
                                      -128, 127, torch.int8)
        return F.conv2d(x, w, self.bias, padding=1)


class Int8Linear(nn.Module):
    """An 8 -> 10 linear layer: int8 weight held as a plain tensor attribute (no buffer),
    one Python float scale and zero point, float bias."""

    def __init__(self) -> None:
        super().__init__()
        self.weight_int8 = torch.randint(-128, 128, (10, 8), dtype=torch.int8)
        self.bias = nn.Parameter(torch.zeros(10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = qd.dequantize_per_tensor(self.weight_int8, 0.02, 0, -128, 127, torch.int8)
        return F.linear(x, w, self.bias)


class PT2ENet(nn.Module):
    """quantize / dequantize the input, Int8Conv, global mean, Int8Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = Int8Conv()
        self.fc = Int8Linear()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = qd.quantize_per_tensor(x, 0.05, 0, -128, 127, torch.int8)
        x = qd.dequantize_per_tensor(q, 0.05, 0, -128, 127, torch.int8)
        return self.fc(self.conv(x).mean(dim=(2, 3)))


X8 = torch.randn(1, 3, 8, 8)


@pytest.mark.parametrize("how", ["auto", "real"])
def test_int8_weights_dequantized_from_integer_tensors_are_params(how):
    p = profile(PT2ENet(), X8, trace=how)
    assert (p.traced, p.unsupported) == ("fake" if how == "auto" else "real", {})
    # conv: 8x8 positions * 8 out * 3 in * 3x3 = 13,824 MACs; fc: 8 * 10 = 80
    assert p.macs == 13_824 + 80
    # FLOPs: quantize the input 192 elements * 5 = 960; dequantize it 192 * 2 = 384;
    # dequantize the conv weight 216 * 2 = 432; conv 2 * 13,824 + 512 bias adds = 28,160;
    # mean 512; dequantize the fc weight 80 * 2 = 160; fc 2 * 80 + 10 = 170
    assert p.flops == 960 + 384 + 432 + 28_160 + 512 + 160 + 170 == 30_778
    # params: the float twin's, 8*3*3*3 + 8 + 8*10 + 10 = 314: the int8 weights count
    assert p.params == 216 + 8 + 80 + 10 == 314
    assert (p.layer("conv").params, p.layer("fc").params) == (224, 90)
    # weight bytes: conv 216 int8 + 8 float32 scales 32 + 8 int64 zero points 64 + bias
    # 8 floats 32; fc 80 int8 (its scale and zero point are Python numbers) + bias 40
    assert p.weight_bytes == (216 + 32 + 64 + 32) + (80 + 40) == 464
    # the conv's weight, scales and zero points are no longer buffers
    assert p.buffers == 0
    [note] = p.notes
    assert "conv.weight_int8, fc.weight_int8" in note and "counted in params" in note
    assert f"note: {note}" in str(p)


def test_dequantize_of_an_activation_is_no_weight():
    # the input's quantize / dequantize pair reads no tensor of the model: nothing moves
    # into params, no note
    class QDQ(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q = qd.quantize_per_tensor(x, 0.05, 0, -128, 127, torch.int8)
            return qd.dequantize_per_tensor(q, 0.05, 0, -128, 127, torch.int8)

    p = profile(QDQ(), X8)
    assert (p.params, p.notes) == (0, ())
    # 192 elements: quantize 5 + dequantize 2 each = 1,344; quantize reads 192 floats
    # (768 B) and writes 192 int8; dequantize reads 192 int8 and writes 768 B
    assert p.flops == 192 * 7 == 1_344
    assert (p.bytes_read, p.bytes_written) == (768 + 192, 192 + 768)


def test_max_params_counts_the_int8_weights():
    # the limit sees 314 params, not the 18 float biases alone
    p = profile(PT2ENet(), X8)
    [v] = check({"params": p.params}, {"max_params": 300})
    assert "314" in v.text
    assert check({"params": p.params}, {"max_params": 314}) == []


XF = torch.randn(4, 8)  # 32 floats, 128 B
QI = torch.randint(-128, 128, (4, 8), dtype=torch.int8)  # 32 int8, 32 B
S4, Z4 = torch.rand(4) + 0.1, torch.zeros(4, dtype=torch.int64)  # per row: 16 B, 32 B
ST, ZT = torch.rand(4, 1) + 0.1, torch.zeros(4, 1, dtype=torch.int32)  # per token: 16, 16 B
SG, ZG = torch.rand(8) + 0.1, torch.zeros(8, dtype=torch.int32)  # groups of 4: 32, 32 B


@pytest.mark.parametrize("call,flops,read,written", [
    # quantize, 5 per element (mul by 1/s, round, add zp, 2 clamps): 32 * 5 = 160; reads
    # the 128 B of floats (+ tensor parameters), writes 32 int8
    (lambda: qd.quantize_per_tensor(XF, 0.1, 0, -128, 127, torch.int8), 160, 128, 32),
    (lambda: qd.quantize_per_tensor(XF, torch.tensor(0.1), torch.tensor(0), -128, 127,
                                    torch.int8), 160, 128 + 4 + 8, 32),
    (lambda: qd.quantize_per_channel(XF, S4, Z4, 0, -128, 127, torch.int8),
     160, 128 + 16 + 32, 32),
    (lambda: qd.quantize_per_token(XF, ST, ZT, -128, 127, torch.int8), 160, 128 + 16 + 16, 32),
    (lambda: qd.quantize_per_channel_group(XF, SG, ZG, -128, 127, torch.int8, 4),
     160, 128 + 32 + 32, 32),
    # dequantize, (q - zp) * s: 2 per element = 64; reads 32 int8 (+ parameters), writes
    # 128 B of floats
    (lambda: qd.dequantize_per_tensor(QI, 0.1, 0, -128, 127, torch.int8), 64, 32, 128),
    (lambda: qd.dequantize_per_channel(QI, S4, Z4, 0, -128, 127, torch.int8),
     64, 32 + 16 + 32, 128),
    # no zero point (symmetric): q * s, 1 per element = 32
    (lambda: qd.dequantize_per_channel(QI, S4, None, 0, -128, 127, torch.int8),
     32, 32 + 16, 128),
    (lambda: qd.dequantize_per_token(QI, ST, ZT, -128, 127, torch.int8, torch.float32),
     64, 32 + 16 + 16, 128),
    (lambda: qd.dequantize_per_channel_group(QI, SG, ZG, -128, 127, torch.int8, 4,
                                             torch.float32), 64, 32 + 32 + 32, 128),
    # choose the parameters: min and max (or abs and max) of the input, 2 per element = 64;
    # per tensor, writes a float64 scale and an int64 zero point (16 B; torch's meta
    # kernel, as determine_qparams makes them)
    (lambda: qd.choose_qparams(XF, -128, 127, 1e-5, torch.int8), 64, 128, 16),
    (lambda: qd.choose_qparams_symmetric(XF, -128, 127, 1e-5, torch.int8), 64, 128, 16),
    (lambda: qd.choose_qparams_per_token(XF, torch.int8), 64, 128, None),
    (lambda: qd.choose_qparams_per_token_asymmetric(XF, torch.int8), 64, 128, None),
])
def test_quantized_decomposed_operators(call, flops, read, written):
    p = profile(Fn(lambda: call()))
    [rec] = p.records
    assert (p.traced, p.unsupported, rec.macs, rec.flops) == ("fake", {}, 0, flops)
    assert rec.read.bytes() == read
    if written is not None:
        assert rec.written.bytes() == written
