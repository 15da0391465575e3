"""``calibrate``: every measurement's arithmetic with hand-computed numbers, the whole
calibration on a fake clock (:mod:`fake_calibration`: structural figures by hand, free figures
found again, passes, spread, noise), the file it writes, the command line.

Nothing here asserts on a timing: a shared machine's speed is not a test result. One real
calibration of a few rows, with one sample per row, is the smoke test.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import fake_calibration
import pytest
import torch
from fake_calibration import (
    FREE_TRUTH,
    FakeTimer,
    MiB,
    fake_calibrate,
    row_seconds,
    two_threads,
)
from fake_calibration import (
    fake_calibration as run_fake,
)

from pytest_flopbudget import __main__ as cli
from pytest_flopbudget import profile
from pytest_flopbudget.calibration import structure as structure_module
from pytest_flopbudget.calibration.calibrate import (
    AGREE_MEDIAN,
    AGREE_P90,
    Eager,
    agree,
    agreement,
    derive,
    fit_rows,
    median_over,
    percentile,
    run_calibration,
)
from pytest_flopbudget.calibration.fresh_pages import ShareCountError
from pytest_flopbudget.calibration.hostinfo import cpu_model, largest_cache, mem_total, parse_size
from pytest_flopbudget.calibration.microbench import rows
from pytest_flopbudget.calibration.structure import (
    cold_bandwidth_of,
    cold_counts,
    cold_half_bytes,
    cold_probes,
    cold_row_seconds_of,
    copy_bytes,
    effective_cache,
    fresh_outputs,
    fresh_shares,
    gemm_flops,
    half_rows_of,
    lowering_bytes,
    lowering_probe,
    packed_cold_counts,
    page_bytes,
    rate,
    share_of,
    stream_rate,
    sweep_buffers,
)
from pytest_flopbudget.calibration.timing import contention
from pytest_flopbudget.devices.catalog import Catalog
from pytest_flopbudget.devices.device import Device, DeviceError
from pytest_flopbudget.devices.device_file import HOST, device_toml, load_host, load_host_device

pytest.importorskip("scipy")

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# --- pure arithmetic ----------------------------------------------------------------------
def test_gemm_flops_is_2n3() -> None:
    assert gemm_flops(2048) == 2 * 2048**3 == 17_179_869_184
    assert gemm_flops(1) == 2
    # (n x k) @ (k x m): 2 n m k
    assert gemm_flops(4, m=3, k=2) == 48


def test_streaming_rates_count_the_bytes_each_kernel_moves() -> None:
    # a 128 MiB copy reads and writes 128 MiB: 256 MiB moved
    assert copy_bytes(128 << 20) == 256 << 20
    assert rate(copy_bytes(128 << 20), 0.0125) == pytest.approx(21_474_836_480)
    # add reads two buffers and writes one: 3 x 1 MiB in 1 ms; sum reads one
    assert stream_rate("add", MiB, 1e-3) == pytest.approx(3_145_728_000)
    assert stream_rate("sum", MiB, 1e-3) == pytest.approx(1_048_576_000)
    assert stream_rate("copy", MiB, 1e-3) == pytest.approx(2_097_152_000)
    with pytest.raises(ValueError):
        rate(1e9, 0.0)


def test_the_cache_holds_the_largest_footprint_still_streamed_near_its_speed() -> None:
    # cut: the geometric mean of 1e12 and 1e10 = 1e11
    footprints = [(2 * MiB, 1e12), (8 * MiB, 9e11), (16 * MiB, 2e11), (32 * MiB, 9e10),
                  (64 * MiB, 5e11)]  # a fast big one after a slow one does not count
    assert effective_cache(footprints, 1e12, 1e10, 32 * MiB) == 16 * MiB
    # never more than the largest cache, never less than the smallest footprint
    assert effective_cache(footprints, 1e12, 1e10, 4 * MiB) == 4 * MiB
    assert effective_cache([(2 * MiB, 1e9)], 1e12, 1e10, 32 * MiB) == 2 * MiB
    # sweep buffers: 1/32 of the cache to the whole cache, doubling
    assert sweep_buffers(32 * MiB) == [MiB, 2 * MiB, 4 * MiB, 8 * MiB, 16 * MiB, 32 * MiB]


def test_fresh_outputs_from_the_size_whose_every_larger_clone_pays_page_faults() -> None:
    # (bytes, in-place copy s, clone s): 8 MiB 2x (a cache miss), 16 MiB 4x, 32 MiB 5x,
    # 64 MiB: 1 ms + 16 ms: the threshold is 16 MiB, the rate 64 MiB / 16 ms = 4,194,304,000
    pairs = [(8 * MiB, 1e-4, 2e-4), (16 * MiB, 2e-4, 8e-4), (32 * MiB, 4e-4, 2e-3),
             (64 * MiB, 1e-3, 17e-3)]
    assert fresh_outputs(pairs) == (16 * MiB, pytest.approx(4_194_304_000))
    # a size below the ratio above the threshold breaks the run
    pairs[2] = (32 * MiB, 4e-4, 8e-4)
    assert fresh_outputs(pairs)[0] == 64 * MiB  # type: ignore[index]
    assert fresh_outputs([(8 * MiB, 1e-4, 2e-4)]) is None


def test_half_rows_from_a_few_rows_and_many() -> None:
    # 16 rows in 24 us, 1024 rows in 1032 us: q = 24 / 1032; (1024 q - 16) / (1 - q) =
    # (24,576 - 16,512) / 1,008 = 8 rows
    assert half_rows_of(24e-6, 1032e-6) == pytest.approx(8.0)
    # the few rows take no more than their share (16 / 1024 of the time): no fixed cost
    assert half_rows_of(16e-6, 1024e-6) == 0.0
    assert half_rows_of(2e-3, 1e-3) == 0.0


def test_cold_weights_cost_the_extra_seconds_per_weight_row() -> None:
    # half from memory at 8 copies: those from 12 copies up are all from memory; the median of
    # 100.8, 110 and 90 us is 100.8 us, 24 us on one weight matrix: 76.8 us over the 768
    # weight rows, 0.1 us a row (2 copies, mostly in the cache, are left out)
    mib = 2_359_296
    cycled = [(2 * mib, 30e-6), (12 * mib, 100.8e-6), (16 * mib, 110e-6), (56 * mib, 90e-6)]
    assert cold_row_seconds_of(24e-6, cycled, 8 * mib) == pytest.approx(1e-7)
    # no half point: the last alone, (90 - 24) us / 768 rows
    assert cold_row_seconds_of(24e-6, cycled, 0) == pytest.approx(66e-6 / 768)
    assert cold_row_seconds_of(24e-6, [(2 * mib, 48e-6)], 0, weight_rows=240) == \
        pytest.approx(1e-7)
    # not slower from memory: no figure
    assert cold_row_seconds_of(24e-6, [(56 * mib, 23e-6)], 0) == 0.0


def test_weights_fetched_from_memory_move_at_the_matrix_bytes_over_the_extra_seconds() -> None:
    # a 2.25 MiB weight matrix (2,359,296 bytes); half from memory at 24 copies: the chains
    # from 1.5 x 24 = 36 copies up (36, 43 and the last, 56) are all from memory, per linear
    # 95, 92 and 100 us against 46 us on one matrix held in the cache: the median 95 us is
    # 49 us more, 2,359,296 / 49e-6 = 48.15 GB/s (the 18-copy chain, half in the cache, is
    # left out)
    mib = 2_359_296
    chains = [(18 * mib, 70e-6), (36 * mib, 95e-6), (43 * mib, 92e-6), (56 * mib, 100e-6)]
    assert cold_bandwidth_of(46e-6, chains, 24 * mib) == pytest.approx(2_359_296 / 49e-6)
    # half at 30 copies: only the last (56) from 45 up, 54 us more: 43.69 GB/s
    assert cold_bandwidth_of(46e-6, chains, 30 * mib) == pytest.approx(2_359_296 / 54e-6)
    # not slower from memory: no figure
    assert cold_bandwidth_of(46e-6, [(56 * mib, 45e-6)], 0) == 0.0


def test_a_runtime_that_packs_weights_once_chains_them_beyond_the_cache() -> None:
    # a 32 MiB cache and 2,359,296-byte matrices: 1/2, 1, 5/4, 3/2, 7/4, 2, 5/2, 3 of
    # 33,554,432 bytes are 7.1, 14.2, 17.8, 21.3, 24.9, 28.4, 35.6, 42.7 matrices, rounded
    # 7, 14, 18, 21, 25, 28, 36, 43; four times the cache, 134,217,728 bytes, 56.9: 56
    assert packed_cold_counts(32 << 20) == (7, 14, 18, 21, 25, 28, 36, 43, 56)
    # the eager probes stop at the cache itself: 1/8 .. 1 of it, then four times it
    assert cold_counts(32 << 20) == (2, 4, 5, 7, 11, 14, 56)


def test_the_half_cold_weights_are_interpolated() -> None:
    # one copy in 24 us; 2, 4, 6, 8, 12 copies of 2,359,296 bytes and 56 (all from memory):
    # shares 0, 0.1, 0.3, 0.7, 1 of the 76.8 us more of the last; half between 6 copies
    # (14,155,776 bytes, 0.3) and 8 (18,874,368, 0.7): 14,155,776 + 0.5 x 4,718,592
    mib = 2_359_296
    cycled = [(2 * mib, 24e-6), (4 * mib, 31.68e-6), (6 * mib, 47.04e-6), (8 * mib, 77.76e-6),
              (12 * mib, 100.8e-6), (56 * mib, 100.8e-6)]
    assert cold_half_bytes(24e-6, cycled) == 16_515_072
    # a share that falls back (noise) counts as the larger one before it: 6 copies 0.3,
    # 8 copies 0.2 -> 0.3, 12 copies 0.9: between 8 (0.3) and 12 (0.9), a third of the way:
    # 18,874,368 + 9,437,184 / 3 = 22,020,096
    noisy = [(6 * mib, 47.04e-6), (8 * mib, 39.36e-6), (12 * mib, 93.12e-6),
             (56 * mib, 100.8e-6)]
    assert cold_half_bytes(24e-6, noisy) == 22_020_096
    # the first cycle already half cold: from (0, 0) to (2 copies, 0.8): 5/8 of 4,718,592
    assert cold_half_bytes(24e-6, [(2 * mib, 85.44e-6), (56 * mib, 100.8e-6)]) == 2_949_120
    # the last not slower than one copy: no figure
    assert cold_half_bytes(24e-6, [(2 * mib, 20e-6), (56 * mib, 24e-6)]) == 0


def test_the_cold_probes_cycle_through_one_pool_of_copies(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # a 32 MiB cache: copies of 2,359,296 bytes filling 1/8 to all of it, 1.78, 3.56, 5.33,
    # 7.11, 10.67 and 14.22 rounded (at least 2), then 128 MiB // 2,359,296 = 56 copies
    assert cold_counts(32 * MiB) == (2, 4, 5, 7, 11, 14, 56)
    # a 1 MiB cache: at least 2 copies, once; 64 MiB (the least DRAM buffer) // 2.25 MiB = 28
    assert cold_counts(MiB) == (2, 28)
    probes = cold_probes(32 * MiB)
    assert [p.what for p in probes][::6] == [
        "linear 16 rows x 768 -> 768, weights cycled over 2 copies (4.5 MiB)",
        "linear 16 rows x 768 -> 768, weights cycled over 56 copies (126 MiB)"]
    seen: list[tuple[tuple[int, ...], tuple[int, ...], int]] = []
    monkeypatch.setattr(torch.nn.functional, "linear", lambda x, w: seen.append(
        (tuple(x.shape), tuple(w.shape), w.data_ptr())))
    for _ in range(3):
        probes[0].run()  # 2 copies: the first, the second, the first again
    probes[1].run()  # 4 copies: starts at the same pool's first
    assert [s[:2] for s in seen] == [((16, 768), (768, 768))] * 4
    first, second, third, fourth = (s[2] for s in seen)
    assert first != second and third == first and fourth == first


def test_the_fresh_share_starts_at_the_first_size_that_pays() -> None:
    # 4 MiB 0.5% (under 2%), 8 MiB 10%, 16 MiB 30%: from 8 MiB, (0.1 + 0.3) / 2 = 0.2
    shares = [(16 * MiB, 0.3), (4 * MiB, 0.005), (8 * MiB, 0.1)]
    assert share_of(shares) == (8 * MiB, pytest.approx(0.2))
    assert share_of([(4 * MiB, 0.0), (8 * MiB, 0.01)]) is None


def test_fresh_shares_count_page_faults_over_the_bytes_written() -> None:
    # a fake fault counter: 256 faults (1 MiB of 4 KiB pages) per counted stretch of runs,
    # whatever the chain; 4 MiB chains of blocks of 0 to 3 operators over 1 run write
    # 4 blocks x (inner + 1) x 4 MiB: 16, 32, 48 and 64 MiB; 1 MiB of each is fresh: shares
    # 1/16, 1/32, 1/48, 1/64, mean (0.0625 + 0.03125 + 0.0208333 + 0.015625) / 4 = 0.0325521
    counts = iter(range(0, 1_000_000, 256))  # before and after each stretch: 256 apart
    page = page_bytes()
    got = fresh_shares([4 * MiB], runs=1, faults=lambda: next(counts) * 4096 // page)
    assert got == [(4 * MiB, pytest.approx(0.0325521, rel=1e-5))]


def test_fresh_shares_take_the_runs_of_a_counting_process_by_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the fallback count (in the calibration's own process) calls fresh_shares() with no
    # runs: it takes the counting processes' 3 runs after 2 warm-ups, for each of the 4
    # chains (blocks of 0 to 3 operators): 4 x (2 + 3) = 20 chains of one 4 MiB size
    calls: list[int] = []
    monkeypatch.setattr(structure_module, "residual_chain",
                        lambda x, inner: calls.append(inner))
    fresh_shares([4 * MiB], faults=lambda: 0)
    assert calls == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5


def test_the_lowering_probe_writes_a_known_column_matrix() -> None:
    # 8 channels x 27 (3x3x3) rows by 16 x 32 x 32 = 16,384 positions, 4 bytes each:
    # 14,155,776 bytes; PyTorch lowers the probe (it is what it measures)
    assert lowering_bytes() == 14_155_776
    probe = lowering_probe()
    assert probe.what == "lowered conv3d 8->1 at 16x32x32"
    x = torch.randn(1, 8, 16, 32, 32)
    conv = torch.nn.Conv3d(8, 1, 3, padding=1, bias=False)
    [rec] = [r for r in profile(conv, x).records if r.op == "aten.conv3d"]
    assert rec.lowered * 4 == 14_155_776


def test_passes_agree_on_the_median_and_nine_rows_in_ten() -> None:
    # changes: 0, 0.02, 0.04, ..., 0.18 (10 rows): median 0.09, 90th percentile 0.162
    before = [1.0] * 10
    after = [1.0 + 0.02 * i for i in range(10)]
    median, p90 = agreement(before, after)
    assert median == pytest.approx(0.09)
    assert p90 == pytest.approx(0.162)
    assert (AGREE_MEDIAN, AGREE_P90) == (0.05, 0.20)
    assert not agree(before, after)  # median 9% > 5%
    assert agree(before, [1.0] * 9 + [1.5])  # one row in ten may move a lot
    assert not agree(before, [1.0] * 8 + [1.5, 1.5])
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert median_over([[1.0, 4.0], [3.0, 2.0], [2.0, 9.0]]) == [2.0, 4.0]


def test_an_eager_calibration_names_the_openmp_wait_policy_it_ran_under(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    plain = Eager().describe()
    assert plain == f"eager PyTorch {torch.__version__}, {torch.get_num_threads()} threads"
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    assert Eager().describe() == plain + ", OMP_WAIT_POLICY=active"
    monkeypatch.setenv("OMP_WAIT_POLICY", " ")
    assert Eager().describe() == plain


def test_derived_entries_stand_for_operators_no_row_runs() -> None:
    found = derive({"compute_efficiency.aten.gelu": 0.5, "compute_efficiency.aten.exp": 0.125,
                    "overheads.aten.lstm": 4e-6, "overheads.aten.gru": 8e-6,
                    "overheads.conv": 20e-6})
    # geometric mean of 0.5 and 0.125 = 0.25; recurrent: median of 4 and 8 us
    assert found["compute_efficiency.transcendental"][0] == pytest.approx(0.25)
    assert found["overheads.recurrent"][0] == pytest.approx(6e-6)
    # default overhead: median of 4, 8, 20 us
    assert found["overhead"][0] == pytest.approx(8e-6)
    assert "compute_efficiency.attention" not in found


def test_the_default_overhead_leaves_out_what_a_recurrent_layer_pays_once_a_call() -> None:
    found = derive({"overheads.aten.lstm": 1e-6, "overheads.conv": 20e-6,
                    "overheads.elementwise": 2e-6, "overheads.aten.lstm.input_projection": 9e-5,
                    "overheads.aten.gru.input_projection": 3e-5})
    # median of the per-operator 1, 2 and 20 us (with the per-call 30 and 90 us it would be
    # 20 us)
    assert found["overhead"][0] == pytest.approx(2e-6)
    # nor oneDNN's fixed cost per convolution
    found = derive({"overheads.elementwise": 2e-6, "overheads.conv": 20e-6,
                    "overheads.aten.mkldnn_convolution": 6e-5})
    assert found["overhead"][0] == pytest.approx(11e-6)  # median of 2 and 20 us


def test_the_tiny_recurrent_rows_split_a_calls_cost_from_its_steps() -> None:
    # LSTM(4, 4) over 64 steps and over 8 on a device of 1e13 FLOP/s and 1e12 B/s that runs the
    # input projection as a kernel of its own: the fake machine pays 90 us once a call and 1 us
    # a step, 90 + 64 x 1 = 154 us and 90 + 8 x 1 = 98 us (the layer's arithmetic and bytes,
    # 4 gates x 4 x 4 = 64 recurrent and 64 input MACs a step, 160 weights of 4 bytes, take
    # nanoseconds on this device: under 0.1% of either row)
    by_name = {b.what: b for b in rows()}
    benches = [by_name["tiny lstm 4->4, 64 steps"], by_name["tiny lstm 4->4, 8 steps"]]
    with two_threads():
        profiles = [profile(b.module, *b.inputs, trace="fake") for b in benches]
    device = Device("d", 1e13, 1e12, batched_input_projection=True)
    found = fit_rows(device, benches, profiles, [154e-6, 98e-6],
                     ["overheads.aten.lstm", "overheads.aten.lstm.input_projection"])
    assert found.figures["overheads.aten.lstm"] == pytest.approx(1e-6, rel=1e-2)
    assert found.figures["overheads.aten.lstm.input_projection"] == pytest.approx(9e-5,
                                                                                 rel=1e-3)
    assert [b.family for b in benches] == ["overhead", "overhead"]


def test_a_row_timed_with_its_weights_from_memory_is_priced_so() -> None:
    # linear 16 x 768 -> 768: 2 x 16 x 768 x 768 + 16 x 768 = 18,886,656 FLOPs (188.86656 us
    # at 1e11 FLOP/s), 98,304 bytes of activations (9.8304 us at 1e10 B/s) and 2,362,368 of
    # weights (236.2368 us); weights fetched at 1e10 B/s, half from memory at 64 MiB (a
    # footprint of about 2.4 MB keeps them all)
    bench = next(b for b in rows() if b.what == "linear 16x768 -> 768")
    with two_threads():
        prof = profile(bench.module, *bench.inputs, trace="fake")
    device = Device("d", 1e11, 1e10, cold_weight_bandwidth=1e10, cold_weight_bytes=64 << 20)
    # measured: a ceiling of 0.8 with the weights fetched first,
    # 188.86656 / 0.8 + 236.2368 = 472.32 us
    measured = [472.32e-6]
    cold = fit_rows(device, [bench], [prof], measured, ["compute_efficiency.matmul"], [True])
    # before the fit: 188.86656 + 236.2368 = 425.10336 us (the activations under the compute)
    assert cold.rows[0][1] == pytest.approx(425.10336e-6)
    assert cold.figures["compute_efficiency.matmul"] == pytest.approx(0.8, rel=1e-3)
    # not flagged, the cache keeps its weights: max(188.86656 / c, 246.0672) = 472.32 us
    # takes c = 188.86656 / 472.32 = 0.39987
    warm = fit_rows(device, [bench], [prof], measured, ["compute_efficiency.matmul"])
    assert warm.rows[0][1] == pytest.approx(246.0672e-6)
    assert warm.figures["compute_efficiency.matmul"] == pytest.approx(0.39987, rel=1e-3)
    with pytest.raises(ValueError, match="2 cold flags for 1 rows"):
        fit_rows(device, [bench], [prof], measured, ["compute_efficiency.matmul"],
                 [True, False])


def test_rows_timed_again_and_again_pay_no_fresh_pages_below_the_mmap_size() -> None:
    # relu of 24 MiB (6,291,456 floats): 50,331,648 bytes at 1e10 B/s, 5.0332 ms; its
    # 25,165,824-byte output is at least fresh_share_bytes (4 MiB) and below
    # fresh_output_bytes (32 MiB): a model pays 0.3 of it at 4e9 B/s, 1.8874 ms
    bench = next(b for b in rows() if b.what == "relu of 24 MiB")
    with two_threads():
        prof = profile(bench.module, *bench.inputs, trace="fake")
    device = Device("d", 1e15, 1e10, fresh_output_bytes=32 << 20, fresh_output_bandwidth=4e9,
                    fresh_share_bytes=4 << 20, fresh_output_share=0.3)
    free = ["efficiency.elementwise"]
    model_like = fit_rows(device, [bench], [prof], [5.0332e-3], free)
    assert model_like.rows[0][1] == pytest.approx(6.9206e-3, rel=1e-4)
    # timed on its own in a loop, its output lands in the block the last call freed: the
    # roofline alone, 5.0332 ms, and the fit finds the efficiency at 1
    alone = fit_rows(device, [bench], [prof], [5.0332e-3], free, repeated=True)
    assert alone.rows[0][1] == pytest.approx(5.0332e-3, rel=1e-4)
    assert alone.figures["efficiency.elementwise"] == pytest.approx(1.0, rel=1e-3)
    assert Eager.rows_repeated


def test_contention_fraction() -> None:
    assert contention(0.01, 0.1) == pytest.approx(0.1)
    assert contention(None, 0.1) == 0.0
    assert contention(-0.001, 0.1) == 0.0


@pytest.mark.parametrize(("text", "expected"), [
    ("32K", 32 * 1024), ("32768K\n", 32 << 20), ("8M", 8 << 20), ("1G", 1 << 30),
    ("1048576", 1 << 20),
])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def _cache(root: Path, index: int, level: int, kind: str, size: str) -> None:
    d = root / f"index{index}"
    d.mkdir(parents=True)
    (d / "level").write_text(f"{level}\n")
    (d / "type").write_text(f"{kind}\n")
    (d / "size").write_text(f"{size}\n")


def test_largest_cache_reads_sysfs(tmp_path: Path) -> None:
    _cache(tmp_path, 0, 1, "Data", "32K")
    _cache(tmp_path, 1, 1, "Instruction", "32K")
    _cache(tmp_path, 2, 2, "Unified", "512K")
    _cache(tmp_path, 3, 3, "Unified", "16384K")
    size, text = largest_cache(tmp_path)  # type: ignore[misc]
    assert size == 16 << 20
    assert "index3" in text and "L3" in text
    assert largest_cache(tmp_path / "missing") is None


def test_mem_total_and_cpu_model(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24683656 kB\nMemFree:  1 kB\n")
    assert mem_total(meminfo) == 24683656 * 1024
    assert mem_total(tmp_path / "missing") is None
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU @ 3.0GHz\n")
    assert cpu_model(cpuinfo) == "Some CPU @ 3.0GHz"


def test_device_toml_round_trips(tmp_path: Path) -> None:
    table = {
        "description": 'a "quoted" name, a backslash \\ and ü',
        "bandwidth": 2.5e10,
        "overhead": 7e-06,
        "onchip_bytes": 33554432,
        "peak_flops": {"fp32": 1.2e11},
        "efficiency": {"conv": 0.5, "data": 1.0},
        "sources": {"peak_flops": "measured: x", "efficiency.conv": "measured: y"},
    }
    text = device_toml("host", table, header="line one\nline two")
    assert tomllib.loads(text)["devices"]["host"] == table
    path = tmp_path / "host.toml"
    path.write_text(text)
    assert load_host(path) == {"host": table}


def test_load_host_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text("[devices.cpu]\nbandwidth = 1.0\n")
    with pytest.raises(DeviceError, match=r"other\.toml.*devices\.host"):
        load_host(path)
    path.write_text("not toml = = =")
    with pytest.raises(DeviceError, match="not valid TOML"):
        load_host(path)


# --- the fake machine ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("calibration") / "nested" / "host.toml"
    lines: list[str] = []
    timer = FakeTimer()
    result = run_fake(path, log=lines.append, timer=timer)
    return {"path": path, "result": result, "lines": lines, "timer": timer}


def test_structural_figures_are_work_over_the_fake_seconds(fake: dict[str, Any]) -> None:
    device = fake["result"].device
    assert device.peak("fp32") == 1e13  # 17,179,869,184 FLOPs in 1.7179869184 ms
    assert device.bandwidth == 1.25e11  # the add: 3 x 128 MiB in 3.221225472 ms
    assert device.onchip_bandwidth == 1e12  # the copy: 2 x 2 MiB in 4.194304 us
    assert device.onchip_bytes == 16 * MiB  # 8 MiB copied at 9e11 >= 3.5355e11; 16 MiB not
    assert device.fresh_output_bytes == 32 * MiB
    assert device.fresh_output_bandwidth == 4e9  # 64 MiB in 16.777216 ms more than a copy
    # no chain size writes 2% of its bytes to fresh pages: no share
    assert device.fresh_output_share is None and device.fresh_share_bytes == 0
    assert device.lowering_bandwidth == 5e9  # 14,155,776 column bytes in 2.8311552 ms
    assert device.half_rows == 8.0  # 16 rows in 24 us, 1024 rows in 1032 us
    # 16 rows on 11, 14 and 56 weight copies: a median 100.8 us, 76.8 us more, over 768
    # weight rows
    assert device.cold_weight_row_seconds == pytest.approx(1e-7)
    # half from memory between 5 copies (0.3) and 7 (0.7) of 2,408,448 bytes a call
    assert device.cold_weight_bytes == 14_450_688
    assert device.memory_bytes == fake_calibration.MEMORY_BYTES
    assert device.fusion == "none" and device.default_dtype == "fp32"


def test_a_fresh_page_share_is_counted_into_the_file(tmp_path: Path) -> None:
    # the twelve processes count, by turns, 0% and 0% (4 MiB), 5% and 15% (8 MiB), 10% and
    # 50% (16 MiB) of the chains' bytes in fresh pages: means 0%, 10%, 30%; from 8 MiB,
    # (0.1 + 0.3) / 2 = 0.2
    low = [(4 * MiB, 0.0), (8 * MiB, 0.05), (16 * MiB, 0.1)]
    high = [(4 * MiB, 0.0), (8 * MiB, 0.15), (16 * MiB, 0.5)]
    asked: list[tuple[int, ...]] = []

    def counts(seeds: tuple[int, ...]) -> list[list[tuple[int, float]]]:
        asked.append(seeds)
        return [low if i % 2 == 0 else high for i in range(len(seeds))]

    device = run_fake(tmp_path / "h.toml", log=lambda _: None, counts=counts).device
    assert asked == [tuple(range(1, 13))]
    assert device.fresh_share_bytes == 8 * MiB
    assert device.fresh_output_share == pytest.approx(0.2)
    source = device.sources["fresh_output_share"]
    assert source.startswith("counted: ")
    assert "counted in 12 fresh processes, hash seeds 1 to 12 (per process: " in source
    assert "8 MiB: " + ", ".join(["0.050, 0.150"] * 6) + "; 16 MiB: 0.100, 0.500" in source


def test_a_quick_calibration_counts_in_two_processes(tmp_path: Path) -> None:
    asked: list[tuple[int, ...]] = []

    def counts(seeds: tuple[int, ...]) -> list[list[tuple[int, float]]]:
        asked.append(seeds)
        return [[(4 * MiB, 0.0), (8 * MiB, 0.1), (16 * MiB, 0.3)]] * len(seeds)

    device = run_fake(tmp_path / "h.toml", log=lambda _: None, counts=counts,
                      quick=True).device
    assert asked == [(1, 2)]
    assert "counted in 2 fresh processes, hash seeds 1 to 2" in (
        device.sources["fresh_output_share"])


def test_a_failed_counting_process_falls_back_to_this_one_and_says_so(
        tmp_path: Path) -> None:
    # the counting processes fail; this process counts 0%, 10%, 30%: from 8 MiB, 0.2
    def failed(seeds: object = ()) -> list[list[tuple[int, float]]]:
        raise ShareCountError("the counting process (hash seed 1) exited with 1: boom")

    shares = [(4 * MiB, 0.0), (8 * MiB, 0.1), (16 * MiB, 0.3)]
    lines: list[str] = []
    device = run_fake(tmp_path / "h.toml", log=lines.append, counts=failed,
                      shares=shares).device
    assert device.fresh_share_bytes == 8 * MiB
    assert device.fresh_output_share == pytest.approx(0.2)
    assert "this process only (the counting process (hash seed 1) exited with 1: boom)" in (
        device.sources["fresh_output_share"])
    assert any("exited with 1: boom; counting in this process instead" in line
               for line in lines)


def test_the_rows_are_priced_as_computed_by_hand() -> None:
    # relu of 256 KiB: 65,536 floats read and written, 524,288 bytes in the 16 MiB cache at
    # 1e12 B/s: 0.524288 us; its 65,536 FLOPs at 1e13 x compute_efficiency.arithmetic 0.005:
    # 1.31072 us, the larger; / efficiency.arithmetic 0.8 = 1.6384 us; + the elementwise
    # overhead 2 us
    assert row_seconds("relu of 256 KiB") == pytest.approx(3.6384e-6)
    # relu of 24 MiB: 50,331,648 bytes, of which the cache keeps 16 / 48: 16,777,216 bytes at
    # 1e12 (16.777216 us; / efficiency 0.8 = 20.97152 us) and 33,554,432 from memory at
    # 1.25e11 (268.435456 us, which no efficiency slows): 289.406976 us, more than its
    # 6,291,456 FLOPs at 5e10 (125.82912 us; / 0.8 = 157.2864 us);
    # its 24 MiB output is below the 32 MiB fresh-output threshold; + 2 us
    assert row_seconds("relu of 24 MiB") == pytest.approx(291.406976e-6)
    # conv 3x3 64->64 at 24x24: 24 x 24 x 64 x 64 x 9 = 21,233,664 MACs, 42,467,328 FLOPs at
    # 1e13 x compute_efficiency 0.5 x its 576 rows (output positions) / (576 + half_rows 8):
    # 8.4934656 us x 584 / 576 = 8.6114304 us; its memory (0.294912 us of activations in the
    # cache, 147,456 weight bytes at 1.25e11: 1.179648 us) is less; PyTorch does not lower it
    # (its input, 36,864 floats, is above 20,480): it runs it through oneDNN, + 60 us
    assert row_seconds("conv 3x3 64->64 at 24x24") == pytest.approx(68.6114304e-6)
    # tiny conv 5x5 4->4 at 4x4: a kernel wider than 3 both ways, so PyTorch runs it through
    # oneDNN: 60 us each; its work (16 x 4 x 4 x 25 = 6,400 MACs, 4 x 4 x 4 floats in and
    # out, 4 x 4 x 25 = 400 weights and 4 biases) takes nanoseconds (under 0.1% of that):
    # 24 x 60 us
    assert row_seconds("tiny conv 5x5 4->4 at 4x4") == pytest.approx(1440e-6, rel=1e-3)
    # tiny relu: 24 ReLUs of 16 floats, 2 us each; their bytes take 3 ns in all
    assert row_seconds("tiny relu") == pytest.approx(48e-6, rel=1e-3)


def test_the_fit_finds_the_fake_machines_free_figures(fake: dict[str, Any]) -> None:
    figures = fake["result"].fit.figures
    assert set(figures) == set(FREE_TRUTH)
    for figure, value in FREE_TRUTH.items():
        assert figures[figure] == pytest.approx(value, rel=1e-3), figure
    device = fake["result"].device
    assert device.compute_efficiency["conv3x3"] == 0.5
    assert device.overheads["conv"] == pytest.approx(1e-5, rel=1e-3)
    assert device.overheads["aten.mkldnn_convolution"] == pytest.approx(6e-5, rel=1e-3)
    # derived: the default overhead is the median of the fitted ones per operator (2, 9 and
    # 10 us; oneDNN's 60 us a convolution is not one), the transcendental ceiling the
    # geometric mean of the operators' (gelu's alone here)
    assert device.overhead == pytest.approx(9e-6, rel=1e-3)
    assert device.compute_efficiency["transcendental"] == pytest.approx(0.02, rel=1e-3)
    assert fake["result"].fit.summary()[1] < 1e-3  # every row within 0.1%


def test_two_passes_that_agree_end_the_measuring(fake: dict[str, Any]) -> None:
    result = fake["result"]
    assert len(result.passes) == 2 and result.agreed and not result.noisy
    timer = fake["timer"]
    # pass 1 and pass 2, each: 27 structural kernels (gemm; copy, add, sum at 128 MiB and
    # 2 MiB; copies of 1 to 32 MiB but 2 MiB; copies and clones of 8 to 64 MiB, some shared;
    # the lowered conv3d, the linears of 16 and 1024 rows and the linear of 16 rows cycling
    # through 2, 4, 5, 7, 11, 14 and 56 weight copies) and the 14 rows, each timed with the
    # full plan: 5 samples of at least 10 ms, 2 warm-ups
    assert len(timer.calls) == 2 * (27 + 14)
    assert {c[1:] for c in timer.calls} == {(5, 2, 0.01)}


def test_every_figure_has_a_source(fake: dict[str, Any]) -> None:
    device = fake["result"].device
    sources = device.sources
    figures = {"peak_flops.fp32", "bandwidth", "onchip_bandwidth", "onchip_bytes",
               "fresh_output_bytes", "fresh_output_bandwidth", "lowering_bandwidth",
               "half_rows", "cold_weight_row_seconds", "cold_weight_bytes", "memory_bytes",
               "fusion", "batched_input_projection",
               "default_dtype", "overhead", *FREE_TRUTH, "compute_efficiency.transcendental"}
    assert set(sources) == figures
    # eager PyTorch runs a recurrent layer's input projection as one linear before the steps
    assert device.batched_input_projection is True
    assert "FullLayer in aten/src/ATen/native/RNN.cpp" in sources["batched_input_projection"]
    for figure, text in sources.items():
        assert text.startswith(("measured: ", "fitted: ", "derived: ", "read from ",
                                "counted: ")), figure
    assert "2048x2048 fp32 GEMM" in sources["peak_flops.fp32"]
    assert "median over 2 passes of the median of 5 samples" in sources["bandwidth"]
    assert "here add 128 MiB" in sources["bandwidth"]
    assert "Fake CPU @ 1.00GHz" in sources["bandwidth"]
    # a fitted figure names the rows that price with it
    conv = sources["overheads.conv"]
    assert conv.startswith("fitted: robust least squares on the relative error of 14 rows")
    assert "tiny conv 3x3 4->4 at 4x4" in conv and "relu" not in conv
    # the convolutions PyTorch runs through oneDNN price with that path's overhead
    onednn = sources["overheads.aten.mkldnn_convolution"]
    assert "conv 3x3 64->64 at 24x24" in onednn and "tiny conv 5x5 4->4 at 4x4" in onednn
    assert "conv 3x3 64->64" not in conv and "tiny conv 3x3" not in onednn
    assert sources["overhead"].startswith("derived: median of the fitted overheads")


def test_the_file_says_how_stable_it_was_and_lists_the_residuals(fake: dict[str, Any]) -> None:
    path = fake["path"]
    assert [p.name for p in path.parent.iterdir()] == ["host.toml"]  # written atomically
    text = path.read_text()
    assert "# Stable: passes 1 and 2 agreed (rows changed by a median 0.0%, 9 in 10 within " \
           "0.0%)." in text
    assert "# tiny gelu" in text and "# median |error| 0.0%, worst 0.0%" in text
    device = load_host_device(path)
    assert device.to_dict() == fake["result"].device.to_dict()
    assert Catalog.builtin().with_tables(load_host(path), "host.toml").get(HOST).name == HOST
    assert any(str(path) in line for line in fake["lines"])


def test_passes_go_on_until_two_agree_and_the_spread_is_in_the_sources(
        tmp_path: Path) -> None:
    # the machine runs 20% slower from the second pass on, probes and rows: passes 1 and 2
    # differ by 20% (not agreed), 2 and 3 agree; each probe and row takes the median over the
    # passes, 1.2 x its time
    lines: list[str] = []
    result = run_fake(tmp_path / "h.toml", timer=FakeTimer((1.0, 1.2, 1.2), probes=True),
                      log=lines.append)
    assert len(result.passes) == 3 and result.agreed
    assert "pass 2 against pass 1: rows changed by a median 20.0%, 9 in 10 within 20.0%: " \
           "not yet agreed" in lines
    figures = result.fit.figures
    # 1.2 x slower as a whole: the peak, the bandwidths, the rates of fresh outputs and of
    # lowering / 1.2, the cost of a weight row from memory x 1.2, so every roofline term is
    # 1.2 x the truth's; the overheads 1.2 x, the efficiencies and ceilings the truth's
    expected = {"overheads.conv": 12e-6, "overheads.elementwise": 2.4e-6,
                "overheads.aten.gelu": 10.8e-6, "overheads.aten.mkldnn_convolution": 72e-6,
                "compute_efficiency.conv3x3": 0.5, "compute_efficiency.conv2d": 0.4,
                "compute_efficiency.pointwise_conv": 0.25,
                "efficiency.arithmetic": 0.8, "efficiency.transcendental": 0.9,
                "compute_efficiency.aten.gelu": 0.02}
    # (the structural figures are written to 4 digits: 8,333 GFLOP/s; an efficiency only
    # slows what the cache holds, 7% of a 24 MiB row's time, so it and the ceiling that
    # shares its compute-bound rows come within 1%; their product to 0.1%)
    for figure, value in expected.items():
        rel = 1e-3 if figure.startswith("overheads.") or "conv" in figure else 1e-2
        assert figures[figure] == pytest.approx(value, rel=rel), figure
    assert figures["compute_efficiency.aten.gelu"] * figures["efficiency.transcendental"] \
        == pytest.approx(0.02 * 0.9, rel=1e-3)
    sources = result.device.sources
    assert "median over 3 passes" in sources["peak_flops.fp32"]
    # the structural probes and the overheads spread over the passes, not the efficiencies
    assert "8,333 to 10,000 GFLOP/s over passes" in sources["peak_flops.fp32"]
    assert "10 to 12 us over passes" in sources["overheads.conv"]
    assert "0.5 to 0.5 over passes" in sources["compute_efficiency.conv3x3"]
    assert "60 to 72 us over passes" in sources["overheads.aten.mkldnn_convolution"]


def test_a_machine_too_noisy_to_agree_is_written_as_such(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_fake(tmp_path / "h.toml", timer=FakeTimer((1.0, 1.3, 1.0)),
                      log=lines.append)
    assert len(result.passes) == 3 and not result.agreed and result.noisy
    text = (tmp_path / "h.toml").read_text()
    assert "# WARNING: too noisy to trust: 3 passes never agreed (last two: rows changed by " \
           "a median 23.1%, 9 in 10 within 23.1%; agreement needs 5% and 20%)." in text
    assert "WARNING: too noisy to trust" in result.device.description
    assert any(line.startswith("warning: the machine was too noisy to trust: 3 passes")
               for line in lines)


def test_a_calibration_stopped_after_one_pass_says_it_was_not_compared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the time allowed is spent after the first pass (a slow ONNX export, a busy machine)
    from pytest_flopbudget.calibration import calibrate as module

    plan_of = module.Plan.of
    monkeypatch.setattr(module.Plan, "of", classmethod(
        lambda cls, quick: dataclasses.replace(plan_of(quick), deadline_s=-1.0)))
    lines: list[str] = []
    result = run_fake(tmp_path / "h.toml", log=lines.append)
    assert len(result.passes) == 1 and result.noisy
    assert ("# WARNING: stopped after one pass (the time allowed was spent), not compared with "
            "a second: not known to be stable.") in (tmp_path / "h.toml").read_text()
    assert "warning: stopped after one pass, not compared with a second (see the file's " \
           "header); calibrate again on a quiet machine" in lines


def test_samples_kept_disturbed_are_named_in_the_file(tmp_path: Path) -> None:
    result = run_fake(tmp_path / "h.toml", timer=FakeTimer(disturbed=["tiny add"]))
    assert result.disturbed == ["tiny add"] and result.noisy
    assert "WARNING: other processes disturbed samples that had to be kept for 1 probes " \
           "and rows (tiny add)." in (tmp_path / "h.toml").read_text()


def test_the_quick_plan_is_one_pass_of_three_single_calls(tmp_path: Path) -> None:
    timer = FakeTimer()
    result = run_fake(tmp_path / "h.toml", quick=True, timer=timer)
    assert len(result.passes) == 1
    assert {c[1:] for c in timer.calls} == {(3, 1, 0.0)}
    assert "# Quick calibration: one pass, not compared with a second" in \
        (tmp_path / "h.toml").read_text()


def test_a_device_named_otherwise(tmp_path: Path) -> None:
    device = fake_calibrate(tmp_path / "board.toml", name="board")
    assert device.name == "board"
    assert "[devices.board]" in (tmp_path / "board.toml").read_text()


def test_calibrate_refuses_a_bad_path_before_measuring(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    timer = FakeTimer()
    with pytest.raises(OSError, match="not a directory"):
        run_fake(blocker / "host.toml", timer=timer)
    with pytest.raises(IsADirectoryError):
        run_fake(tmp_path, timer=timer)
    assert timer.calls == []


def test_an_unknown_runtime_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown runtime 'tvm': expected 'eager' or "
                                         "'onnxruntime'"):
        run_fake(tmp_path / "h.toml", runtime="tvm")


# --- the command line -----------------------------------------------------------------------
def test_cli_calibrate_repairs_a_broken_host_file(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # the plugin says "no [devices.host] table; run ... calibrate" for a host file that is
    # not TOML: calibrating (to the project's own path, no --out) writes over it
    fake_calibration.install(monkeypatch)
    (tmp_path / ".flopbudget").mkdir()
    (tmp_path / ".flopbudget" / "host.toml").write_text("oops = = 1")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["calibrate", "--quick"]) == 0
    assert load_host_device(tmp_path / ".flopbudget" / "host.toml").peak() == 1e13


def test_cli_calibrate_writes_the_project_device_file(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    calls: list[dict[str, Any]] = []
    fake_calibration.install(monkeypatch, calls)
    (tmp_path / ".flopbudget").mkdir()
    sub = tmp_path / "src"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert cli.main(["calibrate", "--quick", "--name", "board"]) == 0
    out = capsys.readouterr().out
    path = tmp_path / ".flopbudget" / "board.toml"
    assert path.is_file()
    assert f"as device 'board'; writing {path} (the default in the project at {tmp_path})" \
        in out
    assert calls[0]["name"] == "board" and calls[0]["quick"] is True
    assert calls[0]["runtime"] == "eager"
    from pytest_flopbudget.devices import project

    monkeypatch.setattr(project, "_session", None)  # as in a script, not inside this session
    assert project.get_device("board").peak() == 1e13  # it joined the project's catalog


def test_cli_onnxruntime_without_its_packages_says_how_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["calibrate", "--runtime", "onnxruntime"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: --runtime onnxruntime needs onnxruntime (not installed): pip "
                   "install 'pytest-flopbudget[onnx]'\n")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "pytest_flopbudget", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


def test_cli_reports_a_bad_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = _cli("calibrate", "--quick", "--out", str(blocker / "host.toml"), cwd=tmp_path)
    assert result.returncode != 0
    assert "error:" in result.stderr and "a_file" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_needs_a_command(tmp_path: Path) -> None:
    result = _cli(cwd=tmp_path)
    assert result.returncode == 2
    assert "calibrate" in result.stderr or "COMMAND" in result.stderr


def test_flop_calibrate_option_writes_host_and_the_session_uses_it(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_calibration.install(monkeypatch)
    pytester.makepyfile("""
