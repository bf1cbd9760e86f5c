"""REST API for the map, rooms, members and chat. Views parse, authorise and call one service."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from office.api import call_service, whole_number
from office.drf import SafeJSONParser

from . import audio_clips, personal_data, selectors, services
from .models import RETENTION_FIELDS, Desk, OfficeMap, Profile, Room
from .serializers import (
    AnnouncementOut,
    ChatMessageOut,
    DeskOut,
    MapLayoutOut,
    MapPresenceEntryOut,
    MapSummaryOut,
    MemberOut,
    ThreadSummaryOut,
)


class MeApi(APIView):
    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Profile.Status.choices, required=False)
        display_name = serializers.CharField(max_length=80, required=False, allow_blank=False)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        name = serializers.CharField()
        status = serializers.CharField()
        role = serializers.CharField()

    def _out(self, user):
        profile = services.profile_ensure(user)
        return self.OutputSerializer(
            {"id": user.id, "username": user.username, "name": profile.display_name, "status": profile.status,
             "role": profile.role}
        ).data

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        return Response(self._out(request.user))

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def patch(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "status" in data.validated_data:
            call_service(services.profile_set_status, user=request.user, status=data.validated_data["status"])
        if "display_name" in data.validated_data:
            call_service(services.profile_set_display_name, user=request.user, display_name=data.validated_data["display_name"])
        return Response(self._out(request.user))


class MyDataExportApi(APIView):
    """Everything Office holds about the signed-in person, as a zip (JSON and their transcripts)."""

    @extend_schema(responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request):
        archive = personal_data.person_export(user=request.user)
        response = HttpResponse(archive, content_type="application/zip")
        name = f"office-data-{request.user.get_username()}-{timezone.now():%Y%m%d}.zip"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class MemberEraseApi(APIView):
    """An admin erases a person's personal data (audited); `confirm` must repeat their username."""

    permission_classes = [IsAuthenticated, IsAdminUser]

    class InputSerializer(serializers.Serializer):
        confirm = serializers.CharField(max_length=150, help_text="the person's username, to confirm")
        reassign_to = serializers.IntegerField(min_value=1, required=False, allow_null=True,
                                               help_text="who takes over their tasks; empty: left unowned")

    class OutputSerializer(serializers.Serializer):
        erased = serializers.IntegerField()
        counts = serializers.DictField(child=serializers.IntegerField())

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request, user_id: int):
        person = get_object_or_404(get_user_model(), pk=user_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["confirm"] != person.get_username():
            raise ValidationError({"confirm": "must be the username of the person to erase"})
        reassign_id = data.validated_data.get("reassign_to")
        reassign_to = get_object_or_404(get_user_model(), pk=reassign_id) if reassign_id else None
        counts = call_service(personal_data.person_erase, person=person, actor=request.user, reassign_to=reassign_to)
        return Response(self.OutputSerializer({"erased": person.pk, "counts": counts}).data)


class MemberListApi(APIView):
    @extend_schema(responses=MemberOut(many=True))
    def get(self, request):
        return Response(selectors.members_directory())


class MapInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(required=False)
    width = serializers.IntegerField(min_value=8, max_value=512)
    height = serializers.IntegerField(min_value=8, max_value=512)
    spawn_x = serializers.IntegerField(min_value=0)
    spawn_y = serializers.IntegerField(min_value=0)
    # the map's retention policy, its rooms' default (empty: the site default)
    keep_transcripts_days = serializers.IntegerField(min_value=0, max_value=36500, required=False, allow_null=True)
    keep_chat_days = serializers.IntegerField(min_value=0, max_value=36500, required=False, allow_null=True)
    keep_documents_days = serializers.IntegerField(min_value=0, max_value=36500, required=False, allow_null=True)
    keep_audio_days = serializers.IntegerField(min_value=0, max_value=36500, required=False, allow_null=True)
    keep_model_calls_days = serializers.IntegerField(min_value=0, max_value=36500, required=False, allow_null=True)


class MapListApi(APIView):
    def get_permissions(self):
        return [IsAuthenticated(), IsAdminUser()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(responses=MapSummaryOut(many=True))
    def get(self, request):
        return Response(MapSummaryOut(OfficeMap.objects.order_by("id"), many=True).data)

    @extend_schema(request=MapInputSerializer, responses={201: MapLayoutOut})
    def post(self, request):
        data = MapInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        office_map = call_service(services.office_map_create, **data.validated_data)
        return Response(selectors.map_layout_payload(office_map), status=status.HTTP_201_CREATED)


class MapDetailApi(APIView):
    def get_permissions(self):
        return [IsAuthenticated(), IsAdminUser()] if self.request.method == "PATCH" else [IsAuthenticated()]

    @extend_schema(responses=MapLayoutOut)
    def get(self, request, map_id: int):
        return Response(selectors.map_layout_payload(get_object_or_404(OfficeMap, pk=map_id)))

    @extend_schema(request=MapInputSerializer(partial=True), responses=MapLayoutOut)
    def patch(self, request, map_id: int):
        office_map = get_object_or_404(OfficeMap, pk=map_id)
        data = MapInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        office_map = call_service(services.office_map_update, office_map=office_map, **data.validated_data)
        return Response(selectors.map_layout_payload(office_map))


class RetentionIn(serializers.Serializer):
    """A retention policy's `keep_<kind>_days` (empty: fall back to the map's, then the site's)."""

    keep_transcripts_days = serializers.IntegerField(min_value=0, max_value=36500, required=False, allow_null=True)
    keep_chat_days = serializers.IntegerField(min_value=0, max_value=36500, required=False, allow_null=True)
    keep_documents_days = serializers.IntegerField(min_value=0, max_value=36500, required=False, allow_null=True)
    keep_audio_days = serializers.IntegerField(min_value=0, max_value=36500, required=False, allow_null=True)
    keep_model_calls_days = serializers.IntegerField(min_value=0, max_value=36500, required=False, allow_null=True)


TILE = {"min_value": 0, "max_value": 511}


class MapDocumentMap(RetentionIn):
    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=50, help_text="must not be taken by another map")
    width = serializers.IntegerField(min_value=8, max_value=512)
    height = serializers.IntegerField(min_value=8, max_value=512)
    spawn = serializers.ListField(child=serializers.IntegerField(**TILE), min_length=2, max_length=2, help_text="[x, y]")


class MapDocumentRoom(RetentionIn):
    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(max_length=50, required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=Room.Kind.choices)
    x = serializers.IntegerField(**TILE)
    y = serializers.IntegerField(**TILE)
    width = serializers.IntegerField(min_value=1, max_value=512)
    height = serializers.IntegerField(min_value=1, max_value=512)
    doors = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField(**TILE), min_length=2,
                                                              max_length=2), max_length=2048, required=False)
    capacity = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, allow_null=True)
    assistant_enabled = serializers.BooleanField(required=False)
    members = serializers.ListField(child=serializers.CharField(max_length=150), max_length=1000, required=False,
                                    help_text="usernames")


