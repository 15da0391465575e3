"""The pytest layer: the only place that speaks pytest.

:mod:`.hooks` (the plugin registered under the ``pytest11`` entry point: options, the marker,
the ``flop_budget`` fixture, the per-test verdict and the terminal summary), :mod:`.fixture`
(what the fixture hands a test), :mod:`.options` (option parsing helpers), and the features
that plug into it: :mod:`.complexity` (``max_order``), :mod:`.coverage_gate` (``strict``),
:mod:`.baseline_gate` (baselines and growth limits) and :mod:`.html_output` (``--flop-html``);
:mod:`.ini` (the ini twins of the scalar options and their precedence) and :mod:`.header`
(the report header line).
"""
