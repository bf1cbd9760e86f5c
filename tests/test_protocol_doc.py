"""The live events' catalogue (`<app>/events.py`): docs/protocol.md is generated from it, it lists
exactly the frames the code sends, and real frames have exactly its fields."""

from __future__ import annotations

import ast
import asyncio
import datetime as dt
import difflib
import json
import re
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from django.utils.module_loading import import_string
from rest_framework import serializers

from office import protocol

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "protocol.md"

# Which catalogues hold which socket's frames.
SOCKETS = {
    "office": ["rooms.events.CLIENT_EVENTS", "transcription.events.CLIENT_EVENTS", "assistant.events.CLIENT_EVENTS",
               "automation.events.CLIENT_EVENTS", "iot.events.CLIENT_EVENTS"],
    "sensors": ["iot.events.SENSORS_SOCKET_EVENTS"],
    "inbox": ["automation.events.INBOX_SOCKET_EVENTS"],
    "editor": ["rooms.events.EDITOR_SOCKET_EVENTS"],
}
# Classes serving a socket other than the office one; a mixin's frames go out on every socket built from it.
SOCKET_CLASSES = {"SensorsConsumer": {"sensors"}, "InboxConsumer": {"inbox"}, "WorkSocketMixin": {"office", "inbox"},
                  "MapEditorConsumer": {"editor"}, "ListeningSocket": {"inbox", "editor"}}


def catalogue(socket: str) -> dict:
    merged: dict = {}
    for name in SOCKETS[socket]:
        for event_type, serializer in import_string(name).items():
            assert event_type not in merged, f"{event_type} is in two catalogues of the {socket} socket"
            merged[event_type] = serializer
    return merged


# --- (a) the doc is generated from the catalogues ---

def test_the_protocol_doc_tables_are_generated_from_the_catalogues():
    text = DOC.read_text()
    fresh = protocol.regenerate(text, import_string)
    diff = "\n".join(difflib.unified_diff(text.splitlines(), fresh.splitlines(), "docs/protocol.md", "generated",
                                          lineterm=""))
    assert fresh == text, f"docs/protocol.md is out of date; run `manage.py protocol_doc`:\n{diff}"


@pytest.mark.parametrize("socket", sorted(SOCKETS))
def test_every_catalogued_event_is_documented_with_exactly_its_fields(socket):
    text = DOC.read_text()
    documented = {}  # event type -> serializers documented for it
    for names in protocol.blocks(text):
        for name in names:
            for event_type, serializer in import_string(name).items():
                documented.setdefault(event_type, set()).add(serializer)
    for event_type, serializer in catalogue(socket).items():
        assert serializer in documented.get(event_type, set()), f"{socket} socket: {event_type} is not in the doc"
        row = protocol.event_row(event_type, serializer)
        assert row in text.splitlines(), f"{socket} socket: {event_type} is documented with other fields"
        for name in protocol.event_fields(serializer):
            assert f"`{name}`" in row


def test_the_doc_examples_have_the_catalogued_fields():
    text = DOC.read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    checked = 0
    for section in sections:
        socket = ("sensors" if section.startswith("The sensors page socket")
                  else "inbox" if section.startswith("The inbox socket")
                  else "editor" if section.startswith("The map editor socket") else "office")
        for block in re.findall(r"```json\n(.*?)```", section, re.S):
            decoder, at = json.JSONDecoder(), 0
            while (at := _skip_space(block, at)) < len(block):
                frame, at = decoder.raw_decode(block, at)
                assert_frame_matches(frame, socket)
                checked += 1
    assert checked >= 8


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


# --- (b) the catalogues list exactly what the code sends ---

APPS = ["office", "rooms", "transcription", "assistant", "automation", "iot"]
# Where frames are written: every app's consumers (and their mixins), the movement hub, protocol errors.
SOCKET_FILES = sorted({*(str(p.relative_to(ROOT)) for app in APPS for p in (ROOT / app).rglob("consumers.py")),
                       "rooms/chat_socket.py", "rooms/hub.py", "rooms/protocol.py", "office/listening_socket.py"})
GROUP_SENDERS = {"send_event_on_commit", "send_event", "group_send", "_group_send"}
# The hubs' own channel (rooms/hub.py) and the chat connector check's probe of a private group
# (automation/workflows/connectors/chat.py): never a socket's.
INTERNAL_GROUP_EVENTS = {"hub.tick", "office.synthetic_check"}


