"""Roofline latency on a toy device, derived by hand; device tables and their errors.

Toy device: 1e10 FLOP/s, 1e9 bytes/s: ridge at 10 FLOP/byte.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pytest_flopbudget import Device, get_device, profile
from pytest_flopbudget.devices.catalog import Catalog
from pytest_flopbudget.devices.device import DeviceError

TOY = Device(name="toy", peak_flops=1e10, bandwidth=1e9)


def test_compute_bound_layer():
    # Linear(1000, 1000) on 64 rows: 64,000,000 MACs -> 128,000,000 + 64,000 bias = 128,064,000
    # FLOPs; bytes (fp32): x 64,000 + W 1,000,000 + b 1,000 floats read, 64,000 written
    # = 1,129,000 * 4 = 4,516,000 bytes. Intensity 28.4 > 10: compute-bound.
    # t = max(128,064,000 / 1e10, 4,516,000 / 1e9) = 12.8064 ms
    lat = profile(nn.Linear(1000, 1000), torch.randn(64, 1000)).latency(TOY)
    assert lat.seconds == pytest.approx(128_064_000 / 1e10, rel=1e-12)
    [row] = lat.layers
    assert row.bound == "compute"
    assert row.intensity == pytest.approx(128_064_000 / 4_516_000)
    assert row.share == 1.0


def test_memory_bound_layer():
    # the same layer on one row: 2,001,000 FLOPs, (1,000 + 1,000,000 + 1,000 + 1,000) * 4 =
    # 4,012,000 bytes: intensity 0.5 < 10, memory-bound; t = 4,012,000 / 1e9 = 4.012 ms
    lat = profile(nn.Linear(1000, 1000), torch.randn(1, 1000)).latency(TOY)
    assert lat.seconds == pytest.approx(4.012e-3, rel=1e-12)
    assert lat.layers[0].bound == "memory"


def test_layers_alternate_and_times_add_up():
    # conv 3 -> 64 (3x3, 32x32, no bias): 64*1024*27 = 1,769,472 MACs -> 3,538,944 FLOPs;
    #   reads 3,072 + 1,728 floats, writes 65,536: 281,344 bytes -> compute 0.3539 ms vs
    #   memory 0.2813 ms: compute-bound, 0.3538944 ms
    # relu: 65,536 FLOPs, reads and writes 65,536 floats = 524,288 bytes: memory, 0.524288 ms
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.ReLU())
    lat = profile(model, torch.randn(1, 3, 32, 32)).latency(TOY)
    rows = {r.name: r for r in lat.layers}
    assert rows["0"].bound == "compute"
    assert rows["0"].seconds == pytest.approx(3_538_944 / 1e10)
    assert rows["1"].bound == "memory"
    assert rows["1"].seconds == pytest.approx(524_288 / 1e9)
    # the total is the sum of per-operator maxima, not one max over the model
    total = 3_538_944 / 1e10 + 524_288 / 1e9
    assert lat.seconds == pytest.approx(total)
    assert rows["1"].share == pytest.approx((524_288 / 1e9) / total)
    whole = max((3_538_944 + 65_536) / 1e10, (281_344 + 524_288) / 1e9)
    assert lat.seconds > whole


def test_dtype_scales_bytes_and_picks_the_peak():
    dev = Device("two", peak_flops={"fp32": 1e10, "int8": 4e10}, bandwidth=1e9)
    # one row: fp32 4,012,000 bytes -> 4.012 ms; int8 1,003,000 bytes -> 1.003 ms
    p = profile(nn.Linear(1000, 1000), torch.randn(1, 1000))
    assert p.latency(dev).seconds == pytest.approx(4.012e-3)
    assert p.at_dtype("int8").latency(dev).seconds == pytest.approx(1.003e-3)
    # 64 rows at int8 are compute-bound on the int8 peak: 128,064,000 / 4e10
    p64 = profile(nn.Linear(1000, 1000), torch.randn(64, 1000), dtype="int8")
    assert p64.latency(dev).seconds == pytest.approx(128_064_000 / 4e10)
    with pytest.raises(DeviceError, match="has no peak for fp16.*lists fp32, int8"):
        p.at_dtype("fp16").latency(dev)


def test_efficiency_and_overheads():
    # relu of 1,000 floats: 8,000 bytes -> 8 us; efficiency 0.5 -> 16 us; + 3 us overhead
    dev = Device("slow", peak_flops=1e10, bandwidth=1e9, efficiency={"elementwise": 0.5},
                 overhead=3e-6)
    lat = profile(nn.ReLU(), torch.randn(1000)).latency(dev)
    assert lat.seconds == pytest.approx(16e-6 + 3e-6)
    # a per-class overhead wins over the default, a per-operator one over the class
    by_class = Device("c", 1e10, 1e9, overhead=3e-6, overheads={"elementwise": 1e-6})
    assert profile(nn.ReLU(), torch.randn(1000)).latency(by_class).seconds == \
        pytest.approx(8e-6 + 1e-6)
    by_op = Device("o", 1e10, 1e9, overhead=3e-6,
                   overheads={"elementwise": 1e-6, "aten.relu": 5e-6})
    assert profile(nn.ReLU(), torch.randn(1000)).latency(by_op).seconds == \
        pytest.approx(8e-6 + 5e-6)


def test_recurrent_steps_reread_weights_unless_on_chip():
    # LSTM(8, 16), T=5, B=2: 15,360 MACs -> 35,520 FLOPs. Traffic read once (fp32):
    # x 80 + h0 32 + c0 32 + weights 64*8 + 64*16 + 64 + 64 = 1,808 floats; written:
    # out 160 + hn 32 + cn 32 = 224 -> 2,032 floats = 8,128 bytes. Step re-reads: W_hh and
    # b_hh = 1,088 floats = 4,352 bytes, 4 more times = 17,408 bytes. nn.LSTM also creates
    # its zero initial states h0, c0: 2 x 32 floats written (256 bytes), two more operators.
    p = profile(nn.LSTM(8, 16), torch.randn(5, 2, 8))
    slow = Device("slow", peak_flops=1e12, bandwidth=1e6, overhead=1e-6)
    zeros = 256 / 1e6 + 2e-6
    assert p.latency(slow).seconds == pytest.approx((8_128 + 17_408) / 1e6 + 5e-6 + zeros)
    # recurrent weights that fit on chip are read once; the overhead is paid per step
    fits = Device("fits", peak_flops=1e12, bandwidth=1e6, overhead=1e-6, onchip_bytes=8192)
    assert p.latency(fits).seconds == pytest.approx(8_128 / 1e6 + 5e-6 + zeros)


def test_seed000_classifier_spends_most_time_in_the_bilstm_on_the_npu():
    from reference_models import VibrationClassifier

    lat = profile(VibrationClassifier().eval(), torch.randn(1, 1, 1024)).latency("npu")
    assert lat.dtype == "int8"
    [top] = lat.top(1)
    assert top.name == "lstm" and top.bound == "memory"
    # seed 000 measured 98% of NPU time in the Bi-LSTM
    assert lat.layer("lstm").share > 0.95


def test_device_contract_and_lookup():
    assert get_device(TOY) is TOY
    assert TOY.peak() == 1e10 and TOY.ridge() == 10.0
    assert get_device("rk3588-npu").default_dtype == "int8"
    with pytest.raises(DeviceError, match="unknown device 'rk3588'.*Did you mean 'rk3588-npu'"):
        get_device("rk3588")


def test_inheritance_overrides_single_figures():
    catalog = Catalog.builtin().with_tables(
        {"edge": {"base": "npu", "bandwidth": 2e9, "efficiency": {"conv": 0.5}}}, "cfg")
    edge, npu = catalog.get("edge"), catalog.get("npu")
    assert edge.bandwidth == 2e9
    assert edge.peak_flops == npu.peak_flops
    assert edge.efficiency == {**npu.efficiency, "conv": 0.5}
    assert edge.default_dtype == "int8"
    # an overridden figure does not keep the base's source for another number
    assert edge.sources["bandwidth"] == "set in cfg.edge (no source given)"
    assert edge.sources["peak_flops.int8"] == npu.sources["peak_flops.int8"]


def test_a_single_peak_replaces_the_base_peaks_and_their_sources():
    catalog = Catalog.builtin().with_tables(
        {"edge": {"base": "npu", "peak_flops": 2e12,
                  "sources": {"peak_flops": "vendor brief"}},
         "bare": {"base": "npu", "peak_flops": 3e12}}, "cfg")
    edge = catalog.get("edge")
    # npu has int8 and fp16 peaks; a number is the peak at the default dtype (int8) alone
    assert edge.peak_flops == {"int8": 2e12}
    assert not [k for k in edge.sources if k.startswith("peak_flops.")]
    assert edge.sources["peak_flops"] == "vendor brief"
    assert catalog.get("bare").sources["peak_flops"] == "set in cfg.bare (no source given)"


@pytest.mark.parametrize("table,message", [
    ({"peak_flops": 1e9}, "cfg.d: missing required figure 'bandwidth'"),
    ({"bandwidth": 1e9}, "cfg.d: missing required figure 'peak_flops'"),
    ({"peak_flops": 1e9, "bandwidth": 0}, "bandwidth must be positive, got 0"),
    ({"peak_flops": -1, "bandwidth": 1e9}, "peak_flops must be positive, got -1"),
    ({"peak_flops": 1e9, "bandwith": 1e9}, "unknown key 'bandwith' (did you mean 'bandwidth'?)"),
    ({"peak_flops": {"int4": 1e9}, "bandwidth": 1e9}, "peak_flops.int4: unknown dtype"),
    ({"peak_flops": {"fp16": 1e9}, "bandwidth": 1e9},
     "default_dtype 'fp32' has no peak_flops entry"),
    ({"peak_flops": 1e9, "bandwidth": 1e9, "efficiency": {"conv": 1.5}},
     "efficiency.conv = 1.5 is above 1"),
    ({"peak_flops": 1e9, "bandwidth": 1e9, "efficiency": {"gemm": 0.5}},
     "efficiency.gemm: unknown operator class"),
    ({"peak_flops": 1e9, "bandwidth": 1e9, "overhead": True}, "overhead must be a number"),
    ({"peak_flops": 1e9, "bandwidth": 1e9, "overheads": {"lstm": 1e-6}},
     "overheads.lstm: expected an operator class"),
    ({"peak_flops": 1e9, "bandwidth": 1e9, "onchip_bytes": 1.5}, "whole number of bytes"),
    ({"base": "npu9"}, "unknown device 'npu9' (cfg.d: base)"),
    ({"base": "d", "bandwidth": 1e9}, "cfg.d: base names the device itself, and there is no "
                                      "device 'd' before it to build on"),
    ({"peak_flops": 1e9, "bandwidth": 1e9, "sources": {"peak_flops": 5}},
     "cfg.d: sources.peak_flops must be text (where the figure comes from), got 5"),
    ({"peak_flops": 1e9, "bandwidth": 1e9, "description": 5}, "cfg.d: description must be text"),
    ({"peak_flops": 1e9, "bandwidth": 1e9, "default_dtype": "float33"},
     "cfg.d: default_dtype: unknown dtype 'float33'"),
    ({"peak_flops": 1e9, "bandwidth": 1e9, "default_dtype": 8},
     "cfg.d: default_dtype: dtype must be a string, got int: 8"),
])
def test_device_table_errors_name_the_key(table, message):
    with pytest.raises(DeviceError) as err:
        Catalog.builtin().with_tables({"d": table}, "cfg")
    assert message in str(err.value)


def test_inheritance_loop():
    with pytest.raises(DeviceError, match="inheritance loops: a -> b -> a"):
        Catalog.builtin().with_tables({"a": {"base": "b"}, "b": {"base": "a"}}, "cfg")


def test_overheads_in_words_and_the_bare_device():
    dev = Device(name="d", peak_flops=1e10, bandwidth=1e9, overhead=5e-6,
                 overheads={"depthwise_conv": 95e-6, "aten.gru": 1.3e-5},
                 efficiency={"conv": 0.5})
    assert dev.overheads_text() == "5 us per operator (aten.gru 13 us, depthwise_conv 95 us)"
    assert Device(name="e", peak_flops=1e10, bandwidth=1e9).overheads_text() == \
        "0 us per operator"
    bare = dev.bare()
    assert (bare.peak(), bare.bandwidth) == (1e10, 1e9)
    assert (bare.efficiency, bare.overhead, bare.overheads) == ({}, 0.0, {})
    assert bare.overhead_for("aten.gru", "recurrent") == 0.0
