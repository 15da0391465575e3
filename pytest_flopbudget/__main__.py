"""Command line: ``python -m pytest_flopbudget <command>``.

Commands:

* ``calibrate [--out PATH] [--quick]``: measure this machine and write it as device ``host``
  (default ``.flopbudget/host.toml``); see :mod:`pytest_flopbudget.calibration.calibrate`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _calibrate(args: argparse.Namespace) -> int:
    from .budgets.config import ConfigError, host_file_setting
    from .calibration.calibrate import calibrate
    from .core.files import check_writable

    if args.out is not None:
        out, why = Path(args.out), "--out"
    else:
        try:
            out, why = host_file_setting(Path.cwd())
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        check_writable(out)  # before measuring, not after
        print(f"calibrating this machine{' (quick)' if args.quick else ''}; writing {out} "
              f"({why})", flush=True)
        device = calibrate(out, quick=args.quick, log=lambda line: print(line, flush=True))
    except OSError as exc:
        print(f"error: cannot write the calibration to {out}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    print()
    print(f"device {device.name!r}: {device.peak() / 1e9:.1f} GFLOP/s fp32, "
          f"{device.bandwidth / 1e9:.1f} GB/s, {device.overheads_text()}, "
          f"on-chip {device.onchip_bytes / 2**20:.1f} MiB")
    print(f"written to {out.resolve()}")
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
        help="measure this machine and write it as device 'host'",
        description="Measure this machine with short microbenchmarks (peak GEMM FLOP/s, "
                    "streaming bandwidth, per-operator overhead, per-class efficiency) and "
                    "write device 'host' as TOML.",
    )
    cal.add_argument("--out", metavar="PATH", default=None,
                     help="file to write (default: [tool.flopbudget] host_file of the nearest "
                          "pyproject.toml, else .flopbudget/host.toml)")
    cal.add_argument("--quick", action="store_true",
                     help="a few seconds, noisier figures (for tests)")
    cal.set_defaults(run=_calibrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
