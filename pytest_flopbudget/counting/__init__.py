"""The counting engine: trace a model on fake tensors and count every aten operator.

:mod:`.costs` (the value types formulas speak), :mod:`.registry` and :mod:`.ops` (one
shape-only formula per aten operator), :mod:`.tracer` (the dispatch mode that runs the forward
and records each operator at its module), :mod:`.model_guard` (the model is left exactly as
found), :mod:`.params` (which module owns which parameter), :mod:`.optimizers` (an optimizer
step's per-element cost) and :mod:`.profile` (``profile()``, totals and per-layer rows).
"""
