"""Adapters (F4): adapters and merged versions with provenance, the active one marked; use, roll
back, delete after confirming, merge with a progress bar (cancellable), verify."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, ProgressBar, Static
from tui_fakes import FakeAssistant, version
from tui_helpers import SIZE, ask, notifications, screen_text, status, wait_until

from localrag.tui.adapters import AdaptersPane
from localrag.tui.confirm_screen import ConfirmScreen
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
