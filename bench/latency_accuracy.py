"""How far the roofline's latency is from what a forward really takes on this machine.

For every model of ``bench/zoo.py`` it predicts one forward with

* ``host``: the device ``python -m pytest_flopbudget calibrate`` measured (peak, bandwidth,
  per-class efficiency, per-operator overhead), and
* an uncalibrated host: the same measured peak and bandwidth, efficiency 1.0, overhead 0,

then measures the real forward (``torch.inference_mode``, warm-up, median of repeats) and
prints both errors. The calibration comes only from its fixed microbenchmarks; nothing is
fitted to these models.

    python bench/latency_accuracy.py [--host .flopbudget/host.toml] [--recalibrate] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from zoo import zoo  # noqa: E402

from pytest_flopbudget import profile  # noqa: E402
from pytest_flopbudget.calibration.calibrate import calibrate, gemm_flops  # noqa: E402
from pytest_flopbudget.calibration.microbench import GEMM_N, gemm  # noqa: E402
from pytest_flopbudget.calibration.timing import Timer, Timing  # noqa: E402
from pytest_flopbudget.devices.device_file import DEFAULT_PATH, load_host_device  # noqa: E402


def measure(model: torch.nn.Module, inputs: tuple, repeats: int,
            timer: Timer) -> Timing:
    """Median over ``repeats`` undisturbed samples of the seconds of one forward, after 3
    warm-ups; a sample is the mean of as many forwards as last 50 ms. Samples other
    processes disturbed are dropped and taken again (see ``timing.Timer``)."""
    with torch.inference_mode():
        return timer(lambda: model(*inputs), repeats, warmup=3, min_sample_s=0.05)


def gemm_speed(timer: Timer) -> float:
    """FLOP/s of the calibration's 2048x2048 GEMM now: how fast the machine is at the moment
    compared with when it was calibrated (shared machines drift)."""
    with torch.inference_mode():
        return gemm_flops(GEMM_N) / timer(gemm(GEMM_N), 5).seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", type=Path, default=DEFAULT_PATH,
                        help="calibration file (default: %(default)s)")
    parser.add_argument("--recalibrate", action="store_true",
                        help="calibrate first even if the file exists")
    parser.add_argument("--quick", action="store_true",
                        help="quick calibration, shorter measurements")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    if args.recalibrate or not args.host.exists():
        t0 = time.perf_counter()
        calibrate(args.host, quick=args.quick)
        print(f"calibration took {time.perf_counter() - t0:.1f} s")
    host = load_host_device(args.host)
    bare = host.bare()  # measured peak and bandwidth only: efficiency 1.0, overhead 0
    print(f"host: {host.peak() / 1e9:.1f} GFLOP/s fp32, {host.bandwidth / 1e9:.1f} GB/s, "
          f"overhead {host.overheads_text()}, on-chip {host.onchip_bytes >> 20} MiB")
    print("efficiency: " + ", ".join(f"{k} {v:.3f}" for k, v in host.efficiency.items()))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    timer = Timer(patience_s=120.0)
    speed_start = gemm_speed(timer)
    print()

    head = (f"{'model':<28}{'MFLOPs':>9}{'measured ms':>13}{'calibrated ms':>15}{'err %':>8}"
            f"{'uncalibrated ms':>17}{'err %':>8}")
    print(head)
    print("-" * len(head))
    errors_cal: list[float] = []
    errors_bare: list[float] = []
    contended: list[str] = []
    repeats = 5 if args.quick else 15
    dropped = 0
    for name, model, inputs in zoo():
        prof = profile(model, *inputs)
        cal = prof.latency(host).seconds
        unc = prof.latency(bare).seconds
        timing = measure(model, inputs, repeats, timer)
        real = timing.seconds
        dropped += timing.dropped
        if timing.disturbed:
            contended.append(f"{name} ({timing.disturbed:.2f})")
        e_cal = (cal - real) / real * 100
        e_bare = (unc - real) / real * 100
        errors_cal.append(abs(e_cal))
        errors_bare.append(abs(e_bare))
        print(f"{name:<28}{prof.flops / 1e6:>9.1f}{real * 1e3:>13.3f}{cal * 1e3:>15.3f}"
              f"{e_cal:>+8.1f}{unc * 1e3:>17.3f}{e_bare:>+8.1f}", flush=True)
    print("-" * len(head))
    pad = 28 + 9 + 13 + 15
    print(f"{'median |error|':<{pad}}{statistics.median(errors_cal):>8.1f}{'':>17}"
          f"{statistics.median(errors_bare):>8.1f}")
    print(f"{'worst |error|':<{pad}}{max(errors_cal):>8.1f}{'':>17}{max(errors_bare):>8.1f}")
    print(f"measured: median of {repeats} samples (each the mean of the forwards in 50 ms) "
          f"after 3 warm-ups; {dropped} samples disturbed by other processes were dropped "
          f"and taken again")
    if contended:
        print("still disturbed (other processes were busy; worst sample kept): "
              + ", ".join(contended))
    speed_end = gemm_speed(timer)
    print(f"machine speed ({GEMM_N}x{GEMM_N} GEMM): calibrated {host.peak() / 1e9:.1f}, "
          f"bench start {speed_start / 1e9:.1f}, bench end {speed_end / 1e9:.1f} GFLOP/s")
    print()
    print(f"load average at end {os.getloadavg()[0]:.2f}; "
          f"bench wall time {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
