"""Live notifications: @mentions in chat notify who they name (if they may read it), marking read is
stored then announced to every tab, the inbox socket carries the bell's frames, and every top bar
shows the bell with the unread count."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from automation.workflows import services as inbox
from automation.workflows.models import Notification
from office.events import user_group
from rooms import services as rooms
from rooms.mentions import mention_tokens
from tests.conftest import client_for, session_cookie
from tests.test_protocol_doc import assert_frame_matches


@pytest.fixture
def sent_events(monkeypatch):
    """Live events actually sent (after commit), as (group, event)."""
    sent = []
    monkeypatch.setattr("office.events.send_event", lambda group, event: sent.append((group, event)))
    return sent


def room_thread(room) -> int:
    return room.chat_thread.pk


def say(user, room, body: str, client_id: str = ""):
    message, _ = rooms.chat_message_send(user=user, thread_id=room_thread(room), body=body, client_id=client_id)
    return message


def inbox_of(user) -> list[str]:
    return list(Notification.objects.filter(user=user).order_by("pk").values_list("title", flat=True))


# --- mentions ---

def test_the_mention_syntax_names_usernames_and_quoted_display_names():
    assert mention_tokens('@Alice and @"Carol  Chen", see bob@example.com.') == ({"alice"}, {"carol chen"})
    assert mention_tokens("thanks @bob.") == ({"bob"}, set())
    assert mention_tokens("no one here, @ alone, @\"\"") == (set(), set())


@pytest.mark.django_db
def test_a_mention_in_room_chat_notifies_the_member_after_the_message_commits(people, office, sent_events,
                                                                                django_capture_on_commit_callbacks):
    # given alice and bob in the open space
    alice, bob = people["alice"], people["bob"]

    # when bob mentions alice
    with django_capture_on_commit_callbacks(execute=True):
        message = say(bob, office["open"], "@alice can you look at the deck?")

    # then alice has one notification naming bob and the room, with the message as its body
    notification = Notification.objects.get(user=alice)
    assert notification.title == "Bob Baker mentioned you in Open space"
    assert notification.body == "@alice can you look at the deck?"
    assert notification.idempotency_key == f"mention:{message.pk}:{alice.pk}"
    # and her sockets heard of it after the message itself
    types = [(group, event["type"]) for group, event in sent_events]
    assert (user_group(alice.pk), "notification.new") in types
    assert types.index((user_group(alice.pk), "notification.new")) > types.index(
        (f"chat.thread.{room_thread(office['open'])}", "chat.message"))
    assert inbox_of(bob) == []


@pytest.mark.django_db
def test_a_quoted_display_name_in_any_case_notifies_that_member_once(people, office):
    # when bob names carol twice, once by name and once by username
    say(people["bob"], office["open"], 'ping @"carol chen" (yes, @Carol)')

    # then carol has exactly one notification, and nobody else any
    assert inbox_of(people["carol"]) == ["Bob Baker mentioned you in Open space"]
    assert inbox_of(people["alice"]) == inbox_of(people["dana"]) == []


@pytest.mark.django_db
def test_a_mention_of_someone_who_cannot_read_the_room_notifies_nobody(people, office):
    # given the Vault, private to alice
    alice, bob = people["alice"], people["bob"]

    # when alice mentions bob (not a member) and herself in the Vault's chat
    say(alice, office["vault"], "@bob @alice @nobody the safe code is 1234")

    # then nobody is notified: bob cannot read it, and alice wrote it
    assert Notification.objects.count() == 0

    # when bob becomes a member and alice mentions him again
    rooms.room_set_members(room=office["vault"], user_ids=[alice.pk, bob.pk])
    say(alice, office["vault"], "@bob welcome in")

    # then he is notified
    assert inbox_of(bob) == ["Alice Archer mentioned you in Vault"]


@pytest.mark.django_db
def test_a_retried_send_with_the_same_client_id_notifies_once(people, office, sent_events,
                                                              django_capture_on_commit_callbacks):
    # when bob's client resends the same message after a dropped connection
    with django_capture_on_commit_callbacks(execute=True):
        first = say(people["bob"], office["open"], "@alice lunch?", client_id="c-1")
    with django_capture_on_commit_callbacks(execute=True):
        again = say(people["bob"], office["open"], "@alice lunch?", client_id="c-1")

    # then there is one message, one notification and one announcement of it
    assert first.pk == again.pk
    assert inbox_of(people["alice"]) == ["Bob Baker mentioned you in Open space"]
    assert [event["type"] for _, event in sent_events].count("notification.new") == 1


@pytest.mark.django_db
def test_a_mention_in_a_direct_message_notifies_the_other_person_only(people, office):
    alice, bob = people["alice"], people["bob"]
    thread, _ = rooms.direct_thread_open(user=bob, other_user_id=alice.pk)

    rooms.chat_message_send(user=bob, thread_id=thread.pk, body="@alice @carol see this", client_id="")

    assert inbox_of(alice) == ["Bob Baker mentioned you in a direct message"]
    assert inbox_of(people["carol"]) == []


# --- marking read ---

@pytest.mark.django_db
def test_marking_read_is_stored_then_announced_with_the_count_left(people, sent_events,
                                                                   django_capture_on_commit_callbacks):
    # given alice with three unread notifications and bob with one
    alice, bob = people["alice"], people["bob"]
    first, second, third = (inbox.notification_create(user=alice, title=f"n{i}") for i in range(3))
    bobs = inbox.notification_create(user=bob, title="bob's")
    client = client_for(alice)

    # when alice marks two of hers and bob's read through the API
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/notifications/read/", {"ids": [first.pk, second.pk, bobs.pk]},
                               content_type="application/json")

    # then only her two changed, and every socket of hers hears the count left
    assert response.status_code == 200
    assert response.json() == {"marked": 2, "unread": 1}
    bobs.refresh_from_db()
    assert bobs.read_at is None
    reads = [(group, event) for group, event in sent_events if event["type"] == "notification.read"]
    assert reads == [(user_group(alice.pk), {"type": "notification.read", "ids": [first.pk, second.pk],
                                             "unread": 1})]
    assert_frame_matches(reads[0][1], "inbox")

    # when she marks all read, and then again (nothing left)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/notifications/read/", {"all": True},
                           content_type="application/json").json() == {"marked": 1, "unread": 0}
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/notifications/read/", {"all": True},
                           content_type="application/json").json() == {"marked": 0, "unread": 0}

    # then "all" is announced with ids null, and a read that changed nothing is not announced
    reads = [event for _, event in sent_events if event["type"] == "notification.read"]
    assert reads[1:] == [{"type": "notification.read", "ids": None, "unread": 0}]
    third.refresh_from_db()
    assert third.read_at is not None


@pytest.mark.django_db
def test_the_inbox_list_gives_the_newest_first_up_to_a_limit(people):
    alice = people["alice"]
    for i in range(12):
        inbox.notification_create(user=alice, title=f"n{i}")
    client = client_for(alice)

    page = client.get("/api/notifications/?limit=10").json()

    assert page["unread"] == 12
    assert [n["title"] for n in page["notifications"]] == [f"n{i}" for i in range(11, 1, -1)]
    assert client.get("/api/notifications/?limit=0").status_code == 400


# --- the bell on every page ---

@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/tasks/", "/tickets/", "/notifications/", "/workflows/approvals/"])
def test_every_top_bar_has_the_bell_with_the_unread_count(people, office, path):
    alice = people["alice"]
    inbox.notification_create(user=alice, title="one")
    inbox.notification_create(user=alice, title="two")

    html = client_for(alice).get(path, follow=True).content.decode()

    assert 'id="bell"' in html and 'data-unread="2"' in html
    assert '<span class="bell-count" id="bell-count">2</span>' in html
    assert "automation/inbox.js" in html


# --- the inbox socket ---

async def _inbox_socket(user=None):
    from office.asgi import application

    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if user is not None:
        headers.append((b"cookie", await database_sync_to_async(session_cookie)(user)))
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _frame(communicator, timeout: float = 5) -> dict:
    return json.loads(await communicator.receive_from(timeout))


@pytest.mark.django_db(transaction=True)
async def test_the_inbox_socket_carries_the_count_new_notifications_reads_and_work(people, office):
    from automation import services as work

    alice, bob = people["alice"], people["bob"]
    await database_sync_to_async(inbox.notification_create)(user=alice, title="earlier")

    # given alice's page connected: hello says what is unread
    page = await _inbox_socket(alice)
    frames = [await _frame(page)]
    assert frames[0] == {"type": "hello", "unread": 1}
    try:
        # when bob mentions her in chat, then the notification arrives live
        await database_sync_to_async(say)(bob, office["open"], "@alice standup?")
        frames.append(await _frame(page))
        assert frames[-1]["type"] == "notification.new"
        assert frames[-1]["notification"]["title"] == "Bob Baker mentioned you in Open space"

        # when she reads everything (in another tab), then this one hears the count
        await database_sync_to_async(inbox.notification_mark_read)(user=alice)
        frames.append(await _frame(page))
        assert frames[-1] == {"type": "notification.read", "ids": None, "unread": 0}

        # when bob gives her a task and reports a problem she can see, the rows' events arrive
        await database_sync_to_async(work.task_create)(title="Book the venue", owner=alice, actor=bob,
                                                       room=office["atlas"])
        frames.append(await _frame(page))
        assert frames[-1]["type"] == "task.changed" and frames[-1]["task"]["owner"] == alice.pk
        await database_sync_to_async(work.ticket_open)(
            kind="facilities", room=office["open"], severity="high", title="Lamp", detail="",
            source="member:alice", dedupe_key="", actor_label="alice", actor=alice)
        frames.append(await _frame(page))
        assert frames[-1]["type"] == "ticket.changed"

        # and a ping is answered; anything else is ignored
        await page.send_to(text_data="not json")
        await page.send_to(text_data='{"type":"ping"}')
        frames.append(await _frame(page))
        assert frames[-1] == {"type": "pong"}
    finally:
        await page.disconnect()

    # without a session: an error, then close code 4401 (docs/adr/0003)
    anonymous = await _inbox_socket()
    frames.append(await _frame(anonymous))
    assert frames[-1] == {"type": "error", "code": "not_signed_in", "fatal": True}
    assert (await anonymous.receive_output(3))["code"] == 4401
    await anonymous.disconnect()

    for frame in frames:
        assert_frame_matches(frame, "inbox")
