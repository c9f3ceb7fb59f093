"""Where localrag keeps things, and the settings read from `<home>/config.toml`.

The home folder is `--home`, else `LOCALRAG_HOME`, else the platform's user data folder. Model
files live in `LOCALRAG_MODELS` if set, else in the checkout's `models/` when localrag runs from a
source checkout (so every home folder of a developer or a test shares one copy), else in
`<home>/models`. The settings hold no secret.
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from localrag.errors import LocalragError
from localrag.excerpt import SOURCE_WORDS

CONFIG_NAME = "config.toml"
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
"""The home folder and every file in it are the user's alone: the vault, its WAL and shared
memory file (SQLite gives them the database file's mode), the key file, config.toml."""
ROLES = ("llm", "embedder", "whisper", "speaker")
MAX_NOTE_S = 3600.0
"""The longest voice note, in seconds."""
CHECKOUT = Path(__file__).resolve().parent.parent


def platform_data_dir() -> Path:
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "localrag"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "localrag"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "localrag"


def resolve_home(option: str | os.PathLike[str] | None = None) -> Path:
    """The home folder: the option, else `LOCALRAG_HOME`, else the platform's data folder."""
    if option:
        return Path(option).expanduser().resolve()
    if env := os.environ.get("LOCALRAG_HOME"):
        return Path(env).expanduser().resolve()
    return platform_data_dir()


def loose_permissions(home: Path) -> list[str]:
    """What in the home folder others may read or write: the folder if it is not 0700, each
    file in it that is not 0600 (as `path 0644`). Empty where the OS has no such modes."""
    if os.name != "posix" or not home.is_dir():
        return []
    loose = []
    for path, wanted in [(home, PRIVATE_FOLDER), *((p, PRIVATE_FILE) for p in _files(home))]:
        mode = path.stat().st_mode & 0o777
        if mode & ~wanted:
            loose.append(f"{path} {mode:04o}")
    return loose


def _files(home: Path) -> list[Path]:
    return sorted(p for p in home.iterdir() if p.is_file() and not p.is_symlink())


def make_private(home: Path) -> None:
    """Create the home folder if need be; make it 0700 and every file in it 0600."""
    home.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    if os.name != "posix":
        return
    for path, wanted in [(home, PRIVATE_FOLDER), *((p, PRIVATE_FILE) for p in _files(home))]:
        if path.stat().st_mode & 0o777 & ~wanted:
            path.chmod(wanted)


def default_models_dir(home: Path) -> Path:
    if env := os.environ.get("LOCALRAG_MODELS"):
        return Path(env).expanduser().resolve()
    if (CHECKOUT / "models" / "manifest.toml").is_file() and (
        CHECKOUT / "pyproject.toml"
    ).is_file():
        return CHECKOUT / "models"
    return home / "models"


TUNABLE = (
    "top_k",
    "source_words",
    "max_answer_tokens",
    "context_tokens",
    "grounded_answers",
    "abstain_margin",
    "stop_after_silence_s",
    "silence_threshold_dbfs",
    "voice_note_max_s",
    "speakers",
)
"""Settings that config.toml may set at its top level."""

VOICE_NOTE_RANGES = {
    "stop_after_silence_s": (0.0, MAX_NOTE_S, "seconds, 0 for never"),
    "silence_threshold_dbfs": (-100.0, 0.0, "dBFS, 0 for automatic"),
    "voice_note_max_s": (1.0, MAX_NOTE_S, "seconds"),
}
"""The voice-note settings' allowed ranges (inclusive) and units, checked on reading config.toml."""


@dataclass(frozen=True)
class RegisteredModel:
    """A model the user added with `localrag models add`."""

    name: str
    """The name it is chosen by."""
    role: str
    """llm, embedder or whisper."""
    path: Path
    """A GGUF file, or an ONNX or CTranslate2 folder."""
    sha256: str
    """Hash of the file, or of the folder's files in name order, recorded when it was added."""


@dataclass(frozen=True)
class Settings:
    """Everything localrag reads from the home folder's config.toml, with defaults."""

    home: Path
    """The home folder: vault, key file, config."""
    models_dir: Path
    """Where the default models are unpacked."""
    roles: dict[str, str] = field(default_factory=dict)
    """Which model name serves each role; a missing role uses the manifest's default."""
    registered: dict[str, RegisteredModel] = field(default_factory=dict)
    """Models the user added, by name."""
    top_k: int = 3
    """How many sources an answer is given (3 beat 6 on SQuAD with the 135M default: same hit@k,
    the gold answer in 28 % of answers instead of 6 %, half the latency)."""
    source_words: int = SOURCE_WORDS
    """Each source is shown cut to about this many words, whole sentences around those that
    share most words with the question (0: whole chunks). The answer adapter is trained on
    sources of this size, and a 135M model reads short sources better; see the README."""
    max_answer_tokens: int = 384
    """Where an answer stops."""
    context_tokens: int = 4096
    """The LLM's context window, in tokens."""
    grounded_answers: bool = False
    """An answer from sources copies its span from one of them (decode-time grounding, see
    `localrag.grounding`). Off by default: the base model, not trained to answer with a short
    span, then stops mid-sentence where it would leave the source's words."""
    abstain_margin: float = 0.0
    """With sources, the model's answer begins with the not-found sentence only if that beats
    its likeliest answer by more than this many logits (0: whichever it likes best)."""
    stop_after_silence_s: float = 3.0
    """A voice note stops after this many seconds of continuous silence once speech was heard
    (0: only at `voice_note_max_s` or when stopped)."""
    silence_threshold_dbfs: float = 0.0
    """Sound above this level is speech; 0 learns the level from the first half second of
    each note (the room's noise plus a margin)."""
    voice_note_max_s: float = 600.0
    """The longest a voice note records, in seconds (`record --seconds` overrides it)."""
    speakers: bool = True
    """Recordings are split into speaker turns (diarization); `speakers = false` in config.toml
    turns it off for every recording, `--no-speakers` for one."""
    models_dir_pinned: bool = False
    """Whether config.toml names `[models] dir`: `save` keeps it even where it equals the default,
    since a pinned folder wins over `LOCALRAG_MODELS` and the checkout."""

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_NAME

    @property
    def vault_path(self) -> Path:
        return self.home / "vault.db"

    @property
    def key_path(self) -> Path:
        return self.home / "vault.key"

    @classmethod
    def load(cls, home: str | os.PathLike[str] | None = None) -> Settings:
        root = resolve_home(home)
        data: dict[str, Any] = {}
        config = root / CONFIG_NAME
        if config.is_file():
            try:
                data = tomllib.loads(config.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise LocalragError(f"{config}: not valid TOML ({exc}); fix or delete it") from exc
        models = data.get("models", {})
        registered = {
            name: RegisteredModel(name, entry["role"], Path(entry["path"]), entry["sha256"])
            for name, entry in models.get("registered", {}).items()
        }
        extra = {k: data[k] for k in TUNABLE if k in data}
        for key, (low, high, unit) in VOICE_NOTE_RANGES.items():
            if key in extra:
                extra[key] = _in_range(config, key, extra[key], low, high, unit)
        models_dir = Path(models["dir"]) if "dir" in models else default_models_dir(root)
        return cls(
            home=root,
            models_dir=models_dir,
            roles=dict(models.get("roles", {})),
            registered=registered,
            models_dir_pinned="dir" in models,
            **extra,
        )

    def save(self) -> None:
        """Write config.toml, keeping only what differs from the defaults."""
        make_private(self.home)
        defaults = Settings(self.home, self.models_dir)
        data: dict[str, Any] = {
            k: getattr(self, k) for k in TUNABLE if getattr(self, k) != getattr(defaults, k)
        }
        models: dict[str, Any] = {}
        if self.models_dir_pinned or self.models_dir != default_models_dir(self.home):
            models["dir"] = str(self.models_dir)
        if self.roles:
            models["roles"] = dict(self.roles)
        if self.registered:
            models["registered"] = {
                m.name: {"role": m.role, "path": str(m.path), "sha256": m.sha256}
                for m in self.registered.values()
            }
        if models:
            data["models"] = models
        tmp = self.config_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(tomli_w.dumps(data))
        os.replace(tmp, self.config_path)
        make_private(self.home)  # a config.toml written by an older localrag keeps its mode

    def with_changes(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _in_range(config: Path, key: str, value: Any, low: float, high: float, unit: str) -> float:
    """`value` as a float if it is a number from `low` to `high`; else one line naming the fix."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high:
        return float(value)
    raise LocalragError(
        f"{config}: {key} = {value!r} is not a number from {low:g} to {high:g} ({unit}); "
        "fix or delete the line"
    )
