"""How long counting takes, and how much memory it needs, for two big models.

* ResNet-50, a real model and a real input of 8 x 3 x 1024 x 1024 (683 GMACs: running it for
  real takes tens of seconds and ~14 GB here);
* a LLaMA-7B-shaped decoder built on the meta device, at 2048 tokens.

Each is compared with torch's own ``FlopCounterMode`` on a meta copy of the same model.
Every measurement runs in a fresh subprocess: time is the median of warm repeats, memory is the
rise of the process's peak RSS over what it held before counting.

    python bench/counting_speed.py
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3


def _rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _build(case: str):  # type: ignore[no-untyped-def]
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from reference_models import Decoder, resnet50

    if case == "resnet50":
        return resnet50().eval(), (torch.randn(8, 3, 1024, 1024),)
    with torch.device("meta"):
        model = Decoder()
    return model, (torch.randint(0, 32000, (1, 2048)),)


def _measure(case: str, counter: str) -> dict[str, float]:
    """Runs in the subprocess: build, warm up once, then time REPEATS counts."""
    import torch

    model, inputs = _build(case)
    if counter == "flopcounter":
        import copy

        from torch.utils.flop_counter import FlopCounterMode

        meta_model = model if case == "decoder" else copy.deepcopy(model).to("meta")
        meta_inputs = tuple(x.to("meta") for x in inputs)

        def count() -> int:
            with FlopCounterMode(display=False) as fc, torch.no_grad():
                meta_model(*meta_inputs)
            return fc.get_total_flops()
    else:
        from pytest_flopbudget import profile

        def count() -> int:
            return profile(model, *inputs).flops

    before = _rss_peak_mb()
    start = time.perf_counter()
    flops = count()  # first (cold) call
    cold = time.perf_counter() - start
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        count()
        times.append(time.perf_counter() - start)
    return {"cold_s": cold, "warm_s": statistics.median(times), "extra_mb": _rss_peak_mb() -
            before, "flops": flops}


def main() -> None:
    rows = []
    for case in ("resnet50", "decoder"):
        for counter in ("flopbudget", "flopcounter"):
            out = subprocess.run(
                [sys.executable, __file__, "--one", case, counter],
                check=True, capture_output=True, text=True,
            ).stdout
            rows.append((case, counter, json.loads(out.strip().splitlines()[-1])))
    print(f"{'model':10s} {'counter':12s} {'cold s':>8s} {'warm s':>8s} {'extra MB':>9s} "
          f"{'FLOPs':>22s}")
    for case, counter, r in rows:
        print(f"{case:10s} {counter:12s} {r['cold_s']:8.2f} {r['warm_s']:8.2f} "
              f"{r['extra_mb']:9.0f} {r['flops']:22,}")
    for case in ("resnet50", "decoder"):
        ours = next(r for c, k, r in rows if c == case and k == "flopbudget")
        theirs = next(r for c, k, r in rows if c == case and k == "flopcounter")
        print(f"{case}: warm time ratio flopbudget/FlopCounterMode = "
              f"{ours['warm_s'] / theirs['warm_s']:.2f} (goal <= 3, and < 5 s, < 1500 MB)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--one":
        print(json.dumps(_measure(sys.argv[2], sys.argv[3])))
    else:
        main()
