"""Measured latencies from benchmark logs: each format's own lines, by hand."""

from __future__ import annotations

import pytest

from pytest_flopbudget.devices.measured import MeasuredError, latency_from_log, read_measured

TRTEXEC = (
    "[11/24/2026-10:00:01] [I] === Performance summary ===\n"
    "[11/24/2026-10:00:01] [I] Throughput: 106.6 qps\n"
    "[11/24/2026-10:00:01] [I] Latency: min = 8.9 ms, max = 10.1 ms, mean = 9.38 ms, "
    "median = 9.31 ms, percentile(90%) = 9.7 ms\n"
)
TFLITE = ("Inference timings in us: Init: 21005, First inference: 5120, Warmup (avg): 2711.5, "
          "Inference (avg): 2604.33\n")
NCNN = """\
loop_count = 10
num_threads = 4
          squeezenet  min =   46.33  max =   47.21  avg =   46.65
        mobilenet_v2  min =   61.01  max =   63.44  avg =   61.88
"""
HAILO = """\
Measuring FPS in hw_only mode
Network resnet_v1_50/resnet_v1_50: 100% | 6644 | FPS: 1328.83 | ETA: 00:00:00
Summary
  FPS     (hw_only)  = 1328.83
  Latency (hw)       = 2.93646 ms
"""


TRTEXEC_FULL = TRTEXEC + (
    "[11/24/2026-10:00:01] [I] Enqueue Time: min = 0.9 ms, max = 1.2 ms, mean = 1.0 ms, "
    "median = 1.0 ms\n"
    "[11/24/2026-10:00:01] [I] H2D Latency: min = 0.47 ms, max = 0.52 ms, mean = 0.49 ms, "
    "median = 0.485291 ms\n"
    "[11/24/2026-10:00:01] [I] GPU Compute Time: min = 7.9 ms, max = 9.0 ms, mean = 8.1 ms, "
    "median = 8.05 ms\n"
    "[11/24/2026-10:00:01] [I] D2H Latency: min = 0.8 ms, max = 0.9 ms, mean = 0.86 ms, "
    "median = 0.862122 ms\n"
    "[11/24/2026-10:00:01] [I] End-to-End Host Latency: min = 9.9 ms, max = 11 ms, "
    "mean = 10.2 ms, median = 10.1 ms\n"
)


@pytest.mark.parametrize("text,name,ms", [
    (TRTEXEC, None, 9.31),  # the median of trtexec's latency line
    (TRTEXEC_FULL, None, 9.31),  # not the H2D, D2H or end-to-end lines after it
    ("    Latency: min = 1.2 ms, median = 1.4 ms\n", None, 1.4),  # indented, no "[I]"
    (TFLITE, None, 2.60433),  # 2604.33 us
    (NCNN, "mobilenet_v2", 61.88),  # avg column
    (HAILO, None, 2.93646),  # the latency, not 1 / FPS
])
def test_each_log_format(text, name, ms):
    assert latency_from_log(text, "log", name) == pytest.approx(ms)


def test_a_benchncnn_log_needs_a_model_name():
    with pytest.raises(MeasuredError, match="holds several models; name one as 'x.log#MODEL'"):
        latency_from_log(NCNN, "x.log")
    with pytest.raises(MeasuredError, match="no benchncnn line for model 'vgg16'"):
        latency_from_log(NCNN, "x.log", "vgg16")
    with pytest.raises(MeasuredError, match="no latency found"):
        latency_from_log("hello\n", "x.log")


def test_a_measured_csv_mixes_numbers_and_logs(tmp_path):
    (tmp_path / "ncnn.log").write_text(NCNN)
    (tmp_path / "trt.log").write_text(TRTEXEC)
    measured = tmp_path / "measured.csv"
    measured.write_text("test,ms\n"
                        "tests/test_a.py::test_a,4.5\n"
                        "# a comment line\n"
                        "tests/test_b.py::test_b,ncnn.log#squeezenet\n"
                        "tests/test_c.py::test_c,trt.log\n")
    assert read_measured(measured) == {
        "tests/test_a.py::test_a": pytest.approx(4.5e-3),
        "tests/test_b.py::test_b": pytest.approx(46.65e-3),
        "tests/test_c.py::test_c": pytest.approx(9.31e-3),
    }


@pytest.mark.parametrize("text,message", [
    ("t,1,2\n", "measured.csv:1: expected 'test id, milliseconds or log path', got 3 fields"),
    ("t,-1\n", "measured.csv:1: latency must be a positive number, got -1"),
    ("t,1e-300\n", "measured.csv:1: latency 1e-300 ms is shorter than any forward can take"),
    ("t,1\nt,2\n", "measured.csv:2: test 't' measured twice"),
    ("t,missing.log\n", "measured.csv:1: cannot read log missing.log"),
    ("test,ms\n", "measured.csv: no measured rows"),
])
def test_measured_file_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "measured.csv"
    path.write_text(text)
    with pytest.raises(MeasuredError) as info:
        read_measured(path)
    assert message in str(info.value)


@pytest.mark.parametrize("text", [
    "test_id,ms\nt,1.5\n",
    "# measured on the board, 2026-11-25\ntest,ms\nt,1.5\n",
    "\ufefftest,ms\nt,1.5\n",  # a spreadsheet's byte-order mark
    "nodeid,latency_ms\nt,1.5\n",
    "t,1.5\n",
])
def test_a_measured_files_header_in_its_common_forms(tmp_path, text):
    path = tmp_path / "m.csv"
    path.write_text(text, encoding="utf-8")
    assert read_measured(path) == {"t": pytest.approx(1.5e-3)}


def test_a_first_row_whose_value_is_a_log_called_log_is_data(tmp_path):
    # "log" names a value column, but here it is a trtexec log beside the CSV
    (tmp_path / "log").write_text(TRTEXEC)
    path = tmp_path / "m.csv"
    path.write_text("test_a.py::test_x,log\ntest_y,2\n")
    assert read_measured(path) == {"test_a.py::test_x": pytest.approx(9.31e-3),
                                   "test_y": pytest.approx(2e-3)}
