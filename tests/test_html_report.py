"""``--flop-html``: the self-contained HTML report, read as HTML and seen in a browser.

One small project is run once (in a subprocess) and its report is read by several tests:

* ``nn.Linear(1000, 1000)`` on one row: 1,000 x 1,000 = 1,000,000 MACs; FLOPs = 2 x MACs +
  1,000 bias adds = 2,001,000; params = 1,000,000 + 1,000 = 1,001,000. Traffic: reads x (1,000)
  + W (1,000,000) + b (1,000) elements, writes 1,000: 1,003,000 elements.
  - on ``cpu`` (fp32, 100 GFLOP/s, 20 GB/s, 5 us per operator): 4,012,000 bytes; compute
    2,001,000 / 100e9 = 20.01 us < memory 4,012,000 / 20e9 = 200.6 us, so memory-bound:
    200.6 + 5 = 205.6 us. Ridge = 100e9 / 20e9 = 5 FLOP/byte.
  - on ``npu`` (int8, 4 TOP/s, 10 GB/s, 10 us per operator): 1,003,000 bytes; 1,003,000 /
    10e9 = 100.3 us + 10 = 110.3 us. Ridge = 4e12 / 10e9 = 400 FLOP/byte.
* the seed-000 ``VibrationClassifier`` on ``npu``, over its 5 ms latency budget: 22 layer rows,
  of which the containers ``features`` and ``head`` and the eval-mode ``head.2`` Dropout do no
  work, so 19 layers take time (and all 19 do FLOPs): 19 points on its roofline.
* a test whose marker has a typo: an error, listed in the overview without a section.

The browser test needs the Debian ``chromium`` package; it fails when chromium is missing and
``CI`` is set, and is skipped otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_flopbudget.devices.project import get_device

TESTS_DIR = Path(__file__).parent
CONFTEST = f"import sys\nsys.path.insert(0, {str(TESTS_DIR)!r})\n"
PROJECT = """
import pytest, torch
from torch import nn
from reference_models import VibrationClassifier

def big():
    return nn.Linear(1000, 1000)

@pytest.mark.flop_budget(max_mflops=2.5, max_params=1_100_000)
def test_linear_cpu(flop_budget):
    flop_budget(big(), torch.randn(1, 1000))

@pytest.mark.flop_budget(max_mflops=3, device="npu", dtype="int8")
def test_linear_npu(flop_budget):
    flop_budget(big(), torch.randn(1, 1000))

@pytest.mark.flop_budget(max_latency_ms=5, device="npu")
def test_vibration(flop_budget):
    flop_budget(VibrationClassifier().eval(), torch.randn(1, 1, 1024))

@pytest.mark.flop_budget(max_mflop=3)
def test_typo(flop_budget):
    pass
