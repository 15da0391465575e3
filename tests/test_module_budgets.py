"""Per-module budgets, the coverage gate and failures that carry their hotspot tables
(issue 18), end to end through ``pytester``.

Exact figures of ``EdgeNet`` (fp32 on the default ``cpu`` device, one input row of 1,000):

* ``backbone.0`` Linear(1000, 1000): 1,000,000 MACs, 1,001,000 params;
  ``backbone.1`` ReLU; ``backbone.2`` Linear(1000, 500): 500,000 MACs, 500,500 params.
  ``backbone``: 1,500,000 MACs = 1.5 MMACs; 1,501,500 params.
* ``head`` Linear(500, 10): 5,000 MACs; 500 x 10 + 10 = 5,010 params.
* the model: 1,505,000 MACs = 1.505 MMACs; 1,506,510 params.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

EDGE = """
import pytest, torch
from torch import nn

class EdgeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(1000, 1000), nn.ReLU(), nn.Linear(1000, 500))
        self.head = nn.Linear(500, 10)

    def forward(self, x):
        return self.head(self.backbone(x))

def x():
    return torch.randn(1, 1000)
"""

SPECTRAL = """
import pytest, torch
from torch import nn

class FFTFrontEnd(nn.Module):
    def forward(self, x):
        return torch.fft.rfft(x).abs()

class Spectral(nn.Module):
    def __init__(self):
        super().__init__()
        self.frontend = FFTFrontEnd()
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc(self.frontend(x))

def x():
    return torch.randn(2, 8)
"""


def glob_escape(pattern: str) -> str:
    """fnmatch reads [...] as a character class; match an opening bracket literally."""
    return pattern.replace("[", "[[]")


# --- per-module budgets --------------------------------------------------------------------

def test_module_limits_fail_naming_the_module_and_its_layers(pytester):
    pytester.makepyfile(EDGE + """
@pytest.mark.flop_budget(max_mmacs=2, modules={"backbone": {"max_mmacs": 1.2},
                                               "head": {"max_params": 5_000}})
def test_edge(flop_budget):
    flop_budget(EdgeNet().eval(), x())
""")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # the model's own 1.505 MMACs are within 2; backbone 1.5 > 1.2 (+25%); head 5,010 > 5,000
    # params: 10 / 5,000 = +0.2%. Shares are of the module's total: 1 of 1.5 MMACs = 66.7%.
    result.stdout.fnmatch_lines([
        "flop budget exceeded: EdgeNet on cpu (fp32), traced on fake tensors",
        "  backbone: max_mmacs: 1.5 MMACs > 1.2 MMACs (+25%)",
        "  head: max_params: 5,010 params > 5,000 params (+0.2%)",
        "  top 5 layers of backbone by MACs:",
        "    layer       type    output  MMACs  share  FLOP/B  bound * time ms",
        "    backbone.0  Linear  1x1000      1  66.7%  *",
        "    backbone.2  Linear  1x500     0.5  33.3%  *",
        "  top 5 layers of head by parameters:",
        "    layer  type    output  params   share  FLOP/B  bound * time ms",
        "    head   Linear  1x10     5,010  100.0%  *",
    ], consecutive=True)
    assert "max_mmacs: 1.505" not in result.stdout.str()


def test_module_limits_within_budget_pass_and_show_their_use(pytester, tmp_path):
    out = tmp_path / "flop.json"
    pytester.makepyfile(EDGE + """
@pytest.mark.flop_budget(modules={"backbone": {"max_mmacs": 3}, "head": {"max_params": 10_000}})
def test_edge(flop_budget):
    flop_budget(EdgeNet().eval(), x())
""")
    result = pytester.runpytest("--flop-report", f"--flop-json={out}")
    result.assert_outcomes(passed=1)
    # 1.5 of 3 MMACs = 50%; 5,010 of 10,000 params = 50.1% -> "50%"
    result.stdout.fnmatch_lines(["*::test_edge*EdgeNet*backbone MMACs 50%, head params 50%*"
                                 "passed"])
    import json

    [record] = json.loads(out.read_text())["tests"]
    assert record["budget"]["modules"] == {"backbone": {"max_mmacs": 3.0},
                                           "head": {"max_params": 10_000.0}}
    [m] = record["measurements"]
    backbone = m["modules"]["backbone"]
    assert (backbone["kind"], backbone["macs"], backbone["params"]) == (
        "Sequential", 1_500_000, 1_501_500)
    # fp32 weights: 1,501,500 x 4 bytes
    assert backbone["weight_bytes"] == 6_006_000
    assert backbone["usage"] == {"max_mmacs": 0.5}
    assert "activation" not in str(sorted(backbone))


def test_config_and_marker_module_limits_merge_per_limit(pytester):
    pytester.makefile(".toml", pyproject="""
