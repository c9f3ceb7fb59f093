"""Mutated GGUF files (bit flips, truncations, corrupted header fields) given to `models add` and
`adapter import`: each must end in one clear line or, where the file is still a valid model,
be accepted; never a traceback or a crash of the app; the vault is never harmed.

Base-model mutants are patched into one scratch copy of the default GGUF and patched back (a
98 MB copy per mutant would cost more than the checks). Every mutant goes through the Python
header reader in process; every `worker_every`th (every one at full size) through `models add`,
whose llama.cpp load runs in a model worker (the crash isolation), and `adapter import`; a few
of each kind through the CLI as a child process.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from localrag.bench import cli_child, corpus
from localrag.errors import LocalragError
from localrag.settings import Settings

WORKER_EVERY = 5
"""The small run's share through `models add` (a model worker each: seconds per mutant)."""
CLI_EVERY = 25
HEADER_SHARE = 0.8
"""Most mutations land in the header (metadata and tensor table): that is what parsers parse."""


@dataclass
class Outcomes:
    """What a set of attempts ended in."""

    clear_error: int = 0
    accepted: int = 0
    """Still a valid file after the mutation (a flipped bit in a weight or a token's text)."""
    bad: int = 0
    """A traceback, an error of several lines, a crash of the app or a hang."""
    examples: list[str] = field(default_factory=list)

    def attempt(self, call: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        try:
            call(*args, **kwargs)
        except LocalragError as exc:
            if exc.message and "\n" not in exc.message:
                self.clear_error += 1
                return
            self._bad(f"an error of several lines: {exc.message[:200]!r}")
        except Exception as exc:  # what the user would get as a traceback
            self._bad(f"{type(exc).__name__}: {exc}"[:300])
        else:
            self.accepted += 1

    def child(self, finished: cli_child.Finished) -> None:
        if finished.returncode == 0:
            self.accepted += 1
        elif finished.returncode > 0 and cli_child.one_line_error(finished):
            self.clear_error += 1
        else:
            self._bad(f"exit {finished.returncode}: {finished.stderr.strip()[-300:]}")

    def _bad(self, what: str) -> None:
        self.bad += 1
        if len(self.examples) < 5:
            self.examples.append(what)

    def as_dict(self) -> dict[str, Any]:
        return {
            "clear_error": self.clear_error,
            "accepted": self.accepted,
            "bad": self.bad,
            "examples": self.examples,
        }


def header_fields(data: bytes) -> tuple[list[tuple[int, int]], int]:
    """The (offset, size) of every count, length, type and offset in a GGUF header, and where
    the header ends."""
    fields = [(4, 4), (8, 8), (16, 8)]
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
    at = 24

    def string() -> None:
        nonlocal at
        fields.append((at, 8))
        at += 8 + struct.unpack_from("<Q", data, at)[0]

    def value(kind: int) -> None:
        nonlocal at
        if kind == 8:
            string()
        elif kind == 9:
            fields.extend([(at, 4), (at + 4, 8)])
            sub, n = struct.unpack_from("<IQ", data, at)
            at += 12
            for _ in range(n):
                value(sub)
        else:
            at += {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}[kind]

    for _ in range(n_kv):
        string()
        fields.append((at, 4))
        at += 4
        value(struct.unpack_from("<I", data, at - 4)[0])
    for _ in range(n_tensors):
        string()
        (n_dims,) = struct.unpack_from("<I", data, at)
        fields.extend([(at, 4), *((at + 4 + 8 * i, 8) for i in range(n_dims))])
        at += 4 + 8 * n_dims
        fields.extend([(at, 4), (at + 4, 8)])
        at += 12
    return fields, at


FIELD_VALUES = (0, 1, 2**31 - 1, 2**32 - 1, 2**63 - 1, 2**64 - 1)


class Mutator:
    """Mutations of one GGUF: (description, patches as (offset, bytes), or a truncation length).
    A truncation never patches; a patch never truncates."""

    def __init__(self, data: bytes, seed: int) -> None:
        self.data = data
        self.fields, self.header_end = header_fields(data)
        self.rng = random.Random(seed)

    def _where(self) -> int:
        end = self.header_end if self.rng.random() < HEADER_SHARE else len(self.data)
        return self.rng.randrange(end)

    def next(self) -> tuple[str, list[tuple[int, bytes]], int | None]:
        kind = self.rng.choice(("bit flips", "truncation", "header field"))
        if kind == "truncation":
            return kind, [], self._where()
        if kind == "bit flips":
            patches = []
            for _ in range(self.rng.randint(1, 8)):
                at = self._where()
                patches.append((at, bytes([self.data[at] ^ (1 << self.rng.randrange(8))])))
            return kind, patches, None
        at, size = self.rng.choice(self.fields)
        old = int.from_bytes(self.data[at : at + size], "little")
        new = self.rng.choice([*FIELD_VALUES, old + 1, old - 1, self.rng.getrandbits(8 * size)])
        return kind, [(at, (new % 2 ** (8 * size)).to_bytes(size, "little"))], None


class Scratch:
    """A copy of a file that takes one mutation at a time and gives it back."""

    def __init__(self, original: Path, folder: Path) -> None:
        self.data = original.read_bytes()
        self.path = folder / f"mutant{original.suffix}"
        self.cut = folder / f"truncated{original.suffix}"
        self.path.write_bytes(self.data)

    def apply(self, patches: list[tuple[int, bytes]], truncate: int | None) -> Path:
        if truncate is not None:
            self.cut.write_bytes(self.data[:truncate])
            return self.cut
        with self.path.open("r+b") as f:
            for at, patch in patches:
                f.seek(at)
                f.write(patch)
        return self.path

    def undo(self, patches: list[tuple[int, bytes]]) -> None:
        with self.path.open("r+b") as f:
            for at, patch in patches:
                f.seek(at)
                f.write(self.data[at : at + len(patch)])


def _lora(base_path: Path, folder: Path) -> Path:
    """A small real GGUF LoRA for the default base (rank 2, first layer)."""
    from localrag.adapter import convert, peft
    from localrag.adapter.sample import make_peft_adapter

    base = convert.read_base(base_path)
    adapter = peft.load_peft(make_peft_adapter(base, folder / "peft", rank=2, layers=range(1)))
    path = folder / "lora.gguf"
    convert.write_lora(convert.peft_to_lora(adapter, base), path)
    return path


def _seed_vault(home: Path) -> None:
    from localrag.store.sample import sample_document

    rng = np.random.default_rng(0)
    with corpus.open_store(home) as store:
        for name in ("alpha", "beta", "gamma"):
            store.add_document(*sample_document(rng, name, 5, marker=corpus.MARKER))


def run(
    work: Path,
    models_dir: Path,
    mutants: int,
    seed: int = 0,
    update: Callable[[int], None] = print,
    worker_every: int = WORKER_EVERY,
) -> dict[str, Any]:
    """`mutants` of the base model and as many of a LoRA adapter; every `worker_every`th
    through `models add` and `adapter import`."""
    from localrag import models
    from localrag.adapter import convert, manage

    started = time.monotonic()
    home = corpus.make_home(work / "home")
    _seed_vault(home)
    before = corpus.inspect(home).documents
    settings = Settings.load(home)
    base_path = models.model_path(settings, "llm")
    base = convert.read_base(base_path)
    env = cli_child.child_env(home, corpus.PASSPHRASE, models_dir)
    parts = {
        name: Outcomes()
        for name in ("header read", "models add (worker)", "adapter read", "adapter import")
    }
    parts |= {"cli models add": Outcomes(), "cli adapter import": Outcomes()}
    kinds: dict[str, int] = {}
    scratch_base = Scratch(base_path, work)
    (work / "lora").mkdir()
    scratch_lora = Scratch(_lora(base_path, work), work / "lora")
    base_mutator = Mutator(scratch_base.data, seed)
    lora_mutator = Mutator(scratch_lora.data, seed + 1)
    store = corpus.open_store(home)
    try:
        for i in range(mutants):
            kind, patches, cut = base_mutator.next()
            kinds[kind] = kinds.get(kind, 0) + 1
            path = scratch_base.apply(patches, cut)
            parts["header read"].attempt(convert.read_base, path)
            if i % worker_every == 0:
                parts["models add (worker)"].attempt(
                    models.add, settings, path, "llm", f"mutant{i}", use=False
                )
            if i % CLI_EVERY == 0:
                args = ["models", "add", str(path), "--role", "llm", "--name", f"cli{i}"]
                parts["cli models add"].child(cli_child.run([*args, "--no-use"], env))
            scratch_base.undo(patches)

            _, lora_patches, cut = lora_mutator.next()
            path = scratch_lora.apply(lora_patches, cut)
            parts["adapter read"].attempt(manage.read_adapter, path, base)
            if i % worker_every == 0:
                parts["adapter import"].attempt(
                    manage.import_adapter, store, settings, path, f"mutant{i}"
                )
            if i % CLI_EVERY == 0:
                store.close()  # the child opens the vault itself
                args = ["adapter", "import", str(path), "--name", f"cli{i}"]
                parts["cli adapter import"].child(cli_child.run(args, env))
                store = corpus.open_store(home)
            scratch_lora.undo(lora_patches)
            update(i + 1)
    finally:
        store.close()
    after = corpus.inspect(home)
    return {
        "mutants_per_target": mutants,
        "through_models_add_and_import": sum(
            parts["models add (worker)"].as_dict()[k] for k in ("clear_error", "accepted", "bad")
        ),
        "mutation_kinds_base": kinds,
        "base_gguf_bytes": len(scratch_base.data),
        "base_header_bytes": base_mutator.header_end,
        "lora_gguf_bytes": len(scratch_lora.data),
        "outcomes": {name: o.as_dict() for name, o in parts.items()},
        "bad": sum(o.bad for o in parts.values()),
        "vault_unharmed": not after.corrupt and after.documents == before,
        "seconds": round(time.monotonic() - started, 1),
    }
