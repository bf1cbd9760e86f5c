"""Sensors in rooms, their readings, the rules that watch them, and room bookings.

Rule timers live in `RuleState` rows, never only in memory: a reading moves a state forward and
sets `due_at`; the beat task fires whatever is due. A restart of the ingester or the worker
therefore loses no timer. `RuleFiring` is the episode's record: one row per (rule, sensor,
episode start), created in the same transaction as the ticket and the chat message, so an episode
fires exactly once however often the evaluator runs.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


def default_topic(device_id: str) -> str:
    return f"{settings.OFFICE_IOT_TOPIC_PREFIX}/{device_id}"


class Sensor(models.Model):
    class Kind(models.TextChoices):
        OCCUPANCY = "occupancy", "Occupancy"
        PROJECTOR = "projector", "Projector / display"
        TEMPERATURE = "temperature", "Temperature"
        DOOR = "door", "Door"

    # A sensor outlives its room: history stays, and rules on it are skipped with a reason.
    room = models.ForeignKey("rooms.Room", null=True, blank=True, on_delete=models.SET_NULL, related_name="sensors")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=120)
    device_id = models.SlugField(max_length=64, unique=True, help_text="letters, digits, - and _")
    mqtt_topic = models.CharField(max_length=200, blank=True, default="",
                                  help_text="empty: <OFFICE_IOT_TOPIC_PREFIX>/<device_id>")
    mqtt_username = models.CharField(max_length=80, unique=True)
    mqtt_password_hash = models.CharField(max_length=200, editable=False)
    # Encrypted at rest (iot/credentials.py); the plain secret is shown once, at creation or rotation.
    webhook_secret_encrypted = models.TextField(editable=False)
    credentials_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    last_state = models.JSONField(null=True, blank=True, editable=False)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room_id", "kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["mqtt_topic"], condition=~Q(mqtt_topic=""), name="sensor_topic_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.device_id})"

    @property
    def topic(self) -> str:
        """Where it publishes: its own topic, else the default one for its device id."""
        return self.mqtt_topic or default_topic(self.device_id)


class SensorReading(models.Model):
    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="readings")
    value = models.JSONField()
    received_at = models.DateTimeField(db_index=True)
    measured_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=8, choices=[("mqtt", "MQTT"), ("webhook", "Webhook")])
    # The device's message id when it sends one: a redelivered QoS 1 message is stored once.
    message_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["sensor", "-received_at"])]
        constraints = [
            models.UniqueConstraint(fields=["sensor", "message_id"], condition=~Q(message_id=""),
                                    name="sensor_reading_message_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.sensor_id} at {self.received_at:%H:%M:%S}"


class Rule(models.Model):
    """Condition on one sensor, on sensors of a kind in a room, or on every sensor of a kind."""

    class Scope(models.TextChoices):
        SENSOR = "sensor", "One sensor"
        ROOM = "room", "Sensors of a kind in a room"
        KIND = "kind", "Every sensor of a kind"

    class Op(models.TextChoices):
        IN = "in", "is one of"
        NOT_IN = "not_in", "is none of"
        EQ = "eq", "=="
        NE = "ne", "!="
        GT = "gt", ">"
        GE = "ge", ">="
        LT = "lt", "<"
        LE = "le", "<="
        OVER_CAPACITY = "over_capacity", "count > room capacity"

    class Action(models.TextChoices):
        FACILITIES_TICKET = "facilities_ticket", "Open a facilities ticket and tell the room's chat"
        SUGGEST_ROOM = "suggest_room", "Suggest a free room to a booked meeting"
        NOTHING = "nothing", "Record only"

    name = models.CharField(max_length=120)
    builtin_key = models.CharField(max_length=40, null=True, blank=True, unique=True, editable=False)
    scope = models.CharField(max_length=8, choices=Scope.choices)
    sensor = models.ForeignKey(Sensor, null=True, blank=True, on_delete=models.SET_NULL, related_name="rules")
    room = models.ForeignKey("rooms.Room", null=True, blank=True, on_delete=models.SET_NULL, related_name="iot_rules")
    sensor_kind = models.CharField(max_length=16, choices=Sensor.Kind.choices)
    field = models.CharField(max_length=32, help_text="which value field the condition reads (state, count, celsius...)")
    op = models.CharField(max_length=16, choices=Op.choices)
    value = models.JSONField(null=True, blank=True, help_text="a list for in/not_in, a number or text otherwise")
    for_seconds = models.PositiveIntegerField(default=0, help_text="the condition must hold this long")
    # Hysteresis: empty clear condition means "the condition no longer holds".
    clear_op = models.CharField(max_length=16, choices=Op.choices, blank=True, default="")
    clear_value = models.JSONField(null=True, blank=True)
    clear_for_seconds = models.PositiveIntegerField(default=60, help_text="the clear condition must hold this long")
    action = models.CharField(max_length=24, choices=Action.choices, default=Action.FACILITIES_TICKET)
    severity = models.CharField(max_length=16, default="medium", choices=[
        ("low", "Low"), ("medium", "Medium"), ("high", "High"), ("critical", "Critical")])
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class RuleState(models.Model):
    """Where one rule stands for one sensor; `due_at` is the next moment the evaluator must look."""

    class Phase(models.TextChoices):
        IDLE = "idle", "Idle"
        PENDING = "pending", "Condition holds, waiting for its duration"
        FIRED = "fired", "Fired; episode open"
        CLEARING = "clearing", "Clearing, waiting for the clear duration"

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="states")
    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="rule_states")
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.IDLE)
    condition_since = models.DateTimeField(null=True, blank=True)
    fired_at = models.DateTimeField(null=True, blank=True)
    cleared_since = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "sensor"], name="rule_state_unique")]
        indexes = [models.Index(fields=["due_at"], condition=Q(due_at__isnull=False), name="rule_state_due")]

    def __str__(self) -> str:
        return f"rule {self.rule_id} / sensor {self.sensor_id}: {self.phase}"


class RuleFiring(models.Model):
    """One episode of a rule on a sensor: written with its side effects, so it happens once."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="firings")
    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="firings")
    room = models.ForeignKey("rooms.Room", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    episode_start = models.DateTimeField()
    fired_at = models.DateTimeField(auto_now_add=True)
    dedupe_key = models.CharField(max_length=120, unique=True)
    outcome = models.CharField(max_length=300, blank=True, default="")
    ticket_id = models.BigIntegerField(null=True, blank=True)
    chat_message_id = models.BigIntegerField(null=True, blank=True)
    suggested_room = models.ForeignKey("rooms.Room", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")

    class Meta:
        ordering = ["-fired_at"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "sensor", "episode_start"], name="rule_firing_once_per_episode"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} on {self.sensor_id} from {self.episode_start:%H:%M:%S}"


class RoomBooking(models.Model):
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="bookings")
    title = models.CharField(max_length=200)
    organizer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_bookings")
    start = models.DateTimeField()
    end = models.DateTimeField()

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["room", "start", "end"])]
        constraints = [models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="room_booking_ends_after_start")]

    def __str__(self) -> str:
        return f"{self.title} in {self.room_id} {self.start:%H:%M}-{self.end:%H:%M}"


