"""Reads for the run history, the approvals inbox, the notification inbox and the connector checks."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Prefetch

from .models import (
    Approval,
    ConnectorCheck,
    Notification,
    SideEffect,
    WorkflowEvent,
    WorkflowRun,
    WorkflowStep,
    WorkflowStepAttempt,
)


class NotFound(ObjectDoesNotExist):
    pass


def runs_list(*, status: str | None = None, name: str | None = None, limit: int = 200):
    runs = WorkflowRun.objects.select_related("started_by").order_by("-created_at", "-id")
    if status:
        runs = runs.filter(status=status)
    if name:
        runs = runs.filter(name=name)
    return runs[:limit]


def run_get(run_id: int) -> WorkflowRun:
    run = WorkflowRun.objects.select_related("started_by").filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"no workflow run {run_id}")
    return run


def run_by_key(idempotency_key: str) -> WorkflowRun | None:
    return WorkflowRun.objects.filter(idempotency_key=idempotency_key).first()


def run_stuck_step(run: WorkflowRun, *, lock: bool = False) -> WorkflowStep | None:
    """The step an operator can act on: failed, failed while undoing, or waiting for a retry.
    The operator actions pass lock=True (inside their transaction) to hold it while they change it."""
    steps = WorkflowStep.objects.filter(run=run)
    if lock:
        steps = steps.select_for_update()
    if run.status == WorkflowRun.Status.FAILED:
        return steps.filter(status__in=[WorkflowStep.Status.FAILED, WorkflowStep.Status.COMPENSATING]).order_by(
            "-index").first()
    if run.status == WorkflowRun.Status.RUNNING:
        return (steps.filter(status=WorkflowStep.Status.PENDING, attempts__gt=0).exclude(last_error="")
                .order_by("index").first())
    return None


def run_actions(run: WorkflowRun) -> list[str]:
    """The safe next actions for an operator, in the order the page shows them."""
    actions = []
    if run_stuck_step(run) is not None:
        actions += ["retry", "skip"]
    if run.status in WorkflowRun.CANCELLABLE:
        actions.append("cancel")
    return actions


def run_problem(run: WorkflowRun) -> dict | None:
    """What went wrong and what to do about it, in words for the run page."""
    stuck = run_stuck_step(run)
    if stuck is None:
        if run.status == WorkflowRun.Status.WAITING_APPROVAL:
            return {"step": None, "error": "", "advice": "Waiting for a person to approve; see the approvals inbox."}
        return None
    undoing = stuck.status == WorkflowStep.Status.COMPENSATING
    if run.status == WorkflowRun.Status.RUNNING:
        advice = ("It will be tried again automatically at the time shown; Retry tries now, Skip carries on "
                  "without it, Cancel undoes what was done.")
    elif undoing:
        advice = ("Undoing this step failed. Fix the cause and Retry, or Skip to leave it as it is and undo "
                  "the rest.")
    else:
        advice = "Fix the cause and Retry, Skip the step and carry on, or Cancel to undo what was done."
    return {"step": stuck, "error": stuck.last_error, "advice": advice, "undoing": undoing}


def run_detail(run: WorkflowRun) -> dict:
    steps = list(
        WorkflowStep.objects.filter(run=run).order_by("index").prefetch_related(
            Prefetch("attempt_log", queryset=WorkflowStepAttempt.objects.order_by("id")))
    )
    return {
        "run": run,
        "steps": steps,
        "events": list(WorkflowEvent.objects.filter(run=run).select_related("actor", "step").order_by("id")),
        "approvals": list(Approval.objects.filter(run=run).select_related("decided_by", "assignee", "step")),
        "side_effects": list(SideEffect.objects.filter(run=run).order_by("step_index", "id")),
        "actions": run_actions(run),
        "problem": run_problem(run),
    }


def status_counts() -> dict[str, int]:
    from django.db.models import Count

    return dict(WorkflowRun.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))


def approvals_for(user, *, decision: str | None = Approval.Decision.PENDING, limit: int = 200):
    """Approvals a member may see: those assigned to them; admins see all."""
    approvals = Approval.objects.select_related("run", "step", "assignee", "decided_by")
    if not user.is_staff:
        approvals = approvals.filter(assignee=user)
    if decision:
        approvals = approvals.filter(decision=decision)
    return approvals.order_by("-requested_at", "-id")[:limit]


def approval_get_for(user, approval_id: int) -> Approval:
    approval = Approval.objects.select_related("run", "step").filter(pk=approval_id).first()
    if approval is None or not (user.is_staff or approval.assignee_id == user.pk):
        raise NotFound(f"no approval {approval_id}")  # not yours looks the same as missing
    return approval


def notifications_for(user, *, unread_only: bool = False, limit: int = 50):
    notifications = Notification.objects.filter(user=user)
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    return notifications.order_by("-created_at", "-id")[:limit]


def notifications_unread_count(user) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def connector_checks_latest() -> list[ConnectorCheck]:
    """The newest check of every connector target, failing ones first (one query)."""
    rows = list(ConnectorCheck.objects.order_by("connector", "target", "-checked_at", "-id")
                .distinct("connector", "target"))
    rows.sort(key=lambda row: (row.ok, row.connector, row.target))
    return rows
