"""Text generation: the language model behind one small interface, plus a fake for tests.

A generator takes chat messages (`{"role": ..., "content": ...}`) and streams the answer, one
item per generated token. The real one is a model worker (`localrag.worker`): llama.cpp runs a
GGUF in a child process, so that a crash in it costs an error message, never the app.
`EchoGenerator` is a deterministic fake with no model.

Two properties matter for speed and safety, and the worker keeps both:
- The fixed system prompt comes first and never changes, so llama.cpp keeps its KV cache between
  questions and only evaluates the new part of the prompt (prefix reuse).
- Message contents are tokenized as plain text: a document or question that contains a control
  string such as `<|im_start|>` stays text and can never open a new turn.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

Message = dict[str, str]

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""The chat template for a GGUF without one (ChatML)."""


@dataclass(frozen=True)
class Grounding:
    """What an answer from sources is held to: with `copy_spans`, it copies a span of one of
    these `sources` (numbered from 1 as in the prompt) and cites it, or it begins the `refusal`
    sentence; with an `abstain_margin`, it begins the refusal only if the model likes that
    beginning by more than this many logits over its likeliest answer."""

    sources: tuple[str, ...]
    refusal: str
    copy_spans: bool = True
    abstain_margin: float = 0.0


class Generator(Protocol):
    """What the answer stage needs from a language model."""

    name: str
    """The model's name, as reported with each answer."""
    adapter: str | None
    """The LoRA adapter applied at run time, if any."""
    n_ctx: int
    """The context window, in tokens."""

    def count_tokens(self, text: str) -> int: ...

    def stream(
        self, messages: Sequence[Message], max_tokens: int, grounding: Grounding | None = None
    ) -> Iterator[str]:
        """Yield the reply: one item per generated token (an item may be "" mid-character);
        with `grounding`, a reply that stays grounded in those sources."""
        ...


class EchoGenerator:
    """A deterministic fake: repeats the first sentence of source [1] and cites it.

    With no source in the prompt it answers "You asked: <the last user message>". A fixed
    `reply` replaces both. Tokens are words, so counts are easy to check.
    """

    def __init__(self, reply: str | None = None, *, n_ctx: int = 4096) -> None:
        self.name = "echo"
        self.adapter: str | None = None
        self.n_ctx = n_ctx
        self.reply = reply
        self.prompts: list[list[Message]] = []
        """Every prompt it was given, so tests can look at them."""

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def answer_for(self, messages: Sequence[Message]) -> str:
        if self.reply is not None:
            return self.reply
        last = messages[-1]["content"]
        source = re.search(r'<source n="1"[^>]*>\n(.*?)\n</source>', last, re.S)
        if source:
            first = re.split(r"(?<=[.!?])\s", source.group(1).strip(), maxsplit=1)[0]
            return f"{first} [1]"
        question = last.rsplit("Question:", 1)[-1].strip()
        return f"You asked: {question}"

    def stream(
        self, messages: Sequence[Message], max_tokens: int, grounding: Grounding | None = None
    ) -> Iterator[str]:
        self.prompts.append([dict(m) for m in messages])
        words = self.answer_for(messages).split(" ")
        for i, word in enumerate(words[:max_tokens]):
            yield word if i == 0 else " " + word

    def close(self) -> None:
        pass
