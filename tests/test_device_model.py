"""The device model's features, each priced by hand on operator records built by hand.

Records here are what the tracer produces (``counting.records.OpRecord``), written out so every
byte and FLOP is visible: fp32 tensors unless said otherwise, so N elements are 4N bytes.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from pytest_flopbudget.core.access import Access
from pytest_flopbudget.counting.profile import profile
from pytest_flopbudget.counting.records import OpRecord
from pytest_flopbudget.devices.device import Device, DeviceError
from pytest_flopbudget.devices.fit import terms
from pytest_flopbudget.devices.fusion import units
from pytest_flopbudget.devices.roofline import predict


def fp32(elements: int) -> Access:
    return Access(elements, 4 * elements, 0)


class Prof:
    """A profile as the roofline reads it: records, one layer row per module, a dtype."""

    def __init__(self, records: list[OpRecord], dtype: str | None = "fp32") -> None:
        self.records = records
        self.dtype = dtype
        names = list(dict.fromkeys(r.module for r in records))
        self.layers = [type("Row", (), {"name": n, "kind": n.title()})() for n in names]


# A residual block's tail, as the tracer records it:
#   call 0  conv   reads x (1,000) + weight (9,000), writes y (1,000), 18,000 MACs
#   call 1  bn     eval: reads y + 4 x 10 statistics, writes (1,000)          kind channel_affine
#   call 2  add    reads bn's result and the residual r (1,000), writes (1,000)
#   call 3  relu   reads the sum, writes (1,000); its result feeds two later operators
#   call 4  conv   reads relu's result + weight (9,000)
#   call 5  add    reads relu's result and call 4's result
CONV = OpRecord("aten.convolution", "conv1", "conv", 18_000, 36_000, fp32(10_000),
                fp32(1_000), weights=fp32(9_000), call=0, inputs=(), kind="conv2d",
                mac_dims=(90, 10))
BN = OpRecord("aten.batch_norm", "bn1", "norm", 0, 4_000, fp32(1_040), fp32(1_000),
              weights=fp32(40), call=1, inputs=(0,), kind="channel_affine")
ADD = OpRecord("aten.add", "block", "elementwise", 0, 1_000, fp32(2_000), fp32(1_000),
               call=2, inputs=(1,), kind="arithmetic")
RELU = OpRecord("aten.relu", "relu", "elementwise", 0, 1_000, fp32(1_000), fp32(1_000),
                call=3, inputs=(2,), kind="arithmetic")
CONV2 = OpRecord("aten.convolution", "conv2", "conv", 18_000, 36_000, fp32(10_000),
                 fp32(1_000), weights=fp32(9_000), call=4, inputs=(3,), kind="conv2d",
                 mac_dims=(90, 10))
ADD2 = OpRecord("aten.add", "block", "elementwise", 0, 1_000, fp32(2_000), fp32(1_000),
                call=5, inputs=(3, 4), kind="arithmetic")
BLOCK = [CONV, BN, ADD, RELU, CONV2, ADD2]


def test_without_fusion_every_operator_is_a_kernel():
    kernels = units(BLOCK, "none")
    assert [k.ops for k in kernels] == [(r.op,) for r in BLOCK]
    assert kernels[1].read == fp32(1_040)


def test_epilogue_fusion_folds_the_norm_and_fuses_the_chain():
    first, second = units(BLOCK, "epilogue")
    # conv -> bn -> add -> relu is one kernel: relu's result has two consumers, so the chain
    # ends there; conv2's result feeds add2 (an epilogue), which has no consumer
    assert first.ops == ("aten.convolution", "aten.batch_norm", "aten.add", "aten.relu")
    assert first.modules == ("conv1", "bn1", "block", "relu")
    # FLOPs stay: 36,000 + 4,000 + 1,000 + 1,000
    assert first.flops == 42_000
    # reads: conv's x and weight (10,000 elements); bn's statistics are folded (0); the add's
    # residual (1,000); relu reads nothing from outside. Writes: relu's result only.
    assert first.read == fp32(11_000)
    assert first.written == fp32(1_000)
    assert first.weights == fp32(9_000)
    assert second.ops == ("aten.convolution", "aten.add")
    # conv2: x + weight 10,000; add2: the other operand (relu's result) 1,000
    assert second.read == fp32(11_000) and second.flops == 37_000


def test_fusion_changes_traffic_and_launches_not_flops():
    dev = Device("d", 1e9, 1e9, overhead=1e-6, fusion="epilogue")
    eager = Device("d", 1e9, 1e9, overhead=1e-6)
    fused, plain = predict(Prof(BLOCK), dev), predict(Prof(BLOCK), eager)
    # 36,000 + 4,000 + 1,000 + 1,000 + 36,000 + 1,000
    assert sum(t.flops for t in fused.ops) == sum(t.flops for t in plain.ops) == 79_000
    # eager: 6 launches; fused: 2
    assert sum(t.overhead_seconds for t in plain.ops) == pytest.approx(6e-6)
    assert sum(t.overhead_seconds for t in fused.ops) == pytest.approx(2e-6)
    # fused kernel 1 moves 11,000 + 1,000 elements = 48,000 bytes: 48 us at 1 GB/s, over
    # its 42,000 FLOPs at 1 GFLOP/s (42 us); + 1 us launch
    assert fused.ops[0].seconds == pytest.approx(49e-6)
    # the layer rows: conv1 holds the kernel; bn1 and relu were fused into it
    rows = {r.name: r for r in fused.layers}
    assert rows["conv1"].fused == (("aten.convolution", "aten.batch_norm", "aten.add",
                                    "aten.relu"),)
    assert rows["bn1"].seconds == 0 and rows["bn1"].fused_into == "conv1"
    assert [g.ops[0] for g in fused.groups] == ["aten.convolution", "aten.convolution"]


def test_layout_copies_are_free_in_a_compiled_graph():
    copy = OpRecord("aten.clone", "flat", "data", 0, 0, fp32(1_000), fp32(1_000), call=0,
                    kind="layout")
    compiled = Device("d", 1e9, 1e9, overhead=1e-6, fusion="epilogue")
    eager = Device("d", 1e9, 1e9, overhead=1e-6)
    assert predict(Prof([copy]), compiled).seconds == 0
    # eager: 8,000 bytes at 1 GB/s + 1 us
    assert predict(Prof([copy]), eager).seconds == pytest.approx(9e-6)


def test_activations_that_fit_on_chip_use_the_onchip_bandwidth():
    relu = OpRecord("aten.relu", "r", "elementwise", 0, 1_000, fp32(1_000), fp32(1_000))
    big = OpRecord("aten.relu", "r", "elementwise", 0, 100_000, fp32(100_000),
                   fp32(100_000))
    dev = Device("d", 1e15, 1e9, onchip_bytes=65_536, onchip_bandwidth=1e10)
    # 8,000 bytes fit in 64 KiB: 8,000 / 1e10 = 0.8 us
    assert predict(Prof([relu]), dev).seconds == pytest.approx(0.8e-6)
    # 800,000 bytes do not: the cache keeps 65,536 / 800,000 of them, at 1e10 B/s: 6.5536 us;
    # the other 734,464 bytes come at 1e9 B/s: 734.464 us; 741.0176 us in all
    assert predict(Prof([big]), dev).seconds == pytest.approx(741.0176e-6)


def test_efficiency_slows_what_the_cache_holds_not_what_comes_from_memory():
    big = OpRecord("aten.relu", "r", "elementwise", 0, 100_000, fp32(100_000),
                   fp32(100_000))
    dev = Device("d", 1e15, 1e9, onchip_bytes=65_536, onchip_bandwidth=1e10,
                 efficiency={"elementwise": 0.5})
    # as above, 6.5536 us from the cache, / 0.5 = 13.1072 us; 734.464 us from memory, which
    # the kernel's code does not slow: 747.5712 us
    [t] = predict(Prof([big]), dev).ops
    assert t.seconds == pytest.approx(747.5712e-6)
    assert (t.memory_seconds, t.bare_memory, t.dram_seconds) == pytest.approx(
        (747.5712e-6, 741.0176e-6, 734.464e-6))
    # and the fit's term model prices it the same way
    [term] = terms(predict(Prof([big]), dev), per_kernel=True)
    assert term.dram_seconds == pytest.approx(734.464e-6)
    # a device without a cache moves every byte at its bandwidth, and efficiency slows them
    # all: 800,000 bytes at 1e9 = 800 us, / 0.5 = 1.6 ms
    flat = Device("d", 1e15, 1e9, efficiency={"elementwise": 0.5})
    [t] = predict(Prof([big]), flat).ops
    assert (t.seconds, t.dram_seconds) == pytest.approx((1.6e-3, 0.0))


def test_weights_beyond_the_cache_stream_over_the_link():
    # two layers of 800 int8 weight bytes each and 100 activation bytes in and out
    def layer(call: int, name: str) -> OpRecord:
        return OpRecord("aten.convolution", name, "conv", 0, 0, Access(900, 900, 0),
                        Access(100, 100, 0), weights=Access(800, 800, 0), call=call,
                        kind="conv2d")

    dev = Device("d", {"int8": 1e15}, 1e9, weight_cache_bytes=1_000, onchip_bandwidth=1e10,
                 link_bandwidth=1e8, default_dtype="int8")
    lat = predict(Prof([layer(0, "a"), layer(1, "b")], dtype="int8"), dev)
    a, b = lat.ops
    # a: its 800 weight bytes are cached (read at 10 GB/s: 0.08 us); activations 100 + 100
    # bytes at 1 GB/s (they do not fit: no onchip_bytes): 0.2 us
    assert a.seconds == pytest.approx(0.28e-6) and a.link_seconds == 0
    # b: 200 of its bytes are still cached (0.02 us), 600 stream at 0.1 GB/s (6 us) after
    # the compute; activations 0.2 us
    assert b.link_seconds == pytest.approx(6e-6)
    assert b.seconds == pytest.approx(0.22e-6 + 6e-6)


def test_channels_are_padded_to_the_tile():
    # 3 reduced channels on an 8-wide tile, 10 outputs on 8: 3/8 x 10/16 = 0.234375
    dev = Device("d", 1e9, 1e15, tile={"reduce": 8, "out": 8})
    assert dev.utilisation((3, 10)) == 0.234375
    assert dev.utilisation((64, 64)) == 1.0
    assert dev.utilisation(None) == 1.0
    conv = OpRecord("aten.convolution", "c", "conv", 500, 1_000, fp32(1), fp32(1),
                    mac_dims=(3, 10))
    # 1,000 FLOPs at 1e9 x 0.234375 = 4.2667 us
    assert predict(Prof([conv]), dev).seconds == pytest.approx(1_000 / (1e9 * 0.234375))


def test_a_runtime_on_one_core_of_three_gets_a_third_of_the_peak():
    dev = Device("rk", {"int8": 6e12}, 1e15, default_dtype="int8", cores=3, cores_used=1)
    assert dev.usable_peak("int8") == 2e12
    conv = OpRecord("aten.convolution", "c", "conv", 1_000_000, 2_000_000, Access(1, 1, 0),
                    Access(1, 1, 0))
    assert predict(Prof([conv], "int8"), dev).seconds == pytest.approx(1e-6)


def test_a_dataflow_pipeline_reports_latency_not_frame_time():
    relu = OpRecord("aten.relu", "r", "elementwise", 0, 0, fp32(250), fp32(250))
    dev = Device("h", 1e12, 1e9, pipeline_latency_factor=4.0)
    lat = predict(Prof([relu]), dev)
    # 2,000 bytes at 1 GB/s = 2 us per frame; one inference waits 4 x 2 us
    assert lat.frame_seconds == pytest.approx(2e-6)
    assert lat.seconds == pytest.approx(8e-6)
    assert lat.layers[0].share == pytest.approx(1.0)


def test_efficiency_and_overhead_by_operator_then_kind_then_class():
    dev = Device("d", 1e9, 1e9, overhead=1.0,
                 efficiency={"aten.gelu": 0.1, "transcendental": 0.2, "elementwise": 0.5},
                 overheads={"transcendental": 2.0})
    assert dev.efficiency_of("elementwise", "aten.gelu", "transcendental") == 0.1
    assert dev.efficiency_of("elementwise", "aten.exp", "transcendental") == 0.2
    assert dev.efficiency_of("elementwise", "aten.add", "arithmetic") == 0.5
    assert dev.efficiency_of("conv", "aten.convolution", "conv3d") == 1.0
    assert dev.overhead_for("aten.exp", "elementwise", "transcendental") == 2.0
    assert dev.overhead_for("aten.add", "elementwise", "arithmetic") == 1.0


def test_a_conv_pytorch_runs_through_onednn_is_priced_as_that_operator_first():
    # two convolutions of 36,000 FLOPs that read 10,000 floats (their 9,000 weights included)
    # and write 1,000: 44,000 bytes; on 1e9 FLOP/s and 1e9 B/s, memory-bound: 44 us /
    # efficiency (compute: 36 us); one runs as mkldnn_convolution
    onednn = replace(CONV, runs_as="aten.mkldnn_convolution")
    dev = Device("d", 1e9, 1e9, overhead=1e-6,
                 overheads={"aten.mkldnn_convolution": 60e-6, "conv": 10e-6},
                 efficiency={"aten.mkldnn_convolution": 0.5, "conv2d": 0.8})
    assert dev.overhead_for("aten.convolution", "conv", "conv2d",
                            "aten.mkldnn_convolution") == 60e-6
    assert dev.efficiency_of("conv", "aten.convolution", "conv2d",
                             "aten.mkldnn_convolution") == 0.5
    plain, dnn = predict(Prof([CONV, replace(onednn, call=1, module="conv2")]), dev).ops
    # PyTorch's own path: 44 us / 0.8 + 10 us = 65 us; oneDNN: 44 us / 0.5 + 60 us = 148 us
    assert plain.seconds == pytest.approx(65e-6)
    assert dnn.seconds == pytest.approx(148e-6)
    assert (plain.overhead_key, dnn.overhead_key) == ("conv", "aten.mkldnn_convolution")
    assert (plain.efficiency_key, dnn.efficiency_key) == ("conv2d", "aten.mkldnn_convolution")
    # the fit's terms keep it, so a fit prices them the same way
    assert [t.runs_as for t in terms(predict(Prof([CONV, onednn]), dev))] == [
        "", "aten.mkldnn_convolution"]
    # a device that does not name it: the operator, kind and class as before, 44 + 10 us
    other = Device("e", 1e9, 1e9, overheads={"conv": 10e-6})
    assert predict(Prof([onednn]), other).seconds == pytest.approx(54e-6)


@pytest.mark.parametrize("figures,message", [
    ({"fusion": "all"}, "fusion must be one of 'none', 'epilogue', 'onnxruntime', got 'all'"),
    ({"compute_efficiency": {"conv": 1.5}}, "compute_efficiency.conv = 1.5 is above 1"),
    ({"fresh_output_bandwidth": 0.0}, "fresh_output_bandwidth must be positive"),
    ({"tile": {"rows": 8}}, "tile.rows: unknown dimension"),
    ({"tile": {"out": 0}}, "tile.out must be a whole number >= 1, got 0"),
    ({"cores": 3, "cores_used": 4}, "cores_used = 4 is more than cores = 3"),
    ({"pipeline_latency_factor": 0.5}, "pipeline_latency_factor = 0.5 is below 1"),
    ({"link_bandwidth": -1.0}, "link_bandwidth must be positive, got -1.0"),
    ({"weight_cache_bytes": 1.5}, "weight_cache_bytes must be a whole number of bytes"),
    ({"efficiency": {"conv4d": 0.5}}, "efficiency.conv4d: unknown operator class"),
])
def test_new_figures_are_checked(figures, message):
    with pytest.raises(DeviceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Device("d", 1e9, 1e9, **figures)


# --- fitting ------------------------------------------------------------------------------
def test_fit_recovers_the_figures_that_made_the_measurements():
    from pytest_flopbudget.devices.fit import Row, Term, fit

    # two models on a device whose convolutions reach half the roofline and which pays
    # 10 us per launch: A = 1 ms / 0.5 + 10 x 10 us = 2.1 ms; B = 2 ms / 0.5 + 40 x 10 us
    # = 4.4 ms; C adds an elementwise term the fit leaves alone (efficiency 1, 1 launch):
    # 1 ms / 0.5 + 0.5 ms + 20 x 10 us = 2.7 ms
    conv = ("aten.convolution", "conv2d", "conv")
    rows = [
        Row("A", (Term(*conv, 1e-3, 10),), 2.1e-3),
        Row("B", (Term(*conv, 2e-3, 40),), 4.4e-3),
        Row("C", (Term(*conv, 1e-3, 19), Term("aten.relu", "arithmetic", "elementwise",
                                              0.5e-3, 1)), 2.7e-3),
    ]
    device = Device("board", 1e12, 1e10)
    result = fit(device, rows, ["efficiency.conv", "overhead"], cite="our logs")
    assert result.figures["efficiency.conv"] == pytest.approx(0.5, rel=1e-4)
    assert result.figures["overhead"] == pytest.approx(10e-6, rel=1e-4)
    assert result.device.efficiency["conv"] == 0.5
    assert result.device.overhead == pytest.approx(1e-5)
    assert result.summary() == pytest.approx((0.0, 0.0), abs=1e-4)
    # before: efficiency 1 and no overhead: A predicted 1 ms against 2.1 ms
    assert result.rows[0][1] == pytest.approx(1e-3)
    assert result.device.sources["efficiency.conv"].startswith(
        "fitted to rows A, B, C of our logs")


def test_fit_reports_before_with_the_figures_the_device_had():
    from pytest_flopbudget.devices.fit import Row, Term, fit

    # the board's convolutions were at efficiency 0.25 and it paid 5 us a launch: before
    # the fit, A = 1 ms / 0.25 + 10 x 5 us = 4.05 ms (not 1 ms: the freed figures keep
    # their values in "before"), B = 2 ms / 0.25 + 40 x 5 us = 8.2 ms
    conv = ("aten.convolution", "conv2d", "conv")
    rows = [Row("A", (Term(*conv, 1e-3, 10),), 2.1e-3),
            Row("B", (Term(*conv, 2e-3, 40),), 4.4e-3)]
    device = Device("board", 1e12, 1e10, efficiency={"conv": 0.25}, overhead=5e-6)
    result = fit(device, rows, ["efficiency.conv", "overhead"])
    assert [r[1] for r in result.rows] == [pytest.approx(4.05e-3), pytest.approx(8.2e-3)]


def test_fit_leaves_memory_beyond_the_cache_to_its_bandwidth():
    from pytest_flopbudget.devices.fit import Row, Term, fit

    # an elementwise kernel of 1 ms on the bare roofline: 0.2 ms from the cache, 0.8 ms from
    # memory; at efficiency 0.25 it takes 0.2 / 0.25 + 0.8 = 1.6 ms (not 4 ms). A second
    # one all in the cache: 0.1 ms / 0.25 = 0.4 ms
    big = Term("aten.add", "", "arithmetic", 1e-3, 0, memory_seconds=1e-3,
               dram_seconds=0.8e-3)
    small = Term("aten.add", "", "arithmetic", 0.1e-3, 0, memory_seconds=0.1e-3)
    rows = [Row("big", (big,), 1.6e-3), Row("small", (small,), 0.4e-3)]
    result = fit(Device("d", 1e12, 1e10, onchip_bandwidth=1e11), rows,
                 ["efficiency.arithmetic"])
    assert result.figures["efficiency.arithmetic"] == pytest.approx(0.25, rel=1e-4)
    assert result.summary() == pytest.approx((0.0, 0.0), abs=1e-4)


def test_fitted_figures_stay_physical():
    from pytest_flopbudget.devices.fit import Row, Term, fit

    # measured faster than the bare roofline: the efficiency stops at 1, never above
    rows = [Row("fast", (Term("aten.mm", "", "matmul", 2e-3, 0),), 1e-3)]
    result = fit(Device("d", 1e12, 1e10), rows, ["efficiency.matmul"])
    assert result.figures["efficiency.matmul"] == pytest.approx(1.0)
    assert result.errors() == [pytest.approx(1.0)]  # 2 ms predicted for 1 ms measured


def test_fit_refuses_what_it_cannot_fit():
    from pytest_flopbudget.devices.fit import Row, Term, fit

    row = Row("r", (Term("aten.mm", "", "matmul", 1e-3, 0),), 1e-3)
    with pytest.raises(DeviceError, match="cannot fit 'peak_flops'"):
        fit(Device("d", 1e12, 1e10), [row], ["peak_flops"])
    with pytest.raises(DeviceError, match="has no link_bandwidth"):
        fit(Device("d", 1e12, 1e10), [row], ["link_bandwidth"])
    with pytest.raises(DeviceError, match="measured latency must be a positive number"):
        fit(Device("d", 1e12, 1e10), [Row("r", row.terms, 0.0)], ["overhead"])


# --- what the tracer records for the device model --------------------------------------
def test_the_tracer_records_data_flow_weights_and_kinds():
    import torch
    from torch import nn

    from pytest_flopbudget import profile

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 4 * 4, 10)).eval()
    conv, bn, relu, linear = profile(model, torch.randn(1, 3, 4, 4)).records
    # calls in order; each reads the previous one's result (flatten is a view: looked through)
    assert [(r.call, r.inputs) for r in (conv, bn, relu, linear)] == \
        [(0, ()), (1, (0,)), (2, (1,)), (3, (2,))]
    # weights: conv 8x3x3x3 + 8 = 224 floats = 896 bytes; bn's weight, bias, running mean
    # and var 4 x 8 floats = 128 bytes; relu none; linear 10 x 128 + 10 = 1,290 floats
    assert [r.weights.bytes() for r in (conv, bn, relu, linear)] == [896, 128, 0, 5_160]
    assert [r.kind for r in (conv, bn, relu, linear)] == \
        ["conv3x3", "channel_affine", "arithmetic", "matrix_vector"]
    # MAC dims: conv reduces 3 input channels into 8; linear 128 inputs into 10 outputs
    assert (conv.mac_dims, linear.mac_dims) == ((3, 8), (128, 10))


@pytest.mark.parametrize("layer,kind", [
    (lambda: __import__("torch").nn.Conv1d(4, 4, 3), "conv1d"),
    (lambda: __import__("torch").nn.Conv3d(4, 4, 3), "conv3d"),
    (lambda: __import__("torch").nn.Conv2d(4, 8, 1), "pointwise_conv"),
    (lambda: __import__("torch").nn.Conv2d(4, 4, 3), "conv3x3"),
    (lambda: __import__("torch").nn.Conv2d(4, 4, 3, stride=2), "conv2d"),
    (lambda: __import__("torch").nn.Conv2d(4, 4, 5), "conv2d"),
    (lambda: __import__("torch").nn.Conv2d(4, 4, 3, groups=4), "depthwise_conv2d"),
    (lambda: __import__("torch").nn.ConvTranspose2d(4, 4, 2), "transposed_conv"),
    (lambda: __import__("torch").nn.GELU(), "transcendental"),
    (lambda: __import__("torch").nn.Hardswish(), "arithmetic"),
])
def test_operator_kinds(layer, kind):
    import torch

    from pytest_flopbudget import profile

    shape = {"conv1d": (1, 4, 8), "conv3d": (1, 4, 6, 6, 6)}.get(kind, (1, 4, 8, 8))
    [record] = profile(layer().eval(), torch.randn(*shape)).records
    assert record.kind == kind


def test_a_compiled_runtime_runs_conv_bn_relu_as_one_kernel():
    import torch
    from torch import nn

    from pytest_flopbudget import profile

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()).eval()
    p = profile(model, torch.randn(1, 3, 4, 4))
    lat = p.latency(Device("d", 1e9, 1e9, fusion="epilogue"))
    [kernel] = lat.ops
    assert kernel.ops == ("aten.conv2d", "aten.batch_norm", "aten.relu")
    # reads x (48 floats) and conv's weights (224); bn's 32 statistics are folded; writes
    # relu's 128 floats: (48 + 224 + 128) x 4 = 1,600 bytes
    assert kernel.bytes == 1_600
    # FLOPs unchanged: conv 2 x 3,456 MACs + 128 bias adds; bn eval 4 x 128; relu 128
    assert kernel.flops == p.flops == 6_912 + 128 + 512 + 128
    assert [r.fused_into for r in lat.layers] == ["", "", "0", "0"]


# --- ONNX Runtime's fusions (fusion = "onnxruntime") ----------------------------------------
def test_onnxruntime_fuses_conv_bn_add_relu_as_its_nchwc_convolution():
    first, second = units(BLOCK, "onnxruntime")
    # conv, folded bn, the residual add (Sum) and the relu (activation) are one node, the
    # same traffic as the epilogue fusion: x and weight 10,000 + residual 1,000 read
    assert first.ops == ("aten.convolution", "aten.batch_norm", "aten.add", "aten.relu")
    assert first.read == fp32(11_000) and first.written == fp32(1_000)
    # conv2 and add2: the add is conv2's Sum
    assert second.ops == ("aten.convolution", "aten.add")


def _chain(*specs: tuple[str, str, str]) -> list[OpRecord]:
    """Records each reading the previous one's 1,000-float result: ``(op, class, kind)``."""
    return [OpRecord(op, f"m{i}", cls, 0, 1_000, fp32(1_000), fp32(1_000), call=i,
                     inputs=(i - 1,) if i else (), kind=kind)
            for i, (op, cls, kind) in enumerate(specs)]


