"""Predicted next to measured, layer by layer: where the device model is wrong.

:func:`compare` profiles a model (fake tensors), predicts every layer's time on a device, then
times the model for real on this machine and sets the two side by side per layer row (a
module's own work, as in ``ModelProfile.layers``):

* ``eager``: forward pre- and post-hooks on every module read ``time.perf_counter``; a
  module's own time is its time less its children's, the median over repeats. The hooks
  themselves cost about a microsecond per module call; the end-to-end time is measured
  without them. A module whose fused fast path hooks would turn off
  (``nn.TransformerEncoderLayer`` checks for hooks on itself and its submodules, and runs
  unfused when it finds any) is timed around its ``forward`` instead, for as long as the
  comparison runs, and its submodules are not timed: it runs as it does without the
  comparison, and its time is its own.
* ``onnxruntime``: the model exported with ``torch.onnx.export(..., dynamo=True)`` and run
  with ONNX Runtime's per-node profiler; each node's time goes to the module that the
  exporter recorded for the node (``pkg.torch.onnx.name_scopes``), a fused node's to the
  module of its first original node (see :mod:`.onnx_runtime`).
"""

from __future__ import annotations

import importlib
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.text import table
from ..counting.profile import profile
from ..devices.device import Device
from .timing import Timer

#: Modules that run a fused fast path only when no hooks are attached to them or their
#: submodules (``why_not_sparsity_fast_path`` in ``torch/nn/modules/transformer.py``).
FAST_PATH_MODULES: tuple[type[nn.Module], ...] = (nn.TransformerEncoderLayer,)


class CompareError(ValueError):
    """The model factory cannot be loaded or returns something else than (model, inputs)."""


@dataclass(frozen=True)
class LayerTime:
    """One layer row: predicted and measured seconds (its own work)."""

    name: str
    kind: str
    predicted: float
    measured: float
    fused_into: str | None = None  # the layer whose kernel runs this one's work on the device

    @property
    def ratio(self) -> float:
        """Predicted over measured (``inf`` when nothing was measured)."""
        return self.predicted / self.measured if self.measured > 0 else float("inf")


@dataclass(frozen=True)
class Comparison:
    """A model on a device through a runtime: per-layer rows and the totals (seconds); the
    measured total is one end-to-end forward without hooks or profiler."""

    model: str
    device: str
    runtime: str
    layers: list[LayerTime]
    predicted: float
    measured: float

    def lines(self, top: int = 15) -> list[str]:
        """The table people read: the ``top`` layers by measured time, then the totals."""
        shown = sorted(self.layers, key=lambda r: max(r.measured, r.predicted),
                       reverse=True)[:top]
        rows = [(r.name or "(model)", r.kind,
                 f"{r.predicted * 1e3:.4f}" if r.fused_into is None
                 else f"in {r.fused_into}",
                 f"{r.measured * 1e3:.4f}", "fused" if r.fused_into is not None
                 else _ratio(r.ratio)) for r in shown]
        head = (f"{self.model} on {self.device} through {self.runtime}: predicted "
                f"{self.predicted * 1e3:.3f} ms, measured {self.measured * 1e3:.3f} ms "
                f"(predicted / measured {_ratio(self.predicted / self.measured)})")
        out = [head, *table(("layer", "type", "predicted ms", "measured ms", "pred/meas"),
                            rows, right={2, 3, 4})]
        rest = len(self.layers) - len(shown)
        if rest > 0:
            left = sum(r.measured for r in self.layers) - sum(r.measured for r in shown)
            out.append(f"  ({rest} more layers, {left * 1e3:.3f} ms measured)")
        return out


def _ratio(value: float) -> str:
    return "-" if value == float("inf") else f"{value:.2f}x"


