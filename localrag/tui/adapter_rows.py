"""What the adapters view shows for each model: the base, each imported adapter, each merged
version with its provenance. Pure functions of `Assistant.adapters()`, easy to test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localrag.cli.common import human_size
from localrag.tui.format import short_time
from localrag.tui.model_picker import BASE

HASH_CHARS = 8
"""Hash prefixes in the table; the detail line shows 12, like `localrag adapter list`."""
COLUMNS = ("", "Model", "Quant", "Rank", "Alpha", "Base", "Adapter", "Date")


@dataclass(frozen=True)
class AdapterRow:
    """One line of the table, with what the actions need to know about it."""

    ref: str
    """`base`, an adapter's `NAME`, or a version's `NAME@vN`."""
    kind: str
    """base, adapter or version."""
    name: str | None
    """The adapter it belongs to (None for the base)."""
    active: bool
    """The model that answers now (the active version, the base, or the runtime adapter)."""
    cells: tuple[str, ...]
    """As many as `COLUMNS`."""
    detail: str
    """The provenance in full, for the line under the table."""


def adapter_rows(listing: Any, runtime: str | None) -> list[AdapterRow]:
    """The base, then each adapter followed by its versions, oldest first.

    `runtime` is the adapter applied at run time, if the user chose one: it answers instead of
    the registry's active version, so it is the one marked.
    """
    active = None if runtime else (listing.active or BASE)
    rows = [
        AdapterRow(
            BASE,
            "base",
            None,
            active == BASE,
            _cells(active == BASE, "base model"),
            "The base model alone, without an adapter.",
        )
    ]
    for info in listing.adapters:
        rows.append(_adapter_row(info, runtime == info.name))
        rows.extend(
            _version_row(v, active == v.ref) for v in listing.versions if v.name == info.name
        )
    return rows


def _cells(active: bool, model: str, *rest: str) -> tuple[str, ...]:
    cells = ("*" if active else "", model, *rest)
    return cells + ("",) * (len(COLUMNS) - len(cells))


def _adapter_row(info: Any, active: bool) -> AdapterRow:
    detail = (
        f"{info.name}: {info.source_format} LoRA from {info.source}, {info.tensor_count} weights"
        f" ({', '.join(info.targets)}), rank {info.rank}, alpha {info.alpha:g}; adapter"
        f" {info.sha256[:12]} for base {info.base_sha256[:12]}; imported"
        f" {short_time(info.imported_at)}. u applies it at run time, m merges it."
    )
    cells = _cells(
        active,
        info.name + (" (runtime)" if active else ""),
        "LoRA",
        str(info.rank),
        f"{info.alpha:g}",
        info.base_sha256[:HASH_CHARS],
        info.sha256[:HASH_CHARS],
        short_time(info.imported_at),
    )
    return AdapterRow(info.name, "adapter", info.name, active, cells, detail)


def _version_row(v: Any, active: bool) -> AdapterRow:
    detail = (
        f"{v.ref}: {v.name} merged into {v.base_model} (base {v.base_sha256[:12]}, adapter"
        f" {v.adapter_sha256[:12]}), rank {v.rank}, alpha {v.alpha:g}, {v.quant},"
        f" {human_size(v.size_bytes)}, model {v.sha256[:12]}; merged in {v.merge_s:g} s on"
        f" {short_time(v.created_at)}."
    )
    cells = _cells(
        active,
        f"  {v.ref}",  # indented under its adapter
        v.quant,
        str(v.rank),
        f"{v.alpha:g}",
        v.base_sha256[:HASH_CHARS],
        v.adapter_sha256[:HASH_CHARS],
        short_time(v.created_at),
    )
    return AdapterRow(v.ref, "version", v.name, active, cells, detail)