import pytest, torch

@pytest.mark.flop_budget(device="host")
def test_on_host(flop_budget):
    assert flop_budget.device.sources["bandwidth"].startswith("measured")
    assert flop_budget.device.peak() == 1e13
    flop_budget(torch.nn.Linear(10, 10), torch.randn(1, 10))
""")
    result = pytester.runpytest("--flop-calibrate", "--flop-report")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["flop-calibrate: peak fp32 10000.0 GFLOP/s, DRAM 125.0 GB/s*",
                                 "flop-calibrate: wrote *host.toml*",
                                 "*test_on_host*Linear*host fp32*passed"])
    assert (pytester.path / ".flopbudget" / "host.toml").is_file()
    # calibrating again writes over the host file it wrote (no report option is that file)
    again = pytester.runpytest("--flop-calibrate")
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["flop-calibrate: wrote *host.toml*"])


# --- one real calibration --------------------------------------------------------------------
def test_a_real_calibration_of_a_few_rows(tmp_path: Path) -> None:
    """The real timer on this machine, quick plan, the fake's rows: every figure is a finite
    number in range (what the figures are depends on the machine and its load)."""
    result = run_calibration(tmp_path / "host.toml", quick=True, log=lambda _: None,
                             benches=fake_calibration.benches())
    device = result.device
    assert math.isfinite(device.peak()) and device.peak() > 0
    assert device.onchip_bytes > 0
    assert all(0 < v <= 1 for v in device.compute_efficiency.values())
    assert all(v >= 0 for v in device.overheads.values())
    assert load_host_device(tmp_path / "host.toml").to_dict() == device.to_dict()


def test_an_interrupted_calibration_is_one_line_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_flopbudget.calibration import calibrate as calibrate_module

    def interrupted(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(calibrate_module, "calibrate", interrupted)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".flopbudget").mkdir()
    assert cli.main(["calibrate", "--quick"]) == 130
    err = capsys.readouterr().err
    assert "interrupted: the calibration was not written;" in err
    assert "Traceback" not in err
    assert list((tmp_path / ".flopbudget").iterdir()) == []
