"""REST for the assistant: ask, catch up, meeting notes, action-item decisions, room documents.
Every read goes through selectors that only see rooms the caller may read.

No request calls a model (docs/adr/0015): the page streams answers and catch-ups (server-sent events,
the model read on a thread of the stream's own), and scripts get a job for the assistant worker: 202
and a result URL, or with `?wait=N` the answer itself, awaited on the event loop, or 504."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, Throttled, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from office.api import call_service, whole_number
from office.serializers import JsonObjectField
from rooms.selectors import room_get_visible
from transcription.exports import export_filename
from transcription.selectors import meeting_for_user

from . import archive, experts, exports, jobs, llm, qa, selectors, services
from .archive import archive_filters
from .models import ActionItem, AssistantJob
from .ratelimit import allow
from .serializers import (
    ActionItemOut,
    ArchiveQueryIn,
    AssistantJobOut,
    DocumentOut,
    ExpertsOut,
    ExpertsQueryIn,
    MeetingSearchOut,
    SummaryOut,
)

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


MAX_WAIT_SECONDS = 10
WAIT_PARAMETER = OpenApiParameter(
    "wait", int, description=f"seconds (0-{MAX_WAIT_SECONDS}) to wait for the answer instead of answering 202 at "
    "once; if it is not ready by then: 504 with the job's result URL")
LONG_POLL_PARAMETER = OpenApiParameter(
    "wait", int, description=f"seconds (0-{MAX_WAIT_SECONDS}) to hold the answer while the job is not finished; "
    "still 202 if it has not finished by then")
JobTimeoutOut = inline_serializer("AssistantJobTimeout", {
    "error": inline_serializer("AssistantJobTimeoutError", {"code": serializers.CharField(),
                                                            "message": serializers.CharField()}),
    "job": serializers.UUIDField(), "status": serializers.CharField(), "result_url": serializers.CharField(),
})


def _wait_seconds(query) -> int:
    """`?wait=N` (0 when absent); a bad value is a 400 before any job is stored."""
    raw = query.get("wait")
    if raw in (None, ""):
        return 0
    seconds = whole_number(raw)
    if seconds is None or seconds > MAX_WAIT_SECONDS:
        raise ValidationError({"wait": f"seconds from 0 to {MAX_WAIT_SECONDS}"})
    return seconds


class _AnswersThroughAJob(APIView):
    """An endpoint whose answer is a model's: the DRF view checks the request and stores a job (202);
    with `?wait=N` an async outer view then awaits the job on the event loop (a look at its row every
    0.1-0.5 s) while the assistant worker asks the model. It answers with the result (`answer_in_body`:
    the body the endpoint gave before jobs) or else 504; or, for the result URL's long poll, with the
    job, still 202 if it is not finished. (With today's sync-only middleware Django parks the request's
    own thread, idle, until this view returns: ADR 0015.)"""

    answer_in_body = True

    @classmethod
    def as_view(cls, **initkwargs):
        view = super().as_view(**initkwargs)
        answer_in_body = cls.answer_in_body

        @functools.wraps(view)  # keeps csrf_exempt and `cls`, which the schema generator reads
        async def view_with_wait(request, *args, **kwargs):
            response = await sync_to_async(view)(request, *args, **kwargs)
            if response.status_code != 202 or not (wait := _wait_seconds(request.GET)):
                return response  # an error, or no wait asked for (the view checked `wait` already)
            job = await _job_after_waiting(request.user, response.data["job"], wait)
            if not answer_in_body:
                payload = await sync_to_async(selectors.assistant_job_payload)(job)
                return JsonResponse(payload, status=200 if job.finished else 202)
            if job.status == AssistantJob.Status.DONE:
                return JsonResponse(job.result)
            where = {"job": str(job.pk), "status": job.status, "result_url": response.data["result_url"]}
            if job.status == AssistantJob.Status.FAILED:
                return JsonResponse({"error": {"code": "failed", "message": job.error}, **where}, status=500)
            return JsonResponse({"error": {"code": "timeout", "message": f"no answer within {wait} s; the "
                                           "assistant is still working on it: fetch result_url for it"}, **where},
                                status=504)

        return view_with_wait


async def _job_after_waiting(user, job_id, wait: int) -> AssistantJob:
    """The job once done or failed, or as it stands when `wait` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline, pause = loop.time() + wait, 0.1
    while True:
        job = await sync_to_async(selectors.assistant_job_for_user)(user, job_id)
        left = deadline - loop.time()
        if job.finished or left <= 0:
            return job
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 1.5, 0.5)


