"""What the other modules share: JSON checks, the run's event log, how a run advances, ends or is undone."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from .. import definitions
from ..models import WorkflowEvent, WorkflowRun, WorkflowStep, WorkflowStepAttempt
from .outbox import _schedule

Run = WorkflowRun.Status
Step = WorkflowStep.Status


def _json_safe(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} must be JSON-serialisable: {exc}") from exc


def _event(run: WorkflowRun, action: str, *, step: WorkflowStep | None = None, actor=None, note: str = "") -> None:
    WorkflowEvent.objects.create(run=run, step=step, actor=actor if getattr(actor, "pk", None) else None,
                                 action=action, note=note[:4000])


def _advance(run: WorkflowRun, *, after: int) -> None:
    following = (WorkflowStep.objects.filter(run=run, index__gt=after, status=Step.PENDING)
                 .order_by("index").first())
    if following is not None:
        _schedule(following)
    else:
        _finish_run(run, Run.SUCCEEDED)


def _finish_run(run: WorkflowRun, status: str, *, error: str | None = None) -> None:
    run.status = status
    run.finished_at = timezone.now() if status in WorkflowRun.FINAL or status == Run.FAILED else None
    if status in (Run.COMPENSATED, Run.CANCELLED):  # steps never reached will not be
        WorkflowStep.objects.filter(run=run, status=Step.PENDING).update(status=Step.CANCELLED, next_retry_at=None)
    fields = ["status", "finished_at", "updated_at"]
    if error is not None:
        run.error = error
        fields.append("error")
    run.save(update_fields=fields)
    _event(run, status)


def _fail_step_for_good(run: WorkflowRun, step: WorkflowStep, error: str, *, compensation: bool) -> None:
    step.last_error = error
    if compensation:
        # The step stays "compensating" under a failed run: retry or skip from the run page.
        step.save(update_fields=["last_error", "updated_at"])
        _event(run, "compensation_failed", step=step, note=error)
        _finish_run(run, Run.FAILED, error=f"undoing step {step.name!r} failed: {error}")
        return
    step.status, step.finished_at = Step.FAILED, timezone.now()
    step.save(update_fields=["status", "last_error", "finished_at", "updated_at"])
    _event(run, "step_failed", step=step, note=error)
    run.error = f"step {step.name!r} failed: {error}"
    _stop_run(run, end_status=Run.COMPENSATED, otherwise=Run.FAILED)


def _compensable(run: WorkflowRun):
    """Steps to undo, newest first: those that succeeded, and those whose attempt was lost with its
    worker after the run was stopped (it may have taken effect, so it is undone too; compensations
    are written to tolerate an effect that never happened). Only steps whose definition has one."""
    try:
        definition = definitions.definition_get(run.name, run.version)
    except definitions.UnknownWorkflow:
        return []
    lost = WorkflowStepAttempt.objects.filter(step=OuterRef("pk"), kind=WorkflowStepAttempt.Kind.ACTION,
                                              outcome=WorkflowStepAttempt.Outcome.LOST)
    done = (WorkflowStep.objects.filter(run=run)
            .filter(Q(status=Step.SUCCEEDED) | Q(status=Step.CANCELLED, attempts__gt=0) & Exists(lost))
            .order_by("-index"))
    return [s for s in done if s.index < len(definition.steps) and definition.steps[s.index].compensate]


def _stop_run(run: WorkflowRun, *, end_status: str, otherwise: str) -> None:
    """Undo what can be undone (newest first), ending in `end_status`; or end in `otherwise`."""
    if _compensable(run):
        run.status, run.end_status = Run.COMPENSATING, end_status
        run.save(update_fields=["status", "end_status", "error", "updated_at"])
        _event(run, "compensating")
        _compensation_next(run)
    else:
        run.save(update_fields=["error", "updated_at"])
        _finish_run(run, otherwise)


def _compensation_next(run: WorkflowRun) -> None:
    """Start the next compensation, one at a time in reverse step order; finish when none is left."""
    if run.status != Run.COMPENSATING:
        return
    busy = WorkflowStep.objects.filter(run=run).filter(
        Q(status=Step.RUNNING) | Q(status=Step.COMPENSATING)).exists()
    if busy:
        return  # an attempt in flight finishes first; its outcome calls back here
    candidates = _compensable(run)
    if candidates:
        step = candidates[0]
        step.status, step.attempts, step.last_error = Step.COMPENSATING, 0, ""
        step.save(update_fields=["status", "attempts", "last_error", "updated_at"])
        _schedule(step)
    else:
        _finish_run(run, run.end_status or Run.COMPENSATED)


def _step_interrupted_by_stop(run: WorkflowRun, step: WorkflowStep) -> None:
    """A step that was in flight when its run was cancelled or started compensating."""
    step.claim, step.lease_until = None, None
    if step.status == Step.RUNNING:
        step.status = Step.CANCELLED
    step.save(update_fields=["status", "claim", "lease_until", "updated_at"])
    if run.status == Run.CANCELLED and _compensable(run):
        run.status, run.end_status = Run.COMPENSATING, Run.CANCELLED
        run.save(update_fields=["status", "end_status", "updated_at"])
    _compensation_next(run)
