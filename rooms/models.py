"""The office map, its rooms and desks, members' profiles, and chat.

Chat rows are the record: live delivery is only a nudge carrying the per-thread sequence number
assigned here, so a reconnecting client can ask for exactly what it missed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Profile(models.Model):
    class Status(models.TextChoices):
        AVAILABLE = "available", "Available"
        BUSY = "busy", "Busy"
        AWAY = "away", "Away"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    display_name = models.CharField(max_length=80)
    color = models.CharField(max_length=7, default="#4f7cff")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.AVAILABLE)
    # The `sub` claim of this member's account at the single sign-on provider (docs/adr/0016): the one
    # thing that names them there for good; e-mail and usernames can change or be reused.
    oidc_subject = models.CharField(max_length=255, unique=True, null=True, blank=True, default=None)

    def __str__(self) -> str:
        return self.display_name

    @property
    def role(self) -> str:
        return "admin" if self.user.is_staff else "member"


def display_name(user) -> str:
    """How the office names a member: their profile's name, else their username."""
    try:
        return user.profile.display_name
    except Profile.DoesNotExist:
        return user.get_username()


RETENTION_KINDS = ("transcripts", "chat", "documents", "audio", "model_calls")
RETENTION_FIELDS = [f"keep_{kind}_days" for kind in RETENTION_KINDS]


def _keep_days(kind: str) -> models.PositiveIntegerField:
    return models.PositiveIntegerField(
        null=True, blank=True,
        help_text=f"days to keep {kind}; empty: the map's policy (for a room), then the site default")


class RetentionPolicy(models.Model):
    """How long a room's records are kept, in days (`keep_<kind>_days`); empty falls back to the
    map's policy, then to the OFFICE_RETENTION_<KIND>_DAYS setting (rooms.selectors.retention_days)."""

    keep_transcripts_days = _keep_days("transcripts")
    keep_chat_days = _keep_days("chat")
    keep_documents_days = _keep_days("documents")
    keep_audio_days = _keep_days("meeting audio")
    keep_model_calls_days = _keep_days("model-call records")

    class Meta:
        abstract = True


class OfficeMap(RetentionPolicy):
    """A floor: a grid of tiles; rooms are rectangles on it. Its retention policy is its rooms' default."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(unique=True)
    width = models.PositiveIntegerField(help_text="tiles")
    height = models.PositiveIntegerField(help_text="tiles")
    spawn_x = models.PositiveIntegerField()
    spawn_y = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(width__gte=8, width__lte=512), name="map_width_range"),
            models.CheckConstraint(condition=Q(height__gte=8, height__lte=512), name="map_height_range"),
        ]

    def __str__(self) -> str:
        return self.name


class Room(RetentionPolicy):
    """A named area. Meeting and private rooms are walled (the rectangle's edge) with door tiles.
    Its retention policy overrides its map's, field by field."""

    class Kind(models.TextChoices):
        OPEN = "open", "Open area"
        MEETING = "meeting", "Meeting room"
        PRIVATE = "private", "Private room"

    office_map = models.ForeignKey(OfficeMap, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(max_length=120)
    slug = models.SlugField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OPEN)
    x = models.PositiveIntegerField()
    y = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    doors = models.JSONField(default=list, blank=True, help_text="list of [x, y] tiles on the room's edge")
    capacity = models.PositiveIntegerField(null=True, blank=True, help_text="empty: no limit")
    assistant_enabled = models.BooleanField(default=False)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="RoomMembership", related_name="member_rooms", blank=True
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["office_map", "slug"], name="room_slug_unique_per_map"),
            models.CheckConstraint(condition=Q(width__gte=1, height__gte=1), name="room_size_positive"),
        ]
        ordering = ["office_map_id", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_walled(self) -> bool:
        return self.kind != self.Kind.OPEN


class RoomMembership(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_memberships")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="room_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.room}"


class Desk(models.Model):
    office_map = models.ForeignKey(OfficeMap, on_delete=models.CASCADE, related_name="desks")
    label = models.CharField(max_length=60)
    x = models.PositiveIntegerField()
    y = models.PositiveIntegerField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="desks"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["office_map", "x", "y"], name="desk_tile_unique")]

    def __str__(self) -> str:
        return self.label


