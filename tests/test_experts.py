"""Who knows about X? (GET /api/experts/): people ranked by what they said in meetings, wrote in room
chat, uploaded and completed, each reason cited at its source; only from rooms the asker may read."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from assistant import indexing
from assistant.models import Document
from automation.services import task_create, task_update
from rooms import services as room_services
from tests.assistant_fixtures import record_meeting
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

ATLAS_MEETING = [
    ("bob", "The Android crash happens because the image cache overflows on older phones."),
    ("carol", "I'll draft the release notes for the launch next week."),
    ("bob", "I patched the image cache, so the crash on old Android phones is gone now."),
    ("dana", "Lunch is at noon in the kitchen today."),
    ("bob", "QA confirmed the Android crash fix on three older devices."),
    ("carol", "Okay, good."),
]
VAULT_MEETING = [
    ("alice", "The Northwind acquisition closes on March 3 at a price of forty million."),
    ("alice", "Legal still has to review the Northwind acquisition contract and its warranties."),
]


@pytest.fixture
def knowledge(people, office):
    """Atlas (open): bob's crash fix and carol's release notes said in a meeting, carol's onboarding
    mockups in chat, dana's expense policy uploaded, dana's finished deployment checklist task. Vault
    (alice only): alice's Northwind acquisition, said, uploaded and done, and nothing of hers elsewhere."""
    atlas, vault = office["atlas"], office["vault"]
    meeting = record_meeting(atlas, people, ATLAS_MEETING)
    vault_meeting = record_meeting(vault, people, VAULT_MEETING)
    thread_id = room_services.system_message_send(room=atlas, body="Welcome to Atlas.")[0].thread_id
    chat, _ = room_services.chat_message_send(
        user=people["carol"], thread_id=thread_id,
        body="The onboarding screen mockups are in Figma, with the new signup flow.")
    upload = client_for(people["dana"]).post(f"/api/rooms/{atlas.pk}/documents/", {"file": SimpleUploadedFile(
        "expenses.txt", b"Expense policy. Expense reports are due on the fifth of each month; receipts over "
        b"fifty euros need a scan.", content_type="text/plain")})
    assert upload.status_code == 201, upload.content
    memo = client_for(people["alice"]).post(f"/api/rooms/{vault.pk}/documents/", {"file": SimpleUploadedFile(
        "memo.txt", b"Deal memo: the Northwind acquisition price and the board's terms.", content_type="text/plain")})
    assert memo.status_code == 201, memo.content
    checklist = task_create(title="Write the server deployment checklist", description="Rollback steps and database "
                            "backups before each deployment.", actor=people["dana"], owner=people["dana"], room=atlas)
    task_update(checklist, actor=people["dana"], status="done")
    open_task = task_create(title="Review the deployment checklist", actor=people["bob"], owner=people["bob"], room=atlas)
    vault_task = task_create(title="Prepare the Northwind acquisition data room", actor=people["alice"],
                             owner=people["alice"], room=vault)
    task_update(vault_task, actor=people["alice"], status="done")
    indexing.sweep_unindexed()
    return {"meeting": meeting, "vault_meeting": vault_meeting, "chat": chat, "checklist": checklist,
            "open_task": open_task, "expenses": Document.objects.get(pk=upload.json()["id"]),
            "memo": Document.objects.get(pk=memo.json()["id"])}


def experts(user, q: str, **params):
    response = client_for(user).get("/api/experts/", {"q": q, **params})
    assert response.status_code == 200, response.content
    return response.json()["experts"]


def names(found) -> list[str]:
    return [e["person"]["name"] for e in found]


def test_what_people_said_in_meetings_ranks_them_and_cites_the_exact_turn(people, knowledge):
    # given a meeting in Atlas where bob explained and fixed the Android crash
    meeting = knowledge["meeting"]

    # when carol asks who knows about it
    found = experts(people["carol"], "android crash on older phones")

    # then bob comes first, each reason a turn of his, linked to that very segment
    assert names(found)[0] == "Bob Baker"
    reasons = found[0]["reasons"]
    assert 1 <= len(reasons) <= 3 and {r["kind"] for r in reasons} == {"said"}
    bob_seqs = {seq for seq, (speaker, _) in enumerate(ATLAS_MEETING, start=1) if speaker == "bob"}
    segments = {s.seq: s for s in meeting.segments.all()}
    for reason in reasons:
        seq = int(reason["url"].rsplit("#seg-", 1)[1])
        assert reason["url"] == f"/meetings/{meeting.pk}/#seg-{seq}" and seq in bob_seqs
        assert segments[seq].speaker_id == people["bob"].pk and reason["text"] in segments[seq].text
        assert reason["room"] == knowledge["meeting"].room_id


