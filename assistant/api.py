"""REST for the assistant: ask, catch up, meeting notes, action-item decisions, room documents.
Every read goes through selectors that only see rooms the caller may read."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, Throttled, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from office.api import call_service
from office.serializers import JsonObjectField
from rooms.selectors import room_get_visible
from transcription.selectors import meeting_for_user

from . import llm, qa, selectors, services
from .models import ActionItem
from .ratelimit import allow
from .serializers import ActionItemOut, DocumentOut, SummaryOut

logger = logging.getLogger(__name__)

# The bodies qa.py builds (an answer is also the `done` event of the streamed answer).
AnswerOut = inline_serializer("Answer", {
    "answer": serializers.CharField(),
    "found": serializers.BooleanField(),
    "unavailable": serializers.BooleanField(),
    "confidence": serializers.FloatField(allow_null=True),
    "citations": inline_serializer("Citation", {
        "n": serializers.IntegerField(), "kind": serializers.CharField(), "room": serializers.IntegerField(),
        "text": serializers.CharField(), "locator": JsonObjectField(), "label": serializers.CharField(),
        "url": serializers.CharField(),
    }, many=True),
    "model_call": serializers.IntegerField(allow_null=True),
    "cached": serializers.BooleanField(),
})
CatchUpOut = inline_serializer("CatchUp", {
    "room": serializers.IntegerField(),
    "since": serializers.DateTimeField(),
    "events": inline_serializer("CatchUpEvent", {
        "kind": serializers.CharField(help_text="meeting, action_item, chat or document"),
        "at": serializers.DateTimeField(),
        "text": serializers.CharField(),
        "n": serializers.IntegerField(),
        "url": serializers.CharField(required=False),
        "meeting": serializers.IntegerField(required=False),
        "summary": SummaryOut(required=False, allow_null=True),
        "item": ActionItemOut(required=False),
    }, many=True),
    "summary": serializers.CharField(),
    "highlights": serializers.ListField(child=serializers.IntegerField()),
    "source": serializers.CharField(help_text="model, fallback or none"),
    "unavailable": serializers.BooleanField(),
})


class AskApi(APIView):
    class Body(serializers.Serializer):
        question = serializers.CharField(max_length=qa.MAX_QUESTION_CHARS)
        room = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(request=Body, responses=AnswerOut)
    def post(self, request):
        question, room_id = _asked(request, self.Body)
        return Response(qa.answer_question(user=request.user, question=question, room_id=room_id))


def _asked(request, body_serializer) -> tuple[str, int | None]:
    """The question and room of an ask request, checked (input, rate limit, room access) the same way
    for the plain and the streamed answer; errors are 400 / 404 / 429 before any model call."""
    body = body_serializer(data=request.data)
    body.is_valid(raise_exception=True)
    if not allow(f"ask:{request.user.pk}", per_minute=20):
        raise Throttled(detail="too many questions; wait a minute")
    question, room_id = body.validated_data["question"], body.validated_data.get("room")
    try:
        qa.question_checked(user=request.user, question=question, room_id=room_id)
    except LookupError as exc:
        raise NotFound("no such room") from exc
    except ValueError as exc:
        raise ValidationError({"question": str(exc)}) from exc
    return question, room_id


class AskStreamApi(APIView):
    """The answer as server-sent events while the model writes it (`sources`, `delta`..., `done`);
    see docs/protocol.md. Bad input is a JSON 400/404 before the stream starts, as for AskApi."""

    Body = AskApi.Body

    def perform_content_negotiation(self, request, force=False):
        # The stream is not rendered by DRF; what is (a 400/404 before it starts) is JSON, whatever
        # the client accepts (it asked for text/event-stream).
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(request=Body, responses={(200, "text/event-stream"): OpenApiTypes.STR})
    def post(self, request):
        question, room_id = _asked(request, self.Body)
        events = qa.answer_question_stream(user=request.user, question=question, room_id=room_id)
        if isinstance(request._request, ASGIRequest):
            content = _sse_async(events)  # Daphne: each event is sent as soon as it exists
        else:
            content = _sse_sync(events)
        response = StreamingHttpResponse(content, content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # a proxy in front must not hold the events back
        return response


def _sse(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def _sse_sync(events: Iterator[dict]) -> Iterator[bytes]:
    with contextlib.closing(events):  # closing the response ends the model request too
        for event in events:
            yield _sse(event)


_END = object()


async def _sse_async(events: Iterator[dict]) -> AsyncIterator[bytes]:
    """Run the (blocking: database, model) event generator on a thread of its own and pass each
    event to the event loop as it comes. If the asker goes away, the generator is closed after its
    next event, which ends the model request."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stopped = threading.Event()

    def put(item) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is gone
            stopped.set()

    def produce() -> None:
        try:
            for event in events:
                if stopped.is_set():
                    break
                put(event)
        except Exception:
            logger.exception("the answer stream failed")
            put({"type": "error", "message": "the assistant could not answer right now"})
        finally:
            events.close()
            connections.close_all()  # this thread's own connections
            put(_END)

    threading.Thread(target=produce, name="ask-stream", daemon=True).start()
    try:
        while (event := await queue.get()) is not _END:
            yield _sse(event)
    finally:
        stopped.set()


