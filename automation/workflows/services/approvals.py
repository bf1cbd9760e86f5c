"""Approvals: ask the assignee (or admins) first; approving resumes the run, rejecting undoes it."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from .. import definitions
from ..context import StepContext
from ..inbox import notification_create
from ..models import Approval, WorkflowRun, WorkflowStep
from .outbox import _schedule
from .state import _event, _stop_run

logger = logging.getLogger(__name__)

Run = WorkflowRun.Status
Step = WorkflowStep.Status


def _approval_request(run: WorkflowRun, step: WorkflowStep, spec: definitions.StepSpec, ctx: StepContext) -> None:
    from django.contrib.auth import get_user_model

    try:
        summary = spec.summary_for(ctx)
    except Exception:
        logger.exception("approval summary of %s failed", spec.name)
        summary = f"{run.name}: {spec.name}"
    assignee_id = spec.approver(ctx) if spec.approver else None
    approval, created = Approval.objects.get_or_create(
        step=step, defaults={"run": run, "summary": summary[:4000], "assignee_id": assignee_id})
    step.status = Step.WAITING_APPROVAL
    step.save(update_fields=["status", "updated_at"])
    run.status = Run.WAITING_APPROVAL
    run.save(update_fields=["status", "updated_at"])
    if not created:
        return
    _event(run, "approval_requested", step=step, note=approval.summary)
    User = get_user_model()
    deciders = (User.objects.filter(pk=assignee_id, is_active=True) if assignee_id
                else User.objects.filter(is_staff=True, is_active=True))
    for user in deciders:
        notification_create(user=user, title="Approval needed", body=approval.summary,
                            url="/workflows/approvals/", idempotency_key=f"approval.{approval.pk}.{user.pk}",
                            run_id=run.pk)


def approval_can_decide(approval: Approval, user) -> bool:
    return bool(user.is_authenticated and (user.is_staff or approval.assignee_id == user.pk))


def approval_decide(approval: Approval, user, approve: bool, note: str = "") -> Approval:
    """Approve (the step runs) or reject (the run is undone and cancelled). Decided once, audited."""
    if not approval_can_decide(approval, user):
        raise PermissionDenied("only the assignee or an admin can decide this approval")
    note = (note or "").strip()[:2000]
    with transaction.atomic():
        approval = Approval.objects.select_for_update().get(pk=approval.pk)
        if approval.decision != Approval.Decision.PENDING:
            raise ValidationError(f"this approval was already decided ({approval.decision})")
        run = WorkflowRun.objects.select_for_update().get(pk=approval.run_id)
        step = WorkflowStep.objects.select_for_update().get(pk=approval.step_id)
        approval.decision = Approval.Decision.APPROVED if approve else Approval.Decision.REJECTED
        approval.decided_by, approval.decided_at, approval.note = user, timezone.now(), note
        approval.save(update_fields=["decision", "decided_by", "decided_at", "note"])
        _event(run, f"approval_{approval.decision}", step=step, actor=user, note=note)
        if approve:
            step.status, step.approved = Step.PENDING, True
            step.save(update_fields=["status", "approved", "updated_at"])
            run.status = Run.RUNNING
            run.save(update_fields=["status", "updated_at"])
            _schedule(step)
        else:
            step.status, step.finished_at = Step.CANCELLED, timezone.now()
            step.last_error = f"rejected by {user.get_username()}" + (f": {note}" if note else "")
            step.save(update_fields=["status", "finished_at", "last_error", "updated_at"])
            run.error = f"step {step.name!r} {step.last_error}"
            _stop_run(run, end_status=Run.CANCELLED, otherwise=Run.CANCELLED)
    return approval
