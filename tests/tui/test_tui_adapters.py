"""Adapters (F4): adapters and merged versions with provenance, the active one marked; import,
use, roll back, delete after confirming, merge with a progress bar (cancellable), verify."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, ProgressBar, Static
from tui_fakes import TINY_BASE, FakeAssistant, version
from tui_helpers import SIZE, ask, notifications, screen_text, status, wait_until

from localrag.adapter.convert import BaseShape
from localrag.adapter.peft import WEIGHTS
from localrag.adapter.sample import make_peft_adapter
from localrag.tui.adapters import AdaptersPane
from localrag.tui.confirm_screen import ConfirmScreen
from localrag.tui.import_screen import ImportScreen
from localrag.tui.job_progress import JobProgress
from localrag.tui.main_screen import MainScreen
from localrag.tui.quant_picker import QuantPicker

pytestmark = pytest.mark.anyio

ROWS = ["base", "legal", "legal@v1"]
"""The fake's models in table order: the base, the adapter, its one merged version."""


def pane(app) -> AdaptersPane:
    return app.screen.query_one(AdaptersPane)


def refs(app) -> list[str]:
    return [r.ref for r in pane(app).rows]


def marked(app) -> list[str]:
    return [r.ref for r in pane(app).rows if r.active]


def cells(app, ref: str) -> list[str]:
    table = pane(app).query_one(DataTable)
    return [str(c) for c in table.get_row(ref)]


async def open_adapters(pilot, row: str | None = None) -> None:
    """F4, then the cursor down to `row`."""
    await pilot.press("f4")
    app = pilot.app
    await wait_until(pilot, lambda: pane(app).rows and pane(app).table.has_focus, "the table")
    if row is not None:
        await pilot.press(*["down"] * refs(app).index(row))
        assert pane(app).selected().ref == row


async def test_the_view_lists_versions_with_provenance_and_marks_the_active_one(app) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_adapters(pilot, "legal@v1")
        assert refs(app) == ROWS
        assert marked(app) == ["base"]
        assert cells(app, "legal@v1") == [
            "",
            "  legal@v1",
            "Q4_K_M",
            "8",
            "16",
            "1a2b3c4d",
            "9f8e7d6c",
            "2026-11-25 11:00",
        ]
        detail = str(app.screen.query_one("#adapter-detail", Static).render())
        assert "merged into SmolLM2-135M-Instruct (base 1a2b3c4d5e6f" in detail
        assert "98.1 MB" in detail and "merged in 12.5 s" in detail
        await pilot.pause()
        assert "legal@v1  Q4_K_M  8     16     1a2b3c4d  9f8e7d6c  2026-11-25 11:00" in (
            screen_text(app)
        )


async def test_use_a_version_then_roll_back(app, assistant: FakeAssistant) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_adapters(pilot, "legal@v1")
        await pilot.press("enter")
        await wait_until(pilot, lambda: marked(app) == ["legal@v1"], "legal@v1 marked")
        assert assistant.active == "legal@v1"
        assert "adapter legal@v1" in status(app)
        assert cells(app, "legal@v1")[0] == "*"
        await pilot.press("b")
        await wait_until(pilot, lambda: marked(app) == ["base"], "back to the base")
        assert assistant.active is None and "adapter none" in status(app)
        await pilot.press("b")  # nothing left to roll back to: the core says so
        await wait_until(pilot, lambda: notifications(pilot)[-1].startswith("nothing to roll"))
        assert app.is_running


async def test_use_an_adapter_applies_it_at_run_time(app, assistant: FakeAssistant) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_adapters(pilot, "legal")
        await pilot.press("u")
        await wait_until(pilot, lambda: marked(app) == ["legal"])
        assert cells(app, "legal")[1] == "legal (runtime)"
        assert "adapter legal (runtime)" in status(app)
        assert assistant.active is None  # the vault's active model is left as it was
        await pilot.press("f1")
        await ask(pilot, "Hello?")
        assert assistant.asked[-1]["adapter"] == "legal"
        assert assistant.asked[-1]["runtime_adapter"] is True


async def test_delete_a_version_after_confirming(app, assistant: FakeAssistant) -> None:
    assistant.active = "legal@v1"
    async with app.run_test(size=SIZE) as pilot:
        await open_adapters(pilot, "legal@v1")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Delete legal@v1 from the vault?" in app.screen.question
        assert "Answers go back to the base model." in app.screen.question
        await pilot.press("n")
        assert isinstance(app.screen, MainScreen) and "legal@v1" in refs(app)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: refs(app) == ["base", "legal"], "legal@v1 is gone")
        assert "Deleted legal@v1." in notifications(pilot)
        assert assistant.active is None and marked(app) == ["base"]


