"""Check an offline bundle before anything of it is installed (run by install.sh).

1. This machine is the bundle's target: the same Python (major.minor, CPython), the same
   platform, and a C library no older than the one the wheels were built against.
2. Every file that SHA256SUMS lists is there, has the size bundle.toml records and the hash
   SHA256SUMS records; no file the bundle does not list sits among the wheels or models (pip and
   the model installer would see it).

Standard library only: it runs with the machine's Python, before there is a virtual environment.
Prints one line and exits 1 at the first problem, naming the file and the fix; else one line
saying what it checked.

SHA256SUMS vouches for the files; compare its own SHA-256 with the one `make bundle` printed (or
the tar's, with the `.tar.sha256` file beside it) to know the bundle is the one that was built.
"""

from __future__ import annotations

import hashlib
import platform
import sys
import sysconfig
from pathlib import Path

LISTED_FOLDERS = ("wheels", "models")
"""Folders in which an unlisted file is refused: installers read whatever they hold."""


class Refused(Exception):
    pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def check_target(bundle: dict[str, str]) -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    machine = sysconfig.get_platform()
    wanted = f"{bundle['implementation']} {bundle['python']} on {bundle['platform']}"
    if (sys.implementation.name, here, machine) != (
        bundle["implementation"],
        bundle["python"],
        bundle["platform"],
    ):
        raise Refused(
            f"this bundle is for {wanted}; this machine runs {sys.implementation.name} {here} on "
            f"{machine} (set PYTHON to a python{bundle['python']}, or build a bundle for this "
            "machine with `make bundle` on a connected one)"
        )
    libc, libc_version = platform.libc_ver()
    if bundle.get("libc") and (
        libc != bundle["libc"] or _version(libc_version) < _version(bundle["libc_version"])
    ):
        raise Refused(
            f"this bundle needs {bundle['libc']} {bundle['libc_version']} or newer; this machine "
            f"has {libc or 'another C library'} {libc_version}: build a bundle on an older system"
        )


def check_files(folder: Path, sizes: dict[str, int]) -> int:
    """Every listed file present with its size and hash; nothing unlisted. Returns the bytes."""
    sums_path = folder / "SHA256SUMS"
    sums: dict[str, str] = {}
    for line in sums_path.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        sums[name] = digest
    if set(sums) != set(sizes):
        odd = sorted(set(sums) ^ set(sizes))[0]
        raise Refused(f"{folder / odd}: SHA256SUMS and bundle.toml disagree; copy the bundle again")
    for top in LISTED_FOLDERS:
        for path in sorted((folder / top).rglob("*")):
            if path.is_file() and path.relative_to(folder).as_posix() not in sums:
                raise Refused(f"{path}: not part of the bundle (not in SHA256SUMS); remove it")
    for name, size in sizes.items():  # sizes first: a truncated copy is found without hashing
        path = folder / name
        if not path.is_file():
            raise Refused(f"{path}: missing from the bundle; copy the bundle again")
        if path.stat().st_size != size:
            raise Refused(f"{path}: {path.stat().st_size} bytes, not {size}; copy it again")
    for name, digest in sums.items():
        if sha256_file(folder / name) != digest:
            raise Refused(
                f"{folder / name}: SHA-256 differs from SHA256SUMS; the file was changed or "
                "damaged, copy the bundle again"
            )
    return sum(sizes.values())


def verify(folder: Path) -> str:
    import tomllib  # after the version check could run: Python < 3.11 has no tomllib

    manifest = folder / "bundle.toml"
    if not manifest.is_file():
        raise Refused(f"{manifest}: missing; this is not a localrag bundle, or an incomplete copy")
    if not (folder / "SHA256SUMS").is_file():
        raise Refused(f"{folder / 'SHA256SUMS'}: missing; copy the bundle again")
    data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    check_target(data["bundle"])
    sizes = {f["path"]: int(f["size"]) for f in data["file"]}
    total = check_files(folder, sizes)
    return f"{len(sizes)} files, {total / 1e6:.0f} MB, each matches SHA256SUMS"


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else Path(__file__).parent).resolve()
    if sys.version_info < (3, 11):  # noqa: UP036 (the machine's Python, not ours)
        print(f"verify: Python {platform.python_version()} is too old; set PYTHON to the "
              "python3.11 the bundle was built for", file=sys.stderr)  # fmt: skip
        return 1
    try:
        summary = verify(folder)
    except Refused as refused:
        print(f"verify: {refused}", file=sys.stderr)
        return 1
    print(f"verify: {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