[tool.flopbudget.tests."*::test_edge".modules.backbone]
max_mmacs = 1.2
max_params = 2_000_000

[tool.flopbudget.tests."*::test_edge".modules.head]
max_params = 5_000
""")
    pytester.makepyfile(EDGE + """
@pytest.mark.flop_budget(modules={"backbone": {"max_mmacs": 1.4}})
def test_edge(flop_budget):
    flop_budget(EdgeNet().eval(), x())
""")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    # the marker's 1.4 MMACs replaces the table's 1.2 (1.5 > 1.4: +7%); the table's other
    # limits stay: backbone params 1,501,500 <= 2,000,000, head 5,010 > 5,000
    assert "  backbone: max_mmacs: 1.5 MMACs > 1.4 MMACs (+7%)" in out
    assert "  head: max_params: 5,010 params > 5,000 params (+0.2%)" in out
    assert "backbone: max_params" not in out


def test_an_unknown_module_path_is_one_error_listing_close_matches(pytester):
    pytester.makepyfile(EDGE + """
@pytest.mark.flop_budget(modules={"backbon": {"max_mmacs": 1}})
def test_typo(flop_budget):
    flop_budget(EdgeNet().eval(), x())

@pytest.mark.flop_budget(modules={"neck": {"max_mmacs": 1}})
def test_no_such(flop_budget):
    flop_budget(EdgeNet().eval(), x())

def test_plain():
    pass
""")
    result = pytester.runpytest()
    result.assert_outcomes(failed=2, passed=1)
    name = "test_an_unknown_module_path_is_one_error_listing_close_matches.py"
    result.stdout.fnmatch_lines([
        f"flop budget: @flop_budget on {name}::test_typo: modules: no module 'backbon' in "
        f"EdgeNet; did you mean 'backbone', 'backbone.0', 'backbone.1'?",
    ])
    result.stdout.fnmatch_lines([
        f"flop budget: @flop_budget on {name}::test_no_such: modules: no module 'neck' in "
        f"EdgeNet; its top-level modules: backbone, head",
    ])
    assert "Traceback" not in result.stdout.str()


def test_an_unknown_path_from_a_config_table_names_the_table(pytester):
    pytester.makefile(".toml", pyproject="""
[tool.flopbudget.tests."*::test_edge"]
modules = { bakbone = { max_mmacs = 1 } }
""")
    pytester.makepyfile(EDGE + """
def test_edge(flop_budget):
    flop_budget(EdgeNet().eval(), x())
""")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(['flop budget: pyproject.toml [[]tool.flopbudget.tests]."*::'
                                 'test_edge": modules: no module \'bakbone\' in EdgeNet; did '
                                 "you mean 'backbone', 'backbone.1', 'backbone.2'?"])


@pytest.mark.parametrize("modules,message", [
    ('{"backbone": {"max_activation_mb": 1}}',
     "modules['backbone']: max_activation_mb cannot be set per module: peak activation memory "
     "is a property of the whole forward*"),
    ('{"backbone": {"max_mmac": 1}}',
     "modules['backbone']: unknown limit 'max_mmac' (did you mean 'max_mmacs'?); a module "
     "takes: max_mflops, max_gflops, max_mmacs, max_gmacs, max_params, max_weight_mb, "
     "max_access_mb, max_latency_ms"),
    ('{"backbone": {"device": "npu"}}', "modules['backbone']: unknown limit 'device'*"),
    ('{"backbone": 5}', "modules['backbone'] must be a table of limits such as "
                        "{'max_gmacs': 0.3}, got 5"),
    ('{"backbone": {"max_mmacs": -1}}', "modules['backbone']: max_mmacs must be a positive "
                                        "number, got -1"),
    ('["backbone"]', "modules must be a table of module paths, each with its limits*"),
])
def test_a_bad_modules_argument_is_one_error_naming_the_marker(pytester, modules, message):
    pytester.makepyfile(EDGE + f"""