async def test_deleting_an_adapter_names_its_versions(app, assistant: FakeAssistant) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_adapters(pilot, "legal")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Its merged versions go with it: legal@v1." in app.screen.question
        await pilot.press("y")
        await wait_until(pilot, lambda: refs(app) == ["base"])
        assert assistant.adapter_list == [] and assistant.versions == []


def tiny_adapter(folder: Path, base: BaseShape = TINY_BASE) -> Path:
    """A PEFT folder (config + safetensors) that fits the fake's base, unless given another."""
    return make_peft_adapter(base, folder, rank=4, alpha=8, targets=("q_proj", "v_proj"))


async def import_box(pilot) -> ImportScreen:
    await pilot.press("i")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ImportScreen), "the import box")
    return pilot.app.screen


async def import_adapter(pilot, path: Path, *name_keys: str) -> None:
    """i, the path, Enter, then the name (none: the default), Enter."""
    await import_box(pilot)
    await pilot.press(*str(path), "enter", *name_keys, "enter")


async def test_import_an_adapter_lists_it_under_its_folder_name(
    app, assistant: FakeAssistant, tmp_path: Path
) -> None:
    folder = tiny_adapter(tmp_path / "tone")
    async with app.run_test(size=SIZE) as pilot:
        await open_adapters(pilot)
        await import_adapter(pilot, folder)
        await wait_until(pilot, lambda: "tone" in refs(app), "tone is listed")
        assert isinstance(app.screen, MainScreen) and not pane(app).job
        assert pane(app).selected().ref == "tone"  # the cursor goes to it
        assert cells(app, "tone")[1:4] == ["tone", "LoRA", "4"]
        assert f"peft LoRA from {folder}, 2 weights (attn_q, attn_v)" in pane(app).selected().detail
        assert notifications(pilot) == [
            "Imported tone (peft, rank 4, 2 weights): m merges it, u applies it at run time."
        ]

        # The box opens empty again; a typed name replaces the default.
        box = await import_box(pilot)
        assert box.query_one("#import-path", Input).value == ""
        await pilot.press(*str(folder), "enter")
        assert box.query_one("#import-name", Input).placeholder.startswith("Name: tone ")
        await pilot.press(*"tone-2", "enter")
        await wait_until(pilot, lambda: "tone-2" in refs(app), "tone-2 is listed")
        assert refs(app) == [*ROWS, "tone", "tone-2"]
        assert [a.name for a in assistant.adapter_list] == ["legal", "tone", "tone-2"]


def pickled(tmp_path: Path) -> Path:
    path = tmp_path / "adapter_model.bin"
    path.write_bytes(b"\x80\x04not really")
    return path


def truncated(tmp_path: Path) -> Path:
    folder = tiny_adapter(tmp_path / "cut")
    weights = folder / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-100])
    return folder


def misshapen(tmp_path: Path) -> Path:
    wider = BaseShape(
        "llama", 1, 4, 2, {"blk.0.attn_q.weight": (32, 32), "blk.0.attn_v.weight": (16, 32)}
    )
    return tiny_adapter(tmp_path / "wide", wider)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (pickled, "adapter_model.bin: pickle formats"),
        (truncated, "adapter_model.safetensors: truncated"),
        (misshapen, "B·A is 32×32 but the base's blk.0.attn_q.weight is 16×16"),
    ],
    ids=["pickle", "truncated", "wrong shapes"],
)
async def test_a_refused_adapter_is_one_notification_and_nothing_is_registered(
    app, assistant: FakeAssistant, tmp_path: Path, bad, reason: str
) -> None:
    path = bad(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await open_adapters(pilot)
        await import_adapter(pilot, path)
        await wait_until(pilot, lambda: notifications(pilot), "the refusal")
        await wait_until(pilot, lambda: not pane(app).job, "the job row is gone")
        [shown] = app._notifications
        assert reason in shown.message and "\n" not in shown.message
        assert (shown.title, shown.severity) == ("Adapter", "error")
        assert [a.name for a in assistant.adapter_list] == ["legal"]
        assert refs(app) == ROWS and app.is_running

        # i again: the box holds the path, to fix rather than retype; the name is still the
        # default (empty), so it follows the path.
        box = await import_box(pilot)
        assert box.query_one("#import-path", Input).value == str(path)
        assert box.query_one("#import-name", Input).value == ""


async def test_a_missing_path_keeps_the_box_open_and_esc_cancels(
    app, assistant: FakeAssistant, tmp_path: Path
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_adapters(pilot)
        box = await import_box(pilot)
        await pilot.press("enter")
        assert notifications(pilot) == ["Type the adapter's path."]
        await pilot.press(*str(tmp_path / "nothing"), "enter")
        assert notifications(pilot)[-1] == f"{tmp_path / 'nothing'}: no such file or folder"
        assert app.screen is box and box.query_one("#import-path", Input).has_focus
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen) and not pane(app).job
        assert [a.name for a in assistant.adapter_list] == ["legal"] and refs(app) == ROWS


async def merge(pilot, *quant_keys: str) -> JobProgress:
    """m, choose a quantization, and wait until the fake stops halfway (2 of 4 weights)."""
    await pilot.press("m")
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, QuantPicker), "the quantizations")
    await pilot.press(*quant_keys, "enter")
    job = app.screen.query_one(JobProgress)
    await wait_until(pilot, lambda: job.display and job.status == "2/4 weights", "halfway")
    return job


