"""The fresh-page share counted over several processes, not one.

Below ``fresh_output_bytes`` glibc serves an eager runtime's outputs from its heap and gives
the heap's top back to the system once enough of it is free; whether an output then lands
in fresh pages depends on where the process's other allocations happen to sit. That is
decided early and differs from process to process: :func:`~.structure.fresh_shares`
counted in fresh processes read 0.035, 0.11 or 0.63 of the bytes of residual chains on
16 MiB tensors in fresh pages, and the same in every count within one process. A process's
hash seed (``PYTHONHASHSEED``, which orders its dicts and so its allocations) sways it but
does not decide it (a seed gave one share in one run and another in the next). A model's
chain of 16 MiB operators took 32-43 or 69-77 ms in fresh processes, by the process it ran
in. One count is one draw of that; the calibration takes the mean over
:data:`SHARE_SEEDS` processes, the share a process can expect.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .structure import SHARE_RUNS, SHARE_SIZES

#: Hash seeds of the processes the share is counted in. The seed alone does not fix a
#: process's state (where the system maps memory differs too): the counts are draws. With
#: about two processes in five drawing 0.63 and the rest 0.035-0.11 (16 MiB, here), the
#: mean of twelve has a standard deviation of about 0.08.
SHARE_SEEDS = tuple(range(1, 13))
#: The processes of a quick calibration (one short pass, for tests).
QUICK_SHARE_SEEDS = (1, 2)
#: Processes counting at once, each on one thread (a count of page faults does not depend
#: on the machine's load; two processes of two spinning threads each slowed each other).
SHARE_WORKERS = 2
#: Seconds one counting process may take.
SHARE_TIMEOUT = 300.0

Shares = list[tuple[int, float]]
#: ``subprocess.run``'s signature, as far as :func:`shares_in_process` uses it.
Runner = Callable[..., "subprocess.CompletedProcess[str]"]

_CODE = ("import json, sys\n"
         "from pytest_flopbudget.calibration.structure import fresh_shares\n"
         "print(json.dumps(fresh_shares(json.loads(sys.argv[1]), int(sys.argv[2]))))\n")


class ShareCountError(RuntimeError):
    """A counting process failed; the message says how."""


def shares_in_process(seed: int, sizes: Sequence[int] = SHARE_SIZES,
                      run: Runner = subprocess.run) -> Shares:
    """``[(output bytes, share)]`` of :func:`~.structure.fresh_shares` (:data:`SHARE_RUNS`
    runs) counted in a fresh Python process (this interpreter) whose ``PYTHONHASHSEED`` is ``seed``.

    Raises :class:`ShareCountError` when the process fails or prints something else."""
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": path,
           "OMP_NUM_THREADS": "1"}
    try:
        done = run([sys.executable, "-c", _CODE, json.dumps(list(sizes)), str(SHARE_RUNS)],
                   env=env,
                   capture_output=True, text=True, timeout=SHARE_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ShareCountError(f"the counting process (hash seed {seed}) did not run: "
                              f"{exc}") from None
    if done.returncode != 0:
        last = (done.stderr or "").strip().splitlines()[-1:] or ["no message"]
        raise ShareCountError(f"the counting process (hash seed {seed}) exited with "
                              f"{done.returncode}: {last[0]}")
    try:
        counted = [(int(size), float(share)) for size, share in json.loads(done.stdout)]
    except (ValueError, TypeError) as exc:
        raise ShareCountError(f"the counting process (hash seed {seed}) printed "
                              f"{done.stdout.strip()[:80]!r}, not shares ({exc})") from None
    if [size for size, _ in counted] != list(sizes):
        raise ShareCountError(f"the counting process (hash seed {seed}) counted sizes "
                              f"{[size for size, _ in counted]}, not {list(sizes)}")
    return counted


def process_shares(seeds: Sequence[int] = SHARE_SEEDS,
                   count: Callable[[int], Shares] = shares_in_process,
                   workers: int = SHARE_WORKERS) -> list[Shares]:
    """One :func:`shares_in_process` count per seed, in the order of ``seeds``,
    ``workers`` processes at once."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(count, seeds))


def mean_shares(counted: Sequence[Sequence[tuple[int, float]]]) -> Shares:
    """``[(output bytes, mean share)]``: per size, the mean over the counts (each a list of
    ``(output bytes, share)`` over the same sizes)."""
    if not counted:
        raise ValueError("no counts")
    sizes = [size for size, _ in counted[0]]
    for c in counted:
        if [size for size, _ in c] != sizes:
            raise ValueError(f"counts over different sizes: {sizes} and "
                             f"{[size for size, _ in c]}")
    return [(size, sum(c[i][1] for c in counted) / len(counted))
            for i, size in enumerate(sizes)]
