""".gitignore-style rules: which files of a watched folder stay out of the vault.

The rules come from the folder's registration (`folders add --ignore`) and from the `.gitignore`
and `.localragignore` files inside it, each file's patterns relative to its own folder. As in
git: `#` starts a comment, `!` re-includes, a trailing `/` matches folders only, a pattern with
a `/` before its end is anchored to its file's folder (otherwise it matches at any depth), `*`
and `?` stay within one path part and `**` crosses them; the last matching rule wins, and a
file inside an ignored folder is ignored whatever follows (the folder is never walked).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

IGNORE_FILES = (".gitignore", ".localragignore")
MAX_IGNORE_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class Rule:
    base: str
    """The folder the pattern is relative to, as a POSIX path relative to the watched folder
    ("" for the watched folder itself)."""
    regex: re.Pattern[str]
    negate: bool
    folders_only: bool

    def matches(self, relative: str, is_dir: bool) -> bool:
        if self.folders_only and not is_dir:
            return False
        if self.base:
            if not relative.startswith(self.base + "/"):
                return False
            relative = relative[len(self.base) + 1 :]
        return self.regex.fullmatch(relative) is not None


def parse(lines: Iterable[str], base: str = "") -> list[Rule]:
    rules = []
    for line in lines:
        line = line.rstrip("\n\r")
        if not line.strip() or line.startswith("#"):
            continue
        line = line.rstrip(" ")
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        if pattern.startswith("\\"):  # "\#name" and "\!name" are literal
            pattern = pattern[1:]
        folders_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        if not pattern:
            continue
        anchored = "/" in pattern
        pattern = pattern.lstrip("/")
        regex = _translate(pattern)
        if not anchored:
            regex = "(?:.*/)?" + regex
        rules.append(Rule(base, re.compile(regex, re.DOTALL), negate, folders_only))
    return rules


def _translate(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def ignored(rules: list[Rule], relative: str, is_dir: bool) -> bool:
    """Whether the last rule that matches `relative` (POSIX, relative to the watched folder)
    ignores it."""
    verdict = False
    for rule in rules:
        if rule.matches(relative, is_dir):
            verdict = not rule.negate
    return verdict


def rules_in(folder: Path, base: str) -> list[Rule]:
    """The rules of the ignore files in `folder` (whose path relative to the watched folder is
    `base`); an unreadable or oversized file adds none."""
    rules: list[Rule] = []
    for name in IGNORE_FILES:
        path = folder / name
        try:
            if path.is_file() and path.stat().st_size <= MAX_IGNORE_FILE_BYTES:
                text = path.read_text(encoding="utf-8", errors="replace")
                rules += parse(text.splitlines(), base)
        except OSError:
            continue
    return rules