def test_onnxruntime_fuses_only_its_listed_epilogues():
    conv = ("aten.conv2d", "conv", "conv3x3")
    gelu = ("aten.gelu", "elementwise", "transcendental")
    relu = ("aten.relu", "elementwise", "arithmetic")
    add = ("aten.add", "elementwise", "arithmetic")
    mul = ("aten.mul", "elementwise", "arithmetic")
    linear = ("aten.linear", "matmul", "")
    ln = ("aten.layer_norm", "norm", "")
    ops = lambda rs, fusion="onnxruntime": [u.ops for u in units(rs, fusion)]  # noqa: E731
    # a GELU after a convolution is a node of its own (not an ORT conv activation)
    assert ops(_chain(conv, gelu)) == [("aten.conv2d",), ("aten.gelu",)]
    # an activation ends the epilogue: a later add is a node of its own
    assert ops(_chain(conv, relu, add)) == [("aten.conv2d", "aten.relu"), ("aten.add",)]
    # at most one add
    assert ops(_chain(conv, add, add, relu)) == [("aten.conv2d", "aten.add"),
                                                 ("aten.add",), ("aten.relu",)]
    # a matrix product takes a bias add, a scale and a relu (Gemm, FusedMatMul, FusedGemm)
    assert ops(_chain(linear, add, mul, relu)) == [("aten.linear", "aten.add", "aten.mul",
                                                    "aten.relu")]
    assert ops(_chain(linear, gelu)) == [("aten.linear",), ("aten.gelu",)]
    # no general elementwise fusion: layer norm, GELU, mul, add run as four nodes, where
    # the compiled-epilogue model fuses the pointwise three after the norm
    chain = _chain(ln, gelu, mul, add)
    assert ops(chain) == [("aten.layer_norm",), ("aten.gelu",), ("aten.mul",), ("aten.add",)]
    assert ops(chain, "epilogue") == [("aten.layer_norm",),
                                      ("aten.gelu", "aten.mul", "aten.add")]


