"""No request waits on a model (issue 16, docs/adr/0015): scripts get a job (202 and a result URL, or
a bounded `?wait=` that ends in 504), answered by a real assistant worker; the page streams the
catch-up, its events before the model has finished; only a job's owner may read it."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.test import AsyncClient, TestCase
from django.utils import timezone

from assistant import jobs, qa
from assistant.models import AssistantJob, ModelCall
from assistant.services import knowledge_chunks_add
from assistant.testing import by_purpose, serve_scripted_model
from rooms import services as room_services
from rooms.models import RoomVisit
from tests.assistant_fixtures import (
    assistant_state_reset,  # noqa: F401 (a fixture)
    eager_tasks,
    install,
    release_chunk,
    through_job,
)
from tests.conftest import client_for
from tests.test_assistant_streaming import parse_sse

ROOT = Path(__file__).resolve().parent.parent
MODEL_SECONDS = 3.0
ANSWER = {"answer": "It ships on Friday [1], once QA signs off.", "citations": [1], "found": True, "confidence": 0.9}
CATCH_UP = {"summary": "The projector in Atlas was fixed and the launch moved to Friday.", "highlights": [1],
            "confidence": 0.8}

pytestmark = pytest.mark.usefixtures("assistant_state_reset")


def slowly(reply, seconds: float = MODEL_SECONDS):
    """A model that thinks for `seconds` before it answers at all (an unstreamed reply)."""

    def respond(endpoint, body):
        time.sleep(seconds)
        return reply

    return respond


def _database_url() -> str:
    db = settings.DATABASES["default"]
    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    if db["HOST"].startswith("/"):
        return f"postgresql://{auth}@/{db['NAME']}?host={db['HOST']}"
    return f"postgresql://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def assistant_worker(django_db_setup):
    """`make run`'s assistant worker (prefork, one child, the `assistant` queue only) on the test
    database and broker, asking the model at `model_url`."""
    started: list[subprocess.Popen] = []

    def start(model_url: str) -> subprocess.Popen:
        env = {**os.environ, "DATABASE_URL": _database_url(), "DATABASE_CONN_MAX_AGE": "0", "LOG_LEVEL": "WARNING",
               "LLM_BASE_URL": model_url, "LLM_LARGE_BASE_URL": model_url,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "celery"), "-A", "office", "worker", "-l", "WARNING", "--concurrency",
             "1", "-Q", "assistant", "-n", "assistant@test", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def finished(client, result_url: str, timeout: float = 60):
    """Long-poll the result URL as a script would, until the job is done or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"{result_url}?wait=5")
        if r.status_code == 200:
            return r
        assert r.status_code == 202 and r.json()["status"] in ("queued", "running"), r.content
    raise AssertionError(f"{result_url} did not finish within {timeout:.0f} s")


# --- scripts: jobs answered by the assistant worker ---

@pytest.mark.django_db(transaction=True)
def test_a_script_gets_202_at_once_and_the_worker_answers_a_slow_model(people, office, assistant_worker):
    # given what Atlas knows, a model that takes 3 s per answer, and the assistant worker
    knowledge_chunks_add([release_chunk(office)])
    with serve_scripted_model(by_purpose(knowledge_answer=slowly(ANSWER))) as model_url:
        assistant_worker(model_url)
        bob, carol = client_for(people["bob"]), client_for(people["carol"])

        # when bob asks and will wait one second at most
        r, took = timed(lambda: bob.post("/api/assistant/ask/?wait=1", {"question": "When does the mobile app ship?"},
                                         content_type="application/json"))
        # then the request ends after about that second with a 504 that says what to do and where
        assert r.status_code == 504, r.content
        assert 0.9 < took < 2.5
        timeout = r.json()
        assert "result_url" in timeout["error"]["message"] and timeout["status"] in ("queued", "running")
        assert timeout["result_url"] == f"/api/assistant/jobs/{timeout['job']}/"
        # and the worker still answers it: the result URL gives the checked answer once the model is done
        done = finished(bob, timeout["result_url"])
        job = done.json()
        assert job["status"] == "done" and job["kind"] == "ask" and job["error"] == ""
        assert job["result"]["found"] is True and job["result"]["citations"][0]["url"] == "/meetings/1/#seg-4"
        assert ModelCall.objects.get(pk=job["result"]["model_call"]).latency_ms >= MODEL_SECONDS * 1000

        # when he asks another question without waiting
        r, took = timed(lambda: bob.post("/api/assistant/ask/", {"question": "Who has to sign off before the release?"},
                                         content_type="application/json"))
        # then it is accepted at once, with where to fetch the answer
        assert r.status_code == 202 and took < 1.0, (r.status_code, took)
        accepted = r.json()
        assert r["Location"] == accepted["result_url"] and accepted["status"] == "queued"
        assert bob.get(accepted["result_url"]).status_code == 202  # not finished yet: the model takes 3 s
        # and carol cannot read bob's job, not even that it exists
        assert carol.get(accepted["result_url"]).status_code == 404
        assert carol.get(f"{accepted['result_url']}?wait=1").status_code == 404
        assert finished(bob, accepted["result_url"]).json()["result"]["found"] is True

        # and a script that waits long enough gets the answer itself, as /ask/ answered before jobs
        r = bob.post("/api/assistant/ask/?wait=10", {"question": "What happens after QA signs off?"},
                     content_type="application/json")
        assert r.status_code == 200, r.content
        assert r.json()["found"] is True and r.json()["citations"][0]["url"] == "/meetings/1/#seg-4"
    assert AssistantJob.objects.filter(user=people["bob"], status="done").count() == 3


