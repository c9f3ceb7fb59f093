"""SIGKILL at random moments of `localrag add` and `localrag rekey`, run as a user runs them.

A cycle starts from an empty vault; `add` of the whole batch is killed at a random moment of a
clean run's duration, then run again (the same command, which carries on from what the vault
holds) and killed again, `ADD_KILLS_PER_CYCLE` times; then it runs to the end; then a `rekey`
is killed at a random moment. After every kill the vault must open, pass every integrity check,
and hold each document either whole (its chunks exactly those of a clean ingest) or not at all;
after a rekey kill it must hold all of them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localrag.bench import cli_child, corpus

ADD_KILLS_PER_CYCLE = 3


@dataclass
class KillReport:
    kills: int = 0
    add_kills: int = 0
    rekey_kills: int = 0
    mid_batch: int = 0
    """Add kills after which the vault held some of the batch but not all: kills inside ingest."""
    finished_before_kill: int = 0
    """Runs that were over before their kill time came (not counted as kills)."""
    corrupt_vaults: int = 0
    partial_documents: int = 0
    reruns: int = 0
    reruns_completed: int = 0
    documents_lost_by_rekey: int = 0
    clean_add_s: float = 0.0
    clean_rekey_s: float = 0.0
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    """What went wrong, the first few (empty when all is well)."""

    def note(self, what: str) -> None:
        if len(self.failures) < 10:
            self.failures.append(what)


def run(
    work: Path, models_dir: Path, kills: int, seed: int = 0, update: Callable[[int], None] = print
) -> dict[str, Any]:
    started = time.monotonic()
    rng = random.Random(seed)
    report = KillReport()
    docs = work / "docs"
    batch = corpus.make_batch(docs)
    template = corpus.make_home(work / "template")
    home = work / "home"
    env = cli_child.child_env(home, corpus.PASSPHRASE, models_dir)
    add = ["add", str(docs), "--json"]

    corpus.copy_home(template, home)
    clean = cli_child.run(add, env)
    reference = corpus.inspect(home).documents
    if clean.returncode != 0 or len(reference) != len(batch):
        raise RuntimeError(f"a clean `add` of the bench batch failed: {clean.stderr.strip()}")
    report.clean_add_s = round(clean.wall_s, 2)
    report.documents = len(reference)
    report.chunks = sum(n for n, _ in reference.values())
    rekey = cli_child.run(["rekey"], env)
    report.clean_rekey_s = round(rekey.wall_s, 2)

    def after_kill(what: str) -> corpus.VaultState:
        state = corpus.inspect(home, reference)
        report.corrupt_vaults += state.corrupt
        report.partial_documents += len(state.partial)
        if state.corrupt or state.partial:
            report.note(f"after a kill of {what}: {state.problems or state.partial}")
        return state

    while report.kills < kills:
        corpus.copy_home(template, home)
        for _ in range(ADD_KILLS_PER_CYCLE):
            killed = cli_child.run(add, env, kill_after_s=rng.uniform(0, clean.wall_s))
            if not killed.killed:
                report.finished_before_kill += 1
                continue
            report.kills += 1
            report.add_kills += 1
            state = after_kill("add")
            report.mid_batch += 0 < len(state.documents) < len(reference)
            update(report.kills)
        report.reruns += 1
        rerun = cli_child.run(add, env)
        if rerun.returncode == 0 and corpus.inspect(home, reference).documents == reference:
            report.reruns_completed += 1
        else:
            report.note(f"a re-run of add did not complete: {rerun.stderr.strip()[-300:]}")
        killed = cli_child.run(["rekey"], env, kill_after_s=rng.uniform(0, rekey.wall_s))
        if not killed.killed:
            report.finished_before_kill += 1
            continue
        report.kills += 1
        report.rekey_kills += 1
        state = after_kill("rekey")
        if state.documents != reference:
            report.documents_lost_by_rekey += len(set(reference) - set(state.documents))
            report.note("a killed rekey lost documents")
        update(report.kills)
    report.seconds = round(time.monotonic() - started, 1)
    return asdict(report)
