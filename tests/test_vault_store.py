"""The store's API: what the other stages rely on (no models needed; random vectors)."""

from __future__ import annotations

import numpy as np
import pytest

from localrag.errors import UsageError, VaultError
from localrag.records import NewChunk, NewDocument, Segment, Span
from localrag.settings import Settings
from localrag.store import Store, create_vault, open_vault, schema
from localrag.store.sample import sample_document, unit_vectors

PASS = bytearray(b"correct horse battery staple")


@pytest.fixture
def store(settings: Settings):
    with create_vault(settings, bytearray(PASS)) as s:
        yield s


def test_add_list_fetch_and_search(store: Store) -> None:
    rng = np.random.default_rng(1)
    doc, chunks, vectors = sample_document(rng, "alpha", 3, marker="zebrafish")
    doc_id = store.add_document(doc, chunks, vectors)
    other = store.add_document(*sample_document(rng, "beta", 2))

    docs = store.documents()
    assert [d.path for d in docs] == ["/docs/alpha.txt", "/docs/beta.txt"]
    assert docs[0].chunk_count == 3 and docs[0].id == doc_id
    assert store.document("/docs/beta.txt").id == other
    assert store.document(str(doc_id)).path == "/docs/alpha.txt"
    assert [d.id for d in store.documents_by_hash(doc.sha256)] == [doc_id]

    nearest = store.knn(vectors[1], 2)
    assert nearest[0][1] == pytest.approx(1.0, abs=1e-5)
    [hit] = store.chunks([nearest[0][0]])
    assert hit.text == chunks[1].text and hit.span == chunks[1].span and hit.path == doc.path

    found = store.keyword(["zebrafish"], 10)
    assert {c.doc_id for c in store.chunks([i for i, _ in found])} == {doc_id}
    assert all(score > 0 for _, score in found)

    ids = [c.id for c in store.document_chunks(doc_id)]
    assert [c.id for c in store.chunks(ids[::-1])] == ids[::-1]
    assert [c.ordinal for c in store.neighbours(ids[1], 1, 1)] == [0, 1, 2]
    assert [c.ordinal for c in store.neighbours(ids[0], 1, 5)] == [0, 1, 2]


def test_replace_by_path_is_one_document(store: Store) -> None:
    rng = np.random.default_rng(2)
    doc, chunks, vectors = sample_document(rng, "alpha", 3, marker="oldword")
    store.add_document(doc, chunks, vectors)
    doc2, chunks2, vectors2 = sample_document(rng, "alpha", 1, marker="newword")
    new_id = store.add_document(doc2, chunks2, vectors2)
    assert [(d.id, d.chunk_count) for d in store.documents()] == [(new_id, 1)]
    assert store.keyword(["oldword"], 5) == []
    assert len(store.keyword(["newword"], 5)) == 1
    assert store.integrity_problems() == []


def test_delete_and_move(store: Store) -> None:
    rng = np.random.default_rng(3)
    doc_id = store.add_document(
        *sample_document(rng, "gone", 2, marker="vanish"), transcript=[Segment(0.0, 1.5, "hi")]
    )
    keep = store.add_document(*sample_document(rng, "kept", 2))
    assert store.transcript(doc_id) == [Segment(0.0, 1.5, "hi")]
    store.delete_document(doc_id)
    assert [d.id for d in store.documents()] == [keep]
    assert store.keyword(["vanish"], 5) == [] and store.transcript(doc_id) == []
    assert all(
        store.chunks([cid])[0].doc_id == keep for cid, _ in store.knn(unit_vectors(rng, 1)[0], 10)
    )
    store.move_document(keep, "/elsewhere/kept.txt")
    assert store.document("/elsewhere/kept.txt").id == keep
    store.add_document(*sample_document(rng, "other", 1))
    with pytest.raises(VaultError, match="another document"):
        store.move_document(keep, "/docs/other.txt")
    with pytest.raises(VaultError, match="384-dimensional"):
        store.add_document(*sample_document(rng, "x", 1, dim=128))
    assert store.integrity_problems() == []


def test_identical_text_reuses_vectors(store: Store) -> None:
    rng = np.random.default_rng(4)
    doc, chunks, vectors = sample_document(rng, "a", 2)
    store.add_document(doc, chunks, vectors)
    from localrag.store.store import text_sha256

    key = (text_sha256(chunks[1].text), chunks[1].span.heading)
    found = store.vectors_by_text_and_heading([key, ("nope", None), (key[0], "Other heading")])
    assert list(found) == [key]
    assert np.array_equal(found[key], vectors[1])


