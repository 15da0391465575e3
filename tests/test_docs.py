"""The README says what the code does: tables, commands and the worked example."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from pytest_flopbudget import profile
from pytest_flopbudget.counting.ops.elementwise import PER_ELEMENT, SPECIAL_ELEMENTWISE

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_elementwise_table_matches_the_code():
    rows = dict(re.findall(r"^\| `(\w+)` \| (\d+) \| `", README, flags=re.M))
    assert {k: int(v) for k, v in rows.items()} == {k: c for k, (c, _) in PER_ELEMENT.items()}
    for name in SPECIAL_ELEMENTWISE:
        assert f"| `{name}` | {SPECIAL_ELEMENTWISE[name]} |" in README


def test_ci_runs_exactly_the_readme_test_command():
    commands = re.findall(r"```bash\n(.+?)\n```", README)
    main_job, tests = commands[0], commands[1]
    assert "--flop-report" in main_job and "example_project" in main_job
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == tests
    assert tests.index("pip install torch==2.13.0") < tests.index("pip install -e")


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(x.mean(dim=(2, 3)))


def test_worked_example_figures():
    p = profile(Block().eval(), torch.randn(1, 3, 16, 16))
    rows = {r.name: (r.flops, r.macs, r.params, r.bytes_read, r.bytes_written)
            for r in p.layers}
    assert rows == {
        "": (4_096, 0, 0, 16_384, 8_224),
        "conv": (112_640, 55_296, 224, 3_968, 8_192),
        "bn": (8_192, 0, 16, 8_320, 8_192),
        "fc": (170, 80, 90, 392, 40),
    }
    totals = (p.flops, p.macs, p.params, p.bytes_read, p.bytes_written)
    assert totals == (125_098, 55_376, 330, 29_064, 24_648)
    assert "| **125,098** | **55,376** | **330** | **29,064** | **24,648** |" in README