@pytest.mark.django_db
def test_bad_waits_and_refusals_are_answered_before_any_job(people, office):
    bob = client_for(people["bob"])
    for wait in ("11", "-1", "soon"):
        r = bob.post(f"/api/assistant/ask/?wait={wait}", {"question": "When?"}, content_type="application/json")
        assert r.status_code == 400 and "wait" in r.json()["error"]["message"]
    assert bob.get(f"/api/rooms/{office['vault'].pk}/catch-up/?wait=1").status_code == 404
    assert bob.post("/api/assistant/ask/", {"question": "  "}, content_type="application/json").status_code == 400
    assert not AssistantJob.objects.exists()


@pytest.mark.django_db
def test_a_job_runs_once_and_checks_access_again_when_it_runs(people, office):
    # given a catch-up alice asked for in the Vault, and her access to it withdrawn before the worker ran it
    install(by_purpose(room_catch_up=CATCH_UP))
    alice = client_for(people["alice"])
    accepted = alice.get(f"/api/rooms/{office['vault'].pk}/catch-up/")
    assert accepted.status_code == 202
    job_id = accepted.json()["job"]
    room_services.room_set_members(room=office["vault"], user_ids=[people["bob"].pk])
    # when the worker runs it (twice: a redelivered message)
    assert jobs.assistant_job_run(job_id) == "failed"
    assert jobs.assistant_job_run(job_id) == "skipped"
    # then the result URL says why, and holds nothing from the room
    job = alice.get(accepted.json()["result_url"]).json()
    assert job["status"] == "failed" and job["result"] is None and "cannot enter" in job["error"]


@pytest.mark.django_db
def test_the_sweep_resends_a_lost_job_once_and_fails_what_no_worker_finished(people, office):
    # given three jobs whose messages were lost (no worker ever saw them) and one whose worker died
    def job(**fields):
        made = AssistantJob.objects.create(user=people["bob"], kind="catch_up", input={"room": office["atlas"].pk})
        AssistantJob.objects.filter(pk=made.pk).update(**fields)
        return made.pk

    now = timezone.now()
    fresh = job()
    lost = job(created_at=now - dt.timedelta(seconds=90))
    forgotten = job(created_at=now - dt.timedelta(minutes=11))
    dead = job(status="running", started_at=now - jobs.run_limit() - dt.timedelta(seconds=5))
    # and two finished ones: one fetched yesterday, one a moment ago
    old = job(status="done", result={"summary": "old"}, finished_at=now - dt.timedelta(days=1, minutes=1))
    recent = job(status="done", result={"summary": "new"}, finished_at=now - dt.timedelta(minutes=1))
    install(by_purpose(room_catch_up=CATCH_UP))
    # when beat's tick sweeps (the resent job runs eagerly here, as a worker would run it)
    with eager_tasks(), TestCase.captureOnCommitCallbacks(execute=True):
        first = jobs.assistant_jobs_sweep()
    second = jobs.assistant_jobs_sweep()
    # then the lost one was sent again once and answered, the others were failed with a reason, and only
    # the day-old result is gone
    assert first == {"resent": 1, "expired": 1, "stalled": 1, "deleted": 1}
    assert second == {"resent": 0, "expired": 0, "stalled": 0, "deleted": 0}
    assert not AssistantJob.objects.filter(pk=old).exists() and AssistantJob.objects.filter(pk=recent).exists()
    states = {pk: AssistantJob.objects.get(pk=pk) for pk in (fresh, lost, forgotten, dead)}
    assert states[fresh].status == "queued" and states[lost].status == "done"
    assert states[lost].result["summary"] == "Nothing happened here since you were last in this room."
    assert states[forgotten].status == "failed" and "in time" in states[forgotten].error
    assert states[dead].status == "failed" and "stopped" in states[dead].error