def test_conversations_meta_and_blobs(store: Store) -> None:
    conv = store.new_conversation("budget")
    store.add_turn(conv, "user", "what is the budget?")
    store.add_turn(conv, "assistant", "It is 5 [1].", [{"n": 1, "chunk_id": 7}])
    [c] = store.conversations()
    assert (c.title, c.turn_count) == ("budget", 2)
    turns = store.turns(conv)
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[1].citations == [{"n": 1, "chunk_id": 7}]
    with pytest.raises(UsageError):
        store.add_turn(999, "user", "x")

    store.set_meta("active_adapter", "v2")
    assert store.get_meta("active_adapter") == "v2" and store.get_meta("missing") is None

    data = bytes(range(256)) * 9000  # 2.3 MB: three parts
    info = store.put_blob_stream(
        "model-v1", (data[i : i + 70000] for i in range(0, len(data), 70000)), {"q": "Q4"}
    )
    assert info.size_bytes == len(data)
    assert all(len(part) <= 1 << 20 for part in store.iter_blob("model-v1"))
    assert store.get_blob("model-v1") == data
    assert [(b.name, b.meta) for b in store.blobs()] == [("model-v1", {"q": "Q4"})]
    assert store.delete_blob("model-v1") and store.blobs() == []


def test_keyword_words_are_searched_not_parsed(store: Store) -> None:
    rng = np.random.default_rng(4)
    doc_id = store.add_document(*sample_document(rng, "quoted", 2, marker='say "near" it'))
    for words in (['"unbalanced'], ["NEAR(", "OR", "*"], ['"near"'], ["^col:x"]):
        found = store.keyword(words, 5)
        assert all(store.chunks([i])[0].doc_id == doc_id for i, _ in found)
    assert store.keyword(['"near"'], 5) and store.keyword([], 5) == []


def test_common_words_scored_apart_keep_fts5_scores(store: Store) -> None:
    """Past the row budget the commonest words are scored in Python, on the best rows of the
    rarer words: each of those rows keeps the score FTS5 gives it for all the words."""
    rng = np.random.default_rng(6)
    chunks = []
    for i in range(60):
        words = list(rng.choice(["river", "signal", "window", "budget", "policy"], 20 + i % 9))
        words += ["okapi"] * (i % 8 == 0) + ["ledger"] * (i % 4 == 0) * (1 + i % 3)
        words += ["harbors"] * (i % 3 == 0) * (1 + i % 2)
        chunks.append(NewChunk(" ".join(rng.permutation(words)), Span(line_start=i + 1), 30))
    doc_id = store.add_document(NewDocument("/d.txt", "h", "txt", 1), chunks, unit_vectors(rng, 60))
    words = ["okapi", "ledger", "harbor", "unseen"]
    exact = dict(store.keyword(words, 60, row_budget=10**9))
    split = store.keyword(words, 60, row_budget=10)  # okapi ranked (8 rows); ledger, harbor added
    okapi = {c.id for c in store.document_chunks(doc_id) if "okapi" in c.text}
    assert {i for i, _ in split} == okapi and len(okapi) == 8
    assert [s for _, s in split] == pytest.approx([exact[i] for i, _ in split], rel=1e-9)
    assert [s for _, s in split] == sorted((s for _, s in split), reverse=True)
    assert len({round(s, 9) for _, s in split}) > 4  # the common words changed the scores


def test_data_survives_reopen(settings: Settings, store: Store) -> None:
    chunk = NewChunk("persisted text", Span(page=3, start_s=1.5, end_s=2.0, heading="A > B"), 2)
    store.add_document(
        NewDocument("/p.pdf", "h", "pdf", 1, meta={"pages": 3}),
        [chunk],
        unit_vectors(np.random.default_rng(5), 1),
    )
    store.close()
    with open_vault(settings, bytearray(PASS)) as again:
        [doc] = again.documents()
        assert doc.meta == {"pages": 3} and doc.kind == "pdf"
        [c] = again.document_chunks(doc.id)
        assert c.span == chunk.span and c.kind == "pdf"
        assert again.vector_dim == 384


