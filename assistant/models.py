"""What the meeting assistant knows about each room: embedded chunks of transcripts, chat, documents
and tickets, searchable by meaning and always scoped to the rooms the asker may read."""

from __future__ import annotations

from django.db import models
from pgvector.django import HnswIndex, VectorField

EMBEDDING_DIMENSIONS = 384


class KnowledgeChunk(models.Model):
    class SourceKind(models.TextChoices):
        TRANSCRIPT = "transcript", "Meeting transcript"
        CHAT = "chat", "Chat"
        DOCUMENT = "document", "Document"
        TICKET = "ticket", "Ticket"

    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="knowledge_chunks")
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices)
    source_id = models.CharField(max_length=128)
    locator = models.JSONField(
        default=dict, blank=True,
        help_text='where in the source: {"meeting": id, "seq": n}, {"thread": id, "seq": n}, {"document": id, "page": n}',
    )
    text = models.TextField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    model_id = models.CharField(max_length=80, help_text="the embedder that made `embedding`")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            HnswIndex(
                name="knowledge_chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            models.Index(fields=["room"], name="knowledge_chunk_room_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source_kind}:{self.source_id} in room {self.room_id}"
