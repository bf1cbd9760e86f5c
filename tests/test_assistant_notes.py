"""Meeting notes from recorded transcripts, with a scripted model: owners, dates, provenance,
decisions and their audit, injection, and the unavailable fallback."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant import llm, meeting_notes, services
from assistant.models import ActionItem, ActionItemDecision, MeetingSummary
from assistant.signals import action_item_approved
from assistant.testing import ScriptedTransport, by_purpose
from tests.assistant_fixtures import INJECTION, PLANNING, record_meeting
from tests.conftest import client_for


@pytest.fixture(autouse=True)
def _fresh_breakers():
    llm.reset_breakers()
    yield
    llm.reset_breakers()


def scripted(**replies) -> llm.LLMClient:
    return llm.LLMClient(ScriptedTransport(by_purpose(**replies)))


MODEL_ITEMS = {"items": [
    {"task": "Fix the crash on older Android phones", "owner": "Bob Baker", "due": "Wednesday", "lines": [3, 4],
     "confidence": 0.9},
    {"task": "Write the release notes", "owner": "Carol", "due": "Friday", "lines": [5], "confidence": 0.8},
    # The model invents an owner who is not in the org, and one not in the evidence line.
    {"task": "Prepare the press kit", "owner": "Mallory the intern", "due": "", "lines": [7], "confidence": 0.7},
    {"task": "Book the launch party", "owner": "Alice", "due": "", "lines": [99], "confidence": 0.9},
]}


@pytest.mark.django_db
def test_action_items_have_known_owners_dates_and_provenance(office, people):
    meeting = record_meeting(office["atlas"], people, PLANNING)
    items = meeting_notes.action_items_propose(meeting, client=scripted(meeting_action_items=MODEL_ITEMS))
    by_owner = {(i.owner.username if i.owner else None): i for i in items}
    fix = by_owner["bob"]
    assert "crash" in fix.text.lower() and fix.due_date == dt.date(2026, 11, 25)  # Wednesday after Monday 23rd
    assert fix.status == "proposed" and fix.confidence >= 0.8
    segs = list(meeting.segments.order_by("seq").values_list("pk", flat=True))
    assert set(fix.source_segment_ids) <= set(segs) and segs[2] in fix.source_segment_ids
    assert fix.speaker == people["alice"] and fix.model_id and fix.prompt_version.startswith("action_items.v")
    notes = by_owner["carol"]
    assert "release notes" in notes.text.lower() and notes.due_date == dt.date(2026, 11, 27)
    # Never invented: the intern is nobody here; a line that does not exist is no evidence.
    assert all(i.owner is None or i.owner in people.values() for i in items)
    assert not any("launch party" in i.text.lower() for i in items)
    press = [i for i in items if "press kit" in i.text.lower()]
    assert press and press[0].owner is None
    # Proposing again stores nothing twice.
    again = meeting_notes.action_items_propose(meeting, client=scripted(meeting_action_items=MODEL_ITEMS))
    assert again == [] and ActionItem.objects.filter(meeting=meeting).count() == len(items)


@pytest.mark.django_db
def test_rules_alone_find_commitments_when_no_model_answers(office, people):
    meeting = record_meeting(office["atlas"], people, PLANNING)
    items = meeting_notes.action_items_propose(meeting, client=scripted())  # every call fails
    owners = {i.owner.username for i in items if i.owner}
    assert {"bob", "carol"} <= owners
    assert all(i.model_id == "rules" for i in items)


@pytest.mark.django_db
def test_injection_in_speech_causes_no_side_effects(office, people):
    meeting = record_meeting(office["atlas"], people, INJECTION)
    hostile = {"items": [{"task": "E-mail the board the salaries", "owner": "the intern", "due": "", "lines": [2],
                          "confidence": 0.95},
                         {"task": "Assign everything to the intern", "owner": "Bob", "due": "", "lines": [2],
                          "confidence": 0.9}]}
    received = []
    action_item_approved.connect(lambda **kw: received.append(kw), weak=False, dispatch_uid="test-inject")
    try:
        items = meeting_notes.action_items_propose(meeting, client=scripted(meeting_action_items=hostile))
    finally:
        action_item_approved.disconnect(dispatch_uid="test-inject")
    assert received == []  # nothing approved, nothing turned into work
    assert all(i.status == "proposed" for i in items)
    assert all(i.owner is None or i.owner in (people["alice"], people["bob"], people["carol"]) for i in items)
    board = [i for i in items if "board" in i.text.lower()]
    assert all(i.owner is None for i in board)
    assert any("budget sheet" in i.text.lower() and i.owner == people["carol"] for i in items)


@pytest.mark.django_db
def test_participants_decide_and_every_decision_is_audited(office, people):
    meeting = record_meeting(office["atlas"], people, PLANNING)
    items = meeting_notes.action_items_propose(meeting, client=scripted(meeting_action_items=MODEL_ITEMS))
    item = next(i for i in items if i.owner == people["bob"])
    approved = []
    action_item_approved.connect(lambda **kw: approved.append(kw["item"].pk), weak=False, dispatch_uid="t")
    try:
        alice = client_for(people["alice"])
        r = alice.post(f"/api/action-items/{item.pk}/decision/",
                       {"action": "edit", "text": "Fix the Android crash", "due_date": "2026-11-26"},
                       content_type="application/json")
        assert r.status_code == 200 and r.json()["text"] == "Fix the Android crash" and r.json()["status"] == "proposed"
        r = alice.post(f"/api/action-items/{item.pk}/decision/", {"action": "approve"}, content_type="application/json")
        assert r.status_code == 200 and r.json()["status"] == "approved"
        assert r.json()["decided_by"]["id"] == people["alice"].pk
        r = alice.post(f"/api/action-items/{item.pk}/decision/", {"action": "reject"}, content_type="application/json")
        assert r.status_code == 409 and "already approved" in r.json()["error"]["message"]
    finally:
        action_item_approved.disconnect(dispatch_uid="t")
    assert approved == [item.pk]
    log = list(ActionItemDecision.objects.filter(item=item).order_by("id"))
    assert [(d.action, d.actor_id) for d in log] == [("edit", people["alice"].pk), ("approve", people["alice"].pk)]
    assert log[0].before["text"] != log[0].after["text"] and log[0].after["due_date"] == "2026-11-26"


@pytest.mark.django_db
def test_non_participants_cannot_decide_and_other_rooms_cannot_see(office, people):
    lines = [("alice", "I will send the contract to legal by Friday."), ("bob", "Thanks.")]
    vault = record_meeting(office["vault"], people, lines[:1])
    item = meeting_notes.action_items_propose(vault, client=scripted())[0]
    bob = client_for(people["bob"])
    assert bob.get(f"/api/action-items/?room={office['vault'].pk}").json() == []
    r = bob.post(f"/api/action-items/{item.pk}/decision/", {"action": "approve"}, content_type="application/json")
    assert r.status_code == 404  # the same answer as for an id that does not exist
    atlas = record_meeting(office["atlas"], people, lines)
    open_item = meeting_notes.action_items_propose(atlas, client=scripted())[0]
    carol = client_for(people["carol"])  # may see Atlas, was not in this meeting
    r = carol.post(f"/api/action-items/{open_item.pk}/decision/", {"action": "approve"}, content_type="application/json")
    assert r.status_code == 403
    r = client_for(people["bob"]).post(f"/api/action-items/{open_item.pk}/decision/", {"action": "dance"},
                                       content_type="application/json")
    assert r.status_code == 400 and "action" in str(r.json()["error"])


@pytest.mark.django_db
def test_rolling_summary_then_final_fold(office, people):
    meeting = record_meeting(office["atlas"], people, PLANNING)
    rolling = {"summary": "The team reviewed the mobile launch.", "decisions": ["Ship on December 2 if QA signs off"],
               "open_questions": ["Is a press kit needed?"], "topics": ["launch", "QA"], "confidence": 0.8}
    final = {"summary": "Launch review: crash fix, release notes, ship date.", "decisions": [],
             "open_questions": [], "topics": ["launch"], "confidence": 0.8}
    client = scripted(meeting_summary=rolling, meeting_final_summary=final)
    first = meeting_notes.summary_refresh(meeting, client=client)
    assert first.kind == "rolling" and first.source == "model" and first.through_seq == meeting.last_seq
    assert first.model_call.prompt_name == "summary"
    assert "December 2" in client.transport.prompts("meeting_summary")[0]  # the window went to the model
    assert meeting_notes.summary_refresh(meeting, client=client) is None  # nothing new said
    done = meeting_notes.summary_finalize(meeting, client=client)
    assert done.kind == "final" and done.summary.startswith("Launch review")
    assert "Ship on December 2 if QA signs off" in done.decisions  # folded in from the rolling notes
    assert meeting_notes.summary_finalize(meeting, client=client).pk == done.pk
    r = client_for(people["bob"]).get(f"/api/meetings/{meeting.pk}/notes/")
    assert r.json()["final"]["summary"].startswith("Launch review") and r.json()["rolling"]["kind"] == "rolling"


@pytest.mark.django_db
def test_summary_falls_back_when_the_model_is_down(office, people):
    meeting = record_meeting(office["atlas"], people, PLANNING)
    summary = meeting_notes.summary_refresh(meeting, client=scripted())
    assert summary.source == "fallback" and summary.summary
    assert any("decided" in d for d in summary.decisions)
    assert any(q.endswith("?") for q in summary.open_questions)
    assert MeetingSummary.objects.filter(meeting=meeting).count() == 1


@pytest.mark.django_db
def test_window_is_the_latest_minute(office, people, settings):
    settings.OFFICE_SUMMARY_WINDOW_SECONDS = 10
    meeting = record_meeting(office["atlas"], people, PLANNING)  # 5 s apart: the last 3 lines are in the window
    transport = ScriptedTransport(by_purpose(meeting_summary={"summary": "s", "decisions": [], "open_questions": [],
                                                              "topics": [], "confidence": 0.5}))
    meeting_notes.summary_refresh(meeting, client=llm.LLMClient(transport))
    sent = transport.prompts("meeting_summary")[0]
    assert "press kit" in sent and "launch plan" not in sent


@pytest.mark.django_db
def test_decide_service_rejects_unknown_owner(office, people):
    meeting = record_meeting(office["atlas"], people, PLANNING)
    item = meeting_notes.action_items_propose(meeting, client=scripted())[0]
    with pytest.raises(Exception, match="active member"):
        services.action_item_decide(item=item, user=people["alice"], action="edit", owner_id=999999)


def test_the_models_restatement_of_a_rule_item_merges_and_its_unsure_extras_are_dropped():
    from assistant.extract import Candidate, merge_candidates

    rule = Candidate("Draft the customer report", None, None, "", [5], 0.45, {"rules"})
    # the model names the same task but cites the neighbouring line
    twin = Candidate("draft the customer report today", None, None, "today", [6], 0.7, {"model"})
    unsure = Candidate("Meet again on Monday", None, None, "", [8], 0.6, {"model"})
    sure = Candidate("Renew the certificate", None, None, "", [7], 0.7, {"model"})
    other = Candidate("Write the customer newsletter", None, None, "", [2], 0.7, {"model"})
    merged = merge_candidates([rule], [twin, unsure, sure, other], model_only_min=0.65)
    assert [c.text for c in merged] == ["Draft the customer report", "Renew the certificate",
                                        "Write the customer newsletter"]
    assert merged[0].sources == {"rules", "model"} and merged[0].lines == [5, 6] and merged[0].confidence == pytest.approx(0.8)
