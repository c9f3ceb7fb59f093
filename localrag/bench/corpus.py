"""The reliability bench's data: a small batch of every kind `add` reads, each carrying a marker
that must never appear in plaintext outside the vault; the vault it goes into; and the check
that a vault is sound and holds each document whole or not at all."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from localrag.bench.docmaker import make_docx, make_pdf
from localrag.bench.sounds import encode, spoken, tone_in_noise
from localrag.errors import LocalragError
from localrag.settings import Settings

if TYPE_CHECKING:
    from localrag.store import Store

MARKER = "QX7RELIABILITYMARKERZEBRA"
PASSPHRASE = "reliability bench passphrase"
SPEECH = "The harbour crane arrives on Thursday; the night shift unloads it."


def _paragraphs(topic: str, n: int) -> list[str]:
    return [
        f"{topic} note {i}: the code word is {MARKER}. Valve {i} on line {i % 7} is checked "
        f"every {i + 2} hours, and its pressure is logged before the shift ends."
        for i in range(n)
    ]


def make_batch(folder: Path, paragraphs: int = 12) -> list[Path]:
    """Markdown, text, PDF, DOCX and a short WAV (spoken by espeak-ng if installed, else a tone
    in noise, which still goes through decoding, voice detection and Whisper)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("pumps.md", "boilers.md"):
        text = "\n\n".join(_paragraphs(name.split(".")[0], paragraphs))
        (folder / name).write_text(f"# {name}\n\n{text}\n", encoding="utf-8")
    (folder / "notes.txt").write_text("\n\n".join(_paragraphs("notes", paragraphs)) + "\n")
    make_pdf(folder / "report.pdf", [_paragraphs("report", 6), _paragraphs("annex", 6)])
    make_docx(folder / "policy.docx", [(None, p) for p in _paragraphs("policy", paragraphs)])
    samples = spoken(SPEECH)
    (folder / "memo.wav").write_bytes(
        encode(tone_in_noise(3.0) if samples is None else samples, ".wav")
    )
    return sorted(folder.iterdir())


@dataclass
class VaultState:
    """What a check of a vault found."""

    opened: bool = True
    problems: list[str] = field(default_factory=list)
    """From the store's integrity checks, or why it did not open."""
    documents: dict[str, tuple[int, str]] = field(default_factory=dict)
    """Path: (chunks, SHA-256 of the chunk texts in order)."""
    partial: list[str] = field(default_factory=list)
    """Documents whose chunks differ from a clean ingest of the same file."""

    @property
    def corrupt(self) -> bool:
        return not self.opened or bool(self.problems)


def open_store(home: Path, data_key: bytes | None = None, vfs: str | None = None) -> Store:
    """The vault of `home`, opened as the CLI opens it (a rotation cut short is finished or
    dropped), or with its data key if given (no Argon2id: for parts that never rotate it)."""
    from localrag.store import Store, open_vault

    settings = Settings.load(home)
    if data_key is not None:
        return Store.open(settings.vault_path, bytearray(data_key), vfs=vfs)
    return open_vault(settings, bytearray(PASSPHRASE.encode()), vfs=vfs)


def data_key(home: Path) -> bytes:
    from localrag.store.vault import unlock

    return bytes(unlock(Settings.load(home), bytearray(PASSPHRASE.encode())))


def inspect(
    home: Path, reference: dict[str, tuple[int, str]] | None = None, key: bytes | None = None
) -> VaultState:
    """Open the vault of `home`, run every integrity check, and compare each document with
    `reference` if given."""
    state = VaultState()
    try:
        store = open_store(home, key)
    except LocalragError as exc:
        return VaultState(opened=False, problems=[exc.message])
    with store:
        state.problems = store.integrity_problems()
        for doc in store.documents():
            texts = "\0".join(c.text for c in store.document_chunks(doc.id))
            state.documents[doc.path] = (
                doc.chunk_count,
                hashlib.sha256(texts.encode()).hexdigest(),
            )
    if reference is not None:
        state.partial = [p for p, got in state.documents.items() if reference.get(p) != got]
    return state


def copy_home(template: Path, home: Path) -> Path:
    """A fresh copy of a home folder (a vault made once: Argon2id runs once, not per round)."""
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(template, home)
    return home


def make_home(home: Path) -> Path:
    """A home folder with an empty vault under the bench passphrase."""
    from localrag.store import create_vault

    home.mkdir(parents=True, exist_ok=True)
    create_vault(Settings.load(home), bytearray(PASSPHRASE.encode())).close()
    return home
