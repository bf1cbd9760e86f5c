"""Synthetic connector checks (docs/adr/0017): run one and record it, open or close the connector's
breaker by its outcome, queue one when a configuration is saved, and queue them all on the schedule."""

from __future__ import annotations

import logging
import time

import pybreaker
from django.conf import settings
from django.db import transaction

from office.queueing import enqueue_on_commit, task_send

from .. import checks
from ..errors import PermanentError
from ..models import ConnectorCheck

logger = logging.getLogger(__name__)

CHECK_TASK = "workflows.connector_check"  # automation/workflows/tasks.py
CHECKS_TASK = "workflows.connector_checks"
CHECKS_SCHEDULE_NAME = "workflows: check every outbound connector"
Reason = ConnectorCheck.Reason


def connector_check_run(*, connector: str, target: str, reason: str = Reason.MANUAL) -> ConnectorCheck | None:
    """Probe one target now and record the result. A target that is gone or switched off has no state
    to show: its results are deleted and None is returned."""
    kind = checks.check_kind_get(connector)
    found = next((t for t in kind.targets() if t.key == target), None)
    if found is None:
        ConnectorCheck.objects.filter(connector=connector, target=target).delete()
        return None
    started = time.perf_counter()
    ok, outage = True, False
    try:
        detail = kind.probe(target)
    except PermanentError as exc:
        ok, detail = False, str(exc)
    except Exception as exc:  # TransientError, and anything unforeseen: the target cannot take work now
        ok, outage, detail = False, True, str(exc) or type(exc).__name__
    latency_ms = (time.perf_counter() - started) * 1000
    if not ok:
        logger.warning("connector check %s %s failed: %s", connector, target, detail)
    breaker_state = _breaker_follow(kind.breaker(target), ok=ok, outage=outage)
    with transaction.atomic():
        row = ConnectorCheck.objects.create(
            connector=connector, target=target, label=found.label[:300], ok=ok, latency_ms=round(latency_ms, 1),
            detail=detail[:2000], breaker_state=breaker_state, reason=reason,
        )
        _history_prune(connector, target)
    return row


def _breaker_follow(breaker: pybreaker.CircuitBreaker | None, *, ok: bool, outage: bool) -> str:
    """An outage opens the breaker live work uses (steps are postponed, not sent into it); a pass closes
    it. A refusal leaves it alone: live work fails on its own 4xx, as before. Returns the state after."""
    if breaker is None:
        return ""
    if outage:
        breaker.open()
    elif ok and breaker.current_state != pybreaker.STATE_CLOSED:
        breaker.close()
    return breaker.current_state


def _history_prune(connector: str, target: str) -> None:
    keep = settings.OFFICE_CONNECTOR_CHECK_HISTORY
    old = list(ConnectorCheck.objects.filter(connector=connector, target=target)
               .order_by("-checked_at", "-id").values_list("pk", flat=True)[keep:])
    if old:
        ConnectorCheck.objects.filter(pk__in=old).delete()


def connector_check_queue(*, connector: str, target: str) -> None:
    """A configuration was saved (or deleted): check that target once this commits."""
    enqueue_on_commit(CHECK_TASK, connector, str(target), Reason.CONFIG)


def connector_checks_due() -> dict:
    """The scheduled sweep: one queued check per target of every connector, so they run side by side on
    the workers, each bounded by its own timeout. Results of targets that are gone are dropped."""
    wanted, listed, queued = set(), set(), 0
    for kind in checks.check_kinds():
        try:
            targets = kind.targets()
        except Exception:
            logger.exception("could not list the targets of the %s check", kind.connector)
            continue
        listed.add(kind.connector)
        for target in targets:
            wanted.add((kind.connector, target.key))
            try:
                task_send(CHECK_TASK, kind.connector, target.key, Reason.SCHEDULE)
                queued += 1
            except Exception:
                logger.warning("could not queue the %s check of %s; the next sweep tries again",
                               kind.connector, target.key)
    known = {kind.connector for kind in checks.check_kinds()}
    gone = [(connector, target) for connector, target in
            ConnectorCheck.objects.order_by().values_list("connector", "target").distinct()
            if (connector, target) not in wanted and (connector in listed or connector not in known)]
    for connector, target in gone:
        ConnectorCheck.objects.filter(connector=connector, target=target).delete()
    return {"queued": queued, "dropped": len(gone)}


def connector_checks_run_all() -> list[ConnectorCheck]:
    """Every target checked now, one after another, in this process (`manage.py connector_checks`:
    after a deploy that changed mail or model settings, without waiting for the schedule)."""
    rows = []
    for kind in checks.check_kinds():
        for target in kind.targets():
            row = connector_check_run(connector=kind.connector, target=target.key, reason=Reason.MANUAL)
            if row is not None:
                rows.append(row)
    return rows


def connector_checks_schedule_ensure():
    """Store the sweep in django-celery-beat's tables (idempotent; `manage.py workflow_schedules`)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(
        every=settings.OFFICE_CONNECTOR_CHECK_INTERVAL_SECONDS, period=IntervalSchedule.SECONDS)
    task, _ = PeriodicTask.objects.update_or_create(
        name=CHECKS_SCHEDULE_NAME,
        defaults={"task": CHECKS_TASK, "interval": interval, "enabled": True, "crontab": None,
                  "expires": None, "one_off": False},
    )
    return task
