"""Tasks, tickets and digests over REST and on their pages: per-room access, 404 the same for
missing and forbidden, changes through the services (audited), errors in the standard shape."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from automation import services
from automation.models import AuditEntry, BusyInterval, Task, Ticket

CALENDARS = Path(__file__).parent / "fixtures" / "calendars"


@pytest.fixture
def work(people, office):
    alice, bob = people["alice"], people["bob"]
    return {
        "vault_task": services.task_create(title="Vault inventory", room=office["vault"], owner=alice, actor=alice),
        "atlas_task": services.task_create(title="Atlas whiteboard", room=office["atlas"], owner=people["carol"],
                                           actor=alice),
        "bobs_task": services.task_create(title="Bob's own", owner=bob, due_date=dt.date.today(), actor=bob),
    }


@pytest.mark.django_db
def test_api_needs_a_session(work):
    response = Client().get("/api/tasks/")
    assert response.status_code in (401, 403)
    assert "error" in response.json()


@pytest.mark.django_db
def test_bob_cannot_see_vault_tasks_and_gets_the_same_404_as_for_a_missing_one(people, office, work, client_of):
    bob = client_of(people["bob"])

    # when
    listed = {t["title"] for t in bob.get("/api/tasks/").json()}
    forbidden = bob.get(f"/api/tasks/{work['vault_task'].id}/")
    missing = bob.get("/api/tasks/999999/")
    room_tab = bob.get(f"/api/tasks/?tab=room&room={office['vault'].id}")
    patch = bob.patch(f"/api/tasks/{work['vault_task'].id}/", {"status": "done"}, content_type="application/json")

    # then
    assert listed == {"Atlas whiteboard", "Bob's own"}
    assert forbidden.status_code == missing.status_code == room_tab.status_code == patch.status_code == 404
    assert forbidden.json() == missing.json() == patch.json()
    assert forbidden.json()["error"]["code"] == "not_found"
    assert Task.objects.get(pk=work["vault_task"].id).status == "open"


@pytest.mark.django_db
def test_alice_and_admin_see_vault_tasks(people, work, client_of):
    assert client_of(people["alice"]).get(f"/api/tasks/{work['vault_task'].id}/").status_code == 200
    everything = {t["title"] for t in client_of(people["dana"]).get("/api/tasks/").json()}
    assert everything == {"Vault inventory", "Atlas whiteboard", "Bob's own"}


@pytest.mark.django_db
def test_tabs_mine_team_and_room(people, office, work, client_of):
    alice = client_of(people["alice"])
    mine = [t["title"] for t in alice.get("/api/tasks/?tab=mine").json()]
    team = [t["title"] for t in alice.get("/api/tasks/?tab=team").json()]  # alice is a member of the Vault
    room = [t["title"] for t in alice.get(f"/api/tasks/?tab=room&room={office['atlas'].id}").json()]
    assert mine == ["Vault inventory"]
    assert team == ["Vault inventory"]
    assert room == ["Atlas whiteboard"]


@pytest.mark.django_db
def test_create_and_update_through_api_are_audited(people, office, client_of):
    bob = client_of(people["bob"])

    # when
    created = bob.post("/api/tasks/", {"title": "Fix the kettle", "owner": people["carol"].id,
                                       "room": office["atlas"].id, "due_date": "2030-01-10"},
                       content_type="application/json")
    task_id = created.json()["id"]
    updated = bob.patch(f"/api/tasks/{task_id}/", {"status": "in_progress", "reason": "started"},
                        content_type="application/json")
    history = bob.get(f"/api/tasks/{task_id}/history/").json()

    # then
    assert created.status_code == 201 and created.json()["owner_name"] == "Carol Chen"
    assert updated.status_code == 200 and updated.json()["status"] == "in_progress"
    assert [(h["action"], h["actor_label"]) for h in history] == [("created", "bob"), ("status:in_progress", "bob")]
    assert history[1]["before"] == {"status": "open"} and history[1]["reason"] == "started"


@pytest.mark.django_db
def test_bad_input_is_a_400_in_the_standard_shape(people, office, client_of):
    bob = client_of(people["bob"])
    blank = bob.post("/api/tasks/", {"title": ""}, content_type="application/json")
    in_vault = bob.post("/api/tasks/", {"title": "Sneak in", "room": office["vault"].id},
                        content_type="application/json")
    bad_status = bob.post("/api/tickets/", {"kind": "plumbing", "title": "x"}, content_type="application/json")
    assert blank.status_code == 400 and blank.json()["error"]["code"] == "invalid"
    assert in_vault.status_code == 404
    assert bad_status.status_code == 400
    assert not Task.objects.filter(title="Sneak in").exists()


@pytest.mark.django_db
def test_tickets_members_report_admins_change_status(people, office, client_of):
    bob, dana = client_of(people["bob"]), client_of(people["dana"])
    vault_ticket, _ = services.ticket_open(kind="facilities", room=office["vault"], severity="critical",
                                           title="Vault door sensor", detail="", source="rule:door",
                                           dedupe_key="door:vault", actor_label="rule:door")

    # when bob reports a problem in Atlas
    reported = bob.post("/api/tickets/", {"kind": "facilities", "room": office["atlas"].id, "severity": "high",
                                          "title": "Projector flickers"}, content_type="application/json")
    ticket_id = reported.json()["id"]

    # then bob sees his ticket, not the Vault one; he may not change status; dana can
    assert reported.status_code == 201
    assert [t["id"] for t in bob.get("/api/tickets/").json()] == [ticket_id]
    assert bob.get(f"/api/tickets/{vault_ticket.id}/").status_code == 404
    assert bob.patch(f"/api/tickets/{ticket_id}/", {"status": "resolved"},
                     content_type="application/json").status_code == 403
    resolved = dana.patch(f"/api/tickets/{ticket_id}/", {"status": "resolved", "reason": "new cable"},
                          content_type="application/json")
    assert resolved.status_code == 200 and resolved.json()["resolved_at"]
    bad = dana.patch(f"/api/tickets/{ticket_id}/", {"status": "acknowledged"}, content_type="application/json")
    assert bad.status_code == 400 and "cannot become" in bad.json()["error"]["message"]
    assert {t["id"] for t in dana.get("/api/tickets/?status=open").json()} == {vault_ticket.id}
    entry = AuditEntry.objects.get(subject_type="ticket", subject_id=ticket_id, action="status:resolved")
    assert (entry.actor, entry.reason) == (people["dana"], "new cable")


@pytest.mark.django_db
def test_digests_are_private(people, work, client_of):
    today = dt.date.today()
    services.digests_build(today)
    bob, carol = client_of(people["bob"]), client_of(people["carol"])

    mine = bob.get(f"/api/digests/{today.isoformat()}/")
    assert mine.status_code == 200
    assert [t["title"] for t in mine.json()["content"]["due"]] == ["Bob's own"]
    assert [d["date"] for d in bob.get("/api/digests/").json()] == [today.isoformat()]
    # carol's digest exists too, but only carol reads it; a bad date is a 404 as well
    assert carol.get(f"/api/digests/{today.isoformat()}/").json()["content"]["assigned"][0]["title"] == "Atlas whiteboard"
    assert bob.get("/api/digests/not-a-date/").status_code == 404
    assert client_of(people["dana"]).get(f"/api/digests/{today.isoformat()}/").status_code == 404


@pytest.mark.django_db
def test_calendar_upload_through_api(people, client_of):
    bob = client_of(people["bob"])
    uploaded = bob.post("/api/calendar/feeds/", {"name": "work", "content": (CALENDARS / "bob.ics").read_text()},
                        content_type="application/json")
    for_alice = bob.post("/api/calendar/feeds/", {"user": people["alice"].id, "url": "http://127.0.0.1:9/x.ics"},
                         content_type="application/json")
    assert uploaded.status_code == 201
    assert uploaded.json()["last_error"] == ""
    assert BusyInterval.objects.filter(user=people["bob"]).count() == uploaded.json()["busy_intervals"]
    assert for_alice.status_code == 403


@pytest.mark.django_db
def test_tasks_page_tabs_and_status_change_with_csrf(people, office, work):
    # given a browser-like client that enforces CSRF
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["bob"])

    # when
    page = client.get("/tasks/?tab=all")
    vault_page = client.get(f"/tasks/?room={office['vault'].id}")
    no_token = client.post(f"/tasks/{work['bobs_task'].id}/status/", {"status": "done"})
    token = page.cookies["csrftoken"].value
    with_token = client.post(f"/tasks/{work['bobs_task'].id}/status/", {"status": "done", "next": "/tasks/"},
                             HTTP_X_CSRFTOKEN=token)
    forbidden = client.post(f"/tasks/{work['vault_task'].id}/status/", {"status": "done"}, HTTP_X_CSRFTOKEN=token)

    # then
    html = page.content.decode()
    assert page.status_code == 200 and "Atlas whiteboard" in html and "Vault inventory" not in html
    assert vault_page.status_code == 404
    assert no_token.status_code == 403
    assert with_token.status_code == 302 and with_token["Location"] == "/tasks/"
    assert Task.objects.get(pk=work["bobs_task"].id).status == "done"
    assert forbidden.status_code == 404
    assert Task.objects.get(pk=work["vault_task"].id).status == "open"


@pytest.mark.django_db
def test_tasks_page_needs_login_and_new_task_form_works(people, client_of):
    assert Client().get("/tasks/").status_code == 302
    bob = client_of(people["bob"])
    response = bob.post("/tasks/new/", {"title": "Water the plants", "owner": people["bob"].id,
                                        "due_date": "2030-02-01"})
    assert response.status_code == 302
    task = Task.objects.get(title="Water the plants")
    assert task.owner == people["bob"] and task.due_date == dt.date(2030, 2, 1)
    assert "Water the plants" in bob.get("/tasks/").content.decode()


@pytest.mark.django_db
def test_the_pages_refuse_a_room_the_member_may_not_see_as_the_api_does(people, office, client_of):
    """A private room bob may not enter is "no such room" on the pages too, never silently dropped."""
    bob = client_of(people["bob"])
    response = bob.post("/tasks/new/", {"title": "Count the vault", "room": office["vault"].id}, follow=True)
    assert "no such room" in response.content.decode()
    assert not Task.objects.filter(title="Count the vault").exists()
    response = bob.post("/tickets/new/", {"kind": "it", "severity": "low", "title": "Vault door squeaks",
                                          "room": office["vault"].id}, follow=True)
    assert "no such room" in response.content.decode()
    assert not Ticket.objects.filter(title="Vault door squeaks").exists()
    api = bob.post("/api/tasks/", {"title": "Count the vault", "room": office["vault"].id},
                   content_type="application/json")
    assert api.status_code == 404 and "no such room" in api.content.decode()


@pytest.mark.django_db
def test_only_facilities_staff_change_tickets_whoever_calls_the_service(people, office):
    """The rule lives in the service, so a page, the API or a workflow cannot skip it."""
    from django.core.exceptions import PermissionDenied

    from automation import services

    ticket, _ = services.ticket_open(kind="it", room=office["open"], severity="low", title="Printer jam", detail="",
                                     source="member:bob", dedupe_key="", actor_label="bob")
    with pytest.raises(PermissionDenied):
        services.ticket_update(ticket, actor=people["bob"], status="resolved")
    assert services.ticket_update(ticket, actor="sensor rule: lamp", status="acknowledged").status == "acknowledged"
    assert services.ticket_resolve(ticket, actor=people["dana"], reason="fixed").status == "resolved"


@pytest.mark.django_db
def test_tickets_page_members_report_staff_resolve(people, office, client_of):
    bob, dana = client_of(people["bob"]), client_of(people["dana"])
    bob.post("/tickets/new/", {"kind": "it", "severity": "low", "title": "Printer jam", "room": office["open"].id})
    ticket = Ticket.objects.get(title="Printer jam")

    assert "Printer jam" in bob.get("/tickets/").content.decode()
    assert bob.post(f"/tickets/{ticket.id}/status/", {"status": "resolved"}).status_code == 403
    assert dana.post(f"/tickets/{ticket.id}/status/", {"status": "resolved"}).status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == "resolved"
    assert "Printer jam" not in dana.get("/tickets/?show=open").content.decode()


@pytest.mark.django_db
def test_schedules_command_is_idempotent():
    from django_celery_beat.models import PeriodicTask

    call_command("automation_schedules")
    call_command("automation_schedules")
    tasks = {t.name: t.task for t in PeriodicTask.objects.filter(name__startswith="automation: ")}
    assert tasks == {
        "automation: send due reminders": "automation.reminders_send_due",
        "automation: daily digests": "automation.digests_send_daily",
        "automation: import calendar feeds": "automation.calendars_import",
    }