def test_onnxruntime_layout_copies_are_real_transposes():
    copy = OpRecord("aten.clone", "flat", "data", 0, 0, fp32(1_000), fp32(1_000), call=0,
                    kind="layout")
    ort = Device("d", 1e9, 1e9, overhead=1e-6, fusion="onnxruntime")
    # 8,000 bytes at 1 GB/s + 1 us, as eager (the epilogue model takes them as free)
    assert predict(Prof([copy]), ort).seconds == pytest.approx(9e-6)


def test_compute_ceilings_act_on_the_compute_term_only():
    # a 36,000-FLOP conv reading 10,000 and writing 1,000 floats (44,000 bytes): at 1e9 FLOP/s
    # and 1e9 B/s memory-bound (44 us > 36 us); a compute ceiling of 0.5 makes it 72 us of
    # compute, now compute-bound; efficiency 0.8 then divides the larger term: 90 us
    dev = Device("d", 1e9, 1e9, compute_efficiency={"conv2d": 0.5})
    [t] = predict(Prof([CONV]), dev).ops
    assert (t.bare_compute, t.bare_memory) == (pytest.approx(36e-6), pytest.approx(44e-6))
    assert t.seconds == pytest.approx(72e-6) and t.bound == "compute"
    both = Device("d", 1e9, 1e9, compute_efficiency={"conv": 0.5}, efficiency={"conv": 0.8})
    assert predict(Prof([CONV]), both).seconds == pytest.approx(90e-6)
    # a ceiling of 0.9 leaves it memory-bound: 44 us
    assert predict(Prof([CONV]), Device("d", 1e9, 1e9, compute_efficiency={"conv": 0.9})
                   ).seconds == pytest.approx(44e-6)