def _parents(tree) -> dict:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _ancestors(node, parents):
    while node in parents:
        node = parents[node]
        yield node


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _type_literal(node: ast.Dict) -> str | None:
    for key, value in zip(node.keys, node.values, strict=True):
        if isinstance(key, ast.Constant) and key.value == "type":
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
    return None


def _sockets_of(node, parents) -> set[str]:
    classes = [a.name for a in _ancestors(node, parents) if isinstance(a, ast.ClassDef)]
    return next((SOCKET_CLASSES[name] for name in classes if name in SOCKET_CLASSES), {"office"})


def _in_group_send(node, parents) -> bool:
    return any(isinstance(a, ast.Call) and _call_name(a) in GROUP_SENDERS for a in _ancestors(node, parents))


def _forwards_event_as_is(function: ast.AsyncFunctionDef) -> bool:
    """`await self._send_json(event)` or `self.send(text_data=json.dumps(event))`: the group event is the frame."""
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and _call_name(node) in ("_send_json", "dumps"):
            if [getattr(a, "id", None) for a in node.args] == ["event"]:
                return True
    return False


# ASGI messages a consumer hands to the server (`websocket.send` carrying a frame), not frames.
ASGI_MESSAGES = ("websocket.", "http.")


def sent_by_the_code() -> dict[str, set[str]]:
    sent: dict[str, set[str]] = {socket: set() for socket in SOCKETS}
    handlers: dict[str, tuple[set[str], ast.AsyncFunctionDef]] = {}
    for path in SOCKET_FILES:
        tree = ast.parse((ROOT / path).read_text())
        parents = _parents(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Dict) and (event_type := _type_literal(node)) and not _in_group_send(node, parents)
                    and not event_type.startswith(ASGI_MESSAGES)):
                for socket in _sockets_of(node, parents):
                    sent[socket].add(event_type)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                match = re.match(r'\{"type":"([\w.]+)"', node.value)
                if match and not any(isinstance(a, ast.Compare) for a in _ancestors(node, parents)):
                    for socket in _sockets_of(node, parents):
                        sent[socket].add(match[1])  # a frame written as JSON text (moves)
            elif isinstance(node, ast.AsyncFunctionDef) and path.endswith("consumers.py"):
                handlers[node.name] = (_sockets_of(node, parents), node)
    group_events = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text())
            parents = _parents(tree)
            for node in ast.walk(tree):
                if isinstance(node, ast.Dict) and (event_type := _type_literal(node)) and "." in event_type:
                    in_socket_file = str(path.relative_to(ROOT)) in SOCKET_FILES
                    if _in_group_send(node, parents):
                        group_events.add(event_type)
                    else:
                        assert in_socket_file, (f"{path.relative_to(ROOT)} builds a {event_type!r} event outside a "
                                                f"group send: this scan would miss it")
    for event_type in sorted(group_events - INTERNAL_GROUP_EVENTS):
        handler = handlers.get(event_type.replace(".", "_"))
        assert handler is not None, f"no consumer handles the group event {event_type!r}"
        sockets, function = handler
        if _forwards_event_as_is(function):
            for socket in sockets:
                sent[socket].add(event_type)
    return sent


def test_the_scan_sees_frames_of_every_kind():
    sent = sent_by_the_code()
    # a literal frame, a JSON-text frame, an error frame, forwarded group events, a mixin's frame
    assert {"hello", "moves", "error", "task.changed", "caption.partial", "room.occupancy"} <= sent["office"]
    assert {"hello", "sensor.reading", "rule.fired", "pong", "error"} <= sent["sensors"]
    assert {"hello", "notification.new", "notification.read", "task.changed", "pong", "error"} <= sent["inbox"]
    assert {"hello", "map.changed", "pong", "error"} <= sent["editor"]


@pytest.mark.parametrize("socket", sorted(SOCKETS))
def test_every_frame_the_code_sends_is_catalogued_and_nothing_else(socket):
    sent = sent_by_the_code()[socket]
    catalogued = set(catalogue(socket))
    assert sent - catalogued == set(), f"{socket} socket: sent but not in a catalogue"
    assert catalogued - sent == set(), f"{socket} socket: catalogued but never sent"


# --- (c) real frames have exactly the catalogued fields ---

def _check(serializer, data, path: str) -> None:
    assert isinstance(data, dict), f"{path}: {data!r} is not an object"
    fields = serializer.fields
    missing = {name for name, field in fields.items() if protocol.required_in_frame(field)} - set(data)
    unknown = set(data) - set(fields)
    assert not missing and not unknown, f"{path}: missing {sorted(missing)}, not catalogued {sorted(unknown)}"
    for name, value in data.items():
        nested, many = protocol.nested_serializer(fields[name])
        if nested is None or value is None:
            continue
        for index, item in enumerate(value if many else [value]):
            _check(nested, item, f"{path}.{name}" + (f"[{index}]" if many else ""))