def test_threads_share_one_store(store: Store) -> None:
    """The TUI calls the store from worker threads: their transactions must not interleave."""
    import threading

    def add(prefix: str) -> None:
        rng = np.random.default_rng(len(prefix))
        for i in range(15):
            store.add_document(*sample_document(rng, f"{prefix}{i}", 3))
            store.keyword([prefix], 3)

    threads = [threading.Thread(target=add, args=(name,)) for name in ("left", "right", "up")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.documents()) == 45 and store.integrity_problems() == []


def test_knn_finds_what_exact_search_finds(store: Store) -> None:
    """Sign-bit candidates rescored with the float vectors: recall@10 against exact search."""
    from localrag.store.sample import embedding_like_vectors

    rng = np.random.default_rng(8)
    vectors, queries = np.split(embedding_like_vectors(rng, 5030), [5000])
    ids = []
    for start in range(0, 5000, 500):
        doc, chunks, _ = sample_document(rng, f"part{start}", 500)
        doc_id = store.add_document(doc, chunks, vectors[start : start + 500])
        ids += [c.id for c in store.document_chunks(doc_id)]
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recall = np.mean(
        [
            len({ids[j] for j in row} & {cid for cid, _ in store.knn(q, 10)}) / 10
            for q, row in zip(queries, exact, strict=True)
        ]
    )
    assert recall >= 0.95


def test_search_sees_every_change_even_from_another_process(settings: Settings) -> None:
    rng = np.random.default_rng(9)
    searcher = create_vault(settings, bytearray(PASS))
    doc, chunks, vectors = sample_document(rng, "a", 3)
    doc_id = searcher.add_document(doc, chunks, vectors)
    assert searcher.knn(vectors[0], 1)[0][1] == pytest.approx(1.0, abs=1e-5)  # index loaded
    replaced = searcher.add_document(*sample_document(rng, "a", 2))
    assert searcher.chunks([searcher.knn(vectors[0], 1)[0][0]])[0].doc_id == replaced
    with open_vault(settings, bytearray(PASS)) as writer:  # another connection, as a CLI would
        doc, chunks, vectors = sample_document(rng, "b", 2)
        other = writer.add_document(doc, chunks, vectors)
    nearest = searcher.knn(vectors[1], 1)
    assert searcher.chunks([nearest[0][0]])[0].doc_id == other
    searcher.delete_document(other)
    assert all(searcher.chunks([i])[0].doc_id == replaced for i, _ in searcher.knn(vectors[1], 5))
    assert doc_id not in {
        c.doc_id for c in searcher.chunks([i for i, _ in searcher.knn(vectors[0], 5)])
    }
    searcher.close()


def test_a_vault_of_sign_bits_is_searched_by_int8_codes_after_the_upgrade(
    settings: Settings,
) -> None:
    """Schema 2 replaces the sign bits of schema 1 (`vec_chunks`) by int8 codes made from the
    float vectors the vault holds; the search then finds what exact search finds."""
    rng = np.random.default_rng(12)
    with create_vault(settings, bytearray(PASS)) as store:
        doc, chunks, vectors = sample_document(rng, "old", 30)
        store.add_document(doc, chunks, vectors)
        ids = [c.id for c in store.chunks(range(1, 31))]
        conn = store.conn  # back to schema 1, as a vault made before the upgrade
        conn.execute("DROP TABLE vec_codes")
        conn.execute("CREATE VIRTUAL TABLE vec_chunks USING vec0(embedding bit[384])")
        bits = np.packbits(vectors > 0, axis=-1, bitorder="little")
        for chunk_id, row in zip(ids, bits, strict=True):
            conn.execute(
                "INSERT INTO vec_chunks (rowid, embedding) VALUES (?, vec_bit(?))",
                (chunk_id, row.tobytes()),
            )
        conn.execute("DELETE FROM meta WHERE key = 'vector_code_scale'")
        conn.execute("DELETE FROM schema_migrations WHERE version > 1")
    with open_vault(settings, bytearray(PASS)) as store:
        assert store.schema_version() == schema.LATEST
        tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_schema")}
        assert "vec_codes" in tables and "vec_chunks" not in tables
        assert store.integrity_problems() == []
        query = vectors[7] + 0.3 * unit_vectors(rng, 1)[0]
        exact = np.argsort(-(vectors @ query))[:5]
        assert [i for i, _ in store.knn(query, 5)] == [ids[j] for j in exact]
