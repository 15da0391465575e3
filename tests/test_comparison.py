"""Baseline comparison (``ci/comparison.py``) on hand-written measurement dicts and entries.

The baseline model ``Net`` (npu, int8) has two layers:

==========  =======  =======  ======  ======  =======  =======
layer       FLOPs    MACs     params  access  written  latency
==========  =======  =======  ======  ======  =======  =======
features    600,000  290,000  10,000  60,000  6,000    0.6 ms
classifier  400,000  190,000  10,000  40,000  4,000    0.4 ms
==========  =======  =======  ======  ======  =======  =======

Totals: 1,000,000 FLOPs, 480,000 MACs, 20,000 params = 20,000 weight bytes at int8, 100,000
access bytes, 10,000 activation bytes, 1 ms. A growth limit of 5% lets FLOPs reach
1,000,000 x 1.05 = 1,050,000 and no more.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from pytest_flopbudget.ci.comparison import RunComparison, compare_model, compare_test

W = "@flop_budget on t.py::test_net"
FIVE = (Fraction(1, 20), W)  # 5%
ZERO = (Fraction(0), W)
ALL = ("flops", "macs", "params", "weight", "access", "activation", "latency")


def layer(name: str, kind: str, flops: int, macs: int, params: int, access: int,
          written: int, seconds: float) -> dict[str, Any]:
    return {"name": name, "kind": kind, "flops": flops, "macs": macs, "params": params,
            "bytes": access, "bytes_written": written, "seconds": seconds}


def measurement(name: str = "Net", layers: list[dict[str, Any]] | None = None,
                **changes: Any) -> dict[str, Any]:
    m = {"name": name, "device": "npu", "dtype": "int8", "flops": 1_000_000, "macs": 480_000,
         "params": 20_000, "weight_bytes": 20_000, "access_bytes": 100_000,
         "peak_activation_bytes": 10_000, "latency_s": 0.001,
         "layers": layers if layers is not None else [
             layer("features", "Linear", 600_000, 290_000, 10_000, 60_000, 6_000, 0.0006),
             layer("classifier", "Linear", 400_000, 190_000, 10_000, 40_000, 4_000, 0.0004)]}
    m.update(changes)
    return m


def baseline_entry(**changes: Any) -> dict[str, Any]:
    entry = {"device": "npu", "dtype": "int8", "flops": 1_000_000, "macs": 480_000,
             "params": 20_000, "weight": 20_000, "access": 100_000, "activation": 10_000,
             "latency": 0.001,
             "layers": {
                 "features": {"flops": 600_000, "macs": 290_000, "params": 10_000,
                              "access": 60_000, "written": 6_000, "latency": 0.0006},
                 "classifier": {"flops": 400_000, "macs": 190_000, "params": 10_000,
                                "access": 40_000, "written": 4_000, "latency": 0.0004}}}
    entry.update(changes)
    return entry


def rows_by_metric(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["metric"]: r for r in result["metrics"]}


# --- compare_model --------------------------------------------------------------------------

def test_an_unchanged_model_at_zero_percent_is_ok_with_every_metric_compared():
    result = compare_model(measurement(), baseline_entry(), dict.fromkeys(ALL, ZERO), 3)
    assert result == {
        "name": "Net", "status": "ok", "checked": True,
        "metrics": [
            {"metric": "flops", "old": 1_000_000, "new": 1_000_000, "limit": "0%", "where": W,
             "over": False},
            {"metric": "macs", "old": 480_000, "new": 480_000, "limit": "0%", "where": W,
             "over": False},
            {"metric": "params", "old": 20_000, "new": 20_000, "limit": "0%", "where": W,
             "over": False},
            {"metric": "weight", "old": 20_000, "new": 20_000, "limit": "0%", "where": W,
             "over": False},
            {"metric": "access", "old": 100_000, "new": 100_000, "limit": "0%", "where": W,
             "over": False},
            {"metric": "activation", "old": 10_000, "new": 10_000, "limit": "0%", "where": W,
             "over": False},
            {"metric": "latency", "old": 0.001, "new": 0.001, "limit": "0%", "where": W,
             "over": False},
        ],
    }


@pytest.mark.parametrize("new_flops,over", [
    (1_049_999, False),
    (1_050_000, False),  # exactly 1,000,000 x 1.05: allowed
    (1_050_001, True),  # one FLOP more
])
def test_growth_is_over_only_past_old_times_one_plus_limit(new_flops, over):
    result = compare_model(measurement(flops=new_flops), baseline_entry(), {"flops": FIVE}, 3)
    assert rows_by_metric(result)["flops"]["over"] is over
    assert rows_by_metric(result)["flops"]["limit"] == "5%"
    assert result["status"] == ("regressed" if over else "ok")


def test_growth_from_zero_is_over_any_limit_and_zero_stays_zero():
    old = baseline_entry(macs=0)
    # 0 -> 1 MAC: 1 > 0 x (1 + 1000%)
    grown = compare_model(measurement(macs=1), old, {"macs": (Fraction(10), W)}, 3)
    assert rows_by_metric(grown)["macs"]["over"] is True
    assert rows_by_metric(grown)["macs"]["limit"] == "1000%"
    still = compare_model(measurement(macs=0), old, {"macs": ZERO}, 3)
    assert rows_by_metric(still)["macs"]["over"] is False


def test_latency_in_seconds_compares_unchanged_at_zero_percent_and_grown_over_five():
    # 1 ms -> 1 ms passes 0%; 1 ms -> 1.1 ms is 10% over a 5% limit
    same = compare_model(measurement(), baseline_entry(), {"latency": ZERO}, 3)
    assert rows_by_metric(same)["latency"]["over"] is False
    grown = compare_model(measurement(latency_s=0.0011), baseline_entry(), {"latency": FIVE}, 3)
    assert (rows_by_metric(grown)["latency"]["old"], rows_by_metric(grown)["latency"]["new"],
            rows_by_metric(grown)["latency"]["over"]) == (0.001, 0.0011, True)


def test_only_metrics_with_a_limit_are_checked():
    # FLOPs doubled, but only params has a limit
    result = compare_model(measurement(flops=2_000_000), baseline_entry(), {"params": FIVE}, 3)
    rows = rows_by_metric(result)
    assert (rows["flops"]["limit"], rows["flops"]["where"], rows["flops"]["over"]) == (
        None, None, False)
    assert (rows["params"]["limit"], rows["params"]["where"]) == ("5%", W)
    assert (result["status"], result["checked"]) == ("ok", True)


def test_no_limits_known_compares_without_a_verdict():
    # limits None: the test failed before its check; everything doubled, nothing is over
    result = compare_model(measurement(flops=2_000_000, params=40_000), baseline_entry(),
                           None, 3)
    assert (result["status"], result["checked"]) == ("ok", False)
    assert all(r["limit"] is None and r["over"] is False for r in result["metrics"])
    assert rows_by_metric(result)["flops"]["new"] == 2_000_000
    assert "layers" not in result


def test_a_device_or_dtype_change_is_noted():
    result = compare_model(measurement(device="rk3588-npu", dtype="fp16"), baseline_entry(),
                           None, 3)
    assert result["device_change"] == "npu int8 -> rk3588-npu fp16"
    assert "device_change" not in compare_model(measurement(), baseline_entry(), None, 3)


def test_renamed_layers_are_listed_and_empty_layers_are_not_layers():
    layers = [
        layer("features", "Linear", 600_000, 290_000, 10_000, 60_000, 6_000, 0.0006),
        layer("head", "Linear", 400_000, 190_000, 10_000, 40_000, 4_000, 0.0004),
        layer("dropout", "Dropout", 0, 0, 0, 0, 0, 0.0),  # every figure 0: not a layer
    ]
    result = compare_model(measurement(layers=layers), baseline_entry(), {"flops": FIVE}, 3)
    assert result["renamed_layers"] == {"gone": ["classifier"], "added": ["head"]}
    assert result["status"] == "ok"  # totals are unchanged


def test_the_grown_layers_are_ranked_by_the_first_metric_over_its_limit():
    # flops and latency both over: flops comes first among the metrics, so layers are
    # ranked by their FLOPs growth: classifier +300,000, then new head +100,000;
    # features shrank by 100,000 and is not listed
    layers = [
        layer("features", "Linear", 500_000, 290_000, 10_000, 60_000, 6_000, 0.0009),
        layer("classifier", "Linear", 700_000, 190_000, 10_000, 40_000, 4_000, 0.0004),
        layer("head", "Linear", 100_000, 0, 0, 0, 0, 0.0001),
    ]
    result = compare_model(measurement(layers=layers, flops=1_300_000, latency_s=0.0014),
                           baseline_entry(), {"flops": FIVE, "latency": FIVE}, 5)
    assert result["status"] == "regressed"
    assert result["layers"] == {"metric": "flops", "figure": "flops", "rows": [
        {"name": "classifier", "kind": "Linear", "old": 400_000, "new": 700_000},
        {"name": "head", "kind": "Linear", "old": 0, "new": 100_000},
    ]}


@pytest.mark.parametrize("metric,changes,figure", [
    ("weight", {"weight_bytes": 30_000}, "params"),  # weight is explained by params
    ("activation", {"peak_activation_bytes": 15_000}, "written"),  # by bytes written
    ("access", {"access_bytes": 150_000}, "access"),
])
def test_each_metric_ranks_layers_by_its_own_layer_figure(metric, changes, figure):
    # classifier grows by 5,000 in params, written and access; features in none
    layers = [
        layer("features", "Linear", 600_000, 290_000, 10_000, 60_000, 6_000, 0.0006),
        layer("classifier", "Linear", 400_000, 190_000, 15_000, 45_000, 9_000, 0.0004),
    ]
    result = compare_model(measurement(layers=layers, **changes), baseline_entry(),
                           {metric: FIVE}, 3)
    old = {"params": 10_000, "written": 4_000, "access": 40_000}[figure]
    new = {"params": 15_000, "written": 9_000, "access": 45_000}[figure]
    assert result["layers"] == {"metric": metric, "figure": figure, "rows": [
        {"name": "classifier", "kind": "Linear", "old": old, "new": new}]}


def test_grown_layers_tie_by_path_and_stop_at_n():
    # both layers +100,000 FLOPs: a tie, listed by path; n = 1 keeps the first
    layers = [
        layer("features", "Linear", 700_000, 290_000, 10_000, 60_000, 6_000, 0.0006),
        layer("classifier", "Linear", 500_000, 190_000, 10_000, 40_000, 4_000, 0.0004),
    ]
    m = measurement(layers=layers, flops=1_200_000)
    both = compare_model(m, baseline_entry(), {"flops": FIVE}, 5)["layers"]["rows"]
    assert [r["name"] for r in both] == ["classifier", "features"]
    one = compare_model(m, baseline_entry(), {"flops": FIVE}, 1)["layers"]["rows"]
    assert one == [{"name": "classifier", "kind": "Linear", "old": 400_000, "new": 500_000}]


def test_a_layer_only_in_the_baseline_never_counts_as_grown():
    # classifier is gone (new 0: it cannot have grown); features doubled, its kind read from
    # this run's rows
    layers = [layer("features", "Conv1d", 1_200_000, 290_000, 10_000, 60_000, 6_000, 0.0006)]
    result = compare_model(measurement(layers=layers, flops=1_200_000), baseline_entry(),
                           {"flops": FIVE}, 5)
    assert result["layers"]["rows"] == [
        {"name": "features", "kind": "Conv1d", "old": 600_000, "new": 1_200_000}]
    assert result["renamed_layers"] == {"gone": ["classifier"], "added": []}


def test_a_new_model_carries_its_values_only():
    assert compare_model(measurement(), None, {"flops": FIVE}, 3) == {
        "name": "Net", "status": "new",
        "values": {"flops": 1_000_000, "macs": 480_000, "params": 20_000, "weight": 20_000,
                   "access": 100_000, "activation": 10_000, "latency": 0.001}}


# --- compare_test ---------------------------------------------------------------------------

def test_a_new_test_is_new_with_every_model_new():
    result = compare_test([measurement(), measurement(name="Aux")], None, None, 3)
    assert result["status"] == "new"
    assert [(m["name"], m["status"]) for m in result["models"]] == [("Net", "new"),
                                                                    ("Aux", "new")]


def test_a_model_missing_from_the_run_is_listed_but_not_a_regression():
    old = {"Net": baseline_entry(), "Aux": baseline_entry(), "Zed": baseline_entry()}
    result = compare_test([measurement()], old, {"flops": FIVE}, 3)
    assert result["status"] == "ok"
    assert [(m["name"], m["status"]) for m in result["models"]] == [
        ("Net", "ok"), ("Aux", "missing"), ("Zed", "missing")]
    assert result["models"][1] == {"name": "Aux", "status": "missing"}


def test_one_model_renamed_is_compared_with_the_one_it_replaced():
    result = compare_test([measurement(name="NetV2", flops=1_100_000)],
                          {"Net": baseline_entry()}, {"flops": FIVE}, 3)
    [model] = result["models"]
    assert (model["name"], model["was"], model["status"]) == ("NetV2", "Net", "regressed")
    assert result["status"] == "regressed"


def test_with_two_models_a_new_name_is_not_paired():
    result = compare_test([measurement(), measurement(name="Aux")],
                          {"Old": baseline_entry()}, {"flops": FIVE}, 3)
    assert [(m["name"], m["status"]) for m in result["models"]] == [
        ("Net", "new"), ("Aux", "new"), ("Old", "missing")]
    assert "was" not in result["models"][0]
    assert result["status"] == "ok"  # known test, nothing regressed


def test_a_test_regresses_when_any_model_does():
    old = {"Net": baseline_entry(), "Aux": baseline_entry()}
    result = compare_test([measurement(), measurement(name="Aux", params=21_001)], old,
                          {"params": FIVE}, 3)  # 20,000 x 1.05 = 21,000 < 21,001
    assert [m["status"] for m in result["models"]] == ["ok", "regressed"]
    assert result["status"] == "regressed"


# --- RunComparison --------------------------------------------------------------------------

def test_run_headline_counts_each_status():
    run = RunComparison("baseline.json", [
        ("t.py::a", {"status": "regressed"}), ("t.py::b", {"status": "ok"}),
        ("t.py::c", {"status": "ok"}), ("t.py::d", {"status": "new"})], ["t.py::gone"])
    assert run.headline() == "1 regressed, 2 within limits, 1 new, 1 missing"
    assert (run.count("regressed"), run.count("ok"), run.count("new"),
            run.count("missing")) == (1, 2, 1, 1)


def test_an_empty_run_headline_is_all_zero():
    assert RunComparison("", [], []).headline() == "0 regressed, 0 within limits, 0 new, " \
                                                   "0 missing"


def test_latency_within_rounding_noise_is_not_growth_even_at_zero_percent():
    # the baseline's latency one ulp below this run's (0.001 s): a difference of about
    # 2e-16 relative, under the 1e-9 of rounding noise: no regression at 0% allowed; a
    # nanosecond more (1e-6 relative) is one
    import math

    old = baseline_entry(latency=math.nextafter(0.001, 0.0))
    assert compare_model(measurement(), old, {"latency": ZERO}, 3)["status"] == "ok"
    grown = compare_model(measurement(latency_s=0.001 + 1e-9), baseline_entry(),
                          {"latency": ZERO}, 3)
    assert grown["status"] == "regressed"


def test_a_regression_no_layer_grew_in_has_no_layer_table():
    # the total latency grew by 10% while each layer's stayed (0.0006 + 0.0004 s): no table
    # of grown layers to show, so none (an empty one was printed)
    result = compare_model(measurement(latency_s=0.0011), baseline_entry(),
                           {"latency": FIVE}, 3)
    assert result["status"] == "regressed"
    assert "layers" not in result


def test_a_limit_and_a_change_over_it_never_read_the_same():
    # 128 -> 160 params is +25% exactly: over a limit of 24.9999999%, written with every
    # digit; 2,000,000 -> 2,100,001 FLOPs is +5.00005%, over 5%: not "+5.0%"
    from pytest_flopbudget.budgets.growth import parse_percent, percent_text
    from pytest_flopbudget.reporting.baseline_text import change_text

    assert percent_text(parse_percent("24.9999999%")) == "24.9999999%"
    assert percent_text(parse_percent("5%")) == "5%"
    assert change_text(2_000_000, 2_100_001, "5%") == "+5.00005%"
    assert change_text(2_000_000, 2_100_001) == "+5.0%"
    assert change_text(128, 160, "24.9999999%") == "+25.0%"
    # exactly at the limit (within it): no float noise (2,000,000 -> 2,100,000 is +5%)
    assert change_text(2_000_000, 2_100_000, "5%") == "+5.0%"
    assert change_text(1000, 1001, "0.1%") == "+0.1%"
    assert change_text(100, 110, "10%") == "+10.0%"
