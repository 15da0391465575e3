"""Report text (``reporting/text.py``) from measurement dicts written by hand.

The dicts have the shape of ``Measurement.to_dict()`` (layer rows as ``layer_rows`` makes
them). The model is the README's worked example on a made-up device, plus a ``spare`` layer
that holds parameters but never ran:

=========  ===========  =========  =======  ======  =======  =========
layer      type         output     FLOPs    params  seconds  intensity
=========  ===========  =========  =======  ======  =======  =========
conv       Conv2d       1x8x16x16  112,640  224     20 us    9.26
bn         BatchNorm2d  1x8x16x16    8,192   16     10 us    0.50
(model)    Net          1x8          4,096    0     30 us    0.17
fc         Linear       1x10           170   90      5 us    0.39
spare      Linear       -                0   40      0       0.00
=========  ===========  =========  =======  ======  =======  =========

Totals: 125,098 FLOPs, 370 params, 65 us. Shares: FLOPs 112,640 / 125,098 = 90.0%,
8,192 / 125,098 = 6.5%, 4,096 / 125,098 = 3.3%; params 224 / 370 = 60.5%, 90 / 370 = 24.3%,
40 / 370 = 10.8%, 16 / 370 = 4.3%; time 30 / 65 = 46.2%, 20 / 65 = 30.8%.
"""

from __future__ import annotations

from typing import Any

from pytest_flopbudget.reporting.text import (
    failing_summary,
    failure_message,
    hotspots,
    measurement_title,
    report_table,
    unsupported_summary,
)


def row(name: str, kind: str, shape: list[int] | None, flops: int, params: int,
        seconds: float, intensity: float, written: int = 0) -> dict[str, Any]:
    return {"name": name, "kind": kind, "calls": 1 if shape else 0,
            "input_shapes": [], "output_shapes": [shape] if shape else [],
            "flops": flops, "macs": 0, "params": params, "bytes_read": 0,
            "bytes_written": written, "bytes": 0, "intensity": intensity, "bound": "memory",
            "seconds": seconds, "share": 0.0, "unsupported": {}}


def measurement(**changes: Any) -> dict[str, Any]:
    m = {
        "name": "Net", "device": "npu", "dtype": "int8", "traced": "fake",
        "fallback_reason": "",
        "flops": 125_098, "macs": 55_376, "params": 370, "weight_bytes": 370,
        "access_bytes": 53_712, "peak_activation_bytes": 8_192, "latency_s": 65e-6,
        "intensity": 2.33, "unsupported": {}, "violations": [], "usage": {},
        "layers": [
            row("conv", "Conv2d", [1, 8, 16, 16], 112_640, 224, 20e-6, 9.26, written=8_192),
            row("bn", "BatchNorm2d", [1, 8, 16, 16], 8_192, 16, 10e-6, 0.50, written=8_192),
            row("", "Net", [1, 8], 4_096, 0, 30e-6, 0.17, written=8_224),
            row("fc", "Linear", [1, 10], 170, 90, 5e-6, 0.39, written=40),
            row("spare", "Linear", None, 0, 40, 0.0, 0.0),
        ],
    }
    m.update(changes)
    return m


def violation(limit: str, metric: str, text: str) -> dict[str, Any]:
    return {"limit": limit, "metric": metric, "text": text}


OVER_FLOPS = violation("max_mflops", "flops", "0.125 MFLOPs > 0.1 MFLOPs (+25%)")
OVER_GFLOPS = violation("max_gflops", "flops", "0.000125 GFLOPs > 0.0001 GFLOPs (+25%)")
OVER_PARAMS = violation("max_params", "params", "370 params > 300 params (+23%)")


def lines(text: str) -> list[str]:
    return text.strip("\n").split("\n")


# --- measurement_title ----------------------------------------------------------------------

def test_title_of_a_fake_trace():
    assert measurement_title(measurement()) == "Net on npu (int8), traced on fake tensors"


def test_title_of_a_real_forward_names_why():
    m = measurement(device="cpu", dtype="fp32", traced="real",
                    fallback_reason="aten.nonzero: data-dependent output shape")
    assert measurement_title(m) == ("Net on cpu (fp32), traced on one real forward "
                                    "(aten.nonzero: data-dependent output shape)")


# --- hotspots -------------------------------------------------------------------------------

def test_top_layers_by_flops_with_share_and_time():
    # MFLOPs 0.11264 -> "0.113", 0.008192 -> "0.00819", 0.004096 -> "0.0041" (3 digits);
    # time ms 0.02 -> "0.0200" (4 decimals); the model's own row is "<model>"
    assert hotspots(measurement(), "flops", 3) == lines("""
    layer    type         output      MFLOPs  share  FLOP/B  bound   time ms
    conv     Conv2d       1x8x16x16    0.113  90.0%    9.26  memory   0.0200
    bn       BatchNorm2d  1x8x16x16  0.00819   6.5%    0.50  memory   0.0100
    <model>  Net          1x8         0.0041   3.3%    0.17  memory   0.0300
""")