def _job_accepted(job: AssistantJob) -> Response:
    payload = selectors.assistant_job_payload(job)
    return Response(payload, status=status.HTTP_202_ACCEPTED, headers={"Location": payload["result_url"]})


class AskApi(_AnswersThroughAJob):
    """A question for scripts: 202 and the job's result URL at once, the answer from the assistant worker
    (the page streams it instead: AskStreamApi)."""

    class Body(serializers.Serializer):
        question = serializers.CharField(max_length=qa.MAX_QUESTION_CHARS)
        room = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(request=Body, parameters=[WAIT_PARAMETER],
                   responses={202: AssistantJobOut, 200: AnswerOut, 504: JobTimeoutOut})
    def post(self, request):
        _wait_seconds(request.query_params)
        question, room_id = _asked(request, self.Body)
        job = call_service(jobs.assistant_job_start, user=request.user, kind=AssistantJob.Kind.ASK,
                           job_input={"question": question, "room": room_id})
        return _job_accepted(job)


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
        return _event_stream(request, qa.answer_question_stream(user=request.user, question=question,
                                                                room_id=room_id))


def _event_stream(request, events: Iterator[dict]) -> StreamingHttpResponse:
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


def _catch_up_room(request, room_id: int):
    """The room to catch up on, checked (access, then the rate limit) the same way for the job and the
    stream; errors are 404 / 429 before any model call."""
    room = call_service(room_get_visible, user=request.user, room_id=room_id)
    if not allow(f"catchup:{request.user.pk}", per_minute=10):
        raise Throttled(detail="too many requests; wait a minute")
    return room


class CatchUpApi(_AnswersThroughAJob):
    """Catch-up for scripts: 202 and the job's result URL at once (the page streams it: CatchUpStreamApi)."""

    @extend_schema(parameters=[WAIT_PARAMETER], responses={202: AssistantJobOut, 200: CatchUpOut, 504: JobTimeoutOut})
    def get(self, request, room_id: int):
        _wait_seconds(request.query_params)
        room = _catch_up_room(request, room_id)
        job = call_service(jobs.assistant_job_start, user=request.user, kind=AssistantJob.Kind.CATCH_UP,
                           job_input={"room": room.pk})
        return _job_accepted(job)


class CatchUpStreamApi(APIView):
    """The catch-up as server-sent events (`events` at once, `delta`... of the model's summary, `done`);
    see docs/protocol.md. A room you may not read or the rate limit is JSON 404 / 429 before the stream."""

    def perform_content_negotiation(self, request, force=False):
        return JSONRenderer(), JSONRenderer.media_type  # as AskStreamApi

    @extend_schema(responses={(200, "text/event-stream"): OpenApiTypes.STR})
    def get(self, request, room_id: int):
        room = _catch_up_room(request, room_id)
        return _event_stream(request, qa.catch_up_stream(user=request.user, room=room))


class AssistantJobApi(_AnswersThroughAJob):
    """A job's state (only its owner's; 404 for anyone else): 202 while queued or running, 200 with the
    result once done (or failed, with why). `?wait=N` holds the answer up to N s for it to finish."""

    answer_in_body = False

    @extend_schema(parameters=[LONG_POLL_PARAMETER], responses={200: AssistantJobOut, 202: AssistantJobOut})
    def get(self, request, job_id):
        _wait_seconds(request.query_params)
        job = selectors.assistant_job_for_user(request.user, job_id)
        if job is None:
            raise NotFound("no such job")
        return Response(selectors.assistant_job_payload(job),
                        status=status.HTTP_200_OK if job.finished else status.HTTP_202_ACCEPTED)


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