class Agenda(models.Model):
    """The agenda of a booked meeting: drafted from the room's open work OFFICE_AGENDA_LEAD_MINUTES
    before it starts, posted to the room's chat once, then edited by its participants.

    `items` is a list of `{"kind": action_item | question | document | custom, "text", "ref", "url"}`
    (`ref`: the action item, meeting or document id; `url`: a link inside the office, or "").
    `version` grows by one with each edit: an edit names the version it started from and is refused
    (409) when someone saved in between, so nobody overwrites what they never saw (docs/adr/0021).
    """

    class ItemKind(models.TextChoices):
        ACTION_ITEM = "action_item", "Open action item"
        QUESTION = "question", "Open question of the last meeting"
        DOCUMENT = "document", "Document added since the last meeting"
        CUSTOM = "custom", "Added by a participant"

    # One agenda per booking (the database holds it): the tick that drafts it may run twice.
    booking = models.OneToOneField(RoomBooking, on_delete=models.CASCADE, related_name="agenda")
    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="agendas")
    title = models.CharField(max_length=200)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    items = models.JSONField(default=list, blank=True)
    version = models.PositiveIntegerField(default=1)
    drafted_at = models.DateTimeField(auto_now_add=True)
    edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    edited_at = models.DateTimeField(null=True, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True, help_text="when it was posted to the room's chat")
    chat_message_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["room", "ends_at"], name="agenda_room_ends_idx")]

    def __str__(self) -> str:
        return f"agenda of {self.title} in {self.room_id} at {self.starts_at:%Y-%m-%d %H:%M}"
