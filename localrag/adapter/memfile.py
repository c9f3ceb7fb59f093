"""Anonymous in-memory files that llama.cpp can open by path, so nothing private hits the disk.

Adapters and the models merged from them are private data (security.md 22). llama.cpp and its
quantizer take file paths, so the bytes go into a `memfd` (Linux) and the path handed over is
`/proc/self/fd/N`; the file vanishes when it is closed.

Where there is no `memfd_create` (macOS), or `LOCALRAG_NO_MEMFD=1` switches it off (tests do, to
check that path on Linux), models are not handed over as files: the service streams their
bytes to the model worker, which holds the only copy (`localrag.worker`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from localrag.errors import AdapterError

CHUNK_BYTES = 1 << 20


def available() -> bool:
    """Whether in-memory files can be made here."""
    return hasattr(os, "memfd_create") and os.environ.get("LOCALRAG_NO_MEMFD", "") in ("", "0")


@contextmanager
def memfile(name: str, content: Iterable[bytes] = ()) -> Iterator[Path]:
    """A path to an empty (or `content`-filled) file that lives only in memory."""
    if not available():
        raise AdapterError(
            "merging an adapter needs in-memory files (Linux memfd_create), so that the private "
            "merged model never touches the disk, and this platform has none: apply the adapter "
            "at run time instead (`localrag ask --adapter NAME --runtime`)"
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