def load_factory(spec: str) -> Callable[[], Any]:
    """``module:function`` (or ``path/to/file.py:function``) -> the function."""
    target, sep, attr = spec.partition(":")
    if not sep or not attr:
        raise CompareError(f"expected MODULE:FACTORY (e.g. models:build), got {spec!r}")
    try:
        if target.endswith(".py"):
            path = Path(target).resolve()
            found = importlib.util.spec_from_file_location(f"_flopbudget_{path.stem}", path)
            if found is None or found.loader is None or not path.is_file():
                raise ImportError(f"no file {path}")
            sys.path.insert(0, str(path.parent))  # its own imports, beside it
            module = importlib.util.module_from_spec(found)
            sys.modules[found.name] = module  # dataclasses and pickling look it up there
            found.loader.exec_module(module)
        else:
            if "" not in sys.path:
                sys.path.insert(0, "")
            module = importlib.import_module(target)
    except Exception as exc:  # the user's module: whatever it raises is one line
        raise CompareError(f"cannot import {target!r}: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise CompareError(f"{target} has no function {attr!r}")
    return factory


def build(factory: Callable[[], Any], spec: str) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """Call the factory: it must return ``(model, inputs)``, inputs a tensor or a tuple."""
    try:
        made = factory()
    except Exception as exc:  # the user's factory: whatever it raises is one line
        raise CompareError(f"{spec} raised {type(exc).__name__}: {exc}") from None
    if not (isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], nn.Module)):
        raise CompareError(f"{spec} must return (model, inputs), got {type(made).__name__}")
    model, inputs = made
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    if not isinstance(inputs, tuple) or not all(isinstance(x, torch.Tensor) for x in inputs):
        raise CompareError(f"{spec}: inputs must be a tensor or a tuple of tensors")
    return model.eval(), inputs


def eager_layer_times(model: nn.Module, inputs: Sequence[torch.Tensor],
                      repeats: int) -> dict[str, float]:
    """``{module path: median own seconds}`` of eager forwards timed by module hooks (a
    module of :data:`FAST_PATH_MODULES` around its ``forward``, its submodules not at all);
    the model is left as it was."""
    names = {m: n for n, m in model.named_modules()}
    fused = [m for m in names if isinstance(m, FAST_PATH_MODULES)]
    inside = {sub for m in fused for sub in m.modules() if sub is not m}
    samples: dict[str, list[float]] = {}
    stack: list[list[float]] = []  # per open module: [start, children's seconds]
    own: dict[str, float] = {}

    def pre(module: nn.Module, _: Any) -> None:
        stack.append([time.perf_counter(), 0.0])

    def post(module: nn.Module, _: Any, __: Any) -> None:
        start, children = stack.pop()
        spent = time.perf_counter() - start
        if stack:
            stack[-1][1] += spent
        name = names[module]
        own[name] = own.get(name, 0.0) + spent - children

    def timed(module: nn.Module) -> Callable[..., Any]:
        forward = module.forward

        def run(*args: Any, **kwargs: Any) -> Any:
            pre(module, args)
            try:
                return forward(*args, **kwargs)
            finally:
                post(module, args, None)
        return run

    hooked = [m for m in names if m not in inside and m not in fused]
    handles = [h for m in hooked for h in (m.register_forward_pre_hook(pre),
                                           m.register_forward_hook(post))]
    own_forwards = {m: m.__dict__["forward"] for m in fused if "forward" in m.__dict__}
    for m in fused:
        m.forward = timed(m)
    try:
        with torch.inference_mode():
            for _ in range(3):
                model(*inputs)
            for _ in range(repeats):
                own.clear()
                model(*inputs)
                for name, seconds in own.items():
                    samples.setdefault(name, []).append(seconds)
    finally:
        for h in handles:
            h.remove()
        for m in fused:
            del m.forward  # the class's forward again, or the module's own one:
            if m in own_forwards:
                m.forward = own_forwards[m]
    return {name: statistics.median(values) for name, values in samples.items()}


def compare(model: nn.Module, inputs: Sequence[torch.Tensor], device: Device,
            runtime: str = "eager", repeats: int = 20,
            workdir: Path | None = None) -> Comparison:
    """Predicted and measured time per layer of ``model(*inputs)`` on ``device`` through
    ``runtime`` (``"eager"`` or ``"onnxruntime"``)."""
    prof = profile(model, *inputs)
    latency = prof.latency(device)
    timer = Timer(patience_s=20.0)
    if runtime == "eager":
        measured = eager_layer_times(model, inputs, repeats)
        with torch.inference_mode():
            total = timer(lambda: model(*inputs), max(repeats // 2, 3), warmup=3,
                          min_sample_s=0.05).seconds
    elif runtime == "onnxruntime":
        from .onnx_runtime import layer_times

        measured, total = layer_times(model, tuple(inputs), repeats, timer, workdir)
    else:
        raise CompareError(f"unknown runtime {runtime!r}: expected eager or onnxruntime")
    rows = [LayerTime(row.name, row.kind, row.seconds, measured.get(row.name, 0.0),
                      row.fused_into or None) for row in latency.layers]
    known = {r.name for r in rows}
    rows += [LayerTime(name, "?", 0.0, seconds) for name, seconds in measured.items()
             if name not in known and seconds > 0]
    return Comparison(type(model).__name__, device.name, runtime, rows, latency.seconds,
                      total)
