"""`localrag doctor`."""

from __future__ import annotations

import argparse

from localrag import doctor
from localrag.cli.common import add_json, print_json, settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor", help="check libraries, the encrypted store, the models and the home"
    )
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    checks = doctor.run_checks(settings(args))
    if args.json:
        print_json({"ok": all(c.ok for c in checks), "checks": checks})
    else:
        for c in checks:
            print(f"{'ok ' if c.ok else 'BAD'}  {c.name:<40} {c.detail}")
    return 0 if all(c.ok for c in checks) else 1
