"""SQuAD scoring of one answer (`localrag.evaluate.scoring.score`)."""

from __future__ import annotations

from test_answer import answer, sources

from localrag.evaluate.scoring import score
from localrag.prompt import NOT_FOUND

QUESTION = "What was the name of Theodore Roosevelt's policy of imperialism?"
# The gold answers of that question in the SQuAD 2.0 dev set: one of them is a lone ".".
GOLD = ["interventionism", ".", "interventionism"]


def scored(reply: str, source: str) -> dict[str, object]:
    return score(answer([reply], sources(source), question=QUESTION), QUESTION, GOLD, None)


def test_a_refusal_does_not_match_a_gold_answer_that_normalises_to_nothing() -> None:
    refused = scored(NOT_FOUND, "Roosevelt's policy was called interventionism.")
    assert refused["abstained"]
    assert (refused["em"], refused["f1"], refused["squad_f1"]) == (0.0, 0.0, 0.0)


def test_a_cited_source_without_the_answer_is_not_counted_as_holding_it() -> None:
    wrong = scored("the Monroe Doctrine [1]", "Roosevelt extended the Monroe Doctrine.")
    right = scored("interventionism [1]", "Roosevelt's policy was called interventionism.")
    assert (wrong["cited_ok"], wrong["em"]) == (False, 0.0)
    assert (right["cited_ok"], right["em"], right["f1"]) == (True, 1.0, 1.0)
