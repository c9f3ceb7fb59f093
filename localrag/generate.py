"""Text generation: the local LLM behind one small interface, plus a fake for tests.

A generator takes chat messages (`{"role": ..., "content": ...}`) and streams the answer, one
item per generated token. `LlamaGenerator` runs a GGUF with llama-cpp-python and the chat
template stored in the GGUF; `EchoGenerator` is a deterministic fake with no model.

Two properties matter for speed and safety:
- The fixed system prompt comes first and never changes, so llama.cpp keeps its KV cache between
  questions and only evaluates the new part of the prompt (prefix reuse).
- Message contents are tokenized with `special=False`: a document or question that contains a
  control string such as `<|im_start|>` stays plain text and can never open a new turn.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from localrag.errors import ModelError

log = logging.getLogger(__name__)

Message = dict[str, str]

# A fallback template (ChatML) for a GGUF without one.
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_SENTINEL = "\x00\x01localrag-content-{}\x01\x00"


class Generator(Protocol):
    """What the answer stage needs from a language model."""

    name: str
    """The model's name, as reported with each answer."""
    adapter: str | None
    """The LoRA adapter applied at run time, if any."""
    n_ctx: int
    """The context window, in tokens."""

    def count_tokens(self, text: str) -> int: ...

    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]:
        """Yield the reply: one item per generated token (an item may be "" mid-character)."""
        ...


LOOP_MIN_TOKENS = 4
LOOP_MAX_TOKENS = 32


def looping(tokens: Sequence[int]) -> bool:
    """The last tokens are one run of 4 to 32 tokens written three times over: a small model
    caught in a loop ("I am sorry, I am sorry, I am sorry, ..."), which would only end at the
    token limit."""
    for width in range(LOOP_MIN_TOKENS, LOOP_MAX_TOKENS + 1):
        if len(tokens) < 3 * width:
            break
        unit = tokens[-width:]
        if tokens[-2 * width : -width] == unit and tokens[-3 * width : -2 * width] == unit:
            return True
    return False


class LlamaGenerator:
    """A GGUF model run by llama-cpp-python, loaded once."""

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int = 4096,
        name: str | None = None,
        lora_path: Path | None = None,
        adapter: str | None = None,
        n_threads: int | None = None,
    ) -> None:
        from llama_cpp import Llama

        self.name = name or path.stem
        self.adapter = adapter or (lora_path.stem if lora_path else None)
        self.path = path
        try:
            self.llm = Llama(
                str(path),
                n_ctx=n_ctx,
                n_threads=n_threads or os.cpu_count() or 1,
                lora_path=str(lora_path) if lora_path else None,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            what = f"{path}" + (f" with adapter {lora_path}" if lora_path else "")
            raise ModelError(f"{what}: llama.cpp could not load it ({exc})") from exc
        self.n_ctx = self.llm.n_ctx()
        self._lock = threading.Lock()
        self._template = self._load_template()

    def _load_template(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template") or CHATML
        bos, eos = self.llm.token_bos(), self.llm.token_eos()
        model = self.llm._model  # the vocabulary's own token texts, for the template
        return Jinja2ChatFormatter(
            template=template,
            bos_token=model.token_get_text(bos) if bos != -1 else "",
            eos_token=model.token_get_text(eos) if eos != -1 else "",
        )

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def render(self, messages: Sequence[Message]) -> str:
        """The prompt as the chat template writes it (for display and for the raw benchmark)."""
        return str(self._template(messages=list(messages)).prompt)

    def prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        """Tokenize the templated prompt, with message contents as plain text only.

        Each content is swapped for a sentinel, the template is rendered, and the template's
        own text is tokenized with special tokens allowed while the contents are not.
        """
        swapped = [{**m, "content": _SENTINEL.format(i)} for i, m in enumerate(messages)]
        rendered = self.render(swapped)
        pattern = re.compile(re.escape(_SENTINEL).replace(r"\{\}", r"(\d+)"))
        tokens: list[int] = []
        pos = 0
        first = True
        for m in pattern.finditer(rendered):
            tokens += self._tokenize(rendered[pos : m.start()], special=True, bos=first)
            tokens += self._tokenize(messages[int(m.group(1))]["content"], special=False)
            pos = m.end()
            first = False
        tokens += self._tokenize(rendered[pos:], special=True, bos=first)
        return tokens

    def _tokenize(self, text: str, *, special: bool, bos: bool = False) -> list[int]:
        if not text and not bos:
            return []
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=bos, special=special))

    def reset_cache(self) -> None:
        """Forget the cached prompt, so that the next question evaluates it whole."""
        self.llm.reset()

    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]:
        import llama_cpp

        tokens = self.prompt_tokens(messages)
        room = self.n_ctx - len(tokens)
        if room <= 0:
            raise ModelError(
                f"the prompt ({len(tokens)} tokens) does not fit the context of {self.n_ctx}; "
                "lower top_k or raise context_tokens in config.toml"
            )
        vocab = self.llm._model.vocab  # is_eog is not exposed on the high-level object
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with self._lock:
            # Greedy, so answers are reproducible; no repeat penalty, which would push the model
            # away from copying a date or a name exactly as the source has it.
            gen = self.llm.generate(tokens, temp=0.0, repeat_penalty=1.0)
            written: list[int] = []
            try:
                for token in gen:
                    if llama_cpp.llama_vocab_is_eog(vocab, token):
                        break
                    written.append(token)
                    yield decoder.decode(self.llm.detokenize([token]))
                    if len(written) >= min(max_tokens, room) or looping(written):
                        break
            finally:
                gen.close()
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail

    def close(self) -> None:
        """Free the model; the next `load_llama` of it loads it again."""
        with _LOADED_LOCK:
            for key in [k for k, v in _LOADED.items() if v is self]:
                del _LOADED[key]
        self.llm.close()


_LOADED: dict[tuple[str, int], LlamaGenerator] = {}
_LOADED_LOCK = threading.Lock()


def load_llama(
    path: Path,
    *,
    n_ctx: int,
    name: str,
    lora_path: Path | None = None,
    adapter: str | None = None,
    key: str | None = None,
) -> LlamaGenerator:
    """The model at `path` (with an optional runtime LoRA), loaded once per process.

    `key` names the content (the adapter registry gives hashes): an in-memory file's path is
    reused by the system once closed, so such a model must not be cached by its path.
    """
    cache_key = (key or f"{path}+{lora_path}", n_ctx)
    with _LOADED_LOCK:
        if cache_key not in _LOADED:
            log.info("loading %s (n_ctx=%d, lora=%s)", path, n_ctx, lora_path)
            _LOADED[cache_key] = LlamaGenerator(
                path, n_ctx=n_ctx, name=name, lora_path=lora_path, adapter=adapter
            )
        return _LOADED[cache_key]


def build_generator(
    settings: Any, lora_path: Path | None = None, adapter: str | None = None
) -> LlamaGenerator:
    """The active LLM of the settings, verified by SHA-256 before llama.cpp parses it."""
    from localrag import models

    path = models.model_path(settings, "llm")
    name = models.active_name(settings, "llm") or path.stem
    return load_llama(
        path, n_ctx=settings.context_tokens, name=name, lora_path=lora_path, adapter=adapter
    )


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

    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]:
        self.prompts.append([dict(m) for m in messages])
        words = self.answer_for(messages).split(" ")
        for i, word in enumerate(words[:max_tokens]):
            yield word if i == 0 else " " + word

    def close(self) -> None:
        pass
