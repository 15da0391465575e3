"""[tool.flopbudget] parsing outside pytest (the plugin tests cover it inside)."""

from __future__ import annotations

import pytest

from pytest_flopbudget.budgets.config import load, matches


def test_invalid_toml_is_kept_as_an_error_not_raised(tmp_path):
    # (inside a pytest session pytest itself rejects such a pyproject.toml first)
    (tmp_path / "pyproject.toml").write_text("[tool.flopbudget]\nmax_mflops = [\n")
    config = load(tmp_path)
    assert config.error is not None
    assert config.error.startswith("pyproject.toml is not valid TOML:")


def test_layers_for_a_test_most_general_first(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.flopbudget]\nmax_mflops = 10\ndevice = "npu"\n'
        '[tool.flopbudget.tests."*::test_big"]\nmax_mflops = 99\n'
    )
    config = load(tmp_path)
    assert config.error is None
    assert config.layers_for("tests/test_a.py::test_small") == [
        ("pyproject.toml [tool.flopbudget]", {"max_mflops": 10.0, "device": "npu"}),
    ]
    assert config.layers_for("tests/test_a.py::test_big")[-1] == (
        'pyproject.toml [tool.flopbudget.tests]."*::test_big"', {"max_mflops": 99.0})


def test_no_pyproject_means_defaults(tmp_path):
    config = load(tmp_path)
    assert (config.error, config.defaults, config.hotspots) == (None, {}, 5)
    assert config.catalog.get("cpu").name == "cpu"


@pytest.mark.parametrize("nodeid,pattern,expected", [
    ("tests/test_kws.py::test_small", "tests/test_kws.py::*", True),       # fnmatch
    ("tests/test_kws.py::test_small", "test_kws.py::test_small", True),    # the end, from /
    ("tests/test_kws.py::test_small", "test_small", True),                 # the end, from ::
    ("tests/test_kws.py::test_small", "tests/test_kws.py::test_small", True),
    ("tests/test_sub.py::test_x", "b.py::test_x", False),                  # not from a / or ::
    ("tests/test_resnet.py::test_forward", "net.py::test_forward", False),
    ("tests/test_kws.py::test_small", "small", False),
    ("tests/test_p.py::test_param[1]", "tests/test_p.py::test_param", True),  # every param
    ("tests/test_p.py::test_param[a-b]", "test_param", True),
    ("tests/test_p.py::test_param[1]", "tests/test_p.py::test_para", False),
    ("tests/test_p.py::test_param[1]", "test_param[1]", True),
    ("tests/d[1]/test_a.py::test_b[2]", "d", False),  # a bracket in the path is no param
    ("tests/d[1]/test_a.py::test_b[2]", "test_a.py::test_b", True),
    ("tests/test_a.py::test_x[a::b]", "test_x", True),  # a '::' in a parameter id
    ("tests/test_a.py::test_x[a::b]", "tests/test_a.py::test_x", True),
    ("tests/test_a.py::TestC::test_x[1]", "TestC::test_x", True),
])
def test_a_per_test_key_matches_at_a_boundary(nodeid, pattern, expected):
    assert matches(nodeid, pattern) is expected