def test_fresh_outputs_pay_their_first_touch():
    big = OpRecord("aten.relu", "r", "elementwise", 0, 10_000_000, fp32(10_000_000),
                   fp32(10_000_000))
    small = OpRecord("aten.relu", "r", "elementwise", 0, 1_000, fp32(1_000), fp32(1_000),
                     call=1)
    dev = Device("d", 1e15, 1e10, fresh_output_bytes=32 << 20, fresh_output_bandwidth=4e9)
    # 80,000,000 bytes at 1e10: 8 ms; its 40,000,000-byte output (>= 32 MiB) is first
    # touched at 4e9 B/s: 10 ms more
    [t] = predict(Prof([big]), dev).ops
    assert t.fresh_seconds == pytest.approx(10e-3) and t.seconds == pytest.approx(18e-3)
    # 4,000 bytes written: no fresh output; 8,000 bytes at 1e10 = 0.8 us
    assert predict(Prof([small]), dev).seconds == pytest.approx(0.8e-6)


def test_recurrent_weights_that_fit_the_cache_are_read_from_it_every_step():
    lstm = OpRecord("aten.lstm", "rnn", "recurrent", 0, 0, fp32(2_000), fp32(1_000),
                    steps=11, step_read=fp32(1_000), weights=fp32(1_000))
    cache = Device("d", 1e15, 1e9, onchip_bytes=65_536, onchip_bandwidth=1e10)
    # 3,000 floats (12,000 bytes) of which 8,000 activation bytes fit: 0.8 us; 4,000 weight
    # bytes at 1e9: 4 us; 10 later steps re-read 4,000 bytes from the cache: 4 us
    assert predict(Prof([lstm]), cache).seconds == pytest.approx(8.8e-6)
    # a scratchpad (no onchip_bandwidth) keeps them for free: 12,000 bytes at 1e9 = 12 us
    pad = Device("d", 1e15, 1e9, onchip_bytes=65_536)
    assert predict(Prof([lstm]), pad).seconds == pytest.approx(12e-6)


