"""The canonical work state: tasks, tickets, reminders, digests, members' free/busy time, and the
audit log that records every change to them.

Rows change only through `automation.services`, which writes an `AuditEntry` in the same
transaction as the change and announces it after commit.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Task(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    class SourceKind(models.TextChoices):
        MANUAL = "manual", "Created by hand"
        ACTION_ITEM = "action_item", "Meeting action item"
        TICKET = "ticket", "Facilities ticket"
        RULE = "rule", "Automation rule"

    ACTIVE_STATUSES = (Status.OPEN, Status.IN_PROGRESS)

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_tasks"
    )
    assigned_at = models.DateTimeField(null=True, blank=True, help_text="when the current owner got the task")
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    room = models.ForeignKey("rooms.Room", null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks")
    source_kind = models.CharField(max_length=16, choices=SourceKind.choices, default=SourceKind.MANUAL)
    source_id = models.CharField(max_length=64, blank=True, default="")
    provenance = models.JSONField(
        default=dict, blank=True,
        help_text='where the task came from: {"action_item": id, "segments": [...], "model_id": ..., "prompt_version": ...}',
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="created_tasks"
    )
    created_by_label = models.CharField(max_length=120, blank=True, default="", help_text="automation that made it")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # One task per source object (an action item approved twice still makes one task).
            models.UniqueConstraint(
                fields=["source_kind", "source_id"], condition=~Q(source_id=""), name="task_source_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "status", "due_date"], name="task_owner_status_due_idx"),
            models.Index(fields=["room", "-created_at"], name="task_room_created_idx"),
        ]
        ordering = ["due_date", "id"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class Ticket(models.Model):
    class Kind(models.TextChoices):
        FACILITIES = "facilities", "Facilities"
        IT = "it", "IT"

    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    # A ticket is "open" for de-duplication until someone resolves it.
    OPEN_STATUSES = (Status.OPEN, Status.ACKNOWLEDGED)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    room = models.ForeignKey("rooms.Room", null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.MEDIUM)
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    dedupe_key = models.CharField(
        max_length=200, blank=True, default="", help_text="a rule firing twice with the same key opens one ticket"
    )
    source = models.CharField(max_length=120, help_text='who opened it: "rule:projector-offline", "member:bob"')
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="opened_tickets"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=Q(status__in=["open", "acknowledged"]) & ~Q(dedupe_key=""),
                name="ticket_dedupe_key_unique_while_open",
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="ticket_status_created_idx")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class Reminder(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="reminders")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminders")
    remind_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["task", "user"], condition=Q(status="scheduled"), name="reminder_one_scheduled_per_task_user"
            ),
        ]
        indexes = [models.Index(fields=["status", "remind_at"], name="reminder_status_due_idx")]
        ordering = ["remind_at", "id"]

    def __str__(self) -> str:
        return f"remind {self.user} of task {self.task_id} at {self.remind_at:%Y-%m-%d %H:%M}"


class Digest(models.Model):
    """One member's daily summary: what is due, what was assigned to them, what they missed."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="digests")
    date = models.DateField()
    content = models.JSONField(default=dict)
    text = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "date"], name="digest_unique_per_user_date")]
        ordering = ["-date", "user_id"]

    def __str__(self) -> str:
        return f"digest for {self.user} on {self.date}"


class AuditEntry(models.Model):
    """Who (a person, or an automation's label) changed which work object, why, from what to what."""

    subject_type = models.CharField(max_length=32)
    subject_id = models.BigIntegerField()
    action = models.CharField(max_length=32)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    actor_label = models.CharField(
        max_length=120, help_text='"alice", "rule:projector-offline", "workflow:task.remind step 2", "approval #12"'
    )
    reason = models.TextField(blank=True, default="")
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["subject_type", "subject_id", "at"], name="audit_subject_idx")]
        ordering = ["at", "id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.subject_type}#{self.subject_id}"


class CalendarFeed(models.Model):
    """Where a member's busy times come from: an uploaded ICS file, or an http(s) feed an admin set up."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feeds")
    name = models.CharField(max_length=120, blank=True, default="")
    url = models.URLField(max_length=500, blank=True, default="")
    content = models.TextField(blank=True, default="", help_text="uploaded ICS text (when there is no URL)")
    configured_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_imported_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(url="") | ~Q(content=""), name="calendar_feed_has_source"),
        ]

    def __str__(self) -> str:
        return self.name or f"calendar of {self.user}"


class BusyInterval(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="busy_intervals")
    feed = models.ForeignKey(CalendarFeed, null=True, blank=True, on_delete=models.CASCADE, related_name="intervals")
    start = models.DateTimeField()
    end = models.DateTimeField()
    source = models.CharField(max_length=255, blank=True, default="", help_text="feed and event UID")

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(end__gt=F("start")), name="busy_interval_positive")]
        indexes = [models.Index(fields=["user", "start"], name="busy_user_start_idx")]
        ordering = ["user_id", "start"]

    def __str__(self) -> str:
        return f"{self.user} busy {self.start:%Y-%m-%d %H:%M}-{self.end:%H:%M}"
