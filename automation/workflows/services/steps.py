"""Executing a step: claim it under a lease, run its action or compensation, record the outcome."""

# A step attempt is claimed with `select_for_update(skip_locked)` and a claim token + lease, runs
# outside any transaction (its effects commit one by one through the ledger), and records its
# outcome only if it still holds the claim. A worker that dies mid-step leaves the claim to
# expire; the periodic tick hands the step to another worker.

from __future__ import annotations

import logging
import random
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import definitions
from ..context import StepContext
from ..errors import ConnectorUnavailable, PermanentError
from ..models import WorkflowRun, WorkflowStep, WorkflowStepAttempt
from .approvals import _approval_request
from .outbox import _schedule
from .state import _advance, _compensation_next, _fail_step_for_good, _json_safe, _step_interrupted_by_stop

logger = logging.getLogger(__name__)

Run = WorkflowRun.Status
Step = WorkflowStep.Status


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
