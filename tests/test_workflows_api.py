"""Who sees what: the run history (pages and REST) is for admins, the approvals inbox for the
assignee and admins, notifications for their owner; actions are POSTs through the services."""

from __future__ import annotations

import pytest
from django.test import Client

from automation.workflows import services
from automation.workflows.definitions import step, workflow
from automation.workflows.errors import PermanentError
from automation.workflows.models import Approval, Notification, WorkflowEvent, WorkflowRun

pytestmark = pytest.mark.django_db(transaction=True)
BROKEN = {"on": True}


def flaky_export(ctx):
    if BROKEN["on"]:
        raise PermanentError("the export target refused the file")
    return {"exported": True}


def publish(ctx):
    return "published"


@workflow("test.api.export", version=1)
def export_flow():
    return [step(flaky_export), step(publish, needs_approval=True,
                                     approver=lambda ctx: ctx.input.get("approver_id"),
                                     approval_summary="Publish the quarterly export")]


@pytest.fixture(autouse=True)
def eager_celery():
    from office.celery import app

    BROKEN["on"] = True
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


@pytest.fixture
def failed_run(people):
    run = services.workflow_start("test.api.export", {"approver_id": people["bob"].pk}, idempotency_key="export-1",
                                  actor=people["alice"])
    run.refresh_from_db()
    assert run.status == "failed"
    return run


def test_members_cannot_see_the_run_history(people, failed_run, client_of):
    bob = client_of(people["bob"])
    assert bob.get("/workflows/").status_code == 403
    assert bob.get(f"/workflows/runs/{failed_run.pk}/").status_code == 403
    assert bob.post(f"/workflows/runs/{failed_run.pk}/retry/").status_code == 403
    for path in ("/api/workflows/runs/", f"/api/workflows/runs/{failed_run.pk}/"):
        response = bob.get(path)
        assert response.status_code == 403
        assert set(response.json()["error"]) == {"code", "message", "detail"}
    assert bob.post(f"/api/workflows/runs/{failed_run.pk}/cancel/", {}, content_type="application/json").status_code == 403
    failed_run.refresh_from_db()
    assert failed_run.status == "failed"


def test_anonymous_visitors_are_sent_to_sign_in_or_refused(failed_run):
    anonymous = Client()
    assert anonymous.get("/workflows/").status_code == 302
    assert anonymous.get("/workflows/approvals/").status_code == 302
    assert anonymous.get("/api/workflows/approvals/").status_code == 403
    assert anonymous.get("/api/notifications/").status_code == 403


def test_admin_sees_what_failed_why_and_retries_from_the_page(people, failed_run, client_of):
    dana = client_of(people["dana"])
    listing = dana.get("/workflows/?status=failed")
    assert listing.status_code == 200
    assert f'data-run-id="{failed_run.pk}"' in listing.content.decode()
    assert dana.get("/workflows/?status=succeeded").content.decode().count("data-run-id=") == 0

    page = dana.get(f"/workflows/runs/{failed_run.pk}/").content.decode()
    assert "the export target refused the file" in page
    assert "Retry now" in page and "Skip this step" in page and "Cancel the run" in page
    assert "csrfmiddlewaretoken" in page

    # the button POSTs with CSRF (enforced here) and the fixed cause lets the run go on
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(people["dana"])
    assert strict.post(f"/workflows/runs/{failed_run.pk}/retry/").status_code == 403  # no token
    BROKEN["on"] = False
    response = dana.post(f"/workflows/runs/{failed_run.pk}/retry/")
    assert response.status_code == 302
    failed_run.refresh_from_db()
    assert failed_run.status == "waiting_approval"
    assert WorkflowEvent.objects.filter(run=failed_run, action="retried", actor=people["dana"]).exists()