def test_a_batched_input_projection_runs_before_the_steps():
    # a GRU stage of 20 steps x 1 row, I = 100, H = 50 (3H = 150): 20 * 150 * 100 = 300,000
    # input-projection MACs of its 20 * 150 * 150 = 450,000; 2 * 450,000 + 20,000
    # elementwise = 920,000 FLOPs
    gru = OpRecord("aten.gru", "rnn", "recurrent", 450_000, 920_000, fp32(2_000), fp32(1_000),
                   steps=20, weights=fp32(1_000), mac_dims=(100, 150), input_macs=300_000)
    ceilings = {"matmul": 0.5, "recurrent": 0.1}
    overheads = {"matmul": 3e-6, "recurrent": 1e-6}
    whole = Device("d", 1e9, 1e15, compute_efficiency=ceilings, overheads=overheads)
    # as one kernel: 920,000 FLOPs at 1e9 x 0.1 = 9.2 ms, and 20 step overheads of 1 us
    [t] = predict(Prof([gru]), whole).ops
    assert t.seconds == pytest.approx(9.2e-3 + 20e-6)
    split = replace(whole, batched_input_projection=True)
    projection, steps = predict(Prof([gru]), split).ops
    # the projection: 600,000 FLOPs of a product of 20 rows at 1e9 x 0.5 = 1.2 ms, one
    # matmul overhead of 3 us; it writes the 20 x 150 values it hands the steps (12,000 bytes
    # at the layer's fp32)
    assert (projection.op, projection.op_class, projection.module) == (
        "aten.gru.input_projection", "matmul", "rnn")
    assert projection.seconds == pytest.approx(1.2e-3 + 3e-6)
    assert (projection.bytes, projection.launches) == (12_000, 1)
    # the steps: the other 320,000 FLOPs at 1e9 x 0.1 = 3.2 ms and 20 overheads of 1 us; the
    # 12,000 counted bytes and the 12,000 handed over
    assert (steps.op, steps.flops, steps.bytes) == ("aten.gru", 320_000, 24_000)
    assert steps.seconds == pytest.approx(3.2e-3 + 20e-6)
    # a product of few rows: with half_rows = 5, 20 rows compute at 20 / 25 of the ceiling
    few = replace(split, half_rows=5.0)
    assert predict(Prof([gru]), few).ops[0].seconds == pytest.approx(1.5e-3 + 3e-6)
    # with no time for its arithmetic to hide them (peak 1e15) and a bandwidth of 1e9, the
    # bytes show: the projection writes 12,000 bytes (12 us), the steps move 24,000 (24 us)
    fast = replace(split, peak_flops=1e15, bandwidth=1e9)
    projection, steps = predict(Prof([gru]), fast).ops
    assert projection.seconds == pytest.approx(12e-6 + 3e-6)
    assert steps.seconds == pytest.approx(24e-6 + 20e-6)
    # a record without input_macs (a cell) stays one kernel
    cell = replace(gru, steps=1, input_macs=0)
    assert len(predict(Prof([cell]), split).ops) == 1
    with pytest.raises(DeviceError, match="batched_input_projection must be true or false"):
        Device("d", 1e9, 1e9, batched_input_projection="yes")
    # a device that names the projection's overhead prices a layer's cost once a call with
    # it (90 us instead of the matmul's 3 us); the steps keep theirs
    once = replace(split, overheads={**overheads, "aten.gru.input_projection": 90e-6})
    projection, steps = predict(Prof([gru]), once).ops
    assert projection.seconds == pytest.approx(1.2e-3 + 90e-6)
    assert projection.overhead_key == "aten.gru.input_projection"
    assert steps.seconds == pytest.approx(3.2e-3 + 20e-6)