class CatchUpApi(APIView):
    @extend_schema(responses=CatchUpOut)
    def get(self, request, room_id: int):
        room = call_service(room_get_visible, user=request.user, room_id=room_id)
        if not allow(f"catchup:{request.user.pk}", per_minute=10):
            raise Throttled(detail="too many requests; wait a minute")
        return Response(qa.catch_up(user=request.user, room=room))


class MeetingNotesApi(APIView):
    @extend_schema(responses=inline_serializer("MeetingNotes", {
        "meeting": serializers.IntegerField(), "rolling": SummaryOut(allow_null=True),
        "final": SummaryOut(allow_null=True), "action_items": ActionItemOut(many=True)}))
    def get(self, request, meeting_id: int):
        meeting = meeting_for_user(request.user, meeting_id)
        if meeting is None:
            raise NotFound("no such meeting")
        items = selectors.action_items_visible_to(request.user).filter(meeting=meeting)
        return Response({"meeting": meeting.pk, **selectors.meeting_summaries(meeting),
                         "action_items": selectors.action_item_payloads(items)})


class ActionItemListApi(APIView):
    @extend_schema(responses=ActionItemOut(many=True))
    def get(self, request):
        items = selectors.action_items_visible_to(request.user)
        for name in ("room", "meeting"):
            value = request.query_params.get(name)
            if value is not None:
                if not value.isdigit():
                    raise ValidationError({name: f"must be a {name} id"})
                items = items.filter(**{f"{name}_id": int(value)})
        state = request.query_params.get("status")
        if state is not None:
            if state not in ActionItem.Status.values:
                raise ValidationError({"status": f"one of {ActionItem.Status.values}"})
            items = items.filter(status=state)
        return Response(selectors.action_item_payloads(items.order_by("-created_at")[:200]))


class ActionItemDecisionApi(APIView):
    class Body(serializers.Serializer):
        action = serializers.ChoiceField(choices=["approve", "edit", "reject"])
        text = serializers.CharField(max_length=500, required=False)
        owner = serializers.IntegerField(required=False, allow_null=True, min_value=1)
        due_date = serializers.DateField(required=False, allow_null=True)
        note = serializers.CharField(max_length=1000, required=False, allow_blank=True)

    @extend_schema(request=Body, responses=ActionItemOut)
    def post(self, request, item_id: int):
        item = selectors.action_item_for_user(request.user, item_id)
        if item is None:
            raise NotFound("no such action item")
        body = self.Body(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        item = call_service(
            services.action_item_decide,
            item=item, user=request.user, action=data["action"], text=data.get("text"),
            owner_id=data.get("owner"), clear_owner="owner" in data and data["owner"] is None,
            due_date=data.get("due_date"), note=data.get("note", ""),
        )
        return Response(selectors.action_item_payload(item))


class RoomDocumentsApi(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(responses=DocumentOut(many=True))
    def get(self, request, room_id: int):
        call_service(room_get_visible, user=request.user, room_id=room_id)
        documents = selectors.documents_visible_to(request.user).filter(room_id=room_id)
        return Response([selectors.document_payload(d) for d in documents[:200]])

    @extend_schema(request={"multipart/form-data": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}, "title": {"type": "string"}}}},
        responses={201: DocumentOut, 200: DocumentOut})
    def post(self, request, room_id: int):
        room = call_service(room_get_visible, user=request.user, room_id=room_id)
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": "attach a file (txt, md or pdf)"})
        if not allow(f"upload:{request.user.pk}", per_minute=10):
            raise Throttled(detail="too many uploads; wait a minute")
        document, created = call_service(
            services.document_upload, user=request.user, room=room, filename=upload.name,
            content=upload.read(settings.OFFICE_UPLOAD_MAX_BYTES + 1), title=request.data.get("title", ""),
        )
        return Response(selectors.document_payload(document),
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class AssistantStatusApi(APIView):
    """Whether each model tier answers (the sidebar shows "assistant unavailable" otherwise)."""

    @extend_schema(responses=inline_serializer("AssistantStatus", {"tiers": serializers.DictField(
        child=inline_serializer("AssistantTier", {"model": serializers.CharField(),
                                                  "available": serializers.BooleanField(),
                                                  "external": serializers.BooleanField()}))}))
    def get(self, request):
        tiers = {}
        for tier in llm.TIERS:
            endpoint = llm.endpoint_for(tier)
            breaker = llm.breaker_for(endpoint)
            tiers[tier] = {"model": endpoint.model, "available": breaker.current_state != "open",
                           "external": endpoint.external}
        return Response({"tiers": tiers})