def assert_frame_matches(frame: dict, socket: str = "office") -> None:
    event_type = frame["type"]
    events = catalogue(socket)
    assert event_type in events, f"{socket} socket: {event_type} is not catalogued"
    _check(events[event_type](), {k: v for k, v in frame.items() if k != "type"}, event_type)


def test_the_check_catches_a_missing_or_extra_field():
    with pytest.raises(AssertionError, match="missing"):
        assert_frame_matches({"type": "chat.unread", "thread": 1})
    with pytest.raises(AssertionError, match="not catalogued"):
        assert_frame_matches({"type": "task.changed", "task": {"id": 1, "extra": 2}})
    assert isinstance(import_string("rooms.events.CLIENT_EVENTS")["error"]().fields["ref"], serializers.CharField)


SOCKET_TEST = pytest.mark.django_db(transaction=True)


async def frame_of(socket, frame_type: str, where=lambda f: True, timeout: float = 5) -> dict:
    """A frame of this type, whether it already arrived (while waiting for another) or arrives next."""
    for frame in socket.frames:
        if frame["type"] == frame_type and where(frame):
            return frame
    return await socket.wait_for(frame_type, timeout=timeout, where=where)


async def _walk(socket, path, start_seq=1):
    for offset, (x, y) in enumerate(path):
        await socket.send({"type": "move", "x": x, "y": y, "seq": start_seq + offset})
        await asyncio.sleep(0.21)


@SOCKET_TEST
async def test_office_socket_frames_match_the_catalogue(office, people, sockets):
    from assistant import llm, meeting_notes
    from assistant import services as assistant_services
    from assistant.models import ActionItem
    from assistant.testing import ScriptedTransport, by_purpose
    from automation import services as work
    from automation.workflows import services as workflows
    from rooms import services
    from rooms.models import ChatThread
    from transcription import services as meetings
    from transcription.models import Meeting

    alice_user, bob_user = people["alice"], people["bob"]

    @database_sync_to_async
    def alice_desk_in_atlas():
        services.desk_create(office_map=office["map"], label="A1", x=4, y=3, owner=alice_user)

    await alice_desk_in_atlas()
    alice = await sockets(alice_user, office["map"].id)
    bob = await sockets(bob_user, office["map"].id)
    frames = [alice.hello, bob.hello]
    frames.append(await frame_of(alice, "meeting.state"))
    frames.append(await frame_of(alice, "presence.join", where=lambda f: f["person"]["user"] == bob_user.id))

    # chat, history, unread, direct messages
    room_thread = await database_sync_to_async(
        lambda: ChatThread.objects.get(kind="room", room=office["open"]).pk)()
    # bob's socket follows its threads once its connect is done (a message stored before that reaches
    # him as `chat.backlog`): a round trip on it first
    await bob.send({"type": "ping"})
    await frame_of(bob, "pong")
    await alice.send({"type": "chat.send", "thread": room_thread, "body": "hello", "client_id": "c1"})
    frames.append(await frame_of(alice, "chat.ack"))
    frames.append(await frame_of(bob, "chat.message"))
    await bob.send({"type": "chat.history", "thread": room_thread})
    frames.append(await frame_of(bob, "chat.history"))
    await bob.send({"type": "chat.read", "thread": room_thread, "seq": 1})
    frames.append(await frame_of(bob, "chat.unread"))
    await bob.send({"type": "dm.open", "user": alice_user.id})
    frames.append(await frame_of(bob, "dm.opened"))
    frames.append(await frame_of(alice, "thread.added"))
    frames.append(await frame_of(bob, "chat.backlog"))

    # movement, status, errors, ping
    await _walk(bob, [(11, 15), (12, 15)])
    frames.append(await frame_of(alice, "moves", where=lambda f: any(m[0] == bob_user.id for m in f["m"])))
    await bob.send({"type": "move", "x": 30, "y": 3, "seq": 9})
    frames.append(await frame_of(bob, "move.rejected"))
    await bob.send({"type": "status.set", "status": "busy"})
    frames.append(await frame_of(alice, "presence.update", where=lambda f: f["person"]["user"] == bob_user.id))
    await bob.send("not json")
    frames.append(await frame_of(bob, "error"))
    await bob.send({"type": "chat.send", "thread": 999999, "body": "x", "client_id": "c9"})
    frames.append(await frame_of(bob, "error", where=lambda f: f.get("client_id") == "c9"))
    await bob.send({"type": "ping"})
    frames.append(await frame_of(bob, "pong"))

    # work, the inbox, the map and access, written by services
    @database_sync_to_async
    def write_things():
        work.task_create(title="Send the deck", owner=alice_user, actor=bob_user, room=office["atlas"],
                         due_date=dt.date.today() + dt.timedelta(days=3))
        work.ticket_open(kind="facilities", room=office["open"], severity="high", title="Lamp", detail="",
                         source="member:alice", dedupe_key="", actor_label="alice", actor=alice_user)
        workflows.notification_create(user=alice_user, title="Hello", body="b", url="/tasks/")
        services.desk_create(office_map=office["map"], label="B1", x=30, y=20)
        services.room_set_members(room=office["vault"], user_ids=[])

    await write_things()
    for event_type in ("task.changed", "ticket.changed", "notification.new", "map.changed", "thread.removed"):
        frames.append(await frame_of(alice, event_type))

    # the meeting in Atlas: a caption, a summary, an action item and its decision
    @database_sync_to_async
    def meeting_things():
        meeting = Meeting.objects.get(room=office["atlas"], ended_at__isnull=True)
        meetings.transcript_segment_add(meeting_id=meeting.pk, speaker_id=alice_user.pk, start_ms=0, end_ms=900,
                                        spoken_at=timezone.now(), text="We ship on Friday", words=[],
                                        confidence=0.9, model_id="test")
        llm.reset_breakers()
        try:
            meeting_notes.summary_refresh(meeting, client=llm.LLMClient(ScriptedTransport(by_purpose())))
        finally:
            llm.reset_breakers()
        item = ActionItem.objects.create(room=office["atlas"], meeting=meeting, text="Send the deck", confidence=0.8,
                                         dedupe_key="t1", speaker=alice_user)
        assistant_services.action_item_decide(item=item, user=alice_user, action="reject", note="no")

    await meeting_things()
    for event_type in ("caption.final", "assistant.summary", "assistant.action_item"):
        frames.append(await frame_of(alice, event_type))

    # walking out of the meeting's room; someone leaving the map
    await _walk(alice, [(5, 4), (6, 5), (6, 6), (6, 7)], start_seq=20)
    frames.append(await frame_of(alice, "meeting.left"))
    await bob.communicator.disconnect()
    frames.append(await frame_of(alice, "presence.leave"))

    seen = {frame["type"] for frame in frames}
    for frame in frames:
        assert_frame_matches(frame, "office")
    assert len(seen) >= 25


