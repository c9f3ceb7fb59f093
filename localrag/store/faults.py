"""A VFS shim for tests: it records which files SQLite opens and can make writes fail.

It sits on top of the default (encrypting) VFS, so the vault stays encrypted through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import apsw

TEMP_FLAGS = (
    apsw.SQLITE_OPEN_TEMP_DB
    | apsw.SQLITE_OPEN_TEMP_JOURNAL
    | apsw.SQLITE_OPEN_TRANSIENT_DB
    | apsw.SQLITE_OPEN_SUBJOURNAL
)


@dataclass
class Faults:
    """What the shim does: the writes it lets through before failing, and what it saw."""

    fail_writes: bool = False
    """Fail every write from now on (disk full)."""
    fail_from_write: int | None = None
    """Fail every write from this one on (counted from 0 in `writes`): a disk that fills up
    partway through."""
    writes: int = 0
    """How many writes were asked for, failed ones included."""
    opened: list[tuple[str | None, int]] = field(default_factory=list)
    """(file name or None for an anonymous temp file, open flags), in order."""
    failed: int = 0
    """How many writes were refused."""

    @property
    def temp_files_opened(self) -> list[tuple[str | None, int]]:
        return [(name, flags) for name, flags in self.opened if flags & TEMP_FLAGS]


class _File(apsw.VFSFile):
    def __init__(self, faults: Faults, name: apsw.URIFilename | str | None, flags: list[int]):
        self.faults = faults
        super().__init__("", name, flags)

    def xWrite(self, data: bytes, offset: int) -> None:
        faults = self.faults
        faults.writes += 1
        if faults.fail_from_write is not None and faults.writes > faults.fail_from_write:
            faults.fail_writes = True
        if faults.fail_writes:
            self.faults.failed += 1
            raise apsw.FullError("injected: disk full")
        super().xWrite(data, offset)


class FaultyVFS(apsw.VFS):
    """Register with a name; open a Store with `vfs=name`; `unregister()` when done."""

    def __init__(self, name: str = "localrag-faults") -> None:
        self.name = name
        self.faults = Faults()
        super().__init__(name, "")

    def xOpen(self, name: apsw.URIFilename | str | None, flags: list[int]) -> apsw.VFSFile:
        text = name.filename() if isinstance(name, apsw.URIFilename) else name
        self.faults.opened.append((text, flags[0]))
        return _File(self.faults, name, flags)
