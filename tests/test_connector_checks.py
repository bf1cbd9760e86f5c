"""Synthetic connector checks against real receivers on 127.0.0.1 (docs/adr/0017): a saved webhook
endpoint is sent a signed request marked synthetic; a failing check opens the breaker live steps go
through, so they wait instead of being sent into a broken receiver, and a passing check closes it;
calendar feeds, the model servers, the mail server and the channel layer are checked the same way;
the results are on the workflows page, in the API and in /metrics."""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import threading
import uuid

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from assistant import llm
from automation import services as automation_services
from automation.models import CalendarFeed
from automation.workflows import breakers, services
from automation.workflows.connectors import webhook_publish
from automation.workflows.definitions import step, workflow
from automation.workflows.models import (
    ConnectorCheck,
    OutboxMessage,
    WebhookDelivery,
    WebhookEndpoint,
    WorkflowRun,
    WorkflowStep,
)
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)
ICS = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:a@test\r\n"
       b"DTSTART:20250101T090000Z\r\nDTEND:20250101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def announce(ctx):
    return webhook_publish(ctx, "task.created", {"task_id": ctx.input["task_id"]})


@workflow("test.checks.announce", version=1)
def announce_flow():
    return [step(announce, retries=4, backoff=1.0)]


class HttpReceiver:
    """An HTTP server in a thread that answers every request with `code` (settable) and records it.
    `answer` may be replaced to shape the response per request."""

    def __init__(self, code: int = 200):
        self.code = code
        self.requests: list[dict] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append({"method": self.command, "path": self.path, "headers": headers, "body": body})
                code, content, extra = receiver.answer(self.command, self.path, headers)
                self.send_response(code)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _handle  # noqa: N815 (http.server's names)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, method: str, path: str, headers: dict) -> tuple[int, bytes, dict]:
        return self.code, b"ok", {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def synthetic(self) -> list[dict]:
        return [r for r in self.requests if r["headers"].get("x-office-synthetic") == "1"]

    def live(self) -> list[dict]:
        return [r for r in self.requests if r["headers"].get("x-office-synthetic") != "1"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_receiver():
    made: list[HttpReceiver] = []

    def make(code: int = 200) -> HttpReceiver:
        made.append(HttpReceiver(code))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture(autouse=True)
def eager_celery(settings):
    from office.celery import app

    settings.OFFICE_WORKFLOW_BREAKER_PREFIX = f"test-breaker:{uuid.uuid4().hex}"
    settings.OFFICE_WORKFLOW_BREAKER_FAILURES = 3
    settings.OFFICE_WORKFLOW_BREAKER_RESET_SECONDS = 60
    # The model checks run in every sweep: point them where nothing listens unless a test serves them.
    settings.LLM_BASE_URL = settings.LLM_LARGE_BASE_URL = f"http://127.0.0.1:{free_port()}/v1"
    breakers.breakers_forget()
    llm.reset_breakers()
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False
    breakers.breakers_forget()
    llm.reset_breakers()


def free_port() -> int:
    """A port nothing listens on (bound, then released): connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def latest(connector: str, target) -> ConnectorCheck:
    return ConnectorCheck.objects.filter(connector=connector, target=str(target)).order_by("-checked_at", "-id").first()


def time_passes():
    WorkflowStep.objects.filter(next_retry_at__isnull=False).update(next_retry_at=timezone.now())
    OutboxMessage.objects.update(available_at=timezone.now())
    services.workflow_tick()


def test_a_saved_endpoint_is_sent_a_signed_request_marked_synthetic(people, http_receiver):
    # given a receiver
    hook = http_receiver(204)

    # when an admin sets up an endpoint for it
    endpoint = WebhookEndpoint.objects.create(url=f"{hook.base}/hooks", description="Ops bot", event_types=["task.*"])

    # then it got one request, signed with the endpoint's secret and marked twice as synthetic
    assert len(hook.requests) == 1
    request = hook.requests[0]
    assert request["headers"]["x-office-synthetic"] == "1"
    assert request["headers"]["webhook-id"].startswith("msg_synthetic_")
    payload = Webhook(endpoint.secret).verify(request["body"], request["headers"])
    assert payload["type"] == "office.synthetic_check" and payload["data"] == {"synthetic": True}
    # and the check is recorded as passed, with its latency, not as a delivery of an event
    check = latest("webhook", endpoint.pk)
    assert (check.ok, check.reason, check.breaker_state, check.detail) == (True, "config", "closed", "HTTP 204")
    assert check.latency_ms > 0 and check.label == f"Ops bot (http://127.0.0.1:{hook.server.server_address[1]})"
    assert WebhookDelivery.objects.count() == 0

    # when the endpoint is changed to another receiver, that one is checked at once
    other = http_receiver(200)
    endpoint.url = f"{other.base}/hooks"
    endpoint.save()
    assert len(other.synthetic()) == 1 and len(hook.requests) == 1
    assert ConnectorCheck.objects.filter(connector="webhook", target=str(endpoint.pk)).count() == 2

    # when it is switched off, it is no longer checked and its results are gone
    endpoint.active = False
    endpoint.save()
    assert len(other.requests) == 1
    assert not ConnectorCheck.objects.filter(connector="webhook").exists()


def test_a_failing_check_opens_the_breaker_so_live_steps_wait_and_a_pass_closes_it(people, http_receiver):
    # given a receiver that is down (503) when its endpoint is set up
    hook = http_receiver(503)
    endpoint = WebhookEndpoint.objects.create(url=f"{hook.base}/hooks", event_types=["task.*"])
    check = latest("webhook", endpoint.pk)
    assert (check.ok, check.breaker_state, check.detail) == (False, "open", "HTTP 503")
    breaker = breakers.breaker_for(f"webhook.{endpoint.pk}")
    assert breaker.current_state == "open"

    # when a workflow wants to send it an event, the step waits without calling the receiver
    run = services.workflow_start("test.checks.announce", {"task_id": 1}, idempotency_key="checks-1")
    step_row = WorkflowStep.objects.get(run=run)
    assert hook.live() == []
    assert (step_row.status, step_row.attempts) == ("pending", 0)
    assert "circuit open" in step_row.last_error
    assert list(step_row.attempt_log.values_list("outcome", flat=True)) == ["postponed"]

    # when the receiver is back and the scheduled checks run, the check passes and closes the breaker
    hook.code = 200
    assert services.connector_checks_due()["queued"] >= 1
    check = latest("webhook", endpoint.pk)
    assert (check.ok, check.reason, check.breaker_state) == (True, "schedule", "closed")
    assert breaker.current_state == "closed"

    # and the waiting step goes through when it comes due
    time_passes()
    run.refresh_from_db()
    assert run.status == WorkflowRun.Status.SUCCEEDED
    assert len(hook.live()) == 1
    assert Webhook(endpoint.secret).verify(hook.live()[0]["body"], hook.live()[0]["headers"])["type"] == "task.created"


def test_a_refused_connection_opens_the_breaker_but_a_refusal_does_not(people, http_receiver):
    # given an endpoint where nothing listens, and one whose receiver rejects the check (401)
    gone = WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{free_port()}/hooks", event_types=["*"])
    strict = http_receiver(401)
    picky = WebhookEndpoint.objects.create(url=f"{strict.base}/hooks", event_types=["*"])

    # then the first is an outage: failing, breaker open
    check = latest("webhook", gone.pk)
    assert not check.ok and "refused" in check.detail.lower() and check.breaker_state == "open"
    # and the second fails the check, but its breaker stays closed: a refusal is not an outage, and
    # live work meets the same refusal as a failed step an operator sees
    check = latest("webhook", picky.pk)
    assert (check.ok, check.breaker_state) == (False, "closed")
    assert "refused the check" in check.detail and "401" in check.detail


def test_calendar_feed_checks_fetch_conditionally_and_guard_the_import(people, http_receiver):
    # given a feed server that honours If-Modified-Since
    feed_server = http_receiver(200)
    feed_server.answer = lambda method, path, headers: (
        (304, b"", {}) if headers.get("if-modified-since") and feed_server.code == 200 else
        (feed_server.code, ICS if feed_server.code == 200 else b"down", {"Content-Type": "text/calendar"}))

    # when an admin sets up a member's feed on it, it is fetched and read at once
    feed = automation_services.calendar_feed_add(user=people["bob"], actor=people["dana"], name="Bob's work",
                                                 url=f"{feed_server.base}/private-token/bob.ics")
    check = latest("calendar_feed", feed.pk)
    assert check.ok and check.detail == f"{len(ICS)} bytes of iCalendar"
    assert check.label == "Bob's work (127.0.0.1)"  # the URL's token is not shown
    assert "if-modified-since" not in feed_server.requests[0]["headers"]

    # when it was imported, the next check asks only whether it changed
    automation_services.calendar_feed_import(feed)
    feed.refresh_from_db()
    services.connector_check_run(connector="calendar_feed", target=str(feed.pk))
    assert feed_server.requests[-1]["headers"]["if-modified-since"]
    assert latest("calendar_feed", feed.pk).detail == "not modified since the last import"

    # when the server fails, the check opens the feed's breaker and the import leaves it alone
    feed_server.code = 503
    services.connector_check_run(connector="calendar_feed", target=str(feed.pk))
    assert latest("calendar_feed", feed.pk).breaker_state == "open"
    asked = len(feed_server.requests)
    assert automation_services.calendar_import_all() == {"imported": 0, "failed": 1}
    assert len(feed_server.requests) == asked
    assert "circuit open" in CalendarFeed.objects.get(pk=feed.pk).last_error

    # when it is back, a passing check closes the breaker and the import fetches again
    feed_server.code = 200
    services.connector_check_run(connector="calendar_feed", target=str(feed.pk))
    assert latest("calendar_feed", feed.pk).breaker_state == "closed"
    assert automation_services.calendar_import_all() == {"imported": 1, "failed": 0}


def test_model_endpoint_checks_ask_for_the_models_and_drive_the_assistants_breaker(people, http_receiver, settings):
    # given one OpenAI-compatible server for both tiers, behind an API key
    server = http_receiver(200)
    server.answer = lambda method, path, headers: (
        (server.code, json.dumps({"object": "list", "data": [{"id": "office-small"}]}).encode(), {})
        if path == "/v1/models" else (404, b"", {}))
    settings.LLM_BASE_URL = settings.LLM_LARGE_BASE_URL = f"{server.base}/v1"
    settings.LLM_MODEL = "office-small"
    settings.LLM_API_KEY = "sk-test"

    # when the model endpoints are checked
    check = services.connector_check_run(connector="model_endpoint", target="small")

    # then one GET /v1/models with the key was made, no generation, and the check passed
    assert [(r["method"], r["path"]) for r in server.requests] == [("GET", "/v1/models")]
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-test"
    assert check.ok and check.detail == "serves office-small" and check.breaker_state == "closed"
    assert services.connector_check_run(connector="model_endpoint", target="large") is None  # same server

    # when the server fails, the assistant's own breaker for it opens: live calls fail fast
    server.code = 502
    check = services.connector_check_run(connector="model_endpoint", target="small")
    assert (check.ok, check.breaker_state, check.detail) == (False, "open", "HTTP 502")
    assert llm.breaker_for(llm.endpoint_for("small")).current_state == "open"

    # and recovery closes it
    server.code = 200
    assert services.connector_check_run(connector="model_endpoint", target="small").breaker_state == "closed"
    assert llm.breaker_for(llm.endpoint_for("small")).current_state == "closed"


class SmtpServer:
    """Just enough SMTP to be checked: greeting, EHLO/HELO, NOOP, QUIT; records the commands."""

    def __init__(self):
        self.commands: list[str] = []
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write(b"220 test ESMTP\r\n")
                for raw in self.rfile:
                    verb = raw.decode().strip().split(" ")[0].upper()
                    server.commands.append(verb)
                    if verb in ("EHLO", "HELO"):
                        self.wfile.write(b"250 test\r\n")
                    elif verb == "NOOP":
                        self.wfile.write(b"250 OK\r\n")
                    elif verb == "QUIT":
                        self.wfile.write(b"221 Bye\r\n")
                        return
                    else:
                        self.wfile.write(b"502 Not here\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_mail_check_opens_a_session_without_sending_mail(settings):
    # given the SMTP backend pointed at a local mail server
    smtp = SmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    try:
        # when the mail connector is checked
        check = services.connector_check_run(connector="email", target="default")
    finally:
        smtp.close()

    # then the server was greeted with NOOP, and no message was sent
    assert check.ok and check.detail == f"127.0.0.1:{smtp.port} answered NOOP" and check.label == f"127.0.0.1:{smtp.port}"
    assert "NOOP" in smtp.commands and "MAIL" not in smtp.commands and "DATA" not in smtp.commands

    # when the server is gone, the check fails and the e-mail breaker opens
    check = services.connector_check_run(connector="email", target="default")
    assert (check.ok, check.breaker_state) == (False, "open")
    assert breakers.breaker_for("email").current_state == "open"


def test_the_room_chat_check_round_trips_the_channel_layer_without_posting(office):
    from rooms.models import ChatMessage

    check = services.connector_check_run(connector="room_chat", target="default")

    assert check.ok and check.breaker_state == "" and "round trip" in check.detail
    assert not ChatMessage.objects.exists()


def test_the_hourly_schedule_is_stored_once(settings):
    from django_celery_beat.models import PeriodicTask

    assert settings.OFFICE_CONNECTOR_CHECK_INTERVAL_SECONDS == 3600
    services.workflow_schedules_ensure()
    services.workflow_schedules_ensure()
    entry = PeriodicTask.objects.get(task="workflows.connector_checks")
    assert entry.enabled and entry.interval.every == 3600 and entry.interval.period == "seconds"


def test_results_are_on_the_page_in_the_api_and_in_the_metrics(people, http_receiver, settings):
    # given a receiver that passes its check and an endpoint where nothing listens
    settings.OFFICE_CONNECTOR_CHECK_HISTORY = 2
    hook = http_receiver(200)
    good = WebhookEndpoint.objects.create(url=f"{hook.base}/hooks", description="Good hook", event_types=["*"])
    bad = WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{free_port()}/x", description="Dead hook",
                                         event_types=["*"])
    for _ in range(3):
        services.connector_check_run(connector="webhook", target=str(bad.pk))
    assert ConnectorCheck.objects.filter(target=str(bad.pk)).count() == 2  # the history is pruned

    # when an admin opens the workflows page
    page = client_for(people["dana"]).get("/workflows/").content.decode()

    # then the table shows both, the failing one first, with its error
    table = page[page.index('id="connector-checks"'):]
    assert table.index("Dead hook") < table.index("Good hook")
    assert "failing" in table and "refused" in table.lower() and " ms</td>" in table
    assert client_for(people["bob"]).get("/workflows/").status_code == 403

    # and the API gives the same results
    rows = client_for(people["dana"]).get("/api/workflows/connector-checks/").json()
    assert [(r["connector"], r["target"], r["ok"]) for r in rows[:2]] == [("webhook", str(bad.pk), False),
                                                                           ("webhook", str(good.pk), True)]
    assert rows[1]["latency_ms"] > 0 and rows[0]["breaker_state"] == "open"
    assert client_for(people["bob"]).get("/api/workflows/connector-checks/").status_code == 403

    # and /metrics has them, labelled by connector and target
    metrics = client_for(people["dana"]).get("/metrics").content.decode()
    assert f'office_connector_check_ok{{connector="webhook",target="{bad.pk}"}} 0.0' in metrics
    assert f'office_connector_check_ok{{connector="webhook",target="{good.pk}"}} 1.0' in metrics
    assert f'office_connector_check_latency_seconds{{connector="webhook",target="{good.pk}"}}' in metrics

    # when an endpoint is deleted, its results go with it
    bad.delete()
    assert not ConnectorCheck.objects.filter(target=str(bad.pk)).exists()


def test_all_checks_run_by_hand_after_a_settings_change(office, settings):
    from io import StringIO

    from django.core.management import call_command

    # given the mail backend that keeps mail in memory, and no model server where the settings point
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    out, err = StringIO(), StringIO()

    # when an operator runs every check now
    call_command("connector_checks", stdout=out, stderr=err)

    # then each connector is listed with its state, and the dead model server opened its breaker
    lines = out.getvalue().splitlines()
    assert any(line.startswith("email locmem: ok") for line in lines)
    assert any(line.startswith("room_chat channel layer: ok") for line in lines)
    assert any(line.startswith("model_endpoint ") and "FAILING" in line and "breaker open" in line for line in lines)
    assert err.getvalue().strip() == "1 failing"
    assert {c.reason for c in ConnectorCheck.objects.all()} == {"manual"}
