"""`localrag adapter import|merge|list|use|rollback|rm|verify`: LoRA adapters in the vault."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from localrag.adapter import QUANTS
from localrag.adapter.registry import Listing
from localrag.adapter.verify import Agreement
from localrag.cli import common


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("adapter", help="import, merge, version and roll back LoRA adapters")
    asub = parser.add_subparsers(dest="adapter_command", metavar="ACTION", required=True)

    def action(name: str, help: str, func: object, json: bool = False) -> argparse.ArgumentParser:
        p = asub.add_parser(name, help=help)
        common.add_passphrase_file(p)
        if json:
            common.add_json(p)
        p.set_defaults(func=func)
        return p

    p = action("import", "check a PEFT folder or GGUF LoRA and store it in the vault", run_import)
    p.add_argument("path", type=Path, help="a PEFT adapter folder or a GGUF LoRA file")
    p.add_argument("--name", required=True, help="the name to choose it by")
    p = action("merge", "merge into the base model and quantize: a new version NAME@vN", run_merge)
    p.add_argument("name")
    p.add_argument("--quant", choices=QUANTS, default="Q4_K_M", help="default: Q4_K_M")
    action("list", "adapters, their versions and provenance, and the active one", run_list, True)
    p = action("use", "answer with NAME[@vN] (merged) from now on, or `base`", run_use)
    p.add_argument("ref", metavar="NAME[@vN]|base")
    action("rollback", "go back to the model that was active before", run_rollback)
    p = action("rm", "delete NAME (all versions) or NAME@vN from the vault", run_rm)
    p.add_argument("ref", metavar="NAME[@vN]")
    p = action("verify", "compare a merge with base + runtime LoRA on fixed prompts", run_verify)
    p.add_argument("ref", metavar="NAME@vN", help="a version (NAME: its latest)")
    common.add_json(p)


def run_import(args: argparse.Namespace) -> int:
    with common.open_assistant(args) as a:
        info = a.import_adapter(args.path, args.name)
    print(
        f"imported {info.name}: {info.source_format}, rank {info.rank}, alpha {info.alpha:g}, "
        f"{info.tensor_count} weights ({', '.join(info.targets)})"
    )
    return 0


def run_merge(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with (
        common.open_assistant(args) as a,
        Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar,
    ):
        task = bar.add_task("merging", total=None)
        ref = ""
        for event in a.merge_adapter(args.name, args.quant):
            if event.step == "merge":
                bar.update(task, completed=event.tensors_done, total=event.tensors_total)
            elif event.step == "quantize":
                bar.update(task, description=f"quantizing to {event.detail}", total=None)
            elif event.step == "store":
                bar.update(task, description="storing in the vault")
            elif event.step == "done":
                ref = event.detail
        version = a.adapters().versions[-1]
    print(f"{ref}: {version.quant}, {common.human_size(version.size_bytes)}, {version.merge_s} s")
    print(f"use it with `localrag adapter use {ref}`")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with common.open_assistant(args) as a:
        listing = a.adapters()
    if args.json:
        common.print_json(_listing_json(listing))
        return 0
    if not listing.adapters:
        print("no adapters; import one with `localrag adapter import PATH --name NAME`")
    for info in listing.adapters:
        print(f"{info.name}  {info.source_format}, rank {info.rank}, alpha {info.alpha:g}")
        for v in (v for v in listing.versions if v.name == info.name):
            mark = "*" if v.ref == listing.active else " "
            print(
                f" {mark} {v.ref:<16} {v.quant:<7} {common.human_size(v.size_bytes):>9}  "
                f"{v.created_at}  base {v.base_sha256[:12]}  adapter {v.adapter_sha256[:12]}"
            )
    print(f"active: {listing.active or 'base'}")
    return 0


def _listing_json(listing: Listing) -> dict[str, object]:
    return {
        "active": listing.active,
        "adapters": [dataclasses.asdict(a) for a in listing.adapters],
        "versions": [dataclasses.asdict(v) | {"ref": v.ref} for v in listing.versions],
    }


def run_use(args: argparse.Namespace) -> int:
    with common.open_assistant(args) as a:
        active = a.use_adapter(args.ref)
    print(f"active: {active or 'base'}")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    with common.open_assistant(args) as a:
        active = a.rollback_adapter()
    print(f"active: {active or 'base'}")
    return 0


def run_rm(args: argparse.Namespace) -> int:
    with common.open_assistant(args) as a:
        removed = a.remove_adapter(args.ref)
        active = a.adapters().active
    print(f"removed {', '.join(removed)}; active: {active or 'base'}")
    return 0


def _agreement_line(label: str, g: Agreement) -> str:
    return (
        f"{label}: max logit difference {g.max_rel_logit_diff:.3%} of the range "
        f"(mean {g.mean_rel_logit_diff:.3%}), top-1 agreement {g.top1_agreement:.1%} "
        f"over {g.positions} positions"
    )


def run_verify(args: argparse.Namespace) -> int:
    with common.open_assistant(args) as a:
        report = a.verify_adapter(args.ref)
    if args.json:
        common.print_json(dataclasses.asdict(report) | {"ok": report.ok})
        return 0 if report.ok else 1
    print(_agreement_line("merged F16 vs base + runtime LoRA", report.f16_vs_runtime))
    print(_agreement_line(f"stored {report.quant} vs merged F16", report.stored_vs_f16))
    if report.ok:
        print(f"{report.ref}: OK")
    elif not report.merge_ok:
        print(f"{report.ref}: MISMATCH: the merge does not match the adapter applied at run time")
    else:
        print(
            f"{report.ref}: MISMATCH: the stored {report.quant} model does not match a merge of "
            "this adapter into this base"
        )
    return 0 if report.ok else 1
