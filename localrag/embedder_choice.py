"""Which embedder embeds a query or a new document: the one that made the vault's vectors.

The settings name the embedder the user wants (`models use NAME --role embedder`); the vault
records the one that made its vectors (`Store.embedder_info`). They differ while a switch is
under way (`localrag.reembed`): until the new vectors are all made, search and add go on with
the old embedder, built from its name and checked against the fingerprint the vault recorded.
A query is never embedded by one embedder and compared with another's vectors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np

from localrag.chunk import text_under_heading
from localrag.embed import Embedder, identity
from localrag.errors import ModelError
from localrag.records import EmbedderInfo
from localrag.settings import Settings

log = logging.getLogger(__name__)


class RecordingStore(Protocol):
    """What choosing an embedder needs of the vault (`Store`)."""

    @property
    def vector_dim(self) -> int | None: ...

    def embedder_info(self) -> EmbedderInfo | None: ...

    def sample_vectors(self, n: int) -> list[tuple[str, str | None, np.ndarray]]: ...

    def record_embedder(self, info: EmbedderInfo) -> None: ...


ADOPT_SAMPLE = 4
"""Chunks re-embedded to tell whether an embedder made a vault's unrecorded vectors."""
SAME_VECTOR = 0.99
"""Cosine similarity above which two vectors of a text come from the same model (the same
int8 model gives 0.9999 and more, run in another batch; another model far less)."""


def _remakes(embedder: Embedder, sample: list[tuple[str, str | None, np.ndarray]]) -> bool:
    """Whether `embedder` makes these stored vectors of these (text, heading) chunks."""
    if not sample:
        return True
    made = embedder.embed_documents([text_under_heading(t, h) for t, h, _ in sample])
    stored = np.stack([v for _, _, v in sample])
    return bool(np.all(np.sum(made * stored, axis=1) >= SAME_VECTOR))


def _from_settings(settings: Settings, name: str) -> Embedder:
    from localrag import embed

    return embed.from_settings(settings, name=name)


class VaultEmbedders:
    """The wanted embedder, and the vault's own while they differ (built once, kept)."""

    def __init__(
        self,
        settings: Settings,
        store: RecordingStore,
        wanted: Callable[[], Embedder],
        build: Callable[[Settings, str], Embedder] = _from_settings,
    ) -> None:
        """`wanted()` gives the embedder the settings choose (or a test's fake); `build` makes
        another by name (the vault's, during a switch)."""
        self.settings = settings
        self.store = store
        self._wanted = wanted
        self._build = build
        self._others: dict[str, Embedder] = {}
        self._lock = threading.Lock()
        self._tried = False
        """Whether `adopt` has checked the wanted embedder against unrecorded vectors."""

    def wanted(self) -> Embedder:
        """The embedder a switch re-embeds the vault with."""
        return self._wanted()

    def remember(self, embedder: Embedder) -> None:
        """Keep an embedder handed in for a switch: once its vectors are swapped in, it serves."""
        with self._lock:
            self._others.setdefault(embedder.fingerprint, embedder)

    def for_vault(self) -> Embedder:
        """The embedder that made the vault's vectors (the wanted one in a vault with none)."""
        made_by = self.adopt()
        if made_by is None:
            if self.store.vector_dim is not None:
                raise ModelError(
                    "the vault's vectors were made by an embedder localrag did not record, and"
                    f" the active one ({self._wanted().name}) does not make them; re-embed them"
                    " with it by `localrag reembed`, or make the one that made them active"
                    " again (`localrag models use NAME --role embedder`)"
                )
            return self._wanted()
        try:
            wanted: Embedder | None = self._wanted()
        except ModelError:
            wanted = None  # the new one is broken: the vault's own still serves its vectors
        if wanted is not None and made_by.fingerprint == wanted.fingerprint:
            return wanted
        with self._lock:
            if made_by.fingerprint not in self._others:
                self._others[made_by.fingerprint] = self._vaults_own(made_by)
            return self._others[made_by.fingerprint]

    def adopt(self) -> EmbedderInfo | None:
        """The embedder the vault records. A vault written before localrag recorded it records
        the wanted one if that one makes the vectors it holds (checked on a few chunks: the
        settings may have changed since); else it stays unknown: vector search is refused (it
        would rank garbage) until a switch has re-embedded every chunk."""
        made_by = self.store.embedder_info()
        dim = self.store.vector_dim if made_by is None and not self._tried else None
        if dim is None:
            return made_by
        self._tried = True  # once per process: it embeds a few chunks
        wanted = self._wanted()
        if dim == wanted.dim and _remakes(wanted, self.store.sample_vectors(ADOPT_SAMPLE)):
            log.info("recording %s as the embedder of the vault's vectors", wanted.name)
            self.store.record_embedder(identity(wanted))
            return self.store.embedder_info()
        return None

    def _vaults_own(self, made_by: EmbedderInfo) -> Embedder:
        advice = (
            "finish the switch with `localrag reembed`, or add that model back with"
            " `localrag models add PATH --role embedder --no-use`"
        )
        from localrag import models

        # By its name, unless that name now means other files and the same files go by another.
        name = made_by.name
        if models.recorded_sha256(self.settings, name) != made_by.fingerprint:
            name = models.named_by_sha256(self.settings, "embedder", made_by.fingerprint) or name
        try:
            embedder = self._build(self.settings, name)
        except ModelError as exc:
            raise ModelError(
                f"the vault's vectors were made by the embedder {made_by.name}, which cannot be"
                f" loaded ({exc.message}); {advice}"
            ) from exc
        if embedder.fingerprint != made_by.fingerprint:
            raise ModelError(
                f"the vault's vectors were made by the embedder {made_by.name}"
                f" (SHA-256 {made_by.fingerprint[:12]}), and the model of that name now differs"
                f" ({embedder.fingerprint[:12]}); {advice}"
            )
        log.info("searching with %s, the embedder of the vault's vectors", made_by.name)
        return embedder

    def close(self) -> None:
        for embedder in self._others.values():
            close = getattr(embedder, "close", None)
            if close is not None:
                close()
