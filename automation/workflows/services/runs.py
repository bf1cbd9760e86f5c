"""Runs: start one (idempotent by key) and the operator's actions on it (retry, skip, cancel)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import definitions, selectors
from ..models import Approval, WorkflowRun, WorkflowStep
from .outbox import _schedule
from .state import _advance, _compensation_next, _event, _finish_run, _json_safe, _stop_run

Run = WorkflowRun.Status
Step = WorkflowStep.Status


def workflow_start(name: str, input: dict, *, idempotency_key: str, actor=None) -> WorkflowRun:
    """Start the newest version of workflow `name`. The same key always gives the same run:
    a caller that retries (or two that race) never starts a second one."""
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValidationError("idempotency_key must be 1-200 characters")
    if not isinstance(input, dict):
        raise ValidationError("workflow input must be a JSON object")
    definition = definitions.definition_get(name)
    payload = _json_safe(input, "workflow input")
    existing = WorkflowRun.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None:
        try:
            with transaction.atomic():
                run = WorkflowRun.objects.create(
                    name=definition.name, version=definition.version, input=payload,
                    idempotency_key=idempotency_key, status=Run.RUNNING,
                    started_by=actor if getattr(actor, "pk", None) else None,
                )
                steps = WorkflowStep.objects.bulk_create(
                    [WorkflowStep(run=run, index=i, name=spec.name) for i, spec in enumerate(definition.steps)]
                )
                _event(run, "started", actor=actor)
                if steps:
                    _schedule(steps[0])
                else:
                    _finish_run(run, Run.SUCCEEDED)
                return run
        except IntegrityError:
            existing = WorkflowRun.objects.filter(idempotency_key=idempotency_key).first()
            if existing is None:
                raise
    if existing.name != definition.name:
        raise ValidationError(f"idempotency key {idempotency_key!r} already started workflow {existing.name!r}")
    return existing


def _lock_run(run: WorkflowRun) -> WorkflowRun:
    return WorkflowRun.objects.select_for_update().get(pk=run.pk)


def run_retry(run: WorkflowRun, actor) -> WorkflowRun:
    """Try the failed (or back-off-waiting) step again now, with a fresh retry budget."""
    with transaction.atomic():
        run = _lock_run(run)
        step = selectors.run_stuck_step(run, lock=True)
        if step is None:
            raise ValidationError("nothing to retry: no failed step and no step waiting for a retry")
        if step.status == Step.COMPENSATING:
            run.status = Run.COMPENSATING
        else:
            step.status = Step.PENDING
            run.status = Run.RUNNING
        step.attempts, step.finished_at = 0, None
        step.save(update_fields=["status", "attempts", "finished_at", "updated_at"])
        run.error, run.finished_at = "", None
        run.save(update_fields=["status", "error", "finished_at", "updated_at"])
        _event(run, "retried", step=step, actor=actor)
        _schedule(step)
    return run


def run_skip_step(run: WorkflowRun, actor) -> WorkflowRun:
    """Give up on the stuck step (or on undoing it) and carry on with the rest of the run."""
    with transaction.atomic():
        run = _lock_run(run)
        step = selectors.run_stuck_step(run, lock=True)
        if step is None:
            raise ValidationError("nothing to skip: no failed step and no step waiting for a retry")
        undoing = step.status == Step.COMPENSATING
        step.status, step.finished_at, step.next_retry_at = Step.SKIPPED, timezone.now(), None
        step.save(update_fields=["status", "finished_at", "next_retry_at", "updated_at"])
        _event(run, "compensation_skipped" if undoing else "skipped", step=step, actor=actor)
        run.error, run.finished_at = "", None
        if undoing:
            run.status = Run.COMPENSATING
            run.save(update_fields=["status", "error", "finished_at", "updated_at"])
            _compensation_next(run)
        else:
            run.status = Run.RUNNING
            run.save(update_fields=["status", "error", "finished_at", "updated_at"])
            _advance(run, after=step.index)
    return run


def run_cancel(run: WorkflowRun, actor, note: str = "") -> WorkflowRun:
    """Stop a run: what has not started is cancelled, what succeeded is undone (newest first)."""
    with transaction.atomic():
        run = _lock_run(run)
        if run.status not in WorkflowRun.CANCELLABLE:
            raise ValidationError(f"a {run.status} run cannot be cancelled")
        now = timezone.now()
        WorkflowStep.objects.filter(run=run, status__in=[Step.PENDING, Step.WAITING_APPROVAL]).update(
            status=Step.CANCELLED, next_retry_at=None, finished_at=now)
        if run.status == Run.FAILED:  # undoing a step failed: give that one up, undo the others
            WorkflowStep.objects.filter(run=run, status=Step.COMPENSATING).update(
                status=Step.SKIPPED, next_retry_at=None, finished_at=now)
        Approval.objects.filter(run=run, decision=Approval.Decision.PENDING).update(
            decision=Approval.Decision.WITHDRAWN, decided_by=actor, decided_at=now, note=note[:2000])
        _event(run, "cancel_requested", actor=actor, note=note)
        run.error = f"cancelled by {actor.get_username()}" if actor else "cancelled"
        _stop_run(run, end_status=Run.CANCELLED, otherwise=Run.CANCELLED)
    return run


RUN_ACTIONS = ("retry", "skip", "cancel")


def run_act(run: WorkflowRun, actor, *, action: str, note: str = "") -> WorkflowRun:
    """One operator action by name: the run page and the REST API offer the same three."""
    if action == "retry":
        return run_retry(run, actor)
    if action == "skip":
        return run_skip_step(run, actor)
    if action == "cancel":
        return run_cancel(run, actor, note=note)
    raise ValidationError(f"no action {action!r}; use retry, skip or cancel")
