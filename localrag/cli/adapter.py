"""`localrag adapter train|import|merge|list|use|rollback|rm|verify`: LoRA adapters in the vault."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from localrag.adapter import QUANTS
from localrag.adapter.registry import Listing
from localrag.adapter.verify import Agreement
from localrag.cli import common
from localrag.errors import UsageError


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

    p = action("train", "train a LoRA answer adapter here and import it", run_train)
    p.add_argument(
        "data",
        type=Path,
        nargs="*",
        help="SQuAD 2.0 JSON files, or JSON lines (.jsonl); several are one pool",
    )
    p.add_argument(
        "--from-set",
        metavar="NAME",
        help="train on a question set made by `eval make-qa` (its held-out part is left out)",
    )
    p.add_argument("--name", help="the name to import it as (needed unless --no-import)")
    p.add_argument("--max-steps", type=int, help="stop after N optimizer steps")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the data (default 1)")
    p.add_argument("--rank", type=int, default=8, help="LoRA rank (default 8; alpha = 2 x rank)")
    p.add_argument("--layers", type=int, help="train only the last N blocks (default: all)")
    p.add_argument("--max-minutes", type=float, help="stop after this many minutes of training")
    p.add_argument("--seed", type=int, default=0, help="fixes the data order and the init")
    p.add_argument("--batch-size", type=int, default=8, help="examples per step (default 8)")
    p.add_argument("--learning-rate", type=float, default=3e-4, help="peak (default 3e-4)")
    p.add_argument(
        "--exclude-articles",
        default="",
        metavar="TITLE,...",
        help="SQuAD articles to leave out (kept for evaluation)",
    )
    p.add_argument(
        "--generated",
        type=int,
        default=0,
        metavar="N",
        help="add about N generated examples of each kind: yes/no, steps and lists, "
        "recordings, injected instructions, distractors only (default 0)",
    )
    p.add_argument(
        "--unanswerable",
        type=float,
        default=1.0,
        metavar="SHARE",
        help="share of a SQuAD file's unanswerable questions to train on (default 1)",
    )
    p.add_argument(
        "--technical",
        type=int,
        default=0,
        metavar="N",
        help="add about N generated questions on READMEs answered by a path, command or option",
    )
    p.add_argument(
        "--variants",
        type=int,
        default=1,
        metavar="N",
        help="show each SQuAD question N times, with other distractors and order (default 1)",
    )
    p.add_argument(
        "--headings",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of SQuAD paragraphs shown under their article's title, as a section's "
        "first chunk is (default 0)",
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        metavar="N",
        help="leave out examples longer than N tokens, prompt and reply (default 640)",
    )
    p.add_argument("--out", type=Path, help="also keep the PEFT adapter folder here")
    p.add_argument(
        "--no-import", dest="do_import", action="store_false", help="do not import (needs --out)"
    )
    common.add_json(p)
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


def _need_train_extra() -> None:
    import importlib.util

    missing = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"training needs {', '.join(missing)}: install the train extra, "
            "`pip install 'localrag[train]'` (a CPU build of torch is enough)"
        )


def run_train(args: argparse.Namespace) -> int:
    from localrag import models
    from localrag.adapter import examples, manage, train
    from localrag.adapter.registry import Registry, check_name

    if args.do_import and not args.name:
        raise UsageError("name the adapter with --name NAME (or keep it with --out DIR)")
    if not args.do_import and args.out is None:
        raise UsageError("--no-import needs --out DIR, or the adapter would be lost")
    if args.name:
        check_name(args.name)
    if bool(args.data) == (args.from_set is not None):
        raise UsageError("train on data files or on --from-set NAME (one of the two)")
    if args.from_set is not None and args.exclude_articles:
        raise UsageError("--exclude-articles applies to SQuAD files, not --from-set")
    for flag, share in (("--unanswerable", args.unanswerable), ("--headings", args.headings)):
        if not 0.0 <= share <= 1.0:
            raise UsageError(f"{flag} {share}: a share, from 0 to 1")
    max_tokens = train.TrainConfig.max_tokens if args.max_tokens is None else args.max_tokens
    if args.variants < 1 or max_tokens < 64:
        raise UsageError("--variants counts from 1, and --max-tokens from 64")
    _need_train_extra()
    config = train.TrainConfig(
        rank=args.rank,
        max_steps=args.max_steps,
        layers=args.layers,
        max_minutes=args.max_minutes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        micro_batch=min(4, args.batch_size),
        learning_rate=args.learning_rate,
        max_tokens=max_tokens,
        seed=args.seed,
    )
    import random

    exclude = tuple(t.strip() for t in args.exclude_articles.split(",") if t.strip())
    plan = examples.DataPlan(
        exclude_articles=exclude,
        generated=args.generated,
        unanswerable=args.unanswerable,
        technical=args.technical,
        variants=args.variants,
        headings=args.headings,
    )
    with ExitStack() as stack:
        assistant = None
        if args.do_import or args.from_set is not None:
            assistant = stack.enter_context(common.open_assistant(args))
        source: dict[str, Any]
        if args.from_set is not None:
            assert assistant is not None
            rng = random.Random(args.seed)
            from_set, held_out = examples.from_set(assistant.store, args.from_set, rng)
            data = examples.with_generated(from_set, plan, rng)
            source = {"set": args.from_set, "held_out": held_out}
        else:
            data = examples.build(args.data, plan, args.seed)
            source = {
                "files": [{"file": p.name, "sha256": models.sha256_file(p)} for p in args.data]
            }
        train_set, validation = examples.split(data, random.Random(args.seed))
        data_info = {
            **source,
            "exclude_articles": list(exclude),
            "generated_per_kind": args.generated,
            "unanswerable_share": args.unanswerable,
            "technical": args.technical,
            "variants": args.variants,
            "headings": args.headings,
            "kinds": examples.kinds(train_set),
            "validation_kinds": examples.kinds(validation),
        }
        if args.do_import:
            assert assistant is not None
            if args.name in {a.name for a in Registry(assistant.store).listing().adapters}:
                raise UsageError(f"an adapter named {args.name!r} exists; choose another name")
            settings = assistant.settings
        else:
            settings = common.settings(args)
        base_path = models.model_path(settings, "llm")
        out = args.out
        if out is None:
            out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="localrag-train-")))
        result = _train_with_progress(
            train.train(train_set, validation, base_path, out, config, data_info)
        )
        info = None
        if args.do_import:
            assert assistant is not None
            info = manage.import_adapter(
                assistant.store, settings, out, args.name, training=result.provenance
            )
    p = result.provenance
    if args.json:
        common.print_json(
            {
                "name": info.name if info else None,
                "folder": str(args.out) if args.out else None,
                **p,
            }
        )
        return 0
    print(
        f"trained {p['steps']} steps of {p['batch_size']} on {p['examples']['train']} examples "
        f"in {p['train_seconds']:.0f} s ({p['tokens_per_s']:.0f} tokens/s); loss "
        f"{p['train_loss']:.3f}, validation {_loss(p['validation_loss_before'])} -> "
        f"{_loss(p['validation_loss'])}"
    )
    if args.out:
        print(f"adapter folder: {args.out}")
    if info is not None:
        print(
            f"imported {info.name}: rank {info.rank}, {info.tensor_count} weights; "
            f"merge it with `localrag adapter merge {info.name}`"
        )
        if args.from_set is not None:
            print(
                "then compare it on the questions it never saw: `localrag eval compare "
                f"--set {args.from_set} --held-out --adapter {info.name}`"
            )
    return 0


def _trained_on(data: dict[str, Any]) -> str:
    """The data files an adapter was trained on, with the start of each one's SHA-256
    (adapters trained before several files were allowed record one as `file`)."""
    if "set" in data:
        return f"the question set {data['set']}"
    files = data.get("files") or [data]
    return ", ".join(f"{f.get('file', '?')} ({f.get('sha256', '')[:12]})" for f in files)


def _loss(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


_LOG_EVERY = 10
"""Steps between progress lines when stderr is not a terminal."""


def _train_with_progress(events: Any) -> Any:
    """Draw the training's progress on stderr; Ctrl-C stops it and nothing is kept."""
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    result = None
    with Progress(*columns, TextColumn("{task.fields[info]}"), console=console) as bar:
        task = bar.add_task("loading the base model", total=None, info="")
        try:
            for event in events:
                if event.phase == "validate":
                    loss = "" if event.loss is None else f"validation loss {event.loss:.3f}"
                    bar.update(task, description="validating", info=loss)
                    if event.loss is not None:
                        console.print(f"validation loss {event.loss:.3f} at step {event.step}")
                elif event.phase == "train":
                    eta = f"{int(event.eta_s // 60)}:{int(event.eta_s % 60):02d}"
                    info = f"loss {event.loss:.3f}  {event.tokens_per_s:.0f} tok/s  ETA {eta}"
                    bar.update(
                        task,
                        description="training",
                        completed=event.step,
                        total=event.steps,
                        info=info,
                    )
                    if not console.is_terminal and event.step % _LOG_EVERY == 0:
                        # A log file gets no live bar: a line now and then shows it is alive.
                        console.print(f"step {event.step}/{event.steps}  {info}")
                elif event.phase == "save":
                    bar.update(task, description="saving", info="")
                elif event.phase == "done":
                    result = event.result
        except KeyboardInterrupt:
            events.close()
            print("localrag: training cancelled; nothing was saved or imported", file=sys.stderr)
            raise SystemExit(130) from None
    assert result is not None
    return result


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
        if info.training:
            t = info.training
            print(
                f"   trained here: {t['steps']} steps of {t['batch_size']} on "
                f"{_trained_on(t['data'])}, validation "
                f"loss {_loss(t['validation_loss_before'])} -> {_loss(t['validation_loss'])}"
            )
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
