"""Fitting a device's free figures to measured latencies.

The roofline already splits a prediction into terms that do not depend on the figures being
fitted (:class:`Term`): per kernel, its bare roofline seconds (``max(compute, memory)`` with
efficiency 1, on the device's structural figures: peak, bandwidths, tiles, cores, fusion), the
overheads it pays and the seconds its weights spend on a host link. A measured row's
prediction is then linear in the free figures (but for compute ceilings)::

    t = factor * (sum_k bare_k / efficiency_k + sum_j launches_j * overhead_j
                  + link_seconds * datasheet_link / link_bandwidth)

where a kernel with a compute ceiling (``compute_efficiency``) below 1 or bytes from memory
beyond a cache (``dram_k``, which no efficiency slows: :mod:`.roofline`) takes
``max(compute_k / compute_efficiency_k, memory_k - dram_k * (1 - efficiency_k))`` instead
of ``bare_k = max(compute_k, memory_k)`` (exact for a term of one kernel, :func:`terms` with
``per_kernel=True``; for a term summed over several kernels the ceiling and the memory's
part act on the sums).

:func:`fit` finds the free figures by robust least squares on the relative error
(``log(predicted / measured)``, soft-L1 loss, so one odd row cannot pull every figure), within
physical bounds: an efficiency in ``(0, 1]``, an overhead ``>= 0``, a link no faster than its
datasheet. Free figures are named as in a device table: ``efficiency.conv``,
``efficiency.aten.gelu``, ``overheads.depthwise_conv``, ``overhead``, ``link_bandwidth``.

scipy is an optional extra (``pip install 'pytest-flopbudget[fit]'``); nothing else in the
package needs it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.op_classes import lookup_keys
from .device import Device, DeviceError
from .roofline import Latency

INSTALL_HINT = "fitting a device needs scipy: pip install 'pytest-flopbudget[fit]'"
#: Where the compute ceilings start, as multiples of the tight ceilings (:func:`fit`).
START_SCALES = (1.0, 3.0, 1 / 3)
#: Device tables whose entries can be free figures (``GROUP.KEY``).
TABLES = ("efficiency", "compute_efficiency", "overheads")


@dataclass(frozen=True)
class Term:
    """The part of a prediction one kind of kernel contributes, before the free figures.

    ``op``/``kind``/``op_class``/``runs_as``: which table entries may price it
    (:func:`~pytest_flopbudget.core.op_classes.lookup_keys`); ``bare_seconds``: its
    roofline seconds at efficiency 1; ``launches``: overheads it pays; ``link_seconds``: its
    weights' time on the host link at the device's link bandwidth; ``fixed_seconds``: time
    no free figure changes (first touch of fresh output memory, a convolution's lowering,
    weights from memory); ``dram_seconds``: the part of ``memory_seconds`` from memory
    beyond a cache, which its efficiency does not slow.
    """

    op: str
    kind: str
    op_class: str
    bare_seconds: float
    launches: int
    link_seconds: float = 0.0
    compute_seconds: float = 0.0
    memory_seconds: float = 0.0
    fixed_seconds: float = 0.0
    runs_as: str = ""
    dram_seconds: float = 0.0

    def to_list(self) -> list[Any]:
        return [self.op, self.kind, self.op_class, self.bare_seconds, self.launches,
                self.link_seconds, self.compute_seconds, self.memory_seconds,
                self.fixed_seconds, self.runs_as, self.dram_seconds]

    @classmethod
    def from_list(cls, item: Sequence[Any]) -> Term:
        """A term from :meth:`to_list`'s list (``ValueError`` when it is not one); a list of
        9 items (files written before ``runs_as``) has none, one of 10 (written before
        ``dram_seconds``) no bytes from memory beyond a cache."""
        if not isinstance(item, (list, tuple)) or len(item) not in (9, 10, 11):
            raise ValueError(f"a fit term is a list of 11 items (op, kind, class, bare s, "
                             f"launches, link s, compute s, memory s, fixed s, runs as, "
                             f"memory s beyond a cache; 9 or 10 from older files), got "
                             f"{item!r}")
        op, kind, op_class, bare, launches, link, compute, memory, fixed = item[:9]
        runs_as = str(item[9]) if len(item) >= 10 else ""
        dram = float(item[10]) if len(item) == 11 else 0.0
        return cls(str(op), str(kind), str(op_class), float(bare), int(launches), float(link),
                   float(compute), float(memory), float(fixed), runs_as, dram)


def terms(latency: Latency, per_kernel: bool = False) -> list[Term]:
    """The terms of a prediction, one per (operator, kind, class, runs as), summed over its
    kernels (``per_kernel``: one per kernel, in execution order, which a compute ceiling
    prices exactly)."""
    if per_kernel:
        return [Term(t.op, t.kind, t.op_class, t.bare_seconds, t.launches, t.link_seconds,
                     t.bare_compute, t.bare_memory, t.fixed_seconds, t.runs_as,
                     t.dram_seconds)
                for t in latency.ops]
    summed: dict[tuple[str, str, str, str], list[float]] = {}
    for t in latency.ops:
        acc = summed.setdefault((t.op, t.kind, t.op_class, t.runs_as), [0.0] * 7)
        for i, value in enumerate((t.bare_seconds, t.launches, t.link_seconds,
                                   t.bare_compute, t.bare_memory,
                                   t.fixed_seconds, t.dram_seconds)):
            acc[i] += value
    return [Term(op, kind, cls, bare, int(launches), link, compute, memory, fixed, runs_as,
                 dram)
            for (op, kind, cls, runs_as), (bare, launches, link, compute, memory, fixed, dram)
            in summed.items()]


@dataclass(frozen=True)
class Row:
    """One measured latency: a name (calibration-set row or test id), the prediction's terms
    on the device, and the measured seconds."""

    name: str
    terms: tuple[Term, ...]
    measured: float


@dataclass(frozen=True)
class Fit:
    """A fitted device: ``device`` with the free figures set, the ``figures`` found, and per
    row the prediction before and after (seconds) and the measured value."""

    device: Device
    figures: dict[str, float]
    rows: list[tuple[str, float, float, float]]  # (name, before, after, measured)
    users: dict[str, list[str]] = field(default_factory=dict)  # figure -> rows it prices

    def errors(self, after: bool = True) -> list[float]:
        """Relative errors ``predicted / measured - 1`` per row."""
        return [(a if after else b) / m - 1 for _, b, a, m in self.rows]

    def summary(self, after: bool = True) -> tuple[float, float]:
        """``(median, worst)`` of ``|predicted / measured - 1|``."""
        errs = [abs(e) for e in self.errors(after)]
        return statistics.median(errs), max(errs)

    def fitted_table(self) -> dict[str, Any]:
        """The fitted figures as a device table (``efficiency``/``overheads`` sub-tables and
        their ``sources``), ready for a device file or an overlay."""
        table: dict[str, Any] = {}
        for name in self.figures:
            group, _, key = name.partition(".")
            if group in TABLES:
                table.setdefault(group, {})[key] = getattr(self.device, group)[key]
            else:
                table[name] = getattr(self.device, name)
        table["sources"] = {name: self.device.sources[name] for name in self.figures}
        return table

    def residual_lines(self) -> list[str]:
        """One line per row: measured, predicted before and after the fit, the error."""
        lines = [f"{'row':<24}{'measured ms':>12}{'before ms':>12}{'after ms':>12}"
                 f"{'error':>9}"]
        for name, before, after, measured in self.rows:
            lines.append(f"{name:<24}{measured * 1e3:>12.4g}{before * 1e3:>12.4g}"
                         f"{after * 1e3:>12.4g}{after / measured - 1:>+9.1%}")
        median, worst = self.summary()
        lines.append(f"median |error| {median:.1%}, worst {worst:.1%}")
        return lines


class _Model:
    """The linear model of one device's rows in its free figures."""

    def __init__(self, device: Device, free: Sequence[str]) -> None:
        self.device = device
        self.free = list(free)
        for name in self.free:
            _check_free(name, device)
        self.eff_keys = [n.split(".", 1)[1] for n in self.free if n.startswith("efficiency.")]
        self.cef_keys = [n.split(".", 1)[1] for n in self.free
                         if n.startswith("compute_efficiency.")]
        self.ovh_keys = [n.split(".", 1)[1] for n in self.free if n.startswith("overheads.")]
        self.eff_table = {**device.efficiency, **dict.fromkeys(self.eff_keys, 1.0)}
        self.cef_table = {**device.compute_efficiency, **dict.fromkeys(self.cef_keys, 1.0)}
        self.ovh_table = {**device.overheads, **dict.fromkeys(self.ovh_keys, 0.0)}

    def eff_key(self, term: Term) -> str:
        keys = lookup_keys(term.op, term.kind, term.op_class, term.runs_as)
        return next((k for k in keys if k in self.eff_table), term.op_class)

    def cef_key(self, term: Term) -> str:
        keys = lookup_keys(term.op, term.kind, term.op_class, term.runs_as)
        return next((k for k in keys if k in self.cef_table), term.op_class)

    def ovh_key(self, term: Term) -> str:
        keys = lookup_keys(term.op, term.kind, term.op_class, term.runs_as)
        return next((k for k in keys if k in self.ovh_table), "overhead")

    def figures_of(self, term: Term) -> list[str]:
        """The figures (free or not) that price ``term``: its efficiency, its compute
        ceiling and, when it pays any, its overhead."""
        out = [f"efficiency.{self.eff_key(term)}",
               f"compute_efficiency.{self.cef_key(term)}"]
        if term.launches:
            key = self.ovh_key(term)
            out.append(key if key == "overhead" else f"overheads.{key}")
        if term.link_seconds:
            out.append("link_bandwidth")
        return out

    def predict(self, row: Row, values: Mapping[str, float]) -> float:
        """Seconds predicted for ``row`` with ``values`` for the free figures (the device's
        own figures for the others)."""
        total = 0.0
        for term in row.terms:
            key = self.eff_key(term)
            eff = values.get(f"efficiency.{key}", self.eff_table.get(key, 1.0))
            ckey = self.cef_key(term)
            ceiling = values.get(f"compute_efficiency.{ckey}", self.cef_table.get(ckey, 1.0))
            bare = term.bare_seconds
            if ceiling < 1 or term.dram_seconds:  # exact for one kernel; else on the sums
                # memory from beyond a cache takes its time whatever the efficiency
                memory = term.memory_seconds - term.dram_seconds * (1 - eff)
                bare += max(term.compute_seconds / ceiling, memory) - \
                    max(term.compute_seconds, term.memory_seconds)
            okey = self.ovh_key(term)
            if okey == "overhead":
                ovh = values.get("overhead", self.device.overhead)
            else:
                ovh = values.get(f"overheads.{okey}", self.ovh_table[okey])
            link_scale = 1.0
            if "link_bandwidth" in values and self.device.link_bandwidth:
                link_scale = self.device.link_bandwidth / values["link_bandwidth"]
            total += bare / eff + term.launches * ovh + \
                term.link_seconds * link_scale + term.fixed_seconds
        return total * (self.device.pipeline_latency_factor or 1.0)

    def device_with(self, values: Mapping[str, float], sources: Mapping[str, str]) -> Device:
        tables: dict[str, Any] = {group: dict(getattr(self.device, group))
                                  for group in TABLES}
        changes: dict[str, Any] = {}
        for name, value in values.items():
            group, _, key = name.partition(".")
            if group in tables:
                tables[group][key] = value
            else:
                changes[name] = value
        return replace(self.device, **tables, sources={**self.device.sources, **sources},
                       **changes)