def test_a_fresh_output_share_pays_part_of_the_first_touch():
    mid = OpRecord("aten.relu", "r", "elementwise", 0, 5_000_000, fp32(5_000_000),
                   fp32(5_000_000))
    dev = Device("d", 1e15, 1e10, fresh_output_bytes=32 << 20, fresh_output_bandwidth=4e9,
                 fresh_share_bytes=16 << 20, fresh_output_share=0.25)
    # 40,000,000 bytes at 1e10: 4 ms; its 20,000,000-byte output is at least 16 MiB
    # (16,777,216) and below 32 MiB: a quarter of it at 4e9 B/s, 1.25 ms
    [t] = predict(Prof([mid]), dev).ops
    assert t.fresh_seconds == pytest.approx(1.25e-3) and t.seconds == pytest.approx(5.25e-3)
    # the same operator run again and again on its own (a calibration row): its output
    # lands in the block its last call freed, no fresh pages: 4 ms
    [again] = predict(Prof([mid]), dev, repeated=True).ops
    assert again.fresh_seconds == 0.0 and again.seconds == pytest.approx(4e-3)
    # from fresh_output_bytes every call maps its output afresh, repeated or not: a
    # 40,000,000-byte output (at least 32 MiB) pays all of it at 4e9 B/s, 10 ms, on top of
    # 80,000,000 bytes at 1e10 (8 ms)
    big = OpRecord("aten.relu", "r", "elementwise", 0, 10_000_000, fp32(10_000_000),
                   fp32(10_000_000))
    [large] = predict(Prof([big]), dev, repeated=True).ops
    assert large.fresh_seconds == pytest.approx(10e-3) and large.seconds == pytest.approx(18e-3)
    with pytest.raises(DeviceError, match="fresh_output_share = 1.5 is above 1"):
        Device("d", 1e9, 1e9, fresh_output_share=1.5)
    # a share that could never apply is an error, not a silent no-op
    with pytest.raises(DeviceError, match="needs fresh_output_bandwidth"):
        Device("d", 1e9, 1e9, fresh_output_share=0.2)
    with pytest.raises(DeviceError, match="must be below fresh_output_bytes"):
        Device("d", 1e9, 1e9, fresh_output_bytes=8 << 20, fresh_output_bandwidth=4e9,
               fresh_share_bytes=16 << 20, fresh_output_share=0.2)


