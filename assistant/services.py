"""Writes for the room knowledge index: every chunk is embedded by the local embedder when stored."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from . import embeddings
from .models import KnowledgeChunk

MAX_CHUNK_CHARS = 8000


def _clean(*, room, source_kind: str, source_id, locator, text: str) -> dict:
    if source_kind not in KnowledgeChunk.SourceKind.values:
        raise ValueError(f"unknown source_kind {source_kind!r}; one of {KnowledgeChunk.SourceKind.values}")
    text = (text or "").strip()
    if not text:
        raise ValueError("a knowledge chunk needs text")
    if len(text) > MAX_CHUNK_CHARS:
        raise ValueError(f"a knowledge chunk holds at most {MAX_CHUNK_CHARS} characters: split the source first")
    if locator is None:
        locator = {}
    if not isinstance(locator, dict):
        raise ValueError("locator must be a JSON object")
    return {"room": room, "source_kind": source_kind, "source_id": str(source_id), "locator": locator, "text": text}


def knowledge_chunk_add(*, room, source_kind: str, source_id, locator: dict | None, text: str) -> KnowledgeChunk:
    """Embed and store one chunk of a room's knowledge."""
    return knowledge_chunks_add(
        [{"room": room, "source_kind": source_kind, "source_id": source_id, "locator": locator, "text": text}]
    )[0]


def knowledge_chunks_add(items: Iterable[dict]) -> list[KnowledgeChunk]:
    """Embed (in batches) and store many chunks in one transaction.

    Each item has the keyword arguments of `knowledge_chunk_add`: room, source_kind, source_id,
    locator, text. Returns the stored chunks in the same order.
    """
    cleaned = [_clean(**item) for item in items]
    if not cleaned:
        return []
    # Re-indexing the same source (a retried task, the periodic sweep) stores nothing twice.
    keys = [(c["source_kind"], c["source_id"], c["room"].pk) for c in cleaned]
    existing = set(
        KnowledgeChunk.objects.filter(source_id__in={k[1] for k in keys}).values_list("source_kind", "source_id", "room_id")
    )
    todo = [c for c, key in zip(cleaned, keys, strict=True) if key not in existing]
    if todo:
        _store(todo)
    stored = {
        (chunk.source_kind, chunk.source_id, chunk.room_id): chunk
        for chunk in KnowledgeChunk.objects.filter(source_id__in={k[1] for k in keys})
    }
    return [stored[key] for key in keys]


def _store(cleaned: list[dict]) -> None:
    embedder = embeddings.get_embedder()
    vectors = embedder.embed([c["text"] for c in cleaned])
    chunks = [
        KnowledgeChunk(**c, embedding=vector, model_id=embedder.model_id)
        for c, vector in zip(cleaned, vectors, strict=True)
    ]
    with transaction.atomic():
        KnowledgeChunk.objects.bulk_create(chunks, batch_size=500, ignore_conflicts=True)
