"""Writes of the workflow engine: start runs, execute steps, decide approvals, operator actions.

Every state change is committed together with the outbox row that makes the next piece of work
due; Celery only carries step ids. A step attempt is claimed with `select_for_update(skip_locked)`
and a claim token + lease, runs outside any transaction (its effects commit one by one through
the ledger), and records its outcome only if it still holds the claim. A worker that dies
mid-step leaves the claim to expire; the periodic tick hands the step to another worker.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from automation.serializers import NotificationOut
from office.events import send_event_on_commit, user_group
from office.queueing import task_send

from . import definitions, selectors
from .context import StepContext
from .errors import ConnectorUnavailable, PermanentError
from .models import (
    Approval,
    Notification,
    OutboxMessage,
    WorkflowEvent,
    WorkflowRun,
    WorkflowStep,
    WorkflowStepAttempt,
)

logger = logging.getLogger(__name__)

STEP_EXECUTE_TASK = "workflows.step_execute"  # automation/workflows/tasks.py
Run = WorkflowRun.Status
Step = WorkflowStep.Status


# --- starting ---

def _json_safe(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} must be JSON-serialisable: {exc}") from exc


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


# --- outbox and relay ---

def _schedule(step: WorkflowStep, *, at: datetime | None = None) -> None:
    """Make `step` due at `at` (now) and write the outbox row in the caller's transaction."""
    at = at or timezone.now()
    WorkflowStep.objects.filter(pk=step.pk).update(next_retry_at=at)
    step.next_retry_at = at
    _outbox_add(OutboxMessage.Kind.STEP_EXECUTE, {"step_id": step.pk}, available_at=at)


def _outbox_add(kind: str, payload: dict, *, available_at: datetime) -> None:
    row = OutboxMessage.objects.create(kind=kind, payload=payload, available_at=available_at)
    if available_at <= timezone.now():
        # Hand it to Celery right after commit; if this process dies first, the tick relays it.
        transaction.on_commit(lambda: outbox_relay(ids=[row.pk]))


def _dispatch(message: OutboxMessage) -> None:
    if message.kind == OutboxMessage.Kind.STEP_EXECUTE:
        step_id = message.payload["step_id"]
        # No write to the step here: a row lock held until this commits would make the worker
        # that already got the message skip the step.
        task_send(STEP_EXECUTE_TASK, step_id)
    else:
        logger.error("outbox message %s has unknown kind %r; dropped", message.pk, message.kind)


def outbox_relay(*, ids: list[int] | None = None, now: datetime | None = None, limit: int = 500) -> int:
    """Enqueue due outbox rows and delete them. A row is deleted only in the transaction that
    enqueued it: a crash in between leaves it for the next relay (a duplicate task is harmless,
    a missing one is not)."""
    now = now or timezone.now()
    relayed = 0
    try:
        with transaction.atomic():
            rows = OutboxMessage.objects.select_for_update(skip_locked=True).filter(available_at__lte=now)
            if ids is not None:
                rows = rows.filter(pk__in=ids)
            rows = list(rows.order_by("available_at", "id")[:limit])
            for row in rows:
                _dispatch(row)
                relayed += 1
            OutboxMessage.objects.filter(pk__in=[r.pk for r in rows]).delete()
    except Exception:
        # Broker down: nothing is lost, the rows stay for the next tick.
        logger.exception("outbox relay failed; rows stay for the next tick")
        return 0
    return relayed


