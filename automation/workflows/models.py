"""Workflow state in PostgreSQL: runs, steps, attempts, the side-effect ledger, the outbox,
approvals, the audit trail, and the connectors' own records (notifications, webhooks)."""

from __future__ import annotations

import base64
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class WorkflowRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        WAITING_APPROVAL = "waiting_approval", "Waiting for approval"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        COMPENSATING = "compensating", "Compensating"
        COMPENSATED = "compensated", "Compensated"
        CANCELLED = "cancelled", "Cancelled"

    FINAL = (Status.SUCCEEDED, Status.COMPENSATED, Status.CANCELLED)
    # What an operator may still cancel (a failed run: its remaining undo is given up).
    CANCELLABLE = (Status.PENDING, Status.RUNNING, Status.WAITING_APPROVAL, Status.FAILED)

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    input = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # What a compensation ends in: "compensated" after a failure, "cancelled" after a cancel/rejection.
    end_status = models.CharField(max_length=20, choices=Status.choices, blank=True)
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "-created_at"], name="wf_run_status_created")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} #{self.pk} ({self.status})"


class WorkflowStep(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        WAITING_APPROVAL = "waiting_approval", "Waiting for approval"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        CANCELLED = "cancelled", "Cancelled"
        COMPENSATING = "compensating", "Compensating"
        COMPENSATED = "compensated", "Compensated"

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Due time of the next attempt; NULL while an earlier step has not finished.
    next_retry_at = models.DateTimeField(null=True, blank=True)
    # The claim of the attempt in flight: only its holder may record the outcome; after
    # lease_until the attempt counts as lost (worker died) and the step may be claimed again.
    claim = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    approved = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run_id", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="wf_step_unique_index")]
        indexes = [
            models.Index(fields=["next_retry_at"], name="wf_step_due",
                         condition=Q(status__in=["pending", "compensating"])),
            models.Index(fields=["lease_until"], name="wf_step_lease", condition=Q(status__in=["running", "compensating"])),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.index} {self.name} ({self.status})"


class WorkflowStepAttempt(models.Model):
    """One row per attempt, so the history shows every try, including those a dying worker lost."""

    class Kind(models.TextChoices):
        ACTION = "action", "Action"
        COMPENSATION = "compensation", "Compensation"

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        RETRY = "retry", "Failed, will retry"
        FAILED = "failed", "Failed for good"
        POSTPONED = "postponed", "Postponed (connector unavailable)"
        LOST = "lost", "Lost (worker stopped mid-step)"
        SUPERSEDED = "superseded", "Superseded (a later attempt took over)"

    step = models.ForeignKey(WorkflowStep, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ACTION)
    claim = models.UUIDField()
    # When the message that started this attempt was sent (the step's due or re-enqueue time). The
    # newest of these tells the tick how far the FIFO queue has been consumed.
    sent_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["step_id", "id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of step {self.step_id}: {self.outcome}"


class SideEffect(models.Model):
    """The ledger: one row per side effect a step performed, unique per (run, step, name). A step
    that runs again finds the row and does not perform the effect a second time."""

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="side_effects")
    step_index = models.PositiveIntegerField()
    name = models.CharField(max_length=120)
    connector = models.CharField(max_length=50)
    idempotency_key = models.CharField(max_length=64, unique=True)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run_id", "step_index", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "step_index", "name"], name="wf_effect_unique")]

    def __str__(self) -> str:
        return self.idempotency_key


class OutboxMessage(models.Model):
    """Work to hand to Celery, written in the transaction that made it due. The relay enqueues and
    deletes rows; a row left behind by a crash is picked up by the periodic tick."""

    class Kind(models.TextChoices):
        STEP_EXECUTE = "step.execute", "Execute a step"

    kind = models.CharField(max_length=40, choices=Kind.choices)
    payload = models.JSONField(default=dict)
    available_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["available_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.payload}"


class WorkflowEvent(models.Model):
    """Audit trail of a run: starts, failures, decisions and operator actions, with who and why."""

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="events")
    step = models.ForeignKey(WorkflowStep, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    action = models.CharField(max_length=40)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run_id", "id"]

    def __str__(self) -> str:
        return f"{self.action} on run {self.run_id}"


class Approval(models.Model):
    class Decision(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn (run cancelled)"

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="approvals")
    step = models.OneToOneField(WorkflowStep, on_delete=models.CASCADE, related_name="approval")
    summary = models.TextField()
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+", help_text="empty: any admin decides")
    requested_at = models.DateTimeField(auto_now_add=True)
    decision = models.CharField(max_length=16, choices=Decision.choices, default=Decision.PENDING)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["decision", "-requested_at"], name="wf_approval_decision")]

    def __str__(self) -> str:
        return f"approval #{self.pk} ({self.decision})"


class Notification(models.Model):
    """A member's personal inbox entry."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    run = models.ForeignKey(WorkflowRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="wf_notification_inbox")]

    def __str__(self) -> str:
        return self.title


def webhook_secret_new() -> str:
    """A Standard Webhooks secret: whsec_ + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookEndpoint(models.Model):
    """An admin-configured receiver; only these URLs are ever called."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=100, default=webhook_secret_new)
    event_types = models.JSONField(default=list, blank=True,
                                   help_text='event types to send, e.g. ["task.created"]; "*" for all')
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.description or self.url

    def wants(self, event_type: str) -> bool:
        for pattern in self.event_types or []:
            if pattern == "*" or pattern == event_type:
                return True
            if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
                return True
        return False


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    message_id = models.CharField(max_length=64, help_text="webhook-id header: receivers de-duplicate on it")
    event_type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "message_id"], name="wf_webhook_delivery_unique")]

    def __str__(self) -> str:
        return f"{self.event_type} to endpoint {self.endpoint_id} ({self.status})"


class ConnectorCheck(models.Model):
    """One synthetic check of an outbound connector target (docs/adr/0017). The newest row per
    (connector, target) is that target's state; older rows are its recent history, pruned as checks run."""

    class Reason(models.TextChoices):
        CONFIG = "config", "Configuration saved"
        SCHEDULE = "schedule", "Scheduled"
        MANUAL = "manual", "Run by hand"

    connector = models.CharField(max_length=40)  # webhook, email, room_chat, calendar_feed, model_endpoint
    target = models.CharField(max_length=100)  # an endpoint or feed id, a model tier, "default"
    # What a person recognises (description, host); never a whole URL, which may hold a token.
    label = models.CharField(max_length=300, blank=True)
    ok = models.BooleanField()
    latency_ms = models.FloatField()
    detail = models.TextField(blank=True)
    # The connector's breaker after the check ("" when live work reaches it without one).
    breaker_state = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.SCHEDULE)
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["connector", "target", "-checked_at", "-id"]
        indexes = [models.Index(fields=["connector", "target", "-checked_at"], name="wf_check_latest")]

    def __str__(self) -> str:
        return f"{self.connector} {self.target}: {'ok' if self.ok else 'failing'}"
