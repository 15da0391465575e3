"""The shared core: metric tables (``core/metrics.py``), text helpers (``core/text.py``) and
re-priceable bytes (``core/access.py``), each on plain values."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from pytest_flopbudget.core.access import ZERO_ACCESS, Access
from pytest_flopbudget.core.metrics import NAMES, fields_of, label, values_of
from pytest_flopbudget.core.text import (
    fixed,
    fmt_value,
    layer_label,
    percent,
    shape_text,
    suggest,
    table,
)

# --- metrics --------------------------------------------------------------------------------

MEASUREMENT = {"name": "Net", "flops": 2_001_000, "macs": 1_000_000, "params": 1_001_000,
               "weight_bytes": 4_004_000, "access_bytes": 4_012_000,
               "peak_activation_bytes": 4_000, "latency_s": 2.5e-4, "layers": []}
VALUES = {"flops": 2_001_000, "macs": 1_000_000, "params": 1_001_000, "weight": 4_004_000,
          "access": 4_012_000, "activation": 4_000, "latency": 2.5e-4}


def test_metric_names_in_display_order():
    assert NAMES == ("flops", "macs", "params", "weight", "access", "activation", "latency")


def test_values_of_reads_the_metric_fields_by_name():
    assert values_of(MEASUREMENT) == VALUES


def test_fields_of_writes_the_fields_back_exact_metrics_as_integers():
    fields = fields_of({**VALUES, "flops": 2_001_000.0, "weight": 4_004_000.0})
    assert fields == {"flops": 2_001_000, "macs": 1_000_000, "params": 1_001_000,
                      "weight_bytes": 4_004_000, "access_bytes": 4_012_000,
                      "peak_activation_bytes": 4_000, "latency_s": 2.5e-4}
    assert type(fields["flops"]) is int and type(fields["weight_bytes"]) is int
    assert type(fields["latency_s"]) is float  # seconds stay float


def test_values_and_fields_round_trip():
    assert values_of(fields_of(VALUES)) == VALUES
    assert fields_of(values_of(MEASUREMENT)) == {k: v for k, v in MEASUREMENT.items()
                                                 if k not in ("name", "layers")}


@pytest.mark.parametrize("name,text", [
    ("flops", "flops"), ("macs", "macs"), ("params", "params"), ("weight", "weight B"),
    ("access", "access B"), ("activation", "activation B"), ("latency", "latency ms"),
    ("written", "written B"),  # a layer figure, not a metric
])
def test_labels_of_metrics_and_layer_figures(name, text):
    assert label(name) == text


def test_an_unknown_label_is_a_key_error():
    with pytest.raises(KeyError):
        label("bytes")


# --- text -----------------------------------------------------------------------------------

def test_table_pads_left_and_right_aligned_columns_to_the_widest_cell():
    # widths: "name" 4 (over "bbb" 3), "n" column 2 ("22"); two spaces between columns
    assert table(("name", "n"), [("a", "1"), ("bbb", "22")], right={1}) == [
        "  name   n",
        "  a      1",
        "  bbb   22",
    ]


def test_table_strips_trailing_padding_and_takes_any_indent_and_cell():
    assert table(("a", "long"), [("xyz", "y")], indent="") == ["a    long", "xyz  y"]
    assert table(("n",), [(5,)], indent="    ") == ["    n", "    5"]  # cells go through str
    assert table(("only", "header"), []) == ["  only  header"]


@pytest.mark.parametrize("value,unit,text", [
    (312_000, "params", "312,000"),
    (7, "params", "7"),
    (312_000.4, "params", "312,000"),  # params are whole
    (112.4, "MFLOPs", "112.4"),
    (100.0, "MFLOPs", "100"),  # a whole figure of 100 or more has no decimal
    (1_234.0, "MB", "1,234"),
    (1_234.56, "MB", "1,234.6"),
    (4.214, "ms", "4.21"),  # under 100: three significant digits
    (0.3512, "ms", "0.351"),
    (99.96, "MFLOPs", "100"),  # 99.96 to three digits
    (0.0000123, "ms", "1.23e-05"),
    (0, "MB", "0"),
])
def test_fmt_value(value, unit, text):
    assert fmt_value(value, unit) == text


@pytest.mark.parametrize("value,decimals,grouped,text", [
    (0.2056, 4, False, "0.2056"),
    (1234.5, 2, True, "1,234.50"),
    (0.0, 2, False, "0.00"),  # none reads as none
    (3.6e-05, 2, False, "3.6e-05"),  # 36 FLOPs in MFLOPs: never 0.00
    (2e-08, 4, True, "2e-08"),
    (1e16, 2, True, "1e+16"),
])
def test_fixed(value, decimals, grouped, text):
    assert fixed(value, decimals, grouped=grouped) == text


@pytest.mark.parametrize("fraction,text", [
    (0.0, "0%"),
    (0.0023, "0.23%"),  # would read 0%: two digits
    (2e-7, "2e-05%"),
    (0.006, "1%"),
    (0.91, "91%"),
    (0.994, "99%"),  # rounds to 99%: which side of 100% is clear
    (0.996, "99.6%"),  # would round to 100%: one decimal
    (1.0, "100%"),
    (1.004, "100.4%"),
    (1.006, "101%"),
    (1.25, "125%"),
])
def test_percent(fraction, text):
    assert percent(fraction) == text


@pytest.mark.parametrize("fraction", [0.9996, 0.99999, 1.00001, 1.0004])
def test_percent_near_100_always_shows_the_side(fraction):
    shown = float(percent(fraction).rstrip("%"))
    assert shown != 100
    assert (shown < 100) == (fraction < 1)


def test_suggest_names_the_closest_known_key_or_nothing():
    known = ("max_mflops", "max_gflops", "max_params", "device")
    assert suggest("max_mflop", known) == " (did you mean 'max_mflops'?)"
    assert suggest("max_param", known) == " (did you mean 'max_params'?)"
    assert suggest("devise", known) == " (did you mean 'device'?)"
    assert suggest("colour", known) == ""
    assert suggest("anything", ()) == ""


def test_layer_labels_and_shapes():
    assert (layer_label(""), layer_label("features.8")) == ("<model>", "features.8")
    assert shape_text([[1, 128, 256], [2, 1, 256]]) == "1x128x256"  # the first shape only
    assert (shape_text([]), shape_text([[]])) == ("-", "-")  # none, and a scalar


# --- access ---------------------------------------------------------------------------------

def tensor(numel: int, dtype: torch.dtype) -> SimpleNamespace:
    return SimpleNamespace(numel=numel, dtype=dtype)  # what pricing reads of a tensor


# 6 fp16 elements (12 bytes), 4 int64 indices (32 bytes), 3 bool mask elements (3 bytes)
def mixed() -> Access:
    return Access.of([tensor(6, torch.float16), tensor(4, torch.int64), tensor(3, torch.bool)])


def test_of_splits_floating_from_fixed_size_tensors():
    assert mixed() == Access(float_elems=6, float_bytes=12, fixed_bytes=35)  # 32 + 3


@pytest.mark.parametrize("dtype,nbytes", [
    (None, 47),  # own dtypes: 12 + 35
    ("fp32", 59),  # 6 x 4 + 35
    ("fp16", 47),  # 6 x 2 + 35
    ("bf16", 47),  # 6 x 2 + 35
    ("int8", 41),  # 6 x 1 + 35
])
def test_bytes_reprice_floating_point_only(dtype, nbytes):
    assert mixed().bytes(dtype) == nbytes


@pytest.mark.parametrize("dtype", [None, "fp32", "fp16", "bf16", "int8"])
def test_integer_tensors_keep_their_size_at_every_precision(dtype):
    # 10 int64 = 80 bytes, 5 int32 = 20, 7 uint8 = 7
    indices = Access.of([tensor(10, torch.int64), tensor(5, torch.int32), tensor(7, torch.uint8)])
    assert indices.bytes(dtype) == 107


def test_float64_is_repriced_too():
    wide = Access.of([tensor(6, torch.float64)])
    assert (wide.bytes(), wide.bytes("fp32"), wide.bytes("int8")) == (48, 24, 6)


def test_add_and_sub_are_per_field():
    a, b = Access(10, 40, 16), Access(4, 16, 8)
    assert a - b == Access(6, 24, 8)
    assert (a - b) + b == a
    assert (a - b).bytes("fp16") == 20  # 6 x 2 + 8
    assert a - a == ZERO_ACCESS
    assert ZERO_ACCESS.bytes("int8") == 0


def test_sized_prices_a_storage_not_its_view():
    # a 6-element view of a 48-byte storage: float storages re-price by element count
    assert Access.sized(6, 48, torch.float64) == Access(6, 48, 0)
    assert Access.sized(6, 48, torch.int64) == Access(0, 0, 48)


def test_an_atomic_write_through_a_link_keeps_the_link(tmp_path):
    # a baseline kept in a shared folder and linked from the project: saving writes the
    # shared file, and the link stays a link
    from pytest_flopbudget.core.files import atomic_write

    (tmp_path / "shared").mkdir()
    target = tmp_path / "shared" / "base.json"
    target.write_text("old")
    link = tmp_path / "base.json"
    link.symlink_to(target)
    atomic_write(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["base.json"]


def test_an_atomic_write_through_a_loop_of_links_names_it(tmp_path):
    from pytest_flopbudget.core.files import atomic_write

    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(OSError) as raised:
        atomic_write(tmp_path / "a", "x")
    assert "a" in str(raised.value.filename) and "loop" in str(raised.value)
