"""How the app reaches the vault before it has an `Assistant`: exists, create, open.

The unlock screen only talks to a `VaultAccess`, so tests can hand the app one with fake parts.
"""

from __future__ import annotations

import string
from typing import Any, Protocol

from localrag.settings import Settings

MIN_PASSPHRASE_CHARS = 8
"""Shorter passphrases are refused when a vault is created."""


class VaultAccess(Protocol):
    def exists(self) -> bool: ...

    def create(self, passphrase: bytearray) -> Any: ...

    def open(self, passphrase: bytearray) -> Any: ...


class ServiceVault:
    """The real vault through `localrag.service.Assistant`; `parts` override its parts."""

    def __init__(self, settings: Settings, **parts: Any) -> None:
        self.settings = settings
        self.parts = parts

    def exists(self) -> bool:
        from localrag.service import Assistant

        return bool(Assistant.vault_exists(self.settings))

    def create(self, passphrase: bytearray) -> Any:
        from localrag.service import Assistant

        return Assistant.create(self.settings, passphrase, **self.parts)

    def open(self, passphrase: bytearray) -> Any:
        from localrag.service import Assistant

        return Assistant.open(self.settings, passphrase, **self.parts)


def strength_hint(passphrase: str) -> tuple[str, str]:
    """A rough strength ("weak", "fair", "strong") and a hint how to make it stronger.

    Counts length and character classes only: a guide for the user, not a guarantee.
    """
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        return "weak", f"use at least {MIN_PASSPHRASE_CHARS} characters; a few words work well"
    classes = sum(
        any(c in group for c in passphrase)
        for group in (string.ascii_lowercase, string.ascii_uppercase, string.digits)
    ) + any(not c.isalnum() for c in passphrase)
    words = len(passphrase.split())
    if len(passphrase) >= 20 or (len(passphrase) >= 14 and classes >= 3) or words >= 4:
        return "strong", "good: long and hard to guess"
    if len(passphrase) >= 12 or classes >= 3:
        return "fair", "longer is stronger: add another word or two"
    return "weak", "add words, digits or symbols; aim for 14+ characters"