class MapDocumentDesk(serializers.Serializer):
    label = serializers.CharField(max_length=60)
    x = serializers.IntegerField(**TILE)
    y = serializers.IntegerField(**TILE)
    owner = serializers.CharField(max_length=150, required=False, allow_null=True, help_text="a username")


class MapDocument(serializers.Serializer):
    """A map as a portable document: what export gives and import takes."""

    format = serializers.ChoiceField(choices=[services.MAP_DOCUMENT_FORMAT])
    version = serializers.IntegerField(min_value=services.MAP_DOCUMENT_VERSION, max_value=services.MAP_DOCUMENT_VERSION)
    map = MapDocumentMap()
    rooms = serializers.ListField(child=MapDocumentRoom(), max_length=200, required=False, default=list)
    desks = serializers.ListField(child=MapDocumentDesk(), max_length=2000, required=False, default=list)


class MapExportApi(APIView):
    """The map as a document (admins): rooms with doors and members, desks with owners, by username."""

    permission_classes = [IsAuthenticated, IsAdminUser]

    @extend_schema(responses=MapDocument)
    def get(self, request, map_id: int):
        return Response(selectors.office_map_document(get_object_or_404(OfficeMap, pk=map_id)))


class MapTiledExportApi(APIView):
    """The layout in Tiled's JSON map format: object layers of rooms, doors and desks (admins)."""

    permission_classes = [IsAuthenticated, IsAdminUser]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, map_id: int):
        return Response(selectors.office_map_tiled(get_object_or_404(OfficeMap, pk=map_id)))