def steps_requeue_stalled(*, now: datetime | None = None, limit: int = 500) -> int:
    """Re-enqueue due work whose task message went missing (a worker killed before it acked,
    a lost enqueue): due steps not enqueued recently, and attempts whose lease ran out."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.OFFICE_WORKFLOW_REQUEUE_AFTER_SECONDS)
    # A step's message counts as missing only when the queue has moved past it: a worker started
    # an attempt from a message sent well after this step's (the queue is FIFO), or the queue is
    # empty. A merely slow queue (a backlog) is left alone, so re-enqueues cannot snowball.
    frontier = (WorkflowStepAttempt.objects.filter(started_at__gte=now - timedelta(minutes=10))
                .aggregate(newest=Max("sent_at"))["newest"])
    passed = now - grace if _queue_is_empty() else min(now - grace, (frontier or now - grace * 1000) - grace)
    due = (
        Q(status=Step.PENDING, run__status=Run.RUNNING)
        | (Q(status=Step.COMPENSATING, run__status=Run.COMPENSATING)
           & (Q(lease_until__isnull=True) | Q(lease_until__lt=now)))
    )
    lost = Q(status__in=[Step.RUNNING, Step.COMPENSATING], lease_until__lt=now)
    with transaction.atomic():
        stalled = list(
            WorkflowStep.objects.select_for_update(skip_locked=True, of=("self",))
            .annotate(sent=Greatest("next_retry_at", "enqueued_at"))
            .filter(due | lost, next_retry_at__isnull=False, sent__lt=passed)
            .order_by("sent").values_list("pk", flat=True)[:limit]
        )
        if stalled:
            WorkflowStep.objects.filter(pk__in=stalled).update(enqueued_at=now)
    for step_id in stalled:
        try:
            task_send(STEP_EXECUTE_TASK, step_id)
        except Exception:
            logger.exception("could not re-enqueue step %s; the next tick tries again", step_id)
            WorkflowStep.objects.filter(pk=step_id).update(enqueued_at=None)
    return len(stalled)


def _queue_is_empty() -> bool:
    """Whether the step queue has no waiting messages (False when the broker cannot be asked)."""
    try:
        with current_app.connection_for_read() as connection:
            queue = current_app.conf.task_default_queue
            return connection.default_channel.queue_declare(queue=queue, passive=True).message_count == 0
    except Exception as exc:
        if getattr(exc, "reply_code", None) == 404 or "NOT_FOUND" in str(exc):
            return True  # nobody declared the queue yet: nothing waits in it
        logger.warning("could not read the queue length (%s); re-enqueueing only behind the queue's frontier", exc)
        return False


def workflow_tick(*, now: datetime | None = None) -> dict:
    """The periodic sweep (Celery beat): relay the outbox, then re-enqueue stalled steps."""
    return {"relayed": outbox_relay(now=now), "requeued": steps_requeue_stalled(now=now)}


# --- executing a step ---

def _backoff_seconds(spec: definitions.StepSpec, attempts: int) -> float:
    """Exponential backoff with full jitter: uniform in [base*2^(n-1)/2, base*2^(n-1)], capped."""
    ceiling = min(spec.max_backoff, spec.backoff * (2 ** max(attempts - 1, 0)))
    return random.uniform(ceiling / 2, ceiling)


def _context(run: WorkflowRun, step: WorkflowStep, *, compensating: bool) -> StepContext:
    results = dict(
        WorkflowStep.objects.filter(run=run, index__lt=step.index).values_list("name", "result")
    )
    if compensating:
        results[step.name] = step.result
    return StepContext(
        run_id=run.pk, workflow_name=run.name, workflow_version=run.version, step_index=step.index,
        step_name=step.name, input=run.input, results=results, attempt=step.attempts,
        actor_id=run.started_by_id, compensating=compensating,
    )


def _attempts_mark_lost(step: WorkflowStep, now: datetime) -> None:
    """The attempt still marked running was lost with its worker (its lease ran out)."""
    WorkflowStepAttempt.objects.filter(step=step, outcome=WorkflowStepAttempt.Outcome.RUNNING).update(
        outcome=WorkflowStepAttempt.Outcome.LOST, finished_at=now,
        error="the worker stopped before the attempt finished")


def _claim(step_id: int):
    """Claim the step if it is due and nobody holds it. Returns (mode, step, run, spec, claim) or None."""
    now = timezone.now()
    run_id = WorkflowStep.objects.filter(pk=step_id).values_list("run_id", flat=True).first()
    if run_id is None:
        return None
    with transaction.atomic():
        # Locks are always taken run first, then step (as the operator actions do): no deadlocks.
        run = WorkflowRun.objects.select_for_update().get(pk=run_id)
        step = WorkflowStep.objects.select_for_update(skip_locked=True).filter(pk=step_id).first()
        if step is None:
            return None  # another worker holds it
        lease_over = step.lease_until is None or step.lease_until < now
        if step.status == Step.RUNNING and lease_over:
            _attempts_mark_lost(step, now)
            if run.status == Run.RUNNING:
                mode = "action"
            else:
                _step_interrupted_by_stop(run, step)
                return None
        elif step.status == Step.PENDING and run.status == Run.RUNNING and step.next_retry_at and step.next_retry_at <= now:
            mode = "action"
        elif (step.status == Step.COMPENSATING and run.status == Run.COMPENSATING and lease_over
              and step.next_retry_at and step.next_retry_at <= now):
            _attempts_mark_lost(step, now)
            mode = "compensation"
        else:
            return None  # not due, already done, or waiting for a person
        try:
            definition = definitions.definition_get(run.name, run.version)
            spec = definition.step_at(step.index)
        except (definitions.UnknownWorkflow, IndexError) as exc:
            _fail_step_for_good(run, step, f"definition missing: {exc}", compensation=(mode == "compensation"))
            return None
        if mode == "action" and not step.approved:
            ctx = _context(run, step, compensating=False)
            try:
                needs = spec.requires_approval(ctx)
            except Exception:
                logger.exception("approval predicate of %s failed; asking a person", spec.name)
                needs = True
            if needs:
                _approval_request(run, step, spec, ctx)
                return None
        claim = uuid.uuid4()
        lease = spec.lease_seconds or settings.OFFICE_WORKFLOW_STEP_LEASE_SECONDS
        step.attempts += 1
        step.claim = claim
        step.lease_until = now + timedelta(seconds=lease)
        step.started_at = step.started_at or now
        if mode == "action":
            step.status = Step.RUNNING
        step.save(update_fields=["attempts", "claim", "lease_until", "started_at", "status", "updated_at"])
        sent = [t for t in (step.next_retry_at, step.enqueued_at) if t is not None]
        WorkflowStepAttempt.objects.create(
            step=step, number=step.attempts, claim=claim, sent_at=max(sent) if sent else None,
            kind=WorkflowStepAttempt.Kind.ACTION if mode == "action" else WorkflowStepAttempt.Kind.COMPENSATION,
        )
    return mode, step, run, spec, claim


def step_execute(step_id: int) -> str:
    """Run one attempt of a step (or of its compensation) if it is due. Safe to call any number
    of times with the same id: whoever does not get the claim returns at once."""
    claimed = _claim(step_id)
    if claimed is None:
        return "not-claimed"
    mode, step, run, spec, claim = claimed
    compensating = mode == "compensation"
    ctx = _context(run, step, compensating=compensating)
    fn = spec.compensate if compensating else spec.fn
    outcome, result, error, retry_in = "succeeded", None, "", None
    try:
        result = _json_safe(fn(ctx), "step result") if fn is not None else None
    except ConnectorUnavailable as exc:
        outcome, error, retry_in = "postponed", str(exc), exc.retry_after_seconds
    except (PermanentError, ValidationError) as exc:
        outcome, error = "permanent", _describe(exc)
    except Exception as exc:
        logger.warning("step %s of run %s failed: %s", spec.name, run.pk, exc, exc_info=not isinstance(exc, RuntimeError))
        outcome, error = "transient", _describe(exc)
    return _record_outcome(step.pk, claim, spec, compensating, outcome, result, error, retry_in)


def _describe(exc: Exception) -> str:
    text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    return f"{type(exc).__name__}: {text}"[:2000]


def _record_outcome(step_id, claim, spec, compensating, outcome, result, error, retry_in) -> str:
    now = timezone.now()
    Outcome = WorkflowStepAttempt.Outcome
    run_id = WorkflowStep.objects.filter(pk=step_id).values_list("run_id", flat=True).get()
    with transaction.atomic():
        run = WorkflowRun.objects.select_for_update().get(pk=run_id)
        step = WorkflowStep.objects.select_for_update().get(pk=step_id)
        attempt = WorkflowStepAttempt.objects.filter(step=step, claim=claim).first()
        if step.claim != claim:
            # Our lease ran out and another attempt took over; its outcome is the one that counts.
            if attempt is not None:
                attempt.outcome, attempt.finished_at = Outcome.SUPERSEDED, now
                attempt.save(update_fields=["outcome", "finished_at"])
            return "superseded"
        step.claim, step.lease_until = None, None
        fields = ["claim", "lease_until", "status", "attempts", "last_error", "result", "finished_at",
                  "next_retry_at", "updated_at"]
        exhausted = step.attempts > spec.retries
        if outcome == "succeeded":
            attempt_outcome = Outcome.SUCCEEDED
            step.finished_at, step.last_error = now, ""
            if compensating:
                step.status = Step.COMPENSATED
                step.save(update_fields=fields)
                _compensation_next(run)
            else:
                step.status, step.result = Step.SUCCEEDED, result
                step.save(update_fields=fields)
                if run.status == Run.RUNNING:
                    _advance(run, after=step.index)
                else:  # the run was cancelled while this attempt ran: undo it too if it can be undone
                    _step_interrupted_by_stop(run, step)
        elif outcome == "postponed" or (outcome == "transient" and not exhausted):
            if outcome == "postponed":
                attempt_outcome = Outcome.POSTPONED
                step.attempts -= 1  # the connector was not called: no attempt used up
                delay = retry_in
            else:
                attempt_outcome = Outcome.RETRY
                delay = _backoff_seconds(spec, step.attempts)
            step.last_error = error
            still_wanted = run.status == (Run.COMPENSATING if compensating else Run.RUNNING)
            step.status = Step.COMPENSATING if compensating else (Step.PENDING if still_wanted else Step.CANCELLED)
            step.save(update_fields=fields)
            if still_wanted:
                _schedule(step, at=now + timedelta(seconds=delay))
            elif not compensating:
                _compensation_next(run)  # cancelled meanwhile: carry on undoing the rest
        else:
            attempt_outcome = Outcome.FAILED
            step.save(update_fields=fields)
            _fail_step_for_good(run, step, error, compensation=compensating)
        if attempt is not None:
            attempt.outcome, attempt.error, attempt.finished_at = attempt_outcome, error, now
            attempt.save(update_fields=["outcome", "error", "finished_at"])
    return outcome


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


# --- approvals ---

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


# --- operator actions (run history page) ---

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


# --- audit and notifications ---

def _event(run: WorkflowRun, action: str, *, step: WorkflowStep | None = None, actor=None, note: str = "") -> None:
    WorkflowEvent.objects.create(run=run, step=step, actor=actor if getattr(actor, "pk", None) else None,
                                 action=action, note=note[:4000])


def notification_payload(notification: Notification) -> dict:
    return dict(NotificationOut(notification).data)


def notification_create(*, user, title: str, body: str = "", url: str = "", idempotency_key: str | None = None,
                        run_id: int | None = None) -> Notification:
    """Put a notification in the member's inbox; their sockets hear of it after commit."""
    with transaction.atomic():
        if idempotency_key:
            existing = Notification.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        notification = Notification.objects.create(
            user=user, title=title[:200], body=body, url=url[:500], idempotency_key=idempotency_key or None,
            run_id=run_id,
        )
        send_event_on_commit(user_group(user.pk), {"type": "notification.new",
                                                   "notification": notification_payload(notification)})
    return notification


def notification_mark_read(*, user, notification_ids: list[int] | None = None) -> int:
    """Mark some (or all, with None) of the member's own notifications read; returns how many changed."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=notification_ids)
    return unread.update(read_at=timezone.now())


# --- beat schedule ---

TICK_TASK_NAME = "workflows: relay the outbox and re-enqueue stalled steps"


def workflow_schedules_ensure():
    """Store the tick in django-celery-beat's tables (idempotent); `manage.py workflow_schedules`."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(
        every=settings.OFFICE_WORKFLOW_TICK_SECONDS, period=IntervalSchedule.SECONDS)
    task, _ = PeriodicTask.objects.update_or_create(
        name=TICK_TASK_NAME,
        defaults={"task": "workflows.tick", "interval": interval, "enabled": True, "crontab": None,
                  "expires": None, "one_off": False},
    )
    return task
