"""REST for meetings and transcripts; access follows the room (private rooms: members only)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from office.api import whole_number

from . import selectors
from .exports import TRANSCRIPT_FORMATS, export_filename, transcript_export
from .serializers import MeetingDetailOut, MeetingListItemOut, SegmentOut


class MeetingListApi(APIView):
    @extend_schema(responses=MeetingListItemOut(many=True),
                   parameters=[OpenApiParameter("room", int, description="only this room's meetings")])
    def get(self, request):
        meetings = selectors.meetings_visible_to(request.user)
        room = request.query_params.get("room")
        if room is not None:
            if (room_id := whole_number(room)) is None:
                raise ValidationError({"room": "must be a room id"})
            meetings = meetings.filter(room_id=room_id)
        return Response(MeetingListItemOut(meetings.order_by("-started_at")[:100], many=True).data)


class MeetingDetailApi(APIView):
    @extend_schema(responses=MeetingDetailOut)
    def get(self, request, meeting_id: int):
        meeting = selectors.meeting_for_user(request.user, meeting_id)
        if meeting is None:
            raise NotFound("no such meeting")
        return Response(MeetingDetailOut(meeting).data)


class MeetingTranscriptApi(APIView):
    class QuerySerializer(serializers.Serializer):
        q = serializers.CharField(max_length=200, required=False, allow_blank=True)
        after = serializers.IntegerField(min_value=0, required=False)
        limit = serializers.IntegerField(min_value=1, max_value=1000, required=False)

    @extend_schema(parameters=[QuerySerializer], responses=inline_serializer("MeetingTranscript", {
        "meeting": serializers.IntegerField(), "segments": SegmentOut(many=True)}))
    def get(self, request, meeting_id: int):
        meeting = selectors.meeting_for_user(request.user, meeting_id)
        if meeting is None:
            raise NotFound("no such meeting")
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        segments = selectors.meeting_segments(
            meeting, after_seq=query.validated_data.get("after", 0), query=query.validated_data.get("q", "").strip(),
            limit=query.validated_data.get("limit", 500),
        )
        return Response({"meeting": meeting.id, "segments": [selectors.segment_payload(s) for s in segments]})


class MeetingTranscriptFileApi(APIView):
    """The transcript as a file: `transcript.txt`, `.md`, `.srt` or `.vtt` (transcription/exports.py)."""

    @extend_schema(responses={(200, media.split(";")[0]): OpenApiTypes.STR for media in TRANSCRIPT_FORMATS.values()})
    def get(self, request, meeting_id: int, file_format: str):
        meeting = selectors.meeting_for_user(request.user, meeting_id)
        if meeting is None:
            raise NotFound("no such meeting")
        if file_format not in TRANSCRIPT_FORMATS:
            raise NotFound(f"no such format; one of {', '.join(TRANSCRIPT_FORMATS)}")
        response = HttpResponse(transcript_export(meeting, file_format), content_type=TRANSCRIPT_FORMATS[file_format])
        response["Content-Disposition"] = (
            f'attachment; filename="{export_filename(meeting, "transcript", file_format)}"')
        return response
