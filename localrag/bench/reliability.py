"""`localrag bench reliability`: kills, failed writes, hostile files, mutated GGUFs and the
network guard, each counted; the zeros are the result (see ../shared/security.md).

Parts (each its own module, run in this order): `kills` (SIGKILL during `add` and `rekey`, run
through the CLI as a user runs them), `write_faults` (a failed write at each of the first N
writes of an ingest), `hostile` (bombs, broken and odd files), `gguf_mutations` (`models add` and
`adapter import` of mutated GGUFs), `egress` (the whole flow under a network guard, plaintext
hunted after each step). Full size is the default; `--small` is what the tests run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from localrag.cli import common
from localrag.errors import UsageError

PARTS = ("kills", "write_faults", "hostile", "gguf", "egress")
FULL = {
    "kills": 200,
    "writes": 100,
    "single_line_bytes": 200_000_000,
    "mutants": 500,
    "worker_every": 1,
}
SMALL = {"kills": 4, "writes": 4, "single_line_bytes": 2_000_000, "mutants": 10, "worker_every": 5}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reliability", help="SIGKILLs, failed writes, hostile files, mutated GGUFs, egress"
    )
    p.add_argument("--kills", type=int, help=f"SIGKILLs (default {FULL['kills']})")
    p.add_argument("--writes", type=int, help=f"failed-write positions (default {FULL['writes']})")
    p.add_argument("--mutants", type=int, help=f"GGUF mutants per target ({FULL['mutants']})")
    p.add_argument(
        "--worker-every",
        type=int,
        help="every Nth mutant through models add and adapter import (1: all of them)",
    )
    p.add_argument("--single-line-mb", type=int, help="size of the single-line file (200)")
    p.add_argument("--small", action="store_true", help="the tests' sizes: seconds, not minutes")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--seed", type=int, default=0)
    common.add_json(p)
    p.set_defaults(func=run)


def sizes(args: argparse.Namespace) -> dict[str, int]:
    chosen = dict(SMALL if args.small else FULL)
    for name in ("kills", "writes", "mutants", "worker_every"):
        if getattr(args, name) is not None:
            chosen[name] = getattr(args, name)
    if args.single_line_mb is not None:
        chosen["single_line_bytes"] = args.single_line_mb * 1_000_000
    if min(chosen.values()) < 1:
        raise UsageError(
            "--kills, --writes, --mutants, --worker-every and --single-line-mb must be at least 1"
        )
    return chosen


def run_parts(
    work: Path, models_dir: Path, parts: list[str], size: dict[str, int], seed: int, embedder: Any
) -> dict[str, Any]:
    """Each part in its own folder under `work`; its report by name."""
    from localrag.bench import egress, gguf_mutations, hostile, kills, write_faults
    from localrag.evaluate.progress import progress_bar

    jobs = {
        "kills": (
            "SIGKILLs",
            size["kills"],
            lambda w, u: kills.run(w, models_dir, size["kills"], seed, u),
        ),
        "write_faults": (
            "failed writes",
            size["writes"],
            lambda w, u: write_faults.run(w, embedder(), size["writes"], u),
        ),
        "hostile": (
            "hostile files",
            14,
            lambda w, u: hostile.run(w, models_dir, size["single_line_bytes"], u),
        ),
        "gguf": (
            "GGUF mutants",
            size["mutants"],
            lambda w, u: gguf_mutations.run(
                w, models_dir, size["mutants"], seed, u, size["worker_every"]
            ),
        ),
        "egress": (
            "flow steps",
            len(egress.steps(work)),
            lambda w, u: egress.run(w, models_dir, u),
        ),
    }
    report: dict[str, Any] = {}
    for name in parts:
        label, total, job = jobs[name]
        folder = work / name
        folder.mkdir()
        with progress_bar(label, total) as update:
            report[name] = job(folder, update)
    return report


def verdict(report: dict[str, Any]) -> dict[str, bool]:
    """Whether each part met its zeros."""
    checks = {
        "kills": lambda r: (
            r["corrupt_vaults"] == r["partial_documents"] == 0
            and r["reruns_completed"] == r["reruns"]
            and r["documents_lost_by_rekey"] == 0
        ),
        "write_faults": lambda r: (
            r["corrupt_vaults"] == r["partial_documents"] == 0
            and r["unclear_errors"] == 0
            and r["retries_completed"] == r["injected"]
        ),
        "hostile": lambda r: (
            r["bad"] == 0 and r["batch_good_indexed"] == r["batch_good"] and not r["batch_corrupt"]
        ),
        "gguf": lambda r: r["bad"] == 0 and r["vault_unharmed"],
        "egress": lambda r: (
            r["failed_steps"] == r["network_attempts"] == 0 and r["plaintext_markers"] == 0
        ),
    }
    return {name: bool(checks[name](r)) for name, r in report.items()}


def run(args: argparse.Namespace) -> int:
    from localrag import embed

    settings = common.settings(args)
    size = sizes(args)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="localrag-reliability-"))
    try:
        report = run_parts(
            work,
            settings.models_dir,
            args.parts,
            size,
            args.seed,
            lambda: embed.from_settings(settings),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    met = verdict(report)
    result = {
        "sizes": size,
        "parts": report,
        "met": met,
        "machine": f"{platform.machine()}, {platform.system()}, {os.cpu_count()} CPUs",
        "seconds": round(time.monotonic() - started, 1),
    }
    if args.json:
        common.print_json(result)
    else:
        print_table(result)
    return 0 if all(met.values()) else 1


def print_table(result: dict[str, Any]) -> None:
    rows = []
    parts = result["parts"]
    if k := parts.get("kills"):
        rows.append(
            (
                "kills",
                "SIGKILL add/rekey",
                f"{k['add_kills']}+{k['rekey_kills']} kills",
                f"corrupt {k['corrupt_vaults']}, partial docs {k['partial_documents']}, "
                f"re-runs completed {k['reruns_completed']}/{k['reruns']}",
                k["seconds"],
            )
        )
    if w := parts.get("write_faults"):
        rows.append(
            (
                "write_faults",
                "failed write",
                f"{w['injected']} of {w['writes_in_clean_ingest']} writes",
                f"clear errors {w['clear_errors']}, unclear {w['unclear_errors']}, corrupt "
                f"{w['corrupt_vaults']}, retries {w['retries_completed']}",
                w["seconds"],
            )
        )
    if h := parts.get("hostile"):
        rows.append(
            (
                "hostile",
                "hostile files",
                f"{len(h['files'])} files",
                f"rejected {h['rejected']}, read {h['read']}, bad {h['bad']}, max "
                f"{h['max_wall_s']:.0f} s / {h['max_peak_rss_mb']} MB, good indexed "
                f"{h['batch_good_indexed']}/{h['batch_good']}",
                h["seconds"],
            )
        )
    if g := parts.get("gguf"):
        o = g["outcomes"]
        errors = sum(x["clear_error"] for x in o.values())
        accepted = sum(x["accepted"] for x in o.values())
        rows.append(
            (
                "gguf",
                "mutated GGUF",
                f"{g['mutants_per_target']} x 2 files, {g['through_models_add_and_import']} added",
                f"clear errors {errors}, still valid {accepted}, bad {g['bad']}, vault "
                f"{'unharmed' if g['vault_unharmed'] else 'HARMED'}",
                g["seconds"],
            )
        )
    if e := parts.get("egress"):
        rows.append(
            (
                "egress",
                "network guard",
                f"{len(e['steps'])} steps",
                f"attempts {e['network_attempts']}, plaintext markers {e['plaintext_markers']}, "
                f"failed steps {e['failed_steps']}",
                e["seconds"],
            )
        )
    print(f"{'part':<20}{'size':<22}{'result':<80}{'s':>7}")
    for key, name, size, outcome, seconds in rows:
        met = result["met"][key]
        print(f"{name:<20}{size:<22}{outcome:<80}{seconds:>7.0f}  {'ok' if met else 'FAILED'}")
    print(f"on {result['machine']}, {result['seconds']:.0f} s in all")
