"""Refit kept calibration files and predict the zoo again: two versions of the device model
compared on the same measurements.

``bench/latency_accuracy.py --runs N --keep DIR`` keeps each run's calibration file
(``RUNTIME-runK.toml``), whose header lists every calibration row's measured milliseconds,
and prints each zoo model's measured milliseconds. This script takes those files and that
printout, fits each calibration again from its rows (the structural figures as the file
holds them, the free figures fitted by the code checked out now, the derived entries as a
calibration derives them) and prints the zoo's errors against the same measurements. Run
it at two commits to compare two device models without measuring anything again.

The rows are read as the file prints them (four significant digits), so a refit with the
code that wrote the file gives the bench's own errors within a few tenths of a point.

    python bench/refit_kept.py --runtime onnxruntime --log bench.log DIR/onnxruntime-run1.toml ...

The files are taken in order against the log's runs (``=== run K of N ===``).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from latency_accuracy import load_device  # noqa: E402
from zoo import zoo  # noqa: E402

from pytest_flopbudget import profile  # noqa: E402
from pytest_flopbudget.calibration.calibrate import (  # noqa: E402
    FREE,
    derive,
    fit_rows,
    runtime_of,
)
from pytest_flopbudget.calibration.microbench import rows  # noqa: E402
from pytest_flopbudget.devices.device import Device  # noqa: E402

#: A row of a calibration file's header: ``# NAME  measured  before  after  error%``.
ROW = re.compile(r"^# (?P<name>.+?)\s+(?P<ms>[\d.e+-]+)\s+[\d.e+-]+\s+[\d.e+-]+\s+[+-][\d.]+%$")
#: A model's line in the bench's printout: name (30 columns), MFLOPs, measured ms, ...
MODEL = re.compile(r"^(?P<name>.{30})\s*[\d.]+\s+(?P<ms>[\d.]+)\s+[\d.]+\s+[+-]")


def measured_rows(path: Path) -> dict[str, float]:
    """``{row: measured seconds}`` from a calibration file's header."""
    out = {}
    for line in path.read_text().splitlines():
        match = ROW.match(line)
        if match:
            out[match["name"].strip()] = float(match["ms"]) * 1e-3
    return out


def measured_models(log: Path) -> list[dict[str, float]]:
    """Per run of the bench's printout: ``{model: measured seconds}``."""
    runs: list[dict[str, float]] = []
    for line in log.read_text().splitlines():
        if line.startswith("=== run"):
            runs.append({})
            continue
        match = MODEL.match(line)
        if match:
            if not runs:
                runs.append({})
            runs[-1][match["name"].strip()] = float(match["ms"]) * 1e-3
    return runs


def refit(path: Path, runtime: str, engine: Any, benches: list[Any],
          profiles: list[Any]) -> Device:
    """The device of ``path`` fitted again from its own rows by the code checked out now,
    the rows priced as ``engine`` (the calibration runtime called ``runtime``) timed them."""
    device = load_device(path)
    seconds = measured_rows(path)
    missing = [b.what for b in benches if b.what not in seconds]
    if missing:
        raise SystemExit(f"{path}: no measured row for {', '.join(missing[:3])}")
    # the rows as the calibration timed them: through ONNX Runtime, those of the suite with
    # their weights from memory; eager, each on its own again and again
    result = fit_rows(device.bare(), benches, profiles, [seconds[b.what] for b in benches],
                      FREE[runtime], engine.cold_rows(benches), engine.rows_repeated)
    fitted = result.device
    tables = {g: dict(getattr(fitted, g)) for g in ("efficiency", "compute_efficiency",
                                                    "overheads")}
    changes: dict[str, float] = {}
    for entry, (value, _) in derive(result.figures).items():
        group, _, key = entry.partition(".")
        if group in tables:
            tables[group].setdefault(key, value)
        else:
            changes[entry] = value
    return replace(fitted, **tables, **changes)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", choices=("eager", "onnxruntime"), default="eager")
    parser.add_argument("--log", type=Path, required=True,
                        help="the printout of the bench run that kept the files")
    parser.add_argument("files", type=Path, nargs="+", help="kept calibration files")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)  # the convolution backends the tracer asks about depend on it
    benches = list(rows())
    profiles = [profile(b.module, *b.inputs, trace="fake") for b in benches]
    models = [(name, profile(model, *inputs)) for name, model, inputs in zoo()]
    engine = runtime_of(args.runtime)  # made once (through ONNX Runtime: a temporary folder)
    runs = measured_models(args.log)
    if len(runs) < len(args.files):
        raise SystemExit(f"{args.log}: {len(runs)} runs for {len(args.files)} files")
    for path, measured in zip(args.files, runs, strict=False):
        device = refit(path, args.runtime, engine, benches, profiles)
        errors = []
        for name, prof in models:
            if name in measured:
                error = prof.latency(device).seconds / measured[name] - 1
                errors.append(abs(error))
                print(f"  {name:<30}{error:>+8.1%}")
        print(f"{path.name}: median |error| {statistics.median(errors):.1%}, worst "
              f"{max(errors):.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