class MapImportApi(APIView):
    """A new map from an exported document, validated as a whole: any problem and nothing is created."""

    permission_classes = [IsAuthenticated, IsAdminUser]

    @extend_schema(request=MapDocument, responses={201: MapLayoutOut})
    def post(self, request):
        data = MapDocument(data=request.data)
        data.is_valid(raise_exception=True)
        office_map = call_service(services.office_map_import, document=data.validated_data)
        return Response(selectors.map_layout_payload(office_map), status=status.HTTP_201_CREATED)


class MapPresenceApi(APIView):
    """Who is on the map now; exact positions inside private rooms only for that room's members."""

    @extend_schema(responses=inline_serializer("MapPresence", {
        "map": serializers.IntegerField(), "people": MapPresenceEntryOut(many=True)}))
    def get(self, request, map_id: int):
        get_object_or_404(OfficeMap, pk=map_id)
        return Response({"map": map_id, "people": selectors.map_presence_for(request.user, map_id)})



class RoomSerializer(serializers.ModelSerializer):
    doors = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField(min_value=0),
                                                             min_length=2, max_length=2), required=False)

    class Meta:
        model = Room
        fields = ["id", "office_map", "name", "slug", "kind", "x", "y", "width", "height", "doors", "capacity",
                  "assistant_enabled", *RETENTION_FIELDS]
        read_only_fields = ["id"]
        extra_kwargs = {"slug": {"required": False}, "office_map": {"required": True}}
        validators = []  # uniqueness and layout are checked by the service, with messages that say why


