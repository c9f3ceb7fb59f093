"""How the service and a model worker talk: length-prefixed JSON messages over two pipes.

A message is a 4-byte big-endian length and that many bytes of UTF-8 JSON. A message may announce
`payloads`, sizes of byte blocks that follow it raw (a model file sent to a worker on a platform
without `memfd_create`, or the logits of `adapter verify`). Nothing is pickled: the worker is
trusted no more than the GGUF it parses.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable
from typing import Any

HEADER = struct.Struct(">I")
MAX_MESSAGE_BYTES = 64 << 20
"""A message longer than this is a broken stream, not a message (payloads are counted apart)."""


class Closed(EOFError):
    """The other side closed its end: it exited, or it was killed."""


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_exact(fd: int, size: int) -> bytes:
    parts = []
    while size:
        block = os.read(fd, min(size, 1 << 20))
        if not block:
            raise Closed("the other end closed the pipe")
        parts.append(block)
        size -= len(block)
    return b"".join(parts)


def read_into(fd: int, size: int) -> bytearray:
    """Read `size` bytes into a new buffer, without copies (a model can be gigabytes)."""
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        n = os.readv(fd, [view[done:]])
        if not n:
            raise Closed("the other end closed the pipe")
        done += n
    return buffer


def send(fd: int, message: dict[str, Any], payload: Iterable[bytes] = ()) -> None:
    """Write one message, then the blocks of its payloads (as `message["payloads"]` counts)."""
    body = json.dumps(message, separators=(",", ":")).encode()
    write_all(fd, HEADER.pack(len(body)) + body)
    for block in payload:
        write_all(fd, block)


def receive(fd: int) -> dict[str, Any]:
    """Read one message; its payloads, if any, are left for `read_into`."""
    (size,) = HEADER.unpack(read_exact(fd, HEADER.size))
    if size > MAX_MESSAGE_BYTES:
        raise Closed(f"a message of {size} bytes: the stream is broken")
    message = json.loads(read_exact(fd, size))
    if not isinstance(message, dict):
        raise Closed("a message that is not an object: the stream is broken")
    return message