def _check_free(name: str, device: Device) -> None:
    group, _, key = name.partition(".")
    if group in TABLES and key:
        return
    if name == "overhead":
        return
    if name == "link_bandwidth":
        if device.link_bandwidth is None:
            raise DeviceError(f"device {device.name!r}: link_bandwidth is free in the fit but "
                              f"the device has no link_bandwidth to bound it")
        return
    raise DeviceError(f"cannot fit {name!r}: free figures are efficiency.KEY, "
                      f"compute_efficiency.KEY, overheads.KEY, overhead and link_bandwidth")


def used_by(device: Device, rows: Sequence[Row], free: Sequence[str]) -> dict[str, list[str]]:
    """``{free figure: names of the rows that price with it}`` (a figure no row prices with
    maps to ``[]``: it cannot be fitted)."""
    model = _Model(device, free)
    users: dict[str, list[str]] = {name: [] for name in free}
    for row in rows:
        for name in dict.fromkeys(f for t in row.terms for f in model.figures_of(t)):
            if name in users:
                users[name].append(row.name)
    return users


def fit(device: Device, rows: Sequence[Row], free: Sequence[str], *,
        cite: str = "") -> Fit:
    """Fit ``free`` figures of ``device`` to ``rows`` (robust least squares on the relative
    error, bounded to physical values) and return the fitted device and per-row figures.

    ``cite`` names where the rows come from; each fitted figure's source becomes
    ``"fitted to rows A, B, C of <cite> ..."``.
    """
    if not rows:
        raise DeviceError(f"device {device.name!r}: no measured rows to fit")
    if not free:
        raise DeviceError(f"device {device.name!r}: no free figures to fit")
    try:
        from scipy.optimize import least_squares
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None
    model = _Model(device, free)
    for row in rows:
        if not (row.measured > 0 and math.isfinite(row.measured)):
            raise DeviceError(f"row {row.name!r}: measured latency must be a positive number "
                              f"of seconds, got {row.measured!r}")
    # parameters: log(1/efficiency) >= 0, overhead in seconds >= 0 (scaled to us),
    # log(datasheet link / link) >= 0
    lower, upper, start = [], [], []
    tight = _tight_ceilings(model, rows)
    for name in model.free:
        if name.startswith(("efficiency.", "compute_efficiency.")):
            lower.append(0.0)
            upper.append(math.log(1e4))
            entries = model.eff_table if name.startswith("efficiency.") else model.cef_table
            start.append(-math.log(tight.get(name, entries.get(name.split(".", 1)[1], 1.0))))
        elif name == "link_bandwidth":
            lower.append(0.0)
            upper.append(math.log(1e3))
            start.append(0.0)
        else:
            lower.append(0.0)
            upper.append(1e6)  # one second, in microseconds
            start.append(1.0)

    def values_of(x: Sequence[float]) -> dict[str, float]:
        out = {}
        for name, v in zip(model.free, x, strict=True):
            if name.startswith(("efficiency.", "compute_efficiency.")):
                out[name] = math.exp(-v)
            elif name == "link_bandwidth":
                out[name] = (device.link_bandwidth or 1.0) * math.exp(-v)
            else:
                out[name] = v * 1e-6
        return out

    def residuals(x: Sequence[float]) -> list[float]:
        values = values_of(x)
        return [math.log(max(model.predict(r, values), 1e-15) / r.measured) for r in rows]

    # a ceiling that stops binding (its compute below its memory) has no slope, so the solver
    # can stop short: start it from the tight ceilings and from a third and three times them,
    # and keep the best
    result = None
    for scale in START_SCALES:
        shift = -math.log(scale)
        moved = [s + shift if name.startswith("compute_efficiency.") else s
                 for name, s in zip(model.free, start, strict=True)]
        # strictly inside the bounds: a start on a bound can leave the solver there
        moved = [min(max(s, lo + 0.01), hi - 0.01) for s, lo, hi in zip(moved, lower, upper,
                                                                       strict=True)]
        tried = least_squares(residuals, moved, bounds=(lower, upper), loss="soft_l1",
                              f_scale=0.1)
        if result is None or tried.cost < result.cost - 1e-12:
            result = tried
    assert result is not None
    values = values_of(result.x)
    names = ", ".join(r.name for r in rows)
    where = f" of {cite}" if cite else ""
    sources = {name: f"fitted to rows {names}{where} (robust least squares on the relative "
                     f"error of {len(rows)} rows, {len(model.free)} free figures)"
               for name in model.free}
    fitted = model.device_with(_rounded(values), sources)
    asis = _Model(device, [])  # the device as it was, its freed figures' values included
    before = {r.name: asis.predict(r, {}) for r in rows}
    refit = _Model(fitted, [])
    table = [(r.name, before[r.name], refit.predict(r, {}), r.measured) for r in rows]
    return Fit(fitted, values, table, used_by(device, rows, model.free))