class RoomListApi(APIView):
    def get_permissions(self):
        return [IsAuthenticated(), IsAdminUser()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(responses=RoomSerializer(many=True),
                   parameters=[OpenApiParameter("map", int, description="only this map's rooms")])
    def get(self, request):
        rooms = selectors.rooms_visible_to(request.user).order_by("id")
        map_id = request.query_params.get("map")
        if map_id is not None:
            if (office_map_id := whole_number(map_id)) is None:
                raise ValidationError({"map": "must be a map id"})
            rooms = rooms.filter(office_map_id=office_map_id)
        return Response(RoomSerializer(rooms, many=True).data)

    @extend_schema(request=RoomSerializer, responses=RoomSerializer)
    def post(self, request):
        data = RoomSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        room = call_service(services.room_create, **data.validated_data)
        return Response(RoomSerializer(room).data, status=status.HTTP_201_CREATED)


class RoomDetailApi(APIView):
    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "GET" else [IsAuthenticated(), IsAdminUser()]

    def _room(self, request, room_id: int) -> Room:
        return call_service(selectors.room_get_administrable, user=request.user, room_id=room_id)

    @extend_schema(responses=RoomSerializer)
    def get(self, request, room_id: int):
        return Response(RoomSerializer(self._room(request, room_id)).data)

    @extend_schema(request=RoomSerializer(partial=True), responses=RoomSerializer)
    def patch(self, request, room_id: int):
        room = self._room(request, room_id)
        data = RoomSerializer(room, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k != "office_map"}
        room = call_service(services.room_update, room=room, **fields)
        return Response(RoomSerializer(room).data)

    @extend_schema(responses={204: None})
    def delete(self, request, room_id: int):
        call_service(services.room_delete, room=self._room(request, room_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RoomMembersApi(APIView):
    class InputSerializer(serializers.Serializer):
        users = serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=1000)

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "GET" else [IsAuthenticated(), IsAdminUser()]

    @extend_schema(responses=InputSerializer)
    def get(self, request, room_id: int):
        room = call_service(selectors.room_get_with_members_known, user=request.user, room_id=room_id)
        return Response({"users": sorted(room.memberships.values_list("user_id", flat=True))})

    @extend_schema(request=InputSerializer, responses=InputSerializer)
    def put(self, request, room_id: int):
        room = call_service(selectors.room_get_with_members_known, user=request.user, room_id=room_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response({"users": call_service(services.room_set_members, room=room, user_ids=data.validated_data["users"])})


class DeskIn(serializers.Serializer):
    label = serializers.CharField(max_length=60)
    x = serializers.IntegerField(**TILE)
    y = serializers.IntegerField(**TILE)
    owner = serializers.IntegerField(min_value=1, required=False, allow_null=True, help_text="a member's id")


def _desk_owner(fields: dict) -> dict:
    """`owner` as the active member it names (400 when there is none)."""
    if fields.get("owner") is not None:
        owner = get_user_model().objects.filter(pk=fields["owner"], is_active=True).first()
        if owner is None:
            raise ValidationError({"owner": "no such member"})
        fields["owner"] = owner
    return fields


class DeskListApi(APIView):
    """Place a desk on a map (admins)."""

    permission_classes = [IsAuthenticated, IsAdminUser]

    class InputSerializer(DeskIn):
        office_map = serializers.IntegerField(min_value=1, max_value=2**62)

    @extend_schema(request=InputSerializer, responses={201: DeskOut})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = _desk_owner(dict(data.validated_data))
        office_map = get_object_or_404(OfficeMap, pk=fields.pop("office_map"))
        desk = call_service(services.desk_create, office_map=office_map, **fields)
        return Response(DeskOut(desk).data, status=status.HTTP_201_CREATED)


class DeskDetailApi(APIView):
    """A desk; admins move, relabel, give or remove it."""

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "GET" else [IsAuthenticated(), IsAdminUser()]

    @extend_schema(responses=DeskOut)
    def get(self, request, desk_id: int):
        return Response(DeskOut(get_object_or_404(Desk, pk=desk_id)).data)

    @extend_schema(request=DeskIn(partial=True), responses=DeskOut)
    def patch(self, request, desk_id: int):
        desk = get_object_or_404(Desk, pk=desk_id)
        data = DeskIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        desk = call_service(services.desk_update, desk=desk, **_desk_owner(dict(data.validated_data)))
        return Response(DeskOut(desk).data)

    @extend_schema(responses={204: None})
    def delete(self, request, desk_id: int):
        call_service(services.desk_delete, desk=get_object_or_404(Desk, pk=desk_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ThreadListApi(APIView):
    @extend_schema(responses=ThreadSummaryOut(many=True))
    def get(self, request):
        return Response([s.as_dict() for s in selectors.thread_summaries_for(request.user)])


class ThreadMessagesApi(APIView):
    class InputSerializer(serializers.Serializer):
        body = serializers.CharField(max_length=20000, trim_whitespace=False)
        client_id = serializers.CharField(max_length=64, required=False, default="")

    class PageSerializer(serializers.Serializer):
        before = serializers.IntegerField(min_value=1, required=False)
        after = serializers.IntegerField(min_value=0, required=False)
        limit = serializers.IntegerField(min_value=1, max_value=200, required=False)

    @extend_schema(parameters=[PageSerializer], responses=inline_serializer("ChatPage", {
        "thread": serializers.IntegerField(), "last_seq": serializers.IntegerField(),
        "messages": ChatMessageOut(many=True), "more": serializers.BooleanField()}))
    def get(self, request, thread_id: int):
        thread = call_service(selectors.thread_for_user, request.user, thread_id)
        page = self.PageSerializer(data=request.query_params)
        page.is_valid(raise_exception=True)
        limit = page.validated_data.get("limit", settings.OFFICE_CHAT_PAGE_SIZE)
        if "after" in page.validated_data:
            messages = selectors.chat_messages_after(thread, page.validated_data["after"], limit)
            more = len(messages) == limit
        else:
            messages = selectors.chat_messages_before(thread, page.validated_data.get("before"), limit)
            more = bool(messages) and messages[0].seq > 1
        return Response({
            "thread": thread.id,
            "last_seq": thread.last_seq,
            "messages": [selectors.chat_message_payload(m) for m in messages],
            "more": more,
        })

    @extend_schema(request=InputSerializer, responses={201: ChatMessageOut, 200: ChatMessageOut})
    def post(self, request, thread_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message, created = call_service(services.chat_message_send, user=request.user, thread_id=thread_id, **data.validated_data)
        return Response(selectors.chat_message_payload(message),
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ThreadReadApi(APIView):
    class InputSerializer(serializers.Serializer):
        seq = serializers.IntegerField(min_value=0)

    @extend_schema(request=InputSerializer, responses=inline_serializer("ChatUnread", {
        "thread": serializers.IntegerField(), "unread": serializers.IntegerField()}))
    def post(self, request, thread_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        unread = call_service(services.chat_thread_mark_read, user=request.user, thread_id=thread_id,
                      seq=data.validated_data["seq"])
        return Response({"thread": thread_id, "unread": unread})


class DirectThreadApi(APIView):
    class InputSerializer(serializers.Serializer):
        user = serializers.IntegerField(min_value=1)

    @extend_schema(request=InputSerializer, responses={201: ThreadSummaryOut, 200: ThreadSummaryOut})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        thread, created = call_service(services.direct_thread_open, user=request.user, other_user_id=data.validated_data["user"])
        summary = next(s for s in selectors.thread_summaries_for(request.user) if s.id == thread.id)
        return Response(summary.as_dict(), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class AdminsSpeak(BasePermission):
    """Anyone signed in reads announcements; only admins make them (403 saying so)."""

    message = "only admins may use the megaphone"

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or bool(request.user and request.user.is_staff)


class AnnouncementsApi(APIView):
    """The megaphone: admins speak to a whole map or one room of it (any room, private ones included);
    everyone lists the recent announcements they may read. JSON for text only, multipart/form-data
    to attach a recorded clip (`audio`: Opus in WebM or Ogg, at most 30 s and 512 KiB)."""

    permission_classes = [IsAuthenticated, AdminsSpeak]
    parser_classes = [SafeJSONParser, MultiPartParser]

    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=services.ANNOUNCEMENT_MAX_CHARS)
        room = serializers.IntegerField(min_value=1, max_value=2**62, required=False, allow_null=True,
                                        help_text="a room of this map; empty: the whole map")
        duration_seconds = serializers.IntegerField(min_value=10, max_value=services.ANNOUNCEMENT_MAX_SECONDS,
                                                    required=False, default=services.ANNOUNCEMENT_DEFAULT_SECONDS,
                                                    help_text="how long the banner shows")

    class UploadSerializer(InputSerializer):
        audio = serializers.FileField(required=False, help_text="a recorded clip: Opus in WebM or Ogg, at most "
                                      f"{audio_clips.MAX_CLIP_SECONDS} s and {audio_clips.MAX_CLIP_BYTES // 1024} KiB")

    @extend_schema(responses=AnnouncementOut(many=True))
    def get(self, request, map_id: int):
        get_object_or_404(OfficeMap, pk=map_id)
        return Response(selectors.announcements_recent_for(request.user, map_id))

    @extend_schema(request={"application/json": InputSerializer, "multipart/form-data": UploadSerializer},
                   responses={201: AnnouncementOut})
    def post(self, request, map_id: int):
        office_map = get_object_or_404(OfficeMap, pk=map_id)
        data = self.UploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        room = None
        if fields.get("room") is not None:
            room = Room.objects.filter(pk=fields["room"], office_map=office_map).first()
            if room is None:
                raise ValidationError({"room": "no such room on this map"})
        audio = None
        if (upload := fields.get("audio")) is not None:
            if upload.size > audio_clips.MAX_CLIP_BYTES:
                raise ValidationError({"audio": f"the audio clip is larger than {audio_clips.MAX_CLIP_BYTES // 1024} "
                                                f"KiB; record at most {audio_clips.MAX_CLIP_SECONDS} seconds"})
            audio = upload.read(audio_clips.MAX_CLIP_BYTES + 1)
        announcement = call_service(services.announcement_make, author=request.user, office_map=office_map,
                                    text=fields["text"], room=room, audio=audio,
                                    duration_seconds=fields["duration_seconds"])
        return Response(selectors.announcement_payload(announcement), status=status.HTTP_201_CREATED)


class AnnouncementAudioApi(APIView):
    """An announcement's recorded clip, for whoever may read the announcement."""

    @extend_schema(responses={(200, "audio/webm"): OpenApiResponse(OpenApiTypes.BINARY),
                              (200, "audio/ogg"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, map_id: int, announcement_id: int):
        announcement = call_service(selectors.announcement_audio_for, request.user, office_map_id=map_id,
                                    announcement_id=announcement_id)
        response = HttpResponse(bytes(announcement.audio), content_type=announcement.audio_type)
        response["Cache-Control"] = "private, max-age=3600"
        return response