async def test_merge_shows_its_progress_then_the_new_version(app, assistant: FakeAssistant) -> None:
    assistant.release_merge.clear()
    async with app.run_test(size=SIZE) as pilot:
        await open_adapters(pilot, "legal")
        job = await merge(pilot, "down", "down")  # Q8_0
        assert job.query_one(ProgressBar).percentage == 0.5
        await pilot.pause()
        assert "merging legal" in screen_text(app) and "2/4 weights" in screen_text(app)
        assistant.release_merge.set()
        await wait_until(pilot, lambda: "legal@v2" in refs(app), "the new version is listed")
        assert assistant.merges == [("legal", "Q8_0")]
        assert cells(app, "legal@v2")[2] == "Q8_0"
        assert pane(app).selected().ref == "legal@v2"  # the cursor goes to it
        assert "Merged legal@v2 (Q8_0): u answers with it." in notifications(pilot)
        assert not job.display


async def test_esc_cancels_a_merge_and_nothing_is_stored(app, assistant: FakeAssistant) -> None:
    assistant.release_merge.clear()
    async with app.run_test(size=SIZE) as pilot:
        await open_adapters(pilot, "legal@v1")  # a version's row merges its adapter
        job = await merge(pilot)
        await pilot.press("escape")
        assert job.status == "cancelling at the next step…"
        assistant.release_merge.set()
        await wait_until(pilot, lambda: not job.display, "the merge stopped")
        assert "Merge of legal cancelled; nothing was stored." in notifications(pilot)
        assert [v.ref for v in assistant.versions] == ["legal@v1"]


async def test_one_job_at_a_time_and_the_base_is_not_merged(app, assistant: FakeAssistant) -> None:
    assistant.release_merge.clear()
    async with app.run_test(size=SIZE) as pilot:
        await open_adapters(pilot)
        await pilot.press("m")
        assert notifications(pilot) == ["Choose an adapter (or one of its versions) to merge."]
        await pilot.press("down")
        await merge(pilot)
        await pilot.press("m")
        assert "Wait: merging legal is running" in notifications(pilot)[-1]
        assistant.release_merge.set()
        await wait_until(pilot, lambda: "legal@v2" in refs(app))


async def test_verify_a_version(app, assistant: FakeAssistant) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_adapters(pilot, "legal@v1")
        await pilot.press("v")
        await wait_until(pilot, lambda: assistant.verified and not pane(app).job)
        assert assistant.verified == ["legal@v1"]
        assert notifications(pilot)[-1] == (
            "legal@v1 matches the base with its runtime LoRA (max logit difference 0.20% of"
            " the range, top-1 agreement 100%)."
        )


async def test_the_active_version_is_marked_when_the_view_opens(
    assistant: FakeAssistant,
) -> None:
    from localrag.tui import build_app

    assistant.versions.append(version("legal", 2, "F16"))
    assistant.active = "legal@v2"
    app = build_app(assistant=assistant)
    async with app.run_test(size=SIZE) as pilot:
        await open_adapters(pilot)
        assert marked(app) == ["legal@v2"]
        assert refs(app) == [*ROWS, "legal@v2"]
