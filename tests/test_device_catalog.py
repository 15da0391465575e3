"""The built-in device catalog (pytest_flopbudget/devices.toml): every device resolves, every
figure names its source, and the generic ``npu`` reproduces seed 000 (an edge NPU spends almost
all of its time in a Bi-LSTM)."""

from __future__ import annotations

import re

import pytest
import torch
from reference_models import VibrationClassifier

from pytest_flopbudget import profile
from pytest_flopbudget.core.dtypes import DEPLOY_DTYPES
from pytest_flopbudget.core.op_classes import OP_CLASSES
from pytest_flopbudget.devices.catalog import Catalog, builtin_tables
from pytest_flopbudget.devices.device import KEYS

GENERIC = ("cpu", "gpu", "npu", "mcu")
NOT_FIGURES = ("description", "sources", "base")  # keys that need no source
#: figures given as tables (per dtype, per operator class or kind, per tile dimension)
TABLE_FIGURES = ("peak_flops", "efficiency", "overheads", "tile")
#: how a modelling choice must be labelled (a fitted figure names the rows it was fitted to)
MARKED = ("assumed:", "derived:", "unconfirmed:", "fitted to rows")

#: Every built-in table as the catalog reads it: devices.toml with fitted.toml laid over it.
RAW: dict[str, dict] = builtin_tables()
NAMES = sorted(RAW)


def figure_keys(table: dict) -> list[str]:
    """The sources keys a raw device table needs: one per figure, dotted for table figures."""
    keys = []
    for key, value in table.items():
        if key in NOT_FIGURES:
            continue
        if key in TABLE_FIGURES and isinstance(value, dict):
            keys += [f"{key}.{sub}" for sub in value]
        else:
            keys.append(key)
    return keys


@pytest.mark.parametrize("name", NAMES)
def test_builtin_device_resolves(name):
    device = Catalog.builtin().get(name)
    assert device.name == name
    assert device.peak() > 0  # default_dtype has a peak, so a profile with no dtype prices
    assert device.bandwidth > 0


@pytest.mark.parametrize("name", NAMES)
def test_every_figure_has_a_source(name):
    table = RAW[name]
    sources = table.get("sources", {})
    missing = [key for key in figure_keys(table) if not str(sources.get(key, "")).strip()]
    assert missing == []
    stale = sorted(set(sources) - set(figure_keys(table)))  # a source for no figure
    assert stale == []


@pytest.mark.parametrize("name", NAMES)
def test_modelling_choices_are_marked(name):
    # No public table of efficiency factors or per-operator overheads exists: each one must say
    # whether it is assumed, derived, unconfirmed or fitted to published measurements.
    sources = RAW[name].get("sources", {})
    keys = [k for k in figure_keys(RAW[name]) if k == "overhead" or k.startswith("efficiency.")]
    unmarked = [k for k in keys if not sources[k].startswith(MARKED)]
    assert unmarked == []


def test_generic_classes_and_named_devices():
    assert [g for g in GENERIC if g not in RAW] == []
    named = [n for n in NAMES if n not in GENERIC]
    assert len(named) >= 10, named
    badly_named = [n for n in NAMES if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n)]
    assert badly_named == []


@pytest.mark.parametrize("name", NAMES)
def test_table_shapes(name):
    table = RAW[name]
    assert [k for k in table if k not in KEYS] == []
    peaks = table["peak_flops"]
    assert isinstance(peaks, dict), "state each peak's precision: peak_flops.<dtype>"
    assert [d for d in peaks if d not in DEPLOY_DTYPES] == []
    assert table["default_dtype"] in peaks
    assert [c for c in table.get("efficiency", {}) if c not in OP_CLASSES] == []
    not_int_bytes = [k for k in ("onchip_bytes", "memory_bytes")
                     if k in table and (type(table[k]) is not int or table[k] <= 0)]
    assert not_int_bytes == []


def test_generic_npu_is_a_bandwidth_limited_edge_npu():
    npu = Catalog.builtin().get("npu")
    assert npu.default_dtype == "int8"
    assert npu.efficiency_of("recurrent") <= 0.25
    assert npu.efficiency_of("depthwise_conv") <= 0.25
    assert 1e-6 <= npu.overhead <= 50e-6  # some microseconds per operator
    assert npu.onchip_bytes < 128 * 512  # a 128x512 int8 LSTM weight matrix does not fit
    assert npu.ridge() > 100  # int8 OP per byte: most layers sit under the bandwidth slope


def test_seed_000_npu_time_is_in_the_bilstm():
    # Seed 000: an edge NPU spends ~98% of its time in the Bi-LSTM of this model. With the
    # catalog's npu (4 TOPS int8, 10 GB/s, 10 us/op, 48 KiB on chip, recurrent efficiency
    # 0.2): total 11.45 ms, LSTM 11.14 ms (2 directions x 128 steps, each re-reading its
    # 64.5 KiB of int8 weights), share 0.973.
    model = VibrationClassifier().eval()
    latency = profile(model, torch.zeros(1, 1, 1024)).latency("npu")
    lstm = latency.layer("lstm")
    assert lstm.share >= 0.9
    assert lstm.bound == "memory"
    assert 1.0 < latency.ms < 50.0
