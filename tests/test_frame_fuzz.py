"""Every client frame type of the office socket (rooms.protocol.SCHEMAS, with the ones later stages
register), fuzzed field by field through the real socket stack (WebsocketCommunicator on the ASGI
application): each field missing, of each wrong type, past its bounds, too long, with control
characters, nested junk; extra fields; and frames that are not frames at all (not JSON, binary,
nested too deep, too large). Then Hypothesis sends arbitrary JSON values in each field.

The rules (docs/protocol.md, ADR 0003): a frame the schema refuses is answered with a non-fatal
`error` frame; no frame crashes or closes the socket; the socket then still answers a `ping`.
Bounded and reproducible: a fixed table, and derandomized Hypothesis examples."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import transcription.consumers  # noqa: F401 (registers the rtc.* / meeting / voice frame types)
from rooms.protocol import SCHEMAS, Field

pytestmark = pytest.mark.django_db(transaction=True)

HYPOTHESIS_EXAMPLES = 25
DEEP = "[" * 5000 + "]" * 5000

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def valid_frame(frame_type: str, world: dict) -> dict:
    """A frame of `frame_type` the schema accepts (what the server then does with it may still be a
    refusal: no meeting here, not nearby...)."""
    values = {
        ("move", "x"): 11, ("move", "y"): 15, ("move", "seq"): 1,
        ("status.set", "status"): "busy",
        ("chat.send", "thread"): world["thread"], ("chat.send", "body"): "hello", ("chat.send", "client_id"): "c-1",
        ("chat.resume", "thread"): world["thread"], ("chat.resume", "after"): 0,
        ("chat.history", "thread"): world["thread"], ("chat.history", "before"): 5, ("chat.history", "limit"): 10,
        ("chat.read", "thread"): world["thread"], ("chat.read", "seq"): 0,
        ("dm.open", "user"): world["bob"],
        ("room.knock", "room"): world["vault"], ("room.knock.answer", "knock"): 1,
        ("room.knock.answer", "let_in"): False,
        ("rtc.offer", "sdp"): "v=0", ("meeting.consent", "transcribe"): True,
        ("voice.signal", "to"): world["bob"], ("voice.signal", "signal"): {"kind": "offer"},
    }
    frame = {"type": frame_type}
    for name, spec in SCHEMAS[frame_type].items():
        if (frame_type, name) in values:
            frame[name] = values[(frame_type, name)]
        else:  # a type registered later: the simplest value of its kind
            frame[name] = {int: spec.minimum or 1, str: "x", bool: True, dict: {}}.get(spec.kind, None)
    return frame


def wrong_values(spec: Field) -> list:
    """Values the schema must refuse for a field like `spec`."""
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    candidates = ["1", 1.5, True, None, [], {"a": [1, {"b": None}]}, [[[[[]]]]], 2**70, -(2**70)]
    wrong = [value for value in candidates
             if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)]
    if int in kinds:
        wrong += [v for v in (spec.minimum - 1 if spec.minimum is not None else None,
                              spec.maximum + 1 if spec.maximum is not None else None) if v is not None]
    if str in kinds:
        # "\ud800": a JSON escape of half a surrogate pair, which no text encoding (nor PostgreSQL) takes
        wrong += ["a\x00b", "\x1f", "\ud800", *(["x" * (spec.max_length + 1)] if spec.max_length else [])]
        if spec.choices:
            wrong += ["²", spec.choices[0].upper()]
    if dict in kinds:
        wrong += [{"a": "\x00"}, {"k\x01": 1}]
    return wrong


NOT_FRAMES = [
    ("{", "bad_json"), (" ", "bad_json"), ("[]", "bad_frame"), ("null", "bad_frame"), ('"move"', "bad_frame"),
    ('{"type": 5}', "unknown_type"), ('{"type": "nope"}', "unknown_type"), ('{"type": "MOVE"}', "unknown_type"),
    ('{"type": "ping\\u0000"}', "unknown_type"), ('{"no": "type"}', "unknown_type"), (DEEP, "bad_json"),
    ('{"type": "ping", "type": "move"}', "bad_field"), ('{"type": "ping\\ud800"}', "unknown_type"),
    ("x" * (64 * 1024 + 1), "too_large"), ("é" * (40 * 1024), "too_large"),
]


@pytest.fixture(autouse=True)
def quick_passwords(settings):
    """Four personas per test: hashing their passwords properly would be most of this file's time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