class ChatThread(models.Model):
    """A conversation: one per room, or a direct conversation between two members."""

    class Kind(models.TextChoices):
        ROOM = "room", "Room chat"
        DIRECT = "direct", "Direct message"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    room = models.OneToOneField(Room, null=True, blank=True, on_delete=models.CASCADE, related_name="chat_thread")
    direct_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    participants = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="direct_threads", blank=True)
    last_seq = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="room", room__isnull=False, direct_key__isnull=True))
                | Q(kind="direct", room__isnull=True, direct_key__isnull=False),
                name="chat_thread_kind_shape",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} thread {self.pk}"


class ChatMessage(models.Model):
    thread = models.ForeignKey(ChatThread, on_delete=models.CASCADE, related_name="messages")
    seq = models.BigIntegerField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="chat_messages")
    body = models.TextField()
    client_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["thread", "seq"], name="chat_message_seq_unique"),
            models.UniqueConstraint(
                fields=["thread", "author", "client_id"],
                condition=~Q(client_id=""),
                name="chat_message_client_id_unique",
            ),
        ]
        ordering = ["thread_id", "seq"]

    def __str__(self) -> str:
        return f"#{self.seq} in thread {self.thread_id}"


class ChatReadState(models.Model):
    thread = models.ForeignKey(ChatThread, on_delete=models.CASCADE, related_name="read_states")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_read_states")
    last_read_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["thread", "user"], name="chat_read_state_unique")]

    def __str__(self) -> str:
        return f"{self.user} read thread {self.thread_id} to #{self.last_read_seq}"


class RoomVisit(models.Model):
    """Who was in which room when: the record behind meetings and "what happened since I was here"."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="visits")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_visits")
    entered_at = models.DateTimeField(auto_now_add=True)
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["room", "left_at"]), models.Index(fields=["user", "room", "-entered_at"])]
        constraints = [
            models.UniqueConstraint(fields=["user"], condition=Q(left_at__isnull=True), name="one_open_visit_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.room} from {self.entered_at:%H:%M}"


class ApiToken(models.Model):
    """A member's key for scripts and integrations on the REST API (never the socket). Only a hash
    is stored; the token is shown once. Rows are kept after revocation: they are the audit trail."""

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Read and write"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=80)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(max_length=12, unique=True, help_text="the token's public start, to find it")
    token_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class Announcement(models.Model):
    """An admin's megaphone message to a whole map or one room: stored before it is announced, so the
    record (and the list of recent announcements) never misses one that pages were shown."""

    office_map = models.ForeignKey(OfficeMap, on_delete=models.CASCADE, related_name="announcements")
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.CASCADE, related_name="announcements",
                             help_text="empty: the whole map")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="announcements")
    text = models.CharField(max_length=500)
    # A short recorded clip (Opus in WebM or Ogg, size-capped by rooms.megaphone): kept in the row,
    # like uploaded documents, so a backup holds it and no media storage is needed.
    audio = models.BinaryField(null=True, blank=True, editable=False)
    audio_type = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    ends_at = models.DateTimeField(help_text="the banner shows until then")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["office_map", "-created_at"])]

    def __str__(self) -> str:
        return f"announcement {self.pk} on map {self.office_map_id}"


class RoomKnock(models.Model):
    """Someone at a private room's door asked to come in. The first member to answer decides; an
    answer after `rooms.services.KNOCK_ANSWER_SECONDS` is refused and the knock lapses."""

    class Answer(models.TextChoices):
        LET_IN = "let_in", "Let in"
        IGNORED = "ignored", "Ignored"
        UNANSWERED = "unanswered", "No one answered"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="knocks")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_knocks")
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    answer = models.CharField(max_length=16, choices=Answer.choices, blank=True, default="")
    answered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    class Meta:
        indexes = [models.Index(fields=["user", "room", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.user} knocking on {self.room}"


class RoomGuestPass(models.Model):
    """A member let a non-member into a private room: counts as membership for entering, seeing and
    hearing inside (not for the room's chat and records) until it expires or the guest walks out."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="guest_passes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_guest_passes")
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    knock = models.ForeignKey(RoomKnock, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True, help_text="the guest left the room")

    class Meta:
        indexes = [models.Index(fields=["user", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.user} guest in {self.room}"