def test_chat_uploads_and_completed_tasks_count_each_with_its_citation(people, office, knowledge):
    # given carol's chat message, dana's upload and dana's finished task (and bob's unfinished one)
    chat, expenses, checklist = knowledge["chat"], knowledge["expenses"], knowledge["checklist"]

    # when bob asks about each topic
    mockups = experts(people["bob"], "onboarding screen mockups")
    policy = experts(people["bob"], "expense reports and receipts")
    deployment = experts(people["bob"], "deployment checklist and rollback")

    # then the writer, the uploader and the one who did the task lead, cited at the message, page, task
    assert names(mockups)[0] == "Carol Chen"
    assert mockups[0]["reasons"][0] == {
        "kind": "wrote", "text": chat.body, "label": f"Carol Chen in room chat #{chat.seq}",
        "url": f"/?room={office['atlas'].pk}#chat-{chat.thread_id}-{chat.seq}", "room": office["atlas"].pk}
    assert names(policy)[0] == "Dana Admin"
    assert policy[0]["reasons"][0]["kind"] == "uploaded"
    assert policy[0]["reasons"][0]["url"] == f"/documents/{expenses.pk}/?page=1#page-1"
    assert names(deployment)[0] == "Dana Admin"
    task_reason = next(r for r in deployment[0]["reasons"] if r["kind"] == "completed")
    assert task_reason["url"] == f"/tasks/?room={office['atlas'].pk}&closed=1#task-{checklist.pk}"
    assert "Bob Baker" not in names(deployment)  # his task on it is not done: no evidence
    # the office's own system user (it posted "Welcome to Atlas.") is nobody's expert
    assert "office" not in names(experts(people["bob"], "welcome to Atlas"))


def test_bob_never_gets_the_vault_nor_a_person_known_only_from_it(people, office, knowledge):
    # given alice's Northwind acquisition: said, uploaded and done in the Vault only
    vault = office["vault"].pk

    # when bob (not on the Vault's list) asks about it, and alice (a member) does
    for_bob = experts(people["bob"], "Northwind acquisition price")
    for_alice = experts(people["alice"], "Northwind acquisition price")

    # then bob gets neither alice nor any Vault reason; alice gets herself, cited in the Vault
    assert "Alice Archer" not in names(for_bob)
    assert all(r["room"] != vault for e in for_bob for r in e["reasons"])
    assert all(f"/meetings/{knowledge['vault_meeting'].pk}/" not in r["url"] for e in for_bob for r in e["reasons"])
    assert names(for_alice)[0] == "Alice Archer"
    kinds = {r["kind"] for r in for_alice[0]["reasons"]}
    assert all(r["room"] == vault for r in for_alice[0]["reasons"]) and "said" in kinds
    # asking bob's question in the Vault itself: the same 404 as a room that does not exist
    response = client_for(people["bob"]).get("/api/experts/", {"q": "Northwind", "room": vault})
    assert response.status_code == 404 and response.json()["error"]["message"] == "no such room"
    assert client_for(people["bob"]).get("/api/experts/", {"q": "Northwind", "room": 99999}).status_code == 404


def test_a_room_narrows_the_search(people, office, knowledge):
    # when alice asks about Northwind in Atlas only, then nobody knows (it was said in the Vault)
    assert "Alice Archer" not in names(experts(people["alice"], "Northwind acquisition", room=office["atlas"].pk))
    # and in the Vault she is the expert
    assert names(experts(people["alice"], "Northwind acquisition", room=office["vault"].pk))[0] == "Alice Archer"


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "   "}, {"q": "x" * 301}, {"q": "crash", "room": "abc"},
                                    {"q": "crash", "room": "0"}])
def test_bad_input_is_400_with_the_usual_error_shape(people, params):
    response = client_for(people["bob"]).get("/api/experts/", params)
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message", "detail"}


def test_signed_out_is_refused(client):
    assert client.get("/api/experts/", {"q": "crash"}).status_code == 403
