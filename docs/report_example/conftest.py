"""The example project behind ``docs/report.png``: models from ``tests/reference_models``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
