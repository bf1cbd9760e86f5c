"""Topics across meetings: the topic list and a topic's page, and the related meetings of a meeting
(asked for by the meeting page's script, so the transcription app needs nothing of the assistant).
Adapters only: the reads, and the access rule inside them, are in `topics`."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from office.serializers import IsoDateTimeField
from transcription.selectors import meeting_for_user

from . import topics


def topics_page(request):
    """The topics you may see, largest first, each with the number of its meetings you may read."""
    return render(request, "assistant/topics.html", {"topics": topics.topics_overview(request.user)})


def topic_page(request, topic_id: int):
    """A topic: its meetings, decisions, open questions, open action items and who knows about it.
    A topic made from a room you may not read answers 404, the same as one that does not exist."""
    topic = topics.topic_for_user(request.user, topic_id)
    if topic is None:
        raise Http404("no such topic")
    return render(request, "assistant/topic.html", topics.topic_detail(request.user, topic))


class RelatedTopicOut(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()


class RelatedMeetingOut(serializers.Serializer):
    id = serializers.IntegerField(source="meeting.pk")
    room_name = serializers.CharField(source="meeting.room.name")
    started_at = IsoDateTimeField(source="meeting.started_at")
    similarity = serializers.FloatField(help_text="cosine of the two meetings' topic profiles")
    topics = RelatedTopicOut(many=True, help_text="the topics they share")
    url = serializers.SerializerMethodField()

    def get_url(self, related) -> str:
        return f"/meetings/{related['meeting'].pk}/"


class RelatedMeetingsOut(serializers.Serializer):
    meeting = serializers.IntegerField()
    related = RelatedMeetingOut(many=True)


class RelatedMeetingsApi(APIView):
    """Meetings you may read that share topics with this one, most alike first."""

    @extend_schema(responses=RelatedMeetingsOut)
    def get(self, request, meeting_id: int):
        meeting = meeting_for_user(request.user, meeting_id)
        if meeting is None:
            raise NotFound("no such meeting")
        related = topics.related_meetings(request.user, meeting)
        return Response(RelatedMeetingsOut({"meeting": meeting.pk, "related": related}).data)