def test_by_params_a_layer_that_never_ran_is_listed_and_zero_rows_are_not():
    # spare holds 40 params, ran never ("-" shape, no time); the model's row (0 params) is not
    # listed even with room for it
    assert hotspots(measurement(), "params", 10) == lines("""
    layer  type         output     params  share  FLOP/B  bound   time ms
    conv   Conv2d       1x8x16x16     224  60.5%    9.26  memory   0.0200
    fc     Linear       1x10           90  24.3%    0.39  memory   0.0050
    spare  Linear       -              40  10.8%    0.00  memory   0.0000
    bn     BatchNorm2d  1x8x16x16      16   4.3%    0.50  memory   0.0100
""")


def test_by_latency_the_metric_column_is_the_time_and_there_is_no_second_one():
    assert hotspots(measurement(), "latency", 2) == lines("""
    layer    type    output     time ms  share  FLOP/B  bound
    <model>  Net     1x8           0.03  46.2%    0.17  memory
    conv     Conv2d  1x8x16x16     0.02  30.8%    9.26  memory
""")


def test_weight_and_activation_rank_by_their_layer_figures():
    # weight is explained by params, activation by bytes written (8,224 / 24,648 = 33.4%,
    # 8,192 / 24,648 = 33.2%; MB: 0.008224 -> "0.00822")
    assert hotspots(measurement(), "weight", 1)[0].split()[3] == "params"
    assert hotspots(measurement(), "activation", 2) == lines("""
    layer    type    output     written MB  share  FLOP/B  bound   time ms
    <model>  Net     1x8           0.00822  33.4%    0.17  memory   0.0300
    conv     Conv2d  1x8x16x16     0.00819  33.2%    9.26  memory   0.0200
""")


def test_ties_keep_execution_order():
    layers = [row("a", "Linear", [1, 2], 100, 0, 1e-6, 1.0),
              row("b", "Linear", [1, 2], 200, 0, 1e-6, 1.0),
              row("c", "Linear", [1, 2], 100, 0, 1e-6, 1.0)]
    table = hotspots(measurement(layers=layers), "flops", 3)
    assert [line.split()[0] for line in table[1:]] == ["b", "a", "c"]
    # 200 / 400 = 50.0%, 100 / 400 = 25.0% each
    assert [line.split()[4] for line in table[1:]] == ["50.0%", "25.0%", "25.0%"]
    two = hotspots(measurement(layers=layers), "flops", 2)
    assert [line.split()[0] for line in two[1:]] == ["b", "a"]


def test_a_metric_no_layer_has_is_a_header_alone():
    assert hotspots(measurement(), "macs", 3) == [
        "    layer  type  output  MMACs  share  FLOP/B  bound  time ms"]


# --- failure_message ------------------------------------------------------------------------

def test_failure_message_lists_every_violation_then_the_unsupported_ops():
    m = measurement(violations=[OVER_FLOPS, OVER_PARAMS],
                    unsupported={"aten.foo": 2, "aten.bar": 1})
    assert failure_message({"measurements": [m]}) == "\n".join([
        "flop budget exceeded: Net on npu (int8), traced on fake tensors",
        "  max_mflops: 0.125 MFLOPs > 0.1 MFLOPs (+25%)",
        "  max_params: 370 params > 300 params (+23%)",
        "  unsupported ops (FLOPs not counted, traffic counted): aten.bar x1, aten.foo x2",
    ])


def test_failure_message_covers_only_the_models_over_budget():
    within = measurement(name="Small", unsupported={"aten.foo": 1})
    over = measurement(name="Big", violations=[OVER_PARAMS])
    assert failure_message({"measurements": [within, over, within]}) == "\n".join([
        "flop budget exceeded: Big on npu (int8), traced on fake tensors",
        "  max_params: 370 params > 300 params (+23%)",
    ])
    assert failure_message({"measurements": [within]}) == ""


# --- failing_summary ------------------------------------------------------------------------

