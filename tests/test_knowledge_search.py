"""Room knowledge search: the real local embedder, pgvector, and the access rule in the query."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from assistant import embeddings, selectors
from assistant.models import KnowledgeChunk
from assistant.services import knowledge_chunk_add, knowledge_chunks_add

VAULT_SECRET = "The acquisition of Northwind Traders closes on March 3rd for forty million dollars."


@pytest.fixture(scope="module")
def embedder():
    return embeddings.get_embedder()


@pytest.fixture
def knowledge(office, embedder):
    open_space, atlas, vault = office["open"], office["atlas"], office["vault"]
    items = [
        (open_space, "chat", "t1-1", {"thread": 1, "seq": 1}, "The coffee machine on the second floor is broken again."),
        (open_space, "chat", "t1-2", {"thread": 1, "seq": 2}, "Lunch today is pizza in the kitchen at noon."),
        (open_space, "document", "d1", {"document": 1, "page": 2}, "Office wifi password rotates every Monday morning."),
        (atlas, "transcript", "m1-1", {"meeting": 1, "seq": 1}, "We agreed to ship the mobile app release on Friday after QA signs off."),
        (atlas, "transcript", "m1-2", {"meeting": 1, "seq": 2}, "The database migration needs a maintenance window on Sunday night."),
        (atlas, "ticket", "OPS-12", {"ticket": "OPS-12"}, "Login page times out for users behind the corporate proxy."),
        (vault, "document", "d9", {"document": 9, "page": 1}, VAULT_SECRET),
        (vault, "transcript", "m7", {"meeting": 7, "seq": 4}, "Layoffs in the sales team will be announced next quarter."),
    ]
    chunks = knowledge_chunks_add(
        [{"room": r, "source_kind": s, "source_id": i, "locator": loc, "text": t} for r, s, i, loc, t in items]
    )
    return {c.text: c for c in chunks}


def test_embedder_output_is_normalised_and_semantic(embedder):
    vectors = embedder.embed([
        "The cat sits on the mat.",
        "A kitten is resting on a rug.",
        "Quarterly revenue grew by ten percent.",
    ])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > unrelated + 0.3
    assert embedder.embed([]).shape == (0, 384)
    assert embedder.model_id


def test_single_add_stores_vector_and_model(office):
    chunk = knowledge_chunk_add(room=office["atlas"], source_kind="chat", source_id=5,
                                locator={"thread": 5, "seq": 9}, text="  Standup moves to 9:30.  ")
    stored = KnowledgeChunk.objects.get(pk=chunk.pk)
    assert stored.text == "Standup moves to 9:30." and stored.source_id == "5"
    assert stored.model_id == embeddings.get_embedder().model_id
    assert len(stored.embedding) == 384
    with pytest.raises(ValueError):
        knowledge_chunk_add(room=office["atlas"], source_kind="email", source_id=1, locator={}, text="x")
    with pytest.raises(ValueError):
        knowledge_chunk_add(room=office["atlas"], source_kind="chat", source_id=1, locator={}, text="   ")


@pytest.mark.parametrize(("query", "expected"), [
    ("When will we release the mobile app?", "We agreed to ship the mobile app release on Friday after QA signs off."),
    ("Is the espresso maker working?", "The coffee machine on the second floor is broken again."),
    ("users cannot sign in through the proxy", "Login page times out for users behind the corporate proxy."),
])
def test_query_finds_relevant_chunk_first(people, knowledge, query, expected):
    results = selectors.room_knowledge_search(user=people["bob"], query=query, k=5)
    assert results[0][0].text == expected
    distances = [d for _, d in results]
    assert distances == sorted(distances)


def test_private_room_chunks_never_reach_non_members(people, office, knowledge):
    vault_id = office["vault"].id
    for k in (1, 10, 200):
        results = selectors.room_knowledge_search(user=people["bob"], query=VAULT_SECRET, k=k)
        assert all(chunk.room_id != vault_id for chunk, _ in results)
        assert len(results) == min(k, 6)  # every visible chunk, and only those
    # Asking for the Vault explicitly gives nothing, not an error that would confirm it exists.
    assert selectors.room_knowledge_search(user=people["bob"], query=VAULT_SECRET, room_ids=[vault_id]) == []


def test_member_finds_private_room_chunks(people, office, knowledge):
    results = selectors.room_knowledge_search(user=people["alice"], query="Northwind acquisition price", k=3)
    top, distance = results[0]
    assert top.text == VAULT_SECRET and top.room_id == office["vault"].id
    assert top.locator == {"document": 9, "page": 1}
    assert distance < 0.5
    exact = selectors.room_knowledge_search(user=people["alice"], query=VAULT_SECRET, k=1)
    assert exact[0][0].text == VAULT_SECRET and exact[0][1] < 1e-3


def test_room_ids_narrow_the_scope(people, office, knowledge):
    results = selectors.room_knowledge_search(
        user=people["alice"], query="coffee machine broken", k=10, room_ids=[office["atlas"].id]
    )
    assert len(results) == 3 and {c.room_id for c, _ in results} == {office["atlas"].id}


def test_large_scope_uses_filtered_hnsw_with_iterative_scan(people, office, knowledge, monkeypatch):
    """Force the HNSW path on the tiny data set: the filter still holds and k rows come back."""
    monkeypatch.setattr(selectors, "EXACT_SCAN_MAX_CHUNKS", 0)
    results = selectors.room_knowledge_search(user=people["bob"], query=VAULT_SECRET, k=50)
    assert len(results) == 6 and all(c.room_id != office["vault"].id for c, _ in results)
    results = selectors.room_knowledge_search(
        user=people["alice"], query="ship the mobile app", k=2, room_ids=[office["atlas"].id]
    )
    assert results[0][0].text.startswith("We agreed to ship the mobile app")


def test_search_settings_are_local_to_the_search(people, knowledge, monkeypatch):
    monkeypatch.setattr(selectors, "EXACT_SCAN_MAX_CHUNKS", 0)
    selectors.room_knowledge_search(user=people["bob"], query="pizza", k=3)
    with connection.cursor() as cursor:
        cursor.execute("SHOW hnsw.iterative_scan")
        assert cursor.fetchone()[0] == "off"
        cursor.execute("SHOW enable_indexscan")
        assert cursor.fetchone()[0] == "on"
