"""The outcome dashboard (rooms/outcomes.py and each stage's outcomes.py): figures over known data,
through the API the page shares, and who may see which room's figures.

The week of March 1-7, 2026 (UTC), in Atlas unless said otherwise: meetings, action items proposed and
decided at known minutes, their tasks done at known times, a member's ticket and a sensor's ticket
resolved, and model calls with known tokens and latency. Everything is written through services (or
as the stage itself writes it) with the clock set to the moment it happened."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from unittest import mock

import pytest
from django.core.exceptions import ImproperlyConfigured

from assistant import services as assistant_services
from assistant.models import ActionItem, ModelCall
from automation import services as work_services
from automation.models import Task
from iot import services as iot_services
from iot.models import Rule, RuleFiring
from transcription.models import Meeting

pytestmark = pytest.mark.django_db

UTC = dt.UTC
SINCE, UNTIL = "2026-03-01", "2026-03-07"
LARGE = "http://llm-large.internal/v1"
SMALL = "http://llm-small.internal/v1"


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@contextmanager
def clock(moment: dt.datetime):
    """What the stages write now is written at `moment` (auto_now_add, services' timezone.now())."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def meeting(room, start: dt.datetime, end: dt.datetime) -> Meeting:
    with clock(start):
        m = Meeting.objects.create(room=room)
    Meeting.objects.filter(pk=m.pk).update(ended_at=end)
    return m


def proposal(room, text: str, when: dt.datetime, *, meeting_=None, shadow=False) -> ActionItem:
    with clock(when):
        return ActionItem.objects.create(room=room, meeting=meeting_, text=text, confidence=0.8, model_id="rules",
                                         prompt_version="rules.v1", dedupe_key=text.lower(), shadow=shadow)


def decide(item, user, action: str, when: dt.datetime, **fields):
    with clock(when):
        return assistant_services.action_item_decide(item=item, user=user, action=action, **fields)


def task_done(task, actor, when: dt.datetime):
    with clock(when):
        work_services.task_update(task, actor=actor, status="done")


def model_call(room, when, *, purpose, endpoint, model_id, prompt, completion, latency, status="ok"):
    with clock(when):
        ModelCall.objects.create(purpose=purpose, tier="large" if endpoint == LARGE else "small", model_id=model_id,
                                 endpoint=endpoint, prompt_name=purpose, prompt_version="v1", room=room, status=status,
                                 latency_ms=latency, prompt_tokens=prompt, completion_tokens=completion)


@pytest.fixture
def week(office, people):
    """The known week (see the module's docstring for the story)."""
    atlas, vault, dana = office["atlas"], office["vault"], people["dana"]
    # meetings: Mar 2 09:00-10:30 and 14:00-14:45 (2.25 h), Mar 4 10:00-12:00 (2 h); the Vault Mar 3 (1 h)
    planning = meeting(atlas, at(2, 9), at(2, 10, 30))
    meeting(atlas, at(2, 14), at(2, 14, 45))
    meeting(atlas, at(4, 10), at(4, 12))
    meeting(vault, at(3, 9), at(3, 10))

    # action items proposed on Mar 2 at 10:00 (and one on Mar 3, and a shadow ranker's that nobody sees)
    fix = proposal(atlas, "Fix the crash", at(2, 10), meeting_=planning)
    deck = proposal(atlas, "Send the deck", at(2, 10), meeting_=planning)
    venue = proposal(atlas, "Book the venue", at(2, 10), meeting_=planning)
    proposal(atlas, "Write the notes", at(3, 9), meeting_=planning)
    proposal(atlas, "Shadow guess", at(2, 10), meeting_=planning, shadow=True)
    # decided: fix approved after 10 min; deck edited, then approved after 30 min; venue rejected after 24 h
    decide(fix, dana, "approve", at(2, 10, 10))
    decide(deck, dana, "edit", at(2, 10, 20), text="Send the final deck")
    decide(deck, dana, "approve", at(2, 10, 30))
    decide(venue, dana, "reject", at(3, 10))
    # their tasks done: fix a day after approval, deck 2 days 6 hours after
    task_done(Task.objects.get(source_kind="action_item", source_id=str(fix.pk)), dana, at(3, 10, 10))
    task_done(Task.objects.get(source_kind="action_item", source_id=str(deck.pk)), dana, at(4, 16, 30))
    # and a task made by hand, done on Mar 4 too
    with clock(at(2, 8)):
        chairs = work_services.task_create(title="Order chairs", room=atlas, actor=dana)
    task_done(chairs, dana, at(4, 12))

    # tickets: a member's, open Mar 2 08:00-12:00; a sensor's, event 07:55, opened 08:00, resolved 09:00 on Mar 3
    with clock(at(2, 8)):
        leak, _ = work_services.ticket_open(kind="facilities", room=atlas, severity="medium", title="Leaking tap",
                                            detail="", source="member:bob", dedupe_key="", actor_label="bob")
    with clock(at(2, 12)):
        work_services.ticket_resolve(leak, actor=dana)
    sensor, _creds = iot_services.sensor_create(room=atlas, kind="projector", name="Atlas projector",
                                                device_id="atlas-projector")
    rule = Rule.objects.create(name="Projector offline", scope="sensor", sensor=sensor, sensor_kind="projector",
                               field="state", op="in", value=["offline"], for_seconds=300)
    with clock(at(3, 8)):
        projector, _ = work_services.ticket_open(
            kind="facilities", room=atlas, severity="high", title="Projector offline", detail="",
            source="rule:projector-offline", dedupe_key="projector", actor_label="rule:projector-offline")
        RuleFiring.objects.create(rule=rule, sensor=sensor, room=atlas, episode_start=at(3, 7, 55),
                                  dedupe_key="firing-1", ticket_id=projector.pk, outcome="ticket")
    with clock(at(3, 9)):
        work_services.ticket_resolve(projector, actor=dana)

    # model calls: Mar 2 a summary (1000+500 tokens, 1 s) and an extraction (3000+500, 3 s) on the large
    # endpoint, and a cached answer (no tokens, no latency); Mar 4 an answer on the small model (400+100, 0.2 s)
    model_call(atlas, at(2, 10), purpose="summary", endpoint=LARGE, model_id="big", prompt=1000, completion=500,
               latency=1000)
    model_call(atlas, at(2, 11), purpose="extract", endpoint=LARGE, model_id="big", prompt=3000, completion=500,
               latency=3000)
    model_call(atlas, at(2, 12), purpose="answer", endpoint=SMALL, model_id="small", prompt=0, completion=0,
               latency=0, status="cached")
    model_call(atlas, at(4, 9), purpose="answer", endpoint=SMALL, model_id="small", prompt=400, completion=100,
               latency=200)
    # the Vault's own call, Mar 3
    model_call(vault, at(3, 9), purpose="summary", endpoint=LARGE, model_id="big", prompt=1000, completion=0,
               latency=500)
    return office


PRICES = {LARGE: 0.5, "small": 0.1}  # per 1k tokens: the large endpoint by its URL, the small by model id


def outcomes(client, **query):
    response = client.get("/api/outcomes/", {"since": SINCE, "until": UNTIL, **query})
    assert response.status_code == 200, response.content
    body = response.json()
    return body, {s["key"]: s for s in body["sections"]}


def values(section, key):
    return next(s["values"] for s in section["series"] if s["key"] == key)


def figures(section):
    return {f["key"]: f["value"] for f in section["figures"]}


def test_the_figures_of_a_room_over_a_known_week(week, people, client_of, settings):
    # given prices for both models, and bob, a member who may read Atlas
    settings.OFFICE_MODEL_PRICE_PER_1K_TOKENS = PRICES
    # when he asks for Atlas's week
    body, sections = outcomes(client_of(people["bob"]), room=week["atlas"].pk)

    # then every day of the range is there, in pipeline order
    assert body["room"] == {"id": week["atlas"].pk, "name": "Atlas"}
    assert body["days"] == [f"2026-03-0{d}" for d in range(1, 8)]
    assert list(sections) == ["meetings", "action_items", "review_time", "approval_to_done", "model_tokens",
                              "model_latency", "model_cost", "cost_per_task", "tickets", "sensor_tickets"]
    # meeting hours by the day they started (the Vault's meeting is not Atlas's)
    assert values(sections["meetings"], "meeting_hours") == [0, 2.25, 0, 2.0, 0, 0, 0]
    assert figures(sections["meetings"]) == {"meeting_hours": 4.25, "meetings": 3}
    # action items: proposals by day made (no shadow), decisions by day taken, done by day their task was done
    items = sections["action_items"]
    assert values(items, "proposed") == [0, 3, 1, 0, 0, 0, 0]
    assert values(items, "approved") == [0, 2, 0, 0, 0, 0, 0]
    assert values(items, "edited") == [0, 1, 0, 0, 0, 0, 0]
    assert values(items, "rejected") == [0, 0, 1, 0, 0, 0, 0]
    assert values(items, "done") == [0, 0, 1, 1, 0, 0, 0]
    assert figures(items) == {"proposed": 4, "approved": 2, "edited": 1, "rejected": 1, "done": 2}
    # human review time, proposal -> approval or rejection: 10 and 30 min on Mar 2, 24 h on Mar 3
    review = sections["review_time"]
    assert values(review, "review_median") == [None, 1200, 86400, None, None, None, None]
    assert figures(review) == {"review_median": 1800}
    # approval -> done: one day, and two days six hours
    approval = sections["approval_to_done"]
    assert values(approval, "approval_to_done_median") == [None, None, 86400, 194400, None, None, None]
    assert figures(approval) == {"approval_to_done_median": 140400, "tasks_done": 3}
    # tickets: opened -> resolved 4 h (Mar 2) and 1 h (Mar 3); the sensor's chain 5 min to a ticket, 65 min to resolved
    assert values(sections["tickets"], "ticket_resolve_median") == [None, 14400, 3600, None, None, None, None]
    assert figures(sections["tickets"]) == {"ticket_resolve_median": 9000, "tickets_opened": 2, "tickets_resolved": 2}
    sensor = sections["sensor_tickets"]
    assert values(sensor, "event_to_ticket_median") == [None, None, 300, None, None, None, None]
    assert values(sensor, "event_to_resolved_median") == [None, None, 3900, None, None, None, None]
    assert figures(sensor) == {"event_to_ticket_median": 300, "event_to_resolved_median": 3900, "sensor_tickets": 1}

    # model tokens by day; latency percentiles over calls a model answered (the cached one is left out)
    assert values(sections["model_tokens"], "prompt_tokens") == [0, 4000, 0, 400, 0, 0, 0]
    assert values(sections["model_tokens"], "completion_tokens") == [0, 1000, 0, 100, 0, 0, 0]
    assert figures(sections["model_tokens"]) == {"model_calls": 4, "prompt_tokens": 4400, "completion_tokens": 1100}
    assert values(sections["model_latency"], "p50_ms") == [None, 2000, None, 200, None, None, None]
    assert values(sections["model_latency"], "p95_ms") == [None, 2900, None, 200, None, None, None]
    assert figures(sections["model_latency"]) == {"p50_ms": 1000, "p95_ms": 2800}
    # cost: Mar 2 5,000 large tokens at 0.5 (2.5), Mar 4 500 small tokens at 0.1 (0.05)
    cost = sections["model_cost"]
    assert values(cost, "cost") == [0, 2.5, 0, 0.05, 0, 0, 0]
    assert figures(cost) == {"cost": 2.55, "unpriced_calls": 0}
    assert cost["note"] == ""
    # per completed task: nothing done Mar 2; Mar 3 one task, no spend; Mar 4 0.05 over two tasks; 2.55 over 3
    per_task = sections["cost_per_task"]
    assert values(per_task, "cost_per_task") == [None, None, 0, 0.025, None, None, None]
    assert figures(per_task) == {"cost_per_task": 0.85, "tasks_done": 3}
    # and per task the assistant does
    rows = {row["purpose"]: row for row in sections["model_tokens"]["table"]["rows"]}
    assert rows["answer"] == {"purpose": "answer", "calls": 2, "prompt_tokens": 400, "completion_tokens": 100,
                              "p50_ms": 200, "p95_ms": 200, "cost": 0.05}
    assert rows["extract"]["cost"] == 1.75 and rows["summary"]["cost"] == 0.75
    assert rows["extract"]["p50_ms"] == 3000


def test_without_a_price_the_cost_is_unknown_not_zero(week, people, client_of, settings):
    # given no prices configured (the default)
    settings.OFFICE_MODEL_PRICE_PER_1K_TOKENS = {}
    # when dana opens Atlas's week
    _body, sections = outcomes(client_of(people["dana"]), room=week["atlas"].pk)
    # then days with model calls have an unknown cost, days without cost nothing, and the total is unknown
    cost = sections["model_cost"]
    assert values(cost, "cost") == [0, None, 0, None, 0, 0, 0]
    assert figures(cost) == {"cost": None, "unpriced_calls": 4}
    assert "Cost unknown for 4 calls" in cost["note"]
    assert figures(sections["cost_per_task"])["cost_per_task"] is None
    assert values(sections["cost_per_task"], "cost_per_task") == [None, None, 0, None, None, None, None]
    assert {row["purpose"]: row["cost"] for row in sections["model_tokens"]["table"]["rows"]} == {
        "answer": None, "extract": None, "summary": None}


def test_a_price_for_one_endpoint_leaves_the_others_unknown(week, people, client_of, settings):
    settings.OFFICE_MODEL_PRICE_PER_1K_TOKENS = {LARGE: 0.5}
    _body, sections = outcomes(client_of(people["dana"]), room=week["atlas"].pk)
    # the cached small-model call on Mar 2 has no price: that day is unknown, so is the week
    assert values(sections["model_cost"], "cost") == [0, None, 0, None, 0, 0, 0]
    assert figures(sections["model_cost"]) == {"cost": None, "unpriced_calls": 2}


def test_an_admin_sees_every_room_and_rows_with_none(week, people, client_of, settings):
    settings.OFFICE_MODEL_PRICE_PER_1K_TOKENS = PRICES
    # when dana (admin) asks with no room
    body, sections = outcomes(client_of(people["dana"]))
    # then the Vault's meeting and model call count too, and she may pick any room
    assert body["room"] is None
    assert {r["name"] for r in body["rooms"]} == {"Open space", "Atlas", "Vault"}
    assert values(sections["meetings"], "meeting_hours") == [0, 2.25, 1.0, 2.0, 0, 0, 0]
    assert values(sections["model_tokens"], "prompt_tokens") == [0, 4000, 1000, 400, 0, 0, 0]
    assert figures(sections["model_cost"])["cost"] == 3.05


def test_a_member_sees_only_rooms_they_may_read(week, people, client_of):
    bob, alice = client_of(people["bob"]), client_of(people["alice"])
    # bob may read Atlas but not the private Vault, and has no whole-office view
    body, _ = outcomes(bob, room=week["atlas"].pk)
    assert {r["name"] for r in body["rooms"]} == {"Open space", "Atlas"}
    assert bob.get("/api/outcomes/", {"room": week["vault"].pk}).status_code == 404
    assert bob.get("/api/outcomes/", {"room": 999999}).status_code == 404
    assert bob.get("/api/outcomes/").status_code == 404
    # alice, a member of the Vault, sees its figures only
    _body, sections = outcomes(alice, room=week["vault"].pk)
    assert values(sections["meetings"], "meeting_hours") == [0, 0, 1.0, 0, 0, 0, 0]
    assert figures(sections["action_items"])["proposed"] == 0


def test_the_page_for_admins_and_members(week, people, client_of):
    dana, bob = client_of(people["dana"]), client_of(people["bob"])
    # dana's page: every room, a picker with all of them, and the figures embedded in the API's shape
    page = dana.get("/outcomes/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="outcomes-data"' in html and "Every room" in html and ">Vault</option>" in html
    assert "outcomes/outcomes.js" in html
    # bob's page for Atlas, without the Vault in his picker; the Vault and the whole office are 404 for him
    page = bob.get("/outcomes/", {"room": week["atlas"].pk, "days": 7})
    assert page.status_code == 200
    assert ">Vault</option>" not in page.content.decode() and "Every room" not in page.content.decode()
    assert bob.get("/outcomes/", {"room": week["vault"].pk}).status_code == 404
    assert bob.get("/outcomes/").status_code == 404
    assert dana.get("/outcomes/", {"days": 5}).status_code == 400


def test_bad_ranges_are_refused(week, people, client_of):
    dana = client_of(people["dana"])
    assert dana.get("/api/outcomes/", {"since": "2026-03-07", "until": "2026-03-01"}).status_code == 400
    assert dana.get("/api/outcomes/", {"since": "2020-01-01", "until": "2026-03-01"}).status_code == 400
    assert dana.get("/api/outcomes/", {"until": "0001-01-01"}).status_code == 400
    assert dana.get("/api/outcomes/", {"room": "²"}).status_code == 400
    assert dana.get("/api/outcomes/", {"days": 12}).status_code == 400
    # the default: the last 30 days up to today
    body = dana.get("/api/outcomes/").json()
    assert len(body["days"]) == 30


def test_the_price_setting_is_strict(monkeypatch):
    from office.settings import _env_prices

    monkeypatch.setenv("OFFICE_MODEL_PRICE_PER_1K_TOKENS", '{"http://x/v1": 0.5, "small": 1}')
    assert _env_prices("OFFICE_MODEL_PRICE_PER_1K_TOKENS") == {"http://x/v1": 0.5, "small": 1.0}
    monkeypatch.setenv("OFFICE_MODEL_PRICE_PER_1K_TOKENS", "")
    assert _env_prices("OFFICE_MODEL_PRICE_PER_1K_TOKENS") == {}
    for bad in ("{not json", '["a"]', '{"a": -1}', '{"a": "1"}', '{"a": true}'):
        monkeypatch.setenv("OFFICE_MODEL_PRICE_PER_1K_TOKENS", bad)
        with pytest.raises(ImproperlyConfigured):
            _env_prices("OFFICE_MODEL_PRICE_PER_1K_TOKENS")


def test_the_sensors_chart_asks_for_a_time_range(office, people, client_of):
    # given a thermometer in Atlas with readings an hour apart
    sensor, _creds = iot_services.sensor_create(room=office["atlas"], kind="temperature", name="Atlas thermometer",
                                                device_id="atlas-thermo")
    for hour, celsius in ((8, 20.5), (9, 21.0), (10, 21.5)):
        iot_services.reading_ingest(sensor=sensor, payload=f'{{"celsius": {celsius}}}'.encode(), source="webhook",
                                    received_at=at(2, hour))
    bob = client_of(people["bob"])
    url = f"/api/iot/sensors/{sensor.pk}/readings/"
    # when the page asks for the readings since 09:00 (the chart's range), then it gets those, oldest first
    body = bob.get(url, {"since": "2026-03-02T09:00:00Z", "limit": 1000}).json()
    assert [r["value"]["celsius"] for r in body["readings"]] == [21.0, 21.5]
    # without a range, the latest N as before
    assert [r["value"]["celsius"] for r in bob.get(url, {"limit": 2}).json()["readings"]] == [21.0, 21.5]
    assert len(bob.get(url).json()["readings"]) == 3
    # and a time that is not one is refused
    response = bob.get(url, {"since": "yesterday"})
    assert response.status_code == 400 and "since" in response.json()["error"]["message"]