def test_a_lowered_conv_writes_its_column_matrix_at_the_lowering_bandwidth():
    lowered = OpRecord("aten.conv3d", "c", "conv", 18_000, 36_000, fp32(10_000), fp32(8_000),
                       kind="conv3d", lowered=1_000_000)
    dev = Device("d", 1e9, 1e9, lowering_bandwidth=2e9)
    # compute 36,000 FLOPs at 1e9: 36 us; memory 72,000 bytes at 1e9: 72 us; the column
    # matrix, 4,000,000 bytes at 2e9: 2 ms more
    [t] = predict(Prof([lowered]), dev).ops
    assert t.lowering_seconds == pytest.approx(2e-3)
    assert t.seconds == pytest.approx(2.072e-3)
    # a device without a lowering bandwidth: the roofline alone
    assert predict(Prof([lowered]), Device("d", 1e9, 1e9)).seconds == pytest.approx(72e-6)


def test_a_model_whose_weights_outgrow_the_cache_pays_per_weight_row():
    # two linears 256 -> 512 -> 256 on one row: weights 2 x 256 x 512 x 4 bytes = 1 MiB plus
    # biases (512 + 256) x 4 = 3,072 bytes: 1,051,648 bytes read per forward; outputs of 512
    # and 256 floats, 3,072 bytes written: a footprint of 1,054,720 bytes; 768 weight rows
    def rec(n_in: int, n_out: int) -> OpRecord:
        weights = fp32(n_in * n_out + n_out)
        return OpRecord("aten.linear", f"l{n_out}", "matmul", n_in * n_out,
                        2 * n_in * n_out + n_out, fp32(n_in + n_in * n_out + n_out),
                        fp32(n_out), weights=weights, kind="matrix_vector", rows=1,
                        weight_rows=n_out)

    prof = Prof([rec(256, 512), rec(512, 256)])

    def extra(half: int) -> float:
        cold = Device("d", 1e9, 1e9, cold_weight_row_seconds=1e-7, cold_weight_bytes=half)
        return predict(prof, cold).seconds - predict(prof, Device("d", 1e9, 1e9)).seconds

    # half from memory at 512 KiB: 1,054,720 / 524,288 - 0.5 = 1.512 -> all of them, 768 rows
    # x 0.1 us = 76.8 us more
    assert extra(512 << 10) == pytest.approx(76.8e-6)
    # half at 1 MiB: 1,054,720 / 1,048,576 - 0.5 = 0.505859 of them: 38.85 us
    assert extra(1 << 20) == pytest.approx(38.85e-6)
    # half at 4 MiB: a footprint under 2 MiB, the cache keeps them all: nothing more
    assert extra(4 << 20) == 0.0
    cold_device = Device("d", 1e9, 1e9, cold_weight_row_seconds=1e-7,
                         cold_weight_bytes=512 << 10)
    lat = predict(prof, cold_device)
    first = lat.ops[0]
    assert first.cold_weight_seconds == pytest.approx(51.2e-6)  # its 512 rows
    # a fit sees it as time no free figure changes
    assert terms(lat, per_kernel=True)[0].fixed_seconds == pytest.approx(51.2e-6)
    # an absurd figure is named, not reported as an infinite time
    absurd = Device("d", 1e9, 1e9, cold_weight_row_seconds=1e305, cold_weight_bytes=512 << 10)
    with pytest.raises(DeviceError, match=r"cold_weight_row_seconds = 1e\+305"):
        predict(prof, absurd)
    with pytest.raises(DeviceError, match="cold_weight_bytes goes with"):
        Device("d", 1e9, 1e9, cold_weight_row_seconds=1e-7)
    with pytest.raises(DeviceError, match="cold_weight_bytes goes with"):
        Device("d", 1e9, 1e9, cold_weight_bytes=1 << 20)
    with pytest.raises(DeviceError, match="cold_weight_row_seconds"):
        Device("d", 1e9, 1e9, cold_weight_row_seconds=-1e-7, cold_weight_bytes=1 << 20)