def test_failing_summary_one_hotspot_block_per_metric():
    # two limits on FLOPs (MFLOPs and GFLOPs) give one FLOPs table; params gets its own
    m = measurement(violations=[OVER_FLOPS, OVER_PARAMS, OVER_GFLOPS],
                    unsupported={"aten.foo": 2})
    record = {"nodeid": "t.py::test_net", "measurements": [m]}
    expected = lines("""
t.py::test_net: Net on npu (int8), traced on fake tensors
  max_mflops: 0.125 MFLOPs > 0.1 MFLOPs (+25%)
  max_params: 370 params > 300 params (+23%)
  max_gflops: 0.000125 GFLOPs > 0.0001 GFLOPs (+25%)
  top 2 layers by FLOPs:
    layer  type         output      MFLOPs  share  FLOP/B  bound   time ms
    conv   Conv2d       1x8x16x16    0.113  90.0%    9.26  memory   0.0200
    bn     BatchNorm2d  1x8x16x16  0.00819   6.5%    0.50  memory   0.0100
  top 2 layers by parameters:
    layer  type    output     params  share  FLOP/B  bound   time ms
    conv   Conv2d  1x8x16x16     224  60.5%    9.26  memory   0.0200
    fc     Linear  1x10           90  24.3%    0.39  memory   0.0050
  unsupported ops (FLOPs not counted, traffic counted): aten.foo x2
""")
    assert failing_summary([record], 2) == [*expected, ""]  # a blank line ends each block


def test_failing_summary_skips_tests_and_models_within_budget():
    passing = {"nodeid": "t.py::test_ok", "measurements": [measurement()]}
    mixed = {"nodeid": "t.py::test_two", "measurements": [
        measurement(name="Small"),
        measurement(name="Big", violations=[OVER_PARAMS]),
    ]}
    assert failing_summary([passing, mixed], 1) == [
        "t.py::test_two: Big on npu (int8), traced on fake tensors",
        "  max_params: 370 params > 300 params (+23%)",
        "  top 1 layers by parameters:",
        "    layer  type    output     params  share  FLOP/B  bound   time ms",
        "    conv   Conv2d  1x8x16x16     224  60.5%    9.26  memory   0.0200",
        "",
    ]
    assert failing_summary([passing], 3) == []


# --- unsupported_summary --------------------------------------------------------------------

def test_unsupported_summary_lists_models_within_budget_only():
    records = [
        {"nodeid": "t.py::test_a", "measurements": [
            measurement(unsupported={"aten.special_op": 3}),
            measurement(name="Clean")]},
        # over budget: its unsupported ops are in its failure already
        {"nodeid": "t.py::test_b", "measurements": [
            measurement(unsupported={"aten.other": 1}, violations=[OVER_PARAMS])]},
    ]
    assert unsupported_summary(records) == [
        "t.py::test_a: Net",
        "  unsupported ops (FLOPs not counted, traffic counted): aten.special_op x3",
    ]
    assert unsupported_summary([{"nodeid": "t.py::x", "measurements": []}]) == []


# --- report_table ---------------------------------------------------------------------------

def test_report_table_one_row_per_model_with_budget_use_and_verdict():
    over = measurement(violations=[OVER_FLOPS],
                       usage={"max_mflops": 1.25098, "max_weight_mb": 0.996,
                              "max_latency_ms": 0.25})
    big = measurement(name="ResNet", device="a100", dtype="fp16", flops=4_100_000_000,
                      macs=2_050_000_000, params=25_557_032, access_bytes=102_400_000,
                      intensity=40.04, latency_s=0.00125)
    records = [
        {"nodeid": "t.py::test_a", "outcome": "failed", "measurements": [over]},
        {"nodeid": "t.py::test_big", "outcome": "passed", "measurements": [big]},
        {"nodeid": "t.py::test_skipped", "outcome": "skipped", "measurements": []},
    ]
    # 125,098 FLOPs = "0.13" MFLOPs; 55,376 MACs = "0.06"; 53,712 bytes = "0.054" MB;
    # 65 us = "0.0650" ms; 1.25098 -> "125%", 0.996 -> "99.6%"; MB limits name their metric
    assert report_table(records) == lines("""
  test            model     MFLOPs     MMACs      params  access MB  FLOP/B  device     pred ms  budget used                           verdict
  t.py::test_a    Net         0.13      0.06         370      0.054    2.33  npu int8    0.0650  MFLOPs 125%, weight MB 99.6%, ms 25%  OVER
  t.py::test_big  ResNet  4,100.00  2,050.00  25,557,032    102.400   40.04  a100 fp16   1.2500  -                                     passed
""")  # noqa: E501


def test_markdown_names_read_as_themselves():
    # a model name may hold HTML or Markdown marks: entities and escapes, never markup; a
    # code span escapes '|' only inside a table, where GitHub needs it (outside, it would
    # show the backslash)
    from pytest_flopbudget.reporting.markdown import cell, code, plain

    assert plain("<img src=x onerror=alert(1)>|`m`") == \
        "&lt;img src=x onerror=alert(1)&gt;\\|\\`m\\`"
    assert cell("a*b*_c_") == "a\\*b\\*\\_c\\_"
    assert code("test_odd[a|b]") == "`test_odd[a|b]`"
    assert code("test_odd[a|b]", in_table=True) == "`test_odd[a\\|b]`"
    assert code("x`y") == "`` x`y ``"
