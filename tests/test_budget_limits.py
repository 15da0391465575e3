"""Budgets (``budgets/limits.py``) on plain dicts: layers, limits at their boundaries, messages.

Units: MFLOPs/MMACs are 10^6, GFLOPs/GMACs 10^9, params are elements, MB is 10^6 bytes, ms is
10^-3 s. A value exactly at its limit passes; one unit of the base quantity above fails.
"""

from __future__ import annotations

import math

import pytest

from pytest_flopbudget.budgets.limits import (
    Budget,
    BudgetError,
    Violation,
    check,
    check_arguments,
    usage,
)

CONFIG = "[tool.flopbudget]"
TABLE = "[tool.flopbudget.tests] 't.py::test_a'"
MARKER = "@flop_budget on t.py::test_a"

#: Values of one measurement, in base units; each limit below is set right at one of them.
VALUES = {
    "flops": 50_000_000,  # 50 MFLOPs, 0.05 GFLOPs
    "macs": 25_000_000,  # 25 MMACs
    "params": 300_000,
    "weight": 1_200_000,  # 1.2 MB
    "access": 2_000_000,  # 2 MB
    "activation": 500_000,  # 0.5 MB
    "latency": 0.005,  # 5 ms
}


# --- Budget.from_layers -------------------------------------------------------------------

def layers() -> list:
    return [
        (CONFIG, {"max_mflops": 100, "max_latency_ms": 10, "device": "npu", "dtype": "fp16"}),
        (TABLE, {"max_mflops": 50, "max_params": 1000}),
        (MARKER, {"max_params": 500, "max_growth": "5%"}),
    ]


def test_later_layers_win_and_every_argument_keeps_its_origin():
    budget = Budget.from_layers(layers())
    assert budget.limits == {"max_mflops": 50.0, "max_latency_ms": 10.0, "max_params": 500.0}
    assert (budget.device, budget.dtype) == ("npu", "fp16")
    assert budget.options == {"max_growth": "5%"}  # device and dtype are not options
    assert budget.origin == {"max_mflops": TABLE, "max_latency_ms": CONFIG, "device": CONFIG,
                             "dtype": CONFIG, "max_params": MARKER, "max_growth": MARKER}


def test_flop_device_overrides_every_layer_and_is_named_as_the_origin():
    budget = Budget.from_layers(layers(), device_override="rk3588-npu")
    assert budget.device == "rk3588-npu"
    assert budget.origin["device"] == "--flop-device"
    assert budget.dtype == "fp16"  # the override changes the device only


def test_a_marker_device_beats_the_config_device():
    budget = Budget.from_layers([(CONFIG, {"device": "npu"}), (MARKER, {"device": "a100"})])
    assert (budget.device, budget.origin["device"]) == ("a100", MARKER)


def test_no_layers_is_the_cpu_at_its_own_precision_without_limits():
    budget = Budget.from_layers([])
    assert (budget.limits, budget.device, budget.dtype, budget.options, budget.origin) == (
        {}, "cpu", None, {}, {})


def test_an_empty_override_is_no_override():
    assert Budget.from_layers([(CONFIG, {"device": "npu"})], device_override="").device == "npu"


def test_an_error_in_a_layer_names_that_layer():
    with pytest.raises(BudgetError, match=r"^@flop_budget on t.py::test_a: max_params must be "
                                          r"a positive number, got -5$"):
        Budget.from_layers([(CONFIG, {"max_params": 10}), (MARKER, {"max_params": -5})])


def test_to_dict_keeps_json_values_only():
    budget = Budget.from_layers([(MARKER, {"max_mflops": 50, "max_order": {"flops": 1.0},
                                           "max_growth": "flops:2%"})])
    assert budget.to_dict() == {"limits": {"max_mflops": 50.0}, "device": "cpu", "dtype": None,
                                "options": {"max_order": {"flops": 1.0},
                                            "max_growth": "flops:2%"}}


# --- check and usage at, just below and just above each limit ----------------------------

#: (limit, value in its unit set exactly at VALUES, metric, one base unit in the limit's unit)
AT_LIMIT = [
    ("max_mflops", 50, "flops", 1e-6),  # 50,000,000 FLOPs / 10^6
    ("max_gflops", 0.05, "flops", 1e-9),  # 50,000,000 FLOPs / 10^9
    ("max_mmacs", 25, "macs", 1e-6),
    ("max_gmacs", 0.025, "macs", 1e-9),
    ("max_params", 300_000, "params", 1),
    ("max_weight_mb", 1.2, "weight", 1e-6),  # 1,200,000 bytes / 10^6
    ("max_access_mb", 2, "access", 1e-6),
    ("max_activation_mb", 0.5, "activation", 1e-6),
    ("max_latency_ms", 5, "latency", None),  # 0.005 s / 10^-3
]