@pytest.mark.flop_budget(modules={modules})
def test_bad(flop_budget):
    flop_budget(EdgeNet().eval(), x())

def test_plain():
    pass
""")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines([f"*@flop_budget on *::test_bad: {glob_escape(message)}"])
    assert "Traceback" not in result.stdout.str()


def test_module_latency_is_the_roofline_of_the_modules_operators(pytester):
    # on slow-npu (1 MB/s, int8, every operator its own kernel) the backbone moves x 1,000 +
    # W 1,000,000 + b 1,000 + out 1,000 bytes (first linear), 1,000 + 1,000 (relu), 1,000 +
    # 500,000 + 500 + 500 (second): 1,507,000 bytes = 1.507 s, plus 3 operators x 10 us =
    # 1507.03 ms > 1000 ms (+51%)
    pytester.makefile(".toml", pyproject="""
[tool.flopbudget.devices.slow-npu]
base = "npu"
bandwidth = 1e6
fusion = "none"
""")
    pytester.makepyfile(EDGE + """
@pytest.mark.flop_budget(device="slow-npu", modules={"backbone": {"max_latency_ms": 1000}})
def test_edge(flop_budget):
    flop_budget(EdgeNet().eval(), x())
""")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "  backbone: max_latency_ms: 1,507.0 ms > 1,000 ms (+51%)",
        "  top 5 layers of backbone by predicted time:",
        "    layer       type    output  time ms  share  FLOP/B  bound",
        "    backbone.0  Linear  1x1000  1,003.0  66.6%    2.00  memory",  # 1,003,000 B + 10 us
        "    backbone.2  Linear  1x500     502.0  33.3%    1.99  memory",  # 502,000 B + 10 us
        "    backbone.1  ReLU    1x1000     2.01   0.1%    0.50  memory",  # 2,000 B + 10 us
    ], consecutive=True)


# --- failures carry their hotspot tables ---------------------------------------------------

def test_junit_xml_carries_the_hotspot_table(pytester, tmp_path):
    xml_path = tmp_path / "junit.xml"
    pytester.makepyfile(EDGE + """
@pytest.mark.flop_budget(max_mmacs=1)
def test_edge(flop_budget):
    flop_budget(EdgeNet().eval(), x())
""")
    result = pytester.runpytest(f"--junitxml={xml_path}")
    result.assert_outcomes(failed=1)
    [case] = ET.parse(xml_path).getroot().iter("testcase")
    failure = case.find("failure")
    assert failure is not None
    body = failure.text or ""
    assert body.splitlines()[:5] == [
        "flop budget exceeded: EdgeNet on cpu (fp32), traced on fake tensors",
        # 1,505,000 MACs shown to 3 digits; 1,505,000 / 1,000,000 - 1 = 50.5% shown as 50%
        "  max_mmacs: 1.5 MMACs > 1 MMACs (+50%)",
        "  top 5 layers by MACs:",
        "    layer       type    output  MMACs  share  FLOP/B  bound   time ms",
        # 1,000,000 of 1,505,000 MACs = 66.4%
        "    backbone.0  Linear  1x1000      1  66.4%    0.50  memory   0.2056",
    ]
    assert "backbone.2  Linear  1x500     0.5  33.2%" in body
    assert "head        Linear  1x10    0.005   0.3%" in body
    # and the figures as properties
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["flopbudget.EdgeNet.macs"] == "1505000"


def test_summary_is_compact_by_default_full_with_v_one_line_with_q(pytester):
    pytester.makepyfile(EDGE + """
@pytest.mark.flop_budget(max_mmacs=1)
def test_edge(flop_budget):
    flop_budget(EdgeNet().eval(), x())
