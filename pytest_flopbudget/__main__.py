"""Command line: ``python -m pytest_flopbudget <command>``.

Commands:

* ``calibrate [--runtime eager|onnxruntime] [--name NAME] [--out PATH] [--quick]``: measure
  this machine through a runtime and write it as device ``NAME`` (default ``host``, in
  ``.flopbudget/NAME.toml`` of the project); see
  :mod:`pytest_flopbudget.calibration.calibrate`.
* ``compare MODULE:FACTORY [--runtime eager|onnxruntime] [--device NAME]``: time a model for
  real and print its predicted next to its measured time, layer by layer; see
  :mod:`pytest_flopbudget.calibration.compare`.
* ``fit --device NAME --report flop.json --measured times.csv [--free F,G] [--name NEW]
  [--out PATH]``: fit a device's free figures to measured latencies of a test run; see
  :mod:`pytest_flopbudget.devices.team_fit`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .core.numbers import positive_int

RUNTIMES = ("eager", "onnxruntime")


def _error(text: str) -> int:
    print(f"error: {text}", file=sys.stderr)
    return 2


def _calibrate(args: argparse.Namespace) -> int:
    from .budgets.config import ConfigError, host_file_setting
    from .calibration.calibrate import calibrate
    from .calibration.timing import CalibrationError
    from .core.files import check_writable
    from .devices.device import DeviceError
    from .devices.device_file import check_device_destination
    from .devices.project import check_declared_once

    if args.runtime == "onnxruntime":
        from .calibration.onnx_runtime import missing

        absent = missing()
        if absent:
            return _error(absent)
    if args.out is not None:
        out, why = Path(args.out), "--out"
    else:
        try:
            out, why = host_file_setting(Path.cwd(), args.name)
        except ConfigError as exc:
            return _error(str(exc))
        except DeviceError as exc:  # a name that cannot name a file of .flopbudget/
            return _error(f"--name: {exc}; or give --out PATH")
    through = f" through {args.runtime}" if args.runtime != "eager" else ""
    if args.out is not None:  # a path of the user's: never over a file that is not one
        try:
            check_device_destination(out)
        except DeviceError as exc:
            return _error(f"--out: {exc}")
    try:
        check_declared_once(out, args.name)
    except DeviceError as exc:
        return _error(f"--name: {exc}")
    try:
        check_writable(out)  # before measuring, not after
        print(f"calibrating this machine{through}{' (quick)' if args.quick else ''} as device "
              f"{args.name!r}; writing {out} ({why})", flush=True)
        device = calibrate(out, quick=args.quick, log=lambda line: print(line, flush=True),
                           runtime=args.runtime, name=args.name)
    except OSError as exc:
        return _error(f"cannot write the calibration to {out}: {exc.strerror or exc}")
    except CalibrationError as exc:
        return _error(f"calibration through {args.runtime} failed: {exc}")
    except KeyboardInterrupt:  # Ctrl-C while measuring: nothing written yet, one line
        print(f"\ninterrupted: the calibration was not written; {out} is as it was",
              file=sys.stderr)
        return 130
    print()
    print(f"device {device.name!r}: {device.peak() / 1e9:.1f} GFLOP/s fp32, "
          f"{device.bandwidth / 1e9:.1f} GB/s, {device.overheads_text()}, "
          f"on-chip {device.onchip_bytes / 2**20:.1f} MiB, fusion {device.fusion}")
    print(f"written to {out.resolve()}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .devices.device import DeviceError
    from .devices.project import get_device

    try:
        device = get_device(args.device)
    except DeviceError as exc:
        return _error(str(exc))
    if args.runtime == "onnxruntime":
        from .calibration.onnx_runtime import missing

        absent = missing()
        if absent:
            return _error(absent)
    from .calibration.compare import CompareError, build, compare, load_factory

    try:
        model, inputs = build(load_factory(args.factory), args.factory)
    except CompareError as exc:
        return _error(str(exc))
    try:
        result = compare(model, inputs, device, args.runtime, repeats=args.repeats)
    except Exception as exc:  # a model that cannot be traced, exported or run: one line
        return _error(f"cannot compare {args.factory} on {device.name}: "
                      f"{type(exc).__name__}: {exc}")
    print("\n".join(result.lines(args.top)))
    return 0


def _fit(args: argparse.Namespace) -> int:
    from .devices.team_fit import FitCommandError, run_fit

    try:
        lines = run_fit(device=args.device, report=Path(args.report),
                        measured=Path(args.measured), free=args.free, name=args.name,
                        out=Path(args.out) if args.out else None, start=Path.cwd())
    except FitCommandError as exc:
        return _error(str(exc))
    print("\n".join(lines))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m pytest_flopbudget``: one subcommand per task."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_flopbudget",
        description="pytest-flopbudget tools",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    cal = commands.add_parser(
        "calibrate",
        help="measure this machine and write it as a device ('host' by default)",
        description="Measure this machine through a runtime: structural figures (GEMM peak, "
                    "DRAM and cache bandwidth, cache size) from streaming kernels, then "
                    "efficiencies and per-operator overheads fitted to microbenchmarks; "
                    "write the device as TOML.",
    )
    cal.add_argument("--runtime", choices=RUNTIMES, default="eager",
                     help="eager PyTorch (default) or ONNX Runtime (the microbenchmarks "
                          "exported with torch.onnx.export(dynamo=True), CPU execution "
                          "provider; needs pip install 'pytest-flopbudget[onnx]')")
    cal.add_argument("--name", default="host", metavar="NAME",
                     help="device name (default host); written to .flopbudget/NAME.toml of "
                          "the project, where every device file joins the catalog")
    cal.add_argument("--out", metavar="PATH", default=None,
                     help="file to write (default: .flopbudget/NAME.toml of the project; for "
                          "host, [tool.flopbudget] host_file when set)")
    cal.add_argument("--quick", action="store_true",
                     help="one short pass, noisier figures (for tests)")
    cal.set_defaults(run=_calibrate)

    cmp = commands.add_parser(
        "compare",
        help="time a model for real and print predicted vs measured time per layer",
        description="Profile a model, predict its layers on a device, time it for real on "
                    "this machine (eager: module hooks; onnxruntime: the per-node profiler) "
                    "and print predicted next to measured per layer.",
    )
    cmp.add_argument("factory", metavar="MODULE:FACTORY",
                     help="a function returning (model, inputs), e.g. models:build or "
                          "path/to/models.py:build")
    cmp.add_argument("--runtime", choices=RUNTIMES, default="eager")
    cmp.add_argument("--device", default="host", metavar="NAME",
                     help="the device to predict with (default host)")
    cmp.add_argument("--repeats", type=positive_int, default=20, metavar="N",
                     help="timed forwards per layer (default 20)")
    cmp.add_argument("--top", type=positive_int, default=15, metavar="N",
                     help="layers listed, slowest first (default 15)")
    cmp.set_defaults(run=_compare)

    fit = commands.add_parser(
        "fit",
        help="fit a device's free figures to latencies measured on the board",
        description="Fit the free figures of a device (efficiencies, overheads) to the "
                    "latencies a team measured on its board for the tests of a --flop-json "
                    "report, and write the fitted device file.",
    )
    fit.add_argument("--device", required=True, metavar="NAME",
                     help="the device the report priced the tests on")
    fit.add_argument("--report", required=True, metavar="FLOP.JSON",
                     help="the report of pytest --flop-json (it holds each test's fit terms)")
    fit.add_argument("--measured", required=True, metavar="TIMES.CSV",
                     help="test id, milliseconds or a benchmark log (trtexec, benchmark_model, "
                          "benchncnn, hailortcli) per line")
    fit.add_argument("--free", default="efficiency,overhead", metavar="F,G",
                     help="free figures: efficiency (one per operator class in the tests), "
                          "overhead, efficiency.KEY, overheads.KEY... (default "
                          "efficiency,overhead)")
    fit.add_argument("--name", default=None, metavar="NEW",
                     help="name of the fitted device (default: NAME-fitted)")
    fit.add_argument("--out", default=None, metavar="PATH",
                     help="file to write (default .flopbudget/NEW.toml of the project)")
    fit.set_defaults(run=_fit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
