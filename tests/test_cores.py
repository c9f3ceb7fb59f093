"""The model decodes with the cores other processes leave free."""

from __future__ import annotations

import pytest

from localrag.worker import cores
from localrag.worker.cores import CoreShare, free_threads


def test_free_threads() -> None:
    assert free_threads(2, 2, others=0.1) == 2
    assert free_threads(2, 2, others=0.9) == 1
    assert free_threads(2, 2, others=3.0) == 1  # never none
    assert free_threads(4, 8, others=2.0) == 4  # enough cores left for all it wants
    assert free_threads(8, 8, others=2.0) == 6


def test_the_share_counts_only_other_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = iter(
        [
            (0, 0, 0),
            (200, 190, 100),  # the machine busy 95 %, half of it this worker: one core is others'
            (400, 290, 200),  # only this worker busy: all its cores are free again
        ]
    )
    monkeypatch.setattr(cores, "_sample", lambda: next(samples))
    share = CoreShare(2, cpus=2)
    assert share.threads() == 1
    assert share.threads() == 2


def test_without_proc_it_uses_what_it_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cores, "_sample", lambda: None)
    assert CoreShare(2, cpus=2).threads() == 2


def test_this_machine_can_be_sampled() -> None:
    sample = cores._sample()
    assert sample is not None and sample[0] >= sample[1] >= 0
