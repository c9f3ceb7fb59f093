"""Anonymous in-memory files that llama.cpp can open by path, so nothing private hits the disk.

Adapters and the models merged from them are private data (security.md 22). llama.cpp and its
quantizer take file paths, so the bytes go into a `memfd` (Linux) and the path handed over is
`/proc/self/fd/N`; the file vanishes when it is closed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from localrag.errors import AdapterError

CHUNK_BYTES = 1 << 20


@contextmanager
def memfile(name: str, content: Iterable[bytes] = ()) -> Iterator[Path]:
    """A path to an empty (or `content`-filled) file that lives only in memory."""
    if not hasattr(os, "memfd_create"):
        raise AdapterError(
            "merging or loading adapters needs Linux memfd_create, so that private models "
            "never touch the disk unencrypted; this platform lacks it"
        )
    fd = os.memfd_create(f"localrag-{name}", os.MFD_CLOEXEC)
    try:
        for block in content:
            _write_all(fd, block)
        yield Path(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _write_all(fd: int, block: bytes) -> None:
    view = memoryview(block)
    while view:
        view = view[os.write(fd, view) :]


def read_chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes in 1 MiB pieces (the vault's blob rows)."""
    with path.open("rb") as f:
        while block := f.read(CHUNK_BYTES):
            yield block