""")
    name = "test_summary_is_compact_by_default_full_with_v_one_line_with_q.py::test_edge"

    def summary(*args: str) -> list[str]:
        lines = pytester.runpytest(*args).outlines
        start = next(i for i, line in enumerate(lines) if "= flop budget =" in line)
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("===="))
        return lines[start + 1:end]

    assert summary() == [f"{name}: EdgeNet on cpu (fp32), traced on fake tensors",
                         "  max_mmacs: 1.5 MMACs > 1 MMACs (+50%)"]
    assert summary("-q") == [f"{name}: EdgeNet over max_mmacs"]
    verbose = summary("-v")
    assert verbose[:3] == [f"{name}: EdgeNet on cpu (fp32), traced on fake tensors",
                           "  max_mmacs: 1.5 MMACs > 1 MMACs (+50%)",
                           "  top 5 layers by MACs:"]
    assert len(verbose) == 3 + 4 + 1  # header, 3 layers with MACs, a blank line
    # without failure texts (--tb=no) the summary keeps the tables
    assert summary("--tb=no")[2] == "  top 5 layers by MACs:"


# --- the coverage gate --------------------------------------------------------------------

def test_without_strict_unsupported_operators_are_listed_and_pass(pytester):
    pytester.makepyfile(SPECTRAL + """
def test_fft(flop_budget):
    flop_budget(Spectral(), x())
""")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "operators without a formula (their FLOPs are not counted):",
        "*::test_fft: Spectral",
        "  unsupported ops (FLOPs not counted, traffic counted): aten._fft_r2c x1",
        "    aten._fft_r2c x1 in frontend (FFTFrontEnd)",  # -v: the layer that called it
    ])


@pytest.mark.parametrize("how,where", [
    ("marker", "@flop_budget on *::test_fft"),
    ("config", "pyproject.toml [[]tool.flopbudget]"),
    ("table", 'pyproject.toml [[]tool.flopbudget.tests]."*::test_fft"'),
    ("--flop-strict", "--flop-strict"),
    ("-o", "flop_strict (ini option)"),
])
def test_strict_fails_naming_each_operator_and_its_layer(pytester, how, where):
    marker = "@pytest.mark.flop_budget(strict=True)\n" if how == "marker" else ""
    if how == "config":
        pytester.makefile(".toml", pyproject="[tool.flopbudget]\nstrict = true\n")
    if how == "table":
        pytester.makefile(".toml", pyproject='[tool.flopbudget.tests."*::test_fft"]\n'
                                             'strict = true\n')
    pytester.makepyfile(SPECTRAL + f"""
{marker}def test_fft(flop_budget):
    flop_budget(Spectral(), x())

def test_linear(flop_budget):
    flop_budget(nn.Linear(4, 4), torch.randn(1, 4))
""")
    args = {"--flop-strict": ["--flop-strict"], "-o": ["-o", "flop_strict=true"]}
    result = pytester.runpytest(*args.get(how, []))
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        f"flop coverage: Spectral ran operators without a FLOP formula (strict, set by "
        f"{where}); their FLOPs would not be counted:",
        "  aten._fft_r2c x1 in frontend (FFTFrontEnd)",
    ])


def test_the_marker_can_turn_a_config_wide_strict_off(pytester):
    pytester.makefile(".toml", pyproject="[tool.flopbudget]\nstrict = true\n")
    pytester.makepyfile(SPECTRAL + """
@pytest.mark.flop_budget(strict=False)
def test_fft(flop_budget):
    flop_budget(Spectral(), x())
""")
    pytester.runpytest().assert_outcomes(passed=1)
    # --flop-strict is for every test, whatever the marker says
    pytester.runpytest("--flop-strict").assert_outcomes(failed=1)


def test_a_bad_strict_value_is_one_error(pytester):
    pytester.makepyfile(SPECTRAL + """
@pytest.mark.flop_budget(strict="yes")
def test_fft(flop_budget):
    flop_budget(Spectral(), x())
""")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@flop_budget on *::test_fft: strict must be true or false, "
                                 "got 'yes'"])


def test_a_limit_on_the_model_itself_reads_model(pytester):
    # modules={"": ...} is the model's own path: 1,506,510 params > 1,000,000 (+51%)
    pytester.makepyfile(EDGE + """
@pytest.mark.flop_budget(modules={"": {"max_params": 1_000_000}})
def test_root(flop_budget):
    flop_budget(EdgeNet().eval(), x())
""")
    result = pytester.runpytest("--flop-report")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*<model>: max_params: 1,506,510 params > 1,000,000 params "
                                 "(+51%)*"])
    result.stdout.fnmatch_lines(["*::test_root*EdgeNet*<model> params 151%*"])