@pytest.mark.django_db
def test_the_jobs_are_in_the_api_schema(people):
    paths = client_for(people["bob"]).get("/api/schema/?format=json").json()["paths"]
    # (with the error codes every operation documents: office.schema)
    ask, job = paths["/api/assistant/ask/"]["post"]["responses"], paths["/api/assistant/jobs/{job_id}/"]["get"]["responses"]
    assert {code for code in ask if code.startswith("2") or code == "504"} == {"200", "202", "504"}
    assert {code for code in job if code.startswith("2")} == {"200", "202"} and "504" not in job
    assert "text/event-stream" in paths["/api/rooms/{room_id}/catch-up/stream/"]["get"]["responses"]["200"]["content"]


# --- the page: the catch-up streamed ---

def _since_yesterday(people, office) -> None:
    """Bob left Atlas an hour ago; since then the projector was fixed (a chat line)."""
    RoomVisit.objects.create(user=people["bob"], room=office["atlas"], entered_at=timezone.now() - dt.timedelta(hours=2),
                             left_at=timezone.now() - dt.timedelta(hours=1))
    room_services.system_message_send(room=office["atlas"], body="Projector fixed.")


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_catch_up_events_arrive_before_the_model_has_finished(people, office):
    # given something happened in Atlas since bob left, and a model that writes the summary over ~2.5 s
    from channels.db import database_sync_to_async

    await database_sync_to_async(_since_yesterday)(people, office)
    install(by_purpose(room_catch_up=CATCH_UP), chunk_chars=8, chunk_delay=0.2)
    client = AsyncClient()
    await client.aforce_login(people["bob"])
    # when bob asks to be caught up through the stream, as under Daphne
    started = time.monotonic()
    r = await client.get(f"/api/rooms/{office['atlas'].pk}/catch-up/stream/")
    assert r.status_code == 200 and r["Content-Type"] == "text/event-stream"
    arrivals = []
    async for part in r.streaming_content:
        arrivals.extend((time.monotonic() - started, event) for event in parse_sse(part))
    # then the events and the counted summary came first, long before the model's summary was done
    (events_at, first), *rest = arrivals
    done_at, done = rest[-1]
    assert first["type"] == "events" and done["type"] == "done"
    assert done_at - events_at > 1.5 and events_at < 1.0
    assert any("Projector fixed." in e["text"] for e in first["events"])
    assert first["source"] == "fallback" and first["summary"].startswith("Since you left: ")
    # and the summary streamed as written, then done is exactly what the catch-up endpoint's job returns
    deltas = [e["text"] for _, e in rest[:-1]]
    assert all(e["type"] == "delta" for _, e in rest[:-1]) and len(deltas) >= 4
    assert "".join(deltas) == done["summary"] == CATCH_UP["summary"]
    room = office["atlas"]
    plain = await database_sync_to_async(qa.catch_up)(user=people["bob"], room=room)
    assert {k: v for k, v in done.items() if k != "type"} == plain
    assert done["source"] == "model" and done["highlights"] == [1] and done["events"] == first["events"]


@pytest.mark.django_db
def test_the_catch_up_stream_degrades_and_refuses_like_the_endpoint(people, office):
    bob = client_for(people["bob"])
    url = f"/api/rooms/{office['atlas'].pk}/catch-up/stream/"
    # nothing happened: the events (none) and done, without a model
    transport = install(by_purpose())
    events = parse_sse(b"".join(bob.get(url).streaming_content))
    assert [e["type"] for e in events] == ["events", "done"] and events[-1]["source"] == "none"
    assert transport.requests == []
    # no model answers: the counted summary, marked unavailable
    _since_yesterday(people, office)
    events = parse_sse(b"".join(bob.get(url).streaming_content))
    assert [e["type"] for e in events] == ["events", "done"]
    assert events[-1]["unavailable"] is True and events[-1]["summary"] == events[0]["summary"]
    # a room bob may not enter is a JSON 404 before any event
    r = bob.get(f"/api/rooms/{office['vault'].pk}/catch-up/stream/")
    assert r.status_code == 404 and not r.streaming and r.json()["error"]["message"]


@pytest.mark.django_db
def test_catch_up_through_the_job_is_what_the_stream_ends_with(people, office):
    _since_yesterday(people, office)
    install(by_purpose(room_catch_up=CATCH_UP))
    bob = client_for(people["bob"])
    done = parse_sse(b"".join(bob.get(f"/api/rooms/{office['atlas'].pk}/catch-up/stream/").streaming_content))[-1]
    job = through_job(bob, "get", f"/api/rooms/{office['atlas'].pk}/catch-up/").json()
    assert job["kind"] == "catch_up" and job["result"] == {k: v for k, v in done.items() if k != "type"}