def test_run_history_over_rest(people, failed_run, client_of):
    dana = client_of(people["dana"])
    runs = dana.get("/api/workflows/runs/?status=failed").json()
    assert [r["id"] for r in runs] == [failed_run.pk]
    assert dana.get("/api/workflows/runs/?status=nonsense").status_code == 400

    detail = dana.get(f"/api/workflows/runs/{failed_run.pk}/").json()
    assert detail["actions"] == ["retry", "skip", "cancel"]
    assert detail["steps"][0]["status"] == "failed"
    assert detail["steps"][0]["attempt_log"][0]["outcome"] == "failed"
    assert "refused" in detail["steps"][0]["last_error"]

    skipped = dana.post(f"/api/workflows/runs/{failed_run.pk}/skip/", {}, content_type="application/json")
    assert skipped.status_code == 200 and skipped.json()["status"] == "waiting_approval"
    again = dana.post(f"/api/workflows/runs/{failed_run.pk}/skip/", {}, content_type="application/json")
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid"
    assert dana.get("/api/workflows/runs/999999/").status_code == 404
    assert dana.post(f"/api/workflows/runs/{failed_run.pk}/explode/", {}, content_type="application/json").status_code == 404


def test_approvals_inbox_shows_an_approval_to_its_assignee_and_admins_only(people, failed_run, client_of):
    services.run_skip_step(failed_run, people["dana"])
    approval = Approval.objects.get(run=failed_run)

    bob, carol, dana = (client_of(people[name]) for name in ("bob", "carol", "dana"))
    assert [a["id"] for a in bob.get("/api/workflows/approvals/").json()] == [approval.pk]
    assert carol.get("/api/workflows/approvals/").json() == []
    assert [a["id"] for a in dana.get("/api/workflows/approvals/").json()] == [approval.pk]
    assert "Publish the quarterly export" in bob.get("/workflows/approvals/").content.decode()
    assert "Publish the quarterly export" not in carol.get("/workflows/approvals/").content.decode()

    # carol cannot decide it (it looks missing to her), bob can
    refused = carol.post(f"/api/workflows/approvals/{approval.pk}/decide/", {"approve": True},
                         content_type="application/json")
    assert refused.status_code == 404
    assert bob.post(f"/api/workflows/approvals/{approval.pk}/decide/", {"note": "x"},
                    content_type="application/json").status_code == 400
    decided = bob.post(f"/api/workflows/approvals/{approval.pk}/decide/", {"approve": True, "note": "go"},
                       content_type="application/json")
    assert decided.status_code == 200
    assert decided.json()["decision"] == "approved" and decided.json()["decided_by"] == "bob"
    assert WorkflowRun.objects.get(pk=failed_run.pk).status == "succeeded"

    twice = bob.post(f"/api/workflows/approvals/{approval.pk}/decide/", {"approve": False},
                     content_type="application/json")
    assert twice.status_code == 400
    assert [a["decision"] for a in dana.get("/api/workflows/approvals/?decision=all").json()] == ["approved"]


def test_rejecting_from_the_inbox_page(people, failed_run, client_of):
    services.run_skip_step(failed_run, people["dana"])
    approval = Approval.objects.get(run=failed_run)
    bob = client_of(people["bob"])
    response = bob.post(f"/workflows/approvals/{approval.pk}/decide/", {"decision": "reject", "note": "not yet"})
    assert response.status_code == 302
    approval.refresh_from_db()
    assert (approval.decision, approval.decided_by, approval.note) == ("rejected", people["bob"], "not yet")
    assert WorkflowRun.objects.get(pk=failed_run.pk).status == "cancelled"


def test_notifications_are_private_and_can_be_marked_read(people, client_of):
    mine = services.notification_create(user=people["alice"], title="For alice")
    services.notification_create(user=people["alice"], title="Also for alice")
    services.notification_create(user=people["bob"], title="For bob")
    alice, bob = client_of(people["alice"]), client_of(people["bob"])

    inbox = alice.get("/api/notifications/").json()
    assert inbox["unread"] == 2
    assert [n["title"] for n in inbox["notifications"]] == ["Also for alice", "For alice"]

    # bob cannot mark alice's notification read
    assert bob.post("/api/notifications/read/", {"ids": [mine.pk]}, content_type="application/json").json()["marked"] == 0
    assert alice.post("/api/notifications/read/", {}, content_type="application/json").status_code == 400
    marked = alice.post("/api/notifications/read/", {"ids": [mine.pk]}, content_type="application/json").json()
    assert marked == {"marked": 1, "unread": 1}
    assert [n["title"] for n in alice.get("/api/notifications/?unread=1").json()["notifications"]] == ["Also for alice"]
    assert "For bob" not in alice.get("/notifications/").content.decode()
    alice.post("/notifications/read/")
    assert Notification.objects.filter(user=people["alice"], read_at__isnull=True).count() == 0
