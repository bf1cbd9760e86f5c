"""What the meeting assistant knows about each room: embedded chunks of transcripts, chat, documents
and tickets, searchable by meaning and always scoped to the rooms the asker may read."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.serializers.json import DjangoJSONEncoder
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
    # Words, for the full-text half of hybrid retrieval (names, numbers and rare terms that a sentence
    # embedding blurs); kept by PostgreSQL itself.
    search = models.GeneratedField(expression=SearchVector("text", config="english"), output_field=SearchVectorField(),
                                   db_persist=True)
    model_id = models.CharField(max_length=80, help_text="the embedder that made `embedding`")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source_kind", "source_id", "room"], name="knowledge_chunk_source_unique"),
        ]
        indexes = [
            HnswIndex(
                name="knowledge_chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            models.Index(fields=["room"], name="knowledge_chunk_room_idx"),
            GinIndex(fields=["search"], name="knowledge_chunk_search_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.source_kind}:{self.source_id} in room {self.room_id}"


class ModelCall(models.Model):
    """Every call to a language model: what was asked of which model, how it went, what it cost."""

    class Status(models.TextChoices):
        OK = "ok", "ok"
        REPAIRED = "repaired", "valid after one repair"
        INVALID = "invalid", "invalid output"
        ERROR = "error", "error"
        UNAVAILABLE = "unavailable", "endpoint unavailable"
        CACHED = "cached", "served from cache"

    purpose = models.CharField(max_length=40)
    tier = models.CharField(max_length=16)
    model_id = models.CharField(max_length=120)
    endpoint = models.CharField(max_length=200)
    prompt_name = models.CharField(max_length=60)
    prompt_version = models.CharField(max_length=20)
    input_ids = models.JSONField(default=dict, blank=True, help_text='what went in: {"segments": [..], "chunks": [..]}')
    room = models.ForeignKey("rooms.Room", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices)
    error = models.TextField(blank=True, default="")
    latency_ms = models.IntegerField(default=0)
    prompt_tokens = models.IntegerField(default=0)
    completion_tokens = models.IntegerField(default=0)
    confidence = models.FloatField(null=True, blank=True)
    redacted = models.BooleanField(default=False, help_text="personal data was masked before the call")
    escalated_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["purpose", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.purpose} via {self.model_id} ({self.status})"


class MeetingSummary(models.Model):
    """A rolling summary of a meeting's latest window, or the final one folded at its end."""

    class Kind(models.TextChoices):
        ROLLING = "rolling", "Rolling"
        FINAL = "final", "Final"

    meeting = models.ForeignKey("transcription.Meeting", on_delete=models.CASCADE, related_name="summaries")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    summary = models.TextField()
    decisions = models.JSONField(default=list, blank=True)
    open_questions = models.JSONField(default=list, blank=True)
    topics = models.JSONField(default=list, blank=True)
    through_seq = models.BigIntegerField(help_text="the last transcript segment this summary covers")
    segment_ids = models.JSONField(default=list, blank=True)
    model_call = models.ForeignKey(ModelCall, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source = models.CharField(max_length=16, default="model", help_text="model, or fallback when none answered")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["meeting_id", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["meeting"], condition=models.Q(kind="final"), name="one_final_summary_per_meeting")
        ]

    def __str__(self) -> str:
        return f"{self.kind} summary of meeting {self.meeting_id} through #{self.through_seq}"


class ActionItem(models.Model):
    """Something someone agreed to do, proposed by the assistant and decided by a participant.

    Provenance says where it came from (segments, speaker, model, prompt); nothing happens with a
    proposal until a person approves it, so text in the room cannot cause side effects on its own.
    """

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="action_items")
    meeting = models.ForeignKey("transcription.Meeting", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="action_items")
    text = models.TextField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="action_items_owned")
    suggested_owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="action_items_suggested")
    owner_reason = models.TextField(blank=True, default="")
    due_date = models.DateField(null=True, blank=True)
    due_text = models.CharField(max_length=80, blank=True, default="", help_text="the words that gave the due date")
    confidence = models.FloatField(default=0.0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROPOSED)
    source_segment_ids = models.JSONField(default=list, blank=True)
    speaker = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    model_id = models.CharField(max_length=120, blank=True, default="")
    prompt_version = models.CharField(max_length=40, blank=True, default="")
    model_call = models.ForeignKey(ModelCall, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    dedupe_key = models.CharField(max_length=200)
    ranker_version = models.CharField(max_length=80, blank=True, default="",
                                      help_text="the turn ranker that chose its evidence (assistant/rankers/)")
    shadow = models.BooleanField(default=False, help_text="proposed by a shadow ranker: stored to compare, never shown")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["room_id", "created_at", "id"]
        constraints = [
            # A shadow ranker's proposal of the same task must not block the shown one (nor the reverse).
            models.UniqueConstraint(fields=["room", "meeting", "dedupe_key", "shadow"], name="action_item_dedupe"),
        ]

    def __str__(self) -> str:
        return f"{self.text[:50]} ({self.status})"


class ActionItemDecision(models.Model):
    """Audit log of every decision on an action item: who, what, before and after."""

    class Action(models.TextChoices):
        APPROVE = "approve", "Approve"
        EDIT = "edit", "Edit"
        REJECT = "reject", "Reject"

    item = models.ForeignKey(ActionItem, on_delete=models.CASCADE, related_name="decisions")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=8, choices=Action.choices)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    note = models.TextField(blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["item_id", "at", "id"]

    def __str__(self) -> str:
        return f"{self.action} of item {self.item_id} by {self.actor_id}"


class Document(models.Model):
    """A file uploaded to a room's knowledge; its pages are indexed in the background."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be indexed"
        INDEXED = "indexed", "Indexed"
        FAILED = "failed", "Failed"

    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=200)
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size_bytes = models.IntegerField()
    sha256 = models.CharField(max_length=64)
    content = models.BinaryField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    class Stage(models.TextChoices):
        """Where indexing is, for the uploader's progress line (`status` is the outcome)."""

        STORED = "stored", "Stored"
        EXTRACTING = "extracting", "Reading the text"
        OCR = "ocr", "Reading scanned pages"
        INDEXING = "indexing", "Indexing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.STORED)
    pages_done = models.PositiveIntegerField(default=0, help_text="pages read so far")
    pages_total = models.PositiveIntegerField(default=0, help_text="pages in the file (once opened)")
    error = models.TextField(blank=True, default="")
    page_count = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["room", "sha256"], name="document_unique_per_room")]

    def __str__(self) -> str:
        return self.title