class MeetingSearchApi(APIView):
    """Search what was said, noted and written in the rooms you may read (the archive's search box)."""

    @extend_schema(parameters=[ArchiveQueryIn], responses=MeetingSearchOut)
    def get(self, request):
        query = ArchiveQueryIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        if not query.validated_data["q"].strip():
            raise ValidationError({"q": "say what to look for"})
        results = archive.meetings_search(user=request.user, text=query.validated_data["q"],
                                          filters=archive_filters(query.validated_data))
        return Response(MeetingSearchOut(results).data)


class ExpertsApi(APIView):
    """Who knows about a topic: people ranked by what they said, wrote, uploaded and completed on it,
    each reason cited, from the rooms you may read only (retrieval and scoring, no model call)."""

    @extend_schema(parameters=[ExpertsQueryIn], responses=ExpertsOut)
    def get(self, request):
        query = ExpertsQueryIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        topic, room_id = query.validated_data["q"].strip(), query.validated_data["room"]
        if not topic:
            raise ValidationError({"q": "say what to look for"})
        if room_id is not None:
            call_service(room_get_visible, user=request.user, room_id=room_id)
        if not allow(f"experts:{request.user.pk}", per_minute=30):
            raise Throttled(detail="too many questions; wait a minute")
        found = experts.experts_find(user=request.user, query=topic, room_ids=None if room_id is None else [room_id])
        return Response(ExpertsOut({"query": topic, "room": room_id, "experts": found}).data)


class MeetingNotesFileApi(APIView):
    """The notes as Markdown (`notes.md`), or the whole meeting as JSON (`export.json`)."""

    @extend_schema(responses={(200, "text/markdown"): OpenApiTypes.STR, (200, "application/json"): OpenApiTypes.OBJECT})
    def get(self, request, meeting_id: int, what: str):
        meeting = meeting_for_user(request.user, meeting_id)
        if meeting is None:
            raise NotFound("no such meeting")
        items = selectors.action_item_payloads(
            selectors.action_items_visible_to(request.user).filter(meeting=meeting).order_by("created_at", "pk"))
        if what == "notes.md":
            body, content_type = exports.notes_as_markdown(meeting, items=items), "text/markdown; charset=utf-8"
        elif what == "export.json":
            body = json.dumps(exports.meeting_as_json(meeting, items=items), indent=2, ensure_ascii=False)
            content_type = "application/json"
        else:  # pragma: no cover - the URLs name only these two
            raise NotFound("no such export")
        response = HttpResponse(body, content_type=content_type)
        name, extension = what.split(".")
        response["Content-Disposition"] = f'attachment; filename="{export_filename(meeting, name, extension)}"'
        return response


class ActionItemListApi(APIView):
    @extend_schema(responses=ActionItemOut(many=True), parameters=[
        OpenApiParameter("room", int, description="only this room's items"),
        OpenApiParameter("meeting", int, description="only this meeting's items"),
        OpenApiParameter("status", str, enum=ActionItem.Status.values)])
    def get(self, request):
        items = selectors.action_items_visible_to(request.user)
        for name in ("room", "meeting"):
            value = request.query_params.get(name)
            if value is not None:
                if (object_id := whole_number(value)) is None:
                    raise ValidationError({name: f"must be a {name} id"})
                items = items.filter(**{f"{name}_id": object_id})
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


class DocumentDetailApi(APIView):
    """One document of a room you may read (where its indexing is); its uploader or an admin deletes it."""

    def _document(self, request, document_id: int):
        document = selectors.documents_visible_to(request.user).filter(pk=document_id).first()
        if document is None:
            raise NotFound("no such document")
        return document

    @extend_schema(responses=DocumentOut)
    def get(self, request, document_id: int):
        return Response(selectors.document_payload(self._document(request, document_id)))

    @extend_schema(responses={204: None})
    def delete(self, request, document_id: int):
        call_service(services.document_delete, user=request.user, document=self._document(request, document_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


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
