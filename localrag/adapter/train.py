"""Train a LoRA answer adapter on the CPU, on the base model read from its GGUF.

Needs the `train` extra (torch, transformers, peft); nothing else in localrag imports this
module, so the core never needs torch. transformers loads the GGUF itself (dequantizing it), so
no model hub is ever asked; the prompt of each example is the one `localrag ask` builds
(`examples.messages`), rendered with the GGUF's chat template and tokenized as the generator
does: the template's own text with its control tokens, every message content as plain text.
The loss is on the reply only (its tokens and the end-of-turn token).

`train()` is a generator of `TrainEvent`s (loading, validating, each step, saving), so the
caller draws the progress and can stop it: closing the generator (or Ctrl-C) leaves nothing
behind. The adapter is written as PEFT safetensors (float16) with `training.json`, its
provenance, beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import random
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from localrag import models
from localrag.adapter.examples import Example, messages
from localrag.errors import UsageError

log = logging.getLogger(__name__)

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Every linear projection of a Llama block."""
_SENTINEL = "\x00localrag-content-{}\x00"
TRAINING_JSON = "training.json"


@dataclass(frozen=True)
class TrainConfig:
    """How to train."""

    rank: int = 8
    alpha: int | None = None
    """LoRA alpha; None means twice the rank."""
    targets: tuple[str, ...] = TARGETS
    layers: int | None = None
    """Train only the last N blocks (None: all): the blocks below need no backward pass, which
    saves a third of the work for N = a third of the blocks."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (else `epochs` passes over the training part)."""
    epochs: float = 1.0
    batch_size: int = 8
    """Examples per optimizer step."""
    micro_batch: int = 4
    """Examples per forward pass; `batch_size` is reached by accumulating gradients."""
    learning_rate: float = 3e-4
    warmup_steps: int = 5
    max_tokens: int = 640
    """Longer examples (prompt and reply) are left out. 640 keeps a question with three
    70-word sources (448 left out a quarter of SQuAD's, those with two distractors)."""
    seed: int = 0
    max_minutes: float | None = None
    """Stop after this many minutes of training, at the end of a step. The learning rate is
    constant after the warm-up, so a run stopped after N steps equals a run of `max_steps` N."""
    validation_examples: int = 16
    """At most this many validation examples are scored (before and after training)."""
    threads: int | None = None
    """CPU threads for torch; None: all cores."""

    @property
    def lora_alpha(self) -> int:
        return self.alpha if self.alpha is not None else 2 * self.rank


@dataclass(frozen=True)
class TrainResult:
    """What a finished run made."""

    folder: Path
    """The PEFT adapter folder (adapter_config.json, adapter_model.safetensors, training.json)."""
    provenance: dict[str, Any]
    """The contents of training.json."""


@dataclass(frozen=True)
class TrainEvent:
    """Progress of `train()`."""

    phase: str
    """load, validate, train, save or done."""
    step: int = 0
    steps: int = 0
    loss: float | None = None
    """Mean loss per reply token over the last steps (train) or the validation part."""
    tokens_per_s: float = 0.0
    """Tokens (prompt and reply) through the model per second while training."""
    eta_s: float | None = None
    result: TrainResult | None = None
    """Set on the last event (done)."""


@dataclass
class _Encoded:
    input_ids: list[int]
    labels: list[int]
    kind: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class PromptTokenizer:
    """The base's tokenizer and chat template, read from the GGUF, tokenizing as `ask` does."""

    def __init__(self, base_path: Path) -> None:
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(str(base_path.parent), gguf_file=base_path.name)
        if not getattr(self.tok, "chat_template", None):
            from localrag.generate import CHATML

            self.tok.chat_template = CHATML
        self.end_of_turn = self._end_of_turn()

    def _render(self, msgs: Sequence[dict[str, str]], generation_prompt: bool) -> str:
        return str(
            self.tok.apply_chat_template(
                list(msgs), tokenize=False, add_generation_prompt=generation_prompt
            )
        )

    def _special(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False)) if text else []

    def plain(self, text: str) -> list[int]:
        """Tokens of a message's content: a control string in it stays text."""
        if not text:
            return []
        ids = self.tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        return list(ids)

    def _end_of_turn(self) -> int:
        """The token the template closes an assistant message with (`<|im_end|>`)."""
        marker = _SENTINEL.format(0)
        rendered = self._render([{"role": "assistant", "content": marker}], False)
        after = self._special(rendered.split(marker, 1)[1])
        if after:
            return after[0]
        if self.tok.eos_token_id is None:
            raise UsageError("the base model's tokenizer has no end-of-turn token")
        return int(self.tok.eos_token_id)

    def prompt(self, msgs: Sequence[dict[str, str]]) -> list[int]:
        """The templated prompt with the generation prompt, contents tokenized as plain text."""
        swapped = [{**m, "content": _SENTINEL.format(i)} for i, m in enumerate(msgs)]
        rendered = self._render(swapped, True)
        tokens: list[int] = []
        rest = rendered
        for i, m in enumerate(msgs):
            marker = _SENTINEL.format(i)
            head, _, rest = rest.partition(marker)
            tokens += self._special(head) + self.plain(m["content"])
        return tokens + self._special(rest)

    def encode(self, example: Example) -> _Encoded:
        prompt = self.prompt(messages(example))
        reply = [*self.plain(example.reply), self.end_of_turn]
        return _Encoded(prompt + reply, [-100] * len(prompt) + reply, example.kind)


