"""The answer adapter that ships with localrag, pinned by SHA-256 like the default models.

It lives in `models/answer-adapter/` of a checkout (in a wheel: `localrag/answer_adapter/`),
as a PEFT folder with a `manifest.toml` beside it that pins each file's size and SHA-256. A
folder whose files do not match is refused before anything parses them.

To make it the model that answers (what `models pull` is to do at set-up):
`verified_folder()`, then `manage.import_adapter(store, settings, folder, NAME)`, then
`manage.merge_adapter(store, settings, NAME)` and `Registry(store).use(NAME)`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from localrag.errors import AdapterError
from localrag.models import sha256_file
from localrag.settings import CHECKOUT

NAME = "answer"
"""The name it is imported under."""
MANIFEST = "manifest.toml"


@dataclass(frozen=True)
class PinnedFile:
    path: str
    """Relative to the adapter's folder."""
    size: int
    sha256: str


def default_folder() -> Path:
    """Where the shipped adapter is: the checkout's `models/answer-adapter`, else the copy
    inside the installed package."""
    in_checkout = CHECKOUT / "models" / "answer-adapter"
    if (in_checkout / MANIFEST).is_file():
        return in_checkout
    return Path(__file__).resolve().parent.parent / "answer_adapter"


def pins(folder: Path) -> list[PinnedFile]:
    path = folder / MANIFEST
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return [PinnedFile(f["path"], int(f["size"]), f["sha256"]) for f in data["file"]]
    except FileNotFoundError as exc:
        raise AdapterError(f"{path}: missing; the shipped adapter cannot be checked") from exc
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise AdapterError(f"{path}: not a valid adapter manifest ({exc})") from exc


def verified_folder(folder: Path | None = None) -> Path:
    """The shipped adapter's folder, once every pinned file matches its size and SHA-256."""
    folder = folder or default_folder()
    for pin in pins(folder):
        path = folder / pin.path
        if not path.is_file():
            raise AdapterError(f"{path}: missing from the shipped answer adapter")
        if path.stat().st_size != pin.size or sha256_file(path) != pin.sha256:
            raise AdapterError(
                f"{path}: does not match the SHA-256 pinned in {folder / MANIFEST}; "
                "the shipped answer adapter was altered, so it is not used"
            )
    return folder


def write_manifest(folder: Path, files: tuple[str, ...], header: str) -> Path:
    """Pin `files` of `folder` in its manifest (used by the recipe after training)."""
    lines = [header.rstrip(), ""]
    for name in files:
        path = folder / name
        lines += [
            "[[file]]",
            f'path = "{name}"',
            f"size = {path.stat().st_size}",
            f'sha256 = "{sha256_file(path)}"',
            "",
        ]
    out = folder / MANIFEST
    out.write_text("\n".join(lines), encoding="utf-8")
    return out
