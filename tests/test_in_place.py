"""Questions asked back from a sentence, where the model's proposals fail make-qa's check."""

from __future__ import annotations

import random

import pytest

from localrag.evaluate.in_place import asked_back, question
from localrag.evaluate.make_qa import acceptable

ASKED = [
    (
        "Currently the only affected platform is PowerPC and the only affected type is a double.",
        "Currently the only affected platform is what and the only affected type is a double?",
        "PowerPC",
    ),
    (
        "If security settings prohibit any of these for closures, ffi_closure_alloc will fail.",
        "If security settings prohibit any of these for closures, what will fail?",
        "ffi_closure_alloc",
    ),
    (
        "The Lindqvist Bridge crosses the Aura river in three spans and carries two tram tracks.",
        "The Lindqvist Bridge crosses which river in three spans and carries two tram tracks?",
        "Aura",
    ),
    (
        "Construction of the bridge began in 1896 and it opened to traffic six years later.",
        "Construction of the bridge began in what year and it opened to traffic six years later?",
        "1896",
    ),
    (
        "Use the --verbose option to print every file that the program reads.",
        "Use which option to print every file that the program reads?",
        "--verbose",
    ),
    (
        "To address this, the Nixon Administration began negotiations with the combatants.",
        "To address this, what began negotiations with the combatants?",
        "Nixon Administration",
    ),
    (
        "Geneva was John Calvin's adopted home and the centre of the Calvinist movement.",
        "Geneva was John Calvin's adopted home and the centre of which movement?",
        "Calvinist",
    ),
    (
        "The calling convention is also sometimes called the ABI or Application Binary Interface.",
        "The calling convention is also sometimes called what or Application Binary Interface?",
        "ABI",
    ),
]


@pytest.mark.parametrize(("sentence", "asked", "answer"), ASKED)
def test_a_sentence_is_asked_back_about_its_most_specific_term(
    sentence: str, asked: str, answer: str
) -> None:
    assert asked_back(sentence) == (asked, answer)
    assert acceptable(asked, answer, sentence)  # make-qa's own check passes it


@pytest.mark.parametrize(
    "sentence",
    [
        "This will be either FFI_OK if everything worked properly or FFI_BAD_ABI otherwise.",
        "Pancakes need flour, eggs, milk and a pinch of salt for the batter.",  # no term
        "Call ffi_call(&cif, fn, &rc, values); to make the call with the prepared cif.",  # code
        "PowerPC is affected.",  # too short
        "THE SOFTWARE IS PROVIDED AS IS, WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.",
        "Next: Closure Example, Previous: Multiple ABIs, Up: Using libffi and the index.",
        "In Mongolian, Dai Ön is often used in conjunction with the Yeke Mongghul Ulus (lit.",
        "Storing the type using Extended Attributes An implementation may read it from there.",
        "Applications MAY choose to set the type when saving files to the disk.",
        "Why does the Lindqvist Bridge carry two tram tracks across the Aura river?",
    ],
)
def test_a_sentence_that_cannot_be_asked_back_gives_nothing(sentence: str) -> None:
    assert asked_back(sentence) is None


def test_the_question_of_a_text_is_answered_by_the_text_and_does_not_hold_its_answer() -> None:
    text = "\n\n".join(s for s, _, _ in ASKED) + "\n\nSee the index for more."
    for seed in range(20):
        pair = question(text, random.Random(seed))
        assert pair is not None
        assert acceptable(*pair, text)
    assert question("Short. Too short to ask.", random.Random(0)) is None


def test_a_transcript_is_asked_back_across_the_recogniser_segments() -> None:
    spoken = "And so, my fellow Americans, ask not what your country\n\ncan do for you."
    assert question(spoken, random.Random(0)) is None  # each segment alone is no sentence
    assert question(spoken, random.Random(0), spoken=True) == (
        "And so, my fellow what, ask not what your country can do for you?",
        "Americans",
    )
