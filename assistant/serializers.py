"""Output shapes of the assistant's notes: summaries, action items and room documents (REST and the
room's live events), and of the jobs that answer scripts' questions."""

from __future__ import annotations

from django.db import models
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from office.serializers import IsoDateField, IsoDateTimeField, JsonListField, JsonObjectField, NumberField
from rooms.serializers import PersonOut
from transcription.models import TranscriptSegment


def segment_ids(values) -> set[int]:
    """The integer segment ids in an item's `source_segment_ids` (anything else is ignored)."""
    return {int(i) for i in values or [] if isinstance(i, int | str) and str(i).isdigit()}


def segment_seq_map(items) -> dict[int, int]:
    """Segment id -> transcript position for the source segments of many items, in one query."""
    ids = set().union(*(segment_ids(item.source_segment_ids) for item in items))
    if not ids:
        return {}
    return dict(TranscriptSegment.objects.filter(pk__in=ids).values_list("pk", "seq"))


class SummaryOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    meeting = serializers.IntegerField(source="meeting_id")
    kind = serializers.CharField(help_text="rolling or final")
    summary = serializers.CharField()
    decisions = JsonListField()
    open_questions = JsonListField()
    topics = JsonListField()
    through_seq = serializers.IntegerField()
    source = serializers.CharField(help_text="model or fallback")
    created_at = IsoDateTimeField()


class ActionItemProvenanceOut(serializers.Serializer):
    segments = JsonListField(source="source_segment_ids")
    # The source segments' transcript positions, so links go to /meetings/<id>/#seg-<seq>: looked up
    # in the context's `seq_of` (one query for a whole list, see ActionItemListOut) or for this item.
    segment_seqs = serializers.SerializerMethodField()
    speaker = PersonOut(allow_null=True)
    model_id = serializers.CharField()
    prompt_version = serializers.CharField()
    ranker_version = serializers.CharField()

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_segment_seqs(self, item) -> list[int]:
        seq_of = self.context.get("seq_of")
        if seq_of is None:
            seq_of = segment_seq_map([item])
        return sorted(seq_of[pk] for pk in segment_ids(item.source_segment_ids) if pk in seq_of)


class ActionItemListOut(serializers.ListSerializer):
    """Many items: their source segments' positions come from one query (unless the context has them)."""

    def to_representation(self, data):
        items = list(data.all() if isinstance(data, models.manager.BaseManager) else data)
        if self.context.get("seq_of") is None:
            self.context["seq_of"] = segment_seq_map(items)
        return super().to_representation(items)


class ActionItemOut(serializers.Serializer):
    """A proposed (or decided) action item; `context={"seq_of": {segment id: seq}}` saves the lookup."""

    id = serializers.IntegerField(source="pk")
    room = serializers.IntegerField(source="room_id")
    meeting = serializers.IntegerField(source="meeting_id", allow_null=True)
    text = serializers.CharField()
    owner = PersonOut(allow_null=True)
    suggested_owner = PersonOut(allow_null=True)
    owner_reason = serializers.CharField()
    due_date = IsoDateField(allow_null=True)
    due_text = serializers.CharField()
    confidence = NumberField()
    status = serializers.CharField(help_text="proposed, approved or rejected")
    provenance = ActionItemProvenanceOut(source="*")
    decided_by = PersonOut(allow_null=True)
    decided_at = IsoDateTimeField(allow_null=True)
    created_at = IsoDateTimeField()

    class Meta:
        list_serializer_class = ActionItemListOut


class DocumentOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    room = serializers.IntegerField(source="room_id")
    title = serializers.CharField()
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size_bytes = serializers.IntegerField()
    status = serializers.CharField(help_text="pending, indexed or failed")
    stage = serializers.CharField(help_text="stored, extracting, ocr, indexing, ready or failed")
    pages_done = serializers.IntegerField(help_text="pages read so far")
    pages_total = serializers.IntegerField(help_text="pages in the file, once opened")
    error = serializers.CharField()
    page_count = serializers.IntegerField()
    uploaded_by = PersonOut()
    url = serializers.SerializerMethodField()  # the document's page, from its id
    created_at = IsoDateTimeField()

    def get_url(self, document) -> str:
        return f"/documents/{document.pk}/"


class AssistantJobOut(serializers.Serializer):
    """A question or catch-up the assistant worker answers (docs/adr/0015); `result` once it is done."""

    job = serializers.UUIDField(source="pk")
    kind = serializers.CharField(help_text="ask or catch_up")
    status = serializers.CharField(help_text="queued, running, done or failed")
    result_url = serializers.SerializerMethodField()
    result = JsonObjectField(allow_null=True, help_text="when done: the Answer (ask) or the CatchUp (catch_up)")
    error = serializers.CharField(help_text="when failed: why")
    created_at = IsoDateTimeField()
    finished_at = IsoDateTimeField(allow_null=True)

    def get_result_url(self, job) -> str:
        return reverse("api-assistant-job", kwargs={"job_id": job.pk})


class ArchiveQueryIn(serializers.Serializer):
    """The meetings archive's filters and search box (the page and GET /api/meetings/search/ share it)."""

    q = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    room = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    person = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    since = serializers.DateField(required=False, allow_null=True, default=None)
    until = serializers.DateField(required=False, allow_null=True, default=None)

    def validate(self, attrs):
        if attrs["since"] and attrs["until"] and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": "must not be before since"})
        return attrs


class SearchHitOut(serializers.Serializer):
    kind = serializers.CharField(help_text="transcript, notes or chat")
    meeting = serializers.IntegerField(required=False)
    room = serializers.IntegerField()
    room_name = serializers.CharField()
    seq = serializers.IntegerField(required=False)
    speaker = serializers.CharField(required=False)
    at = IsoDateTimeField()
    snippet = serializers.CharField(help_text="HTML: escaped text, the matching words in <mark>")
    url = serializers.CharField()
    matched = serializers.ListField(child=serializers.CharField(), required=False,
                                    help_text="words, meaning or both")


class MeetingSearchOut(serializers.Serializer):
    query = serializers.CharField()
    transcript = SearchHitOut(many=True)
    notes = SearchHitOut(many=True)
    chat = SearchHitOut(many=True)


class ExpertsQueryIn(serializers.Serializer):
    """"Who knows about X?": the topic, and optionally one room to look in (else every room you may read)."""

    q = serializers.CharField(max_length=300, help_text="the topic")
    room = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False, allow_null=True, default=None)


class ExpertReasonOut(serializers.Serializer):
    kind = serializers.CharField(help_text="said (in a meeting), wrote (in room chat), uploaded (a document) or "
                                           "completed (a task)")
    text = serializers.CharField()
    label = serializers.CharField()
    url = serializers.CharField(help_text="the exact segment, message, page or task")
    room = serializers.IntegerField()


class ExpertOut(serializers.Serializer):
    person = PersonOut()
    score = serializers.FloatField()
    evidence_count = serializers.IntegerField()
    reasons = ExpertReasonOut(many=True)


class ExpertsOut(serializers.Serializer):
    query = serializers.CharField()
    room = serializers.IntegerField(allow_null=True)
    experts = ExpertOut(many=True)
