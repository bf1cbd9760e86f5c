"""Assistant jobs: a question or a catch-up asked over plain HTTP is answered by the assistant worker,
never inside the request (docs/adr/0015-no-request-waits-on-a-model.md).

The request stores the job and answers 202 with its result URL; `assistant.run_job` claims it with a
conditional UPDATE (queued → running), so a redelivered or resent message never runs it twice, and
stores the very body the endpoint used to return. Beat's tick sweeps what a lost message or a dead
worker left behind.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from office.queueing import enqueue_on_commit
from rooms.models import Room

from . import qa
from .models import AssistantJob

logger = logging.getLogger(__name__)

RESEND_AFTER = dt.timedelta(seconds=60)  # still queued: its message may have been lost, send it once more
EXPIRE_AFTER = dt.timedelta(minutes=10)  # still queued: nobody waits for this answer any more
KEEP_FINISHED = dt.timedelta(days=1)  # a result is for its asker to fetch, not an archive of room content
Status = AssistantJob.Status


def run_limit() -> dt.timedelta:
    """How long a run may take before the sweep calls its worker dead: an answer is at most two tiers,
    each tried twice (one repair), each bounded by the model timeout."""
    return dt.timedelta(seconds=4 * settings.LLM_TIMEOUT_SECONDS + 60)


def assistant_job_start(*, user, kind: str, job_input: dict) -> AssistantJob:
    """Store a job for the assistant worker and queue it once the row is committed. The caller has
    checked the input and the user's access; the run checks access again (it may have changed)."""
    if kind not in AssistantJob.Kind.values:
        raise ValueError(f"unknown job kind {kind!r}")
    with transaction.atomic():
        job = AssistantJob.objects.create(user=user, kind=kind, input=job_input)
        enqueue_on_commit("assistant.run_job", str(job.pk))
    return job


def assistant_job_run(job_id) -> str:
    """Claim a queued job and answer it; returns its final status, or "skipped" when it is not queued
    (already run, being run, or failed by the sweep)."""
    claimed = AssistantJob.objects.filter(pk=job_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now())
    if claimed != 1:
        return "skipped"
    job = AssistantJob.objects.select_related("user").get(pk=job_id)
    try:
        result = _answer(job)
    except (ValueError, LookupError, PermissionError, Room.DoesNotExist) as exc:
        # The question or the asker's access changed since the request was checked.
        return _finish(job, Status.FAILED, error=str(exc))
    except Exception:
        # The owner polls this row: say it failed now, rather than leave it running until the sweep.
        logger.exception("assistant job %s failed", job_id)
        return _finish(job, Status.FAILED, error="the assistant could not answer right now")
    return _finish(job, Status.DONE, result=result)


def _answer(job: AssistantJob) -> dict:
    if job.kind == AssistantJob.Kind.ASK:
        return qa.answer_question(user=job.user, question=job.input["question"], room_id=job.input.get("room"))
    return qa.catch_up(user=job.user, room=Room.objects.get(pk=job.input["room"]))


def _finish(job: AssistantJob, status: str, *, result: dict | None = None, error: str = "") -> str:
    # Only a running job: one the sweep has meanwhile failed as stalled stays failed.
    AssistantJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=status, result=result, error=error[:2000], finished_at=timezone.now())
    return status


def assistant_jobs_sweep() -> dict:
    """Beat's tick: a job still queued after a minute is queued once more (its message may have been
    lost with the broker); one no worker started within ten minutes, or whose worker died running it,
    is failed, so that its owner is told instead of waiting for ever; finished ones go after a day."""
    now = timezone.now()
    resent = 0
    stale = AssistantJob.objects.filter(status=Status.QUEUED, sends=1, created_at__lt=now - RESEND_AFTER,
                                        created_at__gte=now - EXPIRE_AFTER)
    for job_id in stale.values_list("pk", flat=True)[:200]:
        if AssistantJob.objects.filter(pk=job_id, status=Status.QUEUED, sends=1).update(sends=2) == 1:
            enqueue_on_commit("assistant.run_job", str(job_id))
            resent += 1
    expired = AssistantJob.objects.filter(status=Status.QUEUED, created_at__lt=now - EXPIRE_AFTER).update(
        status=Status.FAILED, error="no assistant worker took the job in time", finished_at=now)
    stalled = AssistantJob.objects.filter(status=Status.RUNNING, started_at__lt=now - run_limit()).update(
        status=Status.FAILED, error="the assistant worker stopped while answering", finished_at=now)
    deleted, _ = AssistantJob.objects.filter(status__in=[Status.DONE, Status.FAILED],
                                             finished_at__lt=now - KEEP_FINISHED).delete()
    return {"resent": resent, "expired": expired, "stalled": stalled, "deleted": deleted}