async def joined(office, people, sockets, settings):
    """Alice on the office socket, with the rate limit out of the way (the fuzz sends hundreds of
    frames a second; the limit has its own tests)."""
    settings.OFFICE_WS_RATE_PER_SECOND = 100_000
    settings.OFFICE_WS_RATE_BURST = 100_000
    socket = await sockets(people["alice"], office["map"].id)
    world = {"thread": office["open"].chat_thread.pk, "bob": people["bob"].pk, "vault": office["vault"].pk}
    return socket, world


async def answer_to(socket, frame) -> list[dict]:
    """Send `frame` (a dict, text or bytes), then a ping; every frame the server sent before its pong.
    The consumer handles one frame at a time, so the pong means the first was handled and survived."""
    if isinstance(frame, bytes):
        await socket.communicator.send_to(bytes_data=frame)
    else:
        await socket.send(frame)
    await socket.send({"type": "ping"})
    got = []
    while True:
        try:
            output = await socket.communicator.receive_output(timeout=5)
        except TimeoutError:
            raise AssertionError(f"no answer (no pong) after {str(frame)[:200]!r}; got {got}") from None
        assert output["type"] == "websocket.send", f"the socket closed after {str(frame)[:200]!r}: {output}"
        answer = json.loads(output["text"])
        assert not answer.get("fatal"), f"a fatal error after {str(frame)[:200]!r}: {answer}"
        if answer["type"] == "pong":
            return got
        got.append(answer)


def refused(answers: list[dict], code: str | None = None) -> bool:
    errors = [a for a in answers if a["type"] == "error"]
    return bool(errors) and (code is None or any(e["code"] == code for e in errors))


@pytest.mark.parametrize("frame_type", sorted(SCHEMAS))
async def test_no_field_of_a_frame_type_breaks_the_socket(frame_type, joined):
    socket, world = joined
    base = valid_frame(frame_type, world)
    failures = []

    async def expect_refusal(frame, why: str) -> None:
        answers = await answer_to(socket, frame)
        if not refused(answers, "bad_field"):
            failures.append(f"{why}: {json.dumps(frame)[:200]} -> {answers}")

    # given the table: each field missing, wrong, out of bounds; extra fields
    for name, spec in SCHEMAS[frame_type].items():
        if spec.required:
            await expect_refusal({k: v for k, v in base.items() if k != name}, f"{name} missing")
        for value in wrong_values(spec):
            await expect_refusal({**base, name: value}, f"{name} = {str(value)[:40]!r}")
    await expect_refusal({**base, "extra": {"nested": ["junk"]}}, "an extra field")
    await expect_refusal({**base, "\x00": 1}, "a NUL field name")

    # and Hypothesis: any JSON value in any field, accepted or refused, is answered
    generated: list[dict] = []

    @settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(name=st.sampled_from([*SCHEMAS[frame_type], "extra"]), value=JSON_VALUES)
    def collect(name, value):
        generated.append({**base, name: value})

    collect()
    for frame in [*generated, base]:
        await answer_to(socket, frame)  # a valid frame too: whatever the server makes of it, it answers
    assert not failures, "\n".join(failures)


async def test_what_is_not_a_frame_is_an_error_frame_and_the_socket_lives_on(joined):
    socket, _ = joined
    failures = []
    for text, code in NOT_FRAMES:
        answers = await answer_to(socket, text)
        if code is not None and not refused(answers, code):
            failures.append(f"{text[:60]!r}: expected {code}, got {answers}")
    for data in (b"\x00\x01", b'{"type": "ping"}', b"x" * (64 * 1024 + 1)):
        answers = await answer_to(socket, data)
        if not refused(answers):
            failures.append(f"binary {data[:20]!r}: expected an error, got {answers}")
    assert not failures, "\n".join(failures)


async def test_the_sensors_socket_ignores_what_it_does_not_read_and_still_answers_a_ping(people):
    from channels.testing import WebsocketCommunicator

    from office.asgi import application
    from tests.conftest import session_cookie

    cookie = await database_sync_to_async(session_cookie)(people["alice"])
    communicator = WebsocketCommunicator(application, "/ws/iot/sensors/", headers=[
        (b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"), (b"cookie", cookie)])
    connected, _ = await communicator.connect()
    assert connected and json.loads(await communicator.receive_from())["type"] == "hello"
    for text, _ in NOT_FRAMES:
        await communicator.send_to(text_data=text)
    await communicator.send_to(bytes_data=b"\x00\xff")
    await communicator.send_to(text_data='{"type":"ping"}')
    assert json.loads(await communicator.receive_from(timeout=5)) == {"type": "pong"}
    await communicator.disconnect()
