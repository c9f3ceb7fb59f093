"""End to end on the real default models: create a vault, add a document and a recording, ask."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import Static
from tui_helpers import SIZE, ask, context_shown, names, notifications, wait_until

from localrag.settings import Settings
from localrag.tui import build_app
from localrag.tui.answer_view import AnswerView
from localrag.tui.confirm_screen import ConfirmScreen
from localrag.tui.main_screen import MainScreen
from localrag.tui.sources import SourcesPanel
from localrag.tui.vault import ServiceVault

pytestmark = [pytest.mark.anyio, pytest.mark.models, pytest.mark.slow]

PASSPHRASE = "a long enough passphrase"
ANSWER_TIMEOUT_S = 300.0
"""The first answer loads the model; on a busy 2-core machine that and 384 tokens take a while."""
SPEECH = Path(__file__).resolve().parents[3] / "shared" / "data" / "audio" / "jfk.flac"


async def test_real_models_answer_with_sources_and_open_them(
    real_models: Settings, tmp_path: Path, no_network: list[object]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "policy.md").write_text(
        "# Expenses\n\nMeals are reimbursed up to 40 euros per day with receipts.\n"
        "Taxis are reimbursed only after 22:00.\n"
    )
    if SPEECH.is_file():
        shutil.copy(SPEECH, docs / "jfk.flac")
    app = build_app(vault=ServiceVault(real_models))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*PASSPHRASE, "enter", *PASSPHRASE, "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), "vault created")
        await pilot.press("f2", *str(docs), "enter")
        expected = sorted(p.name for p in docs.iterdir())
        await wait_until(
            pilot, lambda: sorted(names(app)) == expected, "documents added", ANSWER_TIMEOUT_S
        )

        await pilot.press("f1")
        await ask(pilot, "How much are meals reimbursed per day?", ANSWER_TIMEOUT_S)
        view = app.screen.query(AnswerView).last()
        assert "40" in view.answer_text
        meta = str(view.query_one(".meta", Static).render())
        assert "retrieval" in meta and "first token" in meta and "tok/s" in meta
        sources = app.screen.query_one(SourcesPanel).sources
        assert sources and all(s.score is not None and s.where for s in sources)
        assert not notifications(pilot)

        # The policy passage opens in its document (cited or not: the small model may not cite).
        policy = next(i for i, s in enumerate(sources) if s.path.endswith("policy.md"))
        await pilot.press("ctrl+s", *["down"] * policy, "enter")
        await wait_until(pilot, lambda: context_shown(app))
        assert "40 euros" in str(app.screen.query_one(".passage.cited", Static).render())
        await pilot.press("escape")

        if SPEECH.is_file():
            await pilot.press("ctrl+n")
            await ask(
                pilot,
                "What should you ask, instead of what your country can do for you?",
                ANSWER_TIMEOUT_S,
            )
            sources = app.screen.query_one(SourcesPanel).sources
            speech = next(i for i, s in enumerate(sources) if s.path.endswith("jfk.flac"))
            assert "jfk.flac @ 00:00" in sources[speech].where
            await pilot.press("ctrl+s", *["down"] * speech, "enter")
            await wait_until(pilot, lambda: context_shown(app))
            transcript = " ".join(str(p.render()) for p in app.screen.query(".passage"))
            assert "your country" in transcript.lower()
    assert no_network == []


async def test_real_import_and_merge_from_the_adapters_view(
    real_models: Settings, tmp_path: Path, no_network: list[object]
) -> None:
    from localrag import models
    from localrag.adapter import convert
    from localrag.adapter.sample import make_peft_adapter
    from localrag.service import Assistant
    from localrag.tui.adapters import AdaptersPane
    from localrag.tui.import_screen import ImportScreen

    base_path = models.model_path(real_models, "llm")
    base = convert.read_base(base_path)
    folder = make_peft_adapter(base, tmp_path / "tone", rank=8, alpha=16, targets=("q_proj",))
    pickled = tmp_path / "adapter_model.bin"
    pickled.write_bytes(b"\x80\x04")
    with Assistant.create(
        real_models, bytearray(PASSPHRASE.encode()), answer_model=False
    ) as assistant:
        app = build_app(assistant=assistant)
        async with app.run_test(size=SIZE) as pilot:
            pane = app.screen.query_one(AdaptersPane)
            await pilot.press("f4")
            await wait_until(pilot, lambda: [r.ref for r in pane.rows] == ["base"])

            async def import_adapter(path: Path) -> None:
                await pilot.press("i")
                await wait_until(pilot, lambda: isinstance(app.screen, ImportScreen))
                # Ctrl+U clears the path a refused import left; the name is the default.
                await pilot.press("ctrl+u", *str(path), "enter", "enter")

            await import_adapter(pickled)
            await wait_until(pilot, lambda: notifications(pilot) and not pane.job, "refused")
            assert "pickle formats" in notifications(pilot)[-1]
            assert assistant.adapters().adapters == [] and assistant.store.blobs() == []
            await import_adapter(folder)
            await wait_until(pilot, lambda: [r.ref for r in pane.rows] == ["base", "tone"])
            assert notifications(pilot)[-1] == (
                "Imported tone (peft, rank 8, 30 weights): m merges it, u applies it at run time."
            )
            assert pane.selected().ref == "tone"
            assert [b.name for b in assistant.store.blobs()] == ["adapter/tone/lora.gguf"]
            await pilot.press("m")
            await pilot.pause()
            await pilot.press("enter")  # Q4_K_M: merged, then quantized by llama.cpp
            await wait_until(
                pilot, lambda: "tone@v1" in [r.ref for r in pane.rows], "merged", ANSWER_TIMEOUT_S
            )
            assert pane.selected().ref == "tone@v1"
            assert models.sha256_file(base_path)[:12] in pane.selected().detail
            await pilot.press("enter")
            await wait_until(pilot, lambda: [r.ref for r in pane.rows if r.active] == ["tone@v1"])
            assert assistant.adapters().active == "tone@v1"
            await pilot.press("d")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_until(pilot, lambda: [r.ref for r in pane.rows] == ["base", "tone"])
            assert assistant.adapters().active is None
            assert notifications(pilot)[-3:] == [  # the import's have timed out by now
                "Merged tone@v1 (Q4_K_M): u answers with it.",
                "Answers now come from tone@v1.",
                "Deleted tone@v1.",
            ]
    assert no_network == []
