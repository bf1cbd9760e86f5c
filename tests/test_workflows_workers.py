"""Real Celery worker processes: a worker SIGKILLed in the middle of a step loses nothing, and
after another worker takes over, the step completes once and its side effect exists once.

The worker imports this module (OFFICE_WORKFLOW_MODULES) to know the workflow below; the test
process plays Celery beat by calling the tick."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from automation.workflows import services
from automation.workflows.definitions import step, workflow
from automation.workflows.models import Notification, SideEffect, WorkflowRun, WorkflowStep
from tests.e2e.conftest import _database_url_for
from tests.processes import stop_process_group, wait_until

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)
STARTED_KEY = "test-workflows:slow-step-started"


def notify_then_stall(ctx):
    """Notify, then (first attempt only) hang until the test kills the worker."""
    ctx.send("notification", {"user_id": ctx.input["user_id"], "title": "Build started"}, key="started")
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.rpush(STARTED_KEY, ctx.attempt)
    if ctx.attempt == 1:
        time.sleep(60)
    return {"attempt": ctx.attempt}


def notify_done(ctx):
    ctx.send("notification", {"user_id": ctx.input["user_id"], "title": "Build finished"}, key="done")
    return "done"


@workflow("test.workers.build", version=1)
def build_flow():
    return [step(notify_then_stall, lease_seconds=3), step(notify_done)]




@pytest.fixture
def workers(django_db_setup):
    """Start Celery workers on the test database and broker (prefork, one child, like `make run`);
    each runs in its own process group so the whole worker can be SIGKILLed."""
    env = {**os.environ, "DATABASE_URL": _database_url_for(settings.DATABASES["default"]), "DATABASE_CONN_MAX_AGE": "0", "LOG_LEVEL": "WARNING",
           "OFFICE_WORKFLOW_MODULES": "tests.test_workflows_workers",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    started: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "office", "worker", "-l", "WARNING", "--concurrency",
             "1", "-n", f"{name}@test", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        stop_process_group(process)



def test_a_step_interrupted_by_sigkill_completes_exactly_once_after_restart(people, workers, settings):
    settings.OFFICE_WORKFLOW_REQUEUE_AFTER_SECONDS = 1
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(STARTED_KEY)
    alice = people["alice"]

    # given a worker that is in the middle of the first step (its notification already sent)
    first = workers("first")
    run = services.workflow_start("test.workers.build", {"user_id": alice.pk}, idempotency_key="build-1")
    wait_until(lambda: client.llen(STARTED_KEY) == 1, 60, "the first attempt starting")
    assert WorkflowStep.objects.get(run=run, index=0).status == "running"

    # when the whole worker is killed without warning
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)

    # and another worker starts while beat's tick keeps running
    workers("second")
    wait_until(lambda: WorkflowRun.objects.get(pk=run.pk).status == "succeeded", 90, "the run finishing",
               every=services.workflow_tick)

    # then the step ran again (attempt 2), but its notification exists once, like the next step's
    stalled = WorkflowStep.objects.get(run=run, index=0)
    assert stalled.attempts == 2 and stalled.result == {"attempt": 2}
    assert list(stalled.attempt_log.values_list("outcome", flat=True)) == ["lost", "succeeded"]
    assert [int(a) for a in client.lrange(STARTED_KEY, 0, -1)] == [1, 2]
    titles = sorted(Notification.objects.filter(user=alice).values_list("title", flat=True))
    assert titles == ["Build finished", "Build started"]
    assert SideEffect.objects.filter(run=run).count() == 2
