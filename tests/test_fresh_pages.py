"""The fresh-page share counted in several processes: the processes' environment, what
they print, how they fail, and the mean over them."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from pytest_flopbudget.calibration.fresh_pages import (
    ShareCountError,
    mean_shares,
    process_shares,
    shares_in_process,
)

MiB = 1 << 20


class FakeRun:
    """Stands for ``subprocess.run``: records each call, answers with ``stdout`` and
    ``returncode`` (or raises ``error``)."""

    def __init__(self, stdout: str = "", returncode: int = 0, stderr: str = "",
                 error: Exception | None = None) -> None:
        self.stdout, self.returncode, self.stderr, self.error = stdout, returncode, stderr, error
        self.calls: list[tuple[list[str], dict[str, Any]]] = []

    def __call__(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((args, kwargs))
        if self.error is not None:
            raise self.error
        return subprocess.CompletedProcess(args, self.returncode, self.stdout, self.stderr)


def test_a_process_counts_with_its_hash_seed_and_the_sizes_asked() -> None:
    run = FakeRun(stdout="[[4194304, 0.175], [8388608, 0.117]]\n")
    got = shares_in_process(5, sizes=(4 * MiB, 8 * MiB), run=run)
    assert got == [(4 * MiB, 0.175), (8 * MiB, 0.117)]
    [(args, kwargs)] = run.calls
    assert args[-2:] == ["[4194304, 8388608]", "3"]  # the sizes, as JSON, and the runs
    assert kwargs["env"]["PYTHONHASHSEED"] == "5"
    assert kwargs["env"]["OMP_NUM_THREADS"] == "1"
    assert kwargs["timeout"] == 300.0


@pytest.mark.parametrize(("run", "message"), [
    (FakeRun(returncode=1, stderr="Traceback...\nImportError: no torch\n"),
     "the counting process (hash seed 3) exited with 1: ImportError: no torch"),
    (FakeRun(stdout="hello\n"),
     "the counting process (hash seed 3) printed 'hello', not shares"),
    (FakeRun(stdout="[[4194304, 0.1]]"),
     "the counting process (hash seed 3) counted sizes [4194304], not [4194304, 8388608]"),
    (FakeRun(error=subprocess.TimeoutExpired("python", 300.0)),
     "the counting process (hash seed 3) did not run: Command 'python' timed out"),
])
def test_a_failed_process_says_how(run: FakeRun, message: str) -> None:
    with pytest.raises(ShareCountError) as caught:
        shares_in_process(3, sizes=(4 * MiB, 8 * MiB), run=run)
    assert str(caught.value).startswith(message)


def test_processes_count_one_per_seed_in_the_seeds_order() -> None:
    def count(seed: int) -> list[tuple[int, float]]:
        return [(4 * MiB, seed / 100)]

    assert process_shares((3, 1, 2), count=count, workers=2) == [
        [(4 * MiB, 0.03)], [(4 * MiB, 0.01)], [(4 * MiB, 0.02)]]


def test_the_share_is_the_mean_over_processes() -> None:
    # two processes: 4 MiB (0.175 + 0.653) / 2 = 0.414, 8 MiB (0.117 + 0.632) / 2 = 0.3745,
    # 16 MiB (0.114 + 0.634) / 2 = 0.374
    counted = [[(4 * MiB, 0.175), (8 * MiB, 0.117), (16 * MiB, 0.114)],
               [(4 * MiB, 0.653), (8 * MiB, 0.632), (16 * MiB, 0.634)]]
    got = mean_shares(counted)
    assert [size for size, _ in got] == [4 * MiB, 8 * MiB, 16 * MiB]
    assert [share for _, share in got] == pytest.approx([0.414, 0.3745, 0.374])
    with pytest.raises(ValueError, match="counts over different sizes"):
        mean_shares([[(4 * MiB, 0.1)], [(8 * MiB, 0.1)]])
    with pytest.raises(ValueError, match="no counts"):
        mean_shares([])


def test_a_real_process_counts_a_share() -> None:
    # one 1 MiB size in a fresh interpreter: the code it runs imports and prints what it
    # counted, a share of the written bytes (between 0 and 1)
    [(size, share)] = shares_in_process(1, sizes=(1 * MiB,))
    assert size == 1 * MiB and 0.0 <= share <= 1.0
