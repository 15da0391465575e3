"""How far the device catalog's roofline is from published edge latencies.

For every row of ``bench/edge/calibration_set.toml`` it rebuilds the network on the meta device
(``bench/edge/networks.py``), profiles it on fake tensors at the row's precision and prints:

* the network's MACs and parameters;
* ``pred``: ``profile(model, x, dtype=precision).latency(device).ms`` with today's catalog;
* ``set`` and ``pred/set``: the calibration set's "predicted ms (catalog today)" (catalog at
  commit 8c8bd81, before the device model was fitted) and the ratio to it
  (tests/test_edge_networks.py checks that the rebuilds reproduce that column on the old
  catalog);
* ``board``: the prediction at the measured board's clock, for rows that compare cycles (MCU
  rows: ``pred x 480 / board MHz``; other rows: ``pred``);
* ``pub`` and ``err %``: the published latency and ``(board - pub) / pub``;

then, per device and overall, the median and the worst ``|err|`` before (the set's column)
and after (the catalog now), on calibration rows and on held-out rows.

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

    @property
    def error_before(self) -> float:
        """The same error for the catalog at commit 8c8bd81 (the set's predicted column),
        before the device model described fusion, memory tiers and fitted figures."""
        before = self.row.predicted_ms_8c8bd81 * self.row.clock_scale
        return (before - self.row.published_ms) / self.row.published_ms * 100


def evaluate(row: Row) -> Result:
    model, x = row.build("meta")
    prof = profile(model, x, dtype=row.precision)
    return Result(row, prof.macs, prof.params, prof.latency(row.device).ms)


def _ms(v: float) -> str:
    return f"{v:.4g}"


def _stats(errors: list[float]) -> str:
    if not errors:
        return f"{'-':>8}{'-':>8}"
    return f"{statistics.median(errors):>8.1f}{max(errors):>8.1f}"


def summary(label: str, results: list[Result]) -> str:
    """One line: rows, then median and worst |error| % before (catalog at 8c8bd81) and now,
    on the calibration rows and on the held-out rows, and the worst row now."""
    cells = [f"{label:<18}{len(results):>5}"]
    for split in ("calibration", "holdout"):
        mine = [r for r in results if r.row.split == split]
        cells.append(_stats([abs(r.error_before) for r in mine]))
        cells.append(_stats([abs(r.error) for r in mine]))
    worst = max(results, key=lambda r: abs(r.error))
    cells.append(f"  {worst.row.id} ({worst.error:+.0f}%)")
    return "".join(cells)


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
    print()
    print(f"{'':<23}{'calibration rows':^32}{'held-out rows':^32}")
    print(f"{'':<23}{'before':^16}{'after':^16}{'before':^16}{'after':^16}")
    print(f"{'|error| %':<18}{'rows':>5}" + f"{'median':>8}{'worst':>8}" * 4 + "  worst row now")
    for device in dict.fromkeys(r.row.device for r in results):
        print(summary(device, [r for r in results if r.row.device == device]))
    print(summary("all", results))
    print("before: the catalog at commit 8c8bd81 (calibration_set.toml's predicted column); "
          "after: the catalog now (devices.toml + fitted.toml). Only calibration rows were "
          "fitted.")
    print(f"\n{len(results)} rows profiled on fake tensors in "
          f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
