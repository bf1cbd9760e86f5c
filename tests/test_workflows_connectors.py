"""Outbound webhooks against a real HTTP receiver on 127.0.0.1: Standard Webhooks signatures
verify, failed deliveries are retried with the same webhook-id, a refusal is final, and a
receiver that keeps failing opens the circuit breaker, which postpones steps instead of failing them."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from automation.workflows import breakers, services
from automation.workflows.connectors import webhook_publish
from automation.workflows.definitions import step, workflow
from automation.workflows.models import OutboxMessage, WebhookDelivery, WebhookEndpoint, WorkflowStep

pytestmark = pytest.mark.django_db(transaction=True)


def announce_task(ctx):
    return webhook_publish(ctx, "task.created", {"task_id": ctx.input["task_id"], "title": "Order chairs"})


@workflow("test.hooks.task_created", version=1)
def task_created_flow():
    return [step(announce_task, retries=4, backoff=1.0)]


class Receiver:
    """An HTTP receiver in a thread: answers with the queued status codes (then the last one forever).
    Like a real receiver it drops the synthetic check a saved endpoint is sent (docs/adr/0017): it
    answers 204 and does not count it (tests/test_connector_checks.py covers the checks)."""

    def __init__(self, codes: list[int]):
        self.codes = list(codes)
        self.requests: list[tuple[dict, bytes]] = []
        self.synthetic: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.headers.get("x-office-synthetic") == "1":
                    receiver.synthetic.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    self.send_response(204)
                    self.end_headers()
                    return
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                code = receiver.codes.pop(0) if len(receiver.codes) > 1 else receiver.codes[0]
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(codes):
        made.append(Receiver(codes))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture(autouse=True)
def eager_celery(settings):
    from office.celery import app

    settings.OFFICE_WORKFLOW_BREAKER_PREFIX = f"test-breaker:{uuid.uuid4().hex}"
    settings.OFFICE_WORKFLOW_BREAKER_FAILURES = 3
    settings.OFFICE_WORKFLOW_BREAKER_RESET_SECONDS = 60
    breakers.breakers_forget()
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False
    breakers.breakers_forget()


def time_passes():
    WorkflowStep.objects.filter(next_retry_at__isnull=False).update(next_retry_at=timezone.now())
    OutboxMessage.objects.update(available_at=timezone.now())
    services.workflow_tick()


def test_signed_webhook_is_retried_until_the_receiver_accepts_it(people, receiver):
    # given an endpoint that fails twice, then accepts; and one that does not want this event
    hook = receiver([500, 503, 204])
    endpoint = WebhookEndpoint.objects.create(url=hook.url, event_types=["task.*"])
    WebhookEndpoint.objects.create(url=hook.url + "/other", event_types=["ticket.closed"])

    # when the workflow runs and time passes between retries
    run = services.workflow_start("test.hooks.task_created", {"task_id": 7}, idempotency_key="hook-1")
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("retrying", 1, 500)
    time_passes()
    time_passes()

    # then three requests arrived, all with the same webhook-id, each verifying with the secret
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert len(hook.requests) == 3
    ids = {headers["webhook-id"] for headers, _ in hook.requests}
    assert ids == {delivery.message_id}
    for headers, body in hook.requests:
        payload = Webhook(endpoint.secret).verify(body, headers)
        assert payload["type"] == "task.created" and payload["data"] == {"task_id": 7, "title": "Order chairs"}
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("succeeded", 3, 204)
    assert delivery.delivered_at is not None

    # and a forged or altered request does not verify
    headers, body = hook.requests[-1]
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(body.replace(b"Order", b"Steal"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=").verify(body, headers)


def test_a_refusal_is_final_and_other_endpoints_are_not_resent(people, receiver):
    good, gone = receiver([200]), receiver([410])
    first = WebhookEndpoint.objects.create(url=good.url, event_types=["*"])
    WebhookEndpoint.objects.create(url=gone.url, event_types=["task.created"])

    run = services.workflow_start("test.hooks.task_created", {"task_id": 8}, idempotency_key="hook-2")

    run.refresh_from_db()
    assert run.status == "failed" and "410" in run.error
    step_row = WorkflowStep.objects.get(run=run)
    assert step_row.attempts == 1
    assert WebhookDelivery.objects.get(endpoint__url=gone.url).status == "failed"

    # an operator retries after fixing the receiver: the first endpoint is not sent the event again
    gone.codes = [200]
    services.run_retry(run, people["dana"])
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert len(good.requests) == 1 and len(gone.requests) == 2
    assert WebhookDelivery.objects.get(endpoint=first).attempts == 1


def test_a_failing_receiver_opens_the_breaker_which_postpones_steps(people, receiver):
    # given a receiver that is down
    down = receiver([503])
    WebhookEndpoint.objects.create(url=down.url, event_types=["task.*"])
    run = services.workflow_start("test.hooks.task_created", {"task_id": 9}, idempotency_key="hook-3")
    time_passes()
    time_passes()  # three failures: the breaker opens
    assert len(down.requests) == 3
    step_row = WorkflowStep.objects.get(run=run)
    assert step_row.attempts == 3 and step_row.status == "pending"

    # when the step comes due again, the receiver is not called and the step is postponed by the
    # breaker's reset time, without using up an attempt
    time_passes()
    step_row.refresh_from_db()
    assert len(down.requests) == 3
    assert step_row.status == "pending" and step_row.attempts == 3
    assert "circuit open" in step_row.last_error
    assert step_row.next_retry_at > timezone.now() + timedelta(seconds=50)
    assert list(step_row.attempt_log.values_list("outcome", flat=True)) == ["retry", "retry", "retry", "postponed"]

    # another run to the same receiver is postponed at once, too
    other = services.workflow_start("test.hooks.task_created", {"task_id": 10}, idempotency_key="hook-4")
    assert len(down.requests) == 3
    assert WorkflowStep.objects.get(run=other).attempts == 0

    # when the reset time has passed and the receiver is back, the next try goes through
    down.codes = [200]
    breaker = breakers.breaker_for(f"webhook.{WebhookEndpoint.objects.get().pk}")
    storage = breaker._state_storage  # the shared state in Redis: opened 61 s ago
    storage._redis.set(storage._namespace("opened_at"), int((datetime.now(UTC) - timedelta(seconds=61)).timestamp()))
    time_passes()
    run.refresh_from_db()
    other.refresh_from_db()
    assert run.status == "succeeded" and other.status == "succeeded"
    assert breaker.current_state == "closed"


def test_only_json_events_from_configured_endpoints_are_sent(people, receiver):
    # no endpoint wants the event: nothing is sent, the step succeeds with no deliveries
    run = services.workflow_start("test.hooks.task_created", {"task_id": 11}, idempotency_key="hook-5")
    run.refresh_from_db()
    assert run.status == "succeeded" and WebhookDelivery.objects.count() == 0
    assert json.loads(json.dumps(WorkflowStep.objects.get(run=run).result)) == []