def test_weights_fetched_from_memory_leave_the_roofline_and_add_their_own_time():
    # the two linears above (256 -> 512 -> 256, one row) on 1 GFLOP/s and 1 GB/s, no cache:
    # the first computes 2 x 256 x 512 + 512 = 262,656 FLOPs (262.656 us) and moves 3,072
    # bytes of activations and 526,336 of weights (529.408 us): 529.408 us; the second
    # 262,400 FLOPs (262.4 us), 3,072 + 525,312 bytes (528.384 us): 528.384 us
    def rec(n_in: int, n_out: int, weight_rows: int) -> OpRecord:
        weights = fp32(n_in * n_out + n_out)
        return OpRecord("aten.linear", f"l{n_out}", "matmul", n_in * n_out,
                        2 * n_in * n_out + n_out, fp32(n_in + n_in * n_out + n_out),
                        fp32(n_out), weights=weights, kind="matrix_vector", rows=1,
                        weight_rows=weight_rows)

    prof = Prof([rec(256, 512, 512), rec(512, 256, 256)])
    assert predict(prof, Device("d", 1e9, 1e9)).seconds == pytest.approx(1057.792e-6)
    # all from memory (half at 512 KiB, a footprint of 1,054,720 bytes: share 1), fetched
    # at 0.5 GB/s: the weights leave the memory term (3.072 us left, under the compute) and
    # take 526,336 / 5e8 = 1052.672 us and 525,312 / 5e8 = 1050.624 us of their own:
    # 262.656 + 1052.672 + 262.4 + 1050.624 = 2628.352 us
    cold = Device("d", 1e9, 1e9, cold_weight_bandwidth=5e8, cold_weight_bytes=512 << 10)
    lat = predict(prof, cold)
    assert lat.seconds == pytest.approx(2628.352e-6)
    assert lat.ops[0].cold_weight_seconds == pytest.approx(1052.672e-6)
    assert lat.ops[0].memory_seconds == pytest.approx(3.072e-6)
    # half at 1 MiB: 0.505859375 of them from memory; the first linear fetches 266,252
    # bytes (532.504 us) and keeps 260,084 in its memory term: 3.072 + 260.084 = 263.156 us
    # over its 262.656 us of compute: 795.66 us
    half = predict(prof, Device("d", 1e9, 1e9, cold_weight_bandwidth=5e8,
                                cold_weight_bytes=1 << 20))
    assert half.ops[0].seconds == pytest.approx(795.66e-6)
    # told that they come from memory (a calibration row timed among other rows), a model
    # the cache would keep (half at 4 MiB) pays for all of them
    kept = Device("d", 1e9, 1e9, cold_weight_bandwidth=5e8, cold_weight_bytes=4 << 20)
    assert predict(prof, kept).seconds == pytest.approx(1057.792e-6)
    assert predict(prof, kept, cold_share=1.0).seconds == pytest.approx(2628.352e-6)
    # weights that are not a matrix product's (no weight rows: a convolution's) stay in
    # the roofline
    unrowed = Prof([rec(256, 512, 0), rec(512, 256, 0)])
    assert predict(unrowed, cold).seconds == pytest.approx(1057.792e-6)
    # the figure is checked, goes with cold_weight_bytes, and not with the cost per row
    # (both would price the same weights twice)
    with pytest.raises(DeviceError, match="cold_weight_bandwidth must be positive"):
        Device("d", 1e9, 1e9, cold_weight_bandwidth=-1.0, cold_weight_bytes=1 << 20)
    with pytest.raises(DeviceError, match="cold_weight_bandwidth must be a number"):
        Device("d", 1e9, 1e9, cold_weight_bandwidth="fast")  # type: ignore[arg-type]
    with pytest.raises(DeviceError, match="cold_weight_bytes goes with"):
        Device("d", 1e9, 1e9, cold_weight_bandwidth=5e8)
    with pytest.raises(DeviceError, match="give one of them"):
        Device("d", 1e9, 1e9, cold_weight_bandwidth=5e8, cold_weight_row_seconds=1e-7,
               cold_weight_bytes=1 << 20)
    # a share is a share
    with pytest.raises(ValueError, match="cold_share must be a share between 0 and 1, got 3"):
        predict(prof, cold, cold_share=3.0)
    with pytest.raises(ValueError, match="got -1"):
        predict(prof, cold, cold_share=-1.0)
    # an absurd figure is named, not reported as an infinite time
    with pytest.raises(DeviceError, match=r"cold_weight_bandwidth = 1e-300"):
        predict(prof, Device("d", 1e9, 1e9, cold_weight_bandwidth=1e-300,
                             cold_weight_bytes=512 << 10))


def test_a_weight_used_by_several_calls_takes_cache_room_once():
    # one nn.Linear(512, 512) called 4 times against 4 distinct ones, on one row: each call
    # reads 512 x 512 x 4 + 512 x 4 = 1,050,624 bytes of weights and writes 2,048 bytes;
    # 4 calls: 4,202,496 read, 8,192 written; 512 weight rows a call, 2,048 in all
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(512, 512)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for _ in range(4):
                x = self.fc(x)
            return x

    distinct = nn.Sequential(*(nn.Linear(512, 512) for _ in range(4)))
    device = Device("d", 1e9, 1e9, cold_weight_row_seconds=1e-7, cold_weight_bytes=2 << 20)

    def cold(model: nn.Module) -> float:
        return sum(t.cold_weight_seconds for t in profile(model, torch.randn(1, 512))
                   .latency(device).ops)

    # distinct: 4,202,496 + 8,192 = 4,210,688 bytes through the cache; / 2 MiB - 0.5 = 1.508:
    # all from memory, 2,048 rows x 0.1 us = 204.8 us
    assert cold(distinct) == pytest.approx(204.8e-6)
    # shared: its weights once, 1,050,624 + 8,192 = 1,058,816; / 2,097,152 - 0.5 =
    # 0.0048828125 of them: 204.8 us x 0.0048828125 = 1 us
    assert cold(Shared()) == pytest.approx(1e-6)


def test_few_rows_spread_a_products_fixed_cost_over_less_work():
    few = OpRecord("aten.linear", "l", "matmul", 500_000, 1_000_000, fp32(10), fp32(10),
                   rows=8)
    gemv = OpRecord("aten.linear", "l", "matmul", 500_000, 1_000_000, fp32(10), fp32(10),
                    kind="matrix_vector", rows=1)
    dev = Device("d", 1e9, 1e12, half_rows=24.0)
    # 1,000,000 FLOPs at 1e9 x 8 / (8 + 24) = 2.5e8 FLOP/s: 4 ms
    assert predict(Prof([few]), dev).seconds == pytest.approx(4e-3)
    # a matrix-vector product packs nothing: 1 ms
    assert predict(Prof([gemv]), dev).seconds == pytest.approx(1e-3)
    with pytest.raises(DeviceError, match="half_rows"):
        Device("d", 1e9, 1e9, half_rows=-1.0)