@pytest.mark.parametrize("key,allowed,metric,step", AT_LIMIT)
def test_exactly_at_the_limit_passes_and_uses_all_of_it(key, allowed, metric, step):
    assert check(VALUES, {key: allowed}) == []
    assert usage(VALUES, {key: allowed}) == {key: 1.0}


@pytest.mark.parametrize("key,allowed,metric,step", AT_LIMIT)
def test_just_below_the_limit_passes(key, allowed, metric, step):
    below = dict(VALUES, **{metric: VALUES[metric] - 1 if step else 0.004999})
    assert check(below, {key: allowed}) == []
    assert usage(below, {key: allowed})[key] < 1


@pytest.mark.parametrize("key,allowed,metric,step", AT_LIMIT)
def test_just_above_the_limit_is_one_violation_in_the_limits_unit(key, allowed, metric, step):
    above = dict(VALUES, **{metric: VALUES[metric] + 1 if step else 0.005001})
    [violation] = check(above, {key: allowed})
    assert (violation.limit, violation.metric, violation.allowed) == (key, metric, allowed)
    # one base unit over, in the limit's unit (latency: 1 us over = 0.001 ms)
    assert violation.measured == pytest.approx(allowed + (step or 0.001), rel=1e-12)
    assert usage(above, {key: allowed})[key] > 1


def test_the_same_flops_against_mflops_and_gflops():
    # 2.5 GFLOPs = 2,500 MFLOPs: over 2,000 MFLOPs, under 3 GFLOPs
    values = dict(VALUES, flops=2_500_000_000)
    [violation] = check(values, {"max_mflops": 2000, "max_gflops": 3})
    assert (violation.limit, violation.unit, violation.measured) == ("max_mflops", "MFLOPs",
                                                                     2500.0)
    assert usage(values, {"max_mflops": 2000, "max_gflops": 3}) == {
        "max_mflops": 1.25,  # 2,500 / 2,000
        "max_gflops": 2.5 / 3,
    }


def test_mb_is_a_million_bytes_not_a_mebibyte():
    # 1 MiB = 1,048,576 bytes = 1.048576 MB: over a 1 MB weight limit
    [violation] = check(dict(VALUES, weight=1_048_576), {"max_weight_mb": 1})
    assert violation.measured == 1.048576


def test_every_limit_is_checked_and_reported_in_the_order_given():
    over = check(VALUES, {"max_params": 299_999, "max_mflops": 60, "max_latency_ms": 4})
    assert [(v.limit, v.unit) for v in over] == [("max_params", "params"), ("max_latency_ms",
                                                                            "ms")]
    assert over[1].measured == pytest.approx(5.0)  # 0.005 s


# --- Violation ----------------------------------------------------------------------------

@pytest.mark.parametrize("violation,text", [
    # 112.4 / 50 = 2.248: 124.8% over, shown whole
    (Violation("max_mflops", "flops", 112.4, 50, "MFLOPs"), "112.4 MFLOPs > 50 MFLOPs (+125%)"),
    # 498,406 / 300,000 = 1.6614: 66% over; params with thousands separators
    (Violation("max_params", "params", 498_406, 300_000, "params"),
     "498,406 params > 300,000 params (+66%)"),
    # 11.4 / 5 = 2.28
    (Violation("max_latency_ms", "latency", 11.4, 5, "ms"), "11.4 ms > 5 ms (+128%)"),
    # 1.25 / 1 = 1.25
    (Violation("max_weight_mb", "weight", 1.25, 1, "MB"), "1.25 MB > 1 MB (+25%)"),
    # under 1% over: one decimal (50.2 / 50 = 1.004)
    (Violation("max_mflops", "flops", 50.2, 50, "MFLOPs"), "50.2 MFLOPs > 50 MFLOPs (+0.4%)"),
    # a whole figure of 100 or more drops its decimal: 250 / 200 = 1.25
    (Violation("max_gmacs", "macs", 250, 200, "GMACs"), "250 GMACs > 200 GMACs (+25%)"),
])
def test_violation_text(violation, text):
    assert violation.text == text


def test_violation_over_is_the_fraction_above_the_limit():
    assert Violation("max_mflops", "flops", 75, 50, "MFLOPs").over == 0.5  # 75 / 50 - 1
    assert Violation("max_params", "params", 1001, 1000, "params").over == pytest.approx(0.001)


