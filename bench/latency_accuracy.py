"""How far the calibrated device's latency is from what a forward really takes on this
machine, through eager PyTorch or ONNX Runtime.

For every held-out model of ``bench/zoo.py`` it predicts one forward with

* the calibrated device (``python -m pytest_flopbudget calibrate [--runtime R]``: structural
  figures measured, free figures fitted to the calibration's own microbenchmarks), and
* the structural device alone (measured peak, bandwidths, cache; efficiency 1, no
  overhead), for scale,
* optionally an older calibration file (``--before FILE``), to compare two calibrations,

then measures the real forward and prints the errors. Eager: ``torch.inference_mode``, 3
warm-ups, the median of repeats, each sample the mean of the forwards in 50 ms, samples other
processes disturbed dropped and taken again. ONNX Runtime: each model exported with
``torch.onnx.export(..., dynamo=True)``, run in an ``InferenceSession`` (CPU execution
provider, default graph optimisations, intra-op threads = ``torch.get_num_threads()``), timed
the same way around ``session.run``. Nothing is fitted to these models.

    python bench/latency_accuracy.py [--runtime eager|onnxruntime] [--device FILE]
                                     [--recalibrate] [--quick] [--before FILE] [--runs N]

``--runs N`` calibrates and measures N times in a row (a fresh calibration each time unless
``--device`` is given) and prints the median and worst error of each run and their spread.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from zoo import zoo  # noqa: E402

from pytest_flopbudget import profile  # noqa: E402
from pytest_flopbudget.calibration.calibrate import omp_wait_policy, run_calibration  # noqa: E402
from pytest_flopbudget.calibration.microbench import GEMM_N  # noqa: E402
from pytest_flopbudget.calibration.structure import gemm_flops, gemm_probe  # noqa: E402
from pytest_flopbudget.calibration.timing import Timer, Timing  # noqa: E402
from pytest_flopbudget.devices.device import Device  # noqa: E402


def measure(run: Callable[[], object], repeats: int, timer: Timer) -> Timing:
    """Median over ``repeats`` undisturbed samples of the seconds of one forward, after 3
    warm-ups; a sample is the mean of as many forwards as last 50 ms."""
    return timer(run, repeats, warmup=3, min_sample_s=0.05)


def gemm_speed(timer: Timer) -> float:
    """FLOP/s of the calibration's GEMM now (shared machines drift)."""
    with torch.inference_mode():
        return gemm_flops(GEMM_N) / timer(gemm_probe(GEMM_N).run, 5).seconds


def parallel_speedup(runtime: str, timer: Timer, workdir: Path) -> float:
    """How much faster a stack of twelve small convolutions (3x3, 32 channels at 28x28, each
    with a ReLU) runs on ``torch.get_num_threads()`` threads than on one, through
    ``runtime``. Printed at the bench's start and end next to the GEMM's speed: on this
    shared machine two threads sometimes gain almost nothing on small kernels for minutes
    (in one process, ONNX Runtime's MobileNetV2 took 2.02-2.27 ms on two threads in five
    timings a minute apart, then 3.44, against 3.84-4.18 on one thread throughout), while the
    GEMM keeps its speed, and models of small operators then measure up to twice as slow as
    the calibration's rows predict."""
    model = torch.nn.Sequential(*[m for _ in range(12) for m in
                                  (torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU())])
    x = torch.randn(1, 32, 28, 28)
    threads = torch.get_num_threads()
    path = None
    if runtime != "eager":
        from pytest_flopbudget.calibration.onnx_runtime import export, session

        path = export(model, (x,), workdir / "speedup.onnx")
    seconds = []
    for n in (threads, 1):
        torch.set_num_threads(n)
        try:
            if path is None:
                with torch.inference_mode():
                    seconds.append(measure(lambda: model(x), 5, timer).seconds)
            else:
                sess = session(path)  # intra-op threads = torch.get_num_threads()
                feeds = {sess.get_inputs()[0].name: x.numpy()}
                seconds.append(measure(functools.partial(sess.run, None, feeds), 5, timer).seconds)
        finally:
            torch.set_num_threads(threads)
    return seconds[1] / seconds[0]


def load_device(path: Path) -> Device:
    """The one device of a calibration file (whatever its name)."""
    from pytest_flopbudget.core.tomlio import read_toml
    from pytest_flopbudget.devices.device_file import host_device

    name = next(iter(read_toml(path)["devices"]))
    return host_device(path.read_text(), str(path), name)


def runners(runtime: str, workdir: Path) -> list[tuple[str, Any, tuple[torch.Tensor, ...],
                                                      Callable[[], object]]]:
    """``(name, model, inputs, run one forward)`` per held-out model."""
    out = []
    for name, model, inputs in zoo():
        if runtime == "eager":
            def forward(m: Any = model, x: tuple[torch.Tensor, ...] = inputs) -> object:
                with torch.inference_mode():
                    return m(*x)
            out.append((name, model, inputs, forward))
        else:
            from pytest_flopbudget.calibration.onnx_runtime import export, session

            path = export(model, inputs, workdir / f"{len(out)}.onnx")
            sess = session(path)
            feeds = {i.name: x.numpy() for i, x in zip(sess.get_inputs(), inputs,
                                                       strict=True)}
            out.append((name, model, inputs,
                        lambda s=sess, f=feeds: s.run(None, f)))
    return out