def _batches(items: Sequence[_Encoded], micro: int, rng: random.Random) -> list[list[_Encoded]]:
    """Micro-batches of similar lengths (less padding), in a random order."""
    order = list(items)
    rng.shuffle(order)
    out = []
    span = micro * 16
    for start in range(0, len(order), span):
        block = sorted(order[start : start + span], key=lambda e: len(e.input_ids))
        out += [block[i : i + micro] for i in range(0, len(block), micro)]
    rng.shuffle(out)
    return out


def _tensors(batch: Sequence[_Encoded], pad: int) -> tuple[Any, Any, Any, int]:
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, e in enumerate(batch):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return ids, labels, mask, int(mask.sum())


def _loss_sum(model: Any, ids: Any, labels: Any, mask: Any) -> tuple[Any, int]:
    """Summed cross-entropy over the reply tokens, and how many there are.

    The output layer runs only where there is a reply token to predict: over a 49k-token
    vocabulary it is a fifth of the model's work per position, and the prompt needs none.
    """
    import torch

    base = model.get_base_model()
    hidden = base.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1, :]
    target = labels[:, 1:]
    wanted = target != -100
    logits = base.lm_head(hidden[wanted])
    loss = torch.nn.functional.cross_entropy(logits.float(), target[wanted], reduction="sum")
    return loss, int(wanted.sum())


def _validation_loss(model: Any, items: Sequence[_Encoded], micro: int, pad: int) -> float | None:
    import torch

    if not items:
        return None
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(items), micro):
            ids, labels, mask, _ = _tensors(items[start : start + micro], pad)
            loss, n = _loss_sum(model, ids, labels, mask)
            total, count = total + float(loss), count + n
    model.train()
    return round(total / max(count, 1), 4)


def _lr(step: int, config: TrainConfig) -> float:
    """A linear warm-up, then constant: where a run stops does not change its earlier steps."""
    peak = config.learning_rate
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    return peak


def _top_layers(model: Any, count: int | None) -> list[int] | None:
    if count is None:
        return None
    total = int(model.config.num_hidden_layers)
    return list(range(max(0, total - count), total))


