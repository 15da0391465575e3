"""Fit the built-in catalog's free figures to the calibration rows of the edge calibration set.

For every device of ``bench/edge/fit_plan.toml`` it profiles the device's calibration rows
(``bench/edge/calibration_set.toml``, ``split = "calibration"``; held-out rows are never
used), prices them on the device's datasheet figures (``pytest_flopbudget/devices/
devices.toml`` alone, without the previous fit), fits the plan's free figures with
``pytest_flopbudget.devices.fit.fit`` (robust least squares on the relative error, bounded to
physical values) and writes them, each citing its rows, to
``pytest_flopbudget/devices/fitted.toml`` with the residual of every row as comments. MCU rows
compare cycles (their measured time is taken at the catalog device's clock).

    python bench/edge/fit_catalog.py [--dry-run]

Re-run it after any change to the device model, the datasheet figures or the rows; then
``python bench/edge_latency.py`` prints the catalog against every row, held-out ones included.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.edge.rows import ROWS_PATH, Row, load_rows  # noqa: E402
from pytest_flopbudget import profile  # noqa: E402
from pytest_flopbudget.core.files import atomic_write  # noqa: E402
from pytest_flopbudget.core.tomlio import key, read_toml, table_toml  # noqa: E402
from pytest_flopbudget.devices.catalog import CATALOG_FILE, FITTED_FILE, Catalog  # noqa: E402
from pytest_flopbudget.devices.fit import Fit, fit, rows_from  # noqa: E402

PLAN = Path(__file__).with_name("fit_plan.toml")
CITE = "bench/edge/calibration_set.toml"


def datasheet_catalog() -> Catalog:
    """The built-in devices with their datasheet figures only (no previous fit)."""
    tables = read_toml(CATALOG_FILE)["devices"]
    return Catalog(tables, {n: f"devices.toml [devices.{n}]" for n in tables})


def fit_device(name: str, free: list[str], rows: list[Row], catalog: Catalog) -> Fit:
    device = catalog.get(name)
    pairs = []
    for row in rows:
        model, x = row.build("meta")
        lat = profile(model, x, dtype=row.precision).latency(device)
        # MCU rows compare cycles: the board's measured time at the catalog device's clock
        pairs.append((row.id, lat, row.published_ms * 1e-3 / row.clock_scale))
    return fit(device, rows_from(pairs), free, cite=CITE)


def document(fits: dict[str, Fit], reasons: dict[str, str]) -> str:
    header = ("Fitted figures of the built-in catalog: written by 'python "
              "bench/edge/fit_catalog.py'\nfrom the calibration rows of "
              f"{CITE}; do not edit by hand, re-run the script.\nEach device's free "
              "figures and why are in bench/edge/fit_plan.toml; the residual of every\n"
              "calibration row (published vs predicted, at the catalog device's clock) is "
              "listed above its device.\n")
    parts = ["\n".join(f"# {line}".rstrip() for line in header.splitlines()), ""]
    for name, result in fits.items():
        comment = [f"{name}: {reasons[name]}", *result.residual_lines()]
        body = table_toml(f"devices.{key(name)}", result.fitted_table(), "\n".join(comment))
        parts.append(body)
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="print the fit, do not write fitted.toml")
    args = parser.parse_args(argv)
    plan = read_toml(PLAN)["devices"]
    catalog = datasheet_catalog()
    rows = load_rows("calibration", path=ROWS_PATH)
    fits: dict[str, Fit] = {}
    for name, entry in plan.items():
        mine = [r for r in rows if r.device == name]
        if not mine:
            raise SystemExit(f"{PLAN.name}: {name} has no calibration rows")
        fits[name] = result = fit_device(name, list(entry["free"]), mine, catalog)
        before, after = result.summary(after=False), result.summary()
        figures = ", ".join(f"{k} = {v:.4g}" for k, v in result.figures.items())
        print(f"{name:<18} {len(mine)} rows: median/worst |error| {before[0]:6.1%} / "
              f"{before[1]:6.1%} -> {after[0]:5.1%} / {after[1]:5.1%}   {figures}",
              flush=True)
    text = document(fits, {n: e["why"] for n, e in plan.items()})
    if args.dry_run:
        print(text)
    else:
        atomic_write(FITTED_FILE, text)
        print(f"wrote {FITTED_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