def one_run(args: argparse.Namespace, device_path: Path | None,
            workdir: Path) -> tuple[float, float]:
    started = time.perf_counter()
    timer = Timer(patience_s=120.0)
    print(f"load average at start {os.getloadavg()[0]:.2f}")
    if device_path is None:
        device_path = workdir / "calibrated.toml"
        t0 = time.perf_counter()
        run_calibration(device_path, quick=args.quick, runtime=args.runtime,
                        name="calibrated", log=lambda line: print(f"  {line}", flush=True))
        print(f"calibration took {time.perf_counter() - t0:.1f} s")
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            kept = args.keep / f"{args.runtime}-run{args.run_number}.toml"
            shutil.copyfile(device_path, kept)
            print(f"calibration kept as {kept}")
    device = load_device(device_path)
    bare = device.bare()
    before = load_device(args.before) if args.before else None
    print(f"device: {device.peak() / 1e9:.1f} GFLOP/s fp32, {device.bandwidth / 1e9:.1f} GB/s,"
          f" cache {(device.onchip_bandwidth or 0) / 1e9:.1f} GB/s up to "
          f"{device.onchip_bytes / 2**20:.1f} MiB, fusion {device.fusion}, default overhead "
          f"{device.overhead * 1e6:.2f} us")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads"
          f"{omp_wait_policy() or ', OMP_WAIT_POLICY unset (spin, then sleep)'}")
    speed_start = gemm_speed(timer)
    speedup_start = parallel_speedup(args.runtime, timer, workdir)
    print()
    head = (f"{'model':<30}{'MFLOPs':>9}{'measured ms':>13}{'predicted ms':>14}{'err %':>8}"
            f"{'structural ms':>15}{'err %':>8}" + (f"{'before ms':>11}{'err %':>8}"
                                                     if before else ""))
    print(head)
    print("-" * len(head))
    errors: list[float] = []
    errors_bare: list[float] = []
    errors_before: list[float] = []
    contended: list[str] = []
    repeats = 5 if args.quick else 11
    dropped = 0
    for name, model, inputs, run in runners(args.runtime, workdir):
        prof = profile(model, *inputs)
        predicted = prof.latency(device).seconds
        structural = prof.latency(bare).seconds
        timing = measure(run, repeats, timer)
        real = timing.seconds
        dropped += timing.dropped
        if timing.disturbed:
            contended.append(f"{name} ({timing.disturbed:.2f})")
        err = predicted / real - 1
        err_bare = structural / real - 1
        errors.append(abs(err))
        errors_bare.append(abs(err_bare))
        line = (f"{name:<30}{prof.flops / 1e6:>9.1f}{real * 1e3:>13.3f}{predicted * 1e3:>14.3f}"
                f"{err:>+8.1%}{structural * 1e3:>15.3f}{err_bare:>+8.1%}")
        if before is not None:
            old = prof.latency(before).seconds
            errors_before.append(abs(old / real - 1))
            line += f"{old * 1e3:>11.3f}{old / real - 1:>+8.1%}"
        print(line, flush=True)
    print("-" * len(head))
    pad = 30 + 9 + 13 + 14
    tail = f"{statistics.median(errors_before):>19.1%}" if before else ""
    print(f"{'median |error|':<{pad}}{statistics.median(errors):>8.1%}{'':>15}"
          f"{statistics.median(errors_bare):>8.1%}{tail}")
    tail = f"{max(errors_before):>19.1%}" if before else ""
    print(f"{'worst |error|':<{pad}}{max(errors):>8.1%}{'':>15}{max(errors_bare):>8.1%}{tail}")
    print(f"measured through {args.runtime}: median of {repeats} samples (each the mean of the "
          f"forwards in 50 ms) after 3 warm-ups; {dropped} samples disturbed by other "
          f"processes were dropped and taken again")
    if contended:
        print("still disturbed (worst sample kept): " + ", ".join(contended))
    speed_end = gemm_speed(timer)
    speedup_end = parallel_speedup(args.runtime, timer, workdir)
    # an ONNX Runtime calibration's peak is its own MatMul's (a node of the suite), not torch's
    calibrated_by = "torch" if args.runtime == "eager" else "ONNX Runtime's MatMul"
    print(f"machine speed ({GEMM_N}x{GEMM_N} GEMM): calibrated {device.peak() / 1e9:.1f} "
          f"({calibrated_by}), torch at bench start {speed_start / 1e9:.1f}, at bench end "
          f"{speed_end / 1e9:.1f} GFLOP/s")
    print(f"parallel speedup (12 small 3x3 convolutions, {torch.get_num_threads()} threads over "
          f"1, through {args.runtime}): {speedup_start:.2f} at bench start, {speedup_end:.2f} "
          f"at bench end")
    print(f"load average at end {os.getloadavg()[0]:.2f}; wall time "
          f"{time.perf_counter() - started:.1f} s")
    return statistics.median(errors), max(errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", choices=("eager", "onnxruntime"), default="eager")
    parser.add_argument("--device", type=Path, default=None,
                        help="a calibration file to use instead of calibrating first")
    parser.add_argument("--before", type=Path, default=None,
                        help="an older calibration file, printed as a 'before' column")
    parser.add_argument("--quick", action="store_true",
                        help="quick calibration, shorter measurements")
    parser.add_argument("--runs", type=int, default=1,
                        help="calibrate and measure this many times in a row")
    parser.add_argument("--keep", type=Path, default=None,
                        help="a folder to keep each run's calibration file in "
                             "(RUNTIME-runN.toml)")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(1, args.runs + 1):
            if args.runs > 1:
                print(f"=== run {number} of {args.runs} ===")
            args.run_number = number
            results.append(one_run(args, args.device, Path(tmp)))
            print()
    if args.runs > 1:
        medians = [m for m, _ in results]
        worsts = [w for _, w in results]
        print("runs: " + "; ".join(f"{m:.1%} / {w:.1%}" for m, w in results))
        print(f"median |error| {min(medians):.1%} to {max(medians):.1%}, worst |error| "
              f"{min(worsts):.1%} to {max(worsts):.1%} over {args.runs} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