def test_violation_to_dict_carries_its_text():
    v = Violation("max_mflops", "flops", 75, 50, "MFLOPs")
    assert v.to_dict() == {"limit": "max_mflops", "metric": "flops", "measured": 75,
                           "allowed": 50, "unit": "MFLOPs", "text": "75 MFLOPs > 50 MFLOPs (+50%)"}


def test_a_violation_never_reads_as_zero_percent_over():
    # one FLOP over 50 MFLOPs: 1 / 50,000,000 = 2e-08 = +2e-06 %
    [violation] = check(dict(VALUES, flops=50_000_001), {"max_mflops": 50})
    assert violation.text == "50.000001 MFLOPs > 50 MFLOPs (+2e-06%)"


def test_a_limit_that_reads_like_the_count_shows_its_own_digits():
    # 36 FLOPs (3.6e-05 MFLOPs) against 3.59999e-05 MFLOPs: both read 3.6e-05 at 3 digits;
    # over by 3.6 / 3.59999 - 1 = 2.78e-06 = +0.00028 %
    [violation] = check(dict(VALUES, flops=36), {"max_mflops": 3.59999e-05})
    assert violation.text == "3.6e-05 MFLOPs > 3.59999e-05 MFLOPs (+0.00028%)"


@pytest.mark.parametrize("value", [19.6, 0.4, 1e-320])
def test_a_params_limit_must_be_a_whole_count(value):
    with pytest.raises(BudgetError, match=rf"t: max_params must be a whole number \(a count "
                                          rf"of parameters\), got {value}"):
        check_arguments({"max_params": value}, "t")
    assert check_arguments({"max_params": 2e6}, "t")["max_params"] == 2_000_000


# --- check_arguments ----------------------------------------------------------------------

KNOWN = ("max_mflops, max_gflops, max_mmacs, max_gmacs, max_params, max_weight_mb, "
         "max_access_mb, max_activation_mb, max_latency_ms, device, dtype, max_growth, max_order, "
         "modules, strict")


def test_arguments_come_back_normalised():
    checked = check_arguments({"max_mflops": 50, "dtype": "Float16", "device": "npu",
                               "max_growth": "5%"}, MARKER)
    assert checked == {"max_mflops": 50.0, "dtype": "fp16", "device": "npu", "max_growth": "5%"}
    assert type(checked["max_mflops"]) is float


def test_a_device_is_only_a_name_here():
    # the catalog checks it later; any non-empty string passes here
    assert check_arguments({"device": "no-such-device"}, MARKER) == {"device": "no-such-device"}


@pytest.mark.parametrize("args,message", [
    ({"max_mflop": 5}, f"{MARKER}: unknown argument 'max_mflop' (did you mean 'max_mflops'?); "
                       f"known: {KNOWN}"),
    ({"max_latency": 5}, f"{MARKER}: unknown argument 'max_latency' (did you mean "
                         f"'max_latency_ms'?); known: {KNOWN}"),
    ({"colour": "red"}, f"{MARKER}: unknown argument 'colour'; known: {KNOWN}"),
    ({"max_params": -1}, f"{MARKER}: max_params must be a positive number, got -1"),
    ({"max_params": 0}, f"{MARKER}: max_params must be a positive number, got 0"),
    ({"max_mflops": math.nan}, f"{MARKER}: max_mflops must be a positive number, got nan"),
    ({"max_mflops": math.inf}, f"{MARKER}: max_mflops must be a positive number, got inf"),
    ({"max_params": True}, f"{MARKER}: max_params must be a number, got True"),
    ({"max_mflops": "50"}, f"{MARKER}: max_mflops must be a number, got '50'"),
    ({"dtype": "int4"}, f"{MARKER}: unknown dtype 'int4'; expected one of 'fp32', 'fp16', "
                        f"'bf16', 'int8'"),
    ({"dtype": 8}, f"{MARKER}: dtype must be a string, got int: 8"),
    ({"device": ""}, f"{MARKER}: device must be a device name, got ''"),
    ({"device": 3}, f"{MARKER}: device must be a device name, got 3"),
    ({"max_growth": "5"}, f"{MARKER}: max_growth: growth limit needs a '%' sign, got '5' "
                          f"(write 5%)"),
    ({"max_order": {"flop": 1}}, f"{MARKER}: max_order has unknown metric 'flop'; known: "
                                 f"flops, macs, params, weight, access, activation, latency "
                                 f"(and 'tolerance')"),
])
def test_a_bad_argument_is_one_error_naming_where(args, message):
    with pytest.raises(BudgetError) as info:
        check_arguments(args, MARKER)
    assert str(info.value) == message
