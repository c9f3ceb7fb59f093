"""A question made without the model: a sentence of the chunk asked back, its term made "what".

On technical text (a manual, a README) SmolLM2-135M proposes no pair that passes make-qa's
check: on the libffi manual, none of 24 (it asks about functions the text never names, and
answers in whole invented sentences). A question "in place" needs no model: the sentence
"Currently the only affected platform is PowerPC and the only affected type is long double."
becomes "Currently the only affected platform is what and the only affected type is long
double?", whose answer, "PowerPC", is in the chunk by construction.

Only plain statements are asked back (a capital first, a full stop last, 8 to 30 words, no code,
no heading run into them, not opening on a word such as "This" that points elsewhere), and only
about a term a reader could check: a code name (`ffi_prep_cif`, `FFI_OK`, `--verbose`, a path),
a name (capitalised, not the sentence's first word), or a year. Such a question repeats its
sentence's other words, so it tests retrieval less than a reworded one would; the set records
how many of its questions were made this way.
"""

from __future__ import annotations

import random
import re

from localrag.closest import sentences_of

MIN_WORDS, MAX_WORDS = 8, 30
_TERM = re.compile(
    r"(?<![\w/.-])(?:"
    r"--?[a-z][\w-]+"  # an option
    r"|/[\w.-]+(?:/[\w.-]+)+"  # a path
    r"|[A-Za-z]\w*_\w+|[a-z]\w*\(\)"  # a code name: snake_case, ALL_CAPS, a call
    r"|[A-Z][a-z]+[A-Z]\w*|[A-Z]{2,}\w*"  # CamelCase, an acronym
    r"|[A-Z][a-z]+(?: (?:of |de |the )?[A-Z][a-z]+)*"  # a name, perhaps of several words
    r"|(?:1[5-9]|20)\d\d"  # a year
    r")(?![\w/'’-])"  # not a possessive: "John Calvin's" does not become "what's"
)
_CODE = re.compile(r"[{};=<>|\[\]:#*`\\©]")
_RUN_IN = re.compile(r"\w [A-Z]\w* (?:An?|The|In|On|If|It|This|For|To) [a-z]")
"""A heading run into the sentence after it, as PDF text gives it: "... using Extended
Attributes An implementation may ..."."""
_ARTICLE = re.compile(r"(?:^|(?<= ))(?:[Tt]he|[Aa]n?) $")
_NOUN_NEXT = re.compile(
    r" (?!(?:or|and|to|in|on|of|is|are|was|were|for|with|as|at|by|from|that|which|will|can|may|"
    r"must|should|has|have)\b)[a-z]+(?<!ing)(?<!ed)(?<!s)(?<!ly)\b"
)
"""A word after a one-word term that a "which" can ask about: "the Aura river" -> "which river"
(not a verb: "the Lindqvist Bridge crosses" -> "What crosses")."""
_POINTING = frozenset(
    {"this", "that", "these", "those", "it", "its", "they", "them", "their", "he", "she", "we"}
    | {"you", "such", "here", "there", "see", "next", "previous"}
)
"""First words of a sentence that leans on another: it cannot be asked alone."""
_SHOUTED = frozenset(
    {"MUST", "MAY", "SHALL", "SHOULD", "NOT", "REQUIRED", "OPTIONAL", "RECOMMENDED", "AND", "OR"}
    | {"NO", "ALL", "ANY", "IS", "THE", "NOTE", "WARNING", "TODO", "OK", "YES"}
)
"""Capitals that are words, not names ("Applications MAY choose ..." is no question about MAY)."""


def question(text: str, rng: random.Random, *, spoken: bool = False) -> tuple[str, str] | None:
    """A question (and its answer) made from one of `text`'s sentences, picked by `rng`; None if
    no sentence qualifies. A `spoken` text (a transcript) has its sentences run across the
    recogniser's segments."""
    found = sentences_of(text, spoken=spoken)
    rng.shuffle(found)
    for sentence in found:
        pair = asked_back(sentence)
        if pair is not None:
            return pair
    return None


def asked_back(sentence: str) -> tuple[str, str] | None:
    """`sentence` as a question about its most specific term, with that term as the answer."""
    words = sentence.split()
    if not (
        MIN_WORDS <= len(words) <= MAX_WORDS
        and sentence[0].isupper()
        and sentence.endswith(".")
        and not sentence.endswith("..")
        and not _CODE.search(sentence)
        and not _RUN_IN.search(sentence)
        and words[0].lower() not in _POINTING
        and not sentence.isupper()  # a licence's shouted paragraph
        and sentence.count("(") == sentence.count(")")  # not cut at an "(e.g." or "(lit."
    ):
        return None
    terms = [
        m
        for m in _TERM.finditer(sentence)
        if (m.start() > 0 or _is_code(m.group())) and m.group() not in _SHOUTED
    ]
    # The term written once: the question must not hold its own answer.
    terms = [m for m in terms if sentence.count(m.group()) == 1]
    if not terms:
        return None
    term = max(terms, key=lambda m: (_is_code(m.group()), len(m.group())))
    start, end = term.span()
    asked = "What" if start == 0 else "what year" if term.group().isdigit() else "what"
    article = _ARTICLE.search(sentence[:start])
    if article:  # "the Aura river" -> "which river"; "called the ABI or" -> "called what or"
        noun = " " not in term.group() and _NOUN_NEXT.match(sentence, end)
        start, asked = article.start(), "which" if noun else "what"
        asked = asked.capitalize() if start == 0 else asked
    body = sentence[:start] + asked + sentence[end:]
    return body.rstrip(" .") + "?", term.group()


def _is_code(term: str) -> bool:
    return any(ch in term for ch in "_-/()") or (term.isupper() and len(term) > 1)