class DocumentPage(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="pages")
    number = models.IntegerField()
    text = models.TextField()
    ocr = models.BooleanField(default=False)

    class Meta:
        ordering = ["document_id", "number"]
        constraints = [models.UniqueConstraint(fields=["document", "number"], name="document_page_unique")]

    def __str__(self) -> str:
        return f"page {self.number} of document {self.document_id}"


class AssistantVersion(models.Model):
    """A trained ranker in the registry: its card (figures, training data hash) and its stage.

    candidate → shadow (runs beside the current one, its proposals stored and never shown) → current
    (what the product uses) → retired. At most one current per kind, held by the database.
    """

    class Kind(models.TextChoices):
        ACTION_ITEMS = "action_items", "Action items"
        DECISIONS = "decisions", "Decisions"

    class Stage(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        SHADOW = "shadow", "Shadow"
        CURRENT = "current", "Current"
        RETIRED = "retired", "Retired"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    version = models.CharField(max_length=40)
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.CANDIDATE)
    card = models.JSONField(default=dict, blank=True, help_text="the ranker's card: figures, training data hash")
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    promoted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    retired_at = models.DateTimeField(null=True, blank=True, help_text="when it stopped being current (rollback order)")

    class Meta:
        ordering = ["kind", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "version"], name="assistant_version_unique"),
            models.UniqueConstraint(fields=["kind"], condition=models.Q(stage="current"),
                                    name="assistant_version_one_current_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.version} ({self.stage})"


class AssistantJob(models.Model):
    """A question or a catch-up asked for over plain HTTP: the request answers 202 at once and the
    assistant worker runs the model (docs/adr/0015). The row is the record: its owner polls it."""

    class Kind(models.TextChoices):
        ASK = "ask", "Ask"
        CATCH_UP = "catch_up", "Catch up"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    input = models.JSONField(default=dict, help_text='ask: {"question", "room"}; catch_up: {"room"}')
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder,
                              help_text="the body the endpoint used to answer: an Answer or a CatchUp")
    error = models.TextField(blank=True, default="")
    sends = models.PositiveSmallIntegerField(default=1, help_text="times queued: once, and once more by the sweep")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="assistant_job_status_idx")]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class TopicClustering(models.Model):
    """One full clustering of a scope's meeting units: when, over what, with which parameters (the
    provenance of every topic it made or kept), so the hourly job knows when the next one is due."""

    scope = models.CharField(max_length=40, help_text='"shared" (open and meeting rooms) or "room:<id>" (a private room)')
    units = models.IntegerField(default=0)
    meetings = models.IntegerField(default=0)
    topics = models.IntegerField(default=0)
    params = models.JSONField(default=dict, blank=True, help_text="threshold, unit size, embedder model id")
    ran_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["scope", "-ran_at"], name="topic_clustering_scope_idx")]

    def __str__(self) -> str:
        return f"clustering of {self.scope} at {self.ran_at:%Y-%m-%d %H:%M}"


class Topic(models.Model):
    """What several meetings talked about: a cluster of their discussion units, named by its most
    distinctive words. Clustered per visibility scope (docs/adr/0019): a topic's words come only from
    rooms that everyone who may see it can read, and `room_ids` lists them so the rule holds in SQL."""

    scope = models.CharField(max_length=40)
    label = models.CharField(max_length=200)
    top_terms = models.JSONField(default=list, blank=True)
    centroid = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    size = models.IntegerField(default=0, help_text="discussion units in the cluster")
    room_ids = ArrayField(models.IntegerField(), default=list, blank=True,
                          help_text="the rooms its meetings are in: shown only to who may read all of them")
    clustering = models.ForeignKey(TopicClustering, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-size", "id"]
        indexes = [models.Index(fields=["scope"], name="topic_scope_idx")]

    def __str__(self) -> str:
        return self.label


class MeetingTopic(models.Model):
    """A meeting's share of a topic: the fraction of its discussion units that fell in it."""

    meeting = models.ForeignKey("transcription.Meeting", on_delete=models.CASCADE, related_name="topic_links")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="meeting_links")
    weight = models.FloatField()
    units = models.IntegerField(default=0)
    assigned = models.CharField(max_length=12, default="clustered", help_text="clustered, or nearest (added hourly)")

    class Meta:
        ordering = ["topic_id", "-weight"]
        constraints = [models.UniqueConstraint(fields=["meeting", "topic"], name="meeting_topic_unique")]

    def __str__(self) -> str:
        return f"meeting {self.meeting_id} in topic {self.topic_id} ({self.weight:.2f})"