def libraries() -> dict[str, str]:
    found = {}
    for dist in ("localrag", "torch", "transformers", "peft"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "unknown"
    return found


def prompt_fingerprint() -> str:
    """A hash of the prompt `ask` builds for a fixed example: it changes when the prompt's
    wording does, which an adapter trained on the old wording should know."""
    from localrag.adapter.examples import Passage

    probe = Example("What is it?", (Passage("It is a test."),), "a test [1]", "probe")
    return hashlib.sha256(json.dumps(messages(probe)).encode()).hexdigest()[:16]


def train(
    train_set: Sequence[Example],
    validation: Sequence[Example],
    base_path: Path,
    out: Path,
    config: TrainConfig,
    data_info: dict[str, Any] | None = None,
) -> Iterator[TrainEvent]:
    """Train, validate and save into `out` (created; must not hold an adapter already)."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    transformers.utils.logging.disable_progress_bar()  # the caller draws its own
    # Library chatter a user can do nothing about: PEFT reads a property transformers has
    # deprecated, and finds no config.json beside a GGUF (the vocabulary is the GGUF's own).
    warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
    warnings.filterwarnings("ignore", "Could not find a config file", UserWarning)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if (out / "adapter_model.safetensors").exists():
        raise UsageError(f"{out}: already holds an adapter; choose another folder")
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads or os.cpu_count() or 1)
    rng = random.Random(config.seed)

    yield TrainEvent("load")
    tokenizer = PromptTokenizer(base_path)
    encoded = [tokenizer.encode(e) for e in train_set]
    kept = [e for e in encoded if len(e.input_ids) <= config.max_tokens]
    held = [tokenizer.encode(e) for e in validation]
    held = [e for e in held if len(e.input_ids) <= config.max_tokens]
    held = held[: config.validation_examples]
    if not kept:
        raise UsageError(f"no training example fits in {config.max_tokens} tokens")
    pad = tokenizer.tok.pad_token_id if tokenizer.tok.pad_token_id is not None else 0
    per_epoch = math.ceil(len(kept) / config.batch_size)
    steps = config.max_steps or max(1, math.ceil(config.epochs * per_epoch))
    accumulate = max(1, config.batch_size // config.micro_batch)

    # transformers' GGUF loader draws a tqdm bar of its own, which `disable_progress_bar` does
    # not reach; the caller shows "loading" instead.
    with contextlib.redirect_stderr(io.StringIO()):
        base = AutoModelForCausalLM.from_pretrained(
            str(base_path.parent), gguf_file=base_path.name, dtype=torch.float32
        )
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=0.0,
        target_modules=list(config.targets),
        layers_to_transform=_top_layers(base, config.layers),
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, lora)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)

    yield TrainEvent("validate", 0, steps)
    before = _validation_loss(model, held, config.micro_batch, pad)
    yield TrainEvent("validate", 0, steps, loss=before)

    queue: list[list[_Encoded]] = []
    recent: list[float] = []
    losses: list[float] = []
    tokens = 0
    train_started = time.perf_counter()
    done = 0
    for step in range(steps):
        if config.max_minutes is not None and (
            time.perf_counter() - train_started > 60 * config.max_minutes
        ):
            break
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, config)
        pieces = []
        for _ in range(accumulate):
            if not queue:
                queue = _batches(kept, config.micro_batch, rng)
            pieces.append(queue.pop())
        total_targets = sum(sum(1 for x in e.labels if x != -100) for b in pieces for e in b)
        step_loss = 0.0
        for batch in pieces:
            ids, labels, mask, n_tokens = _tensors(batch, pad)
            loss, _ = _loss_sum(model, ids, labels, mask)
            (loss / max(total_targets, 1)).backward()
            step_loss += float(loss.detach())
            tokens += n_tokens
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        mean = step_loss / max(total_targets, 1)
        losses.append(mean)
        recent = ([*recent, mean])[-10:]
        elapsed = time.perf_counter() - train_started
        done = step + 1
        yield TrainEvent(
            "train",
            step + 1,
            steps,
            loss=sum(recent) / len(recent),
            tokens_per_s=tokens / elapsed if elapsed else 0.0,
            eta_s=elapsed / (step + 1) * (steps - step - 1),
        )
    train_s = time.perf_counter() - train_started
    planned, steps = steps, done

    yield TrainEvent("validate", steps, steps)
    after = _validation_loss(model, held, config.micro_batch, pad)
    yield TrainEvent("validate", steps, steps, loss=after)

    yield TrainEvent("save", steps, steps)
    if not losses:
        raise UsageError("stopped before the first step: nothing was trained")
    tail = losses[-max(1, len(losses) // 10) :]
    provenance = {
        "base": {"file": base_path.name, "sha256": models.sha256_file(base_path)},
        "data": data_info or {},
        "examples": {
            "train": len(kept),
            "validation": len(held),
            "too_long": len(encoded) - len(kept),
            "seen": steps * accumulate * config.micro_batch,
        },
        "steps": steps,
        "planned_steps": planned,
        "batch_size": accumulate * config.micro_batch,
        "rank": config.rank,
        "alpha": config.lora_alpha,
        "targets": list(config.targets),
        "layers": _top_layers(model, config.layers) or "all",
        "learning_rate": config.learning_rate,
        "max_tokens": config.max_tokens,
        "seed": config.seed,
        "threads": torch.get_num_threads(),
        "train_loss": round(sum(tail) / len(tail), 4),
        "validation_loss_before": before,
        "validation_loss": after,
        "train_seconds": round(train_s, 1),
        "tokens_per_s": round(tokens / train_s, 1) if train_s else 0.0,
        "prompt_fingerprint": prompt_fingerprint(),
        "libraries": libraries(),
        "config": {k: v for k, v in asdict(config).items() if k != "threads"},
    }
    save(model, out, base_path)
    provenance["seconds"] = round(time.perf_counter() - started, 1)
    (out / TRAINING_JSON).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    yield TrainEvent("done", steps, steps, loss=after, result=TrainResult(out, provenance))


def save(model: Any, out: Path, base_path: Path) -> None:
    """PEFT's folder, with the weights as float16 safetensors (half the size, and the merge
    works in float16 anyway) and no local path in the config."""
    import shutil
    import tempfile

    import torch
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".peft-") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        weights = Path(tmp) / "adapter_model.safetensors"
        tensors = {k: v.to(torch.float16).contiguous() for k, v in load_file(str(weights)).items()}
        save_file(tensors, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
        config = json.loads((Path(tmp) / "adapter_config.json").read_text(encoding="utf-8"))
        shutil.rmtree(tmp, ignore_errors=True)
    config["base_model_name_or_path"] = base_path.name
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    (out / "adapter_config.json").write_text(text, encoding="utf-8")