@SOCKET_TEST
async def test_sensor_frames_match_the_catalogue(office, people, sockets):
    from iot import services as iot
    from iot.selectors import sensor_topic
    from office.asgi import application
    from tests.conftest import session_cookie

    @database_sync_to_async
    def make_sensor():
        iot.builtin_rules_ensure()
        sensor, _ = iot.sensor_create(room=office["atlas"], kind="occupancy", name="Atlas counter",
                                      device_id="atlas-people")
        iot.rule_create(name="Anyone in", scope="kind", sensor_kind="occupancy", field="count", op="gt", value=0,
                        for_seconds=0, action="nothing")
        return sensor

    sensor = await make_sensor()
    dana = await sockets(people["dana"], office["map"].id)
    cookie = await database_sync_to_async(session_cookie)(people["dana"])
    page = WebsocketCommunicator(application, "/ws/iot/sensors/",
                                 headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"),
                                          (b"cookie", cookie)])
    connected, _ = await page.connect()
    assert connected
    frames = [json.loads(await page.receive_from(3))]
    try:
        await database_sync_to_async(lambda: iot.mqtt_message_ingest(
            topic=sensor_topic(sensor), payload=json.dumps({"count": 2}).encode()))()
        while {"sensor.reading", "rule.fired"} - {f["type"] for f in frames}:
            frames.append(json.loads(await page.receive_from(5)))
        await page.send_to(text_data='{"type":"ping"}')
        frames.append(json.loads(await page.receive_from(3)))
    finally:
        await page.disconnect()
    anonymous = WebsocketCommunicator(application, "/ws/iot/sensors/",
                                      headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")])
    await anonymous.connect()
    frames.append(json.loads(await anonymous.receive_from(3)))
    await anonymous.disconnect()

    assert {f["type"] for f in frames} == {"hello", "sensor.reading", "rule.fired", "pong", "error"}
    for frame in frames:
        assert_frame_matches(frame, "sensors")
    assert_frame_matches(await frame_of(dana, "room.occupancy"), "office")
