"""Seed 004's ResNet on a 57x57x1 input: parameter counts derived by hand, shapes as drawn.

The budget of ``test_resnet57_on_ethos_u55`` lives in pyproject.toml
(``[tool.flopbudget.tests."tests/test_resnet57.py::*"]``), not in a marker.
"""

from __future__ import annotations

import pytest
import torch
from pytest_flopbudget import profile

from edge_models import ResNet57
from edge_models.resnet57 import LAYER_PARAMS

IMAGE = (1, 1, 57, 57)

#: What the seed's table printed for each layer (several are wrong; see README.md).
SEED_PRINTED = {"Conv1": 96, "Conv2": 96, "Conv3": 2320, "Conv4": 2320, "Conv5": 2320,
                "Conv6": 2320, "Conv7": 4640, "Conv8": 4640, "Conv9": 4640, "Conv10": 4640,
                "Conv11": 4640, "Conv12": 4640, "FC1": 262656, "FC2": 2052}


def test_resnet57_on_ethos_u55(flop_budget):
    prof = flop_budget(ResNet57().eval(), torch.randn(*IMAGE))
    assert prof.params == 326_260


@pytest.fixture(scope="module")
def prof():
    return profile(ResNet57().eval(), torch.randn(*IMAGE))


def test_parameter_counts_match_the_corrected_table(prof):
    derived = {seed_name: count for seed_name, _, count in LAYER_PARAMS}
    assert [derived[n] for n in ("Conv2", "Conv8", "Conv9", "FC1")] == [1296, 9248, 9248,
                                                                         262656]
    for seed_name, path, count in LAYER_PARAMS:
        assert prof.layer(path).params == count, seed_name
    assert prof.params == sum(derived.values()) == 326_260
    wrong = sorted((n for n in derived if derived[n] != SEED_PRINTED[n]),
                   key=lambda n: int(n[4:]) if n.startswith("Conv") else 99)
    assert wrong == ["Conv2", "Conv8", "Conv9", "Conv10", "Conv11", "Conv12"]
    assert sum(SEED_PRINTED.values()) == 302_020  # what the seed's column adds up to


def test_feature_maps_follow_the_seed_table(prof):
    shapes = {name: prof.layer(name).output_shapes[0]
              for name in ("conv1", "conv2", "pool1", "block2", "pool2", "block3", "pool3",
                           "pool4", "fc1", "fc2")}
    assert shapes == {
        "conv1": (1, 16, 57, 57), "conv2": (1, 16, 57, 57), "pool1": (1, 16, 29, 29),
        "block2": (1, 16, 29, 29), "pool2": (1, 16, 15, 15), "block3": (1, 32, 15, 15),
        "pool3": (1, 32, 8, 8), "pool4": (1, 32, 4, 4), "fc1": (1, 512), "fc2": (1, 4),
    }


def test_mac_counts_per_layer(prof):
    """MACs = output positions x C_out x (kernel area x C_in); README.md derives each row."""
    assert prof.layer("conv1").macs == 57 * 57 * 16 * (1 * 5 * 1) == 259_920
    assert prof.layer("conv2").macs == 57 * 57 * 16 * (5 * 1 * 16) == 4_158_720
    assert prof.layer("block1").macs == 2 * 29 * 29 * 16 * (3 * 3 * 16) == 3_875_328
    assert prof.layer("block3").macs == 15 * 15 * 32 * 9 * (16 + 32) == 3_110_400
    assert prof.layer("block4").macs == 2 * 8 * 8 * 32 * (3 * 3 * 32) == 1_179_648
    assert prof.layer("fc1").macs == 512 * 512
    assert prof.macs == 17_903_184
