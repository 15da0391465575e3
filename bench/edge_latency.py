"""How far the device catalog's roofline is from published edge latencies.

For every row of ``bench/edge/calibration_set.toml`` it rebuilds the network on the meta device
(``bench/edge/networks.py``), profiles it on fake tensors at the row's precision and prints:

* the network's MACs and parameters;
* ``pred``: ``profile(model, x, dtype=precision).latency(device).ms`` with today's catalog;
* ``set`` and ``pred/set``: the calibration set's "predicted ms (catalog today)" (catalog at
  commit 8c8bd81) and the ratio to it: 1.000 means this rebuild is the network the set was
  priced with (a ratio far from 1 means the rebuild differs, or the catalog changed);
* ``board``: the prediction at the measured board's clock, for rows that compare cycles (MCU
  rows: ``pred x 480 / board MHz``; other rows: ``pred``);
* ``pub`` and ``err %``: the published latency and ``(board - pub) / pub``;

then, per device and overall, the median and the worst ``|err|``.

    python bench/edge_latency.py [--device NAME ...] [--split calibration|holdout|all]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.edge.rows import Row, load_rows  # noqa: E402
from pytest_flopbudget import profile  # noqa: E402


@dataclass(frozen=True)
class Result:
    row: Row
    macs: int
    params: int
    predicted_ms: float

    @property
    def set_ratio(self) -> float:
        """This prediction over the calibration set's (catalog at 8c8bd81, its rebuild)."""
        return self.predicted_ms / self.row.predicted_ms_8c8bd81

    @property
    def board_ms(self) -> float:
        """The prediction at the measured board's clock where the row compares cycles."""
        return self.predicted_ms * self.row.clock_scale

    @property
    def error(self) -> float:
        """Signed relative error of ``board_ms`` against the published latency, in %."""
        return (self.board_ms - self.row.published_ms) / self.row.published_ms * 100


def evaluate(row: Row) -> Result:
    model, x = row.build("meta")
    prof = profile(model, x, dtype=row.precision)
    return Result(row, prof.macs, prof.params, prof.latency(row.device).ms)


def _ms(v: float) -> str:
    return f"{v:.4g}"


def summary(label: str, results: list[Result]) -> str:
    errors = [abs(r.error) for r in results]
    worst = max(results, key=lambda r: abs(r.error))
    return (f"{label:<18}{len(results):>4}{statistics.median(errors):>12.1f}"
            f"{abs(worst.error):>12.1f}  {worst.row.id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", action="append", default=[], metavar="NAME",
                        help="only rows on this catalog device (repeatable)")
    parser.add_argument("--split", choices=("calibration", "holdout", "all"), default="all",
                        help="rows of this split (default: %(default)s)")
    args = parser.parse_args(argv)

    rows = load_rows(args.split, tuple(args.device))
    if not rows:
        parser.error("no row matches --device/--split")
    started = time.perf_counter()
    head = (f"{'row':<21}{'device':<17}{'prec':<5}{'GMACs':>9}{'params':>13}{'pred ms':>10}"
            f"{'set ms':>9}{'pred/set':>9}{'board ms':>10}{'pub ms':>9}{'err %':>8}  split")
    print(head)
    print("-" * len(head))
    results = []
    for row in rows:
        r = evaluate(row)
        results.append(r)
        clock = "*" if row.clock_scale != 1.0 else " "
        print(f"{row.id:<21}{row.device:<17}{row.precision:<5}{r.macs / 1e9:>9.3f}"
              f"{r.params:>13,}{_ms(r.predicted_ms):>10}{_ms(row.predicted_ms_8c8bd81):>9}"
              f"{r.set_ratio:>9.3f}{_ms(r.board_ms):>9}{clock}{_ms(row.published_ms):>9}"
              f"{r.error:>+8.1f}  {row.split}", flush=True)
    print("-" * len(head))
    print("* MCU rows compare cycles: pred x catalog MHz / board MHz (480/280, 480/400). "
          "The rpi4 rows ran at 1.8 GHz (catalog 1.5 GHz), not scaled.")
    off = [r for r in results if abs(r.set_ratio - 1) > 0.005]
    print(f"pred/set: {len(results) - len(off)} of {len(results)} rows within 0.5% of the "
          f"set's column" + (": off " + ", ".join(f"{r.row.id} {r.set_ratio:.3f}" for r in off)
                             if off else ""))
    print()
    print(f"{'|err| %':<18}{'rows':>4}{'median':>12}{'worst':>12}  worst row")
    for device in dict.fromkeys(r.row.device for r in results):
        print(summary(device, [r for r in results if r.row.device == device]))
    print(summary(f"all ({args.split})", results))
    print(f"\n{len(results)} rows profiled on fake tensors in "
          f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
