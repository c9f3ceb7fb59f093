"""Text from documents, models and recordings, made safe to show on a terminal.

A document can hold `ESC]0;…BEL` (retitles the terminal), `ESC[2J` (clears it) or a CSI
sequence in its one-byte form (U+009B); a file can be named so. Shown as they are, they drive
the terminal. `visible()` shows every control character instead as an escape a person can read
(`\\x1b`, `\\x9b`, `\\u202e`), keeping only line breaks and tabs in multi-line text; `one_line()`
also shows line breaks, for paths, titles and headings. Bidirectional overrides (U+202A-U+202E,
U+2066-U+2069), which make text read other than it is stored, are shown the same way.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_ONE_LINE = {code: _escape(code) for code in [*_CONTROLS, *_BIDI]}
_ONE_LINE[ord("\n")] = "\\n"
_ONE_LINE[ord("\r")] = "\\r"
_ONE_LINE[ord("\t")] = "\\t"
_LINES = {k: v for k, v in _ONE_LINE.items() if k not in (ord("\n"), ord("\t"))}
_JSON = {code: f"\\u{code:04x}" for code in [0x7F, *range(0x80, 0xA0), *_BIDI]}


def visible(text: str) -> str:
    """Multi-line text (a chunk, an answer, a transcript) with its control characters shown."""
    return text.translate(_LINES)


def one_line(text: object) -> str:
    """A path, a title or a heading on one line, with every control character shown."""
    return str(text).translate(_ONE_LINE)


def safe_json(value: Any, **options: Any) -> str:
    """`json.dumps` whose output drives no terminal: what JSON leaves raw (DEL, C1 controls,
    bidirectional overrides) is written as `\\uXXXX` escapes, so the data read back is the same."""
    return json.dumps(value, ensure_ascii=False, **options).translate(_JSON)


def clock(seconds: float) -> str:
    """mm:ss (or h:mm:ss) for a time in a recording."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def rate_and_eta(rtf: float | None, eta_s: float | None) -> str:
    """ "RTF 0.12, 4:05 left" for a progress bar; what is not known yet is left out."""
    parts = []
    if rtf is not None:
        parts.append(f"RTF {rtf:.2f}")
    if eta_s is not None and eta_s > 0:
        parts.append(f"{clock(eta_s)} left")
    return ", ".join(parts)


SKIPS_NAMED = 3
"""Files of formats localrag does not read are named one each up to this many; more (a folder
of compressed changelogs, say) are counted by extension in one line."""


def skipped_summary(paths: Sequence[str]) -> str:
    """ "5 files of formats localrag does not read (.gz 4, .conf 1)"."""
    by_suffix = Counter(PurePath(p).suffix or "(no extension)" for p in paths)
    counts = ", ".join(f"{visible(suffix)} {n}" for suffix, n in by_suffix.most_common())
    return f"{len(paths)} files of formats localrag does not read ({counts})"