"""
VOID = {"meta", "br", "hr", "img", "input", "link", "source", "wbr"}


# -- a small DOM from the stdlib parser ----------------------------------------------------
class Node:
    """An element: tag, attributes, children (Nodes and text)."""

    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag, self.attrs = tag, attrs
        self.children: list[Node | str] = []

    def iter(self, tag: str | None = None, cls: str | None = None):
        for child in self.children:
            if isinstance(child, Node):
                if (tag is None or child.tag == tag) and \
                        (cls is None or cls in child.attrs.get("class", "").split()):
                    yield child
                yield from child.iter(tag, cls)

    def find(self, tag: str | None = None, cls: str | None = None) -> Node:
        return next(self.iter(tag, cls))

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)


class Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(text: str) -> Node:
    tree = Tree()
    tree.feed(text)
    tree.close()
    return tree.root


def sections(doc: Node) -> dict[str, Node]:
    """``{test name: its section}``."""
    return {s.attrs["data-nodeid"].split("::")[-1]: s for s in doc.iter("section", "test")}


def figures(section: Node) -> dict[str, float]:
    return {dd.attrs["data-key"]: float(dd.attrs["data-v"]) for dd in section.iter("dd")}


def points(section: Node) -> list[Node]:
    return list(section.iter("g", "layer-point"))


# -- the report of the project, made once --------------------------------------------------
@pytest.fixture(scope="module")
def report(once_per_run) -> dict[str, Any]:
    pytest.importorskip("matplotlib")

    def run(root: Path) -> str:
        (root / "conftest.py").write_text(CONFTEST)
        (root / "test_models.py").write_text(PROJECT)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS"))}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
             f"--flop-html={root / 'out' / 'report.html'}", f"--flop-json={root / 'flop.json'}",
             "test_models.py"],
            cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert "2 passed" in proc.stdout and "1 failed" in proc.stdout and "1 error" in \
            proc.stdout, proc.stdout + proc.stderr
        return proc.stdout

    root, stdout = once_per_run("html_project", run)
    out = root / "out" / "report.html"
    text = out.read_text()
    doc = json.loads((root / "flop.json").read_text())
    return {"path": out, "text": text, "doc": parse(text), "json": doc,
            "stdout": stdout, "measured": {t["nodeid"].split("::")[-1]: t["measurements"]
                                           for t in doc["tests"]}}


def test_the_terminal_names_the_file_and_no_temp_file_is_left(report):
    assert f"flop budget HTML report: {report['path']}" in report["stdout"]
    assert [p.name for p in report["path"].parent.iterdir()] == ["report.html"]


def test_headline_figures_are_exact(report):
    s = sections(report["doc"])
    assert set(s) == {"test_linear_cpu", "test_linear_npu", "test_vibration"}
    cpu, npu = figures(s["test_linear_cpu"]), figures(s["test_linear_npu"])
    for f in (cpu, npu):
        assert (f["flops"], f["macs"], f["params"]) == (2_001_000, 1_000_000, 1_001_000)
    assert cpu["access_bytes"] == 4_012_000 and npu["access_bytes"] == 1_003_000
    assert cpu["latency_s"] == pytest.approx(205.6e-6) and \
        npu["latency_s"] == pytest.approx(110.3e-6)
    # the ridge point is peak / bandwidth of the device: 100e9 / 20e9 and 4e12 / 10e9
    assert cpu["ridge"] == pytest.approx(5) == get_device("cpu").ridge("fp32")
    assert npu["ridge"] == pytest.approx(400) == get_device("npu").ridge("int8")
    assert (npu["peak"], npu["bandwidth"]) == (4e12, 10e9)


def test_the_layer_table_has_one_row_per_working_layer(report):
    s = sections(report["doc"])
    table = s["test_linear_cpu"].find("table", "layers")
    headers = [th.text for th in table.iter("th")]
    assert headers == ["#", "layer", "kind", "input \u2192 output", "MFLOPs", "params",
                       "access bytes", "FLOP/B", "bound", "pred. ms", "share"]
    [row] = table.find("tbody").iter("tr")
    cells = [td.text for td in row.iter("td")]
    assert cells == ["0", "<model>", "Linear", "1x1000 \u2192 1x1000", "2.001", "1,001,000",
                     "4,012,000", "0.499", "memory", "0.2056", "100.0%"]
    flops, params, nbytes = (float(td.attrs["data-v"]) for td in list(row.iter("td"))[4:7])
    assert (flops, params, nbytes) == (2_001_000, 1_001_000, 4_012_000)
    vib = s["test_vibration"].find("table", "layers").find("tbody")
    names = [tr.attrs["data-layer"] for tr in vib.iter("tr")]
    # every row with work, bytes or parameters, in execution order; not the empty containers
    assert names[:3] == ["", "features.0", "features.1"] and "lstm" in names
    assert "features" not in names and "head" not in names and "head.2" not in names
    lstm = next(tr for tr in vib.iter("tr") if tr.attrs["data-layer"] == "lstm")
    assert "\u2020" in lstm.text  # intensity counts its recurrent weight re-reads


def test_roofline_points_are_the_timed_layers_on_or_under_the_roof(report):
    s = sections(report["doc"])
    [cpu_point] = points(s["test_linear_cpu"])
    # x = 2,001,000 / 4,012,000 FLOP/byte; y = 2,001,000 FLOPs / 205.6 us
    assert float(cpu_point.attrs["data-intensity"]) == pytest.approx(2_001_000 / 4_012_000)
    assert float(cpu_point.attrs["data-rate"]) == pytest.approx(2_001_000 / 205.6e-6)
    [m] = report["measured"]["test_vibration"]
    timed = [r["name"] for r in m["layers"] if r["seconds"] > 0 and r["flops"] > 0]
    vib = s["test_vibration"]
    # 19 layers compute; the npu's runtime fuses the five ReLUs into the convolution or
    # linear layer before them (features.1, .3, .6, .9, head.1): 14 take time of their own
    assert len(timed) == 14
    assert [p.attrs["data-layer"] for p in points(vib)] == timed
    assert vib.find("div", "measurement").attrs["data-points"] == "14"
    npu = get_device("npu")
    for p in points(vib):
        x, y = float(p.attrs["data-intensity"]), float(p.attrs["data-rate"])
        assert y <= min(npu.peak("int8"), x * npu.bandwidth) * (1 + 1e-9), p.attrs
        assert p.find("title").text.startswith(p.attrs["data-layer"] or "<model>")
    svg = vib.find("figure", "roofline").find("svg")
    labels = [t.text for t in svg.iter("text")]
    assert "lstm 98%" in labels  # the hotspot is named on the chart (97.8% of the time)
    assert any("ridge: 400 FLOP/B" in t for t in labels)
    caption = vib.find("figure", "roofline").find("figcaption").text
    assert "its FLOPs / its predicted time" in caption and "recurrent 0.2" in caption
    bars = vib.find("figure", "time").find("svg")
    assert len(list(bars.iter("path"))) >= 14


def test_overview_lists_every_budgeted_test_with_its_budget_bars(report):
    overview = report["doc"].find("table", "overview")
    rows = {tr.attrs["data-nodeid"].split("::")[-1]: tr for tr in overview.find("tbody").iter("tr")}
    assert set(rows) == {"test_linear_cpu", "test_linear_npu", "test_vibration", "test_typo"}
    verdicts = {k: r.find("span", "badge").text for k, r in rows.items()}
    assert verdicts == {"test_linear_cpu": "passed", "test_linear_npu": "passed",
                        "test_vibration": "OVER", "test_typo": "error"}
    assert "unknown argument 'max_mflop'" in rows["test_typo"].text
    bars = {b.attrs["data-limit"]: float(b.attrs["data-usage"])
            for b in rows["test_linear_cpu"].iter("div", "bar")}
    # 2.001 / 2.5 MFLOPs and 1,001,000 / 1,100,000 params
    assert bars == {"max_mflops": pytest.approx(0.8004), "max_params": pytest.approx(0.91)}
    [latency] = rows["test_vibration"].iter("div", "bar")
    assert float(latency.attrs["data-usage"]) > 1 and latency.find("span", "over")


def test_the_file_loads_nothing_from_outside(report):
    doc, text = report["doc"], report["text"]
    assert not list(doc.iter("link")) and not list(doc.iter("iframe"))
    scripts = list(doc.iter("script"))
    assert len(scripts) == 1 and "src" not in scripts[0].attrs
    for node in doc.iter():
        for key in ("src", "href", "xlink:href", "data"):
            assert node.attrs.get(key, "#").startswith("#"), (node.tag, node.attrs)
    assert "@import" not in text and "url(http" not in text
    assert len(list(doc.iter("svg"))) == 6  # two charts per profiled test


def test_a_device_missing_from_the_catalog_is_plotted_without_a_roof(report):
    from pytest_flopbudget.reporting.html_page import page

    doc = parse(page(report["json"]["tests"], lambda name: None))
    vib = sections(doc)["test_vibration"]
    assert len(points(vib)) == 14 and "ridge" not in figures(vib)  # the 14 timed layers
    assert "not in this session's catalog" in vib.find("figcaption").text
    empty = parse(page([], lambda name: None))
    assert "No test used the flop_budget fixture" in empty.text


# -- seen in a browser ---------------------------------------------------------------------
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--enable-logging=stderr",
                  "--v=0"]

#: Injected into a copy of the report: records page errors, the rendered size of every chart
#: and what a person gets by clicking "pred. ms" twice (slowest layer first); it also clicks
#: every overview header once (a script error would be recorded).
PROBE = """<script>
window.addEventListener("error", function (e) {
  var el = document.documentElement;
  el.setAttribute("data-errors", (el.getAttribute("data-errors") || "") + e.message + ";");
});
window.addEventListener("load", function () {
  document.querySelectorAll("figure svg").forEach(function (svg) {
    var r = svg.getBoundingClientRect();
    svg.setAttribute("data-rendered", Math.round(r.width) + "x" + Math.round(r.height));
  });
  document.querySelectorAll("table.layers").forEach(function (t) {
    var th = Array.from(t.querySelectorAll("th")).find(function (h) {
      return h.textContent === "pred. ms"; });
    th.click(); th.click();
    t.setAttribute("data-first", t.tBodies[0].rows[0].getAttribute("data-layer"));
  });
  document.querySelectorAll("table.overview th").forEach(function (th) { th.click(); });
  document.documentElement.setAttribute("data-probed", "1");
});
</script>"""


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser's path; a failure on CI when it is missing, a skip elsewhere."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail("chromium is missing: CI must install it (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium); the browser check "
                "of the HTML report is skipped locally and required on CI")


def browse(chromium: str, url: str, tmp_path: Path, *args: str
           ) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args,
                           url], capture_output=True, text=True, timeout=120)


def console_errors(stderr: str) -> list[str]:
    """Console messages and uncaught errors the page logged (chromium's own noise aside)."""
    return [line for line in stderr.splitlines()
            if re.search(r":CONSOLE[:(\]]", line) or "Uncaught" in line]


def test_console_error_detection_sees_a_broken_page(chromium, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>notDefined();</script></body></html>")
    result = browse(chromium, page.as_uri(), tmp_path, "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in console_errors(result.stderr))


def test_the_report_renders_in_chromium(chromium, report, tmp_path):
    import matplotlib.image

    shot = tmp_path / "report.png"
    result = browse(chromium, report["path"].as_uri(), tmp_path, f"--screenshot={shot}",
                    "--window-size=1280,2000")
    assert shot.exists(), result.stderr[-2000:]
    assert console_errors(result.stderr) == []
    pixels = matplotlib.image.imread(str(shot))[:, :, :3]
    assert pixels.shape[:2] == (2000, 1280)
    colours = {tuple(p) for p in (pixels[::4, ::4] * 255).astype(int).reshape(-1, 3)}
    assert len(colours) > 200  # charts, badges and text, not a blank page
    background = (pixels.max(axis=2) - pixels.min(axis=2) < 0.02) & (pixels.min(axis=2) > 0.9)
    assert background.mean() < 0.95

    probe = tmp_path / "probe.html"
    probe.write_text(report["text"].replace("<head>", "<head>" + PROBE, 1))
    result = browse(chromium, probe.as_uri(), tmp_path, "--dump-dom", "--window-size=1280,2000")
    dom = parse(result.stdout)
    html = dom.find("html")
    assert html.attrs.get("data-probed") == "1", result.stdout[:500]
    assert "data-errors" not in html.attrs
    assert console_errors(result.stderr) == []
    expected = {name: len([r for r in ms[0]["layers"] if r["seconds"] > 0 and r["flops"] > 0])
                for name, ms in report["measured"].items() if ms}
    rendered = sections(dom)
    assert set(rendered) == set(expected)
    for name, section in rendered.items():
        roofline, time = (section.find("figure", c).find("svg") for c in ("roofline", "time"))
        for svg in (roofline, time):
            width, height = map(int, svg.attrs["data-rendered"].split("x"))
            assert width > 300 and height > 120, (name, svg.attrs["data-rendered"])
        assert len(list(roofline.iter("path"))) + len(list(roofline.iter("use"))) > 20
        assert len(points(section)) == expected[name]
        assert all(list(p.iter("use")) for p in points(section))  # each point has a marker
    first = rendered["test_vibration"].find("table", "layers").attrs["data-first"]
    assert first == "lstm"


# -- through the plugin: the optional extra ----------------------------------------------
@pytest.fixture
def project(pytester):
    pytester.makeconftest(CONFTEST)
    return pytester


def test_without_matplotlib_the_option_is_a_usage_error_naming_the_extra(project,
                                                                          monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    project.makepyfile("def test_a():\n    pass\n")
    result = project.runpytest("--flop-html=report.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--flop-html needs matplotlib*"
                                 "pip install 'pytest-flopbudget[[]html]'*"])
    project.runpytest().assert_outcomes(passed=1)  # the plugin itself does not need it
    assert not (project.path / "report.html").exists()


def test_a_long_model_keeps_the_slowest_bars_and_sums_the_rest():
    from pytest_flopbudget.reporting import charts

    # 45 layers taking 1..45 us: the 40 slowest are drawn, the 5 fastest (1+2+3+4+5 = 15 us)
    # are one grey bar, 15 / 1,035 us in all = 1%
    layers = [charts.Point(f"block{i}", "Conv2d", 1000, 1.0, (i + 1) * 1e-6, 0.0)
              for i in range(45)]
    texts = [t.text for t in parse(charts.time_bars_svg(layers, "long", {"Conv2d": "#000"}))
             .iter("text")]
    assert "5 other layers" in texts and "block5 (Conv2d)" in texts
    assert "block4 (Conv2d)" not in texts and "0.015 ms (1%)" in texts