def _tight_ceilings(model: _Model, rows: Sequence[Row]) -> dict[str, float]:
    """Where each free compute ceiling starts: the lowest ceiling at which no row's compute
    alone takes longer than the row was measured to take (``max over rows of compute /
    measured``, within ``[1e-4, 1]``). A ceiling starting at 1 would leave every
    memory-bound term's time unchanged as it moves, so the solver would never see it."""
    out: dict[str, float] = {}
    free = {n for n in model.free if n.startswith("compute_efficiency.")}
    for row in rows:
        compute: dict[str, float] = {}
        for term in row.terms:
            name = f"compute_efficiency.{model.cef_key(term)}"
            if name in free:
                compute[name] = compute.get(name, 0.0) + term.compute_seconds
        for name, seconds in compute.items():
            out[name] = max(out.get(name, 0.0), seconds / row.measured)
    return {name: min(max(value, 1e-4), 1.0) for name, value in out.items()}


def _rounded(values: Mapping[str, float]) -> dict[str, float]:
    """Fitted figures to 4 significant digits (what a device file shows)."""
    return {k: float(f"{v:.4g}") for k, v in values.items()}


def rows_from(pairs: Iterable[tuple[str, Latency, float]]) -> list[Row]:
    """Rows from ``(name, predicted latency on the device, measured seconds)``."""
    return [Row(name, tuple(terms(lat)), seconds) for name, lat, seconds in pairs]
